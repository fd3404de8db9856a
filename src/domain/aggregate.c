/* Aggregates: an id, a version and user state that only events change. New
 * events are applied at once and kept as pending until the application
 * collects and records them. */
#include "esg/domain.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

struct esg_aggregate {
    const esg_aggregate_type *type; /* borrowed; outlives the aggregate */
    esg_uuid id;                    /* the originator id of every event */
    int64_t version;                /* the version of the last event applied */
    esg_datetime created_on;        /* timestamp of the Created event */
    esg_datetime modified_on;       /* timestamp of the last event applied */
    void *state;                    /* type->state_size bytes, owned */
    esg_event **pending;            /* owned, triggered but not yet collected */
    size_t n_pending;
    size_t pending_capacity;
};

static const esg_event_type *find_event_type(const esg_aggregate_type *type, const char *topic)
{
    for (size_t i = 0; i < type->n_event_types; i++)
        if (strcmp(type->event_types[i].topic, topic) == 0)
            return &type->event_types[i];
    return NULL;
}

static esg_aggregate *new_aggregate(const esg_aggregate_type *type, const esg_uuid *id)
{
    esg_aggregate *aggregate = esg_calloc(1, sizeof *aggregate);
    if (aggregate == NULL)
        return NULL;
    aggregate->type = type;
    aggregate->id = *id;
    /* At least one byte, so that a stateless type still has a distinct pointer. */
    aggregate->state = esg_calloc(1, type->state_size ? type->state_size : 1);
    if (aggregate->state == NULL) {
        esg_free(aggregate);
        return NULL;
    }
    return aggregate;
}

/* Applies event (borrowed) to the aggregate: the mutator, then version and times. */
static esg_status apply(esg_aggregate *aggregate, const esg_event *event, esg_error *err)
{
    const esg_event_type *event_type = find_event_type(aggregate->type, event->topic);
    if (event_type == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s has no event type %s", aggregate->type->topic,
                             event->topic);
    if (event->originator_version != aggregate->version + 1)
        return esg_error_set(
            err, ESG_EINVAL, "event %s has version %lld but the aggregate is at version %lld",
            event->topic, (long long)event->originator_version, (long long)aggregate->version);
    if (event_type->apply != NULL) {
        esg_status rc = event_type->apply(aggregate->state, event, err);
        if (rc != ESG_OK)
            return rc;
    }
    aggregate->version = event->originator_version;
    if (aggregate->version == 1)
        aggregate->created_on = event->timestamp;
    aggregate->modified_on = event->timestamp;
    return ESG_OK;
}

/* Makes room for one more pending event. */
static esg_status reserve_pending(esg_aggregate *aggregate, esg_error *err)
{
    if (!esg_grow((void **)&aggregate->pending, &aggregate->pending_capacity,
                  aggregate->n_pending + 1, sizeof *aggregate->pending))
        return esg_error_set(err, ESG_ENOMEM, "out of memory keeping a pending event");
    return ESG_OK;
}

/* Makes the event, applies it and keeps it pending; frees it on failure. */
static esg_status trigger(esg_aggregate *aggregate, const char *event_topic, esg_value *attributes,
                          esg_error *err)
{
    esg_event *event = NULL;
    /* Room first, so that an event once applied can always be kept. */
    esg_status rc = reserve_pending(aggregate, err);
    if (rc != ESG_OK) {
        esg_value_free(attributes);
        return rc;
    }
    rc = esg_event_new(&aggregate->id, aggregate->version + 1, NULL, event_topic, attributes,
                       &event, err);
    if (rc == ESG_OK)
        rc = apply(aggregate, event, err);
    if (rc != ESG_OK) {
        esg_event_free(event);
        return rc;
    }
    aggregate->pending[aggregate->n_pending++] = event;
    return ESG_OK;
}

esg_status esg_aggregate_create(const esg_aggregate_type *type, const char *created_topic,
                                const esg_uuid *id, esg_value *attributes, esg_aggregate **out,
                                esg_error *err)
{
    *out = NULL;
    esg_uuid new_id;
    if (id == NULL) {
        esg_uuid4(&new_id);
        id = &new_id;
    }
    if (attributes != NULL && esg_value_type(attributes) != ESG_TYPE_OBJECT) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_EINVAL, "the attributes of %s must be an object",
                             created_topic);
    }
    /* The Created event carries the aggregate's topic before its own attributes. */
    esg_value *created = esg_value_object();
    esg_status rc = esg_object_set(created, "originator_topic", esg_value_string(type->topic));
    for (size_t i = 0; rc == ESG_OK && i < esg_object_len(attributes); i++)
        rc = esg_object_set(created, esg_object_key_at(attributes, i),
                            esg_value_copy(esg_object_value_at(attributes, i)));
    esg_value_free(attributes);
    if (rc != ESG_OK) {
        esg_value_free(created);
        return esg_error_set(err, rc, "out of memory creating %s", type->topic);
    }
    esg_aggregate *aggregate = new_aggregate(type, id);
    if (aggregate == NULL) {
        esg_value_free(created);
        return esg_error_set(err, ESG_ENOMEM, "out of memory creating %s", type->topic);
    }
    rc = trigger(aggregate, created_topic, created, err);
    if (rc != ESG_OK) {
        esg_aggregate_free(aggregate);
        return rc;
    }
    *out = aggregate;
    return ESG_OK;
}

esg_status esg_aggregate_trigger(esg_aggregate *aggregate, const char *event_topic,
                                 esg_value *attributes, esg_error *err)
{
    return trigger(aggregate, event_topic, attributes, err);
}

esg_status esg_aggregate_replay(const esg_aggregate_type *type, esg_event *const *events,
                                size_t n_events, esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    if (n_events == 0)
        return esg_error_set(err, ESG_ENOTFOUND, "no events to replay for %s", type->topic);
    const char *originator_topic =
        esg_value_as_string(esg_event_get(events[0], "originator_topic"), NULL);
    if (originator_topic == NULL || strcmp(originator_topic, type->topic) != 0)
        return esg_error_set(
            err, ESG_EINVAL, "the first event (%s) does not create a %s (originator_topic %s)",
            events[0]->topic, type->topic, originator_topic ? originator_topic : "missing");
    esg_aggregate *aggregate = new_aggregate(type, &events[0]->originator_id);
    if (aggregate == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory replaying %s", type->topic);
    esg_status rc = esg_aggregate_apply(aggregate, events, n_events, err);
    if (rc != ESG_OK) {
        esg_aggregate_free(aggregate);
        return rc;
    }
    *out = aggregate;
    return ESG_OK;
}

const esg_aggregate_type *esg_aggregate_get_type(const esg_aggregate *aggregate)
{
    return aggregate->type;
}

const esg_uuid *esg_aggregate_id(const esg_aggregate *aggregate)
{
    return &aggregate->id;
}

int64_t esg_aggregate_version(const esg_aggregate *aggregate)
{
    return aggregate->version;
}

const esg_datetime *esg_aggregate_created_on(const esg_aggregate *aggregate)
{
    return &aggregate->created_on;
}

const esg_datetime *esg_aggregate_modified_on(const esg_aggregate *aggregate)
{
    return &aggregate->modified_on;
}

void *esg_aggregate_state(esg_aggregate *aggregate)
{
    return aggregate->state;
}

const void *esg_aggregate_state_const(const esg_aggregate *aggregate)
{
    return aggregate->state;
}

size_t esg_aggregate_n_pending(const esg_aggregate *aggregate)
{
    return aggregate->n_pending;
}

esg_event *const *esg_aggregate_pending(const esg_aggregate *aggregate)
{
    return aggregate->pending;
}

void esg_aggregate_collect(esg_aggregate *aggregate, esg_event ***events, size_t *n_events)
{
    *events = aggregate->n_pending ? aggregate->pending : NULL;
    *n_events = aggregate->n_pending;
    if (aggregate->n_pending == 0)
        esg_free(aggregate->pending);
    aggregate->pending = NULL;
    aggregate->n_pending = 0;
    aggregate->pending_capacity = 0;
}

void esg_aggregate_free(esg_aggregate *aggregate)
{
    if (aggregate == NULL)
        return;
    if (aggregate->type->free_state != NULL)
        aggregate->type->free_state(aggregate->state);
    esg_free(aggregate->state);
    for (size_t i = 0; i < aggregate->n_pending; i++)
        esg_event_free(aggregate->pending[i]);
    esg_free(aggregate->pending);
    esg_free(aggregate);
}

esg_status esg_aggregate_apply(esg_aggregate *aggregate, esg_event *const *events, size_t n_events,
                               esg_error *err)
{
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < n_events; i++) {
        if (!esg_uuid_equal(&events[i]->originator_id, &aggregate->id))
            rc = esg_error_set(err, ESG_EINVAL, "event %zu belongs to another aggregate", i);
        else
            rc = apply(aggregate, events[i], err);
    }
    return rc;
}

/* ---- Snapshots ---- */

/* The state object of a snapshot: "_created_on", "_modified_on", then the type's attributes. */
static esg_status write_snapshot_state(const esg_aggregate *aggregate, esg_value **out,
                                       esg_error *err)
{
    *out = NULL;
    const esg_aggregate_type *type = aggregate->type;
    if (type->write_state == NULL || type->read_state == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s has no write_state and read_state: it cannot be snapshotted or "
                             "cached",
                             type->topic);
    esg_value *attributes = NULL;
    esg_status rc = type->write_state(aggregate->state, &attributes, err);
    if (rc != ESG_OK)
        return rc;
    if (esg_value_type(attributes) != ESG_TYPE_OBJECT) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_EINTERNAL, "the write_state of %s made no object",
                             type->topic);
    }
    esg_value *state = esg_value_object();
    rc = esg_object_set(state, "_created_on", esg_value_datetime(&aggregate->created_on));
    if (rc == ESG_OK)
        rc = esg_object_set(state, "_modified_on", esg_value_datetime(&aggregate->modified_on));
    for (size_t i = 0; rc == ESG_OK && i < esg_object_len(attributes); i++)
        rc = esg_object_set(state, esg_object_key_at(attributes, i),
                            esg_value_copy(esg_object_value_at(attributes, i)));
    esg_value_free(attributes);
    if (rc != ESG_OK) {
        esg_value_free(state);
        return esg_error_set(err, rc, "out of memory writing the state of %s", type->topic);
    }
    *out = state;
    return ESG_OK;
}

/* A new aggregate at version from a state object written by write_snapshot_state (or Python). */
static esg_status read_snapshot_state(const esg_aggregate_type *type, const esg_uuid *id,
                                      int64_t version, const esg_value *state, esg_aggregate **out,
                                      esg_error *err)
{
    *out = NULL;
    if (type->read_state == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s has no read_state: it cannot be read from a snapshot",
                             type->topic);
    const esg_datetime *created_on = esg_value_as_datetime(esg_object_get(state, "_created_on"));
    const esg_datetime *modified_on = esg_value_as_datetime(esg_object_get(state, "_modified_on"));
    if (esg_value_type(state) != ESG_TYPE_OBJECT || created_on == NULL || modified_on == NULL)
        return esg_error_set(err, ESG_EINVAL,
                             "a snapshot of %s needs a state object with datetimes _created_on "
                             "and _modified_on",
                             type->topic);
    esg_aggregate *aggregate = new_aggregate(type, id);
    if (aggregate == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading a snapshot of %s",
                             type->topic);
    aggregate->version = version;
    aggregate->created_on = *created_on;
    aggregate->modified_on = *modified_on;
    esg_status rc = type->read_state(aggregate->state, state, err);
    if (rc != ESG_OK) {
        esg_aggregate_free(aggregate);
        return rc;
    }
    *out = aggregate;
    return ESG_OK;
}

esg_status esg_aggregate_snapshot(const esg_aggregate *aggregate, esg_event **out, esg_error *err)
{
    *out = NULL;
    esg_value *state = NULL;
    esg_status rc = write_snapshot_state(aggregate, &state, err);
    if (rc != ESG_OK)
        return rc;
    esg_value *attributes = esg_value_object();
    rc = esg_object_set(attributes, "topic", esg_value_string(aggregate->type->topic));
    if (rc == ESG_OK)
        rc = esg_object_set(attributes, "state", state);
    else
        esg_value_free(state);
    if (rc != ESG_OK) {
        esg_value_free(attributes);
        return esg_error_set(err, rc, "out of memory taking a snapshot of %s",
                             aggregate->type->topic);
    }
    return esg_event_new(&aggregate->id, aggregate->version, NULL, ESG_SNAPSHOT_TOPIC, attributes,
                         out, err);
}

const char *esg_snapshot_aggregate_topic(const esg_event *snapshot)
{
    return esg_value_as_string(esg_event_get(snapshot, "topic"), NULL);
}

esg_status esg_aggregate_from_snapshot(const esg_aggregate_type *type, const esg_event *snapshot,
                                       esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    const char *topic = esg_snapshot_aggregate_topic(snapshot);
    if (strcmp(snapshot->topic, ESG_SNAPSHOT_TOPIC) != 0 || topic == NULL ||
        strcmp(topic, type->topic) != 0)
        return esg_error_set(err, ESG_EINVAL, "%s (of %s) is not a snapshot of a %s",
                             snapshot->topic, topic != NULL ? topic : "no topic", type->topic);
    return read_snapshot_state(type, &snapshot->originator_id, snapshot->originator_version,
                               esg_event_get(snapshot, "state"), out, err);
}

esg_status esg_aggregate_copy(const esg_aggregate *aggregate, esg_aggregate **out, esg_error *err)
{
    *out = NULL;
    esg_value *state = NULL;
    esg_status rc = write_snapshot_state(aggregate, &state, err);
    if (rc == ESG_OK)
        rc = read_snapshot_state(aggregate->type, &aggregate->id, aggregate->version, state, out,
                                 err);
    esg_value_free(state);
    return rc;
}
