/* The interface every persistence backend implements (one file each), behind
 * the public esg_recorder_* functions in recorder.c. recorder.c validates the
 * arguments before calling a backend, so backends may assume them sane:
 * start >= 1, limit >= 1, n_events > 0 or tracking != NULL, no NULL pointers
 * where the public API forbids them. */
#ifndef ESG_RECORDER_BACKEND_H
#define ESG_RECORDER_BACKEND_H

#include "core/buffer.h"
#include "esg/recorder.h"

typedef struct esg_recorder_ops {
    const char *name; /* "eventsourcing.popo", "eventsourcing.sqlite", "eventsourcing.postgres" */
    bool is_blocking; /* calls wait for a disk or a network */
    /* Events, at most one tracking record and at most one command record (recorder.h; may be
     * NULL, checked by recorder.c) in one transaction. Only called where insert_events_tracked
     * is NULL: a backend gives one of the two. */
    esg_status (*insert_events)(esg_recorder *recorder, const esg_stored_event *events,
                                size_t n_events, const esg_tracking *tracking,
                                const esg_command_record *command, int64_t *notification_ids,
                                esg_error *err);
    /* Events, any number of tracking records (0 included) and at most one command record in one
     * transaction, as insert_events; NULL: the backend records at most one tracking record per
     * transaction. */
    esg_status (*insert_events_tracked)(esg_recorder *recorder, const esg_stored_event *events,
                                        size_t n_events, const esg_tracking *trackings,
                                        size_t n_trackings, const esg_command_record *command,
                                        int64_t *notification_ids, esg_error *err);
    /* A command record's lookup and the deletion of expired ones (recorder.h). */
    esg_status (*select_command)(esg_recorder *recorder, const char *key, int64_t not_before,
                                 esg_command_reply *out, bool *found, esg_error *err);
    esg_status (*delete_commands)(esg_recorder *recorder, int64_t before, int64_t *n_deleted,
                                  esg_error *err);
    /* Whether the table of command records exists; NULL: always (in memory). */
    esg_status (*has_command_table)(esg_recorder *recorder, bool *out, esg_error *err);
    /* An aggregate's events, or with is_snapshots its snapshots (only when the recorder was
     * opened with them). */
    esg_status (*select_versions)(esg_recorder *recorder, bool is_snapshots,
                                  const esg_uuid *originator_id,
                                  const esg_select_events_options *options,
                                  esg_stored_event_list *out, esg_error *err);
    esg_status (*select_notifications)(esg_recorder *recorder, int64_t start, int64_t limit,
                                       int64_t stop, const char *const *topics, size_t n_topics,
                                       esg_notification_list *out, esg_error *err);
    esg_status (*max_notification_id)(esg_recorder *recorder, int64_t *out, esg_error *err);
    esg_status (*max_tracking_id)(esg_recorder *recorder, const char *application_name,
                                  int64_t *out, esg_error *err);
    esg_status (*has_tracking_id)(esg_recorder *recorder, const char *application_name,
                                  int64_t notification_id, bool *out, esg_error *err);
    /* A snapshot, called only when the recorder was opened with them (is_snapshotting). */
    esg_status (*insert_snapshot)(esg_recorder *recorder, const esg_stored_event *snapshot,
                                  esg_error *err);
    void (*close)(esg_recorder *recorder);
    /* A lease (see esg_recorder_lease_new); NULL: the backend is one process's, always held. */
    esg_status (*lease_new)(esg_recorder *recorder, const char *name, esg_recorder_lease **out,
                            esg_error *err);
    esg_status (*lease_refresh)(esg_recorder_lease *lease, bool *is_held, esg_error *err);
    esg_status (*lease_nudge)(esg_recorder_lease *lease, esg_error *err);
    bool (*lease_take_nudge)(esg_recorder_lease *lease);
    void (*lease_free)(esg_recorder_lease *lease);
    /* A watch (see esg_recorder_watch_new); NULL: the backend is one process's, nothing to hear. */
    esg_status (*watch_new)(esg_recorder *recorder, esg_recorder_watch **out, esg_error *err);
    esg_status (*watch_wait)(esg_recorder_watch *watch, int timeout_ms, bool *has_news,
                             esg_error *err);
    void (*watch_interrupt)(esg_recorder_watch *watch);
    void (*watch_free)(esg_recorder_watch *watch);
    /* Optional (NULL: none): the backend's metrics families, each sample labelled with labels
     * (a NULL-terminated list of names and values, borrowed), appended to out. Any thread. */
    void (*write_metrics)(esg_recorder *recorder, const char *const *labels, esg_buffer *out);
} esg_recorder_ops;

/* The PostgreSQL backend ("eventsourcing.postgres", postgres_recorder.c), opened from the
 * POSTGRES_* settings of the environment (and CREATE_TABLE, IS_SNAPSHOTTING_ENABLED), each looked
 * up with "<APP_NAME>_" first. A missing or bad setting is ESG_ECONFIG with the keys that were
 * tried; a database that cannot be reached is ESG_EUNAVAILABLE. */
esg_status esg_recorder_open_postgres_env(const esg_env *env, const char *app_name,
                                          esg_recorder **out, esg_error *err);

/* A command record as a backend read it (hash_len bytes of hash, reply_len of reply; all
 * borrowed) copied into out: ESG_EIO when the hash is not 64 hexadecimal digits (a corrupt
 * row), ESG_ENOMEM. */
esg_status esg_command_reply_fill(esg_command_reply *out, const char *hash, size_t hash_len,
                                  const void *reply, size_t reply_len, int64_t recorded_at,
                                  esg_error *err);

/* ---- The events query, shared by the SQL backends ---- */

/* The shapes of the query of an aggregate's events (or snapshots), as flags: which optional
 * clauses it has. A backend prepares one statement per shape and connection. */
enum esg_events_shape {
    ESG_EVENTS_GT = 1,
    ESG_EVENTS_LTE = 2,
    ESG_EVENTS_DESC = 4,
    ESG_EVENTS_LIMIT = 8,
    ESG_N_EVENTS_SHAPES = 16
};

/* What a backend needs to run the query of an aggregate's events or snapshots. */
typedef struct esg_events_query {
    unsigned shape;     /* esg_events_shape flags: the query's optional clauses */
    int64_t numbers[3]; /* its integer parameters after the originator id: gt, lte, limit */
    size_t n_numbers;   /* how many of those are set (at most 3) */
    const char *doing;  /* what a failure message starts with ("cannot read the events ...") */
} esg_events_query;

/* The query that options select, of events or with is_snapshots of snapshots. */
void esg_events_query_of(const esg_select_events_options *options, bool is_snapshots,
                         esg_events_query *out);

/* Writes into out the query of a shape: "<select_columns>FROM <table> WHERE originator_id = <p1>
 * [AND originator_version > <p>] [AND originator_version <= <p>] ORDER BY originator_version
 * ASC|DESC [LIMIT <p>]", with "?" for every parameter or, with is_numbered, "$1", "$2"...
 * False when out is too small. */
bool esg_events_query_sql(char *out, size_t out_size, const char *select_columns, const char *table,
                          unsigned shape, bool is_numbered);

/* Every backend's lease struct starts with this. */
struct esg_recorder_lease {
    esg_recorder *recorder; /* borrowed */
};

/* Every backend's watch struct starts with this. */
struct esg_recorder_watch {
    esg_recorder *recorder; /* borrowed */
};

/* Every backend's recorder struct starts with this. */
struct esg_recorder {
    const esg_recorder_ops *ops;
    bool is_snapshotting; /* snapshots are recorded too (set by the backend when it opens) */
};

#endif
