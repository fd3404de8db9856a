/* What the server's files share (server.c: the call machinery, start and stop;
 * application_service.c: eventsourcing_grpc.Application; node_service.c:
 * eventsourcing_grpc_c.v1.Node; health_service.c: grpc.health.v1.Health): the server and call
 * objects and the calls to reply with.
 * Internal to the gRPC layer. */
#ifndef ESG_SERVER_INTERNAL_H
#define ESG_SERVER_INTERNAL_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/metrics.h"
#include "esg/grpc.h"
#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "grpc/metrics_server.h"
#include "grpc/unread_replies.h"

/* gRPC's status codes, OK (0) to UNAUTHENTICATED (16). */
#define N_GRPC_CODES 17

typedef enum call_kind {
    KIND_PING,
    KIND_CALL,
    KIND_PROMPT,
    KIND_GET_NOTIFICATIONS,
    KIND_LEADER_POSITIONS,
    KIND_SUBSCRIBE,
    KIND_REFLECTION_V1ALPHA, /* grpc.reflection: not on the health port (kinds before health) */
    KIND_REFLECTION_V1,
    KIND_HEALTH_CHECK,
    KIND_HEALTH_WATCH,
    KIND_UNKNOWN, /* any other path: answered UNIMPLEMENTED */
    N_KINDS
} call_kind;

typedef struct server_call server_call;

/* What a node adds to its server (esg_node: the application served in its role in a system),
 * given at start and kept until the server stops. */
typedef struct srv_node_hooks {
    metrics_collect_fn write_metrics; /* its families on /metrics */
    /* Its leaders' positions for eventsourcing_grpc_c.v1.Node (out is the caller's). */
    esg_status (*leader_positions)(void *ctx, esg_leader_positions *out, esg_error *err);
    /* Each write of the application (the server holds the application's listener). */
    esg_recorded_fn on_recorded;
    void *ctx;
} srv_node_hooks;

struct esg_server {
    esg_application *app; /* borrowed */
    /* Sent as initial metadata with successful replies (ESG_IDEMPOTENCY_KEY_TTL_METADATA) when
     * the application keeps idempotency keys; n_reply_metadata 0 otherwise. */
    grpc_metadata reply_metadata;
    size_t n_reply_metadata;
    char key_ttl_text[24];
    grpc_server *grpc;             /* owned */
    grpc_completion_queue *cq;     /* owned; every call and request uses it */
    void *methods[N_KINDS];        /* registered method handles (NULL for KIND_UNKNOWN) */
    grpc_server *health_grpc;      /* owned; NULL without a health address */
    void *health_methods[N_KINDS]; /* the health service's handles on health_grpc */
    int health_port;               /* the health port, or 0 */
    pthread_t *workers;            /* owned */
    int n_workers;
    int port;                         /* the port listened on */
    bool is_loopback_only;            /* local credentials: calls from other peers are refused */
    atomic_bool has_refused;          /* a non-loopback peer was refused (logged once) */
    atomic_bool has_cancelled_unread; /* it cancelled calls for unread replies (logged once) */
    char **leader_names;              /* owned copies; who may Prompt */
    size_t n_leader_names;
    esg_prompt_fn on_prompt; /* may be NULL */
    void *on_prompt_ctx;
    pthread_mutex_t lock;    /* guards the fields below */
    pthread_cond_t changed;  /* signalled when is_shut_down is set */
    bool is_stopping;        /* no more requests are posted */
    int n_shutdowns;         /* shutdown tags still to arrive (one per gRPC server) */
    bool is_shut_down;       /* every shutdown tag arrived */
    bool is_queue_shut;      /* the completion queue is shut: no batch may start */
    bool is_serving;         /* the health status */
    server_call *watchers;   /* health Watch calls waiting for a change, linked */
    atomic_size_t n_calls;   /* received calls not yet freed */
    atomic_size_t n_objects; /* call objects alive, requests included */
    unread_replies unread;   /* unary replies whose calls are not over yet */
    int shutdown_tag;        /* its address tags the shutdown notifications */
    /* Metrics (server_metrics.c): counted by every worker without a lock. */
    metrics_server *metrics; /* owned; NULL without a metrics address */
    atomic_uint_least64_t n_started[N_KINDS];
    atomic_uint_least64_t n_handled[N_KINDS][N_GRPC_CODES];
    esg_histogram handling_seconds[N_KINDS];
    srv_node_hooks node_hooks; /* all NULL without a node; set before any thread starts */
    /* Subscribe calls (node_service.c), linked through their subscriptions. */
    pthread_mutex_t subscriptions_lock; /* guards the three fields below */
    server_call *subscriptions;
    size_t n_subscriptions;
    bool is_subscribing_closed; /* stop began: no more, and those left are being ended */
    /* Other replicas' writes, heard on a shared database (node_service.c): NULL elsewhere. */
    esg_recorder_watch *replica_watch; /* owned */
    pthread_t replica_watch_thread;
    atomic_bool is_replica_watch_stopping;
};

/* What a completed batch was: the tag of each batch points at one of these,
 * embedded in its call object. */
typedef enum batch_step {
    STEP_REQUEST,     /* a call arrived (or the request ended by shutdown) */
    STEP_REPLY,       /* a unary reply and the client's close */
    STEP_COSTLY_OPEN, /* a costly unary call's initial metadata was sent (or its client left) */
    STEP_WATCH_READ,  /* a Watch's request message was read */
    STEP_WATCH_SENT,  /* a Watch's first status was sent */
    STEP_WATCH_END,   /* a Watch's last status and end were sent */
    STEP_WATCH_CLOSE, /* a Watch's client closed or the call ended */
    STEP_STREAM_READ, /* a bidirectional stream's next request read, or its end */
    STEP_STREAM_SENT, /* a bidirectional stream's reply sent */
    STEP_STREAM_END,  /* a bidirectional stream's status sent and the client's close seen */
    STEP_SUB_READ,    /* a Subscribe's request was read */
    STEP_SUB_SENT,    /* a Subscribe's page was sent */
    STEP_SUB_END,     /* a Subscribe's status was sent */
    STEP_SUB_CLOSE,   /* a Subscribe's call ended (the client's close, or a cancellation) */
    N_BATCH_STEPS
} batch_step;

typedef struct batch_tag {
    server_call *call; /* the call object it belongs to */
    batch_step step;
    atomic_uint handoffs; /* released before gRPC gets the tag, acquired when it returns:
                           * makes the hand-over between workers visible to ThreadSanitizer,
                           * which cannot see gRPC's own synchronisation */
} batch_tag;

struct server_call {
    esg_server *server;
    call_kind kind;
    bool on_health_port;          /* came to health_grpc, not to grpc */
    bool is_received;             /* the request completed: a call exists */
    atomic_int n_batches;         /* batches in flight; freed at 0 once received */
    grpc_call *call;              /* owned once received */
    grpc_call_details details;    /* path and host, for KIND_UNKNOWN */
    grpc_metadata_array metadata; /* the request's metadata */
    gpr_timespec deadline;
    struct timespec received_at; /* on CLOCK_MONOTONIC: for the request log */
    grpc_byte_buffer *request;   /* received payload, may be NULL */
    grpc_byte_buffer *response;  /* sent payload, until its batch completes */
    unread_reply unread;         /* its unary reply, listed in server->unread while it lasts */
    grpc_slice status_details;   /* sent status message, until its batch completes */
    bool has_status_details;
    bool has_sent_initial_metadata; /* a costly call's, ahead of its reply */
    int is_cancelled;               /* filled by RECV_CLOSE_ON_SERVER */
    bool has_status;                /* a status was sent: the two fields below hold it */
    grpc_status_code status_code;   /* for grpc_server_handled_total */
    double handling_seconds;        /* from received_at to the status */
    batch_tag tags[N_BATCH_STEPS];  /* one per batch_step */
    server_call *next_watcher;      /* in server->watchers, under server->lock */
    /* Subscribe's: its state (owned; NULL for other kinds) and whether the call ended (both
     * under server->subscriptions_lock, as the read and the close complete on any worker). */
    struct subscription *subscription;
    bool is_subscribe_closed;
};

/* ---- server.c: batches and replies ---- */

/* Starts a batch of c tagged with step, counted while in flight (server->lock held, or not). */
void srv_start_batch_locked(server_call *c, const grpc_op *ops, size_t n, batch_step step);
void srv_start_batch(server_call *c, const grpc_op *ops, size_t n, batch_step step);

/* Starts a server-streaming call: the headers go out and its one request is read (read_step);
 * the client's close is awaited from the start (close_step). */
void srv_start_stream(server_call *c, batch_step read_step, batch_step close_step);

/* Sends one message of a stream (c->response, which c keeps until the batch completes). */
void srv_send_response(server_call *c, batch_step step);

/* Sends the reply (payload may be NULL for an error) and the status, and waits for the client's
 * close. Takes payload (esg_malloc'ed) in all cases. */
void srv_reply(server_call *c, grpc_status_code code, const char *message, uint8_t *payload,
               size_t payload_len);

/* Replies with a protobuf-c message (packed here) or an error status. */
void srv_reply_message(server_call *c, esg_status rc, const esg_error *err,
                       const ProtobufCMessage *message);

/* Holds c (as a batch in flight does) and lets it go: the last release frees it. */
void srv_hold_call(server_call *c);
void srv_release_call(server_call *c);

/* ---- server_metrics.c: grpc_server_* and the /metrics endpoint ---- */

/* Counts a call received; notes the status it is answered with (once, when it is sent); counts
 * it handled when it is freed (CANCELLED when no status went out). */
void srv_count_started(server_call *c);
void srv_note_status(server_call *c, grpc_status_code code);
void srv_count_handled(server_call *c);

/* Serves the server's metrics at address (the process's, gRPC's, the application's and a
 * node's), or stops doing so. */
esg_status srv_metrics_start(esg_server *server, const char *address, esg_error *err);
void srv_metrics_stop(esg_server *server);

/* ---- server.c: start ---- */

/* esg_server_start with a node's hooks (copied; NULL for none): hooks->ctx must outlive the
 * server. */
esg_status srv_start(esg_application *app, const esg_server_options *options,
                     const srv_node_hooks *hooks, esg_server **out, esg_error *err);

/* ---- node_service.c: eventsourcing_grpc_c.v1.Node ---- */

void srv_handle_leader_positions(server_call *c, const ProtobufCMessage *request);

/* Subscribe: start it (it reads its request itself), then its steps. */
void srv_handle_subscribe(server_call *c);
void srv_subscribe_read(server_call *c, bool ok);
void srv_subscribe_sent(server_call *c, bool ok);
void srv_subscribe_closed(server_call *c, bool ok);
/* Frees c's subscription (with the call). */
void srv_subscription_free(server_call *c);
/* New notifications were recorded: the subscriptions waiting for some read and send them, on
 * the calling thread. */
void srv_wake_subscriptions(esg_server *server);
/* Whether follower_name is subscribed. */
bool srv_is_subscribed(esg_server *server, const char *follower_name);
/* At stop: no more subscriptions; those waiting end now, the others after their step. */
void srv_end_subscriptions(esg_server *server);
/* On a database that other processes write to (replicas of the application on PostgreSQL), a
 * thread that wakes the subscriptions when they write; nothing on the others. */
esg_status srv_replica_watch_start(esg_server *server, esg_error *err);
/* Stops that thread (at once) and frees the watch. */
void srv_replica_watch_stop(esg_server *server);

/* ---- application_service.c: the methods of eventsourcing_grpc.Application ---- */

/* A unary method's handler answers the call (srv_reply*) once. Its request was unpacked by the
 * call machinery, which frees it when the handler returns (borrowed). */
void srv_handle_ping(server_call *c, const ProtobufCMessage *request);
void srv_handle_call(server_call *c, const ProtobufCMessage *request);
void srv_handle_prompt(server_call *c, const ProtobufCMessage *request);
void srv_handle_get_notifications(server_call *c, const ProtobufCMessage *request);

/* A page of notifications in the reference's message form, pointing into a list (which must
 * outlive it): the list's first n, under ESG_GRPC_MAX_PAGE_BYTES but at least one. */
typedef struct srv_page {
    EventsourcingGrpc__Notification *items; /* owned, as the two below */
    EventsourcingGrpc__Notification **pointers;
    char (*numbers)[3][ESG_UUID_HEX_SIZE]; /* id, originator id, version of each */
    size_t n;
} srv_page;
esg_status srv_page_build(srv_page *page, const esg_notification_list *list, esg_error *err);
void srv_page_free(srv_page *page);

/* ---- reflection_service.c: grpc.reflection v1alpha and v1 ---- */

/* ServerReflectionInfo streams: a reply for each request, one batch at a time. Start it, then
 * each read (ok: gRPC's success) and each reply sent. */
void srv_handle_reflection(server_call *c);
void srv_reflection_read(server_call *c, bool ok);
void srv_reflection_sent(server_call *c, bool ok);

/* ---- health_service.c: grpc.health.v1.Health ---- */

/* Whether the health status is SERVING (until stop begins); takes server->lock. */
bool srv_is_serving(esg_server *server);
void srv_handle_health_check(server_call *c, const ProtobufCMessage *request);
/* Watch streams: it reads its request itself. */
void srv_handle_health_watch(server_call *c);
/* A Watch's steps: its request read, its first status sent, its client's close. */
void srv_watch_send_status(server_call *c, bool ok);
void srv_watch_sent(server_call *c, bool ok);
void srv_watch_closed(server_call *c, bool ok);
/* Sends the last status and ends a Watch (at stop). */
void srv_watch_end(server_call *c);

#endif
