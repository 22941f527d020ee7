/* util.c — small text helpers of fakerelay: UTF-8 counting and cutting (so echoes and
 * stream chunks never split a character), the token estimate used in every `usage`,
 * the text of a chat message's content, and base64. */
#include "fakerelay.h"

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t fr_utf8_len(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++) cps += !is_continuation((unsigned char)s[i]);
    return cps;
}

size_t fr_utf8_prefix(const char *s, size_t n, size_t cps)
{
    size_t i = 0, seen = 0;
    while (i < n) {
        if (!is_continuation((unsigned char)s[i])) {
            if (seen == cps) break;
            seen++;
        }
        i++;
    }
    return i;
}

unsigned fr_tokens(size_t codepoints)
{
    size_t t = (codepoints + 3) / 4;
    return t ? (unsigned)t : 1;
}

void fr_content_text(json_t *content, struct buf *b)
{
    if (json_is_string(content)) {
        buf_append(b, json_string_value(content), json_string_length(content));
        return;
    }
    if (!json_is_array(content)) return;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) buf_append(b, json_string_value(t), json_string_length(t));
    }
}

char *fr_base64(pool_t *pool, const unsigned char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = pool_alloc(pool, (n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16;
        if (i + 1 < n) x |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) x |= p[i + 2];
        out[o++] = tbl[(x >> 18) & 63];
        out[o++] = tbl[(x >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(x >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[x & 63] : '=';
    }
    out[o] = 0;
    return out;
}
