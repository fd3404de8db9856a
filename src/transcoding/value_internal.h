/* The layout of esg_value, shared by the files of the transcoding layer only. */
#ifndef ESG_VALUE_INTERNAL_H
#define ESG_VALUE_INTERNAL_H

#include "esg/value.h"

struct esg_member {
    char *key;        /* owned, NUL-terminated (keys may hold NUL; key_len counts) */
    size_t key_len;   /* bytes of key */
    esg_value *value; /* owned */
};

struct esg_array {
    esg_value **items; /* owned children */
    size_t n_items;
    size_t capacity;
};

struct esg_object {
    struct esg_member *members; /* in insertion order; looked up linearly (objects are small) */
    size_t n_members;
    size_t capacity;
};

struct esg_value {
    esg_type type; /* which member of `as` is in use */
    union {
        bool boolean;
        int64_t integer;
        double real;
        struct {
            char *data; /* owned, NUL-terminated; also the canonical text of a decimal */
            size_t len;
        } string;
        struct esg_array array;
        struct esg_object object;
        esg_uuid uuid;
        esg_datetime datetime;
        struct {
            char *name;      /* owned: the transcoding's name */
            esg_value *data; /* owned */
        } custom;
    } as;
};

/* esg_object_set with a key of known length (keys from JSON may hold NUL). */
esg_status esg_object_set_n(esg_value *object, const char *key, size_t key_len, esg_value *item);

/* Appends a member whose key the caller knows is new (no lookup: the JSON
 * decoder's keys are unique already, and a lookup per key would make hostile
 * objects with many keys quadratic). Takes item as esg_object_set does. */
esg_status esg_object_append_new_n(esg_value *object, const char *key, size_t key_len,
                                   esg_value *item);

#endif
