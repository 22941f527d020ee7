/* request_util.c — helpers of the request converters (see request_internal.h): jansson
 * parsing into the pool, typed getters with clear 400 messages, images and data URLs,
 * effort tables, tool arguments and tool-name shortening. */
#include "protocol/request_internal.h"

#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int req_fail(struct conv_error *err, const char *fmt, ...)
{
    err->status = 400;
    snprintf(err->type, sizeof err->type, "%s", "invalid_request_error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

int req_oom(struct conv_error *err)
{
    err->status = 500;
    snprintf(err->type, sizeof err->type, "%s", "api_error");
    snprintf(err->message, sizeof err->message, "%s", "out of memory while converting the request");
    return -1;
}

static void decref_cb(void *p)
{
    json_decref(p);
}

json_t *req_parse_body(pool_t *pool, struct slice body, struct conv_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(body.p ? body.p : "", body.n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        req_fail(err, "the request body is not valid JSON: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (pool_cleanup(pool, decref_cb, root) != 0) {
        req_oom(err);
        return NULL;
    }
    if (!json_is_object(root)) {
        req_fail(err, "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

struct slice req_copy(pool_t *pool, const char *p, size_t n)
{
    char *s = pool_strndup(pool, p ? p : "", n);
    return s ? (struct slice){s, n} : SLICE_NULL;
}

struct slice req_jstr(pool_t *pool, const json_t *s)
{
    return req_copy(pool, json_string_value(s), json_string_length(s));
}

struct slice req_jdump(pool_t *pool, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (!t) return SLICE_NULL;
    struct slice r = req_copy(pool, t, strlen(t));
    free(t);
    return r;
}

static const char *where(const char *path, const char *key, char *tmp, size_t n)
{
    if (!path || !*path) return key;
    snprintf(tmp, n, "%s.%s", path, key);
    return tmp;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static int wrong(struct req_dec *d, const char *path, const char *key, const char *want,
                 const json_t *v)
{
    char tmp[200];
    return req_fail(d->err, "'%s' must be %s, not %s", where(path, key, tmp, sizeof tmp), want,
                    type_name(v));
}

int req_get_str(struct req_dec *d, const json_t *obj, const char *key, struct slice *out,
                const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return wrong(d, path, key, "a string", v);
    *out = req_jstr(d->pool, v);
    if (!out->p) return req_oom(d->err);
    return 1;
}

int req_get_num(struct req_dec *d, const json_t *obj, const char *key, double *out,
                const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return wrong(d, path, key, "a number", v);
    *out = json_number_value(v);
    return 1;
}

int req_get_count(struct req_dec *d, const json_t *obj, const char *key, long *out,
                  const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    char tmp[200];
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > 1000000000)
            return req_fail(d->err, "'%s' must be a non-negative integer (got %lld)",
                            where(path, key, tmp, sizeof tmp), (long long)i);
        *out = (long)i;
        return 1;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x >= 0 && x <= 1e9 && x == floor(x)) {
            *out = (long)x;
            return 1;
        }
        return req_fail(d->err, "'%s' must be a non-negative integer",
                        where(path, key, tmp, sizeof tmp));
    }
    return wrong(d, path, key, "an integer", v);
}

int req_get_bool(struct req_dec *d, const json_t *obj, const char *key, bool *out, const char *path)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return wrong(d, path, key, "true or false", v);
    *out = json_is_true(v);
    return 1;
}

int req_get_obj(struct req_dec *d, const json_t *obj, const char *key, json_t **out,
                const char *path)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) return wrong(d, path, key, "an object", v);
    *out = v;
    return 1;
}

int req_get_arr(struct req_dec *d, const json_t *obj, const char *key, json_t **out,
                const char *path)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return wrong(d, path, key, "an array", v);
    *out = v;
    return 1;
}

const char *req_path(pool_t *pool, const char *base, const char *key, long index)
{
    const char *b = base ? base : "";
    const char *dot = *b && key ? "." : "";
    if (index >= 0) return pool_printf(pool, "%s%s%s[%ld]", b, dot, key ? key : "", index);
    return pool_printf(pool, "%s%s%s", b, dot, key ? key : "");
}

void *req_grow(pool_t *pool, void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap) return arr;
    size_t nc = *cap ? *cap * 2 : 4;
    void *na = pool_calloc(pool, nc * elem);
    if (!na) return NULL;
    if (n) memcpy(na, arr, n * elem);
    *cap = nc;
    return na;
}

struct ir_part *req_add_part(pool_t *pool, struct ir_part **parts, size_t *n, size_t *cap)
{
    struct ir_part *a = req_grow(pool, *parts, *n, cap, sizeof **parts);
    if (!a) return NULL;
    *parts = a;
    struct ir_part *p = &a[(*n)++];
    memset(p, 0, sizeof *p);
    return p;
}

struct ir_message *req_add_msg(pool_t *pool, struct ir_request *r, size_t *cap)
{
    struct ir_message *a = req_grow(pool, r->msgs, r->n_msgs, cap, sizeof *a);
    if (!a) return NULL;
    r->msgs = a;
    struct ir_message *m = &a[r->n_msgs++];
    memset(m, 0, sizeof *m);
    return m;
}

void req_init(struct ir_request *r)
{
    memset(r, 0, sizeof *r);
    r->parallel_tool_calls = -1;
    r->max_output_tokens = -1;
    r->temperature = NAN;
    r->top_p = NAN;
    r->top_k = -1;
    r->rf.strict = -1;
    r->reasoning.enabled = -1;
    r->reasoning.budget = -1;
    r->n = -1;
}

/* ---- images ---- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decoded size of base64 text, or -1 when a byte is outside the alphabet. Whitespace and
 * line breaks are tolerated (some clients wrap at 76 columns). */
static long long b64_decoded_size(struct slice s)
{
    size_t digits = 0, pad = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
        if (pad || b64val(c) < 0) return -1;
        digits++;
    }
    if (pad > 2) return -1;
    return (long long)(digits * 3 / 4);
}

static bool image_type_ok(struct slice mt)
{
    return slice_eq_str(mt, "image/jpeg") || slice_eq_str(mt, "image/png") ||
           slice_eq_str(mt, "image/gif") || slice_eq_str(mt, "image/webp");
}

/* Lower-cases the media type, strips parameters, maps image/jpg → image/jpeg. */
static struct slice norm_media_type(pool_t *pool, struct slice mt)
{
    size_t n = 0;
    while (n < mt.n && mt.p[n] != ';') n++;
    char *s = pool_strndup(pool, mt.p, n);
    if (!s) return SLICE_NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
    struct slice r = slice_trim((struct slice){s, n});
    if (slice_eq_str(r, "image/jpg")) return SLICE_LIT("image/jpeg");
    return r;
}

int req_image_base64(struct req_dec *d, struct slice media_type, struct slice data,
                     struct ir_part *p, const char *path)
{
    struct slice mt = norm_media_type(d->pool, media_type);
    if (!image_type_ok(mt))
        return req_fail(d->err,
                        "%s: image type '%.*s' is not supported (use image/jpeg, image/png, "
                        "image/gif or image/webp)",
                        path, (int)(media_type.n > 60 ? 60 : media_type.n),
                        media_type.p ? media_type.p : "");
    long long size = b64_decoded_size(data);
    if (size < 0) return req_fail(d->err, "%s: the image data is not valid base64", path);
    if (size == 0) return req_fail(d->err, "%s: the image data is empty", path);
    if ((unsigned long long)size > CONV_IMAGE_MAX_BYTES)
        return req_fail(d->err,
                        "%s: the image is too large (%lld bytes); the limit is %u bytes (3 MB)",
                        path, size, CONV_IMAGE_MAX_BYTES);
    p->kind = IR_PART_IMAGE;
    p->media.src = IR_SRC_BASE64;
    p->media.media_type = mt;
    p->media.data_or_url = data;
    return 0;
}

/* Splits "data:<mt>[;params];base64,<data>". */
static bool split_data_url(struct slice url, struct slice *mt, struct slice *data)
{
    if (!slice_starts_with(url, "data:")) return false;
    const char *comma = memchr(url.p, ',', url.n);
    if (!comma) return false;
    struct slice head = {url.p + 5, (size_t)(comma - url.p - 5)};
    if (head.n < 7 || memcmp(head.p + head.n - 7, ";base64", 7) != 0) return false;
    *mt = (struct slice){head.p, head.n - 7};
    *data = (struct slice){comma + 1, url.n - (size_t)(comma + 1 - url.p)};
    return true;
}

int req_image_url(struct req_dec *d, struct slice url, struct ir_part *p, const char *path)
{
    if (slice_starts_with(url, "data:")) {
        struct slice mt, data;
        if (!split_data_url(url, &mt, &data))
            return req_fail(d->err,
                            "%s: the image data URL must look like "
                            "data:image/png;base64,<data>",
                            path);
        return req_image_base64(d, mt, data, p, path);
    }
    if (slice_starts_with(url, "https://") || slice_starts_with(url, "http://")) {
        p->kind = IR_PART_IMAGE;
        p->media.src = IR_SRC_URL;
        p->media.data_or_url = url;
        return 0;
    }
    if (url.n == 0) return req_fail(d->err, "%s: the image URL is empty", path);
    return req_fail(d->err, "%s: the image URL must be an http(s) URL or a base64 data URL", path);
}

int req_file_data_url(struct req_dec *d, struct slice url, struct ir_part *p, const char *path)
{
    struct slice mt, data;
    if (!split_data_url(url, &mt, &data))
        return req_fail(d->err,
                        "%s: file data must be a base64 data URL "
                        "(data:application/pdf;base64,<data>)",
                        path);
    if (b64_decoded_size(data) < 0)
        return req_fail(d->err, "%s: the file data is not valid base64", path);
    p->kind = IR_PART_FILE;
    p->media.src = IR_SRC_BASE64;
    p->media.media_type = norm_media_type(d->pool, mt);
    p->media.data_or_url = data;
    return 0;
}

/* ---- signatures ---- */

void req_sig_parse(pool_t *pool, struct ir_part *p, struct slice sig, enum ir_vendor native)
{
    (void)pool;
    if (slice_starts_with(sig, "gw1:anthropic-redacted:")) {
        size_t k = strlen("gw1:anthropic-redacted:");
        p->kind = IR_PART_REDACTED_THINKING;
        p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
        p->think.redacted_data = (struct slice){sig.p + k, sig.n - k};
        return;
    }
    if (slice_starts_with(sig, "gw1:anthropic:")) {
        size_t k = strlen("gw1:anthropic:");
        p->think.sig_vendor = IR_VENDOR_ANTHROPIC;
        p->think.signature = (struct slice){sig.p + k, sig.n - k};
        return;
    }
    if (slice_starts_with(sig, "gw1:openai:")) {
        size_t k = strlen("gw1:openai:");
        struct slice rest = {sig.p + k, sig.n - k};
        const char *colon = memchr(rest.p, ':', rest.n);
        p->think.sig_vendor = IR_VENDOR_OPENAI;
        if (colon) {
            p->think.item_id = (struct slice){rest.p, (size_t)(colon - rest.p)};
            p->think.signature = (struct slice){colon + 1, rest.n - (size_t)(colon + 1 - rest.p)};
        } else {
            p->think.signature = rest;
        }
        return;
    }
    p->think.sig_vendor = sig.n ? native : IR_VENDOR_NONE;
    p->think.signature = sig;
}

/* ---- tools ---- */

int req_tool_schema(struct req_dec *d, const json_t *schema, struct slice *out, const char *path)
{
    *out = SLICE_NULL;
    if (!schema || json_is_null(schema)) return 0;
    if (!json_is_object(schema))
        return req_fail(d->err,
                        "%s: the tool's parameter schema must be a JSON Schema object, "
                        "not %s",
                        path, type_name(schema));
    json_t *type = json_object_get(schema, "type");
    if (type && !(json_is_string(type) && strcmp(json_string_value(type), "object") == 0))
        return req_fail(d->err, "%s: the tool's parameter schema must have \"type\": \"object\"",
                        path);
    json_t *props = json_object_get(schema, "properties");
    if (props && !json_is_object(props))
        return req_fail(d->err, "%s: \"properties\" of the tool's schema must be an object", path);
    if (json_object_get(schema, "$schema")) {
        json_t *copy = json_copy((json_t *)schema);
        if (!copy) return req_oom(d->err);
        json_object_del(copy, "$schema");
        *out = req_jdump(d->pool, copy);
        json_decref(copy);
    } else {
        *out = req_jdump(d->pool, schema);
    }
    return out->p ? 0 : req_oom(d->err);
}

/* ---- reasoning ---- */

static const struct {
    const char *name;
    enum ir_effort e;
    long budget;
} efforts[] = {
    {"minimal", IR_EFFORT_MINIMAL, 1024}, {"low", IR_EFFORT_LOW, 1024},
    {"medium", IR_EFFORT_MEDIUM, 2048},   {"high", IR_EFFORT_HIGH, 4096},
    {"xhigh", IR_EFFORT_XHIGH, 8192},     {"max", IR_EFFORT_MAX, 16384},
    {"none", IR_EFFORT_NONE, 0},
};

enum ir_effort req_effort_parse(struct slice s)
{
    for (size_t i = 0; i < sizeof efforts / sizeof *efforts; i++)
        if (slice_eq_str(s, efforts[i].name)) return efforts[i].e;
    return IR_EFFORT_UNSET;
}

const char *req_effort_name(enum ir_effort e)
{
    for (size_t i = 0; i < sizeof efforts / sizeof *efforts; i++)
        if (efforts[i].e == e) return efforts[i].name;
    return NULL;
}

long req_effort_budget(enum ir_effort e)
{
    for (size_t i = 0; i < sizeof efforts / sizeof *efforts; i++)
        if (efforts[i].e == e) return efforts[i].budget;
    return 2048;
}

enum ir_effort req_budget_effort(long b)
{
    if (b >= 16384) return IR_EFFORT_MAX;
    if (b >= 8192) return IR_EFFORT_XHIGH;
    if (b >= 4096) return IR_EFFORT_HIGH;
    if (b >= 2048) return IR_EFFORT_MEDIUM;
    if (b >= 1024) return IR_EFFORT_LOW;
    return IR_EFFORT_MINIMAL;
}

bool req_reasoning_on(const struct ir_request *r)
{
    if (r->reasoning.enabled == 0) return false;
    if (r->reasoning.enabled == 1) return true;
    return (r->reasoning.effort != IR_EFFORT_UNSET && r->reasoning.effort != IR_EFFORT_NONE) ||
           r->reasoning.budget > 0;
}

enum ir_effort req_openai_effort(const struct ir_request *r)
{
    if (r->reasoning.effort == IR_EFFORT_NONE) return IR_EFFORT_NONE;
    if (!req_reasoning_on(r)) return IR_EFFORT_UNSET;
    enum ir_effort e = r->reasoning.effort;
    if (r->reasoning.budget > 0 && !r->reasoning.adaptive)
        e = req_budget_effort(r->reasoning.budget);
    if (e == IR_EFFORT_UNSET) e = IR_EFFORT_MEDIUM;
    if (e == IR_EFFORT_XHIGH || e == IR_EFFORT_MAX) e = IR_EFFORT_HIGH;
    return e;
}

struct slice req_join_text(pool_t *pool, const struct ir_part *parts, size_t n, const char *sep)
{
    size_t total = 0, k = 0, sl = strlen(sep);
    for (size_t i = 0; i < n; i++)
        if (parts[i].kind == IR_PART_TEXT) total += parts[i].text.n + (k++ ? sl : 0);
    char *s = pool_alloc(pool, total + 1);
    if (!s) return SLICE_NULL;
    size_t o = 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind != IR_PART_TEXT) continue;
        if (k++) {
            memcpy(s + o, sep, sl);
            o += sl;
        }
        if (parts[i].text.n) memcpy(s + o, parts[i].text.p, parts[i].text.n);
        o += parts[i].text.n;
    }
    s[o] = 0;
    return (struct slice){s, o};
}

bool req_blank(struct slice s)
{
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
    }
    return true;
}

/* ---- encoding ---- */

json_t *req_root(pool_t *pool)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (pool_cleanup(pool, decref_cb, o) != 0) return NULL;
    return o;
}

int req_finish(struct req_enc *e, json_t *root, struct slice *out)
{
    /* 15 significant digits: what a client wrote as a short decimal (0.2) is sent back as
     * that decimal, not as its 17-digit binary expansion. */
    char *t = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!t) return req_oom(e->err);
    *out = req_copy(e->pool, t, strlen(t));
    free(t);
    return out->p ? 0 : req_oom(e->err);
}

json_t *req_js(struct slice s)
{
    return json_stringn(s.p ? s.p : "", s.n);
}

json_t *req_jparse(struct slice raw)
{
    if (!raw.p || raw.n == 0) return NULL;
    return json_loadb(raw.p, raw.n, JSON_DECODE_ANY, NULL);
}

void req_set(json_t *obj, const char *key, json_t *v)
{
    if (v) json_object_set_new(obj, key, v);
}

json_t *req_args_object(struct slice args)
{
    if (req_blank(args)) return json_object();
    json_t *v = json_loadb(args.p, args.n, JSON_DECODE_ANY, NULL);
    if (v && json_is_string(v)) { /* double-encoded arguments */
        json_t *inner = json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
        json_decref(v);
        v = inner;
    }
    if (v && json_is_object(v)) return v;
    json_decref(v);
    return json_object();
}

struct slice req_custom_args(pool_t *pool, struct slice text)
{
    json_t *o = json_object();
    if (!o) return SLICE_NULL;
    req_set(o, CONV_CUSTOM_TOOL_ARG, req_js(text));
    struct slice r = req_jdump(pool, o);
    json_decref(o);
    return r;
}

struct slice req_tool_name(struct req_enc *e, struct slice name)
{
    size_t max = e->prof->tool_name_max > 16 ? (size_t)e->prof->tool_name_max : 64;
    if (name.n <= max) return name;
    struct conv *cv = e->cv;
    for (size_t i = 0; i < cv->n_tool_names; i++)
        if (slice_eq(cv->tool_names[i].original, name)) return cv->tool_names[i].upstream;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)name.p, name.n);
    char *s = pool_alloc(e->pool, max + 1);
    if (!s) return name;
    size_t keep = max - 9;
    memcpy(s, name.p, keep);
    s[keep] = '_';
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        s[keep + 1 + 2 * i] = hex[h[i] >> 4];
        s[keep + 2 + 2 * i] = hex[h[i] & 15];
    }
    s[max] = 0;
    struct slice up = {s, max};
    size_t cap = cv->n_tool_names;
    struct conv_tool_name *a = pool_alloc(e->pool, (cap + 1) * sizeof *a);
    if (!a) return up;
    if (cap) memcpy(a, cv->tool_names, cap * sizeof *a);
    a[cap] = (struct conv_tool_name){name, up};
    cv->tool_names = a;
    cv->n_tool_names = cap + 1;
    return up;
}

bool req_claude_sampling_allowed(const struct ir_profile *p)
{
    /* Versions are dates (YYYY-MM-DD): they compare as strings. */
    struct slice v = p->anthropic_version;
    if (v.n == 0) return true;
    size_t n = v.n < 10 ? v.n : 10;
    return memcmp(v.p, "2023-06-01", n) <= 0;
}

int req_tool_choice_openai_string(struct req_dec *d, json_t *tc, struct ir_request *r)
{
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!strcmp(s, "auto"))
            r->tool_choice.mode = IR_TC_AUTO;
        else if (!strcmp(s, "none"))
            r->tool_choice.mode = IR_TC_NONE;
        else if (!strcmp(s, "required"))
            r->tool_choice.mode = IR_TC_ANY;
        else
            return req_fail(d->err,
                            "tool_choice must be \"auto\", \"none\", \"required\" or an object");
        return 0;
    }
    if (!json_is_object(tc)) return req_fail(d->err, "tool_choice must be a string or an object");
    return 1;
}
