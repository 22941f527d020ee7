/* proxy.c — the attempt loop of the data plane, for every POST surface: OpenAI Chat,
 * Claude Messages (and count_tokens), OpenAI Responses, legacy Completions, embeddings and
 * images.
 *
 * Phases per request: validate the body with json_scan (no DOM) and read `model` and
 * `stream`; resolve the route from the worker's snapshot; order the candidates — channels
 * that speak the client's format first, the body passed through untouched (but for the
 * usage splice below); the others get the request converted through protocol/convert.h
 * (decoded once per request) and their answer converted back, whole or event by event.
 *
 * An attempt that fails before anything went downstream (connect error, reset, timeout,
 * HTTP 401/402/403/404/408/429/5xx, a 200 that dies before its first complete SSE frame,
 * an answer that cannot be converted) moves on to the next candidate; a client error (400,
 * 413, 422, …) is returned at once in the client's shape with the upstream's text kept. A
 * stream commits downstream at the first complete frame that carries content (comments
 * and Claude pings do not count); from then on complete frames are written as they arrive
 * (all frames of one upstream read in one write), backpressure pauses the upstream, and a
 * failure becomes an in-stream error event in the client's format — never a silent
 * truncated success. For streamed chat/completions whose client did not ask for the usage
 * chunk, metarelay asks for it upstream and strips it again. One usage record per attempt
 * goes to the usage queue; one access-log line per request. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/acw_challenge.h"
#include "base/clock.h"
#include "base/json_scan.h"
#include "base/log.h"
#include "gateway/classify.h"
#include "gateway/internal.h"
#include "net/sse.h"
#include "protocol/convert.h"
#include "protocol/errors.h"
#include "protocol/openai_chat.h"
#include "protocol/usage_scan.h"
#include "routing/select.h"
#include "store/usage_queue.h"

#define MAX_CANDIDATES        16
#define CONVERT_OFFLOAD_BYTES (64 * 1024)
#define ERROR_BODY_KEEP       (64 * 1024)

struct gw_call {
    struct gw_worker *w;
    http_request_t *req;
    enum gw_surface surface;
    enum api_format client_fmt;
    struct slice model; /* points into model_copy: valid after the request is finished */
    char model_copy[256];
    char path[64];
    char client_ip[46];
    char request_id[40];
    uint64_t start_ns;
    uint64_t deadline_ns; /* PROXY_TOTAL_TIMEOUT_SEC across every attempt; 0 = none */
    bool stream;
    bool client_usage; /* the client asked for the usage chunk */
    bool inject_usage; /* metarelay asked for it upstream: strip it again */
    struct slice passthrough_body;
    struct ir_request *ir; /* decoded on the first converting attempt */
    /* Large bodies (> CONVERT_OFFLOAD_BYTES) are decoded, and encoded for the first
     * converting candidate, on libuv's thread pool: a 200 KB body costs milliseconds of
     * DOM work that must not stall every other stream of the io thread. */
    uv_work_t offload;
    bool offloading;         /* the request pool belongs to the pool thread now */
    enum api_format pre_fmt; /* the format pre_cv / pre_body were encoded for */
    struct conv *pre_cv;     /* consumed by the first attempt in that format */
    struct slice pre_body;
    int pre_rc; /* 0, or -1 with pre_err */
    struct conv_error pre_err;
    int decode_rc;
    struct conv_error decode_err;
    struct ir_profile profile;
    struct routing_snapshot *snap;
    struct routing_request rq;         /* resolved route and ordered picks (routing/select.h) */
    uint8_t cand_pick[MAX_CANDIDATES]; /* index into rq.picks per candidate */
    uint32_t cand[MAX_CANDIDATES];
    enum api_format cand_fmt[MAX_CANDIDATES]; /* the format each candidate is asked in */
    size_t n_cand, next_cand;
    int attempt;    /* index of the current attempt; -1 before the first */
    bool estimated; /* count_tokens answered with the local estimate (no upstream) */

    /* the current attempt */
    upstream_xfer_t *xfer;
    const struct channel *ch;
    struct route_pick *pick; /* the routing pick of this attempt */
    enum api_format up_fmt;
    struct conv *cv; /* NULL when passing through */
    int status;
    bool is_sse;
    bool saw_frame;
    /* pass-through streams: how the upstream stream ended (see stream_end_state) */
    bool saw_terminal;      /* [DONE], message_stop, response.completed/incomplete */
    bool saw_finish;        /* a finish_reason / stop_reason: the answer itself is complete */
    bool saw_error;         /* an in-stream error event was forwarded */
    bool stream_broken;     /* the upstream stream could not be converted, or failed at once */
    bool waf_retried;       /* a WAF challenge was solved once for this request */
    char stream_error[200]; /* why, when the upstream sent an error event first */
    char content_type[128];
    char retry_after[32];
    struct buf body; /* non-stream body, or the error body of a failed attempt */
    struct sse_parser sse;
    bool sse_active;
    struct buf out; /* complete frames waiting to be written downstream */
    uint64_t t_attempt;
    int64_t t_attempt_wall_ms;
    int64_t first_byte_ms;
    struct ir_usage usage;
    char model_actual[128];
    const char *fail_kind; /* health_failure_name of the attempt's failure; NULL = none */

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
    int n_failures, n_timeouts, n_429, n_quota;
    struct gw_call *prev, *next;
};

static void try_next(struct gw_call *c);
static bool waf_solve(struct gw_call *c);
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

static int64_t total_tokens(const struct ir_usage *u)
{
    if (u->input_total < 0 && u->output_total < 0) return -1;
    return (u->input_total > 0 ? u->input_total : 0) + (u->output_total > 0 ? u->output_total : 0);
}

/* One usage record for the attempt that just ended. */
static void record_attempt(struct gw_call *c, bool success, const char *error)
{
    if (!c->ch) return;
    if (c->cv && !c->finished) c->usage = c->cv->usage; /* cv lives in the request pool */
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
    r.prompt_tokens = c->usage.input_total;
    r.completion_tokens = c->usage.output_total;
    r.total_tokens = total_tokens(&c->usage);
    r.overhead_us = success ? c->overhead_us : -1;
    copy_str(r.client_ip, sizeof r.client_ip, c->client_ip, strlen(c->client_ip));
    if (error) copy_str(r.error, sizeof r.error, error, strlen(error));
    if (c->rq.match.route) r.route_id = c->rq.match.route->id;
    if (c->pick && c->pick->rc) r.route_channel_id = c->pick->rc->id;
    if (!success && c->fail_kind)
        copy_str(r.failure_kind, sizeof r.failure_kind, c->fail_kind, strlen(c->fail_kind));
    if (success && c->pick && c->pick->rc) {
        double cost =
            routing_estimated_cost(c->pick->rc, c->usage.input_total, c->usage.output_total);
        if (cost >= 0) {
            r.has_cost = true;
            r.estimated_cost = cost;
        }
    }
    usage_queue_push(&r);
}

/* One JSON line per request (appended piece by piece: printf was a tenth of the gateway's
 * own instructions per request). */
static void access_log(struct gw_call *c)
{
    struct buf line = BUF_INIT;
    if (!buf_reserve(&line, 400)) return;
    uint64_t ms = (clock_mono_ns() - c->start_ns) / 1000000u;
    buf_append_str(&line, "{\"ts\":");
    buf_append_i64(&line, (long long)clock_wall_ms());
    buf_append_str(&line, ",\"rid\":\"");
    buf_append_str(&line, c->request_id);
    buf_append_str(&line, "\",\"ip\":\"");
    buf_append_str(&line, c->client_ip);
    buf_append_str(&line, "\",\"method\":\"POST\",\"path\":");
    json_write_string(&line, c->path, strlen(c->path));
    buf_append_str(&line, ",\"model\":");
    json_write_string(&line, c->model.p, c->model.n);
    buf_append_str(&line, ",\"status\":");
    buf_append_i64(&line, c->final_status);
    buf_append_str(&line, c->stream ? ",\"stream\":true,\"attempts\":"
                                    : ",\"stream\":false,\"attempts\":");
    buf_append_i64(&line, c->attempt + 1);
    buf_append_str(&line, ",\"ms\":");
    buf_append_i64(&line, (long long)ms);
    buf_append_str(&line, ",\"overhead_us\":");
    buf_append_i64(&line, (long long)c->overhead_us);
    buf_append_str(&line, ",\"upstream_format\":\"");
    buf_append_str(&line, c->estimated ? "local" : api_format_name(c->up_fmt));
    buf_append_str(&line, "\",\"prompt_tokens\":");
    buf_append_i64(&line, c->usage.input_total);
    buf_append_str(&line, ",\"completion_tokens\":");
    buf_append_i64(&line, c->usage.output_total);
    buf_append_str(&line, c->client_gone ? ",\"client_gone\":true}" : "}");
    access_log_push(line.p, line.n);
    buf_free(&line);
}

static void reset_attempt(struct gw_call *c)
{
    c->xfer = NULL;
    c->cv = NULL;
    c->status = 0;
    c->is_sse = false;
    c->saw_frame = false;
    c->saw_terminal = c->saw_finish = c->saw_error = false;
    c->stream_broken = false;
    c->stream_error[0] = '\0';
    c->content_type[0] = '\0';
    c->retry_after[0] = '\0';
    c->body.n = 0;
    c->out.n = 0;
    if (c->sse_active) sse_parser_free(&c->sse);
    c->sse_active = false;
    c->first_byte_ms = -1;
    ir_usage_unknown(&c->usage);
    c->model_actual[0] = '\0';
    c->fail_kind = NULL;
}

/* ---------- routing glue: outcomes and model mapping (routing/select.h) ---------- */

static void route_success(struct gw_call *c)
{
    routing_report_success(&c->rq, c->pick, clock_mono_ns(),
                           c->first_byte_ms > 0 ? (unsigned)c->first_byte_ms : 0);
}

/* Reports a failure as classified (gateway/classify.h): the scope its kind names cools
 * down, for at least the provider's Retry-After; a client error only frees the trial. */
static void route_failure(struct gw_call *c, const struct gw_verdict *v)
{
    c->fail_kind = health_failure_name(v->kind);
    routing_report_failure(&c->rq, c->pick, clock_mono_ns(), v->kind, v->retry_after_ms);
}

/* A broken answer of this channel (unusable body, a stream that failed, a 2xx turned into
 * a failure by the keyword or empty-content rules). */
static const struct gw_verdict verdict_broken = {GW_FAILOVER, HEALTH_FAIL_SERVER_ERROR, 0,
                                                 "unusable answer"};

/* Model mapping: the attempt's body asks for the pick's upstream model name (a splice;
 * nothing changes when the names are equal). */
static void apply_upstream_model(struct gw_call *c, struct slice *body)
{
    if (!c->pick || slice_eq(c->pick->upstream_model, c->model)) return;
    struct slice out;
    if (routing_splice_model(c->req->pool, *body, c->pick->upstream_model, &out) == 0) *body = out;
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

static void respond_final_error(struct gw_call *c, int status, const char *type, const char *code,
                                const char *message)
{
    c->final_status = status;
    overhead_now(c);
    gw_error(c->req, status, type, code, message);
    c->finished = true;
}

static void respond_with(struct gw_call *c, int status, const char *content_type, struct slice body)
{
    char ov[32];
    struct http_header h[5];
    overhead_now(c);
    size_t n = response_headers(c, h, ov, sizeof ov, content_type);
    if (c->retry_after[0])
        h[n++] = (struct http_header){SLICE_LIT("Retry-After"), slice_from(c->retry_after)};
    c->final_status = status;
    http_respond(c->req, status, h, n, body);
    c->finished = true;
}

static void respond_body(struct gw_call *c)
{
    respond_with(c, c->status, c->content_type[0] ? c->content_type : "application/json",
                 buf_slice(&c->body));
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
        /* neither a success nor the channel's failure: give its trial slot back */
        if (c->pick) routing_attempt_abandon(&c->rq, c->pick);
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

/* Whether a chat chunk carries a non-null "finish_reason" (a cheap scan, no parse). */
static bool chunk_has_finish(struct slice d)
{
    const char *p = memmem(d.p, d.n, "\"finish_reason\"", 15);
    if (!p) return false;
    const char *end = d.p + d.n;
    p += 15;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t')) p++;
    return p < end && *p == '"';
}

/* A pass-through frame of the client's own format. Chat/completions: the usage-only chunk
 * metarelay asked for is read and dropped. Messages: a `ping` is forwarded but does not
 * commit the response. Terminal, finish and error events are noted for the end of the
 * stream (a clean close without its terminal event must not pass for a complete answer). */
static void passthrough_frame(struct gw_call *c, const struct sse_frame *f)
{
    if (f->kind == SSE_FRAME_EVENT) {
        switch (c->client_fmt) {
        case API_CHAT:
        case API_COMPLETIONS:
            c->saw_frame = true;
            if (slice_eq_str(slice_trim(f->data), "[DONE]")) {
                c->saw_terminal = true;
                break;
            }
            if (chunk_has_finish(f->data)) c->saw_finish = true;
            if (memmem(f->data.p, f->data.n, "\"error\"", 7)) {
                struct openai_chunk_info info;
                if (openai_chat_chunk_info(f->data, &info) == 0 && info.has_error)
                    c->saw_error = true;
            }
            if (memmem(f->data.p, f->data.n, "\"usage\"", 7)) {
                struct openai_chunk_info info;
                openai_chat_chunk_info(f->data, &info);
                if (info.has_usage) {
                    c->usage.input_total = info.usage.prompt_tokens;
                    c->usage.output_total = info.usage.completion_tokens;
                    c->usage.cache_read = info.usage.cached_tokens;
                    c->usage.reasoning = info.usage.reasoning_tokens;
                }
                if (info.usage_only && c->inject_usage) return;
            }
            break;
        case API_MESSAGES:
            if (!slice_eq_str(f->event, "ping")) c->saw_frame = true;
            if (slice_eq_str(f->event, "message_stop")) c->saw_terminal = true;
            if (slice_eq_str(f->event, "message_delta")) c->saw_finish = true;
            if (slice_eq_str(f->event, "error")) c->saw_error = true;
            usage_scan_event(API_MESSAGES, f->event, f->data, &c->usage);
            break;
        case API_RESPONSES:
            c->saw_frame = true;
            if (slice_eq_str(f->event, "response.completed") ||
                slice_eq_str(f->event, "response.incomplete"))
                c->saw_terminal = true;
            if (slice_eq_str(f->event, "error") || slice_eq_str(f->event, "response.failed"))
                c->saw_error = true;
            usage_scan_event(API_RESPONSES, f->event, f->data, &c->usage);
            break;
        }
    } else if (f->kind == SSE_FRAME_OVERSIZE) {
        c->saw_frame = true; /* forwarded unparsed; usage extraction skipped */
    }
    buf_append(&c->out, f->raw.p, f->raw.n);
}

/* One complete upstream SSE frame: passed through, or converted into client events. */
static int on_sse_frame(void *ud, const struct sse_frame *f)
{
    struct gw_call *c = ud;
    if (!c->cv) {
        passthrough_frame(c, f);
        return 0;
    }
    if (f->kind == SSE_FRAME_OVERSIZE) {
        c->stream_broken = true; /* an event too large to parse cannot be converted */
        return 1;
    }
    if (f->kind != SSE_FRAME_EVENT) return 0; /* comments mean nothing in another format */
    size_t before = c->out.n;
    if (conv_stream_event(c->cv, f->event, f->data, &c->out) != 0) {
        c->stream_broken = true;
        return 1;
    }
    if (!c->committed) {
        /* An upstream that fails before producing anything (an error event first) is
         * failed over like an HTTP error, not committed as a 200 with an error inside. */
        bool produced = false;
        struct conv_error err;
        if (conv_stream_status(c->cv, &err, &produced) == CONV_STREAM_FAILED && !produced) {
            c->out.n = before;
            copy_str(c->stream_error, sizeof c->stream_error, err.message, strlen(err.message));
            c->stream_broken = true;
            return 1;
        }
    }
    if (c->out.n > before) c->saw_frame = true;
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

/* Appends the in-stream error event of the client's format. */
static void stream_error_event(struct gw_call *c, const char *message, struct buf *b)
{
    struct slice msg = slice_from(message);
    switch (c->client_fmt) {
    case API_MESSAGES:
        errors_write_claude_event(b, "api_error", msg);
        return;
    case API_RESPONSES: {
        struct conv *cv = c->cv;
        if (!cv)
            cv = conv_new(c->req->pool, API_RESPONSES, API_RESPONSES, &c->profile, c->ir, c->model);
        if (cv) {
            conv_stream_error(cv, 502, "api_error", msg, b);
            return;
        }
        break;
    }
    case API_CHAT:
    case API_COMPLETIONS:
        break;
    }
    errors_write_openai_event(b, msg, "upstream_error", "stream_interrupted");
}

static void end_stream_with_error(struct gw_call *c, const char *message)
{
    struct buf b = BUF_INIT;
    stream_error_event(c, message, &b);
    struct slice part = buf_slice(&b);
    if (c->out.n) {
        struct slice parts[2] = {buf_slice(&c->out), part};
        http_stream_write(c->req, parts, 2);
    } else {
        http_stream_write(c->req, &part, 1);
    }
    c->out.n = 0;
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
        json_t *m = json_is_object(e)   ? json_object_get(e, "message")
                    : json_is_string(e) ? e
                                        : json_object_get(root, "message");
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

/* Not the channel's fault, not the client's either (the request could not be prepared
 * for this channel): the next channel is tried, nothing is counted. */
static const struct gw_verdict verdict_not_counted = {GW_FAILOVER, HEALTH_FAIL_CLIENT_ERROR, 0,
                                                      "not attempted"};

static void fail_attempt(struct gw_call *c, const char *reason, const struct gw_verdict *v)
{
    route_failure(c, v);
    record_attempt(c, false, reason);
    c->n_failures++;
    if (v->kind == HEALTH_FAIL_TIMEOUT) c->n_timeouts++;
    if (v->kind == HEALTH_FAIL_RATE_LIMIT) c->n_429++;
    if (v->kind == HEALTH_FAIL_QUOTA) c->n_quota++;
    buf_printf(&c->failures, "%s#%d %s: %s", c->failures.n ? "; " : "", c->attempt + 1,
               c->ch->site_name, reason);
    c->wait_ns += clock_mono_ns() - c->t_attempt;
}

/* The upstream stream cannot be converted: before the commit point another channel is
 * tried; after it the client's stream ends with an error event. */
static void stream_broken(struct gw_call *c)
{
    if (c->xfer) {
        upstream_abort(c->xfer);
        c->xfer = NULL;
    }
    char why[240];
    if (c->stream_error[0])
        snprintf(why, sizeof why, "upstream stream error: %s", c->stream_error);
    else
        snprintf(why, sizeof why, "the upstream stream could not be converted");
    if (c->committed) {
        route_failure(c, &verdict_broken);
        record_attempt(c, false, why);
        end_stream_with_error(c, why);
        c->want_finalize = true;
    } else {
        fail_attempt(c, why, &verdict_broken);
        try_next(c);
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
        if (c->stream_broken) {
            if (c->committed) flush_frames(c);
            stream_broken(c);
            goto out;
        }
        if (!c->committed && c->saw_frame && c->out.n && c->w->cfg->error_keywords) {
            /* PROXY_ERROR_KEYWORDS on what would be committed: the frames before and at
             * the commit point (later frames are not searched). */
            char kw[64];
            if (gw_keyword_match(c->w->cfg->error_keywords, buf_slice(&c->out), kw, sizeof kw)) {
                snprintf(c->stream_error, sizeof c->stream_error,
                         "the first event contains the error keyword \"%s\"", kw);
                c->out.n = 0;
                stream_broken(c);
                goto out;
            }
        }
        v = flush_frames(c);
    } else {
        size_t cap =
            (c->status >= 200 && c->status < 300) ? c->w->cfg->max_response_bytes : ERROR_BODY_KEEP;
        if (c->body.n + n <= cap) {
            buf_append(&c->body, p, n);
        } else if (c->status >= 200 && c->status < 300) {
            /* over MAX_RESPONSE_MB: give up on this response */
            upstream_abort(c->xfer);
            c->xfer = NULL;
            if (c->pick) routing_attempt_abandon(&c->rq, c->pick);
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

static bool content_surface(enum gw_surface s)
{
    return s == GW_SURFACE_CHAT || s == GW_SURFACE_COMPLETIONS || s == GW_SURFACE_MESSAGES ||
           s == GW_SURFACE_RESPONSES;
}

/* PROXY_ERROR_KEYWORDS and PROXY_EMPTY_CONTENT_FAIL on a complete 2xx answer (`body` in
 * the client's format). false after failing the attempt over (the next channel is tried
 * or the request answered). */
static bool ok_body_rules(struct gw_call *c, struct slice body)
{
    const struct gateway_config *cfg = c->w->cfg;
    char kw[64], msg[160];
    if (gw_keyword_match(cfg->error_keywords, body, kw, sizeof kw))
        snprintf(msg, sizeof msg, "HTTP %d answer contains the error keyword \"%s\"", c->status,
                 kw);
    else if (cfg->empty_content_fail && content_surface(c->surface) &&
             !gw_body_has_content(c->client_fmt, body))
        snprintf(msg, sizeof msg, "HTTP %d answer without content (PROXY_EMPTY_CONTENT_FAIL)",
                 c->status);
    else
        return true;
    fail_attempt(c, msg, &verdict_broken);
    try_next(c);
    return false;
}

/* A pass-through JSON answer that does not parse (a relay that cut its body, a broken
 * proxy in between). One validating pass (json_scan), no DOM. */
static bool body_is_broken_json(struct gw_call *c)
{
    if (c->content_type[0] && !strstr(c->content_type, "json")) return false;
    struct json_scan scan;
    return json_scan(c->req->pool, c->body.p, c->body.n, &scan) != 0;
}

/* A complete non-stream 2xx answer: converted or passed through, with its usage read. */
static void deliver_body(struct gw_call *c)
{
    if (c->cv) {
        struct buf out = BUF_INIT;
        struct conv_error err;
        if (conv_convert_response(c->cv, buf_slice(&c->body), &out, &err) != 0) {
            buf_free(&out);
            char msg[360];
            snprintf(msg, sizeof msg, "unusable %s answer: %s", api_format_name(c->up_fmt),
                     err.message);
            fail_attempt(c, msg, &verdict_broken);
            try_next(c);
            return;
        }
        if (!ok_body_rules(c, buf_slice(&out))) {
            buf_free(&out);
            return;
        }
        c->usage = c->cv->usage;
        route_success(c);
        respond_with(c, 200, "application/json", buf_slice(&out));
        buf_free(&out);
        record_attempt(c, true, NULL);
        c->want_finalize = true;
        return;
    }
    if (body_is_broken_json(c)) {
        /* a 200 whose JSON is cut or malformed is not an answer: never pass it on */
        fail_attempt(c, "HTTP 2xx with a body that is not valid JSON", &verdict_broken);
        try_next(c);
        return;
    }
    if (!ok_body_rules(c, buf_slice(&c->body))) return;
    if (c->up_fmt == API_MESSAGES || c->up_fmt == API_RESPONSES) {
        usage_scan_body(c->up_fmt, buf_slice(&c->body), &c->usage);
    } else {
        struct openai_usage u;
        struct slice model = SLICE_NULL;
        if (openai_chat_response_info(buf_slice(&c->body), c->req->pool, &u, &model) == 0) {
            c->usage.input_total = u.prompt_tokens;
            c->usage.output_total = u.completion_tokens;
            c->usage.cache_read = u.cached_tokens;
            c->usage.reasoning = u.reasoning_tokens;
            if (model.n) copy_str(c->model_actual, sizeof c->model_actual, model.p, model.n);
        }
    }
    route_success(c);
    respond_body(c);
    record_attempt(c, true, NULL);
    c->want_finalize = true;
}

/* A committed stream that the upstream closed cleanly: NULL when the answer is complete
 * (its closing events were sent, or added to c->out), else why it is not. Pass-through: a
 * missing terminal event ([DONE], message_stop) after the answer's finish is added (the
 * answer is whole, only the marker was lost); a stream that stopped before its finish, or
 * after an error event, is a failure. Converted streams: the converter closes them and
 * says whether they failed. */
static const char *stream_end_state(struct gw_call *c)
{
    if (c->cv) {
        if (conv_stream_end(c->cv, &c->out) != 0)
            log_debug("%s: upstream stream ended without its closing events", c->request_id);
        if (conv_stream_status(c->cv, NULL, NULL) == CONV_STREAM_FAILED)
            return "upstream stream failed";
        return NULL;
    }
    if (c->saw_error) return "upstream stream ended with an error event";
    if (c->saw_terminal || !c->is_sse) return NULL;
    if (c->saw_finish) {
        if (c->client_fmt == API_MESSAGES)
            buf_append_str(&c->out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        else if (c->client_fmt == API_CHAT || c->client_fmt == API_COMPLETIONS)
            buf_append_str(&c->out, "data: [DONE]\n\n");
        else
            return "upstream stream ended before its completion event";
        log_debug("%s: upstream stream ended without its terminal event; added", c->request_id);
        return NULL;
    }
    return "upstream stream ended before the answer was complete";
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
            struct gw_verdict v;
            gw_classify_transport(err, &v);
            route_failure(c, &v);
            record_attempt(c, false, msg);
            end_stream_with_error(c, msg);
        } else {
            const char *broken = stream_end_state(c);
            if (broken) {
                route_failure(c, &verdict_broken);
                record_attempt(c, false, broken);
                if (c->saw_error ||
                    (c->cv && conv_stream_status(c->cv, NULL, NULL) == CONV_STREAM_FAILED)) {
                    /* the client already has the error event */
                    if (c->out.n) {
                        struct slice part = buf_slice(&c->out);
                        http_stream_write(c->req, &part, 1);
                        c->out.n = 0;
                    }
                    http_stream_end(c->req);
                    c->finished = true;
                } else {
                    end_stream_with_error(c, broken);
                }
            } else {
                if (c->out.n) {
                    struct slice part = buf_slice(&c->out);
                    http_stream_write(c->req, &part, 1);
                    c->out.n = 0;
                }
                route_success(c);
                record_attempt(c, true, NULL);
                http_stream_end(c->req);
                c->finished = true;
            }
        }
        c->want_finalize = true;
        goto out;
    }

    if (err != UPSTREAM_OK) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s (%s)", upstream_error_name(err), detail ? detail : "");
        struct gw_verdict v;
        gw_classify_transport(err, &v);
        fail_attempt(c, msg, &v);
        try_next(c);
        goto out;
    }
    if (!c->sse_active && strncasecmp(c->content_type, "text/html", 9) == 0) {
        /* A WAF challenge (solved once, then the same channel again) or an HTML page
         * instead of an API answer: a failure of this channel either way. */
        if (waf_solve(c)) {
            record_attempt(c, false, "WAF challenge (acw_sc__v2) solved; retrying the channel");
            routing_attempt_abandon(&c->rq, c->pick);
            c->wait_ns += clock_mono_ns() - c->t_attempt;
            c->next_cand--;
            try_next(c);
            goto out;
        }
        char msg[64];
        snprintf(msg, sizeof msg, "HTTP %d with an HTML page instead of an API answer", c->status);
        fail_attempt(c, msg, &verdict_broken);
        try_next(c);
        goto out;
    }
    if (c->status >= 200 && c->status < 300) {
        if (c->sse_active) {
            /* A 200 stream that ended before any complete frame: nothing went downstream. */
            fail_attempt(c, "stream ended before its first event", &verdict_broken);
            try_next(c);
            goto out;
        }
        c->wait_ns += clock_mono_ns() - c->t_attempt;
        deliver_body(c);
        goto out;
    }
    struct gw_verdict v;
    gw_classify_status(c->status, buf_slice(&c->body), slice_from(c->retry_after), clock_wall_ms(),
                       &v);
    char msg[300];
    int n = snprintf(msg, sizeof msg, "HTTP %d %s", c->status, v.label);
    error_excerpt(buf_slice(&c->body), msg + n, sizeof msg - (size_t)n);
    if (v.action == GW_FAILOVER) {
        fail_attempt(c, msg, &v);
        try_next(c);
        goto out;
    }
    /* The client's own fault (400, 413, 422, …): the upstream's answer, in the client's
     * shape, its text kept (clients recognise some errors only by their text — Claude
     * Code's mid-conversation `system` probe), never counted against the channel and
     * never failed over. */
    c->wait_ns += clock_mono_ns() - c->t_attempt;
    route_failure(c, &v); /* frees a trial slot; counts nothing */
    record_attempt(c, false, msg);
    if (c->cv) {
        struct buf out = BUF_INIT;
        int status = conv_error_body(c->cv, c->status, buf_slice(&c->body), &out);
        respond_with(c, status, "application/json", buf_slice(&out));
        buf_free(&out);
    } else {
        respond_body(c);
    }
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
    if (bl >= 3 && strcmp(base + bl - 3, "/v1") == 0 && strncmp(path, "/v1/", 4) == 0) path += 3;
    return pool_printf(pool, "%s%s", base, path);
}

/* The upstream path of this attempt. */
static const char *upstream_path(const struct gw_call *c)
{
    const struct channel *ch = c->ch;
    switch (c->surface) {
    case GW_SURFACE_EMBEDDINGS:
        return "/v1/embeddings";
    case GW_SURFACE_IMAGES:
        return "/v1/images/generations";
    case GW_SURFACE_COMPLETIONS:
        if (c->up_fmt == API_COMPLETIONS) return "/v1/completions";
        break;
    case GW_SURFACE_COUNT_TOKENS:
        return pool_printf(c->req->pool, "%s/count_tokens", ch->format_paths[API_MESSAGES]);
    default:
        break;
    }
    return ch->format_paths[c->up_fmt <= API_RESPONSES ? c->up_fmt : API_CHAT];
}

/* Client headers forwarded upstream (an allowlist: DESIGN.md §10 header policy), and the
 * ones forwarded only to a Claude upstream. */
static const char *const forwarded_headers[] = {"user-agent",
                                                "openai-beta",
                                                "x-stainless-lang",
                                                "x-stainless-package-version",
                                                "x-claude-code-session-id",
                                                "x-app",
                                                "session-id",
                                                "thread-id",
                                                "x-client-request-id",
                                                "originator",
                                                NULL};

/* ---------- WAF challenge (AnyRouter-like sites behind Aliyun's acw_sc__v2) ---------- */

static const struct gw_waf_cookie *waf_cookie_for(const struct gw_worker *w, int64_t site_id)
{
    uint64_t now = clock_mono_ns();
    for (unsigned i = 0; i < GW_WAF_COOKIES; i++)
        if (w->waf[i].site_id == site_id && w->waf[i].expires_ns > now) return &w->waf[i];
    return NULL;
}

/* An HTML challenge page instead of an API answer: solve it, keep the cookie for this site
 * (its max-age is an hour; 50 minutes are kept) and say whether to retry the channel. */
static bool waf_solve(struct gw_call *c)
{
    if (c->waf_retried || !acw_challenge_detect(c->body.p, c->body.n)) return false;
    char value[41];
    if (acw_challenge_solve(c->body.p, c->body.n, value) != 0) return false;
    struct gw_worker *w = c->w;
    struct gw_waf_cookie *slot = NULL;
    for (unsigned i = 0; i < GW_WAF_COOKIES && !slot; i++)
        if (w->waf[i].site_id == c->ch->site_id) slot = &w->waf[i];
    if (!slot) slot = &w->waf[w->waf_next++ % GW_WAF_COOKIES];
    slot->site_id = c->ch->site_id;
    memcpy(slot->value, value, sizeof value);
    slot->expires_ns = clock_mono_ns() + 50ull * 60 * 1000000000ull;
    c->waf_retried = true;
    return true;
}

static int build_headers(struct gw_call *c, struct http_header **out, size_t *n_out)
{
    pool_t *pool = c->req->pool;
    size_t cap = 16 + c->ch->n_headers;
    struct http_header *h = pool_alloc(pool, cap * sizeof *h);
    if (!h) return -1;
    size_t n = 0;
    if (c->up_fmt == API_MESSAGES) {
        h[n++] = (struct http_header){SLICE_LIT("x-api-key"), slice_from(c->ch->api_key)};
        struct slice v = http_request_header(c->req, "anthropic-version");
        h[n++] =
            (struct http_header){SLICE_LIT("anthropic-version"), v.p ? v : SLICE_LIT("2023-06-01")};
        struct slice beta = http_request_header(c->req, "anthropic-beta");
        if (beta.p && c->client_fmt == API_MESSAGES)
            h[n++] = (struct http_header){SLICE_LIT("anthropic-beta"), beta};
    } else {
        char *auth = pool_printf(pool, "Bearer %s", c->ch->api_key);
        if (!auth) return -1;
        h[n++] = (struct http_header){SLICE_LIT("Authorization"), slice_from(auth)};
    }
    h[n++] = (struct http_header){SLICE_LIT("Content-Type"), SLICE_LIT("application/json")};
    h[n++] = (struct http_header){SLICE_LIT("Accept"), c->stream ? SLICE_LIT("text/event-stream")
                                                                 : SLICE_LIT("application/json")};
    for (const char *const *f = forwarded_headers; *f; f++) {
        struct slice v = http_request_header(c->req, *f);
        if (v.p) h[n++] = (struct http_header){slice_from(*f), v};
    }
    for (size_t i = 0; i < c->ch->n_headers && n < cap; i++)
        h[n++] = (struct http_header){slice_from(c->ch->headers[i].name),
                                      slice_from(c->ch->headers[i].value)};
    const struct gw_waf_cookie *waf = waf_cookie_for(c->w, c->ch->site_id);
    if (waf && n < cap) {
        char *cookie = pool_printf(pool, "acw_sc__v2=%s", waf->value);
        if (cookie) h[n++] = (struct http_header){SLICE_LIT("Cookie"), slice_from(cookie)};
    }
    *out = h;
    *n_out = n;
    return 0;
}

/* The decoded client request, decoded on first need. false after answering 400. */
static bool ensure_ir(struct gw_call *c)
{
    if (c->ir) return true;
    if (c->decode_rc != 0) { /* decoded on the thread pool: the client's body is invalid */
        respond_final_error(c, c->decode_err.status ? c->decode_err.status : 400,
                            "invalid_request_error", "invalid_request",
                            c->decode_err.message[0] ? c->decode_err.message : "Invalid request.");
        c->want_finalize = true;
        return false;
    }
    struct ir_request *ir = pool_calloc(c->req->pool, sizeof *ir);
    struct conv_error err = {0};
    if (!ir) {
        respond_final_error(c, 503, "server_error", "overloaded", "Out of memory.");
        c->want_finalize = true;
        return false;
    }
    if (conv_request_decode(c->client_fmt, c->req->pool, c->req->body, ir, &err) != 0) {
        respond_final_error(c, err.status ? err.status : 400, "invalid_request_error",
                            "invalid_request", err.message[0] ? err.message : "Invalid request.");
        c->want_finalize = true;
        return false;
    }
    c->ir = ir;
    return true;
}

/* The body of this attempt: the client's (pass-through) or the converted request.
 * false when the attempt cannot be made (already answered or recorded). */
static bool attempt_body(struct gw_call *c, struct slice *body)
{
    if (c->up_fmt == c->client_fmt || c->surface == GW_SURFACE_EMBEDDINGS ||
        c->surface == GW_SURFACE_IMAGES || c->surface == GW_SURFACE_COUNT_TOKENS) {
        *body = c->passthrough_body;
        apply_upstream_model(c, body);
        return true;
    }
    if (!ensure_ir(c)) return false;
    struct conv_error err = {0};
    bool failed;
    if (c->pre_cv && c->pre_fmt == c->up_fmt) { /* encoded on the thread pool */
        c->cv = c->pre_cv;
        c->pre_cv = NULL;
        *body = c->pre_body;
        err = c->pre_err;
        failed = c->pre_rc != 0;
    } else {
        c->cv = conv_new(c->req->pool, c->client_fmt, c->up_fmt, &c->profile, c->ir, c->model);
        failed = !c->cv || conv_encode_request(c->cv, body, &err) != 0;
    }
    if (failed) {
        if (c->cv && err.status == 400) {
            /* the request cannot be expressed for this upstream: the client's problem */
            respond_final_error(c, 400, "invalid_request_error", "invalid_request", err.message);
            c->want_finalize = true;
            return false;
        }
        fail_attempt(c, err.message[0] ? err.message : "could not convert the request",
                     &verdict_not_counted);
        return false;
    }
    apply_upstream_model(c, body);
    return true;
}

/* count_tokens when no Messages channel answered: a local estimate, said so in a header. */
static void count_tokens_estimate(struct gw_call *c)
{
    if (!ensure_ir(c)) return;
    char body[64], ov[32];
    snprintf(body, sizeof body, "{\"input_tokens\":%ld}", conv_count_tokens_estimate(c->ir));
    struct http_header h[5];
    overhead_now(c);
    size_t n = response_headers(c, h, ov, sizeof ov, "application/json");
    h[n++] = (struct http_header){SLICE_LIT("x-metarelay-estimate"), SLICE_LIT("true")};
    c->final_status = 200;
    c->estimated = true; /* the access log says "local", not a format never asked */
    http_respond(c->req, 200, h, n, slice_from(body));
    c->finished = true;
    c->want_finalize = true;
}

static void try_next(struct gw_call *c)
{
    const struct gateway_config *cfg = c->w->cfg;
    bool out_of_time = false;
    while (c->next_cand < c->n_cand) {
        unsigned total_ms = cfg->total_timeout_ms;
        if (c->deadline_ns) {
            uint64_t now = clock_mono_ns();
            /* PROXY_TOTAL_TIMEOUT_SEC spent, or too little of it left for an attempt to
             * be worth starting (under 100 ms): no further attempt. */
            if (now + 100000000u >= c->deadline_ns) {
                out_of_time = true;
                break;
            }
            total_ms = (unsigned)((c->deadline_ns - now) / 1000000u);
        }
        reset_attempt(c);
        c->attempt++;
        size_t k = c->next_cand++;
        c->ch = &c->snap->channels[c->cand[k]];
        c->pick = &c->rq.picks[c->cand_pick[k]];
        if (!routing_attempt_begin(&c->rq, c->pick, clock_mono_ns())) {
            c->attempt--; /* its half-open trial is taken by another request: not an attempt */
            continue;
        }
        c->up_fmt = c->cand_fmt[k];
        c->t_attempt = clock_mono_ns();
        c->t_attempt_wall_ms = clock_wall_ms();
        struct slice body;
        if (!attempt_body(c, &body)) {
            if (c->finished || c->want_finalize) return;
            continue;
        }
        const char *url = join_url(c->req->pool, c->ch->base_url, upstream_path(c));
        struct http_header *h;
        size_t n;
        if (!url || build_headers(c, &h, &n) != 0) break;
        struct upstream_request ur = {
            .method = SLICE_LIT("POST"),
            .url = url,
            .headers = h,
            .n_headers = n,
            .body = body,
            .proxy_url = c->ch->proxy_url,
            .connect_timeout_ms = cfg->connect_timeout_ms,
            .first_byte_timeout_ms = cfg->first_byte_timeout_ms,
            .idle_timeout_ms = cfg->idle_timeout_ms,
            .total_timeout_ms = total_ms, /* what is left of the request's deadline */
        };
        c->xfer = upstream_start(c->w->upstream, &ur, &up_cb, c);
        if (c->xfer) return;
        fail_attempt(c, "could not start the upstream request", &verdict_not_counted);
    }
    if (c->surface == GW_SURFACE_COUNT_TOKENS) {
        count_tokens_estimate(c);
        return;
    }
    /* Every candidate failed. */
    char *msg =
        pool_printf(c->req->pool, "All %d upstream channel%s failed for model '%.*s': %s",
                    c->n_failures, c->n_failures == 1 ? "" : "s", (int)c->model.n, c->model.p,
                    c->failures.n ? c->failures.p : "no channel could be tried");
    if (c->deadline_ns && clock_mono_ns() + 100000000u >= c->deadline_ns) out_of_time = true;
    if (out_of_time)
        respond_final_error(c, 504, "upstream_error", "upstream_timeout",
                            pool_printf(c->req->pool,
                                        "%s (PROXY_TOTAL_TIMEOUT_SEC reached after %d attempt%s)",
                                        msg, c->n_failures, c->n_failures == 1 ? "" : "s"));
    else if (c->n_failures > 0 && c->n_timeouts == c->n_failures)
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
        if (c->pick) routing_attempt_abandon(&c->rq, c->pick);
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

/* Thread pool side: only this request's pool and its read-only inputs are touched. */
static void offload_work(uv_work_t *wk)
{
    struct gw_call *c = wk->data;
    struct ir_request *ir = pool_calloc(c->req->pool, sizeof *ir);
    if (!ir) {
        c->decode_rc = -1;
        c->decode_err.status = 503;
        snprintf(c->decode_err.message, sizeof c->decode_err.message, "Out of memory.");
        return;
    }
    c->decode_rc =
        conv_request_decode(c->client_fmt, c->req->pool, c->req->body, ir, &c->decode_err);
    if (c->decode_rc != 0) return;
    c->ir = ir;
    c->pre_cv = conv_new(c->req->pool, c->client_fmt, c->pre_fmt, &c->profile, ir, c->model);
    c->pre_rc = c->pre_cv ? conv_encode_request(c->pre_cv, &c->pre_body, &c->pre_err) : -1;
}

/* Back on the io thread: go on with the attempts, unless the client left or the worker is
 * stopping meanwhile. */
static void offload_done(uv_work_t *wk, int status)
{
    struct gw_call *c = wk->data;
    c->offloading = false;
    c->busy--;
    if (!c->client_gone && !c->finished) {
        if (status != 0 || c->w->stopping)
            respond_final_error(c, 503, "server_error", "shutting_down",
                                "metarelay is shutting down; retry the request.");
        else {
            c->busy++;
            try_next(c);
            c->busy--;
        }
        if (c->finished) c->want_finalize = true;
    }
    if (c->want_finalize || c->client_gone || c->finished) finalize(c);
}

/* Whether the first converting candidate should be prepared on the thread pool; starts it. */
static bool offload_conversion(struct gw_call *c)
{
    if (c->req->body.n <= CONVERT_OFFLOAD_BYTES || c->surface == GW_SURFACE_EMBEDDINGS ||
        c->surface == GW_SURFACE_IMAGES || c->surface == GW_SURFACE_COUNT_TOKENS)
        return false;
    size_t k = 0;
    while (k < c->n_cand && c->cand_fmt[k] == c->client_fmt) k++;
    if (k == c->n_cand) return false; /* every candidate passes the body through */
    c->pre_fmt = c->cand_fmt[k];
    c->offload.data = c;
    if (uv_queue_work(&c->w->loop, &c->offload, offload_work, offload_done) != 0) return false;
    c->offloading = true;
    c->busy++;
    return true;
}

void gw_proxy_abort_all(struct gw_worker *w)
{
    /* A request whose body is being converted on the thread pool is ended by offload_done
     * (its pool is in use there); every other one now. */
    struct gw_call *c = w->calls;
    while (c && c->offloading) c = c->next;
    while (c) {
        if (c->xfer) {
            upstream_abort(c->xfer);
            c->xfer = NULL;
            if (c->pick) routing_attempt_abandon(&c->rq, c->pick);
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
        c = w->calls;
        while (c && c->offloading) c = c->next;
    }
}

/* ---------- request intake ---------- */

static enum api_format client_format_of(enum gw_surface s)
{
    switch (s) {
    case GW_SURFACE_MESSAGES:
    case GW_SURFACE_COUNT_TOKENS:
        return API_MESSAGES;
    case GW_SURFACE_RESPONSES:
        return API_RESPONSES;
    case GW_SURFACE_COMPLETIONS:
        return API_COMPLETIONS;
    default:
        return API_CHAT;
    }
}

/* How channel `ch` is asked for a request of this surface: the client's own format when it
 * speaks it, else the best it speaks; false when it cannot serve the surface at all. */
static bool channel_format(enum gw_surface s, enum api_format client, const struct channel *ch,
                           enum api_format *out)
{
    unsigned f = ch->formats;
    switch (s) {
    case GW_SURFACE_EMBEDDINGS:
    case GW_SURFACE_IMAGES: /* OpenAI-only endpoints */
        *out = API_CHAT;
        return f & API_FORMAT_BIT(API_CHAT);
    case GW_SURFACE_COUNT_TOKENS:
        *out = API_MESSAGES;
        return f & API_FORMAT_BIT(API_MESSAGES);
    case GW_SURFACE_COMPLETIONS:
        if (f & API_FORMAT_BIT(API_CHAT)) {
            *out = API_COMPLETIONS; /* OpenAI-compatible relays serve /v1/completions */
            return true;
        }
        break;
    default:
        if (f & API_FORMAT_BIT(client)) {
            *out = client;
            return true;
        }
        break;
    }
    static const enum api_format preference[] = {API_CHAT, API_MESSAGES, API_RESPONSES};
    for (size_t i = 0; i < 3; i++)
        if (f & API_FORMAT_BIT(preference[i])) {
            *out = preference[i];
            return true;
        }
    return false;
}

/* Orders the route's channels: healthy first (routing), then those that speak the
 * client's format before those that need a conversion (stable). */
static void order_candidates(struct gw_call *c, unsigned max)
{
    size_t n = routing_select(&c->rq, clock_mono_ns(), MAX_CANDIDATES);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n && c->n_cand < max; i++) {
            uint32_t ch = c->rq.picks[i].channel;
            enum api_format f;
            if (!channel_format(c->surface, c->client_fmt, &c->snap->channels[ch], &f)) continue;
            bool native = f == c->client_fmt ||
                          (c->client_fmt == API_COMPLETIONS && f == API_COMPLETIONS) ||
                          c->surface == GW_SURFACE_EMBEDDINGS || c->surface == GW_SURFACE_IMAGES ||
                          c->surface == GW_SURFACE_COUNT_TOKENS;
            if (native != (pass == 0)) continue;
            c->cand[c->n_cand] = ch;
            c->cand_pick[c->n_cand] = (uint8_t)i;
            c->cand_fmt[c->n_cand] = f;
            c->n_cand++;
        }
}

/* Makes the pass-through body ask for the usage chunk of a chat/completions stream when
 * the client did not: splices `stream_options` (adding it, or setting include_usage inside
 * it). Returns 0, or -1 with an error answered. */
static int prepare_body(struct gw_call *c, const struct json_scan *scan)
{
    http_request_t *req = c->req;
    c->passthrough_body = req->body;
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
    if (!new_value || json_splice(req->pool, req->body.p, req->body.n, scan, "stream_options",
                                  new_value, &c->passthrough_body) != 0) {
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
        gw_reject(req, 400, "invalid_request_error", "invalid_json",
                  msg ? msg : "Invalid JSON body.");
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
        gw_reject(req, 400, "invalid_request_error", "invalid_value",
                  "'stream' must be a boolean.");
        return;
    }
    if (surface == GW_SURFACE_COUNT_TOKENS) stream = false;
    struct route_match match;
    routing_resolve(w->snap, model, &match);
    if (!match.route || match.route->n_channels == 0) {
        char *msg = pool_printf(
            req->pool, "The model '%.*s' does not exist or no enabled channel serves it%s%s%s",
            (int)(model.n > 200 ? 200 : model.n), model.p,
            match.error_route ? " (route pattern '" : ".",
            match.error_route ? match.error_route->model : "",
            match.error_route ? "' hit its match limit)." : "");
        gw_reject(req, 404, "invalid_request_error", "model_not_found",
                  msg ? msg : "Unknown model.");
        return;
    }

    struct gw_call *c = calloc(1, sizeof *c);
    if (!c) {
        gw_reject(req, 503, "server_error", "overloaded", "Out of memory; retry the request.");
        return;
    }
    c->w = w;
    c->req = req;
    c->surface = surface;
    c->client_fmt = client_format_of(surface);
    c->up_fmt = c->client_fmt;
    copy_str(c->model_copy, sizeof c->model_copy, model.p, model.n);
    c->model = slice_from(c->model_copy);
    copy_str(c->path, sizeof c->path, req->path.p, req->path.n);
    copy_str(c->client_ip, sizeof c->client_ip, req->client_ip, strlen(req->client_ip));
    const char *rid = gw_request_id(req);
    copy_str(c->request_id, sizeof c->request_id, rid, strlen(rid));
    c->start_ns = req->start_ns;
    if (w->cfg->total_timeout_ms)
        c->deadline_ns = c->start_ns + (uint64_t)w->cfg->total_timeout_ms * 1000000u;
    c->stream = stream;
    c->attempt = -1;
    c->first_byte_ms = -1;
    ir_usage_unknown(&c->usage);
    ir_profile_defaults(&c->profile);
    c->profile.anthropic_version = http_request_header(req, "anthropic-version");
    c->snap = w->snap;
    snapshot_ref(c->snap);
    unsigned max = w->cfg->max_attempts ? w->cfg->max_attempts : 3;
    if (max > MAX_CANDIDATES) max = MAX_CANDIDATES;
    routing_request_init(&c->rq, c->snap, c->model,
                         routing_session_key(req->pool, &scan,
                                             http_request_header(req, "x-claude-code-session-id"),
                                             http_request_header(req, "session-id"),
                                             http_request_header(req, "thread-id")));
    order_candidates(c, max);
    link_call(c);
    http_request_on_abort(req, on_abort, c);
    if (prepare_body(c, &scan) != 0) {
        c->finished = true; /* prepare_body answered */
        c->final_status = 400;
        finalize(c);
        return;
    }
    c->busy++;
    if (c->rq.n_picks == 0 && surface != GW_SURFACE_COUNT_TOKENS) {
        /* routing excluded every channel: cooling down (a provider asked us to wait, or
         * their one trial is in flight) or disabled */
        char *msg = pool_printf(req->pool,
                                "No channel for '%.*s' is available right now: every one is "
                                "cooling down after failures or disabled. Retry later.",
                                (int)c->model.n, c->model.p);
        respond_final_error(c, 503, "server_error", "no_available_channel", msg);
        c->want_finalize = true;
    } else if (c->n_cand == 0 && surface != GW_SURFACE_COUNT_TOKENS) {
        char *msg = pool_printf(req->pool,
                                "No channel serving '%.*s' speaks a format this endpoint can "
                                "use (%s).",
                                (int)c->model.n, c->model.p, api_format_name(c->client_fmt));
        respond_final_error(c, 404, "invalid_request_error", "model_not_found", msg);
        c->want_finalize = true;
    } else if (!offload_conversion(c)) {
        try_next(c);
    }
    c->busy--;
    if (c->want_finalize) finalize(c);
}
