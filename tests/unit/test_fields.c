/* Tests of field tables (C structs to and from attributes) and custom transcodings. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>
#include <string.h>

/* A C type of our own, stored as {"_type_":"money","_data_":{"cents":N,"currency":"EUR"}}. */
typedef struct money {
    int64_t cents;
    char currency[4];
} money;

static esg_status money_encode(const void *object, esg_value **out, esg_error *err)
{
    const money *m = object;
    esg_value *data = esg_value_object();
    if (esg_object_set(data, "cents", esg_value_int(m->cents)) != ESG_OK ||
        esg_object_set(data, "currency", esg_value_string(m->currency)) != ESG_OK) {
        esg_value_free(data);
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    }
    *out = data;
    return ESG_OK;
}

static esg_status money_decode(const esg_value *data, void *object, esg_error *err)
{
    money *m = object;
    size_t len = 0;
    const char *currency = esg_value_as_string(esg_object_get(data, "currency"), &len);
    if (esg_value_type(esg_object_get(data, "cents")) != ESG_TYPE_INT || currency == NULL ||
        len != 3)
        return esg_error_set(err, ESG_EINVAL, "money needs cents and a 3-letter currency");
    m->cents = esg_value_as_int(esg_object_get(data, "cents"));
    memcpy(m->currency, currency, 4);
    return ESG_OK;
}

static const esg_transcoding money_transcoding = {"money", sizeof(money), money_encode,
                                                  money_decode, NULL};

/* A struct with a member of every kind. */
typedef struct everything {
    bool flag;
    int64_t count;
    double ratio;
    char *name;
    esg_uuid id;
    esg_datetime when;
    char *price;
    esg_value *extra;
    money amount;
    esg_uuid parent; /* optional, set when has_parent */
    bool has_parent;
    char *note; /* nullable */
} everything;

static const esg_struct_type everything_type = ESG_STRUCT(
    everything, ESG_FIELD(everything, flag, ESG_BOOL), ESG_FIELD(everything, count, ESG_INT),
    ESG_FIELD(everything, ratio, ESG_FLOAT), ESG_FIELD(everything, name, ESG_STRING),
    ESG_FIELD(everything, id, ESG_UUID), ESG_FIELD(everything, when, ESG_DATETIME),
    ESG_FIELD(everything, price, ESG_DECIMAL), ESG_FIELD(everything, extra, ESG_ANY),
    ESG_CUSTOM_FIELD(everything, amount, money_transcoding),
    ESG_OPTIONAL_FIELD(everything, parent, ESG_UUID, has_parent),
    ESG_NULLABLE_FIELD(everything, note, ESG_STRING));

static char *encode(const esg_value *value)
{
    char *json = NULL;
    size_t len = 0;
    esg_error err = {0};
    assert_esg_ok(esg_json_encode(value, &json, &len, &err), &err);
    return json;
}

static esg_value *decode(const char *json)
{
    esg_value *value = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_json_decode(json, strlen(json), &value, &err), &err);
    return value;
}

static const char everything_json[] =
    "{\"flag\":true,\"count\":-7,\"ratio\":0.5,\"name\":\"caf\xc3\xa9\","
    "\"id\":{\"_type_\":\"uuid_hex\",\"_data_\":\"12345678123456781234567812345678\"},"
    "\"when\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2024-01-02T03:04:05+00:00\"},"
    "\"price\":{\"_type_\":\"decimal_str\",\"_data_\":\"1.50\"},\"extra\":[1,{\"a\":null}],"
    "\"amount\":{\"_type_\":\"money\",\"_data_\":{\"cents\":250,\"currency\":\"EUR\"}},"
    "\"parent\":null,\"note\":null}";

void test_struct_round_trips_every_kind(void **state)
{
    (void)state;
    esg_error err = {0};
    assert_esg_ok(esg_transcoding_register(&money_transcoding, &err), &err);
    assert_esg_ok(esg_struct_check(&everything_type, "everything", &err), &err);
    esg_value *object = decode(everything_json);
    for (int copy = 0; copy < 2; copy++) {
        everything data = {0};
        assert_esg_ok(
            esg_struct_from_value(&everything_type, object, copy, "everything", &data, &err), &err);
        assert_true(data.flag);
        assert_int_equal(data.count, -7);
        assert_true(data.ratio == 0.5);
        assert_string_equal(data.name, "caf\xc3\xa9");
        assert_string_equal(data.price, "1.50");
        assert_int_equal(data.amount.cents, 250);
        assert_string_equal(data.amount.currency, "EUR");
        assert_false(data.has_parent);
        assert_null(data.note);
        /* Borrowed: pointers into the object; copied: the struct's own. */
        const char *name_in_object = esg_value_as_string(esg_object_get(object, "name"), NULL);
        assert_true(copy ? data.name != name_in_object : data.name == name_in_object);
        esg_value *back = NULL;
        assert_esg_ok(esg_struct_to_value(&everything_type, &data, "everything", &back, &err),
                      &err);
        char *json = encode(back);
        assert_string_equal(json, everything_json);
        esg_free(json);
        esg_value_free(back);
        esg_struct_clear(&everything_type, &data, copy);
        assert_null(data.name); /* cleared either way: no pointer into the object is left */
    }
    esg_value_free(object);
}

void test_optional_fields_take_none_and_values(void **state)
{
    (void)state;
    esg_error err = {0};
    everything data = {0};
    esg_value *object = decode(everything_json);
    esg_uuid parent;
    esg_uuid4(&parent);
    assert_int_equal(esg_object_set(object, "parent", esg_value_uuid(&parent)), ESG_OK);
    assert_int_equal(esg_object_set(object, "note", esg_value_string("hi")), ESG_OK);
    esg_value_free(esg_object_take(object, "extra")); /* a missing required value */
    assert_int_equal(
        esg_struct_from_value(&everything_type, object, true, "everything", &data, &err),
        ESG_EINVAL);
    assert_string_equal(err.message, "everything has no extra");
    assert_null(data.name); /* nothing left allocated after a failure */
    assert_int_equal(esg_object_set(object, "extra", esg_value_null()), ESG_OK);
    assert_esg_ok(esg_struct_from_value(&everything_type, object, true, "everything", &data, &err),
                  &err);
    assert_true(data.has_parent);
    assert_true(esg_uuid_equal(&data.parent, &parent));
    assert_string_equal(data.note, "hi");
    assert_int_equal(esg_value_type(data.extra),
                     ESG_TYPE_NULL); /* a required ESG_ANY may be None */
    esg_struct_clear(&everything_type, &data, true);
    esg_value_free(object);
}

void test_wrong_types_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *json;
        const char *message;
    } cases[] = {
        {"count", "\"7\"", "it's count must be an int, not string"},
        {"flag", "1", "it's flag must be a bool, not int"},
        {"id", "\"12345678123456781234567812345678\"", "it's id must be a UUID, not string"},
        {"name", "null", "it's name must be a string, not None"},
        {"name", "\"a\\u0000b\"", "it's name holds a NUL character"},
        {"amount", "{\"_type_\":\"decimal_str\",\"_data_\":\"1\"}",
         "it's amount must be money, not decimal"},
        {"amount", "{\"_type_\":\"money\",\"_data_\":{\"cents\":1}}",
         "money needs cents and a 3-letter currency"},
    };
    esg_error err = {0};
    assert_esg_ok(esg_transcoding_register(&money_transcoding, &err), &err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esg_value *object = decode(everything_json);
        assert_int_equal(esg_object_set(object, cases[i].key, decode(cases[i].json)), ESG_OK);
        everything data = {0};
        esg_status rc = esg_struct_from_value(&everything_type, object, true, "it", &data, &err);
        if (rc != ESG_EINVAL)
            fail_msg("%s: %s, not ESG_EINVAL", cases[i].key, esg_status_name(rc));
        if (strcmp(err.message, cases[i].message) != 0)
            fail_msg("%s: '%s', expected '%s'", cases[i].key, err.message, cases[i].message);
        esg_value_free(object);
    }
    everything data = {0};
    assert_int_equal(esg_struct_to_value(&everything_type, &data, "it", &(esg_value *){NULL}, &err),
                     ESG_EINVAL);
    assert_string_equal(err.message,
                        "it's name is NULL: declare it with ESG_NULLABLE_FIELD to store None");
}

typedef struct small {
    int count;    /* an int, not the int64_t ESG_INT is */
    char *name;   /* nullable with no flag is fine for a pointer */
    bool is_set;  /* a flag */
    int64_t size; /* optional by flag */
} small;

void test_tables_that_do_not_fit_are_refused(void **state)
{
    (void)state;
    const struct {
        esg_struct_type type;
        const char *message;
    } cases[] = {
        {ESG_STRUCT(small, ESG_FIELD(small, count, ESG_INT)),
         "small's count is 4 bytes, but an int member is 8: is its C type right?"},
        {ESG_STRUCT(small, ESG_FIELD(small, size, ESG_INT), ESG_FIELD(small, size, ESG_INT)),
         "small has two fields named size"},
        {ESG_STRUCT(small, ESG_NULLABLE_FIELD(small, size, ESG_INT)),
         "small's size can be None only with a bool member that says it is set"},
        {{.size = 4,
          .fields = (const esg_field[]){ESG_FIELD(small, size, ESG_INT), {.name = NULL}}},
         "small's size lies outside its struct"},
        {{.size = sizeof(small),
          .fields =
              (const esg_field[]){{.name = "x", .kind = ESG_CUSTOM, .size = 1}, {.name = NULL}}},
         "small's x is custom but has no transcoding"},
    };
    esg_error err = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(esg_struct_check(&cases[i].type, "small", &err), ESG_EINVAL);
        assert_string_equal(err.message, cases[i].message);
    }
    const esg_struct_type fine = ESG_STRUCT(small, ESG_NULLABLE_FIELD(small, name, ESG_STRING),
                                            ESG_OPTIONAL_FIELD(small, size, ESG_INT, is_set));
    assert_esg_ok(esg_struct_check(&fine, "small", &err), &err);
}

void test_transcodings_register_and_round_trip(void **state)
{
    (void)state;
    esg_error err = {0};
    static const esg_transcoding impostor = {"money", 1, money_encode, money_decode, NULL};
    static const esg_transcoding built_in = {"uuid_hex", 1, money_encode, money_decode, NULL};
    static const esg_transcoding unnamed = {NULL, 1, money_encode, money_decode, NULL};
    assert_esg_ok(esg_transcoding_register(&money_transcoding, &err), &err);
    assert_esg_ok(esg_transcoding_register(&money_transcoding, &err), &err); /* again: no-op */
    assert_int_equal(esg_transcoding_register(&impostor, &err), ESG_EINVAL);
    assert_string_equal(err.message, "another transcoding is registered as 'money'");
    assert_int_equal(esg_transcoding_register(&built_in, &err), ESG_EINVAL);
    assert_int_equal(esg_transcoding_register(&unnamed, &err), ESG_EINVAL);
    assert_ptr_equal(esg_transcoding_find("money"), &money_transcoding);
    assert_null(esg_transcoding_find("yen"));

    /* Registered: decoded as a custom value, written back byte for byte (nested too). */
    const char *json = "[{\"_type_\":\"money\",\"_data_\":{\"cents\":1,\"currency\":\"EUR\","
                       "\"at\":{\"_type_\":\"money\",\"_data_\":[]}}}]";
    esg_value *value = decode(json);
    const esg_value *custom = esg_array_get(value, 0);
    assert_int_equal(esg_value_type(custom), ESG_TYPE_CUSTOM);
    assert_string_equal(esg_value_custom_name(custom), "money");
    assert_int_equal(esg_value_as_int(esg_object_get(esg_value_custom_data(custom), "cents")), 1);
    char *again = encode(value);
    assert_string_equal(again, json);
    esg_value *copy = esg_value_copy(value);
    assert_true(esg_value_equal(copy, value));
    esg_free(again);
    esg_value_free(copy);
    esg_value_free(value);
    /* Unregistered: refused as Python's transcoder refuses it. */
    value = NULL;
    const char *yen = "{\"_type_\":\"yen\",\"_data_\":1}";
    assert_int_equal(esg_json_decode(yen, strlen(yen), &value, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "'yen' is not deserializable"));
}

void test_set_string_replaces_and_copies(void **state)
{
    (void)state;
    char *member = NULL;
    char text[] = "first";
    esg_error err = {0};
    assert_esg_ok(esg_set_string(&member, text, &err), &err);
    text[0] = 'F';
    assert_string_equal(member, "first");
    assert_esg_ok(esg_set_string(&member, "second", &err), &err);
    assert_string_equal(member, "second");
    assert_esg_ok(esg_set_string(&member, NULL, &err), &err);
    assert_null(member);
}
