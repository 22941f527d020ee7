/* jobs.h — the control plane's jobs for one account: login, balance refresh, check-in,
 * token sync, model and price discovery. Each job blocks (site adapters of
 * platforms/platform.h over the caller's fetch client) and runs on a control thread or
 * an admin thread with that thread's database connection.
 *
 * Sessions: a job whose call fails with an authentication error re-logs in once with the
 * stored username + password (+ TOTP secret), stores the new session and retries; when
 * that is impossible or fails, the account becomes 'expired' with the reason, and an
 * event says what to do (a captcha-protected site: paste a session cookie). Every
 * outcome a user should know about is an event; nothing fails silently. */
#ifndef METARELAY_CONTROL_JOBS_H
#define METARELAY_CONTROL_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/tz.h"
#include "net/fetch.h"
#include "platforms/platform.h"
#include "store/store.h"

struct job_ctx {
    db_t *db;
    fetch_client_t *fetch;
    const tz_t *tz;     /* local days of check-ins; NULL = UTC */
    bool routing_dirty; /* set by jobs that changed channels, models or tokens */
};

enum job_status { JOB_OK = 0, JOB_SKIPPED, JOB_FAILED };

struct job_result {
    enum job_status status;
    enum platform_error_kind kind; /* of a failure */
    char message[512];
    double reward;  /* check-in: money unit, < 0 unknown */
    double balance; /* balance: after the job, < 0 unknown */
    size_t count;   /* tokens synced / models found */
    size_t pending; /* tokens left masked */
};

/* Refreshes the account's balance (stored with history). */
void job_balance(struct job_ctx *ctx, int64_t account_id, struct job_result *r);
/* Checks in. `scheduled`: skip without asking the site when a success is already logged
 * for today (local day in ctx->tz); a manual run asks the site, which says when it was
 * already done (logged as skipped). */
void job_checkin(struct job_ctx *ctx, int64_t account_id, bool scheduled, struct job_result *r);
/* Pulls the account's tokens from the site (all pages, full keys where possible). */
void job_sync_tokens(struct job_ctx *ctx, int64_t account_id, struct job_result *r);
/* Discovers models (per usable token, else with the account's API key) and prices. */
void job_models(struct job_ctx *ctx, int64_t account_id, struct job_result *r);

/* Logs in with a password on site `site_id` and creates the account (credential mode
 * 'session', password and TOTP secret stored for re-login), then refreshes its balance,
 * syncs its tokens (creating one when the site has none) and discovers models.
 * *account_id receives the new id (0 when none was created). */
void job_login_create(struct job_ctx *ctx, int64_t site_id, const char *username,
                      const char *password, const char *totp_secret, int64_t *account_id,
                      struct job_result *r);

/* The outcome of a check-in answer (pure; unit-tested): `res`/`err` from the adapter
 * (rc = its return), balances before and after (< 0 unknown). Fills status, reward and
 * message. A success without a reward and without a balance change is "already done"
 * (AnyRouter answers a second sign-in the same day that way). */
void job_checkin_outcome(int rc, const struct platform_checkin *res,
                         const struct platform_error *err, double before, double after,
                         struct job_result *r);

/* "YYYY-MM-DD" of `t` (unix seconds) in zone z (NULL = UTC). */
void job_local_day(const tz_t *z, int64_t t, char out[16]);

#endif
