/* secrets.c — secrets at rest with libsodium (see secrets.h for the format and why). */
#include "base/secrets.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SECRETS_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt size");
_Static_assert(SECRETS_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(SECRETS_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key");

struct secrets {
    uint8_t key_id;
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

/* Longest table or column name accepted in the associated data. */
#define AD_NAME_MAX 64

int secrets_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void secrets_random_salt(uint8_t salt[SECRETS_SALT_BYTES])
{
    randombytes_buf(salt, SECRETS_SALT_BYTES);
}

static char *dup_err(const char *msg)
{
    return strdup(msg);
}

secrets_t *secrets_derive(const char *secret, const uint8_t salt[SECRETS_SALT_BYTES], char **err)
{
    if (err) *err = NULL;
    if (secrets_init() != 0) {
        if (err) *err = dup_err("libsodium failed to initialise");
        return NULL;
    }
    if (!secret || !*secret) {
        if (err) *err = dup_err("the credential secret is empty");
        return NULL;
    }
    /* sodium_malloc: guard pages, mlock'ed, so the key is never swapped out. */
    secrets_t *k = sodium_malloc(sizeof *k);
    if (!k) {
        if (err) *err = dup_err("out of memory for the secrets key");
        return NULL;
    }
    k->key_id = SECRETS_KEY_ID;

    /* A secret that is exactly 32 random bytes in base64 is used as the key directly:
     * there is nothing to stretch, and the start stays fast. */
    size_t slen = strlen(secret);
    size_t bin_len = 0;
    const char *end = NULL;
    if (slen == 44 &&
        sodium_base642bin(k->key, sizeof k->key, secret, slen, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        bin_len == sizeof k->key && end == secret + slen)
        return k;

    if (crypto_pwhash(k->key, sizeof k->key, secret, slen, salt, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                      crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_free(k);
        if (err) *err = dup_err("Argon2id key derivation failed (out of memory?)");
        return NULL;
    }
    return k;
}

void secrets_free(secrets_t *k)
{
    if (k) sodium_free(k); /* sodium_free zeroes the memory first */
}

/* Associated data: table NUL column NUL row_id (8 bytes, little endian) key_id. Returns
 * its length, or 0 when a name is missing or too long. */
static size_t build_ad(uint8_t *ad, const char *table, const char *column, int64_t row_id,
                       uint8_t key_id)
{
    if (!table || !column) return 0;
    size_t tl = strlen(table), cl = strlen(column);
    if (tl == 0 || cl == 0 || tl > AD_NAME_MAX || cl > AD_NAME_MAX) return 0;
    size_t n = 0;
    memcpy(ad + n, table, tl), n += tl;
    ad[n++] = 0;
    memcpy(ad + n, column, cl), n += cl;
    ad[n++] = 0;
    uint64_t id = (uint64_t)row_id;
    for (int i = 0; i < 8; i++) ad[n++] = (uint8_t)(id >> (8 * i));
    ad[n++] = key_id;
    return n;
}

#define AD_MAX (2 * AD_NAME_MAX + 2 + 8 + 1)

int secrets_seal(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                 const void *plain, size_t n, struct buf *out)
{
    uint8_t ad[AD_MAX];
    size_t adl = build_ad(ad, table, column, row_id, k->key_id);
    if (!adl) return -1;
    if (n > SIZE_MAX - SECRETS_OVERHEAD - 1) return -1;
    if (!buf_reserve(out, SECRETS_OVERHEAD + n)) return -1;
    uint8_t *p = (uint8_t *)out->p + out->n;
    p[0] = k->key_id;
    randombytes_buf(p + 1, SECRETS_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(p + 1 + SECRETS_NONCE_BYTES, &clen, plain, n, ad,
                                               adl, NULL, p + 1, k->key);
    out->n += 1 + SECRETS_NONCE_BYTES + (size_t)clen;
    return 0;
}

static void set_err(char err[128], const char *msg)
{
    if (err) snprintf(err, 128, "%s", msg);
}

int secrets_open(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                 const void *sealed, size_t n, struct buf *out, char err[128])
{
    const uint8_t *s = sealed;
    if (!s || n < SECRETS_OVERHEAD) {
        set_err(err, "sealed value is truncated");
        return -1;
    }
    if (s[0] != k->key_id) {
        if (err)
            snprintf(err, 128, "sealed with key id %u, but the loaded key has id %u", s[0],
                     k->key_id);
        return -1;
    }
    uint8_t ad[AD_MAX];
    size_t adl = build_ad(ad, table, column, row_id, k->key_id);
    if (!adl) {
        set_err(err, "invalid table or column name");
        return -1;
    }
    size_t plen = n - SECRETS_OVERHEAD;
    if (!buf_reserve(out, plen + 1)) {
        set_err(err, "out of memory");
        return -1;
    }
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (uint8_t *)out->p + out->n, &mlen, NULL, s + 1 + SECRETS_NONCE_BYTES,
            n - 1 - SECRETS_NONCE_BYTES, ad, adl, s + 1, k->key) != 0) {
        set_err(err, "authentication failed: wrong credential secret, or the value was "
                     "altered or belongs to another row");
        return -1;
    }
    out->n += (size_t)mlen;
    buf_nul(out);
    return 0;
}

int secrets_seal_b64(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                     const void *plain, size_t n, struct buf *out)
{
    struct buf bin = BUF_INIT;
    if (secrets_seal(k, table, column, row_id, plain, n, &bin) != 0) {
        buf_free(&bin);
        return -1;
    }
    size_t b64len = sodium_base64_ENCODED_LEN(bin.n, sodium_base64_VARIANT_ORIGINAL);
    int rc = -1;
    if (buf_reserve(out, b64len)) {
        sodium_bin2base64(out->p + out->n, b64len, (const uint8_t *)bin.p, bin.n,
                          sodium_base64_VARIANT_ORIGINAL);
        out->n += b64len - 1; /* without the NUL, which stays past n */
        rc = 0;
    }
    sodium_memzero(bin.p, bin.n);
    buf_free(&bin);
    return rc;
}

int secrets_open_b64(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                     struct slice b64, struct buf *out, char err[128])
{
    size_t cap = b64.n / 4 * 3 + 3;
    uint8_t *bin = malloc(cap ? cap : 1);
    if (!bin) {
        set_err(err, "out of memory");
        return -1;
    }
    size_t bin_len = 0;
    const char *end = NULL;
    int rc = -1;
    if (sodium_base642bin(bin, cap, b64.p, b64.n, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64.p + b64.n)
        set_err(err, "sealed value is not valid base64");
    else
        rc = secrets_open(k, table, column, row_id, bin, bin_len, out, err);
    free(bin);
    return rc;
}

bool secrets_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

bool secrets_str_equal(struct slice a, struct slice b)
{
    if (a.n != b.n) return false;
    if (a.n == 0) return true;
    return sodium_memcmp(a.p, b.p, a.n) == 0;
}

void secrets_wipe(void *p, size_t n)
{
    if (p && n) sodium_memzero(p, n);
}

void secrets_free_str(char *s)
{
    if (!s) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

void secrets_hash(const void *data, size_t n, uint8_t out[SECRETS_HASH_BYTES])
{
    crypto_generichash(out, SECRETS_HASH_BYTES, data, n, NULL, 0);
}

void secrets_hash_hex(const void *data, size_t n, char out[2 * SECRETS_HASH_BYTES + 1])
{
    uint8_t h[SECRETS_HASH_BYTES];
    secrets_hash(data, n, h);
    sodium_bin2hex(out, 2 * SECRETS_HASH_BYTES + 1, h, sizeof h);
}

char *secrets_mask(const char *key, char *out, size_t cap)
{
    static const char ell[] = "\xe2\x80\xa6"; /* U+2026 HORIZONTAL ELLIPSIS */
    if (!out || cap == 0) return out;
    out[0] = 0;
    if (!key || !*key) return out;
    size_t n = strlen(key);
    int head = 0, tail = 0;
    if (n >= 20)
        head = 5, tail = 4;
    else if (n >= 12)
        head = 2, tail = 2;
    snprintf(out, cap, "%.*s%s%.*s", head, key, ell, tail, key + n - (size_t)tail);
    return out;
}
