/* internal.h — what the gateway's own files share: the worker struct and the entry
 * points of dispatch, the proxy attempt loop and the models surface. Not for other layers. */
#ifndef METARELAY_GATEWAY_INTERNAL_H
#define METARELAY_GATEWAY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "gateway/gateway.h"
#include "net/http_server.h"
#include "net/upstream.h"
#include "routing/snapshot.h"

struct gw_post {
    struct gw_post *next;
    void (*fn)(void *arg);
    void *arg;
};

struct gw_call;

/* A solved WAF challenge cookie (acw_sc__v2) for one site, kept per worker: each worker
 * solves the challenge itself when it meets it, so no lock is needed. */
struct gw_waf_cookie {
    int64_t site_id;
    char value[48];
    uint64_t expires_ns; /* monotonic */
};
#define GW_WAF_COOKIES 16

struct gw_worker {
    unsigned index;
    const struct gateway_config *cfg;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;        /* mailbox, posts and commands */
    uv_timer_t stats_timer; /* publishes in_flight for the main thread */
    http_server_t *server;
    upstream_t *upstream;
    struct routing_snapshot *snap;              /* this worker's current snapshot */
    _Atomic(struct routing_snapshot *) mailbox; /* next snapshot, set by publishers */
    pthread_mutex_t post_mu;
    struct gw_post *posts, *posts_tail;
    atomic_int command;      /* GW_CMD_* bits */
    atomic_size_t in_flight; /* copied from the server every 50 ms */
    bool draining;
    bool stopping;
    struct gw_call *calls; /* proxied requests in flight (for a forced stop) */
    struct gw_waf_cookie waf[GW_WAF_COOKIES];
    unsigned waf_next;
    uv_sem_t started;
    const char *start_error;
    int port;
};

enum { GW_CMD_DRAIN = 1, GW_CMD_STOP = 2 };

/* The request kinds dispatch recognises (stored in req->user). */
enum gw_surface {
    GW_SURFACE_NONE = 0,
    GW_SURFACE_CHAT,
    GW_SURFACE_COMPLETIONS,
    GW_SURFACE_EMBEDDINGS,
    GW_SURFACE_IMAGES,
    GW_SURFACE_MODELS,
    GW_SURFACE_ADMIN,
    GW_SURFACE_MESSAGES,     /* Claude Messages */
    GW_SURFACE_COUNT_TOKENS, /* Claude count_tokens */
    GW_SURFACE_RESPONSES,    /* OpenAI Responses */
};

/* Whether a surface answers errors in Claude's shape (else OpenAI's). */
static inline bool gw_surface_is_claude(enum gw_surface s)
{
    return s == GW_SURFACE_MESSAGES || s == GW_SURFACE_COUNT_TOKENS;
}

/* Handlers given to http_server (dispatch.c). */
extern const struct http_handlers gw_http_handlers_template;
enum http_verdict gw_on_headers(http_request_t *req, void *ud);
void gw_on_request(http_request_t *req, void *ud);

/* Starts proxying an authenticated POST on a /v1 surface (proxy.c). */
void gw_proxy_start(struct gw_worker *w, http_request_t *req, enum gw_surface surface);
/* Ends every proxied request of the worker at once (forced stop). */
void gw_proxy_abort_all(struct gw_worker *w);

/* GET /v1/models (models.c). */
void gw_models(struct gw_worker *w, http_request_t *req);

/* Error answer in the request's API shape: Claude's for the Messages surfaces, else
 * OpenAI's (dispatch.c). `type`/`code` are OpenAI's; Claude's type follows the status. */
void gw_error(http_request_t *req, int status, const char *type, const char *code,
              const char *message);

/* The same, with the request's access-log line (for requests answered before proxying). */
void gw_reject(http_request_t *req, int status, const char *type, const char *code,
               const char *message);

/* The request id of a request: the client's x-request-id when sane, else a new one
 * (pool-owned, set once per request). */
const char *gw_request_id(http_request_t *req);

#endif
