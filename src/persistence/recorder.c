/* The public recorder functions: argument checks, then the backend's ops.
 * Also chooses the backend from the environment (PERSISTENCE_MODULE). */
#include "persistence/recorder_backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define POPO_MODULE "eventsourcing.popo"
#define SQLITE_MODULE "eventsourcing.sqlite"
#define POSTGRES_MODULE "eventsourcing.postgres"

/* Parses a whole decimal int in [min, max]; false for anything else. */
static bool parse_int(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    while (end != NULL && (*end == ' ' || *end == '\t'))
        end++;
    if (errno != 0 || end == text || end == NULL || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

static bool is_blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

static esg_status open_sqlite_from_env(const esg_env *env, const char *app_name, esg_recorder **out,
                                       esg_error *err)
{
    const char *db_name = esg_env_lookup(env, app_name, "SQLITE_DBNAME");
    if (db_name == NULL || db_name[0] == '\0') {
        char *prefixed =
            app_name && app_name[0] ? esg_env_prefixed_key(app_name, "SQLITE_DBNAME") : NULL;
        esg_error_set(err, ESG_ECONFIG,
                      "SQLite database name not found in environment with keys: %s%sSQLITE_DBNAME",
                      prefixed ? prefixed : "", prefixed ? ", " : "");
        free(prefixed);
        return ESG_ECONFIG;
    }
    const char *timeout_text = esg_env_lookup(env, app_name, "SQLITE_LOCK_TIMEOUT");
    long timeout_s = 0;
    if (!is_blank(timeout_text)) {
        while (*timeout_text == ' ' || *timeout_text == '\t')
            timeout_text++;
        if (!parse_int(timeout_text, 0, INT_MAX / 1000, &timeout_s))
            return esg_error_set(err, ESG_ECONFIG,
                                 "SQLITE_LOCK_TIMEOUT is invalid: expected a whole number of "
                                 "seconds or nothing, got '%s'",
                                 timeout_text);
    }
    return esg_recorder_open_sqlite(db_name, (int)timeout_s * 1000, out, err);
}

esg_status esg_recorder_open(const esg_env *env, const char *app_name, esg_recorder **out,
                             esg_error *err)
{
    *out = NULL;
    const char *module = esg_env_lookup(env, app_name, "PERSISTENCE_MODULE");
    if (is_blank(module) || strcmp(module, POPO_MODULE) == 0)
        return esg_recorder_open_popo(out, err);
    if (strcmp(module, SQLITE_MODULE) == 0)
        return open_sqlite_from_env(env, app_name, out, err);
    if (strcmp(module, POSTGRES_MODULE) == 0)
        return esg_recorder_open_postgres_env(env, app_name, out, err);
    return esg_error_set(err, ESG_ECONFIG,
                         "PERSISTENCE_MODULE '%s' is not supported: use '" POPO_MODULE
                         "' (in memory, the default), '" SQLITE_MODULE "' or '" POSTGRES_MODULE "'",
                         module);
}

const char *esg_recorder_backend(const esg_recorder *recorder)
{
    return recorder->ops->name;
}

/* Checks the arguments of both inserts. */
static esg_status check_insert(const esg_stored_event *events, size_t n_events,
                               const esg_tracking *trackings, size_t n_trackings, esg_error *err)
{
    if (n_events > 0 && events == NULL)
        return esg_error_set(err, ESG_EINVAL, "events is NULL but n_events is %zu", n_events);
    if (n_trackings > 0 && trackings == NULL)
        return esg_error_set(err, ESG_EINVAL, "trackings is NULL but n_trackings is %zu",
                             n_trackings);
    for (size_t i = 0; i < n_events; i++) {
        if (events[i].topic == NULL || (events[i].state == NULL && events[i].state_len > 0))
            return esg_error_set(err, ESG_EINVAL, "stored event %zu has no topic or state", i);
    }
    for (size_t i = 0; i < n_trackings; i++) {
        const esg_tracking *tracking = &trackings[i];
        if (tracking->application_name == NULL || tracking->application_name[0] == '\0')
            return esg_error_set(err, ESG_EINVAL, "a tracking record needs an application name");
        if (tracking->notification_id < 1)
            return esg_error_set(err, ESG_EINVAL,
                                 "a tracking record's notification id must be >= 1, not %lld",
                                 (long long)tracking->notification_id);
    }
    return ESG_OK;
}

esg_status esg_recorder_insert_events(esg_recorder *recorder, const esg_stored_event *events,
                                      size_t n_events, const esg_tracking *tracking,
                                      int64_t *notification_ids, esg_error *err)
{
    if (n_events == 0 && tracking == NULL)
        return ESG_OK;
    esg_status rc = check_insert(events, n_events, tracking, tracking != NULL, err);
    if (rc != ESG_OK)
        return rc;
    return recorder->ops->insert_events(recorder, events, n_events, tracking, notification_ids,
                                        err);
}

esg_status esg_recorder_insert_events_tracked(esg_recorder *recorder,
                                              const esg_stored_event *events, size_t n_events,
                                              const esg_tracking *trackings, size_t n_trackings,
                                              int64_t *notification_ids, esg_error *err)
{
    if (n_events == 0 && n_trackings == 0)
        return ESG_OK;
    esg_status rc = check_insert(events, n_events, trackings, n_trackings, err);
    if (rc != ESG_OK)
        return rc;
    if (n_trackings <= 1)
        return recorder->ops->insert_events(recorder, events, n_events,
                                            n_trackings ? trackings : NULL, notification_ids, err);
    if (recorder->ops->insert_events_tracked == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s records one tracking record per transaction", recorder->ops->name);
    return recorder->ops->insert_events_tracked(recorder, events, n_events, trackings, n_trackings,
                                                notification_ids, err);
}

bool esg_recorder_can_track_many(const esg_recorder *recorder)
{
    return recorder->ops->insert_events_tracked != NULL;
}

esg_status esg_recorder_select_events(esg_recorder *recorder, const esg_uuid *originator_id,
                                      const esg_select_events_options *options,
                                      esg_stored_event_list *out, esg_error *err)
{
    static const esg_select_events_options all = {0};
    if (options == NULL)
        options = &all;
    if (options->limit < 0)
        return esg_error_set(err, ESG_EINVAL, "limit must be >= 0 (0 for no limit), not %lld",
                             (long long)options->limit);
    return recorder->ops->select_events(recorder, originator_id, options, out, err);
}

esg_status esg_recorder_select_notifications(esg_recorder *recorder, int64_t start, int64_t limit,
                                             int64_t stop, const char *const *topics,
                                             size_t n_topics, esg_notification_list *out,
                                             esg_error *err)
{
    if (start < 1)
        return esg_error_set(err, ESG_EINVAL, "start must be >= 1, not %lld", (long long)start);
    if (limit < 1)
        return esg_error_set(err, ESG_EINVAL, "limit must be >= 1, not %lld", (long long)limit);
    if (stop < 0)
        return esg_error_set(err, ESG_EINVAL, "stop must be >= 1 (or 0 for none), not %lld",
                             (long long)stop);
    if (n_topics > 0 && topics == NULL)
        return esg_error_set(err, ESG_EINVAL, "topics is NULL but n_topics is %zu", n_topics);
    for (size_t i = 0; i < n_topics; i++)
        if (topics[i] == NULL)
            return esg_error_set(err, ESG_EINVAL, "topic %zu is NULL", i);
    return recorder->ops->select_notifications(recorder, start, limit, stop, topics, n_topics, out,
                                               err);
}

esg_status esg_recorder_max_notification_id(esg_recorder *recorder, int64_t *out, esg_error *err)
{
    return recorder->ops->max_notification_id(recorder, out, err);
}

esg_status esg_recorder_max_tracking_id(esg_recorder *recorder, const char *application_name,
                                        int64_t *out, esg_error *err)
{
    if (application_name == NULL)
        return esg_error_set(err, ESG_EINVAL, "application_name is NULL");
    return recorder->ops->max_tracking_id(recorder, application_name, out, err);
}

esg_status esg_recorder_has_tracking_id(esg_recorder *recorder, const char *application_name,
                                        int64_t notification_id, bool *out, esg_error *err)
{
    if (application_name == NULL)
        return esg_error_set(err, ESG_EINVAL, "application_name is NULL");
    return recorder->ops->has_tracking_id(recorder, application_name, notification_id, out, err);
}

void esg_recorder_close(esg_recorder *recorder)
{
    if (recorder != NULL)
        recorder->ops->close(recorder);
}
