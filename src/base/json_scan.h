/* json_scan.h — validating one-pass JSON scanner for the data plane, plus splices.
 *
 * The hot path reads a few top-level fields (`model`, `stream`, …) of request bodies
 * that can be hundreds of kilobytes, and must never forward a body that the DOM
 * surfaces (jansson) would reject or read differently. json_scan validates the whole
 * body in one pass with O(depth) memory (no token per value) and records only the
 * members of a top-level object:
 *
 *   - RFC 8259 grammar, exactly one top-level value, whitespace around it allowed;
 *   - UTF-8 validity (no overlongs, no UTF-8-encoded surrogates, nothing above
 *     U+10FFFF), no raw bytes below 0x20 in strings, no NUL byte anywhere;
 *   - escapes, including \uXXXX with jansson 2.14's surrogate rules: a high surrogate
 *     escape must be followed by a low one, a lone low surrogate is an error;
 *     `\u0000` is accepted in string values but not in object keys (any depth);
 *   - number syntax (no leading zeros, digits after '.' and after the exponent);
 *   - nesting depth (open objects and arrays) at most JSON_SCAN_MAX_DEPTH;
 *   - duplicate top-level keys are an error, compared after unescaping.
 *
 * Accepted language versus jansson 2.14 loaded with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL (differential test in
 * tests/unit/test_base_json_scan.c): identical, except that jansson
 *   - rejects integers outside int64 and reals that overflow a double (json_scan
 *     checks number syntax only);
 *   - rejects duplicate keys in nested objects too (json_scan: top level only);
 *   - accepts nesting up to 2048 (json_scan: 128);
 *   - accepts a NUL byte directly after a number or literal (`[1\0]`, `true\0`): its
 *     lookahead buffer drops it; json_scan rejects every NUL outside strings;
 *   - and json_scan refuses top-level objects of more than 10000 members.
 * Running json_scan first on every surface, DOM ones included, makes the accepted
 * language identical except for the first two points, where the DOM is stricter.
 *
 * Errors carry the byte offset and a short reason, e.g.
 * "invalid JSON at byte 17: expected ',' or '}'". */
#ifndef METARELAY_BASE_JSON_SCAN_H
#define METARELAY_BASE_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/pool.h"
#include "base/slice.h"

#define JSON_SCAN_MAX_DEPTH 128

enum json_type {
    JSON_T_OBJECT,
    JSON_T_ARRAY,
    JSON_T_STRING,
    JSON_T_NUMBER,
    JSON_T_TRUE,
    JSON_T_FALSE,
    JSON_T_NULL,
};

/* One member of the scanned top-level object. All slices point into the scanned
 * body, except `key` when the key contains escapes (then it lives in the pool). */
struct json_member {
    struct slice key_raw; /* between the quotes, still escaped */
    struct slice key;     /* unescaped key (never contains a NUL byte) */
    struct slice value;   /* raw value bytes, no surrounding whitespace */
    enum json_type type;
    size_t key_offset; /* offset of the key's opening quote in the body */
};

struct json_scan {
    enum json_type root_type;
    struct slice root;           /* raw top-level value, no surrounding whitespace */
    struct json_member *members; /* top-level object members in body order (pool) */
    size_t n_members;
    size_t error_offset; /* valid after a -1 return */
    char error[128];     /* "invalid JSON at byte N: reason", NUL-terminated */
};

/* Validates p[0..n) and fills *out. Returns 0 when the body is valid JSON, -1 when
 * not (out->error and out->error_offset say where and why) or when the pool is out
 * of memory (reason "out of memory"). The member array and unescaped keys live in
 * `pool`; the other slices borrow `p`, which must outlive *out. */
int json_scan(pool_t *pool, const char *p, size_t n, struct json_scan *out);

/* Same as json_scan for a value found earlier (e.g. members[i].value), which must be
 * an object: reads a nested object's members without a DOM. Offsets are relative to
 * object_value.p. Returns -1 (reason "not an object") for any other type. */
int json_scan_object(pool_t *pool, struct slice object_value, struct json_scan *out);

/* The top-level member whose unescaped key equals `key`, or NULL. */
const struct json_member *json_scan_get(const struct json_scan *s, const char *key);

/* *out = the member's boolean value; false (and *out untouched) when m is NULL or its
 * value is not true/false. */
bool json_member_bool(const struct json_member *m, bool *out);

/* Unescapes a raw JSON string literal (including its quotes) into the pool. Returns
 * a NUL-terminated string owned by the pool with its length in *len (it may contain
 * NUL bytes from \u0000), or NULL when raw is not a valid string literal or the pool
 * is out of memory. `len` may be NULL. */
char *json_string_unescape(pool_t *pool, struct slice raw_string_value, size_t *len);

/* *out = the member's unescaped string value. Borrows the body when the string has
 * no escapes, else allocates from the pool. False when m is NULL, not a string, or
 * out of memory. */
bool json_member_string(pool_t *pool, const struct json_member *m, struct slice *out);

/* Builds a new body from body[0..n) (scanned into *s, a top-level object): member
 * `key` gets `new_value_json` (raw JSON text, validated here) as its value, or is
 * added at the end when absent; with new_value_json == NULL the member is removed
 * (together with one separating comma). Whitespace and all other bytes are kept.
 * *out is NUL-terminated and owned by the pool, or borrows `body` when nothing
 * changed (removing an absent key). Returns 0, or -1 when s is not an object scan,
 * new_value_json is not one valid JSON value, the key is not valid UTF-8, or the pool
 * is out of memory. */
int json_splice(pool_t *pool, const char *body, size_t n, const struct json_scan *s,
                const char *key, const char *new_value_json, struct slice *out);

/* Appends s[0..n) as a JSON string literal: quotes, backslash escaped, control bytes
 * as \b \f \n \r \t or \u00XX. False (buffer unchanged) when s is not valid UTF-8 or
 * on out of memory. */
bool json_write_string(struct buf *b, const char *s, size_t n);

#endif
