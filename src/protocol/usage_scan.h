/* usage_scan.h — token usage read from responses metarelay passes through unconverted
 * (Claude Messages and OpenAI Responses; OpenAI Chat has openai_chat.h). Only the small
 * events and objects that carry usage are parsed (jansson), never a whole stream. */
#ifndef METARELAY_PROTOCOL_USAGE_SCAN_H
#define METARELAY_PROTOCOL_USAGE_SCAN_H

#include <stdbool.h>

#include "base/slice.h"
#include "protocol/ir.h"

/* Updates `u` (a snapshot: present fields overwrite) from one SSE event of a `format`
 * stream (messages: message_start, message_delta; responses: response.completed and
 * response.incomplete; chat: a chunk with usage). Other events are skipped cheaply.
 * Returns true when the event carried usage. */
bool usage_scan_event(enum api_format format, struct slice event, struct slice data,
                      struct ir_usage *u);
/* Same for a whole non-stream response body. */
bool usage_scan_body(enum api_format format, struct slice body, struct ir_usage *u);

#endif
