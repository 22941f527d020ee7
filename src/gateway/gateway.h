/* gateway.h — the data plane: io worker threads, their HTTP servers and upstream
 * clients, request dispatch for /v1, and routing-snapshot publication to workers.
 *
 * Each worker is a thread with its own uv loop, listening socket (SO_REUSEPORT),
 * upstream client and private snapshot pointer (DESIGN.md §3). Admin requests are parsed
 * here and handed to the admin layer through `admin_dispatch` (set by main), which
 * answers later on the worker's loop via gateway_post. */
#ifndef METARELAY_GATEWAY_GATEWAY_H
#define METARELAY_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "net/http_server.h"
#include "routing/snapshot.h"

struct gw_worker;

struct gateway_config {
    const char *host;
    int port;
    unsigned workers;
    const char *proxy_token;     /* global downstream key */
    const char *auth_token;      /* admin token */
    uint64_t max_body_bytes;     /* MAX_BODY_MB */
    uint64_t max_response_bytes; /* MAX_RESPONSE_MB: non-stream aggregation bound */
    unsigned header_timeout_ms;
    unsigned keepalive_timeout_ms;
    unsigned max_connections;        /* per worker */
    unsigned max_connections_per_ip; /* per worker */
    unsigned connect_timeout_ms;
    unsigned first_byte_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned total_timeout_ms;
    unsigned max_attempts;      /* PROXY_MAX_CHANNEL_ATTEMPTS */
    const char *error_keywords; /* PROXY_ERROR_KEYWORDS: CSV; a 2xx containing one fails */
    bool empty_content_fail;    /* PROXY_EMPTY_CONTENT_FAIL: a 2xx without content fails */
    const char *ca_file;
    /* Admin requests (/api/...), already authenticated; must finish `req` on the worker loop
     * (see gateway_post). */
    void (*admin_dispatch)(struct gw_worker *w, http_request_t *req, void *arg);
    void *admin_arg;
};

/* Starts the io workers, listening on cfg->host:cfg->port, with `initial` as the first
 * snapshot (ownership passes to the gateway). The config must outlive the gateway.
 * Returns 0, or -1 with *err set (static text or a message from the server). */
int gateway_start(const struct gateway_config *cfg, struct routing_snapshot *initial,
                  const char **err);
/* The port the workers listen on. */
int gateway_port(void);
/* Publishes a new snapshot to every worker (ownership passes to the gateway). */
void gateway_publish(struct routing_snapshot *s);
/* Runs fn(arg) on the worker's loop thread (thread-safe; never blocks for long). */
void gateway_post(struct gw_worker *w, void (*fn)(void *arg), void *arg);
/* Stops accepting new connections; /healthz answers 503; requests in flight go on. */
void gateway_begin_drain(void);
/* Requests still in flight, summed over workers. */
size_t gateway_in_flight(void);
/* Ends every request still in flight (streams get an in-stream error event), closes all
 * connections, stops and joins the workers, frees their resources. */
void gateway_stop(void);

#endif
