/* test_protocol_response_errors.c — upstream error answers converted to the client's
 * error shape (conv_error_body): every upstream × client pair, the status table of §6.2
 * with its refinements, the upstream message kept byte for byte (Claude Code's
 * system-role 400 above all), and bodies that are not JSON at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "response_test_util.h"

/* The 400 a Claude-compatible upstream without mid-conversation system messages sends;
 * Claude Code recognises it only by this text and then retries without them. */
#define SYSTEM_ROLE_MSG                                                                            \
    "messages.0.role: Unexpected role \"system\". The Messages API accepts a top-level "           \
    "`system` parameter, not \"system\" as an input message role."

struct out {
    int status;
    json_t *body;
};

static struct out convert_error(enum api_format client, enum api_format up, int status,
                                const char *body)
{
    struct rt t;
    rt_init(&t, client, up, "m");
    struct buf b = BUF_INIT;
    struct out o;
    o.status = conv_error_body(&t.cv, status, slice_from(body), &b);
    o.body = rt_parse(&b);
    buf_free(&b);
    rt_free(&t);
    return o;
}

static const char *emsg(const struct out *o, enum api_format client)
{
    json_t *e = json_object_get(o->body, "error");
    if (client == API_MESSAGES) {
        assert_string_equal(json_string_value(json_object_get(o->body, "type")), "error");
        assert_non_null(json_object_get(o->body, "request_id"));
    } else {
        /* OpenAI shape: all four members present */
        assert_non_null(json_object_get(e, "type"));
        assert_non_null(json_object_get(e, "param"));
        assert_non_null(json_object_get(e, "code"));
    }
    return json_string_value(json_object_get(e, "message"));
}

static const char *etype(const struct out *o)
{
    return json_string_value(json_object_get(json_object_get(o->body, "error"), "type"));
}

static void test_system_role_text_kept_every_pair(void **state)
{
    char openai[512], claude[512];
    snprintf(openai, sizeof openai,
             "{\"error\":{\"message\":%s,\"type\":\"invalid_request_error\",\"param\":null,"
             "\"code\":null}}",
             "\"messages.0.role: Unexpected role \\\"system\\\". The Messages API accepts a "
             "top-level `system` parameter, not \\\"system\\\" as an input message role.\"");
    snprintf(claude, sizeof claude,
             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":%s},"
             "\"request_id\":\"req_1\"}",
             "\"messages.0.role: Unexpected role \\\"system\\\". The Messages API accepts a "
             "top-level `system` parameter, not \\\"system\\\" as an input message role.\"");
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            const char *body = up == API_MESSAGES ? claude : openai;
            struct out o = convert_error(cl, up, 400, body);
            assert_int_equal(o.status, 400);
            assert_string_equal(emsg(&o, cl), SYSTEM_ROLE_MSG);
            assert_string_equal(etype(&o), "invalid_request_error");
            json_decref(o.body);
        }
    /* and exactly in Claude's shape for a Claude client */
    struct out o = convert_error(API_MESSAGES, API_CHAT, 400, openai);
    json_error_t e;
    json_t *want = json_loads("{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                              "\"message\":\"messages.0.role: Unexpected role \\\"system\\\". The "
                              "Messages API accepts a top-level `system` parameter, not "
                              "\\\"system\\\" as an input message role.\"},\"request_id\":null}",
                              0, &e);
    rt_assert_json_equal("system-role 400", o.body, want);
    json_decref(want);
    json_decref(o.body);
}

static void test_status_table_every_pair(void **state)
{
    static const struct {
        int up_status;
        int openai_status;
        const char *openai_type;
        int claude_status;
        const char *claude_type;
    } rows[] = {
        {400, 400, "invalid_request_error", 400, "invalid_request_error"},
        {401, 401, "invalid_request_error", 401, "authentication_error"},
        {402, 429, "insufficient_quota", 402, "billing_error"},
        {403, 403, "permission_error", 403, "permission_error"},
        {404, 404, "invalid_request_error", 404, "not_found_error"},
        {408, 504, "timeout_error", 504, "timeout_error"},
        {413, 413, "invalid_request_error", 413, "request_too_large"},
        {429, 429, "rate_limit_error", 429, "rate_limit_error"},
        {500, 500, "server_error", 500, "api_error"},
        {502, 502, "server_error", 502, "api_error"},
        {503, 503, "service_unavailable_error", 529, "overloaded_error"},
        {504, 504, "timeout_error", 504, "timeout_error"},
        {529, 503, "service_unavailable_error", 529, "overloaded_error"},
        {200, 502, "server_error", 502, "api_error"}, /* not an error status: bad gateway */
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (int up = API_CHAT; up <= API_RESPONSES; up++)
            for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
                /* a body without type or code: the table decides */
                struct out o = convert_error(cl, up, rows[i].up_status, "{\"message\":\"boom\"}");
                bool claude = cl == API_MESSAGES;
                assert_int_equal(o.status, claude ? rows[i].claude_status : rows[i].openai_status);
                assert_string_equal(etype(&o), claude ? rows[i].claude_type : rows[i].openai_type);
                assert_string_equal(emsg(&o, cl), "boom");
                json_decref(o.body);
            }
}

static void test_openai_details_kept_between_openai_apis(void **state)
{
    const char *body = "{\"error\":{\"message\":\"Invalid 'input[3].id'\",\"type\":"
                       "\"invalid_request_error\",\"param\":\"input[3].id\",\"code\":"
                       "\"invalid_value\"}}";
    for (int up = API_CHAT; up <= API_RESPONSES; up += 2)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            if (cl == API_MESSAGES) continue;
            struct out o = convert_error(cl, up, 400, body);
            json_error_t e;
            json_t *want = json_loads(body, 0, &e);
            rt_assert_json_equal("openai error", o.body, want);
            json_decref(want);
            json_decref(o.body);
        }
    /* a Claude client gets the Claude shape, without param and code */
    struct out o = convert_error(API_MESSAGES, API_RESPONSES, 400, body);
    assert_null(json_object_get(json_object_get(o.body, "error"), "param"));
    assert_string_equal(emsg(&o, API_MESSAGES), "Invalid 'input[3].id'");
    json_decref(o.body);
}

static void test_claude_details(void **state)
{
    /* Claude body: its type kept for a Claude client, its request_id too */
    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                       "\"Overloaded\"},\"request_id\":\"req_011X\"}";
    struct out o = convert_error(API_MESSAGES, API_CHAT, 529, body);
    assert_int_equal(o.status, 529);
    assert_string_equal(etype(&o), "overloaded_error");
    assert_string_equal(json_string_value(json_object_get(o.body, "request_id")), "req_011X");
    json_decref(o.body);
    /* an OpenAI client never sees Claude's types */
    o = convert_error(API_RESPONSES, API_MESSAGES, 529, body);
    assert_int_equal(o.status, 503);
    assert_string_equal(etype(&o), "service_unavailable_error");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o.body, "error"), "code")),
        "server_is_overloaded");
    json_decref(o.body);
}

static void test_quota_refinement(void **state)
{
    const char *quota = "{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":"
                        "\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}";
    struct out o = convert_error(API_MESSAGES, API_RESPONSES, 429, quota);
    assert_int_equal(o.status, 402);
    assert_string_equal(etype(&o), "billing_error");
    json_decref(o.body);
    o = convert_error(API_CHAT, API_CHAT, 429, quota);
    assert_int_equal(o.status, 429);
    assert_string_equal(etype(&o), "insufficient_quota");
    json_decref(o.body);
    /* only the code says so */
    o = convert_error(
        API_MESSAGES, API_CHAT, 403,
        "{\"error\":{\"message\":\"q\",\"type\":\"x\",\"code\":\"insufficient_quota\"}}");
    assert_int_equal(o.status, 402);
    json_decref(o.body);
    /* a plain rate limit stays a rate limit */
    o = convert_error(API_MESSAGES, API_CHAT, 429,
                      "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":"
                      "\"rate_limit_exceeded\"}}");
    assert_int_equal(o.status, 429);
    assert_string_equal(etype(&o), "rate_limit_error");
    json_decref(o.body);
}

static void test_loose_shapes(void **state)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"error\":\"model not found\"}", "model not found"},
        {"{\"message\":\"no channel available\",\"code\":503}", "no channel available"},
        {"{\"detail\":\"Not Found\"}", "Not Found"},
        {"{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"field required\"}]}",
         "[{\"loc\":[\"body\"],\"msg\":\"field required\"}]"},
        {"{\"msg\":\"busy\"}", "busy"},
        {"{\"error\":{\"message\":{\"text\":\"nested\"},\"type\":\"t\"}}", "{\"text\":\"nested\"}"},
        {"{\"error\":{\"message\":\"n\",\"code\":1234}}", "n"},
        {"{\"success\":false}", "upstream returned HTTP 500: {\"success\":false}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            struct out o = convert_error(cl, API_CHAT, 500, cases[i].body);
            assert_int_equal(o.status, 500);
            assert_string_equal(emsg(&o, cl), cases[i].want);
            json_decref(o.body);
        }
    /* a numeric code is written as text */
    struct out o = convert_error(API_CHAT, API_CHAT, 500,
                                 "{\"error\":{\"message\":\"n\","
                                 "\"code\":1234}}");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o.body, "error"), "code")), "1234");
    json_decref(o.body);
}

static void test_not_json_bodies(void **state)
{
    struct out o = convert_error(API_MESSAGES, API_CHAT, 502,
                                 "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>"
                                 "<center><h1>502 Bad Gateway</h1></center></body></html>");
    assert_int_equal(o.status, 502);
    assert_string_equal(emsg(&o, API_MESSAGES),
                        "upstream returned HTTP 502 with a non-JSON body: 502 Bad Gateway");
    assert_string_equal(etype(&o), "api_error");
    json_decref(o.body);

    o = convert_error(API_CHAT, API_MESSAGES, 503, "Service   Unavailable\n\n(try later)");
    assert_int_equal(o.status, 503);
    assert_string_equal(emsg(&o, API_CHAT), "upstream returned HTTP 503 with a non-JSON body: "
                                            "Service Unavailable (try later)");
    json_decref(o.body);

    o = convert_error(API_RESPONSES, API_CHAT, 504, "");
    assert_int_equal(o.status, 504);
    assert_string_equal(emsg(&o, API_RESPONSES), "upstream returned HTTP 504 with an empty body");
    json_decref(o.body);

    o = convert_error(API_COMPLETIONS, API_CHAT, 500, "[1,2]");
    assert_non_null(strstr(emsg(&o, API_COMPLETIONS), "HTTP 500"));
    json_decref(o.body);

    /* a long page is cut to 512 bytes of text; invalid UTF-8 and NUL bytes stay valid JSON */
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "oops \xff\xfe ", 8);
    o = convert_error(API_MESSAGES, API_CHAT, 500, big);
    const char *m = emsg(&o, API_MESSAGES);
    const char *colon = strstr(m, "body: ");
    assert_non_null(colon);
    assert_true(strlen(colon + 6) <= 512 + 4); /* U+FFFD takes 3 bytes for 1 */
    json_decref(o.body);

    struct rt t;
    rt_init(&t, API_CHAT, API_CHAT, "m");
    struct buf b = BUF_INIT;
    const char nul_body[] = "bad\0gateway";
    int st = conv_error_body(&t.cv, 502, (struct slice){nul_body, sizeof nul_body - 1}, &b);
    assert_int_equal(st, 502);
    json_t *parsed = rt_parse(&b);
    json_decref(parsed);
    buf_free(&b);
    rt_free(&t);
}

static void test_appends_to_buffer(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    struct buf b = BUF_INIT;
    buf_append_str(&b, "PREFIX");
    conv_error_body(&t.cv, 400,
                    slice_from("{\"type\":\"error\",\"error\":{\"type\":"
                               "\"invalid_request_error\",\"message\":\"x\"}}"),
                    &b);
    assert_true(b.n > 6 && memcmp(b.p, "PREFIX{", 7) == 0);
    buf_free(&b);
    rt_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_role_text_kept_every_pair),
        cmocka_unit_test(test_status_table_every_pair),
        cmocka_unit_test(test_openai_details_kept_between_openai_apis),
        cmocka_unit_test(test_claude_details),
        cmocka_unit_test(test_quota_refinement),
        cmocka_unit_test(test_loose_shapes),
        cmocka_unit_test(test_not_json_bodies),
        cmocka_unit_test(test_appends_to_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
