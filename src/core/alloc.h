/* The library's allocation functions: C's malloc family through the allocator that
 * esg_replace_allocator set (esg/alloc.h). Every allocation of the library's own goes through
 * these, so that a test can fail any one of them. Internal: not part of the public API. */
#ifndef ESG_CORE_ALLOC_H
#define ESG_CORE_ALLOC_H

#include <stddef.h>

#include "esg/alloc.h"

/* The allocator in use (alloc.c); inline calls through it because allocation is on every path. */
extern esg_allocator esg_current_allocator;

static inline void *esg_malloc(size_t size)
{
    return esg_current_allocator.malloc(size);
}

static inline void *esg_calloc(size_t count, size_t size)
{
    return esg_current_allocator.calloc(count, size);
}

static inline void *esg_realloc(void *ptr, size_t size)
{
    return esg_current_allocator.realloc(ptr, size);
}

/* Inside the library esg_free is inline as well (alloc.c defines the public function). The
 * allocator's free accepts NULL, as C's does. */
static inline void esg_free_inline(void *ptr)
{
    esg_current_allocator.free(ptr);
}
#define esg_free(ptr) esg_free_inline(ptr)

/* Copies of s (and of at most max bytes of s), freed with esg_free; NULL when out of memory. */
char *esg_strdup(const char *s);
char *esg_strndup(const char *s, size_t max);

#endif
