/* AES in GCM mode exactly as eventsourcing 9.2's AESCipher (eventsourcing.cipher:AESCipher):
 * a key of 16, 24 or 32 bytes given in base64 (CIPHER_KEY), a random 96-bit nonce per
 * encryption, a 128-bit tag, no associated data, and the stored bytes nonce (12) + tag (16) +
 * ciphertext. On OpenSSL's EVP interface. Internal: not part of the public API. */
#ifndef ESG_CIPHER_H
#define ESG_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include "esg/error.h"

#define ESG_CIPHER_NONCE_SIZE 12
#define ESG_CIPHER_TAG_SIZE 16

typedef struct esg_cipher esg_cipher;

/* A cipher with the key that key_base64 encodes (16, 24 or 32 bytes). key_name names the
 * setting in messages. ESG_ECONFIG when the key is not base64 or has another size. Free with
 * esg_cipher_free. */
esg_status esg_cipher_open(const char *key_base64, const char *key_name, esg_cipher **out,
                           esg_error *err);

/* The key's size in bytes: 16, 24 or 32. */
size_t esg_cipher_key_size(const esg_cipher *cipher);

/* Encrypts plaintext (borrowed) into *out (the caller frees it with esg_free), with a random nonce,
 * or with nonce when it is not NULL (for tests that compare bytes with the reference's). */
esg_status esg_cipher_encrypt(const esg_cipher *cipher, const uint8_t *plaintext, size_t len,
                              const uint8_t *nonce, uint8_t **out, size_t *out_len, esg_error *err);

/* Decrypts and verifies what esg_cipher_encrypt (or Python's AESCipher) wrote. ESG_EDATA when the
 * bytes are too short or the tag does not verify (another key, or not encrypted at all). */
esg_status esg_cipher_decrypt(const esg_cipher *cipher, const uint8_t *ciphertext, size_t len,
                              uint8_t **out, size_t *out_len, esg_error *err);

/* Wipes the key and frees the cipher. NULL is allowed. */
void esg_cipher_free(esg_cipher *cipher);

#endif
