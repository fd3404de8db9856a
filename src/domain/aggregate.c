/* Aggregates: an id, a version and user state that only events change. New
 * events are applied at once and kept as pending until the application
 * collects and records them. */
#include "esg/domain.h"
#include "core/grow.h"

#include <stddef.h>
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

/* An event type of an aggregate type: a lower-level one or a declared one. */
typedef struct event_kind {
    const esg_event_type *type; /* or NULL */
    const esg_event_def *def;   /* or NULL */
} event_kind;

static event_kind find_event(const esg_aggregate_type *type, const char *topic)
{
    for (size_t i = 0; i < type->n_event_types; i++)
        if (strcmp(type->event_types[i].topic, topic) == 0)
            return (event_kind){&type->event_types[i], NULL};
    return (event_kind){NULL, esg_aggregate_type_event_def(type, topic)};
}

const esg_event_def *esg_aggregate_type_event_def(const esg_aggregate_type *type, const char *topic)
{
    for (const esg_event_def *const *e = type->events; e != NULL && *e != NULL; e++)
        if (strcmp((*e)->topic, topic) == 0)
            return *e;
    return NULL;
}

bool esg_aggregate_type_has_event(const esg_aggregate_type *type, const char *topic)
{
    event_kind kind = find_event(type, topic);
    return kind.type != NULL || kind.def != NULL;
}

/* ---- What a declared type's fields give ---- */

static size_t state_size(const esg_aggregate_type *type)
{
    return type->state.fields != NULL ? type->state.size : type->state_size;
}

bool esg_aggregate_type_has_state_functions(const esg_aggregate_type *type)
{
    return (type->write_state != NULL && type->read_state != NULL) || type->state.fields != NULL;
}

static esg_status read_state(const esg_aggregate_type *type, void *state,
                             const esg_value *attributes, esg_error *err)
{
    if (type->read_state != NULL)
        return type->read_state(state, attributes, err);
    return esg_struct_from_value(&type->state, attributes, true, type->topic, state, err);
}

static void free_state(const esg_aggregate_type *type, void *state)
{
    if (type->free_state != NULL)
        type->free_state(state);
    else if (type->state.fields != NULL)
        esg_struct_clear(&type->state, state, true);
}

/* A class version >= 0 (0 is 1), and exactly one upcast from each version below it (the list
 * ends at NULL: ESG_UPCASTS). */
static esg_status check_versions(const char *topic, int class_version, const esg_upcast_fn *upcasts,
                                 esg_error *err)
{
    int n_upcasts = 0;
    while (upcasts != NULL && upcasts[n_upcasts] != NULL)
        n_upcasts++;
    if (class_version < 0)
        return esg_error_set(err, ESG_EINVAL, "%s has class_version %d", topic, class_version);
    if (n_upcasts < class_version - 1)
        return esg_error_set(err, ESG_EINVAL,
                             "%s is at class_version %d but has no upcast from version %d", topic,
                             class_version, n_upcasts + 1);
    if (n_upcasts > 0 && n_upcasts != class_version - 1)
        return esg_error_set(err, ESG_EINVAL,
                             "%s is at class_version %d but has %d upcasts: one from each older "
                             "version",
                             topic, class_version, n_upcasts);
    return ESG_OK;
}

static esg_status check_event_def(const esg_event_def *e, esg_error *err)
{
    if (e->topic == NULL)
        return esg_error_set(err, ESG_EINVAL, "an event type has no topic");
    esg_status rc = esg_struct_check(&e->data, e->topic, err);
    return rc == ESG_OK ? check_versions(e->topic, e->class_version, e->upcasts, err) : rc;
}

esg_status esg_aggregate_type_check(const esg_aggregate_type *type, esg_error *err)
{
    if (type->topic == NULL)
        return esg_error_set(err, ESG_EINVAL, "an aggregate type has no topic");
    esg_status rc = esg_struct_check(&type->state, type->topic, err);
    if (rc == ESG_OK)
        rc = check_versions(type->topic, type->class_version, type->upcasts, err);
    for (size_t i = 0; rc == ESG_OK && i < type->n_event_types; i++)
        if (type->event_types[i].topic == NULL)
            rc = esg_error_set(err, ESG_EINVAL, "%s: an event type has no topic", type->topic);
    for (const esg_event_def *const *e = type->events; rc == ESG_OK && e != NULL && *e != NULL; e++)
        rc = check_event_def(*e, err);
    return rc;
}

static esg_status register_field_transcodings(const esg_struct_type *type, esg_error *err)
{
    esg_status rc = ESG_OK;
    for (const esg_field *f = type->fields; rc == ESG_OK && f != NULL && f->name != NULL; f++)
        if (f->kind == ESG_CUSTOM && f->transcoding != NULL)
            rc = esg_transcoding_register(f->transcoding, err);
    return rc;
}

esg_status esg_aggregate_type_register_transcodings(const esg_aggregate_type *type, esg_error *err)
{
    esg_status rc = register_field_transcodings(&type->state, err);
    for (const esg_event_def *const *e = type->events; rc == ESG_OK && e != NULL && *e != NULL; e++)
        rc = register_field_transcodings(&(*e)->data, err);
    return rc;
}

/* Takes "class_version" out of attributes (1 when absent) and upcasts them from there. */
static esg_status upcast(const char *topic, int class_version, const esg_upcast_fn *upcasts,
                         esg_value *attributes, esg_error *err)
{
    esg_value *stored = esg_object_take(attributes, "class_version");
    int64_t from = stored == NULL ? 1 : esg_value_as_int(stored);
    bool is_int = stored == NULL || esg_value_type(stored) == ESG_TYPE_INT;
    esg_value_free(stored);
    if (!is_int || from < 1)
        return esg_error_set(err, ESG_EINVAL, "%s has a class_version that is not an int >= 1",
                             topic);
    esg_status rc = ESG_OK;
    for (int64_t v = from; rc == ESG_OK && v < class_version; v++)
        rc = upcasts[v - 1](attributes, err);
    return rc;
}

esg_status esg_event_upcast(const esg_event_def *def, esg_event *event, esg_error *err)
{
    if (def->class_version <= 1 && esg_object_get(event->attributes, "class_version") == NULL)
        return ESG_OK;
    return upcast(event->topic, def->class_version, def->upcasts, event->attributes, err);
}

/* Calls a declared event's mutator with the event's data decoded (pointing into the event). */
static esg_status mutate(const esg_event_def *event_type, void *state, const esg_event *event,
                         esg_error *err)
{
    _Alignas(max_align_t) unsigned char on_stack[256];
    size_t size = event_type->data.size;
    void *data = size <= sizeof on_stack ? on_stack : esg_malloc(size);
    if (data == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory applying %s", event->topic);
    memset(data, 0, size);
    esg_status rc =
        esg_struct_from_value(&event_type->data, event->attributes, false, event->topic, data, err);
    if (rc == ESG_OK) {
        esg_error mutator_err = {0}; /* a mutator's err is never NULL, and starts clear */
        rc = event_type->mutate(state, data, &mutator_err);
        if (rc != ESG_OK && err != NULL)
            *err = mutator_err;
        esg_struct_clear(&event_type->data, data, false);
    }
    if (data != on_stack)
        esg_free(data);
    return rc;
}

static esg_aggregate *new_aggregate(const esg_aggregate_type *type, const esg_uuid *id)
{
    esg_aggregate *aggregate = esg_calloc(1, sizeof *aggregate);
    if (aggregate == NULL)
        return NULL;
    aggregate->type = type;
    aggregate->id = *id;
    /* At least one byte, so that a stateless type still has a distinct pointer. */
    aggregate->state = esg_calloc(1, state_size(type) ? state_size(type) : 1);
    if (aggregate->state == NULL) {
        esg_free(aggregate);
        return NULL;
    }
    return aggregate;
}

/* Applies event (borrowed) to the aggregate: the mutator, then version and times. */
static esg_status apply(esg_aggregate *aggregate, const esg_event *event, esg_error *err)
{
    event_kind kind = find_event(aggregate->type, event->topic);
    if (kind.type == NULL && kind.def == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s has no event type %s", aggregate->type->topic,
                             event->topic);
    if (event->originator_version != aggregate->version + 1)
        return esg_error_set(
            err, ESG_EINVAL, "event %s has version %lld but the aggregate is at version %lld",
            event->topic, (long long)event->originator_version, (long long)aggregate->version);
    esg_status rc = ESG_OK;
    if (kind.type != NULL && kind.type->apply != NULL)
        rc = kind.type->apply(aggregate->state, event, err);
    else if (kind.def != NULL && kind.def->mutate != NULL)
        rc = mutate(kind.def, aggregate->state, event, err);
    if (rc != ESG_OK)
        return rc;
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
    /* As Python stores it: "class_version" after the event's own attributes. */
    const esg_event_def *def = esg_aggregate_type_event_def(aggregate->type, event_topic);
    if (def != NULL && def->class_version > 1) {
        if (attributes == NULL)
            attributes = esg_value_object();
        if (attributes == NULL || (esg_value_type(attributes) == ESG_TYPE_OBJECT &&
                                   esg_object_set(attributes, "class_version",
                                                  esg_value_int(def->class_version)) != ESG_OK)) {
            esg_value_free(attributes);
            return esg_error_set(err, ESG_ENOMEM, "out of memory triggering %s", event_topic);
        }
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
    free_state(aggregate->type, aggregate->state);
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
        const esg_event_def *def = esg_aggregate_type_event_def(aggregate->type, events[i]->topic);
        if (!esg_uuid_equal(&events[i]->originator_id, &aggregate->id))
            rc = esg_error_set(err, ESG_EINVAL, "event %zu belongs to another aggregate", i);
        else if (def != NULL)
            rc = esg_event_upcast(def, events[i], err);
        if (rc == ESG_OK)
            rc = apply(aggregate, events[i], err);
    }
    return rc;
}

/* ---- Snapshots ---- */

esg_status esg_aggregate_write_state(const esg_aggregate *aggregate, esg_value *object,
                                     esg_error *err)
{
    const esg_aggregate_type *type = aggregate->type;
    if (type->write_state == NULL && type->state.fields != NULL)
        return esg_struct_write_into(&type->state, aggregate->state, type->topic, object, err);
    if (type->write_state == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s has no write_state (nor state fields): its state cannot be "
                             "written",
                             type->topic);
    esg_value *attributes = NULL;
    esg_status rc = type->write_state(aggregate->state, &attributes, err);
    if (rc == ESG_OK && esg_value_type(attributes) != ESG_TYPE_OBJECT)
        rc = esg_error_set(err, ESG_EINTERNAL, "the write_state of %s made no object", type->topic);
    for (size_t i = 0; rc == ESG_OK && i < esg_object_len(attributes); i++)
        if (esg_object_set(object, esg_object_key_at(attributes, i),
                           esg_value_copy(esg_object_value_at(attributes, i))) != ESG_OK)
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory writing the state of %s",
                               type->topic);
    esg_value_free(attributes);
    return rc;
}

/* The state object of a snapshot: "_created_on", "_modified_on", then the type's attributes. */
static esg_status write_snapshot_state(const esg_aggregate *aggregate, esg_value **out,
                                       esg_error *err)
{
    *out = NULL;
    const esg_aggregate_type *type = aggregate->type;
    if (type->read_state == NULL && type->state.fields == NULL)
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s has no write_state and read_state (nor state fields): it cannot "
                             "be snapshotted or cached",
                             type->topic);
    esg_value *state = esg_value_object();
    esg_status rc =
        esg_object_set(state, "_created_on", esg_value_datetime(&aggregate->created_on));
    if (rc == ESG_OK)
        rc = esg_object_set(state, "_modified_on", esg_value_datetime(&aggregate->modified_on));
    if (rc != ESG_OK) {
        esg_value_free(state);
        return esg_error_set(err, rc, "out of memory writing the state of %s", type->topic);
    }
    rc = esg_aggregate_write_state(aggregate, state, err);
    if (rc == ESG_OK && type->class_version > 1 && /* last, as Python's Snapshot.take puts it */
        esg_object_set(state, "class_version", esg_value_int(type->class_version)) != ESG_OK)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory writing the state of %s", type->topic);
    if (rc != ESG_OK) {
        esg_value_free(state);
        return rc;
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
    if (!esg_aggregate_type_has_state_functions(type))
        return esg_error_set(err, ESG_EUNIMPLEMENTED,
                             "%s has no read_state (nor state fields): it cannot be read from a "
                             "snapshot",
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
    /* A state of an older class version is upcast in a copy (the snapshot is borrowed). */
    esg_value *upcast_state = NULL;
    esg_status rc = ESG_OK;
    if (type->class_version > 1 || esg_object_get(state, "class_version") != NULL) {
        upcast_state = esg_value_copy(state);
        rc = upcast_state == NULL
                 ? esg_error_set(err, ESG_ENOMEM, "out of memory upcasting %s", type->topic)
                 : upcast(type->topic, type->class_version, type->upcasts, upcast_state, err);
        state = upcast_state;
    }
    if (rc == ESG_OK)
        rc = read_state(type, aggregate->state, state, err);
    esg_value_free(upcast_state);
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
