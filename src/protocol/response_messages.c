/* response_messages.c — non-stream Claude Messages responses (format B): the reader of
 * an upstream `message` into the IR, and the writer of the client's `message`
 * (format-conversion.md §4, Addendum 3: nullable fields are written as null). */
#include "protocol/response.h"

/* ---------- decode ---------- */

static enum ir_finish finish_from_claude(struct slice s)
{
    if (slice_eq_str(s, "end_turn")) return IR_FIN_END_TURN;
    if (slice_eq_str(s, "stop_sequence")) return IR_FIN_STOP_SEQUENCE;
    if (slice_eq_str(s, "max_tokens")) return IR_FIN_MAX_TOKENS;
    if (slice_eq_str(s, "tool_use")) return IR_FIN_TOOL_USE;
    if (slice_eq_str(s, "refusal")) return IR_FIN_CONTENT_FILTER;
    if (slice_eq_str(s, "pause_turn")) return IR_FIN_PAUSE_TURN;
    if (slice_eq_str(s, "model_context_window_exceeded")) return IR_FIN_CONTEXT_EXCEEDED;
    return IR_FIN_UNKNOWN;
}

/* Claude `usage` → IR (§4.2): input_tokens excludes cache reads and writes. */
static void usage_from_claude(const json_t *u, struct ir_usage *out)
{
    ir_usage_unknown(out);
    if (!json_is_object(u)) return;
    long in = resp_jcount(u, "input_tokens");
    out->cache_read = resp_jcount(u, "cache_read_input_tokens");
    out->cache_write = resp_jcount(u, "cache_creation_input_tokens");
    if (in >= 0)
        out->input_total = in + (out->cache_read > 0 ? out->cache_read : 0) +
                           (out->cache_write > 0 ? out->cache_write : 0);
    out->output_total = resp_jcount(u, "output_tokens");
    json_t *d = json_object_get(u, "output_tokens_details");
    if (json_is_object(d)) out->reasoning = resp_jcount(d, "thinking_tokens");
}

int resp_decode_messages(struct conv *cv, json_t *root, struct ir_response *out,
                         struct conv_error *err)
{
    memset(out, 0, sizeof *out);
    ir_usage_unknown(&out->usage);
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        resp_fail(cv, err, 502, "upstream response has no content array");
        return -1;
    }
    out->id = resp_jstr(root, "id");
    out->model = resp_jstr(root, "model");
    out->created = -1; /* Claude has none: the gateway clock (§2.2) */
    usage_from_claude(json_object_get(root, "usage"), &out->usage);

    struct resp_parts parts = {.pool = cv->pool};
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block)
    {
        struct slice type = resp_jstr(block, "type");
        struct ir_part *p = NULL;
        if (!json_is_object(block) || !type.n) {
            resp_fail(cv, err, 502, "upstream response: content[%zu] is not a typed block", i);
            return -1;
        }
        if (slice_eq_str(type, "text")) {
            json_t *t = json_object_get(block, "text");
            if (!json_is_string(t)) {
                resp_fail(cv, err, 502, "upstream response: content[%zu].text is not a string", i);
                return -1;
            }
            if (!json_string_length(t)) continue;
            if (!(p = resp_parts_push(&parts, IR_PART_TEXT))) goto oom;
            p->text = resp_jstr(block, "text");
        } else if (slice_eq_str(type, "thinking")) {
            if (!(p = resp_parts_push(&parts, IR_PART_THINKING))) goto oom;
            p->text = resp_jstr(block, "thinking");
            p->think.signature = resp_jstr(block, "signature");
            p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
        } else if (slice_eq_str(type, "redacted_thinking")) {
            if (!(p = resp_parts_push(&parts, IR_PART_REDACTED_THINKING))) goto oom;
            p->think.redacted_data = resp_jstr(block, "data");
            p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
        } else if (slice_eq_str(type, "tool_use")) {
            struct slice name = resp_jstr(block, "name");
            json_t *input = json_object_get(block, "input");
            if (!name.n) {
                resp_fail(cv, err, 502, "upstream response: content[%zu].name is missing", i);
                return -1;
            }
            if (input && !json_is_object(input) && !json_is_null(input)) {
                resp_fail(cv, err, 502, "upstream response: content[%zu].input is not an object",
                          i);
                return -1;
            }
            if (!(p = resp_parts_push(&parts, IR_PART_TOOL_CALL))) goto oom;
            p->call.id = resp_jstr(block, "id");
            if (!p->call.id.n) p->call.id = resp_random_call_id(cv->pool);
            p->call.name = name; /* the client's name: resp_finalize */
            p->call.args =
                json_is_object(input) ? resp_json_text(cv->pool, input) : SLICE_LIT("{}");
            if (!p->call.id.n || !p->call.args.n) goto oom;
        }
        /* server_tool_use, *_tool_result and future block types: nothing a client of
         * another format can use (§5.2, same for non-stream). */
    }
    out->parts = parts.v;
    out->n_parts = parts.n;
    out->finish = finish_from_claude(resp_jstr(root, "stop_reason"));
    out->stop_sequence = resp_jstr(root, "stop_sequence");
    return 0;
oom:
    resp_fail(cv, err, 502, "out of memory while converting the upstream response");
    return -1;
}

/* ---------- encode ---------- */

static const char *stop_to_claude(const struct ir_response *r)
{
    switch (r->finish) {
    case IR_FIN_STOP_SEQUENCE:
        return r->stop_sequence.n ? "stop_sequence" : "end_turn";
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

/* Tool arguments (JSON text) → the `input` object Claude requires (§2.4): an object as
 * is, a JSON string holding an object (double encoding) unwrapped, anything else {}. */
static json_t *input_object(struct slice args)
{
    json_error_t jerr;
    json_t *v = args.n
                    ? json_loadb(args.p, args.n,
                                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)
                    : NULL;
    if (json_is_string(v)) {
        json_t *inner = json_loadb(json_string_value(v), json_string_length(v),
                                   JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        json_decref(v);
        v = inner;
    }
    if (json_is_object(v)) return v;
    json_decref(v);
    return json_object();
}

json_t *resp_claude_usage_json(const struct ir_usage *u)
{
    long read = u->cache_read > 0 ? u->cache_read : 0;
    long write = u->cache_write > 0 ? u->cache_write : 0;
    long in = u->input_total > 0 ? u->input_total - read - write : 0;
    return json_pack("{sIsIsIsIsnsnsn}", "input_tokens", (json_int_t)(in > 0 ? in : 0),
                     "cache_creation_input_tokens", (json_int_t)write, "cache_read_input_tokens",
                     (json_int_t)read, "output_tokens",
                     (json_int_t)(u->output_total > 0 ? u->output_total : 0), "cache_creation",
                     "server_tool_use", "service_tier");
}

int resp_encode_messages(struct conv *cv, const struct ir_response *r, struct buf *out)
{
    json_t *content = json_array();
    bool ok = content != NULL;
    for (size_t i = 0; i < r->n_parts; i++) {
        const struct ir_part *p = &r->parts[i];
        json_t *b = NULL;
        bool want = true; /* a block is due for this part (b NULL then means failure) */
        switch (p->kind) {
        case IR_PART_TEXT:
        case IR_PART_REFUSAL:
            want = p->text.n > 0;
            if (want)
                b = json_pack("{sssosn}", "type", "text", "text", resp_jstring(p->text),
                              "citations");
            break;
        case IR_PART_THINKING: {
            /* Claude's own signature raw; another vendor's wrapped; none → "" (§4.4). */
            struct slice sig = p->think.sig_vendor == IR_VENDOR_ANTHROPIC
                                   ? p->think.signature
                                   : resp_wrap_signature(cv->pool, p);
            b = json_pack("{sssoso}", "type", "thinking", "thinking", resp_jstring(p->text),
                          "signature", resp_jstring(sig));
            break;
        }
        case IR_PART_REDACTED_THINKING:
            want = p->think.redacted_data.n > 0;
            if (want)
                b = json_pack("{ssso}", "type", "redacted_thinking", "data",
                              resp_jstring(p->think.redacted_data));
            break;
        case IR_PART_TOOL_CALL:
            b = json_pack("{sssosososn}", "type", "tool_use", "id", resp_jstring(p->call.id),
                          "name", resp_jstring(p->call.name), "input", input_object(p->call.args),
                          "caller");
            break;
        default:
            want = false;
            break;
        }
        if (want) ok &= resp_push(content, b);
    }

    const char *stop = stop_to_claude(r);
    json_t *root = json_object();
    ok &= resp_set(root, "id", resp_jstring(resp_prefixed_id(cv->pool, "msg_", r->id)));
    ok &= resp_set(root, "type", json_string("message"));
    ok &= resp_set(root, "role", json_string("assistant"));
    ok &= resp_set(root, "model", resp_jstring(resp_client_model(cv, r)));
    ok &= resp_set(root, "content", content);
    ok &= resp_set(root, "stop_reason", json_string(stop));
    ok &=
        resp_set(root, "stop_sequence",
                 strcmp(stop, "stop_sequence") == 0 ? resp_jstring(r->stop_sequence) : json_null());
    ok &= resp_set(root, "stop_details", json_null());
    ok &= resp_set(root, "container", json_null());
    ok &= resp_set(root, "usage", resp_claude_usage_json(&r->usage));
    ok = ok && resp_json_write(out, root);
    json_decref(root);
    return ok ? 0 : -1;
}
