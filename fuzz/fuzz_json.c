/* JSON transcoding (args, kwargs, event state, method results): what decodes
 * encodes, and the encoding is a fixed point: decode(encode(v)) equals v and
 * encodes to the same bytes. */
#include "fuzz_common.h"

#include "esg/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    esg_error err = {0};
    esg_value *value = NULL, *again = NULL, *copy = NULL;
    char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;

    if (esg_json_decode((const char *)data, size, &value, &err) != ESG_OK)
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
