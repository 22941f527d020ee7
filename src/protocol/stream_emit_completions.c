/* stream_emit_completions.c — IR events → legacy Completions chunks
 * (format-conversion.md §5.3, "L emitter").
 *
 * Only text reaches a legacy client (a refusal is text too); thinking and tool calls are
 * dropped. Text deltas become `text_completion` chunks, the finish a chunk with text "" and
 * the finish_reason, then (deferred like the Chat emitter) a usage chunk when the client
 * asked for one, and [DONE]. Errors end the stream with `data: {"error":…}`. */
#include "protocol/errors.h"
#include "protocol/stream_internal.h"

static int chunk(struct conv *cv, struct slice text, const char *finish, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    struct sw w;
    sw_begin(&w, out);
    sw_event(&w, NULL);
    sw_raw(&w, "{\"id\":");
    sw_str(&w, st->id);
    sw_raw(&w, ",\"object\":\"text_completion\",\"created\":");
    sw_long(&w, st->created);
    sw_raw(&w, ",\"model\":");
    sw_str(&w, st->model);
    sw_raw(&w, ",\"choices\":[{\"text\":");
    sw_str(&w, text);
    sw_raw(&w, ",\"index\":0,\"logprobs\":null,\"finish_reason\":");
    if (finish)
        sw_cstr(&w, finish);
    else
        sw_raw(&w, "null");
    sw_raw(&w, "}]");
    if (stream_include_usage(cv)) sw_raw(&w, ",\"usage\":null");
    sw_raw(&w, "}");
    return sw_end(&w);
}

static const char *finish_value(enum ir_finish f)
{
    switch (f) {
    case IR_FIN_MAX_TOKENS:
    case IR_FIN_CONTEXT_EXCEEDED:
        return "length";
    case IR_FIN_CONTENT_FILTER:
        return "content_filter";
    default:
        return "stop";
    }
}

static int terminal(struct conv *cv, struct buf *out)
{
    return stream_emit_openai_terminal(cv, "text_completion", out);
}

static int finish(struct conv *cv, enum ir_finish f, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (e->pending_finish) return 0;
    e->pending_finish = true;
    e->finish = f;
    return chunk(cv, SLICE_LIT(""), finish_value(f), out);
}

int stream_emit_completions(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    switch (ev->kind) {
    case IR_EV_START:
        e->started = true;
        return 0;
    case IR_EV_TEXT_DELTA:
    case IR_EV_REFUSAL_DELTA:
        if (ev->text.n == 0 || e->pending_finish) return 0;
        return chunk(cv, ev->text, NULL, out);
    case IR_EV_USAGE:
        return e->pending_finish ? terminal(cv, out) : 0;
    case IR_EV_FINISH:
        return finish(cv, ev->finish, out);
    case IR_EV_END:
        if (!e->pending_finish && finish(cv, IR_FIN_END_TURN, out) != 0) return -1;
        return terminal(cv, out);
    case IR_EV_ERROR: {
        const char *type, *code;
        stream_error_openai(cv, ev, &type, &code);
        return errors_write_openai_event(out, ev->text, type, code) ? 0 : -1;
    }
    default:
        return 0; /* thinking, signatures and tool calls have no legacy form */
    }
}
