/* sites.h — the sites table: upstream relay stations and providers. Configuration writes
 * commit before returning (BEGIN IMMEDIATE). Validation of field formats (URL, platform
 * names, header JSON) belongs to the caller; the store enforces uniqueness of
 * (platform, url) and the status domain. */
#ifndef METARELAY_STORE_SITES_H
#define METARELAY_STORE_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/repo.h"
#include "store/store.h"

struct site {
    int64_t id;
    char *name;
    char *url;            /* without trailing slash */
    char *platform;       /* "new-api", "openai", … */
    char *status;         /* "active" | "disabled" */
    char *proxy_url;      /* NULL when none */
    char *custom_headers; /* JSON object text, NULL when none */
    char *formats;        /* "chat,messages,responses" subset; NULL = platform default */
    char *created_at;     /* ISO-8601 UTC */
    char *updated_at;
    double global_weight; /* routing weight of the site (default 1) */
};

/* Values to write. For create, name/url/platform are required and a NULL status means
 * "active". For update, a NULL field keeps the stored value; proxy_url and custom_headers
 * are written when their set_ flag is true (NULL then clears them). */
struct site_fields {
    const char *name;
    const char *url;
    const char *platform;
    const char *status;
    const char *proxy_url;
    const char *custom_headers;
    const char *formats;
    bool set_proxy_url;
    bool set_custom_headers;
    bool set_formats;
    double global_weight; /* > 0 writes it (create: default 1) */
};

/* Frees the strings of one site (not the struct). */
void site_clear(struct site *s);
/* Frees an array from sites_list. */
void sites_free(struct site *sites, size_t n);

/* All sites by id. *out malloc'ed (sites_free). */
enum store_status sites_list(db_t *db, struct site **out, size_t *n);
/* One site; on STORE_OK `out` holds strings the caller frees (site_clear). */
enum store_status sites_get(db_t *db, int64_t id, struct site *out);
/* Creates a site; on STORE_OK `out` (may be NULL) receives the stored row.
 * STORE_CONFLICT when (platform, url) exists, STORE_INVALID on a bad status. */
enum store_status sites_create(db_t *db, const struct site_fields *f, struct site *out);
/* Partial update; bumps updated_at. STORE_NOT_FOUND, STORE_CONFLICT, STORE_INVALID. */
enum store_status sites_update(db_t *db, int64_t id, const struct site_fields *f, struct site *out);
/* Deletes a site with its accounts and their models (foreign-key cascade). */
enum store_status sites_delete(db_t *db, int64_t id);

#endif
