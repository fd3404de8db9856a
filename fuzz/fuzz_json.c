/* JSON transcoding (args, kwargs, event state, method results): what decodes
 * encodes, and the encoding is a fixed point: decode(encode(v)) equals v and
 * encodes to the same bytes. And the decoder (yajl underneath) reads as JSON exactly
 * what jansson, the decoder's parser before it, reads: it refuses a text as invalid JSON
 * or a number out of range if and only if jansson does (past the nesting limit, and for
 * typed values that do not decode, jansson has no say; nor on texts with a NUL byte, which
 * jansson takes for their end after a value where Python's json, and the decoder, refuse; and a
 * key holding \u0000, which jansson does not support and Python's json, and the decoder, read). */
#include "fuzz_common.h"

#include <jansson.h>

#include "esg/value.h"

/* Whether jansson reads the text, as the decoder once called it: 1 or 0, or -1 when it stopped
 * at a NUL in a key (before it saw the rest: it has no say then). */
static int jansson_reads(const uint8_t *data, size_t size)
{
    json_error_t error;
    json_t *json = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    json_decref(json);
    if (json == NULL && json_error_code(&error) == json_error_null_byte_in_key)
        return -1;
    return json != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    esg_error err = {0};
    esg_value *value = NULL, *again = NULL, *copy = NULL;
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;

    esg_status rc = esg_json_decode((const char *)data, size, &value, &err);
    bool is_not_json = rc == ESG_EINVAL && (strncmp(err.message, "invalid JSON", 12) == 0 ||
                                            strncmp(err.message, "JSON number out of", 18) == 0);
    int jansson = (rc == ESG_OK || is_not_json) && memchr(data, '\0', size) == NULL
                      ? jansson_reads(data, size)
                      : -1;
    if (jansson >= 0)
        FUZZ_CHECK(jansson == (rc == ESG_OK), "the decoder %s what jansson %s: %s %.*s",
                   rc == ESG_OK ? "reads" : "refuses", rc == ESG_OK ? "refuses" : "reads",
                   err.message, (int)(size < 200 ? size : 200), (const char *)data);
    if (rc != ESG_OK)
        return 0;
    copy = esg_value_copy(value);
    FUZZ_CHECK(copy != NULL && esg_value_equal(value, copy), "a copy differs from its original");

    /* Encoding may refuse what JSON cannot hold (an infinite float from 1e999). */
    if (esg_json_encode(value, &first, &first_len, &err) != ESG_OK)
        goto out;
    FUZZ_CHECK(strlen(first) <= first_len, "encoding not NUL-terminated at its length");
    FUZZ_CHECK(esg_json_decode(first, first_len, &again, &err) == ESG_OK,
               "its own encoding does not decode (%s): %.200s", err.message, first);
    FUZZ_CHECK(esg_value_equal(value, again), "decoding the encoding changes the value: %.200s",
               first);
    FUZZ_CHECK(esg_json_encode(again, &second, &second_len, &err) == ESG_OK,
               "re-encoding fails (%s): %.200s", err.message, first);
    FUZZ_CHECK(first_len == second_len && memcmp(first, second, first_len) == 0,
               "the second encoding differs: %.200s <> %.200s", first, second);
out:
    free(first);
    free(second);
    esg_value_free(value);
    esg_value_free(again);
    esg_value_free(copy);
    return 0;
}
