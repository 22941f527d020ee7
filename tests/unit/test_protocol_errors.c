/* test_protocol_errors.c — status mapping, error bodies and in-stream error events in the
 * OpenAI and Claude shapes; escaping of arbitrary message bytes into valid JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "protocol/errors.h"

static void assert_buf_eq(const struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->n != n || (n && memcmp(b->p, s, n) != 0))
        fail_msg("got  %.*s\nwant %s", (int)b->n, b->p ? b->p : "", s);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

static void check_map(int status, int ostatus, const char *otype, const char *ocode, int cstatus,
                      const char *ctype)
{
    struct errors_mapping m = errors_map_status(status);
    assert_int_equal(m.openai_status, ostatus);
    assert_string_equal(m.openai_type, otype);
    assert_str_or_null(m.openai_code, ocode);
    assert_int_equal(m.claude_status, cstatus);
    assert_string_equal(m.claude_type, ctype);
}

static void test_status_mapping(void **state)
{
    check_map(400, 400, "invalid_request_error", NULL, 400, "invalid_request_error");
    check_map(401, 401, "invalid_request_error", "invalid_api_key", 401, "authentication_error");
    check_map(402, 429, "insufficient_quota", "insufficient_quota", 402, "billing_error");
    check_map(403, 403, "permission_error", "permission_denied", 403, "permission_error");
    check_map(404, 404, "invalid_request_error", "model_not_found", 404, "not_found_error");
    check_map(408, 504, "timeout_error", "timeout", 504, "timeout_error");
    check_map(413, 413, "invalid_request_error", "request_too_large", 413, "request_too_large");
    check_map(429, 429, "rate_limit_error", "rate_limit_exceeded", 429, "rate_limit_error");
    check_map(500, 500, "server_error", NULL, 500, "api_error");
    check_map(502, 502, "server_error", "bad_gateway", 502, "api_error");
    check_map(503, 503, "service_unavailable_error", "server_is_overloaded", 529,
              "overloaded_error");
    check_map(504, 504, "timeout_error", "timeout", 504, "timeout_error");
    check_map(529, 503, "service_unavailable_error", "server_is_overloaded", 529,
              "overloaded_error");
    /* unlisted statuses keep their class */
    check_map(422, 422, "invalid_request_error", NULL, 422, "invalid_request_error");
    check_map(507, 507, "server_error", NULL, 507, "api_error");
    /* nonsense is a server error */
    check_map(200, 500, "server_error", NULL, 500, "api_error");
    check_map(0, 500, "server_error", NULL, 500, "api_error");
    check_map(-1, 500, "server_error", NULL, 500, "api_error");
    check_map(1000, 500, "server_error", NULL, 500, "api_error");
}

/* format-conversion.md TV14 (a): a Claude 529 shown to an OpenAI client. */
static void test_openai_body(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(errors_write_for_status(&b, ERRORS_SHAPE_OPENAI, 529, SLICE_LIT("Overloaded")),
                     503);
    assert_buf_eq(&b, "{\"error\":{\"message\":\"Overloaded\",\"type\":\"service_unavailable_"
                      "error\",\"param\":null,\"code\":\"server_is_overloaded\"}}");
    b.n = 0;
    assert_true(
        errors_write_openai(&b, SLICE_LIT("bad field"), "invalid_request_error", NULL, "messages"));
    assert_buf_eq(&b, "{\"error\":{\"message\":\"bad field\",\"type\":\"invalid_request_error\","
                      "\"param\":\"messages\",\"code\":null}}");
    /* appends: what was in the buffer stays */
    assert_true(errors_write_openai(&b, SLICE_LIT(""), "server_error", NULL, NULL));
    assert_int_equal(memcmp(b.p, "{\"error\":{\"message\":\"bad field\"", 31), 0);
    buf_free(&b);
}

static void test_claude_body(void **state)
{
    struct buf b = BUF_INIT;
    assert_int_equal(
        errors_write_for_status(&b, ERRORS_SHAPE_CLAUDE, 503, SLICE_LIT("no channel left")), 529);
    assert_buf_eq(&b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                      "\"no channel left\"},\"request_id\":null}");
    b.n = 0;
    assert_true(
        errors_write_claude(&b, "not_found_error", SLICE_LIT("model: x"), SLICE_LIT("req_011X")));
    assert_buf_eq(&b, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
                      "\"model: x\"},\"request_id\":\"req_011X\"}");
    b.n = 0;
    assert_int_equal(errors_write_for_status(&b, ERRORS_SHAPE_CLAUDE, 401, SLICE_LIT("no key")),
                     401);
    assert_non_null(strstr((buf_nul(&b), b.p), "\"authentication_error\""));
    buf_free(&b);
}

/* format-conversion.md TV14 (e): the in-stream error an OpenAI Chat client gets. */
static void test_stream_events(void **state)
{
    struct buf b = BUF_INIT;
    assert_true(
        errors_write_event_for_status(&b, ERRORS_SHAPE_OPENAI, 529, SLICE_LIT("Overloaded")));
    assert_buf_eq(&b, "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"service_"
                      "unavailable_error\",\"param\":null,\"code\":\"server_is_overloaded\"}}\n\n");
    b.n = 0;
    assert_true(errors_write_claude_event(&b, "overloaded_error", SLICE_LIT("Overloaded")));
    assert_buf_eq(&b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_"
                      "error\",\"message\":\"Overloaded\"}}\n\n");
    b.n = 0;
    /* a message with line breaks stays on one data line */
    assert_true(errors_write_event_for_status(&b, ERRORS_SHAPE_CLAUDE, 504,
                                              SLICE_LIT("line1\nline2\r\n\rend")));
    assert_buf_eq(&b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"timeout_"
                      "error\",\"message\":\"line1\\nline2\\r\\n\\rend\"}}\n\n");
    b.n = 0;
    assert_true(errors_write_openai_event(&b, SLICE_LIT("x"), "server_error", NULL));
    assert_buf_eq(&b, "data: {\"error\":{\"message\":\"x\",\"type\":\"server_error\",\"param\":"
                      "null,\"code\":null}}\n\n");
    buf_free(&b);
}

/* Writes s as a JSON string and decodes it back with jansson. */
static json_t *round_trip(struct slice s, struct buf *b)
{
    b->n = 0;
    assert_true(errors_append_json_string(b, s));
    json_error_t err;
    json_t *v = json_loadb(b->p, b->n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) fail_msg("invalid JSON %.*s: %s", (int)b->n, b->p, err.text);
    assert_true(json_is_string(v));
    return v;
}

static void test_escaping(void **state)
{
    struct buf b = BUF_INIT;
    assert_true(errors_append_json_string(&b, SLICE_LIT("q\"b\\s/\t\b\f\x01\x1f\x7f")));
    assert_buf_eq(&b, "\"q\\\"b\\\\s/\\t\\u0008\\u000c\\u0001\\u001f\x7f\"");

    static const char nul[] = "a\0b";
    json_t *v = round_trip((struct slice){nul, 3}, &b);
    assert_int_equal(json_string_length(v), 3);
    assert_memory_equal(json_string_value(v), nul, 3);
    json_decref(v);

    /* valid UTF-8 passes unchanged */
    const char *utf8 = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
    v = round_trip(slice_from(utf8), &b);
    assert_string_equal(json_string_value(v), utf8);
    json_decref(v);

    /* invalid sequences become U+FFFD, one per bad byte; the valid rest is kept */
    struct {
        const char *in, *want;
    } bad[] = {
        {"\xFF", "\xEF\xBF\xBD"},
        {"a\xC3", "a\xEF\xBF\xBD"},                               /* cut at the end */
        {"\xE2\x82z", "\xEF\xBF\xBD\xEF\xBF\xBDz"},               /* cut in the middle */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong */
        {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"\xF5x", "\xEF\xBF\xBDx"},
        {"\x80\xC3\xA9", "\xEF\xBF\xBD\xC3\xA9"}, /* stray continuation, then valid */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = round_trip(slice_from(bad[i].in), &b);
        assert_string_equal(json_string_value(v), bad[i].want);
        json_decref(v);
    }
    buf_free(&b);
}

/* Random bytes as messages (as an upstream HTML error page cut anywhere would give) always
 * produce bodies and events that jansson accepts, with the message intact when valid. */
static void test_random_messages_give_valid_json(void **state)
{
    struct buf b = BUF_INIT;
    uint32_t seed = 99;
    char msg[64];
    for (int round = 0; round < 2000; round++) {
        size_t n = 0;
        seed = seed * 1664525u + 1013904223u;
        n = (seed >> 24) % sizeof msg;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            msg[i] = (char)(seed >> 24);
        }
        struct slice m = {msg, n};
        enum errors_shape shape = round % 2 ? ERRORS_SHAPE_CLAUDE : ERRORS_SHAPE_OPENAI;
        b.n = 0;
        int status = errors_write_for_status(&b, shape, 400 + round % 200, m);
        assert_true(status >= 400 && status <= 599);
        json_error_t err;
        json_t *v = json_loadb(b.p, b.n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        if (!v) fail_msg("invalid body: %s", err.text);
        json_t *e = json_object_get(v, "error");
        assert_true(json_is_object(e));
        assert_true(json_is_string(json_object_get(e, "message")));
        assert_true(json_is_string(json_object_get(e, "type")));
        json_decref(v);

        /* the event is one data line */
        b.n = 0;
        assert_true(errors_write_event_for_status(&b, shape, 502, m));
        size_t newlines = 0;
        for (size_t i = 0; i < b.n; i++) newlines += b.p[i] == '\n' || b.p[i] == '\r';
        assert_int_equal(newlines, shape == ERRORS_SHAPE_CLAUDE ? 3 : 2);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_openai_body),
        cmocka_unit_test(test_claude_body),
        cmocka_unit_test(test_stream_events),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_random_messages_give_valid_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
