/* errors.h — error bodies and in-stream error events in the client's API shape.
 *
 * Every /v1 surface answers errors in its own API's format (DESIGN §8,
 * reference/format-conversion.md §6):
 *   OpenAI (Chat, Responses, Completions, Embeddings):
 *     {"error":{"message":…,"type":…,"param":…|null,"code":…|null}}
 *   Claude Messages:
 *     {"type":"error","error":{"type":…,"message":…},"request_id":…|null}
 * and, once a stream has started, as an in-stream event:
 *   OpenAI Chat:  data: {"error":{…}}\n\n          (then close, no [DONE])
 *   Claude:       event: error\ndata: {"type":"error","error":{…}}\n\n
 *
 * errors_map_status gives, for an HTTP status, the status and type/code each API expects
 * (the table of format-conversion.md §6.2). The writers append correctly escaped JSON to a
 * struct buf: any message bytes are accepted (an upstream's HTML page cut in the middle of
 * a character included); invalid UTF-8 becomes U+FFFD so the output is always valid JSON. */
#ifndef METARELAY_PROTOCOL_ERRORS_H
#define METARELAY_PROTOCOL_ERRORS_H

#include <stdbool.h>

#include "base/slice.h"

/* The API shape a client speaks, for choosing the error format. */
enum errors_shape {
    ERRORS_SHAPE_OPENAI, /* OpenAI Chat, Responses, Completions, Embeddings */
    ERRORS_SHAPE_CLAUDE, /* Claude Messages */
};

/* What to send for one HTTP status. Strings are static; openai_code NULL means JSON null. */
struct errors_mapping {
    int openai_status; /* e.g. 529 becomes 503 for OpenAI clients, 402 becomes 429 */
    const char *openai_type;
    const char *openai_code;
    int claude_status; /* e.g. 503 becomes 529 (overloaded_error), 408 becomes 504 */
    const char *claude_type;
};

/* Maps a status (gateway-generated or an upstream's) to both APIs' status and type:
 * 400 invalid_request_error, 401 authentication_error (OpenAI: invalid_request_error /
 * invalid_api_key), 402 billing_error (OpenAI: 429 insufficient_quota), 403
 * permission_error, 404 not_found_error (OpenAI: model_not_found), 408 and 504
 * timeout_error (504), 413 request_too_large, 429 rate_limit_error, 500 api_error
 * (OpenAI: server_error), 502 api_error (OpenAI: bad_gateway), 503 and 529
 * overloaded_error (Claude 529, OpenAI 503 service_unavailable_error). Another 4xx maps to
 * invalid_request_error with the same status, another 5xx to api_error / server_error;
 * anything outside 400–599 is treated as 500. */
struct errors_mapping errors_map_status(int status);

/* Appends {"error":{"message":…,"type":…,"param":…,"code":…}}. type must not be NULL;
 * param and code NULL are written as null. Returns false, leaving out unchanged, when out
 * of memory. */
bool errors_write_openai(struct buf *out, struct slice message, const char *type, const char *code,
                         const char *param);

/* Appends {"type":"error","error":{"type":…,"message":…},"request_id":…}; an empty
 * request_id is written as null. Returns false, leaving out unchanged, when out of memory. */
bool errors_write_claude(struct buf *out, const char *type, struct slice message,
                         struct slice request_id);

/* Appends the error body for `status` in `shape` using errors_map_status, and returns the
 * HTTP status to send with it (e.g. 529 → 503 for OpenAI), or -1 when out of memory (out
 * unchanged). */
int errors_write_for_status(struct buf *out, enum errors_shape shape, int status,
                            struct slice message);

/* Appends an OpenAI Chat in-stream error frame: `data: {"error":{…}}\n\n`. The stream
 * must end after it, without [DONE]. Returns false, out unchanged, when out of memory. */
bool errors_write_openai_event(struct buf *out, struct slice message, const char *type,
                               const char *code);

/* Appends a Claude in-stream error frame:
 * `event: error\ndata: {"type":"error","error":{"type":…,"message":…}}\n\n`. The stream
 * must end after it, without message_stop. Returns false, out unchanged, when out of
 * memory. */
bool errors_write_claude_event(struct buf *out, const char *type, struct slice message);

/* Appends the in-stream error frame for `status` in `shape` (mapped types). */
bool errors_write_event_for_status(struct buf *out, enum errors_shape shape, int status,
                                   struct slice message);

/* Appends s as a JSON string literal (quotes included): `"` `\` and control bytes are
 * escaped, invalid UTF-8 sequences become U+FFFD. Returns false, out unchanged, when out
 * of memory. */
bool errors_append_json_string(struct buf *out, struct slice s);

#endif
