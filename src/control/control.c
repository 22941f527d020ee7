/* control.c — the control thread pool, its job queue and the cron scheduler (see
 * control.h). One mutex guards the queue, the running set and the schedules; jobs run
 * outside it. A job for "every account" is a fan-out entry that a worker expands into
 * one entry per active account (it needs a database connection, which the submitting
 * thread may not have). */
#include "control/control.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cron.h"
#include "base/log.h"
#include "control/jobs.h"
#include "store/accounts.h"
#include "store/prices.h"
#include "store/settings.h"

#define DEFAULT_CHECKIN_CRON "0 8 * * *"
#define DEFAULT_BALANCE_CRON "0 * * * *"
#define LEASE_TTL_MS         50000
#define MAX_THREADS          64

struct control_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    size_t size;
    unsigned pending, ok, skipped, failed;
};

struct qjob {
    unsigned jobs;
    int64_t account_id; /* 0 = fan-out */
    bool scheduled;
    int64_t not_before_ms;
    struct control_batch *batch;
    struct qjob *next;
};

struct schedule {
    const char *name; /* "checkin" | "balance" */
    unsigned jobs;
    char text[128];
    struct cron_expr expr;
    bool pinned;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work; /* queue changed or stop */
    pthread_cond_t tick; /* schedules changed or stop */
    bool running, stopping;
    struct qjob *head;
    struct {
        int64_t account_id;
        unsigned jobs;
    } busy[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    unsigned n_threads;
    pthread_t sched;
    bool sched_started;
    struct control_config cfg;
    struct schedule sch[2];
    char holder[96];
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .work = PTHREAD_COND_INITIALIZER,
       .tick = PTHREAD_COND_INITIALIZER};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec abs_ms(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
}

bool control_running(void)
{
    pthread_mutex_lock(&P.mu);
    bool r = P.running && !P.stopping;
    pthread_mutex_unlock(&P.mu);
    return r;
}

const tz_t *control_tz(void)
{
    return P.running ? P.cfg.tz : NULL;
}

/* ---- batches ---- */

static struct control_batch *batch_new(void)
{
    struct control_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->refs = 1;
    return b;
}

static void batch_ref(struct control_batch *b, unsigned jobs)
{
    pthread_mutex_lock(&b->mu);
    b->refs++;
    b->pending += jobs;
    b->size += jobs;
    pthread_mutex_unlock(&b->mu);
}

void control_batch_release(struct control_batch *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&b->mu);
    if (last) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        free(b);
    }
}

/* One job of the batch finished (status < 0: the entry only expanded or was dropped). */
static void batch_done(struct control_batch *b, int status, unsigned count)
{
    pthread_mutex_lock(&b->mu);
    if (status == JOB_OK) b->ok += count;
    if (status == JOB_SKIPPED) b->skipped += count;
    if (status == JOB_FAILED) b->failed += count;
    b->pending -= count;
    if (status < 0) b->size -= count;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    control_batch_release(b);
}

bool control_batch_wait(struct control_batch *b, unsigned timeout_ms, unsigned *ok,
                        unsigned *skipped, unsigned *failed)
{
    struct timespec until = abs_ms(now_ms() + timeout_ms);
    pthread_mutex_lock(&b->mu);
    while (b->pending > 0)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT) break;
    bool done = b->pending == 0;
    if (ok) *ok = b->ok;
    if (skipped) *skipped = b->skipped;
    if (failed) *failed = b->failed;
    pthread_mutex_unlock(&b->mu);
    return done;
}

size_t control_batch_size(const struct control_batch *b)
{
    struct control_batch *m = (struct control_batch *)b;
    pthread_mutex_lock(&m->mu);
    size_t n = m->size;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- queue (P.mu held) ---- */

static bool duplicate_locked(int64_t account_id, unsigned jobs)
{
    for (struct qjob *q = P.head; q; q = q->next)
        if (q->account_id == account_id && q->account_id && (q->jobs & jobs) == jobs) return true;
    for (unsigned i = 0; i < P.n_threads; i++)
        if (P.busy[i].account_id == account_id && account_id && (P.busy[i].jobs & jobs) == jobs)
            return true;
    return false;
}

static void enqueue_locked(struct qjob *j)
{
    struct qjob **pp = &P.head;
    while (*pp) pp = &(*pp)->next;
    *pp = j;
    pthread_cond_broadcast(&P.work);
}

/* Queues one entry into batch b (which takes a reference). false when the entry was a
 * duplicate (counted as skipped) or could not be queued. */
static bool queue_one(unsigned jobs, int64_t account_id, bool scheduled, int64_t not_before,
                      struct control_batch *b)
{
    batch_ref(b, 1);
    struct qjob *j = calloc(1, sizeof *j);
    pthread_mutex_lock(&P.mu);
    bool dup = duplicate_locked(account_id, jobs);
    if (!j || dup || P.stopping) {
        pthread_mutex_unlock(&P.mu);
        free(j);
        batch_done(b, dup ? JOB_SKIPPED : JOB_FAILED, 1);
        return false;
    }
    *j = (struct qjob){jobs, account_id, scheduled, not_before, b, NULL};
    enqueue_locked(j);
    pthread_mutex_unlock(&P.mu);
    return true;
}

struct control_batch *control_submit(unsigned jobs, int64_t account_id, bool scheduled)
{
    if (!control_running() || jobs == 0) return NULL;
    struct control_batch *b = batch_new();
    if (!b) return NULL;
    queue_one(jobs, account_id, scheduled, 0, b);
    return b;
}

/* ---- running jobs ---- */

static uint32_t site_jitter(int64_t site_id)
{
    if (P.cfg.jitter_max_ms == 0) return 0;
    uint64_t h = (uint64_t)site_id * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return (uint32_t)(h % P.cfg.jitter_max_ms);
}

static void fan_out(db_t *db, const struct qjob *j)
{
    struct account *list = NULL;
    size_t n = 0;
    if (accounts_list(db, 0, &list, &n) != STORE_OK) {
        log_error("control: cannot list accounts for a scheduled run");
        return;
    }
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        if (!list[i].status || strcmp(list[i].status, "disabled") == 0) continue;
        /* Expired accounts still get a try: a re-login may bring them back. API-key-only
         * accounts only have models to refresh. */
        unsigned jobs = j->jobs;
        if (list[i].credential_mode && strcmp(list[i].credential_mode, "apikey") == 0)
            jobs &= CONTROL_JOB_MODELS;
        if (!jobs) continue;
        int64_t at = j->scheduled ? now + site_jitter(list[i].site_id) : 0;
        queue_one(jobs, list[i].id, j->scheduled, at, j->batch);
    }
    accounts_free(list, n);
}

static int run_job(struct job_ctx *ctx, const struct qjob *j)
{
    struct job_result r;
    int worst = JOB_SKIPPED, any_ok = 0;
    static const unsigned order[] = {CONTROL_JOB_CHECKIN, CONTROL_JOB_BALANCE, CONTROL_JOB_TOKENS,
                                     CONTROL_JOB_MODELS};
    for (size_t i = 0; i < 4; i++) {
        if (!(j->jobs & order[i])) continue;
        switch (order[i]) {
        case CONTROL_JOB_CHECKIN:
            job_checkin(ctx, j->account_id, j->scheduled, &r);
            break;
        case CONTROL_JOB_BALANCE:
            job_balance(ctx, j->account_id, &r);
            break;
        case CONTROL_JOB_TOKENS:
            job_sync_tokens(ctx, j->account_id, &r);
            break;
        default:
            job_models(ctx, j->account_id, &r);
            break;
        }
        if (r.status == JOB_FAILED) {
            worst = JOB_FAILED;
            log_warn("control: account %lld: %s", (long long)j->account_id, r.message);
            /* Credentials gone: the later steps would fail the same way. */
            if (r.kind == PLATFORM_ERR_AUTH || r.kind == PLATFORM_ERR_CAPTCHA ||
                r.kind == PLATFORM_ERR_NEEDS_2FA)
                break;
        } else {
            if (r.status == JOB_OK) any_ok = 1;
            log_debug("control: account %lld: %s", (long long)j->account_id, r.message);
        }
    }
    if (worst != JOB_FAILED && any_ok) worst = JOB_OK;
    return worst;
}

static void *worker_main(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    db_t *db = store_connect(P.cfg.store);
    fetch_client_t *fc = fetch_client_new();
    if (!db || !fc) log_error("control: thread %u has no database connection or HTTP client", me);
    pthread_mutex_lock(&P.mu);
    while (!P.stopping) {
        int64_t now = now_ms(), soonest = INT64_MAX;
        struct qjob **pp = &P.head, *j = NULL;
        for (; *pp; pp = &(*pp)->next) {
            if ((*pp)->not_before_ms <= now) {
                j = *pp;
                *pp = j->next;
                break;
            }
            if ((*pp)->not_before_ms < soonest) soonest = (*pp)->not_before_ms;
        }
        if (!j) {
            if (soonest == INT64_MAX) {
                pthread_cond_wait(&P.work, &P.mu);
            } else {
                struct timespec ts = abs_ms(soonest);
                pthread_cond_timedwait(&P.work, &P.mu, &ts);
            }
            continue;
        }
        P.busy[me].account_id = j->account_id;
        P.busy[me].jobs = j->jobs;
        pthread_mutex_unlock(&P.mu);
        int status = -1;
        if (db && fc) {
            if (j->account_id == 0) {
                fan_out(db, j);
            } else {
                struct job_ctx ctx = {.db = db, .fetch = fc, .tz = P.cfg.tz};
                status = run_job(&ctx, j);
                if (ctx.routing_dirty && P.cfg.routing_changed)
                    P.cfg.routing_changed(P.cfg.routing_changed_arg);
            }
        } else {
            status = JOB_FAILED;
        }
        batch_done(j->batch, status, 1);
        free(j);
        pthread_mutex_lock(&P.mu);
        P.busy[me].account_id = 0;
        P.busy[me].jobs = 0;
    }
    pthread_mutex_unlock(&P.mu);
    fetch_client_free(fc);
    db_close(db);
    return NULL;
}

/* ---- scheduler ---- */

static void *sched_main(void *arg)
{
    (void)arg;
    db_t *db = store_connect(P.cfg.store);
    pthread_mutex_lock(&P.mu);
    int64_t last[2] = {now_ms() / 1000, now_ms() / 1000};
    while (!P.stopping) {
        int64_t next[2] = {INT64_MAX, INT64_MAX}, soonest = INT64_MAX;
        for (int i = 0; i < 2; i++) {
            if (cron_next(&P.sch[i].expr, P.cfg.tz, last[i], &next[i]) != 0) next[i] = INT64_MAX;
            if (next[i] < soonest) soonest = next[i];
        }
        int64_t now_s = now_ms() / 1000;
        if (soonest > now_s) {
            if (soonest == INT64_MAX) {
                pthread_cond_wait(&P.tick, &P.mu);
            } else {
                struct timespec ts = abs_ms(soonest * 1000);
                pthread_cond_timedwait(&P.tick, &P.mu, &ts);
            }
            /* A schedule change restarts from now, so a new expression never fires
             * for times already past. */
            int64_t n2 = now_ms() / 1000;
            for (int i = 0; i < 2; i++)
                if (next[i] > n2) last[i] = n2 > last[i] ? n2 - 1 : last[i];
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (next[i] > now_s) continue;
            last[i] = next[i];
            unsigned jobs = P.sch[i].jobs;
            char lease[64];
            snprintf(lease, sizeof lease, "cron:%s", P.sch[i].name);
            pthread_mutex_unlock(&P.mu);
            bool got = false;
            if (db && job_lease_acquire(db, lease, P.holder, LEASE_TTL_MS, &got) == STORE_OK &&
                got) {
                log_info("control: scheduled %s run", P.sch[i].name);
                struct control_batch *b = batch_new();
                if (b) {
                    queue_one(jobs, 0, true, 0, b);
                    control_batch_release(b);
                }
            } else {
                log_info("control: scheduled %s run left to another node", P.sch[i].name);
            }
            pthread_mutex_lock(&P.mu);
        }
    }
    pthread_mutex_unlock(&P.mu);
    db_close(db);
    return NULL;
}

/* ---- schedules ---- */

static struct schedule *schedule_of(const char *which)
{
    for (int i = 0; i < 2; i++)
        if (which && strcmp(P.sch[i].name, which) == 0) return &P.sch[i];
    return NULL;
}

int control_set_cron(const char *which, const char *expr, char err[200])
{
    struct cron_expr e;
    char perr[160];
    struct schedule *s = schedule_of(which);
    if (!s) {
        snprintf(err, 200, "unknown schedule '%s'", which ? which : "");
        return -1;
    }
    if (!expr || strlen(expr) >= sizeof s->text || cron_parse(expr, &e, perr) != 0) {
        snprintf(err, 200, "invalid cron expression: %s", expr ? perr : "missing");
        return -1;
    }
    pthread_mutex_lock(&P.mu);
    snprintf(s->text, sizeof s->text, "%s", expr);
    s->expr = e;
    pthread_cond_broadcast(&P.tick);
    pthread_mutex_unlock(&P.mu);
    return 0;
}

bool control_cron_pinned(const char *which)
{
    struct schedule *s = schedule_of(which);
    return s && s->pinned;
}

void control_get_cron(const char *which, char *out, size_t cap)
{
    struct schedule *s = schedule_of(which);
    pthread_mutex_lock(&P.mu);
    snprintf(out, cap, "%s", s ? s->text : "");
    pthread_mutex_unlock(&P.mu);
}

/* The stored setting `key` (a JSON string), or NULL. Caller frees. */
static char *stored_cron(db_t *db, const char *key)
{
    char *json = NULL;
    if (!db || settings_get(db, key, &json) != STORE_OK) return NULL;
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    free(json);
    char *v = json_is_string(j) ? strdup(json_string_value(j)) : NULL;
    json_decref(j);
    return v;
}

int control_start(const struct control_config *cfg, char err[200])
{
    if (P.running) {
        snprintf(err, 200, "the control pool is already running");
        return -1;
    }
    P.cfg = *cfg;
    if (P.cfg.concurrency == 0) P.cfg.concurrency = 4;
    if (P.cfg.concurrency > MAX_THREADS) P.cfg.concurrency = MAX_THREADS;
    P.sch[0] = (struct schedule){
        .name = "checkin", .jobs = CONTROL_JOB_CHECKIN, .pinned = cfg->checkin_cron_pinned};
    P.sch[1] =
        (struct schedule){.name = "balance",
                          .jobs = CONTROL_JOB_BALANCE | CONTROL_JOB_TOKENS | CONTROL_JOB_MODELS,
                          .pinned = cfg->balance_cron_pinned};
    db_t *db = store_connect(cfg->store);
    const char *given[2] = {cfg->checkin_cron, cfg->balance_cron};
    const char *keys[2] = {"checkin_cron", "balance_refresh_cron"};
    const char *defs[2] = {DEFAULT_CHECKIN_CRON, DEFAULT_BALANCE_CRON};
    for (int i = 0; i < 2; i++) {
        char *stored = P.sch[i].pinned ? NULL : stored_cron(db, keys[i]);
        const char *expr = P.sch[i].pinned ? given[i]
                           : stored        ? stored
                           : given[i]      ? given[i]
                                           : defs[i];
        struct cron_expr e;
        char perr[160];
        int rc = cron_parse(expr, &e, perr);
        if (rc != 0 && stored) { /* a bad stored value does not stop the process */
            log_warn("control: stored %s '%s' is invalid (%s); using %s", keys[i], stored, perr,
                     defs[i]);
            expr = defs[i];
            rc = cron_parse(expr, &e, perr);
        }
        if (rc != 0) {
            snprintf(err, 200, "%s=%s: %s", i == 0 ? "CHECKIN_CRON" : "BALANCE_REFRESH_CRON", expr,
                     perr);
            free(stored);
            db_close(db);
            return -1;
        }
        snprintf(P.sch[i].text, sizeof P.sch[i].text, "%s", expr);
        P.sch[i].expr = e;
        free(stored);
    }
    db_close(db);
    char host[64] = "node";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    snprintf(P.holder, sizeof P.holder, "%s:%ld", host, (long)getpid());
    P.stopping = false;
    P.running = true;
    P.n_threads = 0;
    for (unsigned i = 0; i < P.cfg.concurrency; i++) {
        if (pthread_create(&P.threads[i], NULL, worker_main, (void *)(uintptr_t)i) != 0) break;
        P.n_threads++;
    }
    P.sched_started = pthread_create(&P.sched, NULL, sched_main, NULL) == 0;
    if (P.n_threads == 0 || !P.sched_started) {
        control_stop();
        snprintf(err, 200, "cannot start the control threads");
        return -1;
    }
    log_info("control: %u threads; check-in '%s', balance refresh '%s' (zone %s)", P.n_threads,
             P.sch[0].text, P.sch[1].text, cfg->tz ? tz_name(cfg->tz) : "UTC");
    return 0;
}

void control_stop(void)
{
    pthread_mutex_lock(&P.mu);
    if (!P.running) {
        pthread_mutex_unlock(&P.mu);
        return;
    }
    P.stopping = true;
    struct qjob *q = P.head;
    P.head = NULL;
    pthread_cond_broadcast(&P.work);
    pthread_cond_broadcast(&P.tick);
    pthread_mutex_unlock(&P.mu);
    while (q) { /* dropped: waiters see them done */
        struct qjob *next = q->next;
        batch_done(q->batch, -1, 1);
        free(q);
        q = next;
    }
    for (unsigned i = 0; i < P.n_threads; i++) pthread_join(P.threads[i], NULL);
    if (P.sched_started) pthread_join(P.sched, NULL);
    pthread_mutex_lock(&P.mu);
    P.n_threads = 0;
    P.sched_started = false;
    P.running = false;
    pthread_mutex_unlock(&P.mu);
}
