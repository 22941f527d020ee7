/* test_base_cron.c — cron parsing (fields, names, steps, aliases, errors with positions)
 * and next-fire computation in explicit zones, including the daylight-saving changes of
 * Europe/Berlin and America/New_York (skipped and repeated local times), a POSIX TZ
 * string zone, and expressions that never fire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/cron.h"
#include "base/tz.h"

/* Unix seconds of a UTC civil time. */
static int64_t utc(int y, unsigned mo, unsigned d, unsigned h, unsigned mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static int64_t next_of(const char *expr, const tz_t *z, int64_t after)
{
    struct cron_expr e;
    char err[160];
    int rc = cron_parse(expr, &e, err);
    if (rc != 0) fail_msg("parse %s: %s", expr, err);
    int64_t n = 0;
    if (cron_next(&e, z, after, &n) != 0) return -1;
    return n;
}

static void expect_error(const char *expr, const char *want)
{
    struct cron_expr e;
    char err[160] = "";
    assert_int_equal(cron_parse(expr, &e, err), -1);
    if (!strstr(err, want)) fail_msg("'%s': error '%s' does not contain '%s'", expr, err, want);
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct cron_expr e;
    char err[160];
    assert_int_equal(cron_parse("0 8 * * *", &e, err), 0);
    assert_true(e.minute == 1);
    assert_true(e.hour == 1u << 8);
    assert_true(e.dom_star && e.dow_star);
    assert_false(e.hour_star);

    assert_int_equal(cron_parse("*/15 9-17 * JAN-mar mon-fri", &e, err), 0);
    assert_true(e.minute == (1ull | 1ull << 15 | 1ull << 30 | 1ull << 45));
    assert_int_equal(e.hour, 0x3fe00);
    assert_int_equal(e.month, 0xe);
    assert_int_equal(e.dow, 0x3e);
    assert_false(e.dow_star);

    assert_int_equal(cron_parse("5/20 1-10/3,23 1,15 * 7", &e, err), 0);
    assert_true(e.minute == (1ull << 5 | 1ull << 25 | 1ull << 45));
    assert_int_equal(e.hour, (1u << 1 | 1u << 4 | 1u << 7 | 1u << 10 | 1u << 23));
    assert_int_equal(e.dom, (1u << 1 | 1u << 15));
    assert_int_equal(e.dow, 1); /* 7 = Sunday */

    assert_int_equal(cron_parse("  @daily ", &e, err), 0);
    assert_true(e.minute == 1 && e.hour == 1);
    assert_int_equal(cron_parse("@hourly", &e, err), 0);
    assert_true(e.hour_star);
    assert_int_equal(cron_parse("0 0 * * SUN", &e, err), 0);
    assert_int_equal(e.dow, 1);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("0 24 * * *", "position 3 (hour)");
    expect_error("0 24 * * *", "24 is above");
    expect_error("0 8 * *", "expected 5 fields");
    expect_error("0 8 * * * *", "position 11: too many fields");
    expect_error("x 8 * * *", "position 1 (minute): expected a number");
    expect_error("*/0 * * * *", "position 3 (minute): step 0");
    expect_error("0 8 0 * *", "position 5 (day of month)");
    expect_error("0 5-1 * * *", "position 5 (hour): range ends");
    expect_error("1,,2 * * * *", "position 3 (minute)");
    expect_error("0 8 * foo *", "position 7 (month)");
    expect_error("0 8 * * 8", "position 9 (day of week)");
    expect_error("0 8 * * mon-", "position 13 (day of week): expected the end");
    expect_error("0 8# * * *", "position 4 (hour): unexpected character '#'");
    expect_error("@sometimes", "position 1: unknown alias");
    expect_error("", "expected 5 fields");
    expect_error("1, * * * *", "position 3 (minute): empty list item");
    struct cron_expr e;
    assert_int_equal(cron_parse(NULL, &e, NULL), -1);
}

static void test_next_utc(void **state)
{
    (void)state;
    tz_t *z = tz_load("UTC", NULL);
    assert_non_null(z);
    assert_true(next_of("0 8 * * *", z, utc(2024, 1, 1, 8, 0)) == utc(2024, 1, 2, 8, 0));
    assert_true(next_of("0 8 * * *", z, utc(2024, 1, 1, 7, 59)) == utc(2024, 1, 1, 8, 0));
    assert_true(next_of("0 * * * *", z, utc(2024, 1, 1, 8, 30) + 17) == utc(2024, 1, 1, 9, 0));
    /* leap day */
    assert_true(next_of("0 0 29 2 *", z, utc(2024, 3, 1, 0, 0)) == utc(2028, 2, 29, 0, 0));
    /* day of month OR day of week: the 13th or a Friday; 2024-09-06 is a Friday */
    assert_true(next_of("0 0 13 * fri", z, utc(2024, 9, 1, 0, 0)) == utc(2024, 9, 6, 0, 0));
    assert_true(next_of("0 0 13 * fri", z, utc(2024, 9, 6, 0, 0)) == utc(2024, 9, 13, 0, 0));
    /* year end */
    assert_true(next_of("59 23 31 12 *", z, utc(2024, 12, 31, 23, 59)) ==
                utc(2025, 12, 31, 23, 59));
    /* never */
    assert_true(next_of("0 0 30 2 *", z, utc(2024, 1, 1, 0, 0)) == -1);
    assert_true(next_of("0 0 31 4,6 *", z, utc(2024, 1, 1, 0, 0)) == -1);
    tz_free(z);
}

static void test_berlin_dst(void **state)
{
    (void)state;
    char err[160];
    tz_t *z = tz_load("Europe/Berlin", err);
    if (!z) fail_msg("%s", err);
    /* plain days: 08:00 CET = 07:00Z, 08:00 CEST = 06:00Z */
    assert_true(next_of("0 8 * * *", z, utc(2024, 1, 10, 12, 0)) == utc(2024, 1, 11, 7, 0));
    assert_true(next_of("0 8 * * *", z, utc(2024, 7, 10, 12, 0)) == utc(2024, 7, 11, 6, 0));
    /* 2024-03-31: 02:00 CET jumps to 03:00 CEST at 01:00Z. 02:30 does not exist: it fires
     * once at the jump, then normally the next day. */
    int64_t t = next_of("30 2 * * *", z, utc(2024, 3, 30, 12, 0));
    assert_true(t == utc(2024, 3, 31, 1, 0));
    assert_true(next_of("30 2 * * *", z, t) == utc(2024, 4, 1, 0, 30));
    /* several skipped matches fire only once */
    t = next_of("*/15 2 * * *", z, utc(2024, 3, 30, 23, 0));
    assert_true(t == utc(2024, 3, 31, 1, 0));
    assert_true(next_of("*/15 2 * * *", z, t) == utc(2024, 4, 1, 0, 0));
    /* hourly across the gap: 01:00 CET (00:00Z), then 03:00 CEST (01:00Z) */
    assert_true(next_of("0 * * * *", z, utc(2024, 3, 30, 23, 30)) == utc(2024, 3, 31, 0, 0));
    assert_true(next_of("0 * * * *", z, utc(2024, 3, 31, 0, 0)) == utc(2024, 3, 31, 1, 0));

    /* 2024-10-27: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:30 happens twice. */
    t = next_of("30 2 * * *", z, utc(2024, 10, 26, 12, 0));
    assert_true(t == utc(2024, 10, 27, 0, 30)); /* first occurrence (CEST) */
    assert_true(next_of("30 2 * * *", z, t) == utc(2024, 10, 28, 1, 30)); /* not again */
    /* hourly keeps real-time hours through the repeated hour */
    assert_true(next_of("0 * * * *", z, utc(2024, 10, 27, 0, 0)) == utc(2024, 10, 27, 1, 0));
    assert_true(next_of("0 * * * *", z, utc(2024, 10, 27, 1, 0)) == utc(2024, 10, 27, 2, 0));
    /* the default check-in schedule on the change day */
    assert_true(next_of("0 8 * * *", z, utc(2024, 10, 26, 12, 0)) == utc(2024, 10, 27, 7, 0));
    tz_free(z);
}

static void test_new_york_dst(void **state)
{
    (void)state;
    tz_t *z = tz_load(":America/New_York", NULL);
    assert_non_null(z);
    /* 2024-03-10: 02:00 EST → 03:00 EDT at 07:00Z */
    assert_true(next_of("15 2 * * *", z, utc(2024, 3, 9, 12, 0)) == utc(2024, 3, 10, 7, 0));
    assert_true(next_of("0 8 * * *", z, utc(2024, 3, 9, 14, 0)) == utc(2024, 3, 10, 12, 0));
    /* 2024-11-03: 02:00 EDT → 01:00 EST at 06:00Z; 01:30 happens twice */
    int64_t t = next_of("30 1 * * *", z, utc(2024, 11, 3, 0, 0));
    assert_true(t == utc(2024, 11, 3, 5, 30));
    assert_true(next_of("30 1 * * *", z, t) == utc(2024, 11, 4, 6, 30));
    assert_true(next_of("30 * * * *", z, t) == utc(2024, 11, 3, 6, 30)); /* 01:30 EST */
    tz_free(z);
}

static void test_posix_zone(void **state)
{
    (void)state;
    char err[160];
    tz_t *p = tz_load("CET-1CEST,M3.5.0,M10.5.0/3", err);
    if (!p) fail_msg("%s", err);
    tz_t *f = tz_load("Europe/Berlin", err);
    assert_non_null(f);
    /* beyond the file's transition table (2037) the footer rule applies: both agree */
    int64_t years[] = {2024, 2041, 2050};
    for (size_t i = 0; i < 3; i++) {
        int64_t jan = utc((int)years[i], 1, 15, 12, 0), jul = utc((int)years[i], 7, 15, 12, 0);
        assert_int_equal(tz_offset_at(p, jan, NULL), 3600);
        assert_int_equal(tz_offset_at(p, jul, NULL), 7200);
        assert_int_equal(tz_offset_at(f, jan, NULL), 3600);
        assert_int_equal(tz_offset_at(f, jul, NULL), 7200);
        assert_true(next_of("30 2 * * *", p, utc((int)years[i], 3, 1, 0, 0)) ==
                    next_of("30 2 * * *", f, utc((int)years[i], 3, 1, 0, 0)));
    }
    /* 2041-03-31 is a Sunday: the gap fires at 01:00Z */
    assert_true(next_of("30 2 * * *", p, utc(2041, 3, 30, 12, 0)) == utc(2041, 3, 31, 1, 0));
    tz_free(p);
    tz_free(f);
    tz_t *fixed = tz_load("JST-9", NULL);
    assert_non_null(fixed);
    assert_true(next_of("0 8 * * *", fixed, utc(2024, 6, 1, 0, 0)) == utc(2024, 6, 1, 23, 0));
    tz_free(fixed);
}

static void test_bad_zones(void **state)
{
    (void)state;
    char err[160];
    assert_null(tz_load("Mars/Olympus_Mons", err));
    assert_non_null(strstr(err, "unknown time zone"));
    assert_null(tz_load("../../etc/passwd", err));
    assert_null(tz_load("/etc/hostname", err));
    tz_t *sys = tz_load(NULL, err); /* the system zone, or UTC */
    assert_non_null(sys);
    tz_free(sys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_utc),     cmocka_unit_test(test_berlin_dst),
        cmocka_unit_test(test_new_york_dst), cmocka_unit_test(test_posix_zone),
        cmocka_unit_test(test_bad_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
