/* classify.c — failure classification of upstream attempts (rules in classify.h). Runs
 * only on failed attempts and, for the 2xx rules, on complete non-stream bodies: the
 * texts are searched case-insensitively with a plain scan; JSON is parsed (jansson) only
 * for the small error bodies (≤ 64 KiB kept by the gateway) and when the empty-content
 * rule is on. */
#include "gateway/classify.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

#include "routing/select.h"

/* Case-insensitive search of `needle` (ASCII folding; other bytes compare exactly, so
 * UTF-8 texts such as the Chinese quota messages match byte for byte). */
static bool icontains(struct slice hay, const char *needle, size_t nn)
{
    if (nn == 0 || hay.n < nn) return false;
    unsigned char first = (unsigned char)tolower((unsigned char)needle[0]);
    for (size_t i = 0; i + nn <= hay.n; i++) {
        if ((unsigned char)tolower((unsigned char)hay.p[i]) != first) continue;
        size_t k = 1;
        while (k < nn && tolower((unsigned char)hay.p[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == nn) return true;
    }
    return false;
}

static bool any_of(struct slice text, const char *const *needles)
{
    for (const char *const *n = needles; *n; n++)
        if (icontains(text, *n, strlen(*n))) return true;
    return false;
}

/* Quota / billing: the codes and messages of OpenAI, Anthropic and the relay platforms
 * (upstream-platforms.md §1–§8 "No quota"). */
static const char *const quota_texts[] = {
    "insufficient_user_quota",
    "insufficient_quota",
    "insufficient_balance",
    "pre_consume_token_quota_failed",
    "user quota is not enough",
    "pre-consume quota failed",
    "exceeded your current quota",
    "credit balance is too low",
    "billing_error",
    "billing_not_active",
    "quota exceeded",
    "quota_exceeded",
    "out of credits",
    "额度不足",
    "额度已用尽",
    "余额不足",
    "预扣费额度失败",
    NULL,
};

/* A 4xx whose text says this channel cannot serve the model (another one may). */
static const char *const channel_texts[] = {
    "model_not_found",       "无可用渠道", "可用渠道失败", "no available channel",
    "no available accounts", NULL,
};

/* Labels of the client's own faults (for logs only: every other 4xx is a client fault
 * too). */
static const char *const context_texts[] = {
    "context_length_exceeded", "maximum context length", "prompt is too long",
    "context window",          "too many tokens",        NULL,
};
static const char *const filter_texts[] = {
    "content_filter", "content_policy", "content management policy", "safety system", NULL,
};

bool gw_text_is_quota(struct slice text)
{
    return any_of(text, quota_texts);
}

/* A reset hint inside the error body (Codex-style usage_limit_reached:
 * error.resets_in_seconds, or error.resets_at in unix seconds). 0 when none. */
static unsigned body_retry_ms(struct slice body, int64_t now_wall_ms)
{
    if (body.n == 0 || body.n > 65536 || !icontains(body, "resets_", 7)) return 0;
    json_error_t jerr;
    json_t *root = json_loadb(body.p, body.n, 0, &jerr);
    if (!root) return 0;
    json_t *e = json_object_get(root, "error");
    if (!json_is_object(e)) e = root;
    unsigned ms = 0;
    json_t *in = json_object_get(e, "resets_in_seconds");
    json_t *at = json_object_get(e, "resets_at");
    double s = -1;
    if (json_is_number(in))
        s = json_number_value(in);
    else if (json_is_number(at))
        s = json_number_value(at) - (double)now_wall_ms / 1000.0;
    if (s > 0) ms = s > 86400.0 * 30 ? 86400u * 30u * 1000u : (unsigned)(s * 1000.0);
    json_decref(root);
    return ms;
}

void gw_classify_status(int status, struct slice body, struct slice retry_after,
                        int64_t now_wall_ms, struct gw_verdict *v)
{
    v->action = GW_FAILOVER;
    v->retry_after_ms = routing_retry_after_ms(retry_after, now_wall_ms);
    if (!v->retry_after_ms) v->retry_after_ms = body_retry_ms(body, now_wall_ms);

    if (status == 402 || (status >= 400 && gw_text_is_quota(body))) {
        v->kind = HEALTH_FAIL_QUOTA;
        v->label = "quota exhausted";
        return;
    }
    if (status == 401 || status == 403) {
        v->kind = HEALTH_FAIL_AUTH;
        v->label = status == 401 ? "key rejected" : "forbidden";
        return;
    }
    if (status == 429) {
        v->kind = HEALTH_FAIL_RATE_LIMIT;
        v->label = "rate limited";
        return;
    }
    if (status == 408) {
        v->kind = HEALTH_FAIL_TIMEOUT;
        v->label = "upstream timeout";
        return;
    }
    if (status >= 500 || status == 404 || status == 409 || status == 425) {
        v->kind = HEALTH_FAIL_SERVER_ERROR;
        v->label = status >= 500 ? "server error" : "not served here";
        return;
    }
    if (status >= 200 && status < 300) {
        v->kind = HEALTH_FAIL_SERVER_ERROR; /* a broken 2xx */
        v->label = "unusable answer";
        return;
    }
    if (status >= 400 && status < 500 && any_of(body, channel_texts)) {
        v->kind = HEALTH_FAIL_SERVER_ERROR;
        v->label = "model not available on this channel";
        return;
    }
    /* The client's own fault: never counted, never failed over. */
    v->action = GW_CLIENT_ERROR;
    v->kind = HEALTH_FAIL_CLIENT_ERROR;
    v->retry_after_ms = 0;
    v->label = any_of(body, context_texts)  ? "context too long"
               : any_of(body, filter_texts) ? "content filter"
                                            : "client error";
}

void gw_classify_transport(enum upstream_error err, struct gw_verdict *v)
{
    v->action = GW_FAILOVER;
    v->retry_after_ms = 0;
    switch (err) {
    case UPSTREAM_ERR_CONNECT:
        v->kind = HEALTH_FAIL_CONNECT;
        v->label = "connect error";
        return;
    case UPSTREAM_ERR_FIRST_BYTE_TIMEOUT:
    case UPSTREAM_ERR_IDLE_TIMEOUT:
    case UPSTREAM_ERR_TOTAL_TIMEOUT:
        v->kind = HEALTH_FAIL_TIMEOUT;
        v->label = "timeout";
        return;
    default:
        /* resets, protocol errors: the channel's answer broke */
        v->kind = HEALTH_FAIL_SERVER_ERROR;
        v->label = "connection broken";
        return;
    }
}

bool gw_keyword_match(const char *csv, struct slice text, char *which, size_t cap)
{
    if (!csv || !*csv || text.n == 0) return false;
    const char *p = csv;
    for (;;) {
        const char *e = strchr(p, ',');
        struct slice kw = slice_trim((struct slice){p, e ? (size_t)(e - p) : strlen(p)});
        if (kw.n && icontains(text, kw.p, kw.n)) {
            if (which && cap) {
                size_t n = kw.n < cap - 1 ? kw.n : cap - 1;
                memcpy(which, kw.p, n);
                which[n] = '\0';
            }
            return true;
        }
        if (!e) return false;
        p = e + 1;
    }
}

static bool nonempty_string(json_t *s)
{
    if (!json_is_string(s)) return false;
    const char *t = json_string_value(s);
    for (size_t i = 0; i < json_string_length(s); i++)
        if (!isspace((unsigned char)t[i])) return true;
    return false;
}

static bool nonempty_array(json_t *a)
{
    return json_is_array(a) && json_array_size(a) > 0;
}

/* Chat: choices[].message.{content (string or parts), tool_calls, function_call, refusal,
 * reasoning_content}; completions: choices[].text. */
static bool chat_has_content(json_t *root)
{
    json_t *choices = json_object_get(root, "choices");
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch)
    {
        if (nonempty_string(json_object_get(ch, "text"))) return true;
        json_t *m = json_object_get(ch, "message");
        if (!json_is_object(m)) continue;
        json_t *content = json_object_get(m, "content");
        if (nonempty_string(content)) return true;
        if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part)
            {
                if (nonempty_string(json_object_get(part, "text"))) return true;
            }
        }
        if (nonempty_array(json_object_get(m, "tool_calls")) ||
            json_is_object(json_object_get(m, "function_call")) ||
            nonempty_string(json_object_get(m, "refusal")) ||
            nonempty_string(json_object_get(m, "reasoning_content")))
            return true;
    }
    return false;
}

/* Messages: content[] with a non-blank text, a tool_use / server_tool_use, or thinking. */
static bool messages_has_content(json_t *root)
{
    json_t *content = json_object_get(root, "content");
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type) continue;
        if (strcmp(type, "text") == 0 && nonempty_string(json_object_get(b, "text"))) return true;
        if (strcmp(type, "thinking") == 0 && nonempty_string(json_object_get(b, "thinking")))
            return true;
        if (strstr(type, "tool_use") || strcmp(type, "redacted_thinking") == 0) return true;
    }
    return false;
}

/* Responses: output[] with a message whose content has a non-blank output_text or a
 * refusal, a function/tool call, or reasoning with a summary. */
static bool responses_has_content(json_t *root)
{
    json_t *output = json_object_get(root, "output");
    size_t i;
    json_t *item;
    json_array_foreach(output, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        if (!type) continue;
        if (strcmp(type, "message") == 0) {
            size_t k;
            json_t *part;
            json_array_foreach(json_object_get(item, "content"), k, part)
            {
                if (nonempty_string(json_object_get(part, "text")) ||
                    nonempty_string(json_object_get(part, "refusal")))
                    return true;
            }
        } else if (strstr(type, "call")) {
            return true;
        } else if (strcmp(type, "reasoning") == 0 &&
                   nonempty_array(json_object_get(item, "summary"))) {
            return true;
        }
    }
    return false;
}

bool gw_body_has_content(enum api_format fmt, struct slice body)
{
    json_error_t jerr;
    json_t *root = json_loadb(body.p, body.n, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return true;
    }
    bool has;
    switch (fmt) {
    case API_MESSAGES:
        has = messages_has_content(root);
        break;
    case API_RESPONSES:
        has = responses_has_content(root);
        break;
    default:
        has = chat_has_content(root);
        break;
    }
    json_decref(root);
    return has;
}
