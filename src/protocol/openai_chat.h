/* openai_chat.h — what the gateway reads from OpenAI-format responses it passes through.
 *
 * Pass-through never builds a DOM of a whole response: a single pass finds the top-level
 * members it needs (`usage`, `model`, `choices`, `error`), skipping everything else
 * (an embeddings response can be megabytes of floats), and only the small `usage` object
 * and the `model` string are decoded with jansson (JSON_REJECT_DUPLICATES). The pass checks
 * the top-level structure (one object, strings closed, brackets matched, depth ≤ 128, a
 * top-level key at most once, nothing after the object) but is not a full validator of
 * the members it skips.
 *
 * Any input — malformed JSON, wrong types, negative or fractional counts — gives
 * "unknown" (-1) values, never a crash. */
#ifndef METARELAY_PROTOCOL_OPENAI_CHAT_H
#define METARELAY_PROTOCOL_OPENAI_CHAT_H

#include <stdbool.h>

#include "base/pool.h"
#include "base/slice.h"

/* Token counts of an OpenAI `usage` object; -1 means unknown (absent, null, not a
 * non-negative integer). */
struct openai_usage {
    long long prompt_tokens;
    long long completion_tokens; /* absent in embeddings responses */
    long long total_tokens;
    long long cached_tokens;    /* prompt_tokens_details.cached_tokens */
    long long reasoning_tokens; /* completion_tokens_details.reasoning_tokens */
};

/* Sets every count to -1. */
void openai_usage_init(struct openai_usage *u);

/* Reads the top-level `usage` and `model` of a non-stream chat/completions/embeddings
 * response body. usage is always initialised (counts -1 when unknown); *model is the
 * decoded model name copied into pool (NUL-terminated, owned by the pool), or SLICE_NULL
 * when absent or not a string. Returns 0 when the body is a JSON object, -1 when it is
 * not (malformed, not an object, a duplicated top-level `usage`/`model`) or when pool
 * allocation failed; the outputs then hold what is known (nothing for malformed input). */
int openai_chat_response_info(struct slice body, pool_t *pool, struct openai_usage *usage,
                              struct slice *model);

/* What one `data:` payload of an OpenAI Chat (or Completions) stream is. */
struct openai_chunk_info {
    bool done;       /* the `[DONE]` sentinel */
    bool has_usage;  /* a non-null top-level `usage` (its counts are in usage) */
    bool usage_only; /* `choices` is an empty array and `usage` is non-null: the chunk
                      * include_usage adds at the end, stripped when metarelay injected
                      * stream_options.include_usage and the client did not ask */
    bool has_error;  /* a top-level `error` member: an in-stream error from the upstream */
    struct openai_usage usage;
};

/* Inspects one SSE data payload (the parser's joined data, without `data:`). Returns 0
 * when it is `[DONE]` (surrounding spaces allowed) or a JSON object, -1 otherwise (the
 * info then says nothing: all false, counts -1). */
int openai_chat_chunk_info(struct slice data, struct openai_chunk_info *info);

#endif
