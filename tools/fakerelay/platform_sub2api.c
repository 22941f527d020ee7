/* platform_sub2api.c — Sub2API (Wei-Shaw/sub2api): a subscription-pooling gateway with
 * its own management API under /api/v1.
 *
 * Envelope {"code":0,"message":"success","data":…}; handler errors
 * {"code":<status>,"message","reason","metadata":{}}; JWT middleware errors
 * {"code":"<STRING_CODE>","message"}. Login by e-mail and password (Turnstile token in
 * the body when enabled, TOTP through /auth/login/2fa with a temp token) answers a JWT
 * access token (expires_in, --session-ttl-sec) and a refresh token (/auth/refresh
 * rotates both). The balance is USD (quota / quota_per_unit of the seeded user): there
 * is no quota unit. Keys: sk-<64 hex>, bound to a numeric group; listed in full as
 * {items,total,page,page_size,pages} (page_size over 100 falls back to 20); create
 * returns the key. No check-in and no price list; unknown /api paths answer gin's
 * plain-text "404 page not found". Relay: /v1/models lists Anthropic entries for
 * Anthropic groups, /v1/usage reports the wallet, errors use string codes
 * (INVALID_API_KEY, INSUFFICIENT_BALANCE) or Anthropic error bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define GROUP_CLAUDE 3
#define GROUP_OPENAI 4

static void ok(struct pf_req *r, json_t *data)
{
    pf_reply(r, 200,
             json_pack("{s:i, s:s, s:o}", "code", 0, "message", "success", "data",
                       data ? data : json_null()));
}

static void err(struct pf_req *r, int status, const char *msg, const char *reason)
{
    pf_reply(r, status,
             json_pack("{s:i, s:s, s:s, s:{}}", "code", status, "message", msg, "reason", reason,
                       "metadata"));
}

static void mw_err(struct pf_req *r, int status, const char *code, const char *msg)
{
    pf_reply(r, status, json_pack("{s:s, s:s}", "code", code, "message", msg));
}

static const char *iso(struct pf_req *r, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *s = pool_strndup(r->req->pool, b, strlen(b));
    return s ? s : "1970-01-01T00:00:00Z";
}

static double balance(const struct pf_req *r, const struct pf_user *u)
{
    return (double)u->quota / r->st->o.quota_per_unit;
}

static json_t *user_json(struct pf_req *r, const struct pf_user *u)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:f, s:i, s:s, s:[], s:s, s:s}", "id", (json_int_t)u->id,
                     "email", u->email, "username", u->username, "role", "user", "balance",
                     balance(r, u), "concurrency", 5, "status", "active", "allowed_groups",
                     "created_at", "2026-01-01T00:00:00Z", "updated_at", "2026-01-01T00:00:00Z");
}

static void settings(struct pf_req *r)
{
    ok(r,
       json_pack("{s:b, s:b, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "registration_enabled",
                 1, "email_verify_enabled", 0, "turnstile_enabled", r->st->turnstile,
                 "turnstile_site_key", r->st->turnstile ? "1x00000000000000000000AA" : "",
                 "site_name", "Sub2API", "site_logo", "", "site_subtitle", "", "api_base_url", "",
                 "contact_info", "", "doc_url", "", "version", "0.1.0"));
}

static long long ttl(const struct pf_req *r)
{
    return r->st->o.session_ttl_sec ? r->st->o.session_ttl_sec : 86400;
}

/* A JWT-looking access token (readable payload) and an opaque refresh token. */
static void issue(struct pf_req *r, struct pf_user *u)
{
    struct pf_state *st = r->st;
    struct pf_session *rs = pf_session_new(st, PF_SESS_REFRESH, u->id, 7 * 86400);
    if (!rs) {
        err(r, 500, "out of memory", "INTERNAL");
        return;
    }
    char refresh[200];
    snprintf(refresh, sizeof refresh, "%s", rs->id);
    struct pf_session *as = pf_session_new(st, PF_SESS_ACCESS, u->id, ttl(r));
    if (!as) {
        err(r, 500, "out of memory", "INTERNAL");
        return;
    }
    char payload[200], sig[44];
    snprintf(payload, sizeof payload, "{\"user_id\":%lld,\"email\":\"%s\",\"exp\":%lld}", u->id,
             u->email, as->expires);
    char *p64 = fr_base64(r->req->pool, (const unsigned char *)payload, strlen(payload));
    pf_random(st, PF_ALNUM, 43, sig);
    snprintf(as->id, sizeof as->id, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s.%s", p64 ? p64 : "e30",
             sig);
    for (char *c = as->id; *c; c++)
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
        else if (*c == '=')
            *c = 'A';
    ok(r, json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", as->id, "refresh_token", refresh,
                    "expires_in", (json_int_t)ttl(r), "token_type", "Bearer", "user",
                    user_json(r, u)));
}

static void login(struct pf_req *r)
{
    struct pf_state *st = r->st;
    const char *email = pf_body_str(r, "email"), *pw = pf_body_str(r, "password");
    if (!email || !pw || !*email || !*pw) {
        err(r, 400,
            "Invalid request: Key: 'LoginRequest.Email' Error:Field validation for 'Email' "
            "failed on the 'required' tag",
            "VALIDATION_ERROR");
        return;
    }
    if (st->turnstile) {
        const char *t = pf_body_str(r, "turnstile_token");
        if (!t || !*t) {
            err(r, 400, "turnstile token is required", "TURNSTILE_REQUIRED");
            return;
        }
        if (strcmp(t, PF_TURNSTILE_OK) != 0) {
            err(r, 400, "turnstile verification failed", "TURNSTILE_VERIFICATION_FAILED");
            return;
        }
    }
    struct pf_user *u = pf_user_by_name(st, email);
    if (!u || strcmp(u->email, email) != 0 || strcmp(u->password, pw) != 0) {
        err(r, 401, "invalid email or password", "INVALID_CREDENTIALS");
        return;
    }
    if (u->totp_len) {
        struct pf_session *f = pf_session_new(st, PF_SESS_FLOW, u->id, 300);
        if (!f) {
            err(r, 500, "out of memory", "INTERNAL");
            return;
        }
        const char *at = strchr(u->email, '@');
        char masked[160];
        snprintf(masked, sizeof masked, "%.1s***%s", u->email, at ? at : "");
        ok(r, json_pack("{s:b, s:s, s:s}", "requires_2fa", 1, "temp_token", f->id,
                        "user_email_masked", masked));
        return;
    }
    issue(r, u);
}

static void login_2fa(struct pf_req *r)
{
    const char *tt = pf_body_str(r, "temp_token"), *code = pf_body_str(r, "totp_code");
    struct pf_session *f = tt ? pf_session_find(r->st, PF_SESS_FLOW, slice_from(tt), NULL) : NULL;
    struct pf_user *u = f ? pf_user_by_id(r->st, f->user_id) : NULL;
    if (!u) {
        err(r, 401, "invalid or expired temp token", "INVALID_TEMP_TOKEN");
        return;
    }
    if (!pf_totp_check(r->st, u, code)) {
        err(r, 400, "invalid totp code", "INVALID_TOTP_CODE");
        return;
    }
    f->dead = true;
    issue(r, u);
}

static void refresh(struct pf_req *r)
{
    const char *t = pf_body_str(r, "refresh_token");
    struct pf_session *rs = t ? pf_session_find(r->st, PF_SESS_REFRESH, slice_from(t), NULL) : NULL;
    struct pf_user *u = rs ? pf_user_by_id(r->st, rs->user_id) : NULL;
    if (!u) {
        err(r, 401, "invalid or expired refresh token", "INVALID_REFRESH_TOKEN");
        return;
    }
    rs->dead = true;
    issue(r, u);
}

static bool auth(struct pf_req *r, bool required)
{
    struct slice a = slice_trim(http_request_header(r->req, "authorization"));
    if (!a.n) {
        if (!required) return true;
        mw_err(r, 401, "UNAUTHORIZED", "Authorization header is required");
        return false;
    }
    if (a.n < 7 || !slice_ieq((struct slice){a.p, 7}, SLICE_LIT("Bearer "))) {
        if (!required) return true;
        mw_err(r, 401, "INVALID_AUTH_HEADER",
               "Authorization header format must be 'Bearer {token}'");
        return false;
    }
    struct slice tok = slice_trim((struct slice){a.p + 7, a.n - 7});
    if (!tok.n) {
        if (!required) return true;
        mw_err(r, 401, "EMPTY_TOKEN", "Token cannot be empty");
        return false;
    }
    bool expired;
    struct pf_session *s = pf_session_find(r->st, PF_SESS_ACCESS, tok, &expired);
    struct pf_user *u = s ? pf_user_by_id(r->st, s->user_id) : NULL;
    if (!u) {
        if (!required) return true;
        if (expired)
            mw_err(r, 401, "TOKEN_EXPIRED", "Token has expired");
        else
            mw_err(r, 401, "INVALID_TOKEN", "Invalid token");
        return false;
    }
    r->sess = s;
    r->user = u;
    return true;
}

static void logout(struct pf_req *r)
{
    if (r->sess) r->sess->dead = true;
    ok(r, json_pack("{s:s}", "message", "Logged out successfully"));
}

static void me(struct pf_req *r)
{
    ok(r, user_json(r, r->user));
}

static json_t *group_json(long long id)
{
    bool claude = id != GROUP_OPENAI;
    return json_pack("{s:I, s:s, s:s, s:s, s:f, s:b, s:s, s:s, s:n, s:n, s:n}", "id",
                     (json_int_t)id, "name", claude ? "claude-max" : "openai-plus", "description",
                     "", "platform", claude ? "anthropic" : "openai", "rate_multiplier", 1.0,
                     "is_exclusive", 0, "status", "active", "subscription_type", "standard",
                     "daily_limit_usd", "weekly_limit_usd", "monthly_limit_usd");
}

static void groups(struct pf_req *r)
{
    ok(r, json_pack("[o, o]", group_json(GROUP_CLAUDE), group_json(GROUP_OPENAI)));
}

static json_t *key_json(struct pf_req *r, const struct pf_token *t)
{
    json_t *g = group_json(t->group_id);
    return json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)t->id,
                     "user_id", (json_int_t)t->user_id, "key", t->key, "name", t->name, "group_id",
                     (json_int_t)t->group_id, "status", t->status == 1 ? "active" : "inactive",
                     "created_at", iso(r, t->created_time), "updated_at", iso(r, t->accessed_time),
                     "group", g);
}

/* page ≥ 1; page_size (or limit) ≤ 100, else 20. */
static void paging(struct pf_req *r, long long *page, long long *size)
{
    *page = pf_query_int(r->req, "page", 1);
    if (*page < 1) *page = 1;
    *size = pf_query_int(r->req, "page_size", -1);
    if (*size < 0) *size = pf_query_int(r->req, "limit", 20);
    if (*size < 1 || *size > 100) *size = 20;
}

static void keys_list(struct pf_req *r)
{
    long long page, size;
    paging(r, &page, &size);
    size_t n;
    struct pf_token **v = pf_tokens_of(r->st, r->user->id, &n);
    if (!v) {
        err(r, 500, "out of memory", "INTERNAL");
        return;
    }
    json_t *a = json_array();
    for (long long i = (page - 1) * size; i < (long long)n && i < page * size; i++)
        json_array_append_new(a, key_json(r, v[i]));
    free(v);
    ok(r, json_pack("{s:o, s:I, s:I, s:I, s:I}", "items", a, "total", (json_int_t)n, "page",
                    (json_int_t)page, "page_size", (json_int_t)size, "pages",
                    (json_int_t)((n + (size_t)size - 1) / (size_t)size)));
}

static bool group_ok(long long id)
{
    return id == GROUP_CLAUDE || id == GROUP_OPENAI;
}

static void keys_create(struct pf_req *r)
{
    const char *name = pf_body_str(r, "name"), *custom = pf_body_str(r, "custom_key");
    long long gid = GROUP_CLAUDE;
    if (!name || !*name) {
        err(r, 400,
            "Invalid request: Key: 'CreateAPIKeyRequest.Name' Error:Field validation for 'Name' "
            "failed on the 'required' tag",
            "VALIDATION_ERROR");
        return;
    }
    if (strlen(name) >= PF_NAME_MAX) {
        err(r, 400, "Invalid request: name is too long", "VALIDATION_ERROR");
        return;
    }
    if (pf_body_int(r, "group_id", &gid) && !group_ok(gid)) {
        err(r, 400, "group not found or not allowed", "GROUP_NOT_ALLOWED");
        return;
    }
    char key[PF_KEY_MAX];
    if (custom && *custom) {
        if (strlen(custom) < 16 || strlen(custom) >= PF_KEY_MAX ||
            pf_token_by_key(r->st, slice_from(custom))) {
            err(r, 400, "custom key is invalid or already exists", "INVALID_CUSTOM_KEY");
            return;
        }
        snprintf(key, sizeof key, "%s", custom);
    } else {
        pf_key_sub2api(r->st, key);
    }
    struct pf_token *t = pf_token_new(r->st, r->user->id, key);
    if (!t) {
        err(r, 500, "out of memory", "INTERNAL");
        return;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->group_id = gid;
    ok(r, key_json(r, t));
}

static struct pf_token *key_of(struct pf_req *r)
{
    struct pf_token *t = pf_token_by_id(r->st, r->user->id, r->path_id);
    if (!t) err(r, 404, "API key not found", "API_KEY_NOT_FOUND");
    return t;
}

static void keys_get(struct pf_req *r)
{
    struct pf_token *t = key_of(r);
    if (t) ok(r, key_json(r, t));
}

static void keys_update(struct pf_req *r)
{
    struct pf_token *t = key_of(r);
    if (!t) return;
    const char *name = pf_body_str(r, "name"), *status = pf_body_str(r, "status");
    long long gid;
    if (pf_body_int(r, "group_id", &gid)) {
        if (!group_ok(gid)) {
            err(r, 400, "group not found or not allowed", "GROUP_NOT_ALLOWED");
            return;
        }
        t->group_id = gid;
    }
    if (name && *name) snprintf(t->name, sizeof t->name, "%s", name);
    if (status) t->status = strcmp(status, "active") == 0 ? 1 : 2;
    t->accessed_time = pf_now(r->st);
    ok(r, key_json(r, t));
}

static void keys_delete(struct pf_req *r)
{
    struct pf_token *t = key_of(r);
    if (!t) return;
    t->deleted = true;
    ok(r, json_pack("{s:s}", "message", "API key deleted successfully"));
}

static void subs_summary(struct pf_req *r)
{
    ok(r, json_pack("{s:i, s:i, s:[]}", "active_count", 0, "total_used_usd", 0, "subscriptions"));
}

static void subs_list(struct pf_req *r)
{
    ok(r, json_array());
}

static void usage(struct pf_req *r)
{
    long long page, size, k = 0;
    paging(r, &page, &size);
    json_t *a = json_array();
    for (size_t i = r->st->n_logs; i-- > 0;) {
        struct pf_log *l = &r->st->logs[i];
        if (l->user_id != r->user->id || l->type != 2) continue;
        if (k >= (page - 1) * size && k < page * size)
            json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:s, s:i, s:i, s:f, s:s}", "id",
                                               (json_int_t)l->id, "user_id", (json_int_t)l->user_id,
                                               "api_key_id", (json_int_t)l->token_id, "model",
                                               l->model_name, "input_tokens", 10, "output_tokens",
                                               20, "actual_cost",
                                               (double)l->quota / r->st->o.quota_per_unit,
                                               "created_at", iso(r, l->created_at)));
        k++;
    }
    ok(r, json_pack("{s:o, s:I, s:I, s:I, s:I}", "items", a, "total", (json_int_t)k, "page",
                    (json_int_t)page, "page_size", (json_int_t)size, "pages",
                    (json_int_t)((k + size - 1) / size)));
}

/* ---- relay ---- */

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    char msg[300];
    switch (kind) {
    case PF_RELAY_NO_KEY:
        mw_err(r, 401, "API_KEY_REQUIRED",
               "API key is required in Authorization header (Bearer scheme), x-api-key header, "
               "x-goog-api-key header, or key query parameter");
        return;
    case PF_RELAY_BAD_KEY:
        mw_err(r, 401, "INVALID_API_KEY", "Invalid API key");
        return;
    case PF_RELAY_KEY_EXPIRED:
    case PF_RELAY_KEY_EXHAUSTED:
    case PF_RELAY_KEY_DISABLED:
        mw_err(r, 401, "API_KEY_DISABLED", "API key is disabled");
        return;
    case PF_RELAY_USER_QUOTA:
        mw_err(r, 403, "INSUFFICIENT_BALANCE", "Insufficient account balance");
        return;
    case PF_RELAY_MODEL_FORBIDDEN:
    case PF_RELAY_NO_CHANNEL:
        snprintf(msg, sizeof msg,
                 "No available accounts: no available accounts supporting model %s", detail);
        pf_reply(r, 503,
                 json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", "api_error",
                           "message", msg));
        return;
    }
    mw_err(r, 500, "INTERNAL", "fakerelay: unknown relay error");
}

static void relay_models(struct pf_req *r, const struct pf_token *t)
{
    bool claude = !t || t->group_id != GROUP_OPENAI;
    json_t *names = pf_models_for(r->cfg, NULL), *data = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
    {
        const char *m = json_string_value(v);
        if (claude)
            json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:s}", "id", m, "type", "model",
                                                  "display_name", m, "created_at",
                                                  "2025-09-29T00:00:00Z"));
        else
            json_array_append_new(data,
                                  json_pack("{s:s, s:s, s:i, s:s}", "id", m, "object", "model",
                                            "created", 1626777600, "owned_by", "openai"));
    }
    json_decref(names);
    pf_reply(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static bool relay_extra(struct pf_req *r, const struct pf_token *t)
{
    (void)t;
    if (!slice_eq_str(r->req->path, "/v1/usage")) return false;
    pf_reply(r, 200,
             json_pack("{s:b, s:s, s:f, s:s}", "isValid", 1, "planName", "钱包余额", "remaining",
                       balance(r, r->user), "unit", "USD"));
    return true;
}

static void not_found(struct pf_req *r)
{
    pf_reply_text(r, 404, "text/plain", "404 page not found");
}

static const struct pf_route routes[] = {
    {"GET", "/api/v1/settings/public", settings, 0},
    {"POST", "/api/v1/auth/login", login, PF_JSON_BODY},
    {"POST", "/api/v1/auth/login/2fa", login_2fa, PF_JSON_BODY},
    {"POST", "/api/v1/auth/refresh", refresh, PF_JSON_BODY},
    {"POST", "/api/v1/auth/logout", logout, PF_AUTH},
    {"GET", "/api/v1/auth/me", me, PF_AUTH},
    {"GET", "/api/v1/user/profile", me, PF_AUTH},
    {"GET", "/api/v1/groups/available", groups, PF_AUTH},
    {"GET", "/api/v1/keys", keys_list, PF_AUTH},
    {"POST", "/api/v1/keys", keys_create, PF_AUTH | PF_JSON_BODY},
    {"GET", "/api/v1/keys/#", keys_get, PF_AUTH},
    {"PUT", "/api/v1/keys/#", keys_update, PF_AUTH | PF_JSON_BODY},
    {"DELETE", "/api/v1/keys/#", keys_delete, PF_AUTH},
    {"GET", "/api/v1/subscriptions/summary", subs_summary, PF_AUTH},
    {"GET", "/api/v1/subscriptions/active", subs_list, PF_AUTH},
    {"GET", "/api/v1/subscriptions/progress", subs_list, PF_AUTH},
    {"GET", "/api/v1/usage", usage, PF_AUTH},
};

const struct pf_platform pf_sub2api = {
    .kind = PF_SUB2API,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = false,
    .auth = auth,
    .relay_error = relay_error,
    .relay_models = relay_models,
    .relay_extra = relay_extra,
    .not_found = not_found,
};
