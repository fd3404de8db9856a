/* floor_server ADDRESS: the floor the benchmarks measure against. A minimal
 * server on the same gRPC C core as ours, built the same way (one completion
 * queue, two worker threads, registered methods, local credentials on both
 * loopback families), answering Ping and CallApplicationMethod of
 * eventsourcing_grpc.Application with a constant reply, without decoding
 * the request, and GetNotifications with a constant page of 10, 100 or 1,000
 * notifications shaped as the example's Order.Created ones (the same bytes a
 * page of ours holds, give or take the digits of the ids), chosen by the
 * request's limit, the only field it reads. Whatever our server costs above
 * this is ours. Stops on SIGTERM or SIGINT. */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_WORKERS 2           /* as our server's default */
#define REQUESTS_PER_METHOD 8 /* as our server */

enum { METHOD_PING, METHOD_CALL, METHOD_PAGE, N_METHODS };

static const char *const method_paths[N_METHODS] = {
    "/eventsourcing_grpc.Application/Ping",
    "/eventsourcing_grpc.Application/CallApplicationMethod",
    "/eventsourcing_grpc.Application/GetNotifications",
};

/* MethodReply{data: <the JSON of a UUID, as create_new_order returns>}:
 * field 1, length-delimited, then the bytes. Empty is zero bytes. */
static const char call_json[] = "{\"_type_\": \"uuid_hex\", \"_data_\": "
                                "\"6f8b3e5c2a1d4b7e9c0f1a2b3c4d5e6f\"}";
static unsigned char call_reply[2 + sizeof call_json];
static size_t call_reply_len;

/* NotificationsReply pages of page_sizes[i] notifications, made at start. */
#define N_PAGES 3
static const int page_sizes[N_PAGES] = {10, 100, 1000};
static unsigned char *pages[N_PAGES];
static size_t page_lens[N_PAGES];

/* An example Order.Created's state, as the example records it. */
static const char created_state[] =
    "{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2026-11-26T08:31:39.184888+00:00\"},"
    "\"originator_topic\":\"eventsourcing_grpc.example:Order\"}";

/* Appends a varint. */
static size_t put_varint(unsigned char *out, size_t value)
{
    size_t n = 0;
    for (; value >= 0x80; value >>= 7)
        out[n++] = (unsigned char)(value | 0x80);
    out[n++] = (unsigned char)value;
    return n;
}

/* Appends field (wire type 2) holding len bytes of data. */
static size_t put_bytes(unsigned char *out, int field, const void *data, size_t len)
{
    size_t n = put_varint(out, (size_t)field << 3 | 2);
    n += put_varint(out + n, len);
    memcpy(out + n, data, len);
    return n + len;
}

/* A page of n notifications with ids from 501, as our server's from the middle of its log. */
static unsigned char *make_page(int n, size_t *len)
{
    unsigned char *page = malloc((size_t)n * 512);
    unsigned char item[512];
    static const char topic[] = "eventsourcing_grpc.example:Order.Created";
    size_t at = 0;
    for (int i = 0; page != NULL && i < n; i++) {
        char id[24], originator[40];
        snprintf(id, sizeof id, "%d", 501 + i);
        snprintf(originator, sizeof originator, "%08x1d4b4e9c8f0a1b2c3d4e5f60", 0x6f8b0000 + i);
        size_t k = put_bytes(item, 1, id, strlen(id));
        k += put_bytes(item + k, 2, originator, 32);
        k += put_bytes(item + k, 3, "1", 1);
        k += put_bytes(item + k, 4, topic, sizeof topic - 1);
        k += put_bytes(item + k, 5, created_state, sizeof created_state - 1);
        at += put_bytes(page + at, 1, item, k);
    }
    *len = at;
    return page;
}

/* The page the request asks for by its limit (field 2, a decimal string), else the first. */
static int page_of(grpc_byte_buffer *request)
{
    int chosen = 0;
    grpc_byte_buffer_reader reader;
    if (request == NULL || !grpc_byte_buffer_reader_init(&reader, request))
        return chosen;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    const unsigned char *p = GRPC_SLICE_START_PTR(all), *end = p + GRPC_SLICE_LENGTH(all);
    while (p + 2 <= end && (p[0] & 7) == 2 && p[1] < 0x80 && p + 2 + p[1] <= end) {
        if (p[0] >> 3 == 2) {
            char text[16] = {0};
            memcpy(text, p + 2, p[1] < sizeof text ? p[1] : sizeof text - 1);
            int limit = atoi(text);
            for (int i = 0; i < N_PAGES; i++)
                if (page_sizes[i] == limit)
                    chosen = i;
        }
        p += 2 + p[1];
    }
    grpc_slice_unref(all);
    return chosen;
}

typedef struct floor_call {
    int method;                   /* METHOD_PING or METHOD_CALL */
    bool is_replying;             /* the tag now means the reply batch completed */
    grpc_call *call;              /* owned once received */
    gpr_timespec deadline;        /* filled by the request */
    grpc_metadata_array metadata; /* the request's metadata */
    grpc_byte_buffer *request;    /* received payload, may be NULL */
    grpc_byte_buffer *response;   /* sent payload, until the batch completes */
    int is_cancelled;             /* filled by RECV_CLOSE_ON_SERVER */
} floor_call;

static grpc_server *server;
static grpc_completion_queue *cq;
static void *methods[N_METHODS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static bool is_stopping;  /* under lock: no more requests posted */
static bool is_shut_down; /* under lock: the shutdown tag arrived */
static int shutdown_tag;

static void post_request(int method)
{
    pthread_mutex_lock(&lock);
    bool stopping = is_stopping;
    pthread_mutex_unlock(&lock);
    if (stopping)
        return;
    floor_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->method = method;
    grpc_metadata_array_init(&c->metadata);
    if (grpc_server_request_registered_call(server, methods[method], &c->call, &c->deadline,
                                            &c->metadata, &c->request, cq, cq, c) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->metadata);
        free(c);
    }
}

static void free_call(floor_call *c)
{
    if (c->call != NULL)
        grpc_call_unref(c->call);
    grpc_byte_buffer_destroy(c->request);
    grpc_byte_buffer_destroy(c->response);
    grpc_metadata_array_destroy(&c->metadata);
    free(c);
}

static void reply(floor_call *c)
{
    int page = c->method == METHOD_PAGE ? page_of(c->request) : 0;
    grpc_slice slice =
        c->method == METHOD_CALL   ? grpc_slice_from_static_buffer(call_reply, call_reply_len)
        : c->method == METHOD_PAGE ? grpc_slice_from_static_buffer(pages[page], page_lens[page])
                                   : grpc_empty_slice();
    c->response = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->response;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &c->is_cancelled;
    c->is_replying = true;
    if (grpc_call_start_batch(c->call, ops, 4, c, NULL) != GRPC_CALL_OK)
        free_call(c);
}

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event event =
            grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (event.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (event.type != GRPC_OP_COMPLETE)
            continue;
        if (event.tag == &shutdown_tag) {
            pthread_mutex_lock(&lock);
            is_shut_down = true;
            pthread_cond_broadcast(&changed);
            pthread_mutex_unlock(&lock);
            continue;
        }
        floor_call *c = event.tag;
        if (c->is_replying || !event.success) {
            free_call(c);
            continue;
        }
        post_request(c->method);
        reply(c);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: floor_server HOST:PORT (localhost:PORT listens on both "
                        "loopback families)\n");
        return 2;
    }
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    call_reply[0] = 0x0a; /* field 1, wire type 2 */
    call_reply[1] = (unsigned char)(sizeof call_json - 1);
    memcpy(call_reply + 2, call_json, sizeof call_json - 1);
    call_reply_len = 2 + sizeof call_json - 1;
    for (int i = 0; i < N_PAGES; i++)
        if ((pages[i] = make_page(page_sizes[i], &page_lens[i])) == NULL)
            return 4;

    grpc_init();
    grpc_arg args[1];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[0].value.integer = 0;
    grpc_channel_args channel_args = {1, args};
    server = grpc_server_create(&channel_args, NULL);
    cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server, cq, NULL);
    for (int m = 0; m < N_METHODS; m++)
        methods[m] = grpc_server_register_method(server, method_paths[m], NULL,
                                                 GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);

    /* The same credentials as our server for a localhost address. */
    const char *address = argv[1];
    const char *colon = strrchr(address, ':');
    int port = 0;
    grpc_server_credentials *credentials = grpc_local_server_credentials_create(LOCAL_TCP);
    if (colon != NULL && strncmp(address, "localhost:", 10) == 0) {
        char target[64];
        snprintf(target, sizeof target, "127.0.0.1:%s", colon + 1);
        port = grpc_server_add_http2_port(server, target, credentials);
        snprintf(target, sizeof target, "[::1]:%s", colon + 1);
        if (port > 0)
            grpc_server_add_http2_port(server, target, credentials);
    } else {
        port = grpc_server_add_http2_port(server, address, credentials);
    }
    grpc_server_credentials_release(credentials);
    if (port <= 0) {
        fprintf(stderr, "floor_server: cannot listen on %s\n", address);
        return 4;
    }
    grpc_server_start(server);
    for (int m = 0; m < N_METHODS; m++)
        for (int i = 0; i < REQUESTS_PER_METHOD; i++)
            post_request(m);
    pthread_t workers[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++)
        pthread_create(&workers[i], NULL, worker_main, NULL);

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);

    pthread_mutex_lock(&lock);
    is_stopping = true;
    pthread_mutex_unlock(&lock);
    grpc_server_shutdown_and_notify(server, cq, &shutdown_tag);
    grpc_server_cancel_all_calls(server);
    pthread_mutex_lock(&lock);
    while (!is_shut_down)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    grpc_server_destroy(server);
    grpc_completion_queue_shutdown(cq);
    for (int i = 0; i < N_WORKERS; i++)
        pthread_join(workers[i], NULL);
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    for (int i = 0; i < N_PAGES; i++)
        free(pages[i]);
    return 0;
}
