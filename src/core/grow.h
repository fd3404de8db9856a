/* Growable arrays: the one doubling realloc behind every list the library keeps (values,
 * environments, stored events, pending events, the in-memory recorder's tables).
 * Internal: not part of the public API. */
#ifndef ESG_GROW_H
#define ESG_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* Makes room for need items of item_size bytes in *items (an esg_malloc'ed array of *capacity
 * items, or NULL and 0), doubling the capacity from 8 as needed. false when out of memory or
 * the size would overflow: *items and *capacity are then as they were. */
bool esg_grow_to(void **items, size_t *capacity, size_t need, size_t item_size);

/* Inline because most appends find room: only growing is a call. */
static inline bool esg_grow(void **items, size_t *capacity, size_t need, size_t item_size)
{
    return need <= *capacity || esg_grow_to(items, capacity, need, item_size);
}

#endif
