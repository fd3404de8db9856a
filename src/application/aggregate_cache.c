/* The aggregate cache: a hash map of ids to reference-counted, immutable aggregates, with a
 * list in order of use for LRU eviction, under one mutex. */
#include "application/aggregate_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

struct cached_aggregate {
    esg_aggregate *aggregate;        /* owned, never changed once cached */
    size_t n_refs;                   /* the map's, if in it, and each reader's */
    bool is_in_map;                  /* false once replaced, removed or evicted */
    bool is_claimed;                 /* a thread is bringing it up to date */
    cached_aggregate *hash_next;     /* in its bucket */
    cached_aggregate *newer, *older; /* in the list of use, newest first */
};

struct aggregate_cache {
    pthread_mutex_t lock;       /* guards everything below and every cached_aggregate */
    size_t max_size;            /* 0: no bound */
    size_t n_cached;            /* in the map */
    cached_aggregate **buckets; /* n_buckets, a power of two */
    size_t n_buckets;
    cached_aggregate *newest, *oldest;
};

static size_t bucket_of(const aggregate_cache *cache, const esg_uuid *id)
{
    uint64_t h;
    memcpy(&h, id->bytes + 8, sizeof h); /* random or SHA-1 bits already */
    return (size_t)(h ^ (h >> 31)) & (cache->n_buckets - 1);
}

aggregate_cache *aggregate_cache_new(size_t max_size)
{
    aggregate_cache *cache = esg_calloc(1, sizeof *cache);
    if (cache == NULL)
        return NULL;
    cache->max_size = max_size;
    cache->n_buckets = 64;
    cache->buckets = esg_calloc(cache->n_buckets, sizeof *cache->buckets);
    if (cache->buckets == NULL || pthread_mutex_init(&cache->lock, NULL) != 0) {
        esg_free(cache->buckets);
        esg_free(cache);
        return NULL;
    }
    return cache;
}

static void unref(cached_aggregate *c)
{
    if (--c->n_refs == 0) {
        esg_aggregate_free(c->aggregate);
        esg_free(c);
    }
}

void aggregate_cache_free(aggregate_cache *cache)
{
    if (cache == NULL)
        return;
    for (cached_aggregate *c = cache->newest, *next; c != NULL; c = next) {
        next = c->older;
        unref(c);
    }
    pthread_mutex_destroy(&cache->lock);
    esg_free(cache->buckets);
    esg_free(cache);
}

static cached_aggregate *find(const aggregate_cache *cache, const esg_uuid *id)
{
    cached_aggregate *c = cache->buckets[bucket_of(cache, id)];
    while (c != NULL && !esg_uuid_equal(esg_aggregate_id(c->aggregate), id))
        c = c->hash_next;
    return c;
}

static void unlink_use(aggregate_cache *cache, cached_aggregate *c)
{
    if (c->newer != NULL)
        c->newer->older = c->older;
    else
        cache->newest = c->older;
    if (c->older != NULL)
        c->older->newer = c->newer;
    else
        cache->oldest = c->newer;
    c->newer = c->older = NULL;
}

static void link_newest(aggregate_cache *cache, cached_aggregate *c)
{
    c->older = cache->newest;
    c->newer = NULL;
    if (cache->newest != NULL)
        cache->newest->newer = c;
    cache->newest = c;
    if (cache->oldest == NULL)
        cache->oldest = c;
}

/* Takes c out of the map and the list, and drops the map's reference. */
static void detach(aggregate_cache *cache, cached_aggregate *c)
{
    cached_aggregate **link = &cache->buckets[bucket_of(cache, esg_aggregate_id(c->aggregate))];
    while (*link != c)
        link = &(*link)->hash_next;
    *link = c->hash_next;
    unlink_use(cache, c);
    c->is_in_map = false;
    cache->n_cached--;
    unref(c);
}

/* Doubles the buckets when the map is fuller than one per bucket; stays as it is when out of
 * memory (the chains just grow longer). */
static void grow(aggregate_cache *cache)
{
    if (cache->n_cached < cache->n_buckets)
        return;
    size_t n_buckets = cache->n_buckets * 2;
    cached_aggregate **buckets = esg_calloc(n_buckets, sizeof *buckets);
    if (buckets == NULL)
        return;
    cached_aggregate **old = cache->buckets;
    size_t n_old = cache->n_buckets;
    cache->buckets = buckets;
    cache->n_buckets = n_buckets;
    for (size_t i = 0; i < n_old; i++) {
        for (cached_aggregate *c = old[i], *next; c != NULL; c = next) {
            next = c->hash_next;
            size_t b = bucket_of(cache, esg_aggregate_id(c->aggregate));
            c->hash_next = buckets[b];
            buckets[b] = c;
        }
    }
    esg_free(old);
}

const esg_aggregate *aggregate_cache_get(aggregate_cache *cache, const esg_uuid *id,
                                         cached_aggregate **ref)
{
    pthread_mutex_lock(&cache->lock);
    cached_aggregate *c = find(cache, id);
    if (c != NULL) {
        c->n_refs++;
        unlink_use(cache, c);
        link_newest(cache, c);
    }
    pthread_mutex_unlock(&cache->lock);
    *ref = c;
    return c != NULL ? c->aggregate : NULL;
}

void aggregate_cache_release(aggregate_cache *cache, cached_aggregate *ref)
{
    pthread_mutex_lock(&cache->lock);
    unref(ref);
    pthread_mutex_unlock(&cache->lock);
}

bool aggregate_cache_claim(aggregate_cache *cache, cached_aggregate *ref)
{
    pthread_mutex_lock(&cache->lock);
    bool is_claimed = !ref->is_claimed && ref->is_in_map;
    if (is_claimed)
        ref->is_claimed = true;
    pthread_mutex_unlock(&cache->lock);
    return is_claimed;
}

void aggregate_cache_unclaim(aggregate_cache *cache, cached_aggregate *ref)
{
    pthread_mutex_lock(&cache->lock);
    ref->is_claimed = false;
    pthread_mutex_unlock(&cache->lock);
}

void aggregate_cache_put(aggregate_cache *cache, esg_aggregate *aggregate)
{
    cached_aggregate *c = esg_calloc(1, sizeof *c);
    if (c == NULL) {
        esg_aggregate_free(aggregate);
        return;
    }
    c->aggregate = aggregate;
    c->n_refs = 1;
    c->is_in_map = true;
    pthread_mutex_lock(&cache->lock);
    cached_aggregate *old = find(cache, esg_aggregate_id(aggregate));
    if (old != NULL && esg_aggregate_version(old->aggregate) >= esg_aggregate_version(aggregate)) {
        pthread_mutex_unlock(&cache->lock);
        esg_aggregate_free(aggregate);
        esg_free(c);
        return;
    }
    if (old != NULL)
        detach(cache, old);
    grow(cache);
    size_t b = bucket_of(cache, esg_aggregate_id(aggregate));
    c->hash_next = cache->buckets[b];
    cache->buckets[b] = c;
    link_newest(cache, c);
    cache->n_cached++;
    while (cache->max_size > 0 && cache->n_cached > cache->max_size)
        detach(cache, cache->oldest); /* readers keep their references */
    pthread_mutex_unlock(&cache->lock);
}

void aggregate_cache_remove(aggregate_cache *cache, const esg_uuid *id)
{
    pthread_mutex_lock(&cache->lock);
    cached_aggregate *c = find(cache, id);
    if (c != NULL)
        detach(cache, c);
    pthread_mutex_unlock(&cache->lock);
}
