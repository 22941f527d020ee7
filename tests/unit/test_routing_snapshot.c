/* test_routing_snapshot.c — building snapshots, model lookup, candidate selection with
 * cooldowns, and the retire-on-last-release rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/clock.h"
#include "routing/select.h"
#include "routing/snapshot.h"

static const char *const models_a[] = {"gpt-4o", "gpt-4o-mini"};
static const char *const models_b[] = {"gpt-4o-mini", "text-embedding-3-small", "gpt-4o-mini"};

static struct routing_snapshot *two_sites(void)
{
    struct snapshot_input in[2] = {
        {.account_id = 11,
         .site_id = 1,
         .site_name = "A",
         .platform = "openai",
         .base_url = "http://a.example/v1/",
         .api_key = "sk-a",
         .custom_headers_json = "{\"X-Site\":\"a\",\"n\":1}",
         .models = models_a,
         .n_models = 2},
        {.account_id = 22,
         .site_id = 2,
         .site_name = "B",
         .platform = "openai",
         .base_url = "http://b.example",
         .api_key = "sk-b",
         .custom_headers_json = "not json",
         .models = models_b,
         .n_models = 3},
    };
    return snapshot_build(in, 2, 7);
}

static void test_build_and_find(void **state)
{
    (void)state;
    struct routing_snapshot *s = two_sites();
    assert_non_null(s);
    assert_int_equal(s->n_channels, 2);
    assert_int_equal(s->n_routes, 3); /* gpt-4o, gpt-4o-mini, text-embedding-3-small */
    assert_string_equal(s->channels[0].base_url, "http://a.example/v1"); /* trailing / cut */
    assert_int_equal(s->channels[0].n_headers, 1); /* non-string values skipped */
    assert_string_equal(s->channels[0].headers[0].name, "X-Site");
    assert_int_equal(s->channels[1].n_headers, 0); /* invalid JSON ignored */

    const struct route *r = snapshot_find(s, SLICE_LIT("gpt-4o-mini"));
    assert_non_null(r);
    assert_int_equal(r->n_channels, 2); /* duplicate model on B counted once */
    assert_non_null(snapshot_find(s, SLICE_LIT("gpt-4o")));
    assert_null(snapshot_find(s, SLICE_LIT("gpt-4")));
    assert_null(snapshot_find(s, SLICE_LIT("gpt-4o-mini-x")));
    assert_null(snapshot_find(s, SLICE_LIT("")));
    snapshot_free(s);
}

static void test_candidates_skip_cooling(void **state)
{
    (void)state;
    health_set_policy(1000, 8000);
    struct routing_snapshot *s = two_sites();
    struct routing_request rq;
    routing_request_init(&rq, s, SLICE_LIT("gpt-4o-mini"), 0);
    assert_non_null(rq.match.route);
    assert_int_equal(rq.match.via, ROUTE_VIA_AUTO);
    uint64_t now = clock_mono_ns();
    assert_int_equal(routing_select(&rq, now, 4), 2);

    /* a failing channel is left out while it cools down (the other one is usable) */
    struct channel_health *ha = NULL;
    for (size_t i = 0; i < rq.match.route->n_channels; i++)
        if (s->channels[rq.match.route->channels[i].channel].account_id == 11)
            ha = rq.match.route->channels[i].health;
    assert_non_null(ha);
    health_record_failure(ha, now, HEALTH_FAIL_SERVER_ERROR, 0);
    for (int i = 0; i < 4; i++) {
        size_t n = routing_select(&rq, now, 4);
        assert_int_equal(n, 1);
        assert_int_equal(s->channels[rq.picks[0].channel].account_id, 22);
    }
    /* max limits the count */
    health_record_success(ha, now, 0);
    assert_int_equal(routing_select(&rq, now, 1), 1);
    assert_false(health_is_cooling(ha, now));
    snapshot_free(s);
}

static void test_cooldown_backoff(void **state)
{
    (void)state;
    health_set_policy(1000, 4000);
    struct channel_health *h = health_for_account(999);
    assert_ptr_equal(h, health_for_account(999)); /* one record per account */
    uint64_t now = 1000000000ull;
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0);
    assert_true(health_is_cooling(h, now + 999000000ull));
    assert_false(health_is_cooling(h, now + 1001000000ull));
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0); /* streak 2 → 2 s */
    assert_true(health_is_cooling(h, now + 1999000000ull));
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0); /* 4 s */
    health_record_failure(h, now, HEALTH_FAIL_SERVER_ERROR, 0); /* capped at 4 s */
    assert_true(health_is_cooling(h, now + 3999000000ull));
    assert_false(health_is_cooling(h, now + 4001000000ull));
    health_clear(h);
}

static void test_release_retires(void **state)
{
    (void)state;
    struct routing_snapshot *s = two_sites();
    atomic_store(&s->refs, 2);
    snapshot_release(s);
    assert_int_equal(snapshot_free_retired(), 0);
    snapshot_ref(s);
    snapshot_release(s);
    snapshot_release(s);
    assert_int_equal(snapshot_free_retired(), 1);
}

static void test_empty_snapshot(void **state)
{
    (void)state;
    struct routing_snapshot *s = snapshot_build(NULL, 0, 1);
    assert_non_null(s);
    assert_int_equal(s->n_routes, 0);
    assert_null(snapshot_find(s, SLICE_LIT("x")));
    snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_find),   cmocka_unit_test(test_candidates_skip_cooling),
        cmocka_unit_test(test_cooldown_backoff), cmocka_unit_test(test_release_retires),
        cmocka_unit_test(test_empty_snapshot),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    routing_thread_cleanup();
    health_registry_free();
    return rc;
}
