/* The gRPC client: a blocking client of eventsourcing_grpc.Application (and of
 * grpc.health.v1.Health and eventsourcing_grpc_c.v1.Node) that many threads may
 * share. Each call gets its own completion queue and one batch; idempotent calls
 * (all but CallApplicationMethod) are retried on UNAVAILABLE and DEADLINE_EXCEEDED.
 *
 * Lifetime: threads inside a public call are counted (n_active) and the
 * grpc_call of each attempt is linked in a list, so that esg_client_close can
 * cancel the calls in flight, wake the threads waiting between retries, and
 * destroy the channel only once the last of them has left. */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esg/grpc.h"
#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/client_internal.h"
#include "grpc/target.h"
#include "grpc/credentials.h"
#include "grpc/wire.h"
#include "core/clock.h"
#include "core/settings.h"
#include "core/alloc.h"

#define DEFAULT_MAX_ATTEMPTS 10
#define DEFAULT_BACKOFF_MS 100
#define DEFAULT_DEADLINE_MS 5000
#define DEFAULT_MAX_CALL_ATTEMPTS 3
#define MAX_BACKOFF_MS 1000 /* backoff doubles up to this (or backoff_ms, if larger) */
/* The longest one connection attempt (TCP and TLS handshakes) may take. */
#define CONNECT_TIMEOUT_MS 3000

/* A follower's pages: 100 notifications, or the Python reference's section
 * size when a server refuses more than that. */
#define LOG_PAGE_SIZE 100
#define REFERENCE_SECTION_SIZE 10

/* ---- Helpers ---------------------------------------------------------------- */

static int64_t next_backoff(const esg_client *client, int64_t wait_ms)
{
    int64_t cap = client->backoff_ms > MAX_BACKOFF_MS ? client->backoff_ms : MAX_BACKOFF_MS;
    return wait_ms * 2 > cap ? cap : wait_ms * 2;
}

/* Waits wait_ms unless the client is closed first; false when it was closed. */
static bool sleep_unless_closed(esg_client *client, int64_t wait_ms)
{
    struct timespec until = esg_clock_deadline(wait_ms);
    pthread_mutex_lock(&client->lock);
    int rc = 0;
    while (!client->is_closed && rc == 0)
        rc = pthread_cond_timedwait(&client->changed, &client->lock, &until);
    bool is_open = !client->is_closed;
    pthread_mutex_unlock(&client->lock);
    return is_open;
}

esg_status cli_enter(esg_client *client, esg_error *err)
{
    if (client == NULL)
        return esg_error_set(err, ESG_EINVAL, "no client");
    pthread_mutex_lock(&client->lock);
    bool is_closed = client->is_closed;
    if (!is_closed)
        client->n_active++;
    pthread_mutex_unlock(&client->lock);
    if (is_closed)
        return esg_error_set(err, ESG_ECLOSED, "the client of %s is closed", client->address);
    return ESG_OK;
}

void cli_leave(esg_client *client)
{
    pthread_mutex_lock(&client->lock);
    if (--client->n_active == 0)
        pthread_cond_broadcast(&client->changed);
    pthread_mutex_unlock(&client->lock);
}

const char *cli_method_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

esg_status cli_status_to_result(esg_client *client, const char *method, grpc_status_code status,
                                grpc_slice details, esg_error *err)
{
    const char *text = (const char *)GRPC_SLICE_START_PTR(details);
    int text_len = (int)GRPC_SLICE_LENGTH(details);
    switch (status) {
    case GRPC_STATUS_OK:
        return ESG_OK;
    case GRPC_STATUS_CANCELLED: {
        pthread_mutex_lock(&client->lock);
        bool is_closed = client->is_closed;
        pthread_mutex_unlock(&client->lock);
        if (is_closed)
            return esg_error_set(err, ESG_ECLOSED,
                                 "%s: the client of %s was closed during the call", method,
                                 client->address);
        return esg_error_set(err, ESG_EREMOTE, "%s: cancelled: %.*s", method, text_len, text);
    }
    case GRPC_STATUS_UNAVAILABLE:
        return esg_error_set(err, ESG_EUNAVAILABLE, "%s: server at %s unavailable: %.*s", method,
                             client->address, text_len, text);
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        /* A call that waited for a connection that never came met an
         * unreachable server, not a slow one. */
        if (grpc_channel_check_connectivity_state(client->channel, 0) != GRPC_CHANNEL_READY)
            return esg_error_set(err, ESG_EUNAVAILABLE, "%s: no connection to %s within %lld ms",
                                 method, client->address, (long long)client->deadline_ms);
        return esg_error_set(err, ESG_ETIMEDOUT, "%s: no reply from %s within %lld ms", method,
                             client->address, (long long)client->deadline_ms);
    default:
        if (text_len > 0)
            return esg_error_set(err, esg_wire_status_from_grpc(status), "%.*s", text_len, text);
        return esg_error_set(err, esg_wire_status_from_grpc(status),
                             "%s failed with gRPC status %d", method, (int)status);
    }
}

/* ---- Calls ------------------------------------------------------------------- */

esg_status cli_open_call(esg_client *client, grpc_completion_queue *cq, const char *path,
                         gpr_timespec deadline, live_call *live, esg_error *err)
{
    /* Created under the lock, so that close either sees it to cancel it or refuses it. */
    pthread_mutex_lock(&client->lock);
    bool is_closed = client->is_closed;
    if (!is_closed) {
        live->call =
            grpc_channel_create_call(client->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                     grpc_slice_from_static_string(path), NULL, deadline, NULL);
        if (live->call != NULL) {
            live->next = client->live_calls;
            client->live_calls = live;
        }
    }
    pthread_mutex_unlock(&client->lock);
    if (is_closed)
        return esg_error_set(err, ESG_ECLOSED, "the client of %s is closed", client->address);
    if (live->call == NULL)
        return esg_error_set(err, ESG_EINTERNAL, "cannot create a call to %s", path);
    return ESG_OK;
}

void cli_close_call(esg_client *client, live_call *live)
{
    if (live->call == NULL)
        return;
    pthread_mutex_lock(&client->lock);
    for (live_call **p = &client->live_calls; *p != NULL; p = &(*p)->next)
        if (*p == live) {
            *p = live->next;
            break;
        }
    grpc_call_unref(live->call);
    live->call = NULL;
    pthread_mutex_unlock(&client->lock);
}

/* ---- One attempt of a unary call --------------------------------------------- */

/* What a unary call sends: its method's path, its request's bytes and its metadata. */
typedef struct outgoing {
    const char *path;
    const uint8_t *bytes; /* may be NULL when len is 0 */
    size_t len;
    grpc_metadata *metadata; /* may be NULL */
    size_t n_metadata;
} outgoing;

/* Sends request to path and waits for the reply or the deadline. On ESG_OK,
 * *reply (esg_malloc'ed, never NULL) holds the reply's bytes. wait_for_ready
 * makes a call wait for the connection rather than fail while connecting. */
static esg_status call_once(esg_client *client, const outgoing *request, bool wait_for_ready,
                            uint8_t **reply, size_t *reply_len, esg_error *err)
{
    const char *path = request->path;
    esg_status rc = ESG_OK;
    *reply = NULL;
    *reply_len = 0;
    const char *method = cli_method_of(path);
    live_call live = {0}; /* its address is the batch's tag */
    grpc_byte_buffer *recv_buffer = NULL;
    grpc_metadata_array initial_metadata, trailing_metadata;
    grpc_metadata_array_init(&initial_metadata);
    grpc_metadata_array_init(&trailing_metadata);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_byte_buffer *send_buffer = esg_wire_buffer(request->bytes, request->len);
    if (cq == NULL || send_buffer == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory calling %s", method);
        goto out;
    }

    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(client->deadline_ms, GPR_TIMESPAN));
    rc = cli_open_call(client, cq, path, deadline, &live, err);
    if (rc != ESG_OK)
        goto out;

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET |
                   (wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0u);
    ops[0].data.send_initial_metadata.count = request->n_metadata;
    ops[0].data.send_initial_metadata.metadata = request->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_buffer;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_metadata;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_buffer;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_metadata;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(live.call, ops, 6, &live, NULL) != GRPC_CALL_OK) {
        rc = esg_error_set(err, ESG_EINTERNAL, "cannot start a call to %s", path);
        goto out;
    }
    grpc_event event =
        grpc_completion_queue_pluck(cq, &live, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (event.type != GRPC_OP_COMPLETE) {
        rc = esg_error_set(err, ESG_EINTERNAL, "%s: the completion queue failed", method);
        goto out;
    }
    rc = cli_status_to_result(client, method, status, details, err);
    if (rc == ESG_OK)
        rc = esg_wire_read(recv_buffer, reply, reply_len, err);
    for (size_t i = 0; rc == ESG_OK && i < initial_metadata.count; i++)
        if (grpc_slice_str_cmp(initial_metadata.metadata[i].key,
                               ESG_IDEMPOTENCY_KEY_TTL_METADATA) == 0)
            atomic_store(&client->server_keeps_keys, true);

out:
    cli_close_call(client, &live);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_metadata);
    grpc_metadata_array_destroy(&trailing_metadata);
    grpc_byte_buffer_destroy(recv_buffer);
    grpc_byte_buffer_destroy(send_buffer);
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        /* Our only batch was plucked: this returns GRPC_QUEUE_SHUTDOWN at once. */
        while (
            grpc_completion_queue_pluck(cq, &live, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
            GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(cq);
    }
    return rc;
}

/* Calls path up to max_tries times while it fails with ESG_EUNAVAILABLE or
 * ESG_ETIMEDOUT, waiting with backoff between tries. */
static esg_status call_with_retries(esg_client *client, const outgoing *request, int max_tries,
                                    uint8_t **reply, size_t *reply_len, esg_error *err)
{
    int64_t wait_ms = client->backoff_ms;
    for (int attempt = 1;; attempt++) {
        esg_status rc = call_once(client, request, true, reply, reply_len, err);
        if (rc != ESG_EUNAVAILABLE && rc != ESG_ETIMEDOUT)
            return rc;
        if (attempt >= max_tries)
            return rc;
        if (!sleep_unless_closed(client, wait_ms))
            return esg_error_set(err, ESG_ECLOSED, "%s: the client of %s was closed",
                                 cli_method_of(request->path), client->address);
        wait_ms = next_backoff(client, wait_ms);
    }
}

esg_status cli_malformed_reply(const char *path, esg_error *err)
{
    return esg_error_set(err, ESG_EREMOTE, "%s: malformed reply", cli_method_of(path));
}

/* Packs a protobuf-c message into a new buffer (never NULL on ESG_OK). */
static esg_status pack_message(const ProtobufCMessage *message, uint8_t **out, size_t *out_len,
                               esg_error *err)
{
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = esg_malloc(len + 1);
    if (bytes == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory packing a request");
    *out_len = protobuf_c_message_pack(message, bytes);
    *out = bytes;
    return ESG_OK;
}

/* A call whose reply is Empty: Ping and Prompt. */
static esg_status call_for_empty(esg_client *client, const outgoing *request, bool wait_for_ready,
                                 int max_tries, esg_error *err)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    esg_status rc = wait_for_ready
                        ? call_with_retries(client, request, max_tries, &reply, &reply_len, err)
                        : call_once(client, request, false, &reply, &reply_len, err);
    if (rc == ESG_OK) {
        EventsourcingGrpc__Empty *empty =
            eventsourcing_grpc__empty__unpack(&esg_wire_allocator, reply_len, reply);
        if (empty == NULL)
            rc = cli_malformed_reply(request->path, err);
        else
            eventsourcing_grpc__empty__free_unpacked(empty, &esg_wire_allocator);
    }
    esg_free(reply);
    return rc;
}

/* An idempotent unary call (retried as Ping is): packs request, sends it to path and unpacks the
 * reply as reply_type into *reply (the caller frees it with protobuf_c_message_free_unpacked). */
static esg_status call_idempotent(esg_client *client, const char *path,
                                  const ProtobufCMessage *request,
                                  const ProtobufCMessageDescriptor *reply_type,
                                  ProtobufCMessage **reply, esg_error *err)
{
    *reply = NULL;
    uint8_t *request_bytes = NULL, *reply_bytes = NULL;
    size_t request_len = 0, reply_len = 0;
    esg_status rc = pack_message(request, &request_bytes, &request_len, err);
    if (rc == ESG_OK)
        rc = cli_enter(client, err);
    if (rc == ESG_OK) {
        const outgoing call = {path, request_bytes, request_len, NULL, 0};
        rc = call_with_retries(client, &call, client->max_call_attempts, &reply_bytes, &reply_len,
                               err);
        cli_leave(client);
    }
    if (rc == ESG_OK && (*reply = protobuf_c_message_unpack(reply_type, &esg_wire_allocator,
                                                            reply_len, reply_bytes)) == NULL)
        rc = cli_malformed_reply(path, err);
    esg_free(reply_bytes);
    esg_free(request_bytes);
    return rc;
}

/* ---- Connecting -------------------------------------------------------------- */

static esg_client *client_new(const char *address, const esg_client_options *options)
{
    esg_client *client = esg_calloc(1, sizeof *client);
    if (client == NULL)
        return NULL;
    client->address = esg_strdup(address);
    if (client->address == NULL) {
        esg_free(client);
        return NULL;
    }
    client->max_attempts = DEFAULT_MAX_ATTEMPTS;
    client->backoff_ms = DEFAULT_BACKOFF_MS;
    client->deadline_ms = DEFAULT_DEADLINE_MS;
    client->max_call_attempts = DEFAULT_MAX_CALL_ATTEMPTS;
    client->keepalive_ms = ESG_CLIENT_KEEPALIVE_MS;
    atomic_init(&client->server_keeps_keys, false);
    atomic_init(&client->has_answered, false);
    if (options != NULL) {
        if (options->max_attempts > 0)
            client->max_attempts = options->max_attempts;
        if (options->backoff_ms > 0)
            client->backoff_ms = options->backoff_ms;
        if (options->deadline_ms > 0)
            client->deadline_ms = options->deadline_ms;
        if (options->max_call_attempts > 0)
            client->max_call_attempts = options->max_call_attempts;
        if (options->keepalive_ms != 0)
            client->keepalive_ms = options->keepalive_ms;
    }
    esg_cond_init(&client->changed);
    pthread_mutex_init(&client->lock, NULL);
    return client;
}

/* Frees what client_new made, and the channel if any (no call may be live). */
static void client_destroy(esg_client *client)
{
    if (client->channel != NULL)
        grpc_channel_destroy(client->channel);
    pthread_cond_destroy(&client->changed);
    pthread_mutex_destroy(&client->lock);
    esg_free(client->address);
    esg_free(client);
}

static int clamp_int(int64_t value)
{
    return value > INT32_MAX ? INT32_MAX : (int)value;
}

/* The channel, reconnecting with our backoff rather than gRPC's default
 * (1 s growing to 2 min), so that a restarted server is found again soon. */
static esg_status open_channel(esg_client *client, const esg_env *env, const char *ssl_name,
                               const esg_target *target, esg_error *err)
{
    grpc_channel_credentials *creds = NULL;
    esg_status rc =
        esg_channel_credentials_create(target->credentials_address, env, ssl_name, &creds, err);
    if (rc != ESG_OK)
        return rc;
    int64_t max_backoff_ms =
        client->backoff_ms > MAX_BACKOFF_MS ? client->backoff_ms : MAX_BACKOFF_MS;
    grpc_arg args[9];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[0].value.integer = clamp_int(client->backoff_ms);
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[1].value.integer = clamp_int(max_backoff_ms);
    /* A connection attempt that hangs (a SYN lost to a network still being set
     * up) is given up after CONNECT_TIMEOUT_MS, not gRPC's 20 s. */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
    args[2].value.integer = CONNECT_TIMEOUT_MS;
    /* A hostile server's reply that claims gigabytes is reset at the quota (see wire.h). */
    args[3] = esg_wire_quota_arg("eventsourcing_grpc client");
    grpc_channel_args channel_args = {.num_args = 4, .args = args};
    if (client->keepalive_ms > 0) {
        /* Pings only while calls are in flight (gRPC's default), and as many of them without
         * data as it takes (gRPC's default stops after 2: a quiet subscription is the case). */
        int keepalive_ms = clamp_int(client->keepalive_ms);
        args[channel_args.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                                   .key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS,
                                                   .value.integer = keepalive_ms};
        args[channel_args.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
                                                   .key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                                                   .value.integer = keepalive_ms};
        args[channel_args.num_args++] =
            (grpc_arg){.type = GRPC_ARG_INTEGER,
                       .key = (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
                       .value.integer = 0};
    }
    if (target->is_balanced) /* replicas: each call to the next that is up */
        args[channel_args.num_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                                   .key = (char *)GRPC_ARG_LB_POLICY_NAME,
                                                   .value.string = (char *)"round_robin"};
    if (target->tls_name[0] != '\0') /* a list's servers, known by IP: the name to check */
        args[channel_args.num_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                                   .key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                                   .value.string = (char *)target->tls_name};
    client->channel = grpc_channel_create(target->uri, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    esg_wire_quota_arg_release(&args[3]); /* the channel holds its own reference */
    if (client->channel == NULL)
        return esg_error_set(err, ESG_EINTERNAL, "cannot create a channel to %s", client->address);
    return ESG_OK;
}

/* Pings until the server answers. Pings do not wait for the connection:
 * each attempt is one try to connect (gRPC's own reconnect backoff is reset
 * first), and a refused connection fails it at once. */
static esg_status ping_until_answered(esg_client *client, esg_error *err)
{
    esg_error last = {0};
    int64_t wait_ms = client->backoff_ms;
    for (int attempt = 1; attempt <= client->max_attempts; attempt++) {
        if (attempt > 1) {
            struct timespec pause = {.tv_sec = (time_t)(wait_ms / 1000),
                                     .tv_nsec = (long)(wait_ms % 1000) * 1000000L};
            while (nanosleep(&pause, &pause) != 0) {
            }
            wait_ms = next_backoff(client, wait_ms);
            grpc_channel_reset_connect_backoff(client->channel);
        }
        const outgoing ping = {.path = ESG_PATH_PING};
        esg_status rc = call_for_empty(client, &ping, false, 1, &last);
        if (rc == ESG_OK)
            return ESG_OK;
        if (rc != ESG_EUNAVAILABLE && rc != ESG_ETIMEDOUT) {
            /* Something answered, but not as our server would. */
            return esg_error_set(err, rc, "%s answered Ping with an error: %s", client->address,
                                 last.message);
        }
    }
    return esg_error_set(err, ESG_EUNAVAILABLE, "no answer from %s after %d attempt%s: %s",
                         client->address, client->max_attempts,
                         client->max_attempts == 1 ? "" : "s", last.message);
}

/* The client of esg_client_connect_address, pinging the server until it answers when is_pinged. */
static esg_status client_open(const char *address, const esg_client_options *options,
                              bool is_pinged, esg_client **out, esg_error *err)
{
    *out = NULL;
    esg_target target;
    esg_status rc = esg_target_parse(address, &target, err);
    if (rc != ESG_OK)
        return rc;
    esg_env *process_env = NULL;
    const esg_env *env =
        esg_env_or_process(options != NULL ? options->env : NULL, &process_env, err);
    esg_client *client = env != NULL ? client_new(address, options) : NULL;
    if (client == NULL) {
        esg_target_clear(&target);
        esg_env_free(process_env);
        return env == NULL
                   ? ESG_ENOMEM
                   : esg_error_set(err, ESG_ENOMEM, "out of memory connecting to %s", address);
    }
    grpc_init();
    rc = open_channel(client, env, options != NULL ? options->ssl_name : NULL, &target, err);
    if (rc == ESG_OK && is_pinged)
        rc = ping_until_answered(client, err);
    esg_target_clear(&target);
    esg_env_free(process_env);
    if (rc != ESG_OK) {
        client_destroy(client);
        grpc_shutdown();
        return rc;
    }
    *out = client;
    return ESG_OK;
}

esg_status esg_client_connect_address(const char *address, const esg_client_options *options,
                                      esg_client **out, esg_error *err)
{
    return client_open(address, options, true, out, err);
}

esg_status cli_open_address(const char *address, const esg_client_options *options,
                            esg_client **out, esg_error *err)
{
    return client_open(address, options, false, out, err);
}

esg_status esg_client_connect(const char *app_name, const esg_client_options *options,
                              esg_client **out, esg_error *err)
{
    *out = NULL;
    if (app_name == NULL || app_name[0] == '\0')
        return esg_error_set(err, ESG_ECONFIG, "no application name to connect to");
    esg_env *process_env = NULL;
    const esg_env *env =
        esg_env_or_process(options != NULL ? options->env : NULL, &process_env, err);
    if (env == NULL)
        return ESG_ENOMEM;
    esg_status rc;
    /* The exact key, as the server program, nodes and the runner read it. */
    char *key = esg_env_prefixed_key(app_name, "GRPC_SERVER_ADDRESS");
    const char *address = key ? esg_env_get(env, key) : NULL;
    if (key == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    } else if (address == NULL || address[0] == '\0') {
        rc = esg_error_set(err, ESG_ECONFIG, "%s is not set", key);
    } else {
        /* The address is borrowed from env: connect with the same env. */
        esg_client_options with_env = {0};
        if (options != NULL)
            with_env = *options;
        with_env.env = env;
        rc = esg_client_connect_address(address, &with_env, out, err);
    }
    esg_env_free(process_env);
    esg_free(key);
    return rc;
}

/* ---- Calls ------------------------------------------------------------------- */

esg_status esg_client_ping(esg_client *client, esg_error *err)
{
    esg_status rc = cli_enter(client, err);
    if (rc != ESG_OK)
        return rc;
    const outgoing ping = {.path = ESG_PATH_PING};
    rc = call_for_empty(client, &ping, true, client->max_call_attempts, err);
    cli_leave(client);
    return rc;
}

esg_status cli_reach(esg_client *client, esg_error *err)
{
    if (atomic_load(&client->has_answered))
        return ESG_OK;
    esg_status rc = cli_enter(client, err);
    if (rc != ESG_OK)
        return rc;
    /* Connect now, as a new channel would, rather than when gRPC's backoff says. */
    grpc_channel_reset_connect_backoff(client->channel);
    const outgoing ping = {.path = ESG_PATH_PING};
    rc = call_for_empty(client, &ping, false, 1, err);
    if (rc == ESG_OK)
        atomic_store(&client->has_answered, true);
    cli_leave(client);
    return rc;
}

esg_status esg_client_health_check(esg_client *client, const char *service, esg_health_status *out,
                                   esg_error *err)
{
    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "Health/Check needs somewhere to put the status");
    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    request.service = (char *)(service != NULL ? service : "");
    ProtobufCMessage *message = NULL;
    esg_status rc =
        call_idempotent(client, ESG_PATH_HEALTH_CHECK, &request.base,
                        &grpc__health__v1__health_check_response__descriptor, &message, err);
    if (rc == ESG_OK) {
        const Grpc__Health__V1__HealthCheckResponse *reply =
            (const Grpc__Health__V1__HealthCheckResponse *)message;
        if ((int)reply->status < 0 || (int)reply->status > ESG_HEALTH_SERVICE_UNKNOWN)
            rc = cli_malformed_reply(ESG_PATH_HEALTH_CHECK, err);
        else
            *out = (esg_health_status)reply->status;
        protobuf_c_message_free_unpacked(message, &esg_wire_allocator);
    }
    return rc;
}

esg_status esg_client_leader_positions(esg_client *client, esg_leader_positions *out,
                                       esg_error *err)
{
    memset(out, 0, sizeof *out);
    EventsourcingGrpcC__V1__LeaderPositionsRequest request =
        EVENTSOURCING_GRPC_C__V1__LEADER_POSITIONS_REQUEST__INIT;
    ProtobufCMessage *message = NULL;
    esg_status rc = call_idempotent(client, ESG_PATH_LEADER_POSITIONS, &request.base,
                                    &eventsourcing_grpc_c__v1__leader_positions_reply__descriptor,
                                    &message, err);
    if (rc != ESG_OK)
        return rc;
    const EventsourcingGrpcC__V1__LeaderPositionsReply *reply =
        (const EventsourcingGrpcC__V1__LeaderPositionsReply *)message;
    out->application_name = esg_strdup(reply->application_name);
    out->items = esg_calloc(reply->n_leaders ? reply->n_leaders : 1, sizeof *out->items);
    if (out->application_name == NULL || out->items == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == ESG_OK && i < reply->n_leaders; i++) {
        const EventsourcingGrpcC__V1__LeaderPosition *from = reply->leaders[i];
        esg_leader_position *to = &out->items[i];
        if ((to->leader_name = esg_strdup(from->leader_name)) == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
            break;
        }
        out->n_items++;
        ESG_WIRE_POSITION_FIGURES(ESG_WIRE_COPY_FIGURE)
    }
    protobuf_c_message_free_unpacked(message, &esg_wire_allocator);
    return rc;
}

esg_status esg_client_prompt(esg_client *client, const char *upstream_name, esg_error *err)
{
    return esg_client_prompt_after(client, upstream_name, 0, err);
}

esg_status esg_client_prompt_after(esg_client *client, const char *upstream_name,
                                   int64_t notification_id, esg_error *err)
{
    if (upstream_name == NULL)
        return esg_error_set(err, ESG_EINVAL, "Prompt needs an upstream name");
    esg_status rc = cli_enter(client, err);
    if (rc != ESG_OK)
        return rc;
    EventsourcingGrpc__PromptRequest request = EVENTSOURCING_GRPC__PROMPT_REQUEST__INIT;
    request.upstream_name = (char *)upstream_name;
    uint8_t *bytes = NULL;
    size_t len = 0;
    rc = pack_message(&request.base, &bytes, &len, err);
    char id_text[24];
    grpc_metadata id_metadata = {0};
    outgoing prompt = {ESG_PATH_PROMPT, bytes, len, NULL, 0};
    if (notification_id > 0) {
        int id_len = snprintf(id_text, sizeof id_text, "%lld", (long long)notification_id);
        id_metadata.key = grpc_slice_from_static_string(ESG_PROMPT_NOTIFICATION_ID_KEY);
        id_metadata.value = grpc_slice_from_static_buffer(id_text, (size_t)id_len);
        prompt.metadata = &id_metadata;
        prompt.n_metadata = 1;
    }
    if (rc == ESG_OK)
        rc = call_for_empty(client, &prompt, true, client->max_call_attempts, err);
    esg_free(bytes);
    cli_leave(client);
    return rc;
}

/* JSON of args (an array) or kwargs (an object), or empty_json for NULL. */
static esg_status encode_arguments(const esg_value *value, esg_type type, const char *empty_json,
                                   char **out, size_t *out_len, esg_error *err)
{
    if (value == NULL) {
        *out = esg_strdup(empty_json);
        if (*out == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory encoding arguments");
        *out_len = strlen(empty_json);
        return ESG_OK;
    }
    if (esg_value_type(value) != type)
        return esg_error_set(err, ESG_EINVAL, "%s must be an %s, not %s",
                             type == ESG_TYPE_ARRAY ? "args" : "kwargs", esg_type_name(type),
                             esg_type_name(esg_value_type(value)));
    return esg_json_encode(value, out, out_len, err);
}

esg_status esg_client_call(esg_client *client, const char *method_name, const esg_value *args,
                           const esg_value *kwargs, esg_value **result, esg_error *err)
{
    return esg_client_call_with_key(client, NULL, method_name, args, kwargs, result, err);
}

bool esg_client_is_idempotency_key(const char *key)
{
    return key != NULL && esg_wire_is_idempotency_key((const uint8_t *)key, strlen(key));
}

esg_status esg_client_call_with_key(esg_client *client, const char *idempotency_key,
                                    const char *method_name, const esg_value *args,
                                    const esg_value *kwargs, esg_value **result, esg_error *err)
{
    *result = NULL;
    if (method_name == NULL)
        return esg_error_set(err, ESG_EINVAL, "no method name to call");
    /* One key per command, the same in its repeats. */
    char new_key[ESG_UUID_HEX_SIZE];
    if (idempotency_key == NULL) {
        esg_uuid key_uuid;
        esg_uuid4(&key_uuid);
        esg_uuid_hex(&key_uuid, new_key);
        idempotency_key = new_key;
    }
    if (!esg_client_is_idempotency_key(idempotency_key))
        return esg_error_set(err, ESG_EINVAL,
                             "an idempotency key must be 1 to %d printable ASCII characters",
                             ESG_IDEMPOTENCY_KEY_MAX);
    char *args_json = NULL, *kwargs_json = NULL;
    size_t args_len = 0, kwargs_len = 0;
    uint8_t *request_bytes = NULL, *reply_bytes = NULL;
    size_t request_len = 0, reply_len = 0;
    EventsourcingGrpc__MethodRequest request = EVENTSOURCING_GRPC__METHOD_REQUEST__INIT;
    EventsourcingGrpc__MethodReply *reply = NULL;
    esg_error decode_err = {0};

    esg_status rc = encode_arguments(args, ESG_TYPE_ARRAY, "[]", &args_json, &args_len, err);
    if (rc == ESG_OK)
        rc = encode_arguments(kwargs, ESG_TYPE_OBJECT, "{}", &kwargs_json, &kwargs_len, err);
    if (rc != ESG_OK)
        goto out;
    request.method_name = (char *)method_name;
    request.args.data = (uint8_t *)args_json;
    request.args.len = args_len;
    request.kwargs.data = (uint8_t *)kwargs_json;
    request.kwargs.len = kwargs_len;
    rc = pack_message(&request.base, &request_bytes, &request_len, err);
    if (rc != ESG_OK)
        goto out;
    /* A server that keeps keys runs the command once however often it arrives, so a failure
     * that leaves the outcome unknown (UNAVAILABLE, the deadline) is tried again; another server
     * might run it twice: one try. */
    grpc_metadata key_metadata = {.key =
                                      grpc_slice_from_static_string(ESG_IDEMPOTENCY_KEY_METADATA),
                                  .value = grpc_slice_from_static_string(idempotency_key)};
    const outgoing call = {ESG_PATH_CALL, request_bytes, request_len, &key_metadata, 1};
    rc = cli_enter(client, err);
    if (rc == ESG_OK) {
        rc = atomic_load(&client->server_keeps_keys)
                 ? call_with_retries(client, &call, client->max_call_attempts, &reply_bytes,
                                     &reply_len, err)
                 : call_once(client, &call, true, &reply_bytes, &reply_len, err);
        cli_leave(client);
    }
    if (rc != ESG_OK)
        goto out;
    reply = eventsourcing_grpc__method_reply__unpack(&esg_wire_allocator, reply_len, reply_bytes);
    if (reply == NULL) {
        rc = cli_malformed_reply(ESG_PATH_CALL, err);
        goto out;
    }
    if (esg_json_decode((const char *)reply->data.data, reply->data.len, result, &decode_err) !=
        ESG_OK)
        rc = esg_error_set(err, ESG_EREMOTE, "%s: malformed reply: %s", method_name,
                           decode_err.message);

out:
    if (reply != NULL)
        eventsourcing_grpc__method_reply__free_unpacked(reply, &esg_wire_allocator);
    esg_free(reply_bytes);
    esg_free(request_bytes);
    esg_free(args_json);
    esg_free(kwargs_json);
    return rc;
}

/* Appends the notifications of a reply to out, all or none. */
esg_status cli_append_notifications(EventsourcingGrpc__Notification *const *items, size_t n,
                                    const char *path, esg_notification_list *out, esg_error *err)
{
    size_t n_before = out->n_items;
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < n; i++) {
        const EventsourcingGrpc__Notification *item = items[i];
        int64_t id = 0;
        esg_stored_event stored = {0};
        if (!esg_wire_parse_int(item->id, &id) ||
            !esg_wire_parse_int(item->originator_version, &stored.originator_version) ||
            esg_uuid_parse(item->originator_id, strlen(item->originator_id), &stored.originator_id,
                           NULL) != ESG_OK) {
            rc = cli_malformed_reply(path, err);
            break;
        }
        /* Borrowed for the push, which copies them. */
        stored.topic = item->topic;
        stored.state = item->state.data;
        stored.state_len = item->state.len;
        rc = esg_notification_list_push(out, id, &stored, err);
    }
    if (rc != ESG_OK) {
        for (size_t i = n_before; i < out->n_items; i++)
            esg_stored_event_clear(&out->items[i].event);
        out->n_items = n_before;
    }
    return rc;
}

esg_status esg_client_select_notifications(esg_client *client, int64_t start, int64_t limit,
                                           int64_t stop, const char *const *topics, size_t n_topics,
                                           esg_notification_list *out, esg_error *err)
{
    if (out == NULL || (n_topics > 0 && topics == NULL))
        return esg_error_set(err, ESG_EINVAL, "GetNotifications needs a list and its topics");
    char start_text[24], limit_text[24], stop_text[24] = "";
    snprintf(start_text, sizeof start_text, "%lld", (long long)start);
    snprintf(limit_text, sizeof limit_text, "%lld", (long long)limit);
    if (stop != 0)
        snprintf(stop_text, sizeof stop_text, "%lld", (long long)stop);
    EventsourcingGrpc__NotificationsRequest request =
        EVENTSOURCING_GRPC__NOTIFICATIONS_REQUEST__INIT;
    request.start = start_text;
    request.limit = limit_text;
    request.stop = stop_text;
    request.n_topics = n_topics;
    request.topics = (char **)topics;
    uint8_t *request_bytes = NULL, *reply_bytes = NULL;
    size_t request_len = 0, reply_len = 0;
    EventsourcingGrpc__NotificationsReply *reply = NULL;

    esg_status rc = pack_message(&request.base, &request_bytes, &request_len, err);
    if (rc != ESG_OK)
        goto out;
    rc = cli_enter(client, err);
    if (rc != ESG_OK)
        goto out;
    const outgoing select = {ESG_PATH_GET_NOTIFICATIONS, request_bytes, request_len, NULL, 0};
    rc = call_with_retries(client, &select, client->max_call_attempts, &reply_bytes, &reply_len,
                           err);
    cli_leave(client);
    if (rc != ESG_OK)
        goto out;
    reply = eventsourcing_grpc__notifications_reply__unpack(&esg_wire_allocator, reply_len,
                                                            reply_bytes);
    if (reply == NULL) {
        rc = cli_malformed_reply(ESG_PATH_GET_NOTIFICATIONS, err);
        goto out;
    }
    rc = cli_append_notifications(reply->notifications, reply->n_notifications,
                                  ESG_PATH_GET_NOTIFICATIONS, out, err);

out:
    if (reply != NULL)
        eventsourcing_grpc__notifications_reply__free_unpacked(reply, &esg_wire_allocator);
    esg_free(reply_bytes);
    esg_free(request_bytes);
    return rc;
}

/* ---- The remote notification log ------------------------------------------- */

static bool is_page_capped(esg_client *client)
{
    pthread_mutex_lock(&client->lock);
    bool is_capped = client->is_page_capped;
    pthread_mutex_unlock(&client->lock);
    return is_capped;
}

/* True when a server refused a page size: ours answers INVALID_ARGUMENT, the
 * Python reference UNKNOWN with "Requested limit N greater than section size 10". */
static bool is_limit_refused(esg_status rc, const esg_error *err)
{
    /* A server that refuses a limit names it; our server caps limits instead. */
    return (rc == ESG_EINVAL && strstr(err->message, "limit") != NULL) ||
           (rc == ESG_EREMOTE && strstr(err->message, "greater than section size") != NULL);
}

/* Reads up to limit notifications from a server that refuses pages above
 * REFERENCE_SECTION_SIZE, in sections of that size, so that the page comes back
 * short only at the end of the log (the follower stops at a short page). */
static esg_status select_in_sections(esg_client *client, int64_t start, int64_t limit,
                                     const char *const *topics, size_t n_topics,
                                     esg_notification_list *out, esg_error *err)
{
    esg_status rc = ESG_OK;
    while (rc == ESG_OK && limit > 0) {
        size_t n_before = out->n_items;
        int64_t section = limit < REFERENCE_SECTION_SIZE ? limit : REFERENCE_SECTION_SIZE;
        rc = esg_client_select_notifications(client, start, section, 0, topics, n_topics, out, err);
        int64_t n_got = (int64_t)(out->n_items - n_before);
        if (rc != ESG_OK || n_got < section)
            break;
        start = out->items[out->n_items - 1].id + 1;
        limit -= n_got;
    }
    return rc;
}

static esg_status remote_log_select(void *ctx, int64_t start, int64_t limit,
                                    const char *const *topics, size_t n_topics,
                                    esg_notification_list *out, esg_error *err)
{
    esg_client *client = ctx;
    esg_error local = {0};
    esg_status rc = ESG_OK;
    if (is_page_capped(client) && limit > REFERENCE_SECTION_SIZE) {
        rc = select_in_sections(client, start, limit, topics, n_topics, out, &local);
    } else {
        rc =
            esg_client_select_notifications(client, start, limit, 0, topics, n_topics, out, &local);
        if (limit > REFERENCE_SECTION_SIZE && is_limit_refused(rc, &local)) {
            pthread_mutex_lock(&client->lock);
            client->is_page_capped = true;
            pthread_mutex_unlock(&client->lock);
            rc = select_in_sections(client, start, limit, topics, n_topics, out, &local);
        }
    }
    if (rc != ESG_OK)
        esg_error_set(err, rc, "%s", local.message);
    return rc;
}

void esg_client_notification_log(esg_client *client, const char *leader_name,
                                 esg_notification_log *out)
{
    memset(out, 0, sizeof *out);
    out->leader_name = leader_name;
    out->page_size = is_page_capped(client) ? REFERENCE_SECTION_SIZE : LOG_PAGE_SIZE;
    /* Our server cuts a page short when its bytes would pass ESG_GRPC_MAX_PAGE_BYTES; a short
     * page far below that is the end, which saves the follower a round trip per pull (a page
     * cut short before one notification of over half the cap is read at the next prompt or
     * MAX_PULL_INTERVAL). The reference's sections are read whole by remote_log_select. */
    out->pages_may_be_short = true;
    out->heavy_page_bytes = ESG_GRPC_MAX_PAGE_BYTES / 2;
    out->select = remote_log_select;
    out->ctx = client;
}

/* ---- Closing ----------------------------------------------------------------- */

void esg_client_close(esg_client *client)
{
    if (client == NULL)
        return;
    pthread_mutex_lock(&client->lock);
    client->is_closed = true;
    for (live_call *live = client->live_calls; live != NULL; live = live->next)
        grpc_call_cancel(live->call, NULL);
    pthread_cond_broadcast(&client->changed); /* wakes the threads waiting to retry */
    while (client->n_active > 0)
        pthread_cond_wait(&client->changed, &client->lock);
    grpc_channel *channel = client->channel;
    client->channel = NULL;
    pthread_mutex_unlock(&client->lock);
    if (channel != NULL)
        grpc_channel_destroy(channel);
}

void esg_client_free(esg_client *client)
{
    if (client == NULL)
        return;
    esg_client_close(client);
    client_destroy(client);
    grpc_shutdown();
}
