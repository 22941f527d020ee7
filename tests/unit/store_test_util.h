/* store_test_util.h — shared by the store and admin tests: a fresh temporary DATA_DIR,
 * removed afterwards, and reading a file's raw bytes. */
#ifndef METARELAY_TESTS_STORE_TEST_UTIL_H
#define METARELAY_TESTS_STORE_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline char *tmpdir_make(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/metarelay-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline int tmpdir_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(path);
}

static inline void tmpdir_remove(char *dir)
{
    if (!dir) return;
    nftw(dir, tmpdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* The whole file in a malloc'ed buffer (NULL when it does not exist). */
static inline char *file_read_all(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *np = realloc(p, cap *= 2);
            if (!np) free(p);
            p = np;
        }
    }
    fclose(f);
    *n = len;
    return p;
}

#endif
