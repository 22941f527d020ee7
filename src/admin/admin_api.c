/* admin_api.c — the admin REST API's entry point: maps method + path to a resource handler
 * (api_sites.c, api_accounts.c, api_models.c, api_logs.c, api_routes.c), answers unknown paths
 * (404) and wrong methods (405), and holds the helpers every handler uses to read requests and
 * build answers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "base/log.h"
#include "control/control.h"
#include "control/jobs.h"

/* ---- answers ---- */

void admin_reply(struct admin_response *resp, int status, json_t *j)
{
    resp->status = status;
    resp->body = BUF_INIT;
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    if (!text) {
        resp->status = 500;
        buf_append_str(&resp->body, "{\"success\":false,\"message\":\"out of memory\"}");
        return;
    }
    if (!buf_append_str(&resp->body, text)) resp->status = 500;
    free(text);
}

void admin_fail(struct admin_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    admin_reply(resp, status, json_pack("{s:b, s:o}", "success", 0, "message", admin_jstr(msg)));
}

void admin_ok(struct admin_response *resp)
{
    admin_reply(resp, 200, json_pack("{s:b}", "success", 1));
}

void admin_fail_store(struct admin_response *resp, enum store_status st, const char *what)
{
    switch (st) {
    case STORE_NOT_FOUND:
        admin_fail(resp, 404, "%s not found", what);
        return;
    case STORE_CONFLICT:
        admin_fail(resp, 409, "%s already exists", what);
        return;
    case STORE_INVALID:
        admin_fail(resp, 400, "invalid %s", what);
        return;
    case STORE_OK:
    case STORE_ERROR:
        break;
    }
    admin_fail(resp, 500, "database error while handling %s", what);
}

/* ---- requests ---- */

json_t *admin_body_object(const struct admin_request *req, struct admin_response *resp)
{
    if (req->body.n == 0) {
        admin_fail(resp, 400, "the request body must be a JSON object");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(req->body.p, req->body.n, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        admin_fail(resp, 400, "invalid JSON at byte %d (line %d, column %d): %s", e.position,
                   e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        admin_fail(resp, 400, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int admin_query_get(struct slice query, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = query.p, *end = query.p + query.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t o = 0;
            for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && pe - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    c = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 2;
                }
                if (o + 1 >= cap) return -1;
                out[o++] = c;
            }
            out[o] = 0;
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

json_t *admin_jstr(const char *s)
{
    if (!s) return json_null();
    json_t *j = json_string(s);
    if (j) return j;
    /* Not valid UTF-8: keep ASCII, replace the rest. */
    char *copy = strdup(s);
    if (!copy) return json_null();
    for (char *c = copy; *c; c++)
        if ((unsigned char)*c >= 0x80) *c = '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

json_t *admin_jtime_ms(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) return json_null();
    char out[80];
    snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(out);
}

void admin_routing_changed(const struct admin_ctx *ctx)
{
    if (ctx->routing_changed) ctx->routing_changed(ctx->routing_changed_arg);
}

void admin_job_ctx(const struct admin_ctx *ctx, struct job_ctx *jc)
{
    memset(jc, 0, sizeof *jc);
    jc->db = ctx->db;
    jc->fetch = ctx->fetch;
    jc->tz = control_tz();
}

void admin_job_done(const struct admin_ctx *ctx, const struct job_ctx *jc)
{
    if (jc->routing_dirty) admin_routing_changed(ctx);
}

bool admin_wants_wait(const struct admin_request *req, json_t *body)
{
    char v[16];
    if (admin_query_get(req->query, "wait", v, sizeof v) == 1)
        return strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    json_t *w = body ? json_object_get(body, "wait") : NULL;
    return json_is_true(w) || (json_is_integer(w) && json_integer_value(w) != 0);
}

/* ---- dispatch ---- */

#define MAX_SEGS 5

/* Positive decimal id, else 0. */
static int64_t parse_id(struct slice s)
{
    unsigned long long v = 0;
    if (!slice_to_u64(s, &v) || v == 0 || v > (unsigned long long)INT64_MAX) return 0;
    return (int64_t)v;
}

/* Answers 405 unless the method is one of `allowed` (space-separated). */
static bool allow(const struct admin_request *req, const char *allowed, struct admin_response *resp)
{
    const char *m = req->method ? req->method : "";
    size_t ml = strlen(m);
    for (const char *p = allowed; *p;) {
        const char *sp = strchr(p, ' ');
        size_t l = sp ? (size_t)(sp - p) : strlen(p);
        if (ml && l == ml && memcmp(p, m, l) == 0) return true;
        p += l + (sp ? 1 : 0);
    }
    admin_fail(resp, 405, "method %.16s is not allowed on %.*s (allowed: %s)", m,
               (int)(req->path.n > 200 ? 200 : req->path.n), req->path.p, allowed);
    return false;
}

void admin_api_handle(const struct admin_ctx *ctx, const struct admin_request *req,
                      struct admin_response *resp)
{
    resp->status = 0;
    resp->body = BUF_INIT;
    struct slice path = req->path;
    if (!slice_starts_with(path, "/api/")) goto not_found;
    path.p += 5, path.n -= 5;
    if (path.n && path.p[path.n - 1] == '/') path.n--; /* "/api/sites/" = "/api/sites" */

    struct slice seg[MAX_SEGS];
    size_t n = 0;
    const char *p = path.p, *end = path.p + path.n;
    while (p <= end) {
        const char *sl = memchr(p, '/', (size_t)(end - p));
        const char *se = sl ? sl : end;
        if (n == MAX_SEGS || se == p) goto not_found; /* too deep, or "//" */
        seg[n++] = (struct slice){p, (size_t)(se - p)};
        if (!sl) break;
        p = sl + 1;
    }
    if (n == 0) goto not_found;

    if (slice_eq_str(seg[0], "sites")) {
        if (n == 2 && slice_eq_str(seg[1], "detect")) {
            if (allow(req, "POST", resp)) admin_sites_detect(ctx, req, resp);
            return;
        }
        if (n == 1) {
            if (allow(req, "GET POST", resp)) admin_sites(ctx, req, 0, resp);
            return;
        }
        int64_t id = parse_id(seg[1]);
        if (n == 2 && id) {
            if (allow(req, "GET PUT DELETE", resp)) admin_sites(ctx, req, id, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "accounts")) {
        if (n == 1) {
            if (allow(req, "GET POST", resp)) admin_accounts(ctx, req, 0, resp);
            return;
        }
        int64_t id = parse_id(seg[1]);
        if (n == 2 && id) {
            if (allow(req, "GET PUT DELETE", resp)) admin_accounts(ctx, req, id, resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "models")) {
            if (allow(req, "GET", resp)) admin_account_models(ctx, id, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "login")) {
            if (allow(req, "POST", resp)) admin_accounts_login(ctx, req, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "verify-token")) {
            if (allow(req, "POST", resp)) admin_accounts_verify_token(ctx, req, resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "balance-history")) {
            if (allow(req, "GET", resp)) admin_account_balance_history(ctx, req, id, resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "balance")) {
            if (allow(req, "POST", resp)) admin_account_balance(ctx, id, resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "rebind-session")) {
            if (allow(req, "POST", resp)) admin_account_rebind(ctx, req, id, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "account-tokens")) {
        if (n == 1) {
            if (allow(req, "GET POST", resp)) admin_account_tokens(ctx, req, 0, NULL, resp);
            return;
        }
        int64_t id = parse_id(seg[1]);
        if (n == 2 && id) {
            if (allow(req, "GET PUT DELETE", resp)) admin_account_tokens(ctx, req, id, NULL, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "sync-all")) {
            if (allow(req, "POST", resp)) admin_account_tokens(ctx, req, 0, "sync-all", resp);
            return;
        }
        int64_t id2 = n == 3 ? parse_id(seg[2]) : 0;
        if (n == 3 && slice_eq_str(seg[1], "sync") && id2) {
            if (allow(req, "POST", resp)) admin_account_tokens(ctx, req, id2, "sync", resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "value")) {
            if (allow(req, "GET", resp)) admin_account_tokens(ctx, req, id, "value", resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "default")) {
            if (allow(req, "POST", resp)) admin_account_tokens(ctx, req, id, "default", resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "checkin")) {
        if (n == 2 && slice_eq_str(seg[1], "trigger")) {
            if (allow(req, "POST", resp)) admin_checkin(ctx, req, "trigger", 0, resp);
            return;
        }
        int64_t id = n == 3 ? parse_id(seg[2]) : 0;
        if (n == 3 && slice_eq_str(seg[1], "trigger") && id) {
            if (allow(req, "POST", resp)) admin_checkin(ctx, req, "trigger", id, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "logs")) {
            if (allow(req, "GET", resp)) admin_checkin(ctx, req, "logs", 0, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "schedule")) {
            if (allow(req, "GET PUT", resp)) admin_checkin(ctx, req, "schedule", 0, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "events")) {
        if (n == 1) {
            if (allow(req, "GET", resp)) admin_events(ctx, req, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "models")) {
        int64_t id = n == 3 ? parse_id(seg[2]) : 0;
        if (n == 3 && slice_eq_str(seg[1], "check") && id) {
            if (allow(req, "POST", resp)) admin_models_check(ctx, id, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "routes")) {
        if (n == 1) {
            if (allow(req, "GET POST", resp)) admin_routes(ctx, req, 0, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "decision")) {
            if (allow(req, "GET", resp)) admin_routes_decision(ctx, req, resp);
            return;
        }
        if (n == 2 && slice_eq_str(seg[1], "rebuild")) {
            if (allow(req, "POST", resp)) admin_routes_rebuild(ctx, resp);
            return;
        }
        int64_t id = parse_id(seg[1]);
        if (n == 2 && id) {
            if (allow(req, "GET PUT DELETE", resp)) admin_routes(ctx, req, id, resp);
            return;
        }
        if (n == 3 && id && slice_eq_str(seg[2], "channels")) {
            if (allow(req, "GET POST", resp)) admin_route_channels(ctx, req, id, resp);
            return;
        }
        if (n == 4 && id && slice_eq_str(seg[2], "cooldown") && slice_eq_str(seg[3], "clear")) {
            if (allow(req, "POST", resp)) admin_route_cooldown_clear(ctx, id, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "channels")) {
        int64_t id = n == 2 ? parse_id(seg[1]) : 0;
        if (id) {
            if (allow(req, "PUT DELETE", resp)) admin_channel(ctx, req, id, resp);
            return;
        }
    } else if (slice_eq_str(seg[0], "stats")) {
        if (n == 2 && slice_eq_str(seg[1], "proxy-logs")) {
            if (allow(req, "GET", resp)) admin_proxy_logs(ctx, req, resp);
            return;
        }
    }
not_found:
    admin_fail(resp, 404, "no such endpoint: %.*s", (int)(req->path.n > 200 ? 200 : req->path.n),
               req->path.p ? req->path.p : "");
}
