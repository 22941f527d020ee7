/* test_protocol_stream_edge.c — stream conversion edge cases and bad input: malformed event
 * data for every upstream (→ -1, then a clean error event in the client's format), every
 * truncation of real events (never a crash), the memory budget, duplicate argument replays,
 * usage on every chunk, interleaved parallel tool fragments, tool-name reverse mapping,
 * events without names, several JSON objects in one data field, redacted thinking, stop
 * sequences and incomplete responses, errors raised by the gateway itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "stream_test_util.h"

struct run {
    pool_t *pool;
    struct conv *cv;
    struct ir_request req;
    struct buf out;
    int rc;  /* first non-zero conv_stream_event result */
    int end; /* conv_stream_end result (when called) */
    struct sse_list got;
};

/* Feeds `n` (event name, data) pairs; name NULL = no event line. */
static void run_events(struct run *r, enum api_format client, enum api_format up,
                       const char *const *evs, size_t n, bool eof)
{
    memset(r, 0, sizeof *r);
    r->req.stream = true;
    r->req.include_encrypted_reasoning = true;
    r->pool = pool_create();
    r->cv = test_conv(r->pool, client, up, &r->req, "m");
    for (size_t i = 0; i < n && r->rc == 0; i++)
        r->rc =
            conv_stream_event(r->cv, slice_from(evs[2 * i]), slice_from(evs[2 * i + 1]), &r->out);
    if (eof) r->end = conv_stream_end(r->cv, &r->out);
    buf_nul(&r->out);
    sse_list_parse(r->out.p ? r->out.p : "", r->out.n, &r->got);
}

static void run_free(struct run *r)
{
    sse_list_free(&r->got);
    buf_free(&r->out);
    pool_destroy(r->pool);
}

static bool out_has(struct run *r, const char *s)
{
    return r->out.p && strstr(r->out.p, s);
}

/* ---- malformed input ---------------------------------------------------------------- */

static const char *const bad_chat[] = {
    "not json",
    "[1,2]",
    "{\"choices\":\"x\"}",
    "{\"choices\":[{\"index\":0,\"delta\":\"x\"}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":5}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":{}}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":\"0\"}]}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":3}]}}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":7}]}",
    "{\"choices\":[],\"usage\":[]}",
    "{\"a\":1,\"a\":2}",
    "{\"a\":1} trailing",
    "{}{",
};

static const char *const bad_messages[] = {
    "{\"type\":\"message_start\",\"message\":\"x\"}",
    "{\"type\":\"content_block_start\",\"index\":\"0\",\"content_block\":{\"type\":\"text\"}}",
    "{\"type\":\"content_block_start\",\"index\":0}",
    "{\"type\":\"content_block_delta\",\"index\":0}",
    "{\"type\":\"content_block_stop\"}",
    "{\"type\":\"message_delta\",\"delta\":[]}",
    "{\"type\":\"message_delta\",\"delta\":{},\"usage\":5}",
    "{\"type\":\"message_start\"",
};

static const char *const bad_responses[] = {
    "{\"type\":\"response.created\",\"response\":3}",
    "{\"type\":\"response.output_item.added\",\"item\":\"x\"}",
    "{\"type\":\"response.output_item.done\",\"output_index\":0}",
    "{\"type\":\"response.completed\",\"response\":null}",
    "{\"type\":\"response.failed\"}",
    "{\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":5}",
};

static void bad_case(enum api_format client, enum api_format up, const char *data)
{
    /* a well-formed start, so that items exist for the item-level cases */
    const char *start_c =
        "{\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"x\"}}";
    const char *item_c = "{\"type\":\"response.output_item.added\",\"output_index\":0,"
                         "\"item\":{\"id\":\"m1\",\"type\":\"message\"}}";
    const char *start_b = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":"
                          "\"x\",\"usage\":{\"input_tokens\":1}}}";
    const char *evs[6];
    size_t n = 0;
    if (up == API_RESPONSES) {
        evs[0] = NULL, evs[1] = start_c, evs[2] = NULL, evs[3] = item_c;
        n = 2;
    } else if (up == API_MESSAGES) {
        evs[0] = NULL, evs[1] = start_b;
        n = 1;
    }
    evs[2 * n] = NULL;
    evs[2 * n + 1] = data;
    struct run r;
    run_events(&r, client, up, evs, n + 1, false);
    if (r.rc != -1)
        fail_msg("%s → %s: \"%s\" was accepted", api_format_name(up), api_format_name(client),
                 data);
    size_t before = r.out.n;
    conv_stream_error(r.cv, 502, NULL, SLICE_LIT("bad upstream data"), &r.out);
    assert_true(r.out.n > before);
    buf_nul(&r.out);
    assert_non_null(strstr(r.out.p + before, "bad upstream data"));
    struct conv_error err;
    assert_int_equal(conv_stream_status(r.cv, &err, NULL), CONV_STREAM_FAILED);
    assert_int_equal(err.status, 502);
    /* nothing after the error: neither events, nor a second error, nor an end */
    size_t after = r.out.n;
    assert_int_equal(conv_stream_event(r.cv, SLICE_NULL, slice_from(data), &r.out), 0);
    conv_stream_error(r.cv, 500, NULL, SLICE_LIT("again"), &r.out);
    assert_int_equal(conv_stream_end(r.cv, &r.out), -1);
    assert_int_equal(r.out.n, after);
    /* the error frame is the client's */
    struct sse_list l;
    sse_list_parse(r.out.p + before, after - before, &l);
    assert_true(l.n >= 1);
    if (client == API_MESSAGES) assert_string_equal(l.v[0].name, "error");
    if (client == API_RESPONSES) {
        assert_string_equal(l.v[0].name, "error");
        assert_string_equal(l.v[l.n - 1].name, "response.failed");
    }
    if (client == API_CHAT || client == API_COMPLETIONS) {
        assert_null(l.v[0].name);
        assert_non_null(strstr(l.v[0].data, "\"error\""));
        assert_null(strstr(r.out.p, "[DONE]"));
    }
    sse_list_free(&l);
    run_free(&r);
}

static void test_malformed(void **state)
{
    (void)state;
    for (int client = API_CHAT; client <= API_COMPLETIONS; client++) {
        for (size_t i = 0; i < sizeof bad_chat / sizeof *bad_chat; i++)
            bad_case(client, API_CHAT, bad_chat[i]);
        for (size_t i = 0; i < sizeof bad_messages / sizeof *bad_messages; i++)
            bad_case(client, API_MESSAGES, bad_messages[i]);
        for (size_t i = 0; i < sizeof bad_responses / sizeof *bad_responses; i++)
            bad_case(client, API_RESPONSES, bad_responses[i]);
        bad_case(client, API_MESSAGES, "not json");
        bad_case(client, API_RESPONSES, "\"a string\"");
    }
}

/* Every prefix of every event of the vectors, as data: no crash, no leak, 0 or -1. */
static void test_truncations(void **state)
{
    (void)state;
    static const struct {
        const char *dir;
        enum api_format up;
    } files[] = {{"TV9_stream_b_to_a", API_MESSAGES},
                 {"TV10_stream_a_to_b", API_CHAT},
                 {"TV12_stream_c_to_b", API_RESPONSES}};
    for (size_t f = 0; f < 3; f++) {
        char rel[128];
        size_t n = 0;
        snprintf(rel, sizeof rel, "tests/vectors/%s/input.sse", files[f].dir);
        char *s = load_file(rel, &n);
        assert_non_null(s);
        struct sse_list in;
        sse_list_parse(s, n, &in);
        free(s);
        for (int client = API_CHAT; client <= API_COMPLETIONS; client++) {
            for (size_t e = 0; e < in.n; e++) {
                size_t len = strlen(in.v[e].data);
                for (size_t cut = 0; cut < len; cut++) {
                    pool_t *pool = pool_create();
                    struct ir_request req = {.stream = true, .include_encrypted_reasoning = true};
                    struct conv *cv = test_conv(pool, client, files[f].up, &req, "m");
                    struct buf out = BUF_INIT;
                    assert_int_equal(feed_events(cv, &in, 0, e, &out), 0);
                    struct slice name = in.v[e].name ? slice_from(in.v[e].name) : SLICE_NULL;
                    int rc = conv_stream_event(cv, name, (struct slice){in.v[e].data, cut}, &out);
                    assert_true(rc == 0 || rc == -1);
                    if (rc == -1) conv_stream_error(cv, 502, NULL, SLICE_LIT("x"), &out);
                    conv_stream_end(cv, &out);
                    assert_int_not_equal(conv_stream_status(cv, NULL, NULL), CONV_STREAM_OPEN);
                    buf_free(&out);
                    pool_destroy(pool);
                }
            }
        }
        sse_list_free(&in);
    }
}

/* ---- memory budget ------------------------------------------------------------------ */

static void test_budget(void **state)
{
    (void)state;
    char big[1100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char delta[1300];
    snprintf(delta, sizeof delta,
             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
             "\"text\":\"%s\"}}",
             big);
    pool_t *pool = pool_create();
    struct ir_request req = {.stream = true};
    struct conv *cv = test_conv(pool, API_RESPONSES, API_MESSAGES, &req, "m");
    cv->stream_max_bytes = 8192;
    struct buf out = BUF_INIT;
    assert_int_equal(conv_stream_event(cv, SLICE_NULL,
                                       SLICE_LIT("{\"type\":\"message_start\",\"message\":{\"id\":"
                                                 "\"msg_1\",\"model\":\"x\"}}"),
                                       &out),
                     0);
    assert_int_equal(conv_stream_event(cv, SLICE_NULL,
                                       SLICE_LIT("{\"type\":\"content_block_start\",\"index\":0,"
                                                 "\"content_block\":{\"type\":\"text\",\"text\":"
                                                 "\"\"}}"),
                                       &out),
                     0);
    int rc = 0, i;
    for (i = 0; i < 100 && rc == 0; i++)
        rc = conv_stream_event(cv, SLICE_NULL, slice_from(delta), &out);
    assert_int_equal(rc, -1);
    assert_true(i < 20); /* stopped near the budget, not at the end of the input */
    struct conv_error err;
    assert_int_equal(conv_stream_status(cv, &err, NULL), CONV_STREAM_FAILED);
    buf_nul(&out);
    assert_non_null(strstr(out.p, "event: error"));
    assert_non_null(strstr(out.p, "event: response.failed"));
    assert_non_null(strstr(out.p, "memory limit"));
    /* the gateway's conv_stream_error after -1 adds nothing */
    size_t n = out.n;
    conv_stream_error(cv, 502, NULL, SLICE_LIT("y"), &out);
    assert_int_equal(out.n, n);
    buf_free(&out);
    pool_destroy(pool);
}

/* ---- Chat upstream quirks ----------------------------------------------------------- */

#define CHUNK(delta)                                                                               \
    "{\"id\":\"c1\",\"model\":\"u\",\"choices\":[{\"index\":0,\"delta\":" delta "}]}"
#define TOOLDELTA(idx, rest) CHUNK("{\"tool_calls\":[{\"index\":" #idx rest "}]}")

static void test_duplicate_replay_and_usage_every_chunk(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        CHUNK("{\"role\":\"assistant\"}"),
        NULL,
        TOOLDELTA(0, ",\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}"),
        /* usage on every chunk (vLLM style) must not end the block */
        NULL,
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":1}}",
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\"1}\"}"),
        /* a replay of the whole, already complete, buffer */
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}"),
        NULL,
        CHUNK("{},\"finish_reason\":\"tool_calls\""),
        NULL,
        "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":"
        "9}}",
        NULL,
        "[DONE]",
    };
    struct run r;
    run_events(&r, API_MESSAGES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.end, 0);
    /* the deltas: {"a": then 1} — the replay dropped */
    int deltas = 0;
    for (size_t i = 0; i < r.got.n; i++)
        if (r.got.v[i].name && !strcmp(r.got.v[i].name, "content_block_delta")) deltas++;
    assert_int_equal(deltas, 2);
    assert_true(out_has(&r, "\"partial_json\":\"{\\\"a\\\":\""));
    assert_true(out_has(&r, "\"partial_json\":\"1}\""));
    assert_true(out_has(&r, "\"stop_reason\":\"tool_use\""));
    assert_true(out_has(&r, "\"output_tokens\":9"));
    assert_int_equal(r.cv->usage.output_total, 9);
    run_free(&r);
}

static void test_interleaved_parallel_tools(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        TOOLDELTA(0, ",\"id\":\"call_A\",\"function\":{\"name\":\"f\",\"arguments\":\"{"
                     "\\\"x\\\"\"}"),
        NULL,
        TOOLDELTA(1, ",\"id\":\"call_B\",\"function\":{\"name\":\"g\",\"arguments\":\"{"
                     "\\\"y\\\"\"}"),
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\":1}\"}"),
        NULL,
        TOOLDELTA(1, ",\"function\":{\"arguments\":\":2}\"}"),
        NULL,
        CHUNK("{},\"finish_reason\":\"tool_calls\""),
        NULL,
        "[DONE]",
    };
    /* Responses client: both items complete with their whole arguments */
    struct run r;
    run_events(&r, API_RESPONSES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_int_equal(r.end, 0);
    assert_true(
        out_has(&r, "\"call_id\":\"call_A\",\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\""));
    assert_true(
        out_has(&r, "\"call_id\":\"call_B\",\"name\":\"g\",\"arguments\":\"{\\\"y\\\":2}\""));
    run_free(&r);
    /* Messages client: indexes 0 and 1, every fragment addressed to its own index */
    run_events(&r, API_MESSAGES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_int_equal(r.end, 0);
    char args[2][64] = {"", ""};
    for (size_t i = 0; i < r.got.n; i++) {
        if (!r.got.v[i].name || strcmp(r.got.v[i].name, "content_block_delta")) continue;
        json_t *j = json_loads(r.got.v[i].data, 0, NULL);
        long idx = (long)json_integer_value(json_object_get(j, "index"));
        assert_true(idx == 0 || idx == 1);
        strcat(args[idx],
               json_string_value(json_object_get(json_object_get(j, "delta"), "partial_json")));
        json_decref(j);
    }
    assert_string_equal(args[0], "{\"x\":1}");
    assert_string_equal(args[1], "{\"y\":2}");
    run_free(&r);
    /* Chat client: dense indexes as they came */
    run_events(&r, API_CHAT, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_true(out_has(&r, "{\"index\":0,\"function\":{\"arguments\":\":1}\"}}"));
    assert_true(out_has(&r, "{\"index\":1,\"function\":{\"arguments\":\":2}\"}}"));
    run_free(&r);
}

static void test_chat_late_name_and_missing_id(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL, TOOLDELTA(0, ""), /* nothing known yet */
        NULL, TOOLDELTA(0, ",\"function\":{\"name\":\"late\"}"),
        NULL, TOOLDELTA(0, ",\"function\":{\"arguments\":\"{}\"}"),
        NULL, CHUNK("{},\"finish_reason\":\"stop\""), /* stop with a tool call: tool_use */
    };
    struct run r;
    run_events(&r, API_MESSAGES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_int_equal(r.end, 0); /* no [DONE]: finish seen, so a clean end */
    assert_true(out_has(&r, "\"name\":\"late\""));
    assert_true(out_has(&r, "\"id\":\"call_")); /* generated */
    assert_true(out_has(&r, "\"stop_reason\":\"tool_use\""));
    run_free(&r);
}

static void test_chat_second_choice_ignored_and_refusal(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        "{\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}},"
        "{\"index\":0,\"delta\":{\"content\":\"mine\"}}]}",
        NULL,
        CHUNK("{\"refusal\":\"no\"}"),
        NULL,
        CHUNK("{},\"finish_reason\":\"content_filter\""),
        NULL,
        "[DONE]",
    };
    struct run r;
    run_events(&r, API_RESPONSES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_false(out_has(&r, "other"));
    assert_true(out_has(&r, "\"type\":\"refusal\",\"refusal\":\"no\""));
    assert_true(out_has(&r, "event: response.incomplete"));
    assert_true(out_has(&r, "\"reason\":\"content_filter\""));
    run_free(&r);
    run_events(&r, API_MESSAGES, API_CHAT, evs, sizeof evs / sizeof *evs / 2, true);
    assert_true(out_has(&r, "\"text_delta\",\"text\":\"mine\""));
    assert_true(out_has(&r, "\"text_delta\",\"text\":\"no\""));
    assert_true(out_has(&r, "\"stop_reason\":\"refusal\""));
    run_free(&r);
}

/* ---- Messages upstream ------------------------------------------------------------- */

static void test_messages_redacted_stop_sequence_no_names(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\",\"model\":\"c\","
        "\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2}}}",
        NULL,
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"redacted_thinking\",\"data\":\"ENC\"}}",
        NULL,
        "{\"type\":\"content_block_stop\",\"index\":0}",
        NULL,
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
        "\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\"}}",
        NULL,
        "{\"type\":\"content_block_stop\",\"index\":1}",
        NULL,
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"text\","
        "\"text\":\"Hi\"}}",
        NULL,
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
        "\"citations_delta\",\"citation\":{}}}",
        NULL,
        "{\"type\":\"content_block_stop\",\"index\":2}",
        NULL,
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\","
        "\"stop_sequence\":\"END\"},\"usage\":{\"output_tokens\":4}}",
        NULL,
        "{\"type\":\"message_stop\"}",
    };
    size_t n = sizeof evs / sizeof *evs / 2;
    struct run r;
    run_events(&r, API_MESSAGES, API_MESSAGES, evs, n, true);
    assert_int_equal(r.end, 0);
    assert_true(out_has(&r, "\"type\":\"redacted_thinking\",\"data\":\"ENC\""));
    assert_false(out_has(&r, "web_search"));
    assert_true(out_has(&r, "\"index\":1,\"content_block\":{\"type\":\"text\""));
    assert_true(out_has(&r, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\""));
    assert_true(out_has(&r, "\"input_tokens\":5,\"cache_creation_input_tokens\":0,"
                            "\"cache_read_input_tokens\":2,\"output_tokens\":4"));
    run_free(&r);
    run_events(&r, API_RESPONSES, API_MESSAGES, evs, n, true);
    assert_true(out_has(&r, "\"encrypted_content\":\"gw1:anthropic-redacted:ENC\""));
    assert_true(out_has(&r, "\"input_tokens\":7"));
    run_free(&r);
    run_events(&r, API_CHAT, API_MESSAGES, evs, n, true);
    assert_true(out_has(&r, "\"content\":\"Hi\""));
    assert_true(out_has(&r, "\"finish_reason\":\"stop\""));
    assert_false(out_has(&r, "ENC"));
    run_free(&r);
}

static void test_messages_ping_only_is_an_error(void **state)
{
    (void)state;
    const char *evs[] = {"ping", "{\"type\":\"ping\"}"};
    for (int client = API_CHAT; client <= API_COMPLETIONS; client++) {
        struct run r;
        run_events(&r, client, API_MESSAGES, evs, 1, false);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.out.n, 0); /* a ping writes nothing */
        bool wrote = true;
        assert_int_equal(conv_stream_status(r.cv, NULL, &wrote), CONV_STREAM_OPEN);
        assert_false(wrote);
        assert_int_equal(conv_stream_end(r.cv, &r.out), -1);
        assert_int_equal(conv_stream_status(r.cv, NULL, &wrote), CONV_STREAM_FAILED);
        assert_false(wrote); /* only the error: an HTTP error may replace it */
        buf_nul(&r.out);
        assert_non_null(strstr(r.out.p, "upstream closed the stream"));
        assert_null(strstr(r.out.p, "[DONE]"));
        assert_null(strstr(r.out.p, "message_stop"));
        assert_null(strstr(r.out.p, "response.completed"));
        run_free(&r);
    }
}

static void test_tool_name_mapped_back(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        TOOLDELTA(0, ",\"id\":\"call_1\",\"function\":{\"name\":\"short_ab12\","
                     "\"arguments\":\"{}\"}"),
        NULL,
        CHUNK("{},\"finish_reason\":\"tool_calls\""),
        NULL,
        "[DONE]",
    };
    struct conv_tool_name map = {SLICE_LIT("a_very_long_original_tool_name"),
                                 SLICE_LIT("short_ab12")};
    for (int client = API_CHAT; client <= API_RESPONSES; client++) {
        struct run r;
        memset(&r, 0, sizeof r);
        r.pool = pool_create();
        r.cv = test_conv(r.pool, client, API_CHAT, &r.req, "m");
        r.cv->tool_names = &map;
        r.cv->n_tool_names = 1;
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(
                conv_stream_event(r.cv, SLICE_NULL, slice_from(evs[2 * i + 1]), &r.out), 0);
        buf_nul(&r.out);
        assert_non_null(strstr(r.out.p, "a_very_long_original_tool_name"));
        assert_null(strstr(r.out.p, "short_ab12"));
        run_free(&r);
    }
}

/* A Responses client's `custom` tool (Codex apply_patch) went upstream as a function with
 * one string parameter: its argument fragments are held until the block ends, and the
 * client gets a custom_tool_call with the free text (§2.3), under its own name. */
static void test_custom_tool_unwrapped(void **state)
{
    (void)state;
    const char *chat_evs[] = {
        NULL,
        CHUNK("{\"role\":\"assistant\",\"content\":\"\"}"),
        NULL,
        TOOLDELTA(0, ",\"id\":\"call_P\",\"function\":{\"name\":\"apply_patch\","
                     "\"arguments\":\"\"}"),
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\"{\\\"inp\"}"),
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\"ut\\\":\\\"*** Begin\"}"),
        NULL,
        TOOLDELTA(0, ",\"function\":{\"arguments\":\" Patch\\\\n\\\"}\"}"),
        NULL,
        CHUNK("{},\"finish_reason\":\"tool_calls\""),
        NULL,
        "[DONE]",
    };
    const char *msg_evs[] = {
        "message_start",
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":"
        "\"u\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_P\",\"name\":"
        "\"apply_patch\",\"input\":{}}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\"{\\\"input\\\":\\\"***\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\" Begin Patch\\\\n\\\"}\"}}",
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
        "\"usage\":{\"output_tokens\":9}}",
        "message_stop",
        "{\"type\":\"message_stop\"}",
    };
    struct ir_tool tool = {.name = SLICE_LIT("apply_patch"), .custom = true};
    for (int up = API_CHAT; up <= API_MESSAGES; up++) {
        const char *const *evs = up == API_CHAT ? chat_evs : msg_evs;
        size_t n = up == API_CHAT ? 7 : 7;
        struct run r;
        memset(&r, 0, sizeof r);
        r.req.stream = true;
        r.req.tools = &tool;
        r.req.n_tools = 1;
        r.pool = pool_create();
        r.cv = test_conv(r.pool, API_RESPONSES, (enum api_format)up, &r.req, "m");
        for (size_t i = 0; i < n; i++)
            assert_int_equal(
                conv_stream_event(r.cv, slice_from(evs[2 * i]), slice_from(evs[2 * i + 1]), &r.out),
                0);
        assert_int_equal(conv_stream_end(r.cv, &r.out), 0);
        buf_nul(&r.out);
        sse_list_parse(r.out.p, r.out.n, &r.got);
        int deltas = 0, done = 0;
        for (size_t i = 0; i < r.got.n; i++) {
            const char *name = r.got.v[i].name;
            assert_null(strstr(name, "function_call_arguments"));
            if (strcmp(name, "response.custom_tool_call_input.delta") == 0) {
                deltas++;
                assert_non_null(strstr(r.got.v[i].data, "\"delta\":\"*** Begin Patch\\n\""));
            }
            if (strcmp(name, "response.custom_tool_call_input.done") == 0) {
                done++;
                assert_non_null(strstr(r.got.v[i].data, "\"input\":\"*** Begin Patch\\n\""));
            }
        }
        assert_int_equal(deltas, 1);
        assert_int_equal(done, 1);
        assert_true(out_has(&r, "\"type\":\"custom_tool_call\",\"status\":\"in_progress\""));
        assert_true(out_has(&r, "\"type\":\"custom_tool_call\",\"status\":\"completed\""));
        assert_false(out_has(&r, "\\\"input\\\"")); /* the wrapper is gone */
        assert_true(out_has(&r, "\"id\":\"ctc_"));
        assert_true(out_has(&r, "\"name\":\"apply_patch\""));
        const char *last = r.got.v[r.got.n - 1].name;
        assert_string_equal(last, "response.completed");
        run_free(&r);
    }
}

/* The JSON-mode tool trick (§3.7): the synthetic tool's arguments reach a streaming client
 * as text and the turn ends with "stop"; with a client tool called as well the JSON tool
 * is dropped. */
static void test_json_tool_trick_in_stream(void **state)
{
    (void)state;
#define JT_START(i, name)                                                                          \
    "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":{\"type\":\"tool_use\"," \
    "\"id\":\"toolu_" #i "\",\"name\":\"" name "\",\"input\":{}}}"
#define JT_ARGS(i, frag)                                                                           \
    "{\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":{\"type\":\"input_json_delta\"," \
    "\"partial_json\":\"" frag "\"}}"
#define JT_STOP(i) "{\"type\":\"content_block_stop\",\"index\":" #i "}"
    const char *evs[] = {
        "message_start",
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"u\","
        "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}",
        "content_block_start",
        JT_START(0, "json_tool_call"),
        "content_block_delta",
        JT_ARGS(0, "{\\\"values\\\":{\\\"a\\\""),
        "content_block_delta",
        JT_ARGS(0, ":1}}"),
        "content_block_stop",
        JT_STOP(0),
        "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
        "\"usage\":{\"output_tokens\":9}}",
        "message_stop",
        "{\"type\":\"message_stop\"}",
    };
    struct run r;
    memset(&r, 0, sizeof r);
    r.req.stream = true;
    r.pool = pool_create();
    r.cv = test_conv(r.pool, API_CHAT, API_MESSAGES, &r.req, "m");
    r.cv->json_tool_trick = true;
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(
            conv_stream_event(r.cv, slice_from(evs[2 * i]), slice_from(evs[2 * i + 1]), &r.out), 0);
    buf_nul(&r.out);
    assert_true(out_has(&r, "\"content\":\"{\\\"a\\\":1}\""));
    assert_true(out_has(&r, "\"finish_reason\":\"stop\""));
    assert_false(out_has(&r, "tool_calls"));
    assert_false(out_has(&r, "json_tool_call"));
    run_free(&r);

    /* the same stream without the trick in effect: an ordinary tool call */
    memset(&r, 0, sizeof r);
    r.req.stream = true;
    r.pool = pool_create();
    r.cv = test_conv(r.pool, API_CHAT, API_MESSAGES, &r.req, "m");
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(
            conv_stream_event(r.cv, slice_from(evs[2 * i]), slice_from(evs[2 * i + 1]), &r.out), 0);
    buf_nul(&r.out);
    assert_true(out_has(&r, "json_tool_call"));
    assert_true(out_has(&r, "\"finish_reason\":\"tool_calls\""));
    run_free(&r);

    /* a client tool called first, then the JSON tool: the JSON tool is dropped */
    const char *both[] = {
        "message_start",       evs[1],
        "content_block_start", JT_START(0, "lookup"),
        "content_block_delta", JT_ARGS(0, "{}"),
        "content_block_stop",  JT_STOP(0),
        "content_block_start", JT_START(1, "json_tool_call"),
        "content_block_delta", JT_ARGS(1, "{\\\"a\\\":1}"),
        "content_block_stop",  JT_STOP(1),
        "message_delta",       evs[11],
        "message_stop",        evs[13],
    };
    struct ir_tool lookup = {.name = SLICE_LIT("lookup")};
    memset(&r, 0, sizeof r);
    r.req.stream = true;
    r.req.tools = &lookup;
    r.req.n_tools = 1;
    r.pool = pool_create();
    r.cv = test_conv(r.pool, API_RESPONSES, API_MESSAGES, &r.req, "m");
    r.cv->json_tool_trick = true;
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(
            conv_stream_event(r.cv, slice_from(both[2 * i]), slice_from(both[2 * i + 1]), &r.out),
            0);
    buf_nul(&r.out);
    assert_true(out_has(&r, "\"name\":\"lookup\""));
    assert_false(out_has(&r, "json_tool_call"));
    assert_false(out_has(&r, "output_text"));
    assert_true(out_has(&r, "response.completed"));
    run_free(&r);
#undef JT_START
#undef JT_ARGS
#undef JT_STOP
}

/* ---- Responses upstream ------------------------------------------------------------ */

static void test_responses_args_only_in_done_and_incomplete(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        "{\"type\":\"response.created\",\"response\":{\"id\":\"resp_7\",\"model\":\"u\"}}",
        NULL,
        "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":"
        "\"fc_1\",\"type\":\"function_call\",\"call_id\":\"call_Q\",\"name\":\"f\"}}",
        NULL,
        "{\"type\":\"response.function_call_arguments.done\",\"output_index\":0,"
        "\"item_id\":\"fc_1\",\"arguments\":\"{\\\"q\\\":1}\"}",
        NULL,
        "{\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"id\":"
        "\"fc_1\",\"type\":\"function_call\",\"call_id\":\"call_Q\",\"name\":\"f\","
        "\"arguments\":\"{\\\"q\\\":1}\"}}",
        /* a message item that arrives whole, without deltas */
        NULL,
        "{\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"id\":"
        "\"msg_2\",\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":"
        "\"whole\"}]}}",
        NULL,
        "{\"type\":\"response.web_search_call.searching\",\"output_index\":2}",
        NULL,
        "{\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\","
        "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{"
        "\"input_tokens\":3,\"output_tokens\":8}}}",
    };
    size_t n = sizeof evs / sizeof *evs / 2;
    struct run r;
    run_events(&r, API_MESSAGES, API_RESPONSES, evs, n, true);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.end, 0);
    int arg_deltas = 0;
    for (size_t i = 0; i < r.got.n; i++)
        if (strstr(r.got.v[i].data, "input_json_delta")) arg_deltas++;
    assert_int_equal(arg_deltas, 1);
    assert_true(out_has(&r, "\"id\":\"call_Q\""));
    assert_true(out_has(&r, "\"text\":\"whole\""));
    assert_true(out_has(&r, "\"stop_reason\":\"max_tokens\""));
    run_free(&r);
    run_events(&r, API_CHAT, API_RESPONSES, evs, n, true);
    assert_true(out_has(&r, "\"finish_reason\":\"length\""));
    run_free(&r);
}

static void test_several_objects_in_one_data(void **state)
{
    (void)state;
    const char *evs[] = {
        NULL,
        CHUNK("{\"content\":\"a\"}") "\n" CHUNK("{\"content\":\"b\"}")
            CHUNK("{},\"finish_reason\":\"stop\""),
        NULL,
        "[DONE]",
    };
    struct run r;
    run_events(&r, API_COMPLETIONS, API_CHAT, evs, 2, true);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.end, 0);
    assert_true(out_has(&r, "\"text\":\"a\""));
    assert_true(out_has(&r, "\"text\":\"b\""));
    assert_true(out_has(&r, "\"finish_reason\":\"stop\""));
    assert_true(out_has(&r, "data: [DONE]"));
    run_free(&r);
}

/* Events with no event name: the data's type is used (TV12 without names, same output). */
static void test_names_from_type(void **state)
{
    (void)state;
    size_t n = 0;
    char *s = load_file("tests/vectors/TV12_stream_c_to_b/input.sse", &n);
    struct sse_list in;
    sse_list_parse(s, n, &in);
    free(s);
    struct buf outs[2] = {BUF_INIT, BUF_INIT};
    for (int pass = 0; pass < 2; pass++) {
        pool_t *pool = pool_create();
        struct ir_request req = {.stream = true};
        struct conv *cv = test_conv(pool, API_MESSAGES, API_RESPONSES, &req, "gpt-5");
        for (size_t i = 0; i < in.n; i++) {
            struct slice name = pass ? SLICE_NULL : slice_from(in.v[i].name);
            assert_int_equal(conv_stream_event(cv, name, slice_from(in.v[i].data), &outs[pass]), 0);
        }
        assert_int_equal(conv_stream_end(cv, &outs[pass]), 0);
        pool_destroy(pool);
    }
    assert_int_equal(outs[0].n, outs[1].n);
    assert_memory_equal(outs[0].p, outs[1].p, outs[0].n);
    buf_free(&outs[0]);
    buf_free(&outs[1]);
    sse_list_free(&in);
}

/* Claude → Claude through the IR: message_start keeps the upstream's input counts. */
static void test_messages_start_usage(void **state)
{
    (void)state;
    size_t n = 0;
    char *s = load_file("tests/vectors/TV9_stream_b_to_a/input.sse", &n);
    struct sse_list in;
    sse_list_parse(s, n, &in);
    free(s);
    pool_t *pool = pool_create();
    struct conv *cv = test_conv(pool, API_MESSAGES, API_MESSAGES, NULL, "claude-sonnet-4-5");
    struct buf out = BUF_INIT;
    assert_int_equal(feed_events(cv, &in, 0, in.n, &out), 0);
    assert_int_equal(conv_stream_end(cv, &out), 0);
    struct sse_list got;
    sse_list_parse(out.p, out.n, &got);
    assert_string_equal(got.v[0].name, "message_start");
    assert_non_null(strstr(got.v[0].data, "\"usage\":{\"input_tokens\":50,"));
    assert_non_null(strstr(got.v[0].data, "\"output_tokens\":1,"));
    assert_non_null(strstr(got.v[got.n - 2].data, "\"input_tokens\":50,"));
    assert_non_null(strstr(got.v[got.n - 2].data, "\"output_tokens\":40,"));
    assert_int_equal(cv->usage.input_total, 50);
    assert_int_equal(cv->usage.output_total, 40);
    sse_list_free(&got);
    sse_list_free(&in);
    buf_free(&out);
    pool_destroy(pool);
}

/* Nothing per event comes from the pool: a long stream does not grow it. */
static void test_pool_does_not_grow_per_event(void **state)
{
    (void)state;
    for (int client = API_CHAT; client <= API_COMPLETIONS; client++) {
        pool_t *pool = pool_create();
        struct ir_request req = {.stream = true};
        struct conv *cv = test_conv(pool, client, API_MESSAGES, &req, "m");
        struct buf out = BUF_INIT;
        assert_int_equal(
            conv_stream_event(
                cv, SLICE_NULL,
                SLICE_LIT("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}"), &out),
            0);
        size_t base = 0;
        for (int i = 0; i < 3000; i++) {
            char ev[200];
            snprintf(ev, sizeof ev,
                     "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{"
                     "\"type\":\"tool_use\",\"id\":\"t%d\",\"name\":\"f\"}}",
                     i, i);
            assert_int_equal(conv_stream_event(cv, SLICE_NULL, slice_from(ev), &out), 0);
            snprintf(ev, sizeof ev,
                     "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                     "\"input_json_delta\",\"partial_json\":\"{}\"}}",
                     i);
            assert_int_equal(conv_stream_event(cv, SLICE_NULL, slice_from(ev), &out), 0);
            snprintf(ev, sizeof ev, "{\"type\":\"content_block_stop\",\"index\":%d}", i);
            assert_int_equal(conv_stream_event(cv, SLICE_NULL, slice_from(ev), &out), 0);
            out.n = 0; /* the gateway writes the bytes out */
            if (i == 0) base = pool_bytes(pool);
        }
        assert_int_equal(pool_bytes(pool), base);
        buf_free(&out);
        pool_destroy(pool);
    }
}

/* ---- gateway-raised errors ---------------------------------------------------------- */

static void test_gateway_error_shapes(void **state)
{
    (void)state;
    for (int client = API_CHAT; client <= API_COMPLETIONS; client++) {
        pool_t *pool = pool_create();
        struct conv *cv = test_conv(pool, client, API_MESSAGES, NULL, "m");
        struct buf out = BUF_INIT;
        conv_stream_error(cv, 504, NULL, SLICE_LIT("upstream idle timeout"), &out);
        buf_nul(&out);
        struct conv_error err;
        bool wrote;
        assert_int_equal(conv_stream_status(cv, &err, &wrote), CONV_STREAM_FAILED);
        assert_false(wrote);
        assert_int_equal(err.status, 504);
        assert_string_equal(err.message, "upstream idle timeout");
        if (client == API_MESSAGES)
            assert_non_null(strstr(out.p, "event: error\ndata: {\"type\":\"error\",\"error\":{"
                                          "\"type\":\"timeout_error\""));
        else if (client == API_RESPONSES)
            assert_non_null(strstr(out.p, "\"code\":\"server_error\""));
        else
            assert_non_null(strstr(out.p, "data: {\"error\":{\"message\":\"upstream idle "
                                          "timeout\",\"type\":\"timeout_error\""));
        buf_free(&out);
        pool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_duplicate_replay_and_usage_every_chunk),
        cmocka_unit_test(test_interleaved_parallel_tools),
        cmocka_unit_test(test_chat_late_name_and_missing_id),
        cmocka_unit_test(test_chat_second_choice_ignored_and_refusal),
        cmocka_unit_test(test_messages_redacted_stop_sequence_no_names),
        cmocka_unit_test(test_messages_ping_only_is_an_error),
        cmocka_unit_test(test_tool_name_mapped_back),
        cmocka_unit_test(test_custom_tool_unwrapped),
        cmocka_unit_test(test_json_tool_trick_in_stream),
        cmocka_unit_test(test_responses_args_only_in_done_and_incomplete),
        cmocka_unit_test(test_several_objects_in_one_data),
        cmocka_unit_test(test_names_from_type),
        cmocka_unit_test(test_messages_start_usage),
        cmocka_unit_test(test_pool_does_not_grow_per_event),
        cmocka_unit_test(test_gateway_error_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
