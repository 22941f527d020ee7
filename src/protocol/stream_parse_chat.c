/* stream_parse_chat.c — OpenAI Chat Completions stream chunks → IR events
 * (format-conversion.md §5.2, "A parser").
 *
 * Chat has no blocks: they are synthesised. Reasoning (`reasoning_content` or
 * `reasoning`) and `content` open a THINKING or TEXT block, closing the other; each tool
 * call `index` is a TOOL block, started once its name (or first argument fragment) is
 * known, and kept open until finish_reason or the next text (an upstream may interleave
 * the fragments of parallel calls). Only choice 0 is read. A usage object is a snapshot
 * and never ends anything. Argument fragments are forwarded as they come; the parser keeps
 * each call's arguments only to recognise a replayed duplicate (a fragment equal to the
 * whole buffer when the buffer is already complete JSON). */
#include <stdlib.h>

#include "protocol/stream_internal.h"

static int put(struct conv *cv, struct ir_event *ev, struct buf *out)
{
    return stream_dispatch(cv, ev, out);
}

static int block_stop(struct conv *cv, int key, struct buf *out)
{
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_BLOCK_STOP);
    ev.key = key;
    return put(cv, &ev, out);
}

/* Closes the open text/thinking block, and the open tool blocks too when `tools`. */
static int close_open(struct conv *cv, bool tools, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    if (p->open_kind >= 0) {
        p->open_kind = -1;
        if (block_stop(cv, p->open_key, out) != 0) return -1;
    }
    if (!tools) return 0;
    for (size_t i = 0; i < p->n_tools; i++) {
        struct parse_chat_tool *t = &p->tools[i];
        if (t->open) {
            t->open = false;
            t->closed = true;
            stream_acc_free(&cv->stream->budget, &t->args);
            if (block_stop(cv, t->key, out) != 0) return -1;
        }
    }
    return 0;
}

/* A text or thinking delta: opens the block of that kind when another is open. */
static int content_delta(struct conv *cv, enum ir_block_kind kind, enum ir_event_kind evk,
                         struct slice text, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    if (text.n == 0) return 0;
    if (p->open_kind != (int)kind) {
        if (close_open(cv, true, out) != 0) return -1;
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_BLOCK_START);
        ev.block = kind;
        ev.key = p->next_key++;
        p->open_kind = (int)kind;
        p->open_key = ev.key;
        if (put(cv, &ev, out) != 0) return -1;
    }
    p->saw_content = true;
    struct ir_event ev;
    stream_event_init(&ev, evk);
    ev.key = p->open_key;
    ev.text = text;
    return put(cv, &ev, out);
}

static struct parse_chat_tool *tool_at(struct conv *cv, size_t idx)
{
    struct parse_chat *p = &cv->stream->p.chat;
    size_t old = p->cap_tools;
    if (!stream_array_reserve(&cv->stream->budget, (void **)&p->tools, &p->cap_tools,
                              sizeof *p->tools, idx))
        return NULL;
    for (size_t i = old; i < p->cap_tools; i++) p->tools[i].key = -1;
    if (idx >= p->n_tools) p->n_tools = idx + 1;
    return &p->tools[idx];
}

static bool is_complete_json(struct slice s)
{
    json_error_t err;
    json_t *v = json_loadb(s.p, s.n, JSON_DECODE_ANY, &err);
    if (!v) return false;
    json_decref(v);
    return true;
}

static int tool_delta(struct conv *cv, json_t *tc, size_t position, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    struct stream_budget *bg = &cv->stream->budget;
    if (!json_is_object(tc)) return -1;
    long idx = (long)position;
    json_t *jidx = json_object_get(tc, "index");
    if (jidx && !json_is_null(jidx)) {
        if (!json_is_integer(jidx)) return -1;
        idx = (long)json_integer_value(jidx);
    }
    if (idx < 0 || idx > 4096) return -1; /* far more parallel calls than any model makes */
    json_t *fn = json_object_get(tc, "function");
    if (fn && !json_is_null(fn) && !json_is_object(fn)) return -1;
    struct slice id = stream_json_str(tc, "id");
    struct slice name = stream_json_str(fn, "name");
    struct slice args = stream_json_str(fn, "arguments");

    struct parse_chat_tool *t = tool_at(cv, (size_t)idx);
    if (!t) return -1;
    if (t->closed) return 0; /* after finish_reason: nothing more for this call */
    if (t->key < 0) {
        if (id.n && t->id.n == 0 && !stream_acc_append(bg, &t->id, id)) return -1;
        if (name.n && t->name.n == 0 && !stream_acc_append(bg, &t->name, name)) return -1;
        if (t->name.n == 0 && args.n == 0) return 0; /* wait for the name */
        if (t->id.n == 0) {
            char tail[25];
            stream_random_tail(tail);
            if (!stream_acc_append(bg, &t->id, SLICE_LIT("call_")) ||
                !stream_acc_append(bg, &t->id, slice_from(tail)))
                return -1;
        }
        if (p->open_kind >= 0 && close_open(cv, false, out) != 0) return -1;
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_BLOCK_START);
        ev.block = IR_BLOCK_TOOL;
        ev.key = t->key = p->next_key++;
        ev.tool_id = buf_slice(&t->id);
        ev.tool_name = buf_slice(&t->name);
        t->open = true;
        p->saw_tool = true;
        int rc = put(cv, &ev, out);
        stream_acc_free(bg, &t->id);
        stream_acc_free(bg, &t->name);
        if (rc != 0) return -1;
    }
    if (args.n == 0) return 0;
    if (t->args.n && slice_eq(args, buf_slice(&t->args)) && is_complete_json(buf_slice(&t->args)))
        return 0; /* a replay of everything so far: drop it */
    if (!stream_acc_append(bg, &t->args, args)) return -1;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_TOOL_ARGS);
    ev.key = t->key;
    ev.text = args;
    return put(cv, &ev, out);
}

static enum ir_finish map_finish(struct slice r, bool saw_tool)
{
    if (saw_tool) return IR_FIN_TOOL_USE; /* some vendors say "stop" after tool calls */
    if (slice_eq_str(r, "length")) return IR_FIN_MAX_TOKENS;
    if (slice_eq_str(r, "content_filter")) return IR_FIN_CONTENT_FILTER;
    if (slice_eq_str(r, "stop") || slice_eq_str(r, "tool_calls") ||
        slice_eq_str(r, "function_call"))
        return IR_FIN_END_TURN; /* tool_calls without any call: END_TURN (§4.1) */
    return IR_FIN_UNKNOWN;
}

static int finish(struct conv *cv, enum ir_finish f, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    if (close_open(cv, true, out) != 0) return -1;
    p->saw_finish = true;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_FINISH);
    ev.finish = f;
    return put(cv, &ev, out);
}

static int choice(struct conv *cv, json_t *ch, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    if (!json_is_object(ch)) return -1;
    json_t *jidx = json_object_get(ch, "index");
    if (jidx && !json_is_integer(jidx) && !json_is_null(jidx)) return -1;
    if (json_is_integer(jidx) && json_integer_value(jidx) != 0) return 0; /* n > 1 */
    if (p->saw_finish) return 0;
    json_t *delta = json_object_get(ch, "delta");
    if (delta && !json_is_null(delta)) {
        if (!json_is_object(delta)) return -1;
        json_t *c = json_object_get(delta, "content");
        if (c && !json_is_null(c) && !json_is_string(c)) return -1;
        struct slice reasoning = stream_json_str(delta, "reasoning_content");
        if (reasoning.n == 0) reasoning = stream_json_str(delta, "reasoning");
        if (content_delta(cv, IR_BLOCK_THINKING, IR_EV_THINKING_DELTA, reasoning, out) != 0)
            return -1;
        if (content_delta(cv, IR_BLOCK_TEXT, IR_EV_TEXT_DELTA, stream_json_str(delta, "content"),
                          out) != 0)
            return -1;
        if (content_delta(cv, IR_BLOCK_TEXT, IR_EV_REFUSAL_DELTA, stream_json_str(delta, "refusal"),
                          out) != 0)
            return -1;
        json_t *tcs = json_object_get(delta, "tool_calls");
        if (tcs && !json_is_null(tcs)) {
            if (!json_is_array(tcs)) return -1;
            for (size_t i = 0; i < json_array_size(tcs); i++)
                if (tool_delta(cv, json_array_get(tcs, i), i, out) != 0) return -1;
        }
    }
    json_t *fr = json_object_get(ch, "finish_reason");
    if (fr && !json_is_null(fr)) {
        if (!json_is_string(fr)) return -1;
        struct slice r = {json_string_value(fr), json_string_length(fr)};
        return finish(cv, map_finish(r, p->saw_tool), out);
    }
    return 0;
}

static long count(json_t *obj, const char *key)
{
    long v;
    return stream_json_long(obj, key, &v) && v >= 0 ? v : -1;
}

static int usage(struct conv *cv, json_t *u, struct buf *out)
{
    if (!json_is_object(u)) return -1;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_USAGE);
    ev.has_usage = true;
    ev.usage.input_total = count(u, "prompt_tokens");
    ev.usage.output_total = count(u, "completion_tokens");
    json_t *pd = json_object_get(u, "prompt_tokens_details");
    ev.usage.cache_read = count(pd, "cached_tokens");
    ev.usage.cache_write = count(pd, "cache_write_tokens");
    if (ev.usage.cache_write < 0) ev.usage.cache_write = count(pd, "cached_creation_tokens");
    if (ev.usage.cache_write < 0) ev.usage.cache_write = count(pd, "cache_creation_input_tokens");
    if (ev.usage.cache_write < 0) ev.usage.cache_write = count(u, "cache_creation_input_tokens");
    ev.usage.reasoning = count(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
    return put(cv, &ev, out);
}

static int error_event(struct conv *cv, json_t *err, struct buf *out)
{
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    if (json_is_object(err)) {
        ev.text = stream_json_str(err, "message");
        ev.error_type = stream_json_str(err, "type");
        ev.error_code = stream_json_str(err, "code");
    } else if (json_is_string(err)) {
        ev.text = (struct slice){json_string_value(err), json_string_length(err)};
    }
    if (ev.text.n == 0) ev.text = SLICE_LIT("upstream error");
    ev.status = stream_status_for_error_type(ev.error_code);
    if (!ev.status) ev.status = stream_status_for_error_type(ev.error_type);
    if (!ev.status) ev.status = 500;
    return put(cv, &ev, out);
}

int stream_parse_chat(struct conv *cv, json_t *obj, struct buf *out)
{
    json_t *err = json_object_get(obj, "error");
    if (err && !json_is_null(err)) return error_event(cv, err, out);
    if (!cv->stream->e.started) {
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_START);
        ev.id = stream_json_str(obj, "id");
        ev.model = stream_json_str(obj, "model");
        if (put(cv, &ev, out) != 0) return -1;
    }
    json_t *choices = json_object_get(obj, "choices");
    if (choices && !json_is_null(choices)) {
        if (!json_is_array(choices)) return -1;
        for (size_t i = 0; i < json_array_size(choices); i++)
            if (choice(cv, json_array_get(choices, i), out) != 0) return -1;
    }
    json_t *u = json_object_get(obj, "usage");
    if (u && !json_is_null(u) && usage(cv, u, out) != 0) return -1;
    return 0;
}

int stream_parse_chat_eof(struct conv *cv, struct buf *out)
{
    struct parse_chat *p = &cv->stream->p.chat;
    if (cv->stream->status != CONV_STREAM_OPEN) return 0;
    if (!p->saw_finish) {
        if (!p->saw_content && !p->saw_tool) {
            struct ir_event ev;
            stream_event_init(&ev, IR_EV_ERROR);
            ev.status = 502;
            ev.text = SLICE_LIT("upstream closed the stream without sending a response");
            return put(cv, &ev, out);
        }
        if (finish(cv, p->saw_tool ? IR_FIN_TOOL_USE : IR_FIN_END_TURN, out) != 0) return -1;
    }
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_END);
    return put(cv, &ev, out);
}

void stream_parse_free(struct conv *cv)
{
    struct conv_stream_state *st = cv->stream;
    switch (cv->upstream) {
    case API_CHAT:
        for (size_t i = 0; i < st->p.chat.n_tools; i++) {
            buf_free(&st->p.chat.tools[i].id);
            buf_free(&st->p.chat.tools[i].name);
            buf_free(&st->p.chat.tools[i].args);
        }
        free(st->p.chat.tools);
        break;
    case API_MESSAGES:
        for (size_t i = 0; i < st->p.messages.n_blocks; i++)
            buf_free(&st->p.messages.blocks[i].start_input);
        free(st->p.messages.blocks);
        break;
    case API_RESPONSES:
        for (size_t i = 0; i < st->p.responses.n_items; i++)
            buf_free(&st->p.responses.items[i].item_id);
        free(st->p.responses.items);
        break;
    default:
        break;
    }
}
