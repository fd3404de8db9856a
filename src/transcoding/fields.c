/* C structs described by field tables, to and from value objects: the attributes of declared
 * events, the state of declared aggregates, the dicts methods return. */
#include "esg/fields.h"

#include <string.h>

#include "core/alloc.h"

static bool is_pointer_kind(esg_field_kind kind)
{
    return kind == ESG_STRING || kind == ESG_DECIMAL || kind == ESG_ANY;
}

/* "a UUID", "an int"...: what a member of the field must be, for messages. */
static const char *kind_phrase(const esg_field *field)
{
    switch (field->kind) {
    case ESG_BOOL:
        return "a bool";
    case ESG_INT:
        return "an int";
    case ESG_FLOAT:
        return "a float";
    case ESG_STRING:
        return "a string";
    case ESG_UUID:
        return "a UUID";
    case ESG_DATETIME:
        return "a datetime";
    case ESG_DECIMAL:
        return "a Decimal";
    case ESG_ANY:
        return "a value";
    case ESG_CUSTOM:
        return field->transcoding != NULL ? field->transcoding->name : "a custom value";
    }
    return "a value";
}

static size_t kind_size(const esg_field *field)
{
    switch (field->kind) {
    case ESG_BOOL:
        return sizeof(bool);
    case ESG_INT:
        return sizeof(int64_t);
    case ESG_FLOAT:
        return sizeof(double);
    case ESG_STRING:
    case ESG_DECIMAL:
        return sizeof(char *);
    case ESG_UUID:
        return sizeof(esg_uuid);
    case ESG_DATETIME:
        return sizeof(esg_datetime);
    case ESG_ANY:
        return sizeof(esg_value *);
    case ESG_CUSTOM:
        return field->transcoding != NULL ? field->transcoding->size : 0;
    }
    return 0;
}

esg_status esg_struct_check(const esg_struct_type *type, const char *what, esg_error *err)
{
    for (const esg_field *f = type->fields; f != NULL && f->name != NULL; f++) {
        if (f->kind < ESG_BOOL || f->kind > ESG_CUSTOM)
            return esg_error_set(err, ESG_EINVAL, "%s's %s has no such kind (%d)", what, f->name,
                                 (int)f->kind);
        if (f->kind == ESG_CUSTOM && f->transcoding == NULL)
            return esg_error_set(err, ESG_EINVAL, "%s's %s is custom but has no transcoding", what,
                                 f->name);
        if (f->size != kind_size(f))
            return esg_error_set(err, ESG_EINVAL,
                                 "%s's %s is %zu bytes, but %s member is %zu: is its C type right?",
                                 what, f->name, f->size, kind_phrase(f), kind_size(f));
        if (f->offset + f->size > type->size ||
            (f->has_flag && f->has_offset + sizeof(bool) > type->size))
            return esg_error_set(err, ESG_EINVAL, "%s's %s lies outside its struct", what, f->name);
        if (f->is_optional && !f->has_flag && !is_pointer_kind(f->kind))
            return esg_error_set(err, ESG_EINVAL,
                                 "%s's %s can be None only with a bool member that says it is set",
                                 what, f->name);
        for (const esg_field *g = type->fields; g != f; g++)
            if (strcmp(g->name, f->name) == 0)
                return esg_error_set(err, ESG_EINVAL, "%s has two fields named %s", what, f->name);
    }
    return ESG_OK;
}

static bool is_set(const esg_field *field, const char *data)
{
    if (!field->is_optional)
        return true; /* a required pointer that is NULL is refused, not written as None */
    if (field->has_flag)
        return *(const bool *)(data + field->has_offset);
    return !is_pointer_kind(field->kind) || *(char *const *)(data + field->offset) != NULL;
}

/* The value of one member (which is set) as a new value (*out). */
static esg_status member_value(const esg_field *field, const char *member, const char *what,
                               esg_value **out, esg_error *err)
{
    esg_value *value = NULL;
    switch (field->kind) {
    case ESG_BOOL:
        value = esg_value_bool(*(const bool *)member);
        break;
    case ESG_INT:
        value = esg_value_int(*(const int64_t *)member);
        break;
    case ESG_FLOAT: {
        double real; /* copied out: the member is a double in a struct described as bytes */
        memcpy(&real, member, sizeof real);
        value = esg_value_float(real);
        break;
    }
    case ESG_STRING:
    case ESG_DECIMAL: {
        const char *text = *(char *const *)member;
        if (text == NULL)
            return esg_error_set(
                err, ESG_EINVAL,
                "%s's %s is NULL: declare it with ESG_NULLABLE_FIELD to store None", what,
                field->name);
        if (field->kind == ESG_DECIMAL) /* esg_value_decimal says what is wrong with bad text */
            return (*out = esg_value_decimal(text, err)) != NULL ? ESG_OK
                   : err                                         ? err->status
                                                                 : ESG_EINVAL;
        value = esg_value_string(text);
        break;
    }
    case ESG_UUID:
        value = esg_value_uuid((const esg_uuid *)member);
        break;
    case ESG_DATETIME:
        value = esg_value_datetime((const esg_datetime *)member);
        break;
    case ESG_ANY:
        if (*(esg_value *const *)member == NULL)
            return esg_error_set(
                err, ESG_EINVAL,
                "%s's %s is NULL: declare it with ESG_NULLABLE_FIELD to store None", what,
                field->name);
        value = esg_value_copy(*(esg_value *const *)member);
        break;
    case ESG_CUSTOM: {
        esg_value *data = NULL;
        esg_status rc = field->transcoding->encode(member, &data, err);
        if (rc != ESG_OK)
            return rc;
        value = esg_value_custom(field->transcoding->name, data);
        break;
    }
    }
    if (value == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory writing %s's %s", what, field->name);
    *out = value;
    return ESG_OK;
}

esg_status esg_struct_write_into(const esg_struct_type *type, const void *data, const char *what,
                                 esg_value *object, esg_error *err)
{
    esg_status rc = ESG_OK;
    const char *bytes = data;
    for (const esg_field *f = type->fields; rc == ESG_OK && f != NULL && f->name != NULL; f++) {
        esg_value *value = NULL;
        if (is_set(f, bytes))
            rc = member_value(f, bytes + f->offset, what, &value, err);
        else if ((value = esg_value_null()) == NULL)
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory writing %s", what);
        if (rc == ESG_OK && esg_object_set(object, f->name, value) != ESG_OK)
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory writing %s", what);
    }
    return rc;
}

esg_status esg_struct_to_value(const esg_struct_type *type, const void *data, const char *what,
                               esg_value **out, esg_error *err)
{
    *out = NULL;
    esg_value *object = esg_value_object();
    if (object == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory writing %s", what);
    esg_status rc = esg_struct_write_into(type, data, what, object, err);
    if (rc != ESG_OK) {
        esg_value_free(object);
        return rc;
    }
    *out = object;
    return ESG_OK;
}

/* Fills one member from value (not None); with copy, pointers are copies. */
static esg_status member_from_value(const esg_field *field, const esg_value *value, bool copy,
                                    const char *what, char *member, esg_error *err)
{
    esg_type type = esg_value_type(value);
    bool fits = true;
    switch (field->kind) {
    case ESG_BOOL:
        fits = type == ESG_TYPE_BOOL;
        if (fits)
            *(bool *)member = esg_value_as_bool(value);
        break;
    case ESG_INT:
        fits = type == ESG_TYPE_INT;
        if (fits)
            *(int64_t *)member = esg_value_as_int(value);
        break;
    case ESG_FLOAT: /* Python writes an int where a float attribute was given one */
        fits = type == ESG_TYPE_FLOAT || type == ESG_TYPE_INT;
        if (fits) {
            double real =
                type == ESG_TYPE_INT ? (double)esg_value_as_int(value) : esg_value_as_float(value);
            memcpy(member, &real, sizeof real);
        }
        break;
    case ESG_STRING:
    case ESG_DECIMAL: {
        size_t len = 0;
        const char *text = field->kind == ESG_STRING ? esg_value_as_string(value, &len)
                                                     : esg_value_as_decimal(value);
        fits = text != NULL;
        if (fits && field->kind == ESG_STRING && strlen(text) != len)
            return esg_error_set(err, ESG_EINVAL, "%s's %s holds a NUL character", what,
                                 field->name);
        if (fits)
            *(const char **)member = copy ? esg_strdup(text) : text;
        if (fits && copy && *(char **)member == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory reading %s's %s", what,
                                 field->name);
        break;
    }
    case ESG_UUID:
        fits = type == ESG_TYPE_UUID;
        if (fits)
            *(esg_uuid *)member = *esg_value_as_uuid(value);
        break;
    case ESG_DATETIME:
        fits = type == ESG_TYPE_DATETIME;
        if (fits)
            *(esg_datetime *)member = *esg_value_as_datetime(value);
        break;
    case ESG_ANY:
        *(const esg_value **)member = copy ? esg_value_copy(value) : value;
        if (*(esg_value **)member == NULL)
            return esg_error_set(err, ESG_ENOMEM, "out of memory reading %s's %s", what,
                                 field->name);
        break;
    case ESG_CUSTOM: {
        const char *name = esg_value_custom_name(value);
        fits = name != NULL && strcmp(name, field->transcoding->name) == 0;
        if (fits)
            return field->transcoding->decode(esg_value_custom_data(value), member, err);
        break;
    }
    }
    if (!fits)
        return esg_error_set(
            err, ESG_EINVAL, "%s's %s must be %s, not %s", what, field->name, kind_phrase(field),
            type == ESG_TYPE_CUSTOM ? esg_value_custom_name(value) : esg_type_name(type));
    return ESG_OK;
}

esg_status esg_struct_from_value(const esg_struct_type *type, const esg_value *object, bool copy,
                                 const char *what, void *data, esg_error *err)
{
    if (esg_value_type(object) != ESG_TYPE_OBJECT)
        return esg_error_set(err, ESG_EINVAL, "%s must be an object, not %s", what,
                             esg_type_name(esg_value_type(object)));
    char *bytes = data;
    esg_status rc = ESG_OK;
    for (const esg_field *f = type->fields; rc == ESG_OK && f != NULL && f->name != NULL; f++) {
        const esg_value *value = esg_object_get(object, f->name);
        bool is_none = value == NULL || esg_value_type(value) == ESG_TYPE_NULL;
        if (is_none && f->kind == ESG_ANY && value != NULL && !f->is_optional)
            is_none = false; /* a required value may be None itself */
        if (is_none && !f->is_optional)
            rc = value == NULL ? esg_error_set(err, ESG_EINVAL, "%s has no %s", what, f->name)
                               : esg_error_set(err, ESG_EINVAL, "%s's %s must be %s, not None",
                                               what, f->name, kind_phrase(f));
        else if (!is_none)
            rc = member_from_value(f, value, copy, what, bytes + f->offset, err);
        if (rc == ESG_OK && f->has_flag)
            *(bool *)(bytes + f->has_offset) = !is_none;
    }
    if (rc != ESG_OK)
        esg_struct_clear(type, data, copy);
    return rc;
}

void esg_struct_clear(const esg_struct_type *type, void *data, bool owned)
{
    char *bytes = data;
    for (const esg_field *f = type->fields; f != NULL && f->name != NULL; f++) {
        char *member = bytes + f->offset;
        if (f->kind == ESG_CUSTOM) {
            if (f->transcoding->free != NULL)
                f->transcoding->free(member);
            memset(member, 0, f->size);
        } else if (f->kind == ESG_STRING || f->kind == ESG_DECIMAL) {
            if (owned)
                esg_free(*(char **)member);
            *(char **)member = NULL;
        } else if (f->kind == ESG_ANY) {
            if (owned)
                esg_value_free(*(esg_value **)member);
            *(esg_value **)member = NULL;
        }
        if (f->has_flag)
            *(bool *)(bytes + f->has_offset) = false;
    }
}

esg_status esg_set_string(char **member, const char *text, esg_error *err)
{
    char *copy = NULL;
    if (text != NULL && (copy = esg_strdup(text)) == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory copying a string");
    esg_free(*member);
    *member = copy;
    return ESG_OK;
}
