/* account_tokens.c — the account_tokens repository (see account_tokens.h). Keys are sealed
 * after the row exists (the row id is part of the binding), inside the same transaction. */
#include "store/account_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define TOKEN_SELECT                                                                               \
    "SELECT id, account_id, site_token_id, name, key_enc, masked, token_group, enabled,"           \
    " is_default, source, value_status, unlimited, remain_quota, expires_at, model_limits,"        \
    " created_at, updated_at FROM account_tokens"
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

void account_token_clear(struct account_token *t)
{
    if (!t) return;
    free(t->site_token_id);
    free(t->name);
    secrets_free_str(t->key);
    free(t->masked);
    free(t->group);
    free(t->source);
    free(t->value_status);
    free(t->model_limits);
    free(t->created_at);
    free(t->updated_at);
    memset(t, 0, sizeof *t);
}

void account_tokens_free(struct account_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++) account_token_clear(&t[i]);
    free(t);
}

static bool read_token(db_t *db, sqlite3_stmt *st, struct account_token *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    t->account_id = sqlite3_column_int64(st, 1);
    t->site_token_id = db_col_strdup(st, 2);
    t->name = db_col_strdup(st, 3);
    t->key = db_open_column(db, st, 4, SEAL_ACCOUNT_TOKENS, "key", t->id, NULL);
    t->masked = db_col_strdup(st, 5);
    t->group = db_col_strdup(st, 6);
    t->enabled = sqlite3_column_int(st, 7) != 0;
    t->is_default = sqlite3_column_int(st, 8) != 0;
    t->source = db_col_strdup(st, 9);
    t->value_status = db_col_strdup(st, 10);
    t->unlimited = sqlite3_column_int(st, 11) != 0;
    t->remain_quota =
        sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 12);
    t->expires_at = sqlite3_column_int64(st, 13);
    t->model_limits = db_col_strdup(st, 14);
    t->created_at = db_col_strdup(st, 15);
    t->updated_at = db_col_strdup(st, 16);
    if (!t->name || !t->masked || !t->source || !t->value_status || !t->created_at) {
        account_token_clear(t);
        return false;
    }
    return true;
}

static enum store_status select_tokens(db_t *db, const char *where, int64_t arg,
                                       struct account_token **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char sql[512];
    snprintf(sql, sizeof sql, TOKEN_SELECT " WHERE %s ORDER BY id", where);
    sqlite3_stmt *st = db_prepare(db->h, sql);
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, arg);
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct account_token *nt = realloc(*out, ncap * sizeof *nt);
            if (!nt) {
                ret = STORE_ERROR;
                break;
            }
            *out = nt;
            cap = ncap;
        }
        if (!read_token(db, st, &(*out)[*n])) {
            ret = STORE_ERROR;
            break;
        }
        (*n)++;
    }
    if (ret == STORE_OK && rc != SQLITE_DONE) ret = db_step_error(db->h, "account tokens");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        account_tokens_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

enum store_status account_tokens_list(db_t *db, int64_t account_id, struct account_token **out,
                                      size_t *n)
{
    return select_tokens(db, "?1 <= 0 OR account_id = ?1", account_id, out, n);
}

enum store_status account_tokens_get(db_t *db, int64_t id, struct account_token *out)
{
    struct account_token *list;
    size_t n;
    memset(out, 0, sizeof *out);
    enum store_status st = select_tokens(db, "id = ?1", id, &list, &n);
    if (st != STORE_OK) return st;
    if (n == 0) {
        free(list);
        return STORE_NOT_FOUND;
    }
    *out = list[0];
    free(list);
    return STORE_OK;
}

/* The display form of a key we know, or what the site showed. */
static void mask_of(const struct account_token_fields *f, char *out, size_t cap)
{
    if (f->key)
        secrets_mask(f->key, out, cap);
    else
        snprintf(out, cap, "%s", f->masked ? f->masked : "");
}

/* Writes the row's fields and key (inside a transaction). */
static enum store_status write_token(db_t *db, int64_t id, const struct account_token_fields *f)
{
    char masked[64];
    mask_of(f, masked, sizeof masked);
    sqlite3_stmt *st =
        db_prepare(db->h, "UPDATE account_tokens SET name = coalesce(?1, name), token_group = "
                          "coalesce(?2, token_group),"
                          " enabled = CASE WHEN ?3 >= 0 THEN ?3 ELSE enabled END,"
                          " masked = CASE WHEN ?4 THEN ?5 ELSE masked END,"
                          " value_status = CASE WHEN ?6 THEN 'ready' ELSE value_status END,"
                          " model_limits = coalesce(?7, model_limits), updated_at = " NOW_SQL
                          " WHERE id = ?8");
    if (!st) return STORE_ERROR;
    db_bind_str(st, 1, f->name);
    db_bind_str(st, 2, f->group);
    sqlite3_bind_int(st, 3, f->enabled);
    sqlite3_bind_int(st, 4, f->key || f->masked);
    sqlite3_bind_text(st, 5, masked, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, f->key != NULL);
    db_bind_str(st, 7, f->model_limits);
    sqlite3_bind_int64(st, 8, id);
    enum store_status ret = sqlite3_step(st) != SQLITE_DONE
                                ? db_step_error(db->h, "updating a token")
                            : sqlite3_changes(db->h) ? STORE_OK
                                                     : STORE_NOT_FOUND;
    sqlite3_finalize(st);
    if (ret == STORE_OK && f->key) ret = db_seal_column(db, SEAL_ACCOUNT_TOKENS, "key", id, f->key);
    if (ret == STORE_OK && f->is_default == 1) {
        st = db_prepare(db->h, "UPDATE account_tokens SET is_default = (id = ?1) WHERE account_id ="
                               " (SELECT account_id FROM account_tokens WHERE id = ?1)");
        if (!st) return STORE_ERROR;
        sqlite3_bind_int64(st, 1, id);
        ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "default token");
        sqlite3_finalize(st);
    } else if (ret == STORE_OK && f->is_default == 0) {
        st = db_prepare(db->h, "UPDATE account_tokens SET is_default = 0 WHERE id = ?");
        if (!st) return STORE_ERROR;
        sqlite3_bind_int64(st, 1, id);
        ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "default token");
        sqlite3_finalize(st);
    }
    return ret;
}

static enum store_status insert_token(db_t *db, const struct account_token_fields *f, int64_t *id)
{
    sqlite3_stmt *st = db_prepare(
        db->h, "INSERT INTO account_tokens (account_id, site_token_id, name, source, value_status,"
               " unlimited, remain_quota, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, f->account_id);
    db_bind_str(st, 2, f->site_token_id);
    db_bind_str(st, 3, f->name ? f->name : "");
    db_bind_str(st, 4, f->source ? f->source : "manual");
    sqlite3_bind_text(st, 5, f->key ? "ready" : "masked_pending", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, f->unlimited);
    if (f->remain_quota >= 0)
        sqlite3_bind_double(st, 7, f->remain_quota);
    else
        sqlite3_bind_null(st, 7);
    if (f->expires_at != 0)
        sqlite3_bind_int64(st, 8, f->expires_at);
    else
        sqlite3_bind_null(st, 8);
    enum store_status ret =
        sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "adding a token");
    sqlite3_finalize(st);
    if (ret != STORE_OK) return ret;
    *id = sqlite3_last_insert_rowid(db->h);
    struct account_token_fields w = *f;
    if (w.enabled < 0) w.enabled = 1;
    return write_token(db, *id, &w);
}

static enum store_status finish(db_t *db, enum store_status ret, int64_t id,
                                struct account_token *out)
{
    if (ret == STORE_OK && out) ret = account_tokens_get(db, id, out);
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) {
        db_rollback(db->h);
        if (out) account_token_clear(out);
    }
    return ret;
}

enum store_status account_tokens_create(db_t *db, const struct account_token_fields *f,
                                        struct account_token *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (f->account_id <= 0 || (!f->key && !f->site_token_id)) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    int64_t id = 0;
    enum store_status ret = insert_token(db, f, &id);
    return finish(db, ret, id, out);
}

enum store_status account_tokens_update(db_t *db, int64_t id, const struct account_token_fields *f,
                                        struct account_token *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    return finish(db, write_token(db, id, f), id, out);
}

enum store_status account_tokens_delete(db_t *db, int64_t id)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "DELETE FROM account_tokens WHERE id = ?");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        ret = sqlite3_step(st) != SQLITE_DONE ? db_step_error(db->h, "deleting a token")
              : sqlite3_changes(db->h)        ? STORE_OK
                                              : STORE_NOT_FOUND;
        sqlite3_finalize(st);
    }
    return finish(db, ret, id, NULL);
}

/* The id of the account's token with site id `sid`, 0 when none, -1 on error. */
static int64_t find_synced(db_t *db, int64_t account_id, const char *sid)
{
    sqlite3_stmt *st = db_prepare(
        db->h, "SELECT id FROM account_tokens WHERE account_id = ? AND site_token_id = ?");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, account_id);
    db_bind_str(st, 2, sid);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return id;
}

enum store_status account_tokens_sync(db_t *db, int64_t account_id,
                                      const struct account_token_fields *items, size_t n,
                                      size_t *added, size_t *updated, size_t *removed,
                                      size_t *pending)
{
    size_t a = 0, u = 0, r = 0, p = 0;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret = STORE_OK;
    /* Marks what the site still has; the rest of the synced rows go. */
    if (db_exec(db->h, "CREATE TEMP TABLE IF NOT EXISTS sync_seen (id INTEGER PRIMARY KEY);"
                       "DELETE FROM sync_seen") != 0)
        ret = STORE_ERROR;
    for (size_t i = 0; ret == STORE_OK && i < n; i++) {
        struct account_token_fields f = items[i];
        f.account_id = account_id;
        f.source = "sync";
        if (!f.site_token_id) continue;
        int64_t id = find_synced(db, account_id, f.site_token_id);
        if (id < 0) {
            ret = STORE_ERROR;
            break;
        }
        if (id == 0) {
            ret = insert_token(db, &f, &id);
            a++;
        } else {
            f.is_default = -1;
            if (!f.key) f.masked = NULL; /* keep a known full key and its mask */
            ret = write_token(db, id, &f);
            u++;
        }
        if (ret == STORE_OK) {
            sqlite3_stmt *st = db_prepare(db->h, "INSERT OR IGNORE INTO sync_seen (id) VALUES (?)");
            if (!st) {
                ret = STORE_ERROR;
                break;
            }
            sqlite3_bind_int64(st, 1, id);
            if (sqlite3_step(st) != SQLITE_DONE) ret = db_step_error(db->h, "syncing tokens");
            sqlite3_finalize(st);
        }
    }
    if (ret == STORE_OK) {
        sqlite3_stmt *st =
            db_prepare(db->h, "DELETE FROM account_tokens WHERE account_id = ? AND"
                              " source = 'sync' AND id NOT IN (SELECT id FROM sync_seen)");
        if (!st) {
            ret = STORE_ERROR;
        } else {
            sqlite3_bind_int64(st, 1, account_id);
            if (sqlite3_step(st) != SQLITE_DONE)
                ret = db_step_error(db->h, "syncing tokens");
            else
                r = (size_t)sqlite3_changes(db->h);
            sqlite3_finalize(st);
        }
    }
    if (ret == STORE_OK) {
        /* A default when there is none: the first usable token. */
        sqlite3_stmt *st = db_prepare(
            db->h, "UPDATE account_tokens SET is_default = 1 WHERE id = (SELECT id FROM"
                   " account_tokens WHERE account_id = ?1 AND enabled = 1 AND value_status ="
                   " 'ready' ORDER BY id LIMIT 1) AND NOT EXISTS (SELECT 1 FROM account_tokens"
                   " WHERE account_id = ?1 AND is_default = 1)");
        if (!st) {
            ret = STORE_ERROR;
        } else {
            sqlite3_bind_int64(st, 1, account_id);
            if (sqlite3_step(st) != SQLITE_DONE) ret = db_step_error(db->h, "default token");
            sqlite3_finalize(st);
        }
        st = ret == STORE_OK
                 ? db_prepare(db->h, "SELECT count(*) FROM account_tokens WHERE"
                                     " account_id = ? AND value_status = 'masked_pending'")
                 : NULL;
        if (st) {
            sqlite3_bind_int64(st, 1, account_id);
            if (sqlite3_step(st) == SQLITE_ROW) p = (size_t)sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    if (added) *added = a;
    if (updated) *updated = u;
    if (removed) *removed = r;
    if (pending) *pending = p;
    return ret;
}
