/* fetch.c — the blocking HTTP client of the control plane and admin threads
 * (net/fetch.h). One curl easy handle per client, reset and re-configured for each
 * request, so its connection cache, DNS cache and CA store cache survive between
 * requests (a new handle per request would re-parse the CA bundle on every TLS
 * connection: design-review.md finding 2). The response body and the final response's
 * raw header block are captured, each with a size cap. */
#include "net/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/curl_opts.h"

#define DEFAULT_TIMEOUT_MS         30000u
#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DEFAULT_MAX_RESPONSE       (16u * 1024 * 1024)
#define MAX_HEADER_BYTES           (256 * 1024)

struct fetch_client {
    CURL *easy;
};

/* What the curl callbacks of one request write into. */
struct fetch_sink {
    struct fetch_response *resp;
    size_t max_body;
    const char *fail; /* our reason when a callback stopped the transfer */
};

fetch_client_t *fetch_client_new(void)
{
    fetch_client_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (!(c->easy = curl_easy_init())) {
        free(c);
        return NULL;
    }
    return c;
}

void fetch_client_free(fetch_client_t *c)
{
    if (!c) return;
    curl_easy_cleanup(c->easy);
    free(c);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct fetch_sink *s = userdata;
    size_t n = size * nmemb;
    if (s->resp->body.n + n > s->max_body) {
        s->fail = "response body exceeds the size limit";
        return CURL_WRITEFUNC_ERROR;
    }
    if (!buf_append(&s->resp->body, p, n)) {
        s->fail = "out of memory";
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct fetch_sink *s = userdata;
    size_t n = size * nmemb;
    /* A status line starts a new response (after a 1xx or a proxy's CONNECT reply):
     * only the final response's headers are kept. */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        s->resp->headers_raw.n = 0;
        return n;
    }
    if (s->resp->headers_raw.n + n > MAX_HEADER_BYTES) {
        s->fail = "response headers exceed the size limit";
        return 0;
    }
    if (!buf_append(&s->resp->headers_raw, p, n)) {
        s->fail = "out of memory";
        return 0;
    }
    return n;
}

static void set_error(struct fetch_response *resp, const char *fmt, const char *a, const char *b)
{
    snprintf(resp->error, sizeof resp->error, fmt, a, b);
}

int fetch_do(fetch_client_t *c, const struct fetch_request *req, struct fetch_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!c || !req || !req->url || !*req->url) {
        snprintf(resp->error, sizeof resp->error, "invalid request: no URL");
        return -1;
    }
    CURL *e = c->easy;
    struct curl_slist *slist = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct fetch_sink sink = {
        .resp = resp,
        .max_body = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE,
    };
    long timeout = req->timeout_ms ? (long)req->timeout_ms : (long)DEFAULT_TIMEOUT_MS;
    long cto =
        timeout < (long)DEFAULT_CONNECT_TIMEOUT_MS ? timeout : (long)DEFAULT_CONNECT_TIMEOUT_MS;
    int rc = -1;

    curl_easy_reset(e);
    int hr = curl_opts_headers(req->headers, req->n_headers, &slist);
    if (hr != 0) {
        snprintf(resp->error, sizeof resp->error, "%s",
                 hr == -1 ? "invalid request header" : "out of memory");
        return -1;
    }
    struct slice method = slice_from(req->method);
    CURLcode cc = curl_opts_common(e, NULL, req->proxy_url, cto);
    if (cc == CURLE_OK) cc = curl_opts_method(e, method, req->body);
    if (cc == CURLE_BAD_FUNCTION_ARGUMENT) {
        snprintf(resp->error, sizeof resp->error, "invalid request method");
        goto out;
    }
    if (cc != CURLE_OK || curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, slist) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &sink) != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "invalid request (URL or option)");
        goto out;
    }

    cc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    resp->status = (int)status;
    if (cc != CURLE_OK) {
        if (sink.fail)
            set_error(resp, "%s%s", sink.fail, "");
        else
            /* curl's messages name hosts and ports, never header values or bodies. */
            set_error(resp, "%s%s", errbuf[0] ? errbuf : curl_easy_strerror(cc), "");
        goto out;
    }
    if (!buf_nul(&resp->body) || !buf_nul(&resp->headers_raw)) {
        snprintf(resp->error, sizeof resp->error, "out of memory");
        goto out;
    }
    rc = resp->status > 0 ? 0 : -1;
    if (rc != 0) snprintf(resp->error, sizeof resp->error, "no HTTP status received");
out:
    /* Nothing of this request (the borrowed body, the sink on our stack) may stay
     * reachable from the handle. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, (char *)NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(slist);
    if (rc != 0 && resp->error[0] == '\0') snprintf(resp->error, sizeof resp->error, "failed");
    return rc;
}

void fetch_response_free(struct fetch_response *resp)
{
    if (!resp) return;
    buf_free(&resp->body);
    buf_free(&resp->headers_raw);
}
