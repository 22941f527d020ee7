/* admin_api.h — the admin REST API (/api/...) as a plain function of a request, run on an
 * admin thread with that thread's database connection and fetch client. The HTTP
 * plumbing (hand-off from the io thread and back) lives in admin_http; this module
 * only maps a request to a JSON answer, which keeps it testable without sockets.
 *
 * Paths and camelCase fields follow Metapi's. Errors are {"success":false,"message":…}
 * with a 4xx/5xx status. Secrets are never returned in full. */
#ifndef METARELAY_ADMIN_ADMIN_API_H
#define METARELAY_ADMIN_ADMIN_API_H

#include <stdbool.h>

#include "base/slice.h"
#include "net/fetch.h"
#include "store/store.h"

struct admin_ctx {
    db_t *db;              /* the calling thread's connection */
    fetch_client_t *fetch; /* the calling thread's HTTP client */
    /* Called after a change that affects routing (sites, accounts, models); the
     * process rebuilds and publishes the routing snapshot. May be NULL. */
    void (*routing_changed)(void *arg);
    void *routing_changed_arg;
};

struct admin_request {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    struct slice path;  /* "/api/sites/3" (no query) */
    struct slice query; /* "limit=10&offset=0" */
    struct slice body;  /* JSON text or empty */
};

struct admin_response {
    int status;
    struct buf body; /* JSON text; owned by the response (buf_free) */
};

/* Handles one authenticated admin request. Always fills `resp`. */
void admin_api_handle(const struct admin_ctx *ctx, const struct admin_request *req,
                      struct admin_response *resp);

#endif
