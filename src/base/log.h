/* log.h — diagnostic log lines (stderr) and the structured access log.
 *
 * Diagnostics: one line each, "2026-11-26T06:00:00.123Z level message", written with a
 * single write(2) so lines from different threads never interleave.
 * Access log: one JSON object per line on stdout, produced by the io threads into a
 * bounded queue and written by the `log-writer` thread; when the queue is full the
 * line is dropped and counted (an io thread never blocks on logging). */
#ifndef METARELAY_BASE_LOG_H
#define METARELAY_BASE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Minimum level printed (default LOG_INFO); set once at start, before threads run. */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An info line printed whatever the level (start-up banner, stop). */
void log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Starts the log-writer thread (access log to fd `fd`, usually 1). 0 or -1. */
int access_log_start(int fd);
/* Copies one line (without its newline) into the queue; never blocks. Safe from any thread.
 * Without a started writer the line is dropped. */
void access_log_push(const char *line, size_t n);
/* Flushes what is queued and joins the writer thread. */
void access_log_stop(void);
/* Lines dropped because the queue was full. */
uint64_t access_log_dropped(void);

#endif
