/* test_routing_select.c — channel selection: the weighted formula (weight split, cost,
 * balance), priority layers, round robin, stable_first with observation traffic,
 * exclusions and last resort, half-open trials under concurrent threads, sticky sessions,
 * session keys, model splicing, failure kinds, Retry-After and the decision explanation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "base/clock.h"
#include "routing/select.h"
#include "routing/sticky.h"

static const char *const one_model[] = {"m"};

/* A snapshot with `n` accounts (ids 1..n, site = id) serving model "m", and one user route
 * "r" over them with the given priorities/weights. */
static struct routing_snapshot *build(size_t n, const int *prio, const unsigned *weight,
                                      const double *cost, const double *balance,
                                      const char *strategy)
{
    struct snapshot_input in[8];
    struct snapshot_route_channel_input ch[8];
    char names[8][24];
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "S%zu", i + 1);
        in[i] = (struct snapshot_input){.account_id = (int64_t)i + 1,
                                        .site_id = (int64_t)i + 1,
                                        .site_name = names[i],
                                        .base_url = "http://x",
                                        .api_key = "k",
                                        .models = one_model,
                                        .n_models = 1,
                                        .unit_cost = cost ? cost[i] : 0,
                                        .balance = balance ? balance[i] : 0};
        ch[i] = (struct snapshot_route_channel_input){.id = (int64_t)i + 1,
                                                      .account_id = (int64_t)i + 1,
                                                      .priority = prio ? prio[i] : 0,
                                                      .weight = weight ? weight[i] : 10,
                                                      .enabled = true};
    }
    struct snapshot_route_input r = {.id = 1,
                                     .pattern = "r",
                                     .strategy = strategy,
                                     .enabled = true,
                                     .channels = ch,
                                     .n_channels = n};
    struct snapshot_extra extra = {.routes = &r, .n_routes = 1};
    return snapshot_build_ex(in, n, &extra, 1);
}

static void reset_health(struct routing_snapshot *s)
{
    const struct route *r = snapshot_route_by_id(s, 1);
    for (size_t i = 0; i < r->n_channels; i++) {
        health_clear(r->channels[i].health);
        health_clear(r->channels[i].health->credential);
        health_clear(r->channels[i].health->site);
    }
}

static int64_t first_account(struct routing_snapshot *s, uint64_t session, uint64_t now)
{
    struct routing_request rq;
    routing_request_init(&rq, s, SLICE_LIT("r"), session);
    if (routing_select(&rq, now, 8) == 0) return 0;
    return s->channels[rq.picks[0].channel].account_id;
}

static void test_weighted_split(void **state)
{
    (void)state;
    unsigned w[] = {30, 10};
    struct routing_snapshot *s = build(2, NULL, w, NULL, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    int a = 0;
    for (int i = 0; i < 4000; i++) a += first_account(s, 0, now) == 1;
    double share = a / 4000.0;
    assert_true(share > 0.72 && share < 0.78); /* 3:1 → 75 % ± 3 % */
    snapshot_free(s);
}

static void test_cheaper_takes_the_traffic(void **state)
{
    (void)state;
    double cost[] = {10.0, 1.0};
    struct routing_snapshot *s = build(2, NULL, NULL, cost, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    int cheap = 0;
    for (int i = 0; i < 4000; i++) cheap += first_account(s, 0, now) == 2;
    assert_true(cheap / 4000.0 > 0.87); /* share ∝ 1/cost: 10/11 ≈ 91 % */
    /* stronger cost priority */
    struct routing_params p;
    routing_params_defaults(&p);
    p.cost_exponent = 3;
    routing_set_params(&p);
    cheap = 0;
    for (int i = 0; i < 4000; i++) cheap += first_account(s, 0, now) == 2;
    assert_true(cheap / 4000.0 > 0.99);
    routing_params_defaults(&p);
    routing_set_params(&p);
    snapshot_free(s);

    /* a model price wins over the manual unit cost */
    struct snapshot_input in[2] = {
        {.account_id = 1,
         .site_id = 1,
         .site_name = "A",
         .base_url = "http://a",
         .api_key = "k",
         .models = one_model,
         .n_models = 1,
         .unit_cost = 1.0},
        {.account_id = 2,
         .site_id = 2,
         .site_name = "B",
         .base_url = "http://b",
         .api_key = "k",
         .models = one_model,
         .n_models = 1,
         .unit_cost = 1.0},
    };
    struct snapshot_price prices[] = {{.site_id = 1, .model = "m", .unit_cost = 8.0},
                                      {.site_id = 0, .model = "m", .unit_cost = 2.0}};
    struct snapshot_extra extra = {.prices = prices, .n_prices = 2, .fallback_unit_cost = 3};
    s = snapshot_build_ex(in, 2, &extra, 1);
    const struct route *r = snapshot_find(s, SLICE_LIT("m"));
    for (size_t i = 0; i < r->n_channels; i++) {
        const struct route_channel *rc = &r->channels[i];
        assert_int_equal(rc->cost_source, COST_PRICE);
        assert_true(rc->unit_cost == (s->channels[rc->channel].site_id == 1 ? 8.0 : 2.0));
    }
    snapshot_free(s);
    /* no price, no manual cost: the fallback */
    in[0].unit_cost = 0;
    struct snapshot_extra fb = {.fallback_unit_cost = 3};
    s = snapshot_build_ex(in, 1, &fb, 1);
    r = snapshot_find(s, SLICE_LIT("m"));
    assert_int_equal(r->channels[0].cost_source, COST_FALLBACK);
    assert_true(r->channels[0].unit_cost == 3.0);
    snapshot_free(s);
}

/* An account's own price wins over its site's and over any site's; its components give the
 * estimated cost of an answer (per 1M tokens, or per call); a manual unit cost is per 1M
 * tokens; the fallback cost gives none. */
static void test_account_prices_and_estimated_cost(void **state)
{
    (void)state;
    static const char *const models[] = {"m", "img"};
    struct snapshot_input in[3];
    for (int i = 0; i < 3; i++)
        in[i] = (struct snapshot_input){.account_id = i + 1,
                                        .site_id = 1,
                                        .site_name = "A",
                                        .base_url = "http://a",
                                        .api_key = "k",
                                        .models = models,
                                        .n_models = 2,
                                        .unit_cost = i == 2 ? 4.0 : 0};
    struct snapshot_price prices[] = {
        {.site_id = 1,
         .model = "m",
         .unit_cost = 3.0,
         .input_per_million = 2,
         .output_per_million = 4,
         .per_call = -1},
        {.site_id = 1,
         .account_id = 1,
         .model = "m",
         .unit_cost = 1.5,
         .input_per_million = 1,
         .output_per_million = 2,
         .per_call = -1},
        {.site_id = 0,
         .model = "img",
         .unit_cost = 0.04,
         .per_call = 0.04,
         .input_per_million = -1,
         .output_per_million = -1},
        {.site_id = 1, .account_id = 2, .model = "img", .unit_cost = 0}, /* ignored: no cost */
    };
    struct snapshot_extra extra = {.prices = prices, .n_prices = 4, .fallback_unit_cost = 1};
    struct routing_snapshot *s = snapshot_build_ex(in, 3, &extra, 1);
    assert_non_null(s);
    const struct route *r = snapshot_find(s, SLICE_LIT("m"));
    assert_non_null(r);
    for (size_t i = 0; i < r->n_channels; i++) {
        const struct route_channel *rc = &r->channels[i];
        int64_t acct = s->channels[rc->channel].account_id;
        assert_int_equal(rc->cost_source, COST_PRICE); /* account 3's manual cost loses too */
        if (acct == 1) {
            assert_true(rc->unit_cost == 1.5);
            /* 1000 in × 1 + 500 out × 2 per 1M */
            assert_true(fabs(routing_estimated_cost(rc, 1000, 500) - 0.002) < 1e-12);
        } else {
            assert_true(rc->unit_cost == 3.0);
            assert_true(fabs(routing_estimated_cost(rc, 1000, 500) - 0.004) < 1e-12);
        }
        assert_true(routing_estimated_cost(rc, -1, -1) < 0); /* no tokens known */
    }
    r = snapshot_find(s, SLICE_LIT("img"));
    for (size_t i = 0; i < r->n_channels; i++) {
        const struct route_channel *rc = &r->channels[i];
        int64_t acct = s->channels[rc->channel].account_id;
        if (acct == 3) {
            /* the any-site per-call price wins over the manual cost */
            assert_int_equal(rc->cost_source, COST_PRICE);
        }
        assert_true(fabs(routing_estimated_cost(rc, 10, 10) - 0.04) < 1e-12);
        assert_true(fabs(routing_estimated_cost(rc, -1, -1) - 0.04) < 1e-12);
    }
    snapshot_free(s);
    /* manual and fallback costs */
    struct snapshot_extra none = {.fallback_unit_cost = 1};
    s = snapshot_build_ex(in, 3, &none, 2);
    r = snapshot_find(s, SLICE_LIT("m"));
    for (size_t i = 0; i < r->n_channels; i++) {
        const struct route_channel *rc = &r->channels[i];
        if (s->channels[rc->channel].account_id == 3) {
            assert_int_equal(rc->cost_source, COST_MANUAL);
            assert_true(fabs(routing_estimated_cost(rc, 200000, 50000) - 1.0) < 1e-12);
        } else {
            assert_int_equal(rc->cost_source, COST_FALLBACK);
            assert_true(routing_estimated_cost(rc, 200000, 50000) < 0);
        }
    }
    assert_true(routing_estimated_cost(NULL, 1, 1) < 0);
    snapshot_free(s);
}

static void test_low_balance_demoted(void **state)
{
    (void)state;
    double bal[] = {0.5, 100}; /* 0.5 < balance_low 5 → factor 0.2 (the floor is 0.2) */
    struct routing_snapshot *s = build(2, NULL, NULL, NULL, bal, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    int low = 0;
    for (int i = 0; i < 2000; i++) low += first_account(s, 0, now) == 1;
    assert_true(low / 2000.0 < 0.25);
    assert_true(low > 0); /* demoted, not excluded */
    snapshot_free(s);
}

static void test_priority_layers_and_exclusions(void **state)
{
    (void)state;
    health_set_policy(1000, 8000);
    int prio[] = {1, 0, 0};
    unsigned w[] = {10, 10, 0};
    struct routing_snapshot *s = build(3, prio, w, NULL, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    struct routing_request rq;
    routing_request_init(&rq, s, SLICE_LIT("r"), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(routing_select(&rq, now, 8), 2); /* weight 0 is excluded */
        assert_int_equal(s->channels[rq.picks[0].channel].account_id, 2);
        assert_int_equal(s->channels[rq.picks[1].channel].account_id, 1);
    }
    /* the first layer cooling → the fallback layer serves */
    health_record_failure(rq.picks[0].health, now, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_int_equal(routing_select(&rq, now, 8), 1);
    assert_int_equal(s->channels[rq.picks[0].channel].account_id, 1);
    assert_false(rq.picks[0].last_resort);
    /* everything cooling on our own backoff → last resort, soonest ready first */
    health_record_failure(rq.picks[0].health, now + 1, HEALTH_FAIL_SERVER_ERROR, 0);
    health_record_failure(rq.picks[0].health, now + 1, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_int_equal(routing_select(&rq, now + 2, 8), 2);
    assert_true(rq.picks[0].last_resort);
    assert_int_equal(s->channels[rq.picks[0].channel].account_id, 2); /* 1 s vs 2 s left */
    /* ... and a last resort takes the trial slot: one request at a time */
    struct routing_request rq2 = rq;
    assert_true(routing_attempt_begin(&rq, &rq.picks[0], now + 2));
    assert_false(routing_attempt_begin(&rq2, &rq2.picks[0], now + 2));
    routing_attempt_abandon(&rq, &rq.picks[0]);
    assert_true(routing_attempt_begin(&rq2, &rq2.picks[0], now + 2));
    routing_attempt_abandon(&rq2, &rq2.picks[0]);
    /* a provider-directed cooldown (quota) is never a last resort */
    reset_health(s);
    routing_select(&rq, now, 8);
    health_record_failure(rq.picks[0].health, now, HEALTH_FAIL_QUOTA, 0);
    health_record_failure(rq.picks[1].health, now, HEALTH_FAIL_RATE_LIMIT, 30000);
    assert_int_equal(routing_select(&rq, now, 8), 0);
    snapshot_free(s);
    health_set_policy(5000, 300000);
}

static void test_round_robin(void **state)
{
    (void)state;
    struct routing_snapshot *s = build(3, NULL, NULL, NULL, NULL, "round_robin");
    reset_health(s);
    uint64_t now = clock_mono_ns();
    int64_t seq[6];
    for (int i = 0; i < 6; i++) seq[i] = first_account(s, 0, now);
    for (int i = 0; i < 3; i++) {
        assert_int_not_equal(seq[i], seq[(i + 1) % 3]);
        assert_int_equal(seq[i], seq[i + 3]);
    }
    snapshot_free(s);
}

static void test_stable_first(void **state)
{
    (void)state;
    struct routing_snapshot *s = build(3, NULL, NULL, NULL, NULL, "stable_first");
    reset_health(s);
    uint64_t now = clock_mono_ns();
    const struct route *r = snapshot_route_by_id(s, 1);
    /* account 3 succeeds, 1 and 2 fail half the time (but are not cooling) */
    for (size_t i = 0; i < r->n_channels; i++) {
        struct channel_health *h = r->channels[i].health;
        int64_t acct = s->channels[r->channels[i].channel].account_id;
        for (int k = 0; k < 20; k++) {
            if (acct != 3 && k % 2) health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
            health_record_success(h, now, 100);
        }
    }
    int leader = 0, others = 0;
    for (int i = 0; i < 200; i++) {
        if (first_account(s, 0, now) == 3)
            leader++;
        else
            others++;
    }
    /* one request in ROUTING_OBSERVE_EVERY (20) observes another channel */
    assert_int_equal(others, 10);
    assert_int_equal(leader, 190);
    snapshot_free(s);
}

/* ---- half-open: exactly one trial under concurrent threads ---- */

struct trial_arg {
    struct routing_request rq;
    uint64_t now;
    pthread_barrier_t *bar;
    int won;
};

static void *trial_thread(void *p)
{
    struct trial_arg *a = p;
    pthread_barrier_wait(a->bar);
    a->won = routing_attempt_begin(&a->rq, &a->rq.picks[0], a->now);
    return NULL;
}

static void test_half_open_single_trial(void **state)
{
    (void)state;
    health_set_policy(1000, 8000);
    struct routing_snapshot *s = build(1, NULL, NULL, NULL, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    struct routing_request rq;
    routing_request_init(&rq, s, SLICE_LIT("r"), 0);
    assert_int_equal(routing_select(&rq, now, 8), 1);
    struct channel_health *h = rq.picks[0].health;
    health_record_failure(h, now, HEALTH_FAIL_TIMEOUT, 0);
    uint64_t later = now + 1500000000ull; /* cooldown of 1 s over: half-open */
    assert_true(health_is_half_open(h, later));
    assert_int_equal(routing_select(&rq, later, 8), 1);
    assert_false(rq.picks[0].last_resort);

    enum { T = 8 };
    pthread_t th[T];
    struct trial_arg args[T];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T);
    for (int i = 0; i < T; i++) {
        args[i] = (struct trial_arg){.rq = rq, .now = later, .bar = &bar};
        pthread_create(&th[i], NULL, trial_thread, &args[i]);
    }
    int winners = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        winners += args[i].won;
    }
    pthread_barrier_destroy(&bar);
    assert_int_equal(winners, 1);
    /* while the trial is in flight the channel is excluded */
    assert_int_equal(routing_select(&rq, later, 8), 0);
    /* the trial's success closes the circuit */
    health_record_success(h, later, 50);
    assert_int_equal(health_state(h, later), HEALTH_HEALTHY);
    assert_int_equal(routing_select(&rq, later, 8), 1);
    assert_true(routing_attempt_begin(&rq, &rq.picks[0], later)); /* no trial needed */
    snapshot_free(s);
    health_set_policy(5000, 300000);
}

/* ---- sticky sessions ---- */

static void test_sticky_sessions(void **state)
{
    (void)state;
    assert_int_equal(sticky_init(1024, 60000), 0);
    health_set_policy(1000, 8000);
    struct routing_snapshot *s = build(4, NULL, NULL, NULL, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    uint64_t session = 0x1234567;
    struct routing_request rq;
    routing_request_init(&rq, s, SLICE_LIT("r"), session);
    routing_select(&rq, now, 8);
    /* the conversation's first success binds it */
    struct route_pick bound = rq.picks[2];
    routing_report_success(&rq, &bound, now, 10);
    for (int i = 0; i < 30; i++)
        assert_int_equal(first_account(s, session, now), s->channels[bound.channel].account_id);
    /* another session is not bound */
    int differs = 0;
    for (int i = 0; i < 40; i++)
        differs += first_account(s, 0xabcdef, now) != s->channels[bound.channel].account_id;
    assert_true(differs > 0);
    /* the bound channel failing breaks stickiness */
    routing_request_init(&rq, s, SLICE_LIT("r"), session);
    routing_select(&rq, now, 8);
    assert_ptr_equal(rq.sticky, bound.health);
    routing_report_failure(&rq, &rq.picks[0], now, HEALTH_FAIL_SERVER_ERROR, 0);
    routing_select(&rq, now, 8);
    assert_null(rq.sticky);
    for (size_t i = 0; i < rq.n_picks; i++) assert_ptr_not_equal(rq.picks[i].health, bound.health);
    /* an unhealthy binding (cooling) found at selection is dropped too */
    routing_report_success(&rq, &rq.picks[0], now, 10);
    struct channel_health *h2 = rq.picks[0].health;
    health_record_failure(h2, now, HEALTH_FAIL_TIMEOUT, 0);
    routing_select(&rq, now, 8);
    assert_null(rq.sticky);
    snapshot_free(s);
    sticky_shutdown();
    health_set_policy(5000, 300000);
}

static void test_sticky_table(void **state)
{
    (void)state;
    int a, b;
    assert_int_equal(sticky_init(64 * 4, 1000), 0); /* 4 entries per stripe */
    uint64_t now = 1000000000ull;
    sticky_put(42, &a, now);
    assert_ptr_equal(sticky_get(42, now + 500000000ull), &a); /* refreshes the TTL */
    assert_ptr_equal(sticky_get(42, now + 1400000000ull), &a);
    assert_null(sticky_get(42, now + 2500000000ull)); /* expired */
    assert_int_equal(sticky_count(), 0);
    sticky_put(7, &a, now);
    sticky_drop(7, &b); /* not its value: kept */
    assert_ptr_equal(sticky_get(7, now), &a);
    sticky_drop(7, NULL);
    assert_null(sticky_get(7, now));
    /* bounded: far more keys than capacity, never more entries than capacity */
    for (uint64_t k = 1; k <= 5000; k++) sticky_put(k, &b, now);
    assert_true(sticky_count() <= 256);
    assert_ptr_equal(sticky_get(5000, now), &b); /* the most recent survive */
    sticky_shutdown();
    /* off: every lookup misses */
    sticky_put(1, &a, now);
    assert_null(sticky_get(1, now));
}

/* ---- request helpers ---- */

static void test_session_keys(void **state)
{
    (void)state;
    pool_t *pool = pool_create();
    struct json_scan scan;
    const char *b1 = "{\"model\":\"x\",\"metadata\":{\"user_id\":\"{\\\"device_id\\\":\\\"d\\\","
                     "\\\"session_id\\\":\\\"s-1\\\"}\"}}";
    assert_int_equal(json_scan(pool, b1, strlen(b1), &scan), 0);
    uint64_t k1 = routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL);
    const char *b2 =
        "{\"model\":\"y\",\"metadata\":{\"user_id\":\"{\\\"device_id\\\":\\\"other\\\","
        "\\\"session_id\\\":\\\"s-1\\\"}\"}}";
    assert_int_equal(json_scan(pool, b2, strlen(b2), &scan), 0);
    uint64_t k2 = routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL);
    assert_true(k1 != 0);
    assert_true(k1 == k2); /* the session id, not the whole user_id */
    const char *b3 = "{\"metadata\":{\"user_id\":\"user_abc_account__session_s-1\"}}";
    assert_int_equal(json_scan(pool, b3, strlen(b3), &scan), 0);
    assert_true(routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL) == k1);
    /* the header wins over the body */
    uint64_t kh = routing_session_key(pool, &scan, SLICE_LIT("hdr"), SLICE_NULL, SLICE_NULL);
    assert_true(kh != 0 && kh != k1);
    const char *b4 = "{\"prompt_cache_key\":\"pc\",\"user\":\"u\"}";
    assert_int_equal(json_scan(pool, b4, strlen(b4), &scan), 0);
    uint64_t kp = routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL);
    uint64_t kt = routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_LIT("t"));
    assert_true(kp != 0 && kt != 0 && kp != kt);
    const char *b5 = "{\"user\":\"u\"}";
    assert_int_equal(json_scan(pool, b5, strlen(b5), &scan), 0);
    uint64_t ku = routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL);
    assert_true(ku != 0 && ku != kp);
    const char *b6 = "{\"model\":\"x\",\"user\":5}";
    assert_int_equal(json_scan(pool, b6, strlen(b6), &scan), 0);
    assert_true(routing_session_key(pool, &scan, SLICE_NULL, SLICE_NULL, SLICE_NULL) == 0);
    assert_true(routing_session_key(pool, NULL, SLICE_NULL, SLICE_NULL, SLICE_NULL) == 0);
    pool_destroy(pool);
}

static void test_splice_model(void **state)
{
    (void)state;
    pool_t *pool = pool_create();
    const char *body = "{\"model\":\"alias\",\"messages\":[],\"stream\":true}";
    struct slice out;
    assert_int_equal(
        routing_splice_model(pool, slice_from(body), SLICE_LIT("real \"model\""), &out), 0);
    assert_true(
        slice_eq_str(out, "{\"model\":\"real \\\"model\\\"\",\"messages\":[],\"stream\":true}"));
    assert_int_equal(routing_splice_model(pool, slice_from(body), SLICE_LIT("alias"), &out), 0);
    assert_ptr_equal(out.p, body); /* unchanged: no copy */
    assert_int_equal(routing_splice_model(pool, SLICE_LIT("[1]"), SLICE_LIT("x"), &out), -1);
    pool_destroy(pool);
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(routing_retry_after_ms(SLICE_LIT("30"), 0), 30000);
    assert_int_equal(routing_retry_after_ms(SLICE_LIT(" 2 "), 0), 2000);
    assert_int_equal(routing_retry_after_ms(SLICE_LIT("soon"), 0), 0);
    assert_int_equal(routing_retry_after_ms(SLICE_NULL, 0), 0);
    /* an HTTP date 90 s ahead of "now" (Sun, 06 Nov 1994 08:49:37 GMT = 784111777) */
    assert_int_equal(routing_retry_after_ms(SLICE_LIT("Sun, 06 Nov 1994 08:49:37 GMT"),
                                            (784111777LL - 90) * 1000),
                     90000);
    assert_int_equal(routing_retry_after_ms(SLICE_LIT("Sun, 06 Nov 1994 08:49:37 GMT"),
                                            (784111777LL + 10) * 1000),
                     0);
}

static void test_explain(void **state)
{
    (void)state;
    double cost[] = {1.0, 2.0, 1.0};
    int prio[] = {0, 0, 1};
    struct routing_snapshot *s = build(3, prio, NULL, cost, NULL, NULL);
    reset_health(s);
    uint64_t now = clock_mono_ns();
    struct route_match m;
    struct routing_explain_entry *x = NULL;
    size_t n = routing_explain(s, SLICE_LIT("r"), now, &m, &x);
    assert_int_equal(n, 3);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i].probability;
    assert_true(sum > 0.999 && sum < 1.001);
    for (size_t i = 0; i < n; i++) {
        int64_t acct = s->channels[x[i].ev.rc->channel].account_id;
        if (acct == 1) {
            assert_true(x[i].probability > 0.6); /* 2/3 by cost */
            assert_non_null(strstr(x[i].reasons, "cheapest"));
        }
        if (acct == 2) assert_non_null(strstr(x[i].reasons, "demoted"));
        if (acct == 3) {
            assert_true(x[i].probability == 0);
            assert_non_null(strstr(x[i].reasons, "fallback layer"));
        }
    }
    free(x);
    /* a cooling channel is explained as excluded with its scope and cause */
    const struct route *r = snapshot_route_by_id(s, 1);
    health_record_failure(r->channels[0].health, now, HEALTH_FAIL_QUOTA, 0);
    n = routing_explain(s, SLICE_LIT("r"), now, &m, &x);
    bool saw = false;
    for (size_t i = 0; i < n; i++)
        if (strstr(x[i].reasons, "credential cooling down") && strstr(x[i].reasons, "quota"))
            saw = true, assert_int_equal(x[i].order, 0);
    assert_true(saw);
    free(x);
    assert_int_equal(routing_explain(s, SLICE_LIT("nope"), now, &m, &x), 0);
    assert_null(m.route);
    snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_split),
        cmocka_unit_test(test_cheaper_takes_the_traffic),
        cmocka_unit_test(test_account_prices_and_estimated_cost),
        cmocka_unit_test(test_low_balance_demoted),
        cmocka_unit_test(test_priority_layers_and_exclusions),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_stable_first),
        cmocka_unit_test(test_half_open_single_trial),
        cmocka_unit_test(test_sticky_sessions),
        cmocka_unit_test(test_sticky_table),
        cmocka_unit_test(test_session_keys),
        cmocka_unit_test(test_splice_model),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_explain),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    routing_thread_cleanup();
    health_registry_free();
    return rc;
}
