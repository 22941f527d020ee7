/* stream_parse_responses.c — OpenAI Responses stream events → IR events
 * (format-conversion.md §5.2, "C parser").
 *
 * Output items map to blocks: a message item's text opens a TEXT block lazily (at its
 * first content part or delta), a function_call item is a TOOL block from
 * output_item.added (its tool id is `call_id`, never the item id), a reasoning item opens a
 * THINKING block at its first summary or reasoning delta, or at output_item.done when it
 * only carries encrypted content (then SIGNATURE "gw1:openai:<id>:<enc>", §2.7). Items are
 * found by `item_id`, else by `output_index`. The `*.done` events are redundant with the
 * deltas and only used when no delta came (arguments given in one piece, an item that
 * arrives whole). response.completed / .incomplete carry the final usage and the finish;
 * response.failed and `error` become ERROR. Built-in tool events are ignored. */
#include <stdlib.h>

#include "protocol/stream_internal.h"

static int put(struct conv *cv, struct ir_event *ev, struct buf *out)
{
    return stream_dispatch(cv, ev, out);
}

static struct parse_responses_item *find_item(struct parse_responses *p, json_t *obj, json_t *item)
{
    struct slice id = stream_json_str(obj, "item_id");
    if (id.n == 0) id = stream_json_str(item, "id");
    long oi = -1;
    bool has_oi = stream_json_long(obj, "output_index", &oi);
    for (size_t i = p->n_items; i-- > 0;) {
        struct parse_responses_item *it = &p->items[i];
        if (id.n && it->item_id.n) {
            if (slice_eq(id, buf_slice(&it->item_id))) return it;
        } else if (has_oi && it->output_index == oi) {
            return it;
        }
    }
    return NULL;
}

static struct parse_responses_item *add_item(struct conv *cv, json_t *obj, json_t *item)
{
    struct parse_responses *p = &cv->stream->p.responses;
    struct stream_budget *bg = &cv->stream->budget;
    if (!stream_array_reserve(bg, (void **)&p->items, &p->cap_items, sizeof *p->items, p->n_items))
        return NULL;
    struct parse_responses_item *it = &p->items[p->n_items++];
    memset(it, 0, sizeof *it);
    it->key = -1;
    it->summary_index = -1;
    if (!stream_json_long(obj, "output_index", &it->output_index)) it->output_index = -1;
    struct slice type = stream_json_str(item, "type");
    it->type = slice_eq_str(type, "message")         ? PR_ITEM_MESSAGE
               : slice_eq_str(type, "function_call") ? PR_ITEM_FUNCTION
               : slice_eq_str(type, "reasoning")     ? PR_ITEM_REASONING
                                                     : PR_ITEM_OTHER;
    if (!stream_acc_append(bg, &it->item_id, stream_json_str(item, "id"))) return NULL;
    it->open = true;
    return it;
}

/* Starts the item's block when it has none yet. */
static int ensure_block(struct conv *cv, struct parse_responses_item *it, json_t *item,
                        struct buf *out)
{
    struct parse_responses *p = &cv->stream->p.responses;
    if (it->key >= 0 || it->done) return 0;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_BLOCK_START);
    switch (it->type) {
    case PR_ITEM_MESSAGE:
        ev.block = IR_BLOCK_TEXT;
        break;
    case PR_ITEM_REASONING:
        ev.block = IR_BLOCK_THINKING;
        break;
    case PR_ITEM_FUNCTION:
        ev.block = IR_BLOCK_TOOL;
        ev.tool_id = stream_json_str(item, "call_id");
        if (ev.tool_id.n == 0) ev.tool_id = stream_json_str(item, "id");
        ev.tool_name = stream_json_str(item, "name");
        p->saw_tool = true;
        break;
    default:
        return 0;
    }
    ev.key = it->key = p->next_key++;
    return put(cv, &ev, out);
}

static int delta(struct conv *cv, struct parse_responses_item *it, enum ir_event_kind kind,
                 struct slice text, struct buf *out)
{
    if (text.n == 0 || it->key < 0 || it->done) return 0;
    struct ir_event ev;
    stream_event_init(&ev, kind);
    ev.key = it->key;
    ev.text = text;
    return put(cv, &ev, out);
}

static int stop_item(struct conv *cv, struct parse_responses_item *it, struct buf *out)
{
    it->open = false;
    if (it->done) return 0;
    it->done = true;
    stream_acc_free(&cv->stream->budget, &it->item_id);
    if (it->key < 0) return 0;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_BLOCK_STOP);
    ev.key = it->key;
    return put(cv, &ev, out);
}

static long count(json_t *obj, const char *key)
{
    long v;
    return stream_json_long(obj, key, &v) && v >= 0 ? v : -1;
}

static int usage(struct conv *cv, json_t *u, struct buf *out)
{
    if (!json_is_object(u)) return 0;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_USAGE);
    ev.has_usage = true;
    ev.usage.input_total = count(u, "input_tokens");
    ev.usage.output_total = count(u, "output_tokens");
    json_t *id = json_object_get(u, "input_tokens_details");
    ev.usage.cache_read = count(id, "cached_tokens");
    ev.usage.cache_write = count(id, "cache_write_tokens");
    ev.usage.reasoning = count(json_object_get(u, "output_tokens_details"), "reasoning_tokens");
    return put(cv, &ev, out);
}

static int item_added(struct conv *cv, json_t *obj, struct buf *out)
{
    json_t *item = json_object_get(obj, "item");
    if (!json_is_object(item)) return -1;
    struct parse_responses_item *it = find_item(&cv->stream->p.responses, obj, item);
    if (it) return 0; /* a replayed added event */
    it = add_item(cv, obj, item);
    if (!it) return -1;
    if (it->type == PR_ITEM_FUNCTION) return ensure_block(cv, it, item, out);
    return 0;
}

/* Text and summary fallbacks for an item that arrives whole in output_item.done. */
static int item_done_content(struct conv *cv, struct parse_responses_item *it, json_t *item,
                             struct buf *out)
{
    if (it->key >= 0) return 0;
    json_t *arr = json_object_get(item, it->type == PR_ITEM_MESSAGE ? "content" : "summary");
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
        json_t *part = json_array_get(arr, i);
        struct slice t = stream_json_str(part, "text");
        enum ir_event_kind kind =
            it->type == PR_ITEM_MESSAGE ? IR_EV_TEXT_DELTA : IR_EV_THINKING_DELTA;
        if (it->type == PR_ITEM_MESSAGE && slice_eq_str(stream_json_str(part, "type"), "refusal")) {
            t = stream_json_str(part, "refusal");
            kind = IR_EV_REFUSAL_DELTA;
        }
        if (t.n == 0) continue;
        if (it->key < 0 && ensure_block(cv, it, item, out) != 0) return -1;
        if (it->type == PR_ITEM_REASONING && i > 0 &&
            delta(cv, it, IR_EV_THINKING_DELTA, SLICE_LIT("\n\n"), out) != 0)
            return -1;
        if (delta(cv, it, kind, t, out) != 0) return -1;
    }
    return 0;
}

static int item_done(struct conv *cv, json_t *obj, struct buf *out)
{
    json_t *item = json_object_get(obj, "item");
    if (!json_is_object(item)) return -1;
    struct parse_responses_item *it = find_item(&cv->stream->p.responses, obj, item);
    if (!it) {
        it = add_item(cv, obj, item); /* no output_item.added came */
        if (!it) return -1;
    }
    if (it->done) return 0;
    switch (it->type) {
    case PR_ITEM_FUNCTION:
        if (ensure_block(cv, it, item, out) != 0) return -1;
        if (!it->got_args) {
            it->got_args = true;
            if (delta(cv, it, IR_EV_TOOL_ARGS, stream_json_str(item, "arguments"), out) != 0)
                return -1;
        }
        break;
    case PR_ITEM_MESSAGE:
        if (item_done_content(cv, it, item, out) != 0) return -1;
        break;
    case PR_ITEM_REASONING: {
        if (item_done_content(cv, it, item, out) != 0) return -1;
        struct slice enc = stream_json_str(item, "encrypted_content");
        if (enc.n) {
            if (ensure_block(cv, it, item, out) != 0) return -1;
            struct slice id = stream_json_str(item, "id");
            struct buf b = BUF_INIT; /* freed below: nothing per item stays */
            bool ok = buf_append_str(&b, "gw1:openai:") && buf_append(&b, id.p, id.n) &&
                      buf_append_str(&b, ":") && buf_append(&b, enc.p, enc.n);
            int rc = ok ? delta(cv, it, IR_EV_SIGNATURE, buf_slice(&b), out) : -1;
            buf_free(&b);
            if (rc != 0) return -1;
        }
        break;
    }
    default:
        break;
    }
    return stop_item(cv, it, out);
}

/* Closes items an upstream left open, in the order they were added. */
static int close_all(struct conv *cv, struct buf *out)
{
    struct parse_responses *p = &cv->stream->p.responses;
    for (size_t i = 0; i < p->n_items; i++)
        if (!p->items[i].done && stop_item(cv, &p->items[i], out) != 0) return -1;
    return 0;
}

static int error_from(struct conv *cv, json_t *err, struct buf *out)
{
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.error_code = stream_json_str(err, "code");
    ev.error_type = stream_json_str(err, "type");
    ev.text = stream_json_str(err, "message");
    if (ev.text.n == 0) ev.text = SLICE_LIT("upstream response failed");
    ev.status = stream_status_for_error_type(ev.error_code);
    if (!ev.status) ev.status = stream_status_for_error_type(ev.error_type);
    if (!ev.status) ev.status = 500;
    return put(cv, &ev, out);
}

static int completed(struct conv *cv, json_t *obj, bool incomplete, struct buf *out)
{
    struct parse_responses *p = &cv->stream->p.responses;
    json_t *resp = json_object_get(obj, "response");
    if (!json_is_object(resp)) return -1;
    if (p->saw_finish) return 0;
    if (close_all(cv, out) != 0) return -1;
    if (usage(cv, json_object_get(resp, "usage"), out) != 0) return -1;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_FINISH);
    struct slice status = stream_json_str(resp, "status");
    if (incomplete || slice_eq_str(status, "incomplete")) {
        struct slice reason =
            stream_json_str(json_object_get(resp, "incomplete_details"), "reason");
        ev.finish =
            slice_eq_str(reason, "content_filter") ? IR_FIN_CONTENT_FILTER : IR_FIN_MAX_TOKENS;
    } else {
        bool tool = p->saw_tool;
        json_t *output = json_object_get(resp, "output");
        for (size_t i = 0; !tool && json_is_array(output) && i < json_array_size(output); i++)
            tool =
                slice_eq_str(stream_json_str(json_array_get(output, i), "type"), "function_call");
        ev.finish = tool ? IR_FIN_TOOL_USE : IR_FIN_END_TURN;
    }
    p->saw_finish = true;
    if (put(cv, &ev, out) != 0) return -1;
    stream_event_init(&ev, IR_EV_END);
    return put(cv, &ev, out);
}

int stream_parse_responses(struct conv *cv, struct slice event, json_t *obj, struct buf *out)
{
    struct parse_responses *p = &cv->stream->p.responses;
    struct slice type = stream_json_str(obj, "type");
    if (type.n == 0) type = event;

    if (slice_eq_str(type, "response.created") || slice_eq_str(type, "response.in_progress") ||
        slice_eq_str(type, "response.queued")) {
        json_t *resp = json_object_get(obj, "response");
        if (!json_is_object(resp)) return -1;
        if (cv->stream->e.started) return 0;
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_START);
        ev.id = stream_json_str(resp, "id");
        ev.model = stream_json_str(resp, "model");
        if (put(cv, &ev, out) != 0) return -1;
        return usage(cv, json_object_get(resp, "usage"), out);
    }
    if (slice_eq_str(type, "response.output_item.added")) return item_added(cv, obj, out);
    if (slice_eq_str(type, "response.output_item.done")) return item_done(cv, obj, out);
    if (slice_eq_str(type, "response.completed")) return completed(cv, obj, false, out);
    if (slice_eq_str(type, "response.incomplete")) return completed(cv, obj, true, out);
    if (slice_eq_str(type, "response.failed")) {
        json_t *resp = json_object_get(obj, "response");
        if (!json_is_object(resp)) return -1;
        return error_from(cv, json_object_get(resp, "error"), out);
    }
    if (slice_eq_str(type, "error")) {
        json_t *err = json_object_get(obj, "error");
        return error_from(cv, json_is_object(err) ? err : obj, out);
    }

    bool text = slice_eq_str(type, "response.output_text.delta");
    bool refusal = slice_eq_str(type, "response.refusal.delta");
    bool part = slice_eq_str(type, "response.content_part.added");
    bool summary = slice_eq_str(type, "response.reasoning_summary_text.delta") ||
                   slice_eq_str(type, "response.reasoning_text.delta");
    bool args = slice_eq_str(type, "response.function_call_arguments.delta");
    bool args_done = slice_eq_str(type, "response.function_call_arguments.done");
    if (!(text || refusal || part || summary || args || args_done)) return 0;

    struct parse_responses_item *it = find_item(p, obj, NULL);
    if (!it || it->done) return 0;
    json_t *d = json_object_get(obj, "delta");
    if ((text || refusal || summary || args) && !json_is_string(d)) return -1;
    struct slice dtext = json_is_string(d)
                             ? (struct slice){json_string_value(d), json_string_length(d)}
                             : SLICE_NULL;
    if (text || refusal || part) {
        if (it->type != PR_ITEM_MESSAGE) return 0;
        if (part) {
            struct slice pt = stream_json_str(json_object_get(obj, "part"), "type");
            if (!slice_eq_str(pt, "output_text") && !slice_eq_str(pt, "refusal")) return 0;
        }
        if (ensure_block(cv, it, NULL, out) != 0) return -1;
        return part ? 0 : delta(cv, it, text ? IR_EV_TEXT_DELTA : IR_EV_REFUSAL_DELTA, dtext, out);
    }
    if (summary) {
        if (it->type != PR_ITEM_REASONING || dtext.n == 0) return 0;
        if (ensure_block(cv, it, NULL, out) != 0) return -1;
        long si = 0;
        if (!stream_json_long(obj, "summary_index", &si))
            (void)stream_json_long(obj, "content_index", &si);
        if (it->summary_index >= 0 && si != it->summary_index &&
            delta(cv, it, IR_EV_THINKING_DELTA, SLICE_LIT("\n\n"), out) != 0)
            return -1;
        it->summary_index = si;
        return delta(cv, it, IR_EV_THINKING_DELTA, dtext, out);
    }
    if (it->type != PR_ITEM_FUNCTION) return 0;
    if (args) {
        if (dtext.n) it->got_args = true;
        return delta(cv, it, IR_EV_TOOL_ARGS, dtext, out);
    }
    /* arguments.done: only when no delta carried them */
    if (it->got_args) return 0;
    it->got_args = true;
    return delta(cv, it, IR_EV_TOOL_ARGS, stream_json_str(obj, "arguments"), out);
}

int stream_parse_responses_eof(struct conv *cv, struct buf *out)
{
    if (cv->stream->status != CONV_STREAM_OPEN) return 0;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.status = 502;
    ev.text = SLICE_LIT("upstream closed the stream before the end of the response");
    return put(cv, &ev, out);
}
