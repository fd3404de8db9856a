/* The connection pool of the SQL backends (connection_pool.h). */
#include "persistence/connection_pool.h"

#include <errno.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/alloc.h"
#include "core/metrics.h"

esg_status esg_pool_init(esg_pool *pool, const esg_pool_config *config, esg_error *err)
{
    *pool = (esg_pool){.config = *config};
    pool->idle = esg_calloc(config->max_idle, sizeof *pool->idle);
    if (pool->idle == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a connection pool");
    if (pthread_mutex_init(&pool->lock, NULL) != 0) {
        esg_free(pool->idle);
        return esg_error_set(err, ESG_EINTERNAL, "cannot create the lock of a connection pool");
    }
    if (esg_cond_init(&pool->changed) != 0) {
        pthread_mutex_destroy(&pool->lock);
        esg_free(pool->idle);
        return esg_error_set(err, ESG_EINTERNAL, "cannot create the lock of a connection pool");
    }
    return ESG_OK;
}

void esg_pool_destroy(esg_pool *pool)
{
    for (size_t i = 0; i < pool->n_idle; i++)
        pool->config.ops->close(pool->config.owner, pool->idle[i]);
    esg_free(pool->idle);
    pthread_cond_destroy(&pool->changed);
    pthread_mutex_destroy(&pool->lock);
}

void esg_pool_adopt(esg_pool *pool, void *connection)
{
    pthread_mutex_lock(&pool->lock);
    pool->idle[pool->n_idle++] = connection;
    pool->n_open++;
    pthread_mutex_unlock(&pool->lock);
}

/* Whether the caller must wait: nothing idle, and no room for one more. Under the lock. */
static bool is_exhausted(const esg_pool *pool)
{
    return pool->n_idle == 0 && pool->n_open >= pool->config.max_open;
}

/* Frees the slot of a connection that was closed or never opened. */
static void release_slot(esg_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->n_open--;
    pthread_cond_signal(&pool->changed);
    pthread_mutex_unlock(&pool->lock);
}

esg_status esg_pool_borrow(esg_pool *pool, void **out, esg_error *err)
{
    const esg_pool_config *cfg = &pool->config;
    *out = NULL;
    struct timespec deadline = esg_clock_deadline(cfg->timeout_ms > 0 ? cfg->timeout_ms : 0);
    pthread_mutex_lock(&pool->lock);
    while (is_exhausted(pool)) {
        int rc = cfg->timeout_ms < 0 ? pthread_cond_wait(&pool->changed, &pool->lock)
                 : cfg->timeout_ms == 0
                     ? ETIMEDOUT
                     : pthread_cond_timedwait(&pool->changed, &pool->lock, &deadline);
        if (rc == ETIMEDOUT && is_exhausted(pool)) {
            pthread_mutex_unlock(&pool->lock);
            return esg_error_set(err, ESG_EUNAVAILABLE,
                                 "no database connection free within %g s (all %zu of %s are in "
                                 "use), retry",
                                 cfg->timeout_ms / 1000.0, cfg->max_open, cfg->bound_name);
        }
    }
    void *connection = NULL;
    if (pool->n_idle > 0)
        connection = pool->idle[--pool->n_idle];
    else
        pool->n_open++; /* reserve the slot, and open outside the lock */
    pthread_mutex_unlock(&pool->lock);

    if (connection != NULL) {
        if (cfg->ops->is_usable == NULL || cfg->ops->is_usable(cfg->owner, connection)) {
            *out = connection;
            return ESG_OK;
        }
        cfg->ops->close(cfg->owner, connection); /* its slot is kept for the new one */
    }
    esg_status status = cfg->ops->open(cfg->owner, out, err);
    if (status != ESG_OK)
        release_slot(pool);
    return status;
}

void esg_pool_give_back(esg_pool *pool, void *connection, bool is_reusable)
{
    if (connection == NULL)
        return;
    if (is_reusable) {
        pthread_mutex_lock(&pool->lock);
        if (pool->n_idle < pool->config.max_idle) {
            pool->idle[pool->n_idle++] = connection;
            pthread_cond_signal(&pool->changed);
            pthread_mutex_unlock(&pool->lock);
            return;
        }
        pthread_mutex_unlock(&pool->lock); /* an overflow connection: closed below */
    }
    pool->config.ops->close(pool->config.owner, connection);
    release_slot(pool);
}

void esg_pool_write_metrics(esg_pool *pool, const char *const *labels, esg_buffer *out)
{
    pthread_mutex_lock(&pool->lock);
    size_t n_open = pool->n_open;
    pthread_mutex_unlock(&pool->lock);
    esg_metrics_family(out, "eventsourcing_recorder_connections", "gauge",
                       "Database connections the application's recorder has open (lent, idle "
                       "or being opened).");
    esg_metrics_sample(out, "eventsourcing_recorder_connections", labels, (double)n_open);
}
