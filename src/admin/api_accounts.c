/* api_accounts.c — /api/accounts: list, read, create, partial update, delete,
 * /api/accounts/:id/models, and the control-plane endpoints: login with a password,
 * verify-token, balance refresh, rebind-session. Secrets go in (apiToken, accessToken,
 * cookie, password, totpSecret, refreshToken) but never come out: the answer says only
 * which ones are stored (apiTokenMasked for the API key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_internal.h"
#include "base/secrets.h"
#include "control/control.h"
#include "control/jobs.h"
#include "platforms/platform.h"
#include "store/accounts.h"
#include "store/models.h"
#include "store/prices.h"
#include "store/sites.h"

#define TOKEN_MAX_LEN    4096
#define USERNAME_MAX_LEN 200

/* The start of today in TZ, as the UTC ISO-8601 text the store compares with. */
static void local_day_start_iso(char out[32])
{
    int64_t now = (int64_t)time(NULL);
    const tz_t *tz = control_tz();
    int64_t off = tz ? tz_offset_at(tz, now, NULL) : 0;
    int64_t local = now + off;
    int64_t start = local - ((local % 86400) + 86400) % 86400 - off;
    time_t t = (time_t)start;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* `todaySpend`: money spent since the start of today (TZ), from the balance history. */
static void add_today_spend(db_t *db, json_t *j, int64_t id)
{
    char since[32];
    local_day_start_iso(since);
    double spend = 0;
    if (accounts_spend_since(db, id, since, &spend) == STORE_OK)
        json_object_set_new(j, "todaySpend", json_real(spend));
}

static json_t *account_json(const struct account *a)
{
    char masked[32];
    secrets_mask(a->api_token, masked, sizeof masked);
    json_t *j =
        json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:f, s:f, s:f, s:o, s:o}", "id",
                  (json_int_t)a->id, "siteId", (json_int_t)a->site_id, "siteName",
                  admin_jstr(a->site_name), "username", admin_jstr(a->username), "apiTokenMasked",
                  a->api_token ? json_string(masked) : json_null(), "status", admin_jstr(a->status),
                  "balance", a->balance, "balanceUsed", a->balance_used, "quota", a->quota,
                  "createdAt", admin_jstr(a->created_at), "updatedAt", admin_jstr(a->updated_at));
    if (j && a->api_token_error[0])
        json_object_set_new(j, "apiTokenError", admin_jstr(a->api_token_error));
    if (!j) return j;
    bool session = a->credential_mode && strcmp(a->credential_mode, "session") == 0;
    json_object_set_new(j, "credentialMode", admin_jstr(a->credential_mode));
    json_object_set_new(j, "unitCost", a->unit_cost > 0 ? json_real(a->unit_cost) : json_null());
    json_object_set_new(j, "platformUserId", admin_jstr(a->user_id));
    json_object_set_new(j, "checkinEnabled", json_boolean(a->checkin_enabled));
    json_object_set_new(j, "lastCheckinAt", admin_jstr(a->last_checkin_at));
    json_object_set_new(j, "lastBalanceRefresh", admin_jstr(a->last_balance_refresh));
    json_object_set_new(j, "statusReason", admin_jstr(a->status_reason));
    json_object_set_new(j, "displayName", admin_jstr(a->display_name));
    json_object_set_new(j, "group", admin_jstr(a->user_group));
    json_object_set_new(j, "currency", admin_jstr(a->currency ? a->currency : "USD"));
    json_object_set_new(j, "quotaPerUnit",
                        a->quota_per_unit > 0 ? json_real(a->quota_per_unit) : json_null());
    json_object_set_new(j, "hasPassword", json_boolean(a->has_password));
    json_object_set_new(j, "hasTotpSecret", json_boolean(a->has_totp));
    json_object_set_new(j, "hasAccessToken", json_boolean(a->has_access_token));
    json_object_set_new(j, "hasCookie", json_boolean(a->has_cookie));
    json_object_set_new(j, "hasRefreshToken", json_boolean(a->has_refresh_token));
    json_object_set_new(j, "capabilities",
                        json_pack("{s:b, s:b, s:b}", "canCheckin", session, "canRefreshBalance",
                                  session, "proxyOnly", !session));
    return j;
}

/* A string field that must be a header-safe secret (no spaces or control bytes). 1 set
 * (or cleared with null/"" → *out NULL), 0 absent, -1 after answering 400. */
static int secret_field(json_t *body, const char *key, const char **out,
                        struct admin_response *resp)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v) return 0;
    if (json_is_null(v)) return 1;
    const char *t = json_string_value(v);
    bool bad = !t || strlen(t) != json_string_length(v) || json_string_length(v) > TOKEN_MAX_LEN;
    for (const char *c = t; !bad && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) bad = true;
    if (bad) {
        admin_fail(resp, 400, "%s must be a string without control characters, at most %d bytes",
                   key, TOKEN_MAX_LEN);
        return -1;
    }
    *out = *t ? t : NULL;
    return 1;
}

/* The control-plane fields of an account body: accessToken, cookie, password, totpSecret,
 * refreshToken, platformUserId, credentialMode, checkinEnabled. */
static bool read_control_fields(json_t *body, bool create, struct account_fields *f,
                                struct admin_response *resp)
{
    int r;
    if ((r = secret_field(body, "accessToken", &f->access_token, resp)) < 0) return false;
    f->set_access_token = r > 0;
    if ((r = secret_field(body, "cookie", &f->cookie, resp)) < 0) return false;
    f->set_cookie = r > 0;
    if ((r = secret_field(body, "password", &f->password, resp)) < 0) return false;
    f->set_password = r > 0;
    if ((r = secret_field(body, "totpSecret", &f->totp_secret, resp)) < 0) return false;
    f->set_totp_secret = r > 0;
    if ((r = secret_field(body, "refreshToken", &f->refresh_token, resp)) < 0) return false;
    f->set_refresh_token = r > 0;
    json_t *v = json_object_get(body, "platformUserId");
    if (v) {
        f->set_user_id = true;
        if (json_is_integer(v)) {
            /* kept in the body (which outlives the fields) as text */
            char idbuf[32];
            snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(v));
            json_object_set_new(body, "platformUserId", json_string(idbuf));
            f->user_id = json_string_value(json_object_get(body, "platformUserId"));
        } else if (json_is_string(v) && json_string_length(v) < 64) {
            f->user_id = json_string_value(v);
        } else if (!json_is_null(v)) {
            admin_fail(resp, 400, "platformUserId must be a number or a short string");
            return false;
        }
    }
    v = json_object_get(body, "credentialMode");
    if (v && !json_is_null(v)) {
        const char *m = json_string_value(v);
        if (!m || (strcmp(m, "auto") && strcmp(m, "session") && strcmp(m, "apikey"))) {
            admin_fail(resp, 400, "credentialMode must be \"auto\", \"session\" or \"apikey\"");
            return false;
        }
        if (strcmp(m, "auto") != 0) f->credential_mode = m;
    }
    if (!f->credential_mode && (f->access_token || f->cookie)) f->credential_mode = "session";
    if (create && !f->credential_mode) f->credential_mode = "apikey";
    v = json_object_get(body, "checkinEnabled");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            admin_fail(resp, 400, "checkinEnabled must be a boolean");
            return false;
        }
        f->checkin = json_is_true(v) ? ACCOUNT_CHECKIN_ON : ACCOUNT_CHECKIN_OFF;
    }
    return true;
}

/* Reads the fields of a create (create = true) or update body into `f`. The token is
 * trimmed into `token` (caller frees with secrets_free_str). false after answering 400. */
static bool read_fields(const struct admin_ctx *ctx, json_t *body, bool create,
                        int64_t current_site, struct account_fields *f, char **token,
                        struct admin_response *resp)
{
    memset(f, 0, sizeof *f);
    *token = NULL;
    json_t *v = json_object_get(body, "siteId");
    if (create || v) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            admin_fail(resp, 400, "siteId must be a positive integer");
            return false;
        }
        f->site_id = (int64_t)json_integer_value(v);
        if (!create && f->site_id != current_site) {
            admin_fail(resp, 400, "siteId of an account cannot be changed");
            return false;
        }
        if (create) {
            struct site s;
            enum store_status st = sites_get(ctx->db, f->site_id, &s);
            site_clear(&s);
            if (st == STORE_NOT_FOUND) {
                admin_fail(resp, 400, "site %lld does not exist", (long long)f->site_id);
                return false;
            }
            if (st != STORE_OK) {
                admin_fail_store(resp, st, "site");
                return false;
            }
        }
    }
    v = json_object_get(body, "username");
    if (v) {
        f->set_username = true;
        if (!json_is_null(v)) {
            if (!json_is_string(v) || json_string_length(v) > USERNAME_MAX_LEN ||
                strlen(json_string_value(v)) != json_string_length(v)) {
                admin_fail(resp, 400, "username must be a string of at most %d bytes",
                           USERNAME_MAX_LEN);
                return false;
            }
            if (json_string_length(v)) f->username = json_string_value(v);
        }
    }
    v = json_object_get(body, "status");
    if (v && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "active") && strcmp(s, "disabled") && strcmp(s, "expired"))) {
            admin_fail(resp, 400, "status must be \"active\", \"disabled\" or \"expired\"");
            return false;
        }
        f->status = s;
    }
    if (!read_control_fields(body, create, f, resp)) return false;
    v = json_object_get(body, "unitCost");
    if (v) {
        /* manual unit cost for routing (money per 1M tokens); null or 0 clears it */
        f->set_unit_cost = true;
        if (!json_is_null(v) &&
            (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9)) {
            admin_fail(resp, 400, "unitCost must be a number from 0 to 1e9, or null");
            return false;
        }
        f->unit_cost = json_is_null(v) ? 0 : json_number_value(v);
    }
    v = json_object_get(body, "apiToken");
    if ((create && !f->access_token && !f->cookie) || (v && !json_is_null(v))) {
        const char *t = json_string_value(v);
        if (!t) {
            admin_fail(resp, 400,
                       create ? "apiToken (or accessToken / cookie) is required: a "
                                "non-empty string"
                              : "apiToken must be a non-empty string");
            return false;
        }
        size_t len = json_string_length(v);
        while (len && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')) t++, len--;
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\t' || t[len - 1] == '\r' ||
                       t[len - 1] == '\n'))
            len--;
        bool bad = len == 0 || len > TOKEN_MAX_LEN;
        for (size_t i = 0; !bad && i < len; i++)
            if ((unsigned char)t[i] < 0x21 || t[i] == 0x7f) bad = true;
        if (bad) {
            /* It goes out in an Authorization header: no spaces or control bytes. */
            admin_fail(resp, 400,
                       "apiToken must be a non-empty string without spaces or control "
                       "characters, at most %d bytes",
                       TOKEN_MAX_LEN);
            return false;
        }
        *token = strndup(t, len);
        if (!*token) {
            admin_fail(resp, 500, "out of memory");
            return false;
        }
        f->api_token = *token;
    }
    return true;
}

static void list_accounts(const struct admin_ctx *ctx, const struct admin_request *req,
                          struct admin_response *resp)
{
    char buf[32];
    unsigned long long site = 0;
    int got = admin_query_get(req->query, "siteId", buf, sizeof buf);
    if (got < 0 || (got > 0 && buf[0] && !slice_to_u64(slice_from(buf), &site))) {
        admin_fail(resp, 400, "siteId must be a positive integer");
        return;
    }
    struct account *list;
    size_t n;
    enum store_status st = accounts_list(ctx->db, (int64_t)site, &list, &n);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "accounts");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = account_json(&list[i]);
        if (j) add_today_spend(ctx->db, j, list[i].id);
        json_array_append_new(arr, j);
    }
    accounts_free(list, n);
    admin_reply(resp, 200, arr);
}

void admin_accounts(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                    struct admin_response *resp)
{
    db_t *db = ctx->db;
    if (strcmp(req->method, "GET") == 0 && id == 0) {
        list_accounts(ctx, req, resp);
        return;
    }
    struct account a;
    enum store_status st;
    if (strcmp(req->method, "GET") == 0) {
        st = accounts_get(db, id, &a);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "account");
            return;
        }
        json_t *j = account_json(&a);
        if (j) add_today_spend(db, j, a.id);
        admin_reply(resp, 200, j);
        account_clear(&a);
        return;
    }
    if (strcmp(req->method, "DELETE") == 0) {
        st = accounts_delete(db, id);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "account");
            return;
        }
        admin_routing_changed(ctx);
        admin_ok(resp);
        return;
    }
    /* POST (create) or PUT (update) */
    int64_t current_site = 0;
    if (id) {
        st = accounts_get(db, id, &a);
        current_site = a.site_id;
        account_clear(&a);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "account");
            return;
        }
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct account_fields f;
    char *token = NULL;
    if (read_fields(ctx, body, id == 0, current_site, &f, &token, resp)) {
        st = id == 0 ? accounts_create(db, &f, &a) : accounts_update(db, id, &f, &a);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "account");
        } else {
            admin_reply(resp, 200, account_json(&a));
            account_clear(&a);
            admin_routing_changed(ctx);
        }
    }
    secrets_free_str(token);
    json_decref(body);
}

void admin_account_models(const struct admin_ctx *ctx, int64_t account_id,
                          struct admin_response *resp)
{
    struct account a;
    enum store_status st = accounts_get(ctx->db, account_id, &a);
    account_clear(&a);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        return;
    }
    struct account_model *ml;
    size_t n;
    st = account_models_list(ctx->db, account_id, &ml, &n);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "models");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:o, s:b, s:o}", "modelName",
                                        admin_jstr(ml[i].model_name), "available", ml[i].available,
                                        "checkedAt", admin_jstr(ml[i].checked_at)));
    account_models_free(ml, n);
    /* Prices discovered for the account and its tokens (money unit per 1M tokens / call). */
    struct model_price *pr = NULL;
    size_t np = 0;
    json_t *prices = json_array();
    if (model_prices_list(ctx->db, account_id, &pr, &np) == STORE_OK)
        for (size_t i = 0; i < np; i++)
            json_array_append_new(
                prices,
                json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "model", admin_jstr(pr[i].model),
                          "inputPerMillion",
                          pr[i].input_per_million >= 0 ? json_real(pr[i].input_per_million)
                                                       : json_null(),
                          "outputPerMillion",
                          pr[i].output_per_million >= 0 ? json_real(pr[i].output_per_million)
                                                        : json_null(),
                          "perCall", pr[i].per_call >= 0 ? json_real(pr[i].per_call) : json_null(),
                          "group", admin_jstr(pr[i].group), "tokenId",
                          pr[i].token_id ? json_integer(pr[i].token_id) : json_null()));
    model_prices_free(pr, np);
    admin_reply(resp, 200,
                json_pack("{s:I, s:o, s:I, s:o}", "accountId", (json_int_t)account_id, "models",
                          arr, "count", (json_int_t)n, "prices", prices));
}

/* ---- control plane ---- */

/* Answers a job's failure with a status that says whose problem it is. */
static void fail_job(struct admin_response *resp, const struct job_result *r)
{
    int status = 502;
    switch (r->kind) {
    case PLATFORM_ERR_AUTH:
    case PLATFORM_ERR_NEEDS_2FA:
    case PLATFORM_ERR_CAPTCHA:
        status = 400;
        break;
    case PLATFORM_ERR_UNSUPPORTED:
        status = 422;
        break;
    case PLATFORM_ERR_UNREACHABLE:
    case PLATFORM_ERR_BAD_RESPONSE:
    case PLATFORM_ERR_UPSTREAM:
        status = 502;
        break;
    default:
        status = r->message[0] ? 502 : 500;
    }
    admin_fail(resp, status, "%s", r->message[0] ? r->message : "the job failed");
}

static void reply_account(const struct admin_ctx *ctx, int64_t id, json_t *extra,
                          struct admin_response *resp)
{
    struct account a;
    enum store_status st = accounts_get(ctx->db, id, &a);
    if (st != STORE_OK) {
        json_decref(extra);
        admin_fail_store(resp, st, "account");
        return;
    }
    json_t *j = json_pack("{s:b, s:o}", "success", 1, "account", account_json(&a));
    account_clear(&a);
    if (extra) json_object_update(j, extra);
    json_decref(extra);
    admin_reply(resp, 200, j);
}

void admin_accounts_login(const struct admin_ctx *ctx, const struct admin_request *req,
                          struct admin_response *resp)
{
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    json_t *sid = json_object_get(body, "siteId");
    const char *user = json_string_value(json_object_get(body, "username"));
    const char *pass = json_string_value(json_object_get(body, "password"));
    const char *totp = NULL;
    if (!json_is_integer(sid) || json_integer_value(sid) <= 0 || !user || !*user || !pass ||
        !*pass || strlen(user) > USERNAME_MAX_LEN) {
        admin_fail(resp, 400, "siteId (a positive integer), username and password are required");
        goto out;
    }
    if (secret_field(body, "totpSecret", &totp, resp) < 0) goto out;
    if (!ctx->fetch) {
        admin_fail(resp, 503, "no HTTP client available to reach the site");
        goto out;
    }
    struct job_ctx jc;
    admin_job_ctx(ctx, &jc);
    struct job_result r;
    int64_t id = 0;
    job_login_create(&jc, (int64_t)json_integer_value(sid), user, pass, totp, &id, &r);
    admin_job_done(ctx, &jc);
    if (!id) {
        fail_job(resp, &r);
        goto out;
    }
    reply_account(ctx, id,
                  json_pack("{s:o, s:I, s:I, s:s}", "balance",
                            r.balance >= 0 ? json_real(r.balance) : json_null(), "tokens",
                            (json_int_t)r.count, "maskedTokens", (json_int_t)r.pending, "message",
                            r.message),
                  resp);
out:
    json_decref(body);
}

void admin_accounts_verify_token(const struct admin_ctx *ctx, const struct admin_request *req,
                                 struct admin_response *resp)
{
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct account_fields f = {0};
    const char *token = NULL;
    json_t *sid = json_object_get(body, "siteId");
    struct site s = {0};
    if (!json_is_integer(sid) || json_integer_value(sid) <= 0) {
        admin_fail(resp, 400, "siteId must be a positive integer");
        goto out;
    }
    if (!read_control_fields(body, false, &f, resp)) goto out;
    if (secret_field(body, "apiToken", &token, resp) < 0) goto out;
    if (!f.access_token && !f.cookie && !token) {
        admin_fail(resp, 400, "accessToken, cookie or apiToken is required");
        goto out;
    }
    enum store_status st = sites_get(ctx->db, (int64_t)json_integer_value(sid), &s);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "site");
        goto out;
    }
    const struct platform *p = platform_by_id(s.platform);
    if (!p || !ctx->fetch) {
        admin_fail(resp, p ? 503 : 422, p ? "no HTTP client" : "unknown platform %s", s.platform);
        goto out;
    }
    struct platform_credentials pc = {.base_url = s.url,
                                      .access_token = f.access_token,
                                      .cookie = f.cookie,
                                      .user_id = f.user_id,
                                      .proxy_url = s.proxy_url,
                                      .custom_headers_json = s.custom_headers};
    struct platform_error err = {0};
    bool want_session = !f.credential_mode || strcmp(f.credential_mode, "apikey") != 0;
    if (want_session && (f.access_token || f.cookie) && p->has_management && p->balance) {
        struct platform_balance b = {0};
        if (p->balance(ctx->fetch, &pc, &b, &err) == 0) {
            admin_reply(resp, 200,
                        json_pack("{s:b, s:s, s:{s:o, s:o}, s:f, s:o}", "success", 1, "tokenType",
                                  "session", "userInfo", "username", admin_jstr(b.display_name),
                                  "group", admin_jstr(b.group), "balance", b.balance, "currency",
                                  admin_jstr(b.currency ? b.currency : "USD")));
            platform_balance_free(&b);
            goto out;
        }
        platform_balance_free(&b);
    }
    /* As an API key: the models it can use. */
    const char *key = token ? token : f.access_token;
    if (key && p->models) {
        struct platform_model_list ml = {0};
        struct platform_error e2 = {0};
        pc.api_key = key;
        pc.access_token = NULL;
        if (p->models(ctx->fetch, &pc, &ml, &e2) == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < ml.n; i++) json_array_append_new(arr, admin_jstr(ml.models[i]));
            admin_reply(
                resp, 200,
                json_pack("{s:b, s:s, s:o}", "success", 1, "tokenType", "apikey", "models", arr));
            platform_model_list_free(&ml);
            goto out;
        }
        platform_model_list_free(&ml);
        if (err.kind == PLATFORM_OK) err = e2;
    }
    bool needs_user = err.kind == PLATFORM_ERR_AUTH && !f.user_id &&
                      (strcmp(s.platform, "new-api") == 0 || strcmp(s.platform, "veloera") == 0 ||
                       strcmp(s.platform, "anyrouter") == 0);
    admin_reply(resp, 400,
                json_pack("{s:b, s:s, s:b, s:b}", "success", 0, "message",
                          err.message[0] ? err.message : "the credential was not accepted",
                          "needsUserId", needs_user, "shieldBlocked",
                          err.kind == PLATFORM_ERR_CAPTCHA));
out:
    site_clear(&s);
    json_decref(body);
}

void admin_account_balance(const struct admin_ctx *ctx, int64_t id, struct admin_response *resp)
{
    struct job_ctx jc;
    admin_job_ctx(ctx, &jc);
    struct job_result r;
    job_balance(&jc, id, &r);
    admin_job_done(ctx, &jc);
    if (r.status == JOB_FAILED) {
        struct account a;
        if (accounts_get(ctx->db, id, &a) == STORE_NOT_FOUND) {
            admin_fail(resp, 404, "account not found");
            return;
        }
        account_clear(&a);
        fail_job(resp, &r);
        return;
    }
    if (r.status == JOB_SKIPPED) {
        admin_fail(resp, 422, "%s", r.message);
        return;
    }
    reply_account(ctx, id, json_pack("{s:f, s:s}", "balance", r.balance, "message", r.message),
                  resp);
}

void admin_account_rebind(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                          struct admin_response *resp)
{
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct account_fields f = {0};
    if (!read_control_fields(body, false, &f, resp)) goto out;
    if (!f.access_token && !f.cookie) {
        admin_fail(resp, 400, "accessToken or cookie is required");
        goto out;
    }
    json_t *exp = json_object_get(body, "tokenExpiresAt");
    if (json_is_integer(exp)) {
        f.access_expires_at = (int64_t)json_integer_value(exp);
        if (f.access_expires_at > 100000000000ll) f.access_expires_at /= 1000; /* ms */
        f.set_access_expires_at = true;
    }
    f.credential_mode = "session";
    f.status = "active";
    f.status_reason = NULL;
    f.set_status_reason = true;
    enum store_status st = accounts_update(ctx->db, id, &f, NULL);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        goto out;
    }
    admin_routing_changed(ctx);
    /* Prove the new session works. */
    struct job_ctx jc;
    admin_job_ctx(ctx, &jc);
    struct job_result r;
    job_balance(&jc, id, &r);
    admin_job_done(ctx, &jc);
    if (r.status == JOB_FAILED) {
        fail_job(resp, &r);
        goto out;
    }
    reply_account(ctx, id, json_pack("{s:s}", "message", r.message), resp);
out:
    json_decref(body);
}

void admin_account_balance_history(const struct admin_ctx *ctx, const struct admin_request *req,
                                   int64_t id, struct admin_response *resp)
{
    struct account a;
    enum store_status st = accounts_get(ctx->db, id, &a);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        return;
    }
    account_clear(&a);
    long limit = 100;
    char buf[24];
    int q = admin_query_get(req->query, "limit", buf, sizeof buf);
    if (q != 0) {
        char *end = NULL;
        limit = q == 1 ? strtol(buf, &end, 10) : -1;
        if (!end || *end) limit = -1;
    }
    if (limit < 1 || limit > 5000) {
        admin_fail(resp, 400, "limit must be between 1 and 5000");
        return;
    }
    struct balance_point *pts;
    size_t n;
    st = accounts_balance_history(ctx->db, id, (size_t)limit, &pts, &n);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "balance history");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items,
                              json_pack("{s:f, s:o, s:s}", "balance", pts[i].balance, "used",
                                        pts[i].used < 0 ? json_null() : json_real(pts[i].used),
                                        "recordedAt", pts[i].recorded_at));
    free(pts);
    char since[32];
    local_day_start_iso(since);
    double spend = 0;
    accounts_spend_since(ctx->db, id, since, &spend);
    admin_reply(resp, 200, json_pack("{s:o, s:f}", "items", items, "todaySpend", spend));
}
