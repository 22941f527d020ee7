/* routes.h — the routing tables: user routes (exact names, globs, re: patterns, display
 * aliases, explicit groups), their channels, and the runtime health saved across restarts
 * (migration 020_routes.sql). Automatic routes are not stored: the snapshot builder derives
 * them from discovered models. Configuration writes commit before returning. */
#ifndef METARELAY_STORE_ROUTES_H
#define METARELAY_STORE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct route_channel_row {
    int64_t id;
    int64_t route_id;
    int64_t account_id;
    int64_t token_id;   /* 0 = none */
    char *source_model; /* upstream model name; NULL = the route's */
    int priority;
    unsigned weight;
    bool enabled;
    char *created_at;
    char *updated_at;
};

struct route_row {
    int64_t id;
    char *model_pattern;
    char *display_name;     /* NULL when none */
    char *route_mode;       /* "pattern" | "explicit_group" */
    char *model_mapping;    /* JSON object text or NULL */
    char *routing_strategy; /* "weighted" | "round_robin" | "stable_first" */
    bool enabled;
    int64_t *source_ids; /* explicit groups */
    size_t n_sources;
    struct route_channel_row *channels;
    size_t n_channels;
    char *created_at;
    char *updated_at;
};

/* Values to write. Create: model_pattern required; NULLs take the defaults. Update: a
 * NULL / unset field keeps the stored value. */
struct route_fields {
    const char *model_pattern;
    const char *display_name;
    bool set_display_name; /* update: write display_name (NULL clears it) */
    const char *route_mode;
    const char *model_mapping;
    bool set_model_mapping;
    const char *routing_strategy;
    int enabled; /* -1 keep / default */
    const int64_t *source_ids;
    size_t n_sources;
    bool set_sources;
};

struct route_channel_fields {
    int64_t account_id; /* create: required; update: 0 keeps */
    int64_t token_id;
    bool set_token;
    const char *source_model;
    bool set_source_model;
    int priority;
    bool set_priority;
    unsigned weight;
    bool set_weight;
    int enabled; /* -1 keep / default */
};

void route_row_clear(struct route_row *r);
void route_rows_free(struct route_row *rows, size_t n);
void route_channel_row_clear(struct route_channel_row *c);
void route_channel_rows_free(struct route_channel_row *rows, size_t n);

/* Every route with its channels and sources, by id. *out malloc'ed (route_rows_free). */
enum store_status routes_list(db_t *db, struct route_row **out, size_t *n);
enum store_status routes_get(db_t *db, int64_t id, struct route_row *out);
/* STORE_INVALID: a value out of domain or a source route that does not exist. */
enum store_status routes_create(db_t *db, const struct route_fields *f, int64_t *id);
enum store_status routes_update(db_t *db, int64_t id, const struct route_fields *f);
/* Deletes the route, its channels and its group memberships. */
enum store_status routes_delete(db_t *db, int64_t id);

/* Channels of a route (STORE_NOT_FOUND when the route does not exist). */
enum store_status route_channels_list(db_t *db, int64_t route_id, struct route_channel_row **out,
                                      size_t *n);
enum store_status route_channel_get(db_t *db, int64_t id, struct route_channel_row *out);
/* STORE_NOT_FOUND: no such route; STORE_INVALID: no such account or a bad value. */
enum store_status route_channel_create(db_t *db, int64_t route_id,
                                       const struct route_channel_fields *f, int64_t *id);
enum store_status route_channel_update(db_t *db, int64_t id, const struct route_channel_fields *f);
enum store_status route_channel_delete(db_t *db, int64_t id);

/* ---- runtime health (routing/health.h converts) ---- */

struct health_row {
    int scope;
    int64_t ref_id;
    char *model; /* "" for site and credential scopes */
    int64_t site_id;
    unsigned streak;
    int64_t cooldown_until_ms;
    unsigned cooldown_kind;
    bool cooldown_hard;
    int64_t last_failure_ms;
    unsigned latency_ms;
    int64_t successes;
    int64_t failures;
};

/* Replaces the saved health with `rows` (one transaction). */
enum store_status routing_health_save(db_t *db, const struct health_row *rows, size_t n,
                                      int64_t now_ms);
/* Every saved row. *out malloc'ed (health_rows_free). */
enum store_status routing_health_load(db_t *db, struct health_row **out, size_t *n);
void health_rows_free(struct health_row *rows, size_t n);

#endif
