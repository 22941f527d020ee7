/* admin_http.h — runs admin API requests off the io threads: the io worker hands an
 * authenticated /api/... request to a queue served by `admin` threads (each with its own
 * database connection and HTTP client); the answer goes back to the worker's loop
 * (gateway_post) which writes it. The request stays alive until then, even when its
 * client has gone. */
#ifndef METARELAY_ADMIN_ADMIN_HTTP_H
#define METARELAY_ADMIN_ADMIN_HTTP_H

#include "gateway/gateway.h"
#include "store/store.h"

/* Starts `threads` admin threads. `routing_changed` is called (on an admin thread) after
 * changes that affect routing. Returns 0 or -1. */
int admin_http_start(store_t *store, unsigned threads, void (*routing_changed)(void *arg),
                     void *arg);
/* Answers every queued request, then stops and joins the admin threads. */
void admin_http_stop(void);
/* The gateway's admin hook (gateway_config.admin_dispatch). */
void admin_http_dispatch(struct gw_worker *w, http_request_t *req, void *arg);

#endif
