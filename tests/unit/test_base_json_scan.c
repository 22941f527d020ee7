/* test_base_json_scan.c — json_scan: validation, error offsets, top-level members,
 * duplicate keys, unescaping, splices, and a differential test against jansson 2.14. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/json_scan.h"

/* Literal with its exact length, so embedded NUL bytes count. */
#define LIT(s) (s), (sizeof(s) - 1)

/* jansson flags that accept exactly one top-level value of any type, refuse
 * duplicate keys, and, like json_scan, allow \u0000 in string values. */
#define JANSSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static int setup(void **state)
{
    *state = pool_create();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pool_destroy(*state);
    return 0;
}

static int scan(void **state, const char *p, size_t n, struct json_scan *s)
{
    return json_scan(*state, p, n, s);
}

static void expect_ok(void **state, const char *p, size_t n)
{
    struct json_scan s;
    int rc = scan(state, p, n, &s);
    if (rc != 0) fail_msg("expected valid: %.*s -> %s", (int)n, p, s.error);
}

/* Asserts rejection at `offset` with `reason` in the message. */
static void expect_err(void **state, const char *p, size_t n, size_t offset, const char *reason)
{
    struct json_scan s;
    int rc = scan(state, p, n, &s);
    if (rc == 0) fail_msg("expected invalid: %.*s", (int)n, p);
    if (s.error_offset != offset || !strstr(s.error, reason))
        fail_msg("%.*s: got \"%s\" (offset %zu), want offset %zu, reason \"%s\"", (int)n, p,
                 s.error, s.error_offset, offset, reason);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "invalid JSON at byte %zu: ", offset);
    assert_true(strncmp(s.error, prefix, strlen(prefix)) == 0);
    assert_int_equal(s.n_members, 0);
}

/* ---- validity ------------------------------------------------------------------------ */

static void test_valid_documents(void **state)
{
    static const struct {
        const char *text;
        enum json_type root;
    } cases[] = {
        {"{}", JSON_T_OBJECT},
        {"[]", JSON_T_ARRAY},
        {" \t\r\n{ } \n", JSON_T_OBJECT},
        {"[ ]", JSON_T_ARRAY},
        {"\"\"", JSON_T_STRING},
        {"0", JSON_T_NUMBER},
        {"-0.0e-0", JSON_T_NUMBER},
        {"true", JSON_T_TRUE},
        {"false", JSON_T_FALSE},
        {"null", JSON_T_NULL},
        {"[1,\"a\",true,false,null,{},[],{\"k\":[{}]}]", JSON_T_ARRAY},
        {"{\"a\":{\"b\":{\"c\":[1,2,3]}},\"d\":\"e\"}", JSON_T_OBJECT},
        {"{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }", JSON_T_OBJECT},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u4E2D\\ud83d\\ude00\"", JSON_T_STRING},
        {"\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \x7f\"", JSON_T_STRING},
        {"{\"model\":\"claude-sonnet-4-5\",\"stream\":true,\"max_tokens\":1024}", JSON_T_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_scan s;
        int rc = scan(state, cases[i].text, strlen(cases[i].text), &s);
        if (rc) fail_msg("%s: %s", cases[i].text, s.error);
        assert_int_equal(s.root_type, cases[i].root);
    }
    struct json_scan s;
    assert_int_equal(scan(state, LIT("  [1, 2]\n"), &s), 0);
    assert_int_equal(s.root.n, 6);
    assert_memory_equal(s.root.p, "[1, 2]", 6);
}

/* The inputs design review finding 4 shows a non-validating scanner accepting. */
static void test_design_review_invalid_inputs(void **state)
{
    expect_err(state, LIT("{\"stream\":tru}"), 10, "invalid literal");
    expect_err(state, LIT("{\"a\" \"b\"}"), 5, "expected ':'");
    expect_err(state, LIT("{\"a\":1,}"), 7, "expected a string key");
    expect_err(state, LIT("[1,,2]"), 3, "expected a value");
    expect_err(state, LIT("{\"a\":-}"), 6, "expected a digit");
    expect_err(state, LIT("{\"a\":1.2.3}"), 8, "expected ',' or '}'");
    expect_err(state, LIT("{\"a\":1 \"b\":2}"), 7, "expected ',' or '}'");
    expect_err(state, LIT("{\"a\":\"x\x01y\"}"), 7, "control character in a string");
    expect_err(state, LIT("\"\xff\xfe\""), 1, "invalid UTF-8");
    expect_err(state, LIT("\xff\xfe"), 0, "expected a value");
    expect_err(state, LIT("{\"a\":1}\"x\""), 7, "unexpected data after the top-level value");
}

static void test_grammar_errors(void **state)
{
    expect_err(state, LIT(""), 0, "unexpected end of input");
    expect_err(state, LIT("   "), 3, "unexpected end of input");
    expect_err(state, LIT("{"), 1, "unexpected end of input");
    expect_err(state, LIT("{\"a\""), 4, "unexpected end of input");
    expect_err(state, LIT("{\"a\":"), 5, "unexpected end of input");
    expect_err(state, LIT("{\"a\":1"), 6, "unexpected end of input");
    expect_err(state, LIT("[1"), 2, "unexpected end of input");
    expect_err(state, LIT("[1,"), 3, "unexpected end of input");
    expect_err(state, LIT("\"abc"), 4, "unexpected end of input in a string");
    expect_err(state, LIT("\"abc\\"), 5, "unexpected end of input in a string");
    expect_err(state, LIT("{1:2}"), 1, "expected a string key or '}'");
    expect_err(state, LIT("{'a':1}"), 1, "expected a string key or '}'");
    expect_err(state, LIT("{\"a\":1,2:3}"), 7, "expected a string key");
    expect_err(state, LIT("[1}"), 2, "expected ',' or ']'");
    expect_err(state, LIT("{\"a\":1]"), 6, "expected ',' or '}'");
    expect_err(state, LIT("[1]]"), 3, "unexpected data after the top-level value");
    expect_err(state, LIT("1 2"), 2, "unexpected data after the top-level value");
    expect_err(state, LIT("{} {}"), 3, "unexpected data after the top-level value");
    expect_err(state, LIT("[,1]"), 1, "expected a value");
    expect_err(state, LIT("[1,]"), 3, "expected a value");
    expect_err(state, LIT("nul"), 0, "invalid literal");
    expect_err(state, LIT("True"), 0, "expected a value");
    expect_err(state, LIT("[truex]"), 5, "expected ',' or ']'");
    expect_err(state, LIT("[nan]"), 1, "invalid literal");
    expect_err(state, LIT("\xef\xbb\xbf{}"), 0, "expected a value"); /* BOM */
    expect_err(state, LIT("{}\x0c"), 2, "unexpected data after the top-level value");
    expect_err(state, LIT("/*c*/{}"), 0, "expected a value");
}

static void test_nul_bytes(void **state)
{
    expect_err(state, LIT("{\"a\":\"x\0y\"}"), 7, "NUL byte in a string");
    expect_err(state, LIT("{\"a\":1}\0"), 7, "unexpected data after the top-level value");
    expect_err(state, LIT("\0{}"), 0, "expected a value");
    expect_err(state, LIT("[1,\0 2]"), 3, "expected a value");
    expect_err(state, LIT("{\"a\0\":1}"), 3, "NUL byte in a string");
    /* NUL past the 16-byte fast path boundary. */
    expect_err(state, LIT("\"0123456789abcdefghijklmnop\0\""), 27, "NUL byte in a string");
    /* The escaped form is a valid value, but jansson cannot store it in a key. */
    expect_ok(state, LIT("{\"a\":\"x\\u0000y\"}"));
    expect_err(state, LIT("{\"a\\u0000\":1}"), 3, "\\u0000 in an object key");
    expect_err(state, LIT("[{\"k\":{\"\\u0000\":1}}]"), 8, "\\u0000 in an object key");
}

static void nested(struct buf *b, size_t depth, const char *open, const char *inner,
                   const char *close)
{
    b->n = 0;
    for (size_t i = 0; i < depth; i++) assert_true(buf_append_str(b, open));
    assert_true(buf_append_str(b, inner));
    for (size_t i = 0; i < depth; i++) assert_true(buf_append_str(b, close));
}

static void test_depth_limit(void **state)
{
    struct buf b = BUF_INIT;
    nested(&b, 128, "[", "", "]");
    expect_ok(state, b.p, b.n);
    nested(&b, 128, "[", "1", "]");
    expect_ok(state, b.p, b.n);
    nested(&b, 129, "[", "", "]");
    expect_err(state, b.p, b.n, 128, "nesting deeper than 128");
    nested(&b, 127, "{\"a\":", "{}", "}");
    expect_ok(state, b.p, b.n);
    nested(&b, 128, "{\"a\":", "{}", "}");
    expect_err(state, b.p, b.n, 128 * 5, "nesting deeper than 128");
    nested(&b, 64, "[{\"k\":", "0", "}]");
    expect_ok(state, b.p, b.n);
    nested(&b, 64, "[{\"k\":", "[]", "}]");
    expect_err(state, b.p, b.n, 64 * 6, "nesting deeper than 128");
    /* Depth is about open containers, not their count: many siblings are fine. */
    b.n = 0;
    assert_true(buf_append_str(&b, "["));
    for (int i = 0; i < 1000; i++) assert_true(buf_append_str(&b, i ? ",[[]]" : "[[]]"));
    assert_true(buf_append_str(&b, "]"));
    expect_ok(state, b.p, b.n);
    /* A deep unterminated prefix is rejected without recursion. */
    nested(&b, 100000, "[", "", "");
    expect_err(state, b.p, b.n, 128, "nesting deeper than 128");
    buf_free(&b);
}

static void test_strings_and_escapes(void **state)
{
    expect_ok(state, LIT("\"\\ud800\\udc00\\udbff\\udfff\""));
    expect_err(state, LIT("\"\\ud800\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\ud800x\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\ud800\\n\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\ud800\\u0041\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\ud800\\ud800\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\ud800\\uzzzz\""), 7, "invalid \\u escape");
    expect_err(state, LIT("\"\\udc00\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\udfff\\ud800\""), 1, "unpaired surrogate");
    expect_err(state, LIT("\"\\u12\""), 1, "invalid \\u escape");
    expect_err(state, LIT("\"\\u12g4\""), 1, "invalid \\u escape");
    expect_err(state, LIT("\"\\U0041\""), 1, "invalid escape");
    expect_err(state, LIT("\"\\x41\""), 1, "invalid escape");
    expect_err(state, LIT("\"\\'\""), 1, "invalid escape");
    expect_err(state, LIT("\"a\tb\""), 2, "control character in a string");
    expect_err(state, LIT("\"a\nb\""), 2, "control character in a string");
    expect_err(state, LIT("\"a\x1f\""), 2, "control character in a string");
    expect_ok(state, LIT("\"a\x7f\""));
    expect_ok(state, LIT("\"\\uFFFF\\uabcd\\uABCD\""));
}

static void test_utf8(void **state)
{
    expect_ok(state, LIT("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\""));
    expect_ok(state, LIT("\"\xf0\x90\x80\x80\xf3\xbf\xbf\xbf\xf4\x8f\xbf\xbf\""));
    expect_err(state, LIT("\"\xc0\x80\""), 1, "invalid UTF-8");         /* overlong NUL */
    expect_err(state, LIT("\"\xc1\xbf\""), 1, "invalid UTF-8");         /* overlong */
    expect_err(state, LIT("\"\xe0\x80\xaf\""), 1, "invalid UTF-8");     /* overlong '/' */
    expect_err(state, LIT("\"\xe0\x9f\xbf\""), 1, "invalid UTF-8");     /* overlong */
    expect_err(state, LIT("\"\xf0\x80\x80\xaf\""), 1, "invalid UTF-8"); /* overlong */
    expect_err(state, LIT("\"\xf0\x8f\xbf\xbf\""), 1, "invalid UTF-8"); /* overlong */
    expect_err(state, LIT("\"\xed\xa0\x80\""), 1, "invalid UTF-8");     /* U+D800 */
    expect_err(state, LIT("\"\xed\xbf\xbf\""), 1, "invalid UTF-8");     /* U+DFFF */
    expect_err(state, LIT("\"\xf4\x90\x80\x80\""), 1, "invalid UTF-8"); /* U+110000 */
    expect_err(state, LIT("\"\xf5\x80\x80\x80\""), 1, "invalid UTF-8");
    expect_err(state, LIT("\"\xf8\x88\x80\x80\x80\""), 1, "invalid UTF-8");
    expect_err(state, LIT("\"\x80\""), 1, "invalid UTF-8");
    expect_err(state, LIT("\"\xbf\""), 1, "invalid UTF-8");
    expect_err(state, LIT("\"a\xc3\""), 2, "invalid UTF-8");            /* truncated by the quote */
    expect_err(state, LIT("\"a\xe4\xb8\""), 2, "invalid UTF-8");        /* truncated */
    expect_err(state, LIT("\"a\xe4\xb8"), 2, "invalid UTF-8");          /* truncated by the end */
    expect_err(state, LIT("\"\xf0\x9f\x98\x41\""), 1, "invalid UTF-8"); /* bad 4th byte */
    expect_err(state, LIT("[\xc3\xa9]"), 1, "expected a value");        /* outside a string */
    /* Bad bytes at every position around the 16-byte block boundaries. */
    char s[64];
    for (size_t at = 1; at < 50; at++) {
        memset(s, 'x', sizeof s);
        s[0] = '"';
        s[at] = (char)0xff;
        s[55] = '"';
        expect_err(state, s, 56, at, "invalid UTF-8");
        s[at] = '\x05';
        expect_err(state, s, 56, at, "control character");
        s[at] = '"';
        expect_err(state, s, 56, at + 1, "unexpected data after the top-level value");
        s[at] = '\\';
        s[at + 1] = 'q';
        expect_err(state, s, 56, at, "invalid escape");
        s[at + 1] = '"';
        expect_ok(state, s, 56);
        memcpy(s + at, "\xe4\xb8\xad", 3);
        expect_ok(state, s, 56);
        memcpy(s + at, "\xe4\xb8x", 3);
        expect_err(state, s, 56, at, "invalid UTF-8");
    }
}

static void test_numbers(void **state)
{
    static const char *valid[] = {
        "0",
        "-0",
        "1",
        "-1",
        "10",
        "1234567890",
        "0.5",
        "-0.5",
        "1.25",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "1.5e+10",
        "-0e0",
        "0E-0",
        "1e007",
        "0.000",
        "123.456e78",
        "-9.9E-99",
        "123456789012345678901234567890", /* syntax only: jansson rejects, see differential */
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char doc[64];
        int n = snprintf(doc, sizeof doc, "[%s]", valid[i]);
        expect_ok(state, doc, (size_t)n);
        expect_ok(state, valid[i], strlen(valid[i]));
    }
    expect_err(state, LIT("01"), 0, "leading zero");
    expect_err(state, LIT("[-01]"), 2, "leading zero");
    expect_err(state, LIT("[00]"), 1, "leading zero");
    expect_err(state, LIT("[1.]"), 3, "expected a digit after '.'");
    expect_err(state, LIT("[1.e5]"), 3, "expected a digit after '.'");
    expect_err(state, LIT("[.5]"), 1, "expected a value");
    expect_err(state, LIT("[+1]"), 1, "expected a value");
    expect_err(state, LIT("[1e]"), 3, "expected a digit in the exponent");
    expect_err(state, LIT("[1e+]"), 4, "expected a digit in the exponent");
    expect_err(state, LIT("[1e+-1]"), 4, "expected a digit in the exponent");
    expect_err(state, LIT("[--1]"), 2, "expected a digit");
    expect_err(state, LIT("-"), 1, "unexpected end of input in a number");
    expect_err(state, LIT("[0x10]"), 2, "expected ',' or ']'");
    expect_err(state, LIT("[1 2]"), 3, "expected ',' or ']'");
    expect_err(state, LIT("[Infinity]"), 1, "expected a value");
    expect_err(state, LIT("[-Infinity]"), 2, "expected a digit");
    expect_err(state, LIT("1.5."), 3, "unexpected data after the top-level value");
}

/* ---- members ---------------------------------------------------------------------- */

static void test_members(void **state)
{
    static const char body[] = " { \"model\" : \"gpt-4o\", \"stream\":true,\"n\":-1.5e3,"
                               "\"m\\u0065ta\\n\":{\"x\":[1]},\"arr\":[{\"model\":\"no\"}],"
                               "\"nil\":null,\"off\":false } ";
    struct json_scan s;
    assert_int_equal(scan(state, LIT(body), &s), 0);
    assert_int_equal(s.root_type, JSON_T_OBJECT);
    assert_int_equal(s.n_members, 7);
    assert_ptr_equal(s.root.p, body + 1);
    assert_int_equal(s.root.n, sizeof body - 3);

    const struct json_member *m = &s.members[0];
    assert_true(slice_eq_str(m->key_raw, "model"));
    assert_true(slice_eq_str(m->key, "model"));
    assert_true(slice_eq_str(m->value, "\"gpt-4o\""));
    assert_int_equal(m->type, JSON_T_STRING);
    assert_int_equal(m->key_offset, 3);
    assert_ptr_equal(m->value.p, body + 13);

    assert_int_equal(s.members[1].type, JSON_T_TRUE);
    assert_true(slice_eq_str(s.members[2].value, "-1.5e3"));
    assert_int_equal(s.members[2].type, JSON_T_NUMBER);
    assert_true(slice_eq_str(s.members[3].key_raw, "m\\u0065ta\\n"));
    assert_true(slice_eq_str(s.members[3].key, "meta\n"));
    assert_true(slice_eq_str(s.members[3].value, "{\"x\":[1]}"));
    assert_int_equal(s.members[3].type, JSON_T_OBJECT);
    assert_int_equal(s.members[4].type, JSON_T_ARRAY);
    assert_int_equal(s.members[5].type, JSON_T_NULL);
    assert_int_equal(s.members[6].type, JSON_T_FALSE);
    assert_true(slice_eq_str(s.members[6].value, "false"));

    assert_ptr_equal(json_scan_get(&s, "model"), &s.members[0]);
    assert_ptr_equal(json_scan_get(&s, "meta\n"), &s.members[3]);
    assert_null(json_scan_get(&s, "m\\u0065ta\\n"));
    assert_null(json_scan_get(&s, "x"));
    assert_null(json_scan_get(&s, "mode"));

    bool v = false;
    assert_true(json_member_bool(json_scan_get(&s, "stream"), &v));
    assert_true(v);
    assert_true(json_member_bool(json_scan_get(&s, "off"), &v));
    assert_false(v);
    assert_false(json_member_bool(json_scan_get(&s, "nil"), &v));
    assert_false(json_member_bool(json_scan_get(&s, "model"), &v));
    assert_false(json_member_bool(NULL, &v));

    struct slice str;
    assert_true(json_member_string(*state, json_scan_get(&s, "model"), &str));
    assert_true(slice_eq_str(str, "gpt-4o"));
    assert_ptr_equal(str.p, body + 14); /* borrowed: no escapes */
    assert_false(json_member_string(*state, json_scan_get(&s, "n"), &str));
    assert_false(json_member_string(*state, NULL, &str));

    /* Non-object roots have no members. */
    assert_int_equal(scan(state, LIT("[{\"model\":1}]"), &s), 0);
    assert_int_equal(s.root_type, JSON_T_ARRAY);
    assert_int_equal(s.n_members, 0);
    assert_null(json_scan_get(&s, "model"));
    assert_int_equal(scan(state, LIT("{}"), &s), 0);
    assert_int_equal(s.n_members, 0);
}

static void test_nested_keys_are_not_top_level(void **state)
{
    static const char body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"model\":\"expensive\"}],"
        "\"metadata\":{\"model\":\"x\",\"stream\":true},\"model\":\"cheap\","
        "\"tools\":[{\"input_schema\":{\"properties\":{\"model\":{\"type\":\"string\"}}}}]}";
    struct json_scan s;
    assert_int_equal(scan(state, LIT(body), &s), 0);
    assert_int_equal(s.n_members, 4);
    struct slice model;
    assert_true(json_member_string(*state, json_scan_get(&s, "model"), &model));
    assert_true(slice_eq_str(model, "cheap"));
    assert_null(json_scan_get(&s, "stream"));
    assert_null(json_scan_get(&s, "role"));
    /* A key in a nested object equal to a top-level one is not a duplicate. */
    assert_int_equal(scan(state, LIT("{\"model\":\"a\",\"x\":{\"model\":\"b\"}}"), &s), 0);
    assert_int_equal(s.n_members, 2);
    /* Strings that look like keys are not keys. */
    assert_int_equal(scan(state, LIT("{\"a\":\"\\\"model\\\":1\",\"model\":2}"), &s), 0);
    assert_true(slice_eq_str(json_scan_get(&s, "model")->value, "2"));
}

static void test_duplicate_keys(void **state)
{
    expect_err(state, LIT("{\"model\":\"a\",\"model\":\"b\"}"), 13,
               "duplicate top-level key \"model\"");
    expect_err(state, LIT("{\"model\":\"a\",\"stream\":true,\"mod\\u0065l\":\"b\"}"), 27,
               "duplicate top-level key \"model\"");
    expect_err(state, LIT("{\"\\u006dodel\":\"a\",\"model\":\"b\"}"), 18,
               "duplicate top-level key");
    expect_err(state, LIT("{\"a\\/b\":1,\"a/b\":2}"), 10, "duplicate top-level key \"a/b\"");
    expect_err(state, LIT("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}"), 18,
               "duplicate top-level key");
    expect_err(state, LIT("{\"\":1,\"\":2}"), 6, "duplicate top-level key \"\"");
    /* The earliest repeat is reported, not the first key that repeats. */
    expect_err(state, LIT("{\"a\":1,\"b\":2,\"b\":3,\"a\":4}"), 13,
               "duplicate top-level key \"b\"");
    /* Keys that differ only after unescaping are distinct. */
    expect_ok(state, LIT("{\"a\\n\":1,\"a\\\\n\":2,\"A\":3,\"a\":4,\"a \":5}"));
    /* A syntax error anywhere wins over a duplicate. */
    expect_err(state, LIT("{\"a\":1,\"a\":2,}"), 13, "expected a string key");

    /* Many members: the sorted path finds the same earliest repeat. */
    struct buf b = BUF_INIT;
    assert_true(buf_append_str(&b, "{"));
    for (int i = 0; i < 3000; i++) assert_true(buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i));
    assert_true(buf_append_str(&b, "}"));
    struct json_scan s;
    assert_int_equal(scan(state, b.p, b.n, &s), 0);
    assert_int_equal(s.n_members, 3000);
    assert_true(slice_eq_str(json_scan_get(&s, "k2999")->value, "2999"));
    b.n--; /* drop '}', add repeats of k12 (at `first`) and k7 (at `second`) */
    size_t first = b.n + 1;
    assert_true(buf_append_str(&b, ",\"k12\":0,\"k\\u0037\":0}"));
    size_t second = first + 8;
    assert_int_equal(scan(state, b.p, b.n, &s), -1);
    assert_int_equal(s.error_offset, first);
    assert_non_null(strstr(s.error, "\"k12\""));
    b.p[first + 2] = '9'; /* "k92" repeats too, at the same offset */
    assert_int_equal(scan(state, b.p, b.n, &s), -1);
    assert_int_equal(s.error_offset, first);
    b.p[first + 2] = 'x'; /* "kx2" is new: now the \u0037 one is the repeat */
    assert_int_equal(scan(state, b.p, b.n, &s), -1);
    assert_int_equal(s.error_offset, second);
    assert_non_null(strstr(s.error, "\"k7\""));
    buf_free(&b);
}

static void test_member_limit(void **state)
{
    struct buf b = BUF_INIT;
    assert_true(buf_append_str(&b, "{"));
    for (int i = 0; i < 10000; i++) assert_true(buf_printf(&b, "%s\"%d\":0", i ? "," : "", i));
    assert_true(buf_append_str(&b, "}"));
    expect_ok(state, b.p, b.n);
    b.n--;
    size_t at = b.n + 1;
    assert_true(buf_append_str(&b, ",\"x\":0}"));
    expect_err(state, b.p, b.n, at, "more than 10000 members");
    /* Nested objects are not limited. */
    b.n = 0;
    assert_true(buf_append_str(&b, "[{"));
    for (int i = 0; i < 20000; i++) assert_true(buf_printf(&b, "%s\"%d\":0", i ? "," : "", i));
    assert_true(buf_append_str(&b, "}]"));
    expect_ok(state, b.p, b.n);
    buf_free(&b);
}

static void test_scan_object(void **state)
{
    static const char body[] =
        "{\"model\":\"m\",\"stream\":true,\"stream_options\": { \"include_usage\" : true },"
        "\"n\":[1]}";
    struct json_scan s, o;
    assert_int_equal(scan(state, LIT(body), &s), 0);
    const struct json_member *so = json_scan_get(&s, "stream_options");
    assert_non_null(so);
    assert_int_equal(json_scan_object(*state, so->value, &o), 0);
    assert_int_equal(o.n_members, 1);
    bool usage = false;
    assert_true(json_member_bool(json_scan_get(&o, "include_usage"), &usage));
    assert_true(usage);
    assert_int_equal(o.members[0].key_offset, 2); /* relative to the value */
    /* The members of s are untouched. */
    assert_int_equal(s.n_members, 4);
    assert_int_equal(json_scan_object(*state, json_scan_get(&s, "n")->value, &o), -1);
    assert_non_null(strstr(o.error, "not an object"));
    assert_int_equal(json_scan_object(*state, slice_from(" \"x\""), &o), -1);
    assert_int_equal(o.error_offset, 1);
    assert_int_equal(json_scan_object(*state, slice_from("{\"a\":1,\"a\":2}"), &o), -1);
    assert_non_null(strstr(o.error, "duplicate"));
    assert_int_equal(json_scan_object(*state, SLICE_NULL, &o), -1);
}

static void test_string_unescape(void **state)
{
    size_t len = 99;
    char *s = json_string_unescape(*state, slice_from("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""), &len);
    assert_non_null(s);
    assert_int_equal(len, 12);
    assert_memory_equal(s, "a\"b\\c/d\b\f\n\r\t", 13);
    s = json_string_unescape(*state, slice_from("\"\\u00e9\\u4e2d\\ud83d\\ude00\\u0041\""), &len);
    assert_non_null(s);
    assert_string_equal(s, "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"
                           "A");
    assert_int_equal(len, 10);
    s = json_string_unescape(*state, slice_from("\"x\\u0000y\""), &len);
    assert_non_null(s);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 4);
    s = json_string_unescape(*state, slice_from("\"\""), NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_null(json_string_unescape(*state, slice_from("abc"), &len));
    assert_null(json_string_unescape(*state, slice_from("\""), &len));
    assert_null(json_string_unescape(*state, slice_from("\"abc"), &len));
    assert_null(json_string_unescape(*state, slice_from("\"a\"b\""), &len));
    assert_null(json_string_unescape(*state, slice_from("\"\\ud800\""), &len));
    assert_null(json_string_unescape(*state, slice_from("\"\xff\""), &len));
    assert_null(json_string_unescape(*state, slice_from("\"\\\""), &len));
    assert_null(json_string_unescape(*state, SLICE_NULL, &len));
    assert_null(json_string_unescape(*state, slice_from("123"), &len));

    struct json_scan sc;
    assert_int_equal(scan(state, LIT("{\"m\":\"gpt\\u002d4\\n\"}"), &sc), 0);
    struct slice v;
    assert_true(json_member_string(*state, &sc.members[0], &v));
    assert_true(slice_eq_str(v, "gpt-4\n"));
}

static void test_write_string(void **state)
{
    struct buf b = BUF_INIT;
    static const char in[] = "a\"b\\c/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80";
    assert_true(json_write_string(&b, in, sizeof in - 1));
    static const char want[] =
        "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\xf0\x9f\x98\x80\"";
    assert_int_equal(b.n, sizeof want - 1);
    assert_memory_equal(b.p, want, b.n);
    /* It round-trips through the scanner and the unescaper. */
    size_t len;
    char *back = json_string_unescape(*state, buf_slice(&b), &len);
    assert_non_null(back);
    assert_int_equal(len, sizeof in - 1);
    assert_memory_equal(back, in, len);
    /* NUL becomes \u0000. */
    b.n = 0;
    assert_true(json_write_string(&b, "x\0y", 3));
    assert_true(slice_eq_str(buf_slice(&b), "\"x\\u0000y\""));
    /* Invalid UTF-8 is refused and the buffer is left as it was. */
    b.n = 0;
    assert_true(buf_append_str(&b, "keep"));
    assert_false(json_write_string(&b, "ok\xff", 3));
    assert_false(json_write_string(&b, "\xed\xa0\x80", 3));
    assert_false(json_write_string(&b, "\xe4\xb8", 2));
    assert_true(slice_eq_str(buf_slice(&b), "keep"));
    assert_true(json_write_string(&b, "", 0));
    assert_true(slice_eq_str(buf_slice(&b), "keep\"\""));
    buf_free(&b);
}

/* ---- splices ---------------------------------------------------------------------- */

/* Splices and checks the result is valid JSON equal (per jansson) to `want`. */
static void check_splice(void **state, const char *body, const char *key, const char *value,
                         const char *want_text, const char *want_json)
{
    struct json_scan s, r;
    assert_int_equal(scan(state, body, strlen(body), &s), 0);
    struct slice out;
    assert_int_equal(json_splice(*state, body, strlen(body), &s, key, value, &out), 0);
    if (want_text && !slice_eq_str(out, want_text))
        fail_msg("splice %s=%s of %s: got %.*s, want %s", key, value ? value : "(remove)", body,
                 (int)out.n, out.p, want_text);
    if (scan(state, out.p, out.n, &r) != 0) fail_msg("splice result invalid: %s", r.error);
    json_error_t e;
    json_t *got = json_loadb(out.p, out.n, JANSSON_FLAGS, &e);
    json_t *want = json_loads(want_json, JANSSON_FLAGS, &e);
    assert_non_null(got);
    assert_non_null(want);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
}

static void test_splice(void **state)
{
    const char *b = "{\"model\":\"a\",\"stream\":true,\"n\":1}";
    /* replace */
    check_splice(state, b, "model", "\"gpt-4o\"", "{\"model\":\"gpt-4o\",\"stream\":true,\"n\":1}",
                 "{\"model\":\"gpt-4o\",\"stream\":true,\"n\":1}");
    check_splice(state, b, "n", " [1, {\"x\":2}] ",
                 "{\"model\":\"a\",\"stream\":true,\"n\":[1, {\"x\":2}]}",
                 "{\"model\":\"a\",\"stream\":true,\"n\":[1,{\"x\":2}]}");
    /* remove first, middle, last, only, absent */
    check_splice(state, b, "model", NULL, "{\"stream\":true,\"n\":1}", "{\"stream\":true,\"n\":1}");
    check_splice(state, b, "stream", NULL, "{\"model\":\"a\",\"n\":1}",
                 "{\"model\":\"a\",\"n\":1}");
    check_splice(state, b, "n", NULL, "{\"model\":\"a\",\"stream\":true}",
                 "{\"model\":\"a\",\"stream\":true}");
    check_splice(state, "{\"n\":1}", "n", NULL, "{}", "{}");
    check_splice(state, " { \"n\" : 1 } ", "n", NULL, " {  } ", "{}");
    check_splice(state, "{ \"a\" : 1 ,\n \"b\" : 2 }", "a", NULL, "{ \"b\" : 2 }", "{\"b\":2}");
    check_splice(state, "{ \"a\" : 1 ,\n \"b\" : 2 }", "b", NULL, "{ \"a\" : 1 }", "{\"a\":1}");
    check_splice(state, b, "absent", NULL, b, "{\"model\":\"a\",\"stream\":true,\"n\":1}");
    /* add */
    check_splice(
        state, b, "stream_options", "{\"include_usage\":true}",
        "{\"model\":\"a\",\"stream\":true,\"n\":1,\"stream_options\":{\"include_usage\":true}}",
        "{\"model\":\"a\",\"stream\":true,\"n\":1,\"stream_options\":{\"include_usage\":true}}");
    check_splice(state, "{}", "k", "1", "{\"k\":1}", "{\"k\":1}");
    check_splice(state, " { \n } ", "k", "1", " {\"k\":1 \n } ", "{\"k\":1}");
    check_splice(state, "{\"a\":1}", "we\"ird\\key\n", "null",
                 "{\"a\":1,\"we\\\"ird\\\\key\\n\":null}",
                 "{\"a\":1,\"we\\\"ird\\\\key\\n\":null}");
    /* the member is found by its unescaped key */
    check_splice(state, "{\"mod\\u0065l\":\"a\",\"x\":[]}", "model", "\"b\"",
                 "{\"mod\\u0065l\":\"b\",\"x\":[]}", "{\"model\":\"b\",\"x\":[]}");
    /* nested same-named keys are left alone */
    check_splice(state, "{\"m\":{\"model\":1},\"model\":2}", "model", "3",
                 "{\"m\":{\"model\":1},\"model\":3}", "{\"m\":{\"model\":1},\"model\":3}");
    check_splice(state, "{\"m\":{\"model\":1}}", "model", NULL, "{\"m\":{\"model\":1}}",
                 "{\"m\":{\"model\":1}}");

    /* A replacement string with quotes, backslashes and control bytes, escaped by
     * json_write_string, lands intact. */
    struct buf v = BUF_INIT;
    static const char raw[] = "evil\",\"model\":\"gpt-5\\\x01\n\x1f";
    assert_true(json_write_string(&v, raw, sizeof raw - 1));
    assert_true(buf_nul(&v));
    struct json_scan s, r;
    assert_int_equal(scan(state, b, strlen(b), &s), 0);
    struct slice out;
    assert_int_equal(json_splice(*state, b, strlen(b), &s, "model", v.p, &out), 0);
    assert_int_equal(scan(state, out.p, out.n, &r), 0);
    assert_int_equal(r.n_members, 3);
    struct slice got;
    assert_true(json_member_string(*state, json_scan_get(&r, "model"), &got));
    assert_int_equal(got.n, sizeof raw - 1);
    assert_memory_equal(got.p, raw, got.n);
    assert_int_equal(out.p[out.n], '\0');
    buf_free(&v);

    /* Refusals. */
    assert_int_equal(json_splice(*state, b, strlen(b), &s, "model", "\"unterminated", &out), -1);
    assert_int_equal(json_splice(*state, b, strlen(b), &s, "model", "1, \"x\":2", &out), -1);
    assert_int_equal(json_splice(*state, b, strlen(b), &s, "model", "", &out), -1);
    assert_int_equal(json_splice(*state, b, strlen(b), &s, "k\xff", "1", &out), -1);
    assert_int_equal(json_splice(*state, b, strlen(b), NULL, "model", "1", &out), -1);
    assert_int_equal(scan(state, LIT("[1]"), &s), 0);
    assert_int_equal(json_splice(*state, "[1]", 3, &s, "model", "1", &out), -1);
}

/* ---- differential test against jansson ---------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static unsigned below(struct rng *r, unsigned n)
{
    return (unsigned)(rnd(r) % n);
}

static void pick(struct rng *r, struct buf *b, const char *const *opts, size_t n)
{
    assert_true(buf_append_str(b, opts[below(r, (unsigned)n)]));
}
#define PICK(r, b, arr) pick((r), (b), (arr), sizeof(arr) / sizeof((arr)[0]))

static void gen_ws(struct rng *r, struct buf *b)
{
    static const char *ws[] = {"", "", "", "", " ", "\n", "  ", "\t", "\r\n", " \t"};
    PICK(r, b, ws);
}

/* String body pieces; a few are invalid so that rejections come from everywhere. */
static void gen_string(struct rng *r, struct buf *b, bool key)
{
    static const char *keys[] = {"a",   "b", "model",   "mod\\u0065l", "stream",  "a\\/b",
                                 "a/b", "",  "\\u00e9", "\xc3\xa9",    "k\\u0000"};
    static const char *good[] = {"x",
                                 "hello",
                                 " ",
                                 "\\n",
                                 "\\\"",
                                 "\\\\",
                                 "\\/",
                                 "\\t",
                                 "\\b\\f\\r",
                                 "\\u00e9",
                                 "\\u4E2d",
                                 "\\ud83d\\ude00",
                                 "\\u0000",
                                 "\xc3\xa9",
                                 "\xe4\xb8\xad",
                                 "\xf0\x9f\x98\x80",
                                 "\x7f",
                                 "0123456789abcdefghij",
                                 "\xf4\x8f\xbf\xbf",
                                 "\xed\x9f\xbf",
                                 "\xee\x80\x80"};
    static const char *bad[] = {
        "\\ud800", "\\udc00", "\\ud800\\u0041", "\\x",          "\\u12",
        "\x01",    "\x1f",    "\xc0\x80",       "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xff",    "\x80",    "\xe4\xb8",       "\t",           "\n"};
    assert_true(buf_append_str(b, "\""));
    if (key && below(r, 3)) {
        PICK(r, b, keys);
    } else {
        unsigned pieces = below(r, 5);
        for (unsigned i = 0; i < pieces; i++) {
            if (below(r, 40) == 0)
                PICK(r, b, bad);
            else
                PICK(r, b, good);
        }
    }
    assert_true(buf_append_str(b, "\""));
}

static void gen_number(struct rng *r, struct buf *b)
{
    static const char *ints[] = {"0",
                                 "1",
                                 "7",
                                 "42",
                                 "123456",
                                 "9223372036854775807",
                                 "9223372036854775808",
                                 "123456789012345678901234567890"};
    static const char *fracs[] = {".0", ".5", ".25", ".000001"};
    static const char *exps[] = {"e5", "E+2", "e-7", "e308", "e309", "E400", "e-400", "e0"};
    static const char *bad[] = {"01", "-", "1.", ".5", "1e", "1e+", "+1", "--1", "0x1", "1.2.3"};
    if (below(r, 30) == 0) {
        PICK(r, b, bad);
        return;
    }
    if (below(r, 3) == 0) assert_true(buf_append_str(b, "-"));
    PICK(r, b, ints);
    if (below(r, 3) == 0) PICK(r, b, fracs);
    if (below(r, 4) == 0) PICK(r, b, exps);
}

static void gen_value(struct rng *r, struct buf *b, int depth)
{
    static const char *lits[] = {"true", "false", "null"};
    static const char *bad_lits[] = {"tru", "nul", "True", "NaN", "undefined", "'x'"};
    unsigned kind = below(r, depth > 5 ? 4 : 7);
    switch (kind) {
    case 0:
        gen_string(r, b, false);
        return;
    case 1:
        gen_number(r, b);
        return;
    case 2:
        if (below(r, 40) == 0)
            PICK(r, b, bad_lits);
        else
            PICK(r, b, lits);
        return;
    case 3:
        if (below(r, 2)) {
            gen_string(r, b, false);
            return;
        }
        /* fallthrough */
    case 4:
    case 5: {
        assert_true(buf_append_str(b, "{"));
        unsigned n = below(r, 5);
        for (unsigned i = 0; i < n; i++) {
            if (i) assert_true(buf_append_str(b, ","));
            gen_ws(r, b);
            gen_string(r, b, true);
            gen_ws(r, b);
            assert_true(buf_append_str(b, ":"));
            gen_ws(r, b);
            gen_value(r, b, depth + 1);
            gen_ws(r, b);
        }
        if (below(r, 60) == 0) assert_true(buf_append_str(b, ","));
        assert_true(buf_append_str(b, "}"));
        return;
    }
    default: {
        assert_true(buf_append_str(b, "["));
        unsigned n = below(r, 5);
        for (unsigned i = 0; i < n; i++) {
            if (i) assert_true(buf_append_str(b, ","));
            gen_ws(r, b);
            gen_value(r, b, depth + 1);
            gen_ws(r, b);
        }
        if (below(r, 60) == 0) assert_true(buf_append_str(b, ","));
        assert_true(buf_append_str(b, "]"));
        return;
    }
    }
}

/* Bytes that matter to a JSON parser, for mutations. */
static const unsigned char interesting[] = {
    '"',  '\\', ',',  ':',  '{',  '}',  '[',  ']',  '0',  '1',  '-',  '+',  '.',
    'e',  'E',  'u',  'd',  'D',  '8',  'n',  't',  ' ',  '\n', 0x00, 0x01, 0x1f,
    0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff};

static void mutate(struct rng *r, struct buf *b)
{
    unsigned n = 1 + below(r, 3);
    for (unsigned i = 0; i < n; i++) {
        size_t at = b->n ? below(r, (unsigned)b->n) : 0;
        unsigned char byte = interesting[below(r, sizeof interesting)];
        switch (below(r, 5)) {
        case 0: /* overwrite */
            if (b->n) b->p[at] = (char)byte;
            break;
        case 1: /* insert */
            assert_true(buf_reserve(b, 1));
            memmove(b->p + at + 1, b->p + at, b->n - at);
            b->p[at] = (char)byte;
            b->n++;
            break;
        case 2: /* delete */
            if (b->n) {
                memmove(b->p + at, b->p + at + 1, b->n - at - 1);
                b->n--;
            }
            break;
        case 3: /* truncate */
            b->n = at;
            break;
        default: { /* duplicate a short range in place */
            size_t len = below(r, 8);
            if (at + len > b->n) len = b->n - at;
            assert_true(buf_reserve(b, len));
            memmove(b->p + at + len, b->p + at, b->n - at);
            b->n += len;
            break;
        }
        }
    }
}

/* Depth of open containers in a jansson value (1 for an empty array). */
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

struct diff_stats {
    unsigned cases, both_ok, both_bad;
    unsigned numeric_overflow; /* we accept, jansson: integer/real out of range */
    unsigned nested_dup;       /* we accept, jansson: duplicate key in a nested object */
    unsigned too_deep;         /* we reject (> 128), jansson accepts (its limit is 2048) */
    unsigned nul_after_token;  /* we reject, jansson skips a NUL after a number/literal */
};

/* For an accepted document: members, spans and types agree with jansson's DOM, and a
 * splice of one member re-validates and changes only that member. */
static void check_members(void **state, const char *p, size_t n, const struct json_scan *s,
                          json_t *dom, struct rng *r)
{
    if (!json_is_object(dom)) {
        assert_int_equal(s->n_members, 0);
        return;
    }
    assert_int_equal(s->root_type, JSON_T_OBJECT);
    assert_int_equal(s->n_members, json_object_size(dom));
    for (size_t i = 0; i < s->n_members; i++) {
        const struct json_member *m = &s->members[i];
        json_t *want = json_object_getn(dom, m->key.p, m->key.n);
        if (!want)
            fail_msg("member %zu key \"%.*s\" not in jansson's object: %.*s", i, (int)m->key.n,
                     m->key.p, (int)n, p);
        json_error_t e;
        json_t *got = json_loadb(m->value.p, m->value.n, JANSSON_FLAGS, &e);
        assert_non_null(got);
        assert_true(json_equal(got, want));
        json_decref(got);
        char *k = pool_strndup(*state, m->key.p, m->key.n);
        assert_ptr_equal(json_scan_get(s, k), m);
    }
    /* Splice a random member (or a new one) and check the result. */
    static const char *values[] = {"\"x\\\"y\"", "[1,{\"model\":2}]", "null", "-1.5e3", NULL};
    const char *key = "model";
    if (s->n_members && below(r, 2)) {
        const struct json_member *m = &s->members[below(r, (unsigned)s->n_members)];
        if (memchr(m->key.p, '\0', m->key.n)) return;
        key = pool_strndup(*state, m->key.p, m->key.n);
    }
    const char *value = values[below(r, 5)];
    struct slice out;
    assert_int_equal(json_splice(*state, p, n, s, key, value, &out), 0);
    json_error_t e;
    json_t *after = json_loadb(out.p, out.n, JANSSON_FLAGS, &e);
    if (!after)
        fail_msg("splice of %s broke %.*s: %.*s (%s)", key, (int)n, p, (int)out.n, out.p, e.text);
    struct json_scan rs;
    assert_int_equal(json_scan(*state, out.p, out.n, &rs), 0);
    json_t *expect = json_deep_copy(dom);
    if (value)
        assert_int_equal(json_object_set_new(expect, key, json_loads(value, JANSSON_FLAGS, NULL)),
                         0);
    else
        json_object_del(expect, key);
    if (!json_equal(after, expect))
        fail_msg("splice %s=%s of %.*s gave %.*s", key, value ? value : "(remove)", (int)n, p,
                 (int)out.n, out.p);
    json_decref(expect);
    json_decref(after);
}

static void differential_one(void **state, const char *p, size_t n, struct diff_stats *st,
                             struct rng *r)
{
    struct json_scan s;
    int rc = json_scan(*state, p, n, &s);
    json_error_t e;
    json_t *dom = json_loadb(p, n, JANSSON_FLAGS, &e);
    st->cases++;
    if (rc == 0 && dom) {
        st->both_ok++;
        check_members(state, p, n, &s, dom, r);
    } else if (rc != 0 && !dom) {
        st->both_bad++;
    } else if (rc == 0) {
        /* Known difference 1: jansson stores numbers as int64 / double and refuses
         * integers outside int64 ("too big integer") and reals that overflow
         * ("real number overflow"); json_scan checks syntax only. */
        if (json_error_code(&e) == json_error_numeric_overflow) {
            st->numeric_overflow++;
            return;
        }
        /* Known difference 2: JSON_REJECT_DUPLICATES works at every depth; json_scan
         * refuses duplicates only among top-level keys (O(depth) memory). Proof that
         * the duplicate is nested: without the flag jansson keeps as many top-level
         * keys as json_scan recorded. */
        if (json_error_code(&e) == json_error_duplicate_key) {
            json_t *loose = json_loadb(p, n, JANSSON_FLAGS & ~(size_t)JSON_REJECT_DUPLICATES, &e);
            if (!loose && json_error_code(&e) == json_error_numeric_overflow) {
                st->numeric_overflow++;
                return;
            }
            assert_non_null(loose);
            if (json_is_object(loose)) assert_int_equal(json_object_size(loose), s.n_members);
            json_decref(loose);
            st->nested_dup++;
            return;
        }
        fail_msg("json_scan accepts, jansson rejects (%s at %d): %.*s", e.text, e.position, (int)n,
                 p);
    } else {
        /* Known difference 3: nesting limit 128 here, 2048 in jansson. */
        if (strstr(s.error, "nesting deeper than 128") && dom_depth(dom) > JSON_SCAN_MAX_DEPTH) {
            st->too_deep++;
            json_decref(dom);
            return;
        }
        /* Known difference 4: jansson 2.14 drops one NUL byte that directly follows
         * a number or literal (its one-byte lookahead buffer treats NUL as "empty"),
         * so it accepts `[1\0]` and `true\0`. json_scan refuses NUL outside strings.
         * Proof: without those NUL bytes json_scan accepts. */
        if (memchr(p, '\0', n)) {
            char *c = pool_alloc(*state, n ? n : 1);
            size_t cn = 0;
            for (size_t i = 0; i < n; i++)
                if (!(p[i] == '\0' && i > 0 && isalnum((unsigned char)p[i - 1]))) c[cn++] = p[i];
            struct json_scan s2;
            if (cn < n && json_scan(*state, c, cn, &s2) == 0) {
                st->nul_after_token++;
                json_decref(dom);
                return;
            }
        }
        fail_msg("jansson accepts, json_scan rejects (%s): %.*s", s.error, (int)n, p);
    }
    json_decref(dom);
}

static void test_differential_jansson(void **state)
{
    struct rng r = {0x9E3779B97F4A7C15ULL};
    struct diff_stats st = {0};
    struct buf b = BUF_INIT;
    for (int i = 0; i < 30000; i++) {
        b.n = 0;
        gen_ws(&r, &b);
        if (i % 97 == 0) {
            /* around the depth limit */
            size_t d = 120 + below(&r, 16);
            nested(&b, d, below(&r, 2) ? "[" : "{\"k\":[", "0", below(&r, 2) ? "]" : "]}");
            /* nested() resets b; mismatched closers make some of these invalid */
        } else if (i % 13 == 0) {
            /* a top-level object with several members, often a repeated key */
            assert_true(buf_append_str(&b, "{"));
            unsigned n = 1 + below(&r, 6);
            for (unsigned k = 0; k < n; k++) {
                if (k) assert_true(buf_append_str(&b, ","));
                gen_string(&r, &b, true);
                assert_true(buf_append_str(&b, ":"));
                gen_value(&r, &b, 1);
            }
            assert_true(buf_append_str(&b, "}"));
        } else {
            gen_value(&r, &b, 0);
        }
        gen_ws(&r, &b);
        if (below(&r, 30) == 0) gen_value(&r, &b, 0); /* trailing data */
        pool_t *pool = pool_create();
        void *pstate = pool;
        differential_one(&pstate, b.p, b.n, &st, &r);
        /* and byte mutations of the same document */
        for (int m = 0; m < 2; m++) {
            mutate(&r, &b);
            differential_one(&pstate, b.p, b.n, &st, &r);
        }
        pool_destroy(pool);
    }
    buf_free(&b);
    print_message("differential: %u cases, %u both valid, %u both invalid, known differences: "
                  "%u numeric range, %u nested duplicate keys, %u nesting 129..2048, "
                  "%u NUL after a token\n",
                  st.cases, st.both_ok, st.both_bad, st.numeric_overflow, st.nested_dup,
                  st.too_deep, st.nul_after_token);
    /* The corpus must exercise both outcomes and every known difference. */
    assert_true(st.cases == 90000);
    assert_true(st.both_ok > 5000);
    assert_true(st.both_bad > 5000);
    assert_true(st.numeric_overflow > 0);
    assert_true(st.nested_dup > 0);
    assert_true(st.too_deep > 0);
    assert_true(st.nul_after_token > 0);
}

/* Each known difference from jansson 2.14, pinned so that a jansson upgrade that
 * changes one shows up here (and json_scan.h's list gets updated). */
static void test_known_jansson_differences(void **state)
{
    static const struct {
        const char *text;
        size_t n;
        bool scan_ok, jansson_ok;
    } cases[] = {
        {LIT("[99999999999999999999]"), true, false},    /* integer beyond int64 */
        {LIT("[1e400]"), true, false},                   /* real overflow */
        {LIT("[1e-400]"), true, true},                   /* underflow is fine in both */
        {LIT("{\"a\":{\"b\":1,\"b\":2}}"), true, false}, /* nested duplicate key */
        {LIT("{\"b\":1,\"b\":2}"), false, false},        /* top-level duplicate key */
        {LIT("[1\0]"), false, true},                     /* jansson drops a NUL after a number */
        {LIT("true\0"), false, true},                    /* ... or after a literal */
        {LIT("[\"a\"\0]"), false, false},
        {LIT("[\"\\u0000\"]"), true, true}, /* with JSON_ALLOW_NUL */
        {LIT("{\"\\u0000\":1}"), false, false},
        {LIT("[\"\\ud800\"]"), false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_scan s;
        json_error_t e;
        json_t *j = json_loadb(cases[i].text, cases[i].n, JANSSON_FLAGS, &e);
        if ((scan(state, cases[i].text, cases[i].n, &s) == 0) != cases[i].scan_ok ||
            (j != NULL) != cases[i].jansson_ok)
            fail_msg("case %zu (%.*s): json_scan %s, jansson %s", i, (int)cases[i].n, cases[i].text,
                     s.error, j ? "accepts" : e.text);
        json_decref(j);
    }
    struct buf b = BUF_INIT;
    nested(&b, 129, "[", "", "]");
    json_error_t e;
    json_t *j = json_loadb(b.p, b.n, JANSSON_FLAGS, &e);
    assert_non_null(j); /* jansson's limit is 2048 */
    json_decref(j);
    expect_err(state, b.p, b.n, 128, "nesting deeper than 128");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_design_review_invalid_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grammar_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_keys_are_not_top_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_unescape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_splice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_jansson_differences, setup, teardown),
        cmocka_unit_test(test_differential_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
