/* curl_opts.h — the curl easy-handle options shared by net/upstream and net/fetch
 * (internal to the net layer: no other layer includes curl).
 *
 * Both clients must configure curl the same safe way (DESIGN.md §10): no signals,
 * HTTP/1.1, protocols http/https only, no redirects, no proxy from the environment,
 * the CA cache kept on (CAINFO set, CAPATH NULL), TCP keep-alive, and the request's
 * method, body and headers checked before they reach the wire. */
#ifndef METARELAY_NET_CURL_OPTS_H
#define METARELAY_NET_CURL_OPTS_H

#include <curl/curl.h>
#include <stdbool.h>

#include "base/slice.h"
#include "net/http_server.h" /* struct http_header */

#define CURL_OPTS_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* Sets the transport options both clients share. `proxy_url` NULL or "" means no proxy
 * at all (the environment's *_proxy variables are never consulted). CURLE_OK or the
 * first failing option's code. */
CURLcode curl_opts_common(CURL *e, const char *ca_file, const char *proxy_url,
                          long connect_timeout_ms);

/* Sets the method and the borrowed body (CURLOPT_POSTFIELDS: curl reads `body` in place,
 * so it must outlive the transfer). An empty method means GET. Returns CURLE_OK,
 * CURLE_BAD_FUNCTION_ARGUMENT for a method that is not an HTTP token, or curl's code. */
CURLcode curl_opts_method(CURL *e, struct slice method, struct slice body);

/* Builds the request header list: `hdrs` as given, plus an empty `Expect:` (no wait
 * for "100 Continue") and, when the caller sent none, empty `Content-Type:` and
 * `Accept:` (so curl adds neither a form content type nor its default Accept).
 * Framing and hop-by-hop headers (Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, Expect, TE, Upgrade) and Accept-Encoding (nothing here decodes) are
 * dropped: the transport owns them.
 * On success *out is a list the caller frees with curl_slist_free_all and 0 is
 * returned; -1 when a header is invalid (empty or non-token name; CR, LF or NUL in the
 * value), -2 when out of memory. */
int curl_opts_headers(const struct http_header *hdrs, size_t n, struct curl_slist **out);

#endif
