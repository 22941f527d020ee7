/* response_test_util.h — shared by the test_protocol_response_* tests: a conversion
 * context filled by hand (struct conv is a plain struct), test-vector files under
 * tests/vectors/, and semantic JSON comparison with readable failure output. */
#ifndef METARELAY_TESTS_RESPONSE_TEST_UTIL_H
#define METARELAY_TESTS_RESPONSE_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/convert.h"
#include "protocol/ir.h"

#define RT_CLOCK 1767225600L /* the gateway clock of every test vector (§8) */

struct rt {
    pool_t *pool;
    struct ir_profile profile;
    struct ir_request req;
    struct conv cv;
};

static inline void rt_request_defaults(struct ir_request *r)
{
    memset(r, 0, sizeof *r);
    r->parallel_tool_calls = -1;
    r->max_output_tokens = -1;
    r->temperature = NAN;
    r->top_p = NAN;
    r->top_k = -1;
    r->n = -1;
    r->reasoning.enabled = -1;
    r->reasoning.budget = -1;
}

/* A context for client `client`, upstream `upstream`, default profile and an empty
 * request with `model` as the client's model name. */
static inline void rt_init(struct rt *t, enum api_format client, enum api_format upstream,
                           const char *model)
{
    t->pool = pool_create();
    if (!t->pool) abort();
    ir_profile_defaults(&t->profile);
    rt_request_defaults(&t->req);
    t->req.model = slice_from(model);
    memset(&t->cv, 0, sizeof t->cv);
    t->cv.pool = t->pool;
    t->cv.client = client;
    t->cv.upstream = upstream;
    t->cv.profile = &t->profile;
    t->cv.req = &t->req;
    t->cv.client_model = slice_from(model);
    t->cv.created = RT_CLOCK;
    ir_usage_unknown(&t->cv.usage);
}

static inline void rt_free(struct rt *t)
{
    pool_destroy(t->pool);
    t->pool = NULL;
}

/* Reads tests/vectors/<rel> into a malloc'd NUL-terminated string (caller frees). */
static inline char *rt_read_vector(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/vectors/%s", METARELAY_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) abort();
    s[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return s;
}

static inline json_t *rt_load_vector_json(const char *rel)
{
    size_t n;
    char *s = rt_read_vector(rel, &n);
    json_error_t e;
    json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        fprintf(stderr, "%s: %s (line %d)\n", rel, e.text, e.line);
        abort();
    }
    free(s);
    return v;
}

static inline json_t *rt_parse(const struct buf *b)
{
    json_error_t e;
    json_t *v = json_loadb(b->p ? b->p : "", b->n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!v) fail_msg("output is not JSON (%s): %.*s", e.text, (int)b->n, b->p ? b->p : "");
    return v;
}

static inline void rt_fail_diff(const char *what, const json_t *got, const json_t *want)
{
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fprintf(stderr, "%s differs\n  got:  %s\n  want: %s\n", what, g ? g : "(null)",
            w ? w : "(null)");
    free(g);
    free(w);
    fail_msg("%s differs", what);
}

static inline void rt_assert_json_equal(const char *what, const json_t *got, const json_t *want)
{
    if (!json_equal((json_t *)got, (json_t *)want)) rt_fail_diff(what, got, want);
}

/* Every member of `want` is present in `got` with an equal value (for Responses objects,
 * whose request-echo keys the vectors leave out, §8). */
static inline void rt_assert_json_subset(const char *what, const json_t *got, const json_t *want)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)want, key, v)
    {
        json_t *g = json_object_get(got, key);
        if (!g || !json_equal(g, v)) {
            char label[256];
            snprintf(label, sizeof label, "%s.%s", what, key);
            rt_fail_diff(label, g ? g : json_null(), v);
        }
    }
}

static inline enum api_format rt_format(const char *tag)
{
    switch (tag[0]) {
    case 'A':
        return API_CHAT;
    case 'B':
        return API_MESSAGES;
    case 'C':
        return API_RESPONSES;
    default:
        return API_COMPLETIONS;
    }
}

/* Runs conv_convert_response and returns the parsed output (new reference). */
static inline json_t *rt_convert(struct rt *t, const char *body)
{
    struct buf out = BUF_INIT;
    struct conv_error err = {0};
    int rc = conv_convert_response(&t->cv, slice_from(body), &out, &err);
    if (rc != 0) fail_msg("conversion failed: %d %s: %s", err.status, err.type, err.message);
    json_t *v = rt_parse(&out);
    buf_free(&out);
    return v;
}

static inline json_t *rt_convert_json(struct rt *t, const json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_t *v = rt_convert(t, s);
    free(s);
    return v;
}

#endif
