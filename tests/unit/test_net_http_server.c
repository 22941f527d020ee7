/* test_net_http_server.c — the HTTP/1.1 server against raw TCP clients.
 *
 * Each test starts a server on 127.0.0.1:0 in a loop thread, talks to it with blocking
 * sockets, then closes the server and checks that the loop ended with every handle
 * closed (leaks are ASan's part). Handlers pick their behaviour from the path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/http_server.h"

/* ---- server in a thread ---- */

static struct {
    uv_loop_t loop;
    uv_async_t stop;
    uv_async_t stop_accepting;
    http_server_t *srv;
    struct http_server_config cfg;
    pthread_t th;
    uv_sem_t ready;
    int port;
    int loop_close_rc;
} T;

static atomic_int g_aborted;  /* abort callbacks seen */
static atomic_int g_hit_high; /* http_stream_write returned 1 */
static atomic_int g_drained;  /* drain callback ran */
static atomic_int g_flood_chunks;
static atomic_int g_on_headers; /* on_headers calls */
static atomic_int g_requests;   /* on_request calls */

static void on_request(http_request_t *req, void *ud);
static enum http_verdict on_headers(http_request_t *req, void *ud);

static void stop_cb(uv_async_t *a)
{
    http_server_close(T.srv);
    uv_close((uv_handle_t *)a, NULL);
    uv_close((uv_handle_t *)&T.stop_accepting, NULL);
}

static void stop_accepting_cb(uv_async_t *a)
{
    http_server_stop_accepting(T.srv);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_loop_init(&T.loop);
    uv_async_init(&T.loop, &T.stop, stop_cb);
    uv_async_init(&T.loop, &T.stop_accepting, stop_accepting_cb);
    struct http_handlers h = {on_headers, on_request, NULL};
    const char *err = NULL;
    T.srv = http_server_start(&T.loop, &T.cfg, &h, &err);
    if (!T.srv) fprintf(stderr, "start: %s\n", err);
    T.port = T.srv ? http_server_port(T.srv) : -1;
    uv_sem_post(&T.ready);
    if (!T.srv) {
        uv_close((uv_handle_t *)&T.stop, NULL);
        uv_close((uv_handle_t *)&T.stop_accepting, NULL);
    }
    uv_run(&T.loop, UV_RUN_DEFAULT);
    T.loop_close_rc = uv_loop_close(&T.loop);
    return NULL;
}

static void srv_start(const struct http_server_config *cfg)
{
    struct http_server_config def = {.host = "127.0.0.1", .port = 0};
    T.cfg = cfg ? *cfg : def;
    if (!T.cfg.host) T.cfg.host = "127.0.0.1";
    atomic_store(&g_aborted, 0);
    atomic_store(&g_hit_high, 0);
    atomic_store(&g_drained, 0);
    atomic_store(&g_flood_chunks, 0);
    atomic_store(&g_on_headers, 0);
    atomic_store(&g_requests, 0);
    uv_sem_init(&T.ready, 0);
    assert_int_equal(pthread_create(&T.th, NULL, loop_thread, NULL), 0);
    uv_sem_wait(&T.ready);
    uv_sem_destroy(&T.ready);
    assert_true(T.port > 0);
}

static void srv_stop(void)
{
    uv_async_send(&T.stop);
    pthread_join(T.th, NULL);
    assert_int_equal(T.loop_close_rc, 0);
}

/* ---- handlers (they run on the loop thread: a failed check aborts the process) ---- */

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct job {
    uv_timer_t timer;
    http_request_t *req;
    int left;
};

static void job_free(uv_handle_t *h)
{
    free(h->data);
}

static void job_end(struct job *j)
{
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, job_free);
}

static struct job *job_new(http_request_t *req)
{
    struct job *j = calloc(1, sizeof *j);
    uv_timer_init(&T.loop, &j->timer);
    j->timer.data = j;
    j->req = req;
    return j;
}

static void echo(http_request_t *req)
{
    char *b =
        pool_printf(req->pool, "%.*s %.*s %zu:%.*s", (int)req->method.n, req->method.p,
                    (int)req->target.n, req->target.p, req->body.n, (int)req->body.n, req->body.p);
    struct http_header h = {SLICE_LIT("X-Echo"), SLICE_LIT("yes")};
    http_respond(req, 200, &h, 1, slice_from(b));
}

static void delayed_cb(uv_timer_t *t)
{
    struct job *j = t->data;
    echo(j->req);
    job_end(j);
}

static void stream_tick(uv_timer_t *t)
{
    struct job *j = t->data;
    char piece[32];
    int n = snprintf(piece, sizeof piece, "chunk%d;", 5 - j->left);
    struct slice parts[2] = {{piece, (size_t)n - 1}, SLICE_LIT(";")};
    CHECK(http_stream_write(j->req, parts, 2) >= 0);
    if (--j->left == 0) {
        http_stream_end(j->req);
        job_end(j);
    }
}

static void forever_tick(uv_timer_t *t)
{
    struct job *j = t->data;
    http_stream_write(j->req, &SLICE_LIT("data: tick\n\n"), 1);
}

static void forever_abort(http_request_t *req, void *arg)
{
    struct job *j = arg;
    atomic_fetch_add(&g_aborted, 1);
    job_end(j);
    http_request_finish(req);
}

static void lazy_finish(uv_timer_t *t)
{
    struct job *j = t->data;
    http_request_finish(j->req);
    job_end(j);
}

/* Finishes some time after the abort, as a handler waiting on an upstream would. */
static void lazy_abort(http_request_t *req, void *arg)
{
    struct job *j = arg;
    atomic_fetch_add(&g_aborted, 1);
    uv_timer_stop(&j->timer);
    uv_timer_start(&j->timer, lazy_finish, 50, 0);
}

static void flood_drain(http_request_t *req, void *arg)
{
    atomic_store(&g_drained, 1);
    http_stream_write(req, &SLICE_LIT("end"), 1);
    http_stream_end(req);
}

static void flood_abort(http_request_t *req, void *arg)
{
    atomic_fetch_add(&g_aborted, 1);
    http_request_finish(req);
}

static enum http_verdict on_headers(http_request_t *req, void *ud)
{
    atomic_fetch_add(&g_on_headers, 1);
    if (slice_starts_with(req->path, "/reject")) {
        http_respond_json(req, 401, SLICE_LIT("{\"error\":\"no key\"}"));
        return HTTP_ANSWERED;
    }
    return HTTP_READ_BODY;
}

static void on_request(http_request_t *req, void *ud)
{
    atomic_fetch_add(&g_requests, 1);
    struct slice p = req->path;
    if (slice_starts_with(p, "/delay/")) {
        struct job *j = job_new(req);
        uv_timer_start(&j->timer, delayed_cb, strtoul(p.p + 7, NULL, 10), 0);
    } else if (slice_eq_str(p, "/stream")) {
        struct http_header h = {SLICE_LIT("Content-Type"), SLICE_LIT("text/event-stream")};
        CHECK(http_stream_start(req, 200, &h, 1) == 0);
        struct job *j = job_new(req);
        j->left = 5;
        uv_timer_start(&j->timer, stream_tick, 5, 5);
    } else if (slice_eq_str(p, "/forever")) {
        CHECK(http_stream_start(req, 200, NULL, 0) == 0);
        struct job *j = job_new(req);
        http_request_on_abort(req, forever_abort, j);
        uv_timer_start(&j->timer, forever_tick, 1, 10);
    } else if (slice_eq_str(p, "/lazy")) {
        struct job *j = job_new(req);
        http_request_on_abort(req, lazy_abort, j); /* never answers by itself */
    } else if (slice_eq_str(p, "/flood")) {
        CHECK(http_stream_start(req, 200, NULL, 0) == 0);
        http_request_on_abort(req, flood_abort, NULL);
        static char block[64 * 1024];
        memset(block, 'x', sizeof block);
        for (int i = 0; i < 10000; i++) {
            atomic_fetch_add(&g_flood_chunks, 1);
            int rc = http_stream_write(req, &(struct slice){block, sizeof block}, 1);
            CHECK(rc >= 0);
            if (rc == 1) break;
        }
        CHECK(http_request_write_queue(req) > 64 * 1024);
        http_request_on_drain(req, flood_drain, NULL);
        atomic_store(&g_hit_high, 1);
    } else if (slice_eq_str(p, "/params")) {
        struct slice a = http_request_query_param(req, "a");
        struct slice b = http_request_query_param(req, "b");
        struct slice c = http_request_query_param(req, "c");
        struct slice z = http_request_query_param(req, "z");
        struct slice h = http_request_header(req, "x-TEST");
        struct slice m = http_request_header(req, "x-missing");
        char *out =
            pool_printf(req->pool, "a=%.*s b=%s%.*s c=%s z=%s h=[%.*s] m=%s ip=%s fl=%zu", (int)a.n,
                        a.p, b.p ? "" : "NULL", (int)b.n, b.p, c.p ? (c.n ? "?" : "empty") : "NULL",
                        z.p ? "?" : "NULL", (int)h.n, h.p, m.p ? "?" : "NULL", req->client_ip,
                        http_server_in_flight(T.srv));
        http_respond(req, 200, NULL, 0, slice_from(out));
    } else if (slice_starts_with(p, "/blob/")) {
        static char blob[100 * 1024];
        memset(blob, 'a' + (int)(strtoul(p.p + 6, NULL, 10) % 26), sizeof blob);
        http_respond(req, 200, NULL, 0, (struct slice){blob, sizeof blob});
    } else if (slice_eq_str(p, "/nocontent")) {
        http_respond(req, 204, NULL, 0, SLICE_NULL);
    } else if (slice_eq_str(p, "/drop")) {
        http_request_finish(req); /* no answer: the connection must close */
    } else {
        echo(req);
    }
}

/* ---- blocking client ---- */

struct client {
    int fd;
    char *buf;
    size_t n, cap;
};

static int g_rcvbuf; /* when set, the next connections' receive buffer (a slow reader) */

static void cl_open(struct client *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    if (g_rcvbuf) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &g_rcvbuf, sizeof g_rcvbuf);
    struct timeval tv = {3, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)T.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    c->n = 0;
}

static void cl_close(struct client *c)
{
    close(c->fd);
    free(c->buf);
    c->buf = NULL;
}

static void cl_send(struct client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

static void cl_sends(struct client *c, const char *s)
{
    cl_send(c, s, strlen(s));
}

/* Reads more bytes; false on EOF, error or timeout. */
static bool cl_fill(struct client *c)
{
    if (c->n == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t k = recv(c->fd, c->buf + c->n, c->cap - c->n, 0);
    if (k <= 0) return false;
    c->n += (size_t)k;
    return true;
}

static void cl_consume(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->n - n);
    c->n -= n;
}

static bool g_head_request; /* the next response answers HEAD: no body bytes */

struct resp {
    int status;
    char head[4096];
    char body[1 << 16];
    size_t body_n;
    size_t body_total; /* bytes of body even when longer than `body` */
    bool chunked, close;
};

static const char *find_header(const struct resp *r, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
            return val;
        }
    }
    return NULL;
}

static void body_add(struct resp *r, const char *p, size_t n)
{
    size_t room = sizeof r->body - 1 - r->body_n;
    size_t k = n < room ? n : room;
    memcpy(r->body + r->body_n, p, k);
    r->body_n += k;
    r->body[r->body_n] = '\0';
    r->body_total += n;
}

/* Reads one response (a 100 Continue counts as one). 0, or -1 on EOF/timeout. */
static int cl_response(struct client *c, struct resp *r)
{
    memset(r, 0, sizeof *r);
    char *e;
    while (!(c->n >= 4 && (e = memmem(c->buf, c->n, "\r\n\r\n", 4)))) {
        if (!cl_fill(c)) return -1;
    }
    size_t hl = (size_t)(e - c->buf) + 4;
    assert_true(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    cl_consume(c, hl);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    if (r->status == 100 || r->status == 204 || r->status == 304 || g_head_request) return 0;
    const char *v = find_header(r, "Connection");
    r->close = v && strcasecmp(v, "close") == 0;
    v = find_header(r, "Transfer-Encoding");
    r->chunked = v && strcasecmp(v, "chunked") == 0;
    if (r->chunked) {
        for (;;) {
            char *le;
            while (!(le = memmem(c->buf, c->n, "\r\n", 2)))
                if (!cl_fill(c)) return -1;
            size_t sz = strtoul(c->buf, NULL, 16);
            size_t ll = (size_t)(le - c->buf) + 2;
            while (c->n < ll + sz + 2)
                if (!cl_fill(c)) return -1;
            body_add(r, c->buf + ll, sz);
            assert_memory_equal(c->buf + ll + sz, "\r\n", 2);
            cl_consume(c, ll + sz + 2);
            if (sz == 0) return 0;
        }
    }
    v = find_header(r, "Content-Length");
    size_t cl = v ? strtoul(v, NULL, 10) : 0;
    if (!v && r->close) {
        while (cl_fill(c)) {
            body_add(r, c->buf, c->n);
            c->n = 0;
        }
        body_add(r, c->buf, c->n);
        c->n = 0;
        return 0;
    }
    while (c->n < cl)
        if (!cl_fill(c)) return -1;
    body_add(r, c->buf, cl);
    cl_consume(c, cl);
    return 0;
}

/* True when the server closes the connection (EOF or reset) within the timeout,
 * with no further bytes. */
static bool cl_sees_close(struct client *c)
{
    char x;
    ssize_t k = recv(c->fd, &x, 1, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static struct resp R; /* big; one at a time */

static void expect_echo(struct client *c, const char *want_body)
{
    assert_int_equal(cl_response(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, want_body);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void test_get_and_post(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    cl_sends(&c, "GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /hello?x=1 0:");
    assert_false(R.close);
    assert_non_null(find_header(&R, "Date"));
    assert_string_equal(find_header(&R, "X-Echo"), "yes");
    assert_string_equal(find_header(&R, "Content-Length"), "17");
    cl_sends(&c, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    expect_echo(&c, "POST /p 11:hello world");
    cl_sends(&c, "GET /params?a=1&b=&c&d=4 HTTP/1.1\r\nHost: a\r\nX-Test:  v v  \r\n\r\n");
    expect_echo(&c, "a=1 b= c=empty z=NULL h=[v v] m=NULL ip=127.0.0.1 fl=1");
    /* HEAD: Content-Length announced, no body bytes: the next response follows at once. */
    cl_sends(&c, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n");
    g_head_request = true;
    assert_int_equal(cl_response(&c, &R), 0);
    g_head_request = false;
    assert_int_equal(R.status, 200);
    assert_string_equal(find_header(&R, "Content-Length"), "10");
    cl_sends(&c, "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 204);
    assert_null(find_header(&R, "Content-Length"));
    cl_sends(&c, "GET /last HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /last 0:");
    cl_close(&c);
    srv_stop();
}

static void test_keepalive_and_http10(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    for (int i = 0; i < 3; i++) {
        char req[64], want[64];
        snprintf(req, sizeof req, "GET /k%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
        snprintf(want, sizeof want, "GET /k%d 0:", i);
        cl_sends(&c, req);
        expect_echo(&c, want);
        assert_false(R.close);
    }
    cl_sends(&c, "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    expect_echo(&c, "GET /bye 0:");
    assert_true(R.close);
    assert_true(cl_sees_close(&c));
    cl_close(&c);

    cl_open(&c);
    cl_sends(&c, "GET /old HTTP/1.0\r\n\r\n");
    expect_echo(&c, "GET /old 0:");
    assert_true(R.close);
    assert_true(cl_sees_close(&c));
    cl_close(&c);

    cl_open(&c);
    cl_sends(&c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect_echo(&c, "GET /old 0:");
    assert_false(R.close);
    cl_sends(&c, "GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect_echo(&c, "GET /old2 0:");
    cl_close(&c);
    srv_stop();
}

static const char chunked_req[] =
    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    "GET /after HTTP/1.1\r\nHost: a\r\n\r\n";

static void test_chunked_body_every_split(void **state)
{
    srv_start(NULL);
    size_t len = sizeof chunked_req - 1;
    for (size_t k = 0; k <= len; k += 1) {
        struct client c;
        cl_open(&c);
        cl_send(&c, chunked_req, k);
        if (k > 0 && k < len) sleep_ms(1); /* let the server read the first part alone */
        cl_send(&c, chunked_req + k, len - k);
        expect_echo(&c, "POST /c 11:hello world");
        expect_echo(&c, "GET /after 0:");
        cl_close(&c);
    }
    /* And byte by byte on one connection. */
    struct client c;
    cl_open(&c);
    for (size_t i = 0; i < len; i++) cl_send(&c, chunked_req + i, 1);
    expect_echo(&c, "POST /c 11:hello world");
    expect_echo(&c, "GET /after 0:");
    cl_close(&c);
    srv_stop();
}

static void test_pipelined(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    cl_sends(&c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                 "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /1 0:");
    expect_echo(&c, "POST /2 3:abc");
    expect_echo(&c, "GET /3 0:");
    /* Asynchronous answers, the first one slowest. */
    cl_sends(&c, "GET /delay/150 HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /delay/60 HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /delay/0 HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /delay/150 0:");
    expect_echo(&c, "GET /delay/60 0:");
    expect_echo(&c, "GET /delay/0 0:");
    cl_close(&c);

    /* Many pipelined requests beyond the read-ahead bound all get answered in order. */
    cl_open(&c);
    struct buf all = BUF_INIT;
    for (int i = 0; i < 3000; i++)
        assert_true(buf_printf(&all, "GET /many/%d HTTP/1.1\r\nHost: a\r\n\r\n", i));
    assert_true(all.n > 64 * 1024);
    cl_send(&c, all.p, all.n);
    for (int i = 0; i < 3000; i++) {
        char want[64];
        snprintf(want, sizeof want, "GET /many/%d 0:", i);
        expect_echo(&c, want);
    }
    buf_free(&all);
    cl_close(&c);
    srv_stop();
}

static void expect_status_close(struct client *c, int status)
{
    assert_int_equal(cl_response(c, &R), 0);
    assert_int_equal(R.status, status);
    assert_true(R.close);
    assert_true(cl_sees_close(c));
}

/* A client that pipelines requests with big answers and does not read: the server
 * stops taking requests while its write queue is full, and resumes as the client reads. */
static void test_pipelined_slow_reader(void **state)
{
    srv_start(NULL);
    struct client c;
    g_rcvbuf = 32 * 1024;
    cl_open(&c);
    g_rcvbuf = 0;
    struct buf all = BUF_INIT;
    for (int i = 0; i < 60; i++)
        assert_true(buf_printf(&all, "GET /blob/%d HTTP/1.1\r\nHost: a\r\n\r\n", i));
    cl_send(&c, all.p, all.n);
    buf_free(&all);
    sleep_ms(100);
    int handled = atomic_load(&g_requests);
    assert_true(handled < 60); /* 6 MB of answers cannot all be queued */
    for (int i = 0; i < 60; i++) {
        assert_int_equal(cl_response(&c, &R), 0);
        assert_int_equal(R.status, 200);
        assert_int_equal(R.body_total, 100 * 1024);
        assert_int_equal(R.body[0], 'a' + i % 26);
    }
    assert_int_equal(atomic_load(&g_requests), 60);
    cl_close(&c);
    srv_stop();
}

static void test_stop_accepting(void **state)
{
    srv_start(NULL);
    struct client idle, busy;
    cl_open(&idle);
    cl_sends(&idle, "GET /i HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&idle, "GET /i 0:");
    cl_open(&busy);
    cl_sends(&busy, "GET /delay/200 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(50);
    uv_async_send(&T.stop_accepting);
    /* The idle keep-alive connection closes; the busy one gets its answer with close. */
    assert_true(cl_sees_close(&idle));
    expect_echo(&busy, "GET /delay/200 0:");
    assert_true(R.close);
    assert_true(cl_sees_close(&busy));
    /* No new connections. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)T.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(connect(fd, (struct sockaddr *)&a, sizeof a) != 0);
    close(fd);
    cl_close(&idle);
    cl_close(&busy);
    srv_stop();
}

static void test_strict_parsing(void **state)
{
    srv_start(NULL);
    const char *bad[] = {
        "GET / HTTP/1.1\nHost: a\n\n",                            /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\n\r\n",                        /* one bare LF */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", /* obs-fold, tab */
        "GET / HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n",              /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        "BREW / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",
        "\nGET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: \x01\x7f\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct client c;
        cl_open(&c);
        cl_sends(&c, bad[i]);
        assert_int_equal(cl_response(&c, &R), 0);
        assert_true(R.status == 400 || R.status == 505);
        assert_true(R.close);
        assert_true(cl_sees_close(&c));
        cl_close(&c);
    }
    /* CONNECT would turn the connection into a tunnel: refused. */
    struct client c;
    cl_open(&c);
    cl_sends(&c, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    expect_status_close(&c, 405);
    cl_close(&c);
    assert_int_equal(atomic_load(&g_requests), 0);
    srv_stop();
}

static void test_upgrade_ignored(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    cl_sends(&c, "POST /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\n"
                 "helloGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "POST /up 5:hello");
    expect_echo(&c, "GET /next 0:");
    cl_sends(&c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                 "GET /next2 HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /ws 0:");
    expect_echo(&c, "GET /next2 0:");
    cl_close(&c);
    srv_stop();
}

static void test_limits_header_and_body(void **state)
{
    struct http_server_config cfg = {.max_body_bytes = 1000};
    srv_start(&cfg);
    struct client c;

    /* Header block over 64 KiB. */
    cl_open(&c);
    struct buf b = BUF_INIT;
    buf_append_str(&b, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    for (int i = 0; i < 70000; i++) buf_append(&b, "a", 1);
    buf_append_str(&b, "\r\n\r\n");
    cl_send(&c, b.p, b.n);
    buf_free(&b);
    expect_status_close(&c, 431);
    cl_close(&c);

    /* A header block just under the limit is fine. */
    cl_open(&c);
    b = BUF_INIT;
    buf_append_str(&b, "GET /fits HTTP/1.1\r\nHost: a\r\nX-Big: ");
    for (int i = 0; i < 60000; i++) buf_append(&b, "a", 1);
    buf_append_str(&b, "\r\n\r\n");
    cl_send(&c, b.p, b.n);
    buf_free(&b);
    expect_echo(&c, "GET /fits 0:");
    cl_close(&c);

    /* Declared length over the limit: 413 at once; the client then sends its body slowly
     * and still reads the answer (lingering close, no reset). */
    cl_open(&c);
    cl_sends(&c, "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n");
    char part[10000];
    memset(part, 'b', sizeof part);
    for (int i = 0; i < 5; i++) {
        cl_send(&c, part, sizeof part);
        sleep_ms(5);
    }
    expect_status_close(&c, 413);
    cl_close(&c);

    /* Expect: 100-continue with a length over the limit: 413, never 100. */
    cl_open(&c);
    cl_sends(&c, "POST /big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                 "Content-Length: 1001\r\n\r\n");
    expect_status_close(&c, 413);
    cl_close(&c);

    /* Chunked body crossing the limit mid-stream. */
    cl_open(&c);
    cl_sends(&c, "POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        cl_sends(&c, "1f4\r\n");
        cl_send(&c, part, 500);
        cl_sends(&c, "\r\n");
    }
    expect_status_close(&c, 413);
    cl_close(&c);
    assert_int_equal(atomic_load(&g_requests), 1);
    srv_stop();
}

/* The process-wide body budget: a body that does not fit is refused with 503 and
 * Retry-After before it is read; what it held is released with its request. */
static void test_body_budget(void **state)
{
    struct http_server_config cfg = {.max_body_bytes = 100000};
    http_server_set_body_budget(3000);
    srv_start(&cfg);
    struct client c;

    cl_open(&c);
    cl_sends(&c, "POST /over HTTP/1.1\r\nHost: a\r\nContent-Length: 4000\r\n\r\n");
    char part[4000];
    memset(part, 'b', sizeof part);
    cl_send(&c, part, sizeof part);
    expect_status_close(&c, 503);
    cl_close(&c);

    /* chunked: refused when it crosses the budget */
    cl_open(&c);
    cl_sends(&c, "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        cl_sends(&c, "3e8\r\n");
        cl_send(&c, part, 1000);
        cl_sends(&c, "\r\n");
    }
    expect_status_close(&c, 503);
    cl_close(&c);

    /* within the budget: served, and the budget is free again afterwards */
    char want[2600];
    snprintf(want, sizeof want, "POST /fits 2500:%.2500s", part);
    for (int i = 0; i < 3; i++) {
        cl_open(&c);
        cl_sends(&c, "POST /fits HTTP/1.1\r\nHost: a\r\nContent-Length: 2500\r\n\r\n");
        cl_send(&c, part, 2500);
        expect_echo(&c, want);
        cl_close(&c);
    }
    srv_stop();
    assert_int_equal(http_server_body_bytes(), 0);
    http_server_set_body_budget(0);
}

static void test_expect_continue(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    cl_sends(&c,
             "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 100);
    cl_sends(&c, "hello");
    expect_echo(&c, "POST /up 5:hello");
    assert_false(R.close);
    cl_close(&c);

    /* Rejected early: 401 with Connection: close, readable although the body follows. */
    cl_open(&c);
    cl_sends(&c, "POST /reject HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                 "Content-Length: 200000\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 401);
    assert_true(R.close);
    assert_string_equal(R.body, "{\"error\":\"no key\"}");
    char part[50000];
    memset(part, 'z', sizeof part);
    for (int i = 0; i < 4; i++) send(c.fd, part, sizeof part, MSG_NOSIGNAL);
    assert_true(cl_sees_close(&c));
    cl_close(&c);

    /* A client that does not wait: the body is already on its way when 401 is written. */
    cl_open(&c);
    cl_sends(&c, "POST /reject HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n");
    for (int i = 0; i < 4; i++) cl_send(&c, part, sizeof part);
    expect_status_close(&c, 401);
    cl_close(&c);

    /* Rejected GET without body: the connection stays usable. */
    cl_open(&c);
    cl_sends(&c, "GET /reject HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 401);
    assert_false(R.close);
    expect_echo(&c, "GET /ok 0:");
    cl_close(&c);
    assert_int_equal(atomic_load(&g_requests), 2);
    srv_stop();
}

static void test_timeouts(void **state)
{
    struct http_server_config cfg = {
        .header_timeout_ms = 300, .keepalive_timeout_ms = 200, .body_idle_timeout_ms = 250};
    srv_start(&cfg);
    struct client c;
    cl_open(&c);
    cl_sends(&c, "GET / HTTP/1.1\r\nHost: a\r\n");
    expect_status_close(&c, 408);
    cl_close(&c);

    /* Body that stops arriving. */
    cl_open(&c);
    cl_sends(&c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    expect_status_close(&c, 408);
    cl_close(&c);

    /* Idle keep-alive: closed without a word. */
    cl_open(&c);
    cl_sends(&c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /x 0:");
    assert_true(cl_sees_close(&c));
    cl_close(&c);

    /* A connection that sends nothing is closed silently. */
    cl_open(&c);
    assert_true(cl_sees_close(&c));
    assert_int_equal(c.n, 0);
    cl_close(&c);
    srv_stop();
}

static void test_streaming(void **state)
{
    srv_start(NULL);
    struct client c;
    cl_open(&c);
    cl_sends(&c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_true(R.chunked);
    assert_false(R.close);
    assert_string_equal(find_header(&R, "Content-Type"), "text/event-stream");
    assert_string_equal(R.body, "chunk0;chunk1;chunk2;chunk3;chunk4;");
    expect_echo(&c, "GET /after 0:");
    cl_close(&c);

    /* HTTP/1.0: no chunked coding, the body ends with the connection. */
    cl_open(&c);
    cl_sends(&c, "GET /stream HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_response(&c, &R), 0);
    assert_false(R.chunked);
    assert_true(R.close);
    assert_string_equal(R.body, "chunk0;chunk1;chunk2;chunk3;chunk4;");
    cl_close(&c);

    /* The handler finishes without answering: the connection closes. */
    cl_open(&c);
    cl_sends(&c, "GET /drop HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(cl_sees_close(&c));
    cl_close(&c);
    srv_stop();
}

static void wait_flag(atomic_int *f, int want)
{
    for (int i = 0; i < 300 && atomic_load(f) < want; i++) sleep_ms(10);
    assert_true(atomic_load(f) >= want);
}

static void test_disconnect_aborts(void **state)
{
    srv_start(NULL);
    struct client c;
    /* Client closes mid-stream. */
    cl_open(&c);
    cl_sends(&c, "GET /forever HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(cl_fill(&c));
    cl_close(&c);
    wait_flag(&g_aborted, 1);

    /* Client half-closes (EOF) while the response is in flight. */
    cl_open(&c);
    cl_sends(&c, "GET /forever HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(cl_fill(&c));
    shutdown(c.fd, SHUT_WR);
    wait_flag(&g_aborted, 2);
    cl_close(&c);

    /* The handler finishes a while after the abort (the connection waits for it). */
    cl_open(&c);
    cl_sends(&c, "GET /lazy HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(20);
    cl_close(&c);
    wait_flag(&g_aborted, 3);

    /* Server closes with a stream open, a lazy handler, a body half read and an idle
     * connection: abort callbacks fire, the lazy request is finished after the server is
     * gone, and everything is freed. */
    struct client d, e, f;
    cl_open(&c);
    cl_sends(&c, "GET /forever HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(cl_fill(&c));
    cl_open(&d);
    cl_sends(&d, "GET /lazy HTTP/1.1\r\nHost: a\r\n\r\n");
    cl_open(&e);
    cl_sends(&e, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
    cl_open(&f);
    sleep_ms(30);
    srv_stop();
    assert_int_equal(atomic_load(&g_aborted), 5);
    assert_true(cl_sees_close(&d));
    assert_true(cl_sees_close(&e));
    assert_true(cl_sees_close(&f));
    cl_close(&c);
    cl_close(&d);
    cl_close(&e);
    cl_close(&f);
}

static void test_backpressure(void **state)
{
    srv_start(NULL);
    struct client c;
    g_rcvbuf = 32 * 1024;
    cl_open(&c);
    g_rcvbuf = 0;
    cl_sends(&c, "GET /flood HTTP/1.1\r\nHost: a\r\n\r\n");
    wait_flag(&g_hit_high, 1);
    assert_int_equal(atomic_load(&g_drained), 0);
    int chunks = atomic_load(&g_flood_chunks);
    assert_true(chunks >= 4);
    assert_int_equal(cl_response(&c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_int_equal(R.body_total, (size_t)chunks * 64 * 1024 + 3);
    assert_int_equal(atomic_load(&g_drained), 1);
    /* The connection is still good. */
    cl_sends(&c, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&c, "GET /again 0:");
    cl_close(&c);
    srv_stop();
}

static void test_connection_limits(void **state)
{
    struct http_server_config cfg = {.max_connections = 2};
    srv_start(&cfg);
    struct client a, b, x;
    cl_open(&a);
    cl_open(&b);
    cl_sends(&a, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&a, "GET /a 0:");
    cl_sends(&b, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&b, "GET /b 0:");
    cl_open(&x);
    cl_sends(&x, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_status_close(&x, 503);
    assert_string_equal(find_header(&R, "Retry-After"), "1");
    cl_close(&x);
    cl_close(&a);
    sleep_ms(50);
    cl_open(&x);
    cl_sends(&x, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&x, "GET /x 0:");
    cl_close(&x);
    cl_close(&b);
    srv_stop();

    struct http_server_config cfg2 = {.max_connections_per_ip = 1};
    srv_start(&cfg2);
    cl_open(&a);
    cl_sends(&a, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_echo(&a, "GET /a 0:");
    cl_open(&x);
    expect_status_close(&x, 429);
    assert_string_equal(find_header(&R, "Retry-After"), "1");
    cl_close(&x);
    cl_close(&a);
    srv_stop();
}

static void noop_request(http_request_t *req, void *ud)
{
    http_respond(req, 200, NULL, 0, SLICE_LIT("ok"));
}

static void test_reuseport_and_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct http_handlers h = {NULL, noop_request, NULL};
    struct http_server_config cfg = {.host = "127.0.0.1", .port = 0};
    const char *err = NULL;
    http_server_t *s1 = http_server_start(&loop, &cfg, &h, &err);
    assert_non_null(s1);
    cfg.port = http_server_port(s1);
    http_server_t *s2 = http_server_start(&loop, &cfg, &h, &err);
    assert_non_null(s2);
    assert_int_equal(http_server_port(s2), cfg.port);
    cfg.host = "::1";
    cfg.port = 0;
    http_server_t *s3 = http_server_start(&loop, &cfg, &h, &err);
    if (s3) http_server_close(s3); /* IPv6 may be off on this host */
    cfg.host = "not-an-address";
    assert_null(http_server_start(&loop, &cfg, &h, &err));
    assert_non_null(strstr(err, "invalid listen address"));
    cfg.host = "192.0.2.1"; /* not ours: bind fails */
    assert_null(http_server_start(&loop, &cfg, &h, &err));
    assert_non_null(strstr(err, "bind"));
    assert_int_equal(http_server_in_flight(s1), 0);
    http_server_stop_accepting(s1);
    http_server_close(s1);
    http_server_close(s2);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_status_text(void **state)
{
    assert_string_equal(http_status_text(200), "OK");
    assert_string_equal(http_status_text(413), "Content Too Large");
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_text(503), "Service Unavailable");
    assert_string_equal(http_status_text(599), "Server Error");
    assert_string_equal(http_status_text(299), "Success");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    http_server_global_init(64 * 1024);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_keepalive_and_http10),
        cmocka_unit_test(test_chunked_body_every_split),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_slow_reader),
        cmocka_unit_test(test_stop_accepting),
        cmocka_unit_test(test_strict_parsing),
        cmocka_unit_test(test_upgrade_ignored),
        cmocka_unit_test(test_limits_header_and_body),
        cmocka_unit_test(test_body_budget),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_disconnect_aborts),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_reuseport_and_errors),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
