/* http_server.h — the HTTP/1.1 server of one io worker (libuv + http-parser).
 *
 * One server per worker loop, each with its own listening socket on the same port
 * (SO_REUSEPORT set by hand; libuv 1.44 has no TCP flag for it). Keep-alive,
 * pipelining (requests answered strictly in order; bytes read ahead wait in a bounded
 * buffer), chunked request bodies, Expect: 100-continue answered only after
 * on_headers accepted the request, limits (header bytes including the request line,
 * body bytes, header timeout, body deadline, keep-alive idle, connections per worker
 * and per client IP). Stricter than http-parser: bare-LF line endings and obs-fold
 * continuations are answered 400, an Upgrade header is ignored. An early answer to a
 * request whose body is still pending closes with a lingering close (shutdown(WR),
 * drain reads ≤ 5 s / 1 MiB) so the client reads the answer instead of a reset.
 *
 * Lifecycle of a request: the server calls on_headers, reads the body, calls
 * on_request; the handler finishes the request exactly once — http_respond, or
 * http_stream_start … http_stream_end, or http_request_finish after an abort. The
 * request and its pool stay valid until then, even when the client has gone. If the
 * body fails after on_headers returned HTTP_READ_BODY (413, 408, client gone), the
 * server answers or drops the request and destroys it itself: on_request is not
 * called and no abort callback fires, so on_headers keeps anything it must release
 * in the pool (pool_cleanup). Requests on one connection are handled one at a time. */
#ifndef METARELAY_NET_HTTP_SERVER_H
#define METARELAY_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/pool.h"
#include "base/slice.h"

struct http_header {
    struct slice name;
    struct slice value;
};

typedef struct http_server http_server_t;
typedef struct http_request http_request_t;

struct http_request {
    pool_t *pool;                /* request memory; destroyed when the request is finished */
    struct slice method;         /* "GET", "POST", … */
    struct slice target;         /* as sent: path and query */
    struct slice path;           /* target before '?' */
    struct slice query;          /* after '?', empty when none */
    struct http_header *headers; /* names and values as sent (values trimmed), in the pool */
    size_t n_headers;
    struct slice body;       /* whole body (de-chunked), in the pool; empty when none */
    char client_ip[46];      /* peer address as text */
    uint64_t start_ns;       /* monotonic time the request's first byte was read */
    bool expect_continue;    /* the client sent Expect: 100-continue */
    uint64_t content_length; /* declared length; 0 when none or chunked */
    bool chunked;            /* Transfer-Encoding: chunked */
    void *user;              /* for the handler */
    struct http_conn *conn;  /* private to the server */
};

enum http_verdict {
    HTTP_READ_BODY = 0, /* go on: read the body (send 100 Continue if asked), then on_request */
    HTTP_ANSWERED = 1,  /* on_headers already answered with http_respond; the body is not read */
};

struct http_handlers {
    /* Called when the headers are complete, before the body is read (may be NULL). */
    enum http_verdict (*on_headers)(http_request_t *req, void *ud);
    /* Called with the whole request; the handler then owns finishing it. */
    void (*on_request)(http_request_t *req, void *ud);
    void *ud;
};

struct http_server_config {
    const char *host;              /* listen address, e.g. "0.0.0.0" or "::" */
    int port;                      /* 0 = pick a free port (see http_server_port) */
    uint64_t max_body_bytes;       /* 413 above this (default 32 MiB) */
    unsigned header_timeout_ms;    /* 408 when headers are not complete in time (default 10 s) */
    unsigned body_timeout_ms;      /* 408 when the body is not complete in time (default 600 s) */
    unsigned body_idle_timeout_ms; /* 408 when no body byte arrives for this long (default 30 s) */
    unsigned keepalive_timeout_ms; /* idle keep-alive connections close (default 75 s) */
    unsigned max_connections;      /* per server (worker); excess accepted and closed with 503
                                      (0 = no limit) */
    unsigned max_connections_per_ip; /* per server; excess gets 429 and close (0 = no limit) */
};

/* Sets http-parser's process-wide header limit (request line included). Call once,
 * before any server exists. */
void http_server_global_init(size_t max_header_bytes);

/* Sets the process-wide budget of request-body bytes held in memory at once (default
 * 1 GiB; 0 = none). A body that would exceed it is refused with 503 and Retry-After before
 * it is read. Call once, before any server exists. */
void http_server_set_body_budget(uint64_t bytes);
/* Request-body bytes held now, over every server of the process. */
uint64_t http_server_body_bytes(void);

/* Creates a server on `loop` (caller owns; http_server_close then frees it) and starts
 * listening. NULL with *err set to a readable reason on failure. */
http_server_t *http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
                                 const struct http_handlers *handlers, const char **err);
/* The bound port (useful with port 0). */
int http_server_port(const http_server_t *s);
/* Connection counters of one server. */
struct http_server_counters {
    uint64_t accepted; /* connections accepted since the server started */
    uint64_t open;     /* connections open now */
};
/* Reads the counters. Safe from any thread (the server keeps them in relaxed atomics), so a
 * metrics scrape running on one worker can sum every worker's. */
void http_server_get_counters(const http_server_t *s, struct http_server_counters *out);
/* Stops accepting; open connections go on. Keep-alive connections close after their
 * current response. */
void http_server_stop_accepting(http_server_t *s);
/* Requests received but not yet finished. */
size_t http_server_in_flight(const http_server_t *s);
/* Closes every connection at once and frees the server when all handles are closed;
 * requests still unfinished see their abort callback, and must still be finished
 * by their handler (which then frees them). */
void http_server_close(http_server_t *s);

/* ---- answering ---- */

/* Whole response with Content-Length. `hdrs` are extra headers (Date, Content-Length,
 * Connection are added by the server). Copies what it needs: slices may die after the call. */
void http_respond(http_request_t *req, int status, const struct http_header *hdrs, size_t n_hdrs,
                  struct slice body);
/* Convenience: JSON body with Content-Type: application/json. */
void http_respond_json(http_request_t *req, int status, struct slice json);

/* Starts a chunked response. Returns 0, or -1 if the client is gone. */
int http_stream_start(http_request_t *req, int status, const struct http_header *hdrs,
                      size_t n_hdrs);
/* Writes the parts as one chunk with one writev; copies them. Returns 0 when the write
 * queue is below the high-water mark, 1 when above it (the caller should stop producing
 * until the drain callback), -1 when the client is gone. */
int http_stream_write(http_request_t *req, const struct slice *parts, size_t n_parts);
/* Ends the chunked response and finishes the request. */
void http_stream_end(http_request_t *req);
/* Finishes a request without answering (after its abort callback fired). Called while
 * the client is still there, before an answer or after http_stream_start, it ends the
 * request without completing the answer: the connection is closed at once (bytes still
 * queued are dropped), so the client sees the connection end before any response, or a
 * chunked body without its last chunk — never a clean end. (fakerelay's reset and cut
 * faults rely on this.) */
void http_request_finish(http_request_t *req);

/* Called once the write queue falls below the low-water mark after http_stream_write
 * returned 1. */
void http_request_on_drain(http_request_t *req, void (*fn)(http_request_t *req, void *arg),
                           void *arg);
/* Called at most once when the client goes away (EOF, reset, write error, server close)
 * before the request was finished. The handler must then abort its work and call
 * http_request_finish (or any answering call, which then only frees — except after a
 * bare EOF, a half-close, where an http_respond is still written before the close;
 * streams get -1 from then on). */
void http_request_on_abort(http_request_t *req, void (*fn)(http_request_t *req, void *arg),
                           void *arg);

/* First header with this name (case-insensitive); SLICE_NULL when absent. */
struct slice http_request_header(const http_request_t *req, const char *name);
/* Value of a query parameter (raw, not percent-decoded); SLICE_NULL when absent. */
struct slice http_request_query_param(const http_request_t *req, const char *name);
/* Bytes queued for writing on the request's connection. */
size_t http_request_write_queue(const http_request_t *req);

const char *http_status_text(int status);

#endif
