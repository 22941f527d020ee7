/* http_server.c — the HTTP/1.1 server of one io worker (see http_server.h).
 *
 * Built on libuv (sockets, timers) and http-parser (request syntax). What http-parser
 * does not do is done here, by hand:
 *   - the header block is buffered whole and scanned before the parser sees it, so that
 *     bare-LF line endings and obs-fold continuations get 400 and an oversized block 431;
 *   - the parser is paused after the headers (to run on_headers outside its callbacks)
 *     and after each message (pipelining: the next request waits in the connection's
 *     input buffer, bounded by READAHEAD_MAX, until the current one is finished);
 *   - an Upgrade header is ignored: after the parser's early return we simply go on;
 *   - lingering close (shutdown(WR), drain reads ≤ LINGER_MS / LINGER_BYTES) whenever a
 *     connection closes after a response, so the client reads the answer, not a reset.
 *
 * Ownership of a request: from its first header byte until on_request (or an early
 * answer in on_headers) the server owns it; if the body then fails (413, 408, client
 * gone) the server answers or drops it and destroys it itself — on_request is not
 * called and the abort callback does not fire (on_headers keeps foreign resources in
 * the pool, with pool_cleanup). From on_request on, the handler owns it and finishes it
 * exactly once. A connection whose handles are closed stays allocated while a request
 * on it is unfinished; a closed server is freed when its handles are closed, and such
 * orphan connections then only forget it.
 *
 * Everything written is copied into one allocation per uv_write, so no write ever
 * points into a request pool and a pool can die while its bytes are still queued. */
#include "net/http_server.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

#define READ_CHUNK       (64 * 1024)   /* one read at most */
#define READAHEAD_MAX    (64 * 1024)   /* bytes of later requests buffered meanwhile */
#define WRITE_HIGH_WATER (256 * 1024)  /* http_stream_write returns 1 above this */
#define WRITE_LOW_WATER  (64 * 1024)   /* the drain callback fires below this */
#define LINGER_MS        5000          /* lingering close: drain reads this long … */
#define LINGER_BYTES     (1024 * 1024) /* … or this many bytes at most */
#define MAX_REJECTING    256           /* connections busy saying 503/429 at once */
#define IP_BUCKETS       256

/* Shared state of the process: http-parser's header limit is process-wide, so is ours.
 * Written once by http_server_global_init before any server exists, then only read. */
static size_t g_max_header_bytes = 64 * 1024;

enum conn_state {
    CS_IDLE,     /* between requests (possibly writing the last response) */
    CS_HEAD,     /* header bytes of a request are arriving */
    CS_BODY,     /* reading the body */
    CS_HANDLING, /* the handler owns the request; later bytes are only buffered */
    CS_LINGER,   /* closing: write side shut down (or shutting), reads discarded */
};

enum req_phase {
    PH_NONE,       /* no request */
    PH_SERVER,     /* being parsed; the server owns it */
    PH_ON_HEADERS, /* inside on_headers */
    PH_HANDLER,    /* the handler owns it and will finish it */
};

enum resp_state { RESP_NONE, RESP_STREAMING, RESP_DONE };

struct ip_count {
    struct ip_count *next;
    unsigned n;
    char ip[46];
};

struct http_conn {
    bool in_counters;                /* counted in the server's ctr_open */
    http_server_t *srv;              /* NULL once the server is freed (orphan) */
    struct http_conn *next, *prev;   /* srv->conns */
    struct http_conn *dnext, *dprev; /* srv->deferred */
    bool deferred;

    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_parser parser;
    int handles_open; /* tcp + timer until their close callbacks */

    char client_ip[46];
    bool counted;   /* counted in srv->n_conns and the per-IP table */
    bool rejecting; /* accepted only to answer 503/429 */

    struct buf in; /* bytes read, not yet parsed: in.p[in_off .. in.n) */
    size_t in_off;

    enum conn_state state;
    bool closing;    /* uv_close called */
    bool peer_eof;   /* read side saw EOF */
    bool reading;    /* uv_read_start is active */
    bool in_process; /* conn_process is on the stack */
    bool shut_done;  /* lingering close: shutdown completed */
    size_t linger_bytes;

    /* header scan of the current request (offsets from in_off) */
    size_t scan_pos, line_start;
    bool seen_colon;
    uint64_t head_start_ms; /* uv_now when the header timer started */
    uint64_t head_start_ns;

    /* body timing */
    uint64_t body_deadline_ms, last_read_ms;

    /* the current request */
    http_request_t *req;
    enum req_phase phase;
    enum resp_state resp;
    bool keep_alive;   /* the client allows it */
    bool resp_keep;    /* what our response said */
    bool must_close;   /* close after this response whatever happens */
    bool msg_answered; /* answered before its message was fully parsed */
    bool msg_done;     /* parser delivered message_complete */
    bool ev_headers;   /* parser paused after the headers */
    bool body_too_large;
    bool body_over_budget;  /* the process-wide body budget refused this body */
    uint64_t body_reserved; /* bytes of the process-wide body budget this request holds */
    bool http10;
    bool is_head;
    bool last_was_value; /* header callbacks: what came last */
    size_t hcap;
    struct buf chunked; /* body of a chunked request (malloc; handed to the pool) */
    uint64_t body_got;
    char *body_mem; /* Content-Length body in the pool */
    bool abort_fired;
    void (*abort_fn)(http_request_t *, void *);
    void *abort_arg;
    void (*drain_fn)(http_request_t *, void *);
    void *drain_arg;
    bool drain_wanted;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t idle; /* runs deferred connection processing */
    struct http_server_config cfg;
    struct http_handlers handlers;
    int port;
    bool listening;
    bool stopping;
    bool closing;
    int handles; /* listener + idle + connections not yet closed */
    struct http_conn *conns;
    struct http_conn *deferred;
    unsigned n_conns; /* counted connections */
    unsigned n_rejecting;
    size_t in_flight;
    char *read_buf; /* shared: one read callback at a time on this loop */
    time_t date_sec;
    char date_line[48]; /* "Date: …\r\n" */
    struct ip_count *ips[IP_BUCKETS];
    _Atomic uint64_t ctr_accepted; /* read from other threads (http_server_get_counters) */
    _Atomic uint64_t ctr_open;
};

struct http_write {
    uv_write_t w;
    struct http_conn *conn;
    size_t len;
    char data[];
};

static const http_parser_settings parser_settings;

/* ---- small helpers ---- */

static uint64_t now_ms(const struct http_conn *c)
{
    return uv_now(c->tcp.loop);
}

static size_t conn_unparsed(const struct http_conn *c)
{
    return c->in.n - c->in_off;
}

static unsigned ip_hash(const char *ip)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)ip; *p; p++) h = (h ^ *p) * 16777619u;
    return h % IP_BUCKETS;
}

static struct ip_count *ip_find(http_server_t *s, const char *ip, bool create)
{
    unsigned h = ip_hash(ip);
    for (struct ip_count *e = s->ips[h]; e; e = e->next)
        if (strcmp(e->ip, ip) == 0) return e;
    if (!create) return NULL;
    struct ip_count *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    snprintf(e->ip, sizeof e->ip, "%s", ip);
    e->next = s->ips[h];
    s->ips[h] = e;
    return e;
}

static void ip_release(http_server_t *s, const char *ip)
{
    unsigned h = ip_hash(ip);
    for (struct ip_count **pp = &s->ips[h]; *pp; pp = &(*pp)->next) {
        struct ip_count *e = *pp;
        if (strcmp(e->ip, ip) != 0) continue;
        if (--e->n == 0) {
            *pp = e->next;
            free(e);
        }
        return;
    }
}

/* "Date: <IMF-fixdate>\r\n", formatted once per second. */
static const char *server_date_line(http_server_t *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date_line, sizeof s->date_line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        s->date_sec = now;
    }
    return s->date_line;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 423:
        return "Locked";
    case 424:
        return "Failed Dependency";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    case 511:
        return "Network Authentication Required";
    default:
        break;
    }
    if (status >= 100 && status < 200) return "Informational";
    if (status >= 200 && status < 300) return "Success";
    if (status >= 300 && status < 400) return "Redirection";
    if (status >= 400 && status < 500) return "Client Error";
    return "Server Error";
}

/* ---- connection lists ---- */

static void conn_undefer(struct http_conn *c)
{
    if (!c->deferred) return;
    http_server_t *s = c->srv;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else if (s)
        s->deferred = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dnext = c->dprev = NULL;
    c->deferred = false;
}

static void conn_unlink(struct http_conn *c)
{
    http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (s)
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void conn_free(struct http_conn *c)
{
    conn_undefer(c);
    conn_unlink(c);
    buf_free(&c->in);
    buf_free(&c->chunked);
    free(c);
}

static void server_maybe_free(http_server_t *s);
static void conn_process(struct http_conn *c);
static void conn_update_reading(struct http_conn *c);
static void server_idle_cb(uv_idle_t *h);

/* Request-body bytes held in memory by every server of the process (reserved when a
 * body starts, released with its request), against a budget: without one, MAX_BODY_MB
 * times the number of connections is unbounded. */
static _Atomic uint64_t g_body_bytes;
static uint64_t g_body_budget = 1024ull * 1024 * 1024;

void http_server_set_body_budget(uint64_t bytes)
{
    g_body_budget = bytes ? bytes : UINT64_MAX;
}

uint64_t http_server_body_bytes(void)
{
    return atomic_load(&g_body_bytes);
}

/* Reserves n more body bytes for c; false (nothing reserved) when over the budget. */
static bool body_reserve(struct http_conn *c, uint64_t n)
{
    uint64_t before = atomic_fetch_add(&g_body_bytes, n);
    if (before + n > g_body_budget) {
        atomic_fetch_sub(&g_body_bytes, n);
        return false;
    }
    c->body_reserved += n;
    return true;
}

/* ---- requests ---- */

/* Destroys the current request and its pool. */
static void req_destroy(struct http_conn *c)
{
    http_request_t *r = c->req;
    if (!r) return;
    c->req = NULL;
    c->phase = PH_NONE;
    c->abort_fn = NULL;
    c->drain_fn = NULL;
    c->drain_wanted = false;
    c->body_mem = NULL;
    buf_free(&c->chunked);
    if (c->body_reserved) {
        atomic_fetch_sub(&g_body_bytes, c->body_reserved);
        c->body_reserved = 0;
    }
    if (c->srv && c->srv->in_flight) c->srv->in_flight--;
    pool_destroy(r->pool);
}

/* Fires the abort callback of an unfinished handler-owned request, at most once. */
static void conn_fire_abort(struct http_conn *c)
{
    if (!c->req || c->abort_fired) return;
    if (c->phase != PH_HANDLER && c->phase != PH_ON_HEADERS) return;
    c->abort_fired = true;
    if (c->abort_fn) c->abort_fn(c->req, c->abort_arg);
}

/* ---- closing ---- */

static void conn_close_cb(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->handles_open > 0) return;
    http_server_t *s = c->srv;
    if (s) {
        if (c->counted) {
            s->n_conns--;
            ip_release(s, c->client_ip);
        }
        if (c->rejecting) s->n_rejecting--;
        if (c->in_counters) atomic_fetch_sub_explicit(&s->ctr_open, 1, memory_order_relaxed);
        s->handles--;
    }
    if (!c->req) {
        conn_free(c);
        if (s) server_maybe_free(s);
        return;
    }
    /* An unfinished request keeps the connection (orphaned from the server if that goes). */
    if (s) server_maybe_free(s);
    /* The handler may finish (and so free c) inside the callback: c is not touched after. */
    conn_fire_abort(c);
}

/* Closes at once (pending writes are dropped). A server-owned request is destroyed; a
 * handler-owned one sees its abort callback from the close callback. */
static void conn_close(struct http_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->req && c->phase == PH_SERVER) req_destroy(c);
    conn_undefer(c);
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}

static void conn_timer_cb(uv_timer_t *t);

static void conn_arm(struct http_conn *c, uint64_t deadline_ms)
{
    if (c->closing) return;
    uint64_t now = now_ms(c);
    uv_timer_start(&c->timer, conn_timer_cb, deadline_ms > now ? deadline_ms - now : 0, 0);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->closing) return;
    if (status < 0 || c->peer_eof) {
        conn_close(c);
        return;
    }
    c->shut_done = true;
    conn_arm(c, now_ms(c) + LINGER_MS);
}

/* Lingering close: flush what is queued, shut the write side, drain what the client
 * still sends for a while, then close. */
static void conn_linger(struct http_conn *c)
{
    if (c->closing || c->state == CS_LINGER) return;
    if (c->req && c->phase == PH_SERVER) req_destroy(c);
    c->state = CS_LINGER;
    conn_undefer(c);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
        conn_close(c);
        return;
    }
    /* Until the queue is flushed, a client that does not read gets the idle allowance. */
    http_server_t *s = c->srv;
    conn_arm(c, now_ms(c) + (s ? s->cfg.keepalive_timeout_ms : LINGER_MS));
    conn_update_reading(c);
}

/* ---- writing ---- */

static void conn_write_cb(uv_write_t *w, int status)
{
    struct http_write *hw = (struct http_write *)w;
    struct http_conn *c = hw->conn;
    free(hw);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    size_t q = c->tcp.write_queue_size;
    if (q <= WRITE_LOW_WATER) {
        if (c->drain_wanted && c->req) {
            c->drain_wanted = false;
            if (c->drain_fn) c->drain_fn(c->req, c->drain_arg); /* may finish the request */
            return;
        }
        /* Pipelined requests wait while a non-reading client has a full queue. */
        if (c->state == CS_IDLE && conn_unparsed(c) > 0 && !c->in_process) conn_process(c);
    }
}

/* Copies the parts into one allocation and queues one write. 0, or -1 when the
 * connection cannot take it (it is then being closed). */
static int conn_writev(struct http_conn *c, const struct slice *parts, size_t n)
{
    if (c->closing || c->state == CS_LINGER) return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += parts[i].n;
    if (len == 0) return 0;
    struct http_write *hw = malloc(sizeof *hw + len);
    if (!hw) {
        conn_close(c);
        return -1;
    }
    hw->conn = c;
    hw->len = len;
    char *p = hw->data;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].n) memcpy(p, parts[i].p, parts[i].n);
        p += parts[i].n;
    }
    uv_buf_t b = uv_buf_init(hw->data, (unsigned)len);
    if (uv_write(&hw->w, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
        free(hw);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Writes a whole response head — status line, Date, Connection, the caller's headers,
 * `extra` (complete header lines) — and then `body`, all gathered into one write. */
static int conn_write_response(struct http_conn *c, int status, bool keep,
                               const struct http_header *hdrs, size_t n_hdrs, struct slice extra,
                               struct slice body)
{
    struct slice stackv[64];
    size_t nv = 6 + 4 * n_hdrs;
    struct slice *v = nv <= 64 ? stackv : malloc(nv * sizeof *v);
    if (!v) {
        conn_close(c);
        return -1;
    }
    char status_line[96];
    int sl = snprintf(status_line, sizeof status_line, "HTTP/1.1 %d %s\r\n", status,
                      http_status_text(status));
    size_t k = 0;
    v[k++] = (struct slice){status_line, (size_t)sl};
    if (c->srv) v[k++] = slice_from(server_date_line(c->srv));
    v[k++] = keep ? SLICE_LIT("Connection: keep-alive\r\n") : SLICE_LIT("Connection: close\r\n");
    for (size_t i = 0; i < n_hdrs; i++) {
        v[k++] = hdrs[i].name;
        v[k++] = SLICE_LIT(": ");
        v[k++] = hdrs[i].value;
        v[k++] = SLICE_LIT("\r\n");
    }
    v[k++] = extra;
    v[k++] = SLICE_LIT("\r\n");
    v[k++] = body;
    int rc = conn_writev(c, v, k);
    if (v != stackv) free(v);
    return rc;
}

/* Whether the response to the current request may keep the connection. */
static bool conn_can_keep(struct http_conn *c)
{
    if (!c->keep_alive || c->must_close || c->peer_eof) return false;
    if (!c->srv || c->srv->stopping || c->srv->closing) return false;
    /* Answered before the body was read: the unread body would be taken for a request. */
    bool body_pending =
        !c->msg_done && (c->parser.flags & F_CHUNKED || c->body_got < c->req->content_length);
    if (c->phase == PH_ON_HEADERS && body_pending) return false;
    if (c->state == CS_HEAD && body_pending) return false;
    return true;
}

/* A response the server writes itself (errors, limits), then lingering close. */
static void conn_error(struct http_conn *c, int status, const char *extra_headers)
{
    if (c->closing || c->state == CS_LINGER) return;
    if (c->req && c->phase == PH_SERVER) req_destroy(c);
    char body[320], extra[256];
    const char *code = "bad_request", *msg = "Malformed HTTP request.";
    switch (status) {
    case 408:
        code = "request_timeout";
        msg = "The request was not received in time.";
        break;
    case 413:
        code = "request_too_large";
        msg = "The request body is larger than the limit (MAX_BODY_MB).";
        break;
    case 429:
        code = "too_many_connections";
        msg = "Too many connections from this address.";
        break;
    case 431:
        code = "headers_too_large";
        msg = "The request headers are larger than 64 KiB.";
        break;
    case 503:
        code = c->body_over_budget ? "overloaded" : "too_many_connections";
        msg = c->body_over_budget
                  ? "The server holds too many request bodies right now; retry later."
                  : "The server has too many connections; retry later.";
        break;
    case 505:
        code = "http_version_not_supported";
        msg = "Only HTTP/1.x is supported.";
        break;
    case 405:
        code = "method_not_allowed";
        msg = "Method not allowed.";
        break;
    default:
        break;
    }
    /* OpenAI's error shape: what /v1 clients parse (the texts above need no escaping). */
    int bn = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":\"%s\","
                      "\"param\":null}}\n",
                      msg, status >= 500 ? "server_error" : "invalid_request_error", code);
    int en =
        snprintf(extra, sizeof extra, "Content-Type: application/json\r\nContent-Length: %d\r\n%s",
                 bn, extra_headers ? extra_headers : "");
    if (conn_write_response(c, status, false, NULL, 0, (struct slice){extra, (size_t)en},
                            (struct slice){body, (size_t)bn}) != 0)
        return; /* closing already */
    conn_linger(c);
}

/* ---- parser callbacks (they only record; all decisions happen outside them) ---- */

static struct slice pool_concat(pool_t *p, struct slice a, const char *b, size_t bn)
{
    char *m = pool_alloc(p, a.n + bn + 1);
    if (!m) return SLICE_NULL;
    if (a.n) memcpy(m, a.p, a.n);
    memcpy(m + a.n, b, bn);
    m[a.n + bn] = '\0';
    return (struct slice){m, a.n + bn};
}

static int on_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    pool_t *pool = pool_create();
    http_request_t *r = pool ? pool_calloc(pool, sizeof *r) : NULL;
    if (!r) {
        pool_destroy(pool);
        return 1;
    }
    r->pool = pool;
    r->conn = c;
    r->start_ns = c->head_start_ns;
    memcpy(r->client_ip, c->client_ip, sizeof r->client_ip);
    r->target = (struct slice){"", 0};
    r->body = (struct slice){"", 0};
    r->query = (struct slice){"", 0};
    c->req = r;
    c->phase = PH_SERVER;
    c->resp = RESP_NONE;
    c->must_close = c->msg_answered = c->msg_done = false;
    c->body_too_large = false;
    c->body_over_budget = false;
    c->last_was_value = true;
    c->hcap = 0;
    c->body_got = 0;
    c->body_mem = NULL;
    c->abort_fired = false;
    c->abort_fn = NULL;
    c->drain_fn = NULL;
    c->drain_wanted = false;
    if (c->srv) c->srv->in_flight++;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    c->req->target = pool_concat(c->req->pool, c->req->target, at, n);
    return c->req->target.p ? 0 : 1;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    http_request_t *r = c->req;
    if (c->state != CS_HEAD) return 0; /* trailers of a chunked body: ignored */
    if (c->last_was_value) {
        if (r->n_headers == c->hcap) {
            size_t cap = c->hcap ? c->hcap * 2 : 16;
            struct http_header *h = pool_alloc(r->pool, cap * sizeof *h);
            if (!h) return 1;
            if (r->n_headers) memcpy(h, r->headers, r->n_headers * sizeof *h);
            r->headers = h;
            c->hcap = cap;
        }
        r->headers[r->n_headers++] = (struct http_header){{"", 0}, {"", 0}};
        c->last_was_value = false;
    }
    struct http_header *h = &r->headers[r->n_headers - 1];
    h->name = pool_concat(r->pool, h->name, at, n);
    return h->name.p ? 0 : 1;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    http_request_t *r = c->req;
    if (c->state != CS_HEAD) return 0;
    if (r->n_headers == 0) return 1;
    c->last_was_value = true;
    struct http_header *h = &r->headers[r->n_headers - 1];
    h->value = pool_concat(r->pool, h->value, at, n);
    return h->value.p ? 0 : 1;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->ev_headers = true;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (!c->req || c->msg_answered) return 0;
    http_server_t *s = c->srv;
    if (s && c->body_got + n > s->cfg.max_body_bytes) {
        c->body_too_large = true;
        return 1;
    }
    if (c->body_mem) {
        if (c->body_got + n > c->req->content_length) return 1;
        memcpy(c->body_mem + c->body_got, at, n);
    } else {
        if (!body_reserve(c, n)) {
            c->body_over_budget = true;
            return 1;
        }
        if (!buf_append(&c->chunked, at, n)) return 1;
    }
    c->body_got += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->msg_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- request phases ---- */

/* After a complete response: next request, or close. */
static void conn_after_response(struct http_conn *c)
{
    if (c->closing || c->state == CS_LINGER) return;
    if (!c->resp_keep || c->peer_eof) {
        conn_linger(c);
        return;
    }
    c->state = CS_IDLE;
    if (c->srv) conn_arm(c, now_ms(c) + c->srv->cfg.keepalive_timeout_ms);
    if (!c->in_process && conn_unparsed(c) > 0 && c->srv) {
        /* Parse the next pipelined request from the loop, not inside the handler's call. */
        http_server_t *s = c->srv;
        if (!c->deferred) {
            c->deferred = true;
            c->dprev = NULL;
            c->dnext = s->deferred;
            if (s->deferred) s->deferred->dprev = c;
            s->deferred = c;
            uv_idle_start(&s->idle, server_idle_cb);
        }
    }
    conn_update_reading(c);
}

static void fill_request_fields(struct http_conn *c)
{
    http_request_t *r = c->req;
    r->method = slice_from(http_method_str(c->parser.method));
    const char *q = memchr(r->target.p, '?', r->target.n);
    if (q) {
        r->path = (struct slice){r->target.p, (size_t)(q - r->target.p)};
        r->query = (struct slice){q + 1, r->target.n - (size_t)(q - r->target.p) - 1};
    } else {
        r->path = r->target;
    }
    for (size_t i = 0; i < r->n_headers; i++) r->headers[i].value = slice_trim(r->headers[i].value);
    r->chunked = (c->parser.flags & F_CHUNKED) != 0;
    r->content_length =
        (!r->chunked && c->parser.content_length != ULLONG_MAX) ? c->parser.content_length : 0;
    struct slice e = http_request_header(r, "expect");
    r->expect_continue = e.p && slice_ieq_str(e, "100-continue");
    c->keep_alive = http_should_keep_alive(&c->parser) != 0;
    c->http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
    c->is_head = c->parser.method == HTTP_HEAD;
}

/* The parser paused after the headers. */
static void conn_on_headers(struct http_conn *c)
{
    http_server_t *s = c->srv;
    http_request_t *r = c->req;
    fill_request_fields(c);
    if (c->parser.http_major != 1) {
        conn_error(c, 505, NULL);
        return;
    }
    if (c->parser.method == HTTP_CONNECT) {
        conn_error(c, 405, NULL);
        return;
    }
    if (r->content_length > s->cfg.max_body_bytes) {
        conn_error(c, 413, NULL);
        return;
    }
    if (r->content_length > 0 && !body_reserve(c, r->content_length)) {
        c->body_over_budget = true;
        conn_error(c, 503, "Retry-After: 1\r\n");
        return;
    }
    if (r->content_length > 0) {
        c->body_mem = pool_alloc(r->pool, r->content_length + 1);
        if (!c->body_mem) {
            conn_error(c, 503, NULL);
            return;
        }
    }
    bool body_pending = r->chunked || r->content_length > 0;

    enum http_verdict v = HTTP_READ_BODY;
    if (s->handlers.on_headers) {
        c->phase = PH_ON_HEADERS;
        v = s->handlers.on_headers(r, s->handlers.ud);
        if (c->closing) return;
        /* c->req is NULL when the handler finished the request inside on_headers. */
    }
    if (v == HTTP_ANSWERED || c->req == NULL || c->resp != RESP_NONE) {
        c->msg_answered = true;
        if (c->req) c->phase = PH_HANDLER;
        if (body_pending) {
            /* The body stays unread: close after the answer (lingering). */
            c->must_close = true;
            if (c->req) {
                c->state = CS_HANDLING;
                uv_timer_stop(&c->timer);
            } else {
                conn_linger(c);
            }
        }
        /* No body: the parser completes the message right away (see conn_on_message). */
        return;
    }
    c->phase = PH_SERVER;
    if (body_pending) {
        c->state = CS_BODY;
        c->body_deadline_ms = now_ms(c) + s->cfg.body_timeout_ms;
        c->last_read_ms = now_ms(c);
        uint64_t idle = c->last_read_ms + s->cfg.body_idle_timeout_ms;
        conn_arm(c, idle < c->body_deadline_ms ? idle : c->body_deadline_ms);
        if (r->expect_continue && !c->http10) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            conn_writev(c, &(struct slice){cont, sizeof cont - 1}, 1);
        }
    }
}

static void body_free(void *p)
{
    free(p);
}

/* The parser paused after a whole message. */
static void conn_on_message(struct http_conn *c)
{
    c->msg_done = true;
    if (c->msg_answered) {
        if (c->req) {
            c->state = CS_HANDLING;
            uv_timer_stop(&c->timer);
        } else {
            conn_after_response(c);
        }
        return;
    }
    http_request_t *r = c->req;
    if (!r) return;
    if (c->body_mem) {
        c->body_mem[c->body_got] = '\0';
        r->body = (struct slice){c->body_mem, c->body_got};
    } else if (c->chunked.n) {
        char *mem = c->chunked.p;
        size_t n = c->chunked.n;
        c->chunked = BUF_INIT;
        if (pool_cleanup(r->pool, body_free, mem) != 0) {
            conn_error(c, 503, NULL);
            return;
        }
        r->body = (struct slice){mem, n};
    }
    c->state = CS_HANDLING;
    c->phase = PH_HANDLER;
    uv_timer_stop(&c->timer);
    http_server_t *s = c->srv;
    s->handlers.on_request(r, s->handlers.ud);
}

/* Feeds bytes to the parser; returns how many it consumed. Stops after each message. */
static size_t conn_execute(struct http_conn *c, const char *data, size_t n)
{
    size_t done = 0;
    while (done < n && !c->closing && (c->state == CS_HEAD || c->state == CS_BODY)) {
        size_t k = http_parser_execute(&c->parser, &parser_settings, data + done, n - done);
        done += k;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            if (c->body_too_large)
                conn_error(c, 413, NULL);
            else if (c->body_over_budget)
                conn_error(c, 503, "Retry-After: 1\r\n");
            else if (e == HPE_HEADER_OVERFLOW)
                conn_error(c, 431, NULL);
            else if (e == HPE_CB_message_begin)
                conn_error(c, 503, NULL);
            else
                conn_error(c, 400, NULL);
            return n;
        }
        if (c->ev_headers) {
            c->ev_headers = false;
            conn_on_headers(c);
            continue;
        }
        if (c->msg_done) {
            conn_on_message(c);
            break;
        }
        if (k == 0) break; /* cannot happen; never spin */
    }
    return done;
}

/* Scans the header block; returns its length once complete, 0 when more bytes are
 * needed, -1 when malformed. Rejected here because http-parser accepts them: bare LF,
 * bare CR, obs-fold, whitespace inside or before the colon of a field name, a header
 * line without a colon (all request-smuggling material behind a front proxy). */
static long scan_head(struct http_conn *c)
{
    const char *p = c->in.p + c->in_off;
    size_t n = conn_unparsed(c);
    for (size_t i = c->scan_pos; i < n; i++) {
        char ch = p[i];
        bool field_line = c->line_start > 0; /* line 0 is the request line */
        if (i == c->line_start) {
            c->seen_colon = false;
            if (field_line && (ch == ' ' || ch == '\t')) return -1; /* obs-fold */
        }
        if (ch == '\r') {
            if (i + 1 == n) {
                c->scan_pos = i; /* look again when the next byte is here */
                return 0;
            }
            if (p[i + 1] != '\n') return -1;                                   /* bare CR */
            if (field_line && i != c->line_start && !c->seen_colon) return -1; /* no colon */
            continue;
        }
        if (ch == '\n') {
            if (i == 0 || p[i - 1] != '\r') return -1; /* bare LF */
            if (i - 1 == c->line_start) {
                if (i == 1) return -1; /* cannot start with an empty line here */
                return (long)(i + 1);
            }
            c->line_start = i + 1;
            continue;
        }
        if (field_line && !c->seen_colon) {
            if (ch == ':') {
                if (i == c->line_start) return -1; /* empty field name */
                c->seen_colon = true;
            } else if (ch == ' ' || ch == '\t') {
                return -1; /* whitespace in or after a field name */
            }
        }
    }
    c->scan_pos = n;
    return 0;
}

static void conn_begin_head(struct http_conn *c)
{
    c->state = CS_HEAD;
    c->scan_pos = c->line_start = 0;
    c->head_start_ns = clock_mono_ns();
    c->head_start_ms = now_ms(c);
    if (c->srv) conn_arm(c, c->head_start_ms + c->srv->cfg.header_timeout_ms);
}

/* Moves as far as the buffered bytes allow. */
static void conn_process(struct http_conn *c)
{
    if (c->in_process) return;
    c->in_process = true;
    while (!c->closing && c->srv) {
        if (c->state == CS_IDLE) {
            /* Leading empty lines before a request are allowed (RFC 9112 §2.2). */
            while (conn_unparsed(c) >= 2 && c->in.p[c->in_off] == '\r' &&
                   c->in.p[c->in_off + 1] == '\n')
                c->in_off += 2;
            if (conn_unparsed(c) == 0) {
                if (c->peer_eof) conn_linger(c);
                break;
            }
            if (conn_unparsed(c) == 1 && c->in.p[c->in_off] == '\r') break;
            if (c->tcp.write_queue_size > WRITE_HIGH_WATER) break; /* wait for the client */
            if (c->srv->stopping) {
                conn_linger(c);
                break;
            }
            conn_begin_head(c);
        }
        if (c->state == CS_HEAD) {
            long hl = scan_head(c);
            if (hl < 0) {
                conn_error(c, 400, NULL);
                break;
            }
            if (hl == 0) {
                if (conn_unparsed(c) > g_max_header_bytes)
                    conn_error(c, 431, NULL);
                else if (c->peer_eof)
                    conn_close(c);
                break;
            }
            if ((size_t)hl > g_max_header_bytes) {
                conn_error(c, 431, NULL);
                break;
            }
            http_parser_init(&c->parser, HTTP_REQUEST);
            c->parser.data = c;
        }
        if (c->state != CS_HEAD && c->state != CS_BODY) break;
        size_t avail = conn_unparsed(c);
        if (avail == 0) {
            if (c->peer_eof) conn_close(c);
            break;
        }
        size_t k = conn_execute(c, c->in.p + c->in_off, avail);
        if (c->closing) break;
        c->in_off += k;
        if (c->state == CS_BODY && conn_unparsed(c) == 0) {
            if (c->peer_eof) conn_close(c);
            break;
        }
    }
    if (!c->closing) {
        /* Scan offsets are relative to in_off, so compacting keeps them valid. */
        if (c->in_off == c->in.n) {
            c->in.n = c->in_off = 0;
        } else if (c->in_off > 0) {
            buf_consume(&c->in, c->in_off);
            c->in_off = 0;
        }
        conn_update_reading(c);
    }
    c->in_process = false;
}

/* ---- reading ---- */

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    size_t n = READ_CHUNK;
    if ((c->state == CS_HANDLING || c->state == CS_IDLE) && c->srv) {
        size_t have = conn_unparsed(c);
        n = have < READAHEAD_MAX ? READAHEAD_MAX - have : 1;
        if (n > READ_CHUNK) n = READ_CHUNK;
    }
    if (!c->srv) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init(c->srv->read_buf, (unsigned)n);
}

static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = st->data;
    if (c->closing || nread == 0) return;
    if (nread < 0) {
        c->peer_eof = true;
        uv_read_stop(st);
        c->reading = false;
        if (nread != UV_EOF) {
            conn_close(c); /* reset or error: the abort callback fires from the close callback */
            return;
        }
        switch (c->state) {
        case CS_LINGER:
            if (c->shut_done) conn_close(c);
            break;
        case CS_HANDLING:
            conn_fire_abort(c); /* may finish the request, which then closes or lingers */
            break;
        case CS_BODY:
            conn_close(c);
            break;
        default:
            if (!c->in_process) conn_process(c);
            break;
        }
        return;
    }
    if (c->state == CS_LINGER) {
        c->linger_bytes += (size_t)nread;
        if (c->linger_bytes > LINGER_BYTES) conn_close(c);
        return;
    }
    if (!buf_append(&c->in, b->base, (size_t)nread)) {
        conn_close(c);
        return;
    }
    if (c->state == CS_BODY) c->last_read_ms = now_ms(c);
    if (c->state == CS_HANDLING) {
        conn_update_reading(c);
        return;
    }
    conn_process(c);
}

/* Reads unless the read-ahead buffer is full (or reading is pointless). */
static void conn_update_reading(struct http_conn *c)
{
    if (c->closing) return;
    bool want = !c->peer_eof;
    if (want && c->state != CS_LINGER && c->state != CS_HEAD && c->state != CS_BODY &&
        conn_unparsed(c) >= READAHEAD_MAX)
        want = false;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->closing) return;
    uint64_t now = now_ms(c);
    switch (c->state) {
    case CS_IDLE:
        /* Idle keep-alive, or a fresh connection that sent nothing: close silently. */
        conn_close(c);
        break;
    case CS_HEAD:
        conn_error(c, 408, NULL);
        break;
    case CS_BODY: {
        uint64_t idle = c->last_read_ms + (c->srv ? c->srv->cfg.body_idle_timeout_ms : 0);
        if (now >= c->body_deadline_ms || now >= idle) {
            conn_error(c, 408, NULL);
            break;
        }
        conn_arm(c, idle < c->body_deadline_ms ? idle : c->body_deadline_ms);
        break;
    }
    case CS_LINGER:
        conn_close(c);
        break;
    case CS_HANDLING:
        break;
    }
}

/* ---- accepting ---- */

static void client_ip_text(uv_tcp_t *tcp, char *out, size_t outn)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(out, outn, "unknown");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, out, outn);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            struct sockaddr_in a4 = {.sin_family = AF_INET};
            memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
            uv_ip4_name(&a4, out, outn);
        } else {
            uv_ip6_name(a6, out, outn);
        }
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server_t *s = listener->data;
    if (status < 0 || s->closing) return;
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    s->handles++;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    c->in_counters = true;
    atomic_fetch_add_explicit(&s->ctr_accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ctr_open, 1, memory_order_relaxed);
    uv_tcp_nodelay(&c->tcp, 1);
    client_ip_text(&c->tcp, c->client_ip, sizeof c->client_ip);
    c->state = CS_IDLE;

    const char *reject = NULL;
    int reject_status = 0;
    struct ip_count *ipc = ip_find(s, c->client_ip, false);
    if (s->cfg.max_connections && s->n_conns >= s->cfg.max_connections) {
        reject_status = 503;
        reject = "Retry-After: 1\r\n";
    } else if (s->cfg.max_connections_per_ip && ipc && ipc->n >= s->cfg.max_connections_per_ip) {
        reject_status = 429;
        reject = "Retry-After: 1\r\n";
    }
    if (reject) {
        if (s->n_rejecting >= MAX_REJECTING) {
            conn_close(c);
            return;
        }
        c->rejecting = true;
        s->n_rejecting++;
        conn_error(c, reject_status, reject);
        return;
    }
    ipc = ip_find(s, c->client_ip, true);
    if (!ipc) {
        conn_close(c);
        return;
    }
    ipc->n++;
    s->n_conns++;
    c->counted = true;
    conn_arm(c, now_ms(c) + s->cfg.header_timeout_ms);
    conn_update_reading(c);
}

static void server_idle_cb(uv_idle_t *h)
{
    http_server_t *s = h->data;
    while (s->deferred) {
        struct http_conn *c = s->deferred;
        conn_undefer(c);
        conn_process(c);
    }
    uv_idle_stop(h);
}

/* ---- server ---- */

void http_server_global_init(size_t max_header_bytes)
{
    if (max_header_bytes == 0) max_header_bytes = 64 * 1024;
    g_max_header_bytes = max_header_bytes;
    http_parser_set_max_header_size((uint32_t)max_header_bytes);
}

static _Thread_local char g_err[160];

static const char *set_err(const char *what, int uverr)
{
    snprintf(g_err, sizeof g_err, "%s: %s", what, uv_strerror(uverr));
    return g_err;
}

static void server_handle_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    s->handles--;
    server_maybe_free(s);
}

static void server_maybe_free(http_server_t *s)
{
    if (!s->closing || s->handles > 0) return;
    /* Orphans: closed connections whose request the handler has not finished yet. */
    for (struct http_conn *c = s->conns, *n; c; c = n) {
        n = c->next;
        c->srv = NULL;
        c->next = c->prev = NULL;
        c->deferred = false;
        c->dnext = c->dprev = NULL;
    }
    for (int i = 0; i < IP_BUCKETS; i++) {
        for (struct ip_count *e = s->ips[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    }
    free(s->read_buf);
    free(s);
}

static int open_listener(http_server_t *s, const char *host, int port, const char **err)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    socklen_t alen;
    memset(&addr, 0, sizeof addr);
    if (uv_ip4_addr(host, port, &addr.in4) == 0) {
        alen = sizeof addr.in4;
    } else if (uv_ip6_addr(host, port, &addr.in6) == 0) {
        alen = sizeof addr.in6;
    } else {
        snprintf(g_err, sizeof g_err, "invalid listen address \"%s\"", host);
        *err = g_err;
        return -1;
    }
    int fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = set_err("socket", uv_translate_sys_error(errno));
        return -1;
    }
    int one = 1, zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        (addr.sa.sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0)) {
        *err = set_err("setsockopt", uv_translate_sys_error(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, &addr.sa, alen) != 0) {
        snprintf(g_err, sizeof g_err, "bind %s:%d: %s", host, port, strerror(errno));
        *err = g_err;
        close(fd);
        return -1;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->handles++;
    s->listening = true; /* the handle exists: it must be closed from now on */
    int rc = uv_tcp_open(&s->listener, fd);
    if (rc != 0) {
        close(fd);
        *err = set_err("uv_tcp_open", rc);
        return -1;
    }
    rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        *err = set_err("listen", rc);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
        s->port = bound.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port)
                                             : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return 0;
}

http_server_t *http_server_start(uv_loop_t *loop, const struct http_server_config *cfg,
                                 const struct http_handlers *handlers, const char **err)
{
    const char *dummy;
    if (!err) err = &dummy;
    if (!loop || !cfg || !handlers || !handlers->on_request) {
        *err = "http_server_start: missing loop, config or on_request";
        return NULL;
    }
    if (cfg->port < 0 || cfg->port > 65535) {
        *err = "http_server_start: port out of range";
        return NULL;
    }
    http_server_t *s = calloc(1, sizeof *s);
    char *rb = malloc(READ_CHUNK);
    if (!s || !rb) {
        free(s);
        free(rb);
        *err = "out of memory";
        return NULL;
    }
    s->loop = loop;
    s->read_buf = rb;
    s->cfg = *cfg;
    s->handlers = *handlers;
    if (!s->cfg.host || !*s->cfg.host) s->cfg.host = "0.0.0.0";
    if (!s->cfg.max_body_bytes) s->cfg.max_body_bytes = 32ull * 1024 * 1024;
    if (!s->cfg.header_timeout_ms) s->cfg.header_timeout_ms = 10000;
    if (!s->cfg.body_timeout_ms) s->cfg.body_timeout_ms = 600000;
    if (!s->cfg.body_idle_timeout_ms) s->cfg.body_idle_timeout_ms = 30000;
    if (!s->cfg.keepalive_timeout_ms) s->cfg.keepalive_timeout_ms = 75000;
    s->date_sec = (time_t)-1;
    if (open_listener(s, s->cfg.host, cfg->port, err) != 0) {
        if (!s->listening) {
            free(s->read_buf);
            free(s);
            return NULL;
        }
        /* Rare (uv_tcp_open or uv_listen failed): the struct is freed by the close
         * callback when the loop runs next. */
        s->closing = true;
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
        return NULL;
    }
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    s->handles++;
    return s;
}

void http_server_get_counters(const http_server_t *s, struct http_server_counters *out)
{
    out->accepted = atomic_load_explicit(&s->ctr_accepted, memory_order_relaxed);
    out->open = atomic_load_explicit(&s->ctr_open, memory_order_relaxed);
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

size_t http_server_in_flight(const http_server_t *s)
{
    return s->in_flight;
}

void http_server_stop_accepting(http_server_t *s)
{
    if (s->stopping) return;
    s->stopping = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    }
    for (struct http_conn *c = s->conns, *n; c; c = n) {
        n = c->next;
        if (!c->closing && c->state == CS_IDLE && !c->req && conn_unparsed(c) == 0) conn_linger(c);
    }
}

void http_server_close(http_server_t *s)
{
    if (s->closing) return;
    s->stopping = true;
    s->closing = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    }
    uv_close((uv_handle_t *)&s->idle, server_handle_closed);
    for (struct http_conn *c = s->conns, *n; c; c = n) {
        n = c->next;
        conn_close(c);
    }
}

/* ---- answering ---- */

static void req_done(http_request_t *req);

void http_respond(http_request_t *req, int status, const struct http_header *hdrs, size_t n_hdrs,
                  struct slice body)
{
    struct http_conn *c = req->conn;
    if (c->resp != RESP_NONE) { /* misuse: answered twice */
        log_warn("http_server: response to %.*s written twice", (int)req->path.n, req->path.p);
        req_done(req);
        return;
    }
    c->resp = RESP_DONE;
    if (!c->closing && c->state != CS_LINGER) {
        bool keep = conn_can_keep(c);
        bool no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
        char cl[48];
        int cn = no_body ? 0 : snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", body.n);
        c->resp_keep = keep;
        if (no_body || c->is_head) body = SLICE_NULL;
        conn_write_response(c, status, keep, hdrs, n_hdrs, (struct slice){cl, (size_t)cn}, body);
    }
    req_done(req);
}

void http_respond_json(http_request_t *req, int status, struct slice json)
{
    struct http_header h = {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")};
    http_respond(req, status, &h, 1, json);
}

static bool conn_gone(const struct http_conn *c)
{
    return c->closing || c->peer_eof || c->state == CS_LINGER;
}

int http_stream_start(http_request_t *req, int status, const struct http_header *hdrs,
                      size_t n_hdrs)
{
    struct http_conn *c = req->conn;
    if (c->resp != RESP_NONE) return -1;
    if (conn_gone(c)) return -1;
    c->resp = RESP_STREAMING;
    /* HTTP/1.0 has no chunked coding: the body ends with the connection. */
    bool keep = conn_can_keep(c) && !c->http10;
    c->resp_keep = keep;
    struct slice te = c->http10 ? SLICE_NULL : SLICE_LIT("Transfer-Encoding: chunked\r\n");
    return conn_write_response(c, status, keep, hdrs, n_hdrs, te, SLICE_NULL);
}

int http_stream_write(http_request_t *req, const struct slice *parts, size_t n_parts)
{
    struct http_conn *c = req->conn;
    if (c->resp != RESP_STREAMING || conn_gone(c)) return -1;
    size_t total = 0;
    for (size_t i = 0; i < n_parts; i++) total += parts[i].n;
    if (total > 0 && !c->is_head) {
        /* One chunk: size line, the parts, CRLF — copied into one write. */
        struct slice stackv[18];
        struct slice *v = n_parts + 2 <= 18 ? stackv : malloc((n_parts + 2) * sizeof *v);
        if (!v) return -1;
        char line[24];
        int ln = snprintf(line, sizeof line, "%zx\r\n", total);
        size_t k = 0;
        if (!c->http10) v[k++] = (struct slice){line, (size_t)ln};
        for (size_t i = 0; i < n_parts; i++) v[k++] = parts[i];
        if (!c->http10) v[k++] = SLICE_LIT("\r\n");
        int rc = conn_writev(c, v, k);
        if (v != stackv) free(v);
        if (rc != 0) return -1;
    }
    if (c->tcp.write_queue_size > WRITE_HIGH_WATER) {
        c->drain_wanted = true;
        return 1;
    }
    return 0;
}

void http_stream_end(http_request_t *req)
{
    struct http_conn *c = req->conn;
    if (c->resp == RESP_STREAMING && !c->closing && c->state != CS_LINGER) {
        if (!c->http10 && !c->is_head) conn_writev(c, &SLICE_LIT("0\r\n\r\n"), 1);
        c->resp = RESP_DONE;
    }
    req_done(req);
}

void http_request_finish(http_request_t *req)
{
    req_done(req);
}

/* Finishes the request: frees it, then moves the connection on. */
static void req_done(http_request_t *req)
{
    struct http_conn *c = req->conn;
    enum req_phase phase = c->phase;
    bool complete = c->resp == RESP_DONE;
    if (c->req != req) return; /* misuse; nothing safe to do */
    req_destroy(c);
    if (c->handles_open == 0) { /* orphan: the connection only waited for us */
        conn_free(c);
        return;
    }
    if (c->closing) return;
    if (!complete) {
        /* No (or a truncated) response: the client cannot trust this connection. */
        conn_close(c);
        return;
    }
    if (phase == PH_ON_HEADERS) return; /* conn_on_headers takes it from here */
    if (c->state == CS_HANDLING) conn_after_response(c);
}

void http_request_on_drain(http_request_t *req, void (*fn)(http_request_t *req, void *arg),
                           void *arg)
{
    req->conn->drain_fn = fn;
    req->conn->drain_arg = arg;
}

void http_request_on_abort(http_request_t *req, void (*fn)(http_request_t *req, void *arg),
                           void *arg)
{
    req->conn->abort_fn = fn;
    req->conn->abort_arg = arg;
}

struct slice http_request_header(const http_request_t *req, const char *name)
{
    struct slice n = slice_from(name);
    for (size_t i = 0; i < req->n_headers; i++)
        if (slice_ieq(req->headers[i].name, n)) return req->headers[i].value;
    return SLICE_NULL;
}

struct slice http_request_query_param(const http_request_t *req, const char *name)
{
    size_t nl = strlen(name);
    const char *p = req->query.p, *end = req->query.p + req->query.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        if ((size_t)(ke - p) == nl && memcmp(p, name, nl) == 0) {
            if (!eq) return (struct slice){e, 0};
            return (struct slice){eq + 1, (size_t)(e - eq - 1)};
        }
        p = amp ? amp + 1 : end;
    }
    return SLICE_NULL;
}

size_t http_request_write_queue(const http_request_t *req)
{
    const struct http_conn *c = req->conn;
    if (c->closing) return 0;
    return c->tcp.write_queue_size;
}
