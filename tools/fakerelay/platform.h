/* platform.h — the management APIs of the relay platforms fakerelay emulates (New API,
 * AnyRouter, One API, OneHub, DoneHub, Veloera, Sub2API), chosen by --platform.
 *
 * One platform is active per process. Its management routes (/api/…) are answered here,
 * before the /v1 surfaces of server.c; on /v1 the platform checks the key against the
 * tokens it issued (answering relay errors in its own shape), may answer /v1/models and
 * billing routes itself, and otherwise lets the ordinary /v1 handlers answer.
 *
 * Layout: platform_state.c owns the shared state (users, tokens, sessions, check-ins,
 * logs — one mutex), the options, the /_fake/ platform routes and the helpers every
 * platform uses (envelopes, cookies, TOTP, pagination); platform_dispatch.c routes a
 * request to the active platform; one file per platform holds its route table and its
 * handlers (platform_new_api.c also serves new-api-v2 and lends its handlers to
 * AnyRouter and Veloera, platform_one_hub.c also serves DoneHub). */
#ifndef METARELAY_TOOLS_FAKERELAY_PLATFORM_H
#define METARELAY_TOOLS_FAKERELAY_PLATFORM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "fakerelay.h"

enum pf_kind {
    PF_OPENAI = 0, /* no management API: today's behaviour */
    PF_NEW_API,
    PF_NEW_API_V2, /* the 2026 auth generation: bearer access tokens + refresh cookie */
    PF_ANYROUTER,
    PF_ONE_API,
    PF_ONE_HUB,
    PF_DONE_HUB,
    PF_VELOERA,
    PF_SUB2API,
};

/* Seed options (read-only once the workers run). */
struct pf_options {
    enum pf_kind kind;
    const char *id;           /* platform id as given */
    const char *user;         /* username (default alice) */
    const char *password;     /* default secret123 */
    const char *email;        /* Sub2API login (default <user>@example.com) */
    const char *totp_secret;  /* base32; 2FA required when set */
    const char *access_token; /* system access token of the user (NULL = none yet) */
    long long user_id;        /* default 1 */
    long long quota;          /* remaining quota, raw units (default 5000000 = $10) */
    long long used_quota;     /* default 250000 */
    double quota_per_unit;    /* default 500000 */
    unsigned tokens;          /* pre-existing tokens */
    bool masked_keys;         /* token lists mask keys (New API, AnyRouter) */
    bool turnstile;           /* login (and check-in) demand a Turnstile token */
    long long checkin_reward; /* quota units per check-in (default 300000) */
    bool checkin_disabled;    /* check-in answers "签到功能未启用" */
    bool signin_repeat_fails; /* AnyRouter: a second sign_in answers 今日已签到 */
    unsigned session_ttl_sec; /* sessions / access JWTs expire after this (0 = platform default) */
    bool challenge;           /* AnyRouter: acw_sc__v2 challenge until the cookie is right */
    bool html_errors;         /* every /api and /v1 answer is a Cloudflare 502 page */
    int day_offset;           /* days added to "today" */
    long long relay_cost;     /* quota debited per relay request (default 1000) */
};

/* What the platform kind is called on the command line ("new-api", …). */
const char *pf_kind_name(enum pf_kind k);

/* ---- state ---- */

#define PF_NAME_MAX 64
#define PF_KEY_MAX  96

struct pf_user {
    long long id;
    char username[PF_NAME_MAX];
    char email[128];
    char password[128];
    char access_token[PF_NAME_MAX]; /* "" = none */
    unsigned char totp_key[64];
    size_t totp_len; /* 0 = no 2FA */
    long long quota, used_quota, request_count;
    char group[32];
    long long checkins; /* successful check-ins, for /_fake/stats */
    long long last_check_in_time;
};

struct pf_token {
    long long id, user_id;
    char key[PF_KEY_MAX]; /* as stored: New API lineage without sk-, Sub2API with */
    char name[PF_NAME_MAX];
    int status; /* 1 enabled, 2 disabled, 3 expired, 4 exhausted */
    long long created_time, accessed_time, expired_time, remain_quota, used_quota;
    bool unlimited_quota, model_limits_enabled;
    char model_limits[256];
    char allow_ips[128];
    char group[32];
    long long group_id; /* Sub2API */
    bool deleted;
};

enum pf_session_kind {
    PF_SESS_COOKIE = 1, /* `session` cookie of the One API lineage */
    PF_SESS_ACCESS,     /* bearer access token (New API v2, Sub2API JWT) */
    PF_SESS_REFRESH,    /* refresh token / cookie */
    PF_SESS_FLOW,       /* pending 2FA: flow token (New API v2) / temp token (Sub2API) */
};

struct pf_session {
    char id[200];
    enum pf_session_kind kind;
    long long user_id;
    long long created, expires; /* pf_now() seconds; expires 0 = never */
    bool pending_2fa;           /* cookie session waiting for /api/user/login/2fa */
    bool turnstile_ok;          /* passed Turnstile once */
    bool dead;
    char family[40]; /* New API v2: the session a token belongs to (for /api/user/sessions) */
};

struct pf_checkin {
    long long user_id;
    char date[11]; /* YYYY-MM-DD */
    long long quota;
    long long at;
};

struct pf_log {
    long long id, user_id, created_at;
    int type; /* 2 consume, 4 system (check-in) */
    char content[160];
    char token_name[PF_NAME_MAX];
    char model_name[PF_NAME_MAX];
    long long quota, token_id;
};

struct pf_counter {
    char *key;
    long long n;
};

struct pf_state {
    pthread_mutex_t mu; /* guards everything below */
    struct pf_options o;
    char email_buf[PF_NAME_MAX + 16]; /* the default e-mail, NAME@example.com */
    int day_offset;
    bool html_errors, turnstile, checkin_enabled, challenge;
    struct pf_user *users;
    size_t n_users;
    struct pf_token *tokens;
    size_t n_tokens;
    long long next_token_id;
    struct pf_session *sessions;
    size_t n_sessions, cap_sessions;
    struct pf_checkin *checkins;
    size_t n_checkins;
    struct pf_log *logs;
    size_t n_logs;
    uint64_t rng; /* deterministic: keys and ids are the same on every run */
    /* AnyRouter challenges handed out: arg1 and when */
    struct {
        char arg1[41];
        long long at;
    } challenges[64];
    size_t n_challenges;
    /* /_fake/stats */
    struct pf_counter *calls;
    size_t n_calls;
};

/* Parses and removes the platform options (and reads FAKERELAY_* platform variables)
 * from argv before fakerelay's own option parser runs. Returns a new state (caller owns;
 * fr_platform_free), NULL for the plain OpenAI relay, or sets *err = true after printing
 * a message. */
struct pf_state *fr_platform_parse(int *argc, char **argv, bool *err);
void fr_platform_free(struct pf_state *st);
/* Prints the platform options for --help. */
void fr_platform_usage(FILE *f);

/* Answers the request when it belongs to the platform (management routes, challenge,
 * relay auth failures, platform /v1/models …): true. False: the /v1 surfaces go on
 * (the key was accepted by the platform). */
bool fr_platform_dispatch(struct fr_worker *w, http_request_t *req);
/* The /_fake/ platform routes (next-day, expire-sessions, platform). True when answered. */
bool fr_platform_control(struct fr_worker *w, http_request_t *req);
/* Adds "platform", "management_calls" and "checkins" to a /_fake/stats object. */
void fr_platform_stats(struct fr_app *app, json_t *stats);
/* Forgets the management call counters (/_fake/reset). */
void fr_platform_stats_reset(struct fr_app *app);

/* ---- one management request (platform files) ---- */

struct pf_req {
    struct fr_worker *w;
    http_request_t *req;
    struct pf_state *st; /* locked while a handler runs */
    const struct fr_config *cfg;
    json_t *body;         /* parsed JSON object body, NULL when none */
    long long path_id;    /* numeric path segment matched by '#' */
    struct pf_user *user; /* authenticated user (routes with PF_AUTH) */
    struct pf_session *sess;
    bool via_token; /* authenticated by access token rather than a session */
    struct http_header hdrs[6];
    size_t n_hdrs;
};

enum {
    PF_AUTH = 1,      /* authenticated user required */
    PF_TRY_AUTH = 2,  /* user when credentials are valid, anonymous otherwise */
    PF_JSON_BODY = 4, /* parse the body as a JSON object (empty body = {}) */
};

typedef void (*pf_handler_fn)(struct pf_req *r);

struct pf_route {
    const char *method;
    const char *path; /* exact; a '#' segment matches a number (r->path_id) */
    pf_handler_fn fn;
    unsigned flags;
};

struct pf_platform {
    enum pf_kind kind;
    const struct pf_route *routes;
    size_t n_routes;
    bool trailing_slash_redirect; /* gin's 301 (GET) / 307 redirect of /api/token → /api/token/ */
    /* Authenticates r (sets r->user); false after answering the platform's refusal. */
    bool (*auth)(struct pf_req *r, bool required);
    /* Relay: answers an error in the platform's shape (kind: see pf_relay_error). */
    void (*relay_error)(struct pf_req *r, int kind, const char *detail);
    /* Relay: answers GET /v1/models for the key's user and token. */
    void (*relay_models)(struct pf_req *r, const struct pf_token *t);
    /* Relay: extra /v1 routes answered by the platform (billing, usage); true when done. */
    bool (*relay_extra)(struct pf_req *r, const struct pf_token *t);
    /* Unknown management path: answers (404). */
    void (*not_found)(struct pf_req *r);
};

enum pf_relay_error {
    PF_RELAY_NO_KEY = 1,
    PF_RELAY_BAD_KEY,
    PF_RELAY_KEY_EXPIRED,
    PF_RELAY_KEY_EXHAUSTED,
    PF_RELAY_KEY_DISABLED,
    PF_RELAY_MODEL_FORBIDDEN, /* detail: model */
    PF_RELAY_NO_CHANNEL,      /* detail: model */
    PF_RELAY_USER_QUOTA,
};

extern const struct pf_platform pf_new_api, pf_new_api_v2, pf_anyrouter, pf_one_api, pf_one_hub,
    pf_done_hub, pf_veloera, pf_sub2api;

/* ---- helpers (platform_state.c) ---- */

/* Now in seconds, shifted by the day offset. */
long long pf_now(const struct pf_state *st);
/* Today as YYYY-MM-DD in `out` (11 bytes): local date, or UTC when `utc`. */
void pf_today(const struct pf_state *st, bool utc, char *out);
/* `n` random characters of `alphabet` into out (NUL-terminated; out has n + 1 bytes). */
void pf_random(struct pf_state *st, const char *alphabet, size_t n, char *out);
#define PF_ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define PF_HEX   "0123456789abcdef"

struct pf_user *pf_user_by_id(struct pf_state *st, long long id);
struct pf_user *pf_user_by_name(struct pf_state *st, const char *name);
struct pf_user *pf_user_by_access_token(struct pf_state *st, struct slice tok);
/* A new session of `kind` for `user_id` (expires after ttl seconds, 0 = never). NULL when
 * out of memory. The pointer is valid until the next pf_session_new. */
struct pf_session *pf_session_new(struct pf_state *st, enum pf_session_kind kind, long long user_id,
                                  long long ttl);
/* The live session with this id and kind; *expired set when it exists but expired. */
struct pf_session *pf_session_find(struct pf_state *st, enum pf_session_kind kind, struct slice id,
                                   bool *expired);
/* New token for a user with a platform-specific key (caller fills the rest). NULL when
 * out of memory. Valid until the next pf_token_new. */
struct pf_token *pf_token_new(struct pf_state *st, long long user_id, const char *key);
struct pf_token *pf_token_by_id(struct pf_state *st, long long user_id, long long id);
/* A token by its key as sent on /v1 ("sk-" and a "-channel" suffix tolerated). */
struct pf_token *pf_token_by_key(struct pf_state *st, struct slice key);
/* Tokens of a user, newest first, in a malloc'd array (caller frees); *n their number. */
struct pf_token **pf_tokens_of(struct pf_state *st, long long user_id, size_t *n);
/* A check-in of the user on `date` or NULL. */
struct pf_checkin *pf_checkin_find(struct pf_state *st, long long user_id, const char *date);
/* Records a check-in and credits the reward; returns false when out of memory. */
bool pf_checkin_add(struct pf_state *st, struct pf_user *u, const char *date, long long quota);
void pf_log_add(struct pf_state *st, long long user_id, int type, const char *content,
                const char *token_name, const char *model, long long quota, long long token_id);
/* Key formats. out must hold PF_KEY_MAX bytes. */
void pf_key_new_api(struct pf_state *st, char *out); /* 48 alphanumerics */
void pf_key_one_hub(struct pf_state *st, char *out); /* <sqids-like>_<43 base64url> */
void pf_key_sub2api(struct pf_state *st, char *out); /* sk-<64 hex> */
/* "abcd**********wxyz" */
void pf_key_mask(const char *key, char *out);

/* TOTP (RFC 6238, SHA-1, 6 digits, 30 s): true when `code` matches now ±1 step. */
bool pf_totp_check(const struct pf_state *st, const struct pf_user *u, const char *code);
/* Decodes base32 (RFC 4648, padding and case ignored); -1 when invalid. */
int pf_base32_decode(const char *s, unsigned char *out, size_t cap);
/* 6-digit TOTP of `key` at unix time t (for tests of the helper). */
unsigned pf_totp_at(const unsigned char *key, size_t n, long long t);

/* Request helpers. */
struct slice pf_cookie(const http_request_t *req, const char *name);
struct slice pf_bearer(const http_request_t *req); /* Authorization minus an optional Bearer */
/* Query parameter as a number (def when absent or not a number). */
long long pf_query_int(const http_request_t *req, const char *name, long long def);
/* A JSON body member: string (NULL when absent / not a string), integer, bool. */
const char *pf_body_str(const struct pf_req *r, const char *name);
bool pf_body_int(const struct pf_req *r, const char *name, long long *out);
bool pf_body_bool(const struct pf_req *r, const char *name, bool def);
/* Adds a response header (copied into the request pool). */
void pf_header(struct pf_req *r, const char *name, const char *value);
/* Set-Cookie for a session of the One API lineage. */
void pf_set_session_cookie(struct pf_req *r, const char *sid);

/* Answers: every one finishes the request. `j` is stolen. */
void pf_reply(struct pf_req *r, int status, json_t *j);
void pf_reply_text(struct pf_req *r, int status, const char *content_type, const char *body);
/* {"success":true,"message":msg,"data":data}; data NULL = no "data" member. */
void pf_ok(struct pf_req *r, const char *msg, json_t *data);
/* {"success":false,"message":msg} with HTTP `status`. */
void pf_fail(struct pf_req *r, int status, const char *msg);
/* 404 {"error":{"message":"Invalid URL (METHOD /path)","type":"invalid_request_error",
 * "param":"","code":""}} */
void pf_invalid_url(struct pf_req *r);
/* OpenAI-shaped relay error {"error":{message (+ request id), type, [param], code}}. */
void pf_relay_error_openai(struct pf_req *r, int status, const char *type, const char *code,
                           bool with_param, const char *msg);
/* The request id header value of this request (X-Oneapi-Request-Id). */
const char *pf_request_id(struct pf_req *r);

/* Turnstile (--turnstile): checks ?turnstile= unless the session passed already. False
 * after answering the platform's refusal. */
bool pf_turnstile(struct pf_req *r);
#define PF_TURNSTILE_OK "XXXX.DUMMY.TOKEN.XXXX"

/* Shared by the New API family: user JSON objects. */
json_t *pf_user_login_json(const struct pf_user *u, bool with_group);
/* The emulated price of a model: quota_type 0 (per token: model_ratio, completion_ratio)
 * or 1 (per call: model_price USD). Deterministic by name. */
void pf_model_price(const char *model, int *quota_type, double *model_ratio,
                    double *completion_ratio, double *model_price);
/* Whether the relay serves this model (--models; "*" and fault-* always). */
bool pf_model_known(const struct fr_config *cfg, const char *model);
/* Models of --models that a token may use (all when t is NULL or has no limits), as a
 * JSON array of strings. */
json_t *pf_models_for(const struct fr_config *cfg, const struct pf_token *t);
/* Token list paging: page size from size / page_size / ps (default def, max 100). */
long long pf_page_size(const http_request_t *req, long long def);

/* AnyRouter challenge (platform_anyrouter.c): the cookie value for arg1 (40 lower-case
 * hex + NUL into out). False when arg1 is not 40 hex digits. */
bool pf_acw_solve(const char *arg1, char out[41]);
/* True (after answering the challenge page) when the request lacks a valid cookie. */
bool pf_anyrouter_gate(struct pf_req *r);

/* New API handlers lent to its forks (platform_new_api.c). */
void pf_na_status(struct pf_req *r);
void pf_na_login(struct pf_req *r);
void pf_na_login_2fa(struct pf_req *r);
void pf_na_logout(struct pf_req *r);
void pf_na_access_token(struct pf_req *r);
void pf_na_self(struct pf_req *r);
void pf_na_self_groups(struct pf_req *r);
void pf_na_user_models(struct pf_req *r);
void pf_na_token_list(struct pf_req *r);
void pf_na_token_get(struct pf_req *r);
void pf_na_token_create(struct pf_req *r);
void pf_na_token_update(struct pf_req *r);
void pf_na_token_delete(struct pf_req *r);
void pf_na_token_key(struct pf_req *r);
void pf_na_pricing(struct pf_req *r);
void pf_na_log_self(struct pf_req *r);
void pf_na_log_stat(struct pf_req *r);
void pf_na_notice(struct pf_req *r);
void pf_na_groups(struct pf_req *r);
bool pf_na_auth(struct pf_req *r, bool required);
void pf_na_relay_error(struct pf_req *r, int kind, const char *detail);
void pf_na_relay_models(struct pf_req *r, const struct pf_token *t);
bool pf_na_relay_extra(struct pf_req *r, const struct pf_token *t);
json_t *pf_na_token_json(const struct pf_req *r, const struct pf_token *t, bool mask);
/* One API / OneHub / DoneHub auth: `session` cookie or `Authorization: [Bearer ]<access
 * token>`, no user-id header (platform_one_api.c). */
bool pf_oa_auth(struct pf_req *r, bool required);
/* The relay-error texts of One API lineage platforms, by kind (used by the forks). */
void pf_lineage_relay_error(struct pf_req *r, int kind, const char *detail, const char *type,
                            int quota_status);
/* Parses the New API token body into t (create or update). False after answering. */
bool pf_na_token_fields(struct pf_req *r, struct pf_token *t, size_t name_max,
                        const char *too_long_msg, bool creating);

#endif
