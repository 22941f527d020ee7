/* platform_one_hub.c — OneHub (MartialBE/one-hub) and its fork DoneHub (deanxv/done-hub).
 *
 * Auth as One API (cookie or access token, no user-id header; DoneHub answers
 * "无权进行此操作，会话无效" to a session cookie it cannot read). /api/user/self includes the
 * current system access token. Tokens: GET /api/token/?page=<1-based>&size=<≤100>
 * answers {data,page,size,total_count} with full keys of the form <16 chars>_<43
 * base64url>; POST /api/token/ does not return the key. Models and prices:
 * /api/available_model and /api/user_group_map read the session cookie only (a bearer
 * token is treated as anonymous: public groups only), /api/prices is public. No
 * check-in. Relay errors have type one_hub_error and a user out of quota gets 402.
 * DoneHub differs by its /api/status (GeminiAPIEnabled, max_log_query_days, …). */
#include <stdio.h>
#include <string.h>

#include "platform.h"

static bool is_done(const struct pf_req *r)
{
    return r->st->o.kind == PF_DONE_HUB;
}

static void status(struct pf_req *r)
{
    struct pf_state *st = r->st;
    json_t *d = json_pack("{s:s, s:s, s:I, s:f, s:b, s:b, s:s, s:s}", "version",
                          is_done(r) ? "v1.9.2" : "v1.0.0", "system_name",
                          is_done(r) ? "Done Hub" : "One Hub", "start_time", (json_int_t)1741000000,
                          "quota_per_unit", st->o.quota_per_unit, "display_in_currency", 1,
                          "turnstile_check", st->turnstile, "turnstile_site_key",
                          st->turnstile ? "1x00000000000000000000AA" : "", "language", "zh_CN");
    if (!d) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    json_object_set_new(d, "PaymentUSDRate", json_real(7.3));
    json_object_set_new(d, "UptimeEnabled", json_false());
    json_object_set_new(d, "chat_links", json_string("[]"));
    if (is_done(r)) {
        json_object_set_new(d, "linuxDo_oauth", json_false());
        json_object_set_new(d, "invite_code_register", json_false());
        json_object_set_new(d, "GeminiAPIEnabled", json_true());
        json_object_set_new(d, "ClaudeAPIEnabled", json_true());
        json_object_set_new(d, "max_log_query_days", json_integer(30));
    }
    pf_ok(r, "", d);
}

/* The user row (password omitted). `zero`: the login answer's zero-valued row. */
static json_t *user_row(const struct pf_user *u, bool zero)
{
    return json_pack(
        "{s:I, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:i, s:i, "
        "s:i, s:i, s:s, s:I, s:I}",
        "id", (json_int_t)u->id, "username", u->username, "display_name", u->username, "role", 1,
        "status", 1, "email", "", "avatar_url", "", "quota", (json_int_t)(zero ? 0 : u->quota),
        "used_quota", (json_int_t)(zero ? 0 : u->used_quota), "request_count",
        (json_int_t)(zero ? 0 : u->request_count), "group", zero ? "" : u->group, "aff_code",
        zero ? "" : "abcd", "aff_count", 0, "aff_quota", 0, "aff_history_quota", 0, "inviter_id", 0,
        "access_token", zero ? "" : u->access_token, "last_login_time", (json_int_t)0,
        "created_time", (json_int_t)1741000000);
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

static json_t *token_json(const struct pf_token *t)
{
    json_t *models = json_array();
    const char *p = t->model_limits;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) json_array_append_new(models, json_stringn(p, n));
        if (!e) break;
        p = e + 1;
    }
    return json_pack(
        "{s:I, s:I, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:s, s:s, s:{s:{s:b, s:i}, "
        "s:{s:{s:b, s:o}, s:{s:b, s:[]}}, s:s}}",
        "id", (json_int_t)t->id, "user_id", (json_int_t)t->user_id, "key", t->key, "status",
        t->status, "name", t->name, "created_time", (json_int_t)t->created_time, "accessed_time",
        (json_int_t)t->accessed_time, "expired_time", (json_int_t)t->expired_time, "remain_quota",
        (json_int_t)t->remain_quota, "unlimited_quota", t->unlimited_quota, "used_quota",
        (json_int_t)t->used_quota, "group", t->group, "backup_group", "", "setting", "heartbeat",
        "enabled", 0, "timeout_seconds", 30, "limits", "limit_model_setting", "enabled",
        t->model_limits_enabled, "models", models, "limits_ip_setting", "enabled", 0, "whitelist",
        "billing_tag", "");
}

/* 1-based page (?p is not read), size ≤ 100, {data,page,size,total_count}. */
static void token_list(struct pf_req *r)
{
    long long size = pf_query_int(r->req, "size", 10);
    if (size > 100) {
        pf_fail(r, 200, "size 参数不能超过 100");
        return;
    }
    if (size < 1) size = 10;
    long long page = pf_query_int(r->req, "page", 1);
    if (page < 1) page = 1;
    size_t n;
    struct pf_token **v = pf_tokens_of(r->st, r->user->id, &n);
    if (!v) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    json_t *a = json_array();
    for (long long i = (page - 1) * size; i < (long long)n && i < page * size; i++)
        json_array_append_new(a, token_json(v[i]));
    free(v);
    pf_ok(r, "",
          json_pack("{s:o, s:I, s:I, s:I}", "data", a, "page", (json_int_t)page, "size",
                    (json_int_t)size, "total_count", (json_int_t)n));
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

/* Reads OneHub's setting.limits.limit_model_setting into the token's model limits. */
static void model_setting(struct pf_req *r, struct pf_token *t)
{
    json_t *s = r->body ? json_object_get(r->body, "setting") : NULL;
    json_t *lm = json_object_get(json_object_get(s, "limits"), "limit_model_setting");
    if (!json_is_object(lm)) return;
    t->model_limits_enabled = json_is_true(json_object_get(lm, "enabled"));
    t->model_limits[0] = 0;
    json_t *models = json_object_get(lm, "models"), *m;
    size_t i, n = 0;
    json_array_foreach(models, i, m)
    {
        if (!json_is_string(m)) continue;
        n += (size_t)snprintf(t->model_limits + n, sizeof t->model_limits - n, "%s%s", n ? "," : "",
                              json_string_value(m));
        if (n >= sizeof t->model_limits) break;
    }
}

static struct pf_token *create(struct pf_req *r, const struct pf_token *tmp)
{
    char key[PF_KEY_MAX];
    pf_key_one_hub(r->st, key);
    struct pf_token *t = pf_token_new(r->st, r->user->id, key);
    if (!t) return NULL;
    long long id = t->id, created = t->created_time;
    *t = *tmp;
    t->id = id;
    t->user_id = r->user->id;
    t->status = 1;
    t->created_time = t->accessed_time = created;
    snprintf(t->key, sizeof t->key, "%s", key);
    return t;
}

static void token_create(struct pf_req *r)
{
    struct pf_token tmp = {.expired_time = -1};
    if (!pf_na_token_fields(r, &tmp, 30, "令牌名称过长", true)) return;
    model_setting(r, &tmp);
    if (!create(r, &tmp)) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    pf_ok(r, "", NULL);
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
        if (!pf_na_token_fields(r, &tmp, 30, "令牌名称过长", false)) return;
        model_setting(r, &tmp);
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

/* GET /api/token/playground: the user's sys_playground key (created when missing). */
static void playground(struct pf_req *r)
{
    size_t n;
    struct pf_token **v = pf_tokens_of(r->st, r->user->id, &n);
    const char *key = NULL;
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v[i]->name, "sys_playground") == 0) key = v[i]->key;
    free(v);
    if (!key) {
        struct pf_token tmp = {.expired_time = -1, .unlimited_quota = true};
        snprintf(tmp.name, sizeof tmp.name, "sys_playground");
        struct pf_token *t = create(r, &tmp);
        if (!t) {
            pf_fail(r, 500, "out of memory");
            return;
        }
        key = t->key;
    }
    pf_ok(r, "", json_string(key));
}

/* The session user only (bearer tokens are not read here). */
static struct pf_user *session_user(struct pf_req *r)
{
    struct pf_session *s =
        pf_session_find(r->st, PF_SESS_COOKIE, pf_cookie(r->req, "session"), NULL);
    return s ? pf_user_by_id(r->st, s->user_id) : NULL;
}

static json_t *price_json(const char *m)
{
    int qt;
    double ratio, comp, price;
    pf_model_price(m, &qt, &ratio, &comp, &price);
    /* OneHub stores ratios (USD per 1K tokens = ratio × 0.002); per-call prices too. */
    double in = qt ? price / 0.002 : ratio, out = qt ? 0 : ratio * comp;
    return json_pack("{s:s, s:s, s:i, s:f, s:f, s:b}", "model", m, "type", qt ? "times" : "tokens",
                     "channel_type", 1, "input", in, "output", out, "locked", 0);
}

static void available_model(struct pf_req *r)
{
    struct pf_user *u = session_user(r);
    json_t *d = json_object();
    for (size_t i = 0; i < r->cfg->n_models; i++) {
        const char *m = r->cfg->models[i];
        if (strcmp(m, "*") == 0) continue;
        json_t *groups = u ? json_pack("[s, s]", "default", "vip") : json_pack("[s]", "default");
        json_object_set_new(d, m,
                            json_pack("{s:o, s:s, s:o}", "groups", groups, "owned_by",
                                      strncmp(m, "claude", 6) == 0 ? "Anthropic" : "OpenAI",
                                      "price", price_json(m)));
    }
    pf_ok(r, "", d);
}

static void user_group_map(struct pf_req *r)
{
    json_t *d = json_pack("{s:{s:i, s:s, s:s, s:i, s:i, s:b, s:b, s:b}}", "default", "id", 1,
                          "symbol", "default", "name", "默认分组", "ratio", 1, "api_rate", 600,
                          "public", 1, "promotion", 0, "enable", 1);
    if (d && session_user(r))
        json_object_set_new(d, "vip",
                            json_pack("{s:i, s:s, s:s, s:f, s:i, s:b, s:b, s:b}", "id", 2, "symbol",
                                      "vip", "name", "VIP", "ratio", 0.8, "api_rate", 1200,
                                      "public", 0, "promotion", 0, "enable", 1));
    pf_ok(r, "", d);
}

static void prices(struct pf_req *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->cfg->n_models; i++)
        if (strcmp(r->cfg->models[i], "*") != 0)
            json_array_append_new(a, price_json(r->cfg->models[i]));
    pf_ok(r, "", a);
}

static void log_self(struct pf_req *r)
{
    struct pf_state *st = r->st;
    long long size = pf_query_int(r->req, "size", 10), page = pf_query_int(r->req, "page", 1);
    if (size < 1 || size > 100) size = 10;
    if (page < 1) page = 1;
    long long k = 0;
    json_t *a = json_array();
    for (size_t i = st->n_logs; i-- > 0;) {
        struct pf_log *l = &st->logs[i];
        if (l->user_id != r->user->id) continue;
        if (k >= (page - 1) * size && k < page * size)
            json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:i, s:s, s:s, s:s, s:I}", "id",
                                               (json_int_t)l->id, "user_id", (json_int_t)l->user_id,
                                               "created_at", (json_int_t)l->created_at, "type",
                                               l->type, "content", l->content, "token_name",
                                               l->token_name, "model_name", l->model_name, "quota",
                                               (json_int_t)l->quota));
        k++;
    }
    pf_ok(r, "",
          json_pack("{s:o, s:I, s:I, s:I}", "data", a, "page", (json_int_t)page, "size",
                    (json_int_t)size, "total_count", (json_int_t)k));
}

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    pf_lineage_relay_error(r, kind, detail, "one_hub_error", 402);
}

static void relay_models(struct pf_req *r, const struct pf_token *t)
{
    json_t *names = pf_models_for(r->cfg, t), *data = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
    {
        const char *m = json_string_value(v);
        json_array_append_new(data,
                              json_pack("{s:s, s:s, s:i, s:s}", "id", m, "object", "model",
                                        "created", 1626777600, "owned_by",
                                        strncmp(m, "claude", 6) == 0 ? "Anthropic" : "OpenAI"));
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
    {"GET", "/api/token/", token_list, PF_AUTH},
    {"POST", "/api/token/", token_create, PF_AUTH | PF_JSON_BODY},
    {"PUT", "/api/token/", token_update, PF_AUTH | PF_JSON_BODY},
    {"GET", "/api/token/playground", playground, PF_AUTH},
    {"GET", "/api/token/#", token_get, PF_AUTH},
    {"DELETE", "/api/token/#", token_delete, PF_AUTH},
    {"GET", "/api/available_model", available_model, 0},
    {"GET", "/api/user_group_map", user_group_map, 0},
    {"GET", "/api/prices", prices, 0},
    {"GET", "/api/log/self", log_self, PF_AUTH},
    {"GET", "/api/log/self/stat", pf_na_log_stat, PF_AUTH},
};

const struct pf_platform pf_one_hub = {
    .kind = PF_ONE_HUB,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_oa_auth,
    .relay_error = relay_error,
    .relay_models = relay_models,
    .relay_extra = NULL,
    .not_found = not_found,
};

const struct pf_platform pf_done_hub = {
    .kind = PF_DONE_HUB,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_oa_auth,
    .relay_error = relay_error,
    .relay_models = relay_models,
    .relay_extra = NULL,
    .not_found = not_found,
};
