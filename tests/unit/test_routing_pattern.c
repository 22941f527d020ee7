/* test_routing_pattern.c — route patterns (exact, glob, bounded PCRE2 with hostile inputs)
 * and the resolution order of routes in a snapshot (user exact > automatic > patterns by
 * specificity), aliases, groups, model mapping and the per-thread memo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "routing/pattern.h"
#include "routing/select.h"
#include "routing/snapshot.h"

static enum pattern_result match_text(const char *pat, const char *model)
{
    struct pattern p;
    char err[256];
    assert_int_equal(pattern_compile(&p, pat, err, sizeof err), 0);
    enum pattern_result r = pattern_match(&p, slice_from(model));
    pattern_free(&p);
    return r;
}

static void test_kinds_and_globs(void **state)
{
    (void)state;
    assert_int_equal(pattern_kind_of("gpt-4o"), PATTERN_EXACT);
    assert_int_equal(pattern_kind_of("claude-*"), PATTERN_GLOB);
    assert_int_equal(pattern_kind_of("gpt-4?"), PATTERN_GLOB);
    assert_int_equal(pattern_kind_of("re:^x$"), PATTERN_REGEX);

    assert_int_equal(match_text("claude-*", "claude-3-opus"), PATTERN_MATCH);
    assert_int_equal(match_text("claude-*", "claude-"), PATTERN_MATCH);
    assert_int_equal(match_text("claude-*", "claude"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("claude-*", "xclaude-3"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("*", ""), PATTERN_MATCH);
    assert_int_equal(match_text("*", "anything at all"), PATTERN_MATCH);
    assert_int_equal(match_text("gpt-4?", "gpt-4o"), PATTERN_MATCH);
    assert_int_equal(match_text("gpt-4?", "gpt-4"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("gpt-4?", "gpt-4oo"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("*-mini", "gpt-4o-mini"), PATTERN_MATCH);
    assert_int_equal(match_text("a*b*c", "aXXbYYc"), PATTERN_MATCH);
    assert_int_equal(match_text("a*b*c", "aXXbYY"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("gpt-4o", "gpt-4o"), PATTERN_MATCH);
    assert_int_equal(match_text("gpt-4o", "gpt-4o-mini"), PATTERN_NO_MATCH);

    /* a pathological glob stays linear-ish: no exponential backtracking */
    char subject[4001];
    memset(subject, 'a', 4000);
    subject[4000] = 0;
    uint64_t t0 = clock_mono_ns();
    assert_false(glob_match("*a*a*a*a*a*a*a*a*b", slice_from(subject)));
    assert_true(clock_mono_ns() - t0 < 2000000000ull);
}

static void test_regex_basic(void **state)
{
    (void)state;
    assert_int_equal(match_text("re:^gpt-4o(-mini)?$", "gpt-4o"), PATTERN_MATCH);
    assert_int_equal(match_text("re:^gpt-4o(-mini)?$", "gpt-4o-mini"), PATTERN_MATCH);
    assert_int_equal(match_text("re:^gpt-4o(-mini)?$", "gpt-4o-nano"), PATTERN_NO_MATCH);
    assert_int_equal(match_text("re:sonnet", "claude-3-5-sonnet-latest"), PATTERN_MATCH);
    /* a subject over 256 bytes never matches a regex */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(match_text("re:x+", longname), PATTERN_NO_MATCH);
    pattern_thread_cleanup();
}

static void test_regex_hostile(void **state)
{
    (void)state;
    struct pattern p;
    char err[256];
    assert_int_equal(pattern_compile(&p, "re:^(a|aa)+$", err, sizeof err), 0);
    char subject[64];
    memset(subject, 'a', 40);
    subject[40] = '!';
    subject[41] = 0;
    uint64_t t0 = clock_mono_ns();
    enum pattern_result r = pattern_match(&p, slice_from(subject));
    uint64_t took = clock_mono_ns() - t0;
    assert_int_equal(r, PATTERN_ERR_LIMIT); /* an error, never a silent no-match */
    assert_true(took < 100000000ull);       /* bounded (≈ 0.1 ms with JIT; ASan is slower) */
    /* the same pattern on a benign subject works */
    assert_int_equal(pattern_match(&p, SLICE_LIT("aaaa")), PATTERN_MATCH);
    pattern_free(&p);

    /* refused at compile time, each with a reason */
    const char *refused[] = {"re:(a)\\1",
                             "re:(?<n>a)\\k<n>",
                             "re:(a)\\g1",
                             "re:(a(?R)?b)",
                             "re:(a(?1)?b)",
                             "re:(?<n>a)(?&n)",
                             "re:(*LIMIT_MATCH=99999999)a",
                             "re:(unclosed",
                             "re:"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        err[0] = 0;
        assert_int_equal(pattern_compile(&p, refused[i], err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(pattern_compile(&p, "re:(unclosed", err, sizeof err), -1);
    assert_non_null(strstr(err, "offset"));

    /* 256 bytes accepted, 257 refused */
    char big[3 + 258];
    memcpy(big, "re:", 3);
    memset(big + 3, 'a', 256);
    big[3 + 256] = 0;
    assert_int_equal(pattern_compile(&p, big, err, sizeof err), 0);
    pattern_free(&p);
    big[3 + 256] = 'a';
    big[3 + 257] = 0;
    assert_int_equal(pattern_compile(&p, big, err, sizeof err), -1);
    assert_non_null(strstr(err, "257"));
    pattern_thread_cleanup();
}

/* ---- resolution in a snapshot ---- */

static const char *const models_a[] = {"claude-3-opus", "gpt-4o"};

static const struct snapshot_route_channel_input ch_a[] = {
    {.id = 1, .account_id = 11, .priority = 0, .weight = 10, .enabled = true}};
static const struct snapshot_route_channel_input ch_mapped[] = {
    {.id = 2,
     .account_id = 11,
     .source_model = "claude-3-opus-20240229",
     .weight = 10,
     .enabled = true}};
static const int64_t group_sources[] = {101, 102};

static struct routing_snapshot *build_user(const struct snapshot_route_input *routes, size_t n)
{
    static const struct snapshot_input in[] = {
        {.account_id = 11,
         .site_id = 1,
         .site_name = "A",
         .base_url = "http://a",
         .api_key = "k",
         .models = models_a,
         .n_models = 2},
    };
    struct snapshot_extra extra = {.routes = routes, .n_routes = n};
    return snapshot_build_ex(in, 1, &extra, 1);
}

static void test_resolution_order(void **state)
{
    (void)state;
    const struct snapshot_route_input routes[] = {
        {.id = 101, .pattern = "claude-*", .enabled = true, .channels = ch_a, .n_channels = 1},
        {.id = 102, .pattern = "claude-3-*", .enabled = true, .channels = ch_a, .n_channels = 1},
        {.id = 103,
         .pattern = "re:^claude-3-.*$",
         .enabled = true,
         .channels = ch_a,
         .n_channels = 1},
        {.id = 104, .pattern = "*", .enabled = true, .channels = ch_a, .n_channels = 1},
        {.id = 105,
         .pattern = "gpt-4o",
         .display_name = "my-gpt",
         .strategy = "round_robin",
         .enabled = true},
        {.id = 106,
         .pattern = "re:^o[0-9]+(-mini)?$",
         .enabled = true,
         .channels = ch_a,
         .n_channels = 1},
        {.id = 107, .pattern = "disabled-one", .enabled = false, .channels = ch_a, .n_channels = 1},
        {.id = 108,
         .pattern = "claude-3-opus-mapped",
         .enabled = true,
         .channels = ch_mapped,
         .n_channels = 1},
        {.id = 109,
         .pattern = "team-claude",
         .group = true,
         .enabled = true,
         .source_ids = group_sources,
         .n_sources = 2},
        {.id = 110, .pattern = "re:^bad(", .enabled = true, .channels = ch_a, .n_channels = 1},
    };
    struct routing_snapshot *s = build_user(routes, sizeof routes / sizeof *routes);
    assert_non_null(s);
    struct route_match m;

    /* automatic exact route beats every pattern */
    routing_resolve(s, SLICE_LIT("claude-3-opus"), &m);
    assert_int_equal(m.via, ROUTE_VIA_AUTO);
    assert_string_equal(m.route->model, "claude-3-opus");
    /* a user exact route beats the automatic one (and inherits its channels) */
    routing_resolve(s, SLICE_LIT("gpt-4o"), &m);
    assert_int_equal(m.via, ROUTE_VIA_USER_EXACT);
    assert_int_equal(m.route->id, 105);
    assert_int_equal(m.route->strategy, ROUTE_ROUND_ROBIN);
    assert_int_equal(m.route->n_channels, 1);
    /* display alias: the upstream model is the route's own name */
    routing_resolve(s, SLICE_LIT("my-gpt"), &m);
    assert_int_equal(m.via, ROUTE_VIA_ALIAS);
    assert_int_equal(m.route->id, 105);
    struct slice up = routing_upstream_model(&m, &m.route->channels[0], SLICE_LIT("my-gpt"));
    assert_true(slice_eq_str(up, "gpt-4o"));
    /* the most specific pattern wins; glob before regex at equal specificity */
    routing_resolve(s, SLICE_LIT("claude-3-haiku"), &m);
    assert_int_equal(m.via, ROUTE_VIA_PATTERN);
    assert_int_equal(m.route->id, 102);
    routing_resolve(s, SLICE_LIT("claude-2"), &m);
    assert_int_equal(m.route->id, 101);
    routing_resolve(s, SLICE_LIT("o3-mini"), &m);
    assert_int_equal(m.route->id, 106);
    routing_resolve(s, SLICE_LIT("mistral-large"), &m);
    assert_int_equal(m.route->id, 104); /* the catch-all comes last */
    /* a disabled route is invisible: the catch-all serves its name */
    routing_resolve(s, SLICE_LIT("disabled-one"), &m);
    assert_int_equal(m.route->id, 104);
    /* model mapping per channel */
    routing_resolve(s, SLICE_LIT("claude-3-opus-mapped"), &m);
    up = routing_upstream_model(&m, &m.route->channels[0], SLICE_LIT("claude-3-opus-mapped"));
    assert_true(slice_eq_str(up, "claude-3-opus-20240229"));
    /* explicit group: the channels of both sources */
    routing_resolve(s, SLICE_LIT("team-claude"), &m);
    assert_int_equal(m.via, ROUTE_VIA_ALIAS);
    assert_int_equal(m.route->kind, ROUTE_GROUP);
    assert_int_equal(m.route->n_channels, 2);
    /* an invalid pattern is kept with its error and never matches */
    const struct route *bad = snapshot_route_by_id(s, 110);
    assert_non_null(bad);
    assert_non_null(bad->error);
    /* the memo gives the same answer */
    routing_resolve(s, SLICE_LIT("claude-3-haiku"), &m);
    assert_int_equal(m.route->id, 102);
    /* /v1/models lists exact names and aliases, each once, no patterns */
    bool saw_alias = false, saw_pattern = false;
    for (size_t i = 0; i < routing_model_count(s); i++) {
        const char *n = routing_model_name(s, i);
        if (strcmp(n, "my-gpt") == 0) saw_alias = true;
        if (strchr(n, '*')) saw_pattern = true;
        if (i) assert_true(strcmp(routing_model_name(s, i - 1), n) < 0);
    }
    assert_true(saw_alias);
    assert_false(saw_pattern);
    snapshot_free(s);
    routing_thread_cleanup();
}

static void test_regex_error_is_visible(void **state)
{
    (void)state;
    const struct snapshot_route_input routes[] = {
        {.id = 201, .pattern = "re:^(a|aa)+$", .enabled = true, .channels = ch_a, .n_channels = 1},
    };
    struct routing_snapshot *s = build_user(routes, 1);
    char subject[64];
    memset(subject, 'a', 40);
    subject[40] = '!';
    subject[41] = 0;
    struct route_match m;
    routing_resolve(s, slice_from(subject), &m);
    assert_null(m.route);
    assert_non_null(m.error_route);
    assert_int_equal(m.error, PATTERN_ERR_LIMIT);
    assert_int_equal(atomic_load(&m.error_route->match_errors), 1);
    /* not memoized: the error is reported again */
    routing_resolve(s, slice_from(subject), &m);
    assert_non_null(m.error_route);
    assert_int_equal(atomic_load(&m.error_route->match_errors), 2);
    snapshot_free(s);
    routing_thread_cleanup();
}

static void test_route_model_mapping(void **state)
{
    (void)state;
    const struct snapshot_route_input routes[] = {
        {.id = 301,
         .pattern = "claude-*",
         .enabled = true,
         .channels = ch_a,
         .n_channels = 1,
         .model_mapping_json =
             "{\"claude-fast\":\"claude-3-haiku\",\"claude-*\":\"claude-3-opus\"}"},
    };
    struct routing_snapshot *s = build_user(routes, 1);
    struct route_match m;
    routing_resolve(s, SLICE_LIT("claude-fast"), &m);
    assert_non_null(m.route);
    /* exact key first, then globs */
    struct slice up = routing_upstream_model(&m, &m.route->channels[0], SLICE_LIT("claude-fast"));
    assert_true(slice_eq_str(up, "claude-3-haiku"));
    up = routing_upstream_model(&m, &m.route->channels[0], SLICE_LIT("claude-other"));
    assert_true(slice_eq_str(up, "claude-3-opus"));
    snapshot_free(s);
    routing_thread_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_and_globs),        cmocka_unit_test(test_regex_basic),
        cmocka_unit_test(test_regex_hostile),          cmocka_unit_test(test_resolution_order),
        cmocka_unit_test(test_regex_error_is_visible), cmocka_unit_test(test_route_model_mapping),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    routing_thread_cleanup();
    health_registry_free();
    return rc;
}
