/* slice.c — helpers for borrowed slices and the owned growable buffer (see slice.h). */
#include "base/slice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool slice_ieq(struct slice a, struct slice b)
{
    if (a.n != b.n) return false;
    for (size_t i = 0; i < a.n; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i])) return false;
    return true;
}

bool slice_starts_with(struct slice a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

struct slice slice_trim(struct slice a)
{
    while (a.n && (a.p[0] == ' ' || a.p[0] == '\t')) a.p++, a.n--;
    while (a.n && (a.p[a.n - 1] == ' ' || a.p[a.n - 1] == '\t')) a.n--;
    return a;
}

bool slice_to_u64(struct slice a, unsigned long long *out)
{
    if (a.n == 0 || a.n > 20) return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < a.n; i++) {
        unsigned d = (unsigned char)a.p[i] - '0';
        if (d > 9) return false;
        if (v > (~0ULL - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->n > extra) return true; /* keep one byte for buf_nul */
    size_t want = b->n + extra + 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) {
        if (cap > ((size_t)-1) / 2) return false;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0) return true;
    if (!buf_reserve(b, n)) return false;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return true;
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
    /* Format straight into the free space; only when it does not fit, grow and again. */
    if (!buf_reserve(b, 64)) return false;
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int need = vsnprintf(b->p + b->n, room, fmt, ap);
    va_end(ap);
    if (need < 0) return false;
    if ((size_t)need < room) {
        b->n += (size_t)need;
        return true;
    }
    if (!buf_reserve(b, (size_t)need)) return false;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
    return true;
}

bool buf_append_i64(struct buf *b, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0) tmp[n++] = '-';
    if (!buf_reserve(b, n)) return false;
    for (size_t i = 0; i < n; i++) b->p[b->n + i] = tmp[n - 1 - i];
    b->n += n;
    return true;
}

bool buf_nul(struct buf *b)
{
    if (!buf_reserve(b, 0)) return false;
    b->p[b->n] = '\0';
    return true;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->n) {
        b->n = 0;
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
}

void buf_free(struct buf *b)
{
    free(b->p);
    *b = BUF_INIT;
}
