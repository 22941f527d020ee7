/* done_hub.c — DoneHub (deanxv/done-hub), a OneHub fork with the same management API
 * (token pages, keys, /api/available_model, /api/user_group_map, 402 on quota). It is
 * told apart by its /api/status fields (GeminiAPIEnabled, max_log_query_days). No
 * check-in. */
#include <string.h>

#include "platforms/common.h"

static const struct lineage_flavor DONE_HUB = {
    .name = "DoneHub",
    .tokens = LT_ONE_HUB,
    .limits = LL_ONE_HUB,
    .pricing = LP_ONE_HUB,
    .groups = LG_ONE_HUB,
};

PF_LINEAGE_OPS(dh, DONE_HUB)

const struct platform platform_done_hub = {
    .id = "done-hub",
    .display_name = "DoneHub",
    .default_formats = PLATFORM_FORMAT_CHAT | PLATFORM_FORMAT_RESPONSES,
    .has_management = true,
    .has_checkin = false,
    .login = dh_login,
    .refresh_session = dh_refresh,
    .balance = dh_balance,
    .checkin = NULL,
    .list_tokens = dh_list_tokens,
    .create_token = dh_create_token,
    .delete_token = dh_delete_token,
    .groups = dh_groups,
    .models = dh_models,
};
