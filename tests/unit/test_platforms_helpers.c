/* test_platforms_helpers.c — the pure parts of the platform adapters: the acw_sc__v2
 * solver, TOTP, quota conversion, message classification, both envelopes in every shape
 * the reference lists, token/price/model parsing, the cookie jar, detection signatures
 * and the registry. Expected acw values were computed with a separate reference
 * implementation (a few lines of Python following upstream-platforms.md §2.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "platforms/common.h"
#include "platforms/platform.h"

/* ---- acw_sc__v2 ---- */

/* A challenge page shaped like Aliyun's (obfuscated script around arg1 and the table). */
static const char CHALLENGE_PAGE[] =
    "<html><script>\n"
    "var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3';\n"
    "var _0x4818=['\\x63\\x73\\x64','\\x75\\x6e\\x73\\x62\\x6f\\x78'];(function(_0x4c97f0,"
    "_0x1742fd){var _0x4db1c=function(_0x48181e){while(--_0x48181e){_0x4c97f0['push']"
    "(_0x4c97f0['shift']());}};}(_0x4818,0x15b));\n"
    "String['prototype']['unsbox']=function(){var _0x4b082b=this;for(var m=[0xf,0x23,0x1d,0x18,"
    "0x21,0x10,0x1,0x26,0xa,0x9,0x13,0x1f,0x28,0x1b,0x16,0x17,0x19,0xd,0x6,0xb,0x27,0x12,0x14,"
    "0x8,0xe,0x15,0x20,0x1a,0x2,0x1e,0x7,0x4,0x11,0x5,0x3,0x1c,0x22,0x25,0xc,0x24],"
    "_0x4da0dc=[],_0x12605e='',_0x20a7bf=0x0;_0x20a7bf<_0x4b082b['length'];_0x20a7bf++){}};\n"
    "function setCookie(name,value){var expiredate=new Date();expiredate.setTime(expiredate."
    "getTime()+(3600*1000));document.cookie=name+'='+value+';expires='+expiredate.toGMTString()"
    "+';max-age=3600;path=/';}\nfunction reload(x){setCookie('acw_sc__v2',x);document.location."
    "reload();}\n</script></html>";

static void test_acw_recorded_page(void **state)
{
    (void)state;
    char out[41];
    assert_int_equal(acw_challenge_solve(CHALLENGE_PAGE, strlen(CHALLENGE_PAGE), out), 0);
    assert_string_equal(out, "699dbedad126579b6bc0ebb91eaae8d7af3548b5");
    assert_true(acw_challenge_detect(CHALLENGE_PAGE, strlen(CHALLENGE_PAGE)));
    assert_true(pf_body_is_html(CHALLENGE_PAGE, strlen(CHALLENGE_PAGE)));
}

static void test_acw_known_vectors(void **state)
{
    (void)state;
    char out[41];
    assert_int_equal(acw_challenge_compute("0123456789ABCDEF0123456789ABCDEF01234567", NULL, out),
                     0);
    assert_string_equal(out, "d2c7186598ab1a508a4f6064e4fa746323ab17c6");
    assert_int_equal(acw_challenge_compute("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NULL, out),
                     0);
    assert_string_equal(out, "cfffe89fff7a9ff9f9eafeaccffc96ffd87ffc8a");
    /* lower-case arg1 gives the same answer */
    assert_int_equal(acw_challenge_compute("b8b78dda1d5cd2598aaee9dd6975913aa490bae3", NULL, out),
                     0);
    assert_string_equal(out, "699dbedad126579b6bc0ebb91eaae8d7af3548b5");
}

/* A rotated table in the page is honoured (here: reversed order). */
static void test_acw_rotated_table(void **state)
{
    (void)state;
    char page[2048];
    int n = snprintf(page, sizeof page,
                     "<html><script>var arg1 = \"0123456789ABCDEF0123456789ABCDEF01234567\";"
                     "for(var m=[");
    for (int i = 40; i >= 1; i--)
        n += snprintf(page + n, sizeof page - (size_t)n, "%d%s", i, i > 1 ? "," : "");
    n += snprintf(page + n, sizeof page - (size_t)n, "],x=0;;){}</script></html>");
    char out[41];
    assert_int_equal(acw_challenge_solve(page, (size_t)n, out), 0);
    assert_string_equal(out, "46542570fe59da9e70413343cedfd39851d43165");
}

static int hexv(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Property: for random arg1, out XOR key, read back through the table, is arg1. */
static void test_acw_property(void **state)
{
    (void)state;
    static const int perm[40] = {15, 35, 29, 24, 33, 16, 1,  38, 10, 9,  19, 31, 40, 27,
                                 22, 23, 25, 13, 6,  11, 39, 18, 20, 8,  14, 21, 32, 26,
                                 2,  30, 7,  4,  17, 5,  3,  28, 34, 37, 12, 36};
    const char *key = "3000176000856006061501533003690027800375";
    srand(1234);
    for (int iter = 0; iter < 500; iter++) {
        char arg1[41];
        for (int i = 0; i < 40; i++) arg1[i] = "0123456789ABCDEF"[rand() % 16];
        arg1[40] = '\0';
        char out[41];
        assert_int_equal(acw_challenge_compute(arg1, NULL, out), 0);
        assert_int_equal(strlen(out), 40);
        for (int z = 0; z < 40; z += 2) {
            int byte =
                (hexv(out[z]) << 4 | hexv(out[z + 1])) ^ (hexv(key[z]) << 4 | hexv(key[z + 1]));
            assert_int_equal(hexv(arg1[perm[z] - 1]), byte >> 4);
            assert_int_equal(hexv(arg1[perm[z + 1] - 1]), byte & 15);
        }
    }
}

static void test_acw_bad_pages(void **state)
{
    (void)state;
    char out[41];
    const char *bad[] = {
        "",
        "<html>nothing</html>",
        "var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE';",   /* 39 */
        "var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3F';", /* 41 */
        "var arg1='G8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3';",  /* not hex */
        "var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3",    /* unterminated */
        "arg1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(acw_challenge_solve(bad[i], strlen(bad[i]), out), -1);
    assert_int_equal(acw_challenge_solve(NULL, 0, out), -1);
    /* An invalid table in the page (a repeated entry) falls back to the known one. */
    const char *p = "var arg1='B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3';m=[1,1,1]";
    assert_int_equal(acw_challenge_solve(p, strlen(p), out), 0);
    assert_string_equal(out, "699dbedad126579b6bc0ebb91eaae8d7af3548b5");
    assert_int_equal(acw_challenge_compute("xyz", NULL, out), -1);
}

/* ---- TOTP ---- */

static void test_totp_rfc6238(void **state)
{
    (void)state;
    const unsigned char *key = (const unsigned char *)"12345678901234567890";
    static const struct {
        int64_t t;
        const char *code8;
    } v[] = {{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
             {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000LL, "65353130"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[9];
        assert_int_equal(pf_totp_raw(key, 20, v[i].t, 8, out, sizeof out), 0);
        assert_string_equal(out, v[i].code8);
        char six[7];
        assert_int_equal(pf_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", v[i].t, six), 0);
        assert_string_equal(six, v[i].code8 + 2);
    }
    /* Users paste secrets in groups, lower case, with padding. */
    char a[7], b[7];
    assert_int_equal(pf_totp("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", 59, a), 0);
    assert_int_equal(pf_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====", 59, b), 0);
    assert_string_equal(a, "287082");
    assert_string_equal(b, "287082");
    /* Same 30-second window, same code; next window, different. */
    assert_int_equal(pf_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 60, a), 0);
    assert_int_equal(pf_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 89, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(pf_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 90, b), 0);
    assert_string_not_equal(a, b);
}

static void test_totp_bad_input(void **state)
{
    (void)state;
    char out[7];
    assert_int_equal(pf_totp("not base32!", 59, out), -1);
    assert_int_equal(pf_totp("", 59, out), -1);
    assert_int_equal(pf_totp(NULL, 59, out), -1);
    assert_int_equal(pf_totp("18", 59, out), -1); /* 1 and 8 are not base32 */
    unsigned char buf[4];
    assert_int_equal(pf_base32_decode("MZXW6YTBOI", buf, sizeof buf), -1); /* 6 bytes > cap */
    unsigned char big[16];
    assert_int_equal(pf_base32_decode("MZXW6YTBOI======", big, sizeof big), 6);
    assert_memory_equal(big, "foobar", 6);
}

/* ---- money ---- */

static void test_quota_conversion(void **state)
{
    (void)state;
    assert_true(pf_quota_to_money(5000000, 500000) == 10.0);
    assert_true(pf_quota_to_money(250000, 500000) == 0.5);
    assert_true(pf_quota_to_money(1000000, 1000000) == 1.0);
    /* Missing / broken unit → the platforms' default 500000. */
    assert_true(pf_quota_to_money(500000, 0) == 1.0);
    assert_true(pf_quota_to_money(500000, -3) == 1.0);
    assert_true(pf_money_to_quota(2.5, 500000) == 1250000);
    assert_true(pf_money_to_quota(-1, 500000) == 0);
    assert_true(pf_quota_to_money(-500000, 500000) == -1.0); /* debt stays visible */
}

/* ---- messages ---- */

static void test_already_matching(void **state)
{
    (void)state;
    const char *yes[] = {"今日已签到",
                         "你今天已经签到过了",
                         "Already checked in today",
                         "checkin.already_done_model",
                         "您已签到",
                         "already signed in"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) assert_true(pf_msg_already(yes[i]));
    const char *no[] = {"签到成功", "签到功能未启用", "Turnstile token 为空", "", "ok"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) assert_false(pf_msg_already(no[i]));
    assert_false(pf_msg_already(NULL));

    assert_true(pf_msg_captcha("Turnstile token 为空"));
    assert_true(pf_msg_captcha("Turnstile 校验失败，请刷新重试！"));
    assert_false(pf_msg_captcha("请输入两步验证码"));
    assert_false(pf_msg_captcha("验证码或备用码错误，请重试"));

    assert_true(pf_msg_auth("无权进行此操作，未登录且未提供 access token"));
    assert_true(pf_msg_auth("Unauthorized, New-Api-User header not provided"));
    assert_true(pf_msg_auth("无权进行此操作，未提供 Veloera-User"));
    assert_false(pf_msg_auth("签到成功"));
    assert_true(pf_msg_checkin_disabled("签到功能未启用"));
}

/* ---- envelopes ---- */

static int env(const char *body, int status, json_t **root, json_t **data,
               struct platform_error *err)
{
    memset(err, 0, sizeof *err);
    return pf_envelope(body, strlen(body), status, "GET /x", root, data, err);
}

static void test_envelope_shapes(void **state)
{
    (void)state;
    json_t *root, *data;
    struct platform_error err;

    /* lineage envelope, data array */
    assert_int_equal(
        env("{\"success\":true,\"message\":\"\",\"data\":[1,2]}", 200, &root, &data, &err), 0);
    assert_true(json_is_array(data));
    assert_int_equal(json_array_size(data), 2);
    json_decref(root);
    /* data.items */
    assert_int_equal(env("{\"success\":true,\"data\":{\"items\":[{\"id\":1}],\"total\":1}}", 200,
                         &root, &data, &err),
                     0);
    assert_non_null(lineage_token_array(data));
    assert_int_equal(json_array_size(lineage_token_array(data)), 1);
    json_decref(root);
    /* data.data (OneHub) */
    assert_int_equal(env("{\"success\":true,\"data\":{\"data\":[{\"id\":1},{\"id\":2}],\"page\":1,"
                         "\"total_count\":2}}",
                         200, &root, &data, &err),
                     0);
    assert_int_equal(json_array_size(lineage_token_array(data)), 2);
    json_decref(root);
    /* Sub2API code/message/data */
    assert_int_equal(env("{\"code\":0,\"message\":\"success\",\"data\":{\"balance\":12.5}}", 200,
                         &root, &data, &err),
                     0);
    double b;
    assert_true(pf_jnum(data, "balance", &b) && b == 12.5);
    json_decref(root);
    /* /v1/models with and without object:list, and a bare array */
    assert_int_equal(
        env("{\"object\":\"list\",\"data\":[{\"id\":\"a\"}]}", 200, &root, &data, &err), 0);
    assert_true(json_is_array(data));
    json_decref(root);
    assert_int_equal(env("[{\"id\":\"a\"}]", 200, &root, &data, &err), 0);
    assert_true(data == root);
    json_decref(root);
    /* success without data */
    assert_int_equal(env("{\"success\":true,\"message\":\"\"}", 200, &root, &data, &err), 0);
    assert_true(data == root);
    json_decref(root);
}

static void test_envelope_failures(void **state)
{
    (void)state;
    json_t *root, *data;
    struct platform_error err;
    /* HTTP 200 + success:false is a failure with the site's message */
    assert_int_equal(
        env("{\"success\":false,\"message\":\"令牌名称过长\"}", 200, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UPSTREAM);
    assert_non_null(strstr(err.message, "令牌名称过长"));
    assert_null(root);
    assert_int_equal(env("{\"success\":false,\"message\":\"今日已签到\"}", 200, &root, &data, &err),
                     -1);
    assert_int_equal(err.kind, PLATFORM_ERR_ALREADY_DONE);
    assert_int_equal(
        env("{\"success\":false,\"message\":\"Turnstile token 为空\"}", 200, &root, &data, &err),
        -1);
    assert_int_equal(err.kind, PLATFORM_ERR_CAPTCHA);
    assert_non_null(strstr(err.message, "session cookie"));
    assert_int_equal(env("{\"success\":false,\"message\":\"无权进行此操作，access token 无效\"}",
                         200, &root, &data, &err),
                     -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_int_equal(env("{\"success\":false,\"message\":\"无权进行此操作，未提供 New-Api-User\"}",
                         401, &root, &data, &err),
                     -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_non_null(strstr(err.message, "user id"));
    /* Sub2API failures: numeric and string codes */
    assert_int_equal(env("{\"code\":401,\"message\":\"invalid email or "
                         "password\",\"reason\":\"INVALID_CREDENTIALS\"}",
                         401, &root, &data, &err),
                     -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_int_equal(env("{\"code\":\"TOKEN_EXPIRED\",\"message\":\"Token has expired\"}", 401,
                         &root, &data, &err),
                     -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_int_equal(
        env("{\"code\":400,\"message\":\"Invalid request: name\"}", 400, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UPSTREAM);
    /* 404 in JSON (New API) and plain text (Sub2API/gin) */
    assert_int_equal(
        env("{\"error\":{\"message\":\"Invalid URL (POST "
            "/api/user/"
            "checkin)\",\"type\":\"invalid_request_error\",\"param\":\"\",\"code\":\"\"}}",
            404, &root, &data, &err),
        -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UNSUPPORTED);
    assert_int_equal(env("404 page not found", 404, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UNSUPPORTED);
    /* HTML where JSON was expected */
    assert_int_equal(
        env("<!DOCTYPE html><html><body>Welcome</body></html>", 200, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "HTML"));
    assert_int_equal(
        env("<html><script "
            "src=\"https://challenges.cloudflare.com/turnstile/v0/api.js\"></script></html>",
            403, &root, &data, &err),
        -1);
    assert_int_equal(err.kind, PLATFORM_ERR_CAPTCHA);
    assert_int_equal(env(CHALLENGE_PAGE, 200, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_CAPTCHA);
    /* garbage, empty, scalar, truncated */
    const char *bad[] = {"",   "not json",           "\"a string\"",
                         "42", "{\"success\":true,", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(env(bad[i], 200, &root, &data, &err), -1);
        assert_int_equal(err.kind, PLATFORM_ERR_BAD_RESPONSE);
        assert_null(root);
    }
    /* 5xx with a JSON message; 429 empty */
    assert_int_equal(env("{\"error\":{\"message\":\"boom\"}}", 500, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UPSTREAM);
    assert_int_equal(err.http_status, 500);
    assert_int_equal(env("", 429, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UPSTREAM);
    assert_int_equal(env("", 401, &root, &data, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    /* a very long message is cut, never overflows */
    char big[4096] = "{\"success\":false,\"message\":\"";
    size_t n = strlen(big);
    memset(big + n, 'x', 3000);
    strcpy(big + n + 3000, "\"}");
    assert_int_equal(env(big, 200, &root, &data, &err), -1);
    assert_true(strlen(err.message) < sizeof err.message);
}

/* ---- parsing ---- */

static void test_token_parse(void **state)
{
    (void)state;
    struct platform_token t;
    json_t *o =
        json_loads("{\"id\":7,\"user_id\":1,\"key\":\"AbCd**********WxYz\",\"status\":1,"
                   "\"name\":\"gw\",\"expired_time\":-1,\"remain_quota\":1000000,"
                   "\"unlimited_quota\":false,\"model_limits_enabled\":true,"
                   "\"model_limits\":\"gpt-4o,claude\",\"group\":\"vip\",\"DeletedAt\":null}",
                   0, NULL);
    assert_int_equal(lineage_parse_token(o, 500000, &t), 0);
    assert_string_equal(t.id, "7");
    assert_null(t.key);
    assert_string_equal(t.masked_key, "AbCd**********WxYz");
    assert_true(t.enabled);
    assert_false(t.unlimited);
    assert_true(t.remain_quota == 2.0);
    assert_int_equal(t.expires_at, -1);
    assert_string_equal(t.model_limits, "gpt-4o,claude");
    assert_string_equal(t.group, "vip");
    platform_token_free(&t);
    json_decref(o);

    /* One API: full key, models csv, status 2 */
    o = json_loads(
        "{\"id\":\"9\",\"key\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL\","
        "\"status\":2,\"name\":\"x\",\"expired_time\":1900000000,\"unlimited_quota\":true,"
        "\"models\":\"gpt-4o-mini\",\"subnet\":\"\"}",
        0, NULL);
    assert_int_equal(lineage_parse_token(o, 500000, &t), 0);
    assert_string_equal(t.key, "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL");
    assert_false(t.enabled);
    assert_true(t.unlimited);
    assert_int_equal(t.expires_at, 1900000000);
    assert_string_equal(t.model_limits, "gpt-4o-mini");
    platform_token_free(&t);
    json_decref(o);

    /* OneHub: setting.limits, key kept with sk- added; Sub2API key already prefixed */
    o = json_loads("{\"id\":3,\"key\":\"Xy3k_abc\",\"status\":1,\"setting\":{\"limits\":{"
                   "\"limit_model_setting\":{\"enabled\":true,\"models\":[\"a\",\"b\"]}}}}",
                   0, NULL);
    assert_int_equal(lineage_parse_token(o, 500000, &t), 0);
    assert_string_equal(t.key, "sk-Xy3k_abc");
    assert_string_equal(t.model_limits, "a,b");
    platform_token_free(&t);
    json_decref(o);
    o = json_loads("{\"id\":9,\"key\":\"sk-0123\",\"status\":\"active\"}", 0, NULL);
    assert_int_equal(lineage_parse_token(o, 1, &t), 0);
    assert_string_equal(t.key, "sk-0123");
    assert_true(t.enabled);
    assert_null(t.model_limits);
    platform_token_free(&t);
    json_decref(o);

    /* no id, not an object */
    o = json_loads("{\"key\":\"x\"}", 0, NULL);
    assert_int_equal(lineage_parse_token(o, 1, &t), -1);
    platform_token_free(&t);
    json_decref(o);
    o = json_loads("[1]", 0, NULL);
    assert_int_equal(lineage_parse_token(o, 1, &t), -1);
    json_decref(o);
}

static void test_pricing_new_api(void **state)
{
    (void)state;
    json_t *root = json_loads(
        "{\"success\":true,\"data\":[{\"model_name\":\"gpt-4o-mini\",\"quota_type\":0,"
        "\"model_ratio\":0.075,\"model_price\":0,\"completion_ratio\":4},"
        "{\"model_name\":\"dall-e-3\",\"quota_type\":1,\"model_ratio\":0,\"model_price\":0.04,"
        "\"completion_ratio\":0},{\"model_name\":\"\"},{\"nope\":1}],"
        "\"group_ratio\":{\"default\":1,\"vip\":\"0.5\"},\"usable_group\":{}}",
        0, NULL);
    struct platform_model_list l = {0};
    assert_int_equal(lineage_parse_pricing_new_api(root, "vip", 500000, &l), 0);
    assert_int_equal(l.n_prices, 2);
    assert_string_equal(l.prices[0].model, "gpt-4o-mini");
    /* 0.075 × 2 $/1M × 0.5 group = 0.075; output × 4 */
    assert_true(l.prices[0].input_per_million > 0.0749 && l.prices[0].input_per_million < 0.0751);
    assert_true(l.prices[0].output_per_million > 0.2999 && l.prices[0].output_per_million < 0.3001);
    assert_true(l.prices[0].per_call < 0);
    assert_true(l.prices[1].per_call > 0.0199 && l.prices[1].per_call < 0.0201);
    assert_true(l.prices[1].input_per_million < 0);
    platform_model_list_free(&l);
    /* Unknown group → default ratio; a different quota unit scales the price. */
    assert_int_equal(lineage_parse_pricing_new_api(root, "nosuch", 1000000, &l), 0);
    assert_true(l.prices[0].input_per_million > 0.0749 && l.prices[0].input_per_million < 0.0751);
    platform_model_list_free(&l);
    json_decref(root);
    root = json_loads("{\"success\":true,\"data\":{}}", 0, NULL);
    assert_int_equal(lineage_parse_pricing_new_api(root, NULL, 500000, &l), -1);
    platform_model_list_free(&l);
    json_decref(root);
}

static void test_available_model(void **state)
{
    (void)state;
    json_t *d =
        json_loads("{\"gpt-4o-mini\":{\"groups\":[\"default\"],\"owned_by\":\"OpenAI\","
                   "\"price\":{\"model\":\"gpt-4o-mini\",\"type\":\"tokens\",\"input\":0.075,"
                   "\"output\":0.3}},\"mj\":{\"price\":{\"type\":\"times\",\"input\":25}},"
                   "\"bare\":{}}",
                   0, NULL);
    struct platform_model_list l = {0};
    assert_int_equal(lineage_parse_available_model(d, 1, 500000, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.n_prices, 2);
    assert_true(l.prices[0].input_per_million > 0.1499 && l.prices[0].input_per_million < 0.1501);
    assert_true(l.prices[0].output_per_million > 0.5999 && l.prices[0].output_per_million < 0.6001);
    assert_true(l.prices[1].per_call > 0.0499 && l.prices[1].per_call < 0.0501);
    platform_model_list_free(&l);
    json_decref(d);
}

static void test_model_list_parse(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"object\":\"list\",\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"a\"}]}",
        "{\"success\":true,\"data\":[{\"id\":\"a\"},{\"id\":\"b\"}]}",
        "{\"data\":[{\"id\":\"a\",\"type\":\"model\"},{\"id\":\"b\"}],\"has_more\":false}",
        "[\"a\",\"b\"]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *r = json_loads(docs[i], 0, NULL);
        struct platform_model_list l = {0};
        assert_int_equal(pf_parse_model_list(r, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.models[0], "a");
        platform_model_list_free(&l);
        json_decref(r);
    }
    json_t *r = json_loads("{\"object\":\"list\"}", 0, NULL);
    struct platform_model_list l = {0};
    assert_int_equal(pf_parse_model_list(r, &l), -1);
    json_decref(r);
}

/* ---- cookie jar ---- */

static void test_cookie_jar(void **state)
{
    (void)state;
    struct buf jar = BUF_INIT;
    assert_true(pf_cookie_load(&jar, "session=abc; theme=dark"));
    const char *hdrs = "Content-Type: text/html\r\n"
                       "Set-Cookie: acw_tc=123; Path=/; HttpOnly\r\n"
                       "set-cookie: session=new; Path=/; Max-Age=2592000\r\n"
                       "Set-Cookie: theme=; Max-Age=0\r\n"
                       "Set-Cookie: broken\r\n"
                       "Set-Cookie: bad name=1\r\n\r\n";
    assert_true(pf_cookie_merge(&jar, hdrs, strlen(hdrs)));
    char *s = pf_cookie_get(&jar, "session");
    assert_string_equal(s, "new");
    free(s);
    s = pf_cookie_get(&jar, "acw_tc");
    assert_string_equal(s, "123");
    free(s);
    assert_null(pf_cookie_get(&jar, "theme"));
    assert_null(pf_cookie_get(&jar, "broken"));
    assert_true(pf_cookie_set(&jar, SLICE_LIT("acw_sc__v2"), SLICE_LIT("699d")));
    assert_true(buf_nul(&jar));
    assert_string_equal(jar.p, "acw_tc=123; session=new; acw_sc__v2=699d");
    buf_free(&jar);
    /* A bare pasted value is the session cookie; "Cookie:" prefix tolerated. */
    assert_true(pf_cookie_load(&jar, "MTc0MDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQU"));
    s = pf_cookie_get(&jar, "session");
    assert_string_equal(s, "MTc0MDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQU");
    free(s);
    buf_free(&jar);
    assert_true(pf_cookie_load(&jar, "Cookie: session=x; acw_tc=y"));
    s = pf_cookie_get(&jar, "acw_tc");
    assert_string_equal(s, "y");
    free(s);
    buf_free(&jar);
}

/* ---- detection and registry ---- */

static const struct platform *detect_json(const char *status_data)
{
    json_t *d = json_loads(status_data, 0, NULL);
    const struct platform *p = platform_detect_status(d);
    json_decref(d);
    return p;
}

static void test_detect_signatures(void **state)
{
    (void)state;
    assert_string_equal(detect_json("{\"version\":\"v0.10.0\",\"system_name\":\"New "
                                    "API\",\"quota_per_unit\":500000,\"quota_display_type\":"
                                    "\"USD\",\"checkin_enabled\":true,\"setup\":true}")
                            ->id,
                        "new-api");
    assert_string_equal(detect_json("{\"system_name\":\"My relay\",\"setup\":true}")->id,
                        "new-api");
    assert_string_equal(
        detect_json(
            "{\"version\":\"v0.6.10\",\"system_name\":\"One "
            "API\",\"quota_per_unit\":500000,\"display_in_currency\":true,\"chat_link\":\"\"}")
            ->id,
        "one-api");
    assert_string_equal(
        detect_json("{\"system_name\":\"One Hub\",\"PaymentUSDRate\":7.3,\"UptimeEnabled\":false}")
            ->id,
        "one-hub");
    assert_string_equal(
        detect_json(
            "{\"system_name\":\"Done "
            "Hub\",\"GeminiAPIEnabled\":true,\"max_log_query_days\":30,\"PaymentUSDRate\":7.3}")
            ->id,
        "done-hub");
    assert_string_equal(
        detect_json(
            "{\"system_name\":\"Veloera\",\"check_in_enabled\":true,\"quota_per_unit\":500000}")
            ->id,
        "veloera");
    assert_string_equal(detect_json("{\"system_name\":\"x\",\"check_in_enabled\":false}")->id,
                        "veloera");
}

static void test_registry(void **state)
{
    (void)state;
    const char *ids[] = {"new-api", "anyrouter", "one-api", "one-hub", "done-hub",
                         "veloera", "sub2api",   "openai",  "claude"};
    size_t n = 0;
    for (const struct platform *const *p = platform_all(); *p; p++) n++;
    assert_int_equal(n, 9);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const struct platform *p = platform_by_id(ids[i]);
        assert_non_null(p);
        assert_string_equal(p->id, ids[i]);
        assert_non_null(p->models);
        assert_true(p->default_formats != 0);
        assert_true(p->has_management == (p->login != NULL));
        assert_true(p->has_checkin == (p->checkin != NULL));
        if (p->has_management) {
            assert_non_null(p->balance);
            assert_non_null(p->list_tokens);
            assert_non_null(p->create_token);
            assert_non_null(p->delete_token);
            assert_non_null(p->refresh_session);
        }
    }
    assert_string_equal(platform_by_id("newapi")->id, "new-api");
    assert_string_equal(platform_by_id("ONE-HUB")->id, "one-hub");
    assert_null(platform_by_id("nope"));
    assert_null(platform_by_id(NULL));
    assert_false(platform_by_id("one-api")->has_checkin);
    assert_false(platform_by_id("sub2api")->has_checkin);
    assert_true(platform_by_id("veloera")->has_checkin);
    assert_true(platform_by_id("claude")->default_formats == PLATFORM_FORMAT_MESSAGES);
}

/* Bad input never crashes: truncations and byte flips of real answers go through the
 * envelope and every parser (ASan/UBSan watch). */
static void exercise(const char *body, size_t n, int status)
{
    json_t *root, *data;
    struct platform_error err;
    if (pf_envelope(body, n, status, "GET /x", &root, &data, &err) != 0) {
        assert_true(err.kind != PLATFORM_OK);
        assert_true(strlen(err.message) < sizeof err.message);
        return;
    }
    const json_t *arr = lineage_token_array(data);
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        struct platform_token t;
        if (lineage_parse_token(o, 500000, &t) == 0) assert_non_null(t.id);
        platform_token_free(&t);
    }
    struct platform_model_list l = {0};
    (void)lineage_parse_pricing_new_api(root, "default", 500000, &l);
    (void)lineage_parse_available_model(data, 1, 500000, &l);
    (void)pf_parse_model_list(root, &l);
    platform_model_list_free(&l);
    char out[41];
    (void)acw_challenge_solve(body, n, out);
    json_decref(root);
}

static void test_bad_input_never_crashes(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"success\":true,\"data\":{\"page\":1,\"total\":2,\"items\":[{\"id\":7,\"key\":\"AbCd**"
        "wx\","
        "\"status\":1,\"name\":\"gw\",\"expired_time\":-1,\"remain_quota\":5,\"model_limits_"
        "enabled\":true,"
        "\"model_limits\":\"a,b\"},{\"id\":\"8\",\"setting\":{\"limits\":{\"limit_model_setting\":"
        "{\"enabled\":true,\"models\":[1,null,\"x\"]}}}}]}}",
        "{\"success\":true,\"data\":[{\"model_name\":\"m\",\"quota_type\":1,\"model_price\":1e308,"
        "\"completion_ratio\":-1}],\"group_ratio\":{\"default\":\"NaN\"}}",
        "{\"code\":0,\"data\":{\"m\":{\"price\":{\"type\":\"times\",\"input\":\"3\"}}}}",
        CHALLENGE_PAGE,
    };
    srand(42);
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t n = strlen(docs[d]);
        char *b = malloc(n + 1);
        for (size_t cut = 0; cut <= n; cut += 3) exercise(docs[d], cut, 200);
        for (int iter = 0; iter < 2000; iter++) {
            memcpy(b, docs[d], n + 1);
            for (int k = 0; k < 3; k++) b[rand() % n] = (char)(rand() % 256);
            exercise(b, n, iter % 7 == 0 ? 401 : 200);
        }
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acw_recorded_page),       cmocka_unit_test(test_acw_known_vectors),
        cmocka_unit_test(test_acw_rotated_table),       cmocka_unit_test(test_acw_property),
        cmocka_unit_test(test_acw_bad_pages),           cmocka_unit_test(test_totp_rfc6238),
        cmocka_unit_test(test_totp_bad_input),          cmocka_unit_test(test_quota_conversion),
        cmocka_unit_test(test_already_matching),        cmocka_unit_test(test_envelope_shapes),
        cmocka_unit_test(test_envelope_failures),       cmocka_unit_test(test_token_parse),
        cmocka_unit_test(test_pricing_new_api),         cmocka_unit_test(test_available_model),
        cmocka_unit_test(test_model_list_parse),        cmocka_unit_test(test_cookie_jar),
        cmocka_unit_test(test_detect_signatures),       cmocka_unit_test(test_registry),
        cmocka_unit_test(test_bad_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
