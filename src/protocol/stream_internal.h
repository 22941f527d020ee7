/* stream_internal.h — shared state of the stream converters (stream_*.c), private to
 * protocol/.
 *
 * A stream conversion is one parser (upstream SSE event → IR events, format-conversion.md
 * §5.2) feeding one emitter (IR events → client SSE bytes, §5.3) through stream_dispatch,
 * which also keeps cv->usage current, maps tool names back to the client's, guarantees
 * that START comes first and that nothing follows the terminal or error event.
 *
 * Parser contract: block keys are dense, 0, 1, 2, … in BLOCK_START order, each started
 * at most once; every key that is started is stopped at most once. Emitters rely on it
 * and index their block arrays by key.
 *
 * Memory: the state lives in the pool (allocated once); everything that grows with the
 * length of the stream (text and argument accumulators, block arrays, the Responses output
 * list) is malloc'ed, charged to one byte budget (cv->stream_max_bytes, 64 MiB by default),
 * freed as soon as it is no longer needed and at pool destruction at the latest. Nothing
 * is allocated from the pool per event. */
#ifndef METARELAY_PROTOCOL_STREAM_INTERNAL_H
#define METARELAY_PROTOCOL_STREAM_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "protocol/convert.h"

#define STREAM_DEFAULT_MAX_BYTES (64u * 1024u * 1024u)

/* ---- budgeted growable buffers ---------------------------------------------------- */

struct stream_budget {
    size_t used, max;
    bool exceeded;
};

/* Appends to b, charging the growth of its capacity to the budget. False (b unchanged)
 * when the budget would be exceeded (budget->exceeded is then set) or out of memory. */
bool stream_acc_append(struct stream_budget *bg, struct buf *b, struct slice s);
/* Frees b and gives its capacity back to the budget. */
void stream_acc_free(struct stream_budget *bg, struct buf *b);
/* Grows an array of `*cap` elements of `elem` bytes so that index `need` fits (zeroing
 * the new elements), charging the budget. False when over budget or out of memory. */
bool stream_array_reserve(struct stream_budget *bg, void **arr, size_t *cap, size_t elem,
                          size_t need);

/* ---- parser states ---------------------------------------------------------------- */

struct parse_chat_tool {
    int key; /* -1 until BLOCK_START was sent (the name may come late) */
    bool open, closed;
    struct buf id, name; /* until the block is started */
    struct buf args;     /* all fragments so far (duplicate-replay defence) */
};

struct parse_chat {
    int open_kind; /* -1 none, IR_BLOCK_TEXT or IR_BLOCK_THINKING */
    int open_key;
    struct parse_chat_tool *tools; /* by the upstream's tool index */
    size_t n_tools, cap_tools;
    int next_key;
    bool saw_tool, saw_content, saw_finish;
};

struct parse_messages_block {
    long upstream_index;
    int key;
    enum ir_block_kind kind;
    bool open, got_args;
    struct buf start_input; /* non-empty `input` of a tool_use start (§2.4 exception) */
};

struct parse_messages {
    struct parse_messages_block *blocks;
    size_t n_blocks, cap_blocks;
    int next_key;
    bool saw_tool;
    long in, cache_read, cache_write, out, reasoning; /* raw snapshot, -1 unknown */
    bool saw_finish;
};

struct parse_responses_item {
    long output_index;
    struct buf item_id;
    enum { PR_ITEM_MESSAGE, PR_ITEM_FUNCTION, PR_ITEM_REASONING, PR_ITEM_OTHER } type;
    int key; /* -1 until the block is started */
    bool open, done, got_args;
    long summary_index; /* last reasoning summary index seen, -1 none */
};

struct parse_responses {
    struct parse_responses_item *items;
    size_t n_items, cap_items;
    int next_key;
    bool saw_tool, saw_finish;
};

/* ---- tool blocks held back by stream_dispatch ------------------------------------- */

/* A tool block that only makes sense to the client once complete: a Responses `custom`
 * tool sent upstream as a function (its {"input":…} arguments are unwrapped at the end,
 * conv_tool_call_fixup), or the synthetic tool of the JSON-mode trick (§3.7; it becomes
 * a text block). Indexed by block key. */
struct stream_held {
    enum { HELD_NONE, HELD_CUSTOM, HELD_JSON } kind;
    struct slice name; /* HELD_CUSTOM: the client's tool name (request memory) */
    struct buf args;   /* the argument fragments so far */
};

/* ---- emitter states --------------------------------------------------------------- */

/* One client-side block, indexed by the parser's key. */
struct emit_block {
    enum ir_block_kind kind;
    bool started;             /* the parser's BLOCK_START was seen */
    bool opened;              /* the client saw it open (B index assigned, C item added, …) */
    bool closed;              /* the parser's BLOCK_STOP was seen or it was closed at FINISH */
    bool client_closed;       /* the client saw it close */
    int index;                /* B content index / A tool index / C output_index */
    int content_index;        /* C message item: current content part, -1 none */
    bool part_refusal;        /* C: the open content part is a refusal */
    bool part_open;           /* C: a content part / summary part is open */
    struct buf id;            /* C: item id (msg_…, rs_…, fc_…) */
    struct buf call_id, name; /* C: tool call id and name, needed again at the end */
    struct buf acc;           /* C: full text of the open part / arguments / summary */
    struct buf sig;           /* pending signature (B) or wrapped signature (C) */
    struct buf parts;         /* C message item: JSON of the finished content parts */
    struct buf redacted;      /* REDACTED: data */
    bool custom;              /* C tool: a custom_tool_call item (input, not arguments) */
    struct buf ns;            /* C tool: the client's namespace of the tool (Codex), or empty */
};

struct stream_emit {
    bool started;        /* START written (message_start, role chunk, response.created) */
    bool pending_finish; /* FINISH seen, terminal events deferred until END or USAGE */
    bool terminal_done;
    enum ir_finish finish;
    struct buf stop_sequence;
    struct emit_block *blocks;
    size_t n_blocks, cap_blocks;
    int next_index;    /* B content index / A dense tool index / C output_index */
    bool any_tool;     /* a tool block reached the client */
    long seq;          /* C sequence_number */
    int open_message;  /* C: key of the block whose message item is open, -1 none */
    int open_key;      /* B: key of the block open at the client, -1 none */
    struct buf output; /* C: JSON of the finished output items, comma-separated */
};

struct conv_stream_state {
    struct stream_budget budget;
    struct slice id;          /* client-facing response id (pool, set once at START) */
    struct slice model;       /* client-facing model (pool) */
    struct slice resp_suffix; /* C client: the id without "resp_", for item ids */
    long created;
    enum conv_stream_status status;
    bool any_output;           /* some client bytes were produced */
    bool gateway_error;        /* the ERROR being dispatched comes from conv_stream_error */
    struct conv_error failure; /* why the stream failed (CONV_STREAM_FAILED) */
    char err_str[2][64];       /* NUL-terminated error type/code for errors.h writers */
    struct stream_held *held;  /* by block key (malloc, budget) */
    size_t cap_held;
    bool client_tool;  /* a tool block of the client's (not the JSON trick's) started */
    bool json_as_text; /* a JSON-trick block was turned into text */
    union {
        struct parse_chat chat;
        struct parse_messages messages;
        struct parse_responses responses;
    } p;
    struct stream_emit e;
};

/* ---- plumbing (stream.c) ---------------------------------------------------------- */

/* Hands one IR event from a parser to the client's emitter. Returns 0 or -1 (out of
 * memory, over budget: an error event has then been written when possible). */
int stream_dispatch(struct conv *cv, const struct ir_event *ev, struct buf *out);

/* Writes 24 random base62 characters and a NUL (generated ids). */
void stream_random_tail(char out[25]);

/* Sets the fields of an IR event to their neutral values. */
void stream_event_init(struct ir_event *ev, enum ir_event_kind kind);

/* Small jansson accessors: the member as a slice / number, or the default when absent,
 * null or of another type. */
struct slice stream_json_str(const json_t *obj, const char *key);
bool stream_json_long(const json_t *obj, const char *key, long *out);

/* Maps an error type or code string (any API's) to an HTTP status; 0 when unknown. */
int stream_status_for_error_type(struct slice type);

int stream_parse_chat(struct conv *cv, json_t *obj, struct buf *out);
int stream_parse_chat_eof(struct conv *cv, struct buf *out);
int stream_parse_messages(struct conv *cv, struct slice event, json_t *obj, struct buf *out);
int stream_parse_messages_eof(struct conv *cv, struct buf *out);
int stream_parse_responses(struct conv *cv, struct slice event, json_t *obj, struct buf *out);
int stream_parse_responses_eof(struct conv *cv, struct buf *out);
/* Releases the malloc'ed parts of the parser state. */
void stream_parse_free(struct conv *cv);

int stream_emit_chat(struct conv *cv, const struct ir_event *ev, struct buf *out);
int stream_emit_messages(struct conv *cv, const struct ir_event *ev, struct buf *out);
int stream_emit_responses(struct conv *cv, const struct ir_event *ev, struct buf *out);
int stream_emit_completions(struct conv *cv, const struct ir_event *ev, struct buf *out);

/* ---- JSON and SSE writing (stream.c) ---------------------------------------------- */

/* A JSON writer over a buf with a sticky failure flag: calls after a failure do nothing,
 * and sw_end rolls the buffer back to where sw_begin found it. */
struct sw {
    struct buf *b;
    size_t start;
    bool fail;
};

void sw_begin(struct sw *w, struct buf *b);
/* Starts an SSE event: `event: name\ndata: ` (name NULL: just `data: `). */
void sw_event(struct sw *w, const char *name);
void sw_raw(struct sw *w, const char *s);
void sw_rawn(struct sw *w, struct slice s);
void sw_str(struct sw *w, struct slice s);         /* JSON string literal */
void sw_cstr(struct sw *w, const char *s);         /* JSON string literal */
void sw_str_or_null(struct sw *w, struct slice s); /* null when s.n == 0 */
void sw_long(struct sw *w, long v);
/* Ends the event (`\n\n`). Returns 0, or -1 after rolling back. */
int sw_end(struct sw *w);

/* Usage bodies of each API (§4.2), written as a JSON object. */
void stream_write_usage_chat(struct sw *w, const struct ir_usage *u);
void stream_write_usage_messages(struct sw *w, const struct ir_usage *u);
void stream_write_usage_responses(struct sw *w, const struct ir_usage *u);

/* The finish value of the client's format (§4.1 encode table). */
const char *stream_finish_chat(enum ir_finish f);
const char *stream_finish_messages(enum ir_finish f, bool has_stop_sequence);

/* The client's error type/code for an IR error event. */
void stream_error_openai(const struct conv *cv, const struct ir_event *ev, const char **type,
                         const char **code);
const char *stream_error_claude_type(const struct conv *cv, const struct ir_event *ev);
const char *stream_error_responses_code(const struct conv *cv, const struct ir_event *ev);

/* The emitter's block for `key`, growing the array (NULL: over budget / bad key). */
struct emit_block *stream_emit_block(struct conv *cv, int key);
/* Frees the malloc'ed buffers of one emitter block. */
void stream_emit_block_release(struct conv *cv, struct emit_block *b);

/* Whether the client asked for encrypted reasoning (Responses `include`). */
bool stream_include_encrypted(const struct conv *cv);
/* Whether the client asked for a usage chunk (A/L `stream_options.include_usage`). */
bool stream_include_usage(const struct conv *cv);

/* The terminal events of an OpenAI-style client stream (Chat `chat.completion.chunk`,
 * legacy Completions `text_completion`): the usage-only chunk when the client asked for it,
 * then `data: [DONE]`. 0 or -1. */
int stream_emit_openai_terminal(struct conv *cv, const char *object, struct buf *out);

#endif
