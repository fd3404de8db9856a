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
    memcpy(long_text, "doing this", 10);
    long_text[sizeof long_text - 1] = '\0';
    /* Too long: the start and the end are kept (the end of a wrapped message is its cause). */
    esg_error_set(&err, ESG_EINVAL, "%s: certificate verify failed", long_text);
    assert_true(strlen(err.message) < ESG_ERROR_MESSAGE_SIZE);
    assert_true(strlen(err.message) > ESG_ERROR_MESSAGE_SIZE - 10);
    assert_memory_equal(err.message, "doing this", 10);
    assert_non_null(strstr(err.message, " ... "));
    size_t len = strlen(err.message);
    assert_string_equal(err.message + len - 25, "certificate verify failed");
    /* A message may quote err's own message. */
    esg_error_set(&err, ESG_EIO, "short");
    esg_error_set(&err, ESG_EIO, "again: %s", err.message);
    assert_string_equal(err.message, "again: short");
    /* A character is never cut in two. */
    char accents[900] = "";
    for (size_t i = 0; i + 2 < sizeof accents; i += 2)
        memcpy(accents + i, "\xc3\xa9", 2);
    esg_error_set(&err, ESG_EINVAL, "%s", accents);
    len = strlen(err.message);
    for (size_t i = 0; i < len; i++) /* every lead byte 0xC3 is followed by its 0xA9 */
        if ((unsigned char)err.message[i] == 0xC3)
            assert_int_equal((unsigned char)err.message[i + 1], 0xA9);
    assert_int_not_equal((unsigned char)err.message[0], 0xA9);
}

void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(esg_status_name(ESG_OK), "ESG_OK");
    assert_string_equal(esg_status_name(ESG_ECONFLICT), "ESG_ECONFLICT");
    assert_string_equal(esg_status_name((esg_status)-99), "ESG_UNKNOWN_STATUS");
}
