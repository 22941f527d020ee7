/* admin_http.c — the admin thread pool and the hand-off between io workers and admin
 * handlers (see admin_http.h). */
#include "admin/admin_http.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_api.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/fetch.h"

struct admin_job {
    struct admin_job *next;
    struct gw_worker *w;
    http_request_t *req;
    bool aborted; /* touched on the worker thread only */
    char method[8];
    struct admin_response resp;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct admin_job *head, *tail;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
    store_t *store;
    void (*routing_changed)(void *);
    void *routing_arg;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Worker thread: write the answer (or just free the request if its client left). */
static void deliver(void *arg)
{
    struct admin_job *job = arg;
    http_request_t *req = job->req;
    if (job->aborted) {
        http_request_finish(req);
    } else {
        char line[512];
        int n =
            snprintf(line, sizeof line,
                     "{\"ts\":%lld,\"ip\":\"%s\",\"method\":\"%s\",\"path\":\"%.*s\","
                     "\"status\":%d,\"ms\":%llu,\"admin\":true}",
                     (long long)clock_wall_ms(), req->client_ip, job->method,
                     (int)(req->path.n > 200 ? 200 : req->path.n), req->path.p, job->resp.status,
                     (unsigned long long)((clock_mono_ns() - req->start_ns) / 1000000u));
        /* the path is logged raw: admin paths are ASCII ids, quotes are replaced */
        for (int i = 0; i < n && i < (int)sizeof line; i++)
            if (line[i] == '\\') line[i] = '/';
        if (n > 0) access_log_push(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        http_respond_json(req, job->resp.status, buf_slice(&job->resp.body));
    }
    buf_free(&job->resp.body);
    free(job);
}

static void on_abort(http_request_t *req, void *arg)
{
    (void)req;
    ((struct admin_job *)arg)->aborted = true;
}

static void *admin_main(void *arg)
{
    (void)arg;
    db_t *db = store_connect(pool.store);
    fetch_client_t *fetch = fetch_client_new();
    struct admin_ctx ctx = {db, fetch, pool.routing_changed, pool.routing_arg};
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head && !pool.stopping) pthread_cond_wait(&pool.cv, &pool.mu);
        struct admin_job *job = pool.head;
        if (!job) break; /* stopping and nothing left */
        pool.head = job->next;
        if (!pool.head) pool.tail = NULL;
        pthread_mutex_unlock(&pool.mu);

        http_request_t *req = job->req;
        struct admin_request areq = {job->method, req->path, req->query, req->body};
        job->resp = (struct admin_response){0, BUF_INIT};
        if (!db || !fetch) {
            job->resp.status = 503;
            buf_append_str(&job->resp.body,
                           "{\"success\":false,\"message\":\"database connection unavailable\"}");
        } else {
            admin_api_handle(&ctx, &areq, &job->resp);
        }
        gateway_post(job->w, deliver, job);
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    fetch_client_free(fetch);
    db_close(db);
    return NULL;
}

int admin_http_start(store_t *store, unsigned threads, void (*routing_changed)(void *arg),
                     void *arg)
{
    pool.store = store;
    pool.routing_changed = routing_changed;
    pool.routing_arg = arg;
    pool.stopping = false;
    pool.threads = calloc(threads, sizeof *pool.threads);
    if (!pool.threads) return -1;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&pool.threads[i], NULL, admin_main, NULL) != 0) {
            log_error("cannot start admin thread %u", i);
            return -1;
        }
        pool.n_threads++;
    }
    return 0;
}

void admin_http_stop(void)
{
    pthread_mutex_lock(&pool.mu);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (unsigned i = 0; i < pool.n_threads; i++) pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    pool.threads = NULL;
    pool.n_threads = 0;
}

void admin_http_dispatch(struct gw_worker *w, http_request_t *req, void *arg)
{
    (void)arg;
    struct admin_job *job = calloc(1, sizeof *job);
    if (!job) {
        http_respond_json(req, 503, SLICE_LIT("{\"success\":false,\"message\":\"out of memory\"}"));
        return;
    }
    job->w = w;
    job->req = req;
    size_t mn = req->method.n < sizeof job->method - 1 ? req->method.n : sizeof job->method - 1;
    memcpy(job->method, req->method.p, mn);
    http_request_on_abort(req, on_abort, job);
    pthread_mutex_lock(&pool.mu);
    if (pool.stopping || pool.n_threads == 0) {
        pthread_mutex_unlock(&pool.mu);
        free(job);
        http_respond_json(req, 503,
                          SLICE_LIT("{\"success\":false,\"message\":\"metarelay is stopping\"}"));
        return;
    }
    if (pool.tail)
        pool.tail->next = job;
    else
        pool.head = job;
    pool.tail = job;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
}
