/* Prometheus metrics: histograms that any thread updates without a lock, and the text
 * exposition format (0.0.4) written family by family into a buffer. What is counted lives with
 * what it counts (the application, the server, the node); each writes its own families when
 * scraped. Internal: not part of the public API. */
#ifndef ESG_METRICS_H
#define ESG_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buffer.h"

/* The upper bounds (seconds) of every duration histogram: from 100 us, because a call or a
 * commit in memory takes tens of microseconds, to 10 s, the longest a client waits by default. */
#define ESG_HISTOGRAM_BOUNDS 16

typedef struct esg_histogram {
    atomic_uint_least64_t counts[ESG_HISTOGRAM_BOUNDS + 1]; /* per bucket (not cumulative);
                                                             * the last is above every bound */
    atomic_uint_least64_t sum_ns; /* the observations' sum, in nanoseconds */
} esg_histogram;

/* Adds an observation of seconds (from any thread; negative counts as 0). */
void esg_histogram_observe(esg_histogram *h, double seconds);

/* How many observations h holds. */
uint64_t esg_histogram_count(const esg_histogram *h);

/* Labels are given as a NULL-terminated list of name, value, name, value, ... (borrowed);
 * values are escaped here. NULL means no labels. */

/* Writes a family's HELP and TYPE lines ("counter", "gauge" or "histogram"). */
void esg_metrics_family(esg_buffer *out, const char *name, const char *type, const char *help);

/* Writes one sample of the family name. */
void esg_metrics_sample(esg_buffer *out, const char *name, const char *const *labels, double value);

/* Writes a histogram's samples (_bucket cumulative with le, _sum, _count) for the family name. */
void esg_metrics_histogram(esg_buffer *out, const char *name, const char *const *labels,
                           const esg_histogram *h);

/* Writes the process families every Prometheus client exports (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds), read from /proc and getrusage, and glibc's
 * malloc figures (eventsourcing_malloc_in_use_bytes, eventsourcing_malloc_free_bytes, from
 * mallinfo2; left out in sanitizer builds). */
void esg_metrics_process(esg_buffer *out);

#endif
