/* stream.c — stream conversion entry points (conv_stream_event, conv_stream_end,
 * conv_stream_error, conv_stream_status) and the plumbing shared by the parsers and
 * emitters: the lazily created state, the dispatcher between them, budgeted buffers, a
 * small JSON/SSE writer and the usage, finish and error tables of format-conversion.md
 * §4.1, §4.2 and §6.2 as the streams need them.
 *
 * Each upstream event's data is parsed with jansson (one small DOM per event, released
 * before returning); the IR events it yields point into that DOM and are consumed by the
 * emitter at once, so nothing per event outlives the call. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "protocol/errors.h"
#include "protocol/response.h"
#include "protocol/stream_internal.h"

/* ---- budgeted buffers ------------------------------------------------------------- */

bool stream_acc_append(struct stream_budget *bg, struct buf *b, struct slice s)
{
    if (s.n == 0) return true;
    size_t before = b->cap;
    if (b->n + s.n > b->cap) {
        /* Refuse growth past the budget before allocating: the check uses the size the
         * buffer needs, so a buffer never holds more than the budget allows. */
        if (bg->used + (b->n + s.n - before) > bg->max) {
            bg->exceeded = true;
            return false;
        }
    }
    if (!buf_append(b, s.p, s.n)) return false;
    bg->used += b->cap - before;
    if (bg->used > bg->max) bg->exceeded = true; /* geometric growth overshoot */
    return true;
}

void stream_acc_free(struct stream_budget *bg, struct buf *b)
{
    bg->used -= b->cap <= bg->used ? b->cap : bg->used;
    buf_free(b);
}

bool stream_array_reserve(struct stream_budget *bg, void **arr, size_t *cap, size_t elem,
                          size_t need)
{
    if (need < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap <= need) ncap *= 2;
    if (ncap > SIZE_MAX / elem) return false;
    size_t grow = (ncap - *cap) * elem;
    if (bg->used + grow > bg->max) {
        bg->exceeded = true;
        return false;
    }
    char *p = realloc(*arr, ncap * elem);
    if (!p) return false;
    memset(p + *cap * elem, 0, grow);
    *arr = p;
    *cap = ncap;
    bg->used += grow;
    return true;
}

/* ---- state ------------------------------------------------------------------------ */

void stream_emit_block_release(struct conv *cv, struct emit_block *b)
{
    struct stream_budget *bg = &cv->stream->budget;
    stream_acc_free(bg, &b->id);
    stream_acc_free(bg, &b->call_id);
    stream_acc_free(bg, &b->name);
    stream_acc_free(bg, &b->acc);
    stream_acc_free(bg, &b->sig);
    stream_acc_free(bg, &b->parts);
    stream_acc_free(bg, &b->redacted);
    stream_acc_free(bg, &b->ns);
}

static void state_cleanup(void *arg)
{
    struct conv *cv = arg;
    struct conv_stream_state *st = cv->stream;
    if (!st) return;
    stream_parse_free(cv);
    for (size_t i = 0; i < st->cap_held; i++) buf_free(&st->held[i].args);
    free(st->held);
    for (size_t i = 0; i < st->e.n_blocks; i++) stream_emit_block_release(cv, &st->e.blocks[i]);
    free(st->e.blocks);
    buf_free(&st->e.output);
    buf_free(&st->e.stop_sequence);
    cv->stream = NULL;
}

static struct conv_stream_state *state_get(struct conv *cv)
{
    if (cv->stream) return cv->stream;
    struct conv_stream_state *st = pool_calloc(cv->pool, sizeof *st);
    if (!st) return NULL;
    st->budget.max = cv->stream_max_bytes ? cv->stream_max_bytes : STREAM_DEFAULT_MAX_BYTES;
    st->created = cv->created > 0 ? cv->created : (long)time(NULL);
    st->status = CONV_STREAM_OPEN;
    st->e.open_message = -1;
    st->e.open_key = -1;
    switch (cv->upstream) {
    case API_CHAT:
        st->p.chat.open_kind = -1;
        break;
    case API_MESSAGES:
        st->p.messages.in = st->p.messages.cache_read = st->p.messages.cache_write = -1;
        st->p.messages.out = st->p.messages.reasoning = -1;
        break;
    default:
        break;
    }
    ir_usage_unknown(&cv->usage);
    cv->stream = st;
    if (pool_cleanup(cv->pool, state_cleanup, cv) != 0) return NULL;
    return st;
}

void stream_event_init(struct ir_event *ev, enum ir_event_kind kind)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->key = -1;
    ir_usage_unknown(&ev->usage);
    ev->finish = IR_FIN_UNKNOWN;
}

struct emit_block *stream_emit_block(struct conv *cv, int key)
{
    struct stream_emit *e = &cv->stream->e;
    if (key < 0 || key > 1000000) return NULL;
    if (!stream_array_reserve(&cv->stream->budget, (void **)&e->blocks, &e->cap_blocks,
                              sizeof *e->blocks, (size_t)key))
        return NULL;
    if ((size_t)key >= e->n_blocks) e->n_blocks = (size_t)key + 1;
    return &e->blocks[key];
}

/* ---- ids -------------------------------------------------------------------------- */

static const char *client_prefix(enum api_format f)
{
    switch (f) {
    case API_CHAT:
        return "chatcmpl-";
    case API_MESSAGES:
        return "msg_";
    case API_RESPONSES:
        return "resp_";
    case API_COMPLETIONS:
        return "cmpl-";
    }
    return "";
}

void stream_random_tail(char out[25])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 7, sizeof rnd); /* uniqueness is nice, not needed for correctness */
    for (size_t i = 0; i < sizeof rnd; i++) out[i] = b62[rnd[i] % 62];
    out[24] = 0;
}

/* The client-facing id: the upstream's with the client's prefix added when it lacks it
 * (§2.2, never stripped), or a random one when the upstream gave none. */
static struct slice make_id(struct conv *cv, struct slice upstream_id)
{
    const char *prefix = client_prefix(cv->client);
    if (upstream_id.n == 0) {
        char tail[25];
        stream_random_tail(tail);
        char *s = pool_printf(cv->pool, "%sgw%s", prefix, tail);
        return slice_from(s);
    }
    if (slice_starts_with(upstream_id, prefix)) {
        char *s = pool_strdup_slice(cv->pool, upstream_id);
        return s ? (struct slice){s, upstream_id.n} : SLICE_NULL;
    }
    char *s = pool_printf(cv->pool, "%s%.*s", prefix, (int)upstream_id.n, upstream_id.p);
    return slice_from(s);
}

/* ---- usage ------------------------------------------------------------------------ */

static void usage_merge(struct ir_usage *dst, const struct ir_usage *src)
{
    if (src->input_total >= 0) dst->input_total = src->input_total;
    if (src->cache_read >= 0) dst->cache_read = src->cache_read;
    if (src->cache_write >= 0) dst->cache_write = src->cache_write;
    if (src->output_total >= 0) dst->output_total = src->output_total;
    if (src->reasoning >= 0) dst->reasoning = src->reasoning;
}

static long nz(long v)
{
    return v < 0 ? 0 : v;
}

void stream_write_usage_chat(struct sw *w, const struct ir_usage *u)
{
    sw_raw(w, "{\"prompt_tokens\":");
    sw_long(w, nz(u->input_total));
    sw_raw(w, ",\"completion_tokens\":");
    sw_long(w, nz(u->output_total));
    sw_raw(w, ",\"total_tokens\":");
    sw_long(w, nz(u->input_total) + nz(u->output_total));
    sw_raw(w, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    sw_long(w, nz(u->cache_read));
    if (u->cache_write > 0) {
        sw_raw(w, ",\"cache_write_tokens\":");
        sw_long(w, u->cache_write);
    }
    sw_raw(w, "}");
    if (u->reasoning >= 0) {
        sw_raw(w, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
        sw_long(w, u->reasoning);
        sw_raw(w, "}");
    }
    sw_raw(w, "}");
}

void stream_write_usage_messages(struct sw *w, const struct ir_usage *u)
{
    long in = nz(u->input_total) - nz(u->cache_read) - nz(u->cache_write);
    sw_raw(w, "{\"input_tokens\":");
    sw_long(w, in < 0 ? 0 : in);
    sw_raw(w, ",\"cache_creation_input_tokens\":");
    sw_long(w, nz(u->cache_write));
    sw_raw(w, ",\"cache_read_input_tokens\":");
    sw_long(w, nz(u->cache_read));
    sw_raw(w, ",\"output_tokens\":");
    sw_long(w, nz(u->output_total));
    sw_raw(w, ",\"server_tool_use\":null}");
}

void stream_write_usage_responses(struct sw *w, const struct ir_usage *u)
{
    sw_raw(w, "{\"input_tokens\":");
    sw_long(w, nz(u->input_total));
    sw_raw(w, ",\"input_tokens_details\":{\"cached_tokens\":");
    sw_long(w, nz(u->cache_read));
    sw_raw(w, ",\"cache_write_tokens\":");
    sw_long(w, nz(u->cache_write));
    sw_raw(w, "},\"output_tokens\":");
    sw_long(w, nz(u->output_total));
    sw_raw(w, ",\"output_tokens_details\":{\"reasoning_tokens\":");
    sw_long(w, nz(u->reasoning));
    sw_raw(w, "},\"total_tokens\":");
    sw_long(w, nz(u->input_total) + nz(u->output_total));
    sw_raw(w, "}");
}

/* ---- finish and error tables ------------------------------------------------------- */

const char *stream_finish_chat(enum ir_finish f)
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

const char *stream_finish_messages(enum ir_finish f, bool has_stop_sequence)
{
    switch (f) {
    case IR_FIN_STOP_SEQUENCE:
        return has_stop_sequence ? "stop_sequence" : "end_turn";
    case IR_FIN_MAX_TOKENS:
        return "max_tokens";
    case IR_FIN_TOOL_USE:
        return "tool_use";
    case IR_FIN_CONTENT_FILTER:
        return "refusal";
    case IR_FIN_PAUSE_TURN:
        return "pause_turn";
    case IR_FIN_CONTEXT_EXCEEDED:
        return "model_context_window_exceeded";
    default:
        return "end_turn";
    }
}

int stream_status_for_error_type(struct slice t)
{
    static const struct {
        const char *name;
        int status;
    } rows[] = {
        {"invalid_request_error", 400},
        {"invalid_prompt", 400},
        {"context_length_exceeded", 400},
        {"authentication_error", 401},
        {"invalid_api_key", 401},
        {"billing_error", 402},
        {"insufficient_quota", 402},
        {"permission_error", 403},
        {"permission_denied", 403},
        {"not_found_error", 404},
        {"model_not_found", 404},
        {"not_found", 404},
        {"request_too_large", 413},
        {"rate_limit_error", 429},
        {"rate_limit_exceeded", 429},
        {"api_error", 500},
        {"server_error", 500},
        {"bad_gateway", 502},
        {"service_unavailable_error", 503},
        {"server_is_overloaded", 503},
        {"timeout_error", 504},
        {"timeout", 504},
        {"overloaded_error", 529},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (slice_eq_str(t, rows[i].name)) return rows[i].status;
    if (t.n >= 5 && memmem(t.p, t.n, "image", 5)) return 400;
    return 0;
}

static bool openai_family(enum api_format f)
{
    return f == API_CHAT || f == API_RESPONSES;
}

/* A NUL-terminated copy of a short type/code string, held by the state (errors.h takes
 * C strings); valid until the next call with the same slot. */
static const char *cstr(const struct conv *cv, int slot, struct slice s)
{
    char *dst = cv->stream->err_str[slot];
    size_t n = s.n < sizeof cv->stream->err_str[0] - 1 ? s.n : sizeof cv->stream->err_str[0] - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
    return dst;
}

void stream_error_openai(const struct conv *cv, const struct ir_event *ev, const char **type,
                         const char **code)
{
    struct errors_mapping m = errors_map_status(ev->status);
    bool verbatim = cv->stream->gateway_error || openai_family(cv->upstream);
    *type = verbatim && ev->error_type.n ? cstr(cv, 0, ev->error_type) : m.openai_type;
    if (verbatim && ev->error_code.n)
        *code = cstr(cv, 1, ev->error_code);
    else if (verbatim && ev->error_type.n && !cv->stream->gateway_error)
        *code = NULL; /* the upstream's own error said code:null */
    else
        *code = m.openai_code;
}

const char *stream_error_claude_type(const struct conv *cv, const struct ir_event *ev)
{
    bool verbatim = cv->stream->gateway_error || cv->upstream == API_MESSAGES;
    if (verbatim && ev->error_type.n) return cstr(cv, 0, ev->error_type);
    return errors_map_status(ev->status).claude_type;
}

const char *stream_error_responses_code(const struct conv *cv, const struct ir_event *ev)
{
    if (cv->stream->gateway_error && ev->error_type.n) return cstr(cv, 0, ev->error_type);
    if (!cv->stream->gateway_error && openai_family(cv->upstream) && ev->error_code.n)
        return cstr(cv, 0, ev->error_code);
    const char *ct = errors_map_status(ev->status).claude_type;
    if (!strcmp(ct, "rate_limit_error")) return "rate_limit_exceeded";
    if (!strcmp(ct, "invalid_request_error")) return "invalid_prompt";
    return "server_error";
}

/* ---- request flags ----------------------------------------------------------------- */

bool stream_include_encrypted(const struct conv *cv)
{
    return cv->req && cv->req->include_encrypted_reasoning;
}

bool stream_include_usage(const struct conv *cv)
{
    return cv->req && cv->req->include_usage;
}

/* ---- JSON accessors --------------------------------------------------------------- */

struct slice stream_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_string(v)) return SLICE_NULL;
    return (struct slice){json_string_value(v), json_string_length(v)};
}

bool stream_json_long(const json_t *obj, const char *key, long *out)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_integer(v)) return false;
    json_int_t i = json_integer_value(v);
    if (i < LONG_MIN || i > LONG_MAX) return false;
    *out = (long)i;
    return true;
}

/* ---- writer ----------------------------------------------------------------------- */

void sw_begin(struct sw *w, struct buf *b)
{
    w->b = b;
    w->start = b->n;
    w->fail = false;
}

void sw_raw(struct sw *w, const char *s)
{
    if (!w->fail && !buf_append_str(w->b, s)) w->fail = true;
}

void sw_rawn(struct sw *w, struct slice s)
{
    if (!w->fail && !buf_append(w->b, s.p, s.n)) w->fail = true;
}

void sw_event(struct sw *w, const char *name)
{
    if (name) {
        sw_raw(w, "event: ");
        sw_raw(w, name);
        sw_raw(w, "\n");
    }
    sw_raw(w, "data: ");
}

void sw_str(struct sw *w, struct slice s)
{
    if (!w->fail && !errors_append_json_string(w->b, s)) w->fail = true;
}

void sw_cstr(struct sw *w, const char *s)
{
    sw_str(w, slice_from(s));
}

void sw_str_or_null(struct sw *w, struct slice s)
{
    if (s.n)
        sw_str(w, s);
    else
        sw_raw(w, "null");
}

void sw_long(struct sw *w, long v)
{
    if (!w->fail && !buf_printf(w->b, "%ld", v)) w->fail = true;
}

int sw_end(struct sw *w)
{
    sw_raw(w, "\n\n");
    if (w->fail) {
        w->b->n = w->start;
        return -1;
    }
    return 0;
}

/* ---- dispatch --------------------------------------------------------------------- */

static int emit(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    switch (cv->client) {
    case API_CHAT:
        return stream_emit_chat(cv, ev, out);
    case API_MESSAGES:
        return stream_emit_messages(cv, ev, out);
    case API_RESPONSES:
        return stream_emit_responses(cv, ev, out);
    case API_COMPLETIONS:
        return stream_emit_completions(cv, ev, out);
    }
    return -1;
}

static void set_failure(struct conv_stream_state *st, int status, const char *type,
                        struct slice message)
{
    st->status = CONV_STREAM_FAILED;
    st->failure.status = status;
    snprintf(st->failure.type, sizeof st->failure.type, "%s", type ? type : "");
    size_t n =
        message.n < sizeof st->failure.message - 1 ? message.n : sizeof st->failure.message - 1;
    memcpy(st->failure.message, message.p, n);
    st->failure.message[n] = 0;
}

/* Ends the client stream with an error event of the gateway's own making. */
static void fail_stream(struct conv *cv, int status, struct slice message, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    if (st->status != CONV_STREAM_OPEN) return;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.status = status;
    ev.text = message;
    st->gateway_error = true;
    (void)emit(cv, &ev, out);
    st->gateway_error = false;
    set_failure(st, status, errors_map_status(status).claude_type, message);
}

static int start_from(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    st->id = make_id(cv, ev->id);
    if (cv->client_model.n)
        st->model = cv->client_model;
    else {
        char *m = pool_strdup_slice(cv->pool, ev->model);
        st->model = m ? (struct slice){m, ev->model.n} : SLICE_NULL;
    }
    if (!st->id.p) return -1;
    st->resp_suffix = st->id;
    if (slice_starts_with(st->id, "resp_")) {
        st->resp_suffix.p += 5;
        st->resp_suffix.n -= 5;
    }
    if (ev->has_usage) usage_merge(&cv->usage, &ev->usage);
    return emit(cv, ev, out);
}

/* ---- tool blocks in the client's terms -------------------------------------------- */

/* The held-back state of block `key`, NULL when it is not held (or over budget: *fail). */
static struct stream_held *held_get(struct conv *cv, int key, bool grow, bool *fail)
{
    struct conv_stream_state *st = cv->stream;
    if (key < 0) return NULL;
    if ((size_t)key >= st->cap_held) {
        if (!grow) return NULL;
        if (!stream_array_reserve(&st->budget, (void **)&st->held, &st->cap_held, sizeof *st->held,
                                  (size_t)key)) {
            *fail = true;
            return NULL;
        }
    }
    return &st->held[key];
}

static int emit_simple(struct conv *cv, enum ir_event_kind kind, int key, enum ir_block_kind block,
                       struct slice text, struct buf *out)
{
    struct ir_event ev;
    stream_event_init(&ev, kind);
    ev.key = key;
    ev.block = block;
    ev.text = text;
    return emit(cv, &ev, out);
}

/* The held block `key` is complete: hand it to the emitter in the client's terms. */
static int held_release(struct conv *cv, int key, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    struct stream_held *h = &st->held[key];
    int rc = 0;
    if (h->kind == HELD_CUSTOM) {
        struct ir_part call;
        memset(&call, 0, sizeof call);
        call.kind = IR_PART_TOOL_CALL;
        call.call.name = h->name;
        call.call.args = buf_slice(&h->args);
        (void)conv_tool_call_fixup(cv, &call); /* {"input":"…"} → the free text */
        if (call.call.args.n)
            rc = emit_simple(cv, IR_EV_TOOL_ARGS, key, IR_BLOCK_TOOL, call.call.args, out);
        if (rc == 0) rc = emit_simple(cv, IR_EV_BLOCK_STOP, key, IR_BLOCK_TOOL, SLICE_NULL, out);
    } else if (h->kind == HELD_JSON && !st->client_tool) {
        /* The answer's JSON, as text (with client tools called too it is noise: dropped,
         * as the non-stream half does). */
        struct slice text = resp_json_tool_text(cv->pool, buf_slice(&h->args));
        st->json_as_text = true;
        rc = emit_simple(cv, IR_EV_BLOCK_START, key, IR_BLOCK_TEXT, SLICE_NULL, out);
        if (rc == 0 && text.n)
            rc = emit_simple(cv, IR_EV_TEXT_DELTA, key, IR_BLOCK_TEXT, text, out);
        if (rc == 0) rc = emit_simple(cv, IR_EV_BLOCK_STOP, key, IR_BLOCK_TEXT, SLICE_NULL, out);
    }
    stream_acc_free(&st->budget, &h->args);
    h->kind = HELD_NONE;
    return rc;
}

static int held_release_all(struct conv *cv, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    for (size_t k = 0; k < st->cap_held; k++)
        if (st->held[k].kind != HELD_NONE && held_release(cv, (int)k, out) != 0) return -1;
    return 0;
}

/* The tool rules between parser and emitter (§2.3, §3.7): names shortened upstream are
 * the client's again; a `custom` tool's call has its arguments held until the block ends
 * (conv_tool_call_fixup then unwraps them); the JSON trick's tool becomes text. Sets
 * *done when the event was handled here (emitted or held). */
static int tool_rules(struct conv *cv, const struct ir_event *ev, struct buf *out, bool *done)
{
    struct conv_stream_state *st = cv->stream;
    bool fail = false;
    *done = false;
    switch (ev->kind) {
    case IR_EV_BLOCK_START: {
        if (ev->block != IR_BLOCK_TOOL) return 0;
        struct slice original;
        const struct ir_tool *t = conv_tool_lookup(cv, ev->tool_name, &original);
        struct ir_event copy = *ev;
        copy.tool_name = original;
        if (!t && resp_json_tool_trick(cv) && slice_eq_str(ev->tool_name, CONV_JSON_TOOL_NAME)) {
            struct stream_held *h = held_get(cv, ev->key, true, &fail);
            if (!h) return fail ? -1 : 0;
            h->kind = HELD_JSON;
            *done = true;
            return 0;
        }
        st->client_tool = true;
        if (t && t->custom && cv->upstream != API_RESPONSES) {
            struct stream_held *h = held_get(cv, ev->key, true, &fail);
            if (!h) return fail ? -1 : 0;
            h->kind = HELD_CUSTOM;
            h->name = t->name;
            copy.tool_custom = true;
        }
        *done = true;
        return emit(cv, &copy, out);
    }
    case IR_EV_TOOL_ARGS: {
        struct stream_held *h = held_get(cv, ev->key, false, &fail);
        if (!h || h->kind == HELD_NONE) return 0;
        *done = true;
        return stream_acc_append(&st->budget, &h->args, ev->text) ? 0 : -1;
    }
    case IR_EV_BLOCK_STOP: {
        struct stream_held *h = held_get(cv, ev->key, false, &fail);
        if (!h || h->kind == HELD_NONE) return 0;
        *done = true;
        return held_release(cv, ev->key, out);
    }
    case IR_EV_FINISH: {
        if (held_release_all(cv, out) != 0) return -1;
        if (ev->finish != IR_FIN_TOOL_USE || st->client_tool || !st->json_as_text) return 0;
        struct ir_event copy = *ev; /* only the JSON tool was called: the turn just ended */
        copy.finish = IR_FIN_END_TURN;
        *done = true;
        return emit(cv, &copy, out);
    }
    case IR_EV_END:
        return held_release_all(cv, out);
    default:
        return 0;
    }
}

int stream_dispatch(struct conv *cv, const struct ir_event *ev, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    if (st->status != CONV_STREAM_OPEN) return 0;
    size_t before = out->n;
    int rc = 0;

    if (ev->kind == IR_EV_START) {
        if (!st->e.started) rc = start_from(cv, ev, out);
    } else {
        if (!st->e.started && ev->kind != IR_EV_ERROR) {
            struct ir_event start;
            stream_event_init(&start, IR_EV_START);
            rc = start_from(cv, &start, out);
        }
        if (rc == 0 && ev->kind == IR_EV_ERROR && !st->id.p) {
            st->id = make_id(cv, SLICE_NULL);
            st->model = cv->client_model;
            st->resp_suffix = st->id;
            if (slice_starts_with(st->id, "resp_")) {
                st->resp_suffix.p += 5;
                st->resp_suffix.n -= 5;
            }
        }
        if (rc == 0) {
            struct ir_event copy = *ev;
            if (ev->kind == IR_EV_USAGE) usage_merge(&cv->usage, &ev->usage);
            bool done = false;
            rc = tool_rules(cv, ev, out, &done);
            if (rc == 0 && !done) rc = emit(cv, &copy, out);
        }
    }
    if (out->n > before && ev->kind != IR_EV_ERROR) st->any_output = true;
    if (ev->kind == IR_EV_ERROR && st->status == CONV_STREAM_OPEN) {
        set_failure(st, ev->status ? ev->status : 502, stream_error_claude_type(cv, ev), ev->text);
        return 0;
    }
    if (rc != 0) {
        if (st->budget.exceeded)
            fail_stream(cv, 502,
                        SLICE_LIT("the upstream response exceeds the conversion memory limit"),
                        out);
        return -1;
    }
    if (st->e.terminal_done) st->status = CONV_STREAM_COMPLETED;
    return 0;
}

/* ---- public API ------------------------------------------------------------------- */

static struct slice trim_ws(struct slice s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\r' || s.p[0] == '\n')) {
        s.p++;
        s.n--;
    }
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '\r' ||
                   s.p[s.n - 1] == '\n'))
        s.n--;
    return s;
}

static int parse_one(struct conv *cv, struct slice event, json_t *obj, struct buf *out)
{
    switch (cv->upstream) {
    case API_CHAT:
        return stream_parse_chat(cv, obj, out);
    case API_MESSAGES:
        return stream_parse_messages(cv, event, obj, out);
    case API_RESPONSES:
        return stream_parse_responses(cv, event, obj, out);
    default:
        return -1;
    }
}

int conv_stream_event(struct conv *cv, struct slice event, struct slice data, struct buf *out)
{
    struct conv_stream_state *st = state_get(cv);
    if (!st) return -1;
    if (st->status != CONV_STREAM_OPEN) return 0;
    data = trim_ws(data);
    if (data.n == 0) return 0;
    if (slice_eq_str(data, "[DONE]")) {
        /* The A end sentinel; Responses and Messages streams never send it (tolerated). */
        if (cv->upstream != API_CHAT) return 0;
        return stream_parse_chat_eof(cv, out);
    }
    /* One data value may hold several concatenated JSON objects (§2.1 rule 4). */
    size_t off = 0;
    while (off < data.n && st->status == CONV_STREAM_OPEN) {
        json_error_t jerr;
        json_t *obj = json_loadb(data.p + off, data.n - off,
                                 JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
        if (!obj) return -1;
        size_t used = (size_t)jerr.position;
        if (!json_is_object(obj) || used == 0 || used > data.n - off) {
            json_decref(obj);
            return -1;
        }
        int rc = parse_one(cv, event, obj, out);
        json_decref(obj);
        if (rc != 0) return -1;
        off += used;
        struct slice rest = trim_ws((struct slice){data.p + off, data.n - off});
        off = data.n - rest.n;
    }
    return 0;
}

int conv_stream_end(struct conv *cv, struct buf *out)
{
    struct conv_stream_state *st = state_get(cv);
    if (!st) return -1;
    if (st->status == CONV_STREAM_COMPLETED) return 0;
    if (st->status == CONV_STREAM_FAILED) return -1;
    int rc;
    switch (cv->upstream) {
    case API_CHAT:
        rc = stream_parse_chat_eof(cv, out);
        break;
    case API_MESSAGES:
        rc = stream_parse_messages_eof(cv, out);
        break;
    case API_RESPONSES:
        rc = stream_parse_responses_eof(cv, out);
        break;
    default:
        rc = -1;
    }
    if (rc != 0 && st->status == CONV_STREAM_OPEN)
        fail_stream(cv, 502, SLICE_LIT("upstream closed the stream"), out);
    return st->status == CONV_STREAM_COMPLETED ? 0 : -1;
}

void conv_stream_error(struct conv *cv, int status, const char *type, struct slice message,
                       struct buf *out)
{
    struct conv_stream_state *st = state_get(cv);
    if (!st || st->status != CONV_STREAM_OPEN) return;
    struct ir_event ev;
    stream_event_init(&ev, IR_EV_ERROR);
    ev.status = status;
    ev.error_type = slice_from(type);
    ev.text = message;
    st->gateway_error = true;
    (void)stream_dispatch(cv, &ev, out);
    st->gateway_error = false;
    if (st->status == CONV_STREAM_OPEN) set_failure(st, status, type, message);
}

enum conv_stream_status conv_stream_status(const struct conv *cv, struct conv_error *err,
                                           bool *bytes_written)
{
    const struct conv_stream_state *st = cv->stream;
    if (bytes_written) *bytes_written = st && st->any_output;
    if (!st) return CONV_STREAM_OPEN;
    if (err && st->status == CONV_STREAM_FAILED) *err = st->failure;
    return st->status;
}

int stream_emit_openai_terminal(struct conv *cv, const char *object, struct buf *out)
{
    struct conv_stream_state *st = cv->stream;
    struct sw w;
    sw_begin(&w, out);
    if (stream_include_usage(cv)) {
        sw_event(&w, NULL);
        sw_raw(&w, "{\"id\":");
        sw_str(&w, st->id);
        sw_raw(&w, ",\"object\":\"");
        sw_raw(&w, object);
        sw_raw(&w, "\",\"created\":");
        sw_long(&w, st->created);
        sw_raw(&w, ",\"model\":");
        sw_str(&w, st->model);
        sw_raw(&w, ",\"choices\":[],\"usage\":");
        stream_write_usage_chat(&w, &cv->usage);
        sw_raw(&w, "}\n\n");
    }
    sw_raw(&w, "data: [DONE]");
    if (sw_end(&w) != 0) return -1;
    st->e.terminal_done = true;
    return 0;
}
