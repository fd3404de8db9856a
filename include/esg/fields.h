/* Field tables: a C struct described once, member by member, so that the library turns it into
 * the attributes of an event or the state of an aggregate (JSON as eventsourcing 9.2 writes
 * them) and back. Declared event and aggregate types (esg/domain.h) and the values methods
 * return (esg/application.h) are built on them.
 *
 *     typedef struct { esg_uuid order_id; int64_t quantity; } line_added;
 *     static const esg_struct_type line_added_data = ESG_STRUCT(line_added,
 *         ESG_FIELD(line_added, order_id, ESG_UUID), ESG_FIELD(line_added, quantity, ESG_INT));
 *
 * The attributes are named as the members and written in the table's order. */
#ifndef ESG_FIELDS_H
#define ESG_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/error.h"
#include "esg/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a member holds, and so its C type. */
typedef enum esg_field_kind {
    ESG_BOOL,     /* bool */
    ESG_INT,      /* int64_t */
    ESG_FLOAT,    /* double */
    ESG_STRING,   /* char *: UTF-8 text */
    ESG_UUID,     /* esg_uuid */
    ESG_DATETIME, /* esg_datetime */
    ESG_DECIMAL,  /* char *: a decimal's text (stored as Python's Decimal) */
    ESG_ANY,      /* esg_value *: any value (a list, a dict...) */
    ESG_CUSTOM    /* a C type of your own, converted by the field's esg_transcoding */
} esg_field_kind;

typedef struct esg_field {
    const char *name;    /* the attribute's name (the member's); NULL ends a table */
    esg_field_kind kind; /* what the member holds */
    size_t offset;       /* offsetof the member */
    size_t size;         /* sizeof the member, checked against the kind */
    /* Optional members may be None. has_offset (when has_flag) is the offset of a bool member
     * that says whether the member is set; without it a pointer member is None when NULL. */
    bool is_optional;
    bool has_flag;
    size_t has_offset;
    const esg_transcoding *transcoding; /* ESG_CUSTOM only */
} esg_field;

/* A struct and its fields, in the order the attributes are written. */
typedef struct esg_struct_type {
    size_t size;             /* sizeof the struct */
    const esg_field *fields; /* ends with an entry whose name is NULL; NULL for none */
} esg_struct_type;

/* The entries of a field table. Each names the struct type and the member once. */
#define ESG_FIELD(TYPE, MEMBER, KIND)                                                              \
    {                                                                                              \
        .name = #MEMBER, .kind = (KIND), .offset = offsetof(TYPE, MEMBER),                         \
        .size = sizeof(((TYPE *)0)->MEMBER)                                                        \
    }
/* May be None: HAS_MEMBER is a bool member that says whether MEMBER is set. */
#define ESG_OPTIONAL_FIELD(TYPE, MEMBER, KIND, HAS_MEMBER)                                         \
    {                                                                                              \
        .name = #MEMBER, .kind = (KIND), .offset = offsetof(TYPE, MEMBER),                         \
        .size = sizeof(((TYPE *)0)->MEMBER), .is_optional = true, .has_flag = true,                \
        .has_offset = offsetof(TYPE, HAS_MEMBER)                                                   \
    }
/* A pointer member (ESG_STRING, ESG_DECIMAL, ESG_ANY) that is None when NULL. */
#define ESG_NULLABLE_FIELD(TYPE, MEMBER, KIND)                                                     \
    {                                                                                              \
        .name = #MEMBER, .kind = (KIND), .offset = offsetof(TYPE, MEMBER),                         \
        .size = sizeof(((TYPE *)0)->MEMBER), .is_optional = true                                   \
    }
/* A member of a C type of your own, stored as TRANSCODING (an esg_transcoding) says. */
#define ESG_CUSTOM_FIELD(TYPE, MEMBER, TRANSCODING)                                                \
    {                                                                                              \
        .name = #MEMBER, .kind = ESG_CUSTOM, .offset = offsetof(TYPE, MEMBER),                     \
        .size = sizeof(((TYPE *)0)->MEMBER), .transcoding = &(TRANSCODING)                         \
    }

/* An esg_struct_type of TYPE with the fields that follow (at least one). */
#define ESG_STRUCT(TYPE, ...)                                                                      \
    {                                                                                              \
        .size = sizeof(TYPE), .fields = (const esg_field[])                                        \
        {                                                                                          \
            __VA_ARGS__,                                                                           \
            {                                                                                      \
                .name = NULL                                                                       \
            }                                                                                      \
        }                                                                                          \
    }

/* Whether type's table fits its struct: each member's size is its kind's, offsets inside the
 * struct, names unique, transcodings given. ESG_EINVAL names the first field that does not fit;
 * `what` says whose table it is in the message. */
esg_status esg_struct_check(const esg_struct_type *type, const char *what, esg_error *err);

/* The attributes of data (a struct of type, borrowed) as a new object (*out, the caller's): one
 * key per field, in order; an optional member that is not set is None. `what` names the struct
 * in messages (a required string member that is NULL is ESG_EINVAL). */
esg_status esg_struct_to_value(const esg_struct_type *type, const void *data, const char *what,
                               esg_value **out, esg_error *err);

/* As esg_struct_to_value, into an object of the caller's (borrowed): the attributes are set after
 * (or, for keys it has, in place of) what it holds. On failure, what was set stays. */
esg_status esg_struct_write_into(const esg_struct_type *type, const void *data, const char *what,
                                 esg_value *object, esg_error *err);

/* Fills a zeroed struct from an object's attributes (borrowed): keys it has no field for are
 * ignored, a missing or None optional field is left unset, a missing required field or a value
 * of another type is ESG_EINVAL naming it ("`what`'s quantity must be an int, not string").
 * With copy, strings, decimals and values are copies the struct then owns; without, they point
 * into object and live as long as it. Custom members are decoded by their transcoding either
 * way. On failure nothing is left allocated. */
esg_status esg_struct_from_value(const esg_struct_type *type, const esg_value *object, bool copy,
                                 const char *what, void *data, esg_error *err);

/* Frees what a struct holds and zeroes those members: custom members through their
 * transcoding, and with owned (a struct filled with copy) its strings, decimals and values. */
void esg_struct_clear(const esg_struct_type *type, void *data, bool owned);

/* Sets *member to a copy of text (NULL: NULL) after freeing what it held, as a mutator keeps a
 * string of an event in its state. ESG_ENOMEM leaves *member as it was. */
esg_status esg_set_string(char **member, const char *text, esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
