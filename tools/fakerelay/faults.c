/* faults.c — the faults fakerelay injects, by name.
 *
 * A request gets at most one fault: from its x-fake-fault header, else from a model named
 * "fault-<kind>[-suffix]", else from --fault. Faults that replace the answer (500, 429,
 * 529, reset, silence, slow-first-byte) are applied here before the handler runs, with
 * errors in the shape of the surface (OpenAI or Claude); cut, bad-json and stream-error
 * damage the handler's answer and are applied by reply.c. */
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
        if (names[i].f == f) return names[i].name;
    return "none";
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

/* An injected error status in the surface's shape, with Retry-After on 429 and 529. */
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
    struct http_header h[] = {
        {SLICE_LIT("Content-Type"), SLICE_LIT("application/json")},
        {SLICE_LIT("x-fakerelay-name"), slice_from(name)},
        {SLICE_LIT("Retry-After"), SLICE_LIT("1")},
    };
    http_respond(req, status, h, status == 429 || status == 529 ? 3 : 2, body);
}

bool fr_fault_apply(struct fr_call *call, fr_handler_fn fn)
{
    switch (call->fault) {
    case FR_FAULT_500:
        injected(call, 500);
        return true;
    case FR_FAULT_429:
        injected(call, 429);
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
        return false;
    }
    return false;
}
