/* test_protocol_response_vectors.c — the response-side test vectors of the format
 * conversion specification (§8: TV2, TV13, TV14 a–d, TV15 non-stream, TV17, TV18), read
 * from tests/vectors/ and compared as JSON values (key order is irrelevant). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "response_test_util.h"

/* Converts tests/vectors/<dir>/<in> and compares with <dir>/<want> (a subset check for
 * Responses objects, whose request echoes the vectors leave out). */
static void run_vector(struct rt *t, const char *dir, const char *in, const char *want_file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", dir, in);
    char *body = rt_read_vector(rel, NULL);
    json_t *got = rt_convert(t, body);
    snprintf(rel, sizeof rel, "%s/%s", dir, want_file);
    json_t *want = rt_load_vector_json(rel);
    if (t->cv.client == API_RESPONSES)
        rt_assert_json_subset(rel, got, want);
    else
        rt_assert_json_equal(rel, got, want);
    json_decref(got);
    json_decref(want);
    free(body);
}

static void test_tv2_b_to_a(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "claude-sonnet-4-5");
    run_vector(&t, "TV2_usage_cache", "resp_upstream_B.json", "resp_expected_A.json");
    /* cv->usage is the IR snapshot: totals include cache reads and writes */
    assert_int_equal(t.cv.usage.input_total, 150);
    assert_int_equal(t.cv.usage.cache_read, 100);
    assert_int_equal(t.cv.usage.cache_write, 30);
    assert_int_equal(t.cv.usage.output_total, 4);
    assert_true(slice_eq_str(t.cv.upstream_model, "claude-sonnet-4-5-20250929"));
    rt_free(&t);
}

static void test_tv2_a_to_b(void **state)
{
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "claude-sonnet-4-5");
    run_vector(&t, "TV2_usage_cache", "resp_upstream_A.json", "resp_expected_B.json");
    rt_free(&t);
}

/* Finds where a TV13 fragment lives: choices[0] for A and L, the top level otherwise. */
static json_t *fragment_scope(enum api_format client, json_t *got)
{
    if (client == API_CHAT || client == API_COMPLETIONS)
        return json_array_get(json_object_get(got, "choices"), 0);
    return got;
}

static void test_tv13_finish_matrix(void **state)
{
    json_t *cases = rt_load_vector_json("TV13_finish_matrix/resp_cases.json");
    assert_true(json_array_size(cases) == 14);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        struct rt t;
        enum api_format client = rt_format(json_string_value(json_object_get(c, "client")));
        enum api_format upstream = rt_format(json_string_value(json_object_get(c, "upstream")));
        rt_init(&t, client, upstream, "m");
        json_t *got = rt_convert_json(&t, json_object_get(c, "body"));
        char label[64];
        snprintf(label, sizeof label, "TV13 %s", json_string_value(json_object_get(c, "name")));
        rt_assert_json_subset(label, fragment_scope(client, got), json_object_get(c, "expect"));
        json_decref(got);
        rt_free(&t);
    }
    json_decref(cases);
}

static void test_tv14_errors(void **state)
{
    json_t *cases = rt_load_vector_json("TV14_errors/resp_errors.json");
    assert_true(json_array_size(cases) == 4);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        struct rt t;
        enum api_format client = rt_format(json_string_value(json_object_get(c, "client")));
        enum api_format upstream = rt_format(json_string_value(json_object_get(c, "upstream")));
        rt_init(&t, client, upstream, "m");
        struct buf out = BUF_INIT;
        int status =
            conv_error_body(&t.cv, (int)json_integer_value(json_object_get(c, "status")),
                            slice_from(json_string_value(json_object_get(c, "body"))), &out);
        char label[64];
        snprintf(label, sizeof label, "TV14 %s", json_string_value(json_object_get(c, "name")));
        assert_int_equal(status, json_integer_value(json_object_get(c, "expect_status")));
        json_t *got = rt_parse(&out);
        rt_assert_json_equal(label, got, json_object_get(c, "expect"));
        json_decref(got);
        buf_free(&out);
        rt_free(&t);
    }
    json_decref(cases);
}

static void test_tv15_b_to_l(void **state)
{
    struct rt t;
    rt_init(&t, API_COMPLETIONS, API_MESSAGES, "claude-haiku-4-5");
    run_vector(&t, "TV15_legacy_completions", "resp_upstream_B.json", "resp_expected_L.json");
    rt_free(&t);
}

static void test_tv17_json_tool_trick(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "claude-sonnet-4-5");
    t.req.rf.kind = IR_RF_JSON_SCHEMA;
    t.req.rf.name = SLICE_LIT("person");
    t.cv.json_tool_trick = true; /* what conv_encode_request decided */
    run_vector(&t, "TV17_json_tool_trick", "resp_upstream_B.json", "resp_expected_A.json");
    rt_free(&t);

    /* With native structured output there was no trick (json_tool_trick stays false): the
     * tool call stays a tool call. */
    rt_init(&t, API_CHAT, API_MESSAGES, "claude-sonnet-4-5");
    t.req.rf.kind = IR_RF_JSON_SCHEMA;
    t.profile.claude_structured_output_native = true;
    char *body = rt_read_vector("TV17_json_tool_trick/resp_upstream_B.json", NULL);
    json_t *got = rt_convert(&t, body);
    json_t *choice = json_array_get(json_object_get(got, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_decref(got);
    free(body);
    rt_free(&t);
}

static void test_tv18_b_to_c(void **state)
{
    struct rt t;
    rt_init(&t, API_RESPONSES, API_MESSAGES, "claude-sonnet-4-5");
    t.req.include_encrypted_reasoning = true;
    run_vector(&t, "TV18_thinking_text_tool", "resp_upstream_B.json", "resp_expected_C.json");
    rt_free(&t);
}

static void test_tv18_b_to_a(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "claude-sonnet-4-5");
    run_vector(&t, "TV18_thinking_text_tool", "resp_upstream_B.json", "resp_expected_A.json");
    rt_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tv2_b_to_a),         cmocka_unit_test(test_tv2_a_to_b),
        cmocka_unit_test(test_tv13_finish_matrix), cmocka_unit_test(test_tv14_errors),
        cmocka_unit_test(test_tv15_b_to_l),        cmocka_unit_test(test_tv17_json_tool_trick),
        cmocka_unit_test(test_tv18_b_to_c),        cmocka_unit_test(test_tv18_b_to_a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
