/* relay_formats.c — default relay formats (from each adapter) and endpoint paths per
 * platform (see relay_formats.h). */
#include "platforms/relay_formats.h"

#include <string.h>

#include "platforms/platform.h"

unsigned relay_formats_default(const char *platform)
{
    /* PLATFORM_FORMAT_* and API_FORMAT_BIT share their bit values (platform.h). */
    const struct platform *p = platform ? platform_by_id(platform) : NULL;
    return p && p->default_formats ? p->default_formats : API_FORMAT_BIT(API_CHAT);
}

const char *relay_format_path(const char *platform, enum api_format format)
{
    switch (format) {
    case API_MESSAGES:
        if (platform && (strcmp(platform, "one-hub") == 0 || strcmp(platform, "done-hub") == 0))
            return "/claude/v1/messages";
        return "/v1/messages";
    case API_RESPONSES:
        return "/v1/responses";
    case API_COMPLETIONS:
        return "/v1/completions";
    case API_CHAT:
        break;
    }
    return "/v1/chat/completions";
}

_Static_assert(PLATFORM_FORMAT_CHAT == API_FORMAT_BIT(API_CHAT) &&
                   PLATFORM_FORMAT_MESSAGES == API_FORMAT_BIT(API_MESSAGES) &&
                   PLATFORM_FORMAT_RESPONSES == API_FORMAT_BIT(API_RESPONSES),
               "platform format bits and API format bits must agree");
