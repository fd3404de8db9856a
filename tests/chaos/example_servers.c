/* The example system as three server processes, and the invariants of its stores (see
 * example_servers.h). Shared by test_chaos and test_soak. */
#include "example_servers.h"

#include "grpc/exit_codes.h"
#include "sqlite_testutil.h"
#include "testutil.h"
#include "esg/example.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC(name) "eventsourcing_grpc.example:" name
#define CHAOS_DATABASE "esg_chaos"

const char *const example_app_names[EXAMPLE_N_APPS] = {"Orders", "Reservations", "Payments"};
static const esg_application_type *const example_types[EXAMPLE_N_APPS] = {
    &esg_example_orders, &esg_example_reservations, &esg_example_payments};
static const char *const address_keys[EXAMPLE_N_APPS] = {"ORDERS_GRPC_SERVER_ADDRESS",
                                                         "RESERVATIONS_GRPC_SERVER_ADDRESS",
                                                         "PAYMENTS_GRPC_SERVER_ADDRESS"};
static const char *const dbname_keys[EXAMPLE_N_APPS] = {
    "ORDERS_SQLITE_DBNAME", "RESERVATIONS_SQLITE_DBNAME", "PAYMENTS_SQLITE_DBNAME"};

/* ---- Randomness and settings ----------------------------------------------------------------- */

uint64_t example_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t example_env_int(const char *key, int64_t fallback)
{
    const char *text = getenv(key);
    if (text == NULL || *text == '\0')
        return fallback;
    char *end = NULL;
    long long value = strtoll(text, &end, 0);
    if (*end != '\0')
        fail_msg("%s=%s is not an integer", key, text);
    return value;
}

bool example_is_sanitized(void)
{
#ifdef ESG_SANITIZED
    return true;
#else
    return false;
#endif
}

/* ---- Servers ----------------------------------------------------------------------------- */

static void free_addresses(example_servers *s)
{
    int ports[2 * EXAMPLE_MAX_SERVERS];
    size_t n_servers = example_n_servers(s);
    testutil_free_ports(ports, 2 * n_servers); /* gRPC's, then the metrics' */
    for (size_t i = 0; i < n_servers; i++) {
        s->metrics_ports[i] = ports[n_servers + i];
        snprintf(s->listen_addresses[i], EXAMPLE_ADDRESS_SIZE, "localhost:%d", ports[i]);
        char *list = s->addresses[example_app_of(s, i)];
        size_t len = strlen(list);
        snprintf(list + len, sizeof s->addresses[0] - len, "%s%s", len > 0 ? "," : "",
                 s->listen_addresses[i]);
    }
}

size_t example_n_servers(const example_servers *s)
{
    return EXAMPLE_N_APPS * s->n_replicas;
}

size_t example_app_of(const example_servers *s, size_t server)
{
    return server / s->n_replicas;
}

/* A libpq connection to the chaos database (or to dbname) of the test server. */
static PGconn *pg_connect(const char *dbname)
{
    /* (several hosts with Patroni: the primary is the one that takes writes) */
    const char *keys[] = {"host", "port", "user", "password", "dbname", "target_session_attrs",
                          NULL};
    const char *values[] = {getenv("POSTGRES_HOST"),
                            getenv("POSTGRES_PORT"),
                            getenv("POSTGRES_USER"),
                            getenv("POSTGRES_PASSWORD"),
                            dbname,
                            "read-write",
                            NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot connect to PostgreSQL database %s: %s", dbname, PQerrorMessage(conn));
    return conn;
}

static void pg_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}

/* An empty database of our own on the test server: other tests use its main database. */
static void prepare_postgres(void)
{
    const char *script = getenv("ESG_POSTGRES_TEST_SERVER");
    const char *dir = getenv("ESG_POSTGRES_TEST_DIR");
    if (script == NULL || dir == NULL || getenv("POSTGRES_HOST") == NULL)
        fail_msg("run me with scripts/postgres-test-server.sh run DIR -- ...");
    char command[2048];
    snprintf(command, sizeof command, "'%s' createdb '%s' %s >/dev/null", script, dir,
             CHAOS_DATABASE);
    if (system(command) != 0)
        fail_msg("%s failed", command);
    PGconn *conn = pg_connect(CHAOS_DATABASE);
    pg_exec(conn, "SET client_min_messages = warning");
    for (size_t i = 0; i < EXAMPLE_N_APPS; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %c%s_events, %c%s_tracking",
                 example_app_names[i][0] + ('a' - 'A'), example_app_names[i] + 1,
                 example_app_names[i][0] + ('a' - 'A'), example_app_names[i] + 1);
        pg_exec(conn, sql);
    }
    PQfinish(conn);
}

void example_postgres_command(const char *what)
{
    char command[2048];
    snprintf(command, sizeof command, "'%s' %s '%s' >/dev/null", getenv("ESG_POSTGRES_TEST_SERVER"),
             what, getenv("ESG_POSTGRES_TEST_DIR"));
    if (system(command) != 0)
        fail_msg("%s failed", command);
}

void example_servers_init(example_servers *s, example_backend backend, const char *server_program,
                          size_t n_replicas)
{
    memset(s, 0, sizeof *s);
    assert_true(n_replicas == 1 || (n_replicas == 2 && backend == EXAMPLE_POSTGRES));
    s->n_replicas = n_replicas;
    s->backend = backend;
    s->server_program = server_program;
    s->max_pull_interval = "1";
    s->ready_timeout_ms = example_is_sanitized() ? 60000 : 20000;
    s->dir = testutil_make_temp_dir();
    free_addresses(s);
    if (backend == EXAMPLE_POSTGRES)
        prepare_postgres();
}

/* Keys of the process's environment that would change what the tests configure. */
static const char *const unset_keys[] = {
    "SQLITE_DBNAME",           "APPLICATION_TOPIC",      "CREATE_TABLE",
    "POSTGRES_SCHEMA",         "ORDERS_POSTGRES_DBNAME", "RESERVATIONS_POSTGRES_DBNAME",
    "PAYMENTS_POSTGRES_DBNAME"};

void example_servers_print_log(const example_servers *s, size_t server)
{
    FILE *file = fopen(s->logs[server], "r");
    if (file == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", s->logs[server]);
    char line[1024];
    while (fgets(line, sizeof line, file) != NULL)
        fputs(line, stderr);
    fclose(file);
}

static esg_client *connect_to(const char *address, int max_attempts)
{
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = {
        .max_attempts = max_attempts, .backoff_ms = 50, .deadline_ms = 10000};
    if (esg_client_connect_address(address, &options, &client, &err) != ESG_OK)
        return NULL;
    return client;
}

esg_client *example_connect(const example_servers *s, size_t app, int max_attempts)
{
    return connect_to(s->addresses[app], max_attempts);
}

/* Starts the server process, logging to a new file. */
static void spawn_server(example_servers *s, size_t server)
{
    size_t app = example_app_of(s, server);
    char entries[16][600];
    size_t n = 0;
    snprintf(entries[n++], sizeof entries[0], "APPLICATION_TOPIC=eventsourcing_grpc.example:%s",
             example_app_names[app]);
    snprintf(entries[n++], sizeof entries[0], "SYSTEM_TOPIC=eventsourcing_grpc.example:system");
    snprintf(entries[n++], sizeof entries[0], "MAX_PULL_INTERVAL=%s", s->max_pull_interval);
    snprintf(entries[n++], sizeof entries[0], "GRPC_DNS_RESOLVER=native");
    for (size_t i = 0; i < EXAMPLE_N_APPS; i++)
        snprintf(entries[n++], sizeof entries[0], "%s=%s", address_keys[i], s->addresses[i]);
    snprintf(entries[n++], sizeof entries[0], "GRPC_LISTEN_ADDRESS=%s",
             s->listen_addresses[server]);
    if (s->has_metrics)
        snprintf(entries[n++], sizeof entries[0], "METRICS_SERVER_ADDRESS=localhost:%d",
                 s->metrics_ports[server]);
    if (s->backend == EXAMPLE_SQLITE) {
        snprintf(entries[n++], sizeof entries[0], "PERSISTENCE_MODULE=eventsourcing.sqlite");
        for (size_t i = 0; i < EXAMPLE_N_APPS; i++)
            snprintf(entries[n++], sizeof entries[0], "%s=%s/%s.db", dbname_keys[i], s->dir,
                     example_app_names[i]);
    } else {
        snprintf(entries[n++], sizeof entries[0], "PERSISTENCE_MODULE=eventsourcing.postgres");
        snprintf(entries[n++], sizeof entries[0], "POSTGRES_DBNAME=" CHAOS_DATABASE);
    }
    const char *overrides[16];
    for (size_t i = 0; i < n; i++)
        overrides[i] = entries[i];
    s->n_starts[server]++;
    char name[40]; /* Orders, or Orders-2 for a second replica */
    snprintf(name, sizeof name, "%s%s", example_app_names[app],
             server % s->n_replicas == 1 ? "-2" : "");
    snprintf(s->logs[server], sizeof s->logs[server], "%s/%s-%d.log", s->dir, name,
             s->n_starts[server]);
    char valgrind_log[700];
    char *argv[12];
    size_t n_args = 0;
    if (s->valgrind_log != NULL) {
        snprintf(valgrind_log, sizeof valgrind_log, "--log-file=%s.%s.%d", s->valgrind_log, name,
                 s->n_starts[server]);
        argv[n_args++] = "valgrind";
        argv[n_args++] = "--leak-check=full";
        argv[n_args++] = "--error-exitcode=99";
        /* Abseil's random pool keeps a few blocks for good ("possibly lost"). */
        argv[n_args++] = "--errors-for-leak-kinds=definite";
        argv[n_args++] = "--suppressions=" ESG_VALGRIND_SUPPRESSIONS;
        argv[n_args++] = valgrind_log;
    }
    argv[n_args++] = (char *)s->server_program;
    argv[n_args] = NULL;
    pid_t pid = testutil_spawn(argv, s->logs[server], overrides, n, unset_keys,
                               sizeof unset_keys / sizeof unset_keys[0], NULL);
    assert_int_equal(s->pids[server], 0);
    s->pids[server] = pid;
}

void example_servers_start(example_servers *s, size_t server)
{
    int64_t started = esg_clock_now_ms();
    spawn_server(s, server);
    for (;;) {
        int status = 0;
        if (waitpid(s->pids[server], &status, WNOHANG) == s->pids[server]) {
            s->pids[server] = 0;
            /* No primary to connect to at that moment (a failover under way): started again,
             * as a supervisor (Kubernetes, Compose's restart policy) would. */
            bool is_unavailable = WIFEXITED(status) && WEXITSTATUS(status) == ESG_EXIT_UNAVAILABLE;
            if (s->backend == EXAMPLE_POSTGRES && is_unavailable &&
                esg_clock_now_ms() - started < s->ready_timeout_ms) {
                esg_clock_sleep_ms(500);
                spawn_server(s, server);
                continue;
            }
            example_servers_print_log(s, server);
            fail_msg("the server logging to %s exited at its start (wait status %#x)",
                     s->logs[server], (unsigned)status);
        }
        example_servers_check_alive(s);
        esg_client *client = connect_to(s->listen_addresses[server], 1);
        if (client != NULL) {
            esg_client_free(client);
            return;
        }
        if (esg_clock_now_ms() - started > s->ready_timeout_ms) {
            example_servers_print_log(s, server);
            fail_msg("the server logging to %s did not answer on %s", s->logs[server],
                     s->listen_addresses[server]);
        }
        esg_clock_sleep_ms(20);
    }
}

char *example_servers_metrics(const example_servers *s, size_t server)
{
    assert_true(s->has_metrics);
    return testutil_http_get(s->metrics_ports[server], "/metrics");
}

int example_servers_stop(example_servers *s, size_t server, int sig)
{
    int status = 0;
    assert_true(s->pids[server] > 0);
    assert_int_equal(kill(s->pids[server], sig), 0);
    if (!testutil_reap(s->pids[server], s->valgrind_log != NULL ? 120000 : 30000, &status)) {
        example_servers_print_log(s, server);
        fail_msg("%s did not stop on signal %d", s->logs[server], sig);
    }
    s->pids[server] = 0;
    return status;
}

void example_servers_freeze(example_servers *s, size_t server, int64_t ms)
{
    assert_true(s->pids[server] > 0);
    assert_int_equal(kill(s->pids[server], SIGSTOP), 0);
    esg_clock_sleep_ms(ms);
    assert_int_equal(kill(s->pids[server], SIGCONT), 0);
}

void example_cut_off(const char *port, int64_t ms)
{
    char command[256];
    snprintf(command, sizeof command,
             "nft add rule inet esg_chaos cut tcp dport %s drop && "
             "nft add rule inet esg_chaos cut tcp sport %s drop",
             port, port);
    if (system(command) != 0)
        fail_msg("%s failed (is this in_network_namespace.sh's namespace?)", command);
    esg_clock_sleep_ms(ms);
    if (system("nft flush chain inet esg_chaos cut") != 0)
        fail_msg("nft flush chain inet esg_chaos cut failed");
}

void example_servers_stop_all_cleanly(example_servers *s)
{
    for (size_t i = 0; i < example_n_servers(s); i++) {
        if (s->pids[i] == 0)
            continue;
        int status = example_servers_stop(s, i, SIGTERM);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            example_servers_print_log(s, i);
            if (s->valgrind_log != NULL)
                fprintf(stderr, "valgrind's report: %s.%s.%d\n", s->valgrind_log,
                        example_app_names[example_app_of(s, i)], s->n_starts[i]);
            fail_msg("the server logging to %s did not exit cleanly on SIGTERM (wait status %#x)",
                     s->logs[i], (unsigned)status);
        }
    }
}

void example_servers_check_alive(example_servers *s)
{
    for (size_t i = 0; i < example_n_servers(s); i++) {
        int status = 0;
        if (s->pids[i] > 0 && waitpid(s->pids[i], &status, WNOHANG) == s->pids[i]) {
            s->pids[i] = 0;
            example_servers_print_log(s, i);
            fail_msg("the server logging to %s exited on its own (wait status %#x)", s->logs[i],
                     (unsigned)status);
        }
    }
}

void example_servers_cleanup(example_servers *s, bool keep)
{
    for (size_t i = 0; i < example_n_servers(s); i++) {
        if (s->pids[i] > 0) {
            int status;
            kill(s->pids[i], SIGKILL);
            testutil_reap(s->pids[i], 10000, &status);
            s->pids[i] = 0;
        }
    }
    if (s->dir != NULL) {
        if (keep)
            fprintf(stderr, "kept the databases and logs in %s\n", s->dir);
        else
            testutil_remove_tree(s->dir);
    }
    free(s->dir);
    s->dir = NULL;
}

int64_t example_servers_status_kib(const example_servers *s, size_t server, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pids[server]);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return 0;
    char line[256];
    long long kib = 0;
    size_t field_len = strlen(field);
    while (fgets(line, sizeof line, file) != NULL)
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':' &&
            sscanf(line + field_len + 1, "%lld kB", &kib) == 1)
            break;
    fclose(file);
    return kib;
}

/* ---- Reading the logs -------------------------------------------------------------------- */

/* Every notification of app, page by page until an empty one; false when the server failed. */
static bool read_log(const example_servers *s, size_t app, esg_notification_list *out)
{
    esg_client *client = example_connect(s, app, 3);
    if (client == NULL)
        return false;
    esg_error err = {0};
    int64_t start = 1;
    bool is_ok = true;
    for (;;) {
        size_t before = out->n_items;
        if (esg_client_select_notifications(client, start, 1000, 0, NULL, 0, out, &err) != ESG_OK) {
            is_ok = false;
            break;
        }
        if (out->n_items == before)
            break;
        start = out->items[out->n_items - 1].id + 1;
    }
    esg_client_free(client);
    return is_ok;
}

static size_t count_topic(const esg_notification_list *list, const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n_items; i++)
        n += strcmp(list->items[i].event.topic, topic) == 0;
    return n;
}

/* Whether the policy of follower processes (and tracks) notifications of topic. */
static bool is_followed(size_t follower, const char *topic)
{
    const char *const *topics = example_types[follower]->follow_topics;
    for (; topics != NULL && *topics != NULL; topics++)
        if (strcmp(*topics, topic) == 0)
            return true;
    return topics == NULL;
}

bool example_read_counts(const example_servers *s, example_counts *out)
{
    memset(out, 0, sizeof *out);
    bool is_ok = true;
    for (size_t app = 0; app < EXAMPLE_N_APPS && is_ok; app++) {
        esg_notification_list list = {0};
        is_ok = read_log(s, app, &list);
        out->n_notifications[app] = list.n_items;
        for (size_t follower = 0; follower < EXAMPLE_N_APPS; follower++)
            for (size_t i = 0; i < list.n_items; i++)
                if (is_followed(follower, list.items[i].event.topic))
                    out->last_followed[follower][app] = list.items[i].id;
        if (app == EXAMPLE_ORDERS) {
            out->n_orders = count_topic(&list, TOPIC("Order.Created"));
            out->n_paid = count_topic(&list, TOPIC("Order.Paid"));
        }
        esg_notification_list_clear(&list);
    }
    return is_ok;
}

/* Tracking records read from a store. */
typedef struct tracking_rows {
    char (*names)[32];
    int64_t *ids;
    size_t n;
} tracking_rows;

static void tracking_rows_push(tracking_rows *rows, const char *name, int64_t id)
{
    if ((rows->n & (rows->n - 1)) == 0) { /* grow at powers of two */
        size_t capacity = rows->n == 0 ? 1 : rows->n * 2;
        rows->names = realloc(rows->names, capacity * sizeof *rows->names);
        rows->ids = realloc(rows->ids, capacity * sizeof *rows->ids);
        assert_true(rows->names != NULL && rows->ids != NULL);
    }
    snprintf(rows->names[rows->n], sizeof rows->names[0], "%s", name);
    rows->ids[rows->n++] = id;
}

/* Every tracking record of app, ordered by application name and id, read from its store. */
static void read_tracking(const example_servers *s, size_t app, tracking_rows *rows)
{
    memset(rows, 0, sizeof *rows);
    if (s->backend == EXAMPLE_SQLITE) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.db", s->dir, example_app_names[app]);
        sqlite3 *db = NULL;
        /* Read-write without create: a read-only connection cannot recreate the WAL files. */
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
            fail_msg("cannot open %s: %s", path, sqlite3_errmsg(db));
        sqlite3_busy_timeout(db, 10000);
        sqlite3_stmt *stmt = NULL;
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT application_name, notification_id FROM tracking "
                                    "ORDER BY application_name, notification_id",
                                    -1, &stmt, NULL);
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW)
                tracking_rows_push(rows, (const char *)sqlite3_column_text(stmt, 0),
                                   sqlite3_column_int64(stmt, 1));
        }
        if (rc != SQLITE_DONE)
            fail_msg("reading the tracking records of %s: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        testutil_sqlite_assert_intact(db, path);
        sqlite3_close(db);
    } else {
        PGconn *conn = pg_connect(CHAOS_DATABASE);
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT application_name, notification_id FROM %c%s_tracking "
                 "ORDER BY application_name, notification_id",
                 example_app_names[app][0] + ('a' - 'A'), example_app_names[app] + 1);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(conn));
        for (int i = 0; i < PQntuples(res); i++)
            tracking_rows_push(rows, PQgetvalue(res, i, 0),
                               strtoll(PQgetvalue(res, i, 1), NULL, 10));
        PQclear(res);
        PQfinish(conn);
    }
}

/* The follower's tracking records of leader are exactly the ids in the leader's log of the
 * topics it follows, in order. */
static void assert_tracked(const tracking_rows *rows, size_t follower, size_t leader,
                           const esg_notification_list *leader_log)
{
    size_t k = 0, n_followed = 0;
    for (size_t i = 0; i < rows->n; i++) {
        if (strcmp(rows->names[i], example_app_names[leader]) != 0)
            continue;
        while (k < leader_log->n_items && !is_followed(follower, leader_log->items[k].event.topic))
            k++;
        if (k == leader_log->n_items || rows->ids[i] != leader_log->items[k].id)
            fail_msg("%s tracked %s's notification %lld where %lld was expected",
                     example_app_names[follower], example_app_names[leader],
                     (long long)rows->ids[i],
                     k < leader_log->n_items ? (long long)leader_log->items[k].id : -1LL);
        k++;
        n_followed++;
    }
    size_t n_expected = 0;
    for (size_t i = 0; i < leader_log->n_items; i++)
        n_expected += is_followed(follower, leader_log->items[i].event.topic);
    if (n_followed != n_expected)
        fail_msg("%s tracked %zu of the %zu notifications of %s it follows",
                 example_app_names[follower], n_followed, n_expected, example_app_names[leader]);
}

/* Records of other applications than leaders. */
static void assert_only_leaders(const tracking_rows *rows, size_t follower, size_t leader1,
                                size_t leader2)
{
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->names[i], example_app_names[leader1]) != 0 &&
            strcmp(rows->names[i], example_app_names[leader2]) != 0)
            fail_msg("%s tracks an unexpected leader '%s'", example_app_names[follower],
                     rows->names[i]);
}

static int64_t max_tracked(const tracking_rows *rows, const char *leader)
{
    int64_t max = 0;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->names[i], leader) == 0 && rows->ids[i] > max)
            max = rows->ids[i];
    return max;
}

static void tracking_rows_free(tracking_rows *rows)
{
    free(rows->names);
    free(rows->ids);
    memset(rows, 0, sizeof *rows);
}

/* The followers are quiet when their stores' tracking reaches the last id of each leader's log
 * that they follow. Reading a
 * store that a server is writing is fine for both backends (WAL readers, MVCC). */
static bool is_tracking_caught_up(const example_servers *s, const example_counts *counts)
{
    /* follower, leader pairs of the example. */
    static const size_t pairs[4][2] = {{EXAMPLE_RESERVATIONS, EXAMPLE_ORDERS},
                                       {EXAMPLE_PAYMENTS, EXAMPLE_ORDERS},
                                       {EXAMPLE_ORDERS, EXAMPLE_RESERVATIONS},
                                       {EXAMPLE_ORDERS, EXAMPLE_PAYMENTS}};
    for (size_t i = 0; i < 4; i++) {
        tracking_rows rows;
        read_tracking(s, pairs[i][0], &rows);
        int64_t max = max_tracked(&rows, example_app_names[pairs[i][1]]);
        tracking_rows_free(&rows);
        if (max != counts->last_followed[pairs[i][0]][pairs[i][1]])
            return false;
    }
    return true;
}

void example_wait_quiet(example_servers *s, int64_t timeout_ms)
{
    int64_t started = esg_clock_now_ms();
    example_counts counts = {0};
    for (;;) {
        example_servers_check_alive(s);
        if (example_read_counts(s, &counts) && counts.n_paid == counts.n_orders &&
            counts.n_notifications[EXAMPLE_ORDERS] == 3 * counts.n_orders &&
            counts.n_notifications[EXAMPLE_RESERVATIONS] == counts.n_orders &&
            counts.n_notifications[EXAMPLE_PAYMENTS] == counts.n_orders &&
            is_tracking_caught_up(s, &counts))
            return;
        if (esg_clock_now_ms() - started > timeout_ms) {
            for (size_t i = 0; i < EXAMPLE_N_APPS; i++)
                example_servers_print_log(s, i);
            fail_msg("not quiet after %lld ms: %zu orders, %zu paid, notifications %zu %zu %zu",
                     (long long)timeout_ms, counts.n_orders, counts.n_paid,
                     counts.n_notifications[0], counts.n_notifications[1],
                     counts.n_notifications[2]);
        }
        esg_clock_sleep_ms(200);
    }
}

/* ---- The invariants ---------------------------------------------------------------------- */

static int compare_uuids(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(esg_uuid));
}

/* The index of id in sorted ids, or -1. */
static long find_uuid(const esg_uuid *sorted, size_t n, const esg_uuid *id)
{
    const esg_uuid *found = bsearch(id, sorted, n, sizeof *sorted, compare_uuids);
    return found != NULL ? (long)(found - sorted) : -1;
}

static void assert_ids_without_gaps(const esg_notification_list *list, size_t app)
{
    for (size_t i = 0; i < list->n_items; i++)
        if (list->items[i].id != (int64_t)i + 1)
            fail_msg("%s: notification %zu has id %lld (a gap or a duplicate)",
                     example_app_names[app], i + 1, (long long)list->items[i].id);
}

/* In log, each of the n expected originators (sorted) has exactly one event of topic, of
 * version; and no event of topic has another originator. */
static void assert_exactly_once(const esg_notification_list *log, size_t app, const char *topic,
                                int64_t version, const esg_uuid *expected, size_t n)
{
    size_t *counts = calloc(n + 1, sizeof *counts);
    assert_non_null(counts);
    for (size_t i = 0; i < log->n_items; i++) {
        const esg_stored_event *event = &log->items[i].event;
        if (strcmp(event->topic, topic) != 0)
            continue;
        long at = find_uuid(expected, n, &event->originator_id);
        if (at < 0)
            fail_msg("%s: notification %lld, %s of an unknown originator", example_app_names[app],
                     (long long)log->items[i].id, topic);
        if (event->originator_version != version)
            fail_msg("%s: notification %lld, %s has version %lld, not %lld", example_app_names[app],
                     (long long)log->items[i].id, topic, (long long)event->originator_version,
                     (long long)version);
        counts[at]++;
    }
    for (size_t i = 0; i < n; i++)
        if (counts[i] != 1) {
            char text[ESG_UUID_STR_SIZE];
            esg_uuid_str(&expected[i], text);
            fail_msg("%s: %s has %zu %s (exactly one expected)", example_app_names[app], text,
                     counts[i], topic);
        }
    free(counts);
}

void example_check_invariants(example_servers *s, const esg_uuid *acked, size_t n_acked,
                              example_counts *counts)
{
    esg_notification_list logs[EXAMPLE_N_APPS] = {{0}};
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++) {
        if (!read_log(s, app, &logs[app]))
            fail_msg("cannot read %s's notifications", example_app_names[app]);
        assert_ids_without_gaps(&logs[app], app);
    }
    /* The orders are those created in Orders' log. */
    size_t n_orders = 0;
    esg_uuid *orders = malloc((logs[EXAMPLE_ORDERS].n_items + 1) * sizeof *orders);
    assert_non_null(orders);
    for (size_t i = 0; i < logs[EXAMPLE_ORDERS].n_items; i++)
        if (strcmp(logs[EXAMPLE_ORDERS].items[i].event.topic, TOPIC("Order.Created")) == 0)
            orders[n_orders++] = logs[EXAMPLE_ORDERS].items[i].event.originator_id;
    qsort(orders, n_orders, sizeof *orders, compare_uuids);
    for (size_t i = 1; i < n_orders; i++)
        if (compare_uuids(&orders[i - 1], &orders[i]) == 0)
            fail_msg("Orders: an order created twice");
    /* Every acknowledged order exists (an unacknowledged one may exist too: its call failed
     * after the commit). */
    for (size_t i = 0; i < n_acked; i++)
        if (find_uuid(orders, n_orders, &acked[i]) < 0) {
            char text[ESG_UUID_STR_SIZE];
            esg_uuid_str(&acked[i], text);
            fail_msg("acknowledged order %s is not in Orders' log (lost)", text);
        }
    assert_int_equal(logs[EXAMPLE_ORDERS].n_items, 3 * n_orders);
    assert_exactly_once(&logs[EXAMPLE_ORDERS], EXAMPLE_ORDERS, TOPIC("Order.Created"), 1, orders,
                        n_orders);
    assert_exactly_once(&logs[EXAMPLE_ORDERS], EXAMPLE_ORDERS, TOPIC("Order.Reserved"), 2, orders,
                        n_orders);
    assert_exactly_once(&logs[EXAMPLE_ORDERS], EXAMPLE_ORDERS, TOPIC("Order.Paid"), 3, orders,
                        n_orders);
    /* One reservation and one payment per order, with the ids derived from the order. */
    esg_uuid *derived = malloc((n_orders + 1) * sizeof *derived);
    assert_non_null(derived);
    static const char *const paths[] = {NULL, "reservations", "payments"};
    static const char *const created[] = {NULL, TOPIC("Reservation.Created"),
                                          TOPIC("Payment.Created")};
    for (size_t app = EXAMPLE_RESERVATIONS; app <= EXAMPLE_PAYMENTS; app++) {
        for (size_t i = 0; i < n_orders; i++)
            derived[i] = testutil_derived_id(paths[app], &orders[i]);
        qsort(derived, n_orders, sizeof *derived, compare_uuids);
        assert_int_equal(logs[app].n_items, n_orders);
        assert_exactly_once(&logs[app], app, created[app], 1, derived, n_orders);
    }
    free(derived);
    free(orders);
    memset(counts, 0, sizeof *counts);
    counts->n_orders = n_orders;
    counts->n_paid = n_orders;
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++)
        counts->n_notifications[app] = logs[app].n_items;

    /* Stopped, the stores: each follower tracked each notification it follows once. */
    example_servers_stop_all_cleanly(s);
    tracking_rows rows;
    read_tracking(s, EXAMPLE_RESERVATIONS, &rows);
    assert_tracked(&rows, EXAMPLE_RESERVATIONS, EXAMPLE_ORDERS, &logs[EXAMPLE_ORDERS]);
    assert_only_leaders(&rows, EXAMPLE_RESERVATIONS, EXAMPLE_ORDERS, EXAMPLE_ORDERS);
    tracking_rows_free(&rows);
    read_tracking(s, EXAMPLE_PAYMENTS, &rows);
    assert_tracked(&rows, EXAMPLE_PAYMENTS, EXAMPLE_ORDERS, &logs[EXAMPLE_ORDERS]);
    assert_only_leaders(&rows, EXAMPLE_PAYMENTS, EXAMPLE_ORDERS, EXAMPLE_ORDERS);
    tracking_rows_free(&rows);
    read_tracking(s, EXAMPLE_ORDERS, &rows);
    assert_tracked(&rows, EXAMPLE_ORDERS, EXAMPLE_RESERVATIONS, &logs[EXAMPLE_RESERVATIONS]);
    assert_tracked(&rows, EXAMPLE_ORDERS, EXAMPLE_PAYMENTS, &logs[EXAMPLE_PAYMENTS]);
    assert_only_leaders(&rows, EXAMPLE_ORDERS, EXAMPLE_RESERVATIONS, EXAMPLE_PAYMENTS);
    tracking_rows_free(&rows);
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++)
        esg_notification_list_clear(&logs[app]);
}
