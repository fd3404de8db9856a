/* Tests of src/grpc/client.c. Against the project's server running the
 * example Orders in memory: the seed README's client section, error
 * statuses, closing, 8 threads at once, connecting before the server is up.
 * Against a capturing server written here on gRPC's C core: the request bytes
 * equal the Python reference's (tests/vectors) and its replies decode; which
 * calls are retried and how often; a page size the reference refuses. */
#include "testutil.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "esg/example.h"
#include "esg/grpc.h"
#include "grpc/credentials.h"
#include "grpc/wire.h"
#include "orders_server.h"
#include "raw_call.h"

#define TOPIC(name) "eventsourcing_grpc.example:" name

/* ---- A real server: the example Orders in memory (orders_server.h) ------------ */

/* A port that was free a moment ago (a server bound it, then stopped). */
static int free_port(void)
{
    orders_server *s = orders_start(0);
    int port = esg_server_port(s->server);
    orders_stop(s);
    return port;
}

static esg_uuid create_order(esg_client *client)
{
    esg_error err = {0};
    esg_value *result = NULL;
    assert_esg_ok(esg_client_call(client, "create_new_order", NULL, NULL, &result, &err), &err);
    return testutil_take_uuid(result);
}

/* ---- The seed README's client section ---------------------------------------- */

static void test_readme_client_section(void **state)
{
    (void)state;
    esg_error err = {0};
    orders_server *s = orders_start(0);

    /* os.environ["ORDERS_GRPC_SERVER_ADDRESS"] = ...; connect(Orders, max_attempts=10) */
    setenv("ORDERS_GRPC_SERVER_ADDRESS", s->address, 1);
    esg_client *client = NULL;
    esg_client_options options = {.max_attempts = 10};
    assert_esg_ok(esg_client_connect("Orders", &options, &client, &err), &err);
    unsetenv("ORDERS_GRPC_SERVER_ADDRESS");

    /* order_id = client.app.create_new_order() */
    esg_uuid order_id = create_order(client);

    /* order = client.app.get_order(order_id) */
    esg_value *args = testutil_id_args(&order_id);
    esg_value *order = NULL;
    assert_esg_ok(esg_client_call(client, "get_order", args, NULL, &order, &err), &err);
    assert_int_equal(esg_value_type(order), ESG_TYPE_OBJECT);
    const esg_uuid *id = esg_value_as_uuid(esg_object_get(order, "id"));
    assert_non_null(id);
    assert_true(esg_uuid_equal(id, &order_id));
    assert_int_equal(esg_value_type(esg_object_get(order, "is_reserved")), ESG_TYPE_BOOL);
    assert_false(esg_value_as_bool(esg_object_get(order, "is_reserved")));
    assert_int_equal(esg_value_type(esg_object_get(order, "is_paid")), ESG_TYPE_BOOL);
    assert_false(esg_value_as_bool(esg_object_get(order, "is_paid")));
    esg_value_free(order);
    esg_value_free(args);

    /* notifications = client.app.notification_log.select(start=1, limit=10) */
    esg_notification_list list = {0};
    assert_esg_ok(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err), &err);
    assert_int_equal(list.n_items, 1);
    assert_int_equal(list.items[0].id, 1);
    assert_true(esg_uuid_equal(&list.items[0].event.originator_id, &order_id));
    assert_int_equal(list.items[0].event.originator_version, 1);
    assert_string_equal(list.items[0].event.topic, TOPIC("Order.Created"));
    esg_notification_list_clear(&list);

    /* The same through the notification log a follower uses. */
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    assert_string_equal(log.leader_name, "Orders");
    assert_true(log.pages_may_be_short);
    assert_int_equal(log.page_size, 100);
    assert_esg_ok(log.select(log.ctx, 1, log.page_size, NULL, 0, &list, &err), &err);
    assert_int_equal(list.n_items, 1);
    assert_int_equal(list.items[0].id, 1);
    esg_notification_list_clear(&list);

    assert_esg_ok(esg_client_ping(client, &err), &err);

    /* client.close(); server.stop() */
    esg_client_close(client);
    esg_client_free(client);
    orders_stop(s);
}

/* ---- Errors from the server, mapped back ------------------------------------ */

static void test_server_errors_are_typed(void **state)
{
    orders_session *o = *state;
    esg_client *client = o->client;
    esg_error err = {0};
    esg_value *result = NULL;

    assert_int_equal(esg_client_call(client, "no_such_method", NULL, NULL, &result, &err),
                     ESG_EUNIMPLEMENTED);
    assert_null(result);
    assert_true(strstr(err.message, "no_such_method") != NULL);

    esg_uuid unknown;
    esg_uuid4(&unknown);
    esg_value *args = testutil_id_args(&unknown);
    assert_int_equal(esg_client_call(client, "get_order", args, NULL, &result, &err),
                     ESG_ENOTFOUND);
    assert_null(result);
    assert_true(err.message[0] != '\0');
    esg_value_free(args);

    /* A plain string where an order id belongs. */
    args = esg_value_array();
    assert_int_equal(esg_array_append(args, esg_value_string("not an id")), ESG_OK);
    assert_int_equal(esg_client_call(client, "get_order", args, NULL, &result, &err), ESG_EINVAL);
    assert_null(result);
    esg_value_free(args);

    /* Too many arguments, and a missing one. */
    args = esg_value_array();
    assert_int_equal(esg_array_append(args, esg_value_int(1)), ESG_OK);
    assert_int_equal(esg_client_call(client, "create_new_order", args, NULL, &result, &err),
                     ESG_EINVAL);
    esg_value_free(args);
    assert_int_equal(esg_client_call(client, "get_order", NULL, NULL, &result, &err), ESG_EINVAL);

    /* args that are not an array never leave the client. */
    esg_value *not_array = esg_value_object();
    assert_int_equal(esg_client_call(client, "get_order", not_array, NULL, &result, &err),
                     ESG_EINVAL);
    esg_value_free(not_array);

    /* Orders follows nobody: the server refuses the Prompt, and says why. */
    assert_int_equal(esg_client_prompt(client, "Nobody", &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "Nobody"));

    /* The client still works after errors. */
    (void)create_order(client);
}

/* Health/Check: the server as a whole and our service are SERVING; another is NOT_FOUND. */
static void test_health_check(void **state)
{
    orders_session *o = *state;
    esg_error err = {0};
    esg_health_status status = ESG_HEALTH_UNKNOWN;
    assert_esg_ok(esg_client_health_check(o->client, NULL, &status, &err), &err);
    assert_int_equal(status, ESG_HEALTH_SERVING);
    status = ESG_HEALTH_UNKNOWN;
    assert_esg_ok(
        esg_client_health_check(o->client, "eventsourcing_grpc.Application", &status, &err), &err);
    assert_int_equal(status, ESG_HEALTH_SERVING);
    assert_int_equal(esg_client_health_check(o->client, "nope", &status, &err), ESG_ENOTFOUND);
    assert_non_null(strstr(err.message, "unknown service 'nope'"));
    assert_int_equal(esg_client_health_check(o->client, "", NULL, &err), ESG_EINVAL);
}

static void test_missing_address_is_config_error(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = esg_env_new();
    assert_non_null(env);
    esg_client *client = (esg_client *)1;
    esg_client_options options = {.env = env};
    assert_int_equal(esg_client_connect("Orders", &options, &client, &err), ESG_ECONFIG);
    assert_null(client);
    assert_non_null(strstr(err.message, "ORDERS_GRPC_SERVER_ADDRESS"));
    esg_env_free(env);
}

/* ---- Connecting --------------------------------------------------------------- */

/* The Order.Created notifications of a server's own (in-memory) application. */
static size_t orders_created(const orders_server *s)
{
    esg_notification_list page = {0};
    esg_error err = {0};
    assert_esg_ok(esg_application_select_notifications(s->app, 1, 1000, 0, NULL, 0, &page, &err),
                  &err);
    size_t n = page.n_items;
    esg_notification_list_clear(&page);
    return n;
}

/* Replicas behind one address: a list ("localhost:A,localhost:B") spreads calls round robin over
 * both, and when one stops, calls go on to the other; "dns:///localhost:B" reaches one as well.
 * The two servers here have stores of their own, so each counts the orders it was sent. */
static void test_replicas_behind_one_address(void **state)
{
    (void)state;
    orders_server *a = orders_start(0), *b = orders_start(0);
    char both[160], dns[100];
    snprintf(both, sizeof both, "%s,%s", a->address, b->address);
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = {.max_attempts = 10};
    assert_esg_ok(esg_client_connect_address(both, &options, &client, &err), &err);
    /* Round robin calls the replicas whose connection is ready: until both are, calls go to one
     * (under load the second connection can take a while; CI once sent all 20 to one). */
    int64_t deadline = esg_clock_now_ms() + 10000;
    while ((orders_created(a) == 0 || orders_created(b) == 0) && esg_clock_now_ms() < deadline) {
        esg_value *id = NULL;
        assert_esg_ok(esg_client_call(client, "create_new_order", NULL, NULL, &id, &err), &err);
        esg_value_free(id);
    }
    size_t before_a = orders_created(a), before_b = orders_created(b);
    assert_true(before_a > 0 && before_b > 0);
    for (int i = 0; i < 20; i++) {
        esg_value *id = NULL;
        assert_esg_ok(esg_client_call(client, "create_new_order", NULL, NULL, &id, &err), &err);
        esg_value_free(id);
    }
    size_t on_a = orders_created(a) - before_a, on_b = orders_created(b) - before_b;
    print_message("20 orders over the list: %zu on A, %zu on B\n", on_a, on_b);
    assert_int_equal(on_a + on_b, 20);
    assert_true(on_a >= 5 && on_b >= 5); /* round robin: about half each */

    orders_stop(a); /* calls go on to B (a call already on its way to A may fail, once) */
    int n_failed = 0;
    for (int i = 0; i < 10; i++) {
        esg_value *id = NULL;
        n_failed += esg_client_call(client, "create_new_order", NULL, NULL, &id, &err) != ESG_OK;
        esg_value_free(id);
    }
    assert_true(n_failed <= 1);
    assert_int_equal(orders_created(b), before_b + on_b + 10 - (size_t)n_failed);
    esg_client_free(client);

    snprintf(dns, sizeof dns, "dns:///%s", b->address);
    assert_esg_ok(esg_client_connect_address(dns, &options, &client, &err), &err);
    assert_esg_ok(esg_client_ping(client, &err), &err);
    esg_client_free(client);
    orders_stop(b);
}

/* Lists that cannot be: an empty entry, a bad entry, local and TLS mixed. */
static void test_bad_address_lists_are_config_errors(void **state)
{
    (void)state;
    const struct {
        const char *address, *fragment;
    } bad[] = {
        {"localhost:1,", "none empty"},       {"localhost:1,,localhost:2", "none empty"},
        {"localhost:1,localhost", "no port"}, {"localhost:1,db.example:2", "mixes localhost:PORT"},
        {"dns:///localhost", "no port"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_error err = {0};
        esg_client *client = (esg_client *)1;
        assert_int_equal(esg_client_connect_address(bad[i].address, NULL, &client, &err),
                         ESG_ECONFIG);
        assert_null(client);
        if (strstr(err.message, bad[i].fragment) == NULL)
            fail_msg("'%s': '%s' lacks '%s'", bad[i].address, err.message, bad[i].fragment);
    }
}

static void test_nothing_listening_is_unavailable_after_max_attempts(void **state)
{
    (void)state;
    esg_error err = {0};
    char address[64];
    snprintf(address, sizeof address, "localhost:%d", free_port());
    esg_client *client = NULL;

    /* One attempt: no waiting at all. */
    esg_client_options once = {.max_attempts = 1, .backoff_ms = 100, .deadline_ms = 2000};
    int64_t started = esg_clock_now_ms();
    assert_int_equal(esg_client_connect_address(address, &once, &client, &err), ESG_EUNAVAILABLE);
    int64_t elapsed_once = esg_clock_now_ms() - started;
    assert_null(client);
    assert_non_null(strstr(err.message, address));
    assert_non_null(strstr(err.message, "1 attempt"));
    assert_true(elapsed_once < 1000);

    /* Four attempts wait 100 + 200 + 400 ms between them. */
    esg_client_options four = {.max_attempts = 4, .backoff_ms = 100, .deadline_ms = 2000};
    started = esg_clock_now_ms();
    assert_int_equal(esg_client_connect_address(address, &four, &client, &err), ESG_EUNAVAILABLE);
    int64_t elapsed_four = esg_clock_now_ms() - started;
    assert_null(client);
    assert_non_null(strstr(err.message, address));
    assert_non_null(strstr(err.message, "after 4 attempts"));
    assert_true(elapsed_four >= 650);
    assert_true(elapsed_four < 5000);
}

typedef struct connect_job {
    char address[64];
    esg_client_options options;
    esg_client *client;
    esg_status rc;
    esg_error err;
    int64_t elapsed_ms;
} connect_job;

static void *connect_thread(void *arg)
{
    connect_job *job = arg;
    int64_t started = esg_clock_now_ms();
    job->rc = esg_client_connect_address(job->address, &job->options, &job->client, &job->err);
    job->elapsed_ms = esg_clock_now_ms() - started;
    return NULL;
}

static void test_server_started_later_is_reached(void **state)
{
    (void)state;
    esg_error err = {0};
    int port = free_port();
    connect_job job = {.options = {.max_attempts = 40, .backoff_ms = 50}};
    snprintf(job.address, sizeof job.address, "localhost:%d", port);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, connect_thread, &job), 0);
    esg_clock_sleep_ms(600); /* several attempts fail meanwhile */
    orders_server *s = orders_start(port);
    assert_int_equal(pthread_join(thread, NULL), 0);
    if (job.rc != ESG_OK)
        fail_msg("connect: %s: %s", esg_status_name(job.rc), job.err.message);
    assert_true(job.elapsed_ms >= 550);
    (void)create_order(job.client);
    assert_esg_ok(esg_client_ping(job.client, &err), &err);
    esg_client_free(job.client);
    orders_stop(s);
}

/* A call made while the server is down waits for it (up to its deadline). */
static void test_call_waits_for_restarted_server(void **state)
{
    (void)state;
    orders_server *s = orders_start(0);
    int port = esg_server_port(s->server);
    esg_client *client = NULL;
    esg_error err = {0};
    esg_client_options options = {.backoff_ms = 50, .deadline_ms = 5000};
    char address[64];
    snprintf(address, sizeof address, "localhost:%d", port);
    assert_esg_ok(esg_client_connect_address(address, &options, &client, &err), &err);
    orders_stop(s);
    s = orders_start(port);
    /* The channel notices the old connection is gone and reconnects. */
    assert_esg_ok(esg_client_ping(client, &err), &err);
    (void)create_order(client);
    esg_client_free(client);
    orders_stop(s);
}

/* ---- Closing ------------------------------------------------------------------ */

static void test_calls_after_close_are_closed(void **state)
{
    orders_session *o = *state;
    esg_client *client = o->client;
    esg_error err = {0};
    esg_client_close(client);
    esg_client_close(client); /* twice is harmless */
    esg_value *result = NULL;
    assert_int_equal(esg_client_call(client, "create_new_order", NULL, NULL, &result, &err),
                     ESG_ECLOSED);
    assert_null(result);
    assert_int_equal(esg_client_ping(client, &err), ESG_ECLOSED);
    assert_int_equal(esg_client_prompt(client, "Orders", &err), ESG_ECLOSED);
    esg_notification_list list = {0};
    assert_int_equal(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err),
                     ESG_ECLOSED);
    assert_int_equal(list.n_items, 0);
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    assert_int_equal(log.select(log.ctx, 1, 10, NULL, 0, &list, &err), ESG_ECLOSED);
    esg_client_free(NULL);
}

/* ---- Threads ------------------------------------------------------------------ */

#define N_THREADS 8
#define N_CALLS_PER_THREAD 200

typedef struct worker_job {
    esg_client *client;
    int n_ok;      /* calls that succeeded */
    esg_error err; /* the first failure */
} worker_job;

static void *worker_thread(void *arg)
{
    worker_job *job = arg;
    for (int i = 0; i < N_CALLS_PER_THREAD / 2; i++) {
        esg_error err = {0};
        esg_value *result = NULL;
        if (esg_client_call(job->client, "create_new_order", NULL, NULL, &result, &err) != ESG_OK) {
            job->err = err;
            continue;
        }
        job->n_ok++;
        esg_value *args = esg_value_array();
        esg_array_append(args, esg_value_copy(result));
        esg_value *order = NULL;
        if (esg_client_call(job->client, "get_order", args, NULL, &order, &err) == ESG_OK &&
            esg_value_equal(esg_object_get(order, "id"), result))
            job->n_ok++;
        else
            job->err = err;
        esg_value_free(order);
        esg_value_free(args);
        esg_value_free(result);
    }
    return NULL;
}

static void test_threads_share_one_client(void **state)
{
    orders_session *o = *state;
    esg_client *client = o->client;
    esg_error err = {0};
    pthread_t threads[N_THREADS];
    worker_job jobs[N_THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].client = client;
        assert_int_equal(pthread_create(&threads[i], NULL, worker_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        if (jobs[i].n_ok != N_CALLS_PER_THREAD)
            fail_msg("thread %d: %d calls of %d: %s", i, jobs[i].n_ok, N_CALLS_PER_THREAD,
                     jobs[i].err.message);
    }
    /* Every order was recorded once: 800 notifications, read page by page. */
    esg_notification_list list = {0};
    int64_t next = 1;
    for (;;) {
        size_t before = list.n_items;
        assert_esg_ok(esg_client_select_notifications(client, next, 100, 0, NULL, 0, &list, &err),
                      &err);
        if (list.n_items == before)
            break;
        next = list.items[list.n_items - 1].id + 1;
    }
    assert_int_equal(list.n_items, N_THREADS * N_CALLS_PER_THREAD / 2);
    for (size_t i = 0; i < list.n_items; i++)
        assert_int_equal(list.items[i].id, (int64_t)i + 1);
    esg_notification_list_clear(&list);
}

/* ---- A capturing server ------------------------------------------------------- */

/* How the capturing server answers one call. */
typedef enum answer_kind {
    ANSWER_REPLY,  /* status OK with reply bytes */
    ANSWER_STATUS, /* an error status with details */
    ANSWER_HANG    /* no answer: the client's deadline or close ends the call */
} answer_kind;

typedef struct answer {
    answer_kind kind;
    grpc_status_code status;
    char details[256];
    uint8_t *reply; /* malloc'ed or NULL; freed by the server */
    size_t reply_len;
} answer;

typedef struct capture capture;
typedef void (*answer_fn)(capture *cs, const char *path, const uint8_t *request, size_t len,
                          answer *out);

#define MAX_RECORDS 256
#define MAX_HUNG 16

typedef struct record {
    char path[128];
    uint8_t *request; /* malloc'ed */
    size_t len;
} record;

struct capture {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    char address[64];
    answer_fn answer; /* set before clients call */
    void *ctx;        /* the test's data for answer */
    pthread_mutex_t lock;
    record records[MAX_RECORDS]; /* the calls received, in order (under lock) */
    int n_records;
    grpc_call *hung[MAX_HUNG]; /* calls left unanswered (worker thread only) */
    int n_hung;
    bool is_shut_down; /* the shutdown tag arrived (worker thread only) */
};

#define TAG_REQUEST ((void *)1)
#define TAG_RECV ((void *)2)
#define TAG_SEND ((void *)3)
#define TAG_SHUTDOWN ((void *)4)

/* Waits for tag, noting the shutdown tag when it passes by. */
static bool capture_wait(capture *cs, void *tag)
{
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(cs->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        assert_int_equal(ev.type, GRPC_OP_COMPLETE);
        if (ev.tag == TAG_SHUTDOWN)
            cs->is_shut_down = true;
        if (ev.tag == tag)
            return ev.success != 0;
    }
}

static void capture_handle(capture *cs, grpc_call *call, const char *path)
{
    grpc_byte_buffer *request = NULL;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &request;
    assert_int_equal(grpc_call_start_batch(call, ops, 2, TAG_RECV, NULL), GRPC_CALL_OK);
    capture_wait(cs, TAG_RECV);
    uint8_t *bytes = NULL;
    size_t len = 0;
    esg_error err = {0};
    assert_esg_ok(esg_wire_read(request, &bytes, &len, &err), &err);
    if (request != NULL)
        grpc_byte_buffer_destroy(request);

    answer a = {.kind = ANSWER_REPLY, .status = GRPC_STATUS_OK};
    cs->answer(cs, path, bytes, len, &a);
    pthread_mutex_lock(&cs->lock);
    assert_true(cs->n_records < MAX_RECORDS);
    record *r = &cs->records[cs->n_records++];
    snprintf(r->path, sizeof r->path, "%s", path);
    r->request = bytes;
    r->len = len;
    pthread_mutex_unlock(&cs->lock);

    if (a.kind == ANSWER_HANG) {
        assert_true(cs->n_hung < MAX_HUNG);
        cs->hung[cs->n_hung++] = call;
        free(a.reply);
        return;
    }
    grpc_byte_buffer *reply = NULL;
    grpc_slice details = grpc_slice_from_copied_string(a.details);
    int cancelled = 0;
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (a.kind == ANSWER_REPLY) {
        reply = esg_wire_buffer(a.reply != NULL ? a.reply : (const uint8_t *)"", a.reply_len);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = a.kind == ANSWER_REPLY ? GRPC_STATUS_OK : a.status;
    ops[n++].data.send_status_from_server.status_details = &details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &cancelled;
    assert_int_equal(grpc_call_start_batch(call, ops, n, TAG_SEND, NULL), GRPC_CALL_OK);
    capture_wait(cs, TAG_SEND);
    grpc_slice_unref(details);
    if (reply != NULL)
        grpc_byte_buffer_destroy(reply);
    free(a.reply);
    grpc_call_unref(call);
}

static void *capture_main(void *arg)
{
    capture *cs = arg;
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details details;
        grpc_metadata_array metadata;
        grpc_call_details_init(&details);
        grpc_metadata_array_init(&metadata);
        assert_int_equal(grpc_server_request_call(cs->server, &call, &details, &metadata, cs->cq,
                                                  cs->cq, TAG_REQUEST),
                         GRPC_CALL_OK);
        bool is_call = capture_wait(cs, TAG_REQUEST);
        if (is_call) {
            char path[128];
            snprintf(path, sizeof path, "%.*s", (int)GRPC_SLICE_LENGTH(details.method),
                     (const char *)GRPC_SLICE_START_PTR(details.method));
            capture_handle(cs, call, path);
        }
        grpc_call_details_destroy(&details);
        grpc_metadata_array_destroy(&metadata);
        if (!is_call)
            break;
    }
    for (int i = 0; i < cs->n_hung; i++) {
        grpc_call_cancel(cs->hung[i], NULL);
        grpc_call_unref(cs->hung[i]);
    }
    if (!cs->is_shut_down)
        capture_wait(cs, TAG_SHUTDOWN);
    return NULL;
}

static capture *capture_start(answer_fn fn, void *ctx)
{
    capture *cs = calloc(1, sizeof *cs);
    assert_non_null(cs);
    cs->answer = fn;
    cs->ctx = ctx;
    pthread_mutex_init(&cs->lock, NULL);
    raw_server_start(&cs->server, &cs->cq, &cs->thread, capture_main, cs, cs->address,
                     sizeof cs->address);
    return cs;
}

static void capture_stop(capture *cs)
{
    raw_server_stop(cs->server, cs->cq, cs->thread, TAG_SHUTDOWN);
    for (int i = 0; i < cs->n_records; i++)
        free(cs->records[i].request);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

/* How many calls to path arrived so far. */
static int capture_count(capture *cs, const char *path)
{
    pthread_mutex_lock(&cs->lock);
    int n = 0;
    for (int i = 0; i < cs->n_records; i++)
        if (strcmp(cs->records[i].path, path) == 0)
            n++;
    pthread_mutex_unlock(&cs->lock);
    return n;
}

static char *hex_of(const uint8_t *data, size_t len)
{
    char *hex = malloc(2 * len + 1);
    assert_non_null(hex);
    for (size_t j = 0; j < len; j++)
        snprintf(hex + 2 * j, 3, "%02x", data[j]);
    hex[2 * len] = '\0';
    return hex;
}

/* The request bytes of the last call to path, as hex (malloc'ed). */
static char *capture_last_hex(capture *cs, const char *path)
{
    char *hex = NULL;
    pthread_mutex_lock(&cs->lock);
    for (int i = cs->n_records - 1; i >= 0 && hex == NULL; i--)
        if (strcmp(cs->records[i].path, path) == 0)
            hex = hex_of(cs->records[i].request, cs->records[i].len);
    pthread_mutex_unlock(&cs->lock);
    assert_non_null(hex);
    return hex;
}

static void reply_with_hex(answer *out, const char *hex)
{
    out->kind = ANSWER_REPLY;
    out->reply = testutil_unhex(hex, &out->reply_len);
}

/* Answers Ping with Empty, and CallApplicationMethod and GetNotifications
 * with the recorded reply whose recorded request is byte for byte the same
 * (INVALID_ARGUMENT "unexpected request" otherwise). ctx: the vectors. */
typedef struct vectors {
    json_t *method_calls;
    json_t *notifications;
} vectors;

static void answer_from_vectors(capture *cs, const char *path, const uint8_t *request, size_t len,
                                answer *out)
{
    const vectors *v = cs->ctx;
    if (strcmp(path, ESG_PATH_PING) == 0)
        return;
    char *hex = hex_of(request, len);
    json_t *cases = strcmp(path, ESG_PATH_CALL) == 0 ? json_object_get(v->method_calls, "calls")
                                                     : json_object_get(v->notifications, "selects");
    size_t i;
    json_t *item;
    json_array_foreach(cases, i, item)
    {
        const char *app = json_string_value(json_object_get(item, "app"));
        if (app != NULL && strcmp(app, "Orders") != 0)
            continue;
        const char *want = json_string_value(json_object_get(
            json_object_get(json_object_get(item, "request"), "serialized"), "hex"));
        if (strcmp(json_string_value(json_object_get(item, "path")), path) == 0 &&
            strcmp(want, hex) == 0) {
            reply_with_hex(
                out, json_string_value(json_object_get(
                         json_object_get(json_object_get(item, "response"), "serialized"), "hex")));
            free(hex);
            return;
        }
    }
    free(hex);
    out->kind = ANSWER_STATUS;
    out->status = GRPC_STATUS_INVALID_ARGUMENT;
    snprintf(out->details, sizeof out->details, "unexpected request");
}

static esg_client *connect_capture(capture *cs, const esg_client_options *options)
{
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options defaults = {.backoff_ms = 20};
    assert_esg_ok(
        esg_client_connect_address(cs->address, options ? options : &defaults, &client, &err),
        &err);
    return client;
}

static esg_value *decode_utf8_field(json_t *fields, const char *name)
{
    esg_error err = {0};
    esg_value *value = NULL;
    const char *text = json_string_value(json_object_get(json_object_get(fields, name), "utf8"));
    assert_non_null(text);
    assert_esg_ok(esg_json_decode(text, strlen(text), &value, &err), &err);
    return value;
}

/* The client writes the reference client's exact MethodRequest bytes and
 * reads the reference server's replies. */
static void test_method_requests_match_vectors(void **state)
{
    (void)state;
    vectors v = {testutil_load_vector("method_calls.json"), NULL};
    capture *cs = capture_start(answer_from_vectors, &v);
    esg_client *client = connect_capture(cs, NULL);
    assert_int_equal(capture_count(cs, ESG_PATH_PING), 1);
    char *ping_hex = capture_last_hex(cs, ESG_PATH_PING);
    assert_string_equal(ping_hex, "");
    free(ping_hex);

    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(v.method_calls, "calls"), i, item)
    {
        esg_error err = {0};
        json_t *request = json_object_get(item, "request");
        json_t *fields = json_object_get(request, "fields");
        const char *method = json_string_value(json_object_get(fields, "method_name"));
        esg_value *args = decode_utf8_field(fields, "args");
        esg_value *kwargs = decode_utf8_field(fields, "kwargs");
        /* Empty args and kwargs as NULL, as a caller with none passes them. */
        bool has_args = esg_array_len(args) > 0, has_kwargs = esg_object_len(kwargs) > 0;
        esg_value *result = NULL;
        assert_esg_ok(esg_client_call(client, method, has_args ? args : NULL,
                                      has_kwargs ? kwargs : NULL, &result, &err),
                      &err);
        char *sent = capture_last_hex(cs, ESG_PATH_CALL);
        assert_string_equal(sent, json_string_value(json_object_get(
                                      json_object_get(request, "serialized"), "hex")));
        free(sent);
        esg_value *expected =
            decode_utf8_field(json_object_get(json_object_get(item, "response"), "fields"), "data");
        assert_true(esg_value_equal(result, expected));
        esg_value_free(expected);
        esg_value_free(result);
        esg_value_free(args);
        esg_value_free(kwargs);
    }
    assert_int_equal(capture_count(cs, ESG_PATH_CALL),
                     (int)json_array_size(json_object_get(v.method_calls, "calls")));
    esg_client_free(client);
    capture_stop(cs);
    json_decref(v.method_calls);
}

/* GetNotifications requests as the reference client writes them, and its
 * replies decoded field by field. */
static void test_notification_requests_match_vectors(void **state)
{
    (void)state;
    vectors v = {NULL, testutil_load_vector("notifications.json")};
    capture *cs = capture_start(answer_from_vectors, &v);
    esg_client *client = connect_capture(cs, NULL);
    size_t i;
    json_t *item;
    int n_selects = 0;
    json_array_foreach(json_object_get(v.notifications, "selects"), i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "app")), "Orders") != 0)
            continue;
        n_selects++;
        esg_error err = {0};
        json_t *request = json_object_get(item, "request");
        json_t *fields = json_object_get(request, "fields");
        int64_t start = 0, limit = 0, stop = 0;
        assert_true(
            esg_wire_parse_int(json_string_value(json_object_get(fields, "start")), &start));
        assert_true(
            esg_wire_parse_int(json_string_value(json_object_get(fields, "limit")), &limit));
        const char *stop_text = json_string_value(json_object_get(fields, "stop"));
        if (stop_text[0] != '\0')
            assert_true(esg_wire_parse_int(stop_text, &stop));
        json_t *topics_json = json_object_get(fields, "topics");
        const char *topics[4];
        size_t n_topics = json_array_size(topics_json);
        assert_true(n_topics <= 4);
        for (size_t t = 0; t < n_topics; t++)
            topics[t] = json_string_value(json_array_get(topics_json, t));

        esg_notification_list list = {0};
        assert_esg_ok(esg_client_select_notifications(client, start, limit, stop, topics, n_topics,
                                                      &list, &err),
                      &err);
        char *sent = capture_last_hex(cs, ESG_PATH_GET_NOTIFICATIONS);
        assert_string_equal(sent, json_string_value(json_object_get(
                                      json_object_get(request, "serialized"), "hex")));
        free(sent);

        json_t *expected = json_object_get(
            json_object_get(json_object_get(item, "response"), "fields"), "notifications");
        assert_int_equal(list.n_items, json_array_size(expected));
        for (size_t k = 0; k < list.n_items; k++) {
            json_t *want = json_array_get(expected, k);
            const esg_notification *got = &list.items[k];
            int64_t id = 0, version = 0;
            assert_true(esg_wire_parse_int(json_string_value(json_object_get(want, "id")), &id));
            assert_true(esg_wire_parse_int(
                json_string_value(json_object_get(want, "originator_version")), &version));
            assert_int_equal(got->id, id);
            assert_int_equal(got->event.originator_version, version);
            char hex[ESG_UUID_HEX_SIZE];
            esg_uuid_hex(&got->event.originator_id, hex);
            assert_string_equal(hex, json_string_value(json_object_get(want, "originator_id")));
            assert_string_equal(got->event.topic,
                                json_string_value(json_object_get(want, "topic")));
            const char *state_text =
                json_string_value(json_object_get(json_object_get(want, "state"), "utf8"));
            assert_int_equal(got->event.state_len, strlen(state_text));
            assert_memory_equal(got->event.state, state_text, got->event.state_len);
        }
        esg_notification_list_clear(&list);
    }
    assert_true(n_selects >= 5);
    assert_int_equal(capture_count(cs, ESG_PATH_GET_NOTIFICATIONS), n_selects);
    esg_client_free(client);
    capture_stop(cs);
    json_decref(v.notifications);
}

/* ---- Replies and statuses from a scripted server ----------------------------- */

/* ctx: what to answer to anything but Ping (which is always answered). */
typedef struct script {
    bool is_ping_scripted; /* Ping too, not only the other calls */
    answer_kind kind;
    grpc_status_code status;
    const char *details;
    const char *reply_hex; /* for ANSWER_REPLY */
} script;

/* Changes the script under the capture's lock: the capturing thread reads it. */
#define SCRIPT(cs, statements)                                                                     \
    do {                                                                                           \
        pthread_mutex_lock(&(cs)->lock);                                                           \
        statements;                                                                                \
        pthread_mutex_unlock(&(cs)->lock);                                                         \
    } while (0)

static void answer_from_script(capture *cs, const char *path, const uint8_t *request, size_t len,
                               answer *out)
{
    (void)request;
    (void)len;
    script copy;
    SCRIPT(cs, copy = *(const script *)cs->ctx);
    const script *s = &copy;
    if (strcmp(path, ESG_PATH_PING) == 0 && !s->is_ping_scripted)
        return;
    out->kind = s->kind;
    out->status = s->status;
    snprintf(out->details, sizeof out->details, "%s", s->details ? s->details : "");
    if (s->kind == ANSWER_REPLY)
        reply_with_hex(out, s->reply_hex);
}

static void test_malformed_replies_are_remote_errors(void **state)
{
    (void)state;
    esg_error err = {0};
    script s = {.kind = ANSWER_REPLY, .reply_hex = "ffffff"};
    capture *cs = capture_start(answer_from_script, &s);
    esg_client *client = connect_capture(cs, NULL);
    esg_value *result = NULL;
    assert_int_equal(esg_client_call(client, "get_order", NULL, NULL, &result, &err), ESG_EREMOTE);
    assert_null(result);
    assert_non_null(strstr(err.message, "malformed reply"));
    esg_notification_list list = {0};
    assert_int_equal(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err),
                     ESG_EREMOTE);
    assert_non_null(strstr(err.message, "malformed reply"));
    assert_int_equal(list.n_items, 0);

    /* Well-formed protobuf, but JSON that is not. */
    SCRIPT(cs, s.reply_hex = "0a036e6f74"); /* MethodReply(data=b"not") */
    assert_int_equal(esg_client_call(client, "get_order", NULL, NULL, &result, &err), ESG_EREMOTE);
    assert_non_null(strstr(err.message, "malformed reply"));

    /* A notification whose id is not a number: nothing is appended. */
    SCRIPT(cs, s.reply_hex = "0a060a0178120131"); /* [Notification(id="x", originator_id="1")] */
    assert_int_equal(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err),
                     ESG_EREMOTE);
    assert_int_equal(list.n_items, 0);
    esg_client_free(client);
    capture_stop(cs);
}

static void test_statuses_are_mapped_with_their_message(void **state)
{
    (void)state;
    static const struct {
        grpc_status_code status;
        esg_status expected;
    } cases[] = {
        {GRPC_STATUS_NOT_FOUND, ESG_ENOTFOUND},
        {GRPC_STATUS_INVALID_ARGUMENT, ESG_EINVAL},
        {GRPC_STATUS_UNIMPLEMENTED, ESG_EUNIMPLEMENTED},
        {GRPC_STATUS_ABORTED, ESG_ECONFLICT},
        {GRPC_STATUS_UNKNOWN, ESG_EREMOTE},
        {GRPC_STATUS_INTERNAL, ESG_EREMOTE},
    };
    script s = {.kind = ANSWER_STATUS};
    capture *cs = capture_start(answer_from_script, &s);
    esg_client *client = connect_capture(cs, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esg_error err = {0};
        SCRIPT(cs, {
            s.status = cases[i].status;
            s.details = "Exception calling application: it failed";
        });
        esg_value *result = NULL;
        assert_int_equal(esg_client_call(client, "m", NULL, NULL, &result, &err),
                         cases[i].expected);
        assert_string_equal(err.message, "Exception calling application: it failed");
        assert_int_equal(esg_client_prompt(client, "Orders", &err), cases[i].expected);
    }
    /* Not retried: one call each. */
    int n = (int)(sizeof cases / sizeof cases[0]);
    assert_int_equal(capture_count(cs, ESG_PATH_CALL), n);
    assert_int_equal(capture_count(cs, ESG_PATH_PROMPT), n);
    esg_client_free(client);
    capture_stop(cs);
}

/* UNAVAILABLE and DEADLINE_EXCEEDED are retried for idempotent calls only. */
static void test_retries_only_idempotent_calls(void **state)
{
    (void)state;
    esg_error err = {0};
    script s = {.kind = ANSWER_REPLY, .reply_hex = ""};
    capture *cs = capture_start(answer_from_script, &s);
    esg_client_options options = {.backoff_ms = 20, .deadline_ms = 300, .max_call_attempts = 3};
    esg_client *client = connect_capture(cs, &options);
    SCRIPT(cs, {
        s.is_ping_scripted = true;
        s.kind = ANSWER_STATUS;
        s.status = GRPC_STATUS_UNAVAILABLE;
        s.details = "try again";
    });

    esg_value *result = NULL;
    assert_int_equal(esg_client_call(client, "create_new_order", NULL, NULL, &result, &err),
                     ESG_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "try again"));
    assert_int_equal(capture_count(cs, ESG_PATH_CALL), 1);
    assert_int_equal(esg_client_prompt(client, "Orders", &err), ESG_EUNAVAILABLE);
    assert_int_equal(capture_count(cs, ESG_PATH_PROMPT), 3);
    esg_notification_list list = {0};
    assert_int_equal(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err),
                     ESG_EUNAVAILABLE);
    assert_int_equal(capture_count(cs, ESG_PATH_GET_NOTIFICATIONS), 3);
    assert_int_equal(esg_client_ping(client, &err), ESG_EUNAVAILABLE);
    assert_int_equal(capture_count(cs, ESG_PATH_PING), 1 + 3);

    /* A server that never answers: deadlines, on a connected channel. */
    SCRIPT(cs, s.kind = ANSWER_HANG);
    int64_t started = esg_clock_now_ms();
    assert_int_equal(esg_client_call(client, "create_new_order", NULL, NULL, &result, &err),
                     ESG_ETIMEDOUT);
    assert_true(esg_clock_now_ms() - started >= 250);
    assert_int_equal(capture_count(cs, ESG_PATH_CALL), 2);
    assert_int_equal(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err),
                     ESG_ETIMEDOUT);
    assert_non_null(strstr(err.message, "300 ms"));
    assert_int_equal(capture_count(cs, ESG_PATH_GET_NOTIFICATIONS), 3 + 3);

    /* Then it answers again, and the retry succeeds. */
    SCRIPT(cs, {
        s.kind = ANSWER_REPLY;
        s.reply_hex = "";
    });
    assert_esg_ok(esg_client_select_notifications(client, 1, 10, 0, NULL, 0, &list, &err), &err);
    assert_int_equal(list.n_items, 0);
    esg_client_free(client);
    capture_stop(cs);
}

/* ---- Commands with idempotency keys ------------------------------------------------ */

/* open_account(owner), whose first run (in this process) takes 700 ms before it writes: longer
 * than the client's deadline, so that the client's first try ends without an answer while the
 * server goes on and commits. */
static atomic_int n_slow_runs;

static esg_status open_account_slowly_once(esg_work *work)
{
    if (atomic_fetch_add(&n_slow_runs, 1) == 0)
        esg_clock_sleep_ms(700);
    return accounts_open_account(work);
}

static const esg_application_type slow_bank = ESG_APPLICATION(
    "Bank", "tests:SlowBank", .aggregate_types = ESG_AGGREGATES(&accounts_account),
    .method_defs = ESG_METHODS(ESG_METHOD(ACCOUNTS_OPEN_ACCOUNT, open_account_slowly_once)));

/* A command whose first try timed out is tried again with its key, and runs once: the reply is
 * the one account opened. A server that keeps no keys (as Python's) is not sent the command
 * again: the call times out, and the command ran once all the same. */
static void test_commands_are_repeated_with_their_key(void **state)
{
    (void)state;
    for (int keeps_keys = 1; keeps_keys >= 0; keeps_keys--) {
        esg_error err = {0};
        esg_env *env = esg_env_new();
        assert_non_null(env);
        assert_esg_ok(esg_env_set(env, "IDEMPOTENCY_KEY_TTL", keeps_keys ? "60" : "0", &err), &err);
        esg_application *app = NULL;
        assert_esg_ok(esg_application_new(&slow_bank, env, &app, &err), &err);
        esg_server *server = NULL;
        esg_server_options server_options = {.address = "localhost:0"};
        assert_esg_ok(esg_server_start(app, &server_options, &server, &err), &err);
        char address[64];
        snprintf(address, sizeof address, "localhost:%d", esg_server_port(server));
        esg_client_options options = {.backoff_ms = 50, .deadline_ms = 400, .max_call_attempts = 4};
        esg_client *client = NULL;
        assert_esg_ok(esg_client_connect_address(address, &options, &client, &err), &err);
        atomic_store(&n_slow_runs, 0);

        esg_value *args = testutil_json_value("[\"Ann\"]"), *id = NULL;
        esg_status rc = esg_client_call(client, "open_account", args, NULL, &id, &err);
        int64_t waited_ms = 0;
        while (testutil_max_notification_id(app) == 0 &&
               waited_ms < 5000) { /* the first run's write */
            esg_clock_sleep_ms(20);
            waited_ms += 20;
        }
        esg_clock_sleep_ms(100);
        print_message("keys %s: %s after %d runs, %lld account(s)\n", keeps_keys ? "kept" : "off",
                      esg_status_name(rc), atomic_load(&n_slow_runs),
                      (long long)testutil_max_notification_id(app));
        assert_int_equal(testutil_max_notification_id(app), 1);
        if (keeps_keys) {
            assert_esg_ok(rc, &err);
            assert_true(atomic_load(&n_slow_runs) >= 2); /* tried again, and ran once */
            esg_notification_list list = {0};
            assert_esg_ok(esg_application_select_notifications(app, 1, 1, 0, NULL, 0, &list, &err),
                          &err);
            assert_true(esg_uuid_equal(esg_value_as_uuid(id), &list.items[0].event.originator_id));
            esg_notification_list_clear(&list);

            /* A key of the caller's: repeated from a new client, answered as first. */
            esg_value *first = NULL, *again = NULL;
            assert_esg_ok(esg_client_call_with_key(client, "order-17", "open_account", args, NULL,
                                                   &first, &err),
                          &err);
            esg_client *other = NULL;
            assert_esg_ok(esg_client_connect_address(address, &options, &other, &err), &err);
            assert_esg_ok(esg_client_call_with_key(other, "order-17", "open_account", args, NULL,
                                                   &again, &err),
                          &err);
            assert_true(esg_value_equal(first, again));
            esg_value_free(again);
            assert_int_equal(testutil_max_notification_id(app), 2);
            esg_value *bob = testutil_json_value("[\"Bob\"]");
            assert_int_equal(esg_client_call_with_key(other, "order-17", "open_account", bob, NULL,
                                                      &again, &err),
                             ESG_EINVAL);
            assert_non_null(strstr(err.message, "another command"));
            assert_int_equal(esg_client_call_with_key(other, "bad\nkey", "open_account", bob, NULL,
                                                      &again, &err),
                             ESG_EINVAL);
            esg_value_free(bob);
            esg_value_free(first);
            esg_client_free(other);
        } else {
            assert_int_equal(rc, ESG_ETIMEDOUT);
            assert_int_equal(atomic_load(&n_slow_runs), 1);
        }
        esg_value_free(id);
        esg_value_free(args);
        esg_client_free(client);
        esg_server_stop(server);
        esg_application_free(app);
        esg_env_free(env);
    }
}

/* Connecting counts attempts exactly: each one a Ping. */
static void test_connect_makes_exactly_max_attempts(void **state)
{
    (void)state;
    esg_error err = {0};
    script s = {.is_ping_scripted = true,
                .kind = ANSWER_STATUS,
                .status = GRPC_STATUS_UNAVAILABLE,
                .details = "not yet"};
    capture *cs = capture_start(answer_from_script, &s);
    esg_client_options options = {.max_attempts = 3, .backoff_ms = 20};
    esg_client *client = NULL;
    assert_int_equal(esg_client_connect_address(cs->address, &options, &client, &err),
                     ESG_EUNAVAILABLE);
    assert_null(client);
    assert_non_null(strstr(err.message, "after 3 attempts"));
    assert_non_null(strstr(err.message, "not yet"));
    assert_int_equal(capture_count(cs, ESG_PATH_PING), 3);

    /* A server that answers Ping with another error is not ours: no retries. */
    SCRIPT(cs, {
        s.status = GRPC_STATUS_UNIMPLEMENTED;
        s.details = "Method not found!";
    });
    assert_int_equal(esg_client_connect_address(cs->address, &options, &client, &err),
                     ESG_EUNIMPLEMENTED);
    assert_non_null(strstr(err.message, "Method not found!"));
    assert_int_equal(capture_count(cs, ESG_PATH_PING), 4);
    capture_stop(cs);
}

typedef struct select_job {
    esg_client *client;
    esg_status rc;
    int64_t elapsed_ms;
} select_job;

static void *select_thread(void *arg)
{
    select_job *job = arg;
    esg_error err = {0};
    esg_notification_list list = {0};
    int64_t started = esg_clock_now_ms();
    job->rc = esg_client_select_notifications(job->client, 1, 10, 0, NULL, 0, &list, &err);
    job->elapsed_ms = esg_clock_now_ms() - started;
    esg_notification_list_clear(&list);
    return NULL;
}

/* Close cancels the calls in flight and wakes the ones waiting to retry. */
static void test_close_cancels_calls_in_flight(void **state)
{
    (void)state;
    script s = {.kind = ANSWER_REPLY, .reply_hex = ""};
    capture *cs = capture_start(answer_from_script, &s);
    esg_client_options options = {.backoff_ms = 20, .deadline_ms = 10000};
    esg_client *client = connect_capture(cs, &options);
    SCRIPT(cs, s.kind = ANSWER_HANG);
    select_job jobs[3];
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (select_job){.client = client};
        assert_int_equal(pthread_create(&threads[i], NULL, select_thread, &jobs[i]), 0);
    }
    while (capture_count(cs, ESG_PATH_GET_NOTIFICATIONS) < 3)
        esg_clock_sleep_ms(10);
    int64_t started = esg_clock_now_ms();
    esg_client_close(client);
    assert_true(esg_clock_now_ms() - started < 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].rc, ESG_ECLOSED);
        assert_true(jobs[i].elapsed_ms < 5000);
    }

    /* A thread waiting between retries is woken too. */
    esg_client_options slow = {.backoff_ms = 5000, .deadline_ms = 10000};
    SCRIPT(cs, s.kind = ANSWER_REPLY);
    esg_client *client2 = connect_capture(cs, &slow);
    SCRIPT(cs, {
        s.kind = ANSWER_STATUS;
        s.status = GRPC_STATUS_UNAVAILABLE;
    });
    int n_before = capture_count(cs, ESG_PATH_GET_NOTIFICATIONS);
    select_job job = {.client = client2};
    assert_int_equal(pthread_create(&threads[0], NULL, select_thread, &job), 0);
    while (capture_count(cs, ESG_PATH_GET_NOTIFICATIONS) < n_before + 1)
        esg_clock_sleep_ms(10);
    esg_clock_sleep_ms(50);
    esg_client_close(client2);
    assert_int_equal(pthread_join(threads[0], NULL), 0);
    assert_int_equal(job.rc, ESG_ECLOSED);
    assert_true(job.elapsed_ms < 4000);
    esg_client_free(client2);
    esg_client_free(client);
    capture_stop(cs);
}

/* The Python reference refuses pages above 10: the log falls back to 10 and
 * remembers it. */
typedef struct section_server {
    int n_refused; /* requests with a limit above 10 */
} section_server;

static void answer_like_reference(capture *cs, const char *path, const uint8_t *request, size_t len,
                                  answer *out)
{
    section_server *ss = cs->ctx;
    if (strcmp(path, ESG_PATH_GET_NOTIFICATIONS) != 0)
        return;
    /* NotificationsRequest: field 2 (limit) follows field 1 (start). */
    size_t start_len = request[1];
    assert_true(len > 3 + start_len && request[2 + start_len] == 0x12);
    char limit[24];
    size_t limit_len = request[3 + start_len];
    snprintf(limit, sizeof limit, "%.*s", (int)limit_len, (const char *)request + 4 + start_len);
    if (atoi(limit) > 10) {
        SCRIPT(cs, ss->n_refused++);
        out->kind = ANSWER_STATUS;
        out->status = GRPC_STATUS_UNKNOWN;
        snprintf(out->details, sizeof out->details,
                 "Exception calling application: Requested limit %s greater than section size 10",
                 limit);
        return;
    }
    /* Two notifications from the vectors' Orders select(start=1, limit=10)... */
    json_t *v = testutil_load_vector("notifications.json");
    json_t *first = json_array_get(json_object_get(v, "selects"), 0);
    reply_with_hex(out,
                   json_string_value(json_object_get(
                       json_object_get(json_object_get(first, "response"), "serialized"), "hex")));
    json_decref(v);
}

static int refused_count(capture *cs)
{
    int n;
    SCRIPT(cs, n = ((section_server *)cs->ctx)->n_refused);
    return n;
}

static void test_log_falls_back_to_reference_section_size(void **state)
{
    (void)state;
    esg_error err = {0};
    section_server ss = {0};
    capture *cs = capture_start(answer_like_reference, &ss);
    esg_client *client = connect_capture(cs, NULL);
    esg_notification_log log;
    esg_client_notification_log(client, "Orders", &log);
    assert_int_equal(log.page_size, 100);
    esg_notification_list list = {0};
    assert_esg_ok(log.select(log.ctx, 1, log.page_size, NULL, 0, &list, &err), &err);
    assert_true(list.n_items > 0);
    assert_int_equal(list.items[0].id, 1);
    assert_int_equal(refused_count(cs), 1);
    assert_int_equal(capture_count(cs, ESG_PATH_GET_NOTIFICATIONS), 2);
    esg_notification_list_clear(&list);

    /* Remembered: no more refusals, and new logs ask for 10. */
    assert_esg_ok(log.select(log.ctx, 1, log.page_size, NULL, 0, &list, &err), &err);
    assert_int_equal(refused_count(cs), 1);
    assert_int_equal(capture_count(cs, ESG_PATH_GET_NOTIFICATIONS), 3);
    esg_notification_list_clear(&list);
    esg_client_notification_log(client, "Orders", &log);
    assert_int_equal(log.page_size, 10);
    esg_client_free(client);
    capture_stop(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_client_section),
        ORDERS_SESSION_TEST(test_server_errors_are_typed),
        ORDERS_SESSION_TEST(test_health_check),
        cmocka_unit_test(test_missing_address_is_config_error),
        cmocka_unit_test(test_replicas_behind_one_address),
        cmocka_unit_test(test_bad_address_lists_are_config_errors),
        cmocka_unit_test(test_nothing_listening_is_unavailable_after_max_attempts),
        cmocka_unit_test(test_server_started_later_is_reached),
        cmocka_unit_test(test_call_waits_for_restarted_server),
        ORDERS_SESSION_TEST(test_calls_after_close_are_closed),
        ORDERS_SESSION_TEST(test_threads_share_one_client),
        cmocka_unit_test(test_method_requests_match_vectors),
        cmocka_unit_test(test_notification_requests_match_vectors),
        cmocka_unit_test(test_malformed_replies_are_remote_errors),
        cmocka_unit_test(test_statuses_are_mapped_with_their_message),
        cmocka_unit_test(test_retries_only_idempotent_calls),
        cmocka_unit_test(test_commands_are_repeated_with_their_key),
        cmocka_unit_test(test_connect_makes_exactly_max_attempts),
        cmocka_unit_test(test_close_cancels_calls_in_flight),
        cmocka_unit_test(test_log_falls_back_to_reference_section_size),
    };
    return raw_run_grpc_tests("client", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
