/* platform_state.c — the shared state of an emulated relay platform and the helpers its
 * management API handlers use.
 *
 * State (users, tokens, sessions, check-ins, logs) lives in memory behind one mutex that
 * the dispatcher holds while a platform handler runs; it is seeded from the command line
 * (--user, --quota, --tokens, …) and is deterministic: keys and session ids come from a
 * fixed-seed generator, so two runs hand out the same values. "Now" is the wall clock
 * shifted by whole days (--day-offset, POST /_fake/next-day) so tests can live through
 * "tomorrow" for check-ins. Also here: the platform options (parsed out of argv before
 * fakerelay's own parser sees it), TOTP (RFC 6238 with a small SHA-1), the JSON
 * envelopes, and the /_fake/ platform routes and statistics. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

/* ---- options ---- */

static const struct {
    const char *name;
    enum pf_kind kind;
} kinds[] = {
    {"openai", PF_OPENAI},       {"new-api", PF_NEW_API}, {"new-api-v2", PF_NEW_API_V2},
    {"anyrouter", PF_ANYROUTER}, {"one-api", PF_ONE_API}, {"one-hub", PF_ONE_HUB},
    {"done-hub", PF_DONE_HUB},   {"veloera", PF_VELOERA}, {"sub2api", PF_SUB2API},
};

const char *pf_kind_name(enum pf_kind k)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == k) return kinds[i].name;
    return "openai";
}

enum {
    O_PLATFORM,
    O_USER,
    O_PASSWORD,
    O_EMAIL,
    O_TOTP,
    O_ACCESS_TOKEN,
    O_USER_ID,
    O_QUOTA,
    O_USED_QUOTA,
    O_QPU,
    O_TOKENS,
    O_MASKED,
    O_TURNSTILE,
    O_REWARD,
    O_NO_CHECKIN,
    O_SIGNIN_FAILS,
    O_TTL,
    O_CHALLENGE,
    O_HTML,
    O_DAY_OFFSET,
    O_RELAY_COST,
};

static const struct {
    const char *opt, *env;
    int id;
    bool flag; /* no value */
} popts[] = {
    {"platform", "FAKERELAY_PLATFORM", O_PLATFORM, false},
    {"user", "FAKERELAY_USER", O_USER, false},
    {"password", "FAKERELAY_PASSWORD", O_PASSWORD, false},
    {"email", "FAKERELAY_EMAIL", O_EMAIL, false},
    {"totp-secret", "FAKERELAY_TOTP_SECRET", O_TOTP, false},
    {"access-token", "FAKERELAY_ACCESS_TOKEN", O_ACCESS_TOKEN, false},
    {"user-id", "FAKERELAY_USER_ID", O_USER_ID, false},
    {"quota", "FAKERELAY_QUOTA", O_QUOTA, false},
    {"used-quota", "FAKERELAY_USED_QUOTA", O_USED_QUOTA, false},
    {"quota-per-unit", "FAKERELAY_QUOTA_PER_UNIT", O_QPU, false},
    {"tokens", "FAKERELAY_TOKENS", O_TOKENS, false},
    {"masked-keys", "FAKERELAY_MASKED_KEYS", O_MASKED, true},
    {"turnstile", "FAKERELAY_TURNSTILE", O_TURNSTILE, true},
    {"checkin-reward", "FAKERELAY_CHECKIN_REWARD", O_REWARD, false},
    {"no-checkin", "FAKERELAY_NO_CHECKIN", O_NO_CHECKIN, true},
    {"signin-repeat-fails", "FAKERELAY_SIGNIN_REPEAT_FAILS", O_SIGNIN_FAILS, true},
    {"session-ttl-sec", "FAKERELAY_SESSION_TTL_SEC", O_TTL, false},
    {"challenge", "FAKERELAY_CHALLENGE", O_CHALLENGE, true},
    {"html-errors", "FAKERELAY_HTML_ERRORS", O_HTML, true},
    {"day-offset", "FAKERELAY_DAY_OFFSET", O_DAY_OFFSET, false},
    {"relay-cost", "FAKERELAY_RELAY_COST", O_RELAY_COST, false},
};

void fr_platform_usage(FILE *f)
{
    fputs(
        "Relay platform management APIs (see README.md, \"Platforms\"):\n"
        "  --platform ID          openai (default), new-api, new-api-v2, anyrouter, one-api,\n"
        "                         one-hub, done-hub, veloera, sub2api      FAKERELAY_PLATFORM\n"
        "  --user NAME            the seeded user (default alice)          FAKERELAY_USER\n"
        "  --password PW          its password (default secret123)         FAKERELAY_PASSWORD\n"
        "  --email ADDR           Sub2API login (default NAME@example.com)  FAKERELAY_EMAIL\n"
        "  --totp-secret BASE32   2FA required at login                    FAKERELAY_TOTP_SECRET\n"
        "  --access-token T       the user's system access token           "
        "FAKERELAY_ACCESS_TOKEN\n"
        "  --user-id N            the user's id (default 1)                FAKERELAY_USER_ID\n"
        "  --quota N              remaining quota, raw units (5000000)     FAKERELAY_QUOTA\n"
        "  --used-quota N         spent quota, raw units (250000)          FAKERELAY_USED_QUOTA\n"
        "  --quota-per-unit N     quota per USD (500000)                   "
        "FAKERELAY_QUOTA_PER_UNIT\n"
        "  --tokens N             pre-existing API tokens (0)              FAKERELAY_TOKENS\n"
        "  --masked-keys          token lists mask keys (New API family)   FAKERELAY_MASKED_KEYS\n"
        "  --turnstile            login and check-in demand Turnstile      FAKERELAY_TURNSTILE\n"
        "  --checkin-reward N     quota per check-in (300000)              "
        "FAKERELAY_CHECKIN_REWARD\n"
        "  --no-checkin           check-in is disabled on the site         FAKERELAY_NO_CHECKIN\n"
        "  --signin-repeat-fails  AnyRouter: 2nd sign_in says 今日已签到    "
        "FAKERELAY_SIGNIN_REPEAT_FAILS\n"
        "  --session-ttl-sec N    sessions and access JWTs expire          "
        "FAKERELAY_SESSION_TTL_SEC\n"
        "  --challenge            AnyRouter acw_sc__v2 challenge           FAKERELAY_CHALLENGE\n"
        "  --html-errors          Cloudflare-like HTML 502 pages           FAKERELAY_HTML_ERRORS\n"
        "  --day-offset N         days added to today                      FAKERELAY_DAY_OFFSET\n"
        "  --relay-cost N         quota debited per relay request (1000)   FAKERELAY_RELAY_COST\n",
        f);
}

static bool opt_ll(const char *name, const char *v, long long min, long long max, long long *out)
{
    char *end;
    if (!v || !*v) goto bad;
    long long n = strtoll(v, &end, 10);
    if (*end || n < min || n > max) goto bad;
    *out = n;
    return true;
bad:
    fprintf(stderr, "fakerelay: %s wants an integer between %lld and %lld, got \"%s\"\n", name, min,
            max, v ? v : "");
    return false;
}

static bool flag_value(const char *v)
{
    return !(v && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0));
}

static bool popt_apply(struct pf_options *o, int id, const char *name, const char *v)
{
    long long n;
    switch (id) {
    case O_PLATFORM:
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (strcmp(v, kinds[i].name) == 0) {
                o->kind = kinds[i].kind;
                o->id = kinds[i].name;
                return true;
            }
        fprintf(stderr,
                "fakerelay: unknown platform \"%s\" for %s (known: openai new-api new-api-v2 "
                "anyrouter one-api one-hub done-hub veloera sub2api)\n",
                v, name);
        return false;
    case O_USER:
    case O_PASSWORD:
    case O_EMAIL:
    case O_ACCESS_TOKEN:
        if (!*v || strlen(v) >= PF_NAME_MAX) {
            fprintf(stderr, "fakerelay: %s wants 1 to %d characters\n", name, PF_NAME_MAX - 1);
            return false;
        }
        if (id == O_USER) o->user = v;
        if (id == O_PASSWORD) o->password = v;
        if (id == O_EMAIL) o->email = v;
        if (id == O_ACCESS_TOKEN) o->access_token = v;
        return true;
    case O_TOTP: {
        unsigned char k[64];
        if (pf_base32_decode(v, k, sizeof k) <= 0) {
            fprintf(stderr, "fakerelay: %s wants a base32 secret, got \"%s\"\n", name, v);
            return false;
        }
        o->totp_secret = v;
        return true;
    }
    case O_USER_ID:
        if (!opt_ll(name, v, 1, 1000000000, &o->user_id)) return false;
        return true;
    case O_QUOTA:
        return opt_ll(name, v, -1000000000000LL, 1000000000000LL, &o->quota);
    case O_USED_QUOTA:
        return opt_ll(name, v, 0, 1000000000000LL, &o->used_quota);
    case O_QPU:
        if (!opt_ll(name, v, 1, 1000000000, &n)) return false;
        o->quota_per_unit = (double)n;
        return true;
    case O_TOKENS:
        if (!opt_ll(name, v, 0, 1000, &n)) return false;
        o->tokens = (unsigned)n;
        return true;
    case O_MASKED:
        o->masked_keys = flag_value(v);
        return true;
    case O_TURNSTILE:
        o->turnstile = flag_value(v);
        return true;
    case O_REWARD:
        return opt_ll(name, v, 0, 1000000000000LL, &o->checkin_reward);
    case O_NO_CHECKIN:
        o->checkin_disabled = flag_value(v);
        return true;
    case O_SIGNIN_FAILS:
        o->signin_repeat_fails = flag_value(v);
        return true;
    case O_TTL:
        if (!opt_ll(name, v, 1, 100000000, &n)) return false;
        o->session_ttl_sec = (unsigned)n;
        return true;
    case O_CHALLENGE:
        o->challenge = flag_value(v);
        return true;
    case O_HTML:
        o->html_errors = flag_value(v);
        return true;
    case O_DAY_OFFSET:
        if (!opt_ll(name, v, -100000, 100000, &n)) return false;
        o->day_offset = (int)n;
        return true;
    case O_RELAY_COST:
        return opt_ll(name, v, 0, 1000000000000LL, &o->relay_cost);
    }
    return false;
}

static bool seed(struct pf_state *st);

struct pf_state *fr_platform_parse(int *argc, char **argv, bool *err)
{
    *err = false;
    struct pf_options o = {
        .kind = PF_OPENAI,
        .id = "openai",
        .user = "alice",
        .password = "secret123",
        .user_id = 1,
        .quota = 5000000,
        .used_quota = 250000,
        .quota_per_unit = 500000,
        .checkin_reward = 300000,
        .relay_cost = 1000,
    };
    for (size_t i = 0; i < sizeof popts / sizeof popts[0]; i++) {
        const char *v = getenv(popts[i].env);
        if (v && !popt_apply(&o, popts[i].id, popts[i].env, v)) goto fail;
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        bool matched = false;
        if (strcmp(a, "--") == 0) { /* the rest is not ours */
            while (i < *argc) argv[out++] = argv[i++];
            break;
        }
        for (size_t k = 0; a[0] == '-' && a[1] == '-' && k < sizeof popts / sizeof popts[0]; k++) {
            size_t n = strlen(popts[k].opt);
            if (strncmp(a + 2, popts[k].opt, n) != 0 || (a[2 + n] != 0 && a[2 + n] != '='))
                continue;
            matched = true;
            char name[48];
            snprintf(name, sizeof name, "--%s", popts[k].opt);
            const char *v = a[2 + n] == '=' ? a + 3 + n : NULL;
            if (!popts[k].flag && !v) {
                if (i + 1 >= *argc) {
                    fprintf(stderr, "fakerelay: %s needs a value\n", name);
                    goto fail;
                }
                v = argv[++i];
            }
            if (!popt_apply(&o, popts[k].id, name, v)) goto fail;
            break;
        }
        if (!matched) argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    if (o.kind == PF_OPENAI) return NULL;
    struct pf_state *st = calloc(1, sizeof *st);
    if (!st) goto fail;
    pthread_mutex_init(&st->mu, NULL);
    st->o = o;
    if (!o.email) {
        snprintf(st->email_buf, sizeof st->email_buf, "%s@example.com", o.user);
        st->o.email = st->email_buf;
    }
    st->day_offset = o.day_offset;
    st->html_errors = o.html_errors;
    st->turnstile = o.turnstile;
    st->checkin_enabled = !o.checkin_disabled;
    st->challenge = o.challenge;
    st->rng = 0x9E3779B97F4A7C15ull;
    st->next_token_id = 1;
    if (!seed(st)) {
        fr_platform_free(st);
        fprintf(stderr, "fakerelay: out of memory\n");
        goto fail;
    }
    return st;
fail:
    *err = true;
    return NULL;
}

void fr_platform_free(struct pf_state *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_calls; i++) free(st->calls[i].key);
    free(st->calls);
    free(st->users);
    free(st->tokens);
    free(st->sessions);
    free(st->checkins);
    free(st->logs);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- time and randomness ---- */

long long pf_now(const struct pf_state *st)
{
    return (long long)time(NULL) + (long long)st->day_offset * 86400;
}

void pf_today(const struct pf_state *st, bool utc, char *out)
{
    time_t t = (time_t)pf_now(st);
    struct tm tm;
    if (utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static uint64_t rng_next(struct pf_state *st)
{
    uint64_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void pf_random(struct pf_state *st, const char *alphabet, size_t n, char *out)
{
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++) out[i] = alphabet[(rng_next(st) >> 11) % k];
    out[n] = 0;
}

/* ---- users, sessions, tokens ---- */

static bool seed(struct pf_state *st)
{
    const struct pf_options *o = &st->o;
    st->users = calloc(1, sizeof *st->users);
    if (!st->users) return false;
    st->n_users = 1;
    struct pf_user *u = &st->users[0];
    u->id = o->user_id;
    snprintf(u->username, sizeof u->username, "%s", o->user);
    snprintf(u->email, sizeof u->email, "%s", o->email);
    snprintf(u->password, sizeof u->password, "%s", o->password);
    if (o->access_token) snprintf(u->access_token, sizeof u->access_token, "%s", o->access_token);
    if (o->totp_secret) {
        int n = pf_base32_decode(o->totp_secret, u->totp_key, sizeof u->totp_key);
        u->totp_len = n > 0 ? (size_t)n : 0;
    }
    u->quota = o->quota;
    u->used_quota = o->used_quota;
    u->request_count = 12;
    snprintf(u->group, sizeof u->group, "default");
    long long now = pf_now(st);
    for (unsigned i = 0; i < o->tokens; i++) {
        char key[PF_KEY_MAX];
        if (o->kind == PF_ONE_HUB || o->kind == PF_DONE_HUB)
            pf_key_one_hub(st, key);
        else if (o->kind == PF_SUB2API)
            pf_key_sub2api(st, key);
        else
            pf_key_new_api(st, key);
        struct pf_token *t = pf_token_new(st, u->id, key);
        if (!t) return false;
        snprintf(t->name, sizeof t->name, "token-%u", i + 1);
        t->created_time = t->accessed_time = now - (long long)(o->tokens - i) * 60;
    }
    return true;
}

struct pf_user *pf_user_by_id(struct pf_state *st, long long id)
{
    for (size_t i = 0; i < st->n_users; i++)
        if (st->users[i].id == id) return &st->users[i];
    return NULL;
}

struct pf_user *pf_user_by_name(struct pf_state *st, const char *name)
{
    for (size_t i = 0; i < st->n_users; i++)
        if (strcmp(st->users[i].username, name) == 0 || strcmp(st->users[i].email, name) == 0)
            return &st->users[i];
    return NULL;
}

struct pf_user *pf_user_by_access_token(struct pf_state *st, struct slice tok)
{
    if (!tok.n) return NULL;
    for (size_t i = 0; i < st->n_users; i++)
        if (st->users[i].access_token[0] && slice_eq_str(tok, st->users[i].access_token))
            return &st->users[i];
    return NULL;
}

struct pf_session *pf_session_new(struct pf_state *st, enum pf_session_kind kind, long long user_id,
                                  long long ttl)
{
    if (st->n_sessions == st->cap_sessions) {
        size_t cap = st->cap_sessions ? st->cap_sessions * 2 : 16;
        struct pf_session *s = realloc(st->sessions, cap * sizeof *s);
        if (!s) return NULL;
        st->sessions = s;
        st->cap_sessions = cap;
    }
    struct pf_session *s = &st->sessions[st->n_sessions++];
    *s = (struct pf_session){.kind = kind, .user_id = user_id};
    s->created = pf_now(st);
    s->expires = ttl > 0 ? s->created + ttl : 0;
    pf_random(st, PF_ALNUM, 64, s->id);
    return s;
}

struct pf_session *pf_session_find(struct pf_state *st, enum pf_session_kind kind, struct slice id,
                                   bool *expired)
{
    if (expired) *expired = false;
    if (!id.n) return NULL;
    long long now = pf_now(st);
    for (size_t i = 0; i < st->n_sessions; i++) {
        struct pf_session *s = &st->sessions[i];
        if (s->kind != kind || !slice_eq_str(id, s->id)) continue;
        if (s->dead || (s->expires && now >= s->expires)) {
            if (expired) *expired = true;
            return NULL;
        }
        return s;
    }
    return NULL;
}

struct pf_token *pf_token_new(struct pf_state *st, long long user_id, const char *key)
{
    struct pf_token *v = realloc(st->tokens, (st->n_tokens + 1) * sizeof *v);
    if (!v) return NULL;
    st->tokens = v;
    struct pf_token *t = &st->tokens[st->n_tokens++];
    *t = (struct pf_token){
        .id = st->next_token_id++,
        .user_id = user_id,
        .status = 1,
        .expired_time = -1,
        .unlimited_quota = true,
        .group_id = 3,
    };
    snprintf(t->key, sizeof t->key, "%s", key);
    t->created_time = t->accessed_time = pf_now(st);
    return t;
}

struct pf_token *pf_token_by_id(struct pf_state *st, long long user_id, long long id)
{
    for (size_t i = 0; i < st->n_tokens; i++) {
        struct pf_token *t = &st->tokens[i];
        if (!t->deleted && t->id == id && t->user_id == user_id) return t;
    }
    return NULL;
}

struct pf_token *pf_token_by_key(struct pf_state *st, struct slice key)
{
    /* As sent; then without "sk-" (the One API lineage stores keys without it); then
     * without a "-<channel>" suffix after it (New API's admin channel pinning). */
    struct slice tries[3] = {key, SLICE_NULL, SLICE_NULL};
    if (key.n > 3 && memcmp(key.p, "sk-", 3) == 0) {
        tries[1] = (struct slice){key.p + 3, key.n - 3};
        const char *dash = memchr(tries[1].p, '-', tries[1].n);
        if (dash) tries[2] = (struct slice){tries[1].p, (size_t)(dash - tries[1].p)};
    }
    for (int k = 0; k < 3; k++) {
        if (!tries[k].n) continue;
        for (size_t i = 0; i < st->n_tokens; i++)
            if (!st->tokens[i].deleted && slice_eq_str(tries[k], st->tokens[i].key))
                return &st->tokens[i];
    }
    return NULL;
}

static int token_newest_first(const void *a, const void *b)
{
    const struct pf_token *x = *(struct pf_token *const *)a, *y = *(struct pf_token *const *)b;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

struct pf_token **pf_tokens_of(struct pf_state *st, long long user_id, size_t *n)
{
    struct pf_token **v = calloc(st->n_tokens + 1, sizeof *v);
    *n = 0;
    if (!v) return NULL;
    for (size_t i = 0; i < st->n_tokens; i++)
        if (!st->tokens[i].deleted && st->tokens[i].user_id == user_id) v[(*n)++] = &st->tokens[i];
    qsort(v, *n, sizeof *v, token_newest_first);
    return v;
}

void pf_key_new_api(struct pf_state *st, char *out)
{
    pf_random(st, PF_ALNUM, 48, out);
}

void pf_key_one_hub(struct pf_state *st, char *out)
{
    char a[17], b[44];
    pf_random(st, PF_ALNUM, 16, a);
    pf_random(st, PF_ALNUM "-_", 43, b);
    snprintf(out, PF_KEY_MAX, "%s_%s", a, b);
}

void pf_key_sub2api(struct pf_state *st, char *out)
{
    char h[65];
    pf_random(st, PF_HEX, 64, h);
    snprintf(out, PF_KEY_MAX, "sk-%s", h);
}

void pf_key_mask(const char *key, char *out)
{
    size_t n = strlen(key);
    if (n <= 8) {
        snprintf(out, PF_KEY_MAX, "%s", "**********");
        return;
    }
    snprintf(out, PF_KEY_MAX, "%.4s**********%s", key, key + n - 4);
}

/* ---- check-ins and logs ---- */

struct pf_checkin *pf_checkin_find(struct pf_state *st, long long user_id, const char *date)
{
    for (size_t i = 0; i < st->n_checkins; i++)
        if (st->checkins[i].user_id == user_id && strcmp(st->checkins[i].date, date) == 0)
            return &st->checkins[i];
    return NULL;
}

bool pf_checkin_add(struct pf_state *st, struct pf_user *u, const char *date, long long quota)
{
    struct pf_checkin *v = realloc(st->checkins, (st->n_checkins + 1) * sizeof *v);
    if (!v) return false;
    st->checkins = v;
    struct pf_checkin *c = &st->checkins[st->n_checkins++];
    *c = (struct pf_checkin){.user_id = u->id, .quota = quota, .at = pf_now(st)};
    snprintf(c->date, sizeof c->date, "%s", date);
    u->quota += quota;
    u->checkins++;
    u->last_check_in_time = c->at;
    char msg[128];
    snprintf(msg, sizeof msg, "用户签到，获得额度 $%.6f", (double)quota / st->o.quota_per_unit);
    pf_log_add(st, u->id, 4, msg, "", "", quota, 0);
    return true;
}

void pf_log_add(struct pf_state *st, long long user_id, int type, const char *content,
                const char *token_name, const char *model, long long quota, long long token_id)
{
    struct pf_log *v = realloc(st->logs, (st->n_logs + 1) * sizeof *v);
    if (!v) return;
    st->logs = v;
    struct pf_log *l = &st->logs[st->n_logs];
    *l = (struct pf_log){.id = (long long)st->n_logs + 1,
                         .user_id = user_id,
                         .created_at = pf_now(st),
                         .type = type,
                         .quota = quota,
                         .token_id = token_id};
    st->n_logs++;
    snprintf(l->content, sizeof l->content, "%s", content);
    snprintf(l->token_name, sizeof l->token_name, "%s", token_name);
    snprintf(l->model_name, sizeof l->model_name, "%s", model);
}

/* ---- TOTP (RFC 6238) with a small SHA-1 (RFC 3174) ---- */

struct sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
};

static uint32_t rol(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

static void sha1_block(struct sha1 *s, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(struct sha1 *s)
{
    *s = (struct sha1){.h = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}};
}

static void sha1_update(struct sha1 *s, const unsigned char *p, size_t n)
{
    s->len += n;
    while (n--) {
        s->buf[s->n++] = *p++;
        if (s->n == 64) {
            sha1_block(s, s->buf);
            s->n = 0;
        }
    }
}

static void sha1_final(struct sha1 *s, unsigned char out[20])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80;
    sha1_update(s, &pad, 1);
    pad = 0;
    while (s->n != 56) sha1_update(s, &pad, 1);
    unsigned char l[8];
    for (int i = 0; i < 8; i++) l[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(s, l, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

static void hmac_sha1(const unsigned char *key, size_t kn, const unsigned char *msg, size_t mn,
                      unsigned char out[20])
{
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[20];
    if (kn > 64) {
        struct sha1 s;
        sha1_init(&s);
        sha1_update(&s, key, kn);
        sha1_final(&s, k);
    } else {
        memcpy(k, key, kn);
    }
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    struct sha1 s;
    sha1_init(&s);
    sha1_update(&s, ipad, 64);
    sha1_update(&s, msg, mn);
    sha1_final(&s, inner);
    sha1_init(&s);
    sha1_update(&s, opad, 64);
    sha1_update(&s, inner, 20);
    sha1_final(&s, out);
}

int pf_base32_decode(const char *s, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        int c = toupper((unsigned char)*s), v;
        if (c == '=' || c == ' ' || c == '-') continue;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (n >= cap) return -1;
            out[n++] = (unsigned char)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)n;
}

unsigned pf_totp_at(const unsigned char *key, size_t n, long long t)
{
    uint64_t step = (uint64_t)(t / 30);
    unsigned char msg[8], mac[20];
    for (int i = 0; i < 8; i++) msg[i] = (unsigned char)(step >> (56 - 8 * i));
    hmac_sha1(key, n, msg, 8, mac);
    int off = mac[19] & 0xf;
    uint32_t v = ((uint32_t)(mac[off] & 0x7f) << 24) | (uint32_t)mac[off + 1] << 16 |
                 (uint32_t)mac[off + 2] << 8 | mac[off + 3];
    return v % 1000000;
}

bool pf_totp_check(const struct pf_state *st, const struct pf_user *u, const char *code)
{
    (void)st;
    if (!code || strlen(code) != 6) return false;
    for (const char *p = code; *p; p++)
        if (!isdigit((unsigned char)*p)) return false;
    unsigned want = (unsigned)atoi(code);
    long long now = (long long)time(NULL); /* real time: the authenticator app's clock */
    for (int d = -1; d <= 1; d++)
        if (pf_totp_at(u->totp_key, u->totp_len, now + d * 30) == want) return true;
    return false;
}

/* ---- request helpers ---- */

struct slice pf_cookie(const http_request_t *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!slice_ieq_str(req->headers[i].name, "cookie")) continue;
        struct slice v = req->headers[i].value;
        const char *p = v.p, *end = v.p + v.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';')) p++;
            const char *e = memchr(p, ';', (size_t)(end - p));
            if (!e) e = end;
            if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                return (struct slice){p + nl + 1, (size_t)(e - p - nl - 1)};
            p = e;
        }
    }
    return SLICE_NULL;
}

struct slice pf_bearer(const http_request_t *req)
{
    struct slice a = slice_trim(http_request_header(req, "authorization"));
    if (a.n >= 7 && slice_ieq((struct slice){a.p, 7}, SLICE_LIT("Bearer ")))
        a = slice_trim((struct slice){a.p + 7, a.n - 7});
    return a;
}

long long pf_query_int(const http_request_t *req, const char *name, long long def)
{
    struct slice v = http_request_query_param(req, name);
    if (!v.p || !v.n) return def;
    char b[32];
    if (v.n >= sizeof b) return def;
    memcpy(b, v.p, v.n);
    b[v.n] = 0;
    char *end;
    long long n = strtoll(b, &end, 10);
    return *end ? def : n;
}

long long pf_page_size(const http_request_t *req, long long def)
{
    long long n = pf_query_int(req, "size", -1);
    if (n < 0) n = pf_query_int(req, "page_size", -1);
    if (n < 0) n = pf_query_int(req, "ps", -1);
    if (n <= 0) n = def;
    return n > 100 ? 100 : n;
}

const char *pf_body_str(const struct pf_req *r, const char *name)
{
    json_t *v = r->body ? json_object_get(r->body, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool pf_body_int(const struct pf_req *r, const char *name, long long *out)
{
    json_t *v = r->body ? json_object_get(r->body, name) : NULL;
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (long long)json_real_value(v);
        return true;
    }
    return false;
}

bool pf_body_bool(const struct pf_req *r, const char *name, bool def)
{
    json_t *v = r->body ? json_object_get(r->body, name) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : def;
}

void pf_header(struct pf_req *r, const char *name, const char *value)
{
    if (r->n_hdrs >= sizeof r->hdrs / sizeof r->hdrs[0]) return;
    char *n = pool_strndup(r->req->pool, name, strlen(name));
    char *v = pool_strndup(r->req->pool, value, strlen(value));
    if (!n || !v) return;
    r->hdrs[r->n_hdrs++] = (struct http_header){slice_from(n), slice_from(v)};
}

void pf_set_session_cookie(struct pf_req *r, const char *sid)
{
    char c[320];
    time_t exp = (time_t)pf_now(r->st) + 2592000;
    struct tm tm;
    gmtime_r(&exp, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(c, sizeof c,
             "session=%s; Path=/; Expires=%s; Max-Age=2592000; HttpOnly; SameSite=Strict", sid,
             date);
    pf_header(r, "Set-Cookie", c);
}

/* ---- answers ---- */

const char *pf_request_id(struct pf_req *r)
{
    /* Computed once per request and kept in req->user (unused by fakerelay otherwise). */
    if (r->req->user) return r->req->user;
    time_t t = (time_t)pf_now(r->st);
    struct tm tm;
    localtime_r(&t, &tm);
    char digits[9];
    pf_random(r->st, "0123456789", 8, digits);
    char *id = pool_printf(r->req->pool, "%04d%02d%02d%02d%02d%02d%s", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, digits);
    r->req->user = id;
    return id ? id : "0";
}

static void respond(struct pf_req *r, int status, const char *ct, struct slice body)
{
    struct http_header h[3 + sizeof r->hdrs / sizeof r->hdrs[0]];
    size_t n = 0;
    h[n++] = (struct http_header){SLICE_LIT("Content-Type"), slice_from(ct)};
    h[n++] = (struct http_header){SLICE_LIT("x-fakerelay-name"), slice_from(r->cfg->name)};
    if (r->st->o.kind != PF_SUB2API)
        h[n++] =
            (struct http_header){SLICE_LIT("X-Oneapi-Request-Id"), slice_from(pf_request_id(r))};
    for (size_t i = 0; i < r->n_hdrs; i++) h[n++] = r->hdrs[i];
    http_respond(r->req, status, h, n, body);
}

void pf_reply(struct pf_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(j);
    respond(r, s ? status : 500, "application/json; charset=utf-8",
            s ? slice_from(s) : SLICE_LIT("{\"success\":false,\"message\":\"out of memory\"}"));
    free(s);
}

void pf_reply_text(struct pf_req *r, int status, const char *content_type, const char *body)
{
    respond(r, status, content_type, slice_from(body));
}

void pf_ok(struct pf_req *r, const char *msg, json_t *data)
{
    json_t *j = json_pack("{s:b, s:s}", "success", 1, "message", msg ? msg : "");
    if (j && data)
        json_object_set_new(j, "data", data);
    else
        json_decref(data);
    pf_reply(r, 200, j);
}

void pf_fail(struct pf_req *r, int status, const char *msg)
{
    pf_reply(r, status, json_pack("{s:b, s:s}", "success", 0, "message", msg));
}

void pf_invalid_url(struct pf_req *r)
{
    char msg[300];
    snprintf(msg, sizeof msg, "Invalid URL (%.*s %.*s)", (int)r->req->method.n, r->req->method.p,
             (int)(r->req->path.n > 200 ? 200 : r->req->path.n), r->req->path.p);
    pf_reply(r, 404,
             json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type",
                       "invalid_request_error", "param", "", "code", ""));
}

void pf_relay_error_openai(struct pf_req *r, int status, const char *type, const char *code,
                           bool with_param, const char *msg)
{
    char m[600];
    snprintf(m, sizeof m, "%s (request id: %s)", msg, pf_request_id(r));
    json_t *e = json_pack("{s:s, s:s}", "message", m, "type", type);
    if (e && with_param) json_object_set_new(e, "param", json_string(""));
    if (e) json_object_set_new(e, "code", json_string(code ? code : ""));
    pf_reply(r, status, json_pack("{s:o}", "error", e));
}

bool pf_turnstile(struct pf_req *r)
{
    if (!r->st->turnstile || (r->sess && r->sess->turnstile_ok)) return true;
    struct slice t = http_request_query_param(r->req, "turnstile");
    if (!t.p || !t.n) {
        pf_fail(r, 200, "Turnstile token 为空");
        return false;
    }
    if (!slice_eq_str(t, PF_TURNSTILE_OK)) {
        pf_fail(r, 200, "Turnstile 校验失败，请刷新重试！");
        return false;
    }
    if (r->sess) r->sess->turnstile_ok = true;
    return true;
}

json_t *pf_user_login_json(const struct pf_user *u, bool with_group)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:i, s:i}", "id", (json_int_t)u->id, "username",
                          u->username, "display_name", u->username, "role", 1, "status", 1);
    if (j && with_group) json_object_set_new(j, "group", json_string(u->group));
    return j;
}

/* ---- /_fake/ platform routes and statistics ---- */

static void ctl_reply(struct fr_app *app, http_request_t *req, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-fakerelay-name"), slice_from(app->cfg.name)},
    };
    http_respond(req, s ? status : 500, h, 2, s ? slice_from(s) : SLICE_LIT("{}"));
    free(s);
}

static json_t *state_json(struct pf_state *st)
{
    char today[11], today_utc[11];
    pf_today(st, false, today);
    pf_today(st, true, today_utc);
    json_t *users = json_array(), *tokens = json_array(), *checkins = json_array();
    for (size_t i = 0; i < st->n_users; i++) {
        struct pf_user *u = &st->users[i];
        json_array_append_new(
            users, json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:I}", "id", (json_int_t)u->id,
                             "username", u->username, "email", u->email, "quota",
                             (json_int_t)u->quota, "used_quota", (json_int_t)u->used_quota,
                             "request_count", (json_int_t)u->request_count, "access_token",
                             u->access_token, "checkins", (json_int_t)u->checkins));
    }
    for (size_t i = 0; i < st->n_tokens; i++) {
        struct pf_token *t = &st->tokens[i];
        if (t->deleted) continue;
        json_array_append_new(
            tokens,
            json_pack("{s:I, s:I, s:s, s:s, s:i, s:I, s:I, s:b}", "id", (json_int_t)t->id,
                      "user_id", (json_int_t)t->user_id, "name", t->name, "key", t->key, "status",
                      t->status, "expired_time", (json_int_t)t->expired_time, "used_quota",
                      (json_int_t)t->used_quota, "unlimited_quota", t->unlimited_quota));
    }
    for (size_t i = 0; i < st->n_checkins; i++)
        json_array_append_new(checkins, json_pack("{s:I, s:s, s:I}", "user_id",
                                                  (json_int_t)st->checkins[i].user_id, "date",
                                                  st->checkins[i].date, "quota",
                                                  (json_int_t)st->checkins[i].quota));
    return json_pack("{s:s, s:i, s:s, s:s, s:b, s:b, s:b, s:b, s:o, s:o, s:o}", "platform",
                     st->o.id, "day_offset", st->day_offset, "today", today, "today_utc", today_utc,
                     "html_errors", st->html_errors, "turnstile", st->turnstile, "checkin_enabled",
                     st->checkin_enabled, "challenge", st->challenge, "users", users, "tokens",
                     tokens, "checkins", checkins);
}

bool fr_platform_control(struct fr_worker *w, http_request_t *req)
{
    struct fr_app *app = w->app;
    struct pf_state *st = app->platform;
    if (!st) return false;
    struct slice m = req->method, p = req->path;
    if (slice_eq_str(p, "/_fake/next-day") && slice_eq_str(m, "POST")) {
        pthread_mutex_lock(&st->mu);
        long long days = pf_query_int(req, "days", 1);
        if (days < -1000 || days > 1000) days = 1;
        st->day_offset += (int)days;
        char today[11];
        pf_today(st, false, today);
        json_t *j = json_pack("{s:i, s:s}", "day_offset", st->day_offset, "today", today);
        pthread_mutex_unlock(&st->mu);
        ctl_reply(app, req, 200, j);
        return true;
    }
    if (slice_eq_str(p, "/_fake/expire-sessions") && slice_eq_str(m, "POST")) {
        pthread_mutex_lock(&st->mu);
        long long n = 0;
        for (size_t i = 0; i < st->n_sessions; i++)
            if (!st->sessions[i].dead && st->sessions[i].kind != PF_SESS_REFRESH) {
                st->sessions[i].dead = true;
                n++;
            }
        pthread_mutex_unlock(&st->mu);
        ctl_reply(app, req, 200, json_pack("{s:I}", "expired", (json_int_t)n));
        return true;
    }
    if (slice_eq_str(p, "/_fake/platform") && slice_eq_str(m, "GET")) {
        pthread_mutex_lock(&st->mu);
        json_t *j = state_json(st);
        pthread_mutex_unlock(&st->mu);
        ctl_reply(app, req, 200, j);
        return true;
    }
    if (slice_eq_str(p, "/_fake/platform") && slice_eq_str(m, "POST")) {
        json_error_t e;
        json_t *b = json_loadb(req->body.p ? req->body.p : "", req->body.n, 0, &e);
        if (!json_is_object(b)) {
            json_decref(b);
            ctl_reply(app, req, 400,
                      json_pack("{s:s}", "error",
                                "fakerelay: POST /_fake/platform wants a JSON object (html_errors, "
                                "turnstile, checkin_enabled, challenge, day_offset, quota)"));
            return true;
        }
        pthread_mutex_lock(&st->mu);
        json_t *v;
        if (json_is_boolean(v = json_object_get(b, "html_errors")))
            st->html_errors = json_is_true(v);
        if (json_is_boolean(v = json_object_get(b, "turnstile"))) st->turnstile = json_is_true(v);
        if (json_is_boolean(v = json_object_get(b, "checkin_enabled")))
            st->checkin_enabled = json_is_true(v);
        if (json_is_boolean(v = json_object_get(b, "challenge"))) st->challenge = json_is_true(v);
        if (json_is_integer(v = json_object_get(b, "day_offset")))
            st->day_offset = (int)json_integer_value(v);
        if (json_is_integer(v = json_object_get(b, "quota")) && st->n_users)
            st->users[0].quota = (long long)json_integer_value(v);
        json_t *j = state_json(st);
        pthread_mutex_unlock(&st->mu);
        json_decref(b);
        ctl_reply(app, req, 200, j);
        return true;
    }
    return false;
}

void fr_platform_stats(struct fr_app *app, json_t *stats)
{
    struct pf_state *st = app->platform;
    if (!st) {
        json_object_set_new(stats, "platform", json_string("openai"));
        return;
    }
    pthread_mutex_lock(&st->mu);
    json_t *calls = json_object(), *checkins = json_object();
    for (size_t i = 0; i < st->n_calls; i++)
        json_object_set_new(calls, st->calls[i].key, json_integer((json_int_t)st->calls[i].n));
    for (size_t i = 0; i < st->n_users; i++)
        json_object_set_new(checkins, st->users[i].username,
                            json_integer((json_int_t)st->users[i].checkins));
    pthread_mutex_unlock(&st->mu);
    json_object_set_new(stats, "platform", json_string(st->o.id));
    json_object_set_new(stats, "management_calls", calls);
    json_object_set_new(stats, "checkins", checkins);
}

void fr_platform_stats_reset(struct fr_app *app)
{
    struct pf_state *st = app->platform;
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n_calls; i++) free(st->calls[i].key);
    free(st->calls);
    st->calls = NULL;
    st->n_calls = 0;
    pthread_mutex_unlock(&st->mu);
}
