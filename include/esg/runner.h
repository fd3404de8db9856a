/* Systems over gRPC: each application of a system served in its role (a
 * node), leaders prompting followers and followers pulling their leaders'
 * notifications over gRPC, and a runner that starts a whole system, as the
 * seed's GrpcRunner does, in threads of this process or as subprocesses
 * running eventsourcing_grpc_server. */
#ifndef ESG_RUNNER_H
#define ESG_RUNNER_H

#include <stdbool.h>

#include "esg/application.h"
#include "esg/env.h"
#include "esg/error.h"
#include "esg/grpc.h"
#include "esg/system.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- A node: one application of a system, served in its role --------------- */

typedef struct esg_node esg_node;

/* Starts the application called app_name of the system def (borrowed; static
 * in practice) as a gRPC server on <APP>_GRPC_SERVER_ADDRESS, in its role:
 *   - it follows the applications the system says it follows: a Prompt from
 *     one of them, or MAX_PULL_INTERVAL seconds (default 10; <APP>_ prefix
 *     allowed) without one, makes it pull that leader's new notifications
 *     (GetNotifications from its last tracked position + 1) and process them
 *     exactly once; it also pulls from every leader at start, so a follower
 *     started late catches up; an unreachable leader is retried with backoff
 *     and logged once per outage;
 *   - it leads the applications the system says it leads: after each write it
 *     prompts each of them, with at most one Prompt in flight per follower
 *     and one more sent if more was written meanwhile (no fixed delay).
 * env (borrowed for the call; NULL for the process environment) gives the
 * addresses of every application, MAX_PULL_INTERVAL, GRPC_SSL_* and
 * persistence. *out is freed by esg_node_stop. */
esg_status esg_node_start(const esg_system_def *def, const char *app_name, const esg_env *env,
                          esg_node **out, esg_error *err);

/* The node's application (borrowed) and the port its server listens on. */
esg_application *esg_node_application(esg_node *node);
int esg_node_port(const esg_node *node);

/* The node's server (borrowed), for its other ports (esg_server_metrics_port, ...). */
esg_server *esg_node_server(esg_node *node);

/* How far the node's application has processed each leader's notifications, into *out (zeroed
 * first; clear it with esg_leader_positions_clear, also after an error: ESG_ENOMEM). */
esg_status esg_node_leader_positions(esg_node *node, esg_leader_positions *out, esg_error *err);

/* The first processing error (a policy or a database failing, not a leader
 * being unreachable), copied into *err; false when there is none. */
bool esg_node_has_errored(esg_node *node, esg_error *err);

/* Stops the puller and prompters, then the server (calls in flight finish),
 * and frees everything. NULL is allowed. */
void esg_node_stop(esg_node *node);

/* ---- The runner --------------------------------------------------------------- */

typedef enum esg_runner_mode {
    ESG_RUNNER_THREADS,     /* every node in this process */
    ESG_RUNNER_SUBPROCESSES /* one eventsourcing_grpc_server process per application */
} esg_runner_mode;

typedef struct esg_grpc_runner esg_grpc_runner;

typedef struct esg_grpc_runner_options {
    esg_runner_mode mode;
    const esg_env *env;         /* base environment (copied); NULL: the process's */
    const char *server_program; /* for subprocesses; NULL: eventsourcing_grpc_server beside
                                 * this program, else found in PATH */
} esg_grpc_runner_options;

/* Starts every application of the system. Addresses come from
 * <APP>_GRPC_SERVER_ADDRESS where set; the others get localhost:50051,
 * localhost:50052, ... in node order (skipping ports already given). Returns
 * once every server answers a Ping. */
esg_status esg_grpc_runner_start(const esg_system_def *def, const esg_grpc_runner_options *options,
                                 esg_grpc_runner **out, esg_error *err);

/* A connected client of the application called app_name (borrowed from the
 * runner, valid until stop), or NULL for an unknown name. */
esg_client *esg_grpc_runner_get(esg_grpc_runner *runner, const char *app_name);

/* The address the application listens on (borrowed), or NULL. */
const char *esg_grpc_runner_address(const esg_grpc_runner *runner, const char *app_name);

/* True once a server has died (a subprocess exited) or a node reports a
 * processing error; *err (may be NULL) says which and why. */
bool esg_grpc_runner_has_errored(esg_grpc_runner *runner, esg_error *err);

/* Stops every server (SIGTERM to subprocesses, SIGKILL after 2 s) and frees
 * the runner. NULL is allowed. */
void esg_grpc_runner_stop(esg_grpc_runner *runner);

#ifdef __cplusplus
}
#endif
#endif
