/* test_protocol_openai_chat.c — usage and model from OpenAI responses, and the kind of
 * each stream chunk (usage-only, [DONE], error), on real shapes and on malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/openai_chat.h"

struct fixture {
    pool_t *pool;
};

static int setup(void **state)
{
    static struct fixture f;
    f.pool = pool_create();
    *state = &f;
    return f.pool ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pool_destroy(f->pool);
    return 0;
}

static void assert_usage(const struct openai_usage *u, long long p, long long c, long long t,
                         long long cached, long long reasoning)
{
    assert_int_equal(u->prompt_tokens, p);
    assert_int_equal(u->completion_tokens, c);
    assert_int_equal(u->total_tokens, t);
    assert_int_equal(u->cached_tokens, cached);
    assert_int_equal(u->reasoning_tokens, reasoning);
}

static void test_chat_response(void **state)
{
    struct fixture *f = *state;
    const char *body =
        "{\n  \"id\": \"chatcmpl-B9\",\n  \"object\": \"chat.completion\",\n  \"created\": "
        "1741569952,\n  \"model\": \"gpt-4.1-2025-04-14\",\n  \"choices\": [{\"index\": 0, "
        "\"message\": {\"role\": \"assistant\", \"content\": \"The \\\"usage\\\": {} is "
        "here\", \"refusal\": null, \"annotations\": []}, \"logprobs\": null, "
        "\"finish_reason\": \"stop\"}],\n  \"usage\": {\"prompt_tokens\": 19, "
        "\"completion_tokens\": 10, \"total_tokens\": 29, \"prompt_tokens_details\": "
        "{\"cached_tokens\": 4, \"audio_tokens\": 0}, \"completion_tokens_details\": "
        "{\"reasoning_tokens\": 2, \"audio_tokens\": 0}},\n  \"service_tier\": \"default\"\n}\n";
    struct openai_usage u;
    struct slice model;
    assert_int_equal(openai_chat_response_info(slice_from(body), f->pool, &u, &model), 0);
    assert_usage(&u, 19, 10, 29, 4, 2);
    assert_true(slice_eq_str(model, "gpt-4.1-2025-04-14"));
    assert_int_equal(model.p[model.n], '\0');
}

static void test_embeddings_response(void **state)
{
    struct fixture *f = *state;
    /* a large embeddings body: the scan skips the vectors */
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < 200; i++) {
        buf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":[", i ? "," : "", i);
        for (int k = 0; k < 1536; k++) buf_printf(&b, "%s-0.00%d", k ? "," : "", k % 997);
        buf_append_str(&b, "]}");
    }
    buf_append_str(&b, "],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,"
                       "\"total_tokens\":8}}");
    assert_true(b.n > 1024 * 1024);
    struct openai_usage u;
    struct slice model;
    assert_int_equal(openai_chat_response_info(buf_slice(&b), f->pool, &u, &model), 0);
    assert_usage(&u, 8, -1, 8, -1, -1);
    assert_true(slice_eq_str(model, "text-embedding-3-small"));
    buf_free(&b);
}

static void test_partial_and_odd_usage(void **state)
{
    struct fixture *f = *state;
    struct openai_usage u;
    struct slice model;
    struct {
        const char *body;
        long long p, c, t, cached;
        const char *model;
    } cases[] = {
        {"{\"model\":\"m\"}", -1, -1, -1, -1, "m"},
        {"{\"usage\":null,\"model\":null}", -1, -1, -1, -1, NULL},
        {"{\"usage\":{}}", -1, -1, -1, -1, NULL},
        {"{\"usage\":\"lots\",\"model\":42}", -1, -1, -1, -1, NULL},
        {"{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1.5,\"total_tokens\":7.0}}", -1,
         -1, 7, -1, NULL},
        {"{\"usage\":{\"prompt_tokens\":\"3\",\"completion_tokens\":true,\"total_tokens\":null}}",
         -1, -1, -1, -1, NULL},
        {"{\"usage\":{\"prompt_tokens\":3,\"prompt_tokens_details\":null}}", 3, -1, -1, -1, NULL},
        {"{\"usage\":{\"prompt_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":-1}}}", 3,
         -1, -1, -1, NULL},
        /* duplicate keys inside usage: jansson rejects the object, counts stay unknown */
        {"{\"usage\":{\"prompt_tokens\":3,\"prompt_tokens\":900}}", -1, -1, -1, -1, NULL},
        /* too big for a count */
        {"{\"usage\":{\"prompt_tokens\":99999999999999999999999}}", -1, -1, -1, -1, NULL},
        /* the model name is decoded */
        {"{\"model\":\"gpt\\u002d4o\\n\"}", -1, -1, -1, -1, "gpt-4o\n"},
        /* nested usage objects are not the response's usage */
        {"{\"choices\":[{\"usage\":{\"prompt_tokens\":1}}],\"x\":{\"usage\":{}}}", -1, -1, -1, -1,
         NULL},
        {" \r\n\t{ } \n", -1, -1, -1, -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (openai_chat_response_info(slice_from(cases[i].body), f->pool, &u, &model) != 0)
            fail_msg("case %zu rejected", i);
        assert_usage(&u, cases[i].p, cases[i].c, cases[i].t, cases[i].cached, -1);
        if (cases[i].model)
            assert_true(slice_eq_str(model, cases[i].model));
        else
            assert_null(model.p);
    }
}

static void test_malformed_responses(void **state)
{
    struct fixture *f = *state;
    static const char *bad[] = {
        "",
        "   ",
        "null",
        "[]",
        "\"usage\"",
        "42",
        "{",
        "}",
        "{\"usage\":{\"prompt_tokens\":1}",
        "{\"usage\":{\"prompt_tokens\":1}}}",
        "{\"usage\":{\"prompt_tokens\":1}} x",
        "{\"usage\":{\"prompt_tokens\":1}}{}",
        "{\"usage\" {\"prompt_tokens\":1}}",
        "{\"usage\":}",
        "{\"usage\":{\"prompt_tokens\":1},}",
        "{,\"usage\":{}}",
        "{usage:{}}",
        "{\"usage\":{\"prompt_tokens\":1]}",
        "{\"usage\":[1,2}",
        "{\"model\":\"unterminated}",
        "{\"model\":\"ctl\x01\"}",
        "{\"model\":\"a\\",
        "{\"usage\":{},\"usage\":{\"prompt_tokens\":1}}",
        "{\"model\":\"a\",\"model\":\"b\"}",
        "{\"usage\":{\"prompt_tokens\":1}\"model\":\"a\"}",
        "{\"a\":@}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct openai_usage u;
        struct slice model = SLICE_LIT("untouched");
        if (openai_chat_response_info(slice_from(bad[i]), f->pool, &u, &model) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_usage(&u, -1, -1, -1, -1, -1);
        assert_null(model.p);
    }
}

static void test_nesting_limit(void **state)
{
    struct fixture *f = *state;
    struct openai_usage u;
    struct slice model;
    struct buf b = BUF_INIT;
    /* 128 levels in all (the top-level object is one) pass; 129 do not */
    for (int depth = 127; depth <= 128; depth++) {
        b.n = 0;
        buf_append_str(&b, "{\"a\":");
        for (int i = 0; i < depth; i++) buf_append_str(&b, "[");
        for (int i = 0; i < depth; i++) buf_append_str(&b, "]");
        buf_append_str(&b, ",\"usage\":{\"prompt_tokens\":1}}");
        int want = depth == 127 ? 0 : -1;
        assert_int_equal(openai_chat_response_info(buf_slice(&b), f->pool, &u, &model), want);
    }
    /* very deep input never overflows anything */
    b.n = 0;
    buf_append_str(&b, "{\"a\":");
    for (int i = 0; i < 100000; i++) buf_append_str(&b, "{\"a\":");
    assert_int_equal(openai_chat_response_info(buf_slice(&b), f->pool, &u, &model), -1);
    buf_free(&b);
}

/* Every proper prefix of a valid body is an incomplete object, hence rejected; none crashes
 * (ASan checks the reads: each prefix is a separate heap copy). */
static void test_every_truncation_rejected(void **state)
{
    struct fixture *f = *state;
    const char *body = "{\"id\":\"x\",\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"content\":"
                       "\"a\\\"b\\\\\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"
                       "\"total_tokens\":3}}";
    size_t n = strlen(body);
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, body, k);
        struct openai_usage u;
        struct slice model;
        assert_int_equal(openai_chat_response_info((struct slice){copy, k}, f->pool, &u, &model),
                         -1);
        free(copy);
    }
    struct openai_usage u;
    struct slice model;
    assert_int_equal(openai_chat_response_info(slice_from(body), f->pool, &u, &model), 0);
    assert_usage(&u, 1, 2, 3, -1, -1);
}

/* --- stream chunks ------------------------------------------------------------------- */

static void test_chunk_kinds(void **state)
{
    struct openai_chunk_info ci;

    assert_int_equal(openai_chat_chunk_info(SLICE_LIT("[DONE]"), &ci), 0);
    assert_true(ci.done);
    assert_false(ci.has_usage);
    assert_int_equal(openai_chat_chunk_info(SLICE_LIT(" [DONE] "), &ci), 0);
    assert_true(ci.done);
    assert_int_equal(openai_chat_chunk_info(SLICE_LIT("[DONE]x"), &ci), -1);
    assert_false(ci.done);

    /* a content chunk of an include_usage stream: usage is null */
    assert_int_equal(
        openai_chat_chunk_info(
            SLICE_LIT("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                      "\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                      "\"\\\"usage\\\":{\\\"prompt_tokens\\\":5}\"},\"finish_reason\":null}],"
                      "\"usage\":null}"),
            &ci),
        0);
    assert_false(ci.done);
    assert_false(ci.has_usage);
    assert_false(ci.usage_only);
    assert_false(ci.has_error);
    assert_int_equal(ci.usage.prompt_tokens, -1);

    /* the include_usage chunk */
    assert_int_equal(
        openai_chat_chunk_info(
            SLICE_LIT("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                      "\"model\":\"gpt-4.1\",\"choices\":[ ],\"usage\":{\"prompt_tokens\":9,"
                      "\"completion_tokens\":3,\"total_tokens\":12,\"prompt_tokens_details\":{"
                      "\"cached_tokens\":2}}}"),
            &ci),
        0);
    assert_true(ci.has_usage);
    assert_true(ci.usage_only);
    assert_usage(&ci.usage, 9, 3, 12, 2, -1);

    /* usage on a chunk that still carries a choice (vLLM-style): counted, not stripped */
    assert_int_equal(
        openai_chat_chunk_info(
            SLICE_LIT("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                      "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,"
                      "\"total_tokens\":5}}"),
            &ci),
        0);
    assert_true(ci.has_usage);
    assert_false(ci.usage_only);
    assert_usage(&ci.usage, 4, 1, 5, -1, -1);

    /* usage and no choices member at all: also only usage */
    assert_int_equal(openai_chat_chunk_info(SLICE_LIT("{\"usage\":{\"total_tokens\":5}}"), &ci), 0);
    assert_true(ci.usage_only);

    /* empty choices without usage is not the usage chunk */
    assert_int_equal(openai_chat_chunk_info(SLICE_LIT("{\"choices\":[],\"usage\":null}"), &ci), 0);
    assert_false(ci.usage_only);
    assert_false(ci.has_usage);

    /* an in-stream error */
    assert_int_equal(openai_chat_chunk_info(
                         SLICE_LIT("{\"error\":{\"message\":\"The server had an error\","
                                   "\"type\":\"server_error\",\"param\":null,\"code\":null}}"),
                         &ci),
                     0);
    assert_true(ci.has_error);
    assert_false(ci.has_usage);
    assert_int_equal(openai_chat_chunk_info(SLICE_LIT("{\"error\":null,\"choices\":[]}"), &ci), 0);
    assert_false(ci.has_error);
}

static void test_malformed_chunks(void **state)
{
    static const char *bad[] = {
        "",
        "[DONE",
        "data: {}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":1}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}}",
        "{\"choices\":[}],\"usage\":{}}",
        "{\"usage\":{},\"usage\":{}}",
        "{\"choices\":[],\"choices\":[]}",
        "{\"error\":{}}garbage",
        "\xEF\xBB\xBF{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct openai_chunk_info ci;
        memset(&ci, 0xA5, sizeof ci);
        if (openai_chat_chunk_info(slice_from(bad[i]), &ci) != -1) fail_msg("accepted: %s", bad[i]);
        assert_false(ci.done);
        assert_false(ci.has_usage);
        assert_false(ci.usage_only);
        assert_false(ci.has_error);
        assert_usage(&ci.usage, -1, -1, -1, -1, -1);
    }
    /* a usage object jansson rejects (duplicate key) is no usage */
    struct openai_chunk_info ci;
    assert_int_equal(
        openai_chat_chunk_info(
            SLICE_LIT("{\"choices\":[],\"usage\":{\"total_tokens\":1,\"total_tokens\":2}}"), &ci),
        0);
    assert_false(ci.has_usage);
    assert_false(ci.usage_only);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embeddings_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_and_odd_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation_rejected, setup, teardown),
        cmocka_unit_test(test_chunk_kinds),
        cmocka_unit_test(test_malformed_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
