/* usage_queue.c — the bounded multi-producer, single-consumer queue of usage records
 * between the io threads and the store-writer thread (see usage_queue.h).
 *
 * Hand-written because no packaged library offers a bounded MPSC ring of fixed-size
 * records: it is the classic array of cells, each with a sequence number (a producer
 * claims a position with one CAS, copies its record, then publishes the cell by storing
 * the next sequence number). A push never waits on a lock or on the consumer: a full
 * queue drops and counts. The consumer wakes on a 20 ms tick; a producer that fills a
 * whole batch signals it earlier (a missed signal only costs the rest of the tick).
 *
 * Shared state (documented, DESIGN §3): the process has one usage queue, attached by
 * store_open and detached by store_close; `g_queue`, `g_pushers` and `g_dropped` are its
 * only globals. */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"

/* 8192 records × ~750 bytes ≈ 6 MiB: at 25k attempts/s that is ~330 ms of buffering,
 * sixteen times what one 20 ms group commit needs. The sequence numbers live apart from the
 * records, so a quiet gateway never touches (and never makes resident) the record pages
 * it has not used. */
#define USAGE_QUEUE_CAPACITY 8192u

struct usage_queue {
    atomic_size_t *seqs;       /* per slot: Vyukov's sequence number */
    struct usage_record *recs; /* per slot: the record */
    size_t mask;
    alignas(64) atomic_size_t enq; /* next position producers claim */
    alignas(64) atomic_size_t deq; /* next position the consumer reads */
    alignas(64) atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static struct usage_queue *_Atomic g_queue;
static atomic_int g_pushers;
static atomic_uint_fast64_t g_dropped;

struct usage_queue *usage_queue_attach(void)
{
    struct usage_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->seqs = calloc(USAGE_QUEUE_CAPACITY, sizeof *q->seqs);
    q->recs = calloc(USAGE_QUEUE_CAPACITY, sizeof *q->recs);
    if (!q->seqs || !q->recs) {
        free(q->seqs);
        free(q->recs);
        free(q);
        return NULL;
    }
    q->mask = USAGE_QUEUE_CAPACITY - 1;
    for (size_t i = 0; i < USAGE_QUEUE_CAPACITY; i++) atomic_init(&q->seqs[i], i);
    atomic_init(&q->enq, 0);
    atomic_init(&q->deq, 0);
    atomic_init(&q->stop, false);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);

    struct usage_queue *expected = NULL;
    if (!atomic_compare_exchange_strong(&g_queue, &expected, q)) {
        usage_queue_destroy(q);
        return NULL;
    }
    return q;
}

void usage_queue_detach(struct usage_queue *q)
{
    struct usage_queue *expected = q;
    atomic_compare_exchange_strong(&g_queue, &expected, NULL);
    /* A producer increments g_pushers before it loads g_queue (both seq_cst), so once
     * the count is zero no producer can still be writing into this queue. */
    while (atomic_load(&g_pushers) != 0) sched_yield();
}

void usage_queue_destroy(struct usage_queue *q)
{
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->seqs);
    free(q->recs);
    free(q);
}

bool usage_queue_push(const struct usage_record *r)
{
    atomic_fetch_add(&g_pushers, 1);
    struct usage_queue *q = atomic_load(&g_queue);
    bool ok = false;
    if (q && r) {
        size_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        size_t slot;
        for (;;) {
            slot = pos & q->mask;
            size_t seq = atomic_load_explicit(&q->seqs[slot], memory_order_acquire);
            intptr_t dif = (intptr_t)seq - (intptr_t)pos;
            if (dif == 0) {
                if (atomic_compare_exchange_weak_explicit(
                        &q->enq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed)) {
                    ok = true;
                    break;
                }
            } else if (dif < 0) {
                break; /* full */
            } else {
                pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
            }
        }
        if (ok) {
            memcpy(&q->recs[slot], r, sizeof *r);
            atomic_store_explicit(&q->seqs[slot], pos + 1, memory_order_release);
            size_t queued = pos + 1 - atomic_load_explicit(&q->deq, memory_order_relaxed);
            if (queued == USAGE_BATCH) pthread_cond_signal(&q->cv);
        }
    }
    if (!ok) atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    atomic_fetch_sub(&g_pushers, 1);
    return ok;
}

uint64_t usage_queue_dropped(void)
{
    return atomic_load_explicit(&g_dropped, memory_order_relaxed);
}

void usage_queue_count_lost(size_t n)
{
    atomic_fetch_add_explicit(&g_dropped, n, memory_order_relaxed);
}

size_t usage_queue_drain(struct usage_queue *q, struct usage_record *out, size_t max)
{
    size_t n = 0;
    size_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    while (n < max) {
        size_t slot = pos & q->mask;
        size_t seq = atomic_load_explicit(&q->seqs[slot], memory_order_acquire);
        if (seq != pos + 1) break; /* empty, or the producer is still copying */
        memcpy(&out[n++], &q->recs[slot], sizeof q->recs[slot]);
        atomic_store_explicit(&q->seqs[slot], pos + q->mask + 1, memory_order_release);
        pos++;
    }
    atomic_store_explicit(&q->deq, pos, memory_order_relaxed);
    return n;
}

void usage_queue_wait(struct usage_queue *q, unsigned timeout_ms, size_t batch)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    ts.tv_sec += timeout_ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&q->mu);
    while (!atomic_load(&q->stop)) {
        size_t queued = atomic_load_explicit(&q->enq, memory_order_relaxed) -
                        atomic_load_explicit(&q->deq, memory_order_relaxed);
        if (queued >= batch) break;
        if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) != 0) break; /* timed out */
    }
    pthread_mutex_unlock(&q->mu);
}

void usage_queue_request_stop(struct usage_queue *q)
{
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->stop, true);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

bool usage_queue_stop_requested(struct usage_queue *q)
{
    return atomic_load(&q->stop);
}
