/* usage.c — the usage_logs table: the batched insert the store-writer uses, the paged
 * query the admin API uses, and retention (deleted in short batches so no transaction
 * holds the write lock for long). */
#include "store/usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/store_internal.h"

#define USAGE_COLUMNS                                                                              \
    "created_at, request_id, downstream_path, model_requested, model_actual, account_id,"          \
    " site_id, downstream_key_id, status, http_status, is_stream, attempt, first_byte_ms,"         \
    " latency_ms, prompt_tokens, completion_tokens, total_tokens, overhead_us, client_ip,"         \
    " error_message, route_id, route_channel_id, failure_kind, estimated_cost"

sqlite3_stmt *usage_insert_prepare(sqlite3 *h)
{
    return db_prepare(h, "INSERT INTO usage_logs (" USAGE_COLUMNS ") VALUES "
                         "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                         "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)");
}

/* Binds a fixed-size char array that a producer may have filled to the last byte. */
#define BIND_FIELD(st, i, field)                                                                   \
    sqlite3_bind_text(st, i, field, (int)strnlen(field, sizeof(field)), SQLITE_STATIC)

static void bind_id_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void bind_count_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int insert_one(sqlite3_stmt *st, const struct usage_record *r, int64_t now_ms)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, r->created_at_ms > 0 ? r->created_at_ms : now_ms);
    BIND_FIELD(st, 2, r->request_id);
    BIND_FIELD(st, 3, r->downstream_path);
    BIND_FIELD(st, 4, r->model_requested);
    BIND_FIELD(st, 5, r->model_actual);
    bind_id_or_null(st, 6, r->account_id);
    bind_id_or_null(st, 7, r->site_id);
    bind_id_or_null(st, 8, r->downstream_key_id);
    sqlite3_bind_text(st, 9, r->success ? "success" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, r->http_status);
    sqlite3_bind_int(st, 11, r->stream ? 1 : 0);
    sqlite3_bind_int(st, 12, r->attempt);
    bind_count_or_null(st, 13, r->first_byte_ms);
    sqlite3_bind_int64(st, 14, r->total_ms);
    bind_count_or_null(st, 15, r->prompt_tokens);
    bind_count_or_null(st, 16, r->completion_tokens);
    bind_count_or_null(st, 17, r->total_tokens);
    sqlite3_bind_int64(st, 18, r->overhead_us);
    BIND_FIELD(st, 19, r->client_ip);
    BIND_FIELD(st, 20, r->error);
    bind_id_or_null(st, 21, r->route_id);
    bind_id_or_null(st, 22, r->route_channel_id);
    BIND_FIELD(st, 23, r->failure_kind);
    if (r->has_cost)
        sqlite3_bind_double(st, 24, r->estimated_cost);
    else
        sqlite3_bind_null(st, 24);
    int rc = sqlite3_step(st);
    sqlite3_clear_bindings(st); /* the SQLITE_STATIC strings belong to the batch */
    return rc == SQLITE_DONE ? 0 : -1;
}

int usage_insert_batch(sqlite3 *h, sqlite3_stmt *ins, const struct usage_record *r, size_t n)
{
    if (n == 0) return 0;
    if (db_begin_write(h) != 0) return -1;
    int64_t now = clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        if (insert_one(ins, &r[i], now) != 0) {
            log_error("store: usage insert failed: %s", sqlite3_errmsg(h));
            sqlite3_reset(ins);
            db_rollback(h);
            return -1;
        }
    }
    sqlite3_reset(ins);
    if (db_commit(h) != 0) {
        db_rollback(h);
        return -1;
    }
    return 0;
}

/* ---- retention ---- */

int64_t usage_retention_cutoff(unsigned days)
{
    return clock_wall_ms() - (int64_t)days * 86400000LL;
}

long usage_delete_batch(sqlite3 *h, int64_t cutoff_ms, int limit)
{
    /* SQLite (as packaged) has no DELETE … LIMIT: pick the ids through the created_at
     * index instead. */
    sqlite3_stmt *st = db_prepare(h, "DELETE FROM usage_logs WHERE id IN (SELECT id FROM "
                                     "usage_logs WHERE created_at < ?1 ORDER BY created_at "
                                     "LIMIT ?2)");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int(st, 2, limit);
    long n = -1;
    if (db_begin_write(h) == 0) {
        if (sqlite3_step(st) == SQLITE_DONE && db_commit(h) == 0)
            n = sqlite3_changes(h);
        else {
            log_error("store: retention delete failed: %s", sqlite3_errmsg(h));
            db_rollback(h);
        }
    }
    sqlite3_finalize(st);
    return n;
}

long store_apply_retention(db_t *db, unsigned days)
{
    if (!db) return -1;
    if (days == 0) return 0;
    int64_t cutoff = usage_retention_cutoff(days);
    long total = 0;
    for (;;) {
        long n = usage_delete_batch(db->h, cutoff, RETENTION_BATCH);
        if (n < 0) return -1;
        total += n;
        if (n < RETENTION_BATCH) return total;
    }
}

/* ---- query ---- */

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int64_t col_or(sqlite3_stmt *st, int col, int64_t dflt)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? dflt : sqlite3_column_int64(st, col);
}

/* The WHERE clause shared by the page and the count, with only the predicates in use, so
 * the planner can pick the (status, created_at) or (model_requested, created_at) index
 * (a "?1 = '' OR status = ?1" form would defeat both). Parameters: ?1 status, ?2 model. */
static const char *usage_where(bool by_status, bool by_model)
{
    if (by_status && by_model) return " WHERE status = ?1 AND model_requested = ?2";
    if (by_status) return " WHERE status = ?1";
    if (by_model) return " WHERE model_requested = ?2";
    return "";
}

enum store_status usage_logs_query(db_t *db, const struct usage_filter *f, struct usage_log **rows,
                                   size_t *n_rows, int64_t *total)
{
    *rows = NULL;
    *n_rows = 0;
    *total = 0;
    const char *status = f->status == USAGE_SUCCESS  ? "success"
                         : f->status == USAGE_FAILED ? "failed"
                                                     : "";
    const char *model = f->model ? f->model : "";
    const char *where = usage_where(status[0] != 0, model[0] != 0);
    char cnt_sql[256], page_sql[1024];
    snprintf(cnt_sql, sizeof cnt_sql, "SELECT count(*) FROM usage_logs%s", where);
    snprintf(page_sql, sizeof page_sql,
             "SELECT id, " USAGE_COLUMNS " FROM usage_logs%s"
             " ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4",
             where);
    /* The same read transaction for the page and the count, so they agree. */
    if (db_begin_read(db->h) != 0) return STORE_ERROR;
    enum store_status ret = STORE_ERROR;
    sqlite3_stmt *cnt = db_prepare(db->h, cnt_sql);
    sqlite3_stmt *st = db_prepare(db->h, page_sql);
    if (!cnt || !st) goto out;
    sqlite3_bind_text(cnt, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(cnt, 2, model, -1, SQLITE_STATIC);
    if (sqlite3_step(cnt) != SQLITE_ROW) {
        db_step_error(db->h, "counting usage logs");
        goto out;
    }
    *total = sqlite3_column_int64(cnt, 0);

    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->limit);
    sqlite3_bind_int64(st, 4, f->offset);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n_rows == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct usage_log *nr = realloc(*rows, ncap * sizeof *nr);
            if (!nr) goto fail;
            *rows = nr;
            cap = ncap;
        }
        struct usage_log *l = &(*rows)[(*n_rows)++];
        memset(l, 0, sizeof *l);
        struct usage_record *r = &l->rec;
        l->id = sqlite3_column_int64(st, 0);
        r->created_at_ms = sqlite3_column_int64(st, 1);
        copy_col(r->request_id, sizeof r->request_id, st, 2);
        copy_col(r->downstream_path, sizeof r->downstream_path, st, 3);
        copy_col(r->model_requested, sizeof r->model_requested, st, 4);
        copy_col(r->model_actual, sizeof r->model_actual, st, 5);
        r->account_id = col_or(st, 6, 0);
        r->site_id = col_or(st, 7, 0);
        r->downstream_key_id = col_or(st, 8, 0);
        const unsigned char *s = sqlite3_column_text(st, 9);
        r->success = s && strcmp((const char *)s, "success") == 0;
        r->http_status = sqlite3_column_int(st, 10);
        r->stream = sqlite3_column_int(st, 11) != 0;
        r->attempt = sqlite3_column_int(st, 12);
        r->first_byte_ms = col_or(st, 13, -1);
        r->total_ms = sqlite3_column_int64(st, 14);
        r->prompt_tokens = col_or(st, 15, -1);
        r->completion_tokens = col_or(st, 16, -1);
        r->total_tokens = col_or(st, 17, -1);
        r->overhead_us = sqlite3_column_int64(st, 18);
        copy_col(r->client_ip, sizeof r->client_ip, st, 19);
        copy_col(r->error, sizeof r->error, st, 20);
        r->route_id = col_or(st, 21, 0);
        r->route_channel_id = col_or(st, 22, 0);
        copy_col(r->failure_kind, sizeof r->failure_kind, st, 23);
        r->has_cost = sqlite3_column_type(st, 24) != SQLITE_NULL;
        r->estimated_cost = r->has_cost ? sqlite3_column_double(st, 24) : 0;
    }
    if (rc != SQLITE_DONE) {
        db_step_error(db->h, "reading usage logs");
        goto fail;
    }
    ret = STORE_OK;
    goto out;
fail:
    free(*rows);
    *rows = NULL;
    *n_rows = 0;
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    db_rollback(db->h); /* ends the read transaction */
    return ret;
}
