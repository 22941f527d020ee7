/* migrate.c — applies the embedded numbered migrations (store/migrations.h) in order,
 * each in its own BEGIN IMMEDIATE transaction together with its row in
 * `schema_migrations`, so a migration is either fully applied and recorded or not at all.
 * A database that has a migration this binary does not know was written by a newer
 * metarelay: refuse it rather than run old code on a newer schema. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store/migrations.h"
#include "store/store_internal.h"

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0) *err = NULL;
    va_end(ap);
}

/* "012_name.sql" → 12; -1 when the name does not start with digits and '_'. */
static long migration_version(const char *name)
{
    long v = 0;
    const char *p = name;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return -1;
        p++;
    }
    return *p == '_' ? v : -1;
}

/* Highest version recorded, 0 for none, -1 on error. */
static long applied_max(sqlite3 *h)
{
    sqlite3_stmt *st = db_prepare(h, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!st) return -1;
    long v = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static int is_applied(sqlite3 *h, long version)
{
    sqlite3_stmt *st = db_prepare(h, "SELECT 1 FROM schema_migrations WHERE version = ?");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int apply_one(sqlite3 *h, const struct migration *m, long version, char **err)
{
    if (db_begin_write(h) != 0) {
        set_err(err, "migration %s: cannot lock the database: %s", m->name, sqlite3_errmsg(h));
        return -1;
    }
    /* Another process may have applied it while we waited for the lock. */
    int done = is_applied(h, version);
    if (done != 0) {
        if (done < 0) set_err(err, "migration %s: %s", m->name, sqlite3_errmsg(h));
        if (done > 0 && db_commit(h) == 0) return 0;
        db_rollback(h);
        return -1;
    }
    char *msg = NULL;
    if (sqlite3_exec(h, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, "migration %s failed: %s", m->name, msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        db_rollback(h);
        return -1;
    }
    sqlite3_stmt *st = db_prepare(h, "INSERT INTO schema_migrations (version, name) VALUES (?, ?)");
    int rc = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE || db_commit(h) != 0) {
        set_err(err, "migration %s: cannot record it: %s", m->name, sqlite3_errmsg(h));
        db_rollback(h);
        return -1;
    }
    log_info("store: applied migration %s", m->name);
    return 0;
}

int store_migrate(sqlite3 *h, char **err)
{
    if (db_exec(h, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version INTEGER PRIMARY KEY,"
                   " name TEXT NOT NULL,"
                   " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))") !=
        0) {
        set_err(err, "cannot create schema_migrations: %s", sqlite3_errmsg(h));
        return -1;
    }
    long known = 0, prev = 0;
    for (const struct migration *m = sqlite_migrations; m->name; m++) {
        long v = migration_version(m->name);
        if (v <= prev) {
            set_err(err, "embedded migration %s: name must start with a number above %ld and '_'",
                    m->name, prev);
            return -1;
        }
        prev = known = v;
    }
    long have = applied_max(h);
    if (have < 0) {
        set_err(err, "cannot read schema_migrations: %s", sqlite3_errmsg(h));
        return -1;
    }
    if (have > known) {
        set_err(err,
                "the database schema is at version %ld, newer than this metarelay knows (%ld): "
                "run a newer metarelay, or restore a backup made for this version",
                have, known);
        return -1;
    }
    for (const struct migration *m = sqlite_migrations; m->name; m++) {
        long v = migration_version(m->name);
        if (v <= have && is_applied(h, v) == 1) continue;
        if (apply_one(h, m, v, err) != 0) return -1;
    }
    return 0;
}
