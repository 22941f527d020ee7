/* channels.c — store_load_channels: what the routing snapshot is built from. One read
 * transaction, so the channel list and the model lists are one consistent picture. A
 * channel per usable account token (synced keys route /v1 traffic), the account's own
 * API token when it has none. A key that cannot be opened is left out (and logged),
 * never fatal: one bad row must not take every channel down. */
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

static int load_models(sqlite3_stmt *st, int64_t id, struct channel_row *c)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
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
#define USABLE_TOKEN "t.enabled = 1 AND t.value_status = 'ready' AND t.key_enc IS NOT NULL"
    sqlite3_stmt *st = db_prepare(
        db->h, "SELECT a.id, s.id, s.name, s.platform, s.url, s.proxy_url, s.custom_headers,"
               " t.key_enc, t.id, s.formats, a.unit_cost, a.balance, s.global_weight"
               " FROM account_tokens t JOIN accounts a ON a.id = t.account_id"
               " JOIN sites s ON s.id = a.site_id WHERE a.status = 'active'"
               " AND s.status = 'active' AND " USABLE_TOKEN " UNION ALL"
               " SELECT a.id, s.id, s.name, s.platform, s.url, s.proxy_url, s.custom_headers,"
               " a.api_token_enc, 0, s.formats, a.unit_cost, a.balance, s.global_weight"
               " FROM accounts a JOIN sites s ON s.id = a.site_id"
               " WHERE a.status = 'active' AND s.status = 'active'"
               " AND a.api_token_enc IS NOT NULL AND NOT EXISTS (SELECT 1 FROM account_tokens t"
               " WHERE t.account_id = a.id AND " USABLE_TOKEN ") ORDER BY 1, 9");
    sqlite3_stmt *mst = db_prepare(db->h, "SELECT model_name FROM account_models WHERE "
                                          "account_id = ? AND available = 1 ORDER BY model_name");
    sqlite3_stmt *tst = db_prepare(db->h, "SELECT model_name FROM token_models WHERE "
                                          "token_id = ? ORDER BY model_name");
    struct channel_row *out = NULL;
    size_t n = 0, cap = 0;
    int ret = -1, rc = SQLITE_ERROR;
    if (!st || !mst || !tst) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct channel_row c = {0};
        c.account_id = sqlite3_column_int64(st, 0);
        c.token_id = sqlite3_column_int64(st, 8);
        char why[128];
        c.api_key = c.token_id
                        ? db_open_column(db, st, 7, SEAL_ACCOUNT_TOKENS, "key", c.token_id, why)
                        : db_open_column(db, st, 7, SEAL_ACCOUNTS_TABLE, SEAL_ACCOUNTS_API_TOKEN,
                                         c.account_id, why);
        if (!c.api_key) {
            log_warn("store: account %lld (token %lld) left out of routing: its key cannot be "
                     "decrypted (%s)",
                     (long long)c.account_id, (long long)c.token_id, why);
            continue;
        }
        c.site_id = sqlite3_column_int64(st, 1);
        c.site_name = db_col_strdup(st, 2);
        c.platform = db_col_strdup(st, 3);
        c.base_url = db_col_strdup(st, 4);
        c.proxy_url = db_col_strdup(st, 5);
        c.custom_headers = db_col_strdup(st, 6);
        c.formats = db_col_strdup(st, 9);
        c.unit_cost = sqlite3_column_double(st, 10);
        c.balance = sqlite3_column_double(st, 11);
        c.site_weight =
            sqlite3_column_type(st, 12) == SQLITE_NULL ? 1.0 : sqlite3_column_double(st, 12);
        if (c.proxy_url && !*c.proxy_url) free(c.proxy_url), c.proxy_url = NULL;
        bool ok = c.api_key && c.site_name && c.platform && c.base_url;
        if (ok && c.token_id) ok = load_models(tst, c.token_id, &c) == 0;
        if (ok && c.n_models == 0) ok = load_models(mst, c.account_id, &c) == 0;
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
    sqlite3_finalize(tst);
    db_rollback(db->h); /* ends the read transaction */
    if (ret == 0) {
        *rows = out;
        *n_rows = n;
    } else {
        channel_rows_free(out, n);
    }
    return ret;
}
