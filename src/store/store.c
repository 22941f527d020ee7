/* store.c — opening the SQLite store: the database file and its pragmas, migrations, the
 * secrets key (salt kept in `meta`), per-thread connections, and the store-writer thread's
 * start and stop. Also the small SQLite helpers the repositories share. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"

/* WAL files above this size are truncated back after a checkpoint. */
#define JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)
#define BUSY_TIMEOUT_MS    5000
#define KEY_CHECK_PLAIN    STORE_KEY_CHECK_PLAIN

static char *fmt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

const char *store_status_str(enum store_status st)
{
    switch (st) {
    case STORE_OK:
        return "ok";
    case STORE_NOT_FOUND:
        return "not found";
    case STORE_CONFLICT:
        return "already exists";
    case STORE_INVALID:
        return "invalid value";
    case STORE_ERROR:
        return "database error";
    }
    return "unknown";
}

/* ---- helpers ---- */

int db_exec(sqlite3 *h, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int db_begin_write(sqlite3 *h)
{
    return db_exec(h, "BEGIN IMMEDIATE");
}

int db_begin_read(sqlite3 *h)
{
    return db_exec(h, "BEGIN");
}

int db_commit(sqlite3 *h)
{
    return db_exec(h, "COMMIT");
}

void db_rollback(sqlite3 *h)
{
    if (!sqlite3_get_autocommit(h)) sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *db_prepare(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: prepare failed: %s (%s)", sqlite3_errmsg(h), sql);
        return NULL;
    }
    return st;
}

enum store_status db_step_error(sqlite3 *h, const char *what)
{
    int ext = sqlite3_extended_errcode(h);
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_CONFLICT;
    if ((ext & 0xff) == SQLITE_CONSTRAINT) return STORE_INVALID;
    log_error("sqlite: %s: %s", what, sqlite3_errmsg(h));
    return STORE_ERROR;
}

char *db_col_strdup(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : "");
}

int db_bind_str(sqlite3_stmt *st, int idx, const char *s)
{
    return s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
}

/* ---- connections ---- */

sqlite3 *store_sqlite_open(const char *path, char **err)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(
        path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        *err = fmt_err("cannot open %s: %s", path, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return NULL;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    /* journal_mode answers with the mode in effect; anything but "wal" means the file
     * system refused it (e.g. no shared memory) and concurrency would suffer silently. */
    sqlite3_stmt *st = NULL;
    bool wal = false;
    if (sqlite3_prepare_v2(h, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        wal = mode && strcmp((const char *)mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    if (!wal) {
        *err = fmt_err("cannot put %s in WAL mode: %s", path, sqlite3_errmsg(h));
        sqlite3_close(h);
        return NULL;
    }
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=%d;",
             JOURNAL_SIZE_LIMIT);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        *err = fmt_err("cannot configure %s: %s", path, msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        sqlite3_close(h);
        return NULL;
    }
    return h;
}

db_t *store_connect(store_t *s)
{
    if (!s) return NULL;
    char *err = NULL;
    sqlite3 *h = store_sqlite_open(s->db_path, &err);
    if (!h) {
        log_error("store: %s", err ? err : "cannot open a connection");
        free(err);
        return NULL;
    }
    db_t *db = calloc(1, sizeof *db);
    if (!db) {
        sqlite3_close(h);
        return NULL;
    }
    db->h = h;
    db->s = s;
    return db;
}

void db_close(db_t *db)
{
    if (!db) return;
    sqlite3_close(db->h); /* every statement is finalized by its user */
    free(db);
}

/* ---- the secrets key ---- */

/* Reads meta.value for `key` into a malloc'ed blob. 1 found, 0 absent, -1 error. */
static int meta_get(sqlite3 *h, const char *key, uint8_t **val, size_t *n)
{
    sqlite3_stmt *st = db_prepare(h, "SELECT value FROM meta WHERE key = ?");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = -1;
    if (rc == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        *val = malloc(len ? len : 1);
        if (*val) {
            if (len) memcpy(*val, p, len);
            *n = len;
            ret = 1;
        }
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        log_error("sqlite: reading meta %s: %s", key, sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    return ret;
}

static int meta_put(sqlite3 *h, const char *key, const void *val, size_t n)
{
    sqlite3_stmt *st = db_prepare(h, "INSERT INTO meta (key, value) VALUES (?, ?)");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, val, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Reads the KDF salt, creating it on the first start (inside BEGIN IMMEDIATE, so two
 * processes starting together agree on one salt). */
static int load_salt(sqlite3 *h, uint8_t salt[SECRETS_SALT_BYTES], char **err)
{
    if (db_begin_write(h) != 0) {
        *err = fmt_err("cannot lock the database to read the key salt: %s", sqlite3_errmsg(h));
        return -1;
    }
    uint8_t *val = NULL;
    size_t n = 0;
    int rc = meta_get(h, "kdf_salt", &val, &n);
    if (rc == 1 && n == SECRETS_SALT_BYTES) {
        memcpy(salt, val, n);
    } else if (rc == 1) {
        *err = fmt_err("meta.kdf_salt has %zu bytes, expected %u", n, SECRETS_SALT_BYTES);
        rc = -1;
    } else if (rc == 0) {
        secrets_random_salt(salt);
        rc = meta_put(h, "kdf_salt", salt, SECRETS_SALT_BYTES) == 0 ? 1 : -1;
        if (rc < 0) *err = fmt_err("cannot store the key salt: %s", sqlite3_errmsg(h));
    } else {
        *err = fmt_err("cannot read the key salt: %s", sqlite3_errmsg(h));
    }
    free(val);
    if (rc < 0 || db_commit(h) != 0) {
        db_rollback(h);
        if (!*err) *err = fmt_err("cannot commit the key salt: %s", sqlite3_errmsg(h));
        return -1;
    }
    return 0;
}

/* Proves the derived key is the one the database's secrets were sealed with: a fixed
 * value sealed on the first start must open. A wrong ACCOUNT_CREDENTIAL_SECRET stops the
 * start with a clear message instead of failing every channel later, or worse, mixing
 * secrets sealed under two keys. */
static int check_key(sqlite3 *h, const secrets_t *k, char **err)
{
    if (db_begin_write(h) != 0) {
        *err = fmt_err("cannot lock the database to check the key: %s", sqlite3_errmsg(h));
        return -1;
    }
    uint8_t *val = NULL;
    size_t n = 0;
    int rc = meta_get(h, "key_check", &val, &n);
    int ret = -1;
    if (rc == 1) {
        struct buf plain = BUF_INIT;
        char why[128];
        if (secrets_open(k, "meta", "key_check", 0, val, n, &plain, why) == 0 &&
            plain.n == strlen(KEY_CHECK_PLAIN) && memcmp(plain.p, KEY_CHECK_PLAIN, plain.n) == 0)
            ret = 0;
        else
            *err = fmt_err("ACCOUNT_CREDENTIAL_SECRET does not match the secret this database's "
                           "credentials were encrypted with (%s); start with the previous "
                           "value (it defaults to AUTH_TOKEN)",
                           why);
        buf_free(&plain);
    } else if (rc == 0) {
        struct buf sealed = BUF_INIT;
        if (secrets_seal(k, "meta", "key_check", 0, KEY_CHECK_PLAIN, strlen(KEY_CHECK_PLAIN),
                         &sealed) == 0 &&
            meta_put(h, "key_check", sealed.p, sealed.n) == 0)
            ret = 0;
        else
            *err = fmt_err("cannot store the key check value: %s", sqlite3_errmsg(h));
        buf_free(&sealed);
    } else {
        *err = fmt_err("cannot read the key check value: %s", sqlite3_errmsg(h));
    }
    free(val);
    if (ret == 0 && db_commit(h) == 0) return 0;
    db_rollback(h);
    if (!*err) *err = fmt_err("cannot commit the key check value: %s", sqlite3_errmsg(h));
    return -1;
}

/* ---- open / close ---- */

static int mkdir_p(const char *dir, char **err)
{
    char *p = strdup(dir);
    if (!p) return -1;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != 0) continue;
        char save = *c;
        *c = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            *err = fmt_err("cannot create directory %s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *c = save;
        if (!save) break;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        *err = fmt_err("%s is not a directory", dir);
        return -1;
    }
    return 0;
}

store_t *store_open(const struct store_config *cfg, char **err)
{
    *err = NULL;
    if (!cfg || !cfg->data_dir || !*cfg->data_dir) {
        *err = fmt_err("DATA_DIR is not set");
        return NULL;
    }
    if (!cfg->credential_secret || !*cfg->credential_secret) {
        *err = fmt_err("ACCOUNT_CREDENTIAL_SECRET (or AUTH_TOKEN) is empty: secrets at rest "
                       "need a key");
        return NULL;
    }
    if (secrets_init() != 0) {
        *err = fmt_err("libsodium failed to initialise");
        return NULL;
    }
    if (sqlite3_threadsafe() == 0) {
        *err = fmt_err("SQLite was built without thread support");
        return NULL;
    }
    if (mkdir_p(cfg->data_dir, err) != 0) return NULL;

    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        *err = fmt_err("out of memory");
        return NULL;
    }
    s->retention_days = cfg->usage_retention_days;
    s->db_path = fmt_err("%s/metarelay.db", cfg->data_dir);
    if (!s->db_path) {
        free(s);
        *err = fmt_err("out of memory");
        return NULL;
    }
    struct stat sb;
    bool created = stat(s->db_path, &sb) != 0;

    sqlite3 *h = store_sqlite_open(s->db_path, err);
    if (!h) goto fail;
    /* The file holds sealed credentials and usage history: owner only. SQLite creates
     * the -wal and -shm files with the database file's mode. */
    if (created) chmod(s->db_path, 0600);

    if (store_migrate(h, err) != 0) goto fail;
    uint8_t salt[SECRETS_SALT_BYTES];
    if (load_salt(h, salt, err) != 0) goto fail;
    s->secrets = secrets_derive(cfg->credential_secret, salt, err);
    if (!s->secrets) goto fail;
    if (check_key(h, s->secrets, err) != 0) goto fail;
    sqlite3_close(h);
    h = NULL;

    s->queue = usage_queue_attach();
    if (!s->queue) {
        *err = fmt_err("another store is already open in this process");
        goto fail;
    }
    if (pthread_create(&s->writer, NULL, usage_writer_main, s) != 0) {
        *err = fmt_err("cannot start the store-writer thread");
        goto fail;
    }
    s->writer_started = true;
    log_info("store: %s ready (usage retention %u days)", s->db_path, s->retention_days);
    return s;

fail:
    if (!*err) *err = fmt_err("cannot open the store");
    sqlite3_close(h);
    store_close(s);
    return NULL;
}

void store_close(store_t *s)
{
    if (!s) return;
    if (s->queue) {
        /* No new pushes, then let the writer drain everything still queued and exit. */
        usage_queue_detach(s->queue);
        usage_queue_request_stop(s->queue);
        if (s->writer_started) pthread_join(s->writer, NULL);
        usage_queue_destroy(s->queue);
    }
    secrets_free(s->secrets);
    free(s->db_path);
    free(s);
}
