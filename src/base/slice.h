/* slice.h — borrowed byte ranges (pointer + length) and a growable owned buffer.
 *
 * A `struct slice` never owns its bytes: whoever hands one out says how long they
 * live (usually: as long as the request pool). `struct buf` owns its bytes (malloc),
 * grows geometrically and is released with buf_free. */
#ifndef METARELAY_BASE_SLICE_H
#define METARELAY_BASE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct slice {
    const char *p;
    size_t n;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})
#define SLICE_NULL   ((struct slice){NULL, 0})

static inline struct slice slice_from(const char *s)
{
    return (struct slice){s, s ? strlen(s) : 0};
}
static inline bool slice_eq(struct slice a, struct slice b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}
static inline bool slice_eq_str(struct slice a, const char *s)
{
    return slice_eq(a, slice_from(s));
}
/* ASCII case-insensitive comparison (header names). */
bool slice_ieq(struct slice a, struct slice b);
static inline bool slice_ieq_str(struct slice a, const char *s)
{
    return slice_ieq(a, slice_from(s));
}
bool slice_starts_with(struct slice a, const char *prefix);
/* Trims spaces and tabs on both ends. */
struct slice slice_trim(struct slice a);
/* Parses an unsigned decimal; false on empty input, a non-digit or overflow. */
bool slice_to_u64(struct slice a, unsigned long long *out);

struct buf {
    char *p;
    size_t n;   /* bytes used */
    size_t cap; /* bytes allocated */
};

#define BUF_INIT ((struct buf){NULL, 0, 0})

/* Makes room for `extra` more bytes; false when out of memory (the buffer is unchanged). */
bool buf_reserve(struct buf *b, size_t extra);
bool buf_append(struct buf *b, const void *p, size_t n);
static inline bool buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}
static inline bool buf_append_slice(struct buf *b, struct slice s)
{
    return buf_append(b, s.p, s.n);
}
bool buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a decimal integer (no printf: used on the per-request path). */
bool buf_append_i64(struct buf *b, long long v);
/* Keeps the buffer NUL-terminated past n without counting the NUL. */
bool buf_nul(struct buf *b);
/* Removes the first `n` bytes (memmove). */
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
static inline struct slice buf_slice(const struct buf *b)
{
    return (struct slice){b->p, b->n};
}

#endif
