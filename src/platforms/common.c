/* common.c — errors, message classification, the two JSON envelopes, JSON getters and
 * quota conversion shared by every platform adapter (see common.h). */
#include "platforms/common.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pf_fail(struct platform_error *err, enum platform_error_kind kind, int http_status,
            const char *fmt, ...)
{
    if (!err) return -1;
    err->kind = kind;
    err->http_status = http_status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Case-insensitive substring search for ASCII needles (UTF-8 haystacks are fine: the
 * needles' bytes are matched exactly outside A-Z). */
static bool has(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

bool pf_msg_already(const char *msg)
{
    if (!msg) return false;
    static const char *const words[] = {
        "已签到", "已经签到", "签到过", "already", "checkin.already", "重复签到", "明天再来",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (has(msg, words[i])) return true;
    return false;
}

bool pf_msg_captcha(const char *msg)
{
    /* Not "验证码": the 2FA prompts (请输入两步验证码, 验证码或备用码错误) use it too. */
    static const char *const words[] = {"turnstile",          "captcha",      "人机验证",
                                        "human verification", "cf-challenge", "滑块"};
    for (size_t i = 0; msg && i < sizeof words / sizeof words[0]; i++)
        if (has(msg, words[i])) return true;
    return false;
}

bool pf_msg_auth(const char *msg)
{
    static const char *const words[] = {
        "无权进行此操作",      "未登录",           "access token",
        "New-Api-User",        "Veloera-User",     "会话无效",
        "unauthorized",        "not logged in",    "token has expired",
        "token_expired",       "invalid_token",    "invalid token",
        "用户已被封禁",        "用户名或密码错误", "invalid email or password",
        "invalid_credentials", "login required",   "session expired",
        "登录已过期",
    };
    for (size_t i = 0; msg && i < sizeof words / sizeof words[0]; i++)
        if (has(msg, words[i])) return true;
    return false;
}

bool pf_msg_checkin_disabled(const char *msg)
{
    return has(msg, "签到功能未启用") || has(msg, "未开启签到") || has(msg, "not enabled") ||
           has(msg, "checkin is disabled") || has(msg, "check-in is disabled");
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    /* A UTF-8 byte order mark before JSON or HTML. */
    if (end - p >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        return skip_ws(p + 3, end);
    return p;
}

bool pf_body_is_html(const char *body, size_t n)
{
    if (!body || !n) return false;
    const char *p = skip_ws(body, body + n);
    return p < body + n && *p == '<';
}

bool pf_body_is_captcha_page(const char *body, size_t n)
{
    if (!body || !n) return false;
    static const char *const marks[] = {
        "challenges.cloudflare.com", "cf-turnstile", "cf_chl_",
        "Just a moment...",          "captcha",      "Attention Required!"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (memmem(body, n, marks[i], strlen(marks[i]))) return true;
    return false;
}

/* Copies a site's message for an error text: at most `cap`-1 bytes cut at a UTF-8
 * boundary, control characters turned into spaces. */
static void clean_copy(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    if (!src) src = "";
    size_t len = strlen(src);
    if (len > cap - 1) {
        len = cap - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) len--;
    }
    for (; n < len; n++) {
        unsigned char ch = (unsigned char)src[n];
        dst[n] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[n] = '\0';
}

/* The message a JSON answer carries: message, msg, error.message, error (string). */
const char *pf_json_message(const json_t *root)
{
    const char *m = pf_jstr(root, "message");
    if (m && *m) return m;
    m = pf_jstr(root, "msg");
    if (m && *m) return m;
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        m = pf_jstr(e, "message");
        if (m && *m) return m;
    }
    if (json_is_string(e)) return json_string_value(e);
    m = pf_jstr(root, "reason");
    return m && *m ? m : NULL;
}

/* Classifies a failure by HTTP status, the site's message and (Sub2API) string code. */
static int classify(struct platform_error *err, int status, const char *what, const char *msg,
                    const char *code)
{
    char m[300];
    clean_copy(m, sizeof m, msg && *msg ? msg : code ? code : "");
    if (status == 404 || has(msg, "Invalid URL") || has(msg, "404 page not found"))
        return pf_fail(err, PLATFORM_ERR_UNSUPPORTED, status,
                       "%s: not available on this site (HTTP %d%s%s)", what, status,
                       m[0] ? ": " : "", m);
    if (pf_msg_captcha(msg))
        return pf_fail(err, PLATFORM_ERR_CAPTCHA, status,
                       "%s: the site requires a Turnstile/captcha verification that metarelay "
                       "cannot pass; log in with a browser and paste the session cookie (and "
                       "user id) instead (site said: %s)",
                       what, m);
    if (pf_msg_already(msg))
        return pf_fail(err, PLATFORM_ERR_ALREADY_DONE, status, "%s: %s", what, m);
    bool user_hdr = has(msg, "New-Api-User") || has(msg, "Veloera-User");
    if (status == 401 || status == 403 || pf_msg_auth(msg) ||
        (code && (has(code, "TOKEN") || has(code, "UNAUTHORIZED") || has(code, "AUTH") ||
                  has(code, "USER_") || has(code, "CREDENTIALS"))))
        return pf_fail(err, PLATFORM_ERR_AUTH, status, "%s: not authorised: %s%s", what,
                       m[0] ? m : "the site refused the credentials",
                       user_hdr ? " (set the account's numeric user id)" : "");
    if (status == 429)
        return pf_fail(err, PLATFORM_ERR_UPSTREAM, status, "%s: rate limited by the site%s%s", what,
                       m[0] ? ": " : "", m);
    if (m[0]) return pf_fail(err, PLATFORM_ERR_UPSTREAM, status, "%s: site said: %s", what, m);
    return pf_fail(err, PLATFORM_ERR_UPSTREAM, status, "%s: failed (HTTP %d)", what, status);
}

int pf_envelope(const char *body, size_t n, int status, const char *what, json_t **root,
                json_t **data, struct platform_error *err)
{
    *root = NULL;
    *data = NULL;
    if (!what) what = "request";
    if (!body || n == 0) {
        if (status >= 200 && status < 300)
            return pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, status,
                           "%s: the site answered an empty body (HTTP %d)", what, status);
        return classify(err, status, what, NULL, NULL);
    }
    if (pf_body_is_html(body, n)) {
        if (acw_challenge_detect(body, n))
            return pf_fail(err, PLATFORM_ERR_CAPTCHA, status,
                           "%s: the site's anti-bot challenge (acw_sc__v2) was not passed; a "
                           "slider captcha may be required from this address: paste a session "
                           "cookie from a browser",
                           what);
        if (pf_body_is_captcha_page(body, n))
            return pf_fail(err, PLATFORM_ERR_CAPTCHA, status,
                           "%s: the site answered a Cloudflare/Turnstile verification page; log "
                           "in with a browser and paste the session cookie instead",
                           what);
        if (status == 404) return classify(err, status, what, NULL, NULL);
        if (status == 401) return classify(err, status, what, NULL, NULL);
        return pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, status,
                       "%s: the site answered an HTML page where JSON was expected (HTTP %d); "
                       "is the site URL right and the platform the right one?",
                       what, status);
    }
    json_error_t je;
    json_t *doc = json_loadb(body, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!doc || !(json_is_object(doc) || json_is_array(doc))) {
        json_decref(doc);
        if (status == 404 || status == 401 || status == 403 || status == 429) {
            char m[120];
            clean_copy(m, sizeof m, n < 120 ? body : "");
            return classify(err, status, what, m, NULL);
        }
        return pf_fail(err, PLATFORM_ERR_BAD_RESPONSE, status,
                       "%s: the answer is not JSON (HTTP %d, %s)", what, status,
                       doc ? "not an object or array" : je.text);
    }
    bool http_ok = status >= 200 && status < 300;
    if (json_is_object(doc)) {
        const char *msg = pf_json_message(doc);
        const json_t *succ = json_object_get(doc, "success");
        const json_t *code = json_object_get(doc, "code");
        const json_t *errm = json_object_get(doc, "error");
        bool failed = !http_ok;
        const char *code_str = json_is_string(code) ? json_string_value(code) : NULL;
        if (json_is_boolean(succ))
            failed = failed || !json_is_true(succ);
        else if (json_is_integer(succ))
            failed = failed || json_integer_value(succ) == 0;
        else if (json_is_integer(code))
            failed = failed || json_integer_value(code) != 0;
        else if (code_str && !json_object_get(doc, "data"))
            failed = true; /* Sub2API middleware errors: {"code":"UNAUTHORIZED",…} */
        else if (errm && !json_is_null(errm) && !json_object_get(doc, "data"))
            failed = true;
        if (failed) {
            int rc = classify(err, status, what, msg, code_str);
            json_decref(doc);
            return rc;
        }
        json_t *d = json_object_get(doc, "data");
        *root = doc;
        *data = d ? d : doc;
        return 0;
    }
    if (!http_ok) {
        json_decref(doc);
        return classify(err, status, what, NULL, NULL);
    }
    *root = doc;
    *data = doc;
    return 0;
}

const char *pf_jstr(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool pf_jnum(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!isfinite(d)) return false;
        *out = d;
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (end == s || *end != '\0' || !isfinite(d)) return false;
        *out = d;
        return true;
    }
    return false;
}

bool pf_jbool(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_string(v)) return strcmp(json_string_value(v), "true") == 0;
    return false;
}

char *pf_jid(const json_t *v)
{
    if (json_is_integer(v)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        return strdup(tmp);
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9e15) return NULL;
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.0f", d);
        return strdup(tmp);
    }
    if (json_is_string(v) && json_string_length(v) > 0) return strdup(json_string_value(v));
    return NULL;
}

char *pf_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static double unit_or_default(double qpu)
{
    return isfinite(qpu) && qpu > 0 ? qpu : PF_DEFAULT_QUOTA_PER_UNIT;
}

double pf_quota_to_money(double quota, double qpu)
{
    if (!isfinite(quota)) return 0;
    return quota / unit_or_default(qpu);
}

double pf_money_to_quota(double money, double qpu)
{
    if (!isfinite(money) || money <= 0) return 0;
    return floor(money * unit_or_default(qpu) + 0.5);
}

double pf_clean_money(double v)
{
    return isfinite(v) ? v : -1;
}

bool pf_has_session(const struct platform_credentials *c)
{
    return c && ((c->access_token && *c->access_token) || (c->cookie && *c->cookie) ||
                 (c->username && *c->username && c->password && *c->password));
}
