/* The mapper: domain events to stored events and back, as eventsourcing 9.2's Mapper does it.
 * State is encoded as JSON, then compressed (COMPRESSOR_TOPIC), then encrypted (CIPHER_TOPIC and
 * CIPHER_KEY), and read back the other way, so that Python and C share encrypted and compressed
 * databases, and a follower decrypts the notifications its leader sends when both have the key.
 * A mapper is immutable once open: any number of threads may use one at once. */
#ifndef ESG_MAPPER_H
#define ESG_MAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/domain.h"
#include "esg/env.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esg_mapper esg_mapper;

/* Opens the mapper the environment configures, each key looked up as "<APP_NAME>_KEY" first
 * (app_name may be NULL), as Python's InfrastructureFactory reads them:
 *   CIPHER_TOPIC      "eventsourcing.cipher:AESCipher" (the only cipher), or unset;
 *   CIPHER_KEY        16, 24 or 32 bytes in base64; set alone, it selects AESCipher;
 *   COMPRESSOR_TOPIC  "eventsourcing.compressor:ZlibCompressor" or "zlib", or unset.
 * Anything else (an unknown topic, a cipher without a key, a key that is not base64 or has
 * another size) is ESG_ECONFIG naming the key. *out is the caller's (esg_mapper_free). */
esg_status esg_mapper_open(const esg_env *env, const char *app_name, esg_mapper **out,
                           esg_error *err);

/* A mapper that neither compresses nor encrypts (the default). */
esg_status esg_mapper_open_plain(esg_mapper **out, esg_error *err);

void esg_mapper_free(esg_mapper *mapper); /* NULL is allowed */

bool esg_mapper_is_encrypting(const esg_mapper *mapper);
bool esg_mapper_is_compressing(const esg_mapper *mapper);

/* What the mapper does, for logs: "JSON", "JSON, zlib, AES-256-GCM". Static. */
const char *esg_mapper_describe(const esg_mapper *mapper);

/* The event as a stored event (out filled in, the caller's: esg_stored_event_clear). */
esg_status esg_mapper_to_stored(const esg_mapper *mapper, const esg_event *event,
                                esg_stored_event *out, esg_error *err);

/* The stored event (borrowed) as an event (*out, the caller's). A state that cannot be decoded
 * (another key, not encrypted or compressed as configured, not JSON) is ESG_EDATA with what
 * was tried and the event it belongs to. */
esg_status esg_mapper_from_stored(const esg_mapper *mapper, const esg_stored_event *stored,
                                  esg_event **out, esg_error *err);

/* The transforms on their own: JSON bytes to stored bytes, and back (*out
 * NUL-terminated, the caller frees it with esg_free). decode_state fails as esg_mapper_from_stored
 * does, but without checking that the result is JSON. */
esg_status esg_mapper_encode_state(const esg_mapper *mapper, const uint8_t *json, size_t len,
                                   uint8_t **out, size_t *out_len, esg_error *err);
esg_status esg_mapper_decode_state(const esg_mapper *mapper, const uint8_t *state, size_t len,
                                   uint8_t **out, size_t *out_len, esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
