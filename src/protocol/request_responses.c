/* request_responses.c — OpenAI Responses (format C) requests: the client body → IR decoder
 * (§3.2.1 "From C", §3.11) and the IR → upstream body encoder (§3.2.5).
 *
 * Decoding folds consecutive function_call items into one assistant turn (how Responses
 * expresses parallel calls), attaches reasoning items to the assistant turn they belong
 * to, drops outputs whose call is unknown, hoists system/developer items, flattens
 * `namespace` tools, keeps `custom` tools, and drops what only a Responses upstream can use
 * (hosted tools, item ids, store, truncation …) without failing. Encoding writes
 * function_call items without `id`, `strict:false` on tools that did not say, and
 * `store:false`. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "protocol/request_internal.h"

/* ================= decode ================= */

struct cdec {
    struct req_dec *d;
    struct ir_request *r;
    size_t msg_cap, sys_cap, tool_cap;
    long open_asst;          /* index of the assistant turn function calls join, or -1 */
    struct ir_part *pending; /* reasoning waiting for its assistant turn */
    size_t n_pending, pending_cap;
};

static int content_part(struct cdec *c, json_t *part, struct ir_part **parts, size_t *n,
                        size_t *cap, bool assistant, const char *path)
{
    struct req_dec *d = c->d;
    if (!json_is_object(part)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, part, "type", &type, path) < 0) return -1;
    if (slice_eq_str(type, "input_text") || slice_eq_str(type, "output_text") ||
        slice_eq_str(type, "text") || slice_eq_str(type, "summary_text")) {
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        if (req_get_str(d, part, "text", &p->text, path) < 0) return -1;
        return 0;
    }
    if (slice_eq_str(type, "refusal") && assistant) {
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_REFUSAL;
        if (req_get_str(d, part, "refusal", &p->text, path) < 0) return -1;
        return 0;
    }
    if (slice_eq_str(type, "input_image") && !assistant) {
        struct slice url = SLICE_NULL, id = SLICE_NULL, detail = SLICE_NULL;
        if (req_get_str(d, part, "image_url", &url, path) < 0 ||
            req_get_str(d, part, "file_id", &id, path) < 0 ||
            req_get_str(d, part, "detail", &detail, path) < 0)
            return -1;
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        if (url.p) {
            if (req_image_url(d, url, p, path) < 0) return -1;
        } else if (id.p) {
            p->kind = IR_PART_IMAGE;
            p->media.src = IR_SRC_FILE_ID;
            p->media.data_or_url = id;
        } else {
            return req_fail(d->err, "%s needs image_url or file_id", path);
        }
        if (!slice_eq_str(detail, "auto")) p->media.detail = detail;
        return 0;
    }
    if (slice_eq_str(type, "input_file") && !assistant) {
        struct slice data = SLICE_NULL, id = SLICE_NULL, url = SLICE_NULL, name = SLICE_NULL;
        if (req_get_str(d, part, "file_data", &data, path) < 0 ||
            req_get_str(d, part, "file_id", &id, path) < 0 ||
            req_get_str(d, part, "file_url", &url, path) < 0 ||
            req_get_str(d, part, "filename", &name, path) < 0)
            return -1;
        struct ir_part *p = req_add_part(d->pool, parts, n, cap);
        if (!p) return req_oom(d->err);
        if (data.p) {
            if (req_file_data_url(d, data, p, path) < 0) return -1;
        } else {
            p->kind = IR_PART_FILE;
            p->media.src = id.p ? IR_SRC_FILE_ID : IR_SRC_URL;
            p->media.data_or_url = id.p ? id : url;
            if (!p->media.data_or_url.p)
                return req_fail(d->err, "%s needs file_data, file_id or file_url", path);
        }
        p->media.filename = name;
        return 0;
    }
    if (slice_eq_str(type, "input_audio")) {
        c->r->same_format_only = "audio input can only be sent to an upstream of the same API, "
                                 "and none serves this model";
        return 0;
    }
    if (!type.p) return req_fail(d->err, "%s.type is required", path);
    return req_fail(d->err, "%s: unknown content type '%.*s'", path,
                    (int)(type.n > 40 ? 40 : type.n), type.p);
}

static int content_value(struct cdec *c, json_t *content, struct ir_part **parts, size_t *n,
                         size_t *cap, bool assistant, const char *path)
{
    struct req_dec *d = c->d;
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
        if (content_part(c, part, parts, n, cap, assistant,
                         req_path(d->pool, path, "content", (long)i)) < 0)
            return -1;
    }
    return 0;
}

static struct ir_message *new_msg(struct cdec *c, enum ir_role role)
{
    struct ir_message *m = req_add_msg(c->d->pool, c->r, &c->msg_cap);
    if (m) m->role = role;
    return m;
}

/* A new assistant turn, starting with the pending reasoning. */
static struct ir_message *new_assistant(struct cdec *c, size_t *cap)
{
    struct ir_message *m = new_msg(c, IR_ROLE_ASSISTANT);
    if (!m) return NULL;
    for (size_t i = 0; i < c->n_pending; i++) {
        struct ir_part *p = req_add_part(c->d->pool, &m->parts, &m->n_parts, cap);
        if (!p) return NULL;
        *p = c->pending[i];
    }
    c->n_pending = 0;
    c->open_asst = (long)(c->r->n_msgs - 1);
    return m;
}

/* Adds a part to the open assistant turn (pending reasoning goes in front of it). */
static struct ir_part *open_part(struct cdec *c)
{
    pool_t *pool = c->d->pool;
    if (c->open_asst < 0) {
        size_t cap = 0;
        if (!new_assistant(c, &cap)) return NULL;
    }
    struct ir_message *m = &c->r->msgs[c->open_asst];
    size_t n = m->n_parts + c->n_pending + 1;
    struct ir_part *a = pool_calloc(pool, n * sizeof *a);
    if (!a) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < c->n_pending; i++) a[k++] = c->pending[i];
    for (size_t i = 0; i < m->n_parts; i++) a[k++] = m->parts[i];
    c->n_pending = 0;
    m->parts = a;
    m->n_parts = n;
    return &a[n - 1];
}

static bool call_known(const struct ir_request *r, struct slice id)
{
    for (size_t i = r->n_msgs; i-- > 0;) {
        const struct ir_message *m = &r->msgs[i];
        if (m->role != IR_ROLE_ASSISTANT) continue;
        for (size_t k = 0; k < m->n_parts; k++)
            if (m->parts[k].kind == IR_PART_TOOL_CALL && slice_eq(m->parts[k].call.id, id))
                return true;
    }
    return false;
}

static bool any_call_before(const struct ir_request *r)
{
    for (size_t i = r->n_msgs; i-- > 0;) {
        const struct ir_message *m = &r->msgs[i];
        if (m->role == IR_ROLE_TOOL) continue;
        if (m->role != IR_ROLE_ASSISTANT) return false;
        for (size_t k = 0; k < m->n_parts; k++)
            if (m->parts[k].kind == IR_PART_TOOL_CALL) return true;
        return false;
    }
    return false;
}

static int dec_tool_list(struct cdec *c, json_t *tools, const char *base, struct slice ns);

static int dec_item(struct cdec *c, json_t *it, const char *path)
{
    struct req_dec *d = c->d;
    struct ir_request *r = c->r;
    if (!json_is_object(it)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, it, "type", &type, path) < 0) return -1;
    if (slice_eq_str(type, "message") || (!type.p && json_object_get(it, "role"))) {
        struct slice role = SLICE_NULL;
        if (req_get_str(d, it, "role", &role, path) < 0) return -1;
        json_t *content = json_object_get(it, "content");
        if (slice_eq_str(role, "system") || slice_eq_str(role, "developer")) {
            struct ir_message tmp = {0};
            size_t cap = 0;
            if (content_value(c, content, &tmp.parts, &tmp.n_parts, &cap, true, path) < 0)
                return -1;
            for (size_t i = 0; i < tmp.n_parts; i++) {
                if (tmp.parts[i].kind != IR_PART_TEXT) continue;
                struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, &c->sys_cap);
                if (!p) return req_oom(d->err);
                *p = tmp.parts[i];
            }
            return 0;
        }
        if (slice_eq_str(role, "assistant")) {
            size_t cap = 0;
            struct ir_message *m = new_assistant(c, &cap);
            if (!m) return req_oom(d->err);
            return content_value(c, content, &m->parts, &m->n_parts, &cap, true, path);
        }
        if (slice_eq_str(role, "user")) {
            c->open_asst = -1;
            struct ir_message *m = new_msg(c, IR_ROLE_USER);
            if (!m) return req_oom(d->err);
            size_t cap = 0;
            return content_value(c, content, &m->parts, &m->n_parts, &cap, false, path);
        }
        if (!role.p) return req_fail(d->err, "%s.role is required", path);
        return req_fail(d->err, "%s: unknown role '%.*s'", path, (int)(role.n > 30 ? 30 : role.n),
                        role.p);
    }
    if (slice_eq_str(type, "reasoning")) {
        struct ir_part *p = req_add_part(d->pool, &c->pending, &c->n_pending, &c->pending_cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_THINKING;
        struct ir_part *sp = NULL;
        size_t ns = 0, scap = 0;
        json_t *summary = json_object_get(it, "summary");
        if (json_is_array(summary) && json_array_size(summary) &&
            content_value(c, summary, &sp, &ns, &scap, true, path) < 0)
            return -1;
        p->text = req_join_text(d->pool, sp, ns, "\n\n");
        struct slice id = SLICE_NULL, enc = SLICE_NULL;
        if (req_get_str(d, it, "id", &id, path) < 0 ||
            req_get_str(d, it, "encrypted_content", &enc, path) < 0)
            return -1;
        req_sig_parse(d->pool, p, enc, IR_VENDOR_OPENAI);
        if (p->think.sig_vendor == IR_VENDOR_OPENAI && !p->think.item_id.n) p->think.item_id = id;
        if (p->think.sig_vendor == IR_VENDOR_NONE) p->think.item_id = id;
        return 0;
    }
    if (slice_eq_str(type, "function_call") || slice_eq_str(type, "custom_tool_call")) {
        bool custom = slice_eq_str(type, "custom_tool_call");
        struct slice id = SLICE_NULL, name = SLICE_NULL, args = SLICE_NULL;
        if (req_get_str(d, it, "call_id", &id, path) < 0 ||
            req_get_str(d, it, "name", &name, path) < 0 ||
            req_get_str(d, it, custom ? "input" : "arguments", &args, path) < 0)
            return -1;
        if (!id.n) return req_fail(d->err, "%s.call_id is required", path);
        if (!name.n) return req_fail(d->err, "%s.name is required", path);
        struct ir_part *p = open_part(c);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TOOL_CALL;
        p->call.id = id;
        p->call.name = name;
        p->call.args = args;
        p->call.custom = custom;
        return 0;
    }
    if (slice_eq_str(type, "function_call_output") ||
        slice_eq_str(type, "custom_tool_call_output")) {
        struct slice id = SLICE_NULL;
        if (req_get_str(d, it, "call_id", &id, path) < 0) return -1;
        if (!id.n) return req_fail(d->err, "%s.call_id is required", path);
        if (!call_known(r, id)) {
            if (any_call_before(r)) return 0; /* stale output of an unknown call: dropped */
            return req_fail(d->err,
                            "%s: function_call_output for call_id '%.*s' has no matching "
                            "function_call before it",
                            path, (int)(id.n > 64 ? 64 : id.n), id.p);
        }
        c->open_asst = -1;
        struct ir_message *m = new_msg(c, IR_ROLE_TOOL);
        if (!m) return req_oom(d->err);
        size_t cap = 0, rcap = 0;
        struct ir_part *p = req_add_part(d->pool, &m->parts, &m->n_parts, &cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TOOL_RESULT;
        p->result.tool_id = id;
        json_t *out = json_object_get(it, "output");
        if (json_is_array(out) && json_array_size(out) == 0) return 0;
        if (out && !json_is_null(out))
            return content_value(c, out, &p->result.parts, &p->result.n_parts, &rcap, false, path);
        return 0;
    }
    if (slice_eq_str(type, "additional_tools")) {
        json_t *tools = json_object_get(it, "tools");
        if (json_is_array(tools)) return dec_tool_list(c, tools, path, SLICE_NULL);
        return 0;
    }
    if (slice_eq_str(type, "item_reference")) {
        r->same_format_only = "input items given by reference (item_reference) need a Responses "
                              "upstream, and none serves this model";
        return 0;
    }
    if (!type.p) return req_fail(d->err, "%s.type is required", path);
    /* web_search_call, local_shell_call, mcp_*, computer_call*, tool_search_*, compaction …:
     * only a Responses upstream understands them; dropped. */
    return 0;
}

static int dec_function_tool(struct cdec *c, json_t *t, const char *path, struct slice ns,
                             bool custom)
{
    struct req_dec *d = c->d;
    struct ir_request *r = c->r;
    struct ir_tool *a = req_grow(d->pool, r->tools, r->n_tools, &c->tool_cap, sizeof *a);
    if (!a) return req_oom(d->err);
    r->tools = a;
    struct ir_tool *tool = &a[r->n_tools];
    memset(tool, 0, sizeof *tool);
    tool->strict = -1;
    tool->custom = custom;
    tool->ns = ns;
    if (req_get_str(d, t, "name", &tool->name, path) < 0 ||
        req_get_str(d, t, "description", &tool->description, path) < 0)
        return -1;
    if (!tool->name.n) return req_fail(d->err, "%s: the tool needs a name", path);
    if (!custom) {
        if (req_tool_schema(d, json_object_get(t, "parameters"), &tool->schema_json,
                            req_path(d->pool, path, "parameters", -1)) < 0)
            return -1;
        bool strict;
        int rc = req_get_bool(d, t, "strict", &strict, path);
        if (rc < 0) return -1;
        if (rc) tool->strict = strict;
    }
    for (size_t i = 0; i < r->n_tools; i++) /* the same tool twice (tools + additional_tools) */
        if (slice_eq(r->tools[i].name, tool->name)) return 0;
    r->n_tools++;
    return 0;
}

static int dec_tool_list(struct cdec *c, json_t *tools, const char *base, struct slice ns)
{
    struct req_dec *d = c->d;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *path = req_path(d->pool, base, "tools", (long)i);
        if (!json_is_object(t)) return req_fail(d->err, "%s must be an object", path);
        struct slice type = SLICE_NULL;
        if (req_get_str(d, t, "type", &type, path) < 0) return -1;
        if (slice_eq_str(type, "function")) {
            if (dec_function_tool(c, t, path, ns, false) < 0) return -1;
        } else if (slice_eq_str(type, "custom")) {
            if (dec_function_tool(c, t, path, ns, true) < 0) return -1;
        } else if (slice_eq_str(type, "namespace") && !ns.p) {
            struct slice name = SLICE_NULL;
            if (req_get_str(d, t, "name", &name, path) < 0) return -1;
            json_t *inner = json_object_get(t, "tools");
            if (json_is_array(inner) &&
                dec_tool_list(c, inner, path, name.p ? name : SLICE_LIT("")) < 0)
                return -1;
        } else if (!type.p) {
            return req_fail(d->err, "%s.type is required", path);
        }
        /* tool_search, web_search*, file_search, code_interpreter, image_generation, mcp,
         * local_shell, shell, computer_use*: hosted tools a non-Responses upstream cannot
         * run; dropped. */
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
        r->tool_choice.mode = IR_TC_NAMED;
        int rc = req_get_str(d, tc, "name", &r->tool_choice.name, "tool_choice");
        if (rc < 0) return -1;
        if (rc == 0) return req_fail(d->err, "tool_choice.name is required");
        return 0;
    }
    if (slice_eq_str(type, "allowed_tools")) {
        json_t *tools = json_object_get(tc, "tools");
        if (!json_is_array(tools)) return req_fail(d->err, "tool_choice.tools must be an array");
        struct slice mode = SLICE_NULL;
        if (req_get_str(d, tc, "mode", &mode, "tool_choice") < 0) return -1;
        r->tool_choice.mode = IR_TC_ALLOWED;
        r->tool_choice.required = slice_eq_str(mode, "required");
        r->tool_choice.names =
            pool_calloc(d->pool, (json_array_size(tools) + 1) * sizeof(struct slice));
        if (!r->tool_choice.names) return req_oom(d->err);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            json_t *name = json_object_get(t, "name");
            if (json_is_string(name))
                r->tool_choice.names[r->tool_choice.n_names++] = req_jstr(d->pool, name);
        }
        return 0;
    }
    /* a hosted tool or an MCP server forced: only a Responses upstream can do that */
    r->same_format_only = "tool_choice names a hosted tool; only a Responses upstream can run it, "
                          "and none serves this model";
    return 0;
}

int req_decode_responses(struct req_dec *d, json_t *root, struct ir_request *r)
{
    struct cdec c = {.d = d, .r = r, .open_asst = -1};
    if (req_get_str(d, root, "model", &r->model, "") < 0) return -1;
    json_t *ins = json_object_get(root, "instructions");
    if (json_is_string(ins)) {
        if (json_string_length(ins)) {
            struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, &c.sys_cap);
            if (!p) return req_oom(d->err);
            p->kind = IR_PART_TEXT;
            p->text = req_jstr(d->pool, ins);
        }
    } else if (ins && !json_is_null(ins)) {
        return req_fail(d->err, "'instructions' must be a string");
    }
    json_t *input = json_object_get(root, "input");
    if (json_is_string(input)) {
        struct ir_message *m = new_msg(&c, IR_ROLE_USER);
        if (!m) return req_oom(d->err);
        size_t cap = 0;
        struct ir_part *p = req_add_part(d->pool, &m->parts, &m->n_parts, &cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, input);
    } else if (json_is_array(input)) {
        size_t i;
        json_t *it;
        json_array_foreach(input, i, it)
        {
            if (dec_item(&c, it, req_path(d->pool, "", "input", (long)i)) < 0) return -1;
        }
    } else if (input && !json_is_null(input)) {
        return req_fail(d->err, "'input' must be a string or an array of items");
    }
    struct slice prev = SLICE_NULL;
    if (req_get_str(d, root, "previous_response_id", &prev, "") < 0) return -1;
    if (prev.n || json_object_get(root, "conversation"))
        r->same_format_only =
            "previous_response_id and conversation need a Responses upstream that "
            "stores responses, and none serves this model; send the whole history "
            "in 'input' instead";
    bool background = false;
    if (req_get_bool(d, root, "background", &background, "") < 0) return -1;
    if (background)
        r->same_format_only = "background responses need a Responses upstream, and none serves "
                              "this model";
    if (r->n_msgs == 0 && !r->same_format_only)
        return req_fail(d->err, "'input' must contain at least one message");
    json_t *tools = NULL;
    if (req_get_arr(d, root, "tools", &tools, "") < 0) return -1;
    if (tools && dec_tool_list(&c, tools, "", SLICE_NULL) < 0) return -1;
    if (dec_tool_choice(d, root, r) < 0) return -1;
    bool b;
    int rc = req_get_bool(d, root, "parallel_tool_calls", &b, "");
    if (rc < 0) return -1;
    if (rc) r->parallel_tool_calls = b;
    if (req_get_count(d, root, "max_output_tokens", &r->max_output_tokens, "") < 0 ||
        req_get_num(d, root, "temperature", &r->temperature, "") < 0 ||
        req_get_num(d, root, "top_p", &r->top_p, "") < 0 ||
        req_get_count(d, root, "top_k", &r->top_k, "") < 0)
        return -1;
    json_t *reasoning = NULL;
    if (req_get_obj(d, root, "reasoning", &reasoning, "") < 0) return -1;
    if (reasoning) {
        struct slice effort = SLICE_NULL;
        if (req_get_str(d, reasoning, "effort", &effort, "reasoning") < 0 ||
            req_get_str(d, reasoning, "summary", &r->reasoning.summary, "reasoning") < 0)
            return -1;
        if (effort.p) {
            r->reasoning.effort = req_effort_parse(effort);
            if (r->reasoning.effort == IR_EFFORT_UNSET)
                return req_fail(d->err,
                                "reasoning.effort '%.*s' is not one of none, minimal, low, "
                                "medium, high, xhigh",
                                (int)(effort.n > 20 ? 20 : effort.n), effort.p);
            r->reasoning.enabled = r->reasoning.effort != IR_EFFORT_NONE;
        }
    }
    json_t *text = NULL;
    if (req_get_obj(d, root, "text", &text, "") < 0) return -1;
    if (text) {
        json_t *fmt = NULL;
        if (req_get_obj(d, text, "format", &fmt, "text") < 0 ||
            req_get_str(d, text, "verbosity", &r->verbosity, "text") < 0)
            return -1;
        if (fmt) {
            struct slice type = SLICE_NULL;
            if (req_get_str(d, fmt, "type", &type, "text.format") < 0) return -1;
            if (slice_eq_str(type, "text"))
                r->rf.kind = IR_RF_TEXT;
            else if (slice_eq_str(type, "json_object"))
                r->rf.kind = IR_RF_JSON_OBJECT;
            else if (slice_eq_str(type, "json_schema")) {
                r->rf.kind = IR_RF_JSON_SCHEMA;
                json_t *schema = NULL;
                if (req_get_str(d, fmt, "name", &r->rf.name, "text.format") < 0 ||
                    req_get_obj(d, fmt, "schema", &schema, "text.format") < 0)
                    return -1;
                if (schema) r->rf.schema_json = req_jdump(d->pool, schema);
                bool strict;
                if ((rc = req_get_bool(d, fmt, "strict", &strict, "text.format")) < 0) return -1;
                if (rc) r->rf.strict = strict;
            } else {
                return req_fail(d->err,
                                "text.format.type must be text, json_object or json_schema");
            }
        }
    }
    struct slice safety = SLICE_NULL;
    if (req_get_str(d, root, "user", &r->user_id, "") < 0 ||
        req_get_str(d, root, "safety_identifier", &safety, "") < 0)
        return -1;
    if (!r->user_id.p) r->user_id = safety;
    json_t *md = NULL;
    if (req_get_obj(d, root, "metadata", &md, "") < 0) return -1;
    if (md) r->metadata_json = req_jdump(d->pool, md);
    if (req_get_bool(d, root, "stream", &r->stream, "") < 0 ||
        req_get_bool(d, root, "store", &r->store, "") < 0 ||
        req_get_str(d, root, "prompt_cache_key", &r->prompt_cache_key, "") < 0)
        return -1;
    json_t *inc = NULL;
    if (req_get_arr(d, root, "include", &inc, "") < 0) return -1;
    size_t i;
    json_t *x;
    json_array_foreach(inc, i, x) if (json_is_string(x) &&
                                      !strcmp(json_string_value(x), "reasoning.encrypted_content"))
        r->include_encrypted_reasoning = true;
    r->include_usage = true;
    /* truncation, client_metadata, service_tier, top_logprobs, max_tool_calls,
     * prompt_cache_retention, stream_options: dropped. */
    return 0;
}

/* ================= encode ================= */

static json_t *input_part(struct req_enc *e, const struct ir_part *p)
{
    if (p->kind == IR_PART_TEXT)
        return json_pack("{s:s,s:o}", "type", "input_text", "text", req_js(p->text));
    if (p->kind == IR_PART_IMAGE) {
        json_t *o = json_pack("{s:s}", "type", "input_image");
        if (p->media.src == IR_SRC_FILE_ID)
            req_set(o, "file_id", req_js(p->media.data_or_url));
        else if (p->media.src == IR_SRC_URL)
            req_set(o, "image_url", req_js(p->media.data_or_url));
        else {
            char *url = pool_printf(e->pool, "data:%.*s;base64,%.*s", (int)p->media.media_type.n,
                                    p->media.media_type.p, (int)p->media.data_or_url.n,
                                    p->media.data_or_url.p);
            req_set(o, "image_url", json_string(url ? url : ""));
        }
        req_set(o, "detail", p->media.detail.n ? req_js(p->media.detail) : json_string("auto"));
        return o;
    }
    if (p->kind == IR_PART_FILE) {
        json_t *o = json_pack("{s:s}", "type", "input_file");
        if (p->media.src == IR_SRC_FILE_ID)
            req_set(o, "file_id", req_js(p->media.data_or_url));
        else if (p->media.src == IR_SRC_URL)
            req_set(o, "file_url", req_js(p->media.data_or_url));
        else {
            char *url = pool_printf(e->pool, "data:%.*s;base64,%.*s", (int)p->media.media_type.n,
                                    p->media.media_type.p, (int)p->media.data_or_url.n,
                                    p->media.data_or_url.p);
            req_set(o, "file_data", json_string(url ? url : ""));
        }
        if (p->media.filename.n) req_set(o, "filename", req_js(p->media.filename));
        return o;
    }
    return NULL;
}

static bool call_is_custom(const struct ir_request *r, size_t before, struct slice id)
{
    for (size_t i = before; i-- > 0;) {
        const struct ir_message *m = &r->msgs[i];
        for (size_t k = 0; k < m->n_parts; k++)
            if (m->parts[k].kind == IR_PART_TOOL_CALL && slice_eq(m->parts[k].call.id, id))
                return m->parts[k].call.custom;
    }
    return false;
}

static json_t *enc_input(struct req_enc *e)
{
    const struct ir_request *r = e->req;
    json_t *items = json_array();
    for (size_t i = 0; i < r->n_msgs; i++) {
        const struct ir_message *m = &r->msgs[i];
        if (m->role == IR_ROLE_USER) {
            json_t *content = json_array();
            for (size_t k = 0; k < m->n_parts; k++) {
                json_t *v = input_part(e, &m->parts[k]);
                if (v) json_array_append_new(content, v);
            }
            json_array_append_new(items, json_pack("{s:s,s:s,s:o}", "type", "message", "role",
                                                   "user", "content", content));
        } else if (m->role == IR_ROLE_ASSISTANT) {
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_THINKING || p->think.sig_vendor != IR_VENDOR_OPENAI ||
                    !p->think.signature.n)
                    continue;
                json_t *summary = json_array();
                if (p->text.n)
                    json_array_append_new(summary, json_pack("{s:s,s:o}", "type", "summary_text",
                                                             "text", req_js(p->text)));
                json_t *it = json_pack("{s:s,s:o,s:o}", "type", "reasoning", "summary", summary,
                                       "encrypted_content", req_js(p->think.signature));
                if (p->think.item_id.n) req_set(it, "id", req_js(p->think.item_id));
                json_array_append_new(items, it);
            }
            json_t *content = json_array();
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind == IR_PART_TEXT && p->text.n)
                    json_array_append_new(content, json_pack("{s:s,s:o}", "type", "output_text",
                                                             "text", req_js(p->text)));
                else if (p->kind == IR_PART_REFUSAL)
                    json_array_append_new(content, json_pack("{s:s,s:o}", "type", "refusal",
                                                             "refusal", req_js(p->text)));
            }
            if (json_array_size(content))
                json_array_append_new(items, json_pack("{s:s,s:s,s:o}", "type", "message", "role",
                                                       "assistant", "content", content));
            else
                json_decref(content);
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_TOOL_CALL) continue;
                struct slice name = req_tool_name(e, p->call.name);
                if (p->call.custom)
                    json_array_append_new(items,
                                          json_pack("{s:s,s:o,s:o,s:o}", "type", "custom_tool_call",
                                                    "call_id", req_js(p->call.id), "name",
                                                    req_js(name), "input", req_js(p->call.args)));
                else
                    json_array_append_new(
                        items, json_pack("{s:s,s:o,s:o,s:o}", "type", "function_call", "call_id",
                                         req_js(p->call.id), "name", req_js(name), "arguments",
                                         req_js(p->call.args.n ? p->call.args : SLICE_LIT("{}"))));
            }
        } else if (m->role == IR_ROLE_TOOL) {
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_TOOL_RESULT) continue;
                json_t *out;
                bool media = false;
                for (size_t q = 0; q < p->result.n_parts; q++)
                    if (p->result.parts[q].kind == IR_PART_IMAGE ||
                        p->result.parts[q].kind == IR_PART_FILE)
                        media = true;
                if (media) {
                    out = json_array();
                    for (size_t q = 0; q < p->result.n_parts; q++) {
                        json_t *v = input_part(e, &p->result.parts[q]);
                        if (v) json_array_append_new(out, v);
                    }
                } else {
                    struct slice text =
                        req_join_text(e->pool, p->result.parts, p->result.n_parts, "\n");
                    out = req_js(text.n ? text : SLICE_LIT("(empty)"));
                }
                bool custom = call_is_custom(r, i, p->result.tool_id);
                json_array_append_new(
                    items, json_pack("{s:s,s:o,s:o}", "type",
                                     custom ? "custom_tool_call_output" : "function_call_output",
                                     "call_id", req_js(p->result.tool_id), "output", out));
            }
        }
    }
    return items;
}

int req_encode_responses(struct req_enc *e, struct slice *out)
{
    const struct ir_request *r = e->req;
    if (r->n > 1)
        return req_fail(e->err, "n > 1 (several choices) is not supported by the Responses API");
    json_t *root = req_root(e->pool);
    if (!root) return req_oom(e->err);
    req_set(root, "model", req_js(r->model));
    if (r->n_system)
        req_set(root, "instructions",
                req_js(req_join_text(e->pool, r->system, r->n_system, "\n\n")));
    req_set(root, "input", enc_input(e));
    if (r->n_tools) {
        json_t *tools = json_array();
        for (size_t i = 0; i < r->n_tools; i++) {
            const struct ir_tool *t = &r->tools[i];
            json_t *o = json_object();
            req_set(o, "type", json_string(t->custom ? "custom" : "function"));
            req_set(o, "name", req_js(req_tool_name(e, t->name)));
            if (t->description.n) req_set(o, "description", req_js(t->description));
            if (!t->custom) {
                json_t *schema = req_jparse(t->schema_json);
                req_set(o, "parameters",
                        schema ? schema : json_pack("{s:s,s:{}}", "type", "object", "properties"));
                /* Responses defaults to strict; a tool that did not ask stays loose (§3.3.1) */
                req_set(o, "strict", json_boolean(t->strict == 1));
            }
            json_array_append_new(tools, o);
        }
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
                    json_pack("{s:s,s:o}", "type", "function", "name",
                              req_js(req_tool_name(e, r->tool_choice.name))));
            break;
        case IR_TC_ALLOWED: {
            json_t *names = json_array();
            for (size_t i = 0; i < r->tool_choice.n_names; i++)
                json_array_append_new(names,
                                      json_pack("{s:s,s:o}", "type", "function", "name",
                                                req_js(req_tool_name(e, r->tool_choice.names[i]))));
            req_set(root, "tool_choice",
                    json_pack("{s:s,s:s,s:o}", "type", "allowed_tools", "mode",
                              r->tool_choice.required ? "required" : "auto", "tools", names));
            break;
        }
        }
        if (r->parallel_tool_calls >= 0)
            req_set(root, "parallel_tool_calls", json_boolean(r->parallel_tool_calls));
    }
    if (r->max_output_tokens >= 0)
        req_set(root, "max_output_tokens",
                json_integer(r->max_output_tokens < 16 ? 16 : r->max_output_tokens));
    if (!isnan(r->temperature)) req_set(root, "temperature", json_real(r->temperature));
    if (!isnan(r->top_p)) req_set(root, "top_p", json_real(r->top_p));
    json_t *text = json_object();
    switch (r->rf.kind) {
    case IR_RF_UNSET:
        break;
    case IR_RF_TEXT:
        req_set(text, "format", json_pack("{s:s}", "type", "text"));
        break;
    case IR_RF_JSON_OBJECT:
        req_set(text, "format", json_pack("{s:s}", "type", "json_object"));
        break;
    case IR_RF_JSON_SCHEMA: {
        json_t *f = json_pack("{s:s}", "type", "json_schema");
        req_set(f, "name", req_js(r->rf.name.n ? r->rf.name : SLICE_LIT("structured_output")));
        json_t *schema = req_jparse(r->rf.schema_json);
        req_set(f, "schema", schema ? schema : json_object());
        if (r->rf.strict >= 0) req_set(f, "strict", json_boolean(r->rf.strict));
        req_set(text, "format", f);
        break;
    }
    }
    if (r->verbosity.n) req_set(text, "verbosity", req_js(r->verbosity));
    if (json_object_size(text))
        req_set(root, "text", text);
    else
        json_decref(text);
    enum ir_effort eff = req_openai_effort(r);
    bool on = eff != IR_EFFORT_UNSET && eff != IR_EFFORT_NONE;
    if (eff != IR_EFFORT_UNSET) {
        json_t *rs = json_pack("{s:s}", "effort", req_effort_name(eff));
        if (r->reasoning.summary.n)
            req_set(rs, "summary", req_js(r->reasoning.summary));
        else if (on && e->cv->client == API_MESSAGES) /* Claude clients expect thinking text */
            req_set(rs, "summary", json_string("auto"));
        req_set(root, "reasoning", rs);
    }
    if (on || r->include_encrypted_reasoning)
        req_set(root, "include", json_pack("[s]", "reasoning.encrypted_content"));
    e->cv->thinking_sent = on;
    if (r->user_id.n) req_set(root, "user", req_js(r->user_id));
    if (r->metadata_json.n) req_set(root, "metadata", req_jparse(r->metadata_json));
    if (r->prompt_cache_key.n) req_set(root, "prompt_cache_key", req_js(r->prompt_cache_key));
    req_set(root, "store", json_false());
    if (r->stream) req_set(root, "stream", json_true());
    return req_finish(e, root, out);
}
