/* Interoperability: our C client (include/esg/grpc.h) against a Python grpcio
 * server that answers as eventsourcing-grpc 0.1.2's does
 * (tests/interop/python_server.py): method calls, notifications, the
 * reference's errors, and C followers pulling from the Python leader.
 *
 * Usage: test_c_client_python_server [PYTHON [SERVER_SCRIPT]], by default
 * ESG_INTEROP_PYTHON and ESG_INTEROP_SERVER_SCRIPT. Exits 77 (skipped) when
 * that Python has no grpcio. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esg/example.h"
#include "esg/grpc.h"

#ifndef ESG_INTEROP_PYTHON
#define ESG_INTEROP_PYTHON "/usr/bin/python3"
#endif
#ifndef ESG_INTEROP_SERVER_SCRIPT
#error "ESG_INTEROP_SERVER_SCRIPT (the path of tests/interop/python_server.py) must be defined"
#endif

#define EXIT_SKIP 77           /* CTest's SKIP_RETURN_CODE */
#define START_TIMEOUT_MS 30000 /* Python, grpcio and protoc start in about a second */
#define STOP_TIMEOUT_MS 5000
#define PAGE 10 /* the reference's largest page */

#define TOPIC_ORDER "eventsourcing_grpc.example:Order"
#define TOPIC_CREATED "eventsourcing_grpc.example:Order.Created"
#define TOPIC_RESERVED "eventsourcing_grpc.example:Order.Reserved"
#define TOPIC_PAID "eventsourcing_grpc.example:Order.Paid"

extern char **environ;

/* One python_server.py process. */
typedef struct python_server {
    pid_t pid;        /* 0 when not running */
    int stdin_fd;     /* our end of its stdin: closing it stops it (--exit-on-stdin-eof) */
    int stdout_fd;    /* our end of its stdout, read until it says where it listens */
    char address[80]; /* "localhost:PORT" once listening */
    bool is_skipped;  /* it exited with EXIT_SKIP: its Python has no grpcio */
} python_server;

typedef struct fixture {
    const char *python;   /* the interpreter (borrowed from argv or the default) */
    const char *script;   /* python_server.py */
    bool is_skipped;      /* no grpcio: every test is skipped, main exits 77 */
    python_server orders; /* plain Orders */
    python_server system; /* --as-system: every new order reserved and paid */
    esg_client *orders_client;
    esg_client *system_client;
} fixture;

static fixture fx;

/* ---- The Python server process --------------------------------------------- */

/* Waits up to timeout_ms for the process; its exit status, or -1 if it still runs. */
static int wait_exit(pid_t pid, int64_t timeout_ms)
{
    int64_t until = esg_clock_now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (done < 0 || esg_clock_now_ms() >= until)
            return -1;
        esg_clock_sleep_ms(10);
    }
}

/* Closes our ends of the server's pipes and forgets the process (already reaped). */
static void forget_server(python_server *server)
{
    close(server->stdin_fd);
    close(server->stdout_fd);
    server->pid = 0;
}

static void stop_server(python_server *server)
{
    if (server->pid <= 0)
        return;
    kill(server->pid, SIGTERM);
    int status = wait_exit(server->pid, STOP_TIMEOUT_MS);
    if (status < 0) {
        fprintf(stderr, "python_server (pid %d) did not stop: killed\n", (int)server->pid);
        kill(server->pid, SIGKILL);
        waitpid(server->pid, NULL, 0);
    } else if (status != 0) {
        fprintf(stderr, "python_server (pid %d) exited with status %d\n", (int)server->pid, status);
    }
    forget_server(server);
}

/* Reads the server's output (echoed to stderr) until it says
 * "listening on HOST:PORT"; false if it exited or took too long. */
static bool read_address(python_server *server)
{
    char text[4096];
    size_t len = 0;
    int64_t until = esg_clock_now_ms() + START_TIMEOUT_MS;
    while (esg_clock_now_ms() < until && len + 1 < sizeof text) {
        struct pollfd pfd = {.fd = server->stdout_fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(until - esg_clock_now_ms()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;
        ssize_t n = read(server->stdout_fd, text + len, sizeof text - 1 - len);
        if (n <= 0)
            break; /* it exited */
        fwrite(text + len, 1, (size_t)n, stderr);
        len += (size_t)n;
        text[len] = '\0';
        const char *at = strstr(text, "listening on ");
        if (at != NULL && strchr(at, '\n') != NULL) {
            at += strlen("listening on ");
            size_t address_len = strcspn(at, " \r\n");
            if (address_len == 0 || address_len >= sizeof server->address)
                return false;
            memcpy(server->address, at, address_len);
            server->address[address_len] = '\0';
            return true;
        }
    }
    return false;
}

/* Starts python_server.py on a free loopback port; false (with the reason on
 * stderr, or is_skipped set) when it does not come up. */
static bool start_server(python_server *server, bool as_system)
{
    memset(server, 0, sizeof *server);
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0)
        return false;
    if (pipe(from_child) != 0) {
        close(to_child[0]);
        close(to_child[1]);
        return false;
    }
    /* Our ends must not leak into the next server, or its stdin never closes. */
    fcntl(to_child[1], F_SETFD, FD_CLOEXEC);
    fcntl(from_child[0], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, to_child[0]);
    posix_spawn_file_actions_addclose(&actions, from_child[1]);
    char *argv[] = {(char *)fx.python,
                    (char *)fx.script,
                    "localhost:0",
                    "--exit-on-stdin-eof",
                    as_system ? "--as-system" : NULL,
                    NULL};
    int rc = posix_spawn(&server->pid, fx.python, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    server->stdin_fd = to_child[1];
    server->stdout_fd = from_child[0];
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", fx.python, strerror(rc));
        forget_server(server);
        return false;
    }
    if (read_address(server))
        return true;
    int status = wait_exit(server->pid, STOP_TIMEOUT_MS);
    if (status < 0) {
        fprintf(stderr, "%s %s did not say where it listens\n", fx.python, fx.script);
        stop_server(server);
        return false;
    }
    server->is_skipped = status == EXIT_SKIP;
    if (!server->is_skipped)
        fprintf(stderr, "%s %s exited with status %d\n", fx.python, fx.script, status);
    forget_server(server);
    return false;
}

static esg_client *connect_to(const python_server *server)
{
    esg_client_options options = {.max_attempts = 20, .backoff_ms = 50, .deadline_ms = 5000};
    esg_client *client = NULL;
    esg_error err = {0};
    if (esg_client_connect_address(server->address, &options, &client, &err) != ESG_OK) {
        fprintf(stderr, "cannot connect to the Python server at %s: %s\n", server->address,
                err.message);
        return NULL;
    }
    return client;
}

static int group_teardown(void **state)
{
    (void)state;
    esg_client_free(fx.orders_client);
    esg_client_free(fx.system_client);
    fx.orders_client = NULL;
    fx.system_client = NULL;
    stop_server(&fx.orders);
    stop_server(&fx.system);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    bool is_up = start_server(&fx.orders, false) && start_server(&fx.system, true);
    if (is_up) {
        fx.orders_client = connect_to(&fx.orders);
        fx.system_client = connect_to(&fx.system);
        is_up = fx.orders_client != NULL && fx.system_client != NULL;
    }
    if (is_up)
        return 0;
    /* cmocka skips the group teardown when the setup fails. */
    fx.is_skipped = fx.orders.is_skipped || fx.system.is_skipped;
    group_teardown(NULL);
    return fx.is_skipped ? 0 : -1;
}

#define SKIP_WITHOUT_GRPCIO()                                                                      \
    do {                                                                                           \
        if (fx.is_skipped)                                                                         \
            skip();                                                                                \
    } while (0)

/* ---- Helpers ----------------------------------------------------------------- */

/* Calls method with args and kwargs (both taken, may be NULL); the result is the caller's. */
static esg_value *call(esg_client *client, const char *method, esg_value *args, esg_value *kwargs)
{
    esg_error err = {0};
    esg_value *result = NULL;
    esg_status rc = esg_client_call(client, method, args, kwargs, &result, &err);
    esg_value_free(args);
    esg_value_free(kwargs);
    if (rc != ESG_OK)
        fail_msg("%s failed: %s: %s", method, esg_status_name(rc), err.message);
    assert_non_null(result);
    return result;
}

static esg_uuid create_order(esg_client *client)
{
    return testutil_take_uuid(call(client, "create_new_order", NULL, NULL));
}

static bool call_bool(esg_client *client, const char *method, const esg_uuid *id)
{
    return testutil_take_bool(call(client, method, testutil_id_args(id), NULL));
}

/* Asserts what client's server answers to is_order_reserved and is_order_paid for the order. */
static void assert_reserved_and_paid(esg_client *client, const esg_uuid *id, bool is_reserved,
                                     bool is_paid)
{
    assert_int_equal(call_bool(client, "is_order_reserved", id), is_reserved);
    assert_int_equal(call_bool(client, "is_order_paid", id), is_paid);
}

/* Every notification of the server, page by page (PAGE at most, as the reference allows). */
static void select_all(esg_client *client, esg_notification_list *out)
{
    esg_error err = {0};
    for (;;) {
        size_t n_before = out->n_items;
        int64_t start = n_before == 0 ? 1 : out->items[n_before - 1].id + 1;
        assert_esg_ok(esg_client_select_notifications(client, start, PAGE, 0, NULL, 0, out, &err),
                      &err);
        if (out->n_items == n_before)
            return;
    }
}

/* The index in list of the notification of id at version; fails when absent. */
static size_t find_notification(const esg_notification_list *list, const esg_uuid *id,
                                int64_t version)
{
    for (size_t i = 0; i < list->n_items; i++)
        if (esg_uuid_equal(&list->items[i].event.originator_id, id) &&
            list->items[i].event.originator_version == version)
            return i;
    fail_msg("no notification of version %lld of the order", (long long)version);
    return 0;
}

/* The stored state decoded by our transcoder; it must also re-encode to the
 * very bytes Python wrote. The caller frees the value. */
static esg_value *decode_state(const esg_notification *notification)
{
    esg_error err = {0};
    esg_value *state = NULL;
    const esg_stored_event *event = &notification->event;
    assert_esg_ok(esg_json_decode((const char *)event->state, event->state_len, &state, &err),
                  &err);
    char *again = NULL;
    size_t again_len = 0;
    assert_esg_ok(esg_json_encode(state, &again, &again_len, &err), &err);
    if (again_len != event->state_len || memcmp(again, event->state, again_len) != 0)
        fail_msg("state re-encoded differently:\n  python: %.*s\n  ours:   %.*s",
                 (int)event->state_len, (const char *)event->state, (int)again_len, again);
    free(again);
    assert_int_equal(esg_value_type(state), ESG_TYPE_OBJECT);
    return state;
}

static void assert_utc(const esg_value *value)
{
    assert_int_equal(esg_value_type(value), ESG_TYPE_DATETIME);
    const esg_datetime *dt = esg_value_as_datetime(value);
    assert_true(dt->has_offset);
    assert_int_equal(dt->utc_offset_seconds, 0);
}

static void assert_uuid_value(const esg_value *value, const esg_uuid *expected)
{
    assert_int_equal(esg_value_type(value), ESG_TYPE_UUID);
    assert_true(esg_uuid_equal(esg_value_as_uuid(value), expected));
}

/* ---- Calls ------------------------------------------------------------------- */

static void test_ping(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_error err = {0};
    assert_esg_ok(esg_client_ping(fx.orders_client, &err), &err);
    assert_esg_ok(esg_client_ping(fx.system_client, &err), &err);
}

static void test_create_new_order_returns_new_ids(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_uuid first = create_order(fx.orders_client);
    esg_uuid second = create_order(fx.orders_client);
    assert_false(esg_uuid_equal(&first, &second));
}

static void test_get_order_of_a_new_order(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    static const char *const keys[] = {"id",         "is_reserved", "is_paid",    "reservation_id",
                                       "payment_id", "created_on",  "modified_on"};
    esg_uuid id = create_order(fx.orders_client);
    esg_value *order = call(fx.orders_client, "get_order", testutil_id_args(&id), NULL);
    assert_int_equal(esg_value_type(order), ESG_TYPE_OBJECT);
    assert_int_equal(esg_object_len(order), 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(esg_object_key_at(order, i), keys[i]);
    assert_uuid_value(esg_object_get(order, "id"), &id);
    assert_false(esg_value_as_bool(esg_object_get(order, "is_reserved")));
    assert_false(esg_value_as_bool(esg_object_get(order, "is_paid")));
    assert_int_equal(esg_value_type(esg_object_get(order, "reservation_id")), ESG_TYPE_NULL);
    assert_int_equal(esg_value_type(esg_object_get(order, "payment_id")), ESG_TYPE_NULL);
    assert_utc(esg_object_get(order, "created_on"));
    assert_true(
        esg_value_equal(esg_object_get(order, "created_on"), esg_object_get(order, "modified_on")));

    /* The same order asked for by keyword. */
    esg_value *kwargs = esg_value_object();
    assert_int_equal(esg_object_set(kwargs, "order_id", esg_value_uuid(&id)), ESG_OK);
    esg_value *again = call(fx.orders_client, "get_order", NULL, kwargs);
    assert_true(esg_value_equal(order, again));
    esg_value_free(again);
    esg_value_free(order);
}

static void test_is_order_reserved_and_paid_of_a_new_order(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_uuid id = create_order(fx.orders_client);
    assert_reserved_and_paid(fx.orders_client, &id, false, false);
}

static void test_paid_order_from_the_system_server(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_uuid id = create_order(fx.system_client);
    assert_reserved_and_paid(fx.system_client, &id, true, true);
    esg_value *order = call(fx.system_client, "get_order", testutil_id_args(&id), NULL);
    esg_uuid reservation_id = testutil_derived_id("reservations", &id);
    esg_uuid payment_id = testutil_derived_id("payments", &id);
    assert_uuid_value(esg_object_get(order, "reservation_id"), &reservation_id);
    assert_uuid_value(esg_object_get(order, "payment_id"), &payment_id);
    assert_utc(esg_object_get(order, "modified_on"));
    assert_true(
        esg_datetime_to_unix_us(esg_value_as_datetime(esg_object_get(order, "created_on"))) <=
        esg_datetime_to_unix_us(esg_value_as_datetime(esg_object_get(order, "modified_on"))));
    esg_value_free(order);
}

static void test_prompt_is_accepted(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_error err = {0};
    assert_esg_ok(esg_client_prompt(fx.orders_client, "Reservations", &err), &err);
}

/* Our own service is not the reference's: a Python server answers UNIMPLEMENTED, and the
 * client says so without leaking. */
static void test_leader_positions_are_unimplemented(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_error err = {0};
    esg_leader_positions positions = {0};
    assert_int_equal(esg_client_leader_positions(fx.system_client, &positions, &err),
                     ESG_EUNIMPLEMENTED);
    assert_int_equal(positions.n_items, 0);
    esg_leader_positions_clear(&positions);
    /* The reference's own calls go on working on the same channel. */
    assert_esg_ok(esg_client_ping(fx.system_client, &err), &err);
}

/* ---- Notifications ---------------------------------------------------------- */

static void test_created_notification(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_uuid id = create_order(fx.orders_client);
    esg_value *order = call(fx.orders_client, "get_order", testutil_id_args(&id), NULL);
    esg_notification_list list = {0};
    select_all(fx.orders_client, &list);
    for (size_t i = 0; i < list.n_items; i++)
        assert_int_equal(list.items[i].id, (int64_t)i + 1); /* no gaps */
    const esg_notification *created = &list.items[find_notification(&list, &id, 1)];
    assert_string_equal(created->event.topic, TOPIC_CREATED);
    esg_value *state_value = decode_state(created);
    assert_int_equal(esg_object_len(state_value), 2);
    assert_string_equal(esg_object_key_at(state_value, 0), "timestamp");
    assert_string_equal(esg_object_key_at(state_value, 1), "originator_topic");
    assert_string_equal(esg_value_as_string(esg_object_get(state_value, "originator_topic"), NULL),
                        TOPIC_ORDER);
    /* The order was created when its Created event was. */
    assert_true(esg_value_equal(esg_object_get(state_value, "timestamp"),
                                esg_object_get(order, "created_on")));
    esg_value_free(state_value);
    esg_value_free(order);
    esg_notification_list_clear(&list);
}

static void test_select_start_limit_stop_and_topics(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_error err = {0};
    esg_uuid id = create_order(fx.system_client);
    esg_notification_list list = {0};
    select_all(fx.system_client, &list);
    int64_t first = list.items[find_notification(&list, &id, 1)].id;
    assert_int_equal(list.items[find_notification(&list, &id, 2)].id, first + 1);
    assert_int_equal(list.items[find_notification(&list, &id, 3)].id, first + 2);
    esg_notification_list_clear(&list);

    /* stop: the Created and Reserved events only. */
    assert_esg_ok(esg_client_select_notifications(fx.system_client, first, PAGE, first + 1, NULL, 0,
                                                  &list, &err),
                  &err);
    assert_int_equal(list.n_items, 2);
    assert_string_equal(list.items[0].event.topic, TOPIC_CREATED);
    assert_string_equal(list.items[1].event.topic, TOPIC_RESERVED);
    esg_notification_list_clear(&list);

    /* start and limit: the Reserved event alone, with its reservation id. */
    assert_esg_ok(
        esg_client_select_notifications(fx.system_client, first + 1, 1, 0, NULL, 0, &list, &err),
        &err);
    assert_int_equal(list.n_items, 1);
    assert_int_equal(list.items[0].id, first + 1);
    assert_int_equal(list.items[0].event.originator_version, 2);
    esg_uuid reservation_id = testutil_derived_id("reservations", &id);
    esg_value *reserved = decode_state(&list.items[0]);
    assert_string_equal(esg_object_key_at(reserved, 0), "timestamp");
    assert_uuid_value(esg_object_get(reserved, "reservation_id"), &reservation_id);
    esg_value_free(reserved);
    esg_notification_list_clear(&list);

    /* topics: the first Paid event from first on is this order's. */
    const char *const paid_topic[] = {TOPIC_PAID};
    assert_esg_ok(
        esg_client_select_notifications(fx.system_client, first, 1, 0, paid_topic, 1, &list, &err),
        &err);
    assert_int_equal(list.n_items, 1);
    assert_int_equal(list.items[0].id, first + 2);
    assert_string_equal(list.items[0].event.topic, TOPIC_PAID);
    esg_uuid payment_id = testutil_derived_id("payments", &id);
    esg_value *paid = decode_state(&list.items[0]);
    assert_uuid_value(esg_object_get(paid, "payment_id"), &payment_id);
    esg_value_free(paid);
    esg_notification_list_clear(&list);

    const char *const wrong_topic[] = {"wrong"};
    assert_esg_ok(
        esg_client_select_notifications(fx.system_client, 1, PAGE, 0, wrong_topic, 1, &list, &err),
        &err);
    assert_int_equal(list.n_items, 0);
}

/* ---- The reference's errors, mapped back ------------------------------------ */

static void test_reference_errors_come_back_as_remote_errors(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_error err = {0};
    esg_value *result = NULL;
    esg_uuid unknown;
    esg_uuid4(&unknown);
    esg_value *args = testutil_id_args(&unknown);
    /* The reference answers UNKNOWN, with the Python exception's message. */
    assert_int_equal(esg_client_call(fx.orders_client, "get_order", args, NULL, &result, &err),
                     ESG_EREMOTE);
    assert_null(result);
    assert_non_null(strstr(err.message, "Exception calling application: (UUID('"));
    esg_value_free(args);

    assert_int_equal(esg_client_call(fx.orders_client, "no_such_method", NULL, NULL, &result, &err),
                     ESG_EREMOTE);
    assert_non_null(strstr(err.message, "has no attribute 'no_such_method'"));

    /* Pages above the reference's section size are refused. */
    esg_notification_list list = {0};
    assert_int_equal(
        esg_client_select_notifications(fx.orders_client, 1, PAGE + 1, 0, NULL, 0, &list, &err),
        ESG_EREMOTE);
    assert_non_null(strstr(err.message, "greater than section size 10"));
    assert_int_equal(list.n_items, 0);
}

/* ---- C followers of the Python leader ---------------------------------------- */

/* A new in-memory application of type. */
static esg_application *new_application(const esg_application_type *type)
{
    esg_error err = {0};
    esg_env *env = esg_env_new();
    assert_non_null(env);
    assert_esg_ok(esg_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.popo", &err), &err);
    esg_application *app = NULL;
    assert_esg_ok(esg_application_new(type, env, &app, &err), &err);
    esg_env_free(env);
    return app;
}

/* Pulls everything from the leader behind client; the count processed. */
static int64_t pull(esg_application *app, esg_client *client)
{
    esg_error err = {0};
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    int64_t n_processed = 0;
    assert_esg_ok(esg_application_pull_and_process(app, &log, &n_processed, &err), &err);
    return n_processed;
}

/* Whether app recorded a Created event of the aggregate id derived from order_id. */
static bool has_created_for(esg_application *app, const char *kind, const char *topic,
                            const esg_uuid *order_id)
{
    esg_error err = {0};
    esg_notification_list list = {0};
    assert_esg_ok(esg_application_select_notifications(app, 1, 1000, 0, NULL, 0, &list, &err),
                  &err);
    esg_uuid id = testutil_derived_id(kind, order_id);
    bool is_found = false;
    for (size_t i = 0; i < list.n_items && !is_found; i++)
        is_found = esg_uuid_equal(&list.items[i].event.originator_id, &id) &&
                   strcmp(list.items[i].event.topic, topic) == 0;
    esg_notification_list_clear(&list);
    return is_found;
}

static void test_reservations_follows_python_orders(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    /* More than one reference page (10), so the follower meets its limit. */
    esg_uuid ids[PAGE + 3];
    for (size_t i = 0; i < PAGE + 3; i++)
        ids[i] = create_order(fx.orders_client);
    esg_notification_list all = {0};
    select_all(fx.orders_client, &all);

    esg_application *reservations = new_application(&esg_example_reservations);
    assert_int_equal(pull(reservations, fx.orders_client), (int64_t)all.n_items);
    for (size_t i = 0; i < PAGE + 3; i++)
        assert_true(has_created_for(reservations, "reservations",
                                    "eventsourcing_grpc.example:Reservation.Created", &ids[i]));
    /* Tracked: nothing is processed twice. */
    assert_int_equal(pull(reservations, fx.orders_client), 0);
    esg_application_free(reservations);
    esg_notification_list_clear(&all);
}

static void test_payments_follows_python_orders_reserved_events(void **state)
{
    (void)state;
    SKIP_WITHOUT_GRPCIO();
    esg_uuid id = create_order(fx.system_client);
    esg_notification_list all = {0};
    select_all(fx.system_client, &all);
    esg_application *payments = new_application(&esg_example_payments);
    /* Payments follows Order.Reserved alone: it asks the Python server for those only. */
    int64_t n_reserved = 0;
    for (size_t i = 0; i < all.n_items; i++)
        n_reserved +=
            strcmp(all.items[i].event.topic, "eventsourcing_grpc.example:Order.Reserved") == 0;
    assert_true(n_reserved > 0 && n_reserved < (int64_t)all.n_items);
    assert_int_equal(pull(payments, fx.system_client), n_reserved);
    assert_true(
        has_created_for(payments, "payments", "eventsourcing_grpc.example:Payment.Created", &id));
    esg_application_free(payments);
    esg_notification_list_clear(&all);
}

int main(int argc, char **argv)
{
    fx.python = argc > 1 ? argv[1] : ESG_INTEROP_PYTHON;
    fx.script = argc > 2 ? argv[2] : ESG_INTEROP_SERVER_SCRIPT;
    setenv("GRPC_DNS_RESOLVER", "native", 0);
    signal(SIGPIPE, SIG_IGN); /* a server that died must not kill the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_create_new_order_returns_new_ids),
        cmocka_unit_test(test_get_order_of_a_new_order),
        cmocka_unit_test(test_is_order_reserved_and_paid_of_a_new_order),
        cmocka_unit_test(test_paid_order_from_the_system_server),
        cmocka_unit_test(test_prompt_is_accepted),
        cmocka_unit_test(test_leader_positions_are_unimplemented),
        cmocka_unit_test(test_created_notification),
        cmocka_unit_test(test_select_start_limit_stop_and_topics),
        cmocka_unit_test(test_reference_errors_come_back_as_remote_errors),
        cmocka_unit_test(test_reservations_follows_python_orders),
        cmocka_unit_test(test_payments_follows_python_orders_reserved_events),
    };
    int n_failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    if (fx.is_skipped) {
        fprintf(stderr, "skipped: %s has no grpcio (see its message above)\n", fx.python);
        return EXIT_SKIP;
    }
    return n_failed == 0 ? 0 : 1;
}
