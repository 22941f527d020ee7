/* server.c — fakerelay's workers and request dispatch.
 *
 * Each worker is one thread with its own uv loop and its own metarelay http_server on
 * the shared port (the server sets SO_REUSEPORT). The dispatcher sends /_fake/… to the
 * control surface and everything else to the route tables of the emulated surfaces:
 * it checks the key, reads the x-fake-* request knobs, parses a JSON body, picks the
 * fault for the request and calls the route's handler. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "fakerelay.h"
#include "platform.h"

/* Built without it, the server offers no connection counters: the reference is weak so
 * fakerelay still links, and /_fake/stats then reports them as null. */
#pragma weak http_server_get_counters

static const struct fr_surface *const surfaces[] = {
    &fr_openai_surface,
    &fr_claude_surface,
    &fr_responses_surface,
};

static _Atomic uint64_t request_seq; /* shared: ids of replies, process-wide */

/* ---- request knobs ---- */

/* Reads header `name` as an unsigned ≤ max into *out (left alone when absent).
 * False (after answering 400) when present but not a number. */
static bool knob(http_request_t *req, const struct fr_config *cfg, const char *name, unsigned max,
                 unsigned *out)
{
    struct slice v = http_request_header(req, name);
    if (!v.p) return true;
    unsigned long long n;
    if (!slice_to_u64(slice_trim(v), &n) || n > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "fakerelay: header %s wants an integer between 0 and %u", name,
                 max);
        fr_respond_error(req, cfg, 400, "invalid_request_error", "invalid_fake_header", msg);
        return false;
    }
    *out = (unsigned)n;
    return true;
}

static bool authorized(const http_request_t *req, const char *key)
{
    struct slice want = slice_from(key);
    struct slice auth = slice_trim(http_request_header(req, "authorization"));
    if (auth.n > 7 && slice_ieq((struct slice){auth.p, 7}, SLICE_LIT("Bearer "))) {
        struct slice got = slice_trim((struct slice){auth.p + 7, auth.n - 7});
        if (slice_eq(got, want)) return true;
    }
    struct slice xkey = slice_trim(http_request_header(req, "x-api-key"));
    return xkey.p && slice_eq(xkey, want);
}

static void json_decref_cb(void *j)
{
    json_decref(j);
}

/* Parses the JSON body into call->body and reads model / stream / include_usage.
 * False (after answering 400) when the body is not a JSON object. */
static bool parse_body(struct fr_call *call)
{
    http_request_t *req = call->req;
    json_error_t err;
    json_t *j =
        json_loadb(req->body.p ? req->body.p : "", req->body.n, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "We could not parse the JSON body of your request: %s (at byte %d)",
                       err.text, err.position);
        return false;
    }
    if (pool_cleanup(req->pool, json_decref_cb, j) != 0) {
        fr_reply_error(call, 500, "server_error", NULL, "out of memory");
        return false;
    }
    if (!json_is_object(j)) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "The request body must be a JSON object.");
        return false;
    }
    call->body = j;
    json_t *m = json_object_get(j, "model");
    if (m && !json_is_string(m)) {
        fr_reply_error(call, 400, "invalid_request_error", NULL, "'model' must be a string.");
        return false;
    }
    call->model = m ? json_string_value(m) : NULL;
    call->stream = json_is_true(json_object_get(j, "stream"));
    json_t *so = json_object_get(j, "stream_options");
    call->include_usage = json_is_object(so) && json_is_true(json_object_get(so, "include_usage"));
    return true;
}

static void stats_end_cb(void *st)
{
    fr_stats_end(st);
}

/* The route for method + path among the surfaces this instance speaks (--formats); a
 * route of a format it does not speak is unknown, as on a real relay. *shape is the
 * error shape of the surface owning the path (OpenAI when none does). */
static const struct fr_route *find_route(const struct fr_config *cfg, struct slice method,
                                         struct slice path, bool *path_known, enum fr_shape *shape)
{
    *path_known = false;
    *shape = FR_SHAPE_OPENAI;
    for (size_t s = 0; s < sizeof surfaces / sizeof surfaces[0]; s++)
        for (size_t i = 0; i < surfaces[s]->n_routes; i++) {
            const struct fr_route *r = &surfaces[s]->routes[i];
            if (!slice_eq_str(path, r->path)) continue;
            *shape = surfaces[s]->shape;
            if (r->formats && !(r->formats & cfg->formats)) continue;
            *path_known = true;
            if (slice_eq_str(method, r->method)) return r;
        }
    return NULL;
}

static void on_request(http_request_t *req, void *ud)
{
    struct fr_worker *w = ud;
    const struct fr_config *cfg = &w->app->cfg;
    struct fr_stats *st = w->app->stats;

    if (cfg->verbose)
        log_debug("worker %u: %.*s %.*s", w->id, (int)req->method.n, req->method.p,
                  (int)req->target.n, req->target.p);
    if (slice_starts_with(req->path, "/_fake/")) {
        fr_control_dispatch(w, req);
        return;
    }
    fr_stats_request(st, req);
    fr_stats_begin(st);
    if (pool_cleanup(req->pool, stats_end_cb, st) != 0) {
        fr_respond_error(req, cfg, 500, "server_error", NULL, "out of memory");
        return;
    }

    /* The emulated platform's management API, challenge and relay key check. */
    if (fr_platform_dispatch(w, req)) return;

    bool path_known;
    enum fr_shape shape;
    const struct fr_route *route = find_route(cfg, req->method, req->path, &path_known, &shape);
    if (!route) {
        char msg[256];
        if (shape == FR_SHAPE_CLAUDE)
            snprintf(msg, sizeof msg, path_known ? "Method Not Allowed" : "Not Found");
        else
            snprintf(msg, sizeof msg, "Invalid URL (%.*s %.*s)", (int)req->method.n, req->method.p,
                     (int)(req->path.n > 180 ? 180 : req->path.n), req->path.p);
        /* Claude: the type follows the status (not_found_error) */
        fr_respond_error_shaped(req, cfg, shape, path_known ? 405 : 404,
                                shape == FR_SHAPE_CLAUDE ? NULL : "invalid_request_error", NULL,
                                msg);
        return;
    }
    if (cfg->key && !w->app->platform && !authorized(req, cfg->key)) {
        fr_respond_error_shaped(
            req, cfg, shape, 401,
            shape == FR_SHAPE_CLAUDE ? "authentication_error" : "invalid_request_error",
            "invalid_api_key",
            shape == FR_SHAPE_CLAUDE ? "invalid x-api-key"
                                     : "Incorrect API key provided. You can find your API key at "
                                       "https://platform.openai.com/account/api-keys.");
        return;
    }

    struct fr_call *call = pool_calloc(req->pool, sizeof *call);
    if (!call) {
        fr_respond_error(req, cfg, 500, "server_error", NULL, "out of memory");
        return;
    }
    call->req = req;
    call->worker = w;
    call->cfg = cfg;
    call->seq = atomic_fetch_add_explicit(&request_seq, 1, memory_order_relaxed) + 1;
    call->shape = shape;
    call->chunks = cfg->chunks;
    call->chunk_delay_ms = cfg->chunk_delay_ms;
    call->delay_ms = cfg->delay_ms;
    call->cut_after = cfg->cut_after;
    if (!knob(req, cfg, "x-fake-chunks", 100000, &call->chunks) ||
        !knob(req, cfg, "x-fake-chunk-delay-ms", 600000, &call->chunk_delay_ms) ||
        !knob(req, cfg, "x-fake-delay-ms", 600000, &call->delay_ms) ||
        !knob(req, cfg, "x-fake-cut-after", 100000, &call->cut_after))
        return;

    /* Fault: the header wins, then the model's name, then --fault. */
    struct slice fh = slice_trim(http_request_header(req, "x-fake-fault"));
    if (fh.p && fh.n && !slice_eq_str(fh, "none") && !fr_fault_parse(fh, &call->fault)) {
        fr_reply_error(call, 400, "invalid_request_error", "invalid_fake_fault",
                       "fakerelay: unknown fault \"%.*s\" (known: 500 429 429-no-retry-after 503 "
                       "529 reset silence slow-first-byte cut bad-json malformed stall no-done "
                       "stream-error context-length content-filter quota empty)",
                       (int)(fh.n > 64 ? 64 : fh.n), fh.p);
        return;
    }
    if (route->json_body && !parse_body(call)) return;
    if (call->fault == FR_FAULT_NONE && call->model) fr_fault_from_model(call->model, &call->fault);
    /* A scheduled --fault (--fail-first, --flap-period) counts and hits POST requests only,
     * so /v1/models keeps working while the relay is registered. */
    bool scheduled = cfg->fail_first || cfg->flap_period;
    if (call->fault == FR_FAULT_NONE && cfg->fault &&
        (!scheduled || (route->json_body && fr_fault_scheduled(w->app))))
        fr_fault_parse(slice_from(cfg->fault), &call->fault);
    if (call->model) fr_stats_model(st, call->model);
    if (call->fault != FR_FAULT_NONE) fr_stats_fault(st, fr_fault_name(call->fault));

    if (fr_fault_apply(call, route->fn)) return;
    route->fn(call);
}

/* ---- workers ---- */

static void on_stop(uv_async_t *a)
{
    struct fr_worker *w = a->data;
    pthread_mutex_lock(&w->app->servers_lock);
    http_server_t *s = w->server;
    w->server = NULL;
    pthread_mutex_unlock(&w->app->servers_lock);
    if (s) http_server_close(s);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *worker_main(void *arg)
{
    struct fr_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* The server sets SO_REUSEPORT, so a second process on a busy port would silently share
 * it (and a test would talk to the wrong relay). A plain bind without that option fails
 * on a port someone listens on: try one first. 0, or -1 after logging why. */
static int port_free(const char *host, int port)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return 0; /* not an address: the server reports it */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT is fine */
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc = bind(fd, (struct sockaddr *)&ss, len);
    int err = errno;
    close(fd);
    if (rc == 0) return 0;
    log_error("fakerelay: cannot listen on %s:%d: %s", host, port, strerror(err));
    return -1;
}

int fr_workers_create(struct fr_app *app)
{
    const struct fr_config *cfg = &app->cfg;
    app->workers = calloc(cfg->workers, sizeof *app->workers);
    if (!app->workers) return -1;
    app->port = cfg->port;
    if (cfg->port != 0 && port_free(cfg->host, cfg->port) != 0) return -1;
    for (unsigned i = 0; i < cfg->workers; i++) {
        struct fr_worker *w = &app->workers[i];
        w->app = app;
        w->id = i;
        if (uv_loop_init(&w->loop) != 0) {
            log_error("fakerelay: uv_loop_init failed");
            return -1;
        }
        app->n_workers = i + 1;
        uv_async_init(&w->loop, &w->stop, on_stop);
        w->stop.data = w;
        struct http_server_config sc = {
            .host = cfg->host,
            .port = app->port,
            .max_body_bytes = 64ull << 20,
            .header_timeout_ms = 10000,
            .body_timeout_ms = 600000,
            .body_idle_timeout_ms = 30000,
            .keepalive_timeout_ms = 75000,
            .max_connections = 100000,
            .max_connections_per_ip = 100000,
        };
        struct http_handlers h = {.on_headers = NULL, .on_request = on_request, .ud = w};
        const char *err = NULL;
        w->server = http_server_start(&w->loop, &sc, &h, &err);
        if (!w->server) {
            log_error("fakerelay: cannot listen on %s:%d: %s", cfg->host, app->port,
                      err ? err : "unknown error");
            return -1;
        }
        if (i == 0) app->port = http_server_port(w->server);
    }
    return 0;
}

int fr_workers_run(struct fr_app *app)
{
    for (unsigned i = 0; i < app->n_workers; i++) {
        struct fr_worker *w = &app->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_error("fakerelay: cannot start worker thread %u", i);
            return -1;
        }
        w->thread_started = true;
    }
    return 0;
}

void fr_workers_stop(struct fr_app *app)
{
    for (unsigned i = 0; i < app->n_workers; i++) {
        struct fr_worker *w = &app->workers[i];
        if (w->thread_started) {
            uv_async_send(&w->stop);
        } else {
            on_stop(&w->stop); /* never ran: close here, on this thread */
            uv_run(&w->loop, UV_RUN_DEFAULT);
        }
    }
    for (unsigned i = 0; i < app->n_workers; i++) {
        struct fr_worker *w = &app->workers[i];
        if (w->thread_started) pthread_join(w->thread, NULL);
        if (uv_loop_close(&w->loop) != 0) log_warn("fakerelay: worker %u loop not empty", i);
    }
    free(app->workers);
    app->workers = NULL;
    app->n_workers = 0;
}

bool fr_workers_counters(struct fr_app *app, struct http_server_counters *out)
{
    *out = (struct http_server_counters){0};
    if (!http_server_get_counters) return false;
    pthread_mutex_lock(&app->servers_lock);
    for (unsigned i = 0; i < app->n_workers; i++) {
        struct fr_worker *w = &app->workers[i];
        if (!w->server) continue;
        struct http_server_counters c;
        http_server_get_counters(w->server, &c);
        out->accepted += c.accepted;
        out->open += c.open;
    }
    pthread_mutex_unlock(&app->servers_lock);
    return true;
}
