/* reply.c — how fakerelay answers: whole JSON bodies, OpenAI-shaped errors, and the
 * asynchronous answers (SSE streams paced by a uv timer, deferred handlers, silence,
 * cut and reset connections).
 *
 * An asynchronous answer owns a `struct fr_async` (malloc'd: its timer handle must
 * outlive the request pool until uv_close calls back). Every way a request ends goes
 * through detach(), which stops the timer and forgets the request before the request is
 * finished (finishing destroys the pool, and the call with it). The client leaving
 * (abort callback, or a write answering -1) is counted for /_fake/stats. Finishing a
 * request that has no complete answer makes the server close the connection at once:
 * that is how the reset and cut faults end it. SSE frames are
 * written directly as "[event: <name>\n]data: <payload>\n\n" (no shared SSE writer
 * exists yet). Errors take the shape of the surface answering (OpenAI or Claude). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "fakerelay.h"

#define BATCH_FRAMES 64

struct fr_async {
    uv_timer_t timer;
    http_request_t *req;  /* NULL once the request is finished */
    struct fr_call *call; /* lives in req's pool: NULL with req */
    struct fr_stats *stats;
    fr_handler_fn later_fn; /* handler to run when the timer fires (deferred answer) */
    struct fr_reply *reply; /* stream being sent (in the pool) */
    size_t next;            /* next frame to write */
    size_t end;             /* frames written before the end (fewer when cut) */
    bool cut;               /* end by closing the connection, without the last chunk */
    bool stall;             /* stop sending, keep the connection open (the stall fault) */
    bool waited;            /* the pause before frame `next` is over */
    bool waiting_drain;
    unsigned cut_waited_ms;
};

static void async_free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Forgets the request (the caller finishes it right after) and releases the timer. */
static void detach(struct fr_async *a)
{
    if (!a || !a->req) return;
    a->call->async = NULL;
    a->req = NULL;
    a->call = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, async_free_cb);
}

static void call_detach(struct fr_call *call)
{
    detach(call->async);
}

/* The client went away before its answer was finished. */
static void client_gone(struct fr_async *a)
{
    if (!a->req) return;
    http_request_t *req = a->req;
    fr_stats_client_abort(a->stats);
    detach(a);
    http_request_finish(req);
}

static void on_abort(http_request_t *req, void *arg)
{
    (void)req;
    client_gone(arg);
}

static struct fr_async *async_get(struct fr_call *call)
{
    if (call->async) return call->async;
    struct fr_async *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    uv_timer_init(&call->worker->loop, &a->timer);
    a->timer.data = a;
    a->req = call->req;
    a->call = call;
    a->stats = call->worker->app->stats;
    call->async = a;
    http_request_on_abort(call->req, on_abort, a);
    return a;
}

/* ---- whole answers ---- */

struct slice fr_json_dump(struct fr_call *call, json_t *j)
{
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(9);
    size_t n = j ? json_dumpb(j, NULL, 0, flags) : 0;
    char *p = n ? pool_alloc(call->req->pool, n) : NULL;
    if (p) n = json_dumpb(j, p, n, flags);
    json_decref(j);
    if (!p) return SLICE_LIT("{\"error\":{\"message\":\"fakerelay: out of memory\"}}");
    return (struct slice){p, n};
}

static void respond(http_request_t *req, const struct fr_config *cfg, int status,
                    const char *content_type, struct slice body, const struct http_header *extra,
                    size_t n_extra)
{
    struct http_header h[4] = {
        {SLICE_LIT("Content-Type"), slice_from(content_type)},
        {SLICE_LIT("x-fakerelay-name"), slice_from(cfg->name)},
    };
    size_t n = 2;
    for (size_t i = 0; i < n_extra && n < 4; i++) h[n++] = extra[i];
    http_respond(req, status, h, n, body);
}

void fr_reply_json(struct fr_call *call, int status, struct slice json)
{
    http_request_t *req = call->req;
    const struct fr_config *cfg = call->cfg;
    call_detach(call);
    respond(req, cfg, status, "application/json", json, NULL, 0);
}

static json_t *error_json(const char *type, const char *code, const char *message)
{
    return json_pack("{s:{s:s, s:s, s:n, s:o}}", "error", "message", message, "type", type, "param",
                     "code", code ? json_string(code) : json_null());
}

const char *fr_claude_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
    case 504:
        return "timeout_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 529:
    case 503:
        return "overloaded_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

static bool is_claude_type(const char *t)
{
    static const char *const types[] = {
        "invalid_request_error", "authentication_error", "billing_error", "permission_error",
        "not_found_error",       "rate_limit_error",     "timeout_error", "api_error",
        "overloaded_error",      "request_too_large",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (t && strcmp(t, types[i]) == 0) return true;
    return false;
}

void fr_respond_error_shaped(http_request_t *req, const struct fr_config *cfg, enum fr_shape shape,
                             int status, const char *type, const char *code, const char *message)
{
    json_t *j;
    if (shape == FR_SHAPE_CLAUDE)
        j = json_pack("{s:s, s:{s:s, s:s}, s:n}", "type", "error", "error", "type",
                      is_claude_type(type) ? type : fr_claude_error_type(status), "message",
                      message, "request_id");
    else
        j = error_json(type, code, message);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct slice body = s ? slice_from(s) : SLICE_LIT("{\"error\":{\"message\":\"error\"}}");
    respond(req, cfg, status, "application/json", body, NULL, 0);
    free(s);
}

void fr_respond_error(http_request_t *req, const struct fr_config *cfg, int status,
                      const char *type, const char *code, const char *message)
{
    fr_respond_error_shaped(req, cfg, FR_SHAPE_OPENAI, status, type, code, message);
}

void fr_reply_error(struct fr_call *call, int status, const char *type, const char *code,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_request_t *req = call->req;
    const struct fr_config *cfg = call->cfg;
    enum fr_shape shape = call->shape;
    call_detach(call);
    fr_respond_error_shaped(req, cfg, shape, status, type, code, msg);
}

/* ---- ending a connection ---- */

void fr_reply_reset(struct fr_call *call)
{
    http_request_t *req = call->req;
    call_detach(call);
    http_request_finish(req); /* unanswered: the server closes the connection at once */
}

#define CUT_POLL_MS 1
#define CUT_MAX_MS  5000

/* The cut fault: ends a started chunked answer without its last chunk, once what was
 * written has left the write queue (finishing drops queued bytes, and a cut must
 * deliver exactly the chunks before it). Polls the queue; gives up waiting after
 * CUT_MAX_MS (a client that does not read). */
static void on_cut_poll(uv_timer_t *t)
{
    struct fr_async *a = t->data;
    if (!a->req) return;
    a->cut_waited_ms += CUT_POLL_MS;
    if (http_request_write_queue(a->req) > 0 && a->cut_waited_ms < CUT_MAX_MS) {
        uv_timer_start(&a->timer, on_cut_poll, CUT_POLL_MS, 0);
        return;
    }
    http_request_t *req = a->req;
    detach(a);
    http_request_finish(req); /* unfinished stream: the server closes the connection */
}

static void cut_stream(struct fr_async *a)
{
    a->cut_waited_ms = 0;
    if (http_request_write_queue(a->req) > 0) {
        uv_timer_start(&a->timer, on_cut_poll, CUT_POLL_MS, 0);
        return;
    }
    http_request_t *req = a->req;
    detach(a);
    http_request_finish(req);
}

/* ---- deferred answers and silence ---- */

static void on_later(uv_timer_t *t)
{
    struct fr_async *a = t->data;
    fr_handler_fn fn = a->later_fn;
    a->later_fn = NULL;
    if (a->req && fn) fn(a->call);
}

void fr_reply_later(struct fr_call *call, unsigned ms, fr_handler_fn fn)
{
    struct fr_async *a = async_get(call);
    if (!a) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    a->later_fn = fn;
    uv_timer_start(&a->timer, on_later, ms, 0);
}

void fr_reply_silence(struct fr_call *call)
{
    if (!async_get(call)) fr_reply_error(call, 500, "server_error", NULL, "out of memory");
    /* Nothing else: on_abort finishes the request when the client (or shutdown) ends it. */
}

/* ---- streams ---- */

static void pump(struct fr_async *a);

static void on_pause_over(uv_timer_t *t)
{
    struct fr_async *a = t->data;
    a->waited = true;
    pump(a);
}

static void on_drain(http_request_t *req, void *arg)
{
    (void)req;
    struct fr_async *a = arg;
    if (!a->req || !a->waiting_drain) return;
    a->waiting_drain = false;
    pump(a);
}

static bool needs_pause(const struct fr_async *a, size_t i)
{
    const struct fr_reply *r = a->reply;
    return a->call->chunk_delay_ms > 0 && i >= r->first_content &&
           i < r->first_content + r->n_content;
}

/* Writes frames until the end, a pause, backpressure or the client leaving. A frame is
 * "data: <payload>\n\n", preceded by "event: <name>\n" when the reply names it. */
static void pump(struct fr_async *a)
{
    static const struct slice ev = SLICE_LIT("event: "), ev_end = SLICE_LIT("\n"),
                              prefix = SLICE_LIT("data: "), suffix = SLICE_LIT("\n\n");
    while (a->req && a->next < a->end) {
        if (needs_pause(a, a->next) && !a->waited) {
            uv_timer_start(&a->timer, on_pause_over, a->call->chunk_delay_ms, 0);
            return;
        }
        struct slice parts[6 * BATCH_FRAMES];
        size_t n = 0;
        do {
            const char *name = a->reply->events ? a->reply->events[a->next] : NULL;
            if (name) {
                parts[n++] = ev;
                parts[n++] = slice_from(name);
                parts[n++] = ev_end;
            }
            parts[n++] = prefix;
            parts[n++] = a->reply->frames[a->next++];
            parts[n++] = suffix;
            a->waited = false;
        } while (a->next < a->end && n < 6 * (BATCH_FRAMES - 1) && !needs_pause(a, a->next));
        int rc = http_stream_write(a->req, parts, n);
        if (!a->req) return; /* the abort callback ran inside the write */
        if (rc < 0) {
            client_gone(a);
            return;
        }
        if (rc > 0) {
            a->waiting_drain = true;
            return;
        }
    }
    if (!a->req) return;
    if (a->stall) return; /* nothing more, ever: on_abort ends it when the client leaves */
    if (a->cut) {
        cut_stream(a);
        return;
    }
    http_request_t *req = a->req;
    detach(a);
    http_stream_end(req);
}

/* The stream-error fault: keeps the frames before the cut point, then the reply's error
 * tail (or an OpenAI-shaped error frame), and the stream ends normally. False when out
 * of memory. */
static bool splice_error_tail(struct fr_call *call, struct fr_reply *r)
{
    size_t k = call->cut_after < r->n_content ? call->cut_after : r->n_content;
    size_t keep = r->first_content + k;
    if (keep > r->n_frames) keep = r->n_frames;
    struct slice deflt;
    struct slice *tail = r->tail;
    size_t n_tail = r->n_tail;
    if (!tail) {
        deflt = fr_json_dump(
            call,
            json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message",
                      "fakerelay: injected fault stream-error, the upstream failed mid-stream",
                      "type", "server_error", "param", "code"));
        tail = &deflt;
        n_tail = 1;
    }
    pool_t *pool = call->req->pool;
    struct slice *frames = pool_calloc(pool, (keep + n_tail) * sizeof *frames);
    const char **events = pool_calloc(pool, (keep + n_tail) * sizeof *events);
    if (!frames || !events) return false;
    for (size_t i = 0; i < keep; i++) {
        frames[i] = r->frames[i];
        events[i] = r->events ? r->events[i] : NULL;
    }
    for (size_t i = 0; i < n_tail; i++) {
        frames[keep + i] = tail[i];
        events[keep + i] = r->tail_events && r->tail ? r->tail_events[i] : NULL;
    }
    r->frames = frames;
    r->events = events;
    r->n_frames = keep + n_tail;
    r->n_content = k;
    return true;
}

static void send_whole(struct fr_call *call, struct fr_reply *r)
{
    const char *ct = r->content_type ? r->content_type : "application/json";
    if (call->fault == FR_FAULT_BAD_JSON) r->body.n /= 2; /* a JSON body cut in half */
    if (call->fault != FR_FAULT_CUT && call->fault != FR_FAULT_STALL) {
        http_request_t *req = call->req;
        call_detach(call);
        respond(req, call->cfg, r->status, ct, r->body, NULL, 0);
        return;
    }
    /* cut: the first half of the body in a chunked answer, then the connection ends. */
    struct fr_async *a = async_get(call);
    if (!a) {
        fr_reply_error(call, 500, "server_error", NULL, "out of memory");
        return;
    }
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), slice_from(ct)},
        {SLICE_LIT("x-fakerelay-name"), slice_from(call->cfg->name)},
    };
    http_request_t *req = call->req;
    if (http_stream_start(req, r->status, h, 2) < 0 || !a->req) {
        client_gone(a);
        return;
    }
    struct slice half = {r->body.p, r->body.n / 2};
    int rc = http_stream_write(req, &half, 1);
    if (!a->req) return;
    if (rc < 0) {
        client_gone(a);
        return;
    }
    if (call->fault == FR_FAULT_STALL) return; /* half a body, then silence */
    cut_stream(a);
}

void fr_reply_send(struct fr_call *call, struct fr_reply *r)
{
    if (!r->sse) {
        send_whole(call, r);
        return;
    }
    struct fr_async *a = async_get(call);
    if (!a) {
        fr_reply_error(call, 500, "server_error", NULL, "out of memory");
        return;
    }
    if (call->fault == FR_FAULT_STREAM_ERROR && !splice_error_tail(call, r)) {
        fr_reply_error(call, 500, "server_error", NULL, "out of memory");
        return;
    }
    a->reply = r;
    a->next = 0;
    a->end = r->n_frames;
    if (call->fault == FR_FAULT_BAD_JSON && r->n_frames > 0) {
        size_t i = r->n_content ? r->first_content : 0;
        r->frames[i].n /= 2; /* one frame whose JSON stops half way */
    }
    if (call->fault == FR_FAULT_CUT || call->fault == FR_FAULT_STALL) {
        size_t k = call->cut_after < r->n_content ? call->cut_after : r->n_content;
        a->end = r->first_content + k;
        a->cut = call->fault == FR_FAULT_CUT;
        a->stall = call->fault == FR_FAULT_STALL;
    }
    if (call->fault == FR_FAULT_NO_DONE && a->end > 0)
        a->end--; /* the final frame ([DONE], message_stop, response.completed) never comes */
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("text/event-stream")},
        {SLICE_LIT("Cache-Control"), SLICE_LIT("no-cache")},
        {SLICE_LIT("x-fakerelay-name"), slice_from(call->cfg->name)},
    };
    http_request_on_drain(call->req, on_drain, a);
    if (http_stream_start(call->req, r->status, h, 3) < 0) {
        client_gone(a);
        return;
    }
    pump(a);
}
