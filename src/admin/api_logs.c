/* api_logs.c — GET /api/stats/proxy-logs: one page of usage rows, newest first.
 * Query: limit (default 50, 1..500), offset (default 0), status (success | failed),
 * model (exact match on the requested model). Answer: {"items":[…],"total":N,"limit":…,
 * "offset":…}, items with Metapi's camelCase names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "store/usage.h"

#define LOGS_DEFAULT_LIMIT 50
#define LOGS_MAX_LIMIT     500
#define LOGS_MAX_OFFSET    100000000u

static json_t *id_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static json_t *count_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *log_json(const struct usage_log *l)
{
    const struct usage_record *r = &l->rec;
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(l->id));
    json_object_set_new(j, "createdAt", admin_jtime_ms(r->created_at_ms));
    json_object_set_new(j, "requestId", admin_jstr(r->request_id));
    json_object_set_new(j, "downstreamPath", admin_jstr(r->downstream_path));
    json_object_set_new(j, "modelRequested", admin_jstr(r->model_requested));
    json_object_set_new(j, "modelActual", admin_jstr(r->model_actual));
    json_object_set_new(j, "accountId", id_or_null(r->account_id));
    json_object_set_new(j, "siteId", id_or_null(r->site_id));
    json_object_set_new(j, "downstreamApiKeyId", id_or_null(r->downstream_key_id));
    json_object_set_new(j, "status", json_string(r->success ? "success" : "failed"));
    json_object_set_new(j, "httpStatus",
                        r->http_status ? json_integer(r->http_status) : json_null());
    json_object_set_new(j, "isStream", json_boolean(r->stream));
    json_object_set_new(j, "retryCount", json_integer(r->attempt));
    json_object_set_new(j, "firstByteLatencyMs", count_or_null(r->first_byte_ms));
    json_object_set_new(j, "latencyMs", json_integer(r->total_ms));
    json_object_set_new(j, "promptTokens", count_or_null(r->prompt_tokens));
    json_object_set_new(j, "completionTokens", count_or_null(r->completion_tokens));
    json_object_set_new(j, "totalTokens", count_or_null(r->total_tokens));
    json_object_set_new(j, "overheadUs", json_integer(r->overhead_us));
    json_object_set_new(j, "clientIp", admin_jstr(r->client_ip));
    json_object_set_new(j, "errorMessage", r->error[0] ? admin_jstr(r->error) : json_null());
    json_object_set_new(j, "routeId", id_or_null(r->route_id));
    json_object_set_new(j, "routeChannelId", id_or_null(r->route_channel_id));
    json_object_set_new(j, "failureKind",
                        r->failure_kind[0] ? admin_jstr(r->failure_kind) : json_null());
    json_object_set_new(j, "estimatedCost",
                        r->has_cost ? json_real(r->estimated_cost) : json_null());
    return j;
}

/* Reads an unsigned query parameter in [lo, hi]; false after answering 400. */
static bool query_uint(const struct admin_request *req, const char *name, unsigned dflt,
                       unsigned lo, unsigned hi, unsigned *out, struct admin_response *resp)
{
    char buf[32];
    *out = dflt;
    int got = admin_query_get(req->query, name, buf, sizeof buf);
    if (got == 0 || (got == 1 && buf[0] == 0)) return true;
    unsigned long long v;
    if (got < 0 || !slice_to_u64(slice_from(buf), &v) || v < lo || v > hi) {
        admin_fail(resp, 400, "%s must be an integer from %u to %u", name, lo, hi);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

void admin_proxy_logs(const struct admin_ctx *ctx, const struct admin_request *req,
                      struct admin_response *resp)
{
    struct usage_filter f = {0};
    if (!query_uint(req, "limit", LOGS_DEFAULT_LIMIT, 1, LOGS_MAX_LIMIT, &f.limit, resp) ||
        !query_uint(req, "offset", 0, 0, LOGS_MAX_OFFSET, &f.offset, resp))
        return;
    char status[16];
    int got = admin_query_get(req->query, "status", status, sizeof status);
    if (got < 0 || (got > 0 && status[0])) {
        if (got > 0 && strcmp(status, "success") == 0)
            f.status = USAGE_SUCCESS;
        else if (got > 0 && strcmp(status, "failed") == 0)
            f.status = USAGE_FAILED;
        else {
            admin_fail(resp, 400, "status must be \"success\" or \"failed\"");
            return;
        }
    }
    char model[256];
    got = admin_query_get(req->query, "model", model, sizeof model);
    if (got < 0) {
        admin_fail(resp, 400, "model is too long");
        return;
    }
    if (got > 0 && model[0]) f.model = model;

    struct usage_log *rows;
    size_t n;
    int64_t total;
    enum store_status st = usage_logs_query(ctx->db, &f, &rows, &n, &total);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "proxy logs");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(items, log_json(&rows[i]));
    free(rows);
    admin_reply(resp, 200,
                json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", (json_int_t)total,
                          "limit", (json_int_t)f.limit, "offset", (json_int_t)f.offset));
}
