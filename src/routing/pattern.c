/* pattern.c — exact, glob and bounded PCRE2 route patterns (see pattern.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "routing/pattern.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- per-thread match state ---------- */

struct match_tls {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static _Thread_local struct match_tls *tls;

static void tls_free(void *p)
{
    struct match_tls *t = p;
    if (!t) return;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mc);
    pcre2_jit_stack_free(t->js);
    free(t);
}

static void tls_init_key(void)
{
    pthread_key_create(&tls_key, tls_free);
}

static struct match_tls *thread_state(void)
{
    if (tls) return tls;
    pthread_once(&tls_once, tls_init_key);
    struct match_tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->md = pcre2_match_data_create(1, NULL);
    t->mc = pcre2_match_context_create(NULL);
    t->js = pcre2_jit_stack_create(32 * 1024, 256 * 1024, NULL);
    if (!t->md || !t->mc || !t->js) {
        tls_free(t);
        return NULL;
    }
    pcre2_set_match_limit(t->mc, PATTERN_MATCH_LIMIT);
    pcre2_set_heap_limit(t->mc, PATTERN_HEAP_LIMIT_KB);
    pcre2_set_depth_limit(t->mc, PATTERN_MATCH_LIMIT);
    pcre2_jit_stack_assign(t->mc, NULL, t->js);
    pthread_setspecific(tls_key, t);
    tls = t;
    return t;
}

void pattern_thread_cleanup(void)
{
    if (!tls) return;
    pthread_setspecific(tls_key, NULL);
    tls_free(tls);
    tls = NULL;
}

/* ---------- compile ---------- */

enum pattern_kind pattern_kind_of(const char *text)
{
    if (strncmp(text, "re:", 3) == 0) return PATTERN_REGEX;
    if (strpbrk(text, "*?")) return PATTERN_GLOB;
    return PATTERN_EXACT;
}

/* Recursion, subroutine calls and backtracking-control verbs are refused by text: PCRE2
 * reports backreferences (PCRE2_INFO_BACKREFMAX) but not these. */
static const char *forbidden_construct(const char *re)
{
    for (const char *p = re; *p; p++) {
        if (*p == '\\') {
            char n = p[1];
            if (n == 'g' || n == 'k') return "backreferences and subroutine calls are not allowed";
            if (n) p++;
            continue;
        }
        if (p[0] == '(' && p[1] == '*') return "(* verbs and options are not allowed";
        if (p[0] == '(' && p[1] == '?') {
            char n = p[2];
            if (n == 'R' || (n >= '0' && n <= '9') || n == '&' || n == '+' ||
                (n == '-' && p[3] >= '0' && p[3] <= '9') || (n == 'P' && p[3] == '>') ||
                (n == 'P' && p[3] == '='))
                return "recursion and subroutine calls are not allowed";
        }
    }
    return NULL;
}

static unsigned literal_bytes(const char *text, enum pattern_kind kind)
{
    unsigned n = 0;
    for (const char *p = text; *p; p++) {
        if (kind == PATTERN_GLOB) {
            if (*p != '*' && *p != '?') n++;
        } else if (kind == PATTERN_REGEX) {
            if (*p == '\\' && p[1]) {
                p++; /* an escape: \. counts, \d does not */
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9')))
                    n++;
            } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '/' ||
                       *p == ':') {
                n++;
            }
        } else {
            n++;
        }
    }
    return n;
}

int pattern_compile(struct pattern *p, const char *text, char *err, size_t errcap)
{
    memset(p, 0, sizeof *p);
    if (!text || !*text) {
        snprintf(err, errcap, "the pattern is empty");
        return -1;
    }
    p->kind = pattern_kind_of(text);
    const char *body = p->kind == PATTERN_REGEX ? text + 3 : text;
    size_t len = strlen(body);
    if (len == 0) {
        snprintf(err, errcap, "the regular expression after re: is empty");
        return -1;
    }
    if (len > PATTERN_MAX_LEN) {
        snprintf(err, errcap, "the pattern is %zu bytes long; at most %d are allowed", len,
                 PATTERN_MAX_LEN);
        return -1;
    }
    p->text = strdup(body);
    if (!p->text) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    p->specificity = literal_bytes(body, p->kind);
    if (p->kind != PATTERN_REGEX) return 0;

    const char *why = forbidden_construct(body);
    if (why) {
        snprintf(err, errcap, "%s", why);
        pattern_free(p);
        return -1;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc) pcre2_set_max_pattern_length(cc, PATTERN_MAX_LEN);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)body, len, PCRE2_NEVER_BACKSLASH_C, &ec, &eo, cc);
    pcre2_compile_context_free(cc);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errcap, "invalid regular expression at offset %zu: %s", (size_t)eo,
                 (const char *)msg);
        pattern_free(p);
        return -1;
    }
    uint32_t backrefs = 0;
    pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backrefs);
    if (backrefs > 0) {
        snprintf(err, errcap, "backreferences are not allowed");
        pcre2_code_free(code);
        pattern_free(p);
        return -1;
    }
    /* JIT when the platform has it; the interpreter (with the same limits) otherwise. */
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    p->code = code;
    return 0;
}

void pattern_free(struct pattern *p)
{
    if (p->code) pcre2_code_free(p->code);
    free(p->text);
    memset(p, 0, sizeof *p);
}

/* ---------- match ---------- */

bool glob_match(const char *glob, struct slice s)
{
    /* Classic two-pointer matcher: remembers the last `*` and backtracks only to it. */
    size_t gi = 0, si = 0, star = (size_t)-1, mark = 0;
    size_t gl = strlen(glob);
    while (si < s.n) {
        if (gi < gl && (glob[gi] == '?' || glob[gi] == s.p[si])) {
            gi++;
            si++;
        } else if (gi < gl && glob[gi] == '*') {
            star = gi++;
            mark = si;
        } else if (star != (size_t)-1) {
            gi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (gi < gl && glob[gi] == '*') gi++;
    return gi == gl;
}

enum pattern_result pattern_match(const struct pattern *p, struct slice model)
{
    switch (p->kind) {
    case PATTERN_EXACT:
        return strlen(p->text) == model.n && memcmp(p->text, model.p, model.n) == 0
                   ? PATTERN_MATCH
                   : PATTERN_NO_MATCH;
    case PATTERN_GLOB:
        return glob_match(p->text, model) ? PATTERN_MATCH : PATTERN_NO_MATCH;
    case PATTERN_REGEX:
        break;
    }
    if (!p->code) return PATTERN_ERR_OTHER;
    if (model.n > PATTERN_SUBJECT_MAX) return PATTERN_NO_MATCH;
    struct match_tls *t = thread_state();
    if (!t) return PATTERN_ERR_OTHER;
    int rc =
        pcre2_match(p->code, (PCRE2_SPTR)(model.p ? model.p : ""), model.n, 0, 0, t->md, t->mc);
    if (rc >= 0) return PATTERN_MATCH;
    if (rc == PCRE2_ERROR_NOMATCH) return PATTERN_NO_MATCH;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT)
        return PATTERN_ERR_LIMIT;
    return PATTERN_ERR_OTHER;
}
