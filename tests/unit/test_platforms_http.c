/* test_platforms_http.c — the adapters over real HTTP against small scripted sites
 * (tests/unit/mock_http.h with a handler): New API login with cookie and New-Api-User,
 * 2FA, balance, check-in with reward then "already", token pages with masked keys,
 * create/delete, models and prices; One API's fixed 10-token pages and no check-in;
 * Veloera's check-in; AnyRouter's acw_sc__v2 challenge and sign_in balance diff; Sub2API
 * JWT login, balance in USD, keys; detection; and the failures: HTML instead of JSON,
 * wrong password, expired session, unreachable site, credentials kept out of messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mock_http.h"
#include "platforms/common.h"
#include "platforms/platform.h"

/* ---- the scripted site ---- */

enum site_kind {
    SITE_NEW_API,
    SITE_ONE_API,
    SITE_VELOERA,
    SITE_ANYROUTER,
    SITE_SUB2API,
    SITE_HTML
};

#define ACW_ARG1     "B8B78DDA1D5CD2598AAEE9DD6975913AA490BAE3"
#define ACW_EXPECTED "699dbedad126579b6bc0ebb91eaae8d7af3548b5" /* computed independently */
#define TOTP_SECRET  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static struct site {
    pthread_mutex_t mu;
    enum site_kind kind;
    long long quota, used;
    bool checked_in;
    int n_tokens; /* tokens 1..n_tokens exist unless deleted */
    bool deleted[64];
    char names[64][32];
    int key_fetches;   /* POST /api/token/{id}/key calls */
    int challenges;    /* challenge pages served */
    bool expired;      /* every authenticated route answers 401 */
    bool sign_in_noop; /* AnyRouter: sign_in grants nothing */
} S;

static void site_reset(enum site_kind kind)
{
    pthread_mutex_destroy(&S.mu);
    memset(&S, 0, sizeof S);
    pthread_mutex_init(&S.mu, NULL);
    S.kind = kind;
    S.quota = 5000000;
    S.used = 250000;
    S.n_tokens = 3;
    for (int i = 0; i < 64; i++) snprintf(S.names[i], sizeof S.names[i], "tok%d", i);
}

static bool reply(struct mock_conn *c, int status, const char *extra, const char *ctype,
                  const char *body)
{
    /* One send: a head and a body in two segments would meet Nagle + delayed ACK (40 ms). */
    size_t bl = strlen(body);
    char *out = malloc(1024 + bl);
    int n =
        snprintf(out, 1024, "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                 status, ctype, bl, extra ? extra : "");
    memcpy(out + n, body, bl);
    bool ok = mock_send(c->fd, out, (size_t)n + bl);
    free(out);
    return ok;
}

static bool json(struct mock_conn *c, int status, const char *body)
{
    return reply(c, status, NULL, "application/json", body);
}

static bool cookie_has(const char *head, const char *pair)
{
    char v[2048];
    return mock_header(head, "Cookie", v, sizeof v) && strstr(v, pair) != NULL;
}

static bool hdr_is(const char *head, const char *name, const char *value)
{
    char v[512];
    return mock_header(head, name, v, sizeof v) && strcmp(v, value) == 0;
}

/* The lineage's user auth: session cookie or bearer token, plus the user header. */
static bool lineage_auth(struct mock_conn *c, const char *head)
{
    if (S.expired)
        return json(c, 401,
                    "{\"success\":false,\"message\":\"无权进行此操作，未登录且未提供 access "
                    "token\"}"),
               false;
    bool authed = cookie_has(head, "session=sid-alice") ||
                  hdr_is(head, "Authorization", "Bearer tok-alice-0123456789abcdef");
    if (!authed) {
        json(c, 401,
             "{\"success\":false,\"message\":\"无权进行此操作，未登录且未提供 access token\"}");
        return false;
    }
    if (S.kind == SITE_NEW_API || S.kind == SITE_ANYROUTER) {
        if (!hdr_is(head, "New-Api-User", "1")) {
            json(c, 401, "{\"success\":false,\"message\":\"无权进行此操作，未提供 New-Api-User\"}");
            return false;
        }
    }
    if (S.kind == SITE_VELOERA && !hdr_is(head, "Veloera-User", "1")) {
        json(c, 401, "{\"success\":false,\"message\":\"无权进行此操作，未提供 Veloera-User\"}");
        return false;
    }
    return true;
}

static void token_json(char *out, size_t cap, int id, bool masked)
{
    char key[64];
    snprintf(key, sizeof key, "%s%02dKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEY%02d",
             masked ? "" : "", id, id);
    if (masked) snprintf(key, sizeof key, "%.4s**********%02d%02d", "AbCd", id, id);
    snprintf(
        out, cap,
        "{\"id\":%d,\"user_id\":1,\"key\":\"%s\",\"status\":1,\"name\":\"%s\","
        "\"expired_time\":-1,\"remain_quota\":500000,\"unlimited_quota\":false,"
        "\"model_limits_enabled\":false,\"model_limits\":\"\",\"group\":\"\",\"DeletedAt\":null}",
        id, key, S.names[id]);
}

/* The token list of the lineage in the site's shape. */
static bool token_page(struct mock_conn *c, const char *target)
{
    char body[16384];
    size_t n = 0;
    int live[64], nl = 0;
    for (int i = S.n_tokens; i >= 1; i--) /* newest first */
        if (!S.deleted[i]) live[nl++] = i;
    /* New API here caps pages at 2; One API has fixed pages of 10; the rest honour size. */
    int per = S.kind == SITE_NEW_API ? 2 : S.kind == SITE_ONE_API ? 10 : 100;
    long p = mock_query(target, "p", 0);
    int page0 = S.kind == SITE_NEW_API ? (p <= 1 ? 0 : (int)p - 1) : (int)p; /* 1-based there */
    if (S.kind == SITE_NEW_API)
        n += (size_t)snprintf(
            body + n, sizeof body - n,
            "{\"success\":true,\"message\":\"\",\"data\":{\"page\":%d,\"page_size\":%d,"
            "\"total\":%d,\"items\":[",
            page0 + 1, per, nl);
    else
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "{\"success\":true,\"message\":\"\",\"data\":[");
    for (int k = page0 * per, first = 1; k < nl && k < (page0 + 1) * per; k++, first = 0) {
        char t[512];
        token_json(t, sizeof t, live[k], S.kind == SITE_NEW_API);
        n += (size_t)snprintf(body + n, sizeof body - n, "%s%s", first ? "" : ",", t);
    }
    snprintf(body + n, sizeof body - n, S.kind == SITE_NEW_API ? "]}}" : "]}");
    return json(c, 200, body);
}

static bool handle_lineage(struct mock_conn *c, const char *head, const char *m, const char *target,
                           const char *body)
{
    char buf[4096];
    if (mock_path_is(target, "/api/status")) {
        if (S.kind == SITE_ONE_API)
            return json(
                c, 200,
                "{\"success\":true,\"message\":\"\",\"data\":{\"version\":\"v0.6.10\",\"system_"
                "name\":\"One API\",\"quota_per_unit\":500000,\"display_in_currency\":true}}");
        if (S.kind == SITE_VELOERA)
            return json(c, 200,
                        "{\"success\":true,\"message\":\"\",\"data\":{\"system_name\":\"Veloera\","
                        "\"quota_per_unit\":500000,\"check_in_enabled\":true}}");
        return json(c, 200,
                    "{\"success\":true,\"message\":\"\",\"data\":{\"version\":\"v0.10.0\",\"system_"
                    "name\":\"New "
                    "API\",\"quota_per_unit\":500000,\"quota_display_type\":\"USD\",\"checkin_"
                    "enabled\":true,\"setup\":true}}");
    }
    if (mock_path_is(target, "/api/user/login") && strcmp(m, "POST") == 0) {
        if (strstr(body, "\"bob\"") && strstr(body, "\"secret123\""))
            return reply(c, 200, "Set-Cookie: session=pending-bob; Path=/\r\n", "application/json",
                         "{\"success\":true,\"message\":\"请输入两步验证码\",\"data\":{\"require_"
                         "2fa\":true}}");
        if (!strstr(body, "\"alice\"") || !strstr(body, "\"secret123\""))
            return json(c, 200,
                        "{\"success\":false,\"message\":\"用户名或密码错误，或用户已被封禁\"}");
        /* Login answers are not user info: quota 0 here. */
        return reply(c, 200, "Set-Cookie: session=sid-alice; Path=/; Max-Age=2592000; HttpOnly\r\n",
                     "application/json",
                     "{\"success\":true,\"message\":\"\",\"data\":{\"id\":1,\"username\":\"alice\","
                     "\"quota\":0,\"access_token\":\"\"}}");
    }
    if (mock_path_is(target, "/api/user/login/2fa")) {
        char want[7];
        pf_totp(TOTP_SECRET, (int64_t)time(NULL), want);
        char expect[32];
        snprintf(expect, sizeof expect, "\"code\":\"%s\"", want);
        if (!cookie_has(head, "session=pending-bob") || !strstr(body, expect))
            return json(c, 200, "{\"success\":false,\"message\":\"验证码或备用码错误，请重试\"}");
        return reply(
            c, 200, "Set-Cookie: session=sid-alice; Path=/\r\n", "application/json",
            "{\"success\":true,\"message\":\"\",\"data\":{\"id\":1,\"username\":\"bob\"}}");
    }
    if (!lineage_auth(c, head)) return true;
    if (mock_path_is(target, "/api/user/self")) {
        snprintf(buf, sizeof buf,
                 "{\"success\":true,\"message\":\"\",\"data\":{\"id\":1,\"username\":\"alice\","
                 "\"display_name\":\"Alice\",\"group\":\"vip\",\"quota\":%lld,\"used_quota\":%lld,"
                 "\"access_token\":\"%s\"}}",
                 S.quota, S.used, S.kind == SITE_VELOERA ? "tok-alice-0123456789abcdef" : "");
        return json(c, 200, buf);
    }
    if (mock_path_is(target, "/api/user/checkin") && S.kind == SITE_NEW_API) {
        if (strcmp(m, "GET") == 0) {
            snprintf(buf, sizeof buf,
                     "{\"success\":true,\"data\":{\"enabled\":true,\"stats\":{\"checked_in_today\":"
                     "%s}}}",
                     S.checked_in ? "true" : "false");
            return json(c, 200, buf);
        }
        if (S.checked_in)
            return json(c, 200, "{\"success\":false,\"message\":\"checkin.already_done_model\"}");
        S.checked_in = true;
        S.quota += 300000;
        return json(c, 200,
                    "{\"success\":true,\"message\":\"签到成功\",\"data\":{\"quota_awarded\":300000,"
                    "\"checkin_date\":\"2026-03-05\"}}");
    }
    if (mock_path_is(target, "/api/user/check_in_status") && S.kind == SITE_VELOERA) {
        return json(c, 200,
                    S.checked_in ? "{\"success\":true,\"data\":{\"can_check_in\":false}}"
                                 : "{\"success\":true,\"data\":{\"can_check_in\":true}}");
    }
    if (mock_path_is(target, "/api/user/check_in") && S.kind == SITE_VELOERA) {
        if (S.checked_in)
            return json(c, 200, "{\"success\":false,\"message\":\"你今天已经签到过了\"}");
        S.checked_in = true;
        S.quota += 250000;
        return json(c, 200,
                    "{\"success\":true,\"message\":\"签到成功\",\"data\":{\"quota\":250000}}");
    }
    if (mock_path_is(target, "/api/user/sign_in") && S.kind == SITE_ANYROUTER) {
        if (!hdr_is(head, "X-Requested-With", "XMLHttpRequest"))
            return json(c, 400, "{\"success\":false,\"message\":\"bad request\"}");
        if (!S.checked_in && !S.sign_in_noop) S.quota += 25 * 500000;
        S.checked_in = true;
        return json(c, 200, "{\"success\":true,\"message\":\"\"}");
    }
    if (strncmp(target, "/api/token/", 11) == 0) {
        int id = atoi(target + 11);
        if (strcmp(m, "GET") == 0) return token_page(c, target);
        if (strcmp(m, "POST") == 0 && id > 0 && strstr(target, "/key")) {
            S.key_fetches++;
            snprintf(buf, sizeof buf,
                     "{\"success\":true,\"message\":\"\",\"data\":{\"key\":\"%"
                     "02dKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEY%02d\"}}",
                     id, id);
            return json(c, 200, buf);
        }
        if (strcmp(m, "POST") == 0 && id == 0) {
            if (!strstr(body, "\"expired_time\":-1"))
                return json(c, 200, "{\"success\":false,\"message\":\"expired_time must be -1\"}");
            if (S.n_tokens >= 63)
                return json(c, 200,
                            "{\"success\":false,\"message\":\"已达到最大令牌数量限制 (63)\"}");
            S.n_tokens++;
            const char *nm = strstr(body, "\"name\":\"");
            if (nm) sscanf(nm + 8, "%31[^\"]", S.names[S.n_tokens]);
            if (S.kind == SITE_ONE_API) {
                char t[512];
                token_json(t, sizeof t, S.n_tokens, false);
                snprintf(buf, sizeof buf, "{\"success\":true,\"message\":\"\",\"data\":%s}", t);
                return json(c, 200, buf);
            }
            return json(c, 200, "{\"success\":true,\"message\":\"\"}");
        }
        if (strcmp(m, "DELETE") == 0 && id > 0 && id <= S.n_tokens) {
            S.deleted[id] = true;
            return json(c, 200, "{\"success\":true,\"message\":\"\"}");
        }
    }
    if (mock_path_is(target, "/api/user/models") ||
        mock_path_is(target, "/api/user/available_models"))
        return json(
            c, 200,
            "{\"success\":true,\"message\":\"\",\"data\":[\"gpt-4o-mini\",\"claude-sonnet-4-5\"]}");
    if (mock_path_is(target, "/api/pricing") && S.kind != SITE_ONE_API)
        return json(c, 200,
                    "{\"success\":true,\"data\":[{\"model_name\":\"gpt-4o-mini\",\"quota_type\":0,"
                    "\"model_ratio\":0.075,\"model_price\":0,\"completion_ratio\":4}],\"group_"
                    "ratio\":{\"default\":1,\"vip\":0.5},\"usable_group\":{}}");
    if (mock_path_is(target, "/api/user/self/groups") && S.kind != SITE_ONE_API)
        return json(c, 200,
                    "{\"success\":true,\"message\":\"\",\"data\":{\"default\":{\"ratio\":1,"
                    "\"desc\":\"默认分组\"},\"vip\":{\"ratio\":\"0.5\",\"desc\":\"VIP\"}}}");
    snprintf(buf, sizeof buf,
             "{\"error\":{\"message\":\"Invalid URL (%s "
             "%s)\",\"type\":\"invalid_request_error\",\"param\":\"\",\"code\":\"\"}}",
             m, target);
    return json(c, 404, buf);
}

static bool handle_sub2api(struct mock_conn *c, const char *head, const char *m, const char *target,
                           const char *body)
{
    if (mock_path_is(target, "/api/v1/settings/public"))
        return json(c, 200,
                    "{\"code\":0,\"message\":\"success\",\"data\":{\"turnstile_enabled\":false,"
                    "\"site_name\":\"Sub2API\"}}");
    if (mock_path_is(target, "/api/v1/auth/login")) {
        if (!strstr(body, "\"email\":\"alice@example.com\"") || !strstr(body, "\"secret123\""))
            return json(c, 401,
                        "{\"code\":401,\"message\":\"invalid email or "
                        "password\",\"reason\":\"INVALID_CREDENTIALS\"}");
        return json(c, 200,
                    "{\"code\":0,\"message\":\"success\",\"data\":{\"access_token\":\"jwt-alice-"
                    "0123456789\",\"refresh_token\":\"rt-alice-0123456789\",\"expires_in\":86400,"
                    "\"token_type\":\"Bearer\",\"user\":{\"id\":1,\"email\":\"alice@example.com\","
                    "\"username\":\"alice\",\"balance\":12.5}}}");
    }
    if (strncmp(target, "/api/v1/", 8) == 0) {
        if (S.expired || !hdr_is(head, "Authorization", "Bearer jwt-alice-0123456789"))
            return json(c, 401,
                        S.expired ? "{\"code\":\"TOKEN_EXPIRED\",\"message\":\"Token has expired\"}"
                                  : "{\"code\":\"UNAUTHORIZED\",\"message\":\"Authorization header "
                                    "is required\"}");
        if (mock_path_is(target, "/api/v1/auth/me"))
            return json(
                c, 200,
                "{\"code\":0,\"message\":\"success\",\"data\":{\"id\":1,\"email\":\"alice@example."
                "com\",\"username\":\"alice\",\"balance\":12.5,\"status\":\"active\"}}");
        if (mock_path_is(target, "/api/v1/keys") && strcmp(m, "GET") == 0)
            return json(
                c, 200,
                "{\"code\":0,\"message\":\"success\",\"data\":{\"items\":[{\"id\":9,\"user_id\":1,"
                "\"key\":\"sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                "\"name\":\"gw\",\"group_id\":3,\"status\":\"active\",\"group\":{\"id\":3,\"name\":"
                "\"claude-max\"}}],\"total\":1,\"page\":1,\"page_size\":100,\"pages\":1}}");
        if (mock_path_is(target, "/api/v1/groups/available"))
            return json(
                c, 200,
                "{\"code\":0,\"message\":\"success\",\"data\":[{\"id\":3,\"name\":\"claude-max\","
                "\"description\":\"\",\"platform\":\"anthropic\",\"rate_multiplier\":1.5}]}");
        if (mock_path_is(target, "/api/v1/keys") && strcmp(m, "POST") == 0) {
            if (!strstr(body, "\"group_id\":3"))
                return json(c, 400, "{\"code\":400,\"message\":\"Invalid request: group\"}");
            return json(
                c, 200,
                "{\"code\":0,\"message\":\"success\",\"data\":{\"id\":10,\"user_id\":1,\"key\":"
                "\"sk-aaaa\",\"name\":\"gw2\",\"group_id\":3,\"status\":\"active\"}}");
        }
    }
    if (mock_path_is(target, "/v1/models")) {
        if (!hdr_is(head, "Authorization",
                    "Bearer sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
            return json(c, 401, "{\"code\":\"INVALID_API_KEY\",\"message\":\"Invalid API key\"}");
        return json(c, 200,
                    "{\"object\":\"list\",\"data\":[{\"id\":\"claude-sonnet-4-5-20250929\","
                    "\"type\":\"model\"}]}");
    }
    return reply(c, 404, NULL, "text/plain", "404 page not found");
}

static const char CHALLENGE[] =
    "<html><script>var arg1='" ACW_ARG1 "';var _0x=['x'];for(var m=[0xf,0x23,0x1d,0x18,0x21,"
    "0x10,0x1,0x26,0xa,0x9,0x13,0x1f,0x28,0x1b,0x16,0x17,0x19,0xd,0x6,0xb,0x27,0x12,0x14,0x8,"
    "0xe,0x15,0x20,0x1a,0x2,0x1e,0x7,0x4,0x11,0x5,0x3,0x1c,0x22,0x25,0xc,0x24],i=0;;){}"
    "</script></html>";

static bool site_handler(struct mock_conn *c, const char *head, const char *target,
                         const char *body, size_t body_len)
{
    char *nb = strndup(body ? body : "", body_len); /* the server's body is not NUL-terminated */
    body = nb;
    char m[16] = "";
    sscanf(head, "%15s", m);
    pthread_mutex_lock(&S.mu);
    bool ok;
    if (S.kind == SITE_HTML) {
        ok = reply(c, 200, NULL, "text/html",
                   "<!doctype html><html><body>Welcome to nginx!</body></html>");
    } else if (S.kind == SITE_SUB2API) {
        ok = handle_sub2api(c, head, m, target, body);
    } else if (S.kind == SITE_ANYROUTER && !cookie_has(head, "acw_sc__v2=" ACW_EXPECTED)) {
        S.challenges++;
        ok = reply(c, 200, "Set-Cookie: acw_tc=waf123; Path=/; HttpOnly\r\n",
                   "text/html; charset=utf-8", CHALLENGE);
    } else {
        if (S.kind == SITE_ANYROUTER && !cookie_has(head, "acw_tc=waf123"))
            ok = json(c, 403, "{\"success\":false,\"message\":\"waf cookie missing\"}");
        else
            ok = handle_lineage(c, head, m, target, body);
    }
    pthread_mutex_unlock(&S.mu);
    free(nb);
    return ok;
}

/* ---- fixture ---- */

struct fx {
    struct mock_server *m;
    fetch_client_t *f;
    char url[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->m = mock_start();
    f->m->handler = site_handler;
    f->f = fetch_client_new();
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->m->port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fetch_client_free(f->f);
    mock_stop(f->m);
    free(f);
    return 0;
}

/* ---- New API ---- */

static void test_new_api_flow(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_NEW_API);
    const struct platform *p = platform_by_id("new-api");
    struct platform_error err;
    struct platform_credentials cr = {
        .base_url = f->url, .username = "alice", .password = "secret123"};

    struct platform_session s;
    assert_int_equal(p->login(f->f, &cr, &s, &err), 0);
    assert_string_equal(s.user_id, "1");
    assert_non_null(strstr(s.cookie, "session=sid-alice"));
    assert_null(s.access_token); /* the empty access_token of the login row is ignored */
    assert_string_equal(s.username, "alice");

    struct platform_credentials sc = {.base_url = f->url, .cookie = s.cookie, .user_id = s.user_id};
    struct platform_balance b;
    assert_int_equal(p->balance(f->f, &sc, &b, &err), 0);
    assert_true(b.balance == 10.0);
    assert_true(b.used == 0.5);
    assert_true(b.quota_per_unit == 500000);
    assert_int_equal(b.raw_quota, 5000000);
    assert_string_equal(b.currency, "USD");
    assert_string_equal(b.display_name, "Alice");
    assert_string_equal(b.group, "vip");
    platform_balance_free(&b);

    /* check-in: reward from data.quota_awarded, then "already" (not a failure) */
    struct platform_checkin ck;
    assert_int_equal(p->checkin(f->f, &sc, &ck, &err), 0);
    assert_false(ck.already_done);
    assert_true(ck.reward == 0.6);
    assert_string_equal(ck.message, "签到成功");
    platform_checkin_free(&ck);
    assert_int_equal(p->checkin(f->f, &sc, &ck, &err), 0);
    assert_true(ck.already_done);
    platform_checkin_free(&ck);

    /* tokens: 2 pages of 2 (1-based paging), masked keys recovered */
    struct platform_token_list tl;
    assert_int_equal(p->list_tokens(f->f, &sc, &tl, &err), 0);
    assert_int_equal(tl.n, 3);
    assert_int_equal(S.key_fetches, 3);
    assert_string_equal(tl.items[0].id, "3");
    assert_string_equal(tl.items[0].key, "sk-03KEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEY03");
    assert_string_equal(tl.items[0].masked_key, "AbCd**********0303");
    assert_true(tl.items[0].remain_quota == 1.0);
    assert_int_equal(tl.items[0].expires_at, -1);
    platform_token_list_free(&tl);

    /* create → found by name in the new list with its full key; delete */
    struct platform_token_spec spec = {.name = "metarelay", .unlimited = true, .expires_at = -1};
    struct platform_token t;
    assert_int_equal(p->create_token(f->f, &sc, &spec, &t, &err), 0);
    assert_string_equal(t.id, "4");
    assert_string_equal(t.name, "metarelay");
    assert_string_equal(t.key, "sk-04KEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEYKEY04");
    assert_int_equal(p->delete_token(f->f, &sc, t.id, &err), 0);
    assert_true(S.deleted[4]);
    platform_token_free(&t);
    assert_int_equal(p->delete_token(f->f, &sc, "../../x", &err), -1);

    /* models and prices (user group vip: ratio 0.5) */
    struct platform_model_list ml;
    assert_int_equal(p->models(f->f, &sc, &ml, &err), 0);
    assert_int_equal(ml.n, 2);
    assert_int_equal(ml.n_prices, 1);
    assert_true(ml.prices[0].input_per_million > 0.0749 && ml.prices[0].input_per_million < 0.0751);
    platform_model_list_free(&ml);

    struct platform_group_list gl;
    assert_int_equal(p->groups(f->f, &sc, &gl, &err), 0);
    assert_int_equal(gl.n, 2);
    assert_true(gl.items[1].ratio == 0.5);
    platform_group_list_free(&gl);
    platform_session_free(&s);
}

static void test_new_api_password_only_and_errors(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_NEW_API);
    const struct platform *p = platform_by_id("new-api");
    struct platform_error err;
    /* A password alone: the adapter logs in by itself. */
    struct platform_credentials cr = {
        .base_url = f->url, .username = "alice", .password = "secret123"};
    struct platform_balance b;
    assert_int_equal(p->balance(f->f, &cr, &b, &err), 0);
    assert_true(b.balance == 10.0);
    platform_balance_free(&b);

    /* Wrong password: AUTH with the site's words, never the password. */
    struct platform_credentials bad = {
        .base_url = f->url, .username = "alice", .password = "wrong-password-xyz"};
    struct platform_session s;
    assert_int_equal(p->login(f->f, &bad, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_non_null(strstr(err.message, "用户名或密码错误"));
    assert_null(strstr(err.message, "wrong-password-xyz"));
    assert_null(s.cookie);

    /* Missing user id: AUTH naming the header. */
    struct platform_credentials nouid = {.base_url = f->url, .cookie = "session=sid-alice"};
    assert_int_equal(p->balance(f->f, &nouid, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_non_null(strstr(err.message, "user id"));

    /* Expired session. */
    S.expired = true;
    struct platform_credentials sc = {
        .base_url = f->url, .cookie = "session=sid-alice", .user_id = "1"};
    assert_int_equal(p->balance(f->f, &sc, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_int_equal(err.http_status, 401);
    assert_null(strstr(err.message, "sid-alice"));
    /* refresh_session re-logs in only with a password */
    assert_int_equal(p->refresh_session(f->f, &sc, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_non_null(strstr(err.message, "paste a new session cookie"));
    S.expired = false;
    struct platform_credentials both = {.base_url = f->url,
                                        .cookie = "session=old",
                                        .user_id = "1",
                                        .username = "alice",
                                        .password = "secret123"};
    assert_int_equal(p->refresh_session(f->f, &both, &s, &err), 0);
    assert_non_null(strstr(s.cookie, "session=sid-alice"));
    platform_session_free(&s);
}

static void test_new_api_2fa(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_NEW_API);
    const struct platform *p = platform_by_id("new-api");
    struct platform_error err;
    struct platform_session s;
    struct platform_credentials no = {
        .base_url = f->url, .username = "bob", .password = "secret123"};
    assert_int_equal(p->login(f->f, &no, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_NEEDS_2FA);
    struct platform_credentials wrong = no;
    wrong.totp_secret = "MZXW6YTBOI======";
    assert_int_equal(p->login(f->f, &wrong, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_NEEDS_2FA);
    assert_non_null(strstr(err.message, "TOTP"));
    struct platform_credentials ok = no;
    ok.totp_secret = TOTP_SECRET;
    assert_int_equal(p->login(f->f, &ok, &s, &err), 0);
    assert_non_null(strstr(s.cookie, "session=sid-alice"));
    assert_string_equal(s.user_id, "1");
    platform_session_free(&s);
}

/* ---- One API ---- */

static void test_one_api(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_ONE_API);
    S.n_tokens = 23; /* three pages of 10 */
    const struct platform *p = platform_by_id("one-api");
    struct platform_error err;
    struct platform_credentials cr = {.base_url = f->url,
                                      .access_token = "tok-alice-0123456789abcdef"};
    struct platform_balance b;
    assert_int_equal(p->balance(f->f, &cr, &b, &err), 0);
    assert_true(b.balance == 10.0); /* quota is the remainder: not quota - used */
    platform_balance_free(&b);
    struct platform_token_list tl;
    assert_int_equal(p->list_tokens(f->f, &cr, &tl, &err), 0);
    assert_int_equal(tl.n, 23);
    assert_int_equal(S.key_fetches, 0);
    assert_non_null(tl.items[22].key);
    platform_token_list_free(&tl);
    struct platform_token_spec spec = {
        .name = "gw", .unlimited = false, .remain_quota = 1.5, .expires_at = -1};
    struct platform_token t;
    assert_int_equal(p->create_token(f->f, &cr, &spec, &t, &err), 0);
    assert_string_equal(t.id, "24");
    assert_non_null(t.key);
    platform_token_free(&t);
    assert_null(p->checkin);
    struct platform_model_list ml;
    assert_int_equal(p->models(f->f, &cr, &ml, &err), 0);
    assert_int_equal(ml.n, 2);
    assert_int_equal(ml.n_prices, 0);
    platform_model_list_free(&ml);
}

/* ---- Veloera ---- */

static void test_veloera_checkin(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_VELOERA);
    const struct platform *p = platform_by_id("veloera");
    struct platform_error err;
    struct platform_session s;
    struct platform_credentials cr = {
        .base_url = f->url, .username = "alice", .password = "secret123"};
    assert_int_equal(p->login(f->f, &cr, &s, &err), 0);
    /* Veloera shows the current access token in /api/user/self: kept, not rotated. */
    assert_string_equal(s.access_token, "tok-alice-0123456789abcdef");
    struct platform_credentials tc = {
        .base_url = f->url, .access_token = s.access_token, .user_id = "1"};
    struct platform_checkin ck;
    assert_int_equal(p->checkin(f->f, &tc, &ck, &err), 0);
    assert_false(ck.already_done);
    assert_true(ck.reward == 0.5); /* 250000 / 500000, not / 1000000 */
    platform_checkin_free(&ck);
    assert_int_equal(p->checkin(f->f, &tc, &ck, &err), 0);
    assert_true(ck.already_done);
    platform_checkin_free(&ck);
    struct platform_token_list tl;
    assert_int_equal(p->list_tokens(f->f, &tc, &tl, &err), 0);
    assert_int_equal(tl.n, 3);
    platform_token_list_free(&tl);
    platform_session_free(&s);
}

/* ---- AnyRouter ---- */

static void test_anyrouter_challenge_and_sign_in(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_ANYROUTER);
    const struct platform *p = platform_by_id("anyrouter");
    struct platform_error err;
    struct platform_credentials cr = {
        .base_url = f->url, .cookie = "session=sid-alice", .user_id = "1"};
    struct platform_balance b;
    assert_int_equal(p->balance(f->f, &cr, &b, &err), 0);
    assert_true(b.balance == 10.0);
    assert_true(S.challenges >= 1);
    platform_balance_free(&b);
    struct platform_checkin ck;
    assert_int_equal(p->checkin(f->f, &cr, &ck, &err), 0);
    assert_false(ck.already_done);
    assert_true(ck.reward == 25.0); /* from the balance difference */
    platform_checkin_free(&ck);
    assert_int_equal(p->checkin(f->f, &cr, &ck, &err), 0);
    assert_true(ck.already_done); /* success, nothing granted */
    assert_true(ck.reward == 0);
    platform_checkin_free(&ck);
}

/* ---- Sub2API ---- */

static void test_sub2api(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_SUB2API);
    const struct platform *p = platform_by_id("sub2api");
    struct platform_error err;
    struct platform_session s;
    struct platform_credentials bad = {
        .base_url = f->url, .username = "alice@example.com", .password = "nope-nope"};
    assert_int_equal(p->login(f->f, &bad, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    struct platform_credentials cr = {
        .base_url = f->url, .username = "alice@example.com", .password = "secret123"};
    assert_int_equal(p->login(f->f, &cr, &s, &err), 0);
    assert_string_equal(s.access_token, "jwt-alice-0123456789");
    assert_string_equal(s.refresh_token, "rt-alice-0123456789");
    assert_true(s.access_expires_at > (int64_t)time(NULL));
    struct platform_credentials jc = {.base_url = f->url, .access_token = s.access_token};
    struct platform_balance b;
    assert_int_equal(p->balance(f->f, &jc, &b, &err), 0);
    assert_true(b.balance == 12.5);
    assert_true(b.quota_per_unit == 1);
    platform_balance_free(&b);
    struct platform_token_list tl;
    assert_int_equal(p->list_tokens(f->f, &jc, &tl, &err), 0);
    assert_int_equal(tl.n, 1);
    assert_string_equal(tl.items[0].group, "claude-max");
    platform_token_list_free(&tl);
    struct platform_token_spec spec = {
        .name = "gw2", .group = "claude-max", .unlimited = true, .expires_at = -1};
    struct platform_token t;
    assert_int_equal(p->create_token(f->f, &jc, &spec, &t, &err), 0);
    assert_string_equal(t.key, "sk-aaaa");
    platform_token_free(&t);
    struct platform_model_list ml;
    assert_int_equal(p->models(f->f, &jc, &ml, &err), 0); /* through the account's first key */
    assert_int_equal(ml.n, 1);
    platform_model_list_free(&ml);
    struct platform_group_list gl;
    assert_int_equal(p->groups(f->f, &jc, &gl, &err), 0);
    assert_true(gl.items[0].ratio == 1.5);
    platform_group_list_free(&gl);
    assert_null(p->checkin);
    S.expired = true;
    assert_int_equal(p->balance(f->f, &jc, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    assert_null(strstr(err.message, "jwt-alice"));
    platform_session_free(&s);
}

/* ---- detection and transport failures ---- */

static void test_detect(void **state)
{
    struct fx *f = *state;
    struct platform_error err;
    static const struct {
        enum site_kind k;
        const char *id;
    } cases[] = {{SITE_NEW_API, "new-api"},
                 {SITE_ONE_API, "one-api"},
                 {SITE_VELOERA, "veloera"},
                 {SITE_SUB2API, "sub2api"},
                 {SITE_ANYROUTER, "anyrouter"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        site_reset(cases[i].k);
        const struct platform *p = platform_detect(f->f, f->url, NULL, &err);
        assert_non_null(p);
        assert_string_equal(p->id, cases[i].id);
    }
    site_reset(SITE_HTML);
    assert_null(platform_detect(f->f, f->url, NULL, &err));
    assert_int_equal(err.kind, PLATFORM_ERR_BAD_RESPONSE);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", mock_dead_port());
    assert_null(platform_detect(f->f, dead, NULL, &err));
    assert_int_equal(err.kind, PLATFORM_ERR_UNREACHABLE);
    assert_null(platform_detect(f->f, "ftp://x", NULL, &err));
    assert_null(platform_detect(f->f, NULL, NULL, &err));
}

static void test_html_and_unreachable(void **state)
{
    struct fx *f = *state;
    site_reset(SITE_HTML);
    struct platform_error err;
    struct platform_credentials cr = {
        .base_url = f->url, .access_token = "secret-token-123456", .user_id = "1"};
    for (const struct platform *const *pp = platform_all(); *pp; pp++) {
        const struct platform *p = *pp;
        struct platform_model_list ml;
        struct platform_credentials kc = cr;
        kc.api_key = "sk-secret-key-abcdef";
        assert_int_equal(p->models(f->f, &kc, &ml, &err), -1);
        assert_int_equal(err.kind, PLATFORM_ERR_BAD_RESPONSE);
        assert_non_null(strstr(err.message, "HTML"));
        assert_null(strstr(err.message, "secret"));
        if (!p->balance) continue;
        struct platform_balance b;
        assert_int_equal(p->balance(f->f, &cr, &b, &err), -1);
        assert_int_equal(err.kind, PLATFORM_ERR_BAD_RESPONSE);
        assert_null(b.currency);
    }
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", mock_dead_port());
    struct platform_credentials dc = {.base_url = dead, .access_token = "t-123456", .user_id = "1"};
    struct platform_balance b;
    assert_int_equal(platform_by_id("new-api")->balance(f->f, &dc, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UNREACHABLE);
    struct platform_credentials none = {.base_url = f->url};
    assert_int_equal(platform_by_id("one-hub")->balance(f->f, &none, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_api_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_api_password_only_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_api_2fa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_veloera_checkin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anyrouter_challenge_and_sign_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sub2api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_and_unreachable, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pthread_mutex_destroy(&S.mu);
    return rc;
}
