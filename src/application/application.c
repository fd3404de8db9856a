/* Applications: a recorder, a repository that rebuilds aggregates from their
 * events, methods called by name, and, for process applications, pulling and
 * processing a leader's notifications exactly once. */
#include "esg/application.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "application/aggregate_cache.h"
#include "application/arguments.h"
#include "core/settings.h"
#include "core/grow.h"

/* Notifications read from a leader per select call, unless the log says. */
#define DEFAULT_PAGE_SIZE 100
/* Attempts at one notification when a concurrent writer changed the same
 * aggregate (the policy runs again on fresh state each time). */
#define PROCESS_ATTEMPTS 10

struct esg_application {
    const esg_application_type *type; /* borrowed; static in practice */
    esg_recorder *recorder;           /* owned */
    esg_mapper *mapper;               /* owned: JSON, compressor, cipher */
    aggregate_cache *cache;           /* owned; NULL without AGGREGATE_CACHE_MAXSIZE */
    bool is_fast_forwarding;          /* AGGREGATE_CACHE_FASTFORWARD */
    bool is_skipping_fast_forward;    /* AGGREGATE_CACHE_FASTFORWARD_SKIPPING */
    pthread_mutex_t processing_lock;  /* serialises pull_and_process; recursive, see below */
    esg_recorded_fn on_recorded;      /* told after each successful write; may be NULL */
    void *on_recorded_ctx;            /* passed to on_recorded */
};

struct esg_processing_event {
    esg_event **events; /* owned: collected from the policy's aggregates */
    size_t n_events;
    size_t capacity;
};

/* A page of notifications processed by one pull, recorded with one commit when
 * the recorder can (esg_recorder_can_track_many): every policy's new events
 * and a tracking record per notification, in one transaction. Meanwhile
 * esg_application_get on the pulling thread adds the batch's events to what
 * the recorder holds, so each policy sees what the ones before it did, as if
 * each notification had been recorded on its own. */
typedef struct pending_batch {
    esg_application *app;     /* whose gets see the batch */
    esg_stored_event *events; /* owned, in the order the policies made them */
    size_t n_events;
    size_t events_capacity;
    esg_tracking *trackings; /* one per notification; names borrowed from the log */
    size_t n_trackings;
    size_t trackings_capacity;
} pending_batch;

/* The batch whose policies run on this thread, or NULL. */
static _Thread_local pending_batch *current_batch;

/* Whether every aggregate type that needs it (all of them for the cache, those with a snapshot
 * interval for snapshots) can write and read its state. */
static esg_status check_state_functions(const esg_application_type *type, bool is_caching,
                                        esg_error *err)
{
    for (size_t i = 0; i < type->n_aggregate_types; i++) {
        const esg_aggregate_type *aggregate_type = type->aggregate_types[i];
        bool has_interval =
            type->snapshotting_intervals != NULL && type->snapshotting_intervals[i] > 0;
        if ((is_caching || has_interval) &&
            (aggregate_type->write_state == NULL || aggregate_type->read_state == NULL))
            return esg_error_set(err, ESG_ECONFIG,
                                 "%s: aggregate type %s has no write_state and read_state, which "
                                 "%s needs",
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
    if (env == NULL) {
        own_env = esg_env_from_process();
        if (own_env == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory reading the environment");
        env = own_env;
    }
    esg_application *app = calloc(1, sizeof *app);
    esg_status rc = ESG_OK;
    if (app == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory making application %s", type->name);
        goto out;
    }
    app->type = type;
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
    if (rc != ESG_OK)
        goto out;
    /* Recursive: a listener may make the runner process this same application
     * again from inside its own pull (a system where it follows itself). */
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    int init_rc = pthread_mutex_init(&app->processing_lock, &attributes);
    pthread_mutexattr_destroy(&attributes);
    if (init_rc != 0) {
        rc = esg_error_set(err, ESG_ENOMEM, "cannot make the lock of %s", type->name);
        goto out;
    }
    *out = app;
    app = NULL;
out:
    if (app != NULL) {
        esg_recorder_close(app->recorder);
        esg_mapper_free(app->mapper);
        aggregate_cache_free(app->cache);
        free(app);
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
    pthread_mutex_destroy(&app->processing_lock);
    free(app);
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

/* The aggregate type (of the application's) that has an event type of topic, or its index
 * -1 when none has. */
static long aggregate_type_of_event(const esg_application_type *type, const char *event_topic)
{
    for (size_t i = 0; i < type->n_aggregate_types; i++) {
        const esg_aggregate_type *aggregate_type = type->aggregate_types[i];
        for (size_t k = 0; k < aggregate_type->n_event_types; k++)
            if (strcmp(aggregate_type->event_types[k].topic, event_topic) == 0)
                return (long)i;
    }
    return -1;
}

/* After a successful write of stored events: a snapshot at each version that is a multiple of
 * its type's interval (as Python's _take_snapshots; one that fails does not undo the write, and
 * the next interval takes another), and, when the cache is trusted as it is (no fast-forward),
 * the written aggregates forgotten so that the next get reads them. */
static void after_recorded(esg_application *app, const esg_stored_event *stored, size_t n_stored)
{
    const int64_t *intervals = app->type->snapshotting_intervals;
    for (size_t i = 0; i < n_stored; i++) {
        if (app->cache != NULL && !app->is_fast_forwarding)
            aggregate_cache_remove(app->cache, &stored[i].originator_id);
        if (intervals == NULL || !esg_recorder_is_snapshotting(app->recorder))
            continue;
        long type_index = aggregate_type_of_event(app->type, stored[i].topic);
        if (type_index >= 0 && intervals[type_index] > 0 &&
            stored[i].originator_version % intervals[type_index] == 0)
            esg_application_take_snapshot(app, &stored[i].originator_id,
                                          stored[i].originator_version, NULL);
    }
}

/* Stores and records events (borrowed) with an optional tracking record, and
 * tells the listener. */
static esg_status record(esg_application *app, esg_event *const *events, size_t n_events,
                         const esg_tracking *tracking, esg_error *err)
{
    if (n_events == 0 && tracking == NULL)
        return ESG_OK;
    esg_status rc = ESG_OK;
    size_t n_stored = 0;
    esg_stored_event *stored = calloc(n_events ? n_events : 1, sizeof *stored);
    int64_t *ids = calloc(n_events ? n_events : 1, sizeof *ids);
    if (stored == NULL || ids == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory recording events");
        goto out;
    }
    for (; n_stored < n_events && rc == ESG_OK; n_stored++)
        rc = esg_mapper_to_stored(app->mapper, events[n_stored], &stored[n_stored], err);
    if (rc != ESG_OK)
        n_stored--; /* the one that failed holds nothing */
    if (rc == ESG_OK)
        rc = esg_recorder_insert_events(app->recorder, stored, n_events, tracking, ids, err);
    if (rc == ESG_OK)
        after_recorded(app, stored, n_events);
    if (rc == ESG_OK && n_events > 0 && app->on_recorded != NULL)
        app->on_recorded(app->on_recorded_ctx, app, ids[n_events - 1]);
out:
    for (size_t i = 0; stored != NULL && i < n_stored; i++)
        esg_stored_event_clear(&stored[i]);
    free(stored);
    free(ids);
    return rc;
}

/* Appends an aggregate's pending events to a growable array. */
static esg_status collect_into(esg_event ***events, size_t *n_events, size_t *capacity,
                               esg_aggregate *aggregate, esg_error *err)
{
    esg_event **pending = NULL;
    size_t n_pending = 0;
    esg_aggregate_collect(aggregate, &pending, &n_pending);
    if (!esg_grow((void **)events, capacity, *n_events + n_pending, sizeof **events)) {
        for (size_t i = 0; i < n_pending; i++)
            esg_event_free(pending[i]);
        free(pending);
        return esg_error_set(err, ESG_ENOMEM, "out of memory collecting events");
    }
    if (n_pending > 0)
        memcpy(*events + *n_events, pending, n_pending * sizeof *pending);
    *n_events += n_pending;
    free(pending);
    return ESG_OK;
}

static void free_events(esg_event **events, size_t n_events)
{
    for (size_t i = 0; i < n_events; i++)
        esg_event_free(events[i]);
    free(events);
}

esg_status esg_application_save(esg_application *app, esg_aggregate *const *aggregates,
                                size_t n_aggregates, esg_error *err)
{
    esg_event **events = NULL;
    size_t n_events = 0, capacity = 0;
    esg_status rc = ESG_OK;
    for (size_t i = 0; i < n_aggregates && rc == ESG_OK; i++)
        rc = collect_into(&events, &n_events, &capacity, aggregates[i], err);
    if (rc == ESG_OK)
        rc = record(app, events, n_events, NULL, err);
    free_events(events, n_events);
    /* As Python: without fast-forward, the cache holds what was saved. */
    for (size_t i = 0;
         rc == ESG_OK && app->cache != NULL && !app->is_fast_forwarding && i < n_aggregates; i++) {
        esg_aggregate *copy = NULL;
        if (esg_aggregate_copy(aggregates[i], &copy, NULL) == ESG_OK)
            aggregate_cache_put(app->cache, copy);
    }
    return rc;
}

static const esg_aggregate_type *find_aggregate_type(const esg_application_type *type,
                                                     const char *topic)
{
    for (size_t i = 0; i < type->n_aggregate_types; i++)
        if (strcmp(type->aggregate_types[i]->topic, topic) == 0)
            return type->aggregate_types[i];
    return NULL;
}

/* Appends the batch's events of aggregate id (up to version when > 0) to what the recorder
 * holds of it, after base_version (the snapshot it starts from, or 0). ESG_ECONFLICT when another
 * writer recorded one of the batch's versions meanwhile: the batch can no longer be recorded, and
 * its notifications are processed one by one. */
static esg_status add_pending_events(const pending_batch *batch, const esg_uuid *id,
                                     int64_t version, int64_t base_version,
                                     esg_stored_event_list *stored, esg_error *err)
{
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < batch->n_events; i++) {
        const esg_stored_event *event = &batch->events[i];
        if (!esg_uuid_equal(&event->originator_id, id) ||
            (version > 0 && event->originator_version > version))
            continue;
        int64_t last = stored->n_items > 0 ? stored->items[stored->n_items - 1].originator_version
                                           : base_version;
        if (event->originator_version <= last)
            return esg_error_set(err, ESG_ECONFLICT,
                                 "version %lld of an aggregate was recorded by another writer",
                                 (long long)event->originator_version);
        rc = esg_stored_event_list_push(stored, event, err);
    }
    return rc;
}

/* Decodes stored events (borrowed) with the application's mapper into *events (an array the
 * caller frees with free_events, n_events long even on failure). */
static esg_status decode_all(const esg_application *app, const esg_stored_event_list *stored,
                             esg_event ***events, esg_error *err)
{
    *events = calloc(stored->n_items ? stored->n_items : 1, sizeof **events);
    if (*events == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading an aggregate");
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < stored->n_items; i++)
        rc = esg_mapper_from_stored(app->mapper, &stored->items[i], &(*events)[i], err);
    return rc;
}

/* The latest snapshot of id at or below version (0: any), as an aggregate in *out, or NULL when
 * there is none, or when its type cannot be read from one (then its events are replayed). */
static esg_status read_snapshot(esg_application *app, const esg_uuid *id, int64_t version,
                                esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    if (!esg_recorder_is_snapshotting(app->recorder))
        return ESG_OK;
    esg_select_events_options latest = {
        .has_lte = version > 0, .lte = version, .desc = true, .limit = 1};
    esg_stored_event_list stored = {0};
    esg_event *snapshot = NULL;
    esg_status rc = esg_recorder_select_snapshots(app->recorder, id, &latest, &stored, err);
    if (rc == ESG_OK && stored.n_items == 1)
        rc = esg_mapper_from_stored(app->mapper, &stored.items[0], &snapshot, err);
    if (rc == ESG_OK && snapshot != NULL) {
        const char *topic = esg_snapshot_aggregate_topic(snapshot);
        const esg_aggregate_type *type = NULL;
        for (size_t i = 0; topic != NULL && i < app->type->n_aggregate_types && type == NULL; i++)
            if (strcmp(app->type->aggregate_types[i]->topic, topic) == 0)
                type = app->type->aggregate_types[i];
        if (type != NULL && type->read_state != NULL)
            rc = esg_aggregate_from_snapshot(type, snapshot, out, err);
    }
    esg_event_free(snapshot);
    esg_stored_event_list_clear(&stored);
    return rc;
}

/* Rebuilds an aggregate from its latest snapshot (if any) and the events after it, with the
 * pulling thread's pending batch when there is one. */
static esg_status reconstruct(esg_application *app, const esg_uuid *id, int64_t version,
                              esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    esg_aggregate *aggregate = NULL;
    esg_stored_event_list stored = {0};
    esg_event **events = NULL;
    char text[ESG_UUID_STR_SIZE];
    esg_status rc = read_snapshot(app, id, version, &aggregate, err);
    int64_t base_version = aggregate != NULL ? esg_aggregate_version(aggregate) : 0;
    esg_select_events_options options = {
        .has_gt = aggregate != NULL, .gt = base_version, .has_lte = version > 0, .lte = version};
    if (rc == ESG_OK)
        rc = esg_recorder_select_events(app->recorder, id, &options, &stored, err);
    if (rc == ESG_OK && current_batch != NULL && current_batch->app == app)
        rc = add_pending_events(current_batch, id, version, base_version, &stored, err);
    if (rc == ESG_OK && stored.n_items == 0 && aggregate == NULL) {
        esg_uuid_str(id, text);
        rc = esg_error_set(err, ESG_ENOTFOUND, "aggregate %s not found in %s", text,
                           app->type->name);
    }
    if (rc == ESG_OK)
        rc = decode_all(app, &stored, &events, err);
    if (rc == ESG_OK && aggregate != NULL) {
        rc = esg_aggregate_apply(aggregate, events, stored.n_items, err);
    } else if (rc == ESG_OK) {
        const char *topic = esg_value_as_string(esg_event_get(events[0], "originator_topic"), NULL);
        const esg_aggregate_type *type = topic ? find_aggregate_type(app->type, topic) : NULL;
        if (type == NULL) {
            esg_uuid_str(id, text);
            rc = esg_error_set(err, ESG_EINVAL, "aggregate %s has type %s, which %s does not know",
                               text, topic ? topic : "(no originator_topic)", app->type->name);
        } else {
            rc = esg_aggregate_replay(type, events, stored.n_items, &aggregate, err);
        }
    }
    if (rc == ESG_OK) {
        *out = aggregate;
        aggregate = NULL;
    }
    if (events != NULL)
        free_events(events, stored.n_items);
    esg_aggregate_free(aggregate);
    esg_stored_event_list_clear(&stored);
    return rc;
}

/* Applies the events recorded after aggregate's version to it; *n_new counts them. */
static esg_status fast_forward(esg_application *app, esg_aggregate *aggregate, size_t *n_new,
                               esg_error *err)
{
    esg_select_events_options newer = {.has_gt = true, .gt = esg_aggregate_version(aggregate)};
    esg_stored_event_list stored = {0};
    esg_event **events = NULL;
    esg_status rc = esg_recorder_select_events(app->recorder, esg_aggregate_id(aggregate), &newer,
                                               &stored, err);
    if (rc == ESG_OK && stored.n_items > 0)
        rc = decode_all(app, &stored, &events, err);
    if (rc == ESG_OK && stored.n_items > 0)
        rc = esg_aggregate_apply(aggregate, events, stored.n_items, err);
    *n_new = stored.n_items;
    if (events != NULL)
        free_events(events, stored.n_items);
    esg_stored_event_list_clear(&stored);
    return rc;
}

/* The latest version of id from the cache: *out NULL when it is not cached. */
static esg_status get_cached(esg_application *app, const esg_uuid *id, esg_aggregate **out,
                             esg_error *err)
{
    *out = NULL;
    cached_aggregate *ref = NULL;
    const esg_aggregate *cached = aggregate_cache_get(app->cache, id, &ref);
    if (cached == NULL)
        return ESG_OK;
    esg_aggregate *copy = NULL;
    esg_status rc = esg_aggregate_copy(cached, &copy, err);
    if (rc == ESG_OK && app->is_fast_forwarding) {
        bool is_claimed = aggregate_cache_claim(app->cache, ref);
        size_t n_new = 0;
        if (is_claimed || !app->is_skipping_fast_forward)
            rc = fast_forward(app, copy, &n_new, err);
        esg_aggregate *newer = NULL;
        if (rc == ESG_OK && n_new > 0 && esg_aggregate_copy(copy, &newer, NULL) == ESG_OK)
            aggregate_cache_put(app->cache, newer);
        if (rc != ESG_OK)
            aggregate_cache_remove(app->cache, id);
        if (is_claimed)
            aggregate_cache_unclaim(app->cache, ref);
    }
    aggregate_cache_release(app->cache, ref);
    if (rc != ESG_OK) {
        esg_aggregate_free(copy);
        return rc;
    }
    *out = copy;
    return ESG_OK;
}

esg_status esg_application_get(esg_application *app, const esg_uuid *id, int64_t version,
                               esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    /* The cache holds recorded versions only: a pulling thread's pending batch goes around it. */
    bool is_cached =
        app->cache != NULL && version == 0 && (current_batch == NULL || current_batch->app != app);
    if (is_cached) {
        esg_status rc = get_cached(app, id, out, err);
        if (rc != ESG_OK || *out != NULL)
            return rc;
    }
    esg_status rc = reconstruct(app, id, version, out, err);
    esg_aggregate *copy = NULL;
    if (rc == ESG_OK && is_cached && esg_aggregate_copy(*out, &copy, NULL) == ESG_OK)
        aggregate_cache_put(app->cache, copy);
    return rc;
}

esg_status esg_application_take_snapshot(esg_application *app, const esg_uuid *id, int64_t version,
                                         esg_error *err)
{
    if (!esg_recorder_is_snapshotting(app->recorder))
        return esg_error_set(err, ESG_EINVAL,
                             "%s cannot take snapshots: set IS_SNAPSHOTTING_ENABLED=y, or give its "
                             "type snapshotting_intervals",
                             app->type->name);
    esg_aggregate *aggregate = NULL;
    esg_event *snapshot = NULL;
    esg_stored_event stored = {0};
    esg_status rc = reconstruct(app, id, version, &aggregate, err);
    if (rc == ESG_OK)
        rc = esg_aggregate_snapshot(aggregate, &snapshot, err);
    if (rc == ESG_OK)
        rc = esg_mapper_to_stored(app->mapper, snapshot, &stored, err);
    if (rc == ESG_OK)
        rc = esg_recorder_insert_snapshot(app->recorder, &stored, err);
    if (rc == ESG_ECONFLICT) /* taken already, by this or another process: the same state */
        rc = ESG_OK;
    esg_stored_event_clear(&stored);
    esg_event_free(snapshot);
    esg_aggregate_free(aggregate);
    return rc;
}

esg_status esg_application_call(esg_application *app, const char *method_name,
                                const esg_value *args, const esg_value *kwargs, esg_value **result,
                                esg_error *err)
{
    *result = NULL;
    const esg_method *method = NULL;
    for (size_t i = 0; i < app->type->n_methods && method == NULL; i++)
        if (strcmp(app->type->methods[i].name, method_name) == 0)
            method = &app->type->methods[i];
    if (method == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED, "%s has no method '%.100s'", app->type->name,
                             method_name);
    esg_value *stack_params[8];
    esg_value **params = stack_params;
    if (method->n_params > 8) {
        params = calloc(method->n_params, sizeof *params);
        if (params == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory calling %s", method_name);
    }
    esg_status rc = esg_bind_arguments(method, args, kwargs, params, err);
    if (rc == ESG_OK)
        rc = method->call(app, params, result, err);
    if (rc == ESG_OK && *result == NULL)
        rc = esg_error_set(err, ESG_EINTERNAL, "%s() returned no value", method_name);
    if (rc != ESG_OK) {
        esg_value_free(*result);
        *result = NULL;
    }
    if (params != stack_params)
        free(params);
    return rc;
}

esg_status esg_application_call_json(esg_application *app, const char *method_name,
                                     const char *args_json, size_t args_len,
                                     const char *kwargs_json, size_t kwargs_len, char **result,
                                     size_t *result_len, esg_error *err)
{
    esg_value *args = NULL, *kwargs = NULL, *value = NULL;
    *result = NULL;
    esg_status rc = ESG_OK;
    if (args_json != NULL && args_len > 0)
        rc = esg_json_decode(args_json, args_len, &args, err);
    if (rc == ESG_OK && kwargs_json != NULL && kwargs_len > 0)
        rc = esg_json_decode(kwargs_json, kwargs_len, &kwargs, err);
    if (rc == ESG_OK)
        rc = esg_application_call(app, method_name, args, kwargs, &value, err);
    if (rc == ESG_OK)
        rc = esg_json_encode(value, result, result_len, err);
    esg_value_free(args);
    esg_value_free(kwargs);
    esg_value_free(value);
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

/* ---- Process applications ---- */

esg_status esg_processing_event_collect(esg_processing_event *processing, esg_aggregate *aggregate,
                                        esg_error *err)
{
    return collect_into(&processing->events, &processing->n_events, &processing->capacity,
                        aggregate, err);
}

static esg_status local_select(void *ctx, int64_t start, int64_t limit, esg_notification_list *out,
                               esg_error *err)
{
    return esg_application_select_notifications(ctx, start, limit, 0, NULL, 0, out, err);
}

void esg_application_local_log(esg_application *leader, esg_notification_log *out)
{
    out->leader_name = leader->type->name;
    out->page_size = DEFAULT_PAGE_SIZE;
    out->pages_may_be_short = false;
    out->select = local_select;
    out->ctx = leader;
}

/* Runs the policy on one notification and records its events with the
 * tracking record; *is_skipped when another writer processed it meanwhile. */
static esg_status process_one(esg_application *app, const char *leader_name,
                              const esg_notification *notification, bool *is_skipped,
                              esg_error *err)
{
    *is_skipped = false;
    esg_tracking tracking = {leader_name, notification->id};
    esg_status rc = ESG_OK;
    for (int attempt = 0; attempt < PROCESS_ATTEMPTS; attempt++) {
        esg_event *event = NULL;
        esg_processing_event processing = {0};
        rc = esg_mapper_from_stored(app->mapper, &notification->event, &event, err);
        if (rc == ESG_OK)
            rc = app->type->policy(app, event, &processing, err);
        if (rc == ESG_OK)
            rc = record(app, processing.events, processing.n_events, &tracking, err);
        free_events(processing.events, processing.n_events);
        esg_event_free(event);
        if (rc != ESG_ECONFLICT)
            return rc;
        /* Either the notification was processed meanwhile (then it is done),
         * or an aggregate changed under the policy (then run it again). */
        bool is_tracked = false;
        esg_error check_err;
        if (esg_recorder_has_tracking_id(app->recorder, leader_name, notification->id, &is_tracked,
                                         &check_err) == ESG_OK &&
            is_tracked) {
            *is_skipped = true;
            return ESG_OK;
        }
    }
    return rc;
}

/* Whether page, the answer to a select of page_size, is the last one for now: a short page,
 * unless the log's server may have cut it short by bytes (then an empty page is the end). */
static bool is_last_page(const esg_notification_log *log, const esg_notification_list *page,
                         int64_t page_size)
{
    if ((int64_t)page->n_items >= page_size)
        return false;
    if (!log->pages_may_be_short)
        return true;
    if (log->heavy_page_bytes <= 0)
        return false;
    int64_t n_bytes = 0;
    for (size_t i = 0; i < page->n_items; i++)
        n_bytes += (int64_t)page->items[i].event.state_len +
                   (int64_t)strlen(page->items[i].event.topic) + 64;
    return n_bytes < log->heavy_page_bytes;
}

static void batch_clear(pending_batch *batch)
{
    for (size_t i = 0; i < batch->n_events; i++)
        esg_stored_event_clear(&batch->events[i]);
    batch->n_events = 0;
    batch->n_trackings = 0;
}

static void batch_free(pending_batch *batch)
{
    batch_clear(batch);
    free(batch->events);
    free(batch->trackings);
}

/* Runs the policy on one notification and adds its events and tracking record to the batch. */
static esg_status batch_add(pending_batch *batch, const char *leader_name,
                            const esg_notification *notification, esg_error *err)
{
    esg_event *event = NULL;
    esg_processing_event processing = {0};
    esg_status rc = esg_mapper_from_stored(batch->app->mapper, &notification->event, &event, err);
    if (rc == ESG_OK) {
        pending_batch *outer = current_batch; /* a policy may make another application process */
        current_batch = batch;
        rc = batch->app->type->policy(batch->app, event, &processing, err);
        current_batch = outer;
    }
    size_t n_new = processing.n_events;
    if (rc == ESG_OK && (!esg_grow((void **)&batch->events, &batch->events_capacity,
                                   batch->n_events + n_new, sizeof *batch->events) ||
                         !esg_grow((void **)&batch->trackings, &batch->trackings_capacity,
                                   batch->n_trackings + 1, sizeof *batch->trackings)))
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory processing notifications");
    size_t n_stored = 0;
    for (; rc == ESG_OK && n_stored < n_new; n_stored++) {
        rc = esg_mapper_to_stored(batch->app->mapper, processing.events[n_stored],
                                  &batch->events[batch->n_events + n_stored], err);
        if (rc != ESG_OK)
            break;
    }
    if (rc == ESG_OK) {
        batch->n_events += n_new;
        batch->trackings[batch->n_trackings++] = (esg_tracking){leader_name, notification->id};
    } else {
        for (size_t i = 0; i < n_stored; i++)
            esg_stored_event_clear(&batch->events[batch->n_events + i]);
    }
    free_events(processing.events, processing.n_events);
    esg_event_free(event);
    return rc;
}

/* Records the batch in one transaction and tells the listener. */
static esg_status batch_record(pending_batch *batch, esg_error *err)
{
    esg_application *app = batch->app;
    int64_t *ids = calloc(batch->n_events ? batch->n_events : 1, sizeof *ids);
    if (ids == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory recording events");
    esg_status rc =
        esg_recorder_insert_events_tracked(app->recorder, batch->events, batch->n_events,
                                           batch->trackings, batch->n_trackings, ids, err);
    if (rc == ESG_OK)
        after_recorded(app, batch->events, batch->n_events);
    if (rc == ESG_OK && batch->n_events > 0 && app->on_recorded != NULL)
        app->on_recorded(app->on_recorded_ctx, app, ids[batch->n_events - 1]);
    free(ids);
    return rc;
}

/* Processes the new notifications of page (those after *last) as one batch, one transaction;
 * when that cannot be (another writer changed an aggregate or processed a notification
 * meanwhile), one by one as process_one does. Advances *last over what is recorded. */
static esg_status process_page(esg_application *app, const char *leader_name,
                               const esg_notification_list *page, pending_batch *batch,
                               int64_t *last, int64_t *n_processed, esg_error *err)
{
    batch_clear(batch);
    esg_status rc = ESG_OK;
    size_t i = 0;
    for (; rc == ESG_OK && i < page->n_items; i++)
        if (page->items[i].id > *last)
            rc = batch_add(batch, leader_name, &page->items[i], err);
    esg_error batch_err = {0};
    bool is_policy_failed = rc != ESG_OK && rc != ESG_ECONFLICT;
    esg_status policy_rc = rc;
    if (rc != ESG_OK) {
        /* What the policies did before the failure is still recorded, as one by one would. */
        batch_err = *err;
        rc = ESG_OK;
    }
    if (batch->n_trackings > 0 && (policy_rc == ESG_OK || is_policy_failed)) {
        rc = batch_record(batch, err);
        if (rc == ESG_OK) {
            *last = batch->trackings[batch->n_trackings - 1].notification_id;
            if (n_processed != NULL)
                *n_processed += (int64_t)batch->n_trackings;
        }
    }
    batch_clear(batch);
    if (is_policy_failed && rc == ESG_OK) {
        *err = batch_err;
        return policy_rc;
    }
    if (rc != ESG_ECONFLICT && policy_rc != ESG_ECONFLICT)
        return rc;
    /* Nothing of the batch was recorded: go one by one from where it started. */
    rc = ESG_OK;
    for (i = 0; rc == ESG_OK && i < page->n_items; i++) {
        if (page->items[i].id <= *last)
            continue;
        bool is_skipped = false;
        rc = process_one(app, leader_name, &page->items[i], &is_skipped, err);
        if (rc == ESG_OK) {
            *last = page->items[i].id;
            if (n_processed != NULL && !is_skipped)
                (*n_processed)++;
        }
    }
    return rc;
}

esg_status esg_application_pull_and_process(esg_application *app, const esg_notification_log *log,
                                            int64_t *n_processed, esg_error *err)
{
    if (n_processed != NULL)
        *n_processed = 0;
    if (app->type->policy == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s is not a process application (no policy)",
                             app->type->name);
    pthread_mutex_lock(&app->processing_lock);
    int64_t last = 0;
    esg_status rc = esg_recorder_max_tracking_id(app->recorder, log->leader_name, &last, err);
    int64_t page_size = log->page_size > 0 ? log->page_size : DEFAULT_PAGE_SIZE;
    bool is_batched = esg_recorder_can_track_many(app->recorder);
    pending_batch pending = {.app = app};
    esg_notification_list batch = {0};
    while (rc == ESG_OK) {
        esg_notification_list_clear(&batch);
        rc = log->select(log->ctx, last + 1, page_size, &batch, err);
        bool is_progress = false;
        for (size_t i = 0; rc == ESG_OK && i < batch.n_items && !is_progress; i++)
            is_progress = batch.items[i].id > last; /* a log that ignored start: never twice */
        if (rc == ESG_OK && is_progress && is_batched)
            rc = process_page(app, log->leader_name, &batch, &pending, &last, n_processed, err);
        for (size_t i = 0; rc == ESG_OK && !is_batched && i < batch.n_items; i++) {
            if (batch.items[i].id <= last)
                continue;
            bool is_skipped = false;
            rc = process_one(app, log->leader_name, &batch.items[i], &is_skipped, err);
            if (rc == ESG_OK) {
                last = batch.items[i].id;
                if (n_processed != NULL && !is_skipped)
                    (*n_processed)++;
            }
        }
        /* The end: an empty page, a short one where short means the end, or
         * a page with nothing new (which would otherwise loop forever). */
        if (!is_progress || is_last_page(log, &batch, page_size))
            break;
    }
    esg_notification_list_clear(&batch);
    batch_free(&pending);
    pthread_mutex_unlock(&app->processing_lock);
    return rc;
}
