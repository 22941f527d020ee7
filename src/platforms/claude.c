/* claude.c — the Anthropic API (or a Claude-native endpoint) reached with an API key:
 * models from GET /v1/models with x-api-key and anthropic-version, following has_more /
 * last_id pages. No management API: every other entry is NULL. */
#include <string.h>

#include "platforms/common.h"

static int cl_models(fetch_client_t *f, const struct platform_credentials *c,
                     struct platform_model_list *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (pf_ctx_init(&x, f, c, err) != 0) return pf_ctx_end(&x, -1);
    return pf_ctx_end(&x, pf_key_models(&x, true, out));
}

const struct platform platform_claude = {
    .id = "claude",
    .display_name = "Claude (Anthropic)",
    .default_formats = PLATFORM_FORMAT_MESSAGES,
    .has_management = false,
    .has_checkin = false,
    .models = cl_models,
};
