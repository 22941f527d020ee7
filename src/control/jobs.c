/* jobs.c — the per-account jobs of the control plane (see jobs.h): loading an account's
 * site, adapter and opened credentials, calling the adapter with one automatic re-login
 * on an authentication failure, and storing what came back (balances with history,
 * check-in logs, tokens, models, prices, events, the account's status). */
#include "control/jobs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/secrets.h"
#include "store/account_tokens.h"
#include "store/accounts.h"
#include "store/events.h"
#include "store/models.h"
#include "store/prices.h"
#include "store/sites.h"

/* Everything a job needs about one account. */
struct acct_env {
    struct account a;
    struct site s;
    struct account_credentials c;
    const struct platform *p;
    struct platform_credentials pc;
};

static void env_free(struct acct_env *e)
{
    account_clear(&e->a);
    site_clear(&e->s);
    account_credentials_clear(&e->c);
}

static void set_msg(struct job_result *r, enum job_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(struct job_result *r, enum job_status st, const char *fmt, ...)
{
    r->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void result_init(struct job_result *r)
{
    memset(r, 0, sizeof *r);
    r->reward = -1;
    r->balance = -1;
}

static void fill_pc(struct acct_env *e)
{
    struct platform_credentials *pc = &e->pc;
    memset(pc, 0, sizeof *pc);
    pc->base_url = e->s.url;
    pc->username = e->a.username;
    pc->password = e->c.password;
    pc->totp_secret = e->c.totp_secret;
    pc->access_token = e->c.access_token;
    pc->refresh_token = e->c.refresh_token;
    pc->cookie = e->c.cookie;
    pc->user_id = e->a.user_id;
    pc->api_key = NULL;
    pc->proxy_url = e->s.proxy_url;
    pc->custom_headers_json = e->s.custom_headers;
}

/* Loads the account; false with r filled when it cannot be worked on. */
static bool env_load(struct job_ctx *ctx, int64_t id, struct acct_env *e, struct job_result *r)
{
    memset(e, 0, sizeof *e);
    enum store_status st = accounts_get(ctx->db, id, &e->a);
    if (st != STORE_OK) {
        set_msg(r, JOB_FAILED, "account %lld: %s", (long long)id, store_status_str(st));
        return false;
    }
    st = sites_get(ctx->db, e->a.site_id, &e->s);
    if (st == STORE_OK) st = accounts_get_credentials(ctx->db, id, &e->c);
    if (st != STORE_OK) {
        set_msg(r, JOB_FAILED, "account %lld: %s", (long long)id, store_status_str(st));
        return false;
    }
    if (e->c.error) {
        set_msg(r, JOB_FAILED, "account %lld: %s", (long long)id, e->c.error);
        return false;
    }
    e->p = platform_by_id(e->s.platform);
    if (!e->p) {
        set_msg(r, JOB_FAILED, "site %s: unknown platform '%s'", e->s.name, e->s.platform);
        return false;
    }
    fill_pc(e);
    return true;
}

static const char *kind_str(enum platform_error_kind k)
{
    switch (k) {
    case PLATFORM_OK:
        return "ok";
    case PLATFORM_ERR_UNREACHABLE:
        return "unreachable";
    case PLATFORM_ERR_AUTH:
        return "authentication failed";
    case PLATFORM_ERR_NEEDS_2FA:
        return "2FA code required";
    case PLATFORM_ERR_CAPTCHA:
        return "captcha required";
    case PLATFORM_ERR_UNSUPPORTED:
        return "unsupported";
    case PLATFORM_ERR_ALREADY_DONE:
        return "already done";
    case PLATFORM_ERR_BAD_RESPONSE:
        return "bad response";
    case PLATFORM_ERR_UPSTREAM:
        return "site error";
    }
    return "error";
}

static void event(struct job_ctx *ctx, const char *type, const char *level, int64_t account_id,
                  const char *title, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void event(struct job_ctx *ctx, const char *type, const char *level, int64_t account_id,
                  const char *title, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (events_add(ctx->db, type, level, title, msg, account_id, "account") != STORE_OK)
        log_warn("control: cannot store an event: %s: %s", title, msg);
}

/* Marks the account expired with `why` and tells the user what to do. */
static void expire(struct job_ctx *ctx, struct acct_env *e, const struct platform_error *err)
{
    char why[600];
    if (err->kind == PLATFORM_ERR_CAPTCHA)
        snprintf(why, sizeof why,
                 "%s requires a captcha (Turnstile) to log in: log in with a browser and paste "
                 "the session cookie (POST /api/accounts/%lld/rebind-session)",
                 e->s.name, (long long)e->a.id);
    else if (err->kind == PLATFORM_ERR_NEEDS_2FA)
        snprintf(why, sizeof why,
                 "%s asks for a 2FA code: store the account's TOTP secret or paste a session",
                 e->s.name);
    else
        snprintf(why, sizeof why, "the credentials no longer work on %s: %s", e->s.name,
                 err->message[0] ? err->message : kind_str(err->kind));
    bool was_active = e->a.status && strcmp(e->a.status, "expired") != 0;
    if (accounts_set_status(ctx->db, e->a.id, "expired", why) == STORE_OK && was_active)
        ctx->routing_dirty = true;
    event(ctx, "status", "error", e->a.id, "Account expired", "account %lld (%s on %s): %s",
          (long long)e->a.id, e->a.username ? e->a.username : "-", e->s.name, why);
}

/* Stores a new session from a login/refresh and points e->pc at it. */
static bool store_session(struct job_ctx *ctx, struct acct_env *e, struct platform_session *ses)
{
    struct account_fields f = {0};
    if (ses->access_token) f.access_token = ses->access_token, f.set_access_token = true;
    if (ses->refresh_token) f.refresh_token = ses->refresh_token, f.set_refresh_token = true;
    if (ses->cookie) f.cookie = ses->cookie, f.set_cookie = true;
    if (ses->user_id) f.user_id = ses->user_id, f.set_user_id = true;
    if (ses->access_expires_at > 0)
        f.access_expires_at = ses->access_expires_at, f.set_access_expires_at = true;
    if (e->a.status && strcmp(e->a.status, "expired") == 0) {
        f.status = "active";
        f.status_reason = NULL;
        f.set_status_reason = true;
        ctx->routing_dirty = true;
    }
    if (accounts_update(ctx->db, e->a.id, &f, NULL) != STORE_OK) return false;
    /* Reload so e->pc points at the stored values. */
    int64_t id = e->a.id;
    struct job_result tmp;
    env_free(e);
    return env_load(ctx, id, e, &tmp);
}

/* Tries to get a working session again: refresh token first, then password login. 0 on
 * success; -1 with *err filled. */
static int relogin(struct job_ctx *ctx, struct acct_env *e, struct platform_error *err)
{
    struct platform_session ses;
    if (e->p->refresh_session && e->c.refresh_token) {
        memset(&ses, 0, sizeof ses);
        struct platform_error e2 = {0};
        if (e->p->refresh_session(ctx->fetch, &e->pc, &ses, &e2) == 0) {
            bool ok = store_session(ctx, e, &ses);
            platform_session_free(&ses);
            if (ok) return 0;
        }
        platform_session_free(&ses);
    }
    if (!e->p->login || !e->a.username || !e->c.password) {
        if (!err->message[0])
            snprintf(err->message, sizeof err->message,
                     "the session expired and no password is stored");
        return -1;
    }
    memset(&ses, 0, sizeof ses);
    struct platform_error le = {0};
    if (e->p->login(ctx->fetch, &e->pc, &ses, &le) != 0) {
        platform_session_free(&ses);
        *err = le;
        return -1;
    }
    bool ok = store_session(ctx, e, &ses);
    platform_session_free(&ses);
    if (!ok) {
        err->kind = PLATFORM_ERR_UPSTREAM;
        snprintf(err->message, sizeof err->message, "the new session could not be stored");
        return -1;
    }
    log_info("control: account %lld logged in again on %s", (long long)e->a.id, e->s.name);
    return 0;
}

static bool auth_kind(enum platform_error_kind k)
{
    return k == PLATFORM_ERR_AUTH || k == PLATFORM_ERR_NEEDS_2FA || k == PLATFORM_ERR_CAPTCHA;
}

/* Runs `call` once, and once more after a re-login when it failed on authentication. A
 * definitive authentication failure expires the account. */
#define WITH_SESSION(ctx, e, err, call)                                                            \
    ({                                                                                             \
        memset(&(err), 0, sizeof(err));                                                            \
        int rc_ = (call);                                                                          \
        if (rc_ != 0 && auth_kind((err).kind)) {                                                   \
            if (relogin((ctx), (e), &(err)) == 0) {                                                \
                memset(&(err), 0, sizeof(err));                                                    \
                rc_ = (call);                                                                      \
            } else {                                                                               \
                rc_ = -1;                                                                          \
            }                                                                                      \
            if (rc_ != 0 && auth_kind((err).kind)) expire((ctx), (e), &(err));                     \
        }                                                                                          \
        rc_;                                                                                       \
    })

static bool needs_management(struct acct_env *e, struct job_result *r, const char *what)
{
    if (!e->p->has_management ||
        strcmp(e->a.credential_mode ? e->a.credential_mode : "", "session")) {
        set_msg(r, JOB_SKIPPED, "%s: account %lld holds an API key only (no %s)", e->s.name,
                (long long)e->a.id, what);
        return false;
    }
    if (e->a.status && strcmp(e->a.status, "disabled") == 0) {
        set_msg(r, JOB_SKIPPED, "account %lld is disabled", (long long)e->a.id);
        return false;
    }
    return true;
}

static void fail_from(struct job_result *r, const struct acct_env *e, const char *what,
                      const struct platform_error *err)
{
    r->kind = err->kind;
    set_msg(r, JOB_FAILED, "%s on %s: %s%s%s", what, e->s.name, kind_str(err->kind),
            err->message[0] ? ": " : "", err->message);
}

/* ---- balance ---- */

static int read_balance(struct job_ctx *ctx, struct acct_env *e, struct platform_balance *b,
                        struct platform_error *err)
{
    memset(b, 0, sizeof *b);
    if (!e->p->balance) {
        err->kind = PLATFORM_ERR_UNSUPPORTED;
        snprintf(err->message, sizeof err->message, "no balance on this platform");
        return -1;
    }
    return WITH_SESSION(ctx, e, *err, e->p->balance(ctx->fetch, &e->pc, b, &*err));
}

static void save_balance(struct job_ctx *ctx, struct acct_env *e, const struct platform_balance *b)
{
    struct account_balance_update u = {
        .balance = b->balance,
        .used = b->used,
        .quota_per_unit = b->quota_per_unit,
        .raw_quota = b->raw_quota,
        .currency = b->currency ? b->currency : "USD",
        .display_name = b->display_name,
        .user_group = b->group,
    };
    if (accounts_record_balance(ctx->db, e->a.id, &u) != STORE_OK)
        log_warn("control: cannot store the balance of account %lld", (long long)e->a.id);
}

void job_balance(struct job_ctx *ctx, int64_t account_id, struct job_result *r)
{
    result_init(r);
    struct acct_env e;
    if (env_load(ctx, account_id, &e, r) && needs_management(&e, r, "balance")) {
        struct platform_balance b;
        struct platform_error err;
        if (read_balance(ctx, &e, &b, &err) == 0) {
            save_balance(ctx, &e, &b);
            r->balance = b.balance;
            set_msg(r, JOB_OK, "%s: balance %.4f %s", e.s.name, b.balance,
                    b.currency ? b.currency : "USD");
        } else {
            fail_from(r, &e, "balance refresh", &err);
            event(ctx, "balance", "error", account_id, "Balance refresh failed", "%s", r->message);
        }
        platform_balance_free(&b);
    }
    env_free(&e);
}

/* ---- check-in ---- */

void job_local_day(const tz_t *z, int64_t t, char out[16])
{
    int64_t local = t + (z ? tz_offset_at(z, t, NULL) : 0);
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t y;
    unsigned m, d;
    tz_civil_from_days(days, &y, &m, &d);
    snprintf(out, 16, "%04d-%02u-%02u", (int)y, m, d);
}

void job_checkin_outcome(int rc, const struct platform_checkin *res,
                         const struct platform_error *err, double before, double after,
                         struct job_result *r)
{
    r->reward = -1;
    const char *site_msg = res && res->message ? res->message : "";
    if (rc != 0) {
        if (err->kind == PLATFORM_ERR_ALREADY_DONE) {
            set_msg(r, JOB_SKIPPED, "already checked in today%s%s", err->message[0] ? ": " : "",
                    err->message);
        } else if (err->kind == PLATFORM_ERR_UNSUPPORTED) {
            set_msg(r, JOB_SKIPPED, "this site has no check-in%s%s", err->message[0] ? ": " : "",
                    err->message);
        } else {
            r->kind = err->kind;
            set_msg(r, JOB_FAILED, "check-in failed: %s%s%s", kind_str(err->kind),
                    err->message[0] ? ": " : "", err->message);
        }
        return;
    }
    if (res->already_done) {
        set_msg(r, JOB_SKIPPED, "already checked in today%s%s", *site_msg ? ": " : "", site_msg);
        return;
    }
    double diff = before >= 0 && after >= 0 ? after - before : -1;
    if (res->reward >= 0) {
        r->reward = res->reward;
    } else if (diff > 1e-9) {
        r->reward = round(diff * 1e6) / 1e6;
    } else if (before >= 0 && after >= 0) {
        /* A success that changed nothing: the site did not grant anything today. */
        set_msg(r, JOB_SKIPPED, "already checked in today (no reward, balance unchanged)%s%s",
                *site_msg ? ": " : "", site_msg);
        return;
    }
    if (r->reward >= 0)
        set_msg(r, JOB_OK, "checked in, reward %.4f%s%s", r->reward, *site_msg ? ": " : "",
                site_msg);
    else
        set_msg(r, JOB_OK, "checked in (reward unknown)%s%s", *site_msg ? ": " : "", site_msg);
}

void job_checkin(struct job_ctx *ctx, int64_t account_id, bool scheduled, struct job_result *r)
{
    result_init(r);
    struct acct_env e;
    char day[16];
    job_local_day(ctx->tz, (int64_t)time(NULL), day);
    if (!env_load(ctx, account_id, &e, r)) goto out;
    if (!e.p->has_checkin || !e.p->checkin) {
        set_msg(r, JOB_SKIPPED, "%s (%s) has no check-in", e.s.name, e.p->display_name);
        if (!scheduled) checkin_logs_add(ctx->db, account_id, "skipped", r->message, -1, day);
        goto out;
    }
    if (!needs_management(&e, r, "check-in")) goto out;
    if (!e.a.checkin_enabled) {
        set_msg(r, JOB_SKIPPED, "check-in is turned off for account %lld", (long long)account_id);
        goto out;
    }
    if (scheduled) {
        bool done = false;
        if (checkin_done_on(ctx->db, account_id, day, &done) == STORE_OK && done) {
            set_msg(r, JOB_SKIPPED, "already checked in on %s", day);
            checkin_logs_add(ctx->db, account_id, "skipped", r->message, -1, day);
            goto out;
        }
    }
    struct platform_balance b0 = {0}, b1 = {0};
    struct platform_error err;
    double before = read_balance(ctx, &e, &b0, &err) == 0 ? b0.balance : -1;
    if (before < 0 && auth_kind(err.kind)) { /* expired, event written */
        fail_from(r, &e, "check-in", &err);
        checkin_logs_add(ctx->db, account_id, "failed", r->message, -1, day);
        platform_balance_free(&b0);
        goto out;
    }
    struct platform_checkin res = {0};
    int rc = WITH_SESSION(ctx, &e, err, e.p->checkin(ctx->fetch, &e.pc, &res, &err));
    double after = -1;
    if (rc == 0 && read_balance(ctx, &e, &b1, &err) == 0) {
        after = b1.balance;
        save_balance(ctx, &e, &b1);
    } else if (rc == 0) {
        memset(&err, 0, sizeof err);
    }
    job_checkin_outcome(rc, &res, &err, before, after, r);
    r->balance = after;
    const char *status = r->status == JOB_OK        ? "success"
                         : r->status == JOB_SKIPPED ? "skipped"
                                                    : "failed";
    checkin_logs_add(ctx->db, account_id, status, r->message, r->reward, day);
    if (r->status == JOB_OK)
        event(ctx, "checkin", "info", account_id, "Check-in", "%s (%s): %s", e.s.name,
              e.a.username ? e.a.username : "-", r->message);
    else if (r->status == JOB_FAILED)
        event(ctx, "checkin", "error", account_id, "Check-in failed", "%s (%s): %s", e.s.name,
              e.a.username ? e.a.username : "-", r->message);
    platform_checkin_free(&res);
    platform_balance_free(&b0);
    platform_balance_free(&b1);
out:
    env_free(&e);
}

/* ---- tokens ---- */

static int list_tokens(struct job_ctx *ctx, struct acct_env *e, struct platform_token_list *l,
                       struct platform_error *err)
{
    memset(l, 0, sizeof *l);
    return WITH_SESSION(ctx, e, *err, e->p->list_tokens(ctx->fetch, &e->pc, l, &*err));
}

static void do_sync(struct job_ctx *ctx, struct acct_env *e, bool create_when_empty,
                    struct job_result *r)
{
    if (!e->p->list_tokens) {
        set_msg(r, JOB_SKIPPED, "%s: this platform has no token list", e->s.name);
        return;
    }
    struct platform_token_list l;
    struct platform_error err;
    int rc = list_tokens(ctx, e, &l, &err);
    if (rc == 0 && l.n == 0 && create_when_empty && e->p->create_token) {
        struct platform_token_spec spec = {
            .name = "metarelay", .unlimited = true, .expires_at = -1};
        struct platform_token t = {0};
        struct platform_error ce = {0};
        if (e->p->create_token(ctx->fetch, &e->pc, &spec, &t, &ce) == 0) {
            platform_token_list_free(&l);
            rc = list_tokens(ctx, e, &l, &err);
        } else {
            event(ctx, "token", "warning", e->a.id, "Token creation failed",
                  "%s: the account has no API key and creating one failed: %s", e->s.name,
                  ce.message);
        }
        free(t.id), free(t.name), secrets_free_str(t.key), free(t.masked_key), free(t.group),
            free(t.model_limits);
    }
    if (rc != 0) {
        fail_from(r, e, "token sync", &err);
        event(ctx, "token", "error", e->a.id, "Token sync failed", "%s", r->message);
        return;
    }
    struct account_token_fields *items = calloc(l.n ? l.n : 1, sizeof *items);
    if (!items) {
        platform_token_list_free(&l);
        set_msg(r, JOB_FAILED, "out of memory");
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const struct platform_token *t = &l.items[i];
        items[i] = (struct account_token_fields){
            .site_token_id = t->id,
            .name = t->name ? t->name : "",
            .key = t->key && *t->key && !strchr(t->key, '*') ? t->key : NULL,
            .masked = t->masked_key ? t->masked_key : "",
            .group = t->group,
            .enabled = t->enabled ? 1 : 0,
            .is_default = -1,
            .unlimited = t->unlimited,
            .remain_quota = t->remain_quota,
            .expires_at = t->expires_at,
            .model_limits = t->model_limits,
        };
    }
    size_t added = 0, updated = 0, removed = 0, pending = 0;
    enum store_status st =
        account_tokens_sync(ctx->db, e->a.id, items, l.n, &added, &updated, &removed, &pending);
    free(items);
    r->count = l.n;
    r->pending = pending;
    platform_token_list_free(&l);
    if (st != STORE_OK) {
        set_msg(r, JOB_FAILED, "token sync: cannot store the tokens (%s)", store_status_str(st));
        return;
    }
    ctx->routing_dirty = true;
    set_msg(r, JOB_OK, "%s: %zu tokens (%zu new, %zu removed, %zu still masked)", e->s.name,
            r->count, added, removed, pending);
    if (pending)
        event(ctx, "token", "warning", e->a.id, "Masked API keys",
              "%s shows %zu key(s) of account %lld only masked and metarelay could not read the "
              "full value: paste it (PUT /api/account-tokens/:id with \"token\") to use them",
              e->s.name, pending, (long long)e->a.id);
}

void job_sync_tokens(struct job_ctx *ctx, int64_t account_id, struct job_result *r)
{
    result_init(r);
    struct acct_env e;
    if (env_load(ctx, account_id, &e, r) && needs_management(&e, r, "token management"))
        do_sync(ctx, &e, false, r);
    env_free(&e);
}

/* ---- models and prices ---- */

static int add_names(char ***all, size_t *n, size_t *cap, const struct platform_model_list *ml)
{
    for (size_t i = 0; i < ml->n; i++) {
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++) dup = strcmp((*all)[j], ml->models[i]) == 0;
        if (dup) continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 32;
            char **na = realloc(*all, nc * sizeof *na);
            if (!na) return -1;
            *all = na, *cap = nc;
        }
        if (!((*all)[*n] = strdup(ml->models[i]))) return -1;
        (*n)++;
    }
    return 0;
}

static struct model_price *to_prices(const struct platform_model_list *ml)
{
    struct model_price *p = calloc(ml->n_prices ? ml->n_prices : 1, sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < ml->n_prices; i++)
        p[i] = (struct model_price){.model = ml->prices[i].model,
                                    .input_per_million = ml->prices[i].input_per_million,
                                    .output_per_million = ml->prices[i].output_per_million,
                                    .per_call = ml->prices[i].per_call,
                                    .group = ml->prices[i].group};
    return p;
}

void job_models(struct job_ctx *ctx, int64_t account_id, struct job_result *r)
{
    result_init(r);
    struct acct_env e;
    char **all = NULL;
    size_t n_all = 0, cap = 0, keys_tried = 0, n_prices = 0;
    struct account_token *toks = NULL;
    size_t n_toks = 0;
    struct platform_error err = {0}, last = {0};
    if (!env_load(ctx, account_id, &e, r)) goto out;
    if (!e.p->models) {
        set_msg(r, JOB_SKIPPED, "%s: no model discovery on this platform", e.s.name);
        goto out;
    }
    bool session =
        e.p->has_management && e.a.credential_mode && strcmp(e.a.credential_mode, "session") == 0;
    /* The platform's own model and pricing endpoints (session). */
    if (session) {
        struct platform_model_list ml = {0};
        if (WITH_SESSION(ctx, &e, err, e.p->models(ctx->fetch, &e.pc, &ml, &err)) == 0) {
            struct model_price *p = to_prices(&ml);
            if (p && model_prices_replace(ctx->db, account_id, 0, p, ml.n_prices) == STORE_OK)
                n_prices = ml.n_prices;
            free(p);
            if (add_names(&all, &n_all, &cap, &ml) != 0) n_all = 0;
        } else {
            last = err;
        }
        platform_model_list_free(&ml);
    }
    /* Per usable key: GET /v1/models with it. */
    if (account_tokens_list(ctx->db, account_id, &toks, &n_toks) != STORE_OK) n_toks = 0;
    for (size_t i = 0; i < n_toks; i++) {
        if (!toks[i].key || !toks[i].enabled) continue;
        struct platform_model_list ml = {0};
        struct platform_credentials pc = e.pc;
        pc.api_key = toks[i].key;
        memset(&err, 0, sizeof err);
        keys_tried++;
        if (e.p->models(ctx->fetch, &pc, &ml, &err) == 0) {
            token_models_replace(ctx->db, toks[i].id, (const char *const *)ml.models, ml.n);
            if (ml.n_prices) {
                struct model_price *p = to_prices(&ml);
                if (p) model_prices_replace(ctx->db, account_id, toks[i].id, p, ml.n_prices);
                free(p);
            }
            add_names(&all, &n_all, &cap, &ml);
        } else {
            last = err;
        }
        platform_model_list_free(&ml);
    }
    if (keys_tried == 0 && e.c.api_token) {
        struct platform_model_list ml = {0};
        struct platform_credentials pc = e.pc;
        pc.api_key = e.c.api_token;
        memset(&err, 0, sizeof err);
        keys_tried++;
        if (e.p->models(ctx->fetch, &pc, &ml, &err) == 0)
            add_names(&all, &n_all, &cap, &ml);
        else
            last = err;
        platform_model_list_free(&ml);
    }
    if (n_all == 0 && (last.kind != PLATFORM_OK || keys_tried == 0)) {
        if (last.kind != PLATFORM_OK)
            fail_from(r, &e, "model discovery", &last);
        else
            set_msg(r, JOB_FAILED, "model discovery on %s: the account has no usable API key",
                    e.s.name);
        event(ctx, "models", "error", account_id, "Model discovery failed", "%s", r->message);
        goto out;
    }
    if (account_models_replace(ctx->db, account_id, (const char *const *)all, n_all) != STORE_OK) {
        set_msg(r, JOB_FAILED, "model discovery: cannot store the models");
        goto out;
    }
    ctx->routing_dirty = true;
    r->count = n_all;
    set_msg(r, JOB_OK, "%s: %zu models, %zu prices", e.s.name, n_all, n_prices);
out:
    for (size_t i = 0; i < n_all; i++) free(all[i]);
    free(all);
    account_tokens_free(toks, n_toks);
    env_free(&e);
}

/* ---- login ---- */

void job_login_create(struct job_ctx *ctx, int64_t site_id, const char *username,
                      const char *password, const char *totp_secret, int64_t *account_id,
                      struct job_result *r)
{
    result_init(r);
    *account_id = 0;
    struct site s;
    enum store_status st = sites_get(ctx->db, site_id, &s);
    if (st != STORE_OK) {
        set_msg(r, JOB_FAILED, "site %lld: %s", (long long)site_id, store_status_str(st));
        return;
    }
    const struct platform *p = platform_by_id(s.platform);
    if (!p || !p->login) {
        set_msg(r, JOB_FAILED, "%s (%s) has no password login: add the account with an API key",
                s.name, s.platform);
        r->kind = PLATFORM_ERR_UNSUPPORTED;
        site_clear(&s);
        return;
    }
    struct platform_credentials pc = {.base_url = s.url,
                                      .username = username,
                                      .password = password,
                                      .totp_secret = totp_secret,
                                      .proxy_url = s.proxy_url,
                                      .custom_headers_json = s.custom_headers};
    struct platform_session ses = {0};
    struct platform_error err = {0};
    if (p->login(ctx->fetch, &pc, &ses, &err) != 0) {
        r->kind = err.kind;
        if (err.kind == PLATFORM_ERR_CAPTCHA)
            set_msg(r, JOB_FAILED,
                    "%s requires a captcha (Turnstile) to log in: log in with a browser, copy the "
                    "session cookie and add the account with it (POST /api/accounts with "
                    "\"cookie\") instead",
                    s.name);
        else
            set_msg(r, JOB_FAILED, "login to %s failed: %s%s%s", s.name, kind_str(err.kind),
                    err.message[0] ? ": " : "", err.message);
        platform_session_free(&ses);
        site_clear(&s);
        return;
    }
    struct account_fields f = {0};
    f.site_id = site_id;
    f.username = ses.username ? ses.username : username;
    f.credential_mode = "session";
    f.password = password, f.set_password = true;
    f.totp_secret = totp_secret, f.set_totp_secret = totp_secret != NULL;
    f.access_token = ses.access_token, f.set_access_token = ses.access_token != NULL;
    f.refresh_token = ses.refresh_token, f.set_refresh_token = ses.refresh_token != NULL;
    f.cookie = ses.cookie, f.set_cookie = ses.cookie != NULL;
    f.user_id = ses.user_id, f.set_user_id = ses.user_id != NULL;
    f.access_expires_at = ses.access_expires_at, f.set_access_expires_at = true;
    struct account a;
    st = accounts_create(ctx->db, &f, &a);
    platform_session_free(&ses);
    site_clear(&s);
    if (st != STORE_OK) {
        set_msg(r, JOB_FAILED, "cannot store the account: %s", store_status_str(st));
        return;
    }
    *account_id = a.id;
    account_clear(&a);
    ctx->routing_dirty = true;
    /* First refresh: balance, tokens (one created when there is none), models. */
    struct job_result sub;
    job_balance(ctx, *account_id, &sub);
    r->balance = sub.balance;
    struct acct_env e;
    result_init(&sub);
    if (env_load(ctx, *account_id, &e, &sub)) do_sync(ctx, &e, true, &sub);
    env_free(&e);
    r->count = sub.count;
    r->pending = sub.pending;
    job_models(ctx, *account_id, &sub);
    set_msg(r, JOB_OK, "logged in as %s", username);
    event(ctx, "status", "info", *account_id, "Account added", "account %lld logged in as %s",
          (long long)*account_id, username);
}
