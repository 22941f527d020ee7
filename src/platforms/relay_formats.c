/* relay_formats.c — default relay formats and endpoint paths per platform (see
 * relay_formats.h). */
#include "platforms/relay_formats.h"

#include <string.h>

#define CHAT      API_FORMAT_BIT(API_CHAT)
#define MESSAGES  API_FORMAT_BIT(API_MESSAGES)
#define RESPONSES API_FORMAT_BIT(API_RESPONSES)

static const struct {
    const char *platform;
    unsigned formats;
} defaults[] = {
    {"openai", CHAT},
    {"claude", MESSAGES},
    {"new-api", CHAT | MESSAGES | RESPONSES},
    {"anyrouter", CHAT | MESSAGES},
    {"one-api", CHAT},
    {"one-hub", CHAT | MESSAGES | RESPONSES},
    {"done-hub", CHAT | MESSAGES | RESPONSES},
    {"veloera", CHAT | MESSAGES | RESPONSES},
    {"sub2api", CHAT | MESSAGES | RESPONSES},
};

unsigned relay_formats_default(const char *platform)
{
    for (size_t i = 0; platform && i < sizeof defaults / sizeof defaults[0]; i++)
        if (strcmp(defaults[i].platform, platform) == 0) return defaults[i].formats;
    return CHAT;
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
