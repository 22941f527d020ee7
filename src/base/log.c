/* log.c — diagnostics on stderr and the access-log writer thread (see log.h).
 * The access-log queue is a mutex-protected ring of owned lines; producers only hold the
 * mutex for a pointer store, and drop (counting) when the ring is full. */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level lvl)
{
    min_level = lvl;
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[lvl]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void log_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_INFO, fmt, ap);
    va_end(ap);
}

#define RING_SIZE 8192 /* lines */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *lines[RING_SIZE];
    size_t lens[RING_SIZE];
    size_t head, tail; /* head: next to write out; tail: next free */
    bool running, stopping;
    int fd;
    pthread_t thread;
    atomic_uint_fast64_t dropped;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *writer_main(void *arg)
{
    (void)arg;
    struct iovec iov[128];
    char *owned[64];
    pthread_mutex_lock(&q.mu);
    for (;;) {
        while (q.head == q.tail && !q.stopping) pthread_cond_wait(&q.cv, &q.mu);
        if (q.head == q.tail && q.stopping) break;
        int k = 0;
        while (q.head != q.tail && k < 64) {
            size_t i = q.head % RING_SIZE;
            owned[k] = q.lines[i];
            iov[2 * k].iov_base = q.lines[i];
            iov[2 * k].iov_len = q.lens[i];
            iov[2 * k + 1].iov_base = "\n";
            iov[2 * k + 1].iov_len = 1;
            q.head++;
            k++;
        }
        pthread_mutex_unlock(&q.mu);
        ssize_t w = writev(q.fd, iov, 2 * k);
        (void)w;
        for (int i = 0; i < k; i++) free(owned[i]);
        pthread_mutex_lock(&q.mu);
    }
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

int access_log_start(int fd)
{
    q.fd = fd;
    q.stopping = false;
    if (pthread_create(&q.thread, NULL, writer_main, NULL) != 0) return -1;
    q.running = true;
    return 0;
}

void access_log_push(const char *line, size_t n)
{
    if (!q.running) return;
    char *copy = malloc(n);
    if (!copy) {
        atomic_fetch_add(&q.dropped, 1);
        return;
    }
    memcpy(copy, line, n);
    pthread_mutex_lock(&q.mu);
    if (q.tail - q.head >= RING_SIZE || q.stopping) {
        pthread_mutex_unlock(&q.mu);
        free(copy);
        atomic_fetch_add(&q.dropped, 1);
        return;
    }
    size_t i = q.tail % RING_SIZE;
    q.lines[i] = copy;
    q.lens[i] = n;
    q.tail++;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
}

void access_log_stop(void)
{
    if (!q.running) return;
    pthread_mutex_lock(&q.mu);
    q.stopping = true;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
    pthread_join(q.thread, NULL);
    q.running = false;
}

uint64_t access_log_dropped(void)
{
    return atomic_load(&q.dropped);
}
