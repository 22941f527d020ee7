/* select.c — candidate evaluation, the three strategies, trials, outcome reporting and the
 * decision explanation (see select.h; the weighted formula is documented in
 * docs/routing.md). Everything on the request path works on the stack: no allocation, no
 * lock (the sticky table's stripe lock aside). */
#include "routing/select.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "routing/sticky.h"

/* ---------- parameters ---------- */

static struct routing_params params = {
    .cost_exponent = 1.0,
    .balance_low = 5.0,
    .balance_floor = 0.2,
    .usage_exponent = 0.5,
    .degraded_factor = 0.3,
    .observe_every = 20,
};

void routing_params_defaults(struct routing_params *p)
{
    *p = (struct routing_params){1.0, 5.0, 0.2, 0.5, 0.3, 20};
}

void routing_set_params(const struct routing_params *p)
{
    params = *p;
    if (params.observe_every < 2) params.observe_every = 2;
    if (params.balance_floor <= 0 || params.balance_floor > 1) params.balance_floor = 0.2;
    if (params.degraded_factor <= 0 || params.degraded_factor > 1) params.degraded_factor = 0.3;
}

const struct routing_params *routing_get_params(void)
{
    return &params;
}

/* ---------- per-thread random numbers ---------- */

static _Thread_local uint64_t rng_state;

static double rand01(void)
{
    if (!rng_state) {
        rng_state =
            clock_mono_ns() ^ ((uint64_t)(uintptr_t)&rng_state << 16) ^ 0x9e3779b97f4a7c15ull;
        if (!rng_state) rng_state = 1;
    }
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------- evaluation ---------- */

static void records_of(const struct route_channel *rc, struct channel_health *rec[3])
{
    rec[0] = rc->health;
    rec[1] = rc->health ? rc->health->credential : NULL;
    rec[2] = rc->health ? rc->health->site : NULL;
}

static void eval_one(const struct routing_snapshot *s, const struct route_channel *rc,
                     uint64_t now_ns, bool stable, struct routing_eval *e)
{
    memset(e, 0, sizeof *e);
    e->rc = rc;
    e->f_cost = e->f_balance = e->f_usage = e->f_health = 1.0;
    if (!rc->enabled) {
        e->state = HEALTH_DISABLED;
        e->excluded = RX_DISABLED;
        return;
    }
    struct channel_health *rec[3];
    records_of(rc, rec);
    for (int i = 0; i < 3; i++) {
        const struct channel_health *h = rec[i];
        if (!h) continue;
        uint64_t until = atomic_load(&h->cooldown_until_ns);
        unsigned su = 0, fa = 0;
        enum health_state st = HEALTH_UNHEALTHY;
        if (i == 0) { /* the channel: one window read (state, recent usage, success rate) */
            health_window(h, now_ns, &su, &fa);
            st = health_state_counts(h, su, fa);
        } else if (until == 0) {
            /* credential and site: the state published at their last outcome (a degraded
             * parent stays degraded until its next outcome; cooldowns are read live) */
            st = (enum health_state)atomic_load(&h->state);
            if (st == HEALTH_UNHEALTHY) st = HEALTH_HEALTHY; /* its cooldown is over */
        }
        if (i == 0) {
            e->recent = su + fa;
            if (stable) e->success_rate = health_success_rate_counts(h, su, fa);
        }
        if (st > e->state) e->state = (uint8_t)st;
        if (until > now_ns) {
            if (e->excluded != RX_COOLING || until > e->ready_ns) {
                e->ready_ns = until;
                e->cooling_scope = h->scope;
                e->cooling_kind = (uint8_t)atomic_load(&h->cooldown_kind);
            }
            if (atomic_load(&h->cooldown_hard)) e->hard = true;
            e->excluded = RX_COOLING;
        } else if (until != 0) {
            e->half_open = true;
            if (health_trial_busy(h, now_ns) && e->excluded == RX_NONE) e->excluded = RX_TRIAL_BUSY;
        }
    }
    if (e->excluded == RX_NONE && rc->weight == 0) e->excluded = RX_ZERO_WEIGHT;
    const struct channel *c = &s->channels[rc->channel];
    if (c->balance > 0 && params.balance_low > 0) {
        double f = c->balance / params.balance_low;
        e->f_balance = f > 1 ? 1 : f < params.balance_floor ? params.balance_floor : f;
    }
    if (e->state == HEALTH_DEGRADED || e->half_open) e->f_health = params.degraded_factor;
}

/* x^e with the exponents of the defaults computed without pow() (x in (0, 1]). */
static double fast_pow(double x, double e)
{
    if (e == 0 || x == 1.0) return 1.0;
    if (e == 1) return x;
    if (e == 0.5) return sqrt(x);
    if (e == 2) return x * x;
    return pow(x, e);
}

/* Stable insertion sort of evaluation entries by priority. */
static void sort_by_priority(struct routing_eval *ev, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (ev[i - 1].rc->priority <= ev[i].rc->priority) continue; /* already in place */
        struct routing_eval x = ev[i];
        size_t j = i;
        while (j > 0 && ev[j - 1].rc->priority > x.rc->priority) {
            ev[j] = ev[j - 1];
            j--;
        }
        ev[j] = x;
    }
}

static bool usable(const struct routing_eval *e)
{
    return e->excluded == RX_NONE;
}

/* Cost and usage factors are relative to the usable channels of the same layer. */
static void layer_factors(const struct routing_snapshot *s, struct routing_eval *ev, size_t a,
                          size_t b)
{
    double min_cost = INFINITY;
    for (size_t i = a; i < b; i++)
        if (usable(&ev[i]) && ev[i].rc->unit_cost < min_cost) min_cost = ev[i].rc->unit_cost;
    if (min_cost == INFINITY) return;
    double min_load = INFINITY, sum_score = 0, sum_recent = 0;
    size_t L = 0;
    for (size_t i = a; i < b; i++) {
        struct routing_eval *e = &ev[i];
        if (!usable(e)) continue;
        e->f_cost = fast_pow(min_cost / e->rc->unit_cost, params.cost_exponent);
        const struct channel *c = &s->channels[e->rc->channel];
        /* intended share before the usage correction */
        e->score = (double)e->rc->weight * c->site_weight * e->f_cost * e->f_balance * e->f_health;
        if (e->score <= 0) e->score = 1e-12;
        double load = e->recent / e->score;
        if (load < min_load) min_load = load;
        sum_score += e->score;
        sum_recent += e->recent;
        L++;
    }
    /* Fair-share correction: a channel that served more than its intended share in the last
     * minute (requests per unit of score above the layer's lowest) is demoted. The damping
     * term is the layer's average load with ten pseudo-requests per channel, so a quiet
     * minute is neutral and a few requests barely move the shares. */
    double damp = (10.0 * (double)L + sum_recent) / sum_score;
    for (size_t i = a; i < b; i++) {
        struct routing_eval *e = &ev[i];
        if (!usable(e)) continue;
        double load = e->recent / e->score;
        e->f_usage = fast_pow((min_load + damp) / (load + damp), params.usage_exponent);
        e->score *= e->f_usage;
        if (e->score <= 0) e->score = 1e-12;
    }
}

static size_t evaluate(const struct routing_snapshot *s, const struct route *r, uint64_t now_ns,
                       struct routing_eval *ev, size_t max, bool full)
{
    if (!s || !r) return 0;
    size_t n = r->n_channels < max ? r->n_channels : max;
    /* the success rate is only needed by stable_first (and explanations) */
    bool stable = r->strategy == ROUTE_STABLE_FIRST || full;
    for (size_t i = 0; i < n; i++) eval_one(s, &r->channels[i], now_ns, stable, &ev[i]);
    sort_by_priority(ev, n);
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && ev[b].rc->priority == ev[a].rc->priority) b++;
        layer_factors(s, ev, a, b);
        a = b;
    }
    return n;
}

size_t routing_evaluate(const struct routing_snapshot *s, const struct route *r, uint64_t now_ns,
                        struct routing_eval *ev, size_t max)
{
    return evaluate(s, r, now_ns, ev, max, true);
}

/* ---------- ordering ---------- */

/* Orders ev[a..b) (usable ones) into idx per the strategy; returns how many were written. */
static size_t order_layer(const struct route *r, struct routing_eval *ev, size_t a, size_t b,
                          uint16_t *idx, bool deterministic, size_t need)
{
    size_t L = 0;
    for (size_t i = a; i < b; i++)
        if (usable(&ev[i])) idx[L++] = (uint16_t)i;
    if (L <= 1) return L;
    switch (r->strategy) {
    case ROUTE_ROUND_ROBIN: {
        unsigned start = deterministic ? atomic_load(&((struct route *)r)->cursor)
                                       : atomic_fetch_add(&((struct route *)r)->cursor, 1);
        uint16_t tmp[ROUTING_MAX_EVAL];
        for (size_t i = 0; i < L; i++) tmp[i] = idx[(start + i) % L];
        memcpy(idx, tmp, L * sizeof *idx);
        break;
    }
    case ROUTE_STABLE_FIRST: {
        for (size_t i = 1; i < L; i++) { /* success rate, then score */
            uint16_t x = idx[i];
            size_t j = i;
            while (j > 0 && (ev[idx[j - 1]].success_rate < ev[x].success_rate ||
                             (ev[idx[j - 1]].success_rate == ev[x].success_rate &&
                              ev[idx[j - 1]].score < ev[x].score))) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
        if (deterministic) break;
        unsigned k = atomic_fetch_add(&((struct route *)r)->requests, 1) + 1;
        if (k % params.observe_every == 0) {
            /* observation traffic: one request in observe_every is led by another channel */
            size_t o = 1 + (k / params.observe_every) % (L - 1);
            uint16_t x = idx[o];
            memmove(&idx[1], &idx[0], o * sizeof *idx);
            idx[0] = x;
        }
        break;
    }
    default:                 /* weighted */
        if (deterministic) { /* by score, for explanations */
            for (size_t i = 1; i < L; i++) {
                uint16_t x = idx[i];
                size_t j = i;
                while (j > 0 && ev[idx[j - 1]].score < ev[x].score) {
                    idx[j] = idx[j - 1];
                    j--;
                }
                idx[j] = x;
            }
            break;
        }
        /* draws without replacement, as many as the caller can use (the rest keep their
         * order: they are never tried) */
        for (size_t k = 0; k + 1 < L && k < need; k++) {
            double total = 0;
            for (size_t i = k; i < L; i++) total += ev[idx[i]].score;
            double x = rand01() * total;
            size_t pick = L - 1;
            for (size_t i = k; i < L; i++) {
                x -= ev[idx[i]].score;
                if (x < 0) {
                    pick = i;
                    break;
                }
            }
            uint16_t t = idx[k];
            idx[k] = idx[pick];
            idx[pick] = t;
        }
        break;
    }
    return L;
}

static int ready_cmp(const void *a, const void *b)
{
    const struct routing_eval *x = *(const struct routing_eval *const *)a;
    const struct routing_eval *y = *(const struct routing_eval *const *)b;
    return (x->ready_ns > y->ready_ns) - (x->ready_ns < y->ready_ns);
}

/* The full order (indexes into ev); returns its length. `sticky_at` = index of the
 * sticky channel to put first, or -1. Last-resort entries are flagged in `last`. */
static size_t order_all(const struct route *r, struct routing_eval *ev, size_t n, int sticky_at,
                        uint16_t *out, bool *last, size_t max, bool deterministic)
{
    size_t k = 0;
    if (sticky_at >= 0 && k < max) {
        last[k] = false;
        out[k++] = (uint16_t)sticky_at;
    }
    uint16_t layer[ROUTING_MAX_EVAL];
    for (size_t a = 0; a < n && k < max;) {
        size_t b = a;
        while (b < n && ev[b].rc->priority == ev[a].rc->priority) b++;
        size_t L = order_layer(r, ev, a, b, layer, deterministic, max - k);
        for (size_t i = 0; i < L && k < max; i++) {
            if ((int)layer[i] == sticky_at) continue;
            last[k] = false;
            out[k++] = layer[i];
        }
        a = b;
    }
    if (k > 0) return k;
    /* Nothing usable: cooling channels whose cooldown is our own backoff, soonest first. */
    const struct routing_eval *cool[ROUTING_MAX_EVAL];
    size_t nc = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].excluded == RX_COOLING && !ev[i].hard) cool[nc++] = &ev[i];
    qsort(cool, nc, sizeof *cool, ready_cmp);
    for (size_t i = 0; i < nc && k < max; i++) {
        last[k] = true;
        out[k++] = (uint16_t)(cool[i] - ev);
    }
    return k;
}

/* ---------- the request API ---------- */

static uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static uint64_t str_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void routing_request_init(struct routing_request *rq, const struct routing_snapshot *snap,
                          struct slice model, uint64_t session)
{
    memset(rq, 0, sizeof *rq);
    rq->snap = snap;
    rq->model = model;
    routing_resolve(snap, model, &rq->match);
    const struct route *r = rq->match.route;
    if (session && r) {
        /* bound per route: one conversation may use several models */
        uint64_t rid = r->id ? (uint64_t)r->id : str_hash(r->model, strlen(r->model));
        rq->session = mix64(session ^ mix64(rid + 0x51ed27ull)) | 1;
    }
}

size_t routing_select(struct routing_request *rq, uint64_t now_ns, size_t max)
{
    rq->n_picks = 0;
    rq->sticky = NULL;
    const struct route *r = rq->match.route;
    if (!r || !rq->snap) return 0;
    if (max > ROUTING_MAX_PICKS) max = ROUTING_MAX_PICKS;
    struct routing_eval ev[ROUTING_MAX_EVAL];
    size_t n = evaluate(rq->snap, r, now_ns, ev, ROUTING_MAX_EVAL, false);

    int sticky_at = -1;
    if (rq->session) {
        const void *bound = sticky_get(rq->session, now_ns);
        if (bound) {
            for (size_t i = 0; i < n; i++)
                if (ev[i].rc->health == bound) {
                    if (usable(&ev[i]) && ev[i].state != HEALTH_UNHEALTHY) sticky_at = (int)i;
                    break;
                }
            if (sticky_at < 0)
                sticky_drop(rq->session, bound); /* gone or unhealthy: the session moves on */
            else
                rq->sticky = bound;
        }
    }
    uint16_t order[ROUTING_MAX_PICKS];
    bool last[ROUTING_MAX_PICKS];
    size_t k = order_all(r, ev, n, sticky_at, order, last, max, false);
    for (size_t i = 0; i < k; i++) {
        const struct route_channel *rc = ev[order[i]].rc;
        rq->picks[i] = (struct route_pick){
            .channel = rc->channel,
            .rc = rc,
            .upstream_model = routing_upstream_model(&rq->match, rc, rq->model),
            .health = rc->health,
            .last_resort = last[i],
        };
    }
    rq->n_picks = k;
    return k;
}

bool routing_attempt_begin(struct routing_request *rq, struct route_pick *p, uint64_t now_ns)
{
    (void)rq;
    if (!p->rc) return true;
    struct channel_health *rec[3];
    records_of(p->rc, rec);
    p->trials = 0;
    for (int i = 0; i < 3; i++) {
        if (!rec[i]) continue;
        bool need = health_is_half_open(rec[i], now_ns) ||
                    (p->last_resort && health_is_cooling(rec[i], now_ns));
        if (!need) continue;
        if (!health_trial_take(rec[i], now_ns)) {
            for (int j = 0; j < i; j++)
                if (p->trials & (1u << j)) health_trial_abandon(rec[j]);
            p->trials = 0;
            return false;
        }
        p->trials |= (uint8_t)(1u << i);
    }
    return true;
}

void routing_attempt_abandon(struct routing_request *rq, struct route_pick *p)
{
    (void)rq;
    if (!p->rc || !p->trials) return;
    struct channel_health *rec[3];
    records_of(p->rc, rec);
    for (int i = 0; i < 3; i++)
        if ((p->trials & (1u << i)) && rec[i]) health_trial_abandon(rec[i]);
    p->trials = 0;
}

void routing_report_success(struct routing_request *rq, const struct route_pick *p, uint64_t now_ns,
                            unsigned first_byte_ms)
{
    if (!p->health) return;
    health_record_success(p->health, now_ns, first_byte_ms);
    if (rq->session) sticky_put(rq->session, p->health, now_ns);
}

void routing_report_failure(struct routing_request *rq, const struct route_pick *p, uint64_t now_ns,
                            enum health_failure kind, unsigned retry_after_ms)
{
    if (!p->health) return;
    health_record_failure(p->health, now_ns, kind, retry_after_ms);
    /* trial slots of the credential/site this failure did not touch are freed too */
    if (p->trials) {
        struct channel_health *rec[3];
        records_of(p->rc, rec);
        for (int i = 0; i < 3; i++)
            if ((p->trials & (1u << i)) && rec[i]) health_trial_abandon(rec[i]);
    }
    if (rq->session && kind != HEALTH_FAIL_CLIENT_ERROR) sticky_drop(rq->session, p->health);
}

double routing_estimated_cost(const struct route_channel *rc, int64_t prompt, int64_t completion)
{
    if (!rc) return -1;
    if (rc->cost_source == COST_PRICE && rc->price_per_call > 0) return rc->price_per_call;
    if (prompt < 0 && completion < 0) return -1;
    double in = prompt > 0 ? (double)prompt : 0, out = completion > 0 ? (double)completion : 0;
    if (rc->cost_source == COST_PRICE) {
        if (rc->price_input >= 0 && rc->price_output >= 0)
            return (in * rc->price_input + out * rc->price_output) / 1e6;
        return (in + out) * rc->unit_cost / 1e6; /* a bare unit cost: per 1M tokens */
    }
    if (rc->cost_source == COST_MANUAL) return (in + out) * rc->unit_cost / 1e6;
    return -1;
}

unsigned routing_retry_after_ms(struct slice v, int64_t now_wall_ms)
{
    v = slice_trim(v);
    if (!v.p || v.n == 0 || v.n > 64) return 0;
    unsigned long long secs;
    if (slice_to_u64(v, &secs))
        return secs > 86400ull * 30 ? 86400u * 30u * 1000u : (unsigned)secs * 1000u;
    char buf[65];
    memcpy(buf, v.p, v.n);
    buf[v.n] = 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return 0;
    int64_t at_ms = (int64_t)timegm(&tm) * 1000;
    if (at_ms <= now_wall_ms) return 0;
    int64_t d = at_ms - now_wall_ms;
    return d > 86400ll * 30 * 1000 ? 86400u * 30u * 1000u : (unsigned)d;
}

/* ---------- sessions ---------- */

static uint64_t key_of(uint8_t source, struct slice s)
{
    if (!s.p || s.n == 0) return 0;
    uint64_t h = str_hash(s.p, s.n) ^ ((uint64_t)source << 56);
    return mix64(h) | 1;
}

/* The session id inside Claude Code's metadata.user_id: a JSON string holding
 * {"session_id": …}, or the older "user_<hash>_account_<uuid>_session_<uuid>" form. */
static struct slice claude_session(pool_t *pool, struct slice user_id)
{
    if (user_id.n > 1 && user_id.p[0] == '{') {
        struct json_scan inner;
        if (json_scan(pool, user_id.p, user_id.n, &inner) == 0 &&
            inner.root_type == JSON_T_OBJECT) {
            const struct json_member *sid = json_scan_get(&inner, "session_id");
            struct slice v;
            if (sid && sid->type == JSON_T_STRING && json_member_string(pool, sid, &v) && v.n)
                return v;
        }
        return user_id;
    }
    for (size_t i = 0; i + 9 <= user_id.n; i++)
        if (memcmp(user_id.p + i, "_session_", 9) == 0 && i + 9 < user_id.n)
            return (struct slice){user_id.p + i + 9, user_id.n - i - 9};
    return user_id;
}

static struct slice string_member(pool_t *pool, const struct json_scan *scan, const char *key)
{
    struct slice v = SLICE_NULL;
    const struct json_member *m = scan ? json_scan_get(scan, key) : NULL;
    if (m && m->type == JSON_T_STRING && json_member_string(pool, m, &v)) return v;
    return SLICE_NULL;
}

uint64_t routing_session_key(pool_t *pool, const struct json_scan *scan, struct slice h_claude,
                             struct slice h_session_id, struct slice h_thread_id)
{
    if (h_claude.p && h_claude.n) return key_of(1, h_claude);
    if (scan && pool) {
        const struct json_member *md = json_scan_get(scan, "metadata");
        if (md && md->type == JSON_T_OBJECT) {
            struct json_scan inner;
            if (json_scan_object(pool, md->value, &inner) == 0) {
                struct slice uid = string_member(pool, &inner, "user_id");
                if (uid.n) return key_of(2, claude_session(pool, uid));
            }
        }
    }
    if (h_session_id.p && h_session_id.n) return key_of(3, h_session_id);
    if (h_thread_id.p && h_thread_id.n) return key_of(4, h_thread_id);
    if (scan && pool) {
        struct slice v = string_member(pool, scan, "prompt_cache_key");
        if (v.n) return key_of(5, v);
        v = string_member(pool, scan, "user");
        if (v.n) return key_of(6, v);
    }
    return 0;
}

int routing_splice_model(pool_t *pool, struct slice body, struct slice upstream_model,
                         struct slice *out)
{
    *out = body;
    struct json_scan scan;
    if (json_scan(pool, body.p, body.n, &scan) != 0 || scan.root_type != JSON_T_OBJECT) return -1;
    const struct json_member *m = json_scan_get(&scan, "model");
    struct slice cur;
    if (m && m->type == JSON_T_STRING && json_member_string(pool, m, &cur) &&
        slice_eq(cur, upstream_model))
        return 0;
    struct buf lit = BUF_INIT;
    int rc = -1;
    if (json_write_string(&lit, upstream_model.p, upstream_model.n) && buf_nul(&lit))
        rc = json_splice(pool, body.p, body.n, &scan, "model", lit.p, out);
    buf_free(&lit);
    if (rc != 0) *out = body;
    return rc;
}

/* ---------- explanation ---------- */

static void add_reason(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_reason(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 3 >= cap) return;
    if (n) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static const char *cost_source_name(uint8_t s)
{
    return s == COST_PRICE ? "model price" : s == COST_MANUAL ? "manual unit cost" : "fallback";
}

size_t routing_explain(const struct routing_snapshot *s, struct slice model, uint64_t now_ns,
                       struct route_match *m, struct routing_explain_entry **out)
{
    *out = NULL;
    routing_resolve(s, model, m);
    if (!m->route) return 0;
    const struct route *r = m->route;
    size_t cap = r->n_channels < ROUTING_MAX_EVAL ? r->n_channels : ROUTING_MAX_EVAL;
    struct routing_eval *ev = calloc(cap ? cap : 1, sizeof *ev);
    struct routing_explain_entry *x = calloc(cap ? cap : 1, sizeof *x);
    if (!ev || !x) {
        free(ev);
        free(x);
        return 0;
    }
    size_t n = routing_evaluate(s, r, now_ns, ev, cap);
    uint16_t order[ROUTING_MAX_EVAL];
    bool last[ROUTING_MAX_EVAL];
    size_t k = order_all(r, ev, n, -1, order, last, ROUTING_MAX_EVAL, true);

    /* probabilities of being tried first: the first layer that has usable channels */
    int first_priority = 0;
    bool have_first = false;
    double total = 0;
    size_t layer_n = 0;
    for (size_t i = 0; i < n; i++) {
        if (!usable(&ev[i])) continue;
        if (!have_first) first_priority = ev[i].rc->priority, have_first = true;
        if (ev[i].rc->priority != first_priority) break;
        total += ev[i].score;
        layer_n++;
    }
    for (size_t i = 0; i < n; i++) {
        struct routing_explain_entry *e = &x[i];
        e->ev = ev[i];
        const struct route_channel *rc = ev[i].rc;
        const struct channel *c = &s->channels[rc->channel];
        for (size_t j = 0; j < k; j++)
            if (order[j] == i) e->order = (int)j + 1;
        bool in_first = have_first && usable(&ev[i]) && rc->priority == first_priority;
        if (in_first) {
            if (r->strategy == ROUTE_ROUND_ROBIN)
                e->probability = 1.0 / (double)layer_n;
            else if (r->strategy == ROUTE_STABLE_FIRST)
                e->probability = layer_n == 1 ? 1.0
                                 : e->order == 1
                                     ? 1.0 - 1.0 / params.observe_every
                                     : 1.0 / params.observe_every / (double)(layer_n - 1);
            else
                e->probability = total > 0 ? ev[i].score / total : 0;
        } else if (!have_first && e->order == 1) {
            e->probability = 1.0;
        }
        char *b = e->reasons;
        size_t bc = sizeof e->reasons;
        switch (ev[i].excluded) {
        case RX_DISABLED:
            add_reason(b, bc, "excluded: channel disabled");
            break;
        case RX_ZERO_WEIGHT:
            add_reason(b, bc, "excluded: weight 0");
            break;
        case RX_COOLING: {
            double left = (double)(ev[i].ready_ns - now_ns) / 1e9;
            add_reason(b, bc, "%s: %s cooling down for %.0f s after %s%s",
                       e->order ? "last resort" : "excluded",
                       health_scope_name(ev[i].cooling_scope), left < 1 ? 1 : left,
                       health_failure_name(ev[i].cooling_kind),
                       ev[i].hard ? " (provider asked to wait)" : "");
            break;
        }
        case RX_TRIAL_BUSY:
            add_reason(b, bc, "excluded: half-open, its one trial request is in flight");
            break;
        default:
            break;
        }
        add_reason(b, bc, "priority %d%s", rc->priority,
                   in_first         ? " (first layer)"
                   : usable(&ev[i]) ? " (fallback layer)"
                                    : "");
        if (!usable(&ev[i])) continue;
        add_reason(b, bc, "weight %u", rc->weight);
        if (c->site_weight != 1.0) add_reason(b, bc, "site weight %.2f", c->site_weight);
        add_reason(b, bc, "unit cost %.6g (%s)%s", rc->unit_cost, cost_source_name(rc->cost_source),
                   ev[i].f_cost < 0.999 ? "" : "");
        if (ev[i].f_cost < 0.999)
            add_reason(b, bc, "demoted: costlier than the cheapest in its layer (x%.2f)",
                       ev[i].f_cost);
        else if (layer_n > 1 && in_first)
            add_reason(b, bc, "preferred: cheapest in its layer");
        if (ev[i].f_balance < 0.999)
            add_reason(b, bc, "demoted: balance %.2f below %.2f (x%.2f)", c->balance,
                       params.balance_low, ev[i].f_balance);
        if (ev[i].f_usage < 0.999)
            add_reason(b, bc, "demoted: %u requests in the last minute, above its share (x%.2f)",
                       ev[i].recent, ev[i].f_usage);
        if (ev[i].half_open)
            add_reason(b, bc, "half-open: the next request is its trial (x%.2f)", ev[i].f_health);
        else if (ev[i].state == HEALTH_DEGRADED)
            add_reason(b, bc, "demoted: degraded (x%.2f)", ev[i].f_health);
        if (r->strategy == ROUTE_STABLE_FIRST)
            add_reason(b, bc, "success rate %.0f%%", ev[i].success_rate * 100);
    }
    free(ev);
    *out = x;
    return n;
}
