/* sites.c — the sites repository (see sites.h). */
#include "store/sites.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define SITE_COLUMNS                                                                               \
    "id, name, url, platform, status, proxy_url, custom_headers, created_at, updated_at, formats," \
    " global_weight"
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

void site_clear(struct site *s)
{
    if (!s) return;
    free(s->name);
    free(s->url);
    free(s->platform);
    free(s->status);
    free(s->proxy_url);
    free(s->custom_headers);
    free(s->formats);
    free(s->created_at);
    free(s->updated_at);
    memset(s, 0, sizeof *s);
}

void sites_free(struct site *sites, size_t n)
{
    for (size_t i = 0; i < n; i++) site_clear(&sites[i]);
    free(sites);
}

/* Reads one row of SITE_COLUMNS; false when out of memory (row cleared). */
static bool read_site(sqlite3_stmt *st, struct site *s)
{
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    s->name = db_col_strdup(st, 1);
    s->url = db_col_strdup(st, 2);
    s->platform = db_col_strdup(st, 3);
    s->status = db_col_strdup(st, 4);
    s->proxy_url = db_col_strdup(st, 5);
    s->custom_headers = db_col_strdup(st, 6);
    s->formats = db_col_strdup(st, 9);
    s->global_weight = sqlite3_column_double(st, 10);
    s->created_at = db_col_strdup(st, 7);
    s->updated_at = db_col_strdup(st, 8);
    if (!s->name || !s->url || !s->platform || !s->status || !s->created_at || !s->updated_at) {
        site_clear(s);
        return false;
    }
    return true;
}

enum store_status sites_list(db_t *db, struct site **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_prepare(db->h, "SELECT " SITE_COLUMNS " FROM sites ORDER BY id");
    if (!st) return STORE_ERROR;
    size_t cap = 0;
    int rc;
    enum store_status ret = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct site *ns = realloc(*out, ncap * sizeof *ns);
            if (!ns) break;
            *out = ns;
            cap = ncap;
        }
        if (!read_site(st, &(*out)[*n])) break;
        (*n)++;
    }
    if (rc != SQLITE_DONE) ret = rc == SQLITE_ROW ? STORE_ERROR : db_step_error(db->h, "sites");
    sqlite3_finalize(st);
    if (ret != STORE_OK) {
        sites_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ret;
}

enum store_status sites_get(db_t *db, int64_t id, struct site *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_prepare(db->h, "SELECT " SITE_COLUMNS " FROM sites WHERE id = ?");
    if (!st) return STORE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    enum store_status ret;
    if (rc == SQLITE_ROW)
        ret = read_site(st, out) ? STORE_OK : STORE_ERROR;
    else if (rc == SQLITE_DONE)
        ret = STORE_NOT_FOUND;
    else
        ret = db_step_error(db->h, "reading a site");
    sqlite3_finalize(st);
    return ret;
}

/* Runs a prepared write inside BEGIN IMMEDIATE and, when `out` is given, reads the row
 * back in the same transaction. Finalizes `st`. */
static enum store_status write_site(db_t *db, sqlite3_stmt *st, int64_t id, bool is_insert,
                                    struct site *out)
{
    if (out) memset(out, 0, sizeof *out);
    int rc = sqlite3_step(st);
    enum store_status ret = STORE_OK;
    if (rc != SQLITE_DONE)
        ret = db_step_error(db->h, "writing a site");
    else if (!is_insert && sqlite3_changes(db->h) == 0)
        ret = STORE_NOT_FOUND;
    if (is_insert && ret == STORE_OK) id = sqlite3_last_insert_rowid(db->h);
    sqlite3_finalize(st);
    if (ret == STORE_OK && out) ret = sites_get(db, id, out);
    if (ret == STORE_OK && db_commit(db->h) != 0) ret = STORE_ERROR;
    if (ret != STORE_OK) {
        db_rollback(db->h);
        if (out) site_clear(out);
    }
    return ret;
}

enum store_status sites_create(db_t *db, const struct site_fields *f, struct site *out)
{
    if (!f->name || !f->url || !f->platform) return STORE_INVALID;
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(
        db->h, "INSERT INTO sites (name, url, platform, status, "
               "proxy_url, custom_headers, formats, global_weight) VALUES (?, ?, ?, ?, ?, ?, ?,"
               " ?)");
    if (!st) {
        db_rollback(db->h);
        return STORE_ERROR;
    }
    db_bind_str(st, 1, f->name);
    db_bind_str(st, 2, f->url);
    db_bind_str(st, 3, f->platform);
    db_bind_str(st, 4, f->status ? f->status : "active");
    db_bind_str(st, 5, f->proxy_url);
    db_bind_str(st, 6, f->custom_headers);
    db_bind_str(st, 7, f->formats);
    sqlite3_bind_double(st, 8, f->global_weight > 0 ? f->global_weight : 1.0);
    return write_site(db, st, 0, true, out);
}

enum store_status sites_update(db_t *db, int64_t id, const struct site_fields *f, struct site *out)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st =
        db_prepare(db->h, "UPDATE sites SET name = coalesce(?1, name), url = coalesce(?2, url),"
                          " platform = coalesce(?3, platform), status = coalesce(?4, status),"
                          " proxy_url = CASE WHEN ?5 THEN ?6 ELSE proxy_url END,"
                          " custom_headers = CASE WHEN ?7 THEN ?8 ELSE custom_headers END,"
                          " formats = CASE WHEN ?10 THEN ?11 ELSE formats END,"
                          " global_weight = coalesce(?12, global_weight),"
                          " updated_at = " NOW_SQL " WHERE id = ?9");
    if (!st) {
        db_rollback(db->h);
        return STORE_ERROR;
    }
    db_bind_str(st, 1, f->name);
    db_bind_str(st, 2, f->url);
    db_bind_str(st, 3, f->platform);
    db_bind_str(st, 4, f->status);
    sqlite3_bind_int(st, 5, f->set_proxy_url);
    db_bind_str(st, 6, f->proxy_url);
    sqlite3_bind_int(st, 7, f->set_custom_headers);
    db_bind_str(st, 8, f->custom_headers);
    sqlite3_bind_int64(st, 9, id);
    sqlite3_bind_int(st, 10, f->set_formats);
    db_bind_str(st, 11, f->formats);
    if (f->global_weight > 0)
        sqlite3_bind_double(st, 12, f->global_weight);
    else
        sqlite3_bind_null(st, 12);
    return write_site(db, st, id, false, out);
}

enum store_status sites_delete(db_t *db, int64_t id)
{
    if (db_begin_write(db->h) != 0) return STORE_ERROR;
    sqlite3_stmt *st = db_prepare(db->h, "DELETE FROM sites WHERE id = ?");
    if (!st) {
        db_rollback(db->h);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(st, 1, id);
    return write_site(db, st, id, false, NULL);
}
