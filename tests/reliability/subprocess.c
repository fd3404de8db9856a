/* The real server as a subprocess (see subprocess.h). */
#include "subprocess.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_call.h"

/* How long a sanitized server may take to start or stop: generous, it is not measured. */
#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 60000

char *read_text_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strdup("");
    char *text = testutil_read_all(fd);
    close(fd);
    return text;
}

int run_program(char *const *argv, const char *log_path, const char *const *settings, size_t n)
{
    pid_t pid = testutil_spawn(argv, log_path, settings, n, NULL, 0, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

void server_start(server_process *p, const char *log_path, const char *const *settings, size_t n)
{
    server_start_with_files_limit(p, log_path, settings, n, NULL);
}

void server_start_with_files_limit(server_process *p, const char *log_path,
                                   const char *const *settings, size_t n,
                                   const struct rlimit *files)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", log_path);
    char *argv[] = {ESG_SERVER_PROGRAM, NULL};
    p->pid = testutil_spawn(argv, log_path, settings, n, NULL, 0, files);
    long long started = esg_clock_now_ms();
    for (;;) {
        char *text = read_text_file(log_path);
        const char *found = strstr(text, "(port ");
        if (found != NULL)
            p->port = atoi(found + strlen("(port "));
        int status = 0;
        pid_t reaped = p->port > 0 ? 0 : waitpid(p->pid, &status, WNOHANG);
        if (reaped == p->pid) {
            p->pid = 0;
            fail_msg("the server exited (status %d) before listening:\n%s", status, text);
        }
        if (p->port > 0) {
            free(text);
            return;
        }
        if (esg_clock_now_ms() - started > START_TIMEOUT_MS) {
            kill(p->pid, SIGKILL);
            fail_msg("the server did not print its port:\n%s", text);
        }
        free(text);
        esg_clock_sleep_ms(20);
    }
}

bool server_asan_setting(char *out, size_t size)
{
#if defined(__SANITIZE_ADDRESS__)
    const char *inherited = getenv("ASAN_OPTIONS");
    snprintf(out, size, "ASAN_OPTIONS=%s%squarantine_size_mb=16", inherited ? inherited : "",
             inherited && inherited[0] ? ":" : "");
    return true;
#else
    (void)out;
    (void)size;
    return false;
#endif
}

int server_stop(server_process *p)
{
    int status = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    long long started = esg_clock_now_ms();
    for (;;) {
        pid_t reaped = waitpid(p->pid, &status, WNOHANG);
        if (reaped == p->pid)
            break;
        if (esg_clock_now_ms() - started > STOP_TIMEOUT_MS) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->pid = 0;
            fail_msg("the server did not stop within %d ms of SIGTERM", STOP_TIMEOUT_MS);
        }
        esg_clock_sleep_ms(20);
    }
    p->pid = 0;
    return status;
}

void server_assert_alive(const server_process *p)
{
    int status = 0;
    assert_true(p->pid > 0);
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
        char *text = read_text_file(p->log);
        fail_msg("the server died (wait status %d):\n%s", status, text);
    }
}

/* A "Name:   N kB" line of /proc/PID/status, in KiB. */
static long status_kib(pid_t pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    char line[256];
    long kib = -1;
    size_t name_len = strlen(name);
    while (fgets(line, sizeof line, file) != NULL)
        if (strncmp(line, name, name_len) == 0 && line[name_len] == ':')
            kib = atol(line + name_len + 1);
    fclose(file);
    assert_true(kib > 0);
    return kib;
}

long process_rss_kib(pid_t pid)
{
    return status_kib(pid, "VmRSS");
}

void process_reset_peak_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/clear_refs", (long)pid);
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
        return;
    }
    fputs("5", file); /* 5: reset the peak RSS to the current RSS */
    fclose(file);
}

long process_peak_rss_kib(pid_t pid)
{
    return status_kib(pid, "VmHWM");
}

void assert_ping_ok(const char *target)
{
    grpc_channel *channel = raw_channel(target, NULL);
    raw_reply reply;
    raw_call(channel, "/eventsourcing_grpc.Application/Ping", NULL, 0, 20000, &reply);
    if (reply.status != GRPC_STATUS_OK)
        fail_msg("Ping on %s: status %d '%s'", target, reply.status, reply.details);
    assert_int_equal(reply.len, 0);
    raw_reply_clear(&reply);
    grpc_channel_destroy(channel);
}
