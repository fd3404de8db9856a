/* Persistence: one recorder interface, with backends in memory
 * ("eventsourcing.popo"), in SQLite ("eventsourcing.sqlite") and in
 * PostgreSQL ("eventsourcing.postgres").
 *
 * A recorder keeps one sequence of stored events per aggregate (optimistic
 * concurrency: recording a version that exists fails with ESG_ECONFLICT and
 * writes nothing of that call), one application sequence of notifications
 * (ids 1, 2, 3, ... without gaps, in commit order) and tracking records of the
 * upstream notifications a process application has processed, written in the
 * same transaction as the events they caused. Every function is safe to call
 * from several threads at once. */
#ifndef ESG_RECORDER_H
#define ESG_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/domain.h"
#include "esg/env.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esg_recorder esg_recorder;

typedef struct esg_tracking {
    const char *application_name; /* the upstream application, borrowed */
    int64_t notification_id;      /* the upstream notification processed */
} esg_tracking;

/* Options of esg_recorder_select_events; a zeroed struct selects all events
 * in ascending version order. */
typedef struct esg_select_events_options {
    bool has_gt; /* only versions > gt */
    int64_t gt;
    bool has_lte; /* only versions <= lte */
    int64_t lte;
    bool desc;     /* newest first */
    int64_t limit; /* at most this many; 0 for no limit */
} esg_select_events_options;

/* Opens the recorder the environment names, as the Python library does:
 * PERSISTENCE_MODULE (or the legacy INFRASTRUCTURE_FACTORY and FACTORY_TOPIC:
 * "eventsourcing.popo", the default, "eventsourcing.sqlite" or
 * "eventsourcing.postgres", or any of them with ":Factory"), with
 * IS_SNAPSHOTTING_ENABLED for a snapshots table beside the events; for SQLite,
 * SQLITE_DBNAME, SQLITE_LOCK_TIMEOUT and CREATE_TABLE; for PostgreSQL,
 * POSTGRES_DBNAME, POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD and the
 * optional POSTGRES_PORT, POSTGRES_TARGET_SESSION_ATTRS (POSTGRES_HOST and
 * POSTGRES_PORT may list several servers, as libpq's multi-host form),
 * POSTGRES_CONNECT_TIMEOUT, POSTGRES_LOCK_TIMEOUT,
 * POSTGRES_POOL_SIZE, POSTGRES_POOL_MAX_OVERFLOW, POSTGRES_POOL_TIMEOUT,
 * POSTGRES_CONN_MAX_AGE, POSTGRES_PRE_PING,
 * POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT, POSTGRES_SCHEMA and
 * CREATE_TABLE; each looked up with "<APP_NAME>_" first (app_name may be
 * NULL). A missing or bad setting is ESG_ECONFIG with the keys that were
 * tried; a database server that cannot be reached is ESG_EUNAVAILABLE. */
esg_status esg_recorder_open(const esg_env *env, const char *app_name, esg_recorder **out,
                             esg_error *err);

/* Where esg_recorder_open would keep app_name's events, without opening anything: the backend's
 * name ("eventsourcing.sqlite", say) and, for SQLite, the database name (*sqlite_db_name,
 * borrowed from env; NULL for the other backends). ESG_ECONFIG as esg_recorder_open gives it for
 * an unsupported module or a missing database name. */
esg_status esg_recorder_locate(const esg_env *env, const char *app_name, const char **backend,
                               const char **sqlite_db_name, esg_error *err);

/* An empty in-memory recorder; is_snapshotting: it records snapshots too. */
esg_status esg_recorder_open_popo(bool is_snapshotting, esg_recorder **out, esg_error *err);

/* Options of esg_recorder_open_sqlite; a zeroed struct gives the defaults. */
typedef struct esg_sqlite_options {
    int lock_timeout_ms;  /* the longest wait for another writer; 0 for 5 s */
    bool is_snapshotting; /* also the table stored_snapshots (IS_SNAPSHOTTING_ENABLED) */
    bool is_using_tables_as_they_are; /* CREATE_TABLE=n: create no table (made by others) */
} esg_sqlite_options;

/* A recorder on the SQLite database db_name (a path, ":memory:" or a "file:"
 * URI), in WAL mode, creating the tables of eventsourcing 9.2's SQLite process
 * recorder if they do not exist. options may be NULL for the defaults. */
esg_status esg_recorder_open_sqlite(const char *db_name, const esg_sqlite_options *options,
                                    esg_recorder **out, esg_error *err);

/* Whether calls wait for a disk or a network (SQLite, PostgreSQL: not the in-memory recorder),
 * so that callers size their thread pools for it. */
bool esg_recorder_is_blocking(const esg_recorder *recorder);

/* The backend's name: "eventsourcing.popo", "eventsourcing.sqlite" or "eventsourcing.postgres". */
const char *esg_recorder_backend(const esg_recorder *recorder);

/* Records events (borrowed; any number, possibly of several aggregates) and,
 * if tracking is not NULL, the tracking record, all in one transaction. When
 * notification_ids is not NULL it receives the id given to each event. A
 * version or tracking record that exists is ESG_ECONFLICT and nothing is
 * written; after any failure notification_ids is undefined. */
esg_status esg_recorder_insert_events(esg_recorder *recorder, const esg_stored_event *events,
                                      size_t n_events, const esg_tracking *tracking,
                                      int64_t *notification_ids, esg_error *err);

/* Like esg_recorder_insert_events, with n_trackings tracking records (borrowed)
 * instead of at most one, all in the same transaction: a follower records the
 * work of several notifications with one commit. ESG_EUNIMPLEMENTED (nothing
 * written) when n_trackings > 1 and the backend cannot: see
 * esg_recorder_can_track_many. */
esg_status esg_recorder_insert_events_tracked(esg_recorder *recorder,
                                              const esg_stored_event *events, size_t n_events,
                                              const esg_tracking *trackings, size_t n_trackings,
                                              int64_t *notification_ids, esg_error *err);

/* Whether esg_recorder_insert_events_tracked takes more than one tracking
 * record (SQLite and PostgreSQL, where a commit waits for the disk). */
bool esg_recorder_can_track_many(const esg_recorder *recorder);

/* Appends the stored events of one aggregate to out (which the caller owns). On failure out is
 * as it was. */
esg_status esg_recorder_select_events(esg_recorder *recorder, const esg_uuid *originator_id,
                                      const esg_select_events_options *options,
                                      esg_stored_event_list *out, esg_error *err);

/* Appends to out up to limit notifications with start <= id (and id <= stop
 * when stop > 0), whose topic is one of topics when n_topics > 0, in id
 * order. start must be >= 1 and limit >= 1 (ESG_EINVAL otherwise). On
 * failure out is as it was. */
esg_status esg_recorder_select_notifications(esg_recorder *recorder, int64_t start, int64_t limit,
                                             int64_t stop, const char *const *topics,
                                             size_t n_topics, esg_notification_list *out,
                                             esg_error *err);

/* The highest notification id, 0 when there is none. */
esg_status esg_recorder_max_notification_id(esg_recorder *recorder, int64_t *out, esg_error *err);

/* The highest tracked notification id of an upstream application, 0 if none. */
esg_status esg_recorder_max_tracking_id(esg_recorder *recorder, const char *application_name,
                                        int64_t *out, esg_error *err);

/* Whether a tracking record (application_name, notification_id) exists. */
esg_status esg_recorder_has_tracking_id(esg_recorder *recorder, const char *application_name,
                                        int64_t notification_id, bool *out, esg_error *err);

/* ---- Commands' replies: what makes a command run once per idempotency key ----
 * A client that may send a command again (it got no answer) gives it a key; the first run's
 * events are recorded with a command record (the key, a hash of the request, the reply) in the
 * same transaction, and a repeat is answered with the recorded reply instead of running again.
 * SQLite's table esg_command_replies, PostgreSQL's <events table>_replies (the Python library
 * neither reads nor writes them); in memory, a hash table. */

#define ESG_IDEMPOTENCY_KEY_MAX 255 /* bytes of a key, at most */
#define ESG_REQUEST_HASH_SIZE 65    /* a request hash: 64 hexadecimal digits and a NUL */

typedef struct esg_command_record {
    const char *key;          /* the client's key: 1 to ESG_IDEMPOTENCY_KEY_MAX bytes, no NUL */
    const char *request_hash; /* 64 hexadecimal digits (SHA-256 of the method and arguments) */
    const char *reply;        /* the reply's bytes (JSON), not NUL-terminated; NULL when empty */
    size_t reply_len;
    int64_t recorded_at; /* microseconds since the Unix epoch */
    /* A record of the same key recorded before this (an expired one) is replaced; a later one
     * makes the write ESG_ECONFLICT. */
    int64_t replaces_before;
} esg_command_record;

/* A command record as read back: every pointer owned, freed by esg_command_record_clear. */
typedef struct esg_command_reply {
    char request_hash[ESG_REQUEST_HASH_SIZE];
    char *reply; /* esg_malloc'ed, NUL-terminated after reply_len bytes */
    size_t reply_len;
    int64_t recorded_at;
} esg_command_reply;

void esg_command_reply_clear(esg_command_reply *reply);

/* Records events (borrowed, possibly none) and the command record (borrowed) in one
 * transaction, as esg_recorder_insert_events does. ESG_ECONFLICT when a version is recorded
 * already or the key has a record at or after command->replaces_before (nothing is written). */
esg_status esg_recorder_insert_command(esg_recorder *recorder, const esg_stored_event *events,
                                       size_t n_events, const esg_command_record *command,
                                       int64_t *notification_ids, esg_error *err);

/* The record of key, if there is one recorded at or after not_before (microseconds since the
 * epoch): *found says; out is filled only then (the caller clears it). */
esg_status esg_recorder_select_command(esg_recorder *recorder, const char *key, int64_t not_before,
                                       esg_command_reply *out, bool *found, esg_error *err);

/* Whether the recorder can keep command records: false only where its table is missing (a
 * database opened with CREATE_TABLE off, made by the Python library or by migrations). */
esg_status esg_recorder_has_command_table(esg_recorder *recorder, bool *out, esg_error *err);

/* Deletes the records recorded before before (microseconds since the epoch): expired keys.
 * *n_deleted (may be NULL) counts them. */
esg_status esg_recorder_delete_commands(esg_recorder *recorder, int64_t before, int64_t *n_deleted,
                                        esg_error *err);

/* ---- Snapshots: the state of an aggregate at a version, beside its events (Python's snapshot
 * store: SQLite's stored_snapshots, PostgreSQL's <app>_snapshots, same columns as the events). */

/* Whether the recorder was opened with snapshots (IS_SNAPSHOTTING_ENABLED). */
bool esg_recorder_is_snapshotting(const esg_recorder *recorder);

/* Records a snapshot (borrowed) in a transaction of its own. ESG_ECONFLICT when one at that
 * version is recorded already; ESG_EINVAL when the recorder has no snapshots. */
esg_status esg_recorder_insert_snapshot(esg_recorder *recorder, const esg_stored_event *snapshot,
                                        esg_error *err);

/* Appends an aggregate's snapshots to out, as esg_recorder_select_events selects events (the
 * latest at or below a version: lte, desc, limit 1). ESG_EINVAL without snapshots. */
esg_status esg_recorder_select_snapshots(esg_recorder *recorder, const esg_uuid *originator_id,
                                         const esg_select_events_options *options,
                                         esg_stored_event_list *out, esg_error *err);

/* Closes the recorder and frees it. NULL is allowed. */
void esg_recorder_close(esg_recorder *recorder);

/* A watch: hears of events recorded in the recorder's database by other processes, the replicas
 * of one application that take commands at once, so that each can push them to the followers
 * subscribed to it. On PostgreSQL every write is followed by a NOTIFY on a channel named after
 * the events table, and the watch LISTENs on a connection of its own (with the keepalives of a
 * lease's); writes by the watch's own recorder are not news. Writers that do not NOTIFY (the
 * Python library's) are not heard. */
typedef struct esg_recorder_watch esg_recorder_watch;

/* A watch of recorder's database, connected at the first wait; recorder must outlive it. *out is
 * NULL (and ESG_OK) where the database is one process's: there is nothing to hear. */
esg_status esg_recorder_watch_new(esg_recorder *recorder, esg_recorder_watch **out, esg_error *err);

/* Waits up to timeout_ms (>= 0) for writes by others: *has_news says whether some were heard.
 * After (re)connecting *has_news is true, since writes may have been missed meanwhile. A lost
 * connection is ESG_EUNAVAILABLE, and the next waits connect again, at most once a second. One
 * thread at a time. */
esg_status esg_recorder_watch_wait(esg_recorder_watch *watch, int timeout_ms, bool *has_news,
                                   esg_error *err);

/* _interrupt ends a wait under way (or the next one) at once, from any thread: for stopping.
 * _free closes the watch's connection and frees the watch (NULL is allowed). */
void esg_recorder_watch_interrupt(esg_recorder_watch *watch);
void esg_recorder_watch_free(esg_recorder_watch *watch);

/* A lease: at most one holder of a name at a time among the processes that share a database, for
 * replicas of a follower application, of which exactly one processes. On PostgreSQL a session
 * advisory lock on a connection of the lease's own, so that the database itself releases it
 * when the holder's process dies (at once: its socket closes) or is cut off (TCP keepalives of
 * about 4 s, set on that session); the other backends are one process's: always held. */
typedef struct esg_recorder_lease esg_recorder_lease;

/* A lease of name (copied) on recorder's database, not yet held; recorder must outlive it. */
esg_status esg_recorder_lease_new(esg_recorder *recorder, const char *name,
                                  esg_recorder_lease **out, esg_error *err);

/* Takes the lease when it is free, or checks that it is still held (a round trip on its
 * connection): *is_held says which. Not reaching the database is ESG_EUNAVAILABLE, and the lease
 * is then not held. Call it more often than the time in which a holder must notice a loss. */
esg_status esg_recorder_lease_refresh(esg_recorder_lease *lease, bool *is_held, esg_error *err);

/* Whether other processes may hold the lease (PostgreSQL); false where it is always held. */
bool esg_recorder_lease_is_shared(const esg_recorder_lease *lease);

/* Asks the holder of the lease, in another process, to look again at what it follows (a
 * standby's way of passing on a Prompt it received): the holder's next refresh takes the nudge
 * (esg_recorder_lease_take_nudge). A NOTIFY on the lease's channel, on a connection of the
 * recorder's pool; nothing where the lease is not shared. */
esg_status esg_recorder_lease_nudge(esg_recorder_lease *lease, esg_error *err);

/* Whether a nudge arrived (by the refreshes since the last call), and forgets it. Call it from
 * the thread that refreshes the lease. */
bool esg_recorder_lease_take_nudge(esg_recorder_lease *lease);

/* Gives the lease up (if held) and frees it. NULL is allowed. */
void esg_recorder_lease_free(esg_recorder_lease *lease);

#ifdef __cplusplus
}
#endif
#endif
