/* test_platforms_fakerelay.c — every adapter end to end against fakerelay's emulation of
 * its platform (tools/fakerelay --platform ID, spawned next to this test binary):
 * detect → password login → balance in USD → check-in (reward, then "already" on the
 * second run) → tokens with full keys → create → models and prices, with and without a
 * key → delete; plus 2FA, the second New API auth generation, AnyRouter's challenge,
 * Turnstile, HTML error pages and expired sessions. Skipped when fakerelay is not built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platforms/platform.h"

static char fakerelay_path[PATH_MAX + 16];

struct relay {
    pid_t pid;
    char url[64];
};

/* Starts fakerelay with the given options (NULL-terminated); reads its port. */
static bool relay_start(struct relay *r, const char *const *opts)
{
    int pfd[2];
    if (pipe(pfd) != 0) return false;
    const char *argv[40];
    size_t n = 0;
    argv[n++] = fakerelay_path;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (size_t i = 0; opts[i] && n < 38; i++) argv[n++] = opts[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(fakerelay_path, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    r->pid = pid;
    FILE *in = fdopen(pfd[0], "r");
    char line[256];
    int port = 0;
    while (in && fgets(line, sizeof line, in))
        if (sscanf(line, "listening 127.0.0.1:%d", &port) == 1) break;
    if (in) fclose(in);
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", port);
    return true;
}

static void relay_stop(struct relay *r)
{
    kill(r->pid, SIGTERM);
    int st;
    waitpid(r->pid, &st, 0);
}

struct scenario {
    const char *fake_id;  /* --platform */
    const char *adapter;  /* expected detection / adapter id */
    const char *login;    /* username or e-mail */
    const char *extra[6]; /* more options */
    unsigned tokens;      /* pre-seeded tokens */
    bool prices;          /* the platform publishes prices */
};

static void run_scenario(const struct scenario *sc)
{
    const char *opts[16];
    size_t n = 0;
    char ntok[16];
    snprintf(ntok, sizeof ntok, "%u", sc->tokens);
    opts[n++] = "--platform";
    opts[n++] = sc->fake_id;
    opts[n++] = "--tokens";
    opts[n++] = ntok;
    for (size_t i = 0; sc->extra[i]; i++) opts[n++] = sc->extra[i];
    opts[n] = NULL;
    struct relay r;
    assert_true(relay_start(&r, opts));
    fetch_client_t *f = fetch_client_new();
    struct platform_error err;

    const struct platform *p = platform_detect(f, r.url, NULL, &err);
    if (!p) fail_msg("%s: detect failed: %s", sc->fake_id, err.message);
    assert_string_equal(p->id, sc->adapter);

    struct platform_credentials pw = {
        .base_url = r.url, .username = sc->login, .password = "secret123"};
    struct platform_session s;
    if (p->login(f, &pw, &s, &err) != 0) fail_msg("%s: login: %s", sc->fake_id, err.message);
    struct platform_credentials cr = {.base_url = r.url,
                                      .access_token = s.access_token,
                                      .refresh_token = s.refresh_token,
                                      .cookie = s.cookie,
                                      .user_id = s.user_id};

    struct platform_balance b;
    if (p->balance(f, &cr, &b, &err) != 0) fail_msg("%s: balance: %s", sc->fake_id, err.message);
    assert_string_equal(b.currency, "USD");
    if (strcmp(sc->adapter, "sub2api") != 0) {
        assert_true(b.balance > 9.999 && b.balance < 10.001); /* 5000000 / 500000 */
        assert_true(b.used > 0.499 && b.used < 0.501);
    } else {
        assert_true(b.balance > 0);
    }
    platform_balance_free(&b);

    if (p->checkin) {
        struct platform_checkin ck;
        if (p->checkin(f, &cr, &ck, &err) != 0)
            fail_msg("%s: checkin: %s", sc->fake_id, err.message);
        assert_false(ck.already_done);
        assert_true(ck.reward > 0);
        platform_checkin_free(&ck);
        if (p->checkin(f, &cr, &ck, &err) != 0)
            fail_msg("%s: checkin 2: %s", sc->fake_id, err.message);
        assert_true(ck.already_done);
        platform_checkin_free(&ck);
    }

    struct platform_token_list tl;
    if (p->list_tokens(f, &cr, &tl, &err) != 0)
        fail_msg("%s: tokens: %s", sc->fake_id, err.message);
    assert_int_equal(tl.n, sc->tokens);
    for (size_t i = 0; i < tl.n; i++) {
        if (!tl.items[i].key) fail_msg("%s: token %s stayed masked", sc->fake_id, tl.items[i].id);
        assert_int_equal(strncmp(tl.items[i].key, "sk-", 3), 0);
    }
    platform_token_list_free(&tl);

    struct platform_token_spec spec = {
        .name = "metarelay-e2e", .unlimited = true, .expires_at = -1};
    struct platform_token t;
    if (p->create_token(f, &cr, &spec, &t, &err) != 0)
        fail_msg("%s: create: %s", sc->fake_id, err.message);
    assert_non_null(t.key);
    assert_string_equal(t.name, "metarelay-e2e");

    struct platform_model_list ml;
    if (strcmp(sc->adapter, "sub2api") != 0) {
        if (p->models(f, &cr, &ml, &err) != 0) fail_msg("%s: models: %s", sc->fake_id, err.message);
        assert_true(ml.n > 0);
        if (sc->prices) assert_true(ml.n_prices > 0);
        platform_model_list_free(&ml);
    }
    struct platform_credentials kc = cr;
    kc.api_key = t.key;
    if (p->models(f, &kc, &ml, &err) != 0) fail_msg("%s: key models: %s", sc->fake_id, err.message);
    assert_true(ml.n > 0);
    platform_model_list_free(&ml);

    if (p->delete_token(f, &cr, t.id, &err) != 0)
        fail_msg("%s: delete: %s", sc->fake_id, err.message);
    assert_int_equal(p->list_tokens(f, &cr, &tl, &err), 0);
    assert_int_equal(tl.n, sc->tokens);
    platform_token_list_free(&tl);
    platform_token_free(&t);
    platform_session_free(&s);
    fetch_client_free(f);
    relay_stop(&r);
}

static bool have_fakerelay(void)
{
    if (access(fakerelay_path, X_OK) == 0) return true;
    return false;
}

#define SKIP_WITHOUT_FAKERELAY()                                                                   \
    do {                                                                                           \
        if (!have_fakerelay()) skip();                                                             \
    } while (0)

static void test_new_api(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"new-api", "new-api", "alice", {"--masked-keys", NULL}, 3, true};
    run_scenario(&sc);
}

static void test_new_api_v2(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"new-api-v2", "new-api", "alice", {"--masked-keys", NULL}, 2, true};
    run_scenario(&sc);
}

static void test_anyrouter(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"anyrouter", "anyrouter", "alice", {"--challenge", NULL}, 1, true};
    run_scenario(&sc);
}

static void test_one_api(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"one-api", "one-api", "alice", {NULL}, 23, false};
    run_scenario(&sc);
}

static void test_one_hub(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"one-hub", "one-hub", "alice", {NULL}, 3, true};
    run_scenario(&sc);
}

static void test_done_hub(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"done-hub", "done-hub", "alice", {NULL}, 2, true};
    run_scenario(&sc);
}

static void test_veloera(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"veloera", "veloera", "alice", {NULL}, 2, true};
    run_scenario(&sc);
}

static void test_sub2api(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    struct scenario sc = {"sub2api", "sub2api", "alice@example.com", {NULL}, 2, false};
    run_scenario(&sc);
}

/* 2FA, Turnstile, HTML pages, expired sessions. */
static void test_failures(void **state)
{
    (void)state;
    SKIP_WITHOUT_FAKERELAY();
    fetch_client_t *f = fetch_client_new();
    struct platform_error err;
    struct platform_session s;
    const struct platform *na = platform_by_id("new-api");
    struct relay r;

    const char *twofa[] = {"--platform", "new-api", "--totp-secret",
                           "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", NULL};
    assert_true(relay_start(&r, twofa));
    struct platform_credentials pw = {
        .base_url = r.url, .username = "alice", .password = "secret123"};
    assert_int_equal(na->login(f, &pw, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_NEEDS_2FA);
    pw.totp_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    if (na->login(f, &pw, &s, &err) != 0) fail_msg("2fa login: %s", err.message);
    platform_session_free(&s);
    relay_stop(&r);

    const char *ts[] = {"--platform", "new-api", "--turnstile", NULL};
    assert_true(relay_start(&r, ts));
    pw.base_url = r.url;
    pw.totp_secret = NULL;
    assert_int_equal(na->login(f, &pw, &s, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_CAPTCHA);
    assert_non_null(strstr(err.message, "session cookie"));
    relay_stop(&r);

    const char *html[] = {"--platform", "one-hub", "--html-errors", NULL};
    assert_true(relay_start(&r, html));
    struct platform_credentials tok = {.base_url = r.url,
                                       .access_token = "0123456789abcdef0123456789abcdef"};
    struct platform_balance b;
    assert_int_equal(platform_by_id("one-hub")->balance(f, &tok, &b, &err), -1);
    assert_true(err.kind == PLATFORM_ERR_BAD_RESPONSE || err.kind == PLATFORM_ERR_CAPTCHA);
    relay_stop(&r);

    const char *ttl[] = {"--platform", "new-api", "--session-ttl-sec", "1", NULL};
    assert_true(relay_start(&r, ttl));
    pw.base_url = r.url;
    assert_int_equal(na->login(f, &pw, &s, &err), 0);
    struct platform_credentials cr = {.base_url = r.url, .cookie = s.cookie, .user_id = s.user_id};
    sleep(2);
    assert_int_equal(na->balance(f, &cr, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    struct platform_credentials again = cr;
    again.username = "alice";
    again.password = "secret123";
    struct platform_session s2;
    if (na->refresh_session(f, &again, &s2, &err) != 0) fail_msg("relogin: %s", err.message);
    cr.cookie = s2.cookie;
    assert_int_equal(na->balance(f, &cr, &b, &err), 0);
    platform_balance_free(&b);
    platform_session_free(&s2);
    platform_session_free(&s);
    relay_stop(&r);

    /* Second generation: an expired access token is refreshed with the refresh cookie,
     * no password needed. */
    const char *v2[] = {"--platform", "new-api-v2", "--session-ttl-sec", "1", NULL};
    assert_true(relay_start(&r, v2));
    pw.base_url = r.url;
    assert_int_equal(na->login(f, &pw, &s, &err), 0);
    assert_non_null(s.access_token);
    assert_non_null(s.cookie);
    struct platform_credentials tc = {
        .base_url = r.url, .access_token = s.access_token, .cookie = s.cookie};
    sleep(2);
    assert_int_equal(na->balance(f, &tc, &b, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_AUTH);
    if (na->refresh_session(f, &tc, &s2, &err) != 0) fail_msg("v2 refresh: %s", err.message);
    assert_non_null(s2.access_token);
    assert_string_not_equal(s2.access_token, s.access_token);
    tc.access_token = s2.access_token;
    tc.cookie = s2.cookie;
    assert_int_equal(na->balance(f, &tc, &b, &err), 0);
    platform_balance_free(&b);
    platform_session_free(&s2);
    platform_session_free(&s);
    relay_stop(&r);

    /* AnyRouter variant whose second sign_in fails with 今日已签到: skipped, not failed. */
    const char *ar[] = {"--platform", "anyrouter", "--signin-repeat-fails", "--challenge", NULL};
    assert_true(relay_start(&r, ar));
    pw.base_url = r.url;
    const struct platform *any = platform_by_id("anyrouter");
    assert_int_equal(any->login(f, &pw, &s, &err), 0);
    struct platform_credentials ac = {.base_url = r.url, .cookie = s.cookie, .user_id = s.user_id};
    struct platform_checkin ck;
    assert_int_equal(any->checkin(f, &ac, &ck, &err), 0);
    assert_false(ck.already_done);
    platform_checkin_free(&ck);
    assert_int_equal(any->checkin(f, &ac, &ck, &err), 0);
    assert_true(ck.already_done);
    platform_checkin_free(&ck);
    platform_session_free(&s);
    relay_stop(&r);

    /* Check-in switched off: UNSUPPORTED with a clear reason. */
    const char *off[] = {"--platform", "new-api", "--no-checkin", NULL};
    assert_true(relay_start(&r, off));
    pw.base_url = r.url;
    assert_int_equal(na->login(f, &pw, &s, &err), 0);
    struct platform_credentials oc = {.base_url = r.url, .cookie = s.cookie, .user_id = s.user_id};
    assert_int_equal(na->checkin(f, &oc, &ck, &err), -1);
    assert_int_equal(err.kind, PLATFORM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "disabled"));
    platform_session_free(&s);
    relay_stop(&r);
    fetch_client_free(f);
}

int main(int argc, char **argv)
{
    (void)argc;
    /* fakerelay is built next to this test. */
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    self[k > 0 ? k : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(fakerelay_path, sizeof fakerelay_path, "%s/fakerelay", k > 0 ? self : ".");
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_api),   cmocka_unit_test(test_new_api_v2),
        cmocka_unit_test(test_anyrouter), cmocka_unit_test(test_one_api),
        cmocka_unit_test(test_one_hub),   cmocka_unit_test(test_done_hub),
        cmocka_unit_test(test_veloera),   cmocka_unit_test(test_sub2api),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
