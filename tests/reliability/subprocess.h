/* The real eventsourcing_grpc_server as a subprocess, for the reliability and
 * security tests: started with extra environment settings and its output in a
 * log file, found on the port it prints, measured (resident memory) through
 * /proc, and stopped with SIGTERM. */
#ifndef ESG_TEST_SUBPROCESS_H
#define ESG_TEST_SUBPROCESS_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct server_process {
    pid_t pid;      /* 0 once reaped */
    int port;       /* the port it printed */
    char log[1100]; /* its stdout and stderr */
} server_process;

/* Starts ESG_SERVER_PROGRAM with the process's environment plus settings
 * ("KEY=value", n of them; they win over inherited ones), output appended to
 * log_path, and waits until it prints its port. Fails the test if it does not. */
void server_start(server_process *p, const char *log_path, const char *const *settings, size_t n);

/* The same with the server's descriptor limits (RLIMIT_NOFILE) set to *files. */
void server_start_with_files_limit(server_process *p, const char *log_path,
                                   const char *const *settings, size_t n,
                                   const struct rlimit *files);

/* Under ASan, writes into out the ASAN_OPTIONS setting that a measured server should start
 * with and returns true: the inherited options with a 16 MiB quarantine (256 MiB by default),
 * which the RSS would otherwise show as growth. Elsewhere, false. */
bool server_asan_setting(char *out, size_t size);

/* Sends SIGTERM, waits for the exit and returns the wait status. */
int server_stop(server_process *p);

/* Asserts the server is still running (not crashed). */
void server_assert_alive(const server_process *p);

/* The resident memory of the process, in KiB (VmRSS of /proc/PID/status). */
long process_rss_kib(pid_t pid);

/* The peak resident memory of the process so far, in KiB (VmHWM). */
long process_peak_rss_kib(pid_t pid);

/* Resets the peak (VmHWM) to the current RSS (Linux 4.0+, our own child). */
void process_reset_peak_rss(pid_t pid);

/* The whole log file, malloc'ed and NUL-terminated ("" when missing). */
char *read_text_file(const char *path);

/* Asserts that a plaintext Ping on target ("localhost:PORT") answers OK. */
void assert_ping_ok(const char *target);

/* Runs a program (argv[0] a path) with extra environment settings; its stdout
 * and stderr appended to log_path; returns its wait status. */
int run_program(char *const *argv, const char *log_path, const char *const *settings, size_t n);

#endif
