/* mock_http.h — a tiny blocking HTTP/1.1 server for the net client tests (header-only,
 * included by one test file each). One listener thread on 127.0.0.1:<ephemeral>, one
 * thread per accepted connection, canned behaviours chosen by the request path:
 *
 *   /json              200, Content-Length, small JSON; keep-alive
 *   /sse?n=N&ms=M      200 chunked, N events "data: NNNNN\n\n" (one HTTP chunk each), M ms apart
 *   /status500         500 with a JSON body
 *   /close             closes before any response byte
 *   /silence           never answers; waits for the client to close
 *   /slow?ms=M         waits M ms, then 200 JSON
 *   /cut               Content-Length 1000, sends 100 bytes, closes
 *   /cutchunked        chunked, two chunks, closes without the last chunk
 *   /stall             chunked, headers and one chunk, then silence until the client closes
 *   /big?bytes=N       Content-Length N, body byte i = (i * 31 + 7) & 0xff
 *   /echo              any method; replies {"len":N,"hash":"<fnv1a32>","expect":0|1,"ctype":"…"}
 *   /headers           a 103 interim response, then 200 with several headers; the body
 *                      echoes the request's head
 *   /manyheaders?n=N&len=L  200 with N headers "X-Hnnnnn: <L bytes>", empty body
 *   /garbage           a reply that is not HTTP
 *
 * A test may install its own `handler` (called for every request before the canned
 * routes; return false to close the connection) to script a whole site.
 *
 * Counters: connections accepted, connections the client closed while the server was
 * waiting on them (peer_closed), requests served. */
#ifndef METARELAY_TESTS_MOCK_HTTP_H
#define METARELAY_TESTS_MOCK_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct mock_conn;
/* A scripted site: answers one request on c->fd. `head` is the raw request head. */
typedef bool (*mock_handler_fn)(struct mock_conn *c, const char *head, const char *target,
                                const char *body, size_t body_len);

struct mock_server {
    mock_handler_fn handler; /* NULL: the canned routes below */
    int lfd;
    int port;
    pthread_t th;
    atomic_bool stop;
    atomic_int accepted;
    atomic_int peer_closed;
    atomic_int requests;
    pthread_mutex_t mu;
    pthread_t *conns;
    size_t n_conns, cap_conns;
};

struct mock_conn {
    struct mock_server *m;
    int fd;
};

static inline uint32_t mock_fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

static inline unsigned char mock_big_byte(size_t i)
{
    return (unsigned char)((i * 31 + 7) & 0xff);
}

static inline uint64_t mock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool mock_send(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool mock_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool mock_sendf(int fd, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof tmp && mock_send(fd, tmp, (size_t)n);
}

/* Waits `ms` (forever when < 0) while watching the connection. 1: the client closed
 * (counted), 0: the time passed, -1: the server is stopping. */
static int mock_wait(struct mock_conn *c, int ms)
{
    uint64_t end = ms < 0 ? UINT64_MAX : mock_now_ms() + (uint64_t)ms;
    for (;;) {
        if (atomic_load(&c->m->stop)) return -1;
        uint64_t now = mock_now_ms();
        if (now >= end) return 0;
        int slice = end - now > 50 ? 50 : (int)(end - now);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, slice);
        if (r > 0) {
            char b[256];
            ssize_t n = recv(c->fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                atomic_fetch_add(&c->m->peer_closed, 1);
                return 1;
            }
            if (n > 0) {
                /* Unexpected bytes: drop them, keep waiting. */
                (void)recv(c->fd, b, (size_t)n, MSG_DONTWAIT);
            }
        }
    }
}

static long mock_query(const char *target, const char *key, long dflt)
{
    const char *q = strchr(target, '?');
    size_t kl = strlen(key);
    while (q) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=') return strtol(q + kl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

static bool mock_path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 && (target[n] == '\0' || target[n] == '?');
}

/* Finds a header's value in a raw head (case-insensitive name); copies into out. */
static bool mock_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap) n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strstr(p, "\r\n");
    }
    return false;
}

static bool mock_chunk(int fd, const char *p, size_t n)
{
    char sz[32];
    int k = snprintf(sz, sizeof sz, "%zx\r\n", n);
    return mock_send(fd, sz, (size_t)k) && mock_send(fd, p, n) && mock_send(fd, "\r\n", 2);
}

static const char mock_json_body[] = "{\"id\":\"x\",\"object\":\"chat.completion\",\"ok\":true}";

/* Serves one request. Returns false when the connection must close. */
static bool mock_serve(struct mock_conn *c, const char *head, const char *target, const char *body,
                       size_t body_len)
{
    int fd = c->fd;
    atomic_fetch_add(&c->m->requests, 1);
    if (c->m->handler) return c->m->handler(c, head, target, body, body_len);
    if (mock_path_is(target, "/json")) {
        return mock_sendf(fd,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(mock_json_body), mock_json_body);
    }
    if (mock_path_is(target, "/sse")) {
        long n = mock_query(target, "n", 5), ms = mock_query(target, "ms", 0);
        if (!mock_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"))
            return false;
        for (long i = 0; i < n; i++) {
            if (ms > 0 && i > 0 && mock_wait(c, (int)ms) != 0) return false;
            char ev[32];
            int k = snprintf(ev, sizeof ev, "data: %05ld\n\n", i);
            if (!mock_chunk(fd, ev, (size_t)k)) {
                atomic_fetch_add(&c->m->peer_closed, 1); /* reset by the client */
                return false;
            }
        }
        return mock_send(fd, "0\r\n\r\n", 5);
    }
    if (mock_path_is(target, "/status500")) {
        const char *b = "{\"error\":{\"message\":\"boom\"}}";
        return mock_sendf(fd,
                          "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          strlen(b), b);
    }
    if (mock_path_is(target, "/close")) return false;
    if (mock_path_is(target, "/silence")) {
        mock_wait(c, -1);
        return false;
    }
    if (mock_path_is(target, "/slow")) {
        if (mock_wait(c, (int)mock_query(target, "ms", 1000)) != 0) return false;
        return mock_sendf(fd,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(mock_json_body), mock_json_body);
    }
    if (mock_path_is(target, "/cut")) {
        char part[100];
        memset(part, 'x', sizeof part);
        mock_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        mock_send(fd, part, sizeof part);
        return false;
    }
    if (mock_path_is(target, "/cutchunked")) {
        mock_sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        mock_chunk(fd, "data: 1\n\n", 9);
        mock_chunk(fd, "data: 2\n\n", 9);
        return false;
    }
    if (mock_path_is(target, "/stall")) {
        mock_sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        mock_chunk(fd, "data: 1\n\n", 9);
        mock_wait(c, -1);
        return false;
    }
    if (mock_path_is(target, "/big")) {
        size_t n = (size_t)mock_query(target, "bytes", 5 * 1024 * 1024);
        if (!mock_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n)) return false;
        char blk[65536];
        for (size_t off = 0; off < n;) {
            size_t k = n - off < sizeof blk ? n - off : sizeof blk;
            for (size_t i = 0; i < k; i++) blk[i] = (char)mock_big_byte(off + i);
            if (!mock_send(fd, blk, k)) return false;
            off += k;
        }
        return true;
    }
    if (mock_path_is(target, "/echo")) {
        char ctype[128] = "";
        char expect[64];
        mock_header(head, "Content-Type", ctype, sizeof ctype);
        char b[512];
        int k =
            snprintf(b, sizeof b, "{\"len\":%zu,\"hash\":\"%08x\",\"expect\":%d,\"ctype\":\"%s\"}",
                     body_len, mock_fnv1a(body, body_len),
                     mock_header(head, "Expect", expect, sizeof expect) ? 1 : 0, ctype);
        return mock_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", k, b);
    }
    if (mock_path_is(target, "/headers")) {
        size_t hl = strlen(head);
        return mock_sendf(fd,
                          "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                          "HTTP/1.1 201 Created\r\nX-One: 1\r\nX-Empty:\r\n"
                          "X-Spaced:   padded value  \r\nContent-Length: %zu\r\n\r\n%s",
                          hl, head);
    }
    if (mock_path_is(target, "/manyheaders")) {
        long n = mock_query(target, "n", 10), len = mock_query(target, "len", 10);
        char val[1024];
        if (len >= (long)sizeof val) len = sizeof val - 1;
        memset(val, 'v', (size_t)len);
        val[len] = '\0';
        if (!mock_sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")) return false;
        for (long i = 0; i < n; i++)
            if (!mock_sendf(fd, "X-H%05ld: %s\r\n", i, val)) return false;
        return mock_send(fd, "\r\n", 2);
    }
    if (mock_path_is(target, "/garbage")) {
        mock_sendf(fd, "HELLO THERE\r\n\r\nthis is not http\n");
        return false;
    }
    mock_sendf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return true;
}

static void *mock_conn_main(void *arg)
{
    struct mock_conn *c = arg;
    char *in = malloc(1 << 16);
    size_t have = 0, cap = 1 << 16;
    for (;;) {
        char *end;
        /* Read a head. */
        while (!(end = memmem(in, have, "\r\n\r\n", 4))) {
            if (have == cap) goto out;
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int r = poll(&pfd, 1, 50);
            if (atomic_load(&c->m->stop)) goto out;
            if (r <= 0) continue;
            ssize_t n = recv(c->fd, in + have, cap - have, 0);
            if (n <= 0) goto out;
            have += (size_t)n;
        }
        size_t head_len = (size_t)(end - in) + 4;
        char *head = strndup(in, head_len);
        char method[16] = "", target[1024] = "";
        sscanf(head, "%15s %1023s", method, target);
        char cl[32];
        size_t body_len =
            mock_header(head, "Content-Length", cl, sizeof cl) ? (size_t)strtoull(cl, NULL, 10) : 0;
        char *body = malloc(body_len + 1);
        size_t got = have - head_len < body_len ? have - head_len : body_len;
        memcpy(body, in + head_len, got);
        bool ok = true;
        while (got < body_len) {
            ssize_t n = recv(c->fd, body + got, body_len - got, 0);
            if (n <= 0) {
                ok = false;
                break;
            }
            got += (size_t)n;
        }
        size_t used = head_len + (have - head_len < body_len ? have - head_len : body_len);
        memmove(in, in + used, have - used);
        have -= used;
        if (ok) ok = mock_serve(c, head, target, body, body_len);
        free(head);
        free(body);
        if (!ok) break;
    }
out:
    free(in);
    close(c->fd);
    free(c);
    return NULL;
}

static void *mock_listen_main(void *arg)
{
    struct mock_server *m = arg;
    while (!atomic_load(&m->stop)) {
        struct pollfd pfd = {.fd = m->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int fd = accept(m->lfd, NULL, NULL);
        if (fd < 0) continue;
        atomic_fetch_add(&m->accepted, 1);
        struct mock_conn *c = malloc(sizeof *c);
        c->m = m;
        c->fd = fd;
        pthread_mutex_lock(&m->mu);
        if (m->n_conns == m->cap_conns) {
            m->cap_conns = m->cap_conns ? m->cap_conns * 2 : 16;
            m->conns = realloc(m->conns, m->cap_conns * sizeof *m->conns);
        }
        pthread_create(&m->conns[m->n_conns++], NULL, mock_conn_main, c);
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

static struct mock_server *mock_start(void)
{
    struct mock_server *m = calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(m->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(m->lfd, 256) != 0) abort();
    socklen_t al = sizeof a;
    getsockname(m->lfd, (struct sockaddr *)&a, &al);
    m->port = ntohs(a.sin_port);
    pthread_create(&m->th, NULL, mock_listen_main, m);
    return m;
}

static void mock_stop(struct mock_server *m)
{
    atomic_store(&m->stop, true);
    pthread_join(m->th, NULL);
    for (size_t i = 0; i < m->n_conns; i++) pthread_join(m->conns[i], NULL);
    close(m->lfd);
    free(m->conns);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static int mock_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
