/* acw_challenge.h — the Aliyun WAF `acw_sc__v2` challenge in front of AnyRouter-like
 * sites, solved natively (no JavaScript engine). Used by the platform adapters (management
 * API) and by the data plane (relay requests meet the same challenge). Pure functions. */
#ifndef METARELAY_BASE_ACW_CHALLENGE_H
#define METARELAY_BASE_ACW_CHALLENGE_H

#include <stdbool.h>
#include <stddef.h>

/* Whether a body looks like a challenge page (`var arg1=`). */
bool acw_challenge_detect(const char *body, size_t n);
/* Computes the acw_sc__v2 cookie value (40 lower-case hex + NUL) from a challenge page:
 * arg1 parsed from `var arg1='…'`, the permutation parsed from the page's `m=[…]` table
 * when present and valid, else the known table; XOR with the known key. 0, or -1 when
 * the page has no usable arg1. */
int acw_challenge_solve(const char *html, size_t n, char out[41]);
/* The same from arg1 itself (40 hex) and an optional permutation (40 entries, 1-based). */
int acw_challenge_compute(const char *arg1, const int *perm, char out[41]);

#endif
