/* test_control_jobs.c — the pure parts of the control jobs: the outcome of a check-in
 * answer (reward from the response or from the balance difference, "already done" in its
 * three shapes, unsupported, failures) and the local day a check-in counts for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/tz.h"
#include "control/jobs.h"

static void outcome(int rc, const struct platform_checkin *res, const struct platform_error *err,
                    double before, double after, struct job_result *r)
{
    memset(r, 0, sizeof *r);
    job_checkin_outcome(rc, res, err, before, after, r);
}

static void test_reward_from_response(void **state)
{
    (void)state;
    struct platform_checkin res = {.reward = 0.6, .message = "签到成功"};
    struct platform_error err = {0};
    struct job_result r;
    outcome(0, &res, &err, 10, 10.6, &r);
    assert_int_equal(r.status, JOB_OK);
    assert_true(r.reward > 0.5999 && r.reward < 0.6001);
    assert_non_null(strstr(r.message, "签到成功"));
    /* the response wins over a balance difference (spending in between) */
    outcome(0, &res, &err, 10, 10.2, &r);
    assert_true(r.reward > 0.5999 && r.reward < 0.6001);
}

static void test_reward_from_balance(void **state)
{
    (void)state;
    struct platform_checkin res = {.reward = -1, .message = "签到成功"};
    struct platform_error err = {0};
    struct job_result r;
    outcome(0, &res, &err, 10, 10.25, &r);
    assert_int_equal(r.status, JOB_OK);
    assert_true(r.reward > 0.2499 && r.reward < 0.2501);
    /* no reward and no change: AnyRouter's silent second sign-in */
    outcome(0, &res, &err, 10, 10, &r);
    assert_int_equal(r.status, JOB_SKIPPED);
    assert_non_null(strstr(r.message, "already"));
    /* balances unknown: a success with an unknown reward */
    outcome(0, &res, &err, -1, -1, &r);
    assert_int_equal(r.status, JOB_OK);
    assert_true(r.reward < 0);
}

static void test_already_and_unsupported(void **state)
{
    (void)state;
    struct platform_checkin res = {.already_done = true, .reward = -1, .message = "今日已签到"};
    struct platform_error err = {0};
    struct job_result r;
    outcome(0, &res, &err, 10, 10, &r);
    assert_int_equal(r.status, JOB_SKIPPED);
    err.kind = PLATFORM_ERR_ALREADY_DONE;
    strcpy(err.message, "你今天已经签到过了");
    outcome(-1, NULL, &err, 10, -1, &r);
    assert_int_equal(r.status, JOB_SKIPPED);
    assert_non_null(strstr(r.message, "你今天已经签到过了"));
    err.kind = PLATFORM_ERR_UNSUPPORTED;
    strcpy(err.message, "签到功能未启用");
    outcome(-1, NULL, &err, 10, -1, &r);
    assert_int_equal(r.status, JOB_SKIPPED);
    assert_non_null(strstr(r.message, "no check-in"));
}

static void test_failures(void **state)
{
    (void)state;
    struct platform_error err = {.kind = PLATFORM_ERR_CAPTCHA};
    strcpy(err.message, "Turnstile token 为空");
    struct job_result r;
    outcome(-1, NULL, &err, 10, -1, &r);
    assert_int_equal(r.status, JOB_FAILED);
    assert_int_equal(r.kind, PLATFORM_ERR_CAPTCHA);
    assert_non_null(strstr(r.message, "captcha"));
    assert_true(r.reward < 0);
    err.kind = PLATFORM_ERR_BAD_RESPONSE;
    strcpy(err.message, "HTML instead of JSON");
    outcome(-1, NULL, &err, -1, -1, &r);
    assert_int_equal(r.status, JOB_FAILED);
    assert_non_null(strstr(r.message, "HTML"));
}

static void test_local_day(void **state)
{
    (void)state;
    char day[16];
    /* 2024-03-30T23:30Z: still the 30th in UTC, already the 31st in Berlin */
    int64_t t = tz_days_from_civil(2024, 3, 30) * 86400 + 23 * 3600 + 1800;
    job_local_day(NULL, t, day);
    assert_string_equal(day, "2024-03-30");
    tz_t *z = tz_load("Europe/Berlin", NULL);
    assert_non_null(z);
    job_local_day(z, t, day);
    assert_string_equal(day, "2024-03-31");
    tz_free(z);
    z = tz_load("America/New_York", NULL);
    job_local_day(z, t, day);
    assert_string_equal(day, "2024-03-30");
    tz_free(z);
    job_local_day(NULL, -1, day); /* before the epoch */
    assert_string_equal(day, "1969-12-31");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reward_from_response),
        cmocka_unit_test(test_reward_from_balance),
        cmocka_unit_test(test_already_and_unsupported),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_local_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
