/* sticky.h — sticky sessions: session key → the channel (its health record) that served
 * the conversation, so follow-up requests keep hitting the same upstream while it is
 * healthy (prompt caches stay warm).
 *
 * A fixed-size hash table split into stripes, each with its own mutex, free list and LRU
 * list; all memory is allocated by sticky_init, none on lookups or inserts. Entries expire
 * after the TTL (PROXY_STICKY_SESSION_TTL_MS, default 30 min); a full stripe evicts its
 * least recently used entry. The table is per process (per node): behind a load balancer,
 * session affinity keeps a conversation on one node. Values are opaque pointers that
 * outlive the table (health records). */
#ifndef METARELAY_ROUTING_STICKY_H
#define METARELAY_ROUTING_STICKY_H

#include <stddef.h>
#include <stdint.h>

#define STICKY_DEFAULT_TTL_MS   (30u * 60u * 1000u)
#define STICKY_DEFAULT_CAPACITY 65536u

/* Allocates the table (capacity rounded up to a multiple of the stripe count). 0 or -1.
 * Before sticky_init (or with capacity 0) every lookup misses: stickiness is off. */
int sticky_init(size_t capacity, unsigned ttl_ms);
/* Frees the table (after every thread that uses it stopped). */
void sticky_shutdown(void);

/* The value bound to `key` (refreshing its TTL and LRU position), or NULL. */
const void *sticky_get(uint64_t key, uint64_t now_ns);
/* Binds `key` to `value` (replacing any binding). */
void sticky_put(uint64_t key, const void *value, uint64_t now_ns);
/* Removes the binding of `key` when it is `value` (NULL: whatever it is). */
void sticky_drop(uint64_t key, const void *value);
/* Live entries (tests, metrics). */
size_t sticky_count(void);

#endif
