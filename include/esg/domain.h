/* The domain model: domain events, their stored form, and aggregates that are
 * changed only by triggering events, as in eventsourcing 9.2.
 *
 * An event's stored state is the JSON the Python library writes: an object
 * with "timestamp" first and then the event's own attributes in order (for a
 * Created event "originator_topic" comes first among them). The originator id
 * and version travel beside the state, not in it. */
#ifndef ESG_DOMAIN_H
#define ESG_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "esg/alloc.h"
#include "esg/error.h"
#include "esg/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Domain events -------------------------------------------------------- */

typedef struct esg_event {
    esg_uuid originator_id;     /* the aggregate the event belongs to */
    int64_t originator_version; /* 1 for the Created event, then +1 per event */
    esg_datetime timestamp;     /* when it happened, UTC */
    char *topic;                /* owned, e.g. "eventsourcing_grpc.example:Order.Created" */
    esg_value *attributes;      /* owned object: the event's own attributes, in order */
} esg_event;

/* A new event owned by the caller (free with esg_event_free). topic is copied;
 * attributes is taken (also on failure) and may be NULL for none. timestamp
 * may be NULL for now. */
esg_status esg_event_new(const esg_uuid *originator_id, int64_t originator_version,
                         const esg_datetime *timestamp, const char *topic, esg_value *attributes,
                         esg_event **out, esg_error *err);

/* An attribute of the event, borrowed, or NULL when absent. */
esg_value *esg_event_get(const esg_event *event, const char *name);

void esg_event_free(esg_event *event);

/* ---- Stored events and notifications -------------------------------------- */

typedef struct esg_stored_event {
    esg_uuid originator_id;
    int64_t originator_version;
    char *topic;      /* owned, NUL-terminated */
    uint8_t *state;   /* owned JSON bytes (NUL-terminated for convenience) */
    size_t state_len; /* bytes of state, the NUL not counted */
} esg_stored_event;

typedef struct esg_notification {
    int64_t id;             /* position in the application sequence, from 1 */
    esg_stored_event event; /* the stored event at that position */
} esg_notification;

/* Growable arrays returned by recorders. The caller owns them: clear with the
 * matching _clear function (which leaves an empty, reusable list). */
typedef struct esg_stored_event_list {
    esg_stored_event *items;
    size_t n_items;
    size_t capacity;
} esg_stored_event_list;

typedef struct esg_notification_list {
    esg_notification *items;
    size_t n_items;
    size_t capacity;
} esg_notification_list;

void esg_stored_event_clear(esg_stored_event *stored);
void esg_stored_event_list_clear(esg_stored_event_list *list);
void esg_notification_list_clear(esg_notification_list *list);

/* Deep-copies src into dst (dst's old contents are not freed). */
esg_status esg_stored_event_copy(esg_stored_event *dst, const esg_stored_event *src,
                                 esg_error *err);

/* Appends a deep copy of stored to list (with a notification id for the
 * notification list). */
esg_status esg_stored_event_list_push(esg_stored_event_list *list, const esg_stored_event *stored,
                                      esg_error *err);
esg_status esg_notification_list_push(esg_notification_list *list, int64_t id,
                                      const esg_stored_event *stored, esg_error *err);

/* The mapper: event to stored event (state encoded as JSON) and back. out is
 * filled in and owned by the caller. Decoding refuses state that is not a JSON
 * object or lacks a datetime "timestamp". */
esg_status esg_event_to_stored(const esg_event *event, esg_stored_event *out, esg_error *err);
esg_status esg_event_from_stored(const esg_stored_event *stored, esg_event **out, esg_error *err);

/* ---- Aggregates ----------------------------------------------------------- */

typedef struct esg_aggregate esg_aggregate;

/* A mutator applies one event to an aggregate's own state (state_size bytes,
 * zeroed at creation). It must not keep pointers into event. */
typedef esg_status (*esg_mutator_fn)(void *state, const esg_event *event, esg_error *err);

typedef struct esg_event_type {
    const char *topic;    /* e.g. "eventsourcing_grpc.example:Order.Reserved" */
    esg_mutator_fn apply; /* may be NULL when the event changes no state */
} esg_event_type;

typedef struct esg_aggregate_type {
    const char *topic;                 /* the originator_topic, e.g. "...:Order" */
    size_t state_size;                 /* bytes of user state in each aggregate */
    void (*free_state)(void *state);   /* frees what the state points to; may be NULL */
    const esg_event_type *event_types; /* borrowed; must outlive every aggregate */
    size_t n_event_types;
    /* How the state is written and read back, for snapshots and the aggregate cache; both NULL
     * when the type has neither. write_state makes a new object (*out, the caller's) of the
     * state's attributes, named and in the order of the Python aggregate's __dict__ (as its
     * snapshots hold them); read_state fills a zeroed state from such an object (borrowed, which
     * also holds "_created_on" and "_modified_on"), and may ignore keys it does not know. */
    esg_status (*write_state)(const void *state, esg_value **out, esg_error *err);
    esg_status (*read_state)(void *state, const esg_value *attributes, esg_error *err);
} esg_aggregate_type;

/* Creates an aggregate by triggering its Created event (topic created_topic,
 * which must be one of type's event types). id may be NULL for a new uuid4.
 * attributes (taken, may be NULL) follow "originator_topic" in the event. */
esg_status esg_aggregate_create(const esg_aggregate_type *type, const char *created_topic,
                                const esg_uuid *id, esg_value *attributes, esg_aggregate **out,
                                esg_error *err);

/* Triggers a further event: version + 1, timestamp now, applied at once and
 * kept as pending until collected. attributes is taken and may be NULL. */
esg_status esg_aggregate_trigger(esg_aggregate *aggregate, const char *event_topic,
                                 esg_value *attributes, esg_error *err);

/* Rebuilds an aggregate from its events (borrowed, in version order, the first
 * a Created event). Replayed events are not pending. */
esg_status esg_aggregate_replay(const esg_aggregate_type *type, esg_event *const *events,
                                size_t n_events, esg_aggregate **out, esg_error *err);

/* Applies further recorded events (borrowed, the next versions in order) to an aggregate, as
 * replay does: they are not pending. On failure the aggregate is as the events before the
 * failing one left it. */
esg_status esg_aggregate_apply(esg_aggregate *aggregate, esg_event *const *events, size_t n_events,
                               esg_error *err);

/* ---- Snapshots ------------------------------------------------------------ */

#define ESG_SNAPSHOT_TOPIC "eventsourcing.domain:Snapshot"

/* A snapshot of the aggregate as Python's Snapshot.take makes it: an event of topic
 * ESG_SNAPSHOT_TOPIC with the aggregate's id and version, the time now, and the attributes
 * {"topic": the type's topic, "state": {"_created_on", "_modified_on", the type's write_state}}.
 * ESG_EUNIMPLEMENTED when the type has no write_state. *out is the caller's. */
esg_status esg_aggregate_snapshot(const esg_aggregate *aggregate, esg_event **out, esg_error *err);

/* The topic of the aggregate a snapshot event holds (borrowed from it), or NULL. */
const char *esg_snapshot_aggregate_topic(const esg_event *snapshot);

/* Rebuilds the aggregate a snapshot (borrowed) holds, at the snapshot's version, with nothing
 * pending. ESG_EUNIMPLEMENTED when the type has no read_state; ESG_EINVAL when the snapshot is
 * not one of this type. *out is the caller's. */
esg_status esg_aggregate_from_snapshot(const esg_aggregate_type *type, const esg_event *snapshot,
                                       esg_aggregate **out, esg_error *err);

/* A copy of the aggregate without its pending events, through write_state and read_state.
 * ESG_EUNIMPLEMENTED when the type has neither. *out is the caller's. */
esg_status esg_aggregate_copy(const esg_aggregate *aggregate, esg_aggregate **out, esg_error *err);

const esg_aggregate_type *esg_aggregate_get_type(const esg_aggregate *aggregate);
const esg_uuid *esg_aggregate_id(const esg_aggregate *aggregate);
int64_t esg_aggregate_version(const esg_aggregate *aggregate);
const esg_datetime *esg_aggregate_created_on(const esg_aggregate *aggregate);
const esg_datetime *esg_aggregate_modified_on(const esg_aggregate *aggregate);
void *esg_aggregate_state(esg_aggregate *aggregate);
const void *esg_aggregate_state_const(const esg_aggregate *aggregate);

/* Pending events: borrowed until collected. Collecting hands the array and the
 * events to the caller (free each with esg_event_free, then the array with
 * esg_free) and leaves none pending. *events is NULL when there are none. */
size_t esg_aggregate_n_pending(const esg_aggregate *aggregate);
esg_event *const *esg_aggregate_pending(const esg_aggregate *aggregate);
void esg_aggregate_collect(esg_aggregate *aggregate, esg_event ***events, size_t *n_events);

/* Frees the aggregate, its state (via free_state) and its pending events. */
void esg_aggregate_free(esg_aggregate *aggregate);

#ifdef __cplusplus
}
#endif
#endif
