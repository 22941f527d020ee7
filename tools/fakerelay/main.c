/* main.c — fakerelay's command line: options (and their FAKERELAY_* environment
 * variables), start of the workers, the "listening HOST:PORT" line tests wait for, and a
 * clean stop on SIGTERM/SIGINT through uv signals on the main loop. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "fakerelay.h"
#include "platform.h"

#define DEFAULT_MODELS "gpt-4o-mini,gpt-4o,text-embedding-3-small,dall-e-3"

static void usage(FILE *f)
{
    fputs(
        "usage: fakerelay [options]\n"
        "Emulates an OpenAI-compatible relay site for metarelay's tests and benchmarks.\n"
        "  --host ADDR            listen address (default 127.0.0.1)          FAKERELAY_HOST\n"
        "  --port N               port; 0 picks a free one (default 0)        FAKERELAY_PORT\n"
        "  --key K                bearer key required on /v1 (default none)   FAKERELAY_KEY\n"
        "  --models a,b,c         models listed by /v1/models                 FAKERELAY_MODELS\n"
        "  --name NAME            label echoed in replies (default fakerelay) FAKERELAY_NAME\n"
        "  --workers N            io threads (default 1)                      FAKERELAY_WORKERS\n"
        "  --fault KIND           fault applied to every /v1 request          FAKERELAY_FAULT\n"
        "  --chunks N             content chunks per stream (default 4)       FAKERELAY_CHUNKS\n"
        "  --chunk-delay-ms M     pause before each content chunk (0)         "
        "FAKERELAY_CHUNK_DELAY_MS\n"
        "  --delay-ms M           slow-first-byte delay (default 500)         FAKERELAY_DELAY_MS\n"
        "  --cut-after N          content chunks sent before a cut (1)        FAKERELAY_CUT_AFTER\n"
        "  --embedding-dim N      embedding size (default 8)                  "
        "FAKERELAY_EMBEDDING_DIM\n"
        "  --verbose              one line per request on stderr              FAKERELAY_VERBOSE\n"
        "  --formats a,b          surfaces served: chat, messages, responses  FAKERELAY_FORMATS\n"
        "                         (default chat)\n"
        "  --retry-after S        Retry-After of 429/529 faults (default 1)   "
        "FAKERELAY_RETRY_AFTER\n"
        "  --fail-first N         --fault hits only the first N POSTs         "
        "FAKERELAY_FAIL_FIRST\n"
        "  --flap-period N        --fault hits N POSTs, spares N, …           "
        "FAKERELAY_FLAP_PERIOD\n"
        "Faults: 500 429 429-no-retry-after 503 529 reset silence slow-first-byte cut\n"
        "bad-json (malformed) stall no-done stream-error context-length content-filter quota\n"
        "empty\n"
        "(see README.md).\n"
        "The first line on stdout is \"listening HOST:PORT\".\n",
        f);
}

static bool parse_uint(const char *opt, const char *s, unsigned max, unsigned *out)
{
    unsigned long long v;
    if (!s || !slice_to_u64(slice_from(s), &v) || v > max) {
        fprintf(stderr, "fakerelay: %s wants an integer between 0 and %u, got \"%s\"\n", opt, max,
                s ? s : "");
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* Splits "a,b,c" into an owned NULL-terminated array (empty items skipped). */
static char **split_models(const char *list, size_t *n_out)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    char **v = calloc(cap + 1, sizeof *v);
    if (!v) return NULL;
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        struct slice item = slice_trim((struct slice){p, len});
        if (item.n) {
            v[n] = strndup(item.p, item.n);
            if (!v[n]) break;
            n++;
        }
        if (!e) break;
        p = e + 1;
    }
    *n_out = n;
    return v;
}

void fr_config_free(struct fr_config *cfg)
{
    if (cfg->models)
        for (size_t i = 0; cfg->models[i]; i++) free(cfg->models[i]);
    free(cfg->models);
    cfg->models = NULL;
}

enum {
    OPT_HOST = 1000,
    OPT_PORT,
    OPT_KEY,
    OPT_MODELS,
    OPT_NAME,
    OPT_WORKERS,
    OPT_FAULT,
    OPT_CHUNKS,
    OPT_CHUNK_DELAY,
    OPT_DELAY,
    OPT_CUT_AFTER,
    OPT_EMB_DIM,
    OPT_VERBOSE,
    OPT_FORMATS,
    OPT_RETRY_AFTER,
    OPT_FAIL_FIRST,
    OPT_FLAP_PERIOD,
    OPT_HELP,
};

bool fr_formats_parse(const char *list, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"chat", FR_FORMAT_CHAT},
        {"messages", FR_FORMAT_MESSAGES},
        {"responses", FR_FORMAT_RESPONSES},
    };
    unsigned bits = 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        struct slice item = slice_trim((struct slice){p, e ? (size_t)(e - p) : strlen(p)});
        if (item.n) {
            size_t i = 0;
            while (i < sizeof names / sizeof names[0] && !slice_eq_str(item, names[i].name)) i++;
            if (i == sizeof names / sizeof names[0]) return false;
            bits |= names[i].bit;
        }
        if (!e) break;
        p = e + 1;
    }
    if (!bits) return false;
    *out = bits;
    return true;
}

/* Applies one option value; the environment and argv both go through here. */
static bool apply(struct fr_config *cfg, int opt, const char *optname, const char *val,
                  const char **models)
{
    unsigned u;
    switch (opt) {
    case OPT_HOST:
        cfg->host = val;
        return true;
    case OPT_PORT:
        if (!parse_uint(optname, val, 65535, &u)) return false;
        cfg->port = (int)u;
        return true;
    case OPT_KEY:
        cfg->key = *val ? val : NULL;
        return true;
    case OPT_MODELS:
        *models = val;
        return true;
    case OPT_NAME:
        cfg->name = val;
        return true;
    case OPT_WORKERS:
        if (!parse_uint(optname, val, 256, &u)) return false;
        if (u == 0) {
            fprintf(stderr, "fakerelay: %s must be at least 1\n", optname);
            return false;
        }
        cfg->workers = u;
        return true;
    case OPT_FAULT: {
        enum fr_fault f;
        if (*val == 0 || strcmp(val, "none") == 0) {
            cfg->fault = NULL;
            return true;
        }
        if (!fr_fault_parse(slice_from(val), &f)) {
            fprintf(stderr, "fakerelay: unknown fault \"%s\" for %s\n", val, optname);
            return false;
        }
        cfg->fault = val;
        return true;
    }
    case OPT_CHUNKS:
        if (!parse_uint(optname, val, 100000, &u)) return false;
        cfg->chunks = u;
        return true;
    case OPT_CHUNK_DELAY:
        return parse_uint(optname, val, 600000, &cfg->chunk_delay_ms);
    case OPT_DELAY:
        return parse_uint(optname, val, 600000, &cfg->delay_ms);
    case OPT_CUT_AFTER:
        return parse_uint(optname, val, 100000, &cfg->cut_after);
    case OPT_EMB_DIM:
        if (!parse_uint(optname, val, 65536, &u)) return false;
        if (u == 0) {
            fprintf(stderr, "fakerelay: %s must be at least 1\n", optname);
            return false;
        }
        cfg->embedding_dim = u;
        return true;
    case OPT_VERBOSE:
        cfg->verbose = !(val && strcmp(val, "0") == 0);
        return true;
    case OPT_RETRY_AFTER:
        return parse_uint(optname, val, 86400, &cfg->retry_after);
    case OPT_FAIL_FIRST:
        return parse_uint(optname, val, 100000000, &cfg->fail_first);
    case OPT_FLAP_PERIOD:
        return parse_uint(optname, val, 100000000, &cfg->flap_period);
    case OPT_FORMATS:
        if (!fr_formats_parse(val, &cfg->formats)) {
            fprintf(stderr, "fakerelay: %s wants a list of chat, messages, responses, got \"%s\"\n",
                    optname, val);
            return false;
        }
        return true;
    }
    return false;
}

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"key", required_argument, NULL, OPT_KEY},
    {"models", required_argument, NULL, OPT_MODELS},
    {"name", required_argument, NULL, OPT_NAME},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"fault", required_argument, NULL, OPT_FAULT},
    {"chunks", required_argument, NULL, OPT_CHUNKS},
    {"chunk-delay-ms", required_argument, NULL, OPT_CHUNK_DELAY},
    {"delay-ms", required_argument, NULL, OPT_DELAY},
    {"cut-after", required_argument, NULL, OPT_CUT_AFTER},
    {"embedding-dim", required_argument, NULL, OPT_EMB_DIM},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"formats", required_argument, NULL, OPT_FORMATS},
    {"retry-after", required_argument, NULL, OPT_RETRY_AFTER},
    {"fail-first", required_argument, NULL, OPT_FAIL_FIRST},
    {"flap-period", required_argument, NULL, OPT_FLAP_PERIOD},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const struct {
    const char *env;
    int opt;
} env_opts[] = {
    {"FAKERELAY_HOST", OPT_HOST},
    {"FAKERELAY_PORT", OPT_PORT},
    {"FAKERELAY_KEY", OPT_KEY},
    {"FAKERELAY_MODELS", OPT_MODELS},
    {"FAKERELAY_NAME", OPT_NAME},
    {"FAKERELAY_WORKERS", OPT_WORKERS},
    {"FAKERELAY_FAULT", OPT_FAULT},
    {"FAKERELAY_CHUNKS", OPT_CHUNKS},
    {"FAKERELAY_CHUNK_DELAY_MS", OPT_CHUNK_DELAY},
    {"FAKERELAY_DELAY_MS", OPT_DELAY},
    {"FAKERELAY_CUT_AFTER", OPT_CUT_AFTER},
    {"FAKERELAY_EMBEDDING_DIM", OPT_EMB_DIM},
    {"FAKERELAY_VERBOSE", OPT_VERBOSE},
    {"FAKERELAY_FORMATS", OPT_FORMATS},
    {"FAKERELAY_RETRY_AFTER", OPT_RETRY_AFTER},
    {"FAKERELAY_FAIL_FIRST", OPT_FAIL_FIRST},
    {"FAKERELAY_FLAP_PERIOD", OPT_FLAP_PERIOD},
};

int fr_config_parse(struct fr_config *cfg, int argc, char **argv)
{
    *cfg = (struct fr_config){
        .host = "127.0.0.1",
        .port = 0,
        .name = "fakerelay",
        .workers = 1,
        .chunks = 4,
        .chunk_delay_ms = 0,
        .delay_ms = 500,
        .cut_after = 1,
        .retry_after = 1,
        .embedding_dim = 8,
        .formats = FR_FORMAT_CHAT,
    };
    const char *models = DEFAULT_MODELS;
    for (size_t i = 0; i < sizeof env_opts / sizeof env_opts[0]; i++) {
        const char *v = getenv(env_opts[i].env);
        if (v && !apply(cfg, env_opts[i].opt, env_opts[i].env, v, &models)) return -1;
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == '?') {
            usage(stderr);
            return -1;
        }
        char name[32] = "--";
        for (const struct option *o = long_opts; o->name; o++)
            if (o->val == c) snprintf(name, sizeof name, "--%s", o->name);
        if (!apply(cfg, c, name, optarg, &models)) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "fakerelay: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if ((cfg->fail_first || cfg->flap_period) && !cfg->fault) cfg->fault = "500";
    if (cfg->fail_first && cfg->flap_period) {
        fprintf(stderr, "fakerelay: --fail-first and --flap-period exclude each other\n");
        return -1;
    }
    cfg->models = split_models(models, &cfg->n_models);
    if (!cfg->models) {
        fprintf(stderr, "fakerelay: out of memory\n");
        return -1;
    }
    return 0;
}

/* ---- main loop: signals ---- */

struct fr_main {
    uv_signal_t term, intr;
    struct fr_app *app;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct fr_main *m = h->data;
    log_info("fakerelay: signal %d, stopping", signum);
    uv_close((uv_handle_t *)&m->term, NULL);
    uv_close((uv_handle_t *)&m->intr, NULL);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct fr_app app = {0};
    pthread_mutex_init(&app.servers_lock, NULL);
    bool platform_err;
    app.platform = fr_platform_parse(&argc, argv, &platform_err); /* strips its options */
    if (platform_err) return 2;
    int rc = fr_config_parse(&app.cfg, argc, argv);
    if (rc != 0) {
        if (rc > 0) fr_platform_usage(stdout);
        fr_config_free(&app.cfg);
        fr_platform_free(app.platform);
        return rc > 0 ? 0 : 2;
    }
    log_set_level(app.cfg.verbose ? LOG_DEBUG : LOG_INFO);
    app.stats = fr_stats_new();
    if (!app.stats) {
        fr_config_free(&app.cfg);
        fr_platform_free(app.platform);
        return 1;
    }
    http_server_global_init(64 * 1024);

    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    struct fr_main m = {.app = &app};
    uv_signal_init(&main_loop, &m.term);
    uv_signal_init(&main_loop, &m.intr);
    m.term.data = m.intr.data = &m;
    uv_signal_start(&m.term, on_signal, SIGTERM);
    uv_signal_start(&m.intr, on_signal, SIGINT);

    rc = 1;
    if (fr_workers_create(&app) == 0 && fr_workers_run(&app) == 0) {
        const char *h = app.cfg.host;
        bool v6 = strchr(h, ':') != NULL;
        printf("listening %s%s%s:%d\n", v6 ? "[" : "", h, v6 ? "]" : "", app.port);
        fflush(stdout);
        uv_run(&main_loop, UV_RUN_DEFAULT); /* until a signal closes the handles */
        rc = 0;
    } else {
        uv_close((uv_handle_t *)&m.term, NULL);
        uv_close((uv_handle_t *)&m.intr, NULL);
        uv_run(&main_loop, UV_RUN_DEFAULT);
    }
    fr_workers_stop(&app);
    uv_loop_close(&main_loop);
    fr_stats_free(app.stats);
    fr_config_free(&app.cfg);
    fr_platform_free(app.platform);
    pthread_mutex_destroy(&app.servers_lock);
    return rc;
}
