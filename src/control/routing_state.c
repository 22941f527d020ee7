/* routing_state.c — routing configuration from the environment and health persistence
 * (see routing_state.h). */
#include "control/routing_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "routing/health.h"
#include "routing/select.h"
#include "routing/sticky.h"
#include "store/routes.h"

static double fallback_unit_cost = 1.0;
static unsigned health_save_ms = 30000;

static int env_num(const char *name, double def, double min, double max, double *out)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || x < min || x > max) {
        fprintf(stderr, "metarelay: %s=%s is not a number between %g and %g\n", name, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int routing_config_from_env(void)
{
    struct health_policy hp;
    health_policy_defaults(&hp);
    struct routing_params rp;
    routing_params_defaults(&rp);
    double base, max, quota, auth, cost, expo, bal, usage, obs, sticky_on, sticky_ttl, sticky_max,
        save;
    if (env_num("TOKEN_ROUTER_FAILURE_COOLDOWN_BASE_SEC", hp.cooldown_base_ms / 1000.0, 0.001,
                86400, &base) ||
        env_num("TOKEN_ROUTER_FAILURE_COOLDOWN_MAX_SEC", hp.cooldown_max_ms / 1000.0, 0.001,
                30 * 86400.0, &max) ||
        env_num("ROUTING_QUOTA_COOLDOWN_SEC", hp.quota_cooldown_ms / 1000.0, 1, 30 * 86400.0,
                &quota) ||
        env_num("ROUTING_AUTH_COOLDOWN_SEC", hp.auth_cooldown_ms / 1000.0, 1, 30 * 86400.0,
                &auth) ||
        env_num("ROUTING_FALLBACK_UNIT_COST", 1.0, 1e-9, 1e12, &cost) ||
        env_num("ROUTING_COST_EXPONENT", rp.cost_exponent, 0, 10, &expo) ||
        env_num("ROUTING_BALANCE_LOW", rp.balance_low, 0, 1e12, &bal) ||
        env_num("ROUTING_USAGE_EXPONENT", rp.usage_exponent, 0, 4, &usage) ||
        env_num("ROUTING_OBSERVE_EVERY", rp.observe_every, 2, 1000000, &obs) ||
        env_num("PROXY_STICKY_SESSION_ENABLED", 1, 0, 1, &sticky_on) ||
        env_num("PROXY_STICKY_SESSION_TTL_MS", STICKY_DEFAULT_TTL_MS, 30000, 7 * 86400000.0,
                &sticky_ttl) ||
        env_num("PROXY_STICKY_SESSION_MAX", STICKY_DEFAULT_CAPACITY, 0, 16777216, &sticky_max) ||
        env_num("ROUTING_HEALTH_SAVE_SEC", 30, 1, 86400, &save))
        return -1;
    hp.cooldown_base_ms = (unsigned)(base * 1000 + 0.5);
    hp.cooldown_max_ms = (unsigned)(max * 1000 + 0.5);
    hp.quota_cooldown_ms = (unsigned)(quota * 1000 + 0.5);
    hp.auth_cooldown_ms = (unsigned)(auth * 1000 + 0.5);
    if (hp.retry_after_max_ms < hp.cooldown_max_ms) hp.retry_after_max_ms = hp.cooldown_max_ms;
    health_set_policy_full(&hp);
    rp.cost_exponent = expo;
    rp.balance_low = bal;
    rp.usage_exponent = usage;
    rp.observe_every = (unsigned)obs;
    routing_set_params(&rp);
    fallback_unit_cost = cost;
    health_save_ms = (unsigned)(save * 1000);
    if (sticky_on > 0 && sticky_max > 0 &&
        sticky_init((size_t)sticky_max, (unsigned)sticky_ttl) != 0) {
        fprintf(stderr, "metarelay: out of memory for the sticky-session table\n");
        return -1;
    }
    return 0;
}

double routing_fallback_unit_cost(void)
{
    return fallback_unit_cost;
}

unsigned routing_health_save_interval_ms(void)
{
    return health_save_ms;
}

int routing_health_restore(db_t *db)
{
    struct health_row *rows = NULL;
    size_t n = 0;
    if (routing_health_load(db, &rows, &n) != STORE_OK) {
        log_warn("routing: saved health could not be read; starting without it");
        return -1;
    }
    struct health_saved *hs = calloc(n ? n : 1, sizeof *hs);
    if (!hs) {
        health_rows_free(rows, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        hs[i] = (struct health_saved){
            .scope = (uint8_t)rows[i].scope,
            .id = rows[i].ref_id,
            .site_id = rows[i].site_id,
            .model = rows[i].scope == HEALTH_SCOPE_CHANNEL ? rows[i].model : NULL,
            .streak = rows[i].streak,
            .cooldown_until_wall_ms = rows[i].cooldown_until_ms,
            .cooldown_kind = rows[i].cooldown_kind < HEALTH_FAIL_KINDS ? rows[i].cooldown_kind : 0,
            .cooldown_hard = rows[i].cooldown_hard,
            .last_failure_wall_ms = rows[i].last_failure_ms,
            .latency_ms = rows[i].latency_ms,
            .successes = rows[i].successes > 0 ? (uint64_t)rows[i].successes : 0,
            .failures = rows[i].failures > 0 ? (uint64_t)rows[i].failures : 0,
        };
    size_t done = health_import(hs, n, clock_mono_ns(), clock_wall_ms());
    free(hs);
    health_rows_free(rows, n);
    if (done) log_info("routing: restored the health of %zu sites, credentials and channels", done);
    return (int)done;
}

int routing_health_persist(db_t *db)
{
    struct health_saved *hs = NULL;
    size_t n = 0;
    int64_t wall = clock_wall_ms();
    if (health_export(clock_mono_ns(), wall, &hs, &n) != 0) return -1;
    struct health_row *rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        free(hs);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = (struct health_row){
            .scope = hs[i].scope,
            .ref_id = hs[i].id,
            .model = (char *)(hs[i].model ? hs[i].model : ""), /* borrowed: not freed below */
            .site_id = hs[i].site_id,
            .streak = hs[i].streak,
            .cooldown_until_ms = hs[i].cooldown_until_wall_ms,
            .cooldown_kind = hs[i].cooldown_kind,
            .cooldown_hard = hs[i].cooldown_hard,
            .last_failure_ms = hs[i].last_failure_wall_ms,
            .latency_ms = hs[i].latency_ms,
            .successes = (int64_t)hs[i].successes,
            .failures = (int64_t)hs[i].failures,
        };
    enum store_status st = routing_health_save(db, rows, n, wall);
    free(rows);
    free(hs);
    if (st != STORE_OK) {
        log_warn("routing: saving health failed (%s)", store_status_str(st));
        return -1;
    }
    return 0;
}

void routing_state_shutdown(void)
{
    sticky_shutdown();
    routing_thread_cleanup();
    health_registry_free();
}
