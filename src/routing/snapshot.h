/* snapshot.h — the immutable routing snapshot and its publication to io workers.
 *
 * A snapshot holds the channels (one per usable credential) and the routes: one automatic
 * exact route per discovered model, plus the user's routes (exact names, globs, `re:`
 * patterns, display aliases, explicit groups) with their channels, priorities, weights,
 * model mappings and strategy. The control side builds one from the store
 * (control/snapshot_builder), then publishes it: gateway_publish adds one reference per
 * worker and places it in each worker's mailbox; each worker swaps it in on its own thread
 * and releases the old one (DESIGN.md §3 "Publication"). A request takes an extra
 * reference from its own worker's current pointer. The last release does not free: it
 * pushes the snapshot onto a retire list that the control thread frees.
 *
 * The only mutable fields of a published snapshot are per-route atomics (round-robin
 * cursor, observation counter, regex error counter); health lives outside it
 * (routing/health.h) and survives snapshots.
 *
 * Resolution order of a model name (routing_resolve):
 *   1. a user exact name: an exact user route, a display alias, an explicit group;
 *   2. the automatic exact route of a discovered model;
 *   3. glob and `re:` routes by specificity (most literal bytes first; at equal
 *      specificity globs before regexes, then the lower route id).
 * Results of step 3 are memoized per thread (= per io worker) and per snapshot. */
#ifndef METARELAY_ROUTING_SNAPSHOT_H
#define METARELAY_ROUTING_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "routing/health.h"
#include "routing/pattern.h"

struct route_header {
    char *name;
    char *value;
};

/* One upstream credential usable by the data plane. */
struct channel {
    int64_t account_id;
    int64_t site_id;
    char *site_name;
    char *platform;
    char *base_url;               /* without trailing slash */
    char *proxy_url;              /* NULL when none */
    char *api_key;                /* plaintext, never logged */
    struct route_header *headers; /* site custom headers */
    size_t n_headers;
    unsigned formats;              /* API_FORMAT_BITs the relay speaks (protocol/ir.h) */
    char *format_paths[3];         /* request path per format: chat, messages, responses */
    double unit_cost;              /* manual unit cost of the account; 0 = not set */
    double balance;                /* remaining balance; ≤ 0 = unknown */
    double site_weight;            /* the site's global weight (default 1) */
    struct channel_health *health; /* the credential's health record; outlives snapshots */
};

enum route_kind {
    ROUTE_AUTO = 0,  /* one per discovered model */
    ROUTE_EXACT = 1, /* user route with an exact name */
    ROUTE_GLOB = 2,
    ROUTE_REGEX = 3,
    ROUTE_GROUP = 4, /* explicit group: one name over several routes */
};

enum route_strategy { ROUTE_WEIGHTED = 0, ROUTE_ROUND_ROBIN = 1, ROUTE_STABLE_FIRST = 2 };

enum cost_source { COST_PRICE = 0, COST_MANUAL = 1, COST_FALLBACK = 2 };

/* One way a route can be served: a credential, the upstream model name and its settings. */
struct route_channel {
    int64_t id;       /* route_channels row; 0 = automatic */
    uint32_t channel; /* index into snapshot.channels */
    int32_t priority; /* lower first */
    uint32_t weight;  /* channel weight (default 10) */
    bool enabled;
    uint8_t cost_source; /* enum cost_source */
    double unit_cost;    /* resolved: price, else manual, else the fallback */
    /* The model price behind a COST_PRICE unit cost (money per 1M input / output tokens,
     * or per call); < 0 = unknown. Used for the usage record's estimated cost. */
    double price_input, price_output, price_per_call;
    char *upstream_model;          /* NULL = the route's model (exact) or the mapped request name */
    struct channel_health *health; /* (account, upstream model); outlives snapshots */
};

struct route_map_entry {
    struct pattern from; /* downstream name (exact or glob) */
    char *to;            /* upstream name */
};

struct route {
    int64_t id;       /* routes row; 0 = automatic */
    uint8_t kind;     /* enum route_kind */
    uint8_t strategy; /* enum route_strategy */
    bool enabled;
    char *model;        /* exact name, glob text, "re:…" text, or the group's name */
    char *display_name; /* alias, or NULL */
    struct pattern pat; /* glob / regex */
    char *error;        /* why the route cannot match (bad pattern), or NULL */
    struct route_channel *channels;
    size_t n_channels;
    struct route_map_entry *map;
    size_t n_map;
    atomic_uint cursor;       /* round-robin start */
    atomic_uint requests;     /* selections (stable_first observation traffic) */
    atomic_uint match_errors; /* regex limit hits */
};

/* One exact name the resolver knows. */
struct route_name {
    const char *name; /* borrowed from the route */
    uint32_t route;
    uint8_t level; /* 0 user exact / alias / group, 1 automatic */
    bool alias;    /* reached through a display name or group name */
};

struct routing_snapshot {
    atomic_int refs;
    uint64_t version;
    uint64_t uid; /* unique per build in this process (memo key) */
    struct channel *channels;
    size_t n_channels;
    struct route *routes; /* every route (automatic and user), in build order */
    size_t n_routes;
    struct route_name *names; /* sorted by name, then level: exact lookup */
    size_t n_names;
    uint32_t *patterns; /* glob/regex routes by specificity */
    size_t n_patterns;
    const char **model_list; /* what /v1/models lists: unique names, sorted */
    size_t n_model_list;
    double fallback_unit_cost;
    struct routing_snapshot *retired_next;
};

/* ---- builder input (borrowed; copied by the build) ---- */

/* One credential and its discovered models. */
struct snapshot_input {
    int64_t account_id;
    int64_t site_id;
    const char *site_name;
    const char *platform;
    const char *base_url;
    const char *proxy_url;
    const char *custom_headers_json; /* JSON object of string values, or NULL */
    unsigned formats;                /* API_FORMAT_BITs; 0 = chat */
    const char *format_paths[3];     /* chat, messages, responses; NULL = the /v1 default */
    const char *api_key;
    const char *const *models;
    size_t n_models;
    double unit_cost;   /* manual unit cost; 0 = not set */
    double balance;     /* ≤ 0 = unknown */
    double site_weight; /* 0 = 1 */
};

struct snapshot_route_channel_input {
    int64_t id;
    int64_t account_id;
    const char *source_model; /* upstream model name; NULL/"" = see route_channel */
    int priority;
    unsigned weight;
    bool enabled;
};

struct snapshot_route_input {
    int64_t id;
    const char *pattern;      /* exact, glob or "re:…"; for a group, its name */
    const char *display_name; /* NULL = none */
    bool group;               /* explicit group over source_ids */
    const char *strategy;     /* "weighted" (default), "round_robin", "stable_first" */
    bool enabled;
    const char *model_mapping_json; /* {"downstream or glob": "upstream"}, or NULL */
    const int64_t *source_ids;
    size_t n_sources;
    const struct snapshot_route_channel_input *channels;
    size_t n_channels;
};

/* A model price turned into a unit cost (e.g. the cost of a reference request). A price
 * of an account wins over one of its site, which wins over one for any site. */
struct snapshot_price {
    int64_t site_id; /* 0 = any site */
    const char *model;
    double unit_cost;
    int64_t account_id;                           /* 0 = every account of the site */
    double input_per_million, output_per_million; /* < 0 unknown (0 when unset: unknown) */
    double per_call;                              /* > 0: priced per call */
};

struct snapshot_extra {
    const struct snapshot_route_input *routes;
    size_t n_routes;
    const struct snapshot_price *prices;
    size_t n_prices;
    double fallback_unit_cost; /* ROUTING_FALLBACK_UNIT_COST; 0 = 1 */
};

/* Builds a snapshot (refs = 0; owned by the caller until published). NULL when out of
 * memory. Invalid custom headers are skipped (and logged); a user route with an invalid
 * pattern is kept with its `error` set (it never matches; the admin API shows why). */
struct routing_snapshot *snapshot_build_ex(const struct snapshot_input *in, size_t n,
                                           const struct snapshot_extra *extra, uint64_t version);
/* Automatic routes only. */
struct routing_snapshot *snapshot_build(const struct snapshot_input *in, size_t n,
                                        uint64_t version);
/* Frees a snapshot that is no longer referenced (control thread). */
void snapshot_free(struct routing_snapshot *s);

/* The automatic or exact-name route of a model, or NULL (no patterns). */
const struct route *snapshot_find(const struct routing_snapshot *s, struct slice model);
/* A route by its row id, or NULL. */
const struct route *snapshot_route_by_id(const struct routing_snapshot *s, int64_t id);

/* Takes / releases a reference. The last release retires the snapshot. */
void snapshot_ref(struct routing_snapshot *s);
void snapshot_release(struct routing_snapshot *s);
/* Frees every retired snapshot (control thread). Returns how many were freed. */
size_t snapshot_free_retired(void);

/* The latest published snapshot, for readers off the io threads (admin). The control side
 * calls snapshot_set_latest before publishing (takes a reference); readers acquire a
 * reference (NULL when none) and release it with snapshot_release. */
void snapshot_set_latest(struct routing_snapshot *s);
struct routing_snapshot *snapshot_acquire_latest(void);

/* ---- resolution ---- */

enum route_via {
    ROUTE_VIA_NONE = 0,
    ROUTE_VIA_USER_EXACT, /* a user exact route */
    ROUTE_VIA_ALIAS,      /* a display alias or group name */
    ROUTE_VIA_AUTO,       /* the automatic route of a discovered model */
    ROUTE_VIA_PATTERN,    /* a glob or regex */
};

struct route_match {
    const struct route *route; /* NULL = no route */
    uint8_t via;               /* enum route_via */
    /* A regex that failed (limit hit) while resolving: the name was not silently a
     * no-match; the gateway can name it, the decision API shows it. */
    const struct route *error_route;
    int error; /* enum pattern_result (< 0) of error_route */
};

/* Resolves a model name. Returns 0 (m->route may be NULL). Lock-free; memoized. */
int routing_resolve(const struct routing_snapshot *s, struct slice model, struct route_match *m);

/* The upstream model name a channel of a match is asked for (borrowed from the snapshot
 * or from `requested`). */
struct slice routing_upstream_model(const struct route_match *m, const struct route_channel *rc,
                                    struct slice requested);

/* Names listed by /v1/models (user exact names, aliases, groups and automatic routes; no
 * patterns), each once, sorted. */
size_t routing_model_count(const struct routing_snapshot *s);
const char *routing_model_name(const struct routing_snapshot *s, size_t i);

const char *route_kind_name(enum route_kind k);
const char *route_strategy_name(enum route_strategy s);
/* -1 when unknown. */
int route_strategy_parse(const char *s);

#endif
