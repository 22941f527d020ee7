/* request_completions.c — legacy OpenAI Completions (format L) requests, client side only
 * (§3.12): the prompt becomes one user message; max_tokens defaults to 16 as OpenAI
 * documents; `echo` is kept for the response half; logprobs are dropped. Token prompts,
 * several prompts, `suffix` and best_of > 1 can only be served by a Completions upstream
 * (conversion refuses them with 400). */
#include <string.h>

#include "protocol/request_internal.h"

int req_decode_completions(struct req_dec *d, json_t *root, struct ir_request *r)
{
    if (req_get_str(d, root, "model", &r->model, "") < 0) return -1;
    json_t *prompt = json_object_get(root, "prompt");
    json_t *text = NULL;
    if (json_is_string(prompt)) {
        text = prompt;
    } else if (json_is_array(prompt) && json_array_size(prompt) == 1 &&
               json_is_string(json_array_get(prompt, 0))) {
        text = json_array_get(prompt, 0);
    } else if (json_is_array(prompt) && json_array_size(prompt) > 0) {
        r->same_format_only = "'prompt' as tokens or as several prompts can only be sent to a "
                              "Completions upstream; send one prompt string";
    } else if (!prompt || json_is_null(prompt)) {
        return req_fail(d->err, "'prompt' is required");
    } else {
        return req_fail(d->err, "'prompt' must be a string");
    }
    size_t cap = 0, pcap = 0;
    struct ir_message *m = req_add_msg(d->pool, r, &cap);
    if (!m) return req_oom(d->err);
    m->role = IR_ROLE_USER;
    struct ir_part *p = req_add_part(d->pool, &m->parts, &m->n_parts, &pcap);
    if (!p) return req_oom(d->err);
    p->kind = IR_PART_TEXT;
    p->text = text ? req_jstr(d->pool, text) : SLICE_LIT("");

    struct slice suffix = SLICE_NULL;
    if (req_get_str(d, root, "suffix", &suffix, "") < 0) return -1;
    if (suffix.n)
        r->same_format_only = "'suffix' (insertion) can only be sent to a Completions upstream";
    long best_of = -1, n = -1;
    if (req_get_count(d, root, "best_of", &best_of, "") < 0 ||
        req_get_count(d, root, "n", &n, "") < 0)
        return -1;
    if (best_of > 1) r->same_format_only = "best_of > 1 can only be sent to a Completions upstream";
    if (n >= 0) r->n = (int)n;
    if (n > 1) r->same_format_only = "n > 1 can only be sent to a Completions upstream";
    if (req_get_count(d, root, "max_tokens", &r->max_output_tokens, "") < 0) return -1;
    if (r->max_output_tokens < 0) r->max_output_tokens = 16; /* OpenAI's documented default */
    if (req_get_num(d, root, "temperature", &r->temperature, "") < 0 ||
        req_get_num(d, root, "top_p", &r->top_p, "") < 0 ||
        req_get_str(d, root, "user", &r->user_id, "") < 0 ||
        req_get_bool(d, root, "stream", &r->stream, "") < 0 ||
        req_get_bool(d, root, "echo", &r->echo, "") < 0)
        return -1;
    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        r->stop = pool_calloc(d->pool, sizeof *r->stop);
        if (!r->stop) return req_oom(d->err);
        r->stop[r->n_stop++] = req_jstr(d->pool, stop);
    } else if (json_is_array(stop)) {
        r->stop = pool_calloc(d->pool, (json_array_size(stop) + 1) * sizeof *r->stop);
        if (!r->stop) return req_oom(d->err);
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s)
        {
            if (!json_is_string(s))
                return req_fail(d->err, "'stop' must be a string or an array of strings");
            r->stop[r->n_stop++] = req_jstr(d->pool, s);
        }
    } else if (stop && !json_is_null(stop)) {
        return req_fail(d->err, "'stop' must be a string or an array of strings");
    }
    json_t *so = NULL;
    if (req_get_obj(d, root, "stream_options", &so, "") < 0) return -1;
    if (so && req_get_bool(d, so, "include_usage", &r->include_usage, "stream_options") < 0)
        return -1;
    /* logprobs, presence/frequency penalties, seed, logit_bias: dropped */
    return 0;
}
