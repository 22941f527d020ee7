/* settings.h — the settings table: runtime-editable settings as key → JSON text. */
#ifndef METARELAY_STORE_SETTINGS_H
#define METARELAY_STORE_SETTINGS_H

#include "store/repo.h"
#include "store/store.h"

/* The JSON text stored for `key` in *value (malloc'ed, caller frees). STORE_NOT_FOUND when
 * unset. */
enum store_status settings_get(db_t *db, const char *key, char **value);
/* Stores `value` (must be valid JSON text, else STORE_INVALID) for `key`, replacing any
 * previous value; committed before returning. */
enum store_status settings_set(db_t *db, const char *key, const char *value);
/* Removes `key`; STORE_NOT_FOUND when unset. */
enum store_status settings_delete(db_t *db, const char *key);

#endif
