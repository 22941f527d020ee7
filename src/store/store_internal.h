/* store_internal.h — what the files of src/store share and nobody else may see: the
 * store and connection structs and small SQLite helpers. Not part of the store's API. */
#ifndef METARELAY_STORE_STORE_INTERNAL_H
#define METARELAY_STORE_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "base/secrets.h"
#include "store/repo.h"
#include "store/store.h"
#include "store/usage_queue.h"

/* Sealed columns are bound to (table, column, row id); these are the names used. */
#define SEAL_ACCOUNTS_TABLE     "accounts"
#define SEAL_ACCOUNTS_API_TOKEN "api_token"
#define SEAL_ACCOUNT_TOKENS     "account_tokens"

/* Sealed columns follow one convention: SQL column "<name>_enc" holds the value sealed
 * for (table, "<name>", row id). Every sealed column of every table, for rotate-secret
 * (store/rotate.c) — add new ones here. */
struct sealed_column {
    const char *table;
    const char *name;
};
extern const struct sealed_column store_sealed_columns[];
extern const size_t store_n_sealed_columns;

/* Seals `plain` (NULL → SQL NULL) into table.<name>_enc of row `id`. Inside the caller's
 * transaction. */
enum store_status db_seal_column(db_t *db, const char *table, const char *name, int64_t id,
                                 const char *plain);
/* Opens a sealed value of column `col` of the current row of `st` for (table, name, id):
 * a malloc'ed plaintext (wipe with secrets_free_str), NULL for SQL NULL or when it cannot
 * be opened (then `why` (may be NULL) is filled). */
char *db_open_column(db_t *db, sqlite3_stmt *st, int col, const char *table, const char *name,
                     int64_t id, char why[128]);

/* A fixed plaintext sealed at creation into meta.key_check: opening it proves the secret
 * is the right one. */
#define STORE_KEY_CHECK_PLAIN "metarelay key check v1"

struct store {
    char *db_path;
    secrets_t *secrets;
    unsigned retention_days;
    struct usage_queue *queue; /* attached to the process-wide push path */
    pthread_t writer;
    bool writer_started;
};

struct db {
    sqlite3 *h;
    const struct store *s;
};

/* Opens a connection with the pragmas every connection needs (WAL, synchronous=NORMAL,
 * foreign_keys, busy_timeout). NULL with *err malloc'ed on failure. */
sqlite3 *store_sqlite_open(const char *path, char **err);

/* Transactions. Configuration writes use db_begin_write (BEGIN IMMEDIATE: takes the write
 * lock up front, so a busy database waits on busy_timeout instead of failing mid-way). */
int db_begin_write(sqlite3 *h);
int db_begin_read(sqlite3 *h);
int db_commit(sqlite3 *h);
void db_rollback(sqlite3 *h);
/* Runs SQL without results; logs and returns -1 on error. */
int db_exec(sqlite3 *h, const char *sql);
/* sqlite3_prepare_v2 that logs failures; NULL on error. */
sqlite3_stmt *db_prepare(sqlite3 *h, const char *sql);
/* Maps a failed step's error to a repository status (CONFLICT for unique violations,
 * INVALID for other constraint violations, ERROR otherwise) and logs real errors. */
enum store_status db_step_error(sqlite3 *h, const char *what);
/* Column text duplicated with malloc (NULL for SQL NULL; "" stays ""). */
char *db_col_strdup(sqlite3_stmt *st, int col);
/* Binds a C string (NULL → SQL NULL), copied by SQLite. */
int db_bind_str(sqlite3_stmt *st, int idx, const char *s);

/* Applies every embedded migration the database lacks. 0, or -1 with *err malloc'ed. */
int store_migrate(sqlite3 *h, char **err);

/* ---- usage path (usage_queue.c / usage_writer.c / usage.c) ---- */

/* Rows per group commit, and the longest a queued row waits for its commit. */
#define USAGE_BATCH     512u
#define USAGE_COMMIT_MS 20u
/* Rows deleted per retention transaction (keeps each write lock short). */
#define RETENTION_BATCH 2000

/* Creates the queue and attaches it to usage_queue_push; fails (NULL) when another store
 * of this process already has it. */
struct usage_queue *usage_queue_attach(void);
/* Detaches the queue: new pushes fail; waits for pushes in progress to finish. The
 * records still queued stay readable through usage_queue_drain. */
void usage_queue_detach(struct usage_queue *q);
void usage_queue_destroy(struct usage_queue *q);
/* Moves up to `max` records into `out` (single consumer). Returns how many. */
size_t usage_queue_drain(struct usage_queue *q, struct usage_record *out, size_t max);
/* Blocks up to `timeout_ms` or until the queue holds `batch` records or stop is asked. */
void usage_queue_wait(struct usage_queue *q, unsigned timeout_ms, size_t batch);
void usage_queue_request_stop(struct usage_queue *q);
bool usage_queue_stop_requested(struct usage_queue *q);
/* Counts records that were accepted but then lost (a failed commit). */
void usage_queue_count_lost(size_t n);

/* The store-writer thread body (arg: struct store *). */
void *usage_writer_main(void *arg);
/* Inserts `n` records in one transaction with `ins` (prepared by usage_insert_prepare).
 * 0 or -1 (rolled back). */
int usage_insert_batch(sqlite3 *h, sqlite3_stmt *ins, const struct usage_record *r, size_t n);
sqlite3_stmt *usage_insert_prepare(sqlite3 *h);
/* Deletes at most `limit` usage rows created before `cutoff_ms`, in one transaction.
 * Returns rows deleted or -1. */
long usage_delete_batch(sqlite3 *h, int64_t cutoff_ms, int limit);
/* The cutoff for a retention of `days` (now minus days). */
int64_t usage_retention_cutoff(unsigned days);

#endif
