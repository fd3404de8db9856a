/* Tests of JSON encoding and decoding beyond the reference vectors: floats in
 * Python's repr, escapes, custom types, limits and clear errors. */
#include "testutil.h"
#include "unit_tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_encodes(esg_value *value, const char *expected)
{
    char *json = NULL;
    size_t len = 0;
    esg_error err;
    assert_esg_ok(esg_json_encode(value, &json, &len, &err), &err);
    assert_string_equal(json, expected);
    assert_int_equal(len, strlen(expected));
    free(json);
    esg_value_free(value);
}

void test_floats_like_python_repr(void **state)
{
    (void)state;
    /* Expected texts are Python 3.11's json.dumps of the same doubles. */
    const struct {
        double value;
        const char *text;
    } cases[] = {
        {100.0, "100.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {-0.0, "-0.0"},
        {123456789.123, "123456789.123"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.5e-5, "2.5e-05"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1, "0.1"},
        {1e22, "1e+22"},
        {1.5, "1.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_encodes(esg_value_float(cases[i].value), cases[i].text);
}

void test_non_finite_floats_are_refused(void **state)
{
    (void)state;
    char *json = NULL;
    esg_error err;
    esg_value *value = esg_value_float(INFINITY);
    assert_int_equal(esg_json_encode(value, &json, NULL, &err), ESG_EINVAL);
    assert_null(json);
    esg_value_free(value);
    value = esg_value_float(NAN);
    assert_int_equal(esg_json_encode(value, &json, NULL, &err), ESG_EINVAL);
    esg_value_free(value);
}

void test_strings_escape_like_python(void **state)
{
    (void)state;
    assert_encodes(esg_value_string_n("\x00\x1f\x7f/\b\f\r", 7),
                   "\"\\u0000\\u001f\x7f/\\b\\f\\r\"");
    assert_encodes(esg_value_string("caf\xc3\xa9 \xe2\x80\xa8"), "\"caf\xc3\xa9 \xe2\x80\xa8\"");
}

void test_invalid_utf8_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {"\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *json = NULL;
        esg_error err;
        esg_value *value = esg_value_string(bad[i]);
        assert_int_equal(esg_json_encode(value, &json, NULL, &err), ESG_EINVAL);
        assert_non_null(strstr(err.message, "UTF-8"));
        esg_value_free(value);
    }
}

void test_decode_custom_types_and_roundtrip(void **state)
{
    (void)state;
    const char *text = "{\"a\":[1,-2,1.5,true,false,null,\"s\\u00e9\"],"
                       "\"u\":{\"_type_\":\"uuid_hex\",\"_data_\":\"12345678-1234-5678-1234-"
                       "567812345678\"},"
                       "\"d\":{\"_type_\":\"decimal_str\",\"_data_\":\"1e2\"},"
                       "\"t\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2024-01-02T03:04:05Z\"},"
                       "\"x\":{\"_type_\":\"uuid_hex\",\"_data_\":\"x\",\"extra\":1}}";
    const char *expected = "{\"a\":[1,-2,1.5,true,false,null,\"s\xc3\xa9\"],"
                           "\"u\":{\"_type_\":\"uuid_hex\",\"_data_\":"
                           "\"12345678123456781234567812345678\"},"
                           "\"d\":{\"_type_\":\"decimal_str\",\"_data_\":\"1E+2\"},"
                           "\"t\":{\"_type_\":\"datetime_iso\",\"_data_\":"
                           "\"2024-01-02T03:04:05+00:00\"},"
                           "\"x\":{\"_type_\":\"uuid_hex\",\"_data_\":\"x\",\"extra\":1}}";
    esg_value *value = NULL;
    esg_error err;
    assert_esg_ok(esg_json_decode(text, strlen(text), &value, &err), &err);
    assert_int_equal(esg_value_type(esg_object_get(value, "u")), ESG_TYPE_UUID);
    assert_int_equal(esg_value_type(esg_object_get(value, "d")), ESG_TYPE_DECIMAL);
    assert_int_equal(esg_value_type(esg_object_get(value, "t")), ESG_TYPE_DATETIME);
    assert_int_equal(esg_value_type(esg_object_get(value, "x")), ESG_TYPE_OBJECT);
    assert_encodes(value, expected);
}

void test_duplicate_keys_last_wins_in_first_place(void **state)
{
    (void)state;
    esg_value *value = NULL;
    esg_error err;
    const char *text = "{\"a\":1,\"b\":2,\"a\":3}";
    assert_esg_ok(esg_json_decode(text, strlen(text), &value, &err), &err);
    assert_encodes(value, "{\"a\":3,\"b\":2}");
}

static void expect_decode_error(const char *text, size_t len, const char *fragment)
{
    esg_value *value = NULL;
    esg_error err;
    assert_int_equal(esg_json_decode(text, len, &value, &err), ESG_EINVAL);
    assert_null(value);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("error for %.40s was '%s', expected it to mention '%s'", text, err.message,
                 fragment);
}

void test_decode_errors_are_clear(void **state)
{
    (void)state;
    expect_decode_error("", 0, "invalid JSON");
    expect_decode_error("[1,", 3, "invalid JSON");
    expect_decode_error("[1] x", 5, "invalid JSON");
    /* A token cut off after the value (yajl alone would wait for its end and say yes). */
    expect_decode_error("[\"a\"]\"]", 7, "trailing garbage");
    expect_decode_error("1 tru", 5, "trailing garbage");
    expect_decode_error("{} \"x", 5, "trailing garbage");
    expect_decode_error("\"a\" 1", 5, "invalid JSON");
    expect_decode_error("\v1", 2, "invalid JSON");
    expect_decode_error("[1,\f2]", 6, "invalid JSON");
    expect_decode_error("\"\xff\"", 3, "invalid JSON");
    expect_decode_error("18446744073709551616", 20, "64 bits");
    expect_decode_error("{\"_type_\":\"nope\",\"_data_\":1}", 28, "not deserializable");
    expect_decode_error("{\"_type_\":\"uuid_hex\",\"_data_\":\"zz\"}", 35, "badly formed");
    expect_decode_error("{\"_type_\":\"uuid_hex\",\"_data_\":1}", 32, "must be a string");
    expect_decode_error("{\"_type_\":\"datetime_iso\",\"_data_\":\"2024\"}", 41, "isoformat");
    expect_decode_error("{\"_type_\":\"decimal_str\",\"_data_\":\"x\"}", 37, "Decimal");
    expect_decode_error("{\"_type_\":1,\"_data_\":1}", 23, "_type_");
}

void test_depth_is_limited_both_ways(void **state)
{
    (void)state;
    size_t depth = ESG_JSON_MAX_DEPTH + 10;
    char *text = malloc(2 * depth + 1);
    for (size_t i = 0; i < depth; i++) {
        text[i] = '[';
        text[depth + i] = ']';
    }
    text[2 * depth] = '\0';
    expect_decode_error(text, 2 * depth, "deeper");
    free(text);

    esg_value *root = esg_value_array(), *inner = root;
    for (size_t i = 0; i < depth; i++) {
        esg_value *child = esg_value_array();
        assert_int_equal(esg_array_append(inner, child), ESG_OK);
        inner = child;
    }
    char *json = NULL;
    esg_error err;
    assert_int_equal(esg_json_encode(root, &json, NULL, &err), ESG_EINVAL);
    assert_null(json);
    esg_value_free(root);
}

void test_scalars_and_nul_in_strings(void **state)
{
    (void)state;
    esg_value *value = NULL;
    esg_error err;
    assert_esg_ok(esg_json_decode("\"a\\u0000b\"", 10, &value, &err), &err);
    size_t len = 0;
    const char *s = esg_value_as_string(value, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 3);
    assert_encodes(value, "\"a\\u0000b\"");
    /* In a key too, as Python's json reads it (jansson does not). */
    assert_esg_ok(esg_json_decode("{\"a\\u0000b\":1}", 14, &value, &err), &err);
    assert_encodes(value, "{\"a\\u0000b\":1}");
    assert_esg_ok(esg_json_decode(" true ", 6, &value, &err), &err);
    assert_encodes(value, "true");
    assert_esg_ok(esg_json_decode("-9223372036854775808", 20, &value, &err), &err);
    assert_encodes(value, "-9223372036854775808");
}

/* Strings Python's json would not read as UTF-8 text: a UTF-16 surrogate escape not in a pair
 * (yajl alone would read "\ud800\u0041" as one code point and a lone one as '?'), and raw bytes
 * that are not UTF-8 (overlong forms, encoded surrogates, past U+10FFFF, cut short), in strings
 * and keys. An escaped backslash before "ud800" is no escape, nor is "udc00" after another
 * character (the fuzzer's find: a high surrogate followed by "]udeEa" was taken for a pair). */
void test_strings_must_be_unicode(void **state)
{
    (void)state;
    const struct {
        const char *text, *fragment;
    } refused[] = {
        {"\"\\ud800\"", "surrogate"},
        {"\"\\udc00\"", "surrogate"},
        {"\"\\ud800\\u0041\"", "surrogate"},
        {"\"\\ud800x\"", "surrogate"},
        {"{\"tE\\udafa]udeEa_\":\"2D0\"}", "surrogate"},
        {"[\"\\uDBFF\\uDBFF\"]", "surrogate"},
        {"\"a\\ud83d", "surrogate"},
        {"\"\xc0\x80\"", "UTF-8"},
        {"\"\xed\xa0\x80\"", "UTF-8"},
        {"\"\xf4\x90\x80\x80\"", "JSON"},
        {"\"\xe2\x82\"", "JSON"},
        {"{\"\xed\xb0\x80\":1}", "UTF-8"},
        {"[\"ok\",\"\xff\"]", "JSON"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect_decode_error(refused[i].text, strlen(refused[i].text), refused[i].fragment);
    esg_value *value = NULL;
    esg_error err;
    const char *pair = "\"\\ud83d\\uDE00\\\\ud800\"";
    assert_esg_ok(esg_json_decode(pair, strlen(pair), &value, &err), &err);
    assert_encodes(value, "\"\xf0\x9f\x98\x80\\\\ud800\"");
}

/* Objects past the pairwise search (more than 32 members) merge repeated keys as small ones do:
 * the last value, in the first one's place. */
void test_repeated_keys_in_big_objects(void **state)
{
    (void)state;
    char text[4096], expected[4096];
    size_t t = 0, e = 0;
    t += (size_t)snprintf(text + t, sizeof text - t, "{");
    e += (size_t)snprintf(expected + e, sizeof expected - e, "{");
    for (int i = 0; i < 100; i++) {
        t += (size_t)snprintf(text + t, sizeof text - t, "\"k%d\":%d,", i, i);
        e += (size_t)snprintf(expected + e, sizeof expected - e, "\"k%d\":%d%s", i,
                              i == 5    ? -2
                              : i == 50 ? -3
                                        : i,
                              i < 99 ? "," : "}");
    }
    snprintf(text + t, sizeof text - t, "\"k5\":-1,\"k50\":-3,\"k5\":-2}");
    esg_value *value = NULL;
    esg_error err;
    assert_esg_ok(esg_json_decode(text, strlen(text), &value, &err), &err);
    assert_encodes(value, expected);
}

/* Numbers: integers beyond 64 bits and reals beyond a double are refused; reals too small for a
 * double read as 0, and long ones are read whole. */
void test_numbers_at_their_limits(void **state)
{
    (void)state;
    expect_decode_error("-9223372036854775809", 20, "64 bits");
    expect_decode_error("[1e400]", 7, "out of range");
    expect_decode_error("-1.5e309", 8, "out of range");
    esg_value *value = NULL;
    esg_error err;
    assert_esg_ok(esg_json_decode("[1e-400,-0.0,9223372036854775807]", 33, &value, &err), &err);
    assert_encodes(value, "[0.0,-0.0,9223372036854775807]");
    char longer[200] = "0.";
    memset(longer + 2, '0', 120);
    strcpy(longer + 122, "15");
    assert_esg_ok(esg_json_decode(longer, strlen(longer), &value, &err), &err);
    assert_encodes(value, "1.5e-121");
}
