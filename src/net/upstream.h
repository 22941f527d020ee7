/* upstream.h — the data plane's client for upstream HTTP(S) requests.
 *
 * One `upstream_t` per io worker, driven by that worker's uv loop. No transport type
 * (curl or other) crosses this interface, so the transport can be replaced without
 * touching the gateway. The first transport is curl multi on libuv, configured as
 * DESIGN.md §10 says (NOSIGNAL, QUICK_EXIT, HTTP/1.1, empty Expect:, CAINFO set and
 * CAPATH NULL, protocols http/https, no redirects, TCP keep-alive, explicit
 * MAXCONNECTS, one uv_poll_t per socket kept while the socket lives).
 *
 * Callbacks run on the worker's loop thread. Bytes handed to callbacks are valid only
 * during the call. */
#ifndef METARELAY_NET_UPSTREAM_H
#define METARELAY_NET_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/slice.h"
#include "net/http_server.h" /* struct http_header */

typedef struct upstream upstream_t;
typedef struct upstream_xfer upstream_xfer_t;

enum upstream_error {
    UPSTREAM_OK = 0,
    UPSTREAM_ERR_CONNECT,            /* DNS, refused, connect timeout, TLS handshake */
    UPSTREAM_ERR_FIRST_BYTE_TIMEOUT, /* request sent, no response byte in time */
    UPSTREAM_ERR_IDLE_TIMEOUT,       /* no byte for idle_timeout_ms while receiving */
    UPSTREAM_ERR_TOTAL_TIMEOUT,      /* total_timeout_ms exceeded */
    UPSTREAM_ERR_RESET,              /* connection closed or reset before the response completed */
    UPSTREAM_ERR_PROTOCOL,           /* malformed response */
    UPSTREAM_ERR_INTERNAL,           /* out of memory, transport failure */
};

/* Short stable name of an error class ("connect", "first_byte_timeout", …). */
const char *upstream_error_name(enum upstream_error e);

struct upstream_config {
    const char *ca_file;      /* CA bundle (default /etc/ssl/certs/ca-certificates.crt) */
    unsigned max_connections; /* idle+busy connection cache of this worker (default 256) */
};

/* Creates the worker's client (caller owns; upstream_destroy frees). NULL on failure. */
upstream_t *upstream_create(uv_loop_t *loop, const struct upstream_config *cfg);
/* Aborts every transfer (no callbacks fire) and frees the client once its handles closed. */
void upstream_destroy(upstream_t *u);

struct upstream_request {
    struct slice method;               /* "POST" */
    const char *url;                   /* absolute http(s) URL, NUL-terminated */
    const struct http_header *headers; /* sent as given (Host, Content-Length added) */
    size_t n_headers;
    struct slice body;              /* borrowed: must stay valid until on_done or abort */
    const char *proxy_url;          /* NULL or "" = none; http://, https://, socks5h:// */
    unsigned connect_timeout_ms;    /* default 10 s */
    unsigned first_byte_timeout_ms; /* from request sent to first response byte; 0 = none */
    unsigned idle_timeout_ms;       /* between response bytes; 0 = none; suspended while paused */
    unsigned total_timeout_ms;      /* 0 = none */
};

enum upstream_data_verdict { UPSTREAM_CONTINUE = 0, UPSTREAM_PAUSE = 1 };

struct upstream_callbacks {
    /* The status line and headers arrived (headers valid during the call only). */
    void (*on_head)(void *ud, int status, const struct http_header *hdrs, size_t n_hdrs);
    /* Response body bytes (de-chunked), as they arrive. The bytes are always consumed;
     * UPSTREAM_PAUSE asks for no more until upstream_resume. */
    enum upstream_data_verdict (*on_data)(void *ud, const char *p, size_t n);
    /* Exactly once, unless the transfer was aborted with upstream_abort. `detail` is a
     * short human-readable reason (never a secret), valid during the call. After
     * on_done the transfer handle is gone. */
    void (*on_done)(void *ud, enum upstream_error err, const char *detail);
};

/* Starts a transfer. Returns its handle (owned by the client; valid until on_done or
 * upstream_abort), or NULL on immediate failure (no callback fires then). */
upstream_xfer_t *upstream_start(upstream_t *u, const struct upstream_request *req,
                                const struct upstream_callbacks *cb, void *ud);
/* Resumes delivery after UPSTREAM_PAUSE. Safe from any callback on the loop thread
 * (the transport defers the actual resume to the next loop turn). */
void upstream_resume(upstream_xfer_t *x);
/* Cancels the transfer and closes its connection; no callback fires afterwards. Safe
 * at any time on the loop thread, including from inside this transfer's callbacks. */
void upstream_abort(upstream_xfer_t *x);
/* Whether the request body has been fully sent (for retry decisions). */
bool upstream_request_sent(const upstream_xfer_t *x);

#endif
