/* api_models.c — POST /api/models/check/:accountId: asks the account's site for its model
 * list (GET {url}/v1/models with the account's key), replaces the stored list and
 * republishes routing. Failures answer {"success":false,"message":…} with the upstream's
 * status and reason; the key never appears in an answer (an upstream that echoes it back
 * in an error body gets it masked). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "base/secrets.h"
#include "net/fetch.h"
#include "store/accounts.h"
#include "store/models.h"
#include "store/sites.h"

#define MODELS_TIMEOUT_MS   15000
#define MODELS_MAX_BYTES    (8u * 1024 * 1024)
#define MODELS_MAX_COUNT    10000
#define MODEL_NAME_MAX      256
#define MAX_CUSTOM_HEADERS  32
#define ERROR_SNIPPET_BYTES 200

/* Replaces every occurrence of `key` in `s` (NUL-terminated, in place) with its mask. */
static void redact(char *s, size_t cap, const char *key)
{
    size_t kl = key ? strlen(key) : 0;
    if (kl < 4) return;
    char mask[32];
    secrets_mask(key, mask, sizeof mask);
    size_t ml = strlen(mask);
    char *p;
    while ((p = strstr(s, key)) != NULL) {
        size_t tail = strlen(p + kl);
        if (ml <= kl || (size_t)(p - s) + ml + tail < cap) {
            memmove(p + ml, p + kl, tail + 1);
            memcpy(p, mask, ml);
        } else {
            memset(p, '*', kl);
        }
    }
}

/* A printable one-line snippet of an upstream body. */
static void snippet(const struct buf *body, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < body->n && o + 4 < cap && i < ERROR_SNIPPET_BYTES; i++) {
        unsigned char c = (unsigned char)body->p[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (body->n > ERROR_SNIPPET_BYTES && o + 4 < cap) memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
}

static void fail_upstream(struct admin_response *resp, int status, int upstream_status,
                          const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail_upstream(struct admin_response *resp, int status, int upstream_status,
                          const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    redact(msg, sizeof msg, key);
    json_t *j = json_pack("{s:b, s:o}", "success", 0, "message", admin_jstr(msg));
    if (j && upstream_status) json_object_set_new(j, "status", json_integer(upstream_status));
    admin_reply(resp, status, j);
}

/* "{base}/v1/models", or "{base}/models" when the base already ends in /v1. */
static char *models_url(const char *base)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/') n--;
    bool has_v1 = n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0;
    char *url = NULL;
    if (asprintf(&url, "%.*s%s", (int)n, base, has_v1 ? "/models" : "/v1/models") < 0) return NULL;
    return url;
}

static bool is_auth_header(const char *name)
{
    return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "x-api-key") == 0;
}

/* Performs the request and, on success, collects model names into `names` (borrowed from
 * `doc`, which the caller releases). Answers the failure itself and returns false. */
static bool fetch_models(const struct admin_ctx *ctx, const struct site *site, const char *key,
                         json_t **doc, const char ***names, size_t *n_names,
                         struct admin_response *resp)
{
    char *url = models_url(site->url);
    char *auth = NULL;
    bool claude = strcmp(site->platform, "claude") == 0;
    if (!url || asprintf(&auth, "%s%s", claude ? "" : "Bearer ", key) < 0) {
        free(url);
        admin_fail(resp, 500, "out of memory");
        return false;
    }
    struct http_header hdr[3 + MAX_CUSTOM_HEADERS];
    size_t nh = 0;
    hdr[nh++] = (struct http_header){claude ? SLICE_LIT("x-api-key") : SLICE_LIT("Authorization"),
                                     slice_from(auth)};
    hdr[nh++] = (struct http_header){SLICE_LIT("Accept"), SLICE_LIT("application/json")};
    if (claude)
        hdr[nh++] = (struct http_header){SLICE_LIT("anthropic-version"), SLICE_LIT("2023-06-01")};
    /* The site's custom headers (validated when stored), except credentials. */
    json_t *custom = site->custom_headers ? json_loads(site->custom_headers, 0, NULL) : NULL;
    const char *hk;
    json_t *hv;
    json_object_foreach(custom, hk, hv)
    {
        if (nh == sizeof hdr / sizeof hdr[0]) break;
        if (!json_is_string(hv) || is_auth_header(hk)) continue;
        hdr[nh++] = (struct http_header){slice_from(hk), slice_from(json_string_value(hv))};
    }
    struct fetch_request freq = {
        .method = "GET",
        .url = url,
        .headers = hdr,
        .n_headers = nh,
        .proxy_url = site->proxy_url,
        .timeout_ms = MODELS_TIMEOUT_MS,
        .max_response_bytes = MODELS_MAX_BYTES,
    };
    struct fetch_response fres;
    memset(&fres, 0, sizeof fres);
    int rc = fetch_do(ctx->fetch, &freq, &fres);
    json_decref(custom);
    secrets_free_str(auth);
    bool ok = false;
    if (rc != 0) {
        fail_upstream(resp, 502, 0, key, "cannot reach %s: %s", url,
                      fres.error[0] ? fres.error : "transport error");
    } else if (fres.status < 200 || fres.status > 299) {
        char snip[ERROR_SNIPPET_BYTES + 8];
        snippet(&fres.body, snip, sizeof snip);
        fail_upstream(resp, 502, fres.status, key, "upstream answered HTTP %d to GET %s%s%s",
                      fres.status, url, snip[0] ? ": " : "", snip);
    } else {
        json_error_t e;
        *doc = json_loadb(fres.body.p ? fres.body.p : "", fres.body.n, JSON_REJECT_DUPLICATES, &e);
        json_t *data = json_object_get(*doc, "data");
        if (!json_is_array(data)) {
            fail_upstream(resp, 502, fres.status, key,
                          "upstream answer to GET %s is not a model list (%s)", url,
                          *doc ? "no \"data\" array" : e.text);
        } else {
            size_t cap = json_array_size(data);
            if (cap > MODELS_MAX_COUNT) cap = MODELS_MAX_COUNT;
            *names = calloc(cap ? cap : 1, sizeof **names);
            *n_names = 0;
            size_t i;
            json_t *m;
            json_array_foreach(data, i, m)
            {
                if (!*names || *n_names == cap) break;
                json_t *idv = json_object_get(m, "id");
                const char *name = json_string_value(idv);
                if (!name || !*name || json_string_length(idv) > MODEL_NAME_MAX ||
                    strlen(name) != json_string_length(idv))
                    continue;
                (*names)[(*n_names)++] = name;
            }
            ok = *names != NULL;
            if (!ok) admin_fail(resp, 500, "out of memory");
        }
    }
    fetch_response_free(&fres);
    free(url);
    return ok;
}

void admin_models_check(const struct admin_ctx *ctx, int64_t account_id,
                        struct admin_response *resp)
{
    struct account a;
    enum store_status st = accounts_get(ctx->db, account_id, &a);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        return;
    }
    struct site site;
    memset(&site, 0, sizeof site);
    if (!a.api_token) {
        admin_fail(resp, 422, "account %lld has no usable API token%s%s", (long long)account_id,
                   a.api_token_error[0] ? ": " : "", a.api_token_error);
        goto out;
    }
    if (!ctx->fetch) {
        admin_fail(resp, 503, "no HTTP client available to reach the site");
        goto out;
    }
    st = sites_get(ctx->db, a.site_id, &site);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "site");
        goto out;
    }
    json_t *doc = NULL;
    const char **names = NULL;
    size_t n = 0;
    if (fetch_models(ctx, &site, a.api_token, &doc, &names, &n, resp)) {
        st = account_models_replace(ctx->db, account_id, names, n);
        struct account_model *ml = NULL;
        size_t nm = 0;
        if (st == STORE_OK) st = account_models_list(ctx->db, account_id, &ml, &nm);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "account models");
        } else {
            json_t *arr = json_array();
            for (size_t i = 0; i < nm; i++)
                json_array_append_new(arr, admin_jstr(ml[i].model_name));
            admin_reply(
                resp, 200,
                json_pack("{s:b, s:o, s:I}", "success", 1, "models", arr, "count", (json_int_t)nm));
            admin_routing_changed(ctx);
        }
        account_models_free(ml, nm);
    }
    free(names);
    json_decref(doc);
out:
    site_clear(&site);
    account_clear(&a);
}
