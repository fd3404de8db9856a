/* Tests of the error object and status names. */
#include "testutil.h"
#include "unit_tests.h"

#include <string.h>

void test_set_returns_status_and_formats(void **state)
{
    (void)state;
    esg_error err;
    esg_error_clear(&err);
    assert_int_equal(esg_error_set(&err, ESG_ENOTFOUND, "no %s %d", "thing", 7), ESG_ENOTFOUND);
    assert_int_equal(err.status, ESG_ENOTFOUND);
    assert_string_equal(err.message, "no thing 7");
    esg_error_clear(&err);
    assert_int_equal(err.status, ESG_OK);
    assert_string_equal(err.message, "");
}

void test_set_accepts_null_and_truncates(void **state)
{
    (void)state;
    assert_int_equal(esg_error_set(NULL, ESG_EIO, "ignored"), ESG_EIO);
    esg_error err;
    char long_text[1000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    esg_error_set(&err, ESG_EINVAL, "%s", long_text);
    assert_int_equal(strlen(err.message), ESG_ERROR_MESSAGE_SIZE - 1);
}

void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(esg_status_name(ESG_OK), "ESG_OK");
    assert_string_equal(esg_status_name(ESG_ECONFLICT), "ESG_ECONFLICT");
    assert_string_equal(esg_status_name((esg_status)-99), "ESG_UNKNOWN_STATUS");
}
