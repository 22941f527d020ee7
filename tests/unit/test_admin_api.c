/* test_admin_api.c — the admin REST API against a real SQLite store in a temporary
 * directory: every endpoint, every error path (404, 405, 400 with the JSON byte offset,
 * 409), secrets never returned in full, and POST /api/models/check against a small HTTP
 * server on 127.0.0.1 run by this test. */
#include "store_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "admin/admin_api.h"
#include "base/clock.h"
#include "net/fetch.h"
#include "store/usage_queue.h"

/* ------------------------------------------------------------------------------------
 * net/fetch.c (curl) is developed in parallel with this module. Until it is in the tree,
 * this test links a minimal stand-in for the four fetch.h functions: plain HTTP/1.1 over
 * a socket to 127.0.0.1, enough for the model check to reach the test server below. Once
 * src/net/fetch.c exists, the stand-in disappears and the real client is tested. */
#if !__has_include("../../src/net/fetch.c")
#define FETCH_STAND_IN 1
struct fetch_client {
    int unused;
};
fetch_client_t *fetch_client_new(void)
{
    return calloc(1, sizeof(struct fetch_client));
}
void fetch_client_free(fetch_client_t *c)
{
    free(c);
}
void fetch_response_free(struct fetch_response *resp)
{
    buf_free(&resp->body);
    buf_free(&resp->headers_raw);
}
int fetch_do(fetch_client_t *c, const struct fetch_request *req, struct fetch_response *resp)
{
    (void)c;
    memset(resp, 0, sizeof *resp);
    unsigned port = 0;
    char path[512] = "/";
    if (sscanf(req->url, "http://127.0.0.1:%u%511s", &port, path) < 1) {
        snprintf(resp->error, sizeof resp->error, "stand-in fetch: unsupported URL");
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(resp->error, sizeof resp->error, "Failed to connect to 127.0.0.1 port %u", port);
        close(fd);
        return -1;
    }
    struct buf out = BUF_INIT;
    buf_printf(&out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n",
               req->method ? req->method : "GET", path, port);
    for (size_t i = 0; i < req->n_headers; i++)
        buf_printf(&out, "%.*s: %.*s\r\n", (int)req->headers[i].name.n, req->headers[i].name.p,
                   (int)req->headers[i].value.n, req->headers[i].value.p);
    buf_append_str(&out, "\r\n");
    (void)!write(fd, out.p, out.n);
    buf_free(&out);
    struct buf in = BUF_INIT;
    char tmp[4096];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0) buf_append(&in, tmp, (size_t)r);
    close(fd);
    buf_nul(&in);
    char *hend = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
    if (!hend || sscanf(in.p, "HTTP/1.%*d %d", &resp->status) != 1) {
        buf_free(&in);
        snprintf(resp->error, sizeof resp->error, "stand-in fetch: bad response");
        return -1;
    }
    buf_append(&resp->headers_raw, in.p, (size_t)(hend - in.p) + 2);
    buf_append(&resp->body, hend + 4, in.n - (size_t)(hend + 4 - in.p));
    buf_nul(&resp->body);
    buf_free(&in);
    return 0;
}
#endif

/* ---- a tiny HTTP server: answers GET <prefix>/v1/models by prefix ---- */

struct upstream {
    int fd;
    unsigned port;
    pthread_t th;
    pthread_mutex_t mu;
    char last_request[4096];
    int requests;
    volatile int stop;
};

static const char *TOKEN = "sk-test-0123456789abcdefghijklmnopqrstuv";

static void answer(int c, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     status, strlen(body));
    (void)!write(c, head, (size_t)n);
    (void)!write(c, body, strlen(body));
}

static void *upstream_main(void *arg)
{
    struct upstream *u = arg;
    while (!u->stop) {
        struct pollfd p = {.fd = u->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(u->fd, NULL, NULL);
        if (c < 0) continue;
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1) {
            ssize_t r = read(c, req + n, sizeof req - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            req[n] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        req[n] = 0;
        pthread_mutex_lock(&u->mu);
        snprintf(u->last_request, sizeof u->last_request, "%s", req);
        u->requests++;
        pthread_mutex_unlock(&u->mu);
        if (strncmp(req, "GET /ok/v1/models ", 18) == 0)
            answer(c, 200,
                   "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\",\"object\":\"model\"},"
                   "{\"id\":\"claude-3-5-sonnet\"},{\"id\":\"gpt-4o\"},{\"id\":5},{},\"x\","
                   "{\"id\":\"\"}]}");
        else if (strncmp(req, "GET /v1models/v1/models ", 24) == 0)
            answer(c, 200, "{\"data\":[{\"id\":\"only-one\"}]}");
        else if (strncmp(req, "GET /empty/v1/models ", 21) == 0)
            answer(c, 200, "{\"data\":[]}");
        else if (strncmp(req, "GET /denied/v1/models ", 22) == 0) {
            char body[256];
            snprintf(body, sizeof body, "{\"error\":{\"message\":\"invalid token %s\"}}", TOKEN);
            answer(c, 401, body);
        } else if (strncmp(req, "GET /garbage/v1/models ", 23) == 0)
            answer(c, 200, "<html>not json</html>");
        else if (strncmp(req, "GET /nodata/v1/models ", 22) == 0)
            answer(c, 200, "{\"object\":\"list\"}");
        else
            answer(c, 404, "{\"error\":\"no route\"}");
        close(c);
    }
    return NULL;
}

static void upstream_start(struct upstream *u)
{
    memset(u, 0, sizeof *u);
    pthread_mutex_init(&u->mu, NULL);
    u->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(u->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(u->fd, (struct sockaddr *)&sa, &sl);
    u->port = ntohs(sa.sin_port);
    assert_int_equal(listen(u->fd, 16), 0);
    pthread_create(&u->th, NULL, upstream_main, u);
}

static void upstream_stop(struct upstream *u)
{
    u->stop = 1;
    pthread_join(u->th, NULL);
    close(u->fd);
    pthread_mutex_destroy(&u->mu);
}

/* ---- fixture ---- */

struct fx {
    char *dir;
    store_t *s;
    db_t *db;
    fetch_client_t *fetch;
    struct admin_ctx ctx;
    int routing_changes;
    struct upstream up;
};

static void on_routing_changed(void *arg)
{
    ((struct fx *)arg)->routing_changes++;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir_make();
    char *err = NULL;
    struct store_config cfg = {.data_dir = f->dir, .credential_secret = "admin-test-secret"};
    f->s = store_open(&cfg, &err);
    if (!f->s) fail_msg("store_open: %s", err);
    f->db = store_connect(f->s);
    f->fetch = fetch_client_new();
    assert_non_null(f->fetch);
    f->ctx = (struct admin_ctx){.db = f->db,
                                .fetch = f->fetch,
                                .routing_changed = on_routing_changed,
                                .routing_changed_arg = f};
    upstream_start(&f->up);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    upstream_stop(&f->up);
    fetch_client_free(f->fetch);
    db_close(f->db);
    store_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Performs one request; returns the parsed JSON answer (caller decrefs) and the status.
 * Every answer must be valid JSON. */
static json_t *call(struct fx *f, const char *method, const char *path_and_query, const char *body,
                    int *status)
{
    const char *q = strchr(path_and_query, '?');
    struct admin_request req = {
        .method = method,
        .path = {path_and_query, q ? (size_t)(q - path_and_query) : strlen(path_and_query)},
        .query = q ? slice_from(q + 1) : SLICE_NULL,
        .body = body ? slice_from(body) : SLICE_NULL,
    };
    struct admin_response resp;
    admin_api_handle(&f->ctx, &req, &resp);
    *status = resp.status;
    json_error_t e;
    json_t *j = json_loadb(resp.body.p, resp.body.n, JSON_DECODE_ANY, &e);
    if (!j) fail_msg("answer is not JSON: %.*s", (int)resp.body.n, resp.body.p);
    /* No answer ever carries the full token. */
    assert_null(memmem(resp.body.p, resp.body.n, TOKEN, strlen(TOKEN)));
    buf_free(&resp.body);
    return j;
}

/* Asserts an error answer: status and a message containing `needle`. */
static void expect_error(struct fx *f, const char *method, const char *path, const char *body,
                         int want_status, const char *needle)
{
    int status;
    json_t *j = call(f, method, path, body, &status);
    if (status != want_status)
        fail_msg("%s %s: status %d, want %d (%s)", method, path, status, want_status,
                 json_string_value(json_object_get(j, "message")));
    assert_true(json_is_false(json_object_get(j, "success")));
    const char *msg = json_string_value(json_object_get(j, "message"));
    assert_non_null(msg);
    if (needle && !strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    json_decref(j);
}

static json_t *expect_ok(struct fx *f, const char *method, const char *path, const char *body)
{
    int status;
    json_t *j = call(f, method, path, body, &status);
    if (status != 200)
        fail_msg("%s %s: status %d (%s)", method, path, status,
                 json_string_value(json_object_get(j, "message")));
    return j;
}

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("%s is not an integer", key);
    return (int64_t)json_integer_value(v);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t create_site(struct fx *f, const char *prefix)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"url\":\"http://127.0.0.1:%u/%s/\",\"platform\":\"new-api\","
             "\"customHeaders\":{\"X-Site\":\"%s\"}}",
             prefix, f->up.port, prefix, prefix);
    json_t *j = expect_ok(f, "POST", "/api/sites", body);
    int64_t id = jint(j, "id");
    json_decref(j);
    return id;
}

static int64_t create_account(struct fx *f, int64_t site)
{
    char body[512];
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"apiToken\":\"  %s\\n\",\"username\":\"bob\"}",
             (long long)site, TOKEN);
    json_t *j = expect_ok(f, "POST", "/api/accounts", body);
    int64_t id = jint(j, "id");
    json_decref(j);
    return id;
}

/* ---- tests ---- */

static void test_routing_errors(void **state)
{
    struct fx *f = *state;
    expect_error(f, "GET", "/api/nothing", NULL, 404, "no such endpoint");
    expect_error(f, "GET", "/api", NULL, 404, NULL);
    expect_error(f, "GET", "/api/", NULL, 404, NULL);
    expect_error(f, "GET", "/other/sites", NULL, 404, NULL);
    expect_error(f, "GET", "/api/sites/abc", NULL, 404, NULL);
    expect_error(f, "GET", "/api/sites/0", NULL, 404, NULL);
    expect_error(f, "GET", "/api/sites/99999999999999999999999", NULL, 404, NULL);
    expect_error(f, "GET", "/api/sites//1", NULL, 404, NULL);
    expect_error(f, "GET", "/api/sites/1/2/3/4/5/6", NULL, 404, NULL);
    expect_error(f, "GET", "/api/models/check/1", NULL, 405, "allowed: POST");
    expect_error(f, "DELETE", "/api/sites", NULL, 405, "GET POST");
    expect_error(f, "PATCH", "/api/sites/1", NULL, 405, NULL);
    expect_error(f, "POST", "/api/stats/proxy-logs", NULL, 405, NULL);
    expect_error(f, "POST", "/api/accounts/1/models", NULL, 405, NULL);
    expect_error(f, "", "/api/sites", NULL, 405, NULL);
    /* bodies */
    expect_error(f, "POST", "/api/sites", NULL, 400, "JSON object");
    expect_error(f, "POST", "/api/sites", "[1,2]", 400, "JSON object");
    expect_error(f, "POST", "/api/sites", "{\"name\": \"x\",,}", 400, "at byte 14");
    expect_error(f, "POST", "/api/sites", "{\"name\":\"a\",\"name\":\"b\"}", 400, "duplicate");
    expect_error(f, "POST", "/api/accounts", "{\"siteId\":1", 400, "invalid JSON");
    /* a path that is not valid UTF-8 still gets a JSON answer */
    expect_error(f, "GET", "/api/\xff\xfe", NULL, 404, NULL);
    assert_int_equal(f->routing_changes, 0);
}

static void test_sites_crud(void **state)
{
    struct fx *f = *state;
    json_t *j = expect_ok(f, "GET", "/api/sites", NULL);
    assert_true(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);

    j = expect_ok(f, "POST", "/api/sites",
                  "{\"name\":\"Relay\",\"url\":\"https://relay.example.com///\","
                  "\"platform\":\"one-api\",\"proxyUrl\":\"socks5://127.0.0.1:1080\","
                  "\"customHeaders\":\"{\\\"X-A\\\":\\\"1\\\"}\",\"isPinned\":true}");
    int64_t id = jint(j, "id");
    assert_true(id > 0);
    assert_string_equal(jstr(j, "url"), "https://relay.example.com");
    assert_string_equal(jstr(j, "status"), "active");
    assert_string_equal(jstr(j, "proxyUrl"), "socks5://127.0.0.1:1080");
    assert_string_equal(jstr(j, "customHeaders"), "{\"X-A\":\"1\"}");
    assert_non_null(jstr(j, "createdAt"));
    assert_non_null(jstr(j, "updatedAt"));
    json_decref(j);
    assert_int_equal(f->routing_changes, 1);

    /* duplicate (platform, url), also after normalisation */
    expect_error(f, "POST", "/api/sites",
                 "{\"name\":\"Again\",\"url\":\"https://relay.example.com/\",\"platform\":"
                 "\"one-api\"}",
                 409, "already exists");
    /* validation */
    const char *bad[][2] = {
        {"{\"url\":\"https://a.com\",\"platform\":\"openai\"}", "required"},
        {"{\"name\":\"  \",\"url\":\"https://a.com\",\"platform\":\"openai\"}", "name"},
        {"{\"name\":5,\"url\":\"https://a.com\",\"platform\":\"openai\"}", "name must be"},
        {"{\"name\":\"n\",\"url\":\"ftp://a.com\",\"platform\":\"openai\"}", "http"},
        {"{\"name\":\"n\",\"url\":\"https://\",\"platform\":\"openai\"}", "host"},
        {"{\"name\":\"n\",\"url\":\"https:///path\",\"platform\":\"openai\"}", "host"},
        {"{\"name\":\"n\",\"url\":\"https://a.com/x?k=1\",\"platform\":\"openai\"}", "query"},
        {"{\"name\":\"n\",\"url\":\"https://a .com\",\"platform\":\"openai\"}", "spaces"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"gemini\"}", "platform"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"status\":\"x\"}",
         "status"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"proxyUrl\":\"x\"}",
         "proxyUrl"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "{\"X\":1}}",
         "must be a string"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "\"{bad\"}",
         "not valid JSON"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "[1]}",
         "object"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "{\"X\":\"a\\r\\nEvil: 1\"}}",
         "line breaks"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "{\"Bad Name\":\"v\"}}",
         "header name"},
        {"{\"name\":\"n\",\"url\":\"https://a.com\",\"platform\":\"openai\",\"customHeaders\":"
         "{\"Transfer-Encoding\":\"chunked\"}}",
         "managed by the HTTP client"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(f, "POST", "/api/sites", bad[i][0], 400, bad[i][1]);
    assert_int_equal(f->routing_changes, 1);

    /* partial update */
    char path[64];
    snprintf(path, sizeof path, "/api/sites/%lld", (long long)id);
    j = expect_ok(f, "PUT", path, "{\"name\":\"Renamed\",\"proxyUrl\":null,\"customHeaders\":{}}");
    assert_string_equal(jstr(j, "name"), "Renamed");
    assert_string_equal(jstr(j, "url"), "https://relay.example.com");
    assert_string_equal(jstr(j, "platform"), "one-api");
    assert_true(json_is_null(json_object_get(j, "proxyUrl")));
    assert_true(json_is_null(json_object_get(j, "customHeaders")));
    json_decref(j);
    j = expect_ok(f, "PUT", path, "{\"status\":\"disabled\"}");
    assert_string_equal(jstr(j, "status"), "disabled");
    assert_string_equal(jstr(j, "name"), "Renamed");
    json_decref(j);
    j = expect_ok(f, "GET", path, NULL);
    assert_string_equal(jstr(j, "status"), "disabled");
    json_decref(j);
    expect_error(f, "PUT", path, "{\"url\":\"nope\"}", 400, "url");
    expect_error(f, "PUT", "/api/sites/4242", "{\"name\":\"x\"}", 404, "not found");
    expect_error(f, "GET", "/api/sites/4242", NULL, 404, "not found");
    /* update into a duplicate */
    j = expect_ok(f, "POST", "/api/sites",
                  "{\"name\":\"B\",\"url\":\"https://b.example.com\",\"platform\":\"openai\"}");
    json_decref(j);
    expect_error(f, "PUT", path, "{\"url\":\"https://b.example.com\",\"platform\":\"openai\"}", 409,
                 NULL);
    j = expect_ok(f, "GET", "/api/sites", NULL);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    int before = f->routing_changes;
    j = expect_ok(f, "DELETE", path, NULL);
    assert_true(json_is_true(json_object_get(j, "success")));
    json_decref(j);
    assert_int_equal(f->routing_changes, before + 1);
    expect_error(f, "DELETE", path, NULL, 404, NULL);
}

static void test_accounts_crud(void **state)
{
    struct fx *f = *state;
    int64_t site = create_site(f, "ok");
    expect_error(f, "POST", "/api/accounts", "{\"apiToken\":\"sk-1\"}", 400, "siteId");
    expect_error(f, "POST", "/api/accounts", "{\"siteId\":\"1\",\"apiToken\":\"sk-1\"}", 400,
                 "siteId");
    expect_error(f, "POST", "/api/accounts", "{\"siteId\":999,\"apiToken\":\"sk-1\"}", 400,
                 "does not exist");
    char body[256];
    snprintf(body, sizeof body, "{\"siteId\":%lld}", (long long)site);
    expect_error(f, "POST", "/api/accounts", body, 400, "apiToken");
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"apiToken\":\"sk a b\"}", (long long)site);
    expect_error(f, "POST", "/api/accounts", body, 400, "apiToken");
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"apiToken\":\"sk-1\",\"status\":\"x\"}",
             (long long)site);
    expect_error(f, "POST", "/api/accounts", body, 400, "status");

    int changes = f->routing_changes;
    int64_t id = create_account(f, site);
    assert_int_equal(f->routing_changes, changes + 1);
    char path[64];
    snprintf(path, sizeof path, "/api/accounts/%lld", (long long)id);
    json_t *j = expect_ok(f, "GET", path, NULL);
    assert_int_equal(jint(j, "siteId"), site);
    assert_string_equal(jstr(j, "siteName"), "ok");
    assert_string_equal(jstr(j, "username"), "bob");
    assert_string_equal(jstr(j, "apiTokenMasked"), "sk-te\xe2\x80\xa6stuv");
    assert_null(json_object_get(j, "apiToken"));
    assert_string_equal(jstr(j, "status"), "active");
    json_decref(j);

    j = expect_ok(f, "GET", "/api/accounts", NULL);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = expect_ok(f, "GET", "/api/accounts?siteId=999", NULL);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    expect_error(f, "GET", "/api/accounts?siteId=x", NULL, 400, "siteId");

    j = expect_ok(f, "PUT", path,
                  "{\"status\":\"disabled\",\"apiToken\":\"sk-new-token-abcdefghijklmnop\","
                  "\"username\":null}");
    assert_string_equal(jstr(j, "status"), "disabled");
    assert_string_equal(jstr(j, "apiTokenMasked"), "sk-ne\xe2\x80\xa6mnop");
    assert_true(json_is_null(json_object_get(j, "username")));
    json_decref(j);
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"status\":\"active\"}", (long long)site);
    j = expect_ok(f, "PUT", path, body); /* same siteId is fine */
    json_decref(j);
    expect_error(f, "PUT", path, "{\"siteId\":12345}", 400, "cannot be changed");
    expect_error(f, "PUT", path, "{\"apiToken\":\"\"}", 400, "apiToken");
    expect_error(f, "PUT", "/api/accounts/999", "{\"status\":\"active\"}", 404, "not found");
    expect_error(f, "GET", "/api/accounts/999", NULL, 404, NULL);
    expect_error(f, "GET", "/api/accounts/999/models", NULL, 404, NULL);

    j = expect_ok(f, "DELETE", path, NULL);
    json_decref(j);
    expect_error(f, "DELETE", path, NULL, 404, NULL);

    /* deleting a site deletes its accounts */
    int64_t id2 = create_account(f, site);
    snprintf(path, sizeof path, "/api/sites/%lld", (long long)site);
    json_decref(expect_ok(f, "DELETE", path, NULL));
    snprintf(path, sizeof path, "/api/accounts/%lld", (long long)id2);
    expect_error(f, "GET", path, NULL, 404, NULL);
}

static void test_models_check(void **state)
{
    struct fx *f = *state;
    int64_t site = create_site(f, "ok");
    int64_t acc = create_account(f, site);
    char path[64], mpath[64];
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)acc);
    snprintf(mpath, sizeof mpath, "/api/accounts/%lld/models", (long long)acc);

    json_t *j = expect_ok(f, "GET", mpath, NULL);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);

    int changes = f->routing_changes;
    j = expect_ok(f, "POST", path, NULL);
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_int_equal(jint(j, "count"), 2);
    json_t *models = json_object_get(j, "models");
    assert_int_equal(json_array_size(models), 2);
    assert_string_equal(json_string_value(json_array_get(models, 0)), "claude-3-5-sonnet");
    assert_string_equal(json_string_value(json_array_get(models, 1)), "gpt-4o");
    json_decref(j);
    assert_int_equal(f->routing_changes, changes + 1);
    /* what the upstream saw */
    pthread_mutex_lock(&f->up.mu);
    char seen[4096];
    snprintf(seen, sizeof seen, "%s", f->up.last_request);
    pthread_mutex_unlock(&f->up.mu);
    assert_non_null(strstr(seen, "GET /ok/v1/models HTTP/1.1\r\n"));
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", TOKEN);
    assert_non_null(strstr(seen, auth));
    assert_non_null(strstr(seen, "X-Site: ok\r\n"));

    j = expect_ok(f, "GET", mpath, NULL);
    assert_int_equal(jint(j, "count"), 2);
    assert_int_equal(jint(j, "accountId"), acc);
    json_t *first = json_array_get(json_object_get(j, "models"), 0);
    assert_string_equal(jstr(first, "modelName"), "claude-3-5-sonnet");
    assert_true(json_is_true(json_object_get(first, "available")));
    assert_non_null(jstr(first, "checkedAt"));
    json_decref(j);

    /* a base URL ending in /v1 gets /models, not /v1/v1/models */
    char body[256];
    snprintf(
        body, sizeof body,
        "{\"name\":\"v1\",\"url\":\"http://127.0.0.1:%u/v1models/v1\",\"platform\":\"openai\"}",
        f->up.port);
    j = expect_ok(f, "POST", "/api/sites", body);
    int64_t s2 = jint(j, "id");
    json_decref(j);
    int64_t a2 = create_account(f, s2);
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)a2);
    j = expect_ok(f, "POST", path, NULL);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);

    /* upstream failures: structured, nothing replaced, routing untouched */
    struct {
        const char *prefix;
        int status;
        const char *needle;
    } cases[] = {
        {"denied", 502, "HTTP 401"},
        {"garbage", 502, "not a model list"},
        {"nodata", 502, "no \"data\" array"},
        {"missing", 502, "HTTP 404"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t s = create_site(f, cases[i].prefix);
        int64_t a = create_account(f, s);
        snprintf(path, sizeof path, "/api/models/check/%lld", (long long)a);
        changes = f->routing_changes;
        expect_error(f, "POST", path, NULL, cases[i].status, cases[i].needle);
        assert_int_equal(f->routing_changes, changes); /* nothing changed */
    }
    /* an empty list is a success with no models */
    int64_t se = create_site(f, "empty");
    int64_t ae = create_account(f, se);
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)ae);
    j = expect_ok(f, "POST", path, NULL);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);

    /* unreachable upstream */
    int closed = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(closed, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(closed, (struct sockaddr *)&sa, &sl);
    snprintf(body, sizeof body,
             "{\"name\":\"down\",\"url\":\"http://127.0.0.1:%u\",\"platform\":\"openai\"}",
             ntohs(sa.sin_port));
    j = expect_ok(f, "POST", "/api/sites", body);
    int64_t sdn = jint(j, "id");
    json_decref(j);
    int64_t adn = create_account(f, sdn);
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)adn);
    expect_error(f, "POST", path, NULL, 502, "cannot reach");
    close(closed);

    expect_error(f, "POST", "/api/models/check/9999", NULL, 404, "not found");
    /* no HTTP client on this thread */
    f->ctx.fetch = NULL;
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)acc);
    expect_error(f, "POST", path, NULL, 503, NULL);
    f->ctx.fetch = f->fetch;
}

static void test_denied_message_masks_key(void **state)
{
    struct fx *f = *state;
    int64_t s = create_site(f, "denied");
    int64_t a = create_account(f, s);
    char path[64];
    snprintf(path, sizeof path, "/api/models/check/%lld", (long long)a);
    int status;
    json_t *j = call(f, "POST", path, NULL, &status);
    assert_int_equal(status, 502);
    assert_int_equal(jint(j, "status"), 401);
    const char *msg = jstr(j, "message");
    assert_non_null(strstr(msg, "invalid token sk-te\xe2\x80\xa6stuv"));
    json_decref(j);
}

static void push_logs(int n, int64_t base_ms)
{
    struct usage_record r;
    for (int i = 0; i < n; i++) {
        memset(&r, 0, sizeof r);
        r.created_at_ms = base_ms + i;
        snprintf(r.request_id, sizeof r.request_id, "r%d", i);
        snprintf(r.downstream_path, sizeof r.downstream_path, "/v1/chat/completions");
        snprintf(r.model_requested, sizeof r.model_requested, "%s", i % 4 ? "gpt-4o" : "o3");
        snprintf(r.model_actual, sizeof r.model_actual, "gpt-4o-2024");
        r.account_id = i % 5 == 0 ? 0 : 7;
        r.site_id = 2;
        r.success = i % 3 != 0;
        r.http_status = r.success ? 200 : 0;
        r.stream = true;
        r.attempt = 1;
        r.first_byte_ms = r.success ? 50 : -1;
        r.total_ms = 900;
        r.prompt_tokens = r.success ? 11 : -1;
        r.completion_tokens = r.success ? 22 : -1;
        r.total_tokens = r.success ? 33 : -1;
        r.overhead_us = 140;
        snprintf(r.client_ip, sizeof r.client_ip, "10.0.0.1");
        if (!r.success) snprintf(r.error, sizeof r.error, "connect timeout");
        assert_true(usage_queue_push(&r));
    }
}

static void test_proxy_logs(void **state)
{
    struct fx *f = *state;
    int64_t base = 1767225600000; /* 2026-01-01T00:00:00.000Z */
    push_logs(120, base);
    /* group commit within ~20 ms: wait for all rows */
    json_t *j = NULL;
    for (int tries = 0; tries < 200; tries++) {
        j = expect_ok(f, "GET", "/api/stats/proxy-logs", NULL);
        if (jint(j, "total") == 120) break;
        json_decref(j);
        j = NULL;
        usleep(10000);
    }
    assert_non_null(j);
    assert_int_equal(jint(j, "limit"), 50);
    assert_int_equal(jint(j, "offset"), 0);
    json_t *items = json_object_get(j, "items");
    assert_int_equal(json_array_size(items), 50);
    json_t *it = json_array_get(items, 0); /* newest: i = 119 */
    assert_string_equal(jstr(it, "requestId"), "r119");
    assert_string_equal(jstr(it, "createdAt"), "2026-01-01T00:00:00.119Z");
    assert_string_equal(jstr(it, "modelRequested"), "gpt-4o");
    assert_string_equal(jstr(it, "modelActual"), "gpt-4o-2024");
    assert_string_equal(jstr(it, "downstreamPath"), "/v1/chat/completions");
    assert_string_equal(jstr(it, "status"), "success"); /* i % 3 != 0 */
    assert_int_equal(jint(it, "httpStatus"), 200);
    assert_int_equal(jint(it, "accountId"), 7);
    assert_int_equal(jint(it, "siteId"), 2);
    assert_true(json_is_null(json_object_get(it, "downstreamApiKeyId")));
    assert_true(json_is_true(json_object_get(it, "isStream")));
    assert_int_equal(jint(it, "retryCount"), 1);
    assert_int_equal(jint(it, "firstByteLatencyMs"), 50);
    assert_int_equal(jint(it, "latencyMs"), 900);
    assert_int_equal(jint(it, "promptTokens"), 11);
    assert_int_equal(jint(it, "completionTokens"), 22);
    assert_int_equal(jint(it, "totalTokens"), 33);
    assert_int_equal(jint(it, "overheadUs"), 140);
    assert_string_equal(jstr(it, "clientIp"), "10.0.0.1");
    assert_true(json_is_null(json_object_get(it, "errorMessage")));
    json_decref(j);

    /* the oldest row: a failure without a channel */
    j = expect_ok(f, "GET", "/api/stats/proxy-logs?offset=119&limit=1", NULL);
    it = json_array_get(json_object_get(j, "items"), 0);
    assert_string_equal(jstr(it, "requestId"), "r0");
    assert_string_equal(jstr(it, "status"), "failed");
    assert_true(json_is_null(json_object_get(it, "accountId")));
    assert_true(json_is_null(json_object_get(it, "httpStatus")));
    assert_true(json_is_null(json_object_get(it, "firstByteLatencyMs")));
    assert_true(json_is_null(json_object_get(it, "promptTokens")));
    assert_string_equal(jstr(it, "errorMessage"), "connect timeout");
    assert_int_equal(jint(j, "offset"), 119);
    assert_int_equal(jint(j, "limit"), 1);
    json_decref(j);

    struct {
        const char *q;
        int64_t total;
        size_t items;
        const char *first;
    } cases[] = {
        {"?status=failed", 40, 40, "r117"},
        {"?status=success&limit=500", 80, 80, "r119"},
        {"?model=o3", 30, 30, "r116"},
        {"?model=o3&status=failed", 10, 10, "r108"},
        {"?model=gpt", 0, 0, NULL},
        {"?model=gpt%2D4o&limit=10&offset=5", 90, 10, "r113"},
        {"?limit=10&offset=5", 120, 10, "r114"},
        {"?offset=500", 120, 0, NULL},
        {"?status=&model=", 120, 50, "r119"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[128];
        snprintf(path, sizeof path, "/api/stats/proxy-logs%s", cases[c].q);
        j = expect_ok(f, "GET", path, NULL);
        if (jint(j, "total") != cases[c].total)
            fail_msg("%s: total %lld", path, (long long)jint(j, "total"));
        items = json_object_get(j, "items");
        assert_int_equal(json_array_size(items), cases[c].items);
        if (cases[c].first)
            assert_string_equal(jstr(json_array_get(items, 0), "requestId"), cases[c].first);
        json_decref(j);
    }
    const char *bad[] = {
        "?limit=0",   "?limit=501", "?limit=abc",    "?limit=-1",
        "?offset=-1", "?offset=1x", "?status=bogus", "?limit=99999999999999999999999999999"};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        char path[128];
        snprintf(path, sizeof path, "/api/stats/proxy-logs%s", bad[c]);
        expect_error(f, "GET", path, NULL, 400, NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routing_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_message_masks_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_logs, setup, teardown),
    };
#ifdef FETCH_STAND_IN
    fprintf(stderr, "note: net/fetch.c is not in the tree; using this test's stand-in client\n");
#endif
    return cmocka_run_group_tests(tests, NULL, NULL);
}
