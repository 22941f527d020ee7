/* stream_emit_chat.c — IR events → OpenAI Chat Completions chunks
 * (format-conversion.md §5.3, "A emitter").
 *
 * Every chunk carries the same id, created and model; with `include_usage` every chunk
 * also has "usage":null and the usage chunk (choices:[]) comes before [DONE]. Tool calls get
 * a dense index 0, 1, 2… in start order (never the upstream's block index); argument
 * fragments are written the moment they arrive. The finish chunk goes out at once; the
 * usage chunk and [DONE] wait for the end of the upstream stream or for the usage that
 * follows the finish. An error ends the stream with `data: {"error":…}` and no [DONE]. */
#include "protocol/errors.h"
#include "protocol/stream_internal.h"

/* Writes `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,"delta":` */
static void chunk_begin(struct conv *cv, struct sw *w, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    sw_begin(w, out);
    sw_event(w, NULL);
    sw_raw(w, "{\"id\":");
    sw_str(w, st->id);
    sw_raw(w, ",\"object\":\"chat.completion.chunk\",\"created\":");
    sw_long(w, st->created);
    sw_raw(w, ",\"model\":");
    sw_str(w, st->model);
    sw_raw(w, ",\"choices\":[{\"index\":0,\"delta\":");
}

/* Closes the choice (finish_reason null unless given) and the chunk. */
static int chunk_end(struct conv *cv, struct sw *w, const char *finish)
{
    sw_raw(w, ",\"logprobs\":null,\"finish_reason\":");
    if (finish)
        sw_cstr(w, finish);
    else
        sw_raw(w, "null");
    sw_raw(w, "}]");
    if (stream_include_usage(cv)) sw_raw(w, ",\"usage\":null");
    sw_raw(w, "}");
    return sw_end(w);
}

/* A chunk whose delta has one string member. */
static int delta_string(struct conv *cv, const char *field, struct slice text, struct buf *out)
{
    if (text.n == 0) return 0;
    struct sw w;
    chunk_begin(cv, &w, out);
    sw_raw(&w, "{\"");
    sw_raw(&w, field);
    sw_raw(&w, "\":");
    sw_str(&w, text);
    sw_raw(&w, "}");
    return chunk_end(cv, &w, NULL);
}

static const char *reasoning_field(const struct conv *cv)
{
    if (!cv->profile) return "reasoning_content";
    switch (cv->profile->chat_reasoning_field) {
    case IR_REASONING_FIELD_REASONING:
        return "reasoning";
    case IR_REASONING_FIELD_NONE:
        return NULL;
    default:
        return "reasoning_content";
    }
}

/* litellm's `thinking_blocks` delta, only with the profile's chat_emit_thinking_blocks. */
static int thinking_block(struct conv *cv, const char *type, const char *field, const char *wrap,
                          struct slice value, struct buf *out)
{
    if (!cv->profile || !cv->profile->chat_emit_thinking_blocks || value.n == 0) return 0;
    struct sw w;
    struct buf tmp = BUF_INIT;
    bool wrapped = cv->upstream == API_MESSAGES; /* Claude's raw values get the gw1 prefix */
    if (wrapped && (!buf_append_str(&tmp, wrap) || !buf_append(&tmp, value.p, value.n))) {
        buf_free(&tmp);
        return -1;
    }
    chunk_begin(cv, &w, out);
    sw_raw(&w, "{\"thinking_blocks\":[{\"type\":");
    sw_cstr(&w, type);
    if (!strcmp(type, "thinking")) sw_raw(&w, ",\"thinking\":\"\"");
    sw_raw(&w, ",\"");
    sw_raw(&w, field);
    sw_raw(&w, "\":");
    sw_str(&w, wrapped ? buf_slice(&tmp) : value);
    sw_raw(&w, "}]}");
    int rc = chunk_end(cv, &w, NULL);
    buf_free(&tmp);
    return rc;
}

static int terminal(struct conv *cv, struct buf *out)
{
    return stream_emit_openai_terminal(cv, "chat.completion.chunk", out);
}

static int finish(struct conv *cv, enum ir_finish f, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    if (e->pending_finish) return 0;
    if (f == IR_FIN_TOOL_USE && !e->any_tool) f = IR_FIN_END_TURN; /* §4.1, E25 */
    e->pending_finish = true;
    e->finish = f;
    struct sw w;
    chunk_begin(cv, &w, out);
    sw_raw(&w, "{}");
    return chunk_end(cv, &w, stream_finish_chat(f));
}

int stream_emit_chat(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct stream_emit *e = &cv->stream->e;
    struct emit_block *b;
    struct sw w;

    switch (ev->kind) {
    case IR_EV_START:
        e->started = true;
        chunk_begin(cv, &w, out);
        sw_raw(&w, "{\"role\":\"assistant\",\"content\":\"\"}");
        return chunk_end(cv, &w, NULL);
    case IR_EV_TEXT_DELTA:
        if (e->pending_finish) return 0;
        return delta_string(cv, "content", ev->text, out);
    case IR_EV_REFUSAL_DELTA:
        if (e->pending_finish) return 0;
        return delta_string(cv, "refusal", ev->text, out);
    case IR_EV_THINKING_DELTA: {
        const char *field = reasoning_field(cv);
        if (!field || e->pending_finish) return 0;
        return delta_string(cv, field, ev->text, out);
    }
    case IR_EV_SIGNATURE:
        return thinking_block(cv, "thinking", "signature", "gw1:anthropic:", ev->text, out);
    case IR_EV_BLOCK_START:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        b->kind = ev->block;
        b->started = true;
        if (ev->block == IR_BLOCK_REDACTED)
            return thinking_block(cv, "redacted_thinking", "data",
                                  "gw1:anthropic-redacted:", ev->redacted_data, out);
        if (ev->block != IR_BLOCK_TOOL || e->pending_finish) return 0;
        b->opened = true;
        b->index = e->next_index++;
        e->any_tool = true;
        chunk_begin(cv, &w, out);
        sw_raw(&w, "{\"tool_calls\":[{\"index\":");
        sw_long(&w, b->index);
        sw_raw(&w, ",\"id\":");
        sw_str(&w, ev->tool_id);
        sw_raw(&w, ",\"type\":\"function\",\"function\":{\"name\":");
        sw_str(&w, ev->tool_name);
        sw_raw(&w, ",\"arguments\":\"\"}}]}");
        return chunk_end(cv, &w, NULL);
    case IR_EV_TOOL_ARGS:
        if (!(b = stream_emit_block(cv, ev->key))) return -1;
        if (!b->opened || b->kind != IR_BLOCK_TOOL || ev->text.n == 0 || e->pending_finish)
            return 0;
        chunk_begin(cv, &w, out);
        sw_raw(&w, "{\"tool_calls\":[{\"index\":");
        sw_long(&w, b->index);
        sw_raw(&w, ",\"function\":{\"arguments\":");
        sw_str(&w, ev->text);
        sw_raw(&w, "}}]}");
        return chunk_end(cv, &w, NULL);
    case IR_EV_BLOCK_STOP:
        return 0;
    case IR_EV_USAGE:
        return e->pending_finish ? terminal(cv, out) : 0;
    case IR_EV_FINISH:
        return finish(cv, ev->finish, out);
    case IR_EV_END:
        if (!e->pending_finish &&
            finish(cv, e->any_tool ? IR_FIN_TOOL_USE : IR_FIN_END_TURN, out) != 0)
            return -1;
        return terminal(cv, out);
    case IR_EV_ERROR: {
        const char *type, *code;
        stream_error_openai(cv, ev, &type, &code);
        return errors_write_openai_event(out, ev->text, type, code) ? 0 : -1;
    }
    }
    return 0;
}
