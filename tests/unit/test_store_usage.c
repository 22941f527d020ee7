/* test_store_usage.c — the usage path: 10k pushed rows are all stored by store_close,
 * concurrent producers lose nothing they were told was accepted, pushes without an open
 * store are refused and counted, the paged query filters and orders, and retention
 * deletes exactly the old rows. */
#include "store_test_util.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/clock.h"
#include "store/sites.h"
#include "store/usage.h"

#define SECRET "usage-test-secret"

struct fx {
    char *dir;
    store_t *s;
};

static void reopen(struct fx *f)
{
    char *err = NULL;
    struct store_config cfg = {.data_dir = f->dir, .credential_secret = SECRET};
    f->s = store_open(&cfg, &err);
    if (!f->s) fail_msg("store_open: %s", err);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir_make();
    reopen(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void make_record(struct usage_record *r, int64_t created, int i, bool ok, const char *model)
{
    memset(r, 0, sizeof *r);
    r->created_at_ms = created;
    snprintf(r->request_id, sizeof r->request_id, "req-%d", i);
    snprintf(r->downstream_path, sizeof r->downstream_path, "/v1/chat/completions");
    snprintf(r->model_requested, sizeof r->model_requested, "%s", model);
    snprintf(r->model_actual, sizeof r->model_actual, "%s-actual", model);
    r->account_id = 3;
    r->site_id = 2;
    r->success = ok;
    r->http_status = ok ? 200 : 502;
    r->stream = i % 2;
    r->attempt = i % 3;
    r->first_byte_ms = ok ? 120 : -1;
    r->total_ms = 800;
    r->prompt_tokens = ok ? 10 : -1;
    r->completion_tokens = ok ? 20 : -1;
    r->total_tokens = ok ? 30 : -1;
    r->overhead_us = 150;
    snprintf(r->client_ip, sizeof r->client_ip, "127.0.0.1");
    if (!ok) snprintf(r->error, sizeof r->error, "upstream 502 after %d ms", i);
    if (!ok) snprintf(r->failure_kind, sizeof r->failure_kind, "server_error");
    r->route_id = 7;
    r->route_channel_id = 70 + i;
    r->has_cost = ok;
    r->estimated_cost = ok ? 0.25 * i : 0;
}

static int64_t count_rows(struct fx *f, enum usage_status_filter st, const char *model)
{
    db_t *db = store_connect(f->s);
    assert_non_null(db);
    struct usage_filter flt = {.limit = 1, .status = st, .model = model};
    struct usage_log *rows;
    size_t n;
    int64_t total;
    assert_int_equal(usage_logs_query(db, &flt, &rows, &n, &total), STORE_OK);
    free(rows);
    db_close(db);
    return total;
}

static void test_10k_rows_flushed_on_close(void **state)
{
    struct fx *f = *state;
    uint64_t dropped0 = usage_queue_dropped();
    int64_t now = clock_wall_ms();
    struct usage_record r;
    /* Faster than any disk: the bounded queue refuses (and counts) what it cannot hold;
     * the producer here waits a moment and tries again, so every row is pushed once. */
    uint64_t refused = 0;
    for (int i = 0; i < 10000; i++) {
        make_record(&r, now - 10000 + i, i, i % 10 != 0, i % 2 ? "gpt-4o" : "claude-3-5-sonnet");
        while (!usage_queue_push(&r)) {
            refused++;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    store_close(f->s); /* must commit everything queued */
    f->s = NULL;
    assert_int_equal(usage_queue_dropped(), dropped0 + refused); /* every refusal counted */
    reopen(f);
    assert_int_equal(count_rows(f, USAGE_ANY, NULL), 10000);
    assert_int_equal(count_rows(f, USAGE_FAILED, NULL), 1000);
    assert_int_equal(count_rows(f, USAGE_SUCCESS, NULL), 9000);
    assert_int_equal(count_rows(f, USAGE_ANY, "gpt-4o"), 5000);
    assert_int_equal(count_rows(f, USAGE_FAILED, "gpt-4o"), 0); /* failures are even i */
    assert_int_equal(count_rows(f, USAGE_ANY, "gpt"), 0);       /* exact match, not substring */
}

static void test_push_without_store_counted(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    f->s = NULL;
    uint64_t d0 = usage_queue_dropped();
    struct usage_record r;
    make_record(&r, 0, 1, true, "m");
    assert_false(usage_queue_push(&r));
    assert_false(usage_queue_push(NULL));
    assert_int_equal(usage_queue_dropped(), d0 + 2);
    reopen(f);
    /* Only one store may own the process's usage queue. */
    char *err = NULL;
    struct store_config cfg = {.data_dir = f->dir, .credential_secret = SECRET};
    assert_null(store_open(&cfg, &err));
    assert_non_null(err);
    free(err);
    assert_true(usage_queue_push(&r));
}

struct producer {
    int id, n, accepted;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct usage_record r;
    for (int i = 0; i < p->n; i++) {
        make_record(&r, clock_wall_ms(), p->id * 100000 + i, true, "concurrent");
        if (usage_queue_push(&r)) p->accepted++;
    }
    return NULL;
}

static void test_concurrent_producers(void **state)
{
    struct fx *f = *state;
    uint64_t d0 = usage_queue_dropped();
    enum { T = 4, N = 6000 };
    pthread_t th[T];
    struct producer p[T];
    for (int i = 0; i < T; i++) {
        p[i] = (struct producer){.id = i, .n = N};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    int accepted = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        accepted += p[i].accepted;
    }
    store_close(f->s);
    f->s = NULL;
    /* Every push is either stored or counted as dropped. */
    assert_int_equal((uint64_t)accepted + (usage_queue_dropped() - d0), T * N);
    reopen(f);
    assert_int_equal(count_rows(f, USAGE_ANY, "concurrent"), accepted);
    assert_true(accepted > 0);
}

static void test_query_fields_and_order(void **state)
{
    struct fx *f = *state;
    int64_t now = clock_wall_ms();
    struct usage_record r;
    for (int i = 0; i < 5; i++) {
        make_record(&r, now - 5000 + i * 1000, i, i != 2, "m1");
        assert_true(usage_queue_push(&r));
    }
    /* A record with every string field filled to the last byte (no NUL). */
    memset(&r, 'x', sizeof r);
    r.created_at_ms = now - 100000;
    r.success = true;
    r.stream = false;
    r.account_id = 0;
    r.site_id = -1;
    r.downstream_key_id = 0;
    r.first_byte_ms = -1;
    r.prompt_tokens = r.completion_tokens = r.total_tokens = -1;
    r.has_cost = false;
    r.route_id = r.route_channel_id = 0;
    assert_true(usage_queue_push(&r));
    store_close(f->s);
    reopen(f);
    db_t *db = store_connect(f->s);
    struct usage_filter flt = {.limit = 2, .offset = 0};
    struct usage_log *rows;
    size_t n;
    int64_t total;
    assert_int_equal(usage_logs_query(db, &flt, &rows, &n, &total), STORE_OK);
    assert_int_equal(total, 6);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].rec.request_id, "req-4"); /* newest first */
    assert_string_equal(rows[1].rec.request_id, "req-3");
    assert_int_equal(rows[0].rec.created_at_ms, now - 1000);
    assert_true(rows[0].rec.success);
    assert_int_equal(rows[0].rec.http_status, 200);
    assert_int_equal(rows[0].rec.total_tokens, 30);
    assert_int_equal(rows[0].rec.account_id, 3);
    assert_string_equal(rows[0].rec.model_actual, "m1-actual");
    assert_int_equal(rows[0].rec.route_id, 7);
    assert_int_equal(rows[0].rec.route_channel_id, 74);
    assert_true(rows[0].rec.has_cost);
    assert_true(rows[0].rec.estimated_cost > 0.99 && rows[0].rec.estimated_cost < 1.01);
    assert_string_equal(rows[0].rec.failure_kind, "");
    free(rows);
    flt.offset = 2;
    flt.limit = 10;
    flt.status = USAGE_FAILED;
    assert_int_equal(usage_logs_query(db, &flt, &rows, &n, &total), STORE_OK);
    assert_int_equal(total, 1);
    assert_int_equal(n, 0); /* offset past the one failure */
    free(rows);
    flt.offset = 0;
    assert_int_equal(usage_logs_query(db, &flt, &rows, &n, &total), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].rec.request_id, "req-2");
    assert_false(rows[0].rec.success);
    assert_int_equal(rows[0].rec.first_byte_ms, -1);
    assert_int_equal(rows[0].rec.prompt_tokens, -1);
    assert_string_equal(rows[0].rec.error, "upstream 502 after 2 ms");
    assert_string_equal(rows[0].rec.failure_kind, "server_error");
    assert_false(rows[0].rec.has_cost);
    free(rows);
    /* The unterminated record was stored with its strings cut at the field size. */
    flt = (struct usage_filter){.limit = 1, .offset = 5};
    assert_int_equal(usage_logs_query(db, &flt, &rows, &n, &total), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(rows[0].rec.request_id), sizeof r.request_id - 1);
    assert_int_equal(rows[0].rec.account_id, 0);
    assert_int_equal(rows[0].rec.site_id, 0);
    assert_int_equal(rows[0].rec.route_id, 0);
    assert_int_equal(strlen(rows[0].rec.failure_kind), sizeof r.failure_kind - 1);
    assert_false(rows[0].rec.has_cost);
    free(rows);
    db_close(db);
}

static void test_retention(void **state)
{
    struct fx *f = *state;
    int64_t now = clock_wall_ms();
    const int64_t day = 86400000;
    struct usage_record r;
    /* 4500 rows 40 days old (more than one delete batch), 30 rows 29 days old, 20 new. */
    for (int i = 0; i < 4500; i++) {
        make_record(&r, now - 40 * day + i, i, true, "old");
        assert_true(usage_queue_push(&r));
    }
    for (int i = 0; i < 30; i++) {
        make_record(&r, now - 29 * day, i, true, "recent");
        assert_true(usage_queue_push(&r));
    }
    for (int i = 0; i < 20; i++) {
        make_record(&r, now, i, true, "new");
        assert_true(usage_queue_push(&r));
    }
    store_close(f->s);
    reopen(f);
    db_t *db = store_connect(f->s);
    assert_int_equal(store_apply_retention(db, 0), 0); /* 0 = keep forever */
    assert_int_equal(store_apply_retention(db, 30), 4500);
    assert_int_equal(store_apply_retention(db, 30), 0);
    db_close(db);
    assert_int_equal(count_rows(f, USAGE_ANY, "old"), 0);
    assert_int_equal(count_rows(f, USAGE_ANY, "recent"), 30);
    assert_int_equal(count_rows(f, USAGE_ANY, "new"), 20);
    assert_int_equal(store_apply_retention(NULL, 30), -1);
}

/* Configuration writes on another connection while the writer group-commits usage rows:
 * BEGIN IMMEDIATE + busy_timeout means every write waits its turn, none fails busy. */
static void test_config_writes_during_usage_load(void **state)
{
    struct fx *f = *state;
    struct producer p = {.id = 9, .n = 20000};
    pthread_t th;
    pthread_create(&th, NULL, produce, &p);
    db_t *db = store_connect(f->s);
    for (int i = 0; i < 200; i++) {
        char url[64];
        snprintf(url, sizeof url, "https://s%d.example.com", i);
        struct site_fields sf = {.name = "load", .url = url, .platform = "openai"};
        assert_int_equal(sites_create(db, &sf, NULL), STORE_OK);
    }
    pthread_join(th, NULL);
    struct site *list;
    size_t n;
    assert_int_equal(sites_list(db, &list, &n), STORE_OK);
    assert_int_equal(n, 200);
    sites_free(list, n);
    db_close(db);
    store_close(f->s);
    reopen(f);
    assert_int_equal(count_rows(f, USAGE_ANY, "concurrent"), p.accepted);
}

/* The store-writer runs the retention by itself (first pass ~2 s after start). */
static void test_writer_runs_retention(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    char *err = NULL;
    struct store_config cfg = {
        .data_dir = f->dir, .credential_secret = SECRET, .usage_retention_days = 7};
    f->s = store_open(&cfg, &err);
    assert_non_null(f->s);
    int64_t now = clock_wall_ms();
    struct usage_record r;
    for (int i = 0; i < 2500; i++) {
        make_record(&r, now - 8 * 86400000LL - i, i, true, "stale");
        assert_true(usage_queue_push(&r));
    }
    make_record(&r, now, 1, true, "fresh");
    assert_true(usage_queue_push(&r));
    int64_t stale = -1;
    for (int tries = 0; tries < 100 && stale != 0; tries++) {
        usleep(100000);
        stale = count_rows(f, USAGE_ANY, "stale");
    }
    assert_int_equal(stale, 0);
    assert_int_equal(count_rows(f, USAGE_ANY, "fresh"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_10k_rows_flushed_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_without_store_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_producers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_fields_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_runs_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_writes_during_usage_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
