/* usage_queue.h — the only part of the store the data plane may use.
 *
 * io threads push one fixed-size record per upstream attempt; the store-writer thread
 * drains the bounded queue and group-commits (every ≤ 20 ms or 512 rows). A full queue
 * drops the record and counts it: an io thread never blocks here. A crash may lose the
 * last ≤ 20 ms of usage rows (documented). */
#ifndef METARELAY_STORE_USAGE_QUEUE_H
#define METARELAY_STORE_USAGE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct usage_record {
    int64_t created_at_ms; /* wall clock when the attempt started */
    char request_id[40];
    char downstream_path[64]; /* "/v1/chat/completions" */
    char model_requested[128];
    char model_actual[128]; /* model sent upstream */
    int64_t account_id;     /* 0 when no channel was tried */
    int64_t site_id;
    int64_t downstream_key_id; /* 0 = global PROXY_TOKEN */
    bool success;              /* the attempt delivered a complete response */
    int http_status;           /* upstream status; 0 when none */
    bool stream;
    int attempt;           /* 0-based attempt index within the request */
    int64_t first_byte_ms; /* -1 when no byte arrived */
    int64_t total_ms;
    int64_t prompt_tokens; /* -1 when unknown */
    int64_t completion_tokens;
    int64_t total_tokens;
    int64_t overhead_us; /* time inside metarelay until the response headers */
    char client_ip[46];
    char error[256];          /* empty on success */
    int64_t route_id;         /* user route that served it; 0 = automatic or none */
    int64_t route_channel_id; /* its route channel; 0 = automatic or none */
    char failure_kind[16];    /* health_failure_name of a failed attempt; "" = none */
    bool has_cost;            /* estimated_cost is known */
    double estimated_cost;    /* money of this attempt (prices × tokens, or per call) */
};

/* Copies the record into the queue; false (and counted) when the queue is full or the
 * store is not open. Safe from any thread. */
bool usage_queue_push(const struct usage_record *r);
/* Records dropped so far. */
uint64_t usage_queue_dropped(void);

#endif
