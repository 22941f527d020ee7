/* select.h — the router's API for the data plane: resolve a model, order the channels to
 * try, take half-open trials, report outcomes, keep sessions sticky; and the same
 * evaluation explained for the admin decision API.
 *
 * Use from the gateway, per request (no lock except the sticky stripe, no allocation):
 *
 *     struct routing_request rq;
 *     routing_request_init(&rq, snap, model, session_key);   // resolves the route
 *     if (!rq.match.route) → 404 (rq.match.error_route names a failing regex, if any)
 *     routing_select(&rq, now, max);                        // rq.picks[0..n_picks)
 *     for each pick p you attempt:
 *         if (!routing_attempt_begin(&rq, p, now)) continue;   // trial slot taken by another
 *         send with p->upstream_model (routing_splice_model does the body edit)
 *         routing_report_success(&rq, p, now, first_byte_ms)
 *      or routing_report_failure(&rq, p, now, kind, retry_after_ms)
 *      or routing_attempt_abandon(&rq, p)                   // never sent / client gone
 *
 * Order produced by routing_select:
 *   1. the session's sticky channel, when it is still usable and not unhealthy;
 *   2. priority layers, lowest number first; inside a layer the route's strategy:
 *      weighted (random draws without replacement, probability ∝ score, formula in
 *      docs/routing.md), round_robin (rotating start), stable_first (success rate, with one
 *      request in ROUTING_OBSERVE_EVERY led by another channel to keep observing them);
 *   3. when nothing else is usable: channels cooling down after failures of their own
 *      (never those the provider asked to wait: quota, auth, Retry-After), soonest ready
 *      first, as "last resort", each gated by its single trial slot.
 * Excluded: disabled channels, weight 0, records cooling down, half-open records whose trial
 * is already in flight. */
#ifndef METARELAY_ROUTING_SELECT_H
#define METARELAY_ROUTING_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json_scan.h"
#include "base/pool.h"
#include "base/slice.h"
#include "routing/health.h"
#include "routing/snapshot.h"

#define ROUTING_MAX_PICKS 16
#define ROUTING_MAX_EVAL  256 /* channels of one route considered (the rest ignored) */

/* Weighted formula and strategy parameters (set once at start; defaults in select.c). */
struct routing_params {
    double cost_exponent;   /* ROUTING_COST_EXPONENT, 1: share ∝ (cheapest/cost)^e */
    double balance_low;     /* ROUTING_BALANCE_LOW, 5: below this balance the share shrinks */
    double balance_floor;   /* 0.2: the smallest balance factor */
    double usage_exponent;  /* ROUTING_USAGE_EXPONENT, 0.5: fair-share correction strength */
    double degraded_factor; /* 0.3: degraded or half-open channels */
    unsigned observe_every; /* ROUTING_OBSERVE_EVERY, 20: stable_first observation traffic */
};
void routing_params_defaults(struct routing_params *p);
void routing_set_params(const struct routing_params *p);
const struct routing_params *routing_get_params(void);

/* One channel to try. */
struct route_pick {
    uint32_t channel;               /* index into snap->channels */
    const struct route_channel *rc; /* its route channel */
    struct slice upstream_model;    /* the model name to send upstream */
    struct channel_health *health;  /* report outcomes on it */
    bool last_resort;               /* cooling, tried because nothing else is usable */
    uint8_t trials;                 /* trial slots taken by routing_attempt_begin (bits) */
};

struct routing_request {
    const struct routing_snapshot *snap;
    struct slice model; /* requested name (borrowed: must outlive the request struct) */
    struct route_match match;
    uint64_t session;   /* sticky key (0 = none); already bound to the route */
    const void *sticky; /* the channel the session was bound to, when it was used */
    struct route_pick picks[ROUTING_MAX_PICKS];
    size_t n_picks;
};

/* Resolves `model` and prepares the request. `session` is routing_session_key's value
 * (0 = none). */
void routing_request_init(struct routing_request *rq, const struct routing_snapshot *snap,
                          struct slice model, uint64_t session);
/* Fills rq->picks (at most `max`, ≤ ROUTING_MAX_PICKS). Returns n_picks. */
size_t routing_select(struct routing_request *rq, uint64_t now_ns, size_t max);
/* Before sending to a pick: takes its half-open or last-resort trial slot. false → skip
 * this pick (another request holds the trial). */
bool routing_attempt_begin(struct routing_request *rq, struct route_pick *p, uint64_t now_ns);
void routing_attempt_abandon(struct routing_request *rq, struct route_pick *p);
/* Outcomes: health of the pick's channel (and credential/site), sticky binding. */
void routing_report_success(struct routing_request *rq, const struct route_pick *p, uint64_t now_ns,
                            unsigned first_byte_ms);
void routing_report_failure(struct routing_request *rq, const struct route_pick *p, uint64_t now_ns,
                            enum health_failure kind, unsigned retry_after_ms);

/* The money one answer cost on a route channel: with a model price, input × prompt +
 * output × completion tokens per million, or the per-call price; with a manual unit cost
 * (money per 1M tokens), unit cost × total tokens / 1M; -1 when unknown (fallback cost,
 * or no token counts for a token price). */
double routing_estimated_cost(const struct route_channel *rc, int64_t prompt_tokens,
                              int64_t completion_tokens);

/* Parses a Retry-After header value (seconds or an HTTP date) into milliseconds; 0 when
 * absent or invalid. */
unsigned routing_retry_after_ms(struct slice value, int64_t now_wall_ms);

/* The session key of a request: x-claude-code-session-id header; metadata.user_id (the
 * session_id inside Claude Code's JSON string, or its "_session_" suffix, else the whole
 * id); session-id or thread-id header; prompt_cache_key (Codex); user (OpenAI). 0 when
 * none. `scan` is the body's top-level scan (may be NULL). */
uint64_t routing_session_key(pool_t *pool, const struct json_scan *scan, struct slice h_claude,
                             struct slice h_session_id, struct slice h_thread_id);

/* The body with its top-level "model" replaced by `upstream_model` (pool memory), or the
 * body itself when the names are equal. -1 when the body is not a JSON object. */
int routing_splice_model(pool_t *pool, struct slice body, struct slice upstream_model,
                         struct slice *out);

/* ---- evaluation, shared by selection and the decision API ---- */

enum routing_exclusion {
    RX_NONE = 0,
    RX_DISABLED, /* channel switched off */
    RX_ZERO_WEIGHT,
    RX_COOLING,    /* a record (cooling_scope) is cooling down */
    RX_TRIAL_BUSY, /* half-open, its one trial is in flight */
};

struct routing_eval {
    const struct route_channel *rc;
    uint8_t state;         /* enum health_state, worst of channel/credential/site */
    uint8_t excluded;      /* enum routing_exclusion */
    uint8_t cooling_scope; /* enum health_scope of the record that excludes it */
    uint8_t cooling_kind;  /* enum health_failure of that cooldown */
    bool hard;             /* provider-directed cooldown: no last resort */
    bool half_open;        /* a trial is due */
    uint64_t ready_ns;     /* end of the cooldown */
    unsigned recent;       /* requests in the last minute */
    double success_rate;
    double f_cost, f_balance, f_usage, f_health; /* weighted factors (1 = neutral) */
    double score;                                /* weight × site weight × factors */
};

/* Evaluates every channel of the matched route (≤ max). Returns the count. */
size_t routing_evaluate(const struct routing_snapshot *s, const struct route *r, uint64_t now_ns,
                        struct routing_eval *ev, size_t max);

/* The decision explained: one entry per channel of the route. */
struct routing_explain_entry {
    struct routing_eval ev;
    double probability; /* of being tried first */
    int order;          /* 1-based position in a typical selection; 0 = excluded */
    char reasons[512];  /* "; "-separated */
};
/* Fills `out` (malloc'ed array, caller frees) for a model. Returns the count, or 0 with
 * m->route == NULL when no route matches. */
size_t routing_explain(const struct routing_snapshot *s, struct slice model, uint64_t now_ns,
                       struct route_match *m, struct routing_explain_entry **out);

/* Frees the calling thread's routing caches (memo, regex match data). Tests only; io
 * threads free theirs when they exit. */
void routing_thread_cleanup(void);

#endif
