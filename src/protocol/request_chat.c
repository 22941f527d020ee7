/* request_chat.c — OpenAI Chat Completions (format A) requests: the client body → IR
 * decoder (§3.2.1 "From A") and the IR → upstream body encoder (§3.2.4, §3.3, §3.4–3.10).
 *
 * Decoding hoists system/developer messages wherever they appear, keeps reasoning carriers
 * of other gateways (thinking_blocks, reasoning_content, reasoning), maps the deprecated
 * `function_call` / role "function" forms, and refuses malformed input with a 400 that says
 * which field is wrong. Encoding writes tool messages before a user turn's text, moves
 * tool-result images into one user message after the run of tool messages, and repairs
 * unpaired calls and results so an A upstream accepts the history. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "protocol/request_internal.h"

/* ================= decode ================= */

/* One user-side content part (text, image_url, file, input_audio). */
static int dec_user_part(struct req_dec *d, struct ir_request *r, json_t *part,
                         struct ir_part **parts, size_t *n, size_t *cap, const char *path)
{
    if (!json_is_object(part)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, part, "type", &type, path) < 0) return -1;
    if (slice_eq_str(type, "text") || slice_eq_str(type, "input_text")) {
        struct slice text = SLICE_NULL;
        int rc = req_get_str(d, part, "text", &text, path);
        if (rc < 0) return -1;
        if (rc == 0) return req_fail(d->err, "%s.text is required", path);
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = text;
        return 0;
    }
    if (slice_eq_str(type, "image_url")) {
        json_t *iu = json_object_get(part, "image_url");
        struct slice url = SLICE_NULL, detail = SLICE_NULL;
        if (json_is_string(iu)) {
            url = req_jstr(d->pool, iu);
        } else if (json_is_object(iu)) {
            int rc = req_get_str(d, iu, "url", &url, path);
            if (rc < 0) return -1;
            if (rc == 0) return req_fail(d->err, "%s.image_url.url is required", path);
            if (req_get_str(d, iu, "detail", &detail, path) < 0) return -1;
        } else {
            return req_fail(d->err, "%s.image_url must be an object with a url", path);
        }
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        if (req_image_url(d, url, p, path) < 0) return -1;
        p->media.detail = detail;
        return 0;
    }
    if (slice_eq_str(type, "file")) {
        json_t *f = NULL;
        if (req_get_obj(d, part, "file", &f, path) < 0) return -1;
        if (!f) return req_fail(d->err, "%s.file is required", path);
        struct slice data = SLICE_NULL, id = SLICE_NULL, name = SLICE_NULL;
        if (req_get_str(d, f, "file_data", &data, path) < 0 ||
            req_get_str(d, f, "file_id", &id, path) < 0 ||
            req_get_str(d, f, "filename", &name, path) < 0)
            return -1;
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        if (data.p) {
            if (req_file_data_url(d, data, p, path) < 0) return -1;
        } else if (id.p) {
            p->kind = IR_PART_FILE;
            p->media.src = IR_SRC_FILE_ID;
            p->media.data_or_url = id;
        } else {
            return req_fail(d->err, "%s.file needs file_data or file_id", path);
        }
        p->media.filename = name;
        return 0;
    }
    if (slice_eq_str(type, "input_audio")) {
        r->same_format_only = "audio input can only be sent to an OpenAI Chat Completions "
                              "upstream, and none serves this model";
        return 0;
    }
    if (!type.p) return req_fail(d->err, "%s.type is required", path);
    return req_fail(d->err, "%s: unknown content type '%.*s'", path,
                    (int)(type.n > 40 ? 40 : type.n), type.p);
}

/* content: string, or an array of parts (must not be empty). */
static int dec_user_content(struct req_dec *d, struct ir_request *r, json_t *content,
                            struct ir_part **parts, size_t *n, size_t *cap, const char *path,
                            bool null_ok)
{
    if (!content || json_is_null(content)) {
        if (null_ok) return 0;
        return req_fail(d->err, "%s.content is required", path);
    }
    if (json_is_string(content)) {
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, content);
        return 0;
    }
    if (!json_is_array(content))
        return req_fail(d->err, "%s.content must be a string or an array of content parts", path);
    if (json_array_size(content) == 0)
        return req_fail(d->err, "%s.content must not be an empty array", path);
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *pp = req_path(d->pool, path, "content", (long)i);
        if (dec_user_part(d, r, part, parts, n, cap, pp) < 0) return -1;
    }
    return 0;
}

static int dec_system(struct req_dec *d, struct ir_request *r, json_t *m, size_t *cap,
                      const char *path)
{
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) {
        struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, c);
        return 0;
    }
    if (!json_is_array(c))
        return req_fail(d->err, "%s.content must be a string or an array of text parts", path);
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        /* Only text survives in a system prompt; other parts are dropped (§3.2.1). */
        json_t *t = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(t)) continue;
        struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, t);
    }
    return 0;
}

static int dec_tool_call(struct req_dec *d, json_t *tc, struct ir_part *p, const char *path)
{
    if (!json_is_object(tc)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, tc, "type", &type, path) < 0) return -1;
    p->kind = IR_PART_TOOL_CALL;
    if (req_get_str(d, tc, "id", &p->call.id, path) < 0) return -1;
    if (slice_eq_str(type, "custom")) {
        json_t *c = NULL;
        if (req_get_obj(d, tc, "custom", &c, path) < 0) return -1;
        if (!c) return req_fail(d->err, "%s.custom is required", path);
        if (req_get_str(d, c, "name", &p->call.name, path) < 0 ||
            req_get_str(d, c, "input", &p->call.args, path) < 0)
            return -1;
        p->call.custom = true;
    } else {
        json_t *f = NULL;
        if (req_get_obj(d, tc, "function", &f, path) < 0) return -1;
        if (!f) return req_fail(d->err, "%s.function is required", path);
        if (req_get_str(d, f, "name", &p->call.name, path) < 0) return -1;
        json_t *args = json_object_get(f, "arguments");
        if (json_is_string(args))
            p->call.args = req_jstr(d->pool, args);
        else if (args && !json_is_null(args))
            p->call.args = req_jdump(d->pool, args);
    }
    if (!p->call.name.n) return req_fail(d->err, "%s: the tool call has no function name", path);
    return 0;
}

static int dec_assistant(struct req_dec *d, json_t *m, struct ir_message *msg, const char *path,
                         size_t index)
{
    size_t cap = 0;
    /* reasoning carriers first (§3.2.1) */
    json_t *tb = json_object_get(m, "thinking_blocks");
    if (json_is_array(tb) && json_array_size(tb)) {
        size_t i;
        json_t *b;
        json_array_foreach(tb, i, b)
        {
            if (!json_is_object(b)) continue;
            json_t *type = json_object_get(b, "type");
            struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
            if (!p) return req_oom(d->err);
            if (json_is_string(type) && strcmp(json_string_value(type), "redacted_thinking") == 0) {
                p->kind = IR_PART_REDACTED_THINKING;
                p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
                p->think.redacted_data = req_jstr(d->pool, json_object_get(b, "data"));
                req_sig_parse(d->pool, p, p->think.redacted_data, IR_VENDOR_ANTHROPIC);
                if (p->kind != IR_PART_REDACTED_THINKING) { /* a wrapped non-redacted value */
                    p->kind = IR_PART_THINKING;
                }
                continue;
            }
            p->kind = IR_PART_THINKING;
            p->text = req_jstr(d->pool, json_object_get(b, "thinking"));
            req_sig_parse(d->pool, p, req_jstr(d->pool, json_object_get(b, "signature")),
                          IR_VENDOR_ANTHROPIC);
        }
    } else {
        struct slice rc = SLICE_NULL;
        if (req_get_str(d, m, "reasoning_content", &rc, path) < 0) return -1;
        if (!rc.p) {
            json_t *rs = json_object_get(m, "reasoning");
            if (json_is_string(rs)) rc = req_jstr(d->pool, rs);
        }
        if (rc.n) {
            struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
            if (!p) return req_oom(d->err);
            p->kind = IR_PART_THINKING;
            p->text = rc;
        }
    }
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) {
        struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, c);
    } else if (json_is_array(c)) {
        size_t i;
        json_t *part;
        json_array_foreach(c, i, part)
        {
            const char *pp = req_path(d->pool, path, "content", (long)i);
            struct slice type = SLICE_NULL, text = SLICE_NULL;
            if (!json_is_object(part)) return req_fail(d->err, "%s must be an object", pp);
            if (req_get_str(d, part, "type", &type, pp) < 0) return -1;
            bool refusal = slice_eq_str(type, "refusal");
            if (!refusal && !slice_eq_str(type, "text") && !slice_eq_str(type, "output_text"))
                return req_fail(d->err, "%s: unknown content type '%.*s' in an assistant message",
                                pp, (int)(type.n > 40 ? 40 : type.n), type.p ? type.p : "");
            if (req_get_str(d, part, refusal ? "refusal" : "text", &text, pp) < 0) return -1;
            struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
            if (!p) return req_oom(d->err);
            p->kind = refusal ? IR_PART_REFUSAL : IR_PART_TEXT;
            p->text = text;
        }
    } else if (c && !json_is_null(c)) {
        return req_fail(d->err, "%s.content must be a string, an array or null", path);
    }
    struct slice refusal = SLICE_NULL;
    if (req_get_str(d, m, "refusal", &refusal, path) < 0) return -1;
    if (refusal.n) {
        struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_REFUSAL;
        p->text = refusal;
    }
    json_t *tcs = NULL;
    if (req_get_arr(d, m, "tool_calls", &tcs, path) < 0) return -1;
    size_t i;
    json_t *tc;
    json_array_foreach(tcs, i, tc)
    {
        const char *pp = req_path(d->pool, path, "tool_calls", (long)i);
        struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
        if (!p) return req_oom(d->err);
        if (dec_tool_call(d, tc, p, pp) < 0) return -1;
        if (!p->call.id.n) /* some clients omit ids; pairing needs one */
            p->call.id = slice_from(pool_printf(d->pool, "call_m%zu_%zu", index, i));
    }
    json_t *fc = NULL;
    if (req_get_obj(d, m, "function_call", &fc, path) < 0) return -1;
    if (fc) { /* deprecated single function call */
        struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TOOL_CALL;
        if (req_get_str(d, fc, "name", &p->call.name, path) < 0 ||
            req_get_str(d, fc, "arguments", &p->call.args, path) < 0)
            return -1;
        p->call.id = slice_from(pool_printf(d->pool, "call_m%zu_fn", index));
    }
    return 0;
}

/* The most recent non-tool message: an assistant with tool calls, else NULL. */
static const struct ir_message *calling_assistant(const struct ir_request *r)
{
    for (size_t i = r->n_msgs; i-- > 0;) {
        const struct ir_message *m = &r->msgs[i];
        if (m->role == IR_ROLE_TOOL) continue;
        if (m->role != IR_ROLE_ASSISTANT) return NULL;
        for (size_t k = 0; k < m->n_parts; k++)
            if (m->parts[k].kind == IR_PART_TOOL_CALL) return m;
        return NULL;
    }
    return NULL;
}

static int dec_tool_msg(struct req_dec *d, struct ir_request *r, json_t *m, bool function_role,
                        size_t *msg_cap, const char *path)
{
    struct slice id = SLICE_NULL, name = SLICE_NULL;
    if (function_role) {
        if (req_get_str(d, m, "name", &name, path) < 0) return -1;
        /* the most recent call with that name (deprecated role "function") */
        for (size_t i = r->n_msgs; i-- > 0 && !id.p;) {
            const struct ir_message *am = &r->msgs[i];
            if (am->role != IR_ROLE_ASSISTANT) continue;
            for (size_t k = am->n_parts; k-- > 0;)
                if (am->parts[k].kind == IR_PART_TOOL_CALL &&
                    slice_eq(am->parts[k].call.name, name)) {
                    id = am->parts[k].call.id;
                    break;
                }
        }
        if (!id.p)
            return req_fail(d->err,
                            "%s: a function result for '%.*s' has no matching function "
                            "call before it",
                            path, (int)(name.n > 64 ? 64 : name.n), name.p ? name.p : "");
    } else {
        int rc = req_get_str(d, m, "tool_call_id", &id, path);
        if (rc < 0) return -1;
        if (rc == 0 || !id.n) return req_fail(d->err, "%s.tool_call_id is required", path);
    }
    if (!calling_assistant(r))
        return req_fail(d->err,
                        "%s: a tool result (tool_call_id '%.*s') must follow an assistant message "
                        "with tool_calls; no tool call precedes it",
                        path, (int)(id.n > 64 ? 64 : id.n), id.p);
    struct ir_message *msg = req_add_msg(d->pool, r, msg_cap);
    if (!msg) return req_oom(d->err);
    msg->role = IR_ROLE_TOOL;
    size_t cap = 0;
    struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
    if (!p) return req_oom(d->err);
    p->kind = IR_PART_TOOL_RESULT;
    p->result.tool_id = id;
    size_t rcap = 0;
    json_t *c = json_object_get(m, "content");
    if (json_is_array(c) && json_array_size(c) == 0) return 0; /* empty result */
    return dec_user_content(d, r, c, &p->result.parts, &p->result.n_parts, &rcap, path, true);
}

static int dec_tools(struct req_dec *d, json_t *root, struct ir_request *r)
{
    json_t *tools = NULL;
    if (req_get_arr(d, root, "tools", &tools, "") < 0) return -1;
    size_t i, cap = 0;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *path = req_path(d->pool, "", "tools", (long)i);
        if (!json_is_object(t)) return req_fail(d->err, "%s must be an object", path);
        struct slice type = SLICE_NULL;
        if (req_get_str(d, t, "type", &type, path) < 0) return -1;
        struct ir_tool *tool = req_grow(d->pool, r->tools, r->n_tools, &cap, sizeof *tool);
        if (!tool) return req_oom(d->err);
        r->tools = tool;
        tool = &r->tools[r->n_tools];
        memset(tool, 0, sizeof *tool);
        tool->strict = -1;
        if (slice_eq_str(type, "custom")) {
            json_t *c = NULL;
            if (req_get_obj(d, t, "custom", &c, path) < 0) return -1;
            if (!c) return req_fail(d->err, "%s.custom is required", path);
            if (req_get_str(d, c, "name", &tool->name, path) < 0 ||
                req_get_str(d, c, "description", &tool->description, path) < 0)
                return -1;
            tool->custom = true;
        } else if (slice_eq_str(type, "function") || !type.p) {
            json_t *f = NULL;
            if (req_get_obj(d, t, "function", &f, path) < 0) return -1;
            if (!f) return req_fail(d->err, "%s.function is required", path);
            const char *fp = req_path(d->pool, path, "function", -1);
            if (req_get_str(d, f, "name", &tool->name, fp) < 0 ||
                req_get_str(d, f, "description", &tool->description, fp) < 0)
                return -1;
            if (req_tool_schema(d, json_object_get(f, "parameters"), &tool->schema_json,
                                req_path(d->pool, fp, "parameters", -1)) < 0)
                return -1;
            bool strict;
            int rc = req_get_bool(d, f, "strict", &strict, fp);
            if (rc < 0) return -1;
            if (rc) tool->strict = strict;
        } else {
            return req_fail(d->err, "%s: tool type '%.*s' is not supported", path,
                            (int)(type.n > 40 ? 40 : type.n), type.p);
        }
        if (!tool->name.n) return req_fail(d->err, "%s: the tool needs a name", path);
        r->n_tools++;
    }
    return 0;
}

static int dec_tool_choice(struct req_dec *d, json_t *root, struct ir_request *r)
{
    json_t *tc = json_object_get(root, "tool_choice");
    if (!tc || json_is_null(tc)) return 0;
    int shared = req_tool_choice_openai_string(d, tc, r);
    if (shared <= 0) return shared;
    struct slice type = SLICE_NULL;
    if (req_get_str(d, tc, "type", &type, "tool_choice") < 0) return -1;
    if (slice_eq_str(type, "function") || slice_eq_str(type, "custom")) {
        json_t *f = json_object_get(tc, slice_eq_str(type, "function") ? "function" : "custom");
        json_t *name = json_is_object(f) ? json_object_get(f, "name") : NULL;
        if (!json_is_string(name))
            return req_fail(d->err, "tool_choice.%.*s.name is required", (int)type.n, type.p);
        r->tool_choice.mode = IR_TC_NAMED;
        r->tool_choice.name = req_jstr(d->pool, name);
        return 0;
    }
    if (slice_eq_str(type, "allowed_tools")) {
        json_t *at = json_object_get(tc, "allowed_tools");
        json_t *tools = json_is_object(at) ? json_object_get(at, "tools") : NULL;
        if (!json_is_array(tools))
            return req_fail(d->err, "tool_choice.allowed_tools.tools must be an array");
        struct slice mode = SLICE_NULL;
        if (req_get_str(d, at, "mode", &mode, "tool_choice.allowed_tools") < 0) return -1;
        r->tool_choice.mode = IR_TC_ALLOWED;
        r->tool_choice.required = slice_eq_str(mode, "required");
        r->tool_choice.names =
            pool_calloc(d->pool, (json_array_size(tools) + 1) * sizeof(struct slice));
        if (!r->tool_choice.names) return req_oom(d->err);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            json_t *f = json_object_get(t, "function");
            json_t *name =
                json_is_object(f) ? json_object_get(f, "name") : json_object_get(t, "name");
            if (json_is_string(name))
                r->tool_choice.names[r->tool_choice.n_names++] = req_jstr(d->pool, name);
        }
        return 0;
    }
    return req_fail(d->err, "tool_choice type '%.*s' is not supported",
                    (int)(type.n > 40 ? 40 : type.n), type.p ? type.p : "");
}

static int dec_response_format(struct req_dec *d, json_t *root, struct ir_request *r)
{
    json_t *rf = NULL;
    if (req_get_obj(d, root, "response_format", &rf, "") < 0) return -1;
    if (!rf) return 0;
    struct slice type = SLICE_NULL;
    if (req_get_str(d, rf, "type", &type, "response_format") < 0) return -1;
    if (slice_eq_str(type, "text")) {
        r->rf.kind = IR_RF_TEXT;
    } else if (slice_eq_str(type, "json_object")) {
        r->rf.kind = IR_RF_JSON_OBJECT;
    } else if (slice_eq_str(type, "json_schema")) {
        json_t *js = NULL;
        if (req_get_obj(d, rf, "json_schema", &js, "response_format") < 0) return -1;
        if (!js) return req_fail(d->err, "response_format.json_schema is required");
        r->rf.kind = IR_RF_JSON_SCHEMA;
        if (req_get_str(d, js, "name", &r->rf.name, "response_format.json_schema") < 0) return -1;
        json_t *schema = NULL;
        if (req_get_obj(d, js, "schema", &schema, "response_format.json_schema") < 0) return -1;
        if (schema) r->rf.schema_json = req_jdump(d->pool, schema);
        bool strict;
        int rc = req_get_bool(d, js, "strict", &strict, "response_format.json_schema");
        if (rc < 0) return -1;
        if (rc) r->rf.strict = strict;
    } else {
        return req_fail(d->err, "response_format.type must be text, json_object or json_schema");
    }
    return 0;
}

static int dec_reasoning(struct req_dec *d, json_t *root, struct ir_request *r)
{
    struct slice effort = SLICE_NULL;
    if (req_get_str(d, root, "reasoning_effort", &effort, "") < 0) return -1;
    json_t *reasoning = json_object_get(root, "reasoning");
    if (!effort.p && json_is_object(reasoning)) { /* OpenRouter style */
        if (req_get_str(d, reasoning, "effort", &effort, "reasoning") < 0) return -1;
        long mt;
        if (req_get_count(d, reasoning, "max_tokens", &mt, "reasoning") == 1) {
            r->reasoning.enabled = mt > 0;
            r->reasoning.budget = mt;
        }
    }
    if (effort.p) {
        enum ir_effort e = req_effort_parse(effort);
        if (e == IR_EFFORT_UNSET)
            return req_fail(d->err,
                            "reasoning_effort '%.*s' is not one of none, minimal, low, "
                            "medium, high, xhigh",
                            (int)(effort.n > 20 ? 20 : effort.n), effort.p);
        r->reasoning.effort = e;
        if (r->reasoning.enabled < 0) r->reasoning.enabled = e != IR_EFFORT_NONE;
    }
    json_t *thinking = NULL; /* litellm pass-through style; the budget wins */
    if (req_get_obj(d, root, "thinking", &thinking, "") < 0) return -1;
    if (thinking) {
        struct slice type = SLICE_NULL;
        long b;
        if (req_get_str(d, thinking, "type", &type, "thinking") < 0) return -1;
        if (slice_eq_str(type, "disabled")) {
            r->reasoning.enabled = 0;
        } else if (req_get_count(d, thinking, "budget_tokens", &b, "thinking") == 1) {
            r->reasoning.enabled = 1;
            r->reasoning.budget = b;
        }
    }
    return 0;
}

int req_decode_chat(struct req_dec *d, json_t *root, struct ir_request *r)
{
    if (req_get_str(d, root, "model", &r->model, "") < 0) return -1;
    json_t *msgs = NULL;
    if (req_get_arr(d, root, "messages", &msgs, "") < 0) return -1;
    if (!msgs || json_array_size(msgs) == 0)
        return req_fail(d->err, "'messages' must be a non-empty array");
    size_t i, sys_cap = 0, msg_cap = 0;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *path = req_path(d->pool, "", "messages", (long)i);
        if (!json_is_object(m)) return req_fail(d->err, "%s must be an object", path);
        struct slice role = SLICE_NULL;
        if (req_get_str(d, m, "role", &role, path) < 0) return -1;
        if (slice_eq_str(role, "system") || slice_eq_str(role, "developer")) {
            if (dec_system(d, r, m, &sys_cap, path) < 0) return -1;
        } else if (slice_eq_str(role, "user")) {
            struct ir_message *msg = req_add_msg(d->pool, r, &msg_cap);
            if (!msg) return req_oom(d->err);
            msg->role = IR_ROLE_USER;
            if (req_get_str(d, m, "name", &msg->name, path) < 0) return -1;
            size_t cap = 0;
            if (dec_user_content(d, r, json_object_get(m, "content"), &msg->parts, &msg->n_parts,
                                 &cap, path, false) < 0)
                return -1;
        } else if (slice_eq_str(role, "assistant")) {
            struct ir_message *msg = req_add_msg(d->pool, r, &msg_cap);
            if (!msg) return req_oom(d->err);
            msg->role = IR_ROLE_ASSISTANT;
            if (req_get_str(d, m, "name", &msg->name, path) < 0) return -1;
            if (dec_assistant(d, m, msg, path, i) < 0) return -1;
        } else if (slice_eq_str(role, "tool") || slice_eq_str(role, "function")) {
            if (dec_tool_msg(d, r, m, slice_eq_str(role, "function"), &msg_cap, path) < 0)
                return -1;
        } else if (!role.p) {
            return req_fail(d->err, "%s.role is required", path);
        } else {
            return req_fail(d->err, "%s: unknown role '%.*s'", path,
                            (int)(role.n > 30 ? 30 : role.n), role.p);
        }
    }
    if (dec_tools(d, root, r) < 0 || dec_tool_choice(d, root, r) < 0) return -1;
    bool b;
    int rc = req_get_bool(d, root, "parallel_tool_calls", &b, "");
    if (rc < 0) return -1;
    if (rc) r->parallel_tool_calls = b;
    if (req_get_count(d, root, "max_completion_tokens", &r->max_output_tokens, "") < 0) return -1;
    if (r->max_output_tokens < 0 &&
        req_get_count(d, root, "max_tokens", &r->max_output_tokens, "") < 0)
        return -1;
    if (req_get_num(d, root, "temperature", &r->temperature, "") < 0 ||
        req_get_num(d, root, "top_p", &r->top_p, "") < 0 ||
        req_get_count(d, root, "top_k", &r->top_k, "") < 0)
        return -1;
    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        r->stop = pool_calloc(d->pool, sizeof *r->stop);
        if (!r->stop) return req_oom(d->err);
        r->stop[0] = req_jstr(d->pool, stop);
        r->n_stop = 1;
    } else if (json_is_array(stop)) {
        r->stop = pool_calloc(d->pool, (json_array_size(stop) + 1) * sizeof *r->stop);
        if (!r->stop) return req_oom(d->err);
        size_t k;
        json_t *s;
        json_array_foreach(stop, k, s)
        {
            if (!json_is_string(s))
                return req_fail(d->err, "'stop' must be a string or an array of strings");
            r->stop[r->n_stop++] = req_jstr(d->pool, s);
        }
    } else if (stop && !json_is_null(stop)) {
        return req_fail(d->err, "'stop' must be a string or an array of strings");
    }
    long n;
    if ((rc = req_get_count(d, root, "n", &n, "")) < 0) return -1;
    if (rc) {
        r->n = (int)n;
        if (n > 1)
            r->same_format_only = "n > 1 (several choices) is only supported by an OpenAI Chat "
                                  "Completions upstream, and none serves this model";
    }
    if (dec_response_format(d, root, r) < 0 || dec_reasoning(d, root, r) < 0) return -1;
    struct slice safety = SLICE_NULL;
    if (req_get_str(d, root, "user", &r->user_id, "") < 0 ||
        req_get_str(d, root, "safety_identifier", &safety, "") < 0)
        return -1;
    if (!r->user_id.p) r->user_id = safety;
    json_t *md = NULL;
    if (req_get_obj(d, root, "metadata", &md, "") < 0) return -1;
    if (md) r->metadata_json = req_jdump(d->pool, md);
    if (req_get_bool(d, root, "stream", &r->stream, "") < 0) return -1;
    json_t *so = NULL;
    if (req_get_obj(d, root, "stream_options", &so, "") < 0) return -1;
    if (so && req_get_bool(d, so, "include_usage", &r->include_usage, "stream_options") < 0)
        return -1;
    if (req_get_bool(d, root, "store", &r->store, "") < 0 ||
        req_get_str(d, root, "prompt_cache_key", &r->prompt_cache_key, "") < 0 ||
        req_get_str(d, root, "verbosity", &r->verbosity, "") < 0)
        return -1;
    json_t *mod = json_object_get(root, "modalities");
    if (json_is_array(mod)) {
        size_t k;
        json_t *s;
        json_array_foreach(mod, k,
                           s) if (json_is_string(s) && !strcmp(json_string_value(s), "audio"))
            r->same_format_only = "audio output can only come from an OpenAI Chat Completions "
                                  "upstream, and none serves this model";
    }
    return 0;
}

/* ================= encode ================= */

static json_t *enc_user_part(struct req_enc *e, const struct ir_part *p)
{
    (void)e;
    if (p->kind == IR_PART_TEXT)
        return json_pack("{s:s,s:o}", "type", "text", "text", req_js(p->text));
    if (p->kind == IR_PART_IMAGE) {
        json_t *iu = json_object();
        if (p->media.src == IR_SRC_BASE64) {
            char *url = pool_printf(e->pool, "data:%.*s;base64,%.*s", (int)p->media.media_type.n,
                                    p->media.media_type.p, (int)p->media.data_or_url.n,
                                    p->media.data_or_url.p);
            req_set(iu, "url", json_string(url ? url : ""));
        } else {
            req_set(iu, "url", req_js(p->media.data_or_url));
        }
        if (p->media.detail.n) req_set(iu, "detail", req_js(p->media.detail));
        return json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu);
    }
    if (p->kind == IR_PART_FILE) {
        json_t *f = json_object();
        if (p->media.src == IR_SRC_FILE_ID) {
            req_set(f, "file_id", req_js(p->media.data_or_url));
        } else {
            char *url = pool_printf(e->pool, "data:%.*s;base64,%.*s", (int)p->media.media_type.n,
                                    p->media.media_type.p, (int)p->media.data_or_url.n,
                                    p->media.data_or_url.p);
            req_set(f, "file_data", json_string(url ? url : ""));
        }
        if (p->media.filename.n) req_set(f, "filename", req_js(p->media.filename));
        return json_pack("{s:s,s:o}", "type", "file", "file", f);
    }
    return NULL;
}

/* User content: a single text part → string, else an array. */
static json_t *enc_user_content(struct req_enc *e, const struct ir_part *parts, size_t n)
{
    size_t texts = 0, others = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == IR_PART_TEXT)
            texts++;
        else if (parts[i].kind == IR_PART_IMAGE || parts[i].kind == IR_PART_FILE)
            others++;
    }
    if (others == 0 && texts <= 1) {
        for (size_t i = 0; i < n; i++)
            if (parts[i].kind == IR_PART_TEXT) return req_js(parts[i].text);
        return json_string("");
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *v = enc_user_part(e, &parts[i]);
        if (v) json_array_append_new(a, v);
    }
    return a;
}

static json_t *enc_tool_call(struct req_enc *e, const struct ir_part *p)
{
    struct slice args = p->call.args;
    if (p->call.custom) args = req_custom_args(e->pool, args);
    if (!args.n) args = SLICE_LIT("{}");
    return json_pack("{s:o,s:s,s:{s:o,s:o}}", "id", req_js(p->call.id), "type", "function",
                     "function", "name", req_js(req_tool_name(e, p->call.name)), "arguments",
                     req_js(args));
}

static bool has_media(const struct ir_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].kind == IR_PART_IMAGE || parts[i].kind == IR_PART_FILE) return true;
    return false;
}

/* The synthetic user message: a lone text part is written as a plain string. */
static json_t *user_msg(json_t *parts)
{
    json_t *first = json_array_get(parts, 0);
    if (json_array_size(parts) == 1 &&
        !strcmp(json_string_value(json_object_get(first, "type")), "text")) {
        json_t *t = json_incref(json_object_get(first, "text"));
        json_decref(parts);
        return json_pack("{s:s,s:o}", "role", "user", "content", t);
    }
    return json_pack("{s:s,s:o}", "role", "user", "content", parts);
}

static json_t *enc_messages(struct req_enc *e)
{
    const struct ir_request *r = e->req;
    json_t *msgs = json_array();
    if (r->n_system) {
        struct slice sys = req_join_text(e->pool, r->system, r->n_system, "\n\n");
        json_array_append_new(msgs,
                              json_pack("{s:s,s:o}", "role", "system", "content", req_js(sys)));
    }
    /* ids of the calls of the last assistant message still waiting for a tool message */
    const struct ir_message *calling = NULL;
    bool *answered = NULL;
    json_t *pending_user = NULL; /* synthetic user message holding tool-result images */

#define CLOSE_RUN()                                                                                \
    do {                                                                                           \
        if (calling) {                                                                             \
            for (size_t k = 0; k < calling->n_parts; k++)                                          \
                if (calling->parts[k].kind == IR_PART_TOOL_CALL && !answered[k])                   \
                    json_array_append_new(msgs, json_pack("{s:s,s:o,s:s}", "role", "tool",         \
                                                          "tool_call_id",                          \
                                                          req_js(calling->parts[k].call.id),       \
                                                          "content", "(no result returned)"));     \
            calling = NULL;                                                                        \
        }                                                                                          \
    } while (0)

    for (size_t i = 0; i < r->n_msgs; i++) {
        const struct ir_message *m = &r->msgs[i];
        if (m->role == IR_ROLE_TOOL) {
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_TOOL_RESULT) continue;
                struct slice text =
                    req_join_text(e->pool, p->result.parts, p->result.n_parts, "\n");
                long idx = -1;
                if (calling)
                    for (size_t c = 0; c < calling->n_parts; c++)
                        if (calling->parts[c].kind == IR_PART_TOOL_CALL &&
                            slice_eq(calling->parts[c].call.id, p->result.tool_id) && !answered[c])
                            idx = (long)c;
                if (idx < 0) { /* orphan result: becomes user text (§3.2.4) */
                    if (!pending_user) pending_user = json_array();
                    char *t = pool_printf(e->pool, "[tool result for %.*s]\n%.*s",
                                          (int)p->result.tool_id.n, p->result.tool_id.p,
                                          (int)text.n, text.p);
                    json_array_append_new(
                        pending_user, json_pack("{s:s,s:s}", "type", "text", "text", t ? t : ""));
                    continue;
                }
                answered[idx] = true;
                json_array_append_new(msgs, json_pack("{s:s,s:o,s:o}", "role", "tool",
                                                      "tool_call_id", req_js(p->result.tool_id),
                                                      "content", req_js(text)));
                if (has_media(p->result.parts, p->result.n_parts)) {
                    if (!pending_user) pending_user = json_array();
                    char *t = pool_printf(e->pool, "Image returned by tool call %.*s:",
                                          (int)p->result.tool_id.n, p->result.tool_id.p);
                    json_array_append_new(
                        pending_user, json_pack("{s:s,s:s}", "type", "text", "text", t ? t : ""));
                    for (size_t q = 0; q < p->result.n_parts; q++) {
                        const struct ir_part *mp = &p->result.parts[q];
                        if (mp->kind == IR_PART_IMAGE || mp->kind == IR_PART_FILE)
                            json_array_append_new(pending_user, enc_user_part(e, mp));
                    }
                }
            }
            continue;
        }
        CLOSE_RUN();
        if (m->role == IR_ROLE_USER) {
            if (pending_user) { /* the user turn's parts join the synthetic message */
                for (size_t k = 0; k < m->n_parts; k++) {
                    json_t *v = enc_user_part(e, &m->parts[k]);
                    if (v) json_array_append_new(pending_user, v);
                }
                json_array_append_new(msgs, user_msg(pending_user));
                pending_user = NULL;
                continue;
            }
            json_t *um = json_pack("{s:s,s:o}", "role", "user", "content",
                                   enc_user_content(e, m->parts, m->n_parts));
            if (m->name.n) req_set(um, "name", req_js(m->name));
            json_array_append_new(msgs, um);
            continue;
        }
        if (pending_user) {
            json_array_append_new(msgs, user_msg(pending_user));
            pending_user = NULL;
        }
        /* assistant */
        json_t *am = json_object();
        req_set(am, "role", json_string("assistant"));
        struct slice text = req_join_text(e->pool, m->parts, m->n_parts, "");
        json_t *calls = json_array();
        struct slice refusal = SLICE_NULL, thinking = SLICE_NULL;
        size_t n_text = 0;
        for (size_t k = 0; k < m->n_parts; k++) {
            const struct ir_part *p = &m->parts[k];
            if (p->kind == IR_PART_TEXT)
                n_text++;
            else if (p->kind == IR_PART_TOOL_CALL)
                json_array_append_new(calls, enc_tool_call(e, p));
            else if (p->kind == IR_PART_REFUSAL)
                refusal = p->text;
            else if (p->kind == IR_PART_THINKING && p->text.n && !thinking.n)
                thinking = p->text;
        }
        if (json_array_size(calls) && text.n == 0)
            req_set(am, "content", json_null());
        else
            req_set(am, "content", req_js(text));
        if (refusal.n) req_set(am, "refusal", req_js(refusal));
        if (thinking.n && e->prof->chat_history_reasoning) {
            const char *field = e->prof->chat_reasoning_field == IR_REASONING_FIELD_REASONING
                                    ? "reasoning"
                                    : "reasoning_content";
            req_set(am, field, req_js(thinking));
        }
        if (json_array_size(calls)) {
            req_set(am, "tool_calls", calls);
            calling = m;
            answered = pool_calloc(e->pool, m->n_parts + 1);
            if (!answered) calling = NULL;
        } else {
            json_decref(calls);
        }
        if (m->name.n) req_set(am, "name", req_js(m->name));
        json_array_append_new(msgs, am);
    }
    CLOSE_RUN();
    if (pending_user) json_array_append_new(msgs, user_msg(pending_user));
#undef CLOSE_RUN
    return msgs;
}

static json_t *enc_tool_def(struct req_enc *e, const struct ir_tool *t)
{
    json_t *f = json_object();
    req_set(f, "name", req_js(req_tool_name(e, t->name)));
    if (t->description.n) req_set(f, "description", req_js(t->description));
    json_t *schema;
    if (t->custom) {
        schema =
            json_pack("{s:s,s:{s:{s:s}},s:[s]}", "type", "object", "properties",
                      CONV_CUSTOM_TOOL_ARG, "type", "string", "required", CONV_CUSTOM_TOOL_ARG);
    } else {
        schema = req_jparse(t->schema_json);
        if (!schema) schema = json_pack("{s:s,s:{}}", "type", "object", "properties");
    }
    req_set(f, "parameters", schema);
    if (t->strict >= 0 && !t->custom) req_set(f, "strict", json_boolean(t->strict));
    return json_pack("{s:s,s:o}", "type", "function", "function", f);
}

int req_encode_chat(struct req_enc *e, struct slice *out)
{
    const struct ir_request *r = e->req;
    const struct ir_profile *prof = e->prof;
    json_t *root = req_root(e->pool);
    if (!root) return req_oom(e->err);
    req_set(root, "model", req_js(r->model));
    req_set(root, "messages", enc_messages(e));
    if (r->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < r->n_tools; i++)
            json_array_append_new(tools, enc_tool_def(e, &r->tools[i]));
        req_set(root, "tools", tools);
        switch (r->tool_choice.mode) {
        case IR_TC_UNSET:
            break;
        case IR_TC_AUTO:
            req_set(root, "tool_choice", json_string("auto"));
            break;
        case IR_TC_NONE:
            req_set(root, "tool_choice", json_string("none"));
            break;
        case IR_TC_ANY:
            req_set(root, "tool_choice", json_string("required"));
            break;
        case IR_TC_NAMED:
            req_set(root, "tool_choice",
                    json_pack("{s:s,s:{s:o}}", "type", "function", "function", "name",
                              req_js(req_tool_name(e, r->tool_choice.name))));
            break;
        case IR_TC_ALLOWED: {
            json_t *names = json_array();
            for (size_t i = 0; i < r->tool_choice.n_names; i++)
                json_array_append_new(
                    names, json_pack("{s:s,s:{s:o}}", "type", "function", "function", "name",
                                     req_js(req_tool_name(e, r->tool_choice.names[i]))));
            req_set(root, "tool_choice",
                    json_pack("{s:s,s:{s:s,s:o}}", "type", "allowed_tools", "allowed_tools", "mode",
                              r->tool_choice.required ? "required" : "auto", "tools", names));
            break;
        }
        }
        if (r->parallel_tool_calls >= 0)
            req_set(root, "parallel_tool_calls", json_boolean(r->parallel_tool_calls));
    }
    if (r->max_output_tokens >= 0)
        req_set(root, prof->openai_max_completion_tokens ? "max_completion_tokens" : "max_tokens",
                json_integer(r->max_output_tokens));
    if (!isnan(r->temperature)) req_set(root, "temperature", json_real(r->temperature));
    if (!isnan(r->top_p)) req_set(root, "top_p", json_real(r->top_p));
    if (r->n_stop) {
        json_t *stop = json_array();
        for (size_t i = 0; i < r->n_stop && i < 4; i++)
            json_array_append_new(stop, req_js(r->stop[i]));
        req_set(root, "stop", stop);
    }
    if (r->n > 0) req_set(root, "n", json_integer(r->n));
    switch (r->rf.kind) {
    case IR_RF_UNSET:
        break;
    case IR_RF_TEXT:
        req_set(root, "response_format", json_pack("{s:s}", "type", "text"));
        break;
    case IR_RF_JSON_OBJECT:
        req_set(root, "response_format", json_pack("{s:s}", "type", "json_object"));
        break;
    case IR_RF_JSON_SCHEMA: {
        json_t *js = json_object();
        req_set(js, "name", req_js(r->rf.name.n ? r->rf.name : SLICE_LIT("structured_output")));
        json_t *schema = req_jparse(r->rf.schema_json);
        req_set(js, "schema", schema ? schema : json_object());
        if (r->rf.strict >= 0) req_set(js, "strict", json_boolean(r->rf.strict));
        req_set(root, "response_format",
                json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
        break;
    }
    }
    enum ir_effort eff = req_openai_effort(r);
    if (eff != IR_EFFORT_UNSET)
        req_set(root, "reasoning_effort", json_string(req_effort_name(eff)));
    e->cv->thinking_sent = eff != IR_EFFORT_UNSET && eff != IR_EFFORT_NONE;
    if (r->verbosity.n) req_set(root, "verbosity", req_js(r->verbosity));
    if (r->user_id.n) req_set(root, "user", req_js(r->user_id));
    if (r->metadata_json.n) req_set(root, "metadata", req_jparse(r->metadata_json));
    if (r->prompt_cache_key.n) req_set(root, "prompt_cache_key", req_js(r->prompt_cache_key));
    if (r->stream) {
        req_set(root, "stream", json_true());
        /* always asked: B and C clients need the usage at the end (§3.10) */
        req_set(root, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return req_finish(e, root, out);
}
