/* api_routes.c — routes and channels (Metapi's paths):
 *   GET/POST /api/routes, GET/PUT/DELETE /api/routes/:id,
 *   GET/POST /api/routes/:id/channels, PUT/DELETE /api/channels/:channelId,
 *   POST /api/routes/:id/cooldown/clear, POST /api/routes/rebuild,
 *   GET /api/routes/decision?model=… (each candidate's probability, state and reasons).
 *
 * User routes are stored (store/routes.h); automatic routes (one per discovered model) come
 * from the latest published snapshot and are listed with "automatic": true and no id. A
 * pattern is validated by compiling it exactly as the snapshot will (a bad `re:` is a 400
 * with the reason). Every change asks for a rebuild (ctx->routing_changed). The decision
 * and cooldown endpoints read the latest published snapshot and the live health records;
 * before the first publication they build a private snapshot from the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "base/clock.h"
#include "control/snapshot_builder.h"
#include "routing/select.h"
#include "store/routes.h"

#define MODEL_NAME_MAX 512
#define MAX_SOURCES    256
#define WEIGHT_MAX     1000000

/* ---------- snapshot access ---------- */

/* The latest snapshot (a reference: release it), else a private one from the store
 * (*own = true: free it). NULL after answering 500. */
static struct routing_snapshot *current_snapshot(const struct admin_ctx *ctx, bool *own,
                                                 struct admin_response *resp)
{
    *own = false;
    struct routing_snapshot *s = snapshot_acquire_latest();
    if (s) return s;
    s = snapshot_load(ctx->db, 0);
    if (!s) {
        admin_fail(resp, 500, "cannot build the routing table from the store");
        return NULL;
    }
    *own = true;
    return s;
}

static void done_snapshot(struct routing_snapshot *s, bool own)
{
    if (own)
        snapshot_free(s);
    else
        snapshot_release(s);
}

/* The live route channel of a stored channel row, or NULL. */
static const struct route_channel *live_channel(const struct routing_snapshot *s, int64_t route_id,
                                                int64_t channel_id)
{
    const struct route *r = s ? snapshot_route_by_id(s, route_id) : NULL;
    for (size_t i = 0; r && i < r->n_channels; i++)
        if (r->channels[i].id == channel_id) return &r->channels[i];
    return NULL;
}

static json_t *health_json(const struct route_channel *rc, uint64_t now)
{
    if (!rc || !rc->health) return json_null();
    struct channel_health *rec[3] = {rc->health, rc->health->credential, rc->health->site};
    enum health_state worst = HEALTH_HEALTHY;
    uint64_t until = 0;
    for (int i = 0; i < 3; i++) {
        if (!rec[i]) continue;
        enum health_state st = health_state(rec[i], now);
        if (st > worst) worst = st;
        uint64_t u = atomic_load(&rec[i]->cooldown_until_ns);
        if (u > now && u > until) until = u;
    }
    if (!rc->enabled) worst = HEALTH_DISABLED;
    json_t *j = json_pack("{s:s, s:I, s:I, s:I}", "state", health_state_name(worst),
                          "cooldownRemainingMs", (json_int_t)(until ? (until - now) / 1000000 : 0),
                          "successCount", (json_int_t)atomic_load(&rc->health->successes),
                          "failCount", (json_int_t)atomic_load(&rc->health->failures));
    return j ? j : json_null();
}

/* ---------- JSON shapes ---------- */

static json_t *channel_json(const struct route_channel_row *c, const struct routing_snapshot *s,
                            uint64_t now)
{
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:o, s:o, s:i, s:i, s:b, s:o, s:o}", "id", (json_int_t)c->id, "routeId",
        (json_int_t)c->route_id, "accountId", (json_int_t)c->account_id, "tokenId",
        c->token_id ? json_integer(c->token_id) : json_null(), "sourceModel",
        admin_jstr(c->source_model), "priority", c->priority, "weight", (int)c->weight, "enabled",
        c->enabled, "createdAt", admin_jstr(c->created_at), "updatedAt", admin_jstr(c->updated_at));
    if (j) json_object_set_new(j, "health", health_json(live_channel(s, c->route_id, c->id), now));
    return j;
}

static json_t *mapping_json(const char *text)
{
    if (!text) return json_null();
    json_t *m = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    return m ? m : json_null();
}

static json_t *route_json(const struct route_row *r, const struct routing_snapshot *s, uint64_t now)
{
    json_t *src = json_array(), *chans = json_array();
    for (size_t i = 0; i < r->n_sources; i++)
        json_array_append_new(src, json_integer(r->source_ids[i]));
    for (size_t i = 0; i < r->n_channels; i++)
        json_array_append_new(chans, channel_json(&r->channels[i], s, now));
    enum pattern_kind pk = pattern_kind_of(r->model_pattern);
    const struct route *live = s ? snapshot_route_by_id(s, r->id) : NULL;
    json_t *j = json_pack("{s:I, s:o, s:o, s:o, s:s, s:o, s:o, s:b, s:b, s:o, s:o, s:o, s:o}", "id",
                          (json_int_t)r->id, "modelPattern", admin_jstr(r->model_pattern),
                          "displayName", admin_jstr(r->display_name), "routeMode",
                          admin_jstr(r->route_mode), "patternKind",
                          strcmp(r->route_mode, "explicit_group") == 0 ? "group"
                          : pk == PATTERN_REGEX                        ? "regex"
                          : pk == PATTERN_GLOB                         ? "glob"
                                                                       : "exact",
                          "modelMapping", mapping_json(r->model_mapping), "routingStrategy",
                          admin_jstr(r->routing_strategy), "enabled", r->enabled, "automatic", 0,
                          "sourceRouteIds", src, "channels", chans, "createdAt",
                          admin_jstr(r->created_at), "updatedAt", admin_jstr(r->updated_at));
    if (j && live) {
        json_object_set_new(j, "error", admin_jstr(live->error));
        json_object_set_new(j, "matchErrors", json_integer(atomic_load(&live->match_errors)));
    }
    return j;
}

static json_t *auto_route_json(const struct routing_snapshot *s, const struct route *r,
                               uint64_t now)
{
    json_t *chans = json_array();
    for (size_t i = 0; i < r->n_channels; i++) {
        const struct route_channel *rc = &r->channels[i];
        const struct channel *c = &s->channels[rc->channel];
        json_array_append_new(chans, json_pack("{s:n, s:I, s:o, s:i, s:i, s:b, s:o}", "id",
                                               "accountId", (json_int_t)c->account_id, "siteName",
                                               admin_jstr(c->site_name), "priority", rc->priority,
                                               "weight", (int)rc->weight, "enabled", rc->enabled,
                                               "health", health_json(rc, now)));
    }
    return json_pack("{s:n, s:o, s:n, s:s, s:s, s:s, s:b, s:b, s:o}", "id", "modelPattern",
                     admin_jstr(r->model), "displayName", "routeMode", "pattern", "patternKind",
                     "exact", "routingStrategy", route_strategy_name(r->strategy), "enabled", 1,
                     "automatic", 1, "channels", chans);
}

/* ---------- reading bodies ---------- */

/* Validates a route pattern as the snapshot compiles it; answers 400 and returns false. */
static bool check_pattern(const char *p, struct admin_response *resp)
{
    if (!*p) {
        admin_fail(resp, 400, "modelPattern must not be empty");
        return false;
    }
    if (strlen(p) > MODEL_NAME_MAX) {
        admin_fail(resp, 400, "modelPattern is longer than %d bytes", MODEL_NAME_MAX);
        return false;
    }
    if (pattern_kind_of(p) == PATTERN_EXACT) return true;
    struct pattern pat;
    char err[256];
    if (pattern_compile(&pat, p, err, sizeof err) != 0) {
        admin_fail(resp, 400, "modelPattern '%.100s' is invalid: %s", p, err);
        return false;
    }
    pattern_free(&pat);
    return true;
}

struct route_owned {
    char *mapping;
    int64_t sources[MAX_SOURCES];
};

static bool read_route_body(json_t *b, bool create, struct route_fields *f, struct route_owned *own,
                            struct admin_response *resp)
{
    memset(f, 0, sizeof *f);
    f->enabled = -1;
    json_t *v;
    if ((v = json_object_get(b, "routeMode")) && !json_is_null(v)) {
        const char *m = json_string_value(v);
        if (!m || (strcmp(m, "pattern") != 0 && strcmp(m, "explicit_group") != 0)) {
            admin_fail(resp, 400, "routeMode must be \"pattern\" or \"explicit_group\"");
            return false;
        }
        f->route_mode = m;
    }
    bool group = f->route_mode && strcmp(f->route_mode, "explicit_group") == 0;
    if ((v = json_object_get(b, "displayName"))) {
        if (!json_is_null(v) && !json_is_string(v)) {
            admin_fail(resp, 400, "displayName must be a string or null");
            return false;
        }
        f->display_name = json_string_value(v);
        f->set_display_name = true;
        if (f->display_name && strlen(f->display_name) > MODEL_NAME_MAX) {
            admin_fail(resp, 400, "displayName is longer than %d bytes", MODEL_NAME_MAX);
            return false;
        }
    }
    if ((v = json_object_get(b, "modelPattern")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            admin_fail(resp, 400, "modelPattern must be a string");
            return false;
        }
        f->model_pattern = json_string_value(v);
    }
    /* a group is addressed by its name: modelPattern, else displayName */
    if (create && group && !f->model_pattern) f->model_pattern = f->display_name;
    if (create && !f->model_pattern) {
        admin_fail(resp, 400, "modelPattern is required");
        return false;
    }
    if (f->model_pattern) {
        if (group) {
            if (!*f->model_pattern || pattern_kind_of(f->model_pattern) != PATTERN_EXACT) {
                admin_fail(resp, 400, "a group route's name must be an exact model name");
                return false;
            }
        } else if (!check_pattern(f->model_pattern, resp)) {
            return false;
        }
    }
    if ((v = json_object_get(b, "routingStrategy")) && !json_is_null(v)) {
        if (!json_is_string(v) || route_strategy_parse(json_string_value(v)) < 0) {
            admin_fail(resp, 400,
                       "routingStrategy must be \"weighted\", \"round_robin\" or \"stable_first\"");
            return false;
        }
        f->routing_strategy = json_string_value(v);
    }
    if ((v = json_object_get(b, "enabled"))) {
        if (!json_is_boolean(v)) {
            admin_fail(resp, 400, "enabled must be a boolean");
            return false;
        }
        f->enabled = json_is_true(v);
    }
    if ((v = json_object_get(b, "modelMapping"))) {
        f->set_model_mapping = true;
        json_t *obj = v, *parsed = NULL;
        if (json_is_string(v) && json_string_length(v) > 0) {
            parsed = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, NULL);
            obj = parsed;
        }
        if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
            obj = NULL;
        } else if (!json_is_object(obj)) {
            json_decref(parsed);
            admin_fail(resp, 400, "modelMapping must be an object of model name → upstream name");
            return false;
        }
        if (obj) {
            const char *k;
            json_t *x;
            json_object_foreach(obj, k, x)
            {
                if (!json_is_string(x) || !json_string_length(x) || !*k) {
                    json_decref(parsed);
                    admin_fail(resp, 400, "modelMapping values must be non-empty strings");
                    return false;
                }
            }
            own->mapping = json_dumps(obj, JSON_COMPACT);
            f->model_mapping = own->mapping;
        }
        json_decref(parsed);
    }
    if ((v = json_object_get(b, "sourceRouteIds"))) {
        if (!json_is_array(v) || json_array_size(v) > MAX_SOURCES) {
            admin_fail(resp, 400, "sourceRouteIds must be an array of route ids (at most %d)",
                       MAX_SOURCES);
            return false;
        }
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!json_is_integer(x) || json_integer_value(x) <= 0) {
                admin_fail(resp, 400, "sourceRouteIds must hold positive integers");
                return false;
            }
            own->sources[i] = json_integer_value(x);
        }
        f->source_ids = own->sources;
        f->n_sources = json_array_size(v);
        f->set_sources = true;
    }
    if (create && group && !f->set_sources) {
        admin_fail(resp, 400, "an explicit_group route needs sourceRouteIds");
        return false;
    }
    return true;
}

static bool read_channel_body(json_t *b, bool create, struct route_channel_fields *f,
                              struct admin_response *resp)
{
    memset(f, 0, sizeof *f);
    f->enabled = -1;
    json_t *v;
    if ((v = json_object_get(b, "accountId"))) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            admin_fail(resp, 400, "accountId must be a positive integer");
            return false;
        }
        f->account_id = json_integer_value(v);
    } else if (create) {
        admin_fail(resp, 400, "accountId is required");
        return false;
    }
    if ((v = json_object_get(b, "tokenId"))) {
        if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) <= 0)) {
            admin_fail(resp, 400, "tokenId must be a positive integer or null");
            return false;
        }
        f->token_id = json_is_integer(v) ? json_integer_value(v) : 0;
        f->set_token = true;
    }
    if ((v = json_object_get(b, "sourceModel"))) {
        if (!json_is_null(v) && !json_is_string(v)) {
            admin_fail(resp, 400, "sourceModel must be a string or null");
            return false;
        }
        f->source_model = json_string_value(v);
        if (f->source_model && strlen(f->source_model) > MODEL_NAME_MAX) {
            admin_fail(resp, 400, "sourceModel is longer than %d bytes", MODEL_NAME_MAX);
            return false;
        }
        f->set_source_model = true;
    }
    if ((v = json_object_get(b, "priority"))) {
        if (!json_is_integer(v) || json_integer_value(v) < -1000000 ||
            json_integer_value(v) > 1000000) {
            admin_fail(resp, 400, "priority must be an integer (lower is tried first)");
            return false;
        }
        f->priority = (int)json_integer_value(v);
        f->set_priority = true;
    }
    if ((v = json_object_get(b, "weight"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > WEIGHT_MAX) {
            admin_fail(resp, 400, "weight must be an integer between 0 and %d", WEIGHT_MAX);
            return false;
        }
        f->weight = (unsigned)json_integer_value(v);
        f->set_weight = true;
    }
    if ((v = json_object_get(b, "enabled"))) {
        if (!json_is_boolean(v)) {
            admin_fail(resp, 400, "enabled must be a boolean");
            return false;
        }
        f->enabled = json_is_true(v);
    }
    return true;
}

/* ---------- handlers ---------- */

static void reply_route(const struct admin_ctx *ctx, int64_t id, struct admin_response *resp)
{
    struct route_row r;
    enum store_status st = routes_get(ctx->db, id, &r);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "route");
        return;
    }
    struct routing_snapshot *s = snapshot_acquire_latest();
    admin_reply(resp, 200, route_json(&r, s, clock_mono_ns()));
    snapshot_release(s);
    route_row_clear(&r);
}

static void list_routes(const struct admin_ctx *ctx, struct admin_response *resp)
{
    struct route_row *rows = NULL;
    size_t n = 0;
    enum store_status st = routes_list(ctx->db, &rows, &n);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "routes");
        return;
    }
    struct routing_snapshot *s = snapshot_acquire_latest();
    uint64_t now = clock_mono_ns();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, route_json(&rows[i], s, now));
    for (size_t i = 0; s && i < s->n_routes; i++)
        if (s->routes[i].kind == ROUTE_AUTO)
            json_array_append_new(arr, auto_route_json(s, &s->routes[i], now));
    snapshot_release(s);
    route_rows_free(rows, n);
    admin_reply(resp, 200, arr);
}

void admin_routes(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                  struct admin_response *resp)
{
    const char *m = req->method;
    if (strcmp(m, "GET") == 0) {
        if (id)
            reply_route(ctx, id, resp);
        else
            list_routes(ctx, resp);
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        enum store_status st = routes_delete(ctx->db, id);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "route");
            return;
        }
        admin_routing_changed(ctx);
        admin_ok(resp);
        return;
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct route_fields f;
    struct route_owned own = {0};
    if (read_route_body(body, id == 0, &f, &own, resp)) {
        enum store_status st;
        if (id == 0) {
            st = routes_create(ctx->db, &f, &id);
        } else {
            st = routes_update(ctx->db, id, &f);
        }
        if (st == STORE_INVALID)
            admin_fail(resp, 400, "invalid route (unknown source route, or a value out of range)");
        else if (st != STORE_OK)
            admin_fail_store(resp, st, "route");
        else {
            admin_routing_changed(ctx);
            reply_route(ctx, id, resp);
        }
    }
    free(own.mapping);
    json_decref(body);
}

void admin_route_channels(const struct admin_ctx *ctx, const struct admin_request *req,
                          int64_t route_id, struct admin_response *resp)
{
    if (strcmp(req->method, "GET") == 0) {
        struct route_channel_row *rows = NULL;
        size_t n = 0;
        enum store_status st = route_channels_list(ctx->db, route_id, &rows, &n);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "route");
            return;
        }
        struct routing_snapshot *s = snapshot_acquire_latest();
        uint64_t now = clock_mono_ns();
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, channel_json(&rows[i], s, now));
        snapshot_release(s);
        route_channel_rows_free(rows, n);
        admin_reply(resp, 200, arr);
        return;
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct route_channel_fields f;
    if (read_channel_body(body, true, &f, resp)) {
        int64_t id = 0;
        enum store_status st = route_channel_create(ctx->db, route_id, &f, &id);
        struct route_channel_row row;
        if (st == STORE_OK) st = route_channel_get(ctx->db, id, &row);
        if (st == STORE_NOT_FOUND)
            admin_fail(resp, 404, "route %lld not found", (long long)route_id);
        else if (st == STORE_INVALID)
            admin_fail(resp, 400, "invalid channel (unknown account, or a value out of range)");
        else if (st != STORE_OK)
            admin_fail_store(resp, st, "channel");
        else {
            admin_routing_changed(ctx);
            admin_reply(resp, 200, channel_json(&row, NULL, 0));
            route_channel_row_clear(&row);
        }
    }
    json_decref(body);
}

void admin_channel(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                   struct admin_response *resp)
{
    if (strcmp(req->method, "DELETE") == 0) {
        enum store_status st = route_channel_delete(ctx->db, id);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "channel");
            return;
        }
        admin_routing_changed(ctx);
        admin_ok(resp);
        return;
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct route_channel_fields f;
    if (read_channel_body(body, false, &f, resp)) {
        enum store_status st = route_channel_update(ctx->db, id, &f);
        struct route_channel_row row;
        if (st == STORE_OK) st = route_channel_get(ctx->db, id, &row);
        if (st == STORE_INVALID)
            admin_fail(resp, 400, "invalid channel (unknown account, or a value out of range)");
        else if (st != STORE_OK)
            admin_fail_store(resp, st, "channel");
        else {
            admin_routing_changed(ctx);
            admin_reply(resp, 200, channel_json(&row, NULL, 0));
            route_channel_row_clear(&row);
        }
    }
    json_decref(body);
}

void admin_route_cooldown_clear(const struct admin_ctx *ctx, int64_t route_id,
                                struct admin_response *resp)
{
    struct route_row r;
    enum store_status st = routes_get(ctx->db, route_id, &r);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "route");
        return;
    }
    route_row_clear(&r);
    bool own;
    struct routing_snapshot *s = current_snapshot(ctx, &own, resp);
    if (!s) return;
    const struct route *live = snapshot_route_by_id(s, route_id);
    size_t cleared = 0;
    for (size_t i = 0; live && i < live->n_channels; i++) {
        struct channel_health *h = live->channels[i].health;
        if (!h) continue;
        health_clear(h);
        health_clear(h->credential); /* quota/auth cooldowns of its credential too */
        cleared++;
    }
    done_snapshot(s, own);
    admin_reply(resp, 200, json_pack("{s:b, s:I}", "success", 1, "cleared", (json_int_t)cleared));
}

void admin_routes_rebuild(const struct admin_ctx *ctx, struct admin_response *resp)
{
    admin_routing_changed(ctx);
    admin_reply(
        resp, 200,
        json_pack("{s:b, s:s}", "success", 1, "message", "the routing table is being rebuilt"));
}

static const char *via_name(uint8_t via)
{
    switch (via) {
    case ROUTE_VIA_USER_EXACT:
        return "exact";
    case ROUTE_VIA_ALIAS:
        return "alias";
    case ROUTE_VIA_AUTO:
        return "automatic";
    case ROUTE_VIA_PATTERN:
        return "pattern";
    default:
        return "none";
    }
}

static json_t *reasons_json(const char *text)
{
    json_t *arr = json_array();
    const char *p = text;
    while (p && *p) {
        const char *sep = strstr(p, "; ");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        json_array_append_new(arr, json_stringn(p, n));
        p = sep ? sep + 2 : NULL;
    }
    return arr;
}

void admin_routes_decision(const struct admin_ctx *ctx, const struct admin_request *req,
                           struct admin_response *resp)
{
    char model[MODEL_NAME_MAX + 1];
    int got = admin_query_get(req->query, "model", model, sizeof model);
    if (got <= 0 || !model[0]) {
        admin_fail(resp, 400,
                   got < 0 ? "model is too long" : "the model query parameter is required");
        return;
    }
    bool own;
    struct routing_snapshot *s = current_snapshot(ctx, &own, resp);
    if (!s) return;
    uint64_t now = clock_mono_ns();
    struct route_match m;
    struct routing_explain_entry *x = NULL;
    size_t n = routing_explain(s, slice_from(model), now, &m, &x);
    json_t *j = json_pack("{s:b, s:o}", "success", 1, "model", admin_jstr(model));
    if (m.error_route) {
        char msg[400];
        snprintf(msg, sizeof msg, "route %lld '%s' hit its %s while matching this name",
                 (long long)m.error_route->id, m.error_route->model,
                 m.error == PATTERN_ERR_LIMIT ? "match limit" : "regex engine error");
        json_object_set_new(j, "patternError", admin_jstr(msg));
    }
    if (!m.route) {
        json_object_set_new(j, "route", json_null());
        json_object_set_new(j, "candidates", json_array());
        json_object_set_new(j, "message", admin_jstr("no route serves this model"));
    } else {
        const struct route *r = m.route;
        json_object_set_new(j, "route",
                            json_pack("{s:o, s:o, s:s, s:s, s:s, s:o}", "id",
                                      r->id ? json_integer(r->id) : json_null(), "modelPattern",
                                      admin_jstr(r->model), "kind",
                                      route_kind_name((enum route_kind)r->kind), "matchedBy",
                                      via_name(m.via), "routingStrategy",
                                      route_strategy_name((enum route_strategy)r->strategy),
                                      "displayName", admin_jstr(r->display_name)));
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct routing_eval *ev = &x[i].ev;
            const struct route_channel *rc = ev->rc;
            const struct channel *c = &s->channels[rc->channel];
            struct slice up = routing_upstream_model(&m, rc, slice_from(model));
            json_t *cj = json_pack(
                "{s:o, s:I, s:I, s:o, s:s#, s:i, s:i, s:f, s:s, s:s, s:b, s:f, s:i, s:o}",
                "channelId", rc->id ? json_integer(rc->id) : json_null(), "accountId",
                (json_int_t)c->account_id, "siteId", (json_int_t)c->site_id, "siteName",
                admin_jstr(c->site_name), "upstreamModel", up.p ? up.p : "", (int)up.n, "priority",
                rc->priority, "weight", (int)rc->weight, "unitCost", rc->unit_cost, "costSource",
                rc->cost_source == COST_PRICE    ? "price"
                : rc->cost_source == COST_MANUAL ? "manual"
                                                 : "fallback",
                "state", health_state_name((enum health_state)ev->state), "excluded",
                ev->excluded != RX_NONE && x[i].order == 0, "probability", x[i].probability,
                "order", x[i].order, "reasons", reasons_json(x[i].reasons));
            if (cj) json_object_set_new(cj, "score", json_real(ev->score));
            if (cj && ev->excluded == RX_COOLING && ev->ready_ns > now) {
                /* how long the cooldown still runs, on which record and why */
                json_object_set_new(cj, "cooldownMs",
                                    json_integer((json_int_t)((ev->ready_ns - now) / 1000000u)));
                json_object_set_new(
                    cj, "cooldownScope",
                    json_string(health_scope_name((enum health_scope)ev->cooling_scope)));
                json_object_set_new(
                    cj, "cooldownKind",
                    json_string(health_failure_name((enum health_failure)ev->cooling_kind)));
                json_object_set_new(cj, "cooldownHard", json_boolean(ev->hard));
            }
            json_array_append_new(arr, cj);
        }
        json_object_set_new(j, "candidates", arr);
    }
    free(x);
    done_snapshot(s, own);
    admin_reply(resp, 200, j);
}
