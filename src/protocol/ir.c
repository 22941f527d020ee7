/* ir.c — small helpers of the intermediate representation (see ir.h). */
#include "protocol/ir.h"

#include <string.h>

const char *api_format_name(enum api_format f)
{
    switch (f) {
    case API_CHAT:
        return "chat";
    case API_MESSAGES:
        return "messages";
    case API_RESPONSES:
        return "responses";
    case API_COMPLETIONS:
        return "completions";
    }
    return "unknown";
}

unsigned api_formats_parse(const char *csv)
{
    unsigned mask = 0;
    const char *p = csv;
    while (p && *p) {
        while (*p == ' ' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ') p++;
        size_t n = (size_t)(p - start);
        if (n == 0) continue;
        if (n == 4 && memcmp(start, "chat", 4) == 0)
            mask |= API_FORMAT_BIT(API_CHAT);
        else if (n == 8 && memcmp(start, "messages", 8) == 0)
            mask |= API_FORMAT_BIT(API_MESSAGES);
        else if (n == 9 && memcmp(start, "responses", 9) == 0)
            mask |= API_FORMAT_BIT(API_RESPONSES);
        else
            return 0;
    }
    return mask;
}

void api_formats_format(unsigned mask, char *out, size_t cap)
{
    static const enum api_format order[] = {API_CHAT, API_MESSAGES, API_RESPONSES};
    size_t n = 0;
    if (cap) out[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        if (!(mask & API_FORMAT_BIT(order[i]))) continue;
        const char *name = api_format_name(order[i]);
        size_t len = strlen(name);
        if (n + len + 2 > cap) break;
        if (n) out[n++] = ',';
        memcpy(out + n, name, len);
        n += len;
        out[n] = '\0';
    }
}

void ir_profile_defaults(struct ir_profile *p)
{
    memset(p, 0, sizeof *p);
    p->claude_thinking = IR_CLAUDE_THINKING_BUDGET;
    p->claude_structured_output_native = false;
    p->claude_temp_top_p_exclusive = true;
    p->default_max_tokens = 4096;
    p->model_max_output = -1;
    p->openai_max_completion_tokens = false; /* third-party OpenAI-compatible relays */
    p->chat_reasoning_field = IR_REASONING_FIELD_REASONING_CONTENT;
    p->chat_history_reasoning = true;
    p->chat_emit_thinking_blocks = false;
    p->responses_emulate_stop = false;
    p->tool_name_max = 64;
}

void ir_usage_unknown(struct ir_usage *u)
{
    u->input_total = u->cache_read = u->cache_write = u->output_total = u->reasoning = -1;
}
