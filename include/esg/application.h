/* Applications: a recorder, a repository of aggregates, command and query
 * methods callable by name with transcoded arguments, and a notification log.
 * Process applications also have a policy that turns the domain events of
 * the applications they follow into new events, exactly once per upstream
 * notification (the tracking record is written with the new events). */
#ifndef ESG_APPLICATION_H
#define ESG_APPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/domain.h"
#include "esg/env.h"
#include "esg/error.h"
#include "esg/mapper.h"
#include "esg/recorder.h"
#include "esg/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esg_application esg_application;
typedef struct esg_processing_event esg_processing_event;

/* A method: params[i] is the value bound to the i-th parameter name, from
 * the positional arguments or the keyword arguments, or NULL for an optional
 * parameter that was not given (all borrowed). *result is a new value the
 * caller then owns; methods that return nothing return esg_value_null(). */
typedef esg_status (*esg_method_fn)(esg_application *app, esg_value *const *params,
                                    esg_value **result, esg_error *err);

typedef struct esg_method {
    const char *name;          /* e.g. "get_order" */
    const char *const *params; /* parameter names in order; NULL when none */
    size_t n_params;
    size_t n_required; /* the first n_required parameters must be given */
    esg_method_fn call;
} esg_method;

/* A policy: called with each domain event of an application this one follows
 * (borrowed); new or changed aggregates are handed to processing with
 * esg_processing_event_collect. A failure leaves the notification
 * unprocessed, to be tried again on the next pull. */
typedef esg_status (*esg_policy_fn)(esg_application *app, const esg_event *event,
                                    esg_processing_event *processing, esg_error *err);

#define ESG_APPLICATION_TYPE_MAGIC 0x45534741u /* "ESGA": checked when loaded by topic */

typedef struct esg_application_type {
    uint32_t magic;    /* ESG_APPLICATION_TYPE_MAGIC */
    const char *name;  /* e.g. "Orders"; upper-cased it prefixes the environment keys */
    const char *topic; /* e.g. "eventsourcing_grpc.example:Orders" */
    const esg_aggregate_type *const *aggregate_types; /* those its repository rebuilds */
    size_t n_aggregate_types;
    const esg_method *methods; /* the only methods callable by name */
    size_t n_methods;
    esg_policy_fn policy; /* NULL unless it is a process application */
    /* Snapshots, as Python's Application class attributes: is_snapshotting_enabled makes
     * IS_SNAPSHOTTING_ENABLED default to yes; snapshotting_intervals (NULL for none, else one per
     * aggregate_types[i], 0 for none) takes a snapshot of an aggregate of that type each time a
     * version that is a multiple of its interval is recorded, and also enables snapshotting. */
    bool is_snapshotting_enabled;
    const int64_t *snapshotting_intervals;
} esg_application_type;

/* Builds an application from env (borrowed; NULL for the process environment), each setting
 * looked up with the type's name as prefix: its recorder (esg_recorder_open), its mapper
 * (esg_mapper_open: CIPHER_TOPIC, CIPHER_KEY, COMPRESSOR_TOPIC) and its repository's cache:
 *   AGGREGATE_CACHE_MAXSIZE               aggregates kept (<= 0: no bound; unset: no cache)
 *   AGGREGATE_CACHE_FASTFORWARD           y (default): each get reads the events recorded
 *                                         after the cached version, so that other writers'
 *                                         events are seen; n: the cache is trusted as it is
 *   AGGREGATE_CACHE_FASTFORWARD_SKIPPING  n (default); y: a get does not wait for another
 *                                         thread that is bringing the same aggregate up to date
 *   DEEPCOPY_FROM_AGGREGATE_CACHE         y (the default) only: every get returns a copy
 * A bad value, a cache or snapshot interval for an aggregate type without write_state and
 * read_state, or a database whose latest event this configuration cannot read (another cipher
 * key, another compressor) is ESG_ECONFIG with the reason. */
esg_status esg_application_new(const esg_application_type *type, const esg_env *env,
                               esg_application **out, esg_error *err);

/* Frees the application and closes its recorder. NULL is allowed. */
void esg_application_free(esg_application *app);

const esg_application_type *esg_application_get_type(const esg_application *app);
const char *esg_application_name(const esg_application *app);
esg_recorder *esg_application_recorder(esg_application *app);         /* borrowed */
const esg_mapper *esg_application_mapper(const esg_application *app); /* borrowed */

/* Records the pending events of the aggregates (borrowed) in one atomic write.
 * The events are collected whether or not the write succeeds; after a failure
 * (ESG_ECONFLICT when another writer got there first) discard the aggregates
 * and get them again. */
esg_status esg_application_save(esg_application *app, esg_aggregate *const *aggregates,
                                size_t n_aggregates, esg_error *err);

/* Rebuilds an aggregate: version 0 for the latest, or the state at an older version. From the
 * cache when it has the aggregate (then with the events recorded since, unless
 * AGGREGATE_CACHE_FASTFORWARD is off), else from the latest snapshot at or below the version
 * (when the recorder has snapshots and the type has read_state) and the events after it, else
 * from all its events. ESG_ENOTFOUND when there is no such aggregate. *out is the caller's,
 * freed with esg_aggregate_free. */
esg_status esg_application_get(esg_application *app, const esg_uuid *id, int64_t version,
                               esg_aggregate **out, esg_error *err);

/* Takes a snapshot of the aggregate as recorded at version (0 for the latest) and records it.
 * A snapshot that is recorded already is left as it is. ESG_EINVAL when snapshotting is not
 * enabled; ESG_EUNIMPLEMENTED when the aggregate's type has no write_state. */
esg_status esg_application_take_snapshot(esg_application *app, const esg_uuid *id, int64_t version,
                                         esg_error *err);

/* Calls a method by name with args (an array, NULL for none) and kwargs (an
 * object, NULL for none), both borrowed, binding them to parameter names as
 * Python does. ESG_EUNIMPLEMENTED when the type has no such method,
 * ESG_EINVAL for arguments that do not fit. *result is the caller's. */
esg_status esg_application_call(esg_application *app, const char *method_name,
                                const esg_value *args, const esg_value *kwargs, esg_value **result,
                                esg_error *err);

/* Calls a method with args and kwargs given as JSON text, and returns the
 * result as JSON text (the caller frees it with esg_free): the shape of a remote
 * call. Undecodable arguments are ESG_EINVAL. */
esg_status esg_application_call_json(esg_application *app, const char *method_name,
                                     const char *args_json, size_t args_len,
                                     const char *kwargs_json, size_t kwargs_len, char **result,
                                     size_t *result_len, esg_error *err);

/* The notification log: see esg_recorder_select_notifications. */
esg_status esg_application_select_notifications(esg_application *app, int64_t start, int64_t limit,
                                                int64_t stop, const char *const *topics,
                                                size_t n_topics, esg_notification_list *out,
                                                esg_error *err);

/* Called after every successful write, with the highest notification id
 * written, so that followers can be told (the gRPC layer sends a Prompt).
 * Called on the writing thread; must not call back into save. fn may be NULL.
 * Set it before other threads use the application (it is not locked). */
typedef void (*esg_recorded_fn)(void *ctx, esg_application *app, int64_t max_notification_id);
void esg_application_set_recorded_listener(esg_application *app, esg_recorded_fn fn, void *ctx);

/* ---- Process applications ------------------------------------------------- */

/* Takes the pending events of aggregate (borrowed) into the processing event:
 * they are recorded with the tracking record when the policy returns. */
esg_status esg_processing_event_collect(esg_processing_event *processing, esg_aggregate *aggregate,
                                        esg_error *err);

/* A leader's notification log as a follower reads it: in process, or over
 * gRPC. select appends up to limit notifications from start to out. */
typedef struct esg_notification_log {
    const char *leader_name;  /* the upstream application's name, for tracking */
    int64_t page_size;        /* notifications asked for per select; 0 for 100 */
    bool pages_may_be_short;  /* true when a short page may not be the end (a
                               * server that caps pages by bytes): see heavy_page_bytes */
    int64_t heavy_page_bytes; /* with pages_may_be_short: a short page ends the pull
                               * unless it holds at least this many bytes (state + topic
                               * + 64 per notification); 0: read until an empty page */
    esg_status (*select)(void *ctx, int64_t start, int64_t limit, esg_notification_list *out,
                         esg_error *err);
    void *ctx; /* passed to select */
} esg_notification_log;

/* A log that reads leader (borrowed, must outlive the log) in process. */
void esg_application_local_log(esg_application *leader, esg_notification_log *out);

/* Reads the leader's log after the last tracked position, page by page until
 * the end, and processes each notification with the policy, recording
 * its new events with its tracking record in one transaction. Calls on one
 * application are serialised; a notification already tracked (by another
 * thread or process) is skipped. *n_processed (may be NULL) counts the
 * notifications this call processed. ESG_EINVAL if the application has no policy. */
esg_status esg_application_pull_and_process(esg_application *app, const esg_notification_log *log,
                                            int64_t *n_processed, esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
