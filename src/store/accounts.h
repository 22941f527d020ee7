/* accounts.h — the accounts table: one upstream credential on a site. Every secret (the
 * API token, password, TOTP secret, access and refresh tokens, session cookie) is sealed
 * at rest (base/secrets.h, bound to the account's row id and column); these functions
 * take and return plaintext. Listing returns only the API token; the other secrets come
 * out through accounts_get_credentials, for the control plane. Configuration writes
 * commit before returning. */
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
    /* control plane (030) */
    char *credential_mode; /* "apikey" | "session" */
    char *user_id;         /* New-Api-User / Veloera-User; NULL none */
    char *status_reason;   /* why it is expired; NULL none */
    char *display_name;
    char *user_group;
    char *currency;
    char *last_checkin_at;
    char *last_balance_refresh;
    double quota_per_unit; /* 0 unknown */
    bool checkin_enabled;
    bool has_password, has_totp, has_access_token, has_refresh_token, has_cookie;
    int64_t access_expires_at; /* 0 unknown */
    double unit_cost;          /* manual unit cost (money per 1M tokens); 0 = not set */
};

/* The secrets of one account in plaintext (NULL = unset). Wipe with
 * account_credentials_clear. */
struct account_credentials {
    char *api_token;
    char *password;
    char *totp_secret;
    char *access_token;
    char *refresh_token;
    char *cookie;
    char *error; /* non-NULL when a stored secret could not be opened (which, why) */
};
void account_credentials_clear(struct account_credentials *c);

/* Values to write. Create: site_id and api_token required, status NULL = "active".
 * Update: a NULL field (or set_username false) keeps the stored value; site_id is not
 * changed by an update. */
struct account_fields {
    int64_t site_id;
    const char *username;
    bool set_username; /* update: write username (NULL clears it) */
    const char *api_token;
    bool clear_api_token; /* update: remove the API token */
    const char *status;
    /* control plane: each secret is written when its set_ flag is true (NULL clears) */
    const char *password, *totp_secret, *access_token, *refresh_token, *cookie;
    bool set_password, set_totp_secret, set_access_token, set_refresh_token, set_cookie;
    const char *user_id;
    bool set_user_id;
    const char *credential_mode; /* NULL keeps ("apikey" on create) */
    const char *status_reason;
    bool set_status_reason;
    enum { ACCOUNT_CHECKIN_KEEP = 0, ACCOUNT_CHECKIN_ON, ACCOUNT_CHECKIN_OFF } checkin;
    int64_t access_expires_at;
    bool set_access_expires_at;
    double unit_cost; /* ≤ 0 clears */
    bool set_unit_cost;
};

/* A balance reading to store (and append to balance_history). */
struct account_balance_update {
    double balance;
    double used;                                      /* < 0 unknown (kept) */
    double quota_per_unit;                            /* 0 unknown */
    int64_t raw_quota;                                /* -1 unknown */
    const char *currency, *display_name, *user_group; /* NULL keeps */
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

/* Every secret of an account, opened (STORE_NOT_FOUND for an unknown id). */
enum store_status accounts_get_credentials(db_t *db, int64_t id, struct account_credentials *out);
/* Stores a balance reading, stamps last_balance_refresh and appends balance_history. */
enum store_status accounts_record_balance(db_t *db, int64_t id,
                                          const struct account_balance_update *b);
/* Sets the status with its reason (reason NULL clears it). */
/* Money spent since `since_iso` (UTC ISO-8601, e.g. the start of the local day): the rise of
 * the site's used quota over the period when it reports one, else the fall of the balance
 * plus the check-in rewards granted in the period; 0 when there is no history. */
enum store_status accounts_spend_since(db_t *db, int64_t id, const char *since_iso, double *out);

struct balance_point {
    double balance;
    double used; /* < 0 unknown */
    char recorded_at[32];
};
/* The newest `limit` balance snapshots of an account, newest first (caller frees *out). */
enum store_status accounts_balance_history(db_t *db, int64_t id, size_t limit,
                                           struct balance_point **out, size_t *n);

enum store_status accounts_set_status(db_t *db, int64_t id, const char *status, const char *reason);

#endif
