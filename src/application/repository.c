/* The repository: aggregates rebuilt from their latest snapshot and the events after it, kept in
 * the aggregate cache when there is one, and snapshots taken on demand. */
#include <stdlib.h>
#include <string.h>

#include "application/application_internal.h"
#include "core/alloc.h"

static const esg_aggregate_type *find_aggregate_type(const esg_application *app, const char *topic)
{
    for (size_t i = 0; topic != NULL && i < app->n_aggregate_types; i++)
        if (strcmp(app->type->aggregate_types[i]->topic, topic) == 0)
            return app->type->aggregate_types[i];
    return NULL;
}

/* Decodes stored events (borrowed) with the application's mapper into *events (an array the
 * caller frees with free_events, n_events long even on failure). */
static esg_status decode_all(const esg_application *app, const esg_stored_event_list *stored,
                             esg_event ***events, esg_error *err)
{
    *events = esg_calloc(stored->n_items ? stored->n_items : 1, sizeof **events);
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
        const esg_aggregate_type *type = find_aggregate_type(app, topic);
        if (type != NULL && esg_aggregate_type_has_state_functions(type))
            rc = esg_aggregate_from_snapshot(type, snapshot, out, err);
    }
    esg_event_free(snapshot);
    esg_stored_event_list_clear(&stored);
    return rc;
}

/* Rebuilds an aggregate from its latest snapshot (if any) and the events after it, with the
 * pulling thread's pending batch when there is one. */
esg_status app_reconstruct(esg_application *app, const esg_uuid *id, int64_t version,
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
    const pending_batch *batch = app_current_batch(app);
    if (rc == ESG_OK && batch != NULL)
        rc = app_add_pending_events(batch, id, version, base_version, &stored, err);
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
        const esg_aggregate_type *type = topic ? find_aggregate_type(app, topic) : NULL;
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
        app_free_events(events, stored.n_items);
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
        app_free_events(events, stored.n_items);
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
    bool is_cached = app->cache != NULL && version == 0 && app_current_batch(app) == NULL;
    if (is_cached) {
        esg_status rc = get_cached(app, id, out, err);
        if (rc != ESG_OK || *out != NULL)
            return rc;
    }
    esg_status rc = app_reconstruct(app, id, version, out, err);
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
    esg_status rc = app_reconstruct(app, id, version, &aggregate, err);
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
