/* snapshot.h — the immutable routing snapshot and its publication to io workers.
 *
 * A snapshot maps a client model name to the channels that can serve it. The control
 * side builds one from the store (control/snapshot_builder), then publishes it: the
 * snapshot starts with refs = number of workers, is placed in each worker's mailbox
 * (atomic exchange), and each worker swaps it in on its own thread and releases the old
 * one (DESIGN.md §3 "Publication"). A request takes an extra reference from its own
 * worker's current pointer, so the object is alive when the reference is taken. The last
 * release does not free: it pushes the snapshot onto a retire list that the control
 * thread frees (large frees stay off the io threads).
 *
 * This is the minimal routing of the core gateway: one exact route per discovered model;
 * the full routing engine replaces routing_order_candidates and extends the snapshot. */
#ifndef METARELAY_ROUTING_SNAPSHOT_H
#define METARELAY_ROUTING_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "routing/health.h"

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
    char *base_url;            /* without trailing slash */
    char *proxy_url;           /* NULL when none */
    char *api_key;             /* plaintext, never logged */
    struct route_header *headers; /* site custom headers */
    size_t n_headers;
    unsigned formats;             /* API_FORMAT_BITs the relay speaks (protocol/ir.h) */
    char *format_paths[3];        /* request path per format: chat, messages, responses */
    struct channel_health *health; /* runtime state; outlives snapshots */
};

/* One model name and the channels that have it. */
struct route {
    char *model;
    uint32_t *channels; /* indexes into snapshot.channels */
    size_t n_channels;
    atomic_uint cursor; /* round-robin start among equals */
};

struct routing_snapshot {
    atomic_int refs;
    uint64_t version;
    struct channel *channels;
    size_t n_channels;
    struct route *routes; /* sorted by model name (bsearch) */
    size_t n_routes;
    struct routing_snapshot *retired_next;
};

/* Input of the builder: one credential and its models (borrowed; copied by the build). */
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
};

/* Builds a snapshot (refs = 0; owned by the caller until published). NULL when out of
 * memory. Invalid custom headers are skipped (and logged). */
struct routing_snapshot *snapshot_build(const struct snapshot_input *in, size_t n, uint64_t version);
/* Frees a snapshot that is no longer referenced (control thread). */
void snapshot_free(struct routing_snapshot *s);

/* The route of a model, or NULL. */
const struct route *snapshot_find(const struct routing_snapshot *s, struct slice model);

/* Takes / releases a reference. The last release retires the snapshot. */
void snapshot_ref(struct routing_snapshot *s);
void snapshot_release(struct routing_snapshot *s);
/* Frees every retired snapshot (control thread). Returns how many were freed. */
size_t snapshot_free_retired(void);

/* Orders up to `max` candidate channel indexes for one request: channels not cooling down
 * first, rotated round-robin, then cooling ones by soonest end of cooldown. Returns the
 * count written to `out`. */
size_t routing_order_candidates(const struct routing_snapshot *s, const struct route *r,
                                uint32_t *out, size_t max);

#endif
