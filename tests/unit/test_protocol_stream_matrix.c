/* test_protocol_stream_matrix.c — every upstream × client pairing of the stream converters
 * (Chat, Messages, Responses upstreams × Chat, Messages, Responses, Completions clients,
 * same-format pairs included) on the same scenarios: text, text + a tool call whose
 * arguments come in many fragments, parallel tool calls, thinking with a signature then
 * text, an upstream error mid-stream, an upstream cut after some text and one before any.
 *
 * Each scenario is a small script; a generator writes it as the upstream format's real
 * event sequence, and a folder per client format reads the converted stream back the way
 * the official SDKs do, checking the protocol rules on the way (Chat: dense tool indexes,
 * [DONE] last and never after an error; Messages: message_start first, content indexes in
 * order, every block stopped, message_stop last; Responses: sequence numbers, output
 * indexes, `*.done` texts equal to the deltas, response.completed listing exactly the done
 * items). The folded result is then compared with what the script said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "stream_test_util.h"

/* ---- scripts ---------------------------------------------------------------------- */

enum op_kind { OP_TEXT, OP_THINK, OP_SIG, OP_TOOL, OP_ARGS, OP_FINISH, OP_ERROR, OP_END };

struct op {
    enum op_kind k;
    const char *a, *b;
};

struct scenario {
    const char *name;
    struct op ops[40];
};

#define TOOL_ARGS_1 "{\"city\": \"Paris\", \"days\": 3}"

static const struct scenario scenarios[] = {
    {"text",
     {{OP_TEXT, "Hel", 0},
      {OP_TEXT, "lo, ", 0},
      {OP_TEXT, "world", 0},
      {OP_FINISH, "stop", 0},
      {OP_END, 0, 0}}},
    {"tool",
     {{OP_TEXT, "Let me look.", 0},
      {OP_TOOL, "call_1", "get_weather"},
      {OP_ARGS, "{\"ci", 0},
      {OP_ARGS, "ty\": ", 0},
      {OP_ARGS, "\"Pa", 0},
      {OP_ARGS, "ris\"", 0},
      {OP_ARGS, ", \"da", 0},
      {OP_ARGS, "ys\": ", 0},
      {OP_ARGS, "3}", 0},
      {OP_FINISH, "tool", 0},
      {OP_END, 0, 0}}},
    {"parallel",
     {{OP_TOOL, "call_A", "get_weather"},
      {OP_ARGS, "{\"city\":", 0},
      {OP_ARGS, "\"Paris\"}", 0},
      {OP_TOOL, "call_B", "get_time"},
      {OP_ARGS, "{\"tz\":\"Eur", 0},
      {OP_ARGS, "ope/Rome\"}", 0},
      {OP_FINISH, "tool", 0},
      {OP_END, 0, 0}}},
    {"thinking",
     {{OP_THINK, "Let me ", 0},
      {OP_THINK, "think.", 0},
      {OP_SIG, "SIG123", 0},
      {OP_TEXT, "Answer.", 0},
      {OP_FINISH, "stop", 0},
      {OP_END, 0, 0}}},
    {"error", {{OP_TEXT, "Partial", 0}, {OP_ERROR, "Overloaded", 0}, {OP_END, 0, 0}}},
    {"cut", {{OP_TEXT, "Partial", 0}, {OP_END, 0, 0}}},
    {"cut_empty", {{OP_END, 0, 0}}},
};

/* ---- generators ------------------------------------------------------------------- */

static void add_json(struct sse_list *l, const char *name, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    sse_list_add(l, name, name ? strlen(name) : 0, s, strlen(s));
    free(s);
    json_decref(j);
}

static void gen_messages(const struct scenario *sc, struct sse_list *l)
{
    add_json(l, "message_start",
             json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i,s:i,s:i}}}", "type",
                       "message_start", "message", "id", "msg_up1", "type", "message", "role",
                       "assistant", "model", "up-model", "content", "stop_reason", "stop_sequence",
                       "usage", "input_tokens", 6, "cache_read_input_tokens", 4,
                       "cache_creation_input_tokens", 0, "output_tokens", 1));
    add_json(l, "ping", json_pack("{s:s}", "type", "ping"));
    int idx = -1;
    enum op_kind cur = OP_END; /* OP_TEXT, OP_THINK, OP_TOOL or OP_END for none */
#define STOP_CUR()                                                                                 \
    do {                                                                                           \
        if (cur != OP_END)                                                                         \
            add_json(l, "content_block_stop",                                                      \
                     json_pack("{s:s,s:i}", "type", "content_block_stop", "index", idx));          \
        cur = OP_END;                                                                              \
    } while (0)
    for (const struct op *o = sc->ops;; o++) {
        switch (o->k) {
        case OP_TEXT:
        case OP_THINK:
            if (cur != o->k) {
                STOP_CUR();
                idx++;
                cur = o->k;
                add_json(l, "content_block_start",
                         o->k == OP_TEXT
                             ? json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start",
                                         "index", idx, "content_block", "type", "text", "text", "")
                             : json_pack("{s:s,s:i,s:{s:s,s:s,s:s}}", "type", "content_block_start",
                                         "index", idx, "content_block", "type", "thinking",
                                         "thinking", "", "signature", ""));
            }
            add_json(l, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
                               "delta", "type", o->k == OP_TEXT ? "text_delta" : "thinking_delta",
                               o->k == OP_TEXT ? "text" : "thinking", o->a));
            break;
        case OP_SIG:
            add_json(l, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
                               "delta", "type", "signature_delta", "signature", o->a));
            break;
        case OP_TOOL:
            STOP_CUR();
            idx++;
            cur = OP_TOOL;
            add_json(l, "content_block_start",
                     json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start",
                               "index", idx, "content_block", "type", "tool_use", "id", o->a,
                               "name", o->b, "input"));
            add_json(l, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
                               "delta", "type", "input_json_delta", "partial_json", ""));
            break;
        case OP_ARGS:
            add_json(l, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", idx,
                               "delta", "type", "input_json_delta", "partial_json", o->a));
            break;
        case OP_FINISH:
            STOP_CUR();
            add_json(l, "message_delta",
                     json_pack("{s:s,s:{s:s,s:n},s:{s:i}}", "type", "message_delta", "delta",
                               "stop_reason", strcmp(o->a, "tool") ? "end_turn" : "tool_use",
                               "stop_sequence", "usage", "output_tokens", 5));
            add_json(l, "message_stop", json_pack("{s:s}", "type", "message_stop"));
            break;
        case OP_ERROR:
            add_json(l, "error",
                     json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                               "overloaded_error", "message", o->a));
            break;
        case OP_END:
            return;
        }
    }
#undef STOP_CUR
}

static json_t *chat_chunk(json_t *delta, const char *finish)
{
    return json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:n,s:s?}],s:n}", "id", "chatcmpl-up1", "object",
                     "chat.completion.chunk", "created", 1767225599, "model", "up-model", "choices",
                     "index", 0, "delta", delta, "logprobs", "finish_reason", finish, "usage");
}

static void gen_chat(const struct scenario *sc, struct sse_list *l)
{
    add_json(l, NULL, chat_chunk(json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL));
    int tool = -1;
    for (const struct op *o = sc->ops;; o++) {
        switch (o->k) {
        case OP_TEXT:
            add_json(l, NULL, chat_chunk(json_pack("{s:s}", "content", o->a), NULL));
            break;
        case OP_THINK:
            add_json(l, NULL, chat_chunk(json_pack("{s:s}", "reasoning_content", o->a), NULL));
            break;
        case OP_SIG:
            break; /* Chat has no signatures */
        case OP_TOOL:
            tool++;
            add_json(l, NULL,
                     chat_chunk(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index",
                                          tool, "id", o->a, "type", "function", "function", "name",
                                          o->b, "arguments", ""),
                                NULL));
            break;
        case OP_ARGS:
            add_json(l, NULL,
                     chat_chunk(json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", tool,
                                          "function", "arguments", o->a),
                                NULL));
            break;
        case OP_FINISH:
            add_json(l, NULL,
                     chat_chunk(json_object(), strcmp(o->a, "tool") ? "stop" : "tool_calls"));
            add_json(l, NULL,
                     json_pack("{s:s,s:s,s:i,s:s,s:[],s:{s:i,s:i,s:i,s:{s:i}}}", "id",
                               "chatcmpl-up1", "object", "chat.completion.chunk", "created",
                               1767225599, "model", "up-model", "choices", "usage", "prompt_tokens",
                               10, "completion_tokens", 5, "total_tokens", 15,
                               "prompt_tokens_details", "cached_tokens", 4));
            sse_list_add(l, NULL, 0, "[DONE]", 6);
            break;
        case OP_ERROR:
            add_json(l, NULL,
                     json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", o->a, "type",
                               "server_error", "param", "code"));
            break;
        case OP_END:
            return;
        }
    }
}

struct gen_c {
    struct sse_list *l;
    int seq, n_items;
    enum op_kind cur; /* OP_TEXT (message), OP_THINK (reasoning), OP_TOOL, OP_END none */
    char item_id[32], call_id[32], name[32], acc[256], enc[64];
    json_t *output;
};

static void c_event(struct gen_c *g, const char *type, json_t *j)
{
    json_object_set_new(j, "type", json_string(type));
    json_object_set_new(j, "sequence_number", json_integer(g->seq++));
    add_json(g->l, type, j);
}

static void c_close(struct gen_c *g)
{
    int oi = g->n_items - 1;
    json_t *item = NULL;
    switch (g->cur) {
    case OP_TEXT:
        c_event(g, "response.output_text.done",
                json_pack("{s:s,s:i,s:i,s:s}", "item_id", g->item_id, "output_index", oi,
                          "content_index", 0, "text", g->acc));
        item = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:[]}]}", "id", g->item_id, "type",
                         "message", "status", "completed", "role", "assistant", "content", "type",
                         "output_text", "text", g->acc, "annotations");
        break;
    case OP_THINK:
        c_event(g, "response.reasoning_summary_text.done",
                json_pack("{s:s,s:i,s:i,s:s}", "item_id", g->item_id, "output_index", oi,
                          "summary_index", 0, "text", g->acc));
        item = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "id", g->item_id, "type", "reasoning",
                         "summary", "type", "summary_text", "text", g->acc);
        if (g->enc[0]) json_object_set_new(item, "encrypted_content", json_string(g->enc));
        break;
    case OP_TOOL:
        c_event(g, "response.function_call_arguments.done",
                json_pack("{s:s,s:i,s:s}", "item_id", g->item_id, "output_index", oi, "arguments",
                          g->acc));
        item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", g->item_id, "type", "function_call",
                         "status", "completed", "call_id", g->call_id, "name", g->name, "arguments",
                         g->acc);
        break;
    default:
        return;
    }
    json_array_append(g->output, item);
    c_event(g, "response.output_item.done",
            json_pack("{s:i,s:o}", "output_index", oi, "item", item));
    g->cur = OP_END;
    g->acc[0] = g->enc[0] = 0;
}

static void c_open(struct gen_c *g, enum op_kind kind, const struct op *o)
{
    c_close(g);
    g->cur = kind;
    int oi = g->n_items++;
    json_t *item;
    if (kind == OP_TEXT) {
        snprintf(g->item_id, sizeof g->item_id, "msg_up%d", oi);
        item = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "id", g->item_id, "type", "message", "status",
                         "in_progress", "role", "assistant", "content");
    } else if (kind == OP_THINK) {
        snprintf(g->item_id, sizeof g->item_id, "rs_up%d", oi);
        item = json_pack("{s:s,s:s,s:[]}", "id", g->item_id, "type", "reasoning", "summary");
    } else {
        snprintf(g->item_id, sizeof g->item_id, "fc_up%d", oi);
        snprintf(g->call_id, sizeof g->call_id, "%s", o->a);
        snprintf(g->name, sizeof g->name, "%s", o->b);
        item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", g->item_id, "type", "function_call",
                         "status", "in_progress", "call_id", o->a, "name", o->b, "arguments", "");
    }
    c_event(g, "response.output_item.added",
            json_pack("{s:i,s:o}", "output_index", oi, "item", item));
    if (kind == OP_TEXT)
        c_event(g, "response.content_part.added",
                json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", g->item_id, "output_index",
                          oi, "content_index", 0, "part", "type", "output_text", "text", "",
                          "annotations"));
    if (kind == OP_THINK)
        c_event(g, "response.reasoning_summary_part.added",
                json_pack("{s:s,s:i,s:i,s:{s:s,s:s}}", "item_id", g->item_id, "output_index", oi,
                          "summary_index", 0, "part", "type", "summary_text", "text", ""));
}

static void gen_responses(const struct scenario *sc, struct sse_list *l)
{
    struct gen_c g = {.l = l, .cur = OP_END, .output = json_array()};
    json_t *resp = json_pack("{s:s,s:s,s:i,s:s,s:s,s:[],s:n}", "id", "resp_up1", "object",
                             "response", "created_at", 1767225590, "status", "in_progress", "model",
                             "up-model", "output", "usage");
    c_event(&g, "response.created", json_pack("{s:O}", "response", resp));
    c_event(&g, "response.in_progress", json_pack("{s:O}", "response", resp));
    for (const struct op *o = sc->ops;; o++) {
        int oi = g.n_items - 1;
        switch (o->k) {
        case OP_TEXT:
            if (g.cur != OP_TEXT) c_open(&g, OP_TEXT, o), oi = g.n_items - 1;
            strcat(g.acc, o->a);
            c_event(&g, "response.output_text.delta",
                    json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", g.item_id, "output_index", oi,
                              "content_index", 0, "delta", o->a, "logprobs"));
            break;
        case OP_THINK:
            if (g.cur != OP_THINK) c_open(&g, OP_THINK, o), oi = g.n_items - 1;
            strcat(g.acc, o->a);
            c_event(&g, "response.reasoning_summary_text.delta",
                    json_pack("{s:s,s:i,s:i,s:s}", "item_id", g.item_id, "output_index", oi,
                              "summary_index", 0, "delta", o->a));
            break;
        case OP_SIG:
            snprintf(g.enc, sizeof g.enc, "%s", o->a);
            break;
        case OP_TOOL:
            c_open(&g, OP_TOOL, o);
            break;
        case OP_ARGS:
            strcat(g.acc, o->a);
            c_event(&g, "response.function_call_arguments.delta",
                    json_pack("{s:s,s:i,s:s}", "item_id", g.item_id, "output_index", oi, "delta",
                              o->a));
            break;
        case OP_FINISH: {
            c_close(&g);
            json_t *done = json_deep_copy(resp);
            json_object_set_new(done, "status", json_string("completed"));
            json_object_set(done, "output", g.output);
            json_object_set_new(done, "usage",
                                json_pack("{s:i,s:{s:i},s:i,s:{s:i},s:i}", "input_tokens", 10,
                                          "input_tokens_details", "cached_tokens", 4,
                                          "output_tokens", 5, "output_tokens_details",
                                          "reasoning_tokens", 0, "total_tokens", 15));
            c_event(&g, "response.completed", json_pack("{s:o}", "response", done));
            break;
        }
        case OP_ERROR: {
            json_t *failed = json_deep_copy(resp);
            json_object_set_new(failed, "status", json_string("failed"));
            json_object_set_new(failed, "error",
                                json_pack("{s:s,s:s}", "code", "server_error", "message", o->a));
            c_event(&g, "response.failed", json_pack("{s:o}", "response", failed));
            break;
        }
        case OP_END:
            json_decref(resp);
            json_decref(g.output);
            return;
        }
    }
}

/* ---- folders ---------------------------------------------------------------------- */

struct fold_tool {
    char id[64], name[64], args[512];
};

struct fold {
    char text[512], thinking[512], sig[256];
    struct fold_tool tools[8];
    int n_tools;
    char finish[40];
    long in, out, cache_read;
    bool usage, error, terminal;
    char error_msg[128];
    char violation[400];
};

static void violate(struct fold *f, const char *fmt, ...)
{
    if (f->violation[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->violation, sizeof f->violation, fmt, ap);
    va_end(ap);
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void cat(char *dst, size_t cap, const char *s)
{
    if (s) strncat(dst, s, cap - strlen(dst) - 1);
}

/* Chat chunks (and legacy Completions when `legacy`). */
static void fold_chat(const struct sse_list *l, bool legacy, bool include_usage, struct fold *f)
{
    bool finished = false;
    for (size_t i = 0; i < l->n; i++) {
        const struct sse_ev *e = &l->v[i];
        if (e->name) violate(f, "event %zu has an event name", i);
        if (f->terminal || f->error) violate(f, "event %zu after the end", i);
        if (!strcmp(e->data, "[DONE]")) {
            f->terminal = true;
            if (include_usage && !f->usage) violate(f, "[DONE] without the usage chunk");
            if (!finished) violate(f, "[DONE] without a finish_reason");
            continue;
        }
        json_t *j = json_loads(e->data, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
            violate(f, "event %zu: not a JSON object", i);
            json_decref(j);
            continue;
        }
        json_t *err = json_object_get(j, "error");
        if (err) {
            f->error = true;
            cat(f->error_msg, sizeof f->error_msg, jstr(err, "message"));
            if (!jstr(err, "type")) violate(f, "error without type");
            json_decref(j);
            continue;
        }
        const char *obj = jstr(j, "object");
        if (!obj || strcmp(obj, legacy ? "text_completion" : "chat.completion.chunk"))
            violate(f, "event %zu: object %s", i, obj ? obj : "(none)");
        if (!jstr(j, "id") || !jstr(j, "model") || jint(j, "created") < 0)
            violate(f, "event %zu: id/model/created missing", i);
        if (include_usage != (json_object_get(j, "usage") != NULL))
            violate(f, "event %zu: usage key presence wrong", i);
        json_t *choices = json_object_get(j, "choices");
        json_t *u = json_object_get(j, "usage");
        if (json_is_object(u)) {
            if (json_array_size(choices) != 0) violate(f, "usage chunk with choices");
            f->usage = true;
            f->in = jint(u, "prompt_tokens");
            f->out = jint(u, "completion_tokens");
            f->cache_read = jint(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
        }
        for (size_t c = 0; c < json_array_size(choices); c++) {
            json_t *ch = json_array_get(choices, c);
            if (jint(ch, "index") != 0) violate(f, "choice index");
            if (finished) violate(f, "event %zu after finish_reason", i);
            if (legacy) {
                cat(f->text, sizeof f->text, jstr(ch, "text"));
            } else {
                json_t *d = json_object_get(ch, "delta");
                if (!json_is_object(d)) violate(f, "event %zu: no delta", i);
                cat(f->text, sizeof f->text, jstr(d, "content"));
                cat(f->thinking, sizeof f->thinking, jstr(d, "reasoning_content"));
                json_t *tcs = json_object_get(d, "tool_calls");
                for (size_t t = 0; t < json_array_size(tcs); t++) {
                    json_t *tc = json_array_get(tcs, t);
                    long idx = jint(tc, "index");
                    json_t *fn = json_object_get(tc, "function");
                    if (idx == f->n_tools && f->n_tools < 8) {
                        if (!jstr(tc, "id") || !jstr(fn, "name"))
                            violate(f, "first tool chunk without id or name");
                        cat(f->tools[idx].id, 64, jstr(tc, "id"));
                        cat(f->tools[idx].name, 64, jstr(fn, "name"));
                        f->n_tools++;
                    } else if (idx < 0 || idx > f->n_tools) {
                        violate(f, "tool index %ld not dense", idx);
                        continue;
                    }
                    cat(f->tools[idx].args, 512, jstr(fn, "arguments"));
                }
            }
            const char *fr = jstr(ch, "finish_reason");
            if (fr) {
                finished = true;
                snprintf(f->finish, sizeof f->finish, "%s", fr);
            }
        }
        json_decref(j);
    }
}

static void fold_messages(const struct sse_list *l, struct fold *f)
{
    char kinds[16][24] = {{0}};
    bool open[16] = {0};
    int n_blocks = 0;
    bool delta_seen = false;
    for (size_t i = 0; i < l->n; i++) {
        const struct sse_ev *e = &l->v[i];
        json_t *j = json_loads(e->data, JSON_REJECT_DUPLICATES, NULL);
        const char *type = jstr(j, "type");
        if (!type || !e->name || strcmp(type, e->name)) {
            violate(f, "event %zu: name/type mismatch", i);
            json_decref(j);
            continue;
        }
        if (f->terminal || f->error) violate(f, "event %zu after the end", i);
        if (i == 0 && strcmp(type, "message_start") && strcmp(type, "error"))
            violate(f, "first event is %s", type);
        long idx = jint(j, "index");
        if (!strcmp(type, "message_start")) {
            json_t *m = json_object_get(j, "message");
            if (!jstr(m, "id") || !jstr(m, "model")) violate(f, "message_start without id/model");
        } else if (!strcmp(type, "content_block_start")) {
            if (idx != n_blocks || n_blocks >= 16) {
                violate(f, "block index %ld, expected %d", idx, n_blocks);
            } else {
                json_t *cb = json_object_get(j, "content_block");
                cat(kinds[idx], 24, jstr(cb, "type"));
                open[idx] = true;
                n_blocks++;
                if (!strcmp(kinds[idx], "tool_use") && f->n_tools < 8) {
                    cat(f->tools[f->n_tools].id, 64, jstr(cb, "id"));
                    cat(f->tools[f->n_tools].name, 64, jstr(cb, "name"));
                    f->n_tools++;
                }
            }
        } else if (!strcmp(type, "content_block_delta")) {
            json_t *d = json_object_get(j, "delta");
            const char *dt = jstr(d, "type");
            if (idx < 0 || idx >= n_blocks || !open[idx]) {
                violate(f, "delta for block %ld which is not open", idx);
            } else if (!strcmp(dt, "text_delta") && !strcmp(kinds[idx], "text")) {
                cat(f->text, sizeof f->text, jstr(d, "text"));
            } else if (!strcmp(dt, "thinking_delta") && !strcmp(kinds[idx], "thinking")) {
                cat(f->thinking, sizeof f->thinking, jstr(d, "thinking"));
            } else if (!strcmp(dt, "signature_delta") && !strcmp(kinds[idx], "thinking")) {
                cat(f->sig, sizeof f->sig, jstr(d, "signature"));
            } else if (!strcmp(dt, "input_json_delta") && !strcmp(kinds[idx], "tool_use")) {
                const char *pj = jstr(d, "partial_json");
                if (!pj || !*pj) violate(f, "empty partial_json sent");
                int t = 0;
                for (long k = 0; k < idx; k++) t += !strcmp(kinds[k], "tool_use");
                cat(f->tools[t].args, 512, pj);
            } else {
                violate(f, "delta %s into a %s block", dt, kinds[idx]);
            }
            if (dt && (!strcmp(dt, "text_delta") || !strcmp(dt, "thinking_delta"))) {
                const char *v = jstr(d, !strcmp(dt, "text_delta") ? "text" : "thinking");
                if (!v || !*v) violate(f, "empty delta sent");
            }
        } else if (!strcmp(type, "content_block_stop")) {
            if (idx < 0 || idx >= n_blocks || !open[idx])
                violate(f, "stop of block %ld which is not open", idx);
            else
                open[idx] = false;
        } else if (!strcmp(type, "message_delta")) {
            for (int b = 0; b < n_blocks; b++)
                if (open[b]) violate(f, "message_delta with block %d open", b);
            delta_seen = true;
            cat(f->finish, sizeof f->finish, jstr(json_object_get(j, "delta"), "stop_reason"));
            json_t *u = json_object_get(j, "usage");
            f->usage = true;
            f->cache_read = jint(u, "cache_read_input_tokens");
            f->in =
                jint(u, "input_tokens") + f->cache_read + jint(u, "cache_creation_input_tokens");
            f->out = jint(u, "output_tokens");
        } else if (!strcmp(type, "message_stop")) {
            if (!delta_seen) violate(f, "message_stop without message_delta");
            f->terminal = true;
        } else if (!strcmp(type, "error")) {
            f->error = true;
            json_t *err = json_object_get(j, "error");
            cat(f->error_msg, sizeof f->error_msg, jstr(err, "message"));
            if (!jstr(err, "type")) violate(f, "error without type");
        } else {
            violate(f, "unexpected event %s", type);
        }
        json_decref(j);
    }
}

static void fold_responses(const struct sse_list *l, struct fold *f)
{
    json_t *done = json_array();
    char ids[16][64] = {{0}};
    char acc[16][512] = {{0}};
    int n_items = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct sse_ev *e = &l->v[i];
        json_t *j = json_loads(e->data, JSON_REJECT_DUPLICATES, NULL);
        const char *type = jstr(j, "type");
        if (!type || !e->name || strcmp(type, e->name)) {
            violate(f, "event %zu: name/type mismatch", i);
            json_decref(j);
            continue;
        }
        if (jint(j, "sequence_number") != (long)i) violate(f, "event %zu: sequence_number", i);
        if (f->terminal || (f->error && strcmp(type, "response.failed")))
            violate(f, "event %zu (%s) after the end", i, type);
        if (i == 0 && strcmp(type, "response.created")) violate(f, "first event is %s", type);
        long oi = jint(j, "output_index");
        const char *item_id = jstr(j, "item_id");
        bool item_ok = oi >= 0 && oi < n_items && (!item_id || !strcmp(item_id, ids[oi]));
        json_t *item = json_object_get(j, "item");
        if (!strcmp(type, "response.output_item.added")) {
            if (oi != n_items || n_items >= 16)
                violate(f, "output_index %ld, expected %d", oi, n_items);
            else
                cat(ids[n_items++], 64, jstr(item, "id"));
        } else if (!strcmp(type, "response.output_text.delta") ||
                   !strcmp(type, "response.reasoning_summary_text.delta") ||
                   !strcmp(type, "response.function_call_arguments.delta")) {
            if (!item_ok)
                violate(f, "%s for an unknown item", type);
            else
                cat(acc[oi], 512, jstr(j, "delta"));
            if (!strcmp(type, "response.output_text.delta")) cat(f->text, 512, jstr(j, "delta"));
            if (!strcmp(type, "response.reasoning_summary_text.delta"))
                cat(f->thinking, 512, jstr(j, "delta"));
        } else if (!strcmp(type, "response.output_text.done") ||
                   !strcmp(type, "response.reasoning_summary_text.done")) {
            if (!item_ok || strcmp(jstr(j, "text") ? jstr(j, "text") : "", acc[oi]))
                violate(f, "%s text differs from the deltas", type);
        } else if (!strcmp(type, "response.function_call_arguments.done")) {
            const char *a = jstr(j, "arguments");
            if (!item_ok || !a || (strcmp(a, acc[oi]) && !(acc[oi][0] == 0 && !strcmp(a, "{}"))))
                violate(f, "arguments.done differs from the deltas");
        } else if (!strcmp(type, "response.output_item.done")) {
            if (oi < 0 || oi >= n_items ||
                strcmp(jstr(item, "id") ? jstr(item, "id") : "", ids[oi]))
                violate(f, "output_item.done for an unknown item");
            json_array_append(done, item);
            const char *it = jstr(item, "type");
            if (it && !strcmp(it, "function_call") && f->n_tools < 8) {
                struct fold_tool *t = &f->tools[f->n_tools++];
                cat(t->id, 64, jstr(item, "call_id"));
                cat(t->name, 64, jstr(item, "name"));
                cat(t->args, 512, jstr(item, "arguments"));
                if (strncmp(jstr(item, "id") ? jstr(item, "id") : "", "fc", 2))
                    violate(f, "function_call item id must start with fc");
            }
            if (it && !strcmp(it, "reasoning")) cat(f->sig, 256, jstr(item, "encrypted_content"));
            if (it && !strcmp(it, "message")) {
                json_t *parts = json_object_get(item, "content");
                if (json_array_size(parts) == 0) violate(f, "message item without content");
                if (!jstr(item, "status")) violate(f, "message item without status");
            }
        } else if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) {
            json_t *r = json_object_get(j, "response");
            if (!json_equal(json_object_get(r, "output"), done))
                violate(f, "response.completed output differs from the done items");
            cat(f->finish, sizeof f->finish, jstr(r, "status"));
            json_t *u = json_object_get(r, "usage");
            f->usage = json_is_object(u);
            f->in = jint(u, "input_tokens");
            f->out = jint(u, "output_tokens");
            f->cache_read = jint(json_object_get(u, "input_tokens_details"), "cached_tokens");
            f->terminal = true;
        } else if (!strcmp(type, "error")) {
            f->error = true;
            cat(f->error_msg, sizeof f->error_msg, jstr(j, "message"));
            if (!jstr(j, "code")) violate(f, "error without code");
        } else if (!strcmp(type, "response.failed")) {
            if (!f->error) violate(f, "response.failed without error event");
            json_t *r = json_object_get(j, "response");
            if (strcmp(jstr(r, "status") ? jstr(r, "status") : "", "failed"))
                violate(f, "response.failed status");
        } else if (!strcmp(type, "response.created") || !strcmp(type, "response.in_progress")) {
            json_t *r = json_object_get(j, "response");
            if (!jstr(r, "id") || strncmp(jstr(r, "id"), "resp_", 5)) violate(f, "response id");
        } else if (strcmp(type, "response.content_part.added") &&
                   strcmp(type, "response.content_part.done") &&
                   strcmp(type, "response.reasoning_summary_part.added") &&
                   strcmp(type, "response.reasoning_summary_part.done")) {
            violate(f, "unexpected event %s", type);
        }
        json_decref(j);
    }
    json_decref(done);
}

/* ---- the matrix ------------------------------------------------------------------- */

static const char *fmt_name[] = {"chat", "messages", "responses", "completions"};

static void generate(enum api_format up, const struct scenario *sc, struct sse_list *l)
{
    memset(l, 0, sizeof *l);
    if (up == API_CHAT) gen_chat(sc, l);
    if (up == API_MESSAGES) gen_messages(sc, l);
    if (up == API_RESPONSES) gen_responses(sc, l);
}

static bool has_op(const struct scenario *sc, enum op_kind k)
{
    for (const struct op *o = sc->ops; o->k != OP_END; o++)
        if (o->k == k) return true;
    return false;
}

static void expect_str(const char *what, const char *got, const char *want, const char *ctx)
{
    if (strcmp(got, want)) fail_msg("%s: %s is \"%s\", expected \"%s\"", ctx, what, got, want);
}

static void run_pair(enum api_format up, enum api_format client, const struct scenario *sc)
{
    char ctx[128];
    snprintf(ctx, sizeof ctx, "%s upstream → %s client, %s", fmt_name[up], fmt_name[client],
             sc->name);
    struct sse_list in;
    generate(up, sc, &in);

    struct ir_request req = {0};
    req.stream = true;
    req.include_usage = true;
    req.include_encrypted_reasoning = true;
    pool_t *pool = pool_create();
    struct conv *cv = test_conv(pool, client, up, &req, "client-model");
    struct buf out = BUF_INIT;
    int rc = feed_events(cv, &in, 0, in.n, &out);
    if (rc != 0) fail_msg("%s: conv_stream_event returned %d", ctx, rc);
    int end = conv_stream_end(cv, &out);

    /* split anywhere: the same bytes */
    for (size_t k = 0; k <= in.n; k++) {
        pool_t *p2 = pool_create();
        struct conv *c2 = test_conv(p2, client, up, &req, "client-model");
        struct buf a = BUF_INIT, b = BUF_INIT;
        assert_int_equal(feed_events(c2, &in, 0, k, &a), 0);
        assert_int_equal(feed_events(c2, &in, k, in.n, &b), 0);
        conv_stream_end(c2, &b);
        buf_append(&a, b.p, b.n);
        if (a.n != out.n || memcmp(a.p, out.p, out.n)) fail_msg("%s: split at %zu differs", ctx, k);
        buf_free(&a);
        buf_free(&b);
        pool_destroy(p2);
    }

    struct sse_list got;
    sse_list_parse(out.p, out.n, &got);
    struct fold f = {0};
    if (client == API_CHAT || client == API_COMPLETIONS)
        fold_chat(&got, client == API_COMPLETIONS, true, &f);
    else if (client == API_MESSAGES)
        fold_messages(&got, &f);
    else
        fold_responses(&got, &f);
    if (f.violation[0]) {
        print_events("output", &got);
        fail_msg("%s: %s", ctx, f.violation);
    }

    /* what the script said */
    char text[256] = "", thinking[256] = "";
    struct fold_tool tools[8];
    int n_tools = 0;
    memset(tools, 0, sizeof tools);
    for (const struct op *o = sc->ops; o->k != OP_END; o++) {
        if (o->k == OP_TEXT) strcat(text, o->a);
        if (o->k == OP_THINK) strcat(thinking, o->a);
        if (o->k == OP_TOOL) {
            strcpy(tools[n_tools].id, o->a);
            strcpy(tools[n_tools].name, o->b);
            n_tools++;
        }
        if (o->k == OP_ARGS) strcat(tools[n_tools - 1].args, o->a);
    }
    bool legacy = client == API_COMPLETIONS;
    expect_str("text", f.text, text, ctx);
    expect_str("thinking", f.thinking, legacy ? "" : thinking, ctx);
    if (f.n_tools != (legacy ? 0 : n_tools)) fail_msg("%s: %d tool calls", ctx, f.n_tools);
    for (int t = 0; t < f.n_tools; t++) {
        expect_str("tool id", f.tools[t].id, tools[t].id, ctx);
        expect_str("tool name", f.tools[t].name, tools[t].name, ctx);
        expect_str("tool arguments", f.tools[t].args, tools[t].args, ctx);
    }

    bool finishes = has_op(sc, OP_FINISH);
    bool errors = has_op(sc, OP_ERROR);
    bool cut_with_text = !finishes && !errors && text[0];
    /* A cut stream from a Chat upstream that produced content ends as a success (§5.2: a
     * Chat upstream may omit [DONE]); every other cut is an error. */
    bool success = finishes || (cut_with_text && up == API_CHAT);
    if (success) {
        if (!f.terminal || f.error) fail_msg("%s: expected a clean end", ctx);
        assert_int_equal(end, 0);
        assert_int_equal(conv_stream_status(cv, NULL, NULL), CONV_STREAM_COMPLETED);
        bool tool = n_tools > 0;
        const char *want_finish = client == API_CHAT        ? (tool ? "tool_calls" : "stop")
                                  : client == API_MESSAGES  ? (tool ? "tool_use" : "end_turn")
                                  : client == API_RESPONSES ? "completed"
                                                            : "stop";
        expect_str("finish", f.finish, want_finish, ctx);
        if (finishes) {
            if (!f.usage) fail_msg("%s: no usage", ctx);
            if (f.in != 10 || f.out != 5 || f.cache_read != 4)
                fail_msg("%s: usage in=%ld out=%ld cache_read=%ld", ctx, f.in, f.out, f.cache_read);
            assert_int_equal(cv->usage.input_total, 10);
            assert_int_equal(cv->usage.output_total, 5);
            assert_int_equal(cv->usage.cache_read, 4);
        }
    } else {
        if (f.terminal || !f.error) fail_msg("%s: expected an error and no clean end", ctx);
        assert_int_equal(end, -1);
        struct conv_error err;
        bool wrote;
        assert_int_equal(conv_stream_status(cv, &err, &wrote), CONV_STREAM_FAILED);
        /* something besides the error reached the client exactly when text did (or, for
         * the formats with a start event, the start did) */
        if (text[0] || client != API_COMPLETIONS)
            assert_true(wrote);
        else
            assert_false(wrote);
        if (errors) expect_str("error message", f.error_msg, "Overloaded", ctx);
        assert_true(err.status >= 500);
    }

    /* signatures */
    if (has_op(sc, OP_SIG)) {
        const char *want = "";
        if (client == API_MESSAGES && up == API_MESSAGES) want = "SIG123";
        if (client == API_MESSAGES && up == API_RESPONSES) want = "gw1:openai:rs_up0:SIG123";
        if (client == API_RESPONSES && up == API_MESSAGES) want = "gw1:anthropic:SIG123";
        if (client == API_RESPONSES && up == API_RESPONSES) want = "gw1:openai:rs_up0:SIG123";
        expect_str("signature", f.sig, want, ctx);
    }

    sse_list_free(&got);
    buf_free(&out);
    pool_destroy(pool);
    sse_list_free(&in);
}

static void test_scenario(void **state)
{
    const struct scenario *sc = *state;
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int client = API_CHAT; client <= API_COMPLETIONS; client++)
            run_pair((enum api_format)up, (enum api_format)client, sc);
}

int main(void)
{
    struct CMUnitTest tests[sizeof scenarios / sizeof *scenarios];
    size_t n = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
        tests[n++] = (struct CMUnitTest){scenarios[i].name, test_scenario, NULL, NULL,
                                         (void *)&scenarios[i]};
    return _cmocka_run_group_tests("stream_matrix", tests, n, NULL, NULL);
}
