/* fuzz_json_scan.c — libFuzzer differential target: json_scan against jansson 2.14.
 *
 * For every input: json_scan and json_loadb (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL) must agree on accept/reject, apart from the differences listed in
 * base/json_scan.h, each of which is proven here rather than assumed. For accepted
 * objects, every member's key, value span and type must match jansson's DOM, string
 * members must unescape to jansson's string, and a splice must produce valid JSON
 * with exactly the intended change. Any disagreement aborts, which libFuzzer reports
 * with the input. Built only with clang (see tests/fuzz/README.md). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/json_scan.h"

#define FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_json_scan: check failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static size_t dom_depth(json_t *j)
{
    size_t d = 0, sub;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if ((sub = dom_depth(json_array_get(j, i))) > d) d = sub;
        return d + 1;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) if ((sub = dom_depth(v)) > d) d = sub;
        return d + 1;
    }
    return 0;
}

static void check_accepted(pool_t *pool, const char *p, size_t n, const struct json_scan *s,
                           json_t *dom)
{
    if (!json_is_object(dom)) {
        CHECK(s->n_members == 0);
        return;
    }
    CHECK(s->root_type == JSON_T_OBJECT);
    CHECK(s->n_members == json_object_size(dom));
    for (size_t i = 0; i < s->n_members; i++) {
        const struct json_member *m = &s->members[i];
        json_t *want = json_object_getn(dom, m->key.p, m->key.n);
        CHECK(want != NULL);
        json_error_t e;
        json_t *got = json_loadb(m->value.p, m->value.n, FLAGS, &e);
        CHECK(got != NULL);
        CHECK(json_equal(got, want));
        json_decref(got);
        if (m->type == JSON_T_STRING) {
            struct slice str;
            CHECK(json_member_string(pool, m, &str));
            CHECK(str.n == json_string_length(want));
            CHECK(memcmp(str.p, json_string_value(want), str.n) == 0);
        }
    }
    /* Replace (or add) "model", and remove the first member. */
    struct slice out;
    CHECK(json_splice(pool, p, n, s, "model", "\"a\\\"b\"", &out) == 0);
    json_error_t e;
    json_t *after = json_loadb(out.p, out.n, FLAGS, &e);
    CHECK(after != NULL);
    json_t *expect = json_deep_copy(dom);
    json_object_set_new(expect, "model", json_string("a\"b"));
    CHECK(json_equal(after, expect));
    json_decref(after);
    json_decref(expect);
    if (s->n_members && !memchr(s->members[0].key.p, '\0', s->members[0].key.n)) {
        char *k = pool_strndup(pool, s->members[0].key.p, s->members[0].key.n);
        CHECK(json_splice(pool, p, n, s, k, NULL, &out) == 0);
        struct json_scan rs;
        CHECK(json_scan(pool, out.p, out.n, &rs) == 0);
        CHECK(rs.n_members == s->n_members - 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    pool_t *pool = pool_create();
    CHECK(pool != NULL);
    struct json_scan s;
    int rc = json_scan(pool, p, size, &s);
    json_error_t e;
    json_t *dom = json_loadb(p, size, FLAGS, &e);

    if (rc == 0 && dom) {
        check_accepted(pool, p, size, &s, dom);
    } else if (rc == 0) {
        /* jansson is stricter on number range and on nested duplicate keys. */
        int code = json_error_code(&e);
        if (code == json_error_duplicate_key) {
            json_t *loose = json_loadb(p, size, FLAGS & ~(size_t)JSON_REJECT_DUPLICATES, &e);
            CHECK(loose != NULL || json_error_code(&e) == json_error_numeric_overflow);
            if (json_is_object(loose)) CHECK(json_object_size(loose) == s.n_members);
            json_decref(loose);
        } else {
            CHECK(code == json_error_numeric_overflow);
        }
    } else if (dom) {
        /* json_scan is stricter on depth, and on a NUL right after a number or literal
         * (which jansson 2.14 silently drops). */
        if (strstr(s.error, "nesting deeper than 128")) {
            CHECK(dom_depth(dom) > JSON_SCAN_MAX_DEPTH);
        } else {
            CHECK(memchr(p, '\0', size) != NULL);
            char *c = pool_alloc(pool, size ? size : 1);
            size_t cn = 0;
            for (size_t i = 0; i < size; i++)
                if (!(p[i] == '\0' && i > 0 && isalnum((unsigned char)p[i - 1]))) c[cn++] = p[i];
            struct json_scan s2;
            CHECK(json_scan(pool, c, cn, &s2) == 0);
        }
    }
    json_decref(dom);

    /* The writer accepts exactly valid UTF-8, and its output unescapes back. */
    struct buf b = BUF_INIT;
    if (json_write_string(&b, p, size)) {
        size_t len;
        char *back = json_string_unescape(pool, buf_slice(&b), &len);
        CHECK(back && len == size && memcmp(back, p, size) == 0);
        json_t *js = json_stringn(p, size);
        CHECK(js != NULL); /* jansson agrees it is valid UTF-8 */
        json_decref(js);
    } else {
        CHECK(json_stringn(p, size) == NULL);
    }
    buf_free(&b);
    pool_destroy(pool);
    return 0;
}
