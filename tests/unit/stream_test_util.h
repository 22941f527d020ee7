/* stream_test_util.h — helpers shared by the stream conversion tests: a minimal SSE
 * splitter for test files and outputs, conversion contexts filled by hand, and an event
 * list comparison (event name + JSON data compared with json_equal, [DONE] by position). */
#ifndef METARELAY_TESTS_STREAM_TEST_UTIL_H
#define METARELAY_TESTS_STREAM_TEST_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "base/slice.h"
#include "protocol/convert.h"

#define TEST_CLOCK 1767225600L

struct sse_ev {
    char *name; /* NULL when the event had no `event:` line */
    char *data;
};

struct sse_list {
    struct sse_ev *v;
    size_t n, cap;
};

static inline void sse_list_add(struct sse_list *l, const char *name, size_t name_n,
                                const char *data, size_t data_n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].name = name ? strndup(name, name_n) : NULL;
    l->v[l->n].data = strndup(data, data_n);
    l->n++;
}

/* Splits SSE text into events (blank-line separated; `event:` and `data:` lines, data
 * lines joined with \n; comments skipped). */
static inline void sse_list_parse(const char *p, size_t n, struct sse_list *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < n) {
        const char *name = NULL;
        size_t name_n = 0;
        char *data = NULL;
        size_t data_n = 0;
        bool any = false;
        while (i < n && p[i] != '\n') {
            size_t e = i;
            while (e < n && p[e] != '\n') e++;
            const char *line = p + i;
            size_t len = e - i;
            if (len >= 7 && !memcmp(line, "event: ", 7)) {
                name = line + 7;
                name_n = len - 7;
                any = true;
            } else if (len >= 5 && !memcmp(line, "data:", 5)) {
                size_t off = (len >= 6 && line[5] == ' ') ? 6 : 5;
                data = realloc(data, data_n + (len - off) + 2);
                if (any && data_n) data[data_n++] = '\n';
                memcpy(data + data_n, line + off, len - off);
                data_n += len - off;
                any = true;
            }
            i = e < n ? e + 1 : e;
        }
        if (any) sse_list_add(out, name, name_n, data ? data : "", data_n);
        free(data);
        while (i < n && p[i] == '\n') i++;
    }
}

static inline void sse_list_free(struct sse_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].data);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Reads a file relative to the source tree (caller frees). */
static inline char *load_file(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", METARELAY_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (len) *len = 0;
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)sz + 1);
    size_t got = fread(s, 1, (size_t)sz, f);
    fclose(f);
    s[got] = 0;
    if (len) *len = got;
    return s;
}

static struct ir_profile test_profile;

/* A conversion context filled by hand (the request half owns conv_new). */
static inline struct conv *test_conv(pool_t *pool, enum api_format client, enum api_format upstream,
                                     const struct ir_request *req, const char *client_model)
{
    ir_profile_defaults(&test_profile);
    struct conv *cv = pool_calloc(pool, sizeof *cv);
    cv->pool = pool;
    cv->client = client;
    cv->upstream = upstream;
    cv->profile = &test_profile;
    cv->req = req;
    cv->client_model = slice_from(client_model);
    cv->created = TEST_CLOCK;
    ir_usage_unknown(&cv->usage);
    return cv;
}

/* Feeds every event; returns the first non-zero return code (and stops), else 0. */
static inline int feed_events(struct conv *cv, const struct sse_list *in, size_t from, size_t to,
                              struct buf *out)
{
    for (size_t i = from; i < to; i++) {
        struct slice name = in->v[i].name ? slice_from(in->v[i].name) : SLICE_NULL;
        int rc = conv_stream_event(cv, name, slice_from(in->v[i].data), out);
        if (rc != 0) return rc;
    }
    return 0;
}

static inline void print_events(const char *title, const struct sse_list *l)
{
    fprintf(stderr, "--- %s (%zu events)\n", title, l->n);
    for (size_t i = 0; i < l->n; i++)
        fprintf(stderr, "[%zu] %s | %s\n", i, l->v[i].name ? l->v[i].name : "-", l->v[i].data);
}

/* True when the two event lists match: same names, JSON data equal (json_equal), and
 * non-JSON data ([DONE]) byte-equal at the same position. Prints both on mismatch. */
static inline bool sse_lists_equal(const struct sse_list *got, const struct sse_list *want)
{
    bool ok = got->n == want->n;
    for (size_t i = 0; ok && i < got->n; i++) {
        const struct sse_ev *a = &got->v[i], *b = &want->v[i];
        if ((a->name == NULL) != (b->name == NULL) || (a->name && strcmp(a->name, b->name))) {
            ok = false;
            fprintf(stderr, "event %zu: name differs\n", i);
            break;
        }
        json_t *ja = json_loads(a->data, JSON_REJECT_DUPLICATES, NULL);
        json_t *jb = json_loads(b->data, JSON_REJECT_DUPLICATES, NULL);
        if (ja && jb)
            ok = json_equal(ja, jb);
        else if (!ja && !jb)
            ok = strcmp(a->data, b->data) == 0;
        else
            ok = false;
        if (!ok) fprintf(stderr, "event %zu differs:\n got  %s\n want %s\n", i, a->data, b->data);
        json_decref(ja);
        json_decref(jb);
    }
    if (!ok) {
        print_events("got", got);
        print_events("want", want);
    }
    return ok;
}

#endif
