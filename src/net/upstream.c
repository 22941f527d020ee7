/* upstream.c — the curl-multi transport behind net/upstream.h, driven by one worker's
 * libuv loop.
 *
 * Shape (DESIGN.md §10, design-review.md findings 1, 2, 3, 7):
 *  - One CURLM per upstream_t. curl tells us which sockets to watch (SOCKETFUNCTION) and
 *    when to wake it (TIMERFUNCTION); we answer with one uv_poll_t per socket and one
 *    uv_timer_t. The uv_poll_t of a socket lives as long as the socket: we open and
 *    close connection sockets ourselves (OPEN/CLOSESOCKETFUNCTION), so a poll handle is
 *    closed exactly when its fd is, and never left watching a closed or reused fd.
 *    CURL_POLL_REMOVE on a connection going idle only stops the poll. Sockets curl
 *    opens itself (the threaded resolver's socketpair) get a poll that is closed on
 *    CURL_POLL_REMOVE, which curl sends before closing them.
 *  - A transfer (`struct upstream_xfer`) owns an easy handle and a uv_timer_t; both are
 *    kept on a free list and reused (curl_easy_reset + options again).
 *  - curl must never be re-entered from inside its own callbacks. User callbacks run
 *    inside curl (on_head, on_data) and may call upstream_start, upstream_resume or
 *    upstream_abort; while `in_curl` is set those only flag the transfer and queue it,
 *    and a uv_idle_t does the curl calls (add, curl_easy_pause, remove) on the next loop
 *    turn. on_done is always called outside curl.
 *  - Timeouts: connect is curl's (CONNECTTIMEOUT_MS); first-byte, idle and total are
 *    ours, on the transfer's uv timer, checked lazily (a byte only records the time; the
 *    timer re-arms itself when it fires early). The first-byte clock starts when the
 *    request body has been fully handed to the socket: curl's PREREQ callback says the
 *    connection is up, and the progress callback reports the upload count.
 *  - Pause: when on_data returns UPSTREAM_PAUSE the bytes were consumed; the next write
 *    callback returns CURL_WRITEFUNC_PAUSE without calling on_data (curl keeps those
 *    bytes, ≤ 16 KiB over HTTP/1.1, and re-delivers them after resume).
 *  - Abort: outside curl, curl_multi_remove_handle at once (a premature removal closes an
 *    HTTP/1.1 connection, so a half-read connection never returns to the pool); inside a
 *    callback, our callbacks fail the transfer (curl then closes the connection) and the
 *    removal happens on the next loop turn.
 *  - Request headers go out as given, except the framing and hop-by-hop ones the
 *    transport owns (see net/curl_opts.h); curl adds Host and Content-Length.
 *  - upstream_destroy is for worker shutdown: call it from the loop thread but not from
 *    inside this client's callbacks. */
#include "net/upstream.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/curl_opts.h"

#define DEFAULT_MAX_CONNECTIONS    256u
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define MAX_FREE_XFERS             64u         /* idle transfer objects kept for reuse */
#define MAX_HEAD_BYTES             (64 * 1024) /* response status line + headers */
#define MAX_HEADERS                256u

enum xfer_state {
    XS_FREE,        /* on the free list */
    XS_PENDING_ADD, /* started from inside curl: added to the multi on the next loop turn */
    XS_ACTIVE,      /* in the multi */
    XS_ZOMBIE,      /* aborted from inside curl: still in the multi until the next turn */
};

struct hdr_off {
    uint32_t name, name_len, value, value_len; /* offsets into hraw */
};

struct upstream_xfer {
    upstream_t *u;
    CURL *easy;
    uv_timer_t timer;
    struct upstream_xfer *lprev, *lnext; /* live list (every non-free transfer) */
    struct upstream_xfer *dnext;         /* deferred-work queue */
    struct upstream_xfer *fnext;         /* free list */
    enum xfer_state state;

    struct upstream_callbacks cb;
    void *ud;
    struct curl_slist *slist;
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];

    /* Deadlines, in uv_now() milliseconds. */
    uint64_t total_deadline; /* 0 = none */
    uint64_t last_activity;  /* request sent, or the last response byte */
    uint64_t timer_due;      /* when the timer is armed to fire; 0 = not armed */
    unsigned first_byte_ms, idle_ms;

    bool queued;      /* on the deferred-work queue */
    bool connected;   /* PREREQ seen: the request is about to go out */
    bool sent;        /* the whole request body was handed to the socket */
    bool got_byte;    /* a response byte arrived */
    bool head_done;   /* on_head was called */
    bool want_pause;  /* on_data asked for a pause */
    bool paused;      /* curl holds bytes (we returned CURL_WRITEFUNC_PAUSE) */
    bool need_resume; /* curl_easy_pause(CONT) is due on the next loop turn */
    bool aborted;     /* no user callback may fire any more */

    enum upstream_error fail_err; /* set when our own callback failed the transfer */
    const char *fail_detail;

    int status;
    struct buf hraw;
    struct hdr_off *hoffs;
    size_t n_hoffs, cap_hoffs;
    struct http_header *harr;
    size_t cap_harr;
};

struct sock_slot {
    uv_poll_t poll;
    upstream_t *u;
    curl_socket_t fd;
    bool owned; /* opened by our OPENSOCKETFUNCTION: closed by our CLOSESOCKETFUNCTION */
    int events; /* UV_READABLE|UV_WRITABLE currently polled; 0 = stopped */
};

struct upstream {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share; /* TLS sessions, shared by this worker's easy handles */
    uv_timer_t timer;
    uv_idle_t idle;
    char *ca_file;

    struct sock_slot **socks; /* indexed by fd */
    size_t cap_socks;

    struct upstream_xfer *live;
    struct upstream_xfer *free_list;
    size_t n_free;
    struct upstream_xfer *dq_head, *dq_tail;

    int in_curl; /* > 0 while curl is on the stack: no curl_multi_* calls then */
    bool idle_on;
    bool destroying;
    unsigned pending_closes;
};

const char *upstream_error_name(enum upstream_error e)
{
    switch (e) {
    case UPSTREAM_OK:
        return "ok";
    case UPSTREAM_ERR_CONNECT:
        return "connect";
    case UPSTREAM_ERR_FIRST_BYTE_TIMEOUT:
        return "first_byte_timeout";
    case UPSTREAM_ERR_IDLE_TIMEOUT:
        return "idle_timeout";
    case UPSTREAM_ERR_TOTAL_TIMEOUT:
        return "total_timeout";
    case UPSTREAM_ERR_RESET:
        return "reset";
    case UPSTREAM_ERR_PROTOCOL:
        return "protocol";
    case UPSTREAM_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

/* ---- handle lifetime ------------------------------------------------------------ */

static void upstream_free(upstream_t *u)
{
    free(u->socks);
    free(u->ca_file);
    free(u);
}

static void handle_closed(upstream_t *u)
{
    if (--u->pending_closes == 0 && u->destroying) upstream_free(u);
}

static void on_plain_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* ---- sockets -------------------------------------------------------------------- */

static struct sock_slot *slot_get(upstream_t *u, curl_socket_t fd)
{
    return (fd >= 0 && (size_t)fd < u->cap_socks) ? u->socks[fd] : NULL;
}

static void on_slot_closed(uv_handle_t *h)
{
    struct sock_slot *s = h->data;
    upstream_t *u = s->u;
    free(s);
    handle_closed(u);
}

/* Detaches the slot from its fd at once (the number may be reused right away) and
 * frees it once libuv is done with it. uv_close stops the poll, which removes the fd
 * from epoll before the caller closes it. */
static void slot_close(upstream_t *u, curl_socket_t fd)
{
    struct sock_slot *s = slot_get(u, fd);
    if (!s) return;
    u->socks[fd] = NULL;
    u->pending_closes++;
    uv_close((uv_handle_t *)&s->poll, on_slot_closed);
}

static struct sock_slot *slot_new(upstream_t *u, curl_socket_t fd, bool owned)
{
    if (fd < 0) return NULL;
    if ((size_t)fd >= u->cap_socks) {
        size_t cap = u->cap_socks ? u->cap_socks : 64;
        while (cap <= (size_t)fd) cap *= 2;
        struct sock_slot **t = realloc(u->socks, cap * sizeof *t);
        if (!t) return NULL;
        memset(t + u->cap_socks, 0, (cap - u->cap_socks) * sizeof *t);
        u->socks = t;
        u->cap_socks = cap;
    }
    /* A slot still registered under this number belongs to a socket that is gone. */
    slot_close(u, fd);
    struct sock_slot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->u = u;
    s->fd = fd;
    s->owned = owned;
    u->socks[fd] = s;
    return s;
}

static void check_multi_info(upstream_t *u);

static void socket_action(upstream_t *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    check_multi_info(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_slot *s = h->data;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    /* The slot may be freed inside (curl closing the socket): copy what we need. */
    socket_action(s->u, s->fd, flags);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    upstream_t *u = userp;
    struct sock_slot *s = slot_get(u, fd);

    if (what == CURL_POLL_REMOVE) {
        if (!s) return 0;
        if (s->owned) {
            /* The connection may go back to the pool: keep the slot until curl closes it. */
            if (s->events) uv_poll_stop(&s->poll);
            s->events = 0;
        } else {
            slot_close(u, fd);
        }
        return 0;
    }
    if (u->destroying) return 0;
    if (!s && !(s = slot_new(u, fd, false))) return -1;
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    if (ev != s->events) {
        if (uv_poll_start(&s->poll, ev, on_poll) != 0) return -1;
        s->events = ev;
    }
    return 0;
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    upstream_t *u = clientp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    if (!slot_new(u, fd, true)) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int on_close_socket(void *clientp, curl_socket_t fd)
{
    slot_close(clientp, fd);
    return close(fd);
}

/* ---- curl's timer --------------------------------------------------------------- */

static void on_multi_timeout(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* Never calls curl back from here: even a 0 ms timeout waits for the timer phase. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    upstream_t *u = userp;
    if (u->destroying) return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_multi_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- deferred work -------------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

static void defer(struct upstream_xfer *x)
{
    upstream_t *u = x->u;
    if (!x->queued) {
        x->queued = true;
        x->dnext = NULL;
        if (u->dq_tail)
            u->dq_tail->dnext = x;
        else
            u->dq_head = x;
        u->dq_tail = x;
    }
    if (!u->idle_on) {
        uv_idle_start(&u->idle, on_idle);
        u->idle_on = true;
    }
}

static void undefer(struct upstream_xfer *x)
{
    upstream_t *u = x->u;
    struct upstream_xfer **pp = &u->dq_head, *prev = NULL;
    if (!x->queued) return;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->dnext;
    }
    if (*pp) {
        *pp = x->dnext;
        if (u->dq_tail == x) u->dq_tail = prev;
    }
    x->queued = false;
    x->dnext = NULL;
}

/* ---- transfer objects ----------------------------------------------------------- */

static void on_xfer_timer_closed(uv_handle_t *h)
{
    struct upstream_xfer *x = h->data;
    upstream_t *u = x->u;
    buf_free(&x->hraw);
    free(x->hoffs);
    free(x->harr);
    free(x);
    handle_closed(u);
}

static void xfer_destroy(struct upstream_xfer *x)
{
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    x->u->pending_closes++;
    uv_close((uv_handle_t *)&x->timer, on_xfer_timer_closed);
}

static struct upstream_xfer *xfer_get(upstream_t *u)
{
    struct upstream_xfer *x = u->free_list;
    if (x) {
        u->free_list = x->fnext;
        u->n_free--;
        x->fnext = NULL;
        return x;
    }
    x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->u = u;
    if (!(x->easy = curl_easy_init())) {
        free(x);
        return NULL;
    }
    uv_timer_init(u->loop, &x->timer);
    x->timer.data = x;
    return x;
}

/* Takes the transfer out of the multi and every queue and recycles it. Must not run
 * while curl is on the stack (curl_multi_remove_handle). */
static void xfer_release(struct upstream_xfer *x)
{
    upstream_t *u = x->u;
    undefer(x);
    if (x->state == XS_ACTIVE || x->state == XS_ZOMBIE) curl_multi_remove_handle(u->multi, x->easy);
    uv_timer_stop(&x->timer);
    if (x->lprev)
        x->lprev->lnext = x->lnext;
    else if (u->live == x)
        u->live = x->lnext;
    if (x->lnext) x->lnext->lprev = x->lprev;
    x->lprev = x->lnext = NULL;
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    x->state = XS_FREE;
    x->cb = (struct upstream_callbacks){0};
    x->ud = NULL;
    if (u->n_free < MAX_FREE_XFERS && !u->destroying) {
        /* Drops per-transfer option state; connections, DNS and TLS caches stay. */
        curl_easy_reset(x->easy);
        x->fnext = u->free_list;
        u->free_list = x;
        u->n_free++;
    } else {
        xfer_destroy(x);
    }
}

/* Ends a transfer that is not aborted: recycles it, then tells the user. */
static void xfer_finish(struct upstream_xfer *x, enum upstream_error err, const char *detail)
{
    char msg[CURL_ERROR_SIZE];
    struct upstream_callbacks cb = x->cb;
    void *ud = x->ud;
    snprintf(msg, sizeof msg, "%s", detail ? detail : "");
    x->aborted = true;
    xfer_release(x);
    if (cb.on_done) cb.on_done(ud, err, msg);
}

/* ---- our timeouts --------------------------------------------------------------- */

static void on_xfer_timer(uv_timer_t *t);

static uint64_t xfer_deadline(const struct upstream_xfer *x)
{
    uint64_t d = x->total_deadline ? x->total_deadline : UINT64_MAX;
    if (x->sent && !x->got_byte && x->first_byte_ms) {
        uint64_t fb = x->last_activity + x->first_byte_ms;
        if (fb < d) d = fb;
    }
    if (x->got_byte && x->idle_ms && !x->want_pause) {
        uint64_t id = x->last_activity + x->idle_ms;
        if (id < d) d = id;
    }
    return d;
}

/* Arms the timer when the next deadline is earlier than the one it is set for. A later
 * deadline (a byte arrived) needs nothing: the timer fires early and re-arms. */
static void xfer_arm(struct upstream_xfer *x)
{
    uint64_t d = xfer_deadline(x);
    if (d == UINT64_MAX || (x->timer_due && x->timer_due <= d)) return;
    uint64_t now = uv_now(x->u->loop);
    x->timer_due = d;
    uv_timer_start(&x->timer, on_xfer_timer, d > now ? d - now : 0, 0);
}

static void on_xfer_timer(uv_timer_t *t)
{
    struct upstream_xfer *x = t->data;
    uint64_t now = uv_now(x->u->loop);
    x->timer_due = 0;
    if (x->aborted) return;

    enum upstream_error err = UPSTREAM_OK;
    const char *detail = NULL;
    if (x->total_deadline && now >= x->total_deadline) {
        err = UPSTREAM_ERR_TOTAL_TIMEOUT;
        detail = "total timeout";
    } else if (x->sent && !x->got_byte && x->first_byte_ms &&
               now >= x->last_activity + x->first_byte_ms) {
        err = UPSTREAM_ERR_FIRST_BYTE_TIMEOUT;
        detail = "no response byte within the first-byte timeout";
    } else if (x->got_byte && x->idle_ms && !x->want_pause &&
               now >= x->last_activity + x->idle_ms) {
        err = UPSTREAM_ERR_IDLE_TIMEOUT;
        detail = "no response byte within the idle timeout";
    }
    if (err == UPSTREAM_OK) {
        xfer_arm(x);
        return;
    }
    /* A uv callback: curl is not on the stack, so the transfer can go at once (the
     * premature removal closes its connection). */
    xfer_finish(x, err, detail);
}

static void xfer_activity(struct upstream_xfer *x)
{
    x->last_activity = uv_now(x->u->loop);
    if (!x->got_byte) {
        x->got_byte = true;
        x->sent = true;
        xfer_arm(x);
    }
}

/* ---- curl callbacks of one transfer -------------------------------------------- */

static int on_curl_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                          int conn_primary_port, int conn_local_port)
{
    struct upstream_xfer *x = clientp;
    x->connected = true;
    return CURL_PREREQFUNC_OK;
}

static int on_curl_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
    struct upstream_xfer *x = clientp;
    if (x->aborted) return 1;
    if (!x->sent && x->connected && (ulnow >= (curl_off_t)x->body_len)) {
        x->sent = true;
        x->last_activity = uv_now(x->u->loop);
        xfer_arm(x);
    }
    return 0;
}

static size_t head_fail(struct upstream_xfer *x, const char *detail)
{
    x->fail_err = UPSTREAM_ERR_PROTOCOL;
    x->fail_detail = detail;
    return 0;
}

static void head_reset(struct upstream_xfer *x)
{
    x->hraw.n = 0;
    x->n_hoffs = 0;
}

static bool head_call(struct upstream_xfer *x)
{
    if (x->cap_harr < x->n_hoffs) {
        struct http_header *a = realloc(x->harr, x->n_hoffs * sizeof *a);
        if (!a) return false;
        x->harr = a;
        x->cap_harr = x->n_hoffs;
    }
    for (size_t i = 0; i < x->n_hoffs; i++) {
        const struct hdr_off *o = &x->hoffs[i];
        x->harr[i].name = (struct slice){x->hraw.p + o->name, o->name_len};
        x->harr[i].value = (struct slice){x->hraw.p + o->value, o->value_len};
    }
    x->head_done = true;
    if (x->cb.on_head) x->cb.on_head(x->ud, x->status, x->harr, x->n_hoffs);
    return true;
}

static size_t on_curl_header(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct upstream_xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->aborted) return 0;
    xfer_activity(x);
    if (x->head_done) return n; /* trailers: not part of the head */

    struct slice line = {p, n};
    while (line.n && (line.p[line.n - 1] == '\n' || line.p[line.n - 1] == '\r')) line.n--;

    if (slice_starts_with(line, "HTTP/")) {
        /* "HTTP/1.1 200 OK": a new response (after a 1xx, the next one replaces it). */
        const char *sp = memchr(line.p, ' ', line.n);
        size_t rest = sp ? line.n - (size_t)(sp + 1 - line.p) : 0;
        if (rest < 3 || sp[1] < '1' || sp[1] > '5' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' ||
            sp[3] > '9' || (rest > 3 && sp[4] != ' '))
            return head_fail(x, "malformed status line");
        x->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        head_reset(x);
        return n;
    }
    if (x->status == 0) return head_fail(x, "header before the status line");
    if (line.n == 0) {
        if (x->status < 200) { /* 1xx: interim, wait for the final response */
            x->status = 0;
            head_reset(x);
            return n;
        }
        if (!head_call(x)) {
            x->fail_err = UPSTREAM_ERR_INTERNAL;
            x->fail_detail = "out of memory";
            return 0;
        }
        return x->aborted ? 0 : n;
    }
    if (x->hraw.n + line.n + 1 > MAX_HEAD_BYTES) return head_fail(x, "response head too large");
    if (line.p[0] == ' ' || line.p[0] == '\t') {
        /* obs-fold: the continuation joins the previous value with one space. The value
         * is the last thing in hraw, so it grows in place. */
        struct slice more = slice_trim(line);
        if (x->n_hoffs == 0) return head_fail(x, "continuation before any header");
        if (more.n) {
            if (!buf_append(&x->hraw, " ", 1) || !buf_append(&x->hraw, more.p, more.n))
                return head_fail(x, "out of memory");
            x->hoffs[x->n_hoffs - 1].value_len += (uint32_t)more.n + 1;
        }
        return n;
    }
    const char *colon = memchr(line.p, ':', line.n);
    if (!colon || colon == line.p) return head_fail(x, "malformed header line");
    struct slice name = {line.p, (size_t)(colon - line.p)};
    struct slice value = slice_trim((struct slice){colon + 1, line.n - name.n - 1});
    if (name.p[name.n - 1] == ' ' || name.p[name.n - 1] == '\t')
        return head_fail(x, "whitespace before a header colon");
    if (x->n_hoffs >= MAX_HEADERS) return head_fail(x, "too many response headers");
    if (x->n_hoffs == x->cap_hoffs) {
        size_t cap = x->cap_hoffs ? x->cap_hoffs * 2 : 16;
        struct hdr_off *o = realloc(x->hoffs, cap * sizeof *o);
        if (!o) return head_fail(x, "out of memory");
        x->hoffs = o;
        x->cap_hoffs = cap;
    }
    struct hdr_off *o = &x->hoffs[x->n_hoffs];
    o->name = (uint32_t)x->hraw.n;
    o->name_len = (uint32_t)name.n;
    if (!buf_append(&x->hraw, name.p, name.n)) return head_fail(x, "out of memory");
    o->value = (uint32_t)x->hraw.n;
    o->value_len = (uint32_t)value.n;
    if (!buf_append(&x->hraw, value.p, value.n)) return head_fail(x, "out of memory");
    x->n_hoffs++;
    return n;
}

static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct upstream_xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->aborted) return CURL_WRITEFUNC_ERROR;
    if (x->want_pause) {
        /* curl keeps these bytes and hands them back after curl_easy_pause(CONT). */
        x->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (!x->head_done) {
        x->fail_err = UPSTREAM_ERR_PROTOCOL;
        x->fail_detail = "body before the response head";
        return CURL_WRITEFUNC_ERROR;
    }
    xfer_activity(x);
    enum upstream_data_verdict v = UPSTREAM_CONTINUE;
    if (x->cb.on_data && n) v = x->cb.on_data(x->ud, p, n);
    if (x->aborted) return CURL_WRITEFUNC_ERROR;
    if (v == UPSTREAM_PAUSE) x->want_pause = true; /* the idle clock stops with it */
    return n;
}

/* ---- completion ----------------------------------------------------------------- */

static enum upstream_error classify(CURLcode rc, const struct upstream_xfer *x)
{
    switch (rc) {
    case CURLE_OK:
        return UPSTREAM_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_PROXY:
        return UPSTREAM_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        /* Only the connect timeout is curl's (DNS, TCP, proxy, TLS handshake). */
        return x->got_byte ? UPSTREAM_ERR_RESET : UPSTREAM_ERR_CONNECT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return UPSTREAM_ERR_RESET;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_FILESIZE_EXCEEDED:
        return UPSTREAM_ERR_PROTOCOL;
    default:
        return UPSTREAM_ERR_INTERNAL;
    }
}

static void check_multi_info(upstream_t *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURLcode rc = msg->data.result;
        struct upstream_xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x) continue;
        if (x->aborted) { /* a zombie: nobody to tell */
            xfer_release(x);
            continue;
        }
        if (rc == CURLE_OK) {
            xfer_finish(x, UPSTREAM_OK, "ok");
        } else if (x->fail_err != UPSTREAM_OK) {
            xfer_finish(x, x->fail_err, x->fail_detail);
        } else {
            /* curl's error buffer names hosts and ports, never header values. */
            const char *d = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
            xfer_finish(x, classify(rc, x), d);
        }
    }
}

static void on_idle(uv_idle_t *h)
{
    upstream_t *u = h->data;
    /* Only what is queued now: work queued while running waits for the next turn. */
    struct upstream_xfer *x = u->dq_head;
    u->dq_head = u->dq_tail = NULL;
    while (x) {
        struct upstream_xfer *next = x->dnext;
        x->queued = false;
        x->dnext = NULL;
        if (x->state == XS_ZOMBIE) {
            xfer_release(x);
        } else if (x->state == XS_PENDING_ADD) {
            if (curl_multi_add_handle(u->multi, x->easy) == CURLM_OK)
                x->state = XS_ACTIVE;
            else
                xfer_finish(x, UPSTREAM_ERR_INTERNAL, "cannot add the transfer");
        } else if (x->state == XS_ACTIVE && x->need_resume) {
            x->need_resume = false;
            x->paused = false;
            /* Calls our write callback synchronously with the held bytes. */
            u->in_curl++;
            CURLcode rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
            u->in_curl--;
            if (rc != CURLE_OK && !x->aborted && x->state == XS_ACTIVE)
                xfer_finish(x, x->fail_err ? x->fail_err : UPSTREAM_ERR_INTERNAL,
                            x->fail_detail ? x->fail_detail : "resume failed");
        }
        x = next;
    }
    if (!u->dq_head && u->idle_on) {
        uv_idle_stop(&u->idle);
        u->idle_on = false;
    }
}

/* ---- public API ----------------------------------------------------------------- */

upstream_t *upstream_create(uv_loop_t *loop, const struct upstream_config *cfg)
{
    upstream_t *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->loop = loop;
    const char *ca =
        cfg && cfg->ca_file && *cfg->ca_file ? cfg->ca_file : CURL_OPTS_DEFAULT_CA_FILE;
    long maxconn =
        cfg && cfg->max_connections ? (long)cfg->max_connections : (long)DEFAULT_MAX_CONNECTIONS;
    if (!(u->ca_file = strdup(ca))) goto fail;
    if (!(u->multi = curl_multi_init())) goto fail;
    if (!(u->share = curl_share_init())) goto fail;
    /* One thread uses this share: no lock callbacks needed. Never share connections. */
    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) ||
        curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u) ||
        curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) ||
        curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u) ||
        curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, maxconn))
        goto fail;
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    uv_idle_init(loop, &u->idle);
    u->idle.data = u;
    return u;
fail:
    if (u->share) curl_share_cleanup(u->share);
    if (u->multi) curl_multi_cleanup(u->multi);
    free(u->ca_file);
    free(u);
    return NULL;
}

void upstream_destroy(upstream_t *u)
{
    if (!u) return;
    u->destroying = true;
    u->in_curl++; /* nothing below may be deferred or re-entered */
    while (u->live) {
        struct upstream_xfer *x = u->live;
        x->aborted = true;
        xfer_release(x); /* destroying: destroyed, not kept */
    }
    while (u->free_list) {
        struct upstream_xfer *x = u->free_list;
        u->free_list = x->fnext;
        xfer_destroy(x);
    }
    u->n_free = 0;
    /* Closes pooled connections through on_close_socket, which closes their polls. */
    curl_multi_cleanup(u->multi);
    curl_share_cleanup(u->share);
    for (size_t fd = 0; fd < u->cap_socks; fd++) slot_close(u, (curl_socket_t)fd);
    u->pending_closes += 2;
    uv_close((uv_handle_t *)&u->timer, on_plain_handle_closed);
    uv_close((uv_handle_t *)&u->idle, on_plain_handle_closed);
}

upstream_xfer_t *upstream_start(upstream_t *u, const struct upstream_request *req,
                                const struct upstream_callbacks *cb, void *ud)
{
    if (!u || !req || !req->url || !cb || u->destroying) return NULL;
    struct upstream_xfer *x = xfer_get(u);
    if (!x) return NULL;
    CURL *e = x->easy;

    x->state = XS_FREE;
    x->cb = *cb;
    x->ud = ud;
    x->body_len = req->body.n;
    x->errbuf[0] = '\0';
    x->total_deadline = 0;
    x->last_activity = uv_now(u->loop);
    x->timer_due = 0;
    x->first_byte_ms = req->first_byte_timeout_ms;
    x->idle_ms = req->idle_timeout_ms;
    x->queued = x->connected = x->sent = x->got_byte = x->head_done = false;
    x->want_pause = x->paused = x->need_resume = x->aborted = false;
    x->fail_err = UPSTREAM_OK;
    x->fail_detail = NULL;
    x->status = 0;
    head_reset(x);

    if (curl_opts_headers(req->headers, req->n_headers, &x->slist) != 0) goto fail;
    long cto =
        req->connect_timeout_ms ? (long)req->connect_timeout_ms : (long)DEFAULT_CONNECT_TIMEOUT_MS;
    if (curl_opts_common(e, u->ca_file, req->proxy_url, cto) != CURLE_OK ||
        curl_opts_method(e, req->method, req->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->slist) != CURLE_OK ||
        /* Aborting mid-DNS detaches the resolver thread instead of joining it here. */
        curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_SHARE, u->share) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_curl_prereq) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQDATA, x) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_curl_progress) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, u) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u) != CURLE_OK)
        goto fail;

    /* Live from here on: linked so that destroy finds it. */
    x->lprev = NULL;
    x->lnext = u->live;
    if (u->live) u->live->lprev = x;
    u->live = x;
    if (u->in_curl) {
        x->state = XS_PENDING_ADD;
        defer(x);
    } else {
        x->state = XS_ACTIVE;
        if (curl_multi_add_handle(u->multi, x->easy) != CURLM_OK) {
            x->state = XS_FREE;
            xfer_release(x);
            return NULL;
        }
    }
    if (req->total_timeout_ms) x->total_deadline = uv_now(u->loop) + req->total_timeout_ms;
    xfer_arm(x);
    return x;
fail:
    xfer_release(x);
    return NULL;
}

void upstream_resume(upstream_xfer_t *x)
{
    if (!x || x->aborted || x->state == XS_FREE || !x->want_pause) return;
    x->want_pause = false;
    x->last_activity = uv_now(x->u->loop); /* the idle clock restarts */
    xfer_arm(x);
    if (x->paused) {
        /* curl_easy_pause runs our write callback at once: never from inside curl. */
        x->need_resume = true;
        defer(x);
    }
}

void upstream_abort(upstream_xfer_t *x)
{
    if (!x || x->aborted || x->state == XS_FREE) return;
    upstream_t *u = x->u;
    x->aborted = true;
    uv_timer_stop(&x->timer);
    x->timer_due = 0;
    if (x->state == XS_PENDING_ADD || !u->in_curl) {
        xfer_release(x);
    } else {
        /* Our callbacks now fail this transfer (curl closes its connection); the
         * removal from the multi waits for the next loop turn. */
        x->state = XS_ZOMBIE;
        defer(x);
    }
}

bool upstream_request_sent(const upstream_xfer_t *x)
{
    return x && x->sent;
}
