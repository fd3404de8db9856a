/* The in-memory backend ("eventsourcing.popo"): plain arrays and a hash index
 * under one read-write lock. Nothing survives the process; it is the default
 * and the fastest, for tests and for applications that rebuild on start. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/recorder_backend.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/alloc.h"

typedef struct aggregate_entry {
    esg_uuid id;           /* the aggregate */
    size_t *event_indexes; /* indexes into popo_recorder.events, in version order */
    size_t n_events;
    size_t capacity;
    esg_stored_event *snapshots; /* owned, in version order */
    size_t n_snapshots;
    size_t snapshots_capacity;
} aggregate_entry;

typedef struct tracking_entry {
    char *application_name; /* owned: the upstream application */
    int64_t *ids;           /* tracked notification ids, ascending */
    size_t n_ids;
    size_t capacity;
} tracking_entry;

typedef struct command_entry {
    char *key;   /* owned */
    char *reply; /* owned, NUL-terminated after reply_len bytes */
    size_t reply_len;
    char request_hash[ESG_REQUEST_HASH_SIZE];
    int64_t recorded_at;
} command_entry;

typedef struct popo_recorder {
    esg_recorder base;        /* must be first */
    pthread_rwlock_t lock;    /* writers exclusive, readers shared */
    esg_stored_event *events; /* owned; notification id = index + 1 */
    size_t n_events;
    size_t events_capacity;
    aggregate_entry *aggregates; /* owned; one per aggregate ever written */
    size_t n_aggregates;
    size_t aggregates_capacity;
    size_t *slots;             /* open-addressing hash table: aggregate index + 1, 0 when empty */
    size_t n_slots;            /* a power of two, kept at most half full */
    tracking_entry *trackings; /* owned; one per upstream application */
    size_t n_trackings;
    size_t trackings_capacity;
    command_entry *commands; /* owned: the commands' replies */
    size_t n_commands;
    size_t commands_capacity;
    size_t *command_slots;  /* open-addressing hash table: command index + 1, 0 when empty */
    size_t n_command_slots; /* a power of two, kept at most half full */
} popo_recorder;

static const esg_recorder_ops popo_ops;

static size_t hash_uuid(const esg_uuid *id)
{
    /* Random UUIDs are uniform already; uuid5 ids are SHA-1 output. */
    uint64_t h;
    memcpy(&h, id->bytes + 8, sizeof h);
    return (size_t)(h ^ (h >> 29));
}

static aggregate_entry *find_aggregate(const popo_recorder *r, const esg_uuid *id)
{
    if (r->n_slots == 0)
        return NULL;
    for (size_t i = hash_uuid(id) & (r->n_slots - 1);; i = (i + 1) & (r->n_slots - 1)) {
        size_t slot = r->slots[i];
        if (slot == 0)
            return NULL;
        if (esg_uuid_equal(&r->aggregates[slot - 1].id, id))
            return &r->aggregates[slot - 1];
    }
}

static void place_in_slots(size_t *slots, size_t n_slots, const esg_uuid *id, size_t index)
{
    size_t i = hash_uuid(id) & (n_slots - 1);
    while (slots[i] != 0)
        i = (i + 1) & (n_slots - 1);
    slots[i] = index + 1;
}

/* Finds or adds the entry of an aggregate. Adding an empty entry changes
 * nothing that readers can see, so it may happen before a write can fail. */
static aggregate_entry *get_or_add_aggregate(popo_recorder *r, const esg_uuid *id)
{
    aggregate_entry *entry = find_aggregate(r, id);
    if (entry != NULL)
        return entry;
    if ((r->n_aggregates + 1) * 2 > r->n_slots) {
        size_t n_slots = r->n_slots ? r->n_slots * 2 : 64;
        size_t *slots = esg_calloc(n_slots, sizeof *slots);
        if (slots == NULL)
            return NULL;
        for (size_t i = 0; i < r->n_aggregates; i++)
            place_in_slots(slots, n_slots, &r->aggregates[i].id, i);
        esg_free(r->slots);
        r->slots = slots;
        r->n_slots = n_slots;
    }
    if (!esg_grow((void **)&r->aggregates, &r->aggregates_capacity, r->n_aggregates + 1,
                  sizeof *r->aggregates))
        return NULL;
    entry = &r->aggregates[r->n_aggregates];
    memset(entry, 0, sizeof *entry);
    entry->id = *id;
    place_in_slots(r->slots, r->n_slots, id, r->n_aggregates);
    r->n_aggregates++;
    return entry;
}

/* The position in entry where version belongs; *exists if it is there. */
static size_t version_position(const popo_recorder *r, const aggregate_entry *entry,
                               int64_t version, bool *exists)
{
    size_t low = 0, high = entry->n_events;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (r->events[entry->event_indexes[mid]].originator_version < version)
            low = mid + 1;
        else
            high = mid;
    }
    *exists =
        low < entry->n_events && r->events[entry->event_indexes[low]].originator_version == version;
    return low;
}

static tracking_entry *find_tracking(const popo_recorder *r, const char *application_name)
{
    for (size_t i = 0; i < r->n_trackings; i++)
        if (strcmp(r->trackings[i].application_name, application_name) == 0)
            return &r->trackings[i];
    return NULL;
}

static size_t id_position(const tracking_entry *entry, int64_t id, bool *exists)
{
    size_t low = 0, high = entry->n_ids;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (entry->ids[mid] < id)
            low = mid + 1;
        else
            high = mid;
    }
    *exists = low < entry->n_ids && entry->ids[low] == id;
    return low;
}

static size_t hash_key(const char *key)
{
    return (size_t)esg_hash_strings((const char *const[]){key, NULL});
}

static command_entry *find_command(const popo_recorder *r, const char *key)
{
    if (r->n_command_slots == 0)
        return NULL;
    size_t mask = r->n_command_slots - 1;
    for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
        size_t slot = r->command_slots[i];
        if (slot == 0)
            return NULL;
        if (strcmp(r->commands[slot - 1].key, key) == 0)
            return &r->commands[slot - 1];
    }
}

static void place_command(size_t *slots, size_t n_slots, const char *key, size_t index)
{
    size_t i = hash_key(key) & (n_slots - 1);
    while (slots[i] != 0)
        i = (i + 1) & (n_slots - 1);
    slots[i] = index + 1;
}

/* Rebuilds the hash table of the commands for at least n_commands of them; false when out of
 * memory (the old table is kept). */
static bool index_commands(popo_recorder *r, size_t n_commands)
{
    size_t n_slots = 64;
    while (n_slots < n_commands * 2)
        n_slots *= 2;
    size_t *slots = esg_calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return false;
    for (size_t k = 0; k < r->n_commands; k++)
        place_command(slots, n_slots, r->commands[k].key, k);
    esg_free(r->command_slots);
    r->command_slots = slots;
    r->n_command_slots = n_slots;
    return true;
}

static void command_entry_clear(command_entry *entry)
{
    esg_free(entry->key);
    esg_free(entry->reply);
}

/* Checks that nothing of the call exists yet (ESG_ECONFLICT otherwise). */
static esg_status check_conflicts(const popo_recorder *r, const esg_stored_event *events,
                                  size_t n_events, const esg_tracking *tracking, esg_error *err)
{
    char hex[ESG_UUID_HEX_SIZE];
    for (size_t i = 0; i < n_events; i++) {
        const aggregate_entry *entry = find_aggregate(r, &events[i].originator_id);
        bool exists = false;
        if (entry != NULL)
            version_position(r, entry, events[i].originator_version, &exists);
        for (size_t j = 0; j < i && !exists; j++)
            exists = events[j].originator_version == events[i].originator_version &&
                     esg_uuid_equal(&events[j].originator_id, &events[i].originator_id);
        if (exists) {
            esg_uuid_hex(&events[i].originator_id, hex);
            return esg_error_set(err, ESG_ECONFLICT,
                                 "version %lld of aggregate %s is already recorded",
                                 (long long)events[i].originator_version, hex);
        }
    }
    if (tracking != NULL) {
        const tracking_entry *entry = find_tracking(r, tracking->application_name);
        bool exists = false;
        if (entry != NULL)
            id_position(entry, tracking->notification_id, &exists);
        if (exists)
            return esg_error_set(err, ESG_ECONFLICT, "notification %lld of %s is already tracked",
                                 (long long)tracking->notification_id, tracking->application_name);
    }
    return ESG_OK;
}

/* Events, at most one tracking record and at most one command record in one step. */
static esg_status popo_insert_events(esg_recorder *recorder, const esg_stored_event *events,
                                     size_t n_events, const esg_tracking *tracking,
                                     const esg_command_record *command, int64_t *notification_ids,
                                     esg_error *err)
{
    popo_recorder *r = (popo_recorder *)recorder;
    esg_stored_event *copies = esg_calloc(n_events ? n_events : 1, sizeof *copies);
    command_entry new_command = {0};
    size_t n_copied = 0;
    esg_status rc = ESG_OK;
    if (copies == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory recording events");
    if (command != NULL) {
        new_command.key = esg_strdup(command->key);
        new_command.reply = esg_malloc(command->reply_len + 1);
        if (new_command.key == NULL || new_command.reply == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory recording a command's reply");
            goto out;
        }
        if (command->reply_len > 0)
            memcpy(new_command.reply, command->reply, command->reply_len);
        new_command.reply[command->reply_len] = '\0';
        new_command.reply_len = command->reply_len;
        memcpy(new_command.request_hash, command->request_hash, ESG_REQUEST_HASH_SIZE);
        new_command.recorded_at = command->recorded_at;
    }
    /* Copy outside the lock: the lock is held only for checks and pointer moves. */
    for (; n_copied < n_events && rc == ESG_OK; n_copied++)
        rc = esg_stored_event_copy(&copies[n_copied], &events[n_copied], err);
    if (rc != ESG_OK) {
        n_copied--;
        goto out;
    }

    pthread_rwlock_wrlock(&r->lock);
    rc = check_conflicts(r, events, n_events, tracking, err);
    command_entry *expired = command != NULL ? find_command(r, command->key) : NULL;
    if (rc == ESG_OK && expired != NULL && expired->recorded_at >= command->replaces_before)
        rc = esg_error_set(err, ESG_ECONFLICT, "the command's idempotency key is recorded already");
    if (rc == ESG_OK && command != NULL && expired == NULL &&
        (!esg_grow((void **)&r->commands, &r->commands_capacity, r->n_commands + 1,
                   sizeof *r->commands) ||
         ((r->n_commands + 1) * 2 > r->n_command_slots && !index_commands(r, r->n_commands + 1))))
        rc = ESG_ENOMEM;
    /* Make every allocation before changing anything, so that a failure
     * leaves the recorder as it was. */
    if (rc == ESG_OK && !esg_grow((void **)&r->events, &r->events_capacity, r->n_events + n_events,
                                  sizeof *r->events))
        rc = ESG_ENOMEM;
    for (size_t i = 0; rc == ESG_OK && i < n_events; i++) {
        aggregate_entry *entry = get_or_add_aggregate(r, &events[i].originator_id);
        if (entry == NULL || !esg_grow((void **)&entry->event_indexes, &entry->capacity,
                                       entry->n_events + n_events, sizeof *entry->event_indexes))
            rc = ESG_ENOMEM;
    }
    tracking_entry *tracked = NULL;
    if (rc == ESG_OK && tracking != NULL) {
        tracked = find_tracking(r, tracking->application_name);
        if (tracked == NULL) {
            char *name = esg_strdup(tracking->application_name);
            if (name == NULL || !esg_grow((void **)&r->trackings, &r->trackings_capacity,
                                          r->n_trackings + 1, sizeof *r->trackings)) {
                esg_free(name);
                rc = ESG_ENOMEM;
            } else {
                tracked = &r->trackings[r->n_trackings++];
                memset(tracked, 0, sizeof *tracked);
                tracked->application_name = name;
            }
        }
        if (tracked != NULL && !esg_grow((void **)&tracked->ids, &tracked->capacity,
                                         tracked->n_ids + 1, sizeof *tracked->ids))
            rc = ESG_ENOMEM;
    }
    if (rc == ESG_ENOMEM)
        esg_error_set(err, rc, "out of memory recording events");
    if (rc == ESG_OK) {
        for (size_t i = 0; i < n_events; i++) {
            size_t index = r->n_events++;
            r->events[index] = copies[i];
            aggregate_entry *entry = find_aggregate(r, &copies[i].originator_id);
            bool exists;
            size_t at = version_position(r, entry, copies[i].originator_version, &exists);
            memmove(entry->event_indexes + at + 1, entry->event_indexes + at,
                    (entry->n_events - at) * sizeof *entry->event_indexes);
            entry->event_indexes[at] = index;
            entry->n_events++;
            if (notification_ids != NULL)
                notification_ids[i] = (int64_t)index + 1;
        }
        n_copied = 0; /* now owned by the recorder */
        if (tracked != NULL) {
            bool exists;
            size_t at = id_position(tracked, tracking->notification_id, &exists);
            memmove(tracked->ids + at + 1, tracked->ids + at,
                    (tracked->n_ids - at) * sizeof *tracked->ids);
            tracked->ids[at] = tracking->notification_id;
            tracked->n_ids++;
        }
        if (command != NULL) {
            command_entry *entry = expired;
            if (entry == NULL) {
                place_command(r->command_slots, r->n_command_slots, new_command.key, r->n_commands);
                entry = &r->commands[r->n_commands++];
                memset(entry, 0, sizeof *entry);
            }
            command_entry_clear(entry); /* the expired record's */
            *entry = new_command;
            memset(&new_command, 0, sizeof new_command); /* now the recorder's */
        }
    }
    pthread_rwlock_unlock(&r->lock);
out:
    for (size_t i = 0; i < n_copied; i++)
        esg_stored_event_clear(&copies[i]);
    esg_free(copies);
    command_entry_clear(&new_command);
    return rc;
}

static esg_status popo_select_command(esg_recorder *recorder, const char *key, int64_t not_before,
                                      esg_command_reply *out, bool *found, esg_error *err)
{
    popo_recorder *r = (popo_recorder *)recorder;
    esg_status rc = ESG_OK;
    pthread_rwlock_rdlock(&r->lock);
    const command_entry *entry = find_command(r, key);
    if (entry != NULL && entry->recorded_at >= not_before) {
        rc = esg_command_reply_fill(out, entry->request_hash, ESG_REQUEST_HASH_SIZE - 1,
                                    entry->reply, entry->reply_len, entry->recorded_at, err);
        *found = rc == ESG_OK;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* Drops the expired records and indexes the rest again (in a table of the same size: it never
 * shrinks, so this cannot fail for memory). */
static esg_status popo_delete_commands(esg_recorder *recorder, int64_t before, int64_t *n_deleted,
                                       esg_error *err)
{
    (void)err;
    popo_recorder *r = (popo_recorder *)recorder;
    pthread_rwlock_wrlock(&r->lock);
    size_t kept = 0;
    for (size_t k = 0; k < r->n_commands; k++) {
        if (r->commands[k].recorded_at < before)
            command_entry_clear(&r->commands[k]);
        else
            r->commands[kept++] = r->commands[k];
    }
    *n_deleted = (int64_t)(r->n_commands - kept);
    r->n_commands = kept;
    if (*n_deleted > 0) {
        memset(r->command_slots, 0, r->n_command_slots * sizeof *r->command_slots);
        for (size_t k = 0; k < r->n_commands; k++)
            place_command(r->command_slots, r->n_command_slots, r->commands[k].key, k);
    }
    pthread_rwlock_unlock(&r->lock);
    return ESG_OK;
}

/* Appends what options select of an aggregate's events, or of its snapshots. */
static esg_status popo_select_versions(esg_recorder *recorder, bool is_snapshots,
                                       const esg_uuid *originator_id,
                                       const esg_select_events_options *options,
                                       esg_stored_event_list *out, esg_error *err)
{
    popo_recorder *r = (popo_recorder *)recorder;
    esg_status rc = ESG_OK;
    pthread_rwlock_rdlock(&r->lock);
    const aggregate_entry *entry = find_aggregate(r, originator_id);
    size_t n = entry == NULL ? 0 : is_snapshots ? entry->n_snapshots : entry->n_events;
    int64_t n_selected = 0;
    for (size_t k = 0; k < n && rc == ESG_OK; k++) {
        size_t i = options->desc ? n - 1 - k : k;
        const esg_stored_event *stored =
            is_snapshots ? &entry->snapshots[i] : &r->events[entry->event_indexes[i]];
        if (options->has_gt && stored->originator_version <= options->gt)
            continue;
        if (options->has_lte && stored->originator_version > options->lte)
            continue;
        if (options->limit > 0 && n_selected == options->limit)
            break;
        rc = esg_stored_event_list_push(out, stored, err);
        n_selected++;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

static esg_status popo_insert_snapshot(esg_recorder *recorder, const esg_stored_event *snapshot,
                                       esg_error *err)
{
    popo_recorder *r = (popo_recorder *)recorder;
    esg_stored_event copy;
    esg_status rc = esg_stored_event_copy(&copy, snapshot, err);
    if (rc != ESG_OK)
        return rc;
    pthread_rwlock_wrlock(&r->lock);
    aggregate_entry *entry = get_or_add_aggregate(r, &snapshot->originator_id);
    size_t at = 0;
    if (entry == NULL || !esg_grow((void **)&entry->snapshots, &entry->snapshots_capacity,
                                   entry->n_snapshots + 1, sizeof *entry->snapshots)) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory recording a snapshot");
    } else {
        while (at < entry->n_snapshots &&
               entry->snapshots[at].originator_version < snapshot->originator_version)
            at++;
        if (at < entry->n_snapshots &&
            entry->snapshots[at].originator_version == snapshot->originator_version)
            rc = esg_error_set(err, ESG_ECONFLICT, "a snapshot at version %lld is recorded already",
                               (long long)snapshot->originator_version);
    }
    if (rc == ESG_OK) {
        memmove(&entry->snapshots[at + 1], &entry->snapshots[at],
                (entry->n_snapshots - at) * sizeof *entry->snapshots);
        entry->snapshots[at] = copy;
        entry->n_snapshots++;
    }
    pthread_rwlock_unlock(&r->lock);
    if (rc != ESG_OK)
        esg_stored_event_clear(&copy);
    return rc;
}

static bool topic_matches(const char *topic, const char *const *topics, size_t n_topics)
{
    if (n_topics == 0)
        return true;
    for (size_t i = 0; i < n_topics; i++)
        if (strcmp(topic, topics[i]) == 0)
            return true;
    return false;
}

static esg_status popo_select_notifications(esg_recorder *recorder, int64_t start, int64_t limit,
                                            int64_t stop, const char *const *topics,
                                            size_t n_topics, esg_notification_list *out,
                                            esg_error *err)
{
    popo_recorder *r = (popo_recorder *)recorder;
    esg_status rc = ESG_OK;
    int64_t n_selected = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (int64_t id = start; id <= (int64_t)r->n_events && n_selected < limit && rc == ESG_OK;
         id++) {
        if (stop > 0 && id > stop)
            break;
        const esg_stored_event *stored = &r->events[id - 1];
        if (!topic_matches(stored->topic, topics, n_topics))
            continue;
        rc = esg_notification_list_push(out, id, stored, err);
        n_selected++;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

static esg_status popo_max_notification_id(esg_recorder *recorder, int64_t *out, esg_error *err)
{
    (void)err;
    popo_recorder *r = (popo_recorder *)recorder;
    pthread_rwlock_rdlock(&r->lock);
    *out = (int64_t)r->n_events;
    pthread_rwlock_unlock(&r->lock);
    return ESG_OK;
}

static esg_status popo_max_tracking_id(esg_recorder *recorder, const char *application_name,
                                       int64_t *out, esg_error *err)
{
    (void)err;
    popo_recorder *r = (popo_recorder *)recorder;
    pthread_rwlock_rdlock(&r->lock);
    const tracking_entry *entry = find_tracking(r, application_name);
    *out = entry && entry->n_ids ? entry->ids[entry->n_ids - 1] : 0;
    pthread_rwlock_unlock(&r->lock);
    return ESG_OK;
}

static esg_status popo_has_tracking_id(esg_recorder *recorder, const char *application_name,
                                       int64_t notification_id, bool *out, esg_error *err)
{
    (void)err;
    popo_recorder *r = (popo_recorder *)recorder;
    bool exists = false;
    pthread_rwlock_rdlock(&r->lock);
    const tracking_entry *entry = find_tracking(r, application_name);
    if (entry != NULL)
        id_position(entry, notification_id, &exists);
    pthread_rwlock_unlock(&r->lock);
    *out = exists;
    return ESG_OK;
}

static void popo_close(esg_recorder *recorder)
{
    popo_recorder *r = (popo_recorder *)recorder;
    for (size_t i = 0; i < r->n_events; i++)
        esg_stored_event_clear(&r->events[i]);
    esg_free(r->events);
    for (size_t i = 0; i < r->n_aggregates; i++) {
        esg_free(r->aggregates[i].event_indexes);
        for (size_t k = 0; k < r->aggregates[i].n_snapshots; k++)
            esg_stored_event_clear(&r->aggregates[i].snapshots[k]);
        esg_free(r->aggregates[i].snapshots);
    }
    esg_free(r->aggregates);
    esg_free(r->slots);
    for (size_t i = 0; i < r->n_trackings; i++) {
        esg_free(r->trackings[i].application_name);
        esg_free(r->trackings[i].ids);
    }
    esg_free(r->trackings);
    for (size_t i = 0; i < r->n_commands; i++)
        command_entry_clear(&r->commands[i]);
    esg_free(r->commands);
    esg_free(r->command_slots);
    pthread_rwlock_destroy(&r->lock);
    esg_free(r);
}

static const esg_recorder_ops popo_ops = {
    .name = "eventsourcing.popo",
    .insert_events = popo_insert_events,
    .select_versions = popo_select_versions,
    .select_notifications = popo_select_notifications,
    .max_notification_id = popo_max_notification_id,
    .max_tracking_id = popo_max_tracking_id,
    .has_tracking_id = popo_has_tracking_id,
    .insert_snapshot = popo_insert_snapshot,
    .select_command = popo_select_command,
    .delete_commands = popo_delete_commands,
    .close = popo_close,
};

esg_status esg_recorder_open_popo(bool is_snapshotting, esg_recorder **out, esg_error *err)
{
    *out = NULL;
    popo_recorder *r = esg_calloc(1, sizeof *r);
    if (r == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory opening an in-memory recorder");
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        esg_free(r);
        return esg_error_set(err, ESG_ENOMEM, "cannot create the recorder's lock");
    }
    r->base.ops = &popo_ops;
    r->base.is_snapshotting = is_snapshotting;
    *out = &r->base;
    return ESG_OK;
}
