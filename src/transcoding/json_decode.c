/* JSON text to values: jansson parses (strict RFC 8259, UTF-8 checked), then
 * the tree is converted, turning {"_type_","_data_"} pairs into UUIDs,
 * datetimes and decimals as eventsourcing's JSONTranscoder does. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "transcoding/decimal.h"
#include "transcoding/value_internal.h"
#include "core/alloc.h"

static esg_status convert(json_t *json, int depth, esg_value **out, esg_error *err);

/* Decodes the value of a two-key transcoded object. Errors read like
 * Python's, which is what a reference client would see. */
static esg_status decode_custom(const char *type, json_t *data, int depth, esg_value **out,
                                esg_error *err)
{
    const char *text = json_is_string(data) ? json_string_value(data) : NULL;
    size_t text_len = text ? json_string_length(data) : 0;
    if (strcmp(type, "uuid_hex") == 0) {
        esg_uuid uuid;
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "uuid_hex data must be a string");
        esg_status rc = esg_uuid_parse(text, text_len, &uuid, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_value_uuid(&uuid);
    } else if (strcmp(type, "datetime_iso") == 0) {
        esg_datetime dt;
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "datetime_iso data must be a string");
        esg_status rc = esg_datetime_parse(text, text_len, &dt, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_value_datetime(&dt);
    } else if (strcmp(type, "decimal_str") == 0) {
        if (text == NULL)
            return esg_error_set(err, ESG_EINVAL, "decimal_str data must be a string");
        char *canonical = NULL;
        esg_status rc = esg_decimal_canonical(text, text_len, &canonical, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_calloc(1, sizeof **out);
        if (*out == NULL) {
            esg_free(canonical);
        } else {
            (*out)->type = ESG_TYPE_DECIMAL;
            (*out)->as.string.data = canonical;
            (*out)->as.string.len = strlen(canonical);
        }
    } else if (esg_transcoding_find(type) != NULL) {
        esg_value *value = NULL;
        esg_status rc = convert(data, depth + 1, &value, err);
        if (rc != ESG_OK)
            return rc;
        *out = esg_value_custom(type, value);
    } else {
        return esg_error_set(err, ESG_EINVAL,
                             "Data serialized with name '%.64s' is not deserializable. Please "
                             "register a custom transcoding for this type.",
                             type);
    }
    if (*out == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
    return ESG_OK;
}

static esg_status convert_object(json_t *json, int depth, esg_value **out, esg_error *err)
{
    if (json_object_size(json) == 2) {
        json_t *type = json_object_get(json, "_type_");
        json_t *data = json_object_get(json, "_data_");
        if (type != NULL && data != NULL) {
            if (!json_is_string(type))
                return esg_error_set(err, ESG_EINVAL,
                                     "a transcoded value's _type_ must be a "
                                     "string");
            return decode_custom(json_string_value(type), data, depth, out, err);
        }
    }
    esg_value *object = esg_value_object();
    if (object == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
    for (void *it = json_object_iter(json); it != NULL; it = json_object_iter_next(json, it)) {
        esg_value *member = NULL;
        esg_status rc = convert(json_object_iter_value(it), depth + 1, &member, err);
        if (rc == ESG_OK) {
            /* jansson has already merged duplicate keys (the last value wins, in
             * the first one's place, as in Python), so no lookup is needed. */
            rc = esg_object_append_new_n(object, json_object_iter_key(it),
                                         json_object_iter_key_len(it), member);
            if (rc != ESG_OK)
                esg_error_set(err, rc, "out of memory decoding JSON");
        }
        if (rc != ESG_OK) {
            esg_value_free(object);
            return rc;
        }
    }
    *out = object;
    return ESG_OK;
}

static esg_status convert(json_t *json, int depth, esg_value **out, esg_error *err)
{
    if (depth > ESG_JSON_MAX_DEPTH)
        return esg_error_set(err, ESG_EINVAL, "JSON nested deeper than %d levels",
                             ESG_JSON_MAX_DEPTH);
    *out = NULL;
    switch (json_typeof(json)) {
    case JSON_OBJECT:
        return convert_object(json, depth, out, err);
    case JSON_ARRAY: {
        esg_value *array = esg_value_array();
        if (array == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
        for (size_t i = 0; i < json_array_size(json); i++) {
            esg_value *item = NULL;
            esg_status rc = convert(json_array_get(json, i), depth + 1, &item, err);
            if (rc == ESG_OK && (rc = esg_array_append(array, item)) != ESG_OK)
                esg_error_set(err, rc, "out of memory decoding JSON");
            if (rc != ESG_OK) {
                esg_value_free(array);
                return rc;
            }
        }
        *out = array;
        return ESG_OK;
    }
    case JSON_STRING:
        *out = esg_value_string_n(json_string_value(json), json_string_length(json));
        break;
    case JSON_INTEGER:
        *out = esg_value_int((int64_t)json_integer_value(json));
        break;
    case JSON_REAL:
        *out = esg_value_float(json_real_value(json));
        break;
    case JSON_TRUE:
        *out = esg_value_bool(true);
        break;
    case JSON_FALSE:
        *out = esg_value_bool(false);
        break;
    case JSON_NULL:
        *out = esg_value_null();
        break;
    }
    if (*out == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
    return ESG_OK;
}

esg_status esg_json_decode(const char *text, size_t text_len, esg_value **out, esg_error *err)
{
    *out = NULL;
    if (text == NULL)
        return esg_error_set(err, ESG_EINVAL, "no JSON text");
    json_error_t error;
    json_t *json = json_loadb(text, text_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (json == NULL) {
        switch (json_error_code(&error)) {
        case json_error_out_of_memory:
            return esg_error_set(err, ESG_ENOMEM, "out of memory decoding JSON");
        case json_error_numeric_overflow:
            return esg_error_set(err, ESG_EINVAL,
                                 "JSON number out of range at position %d: integers must fit "
                                 "in 64 bits, and reals in a double (%s)",
                                 error.position, error.text);
        default:
            return esg_error_set(err, ESG_EINVAL, "invalid JSON at position %d: %s", error.position,
                                 error.text);
        }
    }
    esg_status rc = convert(json, 0, out, err);
    json_decref(json);
    return rc;
}
