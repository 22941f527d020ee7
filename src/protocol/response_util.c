/* response_util.c — helpers shared by the non-stream response readers and writers
 * (see response.h): compact JSON output, DOM accessors, ids, tool-name restoring,
 * signature wrapping. */
#include "protocol/response.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "protocol/errors.h"

void resp_fail(const struct conv *cv, struct conv_error *err, int status, const char *fmt, ...)
{
    struct errors_mapping m = errors_map_status(status);
    const char *type = cv && cv->client == API_MESSAGES ? m.claude_type : m.openai_type;
    err->status = status;
    snprintf(err->type, sizeof err->type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* The shortest %.*g form of d that reads back as d (JSON has no NaN or infinity: those
 * become null, which jansson never produces from parsed input anyway). */
static bool write_real(struct buf *out, double d)
{
    if (!isfinite(d)) return buf_append_str(out, "null");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* Keep it a real for readers that care: 2.0 is written "2.0", not "2". */
    if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
    return buf_append_str(out, tmp);
}

bool resp_json_write(struct buf *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!buf_append(out, "{", 1)) return false;
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach((json_t *)v, key, val)
        {
            if (!first && !buf_append(out, ",", 1)) return false;
            first = false;
            if (!errors_append_json_string(out, slice_from(key)) || !buf_append(out, ":", 1) ||
                !resp_json_write(out, val))
                return false;
        }
        return buf_append(out, "}", 1);
    }
    case JSON_ARRAY: {
        if (!buf_append(out, "[", 1)) return false;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i && !buf_append(out, ",", 1)) return false;
            if (!resp_json_write(out, json_array_get(v, i))) return false;
        }
        return buf_append(out, "]", 1);
    }
    case JSON_STRING:
        return errors_append_json_string(
            out, (struct slice){json_string_value(v), json_string_length(v)});
    case JSON_INTEGER:
        return buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return write_real(out, json_real_value(v));
    case JSON_TRUE:
        return buf_append_str(out, "true");
    case JSON_FALSE:
        return buf_append_str(out, "false");
    case JSON_NULL:
        return buf_append_str(out, "null");
    }
    return false;
}

struct slice resp_json_text(pool_t *pool, const json_t *v)
{
    struct buf b = BUF_INIT;
    struct slice s = SLICE_NULL;
    if (resp_json_write(&b, v)) {
        char *copy = pool_strndup(pool, b.p ? b.p : "", b.n);
        if (copy) s = (struct slice){copy, b.n};
    }
    buf_free(&b);
    return s;
}

struct slice resp_jstr(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) return SLICE_NULL;
    return (struct slice){json_string_value(v), json_string_length(v)};
}

long resp_jcount(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        return x >= 0 && x <= (json_int_t)(1LL << 53) ? (long)x : -1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= 9007199254740992.0 && (double)(long)d == d) return (long)d;
    }
    return -1;
}

json_t *resp_jstring(struct slice s)
{
    return json_stringn_nocheck(s.p ? s.p : "", s.n);
}

static void random_base62(char *out, size_t n)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[64];
    if (n > sizeof rnd) n = sizeof rnd;
    if (getrandom(rnd, n, 0) != (ssize_t)n) {
        /* No entropy source: uniqueness within one response is all that matters. */
        for (size_t i = 0; i < n; i++) rnd[i] = (unsigned char)(i * 37u + (uintptr_t)out);
    }
    for (size_t i = 0; i < n; i++) out[i] = alphabet[rnd[i] % 62];
}

struct slice resp_prefixed_id(pool_t *pool, const char *prefix, struct slice id)
{
    size_t plen = strlen(prefix);
    if (id.n == 0) {
        char rnd[24];
        random_base62(rnd, sizeof rnd);
        char *s = pool_printf(pool, "%smetarelay%.24s", prefix, rnd);
        return s ? slice_from(s) : SLICE_NULL;
    }
    if (slice_starts_with(id, prefix)) return id;
    char *s = pool_alloc(pool, plen + id.n + 1);
    if (!s) return SLICE_NULL;
    memcpy(s, prefix, plen);
    memcpy(s + plen, id.p, id.n);
    s[plen + id.n] = '\0';
    return (struct slice){s, plen + id.n};
}

struct slice resp_random_call_id(pool_t *pool)
{
    char rnd[24];
    random_base62(rnd, sizeof rnd);
    char *s = pool_printf(pool, "call_%.24s", rnd);
    return s ? slice_from(s) : SLICE_NULL;
}

struct slice resp_client_model(const struct conv *cv, const struct ir_response *r)
{
    return cv->client_model.n ? cv->client_model : r->model;
}

long resp_created(const struct conv *cv, const struct ir_response *r)
{
    return r->created > 0 ? r->created : cv->created;
}

struct ir_part *resp_parts_push(struct resp_parts *a, enum ir_part_kind kind)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct ir_part *v = pool_alloc(a->pool, cap * sizeof *v);
        if (!v) return NULL;
        if (a->n) memcpy(v, a->v, a->n * sizeof *v);
        a->v = v;
        a->cap = cap;
    }
    struct ir_part *p = &a->v[a->n++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

struct slice resp_wrap_signature(pool_t *pool, const struct ir_part *t)
{
    char *s = NULL;
    if (t->kind == IR_PART_REDACTED_THINKING) {
        if (!t->think.redacted_data.n) return SLICE_NULL;
        s = pool_printf(pool, "gw1:anthropic-redacted:%.*s", (int)t->think.redacted_data.n,
                        t->think.redacted_data.p);
    } else if (!t->think.signature.n) {
        return SLICE_NULL;
    } else if (t->think.sig_vendor == IR_VENDOR_ANTHROPIC) {
        s = pool_printf(pool, "gw1:anthropic:%.*s", (int)t->think.signature.n,
                        t->think.signature.p);
    } else if (t->think.sig_vendor == IR_VENDOR_OPENAI) {
        s = pool_printf(pool, "gw1:openai:%.*s:%.*s", (int)t->think.item_id.n,
                        t->think.item_id.p ? t->think.item_id.p : "", (int)t->think.signature.n,
                        t->think.signature.p);
    } else {
        return t->think.signature; /* already in the client's terms, or unknown: as is */
    }
    return s ? slice_from(s) : SLICE_NULL;
}
