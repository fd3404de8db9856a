/* The domain model: domain events, their stored form, and aggregates that are
 * changed only by triggering events, as in eventsourcing 9.2.
 *
 * An event's stored state is the JSON the Python library writes: an object
 * with "timestamp" first and then the event's own attributes in order (for a
 * Created event "originator_topic" comes first among them). The originator id
 * and version travel beside the state, not in it. */
#ifndef ESG_DOMAIN_H
#define ESG_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/alloc.h"
#include "esg/error.h"
#include "esg/fields.h"
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

/* A declared event's mutator: applies the event's data (the struct its attributes decode into,
 * borrowed for the call) to the state, and returns err's status. Written with ESG_MUTATOR, which
 * gives it typed parameters and that return. It must not keep pointers into data: copy strings
 * (esg_set_string). */
typedef esg_status (*esg_apply_fn)(void *state, const void *data, esg_error *err);

/* Brings an event's attributes, or an aggregate's snapshot state, from one class version to the
 * next, in place (Python's upcast_v1_v2 and so on): add, rename or convert attributes. */
typedef esg_status (*esg_upcast_fn)(esg_value *attributes, esg_error *err);

typedef struct esg_event_type {
    const char *topic;    /* e.g. "eventsourcing_grpc.example:Order.Reserved" */
    esg_mutator_fn apply; /* may be NULL when the event changes no state */
} esg_event_type;

/* A declared event type: its attributes as a C struct, a mutator of that struct, and its
 * versions. Listed in an aggregate type's events (ESG_EVENTS). */
typedef struct esg_event_def {
    const char *topic;    /* e.g. "eventsourcing_grpc.example:Order.Reserved" */
    esg_struct_type data; /* the attributes as a C struct; {0} when it has none */
    esg_apply_fn mutate;  /* called with the decoded struct; NULL when the event changes nothing */
    /* Event versions, as eventsourcing 9.2: an event of class_version > 1 is stored with
     * "class_version" last in its state; a recorded event of an older version is brought up to
     * date, one version at a time, before it is applied. upcasts (ESG_UPCASTS) lists
     * class_version - 1 functions: the first from version 1 to 2, the next from 2 to 3...
     * class_version 0 means 1. */
    int class_version;
    const esg_upcast_fn *upcasts;
} esg_event_def;

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
    /* Declared aggregates (all optional). state: the state as a C struct; its size is then the
     * state's size, and unless given above, freeing the state (strings, decimals and values
     * are owned by it), write_state and read_state come from its fields. events: declared
     * event types (beside event_types), ending with NULL. class_version and upcasts: as a
     * declared event type's, for the state in snapshots. */
    esg_struct_type state;
    const esg_event_def *const *events;
    int class_version;
    const esg_upcast_fn *upcasts;
} esg_aggregate_type;

/* A declared event type with data, in one: ESG_EVENT("bank:Account.Renamed", account_renamed,
 * on_renamed, ESG_FIELD(account_renamed, name, ESG_STRING)). */
#define ESG_EVENT(TOPIC, TYPE, MUTATE, ...)                                                        \
    {                                                                                              \
        .topic = (TOPIC), .data = ESG_STRUCT(TYPE, __VA_ARGS__), .mutate = (MUTATE)                \
    }

/* The upcasts member of a declared type, in version order: ESG_UPCASTS(v1_to_v2, v2_to_v3). */
#define ESG_UPCASTS(...) ((const esg_upcast_fn[]){__VA_ARGS__, NULL})

/* The events member of a declared aggregate type: ESG_EVENTS(&opened, &renamed). */
#define ESG_EVENTS(...) ((const esg_event_def *const[]){__VA_ARGS__, NULL})

#if defined(__GNUC__)
#define ESG_MAYBE_UNUSED __attribute__((unused))
#else
#define ESG_MAYBE_UNUSED
#endif

/* Defines a declared event's mutator NAME (an esg_apply_fn) whose body, which follows, sees
 * `STATE *self`, `const DATA *event` (the event's data) and `esg_error *err` (cleared), and
 * returns nothing: applying a recorded event should not fail, and when it must (out of memory
 * copying a string), it says so in err, which the library then reads.
 *
 *     ESG_MUTATOR(on_renamed, account, account_renamed)
 *     {
 *         esg_set_string(&self->name, event->name, err);
 *     }
 */
#define ESG_MUTATOR(NAME, STATE, DATA)                                                             \
    static void NAME##_typed(STATE *self, const DATA *event ESG_MAYBE_UNUSED,                      \
                             esg_error *err ESG_MAYBE_UNUSED);                                     \
    static esg_status NAME(void *state, const void *data, esg_error *err)                          \
    {                                                                                              \
        NAME##_typed(state, data, err);                                                            \
        return err->status;                                                                        \
    }                                                                                              \
    static void NAME##_typed(STATE *self, const DATA *event ESG_MAYBE_UNUSED,                      \
                             esg_error *err ESG_MAYBE_UNUSED)

/* Whether the aggregate type has an event type of topic (in event_types or events). */
bool esg_aggregate_type_has_event(const esg_aggregate_type *type, const char *topic);

/* The declared event type of topic among the aggregate type's events, or NULL. */
const esg_event_def *esg_aggregate_type_event_def(const esg_aggregate_type *type,
                                                  const char *topic);

/* Whether the type's state can be written and read back (write_state and read_state, or state
 * fields): what snapshots, copies and the aggregate cache need. */
bool esg_aggregate_type_has_state_functions(const esg_aggregate_type *type);

/* Registers the transcodings (esg_transcoding_register) that the fields of the type's state and
 * events use, so that stored state holding them decodes. */
esg_status esg_aggregate_type_register_transcodings(const esg_aggregate_type *type, esg_error *err);

/* Sets the aggregate's state into object (borrowed) as attributes, after what it holds: the state
 * fields', or write_state's, as a snapshot holds them after "_created_on" and "_modified_on". */
esg_status esg_aggregate_write_state(const esg_aggregate *aggregate, esg_value *object,
                                     esg_error *err);

/* Checks a declared aggregate type: its state's and its events' field tables (esg_struct_check),
 * versions and upcasts. ESG_EINVAL says what is wrong. */
esg_status esg_aggregate_type_check(const esg_aggregate_type *type, esg_error *err);

/* Upcasts a recorded event (borrowed, changed in place) of a declared type to its current class
 * version: takes "class_version" out of its attributes and applies the upcasts from there. */
esg_status esg_event_upcast(const esg_event_def *def, esg_event *event, esg_error *err);

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
