/* totp.c — RFC 6238 one-time codes (HMAC-SHA1, 30-second steps) for the 2FA logins of
 * New API and Sub2API, and the RFC 4648 base32 decoding of the secrets users paste.
 * HMAC comes from OpenSSL's libcrypto (libsodium has no SHA-1). */
#include "platforms/common.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int pf_base32_decode(const char *s, unsigned char *out, size_t cap)
{
    if (!s) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        int ch = toupper((unsigned char)*s);
        int v;
        if (ch == ' ' || ch == '-' || ch == '=' || ch == '\t') continue;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= '2' && ch <= '7')
            v = ch - '2' + 26;
        else
            return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (int)n;
}

int pf_totp_raw(const unsigned char *key, size_t key_len, int64_t t, int digits, char *out,
                size_t cap)
{
    if (!key || key_len == 0 || digits < 6 || digits > 8 || cap < (size_t)digits + 1 || t < 0)
        return -1;
    uint64_t counter = (uint64_t)t / 30;
    unsigned char msg[8];
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof msg, mac, &mac_len) || mac_len < 20)
        return -1;
    unsigned off = mac[mac_len - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++) mod *= 10;
    snprintf(out, cap, "%0*u", digits, bin % mod);
    return 0;
}

int pf_totp(const char *secret_b32, int64_t t, char out[7])
{
    unsigned char key[128];
    int n = pf_base32_decode(secret_b32, key, sizeof key);
    if (n <= 0) return -1;
    int rc = pf_totp_raw(key, (size_t)n, t, 6, out, 7);
    memset(key, 0, sizeof key);
    return rc;
}
