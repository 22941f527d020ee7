/* test_net_upstream.c — net/upstream against a raw-socket HTTP server in the test
 * (mock_http.h): callback order and contents, keep-alive reuse, timeouts and their
 * classes, resets, pause/resume, abort from callbacks and timers, large bodies in both
 * directions, many concurrent transfers, bad input. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <netdb.h>

#include "mock_http.h"
#include "net/upstream.h"

/* ---- fixture -------------------------------------------------------------------- */

struct fx {
    struct mock_server *m;
    uv_loop_t loop;
    upstream_t *u;
    char url[256];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->m = mock_start();
    uv_loop_init(&f->loop);
    f->u = upstream_create(&f->loop, &(struct upstream_config){.max_connections = 64});
    assert_non_null(f->u);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    upstream_destroy(f->u);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle was closed */
    mock_stop(f->m);
    free(f);
    return 0;
}

static const char *url(struct fx *f, const char *path)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->m->port, path);
    return f->url;
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

struct until {
    const int *counter;
    int target;
};

/* Work may finish in the timer phase; stopping here keeps uv_run from then blocking in
 * poll until the next unrelated event. */
static void on_prepare_check(uv_prepare_t *p)
{
    struct until *w = p->data;
    if (*w->counter >= w->target) uv_stop(p->loop);
}

/* Runs the loop until *counter >= target or timeout_ms passed. */
static bool run_until(uv_loop_t *loop, const int *counter, int target, unsigned timeout_ms)
{
    bool expired = false;
    struct until w = {counter, target};
    uv_timer_t t;
    uv_prepare_t p;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, timeout_ms, 0);
    uv_prepare_init(loop, &p);
    p.data = &w;
    uv_prepare_start(&p, on_prepare_check);
    while (*counter < target && !expired) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *counter >= target;
}

static void run_for(uv_loop_t *loop, unsigned ms)
{
    int never = 0;
    run_until(loop, &never, 1, ms);
}

/* Waits (polling) for an atomic counter of the server. */
static bool wait_counter(uv_loop_t *loop, atomic_int *c, int target, unsigned timeout_ms)
{
    uint64_t end = mock_now_ms() + timeout_ms;
    while (atomic_load(c) < target && mock_now_ms() < end) run_for(loop, 10);
    return atomic_load(c) >= target;
}

/* ---- a recording transfer ------------------------------------------------------- */

struct rec {
    upstream_t *u;
    upstream_xfer_t *x;
    int *done_counter;
    int head_calls, data_calls, done_calls;
    int status;
    bool order_bad;
    bool sent_at_head;
    struct buf body;
    enum upstream_error err;
    char detail[256];
    char hdr[512]; /* "name=value;" for every response header */
    size_t n_hdrs;
    /* behaviours */
    bool resume_inline; /* on_data pauses and resumes at once, inside the callback */
    int abort_at_data;  /* abort inside the N-th on_data (1-based); 0 = never */
    bool abort_at_head;
};

static void rec_init(struct rec *r, upstream_t *u, int *done_counter)
{
    memset(r, 0, sizeof *r);
    r->u = u;
    r->done_counter = done_counter;
    r->err = (enum upstream_error) - 1;
}

static void rec_free(struct rec *r)
{
    buf_free(&r->body);
}

static void rec_on_head(void *ud, int status, const struct http_header *h, size_t n)
{
    struct rec *r = ud;
    if (r->head_calls || r->data_calls || r->done_calls) r->order_bad = true;
    r->head_calls++;
    r->status = status;
    r->n_hdrs = n;
    r->sent_at_head = upstream_request_sent(r->x);
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof r->hdr; i++)
        off += (size_t)snprintf(r->hdr + off, sizeof r->hdr - off, "%.*s=%.*s;", (int)h[i].name.n,
                                h[i].name.p, (int)h[i].value.n, h[i].value.p);
    if (r->abort_at_head) {
        upstream_abort(r->x);
        if (r->done_counter) (*r->done_counter)++;
    }
}

static enum upstream_data_verdict rec_on_data(void *ud, const char *p, size_t n)
{
    struct rec *r = ud;
    if (!r->head_calls || r->done_calls) r->order_bad = true;
    r->data_calls++;
    buf_append(&r->body, p, n);
    if (r->abort_at_data && r->data_calls == r->abort_at_data) {
        upstream_abort(r->x);
        upstream_abort(r->x); /* twice is harmless */
        if (r->done_counter) (*r->done_counter)++;
        return UPSTREAM_CONTINUE;
    }
    if (r->resume_inline) {
        upstream_resume(r->x); /* nothing paused yet: a no-op */
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static void rec_on_done(void *ud, enum upstream_error err, const char *detail)
{
    struct rec *r = ud;
    if (r->done_calls) r->order_bad = true;
    r->done_calls++;
    r->err = err;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "(null)");
    if (r->done_counter) (*r->done_counter)++;
}

static const struct upstream_callbacks rec_cb = {rec_on_head, rec_on_data, rec_on_done};

static struct upstream_request get_req(const char *u)
{
    return (struct upstream_request){.method = SLICE_LIT("GET"), .url = u};
}

static upstream_xfer_t *rec_start(struct rec *r, const struct upstream_request *req)
{
    r->x = upstream_start(r->u, req, &rec_cb, r);
    return r->x;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_json_200(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/json"));
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_string_equal(r.detail, "ok");
    assert_false(r.order_bad);
    assert_int_equal(r.head_calls, 1);
    assert_int_equal(r.status, 200);
    assert_true(r.sent_at_head);
    assert_non_null(strstr(r.hdr, "Content-Type=application/json;"));
    assert_int_equal(r.body.n, strlen(mock_json_body));
    assert_memory_equal(r.body.p, mock_json_body, r.body.n);
    rec_free(&r);
}

static void test_keepalive_reuse(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++) {
        int done = 0;
        struct rec r;
        rec_init(&r, f->u, &done);
        struct upstream_request req = get_req(url(f, "/json"));
        assert_non_null(rec_start(&r, &req));
        assert_true(run_until(&f->loop, &done, 1, 5000));
        assert_int_equal(r.err, UPSTREAM_OK);
        rec_free(&r);
    }
    assert_int_equal(atomic_load(&f->m->accepted), 1);
    assert_int_equal(atomic_load(&f->m->requests), 3);
}

static void test_sse_chunked(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/sse?n=10&ms=5"));
    req.idle_timeout_ms = 2000;
    req.first_byte_timeout_ms = 2000;
    req.total_timeout_ms = 5000;
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_false(r.order_bad);
    assert_int_equal(r.body.n, 10 * 13);
    for (int i = 0; i < 10; i++) {
        char ev[16];
        snprintf(ev, sizeof ev, "data: %05d\n\n", i);
        assert_memory_equal(r.body.p + i * 13, ev, 13);
    }
    assert_true(r.data_calls >= 2); /* paced: not one lump */
    rec_free(&r);
}

static void test_status_500(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/status500"));
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK); /* a status is not a transport error */
    assert_int_equal(r.status, 500);
    assert_non_null(memmem(r.body.p, r.body.n, "boom", 4));
    rec_free(&r);
}

static void test_headers_and_interim(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct http_header hs[] = {
        {SLICE_LIT("X-Test"), SLICE_LIT("abc")},
        {SLICE_LIT("Authorization"), SLICE_LIT("Bearer sk-secret")},
        {SLICE_LIT("X-Blank"), SLICE_LIT("")},
        {SLICE_LIT("Connection"), SLICE_LIT("close")},     /* dropped: hop-by-hop */
        {SLICE_LIT("Accept-Encoding"), SLICE_LIT("gzip")}, /* dropped */
    };
    struct upstream_request req = get_req(url(f, "/headers"));
    req.headers = hs;
    req.n_headers = 5;
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.head_calls, 1);
    assert_int_equal(r.status, 201); /* the 103 was skipped */
    const char *want = "X-One=1;X-Empty=;X-Spaced=padded value;Content-Length=";
    assert_int_equal(strncmp(r.hdr, want, strlen(want)), 0);
    assert_int_equal(r.n_hdrs, 4);
    rec_free(&r);
}

static void test_headers_sent(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct http_header hs[] = {
        {SLICE_LIT("X-Test"), SLICE_LIT("abc")},
        {SLICE_LIT("X-Blank"), SLICE_LIT("")},
        {SLICE_LIT("Connection"), SLICE_LIT("close")},
        {SLICE_LIT("Accept-Encoding"), SLICE_LIT("gzip")},
    };
    struct upstream_request req = get_req(url(f, "/headers"));
    req.headers = hs;
    req.n_headers = 4;
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    buf_nul(&r.body);
    assert_non_null(strstr(r.body.p, "GET /headers HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body.p, "\r\nX-Test: abc\r\n"));
    assert_non_null(strstr(r.body.p, "\r\nX-Blank:"));
    assert_null(strstr(r.body.p, "Connection: close"));
    assert_null(strstr(r.body.p, "Accept-Encoding"));
    assert_null(strstr(r.body.p, "Expect"));
    assert_null(strstr(r.body.p, "Accept:"));       /* curl's default is not added */
    assert_null(strstr(r.body.p, "Content-Type:")); /* nor a form content type */
    assert_non_null(strstr(r.body.p, "\r\nHost: 127.0.0.1:"));
    rec_free(&r);
}

static void test_first_byte_timeout(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/slow?ms=3000"));
    req.first_byte_timeout_ms = 200;
    req.idle_timeout_ms = 5000;
    uint64_t t0 = mock_now_ms();
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    uint64_t el = mock_now_ms() - t0;
    assert_int_equal(r.err, UPSTREAM_ERR_FIRST_BYTE_TIMEOUT);
    assert_int_equal(r.head_calls, 0);
    assert_true(el >= 190 && el < 1500);
    /* The connection was closed, not pooled. */
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 2000));
    rec_free(&r);
}

static void test_slow_first_byte_within_limit(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/slow?ms=150"));
    req.first_byte_timeout_ms = 1000;
    req.idle_timeout_ms = 100; /* not running before the first byte */
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.status, 200);
    rec_free(&r);
}

static void test_idle_timeout(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/stall"));
    req.first_byte_timeout_ms = 2000;
    req.idle_timeout_ms = 200;
    uint64_t t0 = mock_now_ms();
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    uint64_t el = mock_now_ms() - t0;
    assert_int_equal(r.err, UPSTREAM_ERR_IDLE_TIMEOUT);
    assert_int_equal(r.head_calls, 1);
    assert_int_equal(r.body.n, 9);
    assert_true(el >= 190 && el < 1500);
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 2000));
    rec_free(&r);
}

static void test_total_timeout(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/sse?n=100&ms=30"));
    req.idle_timeout_ms = 1000;
    req.total_timeout_ms = 300;
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_ERR_TOTAL_TIMEOUT);
    assert_true(r.data_calls > 1);
    rec_free(&r);
}

static void test_connect_refused(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/json", mock_dead_port());
    struct upstream_request req = get_req(u);
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_ERR_CONNECT);
    assert_int_equal(r.head_calls, 0);
    assert_true(strlen(r.detail) > 0);
    rec_free(&r);
}

static void expect_reset(struct fx *f, const char *path, int want_heads)
{
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, path));
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_ERR_RESET);
    assert_int_equal(r.head_calls, want_heads);
    assert_false(r.order_bad);
    rec_free(&r);
}

static void test_resets(void **state)
{
    struct fx *f = *state;
    expect_reset(f, "/close", 0);
    expect_reset(f, "/cut", 1);
    expect_reset(f, "/cutchunked", 1);
}

/* Pauses after every chunk; a uv timer (standing in for the downstream write
 * completion) resumes. Every byte arrives once and in order. */
struct pauser {
    struct rec r;
    uv_timer_t t;
    unsigned pause_ms;
    int pauses;
};

static void pauser_resume(uv_timer_t *t)
{
    struct pauser *p = t->data;
    upstream_resume(p->r.x);
}

static enum upstream_data_verdict pauser_on_data(void *ud, const char *s, size_t n)
{
    struct pauser *p = ud;
    rec_on_data(&p->r, s, n);
    p->pauses++;
    uv_timer_start(&p->t, pauser_resume, p->pause_ms, 0);
    return UPSTREAM_PAUSE;
}

static void pauser_on_head(void *ud, int st, const struct http_header *h, size_t n)
{
    rec_on_head(&((struct pauser *)ud)->r, st, h, n);
}

static void pauser_on_done(void *ud, enum upstream_error e, const char *d)
{
    rec_on_done(&((struct pauser *)ud)->r, e, d);
}

static void run_pauser(struct fx *f, const char *path, unsigned pause_ms, unsigned idle_ms,
                       size_t want_bytes, bool check_sse)
{
    int done = 0;
    struct pauser p;
    memset(&p, 0, sizeof p);
    rec_init(&p.r, f->u, &done);
    p.pause_ms = pause_ms;
    uv_timer_init(&f->loop, &p.t);
    p.t.data = &p;
    static const struct upstream_callbacks cb = {pauser_on_head, pauser_on_data, pauser_on_done};
    struct upstream_request req = get_req(url(f, path));
    req.idle_timeout_ms = idle_ms;
    p.r.x = upstream_start(f->u, &req, &cb, &p);
    assert_non_null(p.r.x);
    bool finished = run_until(&f->loop, &done, 1, 10000);
    if (!finished) upstream_abort(p.r.x);
    uv_close((uv_handle_t *)&p.t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!finished)
        fail_msg("not done: %d calls, %zu bytes, paused %d", p.r.data_calls, p.r.body.n, p.pauses);
    assert_int_equal(p.r.err, UPSTREAM_OK);
    assert_false(p.r.order_bad);
    assert_int_equal(p.r.body.n, want_bytes);
    if (check_sse) {
        for (size_t i = 0; i < want_bytes / 13; i++) {
            char ev[32];
            snprintf(ev, sizeof ev, "data: %05zu\n\n", i);
            assert_memory_equal(p.r.body.p + i * 13, ev, 13);
        }
    } else {
        for (size_t i = 0; i < want_bytes; i++)
            if ((unsigned char)p.r.body.p[i] != mock_big_byte(i)) fail_msg("byte %zu differs", i);
    }
    assert_true(p.pauses > 1);
    rec_free(&p.r);
}

static void test_pause_resume_sse(void **state)
{
    /* 200 events sent at once: many arrive in one read, so curl holds bytes while
     * paused and re-delivers them. */
    run_pauser(*state, "/sse?n=200&ms=0", 1, 0, 200 * 13, true);
}

static void test_pause_resume_big(void **state)
{
    run_pauser(*state, "/big?bytes=1000000", 0, 0, 1000000, false);
}

static void test_pause_suspends_idle_timer(void **state)
{
    /* Each pause (300 ms) is longer than the idle timeout (100 ms), yet no timeout. */
    run_pauser(*state, "/sse?n=3&ms=0", 300, 100, 3 * 13, true);
}

static void test_pause_inline_resume(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    r.resume_inline = true;
    struct upstream_request req = get_req(url(f, "/sse?n=50&ms=0"));
    assert_non_null(rec_start(&r, &req));
    /* Without a resume after the pause the transfer stays parked. */
    run_for(&f->loop, 200);
    assert_int_equal(done, 0);
    int calls = r.data_calls;
    while (!done) {
        upstream_resume(r.x);
        run_for(&f->loop, 5);
    }
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.body.n, 50 * 13);
    assert_true(calls >= 1);
    rec_free(&r);
}

static void test_abort_in_on_data(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    r.abort_at_data = 2;
    struct upstream_request req = get_req(url(f, "/sse?n=100&ms=20"));
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    /* The server sees the connection close while it paces the stream. */
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 3000));
    run_for(&f->loop, 100);
    assert_int_equal(r.data_calls, 2);
    assert_int_equal(r.done_calls, 0);
    assert_int_equal(done, 1);
    rec_free(&r);
    /* The client still works. */
    rec_init(&r, f->u, &done);
    done = 0;
    struct upstream_request req2 = get_req(url(f, "/json"));
    assert_non_null(rec_start(&r, &req2));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_OK);
    rec_free(&r);
}

static void test_abort_in_on_head(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    r.abort_at_head = true;
    struct upstream_request req = get_req(url(f, "/sse?n=100&ms=20"));
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 3000));
    run_for(&f->loop, 50);
    assert_int_equal(r.head_calls, 1);
    assert_int_equal(r.data_calls, 0);
    assert_int_equal(r.done_calls, 0);
    rec_free(&r);
}

struct abort_timer {
    uv_timer_t t;
    upstream_xfer_t *x;
    int fired;
};

static void on_abort_timer(uv_timer_t *t)
{
    struct abort_timer *a = t->data;
    upstream_abort(a->x);
    a->fired++;
}

static void test_abort_silence(void **state)
{
    struct fx *f = *state;
    struct rec r;
    rec_init(&r, f->u, NULL);
    struct upstream_request req = get_req(url(f, "/silence"));
    assert_non_null(rec_start(&r, &req));
    struct abort_timer a = {.x = r.x};
    uv_timer_init(&f->loop, &a.t);
    a.t.data = &a;
    uv_timer_start(&a.t, on_abort_timer, 100, 0);
    assert_true(run_until(&f->loop, &a.fired, 1, 5000));
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 2000));
    assert_int_equal(r.head_calls + r.data_calls + r.done_calls, 0);
    uv_close((uv_handle_t *)&a.t, NULL);
    rec_free(&r);
}

static void test_abort_before_running(void **state)
{
    struct fx *f = *state;
    struct rec r;
    rec_init(&r, f->u, NULL);
    struct upstream_request req = get_req(url(f, "/json"));
    assert_non_null(rec_start(&r, &req));
    upstream_abort(r.x);
    run_for(&f->loop, 100);
    assert_int_equal(r.head_calls + r.data_calls + r.done_calls, 0);
    rec_free(&r);
}

static void test_post_2mib(void **state)
{
    struct fx *f = *state;
    size_t n = 2u * 1024 * 1024;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++) body[i] = (char)(i * 7 + (i >> 11));
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = {
        .method = SLICE_LIT("POST"),
        .url = url(f, "/echo"),
        .body = {body, n},
        .first_byte_timeout_ms = 5000,
    };
    uint64_t t0 = mock_now_ms();
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    uint64_t el = mock_now_ms() - t0;
    assert_int_equal(r.err, UPSTREAM_OK);
    buf_nul(&r.body);
    char want[256];
    snprintf(want, sizeof want, "{\"len\":%zu,\"hash\":\"%08x\",\"expect\":0,\"ctype\":\"\"}", n,
             mock_fnv1a(body, n));
    assert_string_equal(r.body.p, want);
    assert_true(el < 900); /* no 1 s wait for "100 Continue" */
    assert_true(r.sent_at_head);
    free(body);
    rec_free(&r);
}

static void test_methods(void **state)
{
    struct fx *f = *state;
    const char *methods[] = {"PUT", "PATCH", "DELETE"};
    for (int i = 0; i < 3; i++) {
        int done = 0;
        struct rec r;
        rec_init(&r, f->u, &done);
        struct http_header ct = {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")};
        struct upstream_request req = {
            .method = slice_from(methods[i]),
            .url = url(f, "/echo"),
            .headers = &ct,
            .n_headers = 1,
            .body = SLICE_LIT("{\"a\":1}"),
        };
        assert_non_null(rec_start(&r, &req));
        assert_true(run_until(&f->loop, &done, 1, 5000));
        assert_int_equal(r.err, UPSTREAM_OK);
        buf_nul(&r.body);
        assert_non_null(strstr(r.body.p, "\"len\":7,"));
        assert_non_null(strstr(r.body.p, "\"ctype\":\"application/json\""));
        rec_free(&r);
    }
}

static void test_big_download(void **state)
{
    struct fx *f = *state;
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    struct upstream_request req = get_req(url(f, "/big?bytes=5242880"));
    req.idle_timeout_ms = 2000;
    assert_non_null(rec_start(&r, &req));
    assert_true(run_until(&f->loop, &done, 1, 10000));
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.body.n, 5242880);
    for (size_t i = 0; i < r.body.n; i++)
        if ((unsigned char)r.body.p[i] != mock_big_byte(i)) fail_msg("byte %zu differs", i);
    rec_free(&r);
}

static void test_many_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 50 };
    int done = 0;
    struct rec *rs = calloc(N, sizeof *rs);
    for (int i = 0; i < N; i++) {
        rec_init(&rs[i], f->u, &done);
        struct upstream_request req = get_req(url(f, i % 2 ? "/sse?n=5&ms=10" : "/json"));
        req.first_byte_timeout_ms = 5000;
        req.idle_timeout_ms = 5000;
        assert_non_null(rec_start(&rs[i], &req));
    }
    assert_true(run_until(&f->loop, &done, N, 10000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].err, UPSTREAM_OK);
        assert_false(rs[i].order_bad);
        assert_int_equal(rs[i].body.n, i % 2 ? 5 * 13 : strlen(mock_json_body));
        rec_free(&rs[i]);
    }
    free(rs);
}

/* on_done starts the next transfer; on_head of the first starts a second (inside curl). */
struct chain {
    struct rec r;
    struct fx *f;
    int left;
    int *done;
    struct rec side;
    bool side_started;
};

static void chain_start(struct chain *c);

static void chain_on_head(void *ud, int st, const struct http_header *h, size_t n)
{
    struct chain *c = ud;
    rec_on_head(&c->r, st, h, n);
    if (!c->side_started) {
        c->side_started = true;
        struct upstream_request req = get_req(url(c->f, "/json"));
        assert_non_null(rec_start(&c->side, &req));
    }
}

static enum upstream_data_verdict chain_on_data(void *ud, const char *p, size_t n)
{
    return rec_on_data(&((struct chain *)ud)->r, p, n);
}

static void chain_on_done(void *ud, enum upstream_error e, const char *d)
{
    struct chain *c = ud;
    assert_int_equal(e, UPSTREAM_OK);
    (*c->done)++;
    if (--c->left > 0) chain_start(c);
}

static void chain_start(struct chain *c)
{
    static const struct upstream_callbacks cb = {chain_on_head, chain_on_data, chain_on_done};
    buf_free(&c->r.body);
    rec_init(&c->r, c->f->u, NULL);
    struct upstream_request req = get_req(url(c->f, "/json"));
    c->r.x = upstream_start(c->f->u, &req, &cb, c);
    assert_non_null(c->r.x);
}

static void test_start_from_callbacks(void **state)
{
    struct fx *f = *state;
    int done = 0, side_done = 0;
    struct chain c;
    memset(&c, 0, sizeof c);
    c.f = f;
    c.left = 5;
    c.done = &done;
    rec_init(&c.side, f->u, &side_done);
    chain_start(&c);
    assert_true(run_until(&f->loop, &done, 5, 5000));
    assert_true(run_until(&f->loop, &side_done, 1, 5000));
    assert_int_equal(c.side.err, UPSTREAM_OK);
    rec_free(&c.r);
    rec_free(&c.side);
}

static struct rec run_one(struct fx *f, struct upstream_request *req)
{
    int done = 0;
    struct rec r;
    rec_init(&r, f->u, &done);
    assert_non_null(rec_start(&r, req));
    assert_true(run_until(&f->loop, &done, 1, 5000));
    r.done_counter = NULL;
    return r;
}

static void test_malformed_responses(void **state)
{
    struct fx *f = *state;
    struct upstream_request req = get_req(url(f, "/garbage"));
    struct rec r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_ERR_PROTOCOL);
    assert_int_equal(r.head_calls, 0);
    rec_free(&r);

    /* 100 headers of 1000 bytes: over the 64 KiB head limit. */
    req.url = url(f, "/manyheaders?n=100&len=1000");
    r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_ERR_PROTOCOL);
    assert_non_null(strstr(r.detail, "too large"));
    assert_int_equal(r.head_calls, 0);
    rec_free(&r);

    req.url = url(f, "/manyheaders?n=300&len=4");
    r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_ERR_PROTOCOL);
    assert_non_null(strstr(r.detail, "too many"));
    rec_free(&r);

    /* Just under both limits is fine. */
    req.url = url(f, "/manyheaders?n=200&len=100");
    r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.n_hdrs, 201);
    rec_free(&r);
}

static void test_tls_handshake_timeout_is_connect(void **state)
{
    /* https:// to a plain-HTTP server that waits for a request head: the TLS handshake
     * never completes, and curl's connect timeout covers it. */
    struct fx *f = *state;
    struct upstream_request req = get_req(url(f, "/json"));
    char u[128];
    snprintf(u, sizeof u, "https://127.0.0.1:%d/json", f->m->port);
    req.url = u;
    req.connect_timeout_ms = 300;
    req.first_byte_timeout_ms = 100; /* does not run before the request is sent */
    uint64_t t0 = mock_now_ms();
    struct rec r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_ERR_CONNECT);
    assert_true(mock_now_ms() - t0 >= 250);
    rec_free(&r);
}

static void test_proxy(void **state)
{
    struct fx *f = *state;
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", mock_dead_port());

    /* An explicit proxy that is down: a connect error. */
    struct upstream_request req = get_req(url(f, "/json"));
    req.proxy_url = dead;
    struct rec r = run_one(f, &req);
    assert_int_equal(r.err, UPSTREAM_ERR_CONNECT);
    rec_free(&r);

    /* Proxies from the environment are never used. */
    setenv("http_proxy", dead, 1);
    setenv("HTTP_PROXY", dead, 1);
    setenv("ALL_PROXY", dead, 1);
    req.proxy_url = NULL;
    r = run_one(f, &req);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
    assert_int_equal(r.err, UPSTREAM_OK);
    assert_int_equal(r.status, 200);
    rec_free(&r);
}

static void test_first_byte_after_large_post(void **state)
{
    /* The first-byte clock starts once the body is sent: a 2 MiB body to a server that
     * then stays silent times out as first_byte, with the request marked as sent. */
    struct fx *f = *state;
    size_t n = 2u * 1024 * 1024;
    char *body = calloc(1, n);
    struct upstream_request req = {
        .method = SLICE_LIT("POST"),
        .url = url(f, "/slow?ms=3000"),
        .body = {body, n},
        .first_byte_timeout_ms = 200,
    };
    struct rec r;
    int done = 0;
    rec_init(&r, f->u, &done);
    assert_non_null(rec_start(&r, &req));
    assert_false(upstream_request_sent(r.x)); /* not even connected yet */
    while (!upstream_request_sent(r.x) && !done) run_for(&f->loop, 5);
    assert_int_equal(done, 0);
    assert_true(run_until(&f->loop, &done, 1, 5000));
    assert_int_equal(r.err, UPSTREAM_ERR_FIRST_BYTE_TIMEOUT);
    free(body);
    rec_free(&r);
}

static void test_abort_while_paused(void **state)
{
    struct fx *f = *state;
    struct rec r;
    int done = 0;
    rec_init(&r, f->u, &done);
    r.resume_inline = true; /* pauses at the first on_data, never resumed */
    struct upstream_request req = get_req(url(f, "/sse?n=1000&ms=5"));
    req.idle_timeout_ms = 100; /* suspended while paused */
    assert_non_null(rec_start(&r, &req));
    run_for(&f->loop, 300);
    assert_int_equal(r.data_calls, 1);
    assert_int_equal(r.done_calls, 0);
    upstream_abort(r.x);
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 1, 3000));
    run_for(&f->loop, 50);
    assert_int_equal(r.data_calls, 1);
    assert_int_equal(r.done_calls, 0);
    rec_free(&r);
}

/* A host name that needs the resolver (its thread and socketpair are watched through the
 * socket callback too): the machine's own name when it maps to 127.0.0.1, else skipped. */
static void test_resolver_path(void **state)
{
    struct fx *f = *state;
    char host[256];
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    if (gethostname(host, sizeof host) != 0 || getaddrinfo(host, NULL, &hints, &ai) != 0) skip();
    bool loop4 = ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    freeaddrinfo(ai);
    if (!loop4) skip();
    char u[512];
    snprintf(u, sizeof u, "http://%s:%d/json", host, f->m->port);
    for (int i = 0; i < 4; i++) {
        /* A fresh client has an empty DNS cache. */
        upstream_destroy(f->u);
        f->u = upstream_create(&f->loop, NULL);
        struct upstream_request req = get_req(u);
        if (i % 2) {
            /* Aborted while resolving: nothing fires, nothing blocks. */
            struct rec r;
            rec_init(&r, f->u, NULL);
            assert_non_null(rec_start(&r, &req));
            /* Runs right after curl's first timer turn, which started the lookup. */
            struct abort_timer a = {.x = r.x};
            uv_timer_init(&f->loop, &a.t);
            a.t.data = &a;
            uv_timer_start(&a.t, on_abort_timer, 0, 0);
            assert_true(run_until(&f->loop, &a.fired, 1, 2000));
            uv_close((uv_handle_t *)&a.t, NULL);
            run_for(&f->loop, 20);
            assert_int_equal(r.head_calls + r.data_calls + r.done_calls, 0);
            rec_free(&r);
        } else {
            struct rec r = run_one(f, &req);
            assert_int_equal(r.err, UPSTREAM_OK);
            assert_int_equal(r.status, 200);
            rec_free(&r);
        }
    }
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct rec r;
    rec_init(&r, f->u, NULL);
    struct upstream_request req = get_req(url(f, "/json"));

    struct http_header crlf = {SLICE_LIT("X-A"), SLICE_LIT("a\r\nX-Injected: 1")};
    req.headers = &crlf;
    req.n_headers = 1;
    assert_null(rec_start(&r, &req));
    struct http_header badname = {SLICE_LIT("X A"), SLICE_LIT("1")};
    req.headers = &badname;
    assert_null(rec_start(&r, &req));
    struct http_header noname = {SLICE_LIT(""), SLICE_LIT("1")};
    req.headers = &noname;
    assert_null(rec_start(&r, &req));
    req.headers = NULL;
    req.n_headers = 0;
    req.method = SLICE_LIT("GE T");
    assert_null(rec_start(&r, &req));
    req.method = SLICE_LIT("GET");
    req.url = NULL;
    assert_null(rec_start(&r, &req));
    assert_null(upstream_start(f->u, &req, NULL, NULL));
    upstream_abort(NULL);
    upstream_resume(NULL);
    assert_false(upstream_request_sent(NULL));

    /* Rejected by curl once running: a scheme outside http/https, a malformed URL. */
    const char *bad_urls[] = {"ftp://127.0.0.1/x", "http://[::1", "file:///etc/passwd"};
    for (int i = 0; i < 3; i++) {
        int done = 0;
        rec_init(&r, f->u, &done);
        req.url = bad_urls[i];
        upstream_xfer_t *x = rec_start(&r, &req);
        if (x) {
            assert_true(run_until(&f->loop, &done, 1, 5000));
            assert_int_not_equal(r.err, UPSTREAM_OK);
            assert_int_equal(r.head_calls, 0);
            assert_false(upstream_request_sent(NULL));
        }
        rec_free(&r);
    }
    assert_int_equal(atomic_load(&f->m->requests), 0);
    assert_string_equal(upstream_error_name(UPSTREAM_ERR_IDLE_TIMEOUT), "idle_timeout");
    assert_string_equal(upstream_error_name(UPSTREAM_ERR_CONNECT), "connect");
}

static void test_destroy_with_transfers(void **state)
{
    struct fx *f = *state;
    struct rec r[3];
    for (int i = 0; i < 3; i++) {
        rec_init(&r[i], f->u, NULL);
        struct upstream_request req = get_req(url(f, i ? "/silence" : "/stall"));
        assert_non_null(rec_start(&r[i], &req));
    }
    assert_true(run_until(&f->loop, &r[0].data_calls, 1, 3000)); /* /stall is streaming */
    run_for(&f->loop, 50);
    upstream_destroy(f->u);
    f->u = upstream_create(&f->loop, NULL); /* for teardown */
    assert_true(wait_counter(&f->loop, &f->m->peer_closed, 3, 3000));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].done_calls, 0);
        assert_int_equal(r[i].data_calls, i ? 0 : 1);
        rec_free(&r[i]);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_200, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_and_interim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_byte_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_first_byte_within_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_sse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_suspends_idle_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_inline_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_in_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_in_on_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_before_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_2mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_from_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_handshake_timeout_is_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_byte_after_large_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_while_paused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolver_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_transfers, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
