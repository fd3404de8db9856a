/* Prometheus metrics (see metrics.h). Counters are plain atomics where they are counted; this
 * file holds the histograms and the text format. */
#include "core/metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const double bounds[ESG_HISTOGRAM_BOUNDS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void esg_histogram_observe(esg_histogram *h, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    size_t i = 0;
    while (i < ESG_HISTOGRAM_BOUNDS && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&h->sum_ns, ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX / 2,
                              memory_order_relaxed);
}

uint64_t esg_histogram_count(const esg_histogram *h)
{
    uint64_t count = 0;
    for (size_t i = 0; i <= ESG_HISTOGRAM_BOUNDS; i++)
        count += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return count;
}

void esg_metrics_family(esg_buffer *out, const char *name, const char *type, const char *help)
{
    esg_buffer_put_str(out, "# HELP ");
    esg_buffer_put_str(out, name);
    esg_buffer_put_char(out, ' ');
    esg_buffer_put_str(out, help); /* ours: no backslash or newline to escape */
    esg_buffer_put_str(out, "\n# TYPE ");
    esg_buffer_put_str(out, name);
    esg_buffer_put_char(out, ' ');
    esg_buffer_put_str(out, type);
    esg_buffer_put_char(out, '\n');
}

/* A label value with the format's three escapes (backslash, double quote, newline). */
static void put_label_value(esg_buffer *out, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            esg_buffer_put_char(out, '\\');
        if (*p == '\n')
            esg_buffer_put_str(out, "\\n");
        else
            esg_buffer_put_char(out, *p);
    }
}

/* {a="x",b="y"} with one more pair (extra_name, extra_value) when extra_name is not NULL. */
static void put_labels(esg_buffer *out, const char *const *labels, const char *extra_name,
                       const char *extra_value)
{
    bool has_any = (labels != NULL && labels[0] != NULL) || extra_name != NULL;
    if (!has_any)
        return;
    esg_buffer_put_char(out, '{');
    bool is_first = true;
    for (size_t i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        if (!is_first)
            esg_buffer_put_char(out, ',');
        is_first = false;
        esg_buffer_put_str(out, labels[i]);
        esg_buffer_put_str(out, "=\"");
        put_label_value(out, labels[i + 1]);
        esg_buffer_put_char(out, '"');
    }
    if (extra_name != NULL) {
        if (!is_first)
            esg_buffer_put_char(out, ',');
        esg_buffer_put_str(out, extra_name);
        esg_buffer_put_str(out, "=\"");
        esg_buffer_put_str(out, extra_value);
        esg_buffer_put_char(out, '"');
    }
    esg_buffer_put_char(out, '}');
}

/* A value as the format writes it: integers whole, others with 15 significant digits. */
static void put_value(esg_buffer *out, double value)
{
    char text[40];
    if (isnan(value))
        snprintf(text, sizeof text, "NaN");
    else if (isinf(value))
        snprintf(text, sizeof text, value > 0 ? "+Inf" : "-Inf");
    else if (value > -9e15 && value < 9e15 && value == (double)(long long)value)
        snprintf(text, sizeof text, "%lld", (long long)value);
    else
        snprintf(text, sizeof text, "%.15g", value);
    esg_buffer_put_char(out, ' ');
    esg_buffer_put_str(out, text);
    esg_buffer_put_char(out, '\n');
}

static void put_sample(esg_buffer *out, const char *name, const char *suffix,
                       const char *const *labels, const char *extra_name, const char *extra_value,
                       double value)
{
    esg_buffer_put_str(out, name);
    esg_buffer_put_str(out, suffix);
    put_labels(out, labels, extra_name, extra_value);
    put_value(out, value);
}

void esg_metrics_sample(esg_buffer *out, const char *name, const char *const *labels, double value)
{
    put_sample(out, name, "", labels, NULL, NULL, value);
}

void esg_metrics_histogram(esg_buffer *out, const char *name, const char *const *labels,
                           const esg_histogram *h)
{
    uint64_t cumulative = 0;
    char le[24];
    for (size_t i = 0; i <= ESG_HISTOGRAM_BOUNDS; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < ESG_HISTOGRAM_BOUNDS)
            snprintf(le, sizeof le, "%g", bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        put_sample(out, name, "_bucket", labels, "le", le, (double)cumulative);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    put_sample(out, name, "_sum", labels, NULL, NULL, sum);
    put_sample(out, name, "_count", labels, NULL, NULL, (double)cumulative);
}

/* ---- The process families ---- */

/* The process's start, in seconds since the epoch: its start in clock ticks after boot
 * (/proc/self/stat, field 22) plus the boot time (/proc/stat, btime). -1 when unknown. */
static double process_start_time(void)
{
    char line[1024];
    double start_ticks = -1, boot_time = -1;
    FILE *stat = fopen("/proc/self/stat", "r");
    if (stat != NULL) {
        size_t n = fread(line, 1, sizeof line - 1, stat);
        line[n] = '\0';
        fclose(stat);
        /* Fields after the command's closing parenthesis, which may itself hold spaces. */
        const char *p = strrchr(line, ')');
        unsigned long long ticks = 0;
        /* state is field 3; starttime is field 22: skip 18 fields after the state */
        if (p != NULL && sscanf(p + 2,
                                "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                                "%*s %*s %*s %*s %*s %llu",
                                &ticks) == 1)
            start_ticks = (double)ticks;
    }
    FILE *proc_stat = fopen("/proc/stat", "r");
    while (proc_stat != NULL && fgets(line, sizeof line, proc_stat) != NULL) {
        unsigned long long btime = 0;
        if (sscanf(line, "btime %llu", &btime) == 1) {
            boot_time = (double)btime;
            break;
        }
    }
    if (proc_stat != NULL)
        fclose(proc_stat);
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    if (start_ticks < 0 || boot_time < 0 || ticks_per_second <= 0)
        return -1;
    return boot_time + start_ticks / (double)ticks_per_second;
}

static double open_fds(void)
{
    DIR *fds = opendir("/proc/self/fd");
    if (fds == NULL)
        return -1;
    double n = 0;
    for (struct dirent *entry = readdir(fds); entry != NULL; entry = readdir(fds))
        if (entry->d_name[0] != '.')
            n++;
    closedir(fds);
    return n - 1; /* not the directory's own descriptor */
}

/* A family of one sample, skipped when the value could not be read (negative). */
static void put_single(esg_buffer *out, const char *name, const char *type, const char *help,
                       double value)
{
    if (value < 0)
        return;
    esg_metrics_family(out, name, type, help);
    esg_metrics_sample(out, name, NULL, value);
}

/* glibc's malloc, summed over its arenas: what the program holds, and what malloc keeps free
 * without giving it back. Beside the RSS they tell a growing heap (a leak, or a cache) from
 * fragmentation (in use flat, free and RSS up). Not under a sanitizer, which brings its own
 * allocator: glibc's figures would not describe it. */
static void put_malloc(esg_buffer *out)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    struct mallinfo2 heap = mallinfo2();
    put_single(out, "eventsourcing_malloc_in_use_bytes", "gauge",
               "Bytes the process holds from malloc (glibc's arenas and mmapped chunks).",
               (double)(heap.uordblks + heap.hblkhd));
    put_single(out, "eventsourcing_malloc_free_bytes", "gauge",
               "Free bytes malloc keeps in its arenas without returning them to the system.",
               (double)heap.fordblks);
#else
    (void)out;
#endif
}

void esg_metrics_process(esg_buffer *out)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) == 0)
        put_single(out, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.",
                   (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                       (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6);
    unsigned long long pages_virtual = 0, pages_resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    bool has_statm =
        statm != NULL && fscanf(statm, "%llu %llu", &pages_virtual, &pages_resident) == 2;
    if (statm != NULL)
        fclose(statm);
    double page_size = (double)sysconf(_SC_PAGESIZE);
    if (has_statm) {
        put_single(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                   (double)pages_virtual * page_size);
        put_single(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                   (double)pages_resident * page_size);
    }
    put_single(out, "process_open_fds", "gauge", "Number of open file descriptors.", open_fds());
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0)
        put_single(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                   files.rlim_cur == RLIM_INFINITY ? 1e18 : (double)files.rlim_cur);
    put_single(out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", process_start_time());
    put_malloc(out);
}
