/* stream_emit_responses.c — IR events → OpenAI Responses SSE events
 * (format-conversion.md §5.3, "C emitter").
 *
 * Every event is `event: <type>` with data repeating "type" and a sequence_number 0, 1, 2…
 * Blocks become output items with output_index 0, 1, 2… in the order they reach the
 * client: text → a message item (opened at its first delta; a refusal is its own content
 * part), thinking → a reasoning item with one summary part, tool → a function_call item
 * (`id` "fc_" + the call id sanitised, `call_id` the tool id). The `*.done` events repeat
 * the full text or arguments, so the emitter accumulates the open item's text (bounded by
 * the stream budget) and keeps the JSON of every finished item for the final response
 * object (Codex reads items from response.output_item.done and needs response.completed).
 * Item ids are `msg_<id suffix>_<n>` and `rs_<id suffix>_<n>` (§2.2). Encrypted reasoning
 * (a wrapped signature, §2.7) is only sent when the request `include`d it. A FINISH closes
 * every open item at once; response.completed (or .incomplete) waits for the usage. An
 * error sends `error` then `response.failed`. There is no [DONE]. */
#include <stdlib.h>

#include "protocol/stream_internal.h"

static void event_begin(struct conv *cv, struct sw *w, struct buf *out, const char *type)
{
    sw_begin(w, out);
    sw_event(w, type);
    sw_raw(w, "{\"type\":\"");
    sw_raw(w, type);
    sw_raw(w, "\",\"sequence_number\":");
    sw_long(w, cv->stream->e.seq);
}

static int event_end(struct conv *cv, struct sw *w)
{
    sw_raw(w, "}");
    if (sw_end(w) != 0) return -1;
    cv->stream->e.seq++;
    return 0;
}

/* ,"item_id":…,"output_index":n */
static void item_ref(struct sw *w, struct emit_block *b)
{
    sw_raw(w, ",\"item_id\":");
    sw_str(w, buf_slice(&b->id));
    sw_raw(w, ",\"output_index\":");
    sw_long(w, b->index);
}

/* Writes the whole response object (status, output so far, usage or null, error). */
static void response_object(struct conv *cv, struct sw *w, const char *status, bool with_usage,
                            const char *incomplete_reason, const char *err_code,
                            struct slice err_message)
{
    struct conv_stream_state *st = cv->stream;
    sw_raw(w, "{\"id\":");
    sw_str(w, st->id);
    sw_raw(w, ",\"object\":\"response\",\"created_at\":");
    sw_long(w, st->created);
    sw_raw(w, ",\"status\":\"");
    sw_raw(w, status);
    sw_raw(w, "\",\"model\":");
    sw_str(w, st->model);
    sw_raw(w, ",\"output\":[");
    sw_rawn(w, buf_slice(&st->e.output));
    sw_raw(w, "],\"usage\":");
    if (with_usage)
        stream_write_usage_responses(w, &cv->usage);
    else
        sw_raw(w, "null");
    sw_raw(w, ",\"error\":");
    if (err_code) {
        sw_raw(w, "{\"code\":");
        sw_cstr(w, err_code);
        sw_raw(w, ",\"message\":");
        sw_str(w, err_message);
        sw_raw(w, "}");
    } else {
        sw_raw(w, "null");
    }
    sw_raw(w, ",\"incomplete_details\":");
    if (incomplete_reason) {
        sw_raw(w, "{\"reason\":\"");
        sw_raw(w, incomplete_reason);
        sw_raw(w, "\"}");
    } else {
        sw_raw(w, "null");
    }
    sw_raw(w, "}");
}

/* Builds the item's id into b->id: prefix + suffix + "_" + index. */
static bool make_item_id(struct conv *cv, struct emit_block *b, const char *prefix)
{
    struct stream_budget *bg = &cv->stream->budget;
    char num[24];
    snprintf(num, sizeof num, "_%d", b->index);
    return stream_acc_append(bg, &b->id, slice_from(prefix)) &&
           stream_acc_append(bg, &b->id, cv->stream->resp_suffix) &&
           stream_acc_append(bg, &b->id, slice_from(num));
}

/* Appends a finished item (its JSON in `item`) to the output list. */
static int keep_item(struct conv *cv, struct slice item)
{
    struct stream_emit *e = &cv->stream->e;
    struct stream_budget *bg = &cv->stream->budget;
    if (e->output.n && !stream_acc_append(bg, &e->output, SLICE_LIT(","))) return -1;
    return stream_acc_append(bg, &e->output, item) ? 0 : -1;
}

/* output_item.done with the item written by `write_item` into a scratch buffer, which then
 * joins the output list. */
static int item_done(struct conv *cv, struct emit_block *b, struct buf *item, struct buf *out)
{
    struct sw w;
    event_begin(cv, &w, out, "response.output_item.done");
    sw_raw(&w, ",\"output_index\":");
    sw_long(&w, b->index);
    sw_raw(&w, ",\"item\":");
    sw_rawn(&w, buf_slice(item));
    if (event_end(cv, &w) != 0) return -1;
    return keep_item(cv, buf_slice(item));
}

/* ---- message items ---------------------------------------------------------------- */

static void write_part(struct sw *w, bool refusal, struct slice text)
{
    if (refusal) {
        sw_raw(w, "{\"type\":\"refusal\",\"refusal\":");
        sw_str(w, text);
        sw_raw(w, "}");
    } else {
        sw_raw(w, "{\"type\":\"output_text\",\"text\":");
        sw_str(w, text);
        sw_raw(w, ",\"annotations\":[],\"logprobs\":[]}");
    }
}

static int finish_part(struct conv *cv, struct emit_block *b, struct buf *out)
{
    if (!b->part_open) return 0;
    b->part_open = false;
    struct slice text = buf_slice(&b->acc);
    struct sw w;
    event_begin(cv, &w, out,
                b->part_refusal ? "response.refusal.done" : "response.output_text.done");
    item_ref(&w, b);
    sw_raw(&w, ",\"content_index\":");
    sw_long(&w, b->content_index);
    sw_raw(&w, b->part_refusal ? ",\"refusal\":" : ",\"text\":");
    sw_str(&w, text);
    if (!b->part_refusal) sw_raw(&w, ",\"logprobs\":[]");
    if (event_end(cv, &w) != 0) return -1;

    event_begin(cv, &w, out, "response.content_part.done");
    item_ref(&w, b);
    sw_raw(&w, ",\"content_index\":");
    sw_long(&w, b->content_index);
    sw_raw(&w, ",\"part\":");
    size_t part_start = out->n;
    write_part(&w, b->part_refusal, text);
    size_t part_end = out->n;
    if (event_end(cv, &w) != 0) return -1;
    /* keep the part's JSON for the item's content list */
    struct stream_budget *bg = &cv->stream->budget;
    if (b->parts.n && !stream_acc_append(bg, &b->parts, SLICE_LIT(","))) return -1;
    if (!stream_acc_append(bg, &b->parts,
                           (struct slice){out->p + part_start, part_end - part_start}))
        return -1;
    stream_acc_free(bg, &b->acc);
    return 0;
}

static int finish_message(struct conv *cv, struct emit_block *b, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (!b->opened || b->client_closed) return 0;
    if (finish_part(cv, b, out) != 0) return -1;
    struct buf item = BUF_INIT;
    struct sw w;
    sw_begin(&w, &item);
    sw_raw(&w, "{\"id\":");
    sw_str(&w, buf_slice(&b->id));
    sw_raw(&w,
           ",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[");
    sw_rawn(&w, buf_slice(&b->parts));
    sw_raw(&w, "]}");
    int rc = w.fail ? -1 : item_done(cv, b, &item, out);
    buf_free(&item);
    b->client_closed = true;
    if (e->open_message >= 0 && &e->blocks[e->open_message] == b) e->open_message = -1;
    stream_emit_block_release(cv, b);
    return rc;
}

static int close_open_message(struct conv *cv, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (e->open_message < 0) return 0;
    return finish_message(cv, &e->blocks[e->open_message], out);
}

/* Makes sure block b has an open message item with an open part of the right kind. */
static int ensure_part(struct conv *cv, int key, struct emit_block *b, bool refusal,
                       struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    struct sw w;
    if (!b->opened) {
        if (close_open_message(cv, out) != 0) return -1;
        b->opened = true;
        b->index = e->next_index++;
        b->content_index = -1;
        if (!make_item_id(cv, b, "msg_")) return -1;
        event_begin(cv, &w, out, "response.output_item.added");
        sw_raw(&w, ",\"output_index\":");
        sw_long(&w, b->index);
        sw_raw(&w, ",\"item\":{\"id\":");
        sw_str(&w, buf_slice(&b->id));
        sw_raw(&w, ",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\","
                   "\"content\":[]}");
        if (event_end(cv, &w) != 0) return -1;
        e->open_message = key;
    }
    if (b->part_open && b->part_refusal == refusal) return 0;
    if (finish_part(cv, b, out) != 0) return -1;
    b->part_open = true;
    b->part_refusal = refusal;
    b->content_index++;
    event_begin(cv, &w, out, "response.content_part.added");
    item_ref(&w, b);
    sw_raw(&w, ",\"content_index\":");
    sw_long(&w, b->content_index);
    sw_raw(&w, ",\"part\":");
    write_part(&w, refusal, SLICE_LIT(""));
    return event_end(cv, &w);
}

static int text_delta(struct conv *cv, const struct ir_event *ev, bool refusal, struct buf *out)
{
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (!b->started || b->kind != IR_BLOCK_TEXT || b->client_closed || ev->text.n == 0 ||
        cv->stream->e.pending_finish)
        return 0;
    if (ensure_part(cv, ev->key, b, refusal, out) != 0) return -1;
    if (!stream_acc_append(&cv->stream->budget, &b->acc, ev->text)) return -1;
    struct sw w;
    event_begin(cv, &w, out, refusal ? "response.refusal.delta" : "response.output_text.delta");
    item_ref(&w, b);
    sw_raw(&w, ",\"content_index\":");
    sw_long(&w, b->content_index);
    sw_raw(&w, ",\"delta\":");
    sw_str(&w, ev->text);
    if (!refusal) sw_raw(&w, ",\"logprobs\":[]");
    return event_end(cv, &w);
}

/* ---- reasoning and tool items ----------------------------------------------------- */

/* `,"namespace":…` on the call items of a tool the client declared inside a namespace. */
static void tool_namespace(struct sw *w, const struct emit_block *b)
{
    if (!b->ns.n) return;
    sw_raw(w, ",\"namespace\":");
    sw_str(w, buf_slice(&b->ns));
}

static int item_added(struct conv *cv, struct emit_block *b, const char *prefix, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (close_open_message(cv, out) != 0) return -1;
    b->opened = true;
    b->index = e->next_index++;
    struct sw w;
    event_begin(cv, &w, out, "response.output_item.added");
    sw_raw(&w, ",\"output_index\":");
    sw_long(&w, b->index);
    sw_raw(&w, ",\"item\":{\"id\":");
    if (b->kind == IR_BLOCK_TOOL) {
        sw_str(&w, buf_slice(&b->id));
        sw_raw(&w, b->custom
                       ? ",\"type\":\"custom_tool_call\",\"status\":\"in_progress\",\"call_id\":"
                       : ",\"type\":\"function_call\",\"status\":\"in_progress\",\"call_id\":");
        sw_str(&w, buf_slice(&b->call_id));
        sw_raw(&w, ",\"name\":");
        sw_str(&w, buf_slice(&b->name));
        tool_namespace(&w, b);
        sw_raw(&w, b->custom ? ",\"input\":\"\"}" : ",\"arguments\":\"\"}");
    } else {
        if (!make_item_id(cv, b, prefix)) return -1;
        sw_str(&w, buf_slice(&b->id));
        sw_raw(&w, ",\"type\":\"reasoning\",\"summary\":[]}");
    }
    return event_end(cv, &w);
}

static int thinking_delta(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (!b->opened || b->kind != IR_BLOCK_THINKING || b->client_closed || ev->text.n == 0 ||
        cv->stream->e.pending_finish)
        return 0;
    struct sw w;
    if (!b->part_open) {
        b->part_open = true;
        event_begin(cv, &w, out, "response.reasoning_summary_part.added");
        item_ref(&w, b);
        sw_raw(&w, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
        if (event_end(cv, &w) != 0) return -1;
    }
    if (!stream_acc_append(&cv->stream->budget, &b->acc, ev->text)) return -1;
    event_begin(cv, &w, out, "response.reasoning_summary_text.delta");
    item_ref(&w, b);
    sw_raw(&w, ",\"summary_index\":0,\"delta\":");
    sw_str(&w, ev->text);
    return event_end(cv, &w);
}

static int finish_reasoning(struct conv *cv, struct emit_block *b, struct buf *out)
{
    struct slice text = buf_slice(&b->acc);
    struct sw w;
    if (b->part_open) {
        event_begin(cv, &w, out, "response.reasoning_summary_text.done");
        item_ref(&w, b);
        sw_raw(&w, ",\"summary_index\":0,\"text\":");
        sw_str(&w, text);
        if (event_end(cv, &w) != 0) return -1;
        event_begin(cv, &w, out, "response.reasoning_summary_part.done");
        item_ref(&w, b);
        sw_raw(&w, ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":");
        sw_str(&w, text);
        sw_raw(&w, "}");
        if (event_end(cv, &w) != 0) return -1;
    }
    struct buf item = BUF_INIT;
    sw_begin(&w, &item);
    sw_raw(&w, "{\"id\":");
    sw_str(&w, buf_slice(&b->id));
    sw_raw(&w, ",\"type\":\"reasoning\",\"summary\":[");
    if (b->part_open) {
        sw_raw(&w, "{\"type\":\"summary_text\",\"text\":");
        sw_str(&w, text);
        sw_raw(&w, "}");
    }
    sw_raw(&w, "]");
    if (b->sig.n && stream_include_encrypted(cv)) {
        sw_raw(&w, ",\"encrypted_content\":");
        sw_str(&w, buf_slice(&b->sig));
    }
    sw_raw(&w, "}");
    int rc = w.fail ? -1 : item_done(cv, b, &item, out);
    buf_free(&item);
    return rc;
}

/* A custom tool's call (a Responses client's free-form tool, §2.3): `input` text. */
static int finish_custom_tool(struct conv *cv, struct emit_block *b, struct buf *out)
{
    struct slice input = buf_slice(&b->acc);
    struct sw w;
    event_begin(cv, &w, out, "response.custom_tool_call_input.done");
    item_ref(&w, b);
    sw_raw(&w, ",\"input\":");
    sw_str(&w, input);
    if (event_end(cv, &w) != 0) return -1;
    struct buf item = BUF_INIT;
    sw_begin(&w, &item);
    sw_raw(&w, "{\"id\":");
    sw_str(&w, buf_slice(&b->id));
    sw_raw(&w, ",\"type\":\"custom_tool_call\",\"status\":\"completed\",\"call_id\":");
    sw_str(&w, buf_slice(&b->call_id));
    sw_raw(&w, ",\"name\":");
    sw_str(&w, buf_slice(&b->name));
    tool_namespace(&w, b);
    sw_raw(&w, ",\"input\":");
    sw_str(&w, input);
    sw_raw(&w, "}");
    int rc = w.fail ? -1 : item_done(cv, b, &item, out);
    buf_free(&item);
    return rc;
}

static int finish_tool(struct conv *cv, struct emit_block *b, struct buf *out)
{
    if (b->custom) return finish_custom_tool(cv, b, out);
    struct slice args = b->acc.n ? buf_slice(&b->acc) : SLICE_LIT("{}");
    struct sw w;
    event_begin(cv, &w, out, "response.function_call_arguments.done");
    item_ref(&w, b);
    sw_raw(&w, ",\"name\":");
    sw_str(&w, buf_slice(&b->name));
    sw_raw(&w, ",\"arguments\":");
    sw_str(&w, args);
    if (event_end(cv, &w) != 0) return -1;
    struct buf item = BUF_INIT;
    sw_begin(&w, &item);
    sw_raw(&w, "{\"id\":");
    sw_str(&w, buf_slice(&b->id));
    sw_raw(&w, ",\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":");
    sw_str(&w, buf_slice(&b->call_id));
    sw_raw(&w, ",\"name\":");
    sw_str(&w, buf_slice(&b->name));
    tool_namespace(&w, b);
    sw_raw(&w, ",\"arguments\":");
    sw_str(&w, args);
    sw_raw(&w, "}");
    int rc = w.fail ? -1 : item_done(cv, b, &item, out);
    buf_free(&item);
    return rc;
}

/* Closes block b at the client (whatever its kind). */
static int close_block(struct conv *cv, struct emit_block *b, struct buf *out)
{
    if (!b->opened || b->client_closed) return 0;
    if (b->kind == IR_BLOCK_TEXT) return finish_message(cv, b, out);
    int rc = 0;
    if (b->kind == IR_BLOCK_THINKING) rc = finish_reasoning(cv, b, out);
    if (b->kind == IR_BLOCK_TOOL) rc = finish_tool(cv, b, out);
    b->client_closed = true;
    stream_emit_block_release(cv, b);
    return rc;
}

static int block_start(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct stream_budget *bg = &cv->stream->budget;
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (b->started || cv->stream->e.pending_finish) return 0;
    b->started = true;
    b->kind = ev->block;
    switch (ev->block) {
    case IR_BLOCK_TEXT:
        return 0; /* the message item opens at the first delta */
    case IR_BLOCK_THINKING:
        return item_added(cv, b, "rs_", out);
    case IR_BLOCK_TOOL: {
        b->custom = ev->tool_custom;
        if (!stream_acc_append(bg, &b->id, b->custom ? SLICE_LIT("ctc_") : SLICE_LIT("fc_")))
            return -1;
        for (size_t i = 0; i < ev->tool_id.n; i++) {
            char c = ev->tool_id.p[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
            if (!stream_acc_append(bg, &b->id, (struct slice){ok ? &ev->tool_id.p[i] : "_", 1}))
                return -1;
        }
        if (!stream_acc_append(bg, &b->call_id, ev->tool_id) ||
            !stream_acc_append(bg, &b->name, ev->tool_name))
            return -1;
        struct slice original;
        const struct ir_tool *t = conv_tool_lookup(cv, ev->tool_name, &original);
        if (t && t->ns.n && !stream_acc_append(bg, &b->ns, t->ns)) return -1;
        return item_added(cv, b, "fc_", out);
    }
    case IR_BLOCK_REDACTED: {
        if (!stream_include_encrypted(cv)) return 0; /* nothing to show without it */
        b->kind = IR_BLOCK_THINKING;
        if (!stream_acc_append(bg, &b->sig, SLICE_LIT("gw1:anthropic-redacted:")) ||
            !stream_acc_append(bg, &b->sig, ev->redacted_data))
            return -1;
        if (item_added(cv, b, "rs_", out) != 0) return -1;
        return close_block(cv, b, out);
    }
    }
    return 0;
}

static int signature(struct conv *cv, const struct ir_event *ev)
{
    struct stream_budget *bg = &cv->stream->budget;
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (!b->opened || b->kind != IR_BLOCK_THINKING || b->client_closed || ev->text.n == 0) return 0;
    /* Claude's raw signature is wrapped for a client of another format (§2.7); the
     * Responses parser already hands over "gw1:openai:…". */
    if (cv->upstream == API_MESSAGES && b->sig.n == 0 &&
        !stream_acc_append(bg, &b->sig, SLICE_LIT("gw1:anthropic:")))
        return -1;
    return stream_acc_append(bg, &b->sig, ev->text) ? 0 : -1;
}

static int tool_args(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (!b->opened || b->kind != IR_BLOCK_TOOL || b->client_closed || ev->text.n == 0 ||
        cv->stream->e.pending_finish)
        return 0;
    if (!stream_acc_append(&cv->stream->budget, &b->acc, ev->text)) return -1;
    struct sw w;
    event_begin(cv, &w, out,
                b->custom ? "response.custom_tool_call_input.delta"
                          : "response.function_call_arguments.delta");
    item_ref(&w, b);
    sw_raw(&w, ",\"delta\":");
    sw_str(&w, ev->text);
    return event_end(cv, &w);
}

static int close_all(struct conv *cv, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    for (size_t i = 0; i < e->n_blocks; i++)
        if (close_block(cv, &e->blocks[i], out) != 0) return -1;
    return 0;
}

static int terminal(struct conv *cv, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    const char *reason = NULL;
    switch (e->finish) {
    case IR_FIN_MAX_TOKENS:
    case IR_FIN_CONTEXT_EXCEEDED:
        reason = "max_output_tokens";
        break;
    case IR_FIN_CONTENT_FILTER:
        reason = "content_filter";
        break;
    default:
        break;
    }
    struct sw w;
    event_begin(cv, &w, out, reason ? "response.incomplete" : "response.completed");
    sw_raw(&w, ",\"response\":");
    response_object(cv, &w, reason ? "incomplete" : "completed", true, reason, NULL, SLICE_NULL);
    if (event_end(cv, &w) != 0) return -1;
    e->terminal_done = true;
    return 0;
}

static int start(struct conv *cv, struct buf *out)
{
    cv->stream->e.started = true;
    static const char *const types[] = {"response.created", "response.in_progress"};
    for (int i = 0; i < 2; i++) {
        struct sw w;
        event_begin(cv, &w, out, types[i]);
        sw_raw(&w, ",\"response\":");
        response_object(cv, &w, "in_progress", false, NULL, NULL, SLICE_NULL);
        if (event_end(cv, &w) != 0) return -1;
    }
    return 0;
}

static int error(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    const char *code = stream_error_responses_code(cv, ev);
    struct sw w;
    event_begin(cv, &w, out, "error");
    sw_raw(&w, ",\"code\":");
    sw_cstr(&w, code);
    sw_raw(&w, ",\"message\":");
    sw_str(&w, ev->text);
    sw_raw(&w, ",\"param\":null");
    if (event_end(cv, &w) != 0) return -1;
    event_begin(cv, &w, out, "response.failed");
    sw_raw(&w, ",\"response\":");
    response_object(cv, &w, "failed", false, NULL, code, ev->text);
    return event_end(cv, &w);
}

int stream_emit_responses(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    struct emit_block *b;
    switch (ev->kind) {
    case IR_EV_START:
        return start(cv, out);
    case IR_EV_BLOCK_START:
        return block_start(cv, ev, out);
    case IR_EV_TEXT_DELTA:
        return text_delta(cv, ev, false, out);
    case IR_EV_REFUSAL_DELTA:
        return text_delta(cv, ev, true, out);
    case IR_EV_THINKING_DELTA:
        return thinking_delta(cv, ev, out);
    case IR_EV_SIGNATURE:
        return signature(cv, ev);
    case IR_EV_TOOL_ARGS:
        return tool_args(cv, ev, out);
    case IR_EV_BLOCK_STOP:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        if (b->closed || !b->started) return 0;
        b->closed = true;
        if (!b->opened) {
            stream_emit_block_release(cv, b);
            return 0;
        }
        return close_block(cv, b, out);
    case IR_EV_USAGE:
        return e->pending_finish ? terminal(cv, out) : 0;
    case IR_EV_FINISH:
        if (e->pending_finish) return 0;
        if (close_all(cv, out) != 0) return -1;
        e->pending_finish = true;
        e->finish = ev->finish;
        return 0;
    case IR_EV_END:
        if (!e->pending_finish) {
            if (close_all(cv, out) != 0) return -1;
            e->pending_finish = true;
            e->finish = IR_FIN_END_TURN;
        }
        return terminal(cv, out);
    case IR_EV_ERROR:
        return error(cv, ev, out);
    }
    return 0;
}
