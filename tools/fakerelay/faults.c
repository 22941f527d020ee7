/* faults.c — the faults fakerelay injects, by name.
 *
 * A request gets at most one fault: from its x-fake-fault header, else from a model named
 * "fault-<kind>[-suffix]", else from --fault (limited to the first N requests by
 * --fail-first, or to alternate runs of N by --flap-period). Faults that replace the answer
 * (500, 429, 429-no-retry-after, 503, 529, reset, silence, slow-first-byte,
 * context-length, content-filter, quota) are applied here before the handler runs, with
 * errors in the shape of the surface (OpenAI or Claude); cut, bad-json (malformed), stall,
 * no-done, empty and stream-error damage the handler's answer and are applied by reply.c. */
#include <stdio.h>
#include <string.h>

#include "fakerelay.h"

static const struct {
    enum fr_fault f;
    const char *name;
} names[] = {
    {FR_FAULT_500, "500"},
    {FR_FAULT_429, "429"},
    {FR_FAULT_RESET, "reset"},
    {FR_FAULT_SILENCE, "silence"},
    {FR_FAULT_SLOW_FIRST_BYTE, "slow-first-byte"},
    {FR_FAULT_CUT, "cut"},
    {FR_FAULT_BAD_JSON, "bad-json"},
    {FR_FAULT_529, "529"},
    {FR_FAULT_STREAM_ERROR, "stream-error"},
    {FR_FAULT_429_BARE, "429-no-retry-after"},
    {FR_FAULT_503, "503"},
    {FR_FAULT_STALL, "stall"},
    {FR_FAULT_NO_DONE, "no-done"},
    {FR_FAULT_BAD_JSON, "malformed"}, /* alias: a data line whose JSON is invalid */
    {FR_FAULT_CONTEXT_LENGTH, "context-length"},
    {FR_FAULT_CONTENT_FILTER, "content-filter"},
    {FR_FAULT_QUOTA, "quota"},
    {FR_FAULT_EMPTY, "empty"},
};

#define N_NAMES (sizeof names / sizeof names[0])

bool fr_fault_parse(struct slice name, enum fr_fault *out)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (slice_ieq_str(name, names[i].name)) {
            *out = names[i].f;
            return true;
        }
    return false;
}

const char *fr_fault_name(enum fr_fault f)
{
    for (size_t i = 0; i < N_NAMES; i++)
        if (names[i].f == f) return names[i].name; /* the first name (not an alias) */
    return "none";
}

bool fr_fault_scheduled(struct fr_app *app)
{
    const struct fr_config *cfg = &app->cfg;
    if (!cfg->fail_first && !cfg->flap_period) return true;
    uint64_t k = atomic_fetch_add_explicit(&app->faultable_seq, 1, memory_order_relaxed);
    if (cfg->fail_first) return k < cfg->fail_first;
    return (k / cfg->flap_period) % 2 == 0; /* N failing, N fine, … */
}

bool fr_fault_from_model(const char *model, enum fr_fault *out)
{
    static const char prefix[] = "fault-";
    if (strncmp(model, prefix, sizeof prefix - 1) != 0) return false;
    const char *kind = model + sizeof prefix - 1;
    /* The longest name that is followed by the end or '-' ("slow-first-byte" has dashes). */
    size_t best = 0;
    for (size_t i = 0; i < N_NAMES; i++) {
        size_t n = strlen(names[i].name);
        if (n > best && strncmp(kind, names[i].name, n) == 0 && (kind[n] == 0 || kind[n] == '-')) {
            best = n;
            *out = names[i].f;
        }
    }
    return best > 0;
}

/* The client-fault and quota answers, in the surface's shape, with the real services'
 * wording (OpenAI's context_length_exceeded and content_filter, Anthropic's "prompt is too
 * long", New API's insufficient_user_quota). */
static void client_fault(struct fr_call *call)
{
    enum fr_fault f = call->fault;
    bool claude = call->shape == FR_SHAPE_CLAUDE;
    if (f == FR_FAULT_QUOTA) {
        fr_reply_error(call, 403, claude ? "permission_error" : "new_api_error",
                       "insufficient_user_quota", "用户额度不足, 剩余额度: $0.000000");
    } else if (f == FR_FAULT_CONTEXT_LENGTH && claude) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "prompt is too long: 213417 tokens > 200000 maximum");
    } else if (f == FR_FAULT_CONTEXT_LENGTH) {
        fr_reply_error(call, 400, "invalid_request_error", "context_length_exceeded",
                       "This model's maximum context length is 128000 tokens. However, your "
                       "messages resulted in 213417 tokens. Please reduce the length of the "
                       "messages.");
    } else if (claude) {
        fr_reply_error(call, 400, "invalid_request_error", NULL,
                       "Output blocked by content filtering policy");
    } else {
        fr_reply_error(call, 400, "invalid_request_error", "content_filter",
                       "The response was filtered due to the prompt triggering Azure OpenAI's "
                       "content management policy. Please modify your prompt and retry.");
    }
}

/* An injected error status in the surface's shape, with Retry-After on 429 and 529 (but for
 * the 429-no-retry-after fault). */
static void injected(struct fr_call *call, int status)
{
    http_request_t *req = call->req;
    const char *name = call->cfg->name;
    json_t *j;
    if (call->shape == FR_SHAPE_CLAUDE) {
        const char *msg = status == 529   ? "Overloaded"
                          : status == 429 ? "fakerelay: injected fault 429, rate limit reached"
                                          : "Internal server error";
        j = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type",
                      fr_claude_error_type(status), "message", msg, "request_id",
                      "req_fakerelay_fault");
    } else if (status == 429) {
        j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
                      "fakerelay: injected fault 429, rate limit reached", "type", "requests",
                      "param", "code", "rate_limit_exceeded");
    } else if (status == 503) {
        j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
                      "fakerelay: injected fault 503, service unavailable", "type", "server_error",
                      "param", "code", "service_unavailable");
    } else if (status == 529) {
        j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", "Overloaded", "type",
                      "service_unavailable_error", "param", "code", "server_is_overloaded");
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "fakerelay %s: injected fault %d", name, status);
        j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", "server_error",
                      "param", "code", "internal_error");
    }
    struct slice body = fr_json_dump(call, j);
    char ra[16];
    snprintf(ra, sizeof ra, "%u", call->cfg->retry_after);
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-fakerelay-name"), slice_from(name)},
        {SLICE_LIT("Retry-After"), slice_from(ra)},
    };
    bool with_ra = (status == 429 || status == 529) && call->fault != FR_FAULT_429_BARE;
    http_respond(req, status, h, with_ra ? 3 : 2, body);
}

bool fr_fault_apply(struct fr_call *call, fr_handler_fn fn)
{
    switch (call->fault) {
    case FR_FAULT_500:
        injected(call, 500);
        return true;
    case FR_FAULT_429:
    case FR_FAULT_429_BARE:
        injected(call, 429);
        return true;
    case FR_FAULT_503:
        injected(call, 503);
        return true;
    case FR_FAULT_CONTEXT_LENGTH:
    case FR_FAULT_CONTENT_FILTER:
    case FR_FAULT_QUOTA:
        client_fault(call);
        return true;
    case FR_FAULT_529:
        injected(call, 529);
        return true;
    case FR_FAULT_STREAM_ERROR:
        if (call->stream) return false; /* applied by fr_reply_send */
        injected(call, 500);            /* no stream to break: the error comes whole */
        return true;
    case FR_FAULT_RESET:
        fr_reply_reset(call);
        return true;
    case FR_FAULT_SILENCE:
        fr_reply_silence(call);
        return true;
    case FR_FAULT_SLOW_FIRST_BYTE:
        fr_reply_later(call, call->delay_ms, fn);
        return true;
    case FR_FAULT_NONE:
    case FR_FAULT_CUT:
    case FR_FAULT_BAD_JSON:
    case FR_FAULT_STALL:
    case FR_FAULT_NO_DONE:
    case FR_FAULT_EMPTY:
        return false; /* applied to the handler's answer by fr_reply_send */
    }
    return false;
}
