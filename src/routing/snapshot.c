/* snapshot.c — building, resolving, reference counting and retiring routing snapshots
 * (see snapshot.h). */
#include "routing/snapshot.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "routing/select.h"

static _Atomic(struct routing_snapshot *) retired;
static atomic_uint_fast64_t build_uid;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* ---------- channels ---------- */

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

static int build_channel(struct channel *c, const struct snapshot_input *in)
{
    static const char *const default_paths[3] = {"/v1/chat/completions", "/v1/messages",
                                                 "/v1/responses"};
    c->account_id = in->account_id;
    c->site_id = in->site_id;
    c->site_name = strdup(in->site_name ? in->site_name : "");
    c->platform = strdup(in->platform ? in->platform : "openai");
    c->base_url = strdup(in->base_url ? in->base_url : "");
    c->proxy_url = dup_or_null(in->proxy_url);
    c->api_key = strdup(in->api_key ? in->api_key : "");
    c->health = health_for_account(in->account_id);
    c->formats = in->formats ? in->formats : 1u;
    c->unit_cost = in->unit_cost > 0 ? in->unit_cost : 0;
    c->balance = in->balance;
    c->site_weight = in->site_weight > 0 ? in->site_weight : 1.0;
    for (int f = 0; f < 3; f++) {
        c->format_paths[f] = strdup(in->format_paths[f] ? in->format_paths[f] : default_paths[f]);
        if (!c->format_paths[f]) return -1;
    }
    if (!c->site_name || !c->platform || !c->base_url || !c->api_key || !c->health) return -1;
    size_t len = strlen(c->base_url);
    while (len && c->base_url[len - 1] == '/') c->base_url[--len] = '\0';
    return parse_headers(c, in->custom_headers_json);
}

/* ---------- build helpers ---------- */

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

struct acct_idx {
    int64_t account_id;
    uint32_t channel;
};

static int acct_cmp(const void *a, const void *b)
{
    const struct acct_idx *x = a, *y = b;
    return (x->account_id > y->account_id) - (x->account_id < y->account_id);
}

static int price_cmp(const void *a, const void *b)
{
    const struct snapshot_price *x = a, *y = b;
    int c = strcmp(x->model ? x->model : "", y->model ? y->model : "");
    return c ? c : (x->site_id > y->site_id) - (x->site_id < y->site_id);
}

struct build {
    struct routing_snapshot *s;
    struct acct_idx *accts;
    struct snapshot_price *prices;
    size_t n_prices;
};

/* The price of `model` for a channel: the account's own, else its site's, else one for any
 * site (entries with no positive unit cost are skipped). NULL when none. */
static const struct snapshot_price *price_of(const struct build *b, int64_t site_id,
                                             int64_t account_id, const char *model)
{
    const struct snapshot_price *acct = NULL, *site = NULL, *any = NULL;
    /* prices are sorted by (model, site): scan the run of this model */
    size_t lo = 0, hi = b->n_prices;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(b->prices[mid].model ? b->prices[mid].model : "", model) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo;
         i < b->n_prices && strcmp(b->prices[i].model ? b->prices[i].model : "", model) == 0; i++) {
        const struct snapshot_price *p = &b->prices[i];
        if (p->unit_cost <= 0) continue;
        if (p->account_id) {
            if (p->account_id == account_id && !acct) acct = p;
        } else if (p->site_id == site_id) {
            if (!site) site = p;
        } else if (p->site_id == 0 && !any) {
            any = p;
        }
    }
    return acct ? acct : site ? site : any;
}

static void resolve_cost(const struct build *b, struct route_channel *rc, const char *model)
{
    const struct channel *c = &b->s->channels[rc->channel];
    const struct snapshot_price *p = model ? price_of(b, c->site_id, c->account_id, model) : NULL;
    rc->price_input = rc->price_output = rc->price_per_call = -1;
    if (p) {
        rc->unit_cost = p->unit_cost, rc->cost_source = COST_PRICE;
        if (p->per_call > 0) {
            rc->price_per_call = p->per_call;
        } else {
            rc->price_input = p->input_per_million > 0 ? p->input_per_million : 0;
            rc->price_output = p->output_per_million > 0 ? p->output_per_million : 0;
            if (p->input_per_million <= 0 && p->output_per_million <= 0)
                rc->price_input = rc->price_output = -1; /* a bare unit cost */
        }
    } else if (c->unit_cost > 0) {
        rc->unit_cost = c->unit_cost, rc->cost_source = COST_MANUAL;
    } else {
        rc->unit_cost = b->s->fallback_unit_cost, rc->cost_source = COST_FALLBACK;
    }
    if (rc->unit_cost < 1e-9) rc->unit_cost = 1e-9;
}

static int find_channel(const struct build *b, int64_t account_id, uint32_t *out)
{
    struct acct_idx key = {account_id, 0};
    const struct acct_idx *hit =
        bsearch(&key, b->accts, b->s->n_channels, sizeof *b->accts, acct_cmp);
    if (!hit) return -1;
    *out = hit->channel;
    return 0;
}

/* Health key of a channel: its upstream model, else the route's name. */
static int init_route_channel(struct build *b, struct route_channel *rc, const char *health_model)
{
    const struct channel *c = &b->s->channels[rc->channel];
    const char *m = rc->upstream_model ? rc->upstream_model : health_model;
    rc->health = health_for_channel(c->site_id, c->account_id, m ? m : "");
    if (!rc->health) return -1;
    resolve_cost(b, rc, m);
    return 0;
}

static int parse_mapping(struct route *r, const char *json)
{
    if (!json || !*json) return 0;
    json_error_t e;
    json_t *obj = json_loads(json, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(obj)) {
        log_warn("route %lld: model mapping is not a JSON object; ignored", (long long)r->id);
        json_decref(obj);
        return 0;
    }
    r->map = calloc(json_object_size(obj) ? json_object_size(obj) : 1, sizeof *r->map);
    if (!r->map) {
        json_decref(obj);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!json_is_string(v) || !*json_string_value(v)) continue;
        struct route_map_entry *me = &r->map[r->n_map];
        char err[200];
        if (pattern_compile(&me->from, k, err, sizeof err) != 0) {
            log_warn("route %lld: model mapping key '%s' ignored: %s", (long long)r->id, k, err);
            continue;
        }
        me->to = strdup(json_string_value(v));
        if (!me->to) {
            pattern_free(&me->from);
            json_decref(obj);
            return -1;
        }
        r->n_map++;
    }
    json_decref(obj);
    return 0;
}

static int copy_channels(struct route *dst, const struct route *src, bool take_model)
{
    if (!src->n_channels) return 0;
    struct route_channel *grown =
        realloc(dst->channels, (dst->n_channels + src->n_channels) * sizeof *grown);
    if (!grown) return -1;
    dst->channels = grown;
    for (size_t i = 0; i < src->n_channels; i++) {
        struct route_channel rc = src->channels[i];
        const char *up = rc.upstream_model;
        if (!up && take_model && (src->kind == ROUTE_AUTO || src->kind == ROUTE_EXACT))
            up = src->model;
        rc.upstream_model = up ? strdup(up) : NULL;
        if (up && !rc.upstream_model) return -1;
        dst->channels[dst->n_channels++] = rc;
    }
    return 0;
}

static const struct route *find_auto(const struct routing_snapshot *s, size_t n_auto,
                                     const char *model)
{
    size_t lo = 0, hi = n_auto; /* automatic routes come first, sorted by model */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->routes[mid].model, model);
        if (c == 0) return &s->routes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int user_route(struct build *b, struct route *r, const struct snapshot_route_input *in,
                      size_t n_auto)
{
    struct routing_snapshot *s = b->s;
    r->id = in->id;
    r->enabled = in->enabled;
    int st = route_strategy_parse(in->strategy);
    r->strategy = st < 0 ? ROUTE_WEIGHTED : (uint8_t)st;
    r->model = strdup(in->pattern ? in->pattern : "");
    r->display_name = dup_or_null(in->display_name);
    if (!r->model || (in->display_name && *in->display_name && !r->display_name)) return -1;
    if (in->group) {
        r->kind = ROUTE_GROUP;
    } else {
        enum pattern_kind pk = pattern_kind_of(r->model);
        r->kind = pk == PATTERN_REGEX ? ROUTE_REGEX : pk == PATTERN_GLOB ? ROUTE_GLOB : ROUTE_EXACT;
        if (r->kind != ROUTE_EXACT) {
            char err[256];
            if (pattern_compile(&r->pat, r->model, err, sizeof err) != 0) {
                r->error = strdup(err);
                if (!r->error) return -1;
                log_warn("route %lld '%s' cannot match: %s", (long long)r->id, r->model, err);
            }
        } else if (!*r->model) {
            r->error = strdup("the route has no model name");
            if (!r->error) return -1;
        }
    }
    if (st < 0 && in->strategy && *in->strategy)
        log_warn("route %lld: unknown routing strategy '%s'; weighted used", (long long)r->id,
                 in->strategy);
    if (parse_mapping(r, in->model_mapping_json) != 0) return -1;
    if (in->group) return 0; /* channels come from the sources, after every route exists */

    r->channels = calloc(in->n_channels ? in->n_channels : 1, sizeof *r->channels);
    if (!r->channels) return -1;
    for (size_t i = 0; i < in->n_channels; i++) {
        const struct snapshot_route_channel_input *ci = &in->channels[i];
        struct route_channel *rc = &r->channels[r->n_channels];
        if (find_channel(b, ci->account_id, &rc->channel) != 0) continue; /* account unusable */
        rc->id = ci->id;
        rc->priority = ci->priority;
        rc->weight = ci->weight;
        rc->enabled = ci->enabled;
        rc->upstream_model = dup_or_null(ci->source_model);
        if (ci->source_model && *ci->source_model && !rc->upstream_model) return -1;
        r->n_channels++;
        if (init_route_channel(b, rc, r->model) != 0) return -1;
    }
    /* An exact user route without channels of its own refines the automatic route of the
     * same model (strategy, alias, mapping) and keeps its channels. */
    if (in->n_channels == 0 && r->kind == ROUTE_EXACT) {
        const struct route *a = find_auto(s, n_auto, r->model);
        if (a && copy_channels(r, a, false) != 0) return -1;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    const struct route_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    if (x->level != y->level) return x->level - y->level;
    return (x->route > y->route) - (x->route < y->route);
}

static const struct routing_snapshot *sort_snap; /* qsort context (control thread only) */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int pattern_order(const void *a, const void *b)
{
    const struct route *x = &sort_snap->routes[*(const uint32_t *)a];
    const struct route *y = &sort_snap->routes[*(const uint32_t *)b];
    if (x->pat.specificity != y->pat.specificity)
        return x->pat.specificity > y->pat.specificity ? -1 : 1;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1; /* glob before regex */
    return (x->id > y->id) - (x->id < y->id);
}

static int index_names(struct routing_snapshot *s)
{
    s->names = calloc(s->n_routes * 2 + 1, sizeof *s->names);
    s->patterns = calloc(s->n_routes + 1, sizeof *s->patterns);
    if (!s->names || !s->patterns) return -1;
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct route *r = &s->routes[i];
        if (!r->enabled || r->error) continue;
        switch (r->kind) {
        case ROUTE_AUTO:
            s->names[s->n_names++] = (struct route_name){r->model, (uint32_t)i, 1, false};
            break;
        case ROUTE_EXACT:
            s->names[s->n_names++] = (struct route_name){r->model, (uint32_t)i, 0, false};
            break;
        case ROUTE_GROUP:
            if (*r->model)
                s->names[s->n_names++] = (struct route_name){r->model, (uint32_t)i, 0, true};
            break;
        default:
            s->patterns[s->n_patterns++] = (uint32_t)i;
            break;
        }
        if (r->display_name && r->kind != ROUTE_AUTO &&
            !(r->kind == ROUTE_GROUP && strcmp(r->display_name, r->model) == 0))
            s->names[s->n_names++] = (struct route_name){r->display_name, (uint32_t)i, 0, true};
    }
    qsort(s->names, s->n_names, sizeof *s->names, name_cmp);
    pthread_mutex_lock(&sort_mu);
    sort_snap = s;
    qsort(s->patterns, s->n_patterns, sizeof *s->patterns, pattern_order);
    sort_snap = NULL;
    pthread_mutex_unlock(&sort_mu);
    s->model_list = calloc(s->n_names + 1, sizeof *s->model_list);
    if (!s->model_list) return -1;
    for (size_t i = 0; i < s->n_names; i++)
        if (i == 0 || strcmp(s->names[i].name, s->names[i - 1].name) != 0)
            s->model_list[s->n_model_list++] = s->names[i].name;
    return 0;
}

struct routing_snapshot *snapshot_build_ex(const struct snapshot_input *in, size_t n,
                                           const struct snapshot_extra *extra, uint64_t version)
{
    struct snapshot_extra none = {0};
    if (!extra) extra = &none;
    struct build b = {0};
    struct routing_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    b.s = s;
    s->version = version;
    s->uid = atomic_fetch_add(&build_uid, 1) + 1;
    s->fallback_unit_cost = extra->fallback_unit_cost > 0 ? extra->fallback_unit_cost : 1.0;
    s->channels = calloc(n ? n : 1, sizeof *s->channels);
    b.accts = calloc(n ? n : 1, sizeof *b.accts);
    size_t total_models = 0;
    for (size_t i = 0; i < n; i++) total_models += in[i].n_models;
    s->routes = calloc(total_models + extra->n_routes + 1, sizeof *s->routes);
    if (!s->channels || !s->routes || !b.accts) goto fail;
    if (extra->n_prices) {
        b.prices = malloc(extra->n_prices * sizeof *b.prices);
        if (!b.prices) goto fail;
        memcpy(b.prices, extra->prices, extra->n_prices * sizeof *b.prices);
        b.n_prices = extra->n_prices;
        qsort(b.prices, b.n_prices, sizeof *b.prices, price_cmp);
    }

    for (size_t i = 0; i < n; i++) {
        struct channel *c = &s->channels[s->n_channels++];
        if (build_channel(c, &in[i]) != 0) goto fail;
        b.accts[i] = (struct acct_idx){in[i].account_id, (uint32_t)i};
    }
    qsort(b.accts, n, sizeof *b.accts, acct_cmp);

    /* Automatic routes: one per distinct model, sorted by name. */
    struct model_pair *pairs = calloc(total_models ? total_models : 1, sizeof *pairs);
    if (!pairs) goto fail;
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < in[i].n_models; m++)
            if (in[i].models[m] && *in[i].models[m])
                pairs[np++] = (struct model_pair){in[i].models[m], (uint32_t)i};
    qsort(pairs, np, sizeof *pairs, pair_cmp);
    for (size_t i = 0; i < np;) {
        size_t j = i;
        while (j < np && strcmp(pairs[j].model, pairs[i].model) == 0) j++;
        struct route *r = &s->routes[s->n_routes++];
        r->kind = ROUTE_AUTO;
        r->enabled = true;
        r->model = strdup(pairs[i].model);
        r->channels = calloc(j - i, sizeof *r->channels);
        if (!r->model || !r->channels) {
            free(pairs);
            goto fail;
        }
        for (size_t k = i; k < j; k++) {
            if (r->n_channels && r->channels[r->n_channels - 1].channel == pairs[k].channel)
                continue;
            struct route_channel *rc = &r->channels[r->n_channels++];
            *rc =
                (struct route_channel){.channel = pairs[k].channel, .weight = 10, .enabled = true};
            if (init_route_channel(&b, rc, r->model) != 0) {
                free(pairs);
                goto fail;
            }
        }
        i = j;
    }
    free(pairs);
    size_t n_auto = s->n_routes;

    /* User routes, then the channels of groups (their sources exist by now). */
    for (size_t i = 0; i < extra->n_routes; i++)
        if (user_route(&b, &s->routes[s->n_routes++], &extra->routes[i], n_auto) != 0) goto fail;
    for (size_t i = 0; i < extra->n_routes; i++) {
        const struct snapshot_route_input *ri = &extra->routes[i];
        if (!ri->group) continue;
        struct route *g = &s->routes[n_auto + i];
        for (size_t k = 0; k < ri->n_sources; k++) {
            const struct route *src = snapshot_route_by_id(s, ri->source_ids[k]);
            if (!src || src == g || src->kind == ROUTE_GROUP) continue;
            if (copy_channels(g, src, true) != 0) goto fail;
        }
    }
    if (index_names(s) != 0) goto fail;
    free(b.accts);
    free(b.prices);
    return s;
fail:
    free(b.accts);
    free(b.prices);
    snapshot_free(s);
    return NULL;
}

struct routing_snapshot *snapshot_build(const struct snapshot_input *in, size_t n, uint64_t version)
{
    return snapshot_build_ex(in, n, NULL, version);
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
        struct route *r = &s->routes[i];
        free(r->model);
        free(r->display_name);
        free(r->error);
        pattern_free(&r->pat);
        for (size_t k = 0; k < r->n_channels; k++) free(r->channels[k].upstream_model);
        free(r->channels);
        for (size_t k = 0; k < r->n_map; k++) {
            pattern_free(&r->map[k].from);
            free(r->map[k].to);
        }
        free(r->map);
    }
    free(s->channels);
    free(s->routes);
    free(s->names);
    free(s->patterns);
    free(s->model_list);
    free(s);
}

/* ---------- lookup ---------- */

static int slice_cmp_str(const char *m, struct slice model)
{
    size_t ml = strlen(m);
    size_t common = ml < model.n ? ml : model.n;
    int c = memcmp(m, model.p, common);
    return c ? c : (ml > model.n) - (ml < model.n);
}

/* The first name entry equal to `model`, or NULL. */
static const struct route_name *find_name(const struct routing_snapshot *s, struct slice model)
{
    size_t lo = 0, hi = s->n_names;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (slice_cmp_str(s->names[mid].name, model) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n_names && slice_cmp_str(s->names[lo].name, model) == 0) return &s->names[lo];
    return NULL;
}

const struct route *snapshot_find(const struct routing_snapshot *s, struct slice model)
{
    if (!model.p) return NULL;
    const struct route_name *n = find_name(s, model);
    return n ? &s->routes[n->route] : NULL;
}

const struct route *snapshot_route_by_id(const struct routing_snapshot *s, int64_t id)
{
    if (id <= 0) return NULL;
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].id == id) return &s->routes[i];
    return NULL;
}

/* ---------- memo (per thread, per snapshot) ---------- */

#define MEMO_SLOTS    512u
#define MEMO_NAME_MAX 104

struct memo_entry {
    uint64_t uid;         /* snapshot build id; 0 = empty */
    uint32_t route_plus1; /* 0 = no route */
    uint8_t len;
    char name[MEMO_NAME_MAX];
};

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static _Thread_local struct memo_entry *memo;

static void memo_init_key(void)
{
    pthread_key_create(&memo_key, free);
}

static struct memo_entry *memo_table(void)
{
    if (memo) return memo;
    pthread_once(&memo_once, memo_init_key);
    memo = calloc(MEMO_SLOTS, sizeof *memo);
    if (memo) pthread_setspecific(memo_key, memo);
    return memo;
}

void routing_thread_cleanup(void)
{
    if (memo) {
        pthread_setspecific(memo_key, NULL);
        free(memo);
        memo = NULL;
    }
    pattern_thread_cleanup();
}

static uint32_t name_hash(struct slice m)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < m.n; i++) h = (h ^ (unsigned char)m.p[i]) * 16777619u;
    return h;
}

int routing_resolve(const struct routing_snapshot *s, struct slice model, struct route_match *m)
{
    memset(m, 0, sizeof *m);
    if (!s || !model.p || model.n == 0) return 0;
    const struct route_name *n = find_name(s, model);
    if (n) {
        m->route = &s->routes[n->route];
        m->via = n->level == 1 ? ROUTE_VIA_AUTO : n->alias ? ROUTE_VIA_ALIAS : ROUTE_VIA_USER_EXACT;
        return 0;
    }
    if (s->n_patterns == 0) return 0;

    struct memo_entry *tab = model.n < MEMO_NAME_MAX ? memo_table() : NULL;
    struct memo_entry *e = tab ? &tab[name_hash(model) % MEMO_SLOTS] : NULL;
    if (e && e->uid == s->uid && e->len == model.n && memcmp(e->name, model.p, model.n) == 0) {
        if (e->route_plus1) {
            m->route = &s->routes[e->route_plus1 - 1];
            m->via = ROUTE_VIA_PATTERN;
        }
        return 0;
    }
    uint32_t found = 0;
    for (size_t i = 0; i < s->n_patterns; i++) {
        const struct route *r = &s->routes[s->patterns[i]];
        enum pattern_result pr = pattern_match(&r->pat, model);
        if (pr == PATTERN_MATCH) {
            found = s->patterns[i] + 1;
            break;
        }
        if (pr < 0) {
            atomic_fetch_add(&((struct route *)r)->match_errors, 1);
            if (!m->error_route) {
                m->error_route = r;
                m->error = pr;
            }
        }
    }
    if (found) {
        m->route = &s->routes[found - 1];
        m->via = ROUTE_VIA_PATTERN;
    }
    /* A result reached past a failing regex is not memoized: the error stays visible. */
    if (e && !m->error_route) {
        e->uid = s->uid;
        e->route_plus1 = found;
        e->len = (uint8_t)model.n;
        memcpy(e->name, model.p, model.n);
    }
    return 0;
}

struct slice routing_upstream_model(const struct route_match *m, const struct route_channel *rc,
                                    struct slice requested)
{
    if (rc && rc->upstream_model) return slice_from(rc->upstream_model);
    const struct route *r = m ? m->route : NULL;
    if (!r) return requested;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->n_map; i++) {
            const struct route_map_entry *me = &r->map[i];
            if ((me->from.kind == PATTERN_EXACT) != (pass == 0)) continue;
            if (pattern_match(&me->from, requested) == PATTERN_MATCH) return slice_from(me->to);
        }
    if (r->kind == ROUTE_AUTO || r->kind == ROUTE_EXACT) return slice_from(r->model);
    return requested;
}

size_t routing_model_count(const struct routing_snapshot *s)
{
    return s ? s->n_model_list : 0;
}

const char *routing_model_name(const struct routing_snapshot *s, size_t i)
{
    return s && i < s->n_model_list ? s->model_list[i] : NULL;
}

static const char *const kind_names[] = {"auto", "exact", "glob", "regex", "group"};
static const char *const strategy_names[] = {"weighted", "round_robin", "stable_first"};

const char *route_kind_name(enum route_kind k)
{
    return (unsigned)k < 5 ? kind_names[k] : "unknown";
}

const char *route_strategy_name(enum route_strategy s)
{
    return (unsigned)s < 3 ? strategy_names[s] : "unknown";
}

int route_strategy_parse(const char *s)
{
    if (!s || !*s) return ROUTE_WEIGHTED;
    for (int i = 0; i < 3; i++)
        if (strcmp(s, strategy_names[i]) == 0) return i;
    return -1;
}

/* ---------- references ---------- */

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

static pthread_mutex_t latest_mu = PTHREAD_MUTEX_INITIALIZER;
static struct routing_snapshot *latest;

void snapshot_set_latest(struct routing_snapshot *s)
{
    if (s) snapshot_ref(s);
    pthread_mutex_lock(&latest_mu);
    struct routing_snapshot *old = latest;
    latest = s;
    pthread_mutex_unlock(&latest_mu);
    snapshot_release(old);
}

struct routing_snapshot *snapshot_acquire_latest(void)
{
    pthread_mutex_lock(&latest_mu);
    struct routing_snapshot *s = latest;
    if (s) snapshot_ref(s);
    pthread_mutex_unlock(&latest_mu);
    return s;
}
