/* response_chat.c — non-stream OpenAI Chat Completions responses (format A): the reader
 * of an upstream `chat.completion` into the IR, and the writer of the client's
 * `chat.completion` (format-conversion.md §4). */
#include "protocol/response.h"

#include <stdio.h>

/* ---------- decode ---------- */

static enum ir_finish finish_from_chat(struct slice f)
{
    if (slice_eq_str(f, "stop")) return IR_FIN_END_TURN;
    if (slice_eq_str(f, "length")) return IR_FIN_MAX_TOKENS;
    if (slice_eq_str(f, "tool_calls") || slice_eq_str(f, "function_call")) return IR_FIN_TOOL_USE;
    if (slice_eq_str(f, "content_filter")) return IR_FIN_CONTENT_FILTER;
    return IR_FIN_UNKNOWN;
}

/* A Chat `usage` object (also the legacy Completions one) into IR usage (§4.2). */
static void usage_from_chat(const json_t *u, struct ir_usage *out)
{
    ir_usage_unknown(out);
    if (!json_is_object(u)) return;
    out->input_total = resp_jcount(u, "prompt_tokens");
    out->output_total = resp_jcount(u, "completion_tokens");
    json_t *d = json_object_get(u, "prompt_tokens_details");
    if (json_is_object(d)) {
        out->cache_read = resp_jcount(d, "cached_tokens");
        out->cache_write = resp_jcount(d, "cache_write_tokens");
        if (out->cache_write < 0) out->cache_write = resp_jcount(d, "cached_creation_tokens");
        if (out->cache_write < 0) out->cache_write = resp_jcount(d, "cache_creation_input_tokens");
    }
    /* Some relays put the Claude-style counts at the top level of an OpenAI usage. */
    if (out->cache_read < 0) out->cache_read = resp_jcount(u, "cache_read_input_tokens");
    if (out->cache_write < 0) out->cache_write = resp_jcount(u, "cache_creation_input_tokens");
    d = json_object_get(u, "completion_tokens_details");
    if (json_is_object(d)) out->reasoning = resp_jcount(d, "reasoning_tokens");
}

/* Adds the text of a `content` value: a string, null, or an array of text parts (some
 * vendors answer with parts). Returns false on a wrong type. */
static bool add_content(struct conv *cv, struct resp_parts *parts, json_t *content,
                        struct conv_error *err)
{
    if (!content || json_is_null(content)) return true;
    if (json_is_string(content)) {
        struct slice s = {json_string_value(content), json_string_length(content)};
        /* think_tag_split: a leading <think>…</think> is the reasoning of DeepSeek-style
         * servers that put it into the content. */
        if (cv->profile && cv->profile->think_tag_split && slice_starts_with(s, "<think>")) {
            const char *end = memmem(s.p, s.n, "</think>", 8);
            if (end) {
                struct ir_part *t = resp_parts_push(parts, IR_PART_THINKING);
                if (!t) goto oom;
                t->text = (struct slice){s.p + 7, (size_t)(end - s.p) - 7};
                s.n -= (size_t)(end + 8 - s.p);
                s.p = end + 8;
                while (s.n && (s.p[0] == '\n' || s.p[0] == '\r')) s.p++, s.n--;
            }
        }
        if (s.n) {
            struct ir_part *p = resp_parts_push(parts, IR_PART_TEXT);
            if (!p) goto oom;
            p->text = s;
        }
        return true;
    }
    if (!json_is_array(content)) {
        resp_fail(cv, err, 502, "upstream response: choices[0].message.content is not a string");
        return false;
    }
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item)
    {
        struct slice text = resp_jstr(item, "text");
        struct slice type = resp_jstr(item, "type");
        if (!text.n) continue;
        struct ir_part *p =
            resp_parts_push(parts, slice_eq_str(type, "refusal") ? IR_PART_REFUSAL : IR_PART_TEXT);
        if (!p) goto oom;
        p->text = text;
    }
    return true;
oom:
    resp_fail(cv, err, 502, "out of memory while converting the upstream response");
    return false;
}

/* One entry of message.tool_calls (or the legacy message.function_call). */
static bool add_tool_call(struct conv *cv, struct resp_parts *parts, json_t *call, size_t idx,
                          struct conv_error *err)
{
    json_t *fn = json_object_get(call, "function");
    if (!json_is_object(call) || !json_is_object(fn)) {
        resp_fail(cv, err, 502, "upstream response: tool_calls[%zu] has no function object", idx);
        return false;
    }
    struct slice name = resp_jstr(fn, "name");
    if (!name.n) {
        resp_fail(cv, err, 502, "upstream response: tool_calls[%zu].function.name is missing", idx);
        return false;
    }
    struct ir_part *p = resp_parts_push(parts, IR_PART_TOOL_CALL);
    if (!p) goto oom;
    p->call.name = name; /* the client's name: resp_finalize */
    p->call.id = resp_jstr(call, "id");
    if (!p->call.id.n) p->call.id = resp_random_call_id(cv->pool);
    json_t *args = json_object_get(fn, "arguments");
    if (json_is_string(args)) {
        p->call.args = (struct slice){json_string_value(args), json_string_length(args)};
    } else if (json_is_object(args)) {
        /* Some vendors send the arguments as an object, not as its JSON text. */
        p->call.args = resp_json_text(cv->pool, args);
    } else if (args && !json_is_null(args)) {
        resp_fail(cv, err, 502,
                  "upstream response: tool_calls[%zu].function.arguments is not "
                  "a string",
                  idx);
        return false;
    }
    if (!p->call.args.n) p->call.args = SLICE_LIT("{}");
    if (!p->call.id.n) goto oom;
    return true;
oom:
    resp_fail(cv, err, 502, "out of memory while converting the upstream response");
    return false;
}

int resp_decode_chat(struct conv *cv, json_t *root, struct ir_response *out, struct conv_error *err)
{
    memset(out, 0, sizeof *out);
    ir_usage_unknown(&out->usage);
    json_t *choices = json_object_get(root, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        resp_fail(cv, err, 502, "upstream response has no choices");
        return -1;
    }
    json_t *choice = json_array_get(choices, 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(choice) || !json_is_object(msg)) {
        resp_fail(cv, err, 502, "upstream response: choices[0].message is missing");
        return -1;
    }
    out->id = resp_jstr(root, "id");
    out->model = resp_jstr(root, "model");
    out->created = resp_jcount(root, "created");
    usage_from_chat(json_object_get(root, "usage"), &out->usage);

    struct resp_parts parts = {.pool = cv->pool};
    /* Reasoning first: it was produced before the answer. */
    struct slice reasoning = resp_jstr(msg, "reasoning_content");
    if (!reasoning.n) reasoning = resp_jstr(msg, "reasoning");
    if (reasoning.n) {
        struct ir_part *t = resp_parts_push(&parts, IR_PART_THINKING);
        if (!t) goto oom;
        t->text = reasoning;
    }
    if (!add_content(cv, &parts, json_object_get(msg, "content"), err)) return -1;
    struct slice refusal = resp_jstr(msg, "refusal");
    if (refusal.n) {
        struct ir_part *p = resp_parts_push(&parts, IR_PART_REFUSAL);
        if (!p) goto oom;
        p->text = refusal;
    }
    size_t n_calls = 0;
    json_t *calls = json_object_get(msg, "tool_calls");
    if (calls && !json_is_null(calls)) {
        if (!json_is_array(calls)) {
            resp_fail(cv, err, 502, "upstream response: message.tool_calls is not an array");
            return -1;
        }
        size_t i;
        json_t *call;
        json_array_foreach(calls, i, call)
        {
            if (!add_tool_call(cv, &parts, call, i, err)) return -1;
            n_calls++;
        }
    }
    json_t *fcall = json_object_get(msg, "function_call");
    if (json_is_object(fcall) && n_calls == 0) {
        /* The legacy single call: shaped as a tool call (it has no id: one is made up). */
        json_t *wrapped = json_pack("{sO}", "function", fcall);
        if (!wrapped) goto oom;
        bool ok = add_tool_call(cv, &parts, wrapped, 0, err);
        json_decref(wrapped); /* the strings stay alive in root, which holds fcall */
        if (!ok) return -1;
        n_calls++;
    }
    out->parts = parts.v;
    out->n_parts = parts.n;

    json_t *fin = json_object_get(choice, "finish_reason");
    out->finish =
        json_is_string(fin) ? finish_from_chat(resp_jstr(choice, "finish_reason")) : IR_FIN_UNKNOWN;
    /* Some vendors say "stop" with tool calls; "tool_calls" without any is no tool turn. */
    if (n_calls)
        out->finish = IR_FIN_TOOL_USE;
    else if (out->finish == IR_FIN_TOOL_USE)
        out->finish = IR_FIN_END_TURN;
    return 0;
oom:
    resp_fail(cv, err, 502, "out of memory while converting the upstream response");
    return -1;
}

/* ---------- encode ---------- */

static const char *finish_to_chat(enum ir_finish f)
{
    switch (f) {
    case IR_FIN_MAX_TOKENS:
    case IR_FIN_CONTEXT_EXCEEDED:
        return "length";
    case IR_FIN_TOOL_USE:
        return "tool_calls";
    case IR_FIN_CONTENT_FILTER:
        return "content_filter";
    default:
        return "stop";
    }
}

json_t *resp_chat_usage_json(const struct ir_usage *u)
{
    long in = u->input_total > 0 ? u->input_total : 0;
    long outp = u->output_total > 0 ? u->output_total : 0;
    json_t *details =
        json_pack("{sI}", "cached_tokens", (json_int_t)(u->cache_read > 0 ? u->cache_read : 0));
    bool ok = details != NULL;
    if (u->cache_write > 0)
        ok &= resp_set(details, "cache_write_tokens", json_integer(u->cache_write));
    json_t *usage = json_pack("{sIsIsIso}", "prompt_tokens", (json_int_t)in, "completion_tokens",
                              (json_int_t)outp, "total_tokens", (json_int_t)(in + outp),
                              "prompt_tokens_details", details);
    if (u->reasoning >= 0)
        ok &= resp_set(usage, "completion_tokens_details",
                       json_pack("{sI}", "reasoning_tokens", (json_int_t)u->reasoning));
    if (!ok) {
        json_decref(usage);
        return NULL;
    }
    return usage;
}

/* Appends `s` to a text accumulator (a NULL-able jansson-free buf), joined by `sep`. */
static bool join(struct buf *b, bool *any, struct slice s, const char *sep)
{
    if (*any && !buf_append_str(b, sep)) return false;
    *any = true;
    return buf_append(b, s.p, s.n);
}

int resp_encode_chat(struct conv *cv, const struct ir_response *r, struct buf *out)
{
    struct buf text = BUF_INIT, refusal = BUF_INIT, thinking = BUF_INIT;
    bool any_text = false, any_refusal = false, any_thinking = false, ok = true;
    json_t *calls = json_array(), *blocks = json_array();
    bool emit_blocks = cv->profile && cv->profile->chat_emit_thinking_blocks;

    for (size_t i = 0; i < r->n_parts && ok; i++) {
        const struct ir_part *p = &r->parts[i];
        switch (p->kind) {
        case IR_PART_TEXT:
            ok = join(&text, &any_text, p->text, "");
            break;
        case IR_PART_REFUSAL:
            ok = join(&refusal, &any_refusal, p->text, "");
            break;
        case IR_PART_THINKING:
            if (p->text.n) ok = join(&thinking, &any_thinking, p->text, "\n\n");
            if (emit_blocks) {
                struct slice sig = resp_wrap_signature(cv->pool, p);
                ok &= resp_push(blocks,
                                json_pack("{sssoso}", "type", "thinking", "thinking",
                                          resp_jstring(p->text), "signature", resp_jstring(sig)));
            }
            break;
        case IR_PART_REDACTED_THINKING:
            if (emit_blocks)
                ok &= resp_push(blocks, json_pack("{ssso}", "type", "redacted_thinking", "data",
                                                  resp_jstring(resp_wrap_signature(cv->pool, p))));
            break;
        case IR_PART_TOOL_CALL:
            if (p->call.custom) /* a call of the client's `custom` tool: free text input */
                ok &= resp_push(calls,
                                json_pack("{sosss{soso}}", "id", resp_jstring(p->call.id), "type",
                                          "custom", "custom", "name", resp_jstring(p->call.name),
                                          "input", resp_jstring(p->call.args)));
            else
                ok &= resp_push(
                    calls,
                    json_pack("{sosss{soso}}", "id", resp_jstring(p->call.id), "type", "function",
                              "function", "name", resp_jstring(p->call.name), "arguments",
                              resp_jstring(p->call.args.n ? p->call.args : SLICE_LIT("{}"))));
            break;
        default:
            break;
        }
    }

    json_t *msg = json_object();
    ok &= resp_set(msg, "role", json_string("assistant"));
    ok &= resp_set(msg, "content", any_text ? resp_jstring(buf_slice(&text)) : json_null());
    ok &= resp_set(msg, "refusal", any_refusal ? resp_jstring(buf_slice(&refusal)) : json_null());
    if (any_thinking && cv->profile) {
        if (cv->profile->chat_reasoning_field == IR_REASONING_FIELD_REASONING_CONTENT)
            ok &= resp_set(msg, "reasoning_content", resp_jstring(buf_slice(&thinking)));
        else if (cv->profile->chat_reasoning_field == IR_REASONING_FIELD_REASONING)
            ok &= resp_set(msg, "reasoning", resp_jstring(buf_slice(&thinking)));
    }
    if (json_array_size(blocks)) ok &= json_object_set(msg, "thinking_blocks", blocks) == 0;
    if (json_array_size(calls)) ok &= json_object_set(msg, "tool_calls", calls) == 0;

    struct slice id = resp_prefixed_id(cv->pool, "chatcmpl-", r->id);
    json_t *root = json_object();
    ok &= resp_set(root, "id", resp_jstring(id));
    ok &= resp_set(root, "object", json_string("chat.completion"));
    ok &= resp_set(root, "created", json_integer(resp_created(cv, r)));
    ok &= resp_set(root, "model", resp_jstring(resp_client_model(cv, r)));
    ok &= resp_set(root, "choices",
                   json_pack("[{sIsosnss}]", "index", (json_int_t)0, "message", msg, "logprobs",
                             "finish_reason", finish_to_chat(r->finish)));
    ok &= resp_set(root, "usage", resp_chat_usage_json(&r->usage));

    ok = ok && id.n && resp_json_write(out, root);
    json_decref(root);
    json_decref(calls);
    json_decref(blocks);
    buf_free(&text);
    buf_free(&refusal);
    buf_free(&thinking);
    return ok ? 0 : -1;
}
