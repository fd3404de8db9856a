/* Group commit, shared by the SQL backends: writers that arrive while a commit is in flight
 * queue up, and the first of them to find no commit in flight commits every queued write in
 * one go (the backend's commit_group), so that concurrent writers share one wait for the disk
 * (SQLite's synchronous=FULL, PostgreSQL's fsync and synchronous_commit) instead of taking
 * turns at it. Every writer returns after the commit that holds its rows, so a write that
 * returned is durable. Internal: not part of the public API. */
#ifndef ESG_GROUP_COMMIT_H
#define ESG_GROUP_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/error.h"
#include "esg/recorder.h"

/* One caller's write. Everything is borrowed from the caller, who waits. */
typedef struct esg_write_request {
    const esg_stored_event *events;
    size_t n_events;
    const esg_tracking *trackings;
    size_t n_trackings;
    int64_t *notification_ids;         /* may be NULL */
    bool is_snapshot;                  /* events holds one snapshot, for the snapshots table */
    const esg_command_record *command; /* recorded with the events; may be NULL */
    esg_error *err;                    /* the caller's */
    esg_status status;                 /* the outcome, set by commit_group */
    bool is_done;                      /* under the queue's lock */
    struct esg_write_request *next;
} esg_write_request;

/* Writes group (linked by next) and sets each request's status (and err): a conflict should
 * fail only its own request. */
typedef void (*esg_commit_group_fn)(void *owner, esg_write_request *group);

typedef struct esg_group_commit {
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t done;  /* signalled when a group commit ends */
    esg_write_request *head;
    esg_write_request *tail;
    bool is_committing; /* a writer is committing a group */
} esg_group_commit;

/* False when its lock or condition cannot be made (nothing to destroy then). */
bool esg_group_commit_init(esg_group_commit *g);
void esg_group_commit_destroy(esg_group_commit *g);

/* Queues req and returns its status once a commit_group(owner, ...) that held it has ended:
 * run by this thread when no commit is in flight, else by the thread that commits next. */
esg_status esg_group_commit_write(esg_group_commit *g, esg_write_request *req,
                                  esg_commit_group_fn commit_group, void *owner);

/* esg_group_commit_write of a request for events, trackings and a command record (may be NULL),
 * as the recorder's insert_events_tracked and insert_command take them. */
esg_status esg_group_commit_insert(esg_group_commit *g, const esg_stored_event *events,
                                   size_t n_events, const esg_tracking *trackings,
                                   size_t n_trackings, const esg_command_record *command,
                                   int64_t *notification_ids, esg_error *err,
                                   esg_commit_group_fn commit_group, void *owner);

#endif
