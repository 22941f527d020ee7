/* test_admin_routes.c — /api/routes, /api/routes/:id/channels, /api/channels/:id,
 * cooldown clear, rebuild and the decision API against a real SQLite store in a temporary
 * directory, with the snapshot built from it as the control side does. */
#include "store_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "admin/admin_api.h"
#include "base/clock.h"
#include "control/snapshot_builder.h"
#include "routing/select.h"
#include "store/models.h"
#include "store/prices.h"

struct fx {
    char *dir;
    store_t *s;
    db_t *db;
    struct admin_ctx ctx;
    int routing_changes;
    int64_t acct1, acct2;
};

static void on_routing_changed(void *arg)
{
    ((struct fx *)arg)->routing_changes++;
}

static json_t *call(struct fx *f, const char *method, const char *path_and_query, const char *body,
                    int *status)
{
    const char *q = strchr(path_and_query, '?');
    struct admin_request req = {
        .method = method,
        .path = {path_and_query, q ? (size_t)(q - path_and_query) : strlen(path_and_query)},
        .query = q ? slice_from(q + 1) : SLICE_NULL,
        .body = body ? slice_from(body) : SLICE_NULL,
    };
    struct admin_response resp;
    admin_api_handle(&f->ctx, &req, &resp);
    *status = resp.status;
    json_t *j = json_loadb(resp.body.p, resp.body.n, JSON_DECODE_ANY, NULL);
    if (!j) fail_msg("answer is not JSON: %.*s", (int)resp.body.n, resp.body.p);
    buf_free(&resp.body);
    return j;
}

static int64_t create_id(struct fx *f, const char *path, const char *body)
{
    int st;
    json_t *j = call(f, "POST", path, body, &st);
    if (st != 200) fail_msg("POST %s → %d: %s", path, st, json_dumps(j, 0));
    int64_t id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    return id;
}

/* Publishes a snapshot from the store, as the control loop does after a change. */
static void publish(struct fx *f)
{
    struct routing_snapshot *s = snapshot_load(f->db, 1);
    assert_non_null(s);
    snapshot_set_latest(s);
    snapshot_free_retired();
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir_make();
    char *err = NULL;
    struct store_config cfg = {.data_dir = f->dir, .credential_secret = "routes-test-secret"};
    f->s = store_open(&cfg, &err);
    if (!f->s) fail_msg("store_open: %s", err);
    f->db = store_connect(f->s);
    f->ctx = (struct admin_ctx){
        .db = f->db, .routing_changed = on_routing_changed, .routing_changed_arg = f};
    int64_t s1 =
        create_id(f, "/api/sites",
                  "{\"name\":\"one\",\"url\":\"http://127.0.0.1:9\",\"platform\":\"openai\"}");
    int64_t s2 =
        create_id(f, "/api/sites",
                  "{\"name\":\"two\",\"url\":\"http://127.0.0.1:10\",\"platform\":\"openai\"}");
    char body[128];
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"apiToken\":\"sk-one-123456\"}", (long long)s1);
    f->acct1 = create_id(f, "/api/accounts", body);
    snprintf(body, sizeof body, "{\"siteId\":%lld,\"apiToken\":\"sk-two-123456\"}", (long long)s2);
    f->acct2 = create_id(f, "/api/accounts", body);
    const char *m1[] = {"gpt-4o", "claude-3-opus"};
    const char *m2[] = {"gpt-4o"};
    assert_int_equal(account_models_replace(f->db, f->acct1, m1, 2), STORE_OK);
    assert_int_equal(account_models_replace(f->db, f->acct2, m2, 1), STORE_OK);
    f->routing_changes = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    snapshot_set_latest(NULL);
    snapshot_free_retired();
    db_close(f->db);
    store_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    routing_thread_cleanup();
    health_registry_free();
    return 0;
}

static void test_route_crud(void **state)
{
    struct fx *f = *state;
    int st;
    char body[512];
    /* create a glob route with a mapping */
    json_t *j = call(
        f, "POST", "/api/routes",
        "{\"modelPattern\":\"claude-*\",\"displayName\":\"Claude\","
        "\"routingStrategy\":\"round_robin\",\"modelMapping\":{\"claude-x\":\"claude-3-opus\"}}",
        &st);
    assert_int_equal(st, 200);
    int64_t rid = json_integer_value(json_object_get(j, "id"));
    assert_true(rid > 0);
    assert_string_equal(json_string_value(json_object_get(j, "patternKind")), "glob");
    assert_string_equal(json_string_value(json_object_get(j, "routingStrategy")), "round_robin");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "modelMapping"), "claude-x")),
        "claude-3-opus");
    json_decref(j);
    assert_int_equal(f->routing_changes, 1);

    /* add channels */
    char path[64];
    snprintf(path, sizeof path, "/api/routes/%lld/channels", (long long)rid);
    snprintf(body, sizeof body,
             "{\"accountId\":%lld,\"sourceModel\":\"claude-3-opus\",\"priority\":1,\"weight\":30}",
             (long long)f->acct1);
    j = call(f, "POST", path, body, &st);
    assert_int_equal(st, 200);
    int64_t cid = json_integer_value(json_object_get(j, "id"));
    assert_int_equal(json_integer_value(json_object_get(j, "weight")), 30);
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 1);
    json_decref(j);
    snprintf(body, sizeof body, "{\"accountId\":%lld}", (long long)f->acct2);
    j = call(f, "POST", path, body, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "weight")), 10); /* default */
    json_decref(j);
    j = call(f, "GET", path, NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);

    /* edit and delete a channel */
    snprintf(path, sizeof path, "/api/channels/%lld", (long long)cid);
    j = call(f, "PUT", path, "{\"weight\":5,\"enabled\":false}", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "weight")), 5);
    assert_true(json_is_false(json_object_get(j, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 1); /* kept */
    json_decref(j);

    /* the list has the user route and the automatic ones */
    publish(f);
    j = call(f, "GET", "/api/routes", NULL, &st);
    assert_int_equal(st, 200);
    size_t autos = 0, users = 0;
    size_t i;
    json_t *r;
    json_array_foreach(j, i, r)
    {
        if (json_is_true(json_object_get(r, "automatic")))
            autos++;
        else
            users++;
    }
    assert_int_equal(users, 1);
    assert_int_equal(autos, 2); /* gpt-4o, claude-3-opus */
    json_decref(j);

    /* update the route, then delete the channel and the route */
    snprintf(path, sizeof path, "/api/routes/%lld", (long long)rid);
    j = call(f, "PUT", path, "{\"enabled\":false,\"displayName\":null}", &st);
    assert_int_equal(st, 200);
    assert_true(json_is_false(json_object_get(j, "enabled")));
    assert_true(json_is_null(json_object_get(j, "displayName")));
    assert_string_equal(json_string_value(json_object_get(j, "modelPattern")), "claude-*");
    json_decref(j);
    snprintf(path, sizeof path, "/api/channels/%lld", (long long)cid);
    j = call(f, "DELETE", path, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = call(f, "DELETE", path, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
    snprintf(path, sizeof path, "/api/routes/%lld", (long long)rid);
    j = call(f, "DELETE", path, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = call(f, "GET", path, NULL, &st);
    assert_int_equal(st, 404);
    json_decref(j);
}

static void test_route_errors(void **state)
{
    struct fx *f = *state;
    int st;
    struct {
        const char *method, *path, *body;
        int status;
        const char *needle;
    } cases[] = {
        {"POST", "/api/routes", "{}", 400, "modelPattern is required"},
        {"POST", "/api/routes", "{\"modelPattern\":\"re:(a)\\\\1\"}", 400, "backreference"},
        {"POST", "/api/routes", "{\"modelPattern\":\"re:^(unclosed\"}", 400, "offset"},
        {"POST", "/api/routes", "{\"modelPattern\":\"x\",\"routingStrategy\":\"fastest\"}", 400,
         "routingStrategy"},
        {"POST", "/api/routes", "{\"modelPattern\":\"x\",\"modelMapping\":[1]}", 400,
         "modelMapping"},
        {"POST", "/api/routes", "{\"modelPattern\":\"x\",\"enabled\":\"yes\"}", 400, "enabled"},
        {"POST", "/api/routes", "{\"routeMode\":\"explicit_group\",\"displayName\":\"g\"}", 400,
         "sourceRouteIds"},
        {"POST", "/api/routes",
         "{\"routeMode\":\"explicit_group\",\"displayName\":\"g\",\"sourceRouteIds\":[999]}", 400,
         "unknown source"},
        {"POST", "/api/routes", "{\"modelPattern\":", 400, "invalid JSON"},
        {"PUT", "/api/routes/999", "{\"enabled\":true}", 404, "not found"},
        {"DELETE", "/api/routes/999", NULL, 404, "not found"},
        {"POST", "/api/routes/999/channels", "{\"accountId\":1}", 404, "not found"},
        {"GET", "/api/routes/999/channels", NULL, 404, "not found"},
        {"PATCH", "/api/routes", "{}", 405, "not allowed"},
        {"GET", "/api/routes/decision", NULL, 400, "model"},
        {"POST", "/api/routes/999/cooldown/clear", NULL, 404, "not found"},
        {"PUT", "/api/channels/999", "{\"weight\":1}", 404, "not found"},
        {"GET", "/api/channels/1", NULL, 405, "not allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = call(f, cases[i].method, cases[i].path, cases[i].body, &st);
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (st != cases[i].status || !msg || !strstr(msg, cases[i].needle))
            fail_msg("%s %s %s → %d %s", cases[i].method, cases[i].path,
                     cases[i].body ? cases[i].body : "", st, msg ? msg : "(no message)");
        json_decref(j);
    }
    /* channel validation */
    int64_t rid = create_id(f, "/api/routes", "{\"modelPattern\":\"exact-model\"}");
    char path[64];
    snprintf(path, sizeof path, "/api/routes/%lld/channels", (long long)rid);
    const char *bad[] = {"{}",
                         "{\"accountId\":-1}",
                         "{\"accountId\":424242}",
                         "{\"accountId\":1,\"weight\":-5}",
                         "{\"accountId\":1,\"weight\":\"ten\"}",
                         "{\"accountId\":1,\"priority\":1.5}",
                         "{\"accountId\":1,\"sourceModel\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = call(f, "POST", path, bad[i], &st);
        if (st != 400) fail_msg("POST %s %s → %d", path, bad[i], st);
        json_decref(j);
    }
    assert_int_equal(f->routing_changes, 1); /* only the valid route creation */
}

static void test_decision_and_cooldown(void **state)
{
    struct fx *f = *state;
    int st;
    char body[256];
    /* a user route over both accounts: account 1 three times the weight of account 2 */
    int64_t rid = create_id(f, "/api/routes", "{\"modelPattern\":\"team-*\"}");
    char path[64];
    snprintf(path, sizeof path, "/api/routes/%lld/channels", (long long)rid);
    snprintf(body, sizeof body, "{\"accountId\":%lld,\"sourceModel\":\"gpt-4o\",\"weight\":30}",
             (long long)f->acct1);
    create_id(f, path, body);
    snprintf(body, sizeof body, "{\"accountId\":%lld,\"sourceModel\":\"gpt-4o\",\"weight\":10}",
             (long long)f->acct2);
    create_id(f, path, body);
    publish(f);

    json_t *j = call(f, "GET", "/api/routes/decision?model=team-alpha", NULL, &st);
    assert_int_equal(st, 200);
    json_t *route = json_object_get(j, "route");
    assert_int_equal(json_integer_value(json_object_get(route, "id")), rid);
    assert_string_equal(json_string_value(json_object_get(route, "matchedBy")), "pattern");
    json_t *cands = json_object_get(j, "candidates");
    assert_int_equal(json_array_size(cands), 2);
    double p1 = 0, p2 = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cands, i, c)
    {
        assert_string_equal(json_string_value(json_object_get(c, "upstreamModel")), "gpt-4o");
        assert_string_equal(json_string_value(json_object_get(c, "state")), "healthy");
        assert_true(json_array_size(json_object_get(c, "reasons")) > 0);
        if (json_integer_value(json_object_get(c, "accountId")) == f->acct1)
            p1 = json_real_value(json_object_get(c, "probability"));
        else
            p2 = json_real_value(json_object_get(c, "probability"));
    }
    assert_true(p1 > 0.74 && p1 < 0.76);
    assert_true(p2 > 0.24 && p2 < 0.26);
    json_decref(j);

    /* a failure cools account 1's channel: excluded, with its reason */
    struct routing_snapshot *s = snapshot_acquire_latest();
    const struct route *live = snapshot_route_by_id(s, rid);
    struct channel_health *h1 = NULL;
    for (size_t k = 0; k < live->n_channels; k++)
        if (s->channels[live->channels[k].channel].account_id == f->acct1)
            h1 = live->channels[k].health;
    assert_non_null(h1);
    health_record_failure(h1, clock_mono_ns(), HEALTH_FAIL_SERVER_ERROR, 0);
    snapshot_release(s);
    j = call(f, "GET", "/api/routes/decision?model=team-alpha", NULL, &st);
    cands = json_object_get(j, "candidates");
    json_array_foreach(cands, i, c)
    {
        if (json_integer_value(json_object_get(c, "accountId")) != f->acct1) continue;
        assert_true(json_is_true(json_object_get(c, "excluded")));
        assert_string_equal(json_string_value(json_object_get(c, "state")), "unhealthy");
        json_t *reasons = json_object_get(c, "reasons");
        const char *first = json_string_value(json_array_get(reasons, 0));
        assert_non_null(strstr(first, "cooling down"));
        assert_true(json_real_value(json_object_get(c, "probability")) == 0);
    }
    json_decref(j);

    /* cooldown clear brings it back */
    snprintf(path, sizeof path, "/api/routes/%lld/cooldown/clear", (long long)rid);
    j = call(f, "POST", path, NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "cleared")), 2);
    json_decref(j);
    assert_false(health_is_cooling(h1, clock_mono_ns()));

    /* an unknown model: no route, an explanation, still 200 */
    j = call(f, "GET", "/api/routes/decision?model=nothing-serves-this", NULL, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_null(json_object_get(j, "route")));
    json_decref(j);
    /* an automatic route is explained too */
    j = call(f, "GET", "/api/routes/decision?model=gpt-4o", NULL, &st);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "route"), "matchedBy")), "automatic");
    assert_int_equal(json_array_size(json_object_get(j, "candidates")), 2);
    json_decref(j);

    /* rebuild asks the control side */
    int before = f->routing_changes;
    j = call(f, "POST", "/api/routes/rebuild", NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    assert_int_equal(f->routing_changes, before + 1);
}

static void test_decision_pattern_error(void **state)
{
    struct fx *f = *state;
    int st;
    int64_t rid = create_id(f, "/api/routes", "{\"modelPattern\":\"re:^(a|aa)+$\"}");
    char path[64], body[64];
    snprintf(path, sizeof path, "/api/routes/%lld/channels", (long long)rid);
    snprintf(body, sizeof body, "{\"accountId\":%lld}", (long long)f->acct1);
    create_id(f, path, body);
    publish(f);
    char url[128] = "/api/routes/decision?model=";
    size_t n = strlen(url);
    memset(url + n, 'a', 40);
    url[n + 40] = '!';
    url[n + 41] = 0;
    json_t *j = call(f, "GET", url, NULL, &st);
    assert_int_equal(st, 200);
    const char *pe = json_string_value(json_object_get(j, "patternError"));
    assert_non_null(pe);
    assert_non_null(strstr(pe, "match limit"));
    json_decref(j);
    /* the route list shows the error count */
    j = call(f, "GET", "/api/routes", NULL, &st);
    size_t i;
    json_t *r;
    bool seen = false;
    json_array_foreach(j, i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) == rid) {
            assert_true(json_integer_value(json_object_get(r, "matchErrors")) >= 1);
            seen = true;
        }
    }
    assert_true(seen);
    json_decref(j);
}

static void test_group_and_alias(void **state)
{
    struct fx *f = *state;
    int st;
    int64_t a =
        create_id(f, "/api/routes", "{\"modelPattern\":\"gpt-4o\",\"displayName\":\"smart\"}");
    int64_t b = create_id(f, "/api/routes", "{\"modelPattern\":\"claude-3-opus\"}");
    char body[128];
    snprintf(body, sizeof body,
             "{\"routeMode\":\"explicit_group\",\"displayName\":\"best\",\"sourceRouteIds\":[%lld,%"
             "lld]}",
             (long long)a, (long long)b);
    json_t *j = call(f, "POST", "/api/routes", body, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "patternKind")), "group");
    assert_int_equal(json_array_size(json_object_get(j, "sourceRouteIds")), 2);
    json_decref(j);
    publish(f);
    /* the group spans gpt-4o's two channels and claude-3-opus's one */
    j = call(f, "GET", "/api/routes/decision?model=best", NULL, &st);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "route"), "matchedBy")), "alias");
    json_t *cands = json_object_get(j, "candidates");
    assert_int_equal(json_array_size(cands), 3);
    size_t i;
    json_t *c;
    int opus = 0;
    json_array_foreach(cands, i, c) opus +=
        strcmp(json_string_value(json_object_get(c, "upstreamModel")), "claude-3-opus") == 0;
    assert_int_equal(opus, 1);
    json_decref(j);
    /* the alias of an exact route asks upstream for the real model */
    j = call(f, "GET", "/api/routes/decision?model=smart", NULL, &st);
    cands = json_object_get(j, "candidates");
    assert_int_equal(json_array_size(cands), 2);
    json_array_foreach(cands, i, c)
        assert_string_equal(json_string_value(json_object_get(c, "upstreamModel")), "gpt-4o");
    json_decref(j);
}

/* The cost inputs of the weighted strategy: model prices from the store become unit costs
 * ((input + output) / 2 per 1M tokens) over the manual unitCost of PUT /api/accounts;
 * globalWeight of a site is validated, stored and shown. */
static json_t *candidate_of(json_t *decision, int64_t account)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(decision, "candidates"), i, c)
    {
        if (json_integer_value(json_object_get(c, "accountId")) == account) return c;
    }
    return NULL;
}

static void test_costs_from_prices_and_accounts(void **state)
{
    struct fx *f = *state;
    int st;
    char path[64];
    snprintf(path, sizeof path, "/api/accounts/%lld", (long long)f->acct2);
    json_t *j = call(f, "PUT", path, "{\"unitCost\":-1}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(f, "PUT", path, "{\"unitCost\":\"cheap\"}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(f, "PUT", path, "{\"unitCost\":7.5}", &st);
    assert_int_equal(st, 200);
    assert_true(json_real_value(json_object_get(j, "unitCost")) == 7.5);
    json_decref(j);
    struct model_price p[] = {
        {.model = "gpt-4o", .input_per_million = 2.5, .output_per_million = 10, .per_call = -1},
        {.model = "claude-3-opus",
         .input_per_million = -1,
         .output_per_million = -1,
         .per_call = 0.2},
    };
    assert_int_equal(model_prices_replace(f->db, f->acct1, 0, p, 2), STORE_OK);
    publish(f);
    j = call(f, "GET", "/api/routes/decision?model=gpt-4o", NULL, &st);
    assert_int_equal(st, 200);
    json_t *c1 = candidate_of(j, f->acct1), *c2 = candidate_of(j, f->acct2);
    assert_non_null(c1);
    assert_non_null(c2);
    assert_string_equal(json_string_value(json_object_get(c1, "costSource")), "price");
    assert_true(json_real_value(json_object_get(c1, "unitCost")) == 6.25);
    assert_string_equal(json_string_value(json_object_get(c2, "costSource")), "manual");
    assert_true(json_real_value(json_object_get(c2, "unitCost")) == 7.5);
    /* the cheaper one is preferred */
    assert_true(json_real_value(json_object_get(c1, "probability")) >
                json_real_value(json_object_get(c2, "probability")));
    json_decref(j);
    j = call(f, "GET", "/api/routes/decision?model=claude-3-opus", NULL, &st);
    c1 = candidate_of(j, f->acct1);
    assert_true(json_real_value(json_object_get(c1, "unitCost")) == 0.2);
    json_decref(j);
    /* clearing the manual cost: the fallback */
    j = call(f, "PUT", path, "{\"unitCost\":null}", &st);
    assert_int_equal(st, 200);
    assert_true(json_is_null(json_object_get(j, "unitCost")));
    json_decref(j);
    publish(f);
    j = call(f, "GET", "/api/routes/decision?model=gpt-4o", NULL, &st);
    assert_string_equal(json_string_value(json_object_get(candidate_of(j, f->acct2), "costSource")),
                        "fallback");
    json_decref(j);
    /* a site's weight */
    j = call(f, "GET", "/api/sites", NULL, &st);
    json_t *sites = json_is_array(j) ? j : json_object_get(j, "items");
    int64_t site = json_integer_value(json_object_get(json_array_get(sites, 0), "id"));
    assert_true(json_real_value(json_object_get(json_array_get(sites, 0), "globalWeight")) == 1.0);
    json_decref(j);
    snprintf(path, sizeof path, "/api/sites/%lld", (long long)site);
    j = call(f, "PUT", path, "{\"globalWeight\":0}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(f, "PUT", path, "{\"globalWeight\":\"x\"}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    j = call(f, "PUT", path, "{\"globalWeight\":3}", &st);
    assert_int_equal(st, 200);
    assert_true(json_real_value(json_object_get(j, "globalWeight")) == 3.0);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_costs_from_prices_and_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_and_cooldown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_pattern_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_and_alias, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
