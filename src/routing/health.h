/* health.h — runtime health of the things routing chooses between, as a state machine
 * driven by the outcomes of real requests.
 *
 * Three scopes share one record type (struct channel_health):
 *   - site:       one per site; fed by connect failures only (a site that refuses
 *                 connections is down for every credential and model on it);
 *   - credential: one per account; fed by quota and auth failures (a quota or a broken
 *                 key concerns that credential only, never its site or other keys);
 *   - channel:    one per (account, upstream model); fed by timeouts, server errors,
 *                 rate limits and connect failures.
 * The gateway holds a channel record and reports each attempt's outcome on it; the record
 * forwards the outcome to its credential and site parents according to the failure kind.
 *
 * Records are allocated once, never move and are never freed while the process runs, so
 * their addresses survive snapshots (DESIGN.md §3). Every field is an atomic on the
 * record's own cache lines; the hot path takes no lock.
 *
 * States (health_state): healthy → degraded (failure rate ≥ 20 % over the last minute with
 * ≥ 5 samples, or first-byte latency EWMA ≥ HEALTH slow threshold) → unhealthy (cooling
 * down after a failure, or half-open) ; disabled is the administrator's (channel, account
 * or site switched off) and comes from the snapshot, not from here.
 *
 * Cooldown: a counted failure sets cooldown = min(base · 2^(streak-1), max) where streak
 * is the number of failures since the last success — and a streak whose last failure is
 * older than `streak_forget_ms` starts again at 1 (the *recent* streak, not the lifetime
 * count). Retry-After stretches the cooldown (never shortens it) and makes it "hard" (the
 * provider asked us to wait: no last-resort attempt). After the cooldown the record is
 * half-open: exactly one request may take the trial (CAS on `trial_ns`); its success
 * closes the circuit, its failure cools again with the next backoff step. */
#ifndef METARELAY_ROUTING_HEALTH_H
#define METARELAY_ROUTING_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum health_scope { HEALTH_SCOPE_SITE = 0, HEALTH_SCOPE_CREDENTIAL = 1, HEALTH_SCOPE_CHANNEL = 2 };

enum health_state {
    HEALTH_HEALTHY = 0,
    HEALTH_DEGRADED = 1,
    HEALTH_UNHEALTHY = 2,
    HEALTH_DISABLED = 3,
};

/* Why an attempt failed. */
enum health_failure {
    HEALTH_FAIL_CONNECT = 0,  /* connection refused/reset, DNS, TLS: channel + site */
    HEALTH_FAIL_TIMEOUT,      /* first-byte, idle or total timeout: channel */
    HEALTH_FAIL_SERVER_ERROR, /* 5xx, broken or unusable answer: channel */
    HEALTH_FAIL_RATE_LIMIT,   /* 429 rate limit: channel; Retry-After honoured */
    HEALTH_FAIL_QUOTA,        /* quota/billing exhausted (402, 429 quota): credential, long */
    HEALTH_FAIL_AUTH,         /* 401/403 key rejected: credential, long */
    HEALTH_FAIL_CLIENT_ERROR, /* the client's fault (400/413/422): never counted */
    HEALTH_FAIL_KINDS
};

#define HEALTH_WINDOW_BUCKETS   6
#define HEALTH_WINDOW_BUCKET_MS 10000u /* 6 × 10 s = a one-minute sliding window */

struct channel_health {
    /* identity (immutable after creation) */
    int64_t id; /* site id, account id */
    uint8_t scope;
    char *model;                       /* channel scope: the upstream model name; else NULL */
    struct channel_health *credential; /* channel scope: its parents; else NULL */
    struct channel_health *site;

    /* state: own cache lines */
    _Alignas(64) atomic_uint_fast64_t cooldown_until_ns; /* monotonic; 0 = none */
    atomic_uint_fast64_t trial_ns;        /* half-open trial in flight since; 0 = none */
    atomic_uint_fast64_t last_failure_ns; /* monotonic; 0 = never */
    atomic_uint streak;                   /* failures since the last success */
    atomic_uint cooldown_kind;            /* enum health_failure of the current cooldown */
    atomic_bool cooldown_hard;            /* provider-directed: no last resort */
    atomic_uint state;                    /* last published enum health_state */
    atomic_uint latency_ms;               /* EWMA of first-byte latency; 0 = unknown */
    atomic_uint_fast64_t successes;       /* lifetime */
    atomic_uint_fast64_t failures;        /* lifetime, counted failures only */
    /* sliding window: epoch (32 bits) | successes (16) | failures (16) per bucket */
    _Alignas(64) atomic_uint_fast64_t window[HEALTH_WINDOW_BUCKETS];
};

/* Policy (set once at start, before threads; defaults in health.c). */
struct health_policy {
    unsigned cooldown_base_ms;     /* TOKEN_ROUTER_FAILURE_COOLDOWN_BASE_SEC, 5 s */
    unsigned cooldown_max_ms;      /* TOKEN_ROUTER_FAILURE_COOLDOWN_MAX_SEC, 300 s */
    unsigned quota_cooldown_ms;    /* ROUTING_QUOTA_COOLDOWN_SEC, 3600 s */
    unsigned auth_cooldown_ms;     /* ROUTING_AUTH_COOLDOWN_SEC, 1800 s */
    unsigned retry_after_max_ms;   /* longest Retry-After honoured, 86400 s */
    unsigned streak_forget_ms;     /* a streak older than this restarts, 600 s */
    unsigned trial_timeout_ms;     /* a trial never reported frees its slot after, 60 s */
    unsigned degraded_min_samples; /* 5 */
    double degraded_failure_rate;  /* 0.2 */
    unsigned slow_latency_ms;      /* first-byte EWMA ≥ this → degraded; 20 s */
};

void health_policy_defaults(struct health_policy *p);
void health_set_policy_full(const struct health_policy *p);
const struct health_policy *health_get_policy(void);
/* Compatibility: sets only base and cap (milliseconds). */
void health_set_policy(unsigned base_ms, unsigned max_ms);

/* Registry (control thread when building snapshots; thread-safe). Records are created on
 * first use. NULL when out of memory. */
struct channel_health *health_for_site(int64_t site_id);
struct channel_health *health_for_account(int64_t account_id);
/* The channel record of (account, upstream model), linked to its credential and site. */
struct channel_health *health_for_channel(int64_t site_id, int64_t account_id, const char *model);

/* Outcomes (any thread, lock-free). `latency_ms` is the first-byte latency (0 = unknown).
 * A success closes the channel, its credential and its site. A failure is counted on the
 * scope its kind names (see enum health_failure); client errors are ignored. A
 * `retry_after_ms` > 0 stretches the cooldown to at least that (capped) and makes it hard. */
void health_record_success(struct channel_health *h, uint64_t now_ns, unsigned latency_ms);
void health_record_failure(struct channel_health *h, uint64_t now_ns, enum health_failure kind,
                           unsigned retry_after_ms);

/* Half-open trial: true when the caller took the single trial slot of `h` (or none was
 * needed). Released by the next outcome on `h` or after trial_timeout_ms. */
bool health_trial_begin(struct channel_health *h, uint64_t now_ns);
/* Takes the trial slot whatever the state (a last-resort attempt on a cooling record):
 * false when another request holds it. */
bool health_trial_take(struct channel_health *h, uint64_t now_ns);
/* Releases a trial slot without an outcome (the attempt was abandoned). */
void health_trial_abandon(struct channel_health *h);

/* Read side. */
bool health_is_cooling(const struct channel_health *h, uint64_t now_ns);
/* Cooldown over but not yet closed by a success: a trial is due. */
bool health_is_half_open(const struct channel_health *h, uint64_t now_ns);
bool health_trial_busy(const struct channel_health *h, uint64_t now_ns);
enum health_state health_state(const struct channel_health *h, uint64_t now_ns);
/* Successes and failures in the sliding window. */
void health_window(const struct channel_health *h, uint64_t now_ns, unsigned *succ, unsigned *fail);
/* Laplace-smoothed success rate over window and lifetime, in [0,1]. */
double health_success_rate(const struct channel_health *h, uint64_t now_ns);
/* The same two, from window counts the caller already read (one window read per record). */
enum health_state health_state_counts(const struct channel_health *h, unsigned succ, unsigned fail);
double health_success_rate_counts(const struct channel_health *h, unsigned succ, unsigned fail);

const char *health_state_name(enum health_state s);
const char *health_failure_name(enum health_failure k);
const char *health_scope_name(enum health_scope s);

/* Clears failures and cooldown of a record (admin "cooldown clear"). */
void health_clear(struct channel_health *h);

/* ---- persistence (the control side converts to and from store rows) ---- */

struct health_saved {
    uint8_t scope;
    int64_t id;        /* site or account id */
    int64_t site_id;   /* channel scope: its site */
    const char *model; /* channel scope; borrowed */
    unsigned streak;
    int64_t cooldown_until_wall_ms; /* 0 = none */
    unsigned cooldown_kind;
    bool cooldown_hard;
    int64_t last_failure_wall_ms; /* 0 = never */
    unsigned latency_ms;
    uint64_t successes, failures;
};

/* Every record with something worth keeping, as wall-clock values. The array is malloc'ed
 * (caller frees it with free); `model` pointers borrow the records (valid until exit). */
int health_export(uint64_t now_ns, int64_t now_wall_ms, struct health_saved **out, size_t *n);
/* Restores saved records (creating them), converting wall-clock cooldowns back to the
 * monotonic clock; cooldowns already over are dropped. Returns the number restored. */
size_t health_import(const struct health_saved *rows, size_t n, uint64_t now_ns,
                     int64_t now_wall_ms);

/* Frees every record (process exit only, after all threads stopped). */
void health_registry_free(void);

#endif
