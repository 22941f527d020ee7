/* platform.h — one interface over the management APIs of every relay platform.
 *
 * One file per platform implements a `struct platform` (a vtable, curl-style backends):
 * new_api, one_api, one_hub, done_hub, veloera, anyrouter, sub2api, openai_compatible,
 * claude. The calls block (they run on control and admin threads, never io threads) and
 * use the caller's net/fetch client. Inputs are borrowed; everything returned is
 * malloc'ed and owned by the caller (free with the matching *_free). Errors are never
 * silent: every call fills `struct platform_error` with a kind and a readable message
 * (no secrets in it). The reference is the project's upstream-platforms document,
 * including its addendum. */
#ifndef METARELAY_PLATFORMS_PLATFORM_H
#define METARELAY_PLATFORMS_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/fetch.h"

enum platform_error_kind {
    PLATFORM_OK = 0,
    PLATFORM_ERR_UNREACHABLE,  /* DNS, connect, timeout */
    PLATFORM_ERR_AUTH,         /* wrong password, bad or expired token/cookie */
    PLATFORM_ERR_NEEDS_2FA,    /* a TOTP code is required (and none/wrong was given) */
    PLATFORM_ERR_CAPTCHA,      /* Turnstile/captcha required: paste a session cookie instead */
    PLATFORM_ERR_UNSUPPORTED,  /* the platform (or this site's build) has no such feature */
    PLATFORM_ERR_ALREADY_DONE, /* e.g. already checked in today */
    PLATFORM_ERR_BAD_RESPONSE, /* HTML instead of JSON, unexpected shape */
    PLATFORM_ERR_UPSTREAM,     /* the site answered success:false with a message */
};

struct platform_error {
    enum platform_error_kind kind;
    int http_status;   /* 0 when none */
    char message[512]; /* readable, never contains a credential */
};

/* Everything an adapter may need to act for one account. Borrowed strings; NULL = unset. */
struct platform_credentials {
    const char *base_url; /* site URL without trailing slash */
    const char *username;
    const char *password;
    const char *totp_secret;  /* base32; the adapter computes the code */
    const char *access_token; /* management token (New API family) or JWT (Sub2API) */
    const char *refresh_token;
    const char *cookie;  /* "name=value; name2=value2" session cookie jar */
    const char *user_id; /* New-Api-User / Veloera-User */
    const char *api_key; /* relay key (sk-…) for /v1 calls */
    const char *proxy_url;
    const char *custom_headers_json;
};

/* What a login or session refresh yields: the credentials to store (malloc'ed; any may be
 * NULL when unchanged). */
struct platform_session {
    char *access_token;
    char *refresh_token;
    int64_t access_expires_at; /* unix seconds, 0 unknown */
    char *cookie;
    char *user_id;
    char *username;
};
void platform_session_free(struct platform_session *s);

struct platform_balance {
    double balance;        /* remaining, in the site's money unit (USD for all known sites) */
    double used;           /* used so far, same unit; < 0 unknown */
    double quota_per_unit; /* the site's quota_per_unit (1 for Sub2API) */
    int64_t raw_quota;     /* remaining in the site's raw quota unit; -1 unknown */
    char *currency;        /* "USD" */
    char *display_name;    /* user name / email as the site shows it */
    char *group;           /* the user's group, when known */
};
void platform_balance_free(struct platform_balance *b);

struct platform_checkin {
    bool already_done; /* the site said it was already done today (not a failure) */
    double reward;     /* money unit; < 0 unknown (compute from the balance difference) */
    char *message;     /* the site's message */
};
void platform_checkin_free(struct platform_checkin *c);

struct platform_token {
    char *id; /* the site's id (text) */
    char *name;
    char *key;        /* full key with the site's prefix (sk-…); NULL if it stayed masked */
    char *masked_key; /* what the list showed, when masked */
    char *group;
    bool enabled;
    bool unlimited;
    double remain_quota; /* money unit; < 0 unknown */
    int64_t expires_at;  /* unix seconds; -1 never */
    char *model_limits;  /* comma-separated, NULL = none */
};
/* Releases one token's strings (e.g. create_token's result). */
void platform_token_free(struct platform_token *t);
struct platform_token_list {
    struct platform_token *items;
    size_t n;
};
void platform_token_list_free(struct platform_token_list *l);

struct platform_token_spec {
    const char *name;
    const char *group;
    bool unlimited;
    double remain_quota;      /* money unit, when !unlimited */
    int64_t expires_at;       /* unix seconds; -1 never */
    const char *model_limits; /* comma-separated or NULL */
};

struct platform_price {
    char *model;
    double input_per_million; /* money unit per 1M input tokens; < 0 unknown */
    double output_per_million;
    double per_call; /* fixed price per call; < 0 when token-priced */
    char *group;     /* NULL = the user's group */
};
struct platform_model_list {
    char **models;
    size_t n;
    struct platform_price *prices;
    size_t n_prices;
};
void platform_model_list_free(struct platform_model_list *l);

struct platform_group {
    char *name;
    double ratio; /* < 0 unknown */
    char *description;
};
struct platform_group_list {
    struct platform_group *items;
    size_t n;
};
void platform_group_list_free(struct platform_group_list *l);

/* Formats a platform's relay speaks by default (API_FORMAT_BIT of protocol/ir.h values:
 * bit 0 chat, bit 1 messages, bit 2 responses). */
#define PLATFORM_FORMAT_CHAT      1u
#define PLATFORM_FORMAT_MESSAGES  2u
#define PLATFORM_FORMAT_RESPONSES 4u

struct platform {
    const char *id; /* "new-api", "one-api", "one-hub", "done-hub", "veloera",
                     * "anyrouter", "sub2api", "openai", "claude" */
    const char *display_name;
    unsigned default_formats; /* PLATFORM_FORMAT_* */
    bool has_management;      /* false for openai/claude (API key only) */
    bool has_checkin;

    /* Each call returns 0 on success or -1 with *err filled. NULL entries mean the
     * feature does not exist on this platform (callers report PLATFORM_ERR_UNSUPPORTED). */
    int (*login)(fetch_client_t *f, const struct platform_credentials *c,
                 struct platform_session *out, struct platform_error *err);
    int (*refresh_session)(fetch_client_t *f, const struct platform_credentials *c,
                           struct platform_session *out, struct platform_error *err);
    int (*balance)(fetch_client_t *f, const struct platform_credentials *c,
                   struct platform_balance *out, struct platform_error *err);
    int (*checkin)(fetch_client_t *f, const struct platform_credentials *c,
                   struct platform_checkin *out, struct platform_error *err);
    int (*list_tokens)(fetch_client_t *f, const struct platform_credentials *c,
                       struct platform_token_list *out, struct platform_error *err);
    int (*create_token)(fetch_client_t *f, const struct platform_credentials *c,
                        const struct platform_token_spec *spec, struct platform_token *out,
                        struct platform_error *err);
    int (*delete_token)(fetch_client_t *f, const struct platform_credentials *c,
                        const char *token_id, struct platform_error *err);
    int (*groups)(fetch_client_t *f, const struct platform_credentials *c,
                  struct platform_group_list *out, struct platform_error *err);
    /* Models (and prices when the platform publishes them) visible to the account; with
     * c->api_key set, the models of that key (GET /v1/models). */
    int (*models)(fetch_client_t *f, const struct platform_credentials *c,
                  struct platform_model_list *out, struct platform_error *err);
};

/* The adapter for a platform id, or NULL. */
const struct platform *platform_by_id(const char *id);
/* Every adapter, NULL-terminated. */
const struct platform *const *platform_all(void);

/* Detects the platform of a site from its URL (host hints, status/probe signatures).
 * Returns the adapter, or NULL with *err filled. */
const struct platform *platform_detect(fetch_client_t *f, const char *base_url,
                                       const char *proxy_url, struct platform_error *err);

#endif
