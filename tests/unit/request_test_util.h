/* request_test_util.h — shared helpers of the request-conversion tests: loading the test
 * vectors of tests/vectors/<name>/ (input.json, expected.json, profile.json), running one
 * decode → encode pipeline, and comparing JSON semantically (key order ignored, 1 == 1.0). */
#ifndef METARELAY_TESTS_REQUEST_TEST_UTIL_H
#define METARELAY_TESTS_REQUEST_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/pool.h"
#include "protocol/convert.h"

static inline enum api_format tu_format(const char *s)
{
    if (!strcmp(s, "chat")) return API_CHAT;
    if (!strcmp(s, "messages")) return API_MESSAGES;
    if (!strcmp(s, "responses")) return API_RESPONSES;
    return API_COMPLETIONS;
}

/* Semantic JSON equality: objects by key set, arrays in order, numbers by value. */
static inline bool tu_json_eq(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return fabs(json_number_value(a) - json_number_value(b)) < 1e-9;
    if (json_typeof(a) != json_typeof(b)) return false;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !tu_json_eq(v, w)) return false;
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!tu_json_eq(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* Whether key appears anywhere in v (objects at any depth). */
static inline bool tu_has_key(const json_t *v, const char *key)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!strcmp(k, key) || tu_has_key(x, key)) return true;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (tu_has_key(json_array_get(v, i), key)) return true;
    }
    return false;
}

static inline char *tu_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (s && fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
    }
    if (s) s[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return s;
}

/* Applies the profile overrides of a vector's profile.json. */
static inline void tu_profile(struct ir_profile *p, json_t *pj)
{
    ir_profile_defaults(p);
    json_t *v;
    if ((v = json_object_get(pj, "openai_max_completion_tokens")))
        p->openai_max_completion_tokens = json_is_true(v);
    if ((v = json_object_get(pj, "chat_history_reasoning")))
        p->chat_history_reasoning = json_is_true(v);
    if ((v = json_object_get(pj, "claude_structured_output_native")))
        p->claude_structured_output_native = json_is_true(v);
    if ((v = json_object_get(pj, "accepts_unsigned_thinking")))
        p->accepts_unsigned_thinking = json_is_true(v);
    if ((v = json_object_get(pj, "tool_name_max"))) p->tool_name_max = (int)json_integer_value(v);
    if ((v = json_object_get(pj, "model_max_output")))
        p->model_max_output = (long)json_integer_value(v);
    if ((v = json_object_get(pj, "claude_thinking"))) {
        const char *s = json_string_value(v);
        p->claude_thinking = !strcmp(s, "adaptive") ? IR_CLAUDE_THINKING_ADAPTIVE
                             : !strcmp(s, "none")   ? IR_CLAUDE_THINKING_NONE
                                                    : IR_CLAUDE_THINKING_BUDGET;
    }
    if ((v = json_object_get(pj, "anthropic_version")))
        p->anthropic_version = slice_from(json_string_value(v));
}

/* decode(client) then encode(upstream). Returns 0 and the body, or -1 and *err. */
static inline int tu_convert(pool_t *pool, enum api_format client, enum api_format upstream,
                             const struct ir_profile *prof, struct slice body, struct slice *out,
                             struct conv_error *err, struct conv **cv_out)
{
    struct ir_request *req = pool_calloc(pool, sizeof *req);
    if (conv_request_decode(client, pool, body, req, err) != 0) return -1;
    struct conv *cv = conv_new(pool, client, upstream, prof, req, req->model);
    if (cv_out) *cv_out = cv;
    return conv_encode_request(cv, out, err);
}

#endif
