#include "core/hash.h"

#include <stddef.h>

uint64_t esg_hash_strings(const char *const *parts)
{
    uint64_t hash = 14695981039346656037u;
    for (; *parts != NULL; parts++)
        for (const unsigned char *p = (const unsigned char *)*parts; *p != '\0'; p++)
            hash = (hash ^ *p) * 1099511628211u;
    return hash;
}
