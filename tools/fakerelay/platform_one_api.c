/* platform_one_api.c — One API (songquanpeng/one-api), the frozen ancestor of the lineage.
 *
 * Auth: `session` cookie or a system access token (`Authorization: [Bearer ]<32 hex>`, from
 * GET /api/user/token), no user-id header; a bad token answers HTTP 200 success:false.
 * No Turnstile on login, no 2FA, no check-in, no pricing (both 404 Invalid URL).
 * /api/user/self is the user row with empty password and access_token; the login answer
 * is a zero-valued row. Tokens: GET /api/token/?p=<0-based> returns a plain array of at
 * most 10 (size is ignored), full 48-character keys; POST /api/token/ answers the new
 * token with its key (the only platform that does). Relay errors have type
 * one_api_error; /v1/models entries carry permission/root/parent; the OpenAI billing
 * routes answer with the user's balance. */
#include <stdio.h>
#include <string.h>

#include "platform.h"

#define ONE_API_PAGE 10

bool pf_oa_auth(struct pf_req *r, bool required)
{
    struct pf_state *st = r->st;
    struct slice cookie = pf_cookie(r->req, "session");
    struct pf_session *s = pf_session_find(st, PF_SESS_COOKIE, cookie, NULL);
    struct pf_user *u = s ? pf_user_by_id(st, s->user_id) : NULL;
    if (u) {
        r->sess = s;
        r->user = u;
        return true;
    }
    struct slice tok = pf_bearer(r->req);
    if (!tok.n) {
        if (!required) return true;
        if (cookie.n && st->o.kind == PF_DONE_HUB) /* DoneHub re-reads the session */
            pf_fail(r, 401, "无权进行此操作，会话无效");
        else
            pf_fail(r, 401, "无权进行此操作，未登录且未提供 access token");
        return false;
    }
    u = pf_user_by_access_token(st, tok);
    if (!u) {
        if (!required) return true;
        pf_fail(r, 200, "无权进行此操作，access token 无效");
        return false;
    }
    r->via_token = true;
    r->user = u;
    return true;
}

static void status(struct pf_req *r)
{
    struct pf_state *st = r->st;
    pf_ok(r, "",
          json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:f, s:b, s:b, s:s}",
                    "version", "v0.6.10", "start_time", (json_int_t)1741000000, "system_name",
                    "One API", "logo", "", "footer_html", "", "server_address", "",
                    "turnstile_check", st->turnstile, "turnstile_site_key",
                    st->turnstile ? "1x00000000000000000000AA" : "", "top_up_link", "", "chat_link",
                    "", "quota_per_unit", st->o.quota_per_unit, "display_in_currency", 1,
                    "github_oauth", 0, "lark_client_id", ""));
}

/* The user row as One API serializes it (password and access token emptied). `zero`:
 * the login answer, where only id, names, role and status are set. */
static json_t *user_row(const struct pf_user *u, bool zero)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
                     "s:I, s:s, s:s, s:I}",
                     "id", (json_int_t)u->id, "username", u->username, "password", "",
                     "display_name", u->username, "role", 1, "status", 1, "email", "", "github_id",
                     "", "wechat_id", "", "lark_id", "", "oidc_id", "", "access_token", "", "quota",
                     (json_int_t)(zero ? 0 : u->quota), "used_quota",
                     (json_int_t)(zero ? 0 : u->used_quota), "request_count",
                     (json_int_t)(zero ? 0 : u->request_count), "group", zero ? "" : u->group,
                     "aff_code", zero ? "" : "abcd", "inviter_id", (json_int_t)0);
}

static void login(struct pf_req *r)
{
    const char *name = pf_body_str(r, "username"), *pw = pf_body_str(r, "password");
    if (!name || !pw || !*name || !*pw) {
        pf_fail(r, 200, "无效的参数");
        return;
    }
    struct pf_user *u = pf_user_by_name(r->st, name);
    if (!u || strcmp(u->password, pw) != 0) {
        pf_fail(r, 200, "用户名或密码错误，或用户已被封禁");
        return;
    }
    struct pf_session *s = pf_session_new(r->st, PF_SESS_COOKIE, u->id, r->st->o.session_ttl_sec);
    if (!s) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    pf_set_session_cookie(r, s->id);
    pf_ok(r, "", user_row(u, true));
}

static void self(struct pf_req *r)
{
    pf_ok(r, "", user_row(r->user, false));
}

static void available_models(struct pf_req *r)
{
    pf_ok(r, "", pf_models_for(r->cfg, NULL));
}

static void dashboard(struct pf_req *r)
{
    pf_ok(r, "", json_array());
}

static json_t *token_json(const struct pf_token *t)
{
    return json_pack("{s:I, s:I, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:o, s:s}", "id",
                     (json_int_t)t->id, "user_id", (json_int_t)t->user_id, "key", t->key, "status",
                     t->status, "name", t->name, "created_time", (json_int_t)t->created_time,
                     "accessed_time", (json_int_t)t->accessed_time, "expired_time",
                     (json_int_t)t->expired_time, "remain_quota", (json_int_t)t->remain_quota,
                     "unlimited_quota", t->unlimited_quota, "used_quota", (json_int_t)t->used_quota,
                     "models", t->model_limits_enabled ? json_string(t->model_limits) : json_null(),
                     "subnet", t->allow_ips);
}

/* 0-based p, 10 per page whatever `size` says, newest first. */
static void token_list(struct pf_req *r)
{
    size_t n;
    struct pf_token **v = pf_tokens_of(r->st, r->user->id, &n);
    if (!v) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    long long p = pf_query_int(r->req, "p", 0);
    if (p < 0) p = 0;
    json_t *a = json_array();
    for (long long i = p * ONE_API_PAGE; i < (long long)n && i < (p + 1) * ONE_API_PAGE; i++)
        json_array_append_new(a, token_json(v[i]));
    free(v);
    pf_ok(r, "", a);
}

static void token_get(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    pf_ok(r, "", token_json(t));
}

static void token_create(struct pf_req *r)
{
    struct pf_token tmp = {.expired_time = -1};
    if (!pf_na_token_fields(r, &tmp, 30, "参数错误：令牌名称过长", true)) return;
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
    pf_ok(r, "", token_json(t));
}

static void token_update(struct pf_req *r)
{
    long long id, status;
    struct pf_token *t = pf_body_int(r, "id", &id) ? pf_token_by_id(r->st, r->user->id, id) : NULL;
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    struct slice so = http_request_query_param(r->req, "status_only");
    if (!(so.n && slice_eq_str(so, "true"))) {
        struct pf_token tmp = *t;
        if (!pf_na_token_fields(r, &tmp, 30, "参数错误：令牌名称过长", false)) return;
        *t = tmp;
    }
    if (pf_body_int(r, "status", &status) && status >= 1 && status <= 4) t->status = (int)status;
    pf_ok(r, "", token_json(t));
}

static void token_delete(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) {
        pf_fail(r, 200, "record not found");
        return;
    }
    t->deleted = true;
    pf_ok(r, "", NULL);
}

static void log_self(struct pf_req *r)
{
    struct pf_state *st = r->st;
    long long p = pf_query_int(r->req, "p", 0), type = pf_query_int(r->req, "type", 0), k = 0;
    if (p < 0) p = 0;
    json_t *a = json_array();
    for (size_t i = st->n_logs; i-- > 0;) {
        struct pf_log *l = &st->logs[i];
        if (l->user_id != r->user->id || (type && l->type != type)) continue;
        if (k >= p * ONE_API_PAGE && k < (p + 1) * ONE_API_PAGE)
            json_array_append_new(
                a, json_pack("{s:I, s:I, s:I, s:i, s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:i}", "id",
                             (json_int_t)l->id, "user_id", (json_int_t)l->user_id, "created_at",
                             (json_int_t)l->created_at, "type", l->type, "content", l->content,
                             "username", r->user->username, "token_name", l->token_name,
                             "model_name", l->model_name, "quota", (json_int_t)l->quota,
                             "prompt_tokens", l->type == 2 ? 10 : 0, "completion_tokens",
                             l->type == 2 ? 20 : 0, "channel", l->type == 2 ? 1 : 0));
        k++;
    }
    pf_ok(r, "", a);
}

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    pf_lineage_relay_error(r, kind, detail, "one_api_error", 403);
}

static void relay_models(struct pf_req *r, const struct pf_token *t)
{
    json_t *names = pf_models_for(r->cfg, t), *data = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
    {
        const char *m = json_string_value(v);
        json_array_append_new(
            data, json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:s, s:i, s:b, s:s, s:b}], s:s, s:n}",
                            "id", m, "object", "model", "created", 1626777600, "owned_by",
                            strncmp(m, "claude", 6) == 0 ? "anthropic" : "openai", "permission",
                            "id", "modelperm-LwHkVFn8AcMItP432fKKDIKJ", "object",
                            "model_permission", "created", 1626777600, "allow_create_engine", 1,
                            "organization", "*", "is_blocking", 0, "root", m, "parent"));
    }
    json_decref(names);
    pf_reply(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void not_found(struct pf_req *r)
{
    pf_invalid_url(r);
}

static const struct pf_route routes[] = {
    {"GET", "/api/status", status, 0},
    {"GET", "/api/notice", pf_na_notice, 0},
    {"POST", "/api/user/login", login, PF_JSON_BODY},
    {"GET", "/api/user/logout", pf_na_logout, 0},
    {"GET", "/api/user/token", pf_na_access_token, PF_AUTH},
    {"GET", "/api/user/self", self, PF_AUTH},
    {"GET", "/api/user/available_models", available_models, PF_AUTH},
    {"GET", "/api/user/dashboard", dashboard, PF_AUTH},
    {"GET", "/api/token/", token_list, PF_AUTH},
    {"POST", "/api/token/", token_create, PF_AUTH | PF_JSON_BODY},
    {"PUT", "/api/token/", token_update, PF_AUTH | PF_JSON_BODY},
    {"GET", "/api/token/#", token_get, PF_AUTH},
    {"DELETE", "/api/token/#", token_delete, PF_AUTH},
    {"GET", "/api/log/self", log_self, PF_AUTH},
    {"GET", "/api/log/self/stat", pf_na_log_stat, PF_AUTH},
};

const struct pf_platform pf_one_api = {
    .kind = PF_ONE_API,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_oa_auth,
    .relay_error = relay_error,
    .relay_models = relay_models,
    .relay_extra = pf_na_relay_extra,
    .not_found = not_found,
};
