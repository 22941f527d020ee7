/* openai_chat.c — usage, model and chunk kind from OpenAI-format responses (see
 * openai_chat.h).
 *
 * The top-level member scan is written by hand because jansson can only parse a whole
 * document into a DOM, which for a pass-through response is wasted work (and for a large
 * embeddings response, milliseconds on an io thread). */
#include "protocol/openai_chat.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_scan.h"

/* Nesting limit of the scan, the top-level object included (as json_scan's). */
#define SCAN_MAX_DEPTH 128

/* A top-level member the scan looks for. */
struct member {
    const char *name;
    struct slice value; /* raw JSON text of the value when seen */
    bool seen;
};

static size_t skip_ws(struct slice s, size_t i)
{
    while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\n' || s.p[i] == '\r')) i++;
    return i;
}

/* s.p[*i] is '"': moves *i past the closing quote. Raw control bytes are refused, as
 * RFC 8259 does; escape sequences are skipped, not decoded. */
static bool skip_string(struct slice s, size_t *i)
{
    size_t j = *i + 1;
    while (j < s.n) {
        unsigned char c = (unsigned char)s.p[j];
        if (c == '"') {
            *i = j + 1;
            return true;
        }
        if (c < 0x20) return false;
        j += (c == '\\') ? 2 : 1;
    }
    return false;
}

static bool is_scalar_byte(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '+' || c == '.';
}

/* Moves *i past one value (string, object, array or scalar) whose nesting may add at most
 * `depth_left` levels. Brackets must match; scalars are not spelled out. */
static bool skip_value(struct slice s, size_t *i, int depth_left)
{
    size_t j = *i;
    if (j >= s.n) return false;
    if (s.p[j] == '"') return skip_string(s, i);
    if (s.p[j] != '{' && s.p[j] != '[') {
        while (j < s.n && is_scalar_byte(s.p[j])) j++;
        if (j == *i) return false;
        *i = j;
        return true;
    }
    char stack[SCAN_MAX_DEPTH];
    int depth = 0;
    while (j < s.n) {
        char c = s.p[j];
        if (c == '"') {
            if (!skip_string(s, &j)) return false;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == depth_left) return false;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != c) return false;
            if (--depth == 0) {
                *i = j + 1;
                return true;
            }
        }
        j++;
    }
    return false;
}

/* Scans a top-level object and records the raw values of the wanted members. Returns
 * false when body is not one well-formed object (as far as the scan checks) or when a
 * wanted member occurs twice (the JSON_REJECT_DUPLICATES rule: which one would count?). */
static bool scan_members(struct slice body, struct member *want, size_t nwant)
{
    size_t i = skip_ws(body, 0);
    if (i >= body.n || body.p[i] != '{') return false;
    i = skip_ws(body, i + 1);
    if (i < body.n && body.p[i] == '}') return skip_ws(body, i + 1) == body.n;
    for (;;) {
        if (i >= body.n || body.p[i] != '"') return false;
        size_t kstart = i + 1;
        if (!skip_string(body, &i)) return false;
        struct slice key = {body.p + kstart, i - 1 - kstart};
        i = skip_ws(body, i);
        if (i >= body.n || body.p[i] != ':') return false;
        i = skip_ws(body, i + 1);
        size_t vstart = i;
        if (!skip_value(body, &i, SCAN_MAX_DEPTH - 1)) return false;
        for (size_t k = 0; k < nwant; k++) {
            if (!slice_eq_str(key, want[k].name)) continue;
            if (want[k].seen) return false;
            want[k].seen = true;
            want[k].value = (struct slice){body.p + vstart, i - vstart};
        }
        i = skip_ws(body, i);
        if (i < body.n && body.p[i] == ',') {
            i = skip_ws(body, i + 1);
            continue;
        }
        if (i < body.n && body.p[i] == '}') return skip_ws(body, i + 1) == body.n;
        return false;
    }
}

void openai_usage_init(struct openai_usage *u)
{
    *u = (struct openai_usage){-1, -1, -1, -1, -1};
}

/* A count: a non-negative integer (an integral real such as 12.0 is accepted, as some
 * relays emit them), else -1. */
static long long count_of(const struct json_scan *obj, const char *key)
{
    const struct json_member *m = json_scan_get(obj, key);
    if (!m || m->type != JSON_T_NUMBER || m->value.n >= 64) return -1;
    char num[64];
    memcpy(num, m->value.p, m->value.n);
    num[m->value.n] = '\0';
    if (num[0] == '-') return -1;
    if (strpbrk(num, ".eE")) {
        double d = strtod(num, NULL);
        if (d >= 0 && d <= 9007199254740992.0 && (double)(long long)d == d) return (long long)d;
        return -1;
    }
    errno = 0;
    long long x = strtoll(num, NULL, 10);
    return errno ? -1 : x;
}

/* Decodes a raw `usage` value without a DOM (json_scan over the small object). Returns
 * true when it is a valid JSON object without duplicate keys. */
static bool decode_usage(struct slice value, struct openai_usage *u)
{
    if (value.n == 0 || value.p[0] != '{') return false;
    pool_t *pool = pool_create();
    if (!pool) return false;
    struct json_scan obj, details;
    bool ok = json_scan_object(pool, value, &obj) == 0;
    if (ok) {
        u->prompt_tokens = count_of(&obj, "prompt_tokens");
        u->completion_tokens = count_of(&obj, "completion_tokens");
        u->total_tokens = count_of(&obj, "total_tokens");
        const struct json_member *d = json_scan_get(&obj, "prompt_tokens_details");
        if (d && d->type == JSON_T_OBJECT && json_scan_object(pool, d->value, &details) == 0)
            u->cached_tokens = count_of(&details, "cached_tokens");
        d = json_scan_get(&obj, "completion_tokens_details");
        if (d && d->type == JSON_T_OBJECT && json_scan_object(pool, d->value, &details) == 0)
            u->reasoning_tokens = count_of(&details, "reasoning_tokens");
    }
    pool_destroy(pool);
    return ok;
}

/* Decodes a raw string value into the pool. Returns false only when out of memory. */
static bool decode_string(struct slice value, pool_t *pool, struct slice *out)
{
    *out = SLICE_NULL;
    if (value.n == 0 || value.p[0] != '"') return true;
    size_t n = 0;
    char *s = json_string_unescape(pool, value, &n);
    if (s) *out = (struct slice){s, n};
    return true;
}

int openai_chat_response_info(struct slice body, pool_t *pool, struct openai_usage *usage,
                              struct slice *model)
{
    struct member want[] = {{.name = "usage"}, {.name = "model"}};
    openai_usage_init(usage);
    *model = SLICE_NULL;
    if (!scan_members(body, want, 2)) return -1;
    if (want[0].seen) decode_usage(want[0].value, usage);
    if (want[1].seen && !decode_string(want[1].value, pool, model)) return -1;
    return 0;
}

static bool is_null(struct slice v)
{
    return slice_eq_str(v, "null");
}

int openai_chat_chunk_info(struct slice data, struct openai_chunk_info *info)
{
    *info = (struct openai_chunk_info){0};
    openai_usage_init(&info->usage);

    if (slice_eq_str(slice_trim(data), "[DONE]")) {
        info->done = true;
        return 0;
    }
    struct member want[] = {{.name = "usage"}, {.name = "choices"}, {.name = "error"}};
    if (!scan_members(data, want, 3)) return -1;

    if (want[0].seen && !is_null(want[0].value))
        info->has_usage = decode_usage(want[0].value, &info->usage);
    info->has_error = want[2].seen && !is_null(want[2].value);

    /* The include_usage chunk has `choices: []`; a chunk that carries usage and no choices
     * member at all carries nothing else a client could want either. */
    bool no_choices = !want[1].seen;
    if (want[1].seen && want[1].value.p[0] == '[') {
        size_t k = skip_ws(want[1].value, 1);
        no_choices = k < want[1].value.n && want[1].value.p[k] == ']';
    }
    info->usage_only = info->has_usage && no_choices;
    return 0;
}
