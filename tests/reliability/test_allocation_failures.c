/* Out of memory on every path: an allocator (esg/alloc.h) that fails the k-th allocation, with k
 * walked over every allocation of the main paths (opening an application, a command that saves,
 * a query that gets, selecting notifications, a follower processing a page, and the same over
 * gRPC), on the in-memory and the SQLite recorder. Each run must end in success or in a clean
 * error (a status and a message), leave nothing allocated once torn down, and leave the database
 * readable; the walk ends at the first k that the run does not reach. Run it under ASan to also
 * catch a use after free or a double free on a failure path. */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esg/grpc.h"

/* ---- The counting allocator ------------------------------------------------------------------ */

static atomic_long n_allocations; /* allocations asked for since the counter was reset */
static atomic_long fail_at;       /* the allocation number that fails; 0: none */
static atomic_long n_live;        /* allocated and not yet freed */
static atomic_bool has_failed;    /* the fault was injected in this run */

static bool next_fails(void)
{
    long k = atomic_fetch_add(&n_allocations, 1) + 1;
    if (k != atomic_load(&fail_at))
        return false;
    atomic_store(&has_failed, true);
    return true;
}

static void *counting_malloc(size_t size)
{
    void *p = next_fails() ? NULL : malloc(size);
    if (p != NULL)
        atomic_fetch_add(&n_live, 1);
    return p;
}

static void *counting_calloc(size_t count, size_t size)
{
    void *p = next_fails() ? NULL : calloc(count, size);
    if (p != NULL)
        atomic_fetch_add(&n_live, 1);
    return p;
}

static void *counting_realloc(void *ptr, size_t size)
{
    if (next_fails())
        return NULL; /* ptr stays allocated, as with C's realloc */
    void *p = realloc(ptr, size ? size : 1);
    if (p != NULL && ptr == NULL)
        atomic_fetch_add(&n_live, 1);
    return p;
}

static void counting_free(void *ptr)
{
    if (ptr != NULL)
        atomic_fetch_sub(&n_live, 1);
    free(ptr);
}

static const esg_allocator counting = {counting_malloc, counting_calloc, counting_realloc,
                                       counting_free};

/* Arms the fault for the k-th allocation from now (0: none). */
static void arm(long k)
{
    atomic_store(&fail_at, 0);
    atomic_store(&has_failed, false);
    atomic_store(&n_allocations, 0);
    atomic_store(&fail_at, k);
}

static void disarm(void)
{
    atomic_store(&fail_at, 0);
}

/* ---- One run of the paths ---------------------------------------------------------------------
 */

typedef struct run_result {
    long n_allocations; /* how many the run asked for */
    bool has_failed;    /* the fault was injected */
} run_result;

/* A step that may fail: fails the test when it failed without a status and a message, or when
 * no fault was injected; else makes the run stop at this step. */
#define STEP(call)                                                                                 \
    do {                                                                                           \
        esg_status rc_ = (call);                                                                   \
        if (rc_ != ESG_OK) {                                                                       \
            if (!atomic_load(&has_failed))                                                         \
                fail_msg("%s failed without a fault: %s: %s", #call, esg_status_name(rc_),         \
                         err.message);                                                             \
            if (err.message[0] == '\0' || err.status == ESG_OK)                                    \
                fail_msg("%s failed with %s but without an error message", #call,                  \
                         esg_status_name(rc_));                                                    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* [created] as positional arguments, in a new array *args (the caller frees it, also on
 * failure); ESG_ENOMEM, with a message, under the fault. */
static esg_status order_id_args(const esg_value *created, esg_value **args, esg_error *err)
{
    *args = esg_value_array();
    if (*args == NULL || esg_array_append(*args, esg_value_copy(created)) != ESG_OK)
        return esg_error_set(err, ESG_ENOMEM, "out of memory for the arguments");
    return ESG_OK;
}

typedef struct paths {
    const char *persistence; /* "popo" or "sqlite" */
    char dir[512];           /* the SQLite files' folder */
    esg_env *env;            /* made with the fault disarmed */
    bool over_grpc;          /* the command, query and page through a server */
} paths;

/* Application, command, query, notifications and a follower's page, each possibly failing. */
static void run_core(const paths *p, long k, run_result *result)
{
    esg_error err = {0};
    esg_application *orders = NULL, *reservations = NULL;
    esg_value *created = NULL, *args = NULL, *got = NULL;
    esg_notification_list page = {0};

    arm(k);
    STEP(esg_application_new(&esg_example_orders, p->env, &orders, &err));
    STEP(esg_application_new(&esg_example_reservations, p->env, &reservations, &err));
    STEP(esg_application_call(orders, "create_new_order", NULL, NULL, &created, &err));
    STEP(order_id_args(created, &args, &err));
    STEP(esg_application_call(orders, "get_order", args, NULL, &got, &err));
    STEP(esg_application_select_notifications(orders, 1, 10, 0, NULL, 0, &page, &err));
    esg_notification_log log;
    esg_application_local_log(orders, &log);
    STEP(esg_application_pull_and_process(reservations, &log, NULL, &err));
out:
    result->n_allocations = atomic_load(&n_allocations);
    result->has_failed = atomic_load(&has_failed);
    disarm();
    esg_notification_list_clear(&page);
    esg_value_free(got);
    esg_value_free(args);
    esg_value_free(created);
    esg_application_free(reservations);
    esg_application_free(orders);
}

/* The command, query, follower's page, positions and a pushed page through a gRPC server (started
 * before the fault is armed): a fault on either side is a clean error, and the server still answers
 * afterwards. */
static void run_grpc(const paths *p, long k, run_result *result)
{
    esg_error err = {0};
    esg_application *orders = NULL, *reservations = NULL;
    esg_server *server = NULL;
    esg_client *client = NULL;
    esg_value *created = NULL, *args = NULL, *got = NULL;
    esg_leader_positions positions = {0};
    esg_subscription *subscription = NULL;
    esg_notification_list pushed = {0};
    int64_t up_to = 0;

    assert_esg_ok(esg_application_new(&esg_example_orders, p->env, &orders, &err), &err);
    assert_esg_ok(esg_application_new(&esg_example_reservations, p->env, &reservations, &err),
                  &err);
    esg_server_options options = {.address = "localhost:0", .env = p->env, .n_threads = 2};
    assert_esg_ok(esg_server_start(orders, &options, &server, &err), &err);
    char address[64];
    snprintf(address, sizeof address, "localhost:%d", esg_server_port(server));
    assert_esg_ok(esg_client_connect_address(address, NULL, &client, &err), &err);

    arm(k);
    STEP(esg_client_call(client, "create_new_order", NULL, NULL, &created, &err));
    STEP(order_id_args(created, &args, &err));
    STEP(esg_client_call(client, "get_order", args, NULL, &got, &err));
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    STEP(esg_application_pull_and_process(reservations, &log, NULL, &err));
    STEP(esg_client_leader_positions(client, &positions, &err));
    STEP(esg_client_subscribe(client, "Reservations", 1, NULL, 0, &subscription, &err));
    STEP(esg_subscription_next(subscription, -1, &pushed, &up_to, &err));
out:
    result->n_allocations = atomic_load(&n_allocations);
    result->has_failed = atomic_load(&has_failed);
    disarm();
    esg_leader_positions_clear(&positions);
    esg_subscription_free(subscription);
    esg_notification_list_clear(&pushed);
    /* The server lived through it. */
    assert_esg_ok(esg_client_ping(client, &err), &err);
    esg_value_free(got);
    esg_value_free(args);
    esg_value_free(created);
    esg_client_close(client);
    esg_client_free(client);
    esg_server_stop(server);
    esg_application_free(reservations);
    esg_application_free(orders);
}

/* The database opens and reads after the run, with no fault. */
static void check_readable(const paths *p)
{
    esg_error err = {0};
    esg_application *orders = NULL;
    esg_notification_list page = {0};
    assert_esg_ok(esg_application_new(&esg_example_orders, p->env, &orders, &err), &err);
    assert_esg_ok(esg_application_select_notifications(orders, 1, 1000, 0, NULL, 0, &page, &err),
                  &err);
    esg_notification_list_clear(&page);
    esg_application_free(orders);
}

static void remove_databases(const paths *p)
{
    const char *names[] = {"orders.db", "reservations.db"};
    for (size_t i = 0; i < 2; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", p->dir, names[i]);
        unlink(path);
    }
}

/* Walks k from 1 until a run asks for fewer than k allocations. */
static void walk(paths *p)
{
    long k = 1, n_faults = 0;
    for (;; k++) {
        if (strcmp(p->persistence, "sqlite") == 0)
            remove_databases(p);
        long live_before = atomic_load(&n_live);
        run_result result = {0};
        (p->over_grpc ? run_grpc : run_core)(p, k, &result);
        long leaked = atomic_load(&n_live) - live_before;
        if (leaked != 0)
            fail_msg("%s%s: failing allocation %ld of %ld leaves %ld allocations behind",
                     p->persistence, p->over_grpc ? " over gRPC" : "", k, result.n_allocations,
                     leaked);
        if (strcmp(p->persistence, "sqlite") == 0)
            check_readable(p);
        if (!result.has_failed)
            break;
        n_faults++;
    }
    assert_true(n_faults > 10); /* the walk did reach the paths */
    print_message("%s%s: %ld allocations failed one at a time, each cleanly\n", p->persistence,
                  p->over_grpc ? " over gRPC" : "", n_faults);
}

static paths *paths_new(const char *persistence, bool over_grpc)
{
    paths *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->persistence = persistence;
    p->over_grpc = over_grpc;
    char *dir = testutil_make_temp_dir();
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    free(dir);
    esg_error err = {0};
    p->env = esg_env_new();
    assert_non_null(p->env);
    if (strcmp(persistence, "sqlite") == 0) {
        char path[600];
        assert_esg_ok(esg_env_set(p->env, "PERSISTENCE_MODULE", "eventsourcing.sqlite", &err),
                      &err);
        snprintf(path, sizeof path, "%s/orders.db", p->dir);
        assert_esg_ok(esg_env_set(p->env, "ORDERS_SQLITE_DBNAME", path, &err), &err);
        snprintf(path, sizeof path, "%s/reservations.db", p->dir);
        assert_esg_ok(esg_env_set(p->env, "RESERVATIONS_SQLITE_DBNAME", path, &err), &err);
    }
    return p;
}

static void paths_free(paths *p)
{
    esg_env_free(p->env);
    testutil_remove_tree(p->dir);
    free(p);
}

/* The JSON decoder alone, on a text that makes every allocation it has: the parser's own
 * (its buffers grow past their first size on a long escaped string: a failure there jumps out
 * of the parser), values, keys, a repeated key in an object too big for the pairwise search,
 * typed values and a long real. Each failing allocation is ENOMEM with a message, nothing left. */
static void test_json_decode_walk(void **state)
{
    (void)state;
    char text[16384];
    size_t n = (size_t)snprintf(text, sizeof text, "{\"s\":\"");
    for (int i = 0; i < 1500; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "\\n\\u00e9");
    n += (size_t)snprintf(text + n, sizeof text - n, "\",");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "\"k%d\":[%d,true,null],", i, i);
    snprintf(text + n, sizeof text - n,
             "\"k7\":{\"_type_\":\"uuid_hex\",\"_data_\":\"12345678123456781234567812345678\"},"
             "\"d\":{\"_type_\":\"decimal_str\",\"_data_\":\"1.50\"},"
             "\"r\":0.%0100d15}",
             0);
    long k = 1, n_faults = 0;
    for (;; k++) {
        long live_before = atomic_load(&n_live);
        esg_value *value = NULL;
        esg_error err = {0};
        arm(k);
        esg_status rc = esg_json_decode(text, strlen(text), &value, &err);
        bool has_failed_now = atomic_load(&has_failed);
        disarm();
        if (rc != ESG_OK && (!has_failed_now || rc != ESG_ENOMEM || err.message[0] == '\0'))
            fail_msg("failing allocation %ld: %s '%s'", k, esg_status_name(rc), err.message);
        esg_value_free(value);
        if (atomic_load(&n_live) != live_before)
            fail_msg("failing allocation %ld leaves %ld allocations behind", k,
                     atomic_load(&n_live) - live_before);
        if (!has_failed_now)
            break;
        n_faults++;
    }
    assert_true(n_faults > 100);
    print_message("JSON decoding: %ld allocations failed one at a time, each cleanly\n", n_faults);
}

/* Which paths a test walks: a backend, in process or over gRPC. */
typedef struct walk_case {
    const char *persistence;
    bool over_grpc;
} walk_case;

static void test_walk(void **state)
{
    const walk_case *c = *state;
    paths *p = paths_new(c->persistence, c->over_grpc);
    walk(p);
    paths_free(p);
}

/* A bad allocator is refused and changes nothing. */
static void test_replace_allocator_refuses_null_functions(void **state)
{
    (void)state;
    esg_allocator bad = counting;
    bad.realloc = NULL;
    assert_int_equal(esg_replace_allocator(&bad), ESG_EINVAL);
    long before = atomic_load(&n_live);
    esg_value *v = esg_value_string("still counted");
    assert_non_null(v);
    assert_true(atomic_load(&n_live) > before);
    esg_value_free(v);
    assert_int_equal(atomic_load(&n_live), before);
}

int main(void)
{
    /* Before any other esg_ call: memory is freed by the allocator that gave it. */
    if (esg_replace_allocator(&counting) != ESG_OK)
        return 1;
    static walk_case core_popo = {"popo", false}, core_sqlite = {"sqlite", false},
                     grpc_popo = {"popo", true}, grpc_sqlite = {"sqlite", true};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace_allocator_refuses_null_functions),
        cmocka_unit_test(test_json_decode_walk),
        cmocka_unit_test_prestate(test_walk, &core_popo),
        cmocka_unit_test_prestate(test_walk, &core_sqlite),
        cmocka_unit_test_prestate(test_walk, &grpc_popo),
        cmocka_unit_test_prestate(test_walk, &grpc_sqlite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
