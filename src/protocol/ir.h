/* ir.h — the intermediate representation every wire format converts through
 * (hub and spoke: one decoder and one encoder per format, never pairwise converters).
 * Formats: A = OpenAI Chat Completions, B = Claude Messages, C = OpenAI Responses,
 * L = legacy OpenAI Completions (client side only).
 *
 * Everything lives in the request pool: strings are `struct slice`s pointing into the
 * pool (or into the original body), raw JSON fragments (schemas, tool arguments,
 * metadata) are kept as their JSON text, verbatim. Counts of -1 (or NAN) mean "unset".
 * The specification is the project's format-conversion reference (§1.2–1.4, §5.1). */
#ifndef METARELAY_PROTOCOL_IR_H
#define METARELAY_PROTOCOL_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

enum api_format {
    API_CHAT = 0,        /* A: /v1/chat/completions */
    API_MESSAGES = 1,    /* B: /v1/messages */
    API_RESPONSES = 2,   /* C: /v1/responses */
    API_COMPLETIONS = 3, /* L: /v1/completions (client side only) */
};
#define API_FORMAT_BIT(f) (1u << (f))

/* "chat", "messages", "responses", "completions". */
const char *api_format_name(enum api_format f);
/* Parses a comma-separated list of relay formats (chat, messages, responses; spaces
 * allowed) into API_FORMAT_BITs. Returns the mask, or 0 when empty or a name is unknown. */
unsigned api_formats_parse(const char *csv);
/* Writes the mask as "chat,messages,responses" (subset, that order) into out (≥ 32 bytes). */
void api_formats_format(unsigned mask, char *out, size_t cap);

enum ir_role { IR_ROLE_SYSTEM, IR_ROLE_DEVELOPER, IR_ROLE_USER, IR_ROLE_ASSISTANT, IR_ROLE_TOOL };

enum ir_part_kind {
    IR_PART_TEXT,
    IR_PART_IMAGE,
    IR_PART_FILE,
    IR_PART_THINKING,
    IR_PART_REDACTED_THINKING,
    IR_PART_TOOL_CALL,
    IR_PART_TOOL_RESULT,
    IR_PART_REFUSAL,
};

enum ir_media_source { IR_SRC_URL, IR_SRC_BASE64, IR_SRC_FILE_ID };

enum ir_vendor { IR_VENDOR_NONE, IR_VENDOR_ANTHROPIC, IR_VENDOR_OPENAI };

struct ir_part {
    enum ir_part_kind kind;
    struct slice text; /* TEXT, REFUSAL, THINKING */
    struct {
        enum ir_media_source src;
        struct slice media_type, data_or_url, detail, filename;
    } media; /* IMAGE, FILE */
    struct {
        struct slice id, name;
        struct slice args; /* raw JSON text, verbatim */
        bool custom;       /* Responses custom (free-form) tool call: args is plain text */
    } call;                /* TOOL_CALL */
    struct {
        struct slice tool_id;
        struct ir_part *parts;
        size_t n_parts;
        bool is_error;
    } result; /* TOOL_RESULT */
    struct {
        struct slice signature;
        enum ir_vendor sig_vendor;
        struct slice redacted_data;
        struct slice item_id;
    } think;                /* THINKING, REDACTED_THINKING */
    bool cache_bp;          /* Anthropic cache_control breakpoint on this part */
    struct slice cache_ttl; /* "5m", "1h" or empty */
};

struct ir_message {
    enum ir_role role;
    struct ir_part *parts;
    size_t n_parts;
    struct slice name;
};

struct ir_tool {
    struct slice name, description;
    struct slice schema_json; /* raw JSON text of the parameters / input_schema */
    int strict;               /* -1 unset, 0, 1 */
    bool cache_bp;
    bool custom;     /* Responses `custom` tool (free-form input) */
    struct slice ns; /* Responses `namespace` the tool was declared in (flattened), or
                      * empty; a C client expects it back on its function_call items */
};

enum ir_tool_choice { IR_TC_UNSET, IR_TC_AUTO, IR_TC_NONE, IR_TC_ANY, IR_TC_NAMED, IR_TC_ALLOWED };
enum ir_response_format { IR_RF_UNSET, IR_RF_TEXT, IR_RF_JSON_OBJECT, IR_RF_JSON_SCHEMA };
enum ir_effort {
    IR_EFFORT_UNSET,
    IR_EFFORT_MINIMAL,
    IR_EFFORT_LOW,
    IR_EFFORT_MEDIUM,
    IR_EFFORT_HIGH,
    IR_EFFORT_XHIGH,
    IR_EFFORT_MAX,
    IR_EFFORT_NONE /* the client explicitly said "none" (reasoning.enabled = 0) */
};

struct ir_request {
    struct slice model;
    struct ir_part *system; /* hoisted system + developer text */
    size_t n_system;
    struct ir_message *msgs;
    size_t n_msgs;
    struct ir_tool *tools;
    size_t n_tools;
    struct {
        enum ir_tool_choice mode;
        struct slice name;
        struct slice *names; /* ALLOWED: the allowed tool names */
        size_t n_names;
        bool required; /* ALLOWED: mode "required" (else "auto") */
    } tool_choice;
    int parallel_tool_calls;   /* -1 unset, 0, 1 */
    long max_output_tokens;    /* -1 unset */
    double temperature, top_p; /* NAN = unset */
    long top_k;                /* -1 unset */
    struct slice *stop;
    size_t n_stop;
    struct {
        enum ir_response_format kind;
        struct slice name, schema_json;
        int strict;
    } rf;
    struct {
        int enabled; /* -1 unset, 0, 1 */
        enum ir_effort effort;
        long budget; /* -1 unset */
        struct slice summary;
        bool adaptive;
    } reasoning;
    struct slice user_id;
    struct slice metadata_json; /* forwarded A↔C only */
    bool stream, include_usage, store;
    int n;                            /* -1 unset */
    struct slice passthrough_json;    /* unknown top-level fields (object text), same-format only */
    bool include_encrypted_reasoning; /* C: include ["reasoning.encrypted_content"] */
    struct slice prompt_cache_key;
    struct slice verbosity; /* A `verbosity` ↔ C `text.verbosity` */
    bool echo;              /* L `echo`: the prompt is prepended to the answer */
    /* Non-NULL: why only an upstream speaking the client's own format can serve this
     * request (previous_response_id, audio input, a token prompt, n > 1 for B/C …);
     * conv_encode_request then fails with 400 and this message. Static string. */
    const char *same_format_only;
};

enum ir_finish {
    IR_FIN_END_TURN,
    IR_FIN_STOP_SEQUENCE,
    IR_FIN_MAX_TOKENS,
    IR_FIN_TOOL_USE,
    IR_FIN_CONTENT_FILTER,
    IR_FIN_PAUSE_TURN,
    IR_FIN_CONTEXT_EXCEEDED,
    IR_FIN_ERROR,
    IR_FIN_UNKNOWN,
};

/* All counts: -1 = unknown. input_total includes cache reads and cache writes;
 * output_total includes reasoning. */
struct ir_usage {
    long input_total, cache_read, cache_write, output_total, reasoning;
};

struct ir_response {
    struct slice id, model;
    long created;
    struct ir_part *parts; /* in the order produced */
    size_t n_parts;
    enum ir_finish finish;
    struct slice stop_sequence;
    struct ir_usage usage;
};

/* Stream events (§5.1). `key` is a parser-local block key. Usage events are snapshots:
 * the latest non-negative value of each field wins, never summed. */
enum ir_event_kind {
    IR_EV_START,          /* id, model, usage (maybe) */
    IR_EV_BLOCK_START,    /* key, block, tool_id, tool_name, redacted_data */
    IR_EV_TEXT_DELTA,     /* key, text */
    IR_EV_THINKING_DELTA, /* key, text */
    IR_EV_SIGNATURE,      /* key, text = signature */
    IR_EV_TOOL_ARGS,      /* key, text = argument fragment */
    IR_EV_REFUSAL_DELTA,  /* key, text */
    IR_EV_BLOCK_STOP,     /* key */
    IR_EV_USAGE,          /* usage */
    IR_EV_FINISH,         /* finish, stop_sequence */
    IR_EV_END,
    IR_EV_ERROR, /* status, error_type, text = message */
};

enum ir_block_kind { IR_BLOCK_TEXT, IR_BLOCK_THINKING, IR_BLOCK_REDACTED, IR_BLOCK_TOOL };

struct ir_event {
    enum ir_event_kind kind;
    int key;
    enum ir_block_kind block;
    struct slice id, model;
    struct slice tool_id, tool_name, redacted_data;
    struct slice text;
    struct ir_usage usage;
    bool has_usage;
    enum ir_finish finish;
    struct slice stop_sequence;
    int status;
    struct slice error_type;
    struct slice error_code; /* ERROR: the upstream's code (OpenAI shapes), may be empty */
    bool tool_custom;        /* BLOCK_START of a tool, to the emitter: a Responses `custom`
                              * tool call (its TOOL_ARGS are the free-form input) */
};

/* Upstream capability profile (§1.4): per channel (and later per model). */
struct ir_profile {
    enum {
        IR_CLAUDE_THINKING_NONE,
        IR_CLAUDE_THINKING_BUDGET,
        IR_CLAUDE_THINKING_ADAPTIVE
    } claude_thinking;
    bool claude_structured_output_native; /* false: the tool trick */
    bool claude_temp_top_p_exclusive;     /* default true */
    long default_max_tokens;              /* default 4096 */
    long model_max_output;                /* -1 unknown */
    bool openai_max_completion_tokens;    /* true: max_completion_tokens; false: max_tokens */
    enum {
        IR_REASONING_FIELD_REASONING_CONTENT,
        IR_REASONING_FIELD_REASONING,
        IR_REASONING_FIELD_NONE
    } chat_reasoning_field;
    bool chat_history_reasoning;
    bool chat_emit_thinking_blocks;
    bool responses_emulate_stop;
    int tool_name_max; /* default 64 */
    bool think_tag_split;
    bool accepts_unsigned_thinking;
    bool repair_same_format;
    struct slice anthropic_version; /* the client's, forwarded; empty = 2023-06-01 */
};

/* The defaults of §1.4 for a third-party OpenAI-compatible or Claude-compatible upstream. */
void ir_profile_defaults(struct ir_profile *p);

void ir_usage_unknown(struct ir_usage *u);

#endif
