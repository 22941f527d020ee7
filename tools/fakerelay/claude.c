/* claude.c — the Claude Messages surface of an emulated relay: POST /v1/messages and
 * POST /v1/messages/count_tokens, served when the instance speaks `messages`.
 *
 * Requests are validated like the real API where a gateway's conversion can go wrong
 * (required fields, unknown top-level fields, a "system" role inside `messages`, role
 * order, empty text blocks, tool_use/tool_result pairing, thinking signatures, the
 * temperature/top_p exclusivity, image limits), with Anthropic-shaped 400s carrying the
 * real API's wording — clients such as Claude Code recognise some errors by their text.
 *
 * The answer is deterministic: an optional thinking block (when `thinking` is on) with a
 * signature sealing its text, a text block "Hello from <name>: <last user text>", and
 * tool_use blocks when the request offers tools and asks for them (gen.c, fr_tool_plan).
 * `stream: true` sends the named-event sequence of the real API: message_start,
 * content_block_start / _delta… / _stop per block (ping after the first start,
 * input_json_delta fragments in several pieces, signature_delta), message_delta with the
 * usage, message_stop. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fakerelay.h"

#define MAX_TOOLS       128
#define IMAGE_MAX_BYTES (5u * 1024 * 1024)

/* What the validation learned about a request (bufs freed with the pool). */
struct cl_req {
    struct buf all;       /* every text of the request, for the token estimate */
    struct buf last_user; /* text of the last user turn (or of its tool results) */
    size_t cached_chars;  /* characters up to the last block with cache_control */
    bool cache_control;
    bool after_results; /* the last user turn carries tool_result blocks */
    bool thinking;      /* thinking enabled or adaptive */
    unsigned max_tokens;
    struct fr_tool tools[MAX_TOOLS];
    size_t n_tools;
    const char *forced_tool; /* tool_choice {type:"tool", name} */
    bool choice_any, choice_none, parallel;
    json_t *stop_sequences;
};

static void cl_req_free(void *p)
{
    struct cl_req *q = p;
    buf_free(&q->all);
    buf_free(&q->last_user);
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        fr_reply_error(call, 400, "invalid_request_error", NULL, __VA_ARGS__);                     \
        return false;                                                                              \
    } while (0)

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static void note_cache(struct cl_req *q, json_t *block)
{
    if (json_is_object(json_object_get(block, "cache_control"))) {
        q->cache_control = true;
        q->cached_chars = fr_utf8_len(q->all.p, q->all.n);
    }
}

/* Anthropic rejects empty and whitespace-only text blocks (§2.5 of the spec). */
static bool check_text(struct fr_call *call, json_t *text, const char *where)
{
    if (!json_is_string(text)) BAD("%s.text: Field required", where);
    if (json_string_length(text) == 0) BAD("messages: text content blocks must be non-empty");
    if (is_blank(json_string_value(text), json_string_length(text)))
        BAD("messages: text content blocks must contain non-whitespace text");
    return true;
}

static bool id_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool check_image(struct fr_call *call, json_t *b, const char *where)
{
    json_t *src = json_object_get(b, "source");
    const char *st = json_string_value(json_object_get(src, "type"));
    if (!json_is_object(src) || !st) BAD("%s.source: Field required", where);
    if (strcmp(st, "base64") == 0) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        static const char *const ok[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
        bool good = false;
        for (size_t i = 0; mt && i < 4; i++) good |= strcmp(mt, ok[i]) == 0;
        if (!good)
            BAD("%s.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                "'image/gif' or 'image/webp'",
                where);
        json_t *data = json_object_get(src, "data");
        if (!json_is_string(data) || json_string_length(data) == 0)
            BAD("%s.source.base64.data: Field required", where);
        size_t bytes = json_string_length(data) / 4 * 3;
        if (bytes > IMAGE_MAX_BYTES)
            BAD("%s.source.base64: image exceeds 5 MB maximum: %zu bytes > %u bytes", where, bytes,
                IMAGE_MAX_BYTES);
        return true;
    }
    if (strcmp(st, "url") == 0) {
        if (!json_is_string(json_object_get(src, "url")))
            BAD("%s.source.url.url: Field required", where);
        return true;
    }
    if (strcmp(st, "file") == 0) return true;
    BAD("%s.source: Input tag '%s' found using 'type' does not match any of the expected tags: "
        "'base64', 'file', 'url'",
        where, st);
}

/* Checks one content block of message `i`; appends its text to q->all. `prev_ids` are
 * the tool_use ids of the previous (assistant) message; the ids this block uses or
 * answers are recorded in `ids`. */
static bool check_block(struct fr_call *call, struct cl_req *q, size_t i, size_t j, json_t *b,
                        bool user, json_t *prev_ids, json_t *ids, struct buf *results)
{
    char where[64];
    snprintf(where, sizeof where, "messages.%zu.content.%zu", i, j);
    if (!json_is_object(b)) BAD("%s: Input should be a valid dictionary", where);
    const char *type = json_string_value(json_object_get(b, "type"));
    if (!type) BAD("%s.type: Field required", where);
    if (strcmp(type, "text") == 0) {
        if (!check_text(call, json_object_get(b, "text"), where)) return false;
        json_t *t = json_object_get(b, "text");
        buf_append(&q->all, json_string_value(t), json_string_length(t));
    } else if (strcmp(type, "image") == 0) {
        if (!check_image(call, b, where)) return false;
        buf_append_str(&q->all, "[image]");
    } else if (strcmp(type, "document") == 0 || strcmp(type, "search_result") == 0) {
        buf_append_str(&q->all, "[document]");
    } else if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0) {
        if (user) BAD("%s: `%s` blocks can only be in `assistant` messages", where, type);
        const char *id = json_string_value(json_object_get(b, "id"));
        if (!id) BAD("%s.%s.id: Field required", where, type);
        if (!id_ok(id))
            BAD("%s.%s.id: String should match pattern '^[a-zA-Z0-9_-]+$'", where, type);
        if (!json_is_string(json_object_get(b, "name")))
            BAD("%s.%s.name: Field required", where, type);
        json_t *input = json_object_get(b, "input");
        if (!json_is_object(input))
            BAD("%s.%s.input: Input should be a valid dictionary", where, type);
        if (strcmp(type, "tool_use") == 0) json_array_append_new(ids, json_string(id));
        char *s = json_dumps(input, JSON_COMPACT);
        if (s) buf_append_str(&q->all, s);
        free(s);
    } else if (strcmp(type, "tool_result") == 0) {
        if (!user) BAD("%s: `tool_result` blocks can only be in `user` messages", where);
        const char *id = json_string_value(json_object_get(b, "tool_use_id"));
        if (!id) BAD("%s.tool_result.tool_use_id: Field required", where);
        bool known = false;
        size_t k;
        json_t *v;
        json_array_foreach(prev_ids, k, v) known |= strcmp(json_string_value(v), id) == 0;
        if (!known)
            BAD("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each "
                "`tool_result` block must have a corresponding `tool_use` block in the previous "
                "message.",
                where, id);
        json_array_append_new(ids, json_string(id));
        json_t *content = json_object_get(b, "content");
        if (content && !json_is_string(content) && !json_is_array(content))
            BAD("%s.tool_result.content: Input should be a valid string", where);
        size_t c;
        json_t *part;
        json_array_foreach(content, c, part)
        {
            const char *pt = json_string_value(json_object_get(part, "type"));
            char pw[96];
            snprintf(pw, sizeof pw, "%s.content.%zu", where, c);
            if (pt && strcmp(pt, "text") == 0 &&
                !check_text(call, json_object_get(part, "text"), pw))
                return false;
            if (pt && strcmp(pt, "image") == 0 && !check_image(call, part, pw)) return false;
        }
        size_t before = results->n;
        fr_content_text(content, results);
        buf_append(&q->all, results->p + before, results->n - before);
    } else if (strcmp(type, "thinking") == 0) {
        if (user) BAD("%s: `thinking` blocks can only be in `assistant` messages", where);
        json_t *t = json_object_get(b, "thinking");
        json_t *sig = json_object_get(b, "signature");
        if (!json_is_string(t)) BAD("%s.thinking.thinking: Field required", where);
        if (!json_is_string(sig)) BAD("%s.thinking.signature: Field required", where);
        struct slice text = {json_string_value(t), json_string_length(t)};
        if (!fr_seal_ok(json_string_value(sig), json_string_length(sig), "fakerelay-sig", &text))
            BAD("%s: Invalid `signature` in `thinking` block", where);
        buf_append(&q->all, text.p, text.n);
    } else if (strcmp(type, "redacted_thinking") == 0) {
        json_t *d = json_object_get(b, "data");
        if (!json_is_string(d) ||
            !fr_seal_ok(json_string_value(d), json_string_length(d), "fakerelay-redacted", NULL))
            BAD("%s: Invalid `data` in `redacted_thinking` block", where);
    } else if (strcmp(type, "web_search_tool_result") == 0 ||
               strcmp(type, "container_upload") == 0) {
        /* accepted, not echoed */
    } else {
        BAD("%s: Input tag '%s' found using 'type' does not match any of the expected tags: "
            "'text', 'image', 'document', 'search_result', 'tool_use', 'tool_result', "
            "'thinking', 'redacted_thinking', 'server_tool_use', 'web_search_tool_result'",
            where, type);
    }
    note_cache(q, b);
    return true;
}

static bool check_messages(struct fr_call *call, struct cl_req *q, json_t *messages)
{
    size_t n = json_array_size(messages);
    json_t *prev_ids = json_array(), *ids = json_array();
    const char *prev_role = NULL;
    bool ok = false;
    struct buf results = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(messages, i);
        if (!json_is_object(m)) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu: Input should be a valid dictionary", i);
            goto out;
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu.role: Field required", i);
            goto out;
        }
        if (strcmp(role, "system") == 0) {
            /* The exact wording matters: Claude Code recognises this 400 by its text and
             * then folds the system message into the user turn and retries. */
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu.role: Unexpected role \"system\". The Messages API "
                           "accepts a top-level `system` parameter, not \"system\" as an input "
                           "message role.",
                           i);
            goto out;
        }
        bool user = strcmp(role, "user") == 0;
        if (!user && strcmp(role, "assistant") != 0) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu.role: Input should be 'user' or 'assistant'", i);
            goto out;
        }
        if (i == 0 && !user) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages: first message must use the \"user\" role");
            goto out;
        }
        if (prev_role && strcmp(prev_role, role) == 0) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages: roles must alternate between \"user\" and \"assistant\", "
                           "but found multiple \"%s\" roles in a row",
                           role);
            goto out;
        }
        json_t *content = json_object_get(m, "content");
        bool last = i + 1 == n;
        if ((json_is_string(content) && json_string_length(content) == 0 && !(last && !user)) ||
            (json_is_array(content) && json_array_size(content) == 0 && !(last && !user))) {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu: all messages must have non-empty content except for "
                           "the optional final assistant message",
                           i);
            goto out;
        }
        json_array_clear(ids);
        results.n = 0;
        bool has_results = false, has_text = false;
        struct buf text = BUF_INIT;
        if (json_is_string(content)) {
            buf_append(&q->all, json_string_value(content), json_string_length(content));
            buf_append(&text, json_string_value(content), json_string_length(content));
            has_text = true;
        } else if (json_is_array(content)) {
            size_t j;
            json_t *b;
            json_array_foreach(content, j, b)
            {
                if (!check_block(call, q, i, j, b, user, prev_ids, ids, &results)) {
                    buf_free(&text);
                    goto out;
                }
                const char *t = json_string_value(json_object_get(b, "type"));
                if (t && strcmp(t, "tool_result") == 0) has_results = true;
                if (t && strcmp(t, "text") == 0) {
                    json_t *tx = json_object_get(b, "text");
                    buf_append(&text, json_string_value(tx), json_string_length(tx));
                    has_text = true;
                }
            }
        } else {
            fr_reply_error(call, 400, "invalid_request_error", NULL,
                           "messages.%zu.content: Input should be a valid list", i);
            goto out;
        }
        /* Every tool_use of the previous assistant turn needs its result right here. */
        if (user && json_array_size(prev_ids) > 0) {
            struct buf missing = BUF_INIT;
            size_t k, k2;
            json_t *want, *got;
            json_array_foreach(prev_ids, k, want)
            {
                bool found = false;
                json_array_foreach(ids, k2, got) found |= json_equal(want, got);
                if (!found)
                    buf_printf(&missing, "%s%s", missing.n ? ", " : "", json_string_value(want));
            }
            if (missing.n) {
                fr_reply_error(call, 400, "invalid_request_error", NULL,
                               "messages.%zu: `tool_use` ids were found without `tool_result` "
                               "blocks immediately after: %.*s. Each `tool_use` block must have "
                               "a corresponding `tool_result` block in the next message.",
                               i - 1, (int)(missing.n > 400 ? 400 : missing.n), missing.p);
                buf_free(&missing);
                buf_free(&text);
                goto out;
            }
        }
        if (user) {
            q->last_user.n = 0;
            q->after_results = has_results;
            if (has_text)
                buf_append(&q->last_user, text.p, text.n);
            else
                buf_append(&q->last_user, results.p, results.n);
        }
        buf_free(&text);
        json_array_clear(prev_ids);
        if (!user) json_array_extend(prev_ids, ids);
        prev_role = role;
    }
    ok = true;
out:
    json_decref(prev_ids);
    json_decref(ids);
    buf_free(&results);
    return ok;
}

static bool number_in(json_t *v, double lo, double hi)
{
    return json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi;
}

/* Validates the request body into `q`. `count_only` for count_tokens (no max_tokens).
 * False after answering 400. */
static bool validate(struct fr_call *call, struct cl_req *q, bool count_only)
{
    json_t *body = call->body;
    struct slice ver = slice_trim(http_request_header(call->req, "anthropic-version"));
    if (!ver.p || !ver.n) BAD("anthropic-version: header is required");
    /* From API version 2026 on the sampling parameters are gone (spec addendum 2). */
    bool sampling = !(ver.n >= 4 && memcmp(ver.p, "2026", 4) >= 0);

    static const char *const known[] = {
        "model",           "messages",
        "max_tokens",      "system",
        "metadata",        "stop_sequences",
        "stream",          "tools",
        "tool_choice",     "thinking",
        "service_tier",    "container",
        "mcp_servers",     "context_management",
        "output_config",   "output_format",
        "inference_geo",   "speed",
        "cache_control",   "diagnostics",
        "user_profile_id", "workspace_id",
    };
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (sampling && (strcmp(key, "temperature") == 0 || strcmp(key, "top_p") == 0 ||
                         strcmp(key, "top_k") == 0))
            ok = true;
        if (!ok) BAD("%s: Extra inputs are not permitted", key);
    }
    if (!call->model) BAD("model: Field required");
    if (!fr_model_known(call->cfg, call->model)) {
        fr_reply_error(call, 404, "not_found_error", NULL, "model: %.200s", call->model);
        return false;
    }
    json_t *mt = json_object_get(body, "max_tokens");
    if (!count_only) {
        if (!mt) BAD("max_tokens: Field required");
        if (!json_is_integer(mt)) BAD("max_tokens: Input should be a valid integer");
        if (json_integer_value(mt) < 1)
            BAD("max_tokens: Input should be greater than or equal to 1");
        q->max_tokens =
            json_integer_value(mt) > 100000000 ? 100000000u : (unsigned)json_integer_value(mt);
    }
    json_t *messages = json_object_get(body, "messages");
    if (!messages) BAD("messages: Field required");
    if (!json_is_array(messages)) BAD("messages: Input should be a valid list");
    if (json_array_size(messages) == 0) BAD("messages: at least one message is required");

    json_t *temp = json_object_get(body, "temperature"), *top_p = json_object_get(body, "top_p");
    if (temp && !number_in(temp, 0, 1)) BAD("temperature: Input should be less than or equal to 1");
    if (top_p && !number_in(top_p, 0, 1)) BAD("top_p: Input should be less than or equal to 1");
    if (temp && top_p)
        BAD("`temperature` and `top_p` cannot both be specified for this model. Please use only "
            "one.");

    json_t *th = json_object_get(body, "thinking");
    if (th) {
        const char *tt = json_string_value(json_object_get(th, "type"));
        if (!tt) BAD("thinking.type: Field required");
        if (strcmp(tt, "enabled") == 0) {
            json_t *bt = json_object_get(th, "budget_tokens");
            if (!json_is_integer(bt)) BAD("thinking.enabled.budget_tokens: Field required");
            if (json_integer_value(bt) < 1024)
                BAD("thinking.enabled.budget_tokens: Input should be greater than or equal to "
                    "1024");
            if (!count_only && json_integer_value(bt) >= (json_int_t)q->max_tokens)
                BAD("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                    "our documentation at "
                    "https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#max-tokens-and-context-window-size");
            q->thinking = true;
        } else if (strcmp(tt, "adaptive") == 0) {
            q->thinking = true;
        } else if (strcmp(tt, "disabled") != 0) {
            BAD("thinking: Input tag '%s' found using 'type' does not match any of the expected "
                "tags: 'adaptive', 'disabled', 'enabled'",
                tt);
        }
    }
    if (q->thinking && temp && json_number_value(temp) != 1.0)
        BAD("`temperature` may only be set to 1 when thinking is enabled or in extended thinking "
            "mode. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-"
            "compatibility");
    if (q->thinking && top_p && json_number_value(top_p) < 0.95)
        BAD("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
            "Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-"
            "compatibility");

    json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_array(tools)) BAD("tools: Input should be a valid list");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (!json_is_object(t)) BAD("tools.%zu: Input should be a valid dictionary", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(t, "name"));
        bool custom = !type || strcmp(type, "custom") == 0;
        if (!name) BAD("tools.%zu.%s.name: Field required", i, custom ? "custom" : type);
        if (custom) {
            size_t len = strlen(name);
            if (len == 0 || len > 128 || !id_ok(name))
                BAD("tools.%zu.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
                    i);
            json_t *schema = json_object_get(t, "input_schema");
            if (!json_is_object(schema)) BAD("tools.%zu.custom.input_schema: Field required", i);
            const char *st = json_string_value(json_object_get(schema, "type"));
            if (!st || strcmp(st, "object") != 0)
                BAD("tools.%zu.custom.input_schema.type: Input should be 'object'", i);
        }
        for (size_t k = 0; k < q->n_tools; k++)
            if (strcmp(q->tools[k].name, name) == 0) BAD("tools: Tool names must be unique.");
        if (custom && q->n_tools < MAX_TOOLS)
            q->tools[q->n_tools++] = (struct fr_tool){name, json_object_get(t, "input_schema")};
        char *s = json_dumps(t, JSON_COMPACT);
        if (s) buf_append_str(&q->all, s);
        free(s);
        note_cache(q, t);
    }
    json_t *tc = json_object_get(body, "tool_choice");
    q->parallel = true;
    if (tc) {
        const char *ct = json_string_value(json_object_get(tc, "type"));
        if (!ct) BAD("tool_choice.type: Field required");
        if (strcmp(ct, "tool") == 0) {
            const char *name = json_string_value(json_object_get(tc, "name"));
            if (!name) BAD("tool_choice.tool.name: Field required");
            bool found = false;
            for (size_t k = 0; k < q->n_tools; k++) found |= strcmp(q->tools[k].name, name) == 0;
            if (!found) BAD("tool_choice: Tool '%s' not found in provided tools", name);
            q->forced_tool = name;
        } else if (strcmp(ct, "any") == 0) {
            q->choice_any = true;
        } else if (strcmp(ct, "none") == 0) {
            q->choice_none = true;
        } else if (strcmp(ct, "auto") != 0) {
            BAD("tool_choice: Input tag '%s' found using 'type' does not match any of the "
                "expected tags: 'any', 'auto', 'none', 'tool'",
                ct);
        }
        if ((q->forced_tool || q->choice_any) && q->thinking)
            BAD("Thinking may not be enabled when tool_choice forces tool use.");
        if ((q->forced_tool || q->choice_any) && q->n_tools == 0)
            BAD("tool_choice may only be specified while providing tools.");
        q->parallel = !json_is_true(json_object_get(tc, "disable_parallel_tool_use"));
    }
    json_t *stops = json_object_get(body, "stop_sequences");
    if (stops) {
        if (!json_is_array(stops)) BAD("stop_sequences: Input should be a valid list");
        json_array_foreach(stops, i, t)
        {
            if (!json_is_string(t)) BAD("stop_sequences.%zu: Input should be a valid string", i);
            if (is_blank(json_string_value(t), json_string_length(t)))
                BAD("stop_sequences: each stop sequence must contain non-whitespace");
        }
        q->stop_sequences = stops;
    }
    json_t *sys = json_object_get(body, "system");
    if (json_is_string(sys)) {
        buf_append(&q->all, json_string_value(sys), json_string_length(sys));
    } else if (json_is_array(sys)) {
        json_array_foreach(sys, i, t)
        {
            char where[32];
            snprintf(where, sizeof where, "system.%zu", i);
            const char *st = json_string_value(json_object_get(t, "type"));
            if (!st || strcmp(st, "text") != 0)
                BAD("system.%zu: Input tag '%s' found using 'type' does not match any of the "
                    "expected tags: 'text'",
                    i, st ? st : "");
            if (!check_text(call, json_object_get(t, "text"), where)) return false;
            json_t *tx = json_object_get(t, "text");
            buf_append(&q->all, json_string_value(tx), json_string_length(tx));
            note_cache(q, t);
        }
    } else if (sys) {
        BAD("system: Input should be a valid string");
    }
    return check_messages(call, q, messages);
}

static struct cl_req *cl_req_new(struct fr_call *call)
{
    struct cl_req *q = pool_calloc(call->req->pool, sizeof *q);
    if (!q || pool_cleanup(call->req->pool, cl_req_free, q) != 0) {
        fr_reply_error(call, 500, "api_error", NULL, "fakerelay: out of memory");
        return NULL;
    }
    return q;
}

/* ---- the answer ---- */

static void json_release(void *j)
{
    json_decref(j);
}

struct cl_block {
    enum { BLK_THINKING, BLK_TEXT, BLK_TOOL } kind;
    struct slice text;     /* thinking or text */
    const char *sig;       /* thinking signature */
    const char *id, *name; /* tool_use */
    json_t *input;         /* tool_use input (owned until used) */
    struct slice json;     /* tool_use input serialized */
};

static json_t *usage_json(unsigned input, unsigned cache_read, unsigned output, bool start)
{
    json_t *u = json_pack(
        "{s:I, s:i, s:I, s:{s:i, s:i}, s:I, s:n, s:s}", "input_tokens", (json_int_t)input,
        "cache_creation_input_tokens", 0, "cache_read_input_tokens", (json_int_t)cache_read,
        "cache_creation", "ephemeral_5m_input_tokens", 0, "ephemeral_1h_input_tokens", 0,
        "output_tokens", (json_int_t)output, "server_tool_use", "service_tier", "standard");
    if (start) return u;
    /* message_delta's usage has no cache_creation / service_tier */
    json_object_del(u, "cache_creation");
    json_object_del(u, "service_tier");
    return u;
}

static json_t *block_json(const struct cl_block *b, bool empty)
{
    switch (b->kind) {
    case BLK_THINKING:
        return json_pack("{s:s, s:s#, s:s}", "type", "thinking", "thinking", empty ? "" : b->text.p,
                         empty ? (size_t)0 : b->text.n, "signature", empty ? "" : b->sig);
    case BLK_TEXT:
        return json_pack("{s:s, s:s#, s:n}", "type", "text", "text", empty ? "" : b->text.p,
                         empty ? (size_t)0 : b->text.n, "citations");
    case BLK_TOOL:
        return json_pack("{s:s, s:s, s:s, s:o, s:{s:s}}", "type", "tool_use", "id", b->id, "name",
                         b->name, "input", empty ? json_object() : json_deep_copy(b->input),
                         "caller", "type", "direct");
    }
    return NULL;
}

static void messages(struct fr_call *call)
{
    struct cl_req *q = cl_req_new(call);
    if (!q || !validate(call, q, false)) return;
    pool_t *pool = call->req->pool;

    size_t total_cps = fr_utf8_len(q->all.p, q->all.n);
    unsigned total = fr_tokens(total_cps);
    unsigned cache_read = q->cache_control ? fr_tokens(q->cached_chars) : 0;
    if (cache_read > total) cache_read = total;
    unsigned input = total - cache_read;

    struct slice echo = buf_slice(&q->last_user);
    struct cl_block blocks[2 + FR_MAX_TOOL_CALLS];
    size_t nb = 0;
    if (q->thinking) {
        echo.n = fr_utf8_prefix(echo.p, echo.n, FR_ECHO_CHARS);
        char *t = pool_printf(pool, "%s is thinking about: %.*s", call->cfg->name, (int)echo.n,
                              echo.p ? echo.p : "");
        if (!t) t = "thinking";
        blocks[nb] = (struct cl_block){.kind = BLK_THINKING, .text = slice_from(t)};
        blocks[nb].sig = fr_seal(pool, "fakerelay-sig", blocks[nb].text);
        if (!blocks[nb].sig) blocks[nb].sig = "";
        nb++;
    }
    struct slice text = fr_hello(call, echo);
    const char *stop_reason = "end_turn";
    const char *stop_seq = NULL;
    /* A stop sequence in the answer ends it there. */
    size_t i;
    json_t *s;
    size_t cut = text.n;
    json_array_foreach(q->stop_sequences, i, s)
    {
        const char *p = json_string_value(s);
        size_t k = json_string_length(s);
        for (size_t off = 0; off + k <= text.n && off < cut; off++)
            if (memcmp(text.p + off, p, k) == 0) {
                cut = off;
                stop_seq = p;
                break;
            }
    }
    if (stop_seq) {
        text.n = cut;
        stop_reason = "stop_sequence";
    }
    size_t cps = fr_utf8_len(text.p, text.n);
    if (cps > (size_t)q->max_tokens * 4) {
        text.n = fr_utf8_prefix(text.p, text.n, (size_t)q->max_tokens * 4);
        cps = fr_utf8_len(text.p, text.n);
        stop_reason = "max_tokens";
        stop_seq = NULL;
    }
    if (text.n) blocks[nb++] = (struct cl_block){.kind = BLK_TEXT, .text = text};
    size_t plan[FR_MAX_TOOL_CALLS];
    size_t n_calls =
        strcmp(stop_reason, "end_turn") == 0
            ? fr_tool_plan(call, q->tools, q->n_tools, buf_slice(&q->last_user), q->after_results,
                           q->forced_tool, q->choice_any, q->choice_none, q->parallel, plan)
            : 0;
    unsigned out_cps = (unsigned)cps;
    for (size_t c = 0; c < n_calls; c++) {
        const struct fr_tool *t = &q->tools[plan[c]];
        struct cl_block *b = &blocks[nb++];
        *b = (struct cl_block){.kind = BLK_TOOL, .name = t->name};
        b->id = pool_printf(pool, "toolu_fr%" PRIu64 "_%zu", call->seq, c);
        b->input = fr_tool_input(t->schema);
        if (b->input && pool_cleanup(pool, json_release, b->input) != 0) {
            json_decref(b->input);
            b->input = NULL;
        }
        if (!b->input) {
            fr_reply_error(call, 500, "api_error", NULL, "fakerelay: out of memory");
            return;
        }
        b->json = fr_json_dump(call, json_incref(b->input));
        out_cps += (unsigned)b->json.n;
    }
    if (n_calls) stop_reason = "tool_use";
    if (q->thinking) out_cps += (unsigned)fr_utf8_len(blocks[0].text.p, blocks[0].text.n);
    unsigned output = fr_tokens(out_cps);
    char *id = pool_printf(pool, "msg_fakerelay_%" PRIu64, call->seq);

    if (!call->stream) {
        json_t *content = json_array();
        for (size_t b = 0; b < nb; b++)
            json_array_append_new(content, block_json(&blocks[b], false));
        fr_send_json(call,
                     json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:n, s:n, s:o}", "id", id,
                               "type", "message", "role", "assistant", "model", call->model,
                               "content", content, "stop_reason", stop_reason, "stop_sequence",
                               stop_seq ? json_string(stop_seq) : json_null(), "stop_details",
                               "container", "usage", usage_json(input, cache_read, output, true)));
        return;
    }

    size_t n = call->chunks ? call->chunks : 1;
    /* message_start, ping, per block: start + ≤n (or 4) deltas + signature + stop, then
     * message_delta and message_stop */
    struct fr_reply *r = fr_stream_new(call, 4 + nb * ((n < 3 ? 3 : n) + 6));
    if (!r) {
        fr_reply_error(call, 500, "api_error", NULL, "fakerelay: out of memory");
        return;
    }
    fr_stream_add(call, r, "message_start",
                  json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:n, s:n, s:o}}", "type",
                            "message_start", "message", "id", id, "type", "message", "role",
                            "assistant", "model", call->model, "content", "stop_reason",
                            "stop_sequence", "stop_details", "container", "usage",
                            usage_json(input, cache_read, 1, true)));
    size_t first_delta = 0, last_delta = 0;
    for (size_t b = 0; b < nb; b++) {
        const struct cl_block *bl = &blocks[b];
        fr_stream_add(call, r, "content_block_start",
                      json_pack("{s:s, s:I, s:o}", "type", "content_block_start", "index",
                                (json_int_t)b, "content_block", block_json(bl, true)));
        if (b == 0) fr_stream_add(call, r, "ping", json_pack("{s:s}", "type", "ping"));
        struct slice whole = bl->kind == BLK_TOOL ? bl->json : bl->text;
        size_t wcps = fr_utf8_len(whole.p, whole.n);
        /* Tool arguments: an empty fragment first (as the API does), then the JSON in
         * at least three pieces. */
        size_t pieces = bl->kind == BLK_TOOL ? (n < 3 ? 3 : n) : n;
        if (bl->kind == BLK_TOOL) {
            if (!first_delta) first_delta = r->n_frames;
            fr_stream_add(call, r, "content_block_delta",
                          json_pack("{s:s, s:I, s:{s:s, s:s}}", "type", "content_block_delta",
                                    "index", (json_int_t)b, "delta", "type", "input_json_delta",
                                    "partial_json", ""));
        }
        for (size_t c = 0; c < pieces; c++) {
            struct slice p = fr_split(whole, wcps, c, pieces);
            if (p.n == 0) continue;
            if (!first_delta) first_delta = r->n_frames;
            last_delta = r->n_frames;
            const char *dt = bl->kind == BLK_TOOL       ? "input_json_delta"
                             : bl->kind == BLK_THINKING ? "thinking_delta"
                                                        : "text_delta";
            const char *field = bl->kind == BLK_TOOL       ? "partial_json"
                                : bl->kind == BLK_THINKING ? "thinking"
                                                           : "text";
            fr_stream_add(call, r, "content_block_delta",
                          json_pack("{s:s, s:I, s:{s:s, s:s#}}", "type", "content_block_delta",
                                    "index", (json_int_t)b, "delta", "type", dt, field, p.p, p.n));
        }
        if (bl->kind == BLK_THINKING)
            fr_stream_add(call, r, "content_block_delta",
                          json_pack("{s:s, s:I, s:{s:s, s:s}}", "type", "content_block_delta",
                                    "index", (json_int_t)b, "delta", "type", "signature_delta",
                                    "signature", bl->sig));
        fr_stream_add(
            call, r, "content_block_stop",
            json_pack("{s:s, s:I}", "type", "content_block_stop", "index", (json_int_t)b));
    }
    if (nb == 0) fr_stream_add(call, r, "ping", json_pack("{s:s}", "type", "ping"));
    fr_stream_add(call, r, "message_delta",
                  json_pack("{s:s, s:{s:s, s:o, s:n, s:n}, s:o}", "type", "message_delta", "delta",
                            "stop_reason", stop_reason, "stop_sequence",
                            stop_seq ? json_string(stop_seq) : json_null(), "stop_details",
                            "container", "usage", usage_json(input, cache_read, output, false)));
    fr_stream_add(call, r, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    if (first_delta) {
        r->first_content = first_delta;
        r->n_content = last_delta + 1 - first_delta;
    } else {
        r->first_content = 1;
        r->n_content = 0;
    }
    /* The stream-error fault: what the API sends when it fails mid-stream. */
    r->tail = pool_calloc(pool, sizeof *r->tail);
    r->tail_events = pool_calloc(pool, sizeof *r->tail_events);
    if (r->tail && r->tail_events) {
        r->tail[0] =
            fr_json_dump(call, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                                         "overloaded_error", "message", "Overloaded"));
        r->tail_events[0] = "error";
        r->n_tail = 1;
    } else {
        r->tail = NULL;
    }
    fr_reply_send(call, r);
}

static void count_tokens(struct fr_call *call)
{
    struct cl_req *q = cl_req_new(call);
    if (!q || !validate(call, q, true)) return;
    unsigned total = fr_tokens(fr_utf8_len(q->all.p, q->all.n));
    fr_send_json(call, json_pack("{s:I}", "input_tokens", (json_int_t)total));
}

static const struct fr_route routes[] = {
    {"POST", "/v1/messages", messages, true, FR_FORMAT_MESSAGES},
    {"POST", "/v1/messages/count_tokens", count_tokens, true, FR_FORMAT_MESSAGES},
};

const struct fr_surface fr_claude_surface = {
    .name = "claude",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .shape = FR_SHAPE_CLAUDE,
};
