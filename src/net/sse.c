/* sse.c — incremental Server-Sent Events parser and writer (see sse.h).
 *
 * Written by hand: no packaged C library parses SSE incrementally while also handing back
 * the raw bytes of each frame, which pass-through relaying needs.
 *
 * The parser is a byte-level state machine that only looks for frame boundaries while
 * bytes arrive; a frame's lines are split and its fields read once, when the frame is
 * complete. A frame that arrives whole inside one chunk is reported straight from the
 * caller's bytes (no copy); only the incomplete tail of a chunk is copied.
 *
 * The one ambiguous byte is a CR that ends the blank line: a following LF may belong to
 * it (CRLF). The rule, which gives the same frames wherever the stream is split:
 *   - if the frame's previous line ended with a bare CR, the stream uses CR line endings
 *     and the frame ends right after this CR (a following LF would start the next frame,
 *     where blank-line bytes are skipped anyway);
 *   - otherwise the frame includes a directly following LF, so the parser waits for the
 *     next byte (or sse_parser_finish) before reporting the frame. */
#include "net/sse.h"

#include <limits.h>
#include <stdlib.h>

enum {
    ST_FRAME_START,    /* between frames: CR and LF are skipped */
    ST_IN_LINE,        /* inside a non-empty line */
    ST_AFTER_CR,       /* a CR ended a non-empty line; an LF here completes a CRLF */
    ST_LINE_START,     /* at the first byte of a line inside a frame */
    ST_AFTER_BLANK_CR, /* a CR ended the blank line; an LF here still belongs to the frame */
};

enum {
    FL_LAST_BARE_CR = 1, /* the last line terminator was a CR not followed by LF */
    FL_OVERSIZE = 2,     /* the current frame exceeded max_event: reported raw, in pieces */
};

/* Buffers grown past this are released after use, so a single large frame does not pin
 * memory for the rest of a long stream. */
#define SSE_KEEP_CAP (64u * 1024u)

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

void sse_parser_init(struct sse_parser *p, size_t max_event_bytes, sse_frame_cb cb, void *ud)
{
    *p = (struct sse_parser){0};
    p->cb = cb;
    p->ud = ud;
    p->max_event = max_event_bytes ? max_event_bytes : SSE_DEFAULT_MAX_EVENT;
    p->pending = BUF_INIT;
    p->scratch = BUF_INIT;
}

void sse_parser_reset(struct sse_parser *p)
{
    p->pending.n = 0;
    p->scratch.n = 0;
    p->frame_len = 0;
    p->bom = 0;
    p->state = ST_FRAME_START;
    p->flags = 0;
}

void sse_parser_free(struct sse_parser *p)
{
    buf_free(&p->pending);
    buf_free(&p->scratch);
    sse_parser_reset(p);
}

struct slice sse_parser_pending(const struct sse_parser *p)
{
    return buf_slice(&p->pending);
}

static void release_if_large(struct buf *b)
{
    if (b->cap > SSE_KEEP_CAP)
        buf_free(b);
    else
        b->n = 0;
}

static bool is_field(struct slice name, const char *lit)
{
    return slice_eq_str(name, lit);
}

/* Reads "retry" per spec: ASCII digits only; anything else (or overflow) is ignored. */
static long long parse_retry(struct slice v)
{
    unsigned long long x;
    if (!slice_to_u64(v, &x) || x > (unsigned long long)LLONG_MAX) return -1;
    return (long long)x;
}

/* Splits a complete frame into lines, reads its fields and calls the callback. */
static int report_parsed(struct sse_parser *p, struct slice raw)
{
    struct sse_frame f = {.kind = SSE_FRAME_EVENT, .raw = raw, .retry = -1, .last = true};
    size_t data_lines = 0, comment_lines = 0, other_lines = 0;
    struct slice first_data = SLICE_NULL;
    size_t pos = 0;

    p->scratch.n = 0;
    while (pos < raw.n) {
        size_t j = pos;
        while (j < raw.n && raw.p[j] != '\r' && raw.p[j] != '\n') j++;
        struct slice line = {raw.p + pos, j - pos};
        if (j < raw.n) j += (raw.p[j] == '\r' && j + 1 < raw.n && raw.p[j + 1] == '\n') ? 2 : 1;
        pos = j;
        if (line.n == 0) continue; /* the blank line that ends the frame */
        if (line.p[0] == ':') {
            comment_lines++;
            continue;
        }
        other_lines++;
        const char *colon = memchr(line.p, ':', line.n);
        struct slice name = line, value = {line.p + line.n, 0};
        if (colon) {
            name.n = (size_t)(colon - line.p);
            value.p = colon + 1;
            value.n = line.n - name.n - 1;
            if (value.n && value.p[0] == ' ') value.p++, value.n--;
        }
        if (is_field(name, "data")) {
            data_lines++;
            if (data_lines == 1) {
                first_data = value;
            } else {
                if (data_lines == 2 && !buf_append_slice(&p->scratch, first_data))
                    return SSE_ENOMEM;
                if (!buf_append(&p->scratch, "\n", 1) || !buf_append_slice(&p->scratch, value))
                    return SSE_ENOMEM;
            }
        } else if (is_field(name, "event")) {
            f.event = value;
        } else if (is_field(name, "id")) {
            if (!memchr(value.p, '\0', value.n)) {
                f.id = value;
                f.has_id = true;
            }
        } else if (is_field(name, "retry")) {
            long long r = parse_retry(value);
            if (r >= 0) f.retry = r;
        }
    }

    if (data_lines == 0) {
        f.kind = (other_lines == 0 && comment_lines > 0) ? SSE_FRAME_COMMENT : SSE_FRAME_NODATA;
    } else {
        f.data = data_lines == 1 ? first_data : buf_slice(&p->scratch);
    }
    int rc = p->cb(p->ud, &f);
    release_if_large(&p->scratch);
    return rc;
}

static int report_piece(struct sse_parser *p, struct slice raw, bool last)
{
    struct sse_frame f = {.kind = SSE_FRAME_OVERSIZE, .raw = raw, .retry = -1, .last = last};
    return p->cb(p->ud, &f);
}

/* The current frame ends at bytes[end): report it and go back to ST_FRAME_START. */
static int complete_frame(struct sse_parser *p, const char *bytes, size_t seg, size_t end)
{
    size_t total = p->frame_len + (end - seg);
    struct slice tail = {bytes + seg, end - seg};
    int rc;

    p->state = ST_FRAME_START;
    p->frame_len = 0;
    if (p->flags & FL_OVERSIZE) {
        p->flags = 0;
        return report_piece(p, tail, true);
    }
    p->flags = 0;
    struct slice raw = tail;
    if (p->pending.n) {
        if (!buf_append_slice(&p->pending, tail)) return SSE_ENOMEM;
        raw = buf_slice(&p->pending);
    }
    if (total > p->max_event)
        rc = report_piece(p, raw, true);
    else
        rc = report_parsed(p, raw);
    release_if_large(&p->pending);
    return rc;
}

/* The chunk ended inside a frame whose unbuffered bytes are bytes[seg..n). */
static int keep_incomplete(struct sse_parser *p, const char *bytes, size_t seg, size_t n)
{
    struct slice tail = {bytes + seg, n - seg};
    size_t total = p->frame_len + tail.n;

    p->frame_len = total;
    if (p->flags & FL_OVERSIZE) return tail.n ? report_piece(p, tail, false) : 0;
    if (total <= p->max_event) return buf_append_slice(&p->pending, tail) ? 0 : SSE_ENOMEM;

    /* Too large to buffer: switch this frame to raw pass-through. */
    p->flags |= FL_OVERSIZE;
    struct slice raw = tail;
    if (p->pending.n) {
        if (!buf_append_slice(&p->pending, tail)) return SSE_ENOMEM;
        raw = buf_slice(&p->pending);
    }
    int rc = report_piece(p, raw, false);
    release_if_large(&p->pending);
    return rc;
}

static int feed_bytes(struct sse_parser *p, const char *bytes, size_t n)
{
    size_t i = 0, seg = 0;
    int rc;

    while (i < n) {
        char c = bytes[i];
        switch (p->state) {
        case ST_FRAME_START:
            i++;
            if (c == '\r' || c == '\n') {
                seg = i;
                break;
            }
            seg = i - 1;
            p->frame_len = 0;
            p->flags = 0;
            p->state = ST_IN_LINE;
            break;
        case ST_IN_LINE:
            while (i < n && bytes[i] != '\r' && bytes[i] != '\n') i++;
            if (i == n) break;
            if (bytes[i] == '\n') {
                p->flags &= (unsigned char)~FL_LAST_BARE_CR;
                p->state = ST_LINE_START;
            } else {
                p->state = ST_AFTER_CR;
            }
            i++;
            break;
        case ST_AFTER_CR:
            if (c == '\n') {
                i++;
                p->flags &= (unsigned char)~FL_LAST_BARE_CR;
            } else {
                p->flags |= FL_LAST_BARE_CR; /* c is examined again as a line start */
            }
            p->state = ST_LINE_START;
            break;
        case ST_LINE_START:
            i++;
            if (c == '\n' || (c == '\r' && (p->flags & FL_LAST_BARE_CR))) {
                if ((rc = complete_frame(p, bytes, seg, i))) return rc;
                seg = i;
            } else if (c == '\r') {
                p->state = ST_AFTER_BLANK_CR;
            } else {
                p->state = ST_IN_LINE;
            }
            break;
        case ST_AFTER_BLANK_CR:
            if (c == '\n') i++;
            if ((rc = complete_frame(p, bytes, seg, i))) return rc;
            seg = i;
            break;
        }
    }
    if (p->state == ST_FRAME_START) return 0;
    return keep_incomplete(p, bytes, seg, n);
}

int sse_parser_feed(struct sse_parser *p, const char *bytes, size_t n)
{
    size_t i = 0;

    /* A UTF-8 BOM is ignored at the very start of the stream only; it may itself arrive
     * split. Bytes that turn out not to be a BOM are parsed as ordinary content. */
    while (p->bom < 3 && i < n) {
        if ((unsigned char)bytes[i] == sse_bom[p->bom]) {
            p->bom++;
            i++;
            continue;
        }
        unsigned char matched = p->bom;
        p->bom = 4;
        if (matched) {
            int rc = feed_bytes(p, (const char *)sse_bom, matched);
            if (rc) return rc;
        }
    }
    if (p->bom == 3) p->bom = 4;
    if (i == n) return 0;
    return feed_bytes(p, bytes + i, n - i);
}

bool sse_parser_finish(struct sse_parser *p)
{
    if (p->bom > 0 && p->bom < 3) {
        /* The stream ended inside what looked like a BOM: those bytes were content. */
        unsigned char matched = p->bom;
        p->bom = 4;
        if (feed_bytes(p, (const char *)sse_bom, matched)) return true;
    }
    if (p->state == ST_AFTER_BLANK_CR) {
        /* No LF can follow any more: the frame is complete as buffered. */
        complete_frame(p, "", 0, 0);
        return false;
    }
    return p->state != ST_FRAME_START;
}

/* --- Writer -------------------------------------------------------------------------- */

/* Appends one `<prefix><line>\n` per line of text (LF, CRLF, CR split; an empty text is
 * one empty line). */
static bool write_lines(struct buf *out, const char *prefix, struct slice text)
{
    size_t plen = strlen(prefix), pos = 0;
    for (;;) {
        size_t j = pos;
        while (j < text.n && text.p[j] != '\r' && text.p[j] != '\n') j++;
        if (!buf_append(out, prefix, plen) || !buf_append(out, text.p + pos, j - pos) ||
            !buf_append(out, "\n", 1))
            return false;
        if (j == text.n) return true;
        j += (text.p[j] == '\r' && j + 1 < text.n && text.p[j + 1] == '\n') ? 2 : 1;
        pos = j;
    }
}

bool sse_write_event(struct buf *out, struct slice event, struct slice data)
{
    size_t start = out->n;
    if (event.n && (memchr(event.p, '\n', event.n) || memchr(event.p, '\r', event.n))) return false;
    bool ok = (event.n == 0 || (buf_append(out, "event: ", 7) && buf_append_slice(out, event) &&
                                buf_append(out, "\n", 1))) &&
              write_lines(out, "data: ", data) && buf_append(out, "\n", 1);
    if (!ok) out->n = start;
    return ok;
}

bool sse_write_data(struct buf *out, struct slice data)
{
    return sse_write_event(out, SLICE_NULL, data);
}

bool sse_write_done(struct buf *out)
{
    return buf_append_str(out, "data: [DONE]\n\n");
}

bool sse_write_comment(struct buf *out, struct slice text)
{
    size_t start = out->n;
    bool ok = write_lines(out, ": ", text) && buf_append(out, "\n", 1);
    if (!ok) out->n = start;
    return ok;
}
