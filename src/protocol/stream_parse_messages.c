/* stream_parse_messages.c — Claude Messages stream events → IR events
 * (format-conversion.md §5.2, "B parser").
 *
 * Nearly 1:1. Block keys are re-numbered densely in start order (the upstream's `index`
 * is only used to find the block again); server-tool blocks and unknown block types are
 * remembered so their deltas and stop are skipped. A tool_use start's `input` is ignored
 * (always `{}` on the real API) unless no input_json_delta follows (§2.4). Usage is kept
 * as the raw Claude snapshot (input, cache reads, cache writes, output: the latest value of
 * each wins) and converted to the IR's totals on every change. The name of an event is
 * taken from the data's `type` when present (some compatible upstreams send no `event:`
 * line). */
#include <stdlib.h>

#include "protocol/stream_internal.h"

static int put(struct conv *cv, struct ir_event *ev, struct buf *out)
{
    return stream_dispatch(cv, ev, out);
}

/* The open block with this upstream index, newest first. */
static struct parse_messages_block *find_block(struct parse_messages *p, long index)
{
    for (size_t i = p->n_blocks; i-- > 0;)
        if (p->blocks[i].upstream_index == index && p->blocks[i].open) return &p->blocks[i];
    return NULL;
}

static long count(json_t *obj, const char *key)
{
    long v;
    return stream_json_long(obj, key, &v) && v >= 0 ? v : -1;
}

/* Folds a Claude usage object into the raw snapshot and writes the IR usage into *ev
 * (a USAGE event, or the START event of message_start). -1 when u is not an object. */
static int usage_fill(struct conv *cv, json_t *u, struct ir_event *ev)
{
    struct parse_messages *p = &cv->stream->p.messages;
    if (!json_is_object(u)) return -1;
    long v;
    if ((v = count(u, "input_tokens")) >= 0) p->in = v;
    if ((v = count(u, "cache_read_input_tokens")) >= 0) p->cache_read = v;
    if ((v = count(u, "cache_creation_input_tokens")) >= 0) p->cache_write = v;
    if ((v = count(u, "output_tokens")) >= 0) p->out = v;
    if ((v = count(json_object_get(u, "output_tokens_details"), "thinking_tokens")) >= 0)
        p->reasoning = v;
    ev->has_usage = true;
    if (p->in >= 0)
        ev->usage.input_total = p->in + (p->cache_read > 0 ? p->cache_read : 0) +
                                (p->cache_write > 0 ? p->cache_write : 0);
    ev->usage.cache_read = p->cache_read;
    ev->usage.cache_write = p->cache_write;
    ev->usage.output_total = p->out;
    ev->usage.reasoning = p->reasoning;
    return 0;
}

static int usage(struct conv *cv, json_t *u, struct buf *out)
{
    if (!u || json_is_null(u)) return 0;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_USAGE);
    if (usage_fill(cv, u, &ev) != 0) return -1;
    return put(cv, &ev, out);
}

static int message_start(struct conv *cv, json_t *obj, struct buf *out)
{
    json_t *msg = json_object_get(obj, "message");
    if (!json_is_object(msg)) return -1;
    if (cv->stream->e.started) return 0; /* a replayed message_start */
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_START);
    ev.id = stream_json_str(msg, "id");
    ev.model = stream_json_str(msg, "model");
    /* the input counts go into message_start for a Claude client (§5.3) */
    json_t *u = json_object_get(msg, "usage");
    if (u && !json_is_null(u) && usage_fill(cv, u, &ev) != 0) return -1;
    return put(cv, &ev, out);
}

static int block_start(struct conv *cv, json_t *obj, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    struct stream_budget *bg = &cv->stream->budget;
    long index;
    json_t *cb = json_object_get(obj, "content_block");
    if (!stream_json_long(obj, "index", &index) || !json_is_object(cb)) return -1;
    if (find_block(p, index)) return 0; /* replayed start of an open block */
    if (!stream_array_reserve(bg, (void **)&p->blocks, &p->cap_blocks, sizeof *p->blocks,
                              p->n_blocks))
        return -1;
    struct parse_messages_block *b = &p->blocks[p->n_blocks++];
    memset(b, 0, sizeof *b);
    b->upstream_index = index;
    b->open = true;
    b->key = -1;

    struct slice type = stream_json_str(cb, "type");
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_BLOCK_START);
    struct slice first = SLICE_NULL;
    enum ir_event_kind first_kind = IR_EV_TEXT_DELTA;
    if (slice_eq_str(type, "text")) {
        ev.block = IR_BLOCK_TEXT;
        first = stream_json_str(cb, "text");
    } else if (slice_eq_str(type, "thinking")) {
        ev.block = IR_BLOCK_THINKING;
        first = stream_json_str(cb, "thinking");
        first_kind = IR_EV_THINKING_DELTA;
    } else if (slice_eq_str(type, "redacted_thinking")) {
        ev.block = IR_BLOCK_REDACTED;
        ev.redacted_data = stream_json_str(cb, "data");
    } else if (slice_eq_str(type, "tool_use")) {
        ev.block = IR_BLOCK_TOOL;
        ev.tool_id = stream_json_str(cb, "id");
        ev.tool_name = stream_json_str(cb, "name");
        json_t *input = json_object_get(cb, "input");
        if (json_is_object(input) && json_object_size(input) > 0) {
            char *s = json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY);
            bool ok = s && stream_acc_append(bg, &b->start_input, slice_from(s));
            free(s);
            if (!ok) return -1;
        }
        p->saw_tool = true;
    } else {
        return 0; /* server_tool_use, *_tool_result, future types: not for other formats */
    }
    b->kind = ev.block;
    b->key = ev.key = p->next_key++;
    if (put(cv, &ev, out) != 0) return -1;
    if (first.n) {
        stream_event_init(&ev, first_kind);
        ev.key = b->key;
        ev.text = first;
        return put(cv, &ev, out);
    }
    return 0;
}

static int block_delta(struct conv *cv, json_t *obj, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    long index;
    json_t *d = json_object_get(obj, "delta");
    if (!stream_json_long(obj, "index", &index) || !json_is_object(d)) return -1;
    struct parse_messages_block *b = find_block(p, index);
    if (!b || b->key < 0) return 0;
    struct slice type = stream_json_str(d, "type");
    struct ir_event ev;
    const char *field;
    if (slice_eq_str(type, "text_delta")) {
        stream_event_init(&ev, IR_EV_TEXT_DELTA);
        field = "text";
    } else if (slice_eq_str(type, "thinking_delta")) {
        stream_event_init(&ev, IR_EV_THINKING_DELTA);
        field = "thinking";
    } else if (slice_eq_str(type, "signature_delta")) {
        stream_event_init(&ev, IR_EV_SIGNATURE);
        field = "signature";
    } else if (slice_eq_str(type, "input_json_delta")) {
        stream_event_init(&ev, IR_EV_TOOL_ARGS);
        field = "partial_json";
    } else {
        return 0; /* citations_delta and future delta types */
    }
    json_t *v = json_object_get(d, field);
    if (!json_is_string(v)) return -1;
    ev.text = (struct slice){json_string_value(v), json_string_length(v)};
    if (ev.text.n == 0) return 0; /* the first partial_json is usually "" */
    if (ev.kind == IR_EV_TOOL_ARGS) {
        if (b->kind != IR_BLOCK_TOOL) return 0;
        b->got_args = true;
    }
    ev.key = b->key;
    return put(cv, &ev, out);
}

static int block_stop(struct conv *cv, json_t *obj, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    long index;
    if (!stream_json_long(obj, "index", &index)) return -1;
    struct parse_messages_block *b = find_block(p, index);
    if (!b) return 0;
    b->open = false;
    if (b->key < 0) return 0;
    struct ir_event ev;
    if (b->kind == IR_BLOCK_TOOL && !b->got_args && b->start_input.n) {
        stream_event_init(&ev, IR_EV_TOOL_ARGS);
        ev.key = b->key;
        ev.text = buf_slice(&b->start_input);
        if (put(cv, &ev, out) != 0) return -1;
    }
    stream_acc_free(&cv->stream->budget, &b->start_input);
    stream_event_init(&ev, IR_EV_BLOCK_STOP);
    ev.key = b->key;
    return put(cv, &ev, out);
}

/* Closes blocks an upstream left open (so that every started key is stopped). */
static int close_all(struct conv *cv, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    for (size_t i = 0; i < p->n_blocks; i++) {
        struct parse_messages_block *b = &p->blocks[i];
        if (!b->open) continue;
        b->open = false;
        if (b->key < 0) continue;
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_BLOCK_STOP);
        ev.key = b->key;
        if (put(cv, &ev, out) != 0) return -1;
    }
    return 0;
}

static enum ir_finish map_stop(struct slice r)
{
    if (slice_eq_str(r, "end_turn")) return IR_FIN_END_TURN;
    if (slice_eq_str(r, "stop_sequence")) return IR_FIN_STOP_SEQUENCE;
    if (slice_eq_str(r, "max_tokens")) return IR_FIN_MAX_TOKENS;
    if (slice_eq_str(r, "tool_use")) return IR_FIN_TOOL_USE;
    if (slice_eq_str(r, "refusal")) return IR_FIN_CONTENT_FILTER;
    if (slice_eq_str(r, "pause_turn")) return IR_FIN_PAUSE_TURN;
    if (slice_eq_str(r, "model_context_window_exceeded")) return IR_FIN_CONTEXT_EXCEEDED;
    return IR_FIN_UNKNOWN;
}

static int message_delta(struct conv *cv, json_t *obj, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    json_t *d = json_object_get(obj, "delta");
    if (d && !json_is_null(d) && !json_is_object(d)) return -1;
    if (usage(cv, json_object_get(obj, "usage"), out) != 0) return -1;
    json_t *sr = json_object_get(d, "stop_reason");
    if (!json_is_string(sr) || p->saw_finish) return 0;
    if (close_all(cv, out) != 0) return -1;
    p->saw_finish = true;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_FINISH);
    ev.finish = map_stop((struct slice){json_string_value(sr), json_string_length(sr)});
    ev.stop_sequence = stream_json_str(d, "stop_sequence");
    return put(cv, &ev, out);
}

static int end(struct conv *cv, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    if (!p->saw_finish) {
        /* message_stop without message_delta: complete, but without a stop reason. */
        if (close_all(cv, out) != 0) return -1;
        p->saw_finish = true;
        struct ir_event ev;
        stream_event_init(&ev, IR_EV_FINISH);
        ev.finish = p->saw_tool ? IR_FIN_TOOL_USE : IR_FIN_END_TURN;
        if (put(cv, &ev, out) != 0) return -1;
    }
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_END);
    return put(cv, &ev, out);
}

static int error_event(struct conv *cv, json_t *obj, struct buf *out)
{
    json_t *err = json_object_get(obj, "error");
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.error_type = stream_json_str(err, "type");
    ev.text = stream_json_str(err, "message");
    if (ev.text.n == 0) ev.text = SLICE_LIT("upstream error");
    ev.status = stream_status_for_error_type(ev.error_type);
    if (!ev.status) ev.status = 500;
    return put(cv, &ev, out);
}

int stream_parse_messages(struct conv *cv, struct slice event, json_t *obj, struct buf *out)
{
    struct slice type = stream_json_str(obj, "type");
    if (type.n == 0) type = event;
    if (slice_eq_str(type, "message_start")) return message_start(cv, obj, out);
    if (slice_eq_str(type, "content_block_start")) return block_start(cv, obj, out);
    if (slice_eq_str(type, "content_block_delta")) return block_delta(cv, obj, out);
    if (slice_eq_str(type, "content_block_stop")) return block_stop(cv, obj, out);
    if (slice_eq_str(type, "message_delta")) return message_delta(cv, obj, out);
    if (slice_eq_str(type, "message_stop")) return end(cv, out);
    if (slice_eq_str(type, "error")) return error_event(cv, obj, out);
    return 0; /* ping and event types added later */
}

int stream_parse_messages_eof(struct conv *cv, struct buf *out)
{
    struct parse_messages *p = &cv->stream->p.messages;
    if (cv->stream->status != CONV_STREAM_OPEN) return 0;
    if (p->saw_finish) return end(cv, out); /* only message_stop was missing */
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.status = 502;
    ev.text = SLICE_LIT("upstream closed the stream before the end of the response");
    return put(cv, &ev, out);
}
