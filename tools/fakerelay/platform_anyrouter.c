/* platform_anyrouter.c — AnyRouter: a New API deployment behind Aliyun's acw_sc__v2
 * anti-bot challenge, with its own check-in route.
 *
 * Management API = New API (platform_new_api.c) except: check-in is
 * POST /api/user/sign_in (no reward in the answer: clients diff the balance; a second
 * sign-in the same day answers success with no change, or "今日已签到" with
 * --signin-repeat-fails), and /api/user/checkin does not exist (404 Invalid URL).
 *
 * With --challenge every /api and /v1 request without a valid `acw_sc__v2` cookie gets
 * the challenge page: HTTP 200 text/html holding `var arg1='<40 hex>'` and the script that
 * computes the cookie (permutation of arg1 by a 40-entry table, then XOR with a 40-hex-digit
 * key), plus Set-Cookie acw_tc and cdn_sec_tc. A cookie is valid for an arg1 handed out
 * in the last hour (the page sets it with max-age=3600). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

/* The table and key of the deployed script (as third-party solvers read them). */
static const int acw_perm[40] = {15, 35, 29, 24, 33, 16, 1,  38, 10, 9,  19, 31, 40, 27,
                                 22, 23, 25, 13, 6,  11, 39, 18, 20, 8,  14, 21, 32, 26,
                                 2,  30, 7,  4,  17, 5,  3,  28, 34, 37, 12, 36};
static const char acw_key[] = "3000176000856006061501533003690027800375";

#define CHALLENGE_MAX_AGE 3600

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool pf_acw_solve(const char *arg1, char out[41])
{
    if (!arg1 || strlen(arg1) != 40) return false;
    char q[41];
    for (int z = 0; z < 40; z++) {
        if (hexval(arg1[z]) < 0) return false;
        q[z] = arg1[acw_perm[z] - 1];
    }
    q[40] = 0;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 40; i += 2) {
        int a = hexval(q[i]) * 16 + hexval(q[i + 1]);
        int b = hexval(acw_key[i]) * 16 + hexval(acw_key[i + 1]);
        int c = a ^ b;
        out[i] = digits[c >> 4];
        out[i + 1] = digits[c & 15];
    }
    out[40] = 0;
    return true;
}

static bool cookie_valid(struct pf_state *st, struct slice cookie)
{
    if (cookie.n != 40) return false;
    long long now = pf_now(st);
    for (size_t i = 0; i < st->n_challenges; i++) {
        if (now - st->challenges[i].at >= CHALLENGE_MAX_AGE) continue;
        char want[41];
        if (pf_acw_solve(st->challenges[i].arg1, want) && slice_eq_str(cookie, want)) return true;
    }
    return false;
}

static void challenge_page(struct pf_req *r)
{
    struct pf_state *st = r->st;
    char arg1[41];
    pf_random(st, "0123456789ABCDEF", 40, arg1);
    size_t slot =
        st->n_challenges < sizeof st->challenges / sizeof st->challenges[0]
            ? st->n_challenges++
            : (size_t)(pf_now(st) % (long long)(sizeof st->challenges / sizeof st->challenges[0]));
    snprintf(st->challenges[slot].arg1, sizeof st->challenges[slot].arg1, "%s", arg1);
    st->challenges[slot].at = pf_now(st);

    char table[200] = "";
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(table + n, sizeof table - n, "%s0x%x", i ? "," : "", acw_perm[i]);
    char *page = pool_printf(
        r->req->pool,
        "<html><script>\n"
        "var arg1='%s';\n"
        "var _0x4818=['%s','length','charAt','substr','toString','join','cookie'];\n"
        "String.prototype.hexXor=function(_0x4e08d8){var _0x5a5d3b='';"
        "for(var _0xe89588=0x0;_0xe89588<this.length&&_0xe89588<_0x4e08d8.length;"
        "_0xe89588+=0x2){var _0x401af1=parseInt(this.slice(_0xe89588,_0xe89588+0x2),0x10);"
        "var _0x105f59=parseInt(_0x4e08d8.slice(_0xe89588,_0xe89588+0x2),0x10);"
        "var _0x189e2c=(_0x401af1^_0x105f59).toString(0x10);"
        "if(_0x189e2c.length==0x1){_0x189e2c='0'+_0x189e2c;}_0x5a5d3b+=_0x189e2c;}"
        "return _0x5a5d3b;};\n"
        "String.prototype.unsbox=function(){for(var m=[%s],p=[],i=0x0;i<this.length;i++)"
        "{for(var j=0x0;j<m.length;j++){if(m[j]==i+0x1){p[j]=this[i];}}}return p.join('');};\n"
        "function setCookie(name,value){var expiredate=new Date();"
        "expiredate.setTime(expiredate.getTime()+3600000);"
        "document.cookie=name+'='+value+';expires='+expiredate.toGMTString()+"
        "';max-age=3600;path=/';}\n"
        "function reload(x){setCookie('acw_sc__v2',x);document.location.reload();}\n"
        "var arg2=arg1.unsbox().hexXor(_0x4818[0x0]);reload(arg2);\n"
        "</script></html>\n",
        arg1, acw_key, table);
    char tc[33], sec[33], c1[120], c2[120];
    pf_random(st, PF_HEX, 32, tc);
    pf_random(st, PF_HEX, 32, sec);
    snprintf(c1, sizeof c1, "acw_tc=%s; Path=/; HttpOnly; Max-Age=1800", tc);
    snprintf(c2, sizeof c2, "cdn_sec_tc=%s; Path=/; HttpOnly; Max-Age=1800", sec);
    pf_header(r, "Set-Cookie", c1);
    pf_header(r, "Set-Cookie", c2);
    pf_header(r, "Cache-Control", "no-cache, no-store");
    pf_reply_text(r, 200, "text/html; charset=utf-8", page ? page : "<html></html>");
}

bool pf_anyrouter_gate(struct pf_req *r)
{
    if (cookie_valid(r->st, pf_cookie(r->req, "acw_sc__v2"))) return false;
    challenge_page(r);
    return true;
}

/* POST /api/user/sign_in: credits the reward once a day; no reward in the answer. */
static void sign_in(struct pf_req *r)
{
    struct pf_state *st = r->st;
    if (!st->checkin_enabled) {
        pf_fail(r, 200, "签到功能未启用");
        return;
    }
    if (!pf_turnstile(r)) return;
    char today[11];
    pf_today(st, false, today);
    if (pf_checkin_find(st, r->user->id, today)) {
        if (st->o.signin_repeat_fails)
            pf_fail(r, 200, "今日已签到");
        else
            pf_ok(r, "", NULL);
        return;
    }
    if (!pf_checkin_add(st, r->user, today, st->o.checkin_reward)) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    pf_ok(r, "签到成功", NULL);
}

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    pf_lineage_relay_error(r, kind, detail, "new_api_error", 403);
}

static void not_found(struct pf_req *r)
{
    pf_invalid_url(r);
}

static const struct pf_route routes[] = {
    {"GET", "/api/status", pf_na_status, 0},
    {"GET", "/api/notice", pf_na_notice, 0},
    {"GET", "/api/user/groups", pf_na_groups, 0},
    {"POST", "/api/user/login", pf_na_login, PF_JSON_BODY},
    {"POST", "/api/user/login/2fa", pf_na_login_2fa, PF_JSON_BODY},
    {"GET", "/api/user/logout", pf_na_logout, 0},
    {"GET", "/api/user/token", pf_na_access_token, PF_AUTH},
    {"GET", "/api/user/self", pf_na_self, PF_AUTH},
    {"GET", "/api/user/self/groups", pf_na_self_groups, PF_AUTH},
    {"GET", "/api/user/models", pf_na_user_models, PF_AUTH},
    {"POST", "/api/user/sign_in", sign_in, PF_AUTH},
    {"GET", "/api/token/", pf_na_token_list, PF_AUTH},
    {"POST", "/api/token/", pf_na_token_create, PF_AUTH | PF_JSON_BODY},
    {"PUT", "/api/token/", pf_na_token_update, PF_AUTH | PF_JSON_BODY},
    {"GET", "/api/token/#", pf_na_token_get, PF_AUTH},
    {"DELETE", "/api/token/#", pf_na_token_delete, PF_AUTH},
    {"POST", "/api/token/#/key", pf_na_token_key, PF_AUTH},
    {"GET", "/api/pricing", pf_na_pricing, PF_TRY_AUTH},
    {"GET", "/api/log/self", pf_na_log_self, PF_AUTH},
    {"GET", "/api/log/self/stat", pf_na_log_stat, PF_AUTH},
};

const struct pf_platform pf_anyrouter = {
    .kind = PF_ANYROUTER,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_na_auth,
    .relay_error = relay_error,
    .relay_models = pf_na_relay_models,
    .relay_extra = pf_na_relay_extra,
    .not_found = not_found,
};
