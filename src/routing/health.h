/* health.h — minimal per-channel runtime health (core gateway): consecutive failures and
 * a cooldown that backs off with the recent failure streak. One record per account,
 * allocated once and never freed, so its address survives snapshots (DESIGN.md §3);
 * fields are atomics, updated from any io thread without locks. The full health state
 * machine (issue "routing engine") replaces the policy, not the registry. */
#ifndef METARELAY_ROUTING_HEALTH_H
#define METARELAY_ROUTING_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct channel_health {
    int64_t account_id;
    _Alignas(64) atomic_uint_fast64_t cooldown_until_ns; /* monotonic; 0 = none */
    atomic_uint consecutive_failures;
    atomic_uint_fast64_t successes;
    atomic_uint_fast64_t failures;
};

/* The record of an account, created on first use (thread-safe). NULL when out of memory. */
struct channel_health *health_for_account(int64_t account_id);

/* Outcome of an attempt. A failure starts a cooldown of base·2^(streak-1), capped. */
void health_record_success(struct channel_health *h);
void health_record_failure(struct channel_health *h, uint64_t now_ns);
bool health_is_cooling(const struct channel_health *h, uint64_t now_ns);

/* Cooldown policy (set once at start): base and cap in milliseconds. */
void health_set_policy(unsigned base_ms, unsigned max_ms);

/* Frees every record (process exit only, after all threads stopped). */
void health_registry_free(void);

#endif
