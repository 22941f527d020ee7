/* dispatch.c — the first phase of every request on an io worker: classify the path,
 * authenticate (before any body byte is read, so `Expect: 100-continue` is answered only
 * after auth), then hand the full request to its surface. Health checks, CORS preflight
 * and unknown paths are answered here. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/json_scan.h"
#include "base/log.h"
#include "gateway/internal.h"
#include "protocol/errors.h"

struct gw_req_info {
    enum gw_surface surface;
    const char *request_id;
};

static struct gw_req_info *info_of(http_request_t *req)
{
    if (!req->user) req->user = pool_calloc(req->pool, sizeof(struct gw_req_info));
    return req->user;
}

/* Request ids are "req_" + 8 hex digits drawn at random once per io thread + a 16-digit
 * per-thread counter: unique across threads and restarts without a random draw per request. */
static _Thread_local uint64_t rid_prefix, rid_counter;

const char *gw_request_id(http_request_t *req)
{
    struct gw_req_info *info = info_of(req);
    if (!info) return "-";
    if (!info->request_id) {
        if (!rid_prefix) {
            randombytes_buf(&rid_prefix, sizeof rid_prefix);
            rid_prefix |= 1; /* never 0: 0 means "not drawn yet" */
        }
        char *id = pool_alloc(req->pool, 4 + 24 + 1);
        if (!id) return "-";
        snprintf(id, 29, "req_%08x%016llx", (unsigned)(rid_prefix >> 32),
                 (unsigned long long)++rid_counter);
        info->request_id = id;
    }
    return info->request_id;
}

/* One access-log line for a request answered by dispatch itself (proxied requests log
 * their own, with model and attempts). Called before answering: answering frees `req`. */
static void log_simple(http_request_t *req, int status)
{
    struct buf line = BUF_INIT;
    buf_printf(&line,
               "{\"ts\":%lld,\"rid\":\"%s\",\"ip\":\"%s\",\"method\":", (long long)clock_wall_ms(),
               gw_request_id(req), req->client_ip);
    json_write_string(&line, req->method.p, req->method.n > 16 ? 16 : req->method.n);
    buf_append_str(&line, ",\"path\":");
    json_write_string(&line, req->path.p, req->path.n > 256 ? 256 : req->path.n);
    buf_printf(&line, ",\"status\":%d,\"ms\":%llu}", status,
               (unsigned long long)((clock_mono_ns() - req->start_ns) / 1000000u));
    access_log_push(line.p, line.n);
    buf_free(&line);
}

void gw_reject(http_request_t *req, int status, const char *type, const char *code,
               const char *message)
{
    log_simple(req, status);
    gw_error(req, status, type, code, message);
}

void gw_error(http_request_t *req, int status, const char *type, const char *code,
              const char *message)
{
    struct buf b = BUF_INIT;
    struct gw_req_info *info = info_of(req);
    bool ok;
    if (info && gw_surface_is_claude(info->surface)) {
        struct errors_mapping m = errors_map_status(status);
        status = m.claude_status;
        ok = errors_write_claude(&b, m.claude_type, slice_from(message),
                                 slice_from(gw_request_id(req)));
    } else {
        ok = errors_write_openai(&b, slice_from(message), type, code, NULL);
    }
    if (!ok) {
        http_respond(req, 500, NULL, 0, SLICE_LIT(""));
        return;
    }
    struct http_header hdrs[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-request-id"), slice_from(gw_request_id(req))},
    };
    http_respond(req, status, hdrs, 2, buf_slice(&b));
    buf_free(&b);
}

/* Token check in time that depends only on the lengths: every byte of the expected token
 * is compared (against 0 past the end of the given one), so no timing reveals how much of
 * it matched. */
static bool token_equals(struct slice given, const char *expected)
{
    size_t n = strlen(expected);
    volatile unsigned char diff = given.n != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < given.n ? given.p[i] : 0);
    return diff == 0;
}

/* The downstream key, from the first of: Authorization: Bearer, x-api-key,
 * x-goog-api-key, ?key=. SLICE_NULL when none was sent. */
static struct slice downstream_key(const http_request_t *req)
{
    struct slice auth = http_request_header(req, "authorization");
    if (auth.p) {
        if (auth.n > 7 && slice_ieq((struct slice){auth.p, 7}, SLICE_LIT("bearer ")))
            return slice_trim((struct slice){auth.p + 7, auth.n - 7});
        return slice_trim(auth);
    }
    struct slice k = http_request_header(req, "x-api-key");
    if (k.p) return k;
    k = http_request_header(req, "x-goog-api-key");
    if (k.p) return k;
    return http_request_query_param(req, "key");
}

static bool path_is(struct slice path, const char *want)
{
    if (slice_eq_str(path, want)) return true;
    /* tolerate one trailing slash */
    return path.n == strlen(want) + 1 && path.p[path.n - 1] == '/' &&
           memcmp(path.p, want, path.n - 1) == 0;
}

static enum gw_surface surface_of(struct slice path)
{
    if (path_is(path, "/v1/chat/completions") || path_is(path, "/chat/completions"))
        return GW_SURFACE_CHAT;
    if (path_is(path, "/v1/completions") || path_is(path, "/completions"))
        return GW_SURFACE_COMPLETIONS;
    if (path_is(path, "/v1/embeddings") || path_is(path, "/embeddings"))
        return GW_SURFACE_EMBEDDINGS;
    if (path_is(path, "/v1/images/generations") || path_is(path, "/images/generations"))
        return GW_SURFACE_IMAGES;
    if (path_is(path, "/v1/models") || path_is(path, "/models")) return GW_SURFACE_MODELS;
    if (path_is(path, "/v1/messages") || path_is(path, "/messages")) return GW_SURFACE_MESSAGES;
    if (path_is(path, "/v1/messages/count_tokens") || path_is(path, "/messages/count_tokens"))
        return GW_SURFACE_COUNT_TOKENS;
    if (path_is(path, "/v1/responses") || path_is(path, "/responses")) return GW_SURFACE_RESPONSES;
    if (slice_starts_with(path, "/api/")) return GW_SURFACE_ADMIN;
    return GW_SURFACE_NONE;
}

static void respond_admin_error(http_request_t *req, int status, const char *message)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"success\":false,\"message\":\"");
    buf_append_str(&b, message); /* static text without quotes */
    buf_append_str(&b, "\"}");
    http_respond_json(req, status, buf_slice(&b));
    buf_free(&b);
}

static void respond_cors_preflight(http_request_t *req)
{
    struct http_header hdrs[] = {
        {SLICE_LIT("Access-Control-Allow-Origin"), SLICE_LIT("*")},
        {SLICE_LIT("Access-Control-Allow-Methods"), SLICE_LIT("GET, POST, OPTIONS")},
        {SLICE_LIT("Access-Control-Allow-Headers"),
         SLICE_LIT("Authorization, Content-Type, x-api-key, x-goog-api-key, anthropic-version, "
                   "anthropic-beta, openai-beta, x-request-id")},
        {SLICE_LIT("Access-Control-Max-Age"), SLICE_LIT("86400")},
    };
    http_respond(req, 204, hdrs, 4, SLICE_LIT(""));
}

enum http_verdict gw_on_headers(http_request_t *req, void *ud)
{
    struct gw_worker *w = ud;
    struct gw_req_info *info = info_of(req);
    if (!info) {
        http_respond(req, 503, NULL, 0, SLICE_LIT(""));
        return HTTP_ANSWERED;
    }
    if (path_is(req->path, "/healthz") || path_is(req->path, "/readyz")) {
        log_simple(req, w->draining ? 503 : 200);
        if (w->draining)
            http_respond_json(req, 503, SLICE_LIT("{\"status\":\"draining\"}"));
        else
            http_respond_json(req, 200, SLICE_LIT("{\"status\":\"ok\"}"));
        return HTTP_ANSWERED;
    }
    info->surface = surface_of(req->path);
    if (info->surface == GW_SURFACE_NONE) {
        gw_reject(req, 404, "invalid_request_error", "unknown_url",
                  "Unknown request URL. metarelay serves /v1/chat/completions, /v1/messages, "
                  "/v1/responses, /v1/completions, /v1/embeddings, /v1/images/generations and "
                  "/v1/models.");
        return HTTP_ANSWERED;
    }
    if (slice_eq_str(req->method, "OPTIONS") && info->surface != GW_SURFACE_ADMIN) {
        log_simple(req, 204);
        respond_cors_preflight(req);
        return HTTP_ANSWERED;
    }
    if (info->surface == GW_SURFACE_ADMIN) {
        struct slice auth = http_request_header(req, "authorization");
        if (!auth.p) {
            log_simple(req, 401);
            respond_admin_error(req, 401, "missing admin token (Authorization: Bearer)");
            return HTTP_ANSWERED;
        }
        struct slice tok = auth;
        if (auth.n > 7 && slice_ieq((struct slice){auth.p, 7}, SLICE_LIT("bearer ")))
            tok = slice_trim((struct slice){auth.p + 7, auth.n - 7});
        if (!token_equals(tok, w->cfg->auth_token)) {
            log_simple(req, 403);
            respond_admin_error(req, 403, "invalid admin token");
            return HTTP_ANSWERED;
        }
        return HTTP_READ_BODY;
    }
    struct slice key = downstream_key(req);
    if (!key.p || key.n == 0) {
        gw_reject(req, 401, "invalid_request_error", "missing_api_key",
                  "Missing API key: send it as 'Authorization: Bearer <key>' (or x-api-key).");
        return HTTP_ANSWERED;
    }
    if (!token_equals(key, w->cfg->proxy_token)) {
        gw_reject(req, 403, "invalid_request_error", "invalid_api_key", "Invalid API key.");
        return HTTP_ANSWERED;
    }
    return HTTP_READ_BODY;
}

void gw_on_request(http_request_t *req, void *ud)
{
    struct gw_worker *w = ud;
    struct gw_req_info *info = req->user;
    enum gw_surface s = info ? info->surface : GW_SURFACE_NONE;
    bool get = slice_eq_str(req->method, "GET");
    bool post = slice_eq_str(req->method, "POST");
    switch (s) {
    case GW_SURFACE_ADMIN:
        if (w->cfg->admin_dispatch)
            w->cfg->admin_dispatch(w, req, w->cfg->admin_arg);
        else
            respond_admin_error(req, 404, "admin API not available");
        return;
    case GW_SURFACE_MODELS:
        if (!get) break;
        log_simple(req, 200);
        gw_models(w, req);
        return;
    case GW_SURFACE_CHAT:
    case GW_SURFACE_COMPLETIONS:
    case GW_SURFACE_EMBEDDINGS:
    case GW_SURFACE_IMAGES:
    case GW_SURFACE_MESSAGES:
    case GW_SURFACE_COUNT_TOKENS:
    case GW_SURFACE_RESPONSES:
        if (!post) break;
        gw_proxy_start(w, req, s);
        return;
    case GW_SURFACE_NONE:
        gw_reject(req, 404, "invalid_request_error", "unknown_url", "Unknown request URL.");
        return;
    }
    gw_reject(req, 405, "invalid_request_error", "method_not_allowed",
              "Method not allowed for this URL.");
}
