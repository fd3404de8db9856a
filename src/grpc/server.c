/* The gRPC application server: eventsourcing_grpc.Application and
 * grpc.health.v1.Health on gRPC's C core. One completion queue is drained by
 * a few worker threads; each call in flight is one server_call object whose
 * address (or the address of its close field) is the tag of its batches. */
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/grpc.h"
#include "esg/log.h"
#include "grpc/server_internal.h"

/* Workers of a server whose application's recorder waits for a disk or a network. */
#define BLOCKING_SERVER_THREADS 8
#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/credentials.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/wire.h"
#include "core/clock.h"
#include "core/alloc.h"

/* Requests kept posted per method, so that bursts find one waiting. */
#define REQUESTS_PER_METHOD 8
/* How long stop lets calls in flight finish before cancelling them. */
#define STOP_GRACE_MS 1000

static const char *const kind_paths[N_KINDS] = {
    ESG_PATH_PING,
    ESG_PATH_CALL,
    ESG_PATH_PROMPT,
    ESG_PATH_GET_NOTIFICATIONS,
    ESG_PATH_LEADER_POSITIONS,
    ESG_PATH_SUBSCRIBE,
    ESG_PATH_REFLECTION_V1ALPHA,
    ESG_PATH_REFLECTION_V1,
    ESG_PATH_HEALTH_CHECK,
    ESG_PATH_HEALTH_WATCH,
    NULL,
};

/* ---- Call objects ---- */

/* The tag for a batch or request of c, with everything written so far
 * released to the worker that will see it complete. */
static void *hand_over(server_call *c, batch_step step)
{
    atomic_fetch_add_explicit(&c->tags[step].handoffs, 1, memory_order_release);
    return &c->tags[step];
}

static void post_request(esg_server *server, call_kind kind, bool on_health_port);

static server_call *new_call(esg_server *server, call_kind kind, bool on_health_port)
{
    server_call *c = esg_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->server = server;
    c->kind = kind;
    c->on_health_port = on_health_port;
    for (int i = 0; i < N_BATCH_STEPS; i++) {
        c->tags[i].call = c;
        c->tags[i].step = (batch_step)i;
        atomic_init(&c->tags[i].handoffs, 0);
    }
    grpc_metadata_array_init(&c->metadata);
    grpc_call_details_init(&c->details);
    atomic_fetch_add(&server->n_objects, 1);
    return c;
}

static void free_call(server_call *c)
{
    esg_server *server = c->server;
    /* First: a listed call may be cancelled (under the list's lock) until it is unlisted. */
    unread_replies_remove(&server->unread, &c->unread);
    if (c->call != NULL)
        grpc_call_unref(c->call);
    grpc_byte_buffer_destroy(c->request); /* both accept NULL */
    grpc_byte_buffer_destroy(c->response);
    if (c->has_status_details)
        grpc_slice_unref(c->status_details);
    grpc_metadata_array_destroy(&c->metadata);
    grpc_call_details_destroy(&c->details);
    srv_subscription_free(c);
    if (c->is_received) {
        srv_count_handled(c);
        atomic_fetch_sub(&server->n_calls, 1);
    }
    atomic_fetch_sub(&server->n_objects, 1);
    esg_free(c);
}

/* Whether calls of kind read their requests themselves (streams), so none is read with them. */
static bool is_streaming(call_kind kind)
{
    return kind == KIND_HEALTH_WATCH || kind == KIND_REFLECTION_V1ALPHA ||
           kind == KIND_REFLECTION_V1 || kind == KIND_SUBSCRIBE;
}

static void post_request(esg_server *server, call_kind kind, bool on_health_port)
{
    grpc_server *grpc = on_health_port ? server->health_grpc : server->grpc;
    void *const *methods = on_health_port ? server->health_methods : server->methods;
    /* Under the lock, so that stop cannot shut the queue between the check and the request. */
    pthread_mutex_lock(&server->lock);
    server_call *c = server->is_stopping ? NULL : new_call(server, kind, on_health_port);
    if (c == NULL) {
        if (!server->is_stopping)
            esg_log(ESG_LOG_ERROR, esg_application_name(server->app),
                    "out of memory posting a request: fewer calls are taken at once");
        pthread_mutex_unlock(&server->lock);
        return;
    }
    grpc_call_error rc;
    if (kind == KIND_UNKNOWN)
        rc = grpc_server_request_call(grpc, &c->call, &c->details, &c->metadata, server->cq,
                                      server->cq, hand_over(c, STEP_REQUEST));
    else
        rc = grpc_server_request_registered_call(
            grpc, methods[kind], &c->call, &c->deadline, &c->metadata,
            is_streaming(kind) ? NULL : &c->request, server->cq, server->cq,
            hand_over(c, STEP_REQUEST));
    pthread_mutex_unlock(&server->lock);
    if (rc != GRPC_CALL_OK)
        free_call(c);
}

/* ---- Replies ---- */

/* Starts a batch of c tagged with step, counted while in flight. */
/* The caller holds server->lock. Once stop has shut the completion queue no
 * batch may start (gRPC asserts): a worker can still be finishing an event
 * that arrived just before the shutdown tag, so the check and the start are
 * made under the lock that stop holds while it shuts the queue. */
void srv_start_batch_locked(server_call *c, const grpc_op *ops, size_t n, batch_step step)
{
    if (c->server->is_queue_shut)
        return;
    atomic_fetch_add(&c->n_batches, 1);
    grpc_call_error rc = grpc_call_start_batch(c->call, ops, n, hand_over(c, step), NULL);
    if (rc != GRPC_CALL_OK) {
        esg_log(ESG_LOG_ERROR, esg_application_name(c->server->app),
                "gRPC refused a batch of a call (error %d)", (int)rc);
        atomic_fetch_sub(&c->n_batches, 1);
    }
}

void srv_start_batch(server_call *c, const grpc_op *ops, size_t n, batch_step step)
{
    pthread_mutex_lock(&c->server->lock);
    srv_start_batch_locked(c, ops, n, step);
    pthread_mutex_unlock(&c->server->lock);
}

void srv_start_stream(server_call *c, batch_step read_step, batch_step close_step)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->request;
    srv_start_batch(c, ops, 2, read_step);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &c->is_cancelled;
    srv_start_batch(c, ops, 1, close_step);
}

void srv_send_response(server_call *c, batch_step step)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->response;
    srv_start_batch(c, &op, 1, step);
}

/* Sends the reply (payload may be NULL for an error) and the status, and
 * waits for the client's close. Takes payload (esg_malloc'ed) in all cases. */
/* The request log, at debug level: a call's method, status, duration and peer. Never its
 * payload or its status message, which can quote arguments or event data. */
static void log_request(const server_call *c, grpc_status_code code)
{
    char *peer = grpc_call_get_peer(c->call);
    const char *path = kind_paths[c->kind];
    int path_len = path != NULL ? (int)strlen(path) : (int)GRPC_SLICE_LENGTH(c->details.method);
    if (path == NULL)
        path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    esg_log(ESG_LOG_DEBUG, esg_application_name(c->server->app), "%.*s %s in %.3f ms from %s",
            path_len > 200 ? 200 : path_len, path, esg_wire_status_name(code),
            esg_clock_seconds_since(&c->received_at) * 1e3, peer != NULL ? peer : "?");
    gpr_free(peer);
}

/* Lists c's reply of len bytes as unread until the call is over; older ones may go for it. */
static void list_unread(server_call *c, size_t len)
{
    if (len == 0)
        return; /* a Ping's: nothing to hold */
    if (unread_replies_add(&c->server->unread, &c->unread, c->call, len) > 0 &&
        !atomic_exchange(&c->server->has_cancelled_unread, true))
        esg_log(ESG_LOG_WARNING, esg_application_name(c->server->app),
                "cancelled calls whose replies were not read: unread replies went over %d MiB "
                "(said once)",
                ESG_GRPC_MAX_UNREAD_REPLY_BYTES >> 20);
}

void srv_reply(server_call *c, grpc_status_code code, const char *message, uint8_t *payload,
               size_t payload_len)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->has_sent_initial_metadata) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA; /* also for errors, or no status is sent */
        if (code == GRPC_STATUS_OK && !c->on_health_port) {
            ops[n].data.send_initial_metadata.count = c->server->n_reply_metadata;
            ops[n].data.send_initial_metadata.metadata = &c->server->reply_metadata;
        }
        n++;
    }
    if (code == GRPC_STATUS_OK) {
        c->response = esg_wire_buffer(payload ? payload : (const uint8_t *)"", payload_len);
        if (c->response == NULL) {
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            message = "out of memory";
        } else {
            ops[n].op = GRPC_OP_SEND_MESSAGE;
            ops[n++].data.send_message.send_message = c->response;
            list_unread(c, payload_len);
        }
    }
    esg_free(payload);
    srv_note_status(c, code);
    if (esg_log_is_on(ESG_LOG_DEBUG))
        log_request(c, code);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    if (message != NULL && code != GRPC_STATUS_OK) {
        c->status_details = grpc_slice_from_copied_string(message);
        c->has_status_details = true;
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->is_cancelled;
    srv_start_batch(c, ops, n, STEP_REPLY);
}

/* Replies with a protobuf-c message (packed here) or an error status. */
void srv_reply_message(server_call *c, esg_status rc, const esg_error *err,
                       const ProtobufCMessage *message)
{
    if (rc != ESG_OK) {
        srv_reply(c, esg_wire_status_to_grpc(rc), err->message, NULL, 0);
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *payload = esg_malloc(len ? len : 1);
    if (payload == NULL) {
        srv_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    protobuf_c_message_pack(message, payload);
    srv_reply(c, GRPC_STATUS_OK, NULL, payload, len);
}

/* Reads and unpacks the request; NULL (and an INVALID_ARGUMENT reply) if malformed. */
static ProtobufCMessage *unpack_request(server_call *c, const ProtobufCMessageDescriptor *type)
{
    uint8_t *data = NULL;
    size_t len = 0;
    esg_error err = {0};
    if (esg_wire_read(c->request, &data, &len, &err) != ESG_OK) {
        srv_reply(c, GRPC_STATUS_INVALID_ARGUMENT, err.message, NULL, 0);
        return NULL;
    }
    ProtobufCMessage *message = protobuf_c_message_unpack(type, &esg_wire_allocator, len, data);
    esg_free(data);
    if (message == NULL) {
        char text[160];
        snprintf(text, sizeof text, "malformed request: not a valid %s message", type->name);
        srv_reply(c, GRPC_STATUS_INVALID_ARGUMENT, text, NULL, 0);
    }
    return message;
}

/* ---- Dispatch ---- */

/* A unary method: the type of its request, its handler, and whether the reply costs enough
 * that the server first makes sure the client is still there (see open_costly_call). */
typedef struct {
    const ProtobufCMessageDescriptor *request_type;
    void (*handle)(server_call *c, const ProtobufCMessage *request);
    bool is_costly;
} unary_method;

static const unary_method unary_methods[N_KINDS] = {
    [KIND_PING] = {&eventsourcing_grpc__empty__descriptor, srv_handle_ping},
    [KIND_CALL] = {&eventsourcing_grpc__method_request__descriptor, srv_handle_call},
    [KIND_PROMPT] = {&eventsourcing_grpc__prompt_request__descriptor, srv_handle_prompt},
    [KIND_GET_NOTIFICATIONS] = {&eventsourcing_grpc__notifications_request__descriptor,
                                srv_handle_get_notifications, true},
    [KIND_LEADER_POSITIONS] = {&eventsourcing_grpc_c__v1__leader_positions_request__descriptor,
                               srv_handle_leader_positions},
    [KIND_HEALTH_CHECK] = {&grpc__health__v1__health_check_request__descriptor,
                           srv_handle_health_check},
};

/* Whether a call's peer ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", the
 * brackets perhaps percent-encoded) has a loopback address. */
static bool is_loopback_peer(grpc_call *call)
{
    char *peer = grpc_call_get_peer(call);
    char address[128];
    size_t len = 0;
    bool is_loopback = false;
    if (peer != NULL && (strncmp(peer, "ipv4:", 5) == 0 || strncmp(peer, "ipv6:", 5) == 0)) {
        for (const char *p = peer + 5; *p != '\0' && len + 1 < sizeof address; p++) {
            if (strncmp(p, "%5B", 3) == 0 || strncmp(p, "%5D", 3) == 0) {
                address[len++] = p[2] == 'B' ? '[' : ']';
                p += 2;
            } else {
                address[len++] = *p;
            }
        }
        address[len] = '\0';
        is_loopback = esg_address_is_loopback(address);
    }
    gpr_free(peer);
    return is_loopback;
}

static void handle_unary(server_call *c)
{
    const unary_method *method = &unary_methods[c->kind];
    ProtobufCMessage *request = unpack_request(c, method->request_type);
    if (request != NULL) {
        method->handle(c, request);
        protobuf_c_message_free_unpacked(request, &esg_wire_allocator);
    }
}

/* gRPC 1.51 hands over calls that queued while every request was taken even when their
 * connection has closed since: a client that asked for hundreds of pages and left would have
 * the workers build them all, for no one, long after it went (seconds of a busy server after
 * one closed connection). A costly call first sends its initial metadata, which completes
 * with a failure when the call is over already; its reply is built only if it did not. */
static void open_costly_call(server_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.data.send_initial_metadata.count = c->server->n_reply_metadata;
    op.data.send_initial_metadata.metadata = &c->server->reply_metadata;
    c->has_sent_initial_metadata = true;
    srv_start_batch(c, &op, 1, STEP_COSTLY_OPEN);
}

/* ok false: the client is gone; the call is freed unanswered (and counted as CANCELLED). */
static void costly_call_opened(server_call *c, bool ok)
{
    if (ok)
        handle_unary(c);
}

static void handle_new_call(server_call *c)
{
    /* gRPC's local credentials check the address the connection came in on,
     * not the peer's: a relay or a DNAT rule from another address would get
     * through. The peer is checked here, so that "loopback only" holds. */
    if (c->server->is_loopback_only && !c->on_health_port && !is_loopback_peer(c->call)) {
        if (!atomic_exchange(&c->server->has_refused, true))
            esg_log(ESG_LOG_WARNING, esg_application_name(c->server->app),
                    "refused a call from a peer that is not on loopback (local credentials "
                    "serve loopback clients only; said once)");
        srv_reply(c, GRPC_STATUS_UNAUTHENTICATED, "local credentials: the peer is not on loopback",
                  NULL, 0);
        return;
    }
    if (c->kind == KIND_HEALTH_WATCH) {
        srv_handle_health_watch(c);
    } else if (c->kind == KIND_REFLECTION_V1ALPHA || c->kind == KIND_REFLECTION_V1) {
        srv_handle_reflection(c);
    } else if (c->kind == KIND_SUBSCRIBE) {
        srv_handle_subscribe(c);
    } else if (c->kind < N_KINDS && unary_methods[c->kind].handle != NULL) {
        if (unary_methods[c->kind].is_costly)
            open_costly_call(c);
        else
            handle_unary(c);
    } else {
        /* details.method is a slice, not NUL-terminated. */
        char text[300];
        int len = (int)GRPC_SLICE_LENGTH(c->details.method);
        snprintf(text, sizeof text, "Method not found: %.*s", len > 250 ? 250 : len,
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        srv_reply(c, GRPC_STATUS_UNIMPLEMENTED, text, NULL, 0);
    }
}

/* What a call does when each of its batches after the request completes (ok: gRPC's success);
 * NULL: nothing (a status sent: the close's batch completes the call). */
static void (*const next_steps[N_BATCH_STEPS])(server_call *c, bool ok) = {
    [STEP_COSTLY_OPEN] = costly_call_opened,  [STEP_WATCH_READ] = srv_watch_send_status,
    [STEP_WATCH_SENT] = srv_watch_sent,       [STEP_WATCH_CLOSE] = srv_watch_closed,
    [STEP_STREAM_READ] = srv_reflection_read, [STEP_STREAM_SENT] = srv_reflection_sent,
    [STEP_SUB_READ] = srv_subscribe_read,     [STEP_SUB_SENT] = srv_subscribe_sent,
    [STEP_SUB_CLOSE] = srv_subscribe_closed,
};

static void on_event(esg_server *server, void *tag, bool ok)
{
    if (tag == &server->shutdown_tag) {
        pthread_mutex_lock(&server->lock);
        server->is_shut_down = --server->n_shutdowns == 0;
        pthread_cond_broadcast(&server->changed);
        pthread_mutex_unlock(&server->lock);
        return;
    }
    batch_tag *batch = tag;
    atomic_load_explicit(&batch->handoffs, memory_order_acquire);
    server_call *c = batch->call;
    if (batch->step == STEP_REQUEST) {
        if (!ok) {
            free_call(c); /* a posted request ended by shutdown */
            return;
        }
        c->is_received = true;
        clock_gettime(CLOCK_MONOTONIC, &c->received_at);
        srv_count_started(c);
        atomic_fetch_add(&server->n_calls, 1);
        /* Hold a count while handling, so that no batch completing on another
         * worker frees the call under our feet. */
        atomic_fetch_add(&c->n_batches, 1);
        post_request(server, c->kind, c->on_health_port); /* keep one waiting for the next */
        handle_new_call(c);
    } else if (batch->step < N_BATCH_STEPS && next_steps[batch->step] != NULL) {
        next_steps[batch->step](c, ok);
    }
    srv_release_call(c);
}

void srv_hold_call(server_call *c)
{
    atomic_fetch_add(&c->n_batches, 1);
}

void srv_release_call(server_call *c)
{
    if (atomic_fetch_sub(&c->n_batches, 1) == 1)
        free_call(c);
}

static void *worker_main(void *arg)
{
    esg_server *server = arg;
    for (;;) {
        grpc_event event =
            grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (event.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (event.type == GRPC_OP_COMPLETE)
            on_event(server, event.tag, event.success != 0);
    }
    return NULL;
}

/* ---- Start and stop ---- */

/* Listens on address (both loopback families for "localhost"). */
static esg_status listen_on(esg_server *server, const char *address, const esg_env *env,
                            esg_error *err)
{
    char host[256];
    int port = 0;
    grpc_server_credentials *credentials = NULL;
    if (strchr(address, ',') != NULL || strncmp(address, "dns:///", 7) == 0)
        return esg_error_set(err, ESG_ECONFIG,
                             "cannot listen on '%.200s': it names replicas, for clients; set "
                             "GRPC_LISTEN_ADDRESS (or <APP>_GRPC_LISTEN_ADDRESS) to this one's "
                             "own host:port",
                             address);
    esg_status rc = esg_address_split(address, host, sizeof host, &port, err);
    if (rc == ESG_OK)
        rc = esg_server_credentials_create(address, env, esg_application_name(server->app),
                                           &credentials, err);
    if (rc != ESG_OK)
        return rc;
    server->is_loopback_only = esg_address_is_local(address);
    if (strcmp(host, "localhost") == 0) {
        /* "localhost" may resolve to either family: listen on both, the same port. */
        char target[300];
        snprintf(target, sizeof target, "127.0.0.1:%d", port);
        server->port = grpc_server_add_http2_port(server->grpc, target, credentials);
        if (server->port > 0) {
            snprintf(target, sizeof target, "[::1]:%d", server->port);
            if (grpc_server_add_http2_port(server->grpc, target, credentials) == 0)
                esg_log(ESG_LOG_WARNING, esg_application_name(server->app),
                        "IPv6 loopback unavailable: listening on 127.0.0.1:%d only", server->port);
        }
    } else {
        server->port = grpc_server_add_http2_port(server->grpc, address, credentials);
    }
    grpc_server_credentials_release(credentials);
    if (server->port <= 0 && !esg_address_is_local(address))
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "cannot listen on %s: the address is in use or not available "
                             "here, or the TLS key and certificates do not match (gRPC's log "
                             "says which)",
                             address);
    if (server->port <= 0)
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "cannot listen on %s: the address is in use or not available here",
                             address);
    return ESG_OK;
}

/* Registers the methods from first_kind on (the health service's are last) in methods. */
static void register_methods(grpc_server *grpc, call_kind first_kind, void *methods[N_KINDS])
{
    for (int kind = first_kind; kind < KIND_UNKNOWN; kind++)
        methods[kind] = grpc_server_register_method(grpc, kind_paths[kind], NULL,
                                                    is_streaming((call_kind)kind)
                                                        ? GRPC_SRM_PAYLOAD_NONE
                                                        : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
                                                    0);
}

/* The health port is plaintext whatever its address, because the probes it
 * is for (the kubelet's) cannot do TLS; it serves the health service alone,
 * so it tells nothing but SERVING or NOT_SERVING. */
static esg_status listen_on_health_port(esg_server *server, const char *address, esg_error *err)
{
    char host[256];
    int port = 0;
    esg_status rc = esg_address_split(address, host, sizeof host, &port, err);
    if (rc != ESG_OK)
        return rc;
    grpc_server_credentials *credentials = grpc_insecure_server_credentials_create();
    server->health_port = grpc_server_add_http2_port(server->health_grpc, address, credentials);
    grpc_server_credentials_release(credentials);
    if (server->health_port <= 0)
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "cannot listen on %s for health checks: the address is in use or "
                             "not available here",
                             address);
    return ESG_OK;
}

static esg_status copy_leader_names(esg_server *server, const esg_server_options *options,
                                    esg_error *err)
{
    if (options->n_leader_names == 0)
        return ESG_OK;
    server->leader_names = esg_calloc(options->n_leader_names, sizeof *server->leader_names);
    if (server->leader_names == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting a server");
    for (size_t i = 0; i < options->n_leader_names; i++) {
        server->leader_names[i] = esg_strdup(options->leader_names[i]);
        if (server->leader_names[i] == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory starting a server");
        server->n_leader_names = i + 1;
    }
    return ESG_OK;
}

static void free_server(esg_server *server)
{
    for (size_t i = 0; i < server->n_leader_names; i++)
        esg_free(server->leader_names[i]);
    esg_free(server->leader_names);
    esg_free(server->workers);
    unread_replies_destroy(&server->unread);
    pthread_mutex_destroy(&server->subscriptions_lock);
    pthread_cond_destroy(&server->changed);
    pthread_mutex_destroy(&server->lock);
    esg_free(server);
    grpc_shutdown();
}

static void cancel_all_calls(esg_server *server)
{
    grpc_server_cancel_all_calls(server->grpc);
    if (server->health_grpc != NULL)
        grpc_server_cancel_all_calls(server->health_grpc);
}

static void destroy_grpc_servers(esg_server *server)
{
    grpc_server_destroy(server->grpc);
    if (server->health_grpc != NULL)
        grpc_server_destroy(server->health_grpc);
}

/* Shuts the gRPC servers down and joins the workers (started or not). */
static void shut_down(esg_server *server)
{
    srv_metrics_stop(server); /* first: a scrape never sees a server half stopped */
    srv_replica_watch_stop(server);
    pthread_mutex_lock(&server->lock);
    server->is_stopping = true;
    server->is_serving = false;
    for (server_call *c = server->watchers; c != NULL; c = c->next_watcher)
        srv_watch_end(c);
    server->watchers = NULL;
    server->n_shutdowns = server->health_grpc != NULL ? 2 : 1;
    pthread_mutex_unlock(&server->lock);
    srv_end_subscriptions(server); /* else they would hold the stop for its grace */

    grpc_server_shutdown_and_notify(server->grpc, server->cq, &server->shutdown_tag);
    if (server->health_grpc != NULL)
        grpc_server_shutdown_and_notify(server->health_grpc, server->cq, &server->shutdown_tag);
    if (server->n_workers > 0) {
        struct timespec until = esg_clock_deadline(STOP_GRACE_MS);
        pthread_mutex_lock(&server->lock);
        while (!server->is_shut_down &&
               pthread_cond_timedwait(&server->changed, &server->lock, &until) == 0) {
        }
        bool is_shut_down = server->is_shut_down;
        pthread_mutex_unlock(&server->lock);
        if (!is_shut_down)
            cancel_all_calls(server); /* the grace is over */
        pthread_mutex_lock(&server->lock);
        while (!server->is_shut_down)
            pthread_cond_wait(&server->changed, &server->lock);
        pthread_mutex_unlock(&server->lock);
    } else {
        /* No workers (a failed start): wait for the shutdown tags here. */
        cancel_all_calls(server);
        while (!server->is_shut_down) {
            grpc_event event =
                grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (event.type == GRPC_OP_COMPLETE)
                on_event(server, event.tag, event.success != 0);
        }
    }
    pthread_mutex_lock(&server->lock);
    server->is_queue_shut = true;
    destroy_grpc_servers(server);
    grpc_completion_queue_shutdown(server->cq);
    pthread_mutex_unlock(&server->lock);
    for (int i = 0; i < server->n_workers; i++)
        pthread_join(server->workers[i], NULL);
    if (server->n_workers == 0) {
        /* Drain what is left ourselves (a failed start has no workers). */
        for (;;) {
            grpc_event event =
                grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (event.type == GRPC_QUEUE_SHUTDOWN)
                break;
            if (event.type == GRPC_OP_COMPLETE && event.tag != &server->shutdown_tag)
                on_event(server, event.tag, event.success != 0);
        }
    }
    grpc_completion_queue_destroy(server->cq);
    size_t n_left = atomic_load(&server->n_objects);
    if (n_left != 0)
        esg_log(ESG_LOG_ERROR, esg_application_name(server->app), "%zu call objects left at stop",
                n_left);
}

/* Each write of the application: subscriptions waiting for news read it, and the node hears. */
static void on_recorded(void *ctx, esg_application *app, int64_t max_notification_id)
{
    esg_server *server = ctx;
    srv_wake_subscriptions(server);
    if (server->node_hooks.on_recorded != NULL)
        server->node_hooks.on_recorded(server->node_hooks.ctx, app, max_notification_id);
}

esg_status esg_server_start(esg_application *app, const esg_server_options *options,
                            esg_server **out, esg_error *err)
{
    return srv_start(app, options, NULL, out, err);
}

esg_status srv_start(esg_application *app, const esg_server_options *options,
                     const srv_node_hooks *hooks, esg_server **out, esg_error *err)
{
    *out = NULL;
    if (options == NULL || options->address == NULL || options->address[0] == '\0')
        return esg_error_set(err, ESG_ECONFIG, "a server needs an address (host:port)");
    grpc_init();
    esg_server *server = esg_calloc(1, sizeof *server);
    if (server == NULL) {
        grpc_shutdown();
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting a server");
    }
    pthread_mutex_init(&server->lock, NULL);
    pthread_mutex_init(&server->subscriptions_lock, NULL);
    esg_cond_init(&server->changed);
    server->app = app;
    double key_ttl = esg_application_idempotency_key_ttl(app);
    if (key_ttl > 0) {
        snprintf(server->key_ttl_text, sizeof server->key_ttl_text, "%.0f",
                 key_ttl < 1 ? 1 : key_ttl);
        server->reply_metadata.key =
            grpc_slice_from_static_string(ESG_IDEMPOTENCY_KEY_TTL_METADATA);
        server->reply_metadata.value = grpc_slice_from_static_string(server->key_ttl_text);
        server->n_reply_metadata = 1;
    }
    if (hooks != NULL)
        server->node_hooks = *hooks;
    server->on_prompt = options->on_prompt;
    server->on_prompt_ctx = options->on_prompt_ctx;
    unread_replies_init(&server->unread);
    esg_status rc = copy_leader_names(server, options, err);
    if (rc != ESG_OK) {
        free_server(server);
        return rc;
    }

    grpc_arg args[6];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_ALLOW_REUSEPORT; /* a busy port is an error, not shared */
    args[0].value.integer = 0;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = ESG_GRPC_MAX_MESSAGE_BYTES;
    /* No compressed requests: gRPC 1.51 inflates a message whole before it
     * compares it with the maximum, so 4 MiB of gzip could cost gigabytes.
     * Clients that compress get UNIMPLEMENTED; none of ours or Python's do. */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET;
    args[2].value.integer = 1 << GRPC_COMPRESS_NONE;
    args[3] = esg_wire_quota_arg("eventsourcing_grpc server"); /* (see wire.h) */
    /* gRPC's default is no limit. A client holds to it once it acknowledged the SETTINGS that
     * say it (gRPC, h2load and nghttpx do; a hostile one need not: see deploy/nghttpx). */
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[4].value.integer = ESG_GRPC_MAX_CONCURRENT_STREAMS;
    /* Our clients' keepalive pings (ESG_CLIENT_KEEPALIVE_MS) are welcome: gRPC's default
     * would count them as strikes on a quiet subscription and end the connection. */
    args[5].type = GRPC_ARG_INTEGER;
    args[5].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
    args[5].value.integer = ESG_GRPC_MIN_PING_INTERVAL_MS;
    grpc_channel_args channel_args = {6, args};
    server->cq = grpc_completion_queue_create_for_next(NULL);
    server->grpc = grpc_server_create(&channel_args, NULL);
    grpc_server_register_completion_queue(server->grpc, server->cq, NULL);
    register_methods(server->grpc, KIND_PING, server->methods);
    bool has_health_port = options->health_address != NULL && options->health_address[0] != '\0';
    if (has_health_port) {
        server->health_grpc = grpc_server_create(&channel_args, NULL);
        grpc_server_register_completion_queue(server->health_grpc, server->cq, NULL);
        register_methods(server->health_grpc, KIND_HEALTH_CHECK, server->health_methods);
    }
    esg_wire_quota_arg_release(&args[3]); /* the servers hold their own references */
    rc = listen_on(server, options->address, options->env, err);
    if (rc != ESG_OK) {
        /* Never started and no port: destroy without the shutdown dance. */
        destroy_grpc_servers(server);
        grpc_completion_queue_shutdown(server->cq);
        while (grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(server->cq);
        free_server(server);
        return rc;
    }
    if (has_health_port)
        rc = listen_on_health_port(server, options->health_address, err);
    if (rc == ESG_OK && options->metrics_address != NULL && options->metrics_address[0] != '\0')
        rc = srv_metrics_start(server, options->metrics_address, err);
    grpc_server_start(server->grpc);
    if (has_health_port)
        grpc_server_start(server->health_grpc);
    if (rc != ESG_OK) {
        /* A port is open: gRPC wants the shutdown before the destruction. */
        shut_down(server);
        free_server(server);
        return rc;
    }
    server->is_serving = true;
    /* Before the first worker: they write, and so call it. */
    esg_application_set_recorded_listener(app, on_recorded, server);
    rc = srv_replica_watch_start(server, err);
    if (rc != ESG_OK) {
        esg_server_stop(server);
        return rc;
    }
    for (int kind = 0; kind < N_KINDS; kind++)
        for (int i = 0; i < REQUESTS_PER_METHOD; i++) {
            post_request(server, (call_kind)kind, false);
            if (has_health_port && kind >= KIND_HEALTH_CHECK)
                post_request(server, (call_kind)kind, true);
        }

    /* On a database every call waits for the disk or the network in a worker: more workers let
     * the recorder commit their writes together (group commit) and keep serving reads
     * meanwhile. In memory nothing waits, and 2 was best. */
    int n_threads = options->n_threads > 0 ? options->n_threads
                    : esg_recorder_is_blocking(esg_application_recorder(app))
                        ? BLOCKING_SERVER_THREADS
                        : 2;
    server->workers = esg_calloc((size_t)n_threads, sizeof *server->workers);
    for (int i = 0; server->workers != NULL && i < n_threads; i++) {
        if (pthread_create(&server->workers[i], NULL, worker_main, server) != 0)
            break;
        server->n_workers = i + 1;
    }
    if (server->n_workers == 0) {
        esg_server_stop(server);
        return esg_error_set(err, ESG_ENOMEM, "cannot start the server's worker threads");
    }
    *out = server;
    return ESG_OK;
}

int esg_server_port(const esg_server *server)
{
    return server->port;
}

int esg_server_health_port(const esg_server *server)
{
    return server->health_port;
}

size_t esg_server_n_calls(const esg_server *server)
{
    return atomic_load(&((esg_server *)server)->n_calls);
}

void esg_server_stop(esg_server *server)
{
    if (server == NULL)
        return;
    shut_down(server);
    esg_application_set_recorded_listener(server->app, NULL, NULL);
    free_server(server);
}
