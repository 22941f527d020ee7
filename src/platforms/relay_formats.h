/* relay_formats.h — which API formats each platform's relay speaks by default, and the
 * path of each format's endpoint on that platform (OneHub and DoneHub serve Claude
 * Messages under /claude/v1/messages). The defaults are each adapter's default_formats
 * (platform.h); the paths follow the upstream-platforms reference (§8, relay rows). */
#ifndef METARELAY_PLATFORMS_RELAY_FORMATS_H
#define METARELAY_PLATFORMS_RELAY_FORMATS_H

#include "protocol/ir.h"

/* API_FORMAT_BITs the platform's relay speaks when the site does not say (chat for an
 * unknown platform id). */
unsigned relay_formats_default(const char *platform);
/* The request path of `format` on the platform's relay ("/v1/chat/completions", …). */
const char *relay_format_path(const char *platform, enum api_format format);

#endif
