/* veloera.c — Veloera (an early-2025 New API fork): the user id travels in Veloera-User
 * (sent with New API's aliases), token lists are plain arrays with full keys, prices from
 * the old /api/pricing shape, and its own check-in: GET /api/user/check_in_status
 * (can_check_in) then POST /api/user/check_in with the reward in data.quota, in the site's
 * quota unit read from /api/status (500000 by default, not 1000000), on UTC days. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/common.h"

static const struct lineage_flavor VELOERA = {
    .name = "Veloera",
    .user_headers = true,
    .tokens = LT_NEW_API,
    .limits = LL_NEW_API,
    .pricing = LP_NEW_API,
    .groups = LG_NEW_API,
    .user_models_path = "/api/user/models",
};

static int veloera_checkin(struct pf_ctx *x, struct platform_checkin *out)
{
    double qpu;
    if (pf_quota_per_unit(x, &qpu) != 0) return -1;
    json_t *root, *data;
    /* Ask first: a second POST the same day is not needed to learn it is done. */
    if (pf_call(x, "GET", "/api/user/check_in_status", NULL, &root, &data) == 0) {
        const json_t *can = json_object_get(data, "can_check_in");
        bool done = json_is_boolean(can) && !json_is_true(can);
        json_decref(root);
        if (done) {
            out->already_done = true;
            out->reward = 0;
            out->message = strdup("already checked in today");
            return 0;
        }
    } else if (x->err->kind == PLATFORM_ERR_AUTH || x->err->kind == PLATFORM_ERR_UNREACHABLE ||
               x->err->kind == PLATFORM_ERR_CAPTCHA) {
        return -1;
    }
    memset(x->err, 0, sizeof *x->err);
    if (pf_call(x, "POST", "/api/user/check_in", NULL, &root, &data) == 0) {
        double q;
        out->reward = pf_jnum(data, "quota", &q) ? pf_quota_to_money(q, qpu) : -1;
        out->message = strdup(x->site_msg[0] ? x->site_msg : "checked in");
        json_decref(root);
        return 0;
    }
    if (x->err->kind == PLATFORM_ERR_ALREADY_DONE) {
        out->already_done = true;
        out->reward = 0;
        out->message = strdup(x->site_msg[0] ? x->site_msg : "already checked in today");
        return 0;
    }
    if (x->err->kind == PLATFORM_ERR_UPSTREAM && pf_msg_checkin_disabled(x->site_msg))
        return pf_fail(x->err, PLATFORM_ERR_UNSUPPORTED, x->err->http_status,
                       "check-in is disabled on this site (%s)", x->site_msg);
    if (x->err->kind == PLATFORM_ERR_UNSUPPORTED)
        return pf_fail(x->err, PLATFORM_ERR_UNSUPPORTED, x->err->http_status,
                       "this site's build has no check-in (POST /api/user/check_in not found)");
    return -1;
}

PF_LINEAGE_OPS(vl, VELOERA)
PF_LINEAGE_CHECKIN(vl_checkin, VELOERA, veloera_checkin)

const struct platform platform_veloera = {
    .id = "veloera",
    .display_name = "Veloera",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_MESSAGES | PLATFORM_FORMAT_RESPONSES,
    .has_management = true,
    .has_checkin = true,
    .login = vl_login,
    .refresh_session = vl_refresh,
    .balance = vl_balance,
    .checkin = vl_checkin,
    .list_tokens = vl_list_tokens,
    .create_token = vl_create_token,
    .delete_token = vl_delete_token,
    .groups = vl_groups,
    .models = vl_models,
};
