/* accounts.h — the accounts table: one upstream credential on a site. The API token is
 * sealed at rest (base/secrets.h, bound to the account's row id); these functions take
 * and return it in plaintext. Configuration writes commit before returning. */
#ifndef METARELAY_STORE_ACCOUNTS_H
#define METARELAY_STORE_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct account {
    int64_t id;
    int64_t site_id;
    char *site_name;
    char *username;  /* NULL when none */
    char *api_token; /* plaintext; NULL when none or when it cannot be opened */
    /* Non-empty when a stored token exists but cannot be opened (wrong key, tampering). */
    char api_token_error[128];
    char *status; /* "active" | "disabled" | "expired" */
    double balance;
    double balance_used;
    double quota;
    char *created_at; /* ISO-8601 UTC */
    char *updated_at;
};

/* Values to write. Create: site_id and api_token required, status NULL = "active".
 * Update: a NULL field (or set_username false) keeps the stored value; site_id is not
 * changed by an update. */
struct account_fields {
    int64_t site_id;
    const char *username;
    bool set_username; /* update: write username (NULL clears it) */
    const char *api_token;
    const char *status;
};

/* Frees the strings of one account (the token wiped first), not the struct. */
void account_clear(struct account *a);
void accounts_free(struct account *accounts, size_t n);

/* All accounts by id (site_id > 0: only that site's). *out malloc'ed (accounts_free). */
enum store_status accounts_list(db_t *db, int64_t site_id, struct account **out, size_t *n);
/* One account; the caller clears `out` (account_clear) on STORE_OK. */
enum store_status accounts_get(db_t *db, int64_t id, struct account *out);
/* STORE_INVALID when the site does not exist or a value is out of domain. */
enum store_status accounts_create(db_t *db, const struct account_fields *f, struct account *out);
enum store_status accounts_update(db_t *db, int64_t id, const struct account_fields *f,
                                  struct account *out);
/* Deletes the account and its models. */
enum store_status accounts_delete(db_t *db, int64_t id);

#endif
