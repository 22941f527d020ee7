/* accounts.c — the accounts repository (see accounts.h). Tokens are sealed with the
 * store's key and bound to ('accounts', 'api_token', id): an insert first creates the row
 * to learn its id, then stores the sealed token, in one transaction. */
#include "store/accounts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define ACCOUNT_SELECT                                                                             \
    "SELECT a.id, a.site_id, s.name, a.username, a.api_token_enc, a.status, a.balance,"            \
    " a.balance_used, a.quota, a.created_at, a.updated_at"                                         \
    " FROM accounts a JOIN sites s ON s.id = a.site_id"
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

void account_clear(struct account *a)
{
    if (!a) return;
    free(a->site_name);
    free(a->username);
    secrets_free_str(a->api_token);
    free(a->status);
    free(a->created_at);
    free(a->updated_at);
    memset(a, 0, sizeof *a);
}

void accounts_free(struct account *accounts, size_t n)
{
    for (size_t i = 0; i < n; i++) account_clear(&accounts[i]);
    free(accounts);
}

static bool read_account(db_t *db, sqlite3_stmt *st, struct account *a)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(st, 0);
    a->site_id = sqlite3_column_int64(st, 1);
    a->site_name = db_col_strdup(st, 2);
    a->username = db_col_strdup(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        struct buf plain = BUF_INIT;
        const void *blob = sqlite3_column_blob(st, 4);
        size_t n = (size_t)sqlite3_column_bytes(st, 4);
        if (secrets_open(db->s->secrets, SEAL_ACCOUNTS_TABLE, SEAL_ACCOUNTS_API_TOKEN, a->id, blob,
                         n, &plain, a->api_token_error) == 0)
            a->api_token = plain.p ? plain.p : strdup("");
        else
            buf_free(&plain);
    }
    a->status = db_col_strdup(st, 5);
    a->balance = sqlite3_column_double(st, 6);
    a->balance_used = sqlite3_column_double(st, 7);
    a->quota = sqlite3_column_double(st, 8);
    a->created_at = db_col_strdup(st, 9);
    a->updated_at = db_col_strdup(st, 10);
    if (!a->site_name || !a->status || !a->created_at || !a->updated_at) {
        account_clear(a);
        return false;
    }
    return true;
}

enum store_status accounts_list(db_t *db, int64_t site_id, struct account **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st =
        db_prepare(db->h, ACCOUNT_SELECT " WHERE ?1 <= 0 OR a.site_id = ?1 ORDER BY a.id");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, site_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct account *na = realloc(*out, ncap * sizeof *na);
            if (!na) break;
            *out = na;
            cap = ncap;
        }
        if (!read_account(db, st, &(*out)[*n])) break;
        (*n)++;
    }
    enum store_status ret = STORE_OK;
    if (rc != SQLITE_DONE) ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "accounts");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        accounts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

enum store_status accounts_get(db_t *db, int64_t id, struct account *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_prepare(db->h, ACCOUNT_SELECT " WHERE a.id = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    enum store_status ret;
    if (rc == SQLITE_ROW)
        ret = read_account(db, st, out) ? STORE_OK : STORE_ERROR;
    else if (rc == SQLITE_DONE)
        ret = STORE_NOT_FOUND;
    else
        ret = db_step_error(db->h, "reading an account");
    sqlite3_finalize(st);
    return ret;
}

/* Seals `token` for row `id` and stores it. Inside the caller's transaction. */
static enum store_status store_token(db_t *db, int64_t id, const char *token)
{
    struct buf sealed = BUF_INIT;
    if (secrets_seal(db->s->secrets, SEAL_ACCOUNTS_TABLE, SEAL_ACCOUNTS_API_TOKEN, id, token,
                     strlen(token), &sealed) != 0)
        return STORE_ERROR;
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "UPDATE accounts SET api_token_enc = ? WHERE id = ?");
    if (st) {
        sqlite3_bind_blob(st, 1, sealed.p, (int)sealed.n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "sealing a token");
        sqlite3_finalize(st);
    }
    buf_free(&sealed);
    return ret;
}

/* Commits (reading the row back into `out` first) or rolls back. */
static enum store_status finish(db_t *db, enum store_status ret, int64_t id, struct account *out)
{
    if (ret == STORE_OK && out) ret = accounts_get(db, id, out);
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) {
        db_rollback(db->h);
        if (out) account_clear(out);
    }
    return ret;
}

enum store_status accounts_create(db_t *db, const struct account_fields *f, struct account *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!f->api_token || f->site_id <= 0) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st =
        db_prepare(db->h, "INSERT INTO accounts (site_id, username, status) VALUES (?, ?, ?)");
    enum store_status ret = STORE_ERROR;
    int64_t id = 0;
    if (st) {
        sqlite3_bind_int64(st, 1, f->site_id);
        db_bind_str(st, 2, f->username);
        db_bind_str(st, 3, f->status ? f->status : "active");
        ret =
            sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "adding an account");
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK) {
        id = sqlite3_last_insert_rowid(db->h);
        ret = store_token(db, id, f->api_token);
    }
    return finish(db, ret, id, out);
}

enum store_status accounts_update(db_t *db, int64_t id, const struct account_fields *f,
                                  struct account *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st =
        db_prepare(db->h, "UPDATE accounts SET username = CASE WHEN ?1 THEN ?2 ELSE username END,"
                          " status = coalesce(?3, status), updated_at = " NOW_SQL " WHERE id = ?4");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int(st, 1, f->set_username);
        db_bind_str(st, 2, f->username);
        db_bind_str(st, 3, f->status);
        sqlite3_bind_int64(st, 4, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "updating an account");
        else
            ret = sqlite3_changes(db->h) ? STORE_OK : STORE_NOT_FOUND;
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK && f->api_token) ret = store_token(db, id, f->api_token);
    return finish(db, ret, id, out);
}

enum store_status accounts_delete(db_t *db, int64_t id)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "DELETE FROM accounts WHERE id = ?");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "deleting an account");
        else
            ret = sqlite3_changes(db->h) ? STORE_OK : STORE_NOT_FOUND;
        sqlite3_finalize(st);
    }
    return finish(db, ret, id, NULL);
}
