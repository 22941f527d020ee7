/* test_base_secrets.c — secrets at rest: sealing round-trips; tampering, another row or
 * column, another key and a foreign key id all fail cleanly; hashing, constant-time
 * comparison and masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/secrets.h"

static const uint8_t SALT[SECRETS_SALT_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                 9, 10, 11, 12, 13, 14, 15, 16};
static const char TOKEN[] = "sk-abcdefghijklmnopqrstuvwxyz0123456789";

struct keys {
    secrets_t *k1, *k2;
};

static int setup(void **state)
{
    static struct keys keys;
    char *err = NULL;
    keys.k1 = secrets_derive("correct horse battery staple", SALT, &err);
    assert_null(err);
    keys.k2 = secrets_derive("another secret", SALT, &err);
    assert_non_null(keys.k1);
    assert_non_null(keys.k2);
    *state = &keys;
    return 0;
}

static int teardown(void **state)
{
    struct keys *keys = *state;
    secrets_free(keys->k1);
    secrets_free(keys->k2);
    return 0;
}

static void seal(const secrets_t *k, int64_t row, struct buf *out)
{
    assert_int_equal(secrets_seal(k, "accounts", "api_token", row, TOKEN, strlen(TOKEN), out), 0);
}

static void test_round_trip(void **state)
{
    struct keys *keys = *state;
    struct buf sealed = BUF_INIT, plain = BUF_INIT;
    seal(keys->k1, 42, &sealed);
    assert_int_equal(sealed.n, strlen(TOKEN) + SECRETS_OVERHEAD);
    assert_int_equal((uint8_t)sealed.p[0], SECRETS_KEY_ID);
    assert_null(memmem(sealed.p, sealed.n, "abcdefghij", 10)); /* not in clear */
    char err[128] = "";
    assert_int_equal(
        secrets_open(keys->k1, "accounts", "api_token", 42, sealed.p, sealed.n, &plain, err), 0);
    assert_int_equal(plain.n, strlen(TOKEN));
    assert_string_equal(plain.p, TOKEN);

    /* Two seals of the same value differ (random nonce). */
    struct buf again = BUF_INIT;
    seal(keys->k1, 42, &again);
    assert_true(again.n == sealed.n && memcmp(again.p, sealed.p, sealed.n) != 0);

    /* Empty plaintext works too. */
    struct buf e = BUF_INIT, ep = BUF_INIT;
    assert_int_equal(secrets_seal(keys->k1, "t", "c", 1, "", 0, &e), 0);
    assert_int_equal(secrets_open(keys->k1, "t", "c", 1, e.p, e.n, &ep, NULL), 0);
    assert_int_equal(ep.n, 0);
    buf_free(&e), buf_free(&ep), buf_free(&again), buf_free(&sealed), buf_free(&plain);
}

static void expect_open_fails(const secrets_t *k, const char *table, const char *col, int64_t row,
                              const struct buf *sealed, const char *why)
{
    struct buf plain = BUF_INIT;
    char err[128] = "";
    assert_int_equal(secrets_open(k, table, col, row, sealed->p, sealed->n, &plain, err), -1);
    assert_int_equal(plain.n, 0);
    assert_non_null(strstr(err, why));
    buf_free(&plain);
}

static void test_tamper_fails(void **state)
{
    struct keys *keys = *state;
    struct buf sealed = BUF_INIT;
    seal(keys->k1, 7, &sealed);
    for (size_t i = 1; i < sealed.n; i += 5) { /* nonce, ciphertext and tag bytes */
        sealed.p[i] ^= 0x01;
        expect_open_fails(keys->k1, "accounts", "api_token", 7, &sealed, "authentication failed");
        sealed.p[i] ^= 0x01;
    }
    /* Truncated values. */
    struct buf shortv = {sealed.p, SECRETS_OVERHEAD - 1, 0};
    expect_open_fails(keys->k1, "accounts", "api_token", 7, &shortv, "truncated");
    struct buf cut = {sealed.p, sealed.n - 1, 0};
    expect_open_fails(keys->k1, "accounts", "api_token", 7, &cut, "authentication failed");
    buf_free(&sealed);
}

static void test_wrong_ad_fails(void **state)
{
    struct keys *keys = *state;
    struct buf sealed = BUF_INIT;
    seal(keys->k1, 7, &sealed);
    expect_open_fails(keys->k1, "accounts", "api_token", 8, &sealed, "another row");
    expect_open_fails(keys->k1, "accounts", "access_token", 7, &sealed, "another row");
    expect_open_fails(keys->k1, "sites", "api_token", 7, &sealed, "another row");
    /* The separator matters: ("ab","c") is not ("a","bc"). */
    struct buf s2 = BUF_INIT;
    assert_int_equal(secrets_seal(keys->k1, "ab", "c", 1, "x", 1, &s2), 0);
    expect_open_fails(keys->k1, "a", "bc", 1, &s2, "authentication failed");
    buf_free(&s2);
    buf_free(&sealed);
}

static void test_wrong_key_fails(void **state)
{
    struct keys *keys = *state;
    struct buf sealed = BUF_INIT;
    seal(keys->k1, 7, &sealed);
    expect_open_fails(keys->k2, "accounts", "api_token", 7, &sealed, "wrong credential secret");
    /* Same secret, other salt: another key. */
    uint8_t salt2[SECRETS_SALT_BYTES];
    secrets_random_salt(salt2);
    char *err = NULL;
    secrets_t *k3 = secrets_derive("correct horse battery staple", salt2, &err);
    assert_non_null(k3);
    expect_open_fails(k3, "accounts", "api_token", 7, &sealed, "authentication failed");
    secrets_free(k3);
    /* A value marked with another key id is refused with a reason. */
    sealed.p[0] = 9;
    expect_open_fails(keys->k1, "accounts", "api_token", 7, &sealed, "key id 9");
    buf_free(&sealed);
}

static void test_derive_errors_and_raw_key(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(secrets_derive("", SALT, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "empty"));
    free(err);
    /* 32 random bytes in base64 are used as the key, whatever the salt. */
    const char *raw = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    uint8_t other[SECRETS_SALT_BYTES] = {0};
    secrets_t *a = secrets_derive(raw, SALT, &err);
    secrets_t *b = secrets_derive(raw, other, &err);
    assert_non_null(a);
    assert_non_null(b);
    struct buf sealed = BUF_INIT, plain = BUF_INIT;
    seal(a, 1, &sealed);
    assert_int_equal(secrets_open(b, "accounts", "api_token", 1, sealed.p, sealed.n, &plain, NULL),
                     0);
    assert_string_equal(plain.p, TOKEN);
    buf_free(&sealed), buf_free(&plain);
    secrets_free(a);
    secrets_free(b);
}

static void test_base64_form(void **state)
{
    struct keys *keys = *state;
    struct buf text = BUF_INIT, plain = BUF_INIT;
    assert_int_equal(secrets_seal_b64(keys->k1, "t", "c", 3, TOKEN, strlen(TOKEN), &text), 0);
    assert_int_equal(strlen(text.p), text.n);
    assert_int_equal(secrets_open_b64(keys->k1, "t", "c", 3, buf_slice(&text), &plain, NULL), 0);
    assert_string_equal(plain.p, TOKEN);
    char err[128] = "";
    struct buf p2 = BUF_INIT;
    assert_int_equal(secrets_open_b64(keys->k1, "t", "c", 3, SLICE_LIT("not base64 !!"), &p2, err),
                     -1);
    assert_non_null(strstr(err, "base64"));
    assert_int_equal(secrets_open_b64(keys->k1, "t", "c", 4, buf_slice(&text), &p2, err), -1);
    buf_free(&text), buf_free(&plain), buf_free(&p2);
}

static void test_compare_hash_mask(void **state)
{
    (void)state;
    assert_true(secrets_equal("abcd", "abcd", 4));
    assert_false(secrets_equal("abcd", "abce", 4));
    assert_true(secrets_str_equal(SLICE_LIT("token"), SLICE_LIT("token")));
    assert_false(secrets_str_equal(SLICE_LIT("token"), SLICE_LIT("token2")));
    assert_false(secrets_str_equal(SLICE_LIT("tokeN"), SLICE_LIT("token")));

    char hex[2 * SECRETS_HASH_BYTES + 1];
    secrets_hash_hex("abc", 3, hex);
    /* BLAKE2b-256("abc"), RFC 7693 test vectors family. */
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    uint8_t h1[SECRETS_HASH_BYTES], h2[SECRETS_HASH_BYTES];
    secrets_hash("abd", 3, h1);
    secrets_hash("abc", 3, h2);
    assert_memory_not_equal(h1, h2, sizeof h1);

    char m[32];
    assert_string_equal(secrets_mask("sk-abcdefghijklmnopqrstuvwxyz", m, sizeof m),
                        "sk-ab\xe2\x80\xa6wxyz");
    assert_string_equal(secrets_mask("abcdefghijkl", m, sizeof m), "ab\xe2\x80\xa6kl");
    assert_string_equal(secrets_mask("short", m, sizeof m), "\xe2\x80\xa6");
    assert_string_equal(secrets_mask("", m, sizeof m), "");
    assert_string_equal(secrets_mask(NULL, m, sizeof m), "");
    char tiny[4];
    secrets_mask("sk-abcdefghijklmnopqrstuvwxyz", tiny, sizeof tiny);
    assert_true(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    assert_int_equal(secrets_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper_fails),
        cmocka_unit_test(test_wrong_ad_fails),
        cmocka_unit_test(test_wrong_key_fails),
        cmocka_unit_test(test_derive_errors_and_raw_key),
        cmocka_unit_test(test_base64_form),
        cmocka_unit_test(test_compare_hash_mask),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
