/* worker.c — io worker threads: start, snapshot publication, posted tasks, drain and stop
 * (see gateway.h; DESIGN.md §3). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

#include "base/log.h"
#include "gateway/internal.h"

static struct gw_worker *workers;
static unsigned n_workers;
static int listen_port;

static void run_posts(struct gw_worker *w)
{
    pthread_mutex_lock(&w->post_mu);
    struct gw_post *p = w->posts;
    w->posts = w->posts_tail = NULL;
    pthread_mutex_unlock(&w->post_mu);
    while (p) {
        struct gw_post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

static void take_mailbox(struct gw_worker *w)
{
    struct routing_snapshot *fresh = atomic_exchange(&w->mailbox, NULL);
    if (!fresh) return;
    struct routing_snapshot *old = w->snap;
    w->snap = fresh; /* the publisher counted this worker's reference */
    snapshot_release(old);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void stats_tick(uv_timer_t *t)
{
    struct gw_worker *w = t->data;
    atomic_store(&w->in_flight, w->server ? http_server_in_flight(w->server) : 0);
}

static void on_wake(uv_async_t *a)
{
    struct gw_worker *w = a->data;
    take_mailbox(w);
    run_posts(w);
    int cmd = atomic_load(&w->command);
    if ((cmd & GW_CMD_DRAIN) && !w->draining) {
        w->draining = true;
        http_server_stop_accepting(w->server);
    }
    if ((cmd & GW_CMD_STOP) && !w->stopping) {
        w->stopping = true;
        gw_proxy_abort_all(w);
        http_server_close(w->server);
        w->server = NULL;
        upstream_destroy(w->upstream);
        w->upstream = NULL;
        uv_timer_stop(&w->stats_timer);
        uv_close((uv_handle_t *)&w->stats_timer, close_cb);
        uv_close((uv_handle_t *)&w->wake, close_cb);
    }
}

static void worker_main(void *arg)
{
    struct gw_worker *w = arg;
    const struct gateway_config *cfg = w->cfg;
    struct http_server_config scfg = {
        .host = cfg->host,
        .port = listen_port ? listen_port : cfg->port,
        .max_body_bytes = cfg->max_body_bytes,
        .header_timeout_ms = cfg->header_timeout_ms,
        .keepalive_timeout_ms = cfg->keepalive_timeout_ms,
        .max_connections = cfg->max_connections,
        .max_connections_per_ip = cfg->max_connections_per_ip,
    };
    struct http_handlers handlers = {gw_on_headers, gw_on_request, w};
    struct upstream_config ucfg = {.ca_file = cfg->ca_file, .max_connections = 256};
    w->upstream = upstream_create(&w->loop, &ucfg);
    if (!w->upstream) {
        w->start_error = "cannot create the upstream client";
        uv_sem_post(&w->started);
        return;
    }
    w->server = http_server_start(&w->loop, &scfg, &handlers, &w->start_error);
    if (!w->server) {
        upstream_destroy(w->upstream);
        w->upstream = NULL;
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_sem_post(&w->started);
        return;
    }
    w->port = http_server_port(w->server);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->stats_timer);
    w->stats_timer.data = w;
    uv_timer_start(&w->stats_timer, stats_tick, 50, 50);
    uv_sem_post(&w->started);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    run_posts(w); /* posted after the stop: their requests are already aborted */
    snapshot_release(w->snap);
    w->snap = NULL;
    snapshot_release(atomic_exchange(&w->mailbox, NULL));
}

/* The listeners use SO_REUSEPORT, which would let a second metarelay (or anything else of
 * the same user) share the port silently and split the connections. A plain bind first
 * tells whether the port is already taken. */
static bool port_is_taken(const char *host, int port)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return false; /* the server reports the bad address itself */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len =
        ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    bool taken = bind(fd, (struct sockaddr *)&ss, len) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

int gateway_start(const struct gateway_config *cfg, struct routing_snapshot *initial,
                  const char **err)
{
    if (cfg->port != 0 && port_is_taken(cfg->host, cfg->port)) {
        *err = "the port is already in use";
        return -1;
    }
    n_workers = cfg->workers ? cfg->workers : 1;
    workers = calloc(n_workers, sizeof *workers);
    if (!workers) {
        *err = "out of memory";
        return -1;
    }
    atomic_fetch_add(&initial->refs, (int)n_workers);
    for (unsigned i = 0; i < n_workers; i++) {
        struct gw_worker *w = &workers[i];
        w->index = i;
        w->cfg = cfg;
        w->snap = initial;
        pthread_mutex_init(&w->post_mu, NULL);
        uv_loop_init(&w->loop);
        uv_sem_init(&w->started, 0);
        /* The first worker binds (port 0 picks one); the others join its port. */
        if (uv_thread_create(&w->thread, worker_main, w) != 0) {
            *err = "cannot start an io thread";
            return -1;
        }
        uv_sem_wait(&w->started);
        if (w->start_error) {
            *err = w->start_error;
            return -1;
        }
        if (i == 0) listen_port = w->port;
    }
    return 0;
}

int gateway_port(void)
{
    return listen_port;
}

void gateway_publish(struct routing_snapshot *s)
{
    atomic_fetch_add(&s->refs, (int)n_workers); /* plus any reference the publisher kept */
    for (unsigned i = 0; i < n_workers; i++) {
        struct routing_snapshot *old = atomic_exchange(&workers[i].mailbox, s);
        /* A snapshot never taken by this worker loses this worker's reference. */
        if (old) snapshot_release(old);
        uv_async_send(&workers[i].wake);
    }
}

void gateway_post(struct gw_worker *w, void (*fn)(void *arg), void *arg)
{
    struct gw_post *p = malloc(sizeof *p);
    if (!p) {
        /* Out of memory: run nothing rather than on the wrong thread; the request then
         * stays unanswered until its connection closes. Logged for the operator. */
        log_error("out of memory posting a task to worker %u", w->index);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&w->post_mu);
    if (w->posts_tail)
        w->posts_tail->next = p;
    else
        w->posts = p;
    w->posts_tail = p;
    pthread_mutex_unlock(&w->post_mu);
    uv_async_send(&w->wake);
}

static void command_all(int cmd)
{
    for (unsigned i = 0; i < n_workers; i++) {
        atomic_fetch_or(&workers[i].command, cmd);
        uv_async_send(&workers[i].wake);
    }
}

void gateway_begin_drain(void)
{
    command_all(GW_CMD_DRAIN);
}

size_t gateway_in_flight(void)
{
    size_t n = 0;
    for (unsigned i = 0; i < n_workers; i++) n += atomic_load(&workers[i].in_flight);
    return n;
}

void gateway_stop(void)
{
    command_all(GW_CMD_DRAIN | GW_CMD_STOP);
    for (unsigned i = 0; i < n_workers; i++) {
        struct gw_worker *w = &workers[i];
        uv_thread_join(&w->thread);
        if (uv_loop_close(&w->loop) != 0) log_warn("worker %u: loop closed with open handles", i);
        uv_sem_destroy(&w->started);
        pthread_mutex_destroy(&w->post_mu);
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
}
