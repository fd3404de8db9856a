/* The repository's aggregate cache (AGGREGATE_CACHE_MAXSIZE): the latest version of recently
 * used aggregates, by id, least recently used first out. A cached aggregate never changes: a
 * newer version replaces it, and each reader copies it out, so many threads read at once and
 * only the map is locked. Internal: not part of the public API. */
#ifndef ESG_AGGREGATE_CACHE_H
#define ESG_AGGREGATE_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "esg/domain.h"

typedef struct aggregate_cache aggregate_cache;
typedef struct cached_aggregate cached_aggregate;

/* A cache of at most max_size aggregates (0: no bound), or NULL when out of memory. */
aggregate_cache *aggregate_cache_new(size_t max_size);

/* Frees the cache and what it holds; no reference may be held. NULL is allowed. */
void aggregate_cache_free(aggregate_cache *cache);

/* The cached aggregate of id, or NULL. The aggregate (borrowed, never changed) stays valid until
 * *ref is released with aggregate_cache_release, whatever happens to the cache meanwhile. */
const esg_aggregate *aggregate_cache_get(aggregate_cache *cache, const esg_uuid *id,
                                         cached_aggregate **ref);

void aggregate_cache_release(aggregate_cache *cache, cached_aggregate *ref);

/* Claims the right to bring the cached aggregate of ref up to date: false when another thread
 * holds the claim (AGGREGATE_CACHE_FASTFORWARD_SKIPPING then goes without), or the aggregate is
 * no longer the cached one. Unclaim when done. */
bool aggregate_cache_claim(aggregate_cache *cache, cached_aggregate *ref);
void aggregate_cache_unclaim(aggregate_cache *cache, cached_aggregate *ref);

/* Caches aggregate (taken; its pending events are not looked at) unless a version at least as
 * new is cached already, which it then frees. Out of memory it frees it and caches nothing. */
void aggregate_cache_put(aggregate_cache *cache, esg_aggregate *aggregate);

/* Forgets the aggregate of id, if cached. */
void aggregate_cache_remove(aggregate_cache *cache, const esg_uuid *id);

#endif
