/* stats.c — what fakerelay saw, for tests to assert on, and the /_fake/ control surface.
 *
 * Shared by every worker thread: plain counters are atomics; the keyed counters (by
 * path, model, fault) and the copy of the last request sit behind one mutex (a test
 * tool: a short critical section per request is fine). Connection counts come from the
 * servers themselves (http_server_get_counters). /_fake/ requests are not counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakerelay.h"
#include "platform.h"

#define MAX_KEYS      64         /* distinct keys per map; more are counted as "(other)" */
#define MAX_LAST_BODY (4u << 20) /* bytes of the last request body kept */

struct counter_map {
    size_t n;
    char *keys[MAX_KEYS];
    uint64_t vals[MAX_KEYS];
    uint64_t other;
};

struct fr_stats {
    _Atomic uint64_t requests;
    _Atomic int64_t in_flight;
    _Atomic uint64_t client_aborts;
    _Atomic uint64_t accepted_base; /* server "accepted" counter at the last reset */

    pthread_mutex_t mu; /* guards everything below */
    struct counter_map by_path, by_model, by_fault;
    bool have_last;
    char *last_method, *last_target;
    size_t last_n_headers;
    char **last_header_names, **last_header_values;
    char *last_body;
    size_t last_body_n;
    bool last_body_truncated;
};

static void map_add(struct counter_map *m, const char *key, size_t n)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->keys[i]) == n && memcmp(m->keys[i], key, n) == 0) {
            m->vals[i]++;
            return;
        }
    if (m->n < MAX_KEYS) {
        char *k = strndup(key, n);
        if (k) {
            m->keys[m->n] = k;
            m->vals[m->n++] = 1;
            return;
        }
    }
    m->other++;
}

static void map_clear(struct counter_map *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->keys[i]);
    *m = (struct counter_map){0};
}

static json_t *map_json(const struct counter_map *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->n; i++)
        json_object_set_new(o, m->keys[i], json_integer((json_int_t)m->vals[i]));
    if (m->other) json_object_set_new(o, "(other)", json_integer((json_int_t)m->other));
    return o;
}

static void last_clear(struct fr_stats *st)
{
    for (size_t i = 0; i < st->last_n_headers; i++) {
        free(st->last_header_names[i]);
        free(st->last_header_values[i]);
    }
    free(st->last_header_names);
    free(st->last_header_values);
    free(st->last_method);
    free(st->last_target);
    free(st->last_body);
    st->last_header_names = st->last_header_values = NULL;
    st->last_method = st->last_target = st->last_body = NULL;
    st->last_n_headers = st->last_body_n = 0;
    st->have_last = false;
    st->last_body_truncated = false;
}

struct fr_stats *fr_stats_new(void)
{
    struct fr_stats *st = calloc(1, sizeof *st);
    if (st) pthread_mutex_init(&st->mu, NULL);
    return st;
}

void fr_stats_free(struct fr_stats *st)
{
    if (!st) return;
    map_clear(&st->by_path);
    map_clear(&st->by_model);
    map_clear(&st->by_fault);
    last_clear(st);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void fr_stats_request(struct fr_stats *st, const http_request_t *req)
{
    atomic_fetch_add_explicit(&st->requests, 1, memory_order_relaxed);
    /* Copy outside the lock; swap in under it. */
    size_t nh = req->n_headers;
    char **names = calloc(nh ? nh : 1, sizeof *names);
    char **values = calloc(nh ? nh : 1, sizeof *values);
    size_t body_n = req->body.n > MAX_LAST_BODY ? MAX_LAST_BODY : req->body.n;
    char *body = malloc(body_n + 1);
    char *method = strndup(req->method.p ? req->method.p : "", req->method.n);
    char *target = strndup(req->target.p ? req->target.p : "", req->target.n);
    bool ok = names && values && body && method && target;
    for (size_t i = 0; ok && i < nh; i++) {
        names[i] = strndup(req->headers[i].name.p, req->headers[i].name.n);
        values[i] = strndup(req->headers[i].value.p, req->headers[i].value.n);
        ok = names[i] && values[i];
        for (char *c = names[i]; ok && *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    }
    if (ok) {
        if (body_n) memcpy(body, req->body.p, body_n);
        body[body_n] = 0;
    }

    pthread_mutex_lock(&st->mu);
    map_add(&st->by_path, req->path.p ? req->path.p : "", req->path.n);
    if (ok) {
        last_clear(st);
        st->have_last = true;
        st->last_method = method;
        st->last_target = target;
        st->last_n_headers = nh;
        st->last_header_names = names;
        st->last_header_values = values;
        st->last_body = body;
        st->last_body_n = body_n;
        st->last_body_truncated = body_n < req->body.n;
    }
    pthread_mutex_unlock(&st->mu);
    if (!ok) {
        for (size_t i = 0; i < nh && names && values; i++) {
            free(names[i]);
            free(values[i]);
        }
        free(names);
        free(values);
        free(body);
        free(method);
        free(target);
    }
}

void fr_stats_model(struct fr_stats *st, const char *model)
{
    pthread_mutex_lock(&st->mu);
    map_add(&st->by_model, model, strlen(model));
    pthread_mutex_unlock(&st->mu);
}

void fr_stats_fault(struct fr_stats *st, const char *kind)
{
    pthread_mutex_lock(&st->mu);
    map_add(&st->by_fault, kind, strlen(kind));
    pthread_mutex_unlock(&st->mu);
}

void fr_stats_begin(struct fr_stats *st)
{
    atomic_fetch_add_explicit(&st->in_flight, 1, memory_order_relaxed);
}

void fr_stats_end(struct fr_stats *st)
{
    atomic_fetch_sub_explicit(&st->in_flight, 1, memory_order_relaxed);
}

void fr_stats_client_abort(struct fr_stats *st)
{
    atomic_fetch_add_explicit(&st->client_aborts, 1, memory_order_relaxed);
}

/* The last request as JSON (caller holds st->mu). Headers by lower-case name, repeated
 * ones joined with ", "; the body parsed when it is JSON, and as text when it is UTF-8. */
static json_t *last_json(const struct fr_stats *st)
{
    if (!st->have_last) return json_null();
    json_t *h = json_object();
    for (size_t i = 0; i < st->last_n_headers; i++) {
        const char *name = st->last_header_names[i], *value = st->last_header_values[i];
        json_t *prev = json_object_get(h, name);
        json_t *v;
        if (json_is_string(prev)) {
            size_t n = json_string_length(prev) + 2 + strlen(value) + 1;
            char *joined = malloc(n);
            if (!joined) continue;
            snprintf(joined, n, "%s, %s", json_string_value(prev), value);
            v = json_string(joined);
            free(joined);
        } else {
            v = json_string(value);
        }
        json_object_set_new(h, name, v ? v : json_null());
    }
    json_t *body =
        st->last_body_n ? json_loadb(st->last_body, st->last_body_n, JSON_DECODE_ANY, NULL) : NULL;
    json_t *raw = json_stringn(st->last_body, st->last_body_n);
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:b}", "method", st->last_method, "target",
                     st->last_target, "headers", h, "body", body ? body : json_null(), "body_raw",
                     raw ? raw : json_null(), "body_truncated", st->last_body_truncated);
}

static void reply_json(http_request_t *req, const struct fr_config *cfg, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("Cache-Control"), SLICE_LIT("no-store")},
        {SLICE_LIT("x-fakerelay-name"), slice_from(cfg->name)},
    };
    http_respond(req, s ? status : 500, h, 3, s ? slice_from(s) : SLICE_LIT("{}"));
    free(s);
}

static void stats_get(struct fr_worker *w, http_request_t *req)
{
    struct fr_app *app = w->app;
    struct fr_stats *st = app->stats;
    struct http_server_counters c;
    bool have_conn = fr_workers_counters(app, &c);
    uint64_t base = atomic_load_explicit(&st->accepted_base, memory_order_relaxed);

    pthread_mutex_lock(&st->mu);
    json_t *j = json_pack(
        "{s:s, s:i, s:i, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "name", app->cfg.name,
        "port", (json_int_t)app->port, "workers", (json_int_t)app->n_workers, "requests_total",
        (json_int_t)atomic_load(&st->requests), "in_flight",
        (json_int_t)atomic_load(&st->in_flight), "client_aborts",
        (json_int_t)atomic_load(&st->client_aborts), "connections_accepted",
        have_conn ? json_integer((json_int_t)(c.accepted - (base <= c.accepted ? base : 0)))
                  : json_null(),
        "connections_open", have_conn ? json_integer((json_int_t)c.open) : json_null(),
        "requests_by_path", map_json(&st->by_path), "requests_by_model", map_json(&st->by_model),
        "faults", map_json(&st->by_fault), "last_request", last_json(st));
    pthread_mutex_unlock(&st->mu);
    if (j) fr_platform_stats(app, j);
    reply_json(req, &app->cfg, 200, j);
}

static void stats_reset(struct fr_worker *w, http_request_t *req)
{
    struct fr_app *app = w->app;
    struct fr_stats *st = app->stats;
    struct http_server_counters c;
    /* The reset request's own connection stays counted as accepted before the reset. */
    if (fr_workers_counters(app, &c)) atomic_store(&st->accepted_base, c.accepted);
    atomic_store(&st->requests, 0);
    atomic_store(&st->client_aborts, 0);
    pthread_mutex_lock(&st->mu);
    map_clear(&st->by_path);
    map_clear(&st->by_model);
    map_clear(&st->by_fault);
    last_clear(st);
    pthread_mutex_unlock(&st->mu);
    fr_platform_stats_reset(app);
    reply_json(req, &app->cfg, 200, json_pack("{s:b}", "reset", 1));
}

void fr_control_dispatch(struct fr_worker *w, http_request_t *req)
{
    const struct fr_config *cfg = &w->app->cfg;
    struct slice m = req->method, p = req->path;
    if (slice_eq_str(p, "/_fake/stats") && slice_eq_str(m, "GET")) {
        stats_get(w, req);
    } else if (slice_eq_str(p, "/_fake/reset") && slice_eq_str(m, "POST")) {
        stats_reset(w, req);
    } else if (slice_eq_str(p, "/_fake/health") && slice_eq_str(m, "GET")) {
        reply_json(req, cfg, 200, json_pack("{s:s, s:s}", "status", "ok", "name", cfg->name));
    } else if (slice_eq_str(p, "/_fake/image.png") && slice_eq_str(m, "GET")) {
        struct http_header h[] = {{SLICE_LIT("Content-Type"), SLICE_LIT("image/png")}};
        http_respond(req, 200, h, 1, (struct slice){(const char *)fr_png, fr_png_len});
    } else if (fr_platform_control(w, req)) {
        /* a platform route: next-day, expire-sessions, platform */
    } else {
        fr_respond_error(req, cfg, 404, "invalid_request_error", NULL,
                         "fakerelay: unknown control route (GET /_fake/stats, POST "
                         "/_fake/reset, GET /_fake/health, GET /_fake/image.png)");
    }
}
