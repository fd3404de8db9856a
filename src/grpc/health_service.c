/* grpc.health.v1.Health: Check, and Watch streaming the status (SERVING, then NOT_SERVING and
 * the end of the stream at stop), with only one send in flight per call, as gRPC requires. */
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"

static bool is_known_service(const char *service)
{
    return service[0] == '\0' || strcmp(service, "eventsourcing_grpc.Application") == 0 ||
           strcmp(service, "eventsourcing_grpc_c.v1.Node") == 0;
}

bool srv_is_serving(esg_server *server)
{
    pthread_mutex_lock(&server->lock);
    bool serving = server->is_serving;
    pthread_mutex_unlock(&server->lock);
    return serving;
}

void srv_handle_health_check(server_call *c, const ProtobufCMessage *message)
{
    const Grpc__Health__V1__HealthCheckRequest *request =
        (const Grpc__Health__V1__HealthCheckRequest *)message;
    esg_error err = {0};
    esg_status rc = ESG_OK;
    Grpc__Health__V1__HealthCheckResponse response = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    if (!is_known_service(request->service))
        rc = esg_error_set(&err, ESG_ENOTFOUND, "unknown service '%.100s'", request->service);
    else
        response.status =
            srv_is_serving(c->server)
                ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    srv_reply_message(c, rc, &err, &response.base);
}

/* Packs a health status into a new byte buffer, or NULL. */
static grpc_byte_buffer *health_message(Grpc__Health__V1__HealthCheckResponse__ServingStatus s)
{
    Grpc__Health__V1__HealthCheckResponse response = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    response.status = s;
    uint8_t packed[16];
    size_t len = grpc__health__v1__health_check_response__pack(&response, packed);
    return esg_wire_buffer(packed, len);
}

/* Watch streams the current status, then NOT_SERVING and the end of the
 * stream when the server stops (the only change a running server makes).
 * Batches: read the request (with the initial metadata), send the status,
 * and, at stop, send the last status and end; the client's close has a batch
 * of its own from the start. Only one send is ever in flight. */
void srv_handle_health_watch(server_call *c)
{
    srv_start_stream(c, STEP_WATCH_READ, STEP_WATCH_CLOSE);
}

void srv_watch_send_status(server_call *c, bool ok)
{
    if (!ok)
        return;
    uint8_t *data = NULL;
    size_t len = 0;
    esg_error err = {0};
    Grpc__Health__V1__HealthCheckResponse__ServingStatus status =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    if (esg_wire_read(c->request, &data, &len, &err) == ESG_OK) {
        Grpc__Health__V1__HealthCheckRequest *request =
            grpc__health__v1__health_check_request__unpack(&esg_wire_allocator, len, data);
        if (request != NULL && is_known_service(request->service))
            status = srv_is_serving(c->server)
                         ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                         : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        if (request != NULL)
            grpc__health__v1__health_check_request__free_unpacked(request, &esg_wire_allocator);
    }
    esg_free(data);
    c->response = health_message(status);
    if (c->response == NULL)
        return;
    srv_send_response(c, STEP_WATCH_SENT);
}

/* Sends NOT_SERVING and ends the stream (the caller holds server->lock). */
void srv_watch_end(server_call *c)
{
    grpc_byte_buffer_destroy(c->response);
    c->response =
        health_message(GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (c->response != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->response;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = GRPC_STATUS_OK;
    srv_note_status(c, GRPC_STATUS_OK);
    srv_start_batch_locked(c, ops, n, STEP_WATCH_END);
}

/* After the first status went out: wait for a change, or end at once if stopping. */
void srv_watch_sent(server_call *c, bool ok)
{
    esg_server *server = c->server;
    grpc_byte_buffer_destroy(c->response);
    c->response = NULL;
    if (!ok)
        return;
    pthread_mutex_lock(&server->lock);
    if (server->is_stopping) {
        srv_watch_end(c);
    } else {
        c->next_watcher = server->watchers;
        server->watchers = c;
    }
    pthread_mutex_unlock(&server->lock);
}

void srv_watch_closed(server_call *c, bool ok)
{
    (void)ok;
    esg_server *server = c->server;
    pthread_mutex_lock(&server->lock);
    for (server_call **p = &server->watchers; *p != NULL; p = &(*p)->next_watcher) {
        if (*p == c) {
            *p = c->next_watcher;
            break;
        }
    }
    pthread_mutex_unlock(&server->lock);
}
