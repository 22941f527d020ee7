/* rotate.c — store_rotate_secret: every sealed column of every table (the list in
 * store_internal.h) is opened with the current key and sealed again with a key derived
 * from the new secret and a new salt; the salt and the key check value are replaced in
 * the same transaction, so the database is under the old key or the new one, never
 * both. A value that does not open under the current key stops the rotation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store/store_internal.h"

static int reseal_column(db_t *db, const secrets_t *nk, const struct sealed_column *c,
                         size_t *count, char **err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT id, %s_enc FROM %s WHERE %s_enc IS NOT NULL", c->name,
             c->table, c->name);
    sqlite3_stmt *sel = db_prepare(db->h, sql);
    snprintf(sql, sizeof sql, "UPDATE %s SET %s_enc = ? WHERE id = ?", c->table, c->name);
    sqlite3_stmt *upd = db_prepare(db->h, sql);
    int ret = sel && upd ? 0 : -1;
    int rc = SQLITE_DONE;
    while (ret == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(sel, 0);
        char why[128];
        char *plain = db_open_column(db, sel, 1, c->table, c->name, id, why);
        if (!plain) {
            if (asprintf(err, "%s.%s of row %lld cannot be decrypted with the current secret (%s)",
                         c->table, c->name, (long long)id, why) < 0)
                *err = NULL;
            ret = -1;
            break;
        }
        struct buf sealed = BUF_INIT;
        if (secrets_seal(nk, c->table, c->name, id, plain, strlen(plain), &sealed) != 0) ret = -1;
        secrets_free_str(plain);
        if (ret == 0) {
            sqlite3_reset(upd);
            sqlite3_bind_blob(upd, 1, sealed.p ? sealed.p : "", (int)sealed.n, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 2, id);
            if (sqlite3_step(upd) != SQLITE_DONE)
                ret = -1;
            else
                (*count)++;
        }
        buf_free(&sealed);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = -1;
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return ret;
}

static int put_meta(sqlite3 *h, const char *key, const void *v, size_t n)
{
    sqlite3_stmt *st = db_prepare(h, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_rotate_secret(const struct store_config *cfg, const char *new_secret, size_t *n_values,
                        char **err)
{
    *err = NULL;
    *n_values = 0;
    if (!new_secret || !*new_secret) {
        *err = strdup("ACCOUNT_CREDENTIAL_SECRET_NEW is empty");
        return -1;
    }
    store_t *s = store_open(cfg, err); /* proves the current secret */
    if (!s) return -1;
    db_t *db = store_connect(s);
    uint8_t salt[SECRETS_SALT_BYTES];
    secrets_random_salt(salt);
    secrets_t *nk = db ? secrets_derive(new_secret, salt, err) : NULL;
    int ret = -1;
    if (nk && db_begin_write(db->h) == 0) {
        ret = 0;
        for (size_t i = 0; ret == 0 && i < store_n_sealed_columns; i++)
            ret = reseal_column(db, nk, &store_sealed_columns[i], n_values, err);
        struct buf check = BUF_INIT;
        if (ret == 0 && (secrets_seal(nk, "meta", "key_check", 0, STORE_KEY_CHECK_PLAIN,
                                      strlen(STORE_KEY_CHECK_PLAIN), &check) != 0 ||
                         put_meta(db->h, "key_check", check.p, check.n) != 0 ||
                         put_meta(db->h, "kdf_salt", salt, sizeof salt) != 0))
            ret = -1;
        buf_free(&check);
        if (ret == 0 && db_commit(db->h) != 0) ret = -1;
        if (ret != 0) db_rollback(db->h);
    }
    if (ret != 0 && !*err)
        *err = strdup(db ? "the database refused the update (see the log)" : "no connection");
    secrets_free(nk);
    db_close(db);
    store_close(s);
    return ret;
}
