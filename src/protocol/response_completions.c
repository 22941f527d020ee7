/* response_completions.c — the legacy Completions (format L) client answer: a
 * `text_completion` built from the IR (format-conversion.md §4.4). L is a client format
 * only, so there is no reader; tool calls and thinking have no place in it and are
 * dropped. */
#include "protocol/response.h"

static const char *finish_to_completions(enum ir_finish f)
{
    switch (f) {
    case IR_FIN_MAX_TOKENS:
    case IR_FIN_CONTEXT_EXCEEDED:
        return "length";
    case IR_FIN_CONTENT_FILTER:
        return "content_filter";
    default:
        return "stop";
    }
}

int resp_encode_completions(struct conv *cv, const struct ir_response *r, struct buf *out)
{
    struct buf text = BUF_INIT;
    bool ok = true;
    for (size_t i = 0; i < r->n_parts && ok; i++)
        if (r->parts[i].kind == IR_PART_TEXT) ok = buf_append_slice(&text, r->parts[i].text);

    struct slice id = resp_prefixed_id(cv->pool, "cmpl-", r->id);
    json_t *root = json_object();
    ok &= resp_set(root, "id", resp_jstring(id));
    ok &= resp_set(root, "object", json_string("text_completion"));
    ok &= resp_set(root, "created", json_integer(resp_created(cv, r)));
    ok &= resp_set(root, "model", resp_jstring(resp_client_model(cv, r)));
    ok &= resp_set(root, "choices",
                   json_pack("[{sosIsnss}]", "text", resp_jstring(buf_slice(&text)), "index",
                             (json_int_t)0, "logprobs", "finish_reason",
                             finish_to_completions(r->finish)));
    ok &= resp_set(root, "usage", resp_chat_usage_json(&r->usage));
    ok = ok && id.n && resp_json_write(out, root);
    json_decref(root);
    buf_free(&text);
    return ok ? 0 : -1;
}
