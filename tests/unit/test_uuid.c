/* Tests of UUID generation and the text forms Python reads and writes. */
#include "testutil.h"
#include "unit_tests.h"

#include <string.h>

void test_uuid5_url_matches_the_reference(void **state)
{
    (void)state;
    /* From tests/vectors/stored_events.json: ids derived from the order id. */
    esg_uuid id;
    char text[ESG_UUID_STR_SIZE];
    esg_uuid5_url(&id, "/reservations/e355209c-25cc-45cb-a0a5-29c302b8e18f/");
    esg_uuid_str(&id, text);
    assert_string_equal(text, "9989335a-2c46-5fd7-9347-25d98bc29186");
    esg_uuid5_url(&id, "/payments/e355209c-25cc-45cb-a0a5-29c302b8e18f/");
    esg_uuid_str(&id, text);
    assert_string_equal(text, "b7ed7263-890d-519a-b74b-ab73be89f967");
}

void test_uuid4_is_random_version_4(void **state)
{
    (void)state;
    esg_uuid a, b;
    esg_uuid4(&a);
    esg_uuid4(&b);
    assert_false(esg_uuid_equal(&a, &b));
    assert_int_equal(a.bytes[6] >> 4, 4);
    assert_int_equal(a.bytes[8] & 0xc0, 0x80);
}

void test_parse_accepts_python_forms(void **state)
{
    (void)state;
    const char *forms[] = {
        "12345678123456781234567812345678",       "12345678-1234-5678-1234-567812345678",
        "{12345678-1234-5678-1234-567812345678}", "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        esg_uuid id;
        esg_error err;
        char hex[ESG_UUID_HEX_SIZE];
        assert_esg_ok(esg_uuid_parse(forms[i], strlen(forms[i]), &id, &err), &err);
        esg_uuid_hex(&id, hex);
        assert_string_equal(hex, "12345678123456781234567812345678");
    }
    esg_uuid id;
    esg_error err;
    char hex[ESG_UUID_HEX_SIZE];
    assert_esg_ok(esg_uuid_parse("ABCDEF12123456781234567812345678", 32, &id, &err), &err);
    esg_uuid_hex(&id, hex);
    assert_string_equal(hex, "abcdef12123456781234567812345678");
}

void test_parse_refuses_bad_text(void **state)
{
    (void)state;
    const char *bad[] = {"", "1234", "1234567812345678123456781234567g",
                         "123456781234567812345678123456789", "not-a-uuid"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_uuid id;
        esg_error err;
        assert_int_equal(esg_uuid_parse(bad[i], strlen(bad[i]), &id, &err), ESG_EINVAL);
        assert_non_null(strstr(err.message, "badly formed"));
    }
}
