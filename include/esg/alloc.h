/* The allocator of the library's own memory, replaceable as SQLite's SQLITE_CONFIG_MALLOC or
 * libuv's uv_replace_allocator: to count, to cap, or to fail allocations in tests. The libraries
 * under it (SQLite, libpq, jansson, gRPC, OpenSSL, zlib) keep their own allocators; yajl's blocks
 * come from the JSON decoder, and so from this allocator. */
#ifndef ESG_ALLOC_H
#define ESG_ALLOC_H

#include <stddef.h>

#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Four functions with the contracts of C's malloc, calloc, realloc and free (thread-safe: every
 * thread of the library calls them). */
typedef struct esg_allocator {
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t count, size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
} esg_allocator;

/* Makes the library allocate with allocator (copied), or with C's functions again when allocator
 * is NULL. Call it before any other esg_ function, or when nothing the library allocated is
 * alive: memory is freed by the allocator that gave it. ESG_EINVAL when a function is NULL. */
esg_status esg_replace_allocator(const esg_allocator *allocator);

/* Frees memory the library gave to the caller (the JSON texts of esg_value_to_json,
 * esg_application_call_json, esg_env_prefixed_key, esg_mapper_encode_bytes...), with the
 * allocator that gave it. NULL does nothing. */
void esg_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
