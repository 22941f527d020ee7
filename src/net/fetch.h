/* fetch.h — blocking HTTP client for the control plane and admin threads (never the
 * io threads). One reusable curl easy handle per `fetch_client_t`; each control and
 * admin thread owns one. Same safe transport options as net/upstream (no redirects
 * unless asked, CA cache on, NOSIGNAL, protocols http/https, explicit timeouts). */
#ifndef METARELAY_NET_FETCH_H
#define METARELAY_NET_FETCH_H

#include <stddef.h>

#include "base/slice.h"
#include "net/http_server.h" /* struct http_header */

typedef struct fetch_client fetch_client_t;

/* Caller owns; fetch_client_free releases. NULL when out of memory. */
fetch_client_t *fetch_client_new(void);
void fetch_client_free(fetch_client_t *c);

struct fetch_request {
    const char *method; /* "GET" (default when NULL), "POST", … */
    const char *url;
    const struct http_header *headers;
    size_t n_headers;
    struct slice body;
    const char *proxy_url;     /* NULL or "" = none */
    unsigned timeout_ms;       /* whole request; default 30 s */
    size_t max_response_bytes; /* default 16 MiB; larger → error */
};

struct fetch_response {
    int status;             /* 0 when the request failed before a status */
    struct buf body;        /* owned by the response: fetch_response_free */
    char error[256];        /* empty on success; readable reason otherwise */
    struct buf headers_raw; /* raw response header block (Name: value\r\n …) */
};

/* Performs the request. Returns 0 when a status was received (any status), -1 on a
 * transport failure (resp->error says why). Always release with fetch_response_free. */
int fetch_do(fetch_client_t *c, const struct fetch_request *req, struct fetch_response *resp);
void fetch_response_free(struct fetch_response *resp);

#endif
