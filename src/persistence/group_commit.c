/* Group commit (group_commit.h). */
#include "persistence/group_commit.h"

#include "core/clock.h"

bool esg_group_commit_init(esg_group_commit *g)
{
    g->head = g->tail = NULL;
    g->is_committing = false;
    if (pthread_mutex_init(&g->lock, NULL) != 0)
        return false;
    if (esg_cond_init(&g->done) != 0) {
        pthread_mutex_destroy(&g->lock);
        return false;
    }
    return true;
}

void esg_group_commit_destroy(esg_group_commit *g)
{
    pthread_cond_destroy(&g->done);
    pthread_mutex_destroy(&g->lock);
}

esg_status esg_group_commit_write(esg_group_commit *g, esg_write_request *req,
                                  esg_commit_group_fn commit_group, void *owner)
{
    pthread_mutex_lock(&g->lock);
    req->next = NULL;
    if (g->tail != NULL)
        g->tail->next = req;
    else
        g->head = req;
    g->tail = req;
    while (!req->is_done && g->is_committing)
        pthread_cond_wait(&g->done, &g->lock);
    if (!req->is_done) {
        /* No commit in flight: commit everything queued, this request included. */
        esg_write_request *group = g->head;
        g->head = g->tail = NULL;
        g->is_committing = true;
        pthread_mutex_unlock(&g->lock);
        commit_group(owner, group);
        pthread_mutex_lock(&g->lock);
        /* Under the lock, so that no waiter returns (and pops its request) before we are done. */
        for (esg_write_request *done = group; done != NULL; done = done->next)
            done->is_done = true;
        g->is_committing = false;
        pthread_cond_broadcast(&g->done);
    }
    pthread_mutex_unlock(&g->lock);
    return req->status;
}

esg_status esg_group_commit_insert(esg_group_commit *g, const esg_stored_event *events,
                                   size_t n_events, const esg_tracking *trackings,
                                   size_t n_trackings, const esg_command_record *command,
                                   int64_t *notification_ids, esg_error *err,
                                   esg_commit_group_fn commit_group, void *owner)
{
    esg_write_request req = {.events = events,
                             .n_events = n_events,
                             .trackings = trackings,
                             .n_trackings = n_trackings,
                             .command = command,
                             .notification_ids = notification_ids,
                             .err = err,
                             .status = ESG_OK};
    return esg_group_commit_write(g, &req, commit_group, owner);
}
