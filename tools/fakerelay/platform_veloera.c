/* platform_veloera.c — Veloera: an early-2025 fork of New API.
 *
 * Differences from New API (handlers shared with platform_new_api.c, which switches on
 * the kind): the user header is `Veloera-User`; /api/status carries `check_in_enabled`;
 * /api/user/self is the whole user row (access_token, last_check_in_time); the login
 * answer is a zero-valued user row; tokens are paged 0-based as a plain array with full
 * keys (no /api/token/{id}/key); /api/pricing has the old shape; /v1/models answers
 * {"success":true,"data":[…]}; relay errors have type veloera_error. Check-in is
 * GET /api/user/check_in_status + POST /api/user/check_in with the reward in data.quota
 * and "你今天已经签到过了" the same (UTC) day. */
#include <stdio.h>
#include <string.h>

#include "platform.h"

static void status(struct pf_req *r)
{
    struct pf_state *st = r->st;
    pf_ok(r, "",
          json_pack("{s:s, s:s, s:I, s:f, s:b, s:b, s:s, s:b, s:s, s:b}", "version", "v0.3.1",
                    "system_name", "Veloera", "start_time", (json_int_t)1741000000,
                    "quota_per_unit", st->o.quota_per_unit, "display_in_currency", 1,
                    "turnstile_check", st->turnstile, "turnstile_site_key",
                    st->turnstile ? "1x00000000000000000000AA" : "", "check_in_enabled",
                    st->checkin_enabled, "footer_html", "", "github_oauth", 0));
}

static void check_in_status(struct pf_req *r)
{
    char today[11];
    pf_today(r->st, true, today);
    bool done = pf_checkin_find(r->st, r->user->id, today) != NULL;
    pf_ok(r, "", json_pack("{s:b}", "can_check_in", r->st->checkin_enabled && !done));
}

static void check_in(struct pf_req *r)
{
    struct pf_state *st = r->st;
    if (!st->checkin_enabled) {
        pf_fail(r, 200, "签到功能未启用");
        return;
    }
    char today[11];
    pf_today(st, true, today); /* Veloera's day is the UTC calendar day */
    if (pf_checkin_find(st, r->user->id, today)) {
        pf_fail(r, 200, "你今天已经签到过了");
        return;
    }
    long long q = st->o.checkin_reward;
    if (!pf_checkin_add(st, r->user, today, q)) {
        pf_fail(r, 500, "out of memory");
        return;
    }
    pf_ok(r, "签到成功", json_pack("{s:I}", "quota", (json_int_t)q));
}

static void relay_error(struct pf_req *r, int kind, const char *detail)
{
    pf_lineage_relay_error(r, kind, detail, "veloera_error", 403);
}

static void not_found(struct pf_req *r)
{
    pf_invalid_url(r);
}

static const struct pf_route routes[] = {
    {"GET", "/api/status", status, 0},
    {"GET", "/api/notice", pf_na_notice, 0},
    {"GET", "/api/user/groups", pf_na_groups, 0},
    {"POST", "/api/user/login", pf_na_login, PF_JSON_BODY},
    {"GET", "/api/user/logout", pf_na_logout, 0},
    {"GET", "/api/user/token", pf_na_access_token, PF_AUTH},
    {"GET", "/api/user/self", pf_na_self, PF_AUTH},
    {"GET", "/api/user/self/groups", pf_na_self_groups, PF_AUTH},
    {"GET", "/api/user/models", pf_na_user_models, PF_AUTH},
    {"GET", "/api/user/check_in_status", check_in_status, PF_AUTH},
    {"POST", "/api/user/check_in", check_in, PF_AUTH},
    {"GET", "/api/token/", pf_na_token_list, PF_AUTH},
    {"POST", "/api/token/", pf_na_token_create, PF_AUTH | PF_JSON_BODY},
    {"PUT", "/api/token/", pf_na_token_update, PF_AUTH | PF_JSON_BODY},
    {"GET", "/api/token/#", pf_na_token_get, PF_AUTH},
    {"DELETE", "/api/token/#", pf_na_token_delete, PF_AUTH},
    {"GET", "/api/pricing", pf_na_pricing, PF_TRY_AUTH},
    {"GET", "/api/log/self", pf_na_log_self, PF_AUTH},
    {"GET", "/api/log/self/stat", pf_na_log_stat, PF_AUTH},
};

const struct pf_platform pf_veloera = {
    .kind = PF_VELOERA,
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .trailing_slash_redirect = true,
    .auth = pf_na_auth,
    .relay_error = relay_error,
    .relay_models = pf_na_relay_models,
    .relay_extra = NULL,
    .not_found = not_found,
};
