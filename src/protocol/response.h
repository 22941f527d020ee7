/* response.h — the non-stream response half of format conversion, inside protocol/.
 *
 * The gateway uses convert.h (conv_convert_response, conv_error_body); this header is
 * for the other protocol/ files: the per-format readers and writers of non-stream
 * responses (format-conversion.md §4), so that a stream served from a non-stream
 * upstream (or the reverse, §5.4) can reuse them, and the small JSON helpers they share.
 *
 *   resp_decode_F: upstream response JSON (a jansson DOM) → struct ir_response
 *                  (F = chat, messages, responses: the three upstream formats);
 *   resp_encode_F: struct ir_response → client JSON appended to a struct buf
 *                  (F = chat, messages, responses, completions).
 *
 * IR slices produced by the decoders point into the DOM (which resp_decode keeps alive
 * until the pool is destroyed) or into the pool. Tool names are restored to the client's
 * original names (cv->tool_names) while decoding; signatures stay raw in the IR and are
 * wrapped (gw1:…, §2.7) by the encoder of a client of another vendor. */
#ifndef METARELAY_PROTOCOL_RESPONSE_H
#define METARELAY_PROTOCOL_RESPONSE_H

#include <stdbool.h>

#include <jansson.h>

#include "protocol/convert.h"
#include "protocol/ir.h"

/* Parses `body` (JSON_REJECT_DUPLICATES) and decodes it as a non-stream response of
 * format `f` (A, B or C) into *out. The DOM is released when cv->pool is destroyed.
 * Returns 0, or -1 with *err (502, message saying what is wrong with the upstream body:
 * not JSON, HTML, a missing or mistyped field, an error object in a 2xx answer).
 * Finish reasons are not post-processed here (see resp_finalize). */
int resp_decode(struct conv *cv, enum api_format f, struct slice body, struct ir_response *out,
                struct conv_error *err);

int resp_decode_chat(struct conv *cv, json_t *root, struct ir_response *out,
                     struct conv_error *err);
int resp_decode_messages(struct conv *cv, json_t *root, struct ir_response *out,
                         struct conv_error *err);
int resp_decode_responses(struct conv *cv, json_t *root, struct ir_response *out,
                          struct conv_error *err);

/* The response-side rules applied between decoding and encoding: tool calls are put in
 * the client's terms (conv_tool_call_fixup: original names, custom tools unwrapped), the
 * JSON-mode tool trick is unwrapped (§3.7, when resp_json_tool_trick(cv)), and TOOL_USE
 * without any tool call becomes END_TURN (§4.1, E25). Decoders leave tool names as the
 * upstream sent them. */
void resp_finalize(struct conv *cv, struct ir_response *r);

/* True when the request was sent to a Claude upstream with the JSON-mode tool trick
 * (§3.7: cv->json_tool_trick, set by conv_encode_request), i.e. a `json_tool_call` tool
 * call is the answer's JSON text. */
bool resp_json_tool_trick(const struct conv *cv);
#define RESP_JSON_TOOL_NAME "json_tool_call"
/* The answer text of a json_tool_call with arguments `args`: the arguments, or
 * input.values when that is their only key (models sometimes wrap the object that way).
 * Pool memory (or `args` itself). */
struct slice resp_json_tool_text(pool_t *pool, struct slice args);

/* Each appends the client body to `out`. Return 0, or -1 when out of memory (out may
 * then hold a partial body: the caller truncates it). */
int resp_encode_chat(struct conv *cv, const struct ir_response *r, struct buf *out);
int resp_encode_messages(struct conv *cv, const struct ir_response *r, struct buf *out);
int resp_encode_responses(struct conv *cv, const struct ir_response *r, struct buf *out);
int resp_encode_completions(struct conv *cv, const struct ir_response *r, struct buf *out);

/* The A/L `usage` object of IR usage (§4.2; unknown counts written as 0). A new
 * reference, NULL when out of memory. */
json_t *resp_chat_usage_json(const struct ir_usage *u);
/* The Claude `usage` object (§4.2: input_tokens without cache reads and writes; every
 * nullable member written as null). A new reference, NULL when out of memory. */
json_t *resp_claude_usage_json(const struct ir_usage *u);
/* The Responses `usage` object (§4.2 and Addendum 1: all five keys, both
 * input_tokens_details fields). A new reference, NULL when out of memory. */
json_t *resp_responses_usage_json(const struct ir_usage *u);

/* ---- shared helpers (response_util.c) ---- */

/* json_object_set_new / json_array_append_new that report failure as false (a NULL value
 * from a failed allocation or json_pack included), so writers never emit a body with a
 * silently missing member. Both consume v in every case. */
static inline bool resp_set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0;
}
static inline bool resp_push(json_t *a, json_t *v)
{
    return json_array_append_new(a, v) == 0;
}

/* Sets *err: status, the client-shape error type for that status, and the message. */
void resp_fail(const struct conv *cv, struct conv_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends v as compact JSON: keys in insertion order, strings escaped with invalid UTF-8
 * replaced, reals in their shortest round-trip form (59.91 stays 59.91). False when out
 * of memory. */
bool resp_json_write(struct buf *out, const json_t *v);
/* Compact JSON text of v in the pool (NUL-terminated); SLICE_NULL when out of memory. */
struct slice resp_json_text(pool_t *pool, const json_t *v);

/* The string member `key` of obj as a slice into the DOM; SLICE_NULL when absent or not
 * a string. */
struct slice resp_jstr(const json_t *obj, const char *key);
/* A token count: a non-negative integer (or integral real) member, else -1. */
long resp_jcount(const json_t *obj, const char *key);
/* A jansson string of s (invalid UTF-8 is replaced only when written out). */
json_t *resp_jstring(struct slice s);

/* `id` with `prefix` in front unless it already starts with it (§2.2); an empty id gets a
 * random one ("<prefix>metarelay<24 base62>"). Pool memory. */
struct slice resp_prefixed_id(pool_t *pool, const char *prefix, struct slice id);
/* "call_<24 random base62>" for a tool call the upstream sent without an id. */
struct slice resp_random_call_id(pool_t *pool);
/* The model to answer with: the client's requested name, else the upstream's. */
struct slice resp_client_model(const struct conv *cv, const struct ir_response *r);
/* `created` for A/L and `created_at` for C: the upstream's, else the gateway clock. */
long resp_created(const struct conv *cv, const struct ir_response *r);

/* A growable array of IR parts in the pool. */
struct resp_parts {
    pool_t *pool;
    struct ir_part *v;
    size_t n, cap;
};
/* A zeroed part appended to the array; NULL when out of memory. */
struct ir_part *resp_parts_push(struct resp_parts *a, enum ir_part_kind kind);

/* Wrapped reasoning tokens for a client of another vendor (§2.7), pool memory:
 * gw1:anthropic:<sig>, gw1:anthropic-redacted:<data>, gw1:openai:<rs_id>:<enc>. */
struct slice resp_wrap_signature(pool_t *pool, const struct ir_part *thinking);

#endif
