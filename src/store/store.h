/* store.h — the persistent store: opening, migrating, per-thread connections, and the
 * queries the rest of the process needs from it. SQLite (WAL) at $DATA_DIR/metarelay.db
 * is the embedded backend; the interface is backend-neutral so PostgreSQL can follow.
 *
 * Threads: `store_t` is shared (immutable after store_open, plus the usage queue);
 * each thread that talks to the database opens its own `db_t` with store_connect.
 * Configuration writes commit before they return (BEGIN IMMEDIATE + busy timeout).
 * Every upstream secret is encrypted at rest (see base/secrets.h); the functions here
 * take and return plaintext, and encrypt/decrypt inside. */
#ifndef METARELAY_STORE_STORE_H
#define METARELAY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;
typedef struct db db_t;

struct store_config {
    const char *data_dir;          /* directory of metarelay.db; created if missing */
    const char *credential_secret; /* ACCOUNT_CREDENTIAL_SECRET (default AUTH_TOKEN) */
    unsigned usage_retention_days; /* USAGE_RETENTION_DAYS, default 30; 0 = keep forever */
};

/* Opens (creating and migrating) the database, derives the secrets key, starts the
 * store-writer thread. Caller owns the result (store_close). NULL with *err set to a
 * malloc'ed message (caller frees) on failure. */
store_t *store_open(const struct store_config *cfg, char **err);
/* Flushes the usage queue, stops the writer thread, closes everything. */
void store_close(store_t *s);

/* A connection for the calling thread (caller owns; db_close). NULL on failure. */
db_t *store_connect(store_t *s);
void db_close(db_t *db);

/* ---- what the routing snapshot is built from ---- */

/* One usable upstream credential: a synced (or hand-added) API token of an enabled
 * account on an enabled site — one row per enabled token whose full key is known — or,
 * for an account without such tokens, the account's own API token; with the models
 * discovered for that token (else for the account). All strings owned by the row array
 * (channel_rows_free). */
struct channel_row {
    int64_t account_id;
    int64_t token_id; /* account_tokens.id; 0 = the account's own API token */
    int64_t site_id;
    char *site_name;
    char *platform;       /* "openai", "claude", "new-api", … */
    char *base_url;       /* site URL without trailing slash */
    char *proxy_url;      /* NULL when none */
    char *custom_headers; /* JSON object text or NULL */
    char *formats;        /* the site's relay formats ("chat,messages"), NULL = platform default */
    char *api_key;        /* plaintext, decrypted */
    char **models;        /* discovered model names */
    size_t n_models;
    double unit_cost;   /* accounts.unit_cost (manual); 0 = not set */
    double balance;     /* accounts.balance; ≤ 0 = unknown */
    double site_weight; /* sites.global_weight (default 1) */
};

/* Loads every usable channel. Returns 0 (rows owned by the caller: channel_rows_free)
 * or -1. */
int store_load_channels(db_t *db, struct channel_row **rows, size_t *n_rows);
void channel_rows_free(struct channel_row *rows, size_t n_rows);

/* `metarelay rotate-secret`: re-encrypts every stored secret under a key derived from
 * `new_secret` (with a fresh salt), in one transaction, after proving cfg's secret is the
 * current one. Run with the gateway stopped. 0 with *n_values = secrets re-encrypted, or
 * -1 with *err malloc'ed (nothing changed). */
int store_rotate_secret(const struct store_config *cfg, const char *new_secret, size_t *n_values,
                        char **err);

/* Deletes usage rows older than the retention; returns rows deleted or -1. */
long store_apply_retention(db_t *db, unsigned days);

#endif
