/* usage_writer.c — the store-writer thread: drains the usage queue and group-commits
 * (every ≤ 20 ms or 512 rows, one transaction, one prepared statement), checkpoints the
 * WAL on a timer, and runs the usage retention hourly, one short batch per loop turn so
 * usage rows keep flowing while old ones are deleted. On stop it commits everything still
 * queued before it exits. */
#include <stdlib.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/store_internal.h"

#define CHECKPOINT_EVERY_NS (60ull * 1000000000ull)
#define RETENTION_EVERY_NS  (3600ull * 1000000000ull)
/* First retention pass shortly after start (not inside store_open), then hourly. */
#define RETENTION_FIRST_NS (2ull * 1000000000ull)
/* How long a checkpoint may wait for readers before it gives up until the next tick:
 * the usage queue keeps filling meanwhile. */
#define CHECKPOINT_BUSY_MS 250

static void checkpoint(sqlite3 *h)
{
    sqlite3_busy_timeout(h, CHECKPOINT_BUSY_MS);
    int log_frames = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_RESTART, &log_frames, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("store: WAL checkpoint failed: %s", sqlite3_errmsg(h));
    sqlite3_busy_timeout(h, 5000);
}

void *usage_writer_main(void *arg)
{
    struct store *s = arg;
    struct usage_queue *q = s->queue;
    char *err = NULL;
    sqlite3 *h = store_sqlite_open(s->db_path, &err);
    sqlite3_stmt *ins = h ? usage_insert_prepare(h) : NULL;
    struct usage_record *batch = malloc(USAGE_BATCH * sizeof *batch);
    if (!h || !ins || !batch)
        log_error("store-writer: cannot start (%s); usage rows will be dropped",
                  err ? err : "out of memory");
    free(err);

    uint64_t now = clock_mono_ns();
    uint64_t next_checkpoint = now + CHECKPOINT_EVERY_NS;
    uint64_t next_retention = now + RETENTION_FIRST_NS;
    int64_t retention_cutoff = 0; /* > 0 while a retention pass is in progress */

    for (;;) {
        /* Read stop before draining: after it is set, the loop ends only on an empty
         * drain, so nothing pushed before store_close is left behind. */
        bool stopping = usage_queue_stop_requested(q);
        size_t n = batch ? usage_queue_drain(q, batch, USAGE_BATCH) : 0;
        if (n > 0) {
            int rc = ins ? usage_insert_batch(h, ins, batch, n) : -1;
            if (rc != 0 && ins) rc = usage_insert_batch(h, ins, batch, n); /* once more */
            if (rc != 0) usage_queue_count_lost(n);
        } else if (stopping) {
            break;
        }
        if (!batch) { /* cannot store: keep the queue moving so pushes are counted */
            struct usage_record one;
            while (usage_queue_drain(q, &one, 1)) usage_queue_count_lost(1);
        }
        /* Timers are checked on every turn, also under sustained load when every drain
         * is a full batch: a busy store needs its checkpoints and retention the most. */
        bool more = n == USAGE_BATCH; /* more is waiting: commit it without sleeping */
        now = clock_mono_ns();
        if (h && !stopping) {
            if (now >= next_checkpoint) {
                checkpoint(h);
                next_checkpoint = now + CHECKPOINT_EVERY_NS;
            }
            if (s->retention_days > 0 && now >= next_retention && retention_cutoff == 0) {
                retention_cutoff = usage_retention_cutoff(s->retention_days);
                next_retention = now + RETENTION_EVERY_NS;
            }
            if (retention_cutoff > 0) {
                /* One short batch per turn, so inserts keep flowing between them. */
                long del = usage_delete_batch(h, retention_cutoff, RETENTION_BATCH);
                if (del > 0) log_debug("store: retention deleted %ld usage rows", del);
                if (del < RETENTION_BATCH)
                    retention_cutoff = 0; /* done (or failed) */
                else
                    more = true;
            }
        }
        if (!stopping && !more) usage_queue_wait(q, USAGE_COMMIT_MS, USAGE_BATCH);
    }

    if (h) checkpoint(h);
    sqlite3_finalize(ins);
    sqlite3_close(h);
    free(batch);
    return NULL;
}
