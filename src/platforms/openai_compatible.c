/* openai_compatible.c — any OpenAI-compatible endpoint reached with an API key alone:
 * models from GET /v1/models (Bearer key; a base URL ending in /v1 is used as is). No
 * management API: every other entry is NULL. */
#include <string.h>

#include "platforms/common.h"

static int oc_models(fetch_client_t *f, const struct platform_credentials *c,
                     struct platform_model_list *out, struct platform_error *err)
{
    struct pf_ctx x;
    memset(out, 0, sizeof *out);
    if (pf_ctx_init(&x, f, c, err) != 0) return pf_ctx_end(&x, -1);
    return pf_ctx_end(&x, pf_key_models(&x, false, out));
}

const struct platform platform_openai_compatible = {
    .id = "openai",
    .display_name = "OpenAI-compatible",
    .default_formats = PLATFORM_FORMAT_CHAT,
    .has_management = false,
    .has_checkin = false,
    .models = oc_models,
};
