/* prices.h — model prices per account or token (model_prices), the models each account
 * token can use (token_models), and job leases (job_leases: one holder per scheduled job
 * across nodes sharing a database). */
#ifndef METARELAY_STORE_PRICES_H
#define METARELAY_STORE_PRICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct model_price {
    char *model;
    double input_per_million; /* money unit; < 0 unknown */
    double output_per_million;
    double per_call; /* < 0 when token-priced */
    char *group;
    int64_t token_id; /* 0 = the account's */
    int64_t account_id;
};
void model_prices_free(struct model_price *p, size_t n);

/* Replaces the prices of (account, token_id; 0 = account-level) in one transaction. */
enum store_status model_prices_replace(db_t *db, int64_t account_id, int64_t token_id,
                                       const struct model_price *p, size_t n);
/* Every price of an account (account and token level). */
enum store_status model_prices_list(db_t *db, int64_t account_id, struct model_price **out,
                                    size_t *n);

/* Every price of every account for the routing snapshot: one row per (account, model) —
 * the account-level price, else its first token's. Sorted by account, model. */
enum store_status model_prices_all(db_t *db, struct model_price **out, size_t *n);

/* Replaces the models of one account token. */
enum store_status token_models_replace(db_t *db, int64_t token_id, const char *const *names,
                                       size_t n);

/* Takes or renews the lease `name` for `holder` for ttl_ms when it is free, expired or
 * already held by `holder`. *got says whether the caller holds it now. */
enum store_status job_lease_acquire(db_t *db, const char *name, const char *holder, int64_t ttl_ms,
                                    bool *got);
/* Gives the lease up (only when held by `holder`). */
enum store_status job_lease_release(db_t *db, const char *name, const char *holder);

#endif
