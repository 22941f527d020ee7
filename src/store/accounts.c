/* accounts.c — the accounts repository (see accounts.h). Secrets are sealed with the
 * store's key and bound to ('accounts', <column>, id): an insert first creates the row
 * to learn its id, then stores the sealed values, in one transaction. Also the shared
 * sealed-column helpers of store_internal.h. */
#include "store/accounts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define ACCOUNT_SELECT                                                                             \
    "SELECT a.id, a.site_id, s.name, a.username, a.api_token_enc, a.status, a.balance,"            \
    " a.balance_used, a.quota, a.created_at, a.updated_at, a.credential_mode, a.user_id,"          \
    " a.status_reason, a.display_name, a.user_group, a.currency, a.last_checkin_at,"               \
    " a.last_balance_refresh, a.quota_per_unit, a.checkin_enabled, a.password_enc IS NOT NULL,"    \
    " a.totp_secret_enc IS NOT NULL, a.access_token_enc IS NOT NULL,"                              \
    " a.refresh_token_enc IS NOT NULL, a.cookie_enc IS NOT NULL, a.access_expires_at,"             \
    " a.unit_cost"                                                                                 \
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
    free(a->credential_mode);
    free(a->user_id);
    free(a->status_reason);
    free(a->display_name);
    free(a->user_group);
    free(a->currency);
    free(a->last_checkin_at);
    free(a->last_balance_refresh);
    memset(a, 0, sizeof *a);
}

void account_credentials_clear(struct account_credentials *c)
{
    if (!c) return;
    secrets_free_str(c->api_token);
    secrets_free_str(c->password);
    secrets_free_str(c->totp_secret);
    secrets_free_str(c->access_token);
    secrets_free_str(c->refresh_token);
    secrets_free_str(c->cookie);
    free(c->error);
    memset(c, 0, sizeof *c);
}

/* ---- sealed columns (store_internal.h) ---- */

const struct sealed_column store_sealed_columns[] = {
    {"accounts", "api_token"},    {"accounts", "password"},      {"accounts", "totp_secret"},
    {"accounts", "access_token"}, {"accounts", "refresh_token"}, {"accounts", "cookie"},
    {"account_tokens", "key"},
};
const size_t store_n_sealed_columns = sizeof store_sealed_columns / sizeof store_sealed_columns[0];

enum store_status db_seal_column(db_t *db, const char *table, const char *name, int64_t id,
                                 const char *plain)
{
    struct buf sealed = BUF_INIT;
    if (plain && secrets_seal(db->s->secrets, table, name, id, plain, strlen(plain), &sealed) != 0)
        return STORE_ERROR;
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s SET %s_enc = ? WHERE id = ?", table, name);
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, sql);
    if (st) {
        if (plain)
            sqlite3_bind_blob(st, 1, sealed.p ? sealed.p : "", (int)sealed.n, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 1);
        sqlite3_bind_int64(st, 2, id);
        ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "sealing a secret");
        sqlite3_finalize(st);
    }
    buf_free(&sealed);
    return ret;
}

char *db_open_column(db_t *db, sqlite3_stmt *st, int col, const char *table, const char *name,
                     int64_t id, char why[128])
{
    if (why) why[0] = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return NULL;
    struct buf plain = BUF_INIT;
    char tmp[128];
    if (secrets_open(db->s->secrets, table, name, id, sqlite3_column_blob(st, col),
                     (size_t)sqlite3_column_bytes(st, col), &plain, why ? why : tmp) != 0) {
        buf_free(&plain);
        return NULL;
    }
    return plain.p ? plain.p : strdup("");
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
    a->credential_mode = db_col_strdup(st, 11);
    a->user_id = db_col_strdup(st, 12);
    a->status_reason = db_col_strdup(st, 13);
    a->display_name = db_col_strdup(st, 14);
    a->user_group = db_col_strdup(st, 15);
    a->currency = db_col_strdup(st, 16);
    a->last_checkin_at = db_col_strdup(st, 17);
    a->last_balance_refresh = db_col_strdup(st, 18);
    a->quota_per_unit = sqlite3_column_double(st, 19);
    a->checkin_enabled = sqlite3_column_int(st, 20) != 0;
    a->has_password = sqlite3_column_int(st, 21) != 0;
    a->has_totp = sqlite3_column_int(st, 22) != 0;
    a->has_access_token = sqlite3_column_int(st, 23) != 0;
    a->has_refresh_token = sqlite3_column_int(st, 24) != 0;
    a->has_cookie = sqlite3_column_int(st, 25) != 0;
    a->access_expires_at = sqlite3_column_int64(st, 26);
    a->unit_cost = sqlite3_column_type(st, 27) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 27);
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

/* Writes the secrets and control-plane fields of `f` to row `id`. Inside the caller's
 * transaction. */
static enum store_status write_secrets(db_t *db, int64_t id, const struct account_fields *f)
{
    enum store_status ret = STORE_OK;
    if (f->api_token || f->clear_api_token)
        ret = db_seal_column(db, SEAL_ACCOUNTS_TABLE, SEAL_ACCOUNTS_API_TOKEN, id,
                             f->clear_api_token ? NULL : f->api_token);
    const struct {
        bool set;
        const char *name, *value;
    } sec[] = {{f->set_password, "password", f->password},
               {f->set_totp_secret, "totp_secret", f->totp_secret},
               {f->set_access_token, "access_token", f->access_token},
               {f->set_refresh_token, "refresh_token", f->refresh_token},
               {f->set_cookie, "cookie", f->cookie}};
    for (size_t i = 0; ret == STORE_OK && i < sizeof sec / sizeof sec[0]; i++)
        if (sec[i].set)
            ret = db_seal_column(db, SEAL_ACCOUNTS_TABLE, sec[i].name, id,
                                 sec[i].value && *sec[i].value ? sec[i].value : NULL);
    if (ret != STORE_OK) return ret;
    sqlite3_stmt *st = db_prepare(
        db->h, "UPDATE accounts SET user_id = CASE WHEN ?1 THEN ?2 ELSE user_id END,"
               " credential_mode = coalesce(?3, credential_mode),"
               " status_reason = CASE WHEN ?4 THEN ?5 ELSE status_reason END,"
               " checkin_enabled = CASE ?6 WHEN 1 THEN 1 WHEN 2 THEN 0 ELSE checkin_enabled END,"
               " access_expires_at = CASE WHEN ?7 THEN ?8 ELSE access_expires_at END,"
               " unit_cost = CASE WHEN ?10 THEN ?11 ELSE unit_cost END"
               " WHERE id = ?9");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int(st, 1, f->set_user_id);
    db_bind_str(st, 2, f->user_id && *f->user_id ? f->user_id : NULL);
    db_bind_str(st, 3, f->credential_mode);
    sqlite3_bind_int(st, 4, f->set_status_reason);
    db_bind_str(st, 5, f->status_reason);
    sqlite3_bind_int(st, 6, (int)f->checkin);
    sqlite3_bind_int(st, 7, f->set_access_expires_at);
    if (f->access_expires_at > 0)
        sqlite3_bind_int64(st, 8, f->access_expires_at);
    else
        sqlite3_bind_null(st, 8);
    sqlite3_bind_int64(st, 9, id);
    sqlite3_bind_int(st, 10, f->set_unit_cost);
    if (f->unit_cost > 0)
        sqlite3_bind_double(st, 11, f->unit_cost);
    else
        sqlite3_bind_null(st, 11);
    ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "updating an account");
    sqlite3_finalize(st);
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
    if (f->site_id <= 0) return STORE_INVALID;
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
        ret = write_secrets(db, id, f);
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
    if (ret == STORE_OK) ret = write_secrets(db, id, f);
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

enum store_status accounts_get_credentials(db_t *db, int64_t id, struct account_credentials *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_prepare(db->h, "SELECT api_token_enc, password_enc, totp_secret_enc,"
                                         " access_token_enc, refresh_token_enc, cookie_enc"
                                         " FROM accounts WHERE id = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    enum store_status ret = STORE_OK;
    if (rc == SQLITE_ROW) {
        static const char *const names[] = {"api_token",   "access_token",  "password",
                                            "totp_secret", "refresh_token", "cookie"};
        static const int cols[] = {0, 3, 1, 2, 4, 5};
        char **dst[] = {&out->api_token,   &out->access_token,  &out->password,
                        &out->totp_secret, &out->refresh_token, &out->cookie};
        for (size_t i = 0; i < 6; i++) {
            char why[128];
            *dst[i] = db_open_column(db, st, cols[i], SEAL_ACCOUNTS_TABLE, names[i], id, why);
            if (!*dst[i] && why[0] && !out->error &&
                asprintf(&out->error, "the stored %s cannot be decrypted (%s)", names[i], why) < 0)
                out->error = NULL;
        }
    } else {
        ret = rc == SQLITE_DONE ? STORE_NOT_FOUND : db_step_error(db->h, "reading credentials");
    }
    sqlite3_finalize(st);
    return ret;
}

enum store_status accounts_record_balance(db_t *db, int64_t id,
                                          const struct account_balance_update *b)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(
        db->h, "UPDATE accounts SET balance = ?1,"
               " balance_used = CASE WHEN ?2 >= 0 THEN ?2 ELSE balance_used END,"
               " quota = ?1 + CASE WHEN ?2 >= 0 THEN ?2 ELSE balance_used END,"
               " quota_per_unit = CASE WHEN ?3 > 0 THEN ?3 ELSE quota_per_unit END,"
               " raw_quota = CASE WHEN ?4 >= 0 THEN ?4 ELSE raw_quota END,"
               " currency = coalesce(?5, currency), display_name = coalesce(?6, display_name),"
               " user_group = coalesce(?7, user_group), last_balance_refresh = " NOW_SQL ","
               " updated_at = " NOW_SQL " WHERE id = ?8");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_double(st, 1, b->balance);
        sqlite3_bind_double(st, 2, b->used);
        sqlite3_bind_double(st, 3, b->quota_per_unit);
        sqlite3_bind_int64(st, 4, b->raw_quota);
        db_bind_str(st, 5, b->currency);
        db_bind_str(st, 6, b->display_name);
        db_bind_str(st, 7, b->user_group);
        sqlite3_bind_int64(st, 8, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "storing a balance");
        else
            ret = sqlite3_changes(db->h) ? STORE_OK : STORE_NOT_FOUND;
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK) {
        st = db_prepare(db->h,
                        "INSERT INTO balance_history (account_id, balance, used) VALUES (?, ?, ?)");
        ret = STORE_ERROR;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_double(st, 2, b->balance);
            if (b->used >= 0)
                sqlite3_bind_double(st, 3, b->used);
            else
                sqlite3_bind_null(st, 3);
            ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK
                                                  : db_step_error(db->h, "balance history");
            sqlite3_finalize(st);
        }
    }
    return finish(db, ret, id, NULL);
}

enum store_status accounts_set_status(db_t *db, int64_t id, const char *status, const char *reason)
{
    struct account_fields f = {0};
    f.status = status;
    f.status_reason = reason;
    f.set_status_reason = true;
    return accounts_update(db, id, &f, NULL);
}

/* ---- spend and balance history (balance_history, checkin_logs) ---- */

/* One snapshot: the last before `since` (baseline) or the newest overall. */
static bool balance_row(db_t *db, const char *sql, int64_t id, const char *since, double *bal,
                        double *used, bool *has_used)
{
    sqlite3_stmt *st = db_prepare(db->h, sql);
    if (!st) return false;
    sqlite3_bind_int64(st, 1, id);
    if (since) db_bind_str(st, 2, since);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        *bal = sqlite3_column_double(st, 0);
        *has_used = sqlite3_column_type(st, 1) != SQLITE_NULL;
        *used = *has_used ? sqlite3_column_double(st, 1) : 0;
    }
    sqlite3_finalize(st);
    return found;
}

enum store_status accounts_spend_since(db_t *db, int64_t id, const char *since_iso, double *out)
{
    *out = 0;
    if (db_begin_read(db->h) != 0) return STORE_ERROR;
    double b0 = 0, u0 = 0, b1 = 0, u1 = 0;
    bool hu0 = false, hu1 = false;
    /* baseline: the last snapshot before the period, else its first one */
    bool base = balance_row(db,
                            "SELECT balance, used FROM balance_history WHERE account_id = ?1 AND "
                            "recorded_at < ?2 ORDER BY id DESC LIMIT 1",
                            id, since_iso, &b0, &u0, &hu0) ||
                balance_row(db,
                            "SELECT balance, used FROM balance_history WHERE account_id = ?1 AND "
                            "recorded_at >= ?2 ORDER BY id LIMIT 1",
                            id, since_iso, &b0, &u0, &hu0);
    bool now = balance_row(db,
                           "SELECT balance, used FROM balance_history WHERE account_id = ?1 "
                           "ORDER BY id DESC LIMIT 1",
                           id, NULL, &b1, &u1, &hu1);
    double rewards = 0;
    sqlite3_stmt *st =
        db_prepare(db->h, "SELECT coalesce(sum(reward), 0) FROM checkin_logs WHERE "
                          "account_id = ? AND status = 'success' AND created_at >= ?");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        db_bind_str(st, 2, since_iso);
        if (sqlite3_step(st) == SQLITE_ROW) rewards = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    db_commit(db->h);
    if (base && now) {
        double spend = hu0 && hu1 ? u1 - u0 : b0 - b1 + rewards;
        *out = spend > 0 ? spend : 0;
    }
    return STORE_OK;
}

enum store_status accounts_balance_history(db_t *db, int64_t id, size_t limit,
                                           struct balance_point **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT balance, used, recorded_at FROM balance_history "
                                         "WHERE account_id = ? ORDER BY id DESC LIMIT ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    struct balance_point *pts = calloc(limit ? limit : 1, sizeof *pts);
    if (!pts) {
        sqlite3_finalize(st);
        return STORE_ERROR;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        struct balance_point *p = &pts[(*n)++];
        p->balance = sqlite3_column_double(st, 0);
        p->used = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 1);
        const unsigned char *t = sqlite3_column_text(st, 2);
        snprintf(p->recorded_at, sizeof p->recorded_at, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(pts);
        *n = 0;
        return STORE_ERROR;
    }
    *out = pts;
    return STORE_OK;
}
