/* test_protocol_request_inputs.c — request conversion beyond the spec's vectors: bad client
 * input answered with a clear 400 (tool result without its call, empty content array,
 * unknown content type, oversized image, invalid tool schema, wrong field types); bodies
 * shaped like what Claude Code and Codex send, converted without choking and without
 * leaking fields the target does not know; tool-name shortening; the token estimate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "request_test_util.h"

/* Converts body and expects a 400 whose message contains `needle`. */
static void expect_400(enum api_format client, enum api_format upstream, const char *body,
                       const char *needle)
{
    struct ir_profile prof;
    ir_profile_defaults(&prof);
    pool_t *pool = pool_create();
    struct slice out;
    struct conv_error err;
    int rc = tu_convert(pool, client, upstream, &prof, slice_from(body), &out, &err, NULL);
    pool_destroy(pool);
    if (rc == 0) fail_msg("accepted: %s", body);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    if (!strstr(err.message, needle)) fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

/* Converts body and returns the parsed upstream body (caller decrefs). */
static json_t *convert_ok(enum api_format client, enum api_format upstream,
                          const struct ir_profile *p, const char *body, struct conv **cv_copy)
{
    struct ir_profile prof;
    if (p)
        prof = *p;
    else
        ir_profile_defaults(&prof);
    pool_t *pool = pool_create();
    struct slice out;
    struct conv_error err;
    struct conv *cv = NULL;
    int rc = tu_convert(pool, client, upstream, &prof, slice_from(body), &out, &err, &cv);
    if (rc != 0) fail_msg("conversion failed: %d %s", err.status, err.message);
    json_t *j = json_loadb(out.p, out.n, JSON_REJECT_DUPLICATES, NULL);
    if (!j) fail_msg("invalid JSON: %.*s", (int)out.n, out.p);
    if (cv_copy) {
        /* keep the tool-name map alive: copy the context and its strings out of the pool */
        static struct conv keep;
        static struct conv_tool_name names[8];
        static char texts[8][2][128];
        keep = *cv;
        keep.tool_names = names;
        for (size_t i = 0; i < cv->n_tool_names && i < 8; i++) {
            snprintf(texts[i][0], 128, "%.*s", (int)cv->tool_names[i].original.n,
                     cv->tool_names[i].original.p);
            snprintf(texts[i][1], 128, "%.*s", (int)cv->tool_names[i].upstream.n,
                     cv->tool_names[i].upstream.p);
            names[i].original = slice_from(texts[i][0]);
            names[i].upstream = slice_from(texts[i][1]);
        }
        keep.pool = NULL;
        keep.req = NULL;
        *cv_copy = &keep;
    }
    pool_destroy(pool);
    return j;
}

/* ---- bad input ---- */

static void bad_json_and_types(void **state)
{
    (void)state;
    expect_400(API_CHAT, API_MESSAGES, "{\"model\":", "not valid JSON");
    expect_400(API_CHAT, API_MESSAGES, "[1,2]", "JSON object");
    expect_400(API_CHAT, API_MESSAGES, "{\"model\":\"m\",\"model\":\"n\",\"messages\":[]}",
               "not valid JSON");
    expect_400(API_CHAT, API_MESSAGES, "{\"model\":\"m\",\"messages\":\"hi\"}",
               "'messages' must be an array");
    expect_400(API_CHAT, API_MESSAGES, "{\"model\":\"m\",\"messages\":[]}", "non-empty");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_"
               "tokens\":\"100\"}",
               "'max_tokens' must be an integer");
    expect_400(
        API_CHAT, API_MESSAGES,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-5}",
        "non-negative");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"temperature\":\"hot\"}",
               "'temperature' must be a number");
    expect_400(
        API_CHAT, API_MESSAGES,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
        "'stream' must be true or false");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "'model' must be a string");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
               "unknown role 'wizard'");
    expect_400(
        API_MESSAGES, API_CHAT,
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":5}]}",
        "messages[0].content must be a string or an array");
    expect_400(API_RESPONSES, API_CHAT, "{\"model\":\"m\",\"input\":42}",
               "'input' must be a string or an array");
    expect_400(API_COMPLETIONS, API_CHAT, "{\"model\":\"m\"}", "'prompt' is required");
}

static void tool_result_without_call(void **state)
{
    (void)state;
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"r\"}]}",
               "must follow an assistant message with tool_calls");
    expect_400(API_CHAT, API_RESPONSES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}",
               "tool_call_id is required");
    expect_400(API_MESSAGES, API_CHAT,
               "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":["
               "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"r\"}]}]}",
               "no matching tool_use");
    expect_400(API_RESPONSES, API_MESSAGES,
               "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"x\"},{\"type\":"
               "\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"r\"}]}",
               "no matching function_call");
}

static void empty_content_array(void **state)
{
    (void)state;
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
               "must not be an empty array");
    expect_400(
        API_MESSAGES, API_CHAT,
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
        "must not be an empty array");
    expect_400(
        API_RESPONSES, API_CHAT,
        "{\"model\":\"m\",\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[]}]}",
        "must not be an empty array");
}

static void unknown_content_type(void **state)
{
    (void)state;
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"hologram\"}]}]}",
               "unknown content type 'hologram'");
    expect_400(API_MESSAGES, API_CHAT,
               "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":["
               "{\"type\":\"video\",\"url\":\"x\"}]}]}",
               "unknown content type 'video'");
    expect_400(API_RESPONSES, API_MESSAGES,
               "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_"
               "video\"}]}]}",
               "unknown content type 'input_video'");
    expect_400(
        API_MESSAGES, API_CHAT,
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"sparkle\"}]}]}",
        "unknown content type 'sparkle'");
}

/* A base64 data URL of `bytes` decoded bytes (caller frees). */
static char *big_image_body(enum api_format f, size_t bytes)
{
    size_t b64 = (bytes + 2) / 3 * 4;
    char *data = malloc(b64 + 1);
    memset(data, 'A', b64);
    data[b64] = 0;
    size_t cap = b64 + 512;
    char *body = malloc(cap);
    if (f == API_CHAT)
        snprintf(body, cap,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_"
                 "url\","
                 "\"image_url\":{\"url\":\"data:image/png;base64,%s\"}}]}]}",
                 data);
    else
        snprintf(body, cap,
                 "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":[{"
                 "\"type\":"
                 "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/"
                 "png\",\"data\":\"%s\"}}]}]}",
                 data);
    free(data);
    return body;
}

static void oversized_image(void **state)
{
    (void)state;
    char *body = big_image_body(API_CHAT, 3 * 1024 * 1024);
    expect_400(API_CHAT, API_MESSAGES, body, "image is too large");
    free(body);
    body = big_image_body(API_MESSAGES, 3 * 1024 * 1024);
    expect_400(API_MESSAGES, API_CHAT, body, "image is too large");
    free(body);
    /* just under the limit passes */
    body = big_image_body(API_CHAT, 2 * 1024 * 1024);
    json_t *j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, NULL);
    json_decref(j);
    free(body);
    expect_400(
        API_CHAT, API_MESSAGES,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/png;base64,@@@@\"}}]}]}",
        "not valid base64");
    expect_400(
        API_CHAT, API_MESSAGES,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"ftp://x/y.png\"}}]}]}",
        "http(s) URL");
}

static void invalid_tool_schema(void **state)
{
    (void)state;
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
               "\"type\":"
               "\"function\",\"function\":{\"name\":\"f\",\"parameters\":\"object\"}}]}",
               "must be a JSON Schema object");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
               "\"type\":"
               "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"array\"}}}]}",
               "\"type\": \"object\"");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{"
               "\"type\":"
               "\"function\",\"function\":{\"description\":\"no name\"}}]}",
               "needs a name");
    expect_400(
        API_MESSAGES, API_CHAT,
        "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tools\":[{\"name\":\"f\"}]}",
        "input_schema is required");
    expect_400(
        API_MESSAGES, API_CHAT,
        "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":[]}}]}",
        "\"properties\"");
    expect_400(API_RESPONSES, API_CHAT,
               "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
               "\"parameters\":[1]}]}",
               "must be a JSON Schema object");
}

static void same_format_only_features(void **state)
{
    (void)state;
    expect_400(API_RESPONSES, API_CHAT,
               "{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
               "previous_response_id");
    expect_400(API_RESPONSES, API_MESSAGES, "{\"model\":\"m\",\"input\":\"x\",\"background\":true}",
               "background");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "n > 1");
    expect_400(
        API_CHAT, API_RESPONSES,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
        "\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]}]}",
        "audio");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\","
               "\"file\":"
               "{\"file_id\":\"file-1\"}}]}]}",
               "file_id");
    expect_400(API_CHAT, API_MESSAGES,
               "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\","
               "\"file\":"
               "{\"file_data\":\"data:application/zip;base64,UEsDBA==\"}}]}]}",
               "cannot be sent to a Claude model");
}

/* ---- real clients ---- */

static const char *claude_code_body =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":32000,\"stream\":true,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\",\"cache_control\":{\"type\":"
    "\"ephemeral\"}},{\"type\":\"text\",\"text\":\"Env: "
    "linux\",\"cache_control\":{\"type\":\"ephemeral\","
    "\"ttl\":\"1h\"}}],"
    "\"messages\":[{\"role\":\"system\",\"content\":\"Session note: be brief.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<system-reminder>ctx</"
    "system-reminder>\"},"
    "{\"type\":\"text\",\"text\":\"list files\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"use "
    "Bash\",\"signature\":"
    "\"EqoBCkYIBxgCKkB\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"Bash\",\"input\":{"
    "\"command\":\"ls\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\","
    "\"content\":"
    "[{\"type\":\"text\",\"text\":\"a.txt\"}],\"cache_control\":{\"type\":\"ephemeral\"}}]}],"
    "\"tools\":[{\"name\":\"Bash\",\"description\":\"Run a command\",\"input_schema\":{\"$schema\":"
    "\"http://json-schema.org/draft-07/"
    "schema#\",\"type\":\"object\",\"properties\":{\"command\":{\"type\":"
    "\"string\"}},\"required\":[\"command\"],\"additionalProperties\":false}},"
    "{\"name\":\"WebFetch\",\"description\":\"Fetch\",\"defer_loading\":true,\"input_schema\":{\"$"
    "schema\":"
    "\"http://json-schema.org/draft-07/"
    "schema#\",\"type\":\"object\",\"properties\":{\"url\":{\"type\":"
    "\"string\"}}},\"cache_control\":{\"type\":\"ephemeral\"}},"
    "{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":5}],"
    "\"tool_choice\":{\"type\":\"auto\"},"
    "\"thinking\":{\"type\":\"adaptive\"},\"context_management\":{\"edits\":[{\"type\":"
    "\"clear_thinking_20251015\",\"keep\":\"all\"}]},\"output_config\":{\"effort\":\"high\"},"
    "\"metadata\":{\"user_id\":\"{\\\"device_id\\\":\\\"d1\\\",\\\"account_uuid\\\":\\\"\\\","
    "\\\"session_id\\\":\\\"s1\\\"}\"}}";

static void claude_code_to_chat(void **state)
{
    (void)state;
    json_t *j = convert_ok(API_MESSAGES, API_CHAT, NULL, claude_code_body, NULL);
    static const char *gone[] = {
        "thinking", "context_management", "output_config", "cache_control", "defer_loading",
        "$schema",  "signature",          "max_uses"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        if (tu_has_key(j, gone[i])) fail_msg("'%s' leaked into the Chat body", gone[i]);
    json_t *msgs = json_object_get(j, "messages");
    json_t *sys = json_array_get(msgs, 0);
    assert_string_equal(json_string_value(json_object_get(sys, "role")), "system");
    const char *st = json_string_value(json_object_get(sys, "content"));
    assert_non_null(strstr(st, "You are Claude Code."));
    assert_non_null(strstr(st, "Session note: be brief.")); /* mid-conversation system hoisted */
    for (size_t i = 1; i < json_array_size(msgs); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(msgs, i), "role")),
                                "system");
    /* the tool loop survives: assistant tool_calls then the tool message */
    json_t *asst = json_array_get(msgs, 2);
    assert_string_equal(json_string_value(json_object_get(asst, "role")), "assistant");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(asst, "tool_calls"), 0), "function"),
            "arguments")),
        "{\"command\":\"ls\"}");
    json_t *tool = json_array_get(msgs, 3);
    assert_string_equal(json_string_value(json_object_get(tool, "role")), "tool");
    assert_string_equal(json_string_value(json_object_get(tool, "content")), "a.txt");
    /* two function tools (server tool dropped), strictness not invented */
    json_t *tools = json_object_get(j, "tools");
    assert_int_equal(json_array_size(tools), 2);
    json_t *params =
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "parameters");
    assert_true(json_is_false(json_object_get(params, "additionalProperties")));
    assert_string_equal(json_string_value(json_object_get(j, "reasoning_effort")), "high");
    assert_string_equal(json_string_value(json_object_get(j, "tool_choice")), "auto");
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 32000);
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "user")), "session_id"));
    json_decref(j);
}

static void claude_code_to_responses(void **state)
{
    (void)state;
    json_t *j = convert_ok(API_MESSAGES, API_RESPONSES, NULL, claude_code_body, NULL);
    static const char *gone[] = {"thinking",      "context_management", "output_config",
                                 "cache_control", "defer_loading",      "$schema"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        if (tu_has_key(j, gone[i])) fail_msg("'%s' leaked into the Responses body", gone[i]);
    assert_non_null(strstr(json_string_value(json_object_get(j, "instructions")), "Session note"));
    json_t *rs = json_object_get(j, "reasoning");
    assert_string_equal(json_string_value(json_object_get(rs, "effort")), "high");
    assert_string_equal(json_string_value(json_object_get(rs, "summary")), "auto");
    assert_true(json_is_false(json_object_get(j, "store")));
    json_decref(j);
}

static const char *codex_body =
    "{\"model\":\"gpt-5-codex\",\"stream\":true,\"store\":false,"
    "\"include\":[\"reasoning.encrypted_content\"],\"prompt_cache_key\":\"thread-1\","
    "\"client_metadata\":{\"x\":\"y\"},\"reasoning\":{\"effort\":\"medium\",\"summary\":\"auto\"},"
    "\"tool_choice\":\"auto\",\"parallel_tool_calls\":true,"
    "\"input\":[{\"type\":\"message\",\"id\":\"msg_0\",\"role\":\"developer\",\"content\":[{"
    "\"type\":"
    "\"input_text\",\"text\":\"You are Codex.\"}]},"
    "{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"user\",\"content\":[{\"type\":\"input_"
    "text\","
    "\"text\":\"fix the bug\"}]},"
    "{\"type\":\"additional_tools\",\"id\":\"at_1\",\"tools\":[{\"type\":\"function\",\"name\":"
    "\"update_plan\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}]},"
    "{\"type\":\"reasoning\",\"id\":\"rs_9\",\"summary\":[],\"encrypted_content\":\"gAAAA9\"},"
    "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_1\",\"name\":\"shell\","
    "\"arguments\":"
    "\"{\\\"command\\\":[\\\"ls\\\"]}\"},"
    "{\"type\":\"function_call_output\",\"id\":\"fco_1\",\"call_id\":\"call_1\",\"output\":\"main."
    "c\"},"
    "{\"type\":\"custom_tool_call\",\"id\":\"ctc_1\",\"call_id\":\"call_2\",\"name\":\"apply_"
    "patch\","
    "\"input\":\"*** Begin Patch\"},"
    "{\"type\":\"custom_tool_call_output\",\"call_id\":\"call_2\",\"output\":\"Done\"},"
    "{\"type\":\"web_search_call\",\"id\":\"ws_1\",\"status\":\"completed\"},"
    "{\"type\":\"message\",\"role\":\"assistant\",\"id\":\"msg_2\",\"content\":[{\"type\":"
    "\"output_text\",\"text\":\"Patched.\"}]},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"thanks\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"shell\",\"strict\":false,\"parameters\":{"
    "\"type\":"
    "\"object\",\"properties\":{\"command\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}}"
    ","
    "{\"type\":\"custom\",\"name\":\"apply_patch\",\"description\":\"Apply a patch\",\"format\":{"
    "\"type\":\"grammar\",\"syntax\":\"lark\",\"definition\":\"start: x\"}},"
    "{\"type\":\"namespace\",\"name\":\"mcp__fs\",\"description\":\"fs\",\"tools\":[{\"type\":"
    "\"function\",\"name\":\"read_file\",\"defer_loading\":true,\"parameters\":{\"type\":"
    "\"object\","
    "\"properties\":{\"path\":{\"type\":\"string\"}}}}]},"
    "{\"type\":\"tool_search\"},{\"type\":\"web_search\",\"external_web_access\":false}]}";

static json_t *find_tool(json_t *tools, const char *name, bool chat)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i);
        json_t *f = chat ? json_object_get(t, "function") : t;
        if (!strcmp(json_string_value(json_object_get(f, "name")), name)) return f;
    }
    return NULL;
}

static void codex_to_chat(void **state)
{
    (void)state;
    json_t *j = convert_ok(API_RESPONSES, API_CHAT, NULL, codex_body, NULL);
    json_t *tools = json_object_get(j, "tools");
    assert_int_equal(json_array_size(tools), 4); /* shell, apply_patch, read_file, update_plan */
    assert_non_null(find_tool(tools, "shell", true));
    assert_non_null(find_tool(tools, "read_file", true));
    assert_non_null(find_tool(tools, "update_plan", true));
    json_t *ap = find_tool(tools, "apply_patch", true);
    assert_non_null(ap);
    assert_non_null(json_object_get(
        json_object_get(json_object_get(ap, "parameters"), "properties"), CONV_CUSTOM_TOOL_ARG));
    static const char *gone[] = {"defer_loading", "format",          "store",
                                 "include",       "client_metadata", "id"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        json_t *scope = !strcmp(gone[i], "id") ? tools : j;
        if (tu_has_key(scope, gone[i]) && strcmp(gone[i], "format") != 0)
            fail_msg("'%s' leaked into the Chat body", gone[i]);
    }
    json_t *msgs = json_object_get(j, "messages");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                        "You are Codex.");
    /* user, assistant(call_1), tool, assistant(call_2 custom), tool, assistant text, user */
    assert_int_equal(json_array_size(msgs), 8);
    json_t *custom_call = json_array_get(json_object_get(json_array_get(msgs, 4), "tool_calls"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(custom_call, "function"), "arguments")),
        "{\"input\":\"*** Begin Patch\"}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 5), "content")),
                        "Done");
    assert_string_equal(json_string_value(json_object_get(j, "prompt_cache_key")), "thread-1");
    assert_string_equal(json_string_value(json_object_get(j, "reasoning_effort")), "medium");
    assert_true(json_is_true(json_object_get(j, "parallel_tool_calls")));
    json_decref(j);
}

static void codex_to_messages(void **state)
{
    (void)state;
    json_t *j = convert_ok(API_RESPONSES, API_MESSAGES, NULL, codex_body, NULL);
    json_t *tools = json_object_get(j, "tools");
    assert_int_equal(json_array_size(tools), 4);
    assert_non_null(json_object_get(
        json_object_get(find_tool(tools, "apply_patch", false), "input_schema"), "properties"));
    assert_false(tu_has_key(j, "defer_loading"));
    assert_false(tu_has_key(j, "prompt_cache_key"));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "system"), 0), "text")),
        "You are Codex.");
    /* roles alternate, every tool_use is answered right after it */
    json_t *msgs = json_object_get(j, "messages");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        assert_string_equal(role, i % 2 == 0 ? "user" : "assistant");
    }
    json_t *a1 = json_object_get(json_array_get(msgs, 1), "content");
    json_t *use = json_array_get(a1, json_array_size(a1) - 1);
    assert_string_equal(json_string_value(json_object_get(use, "type")), "tool_use");
    assert_true(json_is_array(json_object_get(json_object_get(use, "input"), "command")));
    json_t *u2 = json_object_get(json_array_get(msgs, 2), "content");
    assert_string_equal(json_string_value(json_object_get(json_array_get(u2, 0), "type")),
                        "tool_result");
    /* OpenAI reasoning cannot be replayed to Claude: no thinking block, thinking requested fresh */
    assert_false(tu_has_key(msgs, "signature"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "thinking"), "type")),
                        "enabled");
    json_decref(j);
}

/* ---- tool names, thinking rules, sampling rules ---- */

static void long_tool_names_shortened(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"claude\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":"
        "\"x\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":"
        "\"mcp__a_very_long_server_name__with_a_very_long_tool_name_that_goes_on_and_on\","
        "\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":\"ok\"}]}],"
        "\"tools\":[{\"name\":\"mcp__a_very_long_server_name__with_a_very_long_tool_name_that_goes_"
        "on_and_on\","
        "\"input_schema\":{\"type\":\"object\"}},{\"name\":\"short\",\"input_schema\":{\"type\":"
        "\"object\"}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":"
        "\"mcp__a_very_long_server_name__with_a_very_long_tool_name_that_goes_on_and_on\"}}";
    struct conv *cv = NULL;
    json_t *j = convert_ok(API_MESSAGES, API_CHAT, NULL, body, &cv);
    assert_int_equal(cv->n_tool_names, 1);
    struct slice up = cv->tool_names[0].upstream;
    assert_int_equal(up.n, 64);
    assert_memory_equal(up.p, "mcp__a_very_long_server_name__with_a_very_long_tool_name", 55);
    assert_int_equal(up.p[55], '_');
    const char *tn = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(j, "tools"), 0), "function"), "name"));
    assert_memory_equal(tn, up.p, up.n);
    assert_string_equal(
        tn, json_string_value(json_object_get(
                json_object_get(json_object_get(j, "tool_choice"), "function"), "name")));
    json_t *call = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "messages"), 1), "tool_calls"), 0);
    assert_string_equal(
        tn, json_string_value(json_object_get(json_object_get(call, "function"), "name")));
    assert_string_equal(
        "short",
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "tools"), 1), "function"), "name")));
    json_decref(j);
}

static void thinking_rules_for_claude(void **state)
{
    (void)state;
    /* a tool loop whose assistant turn has no signed thinking: thinking is turned off */
    const char *body =
        "{\"model\":\"c\",\"reasoning_effort\":\"high\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
        "\"c1\","
        "\"content\":\"r\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    struct conv *cv = NULL;
    json_t *j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, &cv);
    assert_null(json_object_get(j, "thinking"));
    assert_false(cv->thinking_sent);
    json_decref(j);
    /* forced tool + thinking: the tool choice wins */
    body = "{\"model\":\"c\",\"reasoning_effort\":\"high\",\"tool_choice\":\"required\","
           "\"messages\":[{\"role\":"
           "\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
           "\"f\"}}]}";
    j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, NULL);
    assert_null(json_object_get(j, "thinking"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "tool_choice"), "type")), "any");
    /* a schema-less A tool gets an object schema */
    json_t *schema =
        json_object_get(json_array_get(json_object_get(j, "tools"), 0), "input_schema");
    assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
    json_decref(j);
    /* no cap: max_tokens leaves room for the budget */
    body = "{\"model\":\"c\",\"reasoning_effort\":\"max\",\"messages\":[{\"role\":\"user\","
           "\"content\":\"x\"}]}";
    j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "thinking"), "budget_tokens")),
        16384);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 16384 + 1024);
    json_decref(j);
    /* model_max_output clamps */
    struct ir_profile p;
    ir_profile_defaults(&p);
    p.model_max_output = 2000;
    body = "{\"model\":\"c\",\"max_tokens\":9000,\"messages\":[{\"role\":\"user\",\"content\":"
           "\"x\"}]}";
    j = convert_ok(API_CHAT, API_MESSAGES, &p, body, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 2000);
    json_decref(j);
}

static void sampling_rules_for_claude(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"c\",\"temperature\":0.5,\"top_p\":0.8,\"top_k\":40,\"messages\":[{\"role\":"
        "\"user\",\"content\":\"x\"}],\"stop\":[\"\",\"  \",\"END\"]}";
    json_t *j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, NULL);
    assert_true(json_number_value(json_object_get(j, "temperature")) == 0.5);
    assert_null(json_object_get(j, "top_p"));
    assert_int_equal(json_integer_value(json_object_get(j, "top_k")), 40);
    assert_int_equal(json_array_size(json_object_get(j, "stop_sequences")), 1);
    json_decref(j);
    /* a newer anthropic-version: sampling left out (Addendum 2) */
    struct ir_profile p;
    ir_profile_defaults(&p);
    p.anthropic_version = SLICE_LIT("2026-10-21");
    j = convert_ok(API_CHAT, API_MESSAGES, &p, body, NULL);
    assert_null(json_object_get(j, "temperature"));
    assert_null(json_object_get(j, "top_p"));
    assert_null(json_object_get(j, "top_k"));
    json_decref(j);
    /* user ids that look like an e-mail or a phone number are not forwarded to Claude */
    j = convert_ok(API_CHAT, API_MESSAGES, NULL,
                   "{\"model\":\"c\",\"user\":\"ann@example.com\",\"messages\":[{\"role\":\"user\","
                   "\"content\":\"x\"}]}",
                   NULL);
    assert_null(json_object_get(j, "metadata"));
    json_decref(j);
}

static void json_object_mode_and_tool_trick_with_client_tools(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"c\",\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":"
        "\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"f\",\"parameters\":{\"type\":\"object\"}}}]}";
    struct conv *cv = NULL;
    json_t *j = convert_ok(API_CHAT, API_MESSAGES, NULL, body, &cv);
    assert_true(cv->json_tool_trick);
    assert_false(cv->json_tool_forced); /* the client's own tools stay callable */
    json_t *tools = json_object_get(j, "tools");
    assert_int_equal(json_array_size(tools), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 1), "name")),
                        CONV_JSON_TOOL_NAME);
    assert_true(json_is_true(json_object_get(
        json_object_get(json_array_get(tools, 1), "input_schema"), "additionalProperties")));
    assert_null(json_object_get(j, "tool_choice"));
    json_decref(j);
    /* json_object has no native form: the trick even with a native-structured-output profile */
    struct ir_profile p;
    ir_profile_defaults(&p);
    p.claude_structured_output_native = true;
    j = convert_ok(API_CHAT, API_MESSAGES, &p,
                   "{\"model\":\"c\",\"response_format\":{\"type\":\"json_object\"},\"messages\":[{"
                   "\"role\":\"user\",\"content\":\"x\"}]}",
                   &cv);
    assert_true(cv->json_tool_trick);
    assert_true(cv->json_tool_forced);
    assert_null(json_object_get(j, "output_config"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "tool_choice"), "name")),
        CONV_JSON_TOOL_NAME);
    json_decref(j);
}

static void legacy_completions_defaults(void **state)
{
    (void)state;
    json_t *j = convert_ok(
        API_COMPLETIONS, API_CHAT, NULL,
        "{\"model\":\"m\",\"prompt\":[\"Say hi\"],\"echo\":true,\"logprobs\":3,\"stream\":true}",
        NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 16);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "messages"), 0), "content")),
                        "Say hi");
    assert_null(json_object_get(j, "logprobs"));
    assert_null(json_object_get(j, "echo"));
    json_decref(j);
}

static void token_estimate(void **state)
{
    (void)state;
    pool_t *pool = pool_create();
    struct ir_request req;
    struct conv_error err;
    char body[2048];
    char text[401];
    memset(text, 'a', 400);
    text[400] = 0;
    snprintf(
        body, sizeof body,
        "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
        text);
    assert_int_equal(conv_request_decode(API_MESSAGES, pool, slice_from(body), &req, &err), 0);
    long plain = conv_count_tokens_estimate(&req);
    assert_int_equal(plain, 100 + 4);
    snprintf(body, sizeof body,
             "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
             "\"type\":\"text\","
             "\"text\":\"%s\"},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://"
             "x/y.png\"}}]}],"
             "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}]}",
             text);
    assert_int_equal(conv_request_decode(API_MESSAGES, pool, slice_from(body), &req, &err), 0);
    long more = conv_count_tokens_estimate(&req);
    assert_true(more > plain + 1600);
    assert_true(more < plain + 1600 + 20);
    assert_true(conv_count_tokens_estimate(NULL) == 0);
    pool_destroy(pool);
}

/* The response half's view: a shortened name maps back, a custom tool's call unwraps. */
static void tool_call_fixup(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"custom\",\"name\":\"apply_patch\"}"
        ","
        "{\"type\":\"namespace\",\"name\":\"mcp__fs\",\"tools\":[{\"type\":\"function\",\"name\":"
        "\"read_file_with_a_name_long_enough_to_need_shortening_for_openai_yes\"}]}]}";
    pool_t *pool = pool_create();
    struct ir_request req;
    struct conv_error err;
    assert_int_equal(conv_request_decode(API_RESPONSES, pool, slice_from(body), &req, &err), 0);
    struct ir_profile prof;
    ir_profile_defaults(&prof);
    struct conv *cv = conv_new(pool, API_RESPONSES, API_CHAT, &prof, &req, req.model);
    struct slice out;
    assert_int_equal(conv_encode_request(cv, &out, &err), 0);
    assert_int_equal(cv->n_tool_names, 1);
    struct ir_part call = {.kind = IR_PART_TOOL_CALL};
    call.call.name = cv->tool_names[0].upstream;
    call.call.args = SLICE_LIT("{\"path\":\"a\"}");
    const struct ir_tool *t = conv_tool_call_fixup(cv, &call);
    assert_non_null(t);
    assert_true(slice_eq_str(
        call.call.name, "read_file_with_a_name_long_enough_to_need_shortening_for_openai_yes"));
    assert_true(slice_eq_str(t->ns, "mcp__fs"));
    assert_false(call.call.custom);
    struct ir_part c2 = {.kind = IR_PART_TOOL_CALL};
    c2.call.name = SLICE_LIT("apply_patch");
    c2.call.args = SLICE_LIT("{\"input\":\"*** Begin Patch\\n\"}");
    t = conv_tool_call_fixup(cv, &c2);
    assert_non_null(t);
    assert_true(c2.call.custom);
    assert_true(slice_eq_str(c2.call.args, "*** Begin Patch\n"));
    struct ir_part c3 = {.kind = IR_PART_TOOL_CALL};
    c3.call.name = SLICE_LIT("unknown");
    assert_null(conv_tool_call_fixup(cv, &c3));
    assert_true(slice_eq_str(c3.call.name, "unknown"));
    pool_destroy(pool);
}

/* ---- robustness: every value of a realistic body replaced, one at a time, by a value of
 * another type; each conversion must end in a body that parses or a clear 400 ---- */

static long mutations;

static void convert_mutant(enum api_format client, json_t *root)
{
    char *body = json_dumps(root, JSON_COMPACT);
    for (int up = 0; up < 3; up++) {
        struct ir_profile prof;
        ir_profile_defaults(&prof);
        pool_t *pool = pool_create();
        struct slice out;
        struct conv_error err;
        int rc = tu_convert(pool, client, (enum api_format)up, &prof, slice_from(body), &out, &err,
                            NULL);
        if (rc == 0) {
            json_t *j = json_loadb(out.p, out.n, JSON_REJECT_DUPLICATES, NULL);
            if (!j) fail_msg("invalid output for %s", body);
            json_decref(j);
        } else {
            if (err.status != 400 || !err.message[0])
                fail_msg("status %d for %s", err.status, body);
        }
        pool_destroy(pool);
        mutations++;
    }
    free(body);
}

static void mutate_walk(enum api_format client, json_t *root, json_t *v)
{
    json_t *repl[] = {json_null(),  json_integer(-3), json_string("x"),
                      json_array(), json_object(),    json_true()};
    size_t nr = sizeof repl / sizeof *repl;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, x)
        {
            json_t *old = json_incref(x);
            for (size_t r = 0; r < nr; r++) {
                json_object_set(v, k, repl[r]);
                convert_mutant(client, root);
            }
            json_object_set(v, k, old);
            mutate_walk(client, root, old);
            json_decref(old);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *old = json_incref(json_array_get(v, i));
            for (size_t r = 0; r < nr; r++) {
                json_array_set(v, i, repl[r]);
                convert_mutant(client, root);
            }
            json_array_set(v, i, old);
            mutate_walk(client, root, old);
            json_decref(old);
        }
    }
    for (size_t r = 0; r < nr; r++) json_decref(repl[r]);
}

static void mutated_bodies_never_crash(void **state)
{
    (void)state;
    struct {
        enum api_format f;
        const char *body;
    } seeds[] = {{API_MESSAGES, claude_code_body}, {API_RESPONSES, codex_body}};
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        json_t *root = json_loads(seeds[i].body, 0, NULL);
        assert_non_null(root);
        mutate_walk(seeds[i].f, root, root);
        json_decref(root);
    }
    static const char *vectors[] = {"TV1_text_system_a_to_b",       "TV5_parallel_a_to_b",
                                    "TV6_tool_result_image_b_to_a", "TV7_responses_to_chat",
                                    "TV8_chat_to_responses",        "TV19_repair_a_to_b",
                                    "TV15_completions_to_messages"};
    static const enum api_format fmt[] = {API_CHAT, API_CHAT, API_MESSAGES,   API_RESPONSES,
                                          API_CHAT, API_CHAT, API_COMPLETIONS};
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/vectors/%s/input.json", METARELAY_SOURCE_DIR,
                 vectors[i]);
        json_t *root = json_load_file(path, 0, NULL);
        assert_non_null(root);
        mutate_walk(fmt[i], root, root);
        json_decref(root);
    }
    assert_true(mutations > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_json_and_types),
        cmocka_unit_test(tool_result_without_call),
        cmocka_unit_test(empty_content_array),
        cmocka_unit_test(unknown_content_type),
        cmocka_unit_test(oversized_image),
        cmocka_unit_test(invalid_tool_schema),
        cmocka_unit_test(same_format_only_features),
        cmocka_unit_test(claude_code_to_chat),
        cmocka_unit_test(claude_code_to_responses),
        cmocka_unit_test(codex_to_chat),
        cmocka_unit_test(codex_to_messages),
        cmocka_unit_test(long_tool_names_shortened),
        cmocka_unit_test(thinking_rules_for_claude),
        cmocka_unit_test(sampling_rules_for_claude),
        cmocka_unit_test(json_object_mode_and_tool_trick_with_client_tools),
        cmocka_unit_test(legacy_completions_defaults),
        cmocka_unit_test(token_estimate),
        cmocka_unit_test(tool_call_fixup),
        cmocka_unit_test(mutated_bodies_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
