/* The mapper: JSON (the domain layer's esg_event_to_stored), then zlib, then AES-GCM, in the
 * order eventsourcing 9.2's Mapper applies them, and the settings that choose them. */
#include "esg/mapper.h"

#include <stdlib.h>
#include <string.h>

#include "core/settings.h"
#include "persistence/cipher.h"
#include "persistence/compressor.h"
#include "core/alloc.h"

#define AES_CIPHER_TOPIC "eventsourcing.cipher:AESCipher"
#define ZLIB_COMPRESSOR_TOPIC "eventsourcing.compressor:ZlibCompressor"

struct esg_mapper {
    esg_cipher *cipher;  /* owned, or NULL for none */
    bool is_compressing; /* zlib */
};

esg_status esg_mapper_open_plain(esg_mapper **out, esg_error *err)
{
    *out = esg_calloc(1, sizeof **out);
    return *out != NULL ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory making a mapper");
}

esg_status esg_mapper_open(const esg_env *env, const char *app_name, esg_mapper **out,
                           esg_error *err)
{
    *out = NULL;
    esg_setting cipher_topic, cipher_key, compressor_topic;
    esg_setting_lookup(env, app_name, "CIPHER_TOPIC", &cipher_topic);
    esg_setting_lookup(env, app_name, "CIPHER_KEY", &cipher_key);
    esg_setting_lookup(env, app_name, "COMPRESSOR_TOPIC", &compressor_topic);
    bool has_topic = cipher_topic.value != NULL && cipher_topic.value[0] != '\0';
    bool has_key = cipher_key.value != NULL && cipher_key.value[0] != '\0';
    /* As Python: a key without a topic selects AESCipher; a topic without a key is an error. */
    if (has_topic && strcmp(cipher_topic.value, AES_CIPHER_TOPIC) != 0)
        return esg_error_set(err, ESG_ECONFIG,
                             "%s '%.80s' is not supported: the cipher is '" AES_CIPHER_TOPIC "'",
                             cipher_topic.key, cipher_topic.value);
    if (has_topic && !has_key)
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is '%s' but no key is set: set %s to 16, 24 or 32 bytes in "
                             "base64 (make one with 'openssl rand -base64 32')",
                             cipher_topic.key, cipher_topic.value, cipher_key.tried);
    bool is_compressing = false;
    if (compressor_topic.value != NULL && compressor_topic.value[0] != '\0') {
        if (strcmp(compressor_topic.value, ZLIB_COMPRESSOR_TOPIC) != 0 &&
            strcmp(compressor_topic.value, "zlib") != 0)
            return esg_error_set(err, ESG_ECONFIG,
                                 "%s '%.80s' is not supported: use '" ZLIB_COMPRESSOR_TOPIC
                                 "' or 'zlib'",
                                 compressor_topic.key, compressor_topic.value);
        is_compressing = true;
    }
    esg_mapper *mapper = NULL;
    esg_status rc = esg_mapper_open_plain(&mapper, err);
    if (rc == ESG_OK && has_key)
        rc = esg_cipher_open(cipher_key.value, cipher_key.key, &mapper->cipher, err);
    if (rc != ESG_OK) {
        esg_mapper_free(mapper);
        return rc;
    }
    mapper->is_compressing = is_compressing;
    *out = mapper;
    return ESG_OK;
}

void esg_mapper_free(esg_mapper *mapper)
{
    if (mapper == NULL)
        return;
    esg_cipher_free(mapper->cipher);
    esg_free(mapper);
}

bool esg_mapper_is_encrypting(const esg_mapper *mapper)
{
    return mapper->cipher != NULL;
}

bool esg_mapper_is_compressing(const esg_mapper *mapper)
{
    return mapper->is_compressing;
}

const char *esg_mapper_describe(const esg_mapper *mapper)
{
    static const char *const names[2][4] = {
        {"JSON", "JSON, AES-128-GCM", "JSON, AES-192-GCM", "JSON, AES-256-GCM"},
        {"JSON, zlib", "JSON, zlib, AES-128-GCM", "JSON, zlib, AES-192-GCM",
         "JSON, zlib, AES-256-GCM"},
    };
    size_t key = mapper->cipher == NULL ? 0 : (esg_cipher_key_size(mapper->cipher) - 8) / 8;
    return names[mapper->is_compressing][key];
}

/* The result of the last step: owned (esg_malloc'ed, handed over) when a step made it, else a
 * NUL-terminated copy of bytes. */
static esg_status hand_over(uint8_t *owned, const uint8_t *bytes, size_t len, uint8_t **out,
                            size_t *out_len, esg_error *err)
{
    if (owned == NULL && (owned = esg_malloc(len + 1)) != NULL) {
        memcpy(owned, bytes, len);
        owned[len] = '\0';
    }
    if (owned == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory copying a stored state");
    *out = owned;
    *out_len = len;
    return ESG_OK;
}

esg_status esg_mapper_encode_state(const esg_mapper *mapper, const uint8_t *json, size_t len,
                                   uint8_t **out, size_t *out_len, esg_error *err)
{
    *out = NULL;
    uint8_t *compressed = NULL;
    if (mapper->is_compressing) {
        esg_status rc = esg_compress(json, len, &compressed, &len, err);
        if (rc != ESG_OK)
            return rc;
        json = compressed;
    }
    if (mapper->cipher == NULL)
        return hand_over(compressed, json, len, out, out_len, err);
    esg_status rc = esg_cipher_encrypt(mapper->cipher, json, len, NULL, out, out_len, err);
    esg_free(compressed);
    return rc;
}

esg_status esg_mapper_decode_state(const esg_mapper *mapper, const uint8_t *state, size_t len,
                                   uint8_t **out, size_t *out_len, esg_error *err)
{
    *out = NULL;
    uint8_t *decrypted = NULL;
    if (mapper->cipher != NULL) {
        esg_status rc = esg_cipher_decrypt(mapper->cipher, state, len, &decrypted, &len, err);
        if (rc != ESG_OK)
            return rc;
        state = decrypted;
    }
    if (!mapper->is_compressing)
        return hand_over(decrypted, state, len, out, out_len, err);
    esg_status rc = esg_decompress(state, len, out, out_len, err);
    esg_free(decrypted);
    return rc;
}

esg_status esg_mapper_to_stored(const esg_mapper *mapper, const esg_event *event,
                                esg_stored_event *out, esg_error *err)
{
    esg_status rc = esg_event_to_stored(event, out, err);
    if (rc != ESG_OK || (mapper->cipher == NULL && !mapper->is_compressing))
        return rc;
    uint8_t *state = NULL;
    size_t state_len = 0;
    rc = esg_mapper_encode_state(mapper, out->state, out->state_len, &state, &state_len, err);
    if (rc != ESG_OK) {
        esg_stored_event_clear(out);
        return rc;
    }
    esg_free(out->state);
    out->state = state;
    out->state_len = state_len;
    return ESG_OK;
}

/* What a state that is not JSON looks like, to tell the user which setting may be missing:
 * zlib when it inflates, text when its bytes are printable, else encrypted or compressed. */
static const char *guess_format(const esg_mapper *mapper, const uint8_t *state, size_t len)
{
    if (mapper->cipher != NULL || len == 0)
        return "";
    uint8_t *inflated = NULL;
    size_t inflated_len = 0;
    if (esg_decompress(state, len, &inflated, &inflated_len, NULL) == ESG_OK) {
        esg_free(inflated);
        return ": it looks zlib-compressed (set COMPRESSOR_TOPIC as its writer did)";
    }
    bool is_text = true;
    for (size_t i = 0; i < len && is_text; i++)
        is_text = state[i] >= 0x20 || state[i] == '\t' || state[i] == '\n' || state[i] == '\r';
    if (is_text)
        return "";
    return ": it looks encrypted or compressed (set CIPHER_KEY and COMPRESSOR_TOPIC as its "
           "writer did)";
}

esg_status esg_mapper_from_stored(const esg_mapper *mapper, const esg_stored_event *stored,
                                  esg_event **out, esg_error *err)
{
    *out = NULL;
    char id[ESG_UUID_STR_SIZE];
    esg_stored_event decoded = *stored;
    uint8_t *state = NULL;
    esg_error decode_err;
    esg_status rc = ESG_OK;
    if (mapper->cipher != NULL || mapper->is_compressing) {
        rc = esg_mapper_decode_state(mapper, stored->state, stored->state_len, &state,
                                     &decoded.state_len, &decode_err);
        decoded.state = state;
    }
    if (rc == ESG_OK) {
        rc = esg_event_from_stored(&decoded, out, &decode_err);
        if (rc == ESG_EINVAL)
            rc = ESG_EDATA; /* stored, not the caller's input */
    }
    esg_free(state);
    if (rc == ESG_ENOMEM)
        return esg_error_set(err, rc, "%s", decode_err.message);
    if (rc != ESG_OK) {
        /* The cause first: the message may be cut at ESG_ERROR_MESSAGE_SIZE. */
        esg_uuid_str(&stored->originator_id, id);
        return esg_error_set(err, rc, "%s%s; in stored event %.80s version %lld of aggregate %s",
                             decode_err.message,
                             guess_format(mapper, stored->state, stored->state_len), stored->topic,
                             (long long)stored->originator_version, id);
    }
    return ESG_OK;
}
