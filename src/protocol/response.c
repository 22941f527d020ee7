/* response.c — non-stream response conversion and upstream error conversion (the
 * conv_convert_response and conv_error_body entry points of convert.h).
 *
 * A 2xx body is decoded with the reader of the upstream's format, post-processed
 * (JSON-mode tool trick, tool-use finish without tool calls) and written with the writer
 * of the client's format (format-conversion.md §4). An error body is read in whatever
 * shape the upstream used (OpenAI, Claude, the loose shapes of relays, or no JSON at all)
 * and written in the client's shape with the upstream's message text verbatim and the
 * status mapped per §6.2. */
#include "protocol/response.h"

#include <stdio.h>
#include <strings.h>

#include "protocol/errors.h"

/* Bytes of a non-JSON error body quoted in the client's error message (§6.2). */
#define ERROR_EXCERPT_MAX 512

static void dom_release(void *root)
{
    json_decref(root);
}

static size_t skip_ws(struct slice s, size_t i)
{
    while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\n' || s.p[i] == '\r')) i++;
    return i;
}

int resp_decode(struct conv *cv, enum api_format f, struct slice body, struct ir_response *out,
                struct conv_error *err)
{
    memset(out, 0, sizeof *out);
    ir_usage_unknown(&out->usage);
    size_t first = skip_ws(body, 0);
    if (first == body.n) {
        resp_fail(cv, err, 502, "upstream returned an empty response body");
        return -1;
    }
    if (body.p[first] == '<') {
        resp_fail(cv, err, 502, "upstream returned an HTML page instead of a JSON response");
        return -1;
    }
    /* \u0000 in a string is legal JSON a model can produce: slices carry lengths. */
    json_error_t jerr;
    json_t *root = json_loadb(body.p, body.n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        resp_fail(cv, err, 502, "upstream returned invalid JSON (%s at byte %d)", jerr.text,
                  jerr.position);
        return -1;
    }
    if (pool_cleanup(cv->pool, dom_release, root) != 0) {
        resp_fail(cv, err, 502, "out of memory while converting the upstream response");
        return -1;
    }
    if (!json_is_object(root)) {
        resp_fail(cv, err, 502, "upstream response is not a JSON object");
        return -1;
    }
    /* An error object in a 2xx answer (some relays do this): no content to convert. */
    json_t *e = json_object_get(root, "error");
    bool has_content = json_object_get(root, "choices") || json_object_get(root, "content") ||
                       json_object_get(root, "output");
    if (e && !json_is_null(e) && !has_content) {
        struct slice msg = json_is_string(e)
                               ? (struct slice){json_string_value(e), json_string_length(e)}
                               : resp_jstr(e, "message");
        resp_fail(cv, err, 502, "upstream error: %.*s", (int)(msg.n > 250 ? 250 : msg.n),
                  msg.p ? msg.p : "");
        return -1;
    }
    switch (f) {
    case API_CHAT:
        return resp_decode_chat(cv, root, out, err);
    case API_MESSAGES:
        return resp_decode_messages(cv, root, out, err);
    case API_RESPONSES:
        return resp_decode_responses(cv, root, out, err);
    default:
        break;
    }
    resp_fail(cv, err, 502, "responses of format %s cannot be converted", api_format_name(f));
    return -1;
}

bool resp_json_tool_trick(const struct conv *cv)
{
    /* conv_encode_request decided it (and sent the synthetic tool); re-deriving it here
     * from the request and the profile could disagree with what went upstream. */
    return cv->upstream == API_MESSAGES && cv->json_tool_trick;
}

static bool client_has_tool(const struct conv *cv, const char *name)
{
    for (size_t i = 0; cv->req && i < cv->req->n_tools; i++)
        if (slice_eq_str(cv->req->tools[i].name, name)) return true;
    return false;
}

/* litellm issue 6741 for the `values` wrapping. */
struct slice resp_json_tool_text(pool_t *pool, struct slice args)
{
    json_error_t jerr;
    json_t *v = json_loadb(args.p, args.n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    struct slice s = args;
    if (json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "values"))
        s = resp_json_text(pool, json_object_get(v, "values"));
    json_decref(v);
    return s.n ? s : args;
}

void resp_finalize(struct conv *cv, struct ir_response *r)
{
    /* Tool calls in the client's terms: names shortened upstream restored, a Responses
     * `custom` tool sent as a function unwrapped (§2.3). */
    for (size_t i = 0; i < r->n_parts; i++)
        if (r->parts[i].kind == IR_PART_TOOL_CALL) (void)conv_tool_call_fixup(cv, &r->parts[i]);
    if (resp_json_tool_trick(cv) && !client_has_tool(cv, RESP_JSON_TOOL_NAME)) {
        size_t json_calls = 0, other_calls = 0;
        for (size_t i = 0; i < r->n_parts; i++) {
            if (r->parts[i].kind != IR_PART_TOOL_CALL) continue;
            if (slice_eq_str(r->parts[i].call.name, RESP_JSON_TOOL_NAME))
                json_calls++;
            else
                other_calls++;
        }
        if (json_calls) {
            size_t k = 0;
            for (size_t i = 0; i < r->n_parts; i++) {
                struct ir_part p = r->parts[i];
                if (p.kind == IR_PART_TOOL_CALL && slice_eq_str(p.call.name, RESP_JSON_TOOL_NAME)) {
                    /* With client tools called as well, the JSON tool is noise: drop it. */
                    if (other_calls) continue;
                    struct slice text = resp_json_tool_text(cv->pool, p.call.args);
                    memset(&p, 0, sizeof p);
                    p.kind = IR_PART_TEXT;
                    p.text = text;
                }
                r->parts[k++] = p;
            }
            r->n_parts = k;
            if (!other_calls && r->finish == IR_FIN_TOOL_USE) r->finish = IR_FIN_END_TURN;
        }
    }
    if (r->finish == IR_FIN_TOOL_USE) {
        bool any = false;
        for (size_t i = 0; i < r->n_parts && !any; i++) any = r->parts[i].kind == IR_PART_TOOL_CALL;
        if (!any) r->finish = IR_FIN_END_TURN; /* E25: no tool block, no tool turn */
    }
}

int conv_convert_response(struct conv *cv, struct slice upstream_body, struct buf *out,
                          struct conv_error *err)
{
    struct ir_response r;
    if (resp_decode(cv, cv->upstream, upstream_body, &r, err) != 0) return -1;
    resp_finalize(cv, &r);
    cv->usage = r.usage;
    cv->upstream_model = r.model;

    size_t start = out->n;
    int rc = -1;
    switch (cv->client) {
    case API_CHAT:
        rc = resp_encode_chat(cv, &r, out);
        break;
    case API_MESSAGES:
        rc = resp_encode_messages(cv, &r, out);
        break;
    case API_RESPONSES:
        rc = resp_encode_responses(cv, &r, out);
        break;
    case API_COMPLETIONS:
        rc = resp_encode_completions(cv, &r, out);
        break;
    }
    if (rc != 0) {
        out->n = start;
        resp_fail(cv, err, 502, "out of memory while writing the converted response");
        return -1;
    }
    return 0;
}

/* ---------- errors ---------- */

/* What an upstream error body said. Slices point into the DOM or the pool. */
struct upstream_error {
    struct slice message, type, code, param, request_id;
    bool claude_shape;  /* {"type":"error","error":{"type":…,"message":…}} */
    bool openai_shape;  /* {"error":{"message":…,"type":…,…}} */
    bool code_present;  /* `code` member present (null included) */
    bool param_present; /* `param` member present (null included) */
};

/* A member that should be a string but may be a number (some relays send numeric
 * codes) or a structure (a message object): its text. */
static struct slice text_of(pool_t *pool, json_t *v)
{
    if (!v || json_is_null(v)) return SLICE_NULL;
    if (json_is_string(v)) return (struct slice){json_string_value(v), json_string_length(v)};
    return resp_json_text(pool, v);
}

/* Collapses whitespace runs and replaces control bytes in an excerpt of a non-JSON body;
 * an HTML page is represented by its <title> when it has one. */
static struct slice text_excerpt(pool_t *pool, struct slice body)
{
    size_t n = body.n < 64 * 1024 ? body.n : 64 * 1024;
    char *s = pool_strndup(pool, body.p, n);
    if (!s) return SLICE_NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0') s[i] = ' ';
    const char *from = s, *to = s + n;
    char *title = strcasestr(s, "<title");
    if (title) {
        char *gt = strchr(title, '>');
        char *end = gt ? strcasestr(gt, "</title") : NULL;
        if (end && end > gt + 1) from = gt + 1, to = end;
    }
    char *o = pool_alloc(pool, ERROR_EXCERPT_MAX + 1);
    if (!o) return SLICE_NULL;
    size_t k = 0;
    bool space = true; /* drop leading whitespace */
    for (const char *p = from; p < to && k < ERROR_EXCERPT_MAX; p++) {
        unsigned char c = (unsigned char)*p;
        bool ws = c < 0x20 || c == 0x7f || c == ' ';
        if (ws) {
            if (!space) o[k++] = ' ';
            space = true;
        } else {
            o[k++] = (char)c;
            space = false;
        }
    }
    while (k && o[k - 1] == ' ') k--;
    o[k] = '\0';
    return (struct slice){o, k};
}

static void read_upstream_error(pool_t *pool, int status, struct slice body,
                                struct upstream_error *ue)
{
    memset(ue, 0, sizeof *ue);
    size_t first = skip_ws(body, 0);
    if (first == body.n) {
        char *m = pool_printf(pool, "upstream returned HTTP %d with an empty body", status);
        ue->message = m ? slice_from(m) : SLICE_NULL;
        return;
    }
    json_error_t jerr;
    json_t *root = body.p[first] == '{'
                       ? json_loadb(body.p, body.n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr)
                       : NULL;
    if (json_is_object(root)) {
        if (pool_cleanup(pool, dom_release, root) != 0) return; /* out of memory: no text */
        json_t *e = json_object_get(root, "error");
        if (json_is_object(e)) {
            ue->claude_shape = slice_eq_str(resp_jstr(root, "type"), "error");
            ue->openai_shape = !ue->claude_shape;
            ue->message = text_of(pool, json_object_get(e, "message"));
            ue->type = resp_jstr(e, "type");
            ue->code_present = json_object_get(e, "code") != NULL;
            ue->code = text_of(pool, json_object_get(e, "code"));
            ue->param_present = json_object_get(e, "param") != NULL;
            ue->param = text_of(pool, json_object_get(e, "param"));
            ue->request_id = resp_jstr(root, "request_id");
        } else if (json_is_string(e)) {
            ue->message = text_of(pool, e);
        }
        /* Loose shapes: {"message":…}, FastAPI's {"detail":…}, {"msg":…}. */
        if (!ue->message.n) ue->message = text_of(pool, json_object_get(root, "message"));
        if (!ue->message.n) ue->message = text_of(pool, json_object_get(root, "detail"));
        if (!ue->message.n) ue->message = text_of(pool, json_object_get(root, "msg"));
        if (!ue->type.n) ue->type = resp_jstr(root, "type");
        if (!ue->code.n) ue->code = text_of(pool, json_object_get(root, "code"));
        if (slice_eq_str(ue->type, "error")) ue->type = SLICE_NULL;
        if (!ue->message.n) {
            struct slice raw = resp_json_text(pool, root);
            if (raw.n > ERROR_EXCERPT_MAX) raw.n = ERROR_EXCERPT_MAX;
            char *m = pool_printf(pool, "upstream returned HTTP %d: %.*s", status, (int)raw.n,
                                  raw.p ? raw.p : "");
            ue->message = m ? slice_from(m) : SLICE_NULL;
        }
        return;
    }
    json_decref(root);
    struct slice ex = text_excerpt(pool, body);
    char *m = pool_printf(pool, "upstream returned HTTP %d with a non-JSON body: %.*s", status,
                          (int)ex.n, ex.p ? ex.p : "");
    ue->message = m ? slice_from(m) : SLICE_NULL;
}

static bool is_quota_error(const struct upstream_error *ue)
{
    return slice_eq_str(ue->type, "insufficient_quota") ||
           slice_eq_str(ue->code, "insufficient_quota") || slice_eq_str(ue->type, "billing_error");
}

static const char *cstr(pool_t *pool, struct slice s)
{
    return s.p ? pool_strdup_slice(pool, s) : NULL;
}

int conv_error_body(struct conv *cv, int status, struct slice upstream_body, struct buf *out)
{
    struct upstream_error ue;
    if (status < 400 || status > 599) status = 502; /* not an error status: a bad gateway */
    read_upstream_error(cv->pool, status, upstream_body, &ue);
    if (!ue.message.n) ue.message = SLICE_LIT("upstream error");

    /* Map by status first, then refine by the upstream's type/code (§6.2): a quota error
     * is a billing error whatever status carried it (Claude clients do not retry 402). */
    int eff = is_quota_error(&ue) ? 402 : status;
    struct errors_mapping m = errors_map_status(eff);

    if (cv->client == API_MESSAGES) {
        /* A Claude-shaped body already has a Claude error type: keep it. */
        const char *type = ue.claude_shape && ue.type.n ? cstr(cv->pool, ue.type) : m.claude_type;
        errors_write_claude(out, type ? type : m.claude_type, ue.message, ue.request_id);
        return m.claude_status;
    }
    /* OpenAI shape (Chat, Responses, Completions). Between OpenAI-shaped APIs the
     * upstream's type, code and param are kept; otherwise they come from the table. */
    const char *type = m.openai_type, *code = m.openai_code, *param = NULL;
    if (ue.openai_shape) {
        if (ue.type.n) type = cstr(cv->pool, ue.type);
        if (ue.code_present) code = cstr(cv->pool, ue.code);
        if (ue.param_present) param = cstr(cv->pool, ue.param);
    }
    errors_write_openai(out, ue.message, type ? type : m.openai_type, code, param);
    return m.openai_status;
}
