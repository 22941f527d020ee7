/* test_protocol_stream_vectors.c — the stream test vectors of the format-conversion
 * specification (TV9–TV12, TV14 e–g, TV15 stream side) as input SSE → expected SSE files
 * under tests/vectors/<name>/, compared as event lists; plus the invariances every stream
 * conversion must have: the same output whether the input is fed all at once, split at any
 * event boundary or one event per call, and whether each event's JSON is fed verbatim or
 * re-serialised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "stream_test_util.h"

struct vector {
    const char *dir;
    enum api_format client, upstream;
    const char *client_model;
    bool include_usage, include_encrypted;
    bool completes; /* the stream ends with its terminal events (else with an error) */
};

static const struct vector vectors[] = {
    {"TV9_stream_b_to_a", API_CHAT, API_MESSAGES, "claude-sonnet-4-5", true, false, true},
    {"TV10_stream_a_to_b", API_MESSAGES, API_CHAT, "gpt-4.1", false, false, true},
    {"TV11_stream_b_to_c", API_RESPONSES, API_MESSAGES, "claude-opus-4-5", false, true, true},
    {"TV12_stream_c_to_b", API_MESSAGES, API_RESPONSES, "gpt-5", false, false, true},
    {"TV15_stream_b_to_l", API_COMPLETIONS, API_MESSAGES, "claude-haiku-4-5", false, false, true},
    {"TV14e_stream_error_b_to_a", API_CHAT, API_MESSAGES, "claude-sonnet-4-5", true, false, false},
    {"TV14f_stream_error_a_to_c", API_RESPONSES, API_CHAT, "gpt-4.1", false, false, false},
    {"TV14g_stream_error_c_to_b", API_MESSAGES, API_RESPONSES, "gpt-5", false, false, false},
};

static void load_vector(const struct vector *v, struct sse_list *in, struct sse_list *want)
{
    char rel[256];
    size_t n = 0;
    snprintf(rel, sizeof rel, "tests/vectors/%s/input.sse", v->dir);
    char *s = load_file(rel, &n);
    assert_non_null(s);
    sse_list_parse(s, n, in);
    free(s);
    snprintf(rel, sizeof rel, "tests/vectors/%s/expected.sse", v->dir);
    s = load_file(rel, &n);
    assert_non_null(s);
    sse_list_parse(s, n, want);
    free(s);
    assert_true(in->n > 0 && want->n > 0);
}

static void vector_request(const struct vector *v, struct ir_request *req)
{
    memset(req, 0, sizeof *req);
    req->stream = true;
    req->include_usage = v->include_usage;
    req->include_encrypted_reasoning = v->include_encrypted;
}

/* Runs the whole input through a fresh context, each event in its own call, with the
 * output of events [0, split) and [split, n) + end going to two buffers that are then
 * joined. Returns the joined output (caller frees). */
static struct buf run_split(const struct vector *v, const struct sse_list *in, size_t split)
{
    struct ir_request req;
    vector_request(v, &req);
    pool_t *pool = pool_create();
    struct conv *cv = test_conv(pool, v->client, v->upstream, &req, v->client_model);
    struct buf a = BUF_INIT, b = BUF_INIT;
    int rc1 = feed_events(cv, in, 0, split, &a);
    int rc2 = rc1 == 0 ? feed_events(cv, in, split, in->n, &b) : 0;
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    int end = conv_stream_end(cv, &b);
    assert_int_equal(end, v->completes ? 0 : -1);
    assert_int_equal(conv_stream_status(cv, NULL, NULL),
                     v->completes ? CONV_STREAM_COMPLETED : CONV_STREAM_FAILED);
    pool_destroy(pool);
    buf_append(&a, b.p, b.n);
    buf_free(&b);
    return a;
}

static void test_vector(void **state)
{
    const struct vector *v = *state;
    struct sse_list in, want, got;
    load_vector(v, &in, &want);

    struct buf whole = run_split(v, &in, in.n);
    sse_list_parse(whole.p, whole.n, &got);
    if (!sse_lists_equal(&got, &want)) fail_msg("vector %s: output differs", v->dir);
    sse_list_free(&got);

    /* Split at every event boundary: byte-identical output. */
    for (size_t k = 0; k <= in.n; k++) {
        struct buf part = run_split(v, &in, k);
        assert_int_equal(part.n, whole.n);
        assert_memory_equal(part.p, whole.p, whole.n);
        buf_free(&part);
    }

    /* One call per event, each into its own buffer. */
    {
        struct ir_request req;
        vector_request(v, &req);
        pool_t *pool = pool_create();
        struct conv *cv = test_conv(pool, v->client, v->upstream, &req, v->client_model);
        struct buf joined = BUF_INIT;
        for (size_t i = 0; i < in.n; i++) {
            struct buf one = BUF_INIT;
            assert_int_equal(feed_events(cv, &in, i, i + 1, &one), 0);
            buf_append(&joined, one.p, one.n);
            buf_free(&one);
        }
        struct buf one = BUF_INIT;
        conv_stream_end(cv, &one);
        buf_append(&joined, one.p, one.n);
        buf_free(&one);
        assert_int_equal(joined.n, whole.n);
        assert_memory_equal(joined.p, whole.p, whole.n);
        buf_free(&joined);
        pool_destroy(pool);
    }

    /* Re-serialised data (compact and indented over several data lines): same output. */
    for (int style = 0; style < 2; style++) {
        struct sse_list re = {0};
        for (size_t i = 0; i < in.n; i++) {
            json_t *j = json_loads(in.v[i].data, 0, NULL);
            char *s = j ? json_dumps(j, style ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
            const char *d = s ? s : in.v[i].data;
            sse_list_add(&re, in.v[i].name, in.v[i].name ? strlen(in.v[i].name) : 0, d, strlen(d));
            free(s);
            json_decref(j);
        }
        struct buf again = run_split(v, &re, re.n);
        assert_int_equal(again.n, whole.n);
        assert_memory_equal(again.p, whole.p, whole.n);
        buf_free(&again);
        sse_list_free(&re);
    }

    buf_free(&whole);
    sse_list_free(&in);
    sse_list_free(&want);
}

/* TV9 without include_usage: no "usage" keys and no choices:[] chunk. */
static void test_tv9_without_include_usage(void **state)
{
    (void)state;
    struct vector v = vectors[0];
    v.include_usage = false;
    struct sse_list in, want, got, want2 = {0};
    load_vector(&v, &in, &want);
    for (size_t i = 0; i < want.n; i++) {
        json_t *j = json_loads(want.v[i].data, 0, NULL);
        if (!j) {
            sse_list_add(&want2, NULL, 0, want.v[i].data, strlen(want.v[i].data));
            continue;
        }
        if (json_array_size(json_object_get(j, "choices")) == 0) {
            json_decref(j);
            continue;
        }
        json_object_del(j, "usage");
        char *s = json_dumps(j, JSON_COMPACT);
        sse_list_add(&want2, NULL, 0, s, strlen(s));
        free(s);
        json_decref(j);
    }
    struct buf out = run_split(&v, &in, in.n);
    sse_list_parse(out.p, out.n, &got);
    assert_true(sse_lists_equal(&got, &want2));
    buf_nul(&out);
    assert_null(strstr(out.p, "\"usage\""));
    buf_free(&out);
    sse_list_free(&got);
    sse_list_free(&in);
    sse_list_free(&want);
    sse_list_free(&want2);
}

/* TV11 without include: the reasoning item carries no encrypted_content. */
static void test_tv11_without_include(void **state)
{
    (void)state;
    struct vector v = vectors[2];
    v.include_encrypted = false;
    struct sse_list in, want, got;
    load_vector(&v, &in, &want);
    struct buf out = run_split(&v, &in, in.n);
    buf_nul(&out);
    assert_null(strstr(out.p, "encrypted_content"));
    sse_list_parse(out.p, out.n, &got);
    assert_int_equal(got.n, want.n);
    buf_free(&out);
    sse_list_free(&got);
    sse_list_free(&in);
    sse_list_free(&want);
}

int main(void)
{
    struct CMUnitTest tests[sizeof vectors / sizeof *vectors + 2];
    size_t n = 0;
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        tests[n] =
            (struct CMUnitTest){vectors[i].dir, test_vector, NULL, NULL, (void *)&vectors[i]};
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_tv9_without_include_usage);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_tv11_without_include);
    return _cmocka_run_group_tests("stream_vectors", tests, n, NULL, NULL);
}
