/* channels.c — store_load_channels: what the routing snapshot is built from. One read
 * transaction, so the channel list and the model lists are one consistent picture. An
 * account whose token cannot be opened is left out (and logged), never fatal: one bad row
 * must not take every channel down. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store/store_internal.h"

static void channel_clear(struct channel_row *c)
{
    free(c->site_name);
    free(c->platform);
    free(c->base_url);
    free(c->proxy_url);
    free(c->custom_headers);
    free(c->formats);
    secrets_free_str(c->api_key);
    for (size_t i = 0; i < c->n_models; i++) free(c->models[i]);
    free(c->models);
}

void channel_rows_free(struct channel_row *rows, size_t n_rows)
{
    if (!rows) return;
    for (size_t i = 0; i < n_rows; i++) channel_clear(&rows[i]);
    free(rows);
}

static int load_models(sqlite3_stmt *st, struct channel_row *c)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, c->account_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n_models == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nm = realloc(c->models, ncap * sizeof *nm);
            if (!nm) return -1;
            c->models = nm;
            cap = ncap;
        }
        char *name = db_col_strdup(st, 0);
        if (!name) return -1;
        c->models[c->n_models++] = name;
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_load_channels(db_t *db, struct channel_row **rows, size_t *n_rows)
{
    *rows = NULL;
    *n_rows = 0;
    if (!db) return -1;
    if (db_begin_read(db->h) != 0) return -1;
    sqlite3_stmt *st = db_prepare(
        db->h, "SELECT a.id, s.id, s.name, s.platform, s.url, s.proxy_url, s.custom_headers,"
               " a.api_token_enc, s.formats, a.unit_cost, a.balance, s.global_weight"
               " FROM accounts a JOIN sites s ON s.id = a.site_id"
               " WHERE a.status = 'active' AND s.status = 'active'"
               " AND a.api_token_enc IS NOT NULL ORDER BY a.id");
    sqlite3_stmt *mst = db_prepare(db->h, "SELECT model_name FROM account_models WHERE "
                                          "account_id = ? AND available = 1 ORDER BY model_name");
    struct channel_row *out = NULL;
    size_t n = 0, cap = 0;
    int ret = -1, rc = SQLITE_ERROR;
    if (!st || !mst) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct channel_row c = {0};
        c.account_id = sqlite3_column_int64(st, 0);
        struct buf key = BUF_INIT;
        char why[128];
        if (secrets_open(db->s->secrets, SEAL_ACCOUNTS_TABLE, SEAL_ACCOUNTS_API_TOKEN, c.account_id,
                         sqlite3_column_blob(st, 7), (size_t)sqlite3_column_bytes(st, 7), &key,
                         why) != 0) {
            log_warn("store: account %lld left out of routing: its API token cannot be "
                     "decrypted (%s)",
                     (long long)c.account_id, why);
            buf_free(&key);
            continue;
        }
        c.api_key = key.p;
        c.site_id = sqlite3_column_int64(st, 1);
        c.site_name = db_col_strdup(st, 2);
        c.platform = db_col_strdup(st, 3);
        c.base_url = db_col_strdup(st, 4);
        c.proxy_url = db_col_strdup(st, 5);
        c.custom_headers = db_col_strdup(st, 6);
        c.formats = db_col_strdup(st, 8);
        c.unit_cost = sqlite3_column_double(st, 9);
        c.balance = sqlite3_column_double(st, 10);
        c.site_weight =
            sqlite3_column_type(st, 11) == SQLITE_NULL ? 1.0 : sqlite3_column_double(st, 11);
        if (c.proxy_url && !*c.proxy_url) free(c.proxy_url), c.proxy_url = NULL;
        bool ok = c.api_key && c.site_name && c.platform && c.base_url && load_models(mst, &c) == 0;
        if (ok && n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct channel_row *nr = realloc(out, ncap * sizeof *nr);
            if (nr)
                out = nr, cap = ncap;
            else
                ok = false;
        }
        if (!ok) {
            channel_clear(&c);
            rc = SQLITE_NOMEM;
            break;
        }
        out[n++] = c;
    }
    if (rc == SQLITE_DONE)
        ret = 0;
    else
        log_error("store: loading channels failed: %s", sqlite3_errmsg(db->h));
out:
    sqlite3_finalize(st);
    sqlite3_finalize(mst);
    db_rollback(db->h); /* ends the read transaction */
    if (ret == 0) {
        *rows = out;
        *n_rows = n;
    } else {
        channel_rows_free(out, n);
    }
    return ret;
}
