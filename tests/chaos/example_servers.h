/* The example system (Orders -> Reservations -> Orders -> Payments -> Orders) run as
 * eventsourcing_grpc_server processes on loopback ports, one per application or, on PostgreSQL,
 * two replicas of each behind one address (a list), on SQLite files or PostgreSQL, for the chaos
 * and soak tests: start, kill, restart, sample memory, and check the invariants of the stores
 * once the system is quiet. Servers are numbered app * n_replicas + replica. Every check fails
 * the running cmocka test. */
#ifndef ESG_TEST_EXAMPLE_SERVERS_H
#define ESG_TEST_EXAMPLE_SERVERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "esg/grpc.h"

#define EXAMPLE_N_APPS 3
#define EXAMPLE_MAX_REPLICAS 2
#define EXAMPLE_MAX_SERVERS (EXAMPLE_N_APPS * EXAMPLE_MAX_REPLICAS)
#define EXAMPLE_ADDRESS_SIZE 64
enum { EXAMPLE_ORDERS, EXAMPLE_RESERVATIONS, EXAMPLE_PAYMENTS };
extern const char *const example_app_names[EXAMPLE_N_APPS];

typedef enum example_backend { EXAMPLE_SQLITE, EXAMPLE_POSTGRES } example_backend;

typedef struct example_servers {
    example_backend backend;
    char *dir;                     /* databases (SQLite) and server logs; owned */
    const char *server_program;    /* eventsourcing_grpc_server */
    const char *valgrind_log;      /* when not NULL, servers run under valgrind, logs here + app */
    const char *max_pull_interval; /* MAX_PULL_INTERVAL, seconds */
    size_t n_replicas;             /* servers per application */
    /* Each application's address: its replicas' listen addresses, comma-separated. */
    char addresses[EXAMPLE_N_APPS][EXAMPLE_ADDRESS_SIZE * EXAMPLE_MAX_REPLICAS];
    char listen_addresses[EXAMPLE_MAX_SERVERS][EXAMPLE_ADDRESS_SIZE]; /* localhost:port each */
    pid_t pids[EXAMPLE_MAX_SERVERS];     /* running servers, 0 when stopped */
    char logs[EXAMPLE_MAX_SERVERS][600]; /* the current log of each */
    int n_starts[EXAMPLE_MAX_SERVERS];   /* starts so far, for log names */
    int64_t ready_timeout_ms;            /* the longest wait for a Ping */
    bool has_metrics;                    /* servers serve /metrics (set before starting them) */
    int metrics_ports[EXAMPLE_MAX_SERVERS];
} example_servers;

/* ---- Randomness (time is the library's esg_clock_now_ms, via testutil.h) ---- */
/* A seeded generator (splitmix64), so that a failing run can be replayed. */
uint64_t example_random(uint64_t *state);
/* An integer from the environment, or fallback when unset or empty. */
int64_t example_env_int(const char *key, int64_t fallback);
/* Whether this build has sanitizers (slower servers: generous timeouts). */
bool example_is_sanitized(void);

/* Freezes a running server for ms (SIGSTOP, then SIGCONT), as a hung machine would: its
 * connections stay open and nothing answers on them. */
void example_servers_freeze(example_servers *s, size_t server, int64_t ms);

/* Cuts the loopback port off for ms, both ways (nftables: in the namespace of
 * tests/chaos/in_network_namespace.sh, whose chain "inet esg_chaos cut" it fills and empties): a
 * network partition between whoever listens there and everyone else. */
void example_cut_off(const char *port, int64_t ms);

/* ---- Servers ---- */
/* Prepares a folder (under TMPDIR) and free ports for n_replicas servers of each application (2
 * only on PostgreSQL); for PostgreSQL also an empty database "esg_chaos" of the test server
 * (POSTGRES_* from postgres-test-server.sh run, or patroni-test-cluster.sh run). */
void example_servers_init(example_servers *s, example_backend backend, const char *server_program,
                          size_t n_replicas);
/* How many servers there are (n_replicas of each application), and the application of one. */
size_t example_n_servers(const example_servers *s);
size_t example_app_of(const example_servers *s, size_t server);
/* Runs a command of the PostgreSQL test server's script on its folder: "restart" (sessions
 * end) with postgres-test-server.sh, "switchover", "kill-postmaster" or "crash-leader" with
 * patroni-test-cluster.sh. */
void example_postgres_command(const char *what);
/* Starts a server and waits until it answers a Ping. */
void example_servers_start(example_servers *s, size_t server);
/* Sends sig to a server and reaps it; its wait status. */
int example_servers_stop(example_servers *s, size_t server, int sig);
/* Stops every running server with SIGTERM; fails unless each exits 0 (a sanitizer report or a
 * leak makes the exit code non-zero). */
void example_servers_stop_all_cleanly(example_servers *s);
/* A running server's metrics (has_metrics), the text of its /metrics (malloc'ed). */
char *example_servers_metrics(const example_servers *s, size_t server);
/* Fails, printing its log, when a server exited on its own. */
void example_servers_check_alive(example_servers *s);
/* Kills what runs (teardown), removes the folder unless keep, frees. */
void example_servers_cleanup(example_servers *s, bool keep);
void example_servers_print_log(const example_servers *s, size_t server);
/* A memory figure of a server in KiB from /proc/PID/status, field one of its "kB" lines
 * ("VmRSS": the resident memory; "RssAnon": the part not backed by files, that is without the
 * pages of its libraries), 0 when unknown. */
int64_t example_servers_status_kib(const example_servers *s, size_t server, const char *field);
/* A client of app (all its replicas) with quick connection attempts: NULL when it does not
 * answer. */
esg_client *example_connect(const example_servers *s, size_t app, int max_attempts);

/* ---- The invariants ---- */
typedef struct example_counts {
    size_t n_orders; /* Order.Created in Orders' log */
    size_t n_paid;   /* Order.Paid */
    size_t n_notifications[EXAMPLE_N_APPS];
    /* [follower][leader]: the highest id in the leader's log of a topic the follower's policy
     * follows (its type's follow_topics; every topic without them), 0 when none. */
    int64_t last_followed[EXAMPLE_N_APPS][EXAMPLE_N_APPS];
} example_counts;
/* Reads the three logs over gRPC: the counts, for waiting until the system is quiet. */
bool example_read_counts(const example_servers *s, example_counts *out);
/* Waits until every order in Orders' log is reserved and paid and every follower tracked the
 * last notification it follows in each of its leaders' logs; fails after timeout_ms. */
void example_wait_quiet(example_servers *s, int64_t timeout_ms);
/* Checks, on a quiet system whose servers run: ids 1..n without gaps in each log; each order
 * created once, reserved once, paid once (versions 1, 2, 3); one reservation and one payment per
 * order, with the ids the example derives; every acknowledged order among them; then (servers
 * stopped) each follower's tracking records are exactly the ids of the notifications it follows
 * in each leader's log (1..n where it follows every topic), and SQLite
 * files pass PRAGMA integrity_check. Fills counts. */
void example_check_invariants(example_servers *s, const esg_uuid *acked, size_t n_acked,
                              example_counts *counts);
#endif
