/* common.h — private helpers shared by the platform adapters (not included outside
 * src/platforms and its tests).
 *
 *  - errors and message classification (already checked in, Turnstile, auth failures);
 *  - the two JSON envelopes (One API lineage success/message/data, Sub2API
 *    code/message/data), HTML-vs-JSON detection;
 *  - a call context (`struct pf_ctx`) that builds the headers of every management call
 *    (Authorization, Cookie, New-Api-User and its aliases, a browser User-Agent, the
 *    site's custom headers), keeps a cookie jar merged from Set-Cookie across calls,
 *    solves the Aliyun acw_sc__v2 challenge once per request, caches /api/status;
 *  - quota → money, TOTP (RFC 6238), the acw_sc__v2 solver;
 *  - the operations of the One API lineage (lineage.c), parameterised per platform.
 *
 * Every helper that fails fills the context's `struct platform_error` and returns -1. */
#ifndef METARELAY_PLATFORMS_COMMON_H
#define METARELAY_PLATFORMS_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/slice.h"
#include "base/acw_challenge.h"
#include "platforms/platform.h"

#define PF_DEFAULT_QUOTA_PER_UNIT 500000.0
#define PF_BROWSER_UA                                                                              \
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "            \
    "Chrome/131.0.0.0 Safari/537.36"

/* ---- errors and messages (common.c) ---- */

/* Fills *err (kind, status, formatted message) and returns -1. err may be NULL. */
int pf_fail(struct platform_error *err, enum platform_error_kind kind, int http_status,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "Already checked in today" in any wording the platforms use (今日已签到, 你今天已经签到过了,
 * already checked in, checkin.already_done…). NULL → false. */
bool pf_msg_already(const char *msg);
/* A Turnstile / captcha / human verification requirement. */
bool pf_msg_captcha(const char *msg);
/* An authentication failure (not logged in, bad or expired token, user header missing…). */
bool pf_msg_auth(const char *msg);
/* Check-in switched off on the site (签到功能未启用, "not enabled"). */
bool pf_msg_checkin_disabled(const char *msg);

/* True when the body looks like HTML (first non-blank byte '<'), not JSON. */
bool pf_body_is_html(const char *body, size_t n);
/* A Cloudflare / Turnstile / captcha interstitial page. */
bool pf_body_is_captcha_page(const char *body, size_t n);

/* Parses a management answer. On success returns 0 with *root (caller json_decref) and
 * *data borrowed from it: `data` of an envelope, or the root itself when the document
 * has no envelope (an array, /v1/models without "success"). On failure returns -1 with
 * *err filled (HTML → BAD_RESPONSE or CAPTCHA, success:false or code≠0 → classified by
 * the site's message, 401/403 → AUTH, 404 → UNSUPPORTED) and *root NULL. `what` names
 * the call in messages ("GET /api/user/self"). */
int pf_envelope(const char *body, size_t n, int http_status, const char *what, json_t **root,
                json_t **data, struct platform_error *err);

/* The message a JSON answer carries (message, msg, error.message, error, reason) or NULL. */
const char *pf_json_message(const json_t *root);

/* ---- JSON getters (common.c); all tolerate NULL and wrong types ---- */
const char *pf_jstr(const json_t *o, const char *key);
/* A number (integer, real, or a numeric string). */
bool pf_jnum(const json_t *o, const char *key, double *out);
/* true / 1 / "true" → true. */
bool pf_jbool(const json_t *o, const char *key);
/* An id (integer or string) as malloc'ed text; NULL when absent. */
char *pf_jid(const json_t *v);
char *pf_strdup(const char *s); /* NULL-safe strdup */

/* ---- money (common.c) ---- */
/* quota / quota_per_unit; a non-positive or non-finite unit means the default 500000. */
double pf_quota_to_money(double quota, double quota_per_unit);
double pf_money_to_quota(double money, double quota_per_unit);

/* ---- cookie jar (cookie.c): a "name=value; name2=value2" string ---- */
/* Sets (or replaces) one cookie; an empty value removes it. false when out of memory. */
bool pf_cookie_set(struct buf *jar, struct slice name, struct slice value);
/* Merges every Set-Cookie line of a raw response header block into the jar (Max-Age≤0
 * removes). false when out of memory. */
bool pf_cookie_merge(struct buf *jar, const char *headers_raw, size_t n);
/* Loads a "a=b; c=d" string (as a user pastes it; a bare value without '=' becomes
 * `session=<value>`) into the jar. */
bool pf_cookie_load(struct buf *jar, const char *cookie);
/* The value of a cookie in the jar (malloc'ed) or NULL. */
char *pf_cookie_get(const struct buf *jar, const char *name);

/* ---- TOTP (totp.c) ---- */
/* Decodes RFC 4648 base32 (case-insensitive; spaces, dashes and '=' padding ignored).
 * Returns the byte count, or -1 on an invalid character or overflow of `cap`. */
int pf_base32_decode(const char *s, unsigned char *out, size_t cap);
/* RFC 6238 code (HMAC-SHA1, 30 s step, `digits` 6..8) of a raw key at unix time t. */
int pf_totp_raw(const unsigned char *key, size_t key_len, int64_t t, int digits, char *out,
                size_t cap);
/* The 6-digit code of a base32 secret at time t. 0, or -1 when the secret is invalid. */
int pf_totp(const char *secret_b32, int64_t t, char out[7]);

/* ---- AnyRouter / Aliyun acw_sc__v2: base/acw_challenge.h ---- */

/* ---- detection (platform.c) ---- */
/* Classifies a One API lineage /api/status data object (§9.1 signatures). */
const struct platform *platform_detect_status(const json_t *st);

/* ---- a call sequence (http.c) ---- */

struct pf_ctx {
    fetch_client_t *f;
    const struct platform_credentials *c;
    struct platform_error *err;
    char *base;          /* base URL without trailing slashes */
    struct buf jar;      /* cookies: the credentials' cookie plus what the site set */
    char *bearer;        /* management token in use (from credentials or a login) */
    char *user_id;       /* New-Api-User value in use */
    bool user_headers;   /* send New-Api-User and its aliases */
    bool browser;        /* Origin/Referer/X-Requested-With like the site's own page */
    bool send_bearer;    /* Authorization from `bearer` (false: api key calls set their own) */
    unsigned timeout_ms; /* per request */
    double qpu;          /* cached quota_per_unit; 0 until read */
    json_t *status;      /* cached /api/status data (owned) */
    int last_status;     /* HTTP status of the last answer */
    char site_msg[256];  /* the site's message in the last answer ("" when none) */
};

/* Starts a call sequence for credentials `c` (borrowed for the context's life). -1 with
 * *err when the base URL is missing or malformed. */
int pf_ctx_init(struct pf_ctx *x, fetch_client_t *f, const struct platform_credentials *c,
                struct platform_error *err);
/* Ends it: removes any credential from the error message, frees the context; returns rc. */
int pf_ctx_end(struct pf_ctx *x, int rc);
/* Replaces the bearer token / user id in use (copies). */
void pf_ctx_set_bearer(struct pf_ctx *x, const char *token);
void pf_ctx_set_user(struct pf_ctx *x, const char *user_id);

/* Performs one request to base+path (`body` JSON or NULL; extra headers borrowed).
 * Set-Cookie answers are merged into the jar; an acw_sc__v2 challenge is solved and the
 * request repeated once. 0 when a status came back (*resp filled: free it), -1 with
 * UNREACHABLE on a transport failure. */
int pf_http(struct pf_ctx *x, const char *method, const char *path, const json_t *body,
            const struct http_header *extra, size_t n_extra, struct fetch_response *resp);
/* pf_http + pf_envelope. 0 with *root (caller json_decref) and *data borrowed. */
int pf_call(struct pf_ctx *x, const char *method, const char *path, const json_t *body,
            json_t **root, json_t **data);

/* GET /api/status once per sequence (cached): the data object (borrowed) or NULL with
 * *err. */
const json_t *pf_site_status(struct pf_ctx *x);
/* The site's quota_per_unit (default 500000 when the site does not say). -1 with *err
 * when the status cannot be read at all. */
int pf_quota_per_unit(struct pf_ctx *x, double *out);

/* True when the credentials allow management calls (token, cookie or password). */
bool pf_has_session(const struct platform_credentials *c);
/* A "money" value as a display-safe double (non-finite → -1). */
double pf_clean_money(double v);

/* ---- One API lineage (lineage.c) ---- */

enum lineage_tokens {
    LT_NEW_API, /* ?p=&size=100 → {items,total,page} (1-based) or array (0-based) */
    LT_ONE_API, /* ?p= 0-based, fixed page size (10) → array */
    LT_ONE_HUB, /* ?page=&size=100 (1-based) → {data,page,size,total_count} */
};
enum lineage_limits {
    LL_NEW_API, /* model_limits_enabled + model_limits (csv) */
    LL_ONE_API, /* models (csv) */
    LL_ONE_HUB, /* setting.limits.limit_model_setting{enabled,models[]} */
};
enum lineage_pricing {
    LP_NONE,
    LP_NEW_API, /* GET /api/pricing: data[] + group_ratio */
    LP_ONE_HUB, /* GET /api/available_model: {model:{price{type,input,output}}} */
};
enum lineage_groups {
    LG_NONE,
    LG_NEW_API, /* GET /api/user/self/groups → {name:{ratio,desc}} */
    LG_ONE_HUB, /* GET /api/user_group_map → {symbol:{name,ratio}} */
};

struct lineage_flavor {
    const char *name;  /* for messages: "New API" */
    bool user_headers; /* New-Api-User / Veloera-User needed */
    bool browser;      /* AnyRouter: Origin/Referer/X-Requested-With */
    enum lineage_tokens tokens;
    enum lineage_limits limits;
    enum lineage_pricing pricing;
    enum lineage_groups groups;
    bool create_returns_key;      /* One API answers the new token with its key */
    const char *user_models_path; /* account's model list; NULL = none */
};

/* Starts a sequence with the flavor's header rules. */
int lineage_ctx_init(struct pf_ctx *x, const struct lineage_flavor *fl, fetch_client_t *f,
                     const struct platform_credentials *c, struct platform_error *err);

/* Password login (both New API auth generations, TOTP 2FA). On success fills *out
 * (cookie jar, user id, access token when the site issued one) and leaves the context
 * authenticated with it. */
int lineage_login(struct pf_ctx *x, const struct lineage_flavor *fl, struct platform_session *out);
/* Refreshes a second-generation access token, else logs in again with the password. */
int lineage_refresh(struct pf_ctx *x, const struct lineage_flavor *fl,
                    struct platform_session *out);
/* Makes sure the context can act for the account: when only a password is stored, logs in. */
int lineage_ensure_session(struct pf_ctx *x, const struct lineage_flavor *fl);
/* GET /api/user/self → balance in money (quota / quota_per_unit). *self_out (optional)
 * receives the self object (caller json_decref). */
int lineage_balance(struct pf_ctx *x, struct platform_balance *out, json_t **self_out);
int lineage_list_tokens(struct pf_ctx *x, const struct lineage_flavor *fl,
                        struct platform_token_list *out);
int lineage_create_token(struct pf_ctx *x, const struct lineage_flavor *fl,
                         const struct platform_token_spec *spec, struct platform_token *out);
int lineage_delete_token(struct pf_ctx *x, const char *token_id);
int lineage_groups(struct pf_ctx *x, const struct lineage_flavor *fl,
                   struct platform_group_list *out);
int lineage_models(struct pf_ctx *x, const struct lineage_flavor *fl,
                   struct platform_model_list *out);

/* Parses one token object of any lineage shape (qpu converts remain_quota to money).
 * Key gets the "sk-" prefix; a masked key (containing '*') goes to masked_key. */
int lineage_parse_token(const json_t *o, double qpu, struct platform_token *out);
/* The token array inside a list answer's data: the array itself, data.items or data.data. */
const json_t *lineage_token_array(const json_t *data);
/* New API /api/pricing document → prices (per 1M tokens, per call) for `group`
 * (models are not added to out->models). */
int lineage_parse_pricing_new_api(const json_t *root, const char *group, double qpu,
                                  struct platform_model_list *out);
/* OneHub /api/available_model data → models and prices. */
int lineage_parse_available_model(const json_t *data, double group_ratio, double qpu,
                                  struct platform_model_list *out);
/* Reads the account's self object (GET /api/user/self; caller json_decref the root). */
int lineage_self(struct pf_ctx *x, json_t **root, json_t **self);
/* New API check-in: POST /api/user/checkin, reward data.quota_awarded; on a failure the
 * status is re-read (GET /api/user/checkin) for checked_in_today. */
int new_api_checkin(struct pf_ctx *x, struct platform_checkin *out);

/* Defines the static vtable entries of a lineage platform `p` with flavor `FL`:
 * p_login, p_refresh, p_balance, p_list_tokens, p_create_token, p_delete_token, p_groups,
 * p_models. Each runs one call sequence and scrubs credentials from the error. */
#define PF_LINEAGE_OPS(p, FL)                                                                      \
    __attribute__((unused)) static int p##_login(                                                  \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_session *out,     \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_login(&x, &FL, out));                                        \
    }                                                                                              \
    __attribute__((unused)) static int p##_refresh(                                                \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_session *out,     \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_refresh(&x, &FL, out));                                      \
    }                                                                                              \
    __attribute__((unused)) static int p##_balance(                                                \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_balance *out,     \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        if (lineage_ensure_session(&x, &FL) != 0) return pf_ctx_end(&x, -1);                       \
        return pf_ctx_end(&x, lineage_balance(&x, out, NULL));                                     \
    }                                                                                              \
    __attribute__((unused)) static int p##_list_tokens(                                            \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_token_list *out,  \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_list_tokens(&x, &FL, out));                                  \
    }                                                                                              \
    __attribute__((unused)) static int p##_create_token(                                           \
        fetch_client_t *f, const struct platform_credentials *c,                                   \
        const struct platform_token_spec *spec, struct platform_token *out,                        \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_create_token(&x, &FL, spec, out));                           \
    }                                                                                              \
    __attribute__((unused)) static int p##_delete_token(                                           \
        fetch_client_t *f, const struct platform_credentials *c, const char *id,                   \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        if (lineage_ensure_session(&x, &FL) != 0) return pf_ctx_end(&x, -1);                       \
        return pf_ctx_end(&x, lineage_delete_token(&x, id));                                       \
    }                                                                                              \
    __attribute__((unused)) static int p##_groups(                                                 \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_group_list *out,  \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_groups(&x, &FL, out));                                       \
    }                                                                                              \
    __attribute__((unused)) static int p##_models(                                                 \
        fetch_client_t *f, const struct platform_credentials *c, struct platform_model_list *out,  \
        struct platform_error *err)                                                                \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        return pf_ctx_end(&x, lineage_models(&x, &FL, out));                                       \
    }

/* Runs a check-in body `fn(struct pf_ctx *, struct platform_checkin *)` in a sequence. */
#define PF_LINEAGE_CHECKIN(name, FL, fn)                                                           \
    static int name(fetch_client_t *f, const struct platform_credentials *c,                       \
                    struct platform_checkin *out, struct platform_error *err)                      \
    {                                                                                              \
        struct pf_ctx x;                                                                           \
        memset(out, 0, sizeof *out);                                                               \
        if (lineage_ctx_init(&x, &FL, f, c, err) != 0) return pf_ctx_end(&x, -1);                  \
        if (lineage_ensure_session(&x, &FL) != 0) return pf_ctx_end(&x, -1);                       \
        int rc = fn(&x, out);                                                                      \
        if (rc != 0) platform_checkin_free(out);                                                   \
        return pf_ctx_end(&x, rc);                                                                 \
    }

/* ---- key-only models (models.c) ---- */
/* GET <base>/v1/models with the api key (`claude`: x-api-key + anthropic-version, paged by
 * after_id). Accepts {"data":[…]} with or without object/success and a bare array. */
int pf_key_models(struct pf_ctx *x, bool claude, struct platform_model_list *out);
/* Parses a model list document; 0 with out filled, -1 when it is not a list. */
int pf_parse_model_list(const json_t *root, struct platform_model_list *out);
/* Appends a model name when not already present. false when out of memory. */
bool pf_models_add(struct platform_model_list *l, const char *name);

#endif
