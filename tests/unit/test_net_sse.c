/* test_net_sse.c — the incremental SSE parser and the SSE writer.
 *
 * The central property: however the bytes of a stream are split into reads (every split
 * point, byte by byte, random chunkings), the parser reports the same frames with the
 * same raw bytes and the same fields. Around it: line endings, comments, multi-line and
 * empty data, [DONE], the BOM, oversize frames, truncation at EOF, and the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/sse.h"

/* --- recorder ------------------------------------------------------------------------ */

/* One reported frame, copied. Oversize pieces of one frame are merged into one record
 * (their raw bytes concatenated) since how a large frame is cut depends on the reads. */
struct rec {
    enum sse_frame_kind kind;
    struct buf raw, event, data, id;
    bool has_id;
    long long retry;
    bool complete; /* oversize: the last piece was seen */
    int pieces;
};

struct recorder {
    struct rec items[64];
    int n;
    int stop_at; /* callback returns 7 when reporting frame number stop_at (1-based) */
    size_t max_pending_seen;
    struct sse_parser *parser;
};

static void rec_free(struct recorder *r)
{
    for (int i = 0; i < r->n; i++) {
        buf_free(&r->items[i].raw);
        buf_free(&r->items[i].event);
        buf_free(&r->items[i].data);
        buf_free(&r->items[i].id);
    }
    r->n = 0;
}

static int on_frame(void *ud, const struct sse_frame *f)
{
    struct recorder *r = ud;
    struct rec *x;
    if (f->kind == SSE_FRAME_OVERSIZE && r->n > 0 &&
        r->items[r->n - 1].kind == SSE_FRAME_OVERSIZE && !r->items[r->n - 1].complete) {
        x = &r->items[r->n - 1];
    } else {
        assert_true(r->n < 64);
        x = &r->items[r->n++];
        memset(x, 0, sizeof *x);
        x->kind = f->kind;
        buf_append_slice(&x->event, f->event);
        buf_append_slice(&x->data, f->data);
        buf_append_slice(&x->id, f->id);
        x->has_id = f->has_id;
        x->retry = f->retry;
    }
    x->pieces++;
    buf_append_slice(&x->raw, f->raw);
    x->complete = f->last;
    if (f->kind != SSE_FRAME_OVERSIZE) assert_true(f->last);
    if (r->stop_at && r->n == r->stop_at) return 7;
    return 0;
}

static void assert_buf_eq(const struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->n != n || (n && memcmp(b->p, s, n) != 0)) {
        fail_msg("got \"%.*s\" (%zu), want \"%s\" (%zu)", (int)b->n, b->p ? b->p : "", b->n, s, n);
    }
}

static void assert_bufs_equal(const struct buf *a, const struct buf *b)
{
    assert_int_equal(a->n, b->n);
    if (a->n) assert_memory_equal(a->p, b->p, a->n);
}

static void assert_same_frames(const struct recorder *a, const struct recorder *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const struct rec *x = &a->items[i], *y = &b->items[i];
        assert_int_equal(x->kind, y->kind);
        assert_bufs_equal(&x->raw, &y->raw);
        assert_bufs_equal(&x->event, &y->event);
        assert_bufs_equal(&x->data, &y->data);
        assert_bufs_equal(&x->id, &y->id);
        assert_int_equal(x->has_id, y->has_id);
        assert_int_equal(x->retry, y->retry);
        assert_int_equal(x->complete, y->complete);
    }
}

/* Parses `s` cut at the given offsets (ascending, strictly inside s) and finishes. */
static bool parse_cuts(struct recorder *r, size_t max, const char *s, size_t n, const size_t *cuts,
                       size_t ncuts)
{
    struct sse_parser p;
    sse_parser_init(&p, max, on_frame, r);
    size_t at = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        /* Feed from a private heap copy so ASan catches reads outside the chunk. */
        char *chunk = malloc(end - at + 1);
        memcpy(chunk, s + at, end - at);
        assert_int_equal(sse_parser_feed(&p, chunk, end - at), 0);
        free(chunk);
        if (p.pending.n > r->max_pending_seen) r->max_pending_seen = p.pending.n;
        at = end;
    }
    bool truncated = sse_parser_finish(&p);
    sse_parser_free(&p);
    return truncated;
}

static bool parse_whole(struct recorder *r, size_t max, const char *s)
{
    return parse_cuts(r, max, s, strlen(s), NULL, 0);
}

/* Checks that every one-cut split, byte-by-byte feeding and random chunkings of `s` give
 * exactly the frames of feeding it whole. Returns the reference frames in `ref`. */
static void check_all_splits(struct recorder *ref, size_t max, const char *s)
{
    size_t n = strlen(s);
    bool trunc = parse_whole(ref, max, s);

    for (size_t k = 1; k < n; k++) {
        struct recorder r = {0};
        assert_int_equal(parse_cuts(&r, max, s, n, &k, 1), trunc);
        assert_same_frames(ref, &r);
        rec_free(&r);
    }

    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t k = 1; k < n; k++) cuts[k - 1] = k;
    struct recorder bytewise = {0};
    assert_int_equal(parse_cuts(&bytewise, max, s, n, cuts, n ? n - 1 : 0), trunc);
    assert_same_frames(ref, &bytewise);
    rec_free(&bytewise);

    uint32_t seed = 12345;
    for (int round = 0; round < 100; round++) {
        size_t nc = 0, at = 0;
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 40;
            if (at >= n) break;
            cuts[nc++] = at;
        }
        struct recorder r = {0};
        assert_int_equal(parse_cuts(&r, max, s, n, cuts, nc), trunc);
        assert_same_frames(ref, &r);
        rec_free(&r);
    }
    free(cuts);
}

/* Checks that the frames' raw bytes, concatenated, give back the stream minus the blank
 * lines between frames: here, the whole stream (the samples have none). */
static void assert_raw_covers(const struct recorder *r, const char *s)
{
    struct buf all = BUF_INIT;
    for (int i = 0; i < r->n; i++) buf_append(&all, r->items[i].raw.p, r->items[i].raw.n);
    assert_buf_eq(&all, s);
    buf_free(&all);
}

/* --- realistic streams --------------------------------------------------------------- */

static const char openai_stream[] =
    ": OPENROUTER PROCESSING\n"
    "\n"
    "data: "
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":"
    "\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: "
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":"
    "\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\\n\\nworld\"},"
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: "
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":"
    "\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":"
    "\"stop\"}],\"usage\":null}\n"
    "\n"
    "data: "
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":"
    "\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,"
    "\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static const char claude_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],"
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":50,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Let me check.\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":40}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

static void test_openai_stream_every_split(void **state)
{
    struct recorder ref = {0};
    check_all_splits(&ref, 0, openai_stream);
    assert_int_equal(ref.n, 6);
    assert_int_equal(ref.items[0].kind, SSE_FRAME_COMMENT);
    assert_buf_eq(&ref.items[0].raw, ": OPENROUTER PROCESSING\n\n");
    assert_buf_eq(&ref.items[0].data, "");
    for (int i = 1; i < 6; i++) {
        assert_int_equal(ref.items[i].kind, SSE_FRAME_EVENT);
        assert_int_equal(ref.items[i].event.n, 0);
        assert_false(ref.items[i].has_id);
        assert_int_equal(ref.items[i].retry, -1);
    }
    buf_nul(&ref.items[2].data);
    assert_non_null(strstr(ref.items[2].data.p, "\"content\":\"Hello\\n\\nworld\""));
    assert_buf_eq(&ref.items[4].data,
                  "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":"
                  "1767225600,\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
                  "\"completion_tokens\":3,\"total_tokens\":12,\"prompt_tokens_details\":{"
                  "\"cached_tokens\":0}}}");
    assert_buf_eq(&ref.items[5].data, "[DONE]");
    assert_buf_eq(&ref.items[5].raw, "data: [DONE]\n\n");
    assert_raw_covers(&ref, openai_stream);
    rec_free(&ref);
}

static void test_claude_stream_every_split(void **state)
{
    struct recorder ref = {0};
    check_all_splits(&ref, 0, claude_stream);
    static const char *names[] = {"message_start",       "content_block_start", "ping",
                                  "content_block_delta", "content_block_stop",  "message_delta",
                                  "message_stop"};
    assert_int_equal(ref.n, 7);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(ref.items[i].kind, SSE_FRAME_EVENT);
        assert_buf_eq(&ref.items[i].event, names[i]);
    }
    assert_buf_eq(&ref.items[2].data, "{\"type\": \"ping\"}");
    assert_buf_eq(&ref.items[2].raw, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    assert_buf_eq(&ref.items[6].data, "{\"type\":\"message_stop\"}");
    assert_raw_covers(&ref, claude_stream);
    rec_free(&ref);
}

/* Replaces every "\n" of s by `eol`; caller frees. */
static char *with_eol(const char *s, const char *eol)
{
    struct buf b = BUF_INIT;
    for (; *s; s++) {
        if (*s == '\n')
            buf_append_str(&b, eol);
        else
            buf_append(&b, s, 1);
    }
    buf_nul(&b);
    return b.p;
}

static void check_eol_variant(const char *base, const char *eol)
{
    struct recorder lf = {0}, other = {0};
    char *s = with_eol(base, eol);
    parse_whole(&lf, 0, base);
    check_all_splits(&other, 0, s);
    assert_int_equal(lf.n, other.n);
    for (int i = 0; i < lf.n; i++) {
        assert_int_equal(lf.items[i].kind, other.items[i].kind);
        assert_bufs_equal(&lf.items[i].event, &other.items[i].event);
        assert_bufs_equal(&lf.items[i].data, &other.items[i].data);
        /* raw keeps the stream's own line endings */
        struct buf conv = BUF_INIT;
        buf_nul(&lf.items[i].raw);
        char *want = with_eol(lf.items[i].raw.p, eol);
        buf_append_str(&conv, want);
        assert_bufs_equal(&conv, &other.items[i].raw);
        buf_free(&conv);
        free(want);
    }
    assert_raw_covers(&other, s);
    rec_free(&lf);
    rec_free(&other);
    free(s);
}

static void test_crlf_line_endings(void **state)
{
    check_eol_variant(openai_stream, "\r\n");
    check_eol_variant(claude_stream, "\r\n");
}

static void test_cr_line_endings(void **state)
{
    check_eol_variant(openai_stream, "\r");
    check_eol_variant(claude_stream, "\r");
}

static void test_mixed_line_endings(void **state)
{
    struct recorder r = {0};
    /* LF then CRLF then CR frames in one stream; each frame keeps its own bytes. */
    const char *s = "data: a\n\n"
                    "event: e\r\ndata: b\r\n\r\n"
                    "data: c\rdata: d\r\r"
                    "data: e\n\r\n";
    check_all_splits(&r, 0, s);
    assert_int_equal(r.n, 4);
    assert_buf_eq(&r.items[0].raw, "data: a\n\n");
    assert_buf_eq(&r.items[1].raw, "event: e\r\ndata: b\r\n\r\n");
    assert_buf_eq(&r.items[1].event, "e");
    assert_buf_eq(&r.items[2].raw, "data: c\rdata: d\r\r");
    assert_buf_eq(&r.items[2].data, "c\nd");
    assert_buf_eq(&r.items[3].raw, "data: e\n\r\n");
    assert_buf_eq(&r.items[3].data, "e");
    rec_free(&r);
}

/* The CR that ends the blank line of a CRLF stream waits for its LF: split exactly between
 * them, the frame is reported once, with the LF. */
static void test_split_between_cr_and_lf(void **state)
{
    struct recorder r = {0};
    struct sse_parser p;
    sse_parser_init(&p, 0, on_frame, &r);
    assert_int_equal(sse_parser_feed(&p, "data: x\r\n\r", 10), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(sse_parser_feed(&p, "\ndata: y\r\n\r\n", 12), 0);
    assert_int_equal(r.n, 2);
    assert_buf_eq(&r.items[0].raw, "data: x\r\n\r\n");
    assert_buf_eq(&r.items[1].raw, "data: y\r\n\r\n");
    assert_false(sse_parser_finish(&p));
    sse_parser_free(&p);
    rec_free(&r);
}

/* A CR-only stream reports a frame at its blank-line CR, without waiting for more. */
static void test_cr_stream_reports_immediately(void **state)
{
    struct recorder r = {0};
    struct sse_parser p;
    sse_parser_init(&p, 0, on_frame, &r);
    assert_int_equal(sse_parser_feed(&p, "data: x\r\r", 9), 0);
    assert_int_equal(r.n, 1);
    assert_buf_eq(&r.items[0].data, "x");
    assert_false(sse_parser_finish(&p));
    sse_parser_free(&p);
    rec_free(&r);
}

/* --- fields -------------------------------------------------------------------------- */

static void test_comments(void **state)
{
    struct recorder r = {0};
    check_all_splits(&r, 0,
                     ": keep-alive\n\n"
                     ":\n:another\n\n"
                     ": before\ndata: x\n: after\n\n");
    assert_int_equal(r.n, 3);
    assert_int_equal(r.items[0].kind, SSE_FRAME_COMMENT);
    assert_buf_eq(&r.items[0].raw, ": keep-alive\n\n");
    assert_int_equal(r.items[1].kind, SSE_FRAME_COMMENT);
    assert_buf_eq(&r.items[1].raw, ":\n:another\n\n");
    /* a comment inside an event leaves it an event */
    assert_int_equal(r.items[2].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[2].data, "x");
    rec_free(&r);
}

static void test_multiline_and_empty_data(void **state)
{
    struct recorder r = {0};
    check_all_splits(&r, 0,
                     "data: first\ndata:second\ndata\ndata:  two spaces\n\n"
                     "data:\n\n"
                     "data\n\n"
                     "data:\ndata:\n\n"
                     "data: {\"a\":1}\n\n");
    assert_int_equal(r.n, 5);
    assert_buf_eq(&r.items[0].data, "first\nsecond\n\n two spaces");
    /* an empty data line is still an event with empty data (spec) */
    assert_int_equal(r.items[1].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[1].data, "");
    assert_int_equal(r.items[2].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[2].data, "");
    assert_buf_eq(&r.items[3].data, "\n");
    assert_buf_eq(&r.items[4].data, "{\"a\":1}");
    rec_free(&r);
}

static void test_event_id_retry_unknown(void **state)
{
    struct recorder r = {0};
    check_all_splits(&r, 0,
                     "event: first\nevent:second\nid: 42\nretry: 3000\nfoo: bar\ndata: x\n\n"
                     "retry: 12a\nid\ndata: y\n\n"
                     "event: nodata\nretry: 5\n\n"
                     "foo: only unknown\n\n");
    assert_int_equal(r.n, 4);
    assert_int_equal(r.items[0].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[0].event, "second");
    assert_buf_eq(&r.items[0].id, "42");
    assert_true(r.items[0].has_id);
    assert_int_equal(r.items[0].retry, 3000);
    assert_int_equal(r.items[1].retry, -1);
    assert_true(r.items[1].has_id);
    assert_buf_eq(&r.items[1].id, "");
    assert_buf_eq(&r.items[1].event, "");
    /* frames without data are not events, but their bytes are reported */
    assert_int_equal(r.items[2].kind, SSE_FRAME_NODATA);
    assert_buf_eq(&r.items[2].raw, "event: nodata\nretry: 5\n\n");
    assert_int_equal(r.items[2].retry, 5);
    assert_int_equal(r.items[3].kind, SSE_FRAME_NODATA);
    rec_free(&r);
}

static void test_id_with_nul_ignored(void **state)
{
    static const char s[] = "id: a\0b\ndata: z\n\n";
    struct recorder r = {0};
    assert_false(parse_cuts(&r, 0, s, sizeof s - 1, NULL, 0));
    assert_int_equal(r.n, 1);
    assert_false(r.items[0].has_id);
    assert_buf_eq(&r.items[0].data, "z");
    rec_free(&r);
}

static void test_blank_lines_between_frames(void **state)
{
    struct recorder r = {0};
    check_all_splits(&r, 0, "\n\r\n\rdata: a\n\n\n\n\r\ndata: b\n\n\n");
    assert_int_equal(r.n, 2);
    assert_buf_eq(&r.items[0].raw, "data: a\n\n");
    assert_buf_eq(&r.items[1].raw, "data: b\n\n");
    rec_free(&r);
}

static void test_bom(void **state)
{
    struct recorder r = {0};
    check_all_splits(&r, 0,
                     "\xEF\xBB\xBF"
                     "data: x\n\n");
    assert_int_equal(r.n, 1);
    assert_buf_eq(&r.items[0].raw, "data: x\n\n");
    assert_buf_eq(&r.items[0].data, "x");
    rec_free(&r);

    /* only at the start: later, the BOM bytes are part of a field name */
    check_all_splits(&r, 0,
                     "data: x\n\n\xEF\xBB\xBF"
                     "data: y\n\n");
    assert_int_equal(r.n, 2);
    assert_int_equal(r.items[1].kind, SSE_FRAME_NODATA);
    rec_free(&r);

    /* bytes that start like a BOM but are not one are content */
    check_all_splits(&r, 0,
                     "\xEF\xBB"
                     "data: x\n\n");
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].kind, SSE_FRAME_NODATA);
    assert_buf_eq(&r.items[0].raw, "\xEF\xBB"
                                   "data: x\n\n");
    rec_free(&r);

    /* a stream that is only part of a BOM ends truncated */
    assert_true(parse_whole(&r, 0, "\xEF\xBB"));
    assert_int_equal(r.n, 0);
    /* a stream that is only a BOM is empty */
    assert_false(parse_whole(&r, 0, "\xEF\xBB\xBF"));
    assert_int_equal(r.n, 0);
}

/* --- oversize ------------------------------------------------------------------------ */

static void test_oversize_event_passes_through(void **state)
{
    struct buf s = BUF_INIT;
    buf_append_str(&s, "data: small\n\n");
    buf_append_str(&s, "event: big\ndata: ");
    for (int i = 0; i < 300; i++) buf_append_str(&s, "x");
    buf_append_str(&s, "\ndata: more\n\n");
    buf_append_str(&s, ": ping\n\n");
    buf_append_str(&s, "data: after\n\n");
    buf_nul(&s);

    struct recorder r = {0};
    check_all_splits(&r, 100, s.p);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.items[0].kind, SSE_FRAME_EVENT);
    assert_int_equal(r.items[1].kind, SSE_FRAME_OVERSIZE);
    assert_true(r.items[1].complete);
    assert_int_equal(r.items[1].data.n, 0);
    assert_int_equal(r.items[1].event.n, 0);
    assert_int_equal(r.items[1].raw.n, 17 + 300 + 13);
    assert_int_equal(r.items[2].kind, SSE_FRAME_COMMENT);
    assert_int_equal(r.items[3].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[3].data, "after");
    assert_raw_covers(&r, s.p);
    rec_free(&r);

    /* fed in small reads, the parser never buffers more than the limit */
    size_t cuts[64], nc = 0;
    for (size_t at = 7; at < s.n; at += 7) cuts[nc++] = at;
    parse_cuts(&r, 100, s.p, s.n, cuts, nc);
    assert_true(r.max_pending_seen <= 100);
    assert_true(r.items[1].pieces > 1);
    rec_free(&r);
    buf_free(&s);
}

static void test_frame_exactly_at_limit_is_parsed(void **state)
{
    struct recorder r = {0};
    const char *s = "data: 0123456789\n\n"; /* 18 bytes */
    check_all_splits(&r, 18, s);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].kind, SSE_FRAME_EVENT);
    rec_free(&r);
    check_all_splits(&r, 17, s);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].kind, SSE_FRAME_OVERSIZE);
    assert_buf_eq(&r.items[0].raw, s);
    rec_free(&r);
}

static void test_oversize_crlf_end_split(void **state)
{
    /* the oversize frame's final CRLF blank line is split across reads */
    struct recorder r = {0};
    check_all_splits(&r, 16, "data: 0123456789abcdef\r\n\r\ndata: ok\r\n\r\n");
    assert_int_equal(r.n, 2);
    assert_int_equal(r.items[0].kind, SSE_FRAME_OVERSIZE);
    assert_buf_eq(&r.items[0].raw, "data: 0123456789abcdef\r\n\r\n");
    assert_int_equal(r.items[1].kind, SSE_FRAME_EVENT);
    assert_buf_eq(&r.items[1].raw, "data: ok\r\n\r\n");
    rec_free(&r);
}

/* --- finish, stop, reset ------------------------------------------------------------- */

static void test_finish_with_partial_frame(void **state)
{
    struct recorder r = {0};
    struct sse_parser p;
    sse_parser_init(&p, 0, on_frame, &r);
    assert_int_equal(sse_parser_feed(&p, "data: done\n\ndata: {\"trunc", 25), 0);
    assert_int_equal(r.n, 1);
    assert_true(sse_parser_finish(&p));
    struct slice rest = sse_parser_pending(&p);
    assert_int_equal(rest.n, 13);
    assert_memory_equal(rest.p, "data: {\"trunc", 13);
    assert_int_equal(r.n, 1);
    sse_parser_free(&p);
    rec_free(&r);

    /* a frame missing only its blank line is truncated too */
    assert_true(parse_whole(&r, 0, "data: x\n"));
    assert_int_equal(r.n, 0);
    /* blank lines alone are nothing */
    assert_false(parse_whole(&r, 0, "\n\r\n"));
    assert_false(parse_whole(&r, 0, ""));
    /* the blank-line CR of a CRLF stream is completed by EOF */
    assert_false(parse_whole(&r, 0, "data: x\r\n\r"));
    assert_int_equal(r.n, 1);
    assert_buf_eq(&r.items[0].raw, "data: x\r\n\r");
    assert_buf_eq(&r.items[0].data, "x");
    rec_free(&r);
    /* an unfinished oversize frame is truncated */
    assert_true(parse_whole(&r, 4, "data: long"));
    assert_int_equal(r.n, 1);
    assert_false(r.items[0].complete);
    rec_free(&r);
}

static void test_callback_stops_parser(void **state)
{
    struct recorder r = {.stop_at = 2};
    struct sse_parser p;
    sse_parser_init(&p, 0, on_frame, &r);
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 7);
    assert_int_equal(r.n, 2);
    rec_free(&r);

    /* after reset the parser starts a fresh stream (BOM allowed again) */
    r.stop_at = 0;
    sse_parser_reset(&p);
    assert_int_equal(sse_parser_feed(&p,
                                     "\xEF\xBB\xBF"
                                     "data: 9\n\n",
                                     12),
                     0);
    assert_int_equal(r.n, 1);
    assert_buf_eq(&r.items[0].data, "9");
    sse_parser_free(&p);
    rec_free(&r);
}

/* --- writer -------------------------------------------------------------------------- */

static void test_writer(void **state)
{
    struct buf out = BUF_INIT;
    assert_true(sse_write_event(&out, SLICE_LIT("message_stop"), SLICE_LIT("{\"type\":1}")));
    assert_buf_eq(&out, "event: message_stop\ndata: {\"type\":1}\n\n");
    out.n = 0;
    assert_true(sse_write_data(&out, SLICE_LIT("a\nb\r\nc\rd")));
    assert_buf_eq(&out, "data: a\ndata: b\ndata: c\ndata: d\n\n");
    out.n = 0;
    assert_true(sse_write_data(&out, SLICE_LIT("")));
    assert_buf_eq(&out, "data: \n\n");
    out.n = 0;
    assert_true(sse_write_done(&out));
    assert_buf_eq(&out, "data: [DONE]\n\n");
    out.n = 0;
    assert_true(sse_write_comment(&out, SLICE_LIT("keep-alive")));
    assert_buf_eq(&out, ": keep-alive\n\n");

    /* an event name with a line break is refused and nothing is written */
    out.n = 0;
    assert_true(sse_write_data(&out, SLICE_LIT("x")));
    size_t before = out.n;
    assert_false(sse_write_event(&out, SLICE_LIT("a\nb"), SLICE_LIT("x")));
    assert_false(sse_write_event(&out, SLICE_LIT("a\r"), SLICE_LIT("x")));
    assert_int_equal(out.n, before);
    buf_free(&out);
}

static void test_writer_round_trip(void **state)
{
    static const char *payloads[] = {"",
                                     "plain",
                                     "two\nlines",
                                     "trailing\n",
                                     "\n\nlead",
                                     "cr\rcrlf\r\nlf\n",
                                     " leading space",
                                     ": not a comment"};
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++)
        assert_true(sse_write_event(&out, SLICE_LIT("ev"), slice_from(payloads[i])));
    assert_true(sse_write_comment(&out, SLICE_LIT("multi\nline")));
    buf_nul(&out);

    struct recorder r = {0};
    check_all_splits(&r, 0, out.p);
    assert_int_equal(r.n, 9);
    /* CR and CRLF inside data come back as LF: SSE cannot carry them */
    static const char *want[] = {"",         "plain",          "two\nlines",     "trailing\n",
                                 "\n\nlead", "cr\ncrlf\nlf\n", " leading space", ": not a comment"};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r.items[i].kind, SSE_FRAME_EVENT);
        assert_buf_eq(&r.items[i].event, "ev");
        assert_buf_eq(&r.items[i].data, want[i]);
    }
    assert_int_equal(r.items[8].kind, SSE_FRAME_COMMENT);
    assert_buf_eq(&r.items[8].raw, ": multi\n: line\n\n");
    assert_raw_covers(&r, out.p);
    rec_free(&r);
    buf_free(&out);
}

/* --- differential test against a whole-input reference ------------------------------ */

/* The spec's algorithm over a complete input (no streaming): lines split at CRLF, LF or
 * CR; a blank line dispatches when data was seen. Records the dispatched events into r
 * and returns whether the input ends inside a frame (a non-blank line after the last
 * blank line). */
static bool reference_parse(struct recorder *r, const char *s, size_t n)
{
    size_t i = 0;
    struct buf event = BUF_INIT, data = BUF_INIT;
    size_t data_lines = 0;
    bool in_frame = false;

    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '\r' && s[j] != '\n') j++;
        if (j == n) {
            in_frame = true; /* an unterminated last line */
            break;
        }
        const char *line = s + i;
        size_t len = j - i;
        i = j + ((s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') ? 2 : 1);
        if (len == 0) {
            if (data_lines) {
                struct rec *x = &r->items[r->n++];
                memset(x, 0, sizeof *x);
                x->kind = SSE_FRAME_EVENT;
                buf_append(&x->event, event.p, event.n);
                buf_append(&x->data, data.p, data.n ? data.n - 1 : 0);
            }
            event.n = data.n = data_lines = 0;
            in_frame = false;
            continue;
        }
        in_frame = true;
        if (line[0] == ':') continue;
        const char *colon = memchr(line, ':', len);
        size_t nlen = colon ? (size_t)(colon - line) : len;
        const char *v = colon ? colon + 1 : line + len;
        size_t vlen = colon ? len - nlen - 1 : 0;
        if (vlen && v[0] == ' ') v++, vlen--;
        if (nlen == 4 && memcmp(line, "data", 4) == 0) {
            buf_append(&data, v, vlen);
            buf_append(&data, "\n", 1);
            data_lines++;
        } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
            event.n = 0;
            buf_append(&event, v, vlen);
        }
    }
    buf_free(&event);
    buf_free(&data);
    return in_frame;
}

static void test_random_streams_match_reference(void **state)
{
    static const char *tokens[] = {
        "data", "data:", "data: ", "event:", "event: e", "id:",  "retry: 9", ":",       "x",
        "y",    " ",     "\r",     "\n",     "\r\n",     "\n\n", "\r\r",     "\r\n\r\n"};
    const size_t ntok = sizeof tokens / sizeof *tokens;
    uint32_t seed = 4242;
    struct buf s = BUF_INIT;

    for (int round = 0; round < 3000; round++) {
        s.n = 0;
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 8 == 0) buf_append_str(&s, "\xEF\xBB\xBF");
        size_t count = 1 + (seed >> 20) % 30;
        for (size_t k = 0; k < count; k++) {
            seed = seed * 1103515245u + 12345u;
            buf_append_str(&s, tokens[(seed >> 16) % ntok]);
        }
        buf_nul(&s);

        struct recorder want = {0}, got = {0};
        bool want_trunc = reference_parse(&want, s.p, s.n);
        bool got_trunc = parse_whole(&got, 0, s.p);
        if (got_trunc != want_trunc) fail_msg("truncation differs on round %d", round);
        int k = 0;
        for (int i = 0; i < got.n; i++) {
            if (got.items[i].kind != SSE_FRAME_EVENT) continue;
            assert_true(k < want.n);
            assert_bufs_equal(&got.items[i].event, &want.items[k].event);
            assert_bufs_equal(&got.items[i].data, &want.items[k].data);
            k++;
        }
        assert_int_equal(k, want.n);

        /* the same frames, raw bytes included, for random splits */
        for (int v = 0; v < 8; v++) {
            size_t cuts[64], nc = 0, at = 0;
            for (;;) {
                seed = seed * 1103515245u + 12345u;
                at += 1 + (seed >> 16) % 6;
                if (at >= s.n || nc == 64) break;
                cuts[nc++] = at;
            }
            struct recorder split = {0};
            assert_int_equal(parse_cuts(&split, 0, s.p, s.n, cuts, nc), got_trunc);
            assert_same_frames(&got, &split);
            rec_free(&split);
        }
        rec_free(&want);
        rec_free(&got);
    }
    buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_stream_every_split),
        cmocka_unit_test(test_claude_stream_every_split),
        cmocka_unit_test(test_crlf_line_endings),
        cmocka_unit_test(test_cr_line_endings),
        cmocka_unit_test(test_mixed_line_endings),
        cmocka_unit_test(test_split_between_cr_and_lf),
        cmocka_unit_test(test_cr_stream_reports_immediately),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_multiline_and_empty_data),
        cmocka_unit_test(test_event_id_retry_unknown),
        cmocka_unit_test(test_id_with_nul_ignored),
        cmocka_unit_test(test_blank_lines_between_frames),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_oversize_event_passes_through),
        cmocka_unit_test(test_frame_exactly_at_limit_is_parsed),
        cmocka_unit_test(test_oversize_crlf_end_split),
        cmocka_unit_test(test_finish_with_partial_frame),
        cmocka_unit_test(test_callback_stops_parser),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_random_streams_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
