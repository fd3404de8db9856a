/* Hostile requests over the wire (issue 9, item 2), against the real
 * eventsourcing_grpc_server program: messages over the documented maximum
 * (plain and as a compression bomb), extreme numbers for GetNotifications,
 * unknown paths and unregistered method names, invalid, deep, wide and
 * mistyped JSON, floods of Prompts and calls, hundreds of idle connections
 * and bytes that are not HTTP/2. After each the server must still answer
 * Ping, and after all of them its resident memory must be bounded and it
 * must stop cleanly on SIGTERM (exit 0, which under ASan also means no leak).
 * test_server.c already covers the single error statuses in process; this
 * file is about volume, extremes and the process as deployed. */
#include "testutil.h"

#include <grpc/compression.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esg/grpc.h"
#include "h2_wire.h"
#include "raw_call.h"
#include "subprocess.h"

#define PATH_PING "/eventsourcing_grpc.Application/Ping"
#define PATH_CALL "/eventsourcing_grpc.Application/CallApplicationMethod"
#define PATH_PROMPT "/eventsourcing_grpc.Application/Prompt"
#define PATH_NOTIFICATIONS "/eventsourcing_grpc.Application/GetNotifications"
#define PATH_POSITIONS "/eventsourcing_grpc_c.v1.Node/GetLeaderPositions"
#define PATH_SUBSCRIBE "/eventsourcing_grpc_c.v1.Node/Subscribe"
#define PATH_REFLECTION_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PATH_REFLECTION_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

/* Calls get an ample deadline: a sanitized server is slow, and no test here measures time. */
#define DEADLINE_MS 60000

/* Idle connections held open at once (the server's descriptor limit is raised for them). */
#define N_IDLE_CONNECTIONS 500
/* Calls in a flood, and how many are in flight at once on one channel. */
#define N_FLOOD 10000
#define FLOOD_IN_FLIGHT 1000
/* TSan's shadow memory counts in the RSS: about four times the memory it
 * shadows, so the memory bounds below are scaled by this under TSan. And
 * TSan is slow: the floods other than the leader's Prompts are smaller. */
#if defined(__SANITIZE_THREAD__)
#define RSS_FACTOR 4
#define N_OTHER_FLOOD (N_FLOOD / 5)
#else
#define RSS_FACTOR 1
#define N_OTHER_FLOOD N_FLOOD
#endif
/* How much the server's RSS may grow over two more rounds of floods. */
#define FLOOD_GROWTH_KIB (RSS_FACTOR * 32 * 1024)
/* How far above its warm-up RSS the server may end, after everything here,
 * 1 GiB messages included: without the memory quota one such message alone
 * left ~1 GiB resident. */
#define END_GROWTH_KIB (RSS_FACTOR * 256 * 1024)
/* gRPC status codes are 0 to 16. */
#define N_STATUSES 17

typedef struct fixture {
    char *dir;
    server_process server;
    char target[64]; /* localhost:PORT */
    grpc_channel *channel;
    long baseline_kib; /* the server's RSS after a warm-up, before the floods */
} fixture;

static fixture the;

/* ---- Protobuf by hand (length-delimited fields only) ---- */

typedef struct bytes {
    uint8_t *data;
    size_t len, capacity;
} bytes;

static void put_raw(bytes *b, const void *data, size_t len)
{
    if (b->len + len > b->capacity) {
        b->capacity = (b->len + len) * 2 + 64;
        b->data = realloc(b->data, b->capacity);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_field(bytes *b, int field, const void *data, size_t len)
{
    uint8_t head[11];
    size_t n = 0;
    head[n++] = (uint8_t)(field << 3 | 2);
    size_t v = len;
    do {
        head[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v > 0);
    put_raw(b, head, n);
    put_raw(b, data, len);
}

static void put_string(bytes *b, int field, const char *s)
{
    if (s != NULL)
        put_field(b, field, s, strlen(s));
}

static bytes method_request(const char *name, const char *args, const char *kwargs)
{
    bytes b = {0};
    put_string(&b, 1, name);
    put_string(&b, 2, args);
    put_string(&b, 3, kwargs);
    return b;
}

static void bytes_free(bytes *b)
{
    free(b->data);
    *b = (bytes){0};
}

/* ---- Calls ---- */

static grpc_status_code call_status(const char *path, const bytes *request, char *details,
                                    size_t details_size)
{
    raw_reply reply;
    raw_call(the.channel, path, request->data, request->len, DEADLINE_MS, &reply);
    grpc_status_code status = reply.status;
    if (details != NULL)
        snprintf(details, details_size, "%s", reply.details);
    raw_reply_clear(&reply);
    return status;
}

static void expect_status(const char *path, const bytes *request, grpc_status_code expected,
                          const char *fragment, const char *what)
{
    char details[512];
    grpc_status_code status = call_status(path, request, details, sizeof details);
    if (status != expected || (fragment != NULL && strstr(details, fragment) == NULL))
        fail_msg("%s: got status %d '%s', expected %d with '%s'", what, status, details, expected,
                 fragment ? fragment : "");
}

static void assert_alive(void)
{
    server_assert_alive(&the.server);
    bytes empty = {0};
    char details[512];
    grpc_status_code status = call_status(PATH_PING, &empty, details, sizeof details);
    if (status != GRPC_STATUS_OK)
        fail_msg("Ping after the hostile input: status %d '%s'", status, details);
}

/* Zero bytes for a compression bomb: the client deflates them to ~1/1000. */
#define BOMB_BYTES (256u << 20)

/* One call whose request is len zero bytes, sent without copying them (the
 * pages are never written, so they cost the test no memory). */
static grpc_status_code zeros_call(grpc_channel *channel, const char *path, size_t len,
                                   char *details_out, size_t details_size)
{
    void *zeros = calloc(1, len);
    assert_non_null(zeros);
    grpc_slice slice = grpc_slice_new(zeros, len, free);
    grpc_byte_buffer *payload = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    raw_reply reply;
    raw_call_buffer(channel, path, payload, DEADLINE_MS, &reply);
    grpc_byte_buffer_destroy(payload);
    snprintf(details_out, details_size, "%s", reply.details);
    grpc_status_code status = reply.status;
    raw_reply_clear(&reply);
    return status;
}

/* ---- Floods: many calls in flight at once on one channel ---- */

typedef struct flood_slot {
    grpc_call *call;
    grpc_byte_buffer *request;
    grpc_byte_buffer *response;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
} flood_slot;

static void flood_start(grpc_channel *channel, grpc_completion_queue *cq, flood_slot *slot,
                        const char *path, const bytes *request)
{
    memset(slot, 0, sizeof *slot);
    slot->call = raw_new_call(channel, cq, path, 120000);
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)request->data, request->len);
    slot->request = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    grpc_metadata_array_init(&slot->initial);
    grpc_metadata_array_init(&slot->trailing);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    raw_request_ops(ops, GRPC_INITIAL_METADATA_WAIT_FOR_READY, slot->request, &slot->initial);
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &slot->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &slot->trailing;
    ops[5].data.recv_status_on_client.status = &slot->status;
    ops[5].data.recv_status_on_client.status_details = &slot->details;
    assert_int_equal(grpc_call_start_batch(slot->call, ops, 6, slot, NULL), GRPC_CALL_OK);
}

static void flood_finish(flood_slot *slot)
{
    grpc_slice_unref(slot->details);
    if (slot->response != NULL)
        grpc_byte_buffer_destroy(slot->response);
    grpc_byte_buffer_destroy(slot->request);
    grpc_metadata_array_destroy(&slot->initial);
    grpc_metadata_array_destroy(&slot->trailing);
    grpc_call_unref(slot->call);
}

/* Sends n copies of request to path, in_flight at a time; counts[s] gets the
 * number of calls that ended with status s. */
static void flood(grpc_channel *channel, const char *path, const bytes *request, int n,
                  int in_flight, int counts[N_STATUSES])
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    flood_slot *slots = calloc((size_t)in_flight, sizeof *slots);
    assert_non_null(slots);
    memset(counts, 0, sizeof(int) * N_STATUSES);
    int n_started = 0, n_done = 0;
    for (; n_started < n && n_started < in_flight; n_started++)
        flood_start(channel, cq, &slots[n_started], path, request);
    while (n_done < n) {
        grpc_event event = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        assert_int_equal(event.type, GRPC_OP_COMPLETE);
        flood_slot *slot = event.tag;
        if (slot->status >= 0 && slot->status < N_STATUSES)
            counts[slot->status]++;
        flood_finish(slot);
        n_done++;
        if (n_started < n) {
            flood_start(channel, cq, slot, path, request);
            n_started++;
        }
    }
    free(slots);
    raw_queue_destroy(cq, GRPC_CQ_NEXT);
}

static void expect_flood(const char *path, const bytes *request, int n, grpc_status_code expected,
                         const char *what)
{
    int counts[N_STATUSES];
    flood(the.channel, path, request, n, FLOOD_IN_FLIGHT, counts);
    if (counts[expected] != n) {
        for (int s = 0; s < N_STATUSES; s++)
            if (counts[s] > 0)
                print_message("%s: %d calls ended with status %d\n", what, counts[s], s);
        fail_msg("%s: %d of %d calls ended with status %d", what, counts[expected], n, expected);
    }
}

/* ---- Raw sockets ---- */

static int connect_to_server(void)
{
    return h2_connect_loopback(the.server.port);
}

/* ---- Fixture ---- */

static int setup(void **state)
{
    (void)state;
    memset(&the, 0, sizeof the);
    the.dir = testutil_make_temp_dir();
    /* Idle connections need descriptors: raise the soft limit (inherited by the server). */
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 4096) {
        limit.rlim_cur = limit.rlim_max < 4096 ? limit.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    char log[1100], db[1100];
    snprintf(log, sizeof log, "%s/server.log", the.dir);
    snprintf(db, sizeof db, "ORDERS_SQLITE_DBNAME=%s/orders.db", the.dir);
    /* Orders as a node of the example system, on SQLite, its leaders and
     * follower nowhere (port 1): Prompts from its leaders are valid and each
     * one asks for a pull that fails and backs off. */
    const char *settings[8] = {
        "APPLICATION_TOPIC=eventsourcing_grpc.example:Orders",
        "SYSTEM_TOPIC=eventsourcing_grpc.example:system",
        "ORDERS_GRPC_SERVER_ADDRESS=localhost:0",
        "RESERVATIONS_GRPC_SERVER_ADDRESS=localhost:1",
        "PAYMENTS_GRPC_SERVER_ADDRESS=localhost:1",
        "PERSISTENCE_MODULE=eventsourcing.sqlite",
        db,
    };
    size_t n_settings = 0;
    while (settings[n_settings] != NULL)
        n_settings++;
    char asan[1200];
    if (server_asan_setting(asan, sizeof asan))
        settings[n_settings++] = asan;
    server_start(&the.server, log, settings, n_settings);
    snprintf(the.target, sizeof the.target, "localhost:%d", the.server.port);
    the.channel = raw_channel(the.target, NULL);
    assert_ping_ok(the.target);
    /* Warm up: some orders and calls, so that the baseline holds the
     * allocator's working set and gRPC's per-connection state. */
    bytes create = method_request("create_new_order", "[]", "{}");
    expect_flood(PATH_CALL, &create, 200, GRPC_STATUS_OK, "warm-up");
    bytes ping = {0};
    expect_flood(PATH_PING, &ping, 2000, GRPC_STATUS_OK, "warm-up pings");
    bytes_free(&create);
    the.baseline_kib = process_rss_kib(the.server.pid);
    print_message("server RSS after warm-up: %ld KiB\n", the.baseline_kib);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    grpc_channel_destroy(the.channel);
    int status = server_stop(&the.server);
    char *log = read_text_file(the.server.log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the server did not stop cleanly (wait status %d):\n%s", status, log);
    free(log);
    testutil_remove_tree(the.dir);
    free(the.dir);
    return 0;
}

/* ---- Tests ---- */

/* The documented maximum, ESG_GRPC_MAX_MESSAGE_BYTES: at it a message is
 * read (and refused as malformed), one byte over it RESOURCE_EXHAUSTED, on
 * every method; so are far bigger ones, and a compressed message that only
 * becomes too big once inflated. */
static void test_messages_over_the_maximum(void **state)
{
    (void)state;
    bytes at_max = {.data = calloc(1, ESG_GRPC_MAX_MESSAGE_BYTES + 1),
                    .len = ESG_GRPC_MAX_MESSAGE_BYTES};
    assert_non_null(at_max.data);
    const char *paths[] = {PATH_PING,          PATH_CALL,      PATH_PROMPT,
                           PATH_NOTIFICATIONS, PATH_POSITIONS, "/grpc.health.v1.Health/Check"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        at_max.len = ESG_GRPC_MAX_MESSAGE_BYTES; /* zero bytes: field number 0 is malformed */
        expect_status(paths[i], &at_max, GRPC_STATUS_INVALID_ARGUMENT, "malformed", paths[i]);
        at_max.len = ESG_GRPC_MAX_MESSAGE_BYTES + 1;
        expect_status(paths[i], &at_max, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, paths[i]);
    }
    free(at_max.data);
    assert_alive();

    /* 64 MiB three times, then 1 GiB: gRPC 1.51 takes in a whole message
     * before comparing it with the maximum, so the server's memory quota
     * (128 MiB) is what stops these: the stream is reset, RESOURCE_EXHAUSTED.
     * Without the quota the server's peak grew by the message's size. */
    process_reset_peak_rss(the.server.pid);
    long peak_before = process_peak_rss_kib(the.server.pid);
    char details[512];
    for (int i = 0; i < 4; i++) {
        size_t size = i < 3 ? (size_t)64 << 20 : (size_t)1 << 30;
        grpc_status_code status = zeros_call(the.channel, PATH_CALL, size, details, sizeof details);
        if (status != GRPC_STATUS_RESOURCE_EXHAUSTED)
            fail_msg("a %zu MiB message: status %d '%s'", size >> 20, status, details);
    }
    assert_alive();
    long peak_after = process_peak_rss_kib(the.server.pid);
    print_message("server peak RSS before 64 MiB and 1 GiB messages %ld KiB, after %ld KiB\n",
                  peak_before, peak_after);
    assert_true(peak_after - peak_before < RSS_FACTOR * 512 * 1024);

#if !defined(__SANITIZE_THREAD__)
    /* (Not under TSan: zlib, called by gRPC's threads, reads what this thread
     * wrote through gRPC's hand-over, which TSan cannot see.) */
    /* A compression bomb: 256 MiB of zeros that the client gzips to ~256 KiB.
     * gRPC 1.51 would inflate it whole before comparing with the maximum, so
     * the server accepts no compressed messages: the peak memory shows it. */
    process_reset_peak_rss(the.server.pid);
    peak_before = process_peak_rss_kib(the.server.pid);
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                    .value.integer = GRPC_COMPRESS_GZIP};
    grpc_channel_args args = {1, &arg};
    grpc_channel_credentials *insecure = grpc_insecure_credentials_create();
    grpc_channel *gzip_channel = grpc_channel_create(the.target, insecure, &args);
    grpc_channel_credentials_release(insecure);
    for (int i = 0; i < 3; i++) {
        grpc_status_code status =
            zeros_call(gzip_channel, PATH_CALL, BOMB_BYTES, details, sizeof details);
        if (status != GRPC_STATUS_UNIMPLEMENTED || strstr(details, "disabled") == NULL)
            fail_msg("compression bomb: status %d '%s'", status, details);
    }
    grpc_channel_destroy(gzip_channel);
    assert_alive();
    peak_after = process_peak_rss_kib(the.server.pid);
    print_message("server peak RSS before the bombs %ld KiB, after %ld KiB\n", peak_before,
                  peak_after);
    assert_true(peak_after - peak_before < (long)(BOMB_BYTES >> 10) / 2);
#endif
    print_message("server RSS after oversized messages: %ld KiB\n",
                  process_rss_kib(the.server.pid));
}

static void notifications(const char *start, const char *limit, const char *stop,
                          grpc_status_code expected, const char *fragment)
{
    bytes b = {0};
    put_string(&b, 1, start);
    put_string(&b, 2, limit);
    put_string(&b, 3, stop);
    char what[200];
    snprintf(what, sizeof what, "GetNotifications start '%.40s' limit '%.40s' stop '%.40s'",
             start ? start : "(none)", limit ? limit : "(none)", stop ? stop : "(none)");
    expect_status(PATH_NOTIFICATIONS, &b, expected, fragment, what);
    bytes_free(&b);
}

/* Numbers at and past the ends of int64, signs, other bases and spellings. */
static void test_extreme_notification_numbers(void **state)
{
    (void)state;
    const char *int64_max = "9223372036854775807", *int64_min = "-9223372036854775808";
    notifications("1", int64_max, NULL, GRPC_STATUS_OK, NULL); /* capped at the page maximum */
    notifications(int64_max, "10", NULL, GRPC_STATUS_OK, NULL);
    notifications(int64_max, int64_max, NULL, GRPC_STATUS_OK, NULL);
    notifications(int64_max, int64_max, int64_max, GRPC_STATUS_OK, NULL);
    notifications("1", "10", int64_max, GRPC_STATUS_OK, NULL);
    notifications("100", "10", "1", GRPC_STATUS_OK, NULL); /* stop before start: empty */
    notifications(int64_min, "10", NULL, GRPC_STATUS_INVALID_ARGUMENT, "start must be >= 1");
    notifications("1", int64_min, NULL, GRPC_STATUS_INVALID_ARGUMENT, "limit must be >= 1");
    notifications("1", "10", int64_min, GRPC_STATUS_INVALID_ARGUMENT, "stop must be >= 1");
    notifications("9223372036854775808", "10", NULL, GRPC_STATUS_INVALID_ARGUMENT, "whole number");
    notifications("1", "-9223372036854775809", NULL, GRPC_STATUS_INVALID_ARGUMENT, "whole number");
    const char *bad[] = {"+5", "0x10", "5 ",  "\xef\xbc\x95", "1.0", "--1",
                         "-",  "NaN",  "1e9", "5\n",          "\t5", "0b1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        notifications(bad[i], "10", NULL, GRPC_STATUS_INVALID_ARGUMENT, "whole number");
        notifications("1", bad[i], NULL, GRPC_STATUS_INVALID_ARGUMENT, "whole number");
        notifications("1", "10", bad[i], GRPC_STATUS_INVALID_ARGUMENT, "whole number");
    }
    notifications(NULL, NULL, NULL, GRPC_STATUS_INVALID_ARGUMENT, "start");
    /* A number of 100,000 digits, and a request with 50,000 topics. */
    char *digits = malloc(100001);
    memset(digits, '9', 100000);
    digits[100000] = '\0';
    notifications("1", digits, NULL, GRPC_STATUS_INVALID_ARGUMENT, "whole number");
    free(digits);
    bytes b = {0};
    put_string(&b, 1, "1");
    put_string(&b, 2, "10");
    char topic[64];
    for (int i = 0; i < 50000; i++) {
        snprintf(topic, sizeof topic, "nope:Topic%d", i);
        put_string(&b, 4, topic);
    }
    char details[512];
    grpc_status_code status = call_status(PATH_NOTIFICATIONS, &b, details, sizeof details);
    print_message("50,000 topics: status %d '%s'\n", status, details);
    if (status != GRPC_STATUS_OK && status != GRPC_STATUS_INVALID_ARGUMENT)
        fail_msg("50,000 topics: status %d '%s'", status, details);
    bytes_free(&b);
    assert_alive();
}

/* Paths the server does not serve: UNIMPLEMENTED, whatever they look like. */
static void test_unknown_paths(void **state)
{
    (void)state;
    bytes empty = {0};
    char long_path[4100] = "/eventsourcing_grpc.Application/";
    memset(long_path + strlen(long_path), 'x', 4000);
    long_path[4090] = '\0';
    const char *paths[] = {
        "/nope.Service/Ping",
        "/eventsourcing_grpc.Application/ping",
        "/eventsourcing_grpc.Application/Ping/extra",
        "/eventsourcing_grpc.Application/",
        "/eventsourcing_grpc.application/Ping",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInf",
        "/grpc.reflection.v2.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/List",
        "/",
        "/../../etc/passwd",
        "/eventsourcing_grpc.Application/CallApplicationMethod\xff",
        long_path,
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_status(paths[i], &empty, GRPC_STATUS_UNIMPLEMENTED, NULL, paths[i]);
    assert_alive();
}

/* Reflection streams given one message that is not a request: an in-band error, then OK. */
static void test_reflection_garbage(void **state)
{
    (void)state;
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x3a, 0x01};
    bytes request = {(uint8_t *)garbage, sizeof garbage, sizeof garbage};
    expect_status(PATH_REFLECTION_V1, &request, GRPC_STATUS_OK, NULL, "v1 garbage");
    expect_status(PATH_REFLECTION_V1ALPHA, &request, GRPC_STATUS_OK, NULL, "v1alpha garbage");
    assert_alive();
}

/* Only the application's registered methods can be called: not private
 * ones, not C functions of the program, not another application's. */
static void test_unregistered_methods(void **state)
{
    (void)state;
    char long_name[70000];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *names[] = {"",
                           "_get_order",
                           "__init__",
                           "__class__",
                           "esg_application_free",
                           "esg_application_call_json",
                           "system",
                           "main",
                           "free",
                           "repository",
                           "save",
                           "notification_log",
                           "pull_and_process",
                           "policy",
                           "Create_New_Order",
                           "create_new_order ",
                           " create_new_order",
                           "create_new_order()",
                           "create_new_order\n",
                           "get_order.__globals__",
                           "create_counter", /* the user example's, not this application's */
                           "create_reservation",
                           "\xff\xfe",
                           long_name};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bytes request = method_request(names[i], "[]", "{}");
        char what[100];
        snprintf(what, sizeof what, "method '%.60s'", names[i]);
        expect_status(PATH_CALL, &request, GRPC_STATUS_UNIMPLEMENTED, "has no method", what);
        bytes_free(&request);
    }
    assert_alive();
}

/* A JSON text made of prefix repeated n times, middle, suffix repeated n times. */
static char *nested(const char *prefix, const char *middle, const char *suffix, size_t n)
{
    size_t lp = strlen(prefix), lm = strlen(middle), ls = strlen(suffix);
    char *text = malloc(n * (lp + ls) + lm + 1);
    assert_non_null(text);
    char *p = text;
    for (size_t i = 0; i < n; i++, p += lp)
        memcpy(p, prefix, lp);
    memcpy(p, middle, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += ls)
        memcpy(p, suffix, ls);
    *p = '\0';
    return text;
}

/* "[item,item,...]" with n items. */
static char *wide_array(const char *item, size_t n)
{
    size_t item_len = strlen(item);
    char *text = malloc(n * (item_len + 1) + 2);
    assert_non_null(text);
    char *p = text;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(p, item, item_len);
        p += item_len;
        *p++ = i + 1 < n ? ',' : ']';
    }
    *p = '\0';
    return text;
}

static void expect_call(const char *method, const char *args, const char *kwargs,
                        grpc_status_code expected, const char *what)
{
    bytes request = method_request(method, args, kwargs);
    expect_status(PATH_CALL, &request, expected, NULL, what);
    bytes_free(&request);
}

/* Invalid JSON, JSON nested far deeper than the decoder's limit, very wide
 * JSON, and JSON of the wrong types: INVALID_ARGUMENT, never a crash. */
static void test_hostile_json(void **state)
{
    (void)state;
    const char *invalid[] = {"[",          "]",           "[1,]",       "[1] x",
                             "[01]",       "[NaN]",       "[Infinity]", "[\"\\ud800\"]",
                             "[\"\xff\"]", "[\"a\x01\"]", "['a']",      "[1e999999]",
                             "[-]",        "[\"\\u00\"]", "{\"a\"}",    "\xef\xbb\xbf[]"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char what[100];
        snprintf(what, sizeof what, "args '%s'", invalid[i]);
        expect_call("get_order", invalid[i], "{}", GRPC_STATUS_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "kwargs '%s'", invalid[i]);
        expect_call("create_new_order", "[]", invalid[i], GRPC_STATUS_INVALID_ARGUMENT, what);
    }
    /* An embedded NUL inside the JSON bytes. */
    bytes request = {0};
    put_string(&request, 1, "get_order");
    put_field(&request, 2, "[1]\0[2]", 7);
    expect_status(PATH_CALL, &request, GRPC_STATUS_INVALID_ARGUMENT, NULL, "NUL in args");
    bytes_free(&request);

    /* Deep: 50,000 arrays, 30,000 objects, 10,000 typed values, 2,000 arrays, all past the
     * decoder's limit (512), which stops the parse there; and a million arrays (2 MB), refused
     * before decoding by the cap on values. */
    const struct {
        const char *prefix, *middle, *suffix;
        size_t depth;
        bool as_kwargs;
        const char *fragment; /* of the status message */
    } deep[] = {{"[", "", "]", 50000, false, "nested deeper than 512"},
                {"{\"a\":", "1", "}", 30000, true, "nested deeper than 512"},
                {"[{\"_type_\":\"uuid_hex\",\"_data_\":", "1", "}]", 10000, false,
                 "nested deeper than 512"},
                {"[", "", "]", 1000000, false, "more than 100000 JSON values"},
                {"[", "", "]", 2000, false, "nested deeper than 512"}};
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        char *text = nested(deep[i].prefix, deep[i].middle, deep[i].suffix, deep[i].depth);
        char what[100];
        snprintf(what, sizeof what, "JSON %zu deep", deep[i].depth);
        bytes b = deep[i].as_kwargs ? method_request("get_order", "[]", text)
                                    : method_request("get_order", text, "{}");
        expect_status(PATH_CALL, &b, GRPC_STATUS_INVALID_ARGUMENT, deep[i].fragment, what);
        bytes_free(&b);
        free(text);
    }

    /* Wide: a 4 MB array of 1.3 million empty arrays. Decoded, it would take
     * ~220 MB, so a call may pass at most 100,000 JSON values: refused before
     * decoding, the server's peak memory does not move. At the cap exactly,
     * the values are decoded (and refused by the method). */
    process_reset_peak_rss(the.server.pid);
    long peak_before = process_peak_rss_kib(the.server.pid);
    char *wide = wide_array("[]", 1300000);
    bytes wide_request = method_request("get_order", wide, "{}");
    for (int i = 0; i < 3; i++)
        expect_status(PATH_CALL, &wide_request, GRPC_STATUS_INVALID_ARGUMENT,
                      "more than 100000 JSON values", "wide args");
    bytes_free(&wide_request);
    free(wide);
    long peak_after = process_peak_rss_kib(the.server.pid);
    print_message("wide JSON: server peak RSS before %ld KiB, after %ld KiB\n", peak_before,
                  peak_after);
    assert_true(peak_after - peak_before < RSS_FACTOR * 64 * 1024);
    char *at_cap = wide_array("1", 100000); /* 100,000 separators: decoded */
    expect_call("get_order", at_cap, "{}", GRPC_STATUS_INVALID_ARGUMENT, "at the cap");
    free(at_cap);
    at_cap = wide_array("{}", 50000); /* and kwargs count too */
    bytes over = method_request("get_order", at_cap, "{\"a\":1}");
    expect_status(PATH_CALL, &over, GRPC_STATUS_INVALID_ARGUMENT, "more than 100000 JSON values",
                  "over the cap with kwargs");
    bytes_free(&over);
    free(at_cap);
    char *long_string = nested("a", "", "", 3000000);
    char *quoted = malloc(3000010);
    snprintf(quoted, 3000010, "[\"%s\"]", long_string);
    expect_call("get_order", quoted, "{}", GRPC_STATUS_INVALID_ARGUMENT, "long string");
    free(long_string);
    free(quoted);

    /* Wrong types for args (an array) and kwargs (an object), and for the arguments. */
    const char *wrong_args[] = {"{}", "1", "null", "\"x\"", "true", "{\"order_id\":1}", "1.5"};
    for (size_t i = 0; i < sizeof wrong_args / sizeof wrong_args[0]; i++) {
        char what[100];
        snprintf(what, sizeof what, "args of type '%s'", wrong_args[i]);
        expect_call("create_new_order", wrong_args[i], "{}", GRPC_STATUS_INVALID_ARGUMENT, what);
    }
    const char *wrong_kwargs[] = {"[]", "1", "null", "\"x\"", "false", "[[\"a\",1]]"};
    for (size_t i = 0; i < sizeof wrong_kwargs / sizeof wrong_kwargs[0]; i++) {
        char what[100];
        snprintf(what, sizeof what, "kwargs of type '%s'", wrong_kwargs[i]);
        expect_call("create_new_order", "[]", wrong_kwargs[i], GRPC_STATUS_INVALID_ARGUMENT, what);
    }
    const char *wrong_ids[] = {"[1]",
                               "[null]",
                               "[[]]",
                               "[{}]",
                               "[\"00000000000000000000000000000001\"]",
                               "[{\"_type_\":\"uuid_hex\"}]",
                               "[{\"_data_\":\"00000000000000000000000000000001\"}]",
                               "[{\"_type_\":\"uuid_hex\",\"_data_\":1}]",
                               "[{\"_type_\":\"uuid_hex\",\"_data_\":\"zz\"}]",
                               "[{\"_type_\":1,\"_data_\":\"00000000000000000000000000000001\"}]",
                               "[{\"_type_\":\"decimal_str\",\"_data_\":\"1e999999999\"}]",
                               "[{\"_type_\":\"datetime_iso\",\"_data_\":\"9999-99-99\"}]"};
    for (size_t i = 0; i < sizeof wrong_ids / sizeof wrong_ids[0]; i++) {
        char what[120];
        snprintf(what, sizeof what, "order id '%s'", wrong_ids[i]);
        expect_call("get_order", wrong_ids[i], "{}", GRPC_STATUS_INVALID_ARGUMENT, what);
    }
    expect_call("get_order", "[]", "{\"order_id\":1}", GRPC_STATUS_INVALID_ARGUMENT, "kwarg 1");
    expect_call("get_order", "[]", "{\"order_id\":{\"_type_\":\"uuid_hex\"}}",
                GRPC_STATUS_INVALID_ARGUMENT, "kwarg typed");
    assert_alive();
    print_message("server RSS after hostile JSON: %ld KiB\n", process_rss_kib(the.server.pid));
}

/* 10,000 Prompts at once from a leader (each asks for a pull that cannot
 * happen), from names that are not leaders, and floods of other calls. */
static void test_floods(void **state)
{
    (void)state;
    bytes from_leader = {0}, from_stranger = {0}, empty = {0};
    put_string(&from_leader, 1, "Payments");
    put_string(&from_stranger, 1, "Mallory");
    bytes bad_json = method_request("get_order", "[[[[", "{}");
    bytes page = {0};
    put_string(&page, 1, "1");
    put_string(&page, 2, "1000");
    long after_kib[4];
    for (int round = 0; round < 4; round++) {
        expect_flood(PATH_PROMPT, &from_leader, N_FLOOD, GRPC_STATUS_OK, "Prompts from a leader");
        expect_flood(PATH_PROMPT, &from_stranger, N_OTHER_FLOOD, GRPC_STATUS_INVALID_ARGUMENT,
                     "Prompts from a stranger");
        expect_flood(PATH_PING, &empty, N_OTHER_FLOOD, GRPC_STATUS_OK, "Pings");
        expect_flood(PATH_CALL, &bad_json, N_OTHER_FLOOD / 10, GRPC_STATUS_INVALID_ARGUMENT,
                     "bad JSON calls");
        expect_flood(PATH_NOTIFICATIONS, &page, N_OTHER_FLOOD / 10, GRPC_STATUS_OK, "pages");
        expect_flood("/nope.Service/Nope", &empty, N_OTHER_FLOOD / 10, GRPC_STATUS_UNIMPLEMENTED,
                     "unknown paths");
        assert_alive();
        after_kib[round] = process_rss_kib(the.server.pid);
        print_message("server RSS after flood round %d: %ld KiB\n", round + 1, after_kib[round]);
    }
    bytes_free(&from_leader);
    bytes_free(&from_stranger);
    bytes_free(&bad_json);
    bytes_free(&page);
    /* The first two rounds grow the allocator's pools to the flood's working set (one round was
     * not always enough on a loaded machine: +30 MiB in round two once); the last two, 66,000
     * more calls, must not grow it much further: a leak of 1 KiB a call would add 64 MiB.
     * (Measured: 2 to 20 MiB, which is allocator noise; 8 rounds plateau.) */
    assert_true(after_kib[3] - after_kib[1] < FLOOD_GROWTH_KIB);
}

/* Hundreds of connections held open doing nothing: half silent (not even the
 * HTTP/2 preface), half with a preface and SETTINGS and then silent. */
static void test_idle_connections(void **state)
{
    (void)state;
    int fds[N_IDLE_CONNECTIONS];
    for (int i = 0; i < N_IDLE_CONNECTIONS; i++) {
        fds[i] = connect_to_server();
        if (i % 2 == 1) {
            h2_send_all(fds[i], h2_client_preface, strlen(h2_client_preface));
            h2_send_all(fds[i], h2_empty_settings, sizeof h2_empty_settings);
        }
    }
    /* A new client still gets through while they are all open. */
    assert_ping_ok(the.target);
    assert_alive();
    print_message("server RSS with %d idle connections: %ld KiB\n", N_IDLE_CONNECTIONS,
                  process_rss_kib(the.server.pid));
    for (int i = 0; i < N_IDLE_CONNECTIONS; i++)
        close(fds[i]);
    assert_alive();
}

/* Bytes that are not HTTP/2: the server closes the connection and lives on. */
static void test_garbage_bytes(void **state)
{
    (void)state;
    uint8_t noise[65536];
    unsigned seed = 12345; /* fixed: the same bytes every run */
    for (size_t i = 0; i < sizeof noise; i++) {
        seed = seed * 1103515245u + 12345u;
        noise[i] = (uint8_t)(seed >> 16);
    }
    /* A frame header announcing 16 MiB of DATA on stream 1, then a few bytes. */
    static const uint8_t huge_frame[] = {0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 1, 2, 3};
    /* HEADERS on stream 1 whose HPACK block refers to a dynamic table entry that does not exist. */
    static const uint8_t bad_hpack[] = {0, 0, 1, 1, 5, 0, 0, 0, 1, 0xff};
    /* A TLS ClientHello start on a plaintext port. */
    static const uint8_t tls_hello[] = {0x16, 3, 1, 0, 0xa5, 1, 0, 0, 0xa1, 3, 3};
    static const char http1[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char half_preface[] = "PRI * HTTP/2.0\r\n";
    struct {
        const char *what;
        bool with_preface;
        const void *data;
        size_t len;
    } cases[] = {
        {"random bytes", false, noise, sizeof noise},
        {"HTTP/1.1", false, http1, strlen(http1)},
        {"TLS ClientHello", false, tls_hello, sizeof tls_hello},
        {"random bytes after the preface", true, noise, sizeof noise},
        {"a 16 MiB frame", true, huge_frame, sizeof huge_frame},
        {"bad HPACK", true, bad_hpack, sizeof bad_hpack},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = connect_to_server();
        if (cases[i].with_preface) {
            h2_send_all(fd, h2_client_preface, strlen(h2_client_preface));
            h2_send_all(fd, h2_empty_settings, sizeof h2_empty_settings);
        }
        h2_send_all(fd, cases[i].data, cases[i].len);
        if (!h2_wait_for_close(fd, 60000))
            fail_msg("%s: the server kept the connection open", cases[i].what);
        close(fd);
        assert_alive();
    }
    /* Half a preface, then the client hangs up. */
    int fd = connect_to_server();
    h2_send_all(fd, half_preface, strlen(half_preface));
    close(fd);
    assert_alive();
}

/* Opens n connections to port that send the HTTP/2 preface and stay idle. */
static void open_idle(int port, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = h2_connect_loopback(port); /* the kernel's backlog takes what the server cannot */
        h2_send_all(fds[i], h2_client_preface, strlen(h2_client_preface));
        h2_send_all(fds[i], h2_empty_settings, sizeof h2_empty_settings);
    }
}

static void stop_cleanly(server_process *server, const char *log)
{
    int status = server_stop(server);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *text = read_text_file(log);
        fail_msg("the server did not stop cleanly (wait status %d):\n%s", status, text);
    }
}

/* Each connection takes a descriptor, and gRPC 1.51 stops accepting for good
 * once accept() fails with EMFILE (grpc/grpc#16058, #20418). The server
 * raises its soft descriptor limit to the hard one at start: started with a
 * soft limit of 128, it serves 300 idle connections and new clients. With
 * the hard limit at 128 too, it runs out: it must survive, and stop cleanly;
 * whether it accepts again afterwards is printed, not asserted (it does not,
 * the known gRPC bug). */
static void test_descriptor_exhaustion(void **state)
{
    (void)state;
    enum { N_DESCRIPTORS = 128, N_CONNECTIONS = 300 };
    const char *settings[] = {"APPLICATION_TOPIC=eventsourcing_grpc.example:Orders",
                              "ORDERS_GRPC_SERVER_ADDRESS=localhost:0"};
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_max < 2 * N_CONNECTIONS) {
        print_message("the hard descriptor limit is only %ld\n", (long)files.rlim_max);
        skip();
    }
    int fds[N_CONNECTIONS];
    char log[1100], target[64];
    for (int is_hard = 0; is_hard <= 1; is_hard++) {
        snprintf(log, sizeof log, "%s/descriptors-%d.log", the.dir, is_hard);
        files.rlim_cur = N_DESCRIPTORS;
        if (is_hard)
            files.rlim_max = N_DESCRIPTORS;
        server_process server;
        server_start_with_files_limit(&server, log, settings, 2, &files);
        snprintf(target, sizeof target, "localhost:%d", server.port);
        assert_ping_ok(target);
        open_idle(server.port, fds, N_CONNECTIONS);
        if (!is_hard) {
            assert_ping_ok(target); /* its limit is the hard one, not 128 */
            server_assert_alive(&server);
            for (int i = 0; i < N_CONNECTIONS; i++)
                close(fds[i]);
            assert_ping_ok(target);
        } else {
            server_assert_alive(&server);
            for (int i = 0; i < N_CONNECTIONS; i++)
                close(fds[i]);
            grpc_channel *channel = raw_channel(target, NULL);
            raw_reply reply;
            raw_call(channel, PATH_PING, NULL, 0, 2000, &reply);
            print_message("after running out of descriptors, a Ping: status %d '%s'\n",
                          reply.status, reply.details);
            raw_reply_clear(&reply);
            grpc_channel_destroy(channel);
            server_assert_alive(&server);
        }
        stop_cleanly(&server, log);
    }
}

/* After everything above the server's memory is back within a bound of
 * where it started, and it stops cleanly (checked by the teardown). */
static void test_memory_is_bounded(void **state)
{
    (void)state;
    long rss = process_rss_kib(the.server.pid);
    print_message("server RSS at the end: %ld KiB (baseline %ld KiB)\n", rss, the.baseline_kib);
    assert_true(rss - the.baseline_kib < END_GROWTH_KIB);
    assert_alive();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_over_the_maximum),
        cmocka_unit_test(test_extreme_notification_numbers),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_reflection_garbage),
        cmocka_unit_test(test_unregistered_methods),
        cmocka_unit_test(test_hostile_json),
        /* Before the floods and the idle connections: under ThreadSanitizer in CI the server
         * once left a new connection unread for 60 s right after them (see issue 21's notes). */
        cmocka_unit_test(test_garbage_bytes),
        cmocka_unit_test(test_floods),
        cmocka_unit_test(test_idle_connections),
        cmocka_unit_test(test_descriptor_exhaustion),
        cmocka_unit_test(test_memory_is_bounded),
    };
    return raw_run_grpc_tests("hostile", tests, sizeof tests / sizeof tests[0], setup, teardown);
}
