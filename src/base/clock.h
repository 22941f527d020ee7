/* clock.h — the two clocks metarelay uses: monotonic for deadlines, cooldowns and
 * latencies (never stepped by NTP), wall-clock for what is stored or shown. */
#ifndef METARELAY_BASE_CLOCK_H
#define METARELAY_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t clock_mono_us(void)
{
    return clock_mono_ns() / 1000u;
}
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
/* Thread CPU time of the calling thread, in microseconds. */
static inline uint64_t clock_thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
