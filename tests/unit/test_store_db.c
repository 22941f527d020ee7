/* test_store_db.c — the SQLite store on a fresh temporary DATA_DIR: migrations, re-open,
 * refusal of a newer schema and of a wrong credential secret, the repositories (sites,
 * accounts, models, settings), secrets never in clear in the files, and
 * store_load_channels. */
#include "store_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/accounts.h"
#include "store/models.h"
#include "store/settings.h"
#include "store/sites.h"
#include "store/store.h"

#define SECRET "test-credential-secret"
static const char TOKEN[] = "sk-live-CLEARTEXT-canary-0123456789abcdef";

struct fx {
    char *dir;
    store_t *s;
    db_t *db;
};

static store_t *open_store(const char *dir, const char *secret, char **err)
{
    struct store_config cfg = {
        .data_dir = dir, .credential_secret = secret, .usage_retention_days = 0};
    return store_open(&cfg, err);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir_make();
    assert_non_null(f->dir);
    char *err = NULL;
    f->s = open_store(f->dir, SECRET, &err);
    if (!f->s) fail_msg("store_open: %s", err);
    f->db = store_connect(f->s);
    assert_non_null(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    db_close(f->db);
    store_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Opens the file directly, as an operator with sqlite3 would. */
static sqlite3 *raw_open(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/metarelay.db", dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    return h;
}

static int64_t raw_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t add_site(db_t *db, const char *name, const char *url)
{
    struct site_fields sf = {.name = name, .url = url, .platform = "new-api"};
    struct site s;
    assert_int_equal(sites_create(db, &sf, &s), STORE_OK);
    int64_t id = s.id;
    site_clear(&s);
    return id;
}

static int64_t add_account(db_t *db, int64_t site_id, const char *token)
{
    struct account_fields af = {.site_id = site_id, .api_token = token};
    struct account a;
    assert_int_equal(accounts_create(db, &af, &a), STORE_OK);
    int64_t id = a.id;
    account_clear(&a);
    return id;
}

static void test_migrations_fresh_and_reopen(void **state)
{
    struct fx *f = *state;
    sqlite3 *h = raw_open(f->dir);
    int64_t n_known = raw_int(h, "SELECT count(*) FROM schema_migrations");
    assert_true(n_known >= 1);
    assert_int_equal(raw_int(h, "SELECT min(version) FROM schema_migrations"), 1);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                                "('meta','sites','accounts','account_models','usage_logs',"
                                "'settings')"),
                     6);
    assert_int_equal(raw_int(h, "SELECT length(value) FROM meta WHERE key='kdf_salt'"), 16);
    sqlite3_close(h);

    add_site(f->db, "kept", "https://kept.example.com");
    /* Re-open: idempotent, nothing applied twice, data kept. */
    db_close(f->db);
    store_close(f->s);
    char *err = NULL;
    f->s = open_store(f->dir, SECRET, &err);
    if (!f->s) fail_msg("reopen: %s", err);
    f->db = store_connect(f->s);
    h = raw_open(f->dir);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM schema_migrations"), n_known);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM sites"), 1);
    assert_string_equal("wal", (const char *)"wal"); /* journal mode checked below */
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static void test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    db_close(f->db);
    store_close(f->s);
    f->db = NULL;
    f->s = NULL;
    sqlite3 *h = raw_open(f->dir);
    assert_int_equal(sqlite3_exec(h,
                                  "INSERT INTO schema_migrations (version, name) VALUES "
                                  "(999, '999_future.sql')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    char *err = NULL;
    assert_null(open_store(f->dir, SECRET, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "999"));
    free(err);
    /* Put it back so teardown has a store. */
    h = raw_open(f->dir);
    sqlite3_exec(h, "DELETE FROM schema_migrations WHERE version = 999", NULL, NULL, NULL);
    sqlite3_close(h);
    f->s = open_store(f->dir, SECRET, &err);
    assert_non_null(f->s);
    f->db = store_connect(f->s);
}

static void test_wrong_secret_refused(void **state)
{
    struct fx *f = *state;
    int64_t site = add_site(f->db, "s", "https://s.example.com");
    add_account(f->db, site, TOKEN);
    db_close(f->db);
    store_close(f->s);
    char *err = NULL;
    f->s = open_store(f->dir, "some other secret", &err);
    assert_null(f->s);
    assert_non_null(err);
    assert_non_null(strstr(err, "ACCOUNT_CREDENTIAL_SECRET"));
    free(err);
    err = NULL;
    assert_null(open_store(f->dir, "", &err));
    assert_non_null(err);
    free(err);
    f->s = open_store(f->dir, SECRET, &err);
    assert_non_null(f->s);
    f->db = store_connect(f->s);
    struct account a;
    assert_int_equal(accounts_get(f->db, 1, &a), STORE_OK);
    assert_string_equal(a.api_token, TOKEN);
    account_clear(&a);
}

static void test_bad_data_dir(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(open_store("/proc/version/nope", SECRET, &err));
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_null(open_store(NULL, SECRET, &err));
    assert_non_null(err);
    free(err);
}

static void test_not_a_database(void **state)
{
    (void)state;
    char *dir = tmpdir_make();
    char path[600];
    snprintf(path, sizeof path, "%s/metarelay.db", dir);
    FILE *fp = fopen(path, "wb");
    for (int i = 0; i < 200; i++) fputs("this is not an SQLite database\n", fp);
    fclose(fp);
    char *err = NULL;
    assert_null(open_store(dir, SECRET, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "metarelay.db"));
    free(err);
    tmpdir_remove(dir);
}

static bool file_contains(const char *dir, const char *name, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = 0;
    char *p = file_read_all(path, &n);
    bool found = p && memmem(p, n, needle, strlen(needle)) != NULL;
    free(p);
    return found;
}

static void test_token_never_in_clear(void **state)
{
    struct fx *f = *state;
    int64_t site = add_site(f->db, "canary", "https://canary.example.com");
    int64_t acc = add_account(f->db, site, TOKEN);
    /* Update it too (a second sealed value, old pages in the WAL). */
    char token2[sizeof TOKEN];
    memcpy(token2, TOKEN, sizeof TOKEN);
    token2[0] = 'S';
    struct account_fields upd = {.api_token = token2};
    struct account a;
    assert_int_equal(accounts_update(f->db, acc, &upd, &a), STORE_OK);
    assert_string_equal(a.api_token, token2);
    account_clear(&a);
    /* The file names and their contents: the site name is in clear (so the check can
     * see plaintext), the tokens never. */
    assert_true(file_contains(f->dir, "metarelay.db-wal", "canary.example.com") ||
                file_contains(f->dir, "metarelay.db", "canary.example.com"));
    const char *files[] = {"metarelay.db", "metarelay.db-wal", "metarelay.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        assert_false(file_contains(f->dir, files[i], "CLEARTEXT-canary"));
        assert_false(file_contains(f->dir, files[i], TOKEN));
    }
    /* After a checkpoint and close, the main file neither. */
    db_close(f->db);
    store_close(f->s);
    assert_false(file_contains(f->dir, "metarelay.db", "CLEARTEXT-canary"));
    assert_false(file_contains(f->dir, "metarelay.db-wal", "CLEARTEXT-canary"));
    char *err = NULL;
    f->s = open_store(f->dir, SECRET, &err);
    f->db = store_connect(f->s);
    /* A ciphertext moved to another row does not open there. */
    int64_t acc2 = add_account(f->db, site, "sk-second-account-token-xyz");
    sqlite3 *h = raw_open(f->dir);
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE accounts SET api_token_enc = (SELECT api_token_enc FROM accounts WHERE id = "
             "%lld) WHERE id = %lld",
             (long long)acc, (long long)acc2);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(accounts_get(f->db, acc2, &a), STORE_OK);
    assert_null(a.api_token);
    assert_true(a.api_token_error[0] != 0);
    account_clear(&a);
}

static void test_sites_repository(void **state)
{
    struct fx *f = *state;
    struct site_fields sf = {.name = "One",
                             .url = "https://one.example.com",
                             .platform = "new-api",
                             .custom_headers = "{\"X-A\":\"1\"}"};
    struct site s;
    assert_int_equal(sites_create(f->db, &sf, &s), STORE_OK);
    assert_true(s.id > 0);
    assert_string_equal(s.status, "active");
    assert_null(s.proxy_url);
    assert_string_equal(s.custom_headers, "{\"X-A\":\"1\"}");
    assert_true(strlen(s.created_at) >= 20);
    int64_t id = s.id;
    site_clear(&s);
    /* duplicate (platform, url) */
    assert_int_equal(sites_create(f->db, &sf, NULL), STORE_CONFLICT);
    /* same url, other platform is fine */
    sf.platform = "one-api";
    assert_int_equal(sites_create(f->db, &sf, NULL), STORE_OK);
    /* bad status */
    sf.platform = "openai";
    sf.status = "paused";
    assert_int_equal(sites_create(f->db, &sf, NULL), STORE_INVALID);

    struct site_fields up = {
        .status = "disabled", .set_proxy_url = true, .proxy_url = "http://127.0.0.1:8080"};
    assert_int_equal(sites_update(f->db, id, &up, &s), STORE_OK);
    assert_string_equal(s.name, "One");
    assert_string_equal(s.status, "disabled");
    assert_string_equal(s.proxy_url, "http://127.0.0.1:8080");
    site_clear(&s);
    struct site_fields clear = {.set_proxy_url = true, .set_custom_headers = true};
    assert_int_equal(sites_update(f->db, id, &clear, &s), STORE_OK);
    assert_null(s.proxy_url);
    assert_null(s.custom_headers);
    site_clear(&s);
    /* update into a conflict */
    struct site_fields conflict = {.platform = "one-api"};
    assert_int_equal(sites_update(f->db, id, &conflict, NULL), STORE_CONFLICT);
    assert_int_equal(sites_update(f->db, 9999, &up, NULL), STORE_NOT_FOUND);
    assert_int_equal(sites_get(f->db, 9999, &s), STORE_NOT_FOUND);

    struct site *list;
    size_t n;
    assert_int_equal(sites_list(f->db, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, id);
    sites_free(list, n);

    /* delete cascades to accounts and models */
    int64_t acc = add_account(f->db, id, "sk-cascade-token-1234567890");
    const char *models[] = {"gpt-4o", "gpt-4o-mini"};
    assert_int_equal(account_models_replace(f->db, acc, models, 2), STORE_OK);
    assert_int_equal(sites_delete(f->db, id), STORE_OK);
    assert_int_equal(sites_delete(f->db, id), STORE_NOT_FOUND);
    struct account a;
    assert_int_equal(accounts_get(f->db, acc, &a), STORE_NOT_FOUND);
    sqlite3 *h = raw_open(f->dir);
    assert_int_equal(raw_int(h, "SELECT count(*) FROM account_models"), 0);
    sqlite3_close(h);
}

static void test_accounts_and_models(void **state)
{
    struct fx *f = *state;
    int64_t site = add_site(f->db, "A", "https://a.example.com");
    struct account_fields af = {.site_id = 4242, .api_token = "sk-x"};
    assert_int_equal(accounts_create(f->db, &af, NULL), STORE_INVALID); /* unknown site */
    af.site_id = site;
    af.status = "weird";
    assert_int_equal(accounts_create(f->db, &af, NULL), STORE_INVALID);
    af.status = NULL;
    af.username = "alice";
    struct account a;
    assert_int_equal(accounts_create(f->db, &af, &a), STORE_OK);
    assert_string_equal(a.username, "alice");
    assert_string_equal(a.api_token, "sk-x");
    assert_string_equal(a.site_name, "A");
    assert_string_equal(a.status, "active");
    int64_t id = a.id;
    account_clear(&a);

    struct account_fields up = {.status = "disabled", .set_username = true, .username = NULL};
    assert_int_equal(accounts_update(f->db, id, &up, &a), STORE_OK);
    assert_null(a.username);
    assert_string_equal(a.status, "disabled");
    assert_string_equal(a.api_token, "sk-x"); /* kept */
    account_clear(&a);
    assert_int_equal(accounts_update(f->db, 777, &up, NULL), STORE_NOT_FOUND);

    const char *models[] = {"b-model", "a-model", "b-model", ""};
    assert_int_equal(account_models_replace(f->db, id, models, 4), STORE_OK);
    struct account_model *ml;
    size_t n;
    assert_int_equal(account_models_list(f->db, id, &ml, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ml[0].model_name, "a-model");
    assert_true(ml[0].available);
    account_models_free(ml, n);
    const char *models2[] = {"c-model"};
    assert_int_equal(account_models_replace(f->db, id, models2, 1), STORE_OK);
    assert_int_equal(account_models_list(f->db, id, &ml, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ml[0].model_name, "c-model");
    account_models_free(ml, n);
    assert_int_equal(account_models_replace(f->db, 999, models2, 1), STORE_NOT_FOUND);

    struct account *list;
    assert_int_equal(accounts_list(f->db, 0, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    accounts_free(list, n);
    assert_int_equal(accounts_list(f->db, site + 1, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    accounts_free(list, n);

    assert_int_equal(accounts_delete(f->db, id), STORE_OK);
    assert_int_equal(accounts_delete(f->db, id), STORE_NOT_FOUND);
}

static void test_settings(void **state)
{
    struct fx *f = *state;
    char *v = NULL;
    assert_int_equal(settings_get(f->db, "routing", &v), STORE_NOT_FOUND);
    assert_int_equal(settings_set(f->db, "routing", "{\"strategy\":\"weighted\"}"), STORE_OK);
    assert_int_equal(settings_set(f->db, "routing", "{\"strategy\":\"round_robin\"}"), STORE_OK);
    assert_int_equal(settings_get(f->db, "routing", &v), STORE_OK);
    assert_string_equal(v, "{\"strategy\":\"round_robin\"}");
    free(v);
    assert_int_equal(settings_set(f->db, "bad", "{not json"), STORE_INVALID);
    assert_int_equal(settings_delete(f->db, "routing"), STORE_OK);
    assert_int_equal(settings_delete(f->db, "routing"), STORE_NOT_FOUND);
}

static void test_load_channels(void **state)
{
    struct fx *f = *state;
    int64_t s1 = add_site(f->db, "S1", "https://s1.example.com");
    int64_t s2 = add_site(f->db, "S2", "https://s2.example.com");
    struct site_fields px = {.set_proxy_url = true,
                             .proxy_url = "socks5://127.0.0.1:1080",
                             .set_custom_headers = true,
                             .custom_headers = "{\"X-K\":\"v\"}"};
    assert_int_equal(sites_update(f->db, s1, &px, NULL), STORE_OK);
    int64_t a1 = add_account(f->db, s1, "sk-channel-one-0000000000");
    int64_t a2 = add_account(f->db, s1, "sk-channel-two-0000000000");
    int64_t a3 = add_account(f->db, s2, "sk-channel-three-00000000");
    const char *m1[] = {"gpt-4o", "claude-3-5-sonnet"};
    assert_int_equal(account_models_replace(f->db, a1, m1, 2), STORE_OK);
    /* a2 disabled, s2 disabled: only a1 remains */
    struct account_fields dis = {.status = "disabled"};
    assert_int_equal(accounts_update(f->db, a2, &dis, NULL), STORE_OK);
    struct site_fields sdis = {.status = "disabled"};
    assert_int_equal(sites_update(f->db, s2, &sdis, NULL), STORE_OK);
    (void)a3;

    struct channel_row *rows;
    size_t n;
    assert_int_equal(store_load_channels(f->db, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].account_id, a1);
    assert_int_equal(rows[0].site_id, s1);
    assert_string_equal(rows[0].site_name, "S1");
    assert_string_equal(rows[0].platform, "new-api");
    assert_string_equal(rows[0].base_url, "https://s1.example.com");
    assert_string_equal(rows[0].proxy_url, "socks5://127.0.0.1:1080");
    assert_string_equal(rows[0].custom_headers, "{\"X-K\":\"v\"}");
    assert_string_equal(rows[0].api_key, "sk-channel-one-0000000000");
    assert_int_equal(rows[0].n_models, 2);
    assert_string_equal(rows[0].models[0], "claude-3-5-sonnet");
    assert_string_equal(rows[0].models[1], "gpt-4o");
    channel_rows_free(rows, n);

    /* Re-enable s2; a3 has no models but is a channel; a tampered token is left out. */
    struct site_fields sen = {.status = "active"};
    assert_int_equal(sites_update(f->db, s2, &sen, NULL), STORE_OK);
    sqlite3 *h = raw_open(f->dir);
    char sql[300];
    /* Keep key id 1 but change the last byte of the tag. */
    snprintf(sql, sizeof sql,
             "UPDATE accounts SET api_token_enc = substr(api_token_enc, 1, length(api_token_enc) - "
             "1) || CASE WHEN substr(api_token_enc, -1) = X'00' THEN X'01' ELSE X'00' END "
             "WHERE id = %lld",
             (long long)a1);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(store_load_channels(f->db, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].account_id, a3);
    assert_null(rows[0].proxy_url);
    assert_null(rows[0].custom_headers);
    assert_int_equal(rows[0].n_models, 0);
    channel_rows_free(rows, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_fresh_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret_refused, setup, teardown),
        cmocka_unit_test(test_bad_data_dir),
        cmocka_unit_test(test_not_a_database),
        cmocka_unit_test_setup_teardown(test_token_never_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sites_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_and_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_channels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
