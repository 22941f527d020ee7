/* api_tokens.c — /api/account-tokens: an account's API keys on its site. List (masked),
 * create (a pasted key, or a new key created on the site through its adapter, then
 * synced), edit (name, group, enabled, default, or the full value of a masked key),
 * delete (on the site too when it came from there), sync one account or all (in the
 * control pool, with Metapi's "wait"), and the one endpoint that reveals a key:
 * GET /api/account-tokens/:id/value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "base/secrets.h"
#include "control/control.h"
#include "control/jobs.h"
#include "platforms/platform.h"
#include "store/account_tokens.h"
#include "store/accounts.h"
#include "store/sites.h"

#define KEY_MAX_LEN  4096
#define NAME_MAX_LEN 200
#define WAIT_MAX_MS  120000

static json_t *token_json(const struct account_token *t)
{
    char masked[32];
    const char *m = t->masked;
    if (t->key) m = secrets_mask(t->key, masked, sizeof masked);
    return json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:b, s:b, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o}", "id",
        (json_int_t)t->id, "accountId", (json_int_t)t->account_id, "siteTokenId",
        admin_jstr(t->site_token_id), "name", admin_jstr(t->name), "tokenMasked", admin_jstr(m),
        "group", admin_jstr(t->group), "enabled", t->enabled, "isDefault", t->is_default, "source",
        admin_jstr(t->source), "valueStatus", admin_jstr(t->value_status), "unlimitedQuota",
        t->unlimited, "remainQuota",
        t->remain_quota >= 0 ? json_real(t->remain_quota) : json_null(), "expiredTime",
        t->expires_at ? json_integer(t->expires_at) : json_null(), "modelLimits",
        admin_jstr(t->model_limits), "createdAt", admin_jstr(t->created_at), "updatedAt",
        admin_jstr(t->updated_at));
}

/* A pasted key: trimmed, no spaces or control bytes. NULL after answering 400. */
static const char *key_field(json_t *body, const char *name, struct admin_response *resp)
{
    json_t *v = json_object_get(body, name);
    const char *k = json_string_value(v);
    bool bad = !k || !*k || json_string_length(v) > KEY_MAX_LEN || strchr(k, '*');
    for (const char *c = k; !bad && *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) bad = true;
    if (bad) {
        admin_fail(resp, 400,
                   "%s must be the full key: no spaces, control characters or '*' (a masked "
                   "key), at most %d bytes",
                   name, KEY_MAX_LEN);
        return NULL;
    }
    return k;
}

static void reply_token(const struct admin_ctx *ctx, int64_t id, struct admin_response *resp)
{
    struct account_token t;
    enum store_status st = account_tokens_get(ctx->db, id, &t);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "token");
        return;
    }
    admin_reply(resp, 200, json_pack("{s:b, s:o}", "success", 1, "token", token_json(&t)));
    account_token_clear(&t);
}

/* The account's site, adapter and credentials, for calls to the site. */
struct site_call {
    struct account a;
    struct site s;
    struct account_credentials c;
    const struct platform *p;
    struct platform_credentials pc;
};

static void site_call_free(struct site_call *sc)
{
    account_clear(&sc->a);
    site_clear(&sc->s);
    account_credentials_clear(&sc->c);
}

static bool site_call_load(const struct admin_ctx *ctx, int64_t account_id, struct site_call *sc,
                           struct admin_response *resp)
{
    memset(sc, 0, sizeof *sc);
    enum store_status st = accounts_get(ctx->db, account_id, &sc->a);
    if (st == STORE_OK) st = sites_get(ctx->db, sc->a.site_id, &sc->s);
    if (st == STORE_OK) st = accounts_get_credentials(ctx->db, account_id, &sc->c);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        return false;
    }
    sc->p = platform_by_id(sc->s.platform);
    if (!sc->p || !sc->p->has_management ||
        strcmp(sc->a.credential_mode ? sc->a.credential_mode : "", "session") != 0) {
        admin_fail(resp, 422,
                   "account %lld has no management session on its site (add it by login or "
                   "access token)",
                   (long long)account_id);
        return false;
    }
    if (!ctx->fetch) {
        admin_fail(resp, 503, "no HTTP client available to reach the site");
        return false;
    }
    sc->pc = (struct platform_credentials){.base_url = sc->s.url,
                                           .username = sc->a.username,
                                           .password = sc->c.password,
                                           .totp_secret = sc->c.totp_secret,
                                           .access_token = sc->c.access_token,
                                           .refresh_token = sc->c.refresh_token,
                                           .cookie = sc->c.cookie,
                                           .user_id = sc->a.user_id,
                                           .proxy_url = sc->s.proxy_url,
                                           .custom_headers_json = sc->s.custom_headers};
    return true;
}

static void sync_now(const struct admin_ctx *ctx, int64_t account_id, struct admin_response *resp)
{
    struct job_ctx jc;
    admin_job_ctx(ctx, &jc);
    struct job_result r, m;
    job_sync_tokens(&jc, account_id, &r);
    if (r.status == JOB_OK) job_models(&jc, account_id, &m);
    admin_job_done(ctx, &jc);
    if (r.status != JOB_OK) {
        struct account a;
        enum store_status st = accounts_get(ctx->db, account_id, &a);
        account_clear(&a);
        if (st != STORE_OK)
            admin_fail_store(resp, st, "account");
        else
            admin_fail(resp, r.status == JOB_SKIPPED ? 422 : 502, "%s", r.message);
        return;
    }
    admin_reply(resp, 200,
                json_pack("{s:b, s:I, s:I, s:s, s:s}", "success", 1, "synced", (json_int_t)r.count,
                          "maskedPending", (json_int_t)r.pending, "message", r.message, "models",
                          m.message));
}

static void reply_batch(struct control_batch *b, bool wait, const char *what,
                        struct admin_response *resp)
{
    if (!b) {
        admin_fail(resp, 503, "the control plane is not running");
        return;
    }
    unsigned ok = 0, sk = 0, fa = 0;
    bool done = wait && control_batch_wait(b, WAIT_MAX_MS, &ok, &sk, &fa);
    json_t *j = json_pack("{s:b, s:s, s:b}", "success", 1, "message", what, "done", done);
    if (wait)
        json_object_update_new(j, json_pack("{s:I, s:I, s:I, s:I}", "total",
                                            (json_int_t)control_batch_size(b), "ok", (json_int_t)ok,
                                            "skipped", (json_int_t)sk, "failed", (json_int_t)fa));
    control_batch_release(b);
    admin_reply(resp, wait ? 200 : 202, j);
}

static void create_token(const struct admin_ctx *ctx, json_t *body, struct admin_response *resp)
{
    json_t *acc = json_object_get(body, "accountId");
    if (!json_is_integer(acc) || json_integer_value(acc) <= 0) {
        admin_fail(resp, 400, "accountId must be a positive integer");
        return;
    }
    int64_t account_id = (int64_t)json_integer_value(acc);
    const char *name = json_string_value(json_object_get(body, "name"));
    if (name && strlen(name) > NAME_MAX_LEN) {
        admin_fail(resp, 400, "name must be at most %d bytes", NAME_MAX_LEN);
        return;
    }
    const char *group = json_string_value(json_object_get(body, "group"));
    if (json_object_get(body, "token")) { /* a key pasted by hand */
        const char *key = key_field(body, "token", resp);
        if (!key) return;
        struct account_token_fields f = {.account_id = account_id,
                                         .name = name ? name : "",
                                         .key = key,
                                         .group = group,
                                         .enabled = 1,
                                         .is_default =
                                             json_is_true(json_object_get(body, "isDefault")),
                                         .source = "manual",
                                         .remain_quota = -1};
        struct account_token t;
        enum store_status st = account_tokens_create(ctx->db, &f, &t);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, st == STORE_INVALID ? "account or token" : "token");
            return;
        }
        admin_reply(resp, 200, json_pack("{s:b, s:o}", "success", 1, "token", token_json(&t)));
        account_token_clear(&t);
        admin_routing_changed(ctx);
        return;
    }
    /* Create it on the site, then sync. */
    struct site_call sc;
    if (!site_call_load(ctx, account_id, &sc, resp)) goto out;
    if (!sc.p->create_token) {
        admin_fail(resp, 422, "%s cannot create tokens", sc.p->display_name);
        goto out;
    }
    json_t *rq = json_object_get(body, "remainQuota"), *ex = json_object_get(body, "expiredTime");
    bool unlimited = !rq || json_is_true(json_object_get(body, "unlimitedQuota"));
    const char *limits = json_string_value(json_object_get(body, "modelLimits"));
    struct platform_token_spec spec = {
        .name = name && *name ? name : "metarelay",
        .group = group,
        .unlimited = unlimited,
        .remain_quota = json_is_number(rq) ? json_number_value(rq) : 0,
        .expires_at = json_is_integer(ex) ? (int64_t)json_integer_value(ex) : -1,
        .model_limits = limits && *limits ? limits : NULL,
    };
    struct platform_token t = {0};
    struct platform_error err = {0};
    if (sc.p->create_token(ctx->fetch, &sc.pc, &spec, &t, &err) != 0) {
        admin_fail(resp, err.kind == PLATFORM_ERR_UNREACHABLE ? 502 : 400,
                   "creating the token on %s failed: %s", sc.s.name,
                   err.message[0] ? err.message : "unknown error");
    } else {
        sync_now(ctx, account_id, resp);
    }
    free(t.id), free(t.name), secrets_free_str(t.key), free(t.masked_key), free(t.group),
        free(t.model_limits);
out:
    site_call_free(&sc);
}

static void update_token(const struct admin_ctx *ctx, int64_t id, json_t *body,
                         struct admin_response *resp)
{
    struct account_token_fields f = {.enabled = -1, .is_default = -1, .remain_quota = -1};
    json_t *v;
    if ((v = json_object_get(body, "name"))) {
        if (!json_is_string(v) || json_string_length(v) > NAME_MAX_LEN) {
            admin_fail(resp, 400, "name must be a string of at most %d bytes", NAME_MAX_LEN);
            return;
        }
        f.name = json_string_value(v);
    }
    if ((v = json_object_get(body, "group")) && json_is_string(v)) f.group = json_string_value(v);
    if ((v = json_object_get(body, "enabled"))) {
        if (!json_is_boolean(v)) {
            admin_fail(resp, 400, "enabled must be a boolean");
            return;
        }
        f.enabled = json_is_true(v);
    }
    if ((v = json_object_get(body, "isDefault"))) {
        if (!json_is_boolean(v)) {
            admin_fail(resp, 400, "isDefault must be a boolean");
            return;
        }
        f.is_default = json_is_true(v);
    }
    if (json_object_get(body, "token") && !(f.key = key_field(body, "token", resp))) return;
    enum store_status st = account_tokens_update(ctx->db, id, &f, NULL);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "token");
        return;
    }
    admin_routing_changed(ctx);
    reply_token(ctx, id, resp);
}

static void delete_token(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                         struct admin_response *resp)
{
    struct account_token t;
    enum store_status st = account_tokens_get(ctx->db, id, &t);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "token");
        return;
    }
    char lo[8];
    bool local_only = admin_query_get(req->query, "localOnly", lo, sizeof lo) == 1 &&
                      (strcmp(lo, "1") == 0 || strcmp(lo, "true") == 0);
    if (t.site_token_id && !local_only) {
        struct admin_response scratch = {0};
        struct site_call sc;
        bool ok = site_call_load(ctx, t.account_id, &sc, &scratch);
        buf_free(&scratch.body);
        if (ok && sc.p->delete_token) {
            struct platform_error err = {0};
            if (sc.p->delete_token(ctx->fetch, &sc.pc, t.site_token_id, &err) != 0) {
                admin_fail(resp, 502,
                           "deleting the token on %s failed: %s (add ?localOnly=1 to delete it "
                           "here only)",
                           sc.s.name, err.message[0] ? err.message : "unknown error");
                site_call_free(&sc);
                account_token_clear(&t);
                return;
            }
        }
        site_call_free(&sc);
    }
    account_token_clear(&t);
    st = account_tokens_delete(ctx->db, id);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "token");
        return;
    }
    admin_routing_changed(ctx);
    admin_ok(resp);
}

void admin_account_tokens(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                          const char *action, struct admin_response *resp)
{
    const char *m = req->method;
    if (action && strcmp(action, "value") == 0) {
        struct account_token t;
        enum store_status st = account_tokens_get(ctx->db, id, &t);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "token");
            return;
        }
        if (!t.key)
            admin_fail(resp, 409,
                       "the full value of token %lld is not known (the site shows it masked): "
                       "paste it with PUT /api/account-tokens/%lld {\"token\": …}",
                       (long long)id, (long long)id);
        else
            admin_reply(
                resp, 200,
                json_pack("{s:b, s:I, s:s}", "success", 1, "id", (json_int_t)id, "token", t.key));
        account_token_clear(&t);
        return;
    }
    if (action && strcmp(action, "default") == 0) {
        struct account_token_fields f = {.enabled = -1, .is_default = 1, .remain_quota = -1};
        enum store_status st = account_tokens_update(ctx->db, id, &f, NULL);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "token");
            return;
        }
        reply_token(ctx, id, resp);
        return;
    }
    if (action && strcmp(action, "sync") == 0) {
        sync_now(ctx, id, resp);
        return;
    }
    if (action && strcmp(action, "sync-all") == 0) {
        json_t *body = req->body.n ? json_loadb(req->body.p, req->body.n, 0, NULL) : NULL;
        bool wait = admin_wants_wait(req, body);
        json_decref(body);
        reply_batch(control_submit(CONTROL_JOB_TOKENS | CONTROL_JOB_MODELS, 0, false), wait,
                    "token sync of every account started", resp);
        return;
    }
    if (strcmp(m, "GET") == 0 && id) {
        reply_token(ctx, id, resp);
        return;
    }
    if (strcmp(m, "GET") == 0) {
        char buf[32];
        unsigned long long acc = 0;
        int got = admin_query_get(req->query, "accountId", buf, sizeof buf);
        if (got < 0 || (got > 0 && buf[0] && !slice_to_u64(slice_from(buf), &acc))) {
            admin_fail(resp, 400, "accountId must be a positive integer");
            return;
        }
        struct account_token *list;
        size_t n;
        enum store_status st = account_tokens_list(ctx->db, (int64_t)acc, &list, &n);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "tokens");
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, token_json(&list[i]));
        account_tokens_free(list, n);
        admin_reply(resp, 200, arr);
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        delete_token(ctx, req, id, resp);
        return;
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    if (strcmp(m, "POST") == 0)
        create_token(ctx, body, resp);
    else
        update_token(ctx, id, body, resp);
    json_decref(body);
}
