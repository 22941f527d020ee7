/* platform_new_api.c — the New API management API (QuantumNous/new-api, recent build),
 * and its 2026 auth generation (new-api-v2).
 *
 * new-api: `session` cookie (POST /api/user/login, 2FA through /api/user/login/2fa on the
 * same cookie) or a system access token (`Authorization: [Bearer ]<token>`, minted by
 * GET /api/user/token), plus the mandatory `New-Api-User: <id>` header; quota in raw
 * units (quota_per_unit from /api/status); check-in at /api/user/checkin (reward in
 * data.quota_awarded, "今日已签到" the same day); tokens paged 1-based as
 * {page,page_size,total,items}, keys masked with --masked-keys and revealed by
 * POST /api/token/{id}/key; /api/pricing with model and completion ratios.
 *
 * new-api-v2: login answers an access token (+ refresh cookie), auth reads only
 * `Authorization: Bearer`, failures are 401 with code AUTH_*; refresh, logout and the
 * session list have their own routes. Everything else is shared with new-api.
 *
 * The handlers named pf_na_* are shared with the forks (AnyRouter, Veloera), which differ
 * by the user header, status, check-in and paging; those differences are decided here by
 * the platform kind so a fork file lists only its own routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

static bool is_veloera(const struct pf_req *r)
{
    return r->st->o.kind == PF_VELOERA;
}

static bool is_v2(const struct pf_req *r)
{
    return r->st->o.kind == PF_NEW_API_V2;
}

/* ---- auth ---- */

static void auth_fail(struct pf_req *r, int status, const char *msg)
{
    pf_fail(r, status, msg);
}

/* Cookie session or access token, then the user-id header (New-Api-User, or Veloera-User
 * for Veloera). */
bool pf_na_auth(struct pf_req *r, bool required)
{
    struct pf_state *st = r->st;
    const char *hname = is_veloera(r) ? "Veloera-User" : "New-Api-User";
    struct pf_session *s = pf_session_find(st, PF_SESS_COOKIE, pf_cookie(r->req, "session"), NULL);
    struct pf_user *u = NULL;
    if (s && !s->pending_2fa) {
        u = pf_user_by_id(st, s->user_id);
        r->sess = s;
    }
    if (!u) {
        struct slice tok = pf_bearer(r->req);
        if (!tok.n) {
            if (!required) return true;
            auth_fail(r, 401, "无权进行此操作，未登录且未提供 access token");
            return false;
        }
        u = pf_user_by_access_token(st, tok);
        if (!u) {
            if (!required) return true;
            auth_fail(r, is_veloera(r) ? 200 : 401, "无权进行此操作，access token 无效");
            return false;
        }
        r->via_token = true;
    }
    struct slice h = slice_trim(http_request_header(r->req, hname));
    char msg[160];
    if (!h.n) {
        if (!required) return true;
        snprintf(msg, sizeof msg, "无权进行此操作，未提供 %s", hname);
        auth_fail(r, 401, msg);
        return false;
    }
    unsigned long long id;
    if (!slice_to_u64(h, &id)) {
        if (!required) return true;
        snprintf(msg, sizeof msg, "无权进行此操作，%s 格式错误", hname);
        auth_fail(r, 401, msg);
        return false;
    }
    if ((long long)id != u->id) {
        if (!required) return true;
        snprintf(msg, sizeof msg, "无权进行此操作，%s 与登录用户不匹配", hname);
        auth_fail(r, 401, msg);
        return false;
    }
    r->user = u;
    return true;
}

static void v2_auth_fail(struct pf_req *r, const char *code, const char *msg)
{
    pf_reply(r, 401, json_pack("{s:b, s:s, s:s}", "success", 0, "message", msg, "code", code));
}

/* new-api-v2: only `Authorization: Bearer <access token or system token>`. */
static bool v2_auth(struct pf_req *r, bool required)
{
    struct pf_state *st = r->st;
    struct slice tok = pf_bearer(r->req);
    if (!tok.n) {
        if (!required) return true;
        v2_auth_fail(r, "AUTH_REQUIRED", "未登录或未提供访问令牌");
        return false;
    }
    bool expired;
    struct pf_session *s = pf_session_find(st, PF_SESS_ACCESS, tok, &expired);
    struct pf_user *u = s ? pf_user_by_id(st, s->user_id) : NULL;
    if (s) r->sess = s;
    if (!u && !expired) {
        u = pf_user_by_access_token(st, tok);
        r->via_token = u != NULL;
    }
    if (!u) {
        if (!required) return true;
        if (expired)
            v2_auth_fail(r, "AUTH_TOKEN_EXPIRED", "访问令牌已过期，请刷新或重新登录");
        else
            v2_auth_fail(r, "AUTH_TOKEN_INVALID", "访问令牌无效");
        return false;
    }
    r->user = u;
    return true;
}

/* ---- status ---- */

void pf_na_status(struct pf_req *r)
{
    struct pf_state *st = r->st;
    enum pf_kind k = st->o.kind;
    const char *name = k == PF_ANYROUTER ? "AnyRouter" : "New API";
    const char *version = k == PF_NEW_API_V2 ? "v1.2.0" : k == PF_ANYROUTER ? "v0.9.6" : "v0.10.0";
    json_t *d = json_pack(
        "{s:s, s:s, s:I, s:f, s:b, s:s, s:f, s:s, s:f, s:f, s:b, s:s, s:b, s:b, s:b, s:b, s:b, "
        "s:b, s:b}",
        "version", version, "system_name", name, "start_time", (json_int_t)1741000000,
        "quota_per_unit", st->o.quota_per_unit, "display_in_currency", 1, "quota_display_type",
        "USD", "usd_exchange_rate", 7.3, "custom_currency_symbol", "¤",
        "custom_currency_exchange_rate", 1.0, "price", 7.3, "turnstile_check", st->turnstile,
        "turnstile_site_key", st->turnstile ? "1x00000000000000000000AA" : "", "checkin_enabled",
        st->checkin_enabled, "setup", 1, "self_use_mode_enabled", 0, "default_use_auto_group", 0,
        "github_oauth", 0, "linuxdo_oauth", k == PF_ANYROUTER, "passkey_login", 0);
    pf_ok(r, "", d);
}

void pf_na_notice(struct pf_req *r)
{
    pf_ok(r, "", json_string("welcome"));
}

void pf_na_groups(struct pf_req *r)
{
    pf_ok(r, "", json_pack("{s:{s:i, s:s}}", "default", "ratio", 1, "desc", "默认分组"));
}

/* ---- login ---- */

/* The login answer's data: the recent New API's small user map; Veloera's (2025 lineage)
 * zero-valued user row (quota 0, empty access token: never the balance). */
static json_t *login_data(const struct pf_req *r, const struct pf_user *u)
{
    json_t *d = pf_user_login_json(u, true);
    if (d && is_veloera(r)) {
        json_object_set_new(d, "password", json_string(""));
        json_object_set_new(d, "email", json_string(""));
        json_object_set_new(d, "quota", json_integer(0));
        json_object_set_new(d, "used_quota", json_integer(0));
        json_object_set_new(d, "request_count", json_integer(0));
        json_object_set_new(d, "access_token", json_string(""));
        json_object_set_new(d, "aff_code", json_string(""));
    }
    return d;
}

static void v2_issue(struct pf_req *r, struct pf_user *u);

void pf_na_login(struct pf_req *r)
{
    struct pf_state *st = r->st;
    const char *name = pf_body_str(r, "username"), *pw = pf_body_str(r, "password");
    if (!name || !pw || !*name || !*pw) {
        pf_fail(r, 200, "无效的参数");
        return;
    }
    bool turnstile_on = st->turnstile;
    if (!pf_turnstile(r)) return;
    struct pf_user *u = pf_user_by_name(st, name);
    if (!u || strcmp(u->password, pw) != 0) {
        pf_fail(r, 200, "用户名或密码错误，或用户已被封禁");
        return;
    }
    if (is_v2(r)) {
        if (u->totp_len) {
            struct pf_session *f = pf_session_new(st, PF_SESS_FLOW, u->id, 300);
            if (!f) {
                pf_fail(r, 500, "out of memory");
                return;
            }
            pf_ok(r, "请输入两步验证码",
                  json_pack("{s:b, s:s, s:I}", "require_2fa", 1, "flow_token", f->id, "expires_at",
                            (json_int_t)f->expires));
            return;
        }
        v2_issue(r, u);
        return;
    }
    long long ttl = st->o.session_ttl_sec;
    struct pf_session *s = pf_session_new(st, PF_SESS_COOKIE, u->id, ttl);
    if (!s) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    s->turnstile_ok = turnstile_on;
    pf_set_session_cookie(r, s->id);
    if (u->totp_len && !is_veloera(r)) {
        s->pending_2fa = true;
        pf_ok(r, "请输入两步验证码", json_pack("{s:b}", "require_2fa", 1));
        return;
    }
    pf_ok(r, "", login_data(r, u));
}

void pf_na_login_2fa(struct pf_req *r)
{
    struct pf_state *st = r->st;
    const char *code = pf_body_str(r, "code");
    if (is_v2(r)) {
        const char *flow = pf_body_str(r, "flow_token");
        struct pf_session *f =
            flow ? pf_session_find(st, PF_SESS_FLOW, slice_from(flow), NULL) : NULL;
        struct pf_user *u = f ? pf_user_by_id(st, f->user_id) : NULL;
        if (!u) {
            pf_reply(r, 401,
                     json_pack("{s:b, s:s, s:s}", "success", 0, "message",
                               "两步验证流程已过期，请重新登录", "code", "AUTH_FLOW_INVALID"));
            return;
        }
        if (!pf_totp_check(st, u, code)) {
            pf_fail(r, 200, "验证码或备用码错误，请重试");
            return;
        }
        f->dead = true;
        v2_issue(r, u);
        return;
    }
    struct pf_session *s = pf_session_find(st, PF_SESS_COOKIE, pf_cookie(r->req, "session"), NULL);
    struct pf_user *u = s && s->pending_2fa ? pf_user_by_id(st, s->user_id) : NULL;
    if (!u) {
        pf_fail(r, 200, "会话已过期，请重新登录");
        return;
    }
    if (!pf_totp_check(st, u, code)) {
        pf_fail(r, 200, "验证码或备用码错误，请重试");
        return;
    }
    s->pending_2fa = false;
    pf_ok(r, "", login_data(r, u));
}

void pf_na_logout(struct pf_req *r)
{
    struct pf_session *s =
        pf_session_find(r->st, PF_SESS_COOKIE, pf_cookie(r->req, "session"), NULL);
    if (s) s->dead = true;
    pf_header(r, "Set-Cookie", "session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    pf_ok(r, "", NULL);
}

/* GET /api/user/token: a new system access token, replacing the previous one. */
void pf_na_access_token(struct pf_req *r)
{
    struct pf_user *u = r->user;
    size_t n =
        r->st->o.kind == PF_ONE_API || r->st->o.kind == PF_ONE_HUB || r->st->o.kind == PF_DONE_HUB
            ? 32
            : 30;
    pf_random(r->st, r->st->o.kind == PF_ONE_API || n == 32 ? PF_HEX : PF_ALNUM, n,
              u->access_token);
    pf_ok(r, "", json_string(u->access_token));
}

/* ---- self ---- */

void pf_na_self(struct pf_req *r)
{
    struct pf_user *u = r->user;
    json_t *d = json_pack(
        "{s:I, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:I, s:I, s:s, s:i, s:i, s:i, s:i, s:s}", "id",
        (json_int_t)u->id, "username", u->username, "display_name", u->username, "role", 1,
        "status", 1, "email", "", "group", u->group, "quota", (json_int_t)u->quota, "used_quota",
        (json_int_t)u->used_quota, "request_count", (json_int_t)u->request_count, "aff_code",
        "abcd", "aff_count", 0, "aff_quota", 0, "aff_history_quota", 0, "inviter_id", 0, "setting",
        "");
    if (d && is_veloera(r)) { /* the old full row: access token and check-in time included */
        json_object_set_new(d, "access_token", json_string(u->access_token));
        json_object_set_new(d, "last_check_in_time", json_integer(u->last_check_in_time));
    }
    pf_ok(r, "", d);
}

void pf_na_self_groups(struct pf_req *r)
{
    pf_ok(r, "",
          json_pack("{s:{s:i, s:s}, s:{s:f, s:s}}", "default", "ratio", 1, "desc", "默认分组",
                    "vip", "ratio", 0.8, "desc", "VIP"));
}

void pf_na_user_models(struct pf_req *r)
{
    pf_ok(r, "", pf_models_for(r->cfg, NULL));
}

/* ---- check-in (New API) ---- */

static void checkin_status(struct pf_req *r)
{
    struct pf_state *st = r->st;
    if (!st->checkin_enabled) {
        pf_fail(r, 200, "签到功能未启用");
        return;
    }
    char today[11], month[8];
    pf_today(st, false, today);
    struct slice q = http_request_query_param(r->req, "month");
    if (q.n == 7)
        snprintf(month, sizeof month, "%.7s", q.p);
    else
        snprintf(month, sizeof month, "%.7s", today);
    long long total = 0, total_n = 0, month_n = 0;
    json_t *records = json_array();
    for (size_t i = 0; i < st->n_checkins; i++) {
        struct pf_checkin *c = &st->checkins[i];
        if (c->user_id != r->user->id) continue;
        total += c->quota;
        total_n++;
        if (strncmp(c->date, month, 7) == 0) {
            month_n++;
            json_array_append_new(records, json_pack("{s:s, s:I}", "checkin_date", c->date,
                                                     "quota_awarded", (json_int_t)c->quota));
        }
    }
    bool today_done = pf_checkin_find(st, r->user->id, today) != NULL;
    json_t *d = json_pack("{s:b, s:I, s:I, s:{s:I, s:I, s:I, s:b, s:o}}", "enabled", 1, "min_quota",
                          (json_int_t)st->o.checkin_reward, "max_quota",
                          (json_int_t)st->o.checkin_reward, "stats", "total_quota",
                          (json_int_t)total, "total_checkins", (json_int_t)total_n, "checkin_count",
                          (json_int_t)month_n, "checked_in_today", today_done, "records", records);
    pf_ok(r, "", d);
}

static void checkin(struct pf_req *r)
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
        pf_fail(r, 200, "今日已签到");
        return;
    }
    long long q = st->o.checkin_reward;
    if (!pf_checkin_add(st, r->user, today, q)) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    pf_ok(r, "签到成功",
          json_pack("{s:I, s:s}", "quota_awarded", (json_int_t)q, "checkin_date", today));
}

/* ---- tokens ---- */

json_t *pf_na_token_json(const struct pf_req *r, const struct pf_token *t, bool mask)
{
    char masked[PF_KEY_MAX];
    if (mask) pf_key_mask(t->key, masked);
    json_t *j = json_pack(
        "{s:I, s:I, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:b, s:b, s:s, s:s, s:I, s:s}", "id",
        (json_int_t)t->id, "user_id", (json_int_t)t->user_id, "key", mask ? masked : t->key,
        "status", t->status, "name", t->name, "created_time", (json_int_t)t->created_time,
        "accessed_time", (json_int_t)t->accessed_time, "expired_time", (json_int_t)t->expired_time,
        "remain_quota", (json_int_t)t->remain_quota, "unlimited_quota", t->unlimited_quota,
        "model_limits_enabled", t->model_limits_enabled, "model_limits", t->model_limits,
        "allow_ips", t->allow_ips, "used_quota", (json_int_t)t->used_quota, "group", t->group);
    if (j && !is_veloera(r)) json_object_set_new(j, "cross_group_retry", json_false());
    if (j) json_object_set_new(j, "DeletedAt", json_null());
    return j;
}

static bool masking(const struct pf_req *r)
{
    return r->st->o.masked_keys && !is_veloera(r);
}

/* New API: 1-based `p` (0 read as 1), {page,page_size,total,items}. Veloera: 0-based `p`,
 * a plain array. Newest first. */
void pf_na_token_list(struct pf_req *r)
{
    size_t n;
    struct pf_token **v = pf_tokens_of(r->st, r->user->id, &n);
    if (!v) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    long long size = pf_page_size(r->req, 10);
    long long p = pf_query_int(r->req, "p", -1);
    if (p < 0) p = pf_query_int(r->req, "page", is_veloera(r) ? 0 : 1);
    long long first;
    if (is_veloera(r)) {
        if (p < 0) p = 0;
        first = p * size;
    } else {
        if (p < 1) p = 1;
        first = (p - 1) * size;
    }
    json_t *items = json_array();
    for (long long i = first; i < (long long)n && i < first + size; i++)
        json_array_append_new(items, pf_na_token_json(r, v[i], masking(r)));
    free(v);
    if (is_veloera(r)) {
        pf_ok(r, "", items);
        return;
    }
    pf_ok(r, "",
          json_pack("{s:I, s:I, s:I, s:o}", "page", (json_int_t)p, "page_size", (json_int_t)size,
                    "total", (json_int_t)n, "items", items));
}

void pf_na_token_get(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    pf_ok(r, "", pf_na_token_json(r, t, masking(r)));
}

bool pf_na_token_fields(struct pf_req *r, struct pf_token *t, size_t name_max,
                        const char *too_long_msg, bool creating)
{
    const char *name = pf_body_str(r, "name");
    if (name) {
        if (strlen(name) > name_max) {
            pf_fail(r, 200, too_long_msg);
            return false;
        }
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    long long v;
    if (pf_body_int(r, "remain_quota", &v)) t->remain_quota = v;
    if (pf_body_int(r, "expired_time", &v))
        t->expired_time = v;
    else if (creating)
        t->expired_time = 0; /* Go's zero value: expired at once (send -1 for never) */
    t->unlimited_quota = pf_body_bool(r, "unlimited_quota", creating ? false : t->unlimited_quota);
    t->model_limits_enabled =
        pf_body_bool(r, "model_limits_enabled", creating ? false : t->model_limits_enabled);
    const char *s;
    if ((s = pf_body_str(r, "model_limits")))
        snprintf(t->model_limits, sizeof t->model_limits, "%s", s);
    if ((s = pf_body_str(r, "models"))) { /* One API's name for the same list */
        snprintf(t->model_limits, sizeof t->model_limits, "%s", s);
        t->model_limits_enabled = *s != 0;
    }
    if ((s = pf_body_str(r, "allow_ips"))) snprintf(t->allow_ips, sizeof t->allow_ips, "%s", s);
    if ((s = pf_body_str(r, "subnet"))) snprintf(t->allow_ips, sizeof t->allow_ips, "%s", s);
    if ((s = pf_body_str(r, "group"))) snprintf(t->group, sizeof t->group, "%s", s);
    return true;
}

void pf_na_token_create(struct pf_req *r)
{
    struct pf_token tmp = {.expired_time = -1};
    size_t max = is_veloera(r) ? 30 : 50;
    if (!pf_na_token_fields(r, &tmp, max, "令牌名称过长", true)) return;
    char key[PF_KEY_MAX];
    pf_key_new_api(r->st, key);
    struct pf_token *t = pf_token_new(r->st, r->user->id, key);
    if (!t) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    long long id = t->id, created = t->created_time;
    *t = tmp;
    t->id = id;
    t->user_id = r->user->id;
    t->status = 1;
    t->created_time = t->accessed_time = created;
    snprintf(t->key, sizeof t->key, "%s", key);
    pf_ok(r, "", NULL);
}

void pf_na_token_update(struct pf_req *r)
{
    long long id;
    if (!pf_body_int(r, "id", &id)) {
        pf_fail(r, 200, "无效的参数");
        return;
    }
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, id);
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    long long status;
    bool has_status = pf_body_int(r, "status", &status);
    struct slice so = http_request_query_param(r->req, "status_only");
    if (has_status && status == 1 && t->expired_time != -1 && t->expired_time <= pf_now(r->st) &&
        !pf_body_int(r, "expired_time", &id)) {
        pf_fail(r, 200, "令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期");
        return;
    }
    if (!(so.n && slice_eq_str(so, "true"))) {
        struct pf_token tmp = *t;
        if (!pf_na_token_fields(r, &tmp, is_veloera(r) ? 30 : 50, "令牌名称过长", false)) return;
        *t = tmp;
    }
    if (has_status && status >= 1 && status <= 4) t->status = (int)status;
    pf_ok(r, "", pf_na_token_json(r, t, masking(r)));
}

void pf_na_token_delete(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    t->deleted = true;
    pf_ok(r, "", NULL);
}

void pf_na_token_key(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) {
        pf_fail(r, 200, "令牌不存在");
        return;
    }
    pf_header(r, "Cache-Control", "no-store");
    pf_ok(r, "", json_pack("{s:s}", "key", t->key));
}

/* GET /api/usage/token/ with the sk key itself (no user auth). */
static void usage_token(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_key(r->st, pf_bearer(r->req));
    if (!t) {
        pf_reply(r, 401, json_pack("{s:b, s:s}", "success", 0, "message", "无效的令牌"));
        return;
    }
    double qpu = r->st->o.quota_per_unit;
    (void)qpu;
    long long granted = t->unlimited_quota ? 0 : t->remain_quota + t->used_quota;
    pf_reply(r, 200,
             json_pack("{s:b, s:s, s:{s:s, s:s, s:I, s:I, s:I, s:b, s:{}, s:b, s:I}}", "code", 1,
                       "message", "ok", "data", "object", "token_usage", "name", t->name,
                       "total_granted", (json_int_t)granted, "total_used",
                       (json_int_t)t->used_quota, "total_available",
                       (json_int_t)(t->unlimited_quota ? 0 : t->remain_quota), "unlimited_quota",
                       t->unlimited_quota, "model_limits", "model_limits_enabled",
                       t->model_limits_enabled, "expires_at",
                       (json_int_t)(t->expired_time == -1 ? 0 : t->expired_time)));
}

/* ---- models, pricing, logs ---- */

void pf_na_pricing(struct pf_req *r)
{
    json_t *data = json_array();
    for (size_t i = 0; i < r->cfg->n_models; i++) {
        const char *m = r->cfg->models[i];
        if (strcmp(m, "*") == 0) continue;
        int qt;
        double ratio, comp, price;
        pf_model_price(m, &qt, &ratio, &comp, &price);
        json_t *e = json_pack("{s:s, s:i, s:f, s:f, s:s, s:f, s:[s]}", "model_name", m,
                              "quota_type", qt, "model_ratio", ratio, "model_price", price,
                              "owner_by", "", "completion_ratio", comp, "enable_groups", "default");
        if (e && !is_veloera(r))
            json_object_set_new(e, "supported_endpoint_types",
                                json_pack("[s]", qt ? "image-generation" : "openai"));
        json_array_append_new(data, e);
    }
    json_t *j = json_pack("{s:b, s:o, s:{s:i}, s:{s:s}}", "success", 1, "data", data, "group_ratio",
                          "default", 1, "usable_group", "default", "默认分组");
    if (j && !is_veloera(r)) {
        json_object_set_new(j, "vendors", json_array());
        json_object_set_new(j, "supported_endpoint", json_object());
        json_object_set_new(j, "auto_groups", json_array());
    }
    pf_reply(r, 200, j);
}

static json_t *log_json(const struct pf_req *r, const struct pf_log *l)
{
    return json_pack("{s:I, s:I, s:I, s:i, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:i, s:b, s:i, "
                     "s:I, s:s, s:s}",
                     "id", (json_int_t)l->id, "user_id", (json_int_t)l->user_id, "created_at",
                     (json_int_t)l->created_at, "type", l->type, "content", l->content, "username",
                     r->user->username, "token_name", l->token_name, "model_name", l->model_name,
                     "quota", (json_int_t)l->quota, "prompt_tokens", l->type == 2 ? 10 : 0,
                     "completion_tokens", l->type == 2 ? 20 : 0, "use_time", l->type == 2 ? 1 : 0,
                     "is_stream", 0, "channel", l->type == 2 ? 1 : 0, "token_id",
                     (json_int_t)l->token_id, "group", "default", "other", "");
}

/* Logs of the user, newest first, filtered by ?type= (0 = all). `base` is the first page
 * number (0 or 1). Returns the page as an array and the total in *total. */
static json_t *log_page(struct pf_req *r, int base, const char *page_param, long long size,
                        long long *page, long long *total)
{
    struct pf_state *st = r->st;
    long long type = pf_query_int(r->req, "type", 0);
    long long p = pf_query_int(r->req, page_param, base);
    if (p < base) p = base;
    *page = p;
    long long first = (p - base) * size, k = 0;
    json_t *a = json_array();
    for (size_t i = st->n_logs; i-- > 0;) {
        struct pf_log *l = &st->logs[i];
        if (l->user_id != r->user->id || (type && l->type != type)) continue;
        if (k >= first && k < first + size) json_array_append_new(a, log_json(r, l));
        k++;
    }
    *total = k;
    return a;
}

void pf_na_log_self(struct pf_req *r)
{
    long long size = pf_query_int(r->req, "page_size", 10), page, total;
    if (size < 1) size = 10;
    if (size > 100) size = 100;
    json_t *items = log_page(r, 1, "p", size, &page, &total);
    pf_ok(r, "",
          json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total, "page",
                    (json_int_t)page, "page_size", (json_int_t)size));
}

void pf_na_log_stat(struct pf_req *r)
{
    long long q = 0, since = pf_query_int(r->req, "start_timestamp", 0);
    for (size_t i = 0; i < r->st->n_logs; i++) {
        struct pf_log *l = &r->st->logs[i];
        if (l->user_id == r->user->id && l->type == 2 && l->created_at >= since) q += l->quota;
    }
    pf_ok(r, "", json_pack("{s:I, s:i, s:i}", "quota", (json_int_t)q, "rpm", 0, "tpm", 0));
}

/* ---- relay ---- */

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    pf_lineage_relay_error(r, kind, detail, "new_api_error", 403);
}

static const char *owner_of(const char *model)
{
    if (strncmp(model, "claude", 6) == 0) return "anthropic";
    if (strncmp(model, "gemini", 6) == 0) return "google";
    return "openai";
}

void pf_na_relay_models(struct pf_req *r, const struct pf_token *t)
{
    json_t *names = pf_models_for(r->cfg, t), *data = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
    {
        const char *m = json_string_value(v);
        json_array_append_new(data, json_pack("{s:s, s:s, s:i, s:s, s:[s]}", "id", m, "object",
                                              "model", "created", 1626777600, "owned_by",
                                              owner_of(m), "supported_endpoint_types", "openai"));
    }
    json_decref(names);
    if (is_veloera(r)) { /* 2025 lineage: no "object":"list" */
        pf_reply(r, 200, json_pack("{s:b, s:o}", "success", 1, "data", data));
        return;
    }
    pf_reply(r, 200, json_pack("{s:b, s:s, s:o}", "success", 1, "object", "list", "data", data));
}

/* /v1/dashboard/billing/subscription and /usage (OpenAI's old billing routes). */
bool pf_na_relay_extra(struct pf_req *r, const struct pf_token *t)
{
    (void)t;
    struct pf_user *u = r->user;
    double qpu = r->st->o.quota_per_unit;
    if (slice_eq_str(r->req->path, "/v1/dashboard/billing/subscription")) {
        double usd = (double)(u->quota + u->used_quota) / qpu;
        pf_reply(r, 200,
                 json_pack("{s:s, s:b, s:f, s:f, s:f, s:i}", "object", "billing_subscription",
                           "has_payment_method", 1, "soft_limit_usd", usd, "hard_limit_usd", usd,
                           "system_hard_limit_usd", usd, "access_until", 0));
        return true;
    }
    if (slice_eq_str(r->req->path, "/v1/dashboard/billing/usage")) {
        pf_reply(r, 200,
                 json_pack("{s:s, s:f}", "object", "list", "total_usage",
                           (double)u->used_quota / qpu * 100));
        return true;
    }
    return false;
}

static void not_found(struct pf_req *r)
{
    pf_invalid_url(r);
}

/* ---- new-api-v2: access + refresh tokens ---- */

static long long v2_access_ttl(const struct pf_req *r)
{
    return r->st->o.session_ttl_sec ? r->st->o.session_ttl_sec : 3600;
}

/* Issues an access token and a refresh token (cookie) of one session family. */
static void v2_issue_family(struct pf_req *r, struct pf_user *u, const char *family)
{
    struct pf_state *st = r->st;
    struct pf_session *rs = pf_session_new(st, PF_SESS_REFRESH, u->id, 30 * 86400);
    if (!rs) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    if (family)
        snprintf(rs->family, sizeof rs->family, "%s", family);
    else
        pf_random(st, PF_HEX, 32, rs->family);
    char fam[40], refresh[200];
    snprintf(fam, sizeof fam, "%s", rs->family);
    snprintf(refresh, sizeof refresh, "%s", rs->id);
    long long created = rs->created;
    struct pf_session *as = pf_session_new(st, PF_SESS_ACCESS, u->id, v2_access_ttl(r));
    if (!as) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    snprintf(as->family, sizeof as->family, "%s", fam);
    /* A JWT-looking access token: header.payload.signature (the payload is readable). */
    char payload[200], sig[44];
    snprintf(payload, sizeof payload, "{\"sub\":%lld,\"sid\":\"%s\",\"exp\":%lld}", u->id, fam,
             as->expires);
    char *p64 = fr_base64(r->req->pool, (const unsigned char *)payload, strlen(payload));
    pf_random(st, PF_ALNUM, 43, sig);
    snprintf(as->id, sizeof as->id, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s.%s", p64 ? p64 : "e30",
             sig);
    for (char *c = as->id; *c; c++) /* base64url, no padding */
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
        else if (*c == '=')
            *c = 'A';
    char cookie[300];
    snprintf(cookie, sizeof cookie,
             "refresh_token=%s; Path=/api/user/auth; Max-Age=2592000; HttpOnly; SameSite=Strict",
             refresh);
    pf_header(r, "Set-Cookie", cookie);
    pf_ok(r, "",
          json_pack("{s:s, s:s, s:I, s:{s:s, s:I, s:I}, s:o}", "access_token", as->id, "token_type",
                    "Bearer", "access_expires_at", (json_int_t)as->expires, "session", "id", fam,
                    "created_at", (json_int_t)created, "expires_at",
                    (json_int_t)(created + 30 * 86400), "user", pf_user_login_json(u, true)));
}

static void v2_issue(struct pf_req *r, struct pf_user *u)
{
    v2_issue_family(r, u, NULL);
}

static void v2_refresh(struct pf_req *r)
{
    struct pf_state *st = r->st;
    struct slice tok = pf_cookie(r->req, "refresh_token");
    const char *b = pf_body_str(r, "refresh_token");
    if (!tok.n && b) tok = slice_from(b);
    struct pf_session *rs = pf_session_find(st, PF_SESS_REFRESH, tok, NULL);
    struct pf_user *u = rs ? pf_user_by_id(st, rs->user_id) : NULL;
    if (!u) {
        v2_auth_fail(r, "AUTH_REFRESH_INVALID", "刷新令牌无效或已过期，请重新登录");
        return;
    }
    rs->dead = true; /* rotation: a refresh token is used once */
    char fam[40];
    snprintf(fam, sizeof fam, "%s", rs->family);
    v2_issue_family(r, u, fam);
}

static void kill_family(struct pf_state *st, const char *fam)
{
    for (size_t i = 0; i < st->n_sessions; i++)
        if (strcmp(st->sessions[i].family, fam) == 0) st->sessions[i].dead = true;
}

static void v2_logout(struct pf_req *r)
{
    if (r->sess && r->sess->family[0]) {
        char fam[40];
        snprintf(fam, sizeof fam, "%s", r->sess->family);
        kill_family(r->st, fam);
    }
    pf_header(r, "Set-Cookie", "refresh_token=; Path=/api/user/auth; Max-Age=0; HttpOnly");
    pf_ok(r, "", NULL);
}

static void v2_sessions(struct pf_req *r)
{
    struct pf_state *st = r->st;
    json_t *a = json_array();
    long long now = pf_now(st);
    for (size_t i = 0; i < st->n_sessions; i++) {
        struct pf_session *s = &st->sessions[i];
        if (s->kind != PF_SESS_REFRESH || s->user_id != r->user->id || s->dead ||
            (s->expires && s->expires <= now))
            continue;
        bool current = r->sess && strcmp(r->sess->family, s->family) == 0;
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:b}", "id", s->family, "created_at",
                                           (json_int_t)s->created, "expires_at",
                                           (json_int_t)s->expires, "current", current));
    }
    pf_ok(r, "", a);
}

static void v2_revoke(struct pf_req *r)
{
    const char *id = pf_body_str(r, "id");
    if (!id) {
        pf_fail(r, 200, "无效的参数");
        return;
    }
    kill_family(r->st, id);
    pf_ok(r, "", NULL);
}

/* ---- route tables ---- */

#define NA_COMMON_ROUTES                                                                           \
    {"GET", "/api/status", pf_na_status, 0}, {"GET", "/api/notice", pf_na_notice, 0},              \
        {"GET", "/api/user/groups", pf_na_groups, 0},                                              \
        {"POST", "/api/user/login", pf_na_login, PF_JSON_BODY},                                    \
        {"POST", "/api/user/login/2fa", pf_na_login_2fa, PF_JSON_BODY},                            \
        {"GET", "/api/user/token", pf_na_access_token, PF_AUTH},                                   \
        {"GET", "/api/user/self", pf_na_self, PF_AUTH},                                            \
        {"GET", "/api/user/self/groups", pf_na_self_groups, PF_AUTH},                              \
        {"GET", "/api/user/models", pf_na_user_models, PF_AUTH},                                   \
        {"GET", "/api/user/checkin", checkin_status, PF_AUTH},                                     \
        {"POST", "/api/user/checkin", checkin, PF_AUTH},                                           \
        {"GET", "/api/token/", pf_na_token_list, PF_AUTH},                                         \
        {"POST", "/api/token/", pf_na_token_create, PF_AUTH | PF_JSON_BODY},                       \
        {"PUT", "/api/token/", pf_na_token_update, PF_AUTH | PF_JSON_BODY},                        \
        {"GET", "/api/token/#", pf_na_token_get, PF_AUTH},                                         \
        {"DELETE", "/api/token/#", pf_na_token_delete, PF_AUTH},                                   \
        {"POST", "/api/token/#/key", pf_na_token_key, PF_AUTH},                                    \
        {"GET", "/api/usage/token/", usage_token, 0},                                              \
        {"GET", "/api/pricing", pf_na_pricing, PF_TRY_AUTH},                                       \
        {"GET", "/api/log/self", pf_na_log_self, PF_AUTH},                                         \
    {                                                                                              \
        "GET", "/api/log/self/stat", pf_na_log_stat, PF_AUTH                                       \
    }

static const struct pf_route new_api_routes[] = {
    NA_COMMON_ROUTES,
    {"GET", "/api/user/logout", pf_na_logout, 0},
};

const struct pf_platform pf_new_api = {
    .kind = PF_NEW_API,
    .routes = new_api_routes,
    .n_routes = sizeof new_api_routes / sizeof new_api_routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_na_auth,
    .relay_error = relay_error,
    .relay_models = pf_na_relay_models,
    .relay_extra = pf_na_relay_extra,
    .not_found = not_found,
};

static const struct pf_route new_api_v2_routes[] = {
    NA_COMMON_ROUTES,
    {"POST", "/api/user/auth/refresh", v2_refresh, PF_JSON_BODY},
    {"POST", "/api/user/auth/logout", v2_logout, PF_AUTH},
    {"GET", "/api/user/sessions", v2_sessions, PF_AUTH},
    {"POST", "/api/user/sessions/revoke", v2_revoke, PF_AUTH | PF_JSON_BODY},
};

const struct pf_platform pf_new_api_v2 = {
    .kind = PF_NEW_API_V2,
    .routes = new_api_v2_routes,
    .n_routes = sizeof new_api_v2_routes / sizeof new_api_v2_routes[0],
    .trailing_slash_redirect = true,
    .auth = v2_auth,
    .relay_error = relay_error,
    .relay_models = pf_na_relay_models,
    .relay_extra = pf_na_relay_extra,
    .not_found = not_found,
};
