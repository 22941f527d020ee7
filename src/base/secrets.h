/* secrets.h — secrets at rest (libsodium): the master key, sealing and opening upstream
 * credentials, constant-time comparison, hashing of downstream keys, and masking for
 * display.
 *
 * Key: derived once at start from ACCOUNT_CREDENTIAL_SECRET with Argon2id
 * (crypto_pwhash, interactive limits) and a per-database salt, unless the secret is
 * itself 32 random bytes in standard base64 (then it is the key). A human-chosen secret
 * through a fast hash could be brute-forced offline by anyone holding the database.
 *
 * Sealed format: key_id (1 byte) || nonce (24 bytes) || XChaCha20-Poly1305 ciphertext
 * with its 16-byte tag. The associated data binds the value to (table, column, row id),
 * so a ciphertext copied into another row or column does not open. The key id lets a
 * later `rotate-secret` tell old from new ciphertexts.
 *
 * Thread-safety: a `secrets_t` is immutable after secrets_derive and may be shared by
 * every thread. Call secrets_init (sodium_init) once before threads start. */
#ifndef METARELAY_BASE_SECRETS_H
#define METARELAY_BASE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

typedef struct secrets secrets_t;

#define SECRETS_SALT_BYTES  16u /* crypto_pwhash_SALTBYTES */
#define SECRETS_KEY_ID      1u  /* id of keys derived by this version */
#define SECRETS_NONCE_BYTES 24u
#define SECRETS_TAG_BYTES   16u
/* Bytes a sealed value adds to its plaintext. */
#define SECRETS_OVERHEAD   (1u + SECRETS_NONCE_BYTES + SECRETS_TAG_BYTES)
#define SECRETS_HASH_BYTES 32u /* BLAKE2b-256 */

/* Initialises libsodium; idempotent. 0, or -1 when libsodium cannot start. */
int secrets_init(void);

/* Fills `salt` with random bytes (a new database's KDF salt). */
void secrets_random_salt(uint8_t salt[SECRETS_SALT_BYTES]);

/* Derives the master key from `secret` (non-empty) and `salt`. Slow on purpose (Argon2id,
 * ~64 MiB): call once at start. Caller owns the result (secrets_free). NULL with *err
 * set to a malloc'ed message (caller frees) on failure. */
secrets_t *secrets_derive(const char *secret, const uint8_t salt[SECRETS_SALT_BYTES], char **err);
/* Wipes and frees the key. NULL is a no-op. */
void secrets_free(secrets_t *k);

/* Seals `plain` (n bytes) for (table, column, row_id), appending SECRETS_OVERHEAD + n
 * bytes to `out`. 0, or -1 when out of memory (out unchanged in length). */
int secrets_seal(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                 const void *plain, size_t n, struct buf *out);

/* Opens a sealed value for (table, column, row_id), appending the plaintext to `out`
 * (NUL-terminated past out->n, see buf_nul). 0 on success; -1 when the value is
 * malformed, sealed by another key, tampered with, or bound to another row/column —
 * then `err` (may be NULL) receives a readable reason and out->n is unchanged (the
 * buffer may have grown: release it as usual). */
int secrets_open(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                 const void *sealed, size_t n, struct buf *out, char err[128]);

/* Same as secrets_seal/secrets_open with the sealed bytes as standard base64 text
 * (for stores that keep secrets in text columns). seal appends base64 to `out`. */
int secrets_seal_b64(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                     const void *plain, size_t n, struct buf *out);
int secrets_open_b64(const secrets_t *k, const char *table, const char *column, int64_t row_id,
                     struct slice b64, struct buf *out, char err[128]);

/* Constant-time equality of two n-byte values (sodium_memcmp): use for every comparison
 * of a secret with client input. */
bool secrets_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings; the length difference is not hidden (lengths
 * of tokens are not secret), the content is. */
bool secrets_str_equal(struct slice a, struct slice b);

/* Overwrites n bytes with zeros in a way the compiler cannot drop (sodium_memzero): for
 * plaintext secrets before their memory is freed. NULL is a no-op. */
void secrets_wipe(void *p, size_t n);
/* Wipes a NUL-terminated string and frees it. NULL is a no-op. */
void secrets_free_str(char *s);

/* BLAKE2b-256 of `data` (downstream keys are stored as this hash, never in clear). */
void secrets_hash(const void *data, size_t n, uint8_t out[SECRETS_HASH_BYTES]);
/* Same, as 64 lowercase hex characters plus NUL. */
void secrets_hash_hex(const void *data, size_t n, char out[2 * SECRETS_HASH_BYTES + 1]);

/* Writes a display form of a key into `out` (always NUL-terminated; `cap` ≥ 16 holds every
 * mask): the first 5 and last 4 bytes around "…" ("sk-ab…wxyz") for keys of 20 bytes or
 * more, the first 2 and last 2 for 12–19 bytes, and just "…" for shorter ones, so never
 * more than half of a key shows. NULL or "" gives "". Returns `out`. */
char *secrets_mask(const char *key, char *out, size_t cap);

#endif
