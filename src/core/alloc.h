/* The library's allocation functions: C's malloc family through the allocator that
 * esg_replace_allocator set (esg/alloc.h). Every allocation of the library's own goes through
 * these, so that a test can fail any one of them. Internal: not part of the public API. */
#ifndef ESG_CORE_ALLOC_H
#define ESG_CORE_ALLOC_H

#include <stddef.h>

#include "esg/alloc.h"

void *esg_malloc(size_t size);
void *esg_calloc(size_t count, size_t size);
void *esg_realloc(void *ptr, size_t size);

/* Copies of s (and of at most max bytes of s), freed with esg_free; NULL when out of memory. */
char *esg_strdup(const char *s);
char *esg_strndup(const char *s, size_t max);

#endif
