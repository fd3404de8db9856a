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
typedef struct esg_work esg_work;

/* A method: params[i] is the value bound to the i-th parameter name, from
 * the positional arguments or the keyword arguments, or NULL for an optional
 * parameter that was not given (all borrowed). *result is a new value the
 * caller then owns; methods that return nothing return esg_value_null(). */
typedef esg_status (*esg_method_fn)(esg_application *app, esg_value *const *params,
                                    esg_value **result, esg_error *err);

/* A declared method or policy: it runs with a unit of work (esg_work, below) that binds and
 * checks its arguments, owns the aggregates it gets and creates, and records their new events in
 * one write when it returns ESG_OK. */
typedef esg_status (*esg_work_fn)(esg_work *work);

typedef struct esg_method {
    const char *name;          /* e.g. "get_order" */
    const char *const *params; /* parameter names in order; NULL when none */
    size_t n_params;
    size_t n_required; /* the first n_required parameters must be given */
    esg_method_fn call;
} esg_method;

/* A declared method: its signature as Python writes one, and the function that runs it.
 * A signature is "name(param, ...) [-> type]", each param "name[: type][ = default]"; types
 * UUID, int, float, str, bool, datetime, Decimal, dict, list, Any or the name of a registered
 * transcoding, each also as Optional[T] or "T | None"; defaults None, True, False, numbers and
 * quoted strings. Arguments are bound as a method's are (positional or keyword, Python's
 * messages), then checked against the types before the function runs (ESG_EINVAL:
 * "increment(): by must be an int, not str"); a result of another type than the return type is
 * ESG_EINTERNAL. A bad signature is ESG_ECONFIG when the application starts. */
typedef struct esg_method_def {
    const char *signature; /* e.g. "increment(counter_id: UUID, by: int = 1) -> int" */
    esg_work_fn run;
} esg_method_def;

/* The method_defs member of an application type: ESG_METHODS(ESG_METHOD(signature, fn), ...). */
#define ESG_METHOD(SIGNATURE, FN)                                                                  \
    {                                                                                              \
        (SIGNATURE), (FN)                                                                          \
    }
#define ESG_METHODS(...) ((const esg_method_def[]){__VA_ARGS__, {NULL, NULL}})

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
    /* Declared methods (ESG_METHODS), callable by name beside methods. */
    const esg_method_def *method_defs;
    /* A declared policy (instead of policy): called with each domain event (borrowed) of the
     * applications it follows; what it creates and triggers through the work is recorded with
     * the tracking record when it returns ESG_OK. */
    esg_status (*process)(esg_work *work, const esg_event *event);
    /* The topics of the events its policy handles (ESG_TOPICS(...), NULL-terminated), as
     * Python's follow_topics: followers ask their leaders for these only, and only these reach
     * the policy (a notification of another topic is neither processed nor tracked). NULL: all. */
    const char *const *follow_topics;
} esg_application_type;

/* Lists counted by the library: aggregate_types given as ESG_AGGREGATES(&a, &b) leaves
 * n_aggregate_types 0. ESG_APPLICATION fills in the magic. */
#define ESG_AGGREGATES(...) ((const esg_aggregate_type *const[]){__VA_ARGS__, NULL})
#define ESG_TOPICS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* The number of topics in a NULL-terminated list such as follow_topics (NULL: 0). */
size_t esg_topics_count(const char *const *topics);
#define ESG_APPLICATION(NAME, TOPIC, ...)                                                          \
    {                                                                                              \
        .magic = ESG_APPLICATION_TYPE_MAGIC, .name = (NAME), .topic = (TOPIC), __VA_ARGS__         \
    }

/* Whether the type is a process application: it has a policy (or a declared one). */
bool esg_application_type_has_policy(const esg_application_type *type);

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

/* Calls a method as esg_application_call_json does, as a command that runs once per
 * idempotency_key (1 to ESG_IDEMPOTENCY_KEY_MAX bytes; NULL: an ordinary call). The first call
 * with a key records the key, a SHA-256 hash of the method name and arguments, and the reply in
 * the same transaction as the command's events; a later call with the key, within
 * IDEMPOTENCY_KEY_TTL (seconds, default 3600; 0 records no keys and makes every call an
 * ordinary one) of the first, is answered with the recorded reply and *is_repeat (may be NULL)
 * set, without running the method. A call that recorded no events (a query, or a command that
 * failed or changed nothing) leaves no record and runs again when repeated. The key of another
 * method or other arguments is ESG_EINVAL; a first call racing a repeat gets the one recorded
 * reply. Methods of the type's methods table (not declared ones) have their saves deferred to
 * the end of such a call, so that they are recorded with the key: a get in the method does not
 * see what it saved. Expired keys are deleted from the calls, at most once a minute. */
esg_status esg_application_call_json_idempotent(esg_application *app, const char *idempotency_key,
                                                const char *method_name, const char *args_json,
                                                size_t args_len, const char *kwargs_json,
                                                size_t kwargs_len, char **result,
                                                size_t *result_len, bool *is_repeat,
                                                esg_error *err);

/* IDEMPOTENCY_KEY_TTL in seconds: how long a key is kept; 0 when keys are not recorded. */
double esg_application_idempotency_key_ttl(const esg_application *app);

/* The notification log: see esg_recorder_select_notifications. */
esg_status esg_application_select_notifications(esg_application *app, int64_t start, int64_t limit,
                                                int64_t stop, const char *const *topics,
                                                size_t n_topics, esg_notification_list *out,
                                                esg_error *err);

/* Called after every successful write, with the highest notification id
 * written, so that followers can be told (a gRPC server, which holds the listener
 * while it runs, pushes to its subscribers, and a node prompts the others).
 * Called on the writing thread; must not call back into save. fn may be NULL.
 * Set it before other threads use the application (it is not locked). */
typedef void (*esg_recorded_fn)(void *ctx, esg_application *app, int64_t max_notification_id);
void esg_application_set_recorded_listener(esg_application *app, esg_recorded_fn fn, void *ctx);

/* ---- Process applications ------------------------------------------------- */

/* Takes the pending events of aggregate (borrowed) into the processing event:
 * they are recorded with the tracking record when the policy returns. */
esg_status esg_processing_event_collect(esg_processing_event *processing, esg_aggregate *aggregate,
                                        esg_error *err);

/* Runs type's policy (its policy or its declared one) on event (borrowed) with app's repository,
 * what it changes going to processing: what a policy that wraps another type's calls. */
esg_status esg_application_type_run_policy(const esg_application_type *type, esg_application *app,
                                           const esg_event *event, esg_processing_event *processing,
                                           esg_error *err);

/* A leader's notification log as a follower reads it: in process, or over
 * gRPC. select appends up to limit notifications from start to out, of the n_topics topics
 * only (none: all; a log may also ignore them: the reader filters again). */
typedef struct esg_notification_log {
    const char *leader_name;  /* the upstream application's name, for tracking */
    int64_t page_size;        /* notifications asked for per select; 0 for 100 */
    bool pages_may_be_short;  /* true when a short page may not be the end (a
                               * server that caps pages by bytes): see heavy_page_bytes */
    int64_t heavy_page_bytes; /* with pages_may_be_short: a short page ends the pull
                               * unless it holds at least this many bytes (state + topic
                               * + 64 per notification); 0: read until an empty page */
    esg_status (*select)(void *ctx, int64_t start, int64_t limit, const char *const *topics,
                         size_t n_topics, esg_notification_list *out, esg_error *err);
    void *ctx; /* passed to select */
} esg_notification_log;

/* A log that reads leader (borrowed, must outlive the log) in process. */
void esg_application_local_log(esg_application *leader, esg_notification_log *out);

/* Reads the leader's log after the last tracked position, page by page until
 * the end (of the type's follow_topics only, when it has them), and processes each notification
 * with the policy, recording
 * its new events with its tracking record in one transaction. Calls on one
 * application are serialised; a notification already tracked (by another
 * thread or process) is skipped. *n_processed (may be NULL) counts the
 * notifications this call processed. ESG_EINVAL if the application has no policy. */
esg_status esg_application_pull_and_process(esg_application *app, const esg_notification_log *log,
                                            int64_t *n_processed, esg_error *err);

/* ---- Declared methods and policies: the unit of work ----------------------- */

/* The arguments of a declared method, by position in its signature, checked against their
 * types before it runs (so these cannot fail): a parameter that was not given has its default.
 * None reads as NULL, 0, false or 0.0; all pointers are borrowed for the work's life. */
const esg_value *esg_arg(const esg_work *work, size_t i);
const esg_uuid *esg_arg_uuid(const esg_work *work, size_t i);
int64_t esg_arg_int(const esg_work *work, size_t i);
double esg_arg_float(const esg_work *work, size_t i); /* an int argument reads as a float */
bool esg_arg_bool(const esg_work *work, size_t i);
/* A str argument's text (one that holds a NUL character is refused before the method runs), or
 * a Decimal's. */
const char *esg_arg_string(const esg_work *work, size_t i);
const esg_datetime *esg_arg_datetime(const esg_work *work, size_t i);

/* The aggregate of type with id: its state, borrowed from the work (which frees it), changed
 * only by esg_work_trigger; the same aggregate again for the same id. Never NULL: when the work
 * fails (ESG_ENOTFOUND: no such aggregate, or one of another type) or has failed, a state of
 * zeroes that nothing records, so that a method reads on and returns the failure. */
const void *esg_work_get(esg_work *work, const esg_aggregate_type *type, const esg_uuid *id);

/* Creates an aggregate of type (id NULL for a new uuid4) by triggering its Created event
 * (created, with data: a struct of created->data, or NULL when it has none): its state, as
 * esg_work_get's (zeroes when the work fails). */
const void *esg_work_create(esg_work *work, const esg_aggregate_type *type, const esg_uuid *id,
                            const esg_event_def *created, const void *data);

/* Triggers event (with data, as above) on the aggregate whose state is state (from get or
 * create): applied at once, recorded when the work ends well. */
esg_status esg_work_trigger(esg_work *work, const void *state, const esg_event_def *event,
                            const void *data);

/* The id of the aggregate whose state is state (borrowed), or NULL when the work has none. */
const esg_uuid *esg_work_id(const esg_work *work, const void *state);

/* A domain event's data as a struct of event_type->data (upcast first), borrowed from the work;
 * NULL when the event is of another topic (the work goes on) or does not decode (the work
 * fails). What a declared policy asks of each event. */
const void *esg_work_event(esg_work *work, const esg_event *event, const esg_event_def *event_type);

/* Fails the work with status and a message (printf format); returns status. The first failure
 * stays: after it get, create and event give NULL and the rest return its status. */
esg_status esg_work_fail(esg_work *work, esg_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
esg_status esg_work_status(const esg_work *work);
esg_application *esg_work_application(esg_work *work);

/* What a declared method returns (none: None). Each returns the work's status. */
esg_status esg_return(esg_work *work, esg_value *value); /* taken, also on failure */
esg_status esg_return_none(esg_work *work);
esg_status esg_return_bool(esg_work *work, bool b);
esg_status esg_return_int(esg_work *work, int64_t i);
esg_status esg_return_float(esg_work *work, double d);
esg_status esg_return_string(esg_work *work, const char *s);
esg_status esg_return_uuid(esg_work *work, const esg_uuid *id);
/* A struct of type as a dict of its fields (esg_struct_to_value). */
esg_status esg_return_struct(esg_work *work, const esg_struct_type *type, const void *data);
/* The aggregate whose state is state as a dict: "id", its state's fields in order, "created_on"
 * and "modified_on" (the dict the seed's get_order returns). */
esg_status esg_return_aggregate(esg_work *work, const void *state);

#ifdef __cplusplus
}
#endif
#endif
