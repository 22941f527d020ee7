/* request_internal.h — private helpers shared by the request converters (request_*.c,
 * conv.c): reading client bodies with jansson, typed field getters that fail with a clear
 * 400, pool-backed growable arrays, data URLs and base64 images, reasoning effort tables,
 * tool-argument and tool-name rules, and writing compact JSON into the pool.
 *
 * Decoding: the client body is parsed once into a jansson DOM (JSON_REJECT_DUPLICATES)
 * whose json_decref is registered with the pool; every string the IR keeps is copied into
 * the pool first. Encoding: the upstream body is built as a jansson DOM (also released by
 * a pool cleanup) and dumped compactly into the pool. Nothing here is used outside
 * src/protocol/. */
#ifndef METARELAY_PROTOCOL_REQUEST_INTERNAL_H
#define METARELAY_PROTOCOL_REQUEST_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "base/pool.h"
#include "protocol/convert.h"
#include "protocol/ir.h"

/* ---- decoding ---- */

struct req_dec {
    pool_t *pool;
    struct conv_error *err;
};

/* Sets *err to a 400 invalid_request_error with the formatted message; returns -1. */
int req_fail(struct conv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets *err to an out-of-memory 500; returns -1. */
int req_oom(struct conv_error *err);

/* Parses a client body that must be one JSON object; its json_decref runs when the pool is
 * destroyed (the DOM is owned by the pool). NULL with *err set on failure. */
json_t *req_parse_body(pool_t *pool, struct slice body, struct conv_error *err);

/* Copies bytes into the pool (NUL-terminated); SLICE_NULL only when out of memory. */
struct slice req_copy(pool_t *pool, const char *p, size_t n);
/* A JSON string's value copied into the pool. */
struct slice req_jstr(pool_t *pool, const json_t *s);
/* Compact JSON text of v copied into the pool (SLICE_NULL when out of memory). */
struct slice req_jdump(pool_t *pool, const json_t *v);

/* Typed optional fields of an object. `path` names the object in error messages
 * ("messages[2]"; "" for the top level). Return 1 when present, 0 when absent or null,
 * -1 (error set) when present with the wrong type. */
int req_get_str(struct req_dec *d, const json_t *obj, const char *key, struct slice *out,
                const char *path);
int req_get_num(struct req_dec *d, const json_t *obj, const char *key, double *out,
                const char *path);
/* A non-negative integer (an integral real such as 256.0 is accepted). */
int req_get_count(struct req_dec *d, const json_t *obj, const char *key, long *out,
                  const char *path);
int req_get_bool(struct req_dec *d, const json_t *obj, const char *key, bool *out,
                 const char *path);
/* The member if it is an object / array, NULL when absent or null; -1 on a wrong type. */
int req_get_obj(struct req_dec *d, const json_t *obj, const char *key, json_t **out,
                const char *path);
int req_get_arr(struct req_dec *d, const json_t *obj, const char *key, json_t **out,
                const char *path);

/* "messages[3].content[1]" style paths, in the pool. */
const char *req_path(pool_t *pool, const char *base, const char *key, long index);

/* Makes room for one more element in a pool array (doubling; old storage stays in the
 * pool). Returns the (possibly moved) array or NULL when out of memory. */
void *req_grow(pool_t *pool, void *arr, size_t n, size_t *cap, size_t elem);

/* Appends a zeroed element and returns it (NULL when out of memory). */
struct ir_part *req_add_part(pool_t *pool, struct ir_part **parts, size_t *n, size_t *cap);
struct ir_message *req_add_msg(pool_t *pool, struct ir_request *r, size_t *cap);

/* Every "unset" value of §1.2 (counts -1, NAN sampling, …). */
void req_init(struct ir_request *r);

/* Images (§2.6). A `data:` URL → BASE64 media (type normalised: image/jpg → image/jpeg,
 * parameters stripped); an http(s) URL → URL media. Checks the media type (jpeg, png, gif,
 * webp for images), the base64 alphabet and CONV_IMAGE_MAX_BYTES. -1 with a 400 otherwise. */
int req_image_url(struct req_dec *d, struct slice url, struct ir_part *p, const char *path);
/* Checks an already split base64 image (Claude `source`). */
int req_image_base64(struct req_dec *d, struct slice media_type, struct slice data,
                     struct ir_part *p, const char *path);
/* A file given as a data URL (any media type; PDFs and text files). */
int req_file_data_url(struct req_dec *d, struct slice url, struct ir_part *p, const char *path);

/* Reasoning signatures (§2.7): splits a gw1: carrier, else records the raw value as
 * minted by `native`. */
void req_sig_parse(pool_t *pool, struct ir_part *p, struct slice sig, enum ir_vendor native);

/* Checks a tool's parameter schema: a JSON object, and if it has a "type" it is "object".
 * Returns the schema text without a top-level "$schema" (SLICE_NULL = no schema). */
int req_tool_schema(struct req_dec *d, const json_t *schema, struct slice *out, const char *path);

/* Reasoning effort names and the budget tables of §3.8. */
enum ir_effort req_effort_parse(struct slice s); /* IR_EFFORT_UNSET when unknown */
const char *req_effort_name(enum ir_effort e);
long req_effort_budget(enum ir_effort e);
enum ir_effort req_budget_effort(long budget);
/* Whether the request asks for reasoning at all. */
bool req_reasoning_on(const struct ir_request *r);
/* The effort to send to an OpenAI upstream (A or C): from the effort or the budget;
 * xhigh/max become high; IR_EFFORT_UNSET when reasoning is not requested. */
enum ir_effort req_openai_effort(const struct ir_request *r);

/* Joins the texts of the TEXT parts with `sep` into the pool. */
struct slice req_join_text(pool_t *pool, const struct ir_part *parts, size_t n, const char *sep);
/* Whether the text is empty or only whitespace. */
bool req_blank(struct slice s);

/* ---- encoding ---- */

struct req_enc {
    struct conv *cv;
    pool_t *pool;
    const struct ir_request *req;
    const struct ir_profile *prof;
    struct conv_error *err;
};

/* A new JSON object whose json_decref runs when the pool dies (so every error path is
 * leak-free). NULL when out of memory. */
json_t *req_root(pool_t *pool);
/* Compact JSON text of root into the pool. -1 (500) when out of memory. */
int req_finish(struct req_enc *e, json_t *root, struct slice *out);

/* json_stringn of a slice (NULL for invalid UTF-8, which the IR never holds). */
json_t *req_js(struct slice s);
/* Parses raw JSON text kept in the IR (a new reference, NULL when empty or invalid). */
json_t *req_jparse(struct slice raw);
/* Sets key to a value, ignoring NULL values (allocation failures surface at dump time as a
 * missing member, never a crash). */
void req_set(json_t *obj, const char *key, json_t *v);

/* Tool-call arguments string → object for B (§2.4): object, double-encoded object, blank →
 * {}; anything else → {}. New reference. */
json_t *req_args_object(struct slice args);
/* A custom tool call's free text as function arguments {"input": text} (text form). */
struct slice req_custom_args(pool_t *pool, struct slice text);

/* The upstream name of a tool for A and C upstreams (§2.3): names longer than
 * profile.tool_name_max become first (max-9) chars + "_" + 8 hex of SHA-256; the pair is
 * recorded in cv->tool_names. Other names are returned unchanged. */
struct slice req_tool_name(struct req_enc *e, struct slice name);

/* Whether the upstream is allowed to get sampling parameters for Claude (§3.5, Addendum 2:
 * API versions newer than 2023-06-01 dropped them). */
bool req_claude_sampling_allowed(const struct ir_profile *p);

/* Per-format halves. Decoders fill *r (req_init already applied) from the parsed root. */
int req_decode_chat(struct req_dec *d, json_t *root, struct ir_request *r);
int req_decode_messages(struct req_dec *d, json_t *root, struct ir_request *r);
int req_decode_responses(struct req_dec *d, json_t *root, struct ir_request *r);
int req_decode_completions(struct req_dec *d, json_t *root, struct ir_request *r);
/* Encoders write the upstream body into *out (pool). */
int req_encode_chat(struct req_enc *e, struct slice *out);
int req_encode_messages(struct req_enc *e, struct slice *out);
int req_encode_responses(struct req_enc *e, struct slice *out);

/* The OpenAI (Chat and Responses) string forms of `tool_choice`: "auto", "none",
 * "required" set r->tool_choice.mode and return 0; -1 after req_fail for another string or a
 * value that is neither a string nor an object; 1 for an object (the caller reads it). */
int req_tool_choice_openai_string(struct req_dec *d, json_t *tc, struct ir_request *r);

#endif
