/* models.c — the account_models repository (see models.h). */
#include "store/models.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

void account_models_free(struct account_model *models, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(models[i].model_name);
        free(models[i].checked_at);
    }
    free(models);
}

enum store_status account_models_list(db_t *db, int64_t account_id, struct account_model **out,
                                      size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT model_name, available, checked_at FROM "
                                         "account_models WHERE account_id = ? ORDER BY model_name");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, account_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct account_model *nm = realloc(*out, ncap * sizeof *nm);
            if (!nm) break;
            *out = nm;
            cap = ncap;
        }
        struct account_model *m = &(*out)[*n];
        m->model_name = db_col_strdup(st, 0);
        m->available = sqlite3_column_int(st, 1) != 0;
        m->checked_at = db_col_strdup(st, 2);
        (*n)++;
        if (!m->model_name || !m->checked_at) break;
    }
    enum store_status ret = STORE_OK;
    if (rc != SQLITE_DONE) ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "models");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        account_models_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

enum store_status account_models_replace(db_t *db, int64_t account_id, const char *const *names,
                                         size_t n)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *chk = db_prepare(db->h, "SELECT 1 FROM accounts WHERE id = ?");
    sqlite3_stmt *del = db_prepare(db->h, "DELETE FROM account_models WHERE account_id = ?");
    sqlite3_stmt *ins = db_prepare(db->h, "INSERT OR IGNORE INTO account_models (account_id, "
                                          "model_name, available) VALUES (?, ?, 1)");
    if (!chk || !del || !ins) goto out;
    sqlite3_bind_int64(chk, 1, account_id);
    int rc = sqlite3_step(chk);
    if (rc != SQLITE_ROW) {
        ret = rc == SQLITE_DONE ? STORE_NOT_FOUND : db_step_error(db->h, "finding the account");
        goto out;
    }
    sqlite3_bind_int64(del, 1, account_id);
    if (sqlite3_step(del) != SQLITE_DONE) {
        ret = db_step_error(db->h, "clearing models");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !*names[i]) continue;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, account_id);
        sqlite3_bind_text(ins, 2, names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            ret = db_step_error(db->h, "storing a model");
            goto out;
        }
    }
    ret = STORE_OK;
out:
    sqlite3_finalize(chk);
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    return ret;
}
