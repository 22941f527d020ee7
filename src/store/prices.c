/* prices.c — model prices, token models and job leases (see prices.h). */
#include "store/prices.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"

void model_prices_free(struct model_price *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].model);
        free(p[i].group);
    }
    free(p);
}

static void bind_opt(sqlite3_stmt *st, int i, double v)
{
    if (v >= 0)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static enum store_status end_write(db_t *db, enum store_status ret)
{
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    return ret;
}

enum store_status model_prices_replace(db_t *db, int64_t account_id, int64_t token_id,
                                       const struct model_price *p, size_t n)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *del = db_prepare(db->h, "DELETE FROM model_prices WHERE account_id = ? AND"
                                          " ifnull(token_id, 0) = ?");
    sqlite3_stmt *ins =
        db_prepare(db->h, "INSERT OR REPLACE INTO model_prices (account_id, token_id, model,"
                          " input_per_million, output_per_million, per_call, price_group)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (del && ins) {
        sqlite3_bind_int64(del, 1, account_id);
        sqlite3_bind_int64(del, 2, token_id);
        ret = sqlite3_step(del) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "prices");
        for (size_t i = 0; ret == STORE_OK && i < n; i++) {
            if (!p[i].model || !*p[i].model) continue;
            sqlite3_reset(ins);
            sqlite3_bind_int64(ins, 1, account_id);
            if (token_id > 0)
                sqlite3_bind_int64(ins, 2, token_id);
            else
                sqlite3_bind_null(ins, 2);
            db_bind_str(ins, 3, p[i].model);
            bind_opt(ins, 4, p[i].input_per_million);
            bind_opt(ins, 5, p[i].output_per_million);
            bind_opt(ins, 6, p[i].per_call);
            db_bind_str(ins, 7, p[i].group);
            if (sqlite3_step(ins) != SQLITE_DONE) ret = db_step_error(db->h, "prices");
        }
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return end_write(db, ret);
}

static double col_opt(sqlite3_stmt *st, int c)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL ? -1 : sqlite3_column_double(st, c);
}

/* Reads rows of (model, input, output, per_call, group, token_id, account_id). */
static enum store_status read_prices(db_t *db, sqlite3_stmt *st, bool one_per_model,
                                     struct model_price **out, size_t *n)
{
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t acct = sqlite3_column_int64(st, 6);
        const unsigned char *model = sqlite3_column_text(st, 0);
        if (one_per_model && *n > 0 && (*out)[*n - 1].account_id == acct && model &&
            (*out)[*n - 1].model && strcmp((*out)[*n - 1].model, (const char *)model) == 0)
            continue; /* a token's price after the account's own */
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct model_price *np = realloc(*out, ncap * sizeof *np);
            if (!np) {
                ret = STORE_ERROR;
                break;
            }
            *out = np, cap = ncap;
        }
        struct model_price *p = &(*out)[(*n)++];
        p->model = db_col_strdup(st, 0);
        p->input_per_million = col_opt(st, 1);
        p->output_per_million = col_opt(st, 2);
        p->per_call = col_opt(st, 3);
        p->group = db_col_strdup(st, 4);
        p->token_id = sqlite3_column_int64(st, 5);
        p->account_id = acct;
    }
    if (ret == STORE_OK && rc != SQLITE_DONE) ret = db_step_error(db->h, "prices");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        model_prices_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return ret;
}

enum store_status model_prices_list(db_t *db, int64_t account_id, struct model_price **out,
                                    size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st =
        db_prepare(db->h, "SELECT model, input_per_million, output_per_million,"
                          " per_call, price_group, ifnull(token_id, 0), account_id"
                          " FROM model_prices WHERE account_id = ? ORDER BY model, 6");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, account_id);
    return read_prices(db, st, false, out, n);
}

enum store_status model_prices_all(db_t *db, struct model_price **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT model, input_per_million, output_per_million,"
                                         " per_call, price_group, ifnull(token_id, 0), account_id"
                                         " FROM model_prices ORDER BY account_id, model, 6");
    if (!st) return STORE_ERROR;
    return read_prices(db, st, true, out, n);
}

enum store_status token_models_replace(db_t *db, int64_t token_id, const char *const *names,
                                       size_t n)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *del = db_prepare(db->h, "DELETE FROM token_models WHERE token_id = ?");
    sqlite3_stmt *ins = db_prepare(
        db->h, "INSERT OR IGNORE INTO token_models (token_id, model_name) VALUES (?, ?)");
    if (del && ins) {
        sqlite3_bind_int64(del, 1, token_id);
        ret = sqlite3_step(del) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "token models");
        for (size_t i = 0; ret == STORE_OK && i < n; i++) {
            if (!names[i] || !*names[i]) continue;
            sqlite3_reset(ins);
            sqlite3_bind_int64(ins, 1, token_id);
            db_bind_str(ins, 2, names[i]);
            if (sqlite3_step(ins) != SQLITE_DONE) ret = db_step_error(db->h, "token models");
        }
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return end_write(db, ret);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum store_status job_lease_acquire(db_t *db, const char *name, const char *holder, int64_t ttl_ms,
                                    bool *got)
{
    *got = false;
    int64_t now = now_ms();
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st =
        db_prepare(db->h, "INSERT INTO job_leases (name, holder, until_ms) VALUES (?1, ?2, ?3)"
                          " ON CONFLICT (name) DO UPDATE SET holder = ?2, until_ms = ?3"
                          " WHERE job_leases.until_ms < ?4 OR job_leases.holder = ?2");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now + ttl_ms);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) == SQLITE_DONE) {
            ret = STORE_OK;
            *got = sqlite3_changes(db->h) > 0;
        } else {
            ret = db_step_error(db->h, "job lease");
        }
        sqlite3_finalize(st);
    }
    return end_write(db, ret);
}

enum store_status job_lease_release(db_t *db, const char *name, const char *holder)
{
    sqlite3_stmt *st = db_prepare(db->h, "DELETE FROM job_leases WHERE name = ? AND holder = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
    enum store_status ret =
        sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "job lease");
    sqlite3_finalize(st);
    return ret;
}
