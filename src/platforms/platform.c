/* platform.c — the adapter registry, the release functions of platform.h's result types,
 * and platform detection from a site URL (upstream-platforms.md §9.1):
 * host hints → Sub2API's /api/v1/settings/public (code 0) → /api/status signatures
 * (Veloera, DoneHub, OneHub, New API, else One API; an Aliyun challenge page means an
 * AnyRouter-like shielded New API) → a bare /v1 API (Claude or OpenAI-compatible). */
#include "platforms/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "platforms/common.h"

extern const struct platform platform_new_api;
extern const struct platform platform_anyrouter;
extern const struct platform platform_one_api;
extern const struct platform platform_one_hub;
extern const struct platform platform_done_hub;
extern const struct platform platform_veloera;
extern const struct platform platform_sub2api;
extern const struct platform platform_openai_compatible;
extern const struct platform platform_claude;

static const struct platform *const ALL[] = {
    &platform_new_api,  &platform_anyrouter,
    &platform_one_api,  &platform_one_hub,
    &platform_done_hub, &platform_veloera,
    &platform_sub2api,  &platform_openai_compatible,
    &platform_claude,   NULL,
};

const struct platform *const *platform_all(void)
{
    return ALL;
}

const struct platform *platform_by_id(const char *id)
{
    if (!id) return NULL;
    for (size_t i = 0; ALL[i]; i++)
        if (strcasecmp(ALL[i]->id, id) == 0) return ALL[i];
    /* Names other tools (and Metapi) use for the same platforms. */
    static const struct {
        const char *alias, *id;
    } aliases[] = {
        {"newapi", "new-api"},           {"new_api", "new-api"},   {"oneapi", "one-api"},
        {"one_api", "one-api"},          {"onehub", "one-hub"},    {"one_hub", "one-hub"},
        {"donehub", "done-hub"},         {"done_hub", "done-hub"}, {"openai-compatible", "openai"},
        {"openai_compatible", "openai"}, {"anthropic", "claude"},  {"sub2-api", "sub2api"},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(aliases[i].alias, id) == 0) return platform_by_id(aliases[i].id);
    return NULL;
}

void platform_session_free(struct platform_session *s)
{
    if (!s) return;
    free(s->access_token);
    free(s->refresh_token);
    free(s->cookie);
    free(s->user_id);
    free(s->username);
    memset(s, 0, sizeof *s);
}

void platform_balance_free(struct platform_balance *b)
{
    if (!b) return;
    free(b->currency);
    free(b->display_name);
    free(b->group);
    memset(b, 0, sizeof *b);
}

void platform_checkin_free(struct platform_checkin *c)
{
    if (!c) return;
    free(c->message);
    memset(c, 0, sizeof *c);
}

void platform_token_free(struct platform_token *t)
{
    if (!t) return;
    free(t->id);
    free(t->name);
    free(t->key);
    free(t->masked_key);
    free(t->group);
    free(t->model_limits);
    memset(t, 0, sizeof *t);
}

void platform_token_list_free(struct platform_token_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) platform_token_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void platform_model_list_free(struct platform_model_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->models[i]);
    free(l->models);
    for (size_t i = 0; i < l->n_prices; i++) {
        free(l->prices[i].model);
        free(l->prices[i].group);
    }
    free(l->prices);
    memset(l, 0, sizeof *l);
}

void platform_group_list_free(struct platform_group_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].description);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* The host part of a URL, lower-cased, into out. */
static void url_host(const char *url, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = NULL;
    for (const char *q = p; *q && *q != '/' && *q != '?' && *q != '#'; q++)
        if (*q == '@') at = q;
    if (at) p = at + 1;
    size_t n = 0;
    while (p[n] && p[n] != '/' && p[n] != ':' && p[n] != '?' && p[n] != '#' && n + 1 < cap) {
        char ch = p[n];
        out[n] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        n++;
    }
    out[n] = '\0';
}

static bool host_is(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);
    return h >= d && strcmp(host + h - d, domain) == 0 && (h == d || host[h - d - 1] == '.');
}

const struct platform *platform_detect_status(const json_t *st)
{
    const char *name = pf_jstr(st, "system_name");
    if (json_object_get(st, "check_in_enabled") || (name && strcasestr(name, "veloera")))
        return &platform_veloera;
    if (json_object_get(st, "GeminiAPIEnabled") || json_object_get(st, "max_log_query_days") ||
        (name && strcasestr(name, "done hub")))
        return &platform_done_hub;
    if (json_object_get(st, "PaymentUSDRate") || json_object_get(st, "UptimeEnabled") ||
        (name && strcasestr(name, "one hub")))
        return &platform_one_hub;
    if (json_object_get(st, "quota_display_type") || json_object_get(st, "checkin_enabled") ||
        json_object_get(st, "setup") || json_object_get(st, "self_use_mode_enabled") ||
        (name && strcasestr(name, "new api")))
        return &platform_new_api;
    return &platform_one_api;
}

const struct platform *platform_detect(fetch_client_t *f, const char *base_url,
                                       const char *proxy_url, struct platform_error *err)
{
    struct platform_error scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    struct platform_credentials c = {.base_url = base_url, .proxy_url = proxy_url};
    struct pf_ctx x;
    if (pf_ctx_init(&x, f, &c, err) != 0) {
        pf_ctx_end(&x, -1);
        return NULL;
    }
    x.timeout_ms = 10000;
    char host[256];
    url_host(x.base, host, sizeof host);
    const struct platform *p = NULL;
    if (host_is(host, "anyrouter.top"))
        p = &platform_anyrouter;
    else if (host_is(host, "api.anthropic.com"))
        p = &platform_claude;
    else if (host_is(host, "api.openai.com"))
        p = &platform_openai_compatible;
    if (p) {
        pf_ctx_end(&x, 0);
        return p;
    }

    /* Sub2API: its own public settings with code 0. */
    struct fetch_response r;
    if (pf_http(&x, "GET", "/api/v1/settings/public", NULL, NULL, 0, &r) != 0) {
        pf_ctx_end(&x, -1);
        return NULL; /* unreachable: err says why */
    }
    json_t *root = NULL, *data = NULL;
    struct platform_error ignore;
    if (r.status == 200 &&
        pf_envelope(r.body.p, r.body.n, r.status, "probe", &root, &data, &ignore) == 0) {
        const json_t *code = json_object_get(root, "code");
        if (json_is_integer(code) && json_integer_value(code) == 0) p = &platform_sub2api;
        json_decref(root);
    }
    fetch_response_free(&r);
    if (p) {
        pf_ctx_end(&x, 0);
        return p;
    }

    /* The One API lineage. A challenge page that survives the solver still says "AnyRouter". */
    if (pf_http(&x, "GET", "/api/status", NULL, NULL, 0, &r) != 0) {
        pf_ctx_end(&x, -1);
        return NULL;
    }
    char *acw = pf_cookie_get(&x.jar, "acw_sc__v2");
    bool shielded = acw != NULL;
    free(acw);
    if (acw_challenge_detect(r.body.p, r.body.n) && pf_body_is_html(r.body.p, r.body.n)) {
        p = &platform_anyrouter;
    } else if (pf_envelope(r.body.p, r.body.n, r.status, "probe", &root, &data, &ignore) == 0) {
        if (json_is_object(data) && json_object_get(root, "success")) {
            p = platform_detect_status(data);
            /* A New API behind Aliyun's shield behaves like AnyRouter. */
            if (shielded && p == &platform_new_api) p = &platform_anyrouter;
        }
        json_decref(root);
    }
    fetch_response_free(&r);
    if (p) {
        pf_ctx_end(&x, 0);
        return p;
    }

    /* A bare API: /v1/models answers JSON (usually 401 without a key). */
    if (pf_http(&x, "GET", strstr(x.base, "/v1") ? "/models" : "/v1/models", NULL, NULL, 0, &r) ==
        0) {
        json_t *doc = json_loadb(r.body.p ? r.body.p : "", r.body.n, 0, NULL);
        if (json_is_object(doc)) {
            const char *type = pf_jstr(doc, "type");
            if (type && strcmp(type, "error") == 0)
                p = &platform_claude;
            else if (json_object_get(doc, "error") || json_object_get(doc, "data"))
                p = &platform_openai_compatible;
        }
        json_decref(doc);
        fetch_response_free(&r);
    }
    if (p) {
        pf_ctx_end(&x, 0);
        return p;
    }
    pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, x.last_status,
            "could not recognise the platform of this site (no Sub2API settings, no New API/One "
            "API status, no /v1/models); choose the platform by hand");
    pf_ctx_end(&x, -1);
    return NULL;
}
