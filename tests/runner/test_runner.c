/* Tests of systems over gRPC (src/grpc/node.c, src/grpc/runner.c): the seed
 * README's runner section in threads and in subprocesses, a thousand orders,
 * a one-way pipe and a longer chain loaded from the test_systems plugin, and
 * eventsourcing_grpc_server processes started here as a deployment starts
 * them: a follower killed mid-stream, a leader restarted, a follower started
 * late, prompts that never arrive; the followers' positions as the client reads
 * them. Every stop of a runner is timed. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esg/grpc.h"
#include "esg/runner.h"
#include "sqlite_testutil.h"

#ifndef ESG_SERVER_PROGRAM
#error "ESG_SERVER_PROGRAM must name eventsourcing_grpc_server"
#endif
#ifndef ESG_TEST_PLUGIN_DIR
#error "ESG_TEST_PLUGIN_DIR must name the folder of test_systems.so"
#endif

#define TOPIC(name) "eventsourcing_grpc.example:" name
#define N_EXAMPLE_APPS 3
#define MAX_PROCS 8
#define MAX_CLIENTS 16
#define ADDRESS_SIZE 64

static const char *const example_names[N_EXAMPLE_APPS] = {"Orders", "Reservations", "Payments"};
static const char *const example_address_keys[N_EXAMPLE_APPS] = {"ORDERS_GRPC_SERVER_ADDRESS",
                                                                 "RESERVATIONS_GRPC_SERVER_ADDRESS",
                                                                 "PAYMENTS_GRPC_SERVER_ADDRESS"};
static const char *const example_dbname_keys[N_EXAMPLE_APPS] = {
    "ORDERS_SQLITE_DBNAME", "RESERVATIONS_SQLITE_DBNAME", "PAYMENTS_SQLITE_DBNAME"};
enum { ORDERS, RESERVATIONS, PAYMENTS };

/* ---- Time ------------------------------------------------------------------------ */

/* ---- The fixture: everything a test starts, released in teardown --------------- */

/* Creates orders from a thread while the test kills and restarts a server. */
typedef struct order_stream {
    esg_client *orders;     /* borrowed from the fixture */
    size_t n_orders;        /* to create */
    esg_uuid *ids;          /* n_orders, filled in as they are created */
    atomic_size_t n_done;   /* created so far */
    int64_t pause_ms;       /* between two orders */
    atomic_bool has_failed; /* set after rc and err, which are read after the join */
    esg_status rc;          /* the failure that ended the stream, ESG_OK when none */
    esg_error err;
} order_stream;

typedef struct fixture {
    char *dir;                        /* temp folder: databases and server logs */
    esg_env *env;                     /* the runner's base environment */
    esg_grpc_runner *runner;          /* stopped in teardown when a test failed */
    esg_client *clients[MAX_CLIENTS]; /* freed in teardown */
    size_t n_clients;
    pid_t pids[MAX_PROCS];                        /* servers started here, 0 when reaped */
    char logs[MAX_PROCS][512];                    /* their logs */
    char addresses[N_EXAMPLE_APPS][ADDRESS_SIZE]; /* free 127.0.0.1 ports for the example */
    order_stream *stream;                         /* joined and freed in teardown */
    pthread_t stream_thread;
    bool has_stream_thread;
} fixture;

/* n addresses "localhost:<port>" of ports that were free a moment ago. */
static void free_addresses(char (*addresses)[ADDRESS_SIZE], size_t n)
{
    int ports[16];
    testutil_free_ports(ports, n);
    for (size_t i = 0; i < n; i++)
        snprintf(addresses[i], ADDRESS_SIZE, "localhost:%d", ports[i]);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = testutil_make_temp_dir();
    /* The process's environment (PATH, sanitizer options) without anything that
     * would change what a test configures. */
    f->env = esg_env_from_process();
    assert_non_null(f->dir);
    assert_non_null(f->env);
    static const char *const unset[] = {"APPLICATION_TOPIC", "SYSTEM_TOPIC", "PERSISTENCE_MODULE",
                                        "SQLITE_DBNAME", "MAX_PULL_INTERVAL"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        esg_env_unset(f->env, unset[i]);
    for (size_t i = 0; i < N_EXAMPLE_APPS; i++) {
        esg_env_unset(f->env, example_address_keys[i]);
        esg_env_unset(f->env, example_dbname_keys[i]);
    }
    esg_error err = {0};
    if (esg_env_set(f->env, "ESG_TOPIC_PATH", ESG_TEST_PLUGIN_DIR, &err) != ESG_OK)
        return -1;
    free_addresses(f->addresses, N_EXAMPLE_APPS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_grpc_runner_stop(f->runner);
    for (size_t i = 0; i < MAX_PROCS; i++) {
        if (f->pids[i] > 0) {
            int status;
            kill(f->pids[i], SIGKILL);
            testutil_reap(f->pids[i], 10000, &status);
        }
    }
    if (f->has_stream_thread)
        pthread_join(f->stream_thread, NULL);
    if (f->stream != NULL) {
        free(f->stream->ids);
        free(f->stream);
    }
    for (size_t i = 0; i < f->n_clients; i++)
        esg_client_free(f->clients[i]);
    testutil_discard_temp_dir(f->dir);
    esg_env_free(f->env);
    free(f);
    return 0;
}

static void print_log(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return;
    char line[512];
    print_message("---- %s\n", path);
    while (fgets(line, sizeof line, file) != NULL)
        print_message("  %s", line);
    fclose(file);
}

/* The logs of the servers started here, to see why a wait timed out. */
static void print_logs(const fixture *f)
{
    for (size_t i = 0; i < MAX_PROCS; i++)
        if (f->logs[i][0] != '\0')
            print_log(f->logs[i]);
}

/* Fails when the runner reports an error or a server started here died. */
static void check_health(fixture *f)
{
    esg_error err = {0};
    if (f->runner != NULL && esg_grpc_runner_has_errored(f->runner, &err))
        fail_msg("the runner has errored: %s: %s", esg_status_name(err.status), err.message);
    for (size_t i = 0; i < MAX_PROCS; i++) {
        int status = 0;
        if (f->pids[i] > 0 && waitpid(f->pids[i], &status, WNOHANG) == f->pids[i]) {
            f->pids[i] = 0;
            print_log(f->logs[i]);
            fail_msg("server %zu died: %s %d", i, WIFSIGNALED(status) ? "signal" : "exit",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
}

/* ---- Clients and calls ------------------------------------------------------------ */

static esg_client *connect_client(fixture *f, const char *address)
{
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = {.max_attempts = 20, .backoff_ms = 20};
    assert_true(f->n_clients < MAX_CLIENTS);
    assert_esg_ok(esg_client_connect_address(address, &options, &client, &err), &err);
    f->clients[f->n_clients++] = client;
    return client;
}

/* Calls method with the id as its one argument (none when id is NULL). */
static esg_value *call(esg_client *client, const char *method, const esg_uuid *id)
{
    esg_error err = {0};
    esg_value *args = NULL;
    if (id != NULL) {
        args = esg_value_array();
        assert_non_null(args);
        assert_int_equal(esg_array_append(args, esg_value_uuid(id)), ESG_OK);
    }
    esg_value *result = NULL;
    esg_status rc = esg_client_call(client, method, args, NULL, &result, &err);
    esg_value_free(args);
    if (rc != ESG_OK)
        fail_msg("%s() failed: %s: %s", method, esg_status_name(rc), err.message);
    return result;
}

static bool call_bool(esg_client *client, const char *method, const esg_uuid *id)
{
    return testutil_take_bool(call(client, method, id));
}

static int64_t call_int(esg_client *client, const char *method)
{
    esg_value *result = call(client, method, NULL);
    assert_int_equal(esg_value_type(result), ESG_TYPE_INT);
    int64_t i = esg_value_as_int(result);
    esg_value_free(result);
    return i;
}

static esg_uuid call_uuid(esg_client *client, const char *method)
{
    return testutil_take_uuid(call(client, method, NULL));
}

/* Polls is_order_paid (or is_order_reserved) every 10 ms until it is true;
 * fails after timeout_ms or as soon as something errored. The ms waited. */
static int64_t wait_order(fixture *f, esg_client *orders, const char *method, const esg_uuid *id,
                          int64_t timeout_ms)
{
    int64_t started = esg_clock_now_ms();
    for (;;) {
        if (call_bool(orders, method, id))
            return esg_clock_now_ms() - started;
        check_health(f);
        if (esg_clock_now_ms() - started > timeout_ms) {
            char text[ESG_UUID_STR_SIZE];
            esg_uuid_str(id, text);
            print_logs(f);
            fail_msg("%s(%s) still false after %lld ms", method, text, (long long)timeout_ms);
        }
        esg_clock_sleep_ms(10);
    }
}

/* Every notification of the server, from 1, page by page until an empty one. */
static void read_all(esg_client *client, esg_notification_list *out)
{
    esg_error err = {0};
    int64_t start = 1;
    for (;;) {
        size_t before = out->n_items;
        assert_esg_ok(esg_client_select_notifications(client, start, 1000, 0, NULL, 0, out, &err),
                      &err);
        if (out->n_items == before)
            return;
        start = out->items[out->n_items - 1].id + 1;
    }
}

static void assert_ids_without_gaps(const esg_notification_list *list)
{
    for (size_t i = 0; i < list->n_items; i++)
        if (list->items[i].id != (int64_t)i + 1)
            fail_msg("notification %zu has id %lld", i + 1, (long long)list->items[i].id);
}

/* Polls the server's notifications every 20 ms until there are n; fails after
 * timeout_ms or when there are more. The ms waited; list holds them. */
static int64_t wait_notifications(fixture *f, esg_client *client, size_t n, int64_t timeout_ms,
                                  esg_notification_list *list)
{
    int64_t started = esg_clock_now_ms();
    for (;;) {
        esg_notification_list_clear(list);
        read_all(client, list);
        if (list->n_items > n)
            fail_msg("%zu notifications, expected %zu", list->n_items, n);
        if (list->n_items == n)
            return esg_clock_now_ms() - started;
        check_health(f);
        if (esg_clock_now_ms() - started > timeout_ms) {
            print_logs(f);
            fail_msg("%zu notifications after %lld ms, expected %zu", list->n_items,
                     (long long)timeout_ms, n);
        }
        esg_clock_sleep_ms(20);
    }
}

/* The index of id in ids, or fails. */
static size_t index_of(const esg_uuid *ids, size_t n, const esg_uuid *id)
{
    for (size_t i = 0; i < n; i++)
        if (esg_uuid_equal(&ids[i], id))
            return i;
    char text[ESG_UUID_STR_SIZE];
    esg_uuid_str(id, text);
    fail_msg("unexpected originator id %s", text);
    return 0;
}

/* ---- The runner ------------------------------------------------------------------- */

static esg_grpc_runner *start_runner(fixture *f, const esg_system_def *def, esg_runner_mode mode)
{
    esg_error err = {0};
    esg_grpc_runner_options options = {
        .mode = mode, .env = f->env, .server_program = ESG_SERVER_PROGRAM};
    int64_t started = esg_clock_now_ms();
    assert_esg_ok(esg_grpc_runner_start(def, &options, &f->runner, &err), &err);
    assert_non_null(f->runner);
    print_message("%s: started in %s in %lld ms\n", def->topic,
                  mode == ESG_RUNNER_THREADS ? "threads" : "subprocesses",
                  (long long)(esg_clock_now_ms() - started));
    return f->runner;
}

/* Stops the runner, which must take well under a second (asserted < 2 s)
 * and leave no subprocess behind, reaped or not. */
static void stop_runner(fixture *f)
{
    int64_t started = esg_clock_now_ms();
    esg_grpc_runner_stop(f->runner);
    f->runner = NULL;
    int64_t elapsed = esg_clock_now_ms() - started;
    print_message("esg_grpc_runner_stop took %lld ms\n", (long long)elapsed);
    assert_true(elapsed < 2000);
    int status;
    errno = 0;
    pid_t child = waitpid(-1, &status, WNOHANG);
    if (child != -1 || errno != ECHILD)
        fail_msg("a child process is left after stop (waitpid: %d)", (int)child);
}

static void set_example_addresses(fixture *f)
{
    for (size_t i = 0; i < N_EXAMPLE_APPS; i++)
        testutil_env_set(f->env, example_address_keys[i], f->addresses[i]);
}

/* Defines test_<name>_threads and test_<name>_subprocesses: name(fixture, mode) with a runner
 * of each mode. */
#define TEST_IN_BOTH_MODES(name)                                                                   \
    static void test_##name##_threads(void **state)                                                \
    {                                                                                              \
        name(*state, ESG_RUNNER_THREADS);                                                          \
    }                                                                                              \
    static void test_##name##_subprocesses(void **state)                                           \
    {                                                                                              \
        name(*state, ESG_RUNNER_SUBPROCESSES);                                                     \
    }

/* The seed README's runner section, then its notifications. */
static void readme_runner(fixture *f, esg_runner_mode mode)
{
    set_example_addresses(f);
    esg_grpc_runner *runner = start_runner(f, &esg_example_system, mode);
    int64_t started = esg_clock_now_ms();
    /* Addresses set in the environment are kept, not overwritten. */
    for (size_t i = 0; i < N_EXAMPLE_APPS; i++) {
        const char *address = esg_grpc_runner_address(runner, example_names[i]);
        assert_non_null(address);
        assert_string_equal(address, f->addresses[i]);
    }
    assert_null(esg_grpc_runner_get(runner, "Nobody"));
    assert_null(esg_grpc_runner_address(runner, "Nobody"));

    /* app = runner.get(Orders); order1_id = app.create_new_order() */
    esg_client *app = esg_grpc_runner_get(runner, "Orders");
    assert_non_null(app);
    esg_uuid order1_id = call_uuid(app, "create_new_order");
    int64_t waited = wait_order(f, app, "is_order_paid", &order1_id, 10000);
    int64_t since_start = esg_clock_now_ms() - started;
    print_message("first order paid %lld ms after it was created, %lld ms after start\n",
                  (long long)waited, (long long)since_start);
    /* The reference takes ~10 s: its first prompts are lost while channels connect. */
    assert_true(since_start < 2000);

    /* notifications = app.notification_log.select(start=1, limit=10) */
    esg_error err = {0};
    esg_notification_list list = {0};
    assert_esg_ok(esg_client_select_notifications(app, 1, 10, 0, NULL, 0, &list, &err), &err);
    testutil_assert_one_order_log(&list, &order1_id);
    esg_notification_list_clear(&list);

    /* The followers did their part, once. */
    esg_client *reservations = esg_grpc_runner_get(runner, "Reservations");
    esg_client *payments = esg_grpc_runner_get(runner, "Payments");
    assert_non_null(reservations);
    assert_non_null(payments);
    read_all(reservations, &list);
    assert_int_equal(list.n_items, 1);
    esg_uuid reservation_id = testutil_derived_id("reservations", &order1_id);
    assert_true(esg_uuid_equal(&list.items[0].event.originator_id, &reservation_id));
    esg_notification_list_clear(&list);
    read_all(payments, &list);
    assert_int_equal(list.n_items, 1);
    esg_uuid payment_id = testutil_derived_id("payments", &order1_id);
    assert_true(esg_uuid_equal(&list.items[0].event.originator_id, &payment_id));
    esg_notification_list_clear(&list);

    /* runner.stop() */
    stop_runner(f);
}

TEST_IN_BOTH_MODES(readme_runner)

/* ---- A thousand orders --------------------------------------------------------------- */

#define N_MANY_ORDERS 1000

static void test_thousand_orders_all_paid(void **state)
{
    fixture *f = *state;
    set_example_addresses(f);
    esg_grpc_runner *runner = start_runner(f, &esg_example_system, ESG_RUNNER_THREADS);
    esg_client *orders = esg_grpc_runner_get(runner, "Orders");
    assert_non_null(orders);

    esg_uuid *ids = malloc(N_MANY_ORDERS * sizeof *ids);
    assert_non_null(ids);
    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < N_MANY_ORDERS; i++)
        ids[i] = call_uuid(orders, "create_new_order");
    int64_t created = esg_clock_now_ms();
    /* Each application processes its leaders' notifications in order, so the
     * last order paid means every order is. */
    wait_order(f, orders, "is_order_paid", &ids[N_MANY_ORDERS - 1], 10000);
    int64_t paid = esg_clock_now_ms();
    print_message("%d orders created in %lld ms, all paid %lld ms later\n", N_MANY_ORDERS,
                  (long long)(created - started), (long long)(paid - created));

    esg_notification_list list = {0};
    read_all(orders, &list);
    assert_int_equal(list.n_items, 3 * N_MANY_ORDERS);
    assert_ids_without_gaps(&list);
    size_t n_created = 0, n_reserved = 0, n_paid = 0;
    for (size_t i = 0; i < list.n_items; i++) {
        const esg_stored_event *event = &list.items[i].event;
        if (strcmp(event->topic, TOPIC("Order.Created")) == 0) {
            /* Created in the order the calls were made. */
            assert_true(esg_uuid_equal(&event->originator_id, &ids[n_created]));
            n_created++;
        } else if (strcmp(event->topic, TOPIC("Order.Reserved")) == 0) {
            n_reserved++;
        } else if (strcmp(event->topic, TOPIC("Order.Paid")) == 0) {
            n_paid++;
        }
    }
    assert_int_equal(n_created, N_MANY_ORDERS);
    assert_int_equal(n_reserved, N_MANY_ORDERS);
    assert_int_equal(n_paid, N_MANY_ORDERS);
    esg_notification_list_clear(&list);
    assert_true(call_bool(orders, "is_order_paid", &ids[0]));
    free(ids);
    stop_runner(f);
}

/* ---- Stopping while busy ------------------------------------------------------------- */

static void stop_is_fast_while_busy(fixture *f, esg_runner_mode mode)
{
    set_example_addresses(f);
    esg_grpc_runner *runner = start_runner(f, &esg_example_system, mode);
    esg_client *orders = esg_grpc_runner_get(runner, "Orders");
    assert_non_null(orders);
    for (size_t i = 0; i < 100; i++)
        (void)call_uuid(orders, "create_new_order");
    /* Processing is still going on: stopping must not wait for it. */
    stop_runner(f);
}

TEST_IN_BOTH_MODES(stop_is_fast_while_busy)

/* ---- Systems from the plugin ----------------------------------------------------------- */

static const esg_system_def *plugin_system(fixture *f, const char *topic)
{
    esg_error err = {0};
    const esg_system_def *def = NULL;
    assert_esg_ok(esg_topic_resolve_system(topic, f->env, &def, &err), &err);
    assert_non_null(def);
    return def;
}

#define N_ONE_WAY_ORDERS 10

/* [[Orders, Reservations]]: Reservations follows Orders; Orders follows no one. */
static void one_way_pipe(fixture *f, esg_runner_mode mode)
{
    const esg_system_def *def = plugin_system(f, "test_systems:one_way");
    testutil_env_set(f->env, example_address_keys[ORDERS], f->addresses[ORDERS]);
    testutil_env_set(f->env, example_address_keys[RESERVATIONS], f->addresses[RESERVATIONS]);
    esg_grpc_runner *runner = start_runner(f, def, mode);
    assert_null(esg_grpc_runner_get(runner, "Payments"));
    esg_client *orders = esg_grpc_runner_get(runner, "Orders");
    esg_client *reservations = esg_grpc_runner_get(runner, "Reservations");
    assert_non_null(orders);
    assert_non_null(reservations);

    esg_uuid ids[N_ONE_WAY_ORDERS];
    for (size_t i = 0; i < N_ONE_WAY_ORDERS; i++)
        ids[i] = call_uuid(orders, "create_new_order");
    esg_notification_list list = {0};
    int64_t waited = wait_notifications(f, reservations, N_ONE_WAY_ORDERS, 5000, &list);
    print_message("one-way pipe: %d reservations after %lld ms\n", N_ONE_WAY_ORDERS,
                  (long long)waited);
    assert_ids_without_gaps(&list);
    for (size_t i = 0; i < list.n_items; i++) {
        esg_uuid expected = testutil_derived_id("reservations", &ids[i]);
        assert_string_equal(list.items[i].event.topic, TOPIC("Reservation.Created"));
        assert_true(esg_uuid_equal(&list.items[i].event.originator_id, &expected));
    }
    esg_notification_list_clear(&list);

    /* Nothing flows back: Orders does not follow Reservations here. */
    esg_clock_sleep_ms(200);
    read_all(orders, &list);
    assert_int_equal(list.n_items, N_ONE_WAY_ORDERS);
    for (size_t i = 0; i < list.n_items; i++)
        assert_string_equal(list.items[i].event.topic, TOPIC("Order.Created"));
    esg_notification_list_clear(&list);
    assert_false(call_bool(orders, "is_order_reserved", &ids[0]));
    read_all(reservations, &list);
    assert_int_equal(list.n_items, N_ONE_WAY_ORDERS);
    esg_notification_list_clear(&list);
    stop_runner(f);
}

TEST_IN_BOTH_MODES(one_way_pipe)

/* A -> B -> C -> D: an item started in A reaches D, relayed three times. */
static void chain(fixture *f, esg_runner_mode mode)
{
    static const char *const names[] = {"A", "B", "C", "D"};
    static const char *const keys[] = {"A_GRPC_SERVER_ADDRESS", "B_GRPC_SERVER_ADDRESS",
                                       "C_GRPC_SERVER_ADDRESS", "D_GRPC_SERVER_ADDRESS"};
    char addresses[4][ADDRESS_SIZE];
    free_addresses(addresses, 4);
    for (size_t i = 0; i < 4; i++)
        testutil_env_set(f->env, keys[i], addresses[i]);
    const esg_system_def *def = plugin_system(f, "test_systems:chain");
    esg_grpc_runner *runner = start_runner(f, def, mode);
    esg_client *clients[4];
    for (size_t i = 0; i < 4; i++) {
        clients[i] = esg_grpc_runner_get(runner, names[i]);
        assert_non_null(clients[i]);
        assert_string_equal(esg_grpc_runner_address(runner, names[i]), addresses[i]);
    }

    esg_uuid started_id = call_uuid(clients[0], "start");
    esg_notification_list list = {0};
    int64_t waited = wait_notifications(f, clients[3], 1, 5000, &list);
    print_message("chain: A's item reached D after %lld ms\n", (long long)waited);
    esg_uuid b_id = testutil_derived_id("B", &started_id);
    esg_uuid c_id = testutil_derived_id("C", &b_id);
    esg_uuid d_id = testutil_derived_id("D", &c_id);
    assert_true(esg_uuid_equal(&list.items[0].event.originator_id, &d_id));
    assert_string_equal(list.items[0].event.topic, "test_systems:Item.Created");
    esg_notification_list_clear(&list);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call_int(clients[i], "count"), 1);

    /* And the next two, after the channels are all connected. */
    (void)call_uuid(clients[0], "start");
    (void)call_uuid(clients[0], "start");
    wait_notifications(f, clients[3], 3, 5000, &list);
    assert_ids_without_gaps(&list);
    esg_notification_list_clear(&list);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(call_int(clients[i], "count"), 3);
    stop_runner(f);
}

TEST_IN_BOTH_MODES(chain)

/* ---- Failures the runner reports ---------------------------------------------------------- */

/* A policy that fails: the runner in threads says so, naming the application. */
static void test_processing_error_is_reported(void **state)
{
    fixture *f = *state;
    char addresses[2][ADDRESS_SIZE];
    free_addresses(addresses, 2);
    testutil_env_set(f->env, "A_GRPC_SERVER_ADDRESS", addresses[0]);
    testutil_env_set(f->env, "FAULTY_GRPC_SERVER_ADDRESS", addresses[1]);
    esg_grpc_runner *runner =
        start_runner(f, plugin_system(f, "test_systems:faulty"), ESG_RUNNER_THREADS);
    esg_error err = {0};
    assert_false(esg_grpc_runner_has_errored(runner, &err));
    (void)call_uuid(esg_grpc_runner_get(runner, "A"), "start");
    int64_t deadline = esg_clock_now_ms() + 5000;
    while (!esg_grpc_runner_has_errored(runner, &err)) {
        assert_true(esg_clock_now_ms() < deadline);
        esg_clock_sleep_ms(10);
    }
    print_message("has_errored: %s: %s\n", esg_status_name(err.status), err.message);
    assert_int_not_equal(err.status, ESG_OK);
    assert_non_null(strstr(err.message, "Faulty"));
    assert_non_null(strstr(err.message, "deliberate failure"));
    assert_int_equal(call_int(esg_grpc_runner_get(runner, "Faulty"), "count"), 0);
    stop_runner(f);
}

/* The child of this process whose environment has APPLICATION_TOPIC=topic, or 0. */
static pid_t child_serving(const char *topic)
{
    char wanted[256];
    snprintf(wanted, sizeof wanted, "APPLICATION_TOPIC=%s", topic);
    DIR *proc = opendir("/proc");
    assert_non_null(proc);
    pid_t found = 0;
    struct dirent *entry;
    while (found == 0 && (entry = readdir(proc)) != NULL) {
        char path[300], buffer[65536];
        long pid = strtol(entry->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *file = fopen(path, "r");
        if (file == NULL)
            continue;
        long ppid = 0;
        /* pid (comm) state ppid: comm may hold spaces, so start after the last ')'. */
        size_t n = fread(buffer, 1, sizeof buffer - 1, file);
        fclose(file);
        buffer[n] = '\0';
        char *paren = strrchr(buffer, ')');
        if (paren == NULL || sscanf(paren + 1, " %*c %ld", &ppid) != 1 || ppid != getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        file = fopen(path, "r");
        if (file == NULL)
            continue;
        n = fread(buffer, 1, sizeof buffer - 1, file);
        fclose(file);
        buffer[n] = '\0';
        for (size_t i = 0; i < n; i += strlen(buffer + i) + 1)
            if (strcmp(buffer + i, wanted) == 0)
                found = (pid_t)pid;
    }
    closedir(proc);
    return found;
}

/* A server of the runner killed with SIGKILL: has_errored names it, and
 * stopping the others is still fast and leaves nothing behind. */
static void test_subprocess_death_is_reported(void **state)
{
    fixture *f = *state;
    set_example_addresses(f);
    esg_grpc_runner *runner = start_runner(f, &esg_example_system, ESG_RUNNER_SUBPROCESSES);
    esg_error err = {0};
    assert_false(esg_grpc_runner_has_errored(runner, &err));
    pid_t payments = child_serving(TOPIC("Payments"));
    assert_true(payments > 0);
    assert_int_equal(kill(payments, SIGKILL), 0);
    int64_t deadline = esg_clock_now_ms() + 5000;
    while (!esg_grpc_runner_has_errored(runner, &err)) {
        assert_true(esg_clock_now_ms() < deadline);
        esg_clock_sleep_ms(10);
    }
    print_message("has_errored: %s\n", err.message);
    assert_non_null(strstr(err.message, "Payments"));
    /* The others still answer until stopped. */
    (void)call_uuid(esg_grpc_runner_get(runner, "Orders"), "create_new_order");
    stop_runner(f);
}

/* ---- Servers started here, as a deployment starts them -------------------------------- */

/* Starts eventsourcing_grpc_server for the example's application app, in the
 * example system, as slot app of the fixture: addresses are those this server
 * is told (its own included), SQLite in the fixture's folder, and
 * MAX_PULL_INTERVAL. Waits until it answers a Ping. */
static void spawn_example_server(fixture *f, size_t app, char (*addresses)[ADDRESS_SIZE],
                                 const char *max_pull_interval)
{
    char entries[12][600];
    size_t n = 0;
    snprintf(entries[n++], sizeof entries[0], "APPLICATION_TOPIC=eventsourcing_grpc.example:%s",
             example_names[app]);
    snprintf(entries[n++], sizeof entries[0], "SYSTEM_TOPIC=eventsourcing_grpc.example:system");
    for (size_t i = 0; i < N_EXAMPLE_APPS; i++) {
        snprintf(entries[n++], sizeof entries[0], "%s=%s", example_address_keys[i], addresses[i]);
        snprintf(entries[n++], sizeof entries[0], "%s=%s/%s.db", example_dbname_keys[i], f->dir,
                 example_names[i]);
    }
    snprintf(entries[n++], sizeof entries[0], "PERSISTENCE_MODULE=eventsourcing.sqlite");
    snprintf(entries[n++], sizeof entries[0], "MAX_PULL_INTERVAL=%s", max_pull_interval);
    const char *overrides[12];
    for (size_t i = 0; i < n; i++)
        overrides[i] = entries[i];
    static const char *const unset[] = {"SQLITE_DBNAME", "APPLICATION_TOPIC"};

    static int n_spawned = 0;
    snprintf(f->logs[app], sizeof f->logs[app], "%s/%s-%d.log", f->dir, example_names[app],
             ++n_spawned);
    char *argv[] = {ESG_SERVER_PROGRAM, NULL};
    pid_t pid = testutil_spawn(argv, f->logs[app], overrides, n, unset, 2, NULL);
    assert_int_equal(f->pids[app], 0);
    f->pids[app] = pid;

    /* Ready once it answers a Ping on its own address. */
    int64_t started = esg_clock_now_ms();
    for (;;) {
        check_health(f);
        esg_error err = {0};
        esg_client *client = NULL;
        esg_client_options options = {.max_attempts = 1, .deadline_ms = 1000};
        if (esg_client_connect_address(addresses[app], &options, &client, &err) == ESG_OK) {
            esg_client_free(client);
            return;
        }
        if (esg_clock_now_ms() - started > 15000) {
            print_log(f->logs[app]);
            fail_msg("%s did not answer on %s: %s", example_names[app], addresses[app],
                     err.message);
        }
        esg_clock_sleep_ms(20);
    }
}

/* Every application of the example as a server of its own, on the fixture's addresses. */
static void spawn_example_system(fixture *f, const char *max_pull_interval)
{
    for (size_t app = 0; app < N_EXAMPLE_APPS; app++)
        spawn_example_server(f, app, f->addresses, max_pull_interval);
}

/* Sends sig to the server in slot app and reaps it; its wait status. */
static int stop_server(fixture *f, size_t app, int sig)
{
    int status = 0;
    assert_true(f->pids[app] > 0);
    assert_int_equal(kill(f->pids[app], sig), 0);
    if (!testutil_reap(f->pids[app], 10000, &status)) {
        print_log(f->logs[app]);
        fail_msg("%s did not stop on signal %d", example_names[app], sig);
    }
    f->pids[app] = 0;
    return status;
}

static void *create_orders(void *arg)
{
    order_stream *stream = arg;
    for (size_t i = 0; i < stream->n_orders; i++) {
        esg_value *result = NULL;
        stream->rc =
            esg_client_call(stream->orders, "create_new_order", NULL, NULL, &result, &stream->err);
        if (stream->rc == ESG_OK && esg_value_as_uuid(result) == NULL)
            stream->rc = esg_error_set(&stream->err, ESG_EINTERNAL, "not a UUID");
        if (stream->rc != ESG_OK) {
            esg_value_free(result);
            atomic_store(&stream->has_failed, true);
            return NULL;
        }
        stream->ids[i] = *esg_value_as_uuid(result);
        esg_value_free(result);
        atomic_store(&stream->n_done, i + 1);
        esg_clock_sleep_ms(stream->pause_ms);
    }
    return NULL;
}

/* Counts, per order, the notifications of log with topic whose originator is
 * the order (derive NULL) or derived from it; each must be exactly one. */
static void assert_one_each(const esg_notification_list *log, const char *topic,
                            const esg_uuid *order_ids, size_t n_orders, const char *derive)
{
    size_t *counts = calloc(n_orders, sizeof *counts);
    assert_non_null(counts);
    esg_uuid *expected = malloc(n_orders * sizeof *expected);
    assert_non_null(expected);
    for (size_t i = 0; i < n_orders; i++)
        expected[i] = derive != NULL ? testutil_derived_id(derive, &order_ids[i]) : order_ids[i];
    for (size_t i = 0; i < log->n_items; i++)
        if (strcmp(log->items[i].event.topic, topic) == 0)
            counts[index_of(expected, n_orders, &log->items[i].event.originator_id)]++;
    for (size_t i = 0; i < n_orders; i++)
        if (counts[i] != 1)
            fail_msg("order %zu has %zu %s", i, counts[i], topic);
    free(expected);
    free(counts);
}

#define N_STREAM_ORDERS 200

/* Payments is killed with SIGKILL while orders stream in, and restarted,
 * three times: every order is paid, and nothing was processed twice or lost. */
static void test_follower_killed_mid_stream(void **state)
{
    fixture *f = *state;
    spawn_example_system(f, "1");
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_client *reservations = connect_client(f, f->addresses[RESERVATIONS]);
    esg_client *payments = connect_client(f, f->addresses[PAYMENTS]);

    f->stream = calloc(1, sizeof *f->stream);
    assert_non_null(f->stream);
    order_stream *stream = f->stream;
    stream->orders = connect_client(f, f->addresses[ORDERS]);
    stream->n_orders = N_STREAM_ORDERS;
    stream->ids = calloc(N_STREAM_ORDERS, sizeof *stream->ids);
    assert_non_null(stream->ids);
    stream->pause_ms = 5;
    assert_int_equal(pthread_create(&f->stream_thread, NULL, create_orders, stream), 0);
    f->has_stream_thread = true;

    /* Killed three times, at a quarter, half and three quarters of the stream. */
    esg_notification_list list = {0};
    int64_t deadline = esg_clock_now_ms() + 20000;
    for (size_t kill_at = N_STREAM_ORDERS / 4; kill_at < N_STREAM_ORDERS;
         kill_at += N_STREAM_ORDERS / 4) {
        while (atomic_load(&stream->n_done) < kill_at && !atomic_load(&stream->has_failed)) {
            check_health(f);
            assert_true(esg_clock_now_ms() < deadline);
            esg_clock_sleep_ms(2);
        }
        read_all(payments, &list);
        size_t n_paid_before = list.n_items;
        esg_notification_list_clear(&list);
        int status = stop_server(f, PAYMENTS, SIGKILL);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        size_t n_created_at_kill = atomic_load(&stream->n_done);
        spawn_example_server(f, PAYMENTS, f->addresses, "1");
        print_message("Payments killed after %zu orders (%zu payments), restarted when %zu were "
                      "created\n",
                      n_created_at_kill, n_paid_before, atomic_load(&stream->n_done));
        /* A new client: the old one's channel saw its server die. */
        payments = connect_client(f, f->addresses[PAYMENTS]);
    }

    pthread_join(f->stream_thread, NULL);
    f->has_stream_thread = false;
    if (stream->rc != ESG_OK)
        fail_msg("creating orders: %s: %s", esg_status_name(stream->rc), stream->err.message);
    assert_int_equal(atomic_load(&stream->n_done), N_STREAM_ORDERS);

    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < N_STREAM_ORDERS; i++)
        wait_order(f, orders, "is_order_paid", &stream->ids[i], 20000);
    print_message("all %d orders paid %lld ms after the last was created\n", N_STREAM_ORDERS,
                  (long long)(esg_clock_now_ms() - started));

    /* Exactly once, ids without gaps, in every database. */
    read_all(orders, &list);
    assert_int_equal(list.n_items, 3 * N_STREAM_ORDERS);
    assert_ids_without_gaps(&list);
    assert_one_each(&list, TOPIC("Order.Created"), stream->ids, N_STREAM_ORDERS, NULL);
    assert_one_each(&list, TOPIC("Order.Reserved"), stream->ids, N_STREAM_ORDERS, NULL);
    assert_one_each(&list, TOPIC("Order.Paid"), stream->ids, N_STREAM_ORDERS, NULL);
    esg_notification_list_clear(&list);
    read_all(reservations, &list);
    assert_int_equal(list.n_items, N_STREAM_ORDERS);
    assert_ids_without_gaps(&list);
    assert_one_each(&list, TOPIC("Reservation.Created"), stream->ids, N_STREAM_ORDERS,
                    "reservations");
    esg_notification_list_clear(&list);
    read_all(payments, &list);
    assert_int_equal(list.n_items, N_STREAM_ORDERS);
    assert_ids_without_gaps(&list);
    assert_one_each(&list, TOPIC("Payment.Created"), stream->ids, N_STREAM_ORDERS, "payments");
    esg_notification_list_clear(&list);
}

#define N_RESTART_ORDERS 3

/* Orders is stopped and started again while its followers keep running: the
 * followers reconnect on their own and new orders are paid. MAX_PULL_INTERVAL
 * is a minute: prompts, not the next pull, must do it. */
static void test_leader_restarted_while_followers_run(void **state)
{
    fixture *f = *state;
    spawn_example_system(f, "60");
    pid_t follower_pids[2] = {f->pids[RESERVATIONS], f->pids[PAYMENTS]};
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_uuid ids[2 * N_RESTART_ORDERS]; /* created before the restart, then after */
    esg_uuid *before = ids, *after = ids + N_RESTART_ORDERS;
    for (size_t i = 0; i < N_RESTART_ORDERS; i++)
        before[i] = call_uuid(orders, "create_new_order");
    for (size_t i = 0; i < N_RESTART_ORDERS; i++)
        wait_order(f, orders, "is_order_paid", &before[i], 10000);

    int status = stop_server(f, ORDERS, SIGTERM);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_log(f->logs[ORDERS]);
        fail_msg("Orders did not exit 0 on SIGTERM");
    }
    esg_clock_sleep_ms(500); /* the followers notice that their leader is gone */
    spawn_example_server(f, ORDERS, f->addresses, "60");
    orders = connect_client(f, f->addresses[ORDERS]);
    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < N_RESTART_ORDERS; i++)
        after[i] = call_uuid(orders, "create_new_order");
    for (size_t i = 0; i < N_RESTART_ORDERS; i++)
        wait_order(f, orders, "is_order_paid", &after[i], 10000);
    print_message("orders created after the restart paid within %lld ms\n",
                  (long long)(esg_clock_now_ms() - started));
    /* The same follower processes throughout. */
    assert_int_equal(f->pids[RESERVATIONS], follower_pids[0]);
    assert_int_equal(f->pids[PAYMENTS], follower_pids[1]);
    check_health(f);

    esg_notification_list list = {0};
    read_all(orders, &list);
    assert_int_equal(list.n_items, 6 * N_RESTART_ORDERS);
    assert_ids_without_gaps(&list);
    assert_one_each(&list, TOPIC("Order.Reserved"), ids, 2 * N_RESTART_ORDERS, NULL);
    assert_one_each(&list, TOPIC("Order.Paid"), ids, 2 * N_RESTART_ORDERS, NULL);
    esg_notification_list_clear(&list);
}

#define N_LATE_ORDERS 10

/* Creates n orders through orders (ids into ids) and waits until until (is_order_reserved or
 * is_order_paid) says each is. */
static void create_waited_orders(fixture *f, esg_client *orders, esg_uuid *ids, size_t n,
                                 const char *until)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = call_uuid(orders, "create_new_order");
    for (size_t i = 0; i < n; i++)
        wait_order(f, orders, until, &ids[i], 5000);
}

/* Payments starts a second after orders were created and reserved: it
 * catches up when it starts. MAX_PULL_INTERVAL is a minute, so waiting for
 * the next pull would not do. */
static void test_follower_started_late_catches_up(void **state)
{
    fixture *f = *state;
    spawn_example_server(f, ORDERS, f->addresses, "60");
    spawn_example_server(f, RESERVATIONS, f->addresses, "60");
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_uuid ids[N_LATE_ORDERS];
    create_waited_orders(f, orders, ids, N_LATE_ORDERS, "is_order_reserved");
    assert_false(call_bool(orders, "is_order_paid", &ids[0]));
    esg_clock_sleep_ms(1000);

    spawn_example_server(f, PAYMENTS, f->addresses, "60");
    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < N_LATE_ORDERS; i++)
        wait_order(f, orders, "is_order_paid", &ids[i], 5000);
    print_message("a late Payments paid %d orders within %lld ms of answering\n", N_LATE_ORDERS,
                  (long long)(esg_clock_now_ms() - started));
}

/* Starts Orders with a wrong address for follower: a port that was free a moment ago and is none
 * of the fixture's, where nothing listens. */
static void spawn_orders_misaddressing(fixture *f, size_t follower)
{
    char wrong[N_EXAMPLE_APPS][ADDRESS_SIZE];
    memcpy(wrong, f->addresses, sizeof wrong);
    char unused[1][ADDRESS_SIZE];
    do
        free_addresses(unused, 1);
    while (strcmp(unused[0], f->addresses[ORDERS]) == 0 ||
           strcmp(unused[0], f->addresses[RESERVATIONS]) == 0 ||
           strcmp(unused[0], f->addresses[PAYMENTS]) == 0);
    snprintf(wrong[follower], ADDRESS_SIZE, "%s", unused[0]);
    spawn_example_server(f, ORDERS, wrong, "60");
}

/* The same, but Orders is told a wrong address for Payments, so that no
 * prompt ever reaches it (the leader retries its prompts): Payments started
 * late must read what it missed by itself, when it starts. */
static void test_follower_started_late_catches_up_unprompted(void **state)
{
    fixture *f = *state;
    spawn_orders_misaddressing(f, PAYMENTS);
    spawn_example_server(f, RESERVATIONS, f->addresses, "60");
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_uuid ids[N_LATE_ORDERS];
    create_waited_orders(f, orders, ids, N_LATE_ORDERS, "is_order_reserved");
    esg_clock_sleep_ms(1000);

    spawn_example_server(f, PAYMENTS, f->addresses, "60");
    esg_client *payments = connect_client(f, f->addresses[PAYMENTS]);
    esg_notification_list list = {0};
    int64_t waited = wait_notifications(f, payments, N_LATE_ORDERS, 3000, &list);
    print_message("a late, unprompted Payments caught up within %lld ms\n", (long long)waited);
    assert_ids_without_gaps(&list);
    assert_one_each(&list, TOPIC("Payment.Created"), ids, N_LATE_ORDERS, "payments");
    esg_notification_list_clear(&list);
}

/* The position of app (a follower) in leader's log, as the client's lag command reads it
 * (eventsourcing_grpc_c.v1.Node), once it is at position and knows leader_max, polled for up to
 * 5 s. */
static esg_leader_position wait_position(fixture *f, esg_client *follower, const char *app,
                                         const char *leader, int64_t position, int64_t leader_max)
{
    int64_t started = esg_clock_now_ms();
    for (;;) {
        esg_error err = {0};
        esg_leader_positions positions = {0};
        assert_esg_ok(esg_client_leader_positions(follower, &positions, &err), &err);
        assert_string_equal(positions.application_name, app);
        esg_leader_position found = {.position = -2};
        for (size_t i = 0; i < positions.n_items; i++)
            if (strcmp(positions.items[i].leader_name, leader) == 0) {
                found = positions.items[i];
                found.leader_name = NULL; /* freed with the list */
            }
        esg_leader_positions_clear(&positions);
        assert_true(found.position != -2);
        if (found.position == position && found.leader_max == leader_max)
            return found;
        check_health(f);
        if (esg_clock_now_ms() - started > 5000) {
            print_logs(f);
            fail_msg("%s in %s: position %lld of %lld, not %lld of %lld, after 5 s", app, leader,
                     (long long)found.position, (long long)found.leader_max, (long long)position,
                     (long long)leader_max);
        }
        esg_clock_sleep_ms(10);
    }
}

/* Reservations' position in Orders once it knows of notifications after position (which it
 * has not processed). */
static esg_leader_position wait_lagging(fixture *f, esg_client *reservations, int64_t position)
{
    int64_t started = esg_clock_now_ms();
    for (;;) {
        esg_error err = {0};
        esg_leader_positions positions = {0};
        assert_esg_ok(esg_client_leader_positions(reservations, &positions, &err), &err);
        assert_int_equal(positions.n_items, 1);
        esg_leader_position p = positions.items[0];
        esg_leader_positions_clear(&positions);
        assert_int_equal(p.position, position);
        if (p.leader_max > position) {
            assert_int_equal(p.lag_notifications, p.leader_max - position);
            return p;
        }
        check_health(f);
        if (esg_clock_now_ms() - started > 5000)
            fail_msg("Reservations never knew of more than %lld", (long long)p.leader_max);
        esg_clock_sleep_ms(10);
    }
}

/* What the client's lag command shows: each follower at its leader's last notification once
 * caught up, lag 0, the leaders pushing; while the test holds Reservations' database locked,
 * the orders created meanwhile show as a lag in notifications and in seconds that grows; once
 * the lock goes, the lag returns to 0. */
static void test_leader_positions(void **state)
{
    fixture *f = *state;
    spawn_example_system(f, "60");
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_client *reservations = connect_client(f, f->addresses[RESERVATIONS]);
    esg_uuid ids[N_LATE_ORDERS];
    create_waited_orders(f, orders, ids, N_LATE_ORDERS, "is_order_paid");
    const int64_t last = 3 * N_LATE_ORDERS; /* created, reserved and paid */
    esg_leader_position p = wait_position(f, reservations, "Reservations", "Orders", last, last);
    assert_int_equal(p.lag_notifications, 0);
    assert_true(p.lag_seconds == 0);
    assert_int_equal(p.notifications_processed, N_LATE_ORDERS); /* follow_topics: Order.Created */
    assert_true(p.is_subscribed); /* Orders pushes, and so need not prompt */
    assert_true(p.pages_pushed > 0);
    assert_true(p.prompts_received <= (uint64_t)last);
    assert_true(p.pulls > 0); /* at start */
    assert_int_equal(p.pull_errors, 0);
    /* Orders follows both others, listed in the system's order. */
    esg_error err = {0};
    esg_leader_positions both = {0};
    assert_esg_ok(esg_client_leader_positions(orders, &both, &err), &err);
    assert_int_equal(both.n_items, 2);
    assert_string_equal(both.items[0].leader_name, "Reservations");
    assert_string_equal(both.items[1].leader_name, "Payments");
    esg_leader_positions_clear(&both);

    char path[600];
    snprintf(path, sizeof path, "%s/Reservations.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    esg_uuid held[3];
    for (size_t i = 0; i < 3; i++)
        held[i] = call_uuid(orders, "create_new_order");
    /* Pushed pages are read one at a time: a follower stuck on one knows of the leader's log up
     * to that page (the first order at least), and its lag in seconds is that page's age. */
    p = wait_lagging(f, reservations, last);
    esg_clock_sleep_ms(300);
    esg_leader_position later = wait_lagging(f, reservations, last);
    assert_true(later.lag_seconds >= 0.25);
    assert_true(later.lag_seconds > p.lag_seconds);
    print_message("Reservations held back: %lld notifications behind, for %.3f s\n",
                  (long long)later.lag_notifications, later.lag_seconds);

    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    for (size_t i = 0; i < 3; i++)
        wait_order(f, orders, "is_order_paid", &held[i], 10000);
    p = wait_position(f, reservations, "Reservations", "Orders", last + 9, last + 9);
    assert_int_equal(p.lag_notifications, 0);
    assert_true(p.lag_seconds == 0);
}

#define N_LOST_ORDERS 5

/* Orders sends its prompts for Reservations to a port where nothing listens;
 * Reservations, pulling every second, still reserves every order. */
static void test_lost_prompts_recovered_by_pull_interval(void **state)
{
    fixture *f = *state;
    spawn_orders_misaddressing(f, RESERVATIONS);
    spawn_example_server(f, RESERVATIONS, f->addresses, "1");
    esg_client *orders = connect_client(f, f->addresses[ORDERS]);
    esg_client *reservations = connect_client(f, f->addresses[RESERVATIONS]);
    esg_clock_sleep_ms(300); /* past Reservations' pull at start */

    esg_uuid ids[N_LOST_ORDERS];
    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < N_LOST_ORDERS; i++)
        ids[i] = call_uuid(orders, "create_new_order");
    esg_notification_list list = {0};
    wait_notifications(f, reservations, N_LOST_ORDERS, 3000, &list);
    print_message("orders reserved %lld ms after creation without prompts\n",
                  (long long)(esg_clock_now_ms() - started));
    assert_ids_without_gaps(&list);
    for (size_t i = 0; i < N_LOST_ORDERS; i++) {
        esg_uuid expected = testutil_derived_id("reservations", &ids[i]);
        assert_true(esg_uuid_equal(&list.items[i].event.originator_id, &expected));
    }
    esg_notification_list_clear(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readme_runner_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readme_runner_subprocesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousand_orders_all_paid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_fast_while_busy_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_fast_while_busy_subprocesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_way_pipe_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_way_pipe_subprocesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_subprocesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processing_error_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subprocess_death_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_killed_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_restarted_while_followers_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_started_late_catches_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_started_late_catches_up_unprompted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leader_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_prompts_recovered_by_pull_interval, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
