/* test_protocol_response_malformed.c — unusable upstream bodies: HTML, empty, truncated
 * at every byte, missing members, wrong types, an error object or a failed status in a
 * 2xx answer. Each must give -1 with a 502 (or the failed response's own status) and a
 * message, leave the output untouched, and never crash; mutated bodies must give either
 * an error or valid JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "response_test_util.h"

static const char *const GOOD[3] = {
    [API_CHAT] = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1767225000,"
                 "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                 "\"content\":\"Hi\",\"reasoning_content\":\"r\",\"tool_calls\":[{\"id\":\"c1\","
                 "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":"
                 "[1,2.5,null,true]}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
                 "\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":1}}}",
    [API_MESSAGES] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"tool_use\",\"id\":\"tu\","
        "\"name\":\"f\",\"input\":{\"a\":[1,2.5,null,true]}}],\"stop_reason\":"
        "\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,"
        "\"cache_read_input_tokens\":1,\"output_tokens\":4}}",
    [API_RESPONSES] = "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1767225000,"
                      "\"status\":\"completed\",\"model\":\"m\",\"output\":[{\"id\":\"rs_1\","
                      "\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":"
                      "\"t\"}],\"encrypted_content\":\"e\"},{\"id\":\"m1\",\"type\":\"message\","
                      "\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]},{\"id\":\"fc1\","
                      "\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":"
                      "\"{}\"}],\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}",
};

/* conv_convert_response on body must fail with `status` and leave `out` as it was. */
static void expect_fail(enum api_format up, enum api_format client, const char *body, size_t n,
                        int status)
{
    struct rt t;
    rt_init(&t, client, up, "m");
    struct buf out = BUF_INIT;
    buf_append_str(&out, "KEEP");
    struct conv_error err = {0};
    int rc = conv_convert_response(&t.cv, (struct slice){body, n}, &out, &err);
    if (rc != -1)
        fail_msg("accepted (%s → %s): %.*s", api_format_name(up), api_format_name(client), (int)n,
                 body);
    assert_int_equal(err.status, status);
    assert_true(strlen(err.message) > 0);
    assert_true(strlen(err.type) > 0);
    assert_int_equal(out.n, 4);
    buf_free(&out);
    rt_free(&t);
}

static void expect_fail_str(enum api_format up, const char *body, int status)
{
    for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++)
        expect_fail(up, cl, body, strlen(body), status);
}

static void test_good_bodies_convert(void **state)
{
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            struct rt t;
            rt_init(&t, cl, up, "m");
            json_t *o = rt_convert(&t, GOOD[up]);
            json_decref(o);
            rt_free(&t);
        }
}

static void test_not_json(void **state)
{
    static const char *const bodies[] = {
        "",
        "   \r\n",
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "  <!DOCTYPE html><html></html>",
        "Internal Server Error",
        "{",
        "{\"choices\":",
        "null",
        "[]",
        "\"just a string\"",
        "42",
        "{\"a\":1}{\"b\":2}",
        "{\"a\":1,\"a\":2}",
        "{\"bad\":\"\xff\xfe\"}",
        "data: {\"choices\":[]}\n\n",
    };
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
            expect_fail_str(up, bodies[i], 502);
    /* the HTML case says so */
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    struct buf out = BUF_INIT;
    struct conv_error err;
    assert_int_equal(conv_convert_response(&t.cv, slice_from("<html>x</html>"), &out, &err), -1);
    assert_non_null(strstr(err.message, "HTML"));
    assert_string_equal(err.type, "api_error"); /* the Claude client's type for 502 */
    rt_free(&t);
}

static void test_truncated_at_every_byte(void **state)
{
    for (int up = API_CHAT; up <= API_RESPONSES; up++) {
        size_t n = strlen(GOOD[up]);
        for (size_t k = 0; k < n; k++) {
            char *copy = malloc(k ? k : 1); /* exact size: ASan sees any read past the end */
            memcpy(copy, GOOD[up], k);
            expect_fail(up, (enum api_format)(k % 4), copy, k, 502);
            free(copy);
        }
    }
}

static void test_missing_members_and_wrong_types(void **state)
{
    static const char *const chat[] = {
        "{}",
        "{\"choices\":[]}",
        "{\"choices\":{}}",
        "{\"choices\":[1]}",
        "{\"choices\":[{}]}",
        "{\"choices\":[{\"message\":\"hi\"}]}",
        "{\"choices\":[{\"message\":{\"content\":42}}]}",
        "{\"choices\":[{\"message\":{\"content\":{\"text\":\"x\"}}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[1]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":\"f\"}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":7}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\","
        "\"arguments\":12}}]}}]}",
        "{\"error\":{\"message\":\"quota exceeded\",\"type\":\"x\"}}",
        "{\"error\":\"bad\"}",
    };
    static const char *const messages[] = {
        "{}",
        "{\"content\":\"Hi\"}",
        "{\"content\":null}",
        "{\"content\":[\"Hi\"]}",
        "{\"content\":[{\"text\":\"no type\"}]}",
        "{\"content\":[{\"type\":\"text\",\"text\":5}]}",
        "{\"content\":[{\"type\":\"text\"}]}",
        "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{}}]}",
        "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}]}",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
    };
    static const char *const responses[] = {
        "{}",
        "{\"status\":\"completed\"}",
        "{\"output\":{}}",
        "{\"output\":[1]}",
        "{\"output\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"arguments\":\"{}\"}]}",
        "{\"output\":[{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":{}}]}",
        "{\"status\":\"in_progress\",\"output\":[]}",
        "{\"status\":\"queued\",\"output\":[]}",
        "{\"status\":\"failed\",\"output\":[]}",
        "{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"},"
        "\"output\":[]}",
    };
    for (size_t i = 0; i < sizeof chat / sizeof *chat; i++) expect_fail_str(API_CHAT, chat[i], 502);
    for (size_t i = 0; i < sizeof messages / sizeof *messages; i++)
        expect_fail_str(API_MESSAGES, messages[i], 502);
    for (size_t i = 0; i < sizeof responses / sizeof *responses; i++)
        expect_fail_str(API_RESPONSES, responses[i], 502);
}

static void test_failed_response_status_and_message(void **state)
{
    const char *rate = "{\"id\":\"resp_9\",\"status\":\"failed\",\"error\":{\"code\":"
                       "\"rate_limit_exceeded\",\"message\":\"Rate limit reached for gpt-5\"},"
                       "\"output\":[]}";
    struct rt t;
    rt_init(&t, API_MESSAGES, API_RESPONSES, "m");
    struct buf out = BUF_INIT;
    struct conv_error err;
    assert_int_equal(conv_convert_response(&t.cv, slice_from(rate), &out, &err), -1);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "rate_limit_error");
    assert_string_equal(err.message, "Rate limit reached for gpt-5");
    rt_free(&t);
    expect_fail_str(API_RESPONSES,
                    "{\"status\":\"failed\",\"error\":{\"code\":\"invalid_image_url\","
                    "\"message\":\"bad image\"},\"output\":[]}",
                    400);
    expect_fail_str(API_RESPONSES, "{\"status\":\"cancelled\",\"error\":null,\"output\":[]}", 502);
}

/* Tolerated oddities: nothing to fail on, the answer converts. */
static void test_tolerated(void **state)
{
    static const char *const chat[] = {
        /* string counts, negative counts, missing usage, null finish, extra choices */
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":null}],\"usage\":{"
        "\"prompt_tokens\":\"3\",\"completion_tokens\":-1}}",
        "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}},{}],"
        "\"usage\":null}",
        "{\"choices\":[{\"message\":{\"content\":null,\"function_call\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}},\"finish_reason\":\"function_call\"}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"weird\"}],\"id\":5,"
        "\"model\":[],\"created\":\"now\"}",
    };
    static const char *const messages[] = {
        "{\"content\":[],\"stop_reason\":null}",
        "{\"content\":[{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\"},{"
        "\"type\":\"future_block\"}],\"stop_reason\":\"brand_new_reason\",\"usage\":{}}",
        "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}]}",
    };
    static const char *const responses[] = {
        "{\"output\":[]}",
        "{\"output\":[{\"type\":\"web_search_call\"},{\"type\":\"message\",\"content\":\"plain\"}],"
        "\"status\":\"incomplete\",\"incomplete_details\":null}",
        "{\"output\":[{\"type\":\"reasoning\",\"summary\":[]}],\"usage\":{\"input_tokens\":1.0}}",
    };
    const char *const *sets[3] = {chat, messages, responses};
    size_t counts[3] = {4, 3, 3};
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (size_t i = 0; i < counts[up]; i++)
            for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
                struct rt t;
                rt_init(&t, cl, up, "m");
                json_t *o = rt_convert(&t, sets[up][i]);
                json_decref(o);
                rt_free(&t);
            }
}

/* Every byte replaced by a few troublesome values: an error or valid JSON, never a crash
 * (ASan and UBSan watch). */
static void test_mutations(void **state)
{
    static const char repl[] = {'"', '{', ']', '\\', '0', ' ', '\0', (char)0xC3};
    for (int up = API_CHAT; up <= API_RESPONSES; up++) {
        size_t n = strlen(GOOD[up]);
        char *copy = malloc(n);
        for (size_t k = 0; k < n; k++)
            for (size_t r = 0; r < sizeof repl; r++) {
                memcpy(copy, GOOD[up], n);
                copy[k] = repl[r];
                struct rt t;
                enum api_format cl = (enum api_format)((k + r) % 4);
                rt_init(&t, cl, up, "m");
                struct buf out = BUF_INIT;
                struct conv_error err = {0};
                if (conv_convert_response(&t.cv, (struct slice){copy, n}, &out, &err) == 0) {
                    json_t *o = rt_parse(&out);
                    json_decref(o);
                } else {
                    assert_true(err.status >= 400 && strlen(err.message) > 0);
                    assert_int_equal(out.n, 0);
                }
                buf_free(&out);
                rt_free(&t);
            }
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_bodies_convert),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_missing_members_and_wrong_types),
        cmocka_unit_test(test_failed_response_status_and_message),
        cmocka_unit_test(test_tolerated),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
