/* Applications: their life (settings, recorder, mapper, cache), writes and the listener told
 * of them, and methods called by name. Reading aggregates is in repository.c, process
 * applications in processing.c. */
#include "esg/application.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "application/application_internal.h"
#include "application/application_metrics.h"
#include "core/clock.h"
#include "core/grow.h"
#include "core/settings.h"
#include "persistence/recorder_metrics.h"
#include "core/alloc.h"

/* Whether every aggregate type that needs it (all of them for the cache, those with a snapshot
 * interval for snapshots) can write and read its state. */
static esg_status check_state_functions(const esg_application_type *type, bool is_caching,
                                        esg_error *err)
{
    for (size_t i = 0; i < app_count_aggregate_types(type); i++) {
        const esg_aggregate_type *aggregate_type = type->aggregate_types[i];
        bool has_interval =
            type->snapshotting_intervals != NULL && type->snapshotting_intervals[i] > 0;
        if ((is_caching || has_interval) && !esg_aggregate_type_has_state_functions(aggregate_type))
            return esg_error_set(err, ESG_ECONFIG,
                                 "%s: aggregate type %s has no write_state and read_state (nor "
                                 "state fields), which %s needs",
                                 type->name, aggregate_type->topic,
                                 is_caching ? "AGGREGATE_CACHE_MAXSIZE" : "a snapshot interval");
    }
    return ESG_OK;
}

/* The repository's cache settings, read as Python reads them (each also when there is no cache,
 * so that a bad value is refused either way). */
static esg_status open_cache(esg_application *app, const esg_env *env, esg_error *err)
{
    const char *name = app->type->name;
    esg_setting max_size;
    esg_setting_lookup(env, name, "AGGREGATE_CACHE_MAXSIZE", &max_size);
    long n_max = 0;
    bool is_deep_copying = true;
    esg_status rc = esg_setting_bool(env, name, "AGGREGATE_CACHE_FASTFORWARD", true,
                                     &app->is_fast_forwarding, err);
    if (rc == ESG_OK)
        rc = esg_setting_bool(env, name, "AGGREGATE_CACHE_FASTFORWARD_SKIPPING", false,
                              &app->is_skipping_fast_forward, err);
    if (rc == ESG_OK)
        rc = esg_setting_bool(env, name, "DEEPCOPY_FROM_AGGREGATE_CACHE", true, &is_deep_copying,
                              err);
    if (rc == ESG_OK && !is_deep_copying)
        rc = esg_error_set(err, ESG_ECONFIG,
                           "DEEPCOPY_FROM_AGGREGATE_CACHE=n is not supported: in C every get "
                           "returns an aggregate of the caller's own, a copy");
    if (rc != ESG_OK || max_size.value == NULL || max_size.value[0] == '\0')
        return rc;
    if (!esg_parse_long(max_size.value, LONG_MIN, LONG_MAX, &n_max))
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: expected a whole number of aggregates (0 or less for "
                             "no bound) or nothing, got '%.60s'",
                             max_size.key, max_size.value);
    rc = check_state_functions(app->type, true, err);
    if (rc == ESG_OK && (app->cache = aggregate_cache_new(n_max > 0 ? (size_t)n_max : 0)) == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory making the aggregate cache");
    return rc;
}

/* Checks the declared aggregate types and registers the transcodings their fields use, so that
 * stored events holding those types decode. */
static esg_status check_aggregate_types(esg_application *app, esg_error *err)
{
    esg_status rc = ESG_OK;
    esg_error type_err = {0};
    for (size_t i = 0; rc == ESG_OK && i < app->n_aggregate_types; i++) {
        const esg_aggregate_type *aggregate_type = app->type->aggregate_types[i];
        rc = esg_aggregate_type_check(aggregate_type, &type_err);
        if (rc == ESG_OK)
            rc = esg_aggregate_type_register_transcodings(aggregate_type, &type_err);
    }
    if (rc != ESG_OK)
        rc = esg_error_set(err, ESG_ECONFIG, "%s: %s", app->type->name, type_err.message);
    return rc;
}

/* Refuses a database whose latest event this configuration cannot decode: what it would write
 * could then not be read with the configuration that wrote the rest, or the other way round. */
static esg_status check_stored_format(esg_application *app, esg_error *err)
{
    int64_t max_id = 0;
    esg_notification_list latest = {0};
    esg_event *event = NULL;
    esg_status rc = esg_recorder_max_notification_id(app->recorder, &max_id, err);
    if (rc == ESG_OK && max_id > 0)
        rc = esg_recorder_select_notifications(app->recorder, max_id, 1, 0, NULL, 0, &latest, err);
    esg_error decode_err;
    if (rc == ESG_OK && latest.n_items == 1 &&
        esg_mapper_from_stored(app->mapper, &latest.items[0].event, &event, &decode_err) ==
            ESG_EDATA)
        rc = esg_error_set(err, ESG_ECONFIG,
                           "%s: the database holds events stored as this configuration (%s) "
                           "cannot read: %s",
                           app->type->name, esg_mapper_describe(app->mapper), decode_err.message);
    esg_event_free(event);
    esg_notification_list_clear(&latest);
    return rc;
}

esg_status esg_application_new(const esg_application_type *type, const esg_env *env,
                               esg_application **out, esg_error *err)
{
    *out = NULL;
    if (type == NULL || type->magic != ESG_APPLICATION_TYPE_MAGIC || type->name == NULL)
        return esg_error_set(err, ESG_EINVAL, "not an application type");
    esg_env *own_env = NULL;
    env = esg_env_or_process(env, &own_env, err);
    if (env == NULL)
        return ESG_ENOMEM;
    esg_application *app = esg_calloc(1, sizeof *app);
    esg_status rc = ESG_OK;
    if (app == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory making application %s", type->name);
        goto out;
    }
    app->type = type;
    app->n_aggregate_types = app_count_aggregate_types(type);
    rc = check_aggregate_types(app, err);
    if (rc == ESG_OK)
        rc = app_methods_open(app, err);
    if (rc != ESG_OK)
        goto out;
    /* As Python's construct_env: snapshotting by default when the type asks for it. */
    esg_setting snapshotting;
    esg_setting_lookup(env, type->name, "IS_SNAPSHOTTING_ENABLED", &snapshotting);
    if ((type->is_snapshotting_enabled || type->snapshotting_intervals != NULL) &&
        snapshotting.value == NULL) {
        if (own_env == NULL && (own_env = esg_env_copy(env)) == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory reading the environment");
            goto out;
        }
        rc = esg_env_set(own_env, "IS_SNAPSHOTTING_ENABLED", "y", err);
        env = own_env;
    }
    if (rc == ESG_OK)
        rc = check_state_functions(type, false, err);
    if (rc == ESG_OK)
        rc = esg_mapper_open(env, type->name, &app->mapper, err);
    if (rc == ESG_OK)
        rc = open_cache(app, env, err);
    if (rc == ESG_OK)
        rc = esg_recorder_open(env, type->name, &app->recorder, err);
    if (rc == ESG_OK)
        rc = check_stored_format(app, err);
    if (rc == ESG_OK)
        rc = app_commands_open(app, env, err);
    if (rc != ESG_OK)
        goto out;
    atomic_init(&app->has_batch, false);
    /* Recursive: a listener may make the runner process this same application
     * again from inside its own pull (a system where it follows itself). */
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    int processing_rc = pthread_mutex_init(&app->processing_lock, &attributes);
    pthread_mutexattr_destroy(&attributes);
    int batch_rc = pthread_mutex_init(&app->batch_lock, NULL);
    if (processing_rc != 0 || batch_rc != 0) {
        if (processing_rc == 0)
            pthread_mutex_destroy(&app->processing_lock);
        if (batch_rc == 0)
            pthread_mutex_destroy(&app->batch_lock);
        rc = esg_error_set(err, ESG_ENOMEM, "cannot make the locks of %s", type->name);
        goto out;
    }
    *out = app;
    app = NULL;
out:
    if (app != NULL) {
        esg_recorder_close(app->recorder);
        esg_mapper_free(app->mapper);
        aggregate_cache_free(app->cache);
        app_methods_free(app);
        esg_free(app);
    }
    esg_env_free(own_env);
    return rc;
}

void esg_application_free(esg_application *app)
{
    if (app == NULL)
        return;
    esg_recorder_close(app->recorder);
    esg_mapper_free(app->mapper);
    aggregate_cache_free(app->cache);
    app_methods_free(app);
    pthread_mutex_destroy(&app->processing_lock);
    pthread_mutex_destroy(&app->batch_lock);
    esg_free(app);
}

const esg_application_type *esg_application_get_type(const esg_application *app)
{
    return app->type;
}

const char *esg_application_name(const esg_application *app)
{
    return app->type->name;
}

esg_recorder *esg_application_recorder(esg_application *app)
{
    return app->recorder;
}

const esg_mapper *esg_application_mapper(const esg_application *app)
{
    return app->mapper;
}

void esg_application_set_recorded_listener(esg_application *app, esg_recorded_fn fn, void *ctx)
{
    app->on_recorded = fn;
    app->on_recorded_ctx = ctx;
}

/* The index of the aggregate type (of the application's) that has an event type of topic, or
 * -1 when none has. */
static long aggregate_type_of_event(const esg_application *app, const char *event_topic)
{
    for (size_t i = 0; i < app->n_aggregate_types; i++)
        if (esg_aggregate_type_has_event(app->type->aggregate_types[i], event_topic))
            return (long)i;
    return -1;
}

/* After a successful write of stored events: a snapshot at each version that is a multiple of
 * its type's interval (as Python's _take_snapshots; one that fails does not undo the write, and
 * the next interval takes another), and, when the cache is trusted as it is (no fast-forward),
 * the written aggregates forgotten so that the next get reads them. */
void app_after_recorded(esg_application *app, const esg_stored_event *stored, size_t n_stored)
{
    const int64_t *intervals = app->type->snapshotting_intervals;
    for (size_t i = 0; i < n_stored; i++) {
        if (app->cache != NULL && !app->is_fast_forwarding)
            aggregate_cache_remove(app->cache, &stored[i].originator_id);
        if (intervals == NULL || !esg_recorder_is_snapshotting(app->recorder))
            continue;
        long type_index = aggregate_type_of_event(app, stored[i].topic);
        if (type_index >= 0 && intervals[type_index] > 0 &&
            stored[i].originator_version % intervals[type_index] == 0)
            esg_application_take_snapshot(app, &stored[i].originator_id,
                                          stored[i].originator_version, NULL);
    }
}

void app_count_write(esg_application *app, const struct timespec *started, size_t n_events,
                     esg_status rc)
{
    if (rc != ESG_OK)
        return;
    esg_histogram_observe(&app->commit_seconds, esg_clock_seconds_since(started));
    atomic_fetch_add_explicit(&app->n_events_recorded, n_events, memory_order_relaxed);
}

void esg_application_write_metrics(esg_application *app, esg_buffer *out)
{
    const char *labels[] = {"application", app->type->name, NULL};
    int64_t max_id = 0;
    if (esg_recorder_max_notification_id(app->recorder, &max_id, NULL) == ESG_OK) {
        esg_metrics_family(out, "eventsourcing_notification_id_max", "gauge",
                           "The highest notification id in the application's log.");
        esg_metrics_sample(out, "eventsourcing_notification_id_max", labels, (double)max_id);
    }
    esg_metrics_family(out, "eventsourcing_events_recorded_total", "counter",
                       "Events recorded by this process (a policy's included).");
    esg_metrics_sample(out, "eventsourcing_events_recorded_total", labels,
                       (double)atomic_load(&app->n_events_recorded));
    esg_metrics_family(out, "eventsourcing_command_repeats_total", "counter",
                       "Calls with an idempotency key answered with the reply recorded by a "
                       "call before them with that key.");
    esg_metrics_sample(out, "eventsourcing_command_repeats_total", labels,
                       (double)atomic_load(&app->n_command_repeats));
    esg_metrics_family(out, "eventsourcing_commit_duration_seconds", "histogram",
                       "Time to record a write's events (and tracking records) and commit.");
    esg_metrics_histogram(out, "eventsourcing_commit_duration_seconds", labels,
                          &app->commit_seconds);
    esg_recorder_write_metrics(app->recorder, labels, out);
}

/* Stores and records events (borrowed) with an optional tracking record, and
 * tells the listener. */
esg_status app_record(esg_application *app, esg_event *const *events, size_t n_events,
                      const esg_tracking *tracking, const app_command *command, esg_error *err)
{
    if (n_events == 0 && tracking == NULL && command == NULL)
        return ESG_OK;
    esg_status rc = ESG_OK;
    size_t n_stored = 0;
    esg_stored_event *stored = esg_calloc(n_events ? n_events : 1, sizeof *stored);
    int64_t *ids = esg_calloc(n_events ? n_events : 1, sizeof *ids);
    if (stored == NULL || ids == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory recording events");
        goto out;
    }
    for (; n_stored < n_events && rc == ESG_OK; n_stored++)
        rc = esg_mapper_to_stored(app->mapper, events[n_stored], &stored[n_stored], err);
    if (rc != ESG_OK)
        n_stored--; /* the one that failed holds nothing */
    if (rc == ESG_OK) {
        struct timespec started;
        clock_gettime(CLOCK_MONOTONIC, &started);
        rc = command != NULL
                 ? esg_recorder_insert_command(app->recorder, stored, n_events, &command->record,
                                               ids, err)
                 : esg_recorder_insert_events(app->recorder, stored, n_events, tracking, ids, err);
        app_count_write(app, &started, n_events, rc);
    }
    if (rc == ESG_OK)
        app_after_recorded(app, stored, n_events);
    if (rc == ESG_OK && n_events > 0 && app->on_recorded != NULL)
        app->on_recorded(app->on_recorded_ctx, app, ids[n_events - 1]);
out:
    for (size_t i = 0; stored != NULL && i < n_stored; i++)
        esg_stored_event_clear(&stored[i]);
    esg_free(stored);
    esg_free(ids);
    return rc;
}

/* Appends an aggregate's pending events to a growable array. */
esg_status app_collect_into(esg_event ***events, size_t *n_events, size_t *capacity,
                            esg_aggregate *aggregate, esg_error *err)
{
    esg_event **pending = NULL;
    size_t n_pending = 0;
    esg_aggregate_collect(aggregate, &pending, &n_pending);
    if (!esg_grow((void **)events, capacity, *n_events + n_pending, sizeof **events)) {
        for (size_t i = 0; i < n_pending; i++)
            esg_event_free(pending[i]);
        esg_free(pending);
        return esg_error_set(err, ESG_ENOMEM, "out of memory collecting events");
    }
    if (n_pending > 0)
        memcpy(*events + *n_events, pending, n_pending * sizeof *pending);
    *n_events += n_pending;
    esg_free(pending);
    return ESG_OK;
}

void app_free_events(esg_event **events, size_t n_events)
{
    for (size_t i = 0; i < n_events; i++)
        esg_event_free(events[i]);
    esg_free(events);
}

esg_status esg_application_save(esg_application *app, esg_aggregate *const *aggregates,
                                size_t n_aggregates, esg_error *err)
{
    esg_status deferred_rc = ESG_OK;
    if (app_defer_save(app, aggregates, n_aggregates, &deferred_rc, err))
        return deferred_rc;
    return app_save(app, aggregates, n_aggregates, NULL, err);
}

esg_status app_save(esg_application *app, esg_aggregate *const *aggregates, size_t n_aggregates,
                    const app_command *command, esg_error *err)
{
    esg_event **events = NULL;
    size_t n_events = 0, capacity = 0;
    esg_status rc = ESG_OK;
    for (size_t i = 0; i < n_aggregates && rc == ESG_OK; i++)
        rc = app_collect_into(&events, &n_events, &capacity, aggregates[i], err);
    if (rc == ESG_OK)
        rc = app_record(app, events, n_events, NULL, command, err);
    app_free_events(events, n_events);
    /* As Python: without fast-forward, the cache holds what was saved. */
    for (size_t i = 0;
         rc == ESG_OK && app->cache != NULL && !app->is_fast_forwarding && i < n_aggregates; i++) {
        esg_aggregate *copy = NULL;
        if (esg_aggregate_copy(aggregates[i], &copy, NULL) == ESG_OK)
            aggregate_cache_put(app->cache, copy);
    }
    return rc;
}

esg_status esg_application_select_notifications(esg_application *app, int64_t start, int64_t limit,
                                                int64_t stop, const char *const *topics,
                                                size_t n_topics, esg_notification_list *out,
                                                esg_error *err)
{
    return esg_recorder_select_notifications(app->recorder, start, limit, stop, topics, n_topics,
                                             out, err);
}
