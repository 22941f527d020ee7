/* pattern.h — route patterns: exact names, globs (`*` any run, `?` one byte) and `re:`
 * regular expressions (PCRE2).
 *
 * `re:` patterns are bounded (DESIGN.md §2, design review finding 11): the expression is at
 * most 256 bytes, is compiled once (per snapshot) with JIT, may not use backreferences or
 * recursion/subroutine calls, and every match runs with a match limit of 10,000 and a heap
 * limit of 1 MiB. A limit hit is reported as PATTERN_ERR_LIMIT, never as "no match". The
 * match data and JIT stack are per thread (allocated on a thread's first regex match and
 * freed when the thread exits, or by pattern_thread_cleanup); compiled code is shared
 * read-only. Model names longer than 256 bytes never match a regex. */
#ifndef METARELAY_ROUTING_PATTERN_H
#define METARELAY_ROUTING_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/slice.h"

#define PATTERN_MAX_LEN       256
#define PATTERN_MATCH_LIMIT   10000u
#define PATTERN_HEAP_LIMIT_KB 1024u
#define PATTERN_SUBJECT_MAX   256

enum pattern_kind { PATTERN_EXACT = 0, PATTERN_GLOB = 1, PATTERN_REGEX = 2 };

enum pattern_result {
    PATTERN_NO_MATCH = 0,
    PATTERN_MATCH = 1,
    PATTERN_ERR_LIMIT = -1, /* match or heap limit hit */
    PATTERN_ERR_OTHER = -2, /* another matching error (out of memory, …) */
};

struct pattern {
    enum pattern_kind kind;
    char *text;           /* the pattern without its "re:" prefix (owned) */
    void *code;           /* pcre2_code_8 * for regexes */
    unsigned specificity; /* literal bytes; orders non-exact routes (see routing docs) */
};

/* The kind a pattern text has: "re:" prefix → regex; any of * ? → glob; else exact. */
enum pattern_kind pattern_kind_of(const char *text);

/* Compiles `text`. 0, or -1 with a reason in err (length, syntax with offset, a
 * backreference or recursion, JIT failure). The pattern owns its memory: pattern_free. */
int pattern_compile(struct pattern *p, const char *text, char *err, size_t errcap);
void pattern_free(struct pattern *p);

/* Matches a model name. Never allocates after a thread's first regex match. */
enum pattern_result pattern_match(const struct pattern *p, struct slice model);

/* Glob match alone (`*`, `?`; no escapes), iterative: O(n·m) worst case, no recursion. */
bool glob_match(const char *glob, struct slice s);

/* Frees the calling thread's match data and JIT stack (tests; threads free theirs at exit). */
void pattern_thread_cleanup(void);

#endif
