/* Helpers of the benchmark harness (see bench_util.h). */
#include "bench_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- Time ---- */

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_us(int64_t us)
{
    struct timespec pause = {.tv_sec = (time_t)(us / 1000000),
                             .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* ---- Samples ---- */

void bench_samples_add(bench_samples *s, double value)
{
    if (s->n_values == s->capacity) {
        size_t capacity = s->capacity ? s->capacity * 2 : 4096;
        double *values = realloc(s->values, capacity * sizeof *values);
        if (values == NULL)
            return; /* a lost sample is better than a lost run */
        s->values = values;
        s->capacity = capacity;
    }
    s->values[s->n_values++] = value;
}

void bench_samples_append(bench_samples *dst, const bench_samples *src)
{
    for (size_t i = 0; i < src->n_values; i++)
        bench_samples_add(dst, src->values[i]);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_samples_sort(bench_samples *s)
{
    if (s->n_values > 1)
        qsort(s->values, s->n_values, sizeof *s->values, compare_doubles);
}

double bench_samples_quantile(const bench_samples *s, double q)
{
    if (s->n_values == 0)
        return 0;
    size_t i = (size_t)(q * (double)(s->n_values - 1) + 0.5);
    return s->values[i < s->n_values ? i : s->n_values - 1];
}

void bench_samples_free(bench_samples *s)
{
    free(s->values);
    memset(s, 0, sizeof *s);
}

void bench_samples_write_cdf(const bench_samples *s, const char *path, double scale)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "esg_bench: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    size_t step = s->n_values > 1000 ? s->n_values / 1000 : 1;
    for (size_t i = 0; i < s->n_values; i += step)
        fprintf(f, "%.3f %.5f\n", s->values[i] * scale, (double)(i + 1) / (double)s->n_values);
    if (s->n_values > 0)
        fprintf(f, "%.3f 1.0\n", s->values[s->n_values - 1] * scale);
    fclose(f);
}

/* ---- Processes ---- */

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof address;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) == 0 &&
        getsockname(fd, (struct sockaddr *)&address, &len) == 0)
        port = ntohs(address.sin_port);
    close(fd);
    return port;
}

/* Whether the "KEY=VALUE" entry has the key of change ("KEY=..." or "KEY"). */
static bool same_key(const char *entry, const char *change)
{
    size_t n = strcspn(change, "=");
    return strncmp(entry, change, n) == 0 && entry[n] == '=';
}

pid_t bench_spawn(const char *program, char *const argv[], const char *const *changes,
                  size_t n_changes)
{
    return bench_spawn_logged(program, argv, changes, n_changes, NULL);
}

pid_t bench_spawn_logged(const char *program, char *const argv[], const char *const *changes,
                         size_t n_changes, const char *log_path)
{
    size_t n_environ = 0;
    while (environ[n_environ] != NULL)
        n_environ++;
    char **envp = calloc(n_environ + n_changes + 1, sizeof *envp);
    if (envp == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < n_environ; i++) {
        bool is_changed = false;
        for (size_t j = 0; j < n_changes && !is_changed; j++)
            is_changed = same_key(environ[i], changes[j]);
        if (!is_changed)
            envp[n++] = environ[i];
    }
    for (size_t j = 0; j < n_changes; j++)
        if (strchr(changes[j], '=') != NULL)
            envp[n++] = (char *)changes[j];
    envp[n] = NULL;

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (log_path == NULL) {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    } else { /* (a server logs info to stdout, warnings and errors to stderr) */
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, program, &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    free(envp);
    if (rc != 0) {
        fprintf(stderr, "esg_bench: cannot start %s: %s\n", program, strerror(rc));
        return -1;
    }
    return pid;
}

void bench_stop_process(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        bench_sleep_us(10000);
    }
    fprintf(stderr, "esg_bench: process %d ignored SIGTERM for 10 s; killing it\n", (int)pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

long bench_rss_kb(pid_t pid)
{
    return bench_status_kb(pid, "VmRSS");
}

/* A "Field: N kB" line of a /proc/PID file, or -1. */
static long proc_field_kb(pid_t pid, const char *file, const char *field)
{
    char path[96], line[256];
    size_t field_len = strlen(field);
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':') {
            kb = strtol(line + field_len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

long bench_status_kb(pid_t pid, const char *field)
{
    return proc_field_kb(pid, "status", field);
}

long bench_smaps_kb(pid_t pid, const char *field)
{
    return proc_field_kb(pid, "smaps_rollup", field);
}

int64_t bench_cpu_us(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *close = strrchr(text, ')');
    if (close == NULL)
        return -1;
    /* After "pid (comm)": state is field 3; utime and stime are fields 14 and 15. */
    unsigned long long utime = 0, stime = 0;
    if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    long ticks = sysconf(_SC_CLK_TCK);
    return (int64_t)((utime + stime) * 1000000ULL / (unsigned long long)(ticks > 0 ? ticks : 100));
}

size_t bench_children(const char *prefix, pid_t *out, size_t max)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    size_t n = 0;
    pid_t self = getpid();
    struct dirent *entry;
    while (n < max && (entry = readdir(proc)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        char path[300], text[512];
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces, so find the last ')'. */
        char *open = strchr(text, '('), *close = strrchr(text, ')');
        if (open == NULL || close == NULL)
            continue;
        int ppid = 0;
        char state = 0;
        if (sscanf(close + 1, " %c %d", &state, &ppid) != 2 || ppid != self)
            continue;
        *close = '\0';
        if (strncmp(open + 1, prefix, strlen(prefix)) == 0 ||
            strncmp(prefix, open + 1, strlen(open + 1)) == 0)
            out[n++] = (pid_t)atoi(entry->d_name);
    }
    closedir(proc);
    return n;
}

/* ---- Figures ---- */

static bench_figure figures[256];
static size_t n_figures;

bench_figure *bench_figure_find(const char *key)
{
    for (size_t i = 0; i < n_figures; i++)
        if (strcmp(figures[i].key, key) == 0)
            return &figures[i];
    return NULL;
}

void bench_record(const char *key, const char *label, const char *unit, bool higher_is_better,
                  const char *floor_key, double reference_lo, double reference_hi, double value)
{
    bench_figure *f = bench_figure_find(key);
    if (f == NULL) {
        if (n_figures == sizeof figures / sizeof figures[0])
            return;
        f = &figures[n_figures++];
        memset(f, 0, sizeof *f);
        snprintf(f->key, sizeof f->key, "%s", key);
        snprintf(f->label, sizeof f->label, "%s", label);
        snprintf(f->unit, sizeof f->unit, "%s", unit);
        snprintf(f->floor_key, sizeof f->floor_key, "%s", floor_key ? floor_key : "");
        f->higher_is_better = higher_is_better;
        f->reference_lo = reference_lo;
        f->reference_hi = reference_hi;
    }
    if (f->n_values < BENCH_MAX_RUNS)
        f->values[f->n_values++] = value;
}

size_t bench_n_figures(void)
{
    return n_figures;
}

bench_figure *bench_figure_at(size_t i)
{
    return i < n_figures ? &figures[i] : NULL;
}

double bench_figure_median(const bench_figure *f)
{
    if (f->n_values == 0)
        return 0;
    double sorted[BENCH_MAX_RUNS];
    memcpy(sorted, f->values, (size_t)f->n_values * sizeof *sorted);
    qsort(sorted, (size_t)f->n_values, sizeof *sorted, compare_doubles);
    size_t n = (size_t)f->n_values;
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

double bench_figure_min(const bench_figure *f)
{
    double m = f->n_values ? f->values[0] : 0;
    for (int i = 1; i < f->n_values; i++)
        m = fmin(m, f->values[i]);
    return m;
}

double bench_figure_max(const bench_figure *f)
{
    double m = f->n_values ? f->values[0] : 0;
    for (int i = 1; i < f->n_values; i++)
        m = fmax(m, f->values[i]);
    return m;
}

void bench_format(double value, char *out, size_t out_len)
{
    double a = fabs(value);
    if (a >= 1000) {
        /* Thousands separated by commas, as the issue writes them. */
        char digits[32];
        snprintf(digits, sizeof digits, "%.0f", a);
        size_t n = strlen(digits), j = 0;
        char text[48];
        if (value < 0)
            text[j++] = '-';
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && (n - i) % 3 == 0)
                text[j++] = ',';
            text[j++] = digits[i];
        }
        text[j] = '\0';
        snprintf(out, out_len, "%s", text);
    } else if (a >= 100) {
        snprintf(out, out_len, "%.0f", value);
    } else if (a >= 10) {
        snprintf(out, out_len, "%.1f", value);
    } else if (a > 0 && a < 0.1) {
        snprintf(out, out_len, "%.2g", value);
    } else {
        snprintf(out, out_len, "%.2f", value);
    }
}
