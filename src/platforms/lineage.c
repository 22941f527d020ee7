/* lineage.c — the management operations the One API lineage shares (New API, AnyRouter,
 * One API, OneHub, DoneHub, Veloera), parameterised by a `struct lineage_flavor`:
 * password login in both New API auth generations with TOTP 2FA, session refresh,
 * balance from /api/user/self in the site's quota unit, token pages of every shape with
 * masked keys recovered through POST /api/token/{id}/key, token create/delete, groups,
 * the account's models and prices. upstream-platforms.md (with its addendum) is the
 * reference for every route and field used here. */
#include "platforms/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKEN_PAGES 100
#define MAX_TOKENS      10000

int lineage_ctx_init(struct pf_ctx *x, const struct lineage_flavor *fl, fetch_client_t *f,
                     const struct platform_credentials *c, struct platform_error *err)
{
    if (pf_ctx_init(x, f, c, err) != 0) return -1;
    x->user_headers = fl->user_headers;
    x->browser = fl->browser;
    return 0;
}

/* ---- login ---- */

/* Unix seconds from a number that may be seconds or milliseconds. */
static int64_t unix_seconds(const json_t *o, const char *key)
{
    double d;
    if (!pf_jnum(o, key, &d) || d <= 0) return 0;
    if (d > 1e12) d /= 1000;
    return (int64_t)d;
}

static int do_login(struct pf_ctx *x, const struct lineage_flavor *fl, struct platform_session *out)
{
    const struct platform_credentials *c = x->c;
    if (!c->username || !*c->username || !c->password || !*c->password)
        return pf_fail(x->err, PLATFORM_ERR_AUTH, 0,
                       "%s login needs a username and a password (or use an access token or a "
                       "session cookie)",
                       fl->name);
    json_t *body = json_pack("{s:s, s:s}", "username", c->username, "password", c->password);
    json_t *root = NULL, *data = NULL;
    /* A login must not carry a stale bearer or session from the stored credentials. */
    pf_ctx_set_bearer(x, NULL);
    int rc = body ? pf_call(x, "POST", "/api/user/login", body, &root, &data)
                  : pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    json_decref(body);
    if (rc != 0) {
        if (x->err->kind == PLATFORM_ERR_UPSTREAM && !pf_msg_captcha(x->site_msg))
            x->err->kind = PLATFORM_ERR_AUTH; /* 用户名或密码错误, 管理员关闭了密码登录 … */
        return -1;
    }
    if (pf_jbool(data, "require_2fa") || pf_jbool(data, "requires_2fa")) {
        if (!c->totp_secret || !*c->totp_secret) {
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
        json_t *b2 = json_pack("{s:s}", "code", code);
        const char *flow = pf_jstr(data, "flow_token");
        if (b2 && flow) json_object_set_new(b2, "flow_token", json_string(flow));
        json_decref(root);
        root = NULL;
        rc = b2 ? pf_call(x, "POST", "/api/user/login/2fa", b2, &root, &data)
                : pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
        json_decref(b2);
        if (rc != 0) {
            if (x->err->kind == PLATFORM_ERR_UPSTREAM || x->err->kind == PLATFORM_ERR_AUTH)
                pf_fail(x->err, PLATFORM_ERR_NEEDS_2FA, x->err->http_status,
                        "the site refused the TOTP code (check the secret and this machine's "
                        "clock): %s",
                        x->site_msg[0] ? x->site_msg : "no reason given");
            return -1;
        }
    }
    /* Second generation (New API from mid-2026): an access token in the answer. */
    const char *at = pf_jstr(data, "access_token");
    const json_t *user = json_object_get(data, "user");
    char *uid = NULL;
    if (at && *at) {
        pf_ctx_set_bearer(x, at);
        out->access_token = strdup(at);
        out->access_expires_at = unix_seconds(data, "access_expires_at");
        if (!out->access_expires_at) {
            double ttl;
            if (pf_jnum(data, "expires_in", &ttl) && ttl > 0)
                out->access_expires_at = (int64_t)time(NULL) + (int64_t)ttl;
        }
        uid = pf_jid(json_object_get(user, "id"));
    } else {
        /* First generation: the session cookie; data is the user row (zero quota). */
        uid = pf_jid(json_object_get(data, "id"));
        if (!uid) uid = pf_jid(json_object_get(user, "id"));
    }
    json_decref(root);
    if (uid) pf_ctx_set_user(x, uid);
    free(uid);
    if (!x->bearer && !x->jar.n)
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, 0,
                       "%s login succeeded but the site set no session cookie and no token",
                       fl->name);
    /* Login answers are not user info (addendum 2): confirm with /api/user/self, and keep
     * an access token the site already shows there (reading it never rotates it). */
    json_t *sroot, *self;
    if (lineage_self(x, &sroot, &self) != 0) return -1;
    if (!x->user_id) {
        char *id = pf_jid(json_object_get(self, "id"));
        pf_ctx_set_user(x, id);
        free(id);
    }
    const char *self_tok = pf_jstr(self, "access_token");
    if (!out->access_token && self_tok && strlen(self_tok) >= 16)
        out->access_token = strdup(self_tok);
    const char *uname = pf_jstr(self, "username");
    out->username = pf_strdup(uname ? uname : c->username);
    json_decref(sroot);
    if (x->jar.n && buf_nul(&x->jar)) out->cookie = strdup(x->jar.p);
    out->user_id = pf_strdup(x->user_id);
    return 0;
}

int lineage_login(struct pf_ctx *x, const struct lineage_flavor *fl, struct platform_session *out)
{
    memset(out, 0, sizeof *out);
    int rc = do_login(x, fl, out);
    if (rc != 0) platform_session_free(out);
    return rc;
}

int lineage_refresh(struct pf_ctx *x, const struct lineage_flavor *fl, struct platform_session *out)
{
    memset(out, 0, sizeof *out);
    const struct platform_credentials *c = x->c;
    /* Second generation: the refresh cookie buys a new access token. */
    if (c->access_token && *c->access_token && x->jar.n) {
        json_t *root, *data;
        if (pf_call(x, "POST", "/api/user/auth/refresh", NULL, &root, &data) == 0) {
            const char *at = pf_jstr(data, "access_token");
            if (at && *at) {
                out->access_token = strdup(at);
                out->access_expires_at = unix_seconds(data, "access_expires_at");
                if (x->jar.n && buf_nul(&x->jar)) out->cookie = strdup(x->jar.p);
                out->user_id = pf_strdup(x->user_id);
                json_decref(root);
                return 0;
            }
            json_decref(root);
        }
        if (x->err->kind == PLATFORM_ERR_UNREACHABLE || x->err->kind == PLATFORM_ERR_CAPTCHA)
            return -1;
        memset(x->err, 0, sizeof *x->err);
    }
    if (c->username && *c->username && c->password && *c->password)
        return lineage_login(x, fl, out);
    return pf_fail(x->err, PLATFORM_ERR_AUTH, 0,
                   "the session expired and no password is stored: paste a new session cookie "
                   "or access token");
}

int lineage_ensure_session(struct pf_ctx *x, const struct lineage_flavor *fl)
{
    if (x->bearer || x->jar.n) return 0;
    const struct platform_credentials *c = x->c;
    if (c->username && *c->username && c->password && *c->password) {
        struct platform_session s;
        int rc = lineage_login(x, fl, &s);
        platform_session_free(&s);
        return rc;
    }
    return pf_fail(x->err, PLATFORM_ERR_AUTH, 0,
                   "no credentials for %s: give a password, an access token or a session cookie",
                   fl->name);
}

/* ---- balance ---- */

int lineage_self(struct pf_ctx *x, json_t **root, json_t **self)
{
    if (pf_call(x, "GET", "/api/user/self", NULL, root, self) != 0) return -1;
    if (!json_is_object(*self)) {
        json_decref(*root);
        *root = NULL;
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                       "GET /api/user/self: the answer has no user object");
    }
    return 0;
}

int lineage_balance(struct pf_ctx *x, struct platform_balance *out, json_t **self_out)
{
    memset(out, 0, sizeof *out);
    if (self_out) *self_out = NULL;
    double qpu;
    json_t *root, *self;
    if (lineage_self(x, &root, &self) != 0) return -1;
    if (pf_quota_per_unit(x, &qpu) != 0) {
        json_decref(root);
        return -1;
    }
    double quota, used;
    if (!pf_jnum(self, "quota", &quota)) {
        json_decref(root);
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                       "GET /api/user/self: no quota in the answer");
    }
    /* quota is already the remainder (never subtract used_quota). */
    out->balance = pf_quota_to_money(quota, qpu);
    out->used = pf_jnum(self, "used_quota", &used) ? pf_quota_to_money(used, qpu) : -1;
    out->quota_per_unit = qpu;
    out->raw_quota = fabs(quota) < 9e18 ? (int64_t)quota : -1;
    out->currency = strdup("USD");
    const char *dn = pf_jstr(self, "display_name");
    if (!dn || !*dn) dn = pf_jstr(self, "username");
    if (!dn || !*dn) dn = pf_jstr(self, "email");
    out->display_name = pf_strdup(dn);
    const char *g = pf_jstr(self, "group");
    out->group = g && *g ? strdup(g) : NULL;
    if (self_out) *self_out = json_incref(self);
    json_decref(root);
    return 0;
}

/* ---- tokens ---- */

static char *with_prefix(const char *key)
{
    if (!key || !*key) return NULL;
    if (strncmp(key, "sk-", 3) == 0) return strdup(key);
    char *s = NULL;
    return asprintf(&s, "sk-%s", key) < 0 ? NULL : s;
}

/* Appends a model name to a comma-separated list. */
static void csv_add(struct buf *b, const char *name)
{
    if (!name || !*name) return;
    if (b->n) buf_append_str(b, ",");
    buf_append_str(b, name);
}

int lineage_parse_token(const json_t *o, double qpu, struct platform_token *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(o)) return -1;
    out->id = pf_jid(json_object_get(o, "id"));
    if (!out->id) return -1;
    out->name = pf_strdup(pf_jstr(o, "name"));
    const char *key = pf_jstr(o, "key");
    if (key && strchr(key, '*'))
        out->masked_key = strdup(key);
    else
        out->key = with_prefix(key);
    const char *g = pf_jstr(o, "group");
    out->group = g && *g ? strdup(g) : NULL;
    const json_t *st = json_object_get(o, "status");
    if (json_is_integer(st))
        out->enabled = json_integer_value(st) == 1;
    else if (json_is_string(st))
        out->enabled = strcmp(json_string_value(st), "active") == 0 ||
                       strcmp(json_string_value(st), "enabled") == 0;
    else
        out->enabled = true;
    out->unlimited = pf_jbool(o, "unlimited_quota");
    double rq;
    out->remain_quota = pf_jnum(o, "remain_quota", &rq) ? pf_quota_to_money(rq, qpu) : -1;
    double exp;
    if (pf_jnum(o, "expired_time", &exp))
        out->expires_at = exp < 0 ? -1 : (int64_t)exp;
    else
        out->expires_at = -1;
    /* Model limits in the three shapes of the lineage. */
    struct buf ml = BUF_INIT;
    const char *limits = pf_jstr(o, "model_limits");
    const char *models = pf_jstr(o, "models");
    if (pf_jbool(o, "model_limits_enabled") && limits && *limits) {
        buf_append_str(&ml, limits);
    } else if (!json_object_get(o, "model_limits_enabled") && models && *models) {
        buf_append_str(&ml, models);
    } else {
        const json_t *lms = json_object_get(
            json_object_get(json_object_get(o, "setting"), "limits"), "limit_model_setting");
        if (pf_jbool(lms, "enabled")) {
            size_t i;
            const json_t *m;
            json_array_foreach(json_object_get(lms, "models"), i, m)
                csv_add(&ml, json_string_value(m));
        }
    }
    if (ml.n && buf_nul(&ml)) {
        out->model_limits = ml.p;
    } else {
        buf_free(&ml);
    }
    return 0;
}

const json_t *lineage_token_array(const json_t *data)
{
    if (json_is_array(data)) return data;
    const json_t *a = json_object_get(data, "items");
    if (json_is_array(a)) return a;
    a = json_object_get(data, "data");
    if (json_is_array(a)) return a;
    a = json_object_get(data, "list");
    return json_is_array(a) ? a : NULL;
}

static bool safe_id(const char *id)
{
    if (!id || !*id || strlen(id) > 64) return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* Recovers the full value of a masked key (recent New API). 0, or -1 with *err. */
static int fetch_full_key(struct pf_ctx *x, struct platform_token *t)
{
    if (!safe_id(t->id))
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, 0, "token id is not a plain id");
    char path[128];
    snprintf(path, sizeof path, "/api/token/%s/key", t->id);
    json_t *root, *data;
    if (pf_call(x, "POST", path, NULL, &root, &data) != 0) return -1;
    const char *key = json_is_string(data) ? json_string_value(data) : pf_jstr(data, "key");
    int rc = 0;
    if (!key || !*key || strchr(key, '*'))
        rc = pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                     "POST /api/token/{id}/key: no key in the answer");
    else
        t->key = with_prefix(key);
    json_decref(root);
    return rc;
}

static bool list_has_id(const struct platform_token_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].id, id) == 0) return true;
    return false;
}

/* Adds a page's tokens; returns how many were new, -1 when out of memory. */
static int add_page(struct platform_token_list *l, const json_t *arr, double qpu)
{
    int added = 0;
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (l->n >= MAX_TOKENS) break;
        struct platform_token t;
        if (lineage_parse_token(o, qpu, &t) != 0) continue;
        if (list_has_id(l, t.id)) {
            platform_token_free(&t);
            continue;
        }
        struct platform_token *grown = realloc(l->items, (l->n + 1) * sizeof *grown);
        if (!grown) {
            platform_token_free(&t);
            return -1;
        }
        l->items = grown;
        l->items[l->n++] = t;
        added++;
    }
    return added;
}

static int list_pages(struct pf_ctx *x, const struct lineage_flavor *fl, double qpu,
                      struct platform_token_list *out)
{
    long first_count = -1;
    int page = fl->tokens == LT_ONE_HUB ? 1 : 0;
    for (int n_pages = 0; n_pages < MAX_TOKEN_PAGES; n_pages++) {
        char path[96];
        if (fl->tokens == LT_ONE_HUB)
            snprintf(path, sizeof path, "/api/token/?page=%d&size=100", page);
        else if (fl->tokens == LT_ONE_API)
            snprintf(path, sizeof path, "/api/token/?p=%d", page);
        else
            snprintf(path, sizeof path, "/api/token/?p=%d&size=100", page);
        json_t *root, *data;
        if (pf_call(x, "GET", path, NULL, &root, &data) != 0) return -1;
        const json_t *arr = lineage_token_array(data);
        if (!arr) {
            json_decref(root);
            if (json_is_null(data) || (json_is_object(data) && !json_object_size(data)))
                return 0; /* no tokens at all */
            return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                           "GET /api/token/: the answer has no token list");
        }
        long count = (long)json_array_size(arr);
        int added = add_page(out, arr, qpu);
        double total = -1, cur = -1;
        if (json_is_object(data)) {
            if (!pf_jnum(data, "total", &total)) pf_jnum(data, "total_count", &total);
            pf_jnum(data, "page", &cur);
        }
        json_decref(root);
        if (added < 0) return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
        if (first_count < 0) first_count = count;
        /* Stop: an empty page, a page with nothing new (the site ignores the page number),
         * the announced total reached, or a short page of a plain-array listing. */
        if (count == 0 || added == 0) break;
        if (total >= 0) {
            if ((double)out->n >= total) break;
        } else if (fl->tokens == LT_ONE_API) {
            if (count < first_count) break;
        } else if (count < 100) {
            break;
        }
        /* A 1-based site treats p=0 as page 1: continue from the page it reports. */
        page = cur >= 0 ? (int)cur + 1 : page + 1;
    }
    return 0;
}

int lineage_list_tokens(struct pf_ctx *x, const struct lineage_flavor *fl,
                        struct platform_token_list *out)
{
    memset(out, 0, sizeof *out);
    double qpu;
    if (lineage_ensure_session(x, fl) != 0 || pf_quota_per_unit(x, &qpu) != 0) return -1;
    if (list_pages(x, fl, qpu, out) != 0) {
        platform_token_list_free(out);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++) {
        struct platform_token *t = &out->items[i];
        if (t->key || !t->masked_key) continue;
        if (fetch_full_key(x, t) != 0) {
            /* The key stays masked; a credential problem stops the whole sync. */
            if (x->err->kind == PLATFORM_ERR_AUTH || x->err->kind == PLATFORM_ERR_UNREACHABLE) {
                platform_token_list_free(out);
                return -1;
            }
            memset(x->err, 0, sizeof *x->err);
        }
    }
    return 0;
}

/* Splits a csv model list into a JSON array. */
static json_t *csv_array(const char *csv)
{
    json_t *a = json_array();
    const char *p = csv;
    while (a && p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n) json_array_append_new(a, json_stringn(p, n));
        p = comma ? comma + 1 : NULL;
    }
    return a;
}

int lineage_create_token(struct pf_ctx *x, const struct lineage_flavor *fl,
                         const struct platform_token_spec *spec, struct platform_token *out)
{
    memset(out, 0, sizeof *out);
    if (!spec || !spec->name || !*spec->name)
        return pf_fail(x->err, PLATFORM_ERR_UPSTREAM, 0, "a token needs a name");
    double qpu;
    if (lineage_ensure_session(x, fl) != 0 || pf_quota_per_unit(x, &qpu) != 0) return -1;
    json_int_t remain =
        spec->unlimited ? 0 : (json_int_t)pf_money_to_quota(spec->remain_quota, qpu);
    /* Never 0: a token created with expired_time 0 is expired at once (addendum 7). */
    json_int_t expires = spec->expires_at > 0 ? (json_int_t)spec->expires_at : -1;
    const char *group = spec->group ? spec->group : "";
    const char *limits = spec->model_limits ? spec->model_limits : "";
    json_t *body = json_pack("{s:s, s:I, s:I, s:b}", "name", spec->name, "remain_quota", remain,
                             "expired_time", expires, "unlimited_quota", spec->unlimited);
    if (!body) return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    switch (fl->limits) {
    case LL_ONE_API:
        json_object_set_new(body, "models", json_string(limits));
        json_object_set_new(body, "subnet", json_string(""));
        break;
    case LL_ONE_HUB: {
        json_object_set_new(body, "group", json_string(group));
        json_object_set_new(body, "backup_group", json_string(""));
        if (*limits)
            json_object_set_new(body, "setting",
                                json_pack("{s:{s:{s:b, s:o}}}", "limits", "limit_model_setting",
                                          "enabled", 1, "models", csv_array(limits)));
        break;
    }
    case LL_NEW_API:
        json_object_set_new(body, "model_limits_enabled", json_boolean(*limits != '\0'));
        json_object_set_new(body, "model_limits", json_string(limits));
        json_object_set_new(body, "allow_ips", json_string(""));
        json_object_set_new(body, "group", json_string(group));
        break;
    }
    json_t *root, *data;
    int rc = pf_call(x, "POST", "/api/token/", body, &root, &data);
    json_decref(body);
    if (rc != 0) return -1;
    /* One API answers with the token (and its key). */
    if (json_is_object(data) && pf_jstr(data, "key") && lineage_parse_token(data, qpu, out) == 0) {
        json_decref(root);
        if (out->key) return 0;
        if (out->masked_key && fetch_full_key(x, out) == 0) return 0;
        platform_token_free(out);
    } else {
        json_decref(root);
    }
    /* The others answer nothing: list again and take the newest token of that name. */
    struct platform_token_list l;
    if (lineage_list_tokens(x, fl, &l) != 0) return -1;
    size_t best = l.n;
    long long best_id = -1;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.items[i].name || strcmp(l.items[i].name, spec->name) != 0) continue;
        long long id = strtoll(l.items[i].id, NULL, 10);
        if (best == l.n || id > best_id) {
            best = i;
            best_id = id;
        }
    }
    if (best == l.n) {
        platform_token_list_free(&l);
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, 0,
                       "the site accepted the new token but it is not in the token list");
    }
    *out = l.items[best];
    memset(&l.items[best], 0, sizeof l.items[best]); /* moved out */
    platform_token_list_free(&l);
    return 0;
}

int lineage_delete_token(struct pf_ctx *x, const char *token_id)
{
    if (!safe_id(token_id)) return pf_fail(x->err, PLATFORM_ERR_UPSTREAM, 0, "invalid token id");
    char path[128];
    snprintf(path, sizeof path, "/api/token/%s", token_id);
    json_t *root, *data;
    if (pf_call(x, "DELETE", path, NULL, &root, &data) != 0) return -1;
    json_decref(root);
    return 0;
}

/* ---- groups ---- */

static int groups_add(struct platform_group_list *l, const char *name, double ratio,
                      const char *desc)
{
    struct platform_group *g = realloc(l->items, (l->n + 1) * sizeof *g);
    if (!g) return -1;
    l->items = g;
    l->items[l->n++] = (struct platform_group){
        .name = strdup(name), .ratio = ratio, .description = desc && *desc ? strdup(desc) : NULL};
    return 0;
}

int lineage_groups(struct pf_ctx *x, const struct lineage_flavor *fl,
                   struct platform_group_list *out)
{
    memset(out, 0, sizeof *out);
    if (fl->groups == LG_NONE)
        return pf_fail(x->err, PLATFORM_ERR_UNSUPPORTED, 0, "%s has no user groups", fl->name);
    if (lineage_ensure_session(x, fl) != 0) return -1;
    const char *path = fl->groups == LG_ONE_HUB ? "/api/user_group_map" : "/api/user/self/groups";
    json_t *root, *data;
    if (pf_call(x, "GET", path, NULL, &root, &data) != 0) return -1;
    if (!json_is_object(data) || data == root) {
        json_decref(root);
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                       "GET %s: the answer has no group map", path);
    }
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        double ratio = -1;
        if (json_is_number(v))
            ratio = json_number_value(v);
        else if (!pf_jnum(v, "ratio", &ratio))
            ratio = -1;
        const char *desc = pf_jstr(v, fl->groups == LG_ONE_HUB ? "name" : "desc");
        if (groups_add(out, k, ratio, desc) != 0) {
            json_decref(root);
            platform_group_list_free(out);
            return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
        }
    }
    json_decref(root);
    return 0;
}

/* ---- models and prices ---- */

static int prices_add(struct platform_model_list *l, const char *model, double in, double outp,
                      double call)
{
    struct platform_price *p = realloc(l->prices, (l->n_prices + 1) * sizeof *p);
    if (!p) return -1;
    l->prices = p;
    l->prices[l->n_prices++] = (struct platform_price){.model = strdup(model),
                                                       .input_per_million = in,
                                                       .output_per_million = outp,
                                                       .per_call = call};
    return 0;
}

int lineage_parse_pricing_new_api(const json_t *root, const char *group, double qpu,
                                  struct platform_model_list *out)
{
    const json_t *arr = json_object_get(root, "data");
    if (!json_is_array(arr)) return -1;
    if (!(qpu > 0) || !isfinite(qpu)) qpu = PF_DEFAULT_QUOTA_PER_UNIT;
    const json_t *ratios = json_object_get(root, "group_ratio");
    double gr = 1;
    if (!(group && pf_jnum(ratios, group, &gr)) && !pf_jnum(ratios, "default", &gr)) gr = 1;
    if (!(gr >= 0) || !isfinite(gr)) gr = 1;
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *name = pf_jstr(o, "model_name");
        if (!name || !*name) continue;
        double qt = 0, ratio = 0, price = 0, cr = 1;
        pf_jnum(o, "quota_type", &qt);
        pf_jnum(o, "model_ratio", &ratio);
        pf_jnum(o, "model_price", &price);
        if (!pf_jnum(o, "completion_ratio", &cr) || cr < 0) cr = 1;
        int rc;
        if (qt == 1) {
            rc = prices_add(out, name, -1, -1, price * gr);
        } else {
            /* cost in quota = tokens × model_ratio × group_ratio; money = quota / qpu */
            double in = ratio * 1e6 / qpu * gr;
            rc = prices_add(out, name, in, in * cr, -1);
        }
        if (rc != 0) return -1;
    }
    return 0;
}

int lineage_parse_available_model(const json_t *data, double gr, double qpu,
                                  struct platform_model_list *out)
{
    if (!json_is_object(data)) return -1;
    if (!(qpu > 0) || !isfinite(qpu)) qpu = PF_DEFAULT_QUOTA_PER_UNIT;
    if (!(gr >= 0) || !isfinite(gr)) gr = 1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)data, k, v)
    {
        if (!pf_models_add(out, k)) return -1;
        const json_t *price = json_object_get(v, "price");
        double in, outp = 0;
        if (!json_is_object(price) || !pf_jnum(price, "input", &in)) continue;
        pf_jnum(price, "output", &outp);
        const char *type = pf_jstr(price, "type");
        int rc;
        /* OneHub ratios: 1 = $0.002 / 1K tokens (with the default unit), or per call. */
        if (type && strcmp(type, "times") == 0)
            rc = prices_add(out, k, -1, -1, in * 1000.0 / qpu * gr);
        else
            rc = prices_add(out, k, in * 1e6 / qpu * gr, outp * 1e6 / qpu * gr, -1);
        if (rc != 0) return -1;
    }
    return 0;
}

/* The user's group from /api/user/self (best effort: NULL when unknown). */
static char *user_group(struct pf_ctx *x)
{
    json_t *root, *self;
    if (lineage_self(x, &root, &self) != 0) {
        memset(x->err, 0, sizeof *x->err);
        return NULL;
    }
    const char *g = pf_jstr(self, "group");
    char *r = g && *g ? strdup(g) : NULL;
    json_decref(root);
    return r;
}

/* Adds the account's prices (and models listed there) to out. */
static int add_prices(struct pf_ctx *x, const struct lineage_flavor *fl,
                      struct platform_model_list *out)
{
    double qpu;
    if (pf_quota_per_unit(x, &qpu) != 0) return -1;
    char *group = user_group(x);
    json_t *root = NULL, *data;
    int rc = -1;
    if (fl->pricing == LP_NEW_API) {
        if (pf_call(x, "GET", "/api/pricing", NULL, &root, &data) == 0) {
            rc = lineage_parse_pricing_new_api(root, group, qpu, out);
            /* Without a model route of its own the price list names the models. */
            for (size_t i = 0; rc == 0 && !fl->user_models_path && i < out->n_prices; i++)
                if (!pf_models_add(out, out->prices[i].model)) rc = -1;
            if (rc != 0)
                pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                        "GET /api/pricing: unexpected answer");
        }
    } else if (fl->pricing == LP_ONE_HUB) {
        double gr = 1;
        json_t *groot, *gdata;
        if (group && pf_call(x, "GET", "/api/user_group_map", NULL, &groot, &gdata) == 0) {
            if (!pf_jnum(json_object_get(gdata, group), "ratio", &gr)) gr = 1;
            json_decref(groot);
        }
        memset(x->err, 0, sizeof *x->err);
        if (pf_call(x, "GET", "/api/available_model", NULL, &root, &data) == 0) {
            rc = lineage_parse_available_model(data, gr, qpu, out);
            if (rc != 0)
                pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                        "GET /api/available_model: unexpected answer");
        }
    } else {
        rc = 0;
    }
    free(group);
    json_decref(root);
    return rc;
}

int lineage_models(struct pf_ctx *x, const struct lineage_flavor *fl,
                   struct platform_model_list *out)
{
    memset(out, 0, sizeof *out);
    const struct platform_credentials *c = x->c;
    if (c->api_key && *c->api_key) {
        if (pf_key_models(x, false, out) != 0) return -1;
        /* Prices need the account; without a session the key's models are the answer. */
        if (pf_has_session(c) && fl->pricing != LP_NONE) {
            struct platform_model_list priced = {0};
            struct platform_error saved = *x->err;
            if (lineage_ensure_session(x, fl) == 0 && add_prices(x, fl, &priced) == 0) {
                out->prices = priced.prices;
                out->n_prices = priced.n_prices;
                priced.prices = NULL;
                priced.n_prices = 0;
            }
            platform_model_list_free(&priced);
            *x->err = saved;
        }
        return 0;
    }
    if (lineage_ensure_session(x, fl) != 0) return -1;
    if (fl->user_models_path) {
        json_t *root, *data;
        if (pf_call(x, "GET", fl->user_models_path, NULL, &root, &data) != 0) return -1;
        if (!json_is_array(data)) {
            json_decref(root);
            return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                           "GET %s: the answer has no model list", fl->user_models_path);
        }
        size_t i;
        const json_t *m;
        json_array_foreach(data, i, m)
        {
            const char *name = json_is_string(m) ? json_string_value(m) : pf_jstr(m, "id");
            if (name && *name && !pf_models_add(out, name)) {
                json_decref(root);
                platform_model_list_free(out);
                return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
            }
        }
        json_decref(root);
    }
    if (fl->pricing != LP_NONE && add_prices(x, fl, out) != 0) {
        /* Prices are a bonus when the model list came from elsewhere. */
        if (!fl->user_models_path) {
            platform_model_list_free(out);
            return -1;
        }
        memset(x->err, 0, sizeof *x->err);
    }
    return 0;
}
