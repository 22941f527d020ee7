/* sub2api.c — Sub2API (Wei-Shaw/sub2api): a different family. Envelope
 * {"code":0,"message","data"} (handler errors carry the HTTP status as code, auth
 * middleware errors a string code such as TOKEN_EXPIRED), e-mail + password login
 * answering a JWT and a refresh token (2FA: requires_2fa + temp_token, finished at
 * /api/v1/auth/login/2fa), balance in USD at /api/v1/auth/me (no quota unit), API keys at
 * /api/v1/keys (full "sk-" keys; create answers the key), groups at
 * /api/v1/groups/available (a key is bound to one numeric group), models only through
 * /v1/models with a key. No check-in (unknown /api paths answer a plain-text 404). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platforms/common.h"

#define MAX_KEY_PAGES 100

static int s2_init(struct pf_ctx *x, fetch_client_t *f, const struct platform_credentials *c,
                   struct platform_error *err)
{
    return pf_ctx_init(x, f, c, err);
}

static void take_tokens(struct pf_ctx *x, const json_t *data, struct platform_session *out)
{
    const char *at = pf_jstr(data, "access_token");
    const char *rt = pf_jstr(data, "refresh_token");
    out->access_token = pf_strdup(at);
    out->refresh_token = pf_strdup(rt);
    double ttl;
    if (pf_jnum(data, "expires_in", &ttl) && ttl > 0)
        out->access_expires_at = (int64_t)time(NULL) + (int64_t)ttl;
    const json_t *user = json_object_get(data, "user");
    out->user_id = pf_jid(json_object_get(user, "id"));
    const char *name = pf_jstr(user, "username");
    if (!name || !*name) name = pf_jstr(user, "email");
    out->username = pf_strdup(name);
    pf_ctx_set_bearer(x, at);
}

static int do_login(struct pf_ctx *x, struct platform_session *out)
{
    const struct platform_credentials *c = x->c;
    if (!c->username || !*c->username || !c->password || !*c->password)
        return pf_fail(x->err, PLATFORM_ERR_AUTH, 0,
                       "Sub2API login needs the account's e-mail and password (or paste its "
                       "access token)");
    pf_ctx_set_bearer(x, NULL);
    json_t *root, *data;
    /* Turnstile on login cannot be passed headlessly: say so before trying. */
    if (pf_call(x, "GET", "/api/v1/settings/public", NULL, &root, &data) == 0) {
        bool ts = pf_jbool(data, "turnstile_enabled");
        json_decref(root);
        if (ts)
            return pf_fail(x->err, PLATFORM_ERR_CAPTCHA, 0,
                           "this Sub2API site requires a Turnstile verification on login, which "
                           "metarelay cannot pass: log in with a browser and paste the access "
                           "token (and refresh token) instead");
    }
    memset(x->err, 0, sizeof *x->err);
    json_t *body = json_pack("{s:s, s:s}", "email", c->username, "password", c->password);
    int rc = body ? pf_call(x, "POST", "/api/v1/auth/login", body, &root, &data)
                  : pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    json_decref(body);
    if (rc != 0) {
        if (x->err->kind == PLATFORM_ERR_UPSTREAM && x->err->http_status >= 400 &&
            x->err->http_status < 500)
            x->err->kind = PLATFORM_ERR_AUTH;
        return -1;
    }
    if (pf_jbool(data, "requires_2fa") || pf_jbool(data, "require_2fa")) {
        const char *temp = pf_jstr(data, "temp_token");
        if (!c->totp_secret || !*c->totp_secret || !temp) {
            json_decref(root);
            return pf_fail(x->err, PLATFORM_ERR_NEEDS_2FA, 0,
                           "the account has two-factor authentication: store its TOTP secret "
                           "(base32) with the account");
        }
        char code[7];
        if (pf_totp(c->totp_secret, (int64_t)time(NULL), code) != 0) {
            json_decref(root);
            return pf_fail(x->err, PLATFORM_ERR_NEEDS_2FA, 0,
                           "the stored TOTP secret is not valid base32");
        }
        json_t *b2 = json_pack("{s:s, s:s}", "temp_token", temp, "totp_code", code);
        json_decref(root);
        rc = b2 ? pf_call(x, "POST", "/api/v1/auth/login/2fa", b2, &root, &data)
                : pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
        json_decref(b2);
        if (rc != 0) {
            if (x->err->kind != PLATFORM_ERR_UNREACHABLE)
                pf_fail(x->err, PLATFORM_ERR_NEEDS_2FA, x->err->http_status,
                        "the site refused the TOTP code (check the secret and this machine's "
                        "clock): %s",
                        x->site_msg[0] ? x->site_msg : "no reason given");
            return -1;
        }
    }
    const char *at = pf_jstr(data, "access_token");
    if (!at || !*at) {
        json_decref(root);
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                       "POST /api/v1/auth/login: no access token in the answer");
    }
    take_tokens(x, data, out);
    json_decref(root);
    return 0;
}

static int ensure_session(struct pf_ctx *x)
{
    if (x->bearer) return 0;
    struct platform_session s = {0};
    int rc = do_login(x, &s);
    platform_session_free(&s);
    if (rc != 0 && !(x->c->username && x->c->password))
        return pf_fail(x->err, PLATFORM_ERR_AUTH, 0,
                       "no credentials for Sub2API: give the e-mail and password or an access "
                       "token");
    return rc;
}

static int s2_login(fetch_client_t *f, const struct platform_credentials *c,
                    struct platform_session *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0) return pf_ctx_end(&x, -1);
    int rc = do_login(&x, out);
    if (rc != 0) platform_session_free(out);
    return pf_ctx_end(&x, rc);
}

static int s2_refresh(fetch_client_t *f, const struct platform_credentials *c,
                      struct platform_session *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0) return pf_ctx_end(&x, -1);
    if (c->refresh_token && *c->refresh_token) {
        json_t *body = json_pack("{s:s}", "refresh_token", c->refresh_token);
        json_t *root, *data;
        pf_ctx_set_bearer(&x, NULL);
        int rc = body ? pf_call(&x, "POST", "/api/v1/auth/refresh", body, &root, &data) : -1;
        json_decref(body);
        if (rc == 0) {
            const char *at = pf_jstr(data, "access_token");
            if (at && *at) {
                take_tokens(&x, data, out);
                json_decref(root);
                return pf_ctx_end(&x, 0);
            }
            json_decref(root);
        }
        if (x.err && x.err->kind == PLATFORM_ERR_UNREACHABLE) return pf_ctx_end(&x, -1);
    }
    if (c->username && *c->username && c->password && *c->password) {
        memset(err, 0, sizeof *err);
        int rc = do_login(&x, out);
        if (rc != 0) platform_session_free(out);
        return pf_ctx_end(&x, rc);
    }
    pf_fail(err, PLATFORM_ERR_AUTH, 0,
            "the Sub2API session expired and cannot be refreshed (no valid refresh token, no "
            "password): paste a new access token");
    return pf_ctx_end(&x, -1);
}

static int s2_balance(fetch_client_t *f, const struct platform_credentials *c,
                      struct platform_balance *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0 || ensure_session(&x) != 0) return pf_ctx_end(&x, -1);
    json_t *root, *me;
    if (pf_call(&x, "GET", "/api/v1/auth/me", NULL, &root, &me) != 0) return pf_ctx_end(&x, -1);
    double bal;
    if (!pf_jnum(me, "balance", &bal)) {
        json_decref(root);
        pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, x.last_status,
                "GET /api/v1/auth/me: no balance in the answer");
        return pf_ctx_end(&x, -1);
    }
    out->balance = bal; /* already USD */
    out->used = -1;
    out->quota_per_unit = 1;
    out->raw_quota = -1;
    out->currency = strdup("USD");
    const char *name = pf_jstr(me, "username");
    if (!name || !*name) name = pf_jstr(me, "email");
    out->display_name = pf_strdup(name);
    json_decref(root);
    return pf_ctx_end(&x, 0);
}

/* A Sub2API key object → platform_token (group = the group's name, else its id). */
static int parse_key(const json_t *o, struct platform_token *t)
{
    if (lineage_parse_token(o, 1, t) != 0) return -1;
    const json_t *g = json_object_get(o, "group");
    const char *gname = pf_jstr(g, "name");
    free(t->group);
    t->group = gname ? strdup(gname) : pf_jid(json_object_get(o, "group_id"));
    double q;
    if (!pf_jnum(o, "quota", &q) || q <= 0) {
        t->unlimited = true; /* spends the account's wallet */
        t->remain_quota = -1;
    } else {
        t->unlimited = false;
        t->remain_quota = q;
    }
    return 0;
}

static int list_keys(struct pf_ctx *x, struct platform_token_list *out)
{
    for (int page = 1; page <= MAX_KEY_PAGES; page++) {
        char path[80];
        /* page_size above 100 silently falls back to 20 (addendum 5). */
        snprintf(path, sizeof path, "/api/v1/keys?page=%d&page_size=100", page);
        json_t *root, *data;
        if (pf_call(x, "GET", path, NULL, &root, &data) != 0) return -1;
        const json_t *arr = lineage_token_array(data);
        if (!arr) {
            json_decref(root);
            return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                           "GET /api/v1/keys: the answer has no key list");
        }
        size_t i, added = 0;
        const json_t *o;
        json_array_foreach(arr, i, o)
        {
            struct platform_token t;
            if (parse_key(o, &t) != 0) continue;
            bool dup = false;
            for (size_t k = 0; k < out->n && !dup; k++) dup = strcmp(out->items[k].id, t.id) == 0;
            struct platform_token *grown =
                dup ? NULL : realloc(out->items, (out->n + 1) * sizeof *grown);
            if (!grown) {
                platform_token_free(&t);
                continue;
            }
            out->items = grown;
            out->items[out->n++] = t;
            added++;
        }
        double pages = 0;
        bool has_pages = pf_jnum(data, "pages", &pages);
        json_decref(root);
        if (added == 0 || (has_pages && page >= pages) ||
            (!has_pages && json_array_size(arr) < 100))
            break;
    }
    return 0;
}

static int s2_list_tokens(fetch_client_t *f, const struct platform_credentials *c,
                          struct platform_token_list *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0 || ensure_session(&x) != 0) return pf_ctx_end(&x, -1);
    int rc = list_keys(&x, out);
    if (rc != 0) platform_token_list_free(out);
    return pf_ctx_end(&x, rc);
}

static bool all_digits(const char *s)
{
    if (!s || !*s || strlen(s) > 18) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* A group given by name or id → its numeric id; -1 with *err when unknown. */
static long long group_id(struct pf_ctx *x, const char *group)
{
    if (all_digits(group)) return strtoll(group, NULL, 10);
    json_t *root, *data;
    if (pf_call(x, "GET", "/api/v1/groups/available", NULL, &root, &data) != 0) return -1;
    long long id = -1;
    size_t i;
    const json_t *g;
    json_array_foreach(data, i, g)
    {
        const char *name = pf_jstr(g, "name");
        double d;
        if (name && strcmp(name, group) == 0 && pf_jnum(g, "id", &d)) {
            id = (long long)d;
            break;
        }
    }
    json_decref(root);
    if (id < 0)
        pf_fail(x->err, PLATFORM_ERR_UPSTREAM, 0, "no group named \"%s\" on this site", group);
    return id;
}

static int s2_create_token(fetch_client_t *f, const struct platform_credentials *c,
                           const struct platform_token_spec *spec, struct platform_token *out,
                           struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0 || ensure_session(&x) != 0) return pf_ctx_end(&x, -1);
    if (!spec || !spec->name || !*spec->name) {
        pf_fail(err, PLATFORM_ERR_UPSTREAM, 0, "a key needs a name");
        return pf_ctx_end(&x, -1);
    }
    json_t *body = json_pack("{s:s}", "name", spec->name);
    if (spec->group && *spec->group) {
        long long gid = group_id(&x, spec->group);
        if (gid < 0) {
            json_decref(body);
            return pf_ctx_end(&x, -1);
        }
        json_object_set_new(body, "group_id", json_integer(gid));
    }
    if (!spec->unlimited && spec->remain_quota > 0)
        json_object_set_new(body, "quota", json_real(spec->remain_quota));
    if (spec->expires_at > 0) {
        long long days = (spec->expires_at - (int64_t)time(NULL) + 86399) / 86400;
        if (days > 0) json_object_set_new(body, "expires_in_days", json_integer(days));
    }
    json_t *root, *data;
    int rc = pf_call(&x, "POST", "/api/v1/keys", body, &root, &data);
    json_decref(body);
    if (rc != 0) return pf_ctx_end(&x, -1);
    rc = parse_key(data, out);
    json_decref(root);
    if (rc != 0 || !out->key) {
        platform_token_free(out);
        pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, x.last_status,
                "POST /api/v1/keys: the answer has no key");
        return pf_ctx_end(&x, -1);
    }
    return pf_ctx_end(&x, 0);
}

static int s2_delete_token(fetch_client_t *f, const struct platform_credentials *c, const char *id,
                           struct platform_error *err)
{
    struct pf_ctx x;
    if (s2_init(&x, f, c, err) != 0 || ensure_session(&x) != 0) return pf_ctx_end(&x, -1);
    if (!all_digits(id)) {
        pf_fail(err, PLATFORM_ERR_UPSTREAM, 0, "invalid key id");
        return pf_ctx_end(&x, -1);
    }
    char path[64];
    snprintf(path, sizeof path, "/api/v1/keys/%s", id);
    json_t *root, *data;
    if (pf_call(&x, "DELETE", path, NULL, &root, &data) != 0) return pf_ctx_end(&x, -1);
    json_decref(root);
    return pf_ctx_end(&x, 0);
}

static int s2_groups(fetch_client_t *f, const struct platform_credentials *c,
                     struct platform_group_list *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (s2_init(&x, f, c, err) != 0 || ensure_session(&x) != 0) return pf_ctx_end(&x, -1);
    json_t *root, *data;
    if (pf_call(&x, "GET", "/api/v1/groups/available", NULL, &root, &data) != 0)
        return pf_ctx_end(&x, -1);
    if (!json_is_array(data)) {
        json_decref(root);
        pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, x.last_status,
                "GET /api/v1/groups/available: the answer has no group list");
        return pf_ctx_end(&x, -1);
    }
    size_t i;
    const json_t *g;
    json_array_foreach(data, i, g)
    {
        const char *name = pf_jstr(g, "name");
        if (!name || !*name) continue;
        double ratio = -1;
        if (!pf_jnum(g, "rate_multiplier", &ratio)) ratio = -1;
        const char *desc = pf_jstr(g, "description");
        if (!desc || !*desc) desc = pf_jstr(g, "platform");
        struct platform_group *grown = realloc(out->items, (out->n + 1) * sizeof *grown);
        if (!grown) break;
        out->items = grown;
        out->items[out->n++] = (struct platform_group){
            .name = strdup(name), .ratio = ratio, .description = desc ? strdup(desc) : NULL};
    }
    json_decref(root);
    return pf_ctx_end(&x, 0);
}

/* Models come from /v1/models with a key: the given one, else the account's first
 * active key. */
static int s2_models(fetch_client_t *f, const struct platform_credentials *c,
                     struct platform_model_list *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (c && c->api_key && *c->api_key) {
        if (s2_init(&x, f, c, err) != 0) return pf_ctx_end(&x, -1);
        return pf_ctx_end(&x, pf_key_models(&x, false, out));
    }
    struct platform_token_list keys;
    if (s2_list_tokens(f, c, &keys, err) != 0) return -1;
    const char *key = NULL;
    for (size_t i = 0; i < keys.n && !key; i++)
        if (keys.items[i].enabled && keys.items[i].key) key = keys.items[i].key;
    if (!key) {
        platform_token_list_free(&keys);
        return pf_fail(err, PLATFORM_ERR_UNSUPPORTED, 0,
                       "Sub2API lists models per API key and the account has no active key");
    }
    struct platform_credentials with_key = *c;
    with_key.api_key = key;
    int rc = s2_init(&x, f, &with_key, err);
    if (rc == 0) rc = pf_key_models(&x, false, out);
    rc = pf_ctx_end(&x, rc);
    platform_token_list_free(&keys);
    return rc;
}

const struct platform platform_sub2api = {
    .id = "sub2api",
    .display_name = "Sub2API",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_MESSAGES | PLATFORM_FORMAT_RESPONSES,
    .has_management = true,
    .has_checkin = false,
    .login = s2_login,
    .refresh_session = s2_refresh,
    .balance = s2_balance,
    .checkin = NULL,
    .list_tokens = s2_list_tokens,
    .create_token = s2_create_token,
    .delete_token = s2_delete_token,
    .groups = s2_groups,
    .models = s2_models,
};
