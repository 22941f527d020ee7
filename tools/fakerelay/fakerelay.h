/* fakerelay.h — the shared types of fakerelay, the emulator of relay sites used by
 * metarelay's end-to-end tests and benchmarks.
 *
 * fakerelay runs metarelay's own HTTP server (net/http_server.h) on W worker threads.
 * Every request goes through one dispatcher (server.c): the /_fake/ control surface
 * (stats.c) or a surface of an emulated platform (openai.c for the OpenAI-compatible /v1
 * relay; later one file per platform management API), each a table of routes. A route
 * handler parses the request and builds a `struct fr_reply` (a whole body or a list of SSE
 * frames); reply.c sends it, applying the fault chosen for the request (faults.c) and the
 * pacing of stream frames with uv timers (never blocking the loop). */
#ifndef METARELAY_TOOLS_FAKERELAY_H
#define METARELAY_TOOLS_FAKERELAY_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/pool.h"
#include "base/slice.h"
#include "net/http_server.h"

/* ---- configuration (read-only once the workers run) ---- */

/* The API formats a relay can speak (same bit values as PLATFORM_FORMAT_*): which
 * surfaces this instance serves (--formats). */
#define FR_FORMAT_CHAT      1u /* /v1/chat/completions, /v1/completions, embeddings, images */
#define FR_FORMAT_MESSAGES  2u /* Claude /v1/messages */
#define FR_FORMAT_RESPONSES 4u /* OpenAI /v1/responses */

/* Parses "chat,messages,responses" into FR_FORMAT_* bits; false when a name is unknown
 * or the list is empty. */
bool fr_formats_parse(const char *list, unsigned *out);

struct fr_config {
    const char *host; /* listen address (default 127.0.0.1) */
    int port;         /* 0 = pick a free port */
    const char *key;  /* bearer key required on the platform surfaces; NULL = none */
    const char *name; /* label echoed in replies (x-fakerelay-name, fingerprint) */
    char **models;    /* what /v1/models lists (owned, NULL-terminated) */
    size_t n_models;
    unsigned workers;        /* io threads, each with its own loop and server */
    const char *fault;       /* fault applied to every platform request; NULL = none */
    unsigned chunks;         /* content chunks per streamed answer (default 4) */
    unsigned chunk_delay_ms; /* pause before each content chunk (default 0) */
    unsigned delay_ms;       /* slow-first-byte delay (default 500) */
    unsigned cut_after;      /* content chunks sent before a `cut` (default 1) */
    unsigned retry_after;    /* Retry-After seconds of 429/529 (default 1) */
    unsigned fail_first;     /* --fault applies to the first N requests only; 0 = all */
    unsigned flap_period;    /* --fault applies to N requests, then N fine, and so on */
    unsigned embedding_dim;  /* embedding vector size (default 8) */
    bool verbose;            /* one diagnostic line per request on stderr */
    unsigned formats;        /* FR_FORMAT_* surfaces served (default chat) */
};

/* Parses argv and the FAKERELAY_* environment into `cfg` (options win over the
 * environment). Returns 0, 1 when --help was printed, -1 after printing an error.
 * Free with fr_config_free. */
int fr_config_parse(struct fr_config *cfg, int argc, char **argv);
void fr_config_free(struct fr_config *cfg);

/* ---- statistics (shared by every worker: atomics and one mutex) ---- */

struct fr_stats;

/* Returns new zeroed statistics (caller owns; fr_stats_free). NULL when out of memory. */
struct fr_stats *fr_stats_new(void);
void fr_stats_free(struct fr_stats *st);
/* Counts one platform request and remembers its headers and body as "last request". */
void fr_stats_request(struct fr_stats *st, const http_request_t *req);
/* Counts one request by the model it named (after parsing). */
void fr_stats_model(struct fr_stats *st, const char *model);
/* Counts one fault applied. */
void fr_stats_fault(struct fr_stats *st, const char *kind);
/* A response started being produced / was finished (in-flight gauge). */
void fr_stats_begin(struct fr_stats *st);
void fr_stats_end(struct fr_stats *st);
/* The client went away while its response was in flight. */
void fr_stats_client_abort(struct fr_stats *st);

/* ---- workers and dispatch ---- */

struct fr_app;

struct fr_worker {
    struct fr_app *app;
    unsigned id;
    uv_loop_t loop;
    http_server_t *server;
    uv_async_t stop;
    pthread_t thread;
    bool thread_started;
};

struct pf_state;

struct fr_app {
    struct fr_config cfg;
    atomic_uint_fast64_t faultable_seq; /* POST requests seen (for --fail-first / --flap-period) */
    struct fr_stats *stats;
    struct pf_state *platform; /* emulated management API (platform.h); NULL = plain relay */
    struct fr_worker *workers;
    unsigned n_workers;
    int port; /* the bound port */
    /* Guards the workers' `server` pointers against a stats read from another worker
     * while one stops (the server frees itself once closed). */
    pthread_mutex_t servers_lock;
};

/* Creates the servers (worker 0 first, the others on its port) without running them.
 * Returns 0, or -1 after logging why. */
int fr_workers_create(struct fr_app *app);
/* Runs each worker's loop on its own thread. 0 or -1. */
int fr_workers_run(struct fr_app *app);
/* Asks every worker to close its server and waits for the threads to end; frees them. */
void fr_workers_stop(struct fr_app *app);
/* Sum of the connection counters of every server, or false when the server build does
 * not provide them. */
bool fr_workers_counters(struct fr_app *app, struct http_server_counters *out);

/* ---- one request being handled ---- */

enum fr_fault {
    FR_FAULT_NONE = 0,
    FR_FAULT_500,
    FR_FAULT_429,
    FR_FAULT_RESET,
    FR_FAULT_SILENCE,
    FR_FAULT_SLOW_FIRST_BYTE,
    FR_FAULT_CUT,
    FR_FAULT_BAD_JSON,
    FR_FAULT_529,            /* overloaded (Claude's 529 overloaded_error) */
    FR_FAULT_STREAM_ERROR,   /* stream: an error event in the surface's shape mid-stream */
    FR_FAULT_429_BARE,       /* 429 without Retry-After */
    FR_FAULT_503,            /* 503 service unavailable */
    FR_FAULT_STALL,          /* stream: cut_after chunks, then nothing, connection kept open */
    FR_FAULT_NO_DONE,        /* stream: every frame but the final [DONE] / message_stop */
    FR_FAULT_CONTEXT_LENGTH, /* 400 context_length_exceeded (client's fault) */
    FR_FAULT_CONTENT_FILTER, /* 400 content_filter (client's fault) */
    FR_FAULT_QUOTA,          /* 403 insufficient_user_quota (New API's "no quota") */
    FR_FAULT_EMPTY,          /* 200 with no content (empty text) */
};

/* The error body shape of a surface. */
enum fr_shape {
    FR_SHAPE_OPENAI = 0, /* {"error":{"message","type","param","code"}} */
    FR_SHAPE_CLAUDE,     /* {"type":"error","error":{"type","message"},"request_id"} */
};

struct fr_async;

struct fr_call {
    http_request_t *req;
    struct fr_worker *worker;
    const struct fr_config *cfg;
    json_t *body;            /* parsed JSON body (freed with the pool), NULL when none */
    const char *model;       /* body "model", NULL when none (lives as long as `body`) */
    bool stream;             /* body "stream": true */
    bool include_usage;      /* body stream_options.include_usage: true */
    enum fr_fault fault;     /* chosen by header, model prefix or --fault */
    unsigned chunks;         /* x-fake-chunks or --chunks */
    unsigned chunk_delay_ms; /* x-fake-chunk-delay-ms or --chunk-delay-ms */
    unsigned delay_ms;       /* x-fake-delay-ms or --delay-ms */
    unsigned cut_after;      /* x-fake-cut-after or --cut-after */
    uint64_t seq;            /* process-wide request number, for ids */
    enum fr_shape shape;     /* error shape of the surface answering */
    struct fr_async *async;  /* timer and abort state once the answer is asynchronous */
};

/* What a route handler answers. All memory in the request pool. */
struct fr_reply {
    int status;
    const char *content_type; /* non-stream; NULL = application/json */
    struct slice body;        /* non-stream body */
    bool sse;                 /* a stream of SSE `data:` frames instead of `body` */
    struct slice *frames;     /* payloads of the frames, without "data: " and "\n\n" */
    size_t n_frames;
    size_t first_content; /* frames[first_content, first_content + n_content) carry */
    size_t n_content;     /* content: paced by chunk_delay_ms, counted by cut_after */
    /* Named SSE events: events[i] is written as "event: <name>" before frame i (NULL
     * array or entry = a data-only frame). */
    const char **events;
    /* The stream-error fault: frames sent after the cut point instead of the rest (then
     * the stream ends normally). NULL = an OpenAI-shaped `data: {"error":…}` frame. */
    struct slice *tail;
    const char **tail_events;
    size_t n_tail;
};

typedef void (*fr_handler_fn)(struct fr_call *call);

struct fr_route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* exact path */
    fr_handler_fn fn;
    bool json_body;   /* the body is parsed as a JSON object before fn runs */
    unsigned formats; /* FR_FORMAT_* that enable it (any of them); 0 = always served */
};

/* One emulated surface: a table of routes. */
struct fr_surface {
    const char *name;
    const struct fr_route *routes;
    size_t n_routes;
    enum fr_shape shape; /* error shape of its answers (404, 401, faults, …) */
};

extern const struct fr_surface fr_openai_surface;
extern const struct fr_surface fr_claude_surface;
extern const struct fr_surface fr_responses_surface;

/* The /_fake/ control routes (not counted, no key). */
void fr_control_dispatch(struct fr_worker *w, http_request_t *req);

/* ---- answering (reply.c) ---- */

/* Sends `r` for `call`, applying its fault (cut, bad-json) and stream pacing; finishes
 * the request now or later. */
void fr_reply_send(struct fr_call *call, struct fr_reply *r);
/* Sends a whole JSON body (the x-fakerelay-name header is added). Finishes the request. */
void fr_reply_json(struct fr_call *call, int status, struct slice json);
/* OpenAI-shaped error {"error":{message,type,param,code}}; code may be NULL. */
void fr_reply_error(struct fr_call *call, int status, const char *type, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Same without a call (before one exists). */
void fr_respond_error(http_request_t *req, const struct fr_config *cfg, int status,
                      const char *type, const char *code, const char *message);
/* Same in a given shape: for FR_SHAPE_CLAUDE `type` is kept when it is a Claude error
 * type, else derived from the status; `code` is ignored. */
void fr_respond_error_shaped(http_request_t *req, const struct fr_config *cfg, enum fr_shape shape,
                             int status, const char *type, const char *code, const char *message);
/* The Claude error type of an HTTP status (400 invalid_request_error, 401
 * authentication_error, …, 529 overloaded_error). */
const char *fr_claude_error_type(int status);
/* Runs `fn(call)` after `ms` milliseconds (uv timer); finishes the request if the client
 * leaves first. */
void fr_reply_later(struct fr_call *call, unsigned ms, fr_handler_fn fn);
/* Never answers; finishes the request when the client leaves (or at shutdown). */
void fr_reply_silence(struct fr_call *call);
/* Closes the connection now without an answer (TCP reset). */
void fr_reply_reset(struct fr_call *call);
/* Serializes `j` into the request pool and steals the reference. */
struct slice fr_json_dump(struct fr_call *call, json_t *j);

/* ---- faults (faults.c) ---- */

/* Parses a fault name ("500", "429", "reset", "silence", "slow-first-byte", "cut",
 * "bad-json"); false when unknown. */
bool fr_fault_parse(struct slice name, enum fr_fault *out);
/* The fault's name ("none" for FR_FAULT_NONE). */
const char *fr_fault_name(enum fr_fault f);
/* A model named "fault-<kind>[-anything]": true with the kind in *out. */
bool fr_fault_from_model(const char *model, enum fr_fault *out);
/* Applies a fault that replaces the handler (500, 429, reset, silence, slow-first-byte).
 * Returns true when the request was taken over: for slow-first-byte the handler `fn` runs
 * after the delay. The others (cut, bad-json) are applied by fr_reply_send. */
bool fr_fault_apply(struct fr_call *call, fr_handler_fn fn);
/* --fault's schedule: whether the next POST request gets it (--fail-first N: the first N;
 * --flap-period N: N requests with it, N without, …; neither: always). Counts the request. */
bool fr_fault_scheduled(struct fr_app *app);

/* ---- small helpers (util.c) ---- */

/* Number of Unicode code points of valid-or-not UTF-8 (continuation bytes not counted). */
size_t fr_utf8_len(const char *s, size_t n);
/* Byte length of the first `cps` code points of s[0..n). */
size_t fr_utf8_prefix(const char *s, size_t n, size_t cps);
/* Token estimate: code points / 4 rounded up, at least 1. */
unsigned fr_tokens(size_t codepoints);
/* Text of a message "content": a string, or the "text" of its parts; appended to `b`. */
void fr_content_text(json_t *content, struct buf *b);
/* Standard base64 (with padding) of p[0..n), NUL-terminated, in the pool; NULL when out
 * of memory. */
char *fr_base64(pool_t *pool, const unsigned char *p, size_t n);

/* ---- pieces shared by the surfaces' answers (gen.c) ---- */

#define FR_ECHO_CHARS     64
#define FR_MAX_TOOL_CALLS 8

/* "Hello from <name>: <echo>" in the pool; `echo` is cut at FR_ECHO_CHARS characters. */
struct slice fr_hello(struct fr_call *call, struct slice echo);
/* Part i of n of `text` (`cps` code points), split evenly on character boundaries. */
struct slice fr_split(struct slice text, size_t cps, size_t i, size_t n);
/* A stream reply (status 200, SSE) with room for `cap` frames and their event names, in
 * the pool; NULL when out of memory. */
struct fr_reply *fr_stream_new(struct fr_call *call, size_t cap);
/* Appends a frame: `j` serialized (reference stolen) under event `name` (NULL = none).
 * Frames beyond the capacity are dropped (a bug in the caller's count). */
void fr_stream_add(struct fr_call *call, struct fr_reply *r, const char *name, json_t *j);
/* Sends `j` (stolen) as a 200 JSON answer through fr_reply_send (faults apply). */
void fr_send_json(struct fr_call *call, json_t *j);
/* The model is accepted: listed, "*" listed, or a fault-… model. */
bool fr_model_known(const struct fr_config *cfg, const char *model);

/* A tool the request offers: its name and JSON schema (borrowed from the body). */
struct fr_tool {
    const char *name;
    json_t *schema;
};
/* Which tools the answer calls, as indexes into `tools` (at most FR_MAX_TOOL_CALLS).
 * Nothing when there are no tools, `none` is set (tool_choice none) or the last user turn
 * carries tool results. Else, in order: header `x-fake-tool: a,b` (those names); `forced`
 * (tool_choice naming a tool); text containing "use tools" (every tool, or the first
 * when `!parallel`); text containing "use tool" (the tool named right after it, else the
 * first); `any` (tool_choice any/required: the first). Returns the count. */
size_t fr_tool_plan(struct fr_call *call, const struct fr_tool *tools, size_t n_tools,
                    struct slice text, bool after_results, const char *forced, bool any, bool none,
                    bool parallel, size_t *out);
/* Arguments of a call of a tool with `schema`: the first required property set to a
 * value of its type ("Paris" for strings, the first enum value when there is one), else
 * {"city":"Paris"}. New reference. */
json_t *fr_tool_input(json_t *schema);
/* A deterministic opaque token standing for `text` (a thinking signature, encrypted
 * reasoning): base64 of "<kind>:" + 16 hex digits of a hash of `text`, in the pool. */
char *fr_seal(pool_t *pool, const char *kind, struct slice text);
/* True when `tok` is a seal of `kind` (and, when `text` is non-NULL, of that text). */
bool fr_seal_ok(const char *tok, size_t n, const char *kind, const struct slice *text);

/* The 1×1 PNG answered by images and GET /_fake/image.png. */
extern const unsigned char fr_png[];
extern const size_t fr_png_len;

#endif
