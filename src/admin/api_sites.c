/* api_sites.c — /api/sites: list, read, create, partial update, delete (cascading to the
 * site's accounts and models). Validates what the store cannot: the URL (http(s) with a
 * host, trailing slashes removed), the platform name, the proxy URL and the custom
 * headers (an object of string values, or that object as JSON text; names must be HTTP
 * tokens and values free of control characters, since they go out as request headers). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "platforms/platform.h"
#include "platforms/relay_formats.h"
#include "protocol/ir.h"
#include "store/sites.h"

static const char *const PLATFORMS[] = {"new-api",   "one-api", "one-hub", "done-hub", "veloera",
                                        "anyrouter", "sub2api", "openai",  "claude",   NULL};

#define NAME_MAX_LEN 200
#define URL_MAX_LEN  2048

/* Owned copies of normalised fields while a request is read (freed by the caller). */
struct owned {
    char *url;
    char *headers;
    char formats[40];
};

/* The formats the site's relay speaks: its own setting, else its platform's default. */
static json_t *formats_json(const struct site *s)
{
    unsigned mask = s->formats ? api_formats_parse(s->formats) : 0;
    if (!mask) mask = relay_formats_default(s->platform);
    json_t *arr = json_array();
    for (enum api_format f = API_CHAT; f <= API_RESPONSES; f++)
        if (mask & API_FORMAT_BIT(f)) json_array_append_new(arr, json_string(api_format_name(f)));
    return arr;
}

static json_t *site_json(const struct site *s)
{
    json_t *j =
        json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "id",
                  (json_int_t)s->id, "name", admin_jstr(s->name), "url", admin_jstr(s->url),
                  "platform", admin_jstr(s->platform), "status", admin_jstr(s->status), "proxyUrl",
                  admin_jstr(s->proxy_url), "customHeaders", admin_jstr(s->custom_headers),
                  "formats", formats_json(s), "formatsDefault", s->formats == NULL, "createdAt",
                  admin_jstr(s->created_at), "updatedAt", admin_jstr(s->updated_at));
    if (j)
        json_object_set_new(j, "globalWeight",
                            json_real(s->global_weight > 0 ? s->global_weight : 1));
    return j;
}

/* `formats`: an array of names, a comma-separated string, or null/"" for the platform's
 * default. Normalised into own->formats ("chat,messages" order). */
static bool read_formats(json_t *body, struct site_fields *f, struct owned *own,
                         struct admin_response *resp)
{
    json_t *v = json_object_get(body, "formats");
    if (!v) return true;
    f->set_formats = true;
    if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) return true;
    unsigned mask = 0;
    if (json_is_string(v)) {
        mask = api_formats_parse(json_string_value(v));
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            unsigned m = json_is_string(e) ? api_formats_parse(json_string_value(e)) : 0;
            if (!m) {
                mask = 0;
                break;
            }
            mask |= m;
        }
    }
    if (!mask) {
        admin_fail(resp, 400,
                   "formats must list one or more of chat, messages, responses (or be null for "
                   "the platform's default)");
        return false;
    }
    api_formats_format(mask, own->formats, sizeof own->formats);
    f->formats = own->formats;
    return true;
}

static bool has_ctl_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) return true;
    return false;
}

/* Checks an http(s) URL with a host and no query or fragment; removes trailing slashes in
 * place. NULL when fine, else the reason. */
static const char *check_site_url(char *url)
{
    size_t n = strlen(url);
    if (n == 0) return "must not be empty";
    if (n > URL_MAX_LEN) return "is too long";
    if (has_ctl_or_space(url)) return "must not contain spaces or control characters";
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else
        return "must start with http:// or https://";
    size_t host = strcspn(rest, "/?#");
    if (host == 0) return "must have a host";
    if (strpbrk(rest, "?#")) return "must not have a query or fragment (give the base URL)";
    if (memchr(rest, '@', host)) return "must not contain credentials";
    while (n > 0 && url[n - 1] == '/' && (size_t)(url + n - 1 - rest) >= host) url[--n] = 0;
    return NULL;
}

static bool known_platform(const char *p)
{
    for (const char *const *q = PLATFORMS; *q; q++)
        if (strcmp(*q, p) == 0) return true;
    return false;
}

/* Headers that frame the message or the connection: the HTTP client owns them, and a
 * stored override could desynchronise the upstream connection. */
static bool is_reserved_header(const char *name)
{
    static const char *const reserved[] = {
        "content-length", "transfer-encoding", "connection", "upgrade", "te",
        "trailer",        "keep-alive",        "expect",     NULL};
    for (const char *const *r = reserved; *r; r++)
        if (strcasecmp(*r, name) == 0) return true;
    return false;
}

static bool is_token_char(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Normalises customHeaders (object, JSON text of an object, null or "") into compact JSON
 * text in *out (malloc'ed; NULL for none). NULL when fine, else the reason in `why`. */
static const char *check_headers(json_t *v, char **out, char why[160])
{
    *out = NULL;
    if (json_is_null(v)) return NULL;
    json_t *obj = NULL;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return NULL;
        json_error_t e;
        obj = json_loadb(json_string_value(v), json_string_length(v), JSON_REJECT_DUPLICATES, &e);
        if (!obj) {
            snprintf(why, 160, "is not valid JSON (byte %d: %.100s)", e.position, e.text);
            return why;
        }
    } else {
        obj = json_incref(v);
    }
    const char *err = NULL;
    if (!json_is_object(obj)) err = "must be an object of string values";
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val)
    {
        if (err) break;
        if (!*k || strlen(k) > 128) err = "has an empty or too long header name";
        for (const char *c = k; !err && *c; c++)
            if (!is_token_char((unsigned char)*c)) err = "has an invalid header name";
        if (!err && is_reserved_header(k)) {
            snprintf(why, 160, "must not set %.64s (managed by the HTTP client)", k);
            err = why;
        }
        if (err) break;
        if (!json_is_string(val)) {
            snprintf(why, 160, "value of %.64s must be a string", k);
            err = why;
            break;
        }
        const char *s = json_string_value(val);
        if (json_string_length(val) != strlen(s) || strpbrk(s, "\r\n")) {
            snprintf(why, 160, "value of %.64s must not contain line breaks or NUL", k);
            err = why;
        }
    }
    if (!err && json_object_size(obj) > 0) {
        *out = json_dumps(obj, JSON_COMPACT);
        if (!*out) err = "could not be stored (out of memory)";
    }
    json_decref(obj);
    return err;
}

/* Reads and validates the fields present in `body` into `f`, keeping owned copies in
 * `own` (freed by the caller). `create` requires name, url and platform. false after
 * answering 400. */

static bool opt_string(json_t *body, const char *key, const char **out, bool *present,
                       struct admin_response *resp)
{
    json_t *v = json_object_get(body, key);
    if (present) *present = v != NULL;
    if (!v || json_is_null(v)) {
        *out = NULL;
        return true;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        admin_fail(resp, 400, "%s must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool read_fields(json_t *body, bool create, struct site_fields *f, struct owned *own,
                        struct admin_response *resp)
{
    memset(f, 0, sizeof *f);
    const char *url = NULL, *proxy = NULL;
    bool has_proxy = false;
    if (!opt_string(body, "name", &f->name, NULL, resp) ||
        !opt_string(body, "url", &url, NULL, resp) ||
        !opt_string(body, "platform", &f->platform, NULL, resp) ||
        !opt_string(body, "status", &f->status, NULL, resp) ||
        !opt_string(body, "proxyUrl", &proxy, &has_proxy, resp))
        return false;
    if (create && (!f->name || !url || !f->platform)) {
        admin_fail(resp, 400, "name, url and platform are required");
        return false;
    }
    if (f->name) {
        const char *s = f->name;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || strlen(f->name) > NAME_MAX_LEN) {
            admin_fail(resp, 400, "name must be a non-empty string of at most %d bytes",
                       NAME_MAX_LEN);
            return false;
        }
    }
    if (url) {
        own->url = strdup(url);
        const char *why = own->url ? check_site_url(own->url) : "could not be read";
        if (why) {
            admin_fail(resp, 400, "url %s", why);
            return false;
        }
        f->url = own->url;
    }
    if (f->platform && !known_platform(f->platform)) {
        admin_fail(resp, 400,
                   "platform must be one of new-api, one-api, one-hub, done-hub, veloera, "
                   "anyrouter, sub2api, openai, claude");
        return false;
    }
    if (f->status && strcmp(f->status, "active") != 0 && strcmp(f->status, "disabled") != 0) {
        admin_fail(resp, 400, "status must be \"active\" or \"disabled\"");
        return false;
    }
    if (has_proxy) {
        f->set_proxy_url = true;
        if (proxy && *proxy) {
            if (strlen(proxy) > URL_MAX_LEN || has_ctl_or_space(proxy) || !strstr(proxy, "://")) {
                admin_fail(resp, 400,
                           "proxyUrl must be a URL such as http://host:port or socks5://host:port");
                return false;
            }
            f->proxy_url = proxy;
        }
    }
    if (!read_formats(body, f, own, resp)) return false;
    json_t *gw = json_object_get(body, "globalWeight");
    if (gw && !json_is_null(gw)) {
        /* the site's weight in the weighted strategy (multiplies its channels' scores) */
        if (!json_is_number(gw) || json_number_value(gw) <= 0 || json_number_value(gw) > 1e6) {
            admin_fail(resp, 400, "globalWeight must be a number greater than 0 (at most 1e6)");
            return false;
        }
        f->global_weight = json_number_value(gw);
    }
    json_t *h = json_object_get(body, "customHeaders");
    if (h) {
        char why[160];
        const char *err = check_headers(h, &own->headers, why);
        if (err) {
            admin_fail(resp, 400, "customHeaders %s", err);
            return false;
        }
        f->set_custom_headers = true;
        f->custom_headers = own->headers;
    }
    return true;
}

void admin_sites(const struct admin_ctx *ctx, const struct admin_request *req, int64_t id,
                 struct admin_response *resp)
{
    db_t *db = ctx->db;
    if (strcmp(req->method, "GET") == 0 && id == 0) {
        struct site *list;
        size_t n;
        enum store_status st = sites_list(db, &list, &n);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "sites");
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, site_json(&list[i]));
        sites_free(list, n);
        {
            admin_reply(resp, 200, arr);
            return;
        }
    }
    if (strcmp(req->method, "GET") == 0) {
        struct site s;
        enum store_status st = sites_get(db, id, &s);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "site");
            return;
        }
        json_t *j = site_json(&s);
        site_clear(&s);
        {
            admin_reply(resp, 200, j);
            return;
        }
    }
    if (strcmp(req->method, "DELETE") == 0) {
        enum store_status st = sites_delete(db, id);
        if (st != STORE_OK) {
            admin_fail_store(resp, st, "site");
            return;
        }
        admin_routing_changed(ctx);
        {
            admin_ok(resp);
            return;
        }
    }
    /* POST (create) or PUT (update) */
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    struct site_fields f;
    struct owned own = {0};
    bool create = id == 0;
    if (read_fields(body, create, &f, &own, resp)) {
        struct site s;
        enum store_status st = create ? sites_create(db, &f, &s) : sites_update(db, id, &f, &s);
        if (st == STORE_CONFLICT)
            admin_fail(resp, 409, "a site with this platform and url already exists");
        else if (st != STORE_OK)
            admin_fail_store(resp, st, "site");
        else {
            admin_reply(resp, 200, site_json(&s));
            site_clear(&s);
            admin_routing_changed(ctx);
        }
    }
    free(own.url);
    free(own.headers);
    json_decref(body);
}

/* POST /api/sites/detect {url, proxyUrl?} → {success, url, platform}. */
void admin_sites_detect(const struct admin_ctx *ctx, const struct admin_request *req,
                        struct admin_response *resp)
{
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    const char *url = NULL, *proxy = NULL;
    char *own = NULL;
    if (!opt_string(body, "url", &url, NULL, resp) ||
        !opt_string(body, "proxyUrl", &proxy, NULL, resp))
        goto out;
    if (!url) {
        admin_fail(resp, 400, "url is required");
        goto out;
    }
    own = strdup(url);
    const char *why = own ? check_site_url(own) : "could not be read";
    if (why) {
        admin_fail(resp, 400, "url %s", why);
        goto out;
    }
    if (!ctx->fetch) {
        admin_fail(resp, 503, "no HTTP client available to reach the site");
        goto out;
    }
    struct platform_error err = {0};
    const struct platform *p = platform_detect(ctx->fetch, own, proxy, &err);
    if (!p) {
        admin_fail(resp, err.kind == PLATFORM_ERR_UNREACHABLE ? 502 : 422,
                   "cannot detect the platform of %s: %s", own,
                   err.message[0] ? err.message : "no known signature");
        goto out;
    }
    admin_reply(resp, 200,
                json_pack("{s:b, s:o, s:s, s:s}", "success", 1, "url", admin_jstr(own), "platform",
                          p->id, "displayName", p->display_name));
out:
    free(own);
    json_decref(body);
}
