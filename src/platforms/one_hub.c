/* one_hub.c — OneHub (MartialBE/one-hub): access token without a user header, token
 * pages ?page=&size= (1-based) → {data,page,size,total_count}, full keys
 * (`<sqids>_<hmac>`), model limits in setting.limits.limit_model_setting, models and
 * prices from /api/available_model (ratios: 1 = $0.002/1K tokens, or per call for
 * type "times"), groups from /api/user_group_map (both read the session cookie only, so
 * a cookie session shows the user's private groups). No check-in. */
#include <string.h>

#include "platforms/common.h"

static const struct lineage_flavor ONE_HUB = {
    .name = "OneHub",
    .tokens = LT_ONE_HUB,
    .limits = LL_ONE_HUB,
    .pricing = LP_ONE_HUB,
    .groups = LG_ONE_HUB,
};

PF_LINEAGE_OPS(oh, ONE_HUB)

const struct platform platform_one_hub = {
    .id = "one-hub",
    .display_name = "OneHub",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_RESPONSES,
    .has_management = true,
    .has_checkin = false,
    .login = oh_login,
    .refresh_session = oh_refresh,
    .balance = oh_balance,
    .checkin = NULL,
    .list_tokens = oh_list_tokens,
    .create_token = oh_create_token,
    .delete_token = oh_delete_token,
    .groups = oh_groups,
    .models = oh_models,
};
