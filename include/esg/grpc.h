/* The gRPC layer: an application served over the protocol of
 * eventsourcing-grpc 0.1.2 (service eventsourcing_grpc.Application, plus the
 * standard grpc.health.v1.Health and grpc.reflection, and this library's own
 * eventsourcing_grpc_c.v1.Node), and a client with an application proxy.
 *
 * Credentials follow the address: "localhost:PORT", "127.0.0.1:PORT" and
 * "[::1]:PORT" use gRPC local credentials (loopback only); any other address
 * uses mutual TLS from GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH
 * and GRPC_SSL_ROOT_CERTIFICATE_PATH, client certificates required and
 * verified on both sides. */
#ifndef ESG_GRPC_H
#define ESG_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/application.h"
#include "esg/env.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GetNotifications pages hold at most this many notifications, and no more
 * than ESG_GRPC_MAX_PAGE_BYTES of state (but always at least one notification,
 * however large), whatever limit a client asks for. */
#define ESG_GRPC_MAX_PAGE_NOTIFICATIONS 1000
#define ESG_GRPC_MAX_PAGE_BYTES (3 * 1024 * 1024)
/* Requests larger than this are refused by gRPC with RESOURCE_EXHAUSTED. */
#define ESG_GRPC_MAX_MESSAGE_BYTES (4 * 1024 * 1024)
/* A server of this library accepts a client's keepalive pings this often while it sends it
 * nothing (gRPC's default is 5 minutes; more often counts as a strike, two strikes end the
 * connection). At most ESG_CLIENT_KEEPALIVE_MS, so that our clients' pings are welcome. */
#define ESG_GRPC_MIN_PING_INTERVAL_MS 10000
/* Calls at once on one connection to a server (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, as
 * nghttpx's default): a client's further calls wait in the client until one ends. */
#define ESG_GRPC_MAX_CONCURRENT_STREAMS 100
/* Replies that their clients have not read yet (a client that stops reading keeps its replies in
 * the server's memory until their calls end) may hold this many bytes on one server; past it,
 * the calls with the oldest unread replies are cancelled with RESOURCE_EXHAUSTED. */
#define ESG_GRPC_MAX_UNREAD_REPLY_BYTES (64 * 1024 * 1024)
/* A call's args and kwargs may hold this many JSON values together (every value, nested ones
 * included); more is INVALID_ARGUMENT. Decoded, a value costs some 40 times its text: the cap
 * keeps one call's memory to tens of MB where 4 MiB of "[[],[],...]" took ~220 MB. */
#define ESG_GRPC_MAX_CALL_JSON_VALUES 100000

/* The request metadata key of a command's idempotency key (CallApplicationMethod): a server of
 * this library runs the command once per key and answers a repeat with the first reply
 * (esg_application_call_json_idempotent). Values: 1 to 255 printable ASCII characters; our
 * client sends a random UUID per command. */
#define ESG_IDEMPOTENCY_KEY_METADATA "idempotency-key"
/* The reply metadata key by which a server of this library says that it keeps idempotency keys,
 * and for how many seconds (IDEMPOTENCY_KEY_TTL, decimal): sent with every successful reply when
 * it does. Our client repeats a command after an ambiguous failure only to a server that said
 * so (a Python server ignores the key and would run it twice). */
#define ESG_IDEMPOTENCY_KEY_TTL_METADATA "idempotency-key-ttl"

/* Sends gRPC's own log lines (as many as its GRPC_VERBOSITY lets through: errors by default)
 * to esg_log, about app_name (borrowed: it must outlive the use of gRPC; NULL for none), so that
 * a process has one log in one format. Call it once at start, before gRPC is used. */
void esg_grpc_log_to_esg_log(const char *app_name);

/* ---- Server ---------------------------------------------------------------- */

typedef struct esg_server esg_server;

/* The Prompt's metadata key by which a leader of this library tells the highest notification id
 * it has recorded (decimal). */
#define ESG_PROMPT_NOTIFICATION_ID_KEY "eventsourcing-notification-id"

/* Called on a worker thread when a leader named leader_name sent a Prompt; leader_notification_id
 * is the highest notification id the leader said it has recorded, or 0 when it did not say (a
 * Python leader). */
typedef void (*esg_prompt_fn)(void *ctx, const char *leader_name, int64_t leader_notification_id);

typedef struct esg_server_options {
    const char *address; /* "host:port"; port 0 picks a free one (see esg_server_port) */
    const esg_env *env;  /* <APP>_GRPC_SSL_* or GRPC_SSL_* paths; NULL: the process's; borrowed */
    int n_threads;       /* workers draining the completion queue; 0 for the default: 8 when the
                          * application's recorder blocks (esg_recorder_is_blocking), else 2 */
    const char *const *leader_names; /* the applications allowed to Prompt (borrowed) */
    size_t n_leader_names;
    esg_prompt_fn on_prompt; /* may be NULL */
    void *on_prompt_ctx;
    /* Also serves grpc.health.v1.Health alone here ("host:port"), in plaintext,
     * for probes that cannot do TLS (Kubernetes' gRPC probes); NULL: no. */
    const char *health_address;
    /* Also serves Prometheus metrics at http://host:port/metrics here ("host:port"; port 0
     * picks a free one, see esg_server_metrics_port), in plaintext HTTP: the process's, gRPC's
     * (grpc_server_*) and the application's families; NULL: no. */
    const char *metrics_address;
} esg_server_options;

/* Serves app (borrowed; must outlive the server) on options->address. A bad
 * address, a port in use or an unreadable certificate is ESG_ECONFIG (or
 * ESG_EUNAVAILABLE for a busy port), with the reason. The health service
 * answers SERVING once this returns. The server listens to the application's
 * writes, to push them to subscribers (eventsourcing_grpc_c.v1.Node/Subscribe):
 * it holds the application's recorded listener until it stops, so set none of
 * your own meanwhile. */
esg_status esg_server_start(esg_application *app, const esg_server_options *options,
                            esg_server **out, esg_error *err);

/* The port the server listens on. */
int esg_server_port(const esg_server *server);

/* The port of options->health_address, or 0 without one. */
int esg_server_health_port(const esg_server *server);

/* The port of options->metrics_address, or 0 without one. */
int esg_server_metrics_port(const esg_server *server);

/* Calls in flight (received and not yet finished), for monitoring and tests. */
size_t esg_server_n_calls(const esg_server *server);

/* Stops the server: health turns NOT_SERVING, new calls are refused, calls in
 * flight finish (up to a grace of 1 s, then they are cancelled), and
 * everything is freed. NULL is allowed. */
void esg_server_stop(esg_server *server);

/* ---- Followers' positions ------------------------------------------------------ */

/* How far a follower has processed one leader's notifications: what
 * eventsourcing_grpc_c.v1.Node/GetLeaderPositions answers (esg_client_leader_positions) and a
 * node knows (esg_node_leader_positions), the figures of the eventsourcing_follower_* metrics. */
typedef struct esg_leader_position {
    char *leader_name;         /* owned by the list */
    int64_t position;          /* the last notification id processed; -1 until the first pull */
    int64_t leader_max;        /* the highest id the leader is known to have recorded; 0: none */
    int64_t lag_notifications; /* leader_max - position, 0 when caught up; -1 as position */
    double lag_seconds; /* since the oldest notification not processed was first known; 0 when
                         * caught up; -1 as position */
    uint64_t prompts_received;
    uint64_t pulls; /* pulls of the leader's log, and those that failed */
    uint64_t pull_errors;
    uint64_t notifications_processed;
    bool is_subscribed;    /* the leader pushes to the follower (Subscribe), which it then
                            * need not Prompt */
    uint64_t pages_pushed; /* pages received by push */
} esg_leader_position;

typedef struct esg_leader_positions {
    char *application_name;     /* the follower; owned */
    esg_leader_position *items; /* one per leader it follows; owned */
    size_t n_items;
} esg_leader_positions;

/* Frees what the list holds and zeroes it (the struct itself is the caller's). NULL is allowed. */
void esg_leader_positions_clear(esg_leader_positions *positions);

/* ---- Client ---------------------------------------------------------------- */

typedef struct esg_client esg_client;

typedef struct esg_client_options {
    const esg_env *env;    /* <APP>_GRPC_SERVER_ADDRESS and GRPC_SSL_*; NULL: process env */
    int max_attempts;      /* connection attempts (Ping) before giving up; 0: 10 */
    int64_t backoff_ms;    /* first wait between attempts, doubled up to 1 s; 0: 100 */
    int64_t deadline_ms;   /* per call; 0: 5000 */
    int max_call_attempts; /* tries of a call that can be repeated (Ping, pages, a command with
                            * its key) on UNAVAILABLE/DEADLINE_EXCEEDED; 0: 3 */
    /* The calling application, whose <NAME>_GRPC_SSL_* files (its own identity) are looked up
     * before the plain GRPC_SSL_* ones; NULL: the plain ones only. */
    const char *ssl_name;
    /* While calls are in flight (a subscription's stream, a long call), the client pings a
     * connection that has been quiet this long and drops it when the answer takes as long
     * again: its calls then fail ESG_EUNAVAILABLE at once instead of at their deadlines, and
     * the next call connects anew (a peer that died without closing, a cut network). 0:
     * ESG_CLIENT_KEEPALIVE_MS; < 0: no pings. Servers of this library accept a ping every
     * ESG_GRPC_MIN_PING_INTERVAL_MS; others by gRPC's default every 5 minutes without data,
     * which only calls quiet for longer than this meet. */
    int64_t keepalive_ms;
} esg_client_options;

#define ESG_CLIENT_KEEPALIVE_MS 20000

/* Connects to the application called app_name at <APP_NAME>_GRPC_SERVER_ADDRESS
 * and pings it until it answers, honouring max_attempts with backoff.
 * ESG_EUNAVAILABLE when it never answered; ESG_ECONFIG for a missing address
 * or certificate. options may be NULL. */
esg_status esg_client_connect(const char *app_name, const esg_client_options *options,
                              esg_client **out, esg_error *err);

/* The same with an explicit address. */
esg_status esg_client_connect_address(const char *address, const esg_client_options *options,
                                      esg_client **out, esg_error *err);

/* Errors of the calls below: ESG_EUNAVAILABLE (server unreachable),
 * ESG_ETIMEDOUT (deadline exceeded), ESG_ECLOSED (client closed), or the
 * server's status mapped back (NOT_FOUND -> ESG_ENOTFOUND, INVALID_ARGUMENT ->
 * ESG_EINVAL, UNIMPLEMENTED -> ESG_EUNIMPLEMENTED, ABORTED -> ESG_ECONFLICT,
 * others -> ESG_EREMOTE) with the server's message. */
esg_status esg_client_ping(esg_client *client, esg_error *err);

/* Calls a method with args (array) and kwargs (object), both borrowed and
 * may be NULL for none; *result is the caller's. Every call carries an idempotency key of its
 * own (ESG_IDEMPOTENCY_KEY_METADATA, a random UUID). When the server said it keeps keys (ours
 * do unless IDEMPOTENCY_KEY_TTL is 0), a call that fails with ESG_EUNAVAILABLE or ESG_ETIMEDOUT
 * (it may or may not have run) is sent again with the same key, up to max_call_attempts tries
 * with backoff, each under deadline_ms: the command runs once. To any other server (Python's)
 * it is sent once, as such a server could run a repeat twice. */
esg_status esg_client_call(esg_client *client, const char *method_name, const esg_value *args,
                           const esg_value *kwargs, esg_value **result, esg_error *err);

/* esg_client_call with the caller's idempotency key (1 to 255 printable ASCII characters;
 * NULL: a new random one), for a caller that repeats a command itself after the tries above
 * failed (from another client too, after reconnecting): sent with the same key, the command
 * runs at most once, and a repeat is answered with the first run's reply. ESG_EINVAL for a bad
 * key, or when the server has the key from another command. */
esg_status esg_client_call_with_key(esg_client *client, const char *idempotency_key,
                                    const char *method_name, const esg_value *args,
                                    const esg_value *kwargs, esg_value **result, esg_error *err);

/* Whether key is one that esg_client_call_with_key takes: 1 to 255 printable ASCII characters. */
bool esg_client_is_idempotency_key(const char *key);

/* What a server says of its health (grpc.health.v1's ServingStatus, same numbers). */
typedef enum esg_health_status {
    ESG_HEALTH_UNKNOWN = 0,
    ESG_HEALTH_SERVING = 1,
    ESG_HEALTH_NOT_SERVING = 2, /* stopping */
    ESG_HEALTH_SERVICE_UNKNOWN = 3
} esg_health_status;

/* grpc.health.v1.Health/Check of service ("" or NULL: the server as a whole; our servers also
 * know "eventsourcing_grpc.Application"). A service the server does not know is ESG_ENOTFOUND,
 * as the standard says. Retried as Ping is. */
esg_status esg_client_health_check(esg_client *client, const char *service, esg_health_status *out,
                                   esg_error *err);

/* Sends Prompt(upstream_name). */
esg_status esg_client_prompt(esg_client *client, const char *upstream_name, esg_error *err);

/* Sends Prompt(upstream_name) saying that the upstream's log reaches notification_id (> 0; 0
 * says nothing), in the call's metadata under ESG_PROMPT_NOTIFICATION_ID_KEY: a follower of
 * this library measures its lag by it; Python's servers ignore it. */
esg_status esg_client_prompt_after(esg_client *client, const char *upstream_name,
                                   int64_t notification_id, esg_error *err);

/* GetNotifications: appends to out (the caller's). stop 0 for none. */
esg_status esg_client_select_notifications(esg_client *client, int64_t start, int64_t limit,
                                           int64_t stop, const char *const *topics, size_t n_topics,
                                           esg_notification_list *out, esg_error *err);

/* eventsourcing_grpc_c.v1.Node/GetLeaderPositions: how far the server's application has
 * processed each leader's notifications, into *out (zeroed first; clear it with
 * esg_leader_positions_clear, also after an error). A Python server (or any without the service)
 * answers ESG_EUNIMPLEMENTED. Retried as Ping is. */
esg_status esg_client_leader_positions(esg_client *client, esg_leader_positions *out,
                                       esg_error *err);

/* A follower's subscription to a server's notifications (eventsourcing_grpc_c.v1.Node/Subscribe):
 * the server pushes them as they are recorded. */
typedef struct esg_subscription esg_subscription;

/* Subscribes follower_name (borrowed) to the server's notifications from start (>= 1), of the
 * n_topics topics (none: all); *out is the caller's, to free with esg_subscription_free (before
 * esg_client_free). Returns once the call is sent: a server without the service (Python's)
 * answers ESG_EUNIMPLEMENTED at the first esg_subscription_next. */
esg_status esg_client_subscribe(esg_client *client, const char *follower_name, int64_t start,
                                const char *const *topics, size_t n_topics, esg_subscription **out,
                                esg_error *err);

/* Waits up to timeout_ms (< 0: as long as it takes; esg_client_close from another thread ends
 * the wait with ESG_ECLOSED) for the next page, appends its notifications to out and sets
 * *up_to: every notification of the topics asked for up to that id has now been received.
 * ESG_ETIMEDOUT when none came in time (0: only one already received), and the subscription
 * goes on; ESG_ECLOSED when the server ended the stream (it stops); the server's status
 * otherwise (ESG_EUNIMPLEMENTED: no push). After another error the subscription is over: free
 * it. */
esg_status esg_subscription_next(esg_subscription *subscription, int64_t timeout_ms,
                                 esg_notification_list *out, int64_t *up_to, esg_error *err);

/* Cancels the stream if it is still open and frees the subscription. NULL is allowed. */
void esg_subscription_free(esg_subscription *subscription);

/* The server's notification log as a follower reads it; the client must
 * outlive the log. */
void esg_client_notification_log(esg_client *client, const char *leader_name,
                                 esg_notification_log *out);

/* Closes the channel; calls made afterwards fail with ESG_ECLOSED. */
void esg_client_close(esg_client *client);

/* Frees a closed (or open) client. NULL is allowed. */
void esg_client_free(esg_client *client);

#ifdef __cplusplus
}
#endif
#endif
