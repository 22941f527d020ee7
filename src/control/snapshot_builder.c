/* snapshot_builder.c — store rows → routing snapshot input → immutable snapshot: the usable
 * channels with their discovered models (automatic routes), the user routes with their
 * channels and group sources, and the unit-cost inputs: the model prices of each account
 * (model_prices, filled by the control plane's pricing sync), else the manual unit cost,
 * else ROUTING_FALLBACK_UNIT_COST.
 *
 * A price becomes a unit cost in money per 1M tokens, half input and half output (the
 * reference request of docs/routing.md: (input + output) / 2); a per-call price counts as
 * its own unit cost. The manual unitCost of an account is read in the same unit. */
#include "control/snapshot_builder.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "control/routing_state.h"
#include "platforms/relay_formats.h"
#include "store/prices.h"
#include "store/routes.h"

static unsigned formats_of(const struct channel_row *r)
{
    unsigned mask = r->formats ? api_formats_parse(r->formats) : 0;
    return mask ? mask : relay_formats_default(r->platform);
}

/* User routes as builder input (borrowing the rows). NULL on out of memory. */
static struct snapshot_route_input *route_inputs(const struct route_row *rows, size_t n,
                                                 struct snapshot_route_channel_input **chans_out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += rows[i].n_channels;
    struct snapshot_route_input *in = calloc(n ? n : 1, sizeof *in);
    struct snapshot_route_channel_input *ch = calloc(total ? total : 1, sizeof *ch);
    if (!in || !ch) {
        free(in);
        free(ch);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct route_row *r = &rows[i];
        in[i] = (struct snapshot_route_input){
            .id = r->id,
            .pattern = r->model_pattern,
            .display_name = r->display_name,
            .group = strcmp(r->route_mode, "explicit_group") == 0,
            .strategy = r->routing_strategy,
            .enabled = r->enabled,
            .model_mapping_json = r->model_mapping,
            .source_ids = r->source_ids,
            .n_sources = r->n_sources,
            .channels = &ch[k],
            .n_channels = r->n_channels,
        };
        for (size_t c = 0; c < r->n_channels; c++)
            ch[k++] = (struct snapshot_route_channel_input){
                .id = r->channels[c].id,
                .account_id = r->channels[c].account_id,
                .source_model = r->channels[c].source_model,
                .priority = r->channels[c].priority,
                .weight = r->channels[c].weight,
                .enabled = r->channels[c].enabled,
            };
    }
    *chans_out = ch;
    return in;
}

/* Model prices as snapshot price inputs (borrowing the rows); *n_out may be 0. NULL with
 * *n_out = 0 when there are none or on out of memory (prices are then simply unknown). */
static struct snapshot_price *price_inputs(const struct model_price *p, size_t n,
                                           const struct channel_row *rows, size_t n_rows,
                                           size_t *n_out)
{
    *n_out = 0;
    struct snapshot_price *out = n ? calloc(n, sizeof *out) : NULL;
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double in = p[i].input_per_million, outp = p[i].output_per_million;
        double unit;
        if (p[i].per_call > 0)
            unit = p[i].per_call;
        else if (in >= 0 || outp >= 0)
            unit = ((in > 0 ? in : 0) + (outp > 0 ? outp : 0)) / 2;
        else
            continue;
        if (unit <= 0 || !p[i].model) continue;
        int64_t site = 0;
        for (size_t r = 0; r < n_rows && !site; r++)
            if (rows[r].account_id == p[i].account_id) site = rows[r].site_id;
        if (!site) continue; /* an account that is not routable */
        out[k++] = (struct snapshot_price){
            .site_id = site,
            .model = p[i].model,
            .unit_cost = unit,
            .account_id = p[i].account_id,
            .input_per_million = in,
            .output_per_million = outp,
            .per_call = p[i].per_call,
        };
    }
    *n_out = k;
    return out;
}

struct routing_snapshot *snapshot_load(db_t *db, uint64_t version)
{
    struct channel_row *rows = NULL;
    size_t n = 0;
    if (store_load_channels(db, &rows, &n) != 0) {
        log_error("routing: cannot load channels from the store");
        return NULL;
    }
    struct route_row *routes = NULL;
    size_t n_routes = 0;
    if (routes_list(db, &routes, &n_routes) != STORE_OK) {
        log_error("routing: cannot load routes from the store");
        channel_rows_free(rows, n);
        return NULL;
    }
    struct snapshot_input *in = calloc(n ? n : 1, sizeof *in);
    struct snapshot_route_channel_input *rch = NULL;
    struct snapshot_route_input *rin = route_inputs(routes, n_routes, &rch);
    struct routing_snapshot *s = NULL;
    if (!in || !rin) goto out;
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
            .unit_cost = rows[i].unit_cost,
            .balance = rows[i].balance,
            .site_weight = rows[i].site_weight,
        };
    }
    struct model_price *prices = NULL;
    size_t n_prices_rows = 0, n_prices = 0;
    if (model_prices_all(db, &prices, &n_prices_rows) != STORE_OK)
        log_warn("routing: cannot load model prices; unit costs fall back");
    struct snapshot_price *pin = price_inputs(prices, n_prices_rows, rows, n, &n_prices);
    struct snapshot_extra extra = {
        .routes = rin,
        .n_routes = n_routes,
        .prices = pin,
        .n_prices = n_prices,
        .fallback_unit_cost = routing_fallback_unit_cost(),
    };
    s = snapshot_build_ex(in, n, &extra, version);
    free(pin);
    model_prices_free(prices, n_prices_rows);
out:
    free(in);
    free(rin);
    free(rch);
    route_rows_free(routes, n_routes);
    channel_rows_free(rows, n);
    if (!s) log_error("routing: out of memory building the snapshot");
    return s;
}
