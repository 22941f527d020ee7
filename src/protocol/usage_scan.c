/* usage_scan.c — usage of pass-through Messages and Responses traffic (see usage_scan.h). */
#include "protocol/usage_scan.h"

#include <jansson.h>
#include <string.h>

static long count(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

/* Claude usage object: input_total = input + cache reads + cache writes. */
static bool from_claude_usage(json_t *usage, struct ir_usage *u)
{
    if (!json_is_object(usage)) return false;
    long in = count(usage, "input_tokens"), read = count(usage, "cache_read_input_tokens"),
         write = count(usage, "cache_creation_input_tokens"), out = count(usage, "output_tokens");
    if (in >= 0) u->input_total = in + (read > 0 ? read : 0) + (write > 0 ? write : 0);
    if (read >= 0) u->cache_read = read;
    if (write >= 0) u->cache_write = write;
    if (out >= 0) u->output_total = out;
    return in >= 0 || out >= 0;
}

/* OpenAI usage object of Responses (input_tokens/output_tokens) or Chat (prompt/completion). */
static bool from_openai_usage(json_t *usage, struct ir_usage *u)
{
    if (!json_is_object(usage)) return false;
    long in = count(usage, "input_tokens"), out = count(usage, "output_tokens");
    json_t *ind = json_object_get(usage, "input_tokens_details");
    json_t *outd = json_object_get(usage, "output_tokens_details");
    if (in < 0) {
        in = count(usage, "prompt_tokens");
        out = count(usage, "completion_tokens");
        ind = json_object_get(usage, "prompt_tokens_details");
        outd = json_object_get(usage, "completion_tokens_details");
    }
    if (in >= 0) u->input_total = in;
    if (out >= 0) u->output_total = out;
    if (json_is_object(ind) && count(ind, "cached_tokens") >= 0)
        u->cache_read = count(ind, "cached_tokens");
    if (json_is_object(outd) && count(outd, "reasoning_tokens") >= 0)
        u->reasoning = count(outd, "reasoning_tokens");
    return in >= 0 || out >= 0;
}

static json_t *load(struct slice s)
{
    json_error_t err;
    return json_loadb(s.p, s.n, JSON_REJECT_DUPLICATES, &err);
}

bool usage_scan_event(enum api_format format, struct slice event, struct slice data,
                      struct ir_usage *u)
{
    if (!memmem(data.p, data.n, "usage", 5)) return false;
    bool found = false;
    switch (format) {
    case API_MESSAGES: {
        if (!slice_eq_str(event, "message_start") && !slice_eq_str(event, "message_delta") &&
            !(event.n == 0 && data.n < 4096))
            return false;
        json_t *root = load(data);
        if (!root) return false;
        json_t *msg = json_object_get(root, "message");
        found = from_claude_usage(json_object_get(json_is_object(msg) ? msg : root, "usage"), u);
        json_decref(root);
        break;
    }
    case API_RESPONSES: {
        if (!slice_eq_str(event, "response.completed") &&
            !slice_eq_str(event, "response.incomplete") && !slice_eq_str(event, "response.failed"))
            return false;
        json_t *root = load(data);
        if (!root) return false;
        json_t *resp = json_object_get(root, "response");
        found = from_openai_usage(json_object_get(resp, "usage"), u);
        json_decref(root);
        break;
    }
    case API_CHAT:
    case API_COMPLETIONS: {
        json_t *root = load(data);
        if (!root) return false;
        found = from_openai_usage(json_object_get(root, "usage"), u);
        json_decref(root);
        break;
    }
    }
    return found;
}

bool usage_scan_body(enum api_format format, struct slice body, struct ir_usage *u)
{
    json_t *root = load(body);
    if (!root) return false;
    json_t *usage = json_object_get(root, "usage");
    bool found = format == API_MESSAGES ? from_claude_usage(usage, u) : from_openai_usage(usage, u);
    json_decref(root);
    return found;
}
