/* conv.c — the request half of the conversion facade (convert.h): decoding a client body
 * into the IR by format, creating the per-attempt context, encoding the upstream body by
 * the upstream's format, and the local token estimate for count_tokens. */
#include "protocol/convert.h"

#include <string.h>

#include "protocol/request_internal.h"

int conv_request_decode(enum api_format client, pool_t *pool, struct slice body,
                        struct ir_request *out, struct conv_error *err)
{
    memset(err, 0, sizeof *err);
    req_init(out);
    json_t *root = req_parse_body(pool, body, err);
    if (!root) return -1;
    struct req_dec d = {pool, err};
    switch (client) {
    case API_CHAT:
        return req_decode_chat(&d, root, out);
    case API_MESSAGES:
        return req_decode_messages(&d, root, out);
    case API_RESPONSES:
        return req_decode_responses(&d, root, out);
    case API_COMPLETIONS:
        return req_decode_completions(&d, root, out);
    }
    return req_fail(err, "unknown API format");
}

struct conv *conv_new(pool_t *pool, enum api_format client, enum api_format upstream,
                      const struct ir_profile *profile, const struct ir_request *req,
                      struct slice client_model)
{
    struct conv *cv = pool_calloc(pool, sizeof *cv);
    if (!cv) return NULL;
    cv->pool = pool;
    cv->client = client;
    cv->upstream = upstream;
    cv->profile = profile;
    cv->req = req;
    cv->client_model = client_model;
    ir_usage_unknown(&cv->usage);
    return cv;
}

int conv_encode_request(struct conv *cv, struct slice *out_body, struct conv_error *err)
{
    memset(err, 0, sizeof *err);
    *out_body = SLICE_NULL;
    const struct ir_request *r = cv->req;
    if (r->same_format_only && cv->upstream != cv->client)
        return req_fail(err, "%s", r->same_format_only);
    struct ir_profile defaults;
    const struct ir_profile *prof = cv->profile;
    if (!prof) {
        ir_profile_defaults(&defaults);
        prof = &defaults;
    }
    struct req_enc e = {cv, cv->pool, r, prof, err};
    cv->tool_names = NULL;
    cv->n_tool_names = 0;
    cv->json_tool_trick = cv->json_tool_forced = cv->thinking_sent = false;
    switch (cv->upstream) {
    case API_CHAT:
        return req_encode_chat(&e, out_body);
    case API_MESSAGES:
        return req_encode_messages(&e, out_body);
    case API_RESPONSES:
        return req_encode_responses(&e, out_body);
    case API_COMPLETIONS:
        break;
    }
    return req_fail(err, "a legacy Completions upstream can only serve Completions clients");
}

const struct ir_tool *conv_tool_lookup(const struct conv *cv, struct slice upstream_name,
                                       struct slice *original)
{
    struct slice name = upstream_name;
    for (size_t i = 0; i < cv->n_tool_names; i++)
        if (slice_eq(cv->tool_names[i].upstream, upstream_name)) {
            name = cv->tool_names[i].original;
            break;
        }
    if (original) *original = name;
    for (size_t i = 0; cv->req && i < cv->req->n_tools; i++)
        if (slice_eq(cv->req->tools[i].name, name)) return &cv->req->tools[i];
    return NULL;
}

const struct ir_tool *conv_tool_call_fixup(struct conv *cv, struct ir_part *call)
{
    struct slice original;
    const struct ir_tool *t = conv_tool_lookup(cv, call->call.name, &original);
    call->call.name = original;
    if (!t || !t->custom || call->call.custom || cv->upstream == API_RESPONSES) return t;
    /* {"input":"…"} → the free text (anything else is passed on as it came) */
    json_t *v = json_loadb(call->call.args.p ? call->call.args.p : "", call->call.args.n, 0, NULL);
    json_t *in = json_object_get(v, CONV_CUSTOM_TOOL_ARG);
    if (json_is_string(in)) {
        struct slice text = req_copy(cv->pool, json_string_value(in), json_string_length(in));
        if (text.p) {
            call->call.args = text;
            call->call.custom = true;
        }
    }
    json_decref(v);
    return t;
}

/* The estimate: about 4 characters of text per token (the usual figure for English and
 * code with the Claude and OpenAI tokenizers), plus 4 tokens of framing per message and
 * per tool, and a fixed 1,600 tokens per image or document (Claude's cost of a ~1.2
 * megapixel image). It is an estimate, documented as such: only an upstream speaking
 * Messages can count exactly. */
#define EST_CHARS_PER_TOKEN  4
#define EST_MESSAGE_OVERHEAD 4
#define EST_MEDIA_TOKENS     1600

static size_t est_parts(const struct ir_part *parts, size_t n, long *media)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ir_part *p = &parts[i];
        switch (p->kind) {
        case IR_PART_TEXT:
        case IR_PART_REFUSAL:
        case IR_PART_THINKING:
            chars += p->text.n;
            break;
        case IR_PART_IMAGE:
        case IR_PART_FILE:
            (*media)++;
            break;
        case IR_PART_REDACTED_THINKING:
            break;
        case IR_PART_TOOL_CALL:
            chars += p->call.name.n + p->call.args.n + p->call.id.n;
            break;
        case IR_PART_TOOL_RESULT:
            chars += p->result.tool_id.n + est_parts(p->result.parts, p->result.n_parts, media);
            break;
        }
    }
    return chars;
}

long conv_count_tokens_estimate(const struct ir_request *req)
{
    if (!req) return 0;
    long media = 0, overhead = 0;
    size_t chars = est_parts(req->system, req->n_system, &media);
    for (size_t i = 0; i < req->n_msgs; i++) {
        chars += est_parts(req->msgs[i].parts, req->msgs[i].n_parts, &media);
        overhead += EST_MESSAGE_OVERHEAD;
    }
    for (size_t i = 0; i < req->n_tools; i++) {
        const struct ir_tool *t = &req->tools[i];
        chars += t->name.n + t->description.n + t->schema_json.n;
        overhead += EST_MESSAGE_OVERHEAD;
    }
    if (req->rf.kind == IR_RF_JSON_SCHEMA) chars += req->rf.schema_json.n;
    long tokens = (long)((chars + EST_CHARS_PER_TOKEN - 1) / EST_CHARS_PER_TOKEN);
    tokens += overhead + media * EST_MEDIA_TOKENS;
    return tokens > 0 ? tokens : 1;
}
