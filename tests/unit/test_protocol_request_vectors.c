/* test_protocol_request_vectors.c — the request test vectors of the format-conversion
 * specification (§8: TV1, TV3–TV8, TV15–TV17, TV19), stored under tests/vectors/<name>/,
 * run through decode → encode and compared semantically with the expected upstream body;
 * plus the round-trip property X → IR → X for formats A, B and C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "request_test_util.h"

static void run_vector(const char *name)
{
    char path[1024];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/tests/vectors/%s/input.json", METARELAY_SOURCE_DIR, name);
    char *input = tu_read(path, &n);
    if (!input) fail_msg("cannot read %s", path);
    snprintf(path, sizeof path, "%s/tests/vectors/%s/profile.json", METARELAY_SOURCE_DIR, name);
    json_t *pj = json_load_file(path, 0, NULL);
    assert_non_null(pj);
    struct ir_profile prof;
    tu_profile(&prof, pj);
    enum api_format client = tu_format(json_string_value(json_object_get(pj, "client")));
    enum api_format upstream = tu_format(json_string_value(json_object_get(pj, "upstream")));

    pool_t *pool = pool_create();
    struct slice out;
    struct conv_error err;
    int rc = tu_convert(pool, client, upstream, &prof, (struct slice){input, n}, &out, &err, NULL);
    json_t *want_err = json_object_get(pj, "expect_error");
    if (want_err) {
        assert_int_equal(rc, -1);
        assert_int_equal(err.status, json_integer_value(want_err));
        assert_true(strlen(err.message) > 10);
        printf("  %s: %d %s\n", name, err.status, err.message);
    } else {
        if (rc != 0) fail_msg("%s: conversion failed: %d %s", name, err.status, err.message);
        json_t *got = json_loadb(out.p, out.n, JSON_REJECT_DUPLICATES, NULL);
        if (!got) fail_msg("%s: output is not valid JSON: %.*s", name, (int)out.n, out.p);
        snprintf(path, sizeof path, "%s/tests/vectors/%s/expected.json", METARELAY_SOURCE_DIR,
                 name);
        json_t *want = json_load_file(path, 0, NULL);
        assert_non_null(want);
        json_t *cmp = json_object_get(pj, "compare");
        bool subset = cmp && !strcmp(json_string_value(cmp), "subset");
        bool ok = true;
        if (subset) {
            const char *k;
            json_t *v;
            json_object_foreach(want, k, v)
            {
                json_t *g = json_object_get(got, k);
                if (!g || !tu_json_eq(v, g)) {
                    char *ws = json_dumps(v, JSON_COMPACT);
                    char *gs = g ? json_dumps(g, JSON_COMPACT) : NULL;
                    print_error("%s: key %s\n  got  %s\n  want %s\n", name, k, gs ? gs : "(absent)",
                                ws);
                    free(ws);
                    free(gs);
                    ok = false;
                }
            }
        } else if (!tu_json_eq(want, got)) {
            char *ws = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            char *gs = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            print_error("%s:\n  got  %s\n  want %s\n", name, gs, ws);
            free(ws);
            free(gs);
            ok = false;
        }
        json_t *absent = json_object_get(pj, "absent");
        for (size_t i = 0; i < json_array_size(absent); i++) {
            const char *k = json_string_value(json_array_get(absent, i));
            if (json_object_get(got, k)) {
                print_error("%s: key %s must be absent\n", name, k);
                ok = false;
            }
        }
        json_decref(want);
        json_decref(got);
        if (!ok) fail_msg("%s: output differs from the vector", name);
    }
    json_decref(pj);
    pool_destroy(pool);
    free(input);
}

#define VEC(fn, name)                                                                              \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        run_vector(name);                                                                          \
    }

VEC(tv1, "TV1_text_system_a_to_b")
VEC(tv3_ab, "TV3_images_a_to_b")
VEC(tv3_bmp, "TV3_bmp_a_to_b")
VEC(tv3_bc, "TV3_images_b_to_c")
VEC(tv4_ab, "TV4_tools_a_to_b")
VEC(tv4_ac, "TV4_tools_a_to_c")
VEC(tv4_ba, "TV4_tools_b_to_a")
VEC(tv5_ab, "TV5_parallel_a_to_b")
VEC(tv5_ac, "TV5_parallel_a_to_c")
VEC(tv6, "TV6_tool_result_image_b_to_a")
VEC(tv7, "TV7_responses_to_chat")
VEC(tv7_hist, "TV7_responses_to_chat_history_reasoning")
VEC(tv8, "TV8_chat_to_responses")
VEC(tv15, "TV15_completions_to_messages")
VEC(tv15_tokens, "TV15_token_prompt_to_messages")
VEC(tv15_suffix, "TV15_suffix_to_messages")
VEC(tv16a, "TV16a_effort_to_budget")
VEC(tv16a_1500, "TV16a_cap_1500_disables_thinking")
VEC(tv16a_3000, "TV16a_cap_3000_budget_1976")
VEC(tv16b, "TV16b_adaptive")
VEC(tv16c, "TV16c_budget_to_effort_b_to_a")
VEC(tv16d, "TV16d_adaptive_b_to_c")
VEC(tv16e_c, "TV16e_foreign_reasoning_b_to_c")
VEC(tv16e_b, "TV16e_foreign_reasoning_b_to_b")
VEC(tv17, "TV17_json_schema_tool_trick")
VEC(tv17_native, "TV17_json_schema_native")
VEC(tv19, "TV19_repair_a_to_b")

/* The tool trick is recorded for the response half. */
static void tv17_records_trick(void **state)
{
    (void)state;
    char path[1024];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/tests/vectors/TV17_json_schema_tool_trick/input.json",
             METARELAY_SOURCE_DIR);
    char *input = tu_read(path, &n);
    assert_non_null(input);
    struct ir_profile prof;
    ir_profile_defaults(&prof);
    pool_t *pool = pool_create();
    struct slice out;
    struct conv_error err;
    struct conv *cv = NULL;
    assert_int_equal(
        tu_convert(pool, API_CHAT, API_MESSAGES, &prof, (struct slice){input, n}, &out, &err, &cv),
        0);
    assert_true(cv->json_tool_trick);
    assert_true(cv->json_tool_forced);
    assert_false(cv->thinking_sent);
    pool_destroy(pool);
    free(input);
}

/* ---- round trip: X → IR → X is the identity on a body already in normal form, and a
 * fixpoint after one pass on every vector input of that format ---- */

static json_t *roundtrip(pool_t *pool, enum api_format f, const struct ir_profile *prof,
                         const char *body)
{
    struct slice out;
    struct conv_error err;
    if (tu_convert(pool, f, f, prof, slice_from(body), &out, &err, NULL) != 0)
        fail_msg("round trip failed: %s", err.message);
    json_t *j = json_loadb(out.p, out.n, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    return j;
}

static void check_identity(enum api_format f, const char *body)
{
    struct ir_profile prof;
    ir_profile_defaults(&prof);
    pool_t *pool = pool_create();
    json_t *got = roundtrip(pool, f, &prof, body);
    json_t *want = json_loads(body, 0, NULL);
    assert_non_null(want);
    if (!tu_json_eq(want, got)) {
        char *gs = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *ws = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", gs, ws);
        free(gs);
        free(ws);
        fail();
    }
    json_decref(got);
    json_decref(want);
    pool_destroy(pool);
}

static void roundtrip_identity_chat(void **state)
{
    (void)state;
    check_identity(
        API_CHAT,
        "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
        "\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
        "\"call_1\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"look\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/"
        "y.png\"}}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":"
        "{\"type\":\"integer\"}}}}}],\"tool_choice\":\"auto\",\"parallel_tool_calls\":"
        "false,\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"stop\":[\"x\"],"
        "\"response_format\":{\"type\":\"json_object\"},\"reasoning_effort\":\"low\","
        "\"user\":\"u1\",\"metadata\":{\"k\":\"v\"},\"stream\":true,\"stream_options\":"
        "{\"include_usage\":true}}");
}

static void roundtrip_identity_messages(void **state)
{
    (void)state;
    check_identity(
        API_MESSAGES,
        "{\"model\":\"claude\",\"max_tokens\":4000,\"system\":[{\"type\":\"text\","
        "\"text\":\"S\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]},{\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
        "\"signature\":\"sig\"},{\"type\":\"text\",\"text\":\"ok\"},{\"type\":"
        "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":1}}]},{\"role\":"
        "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":\"r\"},{\"type\":\"text\",\"text\":\"next\"}]}],\"tools\":[{\"name\":"
        "\"f\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"a\":{\"type\":\"integer\"}}}}],\"tool_choice\":{\"type\":"
        "\"auto\",\"disable_parallel_tool_use\":true},\"thinking\":{\"type\":\"enabled\","
        "\"budget_tokens\":2000},\"stop_sequences\":[\"x\"],\"metadata\":{\"user_id\":"
        "\"u1\"},\"stream\":true}");
}

static void roundtrip_identity_responses(void **state)
{
    (void)state;
    check_identity(
        API_RESPONSES,
        "{\"model\":\"gpt-5\",\"instructions\":\"S\",\"input\":[{\"type\":\"message\","
        "\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Hi\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\","
        "\"text\":\"think\"}],\"encrypted_content\":\"enc\"},{\"type\":\"function_call\","
        "\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"{}\"},{\"type\":"
        "\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"ok\"},{\"type\":"
        "\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"done\"}]},{\"type\":\"message\",\"role\":\"user\",\"content\":[{"
        "\"type\":\"input_text\",\"text\":\"more\"},{\"type\":\"input_image\","
        "\"image_url\":\"https://x/y.png\",\"detail\":\"auto\"}]}],\"tools\":[{\"type\":"
        "\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
        "{}},\"strict\":false}],\"tool_choice\":\"auto\",\"parallel_tool_calls\":true,"
        "\"max_output_tokens\":500,\"temperature\":0.7,\"text\":{\"format\":{\"type\":"
        "\"json_schema\",\"name\":\"n\",\"schema\":{\"type\":\"object\"},\"strict\":true},"
        "\"verbosity\":\"low\"},\"reasoning\":{\"effort\":\"low\",\"summary\":\"auto\"},"
        "\"include\":[\"reasoning.encrypted_content\"],\"user\":\"u\",\"prompt_cache_key\":"
        "\"k\",\"store\":false,\"stream\":true}");
}

/* Every vector input of format A, B or C: encoding the round-tripped body again changes
 * nothing (the documented drops and repairs happen once). */
static void roundtrip_fixpoint_vectors(void **state)
{
    (void)state;
    static const char *names[] = {
        "TV1_text_system_a_to_b",
        "TV3_images_a_to_b",
        "TV3_images_b_to_c",
        "TV4_tools_a_to_b",
        "TV4_tools_b_to_a",
        "TV5_parallel_a_to_b",
        "TV6_tool_result_image_b_to_a",
        "TV7_responses_to_chat",
        "TV8_chat_to_responses",
        "TV16a_effort_to_budget",
        "TV16c_budget_to_effort_b_to_a",
        "TV16d_adaptive_b_to_c",
        "TV16e_foreign_reasoning_b_to_c",
        "TV17_json_schema_tool_trick",
        "TV19_repair_a_to_b",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/vectors/%s/profile.json", METARELAY_SOURCE_DIR,
                 names[i]);
        json_t *pj = json_load_file(path, 0, NULL);
        assert_non_null(pj);
        enum api_format f = tu_format(json_string_value(json_object_get(pj, "client")));
        json_decref(pj);
        snprintf(path, sizeof path, "%s/tests/vectors/%s/input.json", METARELAY_SOURCE_DIR,
                 names[i]);
        char *input = tu_read(path, NULL);
        assert_non_null(input);
        struct ir_profile prof;
        ir_profile_defaults(&prof);
        pool_t *pool = pool_create();
        json_t *once = roundtrip(pool, f, &prof, input);
        char *s = json_dumps(once, JSON_COMPACT);
        json_t *twice = roundtrip(pool, f, &prof, s);
        if (!tu_json_eq(once, twice)) {
            char *t = json_dumps(twice, JSON_COMPACT);
            fail_msg("%s: not a fixpoint\n  once  %s\n  twice %s", names[i], s, t);
        }
        free(s);
        json_decref(once);
        json_decref(twice);
        pool_destroy(pool);
        free(input);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tv1),
        cmocka_unit_test(tv3_ab),
        cmocka_unit_test(tv3_bmp),
        cmocka_unit_test(tv3_bc),
        cmocka_unit_test(tv4_ab),
        cmocka_unit_test(tv4_ac),
        cmocka_unit_test(tv4_ba),
        cmocka_unit_test(tv5_ab),
        cmocka_unit_test(tv5_ac),
        cmocka_unit_test(tv6),
        cmocka_unit_test(tv7),
        cmocka_unit_test(tv7_hist),
        cmocka_unit_test(tv8),
        cmocka_unit_test(tv15),
        cmocka_unit_test(tv15_tokens),
        cmocka_unit_test(tv15_suffix),
        cmocka_unit_test(tv16a),
        cmocka_unit_test(tv16a_1500),
        cmocka_unit_test(tv16a_3000),
        cmocka_unit_test(tv16b),
        cmocka_unit_test(tv16c),
        cmocka_unit_test(tv16d),
        cmocka_unit_test(tv16e_c),
        cmocka_unit_test(tv16e_b),
        cmocka_unit_test(tv17),
        cmocka_unit_test(tv17_native),
        cmocka_unit_test(tv17_records_trick),
        cmocka_unit_test(tv19),
        cmocka_unit_test(roundtrip_identity_chat),
        cmocka_unit_test(roundtrip_identity_messages),
        cmocka_unit_test(roundtrip_identity_responses),
        cmocka_unit_test(roundtrip_fixpoint_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
