/* A server's metrics: the grpc_server_* families that gRPC servers in Go and Java export (by
 * the names and labels their dashboards read), with the process's and the application's
 * families, served at /metrics by metrics_server.c. */
#include <string.h>

#include "application/application_metrics.h"
#include "core/clock.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"

/* What each kind of call is in the families' labels. */
typedef struct kind_labels {
    const char *service;
    const char *method;
    const char *type; /* unary, server_stream or bidi_stream */
} kind_labels;

static const kind_labels labels_of_kind[N_KINDS] = {
    [KIND_PING] = {"eventsourcing_grpc.Application", "Ping", "unary"},
    [KIND_CALL] = {"eventsourcing_grpc.Application", "CallApplicationMethod", "unary"},
    [KIND_PROMPT] = {"eventsourcing_grpc.Application", "Prompt", "unary"},
    [KIND_GET_NOTIFICATIONS] = {"eventsourcing_grpc.Application", "GetNotifications", "unary"},
    [KIND_LEADER_POSITIONS] = {"eventsourcing_grpc_c.v1.Node", "GetLeaderPositions", "unary"},
    [KIND_SUBSCRIBE] = {"eventsourcing_grpc_c.v1.Node", "Subscribe", "server_stream"},
    [KIND_REFLECTION_V1ALPHA] = {"grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo",
                                 "bidi_stream"},
    [KIND_REFLECTION_V1] = {"grpc.reflection.v1.ServerReflection", "ServerReflectionInfo",
                            "bidi_stream"},
    [KIND_HEALTH_CHECK] = {"grpc.health.v1.Health", "Check", "unary"},
    [KIND_HEALTH_WATCH] = {"grpc.health.v1.Health", "Watch", "server_stream"},
    /* Calls to any other path: counted together, never by the path a peer chose. */
    [KIND_UNKNOWN] = {"unknown", "unknown", "unary"},
};

void srv_count_started(server_call *c)
{
    atomic_fetch_add_explicit(&c->server->n_started[c->kind], 1, memory_order_relaxed);
}

void srv_note_status(server_call *c, grpc_status_code code)
{
    if (c->has_status)
        return;
    c->has_status = true;
    c->status_code = code;
    c->handling_seconds = esg_clock_seconds_since(&c->received_at);
}

void srv_count_handled(server_call *c)
{
    grpc_status_code code = c->has_status ? c->status_code : GRPC_STATUS_CANCELLED;
    if ((int)code < 0 || (int)code >= N_GRPC_CODES)
        code = GRPC_STATUS_UNKNOWN;
    double seconds = c->has_status ? c->handling_seconds : esg_clock_seconds_since(&c->received_at);
    atomic_fetch_add_explicit(&c->server->n_handled[c->kind][code], 1, memory_order_relaxed);
    esg_histogram_observe(&c->server->handling_seconds[c->kind], seconds);
}

/* ---- The families ---- */

/* Room for the labels of a kind, its code, and the list's end. */
#define LABELS_SIZE 9

/* Fills labels with a kind's service, method and type, and with its code when code_name is not
 * NULL; returns it. */
static const char **labels_of(int kind, const char *code_name, const char *labels[LABELS_SIZE])
{
    const kind_labels *k = &labels_of_kind[kind];
    const char *list[LABELS_SIZE] = {"grpc_service",
                                     k->service,
                                     "grpc_method",
                                     k->method,
                                     "grpc_type",
                                     k->type,
                                     code_name ? "grpc_code" : NULL,
                                     code_name,
                                     NULL};
    memcpy(labels, list, sizeof list);
    return labels;
}

static void write_started(esg_server *server, esg_buffer *out)
{
    esg_metrics_family(out, "grpc_server_started_total", "counter",
                       "Total number of RPCs started on the server.");
    for (int kind = 0; kind < N_KINDS; kind++) {
        const char *labels[LABELS_SIZE];
        esg_metrics_sample(out, "grpc_server_started_total", labels_of(kind, NULL, labels),
                           (double)atomic_load(&server->n_started[kind]));
    }
}

static void write_handled(esg_server *server, esg_buffer *out)
{
    esg_metrics_family(out, "grpc_server_handled_total", "counter",
                       "Total number of RPCs completed on the server, regardless of success or "
                       "failure.");
    for (int kind = 0; kind < N_KINDS; kind++) {
        for (int code = 0; code < N_GRPC_CODES; code++) {
            uint64_t n = atomic_load(&server->n_handled[kind][code]);
            if (n == 0 && code != GRPC_STATUS_OK)
                continue; /* codes appear once seen; OK is always there */
            const char *labels[LABELS_SIZE];
            const char *code_name = esg_wire_status_name((grpc_status_code)code);
            esg_metrics_sample(out, "grpc_server_handled_total", labels_of(kind, code_name, labels),
                               (double)n);
        }
    }
}

static void write_handling_seconds(esg_server *server, esg_buffer *out)
{
    esg_metrics_family(out, "grpc_server_handling_seconds", "histogram",
                       "Histogram of response latency (seconds) of gRPC that had been application-"
                       "level handled by the server.");
    for (int kind = 0; kind < N_KINDS; kind++) {
        if (esg_histogram_count(&server->handling_seconds[kind]) == 0)
            continue; /* as started_total says: none yet */
        const char *labels[LABELS_SIZE];
        esg_metrics_histogram(out, "grpc_server_handling_seconds", labels_of(kind, NULL, labels),
                              &server->handling_seconds[kind]);
    }
}

static void write_unread_replies(esg_server *server, esg_buffer *out)
{
    size_t bytes = 0;
    uint64_t n_cancelled = 0;
    unread_replies_figures(&server->unread, &bytes, &n_cancelled);
    const char *labels[] = {"application", esg_application_name(server->app), NULL};
    esg_metrics_family(out, "eventsourcing_server_unread_reply_bytes", "gauge",
                       "Bytes of replies their clients have not read yet");
    esg_metrics_sample(out, "eventsourcing_server_unread_reply_bytes", labels, (double)bytes);
    esg_metrics_family(out, "eventsourcing_server_unread_replies_cancelled_total", "counter",
                       "Calls cancelled because unread replies went over the limit");
    esg_metrics_sample(out, "eventsourcing_server_unread_replies_cancelled_total", labels,
                       (double)n_cancelled);
}

static void collect(void *ctx, esg_buffer *out)
{
    esg_server *server = ctx;
    esg_metrics_process(out);
    write_started(server, out);
    write_handled(server, out);
    write_handling_seconds(server, out);
    write_unread_replies(server, out);
    esg_application_write_metrics(server->app, out);
    if (server->node_hooks.write_metrics != NULL)
        server->node_hooks.write_metrics(server->node_hooks.ctx, out);
}

esg_status srv_metrics_start(esg_server *server, const char *address, esg_error *err)
{
    return metrics_server_start(address, collect, server, esg_application_name(server->app),
                                &server->metrics, err);
}

void srv_metrics_stop(esg_server *server)
{
    metrics_server_stop(server->metrics);
    server->metrics = NULL;
}

int esg_server_metrics_port(const esg_server *server)
{
    return server->metrics != NULL ? metrics_server_port(server->metrics) : 0;
}
