/* one_api.c — One API (songquanpeng/one-api): cookie or access-token auth without a user
 * header, token pages 0-based with a fixed page size (10; the size parameter is ignored,
 * so every page is read), full keys in lists, a new token's key in the create answer,
 * model limits in `models`, the account's models at /api/user/available_models. No
 * check-in, no user-facing prices or groups. Balance is quota / quota_per_unit (quota is
 * already the remainder). */
#include <string.h>

#include "platforms/common.h"

static const struct lineage_flavor ONE_API = {
    .name = "One API",
    .tokens = LT_ONE_API,
    .limits = LL_ONE_API,
    .pricing = LP_NONE,
    .groups = LG_NONE,
    .create_returns_key = true,
    .user_models_path = "/api/user/available_models",
};

PF_LINEAGE_OPS(oa, ONE_API)

const struct platform platform_one_api = {
    .id = "one-api",
    .display_name = "One API",
    .default_formats = PLATFORM_FORMAT_CHAT,
    .has_management = true,
    .has_checkin = false,
    .login = oa_login,
    .refresh_session = oa_refresh,
    .balance = oa_balance,
    .checkin = NULL, /* none: callers report PLATFORM_ERR_UNSUPPORTED */
    .list_tokens = oa_list_tokens,
    .create_token = oa_create_token,
    .delete_token = oa_delete_token,
    .groups = NULL,
    .models = oa_models,
};
