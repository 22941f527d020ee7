/* http.c — one call sequence of an adapter (struct pf_ctx): the management headers every
 * call carries, the cookie jar merged across calls, the acw_sc__v2 challenge solved and
 * the request retried once, the cached /api/status, and the scrubbing of credentials
 * out of error messages before they leave the adapter. */
#include "platforms/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PF_TIMEOUT_MS  20000u
#define PF_MAX_BODY    (16u * 1024 * 1024)
#define PF_MAX_HEADERS 40

/* Forks read the same user id from one of these (New API, Veloera, VoAPI, …): sending
 * all of them is harmless and saves guessing the fork. */
static const char *const USER_HEADERS[] = {"New-Api-User", "Veloera-User", "voapi-user",
                                           "User-id",      "Rix-Api-User", "neo-api-user"};

int pf_ctx_init(struct pf_ctx *x, fetch_client_t *f, const struct platform_credentials *c,
                struct platform_error *err)
{
    memset(x, 0, sizeof *x);
    x->f = f;
    x->c = c;
    x->err = err;
    x->timeout_ms = PF_TIMEOUT_MS;
    x->send_bearer = true;
    if (err) memset(err, 0, sizeof *err);
    if (!f || !c || !c->base_url || !*c->base_url)
        return pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, 0, "no site URL given");
    const char *b = c->base_url;
    if (strncasecmp(b, "http://", 7) != 0 && strncasecmp(b, "https://", 8) != 0)
        return pf_fail(err, PLATFORM_ERR_UNREACHABLE, 0,
                       "the site URL must start with http:// or https://");
    size_t n = strlen(b);
    while (n > 8 && b[n - 1] == '/') n--;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] <= 0x20 || b[i] == 0x7f)
            return pf_fail(err, PLATFORM_ERR_UNREACHABLE, 0, "the site URL contains spaces");
    x->base = strndup(b, n);
    if (!x->base) return pf_fail(err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    if (c->cookie && !pf_cookie_load(&x->jar, c->cookie))
        return pf_fail(err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    if (c->access_token && *c->access_token) x->bearer = strdup(c->access_token);
    if (c->user_id && *c->user_id) x->user_id = strdup(c->user_id);
    return 0;
}

void pf_ctx_set_bearer(struct pf_ctx *x, const char *token)
{
    free(x->bearer);
    x->bearer = token && *token ? strdup(token) : NULL;
}

void pf_ctx_set_user(struct pf_ctx *x, const char *user_id)
{
    free(x->user_id);
    x->user_id = user_id && *user_id ? strdup(user_id) : NULL;
}

/* Replaces every occurrence of `secret` (when long enough to matter) in msg with ***. */
static void scrub_one(char *msg, size_t cap, const char *secret, size_t sn)
{
    if (!secret || sn < 6) return;
    char *p;
    while ((p = memmem(msg, strlen(msg), secret, sn)) != NULL) {
        size_t tail = strlen(p + sn);
        if (sn < 3) return;
        memcpy(p, "***", 3);
        memmove(p + 3, p + sn, tail + 1);
    }
    (void)cap;
}

static void scrub_jar_values(char *msg, size_t cap, const char *jar)
{
    const char *p = jar;
    while (p && *p) {
        const char *semi = strchr(p, ';');
        const char *e = semi ? semi : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq) scrub_one(msg, cap, eq + 1, (size_t)(e - eq - 1));
        p = semi ? semi + 1 : NULL;
    }
}

int pf_ctx_end(struct pf_ctx *x, int rc)
{
    struct platform_error *err = x->err;
    if (err && rc != 0) {
        const struct platform_credentials *c = x->c;
        char *m = err->message;
        size_t cap = sizeof err->message;
        if (c) {
            const char *secrets[] = {c->password, c->access_token, c->refresh_token,
                                     c->api_key,  c->totp_secret,  c->cookie};
            for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
                if (secrets[i]) scrub_one(m, cap, secrets[i], strlen(secrets[i]));
            scrub_jar_values(m, cap, c->cookie);
        }
        if (x->bearer) scrub_one(m, cap, x->bearer, strlen(x->bearer));
        if (x->jar.p) scrub_jar_values(m, cap, x->jar.p);
    }
    if (err && rc == 0) memset(err, 0, sizeof *err);
    free(x->base);
    free(x->bearer);
    free(x->user_id);
    buf_free(&x->jar);
    json_decref(x->status);
    memset(x, 0, sizeof *x);
    return rc;
}

static bool is_reserved(const char *name)
{
    static const char *const names[] = {"authorization", "cookie",         "x-api-key",
                                        "content-type",  "content-length", "host"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0) return true;
    return false;
}

int pf_http(struct pf_ctx *x, const char *method, const char *path, const json_t *body,
            const struct http_header *extra, size_t n_extra, struct fetch_response *resp)
{
    memset(resp, 0, sizeof *resp);
    char *url = NULL, *auth = NULL, *origin = NULL, *referer = NULL, *body_text = NULL;
    json_t *custom = NULL;
    int rc = -1;
    if (asprintf(&url, "%s%s", x->base, path) < 0) {
        url = NULL;
        return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    }
    if (body && !(body_text = json_dumps(body, JSON_COMPACT))) {
        free(url);
        return pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
    }
    if (x->c->custom_headers_json && *x->c->custom_headers_json)
        custom = json_loads(x->c->custom_headers_json, 0, NULL);

    for (int attempt = 0; attempt < 2; attempt++) {
        struct http_header h[PF_MAX_HEADERS];
        size_t nh = 0;
        h[nh++] = (struct http_header){SLICE_LIT("Accept"),
                                       SLICE_LIT("application/json, text/plain, */*")};
        h[nh++] = (struct http_header){SLICE_LIT("User-Agent"), SLICE_LIT(PF_BROWSER_UA)};
        if (body_text)
            h[nh++] =
                (struct http_header){SLICE_LIT("Content-Type"), SLICE_LIT("application/json")};
        free(auth);
        auth = NULL;
        if (x->send_bearer && x->bearer) {
            if (asprintf(&auth, "Bearer %s", x->bearer) < 0) auth = NULL;
            if (auth) h[nh++] = (struct http_header){SLICE_LIT("Authorization"), slice_from(auth)};
        }
        if (x->jar.n && buf_nul(&x->jar))
            h[nh++] = (struct http_header){SLICE_LIT("Cookie"), slice_from(x->jar.p)};
        if (x->user_headers && x->user_id)
            for (size_t i = 0; i < sizeof USER_HEADERS / sizeof USER_HEADERS[0]; i++)
                h[nh++] = (struct http_header){slice_from(USER_HEADERS[i]), slice_from(x->user_id)};
        if (x->browser) {
            if (!origin && asprintf(&origin, "%s", x->base) < 0) origin = NULL;
            if (!referer && asprintf(&referer, "%s/", x->base) < 0) referer = NULL;
            if (origin) h[nh++] = (struct http_header){SLICE_LIT("Origin"), slice_from(origin)};
            if (referer) h[nh++] = (struct http_header){SLICE_LIT("Referer"), slice_from(referer)};
            h[nh++] =
                (struct http_header){SLICE_LIT("X-Requested-With"), SLICE_LIT("XMLHttpRequest")};
        }
        for (size_t i = 0; i < n_extra && nh < PF_MAX_HEADERS; i++) h[nh++] = extra[i];
        const char *hk;
        json_t *hv;
        json_object_foreach(custom, hk, hv)
        {
            if (nh == PF_MAX_HEADERS) break;
            if (!json_is_string(hv) || is_reserved(hk)) continue;
            h[nh++] = (struct http_header){slice_from(hk), slice_from(json_string_value(hv))};
        }
        struct fetch_request req = {
            .method = method ? method : "GET",
            .url = url,
            .headers = h,
            .n_headers = nh,
            .body = body_text ? slice_from(body_text) : SLICE_NULL,
            .proxy_url = x->c->proxy_url,
            .timeout_ms = x->timeout_ms,
            .max_response_bytes = PF_MAX_BODY,
        };
        if (attempt) fetch_response_free(resp);
        if (fetch_do(x->f, &req, resp) != 0) {
            pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, resp->status,
                    "%s %s: cannot reach the site: %s", req.method, path,
                    resp->error[0] ? resp->error : "transport error");
            goto out;
        }
        x->last_status = resp->status;
        if (resp->headers_raw.n &&
            !pf_cookie_merge(&x->jar, resp->headers_raw.p, resp->headers_raw.n)) {
            pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
            goto out;
        }
        /* Aliyun's challenge: compute the cookie the page's script would set, retry once. */
        char solved[41];
        if (attempt == 0 && pf_body_is_html(resp->body.p, resp->body.n) &&
            acw_challenge_detect(resp->body.p, resp->body.n) &&
            acw_challenge_solve(resp->body.p, resp->body.n, solved) == 0) {
            if (!pf_cookie_set(&x->jar, SLICE_LIT("acw_sc__v2"), slice_from(solved))) {
                pf_fail(x->err, PLATFORM_ERR_UNREACHABLE, 0, "out of memory");
                goto out;
            }
            continue;
        }
        rc = 0;
        break;
    }
out:
    if (rc != 0) fetch_response_free(resp);
    free(url);
    free(auth);
    free(origin);
    free(referer);
    free(body_text);
    json_decref(custom);
    return rc;
}

int pf_call(struct pf_ctx *x, const char *method, const char *path, const json_t *body,
            json_t **root, json_t **data)
{
    *root = NULL;
    *data = NULL;
    struct fetch_response resp;
    if (pf_http(x, method, path, body, NULL, 0, &resp) != 0) return -1;
    char what[160];
    const char *q = strchr(path, '?');
    snprintf(what, sizeof what, "%s %.*s", method ? method : "GET",
             (int)(q ? (size_t)(q - path) : strlen(path)), path);
    int rc = pf_envelope(resp.body.p, resp.body.n, resp.status, what, root, data, x->err);
    /* Keep the site's own words (a check-in's "签到成功", "今日已签到") for the caller. */
    x->site_msg[0] = '\0';
    json_t *doc = rc == 0 ? json_incref(*root)
                          : json_loadb(resp.body.p ? resp.body.p : "", resp.body.n, 0, NULL);
    const char *m = json_is_object(doc) ? pf_json_message(doc) : NULL;
    if (m) snprintf(x->site_msg, sizeof x->site_msg, "%s", m);
    json_decref(doc);
    fetch_response_free(&resp);
    return rc;
}

const json_t *pf_site_status(struct pf_ctx *x)
{
    if (x->status) return x->status;
    json_t *root, *data;
    bool bearer = x->send_bearer;
    x->send_bearer = false; /* public route */
    int rc = pf_call(x, "GET", "/api/status", NULL, &root, &data);
    x->send_bearer = bearer;
    if (rc != 0) return NULL;
    if (!json_is_object(data)) {
        json_decref(root);
        pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                "GET /api/status: the answer has no status object");
        return NULL;
    }
    x->status = json_incref(data);
    json_decref(root);
    return x->status;
}

int pf_quota_per_unit(struct pf_ctx *x, double *out)
{
    if (x->qpu > 0) {
        *out = x->qpu;
        return 0;
    }
    const json_t *st = pf_site_status(x);
    double q = 0;
    if (!st) {
        /* A build without /api/status still counts quota in the default unit. */
        if (x->err && x->err->kind == PLATFORM_ERR_UNSUPPORTED) {
            memset(x->err, 0, sizeof *x->err);
            q = PF_DEFAULT_QUOTA_PER_UNIT;
        } else {
            return -1;
        }
    } else if (!pf_jnum(st, "quota_per_unit", &q) || q <= 0) {
        q = PF_DEFAULT_QUOTA_PER_UNIT;
    }
    x->qpu = q;
    *out = q;
    return 0;
}
