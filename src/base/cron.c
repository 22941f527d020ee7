/* cron.c — parsing 5-field cron expressions and computing the next fire time in a zone
 * (see cron.h for the syntax and the daylight-saving rules). The search walks local
 * wall-clock fields (month, day, hour, minute), then maps the matching local time to
 * UTC through the zone, which is where gaps and repeats are resolved. */
#include "base/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* 3-letter names for lo.., or NULL */
};

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const DAYS[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field_def FIELDS[5] = {
    {"minute", 0, 59, NULL},  {"hour", 0, 23, NULL},       {"day of month", 1, 31, NULL},
    {"month", 1, 12, MONTHS}, {"day of week", 0, 7, DAYS},
};

static void set_err(char *err, size_t pos, const char *field, const char *fmt, const char *a, int x)
{
    if (!err) return;
    char msg[120];
    snprintf(msg, sizeof msg, fmt, a, x);
    if (field)
        snprintf(err, 160, "position %zu (%s): %s", pos, field, msg);
    else
        snprintf(err, 160, "position %zu: %s", pos, msg);
}

/* A number or a name at *p; advances. -1 when neither. */
static int read_value(const char **p, const struct field_def *f)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 1000) v = 1000;
        }
        *p = s;
        return (int)v;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalpha((unsigned char)s[3])) {
        int count = f->names == MONTHS ? 12 : 7;
        for (int i = 0; i < count; i++)
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *p = s + 3;
                return f->lo + i;
            }
    }
    return -1;
}

/* Parses one field from text[start, end). Returns the bit set, or sets err. */
static int parse_field(const char *text, size_t start, size_t end, const struct field_def *f,
                       uint64_t *bits, bool *star, char *err)
{
    *bits = 0;
    *star = false;
    const char *p = text + start, *e = text + end;
    while (p < e) {
        const char *item = p;
        int lo, hi;
        bool all = false;
        if (*p == '*') {
            lo = f->lo, hi = f->hi;
            all = true;
            p++;
        } else {
            const char *v = p;
            lo = read_value(&p, f);
            if (lo < 0) {
                set_err(err, (size_t)(v - text) + 1, f->name, "expected a number%s, '*' or a list",
                        f->names ? " or a name" : "", 0);
                return -1;
            }
            if (lo < f->lo || lo > f->hi) {
                set_err(err, (size_t)(v - text) + 1, f->name,
                        lo < f->lo ? "%s%d is below the field's minimum"
                                   : "%s%d is above the field's maximum",
                        "", lo);
                return -1;
            }
            hi = lo;
            if (p < e && *p == '-') {
                p++;
                const char *v2 = p;
                hi = read_value(&p, f);
                if (hi < 0) {
                    set_err(err, (size_t)(v2 - text) + 1, f->name, "expected the end of a range%s",
                            "", 0);
                    return -1;
                }
                if (hi < f->lo || hi > f->hi) {
                    set_err(err, (size_t)(v2 - text) + 1, f->name,
                            "%s%d is outside the field's range", "", hi);
                    return -1;
                }
                if (hi < lo) {
                    set_err(err, (size_t)(v2 - text) + 1, f->name,
                            "%srange ends (%d) before it starts", "", hi);
                    return -1;
                }
            } else if (p < e && *p == '/') {
                hi = f->hi; /* "5/10" = from 5 to the end */
            }
        }
        int step = 1;
        if (p < e && *p == '/') {
            p++;
            const char *v = p;
            if (!isdigit((unsigned char)*p)) {
                set_err(err, (size_t)(v - text) + 1, f->name, "expected a step number after '/'%s",
                        "", 0);
                return -1;
            }
            step = read_value(&p, f);
            if (step < 1 || step > f->hi - f->lo + 1) {
                set_err(err, (size_t)(v - text) + 1, f->name, "%sstep %d is out of range", "",
                        step);
                return -1;
            }
        }
        if (p < e && *p != ',') {
            set_err(err, (size_t)(p - text) + 1, f->name, "unexpected character '%s%c'", "", *p);
            return -1;
        }
        for (int v = lo; v <= hi; v += step) *bits |= 1ull << v;
        if (all && step == 1) *star = true;
        if (p < e) {
            p++; /* ',' */
            if (p == e) {
                set_err(err, (size_t)(p - text) + 1, f->name, "%sempty list item", "", 0);
                return -1;
            }
        }
        (void)item;
    }
    return 0;
}

static const struct {
    const char *alias, *expr;
} ALIASES[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
               {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
               {"@hourly", "0 * * * *"}};

int cron_parse(const char *text, struct cron_expr *out, char err[160])
{
    memset(out, 0, sizeof *out);
    if (err) err[0] = 0;
    if (!text) {
        set_err(err, 1, NULL, "%sempty expression", "", 0);
        return -1;
    }
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    if (i < len && text[i] == '@') {
        for (size_t a = 0; a < sizeof ALIASES / sizeof ALIASES[0]; a++)
            if (strlen(ALIASES[a].alias) == len - i &&
                strncasecmp(text + i, ALIASES[a].alias, len - i) == 0)
                return cron_parse(ALIASES[a].expr, out, err);
        set_err(err, i + 1, NULL, "unknown alias (use @yearly, @monthly, @weekly, @daily or %s)",
                "@hourly", 0);
        return -1;
    }
    size_t starts[5], ends[5];
    int nf = 0;
    while (i < len) {
        if (nf == 5) {
            set_err(err, i + 1, NULL, "%stoo many fields (a cron expression has 5)", "", 0);
            return -1;
        }
        starts[nf] = i;
        while (i < len && !isspace((unsigned char)text[i])) i++;
        ends[nf++] = i;
        while (i < len && isspace((unsigned char)text[i])) i++;
    }
    if (nf < 5) {
        set_err(err, len + 1, NULL,
                "%sexpected 5 fields (minute hour day-of-month month day-of-week), got %d", "", nf);
        return -1;
    }
    uint64_t bits[5];
    bool star[5];
    for (int f = 0; f < 5; f++)
        if (parse_field(text, starts[f], ends[f], &FIELDS[f], &bits[f], &star[f], err) != 0)
            return -1;
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 = Sunday */
    out->hour_star = star[1];
    out->dom_star = star[2];
    out->dow_star = star[4];
    return 0;
}

/* ---- next fire ---- */

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return md[m - 1] + (m == 2 && leap);
}

static bool day_matches(const struct cron_expr *e, int64_t y, unsigned m, unsigned d)
{
    int64_t days = tz_days_from_civil(y, m, d);
    unsigned wd = (unsigned)(((days % 7) + 7 + 4) % 7);
    bool dom = (e->dom >> d) & 1, dow = (e->dow >> wd) & 1;
    if (e->dom_star && e->dow_star) return true;
    if (e->dom_star) return dow;
    if (e->dow_star) return dom;
    return dom || dow;
}

/* The next local wall time >= `local` (seconds, a minute boundary) matching the fields,
 * within `limit`. */
static bool next_local(const struct cron_expr *e, int64_t local, int64_t limit, int64_t *out)
{
    while (local <= limit) {
        int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
        int64_t sod = local - days * 86400;
        int64_t y;
        unsigned m, d;
        tz_civil_from_days(days, &y, &m, &d);
        if (!((e->month >> m) & 1)) {
            unsigned nm = m == 12 ? 1 : m + 1;
            int64_t ny = m == 12 ? y + 1 : y;
            local = tz_days_from_civil(ny, nm, 1) * 86400;
            continue;
        }
        if (d > month_days(y, m) || !day_matches(e, y, m, d)) {
            local = (days + 1) * 86400;
            continue;
        }
        unsigned h = (unsigned)(sod / 3600), mi = (unsigned)(sod % 3600 / 60);
        if (!((e->hour >> h) & 1)) {
            local = days * 86400 + (int64_t)(h + 1) * 3600;
            continue;
        }
        if (!((e->minute >> mi) & 1)) {
            local += 60;
            continue;
        }
        *out = local;
        return true;
    }
    return false;
}

int cron_next(const struct cron_expr *e, const tz_t *z, int64_t after, int64_t *next)
{
    int64_t u0 = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
    int64_t horizon = u0 + 8 * 366 * 86400ll;
    /* Walk the zone's offset periods from u0: within one period local time maps to UTC
     * one to one; gaps and repeats sit at the period boundaries. */
    for (int64_t u = u0; u < horizon;) {
        int64_t s, end;
        int32_t off = tz_period(z, u, &s, &end);
        int32_t o_prev = s == INT64_MIN ? off : tz_offset_at(z, s - 1, NULL);
        int64_t M;
        /* Local times skipped when this period began fire at its first instant. */
        if (s != INT64_MIN && s >= u0 && off > o_prev &&
            next_local(e, s + o_prev, s + off - 60, &M)) {
            *next = s;
            return 0;
        }
        int64_t lend = end == INT64_MAX || end > horizon ? horizon + off : end + off - 60;
        for (int64_t L = u + off; next_local(e, L, lend, &M); L = M + 60) {
            /* Repeated local times (present in the previous period too) fire once. */
            bool repeated = s != INT64_MIN && o_prev > off && M < s + o_prev;
            if (repeated && !e->hour_star) continue;
            *next = M - off;
            return 0;
        }
        if (end == INT64_MAX) break;
        u = end;
    }
    return -1;
}
