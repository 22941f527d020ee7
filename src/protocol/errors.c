/* errors.c — error bodies and in-stream error events in the client's API shape (see
 * errors.h). The status table is format-conversion.md §6.2. */
#include "protocol/errors.h"

#include <stdio.h>

struct status_row {
    int status;
    struct errors_mapping m;
};

static const struct status_row status_table[] = {
    {400, {400, "invalid_request_error", NULL, 400, "invalid_request_error"}},
    {401, {401, "invalid_request_error", "invalid_api_key", 401, "authentication_error"}},
    {402, {429, "insufficient_quota", "insufficient_quota", 402, "billing_error"}},
    {403, {403, "permission_error", "permission_denied", 403, "permission_error"}},
    {404, {404, "invalid_request_error", "model_not_found", 404, "not_found_error"}},
    {408, {504, "timeout_error", "timeout", 504, "timeout_error"}},
    {413, {413, "invalid_request_error", "request_too_large", 413, "request_too_large"}},
    {429, {429, "rate_limit_error", "rate_limit_exceeded", 429, "rate_limit_error"}},
    {500, {500, "server_error", NULL, 500, "api_error"}},
    {502, {502, "server_error", "bad_gateway", 502, "api_error"}},
    {503, {503, "service_unavailable_error", "server_is_overloaded", 529, "overloaded_error"}},
    {504, {504, "timeout_error", "timeout", 504, "timeout_error"}},
    {529, {503, "service_unavailable_error", "server_is_overloaded", 529, "overloaded_error"}},
};

struct errors_mapping errors_map_status(int status)
{
    for (size_t i = 0; i < sizeof status_table / sizeof *status_table; i++)
        if (status_table[i].status == status) return status_table[i].m;
    if (status >= 400 && status < 500)
        return (struct errors_mapping){status, "invalid_request_error", NULL, status,
                                       "invalid_request_error"};
    if (status >= 500 && status < 600)
        return (struct errors_mapping){status, "server_error", NULL, status, "api_error"};
    return errors_map_status(500);
}

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), or 0 when the bytes
 * there are not one (bad lead byte, overlong form, surrogate, above U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

static bool append_escaped(struct buf *out, struct slice s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t run = 0, i = 0; /* bytes p[run..i) are copied verbatim */

    while (i < s.n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char tmp[8];
        size_t len = 1;

        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && (len = utf8_len(p + i, s.n - i)) == 0) {
            esc = "\xEF\xBF\xBD"; /* U+FFFD for a byte that starts no valid sequence */
            len = 1;
        }
        if (!esc) {
            i += len;
            continue;
        }
        if (!buf_append(out, p + run, i - run) || !buf_append_str(out, esc)) return false;
        i += len;
        run = i;
    }
    return buf_append(out, p + run, i - run);
}

bool errors_append_json_string(struct buf *out, struct slice s)
{
    size_t start = out->n;
    bool ok = buf_append(out, "\"", 1) && append_escaped(out, s) && buf_append(out, "\"", 1);
    if (!ok) out->n = start;
    return ok;
}

/* Appends a JSON string, or null when s is NULL. */
static bool append_str_or_null(struct buf *out, const char *s)
{
    return s ? errors_append_json_string(out, slice_from(s)) : buf_append_str(out, "null");
}

static bool append_openai_object(struct buf *out, struct slice message, const char *type,
                                 const char *code, const char *param)
{
    return buf_append_str(out, "{\"error\":{\"message\":") &&
           errors_append_json_string(out, message) && buf_append_str(out, ",\"type\":") &&
           errors_append_json_string(out, slice_from(type ? type : "server_error")) &&
           buf_append_str(out, ",\"param\":") && append_str_or_null(out, param) &&
           buf_append_str(out, ",\"code\":") && append_str_or_null(out, code) &&
           buf_append_str(out, "}}");
}

static bool append_claude_object(struct buf *out, const char *type, struct slice message,
                                 const struct slice *request_id)
{
    bool ok = buf_append_str(out, "{\"type\":\"error\",\"error\":{\"type\":") &&
              errors_append_json_string(out, slice_from(type ? type : "api_error")) &&
              buf_append_str(out, ",\"message\":") && errors_append_json_string(out, message) &&
              buf_append_str(out, "}");
    if (ok && request_id) {
        ok = buf_append_str(out, ",\"request_id\":") &&
             (request_id->n ? errors_append_json_string(out, *request_id)
                            : buf_append_str(out, "null"));
    }
    return ok && buf_append_str(out, "}");
}

bool errors_write_openai(struct buf *out, struct slice message, const char *type, const char *code,
                         const char *param)
{
    size_t start = out->n;
    bool ok = append_openai_object(out, message, type, code, param);
    if (!ok) out->n = start;
    return ok;
}

bool errors_write_claude(struct buf *out, const char *type, struct slice message,
                         struct slice request_id)
{
    size_t start = out->n;
    bool ok = append_claude_object(out, type, message, &request_id);
    if (!ok) out->n = start;
    return ok;
}

int errors_write_for_status(struct buf *out, enum errors_shape shape, int status,
                            struct slice message)
{
    struct errors_mapping m = errors_map_status(status);
    if (shape == ERRORS_SHAPE_CLAUDE)
        return errors_write_claude(out, m.claude_type, message, SLICE_NULL) ? m.claude_status : -1;
    return errors_write_openai(out, message, m.openai_type, m.openai_code, NULL) ? m.openai_status
                                                                                 : -1;
}

bool errors_write_openai_event(struct buf *out, struct slice message, const char *type,
                               const char *code)
{
    size_t start = out->n;
    bool ok = buf_append_str(out, "data: ") &&
              append_openai_object(out, message, type, code, NULL) && buf_append_str(out, "\n\n");
    if (!ok) out->n = start;
    return ok;
}

bool errors_write_claude_event(struct buf *out, const char *type, struct slice message)
{
    size_t start = out->n;
    bool ok = buf_append_str(out, "event: error\ndata: ") &&
              append_claude_object(out, type, message, NULL) && buf_append_str(out, "\n\n");
    if (!ok) out->n = start;
    return ok;
}

bool errors_write_event_for_status(struct buf *out, enum errors_shape shape, int status,
                                   struct slice message)
{
    struct errors_mapping m = errors_map_status(status);
    if (shape == ERRORS_SHAPE_CLAUDE) return errors_write_claude_event(out, m.claude_type, message);
    return errors_write_openai_event(out, message, m.openai_type, m.openai_code);
}
