/* zlib compression of stored state, as eventsourcing 9.2's ZlibCompressor (and the module
 * topic "zlib") writes it: zlib.compress at the default level, a zlib stream with its header.
 * Internal: not part of the public API. */
#ifndef ESG_COMPRESSOR_H
#define ESG_COMPRESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "esg/error.h"

/* The most a stored state may inflate to: a bound on what hostile bytes can make us allocate. */
#define ESG_MAX_DECOMPRESSED_BYTES (64u * 1024 * 1024)

/* Compresses data (borrowed) into *out (freed by the caller with esg_free). */
esg_status esg_compress(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len,
                        esg_error *err);

/* Inflates one whole zlib stream into *out (NUL-terminated, freed by the caller with esg_free).
 * ESG_EDATA when the bytes are not a complete zlib stream, have bytes after it, or inflate to
 * more than ESG_MAX_DECOMPRESSED_BYTES. */
esg_status esg_decompress(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len,
                          esg_error *err);

#endif
