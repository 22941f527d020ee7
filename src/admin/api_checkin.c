/* api_checkin.c — /api/checkin: trigger every account (in the control pool; "wait" waits
 * for the results) or one (right away on this admin thread), the check-in logs, and the
 * schedule (PUT {mode: "cron", cron} or {mode: "interval", intervalHours: 1–24}, stored in
 * settings and applied at once; refused while CHECKIN_CRON pins it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "base/cron.h"
#include "control/control.h"
#include "control/jobs.h"
#include "store/accounts.h"
#include "store/events.h"
#include "store/settings.h"

#define WAIT_MAX_MS 120000

static const char *status_name(enum job_status s)
{
    return s == JOB_OK ? "success" : s == JOB_SKIPPED ? "skipped" : "failed";
}

static void trigger_one(const struct admin_ctx *ctx, int64_t id, struct admin_response *resp)
{
    struct account a;
    enum store_status st = accounts_get(ctx->db, id, &a);
    account_clear(&a);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "account");
        return;
    }
    struct job_ctx jc;
    admin_job_ctx(ctx, &jc);
    struct job_result r;
    job_checkin(&jc, id, false, &r);
    admin_job_done(ctx, &jc);
    admin_reply(resp, 200,
                json_pack("{s:b, s:s, s:s, s:o, s:o}", "success", r.status != JOB_FAILED, "status",
                          status_name(r.status), "message", r.message, "reward",
                          r.reward >= 0 ? json_real(r.reward) : json_null(), "balance",
                          r.balance >= 0 ? json_real(r.balance) : json_null()));
}

static void trigger_all(const struct admin_ctx *ctx, const struct admin_request *req,
                        struct admin_response *resp)
{
    (void)ctx;
    json_t *body = req->body.n ? json_loadb(req->body.p, req->body.n, 0, NULL) : NULL;
    bool wait = admin_wants_wait(req, body);
    json_decref(body);
    struct control_batch *b = control_submit(CONTROL_JOB_CHECKIN, 0, false);
    if (!b) {
        admin_fail(resp, 503, "the control plane is not running");
        return;
    }
    unsigned ok = 0, sk = 0, fa = 0;
    bool done = wait && control_batch_wait(b, WAIT_MAX_MS, &ok, &sk, &fa);
    json_t *j = json_pack("{s:b, s:s, s:b}", "success", 1, "message",
                          "check-in of every account started", "done", done);
    if (wait)
        json_object_update_new(j, json_pack("{s:I, s:I, s:I, s:I}", "total",
                                            (json_int_t)control_batch_size(b), "ok", (json_int_t)ok,
                                            "skipped", (json_int_t)sk, "failed", (json_int_t)fa));
    control_batch_release(b);
    admin_reply(resp, wait ? 200 : 202, j);
}

static void logs(const struct admin_ctx *ctx, const struct admin_request *req,
                 struct admin_response *resp)
{
    char buf[32];
    unsigned long long limit = 50, offset = 0, acc = 0;
    if ((admin_query_get(req->query, "limit", buf, sizeof buf) == 1 &&
         (!slice_to_u64(slice_from(buf), &limit) || limit == 0 || limit > 500)) ||
        (admin_query_get(req->query, "offset", buf, sizeof buf) == 1 &&
         (!slice_to_u64(slice_from(buf), &offset) || offset > 100000000)) ||
        (admin_query_get(req->query, "accountId", buf, sizeof buf) == 1 &&
         !slice_to_u64(slice_from(buf), &acc))) {
        admin_fail(resp, 400, "limit must be 1-500; offset and accountId numbers");
        return;
    }
    struct checkin_log *l;
    size_t n;
    int64_t total;
    enum store_status st =
        checkin_logs_list(ctx->db, (int64_t)acc, (int)limit, (int)offset, &l, &n, &total);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "check-in logs");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)l[i].id,
                           "accountId", (json_int_t)l[i].account_id, "status",
                           admin_jstr(l[i].status), "message", admin_jstr(l[i].message), "reward",
                           l[i].reward >= 0 ? json_real(l[i].reward) : json_null(), "day",
                           admin_jstr(l[i].checkin_day), "createdAt", admin_jstr(l[i].created_at)));
    checkin_logs_free(l, n);
    admin_reply(resp, 200, json_pack("{s:o, s:I}", "items", arr, "total", (json_int_t)total));
}

static void schedule(const struct admin_ctx *ctx, const struct admin_request *req,
                     struct admin_response *resp)
{
    char cur[128];
    if (strcmp(req->method, "GET") == 0) {
        control_get_cron("checkin", cur, sizeof cur);
        admin_reply(resp, 200,
                    json_pack("{s:s, s:s, s:b}", "mode", "cron", "cron", cur, "pinned",
                              control_cron_pinned("checkin")));
        return;
    }
    json_t *body = admin_body_object(req, resp);
    if (!body) return;
    const char *mode = json_string_value(json_object_get(body, "mode"));
    char expr[128];
    if (!mode || strcmp(mode, "cron") == 0) {
        const char *c = json_string_value(json_object_get(body, "cron"));
        if (!c || strlen(c) >= sizeof expr) {
            admin_fail(resp, 400, "cron must be a 5-field cron expression");
            goto out;
        }
        snprintf(expr, sizeof expr, "%s", c);
    } else if (strcmp(mode, "interval") == 0) {
        json_t *h = json_object_get(body, "intervalHours");
        if (!json_is_integer(h) || json_integer_value(h) < 1 || json_integer_value(h) > 24) {
            admin_fail(resp, 400, "intervalHours must be a whole number from 1 to 24");
            goto out;
        }
        /* Every N hours from midnight (local). */
        snprintf(expr, sizeof expr, "0 */%d * * *", (int)json_integer_value(h));
    } else {
        admin_fail(resp, 400, "mode must be \"cron\" or \"interval\"");
        goto out;
    }
    if (control_cron_pinned("checkin")) {
        admin_fail(resp, 409,
                   "CHECKIN_CRON is set in the environment and wins over the "
                   "stored schedule: change it there");
        goto out;
    }
    char err[200];
    struct cron_expr ce;
    char perr[160];
    if (cron_parse(expr, &ce, perr) != 0) {
        admin_fail(resp, 400, "invalid cron expression: %s", perr);
        goto out;
    }
    if (control_running()) {
        if (control_set_cron("checkin", expr, err) != 0) {
            admin_fail(resp, 400, "%s", err);
            goto out;
        }
    }
    json_t *js = json_string(expr);
    char *text = json_dumps(js, JSON_ENCODE_ANY);
    json_decref(js);
    enum store_status st = text ? settings_set(ctx->db, "checkin_cron", text) : STORE_ERROR;
    free(text);
    if (st != STORE_OK) {
        admin_fail_store(resp, st, "schedule");
        goto out;
    }
    admin_reply(resp, 200,
                json_pack("{s:b, s:s, s:s}", "success", 1, "mode", "cron", "cron", expr));
out:
    json_decref(body);
}

void admin_checkin(const struct admin_ctx *ctx, const struct admin_request *req, const char *what,
                   int64_t id, struct admin_response *resp)
{
    if (strcmp(what, "trigger") == 0) {
        if (id)
            trigger_one(ctx, id, resp);
        else
            trigger_all(ctx, req, resp);
    } else if (strcmp(what, "logs") == 0) {
        logs(ctx, req, resp);
    } else {
        schedule(ctx, req, resp);
    }
}
