/* proxy.c — the attempt loop of the data plane for OpenAI-compatible pass-through
 * surfaces (chat/completions, completions, embeddings, images/generations).
 *
 * Phases per request: validate the body with json_scan (no DOM) and read `model`,
 * `stream`, `stream_options`; resolve the route from the worker's snapshot; try the
 * ordered candidates one by one. An attempt that fails before anything went downstream
 * (connect error, reset, timeout, HTTP 401/403/404/408/429/5xx, a 200 that dies before
 * its first complete SSE frame) moves on to the next candidate; a client error (400,
 * 413, 422, …) is returned verbatim. A stream commits downstream at the first complete
 * non-comment frame; from then on complete frames are written as they arrive (all frames
 * of one upstream read in one write), with backpressure pausing the upstream, and a
 * failure becomes an in-stream error event — never a silent truncated success.
 * One usage record per attempt goes to the usage queue; one access-log line per request. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json_scan.h"
#include "base/log.h"
#include "gateway/internal.h"
#include "net/sse.h"
#include "protocol/errors.h"
#include "protocol/openai_chat.h"
#include "store/usage_queue.h"

#define MAX_CANDIDATES 16
#define ERROR_BODY_KEEP (64 * 1024)

struct gw_call {
    struct gw_worker *w;
    http_request_t *req;
    enum gw_surface surface;
    const char *upstream_path;
    struct slice model; /* points into model_copy: valid after the request is finished */
    char model_copy[256];
    char path[64];
    char client_ip[46];
    char request_id[40];
    uint64_t start_ns;
    bool stream;
    bool client_usage; /* the client asked for the usage chunk */
    bool inject_usage; /* metarelay asked for it upstream: strip it again */
    struct slice up_body;
    struct routing_snapshot *snap;
    uint32_t cand[MAX_CANDIDATES];
    size_t n_cand, next_cand;
    int attempt; /* index of the current attempt; -1 before the first */

    /* the current attempt */
    upstream_xfer_t *xfer;
    const struct channel *ch;
    int status;
    bool is_sse;
    bool saw_frame;
    char content_type[128];
    char retry_after[32];
    struct buf body; /* non-stream body, or the error body of a failed attempt */
    struct sse_parser sse;
    bool sse_active;
    struct buf out; /* complete frames waiting to be written downstream */
    uint64_t t_attempt;
    int64_t t_attempt_wall_ms;
    int64_t first_byte_ms;
    int64_t prompt_tokens, completion_tokens, total_tokens;
    char model_actual[128];

    /* the request */
    bool committed;
    bool paused;
    bool client_gone;
    bool finished;
    int busy; /* inside one of our callbacks: defer freeing */
    bool want_finalize;
    int final_status;
    uint64_t wait_ns; /* time spent waiting on upstreams before the response started */
    int64_t overhead_us;
    struct buf failures; /* per-attempt reasons for the final error message */
    int n_failures, n_timeouts, n_429;
    struct gw_call *prev, *next;
};

static void try_next(struct gw_call *c);
static void finalize(struct gw_call *c);

/* ---------- bookkeeping ---------- */

static void link_call(struct gw_call *c)
{
    c->next = c->w->calls;
    if (c->next) c->next->prev = c;
    c->w->calls = c;
}

static void unlink_call(struct gw_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->w->calls == c)
        c->w->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* One usage record for the attempt that just ended. */
static void record_attempt(struct gw_call *c, bool success, const char *error)
{
    if (!c->ch) return;
    struct usage_record r;
    memset(&r, 0, sizeof r);
    r.created_at_ms = c->t_attempt_wall_ms;
    copy_str(r.request_id, sizeof r.request_id, c->request_id, strlen(c->request_id));
    copy_str(r.downstream_path, sizeof r.downstream_path, c->path, strlen(c->path));
    copy_str(r.model_requested, sizeof r.model_requested, c->model.p, c->model.n);
    if (c->model_actual[0])
        copy_str(r.model_actual, sizeof r.model_actual, c->model_actual, strlen(c->model_actual));
    else
        copy_str(r.model_actual, sizeof r.model_actual, c->model.p, c->model.n);
    r.account_id = c->ch->account_id;
    r.site_id = c->ch->site_id;
    r.success = success;
    r.http_status = c->status;
    r.stream = c->stream;
    r.attempt = c->attempt;
    r.first_byte_ms = c->first_byte_ms;
    r.total_ms = (int64_t)((clock_mono_ns() - c->t_attempt) / 1000000u);
    r.prompt_tokens = c->prompt_tokens;
    r.completion_tokens = c->completion_tokens;
    r.total_tokens = c->total_tokens;
    r.overhead_us = success ? c->overhead_us : -1;
    copy_str(r.client_ip, sizeof r.client_ip, c->client_ip, strlen(c->client_ip));
    if (error) copy_str(r.error, sizeof r.error, error, strlen(error));
    usage_queue_push(&r);
}

static void access_log(struct gw_call *c)
{
    struct buf line = BUF_INIT;
    uint64_t ms = (clock_mono_ns() - c->start_ns) / 1000000u;
    buf_printf(&line, "{\"ts\":%lld,\"rid\":\"%s\",\"ip\":\"%s\",\"method\":\"POST\",\"path\":",
               (long long)clock_wall_ms(), c->request_id, c->client_ip);
    json_write_string(&line, c->path, strlen(c->path));
    buf_append_str(&line, ",\"model\":");
    json_write_string(&line, c->model.p, c->model.n);
    buf_printf(&line,
               ",\"status\":%d,\"stream\":%s,\"attempts\":%d,\"ms\":%llu,\"overhead_us\":%lld,"
               "\"prompt_tokens\":%lld,\"completion_tokens\":%lld%s}",
               c->final_status, c->stream ? "true" : "false", c->attempt + 1,
               (unsigned long long)ms, (long long)c->overhead_us, (long long)c->prompt_tokens,
               (long long)c->completion_tokens, c->client_gone ? ",\"client_gone\":true" : "");
    access_log_push(line.p, line.n);
    buf_free(&line);
}

static void reset_attempt(struct gw_call *c)
{
    c->xfer = NULL;
    c->status = 0;
    c->is_sse = false;
    c->saw_frame = false;
    c->content_type[0] = '\0';
    c->retry_after[0] = '\0';
    c->body.n = 0;
    c->out.n = 0;
    if (c->sse_active) sse_parser_free(&c->sse);
    c->sse_active = false;
    c->first_byte_ms = -1;
    c->prompt_tokens = c->completion_tokens = c->total_tokens = -1;
    c->model_actual[0] = '\0';
}

/* ---------- answering ---------- */

static void overhead_now(struct gw_call *c)
{
    uint64_t elapsed = clock_mono_ns() - c->start_ns;
    c->overhead_us = elapsed > c->wait_ns ? (int64_t)((elapsed - c->wait_ns) / 1000u) : 0;
}

static size_t response_headers(struct gw_call *c, struct http_header *h, char *overhead_txt,
                               size_t cap, const char *content_type)
{
    snprintf(overhead_txt, cap, "%lld", (long long)c->overhead_us);
    size_t n = 0;
    h[n++] = (struct http_header){SLICE_LIT("Content-Type"), slice_from(content_type)};
    h[n++] = (struct http_header){SLICE_LIT("x-request-id"), slice_from(c->request_id)};
    h[n++] = (struct http_header){SLICE_LIT("x-metarelay-overhead-us"), slice_from(overhead_txt)};
    return n;
}

static void respond_final_error(struct gw_call *c, int status, const char *type,
                                const char *code, const char *message)
{
    c->final_status = status;
    overhead_now(c);
    gw_error(c->req, status, type, code, message);
    c->finished = true;
}

static void respond_body(struct gw_call *c)
{
    char ov[32];
    struct http_header h[5];
    overhead_now(c);
    size_t n = response_headers(c, h, ov, sizeof ov,
                                c->content_type[0] ? c->content_type : "application/json");
    if (c->retry_after[0])
        h[n++] = (struct http_header){SLICE_LIT("Retry-After"), slice_from(c->retry_after)};
    c->final_status = c->status;
    http_respond(c->req, c->status, h, n, buf_slice(&c->body));
    c->finished = true;
}

/* ---------- streaming ---------- */

static void on_drain(http_request_t *req, void *arg)
{
    struct gw_call *c = arg;
    (void)req;
    if (c->paused && c->xfer) {
        c->paused = false;
        upstream_resume(c->xfer);
    }
}

static void client_gone(struct gw_call *c)
{
    if (c->client_gone) return;
    c->client_gone = true;
    if (c->xfer) {
        upstream_abort(c->xfer);
        c->xfer = NULL;
        record_attempt(c, false, "client closed the connection");
    }
    c->want_finalize = true;
}

static void on_abort(http_request_t *req, void *arg)
{
    struct gw_call *c = arg;
    (void)req;
    client_gone(c);
    if (!c->busy) finalize(c);
}

static int commit_stream(struct gw_call *c)
{
    char ov[32];
    struct http_header h[6];
    overhead_now(c);
    size_t n = response_headers(c, h, ov, sizeof ov, "text/event-stream");
    h[n++] = (struct http_header){SLICE_LIT("Cache-Control"), SLICE_LIT("no-cache")};
    c->committed = true;
    c->final_status = 200;
    http_request_on_drain(c->req, on_drain, c);
    return http_stream_start(c->req, 200, h, n);
}

/* One complete SSE frame from the upstream: keep it for the next downstream write, or
 * drop the usage-only chunk that metarelay requested on the client's behalf. */
static int on_sse_frame(void *ud, const struct sse_frame *f)
{
    struct gw_call *c = ud;
    if (f->kind == SSE_FRAME_EVENT) {
        c->saw_frame = true;
        if (memmem(f->data.p, f->data.n, "\"usage\"", 7)) {
            struct openai_chunk_info info;
            openai_chat_chunk_info(f->data, &info);
            if (info.has_usage) {
                c->prompt_tokens = info.usage.prompt_tokens;
                c->completion_tokens = info.usage.completion_tokens;
                c->total_tokens = info.usage.total_tokens;
            }
            if (info.usage_only && c->inject_usage) return 0;
        }
    } else if (f->kind == SSE_FRAME_OVERSIZE) {
        c->saw_frame = true; /* forwarded unparsed; usage extraction skipped */
    }
    buf_append(&c->out, f->raw.p, f->raw.n);
    return 0;
}

static enum upstream_data_verdict flush_frames(struct gw_call *c)
{
    if (c->out.n == 0 || !c->saw_frame) return UPSTREAM_CONTINUE;
    if (!c->committed) {
        c->wait_ns += clock_mono_ns() - c->t_attempt;
        if (commit_stream(c) != 0) {
            client_gone(c);
            return UPSTREAM_CONTINUE;
        }
    }
    struct slice part = buf_slice(&c->out);
    int rc = http_stream_write(c->req, &part, 1);
    c->out.n = 0;
    if (rc < 0) {
        client_gone(c);
        return UPSTREAM_CONTINUE;
    }
    if (rc > 0) {
        c->paused = true;
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static void end_stream_with_error(struct gw_call *c, const char *message)
{
    struct buf b = BUF_INIT;
    errors_write_openai_event(&b, slice_from(message), "upstream_error", "stream_interrupted");
    struct slice part = buf_slice(&b);
    if (c->out.n) {
        struct slice parts[2] = {buf_slice(&c->out), part};
        http_stream_write(c->req, parts, 2);
    } else {
        http_stream_write(c->req, &part, 1);
    }
    buf_free(&b);
    http_stream_end(c->req);
    c->finished = true;
}

/* ---------- upstream callbacks ---------- */

/* ": <message>" from an upstream error body ({"error":{"message":…}}, {"message":…}, or
 * the first printable bytes of a non-JSON body), for the failover report. Never includes
 * request data: only what the upstream said. */
static void error_excerpt(struct slice body, char *out, size_t cap)
{
    out[0] = '\0';
    if (body.n == 0 || cap < 8) return;
    json_error_t jerr;
    json_t *root = json_loadb(body.p, body.n, JSON_REJECT_DUPLICATES, &jerr);
    const char *msg = NULL;
    if (root) {
        json_t *e = json_object_get(root, "error");
        json_t *m = json_is_object(e) ? json_object_get(e, "message")
                                      : json_is_string(e) ? e : json_object_get(root, "message");
        if (json_is_string(m)) msg = json_string_value(m);
    }
    size_t k = 0;
    out[k++] = ':';
    out[k++] = ' ';
    const char *src = msg ? msg : body.p;
    size_t n = msg ? strlen(msg) : body.n;
    for (size_t i = 0; i < n && k < cap - 4 && k < 160; i++) {
        unsigned char ch = (unsigned char)src[i];
        out[k++] = (ch >= 0x20 && ch != 0x7f) ? (char)ch : ' ';
    }
    out[k] = '\0';
    json_decref(root);
}

static bool status_fails_over(int status)
{
    return status == 401 || status == 402 || status == 403 || status == 404 || status == 408 ||
           status == 429 || status >= 500;
}

static void up_head(void *ud, int status, const struct http_header *hdrs, size_t n)
{
    struct gw_call *c = ud;
    c->status = status;
    c->first_byte_ms = (int64_t)((clock_mono_ns() - c->t_attempt) / 1000000u);
    for (size_t i = 0; i < n; i++) {
        if (slice_ieq_str(hdrs[i].name, "content-type"))
            copy_str(c->content_type, sizeof c->content_type, hdrs[i].value.p, hdrs[i].value.n);
        else if (slice_ieq_str(hdrs[i].name, "retry-after"))
            copy_str(c->retry_after, sizeof c->retry_after, hdrs[i].value.p, hdrs[i].value.n);
    }
    c->is_sse = strncasecmp(c->content_type, "text/event-stream", 17) == 0;
    if (status >= 200 && status < 300 && c->stream && c->is_sse) {
        sse_parser_init(&c->sse, SSE_DEFAULT_MAX_EVENT, on_sse_frame, c);
        c->sse_active = true;
    }
}

static enum upstream_data_verdict up_data(void *ud, const char *p, size_t n)
{
    struct gw_call *c = ud;
    enum upstream_data_verdict v = UPSTREAM_CONTINUE;
    c->busy++;
    if (c->client_gone) goto out;
    if (c->sse_active) {
        sse_parser_feed(&c->sse, p, n);
        v = flush_frames(c);
    } else {
        size_t cap = (c->status >= 200 && c->status < 300) ? c->w->cfg->max_response_bytes
                                                           : ERROR_BODY_KEEP;
        if (c->body.n + n <= cap) buf_append(&c->body, p, n);
        else if (c->status >= 200 && c->status < 300) {
            /* over MAX_RESPONSE_MB: give up on this response */
            upstream_abort(c->xfer);
            c->xfer = NULL;
            record_attempt(c, false, "response larger than MAX_RESPONSE_MB");
            respond_final_error(c, 502, "upstream_error", "response_too_large",
                                "The upstream response is larger than MAX_RESPONSE_MB.");
            c->want_finalize = true;
        }
    }
out:
    c->busy--;
    if (c->want_finalize && !c->busy) finalize(c);
    return v;
}

static void fail_attempt(struct gw_call *c, const char *reason, bool timeout)
{
    health_record_failure(c->ch->health, clock_mono_ns());
    record_attempt(c, false, reason);
    c->n_failures++;
    if (timeout) c->n_timeouts++;
    if (c->status == 429) c->n_429++;
    buf_printf(&c->failures, "%s#%d %s: %s", c->failures.n ? "; " : "", c->attempt + 1,
               c->ch->site_name, reason);
    c->wait_ns += clock_mono_ns() - c->t_attempt;
}

static void up_done(void *ud, enum upstream_error err, const char *detail)
{
    struct gw_call *c = ud;
    c->xfer = NULL;
    c->busy++;
    if (c->client_gone) goto out;

    if (c->committed) {
        /* Past the commit point: the client already has the headers. */
        if (c->sse_active) sse_parser_finish(&c->sse);
        if (err != UPSTREAM_OK) {
            char msg[300];
            snprintf(msg, sizeof msg, "upstream stream interrupted (%s: %s)",
                     upstream_error_name(err), detail ? detail : "");
            health_record_failure(c->ch->health, clock_mono_ns());
            record_attempt(c, false, msg);
            end_stream_with_error(c, msg);
        } else {
            if (c->out.n) {
                struct slice part = buf_slice(&c->out);
                http_stream_write(c->req, &part, 1);
                c->out.n = 0;
            }
            health_record_success(c->ch->health);
            record_attempt(c, true, NULL);
            http_stream_end(c->req);
            c->finished = true;
        }
        c->want_finalize = true;
        goto out;
    }

    if (err != UPSTREAM_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s (%s)", upstream_error_name(err), detail ? detail : "");
        fail_attempt(c, msg,
                     err == UPSTREAM_ERR_FIRST_BYTE_TIMEOUT || err == UPSTREAM_ERR_IDLE_TIMEOUT ||
                         err == UPSTREAM_ERR_TOTAL_TIMEOUT);
        try_next(c);
        goto out;
    }
    if (c->status >= 200 && c->status < 300) {
        if (c->sse_active) {
            /* A 200 stream that ended before any complete frame: nothing went downstream. */
            fail_attempt(c, "stream ended before its first event", false);
            try_next(c);
            goto out;
        }
        c->wait_ns += clock_mono_ns() - c->t_attempt;
        struct openai_usage u;
        struct slice model = SLICE_NULL;
        if (openai_chat_response_info(buf_slice(&c->body), c->req->pool, &u, &model) == 0) {
            c->prompt_tokens = u.prompt_tokens;
            c->completion_tokens = u.completion_tokens;
            c->total_tokens = u.total_tokens;
            if (model.n) copy_str(c->model_actual, sizeof c->model_actual, model.p, model.n);
        }
        health_record_success(c->ch->health);
        respond_body(c);
        record_attempt(c, true, NULL);
        c->want_finalize = true;
        goto out;
    }
    if (status_fails_over(c->status)) {
        char msg[300];
        int n = snprintf(msg, sizeof msg, "HTTP %d", c->status);
        error_excerpt(buf_slice(&c->body), msg + n, sizeof msg - (size_t)n);
        fail_attempt(c, msg, c->status == 408);
        try_next(c);
        goto out;
    }
    /* The client's own fault (400, 413, 422, …): the upstream's answer, verbatim. */
    c->wait_ns += clock_mono_ns() - c->t_attempt;
    record_attempt(c, false, "rejected by the upstream as a client error");
    respond_body(c);
    c->want_finalize = true;
out:
    c->busy--;
    if (c->want_finalize && !c->busy) finalize(c);
}

static const struct upstream_callbacks up_cb = {up_head, up_data, up_done};

/* ---------- attempts ---------- */

static const char *join_url(pool_t *pool, const char *base, const char *path)
{
    size_t bl = strlen(base);
    /* A base URL that already ends in /v1 gets the path without its /v1. */
    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(path, "/v1/", 4) == 0)
        path += 3;
    return pool_printf(pool, "%s%s", base, path);
}

/* Client headers forwarded upstream (an allowlist: DESIGN.md §10 header policy). */
static const char *const forwarded_headers[] = {"user-agent", "openai-beta", "x-stainless-lang",
                                                "x-stainless-package-version", NULL};

static void try_next(struct gw_call *c)
{
    const struct gateway_config *cfg = c->w->cfg;
    while (c->next_cand < c->n_cand) {
        reset_attempt(c);
        c->attempt++;
        c->ch = &c->snap->channels[c->cand[c->next_cand++]];
        c->t_attempt = clock_mono_ns();
        c->t_attempt_wall_ms = clock_wall_ms();
        pool_t *pool = c->req->pool;
        const char *url = join_url(pool, c->ch->base_url, c->upstream_path);
        size_t cap = 4 + c->ch->n_headers + 4;
        struct http_header *h = pool_alloc(pool, cap * sizeof *h);
        if (!url || !h) break;
        size_t n = 0;
        h[n++] = (struct http_header){SLICE_LIT("Authorization"),
                                      slice_from(pool_printf(pool, "Bearer %s", c->ch->api_key))};
        h[n++] = (struct http_header){SLICE_LIT("Content-Type"), SLICE_LIT("application/json")};
        h[n++] = (struct http_header){SLICE_LIT("Accept"),
                                      c->stream ? SLICE_LIT("text/event-stream")
                                                : SLICE_LIT("application/json")};
        for (const char *const *f = forwarded_headers; *f; f++) {
            struct slice v = http_request_header(c->req, *f);
            if (v.p) h[n++] = (struct http_header){slice_from(*f), v};
        }
        for (size_t i = 0; i < c->ch->n_headers; i++)
            h[n++] = (struct http_header){slice_from(c->ch->headers[i].name),
                                          slice_from(c->ch->headers[i].value)};
        struct upstream_request ur = {
            .method = SLICE_LIT("POST"),
            .url = url,
            .headers = h,
            .n_headers = n,
            .body = c->up_body,
            .proxy_url = c->ch->proxy_url,
            .connect_timeout_ms = cfg->connect_timeout_ms,
            .first_byte_timeout_ms = cfg->first_byte_timeout_ms,
            .idle_timeout_ms = cfg->idle_timeout_ms,
            .total_timeout_ms = cfg->total_timeout_ms,
        };
        c->xfer = upstream_start(c->w->upstream, &ur, &up_cb, c);
        if (c->xfer) return;
        fail_attempt(c, "could not start the upstream request", false);
    }
    /* Every candidate failed. */
    char *msg = pool_printf(c->req->pool, "All %d upstream channel%s failed for model '%.*s': %s",
                            c->n_failures, c->n_failures == 1 ? "" : "s", (int)c->model.n,
                            c->model.p, c->failures.n ? c->failures.p : "no channel could be tried");
    if (c->n_failures > 0 && c->n_timeouts == c->n_failures)
        respond_final_error(c, 504, "upstream_error", "upstream_timeout", msg);
    else if (c->n_failures > 0 && c->n_429 == c->n_failures)
        respond_final_error(c, 429, "rate_limit_error", "upstream_rate_limited", msg);
    else
        respond_final_error(c, 502, "upstream_error", "upstream_failed", msg);
    c->want_finalize = true;
}

static void finalize(struct gw_call *c)
{
    if (c->busy) {
        c->want_finalize = true;
        return;
    }
    if (c->xfer) {
        upstream_abort(c->xfer);
        c->xfer = NULL;
    }
    if (c->final_status == 0 && c->client_gone) c->final_status = 499;
    access_log(c);
    unlink_call(c);
    if (!c->finished) http_request_finish(c->req);
    if (c->sse_active) sse_parser_free(&c->sse);
    buf_free(&c->body);
    buf_free(&c->out);
    buf_free(&c->failures);
    snapshot_release(c->snap);
    free(c);
}

void gw_proxy_abort_all(struct gw_worker *w)
{
    while (w->calls) {
        struct gw_call *c = w->calls;
        if (c->xfer) {
            upstream_abort(c->xfer);
            c->xfer = NULL;
            record_attempt(c, false, "metarelay is shutting down");
        }
        if (!c->finished && !c->client_gone) {
            if (c->committed)
                end_stream_with_error(c, "metarelay is shutting down; the stream was cut");
            else
                respond_final_error(c, 503, "server_error", "shutting_down",
                                    "metarelay is shutting down; retry the request.");
        }
        c->busy = 0;
        finalize(c);
    }
}

/* ---------- request intake ---------- */

static const char *upstream_path_of(enum gw_surface s)
{
    switch (s) {
    case GW_SURFACE_CHAT: return "/v1/chat/completions";
    case GW_SURFACE_COMPLETIONS: return "/v1/completions";
    case GW_SURFACE_EMBEDDINGS: return "/v1/embeddings";
    case GW_SURFACE_IMAGES: return "/v1/images/generations";
    default: return NULL;
    }
}

/* Makes the upstream body ask for the usage chunk of a stream when the client did not:
 * splices `stream_options` (adding it, or setting include_usage inside it). Returns 0, or
 * -1 with an error answered. */
static int prepare_body(struct gw_call *c, const struct json_scan *scan)
{
    http_request_t *req = c->req;
    c->up_body = req->body;
    if (!c->stream || (c->surface != GW_SURFACE_CHAT && c->surface != GW_SURFACE_COMPLETIONS))
        return 0;
    const struct json_member *so = json_scan_get(scan, "stream_options");
    const char *new_value = NULL;
    if (!so || so->type == JSON_T_NULL) {
        new_value = "{\"include_usage\":true}";
    } else if (so->type == JSON_T_OBJECT) {
        struct json_scan inner;
        if (json_scan_object(req->pool, so->value, &inner) != 0) {
            gw_error(req, 400, "invalid_request_error", "invalid_json", inner.error);
            return -1;
        }
        const struct json_member *iu = json_scan_get(&inner, "include_usage");
        bool on = false;
        if (iu && json_member_bool(iu, &on) && on) {
            c->client_usage = true;
            return 0;
        }
        struct slice spliced;
        if (json_splice(req->pool, so->value.p, so->value.n, &inner, "include_usage", "true",
                        &spliced) != 0) {
            gw_error(req, 500, "server_error", "internal_error", "Could not prepare the request.");
            return -1;
        }
        new_value = pool_strdup_slice(req->pool, spliced);
    } else {
        gw_error(req, 400, "invalid_request_error", "invalid_value",
                 "'stream_options' must be an object.");
        return -1;
    }
    if (!new_value ||
        json_splice(req->pool, req->body.p, req->body.n, scan, "stream_options", new_value,
                    &c->up_body) != 0) {
        gw_error(req, 500, "server_error", "internal_error", "Could not prepare the request.");
        return -1;
    }
    c->inject_usage = true;
    return 0;
}

void gw_proxy_start(struct gw_worker *w, http_request_t *req, enum gw_surface surface)
{
    struct json_scan scan;
    if (req->body.n == 0) {
        gw_reject(req, 400, "invalid_request_error", "missing_body",
                 "The request body is empty; a JSON object is required.");
        return;
    }
    if (json_scan(req->pool, req->body.p, req->body.n, &scan) != 0) {
        char *msg = pool_printf(req->pool, "Invalid JSON body: %s", scan.error);
        gw_reject(req, 400, "invalid_request_error", "invalid_json", msg ? msg : "Invalid JSON body.");
        return;
    }
    if (scan.root_type != JSON_T_OBJECT) {
        gw_reject(req, 400, "invalid_request_error", "invalid_json",
                 "The request body must be a JSON object.");
        return;
    }
    const struct json_member *mm = json_scan_get(&scan, "model");
    struct slice model = SLICE_NULL;
    if (!mm) {
        gw_reject(req, 400, "invalid_request_error", "missing_model",
                 "Missing required parameter: 'model'.");
        return;
    }
    if (mm->type != JSON_T_STRING || !json_member_string(req->pool, mm, &model) || model.n == 0) {
        gw_reject(req, 400, "invalid_request_error", "invalid_model",
                 "'model' must be a non-empty string.");
        return;
    }
    bool stream = false;
    const struct json_member *sm = json_scan_get(&scan, "stream");
    if (sm && sm->type != JSON_T_NULL && !json_member_bool(sm, &stream)) {
        gw_reject(req, 400, "invalid_request_error", "invalid_value", "'stream' must be a boolean.");
        return;
    }
    const struct route *route = snapshot_find(w->snap, model);
    if (!route || route->n_channels == 0) {
        char *msg = pool_printf(req->pool,
                                "The model '%.*s' does not exist or no enabled channel serves it.",
                                (int)(model.n > 200 ? 200 : model.n), model.p);
        gw_reject(req, 404, "invalid_request_error", "model_not_found", msg ? msg : "Unknown model.");
        return;
    }

    struct gw_call *c = calloc(1, sizeof *c);
    if (!c) {
        gw_error(req, 503, "server_error", "overloaded", "Out of memory; retry the request.");
        return;
    }
    c->w = w;
    c->req = req;
    c->surface = surface;
    c->upstream_path = upstream_path_of(surface);
    copy_str(c->model_copy, sizeof c->model_copy, model.p, model.n);
    c->model = slice_from(c->model_copy);
    copy_str(c->path, sizeof c->path, req->path.p, req->path.n);
    copy_str(c->client_ip, sizeof c->client_ip, req->client_ip, strlen(req->client_ip));
    const char *rid = gw_request_id(req);
    copy_str(c->request_id, sizeof c->request_id, rid, strlen(rid));
    c->start_ns = req->start_ns;
    c->stream = stream;
    c->attempt = -1;
    c->first_byte_ms = -1;
    c->prompt_tokens = c->completion_tokens = c->total_tokens = -1;
    c->snap = w->snap;
    snapshot_ref(c->snap);
    unsigned max = w->cfg->max_attempts ? w->cfg->max_attempts : 3;
    if (max > MAX_CANDIDATES) max = MAX_CANDIDATES;
    c->n_cand = routing_order_candidates(c->snap, route, c->cand, max);
    link_call(c);
    http_request_on_abort(req, on_abort, c);
    if (prepare_body(c, &scan) != 0) {
        c->finished = true; /* prepare_body answered */
        c->final_status = 400;
        finalize(c);
        return;
    }
    c->busy++;
    try_next(c);
    c->busy--;
    if (c->want_finalize) finalize(c);
}
