/* The mapper's decoders on arbitrary stored bytes (what a database or a remote leader hands
 * back, when a cipher and a compressor are configured): AES-GCM decryption, zlib inflation and
 * both in the mapper's order. Whatever decodes must encode and decode back to the same bytes;
 * nothing may crash, leak, or inflate past the limit. */
#include "fuzz_common.h"

#include "esg/mapper.h"
#include "persistence/cipher.h"
#include "persistence/compressor.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* tests/vectors/cipher_vectors.json */

static esg_mapper *mapper; /* zlib, then AES-256-GCM with KEY */
static esg_cipher *cipher; /* AES-256-GCM with KEY, to wrap inputs so they pass the tag */

static void open_mapper(void)
{
    esg_env *env = esg_env_new();
    esg_env_set(env, "CIPHER_KEY", KEY, NULL);
    esg_env_set(env, "COMPRESSOR_TOPIC", "zlib", NULL);
    esg_error err;
    FUZZ_CHECK(esg_mapper_open(env, NULL, &mapper, &err) == ESG_OK, "no mapper: %s", err.message);
    FUZZ_CHECK(esg_cipher_open(KEY, "KEY", &cipher, &err) == ESG_OK, "no cipher: %s", err.message);
    esg_env_free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mapper == NULL)
        open_mapper();
    esg_error err = {0};
    uint8_t *decoded = NULL, *encoded = NULL, *again = NULL, *inflated = NULL;
    size_t decoded_len = 0, encoded_len = 0, again_len = 0, inflated_len = 0;

    /* zlib alone: accepted bytes inflate within the limit. */
    if (esg_decompress(data, size, &inflated, &inflated_len, &err) == ESG_OK)
        FUZZ_CHECK(inflated_len <= ESG_MAX_DECOMPRESSED_BYTES && inflated[inflated_len] == '\0',
                   "inflated past the limit or without its NUL");
    else
        FUZZ_CHECK(inflated == NULL, "a refused stream returned bytes");

    /* The whole mapper: what decodes round-trips (with a new random nonce). */
    if (esg_mapper_decode_state(mapper, data, size, &decoded, &decoded_len, &err) == ESG_OK) {
        FUZZ_CHECK(esg_mapper_encode_state(mapper, decoded, decoded_len, &encoded, &encoded_len,
                                           &err) == ESG_OK,
                   "decoded state does not encode (%s)", err.message);
        FUZZ_CHECK(esg_mapper_decode_state(mapper, encoded, encoded_len, &again, &again_len,
                                           &err) == ESG_OK,
                   "encoded state does not decode (%s)", err.message);
        FUZZ_CHECK(again_len == decoded_len && memcmp(again, decoded, decoded_len) == 0,
                   "the state changed in a round trip");
    } else {
        FUZZ_CHECK(decoded == NULL, "a refused state returned bytes");
        FUZZ_CHECK(err.status == ESG_EDATA || err.status == ESG_ENOMEM,
                   "refused with %s, not as data (%s)", esg_status_name(err.status), err.message);
    }
    /* The input encrypted with the right key: the mapper then inflates fuzzed bytes. */
    uint8_t *wrapped = NULL, *unwrapped = NULL;
    size_t wrapped_len = 0, unwrapped_len = 0;
    FUZZ_CHECK(esg_cipher_encrypt(cipher, data, size, NULL, &wrapped, &wrapped_len, &err) == ESG_OK,
               "cannot encrypt (%s)", err.message);
    esg_status rc =
        esg_mapper_decode_state(mapper, wrapped, wrapped_len, &unwrapped, &unwrapped_len, &err);
    FUZZ_CHECK(rc == ESG_OK
                   ? unwrapped_len == inflated_len && memcmp(unwrapped, inflated, inflated_len) == 0
                   : inflated == NULL,
               "the mapper and zlib disagree on the same bytes");
    free(wrapped);
    free(unwrapped);
    free(inflated);
    free(decoded);
    free(encoded);
    free(again);
    return 0;
}
