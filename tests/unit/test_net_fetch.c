/* test_net_fetch.c — net/fetch (the blocking client) against the raw-socket HTTP server
 * of mock_http.h: bodies and headers captured, any status is a success, size caps,
 * timeouts, refused connections, connection reuse, bad input. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "mock_http.h"
#include "net/fetch.h"

struct fx {
    struct mock_server *m;
    fetch_client_t *c;
    char url[256];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->m = mock_start();
    f->c = fetch_client_new();
    assert_non_null(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fetch_client_free(f->c);
    mock_stop(f->m);
    free(f);
    return 0;
}

static const char *url(struct fx *f, const char *path)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->m->port, path);
    return f->url;
}

static void test_get_json(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = url(f, "/json")};
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    assert_int_equal(r.body.n, strlen(mock_json_body));
    assert_string_equal(r.body.p, mock_json_body); /* NUL-terminated */
    assert_non_null(strstr(r.headers_raw.p, "Content-Type: application/json\r\n"));
    assert_null(strstr(r.headers_raw.p, "HTTP/1.1")); /* status line not included */
    fetch_response_free(&r);
}

static void test_reuse_connection(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++) {
        struct fetch_response r;
        struct fetch_request req = {.url = url(f, "/json")};
        assert_int_equal(fetch_do(f->c, &req, &r), 0);
        assert_int_equal(r.status, 200);
        fetch_response_free(&r);
    }
    assert_int_equal(atomic_load(&f->m->accepted), 1);
}

static void test_status_500_is_not_a_failure(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = url(f, "/status500")};
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body.p, "boom"));
    fetch_response_free(&r);
}

static void test_post_echo(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"username\":\"u\",\"password\":\"p\"}";
    struct http_header hs[] = {{SLICE_LIT("Content-Type"), SLICE_LIT("application/json")}};
    struct fetch_request req = {
        .method = "POST",
        .url = url(f, "/echo"),
        .headers = hs,
        .n_headers = 1,
        .body = slice_from(body),
    };
    struct fetch_response r;
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    char want[256];
    snprintf(want, sizeof want,
             "{\"len\":%zu,\"hash\":\"%08x\",\"expect\":0,\"ctype\":\"application/json\"}",
             strlen(body), mock_fnv1a(body, strlen(body)));
    assert_string_equal(r.body.p, want);
    fetch_response_free(&r);

    /* A large body: no Expect: 100-continue wait. */
    size_t n = 1536 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)(i * 13);
    req.body = (struct slice){big, n};
    req.method = "PUT";
    uint64_t t0 = mock_now_ms();
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    assert_true(mock_now_ms() - t0 < 900);
    snprintf(want, sizeof want,
             "{\"len\":%zu,\"hash\":\"%08x\",\"expect\":0,\"ctype\":\"application/json\"}", n,
             mock_fnv1a(big, n));
    assert_string_equal(r.body.p, want);
    fetch_response_free(&r);
    free(big);
}

static void test_interim_headers_dropped(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = url(f, "/headers")};
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    assert_int_equal(r.status, 201);
    assert_null(strstr(r.headers_raw.p, "Link:")); /* the 103's header */
    assert_non_null(strstr(r.headers_raw.p, "X-One: 1\r\n"));
    fetch_response_free(&r);
}

static void test_body_cap(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = url(f, "/big?bytes=100000"), .max_response_bytes = 1000};
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.error, "size limit"));
    assert_true(r.body.n <= 1000);
    fetch_response_free(&r);

    /* Exactly at the cap is fine, and the client still works afterwards. */
    req.url = url(f, "/big?bytes=1000");
    assert_int_equal(fetch_do(f->c, &req, &r), 0);
    assert_int_equal(r.body.n, 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal((unsigned char)r.body.p[i], mock_big_byte(i));
    fetch_response_free(&r);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = url(f, "/silence"), .timeout_ms = 300};
    uint64_t t0 = mock_now_ms();
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    uint64_t el = mock_now_ms() - t0;
    assert_true(el >= 250 && el < 2000);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error) > 0);
    fetch_response_free(&r);
}

static void test_refused_and_reset(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", mock_dead_port());
    struct fetch_request req = {.url = u};
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "onnect"));
    fetch_response_free(&r);

    req.url = url(f, "/close");
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_true(strlen(r.error) > 0);
    fetch_response_free(&r);

    req.url = url(f, "/cut");
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_true(strlen(r.error) > 0);
    fetch_response_free(&r);
}

static void test_bad_input(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct fetch_request req = {.url = NULL};
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_true(strlen(r.error) > 0);
    fetch_response_free(&r);

    struct http_header bad = {SLICE_LIT("X-A"), SLICE_LIT("1\r\nX-B: 2")};
    req = (struct fetch_request){.url = url(f, "/json"), .headers = &bad, .n_headers = 1};
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_non_null(strstr(r.error, "header"));
    fetch_response_free(&r);

    req = (struct fetch_request){.url = url(f, "/json"), .method = "G T"};
    assert_int_equal(fetch_do(f->c, &req, &r), -1);
    assert_non_null(strstr(r.error, "method"));
    fetch_response_free(&r);

    const char *urls[] = {"ftp://127.0.0.1/", "file:///etc/passwd", "http://[::1", ""};
    for (int i = 0; i < 4; i++) {
        req = (struct fetch_request){.url = urls[i]};
        assert_int_equal(fetch_do(f->c, &req, &r), -1);
        assert_true(strlen(r.error) > 0);
        fetch_response_free(&r);
    }
    assert_int_equal(atomic_load(&f->m->requests), 0);
    fetch_response_free(NULL);
    fetch_client_free(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_500_is_not_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interim_headers_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
