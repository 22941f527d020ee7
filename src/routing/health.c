/* health.c — the health state machine and its registry (see health.h). The registry is a
 * mutex-protected hash used when snapshots are built and when state is saved or loaded;
 * the records themselves are read and updated lock-free. */
#include "routing/health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* ---------- policy ---------- */

static struct health_policy policy = {
    .cooldown_base_ms = 5000,
    .cooldown_max_ms = 300000,
    .quota_cooldown_ms = 3600000,
    .auth_cooldown_ms = 1800000,
    .retry_after_max_ms = 86400000,
    .streak_forget_ms = 600000,
    .trial_timeout_ms = 60000,
    .degraded_min_samples = 5,
    .degraded_failure_rate = 0.2,
    .slow_latency_ms = 20000,
};

void health_policy_defaults(struct health_policy *p)
{
    *p = (struct health_policy){
        .cooldown_base_ms = 5000,
        .cooldown_max_ms = 300000,
        .quota_cooldown_ms = 3600000,
        .auth_cooldown_ms = 1800000,
        .retry_after_max_ms = 86400000,
        .streak_forget_ms = 600000,
        .trial_timeout_ms = 60000,
        .degraded_min_samples = 5,
        .degraded_failure_rate = 0.2,
        .slow_latency_ms = 20000,
    };
}

void health_set_policy_full(const struct health_policy *p)
{
    policy = *p;
    if (policy.cooldown_base_ms == 0) policy.cooldown_base_ms = 1;
    if (policy.cooldown_max_ms < policy.cooldown_base_ms)
        policy.cooldown_max_ms = policy.cooldown_base_ms;
    if (policy.trial_timeout_ms == 0) policy.trial_timeout_ms = 1;
}

const struct health_policy *health_get_policy(void)
{
    return &policy;
}

void health_set_policy(unsigned base_ms, unsigned max_ms)
{
    struct health_policy p = policy;
    p.cooldown_base_ms = base_ms;
    p.cooldown_max_ms = max_ms;
    health_set_policy_full(&p);
}

/* ---------- registry ---------- */

#define REG_BUCKETS 4096u

struct reg_node {
    struct reg_node *next;
    struct channel_health *h;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reg_node *buckets[REG_BUCKETS];
static struct channel_health **all;
static size_t all_n, all_cap;

static uint64_t key_hash(uint8_t scope, int64_t id, const char *model)
{
    uint64_t h = 1469598103934665603ull ^ scope;
    h = (h ^ (uint64_t)id) * 1099511628211ull;
    h ^= h >> 29;
    for (const char *p = model; p && *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static bool same_key(const struct channel_health *h, uint8_t scope, int64_t id, const char *model)
{
    if (h->scope != scope || h->id != id) return false;
    if (!model || !h->model) return !model && !h->model;
    return strcmp(h->model, model) == 0;
}

/* Caller holds registry_mu. */
static struct channel_health *lookup_or_create(uint8_t scope, int64_t id, const char *model)
{
    uint64_t hv = key_hash(scope, id, model) % REG_BUCKETS;
    for (struct reg_node *n = buckets[hv]; n; n = n->next)
        if (same_key(n->h, scope, id, model)) return n->h;
    if (all_n == all_cap) {
        size_t cap = all_cap ? all_cap * 2 : 256;
        struct channel_health **grown = realloc(all, cap * sizeof *grown);
        if (!grown) return NULL;
        all = grown;
        all_cap = cap;
    }
    struct reg_node *node = malloc(sizeof *node);
    struct channel_health *h = aligned_alloc(64, (sizeof *h + 63) / 64 * 64);
    char *m = model ? strdup(model) : NULL;
    if (!node || !h || (model && !m)) {
        free(node);
        free(h);
        free(m);
        return NULL;
    }
    memset(h, 0, sizeof *h);
    h->scope = scope;
    h->id = id;
    h->model = m;
    node->h = h;
    node->next = buckets[hv];
    buckets[hv] = node;
    all[all_n++] = h;
    return h;
}

struct channel_health *health_for_site(int64_t site_id)
{
    pthread_mutex_lock(&registry_mu);
    struct channel_health *h = lookup_or_create(HEALTH_SCOPE_SITE, site_id, NULL);
    pthread_mutex_unlock(&registry_mu);
    return h;
}

struct channel_health *health_for_account(int64_t account_id)
{
    pthread_mutex_lock(&registry_mu);
    struct channel_health *h = lookup_or_create(HEALTH_SCOPE_CREDENTIAL, account_id, NULL);
    pthread_mutex_unlock(&registry_mu);
    return h;
}

struct channel_health *health_for_channel(int64_t site_id, int64_t account_id, const char *model)
{
    pthread_mutex_lock(&registry_mu);
    struct channel_health *h =
        lookup_or_create(HEALTH_SCOPE_CHANNEL, account_id, model ? model : "");
    if (h && !h->credential) {
        /* Parents are set once, under the lock, before the record is handed out. */
        h->credential = lookup_or_create(HEALTH_SCOPE_CREDENTIAL, account_id, NULL);
        h->site = lookup_or_create(HEALTH_SCOPE_SITE, site_id, NULL);
        if (!h->credential || !h->site) h = NULL;
    }
    pthread_mutex_unlock(&registry_mu);
    return h;
}

void health_registry_free(void)
{
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < REG_BUCKETS; i++) {
        struct reg_node *n = buckets[i];
        while (n) {
            struct reg_node *next = n->next;
            free(n);
            n = next;
        }
        buckets[i] = NULL;
    }
    for (size_t i = 0; i < all_n; i++) {
        free(all[i]->model);
        free(all[i]);
    }
    free(all);
    all = NULL;
    all_n = all_cap = 0;
    pthread_mutex_unlock(&registry_mu);
}

/* ---------- sliding window ---------- */

static uint32_t epoch_of(uint64_t now_ns)
{
    return (uint32_t)(now_ns / ((uint64_t)HEALTH_WINDOW_BUCKET_MS * 1000000ull)) + 1;
}

static void window_add(struct channel_health *h, uint64_t now_ns, bool success)
{
    uint32_t ep = epoch_of(now_ns);
    atomic_uint_fast64_t *slot = &h->window[ep % HEALTH_WINDOW_BUCKETS];
    uint64_t cur = atomic_load(slot), next;
    do {
        uint32_t e = (uint32_t)(cur >> 32);
        uint32_t s = (uint32_t)(cur >> 16) & 0xffff, f = (uint32_t)cur & 0xffff;
        if (e != ep) s = f = 0;
        if (success && s < 0xffff) s++;
        if (!success && f < 0xffff) f++;
        next = ((uint64_t)ep << 32) | ((uint64_t)s << 16) | f;
    } while (!atomic_compare_exchange_weak(slot, &cur, next));
}

void health_window(const struct channel_health *h, uint64_t now_ns, unsigned *succ, unsigned *fail)
{
    uint32_t ep = epoch_of(now_ns);
    unsigned s = 0, f = 0;
    for (size_t i = 0; i < HEALTH_WINDOW_BUCKETS; i++) {
        uint64_t v = atomic_load(&((struct channel_health *)h)->window[i]);
        uint32_t e = (uint32_t)(v >> 32);
        if (e == 0 || e > ep || ep - e >= HEALTH_WINDOW_BUCKETS) continue;
        s += (unsigned)(v >> 16) & 0xffff;
        f += (unsigned)v & 0xffff;
    }
    *succ = s;
    *fail = f;
}

/* ---------- state ---------- */

bool health_is_cooling(const struct channel_health *h, uint64_t now_ns)
{
    uint64_t until = atomic_load(&h->cooldown_until_ns);
    return until != 0 && until > now_ns;
}

bool health_is_half_open(const struct channel_health *h, uint64_t now_ns)
{
    uint64_t until = atomic_load(&h->cooldown_until_ns);
    return until != 0 && until <= now_ns;
}

bool health_trial_busy(const struct channel_health *h, uint64_t now_ns)
{
    uint64_t t = atomic_load(&h->trial_ns);
    return t != 0 && now_ns - t < (uint64_t)policy.trial_timeout_ms * 1000000ull;
}

enum health_state health_state_counts(const struct channel_health *h, unsigned s, unsigned f)
{
    if (atomic_load(&h->cooldown_until_ns) != 0) return HEALTH_UNHEALTHY; /* cooling or half-open */
    if (s + f >= policy.degraded_min_samples &&
        (double)f >= policy.degraded_failure_rate * (double)(s + f))
        return HEALTH_DEGRADED;
    unsigned lat = atomic_load(&h->latency_ms);
    if (policy.slow_latency_ms && lat >= policy.slow_latency_ms) return HEALTH_DEGRADED;
    return HEALTH_HEALTHY;
}

enum health_state health_state(const struct channel_health *h, uint64_t now_ns)
{
    if (atomic_load(&h->cooldown_until_ns) != 0) return HEALTH_UNHEALTHY;
    unsigned s, f;
    health_window(h, now_ns, &s, &f);
    return health_state_counts(h, s, f);
}

double health_success_rate_counts(const struct channel_health *h, unsigned s, unsigned f)
{
    /* The window counts three times as much as the lifetime (recent behaviour wins), and
     * one success + one failure of prior keep a new channel at 0.5. */
    double ls = (double)atomic_load(&h->successes), lf = (double)atomic_load(&h->failures);
    double scale = ls + lf > 100 ? 100.0 / (ls + lf) : 1.0; /* lifetime weighs ≤ 100 samples */
    double succ = 3.0 * s + ls * scale + 1.0, total = 3.0 * (s + f) + (ls + lf) * scale + 2.0;
    return succ / total;
}

double health_success_rate(const struct channel_health *h, uint64_t now_ns)
{
    unsigned s, f;
    health_window(h, now_ns, &s, &f);
    return health_success_rate_counts(h, s, f);
}

static const char *const state_names[] = {"healthy", "degraded", "unhealthy", "disabled"};
static const char *const failure_names[] = {"connect", "timeout", "server_error", "rate_limit",
                                            "quota",   "auth",    "client_error"};
static const char *const scope_names[] = {"site", "credential", "channel"};

const char *health_state_name(enum health_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "unknown";
}

const char *health_failure_name(enum health_failure k)
{
    return (unsigned)k < HEALTH_FAIL_KINDS ? failure_names[k] : "unknown";
}

const char *health_scope_name(enum health_scope s)
{
    return (unsigned)s < 3 ? scope_names[s] : "unknown";
}

/* Publishes a state change (CAS so that one thread logs each transition). */
static void publish_state(struct channel_health *h, uint64_t now_ns)
{
    unsigned cur = atomic_load(&h->state);
    unsigned next = (unsigned)health_state(h, now_ns);
    if (cur == next || !atomic_compare_exchange_strong(&h->state, &cur, next)) return;
    if (h->scope == HEALTH_SCOPE_CHANNEL) /* per model: can flap with traffic */
        log_debug("health: channel account %lld model '%s': %s -> %s", (long long)h->id, h->model,
                  health_state_name(cur), health_state_name(next));
    else
        log_info("health: %s %lld: %s -> %s", health_scope_name(h->scope), (long long)h->id,
                 health_state_name(cur), health_state_name(next));
}

/* ---------- outcomes ---------- */

static void close_record(struct channel_health *h, uint64_t now_ns)
{
    atomic_fetch_add(&h->successes, 1);
    window_add(h, now_ns, true);
    atomic_store(&h->streak, 0);
    atomic_store(&h->cooldown_until_ns, 0);
    atomic_store(&h->cooldown_hard, false);
    atomic_store(&h->trial_ns, 0);
    publish_state(h, now_ns);
}

void health_record_success(struct channel_health *h, uint64_t now_ns, unsigned latency_ms)
{
    if (!h) return;
    if (latency_ms) {
        /* EWMA, α = 0.3 (a lost update under a race only delays the average) */
        unsigned old = atomic_load(&h->latency_ms);
        unsigned next = old ? (unsigned)(0.7 * old + 0.3 * latency_ms) : latency_ms;
        atomic_store(&h->latency_ms, next ? next : 1);
    }
    close_record(h, now_ns);
    if (h->credential) close_record(h->credential, now_ns);
    if (h->site) close_record(h->site, now_ns);
}

static uint64_t backoff_ms(unsigned streak)
{
    uint64_t ms = policy.cooldown_base_ms;
    for (unsigned i = 1; i < streak && ms < policy.cooldown_max_ms; i++) ms *= 2;
    return ms > policy.cooldown_max_ms ? policy.cooldown_max_ms : ms;
}

static void count_failure(struct channel_health *h, uint64_t now_ns, enum health_failure kind,
                          uint64_t floor_ms, bool hard)
{
    atomic_fetch_add(&h->failures, 1);
    window_add(h, now_ns, false);
    /* The recent streak: a failure long after the previous one starts over. */
    uint64_t last = atomic_exchange(&h->last_failure_ns, now_ns);
    unsigned streak;
    if (last && now_ns > last && now_ns - last > (uint64_t)policy.streak_forget_ms * 1000000ull) {
        atomic_store(&h->streak, 1);
        streak = 1;
    } else {
        streak = atomic_fetch_add(&h->streak, 1) + 1;
    }
    uint64_t ms = backoff_ms(streak);
    if (floor_ms > ms) ms = floor_ms;
    uint64_t until = now_ns + ms * 1000000ull;
    /* Never shorten a longer cooldown already running (e.g. a quota one). */
    uint64_t cur = atomic_load(&h->cooldown_until_ns);
    while ((cur <= now_ns || cur < until) &&
           !atomic_compare_exchange_weak(&h->cooldown_until_ns, &cur, until)) {
    }
    if (cur <= now_ns || cur < until) {
        atomic_store(&h->cooldown_kind, (unsigned)kind);
        atomic_store(&h->cooldown_hard, hard);
    }
    atomic_store(&h->trial_ns, 0);
    publish_state(h, now_ns);
}

void health_record_failure(struct channel_health *h, uint64_t now_ns, enum health_failure kind,
                           unsigned retry_after_ms)
{
    if (!h || kind == HEALTH_FAIL_CLIENT_ERROR || (unsigned)kind >= HEALTH_FAIL_KINDS) return;
    uint64_t ra = retry_after_ms;
    if (ra > policy.retry_after_max_ms) ra = policy.retry_after_max_ms;
    bool hard = ra > 0;
    switch (kind) {
    case HEALTH_FAIL_CONNECT:
        count_failure(h, now_ns, kind, ra, hard);
        if (h->site) count_failure(h->site, now_ns, kind, ra, hard);
        break;
    case HEALTH_FAIL_TIMEOUT:
    case HEALTH_FAIL_SERVER_ERROR:
    case HEALTH_FAIL_RATE_LIMIT:
        count_failure(h, now_ns, kind, ra, hard);
        break;
    case HEALTH_FAIL_QUOTA:
    case HEALTH_FAIL_AUTH: {
        struct channel_health *cred = h->credential ? h->credential : h;
        uint64_t floor =
            kind == HEALTH_FAIL_QUOTA ? policy.quota_cooldown_ms : policy.auth_cooldown_ms;
        if (ra > floor) floor = ra;
        count_failure(cred, now_ns, kind, floor, true);
        /* the channel's own trial slot (if it held one) is free again */
        if (cred != h) atomic_store(&h->trial_ns, 0);
        break;
    }
    default:
        break;
    }
}

bool health_trial_begin(struct channel_health *h, uint64_t now_ns)
{
    if (!h || !health_is_half_open(h, now_ns)) return true;
    return health_trial_take(h, now_ns);
}

bool health_trial_take(struct channel_health *h, uint64_t now_ns)
{
    if (!h) return true;
    uint64_t cur = atomic_load(&h->trial_ns);
    for (;;) {
        if (cur != 0 && now_ns - cur < (uint64_t)policy.trial_timeout_ms * 1000000ull) return false;
        if (atomic_compare_exchange_weak(&h->trial_ns, &cur, now_ns ? now_ns : 1)) return true;
    }
}

void health_trial_abandon(struct channel_health *h)
{
    if (h) atomic_store(&h->trial_ns, 0);
}

void health_clear(struct channel_health *h)
{
    if (!h) return;
    atomic_store(&h->streak, 0);
    atomic_store(&h->cooldown_until_ns, 0);
    atomic_store(&h->cooldown_hard, false);
    atomic_store(&h->trial_ns, 0);
    atomic_store(&h->last_failure_ns, 0);
    for (size_t i = 0; i < HEALTH_WINDOW_BUCKETS; i++) atomic_store(&h->window[i], 0);
    atomic_store(&h->state, HEALTH_HEALTHY);
}

/* ---------- persistence ---------- */

static int64_t mono_to_wall(uint64_t mono, uint64_t now_ns, int64_t now_wall_ms)
{
    if (!mono) return 0;
    return now_wall_ms + ((int64_t)mono - (int64_t)now_ns) / 1000000;
}

int health_export(uint64_t now_ns, int64_t now_wall_ms, struct health_saved **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&registry_mu);
    struct health_saved *rows = calloc(all_n ? all_n : 1, sizeof *rows);
    if (!rows) {
        pthread_mutex_unlock(&registry_mu);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < all_n; i++) {
        struct channel_health *h = all[i];
        uint64_t succ = atomic_load(&h->successes), fail = atomic_load(&h->failures);
        uint64_t until = atomic_load(&h->cooldown_until_ns);
        if (!succ && !fail && !until) continue;
        rows[k++] = (struct health_saved){
            .scope = h->scope,
            .id = h->id,
            .site_id = h->site ? h->site->id : 0,
            .model = h->model,
            .streak = atomic_load(&h->streak),
            .cooldown_until_wall_ms = mono_to_wall(until, now_ns, now_wall_ms),
            .cooldown_kind = atomic_load(&h->cooldown_kind),
            .cooldown_hard = atomic_load(&h->cooldown_hard),
            .last_failure_wall_ms =
                mono_to_wall(atomic_load(&h->last_failure_ns), now_ns, now_wall_ms),
            .latency_ms = atomic_load(&h->latency_ms),
            .successes = succ,
            .failures = fail,
        };
    }
    pthread_mutex_unlock(&registry_mu);
    *out = rows;
    *n = k;
    return 0;
}

size_t health_import(const struct health_saved *rows, size_t n, uint64_t now_ns,
                     int64_t now_wall_ms)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        const struct health_saved *r = &rows[i];
        struct channel_health *h = NULL;
        if (r->scope == HEALTH_SCOPE_SITE)
            h = health_for_site(r->id);
        else if (r->scope == HEALTH_SCOPE_CREDENTIAL)
            h = health_for_account(r->id);
        else if (r->scope == HEALTH_SCOPE_CHANNEL && r->model)
            h = health_for_channel(r->site_id, r->id, r->model);
        if (!h) continue;
        atomic_store(&h->successes, r->successes);
        atomic_store(&h->failures, r->failures);
        atomic_store(&h->latency_ms, r->latency_ms);
        atomic_store(&h->streak, r->streak);
        /* A cooldown still running keeps its remaining wall-clock time on the monotonic
         * clock; one already over comes back as half-open (a trial decides). */
        if (r->cooldown_until_wall_ms > 0 && r->streak > 0) {
            int64_t left_ms = r->cooldown_until_wall_ms - now_wall_ms;
            uint64_t until = left_ms > 0 ? now_ns + (uint64_t)left_ms * 1000000ull : now_ns;
            atomic_store(&h->cooldown_until_ns, until ? until : 1);
            atomic_store(&h->cooldown_kind, r->cooldown_kind);
            atomic_store(&h->cooldown_hard, r->cooldown_hard);
        }
        if (r->last_failure_wall_ms > 0) {
            int64_t ago_ms = now_wall_ms - r->last_failure_wall_ms;
            if (ago_ms < 0) ago_ms = 0;
            uint64_t ago = (uint64_t)ago_ms * 1000000ull;
            atomic_store(&h->last_failure_ns, now_ns > ago ? now_ns - ago : 1);
        }
        atomic_store(&h->state, (unsigned)health_state(h, now_ns));
        done++;
    }
    return done;
}
