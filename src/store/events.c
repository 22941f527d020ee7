/* events.c — events and check-in logs (see events.h). */
#include "store/events.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

void events_free(struct event *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].type);
        free(e[i].title);
        free(e[i].message);
        free(e[i].level);
        free(e[i].related_type);
        free(e[i].created_at);
    }
    free(e);
}

enum store_status events_add(db_t *db, const char *type, const char *level, const char *title,
                             const char *message, int64_t related_id, const char *related_type)
{
    sqlite3_stmt *st = db_prepare(db->h, "INSERT INTO events (type, title, message, level,"
                                         " related_id, related_type) VALUES (?, ?, ?, ?, ?, ?)");
    if (!st) return STORE_ERROR;
    db_bind_str(st, 1, type);
    db_bind_str(st, 2, title);
    db_bind_str(st, 3, message ? message : "");
    db_bind_str(st, 4, level ? level : "info");
    if (related_id > 0)
        sqlite3_bind_int64(st, 5, related_id);
    else
        sqlite3_bind_null(st, 5);
    db_bind_str(st, 6, related_type);
    enum store_status ret =
        sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "adding an event");
    sqlite3_finalize(st);
    return ret;
}

enum store_status events_list(db_t *db, const char *type, int64_t related_id, int limit, int offset,
                              struct event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st =
        db_prepare(db->h, "SELECT id, type, title, message, level, read, related_id, related_type,"
                          " created_at FROM events WHERE (?1 IS NULL OR type = ?1) AND (?2 <= 0 OR"
                          " related_id = ?2) ORDER BY id DESC LIMIT ?3 OFFSET ?4");
    if (!st) return STORE_ERROR;
    db_bind_str(st, 1, type);
    sqlite3_bind_int64(st, 2, related_id);
    sqlite3_bind_int(st, 3, limit);
    sqlite3_bind_int(st, 4, offset);
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct event *ne = realloc(*out, ncap * sizeof *ne);
            if (!ne) {
                ret = STORE_ERROR;
                break;
            }
            *out = ne, cap = ncap;
        }
        struct event *e = &(*out)[(*n)++];
        e->id = sqlite3_column_int64(st, 0);
        e->type = db_col_strdup(st, 1);
        e->title = db_col_strdup(st, 2);
        e->message = db_col_strdup(st, 3);
        e->level = db_col_strdup(st, 4);
        e->read = sqlite3_column_int(st, 5) != 0;
        e->related_id = sqlite3_column_int64(st, 6);
        e->related_type = db_col_strdup(st, 7);
        e->created_at = db_col_strdup(st, 8);
    }
    if (ret == STORE_OK && rc != SQLITE_DONE) ret = db_step_error(db->h, "events");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        events_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return ret;
}

void checkin_logs_free(struct checkin_log *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].status);
        free(l[i].message);
        free(l[i].checkin_day);
        free(l[i].created_at);
    }
    free(l);
}

enum store_status checkin_logs_add(db_t *db, int64_t account_id, const char *status,
                                   const char *message, double reward, const char *day)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "INSERT INTO checkin_logs (account_id, status, message,"
                                         " reward, checkin_day) VALUES (?, ?, ?, ?, ?)");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, account_id);
        db_bind_str(st, 2, status);
        db_bind_str(st, 3, message ? message : "");
        if (reward >= 0)
            sqlite3_bind_double(st, 4, reward);
        else
            sqlite3_bind_null(st, 4);
        db_bind_str(st, 5, day);
        ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "check-in log");
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK && strcmp(status, "success") == 0) {
        st =
            db_prepare(db->h, "UPDATE accounts SET last_checkin_at = strftime('%Y-%m-%dT%H:%M:%fZ',"
                              " 'now') WHERE id = ?");
        ret = STORE_ERROR;
        if (st) {
            sqlite3_bind_int64(st, 1, account_id);
            ret = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_step_error(db->h, "check-in");
            sqlite3_finalize(st);
        }
    }
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    return ret;
}

enum store_status checkin_done_on(db_t *db, int64_t account_id, const char *day, bool *done)
{
    *done = false;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT 1 FROM checkin_logs WHERE account_id = ? AND"
                                         " checkin_day = ? AND status = 'success'");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, account_id);
    db_bind_str(st, 2, day);
    int rc = sqlite3_step(st);
    *done = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_status checkin_logs_list(db_t *db, int64_t account_id, int limit, int offset,
                                    struct checkin_log **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT count(*) FROM checkin_logs WHERE ?1 <= 0 OR"
                                         " account_id = ?1");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, account_id);
    if (sqlite3_step(st) == SQLITE_ROW) *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = db_prepare(db->h, "SELECT id, account_id, status, message, reward, checkin_day,"
                           " created_at FROM checkin_logs WHERE ?1 <= 0 OR account_id = ?1"
                           " ORDER BY id DESC LIMIT ?2 OFFSET ?3");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int(st, 2, limit);
    sqlite3_bind_int(st, 3, offset);
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct checkin_log *nl = realloc(*out, ncap * sizeof *nl);
            if (!nl) {
                ret = STORE_ERROR;
                break;
            }
            *out = nl, cap = ncap;
        }
        struct checkin_log *l = &(*out)[(*n)++];
        l->id = sqlite3_column_int64(st, 0);
        l->account_id = sqlite3_column_int64(st, 1);
        l->status = db_col_strdup(st, 2);
        l->message = db_col_strdup(st, 3);
        l->reward = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 4);
        l->checkin_day = db_col_strdup(st, 5);
        l->created_at = db_col_strdup(st, 6);
    }
    if (ret == STORE_OK && rc != SQLITE_DONE) ret = db_step_error(db->h, "check-in logs");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        checkin_logs_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return ret;
}
