/* models.h — the account_models table: the models discovered for each account (what the
 * routing snapshot offers through that account). */
#ifndef METARELAY_STORE_MODELS_H
#define METARELAY_STORE_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct account_model {
    char *model_name;
    bool available;
    char *checked_at; /* ISO-8601 UTC */
};

void account_models_free(struct account_model *models, size_t n);

/* The account's models by name. *out malloc'ed (account_models_free). An unknown account
 * has no models (STORE_OK, n = 0): check the account first when that matters. */
enum store_status account_models_list(db_t *db, int64_t account_id, struct account_model **out,
                                      size_t *n);

/* Replaces the account's model list with `names` (duplicates and empty names ignored), all
 * marked available and checked now, in one transaction. STORE_NOT_FOUND for an unknown
 * account. */
enum store_status account_models_replace(db_t *db, int64_t account_id, const char *const *names,
                                         size_t n);

#endif
