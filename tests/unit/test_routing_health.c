/* test_routing_health.c — the health state machine: recent-streak backoff (capped, forgotten
 * after a quiet spell), recovery, Retry-After, scopes (quota/auth cool the credential only,
 * rate limits the channel only, connect failures the site too), client errors ignored,
 * degraded by failure rate and latency, and the persistence round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "routing/health.h"

#define S  1000000000ull
#define MS 1000000ull

static void set_policy(void)
{
    struct health_policy p;
    health_policy_defaults(&p);
    p.cooldown_base_ms = 1000;
    p.cooldown_max_ms = 8000;
    p.streak_forget_ms = 60000;
    p.quota_cooldown_ms = 3600000;
    p.auth_cooldown_ms = 1800000;
    health_set_policy_full(&p);
}

static void test_streak_backoff_capped_and_forgotten(void **state)
{
    (void)state;
    set_policy();
    struct channel_health *h = health_for_channel(1, 100, "m-backoff");
    uint64_t now = 1000 * S;
    unsigned expect_ms[] = {1000, 2000, 4000, 8000, 8000, 8000};
    for (int i = 0; i < 6; i++) {
        health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
        uint64_t until = atomic_load(&h->cooldown_until_ns);
        assert_true(until == now + expect_ms[i] * MS);
        assert_int_equal(health_state(h, now), HEALTH_UNHEALTHY);
        now += 10 * S;
    }
    /* a failure long after the previous one starts from the base again (recent streak) */
    now += 120 * S;
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_true(atomic_load(&h->cooldown_until_ns) == now + 1000 * MS);
    assert_int_equal(atomic_load(&h->streak), 1);
    /* recovery: the cooldown ends → half-open; a success closes it */
    assert_true(health_is_cooling(h, now + 999 * MS));
    assert_true(health_is_half_open(h, now + 1001 * MS));
    assert_int_equal(health_state(h, now + 1001 * MS), HEALTH_UNHEALTHY);
    health_record_success(h, now + 2 * S, 100);
    assert_false(health_is_half_open(h, now + 2 * S));
    assert_int_equal(atomic_load(&h->streak), 0);
    /* the next failure after a success starts at the base, whatever the lifetime count */
    health_record_failure(h, now + 3 * S, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_true(atomic_load(&h->cooldown_until_ns) == now + 3 * S + 1000 * MS);
    assert_true(atomic_load(&h->failures) >= 8);
}

static void test_retry_after(void **state)
{
    (void)state;
    set_policy();
    struct channel_health *h = health_for_channel(2, 200, "m-ra");
    uint64_t now = 5000 * S;
    health_record_failure(h, now, HEALTH_FAIL_RATE_LIMIT, 30000);
    assert_true(atomic_load(&h->cooldown_until_ns) == now + 30 * S); /* stretched past the cap */
    assert_true(atomic_load(&h->cooldown_hard));
    assert_int_equal(atomic_load(&h->cooldown_kind), HEALTH_FAIL_RATE_LIMIT);
    /* a shorter failure later never shortens it */
    health_record_failure(h, now + S, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_true(atomic_load(&h->cooldown_until_ns) == now + 30 * S);
    /* without Retry-After a rate limit is a soft backoff */
    struct channel_health *g = health_for_channel(2, 201, "m-ra");
    health_record_failure(g, now, HEALTH_FAIL_RATE_LIMIT, 0);
    assert_false(atomic_load(&g->cooldown_hard));
    assert_true(atomic_load(&g->cooldown_until_ns) == now + 1000 * MS);
}

static void test_scopes(void **state)
{
    (void)state;
    set_policy();
    uint64_t now = 9000 * S;
    struct channel_health *a1 = health_for_channel(3, 300, "model-x");
    struct channel_health *a2 = health_for_channel(3, 300, "model-y"); /* same credential */
    struct channel_health *b1 = health_for_channel(3, 301, "model-x"); /* same site */
    assert_ptr_equal(a1->credential, a2->credential);
    assert_ptr_equal(a1->site, b1->site);
    assert_ptr_not_equal(a1->credential, b1->credential);

    /* rate limit: that channel only */
    health_record_failure(a1, now, HEALTH_FAIL_RATE_LIMIT, 0);
    assert_true(health_is_cooling(a1, now));
    assert_false(health_is_cooling(a1->credential, now));
    assert_false(health_is_cooling(a2, now));
    health_record_success(a1, now + 2 * S, 0);

    /* quota: the credential, long; not its site, not the other credential */
    health_record_failure(a1, now, HEALTH_FAIL_QUOTA, 0);
    assert_true(health_is_cooling(a1->credential, now + 3599 * S));
    assert_false(health_is_cooling(a1->credential, now + 3601 * S));
    assert_true(atomic_load(&a1->credential->cooldown_hard));
    assert_false(health_is_cooling(a1, now));
    assert_false(health_is_cooling(a1->site, now));
    assert_false(health_is_cooling(b1->credential, now));
    assert_int_equal(atomic_load(&a1->failures),
                     1); /* only the rate limit: quota is not the channel's */
    /* quota with a provider reset hint beyond the default */
    health_record_failure(a2, now, HEALTH_FAIL_QUOTA, 7200 * 1000);
    assert_true(health_is_cooling(a2->credential, now + 7199 * S));
    health_clear(a1->credential);

    /* auth: the credential */
    health_record_failure(a2, now, HEALTH_FAIL_AUTH, 0);
    assert_true(health_is_cooling(a2->credential, now + 1799 * S));
    assert_int_equal(atomic_load(&a2->credential->cooldown_kind), HEALTH_FAIL_AUTH);
    health_clear(a2->credential);

    /* connect: the channel and its site (every credential on it) */
    health_record_failure(b1, now, HEALTH_FAIL_CONNECT, 0);
    assert_true(health_is_cooling(b1, now));
    assert_true(health_is_cooling(b1->site, now));
    assert_true(health_is_cooling(a1->site, now)); /* the same site record */
    /* timeouts and server errors stay on the channel */
    health_record_success(b1, now + S, 0);
    health_record_failure(b1, now + 2 * S, HEALTH_FAIL_TIMEOUT, 0);
    assert_false(health_is_cooling(b1->site, now + 2 * S));

    /* client errors are never counted */
    struct channel_health *c = health_for_channel(4, 400, "m-client");
    for (int i = 0; i < 10; i++) health_record_failure(c, now, HEALTH_FAIL_CLIENT_ERROR, 60000);
    assert_false(health_is_cooling(c, now));
    assert_int_equal(atomic_load(&c->failures), 0);
    assert_int_equal(health_state(c, now), HEALTH_HEALTHY);
}

static void test_degraded(void **state)
{
    (void)state;
    set_policy();
    uint64_t now = 20000 * S;
    struct channel_health *h = health_for_channel(5, 500, "m-deg");
    /* 2 failures in 8 outcomes over the last minute = 25 % ≥ 20 % → degraded */
    for (int i = 0; i < 6; i++) health_record_success(h, now, 100);
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
    health_record_success(h, now + 2 * S, 100);
    health_record_failure(h, now + 2 * S, HEALTH_FAIL_SERVER_ERROR, 0);
    health_record_success(h, now + 4 * S, 100);
    assert_int_equal(health_state(h, now + 4 * S), HEALTH_DEGRADED);
    /* the window slides: a minute later the failures are forgotten */
    assert_int_equal(health_state(h, now + 80 * S), HEALTH_HEALTHY);
    unsigned su, fa;
    health_window(h, now + 4 * S, &su, &fa);
    assert_int_equal(su, 8);
    assert_int_equal(fa, 2);
    /* slow first bytes degrade too */
    struct channel_health *slow = health_for_channel(5, 501, "m-slow");
    health_record_success(slow, now, 25000);
    assert_int_equal(health_state(slow, now), HEALTH_DEGRADED);
    assert_string_equal(health_state_name(HEALTH_DEGRADED), "degraded");
}

static void test_persistence_round_trip(void **state)
{
    (void)state;
    set_policy();
    uint64_t now = 30000 * S;
    int64_t wall = 1700000000000LL;
    struct channel_health *h = health_for_channel(6, 600, "m-persist");
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
    health_record_failure(h, now, HEALTH_FAIL_RATE_LIMIT, 120000); /* 120 s, hard */
    health_record_failure(h, now, HEALTH_FAIL_QUOTA, 0);           /* credential, 1 h */
    health_record_success(health_for_channel(6, 601, "m-ok"), now, 300);

    struct health_saved *rows;
    size_t n;
    assert_int_equal(health_export(now, wall, &rows, &n), 0);
    assert_true(n >= 3);
    /* copy what we keep (models are borrowed from the records we are about to free) */
    struct health_saved *copy = calloc(n, sizeof *copy);
    char(*models)[64] = calloc(n, 64);
    for (size_t i = 0; i < n; i++) {
        copy[i] = rows[i];
        if (rows[i].model) {
            strncpy(models[i], rows[i].model, 63);
            copy[i].model = models[i];
        }
    }
    free(rows);
    health_registry_free();

    /* "restart": a different monotonic clock, 20 s of wall time later */
    uint64_t now2 = 7 * S;
    int64_t wall2 = wall + 20000;
    assert_int_equal(health_import(copy, n, now2, wall2), n);
    struct channel_health *h2 = health_for_channel(6, 600, "m-persist");
    assert_int_equal(atomic_load(&h2->streak), 2);
    assert_true(health_is_cooling(h2, now2 + 99 * S)); /* 120 − 20 s left */
    assert_false(health_is_cooling(h2, now2 + 101 * S));
    assert_true(atomic_load(&h2->cooldown_hard));
    assert_true(health_is_cooling(h2->credential, now2 + 3500 * S));
    assert_false(health_is_cooling(h2->credential, now2 + 3590 * S));
    assert_int_equal(atomic_load(&h2->failures), 2);
    struct channel_health *ok = health_for_channel(6, 601, "m-ok");
    assert_int_equal(atomic_load(&ok->successes), 1);
    assert_int_equal(atomic_load(&ok->latency_ms), 300);
    assert_int_equal(health_state(ok, now2), HEALTH_HEALTHY);
    /* a cooldown that ended while stopped comes back half-open */
    struct health_saved past = copy[0];
    for (size_t i = 0; i < n; i++)
        if (copy[i].scope == HEALTH_SCOPE_CHANNEL && copy[i].streak) past = copy[i];
    past.id = 602;
    past.cooldown_until_wall_ms = wall2 - 5000;
    assert_int_equal(health_import(&past, 1, now2, wall2), 1);
    struct channel_health *p = health_for_channel(6, 602, past.model);
    assert_true(health_is_half_open(p, now2));
    free(copy);
    free(models);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streak_backoff_capped_and_forgotten),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_degraded),
        cmocka_unit_test(test_persistence_round_trip),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    health_registry_free();
    return rc;
}
