/* The mapper's cipher and compressor against bytes the Python reference made
 * (tests/vectors/cipher_vectors.json, from make_cipher_vectors.py), and the
 * settings that choose them: each honoured or refused. */
#include <stdlib.h>
#include <string.h>

#include "esg/mapper.h"
#include "persistence/cipher.h"
#include "persistence/compressor.h"
#include "testutil.h"
#include "unit_tests.h"

static json_t *vectors;

static const char *vector_string(const char *path1, const char *path2)
{
    json_t *node = json_object_get(vectors, path1);
    if (path2 != NULL)
        node = json_object_get(node, path2);
    assert_non_null(json_string_value(node));
    return json_string_value(node);
}

static const char *state(void)
{
    return vector_string("state", NULL);
}

void test_aes_gcm_bytes_are_the_reference_ones(void **unused)
{
    (void)unused;
    size_t nonce_len = 0;
    uint8_t *nonce = testutil_unhex(vector_string("nonce", NULL), &nonce_len);
    assert_int_equal(nonce_len, ESG_CIPHER_NONCE_SIZE);
    json_t *aes = json_object_get(vectors, "aes");
    assert_int_equal(json_array_size(aes), 3);
    for (size_t i = 0; i < json_array_size(aes); i++) {
        json_t *vector = json_array_get(aes, i);
        esg_error err;
        esg_cipher *cipher = NULL;
        assert_esg_ok(esg_cipher_open(json_string_value(json_object_get(vector, "key")),
                                      "CIPHER_KEY", &cipher, &err),
                      &err);
        assert_int_equal(esg_cipher_key_size(cipher), 16 + 8 * i);
        size_t expected_len = 0;
        uint8_t *expected =
            testutil_unhex(json_string_value(json_object_get(vector, "ciphertext")), &expected_len);
        /* Python's bytes decrypt to the plaintext... */
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        assert_esg_ok(esg_cipher_decrypt(cipher, expected, expected_len, &plain, &plain_len, &err),
                      &err);
        assert_int_equal(plain_len, strlen(state()));
        assert_memory_equal(plain, state(), plain_len);
        /* ...and with the same nonce, ours are Python's byte for byte. */
        uint8_t *ours = NULL;
        size_t ours_len = 0;
        assert_esg_ok(esg_cipher_encrypt(cipher, (const uint8_t *)state(), strlen(state()), nonce,
                                         &ours, &ours_len, &err),
                      &err);
        assert_int_equal(ours_len, expected_len);
        assert_memory_equal(ours, expected, ours_len);
        /* With a random nonce: another ciphertext, the same plaintext. */
        uint8_t *random = NULL, *again = NULL;
        size_t random_len = 0, again_len = 0;
        assert_esg_ok(esg_cipher_encrypt(cipher, (const uint8_t *)state(), strlen(state()), NULL,
                                         &random, &random_len, &err),
                      &err);
        assert_memory_not_equal(random, ours, ESG_CIPHER_NONCE_SIZE);
        assert_esg_ok(esg_cipher_decrypt(cipher, random, random_len, &again, &again_len, &err),
                      &err);
        assert_memory_equal(again, state(), again_len);
        free(random);
        free(again);
        free(ours);
        free(plain);
        free(expected);
        esg_cipher_free(cipher);
    }
    free(nonce);
}

void test_damaged_or_foreign_ciphertext_is_a_data_error(void **unused)
{
    (void)unused;
    json_t *vector = json_array_get(json_object_get(vectors, "aes"), 2);
    size_t len = 0;
    uint8_t *bytes = testutil_unhex(json_string_value(json_object_get(vector, "ciphertext")), &len);
    esg_error err;
    esg_cipher *right = NULL, *wrong = NULL;
    assert_esg_ok(esg_cipher_open(json_string_value(json_object_get(vector, "key")), "CIPHER_KEY",
                                  &right, &err),
                  &err);
    assert_esg_ok(esg_cipher_open(vector_string("mapper", "key"), "CIPHER_KEY", &wrong, &err),
                  &err);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    assert_int_equal(esg_cipher_decrypt(wrong, bytes, len, &plain, &plain_len, &err), ESG_EDATA);
    assert_non_null(strstr(err.message, "wrong CIPHER_KEY"));
    assert_null(plain);
    bytes[len - 1] ^= 1; /* one bit of the ciphertext */
    assert_int_equal(esg_cipher_decrypt(right, bytes, len, &plain, &plain_len, &err), ESG_EDATA);
    bytes[len - 1] ^= 1;
    bytes[20] ^= 1; /* one bit of the tag */
    assert_int_equal(esg_cipher_decrypt(right, bytes, len, &plain, &plain_len, &err), ESG_EDATA);
    for (size_t short_len = 0; short_len < 28; short_len += 9)
        assert_int_equal(esg_cipher_decrypt(right, bytes, short_len, &plain, &plain_len, &err),
                         ESG_EDATA);
    /* An empty plaintext has a ciphertext of just nonce and tag. */
    uint8_t *empty = NULL;
    size_t empty_len = 0;
    assert_esg_ok(esg_cipher_encrypt(right, NULL, 0, NULL, &empty, &empty_len, &err), &err);
    assert_int_equal(empty_len, 28);
    assert_esg_ok(esg_cipher_decrypt(right, empty, empty_len, &plain, &plain_len, &err), &err);
    assert_int_equal(plain_len, 0);
    free(plain);
    free(empty);
    free(bytes);
    esg_cipher_free(right);
    esg_cipher_free(wrong);
}

void test_keys_python_refuses_are_refused(void **unused)
{
    (void)unused;
    json_t *refused = json_object_get(vectors, "refused_keys");
    const char *key;
    json_t *python_error;
    json_object_foreach(refused, key, python_error)
    {
        assert_non_null(json_string_value(python_error)); /* Python refused it */
        esg_error err;
        esg_cipher *cipher = NULL;
        assert_int_equal(esg_cipher_open(key, "ORDERS_CIPHER_KEY", &cipher, &err), ESG_ECONFIG);
        assert_null(cipher);
        assert_non_null(strstr(err.message, "ORDERS_CIPHER_KEY is invalid"));
    }
}

void test_zlib_bytes_are_the_reference_ones(void **unused)
{
    (void)unused;
    size_t expected_len = 0;
    uint8_t *expected = testutil_unhex(vector_string("zlib", "compressed"), &expected_len);
    esg_error err;
    uint8_t *ours = NULL, *inflated = NULL;
    size_t ours_len = 0, inflated_len = 0;
    assert_esg_ok(esg_compress((const uint8_t *)state(), strlen(state()), &ours, &ours_len, &err),
                  &err);
    assert_int_equal(ours_len, expected_len);
    assert_memory_equal(ours, expected, ours_len);
    assert_esg_ok(esg_decompress(expected, expected_len, &inflated, &inflated_len, &err), &err);
    assert_int_equal(inflated_len, strlen(state()));
    assert_memory_equal(inflated, state(), inflated_len);
    free(inflated);
    /* Cut short, with bytes after it, or not zlib at all: a data error, nothing returned. */
    assert_int_equal(esg_decompress(expected, expected_len - 3, &inflated, &inflated_len, &err),
                     ESG_EDATA);
    assert_null(inflated);
    uint8_t *longer = malloc(expected_len + 2);
    memcpy(longer, expected, expected_len);
    memcpy(longer + expected_len, "xx", 2);
    assert_int_equal(esg_decompress(longer, expected_len + 2, &inflated, &inflated_len, &err),
                     ESG_EDATA);
    assert_int_equal(
        esg_decompress((const uint8_t *)state(), strlen(state()), &inflated, &inflated_len, &err),
        ESG_EDATA);
    free(longer);
    free(ours);
    free(expected);
}

void test_a_decompression_bomb_is_refused(void **unused)
{
    (void)unused;
    /* 65 MiB of zeros compress to about 65 KiB: over the limit, refused without inflating it all.
     */
    size_t len = ESG_MAX_DECOMPRESSED_BYTES + 1024 * 1024;
    uint8_t *zeros = calloc(1, len);
    esg_error err;
    uint8_t *bomb = NULL, *inflated = NULL;
    size_t bomb_len = 0, inflated_len = 0;
    assert_esg_ok(esg_compress(zeros, len, &bomb, &bomb_len, &err), &err);
    free(zeros);
    assert_true(bomb_len < 200 * 1024);
    assert_int_equal(esg_decompress(bomb, bomb_len, &inflated, &inflated_len, &err), ESG_EDATA);
    assert_non_null(strstr(err.message, "more than 64 MiB"));
    assert_null(inflated);
    free(bomb);
}

/* A mapper from settings, or the status and message of its refusal. */
static esg_status open_mapper(const char *const *settings, esg_mapper **out, esg_error *err)
{
    esg_env *env = esg_env_new();
    for (size_t i = 0; settings[i] != NULL; i += 2)
        assert_int_equal(esg_env_set(env, settings[i], settings[i + 1], NULL), ESG_OK);
    esg_status rc = esg_mapper_open(env, "Orders", out, err);
    esg_env_free(env);
    return rc;
}

void test_the_mapper_reads_what_python_stored(void **unused)
{
    (void)unused;
    const char *settings[] = {"COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor",
                              "ORDERS_CIPHER_KEY", vector_string("mapper", "key"), NULL};
    esg_mapper *mapper = NULL;
    esg_error err;
    assert_esg_ok(open_mapper(settings, &mapper, &err), &err);
    assert_true(esg_mapper_is_encrypting(mapper));
    assert_true(esg_mapper_is_compressing(mapper));
    assert_string_equal(esg_mapper_describe(mapper), "JSON, zlib, AES-256-GCM");
    size_t stored_len = 0;
    uint8_t *stored = testutil_unhex(vector_string("mapper", "stored"), &stored_len);
    uint8_t *decoded = NULL;
    size_t decoded_len = 0;
    assert_esg_ok(esg_mapper_decode_state(mapper, stored, stored_len, &decoded, &decoded_len, &err),
                  &err);
    assert_int_equal(decoded_len, strlen(state()));
    assert_memory_equal(decoded, state(), decoded_len);
    esg_free(decoded);

    /* A whole stored event: decoded into an event, and stored again as the mapper stores. */
    esg_stored_event python = {.originator_version = 1,
                               .topic = "eventsourcing_grpc.example:Order.Created",
                               .state = stored,
                               .state_len = stored_len};
    esg_uuid4(&python.originator_id);
    esg_event *event = NULL;
    assert_esg_ok(esg_mapper_from_stored(mapper, &python, &event, &err), &err);
    assert_string_equal(esg_value_as_string(esg_event_get(event, "note"), NULL), "été");
    esg_stored_event ours = {0};
    assert_esg_ok(esg_mapper_to_stored(mapper, event, &ours, &err), &err);
    assert_esg_ok(
        esg_mapper_decode_state(mapper, ours.state, ours.state_len, &decoded, &decoded_len, &err),
        &err);
    assert_memory_equal(decoded, state(), decoded_len);
    esg_free(decoded);

    /* Without the cipher, the state is not JSON, and the error says what it looks like. */
    esg_mapper *plain = NULL;
    assert_esg_ok(esg_mapper_open_plain(&plain, &err), &err);
    esg_event *unread = NULL;
    assert_int_equal(esg_mapper_from_stored(plain, &ours, &unread, &err), ESG_EDATA);
    assert_null(unread);
    assert_non_null(strstr(err.message, "looks encrypted"));
    assert_non_null(strstr(err.message, "Order.Created"));
    /* With another key, decryption fails and says so. */
    const char *other[] = {"CIPHER_KEY",
                           json_string_value(json_object_get(
                               json_array_get(json_object_get(vectors, "aes"), 2), "key")),
                           NULL};
    esg_mapper *wrong = NULL;
    assert_esg_ok(open_mapper(other, &wrong, &err), &err);
    assert_int_equal(esg_mapper_from_stored(wrong, &ours, &unread, &err), ESG_EDATA);
    assert_non_null(strstr(err.message, "wrong CIPHER_KEY"));

    esg_stored_event_clear(&ours);
    esg_event_free(event);
    free(stored);
    esg_mapper_free(mapper);
    esg_mapper_free(plain);
    esg_mapper_free(wrong);
}

void test_compressed_state_without_the_compressor_says_so(void **unused)
{
    (void)unused;
    size_t len = 0;
    uint8_t *compressed = testutil_unhex(vector_string("zlib", "compressed"), &len);
    esg_stored_event stored = {
        .originator_version = 1, .topic = "x:Y", .state = compressed, .state_len = len};
    esg_mapper *plain = NULL;
    esg_error err;
    esg_event *event = NULL;
    assert_esg_ok(esg_mapper_open_plain(&plain, &err), &err);
    assert_int_equal(esg_mapper_from_stored(plain, &stored, &event, &err), ESG_EDATA);
    assert_non_null(strstr(err.message, "looks zlib-compressed"));
    /* With the compressor ("zlib", the module topic Python also takes) it reads. */
    const char *settings[] = {"ORDERS_COMPRESSOR_TOPIC", "zlib", NULL};
    esg_mapper *zlib = NULL;
    assert_esg_ok(open_mapper(settings, &zlib, &err), &err);
    assert_false(esg_mapper_is_encrypting(zlib));
    assert_esg_ok(esg_mapper_from_stored(zlib, &stored, &event, &err), &err);
    esg_event_free(event);
    esg_mapper_free(zlib);
    esg_mapper_free(plain);
    free(compressed);
}

void test_settings_are_honoured_or_refused(void **unused)
{
    (void)unused;
    const char *key = vector_string("mapper", "key");
    const struct {
        const char *settings[7];
        esg_status status;
        const char *fragment; /* of the message, or what describe says */
    } cases[] = {
        {{NULL}, ESG_OK, "JSON"},
        {{"CIPHER_KEY", key, NULL}, ESG_OK, "JSON, AES-256-GCM"}, /* the key alone selects it */
        {{"CIPHER_TOPIC", "eventsourcing.cipher:AESCipher", "CIPHER_KEY", key, NULL},
         ESG_OK,
         "JSON, AES-256-GCM"},
        {{"CIPHER_KEY",
          json_string_value(
              json_object_get(json_array_get(json_object_get(vectors, "aes"), 0), "key")),
          NULL},
         ESG_OK,
         "JSON, AES-128-GCM"},
        {{"CIPHER_KEY", "", NULL}, ESG_OK, "JSON"}, /* empty: as unset, as in Python */
        {{"COMPRESSOR_TOPIC", "", NULL}, ESG_OK, "JSON"},
        {{"CIPHER_TOPIC", "eventsourcing.cipher:AESCipher", NULL},
         ESG_ECONFIG,
         "no key is set: set ORDERS_CIPHER_KEY, CIPHER_KEY"},
        {{"CIPHER_TOPIC", "mymodule:MyCipher", "CIPHER_KEY", key, NULL},
         ESG_ECONFIG,
         "CIPHER_TOPIC 'mymodule:MyCipher' is not supported"},
        {{"COMPRESSOR_TOPIC", "bz2", NULL}, ESG_ECONFIG, "COMPRESSOR_TOPIC 'bz2' is not supported"},
        {{"CIPHER_KEY", "not base64!", NULL}, ESG_ECONFIG, "CIPHER_KEY is invalid"},
        {{"CIPHER_KEY", "AAAA", NULL}, ESG_ECONFIG, "this one has 3"},
        /* The prefixed key wins over the plain one. */
        {{"CIPHER_KEY", "not base64!", "ORDERS_CIPHER_KEY", key, NULL},
         ESG_OK,
         "JSON, AES-256-GCM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esg_mapper *mapper = NULL;
        esg_error err = {0};
        esg_status rc = open_mapper(cases[i].settings, &mapper, &err);
        if (rc != cases[i].status)
            fail_msg("case %zu: %s (%s)", i, esg_status_name(rc), err.message);
        const char *text = rc == ESG_OK ? esg_mapper_describe(mapper) : err.message;
        if (rc == ESG_OK ? strcmp(text, cases[i].fragment) != 0
                         : strstr(text, cases[i].fragment) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, text, cases[i].fragment);
        esg_mapper_free(mapper);
    }
}

/* The group's setup: the reference's bytes, read once for every test. */
int mapper_group_setup(void **state)
{
    (void)state;
    vectors = testutil_load_vector("cipher_vectors.json");
    return 0;
}

int mapper_group_teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}
