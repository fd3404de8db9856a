/* Time for timeouts and deadlines, on CLOCK_MONOTONIC (a change of the wall clock never
 * stretches or cuts a wait), and condition variables whose timed waits use that clock.
 * Internal: not part of the public API. */
#ifndef ESG_CLOCK_H
#define ESG_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (from an arbitrary start). */
int64_t esg_clock_now_ms(void);

/* The monotonic time ms milliseconds from now, for pthread_cond_timedwait on a condition made
 * by esg_cond_init. */
struct timespec esg_clock_deadline(int64_t ms);

/* The wall-clock time ms milliseconds from now: only for the calls that know no other clock
 * (pthread_mutex_timedlock). */
struct timespec esg_clock_wall_deadline(int64_t ms);

/* Seconds from since (a monotonic time) to now. */
double esg_clock_seconds_since(const struct timespec *since);

/* Makes cond with CLOCK_MONOTONIC for its timed waits. 0 or an errno value, as pthread's. */
int esg_cond_init(pthread_cond_t *cond);

/* Sleeps ms milliseconds (resumed after signals). */
void esg_clock_sleep_ms(int64_t ms);

#endif
