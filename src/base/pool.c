/* pool.c — chunked arena with cleanup callbacks (see pool.h). */
#include "base/pool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_FIRST_CHUNK 4096
#define POOL_MAX_CHUNK   (64 * 1024)
#define POOL_ALIGN       16

struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(POOL_ALIGN) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
};

struct pool {
    struct chunk *chunks; /* current chunk first */
    struct chunk *large;  /* dedicated blocks */
    struct cleanup *cleanups;
    size_t next_size;
    size_t bytes;
};

pool_t *pool_create(void)
{
    pool_t *p = calloc(1, sizeof *p);
    if (p) p->next_size = POOL_FIRST_CHUNK;
    return p;
}

static void free_list(struct chunk *c)
{
    while (c) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
}

void pool_destroy(pool_t *p)
{
    if (!p) return;
    for (struct cleanup *c = p->cleanups; c; c = c->next) c->fn(c->arg);
    free_list(p->chunks);
    free_list(p->large);
    free(p);
}

static struct chunk *chunk_new(size_t size)
{
    struct chunk *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

void *pool_alloc(pool_t *p, size_t n)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX - POOL_ALIGN) return NULL;
    size_t need = (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    struct chunk *c = p->chunks;
    if (c && c->size - c->used >= need) {
        void *r = c->data + c->used;
        c->used += need;
        return r;
    }
    if (need > p->next_size / 4) {
        struct chunk *big = chunk_new(need);
        if (!big) return NULL;
        big->used = need;
        big->next = p->large;
        p->large = big;
        p->bytes += need;
        return big->data;
    }
    struct chunk *fresh = chunk_new(p->next_size);
    if (!fresh) return NULL;
    p->bytes += p->next_size;
    if (p->next_size < POOL_MAX_CHUNK) p->next_size *= 2;
    fresh->next = p->chunks;
    p->chunks = fresh;
    fresh->used = need;
    return fresh->data;
}

void *pool_calloc(pool_t *p, size_t n)
{
    void *r = pool_alloc(p, n);
    if (r) memset(r, 0, n);
    return r;
}

char *pool_strndup(pool_t *p, const char *s, size_t n)
{
    char *r = pool_alloc(p, n + 1);
    if (!r) return NULL;
    if (n) memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

char *pool_printf(pool_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *r = need < 0 ? NULL : pool_alloc(p, (size_t)need + 1);
    if (r) vsnprintf(r, (size_t)need + 1, fmt, ap2);
    va_end(ap2);
    return r;
}

int pool_cleanup(pool_t *p, void (*fn)(void *), void *arg)
{
    struct cleanup *c = pool_alloc(p, sizeof *c);
    if (!c) {
        fn(arg);
        return -1;
    }
    c->fn = fn;
    c->arg = arg;
    c->next = p->cleanups;
    p->cleanups = c;
    return 0;
}

size_t pool_bytes(const pool_t *p)
{
    return p->bytes;
}
