/* Process applications: a leader's notifications pulled page by page after the last tracked
 * position, and each processed by the policy exactly once (its new events recorded with its
 * tracking record), a whole page in one transaction when the recorder can. */
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "application/application_internal.h"
#include "core/grow.h"
#include "core/alloc.h"

/* Notifications read from a leader per select call, unless the log says. */
#define DEFAULT_PAGE_SIZE 100
/* Attempts at one notification when a concurrent writer changed the same
 * aggregate (the policy runs again on fresh state each time). */
#define PROCESS_ATTEMPTS 10

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
struct pending_batch {
    esg_application *app;     /* whose gets see the batch */
    esg_stored_event *events; /* owned, in the order the policies made them */
    size_t n_events;
    size_t events_capacity;
    esg_tracking *trackings; /* one per notification; names borrowed from the log */
    size_t n_trackings;
    size_t trackings_capacity;
};

const pending_batch *app_current_batch(esg_application *app)
{
    if (!atomic_load(&app->has_batch)) /* the usual case: no lock taken */
        return NULL;
    pthread_mutex_lock(&app->batch_lock);
    const pending_batch *batch =
        app->batch != NULL && pthread_equal(app->batch_thread, pthread_self()) ? app->batch : NULL;
    pthread_mutex_unlock(&app->batch_lock);
    return batch;
}

/* Makes batch the page whose policies run (NULL: none), and returns the one before (the same
 * thread's, when a policy makes this application pull again). */
static pending_batch *set_current_batch(esg_application *app, pending_batch *batch)
{
    pthread_mutex_lock(&app->batch_lock);
    pending_batch *outer = app->batch;
    app->batch = batch;
    app->batch_thread = pthread_self();
    atomic_store(&app->has_batch, batch != NULL);
    pthread_mutex_unlock(&app->batch_lock);
    return outer;
}

/* Appends the batch's events of aggregate id (up to version when > 0) to what the recorder
 * holds of it, after base_version (the snapshot it starts from, or 0). ESG_ECONFLICT when another
 * writer recorded one of the batch's versions meanwhile: the batch can no longer be recorded, and
 * its notifications are processed one by one. */
esg_status app_add_pending_events(const pending_batch *batch, const esg_uuid *id, int64_t version,
                                  int64_t base_version, esg_stored_event_list *stored,
                                  esg_error *err)
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

esg_status esg_processing_event_collect(esg_processing_event *processing, esg_aggregate *aggregate,
                                        esg_error *err)
{
    return app_collect_into(&processing->events, &processing->n_events, &processing->capacity,
                            aggregate, err);
}

static esg_status local_select(void *ctx, int64_t start, int64_t limit, const char *const *topics,
                               size_t n_topics, esg_notification_list *out, esg_error *err)
{
    return esg_application_select_notifications(ctx, start, limit, 0, topics, n_topics, out, err);
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
            rc = esg_application_type_run_policy(app->type, app, event, &processing, err);
        if (rc == ESG_OK)
            rc = app_record(app, processing.events, processing.n_events, &tracking, NULL, err);
        app_free_events(processing.events, processing.n_events);
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

size_t esg_topics_count(const char *const *topics)
{
    size_t n = 0;
    while (topics != NULL && topics[n] != NULL)
        n++;
    return n;
}

/* Drops from page the notifications of topics the type does not follow (n_topics of them; a
 * log may not filter), as Python's filter_received_notifications does. */
static void keep_followed(const esg_application_type *type, size_t n_topics,
                          esg_notification_list *page)
{
    size_t kept = 0;
    for (size_t i = 0; n_topics > 0 && i < page->n_items; i++) {
        bool is_followed = false;
        for (size_t t = 0; t < n_topics && !is_followed; t++)
            is_followed = strcmp(page->items[i].event.topic, type->follow_topics[t]) == 0;
        if (is_followed)
            page->items[kept++] = page->items[i];
        else
            esg_stored_event_clear(&page->items[i].event);
    }
    if (n_topics > 0)
        page->n_items = kept;
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
    esg_free(batch->events);
    esg_free(batch->trackings);
}

/* Runs the policy on one notification and adds its events and tracking record to the batch. */
static esg_status batch_add(pending_batch *batch, const char *leader_name,
                            const esg_notification *notification, esg_error *err)
{
    esg_event *event = NULL;
    esg_processing_event processing = {0};
    esg_status rc = esg_mapper_from_stored(batch->app->mapper, &notification->event, &event, err);
    if (rc == ESG_OK) {
        /* The policy may make this application pull again (it follows itself): restore after. */
        pending_batch *outer = set_current_batch(batch->app, batch);
        rc = esg_application_type_run_policy(batch->app->type, batch->app, event, &processing, err);
        set_current_batch(batch->app, outer);
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
    app_free_events(processing.events, processing.n_events);
    esg_event_free(event);
    return rc;
}

/* Records the batch in one transaction and tells the listener. */
static esg_status batch_record(pending_batch *batch, esg_error *err)
{
    esg_application *app = batch->app;
    int64_t *ids = esg_calloc(batch->n_events ? batch->n_events : 1, sizeof *ids);
    if (ids == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory recording events");
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    esg_status rc =
        esg_recorder_insert_events_tracked(app->recorder, batch->events, batch->n_events,
                                           batch->trackings, batch->n_trackings, ids, err);
    app_count_write(app, &started, batch->n_events, rc);
    if (rc == ESG_OK)
        app_after_recorded(app, batch->events, batch->n_events);
    if (rc == ESG_OK && batch->n_events > 0 && app->on_recorded != NULL)
        app->on_recorded(app->on_recorded_ctx, app, ids[batch->n_events - 1]);
    esg_free(ids);
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
    if (!esg_application_type_has_policy(app->type))
        return esg_error_set(err, ESG_EINVAL, "%s is not a process application (no policy)",
                             app->type->name);
    pthread_mutex_lock(&app->processing_lock);
    int64_t last = 0;
    esg_status rc = esg_recorder_max_tracking_id(app->recorder, log->leader_name, &last, err);
    int64_t page_size = log->page_size > 0 ? log->page_size : DEFAULT_PAGE_SIZE;
    bool is_batched = esg_recorder_can_track_many(app->recorder);
    pending_batch pending = {.app = app};
    esg_notification_list batch = {0};
    size_t n_topics = esg_topics_count(app->type->follow_topics); /* 0: all */
    while (rc == ESG_OK) {
        esg_notification_list_clear(&batch);
        rc = log->select(log->ctx, last + 1, page_size, app->type->follow_topics, n_topics, &batch,
                         err);
        /* The end: an empty page, a short one where short means the end, or a page with
         * nothing new (which would otherwise loop forever: a log that ignored start). */
        int64_t highest_read = last;
        for (size_t i = 0; rc == ESG_OK && i < batch.n_items; i++)
            if (batch.items[i].id > highest_read)
                highest_read = batch.items[i].id;
        bool is_end = rc != ESG_OK || highest_read == last || is_last_page(log, &batch, page_size);
        keep_followed(app->type, n_topics, &batch);
        if (rc == ESG_OK && batch.n_items > 0 && is_batched)
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
        /* Past the notifications of other topics too: the next page starts after them. */
        if (rc == ESG_OK && highest_read > last)
            last = highest_read;
        if (is_end)
            break;
    }
    esg_notification_list_clear(&batch);
    batch_free(&pending);
    pthread_mutex_unlock(&app->processing_lock);
    return rc;
}
