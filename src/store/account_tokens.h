/* account_tokens.h — the account_tokens table: an account's API keys on its site, synced
 * from the site or added by hand. Keys are sealed at rest, bound to ('account_tokens',
 * 'key', id); these functions take and return plaintext. A token whose site only showed
 * a masked key is 'masked_pending' (kept out of routing until the full key is known).
 * Configuration writes commit before returning. */
#ifndef METARELAY_STORE_ACCOUNT_TOKENS_H
#define METARELAY_STORE_ACCOUNT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct account_token {
    int64_t id;
    int64_t account_id;
    char *site_token_id; /* NULL for a key added by hand */
    char *name;
    char *key;    /* plaintext; NULL when unknown (masked) or unreadable */
    char *masked; /* display form */
    char *group;
    bool enabled;
    bool is_default;
    char *source;       /* "manual" | "sync" */
    char *value_status; /* "ready" | "masked_pending" */
    bool unlimited;
    double remain_quota; /* < 0 unknown */
    int64_t expires_at;  /* -1 never, 0 unknown */
    char *model_limits;
    char *created_at;
    char *updated_at;
};
void account_token_clear(struct account_token *t);
void account_tokens_free(struct account_token *t, size_t n);

/* Tokens of one account (account_id > 0) or of all, by id. */
enum store_status account_tokens_list(db_t *db, int64_t account_id, struct account_token **out,
                                      size_t *n);
enum store_status account_tokens_get(db_t *db, int64_t id, struct account_token *out);

/* A token to write. Create: account_id and (key or site_token_id) required. Update: NULL
 * fields keep their value; enabled/is_default use -1 for keep. */
struct account_token_fields {
    int64_t account_id;
    const char *site_token_id;
    const char *name;
    const char *key;    /* full key; NULL keeps (masked tokens stay pending) */
    const char *masked; /* what the site showed, when the key is not known */
    const char *group;
    int enabled;        /* -1 keep (create: 1) */
    int is_default;     /* -1 keep (create: 0); 1 makes it the only default */
    const char *source; /* create: "manual" (default) or "sync" */
    bool unlimited;
    double remain_quota;
    int64_t expires_at;
    const char *model_limits;
};
enum store_status account_tokens_create(db_t *db, const struct account_token_fields *f,
                                        struct account_token *out);
enum store_status account_tokens_update(db_t *db, int64_t id, const struct account_token_fields *f,
                                        struct account_token *out);
enum store_status account_tokens_delete(db_t *db, int64_t id);

/* Makes the account's synced tokens match `items` (the site's list) in one transaction:
 * insert new ones, update known ones (a full key replaces the stored one; a masked key
 * keeps a known full key, else the token becomes masked_pending), delete synced tokens
 * the site no longer has. Hand-added tokens are kept. When the account has no default
 * token afterwards, its first usable one becomes the default. Counts go to *added,
 * *updated, *removed, *pending (any may be NULL). */
enum store_status account_tokens_sync(db_t *db, int64_t account_id,
                                      const struct account_token_fields *items, size_t n,
                                      size_t *added, size_t *updated, size_t *removed,
                                      size_t *pending);

#endif
