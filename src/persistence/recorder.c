/* The public recorder functions: argument checks, then the backend's ops.
 * Also chooses the backend from the environment (PERSISTENCE_MODULE). */
#include "persistence/recorder_backend.h"
#include "persistence/recorder_metrics.h"

#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/settings.h"

#define POPO_MODULE "eventsourcing.popo"
#define SQLITE_MODULE "eventsourcing.sqlite"
#define POSTGRES_MODULE "eventsourcing.postgres"
#define MAX_LOCK_TIMEOUT_S (INT_MAX / 1000)

static esg_status open_sqlite_from_env(const esg_env *env, const char *app_name,
                                       bool is_snapshotting, esg_recorder **out, esg_error *err)
{
    const char *backend = NULL, *db_name = NULL;
    esg_status rc = esg_recorder_locate(env, app_name, &backend, &db_name, err);
    if (rc != ESG_OK)
        return rc;
    esg_sqlite_options options = {.is_snapshotting = is_snapshotting};
    long timeout_s = 0;
    bool is_creating_tables = true;
    rc = esg_setting_int(env, app_name, "SQLITE_LOCK_TIMEOUT", 0, 0, MAX_LOCK_TIMEOUT_S, &timeout_s,
                         err);
    if (rc == ESG_OK)
        rc = esg_setting_bool(env, app_name, "CREATE_TABLE", true, &is_creating_tables, err);
    if (rc != ESG_OK)
        return rc;
    options.lock_timeout_ms = (int)timeout_s * 1000;
    options.is_using_tables_as_they_are = !is_creating_tables;
    return esg_recorder_open_sqlite(db_name, &options, out, err);
}

/* The backend a persistence topic names: "eventsourcing.sqlite" or, as Python also resolves
 * it, "eventsourcing.sqlite:Factory". */
static bool names_module(const char *topic, const char *module)
{
    size_t len = strlen(module);
    return strncmp(topic, module, len) == 0 &&
           (topic[len] == '\0' || strcmp(topic + len, ":Factory") == 0);
}

/* The backend the persistence settings name (PERSISTENCE_MODULE, or the legacy
 * INFRASTRUCTURE_FACTORY and FACTORY_TOPIC, as Python reads them), one of the three. */
static esg_status choose_module(const esg_env *env, const char *app_name, const char **out,
                                esg_error *err)
{
    /* As Python: the first of these that is set and not empty, else the default. */
    static const char *const keys[] = {"PERSISTENCE_MODULE", "INFRASTRUCTURE_FACTORY",
                                       "FACTORY_TOPIC"};
    static const char *const modules[] = {POPO_MODULE, SQLITE_MODULE, POSTGRES_MODULE};
    esg_setting module = {0};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        esg_setting_lookup(env, app_name, keys[i], &module);
        if (module.value != NULL && module.value[0] != '\0')
            break;
        module.value = NULL;
    }
    *out = POPO_MODULE;
    for (size_t i = 0; module.value != NULL && i < sizeof modules / sizeof modules[0]; i++)
        if (names_module(module.value, modules[i])) {
            *out = modules[i];
            return ESG_OK;
        }
    if (module.value == NULL)
        return ESG_OK;
    return esg_error_set(err, ESG_ECONFIG,
                         "%s '%.80s' is not supported: use '" POPO_MODULE
                         "' (in memory, the default), '" SQLITE_MODULE "' or '" POSTGRES_MODULE "'",
                         module.key, module.value);
}

esg_status esg_recorder_locate(const esg_env *env, const char *app_name, const char **backend,
                               const char **sqlite_db_name, esg_error *err)
{
    *sqlite_db_name = NULL;
    esg_status rc = choose_module(env, app_name, backend, err);
    if (rc != ESG_OK || strcmp(*backend, SQLITE_MODULE) != 0)
        return rc;
    esg_setting db_name;
    esg_setting_lookup(env, app_name, "SQLITE_DBNAME", &db_name);
    if (db_name.value == NULL || db_name.value[0] == '\0')
        return esg_error_set(err, ESG_ECONFIG,
                             "SQLite database name not found in environment with keys: %s",
                             db_name.tried);
    *sqlite_db_name = db_name.value;
    return ESG_OK;
}

esg_status esg_recorder_open(const esg_env *env, const char *app_name, esg_recorder **out,
                             esg_error *err)
{
    *out = NULL;
    const char *module = NULL;
    bool is_snapshotting = false;
    esg_status rc = choose_module(env, app_name, &module, err);
    if (rc == ESG_OK)
        rc = esg_setting_bool(env, app_name, "IS_SNAPSHOTTING_ENABLED", false, &is_snapshotting,
                              err);
    if (rc != ESG_OK)
        return rc;
    if (strcmp(module, SQLITE_MODULE) == 0)
        return open_sqlite_from_env(env, app_name, is_snapshotting, out, err);
    if (strcmp(module, POSTGRES_MODULE) == 0)
        return esg_recorder_open_postgres_env(env, app_name, out, err);
    return esg_recorder_open_popo(is_snapshotting, out, err);
}

bool esg_recorder_is_blocking(const esg_recorder *recorder)
{
    return recorder->ops->is_blocking;
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

/* The backend's write of events, tracking records and a command record, checked. */
static esg_status insert(esg_recorder *recorder, const esg_stored_event *events, size_t n_events,
                         const esg_tracking *trackings, size_t n_trackings,
                         const esg_command_record *command, int64_t *notification_ids,
                         esg_error *err)
{
    if (n_events == 0 && n_trackings == 0 && command == NULL)
        return ESG_OK;
    esg_status rc = check_insert(events, n_events, trackings, n_trackings, err);
    if (rc != ESG_OK)
        return rc;
    const esg_recorder_ops *ops = recorder->ops;
    if (ops->insert_events_tracked != NULL)
        return ops->insert_events_tracked(recorder, events, n_events, trackings, n_trackings,
                                          command, notification_ids, err);
    if (n_trackings > 1)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s records one tracking record per transaction", ops->name);
    return ops->insert_events(recorder, events, n_events, n_trackings ? trackings : NULL, command,
                              notification_ids, err);
}

esg_status esg_recorder_insert_events(esg_recorder *recorder, const esg_stored_event *events,
                                      size_t n_events, const esg_tracking *tracking,
                                      int64_t *notification_ids, esg_error *err)
{
    return insert(recorder, events, n_events, tracking, tracking != NULL, NULL, notification_ids,
                  err);
}

esg_status esg_recorder_insert_events_tracked(esg_recorder *recorder,
                                              const esg_stored_event *events, size_t n_events,
                                              const esg_tracking *trackings, size_t n_trackings,
                                              int64_t *notification_ids, esg_error *err)
{
    return insert(recorder, events, n_events, trackings, n_trackings, NULL, notification_ids, err);
}

/* ---- Commands' replies ---- */

void esg_command_reply_clear(esg_command_reply *reply)
{
    if (reply == NULL)
        return;
    esg_free(reply->reply);
    memset(reply, 0, sizeof *reply);
}

esg_status esg_command_reply_fill(esg_command_reply *out, const char *hash, size_t hash_len,
                                  const void *reply, size_t reply_len, int64_t recorded_at,
                                  esg_error *err)
{
    if (hash == NULL || hash_len != ESG_REQUEST_HASH_SIZE - 1)
        return esg_error_set(err, ESG_EIO, "corrupt command record: a bad request hash");
    if ((out->reply = esg_malloc(reply_len + 1)) == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading a command's reply");
    memcpy(out->request_hash, hash, hash_len);
    out->request_hash[hash_len] = '\0';
    if (reply_len > 0)
        memcpy(out->reply, reply, reply_len);
    out->reply[reply_len] = '\0';
    out->reply_len = reply_len;
    out->recorded_at = recorded_at;
    return ESG_OK;
}

static esg_status check_key(const char *key, esg_error *err)
{
    if (key == NULL || key[0] == '\0')
        return esg_error_set(err, ESG_EINVAL, "an idempotency key must not be empty");
    if (strlen(key) > ESG_IDEMPOTENCY_KEY_MAX)
        return esg_error_set(err, ESG_EINVAL, "an idempotency key must be at most %d bytes",
                             ESG_IDEMPOTENCY_KEY_MAX);
    return ESG_OK;
}

esg_status esg_recorder_insert_command(esg_recorder *recorder, const esg_stored_event *events,
                                       size_t n_events, const esg_command_record *command,
                                       int64_t *notification_ids, esg_error *err)
{
    if (command == NULL)
        return esg_error_set(err, ESG_EINVAL, "no command record");
    esg_status rc = check_key(command->key, err);
    if (rc == ESG_OK &&
        (command->request_hash == NULL || strspn(command->request_hash, "0123456789abcdef") != 64 ||
         command->request_hash[64] != '\0'))
        rc = esg_error_set(err, ESG_EINVAL, "a request hash must be 64 lower-case hex digits");
    if (rc == ESG_OK && command->reply == NULL && command->reply_len > 0)
        rc = esg_error_set(err, ESG_EINVAL, "a command record's reply is NULL");
    if (rc != ESG_OK)
        return rc;
    return insert(recorder, events, n_events, NULL, 0, command, notification_ids, err);
}

esg_status esg_recorder_select_command(esg_recorder *recorder, const char *key, int64_t not_before,
                                       esg_command_reply *out, bool *found, esg_error *err)
{
    *found = false;
    memset(out, 0, sizeof *out);
    esg_status rc = check_key(key, err);
    if (rc != ESG_OK)
        return rc;
    return recorder->ops->select_command(recorder, key, not_before, out, found, err);
}

esg_status esg_recorder_has_command_table(esg_recorder *recorder, bool *out, esg_error *err)
{
    *out = true;
    if (recorder->ops->has_command_table == NULL)
        return ESG_OK;
    return recorder->ops->has_command_table(recorder, out, err);
}

esg_status esg_recorder_delete_commands(esg_recorder *recorder, int64_t before, int64_t *n_deleted,
                                        esg_error *err)
{
    int64_t n = 0;
    esg_status rc = recorder->ops->delete_commands(recorder, before, &n, err);
    if (n_deleted != NULL)
        *n_deleted = rc == ESG_OK ? n : 0;
    return rc;
}

bool esg_recorder_can_track_many(const esg_recorder *recorder)
{
    return recorder->ops->insert_events_tracked != NULL;
}

void esg_events_query_of(const esg_select_events_options *options, bool is_snapshots,
                         esg_events_query *out)
{
    out->shape = (options->has_gt ? ESG_EVENTS_GT : 0) | (options->has_lte ? ESG_EVENTS_LTE : 0) |
                 (options->desc ? ESG_EVENTS_DESC : 0) |
                 (options->limit > 0 ? ESG_EVENTS_LIMIT : 0);
    out->n_numbers = 0;
    if (options->has_gt)
        out->numbers[out->n_numbers++] = options->gt;
    if (options->has_lte)
        out->numbers[out->n_numbers++] = options->lte;
    if (options->limit > 0)
        out->numbers[out->n_numbers++] = options->limit;
    out->doing = is_snapshots ? "cannot read the snapshots of an aggregate"
                              : "cannot read the events of an aggregate";
}

bool esg_events_query_sql(char *out, size_t out_size, const char *select_columns, const char *table,
                          unsigned shape, bool is_numbered)
{
    static const unsigned optional[3] = {ESG_EVENTS_GT, ESG_EVENTS_LTE, ESG_EVENTS_LIMIT};
    char params[3][24] = {"", "", ""}; /* the placeholders of gt, lte, limit */
    int n_params = 1;
    for (int i = 0; i < 3; i++)
        if (shape & optional[i])
            snprintf(params[i], sizeof params[i], is_numbered ? "$%d" : "?", ++n_params);
    int n = snprintf(out, out_size,
                     "%sFROM %s WHERE originator_id = %s%s%s%s%s ORDER BY "
                     "originator_version %s%s%s",
                     select_columns, table, is_numbered ? "$1" : "?",
                     shape & ESG_EVENTS_GT ? " AND originator_version > " : "", params[0],
                     shape & ESG_EVENTS_LTE ? " AND originator_version <= " : "", params[1],
                     shape & ESG_EVENTS_DESC ? "DESC" : "ASC",
                     shape & ESG_EVENTS_LIMIT ? " LIMIT " : "", params[2]);
    return n >= 0 && (size_t)n < out_size;
}

/* A backend's select with options checked (NULL: all), and on failure the caller's list as it
 * was (backends may append part). */
static esg_status select_versions(esg_recorder *recorder, bool is_snapshots,
                                  const esg_uuid *originator_id,
                                  const esg_select_events_options *options,
                                  esg_stored_event_list *out, esg_error *err)
{
    static const esg_select_events_options all = {0};
    if (options == NULL)
        options = &all;
    if (options->limit < 0)
        return esg_error_set(err, ESG_EINVAL, "limit must be >= 0 (0 for no limit), not %lld",
                             (long long)options->limit);
    size_t n_before = out->n_items;
    esg_status rc =
        recorder->ops->select_versions(recorder, is_snapshots, originator_id, options, out, err);
    while (rc != ESG_OK && out->n_items > n_before)
        esg_stored_event_clear(&out->items[--out->n_items]);
    return rc;
}

esg_status esg_recorder_select_events(esg_recorder *recorder, const esg_uuid *originator_id,
                                      const esg_select_events_options *options,
                                      esg_stored_event_list *out, esg_error *err)
{
    return select_versions(recorder, false, originator_id, options, out, err);
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
    size_t n_before = out->n_items;
    esg_status rc = recorder->ops->select_notifications(recorder, start, limit, stop, topics,
                                                        n_topics, out, err);
    while (rc != ESG_OK && out->n_items > n_before) /* the caller's list as it was */
        esg_stored_event_clear(&out->items[--out->n_items].event);
    return rc;
}

void esg_recorder_write_metrics(esg_recorder *recorder, const char *const *labels, esg_buffer *out)
{
    if (recorder->ops->write_metrics != NULL)
        recorder->ops->write_metrics(recorder, labels, out);
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

bool esg_recorder_is_snapshotting(const esg_recorder *recorder)
{
    return recorder->is_snapshotting;
}

static esg_status check_snapshotting(const esg_recorder *recorder, esg_error *err)
{
    if (!recorder->is_snapshotting)
        return esg_error_set(err, ESG_EINVAL,
                             "this %s recorder has no snapshots: set IS_SNAPSHOTTING_ENABLED",
                             recorder->ops->name);
    return ESG_OK;
}

esg_status esg_recorder_insert_snapshot(esg_recorder *recorder, const esg_stored_event *snapshot,
                                        esg_error *err)
{
    esg_status rc = check_snapshotting(recorder, err);
    if (rc == ESG_OK)
        rc = check_insert(snapshot, 1, NULL, 0, err);
    if (rc == ESG_OK && snapshot->originator_version < 1)
        rc = esg_error_set(err, ESG_EINVAL, "a snapshot's version must be >= 1, not %lld",
                           (long long)snapshot->originator_version);
    return rc == ESG_OK ? recorder->ops->insert_snapshot(recorder, snapshot, err) : rc;
}

esg_status esg_recorder_select_snapshots(esg_recorder *recorder, const esg_uuid *originator_id,
                                         const esg_select_events_options *options,
                                         esg_stored_event_list *out, esg_error *err)
{
    esg_status rc = check_snapshotting(recorder, err);
    return rc == ESG_OK ? select_versions(recorder, true, originator_id, options, out, err) : rc;
}

void esg_recorder_close(esg_recorder *recorder)
{
    if (recorder != NULL)
        recorder->ops->close(recorder);
}

esg_status esg_recorder_lease_new(esg_recorder *recorder, const char *name,
                                  esg_recorder_lease **out, esg_error *err)
{
    *out = NULL;
    if (recorder == NULL || name == NULL || name[0] == '\0')
        return esg_error_set(err, ESG_EINVAL, "a lease needs a recorder and a name");
    if (recorder->ops->lease_new != NULL)
        return recorder->ops->lease_new(recorder, name, out, err);
    /* One process's backend: nothing to share, the lease is always held. */
    if ((*out = esg_calloc(1, sizeof **out)) == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a lease");
    (*out)->recorder = recorder;
    return ESG_OK;
}

esg_status esg_recorder_lease_refresh(esg_recorder_lease *lease, bool *is_held, esg_error *err)
{
    const esg_recorder_ops *ops = lease->recorder->ops;
    if (ops->lease_refresh != NULL)
        return ops->lease_refresh(lease, is_held, err);
    *is_held = true;
    return ESG_OK;
}

bool esg_recorder_lease_is_shared(const esg_recorder_lease *lease)
{
    return lease->recorder->ops->lease_refresh != NULL;
}

esg_status esg_recorder_lease_nudge(esg_recorder_lease *lease, esg_error *err)
{
    const esg_recorder_ops *ops = lease->recorder->ops;
    return ops->lease_nudge != NULL ? ops->lease_nudge(lease, err) : ESG_OK;
}

bool esg_recorder_lease_take_nudge(esg_recorder_lease *lease)
{
    const esg_recorder_ops *ops = lease->recorder->ops;
    return ops->lease_take_nudge != NULL && ops->lease_take_nudge(lease);
}

void esg_recorder_lease_free(esg_recorder_lease *lease)
{
    if (lease == NULL)
        return;
    if (lease->recorder->ops->lease_free != NULL)
        lease->recorder->ops->lease_free(lease);
    else
        esg_free(lease);
}

esg_status esg_recorder_watch_new(esg_recorder *recorder, esg_recorder_watch **out, esg_error *err)
{
    *out = NULL;
    if (recorder == NULL)
        return esg_error_set(err, ESG_EINVAL, "a watch needs a recorder");
    return recorder->ops->watch_new != NULL ? recorder->ops->watch_new(recorder, out, err) : ESG_OK;
}

esg_status esg_recorder_watch_wait(esg_recorder_watch *watch, int timeout_ms, bool *has_news,
                                   esg_error *err)
{
    *has_news = false;
    if (timeout_ms < 0)
        return esg_error_set(err, ESG_EINVAL, "a watch's wait needs a timeout >= 0, not %d",
                             timeout_ms);
    return watch->recorder->ops->watch_wait(watch, timeout_ms, has_news, err);
}

void esg_recorder_watch_interrupt(esg_recorder_watch *watch)
{
    watch->recorder->ops->watch_interrupt(watch);
}

void esg_recorder_watch_free(esg_recorder_watch *watch)
{
    if (watch != NULL)
        watch->recorder->ops->watch_free(watch);
}
