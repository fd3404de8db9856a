/* Tests of the gRPC application server with raw gRPC calls: the reference's
 * recorded requests and replies byte for byte, every error status, the page
 * cap, Prompt, the health service, stopping with calls in flight, many
 * concurrent clients, and no pages built for a connection that has closed
 * (its requests written by hand, tests/reliability/h2_wire.c). */
#include "testutil.h"

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "esg/grpc.h"
#include "h2_wire.h"
#include "raw_call.h"

#define PATH_PING "/eventsourcing_grpc.Application/Ping"
#define PATH_CALL "/eventsourcing_grpc.Application/CallApplicationMethod"
#define PATH_PROMPT "/eventsourcing_grpc.Application/Prompt"
#define PATH_NOTIFICATIONS "/eventsourcing_grpc.Application/GetNotifications"

/* ---- Protobuf by hand, so that the test does not share the server's codec ---- */

typedef struct bytes {
    uint8_t data[8192];
    size_t len;
} bytes;

static void put_field(bytes *b, int field, const void *data, size_t len)
{
    b->data[b->len++] = (uint8_t)(field << 3 | 2);
    size_t n = len;
    do {
        b->data[b->len++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>= 7;
    } while (n > 0);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_string(bytes *b, int field, const char *s)
{
    if (s != NULL && s[0] != '\0')
        put_field(b, field, s, strlen(s));
}

static bytes method_request(const char *name, const char *args, const char *kwargs)
{
    bytes b = {.len = 0};
    put_string(&b, 1, name);
    put_string(&b, 2, args);
    put_string(&b, 3, kwargs);
    return b;
}

static bytes notifications_request(const char *start, const char *limit, const char *stop,
                                   const char *topic)
{
    bytes b = {.len = 0};
    put_string(&b, 1, start);
    put_string(&b, 2, limit);
    put_string(&b, 3, stop);
    put_string(&b, 4, topic);
    return b;
}

/* Counts the notifications (field 1) of a NotificationsReply. */
static size_t count_notifications(const raw_reply *reply)
{
    size_t n = 0, i = 0;
    while (i < reply->len) {
        assert_int_equal(reply->data[i++], 0x0a);
        size_t len = 0;
        int shift = 0;
        while (reply->data[i] & 0x80)
            len |= (size_t)(reply->data[i++] & 0x7f) << shift, shift += 7;
        len |= (size_t)reply->data[i++] << shift;
        i += len;
        n++;
    }
    return n;
}

/* ---- A test application with a slow method, beside the example's Orders ---- */

static esg_status sleep_ms(esg_application *app, esg_value *const *params, esg_value **result,
                           esg_error *err)
{
    (void)app;
    (void)err;
    usleep((useconds_t)esg_value_as_int(params[0]) * 1000);
    *result = esg_value_bool(true);
    return ESG_OK;
}

static const char *const ms_param[] = {"ms"};
static const esg_method slow_methods[] = {{"sleep", ms_param, 1, 1, sleep_ms}};
static const esg_application_type slow_app = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Slow",
    .topic = "tests:Slow",
    .methods = slow_methods,
    .n_methods = 1,
};

typedef struct fixture {
    esg_env *env;
    esg_application *app;
    esg_server *server;
    grpc_channel *channel;
    char target[64];
    pthread_mutex_t lock; /* guards the two below, written on a server worker */
    char prompted[64];    /* the last leader name a Prompt carried */
    int n_prompts;
    int64_t prompted_id; /* the notification id the last Prompt told, or 0 */
} fixture;

static void on_prompt(void *ctx, const char *leader_name, int64_t leader_notification_id)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->lock);
    snprintf(f->prompted, sizeof f->prompted, "%s", leader_name);
    f->n_prompts++;
    f->prompted_id = leader_notification_id;
    pthread_mutex_unlock(&f->lock);
}

/* Starts a server of type on localhost, its health checks on health_address and its metrics on
 * metrics_address (NULL: none). */
static int start(void **state, const esg_application_type *type, const char *health_address,
                 const char *metrics_address)
{
    fixture *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    esg_error err;
    static const char *const leaders[] = {"Reservations", "Payments"};
    f->env = esg_env_new();
    assert_esg_ok(esg_application_new(type, f->env, &f->app, &err), &err);
    esg_server_options options = {.address = "localhost:0",
                                  .env = f->env,
                                  .n_threads = 3,
                                  .leader_names = leaders,
                                  .n_leader_names = 2,
                                  .on_prompt = on_prompt,
                                  .on_prompt_ctx = f,
                                  .health_address = health_address,
                                  .metrics_address = metrics_address};
    assert_esg_ok(esg_server_start(f->app, &options, &f->server, &err), &err);
    snprintf(f->target, sizeof f->target, "localhost:%d", esg_server_port(f->server));
    f->channel = raw_channel(f->target, NULL);
    *state = f;
    return 0;
}

static int setup_orders(void **state)
{
    return start(state, &esg_example_orders, NULL, NULL);
}

static int setup_slow(void **state)
{
    return start(state, &slow_app, NULL, NULL);
}

static int setup_health(void **state)
{
    return start(state, &esg_example_orders, "localhost:0", NULL);
}

/* With the metrics, which say how each call ended. */
static int setup_metered(void **state)
{
    return start(state, &esg_example_orders, NULL, "localhost:0");
}

static int teardown(void **state)
{
    fixture *f = *state;
    grpc_channel_destroy(f->channel);
    esg_server_stop(f->server);
    esg_application_free(f->app);
    esg_env_free(f->env);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

static void call_ok(fixture *f, const char *path, const bytes *request, raw_reply *reply)
{
    raw_call(f->channel, path, request->data, request->len, 5000, reply);
    if (reply->status != GRPC_STATUS_OK)
        fail_msg("%s: status %d %s", path, reply->status, reply->details);
}

static void expect_status(fixture *f, const char *path, const bytes *request,
                          grpc_status_code status, const char *fragment)
{
    raw_reply reply;
    raw_call(f->channel, path, request->data, request->len, 5000, &reply);
    if (reply.status != status || strstr(reply.details, fragment) == NULL)
        fail_msg("%s: got %d '%s', expected %d with '%s'", path, reply.status, reply.details,
                 status, fragment);
    raw_reply_clear(&reply);
}

/* Replaces every occurrence of from (same length as to) in text. */
static void substitute(char *text, const char *from, const char *to)
{
    size_t n = strlen(from);
    assert_int_equal(n, strlen(to));
    for (char *p = strstr(text, from); p != NULL; p = strstr(p + n, from))
        memcpy(p, to, n);
}

/* The vector's fields.data utf8 of a call, with its order id and timestamps replaced. */
static char *vector_reply(json_t *call, const char *recorded_id, const char *order_id,
                          const char *timestamp)
{
    json_t *data =
        json_object_get(json_object_get(json_object_get(call, "response"), "fields"), "data");
    char *text = strdup(json_string_value(json_object_get(data, "utf8")));
    substitute(text, recorded_id, order_id);
    const char *marker = "\"datetime_iso\",\"_data_\":\"";
    for (char *p = strstr(text, marker); p != NULL; p = strstr(p + 1, marker))
        memcpy(p + strlen(marker), timestamp, strlen(timestamp));
    return text;
}

static void test_reference_requests_get_reference_replies(void **state)
{
    fixture *f = *state;
    json_t *root = testutil_load_vector("method_calls.json");
    const char *recorded_id =
        json_string_value(json_object_get(json_object_get(root, "order_id"), "hex"));
    raw_reply reply;
    bytes empty = {.len = 0};
    call_ok(f, PATH_PING, &empty, &reply);
    assert_int_equal(reply.len, 0); /* Empty, as recorded */
    raw_reply_clear(&reply);

    /* create_new_order: the recorded request bytes exactly. */
    json_t *calls = json_object_get(root, "calls");
    json_t *create = json_array_get(calls, 0);
    size_t len;
    uint8_t *request = testutil_unhex(
        json_string_value(json_object_get(
            json_object_get(json_object_get(create, "request"), "serialized"), "hex")),
        &len);
    raw_call(f->channel, PATH_CALL, request, len, 5000, &reply);
    free(request);
    assert_int_equal(reply.status, GRPC_STATUS_OK);
    /* 0a 41 {"_type_":"uuid_hex","_data_":"<32 hex>"}: same length and shape. */
    assert_int_equal(reply.len, 67);
    assert_memory_equal(reply.data, "\x0a\x41{\"_type_\":\"uuid_hex\",\"_data_\":\"", 33);
    char order_id[33];
    memcpy(order_id, reply.data + 33, 32);
    order_id[32] = '\0';
    raw_reply_clear(&reply);

    /* The other calls: recorded requests with our id; replies equal the
     * recorded ones with our id and timestamps put in. */
    for (size_t i = 1; i < json_array_size(calls); i++) {
        json_t *call = json_array_get(calls, i);
        char *hex = strdup(json_string_value(json_object_get(
            json_object_get(json_object_get(call, "request"), "serialized"), "hex")));
        char recorded_hex[65], order_hex[65];
        for (int k = 0; k < 32; k++) {
            snprintf(recorded_hex + 2 * k, 3, "%02x", (unsigned char)recorded_id[k]);
            snprintf(order_hex + 2 * k, 3, "%02x", (unsigned char)order_id[k]);
        }
        substitute(hex, recorded_hex, order_hex);
        request = testutil_unhex(hex, &len);
        free(hex);
        raw_call(f->channel, PATH_CALL, request, len, 5000, &reply);
        free(request);
        assert_int_equal(reply.status, GRPC_STATUS_OK);
        /* Skip the MethodReply framing (tag and a 1- or 2-byte length). */
        size_t skip = reply.data[1] & 0x80 ? 3 : 2;
        char *text = (char *)reply.data + skip;
        const char *ts = strstr(text, "\"datetime_iso\",\"_data_\":\"");
        char timestamp[40] = "";
        if (ts != NULL)
            snprintf(timestamp, 33, "%s", ts + strlen("\"datetime_iso\",\"_data_\":\""));
        char *expected = vector_reply(call, recorded_id, order_id, timestamp);
        assert_string_equal(text, expected);
        free(expected);
        raw_reply_clear(&reply);
    }
    json_decref(root);
}

static void test_call_errors_have_clear_statuses(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *name, *args, *kwargs;
        grpc_status_code status;
        const char *fragment; /* of the status message */
    } bad[] = {
        {"nope", "[]", "{}", GRPC_STATUS_UNIMPLEMENTED, "Orders has no method 'nope'"},
        {"", "[]", "{}", GRPC_STATUS_UNIMPLEMENTED, "no method ''"},
        /* private ones are not callable */
        {"_get_order", "[]", "{}", GRPC_STATUS_UNIMPLEMENTED, "no method"},
        {"get_order", "[\"x\"]", "{}", GRPC_STATUS_INVALID_ARGUMENT, "UUID"},
        {"get_order", "[1,2]", "{}", GRPC_STATUS_INVALID_ARGUMENT, "positional argument"},
        {"get_order", "[]", "{}", GRPC_STATUS_INVALID_ARGUMENT, "missing 1 required"},
        {"get_order", "[]", "{\"nope\":1}", GRPC_STATUS_INVALID_ARGUMENT, "unexpected keyword"},
        {"get_order", "not json", "{}", GRPC_STATUS_INVALID_ARGUMENT, "invalid JSON"},
        {"get_order", "[{\"_type_\":\"nope\",\"_data_\":1}]", "{}", GRPC_STATUS_INVALID_ARGUMENT,
         "not deserializable"},
        {"get_order", "[{\"_type_\":\"uuid_hex\",\"_data_\":\"00000000000000000000000000000009\"}]",
         "{}", GRPC_STATUS_NOT_FOUND, "not found"},
    };
    bytes request;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        request = method_request(bad[i].name, bad[i].args, bad[i].kwargs);
        expect_status(f, PATH_CALL, &request, bad[i].status, bad[i].fragment);
    }
    /* Missing args and kwargs mean none: create_new_order takes none. */
    request = method_request("create_new_order", NULL, NULL);
    raw_reply reply;
    call_ok(f, PATH_CALL, &request, &reply);
    raw_reply_clear(&reply);
    /* Bytes that are not protobuf, and unknown paths. */
    bytes garbage = {.data = {0xff, 0xff, 0xff}, .len = 3};
    expect_status(f, PATH_CALL, &garbage, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    expect_status(f, PATH_NOTIFICATIONS, &garbage, GRPC_STATUS_INVALID_ARGUMENT, "malformed");
    expect_status(f, "/eventsourcing_grpc.Application/Nope", &request, GRPC_STATUS_UNIMPLEMENTED,
                  "Method not found: /eventsourcing_grpc.Application/Nope");
}

static void test_oversized_requests_are_refused(void **state)
{
    fixture *f = *state;
    size_t len = ESG_GRPC_MAX_MESSAGE_BYTES + 1024;
    uint8_t *big = calloc(1, len);
    raw_reply reply;
    raw_call(f->channel, PATH_CALL, big, len, 5000, &reply);
    assert_int_equal(reply.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    raw_reply_clear(&reply);
    free(big);
    bytes empty = {.len = 0};
    call_ok(f, PATH_PING, &empty, &reply); /* still alive */
    raw_reply_clear(&reply);
}

static void test_notifications_numbers_and_cap(void **state)
{
    fixture *f = *state;
    bytes create = method_request("create_new_order", "[]", "{}");
    raw_reply reply;
    for (int i = 0; i < ESG_GRPC_MAX_PAGE_NOTIFICATIONS + 20; i++) {
        call_ok(f, PATH_CALL, &create, &reply);
        raw_reply_clear(&reply);
    }
    bytes request = notifications_request("1", "10", NULL, NULL);
    call_ok(f, PATH_NOTIFICATIONS, &request, &reply);
    assert_int_equal(count_notifications(&reply), 10);
    raw_reply_clear(&reply);
    request = notifications_request("1", "100000", NULL, NULL);
    call_ok(f, PATH_NOTIFICATIONS, &request, &reply);
    assert_int_equal(count_notifications(&reply), ESG_GRPC_MAX_PAGE_NOTIFICATIONS);
    raw_reply_clear(&reply);
    request = notifications_request("5", "10", "7", NULL);
    call_ok(f, PATH_NOTIFICATIONS, &request, &reply);
    assert_int_equal(count_notifications(&reply), 3);
    raw_reply_clear(&reply);
    request = notifications_request("3", "10", NULL, "eventsourcing_grpc.example:Order.Paid");
    call_ok(f, PATH_NOTIFICATIONS, &request, &reply);
    assert_int_equal(reply.len, 0); /* nothing paid here: an empty reply */
    raw_reply_clear(&reply);
    request = notifications_request("100000", "10", NULL, NULL);
    call_ok(f, PATH_NOTIFICATIONS, &request, &reply);
    assert_int_equal(reply.len, 0);
    raw_reply_clear(&reply);

    const char *bad[][3] = {{"0", "10", "start must be >= 1"},
                            {"-1", "10", "start must be >= 1"},
                            {"", "10", "start must be a whole number"},
                            {"1", "", "limit must be a whole number"},
                            {"1", "0", "limit must be >= 1"},
                            {"1", "-5", "limit must be >= 1"},
                            {"x", "10", "start must be a whole number"},
                            {"1", "1e3", "limit must be a whole number"},
                            {"1", " 10", "limit must be a whole number"},
                            {"1", "99999999999999999999", "limit must be a whole number"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        request = notifications_request(bad[i][0], bad[i][1], NULL, NULL);
        expect_status(f, PATH_NOTIFICATIONS, &request, GRPC_STATUS_INVALID_ARGUMENT, bad[i][2]);
    }
    request = notifications_request("1", "10", "0", NULL);
    expect_status(f, PATH_NOTIFICATIONS, &request, GRPC_STATUS_INVALID_ARGUMENT,
                  "stop must be >= 1");
}

static void test_prompt_only_from_leaders(void **state)
{
    fixture *f = *state;
    bytes request = {.len = 0};
    put_string(&request, 1, "Payments");
    raw_reply reply;
    call_ok(f, PATH_PROMPT, &request, &reply);
    assert_int_equal(reply.len, 0);
    raw_reply_clear(&reply);
    pthread_mutex_lock(&f->lock);
    assert_string_equal(f->prompted, "Payments");
    assert_int_equal(f->n_prompts, 1);
    pthread_mutex_unlock(&f->lock);
    bytes other = {.len = 0};
    put_string(&other, 1, "Orders");
    expect_status(f, PATH_PROMPT, &other, GRPC_STATUS_INVALID_ARGUMENT,
                  "'Orders' is not a leader of Orders");
    bytes nameless = {.len = 0};
    expect_status(f, PATH_PROMPT, &nameless, GRPC_STATUS_INVALID_ARGUMENT, "is not a leader");
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->n_prompts, 1);
    pthread_mutex_unlock(&f->lock);
}

/* A leader of this library tells its highest notification id in a Prompt's metadata; a Prompt
 * without it (Python's) tells 0. */
static void test_prompt_tells_notification_id(void **state)
{
    fixture *f = *state;
    esg_client *client = NULL;
    esg_error err = {0};
    esg_client_options options = {.max_attempts = 1};
    assert_int_equal(esg_client_connect_address(f->target, &options, &client, &err), ESG_OK);
    assert_int_equal(esg_client_prompt_after(client, "Payments", 42, &err), ESG_OK);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->prompted_id, 42);
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(esg_client_prompt(client, "Payments", &err), ESG_OK);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->prompted_id, 0);
    pthread_mutex_unlock(&f->lock);
    esg_client_free(client);
}

static void test_health_check(void **state)
{
    fixture *f = *state;
    bytes request = {.len = 0};
    raw_reply reply;
    call_ok(f, "/grpc.health.v1.Health/Check", &request, &reply);
    assert_int_equal(reply.len, 2);
    assert_memory_equal(reply.data, "\x08\x01", 2); /* SERVING */
    raw_reply_clear(&reply);
    put_string(&request, 1, "eventsourcing_grpc.Application");
    call_ok(f, "/grpc.health.v1.Health/Check", &request, &reply);
    assert_memory_equal(reply.data, "\x08\x01", 2);
    raw_reply_clear(&reply);
    bytes unknown = {.len = 0};
    put_string(&unknown, 1, "nope.Service");
    expect_status(f, "/grpc.health.v1.Health/Check", &unknown, GRPC_STATUS_NOT_FOUND,
                  "unknown service");
}

/* The health port: plaintext, the health service and nothing else, stopped
 * with the server; a busy health port fails the start and frees everything. */
static void test_health_port_serves_health_alone(void **state)
{
    fixture *f = *state;
    int port = esg_server_health_port(f->server);
    assert_true(port > 0);
    assert_int_not_equal(port, esg_server_port(f->server));
    char target[64];
    snprintf(target, sizeof target, "localhost:%d", port);
    grpc_channel *channel = raw_channel(target, NULL);
    raw_reply reply;
    raw_call(channel, "/grpc.health.v1.Health/Check", NULL, 0, 5000, &reply);
    assert_int_equal(reply.status, GRPC_STATUS_OK);
    assert_int_equal(reply.len, 2);
    assert_memory_equal(reply.data, "\x08\x01", 2); /* SERVING */
    raw_reply_clear(&reply);
    static const char *const application_paths[] = {PATH_PING, PATH_CALL, PATH_PROMPT,
                                                    PATH_NOTIFICATIONS};
    for (size_t i = 0; i < 4; i++) {
        raw_call(channel, application_paths[i], NULL, 0, 5000, &reply);
        if (reply.status != GRPC_STATUS_UNIMPLEMENTED)
            fail_msg("%s on the health port: status %d %s", application_paths[i], reply.status,
                     reply.details);
        raw_reply_clear(&reply);
    }

    char busy[64];
    snprintf(busy, sizeof busy, "localhost:%d", port);
    esg_server_options options = {.address = "localhost:0", .env = f->env, .health_address = busy};
    esg_server *second = NULL;
    esg_error err;
    assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "health checks"));
    assert_null(second);

    esg_server_stop(f->server);
    f->server = NULL;
    raw_call(channel, "/grpc.health.v1.Health/Check", NULL, 0, 1000, &reply);
    assert_int_not_equal(reply.status, GRPC_STATUS_OK);
    raw_reply_clear(&reply);
    grpc_channel_destroy(channel);
}

/* Health Watch: the first message now, then NOT_SERVING and the end of the
 * stream when the server stops. */
static void test_health_watch_sees_the_stop(void **state)
{
    fixture *f = *state;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = raw_new_call(f->channel, cq, "/grpc.health.v1.Health/Watch", 10000);
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *messages[3] = {NULL, NULL, NULL};
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details;
    grpc_op ops[4];
    raw_request_ops(ops, 0, request, &initial);
    int tags[5];
    assert_int_equal(grpc_call_start_batch(call, ops, 4, &tags[0], NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, &tags[0], gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    for (int i = 0; i < 3; i++) {
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &messages[i];
        assert_int_equal(grpc_call_start_batch(call, ops, 1, &tags[1 + i], NULL), GRPC_CALL_OK);
        if (i == 1) {
            esg_server_stop(f->server); /* the change the stream reports */
            f->server = NULL;
        }
        grpc_completion_queue_pluck(cq, &tags[1 + i], gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[0].data.recv_status_on_client.status = &status;
    ops[0].data.recv_status_on_client.status_details = &details;
    assert_int_equal(grpc_call_start_batch(call, ops, 1, &tags[4], NULL), GRPC_CALL_OK);
    grpc_completion_queue_pluck(cq, &tags[4], gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

    uint8_t expected[2][2] = {{0x08, 0x01}, {0x08, 0x02}}; /* SERVING, then NOT_SERVING */
    for (int i = 0; i < 2; i++) {
        assert_non_null(messages[i]);
        size_t len;
        uint8_t *data = raw_buffer_bytes(messages[i], &len);
        assert_int_equal(len, 2);
        assert_memory_equal(data, expected[i], 2);
        free(data);
        grpc_byte_buffer_destroy(messages[i]);
    }
    assert_null(messages[2]); /* the end of the stream */
    assert_int_equal(status, GRPC_STATUS_OK);
    grpc_slice_unref(details);
    grpc_byte_buffer_destroy(request);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    raw_queue_destroy(cq, GRPC_CQ_PLUCK);
}

/* A client thread: n_calls calls of a method on f's channel, one after the other. */
typedef struct caller {
    fixture *f;         /* borrowed */
    const char *method; /* its name, and its positional arguments as JSON (static strings) */
    const char *args;
    int n_calls;
    int n_ok;        /* calls answered OK */
    raw_reply reply; /* the last call's (the test clears it) */
} caller;

static void *make_calls(void *arg)
{
    caller *c = arg;
    bytes request = method_request(c->method, c->args, "{}");
    for (int i = 0; i < c->n_calls; i++) {
        raw_reply_clear(&c->reply);
        raw_call(c->f->channel, PATH_CALL, request.data, request.len, 10000, &c->reply);
        c->n_ok += c->reply.status == GRPC_STATUS_OK;
    }
    return NULL;
}

/* Starts callers[0..n) on threads[i], each making n_calls calls of method with args (static
 * strings); callers (borrowed) must outlive the threads. */
static void start_callers(fixture *f, caller *callers, pthread_t *threads, int n,
                          const char *method, const char *args, int n_calls)
{
    for (int i = 0; i < n; i++) {
        callers[i] = (caller){.f = f, .method = method, .args = args, .n_calls = n_calls};
        assert_int_equal(pthread_create(&threads[i], NULL, make_calls, &callers[i]), 0);
    }
}

static void test_stop_finishes_calls_in_flight(void **state)
{
    fixture *f = *state;
    caller sleepers[3];
    pthread_t threads[3];
    start_callers(f, sleepers, threads, 3, "sleep", "[300]", 1);
    for (int i = 0; i < 200 && esg_server_n_calls(f->server) < 3; i++)
        usleep(10000);
    assert_int_equal(esg_server_n_calls(f->server), 3);
    esg_server_stop(f->server);
    f->server = NULL;
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(sleepers[i].reply.status, GRPC_STATUS_OK);
        assert_string_equal((char *)sleepers[i].reply.data + 2, "true");
        raw_reply_clear(&sleepers[i].reply);
    }
    /* New calls find nobody. */
    raw_reply reply;
    bytes empty = {.len = 0};
    raw_call(f->channel, PATH_PING, empty.data, 0, 300, &reply);
    assert_int_not_equal(reply.status, GRPC_STATUS_OK);
    raw_reply_clear(&reply);
}

static void test_many_concurrent_clients(void **state)
{
    fixture *f = *state;
    caller workers[8];
    pthread_t threads[8];
    start_callers(f, workers, threads, 8, "create_new_order", "[]", 200);
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].n_ok, 200);
        raw_reply_clear(&workers[i].reply);
    }
    int64_t max_id = 0;
    esg_error err;
    assert_esg_ok(esg_recorder_max_notification_id(esg_application_recorder(f->app), &max_id, &err),
                  &err);
    assert_int_equal(max_id, 1600);
    for (int i = 0; i < 100 && esg_server_n_calls(f->server) > 0; i++)
        usleep(10000);
    assert_int_equal(esg_server_n_calls(f->server), 0);
}

/* Pages asked for on a connection that closed while they queued are not built: gRPC 1.51 hands
 * such calls over all the same, request and all, and building full pages for no one kept a
 * server busy for seconds after a client that had asked for hundreds went away. */
static void test_pages_of_a_closed_connection_are_not_built(void **state)
{
    enum { N_ABANDONED = 100 }; /* the server's streams per connection */
    fixture *f = *state;
    bytes create = method_request("create_new_order", "[]", "{}");
    raw_reply reply;
    for (int i = 0; i < ESG_GRPC_MAX_PAGE_NOTIFICATIONS; i++) {
        call_ok(f, PATH_CALL, &create, &reply);
        raw_reply_clear(&reply);
    }
    bytes page = notifications_request("1", "1000", NULL, NULL);
    uint8_t message[5 + sizeof page.data];
    message[0] = 0; /* not compressed */
    h2_put_be32(message + 1, (uint32_t)page.len);
    memcpy(message + 5, page.data, page.len);
    hpack_block headers = {.len = 0};
    hpack_put_grpc_request(&headers, PATH_NOTIFICATIONS);
    /* Every request sent whole, then the connection's end, which the server reads while its
     * workers are busy with the first pages. */
    int fd = h2_connect_loopback(esg_server_port(f->server));
    assert_true(h2_send_all(fd, h2_client_preface, strlen(h2_client_preface)));
    assert_true(h2_send_frame(fd, H2_SETTINGS, 0, 0, NULL, 0));
    for (uint32_t i = 0, stream = 1; i < N_ABANDONED; i++, stream += 2) {
        assert_true(
            h2_send_frame(fd, H2_HEADERS, H2_END_HEADERS, stream, headers.bytes, headers.len));
        assert_true(h2_send_frame(fd, H2_DATA, H2_END_STREAM, stream, message, 5 + page.len));
    }
    shutdown(fd, SHUT_WR);
    assert_true(h2_wait_for_close(fd, 60000));
    close(fd);

    /* A call after them is handed over after them (gRPC keeps a method's calls in order). */
    call_ok(f, PATH_NOTIFICATIONS, &page, &reply);
    assert_int_equal(count_notifications(&reply), ESG_GRPC_MAX_PAGE_NOTIFICATIONS);
    raw_reply_clear(&reply);
    for (int i = 0; i < 3000 && esg_server_n_calls(f->server) > 0; i++)
        usleep(10000);
    assert_int_equal(esg_server_n_calls(f->server), 0);
    char *metrics = testutil_http_get(esg_server_metrics_port(f->server), "/metrics");
#define HANDLED(code)                                                                              \
    "grpc_server_handled_total{grpc_service=\"eventsourcing_grpc.Application\",grpc_method="       \
    "\"GetNotifications\",grpc_type=\"unary\",grpc_code=\"" code "\"}"
    double n_built = testutil_sample_value(metrics, HANDLED("OK")) - 1; /* the last call's */
    double n_dropped = testutil_sample_value(metrics, HANDLED("Canceled"));
#undef HANDLED
    free(metrics);
    print_message("of %d abandoned calls, %.0f pages built, %.0f calls dropped\n", N_ABANDONED,
                  n_built, n_dropped);
    /* Built: those a worker took before the server read the end (0 to 10 of 100 here). Before,
     * every one that came with its request was built, and none was counted as cancelled. */
    assert_true(n_dropped > 0);
    assert_true(n_built < n_dropped);
}

/* A second server on the fixture's port, and addresses that cannot be served. */
static void test_start_errors(void **state)
{
    fixture *f = *state;
    esg_server *second = NULL;
    esg_error err;
    char busy[64];
    snprintf(busy, sizeof busy, "localhost:%d", esg_server_port(f->server));
    esg_server_options options = {.address = busy, .env = f->env};
    assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "in use"));
    assert_null(second);
    options.address = "no-port";
    assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_ECONFIG);
    options.address = "0.0.0.0:0"; /* not local: needs certificates */
    assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "GRPC_SSL_"));
    options.address = "";
    assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_ECONFIG);
    /* The replicas' shared address is for clients: a server listens on its own. */
    const char *replicas[] = {"localhost:1,localhost:2", "dns:///localhost:1"};
    for (size_t i = 0; i < 2; i++) {
        options.address = replicas[i];
        assert_int_equal(esg_server_start(f->app, &options, &second, &err), ESG_ECONFIG);
        assert_non_null(strstr(err.message, "GRPC_LISTEN_ADDRESS"));
    }
}

/* Most tests get a server of the example's Orders and a channel to it. */
#define SERVER_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_orders, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SERVER_TEST(test_reference_requests_get_reference_replies),
        SERVER_TEST(test_call_errors_have_clear_statuses),
        SERVER_TEST(test_oversized_requests_are_refused),
        SERVER_TEST(test_notifications_numbers_and_cap),
        SERVER_TEST(test_prompt_only_from_leaders),
        SERVER_TEST(test_prompt_tells_notification_id),
        SERVER_TEST(test_health_check),
        SERVER_TEST(test_health_watch_sees_the_stop),
        cmocka_unit_test_setup_teardown(test_health_port_serves_health_alone, setup_health,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_finishes_calls_in_flight, setup_slow, teardown),
        SERVER_TEST(test_many_concurrent_clients),
        cmocka_unit_test_setup_teardown(test_pages_of_a_closed_connection_are_not_built,
                                        setup_metered, teardown),
        SERVER_TEST(test_start_errors),
    };
    return raw_run_grpc_tests("server", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
