/* platform_dispatch.c — routes a request to the active platform's management API, or
 * checks a /v1 relay request against the platform's tokens before the /v1 surfaces
 * answer it.
 *
 * Order for every /api and /v1 request: Cloudflare HTML page (--html-errors), AnyRouter
 * challenge (--challenge), then either a management route (with gin's trailing-slash
 * redirect for the One API lineage, the platform's auth and its 404) or the relay key
 * check (unknown key, expired / exhausted / disabled token, model without a channel,
 * token model limits, user quota — each in the platform's error shape), after which the
 * request's cost is debited and the ordinary /v1 handlers answer. The state lock is held
 * for the whole platform part of a request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define MAX_CALL_KEYS 256

static const struct pf_platform *platform_of(enum pf_kind k)
{
    switch (k) {
    case PF_NEW_API:
        return &pf_new_api;
    case PF_NEW_API_V2:
        return &pf_new_api_v2;
    case PF_ANYROUTER:
        return &pf_anyrouter;
    case PF_ONE_API:
        return &pf_one_api;
    case PF_ONE_HUB:
        return &pf_one_hub;
    case PF_DONE_HUB:
        return &pf_done_hub;
    case PF_VELOERA:
        return &pf_veloera;
    case PF_SUB2API:
        return &pf_sub2api;
    case PF_OPENAI:
        break;
    }
    return NULL;
}

static void count_call(struct pf_state *st, const http_request_t *req)
{
    char key[300];
    snprintf(key, sizeof key, "%.*s %.*s", (int)req->method.n, req->method.p,
             (int)(req->path.n > 200 ? 200 : req->path.n), req->path.p);
    for (size_t i = 0; i < st->n_calls; i++)
        if (strcmp(st->calls[i].key, key) == 0) {
            st->calls[i].n++;
            return;
        }
    if (st->n_calls >= MAX_CALL_KEYS) return;
    struct pf_counter *v = realloc(st->calls, (st->n_calls + 1) * sizeof *v);
    if (!v) return;
    st->calls = v;
    char *k = strdup(key);
    if (!k) return;
    st->calls[st->n_calls++] = (struct pf_counter){k, 1};
}

/* Segment-wise match; a '#' segment matches a decimal number (stored in *id). */
static bool path_match(const char *pat, struct slice path, long long *id)
{
    const char *p = path.p, *end = path.p + path.n;
    while (*pat && p < end) {
        if (*pat == '#') {
            long long n = 0;
            const char *s = p;
            while (p < end && *p >= '0' && *p <= '9' && p - s < 18) n = n * 10 + (*p++ - '0');
            if (p == s) return false;
            *id = n;
            pat++;
            continue;
        }
        if (*pat != *p) return false;
        pat++;
        p++;
    }
    return *pat == 0 && p == end;
}

static const struct pf_route *find(const struct pf_platform *pl, struct slice method,
                                   struct slice path, long long *id, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < pl->n_routes; i++) {
        const struct pf_route *rt = &pl->routes[i];
        if (!path_match(rt->path, path, id)) continue;
        *path_known = true;
        if (slice_eq_str(method, rt->method)) return rt;
    }
    return NULL;
}

/* ---- Cloudflare page ---- */

static void cloudflare_page(struct pf_req *r)
{
    char ray[17];
    pf_random(r->st, PF_HEX, 16, ray);
    char *page = pool_printf(
        r->req->pool,
        "<!DOCTYPE html>\n<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> "
        "<![endif]-->\n<html class=\"no-js\" lang=\"en-US\">\n<head>\n<title>%s | 502: Bad "
        "gateway</title>\n<meta charset=\"UTF-8\" />\n<meta name=\"robots\" content=\"noindex, "
        "nofollow\" />\n</head>\n<body>\n<div id=\"cf-wrapper\">\n<div id=\"cf-error-details\" "
        "class=\"p-0\">\n<header class=\"mx-auto pt-10 lg:pt-6 lg:px-8 w-240 lg:w-full mb-8\">\n"
        "<h1 class=\"inline-block sm:block sm:mb-2 font-light text-60 lg:text-4xl "
        "text-black-dark leading-tight mr-2\"><span class=\"inline-block\">Bad gateway</span>\n"
        "<span class=\"code-label\">Error code 502</span></h1>\n</header>\n<p>The web server "
        "reported a bad gateway error.</p>\n<div class=\"cf-error-footer\">Cloudflare Ray ID: "
        "<strong class=\"font-semibold\">%s</strong> &bull; Performance &amp; security by "
        "<a rel=\"noopener noreferrer\" href=\"https://www.cloudflare.com\" "
        "target=\"_blank\">Cloudflare</a></div>\n</div>\n</div>\n</body>\n</html>\n",
        r->cfg->name, ray);
    pf_header(r, "Server", "cloudflare");
    pf_header(r, "CF-RAY", ray);
    pf_reply_text(r, 502, "text/html; charset=UTF-8", page ? page : "<html>502</html>");
}

/* ---- management routes ---- */

static void decref_cb(void *j)
{
    json_decref(j);
}

static bool parse_body(struct pf_req *r)
{
    http_request_t *req = r->req;
    if (req->body.n == 0) {
        r->body = json_object();
    } else {
        json_error_t e;
        r->body = json_loadb(req->body.p, req->body.n, JSON_REJECT_DUPLICATES, &e);
    }
    if (r->body && pool_cleanup(req->pool, decref_cb, r->body) != 0) {
        r->body = NULL; /* already released by pool_cleanup */
        pf_fail(r, 500, "out of memory");
        return false;
    }
    if (json_is_object(r->body)) return true;
    if (r->st->o.kind == PF_SUB2API)
        pf_reply(r, 400,
                 json_pack("{s:i, s:s}", "code", 400, "message",
                           "Invalid request: the body must be a JSON object"));
    else
        pf_fail(r, 200, "无效的参数");
    return false;
}

static void redirect(struct pf_req *r, const char *to, bool get)
{
    struct slice q = r->req->query;
    char *loc = pool_printf(r->req->pool, "%s%s%.*s", to, q.n ? "?" : "", (int)q.n, q.p);
    pf_header(r, "Location", loc ? loc : to);
    if (get) {
        char *body =
            pool_printf(r->req->pool, "<a href=\"%s\">Moved Permanently</a>.\n\n", loc ? loc : to);
        pf_reply_text(r, 301, "text/html; charset=utf-8", body ? body : "");
    } else {
        pf_reply_text(r, 307, "text/html; charset=utf-8", "");
    }
}

static void handle_api(const struct pf_platform *pl, struct pf_req *r)
{
    http_request_t *req = r->req;
    bool known;
    const struct pf_route *rt = find(pl, req->method, req->path, &r->path_id, &known);
    if (!rt && !known && pl->trailing_slash_redirect && req->path.n > 1) {
        /* gin's RedirectTrailingSlash: the same route with / added or removed. */
        struct slice p = req->path;
        char *other = p.p[p.n - 1] == '/' ? pool_strndup(req->pool, p.p, p.n - 1)
                                          : pool_printf(req->pool, "%.*s/", (int)p.n, p.p);
        bool k2;
        long long id;
        if (other && find(pl, req->method, slice_from(other), &id, &k2)) {
            redirect(r, other, slice_eq_str(req->method, "GET"));
            return;
        }
    }
    if (!rt) {
        pl->not_found(r);
        return;
    }
    if ((rt->flags & PF_JSON_BODY) && !parse_body(r)) return;
    if ((rt->flags & PF_AUTH) && !pl->auth(r, true)) return;
    if ((rt->flags & PF_TRY_AUTH) && !pl->auth(r, false)) return;
    rt->fn(r);
}

/* ---- relay ---- */

bool pf_model_known(const struct fr_config *cfg, const char *model)
{
    if (strncmp(model, "fault-", 6) == 0) return true;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i], "*") == 0 || strcmp(cfg->models[i], model) == 0) return true;
    return false;
}

static bool token_allows(const struct pf_token *t, const char *model)
{
    if (!t || !t->model_limits_enabled) return true;
    size_t n = strlen(model);
    const char *p = t->model_limits;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, model, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

json_t *pf_models_for(const struct fr_config *cfg, const struct pf_token *t)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i], "*") != 0 && token_allows(t, cfg->models[i]))
            json_array_append_new(a, json_string(cfg->models[i]));
    return a;
}

void pf_model_price(const char *model, int *quota_type, double *model_ratio,
                    double *completion_ratio, double *model_price)
{
    *quota_type = 0;
    *model_ratio = 1;
    *completion_ratio = 1;
    *model_price = 0;
    if (strncmp(model, "dall-e", 6) == 0 || strstr(model, "image")) {
        *quota_type = 1;
        *model_ratio = 0;
        *completion_ratio = 0;
        *model_price = 0.04;
    } else if (strcmp(model, "gpt-4o-mini") == 0) {
        *model_ratio = 0.075;
        *completion_ratio = 4;
    } else if (strcmp(model, "gpt-4o") == 0) {
        *model_ratio = 1.25;
        *completion_ratio = 4;
    } else if (strncmp(model, "text-embedding", 14) == 0) {
        *model_ratio = 0.01;
    } else if (strncmp(model, "claude", 6) == 0) {
        *model_ratio = 1.5;
        *completion_ratio = 5;
    }
}

void pf_lineage_relay_error(struct pf_req *r, int kind, const char *detail, const char *type,
                            int quota_status)
{
    enum pf_kind k = r->st->o.kind;
    bool one_api = k == PF_ONE_API, hub = k == PF_ONE_HUB || k == PF_DONE_HUB;
    char msg[300];
    switch (kind) {
    case PF_RELAY_NO_KEY:
        pf_relay_error_openai(r, 401, type, "", false, "未提供令牌");
        return;
    case PF_RELAY_BAD_KEY:
        pf_relay_error_openai(r, 401, type, "", false, "无效的令牌");
        return;
    case PF_RELAY_KEY_EXPIRED:
        pf_relay_error_openai(r, 401, type, "", true, hub ? "令牌已过期" : "该令牌已过期");
        return;
    case PF_RELAY_KEY_EXHAUSTED:
        if (hub)
            snprintf(msg, sizeof msg, "令牌额度已用尽");
        else if (one_api)
            snprintf(msg, sizeof msg, "令牌 %s 额度已用尽", detail);
        else
            snprintf(msg, sizeof msg, "该令牌额度已用尽 TokenStatusExhausted[%s]", detail);
        pf_relay_error_openai(r, 401, type, "", true, msg);
        return;
    case PF_RELAY_KEY_DISABLED:
        pf_relay_error_openai(r, 401, type, "", true, hub ? "令牌已被禁用" : "该令牌状态不可用");
        return;
    case PF_RELAY_MODEL_FORBIDDEN:
        snprintf(msg, sizeof msg, one_api ? "该令牌无权使用模型：%s" : "该令牌无权访问模型 %s",
                 detail);
        pf_relay_error_openai(r, 403, type, "", true, msg);
        return;
    case PF_RELAY_NO_CHANNEL:
        snprintf(msg, sizeof msg, "当前分组 default 下对于模型 %s 无可用渠道", detail);
        pf_relay_error_openai(r, 503, type, "model_not_found", true, msg);
        return;
    case PF_RELAY_USER_QUOTA:
        if (k == PF_NEW_API || k == PF_NEW_API_V2 || k == PF_ANYROUTER)
            snprintf(msg, sizeof msg, "用户额度不足, 剩余额度: $%s", detail);
        else
            snprintf(msg, sizeof msg, "user quota is not enough");
        pf_relay_error_openai(r, quota_status, type, "insufficient_user_quota", true, msg);
        return;
    }
    pf_relay_error_openai(r, 500, type, "", true, "fakerelay: unknown relay error");
}

/* The key as a client sends it: Authorization (Bearer optional), x-api-key,
 * x-goog-api-key or ?key=. */
static struct slice relay_key(const http_request_t *req)
{
    struct slice k = pf_bearer(req);
    if (!k.n) k = slice_trim(http_request_header(req, "x-api-key"));
    if (!k.n) k = slice_trim(http_request_header(req, "x-goog-api-key"));
    if (!k.n) k = http_request_query_param(req, "key");
    return k.p ? k : SLICE_LIT("");
}

/* "sk-abc***xyz" of a key (New API's exhausted message). */
static const char *key_hint(struct pf_req *r, const char *key)
{
    size_t n = strlen(key);
    if (n < 6) return "sk-***";
    return pool_printf(r->req->pool, "sk-%.3s***%s", key, key + n - 3);
}

/* False when the platform answered (an error or its own route). */
static bool handle_relay(const struct pf_platform *pl, struct pf_req *r)
{
    struct pf_state *st = r->st;
    http_request_t *req = r->req;
    struct slice key = relay_key(req);
    if (!key.n) {
        pl->relay_error(r, PF_RELAY_NO_KEY, "");
        return false;
    }
    struct pf_token *t = pf_token_by_key(st, key);
    struct pf_user *u = NULL;
    if (t)
        u = pf_user_by_id(st, t->user_id);
    else if (r->cfg->key && slice_eq_str(key, r->cfg->key))
        u = st->n_users ? &st->users[0] : NULL;
    if (!u) {
        pl->relay_error(r, PF_RELAY_BAD_KEY, "");
        return false;
    }
    r->user = u;
    long long now = pf_now(st);
    if (t) {
        if (t->status == 1 && t->expired_time != -1 && t->expired_time < now) t->status = 3;
        if (t->status == 1 && !t->unlimited_quota && t->remain_quota <= 0) t->status = 4;
        if (t->status != 1) {
            int kind = t->status == 3   ? PF_RELAY_KEY_EXPIRED
                       : t->status == 4 ? PF_RELAY_KEY_EXHAUSTED
                                        : PF_RELAY_KEY_DISABLED;
            const char *detail = st->o.kind == PF_ONE_API
                                     ? pool_printf(req->pool, "%s（#%lld）", t->name, t->id)
                                     : key_hint(r, t->key);
            pl->relay_error(r, kind, detail ? detail : "");
            return false;
        }
    }
    if (pl->relay_extra && pl->relay_extra(r, t)) return false;
    if (slice_eq_str(req->path, "/v1/models") && slice_eq_str(req->method, "GET")) {
        pl->relay_models(r, t);
        return false;
    }
    if (!slice_eq_str(req->method, "POST")) return true;

    const char *model = NULL;
    json_error_t e;
    json_t *body = req->body.n ? json_loadb(req->body.p, req->body.n, 0, &e) : NULL;
    json_t *m = json_is_object(body) ? json_object_get(body, "model") : NULL;
    if (json_is_string(m))
        model = pool_strndup(req->pool, json_string_value(m), strlen(json_string_value(m)));
    json_decref(body);
    if (model && !pf_model_known(r->cfg, model)) {
        pl->relay_error(r, PF_RELAY_NO_CHANNEL, model);
        return false;
    }
    if (model && !token_allows(t, model)) {
        pl->relay_error(r, PF_RELAY_MODEL_FORBIDDEN, model);
        return false;
    }
    if (u->quota <= 0) {
        char *left = pool_printf(req->pool, "%.6f", (double)u->quota / st->o.quota_per_unit);
        pl->relay_error(r, PF_RELAY_USER_QUOTA, left ? left : "0");
        return false;
    }
    long long cost = st->o.relay_cost;
    u->quota -= cost;
    u->used_quota += cost;
    u->request_count++;
    if (t) {
        t->used_quota += cost;
        if (!t->unlimited_quota) t->remain_quota -= cost;
        t->accessed_time = now;
    }
    pf_log_add(st, u->id, 2, "relay request", t ? t->name : "", model ? model : "", cost,
               t ? t->id : 0);
    return true;
}

/* ---- entry ---- */

bool fr_platform_dispatch(struct fr_worker *w, http_request_t *req)
{
    struct pf_state *st = w->app->platform;
    if (!st) return false;
    const struct pf_platform *pl = platform_of(st->o.kind);
    if (!pl) return false;
    bool api = slice_starts_with(req->path, "/api/") || slice_eq_str(req->path, "/api");
    bool v1 = slice_starts_with(req->path, "/v1/") || slice_eq_str(req->path, "/v1") ||
              slice_starts_with(req->path, "/v1beta/");
    if (!api && !v1) return false;
    struct pf_req *r = pool_calloc(req->pool, sizeof *r);
    if (!r) {
        fr_respond_error(req, &w->app->cfg, 500, "server_error", NULL, "out of memory");
        return true;
    }
    *r = (struct pf_req){.w = w, .req = req, .st = st, .cfg = &w->app->cfg};
    bool answered = true;
    pthread_mutex_lock(&st->mu);
    if (api) count_call(st, req);
    if (st->html_errors)
        cloudflare_page(r);
    else if (st->o.kind == PF_ANYROUTER && st->challenge && pf_anyrouter_gate(r))
        ; /* challenge page sent */
    else if (api)
        handle_api(pl, r);
    else
        answered = !handle_relay(pl, r);
    pthread_mutex_unlock(&st->mu);
    return answered;
}
