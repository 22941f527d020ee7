/* tz.h — time zones as explicit values, for scheduling in the zone of `TZ` without ever
 * touching the process environment (setenv/tzset are not thread-safe, and curl calls
 * getenv on every transfer).
 *
 * A zone is loaded once (tz_load, at start, before threads) from a TZif file of the
 * system's zoneinfo database (transitions, then the file's POSIX footer rule for times
 * past the last transition) or from a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3").
 * A loaded zone is immutable and may be shared by every thread. glibc has no
 * localtime-with-an-explicit-zone (tzalloc/localtime_rz are BSD/gnulib), hence this
 * small reader. */
#ifndef METARELAY_BASE_TZ_H
#define METARELAY_BASE_TZ_H

#include <stdint.h>

typedef struct tz tz_t;

/* Loads a zone by the rules of the TZ variable: NULL or "" = the system zone
 * (/etc/localtime, UTC when absent); ":Area/City" or "Area/City" = that zoneinfo file;
 * "UTC"/"GMT" = UTC; otherwise a POSIX TZ string. Caller owns (tz_free). NULL with
 * `err` (may be NULL) filled when the zone is unknown or malformed. */
tz_t *tz_load(const char *tz, char err[160]);
/* A zone fixed at UTC (never fails for lack of files). */
tz_t *tz_utc(void);
void tz_free(tz_t *z);
/* The zone's name as given ("UTC" for the default). */
const char *tz_name(const tz_t *z);

/* UTC offset in seconds (east positive) in effect at `utc` (unix seconds). When
 * `period_start` is not NULL it receives the instant the offset took effect (the last
 * transition at or before `utc`; INT64_MIN when none is known). */
int32_t tz_offset_at(const tz_t *z, int64_t utc, int64_t *period_start);

/* Same, also giving the end of that offset's period (the next transition; INT64_MAX
 * when none is known) in *end. start/end may be NULL. */
int32_t tz_period(const tz_t *z, int64_t utc, int64_t *start, int64_t *end);

/* Civil date helpers (proleptic Gregorian), days counted from 1970-01-01. */
int64_t tz_days_from_civil(int64_t y, unsigned m, unsigned d);
void tz_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
