/* acw_challenge.c — solves the Aliyun WAF `acw_sc__v2` challenge in front of AnyRouter-like New API
 * sites, natively (no JavaScript engine). The challenge page holds `var arg1='<40 hex>'`
 * and an obfuscated script; the browser's answer is: permute arg1 by a 40-entry table
 * (output position z takes arg1[m[z]-1]), then XOR the result two hex digits at a time
 * with a fixed 40-hex key. The table is read from the page's `m=[…]` literal when one is
 * there (it may rotate); otherwise, and for the key, the values known today are used. */
#include "base/acw_challenge.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const int KNOWN_PERM[40] = {15, 35, 29, 24, 33, 16, 1,  38, 10, 9,  19, 31, 40, 27,
                                   22, 23, 25, 13, 6,  11, 39, 18, 20, 8,  14, 21, 32, 26,
                                   2,  30, 7,  4,  17, 5,  3,  28, 34, 37, 12, 36};
static const char KNOWN_KEY[] = "3000176000856006061501533003690027800375";

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* A permutation of 1..40. */
static bool valid_perm(const int *perm)
{
    bool seen[41] = {false};
    for (int i = 0; i < 40; i++) {
        if (perm[i] < 1 || perm[i] > 40 || seen[perm[i]]) return false;
        seen[perm[i]] = true;
    }
    return true;
}

int acw_challenge_compute(const char *arg1, const int *perm, char out[41])
{
    if (!arg1 || strlen(arg1) != 40) return -1;
    for (int i = 0; i < 40; i++)
        if (hexval(arg1[i]) < 0) return -1;
    if (!perm || !valid_perm(perm)) perm = KNOWN_PERM;
    char permuted[40];
    for (int z = 0; z < 40; z++) permuted[z] = arg1[perm[z] - 1];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 40; i += 2) {
        int a = hexval(permuted[i]) << 4 | hexval(permuted[i + 1]);
        int k = hexval(KNOWN_KEY[i]) << 4 | hexval(KNOWN_KEY[i + 1]);
        int x = a ^ k;
        out[i] = hex[x >> 4];
        out[i + 1] = hex[x & 15];
    }
    out[40] = '\0';
    return 0;
}

/* Finds `var arg1='…'` (or "…", optional spaces) and copies 40 hex digits. */
static bool find_arg1(const char *p, size_t n, char arg1[41])
{
    const char *end = p + n;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), "arg1", 4);
        if (!hit) return false;
        const char *q = hit + 4;
        while (q < end && (*q == ' ' || *q == '\t')) q++;
        if (q < end && *q == '=') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t')) q++;
            if (q < end && (*q == '\'' || *q == '"')) {
                char quote = *q++;
                size_t k = 0;
                while (q + k < end && k < 41 && hexval(q[k]) >= 0) k++;
                if (k == 40 && q + k < end && q[k] == quote) {
                    memcpy(arg1, q, 40);
                    arg1[40] = '\0';
                    return true;
                }
            }
        }
        p = hit + 4;
    }
    return false;
}

/* Finds a `m=[…]` array literal of exactly 40 integers (decimal or 0x hex). */
static bool find_perm(const char *p, size_t n, int perm[40])
{
    const char *end = p + n;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), "m=[", 3);
        if (!hit) return false;
        const char *q = hit + 3;
        int k = 0;
        bool ok = true;
        while (q < end && *q != ']') {
            while (q < end && (*q == ' ' || *q == ',' || *q == '\n')) q++;
            if (q < end && *q == ']') break;
            if (k == 40 || q >= end || !isdigit((unsigned char)*q)) {
                ok = false;
                break;
            }
            char tmp[16];
            size_t t = 0;
            while (q < end && t < sizeof tmp - 1 && isalnum((unsigned char)*q)) tmp[t++] = *q++;
            tmp[t] = '\0';
            char *e;
            long v = strtol(tmp, &e, 0);
            if (*e || v < 1 || v > 40) {
                ok = false;
                break;
            }
            perm[k++] = (int)v;
        }
        if (ok && k == 40 && valid_perm(perm)) return true;
        p = hit + 3;
    }
    return false;
}

int acw_challenge_solve(const char *html, size_t n, char out[41])
{
    char arg1[41];
    if (!html || !find_arg1(html, n, arg1)) return -1;
    int perm[40];
    bool have_perm = find_perm(html, n, perm);
    return acw_challenge_compute(arg1, have_perm ? perm : NULL, out);
}

bool acw_challenge_detect(const char *body, size_t n)
{
    return body && n && memmem(body, n, "arg1=", 5) != NULL && memmem(body, n, "var ", 4) != NULL;
}
