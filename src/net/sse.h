/* sse.h — incremental Server-Sent Events parser and writer.
 *
 * The parser is fed the bytes of an upstream response in whatever pieces the network
 * delivers (a frame may be split at any byte, between CR and LF included) and reports
 * every complete frame once, with its raw bytes and its parsed fields. The raw bytes let
 * the gateway forward frames verbatim (pass-through) or drop one (the usage-only chunk it
 * injected), the parsed fields let it inspect or convert them.
 *
 * Framing follows the WHATWG "event stream" grammar: lines end with LF, CRLF or CR; a
 * blank line ends a frame; a leading UTF-8 BOM is ignored; `:` starts a comment line;
 * fields are `event`, `data` (several lines joined with "\n"), `id` and `retry`; other
 * fields are ignored; one space after the colon is stripped.
 *
 * Memory: the parser keeps only the bytes of the current incomplete frame (and, for
 * multi-line data, a scratch buffer for the joined value). A frame larger than
 * `max_event_bytes` is not buffered: it is reported raw, in pieces, as SSE_FRAME_OVERSIZE
 * (parsed fields absent) — never an error that breaks the stream.
 *
 * Not thread-safe: one parser per stream, used by one thread. */
#ifndef METARELAY_NET_SSE_H
#define METARELAY_NET_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/slice.h"

#define SSE_DEFAULT_MAX_EVENT (1024u * 1024u)

/* feed() result when the parser could not grow its buffer. Callbacks stop the parser by
 * returning a positive value, so the two never collide. */
#define SSE_ENOMEM (-1)

enum sse_frame_kind {
    /* A complete frame with at least one data line: an event in the spec's sense. */
    SSE_FRAME_EVENT,
    /* A complete frame made only of comment lines (`: keep-alive`). Not content: it must
     * not count as the first frame of a response. */
    SSE_FRAME_COMMENT,
    /* A complete frame with fields but no data line (e.g. only `retry: 3000` or `event: x`).
     * The spec does not dispatch it as an event; the raw bytes are still reported so a
     * pass-through relay can forward them. */
    SSE_FRAME_NODATA,
    /* A piece of a frame larger than max_event_bytes: raw bytes only, in order; the last
     * piece of the frame has `last` set. Concatenating the pieces gives the frame. */
    SSE_FRAME_OVERSIZE,
};

/* One frame as reported to the callback. Every slice is borrowed and valid only during the
 * callback (it points into the fed chunk or into the parser's buffers). */
struct sse_frame {
    enum sse_frame_kind kind;
    /* The frame's bytes as received, including the blank line that ends it (for
     * SSE_FRAME_OVERSIZE: this piece only). Blank lines between frames are not part of
     * any frame; a leading BOM is not either. */
    struct slice raw;
    /* Value of the last `event:` line; empty (n == 0, p may be NULL) when there is none —
     * the spec's default type is then "message". */
    struct slice event;
    /* The data lines joined with "\n" (no trailing "\n"). Empty for non-events.
     * event, id and retry are filled for SSE_FRAME_NODATA too (informational). */
    struct slice data;
    /* Value of the last `id:` line of this frame when has_id (an id containing NUL is
     * ignored, per spec). */
    struct slice id;
    bool has_id;
    /* Value of the last valid `retry:` line (ASCII digits only), else -1. */
    long long retry;
    /* SSE_FRAME_OVERSIZE: true on the frame's final piece. Always true for other kinds. */
    bool last;
};

/* Called once per complete frame (or oversize piece). Return 0 to continue; a positive
 * value stops the parser: sse_parser_feed returns it at once and the rest of that chunk is
 * not processed (the parser must then only be reset or freed). */
typedef int (*sse_frame_cb)(void *ud, const struct sse_frame *frame);

/* Parser state. Embed it in the per-stream state; treat the members as private. */
struct sse_parser {
    sse_frame_cb cb;
    void *ud;
    size_t max_event;
    struct buf pending; /* bytes of the incomplete frame (not in oversize mode) */
    struct buf scratch; /* joined multi-line data of the frame being reported */
    size_t frame_len;   /* bytes of the current frame so far, reported ones included */
    unsigned char bom;  /* BOM bytes matched at stream start (0..3); 4 once past it */
    unsigned char state;
    unsigned char flags;
};

/* Initialises a parser. max_event_bytes 0 means SSE_DEFAULT_MAX_EVENT. Allocates nothing
 * until fed; release with sse_parser_free. */
void sse_parser_init(struct sse_parser *p, size_t max_event_bytes, sse_frame_cb cb, void *ud);

/* Feeds the next bytes of the stream. Calls cb for every frame completed by them, in
 * order, then keeps the incomplete rest. Returns 0, the callback's positive stop value,
 * or SSE_ENOMEM (the parser is then unusable until reset). */
int sse_parser_feed(struct sse_parser *p, const char *bytes, size_t n);

/* Ends the stream (EOF). A frame whose blank line was a CR still waiting to see whether an
 * LF follows is reported now. Returns true when the stream ended inside a frame (a
 * truncated trailing frame, including an unfinished oversize frame): its buffered bytes
 * stay readable through sse_parser_pending until reset or free. */
bool sse_parser_finish(struct sse_parser *p);

/* The buffered bytes of the incomplete frame (borrowed; valid until the next feed, reset
 * or free). Empty in oversize mode, whose bytes were already reported. */
struct slice sse_parser_pending(const struct sse_parser *p);

/* Forgets all stream state (as after init) but keeps the allocated buffers. */
void sse_parser_reset(struct sse_parser *p);

/* Frees the parser's buffers. The parser may be initialised again afterwards. */
void sse_parser_free(struct sse_parser *p);

/* --- Writer -------------------------------------------------------------------------- */

/* Appends a well-formed event to out: `event: <event>\n` when event is non-empty, one
 * `data: <line>\n` per line of data (LF, CRLF and CR all split lines, so any payload
 * round-trips), then the blank line. Returns false, leaving out unchanged, when out of
 * memory or when event contains CR or LF (it cannot be written as one field). */
bool sse_write_event(struct buf *out, struct slice event, struct slice data);

/* Same as sse_write_event with no event name: `data: …\n\n` (OpenAI Chat style). */
bool sse_write_data(struct buf *out, struct slice data);

/* Appends `data: [DONE]\n\n`, the end sentinel of OpenAI Chat and Completions streams. */
bool sse_write_done(struct buf *out);

/* Appends a comment frame (`: <text>\n\n`, one `:` line per line of text), e.g. a
 * keep-alive. Returns false, leaving out unchanged, when out of memory. */
bool sse_write_comment(struct buf *out, struct slice text);

#endif
