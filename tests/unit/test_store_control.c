/* test_store_control.c — the control plane's store: account credentials sealed per
 * column, token sync (masked keys pending until known, a known key kept when the site
 * masks it later, tokens gone from the site removed, hand-added ones kept, a default),
 * channels built from synced tokens (the account's own key only when it has none),
 * check-in logs, events, job leases, and rotate-secret (everything still opens under the
 * new secret, the old one is refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/account_tokens.h"
#include "store/accounts.h"
#include "store/events.h"
#include "store/prices.h"
#include "store/sites.h"
#include "store/store.h"
#include "store_test_util.h"

#define SECRET "old-secret-for-the-control-test"

struct fx {
    char *dir;
    store_t *s;
    db_t *db;
    int64_t site, acct;
};

static store_t *open_store(const char *dir, const char *secret, char **err)
{
    struct store_config cfg = {.data_dir = dir, .credential_secret = secret};
    return store_open(&cfg, err);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir_make();
    char *err = NULL;
    f->s = open_store(f->dir, SECRET, &err);
    if (!f->s) fail_msg("store_open: %s", err);
    f->db = store_connect(f->s);
    struct site_fields sf = {.name = "relay", .url = "http://127.0.0.1:9", .platform = "new-api"};
    struct site s;
    assert_int_equal(sites_create(f->db, &sf, &s), STORE_OK);
    f->site = s.id;
    site_clear(&s);
    struct account_fields af = {
        .site_id = f->site, .username = "alice", .credential_mode = "session"};
    af.password = "pw-1", af.set_password = true;
    af.cookie = "session=abc", af.set_cookie = true;
    af.api_token = "sk-account-own-key-0123456789";
    af.user_id = "7", af.set_user_id = true;
    struct account a;
    assert_int_equal(accounts_create(f->db, &af, &a), STORE_OK);
    f->acct = a.id;
    assert_true(a.has_password && a.has_cookie && !a.has_totp);
    assert_string_equal(a.user_id, "7");
    assert_true(a.checkin_enabled);
    account_clear(&a);
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

static size_t channels_of(db_t *db, int64_t *token_ids, char keys[][64])
{
    struct channel_row *rows;
    size_t n;
    assert_int_equal(store_load_channels(db, &rows, &n), 0);
    for (size_t i = 0; i < n; i++) {
        token_ids[i] = rows[i].token_id;
        snprintf(keys[i], 64, "%s", rows[i].api_key);
    }
    channel_rows_free(rows, n);
    return n;
}

static void test_credentials(void **state)
{
    struct fx *f = *state;
    struct account_credentials c;
    assert_int_equal(accounts_get_credentials(f->db, f->acct, &c), STORE_OK);
    assert_string_equal(c.password, "pw-1");
    assert_string_equal(c.cookie, "session=abc");
    assert_string_equal(c.api_token, "sk-account-own-key-0123456789");
    assert_null(c.access_token);
    account_credentials_clear(&c);
    /* clearing one secret, setting another */
    struct account_fields u = {0};
    u.set_cookie = true;
    u.access_token = "tok", u.set_access_token = true;
    assert_int_equal(accounts_update(f->db, f->acct, &u, NULL), STORE_OK);
    assert_int_equal(accounts_get_credentials(f->db, f->acct, &c), STORE_OK);
    assert_null(c.cookie);
    assert_string_equal(c.access_token, "tok");
    account_credentials_clear(&c);
    assert_int_equal(accounts_set_status(f->db, f->acct, "expired", "wrong password"), STORE_OK);
    struct account a;
    assert_int_equal(accounts_get(f->db, f->acct, &a), STORE_OK);
    assert_string_equal(a.status, "expired");
    assert_string_equal(a.status_reason, "wrong password");
    account_clear(&a);
    struct account_balance_update b = {.balance = 10.5,
                                       .used = 0.5,
                                       .quota_per_unit = 500000,
                                       .raw_quota = 5250000,
                                       .currency = "USD"};
    assert_int_equal(accounts_record_balance(f->db, f->acct, &b), STORE_OK);
    assert_int_equal(accounts_get(f->db, f->acct, &a), STORE_OK);
    assert_true(a.balance == 10.5 && a.quota == 11.0 && a.quota_per_unit == 500000);
    assert_non_null(a.last_balance_refresh);
    account_clear(&a);
    assert_int_equal(accounts_record_balance(f->db, 999, &b), STORE_NOT_FOUND);
}

static void test_token_sync_and_channels(void **state)
{
    struct fx *f = *state;
    int64_t ids[8];
    char keys[8][64];
    /* no tokens: the account's own key is the channel */
    assert_int_equal(channels_of(f->db, ids, keys), 1);
    assert_int_equal(ids[0], 0);
    assert_string_equal(keys[0], "sk-account-own-key-0123456789");

    struct account_token_fields items[3] = {
        {.site_token_id = "1",
         .name = "a",
         .key = "sk-full-key-one-0123456789",
         .enabled = 1,
         .is_default = -1,
         .remain_quota = -1},
        {.site_token_id = "2",
         .name = "b",
         .masked = "abcd****wxyz",
         .enabled = 1,
         .is_default = -1,
         .remain_quota = -1},
        {.site_token_id = "3",
         .name = "c",
         .key = "sk-full-key-three-0123456789",
         .enabled = 0,
         .is_default = -1,
         .remain_quota = -1},
    };
    size_t added, updated, removed, pending;
    assert_int_equal(
        account_tokens_sync(f->db, f->acct, items, 3, &added, &updated, &removed, &pending),
        STORE_OK);
    assert_int_equal(added, 3);
    assert_int_equal(pending, 1);
    /* only the enabled token with a full key routes; the account's own key does not */
    assert_int_equal(channels_of(f->db, ids, keys), 1);
    assert_true(ids[0] > 0);
    assert_string_equal(keys[0], "sk-full-key-one-0123456789");

    struct account_token *list;
    size_t n;
    assert_int_equal(account_tokens_list(f->db, f->acct, &list, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_true(list[0].is_default);
    assert_string_equal(list[1].value_status, "masked_pending");
    assert_null(list[1].key);
    assert_string_equal(list[1].masked, "abcd****wxyz");
    int64_t pending_id = list[1].id;
    account_tokens_free(list, n);

    /* the user pastes the full value; the next sync only sees the mask again */
    struct account_token_fields paste = {
        .key = "sk-pasted-full-0123456789", .enabled = -1, .is_default = -1, .remain_quota = -1};
    assert_int_equal(account_tokens_update(f->db, pending_id, &paste, NULL), STORE_OK);
    /* a manual token survives syncs; token 3 disappears from the site */
    struct account_token_fields manual = {.account_id = f->acct,
                                          .name = "mine",
                                          .key = "sk-manual-0123456789",
                                          .enabled = 1,
                                          .is_default = -1,
                                          .remain_quota = -1};
    assert_int_equal(account_tokens_create(f->db, &manual, NULL), STORE_OK);
    assert_int_equal(
        account_tokens_sync(f->db, f->acct, items, 2, &added, &updated, &removed, &pending),
        STORE_OK);
    assert_int_equal(added, 0);
    assert_int_equal(removed, 1);
    assert_int_equal(pending, 0);
    struct account_token t;
    assert_int_equal(account_tokens_get(f->db, pending_id, &t), STORE_OK);
    assert_string_equal(t.key, "sk-pasted-full-0123456789");
    assert_string_equal(t.value_status, "ready");
    account_token_clear(&t);
    assert_int_equal(channels_of(f->db, ids, keys), 3);
    /* models per token feed its channel */
    const char *names[] = {"gpt-4o-mini"};
    assert_int_equal(token_models_replace(f->db, pending_id, names, 1), STORE_OK);
    struct channel_row *rows;
    assert_int_equal(store_load_channels(f->db, &rows, &n), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (rows[i].token_id == pending_id) {
            assert_int_equal(rows[i].n_models, 1);
            assert_string_equal(rows[i].models[0], "gpt-4o-mini");
            seen = true;
        }
    assert_true(seen);
    channel_rows_free(rows, n);
    assert_int_equal(
        account_tokens_create(
            f->db, &(struct account_token_fields){.account_id = 999, .key = "sk-x"}, NULL),
        STORE_INVALID);
}

static void test_logs_events_leases(void **state)
{
    struct fx *f = *state;
    bool done;
    assert_int_equal(checkin_done_on(f->db, f->acct, "2024-05-01", &done), STORE_OK);
    assert_false(done);
    assert_int_equal(checkin_logs_add(f->db, f->acct, "success", "ok", 0.6, "2024-05-01"),
                     STORE_OK);
    assert_int_equal(checkin_logs_add(f->db, f->acct, "skipped", "again", -1, "2024-05-01"),
                     STORE_OK);
    assert_int_equal(checkin_done_on(f->db, f->acct, "2024-05-01", &done), STORE_OK);
    assert_true(done);
    assert_int_equal(checkin_logs_add(f->db, f->acct, "bogus", "x", -1, "2024-05-01"),
                     STORE_INVALID);
    struct checkin_log *l;
    size_t n;
    int64_t total;
    assert_int_equal(checkin_logs_list(f->db, f->acct, 10, 0, &l, &n, &total), STORE_OK);
    assert_int_equal(total, 2);
    assert_string_equal(l[0].status, "skipped");
    assert_true(l[0].reward < 0 && l[1].reward > 0.59);
    checkin_logs_free(l, n);

    assert_int_equal(
        events_add(f->db, "status", "error", "Account expired", "why", f->acct, "account"),
        STORE_OK);
    assert_int_equal(events_add(f->db, "checkin", NULL, "Check-in", "ok", f->acct, "account"),
                     STORE_OK);
    struct event *ev;
    assert_int_equal(events_list(f->db, "status", 0, 10, 0, &ev, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].level, "error");
    events_free(ev, n);
    assert_int_equal(events_add(f->db, "x", "fatal", "t", "m", 0, NULL), STORE_INVALID);

    bool got;
    assert_int_equal(job_lease_acquire(f->db, "cron:checkin", "node-a", 60000, &got), STORE_OK);
    assert_true(got);
    assert_int_equal(job_lease_acquire(f->db, "cron:checkin", "node-b", 60000, &got), STORE_OK);
    assert_false(got);
    assert_int_equal(job_lease_acquire(f->db, "cron:checkin", "node-a", 60000, &got), STORE_OK);
    assert_true(got);
    assert_int_equal(job_lease_release(f->db, "cron:checkin", "node-a"), STORE_OK);
    assert_int_equal(job_lease_acquire(f->db, "cron:checkin", "node-b", -1, &got), STORE_OK);
    assert_true(got);
    /* an expired lease (ttl -1 ms) is taken over */
    assert_int_equal(job_lease_acquire(f->db, "cron:checkin", "node-a", 60000, &got), STORE_OK);
    assert_true(got);
}

static void test_rotate_secret(void **state)
{
    struct fx *f = *state;
    struct account_token_fields tok = {.account_id = f->acct,
                                       .name = "k",
                                       .key = "sk-rotate-me-0123456789",
                                       .enabled = 1,
                                       .is_default = -1,
                                       .remain_quota = -1};
    struct account_token t;
    assert_int_equal(account_tokens_create(f->db, &tok, &t), STORE_OK);
    int64_t tid = t.id;
    account_token_clear(&t);
    db_close(f->db);
    store_close(f->s);
    f->db = NULL, f->s = NULL;

    struct store_config cfg = {.data_dir = f->dir, .credential_secret = "not-the-secret"};
    char *err = NULL;
    size_t n = 0;
    assert_int_equal(store_rotate_secret(&cfg, "new-secret", &n, &err), -1);
    assert_non_null(err);
    free(err);
    cfg.credential_secret = SECRET;
    assert_int_equal(store_rotate_secret(&cfg, "new-secret-for-the-control-test", &n, &err), 0);
    assert_int_equal(n, 4); /* api token, password, cookie, one account token */

    assert_null(open_store(f->dir, SECRET, &err)); /* the old secret no longer opens it */
    free(err);
    f->s = open_store(f->dir, "new-secret-for-the-control-test", &err);
    if (!f->s) fail_msg("%s", err);
    f->db = store_connect(f->s);
    struct account_credentials c;
    assert_int_equal(accounts_get_credentials(f->db, f->acct, &c), STORE_OK);
    assert_null(c.error);
    assert_string_equal(c.password, "pw-1");
    assert_string_equal(c.api_token, "sk-account-own-key-0123456789");
    account_credentials_clear(&c);
    assert_int_equal(account_tokens_get(f->db, tid, &t), STORE_OK);
    assert_string_equal(t.key, "sk-rotate-me-0123456789");
    account_token_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_sync_and_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_events_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_secret, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
