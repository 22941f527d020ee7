/* responses.c — the OpenAI Responses surface of an emulated relay: POST /v1/responses
 * (and /responses), served when the instance speaks `responses`.
 *
 * Requests are validated like the real API where a gateway's conversion can go wrong:
 * unknown parameters, Chat-shaped tools, `input` items of the wrong shape, a
 * function_call_output without its call, function_call ids not starting with "fc",
 * encrypted reasoning this relay did not mint, max_output_tokens below 16 — 400s in the
 * OpenAI shape with the real API's wording.
 *
 * The answer is deterministic: a reasoning item (when `reasoning` is set; its
 * `encrypted_content` only when `include` asks for it), a message "Hello from <name>:
 * <last user text>", and function_call items when the request offers function tools
 * and asks for them (gen.c, fr_tool_plan). `stream: true` sends the real event sequence
 * with sequence numbers: response.created, response.in_progress, then per item
 * output_item.added … output_item.done (content parts, text deltas, summary parts,
 * function-call argument deltas), and response.completed (or response.incomplete). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fakerelay.h"

#define MAX_TOOLS 128

struct rs_req {
    struct buf all;  /* every text of the request, for the token estimate */
    struct buf echo; /* the last user text, or the output of the trailing tool results */
    bool after_results;
    struct fr_tool tools[MAX_TOOLS];
    size_t n_tools;
    const char *forced_tool;
    bool choice_any, choice_none, parallel;
    bool reasoning, encrypted;
    unsigned max_output; /* 0 = none */
};

static void rs_req_free(void *p)
{
    struct rs_req *q = p;
    buf_free(&q->all);
    buf_free(&q->echo);
}

static void json_release(void *j)
{
    json_decref(j);
}

/* A 400 in the OpenAI shape with `param` and `code`. */
static void bad(struct fr_call *call, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(struct fr_call *call, const char *param, const char *code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j =
        json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", msg, "type",
                  "invalid_request_error", "param", param ? json_string(param) : json_null(),
                  "code", code ? json_string(code) : json_null());
    fr_reply_json(call, 400, fr_json_dump(call, j));
}

#define BAD(param, code, ...)                                                                      \
    do {                                                                                           \
        bad(call, param, code, __VA_ARGS__);                                                       \
        return false;                                                                              \
    } while (0)

static const char *param_at(struct fr_call *call, const char *fmt, size_t i, size_t j)
{
    const char *s = pool_printf(call->req->pool, fmt, i, j);
    return s ? s : "input";
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

/* Checks a message item's content; appends its text to q->all and `text`. */
static bool check_message(struct fr_call *call, struct rs_req *q, size_t i, json_t *item,
                          const char *role, struct buf *text)
{
    static const char *const roles[] = {"user", "assistant", "system", "developer"};
    if (!in_list(role, roles, 4))
        BAD(param_at(call, "input[%zu].role", i, 0), "invalid_value",
            "Invalid value: '%s'. Supported values are: 'assistant', 'system', 'developer', and "
            "'user'.",
            role ? role : "");
    bool assistant = strcmp(role, "assistant") == 0;
    json_t *content = json_object_get(item, "content");
    if (json_is_string(content)) {
        buf_append(&q->all, json_string_value(content), json_string_length(content));
        buf_append(text, json_string_value(content), json_string_length(content));
        return true;
    }
    if (!json_is_array(content))
        BAD(param_at(call, "input[%zu].content", i, 0), NULL,
            "Missing required parameter: 'input[%zu].content'.", i);
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part)
    {
        const char *pt = json_string_value(json_object_get(part, "type"));
        static const char *const out_types[] = {"output_text", "refusal"};
        static const char *const in_types[] = {"input_text", "input_image", "input_file"};
        if (assistant && !in_list(pt, out_types, 2))
            BAD(param_at(call, "input[%zu].content[%zu]", i, j), "invalid_value",
                "Invalid value: '%s'. Supported values are: 'output_text' and 'refusal'.",
                pt ? pt : "");
        if (!assistant && !in_list(pt, in_types, 3))
            BAD(param_at(call, "input[%zu].content[%zu]", i, j), "invalid_value",
                "Invalid value: '%s'. Supported values are: 'input_text', 'input_image', and "
                "'input_file'.",
                pt ? pt : "");
        if (strcmp(pt, "input_text") == 0 || strcmp(pt, "output_text") == 0) {
            json_t *t = json_object_get(part, "text");
            if (!json_is_string(t))
                BAD(param_at(call, "input[%zu].content[%zu].text", i, j), NULL,
                    "Missing required parameter: 'input[%zu].content[%zu].text'.", i, j);
            buf_append(&q->all, json_string_value(t), json_string_length(t));
            buf_append(text, json_string_value(t), json_string_length(t));
        } else if (strcmp(pt, "input_image") == 0) {
            if (!json_is_string(json_object_get(part, "image_url")) &&
                !json_is_string(json_object_get(part, "file_id")))
                BAD(param_at(call, "input[%zu].content[%zu]", i, j), NULL,
                    "Missing required parameter: 'input[%zu].content[%zu].image_url'.", i, j);
            buf_append_str(&q->all, "[image]");
        }
    }
    return true;
}

static bool check_input(struct fr_call *call, struct rs_req *q, json_t *input)
{
    if (json_is_string(input)) {
        buf_append(&q->all, json_string_value(input), json_string_length(input));
        buf_append(&q->echo, json_string_value(input), json_string_length(input));
        return true;
    }
    if (!json_is_array(input))
        BAD("input", NULL,
            "Invalid type for 'input': expected one of a string or array of input "
            "items, but got %s instead.",
            input ? "an object" : "nothing");
    json_t *calls = json_object();
    pool_cleanup(call->req->pool, json_release, calls);
    struct buf results = BUF_INIT;
    bool ok = false;
    size_t i;
    json_t *item;
    json_array_foreach(input, i, item)
    {
        if (!json_is_object(item)) {
            bad(call, param_at(call, "input[%zu]", i, 0), "invalid_type",
                "Invalid type for 'input[%zu]': expected an object.", i);
            goto out;
        }
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *role = json_string_value(json_object_get(item, "role"));
        if (!type && role) type = "message"; /* the easy form {role, content} */
        if (!type) {
            bad(call, param_at(call, "input[%zu]", i, 0), NULL,
                "Missing required parameter: 'input[%zu].type'.", i);
            goto out;
        }
        if (strcmp(type, "message") == 0) {
            struct buf text = BUF_INIT;
            if (!check_message(call, q, i, item, role, &text)) {
                buf_free(&text);
                goto out;
            }
            if (strcmp(role, "user") == 0) {
                q->echo.n = 0;
                buf_append(&q->echo, text.p, text.n);
                q->after_results = false;
                results.n = 0;
            }
            buf_free(&text);
        } else if (strcmp(type, "function_call") == 0 || strcmp(type, "custom_tool_call") == 0) {
            const char *call_id = json_string_value(json_object_get(item, "call_id"));
            const char *name = json_string_value(json_object_get(item, "name"));
            const char *args_key = strcmp(type, "function_call") == 0 ? "arguments" : "input";
            json_t *args = json_object_get(item, args_key);
            json_t *id = json_object_get(item, "id");
            if (!call_id || !name || !json_is_string(args)) {
                bad(call, param_at(call, "input[%zu]", i, 0), NULL,
                    "Missing required parameter: 'input[%zu].%s'.", i,
                    !call_id ? "call_id"
                    : !name  ? "name"
                             : args_key);
                goto out;
            }
            if (id && !json_is_null(id) &&
                (!json_is_string(id) || strncmp(json_string_value(id), "fc", 2) != 0) &&
                strcmp(type, "function_call") == 0) {
                bad(call, param_at(call, "input[%zu].id", i, 0), "invalid_value",
                    "Invalid 'input[%zu].id': '%s'. Expected an ID that begins with 'fc'.", i,
                    json_is_string(id) ? json_string_value(id) : "");
                goto out;
            }
            json_object_set_new(calls, call_id, json_true());
            buf_append_str(&q->all, name);
            buf_append(&q->all, json_string_value(args), json_string_length(args));
        } else if (strcmp(type, "function_call_output") == 0 ||
                   strcmp(type, "custom_tool_call_output") == 0) {
            const char *call_id = json_string_value(json_object_get(item, "call_id"));
            if (!call_id) {
                bad(call, param_at(call, "input[%zu].call_id", i, 0), NULL,
                    "Missing required parameter: 'input[%zu].call_id'.", i);
                goto out;
            }
            if (!json_object_get(calls, call_id)) {
                bad(call, "input", NULL,
                    "No tool call found for function call output with call_id %s.", call_id);
                goto out;
            }
            json_t *output = json_object_get(item, "output");
            if (!json_is_string(output) && !json_is_array(output)) {
                bad(call, param_at(call, "input[%zu].output", i, 0), NULL,
                    "Missing required parameter: 'input[%zu].output'.", i);
                goto out;
            }
            size_t before = results.n;
            if (json_is_string(output))
                buf_append(&results, json_string_value(output), json_string_length(output));
            else
                fr_content_text(output, &results);
            buf_append(&q->all, results.p + before, results.n - before);
            q->after_results = true;
            q->echo.n = 0;
            buf_append(&q->echo, results.p, results.n);
        } else if (strcmp(type, "reasoning") == 0) {
            json_t *id = json_object_get(item, "id");
            json_t *enc = json_object_get(item, "encrypted_content");
            if (!json_is_array(json_object_get(item, "summary"))) {
                bad(call, param_at(call, "input[%zu].summary", i, 0), NULL,
                    "Missing required parameter: 'input[%zu].summary'.", i);
                goto out;
            }
            if (enc && !json_is_null(enc) &&
                !(json_is_string(enc) && fr_seal_ok(json_string_value(enc), json_string_length(enc),
                                                    "fakerelay-enc", NULL))) {
                bad(call, NULL, "invalid_encrypted_content",
                    "The encrypted content for item %s could not be verified.",
                    json_is_string(id) ? json_string_value(id) : "(no id)");
                goto out;
            }
            fr_content_text(json_object_get(item, "summary"), &q->all);
        } else if (strcmp(type, "item_reference") == 0) {
            json_t *id = json_object_get(item, "id");
            bad(call, "input", NULL, "Item with id '%s' not found.",
                json_is_string(id) ? json_string_value(id) : "");
            goto out;
        } else {
            static const char *const others[] = {"web_search_call",
                                                 "file_search_call",
                                                 "computer_call",
                                                 "computer_call_output",
                                                 "local_shell_call",
                                                 "local_shell_call_output",
                                                 "image_generation_call",
                                                 "code_interpreter_call",
                                                 "mcp_call",
                                                 "mcp_list_tools",
                                                 "compaction",
                                                 "additional_tools"};
            if (!in_list(type, others, sizeof others / sizeof others[0])) {
                bad(call, param_at(call, "input[%zu]", i, 0), "invalid_value",
                    "Invalid value: '%s'. Supported values are: 'message', 'function_call', "
                    "'function_call_output', 'reasoning', 'custom_tool_call', "
                    "'custom_tool_call_output', 'item_reference' and other built-in tool items.",
                    type);
                goto out;
            }
        }
    }
    ok = true;
out:
    buf_free(&results);
    return ok;
}

static bool number_in(json_t *v, double lo, double hi)
{
    return json_is_number(v) && json_number_value(v) >= lo && json_number_value(v) <= hi;
}

static bool validate(struct fr_call *call, struct rs_req *q)
{
    json_t *body = call->body;
    static const char *const known[] = {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "max_tool_calls",
        "temperature",
        "top_p",
        "top_logprobs",
        "reasoning",
        "include",
        "store",
        "stream",
        "stream_options",
        "metadata",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
        "text",
        "truncation",
        "user",
        "background",
        "conversation",
        "client_metadata",
        "context_management",
    };
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (!in_list(key, known, sizeof known / sizeof known[0]))
            BAD(key, "unknown_parameter", "Unknown parameter: '%s'.", key);
    }
    if (!call->model) BAD("model", NULL, "Missing required parameter: 'model'.");
    if (!fr_model_known(call->cfg, call->model)) {
        fr_reply_error(call, 404, "invalid_request_error", "model_not_found",
                       "The model `%.200s` does not exist or you do not have access to it.",
                       call->model);
        return false;
    }
    json_t *prev = json_object_get(body, "previous_response_id");
    if (json_is_string(prev))
        BAD("previous_response_id", "previous_response_not_found",
            "Previous response with id '%s' not found.", json_string_value(prev));
    json_t *mo = json_object_get(body, "max_output_tokens");
    if (mo && !json_is_null(mo)) {
        if (!json_is_integer(mo))
            BAD("max_output_tokens", "invalid_type",
                "Invalid type for 'max_output_tokens': expected an integer.");
        if (json_integer_value(mo) < 16)
            BAD("max_output_tokens", "integer_below_min_value",
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                "16, but got %" JSON_INTEGER_FORMAT " instead.",
                json_integer_value(mo));
        q->max_output =
            json_integer_value(mo) > 100000000 ? 100000000u : (unsigned)json_integer_value(mo);
    }
    json_t *temp = json_object_get(body, "temperature"), *top_p = json_object_get(body, "top_p");
    if (temp && !json_is_null(temp) && !number_in(temp, 0, 2))
        BAD("temperature", "decimal_above_max_value",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2.");
    if (top_p && !json_is_null(top_p) && !number_in(top_p, 0, 1))
        BAD("top_p", "decimal_above_max_value",
            "Invalid 'top_p': decimal above maximum value. Expected a value <= 1.");
    json_t *instr = json_object_get(body, "instructions");
    if (instr && !json_is_null(instr) && !json_is_string(instr))
        BAD("instructions", "invalid_type", "Invalid type for 'instructions': expected a string.");
    if (json_is_string(instr))
        buf_append(&q->all, json_string_value(instr), json_string_length(instr));

    json_t *reasoning = json_object_get(body, "reasoning");
    if (reasoning && !json_is_null(reasoning)) {
        if (!json_is_object(reasoning))
            BAD("reasoning", "invalid_type", "Invalid type for 'reasoning': expected an object.");
        const char *effort = json_string_value(json_object_get(reasoning, "effort"));
        static const char *const efforts[] = {"none", "minimal", "low", "medium", "high", "xhigh"};
        if (effort && !in_list(effort, efforts, 6))
            BAD("reasoning.effort", "invalid_value",
                "Invalid value: '%s'. Supported values are: 'none', 'minimal', 'low', 'medium', "
                "'high', and 'xhigh'.",
                effort);
        q->reasoning = !effort || strcmp(effort, "none") != 0;
    }
    json_t *include = json_object_get(body, "include");
    if (include && !json_is_null(include) && !json_is_array(include))
        BAD("include", "invalid_type", "Invalid type for 'include': expected an array.");
    size_t i;
    json_array_foreach(include, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "reasoning.encrypted_content") == 0)
            q->encrypted = true;
    }

    json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_null(tools) && !json_is_array(tools))
        BAD("tools", "invalid_type", "Invalid type for 'tools': expected an array.");
    json_array_foreach(tools, i, v)
    {
        const char *type = json_string_value(json_object_get(v, "type"));
        static const char *const types[] = {
            "function",
            "custom",
            "web_search",
            "web_search_preview",
            "file_search",
            "code_interpreter",
            "image_generation",
            "mcp",
            "local_shell",
            "computer_use_preview",
            "namespace",
            "tool_search",
            "shell",
            "apply_patch",
        };
        if (!type)
            BAD(param_at(call, "tools[%zu].type", i, 0), NULL,
                "Missing required parameter: 'tools[%zu].type'.", i);
        if (!in_list(type, types, sizeof types / sizeof types[0]))
            BAD(param_at(call, "tools[%zu].type", i, 0), "invalid_value",
                "Invalid value: '%s'. Supported values are: 'function', 'custom', 'web_search', "
                "'file_search', 'code_interpreter', 'image_generation', 'mcp', 'local_shell' and "
                "others.",
                type);
        if (strcmp(type, "function") != 0 && strcmp(type, "custom") != 0) continue;
        const char *name = json_string_value(json_object_get(v, "name"));
        if (!name) /* e.g. a Chat-shaped {"type":"function","function":{…}} tool */
            BAD(param_at(call, "tools[%zu].name", i, 0), "missing_required_parameter",
                "Missing required parameter: 'tools[%zu].name'.", i);
        size_t len = strlen(name);
        if (len > 64)
            BAD(param_at(call, "tools[%zu].name", i, 0), "string_above_max_length",
                "Invalid 'tools[%zu].name': string too long. Expected a string with maximum "
                "length 64, but got a string with length %zu instead.",
                i, len);
        json_t *params = json_object_get(v, "parameters");
        if (params && !json_is_null(params) && !json_is_object(params))
            BAD(param_at(call, "tools[%zu].parameters", i, 0), "invalid_type",
                "Invalid type for 'tools[%zu].parameters': expected an object.", i);
        if (strcmp(type, "function") == 0 && q->n_tools < MAX_TOOLS)
            q->tools[q->n_tools++] = (struct fr_tool){name, params};
        char *s = json_dumps(v, JSON_COMPACT);
        if (s) buf_append_str(&q->all, s);
        free(s);
    }
    json_t *tc = json_object_get(body, "tool_choice");
    if (json_is_string(tc)) {
        const char *c = json_string_value(tc);
        static const char *const choices[] = {"auto", "none", "required"};
        if (!in_list(c, choices, 3))
            BAD("tool_choice", "invalid_value",
                "Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", c);
        q->choice_none = strcmp(c, "none") == 0;
        q->choice_any = strcmp(c, "required") == 0;
    } else if (json_is_object(tc)) {
        const char *t = json_string_value(json_object_get(tc, "type"));
        if (t && strcmp(t, "function") == 0) {
            q->forced_tool = json_string_value(json_object_get(tc, "name"));
            if (!q->forced_tool)
                BAD("tool_choice.name", NULL, "Missing required parameter: 'tool_choice.name'.");
            bool found = false;
            for (size_t k = 0; k < q->n_tools; k++)
                found |= strcmp(q->tools[k].name, q->forced_tool) == 0;
            if (!found)
                BAD("tool_choice", NULL, "Tool choice '%s' not found in 'tools' parameter.",
                    q->forced_tool);
        }
    }
    json_t *par = json_object_get(body, "parallel_tool_calls");
    q->parallel = !json_is_false(par);
    json_t *input = json_object_get(body, "input");
    if (!input) BAD("input", NULL, "Missing required parameter: 'input'.");
    return check_input(call, q, input);
}

/* ---- the answer ---- */

struct rs_item {
    enum { IT_REASONING, IT_MESSAGE, IT_CALL } kind;
    const char *id;
    struct slice text; /* summary or message text */
    const char *enc;   /* reasoning encrypted_content, NULL when not asked */
    const char *call_id, *name;
    struct slice args;
};

static json_t *item_json(const struct rs_item *it, bool done)
{
    switch (it->kind) {
    case IT_REASONING: {
        json_t *j = json_pack("{s:s, s:s, s:[]}", "id", it->id, "type", "reasoning", "summary");
        if (done) {
            json_array_append_new(
                json_object_get(j, "summary"),
                json_pack("{s:s, s:s#}", "type", "summary_text", "text", it->text.p, it->text.n));
            if (it->enc) json_object_set_new(j, "encrypted_content", json_string(it->enc));
        }
        return j;
    }
    case IT_MESSAGE: {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:[]}", "id", it->id, "type", "message", "status",
                      done ? "completed" : "in_progress", "role", "assistant", "content");
        if (done)
            json_array_append_new(json_object_get(j, "content"),
                                  json_pack("{s:s, s:s#, s:[], s:[]}", "type", "output_text",
                                            "text", it->text.p, it->text.n, "annotations",
                                            "logprobs"));
        return j;
    }
    case IT_CALL:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s#}", "id", it->id, "type", "function_call",
                         "status", done ? "completed" : "in_progress", "call_id", it->call_id,
                         "name", it->name, "arguments", done ? it->args.p : "",
                         done ? it->args.n : (size_t)0);
    }
    return NULL;
}

/* The response object: request echoes, status, output and usage. */
static json_t *response_json(struct fr_call *call, const char *id, json_int_t created,
                             const char *status, json_t *output, json_t *usage, json_t *incomplete,
                             json_t *error)
{
    json_t *b = call->body;
#define ECHO_FIELD(k, dflt) (json_object_get(b, k) ? json_deep_copy(json_object_get(b, k)) : (dflt))
    json_t *reasoning = json_object_get(b, "reasoning");
    json_t *r = json_pack(
        "{s:s, s:s, s:I, s:s, s:b, s:o, s:o, s:o, s:o, s:n, s:s, s:o, s:o, s:n, s:o, s:o, s:s, "
        "s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:s, s:o, s:n, s:o}",
        "id", id, "object", "response", "created_at", created, "status", status, "background", 0,
        "error", error ? error : json_null(), "incomplete_details",
        incomplete ? incomplete : json_null(), "instructions",
        ECHO_FIELD("instructions", json_null()), "max_output_tokens",
        ECHO_FIELD("max_output_tokens", json_null()), "max_tool_calls", "model", call->model,
        "output", output, "parallel_tool_calls", ECHO_FIELD("parallel_tool_calls", json_true()),
        "previous_response_id", "prompt_cache_key", ECHO_FIELD("prompt_cache_key", json_null()),
        "reasoning",
        json_is_object(reasoning)
            ? json_pack("{s:O, s:O}", "effort",
                        json_object_get(reasoning, "effort") ? json_object_get(reasoning, "effort")
                                                             : json_null(),
                        "summary",
                        json_object_get(reasoning, "summary")
                            ? json_object_get(reasoning, "summary")
                            : json_null())
            : json_pack("{s:n, s:n}", "effort", "summary"),
        "service_tier", "default", "store", ECHO_FIELD("store", json_true()), "temperature",
        ECHO_FIELD("temperature", json_real(1.0)), "text",
        ECHO_FIELD("text",
                   json_pack("{s:{s:s}, s:s}", "format", "type", "text", "verbosity", "medium")),
        "tool_choice", ECHO_FIELD("tool_choice", json_string("auto")), "tools",
        ECHO_FIELD("tools", json_array()), "top_logprobs", 0, "top_p",
        ECHO_FIELD("top_p", json_real(1.0)), "truncation", "disabled", "usage",
        usage ? usage : json_null(), "user", "metadata", ECHO_FIELD("metadata", json_object()));
#undef ECHO_FIELD
    return r;
}

static json_t *usage_json(unsigned input, unsigned output, unsigned reasoning)
{
    return json_pack("{s:I, s:{s:i, s:i}, s:I, s:{s:I}, s:I}", "input_tokens", (json_int_t)input,
                     "input_tokens_details", "cached_tokens", 0, "cache_write_tokens", 0,
                     "output_tokens", (json_int_t)output, "output_tokens_details",
                     "reasoning_tokens", (json_int_t)reasoning, "total_tokens",
                     (json_int_t)input + output);
}

/* The event `type` with its sequence number and the fields of `j` (stolen). */
static void ev(struct fr_call *call, struct fr_reply *r, const char *type, json_t *j)
{
    json_t *e = json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)r->n_frames);
    if (e && j) json_object_update(e, j); /* type and sequence_number first, as the API does */
    json_decref(j);
    fr_stream_add(call, r, type, e);
}

static void responses(struct fr_call *call)
{
    pool_t *pool = call->req->pool;
    struct rs_req *q = pool_calloc(pool, sizeof *q);
    if (!q || pool_cleanup(pool, rs_req_free, q) != 0) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    if (!validate(call, q)) return;

    unsigned input_tokens = fr_tokens(fr_utf8_len(q->all.p, q->all.n));
    struct slice echo = buf_slice(&q->echo);
    echo.n = fr_utf8_prefix(echo.p, echo.n, FR_ECHO_CHARS);
    struct rs_item items[2 + FR_MAX_TOOL_CALLS];
    size_t ni = 0;
    unsigned reasoning_tokens = 0, out_cps = 0;
    if (q->reasoning) {
        char *t = pool_printf(pool, "%s is thinking about: %.*s", call->cfg->name, (int)echo.n,
                              echo.p ? echo.p : "");
        if (!t) t = "thinking";
        struct rs_item *it = &items[ni];
        *it = (struct rs_item){.kind = IT_REASONING, .text = slice_from(t)};
        it->id = pool_printf(pool, "rs_fakerelay_%" PRIu64 "_%zu", call->seq, ni);
        if (q->encrypted) it->enc = fr_seal(pool, "fakerelay-enc", it->text);
        reasoning_tokens = fr_tokens(fr_utf8_len(it->text.p, it->text.n));
        ni++;
    }
    struct slice text = fr_hello(call, buf_slice(&q->echo));
    const char *status = "completed";
    size_t cps = fr_utf8_len(text.p, text.n);
    if (q->max_output && cps > (size_t)q->max_output * 4) {
        text.n = fr_utf8_prefix(text.p, text.n, (size_t)q->max_output * 4);
        cps = fr_utf8_len(text.p, text.n);
        status = "incomplete";
    }
    out_cps += (unsigned)cps;
    items[ni] = (struct rs_item){.kind = IT_MESSAGE, .text = text};
    items[ni].id = pool_printf(pool, "msg_fakerelay_%" PRIu64 "_%zu", call->seq, ni);
    ni++;
    size_t plan[FR_MAX_TOOL_CALLS];
    size_t n_calls =
        strcmp(status, "completed") == 0
            ? fr_tool_plan(call, q->tools, q->n_tools, buf_slice(&q->echo), q->after_results,
                           q->forced_tool, q->choice_any, q->choice_none, q->parallel, plan)
            : 0;
    for (size_t c = 0; c < n_calls; c++) {
        struct rs_item *it = &items[ni];
        *it = (struct rs_item){.kind = IT_CALL, .name = q->tools[plan[c]].name};
        it->id = pool_printf(pool, "fc_fakerelay_%" PRIu64 "_%zu", call->seq, c);
        it->call_id = pool_printf(pool, "call_fr%" PRIu64 "_%zu", call->seq, c);
        it->args = fr_json_dump(call, fr_tool_input(q->tools[plan[c]].schema));
        out_cps += (unsigned)it->args.n;
        ni++;
    }
    for (size_t k = 0; k < ni; k++)
        if (!items[k].id || (items[k].kind == IT_CALL && !items[k].call_id)) {
            fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
            return;
        }
    unsigned output_tokens = fr_tokens(out_cps) + reasoning_tokens;
    char *id = pool_printf(pool, "resp_fakerelay_%" PRIu64, call->seq);
    json_int_t created = (json_int_t)time(NULL);
    json_t *incomplete = strcmp(status, "incomplete") == 0
                             ? json_pack("{s:s}", "reason", "max_output_tokens")
                             : NULL;

    json_t *output = json_array();
    for (size_t k = 0; k < ni; k++) json_array_append_new(output, item_json(&items[k], true));
    json_t *final =
        response_json(call, id, created, status, output,
                      usage_json(input_tokens, output_tokens, reasoning_tokens), incomplete, NULL);
    if (!call->stream) {
        fr_send_json(call, final);
        return;
    }
    if (final) pool_cleanup(pool, json_release, final);

    size_t n = call->chunks ? call->chunks : 1;
    size_t pieces = n < 3 ? 3 : n;
    struct fr_reply *r = fr_stream_new(call, 3 + ni * (pieces + 6));
    if (!r || !final) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    ev(call, r, "response.created",
       json_pack("{s:o}", "response",
                 response_json(call, id, created, "in_progress", json_array(), NULL, NULL, NULL)));
    ev(call, r, "response.in_progress",
       json_pack("{s:o}", "response",
                 response_json(call, id, created, "in_progress", json_array(), NULL, NULL, NULL)));
    size_t first = 0, last = 0;
    for (size_t k = 0; k < ni; k++) {
        const struct rs_item *it = &items[k];
        json_int_t oi = (json_int_t)k;
        ev(call, r, "response.output_item.added",
           json_pack("{s:I, s:o}", "output_index", oi, "item", item_json(it, false)));
        struct slice whole = it->kind == IT_CALL ? it->args : it->text;
        size_t wcps = fr_utf8_len(whole.p, whole.n);
        size_t np = it->kind == IT_CALL ? pieces : n;
        if (it->kind == IT_REASONING)
            ev(call, r, "response.reasoning_summary_part.added",
               json_pack("{s:s, s:I, s:i, s:{s:s, s:s}}", "item_id", it->id, "output_index", oi,
                         "summary_index", 0, "part", "type", "summary_text", "text", ""));
        if (it->kind == IT_MESSAGE)
            ev(call, r, "response.content_part.added",
               json_pack("{s:s, s:I, s:i, s:{s:s, s:s, s:[], s:[]}}", "item_id", it->id,
                         "output_index", oi, "content_index", 0, "part", "type", "output_text",
                         "text", "", "annotations", "logprobs"));
        for (size_t c = 0; c < np; c++) {
            struct slice p = fr_split(whole, wcps, c, np);
            if (p.n == 0) continue;
            if (!first) first = r->n_frames;
            last = r->n_frames;
            if (it->kind == IT_REASONING)
                ev(call, r, "response.reasoning_summary_text.delta",
                   json_pack("{s:s, s:I, s:i, s:s#}", "item_id", it->id, "output_index", oi,
                             "summary_index", 0, "delta", p.p, p.n));
            else if (it->kind == IT_MESSAGE)
                ev(call, r, "response.output_text.delta",
                   json_pack("{s:s, s:I, s:i, s:s#, s:[]}", "item_id", it->id, "output_index", oi,
                             "content_index", 0, "delta", p.p, p.n, "logprobs"));
            else
                ev(call, r, "response.function_call_arguments.delta",
                   json_pack("{s:s, s:I, s:s#}", "item_id", it->id, "output_index", oi, "delta",
                             p.p, p.n));
        }
        if (it->kind == IT_REASONING) {
            ev(call, r, "response.reasoning_summary_text.done",
               json_pack("{s:s, s:I, s:i, s:s#}", "item_id", it->id, "output_index", oi,
                         "summary_index", 0, "text", whole.p, whole.n));
            ev(call, r, "response.reasoning_summary_part.done",
               json_pack("{s:s, s:I, s:i, s:{s:s, s:s#}}", "item_id", it->id, "output_index", oi,
                         "summary_index", 0, "part", "type", "summary_text", "text", whole.p,
                         whole.n));
        } else if (it->kind == IT_MESSAGE) {
            ev(call, r, "response.output_text.done",
               json_pack("{s:s, s:I, s:i, s:s#, s:[]}", "item_id", it->id, "output_index", oi,
                         "content_index", 0, "text", whole.p, whole.n, "logprobs"));
            ev(call, r, "response.content_part.done",
               json_pack("{s:s, s:I, s:i, s:{s:s, s:s#, s:[], s:[]}}", "item_id", it->id,
                         "output_index", oi, "content_index", 0, "part", "type", "output_text",
                         "text", whole.p, whole.n, "annotations", "logprobs"));
        } else {
            ev(call, r, "response.function_call_arguments.done",
               json_pack("{s:s, s:I, s:s, s:s#}", "item_id", it->id, "output_index", oi, "name",
                         it->name, "arguments", whole.p, whole.n));
        }
        ev(call, r, "response.output_item.done",
           json_pack("{s:I, s:o}", "output_index", oi, "item", item_json(it, true)));
    }
    ev(call, r, strcmp(status, "completed") == 0 ? "response.completed" : "response.incomplete",
       json_pack("{s:O}", "response", final));
    r->first_content = first ? first : 2;
    r->n_content = first ? last + 1 - first : 0;

    /* The stream-error fault: an error event, then response.failed, numbered after the
     * frames kept before the cut. */
    size_t k = call->cut_after < r->n_content ? call->cut_after : r->n_content;
    json_int_t seq = (json_int_t)(r->first_content + k);
    r->tail = pool_calloc(pool, 2 * sizeof *r->tail);
    r->tail_events = pool_calloc(pool, 2 * sizeof *r->tail_events);
    if (r->tail && r->tail_events) {
        const char *msg = "fakerelay: injected fault stream-error, the upstream failed mid-stream";
        r->tail[0] = fr_json_dump(call, json_pack("{s:s, s:s, s:s, s:n, s:I}", "type", "error",
                                                  "code", "server_error", "message", msg, "param",
                                                  "sequence_number", seq));
        r->tail_events[0] = "error";
        r->tail[1] = fr_json_dump(
            call, json_pack("{s:s, s:I, s:o}", "type", "response.failed", "sequence_number",
                            seq + 1, "response",
                            response_json(
                                call, id, created, "failed", json_array(), NULL, NULL,
                                json_pack("{s:s, s:s}", "code", "server_error", "message", msg))));
        r->tail_events[1] = "response.failed";
        r->n_tail = 2;
    } else {
        r->tail = NULL;
    }
    fr_reply_send(call, r);
}

static const struct fr_route routes[] = {
    {"POST", "/v1/responses", responses, true, FR_FORMAT_RESPONSES},
    {"POST", "/responses", responses, true, FR_FORMAT_RESPONSES},
};

const struct fr_surface fr_responses_surface = {
    .name = "responses",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .shape = FR_SHAPE_OPENAI,
};
