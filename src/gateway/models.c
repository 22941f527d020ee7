/* models.c — GET /v1/models: the model names routing resolves exactly (discovered models,
 * user routes, aliases and groups; not patterns), from the worker's current snapshot, in OpenAI's
 * list shape, or Anthropic's when the request carries `anthropic-version` (Claude Code and the
 * Anthropic SDK list models that way). */
#include "base/json_scan.h"
#include "gateway/internal.h"

static void respond_openai(http_request_t *req, const struct routing_snapshot *s, struct buf *b)
{
    buf_append_str(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < routing_model_count(s); i++) {
        const char *m = routing_model_name(s, i);
        if (i) buf_append_str(b, ",");
        buf_append_str(b, "{\"id\":");
        json_write_string(b, m, strlen(m));
        buf_append_str(b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"metarelay\"}");
    }
    buf_append_str(b, "]}");
}

static void respond_anthropic(http_request_t *req, const struct routing_snapshot *s, struct buf *b)
{
    buf_append_str(b, "{\"data\":[");
    for (size_t i = 0; i < routing_model_count(s); i++) {
        const char *m = routing_model_name(s, i);
        if (i) buf_append_str(b, ",");
        buf_append_str(b, "{\"type\":\"model\",\"id\":");
        json_write_string(b, m, strlen(m));
        buf_append_str(b, ",\"display_name\":");
        json_write_string(b, m, strlen(m));
        buf_append_str(b, ",\"created_at\":\"1970-01-01T00:00:00Z\"}");
    }
    buf_append_str(b, "],\"has_more\":false,\"first_id\":");
    size_t n = routing_model_count(s);
    if (n) {
        const char *first = routing_model_name(s, 0), *last = routing_model_name(s, n - 1);
        json_write_string(b, first, strlen(first));
        buf_append_str(b, ",\"last_id\":");
        json_write_string(b, last, strlen(last));
    } else {
        buf_append_str(b, "null,\"last_id\":null");
    }
    buf_append_str(b, "}");
}

void gw_models(struct gw_worker *w, http_request_t *req)
{
    struct buf b = BUF_INIT;
    if (http_request_header(req, "anthropic-version").p)
        respond_anthropic(req, w->snap, &b);
    else
        respond_openai(req, w->snap, &b);
    struct http_header hdrs[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-request-id"), slice_from(gw_request_id(req))},
    };
    http_respond(req, 200, hdrs, 2, buf_slice(&b));
    buf_free(&b);
}
