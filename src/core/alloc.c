/* The replaceable allocator (esg/alloc.h, core/alloc.h). */
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Set before the library runs and read-only while it does (esg_replace_allocator's contract),
 * so no lock is needed. */
static esg_allocator current = {malloc, calloc, realloc, free};

esg_status esg_replace_allocator(const esg_allocator *allocator)
{
    static const esg_allocator c_functions = {malloc, calloc, realloc, free};
    if (allocator == NULL) {
        current = c_functions;
        return ESG_OK;
    }
    if (allocator->malloc == NULL || allocator->calloc == NULL || allocator->realloc == NULL ||
        allocator->free == NULL)
        return ESG_EINVAL;
    current = *allocator;
    return ESG_OK;
}

void *esg_malloc(size_t size)
{
    return current.malloc(size);
}

void *esg_calloc(size_t count, size_t size)
{
    return current.calloc(count, size);
}

void *esg_realloc(void *ptr, size_t size)
{
    return current.realloc(ptr, size);
}

void esg_free(void *ptr)
{
    if (ptr != NULL)
        current.free(ptr);
}

char *esg_strdup(const char *s)
{
    return esg_strndup(s, strlen(s));
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
