/* test_protocol_response_matrix.c — every upstream format (Chat, Messages, Responses) ×
 * every client format (Chat, Messages, Responses, legacy Completions) for a text answer,
 * a parallel tool-call answer and a thinking + text answer: each output is read back
 * with the client format's own rules and must say the same thing. Then the finer rules:
 * tool names restored, argument repair for Claude, signature wrapping, redacted thinking,
 * refusals, the JSON-mode tool trick with client tools, think-tag splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "response_test_util.h"

/* ---------- upstream bodies ---------- */

enum answer { ANS_TEXT, ANS_TOOLS, ANS_THINKING };

static const char *const UPSTREAM[3][3] = {
    [API_CHAT] =
        {
            [ANS_TEXT] = "{\"id\":\"chatcmpl-u1\",\"object\":\"chat.completion\",\"created\":"
                         "1767225000,\"model\":\"up-model\",\"choices\":[{\"index\":0,\"message\":"
                         "{\"role\":\"assistant\",\"content\":\"Hello there.\"},\"finish_reason\":"
                         "\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,"
                         "\"total_tokens\":13}}",
            [ANS_TOOLS] =
                "{\"id\":\"chatcmpl-u1\",\"object\":\"chat.completion\",\"created\":1767225000,"
                "\"model\":\"up-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":[{\"id\":\"call_a\","
                "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                "\"{\\\"city\\\":\\\"Oslo\\\"}\"}},{\"id\":\"call_b\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":\\\"Europe/"
                "Oslo\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":"
                "10,\"completion_tokens\":3,\"total_tokens\":13}}",
            [ANS_THINKING] =
                "{\"id\":\"chatcmpl-u1\",\"object\":\"chat.completion\",\"created\":1767225000,"
                "\"model\":\"up-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"Answer.\",\"reasoning_content\":\"Think hard.\"},"
                "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
                "\"completion_tokens\":3,\"total_tokens\":13,\"completion_tokens_details\":{"
                "\"reasoning_tokens\":2}}}",
        },
    [API_MESSAGES] =
        {
            [ANS_TEXT] = "{\"id\":\"msg_u1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                         "\"up-model\",\"content\":[{\"type\":\"text\",\"text\":\"Hello there.\"}],"
                         "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
                         "\"input_tokens\":10,\"output_tokens\":3}}",
            [ANS_TOOLS] =
                "{\"id\":\"msg_u1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"up-"
                "model\",\"content\":[{\"type\":\"text\",\"text\":\"Let me check.\"},{\"type\":"
                "\"tool_use\",\"id\":\"call_a\",\"name\":\"get_weather\",\"input\":{\"city\":"
                "\"Oslo\"}},{\"type\":\"tool_use\",\"id\":\"call_b\",\"name\":\"get_time\","
                "\"input\":{\"tz\":\"Europe/Oslo\"}}],\"stop_reason\":\"tool_use\","
                "\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":3}}",
            [ANS_THINKING] =
                "{\"id\":\"msg_u1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"up-"
                "model\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Think hard.\","
                "\"signature\":\"SigX\"},{\"type\":\"text\",\"text\":\"Answer.\"}],"
                "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
                "\"input_tokens\":10,\"output_tokens\":3}}",
        },
    [API_RESPONSES] =
        {
            [ANS_TEXT] = "{\"id\":\"resp_u1\",\"object\":\"response\",\"created_at\":1767225000,"
                         "\"status\":\"completed\",\"model\":\"up-model\",\"output\":[{\"id\":"
                         "\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":"
                         "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello "
                         "there.\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":10,"
                         "\"output_tokens\":3,\"total_tokens\":13},\"error\":null}",
            [ANS_TOOLS] =
                "{\"id\":\"resp_u1\",\"object\":\"response\",\"created_at\":1767225000,\"status\":"
                "\"completed\",\"model\":\"up-model\",\"output\":[{\"id\":\"msg_1\",\"type\":"
                "\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{"
                "\"type\":\"output_text\",\"text\":\"Let me check.\",\"annotations\":[]}]},{"
                "\"id\":\"fc_a\",\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":"
                "\"call_a\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}"
                "\"},{\"id\":\"fc_b\",\"type\":\"function_call\",\"status\":\"completed\","
                "\"call_id\":\"call_b\",\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":"
                "\\\"Europe/Oslo\\\"}\"}],\"usage\":{\"input_tokens\":10,\"output_tokens\":3,"
                "\"total_tokens\":13}}",
            [ANS_THINKING] =
                "{\"id\":\"resp_u1\",\"object\":\"response\",\"created_at\":1767225000,\"status\":"
                "\"completed\",\"model\":\"up-model\",\"output\":[{\"id\":\"rs_1\",\"type\":"
                "\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"Think hard.\"}],"
                "\"encrypted_content\":\"ENC\"},{\"id\":\"msg_1\",\"type\":\"message\",\"status\":"
                "\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
                "\"text\":\"Answer.\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":10,"
                "\"output_tokens\":3,\"total_tokens\":13,\"output_tokens_details\":{"
                "\"reasoning_tokens\":2}}}",
        },
};

/* ---------- reading a client answer back ---------- */

/* What an answer says, whatever its format. */
struct said {
    char text[256], thinking[256], signature[128];
    struct {
        char id[64], name[64];
        json_t *args; /* parsed */
    } calls[4];
    int n_calls;
    bool tool_turn; /* the finish says "tool calls" */
    long in, out;
};

static void cat(char *dst, size_t cap, const char *s)
{
    if (s) strncat(dst, s, cap - strlen(dst) - 1);
}

static void add_call(struct said *s, const char *id, const char *name, json_t *args_obj,
                     const char *args_text)
{
    assert_true(s->n_calls < 4);
    snprintf(s->calls[s->n_calls].id, 64, "%s", id ? id : "");
    snprintf(s->calls[s->n_calls].name, 64, "%s", name ? name : "");
    json_error_t e;
    s->calls[s->n_calls].args = args_obj ? json_incref(args_obj) : json_loads(args_text, 0, &e);
    assert_non_null(s->calls[s->n_calls].args);
    s->n_calls++;
}

static void read_back(enum api_format client, json_t *o, struct said *s)
{
    memset(s, 0, sizeof *s);
    json_t *u = json_object_get(o, "usage");
    if (client == API_CHAT || client == API_COMPLETIONS) {
        json_t *c = json_array_get(json_object_get(o, "choices"), 0);
        assert_non_null(c);
        assert_int_equal(json_integer_value(json_object_get(c, "index")), 0);
        s->in = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
        s->out = (long)json_integer_value(json_object_get(u, "completion_tokens"));
        assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), s->in + s->out);
        const char *fin = json_string_value(json_object_get(c, "finish_reason"));
        s->tool_turn = strcmp(fin, "tool_calls") == 0;
        if (client == API_COMPLETIONS) {
            assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
            assert_true(json_is_null(json_object_get(c, "logprobs")));
            cat(s->text, sizeof s->text, json_string_value(json_object_get(c, "text")));
            return;
        }
        assert_string_equal(json_string_value(json_object_get(o, "object")), "chat.completion");
        json_t *m = json_object_get(c, "message");
        assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
        cat(s->text, sizeof s->text, json_string_value(json_object_get(m, "content")));
        cat(s->thinking, sizeof s->thinking,
            json_string_value(json_object_get(m, "reasoning_content")));
        size_t i;
        json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), i, tc)
        {
            json_t *fn = json_object_get(tc, "function");
            assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
            add_call(s, json_string_value(json_object_get(tc, "id")),
                     json_string_value(json_object_get(fn, "name")), NULL,
                     json_string_value(json_object_get(fn, "arguments")));
        }
        return;
    }
    if (client == API_MESSAGES) {
        assert_string_equal(json_string_value(json_object_get(o, "type")), "message");
        s->in = (long)json_integer_value(json_object_get(u, "input_tokens"));
        s->out = (long)json_integer_value(json_object_get(u, "output_tokens"));
        s->tool_turn =
            strcmp(json_string_value(json_object_get(o, "stop_reason")), "tool_use") == 0;
        size_t i;
        json_t *b;
        json_array_foreach(json_object_get(o, "content"), i, b)
        {
            const char *type = json_string_value(json_object_get(b, "type"));
            if (strcmp(type, "text") == 0) {
                assert_true(json_is_null(json_object_get(b, "citations")));
                cat(s->text, sizeof s->text, json_string_value(json_object_get(b, "text")));
            } else if (strcmp(type, "thinking") == 0) {
                cat(s->thinking, sizeof s->thinking,
                    json_string_value(json_object_get(b, "thinking")));
                assert_true(json_is_string(json_object_get(b, "signature")));
                cat(s->signature, sizeof s->signature,
                    json_string_value(json_object_get(b, "signature")));
            } else if (strcmp(type, "tool_use") == 0) {
                assert_true(json_is_object(json_object_get(b, "input")));
                add_call(s, json_string_value(json_object_get(b, "id")),
                         json_string_value(json_object_get(b, "name")), json_object_get(b, "input"),
                         NULL);
            }
        }
        return;
    }
    /* Responses */
    assert_string_equal(json_string_value(json_object_get(o, "object")), "response");
    s->in = (long)json_integer_value(json_object_get(u, "input_tokens"));
    s->out = (long)json_integer_value(json_object_get(u, "output_tokens"));
    assert_true(json_is_object(json_object_get(u, "input_tokens_details")));
    assert_true(json_is_object(json_object_get(u, "output_tokens_details")));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(o, "output"), i, it)
    {
        const char *type = json_string_value(json_object_get(it, "type"));
        assert_non_null(json_string_value(json_object_get(it, "id")));
        if (strcmp(type, "message") == 0) {
            assert_string_equal(json_string_value(json_object_get(it, "status")), "completed");
            size_t k;
            json_t *part;
            json_array_foreach(json_object_get(it, "content"), k, part)
            {
                assert_true(json_is_array(json_object_get(part, "annotations")));
                cat(s->text, sizeof s->text, json_string_value(json_object_get(part, "text")));
            }
        } else if (strcmp(type, "reasoning") == 0) {
            json_t *sum = json_array_get(json_object_get(it, "summary"), 0);
            cat(s->thinking, sizeof s->thinking, json_string_value(json_object_get(sum, "text")));
            cat(s->signature, sizeof s->signature,
                json_string_value(json_object_get(it, "encrypted_content")));
        } else if (strcmp(type, "function_call") == 0) {
            s->tool_turn = true;
            add_call(s, json_string_value(json_object_get(it, "call_id")),
                     json_string_value(json_object_get(it, "name")), NULL,
                     json_string_value(json_object_get(it, "arguments")));
        }
    }
    assert_string_equal(json_string_value(json_object_get(o, "status")), "completed");
}

static void said_free(struct said *s)
{
    for (int i = 0; i < s->n_calls; i++) json_decref(s->calls[i].args);
}

static const char *const ID_PREFIX[] = {"chatcmpl-", "msg_", "resp_", "cmpl-"};

static void convert_and_read(enum api_format up, enum api_format client, enum answer ans,
                             struct said *s, struct rt *t)
{
    rt_init(t, client, up, "client-model");
    t->req.include_encrypted_reasoning = true;
    json_t *o = rt_convert(t, UPSTREAM[up][ans]);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "client-model");
    const char *id = json_string_value(json_object_get(o, "id"));
    assert_non_null(id);
    assert_true(strncmp(id, ID_PREFIX[client], strlen(ID_PREFIX[client])) == 0);
    read_back(client, o, s);
    assert_int_equal(s->in, 10);
    assert_int_equal(s->out, 3);
    json_decref(o);
}

static void test_text_every_pair(void **state)
{
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            struct rt t;
            struct said s;
            convert_and_read(up, cl, ANS_TEXT, &s, &t);
            assert_string_equal(s.text, "Hello there.");
            assert_string_equal(s.thinking, "");
            assert_int_equal(s.n_calls, 0);
            assert_false(s.tool_turn);
            assert_int_equal(t.cv.usage.input_total, 10);
            assert_int_equal(t.cv.usage.output_total, 3);
            said_free(&s);
            rt_free(&t);
        }
}

static void test_parallel_tools_every_pair(void **state)
{
    json_t *want_a = json_pack("{ss}", "city", "Oslo");
    json_t *want_b = json_pack("{ss}", "tz", "Europe/Oslo");
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            struct rt t;
            struct said s;
            convert_and_read(up, cl, ANS_TOOLS, &s, &t);
            assert_string_equal(s.text, "Let me check.");
            if (cl == API_COMPLETIONS) { /* no tool calls in legacy completions */
                assert_int_equal(s.n_calls, 0);
                said_free(&s);
                rt_free(&t);
                continue;
            }
            assert_true(s.tool_turn);
            assert_int_equal(s.n_calls, 2);
            assert_string_equal(s.calls[0].id, "call_a");
            assert_string_equal(s.calls[0].name, "get_weather");
            assert_true(json_equal(s.calls[0].args, want_a));
            assert_string_equal(s.calls[1].id, "call_b");
            assert_string_equal(s.calls[1].name, "get_time");
            assert_true(json_equal(s.calls[1].args, want_b));
            said_free(&s);
            rt_free(&t);
        }
    json_decref(want_a);
    json_decref(want_b);
}

static void test_thinking_every_pair(void **state)
{
    /* The signature each client sees: raw for its own vendor, wrapped for another
     * (§2.7), "" when the upstream had none. */
    static const char *const sig[3][3] = {
        [API_CHAT] = {[API_MESSAGES] = "", [API_RESPONSES] = ""},
        [API_MESSAGES] = {[API_MESSAGES] = "SigX", [API_RESPONSES] = "gw1:anthropic:SigX"},
        [API_RESPONSES] = {[API_MESSAGES] = "gw1:openai:rs_1:ENC", [API_RESPONSES] = "ENC"},
    };
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++) {
            struct rt t;
            struct said s;
            convert_and_read(up, cl, ANS_THINKING, &s, &t);
            assert_string_equal(s.text, "Answer.");
            assert_string_equal(s.thinking, cl == API_COMPLETIONS ? "" : "Think hard.");
            if (cl == API_MESSAGES || cl == API_RESPONSES)
                assert_string_equal(s.signature, sig[up][cl]);
            if (up != API_MESSAGES) assert_int_equal(t.cv.usage.reasoning, 2);
            said_free(&s);
            rt_free(&t);
        }
}

/* ---------- finer rules ---------- */

static void test_tool_names_restored(void **state)
{
    static struct conv_tool_name map[] = {
        {SLICE_LIT("mcp__server.with.dots__a_really_long_tool_name"), SLICE_LIT("mcp_short_1a2b")},
    };
    const char *a_body =
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"mcp_short_1a2b\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    t.cv.tool_names = map;
    t.cv.n_tool_names = 1;
    json_t *o = rt_convert(&t, a_body);
    json_t *b = json_array_get(json_object_get(o, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(b, "name")),
                        "mcp__server.with.dots__a_really_long_tool_name");
    assert_string_equal(json_string_value(json_object_get(o, "stop_reason")), "tool_use");
    json_decref(o);
    rt_free(&t);
}

/* A Responses client's `custom` tool went to a Chat or Claude upstream as a function with
 * one string parameter `input`: the call comes back as a custom_tool_call carrying the
 * free text, under the client's name even when that was shortened upstream. */
static void test_custom_tool_unwrapped(void **state)
{
    static const char *const long_name =
        "apply_patch_with_a_name_that_is_far_too_long_for_an_openai_upstream_x"; /* 70 */
    static struct conv_tool_name map[] = {{SLICE_LIT(""), SLICE_LIT("apply_patch_short_1a2b3c4d")}};
    map[0].original = slice_from(long_name);
    struct ir_tool tools[2] = {{.name = SLICE_LIT("apply_patch"), .custom = true},
                               {.name = SLICE_LIT(""), .custom = true}};
    tools[1].name = slice_from(long_name);
    const char *a_body =
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"apply_patch\",\"arguments\":\"{\\\"input\\\":\\\"*** Begin "
        "Patch\\\\n\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":"
        "\"apply_patch_short_1a2b3c4d\",\"arguments\":\"{\\\"input\\\":\\\"x\\\"}\"}}]},"
        "\"finish_reason\":\"tool_calls\"}]}";
    const char *b_body = "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
                         "\"apply_patch\",\"input\":{\"input\":\"*** Begin Patch\\n\"}}],"
                         "\"stop_reason\":\"tool_use\"}";
    for (int up = API_CHAT; up <= API_MESSAGES; up++) {
        struct rt t;
        rt_init(&t, API_RESPONSES, (enum api_format)up, "m");
        t.req.tools = tools;
        t.req.n_tools = 2;
        t.cv.tool_names = map;
        t.cv.n_tool_names = 1;
        json_t *o = rt_convert(&t, up == API_CHAT ? a_body : b_body);
        json_t *out = json_object_get(o, "output");
        assert_int_equal(json_array_size(out), up == API_CHAT ? 2 : 1);
        json_t *c = json_array_get(out, 0);
        assert_string_equal(json_string_value(json_object_get(c, "type")), "custom_tool_call");
        assert_string_equal(json_string_value(json_object_get(c, "name")), "apply_patch");
        assert_string_equal(json_string_value(json_object_get(c, "input")), "*** Begin Patch\n");
        assert_null(json_object_get(c, "arguments"));
        if (up == API_CHAT) {
            c = json_array_get(out, 1);
            assert_string_equal(json_string_value(json_object_get(c, "type")), "custom_tool_call");
            assert_string_equal(json_string_value(json_object_get(c, "name")), long_name);
            assert_string_equal(json_string_value(json_object_get(c, "input")), "x");
        }
        json_decref(o);
        rt_free(&t);
    }

    /* arguments that are not {"input": "…"}: passed on as the upstream sent them */
    const char *odd = "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
                      "\"apply_patch\",\"input\":{\"patch\":1}}],\"stop_reason\":\"tool_use\"}";
    struct rt t;
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    t.req.tools = tools;
    t.req.n_tools = 1;
    json_t *o = rt_convert(&t, odd);
    json_t *c = json_array_get(json_object_get(o, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "function_call");
    assert_string_equal(json_string_value(json_object_get(c, "arguments")), "{\"patch\":1}");
    json_decref(o);
    rt_free(&t);
}

/* Arguments from an OpenAI upstream become Claude's `input` object (§2.4). */
static void check_input(const char *args_json_string, const char *want_input)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
             "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"arguments\":%s}}]},\"finish_reason\":\"tool_calls\"}]}",
             args_json_string);
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    json_t *o = rt_convert(&t, body);
    json_t *input = json_object_get(json_array_get(json_object_get(o, "content"), 0), "input");
    json_error_t e;
    json_t *want = json_loads(want_input, 0, &e);
    rt_assert_json_equal(args_json_string, input, want);
    json_decref(want);
    json_decref(o);
    rt_free(&t);
}

static void test_arguments_to_claude_input(void **state)
{
    check_input("\"{\\\"path\\\":\\\".\\\"}\"", "{\"path\":\".\"}");
    /* double-encoded: a JSON string holding the object */
    check_input("\"\\\"{\\\\\\\"path\\\\\\\":\\\\\\\".\\\\\\\"}\\\"\"", "{\"path\":\".\"}");
    check_input("\"\"", "{}");
    check_input("\"   \"", "{}");
    check_input("\"{not json\"", "{}");
    check_input("\"[1,2]\"", "{}");
    check_input("\"42\"", "{}");
    check_input("{\"as\":\"object\"}", "{\"as\":\"object\"}"); /* vendors sending an object */
    check_input("null", "{}");
}

static void test_numbers_keep_their_text(void **state)
{
    /* Claude input → OpenAI arguments: compact, and 59.91 is not 59.909999999999997 */
    const char *b_body =
        "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
        "\"f\",\"input\":{\"lat\": 59.91, \"n\": 3, \"big\": 1e300, \"s\":\"\\u00e9\\n\"}}],"
        "\"stop_reason\":\"tool_use\"}";
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    json_t *o = rt_convert(&t, b_body);
    json_t *m = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    const char *args = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function"),
        "arguments"));
    assert_string_equal(args, "{\"lat\":59.91,\"n\":3,\"big\":1e+300,\"s\":\"\xc3\xa9\\n\"}");
    json_decref(o);
    rt_free(&t);
}

static void test_redacted_thinking(void **state)
{
    const char *b_body = "{\"id\":\"msg_r\",\"content\":[{\"type\":\"redacted_thinking\",\"data\":"
                         "\"REDACTED\"},{\"type\":\"text\",\"text\":\"Ok.\"}],\"stop_reason\":"
                         "\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
    struct rt t;
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    t.req.include_encrypted_reasoning = true;
    json_t *o = rt_convert(&t, b_body);
    json_t *out = json_object_get(o, "output");
    assert_int_equal(json_array_size(out), 2);
    json_t *rs = json_array_get(out, 0);
    assert_string_equal(json_string_value(json_object_get(rs, "id")), "rs_msg_r_0");
    assert_int_equal(json_array_size(json_object_get(rs, "summary")), 0);
    assert_string_equal(json_string_value(json_object_get(rs, "encrypted_content")),
                        "gw1:anthropic-redacted:REDACTED");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 1), "id")),
                        "msg_msg_r_1");
    json_decref(o);
    rt_free(&t);

    /* without include: the redacted item is left out, the message is output 0 */
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    o = rt_convert(&t, b_body);
    out = json_object_get(o, "output");
    assert_int_equal(json_array_size(out), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "type")),
                        "message");
    json_decref(o);
    rt_free(&t);

    /* Chat with thinking blocks (litellm convention): wrapped data */
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    t.profile.chat_emit_thinking_blocks = true;
    o = rt_convert(&t, b_body);
    json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    json_t *tb = json_array_get(json_object_get(msg, "thinking_blocks"), 0);
    assert_string_equal(json_string_value(json_object_get(tb, "type")), "redacted_thinking");
    assert_string_equal(json_string_value(json_object_get(tb, "data")),
                        "gw1:anthropic-redacted:REDACTED");
    json_decref(o);
    rt_free(&t);
}

static void test_reasoning_field_profiles(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    t.profile.chat_reasoning_field = IR_REASONING_FIELD_REASONING;
    t.profile.chat_emit_thinking_blocks = true;
    json_t *o = rt_convert(&t, UPSTREAM[API_MESSAGES][ANS_THINKING]);
    json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning")), "Think hard.");
    assert_null(json_object_get(msg, "reasoning_content"));
    json_t *tb = json_array_get(json_object_get(msg, "thinking_blocks"), 0);
    assert_string_equal(json_string_value(json_object_get(tb, "signature")), "gw1:anthropic:SigX");
    json_decref(o);
    rt_free(&t);

    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    t.profile.chat_reasoning_field = IR_REASONING_FIELD_NONE;
    o = rt_convert(&t, UPSTREAM[API_MESSAGES][ANS_THINKING]);
    msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    assert_null(json_object_get(msg, "reasoning"));
    assert_null(json_object_get(msg, "reasoning_content"));
    assert_null(json_object_get(msg, "thinking_blocks"));
    json_decref(o);
    rt_free(&t);

    /* without include, a Responses client gets no encrypted_content */
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    o = rt_convert(&t, UPSTREAM[API_MESSAGES][ANS_THINKING]);
    json_t *rs = json_array_get(json_object_get(o, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(rs, "type")), "reasoning");
    assert_null(json_object_get(rs, "encrypted_content"));
    json_decref(o);
    rt_free(&t);
}

static void test_refusal(void **state)
{
    const char *a_body = "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":null,\"refusal\":\"I can't help with that.\"},"
                         "\"finish_reason\":\"stop\"}]}";
    struct rt t;
    rt_init(&t, API_RESPONSES, API_CHAT, "m");
    json_t *o = rt_convert(&t, a_body);
    json_t *part = json_array_get(
        json_object_get(json_array_get(json_object_get(o, "output"), 0), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "type")), "refusal");
    assert_string_equal(json_string_value(json_object_get(part, "refusal")),
                        "I can't help with that.");
    json_decref(o);
    rt_free(&t);

    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    o = rt_convert(&t, a_body);
    json_t *b = json_array_get(json_object_get(o, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(b, "text")), "I can't help with that.");
    json_decref(o);
    rt_free(&t);

    /* Responses refusal → Chat refusal field, content null */
    const char *c_body = "{\"id\":\"resp_r\",\"status\":\"completed\",\"output\":[{\"type\":"
                         "\"message\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"No.\"}]}]}";
    rt_init(&t, API_CHAT, API_RESPONSES, "m");
    o = rt_convert(&t, c_body);
    json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
    assert_true(json_is_null(json_object_get(msg, "content")));
    assert_string_equal(json_string_value(json_object_get(msg, "refusal")), "No.");
    json_decref(o);
    rt_free(&t);
}

static void test_json_tool_trick_variants(void **state)
{
    /* {"values": …} wrapping is undone */
    const char *values = "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
                         "\"json_tool_call\",\"input\":{\"values\":{\"a\":1}}}],\"stop_reason\":"
                         "\"tool_use\"}";
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    t.req.rf.kind = IR_RF_JSON_OBJECT;
    t.cv.json_tool_trick = true; /* what conv_encode_request decided */
    json_t *o = rt_convert(&t, values);
    json_t *c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "message"), "content")), "{\"a\":1}");
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
    json_decref(o);
    rt_free(&t);

    /* a client tool called alongside: the JSON tool is dropped, the client's call stays */
    const char *both = "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
                       "\"json_tool_call\",\"input\":{\"a\":1}},{\"type\":\"tool_use\",\"id\":"
                       "\"t2\",\"name\":\"lookup\",\"input\":{}}],\"stop_reason\":\"tool_use\"}";
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    t.req.rf.kind = IR_RF_JSON_SCHEMA;
    t.cv.json_tool_trick = true;
    o = rt_convert(&t, both);
    json_t *out = json_object_get(o, "output");
    assert_int_equal(json_array_size(out), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "name")),
                        "lookup");
    json_decref(o);
    rt_free(&t);

    /* no JSON mode asked: a tool named json_tool_call is an ordinary tool */
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    o = rt_convert(&t, values);
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "tool_calls");
    json_decref(o);
    rt_free(&t);

    /* the request asks for JSON but the encoder did not use the trick (e.g. native
     * structured output): the flag the encoder set decides, not the request */
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    t.req.rf.kind = IR_RF_JSON_OBJECT;
    o = rt_convert(&t, values);
    c = json_array_get(json_object_get(o, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "tool_calls");
    json_decref(o);
    rt_free(&t);
}

static void test_think_tag_split(void **state)
{
    const char *a_body = "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"<think>Hmm.</think>\\n\\nHi!\"},"
                         "\"finish_reason\":\"stop\"}]}";
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    t.profile.think_tag_split = true;
    json_t *o = rt_convert(&t, a_body);
    json_t *content = json_object_get(o, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "thinking")),
                        "Hmm.");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 1), "text")),
                        "Hi!");
    json_decref(o);
    rt_free(&t);
}

static void test_responses_items_and_ids(void **state)
{
    /* text, tool, text: two message items around the call; ids from the response id */
    const char *b_body = "{\"id\":\"msg_9\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{"
                         "\"type\":\"tool_use\",\"id\":\"call.1/x\",\"name\":\"f\",\"input\":{}},"
                         "{\"type\":\"text\",\"text\":\"B\"}],\"stop_reason\":\"tool_use\"}";
    struct rt t;
    rt_init(&t, API_RESPONSES, API_MESSAGES, "m");
    t.req.max_output_tokens = 100;
    t.req.parallel_tool_calls = 0;
    json_t *o = rt_convert(&t, b_body);
    json_t *out = json_object_get(o, "output");
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "id")),
                        "msg_msg_9_0");
    json_t *fc = json_array_get(out, 1);
    assert_string_equal(json_string_value(json_object_get(fc, "id")), "fc_call_1_x");
    assert_string_equal(json_string_value(json_object_get(fc, "call_id")), "call.1/x");
    assert_string_equal(json_string_value(json_object_get(fc, "arguments")), "{}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 2), "id")),
                        "msg_msg_9_2");
    /* request echoes */
    assert_int_equal(json_integer_value(json_object_get(o, "max_output_tokens")), 100);
    assert_true(json_is_false(json_object_get(o, "parallel_tool_calls")));
    assert_true(json_is_false(json_object_get(o, "store")));
    assert_string_equal(json_string_value(json_object_get(o, "tool_choice")), "auto");
    assert_null(json_object_get(o, "output_text"));
    json_decref(o);
    rt_free(&t);
}

static void test_created_and_ids(void **state)
{
    /* upstream created kept for A; the gateway clock for B upstreams; ids prefixed once */
    struct rt t;
    rt_init(&t, API_CHAT, API_CHAT, "m");
    json_t *o = rt_convert(&t, UPSTREAM[API_CHAT][ANS_TEXT]);
    assert_int_equal(json_integer_value(json_object_get(o, "created")), 1767225000);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "chatcmpl-u1");
    json_decref(o);
    rt_free(&t);

    rt_init(&t, API_RESPONSES, API_CHAT, "m");
    o = rt_convert(&t, "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":"
                       "\"stop\"}]}");
    const char *id = json_string_value(json_object_get(o, "id"));
    assert_true(strncmp(id, "resp_", 5) == 0 && strlen(id) > 10); /* generated */
    assert_int_equal(json_integer_value(json_object_get(o, "created_at")), RT_CLOCK);
    json_decref(o);
    rt_free(&t);

    /* without a client model name the upstream's is used */
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    t.cv.client_model = SLICE_NULL;
    o = rt_convert(&t, UPSTREAM[API_CHAT][ANS_TEXT]);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "up-model");
    json_decref(o);
    rt_free(&t);
}

static void test_missing_tool_id_generated(void **state)
{
    const char *a_body = "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                         "\"assistant\",\"tool_calls\":[{\"type\":\"function\",\"function\":{"
                         "\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"stop\"}]}";
    struct rt t;
    rt_init(&t, API_MESSAGES, API_CHAT, "m");
    json_t *o = rt_convert(&t, a_body);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(o, "content"), 0), "id"));
    assert_true(strncmp(id, "call_", 5) == 0 && strlen(id) == 29);
    assert_string_equal(json_string_value(json_object_get(o, "stop_reason")), "tool_use");
    json_decref(o);
    rt_free(&t);
}

static void test_usage_details(void **state)
{
    /* Responses usage with cache reads and writes → Claude and Chat */
    const char *c_body = "{\"id\":\"resp_u\",\"status\":\"completed\",\"output\":[],\"usage\":{"
                         "\"input_tokens\":150,\"input_tokens_details\":{\"cached_tokens\":100,"
                         "\"cache_write_tokens\":30},\"output_tokens\":9,\"output_tokens_details\":"
                         "{\"reasoning_tokens\":5},\"total_tokens\":159}}";
    struct rt t;
    rt_init(&t, API_MESSAGES, API_RESPONSES, "m");
    json_t *o = rt_convert(&t, c_body);
    json_t *u = json_object_get(o, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 20);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 100);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_creation_input_tokens")), 30);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 9);
    assert_int_equal(json_array_size(json_object_get(o, "content")), 0);
    json_decref(o);
    rt_free(&t);

    rt_init(&t, API_CHAT, API_RESPONSES, "m");
    o = rt_convert(&t, c_body);
    json_error_t e;
    json_t *want = json_loads("{\"prompt_tokens\":150,\"completion_tokens\":9,\"total_tokens\":159,"
                              "\"prompt_tokens_details\":{\"cached_tokens\":100,"
                              "\"cache_write_tokens\":30},\"completion_tokens_details\":{"
                              "\"reasoning_tokens\":5}}",
                              0, &e);
    rt_assert_json_equal("usage", json_object_get(o, "usage"), want);
    json_decref(want);
    json_decref(o);
    rt_free(&t);
}

static void test_nul_in_text(void **state)
{
    struct rt t;
    rt_init(&t, API_CHAT, API_MESSAGES, "m");
    json_t *o = rt_convert(&t, "{\"id\":\"m\",\"content\":[{\"type\":\"text\",\"text\":"
                               "\"a\\u0000b\"}],\"stop_reason\":\"end_turn\"}");
    json_t *c = json_object_get(
        json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message"), "content");
    assert_int_equal(json_string_length(c), 3);
    assert_memory_equal(json_string_value(c), "a\0b", 3);
    json_decref(o);
    rt_free(&t);
}

/* A context without a decoded request or a profile still converts every pair. */
static void test_without_request_or_profile(void **state)
{
    for (int up = API_CHAT; up <= API_RESPONSES; up++)
        for (int cl = API_CHAT; cl <= API_COMPLETIONS; cl++)
            for (int ans = ANS_TEXT; ans <= ANS_THINKING; ans++) {
                struct rt t;
                rt_init(&t, cl, up, "m");
                t.cv.req = NULL;
                t.cv.profile = NULL;
                json_t *o = rt_convert(&t, UPSTREAM[up][ans]);
                json_decref(o);
                rt_free(&t);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_every_pair),
        cmocka_unit_test(test_parallel_tools_every_pair),
        cmocka_unit_test(test_thinking_every_pair),
        cmocka_unit_test(test_tool_names_restored),
        cmocka_unit_test(test_custom_tool_unwrapped),
        cmocka_unit_test(test_arguments_to_claude_input),
        cmocka_unit_test(test_numbers_keep_their_text),
        cmocka_unit_test(test_redacted_thinking),
        cmocka_unit_test(test_reasoning_field_profiles),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_json_tool_trick_variants),
        cmocka_unit_test(test_think_tag_split),
        cmocka_unit_test(test_responses_items_and_ids),
        cmocka_unit_test(test_created_and_ids),
        cmocka_unit_test(test_missing_tool_id_generated),
        cmocka_unit_test(test_usage_details),
        cmocka_unit_test(test_nul_in_text),
        cmocka_unit_test(test_without_request_or_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
