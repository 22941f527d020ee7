/* request_messages.c — Claude Messages (format B) requests: the client body → IR decoder
 * (§3.2.1 "From B") and the IR → upstream body encoder (§3.2.2) with the Claude
 * conversation repair pipeline (§3.2.3): empty text dropped, same-role turns merged, tool
 * calls and results paired (orphans become text, missing results are synthesised), a
 * leading user turn guaranteed, thinking blocks made consistent with the thinking setting,
 * at most 4 cache breakpoints. Also the Claude-specific request rules: max_tokens always
 * present, thinking budget or adaptive effort, sampling limits, the JSON-mode tool trick.
 *
 * The upstream messages are built as a jansson array and repaired in place before the
 * body is written. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "protocol/request_internal.h"

/* ================= decode ================= */

static int dec_cache(struct req_dec *d, json_t *b, struct ir_part *p)
{
    json_t *cc = json_object_get(b, "cache_control");
    if (!json_is_object(cc)) return 0;
    p->cache_bp = true;
    json_t *ttl = json_object_get(cc, "ttl");
    if (json_is_string(ttl)) p->cache_ttl = req_jstr(d->pool, ttl);
    return 0;
}

static int dec_source_image(struct req_dec *d, json_t *b, struct ir_part *p, const char *path)
{
    json_t *src = NULL;
    if (req_get_obj(d, b, "source", &src, path) < 0) return -1;
    if (!src) return req_fail(d->err, "%s.source is required", path);
    struct slice type = SLICE_NULL, mt = SLICE_NULL, data = SLICE_NULL;
    const char *sp = req_path(d->pool, path, "source", -1);
    if (req_get_str(d, src, "type", &type, sp) < 0) return -1;
    if (slice_eq_str(type, "base64")) {
        if (req_get_str(d, src, "media_type", &mt, sp) < 0 ||
            req_get_str(d, src, "data", &data, sp) < 0)
            return -1;
        return req_image_base64(d, mt, data, p, path);
    }
    if (slice_eq_str(type, "url")) {
        if (req_get_str(d, src, "url", &data, sp) < 0) return -1;
        return req_image_url(d, data, p, path);
    }
    if (slice_eq_str(type, "file")) {
        if (req_get_str(d, src, "file_id", &data, sp) < 0) return -1;
        p->kind = IR_PART_IMAGE;
        p->media.src = IR_SRC_FILE_ID;
        p->media.data_or_url = data;
        return 0;
    }
    return req_fail(d->err, "%s.source.type must be base64, url or file", path);
}

static int dec_document(struct req_dec *d, json_t *b, struct ir_part *p, const char *path)
{
    json_t *src = NULL;
    if (req_get_obj(d, b, "source", &src, path) < 0) return -1;
    if (!src) return req_fail(d->err, "%s.source is required", path);
    struct slice type = SLICE_NULL, mt = SLICE_NULL, data = SLICE_NULL;
    const char *sp = req_path(d->pool, path, "source", -1);
    if (req_get_str(d, src, "type", &type, sp) < 0 ||
        req_get_str(d, src, "media_type", &mt, sp) < 0)
        return -1;
    json_t *title = json_object_get(b, "title");
    if (json_is_string(title)) p->media.filename = req_jstr(d->pool, title);
    if (slice_eq_str(type, "text")) {
        if (req_get_str(d, src, "data", &data, sp) < 0) return -1;
        p->kind = IR_PART_TEXT;
        p->text = data;
        return 0;
    }
    if (slice_eq_str(type, "base64")) {
        if (req_get_str(d, src, "data", &data, sp) < 0) return -1;
        p->kind = IR_PART_FILE;
        p->media.src = IR_SRC_BASE64;
        p->media.media_type = mt.n ? mt : SLICE_LIT("application/pdf");
        p->media.data_or_url = data;
        return 0;
    }
    if (slice_eq_str(type, "url") || slice_eq_str(type, "file")) {
        if (req_get_str(d, src, slice_eq_str(type, "url") ? "url" : "file_id", &data, sp) < 0)
            return -1;
        p->kind = IR_PART_FILE;
        p->media.src = slice_eq_str(type, "url") ? IR_SRC_URL : IR_SRC_FILE_ID;
        p->media.data_or_url = data;
        return 0;
    }
    if (slice_eq_str(type, "content")) { /* text blocks */
        json_t *c = json_object_get(src, "content");
        p->kind = IR_PART_TEXT;
        if (json_is_string(c))
            p->text = req_jstr(d->pool, c);
        else if (json_is_array(c) && json_array_size(c))
            p->text = req_jstr(d->pool, json_object_get(json_array_get(c, 0), "text"));
        return 0;
    }
    return req_fail(d->err, "%s.source.type '%.*s' is not supported", path,
                    (int)(type.n > 30 ? 30 : type.n), type.p ? type.p : "");
}

/* A text of a search_result block: its text contents joined. */
static struct slice search_text(struct req_dec *d, json_t *b)
{
    json_t *c = json_object_get(b, "content");
    struct buf t = BUF_INIT;
    size_t i;
    json_t *x;
    json_array_foreach(c, i, x)
    {
        json_t *tx = json_object_get(x, "text");
        if (!json_is_string(tx)) continue;
        if (t.n) buf_append_str(&t, "\n");
        buf_append(&t, json_string_value(tx), json_string_length(tx));
    }
    struct slice s = req_copy(d->pool, t.p, t.n);
    buf_free(&t);
    return s;
}

/* One content block of a user turn or of a tool_result's content. Returns 1 when it was
 * dropped (nothing added). */
static int dec_user_block(struct req_dec *d, json_t *b, struct ir_part **parts, size_t *n,
                          size_t *cap, const char *path)
{
    if (!json_is_object(b)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, b, "type", &type, path) < 0) return -1;
    if (slice_eq_str(type, "tool_reference") || slice_eq_str(type, "container_upload")) return 1;
    struct ir_part *p = req_add_part(d->pool, parts, n, cap);
    if (!p) return req_oom(d->err);
    if (slice_eq_str(type, "text")) {
        int rc = req_get_str(d, b, "text", &p->text, path);
        if (rc < 0) return -1;
        if (rc == 0) return req_fail(d->err, "%s.text is required", path);
        p->kind = IR_PART_TEXT;
    } else if (slice_eq_str(type, "image")) {
        if (dec_source_image(d, b, p, path) < 0) return -1;
    } else if (slice_eq_str(type, "document")) {
        if (dec_document(d, b, p, path) < 0) return -1;
    } else if (slice_eq_str(type, "search_result")) {
        p->kind = IR_PART_TEXT;
        p->text = search_text(d, b);
    } else if (!type.p) {
        return req_fail(d->err, "%s.type is required", path);
    } else {
        return req_fail(d->err, "%s: unknown content type '%.*s'", path,
                        (int)(type.n > 40 ? 40 : type.n), type.p);
    }
    return dec_cache(d, b, p);
}

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

static int dec_tool_result(struct req_dec *d, struct ir_request *r, json_t *b, size_t *msg_cap,
                           const char *path)
{
    struct slice id = SLICE_NULL;
    int rc = req_get_str(d, b, "tool_use_id", &id, path);
    if (rc < 0) return -1;
    if (rc == 0 || !id.n) return req_fail(d->err, "%s.tool_use_id is required", path);
    if (!calling_assistant(r))
        return req_fail(d->err,
                        "%s: tool_result for '%.*s' has no matching tool_use in the previous "
                        "assistant message",
                        path, (int)(id.n > 64 ? 64 : id.n), id.p);
    struct ir_message *msg = req_add_msg(d->pool, r, msg_cap);
    if (!msg) return req_oom(d->err);
    msg->role = IR_ROLE_TOOL;
    size_t cap = 0, rcap = 0;
    struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
    if (!p) return req_oom(d->err);
    p->kind = IR_PART_TOOL_RESULT;
    p->result.tool_id = id;
    bool err = false;
    if (req_get_bool(d, b, "is_error", &err, path) < 0) return -1;
    p->result.is_error = err;
    dec_cache(d, b, p);
    json_t *c = json_object_get(b, "content");
    if (json_is_string(c)) {
        struct ir_part *t = req_add_part(d->pool, &p->result.parts, &p->result.n_parts, &rcap);
        if (!t) return req_oom(d->err);
        t->kind = IR_PART_TEXT;
        t->text = req_jstr(d->pool, c);
    } else if (json_is_array(c)) {
        size_t i;
        json_t *x;
        json_array_foreach(c, i, x)
        {
            const char *pp = req_path(d->pool, path, "content", (long)i);
            if (dec_user_block(d, x, &p->result.parts, &p->result.n_parts, &rcap, pp) < 0)
                return -1;
        }
    } else if (c && !json_is_null(c)) {
        return req_fail(d->err, "%s.content must be a string or an array of blocks", path);
    }
    return 0;
}

static bool is_server_block(struct slice type)
{
    return slice_eq_str(type, "server_tool_use") || slice_eq_str(type, "mcp_tool_use") ||
           slice_eq_str(type, "mcp_tool_result") || slice_eq_str(type, "container_upload") ||
           (type.n > 12 && memcmp(type.p + type.n - 12, "_tool_result", 12) == 0);
}

static int dec_assistant_block(struct req_dec *d, json_t *b, struct ir_message *msg, size_t *cap,
                               const char *path)
{
    if (!json_is_object(b)) return req_fail(d->err, "%s must be an object", path);
    struct slice type = SLICE_NULL;
    if (req_get_str(d, b, "type", &type, path) < 0) return -1;
    if (is_server_block(type)) return 0; /* server tools: same-format only */
    struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, cap);
    if (!p) return req_oom(d->err);
    if (slice_eq_str(type, "text")) {
        p->kind = IR_PART_TEXT;
        if (req_get_str(d, b, "text", &p->text, path) < 0) return -1;
    } else if (slice_eq_str(type, "thinking")) {
        struct slice sig = SLICE_NULL;
        p->kind = IR_PART_THINKING;
        if (req_get_str(d, b, "thinking", &p->text, path) < 0 ||
            req_get_str(d, b, "signature", &sig, path) < 0)
            return -1;
        req_sig_parse(d->pool, p, sig, IR_VENDOR_ANTHROPIC);
    } else if (slice_eq_str(type, "redacted_thinking")) {
        struct slice data = SLICE_NULL;
        if (req_get_str(d, b, "data", &data, path) < 0) return -1;
        p->kind = IR_PART_REDACTED_THINKING;
        p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
        p->think.redacted_data = data;
    } else if (slice_eq_str(type, "tool_use")) {
        p->kind = IR_PART_TOOL_CALL;
        if (req_get_str(d, b, "id", &p->call.id, path) < 0 ||
            req_get_str(d, b, "name", &p->call.name, path) < 0)
            return -1;
        if (!p->call.id.n || !p->call.name.n)
            return req_fail(d->err, "%s: tool_use needs an id and a name", path);
        json_t *in = json_object_get(b, "input");
        p->call.args = in && !json_is_null(in) ? req_jdump(d->pool, in) : SLICE_LIT("{}");
    } else if (!type.p) {
        return req_fail(d->err, "%s.type is required", path);
    } else {
        return req_fail(d->err, "%s: unknown content type '%.*s' in an assistant message", path,
                        (int)(type.n > 40 ? 40 : type.n), type.p);
    }
    return dec_cache(d, b, p);
}

static int dec_system_value(struct req_dec *d, struct ir_request *r, json_t *sys, size_t *cap,
                            const char *path)
{
    if (!sys || json_is_null(sys)) return 0;
    if (json_is_string(sys)) {
        struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, sys);
        return 0;
    }
    if (!json_is_array(sys))
        return req_fail(d->err, "'%s' must be a string or an array of text blocks", path);
    size_t i;
    json_t *b;
    json_array_foreach(sys, i, b)
    {
        const char *pp = req_path(d->pool, path, NULL, (long)i);
        json_t *t = json_object_get(b, "text");
        if (!json_is_object(b) || !json_is_string(t))
            return req_fail(d->err, "%s must be a text block", pp);
        struct ir_part *p = req_add_part(d->pool, &r->system, &r->n_system, cap);
        if (!p) return req_oom(d->err);
        p->kind = IR_PART_TEXT;
        p->text = req_jstr(d->pool, t);
        dec_cache(d, b, p);
    }
    return 0;
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
        if (type.p && !slice_eq_str(type, "custom")) continue; /* server tools: B→B only */
        struct ir_tool *a = req_grow(d->pool, r->tools, r->n_tools, &cap, sizeof *a);
        if (!a) return req_oom(d->err);
        r->tools = a;
        struct ir_tool *tool = &a[r->n_tools];
        memset(tool, 0, sizeof *tool);
        tool->strict = -1;
        if (req_get_str(d, t, "name", &tool->name, path) < 0 ||
            req_get_str(d, t, "description", &tool->description, path) < 0)
            return -1;
        if (!tool->name.n) return req_fail(d->err, "%s: the tool needs a name", path);
        json_t *schema = json_object_get(t, "input_schema");
        if (!schema || json_is_null(schema))
            return req_fail(d->err, "%s.input_schema is required", path);
        if (req_tool_schema(d, schema, &tool->schema_json,
                            req_path(d->pool, path, "input_schema", -1)) < 0)
            return -1;
        bool strict;
        int rc = req_get_bool(d, t, "strict", &strict, path);
        if (rc < 0) return -1;
        if (rc) tool->strict = strict;
        tool->cache_bp = json_is_object(json_object_get(t, "cache_control"));
        /* defer_loading, input_examples, eager_input_streaming, allowed_callers: dropped */
        r->n_tools++;
    }
    return 0;
}

static int dec_tool_choice(struct req_dec *d, json_t *root, struct ir_request *r)
{
    json_t *tc = NULL;
    if (req_get_obj(d, root, "tool_choice", &tc, "") < 0) return -1;
    if (!tc) return 0;
    struct slice type = SLICE_NULL;
    if (req_get_str(d, tc, "type", &type, "tool_choice") < 0) return -1;
    if (slice_eq_str(type, "auto"))
        r->tool_choice.mode = IR_TC_AUTO;
    else if (slice_eq_str(type, "any"))
        r->tool_choice.mode = IR_TC_ANY;
    else if (slice_eq_str(type, "none"))
        r->tool_choice.mode = IR_TC_NONE;
    else if (slice_eq_str(type, "tool")) {
        r->tool_choice.mode = IR_TC_NAMED;
        int rc = req_get_str(d, tc, "name", &r->tool_choice.name, "tool_choice");
        if (rc < 0) return -1;
        if (rc == 0) return req_fail(d->err, "tool_choice.name is required for type \"tool\"");
    } else {
        return req_fail(d->err, "tool_choice.type must be auto, any, none or tool");
    }
    bool dis = false;
    if (req_get_bool(d, tc, "disable_parallel_tool_use", &dis, "tool_choice") < 0) return -1;
    if (dis) r->parallel_tool_calls = 0;
    return 0;
}

static int dec_thinking(struct req_dec *d, json_t *root, struct ir_request *r)
{
    json_t *th = NULL, *oc = NULL;
    if (req_get_obj(d, root, "thinking", &th, "") < 0 ||
        req_get_obj(d, root, "output_config", &oc, "") < 0)
        return -1;
    struct slice effort = SLICE_NULL;
    if (oc) {
        if (req_get_str(d, oc, "effort", &effort, "output_config") < 0) return -1;
        if (effort.p) {
            r->reasoning.effort = req_effort_parse(effort);
            if (r->reasoning.effort == IR_EFFORT_UNSET || r->reasoning.effort == IR_EFFORT_NONE)
                return req_fail(d->err,
                                "output_config.effort must be low, medium, high, xhigh or max");
        }
        json_t *fmt = NULL;
        if (req_get_obj(d, oc, "format", &fmt, "output_config") < 0) return -1;
        if (fmt) {
            json_t *schema = json_object_get(fmt, "schema");
            r->rf.kind = IR_RF_JSON_SCHEMA;
            r->rf.name = SLICE_LIT("structured_output");
            r->rf.strict = 0; /* strict would need a rewritten schema upstream (§3.7) */
            if (json_is_object(schema)) r->rf.schema_json = req_jdump(d->pool, schema);
        }
    }
    json_t *of = json_object_get(root, "output_format"); /* legacy top-level form */
    if (json_is_object(of) && r->rf.kind == IR_RF_UNSET) {
        json_t *schema = json_object_get(of, "schema");
        r->rf.kind = IR_RF_JSON_SCHEMA;
        r->rf.name = SLICE_LIT("structured_output");
        r->rf.strict = 0;
        if (json_is_object(schema)) r->rf.schema_json = req_jdump(d->pool, schema);
    }
    if (!th) return 0;
    struct slice type = SLICE_NULL;
    if (req_get_str(d, th, "type", &type, "thinking") < 0) return -1;
    if (slice_eq_str(type, "enabled")) {
        long b = -1;
        int rc = req_get_count(d, th, "budget_tokens", &b, "thinking");
        if (rc < 0) return -1;
        if (rc == 0)
            return req_fail(d->err, "thinking.budget_tokens is required when thinking is enabled");
        r->reasoning.enabled = 1;
        r->reasoning.budget = b;
    } else if (slice_eq_str(type, "adaptive")) {
        r->reasoning.enabled = 1;
        r->reasoning.adaptive = true;
        if (r->reasoning.effort == IR_EFFORT_UNSET) r->reasoning.effort = IR_EFFORT_MEDIUM;
    } else if (slice_eq_str(type, "disabled")) {
        r->reasoning.enabled = 0;
    } else {
        return req_fail(d->err, "thinking.type must be enabled, adaptive or disabled");
    }
    return 0;
}

int req_decode_messages(struct req_dec *d, json_t *root, struct ir_request *r)
{
    size_t sys_cap = 0, msg_cap = 0;
    if (req_get_str(d, root, "model", &r->model, "") < 0) return -1;
    if (dec_system_value(d, r, json_object_get(root, "system"), &sys_cap, "system") < 0) return -1;
    json_t *msgs = NULL;
    if (req_get_arr(d, root, "messages", &msgs, "") < 0) return -1;
    if (!msgs || json_array_size(msgs) == 0)
        return req_fail(d->err, "'messages' must be a non-empty array");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *path = req_path(d->pool, "", "messages", (long)i);
        if (!json_is_object(m)) return req_fail(d->err, "%s must be an object", path);
        struct slice role = SLICE_NULL;
        if (req_get_str(d, m, "role", &role, path) < 0) return -1;
        json_t *c = json_object_get(m, "content");
        if (!json_is_string(c) && !json_is_array(c))
            return req_fail(d->err, "%s.content must be a string or an array of content blocks",
                            path);
        if (json_is_array(c) && json_array_size(c) == 0)
            return req_fail(d->err, "%s.content must not be an empty array", path);
        if (slice_eq_str(role, "system")) { /* mid-conversation system: hoisted */
            if (dec_system_value(d, r, c, &sys_cap, req_path(d->pool, path, "content", -1)) < 0)
                return -1;
            continue;
        }
        bool assistant = slice_eq_str(role, "assistant");
        if (!assistant && !slice_eq_str(role, "user")) {
            if (!role.p) return req_fail(d->err, "%s.role is required", path);
            return req_fail(d->err, "%s: unknown role '%.*s' (use user or assistant)", path,
                            (int)(role.n > 30 ? 30 : role.n), role.p);
        }
        if (json_is_string(c)) {
            struct ir_message *msg = req_add_msg(d->pool, r, &msg_cap);
            if (!msg) return req_oom(d->err);
            msg->role = assistant ? IR_ROLE_ASSISTANT : IR_ROLE_USER;
            size_t cap = 0;
            struct ir_part *p = req_add_part(d->pool, &msg->parts, &msg->n_parts, &cap);
            if (!p) return req_oom(d->err);
            p->kind = IR_PART_TEXT;
            p->text = req_jstr(d->pool, c);
            continue;
        }
        if (assistant) {
            struct ir_message *msg = req_add_msg(d->pool, r, &msg_cap);
            if (!msg) return req_oom(d->err);
            msg->role = IR_ROLE_ASSISTANT;
            size_t cap = 0, k;
            json_t *b;
            json_array_foreach(c, k, b)
            {
                const char *pp = req_path(d->pool, path, "content", (long)k);
                if (dec_assistant_block(d, b, msg, &cap, pp) < 0) return -1;
            }
            continue;
        }
        /* user: tool results first (as tool messages), then the other blocks */
        size_t k;
        json_t *b;
        json_array_foreach(c, k, b)
        {
            json_t *type = json_object_get(b, "type");
            if (!json_is_string(type) || strcmp(json_string_value(type), "tool_result") != 0)
                continue;
            if (dec_tool_result(d, r, b, &msg_cap, req_path(d->pool, path, "content", (long)k)) < 0)
                return -1;
        }
        struct ir_message tmp = {.role = IR_ROLE_USER};
        size_t cap = 0, others = 0;
        json_array_foreach(c, k, b)
        {
            json_t *type = json_object_get(b, "type");
            if (json_is_string(type) && strcmp(json_string_value(type), "tool_result") == 0)
                continue;
            others++;
            if (dec_user_block(d, b, &tmp.parts, &tmp.n_parts, &cap,
                               req_path(d->pool, path, "content", (long)k)) < 0)
                return -1;
        }
        if (others) {
            struct ir_message *msg = req_add_msg(d->pool, r, &msg_cap);
            if (!msg) return req_oom(d->err);
            *msg = tmp;
        }
    }
    if (dec_tools(d, root, r) < 0 || dec_tool_choice(d, root, r) < 0 ||
        dec_thinking(d, root, r) < 0)
        return -1;
    if (req_get_count(d, root, "max_tokens", &r->max_output_tokens, "") < 0 ||
        req_get_num(d, root, "temperature", &r->temperature, "") < 0 ||
        req_get_num(d, root, "top_p", &r->top_p, "") < 0 ||
        req_get_count(d, root, "top_k", &r->top_k, "") < 0 ||
        req_get_bool(d, root, "stream", &r->stream, "") < 0)
        return -1;
    json_t *stop = NULL;
    if (req_get_arr(d, root, "stop_sequences", &stop, "") < 0) return -1;
    if (stop && json_array_size(stop)) {
        r->stop = pool_calloc(d->pool, json_array_size(stop) * sizeof *r->stop);
        if (!r->stop) return req_oom(d->err);
        size_t k;
        json_t *s;
        json_array_foreach(stop, k, s)
        {
            if (!json_is_string(s))
                return req_fail(d->err, "'stop_sequences' must be an array of strings");
            r->stop[r->n_stop++] = req_jstr(d->pool, s);
        }
    }
    json_t *md = NULL;
    if (req_get_obj(d, root, "metadata", &md, "") < 0) return -1;
    if (md && req_get_str(d, md, "user_id", &r->user_id, "metadata") < 0) return -1;
    r->include_usage = true; /* B clients always get usage */
    /* context_management, container, mcp_servers, service_tier, top-level cache_control,
     * thinking.display: dropped (they only mean something to a Claude upstream, which
     * gets the client's body untouched). */
    return 0;
}

/* ================= encode ================= */

static void sanitize_id(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) s[i] = '_';
    }
}

static json_t *tool_id(struct slice id)
{
    char small[128];
    char *s = id.n < sizeof small ? small : malloc(id.n + 1);
    if (!s) return NULL;
    memcpy(s, id.p, id.n);
    s[id.n] = 0;
    sanitize_id(s, id.n);
    json_t *v = json_stringn(s, id.n);
    if (s != small) free(s);
    return v;
}

static json_t *cache_ctl(const struct ir_part *p)
{
    json_t *cc = json_pack("{s:s}", "type", "ephemeral");
    if (p->cache_ttl.n) req_set(cc, "ttl", req_js(p->cache_ttl));
    return cc;
}

static json_t *text_block(struct slice text, const struct ir_part *cache_from)
{
    json_t *b = json_pack("{s:s,s:o}", "type", "text", "text", req_js(text));
    if (cache_from && cache_from->cache_bp) req_set(b, "cache_control", cache_ctl(cache_from));
    return b;
}

static bool is_texty(struct slice mt)
{
    return slice_starts_with(mt, "text/") || slice_eq_str(mt, "application/json");
}

/* An image or document block; NULL with *err set when not representable. */
static json_t *media_block(struct req_enc *e, const struct ir_part *p)
{
    json_t *src = NULL;
    bool image = p->kind == IR_PART_IMAGE;
    switch (p->media.src) {
    case IR_SRC_BASE64:
        if (!image && is_texty(p->media.media_type)) { /* text files become text (§2.6) */
            size_t max = p->media.data_or_url.n;
            unsigned char *bin = pool_alloc(e->pool, max + 1);
            size_t len = 0;
            if (!bin ||
                sodium_base642bin(bin, max, p->media.data_or_url.p, p->media.data_or_url.n, " \r\n",
                                  &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
                req_fail(e->err, "a text file's data is not valid base64");
                return NULL;
            }
            json_t *t = json_stringn((const char *)bin, len);
            if (!t) {
                req_fail(e->err, "a text file is not valid UTF-8 text");
                return NULL;
            }
            json_t *b = json_pack("{s:s,s:o}", "type", "text", "text", t);
            if (p->cache_bp) req_set(b, "cache_control", cache_ctl(p));
            return b;
        }
        if (!image && !slice_eq_str(p->media.media_type, "application/pdf")) {
            req_fail(e->err,
                     "file type '%.*s' cannot be sent to a Claude model (PDF and text files only)",
                     (int)(p->media.media_type.n > 60 ? 60 : p->media.media_type.n),
                     p->media.media_type.p ? p->media.media_type.p : "");
            return NULL;
        }
        src = json_pack("{s:s,s:o,s:o}", "type", "base64", "media_type",
                        req_js(p->media.media_type), "data", req_js(p->media.data_or_url));
        break;
    case IR_SRC_URL:
        src = json_pack("{s:s,s:o}", "type", "url", "url", req_js(p->media.data_or_url));
        break;
    case IR_SRC_FILE_ID:
        if (e->cv->client != API_MESSAGES) {
            req_fail(e->err, "a file_id refers to a file stored at the client's API and cannot be "
                             "sent to a Claude model; send the file's data inline");
            return NULL;
        }
        src = json_pack("{s:s,s:o}", "type", "file", "file_id", req_js(p->media.data_or_url));
        break;
    }
    json_t *b = json_pack("{s:s,s:o}", "type", image ? "image" : "document", "source", src);
    if (!image && p->media.filename.n) req_set(b, "title", req_js(p->media.filename));
    if (p->cache_bp) req_set(b, "cache_control", cache_ctl(p));
    return b;
}

static int user_blocks(struct req_enc *e, json_t *content, const struct ir_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ir_part *p = &parts[i];
        json_t *b = NULL;
        if (p->kind == IR_PART_TEXT || p->kind == IR_PART_REFUSAL)
            b = text_block(p->text, p);
        else if (p->kind == IR_PART_IMAGE || p->kind == IR_PART_FILE) {
            b = media_block(e, p);
            if (!b) return -1;
        }
        if (b) json_array_append_new(content, b);
    }
    return 0;
}

static json_t *thinking_block(const struct req_enc *e, const struct ir_part *p)
{
    if (p->kind == IR_PART_REDACTED_THINKING) {
        if (p->think.sig_vendor != IR_VENDOR_ANTHROPIC || !p->think.redacted_data.n) return NULL;
        return json_pack("{s:s,s:o}", "type", "redacted_thinking", "data",
                         req_js(p->think.redacted_data));
    }
    if (p->think.sig_vendor == IR_VENDOR_ANTHROPIC && p->think.signature.n)
        return json_pack("{s:s,s:o,s:o}", "type", "thinking", "thinking", req_js(p->text),
                         "signature", req_js(p->think.signature));
    if (e->prof->accepts_unsigned_thinking && p->think.sig_vendor == IR_VENDOR_NONE && p->text.n)
        return json_pack("{s:s,s:o}", "type", "thinking", "thinking", req_js(p->text));
    return NULL; /* foreign or unsigned reasoning cannot be replayed to Claude (§2.7) */
}

static json_t *msg_obj(const char *role, json_t *content)
{
    return json_pack("{s:s,s:o}", "role", role, "content", content);
}

static bool is_role(json_t *m, const char *role)
{
    return strcmp(json_string_value(json_object_get(m, "role")), role) == 0;
}

static const char *block_type(json_t *b)
{
    const char *t = json_string_value(json_object_get(b, "type"));
    return t ? t : "";
}

/* Builds the messages of §3.2.2 (before repair). */
static json_t *build_messages(struct req_enc *e)
{
    const struct ir_request *r = e->req;
    json_t *msgs = json_array();
    for (size_t i = 0; i < r->n_msgs; i++) {
        const struct ir_message *m = &r->msgs[i];
        json_t *content = json_array();
        if (m->role == IR_ROLE_ASSISTANT) {
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind == IR_PART_THINKING || p->kind == IR_PART_REDACTED_THINKING) {
                    json_t *b = thinking_block(e, p);
                    if (b) json_array_append_new(content, b);
                }
            }
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind == IR_PART_TEXT || p->kind == IR_PART_REFUSAL)
                    json_array_append_new(content, text_block(p->text, p));
            }
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_TOOL_CALL) continue;
                json_t *input = p->call.custom
                                    ? json_pack("{s:o}", CONV_CUSTOM_TOOL_ARG, req_js(p->call.args))
                                    : req_args_object(p->call.args);
                json_t *b =
                    json_pack("{s:s,s:o,s:o,s:o}", "type", "tool_use", "id", tool_id(p->call.id),
                              "name", req_js(p->call.name), "input", input);
                if (p->cache_bp) req_set(b, "cache_control", cache_ctl(p));
                json_array_append_new(content, b);
            }
            json_array_append_new(msgs, msg_obj("assistant", content));
            continue;
        }
        if (m->role == IR_ROLE_TOOL) {
            for (size_t k = 0; k < m->n_parts; k++) {
                const struct ir_part *p = &m->parts[k];
                if (p->kind != IR_PART_TOOL_RESULT) continue;
                json_t *b = json_pack("{s:s,s:o}", "type", "tool_result", "tool_use_id",
                                      tool_id(p->result.tool_id));
                size_t n_text = 0, n_other = 0;
                const struct ir_part *only = NULL;
                for (size_t q = 0; q < p->result.n_parts; q++) {
                    const struct ir_part *x = &p->result.parts[q];
                    if (x->kind == IR_PART_TEXT && !req_blank(x->text))
                        n_text++, only = x;
                    else if (x->kind == IR_PART_IMAGE || x->kind == IR_PART_FILE)
                        n_other++;
                }
                if (n_text == 1 && n_other == 0 && !only->cache_bp) {
                    req_set(b, "content", req_js(only->text));
                } else if (n_text + n_other) {
                    json_t *rc = json_array();
                    if (user_blocks(e, rc, p->result.parts, p->result.n_parts) < 0) {
                        json_decref(rc);
                        json_decref(b);
                        json_decref(content);
                        json_decref(msgs);
                        return NULL;
                    }
                    req_set(b, "content", rc);
                }
                if (p->result.is_error) req_set(b, "is_error", json_true());
                if (p->cache_bp) req_set(b, "cache_control", cache_ctl(p));
                json_array_append_new(content, b);
            }
            json_array_append_new(msgs, msg_obj("user", content));
            continue;
        }
        if (user_blocks(e, content, m->parts, m->n_parts) < 0) {
            json_decref(content);
            json_decref(msgs);
            return NULL;
        }
        json_array_append_new(msgs, msg_obj("user", content));
    }
    return msgs;
}

/* ---- repair pipeline (§3.2.3) ---- */

static bool starts_with_thinking(json_t *m)
{
    json_t *first = json_array_get(json_object_get(m, "content"), 0);
    const char *t = block_type(first);
    return !strcmp(t, "thinking") || !strcmp(t, "redacted_thinking");
}

static bool has_block(json_t *m, const char *type)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(m, "content"), i,
                       b) if (!strcmp(block_type(b), type)) return true;
    return false;
}

/* Step 6: may thinking stay on? (the tool loop's assistant turn must start with thinking) */
static bool thinking_consistent(json_t *msgs)
{
    size_t n = json_array_size(msgs), la = n;
    for (size_t i = n; i-- > 0;)
        if (is_role(json_array_get(msgs, i), "assistant")) {
            la = i;
            break;
        }
    if (la == n || !has_block(json_array_get(msgs, la), "tool_use")) return true;
    bool loop = false;
    for (size_t i = la + 1; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        if (!is_role(m, "user")) return true;
        if (has_block(m, "tool_result")) loop = true;
    }
    return !loop || starts_with_thinking(json_array_get(msgs, la));
}

static void strip_thinking(json_t *msgs)
{
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *c = json_object_get(m, "content");
        for (size_t k = json_array_size(c); k-- > 0;) {
            const char *t = block_type(json_array_get(c, k));
            if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking")) json_array_remove(c, k);
        }
    }
}

/* Step 1 (§2.5): blank text blocks out, also inside tool results; empty messages out. */
static void drop_empty(json_t *msgs)
{
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        json_t *c = json_object_get(json_array_get(msgs, i), "content");
        for (size_t k = json_array_size(c); k-- > 0;) {
            json_t *b = json_array_get(c, k);
            const char *t = block_type(b);
            if (!strcmp(t, "text")) {
                json_t *tx = json_object_get(b, "text");
                if (req_blank((struct slice){json_string_value(tx), json_string_length(tx)}))
                    json_array_remove(c, k);
            } else if (!strcmp(t, "tool_result")) {
                json_t *rc = json_object_get(b, "content");
                if (json_is_string(rc) &&
                    req_blank((struct slice){json_string_value(rc), json_string_length(rc)}))
                    json_object_del(b, "content");
                else if (json_is_array(rc)) {
                    for (size_t q = json_array_size(rc); q-- > 0;) {
                        json_t *x = json_array_get(rc, q);
                        json_t *tx = json_object_get(x, "text");
                        if (!strcmp(block_type(x), "text") &&
                            req_blank(
                                (struct slice){json_string_value(tx), json_string_length(tx)}))
                            json_array_remove(rc, q);
                    }
                    if (json_array_size(rc) == 0) json_object_del(b, "content");
                }
            }
        }
        if (json_array_size(c) == 0) json_array_remove(msgs, i);
    }
}

/* Stable partition: blocks of `type` last (front=false) or first (front=true). */
static void partition(json_t *c, const char *type, bool front)
{
    json_t *a = json_array(), *b = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(c, i, x)
    {
        bool match = !strcmp(block_type(x), type);
        json_array_append(match == front ? a : b, x);
    }
    json_array_clear(c);
    json_array_extend(c, a);
    json_array_extend(c, b);
    json_decref(a);
    json_decref(b);
}

/* Step 2: consecutive same-role turns merged. */
static void merge_roles(json_t *msgs)
{
    for (size_t i = 1; i < json_array_size(msgs);) {
        json_t *prev = json_array_get(msgs, i - 1), *cur = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(cur, "role"));
        if (!is_role(prev, role)) {
            i++;
            continue;
        }
        json_t *pc = json_object_get(prev, "content");
        json_array_extend(pc, json_object_get(cur, "content"));
        if (!strcmp(role, "assistant")) partition(pc, "tool_use", false);
        json_array_remove(msgs, i);
    }
}

static struct slice result_text(pool_t *pool, json_t *b)
{
    json_t *c = json_object_get(b, "content");
    if (json_is_string(c)) return (struct slice){json_string_value(c), json_string_length(c)};
    struct buf t = BUF_INIT;
    size_t i;
    json_t *x;
    json_array_foreach(c, i, x)
    {
        json_t *tx = json_object_get(x, "text");
        if (!json_is_string(tx)) continue;
        if (t.n) buf_append_str(&t, "\n");
        buf_append(&t, json_string_value(tx), json_string_length(tx));
    }
    struct slice s = req_copy(pool, t.p, t.n);
    buf_free(&t);
    return s;
}

static bool id_in(json_t *ids, const char *id)
{
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) if (!strcmp(json_string_value(x), id)) return true;
    return false;
}

/* Step 3: every tool_use answered in the next user turn, every tool_result answering the
 * assistant turn just before it; tool_result blocks first in their turn. */
static void pair_tools(struct req_enc *e, json_t *msgs)
{
    json_t *prev_ids = NULL; /* tool_use ids of the assistant turn just before, or NULL */
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        if (is_role(m, "assistant")) {
            json_decref(prev_ids);
            prev_ids = json_array();
            size_t k;
            json_t *b;
            json_array_foreach(json_object_get(m, "content"), k,
                               b) if (!strcmp(block_type(b), "tool_use"))
                json_array_append(prev_ids, json_object_get(b, "id"));
            /* a tool_use in the final message is a prefill: left as is */
            if (json_array_size(prev_ids) == 0 || i + 1 >= json_array_size(msgs)) continue;
            if (!is_role(json_array_get(msgs, i + 1), "user"))
                json_array_insert_new(msgs, i + 1, msg_obj("user", json_array()));
            json_t *next = json_object_get(json_array_get(msgs, i + 1), "content");
            /* synthesise the missing results, in call order, at the front */
            size_t pos = 0;
            json_t *id;
            json_array_foreach(prev_ids, k, id)
            {
                bool found = false;
                size_t q;
                json_t *x;
                json_array_foreach(
                    next, q, x) if (!strcmp(block_type(x), "tool_result") &&
                                    json_equal(json_object_get(x, "tool_use_id"), id)) found = true;
                if (!found)
                    json_array_insert_new(next, pos++,
                                          json_pack("{s:s,s:O,s:s,s:b}", "type", "tool_result",
                                                    "tool_use_id", id, "content",
                                                    "(no result returned)", "is_error", 1));
            }
            continue;
        }
        json_t *c = json_object_get(m, "content");
        size_t k;
        json_t *b;
        json_array_foreach(c, k, b)
        {
            if (strcmp(block_type(b), "tool_result") != 0) continue;
            const char *id = json_string_value(json_object_get(b, "tool_use_id"));
            if (prev_ids && id && id_in(prev_ids, id)) continue;
            /* orphan result → text (images dropped) */
            struct slice text = result_text(e->pool, b);
            char *t = pool_printf(e->pool, "[tool result for %s]\n%.*s", id ? id : "", (int)text.n,
                                  text.p ? text.p : "");
            json_array_set_new(c, k, json_pack("{s:s,s:s}", "type", "text", "text", t ? t : ""));
        }
        partition(c, "tool_result", true);
        json_decref(prev_ids);
        prev_ids = NULL;
    }
    json_decref(prev_ids);
}

static void fix_ends(json_t *msgs, bool have_system)
{
    if (json_array_size(msgs) && is_role(json_array_get(msgs, 0), "assistant"))
        json_array_insert_new(
            msgs, 0, msg_obj("user", json_pack("[{s:s,s:s}]", "type", "text", "text", "...")));
    if (json_array_size(msgs) == 0 && have_system)
        json_array_append_new(
            msgs, msg_obj("user", json_pack("[{s:s,s:s}]", "type", "text", "text", "...")));
}

/* Step 7: keep the last 4 cache breakpoints in document order (tools, system, messages). */
static void cache_budget(json_t *tools, json_t *system, json_t *msgs)
{
    size_t total = 0, i, k;
    json_t *x, *m, *b;
    json_array_foreach(tools, i, x) total += json_object_get(x, "cache_control") != NULL;
    json_array_foreach(system, i, x) total += json_object_get(x, "cache_control") != NULL;
    json_array_foreach(msgs, i, m) json_array_foreach(json_object_get(m, "content"), k, b) total +=
        json_object_get(b, "cache_control") != NULL;
    if (total <= 4) return;
    size_t drop = total - 4;
    json_array_foreach(tools, i, x) if (drop && json_object_get(x, "cache_control"))
        json_object_del(x, "cache_control"),
        drop--;
    json_array_foreach(system, i, x) if (drop && json_object_get(x, "cache_control"))
        json_object_del(x, "cache_control"),
        drop--;
    json_array_foreach(msgs, i, m) json_array_foreach(
        json_object_get(m, "content"), k, b) if (drop && json_object_get(b, "cache_control"))
        json_object_del(b, "cache_control"),
        drop--;
}

/* metadata.user_id must not carry an e-mail address or a phone number (§3.9). */
static bool user_id_ok(struct slice s)
{
    if (!s.n || memchr(s.p, '@', s.n)) return false;
    size_t digits = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (c != '+' && c != '-' && c != ' ' && c != '(' && c != ')')
            return true;
    }
    return digits < 7;
}

static bool space_only(struct slice s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] != ' ' && s.p[i] != '\t') return false;
    return true;
}

static json_t *tool_def(const struct ir_tool *t)
{
    json_t *o = json_object();
    req_set(o, "name", req_js(t->name));
    if (t->description.n) req_set(o, "description", req_js(t->description));
    json_t *schema;
    if (t->custom) {
        schema =
            json_pack("{s:s,s:{s:{s:s}},s:[s]}", "type", "object", "properties",
                      CONV_CUSTOM_TOOL_ARG, "type", "string", "required", CONV_CUSTOM_TOOL_ARG);
    } else {
        schema = req_jparse(t->schema_json);
        if (!schema)
            schema = json_pack("{s:s,s:{}}", "type", "object", "properties");
        else if (json_is_object(schema) && !json_object_get(schema, "type"))
            json_object_set_new(schema, "type", json_string("object"));
    }
    req_set(o, "input_schema", schema);
    if (t->cache_bp) req_set(o, "cache_control", json_pack("{s:s}", "type", "ephemeral"));
    return o;
}

static bool name_allowed(const struct ir_request *r, struct slice name)
{
    for (size_t i = 0; i < r->tool_choice.n_names; i++)
        if (slice_eq(r->tool_choice.names[i], name)) return true;
    return false;
}

int req_encode_messages(struct req_enc *e, struct slice *out)
{
    const struct ir_request *r = e->req;
    const struct ir_profile *prof = e->prof;
    if (r->n > 1)
        return req_fail(e->err, "n > 1 (several choices) is not supported by Claude models");
    json_t *root = req_root(e->pool);
    if (!root) return req_oom(e->err);
    req_set(root, "model", req_js(r->model));

    /* system */
    json_t *system = json_array();
    for (size_t i = 0; i < r->n_system; i++)
        if (r->system[i].kind == IR_PART_TEXT && !req_blank(r->system[i].text))
            json_array_append_new(system, text_block(r->system[i].text, &r->system[i]));

    json_t *msgs = build_messages(e);
    if (!msgs) {
        json_decref(system);
        return -1;
    }
    req_set(root, "messages", msgs); /* owned by root from here */

    /* tools (client tools; the JSON tool may be appended below) */
    json_t *tools = json_array();
    for (size_t i = 0; i < r->n_tools; i++) {
        if (r->tool_choice.mode == IR_TC_ALLOWED && !name_allowed(r, r->tools[i].name)) continue;
        json_array_append_new(tools, tool_def(&r->tools[i]));
    }
    bool client_tools = json_array_size(tools) > 0;
    enum ir_tool_choice tc = r->tool_choice.mode;
    if (tc == IR_TC_ALLOWED) tc = r->tool_choice.required ? IR_TC_ANY : IR_TC_AUTO;
    bool forced = client_tools && (tc == IR_TC_ANY || tc == IR_TC_NAMED);

    /* thinking decision (§3.8, §3.3.2, §3.2.3.6) */
    bool thinking =
        req_reasoning_on(r) && prof->claude_thinking != IR_CLAUDE_THINKING_NONE && !forced;
    long cap = r->max_output_tokens;
    long max_tokens = cap >= 0 ? cap : prof->default_max_tokens;
    long budget = 0;
    if (thinking && prof->claude_thinking == IR_CLAUDE_THINKING_BUDGET) {
        budget = r->reasoning.budget > 0 ? r->reasoning.budget
                                         : req_effort_budget(r->reasoning.effort == IR_EFFORT_UNSET
                                                                 ? IR_EFFORT_MEDIUM
                                                                 : r->reasoning.effort);
        if (budget < 1024) budget = 1024;
        if (cap >= 0) {
            if (cap - 1024 >= 1024) {
                if (budget > cap - 1024) budget = cap - 1024;
            } else {
                thinking = false; /* the cap leaves no room for a thinking budget */
            }
        } else if (max_tokens < budget + 1024) {
            max_tokens = budget + 1024;
        }
    }
    if (thinking && !thinking_consistent(msgs)) thinking = false;
    if (!thinking) strip_thinking(msgs);
    drop_empty(msgs);
    merge_roles(msgs);
    pair_tools(e, msgs);
    fix_ends(msgs, json_array_size(system) > 0);
    if (prof->model_max_output > 0 && max_tokens > prof->model_max_output) {
        max_tokens = prof->model_max_output;
        if (budget > 0 && budget > max_tokens - 1024) budget = max_tokens - 1024;
        if (budget > 0 && budget < 1024) thinking = false;
    }
    req_set(root, "max_tokens", json_integer(max_tokens));
    if (json_array_size(system))
        req_set(root, "system", system);
    else
        json_decref(system);
    system = json_object_get(root, "system");

    if (thinking) {
        if (prof->claude_thinking == IR_CLAUDE_THINKING_ADAPTIVE) {
            enum ir_effort eff = r->reasoning.effort;
            if (r->reasoning.budget > 0 && !r->reasoning.adaptive)
                eff = req_budget_effort(r->reasoning.budget);
            if (eff == IR_EFFORT_UNSET) eff = IR_EFFORT_MEDIUM;
            if (eff == IR_EFFORT_MINIMAL) eff = IR_EFFORT_LOW;
            if (eff == IR_EFFORT_XHIGH || eff == IR_EFFORT_MAX) eff = IR_EFFORT_HIGH;
            req_set(root, "thinking", json_pack("{s:s}", "type", "adaptive"));
            req_set(root, "output_config", json_pack("{s:s}", "effort", req_effort_name(eff)));
        } else {
            req_set(root, "thinking",
                    json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens", (json_int_t)budget));
        }
    }
    e->cv->thinking_sent = thinking;

    /* structured output (§3.7) */
    if (r->rf.kind == IR_RF_JSON_OBJECT || r->rf.kind == IR_RF_JSON_SCHEMA) {
        json_t *schema = r->rf.kind == IR_RF_JSON_SCHEMA ? req_jparse(r->rf.schema_json) : NULL;
        if (!schema)
            schema = json_pack("{s:s,s:b,s:{}}", "type", "object", "additionalProperties", 1,
                               "properties");
        /* json_object has no native Claude form: always the tool trick (§3.7 table) */
        if (prof->claude_structured_output_native && r->rf.kind == IR_RF_JSON_SCHEMA) {
            json_t *oc = json_object_get(root, "output_config");
            if (!oc) {
                oc = json_object();
                req_set(root, "output_config", oc);
            }
            req_set(oc, "format", json_pack("{s:s,s:o}", "type", "json_schema", "schema", schema));
        } else {
            json_array_append_new(
                tools, json_pack("{s:s,s:o}", "name", CONV_JSON_TOOL_NAME, "input_schema", schema));
            e->cv->json_tool_trick = true;
            if (!client_tools && !thinking) {
                tc = IR_TC_NAMED;
                e->cv->json_tool_forced = true;
            }
        }
    }

    if (json_array_size(tools)) {
        req_set(root, "tools", tools);
        json_t *choice = NULL;
        switch (tc) {
        case IR_TC_UNSET:
            break;
        case IR_TC_ALLOWED:
        case IR_TC_AUTO:
            choice = json_pack("{s:s}", "type", "auto");
            break;
        case IR_TC_NONE:
            choice = json_pack("{s:s}", "type", "none");
            break;
        case IR_TC_ANY:
            choice = json_pack("{s:s}", "type", "any");
            break;
        case IR_TC_NAMED:
            choice = json_pack("{s:s,s:o}", "type", "tool", "name",
                               e->cv->json_tool_forced ? json_string(CONV_JSON_TOOL_NAME)
                                                       : req_js(r->tool_choice.name));
            break;
        }
        if (r->parallel_tool_calls == 0 && tc != IR_TC_NONE) {
            if (!choice) choice = json_pack("{s:s}", "type", "auto");
            req_set(choice, "disable_parallel_tool_use", json_true());
        }
        if (choice) req_set(root, "tool_choice", choice);
    } else {
        json_decref(tools);
    }
    cache_budget(json_object_get(root, "tools"), system, msgs);

    /* sampling (§3.5, Addendum 2) */
    if (req_claude_sampling_allowed(prof)) {
        double t = r->temperature, tp = r->top_p;
        if (thinking) {
            if (!isnan(t) && t != 1.0) t = NAN;
            if (!isnan(tp) && tp < 0.95) tp = NAN;
        } else {
            if (!isnan(t) && t > 1.0) t = 1.0;
            if (!isnan(t) && !isnan(tp) && prof->claude_temp_top_p_exclusive) tp = NAN;
        }
        if (!isnan(t)) req_set(root, "temperature", json_real(t));
        if (!isnan(tp)) req_set(root, "top_p", json_real(tp));
        if (r->top_k >= 0 && !thinking) req_set(root, "top_k", json_integer(r->top_k));
    }
    /* Empty and space-only stop sequences are refused by Claude; a newline is a real stop
     * sequence (legacy completions use it, TV15) and is kept. */
    json_t *stop = json_array();
    for (size_t i = 0; i < r->n_stop; i++)
        if (!space_only(r->stop[i])) json_array_append_new(stop, req_js(r->stop[i]));
    if (json_array_size(stop))
        req_set(root, "stop_sequences", stop);
    else
        json_decref(stop);
    if (user_id_ok(r->user_id))
        req_set(root, "metadata", json_pack("{s:o}", "user_id", req_js(r->user_id)));
    if (r->stream) req_set(root, "stream", json_true());
    return req_finish(e, root, out);
}
