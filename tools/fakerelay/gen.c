/* gen.c — pieces of deterministic answers shared by fakerelay's surfaces: the echoed
 * reply text, splitting text into stream chunks, building SSE replies with named events,
 * choosing tool calls from the request (the "use tool" text and x-fake-tool header
 * triggers), arguments built from a tool's schema, and the opaque tokens that stand for
 * thinking signatures and encrypted reasoning (so replayed history can be verified the
 * way the real APIs verify theirs). */
#include <stdio.h>
#include <string.h>

#include "fakerelay.h"

struct slice fr_hello(struct fr_call *call, struct slice echo)
{
    if (call->fault == FR_FAULT_EMPTY) return SLICE_LIT(""); /* a 200 without content */
    echo.n = fr_utf8_prefix(echo.p, echo.n, FR_ECHO_CHARS);
    char *s = pool_printf(call->req->pool, "Hello from %s: %.*s", call->cfg->name, (int)echo.n,
                          echo.p ? echo.p : "");
    return s ? slice_from(s) : SLICE_LIT("Hello");
}

struct slice fr_split(struct slice text, size_t cps, size_t i, size_t n)
{
    size_t from = fr_utf8_prefix(text.p, text.n, cps * i / n);
    size_t to = fr_utf8_prefix(text.p, text.n, cps * (i + 1) / n);
    return (struct slice){text.p + from, to - from};
}

/* The capacity of a stream reply lives just before its frames (the reply struct has no
 * field for it). */
struct stream_buf {
    struct fr_reply r;
    size_t cap;
};

struct fr_reply *fr_stream_new(struct fr_call *call, size_t cap)
{
    struct stream_buf *b = pool_calloc(call->req->pool, sizeof *b);
    if (!b) return NULL;
    b->r.frames = pool_calloc(call->req->pool, (cap ? cap : 1) * sizeof *b->r.frames);
    b->r.events = pool_calloc(call->req->pool, (cap ? cap : 1) * sizeof *b->r.events);
    if (!b->r.frames || !b->r.events) return NULL;
    b->r.status = 200;
    b->r.sse = true;
    b->cap = cap;
    return &b->r;
}

void fr_stream_add(struct fr_call *call, struct fr_reply *r, const char *name, json_t *j)
{
    struct stream_buf *b = (struct stream_buf *)r;
    if (r->n_frames >= b->cap) {
        json_decref(j);
        return;
    }
    r->events[r->n_frames] = name;
    r->frames[r->n_frames++] = fr_json_dump(call, j);
}

void fr_send_json(struct fr_call *call, json_t *j)
{
    if (!j) {
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    struct fr_reply *r = pool_calloc(call->req->pool, sizeof *r);
    if (!r) {
        json_decref(j);
        fr_reply_error(call, 500, "server_error", NULL, "fakerelay: out of memory");
        return;
    }
    r->status = 200;
    r->body = fr_json_dump(call, j);
    fr_reply_send(call, r);
}

bool fr_model_known(const struct fr_config *cfg, const char *model)
{
    if (strncmp(model, "fault-", 6) == 0) return true;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i], "*") == 0 || strcmp(cfg->models[i], model) == 0) return true;
    return false;
}

/* ---- tool calls ---- */

static bool find_tool(const struct fr_tool *tools, size_t n, struct slice name, size_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (tools[i].name && slice_eq_str(name, tools[i].name)) {
            *out = i;
            return true;
        }
    return false;
}

static const char *find_sub(struct slice hay, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= hay.n; i++)
        if (memcmp(hay.p + i, needle, k) == 0) return hay.p + i;
    return NULL;
}

size_t fr_tool_plan(struct fr_call *call, const struct fr_tool *tools, size_t n_tools,
                    struct slice text, bool after_results, const char *forced, bool any, bool none,
                    bool parallel, size_t *out)
{
    if (n_tools == 0 || none || after_results) return 0;
    size_t n = 0, idx;
    struct slice h = slice_trim(http_request_header(call->req, "x-fake-tool"));
    if (h.p && h.n) {
        while (h.n && n < FR_MAX_TOOL_CALLS) {
            const char *comma = memchr(h.p, ',', h.n);
            size_t len = comma ? (size_t)(comma - h.p) : h.n;
            if (find_tool(tools, n_tools, slice_trim((struct slice){h.p, len}), &idx))
                out[n++] = idx;
            if (!comma) break;
            h.p += len + 1;
            h.n -= len + 1;
        }
        if (n) return n;
    }
    if (forced && find_tool(tools, n_tools, slice_from(forced), &idx)) {
        out[0] = idx;
        return 1;
    }
    if (find_sub(text, "use tools")) {
        size_t k = parallel ? n_tools : 1;
        for (size_t i = 0; i < k && n < FR_MAX_TOOL_CALLS; i++) out[n++] = i;
        return n;
    }
    const char *u = find_sub(text, "use tool");
    if (u) {
        const char *p = u + 8, *end = text.p + text.n;
        while (p < end && *p == ' ') p++;
        const char *q = p;
        while (q < end && *q != ' ' && *q != ',' && *q != '.' && *q != '\n') q++;
        out[0] = find_tool(tools, n_tools, (struct slice){p, (size_t)(q - p)}, &idx) ? idx : 0;
        return 1;
    }
    if (any) {
        out[0] = 0;
        return 1;
    }
    return 0;
}

json_t *fr_tool_input(json_t *schema)
{
    json_t *req = json_object_get(schema, "required");
    json_t *first = json_array_get(req, 0);
    if (!json_is_string(first)) return json_pack("{s:s}", "city", "Paris");
    const char *name = json_string_value(first);
    json_t *prop = json_object_get(json_object_get(schema, "properties"), name);
    json_t *en = json_object_get(prop, "enum");
    json_t *value;
    const char *type = json_string_value(json_object_get(prop, "type"));
    if (json_array_size(en) > 0)
        value = json_deep_copy(json_array_get(en, 0));
    else if (!type || strcmp(type, "string") == 0)
        value = json_string("Paris");
    else if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
        value = json_integer(1);
    else if (strcmp(type, "boolean") == 0)
        value = json_true();
    else if (strcmp(type, "array") == 0)
        value = json_array();
    else if (strcmp(type, "object") == 0)
        value = json_object();
    else
        value = json_string("Paris");
    json_t *o = json_object();
    json_object_set_new(o, name, value);
    return o;
}

/* ---- seals: signatures and encrypted reasoning ---- */

static uint64_t fnv1a(struct slice s)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s.n; i++) h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    return h;
}

char *fr_seal(pool_t *pool, const char *kind, struct slice text)
{
    char raw[96];
    int n = snprintf(raw, sizeof raw, "%s:%016llx", kind, (unsigned long long)fnv1a(text));
    if (n < 0 || (size_t)n >= sizeof raw) return NULL;
    return fr_base64(pool, (const unsigned char *)raw, (size_t)n);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool fr_seal_ok(const char *tok, size_t n, const char *kind, const struct slice *text)
{
    char raw[96];
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && tok[i] != '='; i++) {
        int v = b64_value(tok[i]);
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof raw) return false;
            raw[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    raw[o] = 0;
    size_t k = strlen(kind);
    if (o != k + 17 || memcmp(raw, kind, k) != 0 || raw[k] != ':') return false;
    if (!text) return true;
    char want[24];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)fnv1a(*text));
    return memcmp(raw + k + 1, want, 16) == 0;
}
