/* AES-GCM for stored state, compatible byte for byte with eventsourcing 9.2's AESCipher. */
#include "persistence/cipher.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "core/alloc.h"

struct esg_cipher {
    uint8_t key[32];
    size_t key_len;          /* 16, 24 or 32 */
    const EVP_CIPHER *suite; /* AES-128/192/256-GCM, static in OpenSSL */
};

/* Decodes standard base64 (padding required, white space allowed, as OpenSSL reads it) into
 * out; false when it is not base64 or decodes to more than out_size bytes. */
static bool decode_base64(const char *text, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t text_len = strlen(text);
    if (text_len > 1024)
        return false;
    uint8_t decoded[1024];
    int n = 0, n_final = 0;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (ctx == NULL)
        return false;
    EVP_DecodeInit(ctx);
    bool is_ok =
        EVP_DecodeUpdate(ctx, decoded, &n, (const unsigned char *)text, (int)text_len) >= 0 &&
        EVP_DecodeFinal(ctx, decoded + n, &n_final) == 1;
    EVP_ENCODE_CTX_free(ctx);
    size_t len = (size_t)n + (size_t)n_final;
    /* OpenSSL takes a final block without its padding: Python's b64decode refuses one. */
    size_t significant = 0;
    for (const char *p = text; *p != '\0'; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            significant++;
    is_ok = is_ok && significant % 4 == 0 && len <= out_size;
    if (is_ok) {
        memcpy(out, decoded, len);
        *out_len = len;
    }
    OPENSSL_cleanse(decoded, sizeof decoded);
    return is_ok;
}

esg_status esg_cipher_open(const char *key_base64, const char *key_name, esg_cipher **out,
                           esg_error *err)
{
    *out = NULL;
    esg_cipher *cipher = esg_calloc(1, sizeof *cipher);
    if (cipher == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a cipher");
    uint8_t key[64];
    size_t key_len = 0;
    if (!decode_base64(key_base64, key, sizeof key, &key_len)) {
        esg_free(cipher);
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: expected 16, 24 or 32 bytes in base64 (make one with "
                             "'openssl rand -base64 32'), got text that is not base64",
                             key_name);
    }
    if (key_len != 16 && key_len != 24 && key_len != 32) {
        OPENSSL_cleanse(key, sizeof key);
        esg_free(cipher);
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: an AES key has 16, 24 or 32 bytes, this one has %zu "
                             "(make one with 'openssl rand -base64 32')",
                             key_name, key_len);
    }
    memcpy(cipher->key, key, key_len);
    OPENSSL_cleanse(key, sizeof key);
    cipher->key_len = key_len;
    cipher->suite = key_len == 16   ? EVP_aes_128_gcm()
                    : key_len == 24 ? EVP_aes_192_gcm()
                                    : EVP_aes_256_gcm();
    *out = cipher;
    return ESG_OK;
}

size_t esg_cipher_key_size(const esg_cipher *cipher)
{
    return cipher->key_len;
}

/* Sets up ctx for one encryption or decryption with nonce. */
static bool start(const esg_cipher *cipher, EVP_CIPHER_CTX *ctx, const uint8_t *nonce,
                  int is_encrypting)
{
    return EVP_CipherInit_ex(ctx, cipher->suite, NULL, NULL, NULL, is_encrypting) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ESG_CIPHER_NONCE_SIZE, NULL) == 1 &&
           EVP_CipherInit_ex(ctx, NULL, NULL, cipher->key, nonce, is_encrypting) == 1;
}

esg_status esg_cipher_encrypt(const esg_cipher *cipher, const uint8_t *plaintext, size_t len,
                              const uint8_t *nonce, uint8_t **out, size_t *out_len, esg_error *err)
{
    *out = NULL;
    if (len > INT_MAX - ESG_CIPHER_NONCE_SIZE - ESG_CIPHER_TAG_SIZE)
        return esg_error_set(err, ESG_EINVAL, "cannot encrypt more than 2 GiB");
    size_t total = ESG_CIPHER_NONCE_SIZE + ESG_CIPHER_TAG_SIZE + len;
    uint8_t *bytes = esg_malloc(total);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    esg_status rc = ESG_OK;
    if (bytes == NULL || ctx == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory encrypting");
        goto out;
    }
    if (nonce != NULL)
        memcpy(bytes, nonce, ESG_CIPHER_NONCE_SIZE);
    else if (RAND_bytes(bytes, ESG_CIPHER_NONCE_SIZE) != 1) {
        rc = esg_error_set(err, ESG_EINTERNAL, "cannot draw a random nonce (OpenSSL)");
        goto out;
    }
    uint8_t *tag = bytes + ESG_CIPHER_NONCE_SIZE;
    uint8_t *ciphertext = tag + ESG_CIPHER_TAG_SIZE;
    int n = 0, n_final = 0;
    if (!start(cipher, ctx, bytes, 1) ||
        EVP_EncryptUpdate(ctx, ciphertext, &n, plaintext, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ciphertext + n, &n_final) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ESG_CIPHER_TAG_SIZE, tag) != 1) {
        rc = esg_error_set(err, ESG_EINTERNAL, "cannot encrypt (OpenSSL AES-GCM failed)");
        goto out;
    }
    *out = bytes;
    *out_len = total;
    bytes = NULL;
out:
    esg_free(bytes);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

esg_status esg_cipher_decrypt(const esg_cipher *cipher, const uint8_t *ciphertext, size_t len,
                              uint8_t **out, size_t *out_len, esg_error *err)
{
    *out = NULL;
    if (len < ESG_CIPHER_NONCE_SIZE + ESG_CIPHER_TAG_SIZE)
        return esg_error_set(err, ESG_EDATA,
                             "cannot decrypt: %zu bytes are too few for AES-GCM (nonce and tag "
                             "take 28): not encrypted?",
                             len);
    if (len > INT_MAX)
        return esg_error_set(err, ESG_EINVAL, "cannot decrypt more than 2 GiB");
    size_t plain_len = len - ESG_CIPHER_NONCE_SIZE - ESG_CIPHER_TAG_SIZE;
    /* One byte more, so that an empty plaintext still has a buffer, and a NUL for callers. */
    uint8_t *plain = esg_malloc(plain_len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    esg_status rc = ESG_OK;
    if (plain == NULL || ctx == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory decrypting");
        goto out;
    }
    const uint8_t *nonce = ciphertext;
    const uint8_t *tag = ciphertext + ESG_CIPHER_NONCE_SIZE;
    const uint8_t *encrypted = tag + ESG_CIPHER_TAG_SIZE;
    int n = 0, n_final = 0;
    if (!start(cipher, ctx, nonce, 0) ||
        EVP_DecryptUpdate(ctx, plain, &n, encrypted, (int)plain_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ESG_CIPHER_TAG_SIZE, (void *)tag) != 1) {
        rc = esg_error_set(err, ESG_EINTERNAL, "cannot decrypt (OpenSSL AES-GCM failed)");
        goto out;
    }
    if (EVP_DecryptFinal_ex(ctx, plain + n, &n_final) != 1) {
        rc = esg_error_set(err, ESG_EDATA,
                           "cannot decrypt: the AES-GCM tag does not verify (wrong CIPHER_KEY, "
                           "damaged, or not encrypted?)");
        goto out;
    }
    plain[plain_len] = '\0';
    *out = plain;
    *out_len = plain_len;
    plain = NULL;
out:
    esg_free(plain);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

void esg_cipher_free(esg_cipher *cipher)
{
    if (cipher == NULL)
        return;
    OPENSSL_cleanse(cipher->key, sizeof cipher->key);
    esg_free(cipher);
}
