/* snapshot_builder.c — store rows → routing snapshot input → immutable snapshot. */
#include "control/snapshot_builder.h"

#include <stdlib.h>

#include "base/log.h"
#include "platforms/relay_formats.h"

static unsigned formats_of(const struct channel_row *r)
{
    unsigned mask = r->formats ? api_formats_parse(r->formats) : 0;
    return mask ? mask : relay_formats_default(r->platform);
}

struct routing_snapshot *snapshot_load(db_t *db, uint64_t version)
{
    struct channel_row *rows = NULL;
    size_t n = 0;
    if (store_load_channels(db, &rows, &n) != 0) {
        log_error("routing: cannot load channels from the store");
        return NULL;
    }
    struct snapshot_input *in = calloc(n ? n : 1, sizeof *in);
    if (!in) {
        channel_rows_free(rows, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        in[i] = (struct snapshot_input){
            .account_id = rows[i].account_id,
            .site_id = rows[i].site_id,
            .site_name = rows[i].site_name,
            .platform = rows[i].platform,
            .base_url = rows[i].base_url,
            .proxy_url = rows[i].proxy_url,
            .custom_headers_json = rows[i].custom_headers,
            .formats = formats_of(&rows[i]),
            .format_paths = {relay_format_path(rows[i].platform, API_CHAT),
                             relay_format_path(rows[i].platform, API_MESSAGES),
                             relay_format_path(rows[i].platform, API_RESPONSES)},
            .api_key = rows[i].api_key,
            .models = (const char *const *)rows[i].models,
            .n_models = rows[i].n_models,
        };
    }
    struct routing_snapshot *s = snapshot_build(in, n, version);
    free(in);
    channel_rows_free(rows, n);
    if (!s) log_error("routing: out of memory building the snapshot");
    return s;
}
