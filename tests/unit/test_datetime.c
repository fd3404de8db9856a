/* Tests of datetimes in Python's isoformat() and fromisoformat() forms. */
#include "testutil.h"
#include "unit_tests.h"

#include <string.h>
#include <time.h>

static void roundtrip(const char *text, const char *expected)
{
    esg_datetime dt;
    esg_error err;
    char out[ESG_DATETIME_ISO_SIZE];
    assert_esg_ok(esg_datetime_parse(text, strlen(text), &dt, &err), &err);
    size_t n = esg_datetime_format(&dt, out);
    assert_string_equal(out, expected);
    assert_int_equal(n, strlen(expected));
}

void test_isoformat_forms(void **state)
{
    (void)state;
    roundtrip("2024-01-02T03:04:05.678901+00:00", "2024-01-02T03:04:05.678901+00:00");
    roundtrip("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05+00:00");
    roundtrip("2024-01-02T03:04:05.001000+05:30", "2024-01-02T03:04:05.001000+05:30");
    roundtrip("2024-01-02T03:04:05.000006", "2024-01-02T03:04:05.000006");
    roundtrip("2024-01-02T03:04:05Z", "2024-01-02T03:04:05+00:00");
    roundtrip("2024-01-02 03:04:05.5-08:00", "2024-01-02T03:04:05.500000-08:00");
    roundtrip("2024-01-02", "2024-01-02T00:00:00");
    roundtrip("2024-01-02T03:04", "2024-01-02T03:04:00");
    roundtrip("2024-02-29T00:00:00+01:02:03", "2024-02-29T00:00:00+01:02:03");
    roundtrip("0005-12-31T23:59:59.999999-23:59:59", "0005-12-31T23:59:59.999999-23:59:59");
}

void test_refuses_bad_text(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "2024-1-02",
                         "2023-02-29T00:00:00",
                         "2024-13-01",
                         "2024-01-02T24:00:00",
                         "2024-01-02T03:04:05+",
                         "2024-01-02T03:04:05.",
                         "2024-01-02T03:04:05 trailing",
                         "not a date"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_datetime dt;
        esg_error err;
        assert_int_equal(esg_datetime_parse(bad[i], strlen(bad[i]), &dt, &err), ESG_EINVAL);
        assert_non_null(strstr(err.message, "Invalid isoformat"));
    }
}

void test_now_is_utc_and_close_to_time(void **state)
{
    (void)state;
    esg_datetime now;
    esg_datetime_now_utc(&now);
    assert_true(now.has_offset);
    assert_int_equal(now.utc_offset_seconds, 0);
    int64_t seconds = esg_datetime_to_unix_us(&now) / 1000000;
    int64_t diff = seconds - (int64_t)time(NULL);
    assert_true(diff >= -2 && diff <= 2);
}

void test_unix_time_applies_offsets(void **state)
{
    (void)state;
    esg_datetime a, b;
    esg_error err;
    assert_esg_ok(esg_datetime_parse("1970-01-01T01:00:00+01:00", 25, &a, &err), &err);
    assert_int_equal(esg_datetime_to_unix_us(&a), 0);
    assert_esg_ok(esg_datetime_parse("2000-03-01T00:00:00.000001Z", 27, &b, &err), &err);
    assert_int_equal(esg_datetime_to_unix_us(&b), 951868800000001LL);
}
