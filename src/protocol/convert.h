/* convert.h — the one entry point the gateway uses to convert between API formats.
 *
 * Per request: the client body is decoded once into the IR (conv_request_decode). Per
 * attempt on a channel that speaks another format: conv_new, conv_encode_request for the
 * upstream body, then either conv_convert_response (non-stream) or conv_stream_event …
 * conv_stream_end (stream), and conv_error_body for an upstream error answer. When client
 * and upstream speak the same format the gateway passes bytes through and never calls
 * this module.
 *
 * All memory comes from the request pool; nothing here blocks or touches the network.
 * Implementation files: request_*.c (decoders/encoders of requests, Claude repair),
 * response_*.c (non-stream responses and errors), stream_*.c (SSE parsers and emitters). */
#ifndef METARELAY_PROTOCOL_CONVERT_H
#define METARELAY_PROTOCOL_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/pool.h"
#include "base/slice.h"
#include "protocol/ir.h"

/* A client-facing failure of a conversion: the status and message to answer with (in the
 * client's API shape, which the gateway writes with protocol/errors.h). */
struct conv_error {
    int status;    /* 400 for invalid client input, 502 for an unusable upstream answer */
    char type[40]; /* "invalid_request_error", "api_error", … */
    char message[300];
};

/* Decodes a client request of format `client` into `out` (pool memory; strings may point
 * into `body`, which must outlive the request). Returns 0, or -1 with *err set (400). */
int conv_request_decode(enum api_format client, pool_t *pool, struct slice body,
                        struct ir_request *out, struct conv_error *err);

/* Original ↔ upstream tool name, when a name had to be shortened or sanitised (§2.3). */
struct conv_tool_name {
    struct slice original;
    struct slice upstream;
};

struct conv_stream_state; /* private to stream_*.c */

/* One conversion context per attempt (pool-allocated). Fields are shared by the request,
 * response and stream halves; treat them as read-only outside protocol/. */
struct conv {
    pool_t *pool;
    enum api_format client;
    enum api_format upstream;
    const struct ir_profile *profile;
    const struct ir_request *req;      /* decoded client request */
    struct slice client_model;         /* the model name the client asked for (echoed back) */
    long created;                      /* unix seconds, for ids and `created` fields */
    struct conv_tool_name *tool_names; /* filled by conv_encode_request */
    size_t n_tool_names;
    struct ir_usage usage;       /* latest usage snapshot seen (stream or response) */
    struct slice upstream_model; /* model the upstream reported (non-stream response; for
                                  * the x-gateway-upstream-model header and the logs) */
    struct conv_stream_state *stream;
    size_t stream_max_bytes; /* budget of a stream conversion's accumulators (text and
                                arguments kept for Responses `*.done` events, …);
                                0 = 64 MiB. Exceeding it ends the client stream with
                                an error event. */
    /* Set by conv_encode_request for a B upstream when structured output is emulated with
     * the tool trick (§3.7): the upstream request carries the synthetic tool
     * CONV_JSON_TOOL_NAME; the response/stream half turns its tool_use into text (the
     * compact JSON of its input) and finish END_TURN. json_tool_forced: tool_choice forces
     * it (no client tools, thinking off). */
    bool json_tool_trick;
    bool json_tool_forced;
    /* The reasoning actually requested upstream after the profile rules (§3.8, §3.2.3.6
     * may disable thinking), for the response half. */
    bool thinking_sent;
};

/* Name of the synthetic tool of the JSON-mode tool trick (§3.7). */
#define CONV_JSON_TOOL_NAME "json_tool_call"
/* A Responses `custom` (free-form) tool is sent to A and B upstreams as a function tool
 * whose only parameter is this string property; the response half unwraps
 * {"input":"…"} back into a custom_tool_call's `input`. */
#define CONV_CUSTOM_TOOL_ARG "input"
/* Largest decoded size of an inline (base64 / data URL) image a client may send when its
 * request is converted; above it the request fails with 400 before any upstream is called.
 * Claude's own limit is 5 MB of base64 text (≈ 3.75 MB of bytes); 3 MB (decimal) of bytes
 * stays under every upstream's limit: a larger image (a 3 MiB photo, say) is refused. */
#define CONV_IMAGE_MAX_BYTES 3000000u

/* A context for converting one attempt (pool-owned; never NULL unless out of memory). */
struct conv *conv_new(pool_t *pool, enum api_format client, enum api_format upstream,
                      const struct ir_profile *profile, const struct ir_request *req,
                      struct slice client_model);

/* Encodes the upstream request body (pool memory) for cv->upstream, with `stream` as the
 * client asked (and the usage chunk requested for A upstreams). Returns 0 or -1 with *err
 * (400 when the request cannot be expressed upstream). */
int conv_encode_request(struct conv *cv, struct slice *out_body, struct conv_error *err);

/* Converts a non-stream 2xx upstream body into the client's format, appended to `out`.
 * Fills cv->usage. Returns 0, or -1 with *err (502: the upstream body is unusable). */
int conv_convert_response(struct conv *cv, struct slice upstream_body, struct buf *out,
                          struct conv_error *err);

/* Converts an upstream error answer (status + body in the upstream's shape) into the
 * client's error shape, appended to `out`, keeping the upstream's message text verbatim
 * (clients such as Claude Code recognise some errors only by their text). Returns the
 * HTTP status to send. */
int conv_error_body(struct conv *cv, int status, struct slice upstream_body, struct buf *out);

/* Streaming: feeds one complete upstream SSE event (its `event:` name, possibly empty,
 * and joined data); appends whatever client SSE bytes it produces to `out` (possibly
 * none, e.g. for a ping). Returns 0, or -1 when the upstream stream is unusable (the
 * caller then ends the client stream with conv_stream_error). */
int conv_stream_event(struct conv *cv, struct slice event, struct slice data, struct buf *out);
/* The upstream stream ended (clean EOF). Appends the closing events the client format
 * needs (or an error event when the upstream produced nothing). Returns 0 or -1. */
int conv_stream_end(struct conv *cv, struct buf *out);
/* Appends an in-stream error event in the client's format (the stream ends after it).
 * `type` (may be NULL) is used verbatim as the client's error type (the `code` for
 * Responses clients); NULL maps `status` through the table of protocol/errors.h. Nothing
 * is written when the client stream already ended (terminal or error event sent). */
void conv_stream_error(struct conv *cv, int status, const char *type, struct slice message,
                       struct buf *out);

/* Where the client stream stands after the calls so far: CONV_STREAM_OPEN, _COMPLETED (the
 * terminal events were written: the gateway can stop reading the upstream) or _FAILED (an
 * error event was written or is due; *err, when not NULL, gets the status, type and message,
 * so that a gateway which has not sent any byte yet can answer an HTTP error instead, §6.3).
 * `bytes_written` (may be NULL) tells whether client bytes other than the final error event
 * were produced so far: when false on a failed stream, the gateway may drop the error frame
 * and answer with an HTTP error in the client's shape (if it sent no byte itself). */
enum conv_stream_status { CONV_STREAM_OPEN, CONV_STREAM_COMPLETED, CONV_STREAM_FAILED };
enum conv_stream_status conv_stream_status(const struct conv *cv, struct conv_error *err,
                                           bool *bytes_written);
/* For the response and stream halves: the tool a call from the upstream refers to. Maps a
 * name shortened by conv_encode_request back to the client's (*original; the name itself
 * when it was not shortened) and returns the client's tool definition (its `custom` and
 * `ns` flags), or NULL when the request declared no such tool. */
const struct ir_tool *conv_tool_lookup(const struct conv *cv, struct slice upstream_name,
                                       struct slice *original);

/* Rewrites a complete tool call from the upstream into the client's terms: the original
 * name (§2.3); and, when a Responses client's `custom` tool was sent to an A or B upstream
 * as a function tool, the arguments {"input":"…"} unwrapped into the free text with
 * call.custom set. A stream converter buffers such a call's argument fragments and calls
 * this at the end of the block. New strings live in cv->pool. Returns the tool definition
 * (as conv_tool_lookup). */
const struct ir_tool *conv_tool_call_fixup(struct conv *cv, struct ir_part *call);

/* Local estimate of the input tokens of a request, for /v1/messages/count_tokens when no
 * Messages-speaking channel can answer (documented as an estimate). */
long conv_count_tokens_estimate(const struct ir_request *req);

#endif
