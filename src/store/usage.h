/* usage.h — reading the usage log (one row per upstream attempt) for the admin API.
 * Writing goes through the usage queue (usage_queue.h) and the store-writer thread;
 * deleting old rows is store_apply_retention (store.h). */
#ifndef METARELAY_STORE_USAGE_H
#define METARELAY_STORE_USAGE_H

#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"
#include "store/usage_queue.h"

enum usage_status_filter { USAGE_ANY = 0, USAGE_SUCCESS, USAGE_FAILED };

struct usage_filter {
    unsigned limit;  /* rows per page (the caller caps it) */
    unsigned offset; /* rows skipped, newest first */
    enum usage_status_filter status;
    const char *model; /* exact match on the requested model; NULL or "" = any */
};

struct usage_log {
    int64_t id;
    struct usage_record rec; /* strings NUL-terminated */
};

/* One page of rows, newest first (created_at, then id, descending), and the number of
 * rows matching the filter. *rows is malloc'ed (caller frees with free; NULL when none). */
enum store_status usage_logs_query(db_t *db, const struct usage_filter *f, struct usage_log **rows,
                                   size_t *n_rows, int64_t *total);

#endif
