/* routing_bench.c — the router's cost per request, outside the network: resolve the model,
 * select and order the channels (weighted), take the attempt, report the outcome. Two
 * tables: 1 route × 1 channel, and 500 routes × 20 channels (20 accounts each serving the
 * same 500 models, plus 20 glob and 5 regex user routes so the pattern path and its memo
 * are exercised). Prints ns/request; under callgrind, `--toggle-collect=bench_request`
 * counts the instructions of exactly one request path.
 *
 *   routing_bench [iterations]          (default 1,000,000)
 *   valgrind --tool=callgrind --toggle-collect=bench_request routing_bench 20000 2
 * (the second argument runs one case: 1, 2, 3 or 4) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "routing/select.h"
#include "routing/sticky.h"

#define N_MODELS   500
#define N_ACCOUNTS 20

static char model_names[N_MODELS][32];

static struct routing_snapshot *build(size_t n_models, size_t n_accounts, bool patterns)
{
    const char **models = calloc(n_models, sizeof *models);
    for (size_t i = 0; i < n_models; i++) {
        snprintf(model_names[i], sizeof model_names[i], "model-%03zu-chat", i);
        models[i] = model_names[i];
    }
    struct snapshot_input *in = calloc(n_accounts, sizeof *in);
    for (size_t a = 0; a < n_accounts; a++)
        in[a] = (struct snapshot_input){.account_id = (int64_t)a + 1,
                                        .site_id = (int64_t)a + 1,
                                        .site_name = "site",
                                        .base_url = "http://127.0.0.1:1",
                                        .api_key = "sk-bench",
                                        .models = models,
                                        .n_models = n_models,
                                        .unit_cost = 1.0 + (double)a / 10,
                                        .balance = 50};
    struct snapshot_route_input routes[25];
    struct snapshot_route_channel_input ch[N_ACCOUNTS];
    char pats[25][48];
    size_t nr = 0;
    if (patterns) {
        for (size_t a = 0; a < n_accounts; a++)
            ch[a] = (struct snapshot_route_channel_input){
                .id = (int64_t)a + 1, .account_id = (int64_t)a + 1, .weight = 10, .enabled = true};
        for (size_t i = 0; i < 25; i++) {
            if (i < 20)
                snprintf(pats[i], sizeof pats[i], "family-%02zu-*", i);
            else
                snprintf(pats[i], sizeof pats[i], "re:^vendor%zu/[a-z]+-[0-9]+$", i);
            routes[nr++] = (struct snapshot_route_input){.id = (int64_t)i + 1,
                                                         .pattern = pats[i],
                                                         .enabled = true,
                                                         .channels = ch,
                                                         .n_channels = n_accounts};
        }
    }
    struct snapshot_extra extra = {.routes = routes, .n_routes = nr};
    struct routing_snapshot *s = snapshot_build_ex(in, n_accounts, &extra, 1);
    free(in);
    free(models);
    return s;
}

/* One request's routing work (kept out of line for callgrind's toggle). */
__attribute__((noinline)) size_t bench_request(const struct routing_snapshot *s, struct slice model,
                                               uint64_t session, uint64_t now)
{
    struct routing_request rq;
    routing_request_init(&rq, s, model, session);
    size_t n = routing_select(&rq, now, 3);
    if (n && routing_attempt_begin(&rq, &rq.picks[0], now))
        routing_report_success(&rq, &rq.picks[0], now, 120);
    return n;
}

static void run(const char *label, const struct routing_snapshot *s, const struct slice *names,
                size_t n_names, size_t iters, uint64_t session)
{
    uint64_t now = clock_mono_ns();
    size_t picked = 0;
    uint64_t t0 = clock_mono_ns();
    for (size_t i = 0; i < iters; i++)
        picked += bench_request(s, names[i % n_names], session ? session + (i & 1023) : 0, now);
    uint64_t dt = clock_mono_ns() - t0;
    printf("| %-44s | %8.0f ns | %zu |\n", label, (double)dt / (double)iters,
           picked / (iters ? iters : 1));
}

int main(int argc, char **argv)
{
    size_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int only = argc > 2 ? atoi(argv[2]) : 0; /* 1..4: run one case (for callgrind) */
    if (!iters) iters = 1;
    sticky_init(65536, 1800000);
    printf("| case | per request | picks |\n|---|---|---|\n");

    struct routing_snapshot *one = build(1, 1, false);
    struct slice m1 = slice_from(model_names[0]);
    if (!only || only == 1) run("1 route x 1 channel", one, &m1, 1, iters, 0);

    struct routing_snapshot *big = build(N_MODELS, N_ACCOUNTS, true);
    struct slice *names = calloc(N_MODELS, sizeof *names);
    for (size_t i = 0; i < N_MODELS; i++) names[i] = slice_from(model_names[i]);
    if (!only || only == 2)
        run("500 routes x 20 channels (exact names)", big, names, N_MODELS, iters, 0);
    if (!only || only == 3)
        run("500 x 20, with a sticky session key", big, names, N_MODELS, iters, 77);
    static const char *const pat_names[] = {"family-03-large", "family-17-mini", "vendor21/model-9",
                                            "family-19-x"};
    struct slice pn[4];
    for (size_t i = 0; i < 4; i++) pn[i] = slice_from(pat_names[i]);
    if (!only || only == 4) run("500 x 20 + 25 glob/regex routes (memoized)", big, pn, 4, iters, 0);

    free(names);
    snapshot_free(one);
    snapshot_free(big);
    sticky_shutdown();
    routing_thread_cleanup();
    health_registry_free();
    return 0;
}
