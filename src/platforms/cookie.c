/* cookie.c — the adapters' cookie jar: one "name=value; name2=value2" string that is
 * sent as the Cookie header and updated from every Set-Cookie answer of a call
 * sequence (login cookies, AnyRouter's acw_tc / cdn_sec_tc / acw_sc__v2). Domains and
 * paths are ignored on purpose: a jar serves exactly one site. */
#include "platforms/common.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_sp(char ch)
{
    return ch == ' ' || ch == '\t';
}

static struct slice trim(const char *p, size_t n)
{
    while (n && is_sp(*p)) p++, n--;
    while (n && is_sp(p[n - 1])) n--;
    return (struct slice){p, n};
}

/* A cookie name: a non-empty token without separators. */
static bool valid_name(struct slice name)
{
    if (!name.n || name.n > 256) return false;
    for (size_t i = 0; i < name.n; i++) {
        unsigned char ch = (unsigned char)name.p[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", ch)) return false;
    }
    return true;
}

static bool valid_value(struct slice v)
{
    if (v.n > 8192) return false;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch < 0x20 || ch == 0x7f || ch == ';') return false;
    }
    return true;
}

bool pf_cookie_set(struct buf *jar, struct slice name, struct slice value)
{
    name = trim(name.p, name.n);
    value = trim(value.p, value.n);
    if (!valid_name(name) || !valid_value(value)) return true; /* ignored, not an error */
    struct buf out = BUF_INIT;
    const char *p = jar->p ? jar->p : "";
    const char *end = p + jar->n;
    bool ok = true;
    while (p < end && ok) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        struct slice pair = trim(p, (size_t)(e - p));
        const char *eq = memchr(pair.p, '=', pair.n);
        struct slice n = eq ? trim(pair.p, (size_t)(eq - pair.p)) : pair;
        if (pair.n && !slice_eq(n, name)) {
            if (out.n) ok = buf_append_str(&out, "; ");
            ok = ok && buf_append_slice(&out, pair);
        }
        p = semi ? semi + 1 : end;
    }
    if (ok && value.n) {
        if (out.n) ok = buf_append_str(&out, "; ");
        ok = ok && buf_append_slice(&out, name) && buf_append_str(&out, "=") &&
             buf_append_slice(&out, value);
    }
    if (ok) ok = buf_nul(&out) || out.n == 0;
    if (!ok) {
        buf_free(&out);
        return false;
    }
    buf_free(jar);
    *jar = out;
    return true;
}

/* Reads the Max-Age attribute of a Set-Cookie value; false when absent. */
static bool max_age(const char *attrs, size_t n, long *out)
{
    const char *p = attrs, *end = attrs + n;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        struct slice a = trim(p, (size_t)(e - p));
        if (a.n > 8 && strncasecmp(a.p, "max-age=", 8) == 0) {
            char tmp[24];
            size_t k = a.n - 8 < sizeof tmp - 1 ? a.n - 8 : sizeof tmp - 1;
            memcpy(tmp, a.p + 8, k);
            tmp[k] = '\0';
            *out = strtol(tmp, NULL, 10);
            return true;
        }
        p = semi ? semi + 1 : end;
    }
    return false;
}

bool pf_cookie_merge(struct buf *jar, const char *headers, size_t n)
{
    const char *p = headers, *end = headers ? headers + n : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t len = (size_t)(e - p);
        if (len && p[len - 1] == '\r') len--;
        if (len > 11 && strncasecmp(p, "set-cookie:", 11) == 0) {
            const char *v = p + 11, *ve = p + len;
            const char *semi = memchr(v, ';', (size_t)(ve - v));
            const char *pe = semi ? semi : ve;
            const char *eq = memchr(v, '=', (size_t)(pe - v));
            if (eq) {
                struct slice name = {v, (size_t)(eq - v)};
                struct slice value = {eq + 1, (size_t)(pe - eq - 1)};
                long age;
                if (semi && max_age(semi + 1, (size_t)(ve - semi - 1), &age) && age <= 0)
                    value = SLICE_NULL;
                if (!pf_cookie_set(jar, name, value)) return false;
            }
        }
        p = nl ? nl + 1 : end;
    }
    return true;
}

bool pf_cookie_load(struct buf *jar, const char *cookie)
{
    if (!cookie) return true;
    const char *p = cookie, *end = cookie + strlen(cookie);
    /* Users paste "Cookie: a=b" or just the session value. */
    if (strncasecmp(p, "cookie:", 7) == 0) p += 7;
    struct slice all = trim(p, (size_t)(end - p));
    if (all.n && !memchr(all.p, '=', all.n)) return pf_cookie_set(jar, SLICE_LIT("session"), all);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq && !pf_cookie_set(jar, (struct slice){p, (size_t)(eq - p)},
                                 (struct slice){eq + 1, (size_t)(e - eq - 1)}))
            return false;
        p = semi ? semi + 1 : end;
    }
    return true;
}

char *pf_cookie_get(const struct buf *jar, const char *name)
{
    const char *p = jar->p ? jar->p : "", *end = p + jar->n;
    struct slice want = slice_from(name);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        struct slice pair = trim(p, (size_t)(e - p));
        const char *eq = memchr(pair.p, '=', pair.n);
        if (eq && slice_eq(trim(pair.p, (size_t)(eq - pair.p)), want))
            return strndup(eq + 1, (size_t)(pair.p + pair.n - eq - 1));
        p = semi ? semi + 1 : end;
    }
    return NULL;
}
