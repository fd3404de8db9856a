/* The value tree: construction, access, copy, equality and freeing. */
#include "esg/value.h"

#include <stdlib.h>
#include <string.h>

#include "transcoding/decimal.h"
#include "transcoding/value_internal.h"
#include "core/grow.h"
#include "core/alloc.h"

static esg_value *new_value(esg_type type)
{
    esg_value *value = esg_calloc(1, sizeof *value);
    if (value != NULL)
        value->type = type;
    return value;
}

esg_value *esg_value_null(void)
{
    return new_value(ESG_TYPE_NULL);
}

esg_value *esg_value_bool(bool b)
{
    esg_value *value = new_value(ESG_TYPE_BOOL);
    if (value != NULL)
        value->as.boolean = b;
    return value;
}

esg_value *esg_value_int(int64_t i)
{
    esg_value *value = new_value(ESG_TYPE_INT);
    if (value != NULL)
        value->as.integer = i;
    return value;
}

esg_value *esg_value_float(double d)
{
    esg_value *value = new_value(ESG_TYPE_FLOAT);
    if (value != NULL)
        value->as.real = d;
    return value;
}

esg_value *esg_value_string_n(const char *s, size_t len)
{
    esg_value *value = new_value(ESG_TYPE_STRING);
    if (value == NULL)
        return NULL;
    value->as.string.data = esg_malloc(len + 1);
    if (value->as.string.data == NULL) {
        esg_free(value);
        return NULL;
    }
    if (len > 0)
        memcpy(value->as.string.data, s, len);
    value->as.string.data[len] = '\0';
    value->as.string.len = len;
    return value;
}

esg_value *esg_value_string(const char *s)
{
    return esg_value_string_n(s, strlen(s));
}

esg_value *esg_value_array(void)
{
    return new_value(ESG_TYPE_ARRAY);
}

esg_value *esg_value_object(void)
{
    return new_value(ESG_TYPE_OBJECT);
}

esg_value *esg_value_uuid(const esg_uuid *uuid)
{
    esg_value *value = new_value(ESG_TYPE_UUID);
    if (value != NULL)
        value->as.uuid = *uuid;
    return value;
}

esg_value *esg_value_datetime(const esg_datetime *dt)
{
    esg_value *value = new_value(ESG_TYPE_DATETIME);
    if (value != NULL)
        value->as.datetime = *dt;
    return value;
}

esg_value *esg_value_decimal(const char *text, esg_error *err)
{
    char *canonical = NULL;
    if (esg_decimal_canonical(text, strlen(text), &canonical, err) != ESG_OK)
        return NULL;
    esg_value *value = new_value(ESG_TYPE_DECIMAL);
    if (value == NULL) {
        esg_free(canonical);
        esg_error_set(err, ESG_ENOMEM, "out of memory making a decimal");
        return NULL;
    }
    value->as.string.data = canonical;
    value->as.string.len = strlen(canonical);
    return value;
}

esg_value *esg_value_custom(const char *type_name, esg_value *data)
{
    esg_value *value = data == NULL ? NULL : new_value(ESG_TYPE_CUSTOM);
    char *name = value == NULL ? NULL : esg_strdup(type_name);
    if (name == NULL) {
        esg_free(value);
        esg_value_free(data);
        return NULL;
    }
    value->as.custom.name = name;
    value->as.custom.data = data;
    return value;
}

void esg_value_free(esg_value *value)
{
    if (value == NULL)
        return;
    switch (value->type) {
    case ESG_TYPE_STRING:
    case ESG_TYPE_DECIMAL:
        esg_free(value->as.string.data);
        break;
    case ESG_TYPE_ARRAY:
        for (size_t i = 0; i < value->as.array.n_items; i++)
            esg_value_free(value->as.array.items[i]);
        esg_free(value->as.array.items);
        break;
    case ESG_TYPE_OBJECT:
        for (size_t i = 0; i < value->as.object.n_members; i++) {
            esg_free(value->as.object.members[i].key);
            esg_value_free(value->as.object.members[i].value);
        }
        esg_free(value->as.object.members);
        break;
    case ESG_TYPE_CUSTOM:
        esg_free(value->as.custom.name);
        esg_value_free(value->as.custom.data);
        break;
    default:
        break;
    }
    esg_free(value);
}

esg_type esg_value_type(const esg_value *value)
{
    return value->type;
}

const char *esg_type_name(esg_type type)
{
    switch (type) {
    case ESG_TYPE_NULL:
        return "null";
    case ESG_TYPE_BOOL:
        return "bool";
    case ESG_TYPE_INT:
        return "int";
    case ESG_TYPE_FLOAT:
        return "float";
    case ESG_TYPE_STRING:
        return "string";
    case ESG_TYPE_ARRAY:
        return "array";
    case ESG_TYPE_OBJECT:
        return "object";
    case ESG_TYPE_UUID:
        return "uuid";
    case ESG_TYPE_DATETIME:
        return "datetime";
    case ESG_TYPE_DECIMAL:
        return "decimal";
    case ESG_TYPE_CUSTOM:
        return "custom";
    }
    return "unknown";
}

bool esg_value_as_bool(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_BOOL && value->as.boolean;
}

int64_t esg_value_as_int(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_INT ? value->as.integer : 0;
}

double esg_value_as_float(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_FLOAT ? value->as.real : 0.0;
}

const char *esg_value_as_string(const esg_value *value, size_t *len)
{
    if (value == NULL || value->type != ESG_TYPE_STRING) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = value->as.string.len;
    return value->as.string.data;
}

const esg_uuid *esg_value_as_uuid(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_UUID ? &value->as.uuid : NULL;
}

const esg_datetime *esg_value_as_datetime(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_DATETIME ? &value->as.datetime : NULL;
}

const char *esg_value_as_decimal(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_DECIMAL ? value->as.string.data : NULL;
}

const char *esg_value_custom_name(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_CUSTOM ? value->as.custom.name : NULL;
}

esg_value *esg_value_custom_data(const esg_value *value)
{
    return value != NULL && value->type == ESG_TYPE_CUSTOM ? value->as.custom.data : NULL;
}

/* ---- Arrays ---- */

esg_status esg_array_append(esg_value *array, esg_value *item)
{
    if (item == NULL)
        return ESG_ENOMEM;
    if (array == NULL || array->type != ESG_TYPE_ARRAY) {
        esg_value_free(item);
        return ESG_EINVAL;
    }
    struct esg_array *a = &array->as.array;
    if (!esg_grow((void **)&a->items, &a->capacity, a->n_items + 1, sizeof *a->items)) {
        esg_value_free(item);
        return ESG_ENOMEM;
    }
    a->items[a->n_items++] = item;
    return ESG_OK;
}

size_t esg_array_len(const esg_value *array)
{
    return array != NULL && array->type == ESG_TYPE_ARRAY ? array->as.array.n_items : 0;
}

esg_value *esg_array_get(const esg_value *array, size_t index)
{
    if (array == NULL || array->type != ESG_TYPE_ARRAY || index >= array->as.array.n_items)
        return NULL;
    return array->as.array.items[index];
}

/* ---- Objects ---- */

static struct esg_member *find_member(const esg_value *object, const char *key, size_t key_len)
{
    for (size_t i = 0; i < object->as.object.n_members; i++) {
        struct esg_member *member = &object->as.object.members[i];
        if (member->key_len == key_len && memcmp(member->key, key, key_len) == 0)
            return member;
    }
    return NULL;
}

esg_status esg_object_append_new_n(esg_value *object, const char *key, size_t key_len,
                                   esg_value *item)
{
    if (item == NULL)
        return ESG_ENOMEM;
    if (object == NULL || object->type != ESG_TYPE_OBJECT) {
        esg_value_free(item);
        return ESG_EINVAL;
    }
    struct esg_object *o = &object->as.object;
    char *key_copy = esg_malloc(key_len + 1);
    if (key_copy == NULL)
        goto nomem;
    memcpy(key_copy, key, key_len);
    key_copy[key_len] = '\0';
    if (!esg_grow((void **)&o->members, &o->capacity, o->n_members + 1, sizeof *o->members))
        goto nomem;
    o->members[o->n_members++] = (struct esg_member){key_copy, key_len, item};
    return ESG_OK;
nomem:
    esg_free(key_copy);
    esg_value_free(item);
    return ESG_ENOMEM;
}

esg_status esg_object_set_n(esg_value *object, const char *key, size_t key_len, esg_value *item)
{
    if (item == NULL)
        return ESG_ENOMEM;
    if (object == NULL || object->type != ESG_TYPE_OBJECT) {
        esg_value_free(item);
        return ESG_EINVAL;
    }
    struct esg_member *existing = find_member(object, key, key_len);
    if (existing != NULL) {
        esg_value_free(existing->value);
        existing->value = item;
        return ESG_OK;
    }
    return esg_object_append_new_n(object, key, key_len, item);
}

esg_status esg_object_set(esg_value *object, const char *key, esg_value *item)
{
    return esg_object_set_n(object, key, strlen(key), item);
}

size_t esg_object_len(const esg_value *object)
{
    return object != NULL && object->type == ESG_TYPE_OBJECT ? object->as.object.n_members : 0;
}

esg_value *esg_object_get(const esg_value *object, const char *key)
{
    if (object == NULL || object->type != ESG_TYPE_OBJECT)
        return NULL;
    struct esg_member *member = find_member(object, key, strlen(key));
    return member ? member->value : NULL;
}

const char *esg_object_key_at(const esg_value *object, size_t index)
{
    if (object == NULL || object->type != ESG_TYPE_OBJECT || index >= object->as.object.n_members)
        return NULL;
    return object->as.object.members[index].key;
}

esg_value *esg_object_value_at(const esg_value *object, size_t index)
{
    if (object == NULL || object->type != ESG_TYPE_OBJECT || index >= object->as.object.n_members)
        return NULL;
    return object->as.object.members[index].value;
}

esg_value *esg_object_take(esg_value *object, const char *key)
{
    if (object == NULL || object->type != ESG_TYPE_OBJECT)
        return NULL;
    struct esg_member *member = find_member(object, key, strlen(key));
    if (member == NULL)
        return NULL;
    esg_value *value = member->value;
    esg_free(member->key);
    struct esg_object *o = &object->as.object;
    size_t index = (size_t)(member - o->members);
    memmove(member, member + 1, (o->n_members - index - 1) * sizeof *member);
    o->n_members--;
    return value;
}

/* ---- Copy and equality ---- */

esg_value *esg_value_copy(const esg_value *value)
{
    switch (value->type) {
    case ESG_TYPE_NULL:
        return esg_value_null();
    case ESG_TYPE_BOOL:
        return esg_value_bool(value->as.boolean);
    case ESG_TYPE_INT:
        return esg_value_int(value->as.integer);
    case ESG_TYPE_FLOAT:
        return esg_value_float(value->as.real);
    case ESG_TYPE_STRING:
        return esg_value_string_n(value->as.string.data, value->as.string.len);
    case ESG_TYPE_UUID:
        return esg_value_uuid(&value->as.uuid);
    case ESG_TYPE_DATETIME:
        return esg_value_datetime(&value->as.datetime);
    case ESG_TYPE_DECIMAL: {
        esg_value *copy = new_value(ESG_TYPE_DECIMAL);
        if (copy == NULL)
            return NULL;
        copy->as.string.data = esg_strdup(value->as.string.data);
        copy->as.string.len = value->as.string.len;
        if (copy->as.string.data == NULL) {
            esg_free(copy);
            return NULL;
        }
        return copy;
    }
    case ESG_TYPE_CUSTOM:
        return esg_value_custom(value->as.custom.name, esg_value_copy(value->as.custom.data));
    case ESG_TYPE_ARRAY: {
        esg_value *copy = esg_value_array();
        for (size_t i = 0; copy != NULL && i < value->as.array.n_items; i++) {
            if (esg_array_append(copy, esg_value_copy(value->as.array.items[i])) != ESG_OK) {
                esg_value_free(copy);
                copy = NULL;
            }
        }
        return copy;
    }
    case ESG_TYPE_OBJECT: {
        esg_value *copy = esg_value_object();
        for (size_t i = 0; copy != NULL && i < value->as.object.n_members; i++) {
            const struct esg_member *member = &value->as.object.members[i];
            if (esg_object_append_new_n(copy, member->key, member->key_len,
                                        esg_value_copy(member->value)) != ESG_OK) {
                esg_value_free(copy);
                copy = NULL;
            }
        }
        return copy;
    }
    }
    return NULL;
}

bool esg_value_equal(const esg_value *a, const esg_value *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case ESG_TYPE_NULL:
        return true;
    case ESG_TYPE_BOOL:
        return a->as.boolean == b->as.boolean;
    case ESG_TYPE_INT:
        return a->as.integer == b->as.integer;
    case ESG_TYPE_FLOAT:
        return a->as.real == b->as.real;
    case ESG_TYPE_STRING:
    case ESG_TYPE_DECIMAL:
        return a->as.string.len == b->as.string.len &&
               memcmp(a->as.string.data, b->as.string.data, a->as.string.len) == 0;
    case ESG_TYPE_UUID:
        return esg_uuid_equal(&a->as.uuid, &b->as.uuid);
    case ESG_TYPE_DATETIME:
        return esg_datetime_equal(&a->as.datetime, &b->as.datetime);
    case ESG_TYPE_CUSTOM:
        return strcmp(a->as.custom.name, b->as.custom.name) == 0 &&
               esg_value_equal(a->as.custom.data, b->as.custom.data);
    case ESG_TYPE_ARRAY:
        if (a->as.array.n_items != b->as.array.n_items)
            return false;
        for (size_t i = 0; i < a->as.array.n_items; i++)
            if (!esg_value_equal(a->as.array.items[i], b->as.array.items[i]))
                return false;
        return true;
    case ESG_TYPE_OBJECT:
        if (a->as.object.n_members != b->as.object.n_members)
            return false;
        for (size_t i = 0; i < a->as.object.n_members; i++) {
            const struct esg_member *ma = &a->as.object.members[i];
            const struct esg_member *mb = &b->as.object.members[i];
            if (ma->key_len != mb->key_len || memcmp(ma->key, mb->key, ma->key_len) != 0 ||
                !esg_value_equal(ma->value, mb->value))
                return false;
        }
        return true;
    }
    return false;
}
