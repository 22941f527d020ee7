/* classify.h — what the outcome of one upstream attempt means, in one place: fail over to
 * another channel (and which health scope pays for it, for how long), or hand the
 * upstream's answer to the client at once because the request itself is at fault.
 *
 * Rules (docs/routing.md "Failure classification"):
 *   - transport errors (connect, reset, protocol) and timeouts (first byte, idle) → fail
 *     over; connect errors count against the site, the others against the channel;
 *   - 5xx, 404, 408, 409, 425, 429 → fail over (channel); Retry-After (seconds or an HTTP
 *     date) stretches the channel's cooldown;
 *   - quota and billing errors (402; insufficient_user_quota, insufficient_quota,
 *     INSUFFICIENT_BALANCE, pre_consume_token_quota_failed, "credit balance is too low",
 *     the platforms' Chinese quota messages; whatever the status) → fail over, the
 *     credential cools down, never the site or the other credentials;
 *   - 401 and 403 (a key refused) → fail over, the credential cools down;
 *   - 400, 413, 422 and the other 4xx → the client's fault (context too long, invalid
 *     tool schema, content filter, Claude's "Unexpected role \"system\"" probe…): the
 *     upstream's answer goes back at once, its text kept, never counted against the
 *     channel — unless its text says the channel cannot serve the model (model not
 *     found / no available channel), which fails over;
 *   - a 2xx non-stream body that contains one of PROXY_ERROR_KEYWORDS, or
 *     (PROXY_EMPTY_CONTENT_FAIL=1) that carries no text and no tool call → fail over
 *     (channel, like a server error). */
#ifndef METARELAY_GATEWAY_CLASSIFY_H
#define METARELAY_GATEWAY_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "net/upstream.h"
#include "protocol/ir.h"
#include "routing/health.h"

enum gw_action {
    GW_FAILOVER = 0,     /* count it (kind) and try the next channel */
    GW_CLIENT_ERROR = 1, /* return the upstream's answer to the client; not counted */
};

struct gw_verdict {
    enum gw_action action;
    enum health_failure kind; /* scope and cooldown of the failure (HEALTH_FAIL_*) */
    unsigned retry_after_ms;  /* provider's hint (header or body); 0 = none */
    const char *label;        /* short static reason: "quota", "rate limit", … */
};

/* An HTTP answer that is not a usable 2xx. `body` is the (possibly truncated) error body,
 * `retry_after` the Retry-After header value (may be empty). */
void gw_classify_status(int status, struct slice body, struct slice retry_after,
                        int64_t now_wall_ms, struct gw_verdict *v);

/* A transport error before the answer completed (never UPSTREAM_OK). */
void gw_classify_transport(enum upstream_error err, struct gw_verdict *v);

/* Whether an error text says quota/billing is exhausted (case-insensitive, any status). */
bool gw_text_is_quota(struct slice text);

/* PROXY_ERROR_KEYWORDS: the first keyword of the comma-separated list `csv` found in
 * `text` (case-insensitive), copied into `which` (≤ cap bytes). false when none matches or
 * the list is empty/NULL. Blank entries are ignored. */
bool gw_keyword_match(const char *csv, struct slice text, char *which, size_t cap);

/* PROXY_EMPTY_CONTENT_FAIL: whether a complete non-stream answer in format `fmt` carries
 * any output — a non-empty text, a tool/function call, a refusal, or reasoning. A body
 * that cannot be parsed counts as having content (the converter judges it). */
bool gw_body_has_content(enum api_format fmt, struct slice body);

#endif
