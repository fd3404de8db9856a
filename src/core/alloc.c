/* The replaceable allocator (esg/alloc.h, core/alloc.h). */
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Set before the library runs and read-only while it does (esg_replace_allocator's contract),
 * so no lock is needed. */
esg_allocator esg_current_allocator = {malloc, calloc, realloc, free};

esg_status esg_replace_allocator(const esg_allocator *allocator)
{
    static const esg_allocator c_functions = {malloc, calloc, realloc, free};
    if (allocator == NULL) {
        esg_current_allocator = c_functions;
        return ESG_OK;
    }
    if (allocator->malloc == NULL || allocator->calloc == NULL || allocator->realloc == NULL ||
        allocator->free == NULL)
        return ESG_EINVAL;
    esg_current_allocator = *allocator;
    return ESG_OK;
}

/* In parentheses: the name, not the inline macro of core/alloc.h. */
void(esg_free)(void *ptr)
{
    if (ptr != NULL)
        esg_current_allocator.free(ptr);
}

char *esg_strdup(const char *s)
{
    size_t size = strlen(s) + 1;
    char *copy = esg_malloc(size);
    if (copy != NULL)
        memcpy(copy, s, size);
    return copy;
}

char *esg_strndup(const char *s, size_t max)
{
    size_t len = strnlen(s, max);
    char *copy = esg_malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}
