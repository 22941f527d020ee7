/* pool.h — per-request memory pool (arena).
 *
 * Everything a request allocates lives in its pool and dies with pool_destroy: no
 * individual frees. Allocations come from chunks (4 KiB first, growing); a request for
 * more than a quarter of the chunk size gets its own block. Cleanup callbacks run in
 * reverse order at destroy time, for the few foreign objects a request owns
 * (a jansson DOM, a curl header list). Not thread-safe: one pool, one thread at a time. */
#ifndef METARELAY_BASE_POOL_H
#define METARELAY_BASE_POOL_H

#include <stddef.h>

#include "base/slice.h"

typedef struct pool pool_t;

/* Returns a new pool (caller owns; release with pool_destroy), NULL when out of memory. */
pool_t *pool_create(void);
/* Frees every allocation of the pool after running its cleanups. NULL is a no-op. */
void pool_destroy(pool_t *p);

/* Memory owned by the pool, 16-byte aligned; NULL when out of memory. */
void *pool_alloc(pool_t *p, size_t n);
void *pool_calloc(pool_t *p, size_t n);
/* Copies into the pool; the result is NUL-terminated (not counted in the slice). */
char *pool_strndup(pool_t *p, const char *s, size_t n);
static inline char *pool_strdup_slice(pool_t *p, struct slice s)
{
    return pool_strndup(p, s.p, s.n);
}
char *pool_printf(pool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Registers fn(arg) to run when the pool is destroyed (last registered, first run).
 * Returns 0, or -1 when out of memory (fn has then already been called). */
int pool_cleanup(pool_t *p, void (*fn)(void *), void *arg);

/* Bytes currently held by the pool (for accounting and tests). */
size_t pool_bytes(const pool_t *p);

#endif
