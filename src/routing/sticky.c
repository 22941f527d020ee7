/* sticky.c — the striped, bounded, TTL'd session table (see sticky.h). Each stripe is a
 * small chained hash over a preallocated entry array; indexes instead of pointers keep an
 * entry at 40 bytes. */
#include "routing/sticky.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64u
#define NIL     UINT32_MAX

struct entry {
    uint64_t key;
    const void *value;
    uint64_t expires_ns;
    uint32_t next;               /* bucket chain or free list */
    uint32_t lru_prev, lru_next; /* most recent at head */
};

struct stripe {
    pthread_mutex_t mu;
    struct entry *e;
    uint32_t *bucket;
    uint32_t cap, nbuckets, used;
    uint32_t free_head, lru_head, lru_tail;
    char pad[64];
};

static struct stripe *stripes;
static uint64_t ttl_ns;

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

int sticky_init(size_t capacity, unsigned ttl_ms)
{
    sticky_shutdown();
    if (capacity == 0) return 0;
    uint32_t per = (uint32_t)((capacity + STRIPES - 1) / STRIPES);
    if (per < 4) per = 4;
    uint32_t nb = 8;
    while (nb < per * 2) nb *= 2;
    stripes = calloc(STRIPES, sizeof *stripes);
    if (!stripes) return -1;
    for (uint32_t i = 0; i < STRIPES; i++) {
        struct stripe *s = &stripes[i];
        pthread_mutex_init(&s->mu, NULL);
        s->e = calloc(per, sizeof *s->e);
        s->bucket = malloc(nb * sizeof *s->bucket);
        if (!s->e || !s->bucket) {
            sticky_shutdown();
            return -1;
        }
        s->cap = per;
        s->nbuckets = nb;
        for (uint32_t b = 0; b < nb; b++) s->bucket[b] = NIL;
        for (uint32_t k = 0; k < per; k++) s->e[k].next = k + 1 < per ? k + 1 : NIL;
        s->free_head = 0;
        s->lru_head = s->lru_tail = NIL;
    }
    ttl_ns = (uint64_t)(ttl_ms ? ttl_ms : STICKY_DEFAULT_TTL_MS) * 1000000ull;
    return 0;
}

void sticky_shutdown(void)
{
    if (!stripes) return;
    for (uint32_t i = 0; i < STRIPES; i++) {
        free(stripes[i].e);
        free(stripes[i].bucket);
        pthread_mutex_destroy(&stripes[i].mu);
    }
    free(stripes);
    stripes = NULL;
}

static void lru_unlink(struct stripe *s, uint32_t i)
{
    struct entry *e = &s->e[i];
    if (e->lru_prev != NIL)
        s->e[e->lru_prev].lru_next = e->lru_next;
    else
        s->lru_head = e->lru_next;
    if (e->lru_next != NIL)
        s->e[e->lru_next].lru_prev = e->lru_prev;
    else
        s->lru_tail = e->lru_prev;
}

static void lru_push_head(struct stripe *s, uint32_t i)
{
    struct entry *e = &s->e[i];
    e->lru_prev = NIL;
    e->lru_next = s->lru_head;
    if (s->lru_head != NIL) s->e[s->lru_head].lru_prev = i;
    s->lru_head = i;
    if (s->lru_tail == NIL) s->lru_tail = i;
}

/* Finds `key`; *link points at the index that refers to it (for unlinking). */
static uint32_t find(struct stripe *s, uint64_t key, uint32_t **link)
{
    uint32_t *l = &s->bucket[(mix(key) >> 6) & (s->nbuckets - 1)];
    while (*l != NIL) {
        if (s->e[*l].key == key) {
            if (link) *link = l;
            return *l;
        }
        l = &s->e[*l].next;
    }
    if (link) *link = l;
    return NIL;
}

static void remove_at(struct stripe *s, uint32_t i)
{
    uint32_t *link;
    if (find(s, s->e[i].key, &link) != i) return;
    *link = s->e[i].next;
    lru_unlink(s, i);
    s->e[i].next = s->free_head;
    s->free_head = i;
    s->used--;
}

static struct stripe *stripe_of(uint64_t key)
{
    return &stripes[mix(key) % STRIPES];
}

const void *sticky_get(uint64_t key, uint64_t now_ns)
{
    if (!stripes || !key) return NULL;
    struct stripe *s = stripe_of(key);
    const void *v = NULL;
    pthread_mutex_lock(&s->mu);
    uint32_t i = find(s, key, NULL);
    if (i != NIL) {
        if (s->e[i].expires_ns <= now_ns) {
            remove_at(s, i);
        } else {
            v = s->e[i].value;
            s->e[i].expires_ns = now_ns + ttl_ns;
            lru_unlink(s, i);
            lru_push_head(s, i);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

void sticky_put(uint64_t key, const void *value, uint64_t now_ns)
{
    if (!stripes || !key) return;
    struct stripe *s = stripe_of(key);
    pthread_mutex_lock(&s->mu);
    uint32_t *link;
    uint32_t i = find(s, key, &link);
    if (i == NIL) {
        if (s->free_head == NIL) {
            /* full: the least recently used entry (expired ones are the oldest anyway) */
            remove_at(s, s->lru_tail);
            find(s, key, &link); /* the chain may have changed */
        }
        i = s->free_head;
        s->free_head = s->e[i].next;
        s->e[i].key = key;
        s->e[i].next = NIL;
        *link = i;
        s->used++;
    } else {
        lru_unlink(s, i);
    }
    s->e[i].value = value;
    s->e[i].expires_ns = now_ns + ttl_ns;
    lru_push_head(s, i);
    pthread_mutex_unlock(&s->mu);
}

void sticky_drop(uint64_t key, const void *value)
{
    if (!stripes || !key) return;
    struct stripe *s = stripe_of(key);
    pthread_mutex_lock(&s->mu);
    uint32_t i = find(s, key, NULL);
    if (i != NIL && (!value || s->e[i].value == value)) remove_at(s, i);
    pthread_mutex_unlock(&s->mu);
}

size_t sticky_count(void)
{
    if (!stripes) return 0;
    size_t n = 0;
    for (uint32_t i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&stripes[i].mu);
        n += stripes[i].used;
        pthread_mutex_unlock(&stripes[i].mu);
    }
    return n;
}
