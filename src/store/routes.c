/* routes.c — the routes, route_channels, route_group_sources and routing_health
 * repositories (see routes.h). */
#include "store/routes.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
#define ROUTE_COLUMNS                                                                              \
    "id, model_pattern, display_name, route_mode, model_mapping, routing_strategy, enabled, "      \
    "created_at, updated_at"
#define CHANNEL_COLUMNS                                                                            \
    "id, route_id, account_id, token_id, source_model, priority, weight, enabled, created_at, "    \
    "updated_at"

/* ---------- freeing ---------- */

void route_channel_row_clear(struct route_channel_row *c)
{
    if (!c) return;
    free(c->source_model);
    free(c->created_at);
    free(c->updated_at);
    memset(c, 0, sizeof *c);
}

void route_channel_rows_free(struct route_channel_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) route_channel_row_clear(&rows[i]);
    free(rows);
}

void route_row_clear(struct route_row *r)
{
    if (!r) return;
    free(r->model_pattern);
    free(r->display_name);
    free(r->route_mode);
    free(r->model_mapping);
    free(r->routing_strategy);
    free(r->source_ids);
    route_channel_rows_free(r->channels, r->n_channels);
    free(r->created_at);
    free(r->updated_at);
    memset(r, 0, sizeof *r);
}

void route_rows_free(struct route_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) route_row_clear(&rows[i]);
    free(rows);
}

/* ---------- reading ---------- */

static bool read_channel(sqlite3_stmt *st, struct route_channel_row *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, 0);
    c->route_id = sqlite3_column_int64(st, 1);
    c->account_id = sqlite3_column_int64(st, 2);
    c->token_id = sqlite3_column_int64(st, 3);
    c->source_model = db_col_strdup(st, 4);
    c->priority = sqlite3_column_int(st, 5);
    c->weight = (unsigned)sqlite3_column_int(st, 6);
    c->enabled = sqlite3_column_int(st, 7) != 0;
    c->created_at = db_col_strdup(st, 8);
    c->updated_at = db_col_strdup(st, 9);
    if (!c->created_at || !c->updated_at) {
        route_channel_row_clear(c);
        return false;
    }
    return true;
}

static enum store_status load_channels(db_t *db, int64_t route_id, struct route_channel_row **out,
                                       size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT " CHANNEL_COLUMNS
                                         " FROM route_channels WHERE route_id = ? ORDER BY id");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, route_id);
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct route_channel_row *g = realloc(*out, ncap * sizeof *g);
            if (!g) break;
            *out = g;
            cap = ncap;
        }
        if (!read_channel(st, &(*out)[*n])) break;
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "route channels");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        route_channel_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

static enum store_status load_sources(db_t *db, struct route_row *r)
{
    sqlite3_stmt *st = db_prepare(db->h, "SELECT source_route_id FROM route_group_sources "
                                         "WHERE group_route_id = ? ORDER BY source_route_id");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, r->id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->n_sources == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            int64_t *g = realloc(r->source_ids, ncap * sizeof *g);
            if (!g) break;
            r->source_ids = g;
            cap = ncap;
        }
        r->source_ids[r->n_sources++] = sqlite3_column_int64(st, 0);
    }
    enum store_status ret = rc == SQLITE_DONE  ? STORE_OK
                            : rc == SQLITE_ROW ? STORE_ERROR
                                               : db_step_error(db->h, "route group sources");
    sqlite3_finalize(st);
    return ret;
}

static bool read_route(sqlite3_stmt *st, struct route_row *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->model_pattern = db_col_strdup(st, 1);
    r->display_name = db_col_strdup(st, 2);
    r->route_mode = db_col_strdup(st, 3);
    r->model_mapping = db_col_strdup(st, 4);
    r->routing_strategy = db_col_strdup(st, 5);
    r->enabled = sqlite3_column_int(st, 6) != 0;
    r->created_at = db_col_strdup(st, 7);
    r->updated_at = db_col_strdup(st, 8);
    if (!r->model_pattern || !r->route_mode || !r->routing_strategy || !r->created_at ||
        !r->updated_at) {
        route_row_clear(r);
        return false;
    }
    return true;
}

static enum store_status complete_route(db_t *db, struct route_row *r)
{
    enum store_status st = load_channels(db, r->id, &r->channels, &r->n_channels);
    if (st == STORE_OK) st = load_sources(db, r);
    return st;
}

enum store_status routes_list(db_t *db, struct route_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (db_begin_read(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT " ROUTE_COLUMNS " FROM routes ORDER BY id");
    enum store_status ret = STORE_ERROR;
    if (st) {
        size_t cap = 0;
        int rc;
        ret = STORE_OK;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (*n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct route_row *g = realloc(*out, ncap * sizeof *g);
                if (!g) break;
                *out = g;
                cap = ncap;
            }
            if (!read_route(st, &(*out)[*n])) break;
            (*n)++;
        }
        if (rc != SQLITE_DONE)
            ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "routes");
        sqlite3_finalize(st);
    }
    for (size_t i = 0; ret == STORE_OK && i < *n; i++) ret = complete_route(db, &(*out)[i]);
    db_rollback(db->h);
    if (ret != STORE_OK) {
        route_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

enum store_status routes_get(db_t *db, int64_t id, struct route_row *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_prepare(db->h, "SELECT " ROUTE_COLUMNS " FROM routes WHERE id = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    enum store_status ret;
    if (rc == SQLITE_ROW)
        ret = read_route(st, out) ? STORE_OK : STORE_ERROR;
    else
        ret = rc == SQLITE_DONE ? STORE_NOT_FOUND : db_step_error(db->h, "route");
    sqlite3_finalize(st);
    if (ret == STORE_OK) ret = complete_route(db, out);
    if (ret != STORE_OK) route_row_clear(out);
    return ret;
}

/* ---------- writing ---------- */

static enum store_status write_sources(db_t *db, int64_t id, const struct route_fields *f)
{
    sqlite3_stmt *del =
        db_prepare(db->h, "DELETE FROM route_group_sources WHERE group_route_id = ?");
    if (!del) return STORE_ERROR;
    sqlite3_bind_int64(del, 1, id);
    int rc = sqlite3_step(del);
    sqlite3_finalize(del);
    if (rc != SQLITE_DONE) return db_step_error(db->h, "route group sources");
    sqlite3_stmt *ins = db_prepare(db->h, "INSERT OR IGNORE INTO route_group_sources "
                                          "(group_route_id, source_route_id) VALUES (?, ?)");
    if (!ins) return STORE_ERROR;
    enum store_status ret = STORE_OK;
    for (size_t i = 0; i < f->n_sources && ret == STORE_OK; i++) {
        if (f->source_ids[i] == id) {
            ret = STORE_INVALID; /* a group cannot contain itself */
            break;
        }
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, f->source_ids[i]);
        if (sqlite3_step(ins) != SQLITE_DONE) ret = db_step_error(db->h, "route group source");
    }
    sqlite3_finalize(ins);
    return ret;
}

static enum store_status finish_write(db_t *db, enum store_status ret)
{
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) db_rollback(db->h);
    return ret;
}

enum store_status routes_create(db_t *db, const struct route_fields *f, int64_t *id)
{
    if (!f->model_pattern || !*f->model_pattern) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(
        db->h, "INSERT INTO routes (model_pattern, display_name, route_mode, model_mapping, "
               "routing_strategy, enabled) VALUES (?1, ?2, COALESCE(?3, 'pattern'), ?4, "
               "COALESCE(?5, 'weighted'), ?6)");
    enum store_status ret = STORE_ERROR;
    if (st) {
        db_bind_str(st, 1, f->model_pattern);
        db_bind_str(st, 2, f->display_name && *f->display_name ? f->display_name : NULL);
        db_bind_str(st, 3, f->route_mode);
        db_bind_str(st, 4, f->model_mapping);
        db_bind_str(st, 5, f->routing_strategy);
        sqlite3_bind_int(st, 6, f->enabled == 0 ? 0 : 1);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(db->h);
            ret = STORE_OK;
        } else {
            ret = db_step_error(db->h, "creating a route");
        }
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK && f->set_sources) ret = write_sources(db, *id, f);
    return finish_write(db, ret);
}

enum store_status routes_update(db_t *db, int64_t id, const struct route_fields *f)
{
    if (f->model_pattern && !*f->model_pattern) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st =
        db_prepare(db->h, "UPDATE routes SET model_pattern = COALESCE(?2, model_pattern), "
                          "display_name = CASE WHEN ?3 THEN ?4 ELSE display_name END, "
                          "route_mode = COALESCE(?5, route_mode), "
                          "model_mapping = CASE WHEN ?6 THEN ?7 ELSE model_mapping END, "
                          "routing_strategy = COALESCE(?8, routing_strategy), "
                          "enabled = CASE WHEN ?9 < 0 THEN enabled ELSE ?9 END, "
                          "updated_at = " NOW_SQL " WHERE id = ?1");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        db_bind_str(st, 2, f->model_pattern);
        sqlite3_bind_int(st, 3, f->set_display_name);
        db_bind_str(st, 4, f->display_name && *f->display_name ? f->display_name : NULL);
        db_bind_str(st, 5, f->route_mode);
        sqlite3_bind_int(st, 6, f->set_model_mapping);
        db_bind_str(st, 7, f->model_mapping);
        db_bind_str(st, 8, f->routing_strategy);
        sqlite3_bind_int(st, 9, f->enabled < 0 ? -1 : f->enabled ? 1 : 0);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "updating a route");
        else
            ret = sqlite3_changes(db->h) == 0 ? STORE_NOT_FOUND : STORE_OK;
        sqlite3_finalize(st);
    }
    if (ret == STORE_OK && f->set_sources) ret = write_sources(db, id, f);
    return finish_write(db, ret);
}

static enum store_status delete_by_id(db_t *db, const char *sql, int64_t id, const char *what)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, sql);
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, what);
        else
            ret = sqlite3_changes(db->h) == 0 ? STORE_NOT_FOUND : STORE_OK;
        sqlite3_finalize(st);
    }
    return finish_write(db, ret);
}

enum store_status routes_delete(db_t *db, int64_t id)
{
    return delete_by_id(db, "DELETE FROM routes WHERE id = ?1", id, "deleting a route");
}

static bool route_exists(db_t *db, int64_t id, enum store_status *err)
{
    sqlite3_stmt *st = db_prepare(db->h, "SELECT 1 FROM routes WHERE id = ?");
    *err = STORE_OK;
    if (!st) {
        *err = STORE_ERROR;
        return false;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) *err = STORE_ERROR;
    return rc == SQLITE_ROW;
}

enum store_status route_channels_list(db_t *db, int64_t route_id, struct route_channel_row **out,
                                      size_t *n)
{
    *out = NULL;
    *n = 0;
    enum store_status err;
    if (!route_exists(db, route_id, &err)) return err != STORE_OK ? err : STORE_NOT_FOUND;
    return load_channels(db, route_id, out, n);
}

enum store_status route_channel_get(db_t *db, int64_t id, struct route_channel_row *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st =
        db_prepare(db->h, "SELECT " CHANNEL_COLUMNS " FROM route_channels WHERE id = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    enum store_status ret;
    if (rc == SQLITE_ROW)
        ret = read_channel(st, out) ? STORE_OK : STORE_ERROR;
    else
        ret = rc == SQLITE_DONE ? STORE_NOT_FOUND : db_step_error(db->h, "route channel");
    sqlite3_finalize(st);
    return ret;
}

enum store_status route_channel_create(db_t *db, int64_t route_id,
                                       const struct route_channel_fields *f, int64_t *id)
{
    if (f->account_id <= 0) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret;
    if (!route_exists(db, route_id, &ret))
        return finish_write(db, ret != STORE_OK ? ret : STORE_NOT_FOUND);
    sqlite3_stmt *st = db_prepare(
        db->h, "INSERT INTO route_channels (route_id, account_id, token_id, source_model, "
               "priority, weight, enabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, route_id);
        sqlite3_bind_int64(st, 2, f->account_id);
        if (f->token_id > 0)
            sqlite3_bind_int64(st, 3, f->token_id);
        else
            sqlite3_bind_null(st, 3);
        db_bind_str(st, 4, f->source_model && *f->source_model ? f->source_model : NULL);
        sqlite3_bind_int(st, 5, f->set_priority ? f->priority : 0);
        sqlite3_bind_int64(st, 6, f->set_weight ? (sqlite3_int64)f->weight : 10);
        sqlite3_bind_int(st, 7, f->enabled == 0 ? 0 : 1);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(db->h);
            ret = STORE_OK;
        } else {
            ret = db_step_error(db->h, "creating a route channel");
        }
        sqlite3_finalize(st);
    }
    return finish_write(db, ret);
}

enum store_status route_channel_update(db_t *db, int64_t id, const struct route_channel_fields *f)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(
        db->h,
        "UPDATE route_channels SET account_id = CASE WHEN ?2 > 0 THEN ?2 ELSE account_id END, "
        "token_id = CASE WHEN ?3 THEN ?4 ELSE token_id END, "
        "source_model = CASE WHEN ?5 THEN ?6 ELSE source_model END, "
        "priority = CASE WHEN ?7 THEN ?8 ELSE priority END, "
        "weight = CASE WHEN ?9 THEN ?10 ELSE weight END, "
        "enabled = CASE WHEN ?11 < 0 THEN enabled ELSE ?11 END, "
        "updated_at = " NOW_SQL " WHERE id = ?1");
    enum store_status ret = STORE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, f->account_id);
        sqlite3_bind_int(st, 3, f->set_token);
        if (f->token_id > 0)
            sqlite3_bind_int64(st, 4, f->token_id);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int(st, 5, f->set_source_model);
        db_bind_str(st, 6, f->source_model && *f->source_model ? f->source_model : NULL);
        sqlite3_bind_int(st, 7, f->set_priority);
        sqlite3_bind_int(st, 8, f->priority);
        sqlite3_bind_int(st, 9, f->set_weight);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)f->weight);
        sqlite3_bind_int(st, 11, f->enabled < 0 ? -1 : f->enabled ? 1 : 0);
        if (sqlite3_step(st) != SQLITE_DONE)
            ret = db_step_error(db->h, "updating a route channel");
        else
            ret = sqlite3_changes(db->h) == 0 ? STORE_NOT_FOUND : STORE_OK;
        sqlite3_finalize(st);
    }
    return finish_write(db, ret);
}

enum store_status route_channel_delete(db_t *db, int64_t id)
{
    return delete_by_id(db, "DELETE FROM route_channels WHERE id = ?1", id,
                        "deleting a route channel");
}

/* ---------- runtime health ---------- */

void health_rows_free(struct health_row *rows, size_t n)
{
    for (size_t i = 0; i < n && rows; i++) free(rows[i].model);
    free(rows);
}

enum store_status routing_health_save(db_t *db, const struct health_row *rows, size_t n,
                                      int64_t now_ms)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    enum store_status ret =
        db_exec(db->h, "DELETE FROM routing_health") == 0 ? STORE_OK : STORE_ERROR;
    sqlite3_stmt *st =
        ret == STORE_OK
            ? db_prepare(db->h, "INSERT OR REPLACE INTO routing_health (scope, ref_id, "
                                "model, site_id, streak, cooldown_until_ms, cooldown_kind, "
                                "cooldown_hard, last_failure_ms, latency_ms, successes, "
                                "failures, updated_at) VALUES "
                                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
            : NULL;
    if (!st) ret = STORE_ERROR;
    for (size_t i = 0; ret == STORE_OK && i < n; i++) {
        const struct health_row *r = &rows[i];
        sqlite3_reset(st);
        sqlite3_bind_int(st, 1, r->scope);
        sqlite3_bind_int64(st, 2, r->ref_id);
        db_bind_str(st, 3, r->model ? r->model : "");
        sqlite3_bind_int64(st, 4, r->site_id);
        sqlite3_bind_int64(st, 5, r->streak);
        sqlite3_bind_int64(st, 6, r->cooldown_until_ms);
        sqlite3_bind_int64(st, 7, r->cooldown_kind);
        sqlite3_bind_int(st, 8, r->cooldown_hard);
        sqlite3_bind_int64(st, 9, r->last_failure_ms);
        sqlite3_bind_int64(st, 10, r->latency_ms);
        sqlite3_bind_int64(st, 11, r->successes);
        sqlite3_bind_int64(st, 12, r->failures);
        sqlite3_bind_int64(st, 13, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE) ret = db_step_error(db->h, "saving routing health");
    }
    sqlite3_finalize(st);
    return finish_write(db, ret);
}

enum store_status routing_health_load(db_t *db, struct health_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(
        db->h, "SELECT scope, ref_id, model, site_id, streak, cooldown_until_ms, cooldown_kind, "
               "cooldown_hard, last_failure_ms, latency_ms, successes, failures "
               "FROM routing_health ORDER BY scope, ref_id, model");
    if (!st) return STORE_ERROR;
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct health_row *g = realloc(*out, ncap * sizeof *g);
            if (!g) break;
            *out = g;
            cap = ncap;
        }
        struct health_row *r = &(*out)[*n];
        r->scope = sqlite3_column_int(st, 0);
        r->ref_id = sqlite3_column_int64(st, 1);
        r->model = db_col_strdup(st, 2);
        if (!r->model) break;
        r->site_id = sqlite3_column_int64(st, 3);
        r->streak = (unsigned)sqlite3_column_int64(st, 4);
        r->cooldown_until_ms = sqlite3_column_int64(st, 5);
        r->cooldown_kind = (unsigned)sqlite3_column_int64(st, 6);
        r->cooldown_hard = sqlite3_column_int(st, 7) != 0;
        r->last_failure_ms = sqlite3_column_int64(st, 8);
        r->latency_ms = (unsigned)sqlite3_column_int64(st, 9);
        r->successes = sqlite3_column_int64(st, 10);
        r->failures = sqlite3_column_int64(st, 11);
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "routing health");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        health_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}
