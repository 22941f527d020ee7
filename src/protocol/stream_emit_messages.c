/* stream_emit_messages.c — IR events → Claude Messages SSE events
 * (format-conversion.md §5.3, "B emitter").
 *
 * message_start always comes first. Content indexes are 0, 1, 2… in the order blocks open
 * at the client (the official SDK addresses deltas with content.at(index)), and at most one
 * block is open at a time: opening a block closes the open one. Text and thinking blocks
 * open lazily at their first delta, so no empty block is ever sent. A thinking block's
 * signature is held back and sent as signature_delta right before its content_block_stop.
 * A FINISH closes the open block at once; message_delta (stop reason and final usage) and
 * message_stop wait for the end of the upstream stream or for the usage that follows the
 * finish. An error ends the stream with `event: error` and no message_stop.
 *
 * Fields the real API sends as null are sent as null (text `citations`, message_delta
 * `container` and `stop_details`, usage `server_tool_use`); tool_use blocks carry the
 * direct `caller`. */
#include "protocol/errors.h"
#include "protocol/stream_internal.h"

static void event_begin(struct sw *w, struct buf *out, const char *type)
{
    sw_begin(w, out);
    sw_event(w, type);
    sw_raw(w, "{\"type\":\"");
    sw_raw(w, type);
    sw_raw(w, "\"");
}

static int event_end(struct sw *w)
{
    sw_raw(w, "}");
    return sw_end(w);
}

static int write_stop(struct conv *cv, struct emit_block *b, struct buf *out)
{
    struct sw w;
    if (b->kind == IR_BLOCK_THINKING && b->sig.n) {
        event_begin(&w, out, "content_block_delta");
        sw_raw(&w, ",\"index\":");
        sw_long(&w, b->index);
        sw_raw(&w, ",\"delta\":{\"type\":\"signature_delta\",\"signature\":");
        sw_str(&w, buf_slice(&b->sig));
        sw_raw(&w, "}");
        if (event_end(&w) != 0) return -1;
    }
    event_begin(&w, out, "content_block_stop");
    sw_raw(&w, ",\"index\":");
    sw_long(&w, b->index);
    if (event_end(&w) != 0) return -1;
    b->client_closed = true;
    stream_emit_block_release(cv, b);
    return 0;
}

/* Closes the block open at the client, if any. */
static int close_open(struct conv *cv, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (e->open_key < 0) return 0;
    struct emit_block *b = &e->blocks[e->open_key];
    e->open_key = -1;
    return write_stop(cv, b, out);
}

/* Opens block `key` at the client: content_block_start with the next index. */
static int open_block(struct conv *cv, int key, const struct ir_event *ev, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (close_open(cv, out) != 0) return -1;
    struct emit_block *b = &e->blocks[key];
    b->opened = true;
    b->index = e->next_index++;
    struct sw w;
    event_begin(&w, out, "content_block_start");
    sw_raw(&w, ",\"index\":");
    sw_long(&w, b->index);
    sw_raw(&w, ",\"content_block\":");
    switch (b->kind) {
    case IR_BLOCK_TEXT:
        sw_raw(&w, "{\"type\":\"text\",\"text\":\"\",\"citations\":null}");
        break;
    case IR_BLOCK_THINKING:
        sw_raw(&w, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
        break;
    case IR_BLOCK_REDACTED:
        sw_raw(&w, "{\"type\":\"redacted_thinking\",\"data\":");
        sw_str(&w, ev->redacted_data);
        sw_raw(&w, "}");
        break;
    case IR_BLOCK_TOOL:
        sw_raw(&w, "{\"type\":\"tool_use\",\"id\":");
        sw_str(&w, ev->tool_id);
        sw_raw(&w, ",\"name\":");
        sw_str(&w, ev->tool_name);
        sw_raw(&w, ",\"input\":{},\"caller\":{\"type\":\"direct\"}}");
        e->any_tool = true;
        break;
    }
    if (event_end(&w) != 0) return -1;
    e->open_key = key;
    return 0;
}

static int delta(struct conv *cv, const struct ir_event *ev, enum ir_block_kind want,
                 const char *type, const char *field, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    struct emit_block *b = stream_emit_block(cv, ev->key);
    if (!b) return -1;
    if (ev->text.n == 0 || !b->started || b->kind != want || e->pending_finish) return 0;
    if (want == IR_BLOCK_TOOL) {
        /* Tool blocks open at their start. When an upstream interleaves the fragments of
         * parallel calls, a call's block may already be closed by the next one: its
         * fragments still go to its index (the SDK folds deltas by index), never lost. */
        if (!b->opened) return 0;
    } else {
        if (b->client_closed) return 0;
        if (!b->opened && open_block(cv, ev->key, ev, out) != 0) return -1;
    }
    struct sw w;
    event_begin(&w, out, "content_block_delta");
    sw_raw(&w, ",\"index\":");
    sw_long(&w, b->index);
    sw_raw(&w, ",\"delta\":{\"type\":\"");
    sw_raw(&w, type);
    sw_raw(&w, "\",\"");
    sw_raw(&w, field);
    sw_raw(&w, "\":");
    sw_str(&w, ev->text);
    sw_raw(&w, "}");
    return event_end(&w);
}

static int terminal(struct conv *cv, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    enum ir_finish f = e->finish;
    if (f == IR_FIN_TOOL_USE && !e->any_tool) f = IR_FIN_END_TURN; /* §4.1, E25 */
    bool has_seq = f == IR_FIN_STOP_SEQUENCE && e->stop_sequence.n;
    struct sw w;
    event_begin(&w, out, "message_delta");
    sw_raw(&w, ",\"delta\":{\"stop_reason\":");
    sw_cstr(&w, stream_finish_messages(f, has_seq));
    sw_raw(&w, ",\"stop_sequence\":");
    if (has_seq)
        sw_str(&w, buf_slice(&e->stop_sequence));
    else
        sw_raw(&w, "null");
    sw_raw(&w, ",\"container\":null,\"stop_details\":null},\"usage\":");
    stream_write_usage_messages(&w, &cv->usage);
    sw_raw(&w, "}\n\n");
    sw_raw(&w, "event: message_stop\ndata: {\"type\":\"message_stop\"}");
    if (sw_end(&w) != 0) return -1;
    e->terminal_done = true;
    return 0;
}

static int finish(struct conv *cv, enum ir_finish f, struct slice stop_sequence, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (e->pending_finish) return 0;
    if (close_open(cv, out) != 0) return -1;
    e->pending_finish = true;
    e->finish = f;
    if (stop_sequence.n > 4096) stop_sequence.n = 0; /* not a stop sequence anyone set */
    return stream_acc_append(&cv->stream->budget, &e->stop_sequence, stop_sequence) ? 0 : -1;
}

static int start(struct conv *cv, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    st->e.started = true;
    struct sw w;
    event_begin(&w, out, "message_start");
    sw_raw(&w, ",\"message\":{\"id\":");
    sw_str(&w, st->id);
    sw_raw(&w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sw_str(&w, st->model);
    sw_raw(&w, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    stream_write_usage_messages(&w, &cv->usage);
    sw_raw(&w, "}");
    return event_end(&w);
}

int stream_emit_messages(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    struct emit_block *b;

    switch (ev->kind) {
    case IR_EV_START:
        return start(cv, out);
    case IR_EV_BLOCK_START:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        if (b->started || e->pending_finish) return 0;
        b->started = true;
        b->kind = ev->block;
        if (ev->block == IR_BLOCK_TOOL) return open_block(cv, ev->key, ev, out);
        if (ev->block == IR_BLOCK_REDACTED) {
            if (open_block(cv, ev->key, ev, out) != 0) return -1;
            return close_open(cv, out);
        }
        return 0; /* text and thinking open at their first delta */
    case IR_EV_TEXT_DELTA:
    case IR_EV_REFUSAL_DELTA:
        return delta(cv, ev, IR_BLOCK_TEXT, "text_delta", "text", out);
    case IR_EV_THINKING_DELTA:
        return delta(cv, ev, IR_BLOCK_THINKING, "thinking_delta", "thinking", out);
    case IR_EV_TOOL_ARGS:
        return delta(cv, ev, IR_BLOCK_TOOL, "input_json_delta", "partial_json", out);
    case IR_EV_SIGNATURE:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        if (b->kind != IR_BLOCK_THINKING || b->client_closed) return 0;
        return stream_acc_append(&cv->stream->budget, &b->sig, ev->text) ? 0 : -1;
    case IR_EV_BLOCK_STOP:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        if (b->closed || !b->started) return 0;
        b->closed = true;
        /* A thinking block that only carries a signature still reaches the client. */
        if (!b->opened && b->kind == IR_BLOCK_THINKING && b->sig.n && !e->pending_finish &&
            open_block(cv, ev->key, ev, out) != 0)
            return -1;
        if (e->open_key == ev->key) return close_open(cv, out);
        stream_emit_block_release(cv, b);
        return 0;
    case IR_EV_USAGE:
        return e->pending_finish ? terminal(cv, out) : 0;
    case IR_EV_FINISH:
        return finish(cv, ev->finish, ev->stop_sequence, out);
    case IR_EV_END:
        if (!e->pending_finish &&
            finish(cv, e->any_tool ? IR_FIN_TOOL_USE : IR_FIN_END_TURN, SLICE_NULL, out) != 0)
            return -1;
        return terminal(cv, out);
    case IR_EV_ERROR:
        return errors_write_claude_event(out, stream_error_claude_type(cv, ev), ev->text) ? 0 : -1;
    }
    return 0;
}
