/* cron.h — 5-field cron expressions (minute hour day-of-month month day-of-week) and
 * their next fire time in an explicit time zone (base/tz.h).
 *
 * Syntax: each field is a comma list of `*`, `N`, `N-M`, with an optional `/step`
 * (`*\/15`, `1-30/5`, `5/10` = from 5 to the field's end); months accept jan…dec and days
 * of week sun…sat (case-insensitive; 0 and 7 are Sunday). Aliases: @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight), @hourly. When both day fields are restricted a
 * day matches if either matches (classic cron); `*` in one of them defers to the other.
 *
 * Daylight-saving changes (defined behaviour, tested):
 * - a local time skipped by a spring-forward gap fires once, at the instant of the
 *   change (e.g. 02:30 in Europe/Berlin on the last Sunday of March fires at 03:00
 *   CEST); several skipped matches still fire only once;
 * - a local time repeated by a fall-back fires once, at its first occurrence, unless
 *   the hour field is `*` (hourly and finer schedules keep running through the repeated
 *   hour, so `0 * * * *` still fires every hour of real time). */
#ifndef METARELAY_BASE_CRON_H
#define METARELAY_BASE_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "base/tz.h"

struct cron_expr {
    uint64_t minute; /* bit n = minute n */
    uint32_t hour;
    uint32_t dom;   /* bits 1..31 */
    uint16_t month; /* bits 1..12 */
    uint8_t dow;    /* bits 0..6, Sunday = 0 */
    bool dom_star, dow_star, hour_star;
};

/* Parses `text`. 0 on success; -1 with `err` (may be NULL) set to a message naming the
 * 1-based character position and field ("position 7 (hour): 24 is above 23"). */
int cron_parse(const char *text, struct cron_expr *out, char err[160]);

/* The first fire time strictly after `after` (unix seconds) in zone `z`: 0 and *next
 * set, or -1 when the expression never fires within the next 8 years (e.g. "0 0 30 2 *"). */
int cron_next(const struct cron_expr *e, const tz_t *z, int64_t after, int64_t *next);

#endif
