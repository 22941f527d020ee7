/* curl_opts.c — the safe curl option set shared by net/upstream and net/fetch.
 * Each option here overrides a curl 7.88 default that is wrong for a gateway; the
 * reasons are in DESIGN.md §10 and reference/design-review.md finding 7. */
#include "net/curl_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TCP_KEEPALIVE_IDLE_S  30L
#define TCP_KEEPALIVE_INTVL_S 10L
#define CONN_MAX_AGE_S        60L /* below nginx's 75 s keep-alive: never reuse a dropped conn */
#define DNS_CACHE_S           300L
#define MAX_HEADER_LINE       (16 * 1024)

#define SETOPT(e, opt, val)                                                                        \
    do {                                                                                           \
        CURLcode rc_ = curl_easy_setopt((e), (opt), (val));                                        \
        if (rc_ != CURLE_OK) return rc_;                                                           \
    } while (0)

CURLcode curl_opts_common(CURL *e, const char *ca_file, const char *proxy_url,
                          long connect_timeout_ms)
{
    const char *ca = (ca_file && *ca_file) ? ca_file : CURL_OPTS_DEFAULT_CA_FILE;

    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* CAINFO with CAPATH NULL keeps curl's per-handle CA store cache usable (7.87+):
     * Debian's default CApath would re-parse the bundle on every TLS connection. */
    SETOPT(e, CURLOPT_CAINFO, ca);
    SETOPT(e, CURLOPT_CAPATH, (char *)NULL);
    SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(e, CURLOPT_TCP_KEEPIDLE, TCP_KEEPALIVE_IDLE_S);
    SETOPT(e, CURLOPT_TCP_KEEPINTVL, TCP_KEEPALIVE_INTVL_S);
    SETOPT(e, CURLOPT_MAXAGE_CONN, CONN_MAX_AGE_S);
    SETOPT(e, CURLOPT_DNS_CACHE_TIMEOUT, DNS_CACHE_S);
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    /* Never the environment's proxy: "" disables it, and an explicit NOPROXY keeps curl
     * from reading no_proxy on every transfer. */
    if (proxy_url && *proxy_url) {
        SETOPT(e, CURLOPT_PROXY, proxy_url);
        SETOPT(e, CURLOPT_PROXY_CAINFO, ca);
        SETOPT(e, CURLOPT_PROXY_CAPATH, (char *)NULL);
        SETOPT(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    } else {
        SETOPT(e, CURLOPT_PROXY, "");
    }
    SETOPT(e, CURLOPT_NOPROXY, "");
    return CURLE_OK;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(struct slice s)
{
    if (s.n == 0) return false;
    for (size_t i = 0; i < s.n; i++)
        if (!is_tchar((unsigned char)s.p[i])) return false;
    return true;
}

CURLcode curl_opts_method(CURL *e, struct slice method, struct slice body)
{
    char m[32];

    if (method.n == 0) method = SLICE_LIT("GET");
    if (method.n >= sizeof m || !is_token(method)) return CURLE_BAD_FUNCTION_ARGUMENT;
    memcpy(m, method.p, method.n);
    m[method.n] = '\0';

    bool has_body = body.n > 0;
    if (strcmp(m, "HEAD") == 0 && !has_body) {
        SETOPT(e, CURLOPT_NOBODY, 1L);
        return CURLE_OK;
    }
    if (strcmp(m, "GET") == 0 && !has_body) {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
        return CURLE_OK;
    }
    if (strcmp(m, "POST") == 0 || has_body) {
        /* POSTFIELDS borrows the bytes (no copy); the size makes binary bodies safe. */
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.n);
        SETOPT(e, CURLOPT_POSTFIELDS, has_body ? body.p : "");
    }
    if (strcmp(m, "POST") != 0) SETOPT(e, CURLOPT_CUSTOMREQUEST, m);
    return CURLE_OK;
}

/* Headers the transport owns: framing, hop-by-hop, and encodings curl will not decode. */
static bool is_dropped(struct slice name)
{
    static const char *const dropped[] = {
        "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Expect", "TE",
        "Upgrade",        "Accept-Encoding",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (slice_ieq_str(name, dropped[i])) return true;
    return false;
}

static bool value_ok(struct slice v)
{
    for (size_t i = 0; i < v.n; i++)
        if (v.p[i] == '\r' || v.p[i] == '\n' || v.p[i] == '\0') return false;
    return true;
}

int curl_opts_headers(const struct http_header *hdrs, size_t n, struct curl_slist **out)
{
    struct curl_slist *list = NULL, *tmp;
    bool has_ctype = false, has_accept = false;
    char stack[512];

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        struct slice name = hdrs[i].name, value = slice_trim(hdrs[i].value);
        if (!is_token(name) || !value_ok(value) || name.n + value.n + 3 > MAX_HEADER_LINE) {
            curl_slist_free_all(list);
            return -1;
        }
        if (is_dropped(name)) continue;
        if (slice_ieq_str(name, "Content-Type")) has_ctype = true;
        if (slice_ieq_str(name, "Accept")) has_accept = true;

        size_t len = name.n + 2 + value.n + 1;
        char *line = len <= sizeof stack ? stack : malloc(len);
        if (!line) goto oom;
        /* "Name;" is curl's spelling of a header sent with an empty value ("Name:" would
         * remove it). */
        memcpy(line, name.p, name.n);
        if (value.n == 0) {
            line[name.n] = ';';
            line[name.n + 1] = '\0';
        } else {
            line[name.n] = ':';
            line[name.n + 1] = ' ';
            memcpy(line + name.n + 2, value.p, value.n);
            line[name.n + 2 + value.n] = '\0';
        }
        tmp = curl_slist_append(list, line);
        if (line != stack) free(line);
        if (!tmp) goto oom;
        list = tmp;
    }
    /* An empty Expect: stops curl from waiting up to 1 s for "100 Continue" on > 1 MiB. */
    if (!(tmp = curl_slist_append(list, "Expect:"))) goto oom;
    list = tmp;
    /* "Name:" removes a header curl would add on its own: the request carries only what
     * the caller gave (a form Content-Type on a JSON body would be wrong). */
    if (!has_ctype) {
        if (!(tmp = curl_slist_append(list, "Content-Type:"))) goto oom;
        list = tmp;
    }
    if (!has_accept) {
        if (!(tmp = curl_slist_append(list, "Accept:"))) goto oom;
        list = tmp;
    }
    *out = list;
    return 0;
oom:
    curl_slist_free_all(list);
    return -2;
}
