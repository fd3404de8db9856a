/* FNV-1a over strings: a 64-bit hash that is the same in every process and version, for hash
 * tables and for names and keys other processes compute too (advisory locks, channels).
 * Internal: not part of the public API. */
#ifndef ESG_HASH_H
#define ESG_HASH_H

#include <stdint.h>

/* The hash of the parts (borrowed, NULL-ended) as if they were one string. */
uint64_t esg_hash_strings(const char *const *parts);

#endif
