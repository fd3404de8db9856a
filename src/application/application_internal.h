/* What the modules of the application layer share (application.c: life and writes;
 * repository.c: reading aggregates, snapshots, the cache; processing.c: process applications):
 * the application's struct and the few functions each needs of the others.
 * Internal: not part of the public API. */
#ifndef ESG_APPLICATION_INTERNAL_H
#define ESG_APPLICATION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "application/aggregate_cache.h"
#include "application/signature.h"
#include "core/metrics.h"
#include "esg/application.h"

typedef struct pending_batch pending_batch;

/* A command run with an idempotency key (commands.c): the record its write makes beside its
 * events, the reply filled in (the result as JSON) just before that write. */
typedef struct app_command {
    esg_command_record record;                /* key (borrowed), hash, times; reply below */
    char request_hash[ESG_REQUEST_HASH_SIZE]; /* record.request_hash points here */
    char *reply;                              /* owned JSON, once the method has returned */
    size_t reply_len;
} app_command;

/* A method as the application calls it (methods.c). */
typedef struct app_method {
    esg_method binding;        /* a method of the type, or a declared one's name and parameters */
    const esg_method_def *def; /* the declared method (borrowed), or NULL */
    esg_signature signature;   /* a declared method's, parsed (zeroed for the others) */
} app_method;

struct esg_application {
    const esg_application_type *type; /* borrowed; static in practice */
    esg_recorder *recorder;           /* owned */
    esg_mapper *mapper;               /* owned: JSON, compressor, cipher */
    aggregate_cache *cache;           /* owned; NULL without AGGREGATE_CACHE_MAXSIZE */
    bool is_fast_forwarding;          /* AGGREGATE_CACHE_FASTFORWARD */
    bool is_skipping_fast_forward;    /* AGGREGATE_CACHE_FASTFORWARD_SKIPPING */
    pthread_mutex_t processing_lock;  /* serialises pull_and_process; recursive, see below */
    /* The page whose policies run now on the pulling thread (processing.c), NULL between: gets
     * on that thread add its events. Other threads never see it and never touch it (it lives on
     * the puller's stack): they find has_batch false, or batch_thread not theirs. */
    atomic_bool has_batch;       /* a page is being processed: look closer */
    pthread_mutex_t batch_lock;  /* guards batch and batch_thread */
    pending_batch *batch;        /* the page, or NULL */
    pthread_t batch_thread;      /* the thread processing it */
    esg_recorded_fn on_recorded; /* told after each successful write; may be NULL */
    void *on_recorded_ctx;       /* passed to on_recorded */
    size_t n_aggregate_types;    /* the type's, counted when it is a declared list */
    app_method *methods;         /* owned: the type's methods, as called by name */
    size_t n_methods;
    atomic_uint_least64_t n_events_recorded; /* since the application was made */
    int64_t idempotency_key_ttl_us;          /* IDEMPOTENCY_KEY_TTL; 0: keys are not recorded */
    atomic_int_least64_t next_key_sweep_us;  /* when expired keys are deleted next (wall clock) */
    atomic_uint_least64_t n_command_repeats; /* calls answered with a recorded reply */
    esg_histogram commit_seconds;            /* each write's insert, commit included */
};

/* application.c: stores and records events (borrowed) with an optional tracking record or an
 * optional command record (command->record, its reply set), then takes the snapshots due and
 * tells the listener. */
esg_status app_record(esg_application *app, esg_event *const *events, size_t n_events,
                      const esg_tracking *tracking, const app_command *command, esg_error *err);

/* application.c: esg_application_save, the events recorded with command's record when command is
 * not NULL. */
esg_status app_save(esg_application *app, esg_aggregate *const *aggregates, size_t n_aggregates,
                    const app_command *command, esg_error *err);

/* commands.c: sets command's reply to the JSON of result (borrowed). */
esg_status app_command_set_reply(app_command *command, const esg_value *result, esg_error *err);

/* commands.c: when a call of an undeclared method with an idempotency key is running on this
 * thread for app, takes the aggregates' pending events into it (they are recorded with the key
 * when the method returns) and returns true with *rc; false otherwise. */
bool app_defer_save(esg_application *app, esg_aggregate *const *aggregates, size_t n_aggregates,
                    esg_status *rc, esg_error *err);

/* commands.c: calls an undeclared method (binding.call) with the saves it makes deferred and
 * recorded in one write with command's record when it returns ESG_OK. */
esg_status app_call_deferring_saves(esg_application *app, const esg_method *binding,
                                    esg_value *const *params, app_command *command,
                                    esg_value **result, esg_error *err);

/* methods.c: esg_application_call, with command (may be NULL) recorded by the call's write. */
esg_status app_call(esg_application *app, const char *method_name, const esg_value *args,
                    const esg_value *kwargs, app_command *command, esg_value **result,
                    esg_error *err);

/* methods.c: esg_application_call_json, likewise. */
esg_status app_call_json(esg_application *app, app_command *command, const char *method_name,
                         const char *args_json, size_t args_len, const char *kwargs_json,
                         size_t kwargs_len, char **result, size_t *result_len, esg_error *err);

/* commands.c: reads IDEMPOTENCY_KEY_TTL into app (its recorder open), and checks that the
 * recorder can keep keys: where its table is missing (CREATE_TABLE off), ESG_ECONFIG when the
 * setting asks for keys, else keys are off (a warning says why). */
esg_status app_commands_open(esg_application *app, const esg_env *env, esg_error *err);

/* application.c: counts a write that took seconds since started (monotonic) and recorded
 * n_events when rc is ESG_OK, for the metrics. */
void app_count_write(esg_application *app, const struct timespec *started, size_t n_events,
                     esg_status rc);

/* application.c: what follows every successful write of stored events (snapshots due, the
 * cache's forgetting when it does not fast-forward). */
void app_after_recorded(esg_application *app, const esg_stored_event *stored, size_t n_stored);

/* application.c: appends an aggregate's pending events to a growable array (taking them). */
esg_status app_collect_into(esg_event ***events, size_t *n_events, size_t *capacity,
                            esg_aggregate *aggregate, esg_error *err);

/* application.c: frees n_events events and their array. */
void app_free_events(esg_event **events, size_t n_events);

/* repository.c: rebuilds an aggregate from its latest snapshot and the events after it, and the
 * pulling thread's pending page when there is one; no cache. */
esg_status app_reconstruct(esg_application *app, const esg_uuid *id, int64_t version,
                           esg_aggregate **out, esg_error *err);

/* processing.c: the page whose policies run on this thread for app, or NULL (a pointer only the
 * calling thread may use). */
const pending_batch *app_current_batch(esg_application *app);

/* processing.c: appends the batch's events of id (up to version when > 0) after base_version to
 * what the recorder holds of it. ESG_ECONFLICT when another writer got there first. */
esg_status app_add_pending_events(const pending_batch *batch, const esg_uuid *id, int64_t version,
                                  int64_t base_version, esg_stored_event_list *stored,
                                  esg_error *err);

/* methods.c: reads the type's methods into app->methods (signatures parsed: ESG_ECONFIG for a
 * bad one), and frees them. */
esg_status app_methods_open(esg_application *app, esg_error *err);
void app_methods_free(esg_application *app);

/* work.c: runs a declared method with its bound arguments (params, n_params of its signature;
 * missing ones are set to their defaults, borrowed), checking them, saving what it changed. */
esg_status app_run_method(esg_application *app, const app_method *method, esg_value **params,
                          app_command *command, esg_value **result, esg_error *err);

/* The number of aggregate types of type: n_aggregate_types, or up to the NULL that ends an
 * ESG_AGGREGATES list. */
static inline size_t app_count_aggregate_types(const esg_application_type *type)
{
    size_t n = type->n_aggregate_types;
    if (n == 0)
        while (type->aggregate_types != NULL && type->aggregate_types[n] != NULL)
            n++;
    return n;
}

#endif
