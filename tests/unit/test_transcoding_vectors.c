/* The transcoding vectors of the Python reference (tests/vectors/transcoding.json
 * and method_calls.json), byte for byte: values built in C encode to the same
 * bytes, and every recorded text decodes and encodes back to itself. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>
#include <string.h>

/* The bytes of vector field `bytes` ({"hex":..., "len":...}), malloc'ed. */
static uint8_t *vector_bytes(json_t *bytes, size_t *len)
{
    uint8_t *data = testutil_unhex(json_string_value(json_object_get(bytes, "hex")), len);
    assert_int_equal(*len, json_integer_value(json_object_get(bytes, "len")));
    return data;
}

/* A vector case with its bytes (field `field`) decoded. */
typedef struct {
    const char *description; /* borrowed from the vectors */
    uint8_t *bytes;          /* the case's bytes (malloc'ed) */
    size_t len;
    esg_value *value; /* what they decode to, NULL when refused */
    esg_status rc;    /* the decoder's status, and err its message */
    esg_error err;
} decoded_case;

static void decode_case(json_t *item, const char *field, decoded_case *out)
{
    out->description = json_string_value(json_object_get(item, "description"));
    out->bytes = vector_bytes(json_object_get(item, field), &out->len);
    out->value = NULL;
    out->rc = esg_json_decode((const char *)out->bytes, out->len, &out->value, &out->err);
}

static void decoded_case_free(decoded_case *c)
{
    esg_value_free(c->value);
    free(c->bytes);
}

static void assert_encodes_to(const esg_value *value, const uint8_t *expected, size_t len,
                              const char *what)
{
    char *json = NULL;
    size_t json_len = 0;
    esg_error err;
    if (esg_json_encode(value, &json, &json_len, &err) != ESG_OK)
        fail_msg("%s: %s", what, err.message);
    if (json_len != len || memcmp(json, expected, len) != 0)
        fail_msg("%s: encoded %s, expected %.*s", what, json, (int)len, (const char *)expected);
    free(json);
}

static json_t *find_case(json_t *cases, const char *description)
{
    size_t i;
    json_t *item;
    json_array_foreach(cases, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "description")), description) == 0)
            return item;
    }
    fail_msg("no vector '%s'", description);
    return NULL;
}

void test_every_encoded_text_roundtrips(void **state)
{
    (void)state;
    json_t *root = testutil_load_vector("transcoding.json");
    json_t *cases = json_object_get(root, "encode");
    size_t i, n_checked = 0;
    json_t *item;
    json_array_foreach(cases, i, item)
    {
        decoded_case c;
        decode_case(item, "encoded", &c);
        if (strcmp(c.description, "int 2**64") == 0) {
            /* Documented: integers are 64-bit; larger ones are refused, not truncated. */
            assert_int_equal(c.rc, ESG_EINVAL);
            assert_non_null(strstr(c.err.message, "64 bits"));
        } else {
            if (c.rc != ESG_OK)
                fail_msg("%s: %s", c.description, c.err.message);
            assert_encodes_to(c.value, c.bytes, c.len, c.description);
            n_checked++;
        }
        decoded_case_free(&c);
    }
    assert_true(n_checked >= 25);
    json_decref(root);
}

static void check(json_t *cases, const char *description, esg_value *value)
{
    size_t len;
    uint8_t *expected =
        vector_bytes(json_object_get(find_case(cases, description), "encoded"), &len);
    assert_non_null(value);
    assert_encodes_to(value, expected, len, description);
    free(expected);
    esg_value_free(value);
}

void test_values_built_in_c_encode_like_python(void **state)
{
    (void)state;
    json_t *root = testutil_load_vector("transcoding.json");
    json_t *cases = json_object_get(root, "encode");
    esg_error err;
    esg_uuid id;
    assert_esg_ok(esg_uuid_parse("12345678-1234-5678-1234-567812345678", 36, &id, &err), &err);

    check(cases, "None", esg_value_null());
    check(cases, "True", esg_value_bool(true));
    check(cases, "int -42", esg_value_int(-42));
    check(cases, "float 0.1", esg_value_float(0.1));
    check(cases, "float 1e-07", esg_value_float(1e-07));
    check(cases, "float 1e22", esg_value_float(1e22));
    check(cases, "str quotes/backslash/control", esg_value_string("a\"b\\c\n\t\x01"));
    check(cases, "str non-ascii (ensure_ascii=False)",
          esg_value_string("caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80"));
    check(cases, "str with U+2028",
          esg_value_string("a\xe2\x80\xa8"
                           "b"));
    check(cases, "UUID", esg_value_uuid(&id));

    esg_datetime dt = {2024, 1, 2, 3, 4, 5, 678901, true, 0};
    check(cases, "datetime UTC with microseconds", esg_value_datetime(&dt));
    dt.microsecond = 0;
    check(cases, "datetime UTC microsecond=0 (no fraction written)", esg_value_datetime(&dt));
    dt.microsecond = 1000;
    dt.utc_offset_seconds = 5 * 3600 + 30 * 60;
    check(cases, "datetime +05:30 offset", esg_value_datetime(&dt));
    dt.microsecond = 6;
    dt.has_offset = false;
    dt.utc_offset_seconds = 0;
    check(cases, "datetime naive (no offset)", esg_value_datetime(&dt));
    check(cases, "Decimal", esg_value_decimal("3.14159", &err));
    check(cases, "Decimal integer", esg_value_decimal("10", &err));

    esg_value *dict = esg_value_object();
    assert_int_equal(esg_object_set(dict, "b", esg_value_int(1)), ESG_OK);
    assert_int_equal(esg_object_set(dict, "a", esg_value_int(2)), ESG_OK);
    check(cases, "dict key order preserved", dict);

    esg_value *args = esg_value_array();
    assert_int_equal(esg_array_append(args, esg_value_uuid(&id)), ESG_OK);
    check(cases, "method args for get_order(order_id)", args);
    esg_value *kwargs = esg_value_object();
    assert_int_equal(esg_object_set(kwargs, "order_id", esg_value_uuid(&id)), ESG_OK);
    check(cases, "method kwargs for get_order(order_id=...)", kwargs);
    json_decref(root);
}

void test_decode_vectors(void **state)
{
    (void)state;
    json_t *root = testutil_load_vector("transcoding.json");
    json_t *cases = json_object_get(root, "decode");
    size_t i;
    json_t *item;
    json_array_foreach(cases, i, item)
    {
        decoded_case c;
        decode_case(item, "input", &c);
        json_t *expected_error = json_object_get(item, "error");
        json_t *decoded = json_object_get(item, "decoded");
        if (expected_error != NULL) {
            assert_int_equal(c.rc, ESG_EINVAL);
            /* Our message repeats the reference's wording after its exception name. */
            const char *text = strchr(json_string_value(expected_error), ':') + 2;
            if (strcmp(c.err.message, text) != 0)
                fail_msg("%s: '%s' != '%s'", c.description, c.err.message, text);
        } else {
            if (c.rc != ESG_OK)
                fail_msg("%s: %s", c.description, c.err.message);
            const esg_value *single =
                esg_value_type(c.value) == ESG_TYPE_ARRAY ? esg_array_get(c.value, 0) : c.value;
            json_t *want = json_is_array(decoded) ? json_array_get(decoded, 0) : decoded;
            char text[ESG_DATETIME_ISO_SIZE];
            if (json_object_get(want, "hex") != NULL) {
                esg_uuid_hex(esg_value_as_uuid(single), text);
                assert_string_equal(text, json_string_value(json_object_get(want, "hex")));
            } else if (json_object_get(want, "datetime") != NULL) {
                esg_datetime_format(esg_value_as_datetime(single), text);
                assert_string_equal(text, json_string_value(json_object_get(want, "datetime")));
            } else if (json_object_get(want, "decimal") != NULL) {
                assert_string_equal(esg_value_as_decimal(single),
                                    json_string_value(json_object_get(want, "decimal")));
            } else {
                fail_msg("%s: unknown expectation", c.description);
            }
        }
        decoded_case_free(&c);
    }
    json_decref(root);
}

void test_method_call_payloads_roundtrip(void **state)
{
    (void)state;
    /* Every args, kwargs and reply payload captured on the wire decodes and
     * encodes back to the same bytes. */
    json_t *root = testutil_load_vector("method_calls.json");
    size_t i, n_checked = 0;
    json_t *call;
    json_array_foreach(json_object_get(root, "calls"), i, call)
    {
        json_t *fields = json_object_get(json_object_get(call, "request"), "fields");
        json_t *reply = json_object_get(json_object_get(call, "response"), "fields");
        json_t *payloads[] = {json_object_get(fields, "args"), json_object_get(fields, "kwargs"),
                              json_object_get(reply, "data")};
        for (size_t k = 0; k < 3; k++) {
            size_t len;
            uint8_t *bytes = vector_bytes(payloads[k], &len);
            esg_value *value = NULL;
            esg_error err;
            assert_esg_ok(esg_json_decode((const char *)bytes, len, &value, &err), &err);
            assert_encodes_to(value, bytes, len,
                              json_string_value(json_object_get(call, "description")));
            esg_value_free(value);
            free(bytes);
            n_checked++;
        }
    }
    assert_int_equal(n_checked, 15);
    json_decref(root);
}
