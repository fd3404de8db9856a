/* The doubling realloc of every growable array. */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include "core/alloc.h"

bool esg_grow_to(void **items, size_t *capacity, size_t need, size_t item_size)
{
    if (need <= *capacity)
        return true;
    size_t new_capacity = *capacity ? *capacity : 8;
    while (new_capacity < need) {
        if (new_capacity > SIZE_MAX / 2)
            return false;
        new_capacity *= 2;
    }
    if (item_size != 0 && new_capacity > SIZE_MAX / item_size)
        return false;
    void *bigger = esg_realloc(*items, new_capacity * item_size);
    if (bigger == NULL)
        return false;
    *items = bigger;
    *capacity = new_capacity;
    return true;
}
