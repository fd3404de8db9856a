/* Helpers of the benchmark harness: clocks, samples and percentiles, free
 * ports, server subprocesses and their resident memory, and the table of
 * figures (one value per run) that the report is written from. */
#ifndef ESG_BENCH_UTIL_H
#define ESG_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_RUNS 32

/* ---- Time ---- */

int64_t bench_now_ns(void);
void bench_sleep_us(int64_t us);

/* ---- Samples (latencies, in microseconds) ---- */

typedef struct bench_samples {
    double *values; /* owned */
    size_t n_values;
    size_t capacity;
} bench_samples;

void bench_samples_add(bench_samples *s, double value);
void bench_samples_append(bench_samples *dst, const bench_samples *src);
void bench_samples_sort(bench_samples *s);
/* The q-quantile (0..1) of sorted samples; 0 when empty. */
double bench_samples_quantile(const bench_samples *s, double q);
void bench_samples_free(bench_samples *s);
/* Writes sorted samples as "value fraction" lines (at most ~1000 points),
 * for gnuplot's cumulative distribution plots; scale multiplies values. */
void bench_samples_write_cdf(const bench_samples *s, const char *path, double scale);

/* ---- Processes ---- */

/* A port on 127.0.0.1 nobody listens on now. */
int bench_free_port(void);

/* Spawns program with argv (NULL-terminated) and the process environment
 * changed by changes: "KEY=VALUE" sets, "KEY" removes. stdout goes to
 * /dev/null, stderr is kept. Returns the pid, or -1. */
pid_t bench_spawn(const char *program, char *const argv[], const char *const *changes,
                  size_t n_changes);
/* The same with stdout and stderr (a server's log) written to the file log_path. */
pid_t bench_spawn_logged(const char *program, char *const argv[], const char *const *changes,
                         size_t n_changes, const char *log_path);

/* SIGTERM, then SIGKILL after 10 s (a server under valgrind takes a while); reaps. */
void bench_stop_process(pid_t pid);

/* VmRSS of pid in kB, or -1. */
long bench_rss_kb(pid_t pid);

/* A field of /proc/PID/status in kB ("VmRSS", "RssAnon", "RssFile"), or -1. */
long bench_status_kb(pid_t pid, const char *field);

/* A field of /proc/PID/smaps_rollup in kB ("Pss", "Private_Clean", "Private_Dirty", ...), or -1. */
long bench_smaps_kb(pid_t pid, const char *field);

/* CPU time (user and system) pid has used, in microseconds, or -1. */
int64_t bench_cpu_us(pid_t pid);

/* The pids of this process's children whose command name starts with
 * prefix; returns how many (at most max). */
size_t bench_children(const char *prefix, pid_t *out, size_t max);

/* ---- Figures ---- */

typedef struct bench_figure {
    char key[96];          /* e.g. "memory/create_new_order/8" */
    char label[160];       /* what a reader sees */
    char unit[16];         /* "calls/s", "us", "ms", "MB", "orders/s" */
    bool higher_is_better; /* throughputs */
    char floor_key[96];    /* the floor's figure to divide by, "" for none */
    double reference_lo;   /* the Python reference (issue 8), NAN for none */
    double reference_hi;
    double values[BENCH_MAX_RUNS]; /* one per run */
    int n_values;
} bench_figure;

/* Records value for the figure key, creating it with the given description
 * the first time. floor_key may be NULL; reference_lo/hi NAN for none. */
void bench_record(const char *key, const char *label, const char *unit, bool higher_is_better,
                  const char *floor_key, double reference_lo, double reference_hi, double value);

bench_figure *bench_figure_find(const char *key);
size_t bench_n_figures(void);
bench_figure *bench_figure_at(size_t i);

/* Median, min and max of a figure's values (0 when none). */
double bench_figure_median(const bench_figure *f);
double bench_figure_min(const bench_figure *f);
double bench_figure_max(const bench_figure *f);

/* A number in a few significant digits, for tables. */
void bench_format(double value, char *out, size_t out_len);

#endif
