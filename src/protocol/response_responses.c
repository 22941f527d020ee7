/* response_responses.c — non-stream OpenAI Responses answers (format C): the reader of
 * an upstream `response` object into the IR, and the writer of the client's `response`
 * (format-conversion.md §4; usage per Addendum 1). */
#include "protocol/response.h"

#include <math.h>

/* ---------- decode ---------- */

static void usage_from_responses(const json_t *u, struct ir_usage *out)
{
    ir_usage_unknown(out);
    if (!json_is_object(u)) return;
    out->input_total = resp_jcount(u, "input_tokens");
    out->output_total = resp_jcount(u, "output_tokens");
    json_t *d = json_object_get(u, "input_tokens_details");
    if (json_is_object(d)) {
        out->cache_read = resp_jcount(d, "cached_tokens");
        out->cache_write = resp_jcount(d, "cache_write_tokens");
    }
    d = json_object_get(u, "output_tokens_details");
    if (json_is_object(d)) out->reasoning = resp_jcount(d, "reasoning_tokens");
}

/* A failed or cancelled response: its error as the client's error (§4.1, §6.2). */
static int fail_from_error(struct conv *cv, json_t *root, struct slice status,
                           struct conv_error *err)
{
    json_t *e = json_object_get(root, "error");
    struct slice code = resp_jstr(e, "code");
    struct slice msg = resp_jstr(e, "message");
    int http = 502;
    if (slice_eq_str(code, "rate_limit_exceeded"))
        http = 429;
    else if (slice_eq_str(code, "invalid_prompt") ||
             (code.n && memmem(code.p, code.n, "image", 5) != NULL))
        http = 400;
    if (msg.n)
        resp_fail(cv, err, http, "%.*s", (int)msg.n, msg.p);
    else
        resp_fail(cv, err, http, "upstream response %.*s", (int)status.n, status.p);
    return -1;
}

/* Texts of the summary (or reasoning content) parts of a reasoning item, joined. */
static struct slice reasoning_text(pool_t *pool, json_t *item)
{
    json_t *arr = json_object_get(item, "summary");
    if (!json_is_array(arr) || json_array_size(arr) == 0) arr = json_object_get(item, "content");
    if (!json_is_array(arr)) return SLICE_NULL;
    struct buf b = BUF_INIT;
    size_t i;
    json_t *part;
    bool ok = true;
    json_array_foreach(arr, i, part)
    {
        struct slice t = resp_jstr(part, "text");
        if (!t.n) continue;
        if (b.n) ok = ok && buf_append_str(&b, "\n\n");
        ok = ok && buf_append(&b, t.p, t.n);
    }
    struct slice s = SLICE_NULL;
    if (ok && b.n) {
        char *copy = pool_strndup(pool, b.p, b.n);
        if (copy) s = (struct slice){copy, b.n};
    }
    buf_free(&b);
    return s;
}

static bool add_message_item(struct resp_parts *parts, json_t *item)
{
    json_t *content = json_object_get(item, "content");
    if (json_is_string(content)) { /* the plain form some servers use */
        if (!json_string_length(content)) return true;
        struct ir_part *p = resp_parts_push(parts, IR_PART_TEXT);
        if (!p) return false;
        p->text = (struct slice){json_string_value(content), json_string_length(content)};
        return true;
    }
    size_t i;
    json_t *c;
    json_array_foreach(content, i, c)
    {
        struct slice type = resp_jstr(c, "type");
        bool refusal = slice_eq_str(type, "refusal");
        struct slice t = resp_jstr(c, refusal ? "refusal" : "text");
        if (!t.n || !(refusal || slice_eq_str(type, "output_text") || slice_eq_str(type, "text")))
            continue;
        struct ir_part *p = resp_parts_push(parts, refusal ? IR_PART_REFUSAL : IR_PART_TEXT);
        if (!p) return false;
        p->text = t;
    }
    return true;
}

int resp_decode_responses(struct conv *cv, json_t *root, struct ir_response *out,
                          struct conv_error *err)
{
    memset(out, 0, sizeof *out);
    ir_usage_unknown(&out->usage);
    struct slice status = resp_jstr(root, "status");
    if (slice_eq_str(status, "failed") || slice_eq_str(status, "cancelled"))
        return fail_from_error(cv, root, status, err);
    if (slice_eq_str(status, "in_progress") || slice_eq_str(status, "queued")) {
        resp_fail(cv, err, 502, "upstream response is not finished (status %.*s)", (int)status.n,
                  status.p);
        return -1;
    }
    json_t *output = json_object_get(root, "output");
    if (!json_is_array(output)) {
        resp_fail(cv, err, 502, "upstream response has no output array");
        return -1;
    }
    out->id = resp_jstr(root, "id");
    out->model = resp_jstr(root, "model");
    out->created = resp_jcount(root, "created_at");
    usage_from_responses(json_object_get(root, "usage"), &out->usage);

    struct resp_parts parts = {.pool = cv->pool};
    size_t i, n_calls = 0;
    json_t *item;
    json_array_foreach(output, i, item)
    {
        struct slice type = resp_jstr(item, "type");
        struct ir_part *p;
        if (!json_is_object(item)) {
            resp_fail(cv, err, 502, "upstream response: output[%zu] is not an object", i);
            return -1;
        }
        if (slice_eq_str(type, "message")) {
            if (!add_message_item(&parts, item)) goto oom;
        } else if (slice_eq_str(type, "reasoning")) {
            struct slice text = reasoning_text(cv->pool, item);
            struct slice enc = resp_jstr(item, "encrypted_content");
            if (!text.n && !enc.n) continue;
            if (!(p = resp_parts_push(&parts, IR_PART_THINKING))) goto oom;
            p->text = text;
            p->think.signature = enc;
            p->think.sig_vendor = IR_VENDOR_OPENAI;
            p->think.item_id = resp_jstr(item, "id");
        } else if (slice_eq_str(type, "function_call") || slice_eq_str(type, "custom_tool_call")) {
            bool custom = type.p[0] == 'c';
            struct slice name = resp_jstr(item, "name");
            json_t *args = json_object_get(item, custom ? "input" : "arguments");
            if (!name.n || (args && !json_is_string(args))) {
                resp_fail(cv, err, 502, "upstream response: output[%zu] is a %.*s without %s", i,
                          (int)type.n, type.p, name.n ? "string arguments" : "a name");
                return -1;
            }
            if (!(p = resp_parts_push(&parts, IR_PART_TOOL_CALL))) goto oom;
            p->call.custom = custom;
            p->call.name = name; /* the client's name: resp_finalize */
            p->call.id = resp_jstr(item, "call_id");
            if (!p->call.id.n) p->call.id = resp_jstr(item, "id");
            if (!p->call.id.n) p->call.id = resp_random_call_id(cv->pool);
            p->call.args = resp_jstr(item, custom ? "input" : "arguments");
            if (!custom && !p->call.args.n) p->call.args = SLICE_LIT("{}");
            if (!p->call.id.n) goto oom;
            n_calls++;
        }
        /* web_search_call, file_search_call, image_generation_call, …: built-in tools a
         * client of another format cannot see (§5.2). */
    }
    out->parts = parts.v;
    out->n_parts = parts.n;

    if (slice_eq_str(status, "incomplete")) {
        struct slice reason = resp_jstr(json_object_get(root, "incomplete_details"), "reason");
        out->finish =
            slice_eq_str(reason, "content_filter") ? IR_FIN_CONTENT_FILTER : IR_FIN_MAX_TOKENS;
    } else if (status.n == 0 || slice_eq_str(status, "completed")) {
        out->finish = n_calls ? IR_FIN_TOOL_USE : IR_FIN_END_TURN;
    } else {
        out->finish = IR_FIN_UNKNOWN;
    }
    return 0;
oom:
    resp_fail(cv, err, 502, "out of memory while converting the upstream response");
    return -1;
}

/* ---------- encode ---------- */

json_t *resp_responses_usage_json(const struct ir_usage *u)
{
    long in = u->input_total > 0 ? u->input_total : 0;
    long outp = u->output_total > 0 ? u->output_total : 0;
    return json_pack("{sIs{sIsI}sIs{sI}sI}", "input_tokens", (json_int_t)in, "input_tokens_details",
                     "cached_tokens", (json_int_t)(u->cache_read > 0 ? u->cache_read : 0),
                     "cache_write_tokens", (json_int_t)(u->cache_write > 0 ? u->cache_write : 0),
                     "output_tokens", (json_int_t)outp, "output_tokens_details", "reasoning_tokens",
                     (json_int_t)(u->reasoning > 0 ? u->reasoning : 0), "total_tokens",
                     (json_int_t)(in + outp));
}

/* "fc_" + the call id with every byte outside [A-Za-z0-9_-] replaced by '_' (§2.2). */
static struct slice fc_id(pool_t *pool, struct slice call_id)
{
    char *s = pool_alloc(pool, call_id.n + 4);
    if (!s) return SLICE_NULL;
    memcpy(s, "fc_", 3);
    for (size_t i = 0; i < call_id.n; i++) {
        char c = call_id.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        s[3 + i] = ok ? c : '_';
    }
    s[3 + call_id.n] = '\0';
    return (struct slice){s, call_id.n + 3};
}

static json_t *item_id(pool_t *pool, const char *kind, struct slice suffix, size_t n)
{
    char *s = pool_printf(pool, "%s_%.*s_%zu", kind, (int)suffix.n, suffix.p ? suffix.p : "", n);
    return resp_jstring(s ? slice_from(s) : SLICE_NULL);
}

static json_t *tool_choice_echo(const struct ir_request *req)
{
    if (!req) return json_string("auto");
    switch (req->tool_choice.mode) {
    case IR_TC_NONE:
        return json_string("none");
    case IR_TC_ANY:
        return json_string("required");
    case IR_TC_NAMED:
        return json_pack("{ssso}", "type", "function", "name", resp_jstring(req->tool_choice.name));
    default:
        return json_string("auto");
    }
}

static json_t *tools_echo(const struct ir_request *req)
{
    json_t *tools = json_array();
    bool ok = tools != NULL;
    for (size_t i = 0; req && i < req->n_tools && ok; i++) {
        const struct ir_tool *t = &req->tools[i];
        json_t *o = json_pack("{ssso}", "type", t->custom ? "custom" : "function", "name",
                              resp_jstring(t->name));
        ok = o != NULL;
        if (t->description.n) ok &= resp_set(o, "description", resp_jstring(t->description));
        if (!t->custom) {
            json_error_t jerr;
            json_t *schema =
                t->schema_json.n ? json_loadb(t->schema_json.p, t->schema_json.n, 0, &jerr) : NULL;
            ok &= resp_set(o, "parameters", schema ? schema : json_null());
            ok &= resp_set(o, "strict", json_boolean(t->strict == 1));
        }
        ok &= resp_push(tools, o);
    }
    if (!ok) {
        json_decref(tools);
        return NULL;
    }
    return tools;
}

static const char *effort_name(enum ir_effort e)
{
    static const char *names[] = {NULL, "minimal", "low", "medium", "high", "xhigh", "max"};
    return e > IR_EFFORT_UNSET && e <= IR_EFFORT_MAX ? names[e] : NULL;
}

/* The request fields a `response` object repeats (§4.4); the client's values where the IR
 * has them, the API defaults otherwise. */
static bool add_request_echo(json_t *root, const struct ir_request *req)
{
    bool ok = true;
    ok &= resp_set(root, "instructions", json_null());
    ok &= resp_set(root, "max_output_tokens",
                   req && req->max_output_tokens >= 0 ? json_integer(req->max_output_tokens)
                                                      : json_null());
    ok &=
        resp_set(root, "parallel_tool_calls", json_boolean(!req || req->parallel_tool_calls != 0));
    ok &= resp_set(root, "temperature",
                   req && !isnan(req->temperature) ? json_real(req->temperature) : json_null());
    ok &= resp_set(root, "top_p", req && !isnan(req->top_p) ? json_real(req->top_p) : json_null());
    ok &= resp_set(root, "tool_choice", tool_choice_echo(req));
    ok &= resp_set(root, "tools", tools_echo(req));
    ok &= resp_set(root, "text", json_pack("{s{ss}}", "format", "type", "text"));
    const char *effort = req ? effort_name(req->reasoning.effort) : NULL;
    ok &= resp_set(root, "reasoning",
                   json_pack("{soso}", "effort", effort ? json_string(effort) : json_null(),
                             "summary",
                             req && req->reasoning.summary.n ? resp_jstring(req->reasoning.summary)
                                                             : json_null()));
    json_t *meta = NULL;
    if (req && req->metadata_json.n) {
        json_error_t jerr;
        meta = json_loadb(req->metadata_json.p, req->metadata_json.n, 0, &jerr);
        if (!json_is_object(meta)) json_decref(meta), meta = NULL;
    }
    ok &= resp_set(root, "metadata", meta ? meta : json_object());
    ok &= resp_set(root, "store", json_false());
    ok &= resp_set(root, "truncation", json_string("disabled"));
    return ok;
}

int resp_encode_responses(struct conv *cv, const struct ir_response *r, struct buf *out)
{
    pool_t *pool = cv->pool;
    bool include_enc = cv->req && cv->req->include_encrypted_reasoning;
    struct slice id = resp_prefixed_id(pool, "resp_", r->id);
    struct slice suffix = id.n >= 5 ? (struct slice){id.p + 5, id.n - 5} : SLICE_NULL;
    json_t *output = json_array();
    json_t *msg_content = NULL; /* content array of the open message item */
    bool ok = output != NULL;

    for (size_t i = 0; i < r->n_parts; i++) {
        const struct ir_part *p = &r->parts[i];
        bool textual = p->kind == IR_PART_TEXT || p->kind == IR_PART_REFUSAL;
        if (textual && !p->text.n) continue;
        if (!textual) msg_content = NULL; /* a later text run opens a new message item */
        json_t *item = NULL;
        bool want = true; /* an output item is due (item NULL then means failure) */
        size_t n = json_array_size(output);
        switch (p->kind) {
        case IR_PART_TEXT:
        case IR_PART_REFUSAL:
            want = msg_content == NULL;
            if (!msg_content) {
                msg_content = json_array();
                item = json_pack("{sossssssso}", "id", item_id(pool, "msg", suffix, n), "type",
                                 "message", "status", "completed", "role", "assistant", "content",
                                 msg_content);
                if (!item) { /* json_pack released msg_content */
                    msg_content = NULL;
                    break;
                }
            }
            ok &= resp_push(
                msg_content,
                p->kind == IR_PART_TEXT
                    ? json_pack("{sssos[]s[]}", "type", "output_text", "text",
                                resp_jstring(p->text), "annotations", "logprobs")
                    : json_pack("{ssso}", "type", "refusal", "refusal", resp_jstring(p->text)));
            break;
        case IR_PART_THINKING: {
            bool own = p->think.sig_vendor == IR_VENDOR_OPENAI && p->think.item_id.n;
            item = json_pack("{sosss[]}", "id",
                             own ? resp_jstring(p->think.item_id) : item_id(pool, "rs", suffix, n),
                             "type", "reasoning", "summary");
            if (item && p->text.n)
                ok &= resp_push(
                    json_object_get(item, "summary"),
                    json_pack("{ssso}", "type", "summary_text", "text", resp_jstring(p->text)));
            struct slice enc = p->think.sig_vendor == IR_VENDOR_OPENAI
                                   ? p->think.signature
                                   : resp_wrap_signature(pool, p);
            if (item && include_enc && enc.n)
                ok &= resp_set(item, "encrypted_content", resp_jstring(enc));
            break;
        }
        case IR_PART_REDACTED_THINKING: {
            struct slice enc = resp_wrap_signature(pool, p);
            want = include_enc && enc.n; /* nothing to show without the encrypted form */
            if (want)
                item = json_pack("{sosss[]so}", "id", item_id(pool, "rs", suffix, n), "type",
                                 "reasoning", "summary", "encrypted_content", resp_jstring(enc));
            break;
        }
        case IR_PART_TOOL_CALL:
            if (p->call.custom)
                item = json_pack("{sossssso soso}", "id", resp_jstring(fc_id(pool, p->call.id)),
                                 "type", "custom_tool_call", "status", "completed", "call_id",
                                 resp_jstring(p->call.id), "name", resp_jstring(p->call.name),
                                 "input", resp_jstring(p->call.args));
            else
                item = json_pack("{sossssso soso}", "id", resp_jstring(fc_id(pool, p->call.id)),
                                 "type", "function_call", "status", "completed", "call_id",
                                 resp_jstring(p->call.id), "name", resp_jstring(p->call.name),
                                 "arguments",
                                 resp_jstring(p->call.args.n ? p->call.args : SLICE_LIT("{}")));
            if (item) { /* the client declared the tool inside a namespace: say which */
                const struct ir_tool *t = conv_tool_lookup(cv, p->call.name, NULL);
                if (t && t->ns.n) json_object_set_new(item, "namespace", resp_jstring(t->ns));
            }
            break;
        default:
            want = false;
            break;
        }
        if (want) ok &= resp_push(output, item);
    }

    const char *status = "completed";
    json_t *incomplete = json_null();
    if (r->finish == IR_FIN_MAX_TOKENS || r->finish == IR_FIN_CONTEXT_EXCEEDED ||
        r->finish == IR_FIN_CONTENT_FILTER) {
        status = "incomplete";
        json_decref(incomplete);
        incomplete =
            json_pack("{ss}", "reason",
                      r->finish == IR_FIN_CONTENT_FILTER ? "content_filter" : "max_output_tokens");
    }

    json_t *root = json_object();
    ok &= resp_set(root, "id", resp_jstring(id));
    ok &= resp_set(root, "object", json_string("response"));
    ok &= resp_set(root, "created_at", json_integer(resp_created(cv, r)));
    ok &= resp_set(root, "status", json_string(status));
    ok &= resp_set(root, "model", resp_jstring(resp_client_model(cv, r)));
    ok &= resp_set(root, "output", output);
    ok &= resp_set(root, "usage", resp_responses_usage_json(&r->usage));
    ok &= resp_set(root, "error", json_null());
    ok &= resp_set(root, "incomplete_details", incomplete);
    ok &= add_request_echo(root, cv->req);
    ok = ok && id.n && resp_json_write(out, root);
    json_decref(root);
    return ok ? 0 : -1;
}
