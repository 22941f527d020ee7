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
    unsigned embedding_dim;  /* embedding vector size (default 8) */
    bool verbose;            /* one diagnostic line per request on stderr */
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
};

typedef void (*fr_handler_fn)(struct fr_call *call);

struct fr_route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* exact path */
    fr_handler_fn fn;
    bool json_body; /* the body is parsed as a JSON object before fn runs */
};

/* One emulated surface: a table of routes. */
struct fr_surface {
    const char *name;
    const struct fr_route *routes;
    size_t n_routes;
};

extern const struct fr_surface fr_openai_surface;

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

/* The 1×1 PNG answered by images and GET /_fake/image.png. */
extern const unsigned char fr_png[];
extern const size_t fr_png_len;

#endif
