/* control.h — the control thread pool and its scheduler (one per process; documented
 * shared state). CONTROL_CONCURRENCY threads, each with its own database connection and
 * fetch client, run per-account jobs (control/jobs.h) from one queue; a scheduler thread
 * fires CHECKIN_CRON and BALANCE_REFRESH_CRON in the configured zone and queues one job
 * per account, delayed by a jitter per site. Jobs are deduplicated (an account's job that
 * is queued or running is not queued twice), one account's failure never holds up
 * another's, and scheduled runs take a job lease so that several nodes sharing a database
 * run each scheduled batch once. After jobs that changed tokens, models or account status
 * the routing-changed callback is called.
 *
 * Stop: control_stop drops queued jobs, lets the jobs in flight finish (each bounded by
 * its fetch timeouts) and joins the threads. */
#ifndef METARELAY_CONTROL_CONTROL_H
#define METARELAY_CONTROL_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/tz.h"
#include "store/store.h"

struct control_config {
    store_t *store;
    unsigned concurrency;     /* CONTROL_CONCURRENCY, default 4 */
    const char *checkin_cron; /* NULL = the stored setting, else "0 8 * * *" */
    const char *balance_cron; /* NULL = the stored setting, else "0 * * * *" */
    bool checkin_cron_pinned; /* set from the environment: wins over the stored setting */
    bool balance_cron_pinned;
    const tz_t *tz;         /* borrowed; outlives the pool */
    unsigned jitter_max_ms; /* upper bound of the per-site delay of scheduled jobs */
    void (*routing_changed)(void *arg);
    void *routing_changed_arg;
};

/* Starts the pool and the scheduler. 0, or -1 with err filled (a bad cron expression
 * names its position). */
int control_start(const struct control_config *cfg, char err[200]);
/* Stops everything (idempotent). */
void control_stop(void);
/* Whether the pool runs (false in processes that never started it, e.g. tests). */
bool control_running(void);
/* The zone jobs use (UTC when the pool is not running). */
const tz_t *control_tz(void);

enum control_job {
    CONTROL_JOB_CHECKIN = 1,
    CONTROL_JOB_BALANCE = 2,
    CONTROL_JOB_TOKENS = 4,
    CONTROL_JOB_MODELS = 8,
};

/* A set of queued jobs one caller waits on (the admin API's "wait"). */
struct control_batch;

/* Queues `jobs` (CONTROL_JOB_* bits, run in the order check-in, balance, tokens, models)
 * for one account (account_id > 0) or every active account (0). `scheduled` selects the
 * scheduled check-in rule (jobs.h). Returns a batch the caller must release
 * (control_batch_release), or NULL when the pool is not running. */
struct control_batch *control_submit(unsigned jobs, int64_t account_id, bool scheduled);
/* Waits until the batch is done or timeout_ms passed; true when done. Counts go to the
 * pointers (any may be NULL). */
bool control_batch_wait(struct control_batch *b, unsigned timeout_ms, unsigned *ok,
                        unsigned *skipped, unsigned *failed);
size_t control_batch_size(const struct control_batch *b);
void control_batch_release(struct control_batch *b);

/* Replaces a schedule ("checkin" or "balance") at run time. -1 with err for a bad
 * expression or an unknown name. */
int control_set_cron(const char *which, const char *expr, char err[200]);
/* Whether the schedule was pinned by the environment. */
bool control_cron_pinned(const char *which);
/* The current expression of a schedule (copied into out). */
void control_get_cron(const char *which, char *out, size_t cap);

#endif
