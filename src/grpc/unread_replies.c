#include "grpc/unread_replies.h"

#include "esg/grpc.h"

void unread_replies_init(unread_replies *u)
{
    pthread_mutex_init(&u->lock, NULL);
    u->oldest.prev = u->oldest.next = &u->oldest;
    u->total = 0;
    u->n_cancelled = 0;
}

void unread_replies_destroy(unread_replies *u)
{
    pthread_mutex_destroy(&u->lock);
}

/* Under the lock. */
static void unlist(unread_replies *u, unread_reply *r)
{
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->is_listed = false;
    u->total -= r->bytes;
}

int unread_replies_add(unread_replies *u, unread_reply *r, grpc_call *call, size_t bytes)
{
    int n_cancelled = 0;
    pthread_mutex_lock(&u->lock);
    r->call = call;
    r->bytes = bytes;
    r->is_listed = true;
    r->prev = u->oldest.prev;
    r->next = &u->oldest;
    u->oldest.prev->next = r;
    u->oldest.prev = r;
    u->total += bytes;
    while (u->total > ESG_GRPC_MAX_UNREAD_REPLY_BYTES) {
        unread_reply *oldest = u->oldest.next;
        unlist(u, oldest); /* its memory goes as soon as gRPC ends the call */
        /* Under the lock: the call cannot end and be freed meanwhile (its object's
         * unread_replies_remove waits for the lock). gRPC only queues the cancellation. */
        grpc_call_cancel_with_status(oldest->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                     "the reply was not read in time: the server holds too "
                                     "many unread replies",
                                     NULL);
        n_cancelled++;
    }
    u->n_cancelled += (uint64_t)n_cancelled;
    pthread_mutex_unlock(&u->lock);
    return n_cancelled;
}

void unread_replies_figures(unread_replies *u, size_t *bytes, uint64_t *n_cancelled)
{
    pthread_mutex_lock(&u->lock);
    *bytes = u->total;
    *n_cancelled = u->n_cancelled;
    pthread_mutex_unlock(&u->lock);
}

void unread_replies_remove(unread_replies *u, unread_reply *r)
{
    pthread_mutex_lock(&u->lock);
    if (r->is_listed)
        unlist(u, r);
    pthread_mutex_unlock(&u->lock);
}
