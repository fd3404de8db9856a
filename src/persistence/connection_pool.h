/* A pool of database connections, shared by the SQL backends: it lends one connection to one
 * operation at a time, opens more while it has room, waits (up to a timeout) when every one is
 * lent, keeps at most max_idle of those given back, and closes the rest. The connections are the
 * backend's own objects: the pool only holds their pointers and calls the backend to open,
 * check and close them, always outside its lock (opening waits on a disk or a network).
 * Internal: not part of the public API. */
#ifndef ESG_CONNECTION_POOL_H
#define ESG_CONNECTION_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buffer.h"
#include "esg/error.h"

typedef struct esg_pool_ops {
    /* Opens a new connection into *out (ownership passes to the pool). */
    esg_status (*open)(void *owner, void **out, esg_error *err);
    /* Closes a connection the pool owns, or one given back as not reusable. */
    void (*close)(void *owner, void *connection);
    /* Optional (NULL: always): whether an idle connection may be lent again. A connection that
     * may not is closed, and a new one opened in its place. */
    bool (*is_usable)(void *owner, void *connection);
} esg_pool_ops;

typedef struct esg_pool_config {
    const esg_pool_ops *ops; /* borrowed: static, as a rule */
    void *owner;             /* borrowed: passed to every op, outlives the pool */
    size_t max_idle;         /* connections kept idle, >= 1 */
    size_t max_open;         /* connections open at once (idle and lent), >= max_idle */
    int timeout_ms;          /* longest wait for a connection: < 0 for ever, 0 none */
    /* What the error of a timed-out wait names as the pool's bound (borrowed, static), as
     * "POSTGRES_POOL_SIZE + POSTGRES_POOL_MAX_OVERFLOW". */
    const char *bound_name;
} esg_pool_config;

typedef struct esg_pool {
    esg_pool_config config;
    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t changed; /* signalled when a connection is given back or a slot frees */
    size_t n_open;          /* open or being opened, at most config.max_open */
    size_t n_idle;          /* connections in idle[] */
    void **idle;            /* owned, max_idle slots, last given back last */
} esg_pool;

/* Makes an empty pool. ESG_ENOMEM or ESG_EINTERNAL when it cannot; nothing to destroy then. */
esg_status esg_pool_init(esg_pool *pool, const esg_pool_config *config, esg_error *err);

/* Closes every idle connection and frees the pool. Every lent connection must have been given
 * back: destroying a pool in use is the caller's bug. */
void esg_pool_destroy(esg_pool *pool);

/* Adds a connection the owner opened itself (the first, which made the tables) as idle. The pool
 * must have room: call it once, just after esg_pool_init. */
void esg_pool_adopt(esg_pool *pool, void *connection);

/* Lends a connection into *out: an idle one that is usable, else a new one while the pool has
 * room, else the next one to come back within the timeout (then ESG_EUNAVAILABLE). The caller
 * gives it back with esg_pool_give_back, whatever happens. */
esg_status esg_pool_borrow(esg_pool *pool, void **out, esg_error *err);

/* Takes a lent connection back (NULL does nothing). One that is not reusable, or one beyond
 * max_idle (an overflow connection), is closed, and its slot freed for a new one. */
void esg_pool_give_back(esg_pool *pool, void *connection, bool is_reusable);

/* Appends the family eventsourcing_recorder_connections (the connections open now: lent, idle
 * or being opened), its sample labelled with labels (NULL-terminated names and values). */
void esg_pool_write_metrics(esg_pool *pool, const char *const *labels, esg_buffer *out);

#endif
