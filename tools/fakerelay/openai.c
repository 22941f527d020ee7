/* openai.c — the OpenAI-compatible /v1 surface of an emulated relay site.
 *
 * Every answer is deterministic: chat and legacy completions say "Hello from <name>:
 * <echo of the last user message, cut at 64 characters>"; token counts are the number
 * of characters / 4 rounded up (at least 1); chat answers with tool_calls when the
 * request offers tools and asks for them (gen.c, fr_tool_plan) and checks the
 * tool_calls / tool message pairing; embeddings are a hash of the input turned
 * into a unit vector; images are one fixed 1×1 PNG. Streams are built here as a list of
 * SSE payloads and sent (paced, cut or damaged) by reply.c. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fakerelay.h"

#define ECHO_CHARS 64

/* A 1×1 RGBA PNG, served by images and /_fake/image.png. */
const unsigned char fr_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x10, 0x58, 0x5c, 0xff, 0x1f, 0x00, 0x04, 0x2b, 0x02, 0x32, 0xcf, 0x63,
    0xad, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};
const size_t fr_png_len = sizeof fr_png;

/* ---- shared pieces ---- */

static json_int_t now_s(void)
{
    return (json_int_t)time(NULL);
}

static bool model_known(const struct fr_config *cfg, const char *model)
{
    if (strncmp(model, "fault-", 6) == 0) return true;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i], "*") == 0 || strcmp(cfg->models[i], model) == 0) return true;
    return false;
}

/* Checks the model named by the body; false after answering 400/404. */
static bool check_model(struct fr_call *call)
{
    if (!call->model) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "you must provide a model parameter");
        return false;
    }
    if (!model_known(call->cfg, call->model)) {
        fr_reply_error(call, 404, "invalid_request_error", "model_not_found",
                       "The model `%.200s` does not exist or you do not have access to it.",
                       call->model);
        return false;
    }
    return true;
}

/* "Hello from <name>: <echo>" in the pool; `echo` is cut at ECHO_CHARS characters. */
static struct slice hello(struct fr_call *call, struct slice echo)
{
    if (call->fault == FR_FAULT_EMPTY) return SLICE_LIT(""); /* a 200 without content */
    echo.n = fr_utf8_prefix(echo.p, echo.n, ECHO_CHARS);
    char *s = pool_printf(call->req->pool, "Hello from %s: %.*s", call->cfg->name, (int)echo.n,
                          echo.p ? echo.p : "");
    return s ? slice_from(s) : SLICE_LIT("Hello");
}

/* Reads max_tokens (or max_completion_tokens) into *out (0 = none). False after 400. */
static bool max_tokens(struct fr_call *call, unsigned *out)
{
    *out = 0;
    static const char *const names[] = {"max_tokens", "max_completion_tokens"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(call->body, names[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 1000000000) {
            fr_reply_error(call, 400, "invalid_request_error", "invalid_value",
                           "'%s' must be a positive integer.", names[i]);
            return false;
        }
        *out = (unsigned)json_integer_value(v);
    }
    return true;
}

/* Cuts `text` to max_tokens × 4 characters; returns the finish reason. */
static const char *apply_max_tokens(struct slice *text, unsigned max)
{
    if (max == 0) return "stop";
    size_t cps = fr_utf8_len(text->p, text->n);
    if (cps <= (size_t)max * 4) return "stop";
    text->n = fr_utf8_prefix(text->p, text->n, (size_t)max * 4);
    return "length";
}

static json_t *usage_json(unsigned prompt, unsigned completion)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)prompt + completion);
}

/* Part i of n of `text`, split evenly on character boundaries (parts may be empty). */
static struct slice part_of(struct slice text, size_t cps, size_t i, size_t n)
{
    size_t from = fr_utf8_prefix(text.p, text.n, cps * i / n);
    size_t to = fr_utf8_prefix(text.p, text.n, cps * (i + 1) / n);
    return (struct slice){text.p + from, to - from};
}

static const char *fingerprint(struct fr_call *call)
{
    return pool_printf(call->req->pool, "fp_%s", call->cfg->name);
}

/* Allocates a stream reply with room for `n` frames. */
static struct fr_reply *stream_reply(struct fr_call *call, size_t n)
{
    struct fr_reply *r = pool_calloc(call->req->pool, sizeof *r);
    if (!r) return NULL;
    r->frames = pool_calloc(call->req->pool, n * sizeof *r->frames);
    if (!r->frames) return NULL;
    r->status = 200;
    r->sse = true;
    return r;
}

static void send_json(struct fr_call *call, json_t *j)
{
    if (!j) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    struct fr_reply *r = pool_calloc(call->req->pool, sizeof *r);
    if (!r) {
        json_decref(j);
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    r->status = 200;
    r->body = fr_json_dump(call, j);
    fr_reply_send(call, r);
}

/* ---- GET /v1/models ---- */

static void models(struct fr_call *call)
{
    /* A Claude client (anthropic-version header) gets the Anthropic list shape. */
    bool claude = http_request_header(call->req, "anthropic-version").p != NULL;
    json_t *data = json_array();
    const char *first = NULL, *last = NULL;
    for (size_t i = 0; i < call->cfg->n_models; i++) {
        const char *id = call->cfg->models[i];
        if (strcmp(id, "*") == 0) continue;
        if (!first) first = id;
        last = id;
        json_array_append_new(
            data, claude ? json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id", id,
                                     "display_name", id, "created_at", "2025-01-01T00:00:00Z")
                         : json_pack("{s:s, s:s, s:i, s:s}", "id", id, "object", "model", "created",
                                     (json_int_t)1700000000, "owned_by", call->cfg->name));
    }
    if (claude)
        send_json(call, json_pack("{s:o, s:b, s:o, s:o}", "data", data, "has_more", 0, "first_id",
                                  first ? json_string(first) : json_null(), "last_id",
                                  last ? json_string(last) : json_null()));
    else
        send_json(call, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- POST /v1/chat/completions ---- */

#define CHAT_MAX_TOOLS 128

/* What a chat request says: its text, what to echo, its tools. */
struct chat_req {
    struct buf all;  /* every message text, for the token estimate */
    struct buf echo; /* last user text, or the trailing tool results */
    bool after_results;
    struct fr_tool tools[CHAT_MAX_TOOLS];
    size_t n_tools;
    const char *forced;
    bool any, none, parallel;
};

static void chat_req_free(void *p)
{
    struct chat_req *q = p;
    buf_free(&q->all);
    buf_free(&q->echo);
}

/* Reads the messages into `q`, checking the tool-call pairing the real API enforces.
 * False after answering 400. */
static bool chat_scan(struct fr_call *call, json_t *messages, struct chat_req *q)
{
    json_t *pending = json_object(); /* tool_call ids awaiting their tool message */
    struct buf results = BUF_INIT;
    bool ok = false, in_results = false;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (!json_is_object(m)) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "'messages.%zu' must be an object.", i);
            goto out;
        }
        json_t *content = json_object_get(m, "content");
        fr_content_text(content, &q->all);
        const char *role = json_string_value(json_object_get(m, "role"));
        bool tool = role && strcmp(role, "tool") == 0;
        if (tool) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (!id || !json_object_get(pending, id)) {
                fr_reply_error(call, 400, "invalid_request_error", NULL,
                               "Invalid parameter: messages with role 'tool' must be a response "
                               "to a preceeding message with 'tool_calls'.");
                goto out;
            }
            json_object_del(pending, id);
            if (!in_results) results.n = 0;
            in_results = true;
            fr_content_text(content, &results);
            continue;
        }
        if (json_object_size(pending) > 0) {
            struct buf ids = BUF_INIT;
            const char *k;
            json_t *v;
            json_object_foreach(pending, k, v) buf_printf(&ids, "%s%s", ids.n ? ", " : "", k);
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "An assistant message with 'tool_calls' must be followed by tool "
                           "messages responding to each 'tool_call_id'. The following "
                           "tool_call_ids did not have response messages: %.*s",
                           (int)(ids.n > 400 ? 400 : ids.n), ids.p);
            buf_free(&ids);
            goto out;
        }
        in_results = false;
        if (role && strcmp(role, "user") == 0) {
            q->echo.n = 0;
            fr_content_text(content, &q->echo);
        }
        json_t *calls = json_object_get(m, "tool_calls");
        size_t c;
        json_t *tc;
        json_array_foreach(calls, c, tc)
        {
            const char *id = json_string_value(json_object_get(tc, "id"));
            json_t *fn = json_object_get(tc, "function");
            if (!id || !json_is_string(json_object_get(fn, "name"))) {
                fr_reply_error(call, 400, "invalid_request_error", NULL,
                               "Missing required parameter: 'messages[%zu].tool_calls[%zu].%s'.", i,
                               c, id ? "function.name" : "id");
                goto out;
            }
            json_object_set_new(pending, id, json_true());
            json_t *args = json_object_get(fn, "arguments");
            if (json_is_string(args))
                buf_append(&q->all, json_string_value(args), json_string_length(args));
        }
    }
    if (json_object_size(pending) > 0) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "An assistant message with 'tool_calls' must be followed by tool messages "
                       "responding to each 'tool_call_id'.");
        goto out;
    }
    if (in_results) {
        q->after_results = true;
        q->echo.n = 0;
        buf_append(&q->echo, results.p, results.n);
    }
    ok = true;
out:
    json_decref(pending);
    buf_free(&results);
    return ok;
}

/* Reads `tools` and `tool_choice`. False after answering 400. */
static bool chat_tools(struct fr_call *call, struct chat_req *q)
{
    json_t *tools = json_object_get(call->body, "tools");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "Missing required parameter: 'tools[%zu].function.name'.", i);
            return false;
        }
        if (q->n_tools < CHAT_MAX_TOOLS)
            q->tools[q->n_tools++] = (struct fr_tool){name, json_object_get(fn, "parameters")};
        char *s = json_dumps(t, JSON_COMPACT);
        if (s) buf_append_str(&q->all, s);
        free(s);
    }
    json_t *tc = json_object_get(call->body, "tool_choice");
    if (json_is_string(tc)) {
        q->none = strcmp(json_string_value(tc), "none") == 0;
        q->any = strcmp(json_string_value(tc), "required") == 0;
    } else if (json_is_object(tc)) {
        q->forced = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    }
    q->parallel = !json_is_false(json_object_get(call->body, "parallel_tool_calls"));
    return true;
}

static void chat(struct fr_call *call)
{
    if (!check_model(call)) return;
    json_t *messages = json_object_get(call->body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "'messages' must be a non-empty array.");
        return;
    }
    unsigned max;
    if (!max_tokens(call, &max)) return;
    pool_t *pool = call->req->pool;
    struct chat_req *q = pool_calloc(pool, sizeof *q);
    if (!q || pool_cleanup(pool, chat_req_free, q) != 0) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    if (!chat_scan(call, messages, q) || !chat_tools(call, q)) return;

    unsigned prompt_tokens = fr_tokens(fr_utf8_len(q->all.p, q->all.n));
    struct slice text = hello(call, buf_slice(&q->echo));
    const char *finish = apply_max_tokens(&text, max);
    size_t cps = fr_utf8_len(text.p, text.n);

    /* Tool calls (when the request offers tools and asks for them). */
    size_t plan[FR_MAX_TOOL_CALLS];
    size_t n_calls =
        strcmp(finish, "stop") == 0
            ? fr_tool_plan(call, q->tools, q->n_tools, buf_slice(&q->echo), q->after_results,
                           q->forced, q->any, q->none, q->parallel, plan)
            : 0;
    const char *call_ids[FR_MAX_TOOL_CALLS];
    struct slice call_args[FR_MAX_TOOL_CALLS];
    size_t args_len = 0;
    for (size_t c = 0; c < n_calls; c++) {
        call_ids[c] = pool_printf(pool, "call_fr%" PRIu64 "_%zu", call->seq, c);
        call_args[c] = fr_json_dump(call, fr_tool_input(q->tools[plan[c]].schema));
        if (!call_ids[c]) {
            fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
            return;
        }
        args_len += call_args[c].n;
    }
    if (n_calls) finish = "tool_calls";
    unsigned completion_tokens = fr_tokens(cps + args_len);

    char id[48];
    snprintf(id, sizeof id, "chatcmpl-fakerelay-%" PRIu64, call->seq);
    json_int_t created = now_s();
    const char *fp = fingerprint(call);

    if (!call->stream) {
        json_t *msg = json_pack("{s:s, s:s#, s:n}", "role", "assistant", "content", text.p, text.n,
                                "refusal");
        if (n_calls) {
            json_t *tcs = json_array();
            for (size_t c = 0; c < n_calls; c++)
                json_array_append_new(tcs, json_pack("{s:s, s:s, s:{s:s, s:s#}}", "id", call_ids[c],
                                                     "type", "function", "function", "name",
                                                     q->tools[plan[c]].name, "arguments",
                                                     call_args[c].p, call_args[c].n));
            json_object_set_new(msg, "tool_calls", tcs);
        }
        json_t *choice = json_pack("{s:i, s:o, s:n, s:s}", "index", (json_int_t)0, "message", msg,
                                   "logprobs", "finish_reason", finish);
        send_json(call, json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", id, "object",
                                  "chat.completion", "created", created, "model", call->model,
                                  "system_fingerprint", fp, "choices", choice, "usage",
                                  usage_json(prompt_tokens, completion_tokens)));
        return;
    }

    size_t n = call->chunks ? call->chunks : 1;
    size_t pieces = n < 3 ? 3 : n;
    /* role, n contents, per call 1 + pieces, finish, [usage], [DONE] */
    struct fr_reply *r = stream_reply(call, n + 4 + n_calls * (pieces + 1));
    if (!r) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    size_t k = 0;
    /* One chunk with `delta` and finish reason `fin` (both stolen). */
#define CHUNK(delta, fin)                                                                          \
    do {                                                                                           \
        json_t *chunk_ =                                                                           \
            json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:n, s:o}]}", "id", id, "object",   \
                      "chat.completion.chunk", "created", created, "model", call->model,           \
                      "system_fingerprint", fp, "choices", "index", (json_int_t)0, "delta",        \
                      (delta), "logprobs", "finish_reason", (fin));                                \
        if (chunk_ && call->include_usage) json_object_set_new(chunk_, "usage", json_null());      \
        r->frames[k++] = fr_json_dump(call, chunk_);                                               \
    } while (0)
    CHUNK(json_pack("{s:s, s:s, s:n}", "role", "assistant", "content", "", "refusal"), json_null());
    for (size_t c = 0; c < n; c++) {
        struct slice p = part_of(text, cps, c, n);
        CHUNK(json_pack("{s:s#}", "content", p.p, p.n), json_null());
    }
    for (size_t c = 0; c < n_calls; c++) {
        CHUNK(json_pack("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}", "tool_calls", "index", (int)c, "id",
                        call_ids[c], "type", "function", "function", "name", q->tools[plan[c]].name,
                        "arguments", ""),
              json_null());
        struct slice a = call_args[c];
        size_t acps = fr_utf8_len(a.p, a.n);
        for (size_t f = 0; f < pieces; f++) {
            struct slice p = part_of(a, acps, f, pieces);
            if (!p.n) continue;
            CHUNK(json_pack("{s:[{s:i, s:{s:s#}}]}", "tool_calls", "index", (int)c, "function",
                            "arguments", p.p, p.n),
                  json_null());
        }
    }
    CHUNK(json_object(), json_string(finish));
#undef CHUNK
    if (call->include_usage)
        r->frames[k++] =
            fr_json_dump(call, json_pack("{s:s, s:s, s:I, s:s, s:s, s:[], s:o}", "id", id, "object",
                                         "chat.completion.chunk", "created", created, "model",
                                         call->model, "system_fingerprint", fp, "choices", "usage",
                                         usage_json(prompt_tokens, completion_tokens)));
    r->frames[k++] = SLICE_LIT("[DONE]");
    r->n_frames = k;
    r->first_content = 1;
    r->n_content = n;
    fr_reply_send(call, r);
}

/* ---- POST /v1/completions (legacy) ---- */

/* Text of a legacy prompt or embedding input: a string, strings, token arrays.
 * Appends the text of every item to `all` and the first item to `first`; token arrays
 * count as one character per token. False when the shape is wrong. */
static bool input_text(json_t *in, struct buf *all, struct buf *first, size_t *items)
{
    *items = 0;
    if (json_is_string(in)) {
        buf_append(all, json_string_value(in), json_string_length(in));
        buf_append(first, json_string_value(in), json_string_length(in));
        *items = 1;
        return true;
    }
    if (!json_is_array(in) || json_array_size(in) == 0) return false;
    size_t i;
    json_t *v;
    bool tokens = json_is_integer(json_array_get(in, 0));
    if (tokens) { /* one prompt given as token ids */
        json_array_foreach(in, i, v)
        {
            if (!json_is_integer(v)) return false;
            buf_printf(all, "%c", 't');
            buf_printf(first, "[%" JSON_INTEGER_FORMAT "]", json_integer_value(v));
        }
        *items = 1;
        return true;
    }
    json_array_foreach(in, i, v)
    {
        struct buf one = BUF_INIT;
        if (json_is_string(v)) {
            buf_append(&one, json_string_value(v), json_string_length(v));
        } else if (json_is_array(v)) {
            size_t j;
            json_t *t;
            json_array_foreach(v, j, t)
            {
                if (!json_is_integer(t)) {
                    buf_free(&one);
                    return false;
                }
                buf_printf(&one, "[%" JSON_INTEGER_FORMAT "]", json_integer_value(t));
            }
        } else {
            return false;
        }
        buf_append(all, one.p, one.n);
        if (i == 0) buf_append(first, one.p, one.n);
        buf_free(&one);
        (*items)++;
    }
    return true;
}

static void completions(struct fr_call *call)
{
    if (!check_model(call)) return;
    unsigned max;
    if (!max_tokens(call, &max)) return;
    struct buf all = BUF_INIT, first = BUF_INIT;
    size_t items;
    if (!input_text(json_object_get(call->body, "prompt"), &all, &first, &items)) {
        buf_free(&all);
        buf_free(&first);
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "'prompt' must be a string, an array of strings or of token arrays.");
        return;
    }
    unsigned prompt_tokens = fr_tokens(fr_utf8_len(all.p, all.n));
    struct slice text = hello(call, buf_slice(&first));
    buf_free(&all);
    buf_free(&first);
    const char *finish = apply_max_tokens(&text, max);
    size_t cps = fr_utf8_len(text.p, text.n);
    unsigned completion_tokens = fr_tokens(cps);

    char id[48];
    snprintf(id, sizeof id, "cmpl-fakerelay-%" PRIu64, call->seq);
    json_int_t created = now_s();
    const char *fp = fingerprint(call);

    if (!call->stream) {
        json_t *choice = json_pack("{s:s#, s:i, s:n, s:s}", "text", text.p, text.n, "index",
                                   (json_int_t)0, "logprobs", "finish_reason", finish);
        send_json(call, json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", id, "object",
                                  "text_completion", "created", created, "model", call->model,
                                  "system_fingerprint", fp, "choices", choice, "usage",
                                  usage_json(prompt_tokens, completion_tokens)));
        return;
    }
    size_t n = call->chunks ? call->chunks : 1;
    struct fr_reply *r = stream_reply(call, n + 3); /* contents, finish, [usage], [DONE] */
    if (!r) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    size_t k = 0;
    for (size_t c = 0; c <= n; c++) {
        struct slice p = c < n ? part_of(text, cps, c, n) : SLICE_LIT("");
        json_t *fin = c < n ? json_null() : json_string(finish);
        json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:s#, s:i, s:n, s:o}]}", "id", id,
                                  "object", "text_completion", "created", created, "model",
                                  call->model, "system_fingerprint", fp, "choices", "text", p.p,
                                  p.n, "index", (json_int_t)0, "logprobs", "finish_reason", fin);
        r->frames[k++] = fr_json_dump(call, chunk);
    }
    if (call->include_usage)
        r->frames[k++] = fr_json_dump(
            call, json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", id, "object",
                            "text_completion", "created", created, "model", call->model, "choices",
                            "usage", usage_json(prompt_tokens, completion_tokens)));
    r->frames[k++] = SLICE_LIT("[DONE]");
    r->n_frames = k;
    r->first_content = 0;
    r->n_content = n;
    fr_reply_send(call, r);
}

/* ---- POST /v1/embeddings ---- */

/* Deterministic unit vector of `dim` values from the bytes of `s` (FNV-1a seed, then
 * xorshift64*), written to `out`. */
static void embed(struct slice s, unsigned dim, double *out)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s.n; i++) h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    if (h == 0) h = 1;
    double norm = 0;
    for (unsigned i = 0; i < dim; i++) {
        h ^= h >> 12, h ^= h << 25, h ^= h >> 27;
        uint64_t r = h * 2685821657736338717ull;
        out[i] = (double)(r >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
        norm += out[i] * out[i];
    }
    norm = sqrt(norm);
    for (unsigned i = 0; i < dim; i++) out[i] = norm > 0 ? out[i] / norm : 0;
}

/* The floats as little-endian float32 bytes in base64 (OpenAI's encoding_format). */
static char *base64_floats(pool_t *pool, const double *v, unsigned dim)
{
    unsigned char *raw = pool_alloc(pool, (size_t)dim * 4);
    if (!raw) return NULL;
    for (unsigned i = 0; i < dim; i++) {
        float f = (float)v[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int b = 0; b < 4; b++) raw[i * 4 + b] = (unsigned char)(u >> (8 * b));
    }
    return fr_base64(pool, raw, (size_t)dim * 4);
}

static void embeddings(struct fr_call *call)
{
    if (!check_model(call)) return;
    unsigned dim = call->cfg->embedding_dim;
    json_t *d = json_object_get(call->body, "dimensions");
    if (d && !json_is_null(d)) {
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 65536) {
            fr_reply_error(call, 400, "invalid_request_error", "invalid_value",
                           "'dimensions' must be an integer between 1 and 65536.");
            return;
        }
        dim = (unsigned)json_integer_value(d);
    }
    bool b64 = false;
    json_t *fmt = json_object_get(call->body, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
            fr_reply_error(call, 400, "invalid_request_error", "invalid_value",
                           "'encoding_format' must be \"float\" or \"base64\".");
            return;
        }
        b64 = strcmp(f, "base64") == 0;
    }
    json_t *in = json_object_get(call->body, "input");
    struct buf all = BUF_INIT, first = BUF_INIT;
    size_t items;
    bool ok = input_text(in, &all, &first, &items);
    unsigned tokens = fr_tokens(fr_utf8_len(all.p, all.n));
    buf_free(&all);
    buf_free(&first);
    if (!ok) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "'input' must be a string, an array of strings or of token arrays.");
        return;
    }
    double *v = pool_alloc(call->req->pool, (size_t)dim * sizeof *v);
    json_t *data = json_array();
    if (!v || !data) {
        json_decref(data);
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    /* A single string or token array is one input; otherwise one per array item. */
    bool single = json_is_string(in) || json_is_integer(json_array_get(in, 0));
    for (size_t i = 0; i < items; i++) {
        json_t *item = single ? in : json_array_get(in, i);
        char *text = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        embed(slice_from(text), dim, v);
        free(text);
        json_t *emb;
        if (b64) {
            char *s = base64_floats(call->req->pool, v, dim);
            emb = s ? json_string(s) : json_null();
        } else {
            emb = json_array();
            for (unsigned k = 0; k < dim; k++) json_array_append_new(emb, json_real(v[k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:i, s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
    }
    send_json(call, json_pack("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data,
                              "model", call->model, "usage", "prompt_tokens", (json_int_t)tokens,
                              "total_tokens", (json_int_t)tokens));
}

/* ---- POST /v1/images/generations ---- */

static void images(struct fr_call *call)
{
    json_t *prompt = json_object_get(call->body, "prompt");
    if (!json_is_string(prompt)) {
        fr_reply_error(call, 400, "invalid_request_error", NULL, "'prompt' must be a string.");
        return;
    }
    if (call->model && !model_known(call->cfg, call->model)) {
        check_model(call);
        return;
    }
    json_int_t n = 1;
    json_t *jn = json_object_get(call->body, "n");
    if (jn && !json_is_null(jn)) {
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 || json_integer_value(jn) > 10) {
            fr_reply_error(call, 400, "invalid_request_error", "invalid_value",
                           "'n' must be an integer between 1 and 10.");
            return;
        }
        n = json_integer_value(jn);
    }
    bool b64 = false;
    json_t *fmt = json_object_get(call->body, "response_format");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "url") != 0 && strcmp(f, "b64_json") != 0)) {
            fr_reply_error(call, 400, "invalid_request_error", "invalid_value",
                           "'response_format' must be \"url\" or \"b64_json\".");
            return;
        }
        b64 = strcmp(f, "b64_json") == 0;
    }
    const char *value;
    if (b64) {
        value = fr_base64(call->req->pool, fr_png, fr_png_len);
        if (!value) {
            fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
            return;
        }
    } else {
        struct slice host = http_request_header(call->req, "host");
        value = host.p ? pool_printf(call->req->pool, "http://%.*s/_fake/image.png",
                                     (int)(host.n > 200 ? 200 : host.n), host.p)
                       : pool_printf(call->req->pool, "http://%s:%d/_fake/image.png",
                                     call->cfg->host, call->worker->app->port);
    }
    json_t *data = json_array();
    for (json_int_t i = 0; i < n; i++)
        json_array_append_new(data, json_pack("{s:s, s:o}", b64 ? "b64_json" : "url", value,
                                              "revised_prompt", json_incref(prompt)));
    send_json(call, json_pack("{s:I, s:o}", "created", now_s(), "data", data));
}

static const struct fr_route routes[] = {
    {"GET", "/v1/models", models, false, 0},
    {"POST", "/v1/chat/completions", chat, true, FR_FORMAT_CHAT},
    {"POST", "/v1/completions", completions, true, FR_FORMAT_CHAT},
    {"POST", "/v1/embeddings", embeddings, true, FR_FORMAT_CHAT},
    {"POST", "/v1/images/generations", images, true, FR_FORMAT_CHAT},
};

const struct fr_surface fr_openai_surface = {
    .name = "openai",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .shape = FR_SHAPE_OPENAI,
};
