/* What the client's files share (client.c: connecting, unary calls, closing; subscription.c:
 * the Subscribe stream): the client object and its live calls, the counting of threads inside
 * a call, and the reading of statuses and notifications. Internal to the gRPC layer. */
#ifndef ESG_CLIENT_INTERNAL_H
#define ESG_CLIENT_INTERNAL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "esg/grpc.h"
#include "eventsourcing_grpc/protos/application.pb-c.h"

/* A call, linked in its client while its grpc_call lives, so that esg_client_close can cancel
 * it. */
typedef struct live_call {
    grpc_call *call;        /* owned; NULL when there is none */
    struct live_call *next; /* in client->live_calls (a few: one per thread in a call) */
} live_call;

struct esg_client {
    char *address;          /* the server's "host:port", owned */
    grpc_channel *channel;  /* NULL once closed */
    int max_attempts;       /* connection attempts (options, defaults applied) */
    int64_t backoff_ms;     /* first wait between attempts */
    int64_t deadline_ms;    /* per attempt of a call */
    int max_call_attempts;  /* tries of an idempotent call */
    int64_t keepalive_ms;   /* see esg_client_options; < 0: none */
    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t changed; /* closed, or n_active fell to 0 */
    bool is_closed;         /* set by esg_client_close; later calls get ESG_ECLOSED */
    int n_active;           /* threads inside a public call */
    live_call *live_calls;  /* calls whose grpc_call exists */
    bool is_page_capped;    /* the server refused pages above REFERENCE_SECTION_SIZE */
    /* A reply said the server keeps idempotency keys (ESG_IDEMPOTENCY_KEY_TTL_METADATA): a
     * command that failed ambiguously may be sent again with its key. */
    atomic_bool server_keeps_keys;
    atomic_bool has_answered; /* a Ping of cli_reach was answered */
};

/* esg_client_connect_address without the Pings: the channel is made and the server not waited
 * for. For nodes, which keep one channel through a peer's outages (a channel destroyed while
 * gRPC 1.51 has a connection attempt in flight leaves its subchannel and TLS objects behind at
 * exit), and reach the peer with cli_reach. */
esg_status cli_open_address(const char *address, const esg_client_options *options,
                            esg_client **out, esg_error *err);

/* Until the server has once answered: one Ping that does not wait for the connection (a server
 * that is down fails it at once, as a new channel's Ping would). ESG_OK at once afterwards: later
 * outages are met by the calls themselves. */
esg_status cli_reach(esg_client *client, esg_error *err);

/* Counts the calling thread in (ESG_ECLOSED when the client is closed), and out: close waits
 * for the threads counted in. */
esg_status cli_enter(esg_client *client, esg_error *err);
void cli_leave(esg_client *client);

/* Creates a call to path on cq and links it in *live (whose memory must stay put until
 * cli_close_call); ESG_ECLOSED when the client is closed. */
esg_status cli_open_call(esg_client *client, grpc_completion_queue *cq, const char *path,
                         gpr_timespec deadline, live_call *live, esg_error *err);
/* Unlinks and releases live's call (none is allowed). */
void cli_close_call(esg_client *client, live_call *live);

/* The method's name from its path ("/pkg.Service/Method"), for messages. */
const char *cli_method_of(const char *path);

/* The result of a call from its gRPC status: ESG_OK, our own view of transport failures, or the
 * server's status with its message. */
esg_status cli_status_to_result(esg_client *client, const char *method, grpc_status_code status,
                                grpc_slice details, esg_error *err);

/* A reply that does not decode is the server's fault, not the caller's: ESG_EREMOTE. */
esg_status cli_malformed_reply(const char *path, esg_error *err);

/* Appends the n notifications of a reply of path to out (all or none). */
esg_status cli_append_notifications(EventsourcingGrpc__Notification *const *items, size_t n,
                                    const char *path, esg_notification_list *out, esg_error *err);

#endif
