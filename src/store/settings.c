/* settings.c — the settings repository (see settings.h). */
#include "store/settings.h"

#include <stdlib.h>

#include "store/store_internal.h"

enum store_status settings_get(db_t *db, const char *key, char **value)
{
    *value = NULL;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT value FROM settings WHERE key = ?");
    if (!st) return STORE_ERROR;
    db_bind_str(st, 1, key);
    int rc = sqlite3_step(st);
    enum store_status ret;
    if (rc == SQLITE_ROW) {
        *value = db_col_strdup(st, 0);
        ret = *value ? STORE_OK : STORE_ERROR;
    } else {
        ret = rc == SQLITE_DONE ? STORE_NOT_FOUND : db_step_error(db->h, "reading a setting");
    }
    sqlite3_finalize(st);
    return ret;
}

/* One statement in BEGIN IMMEDIATE … COMMIT; `want_change` turns "no row" into
 * STORE_NOT_FOUND. */
static enum store_status write_one(db_t *db, const char *sql, const char *key, const char *value,
                                   bool want_change)
{
    if (!key) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, sql);
    enum store_status ret = STORE_ERROR;
    if (st) {
        db_bind_str(st, 1, key);
        if (value) db_bind_str(st, 2, value);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "writing a setting");
        else
            ret = (want_change && sqlite3_changes(db->h) == 0) ? STORE_NOT_FOUND : STORE_OK;
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    return ret;
}

enum store_status settings_set(db_t *db, const char *key, const char *value)
{
    if (!value) return STORE_INVALID;
    return write_one(db,
                     "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     key, value, false);
}

enum store_status settings_delete(db_t *db, const char *key)
{
    return write_one(db, "DELETE FROM settings WHERE key = ?1", key, NULL, true);
}
