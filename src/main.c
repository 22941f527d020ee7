/* main.c — the metarelay command line (serve, migrate, version, help), configuration from
 * the environment (read once, before any thread starts), process setup, the control loop
 * (signals, routing-snapshot rebuilds) and the graceful stop.
 *
 * Stop: SIGTERM/SIGINT flips readiness and stops accepting at once; requests and streams
 * in flight finish until DRAIN_TIMEOUT_SEC, after which streams still open end with an
 * in-stream error event; then the admin threads stop, the usage queue is flushed and the
 * process exits 0. A second signal skips the wait. */
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "admin/admin_http.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/tz.h"
#include "control/control.h"
#include "control/routing_state.h"
#include "control/snapshot_builder.h"
#include "gateway/gateway.h"
#include "net/http_server.h"
#include "store/store.h"

#ifndef METARELAY_VERSION
#define METARELAY_VERSION "0.1.0"
#endif

#define DEFAULT_AUTH_TOKEN  "change-me-admin-token"
#define DEFAULT_PROXY_TOKEN "change-me-proxy-sk-token"

struct config {
    struct gateway_config gw;
    const char *data_dir;
    const char *credential_secret;
    unsigned usage_retention_days;
    unsigned drain_timeout_ms;
    unsigned admin_threads;
    bool allow_default_tokens;
    uint64_t body_budget_bytes; /* MAX_BODY_INFLIGHT_MB */
    struct control_config control;
    tz_t *tz;
};

/* ---------- environment ---------- */

static const char *env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static int env_uint(const char *name, unsigned long long def, unsigned long long max,
                    unsigned long long *out)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max || v[0] == '-') {
        fprintf(stderr, "metarelay: %s=%s is not a whole number between 0 and %llu\n", name, v,
                max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Seconds (decimals allowed) → milliseconds. */
static int env_seconds_ms(const char *name, double def_s, unsigned *out_ms)
{
    const char *v = getenv(name);
    double s = def_s;
    if (v && *v) {
        char *end;
        errno = 0;
        s = strtod(v, &end);
        if (errno || *end || s < 0 || s > 86400.0 * 30) {
            fprintf(stderr, "metarelay: %s=%s is not a number of seconds\n", name, v);
            return -1;
        }
    }
    *out_ms = (unsigned)(s * 1000.0 + 0.5);
    return 0;
}

/* CPUs this process may use: the affinity mask (libuv) capped by the cgroup quota. */
static unsigned default_workers(void)
{
    unsigned n = uv_available_parallelism();
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        long period = 0;
        if (fscanf(f, "%31s %ld", quota, &period) == 2 && strcmp(quota, "max") != 0 && period > 0) {
            long q = atol(quota);
            unsigned c = (unsigned)((q + period - 1) / period);
            if (c >= 1 && c < n) n = c;
        }
        fclose(f);
    }
    return n ? n : 1;
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

static int load_config(struct config *c)
{
    unsigned long long v;
    memset(c, 0, sizeof *c);
    struct gateway_config *g = &c->gw;
    g->host = env_str("HOST", "0.0.0.0");
    if (strcmp(g->host, "localhost") == 0) g->host = "127.0.0.1";
    if (env_uint("PORT", 4000, 65535, &v)) return -1;
    g->port = (int)v;
    if (env_uint("WORKERS", default_workers(), 256, &v)) return -1;
    g->workers = v ? (unsigned)v : default_workers();
    g->auth_token = env_str("AUTH_TOKEN", DEFAULT_AUTH_TOKEN);
    g->proxy_token = env_str("PROXY_TOKEN", DEFAULT_PROXY_TOKEN);
    if (env_uint("MAX_BODY_MB", 32, 4096, &v)) return -1;
    g->max_body_bytes = v << 20;
    if (env_uint("MAX_BODY_INFLIGHT_MB", 1024, 1u << 20, &v)) return -1;
    c->body_budget_bytes = v << 20;
    if (env_uint("MAX_RESPONSE_MB", 64, 4096, &v)) return -1;
    g->max_response_bytes = v << 20;
    if (env_seconds_ms("HEADER_TIMEOUT_SEC", 10, &g->header_timeout_ms)) return -1;
    if (env_seconds_ms("KEEPALIVE_TIMEOUT_SEC", 75, &g->keepalive_timeout_ms)) return -1;
    if (env_uint("MAX_CONNECTIONS", 10000, 1000000, &v)) return -1;
    g->max_connections = (unsigned)v;
    if (env_uint("MAX_CONNECTIONS_PER_IP", 1000, 1000000, &v)) return -1;
    g->max_connections_per_ip = (unsigned)v;
    if (env_seconds_ms("PROXY_CONNECT_TIMEOUT_SEC", 10, &g->connect_timeout_ms)) return -1;
    /* Reasoning models can think for minutes before their first byte. */
    if (env_seconds_ms("PROXY_FIRST_BYTE_TIMEOUT_SEC", 300, &g->first_byte_timeout_ms)) return -1;
    if (env_seconds_ms("PROXY_IDLE_TIMEOUT_SEC", 300, &g->idle_timeout_ms)) return -1;
    if (env_seconds_ms("PROXY_TOTAL_TIMEOUT_SEC", 0, &g->total_timeout_ms)) return -1;
    if (env_uint("PROXY_MAX_CHANNEL_ATTEMPTS", 3, 16, &v)) return -1;
    g->max_attempts = v ? (unsigned)v : 1;
    g->error_keywords = env_str("PROXY_ERROR_KEYWORDS", NULL);
    if (g->error_keywords && !*g->error_keywords) g->error_keywords = NULL;
    g->empty_content_fail = strcmp(env_str("PROXY_EMPTY_CONTENT_FAIL", "0"), "1") == 0 ||
                            strcmp(env_str("PROXY_EMPTY_CONTENT_FAIL", "0"), "true") == 0;
    g->ca_file = env_str("SSL_CA_FILE", "/etc/ssl/certs/ca-certificates.crt");
    c->data_dir = env_str("DATA_DIR", "./data");
    c->credential_secret = env_str("ACCOUNT_CREDENTIAL_SECRET", g->auth_token);
    if (env_uint("USAGE_RETENTION_DAYS", 30, 36500, &v)) return -1;
    c->usage_retention_days = (unsigned)v;
    if (env_seconds_ms("DRAIN_TIMEOUT_SEC", 30, &c->drain_timeout_ms)) return -1;
    c->admin_threads = 2;
    if (env_uint("CONTROL_CONCURRENCY", 4, 64, &v)) return -1;
    c->control.concurrency = v ? (unsigned)v : 1;
    c->control.checkin_cron = env_str("CHECKIN_CRON", NULL);
    c->control.checkin_cron_pinned = c->control.checkin_cron != NULL;
    c->control.balance_cron = env_str("BALANCE_REFRESH_CRON", NULL);
    c->control.balance_cron_pinned = c->control.balance_cron != NULL;
    if (env_seconds_ms("CONTROL_JITTER_SEC", 30, &c->control.jitter_max_ms)) return -1;
    char tzerr[160];
    c->tz = tz_load(getenv("TZ"), tzerr); /* read once, before any thread */
    if (!c->tz) {
        fprintf(stderr, "metarelay: TZ=%s: %s\n", getenv("TZ"), tzerr);
        return -1;
    }
    c->control.tz = c->tz;
    if (routing_config_from_env() != 0) return -1;
    c->allow_default_tokens = strcmp(env_str("ALLOW_DEFAULT_TOKENS", "0"), "1") == 0;
    const char *lvl = env_str("LOG_LEVEL", "info");
    log_set_level(strcmp(lvl, "debug") == 0   ? LOG_DEBUG
                  : strcmp(lvl, "warn") == 0  ? LOG_WARN
                  : strcmp(lvl, "error") == 0 ? LOG_ERROR
                                              : LOG_INFO);
    bool defaults = strcmp(g->auth_token, DEFAULT_AUTH_TOKEN) == 0 ||
                    strcmp(g->proxy_token, DEFAULT_PROXY_TOKEN) == 0;
    if (defaults && !is_loopback(g->host) && !c->allow_default_tokens) {
        fprintf(stderr,
                "metarelay: refusing to listen on %s with the default AUTH_TOKEN/PROXY_TOKEN.\n"
                "Set both to secrets of your own, listen on 127.0.0.1 (HOST=127.0.0.1), or set "
                "ALLOW_DEFAULT_TOKENS=1.\n",
                g->host);
        return -1;
    }
    return 0;
}

/* ---------- process setup ---------- */

static void process_setup(unsigned workers)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (sodium_init() < 0) {
        fprintf(stderr, "metarelay: libsodium failed to initialise\n");
        exit(1);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    mallopt(M_ARENA_MAX, (int)workers + 4);
    http_server_global_init(64 * 1024);
}

/* ---------- control loop ---------- */

static struct {
    uv_loop_t *loop;
    uv_async_t rebuild;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint, sighup;
    store_t *store;
    db_t *db;
    uint64_t version;
    bool draining;
    uint64_t drain_deadline_ns;
    uint64_t drain_started_ns;
    unsigned drain_timeout_ms;
    uint64_t health_saved_ns;
} ctl;

static void rebuild_now(uv_async_t *a)
{
    (void)a;
    struct routing_snapshot *s = snapshot_load(ctl.db, ++ctl.version);
    if (s) {
        log_info("routing: published snapshot %llu (%zu channels, %zu models)",
                 (unsigned long long)s->version, s->n_channels, s->n_routes);
        snapshot_set_latest(s); /* the admin API's view (decision explanations) */
        gateway_publish(s);
    }
    snapshot_free_retired();
}

/* Called on admin threads after a routing-relevant change. */
static void routing_changed(void *arg)
{
    (void)arg;
    uv_async_send(&ctl.rebuild);
}

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void tick(uv_timer_t *t)
{
    (void)t;
    snapshot_free_retired();
    uint64_t now_ns = clock_mono_ns();
    if (now_ns - ctl.health_saved_ns >= (uint64_t)routing_health_save_interval_ms() * 1000000ull) {
        ctl.health_saved_ns = now_ns;
        routing_health_persist(ctl.db);
    }
    if (!ctl.draining) return;
    uint64_t now = clock_mono_ns();
    /* workers refresh their in-flight count every 50 ms: wait one refresh at least */
    bool settled = now - ctl.drain_started_ns > 150000000ull;
    if ((settled && gateway_in_flight() == 0) || now >= ctl.drain_deadline_ns) {
        if (now >= ctl.drain_deadline_ns && gateway_in_flight() > 0)
            log_warn("drain timeout: ending %zu requests still in flight", gateway_in_flight());
        uv_walk(ctl.loop, close_all, NULL);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP) {
        log_info("SIGHUP: reloading the routing snapshot");
        rebuild_now(NULL);
        return;
    }
    if (ctl.draining) {
        log_warn("second signal: stopping now");
        ctl.drain_deadline_ns = 0;
        return;
    }
    ctl.draining = true;
    ctl.drain_started_ns = clock_mono_ns();
    ctl.drain_deadline_ns = ctl.drain_started_ns + (uint64_t)ctl.drain_timeout_ms * 1000000ull;
    log_info("%s: draining (up to %u ms)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
             ctl.drain_timeout_ms);
    gateway_begin_drain();
    (void)s;
}

static int serve(struct config *cfg)
{
    char *err = NULL;
    struct store_config scfg = {cfg->data_dir, cfg->credential_secret, cfg->usage_retention_days};

    /* Threads inherit a mask with every signal blocked; only this thread takes them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    ctl.store = store_open(&scfg, &err);
    if (!ctl.store) {
        fprintf(stderr, "metarelay: cannot open the store in %s: %s\n", cfg->data_dir,
                err ? err : "unknown error");
        free(err);
        return 1;
    }
    ctl.db = store_connect(ctl.store);
    if (ctl.db) routing_health_restore(ctl.db); /* before the snapshot looks records up */
    ctl.health_saved_ns = clock_mono_ns();
    struct routing_snapshot *snap = ctl.db ? snapshot_load(ctl.db, ++ctl.version) : NULL;
    if (!snap) {
        fprintf(stderr, "metarelay: cannot build the routing table from the store\n");
        if (ctl.db) db_close(ctl.db);
        store_close(ctl.store);
        return 1;
    }
    snapshot_set_latest(snap);
    access_log_start(1);
    ctl.loop = uv_default_loop();
    uv_async_init(ctl.loop, &ctl.rebuild, rebuild_now);
    if (admin_http_start(ctl.store, cfg->admin_threads, routing_changed, NULL) != 0) {
        fprintf(stderr, "metarelay: cannot start the admin threads\n");
        return 1;
    }
    cfg->gw.admin_dispatch = admin_http_dispatch;
    cfg->control.store = ctl.store;
    cfg->control.routing_changed = routing_changed;
    char cerr[200];
    if (control_start(&cfg->control, cerr) != 0) {
        fprintf(stderr, "metarelay: cannot start the control plane: %s\n", cerr);
        fflush(stderr);
        _exit(1);
    }
    const char *gerr = NULL;
    if (gateway_start(&cfg->gw, snap, &gerr) != 0) {
        fprintf(stderr, "metarelay: cannot listen on %s:%d: %s\n", cfg->gw.host, cfg->gw.port,
                gerr ? gerr : "unknown error");
        /* Threads may be half started: exit without an orderly teardown. */
        fflush(stderr);
        _exit(1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ctl.drain_timeout_ms = cfg->drain_timeout_ms;
    uv_signal_init(ctl.loop, &ctl.sigterm);
    uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
    uv_signal_init(ctl.loop, &ctl.sigint);
    uv_signal_start(&ctl.sigint, on_signal, SIGINT);
    uv_signal_init(ctl.loop, &ctl.sighup);
    uv_signal_start(&ctl.sighup, on_signal, SIGHUP);
    uv_timer_init(ctl.loop, &ctl.tick);
    uv_timer_start(&ctl.tick, tick, 50, 50);

    log_always("metarelay %s listening on %s:%d (%u workers, data in %s)", METARELAY_VERSION,
               cfg->gw.host, gateway_port(), cfg->gw.workers, cfg->data_dir);
    if (strcmp(cfg->gw.proxy_token, DEFAULT_PROXY_TOKEN) == 0)
        log_warn("using the default PROXY_TOKEN and AUTH_TOKEN: set your own before exposing "
                 "metarelay");

    uv_run(ctl.loop, UV_RUN_DEFAULT);

    admin_http_stop();
    control_stop();
    gateway_stop();
    routing_health_persist(ctl.db); /* health survives the restart */
    snapshot_set_latest(NULL);
    snapshot_free_retired();
    db_close(ctl.db);
    store_close(ctl.store);
    log_info("stopped");
    access_log_stop();
    uv_loop_close(ctl.loop);
    routing_state_shutdown();
    tz_free(cfg->tz);
    curl_global_cleanup();
    return 0;
}

/* Re-encrypts every stored secret under ACCOUNT_CREDENTIAL_SECRET_NEW. */
static int rotate_secret(struct config *cfg)
{
    const char *next = getenv("ACCOUNT_CREDENTIAL_SECRET_NEW");
    if (!next || !*next) {
        fprintf(stderr, "metarelay: rotate-secret needs ACCOUNT_CREDENTIAL_SECRET_NEW (the new "
                        "secret); ACCOUNT_CREDENTIAL_SECRET is the current one\n");
        return 2;
    }
    char *err = NULL;
    size_t n = 0;
    struct store_config scfg = {cfg->data_dir, cfg->credential_secret, cfg->usage_retention_days};
    if (store_rotate_secret(&scfg, next, &n, &err) != 0) {
        fprintf(stderr, "metarelay: rotate-secret failed, nothing changed: %s\n",
                err ? err : "unknown error");
        free(err);
        return 1;
    }
    printf("re-encrypted %zu secrets in %s; start metarelay with "
           "ACCOUNT_CREDENTIAL_SECRET set to the new secret from now on\n",
           n, cfg->data_dir);
    return 0;
}

static int migrate(struct config *cfg)
{
    char *err = NULL;
    struct store_config scfg = {cfg->data_dir, cfg->credential_secret, cfg->usage_retention_days};
    store_t *s = store_open(&scfg, &err);
    if (!s) {
        fprintf(stderr, "metarelay: migrate failed: %s\n", err ? err : "unknown error");
        free(err);
        return 1;
    }
    store_close(s);
    printf("database in %s is up to date\n", cfg->data_dir);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: metarelay [serve|migrate|rotate-secret|version|help]\n"
               "  serve    start the gateway (default); configuration comes from the environment\n"
               "  migrate  create or upgrade the database in DATA_DIR, then exit\n"
               "  rotate-secret  re-encrypt every stored secret from ACCOUNT_CREDENTIAL_SECRET\n"
               "           to ACCOUNT_CREDENTIAL_SECRET_NEW (gateway stopped)\n"
               "  version  print the version\n"
               "See README.md for the environment variables.\n");
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("metarelay %s\n", METARELAY_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
        strcmp(cmd, "rotate-secret") != 0) {
        fprintf(stderr, "metarelay: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    struct config cfg;
    if (load_config(&cfg) != 0) return 2;
    process_setup(cfg.gw.workers);
    http_server_set_body_budget(cfg.body_budget_bytes);
    if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "rotate-secret") == 0) {
        int rc = strcmp(cmd, "migrate") == 0 ? migrate(&cfg) : rotate_secret(&cfg);
        tz_free(cfg.tz);
        return rc;
    }
    return serve(&cfg);
}
