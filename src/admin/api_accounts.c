/* api_accounts.c — /api/accounts: list, read, create, partial update, delete, and
 * /api/accounts/:id/models. The API token goes in (apiToken) but only ever comes out
 * masked (apiTokenMasked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "base/secrets.h"
#include "store/accounts.h"
#include "store/models.h"
#include "store/sites.h"

#define TOKEN_MAX_LEN    4096
#define USERNAME_MAX_LEN 200

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
    return j;
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
    v = json_object_get(body, "apiToken");
    if (create || (v && !json_is_null(v))) {
        const char *t = json_string_value(v);
        if (!t) {
            admin_fail(resp, 400, "apiToken must be a non-empty string");
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
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, account_json(&list[i]));
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
        admin_reply(resp, 200, account_json(&a));
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
    admin_reply(resp, 200,
                json_pack("{s:I, s:o, s:I}", "accountId", (json_int_t)account_id, "models", arr,
                          "count", (json_int_t)n));
}
