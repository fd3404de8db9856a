/* Replies that their clients have not read yet. gRPC keeps a reply in memory until the client
 * takes it in (HTTP/2 flow control) or the call ends, so clients that ask for pages and never
 * read them would hold the server's memory without bound. Replies are listed oldest first while
 * their calls last; when a new one takes the total over ESG_GRPC_MAX_UNREAD_REPLY_BYTES, the
 * oldest calls are cancelled (RESOURCE_EXHAUSTED) until it is back under. A client that reads
 * its replies is done with each in milliseconds and is never the oldest for long; one that
 * hoards loses its oldest calls first. No client is told apart by its connection, which a
 * proxy in front (deploy/nghttpx) shares among all its clients.
 * Thread-safe. Internal to the server. */
#ifndef ESG_GRPC_UNREAD_REPLIES_H
#define ESG_GRPC_UNREAD_REPLIES_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One reply, embedded in its call's object. */
typedef struct unread_reply {
    struct unread_reply *prev, *next; /* in the list while is_listed */
    grpc_call *call;                  /* borrowed: the call outlives its listing */
    size_t bytes;
    bool is_listed;
} unread_reply;

typedef struct unread_replies {
    pthread_mutex_t lock; /* guards the fields below */
    unread_reply oldest;  /* the list's head: oldest.next is the oldest reply */
    size_t total;         /* bytes of the listed replies */
    uint64_t n_cancelled; /* calls cancelled for being the oldest over the limit */
} unread_replies;

void unread_replies_init(unread_replies *u);
void unread_replies_destroy(unread_replies *u); /* nothing may be listed */

/* Lists r, the reply of bytes of call, as the newest, then cancels the oldest calls while the
 * total is over the limit (r's own if it alone is); returns how many it cancelled. */
int unread_replies_add(unread_replies *u, unread_reply *r, grpc_call *call, size_t bytes);

/* The call of r is over (or r was never listed: then nothing happens). */
void unread_replies_remove(unread_replies *u, unread_reply *r);

/* The bytes listed now and the calls cancelled so far, for the metrics. */
void unread_replies_figures(unread_replies *u, size_t *bytes, uint64_t *n_cancelled);

#endif
