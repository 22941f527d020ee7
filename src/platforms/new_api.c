/* new_api.c — New API (QuantumNous/new-api, formerly Calcium-Ion/new-api): both auth
 * generations (session cookie + New-Api-User; later Bearer access tokens with a refresh
 * cookie), TOTP 2FA, masked keys recovered through POST /api/token/{id}/key, 1-based
 * token pages, check-in with its reward in data.quota_awarded, /api/pricing. The shared
 * lineage code does the work; this file holds what is New API's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platforms/common.h"

static const struct lineage_flavor NEW_API = {
    .name = "New API",
    .user_headers = true,
    .tokens = LT_NEW_API,
    .limits = LL_NEW_API,
    .pricing = LP_NEW_API,
    .groups = LG_NEW_API,
    .user_models_path = "/api/user/models",
};

static int already(struct platform_checkin *out, const char *site_msg)
{
    out->already_done = true;
    out->reward = 0;
    out->message = strdup(site_msg && *site_msg ? site_msg : "already checked in today");
    return 0;
}

int new_api_checkin(struct pf_ctx *x, struct platform_checkin *out)
{
    double qpu;
    if (pf_quota_per_unit(x, &qpu) != 0) return -1;
    json_t *root, *data;
    if (pf_call(x, "POST", "/api/user/checkin", NULL, &root, &data) == 0) {
        double q;
        /* The reward is data.quota_awarded in quota units (not data.reward). */
        out->reward = pf_jnum(data, "quota_awarded", &q) ? pf_quota_to_money(q, qpu) : -1;
        out->message = strdup(x->site_msg[0] ? x->site_msg : "checked in");
        json_decref(root);
        return 0;
    }
    char site[256];
    snprintf(site, sizeof site, "%s", x->site_msg);
    switch (x->err->kind) {
    case PLATFORM_ERR_ALREADY_DONE:
        return already(out, site);
    case PLATFORM_ERR_UNSUPPORTED:
        return pf_fail(
            x->err, PLATFORM_ERR_UNSUPPORTED, x->err->http_status,
            "this site's build has no daily check-in (POST /api/user/checkin not found)");
    case PLATFORM_ERR_UPSTREAM:
        break;
    default:
        return -1;
    }
    if (pf_msg_checkin_disabled(site))
        return pf_fail(x->err, PLATFORM_ERR_UNSUPPORTED, x->err->http_status,
                       "check-in is disabled on this site (%s)", site);
    /* An unknown failure wording: the status route says whether today is done. */
    struct platform_error saved = *x->err;
    char path[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(path, sizeof path, "/api/user/checkin?month=%04d-%02d", tm.tm_year + 1900,
             tm.tm_mon + 1);
    if (pf_call(x, "GET", path, NULL, &root, &data) == 0) {
        bool done = pf_jbool(json_object_get(data, "stats"), "checked_in_today");
        json_decref(root);
        if (done) return already(out, site);
    }
    *x->err = saved;
    return -1;
}

PF_LINEAGE_OPS(na, NEW_API)
PF_LINEAGE_CHECKIN(na_checkin, NEW_API, new_api_checkin)

const struct platform platform_new_api = {
    .id = "new-api",
    .display_name = "New API",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_MESSAGES | PLATFORM_FORMAT_RESPONSES,
    .has_management = true,
    .has_checkin = true,
    .login = na_login,
    .refresh_session = na_refresh,
    .balance = na_balance,
    .checkin = na_checkin,
    .list_tokens = na_list_tokens,
    .create_token = na_create_token,
    .delete_token = na_delete_token,
    .groups = na_groups,
    .models = na_models,
};
