/* tz.c — time zones as values (see tz.h): a reader of TZif files (RFC 8536, version 2+
 * 64-bit data, version 1 accepted) and of POSIX TZ rule strings, written by hand because
 * glibc offers no zone-explicit conversion. Leap-second records are skipped (zoneinfo
 * "posix" files have none). */
#include "base/tz.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZONEINFO_DIR   "/usr/share/zoneinfo"
#define MAX_TZIF_BYTES (1u << 20)

/* A POSIX rule date: Jn (julian 1..365, no Feb 29), n (0..365), or Mm.w.d. */
struct rule_date {
    char kind; /* 'J', 'N', 'M' */
    int a, b, c;
    int32_t time; /* seconds after local midnight (may be negative or > 24h) */
};

struct posix_rule {
    bool valid;
    int32_t std_off; /* east positive */
    int32_t dst_off;
    bool has_dst;
    struct rule_date start, end;
};

struct tz {
    char *name;
    int64_t *times; /* transitions, ascending */
    uint8_t *idx;   /* type index of each transition */
    size_t n_times;
    int32_t *type_off;
    size_t n_types;
    struct posix_rule rule; /* after the last transition (or alone) */
};

/* ---- civil dates ---- */

int64_t tz_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ---- POSIX TZ strings ---- */

static const char *parse_name(const char *p)
{
    if (*p == '<') {
        const char *e = strchr(p, '>');
        return e && e - p >= 4 ? e + 1 : NULL;
    }
    const char *s = p;
    while (isalpha((unsigned char)*p)) p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] → seconds; hours up to 167 (TZif v3 footers). */
static const char *parse_hms(const char *p, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p)) return NULL;
    int32_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *p != ':') break;
        if (i) p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        int x = 0, nd = 0;
        while (isdigit((unsigned char)*p) && nd < 3) x = x * 10 + (*p++ - '0'), nd++;
        v[i] = x;
    }
    if (v[0] > 167 || v[1] > 59 || v[2] > 59) return NULL;
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return p;
}

static const char *parse_int(const char *p, int *out, int lo, int hi)
{
    if (!isdigit((unsigned char)*p)) return NULL;
    int x = 0;
    while (isdigit((unsigned char)*p)) {
        x = x * 10 + (*p++ - '0');
        if (x > hi) return NULL;
    }
    if (x < lo) return NULL;
    *out = x;
    return p;
}

static const char *parse_date(const char *p, struct rule_date *r)
{
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_int(p + 1, &r->a, 1, 365);
    } else if (*p == 'M') {
        r->kind = 'M';
        p = parse_int(p + 1, &r->a, 1, 12);
        if (p && *p == '.')
            p = parse_int(p + 1, &r->b, 1, 5);
        else
            p = NULL;
        if (p && *p == '.')
            p = parse_int(p + 1, &r->c, 0, 6);
        else
            p = NULL;
    } else {
        r->kind = 'N';
        p = parse_int(p, &r->a, 0, 365);
    }
    if (!p) return NULL;
    r->time = 7200;
    if (*p == '/') p = parse_hms(p + 1, &r->time);
    return p;
}

static bool parse_posix(const char *s, struct posix_rule *r)
{
    memset(r, 0, sizeof *r);
    const char *p = parse_name(s);
    if (!p) return false;
    int32_t off;
    if (!(p = parse_hms(p, &off))) return false;
    r->std_off = -off;
    if (*p == 0) return r->valid = true;
    if (!(p = parse_name(p))) return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, &off))) return false;
        r->dst_off = -off;
    }
    if (*p != ',') {
        /* No rule: the US rules of POSIX's default ("M3.2.0,M11.1.0"). */
        r->start = (struct rule_date){'M', 3, 2, 0, 7200};
        r->end = (struct rule_date){'M', 11, 1, 0, 7200};
        return *p == 0 ? (r->valid = true) : false;
    }
    if (!(p = parse_date(p + 1, &r->start)) || *p != ',') return false;
    if (!(p = parse_date(p + 1, &r->end)) || *p) return false;
    return r->valid = true;
}

/* Local-midnight day number (days since epoch) of a rule date in `year`. */
static int64_t rule_day(const struct rule_date *r, int64_t year)
{
    int64_t jan1 = tz_days_from_civil(year, 1, 1);
    if (r->kind == 'J') {
        int64_t d = r->a - 1;
        if (is_leap(year) && r->a >= 60) d++;
        return jan1 + d;
    }
    if (r->kind == 'N') return jan1 + r->a;
    /* Mm.w.d: day d (0 = Sunday) of week w (5 = last) of month m. */
    int64_t first = tz_days_from_civil(year, (unsigned)r->a, 1);
    int wd_first = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (r->c - wd_first + 7) % 7 + (int64_t)(r->b - 1) * 7;
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned ml = mdays[r->a - 1] + (r->a == 2 && is_leap(year));
    while (day >= first + ml) day -= 7;
    return day;
}

static int32_t rule_offset(const struct posix_rule *r, int64_t t, int64_t *start, int64_t *end)
{
    if (end) *end = INT64_MAX;
    if (!r->has_dst) {
        if (start) *start = INT64_MIN;
        return r->std_off;
    }
    int64_t y;
    unsigned m, d;
    tz_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* Transitions of the year before, this year and the next, in order. */
    int64_t tr[6];
    int32_t after[6];
    int n = 0;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s = rule_day(&r->start, yy) * 86400 + r->start.time - r->std_off;
        int64_t e = rule_day(&r->end, yy) * 86400 + r->end.time - r->dst_off;
        if (s <= e) {
            tr[n] = s, after[n++] = r->dst_off;
            tr[n] = e, after[n++] = r->std_off;
        } else {
            tr[n] = e, after[n++] = r->std_off;
            tr[n] = s, after[n++] = r->dst_off;
        }
    }
    int32_t off = after[0] == r->dst_off ? r->std_off : r->dst_off;
    int64_t st = INT64_MIN;
    for (int i = 0; i < n; i++) {
        if (tr[i] <= t) {
            off = after[i], st = tr[i];
        } else {
            if (end) *end = tr[i];
            break;
        }
    }
    if (start) *start = st;
    return off;
}

/* ---- TZif ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool parse_tzif(tz_t *z, const uint8_t *d, size_t n, char err[160])
{
    if (n < 44 || memcmp(d, "TZif", 4) != 0) {
        snprintf(err, 160, "not a TZif file");
        return false;
    }
    int version = d[4] ? d[4] - '0' : 1;
    size_t pos = 0;
    int tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (pos + 44 > n) goto bad;
        const uint8_t *h = d + pos;
        uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28),
                 timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
        if (typecnt == 0 || typecnt > 256 || timecnt > 100000) goto bad;
        size_t body = (size_t)timecnt * tsize + timecnt + typecnt * 6u + charcnt +
                      (size_t)leap * (tsize + 4) + isstd + isut;
        if (pos + 44 + body > n) goto bad;
        if (pass == 0 && version >= 2) {
            pos += 44 + body;
            tsize = 8;
            continue;
        }
        const uint8_t *p = h + 44;
        z->times = malloc((timecnt ? timecnt : 1) * sizeof *z->times);
        z->idx = malloc(timecnt ? timecnt : 1);
        z->type_off = malloc(typecnt * sizeof *z->type_off);
        if (!z->times || !z->idx || !z->type_off) goto bad;
        for (uint32_t i = 0; i < timecnt; i++, p += tsize)
            z->times[i] = tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        for (uint32_t i = 0; i < timecnt; i++, p++) {
            if (*p >= typecnt) goto bad;
            z->idx[i] = *p;
        }
        for (uint32_t i = 0; i < typecnt; i++, p += 6) z->type_off[i] = (int32_t)be32(p);
        z->n_times = timecnt;
        z->n_types = typecnt;
        p += charcnt + (size_t)leap * (tsize + 4) + isstd + isut;
        /* Footer: "\n<POSIX TZ>\n" (version 2+). */
        if (version >= 2 && (size_t)(p - d) < n && *p == '\n') {
            const uint8_t *e = memchr(p + 1, '\n', n - (size_t)(p + 1 - d));
            if (e && e > p + 1) {
                char rule[128];
                size_t l = (size_t)(e - p - 1);
                if (l < sizeof rule) {
                    memcpy(rule, p + 1, l);
                    rule[l] = 0;
                    parse_posix(rule, &z->rule);
                }
            }
        }
        return true;
    }
bad:
    snprintf(err, 160, "malformed TZif file");
    return false;
}

static bool read_file(const char *path, uint8_t **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    uint8_t *buf = malloc(MAX_TZIF_BYTES);
    size_t got = buf ? fread(buf, 1, MAX_TZIF_BYTES, f) : 0;
    fclose(f);
    if (!buf || got == 0) {
        free(buf);
        return false;
    }
    *out = buf;
    *n = got;
    return true;
}

void tz_free(tz_t *z)
{
    if (!z) return;
    free(z->name);
    free(z->times);
    free(z->idx);
    free(z->type_off);
    free(z);
}

const char *tz_name(const tz_t *z)
{
    return z->name;
}

tz_t *tz_utc(void)
{
    tz_t *z = calloc(1, sizeof *z);
    if (!z || !(z->name = strdup("UTC"))) {
        free(z);
        return NULL;
    }
    z->rule.valid = true;
    return z;
}

tz_t *tz_load(const char *spec, char err[160])
{
    char scratch[160];
    if (!err) err = scratch;
    err[0] = 0;
    if (!spec || !*spec || strcmp(spec, "UTC") == 0 || strcmp(spec, "GMT") == 0 ||
        strcmp(spec, ":UTC") == 0) {
        if (spec && *spec) return tz_utc();
        spec = NULL; /* the system zone */
    }
    tz_t *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    const char *name = spec ? (*spec == ':' ? spec + 1 : spec) : "/etc/localtime";
    z->name = strdup(spec ? name : "localtime");
    if (!z->name) goto fail;
    /* A file name: absolute, or relative to the zoneinfo directory (no ".." escapes). */
    bool looks_file = !spec || name[0] == '/' || spec[0] == ':' || !parse_posix(name, &z->rule);
    if (looks_file) {
        memset(&z->rule, 0, sizeof z->rule);
        char path[512];
        if (strstr(name, "..")) {
            snprintf(err, 160, "time zone %.60s: '..' is not allowed", name);
            goto fail;
        }
        if (name[0] == '/')
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, name);
        uint8_t *data;
        size_t n;
        if (!read_file(path, &data, &n)) {
            if (!spec) { /* no /etc/localtime: UTC */
                tz_free(z);
                return tz_utc();
            }
            snprintf(err, 160, "unknown time zone '%.80s' (no zoneinfo file)", name);
            goto fail;
        }
        bool ok = parse_tzif(z, data, n, err);
        free(data);
        if (!ok) goto fail;
    }
    return z;
fail:
    tz_free(z);
    return NULL;
}

int32_t tz_period(const tz_t *z, int64_t t, int64_t *start, int64_t *end)
{
    int64_t st_, en_;
    if (!start) start = &st_;
    if (!end) end = &en_;
    *end = INT64_MAX;
    if (z->n_times == 0 || t >= z->times[z->n_times - 1]) {
        if (z->rule.valid) {
            int32_t off = rule_offset(&z->rule, t, start, end);
            if (z->n_times && *start < z->times[z->n_times - 1]) *start = z->times[z->n_times - 1];
            return off;
        }
        *start = z->n_times ? z->times[z->n_times - 1] : INT64_MIN;
        if (z->n_times) return z->type_off[z->idx[z->n_times - 1]];
        return z->n_types ? z->type_off[0] : 0;
    }
    if (t < z->times[0]) {
        *start = INT64_MIN;
        *end = z->times[0];
        return z->type_off[0];
    }
    /* last transition <= t */
    size_t lo = 0, hi = z->n_times - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (z->times[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    *start = z->times[lo];
    *end = z->times[lo + 1]; /* t < the last transition, so lo + 1 exists */
    return z->type_off[z->idx[lo]];
}

int32_t tz_offset_at(const tz_t *z, int64_t t, int64_t *period_start)
{
    return tz_period(z, t, period_start, NULL);
}
