/* test_gateway_classify.c — failure classification of upstream attempts: which answers fail
 * over and which health scope pays, which are the client's own errors (returned, never
 * counted), Retry-After from headers and bodies, the quota texts of the platforms, the
 * keyword and empty-content rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/classify.h"

#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static struct gw_verdict status_v(int status, const char *body, const char *retry_after)
{
    struct gw_verdict v;
    gw_classify_status(status, slice_from(body), slice_from(retry_after ? retry_after : ""), NOW_MS,
                       &v);
    return v;
}

static void test_server_errors_fail_over_on_the_channel(void **state)
{
    (void)state;
    int codes[] = {500, 502, 503, 504, 529, 404, 409};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct gw_verdict v = status_v(codes[i], "{\"error\":{\"message\":\"boom\"}}", NULL);
        assert_int_equal(v.action, GW_FAILOVER);
        assert_int_equal(v.kind, HEALTH_FAIL_SERVER_ERROR);
        assert_int_equal(v.retry_after_ms, 0);
    }
    struct gw_verdict v = status_v(408, "", NULL);
    assert_int_equal(v.action, GW_FAILOVER);
    assert_int_equal(v.kind, HEALTH_FAIL_TIMEOUT);
}

static void test_rate_limit_and_retry_after(void **state)
{
    (void)state;
    struct gw_verdict v = status_v(429, "{\"error\":{\"message\":\"slow down\"}}", "7");
    assert_int_equal(v.action, GW_FAILOVER);
    assert_int_equal(v.kind, HEALTH_FAIL_RATE_LIMIT);
    assert_int_equal(v.retry_after_ms, 7000);
    v = status_v(429, "", NULL); /* One API's empty 429 */
    assert_int_equal(v.kind, HEALTH_FAIL_RATE_LIMIT);
    assert_int_equal(v.retry_after_ms, 0);
    /* an HTTP date 90 s ahead */
    v = status_v(503, "", "Thu, 01 Jan 2026 00:01:30 GMT");
    assert_int_equal(v.kind, HEALTH_FAIL_SERVER_ERROR);
    assert_int_equal(v.retry_after_ms, 90000);
    /* a date in the past and garbage mean nothing */
    assert_int_equal(status_v(429, "", "Wed, 31 Dec 2025 23:00:00 GMT").retry_after_ms, 0);
    assert_int_equal(status_v(429, "", "soon").retry_after_ms, 0);
    /* a reset hint in the body */
    v = status_v(429,
                 "{\"error\":{\"type\":\"usage_limit_reached\",\"message\":\"limit\","
                 "\"resets_in_seconds\":42}}",
                 NULL);
    assert_int_equal(v.retry_after_ms, 42000);
    v = status_v(429, "{\"error\":{\"resets_at\":1767225660}}", NULL);
    assert_int_equal(v.retry_after_ms, 60000);
    /* the header wins over the body */
    assert_int_equal(status_v(429, "{\"error\":{\"resets_in_seconds\":42}}", "3").retry_after_ms,
                     3000);
}

static void test_quota_cools_the_credential(void **state)
{
    (void)state;
    struct {
        int status;
        const char *body;
    } cases[] = {
        {402, "{\"error\":{\"message\":\"user quota is not enough\"}}"},
        {402, ""},
        {403,
         "{\"error\":{\"code\":\"insufficient_user_quota\",\"message\":\"用户额度不足, 剩余额度: "
         "$0.000000\"}}"},
        {403, "{\"error\":{\"code\":\"pre_consume_token_quota_failed\"}}"},
        {403, "{\"code\":\"INSUFFICIENT_BALANCE\",\"message\":\"balance\"}"},
        {429, "{\"error\":{\"type\":\"insufficient_quota\",\"message\":\"You exceeded your current "
              "quota\"}}"},
        {400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Your "
         "credit balance is too low to access the Anthropic API.\"}}"},
        {401, "{\"error\":{\"message\":\"该令牌额度已用尽 TokenStatusExhausted[sk-a***z]\"}}"},
        {500, "{\"error\":{\"message\":\"预扣费额度失败\"}}"},
        {403, "{\"error\":{\"message\":\"账户余额不足\"}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gw_verdict v = status_v(cases[i].status, cases[i].body, NULL);
        assert_int_equal(v.action, GW_FAILOVER);
        assert_int_equal(v.kind, HEALTH_FAIL_QUOTA);
    }
}

static void test_auth_cools_the_credential(void **state)
{
    (void)state;
    struct gw_verdict v = status_v(401, "{\"error\":{\"message\":\"无效的令牌\"}}", NULL);
    assert_int_equal(v.action, GW_FAILOVER);
    assert_int_equal(v.kind, HEALTH_FAIL_AUTH);
    v = status_v(403, "{\"error\":{\"message\":\"您的 IP 不在令牌允许访问的列表中\"}}", NULL);
    assert_int_equal(v.kind, HEALTH_FAIL_AUTH);
}

static void test_client_errors_are_returned_and_not_counted(void **state)
{
    (void)state;
    const char *claude_probe =
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
        "\"messages.1.role: Unexpected role \\\"system\\\". The Messages API accepts a top-level "
        "`system` parameter, not \\\"system\\\" as an input message role.\"}}";
    struct gw_verdict v = status_v(400, claude_probe, NULL);
    assert_int_equal(v.action, GW_CLIENT_ERROR);
    assert_int_equal(v.kind, HEALTH_FAIL_CLIENT_ERROR);
    assert_string_equal(v.label, "client error");

    v = status_v(400,
                 "{\"error\":{\"message\":\"This model's maximum context length is 128000 "
                 "tokens.\",\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":"
                 "\"context_length_exceeded\"}}",
                 "5");
    assert_int_equal(v.action, GW_CLIENT_ERROR);
    assert_int_equal(v.retry_after_ms, 0); /* never a cooldown */
    assert_string_equal(v.label, "context too long");

    v = status_v(400, "{\"error\":{\"code\":\"content_filter\",\"message\":\"filtered\"}}", NULL);
    assert_int_equal(v.action, GW_CLIENT_ERROR);
    assert_string_equal(v.label, "content filter");

    v = status_v(422, "{\"detail\":\"tools.0.function.parameters: invalid schema\"}", NULL);
    assert_int_equal(v.action, GW_CLIENT_ERROR);
    assert_int_equal(status_v(413, "", NULL).action, GW_CLIENT_ERROR);
}

static void test_model_unavailable_4xx_fails_over(void **state)
{
    (void)state;
    struct gw_verdict v = status_v(
        400, "{\"error\":{\"message\":\"当前分组 default 下对于模型 x 无可用渠道\"}}", NULL);
    assert_int_equal(v.action, GW_FAILOVER);
    assert_int_equal(v.kind, HEALTH_FAIL_SERVER_ERROR);
    v = status_v(400, "{\"error\":{\"code\":\"model_not_found\"}}", NULL);
    assert_int_equal(v.action, GW_FAILOVER);
}

static void test_transport_errors(void **state)
{
    (void)state;
    struct gw_verdict v;
    gw_classify_transport(UPSTREAM_ERR_CONNECT, &v);
    assert_int_equal(v.action, GW_FAILOVER);
    assert_int_equal(v.kind, HEALTH_FAIL_CONNECT);
    gw_classify_transport(UPSTREAM_ERR_FIRST_BYTE_TIMEOUT, &v);
    assert_int_equal(v.kind, HEALTH_FAIL_TIMEOUT);
    gw_classify_transport(UPSTREAM_ERR_IDLE_TIMEOUT, &v);
    assert_int_equal(v.kind, HEALTH_FAIL_TIMEOUT);
    gw_classify_transport(UPSTREAM_ERR_RESET, &v);
    assert_int_equal(v.kind, HEALTH_FAIL_SERVER_ERROR);
    gw_classify_transport(UPSTREAM_ERR_PROTOCOL, &v);
    assert_int_equal(v.action, GW_FAILOVER);
}

static void test_keywords(void **state)
{
    (void)state;
    char which[32];
    struct slice body = SLICE_LIT("{\"choices\":[{\"message\":{\"content\":\"Sorry, the "
                                  "upstream said: Service Busy, try later\"}}]}");
    assert_false(gw_keyword_match(NULL, body, which, sizeof which));
    assert_false(gw_keyword_match("", body, which, sizeof which));
    assert_false(gw_keyword_match(" , ,", body, which, sizeof which));
    assert_false(gw_keyword_match("overloaded,当前负载", body, which, sizeof which));
    assert_true(gw_keyword_match("overloaded, service busy ", body, which, sizeof which));
    assert_string_equal(which, "service busy");
    assert_true(gw_keyword_match("负载", SLICE_LIT("当前负载已饱和"), which, sizeof which));
    /* a keyword longer than the text, a tiny output buffer */
    assert_false(gw_keyword_match("a much longer keyword than the text", SLICE_LIT("short"), which,
                                  sizeof which));
    char tiny[4];
    assert_true(gw_keyword_match("upstream", body, tiny, sizeof tiny));
    assert_string_equal(tiny, "ups");
}

static void test_empty_content(void **state)
{
    (void)state;
    /* chat */
    assert_false(gw_body_has_content(
        API_CHAT, SLICE_LIT("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
                            "\"finish_reason\":\"stop\"}]}")));
    assert_false(gw_body_has_content(
        API_CHAT, SLICE_LIT("{\"choices\":[{\"message\":{\"content\":\"  \\n\"}}]}")));
    assert_false(gw_body_has_content(API_CHAT, SLICE_LIT("{\"choices\":[]}")));
    assert_false(gw_body_has_content(
        API_CHAT, SLICE_LIT("{\"choices\":[{\"message\":{\"content\":null}}]}")));
    assert_true(gw_body_has_content(
        API_CHAT, SLICE_LIT("{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}")));
    assert_true(gw_body_has_content(
        API_CHAT, SLICE_LIT("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":"
                            "\"c\"}]}}]}")));
    assert_true(
        gw_body_has_content(API_COMPLETIONS, SLICE_LIT("{\"choices\":[{\"text\":\"x\"}]}")));
    /* messages */
    assert_false(gw_body_has_content(API_MESSAGES, SLICE_LIT("{\"content\":[]}")));
    assert_false(gw_body_has_content(
        API_MESSAGES, SLICE_LIT("{\"content\":[{\"type\":\"text\",\"text\":\"\"}]}")));
    assert_true(gw_body_has_content(
        API_MESSAGES, SLICE_LIT("{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}")));
    /* responses */
    assert_false(gw_body_has_content(API_RESPONSES, SLICE_LIT("{\"output\":[]}")));
    assert_false(gw_body_has_content(
        API_RESPONSES,
        SLICE_LIT("{\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\","
                  "\"text\":\"\"}]}]}")));
    assert_true(gw_body_has_content(
        API_RESPONSES,
        SLICE_LIT("{\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\","
                  "\"text\":\"ok\"}]}]}")));
    assert_true(gw_body_has_content(API_RESPONSES,
                                    SLICE_LIT("{\"output\":[{\"type\":\"function_call\"}]}")));
    /* what cannot be parsed is not judged here */
    assert_true(gw_body_has_content(API_CHAT, SLICE_LIT("{\"choices\":[")));
    assert_true(gw_body_has_content(API_CHAT, SLICE_LIT("[1,2]")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_errors_fail_over_on_the_channel),
        cmocka_unit_test(test_rate_limit_and_retry_after),
        cmocka_unit_test(test_quota_cools_the_credential),
        cmocka_unit_test(test_auth_cools_the_credential),
        cmocka_unit_test(test_client_errors_are_returned_and_not_counted),
        cmocka_unit_test(test_model_unavailable_4xx_fails_over),
        cmocka_unit_test(test_transport_errors),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_empty_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
