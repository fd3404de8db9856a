/* Tests of the value tree: objects keep insertion order, ownership rules,
 * copies, equality, and decimals in Python's str(Decimal) form. */
#include "testutil.h"
#include "unit_tests.h"

#include <string.h>

void test_object_order_replace_take(void **state)
{
    (void)state;
    esg_value *object = esg_value_object();
    assert_int_equal(esg_object_set(object, "b", esg_value_int(1)), ESG_OK);
    assert_int_equal(esg_object_set(object, "a", esg_value_int(2)), ESG_OK);
    assert_int_equal(esg_object_set(object, "b", esg_value_int(3)), ESG_OK);
    assert_int_equal(esg_object_len(object), 2);
    assert_string_equal(esg_object_key_at(object, 0), "b");
    assert_int_equal(esg_value_as_int(esg_object_value_at(object, 0)), 3);
    assert_string_equal(esg_object_key_at(object, 1), "a");
    esg_value *taken = esg_object_take(object, "b");
    assert_int_equal(esg_value_as_int(taken), 3);
    esg_value_free(taken);
    assert_int_equal(esg_object_len(object), 1);
    assert_null(esg_object_take(object, "b"));
    assert_null(esg_object_get(object, "zz"));
    esg_value_free(object);
}

void test_append_takes_ownership_even_when_refused(void **state)
{
    (void)state;
    esg_value *not_array = esg_value_int(1);
    /* The item is freed by the refusing call: LeakSanitizer checks that. */
    assert_int_equal(esg_array_append(not_array, esg_value_string("x")), ESG_EINVAL);
    assert_int_equal(esg_object_set(not_array, "k", esg_value_string("x")), ESG_EINVAL);
    assert_int_equal(esg_array_append(not_array, NULL), ESG_ENOMEM);
    esg_value_free(not_array);
}

void test_accessors_return_zero_for_other_types(void **state)
{
    (void)state;
    esg_value *number = esg_value_int(5);
    size_t len = 99;
    assert_null(esg_value_as_string(number, &len));
    assert_int_equal(len, 0);
    assert_null(esg_value_as_uuid(number));
    assert_null(esg_value_as_datetime(number));
    assert_null(esg_value_as_decimal(number));
    assert_false(esg_value_as_bool(number));
    assert_true(esg_value_as_float(number) == 0.0);
    assert_int_equal(esg_array_len(number), 0);
    assert_null(esg_array_get(number, 0));
    assert_string_equal(esg_type_name(esg_value_type(number)), "int");
    esg_value_free(number);
}

void test_copy_and_equal(void **state)
{
    (void)state;
    esg_uuid id;
    esg_datetime now;
    esg_error err;
    esg_uuid4(&id);
    esg_datetime_now_utc(&now);
    esg_value *root = esg_value_object();
    esg_value *list = esg_value_array();
    assert_int_equal(esg_array_append(list, esg_value_uuid(&id)), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_datetime(&now)), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_decimal("1.50", &err)), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_string_n("a\0b", 3)), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_float(0.5)), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_null()), ESG_OK);
    assert_int_equal(esg_array_append(list, esg_value_bool(true)), ESG_OK);
    assert_int_equal(esg_object_set(root, "list", list), ESG_OK);
    esg_value *copy = esg_value_copy(root);
    assert_true(esg_value_equal(root, copy));
    assert_int_equal(esg_object_set(copy, "extra", esg_value_int(1)), ESG_OK);
    assert_false(esg_value_equal(root, copy));
    esg_value_free(copy);
    esg_value_free(root);
}

void test_decimal_canonical_text(void **state)
{
    (void)state;
    /* Expected texts are what Python 3.11 prints for str(Decimal(input)). */
    const char *cases[][2] = {
        {"10", "10"},
        {"1E+2", "1E+2"},
        {"0.0000001", "1E-7"},
        {"0.00", "0.00"},
        {"0E+3", "0E+3"},
        {"-0", "-0"},
        {"007.50", "7.50"},
        {" 3.14 ", "3.14"},
        {"1e-7", "1E-7"},
        {"123.456e3", "123456"},
        {"-Inf", "-Infinity"},
        {"nan", "NaN"},
        {"sNaN0012", "sNaN12"},
        {".5", "0.5"},
        {"5.", "5"},
        {"1.23E+20", "1.23E+20"},
        {"0.000001", "0.000001"},
        {"1e400", "1E+400"},
        {"3.14159", "3.14159"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esg_error err;
        esg_value *value = esg_value_decimal(cases[i][0], &err);
        if (value == NULL)
            fail_msg("Decimal('%s'): %s", cases[i][0], err.message);
        assert_string_equal(esg_value_as_decimal(value), cases[i][1]);
        esg_value_free(value);
    }
    const char *bad[] = {"", "abc", "1.2.3", "1e", "1e+", "--1", "1 2", "NaNx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_error err;
        assert_null(esg_value_decimal(bad[i], &err));
        assert_int_equal(err.status, ESG_EINVAL);
    }
}
