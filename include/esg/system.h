/* Systems: applications joined by pipes, in which each application leads
 * the next (Orders -> Reservations -> Orders -> Payments -> Orders), the
 * graph queries the Python System answers, and a single-threaded runner that
 * runs a system in process. */
#ifndef ESG_SYSTEM_H
#define ESG_SYSTEM_H

#include <stddef.h>
#include <stdint.h>

#include "esg/application.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esg_pipe {
    const esg_application_type *const *apps; /* each leads the next */
    size_t n_apps;
} esg_pipe;

#define ESG_SYSTEM_DEF_MAGIC 0x45534753u /* "ESGS": checked when loaded by topic */

/* A system as it is written down, usually a static const. */
typedef struct esg_system_def {
    uint32_t magic;        /* ESG_SYSTEM_DEF_MAGIC */
    const char *topic;     /* e.g. "eventsourcing_grpc.example:system" */
    const esg_pipe *pipes; /* borrowed */
    size_t n_pipes;
} esg_system_def;

/* A system declared with counts filled in: ESG_SYSTEM("shop:system", ESG_PIPE(&Orders,
 * &Payments, &Orders), ESG_PIPE(&Audit)). A pipe whose n_apps is 0 ends at a NULL, and pipes
 * whose n_pipes is 0 at a pipe without applications. */
#define ESG_PIPE(...)                                                                              \
    {                                                                                              \
        (const esg_application_type *const[]){__VA_ARGS__, NULL}, 0                                \
    }
#define ESG_SYSTEM(TOPIC, ...)                                                                     \
    {                                                                                              \
        ESG_SYSTEM_DEF_MAGIC, (TOPIC), (const esg_pipe[]){__VA_ARGS__, {NULL, 0}}, 0               \
    }

typedef struct esg_system esg_system;

/* Builds the graph of def (borrowed; must outlive the system). Two different
 * types with one name are ESG_EINVAL. Free with esg_system_free. */
esg_status esg_system_new(const esg_system_def *def, esg_system **out, esg_error *err);
void esg_system_free(esg_system *system);

/* Name lists, borrowed from the system, in order of first appearance. */
const char *const *esg_system_nodes(const esg_system *system, size_t *n);
const char *const *esg_system_leaders(const esg_system *system, size_t *n);
const char *const *esg_system_followers(const esg_system *system, size_t *n);
const char *const *esg_system_leaders_only(const esg_system *system, size_t *n);
const char *const *esg_system_singles(const esg_system *system, size_t *n);
/* The applications that name leads (its followers) and that it follows
 * (its leaders); an unknown name gives an empty list. */
const char *const *esg_system_leads(const esg_system *system, const char *name, size_t *n);
const char *const *esg_system_follows(const esg_system *system, const char *name, size_t *n);
/* Edge i as (leader, follower); i < n_edges. */
size_t esg_system_n_edges(const esg_system *system);
void esg_system_edge(const esg_system *system, size_t i, const char **leader,
                     const char **follower);
/* The type to run for a node, or NULL for an unknown name. */
const esg_application_type *esg_system_get_type(const esg_system *system, const char *name);

/* Checks that the applications' persistence settings in env (borrowed; NULL for the process
 * environment) give each application tables of its own: two applications on one SQLite
 * database would write into one stored_events table (Python's SQLite tables are not named per
 * application). app_name NULL checks every pair (all run here: a runner); a name checks that
 * application against those whose <APP>_SQLITE_DBNAME is set (a node, whose peers may run on
 * other machines with the same plain SQLITE_DBNAME). ESG_ECONFIG naming both, or a setting's
 * own error. */
esg_status esg_system_check_persistence(const esg_system *system, const esg_env *env,
                                        const char *app_name, esg_error *err);

/* ---- The single-threaded runner ------------------------------------------- */

typedef struct esg_local_runner esg_local_runner;

/* Builds every application of the system from env (borrowed, NULL for the
 * process environment), lets each follower catch up with its leaders, and
 * then processes synchronously: when a call records events, the followers
 * pull and process before the call returns. A follower's processing error does
 * not fail the call that recorded (the events are recorded); it is kept for
 * esg_local_runner_error and the notification is tried again on the next
 * record. One thread at a time. */
esg_status esg_local_runner_start(const esg_system_def *def, const esg_env *env,
                                  esg_local_runner **out, esg_error *err);

/* The running application called name (borrowed), or NULL. */
esg_application *esg_local_runner_get(esg_local_runner *runner, const char *name);

/* The first processing error since start (borrowed), or NULL when none: a
 * follower whose policy failed. */
const esg_error *esg_local_runner_error(const esg_local_runner *runner);

const esg_system *esg_local_runner_system(const esg_local_runner *runner);

/* Stops the runner and frees the applications. NULL is allowed. */
void esg_local_runner_stop(esg_local_runner *runner);

#ifdef __cplusplus
}
#endif
#endif
