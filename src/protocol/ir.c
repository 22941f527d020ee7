/* ir.c — small helpers of the intermediate representation (see ir.h). */
#include "protocol/ir.h"

#include <string.h>

const char *api_format_name(enum api_format f)
{
    switch (f) {
    case API_CHAT: return "chat";
    case API_MESSAGES: return "messages";
    case API_RESPONSES: return "responses";
    case API_COMPLETIONS: return "completions";
    }
    return "unknown";
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
