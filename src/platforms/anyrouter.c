/* anyrouter.c — AnyRouter (anyrouter.top) and other New API sites behind Aliyun's WAF.
 * Management is New API's; the differences: every call may meet the acw_sc__v2
 * challenge (solved natively in http.c/acw.c, the request retried with the cookie),
 * browser-like headers (User-Agent, Origin, Referer, X-Requested-With), and check-in at
 * POST /api/user/sign_in whose answer carries no reward: the reward is the difference of
 * (quota + used_quota) before and after, and a success that changed nothing means it was
 * already done today (upstream-platforms.md §2.3 and addendum 10). Sites of this kind that
 * run a recent New API without sign_in fall back to POST /api/user/checkin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/common.h"

static const struct lineage_flavor ANYROUTER = {
    .name = "AnyRouter",
    .user_headers = true,
    .browser = true,
    .tokens = LT_NEW_API,
    .limits = LL_NEW_API,
    .pricing = LP_NEW_API,
    .groups = LG_NEW_API,
    .user_models_path = "/api/user/models",
};

/* quota + used_quota: what the account was ever granted (check-in adds to it). */
static int granted(struct pf_ctx *x, double *out)
{
    json_t *root, *self;
    if (lineage_self(x, &root, &self) != 0) return -1;
    double q = 0, u = 0;
    bool ok = pf_jnum(self, "quota", &q);
    pf_jnum(self, "used_quota", &u);
    json_decref(root);
    if (!ok)
        return pf_fail(x->err, PLATFORM_ERR_BAD_RESPONSE, x->last_status,
                       "GET /api/user/self: no quota in the answer");
    *out = q + u;
    return 0;
}

static int anyrouter_checkin(struct pf_ctx *x, struct platform_checkin *out)
{
    double qpu, before, after;
    if (pf_quota_per_unit(x, &qpu) != 0 || granted(x, &before) != 0) return -1;
    json_t *root, *data;
    json_t *body = json_object();
    int rc = pf_call(x, "POST", "/api/user/sign_in", body, &root, &data);
    json_decref(body);
    if (rc != 0) {
        if (x->err->kind == PLATFORM_ERR_ALREADY_DONE) {
            out->already_done = true;
            out->reward = 0;
            out->message = strdup(x->site_msg[0] ? x->site_msg : "already checked in today");
            return 0;
        }
        if (x->err->kind == PLATFORM_ERR_UNSUPPORTED) {
            memset(x->err, 0, sizeof *x->err);
            return new_api_checkin(x, out);
        }
        return -1;
    }
    char site[256];
    snprintf(site, sizeof site, "%s", x->site_msg);
    json_decref(root);
    if (granted(x, &after) != 0) return -1;
    double delta = after - before;
    if (delta > 0) {
        out->reward = pf_quota_to_money(delta, qpu);
        out->message = strdup(site[0] ? site : "checked in");
    } else {
        /* A success that granted nothing: the day's check-in was already done. */
        out->already_done = true;
        out->reward = 0;
        out->message = strdup(site[0] ? site : "already checked in today (no reward granted)");
    }
    return 0;
}

PF_LINEAGE_OPS(ar, ANYROUTER)
PF_LINEAGE_CHECKIN(ar_checkin, ANYROUTER, anyrouter_checkin)

const struct platform platform_anyrouter = {
    .id = "anyrouter",
    .display_name = "AnyRouter",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_MESSAGES,
    .has_management = true,
    .has_checkin = true,
    .login = ar_login,
    .refresh_session = ar_refresh,
    .balance = ar_balance,
    .checkin = ar_checkin,
    .list_tokens = ar_list_tokens,
    .create_token = ar_create_token,
    .delete_token = ar_delete_token,
    .groups = ar_groups,
    .models = ar_models,
};
