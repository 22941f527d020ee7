/* test_protocol_custom_tools.c — calls of a client's free-form `custom` tools and of tools
 * declared inside a `namespace`, as Codex sends them (its default model's tools arrive in an
 * `additional_tools` input item: a `functions` namespace holding the custom tool `exec` and
 * function tools), converted through an upstream that has neither (Messages, Chat).
 *
 * The upstream sees a function tool with one string parameter `input`; its call must reach
 * the client as a `custom_tool_call` with the free text as `input` (Codex refuses a
 * function_call for a custom tool: "tool exec invoked with incompatible payload"), in a
 * stream and in a non-stream answer, with the tool's namespace repeated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "protocol/ir.h"
#include "stream_test_util.h"

/* The shape of Codex 0.169's first request with its default model (trimmed). */
static const char codex_body[] =
    "{\"model\":\"gpt-6.1-sol\",\"stream\":true,\"store\":false,"
    "\"include\":[\"reasoning.encrypted_content\"],\"tool_choice\":\"auto\","
    "\"parallel_tool_calls\":false,\"reasoning\":{\"effort\":\"medium\"},"
    "\"prompt_cache_key\":\"t1\",\"input\":["
    "{\"type\":\"additional_tools\",\"id\":\"at_1\",\"role\":\"developer\",\"tools\":["
    "{\"type\":\"namespace\",\"name\":\"functions\",\"description\":\"\",\"tools\":["
    "{\"type\":\"custom\",\"name\":\"exec\",\"description\":\"Run JavaScript\","
    "\"format\":{\"type\":\"grammar\",\"syntax\":\"lark\",\"definition\":\"start: /.+/\"}},"
    "{\"type\":\"function\",\"name\":\"wait\",\"description\":\"Waits\",\"strict\":false,"
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"cell_id\":{\"type\":\"string\"}},"
    "\"required\":[\"cell_id\"]}}]},"
    "{\"type\":\"tool_search\"}]},"
    "{\"type\":\"message\",\"id\":\"m1\",\"role\":\"developer\",\"content\":"
    "[{\"type\":\"input_text\",\"text\":\"You are Codex.\"}]},"
    "{\"type\":\"message\",\"id\":\"m2\",\"role\":\"user\",\"content\":"
    "[{\"type\":\"input_text\",\"text\":\"please use tool exec\"}]}]}";

/* A string member, or "(missing)" so that a failed assertion prints instead of crashing. */
static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "(missing)";
}

struct fixture {
    pool_t *pool;
    struct ir_request req;
    struct ir_profile prof;
    struct conv *cv;
    struct buf out;
};

static void setup_conv(struct fixture *f, enum api_format client, const char *body,
                       enum api_format upstream, struct slice *upstream_body)
{
    memset(f, 0, sizeof *f);
    f->pool = pool_create();
    struct conv_error err;
    memset(&err, 0, sizeof err);
    int rc = conv_request_decode(client, f->pool, slice_from(body), &f->req, &err);
    if (rc != 0) fprintf(stderr, "decode: %s\n", err.message);
    assert_int_equal(rc, 0);
    ir_profile_defaults(&f->prof);
    f->cv = conv_new(f->pool, client, upstream, &f->prof, &f->req, f->req.model);
    assert_non_null(f->cv);
    f->cv->created = TEST_CLOCK;
    rc = conv_encode_request(f->cv, upstream_body, &err);
    if (rc != 0) fprintf(stderr, "encode: %s\n", err.message);
    assert_int_equal(rc, 0);
}

static void fixture_free(struct fixture *f)
{
    buf_free(&f->out);
    pool_destroy(f->pool);
}

/* The upstream tool list names `exec` with the one string parameter `input`. */
static void test_upstream_sees_a_function_tool(void **state)
{
    (void)state;
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_RESPONSES, codex_body, API_MESSAGES, &up);
    json_t *body = json_loadb(up.p, up.n, 0, NULL);
    assert_non_null(body);
    json_t *tools = json_object_get(body, "tools");
    assert_int_equal(json_array_size(tools), 2); /* tool_search is dropped */
    json_t *exec = json_array_get(tools, 0);
    assert_string_equal(jstr(exec, "name"), "exec");
    json_t *props = json_object_get(json_object_get(exec, "input_schema"), "properties");
    assert_string_equal(jstr(json_object_get(props, "input"), "type"), "string");
    json_decref(body);
    fixture_free(&f);
}

/* A Messages stream calling `name` with the input JSON cut into fragments. */
static void feed_messages_tool_stream(struct fixture *f, const char *name,
                                      const char *const *fragments, size_t n_fragments)
{
    char start[256];
    snprintf(start, sizeof start,
             "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
             "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"%s\",\"input\":{}}}",
             name);
    assert_int_equal(
        conv_stream_event(f->cv, SLICE_LIT("message_start"),
                          SLICE_LIT("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
                                    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
                                    "\"content\":[],\"usage\":{\"input_tokens\":5,"
                                    "\"output_tokens\":1}}}"),
                          &f->out),
        0);
    assert_int_equal(
        conv_stream_event(f->cv, SLICE_LIT("content_block_start"), slice_from(start), &f->out), 0);
    for (size_t i = 0; i < n_fragments; i++) {
        json_t *d = json_pack("{sssis{ssss}}", "type", "content_block_delta", "index", 0, "delta",
                              "type", "input_json_delta", "partial_json", fragments[i]);
        char *s = json_dumps(d, JSON_COMPACT);
        assert_int_equal(
            conv_stream_event(f->cv, SLICE_LIT("content_block_delta"), slice_from(s), &f->out), 0);
        free(s);
        json_decref(d);
    }
    assert_int_equal(conv_stream_event(f->cv, SLICE_LIT("content_block_stop"),
                                       SLICE_LIT("{\"type\":\"content_block_stop\",\"index\":0}"),
                                       &f->out),
                     0);
    assert_int_equal(
        conv_stream_event(f->cv, SLICE_LIT("message_delta"),
                          SLICE_LIT("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                    "\"tool_use\"},\"usage\":{\"output_tokens\":7}}"),
                          &f->out),
        0);
    assert_int_equal(conv_stream_event(f->cv, SLICE_LIT("message_stop"),
                                       SLICE_LIT("{\"type\":\"message_stop\"}"), &f->out),
                     0);
    assert_int_equal(conv_stream_end(f->cv, &f->out), 0);
    buf_nul(&f->out);
}

/* The JSON data of the first event named `name` (caller decrefs), or NULL. */
static json_t *event_data(const struct fixture *f, const char *name, size_t nth)
{
    struct sse_list l;
    sse_list_parse(f->out.p, f->out.n, &l);
    json_t *found = NULL;
    for (size_t i = 0; i < l.n && !found; i++)
        if (l.v[i].name && !strcmp(l.v[i].name, name) && nth-- == 0)
            found = json_loads(l.v[i].data, 0, NULL);
    sse_list_free(&l);
    return found;
}

/* The item of the output_item.done event that is not reasoning or a message. */
static json_t *call_item_done(const struct fixture *f)
{
    for (size_t k = 0; k < 8; k++) {
        json_t *ev = event_data(f, "response.output_item.done", k);
        if (!ev) return NULL;
        json_t *item = json_object_get(ev, "item");
        const char *type = jstr(item, "type");
        if (type && strstr(type, "call")) {
            json_incref(item);
            json_decref(ev);
            return item;
        }
        json_decref(ev);
    }
    return NULL;
}

static void test_stream_custom_call(void **state)
{
    (void)state;
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_RESPONSES, codex_body, API_MESSAGES, &up);
    /* the JS text contains a quote and a newline, split inside an escape */
    const char *frags[] = {"{\"inp", "ut\":\"console.log(\\", "\"hi\\\")\\n1+1\"}"};
    feed_messages_tool_stream(&f, "exec", frags, 3);

    json_t *added = event_data(&f, "response.output_item.added", 0);
    assert_non_null(added);
    json_t *item = json_object_get(added, "item");
    assert_string_equal(jstr(item, "type"), "custom_tool_call");
    assert_string_equal(jstr(item, "input"), "");
    assert_string_equal(jstr(item, "namespace"), "functions");
    json_decref(added);

    assert_null(strstr(f.out.p, "function_call_arguments")); /* no JSON fragments leak */
    json_t *done = event_data(&f, "response.custom_tool_call_input.done", 0);
    assert_non_null(done);
    assert_string_equal(jstr(done, "input"), "console.log(\"hi\")\n1+1");
    json_decref(done);

    json_t *call = call_item_done(&f);
    assert_non_null(call);
    assert_string_equal(jstr(call, "type"), "custom_tool_call");
    assert_string_equal(jstr(call, "name"), "exec");
    assert_string_equal(jstr(call, "call_id"), "toolu_1");
    assert_string_equal(jstr(call, "input"), "console.log(\"hi\")\n1+1");
    assert_null(json_object_get(call, "arguments"));
    json_decref(call);

    /* response.completed carries the same item */
    json_t *completed = event_data(&f, "response.completed", 0);
    assert_non_null(completed);
    json_t *out = json_object_get(json_object_get(completed, "response"), "output");
    json_t *last = json_array_get(out, json_array_size(out) - 1);
    assert_string_equal(jstr(last, "type"), "custom_tool_call");
    assert_string_equal(jstr(last, "input"), "console.log(\"hi\")\n1+1");
    json_decref(completed);
    fixture_free(&f);
}

/* A function tool of the namespace stays a function_call, with its namespace. */
static void test_stream_namespaced_function_call(void **state)
{
    (void)state;
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_RESPONSES, codex_body, API_MESSAGES, &up);
    const char *frags[] = {"{\"cell_id\":", "\"c1\"}"};
    feed_messages_tool_stream(&f, "wait", frags, 2);
    assert_non_null(strstr(f.out.p, "response.function_call_arguments.delta"));
    json_t *call = call_item_done(&f);
    assert_non_null(call);
    assert_string_equal(jstr(call, "type"), "function_call");
    assert_string_equal(jstr(call, "namespace"), "functions");
    assert_string_equal(jstr(call, "arguments"), "{\"cell_id\":\"c1\"}");
    json_decref(call);
    fixture_free(&f);
}

/* Arguments that are not {"input": "…"} are passed on as they came (never dropped). */
static void test_stream_custom_call_odd_arguments(void **state)
{
    (void)state;
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_RESPONSES, codex_body, API_MESSAGES, &up);
    const char *frags[] = {"{\"code\":", "\"1+1\"}"};
    feed_messages_tool_stream(&f, "exec", frags, 2);
    json_t *call = call_item_done(&f);
    assert_non_null(call);
    assert_string_equal(jstr(call, "type"), "custom_tool_call");
    assert_string_equal(jstr(call, "input"), "{\"code\":\"1+1\"}");
    json_decref(call);
    fixture_free(&f);
}

static const char messages_answer[] =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
    "\"content\":[{\"type\":\"text\",\"text\":\"running it\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"exec\",\"input\":{\"input\":\"1+1\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"wait\",\"input\":{\"cell_id\":\"c1\"}}],"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}";

static void test_non_stream_responses_client(void **state)
{
    (void)state;
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_RESPONSES, codex_body, API_MESSAGES, &up);
    struct conv_error err;
    assert_int_equal(conv_convert_response(f.cv, SLICE_LIT(messages_answer), &f.out, &err), 0);
    json_t *r = json_loadb(f.out.p, f.out.n, 0, NULL);
    assert_non_null(r);
    json_t *output = json_object_get(r, "output");
    assert_int_equal(json_array_size(output), 3);
    json_t *c = json_array_get(output, 1);
    assert_string_equal(jstr(c, "type"), "custom_tool_call");
    assert_string_equal(jstr(c, "input"), "1+1");
    assert_string_equal(jstr(c, "namespace"), "functions");
    json_t *fn = json_array_get(output, 2);
    assert_string_equal(jstr(fn, "type"), "function_call");
    assert_string_equal(jstr(fn, "namespace"), "functions");
    assert_string_equal(jstr(fn, "arguments"), "{\"cell_id\":\"c1\"}");
    json_decref(r);
    fixture_free(&f);
}

/* A Chat client's custom tool (tools[].type "custom") gets a tool call of type custom. */
static void test_non_stream_chat_client(void **state)
{
    (void)state;
    static const char chat_body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"exec\",\"description\":\"JS\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"wait\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"cell_id\":{\"type\":\"string\"}}}}}]}";
    struct fixture f;
    struct slice up;
    setup_conv(&f, API_CHAT, chat_body, API_MESSAGES, &up);
    struct conv_error err;
    assert_int_equal(conv_convert_response(f.cv, SLICE_LIT(messages_answer), &f.out, &err), 0);
    json_t *r = json_loadb(f.out.p, f.out.n, 0, NULL);
    assert_non_null(r);
    json_t *calls = json_object_get(
        json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message"), "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    json_t *c = json_array_get(calls, 0);
    assert_string_equal(jstr(c, "type"), "custom");
    assert_string_equal(jstr(json_object_get(c, "custom"), "input"), "1+1");
    json_t *fn = json_array_get(calls, 1);
    assert_string_equal(jstr(fn, "type"), "function");
    json_decref(r);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_sees_a_function_tool),
        cmocka_unit_test(test_stream_custom_call),
        cmocka_unit_test(test_stream_namespaced_function_call),
        cmocka_unit_test(test_stream_custom_call_odd_arguments),
        cmocka_unit_test(test_non_stream_responses_client),
        cmocka_unit_test(test_non_stream_chat_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
