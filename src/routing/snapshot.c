/* snapshot.c — building, looking up, reference counting and retiring routing snapshots
 * (see snapshot.h). */
#include "routing/snapshot.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

static _Atomic(struct routing_snapshot *) retired;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int route_cmp(const void *a, const void *b)
{
    return strcmp(((const struct route *)a)->model, ((const struct route *)b)->model);
}

struct model_pair {
    const char *model;
    uint32_t channel;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct model_pair *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    return c ? c : (x->channel > y->channel) - (x->channel < y->channel);
}

static int parse_headers(struct channel *c, const char *json)
{
    if (!json || !*json) return 0;
    json_error_t err;
    json_t *obj = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!obj || !json_is_object(obj)) {
        log_warn("site %lld: custom headers are not a JSON object; ignored", (long long)c->site_id);
        json_decref(obj);
        return 0;
    }
    c->headers = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof *c->headers);
    if (!c->headers) {
        json_decref(obj);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!json_is_string(v)) continue;
        struct route_header *h = &c->headers[c->n_headers];
        h->name = strdup(k);
        h->value = strdup(json_string_value(v));
        if (!h->name || !h->value) {
            free(h->name);
            free(h->value);
            json_decref(obj);
            return -1;
        }
        c->n_headers++;
    }
    json_decref(obj);
    return 0;
}

struct routing_snapshot *snapshot_build(const struct snapshot_input *in, size_t n, uint64_t version)
{
    struct routing_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->version = version;
    s->channels = calloc(n ? n : 1, sizeof *s->channels);
    size_t total_models = 0;
    for (size_t i = 0; i < n; i++) total_models += in[i].n_models;
    s->routes = calloc(total_models ? total_models : 1, sizeof *s->routes);
    if (!s->channels || !s->routes) goto fail;

    for (size_t i = 0; i < n; i++) {
        struct channel *c = &s->channels[s->n_channels++];
        c->account_id = in[i].account_id;
        c->site_id = in[i].site_id;
        c->site_name = strdup(in[i].site_name ? in[i].site_name : "");
        c->platform = strdup(in[i].platform ? in[i].platform : "openai");
        c->base_url = strdup(in[i].base_url ? in[i].base_url : "");
        c->proxy_url = dup_or_null(in[i].proxy_url);
        c->api_key = strdup(in[i].api_key ? in[i].api_key : "");
        c->health = health_for_account(in[i].account_id);
        c->formats = in[i].formats ? in[i].formats : 1u;
        static const char *const default_paths[3] = {"/v1/chat/completions", "/v1/messages",
                                                     "/v1/responses"};
        for (int f = 0; f < 3; f++) {
            c->format_paths[f] =
                strdup(in[i].format_paths[f] ? in[i].format_paths[f] : default_paths[f]);
            if (!c->format_paths[f]) goto fail;
        }
        if (!c->site_name || !c->platform || !c->base_url || !c->api_key || !c->health) goto fail;
        size_t len = strlen(c->base_url);
        while (len && c->base_url[len - 1] == '/') c->base_url[--len] = '\0';
        if (parse_headers(c, in[i].custom_headers_json) != 0) goto fail;
    }

    /* One route per distinct model: gather (model, channel) pairs, sort, group. */
    struct model_pair *pairs = calloc(total_models ? total_models : 1, sizeof *pairs);
    if (!pairs) goto fail;
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < in[i].n_models; m++)
            pairs[np++] = (struct model_pair){in[i].models[m], (uint32_t)i};
    qsort(pairs, np, sizeof *pairs, pair_cmp);
    for (size_t i = 0; i < np;) {
        size_t j = i;
        while (j < np && strcmp(pairs[j].model, pairs[i].model) == 0) j++;
        struct route *r = &s->routes[s->n_routes++];
        r->model = strdup(pairs[i].model);
        r->channels = calloc(j - i, sizeof *r->channels);
        if (!r->model || !r->channels) {
            free(pairs);
            goto fail;
        }
        for (size_t k = i; k < j; k++)
            if (r->n_channels == 0 || r->channels[r->n_channels - 1] != pairs[k].channel)
                r->channels[r->n_channels++] = pairs[k].channel;
        i = j;
    }
    free(pairs);
    qsort(s->routes, s->n_routes, sizeof *s->routes, route_cmp);
    return s;
fail:
    snapshot_free(s);
    return NULL;
}

void snapshot_free(struct routing_snapshot *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_channels; i++) {
        struct channel *c = &s->channels[i];
        free(c->site_name);
        free(c->platform);
        free(c->base_url);
        free(c->proxy_url);
        for (int f = 0; f < 3; f++) free(c->format_paths[f]);
        if (c->api_key) memset(c->api_key, 0, strlen(c->api_key));
        free(c->api_key);
        for (size_t h = 0; h < c->n_headers; h++) {
            free(c->headers[h].name);
            free(c->headers[h].value);
        }
        free(c->headers);
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].model);
        free(s->routes[i].channels);
    }
    free(s->channels);
    free(s->routes);
    free(s);
}

const struct route *snapshot_find(const struct routing_snapshot *s, struct slice model)
{
    size_t lo = 0, hi = s->n_routes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *m = s->routes[mid].model;
        size_t ml = strlen(m);
        size_t common = ml < model.n ? ml : model.n;
        int c = memcmp(m, model.p, common);
        if (c == 0) c = (ml > model.n) - (ml < model.n);
        if (c == 0) return &s->routes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void snapshot_ref(struct routing_snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void snapshot_release(struct routing_snapshot *s)
{
    if (!s) return;
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    struct routing_snapshot *head = atomic_load(&retired);
    do s->retired_next = head;
    while (!atomic_compare_exchange_weak(&retired, &head, s));
}

size_t snapshot_free_retired(void)
{
    struct routing_snapshot *s = atomic_exchange(&retired, NULL);
    size_t n = 0;
    while (s) {
        struct routing_snapshot *next = s->retired_next;
        snapshot_free(s);
        s = next;
        n++;
    }
    return n;
}

size_t routing_order_candidates(const struct routing_snapshot *s, const struct route *r,
                                uint32_t *out, size_t max)
{
    size_t n = r->n_channels;
    if (n == 0 || max == 0) return 0;
    uint64_t now = clock_mono_ns();
    unsigned start = atomic_fetch_add(&((struct route *)r)->cursor, 1);
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        uint32_t idx = r->channels[(start + i) % n];
        if (!health_is_cooling(s->channels[idx].health, now)) out[k++] = idx;
    }
    /* Cooling channels last, soonest recovery first: a best effort when all are cooling. */
    size_t first_cooling = k;
    for (size_t i = 0; i < n && k < max; i++) {
        uint32_t idx = r->channels[(start + i) % n];
        if (!health_is_cooling(s->channels[idx].health, now)) continue;
        size_t pos = k++;
        uint64_t until = atomic_load(&s->channels[idx].health->cooldown_until_ns);
        while (pos > first_cooling &&
               atomic_load(&s->channels[out[pos - 1]].health->cooldown_until_ns) > until) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos] = idx;
    }
    return k;
}
