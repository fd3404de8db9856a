/* Values and their JSON transcoding, compatible with eventsourcing 9.2's
 * JSONTranscoder (UUIDAsHex, DatetimeAsISO, DecimalAsStr).
 *
 * An esg_value is a tree: arrays and objects own their children, and freeing
 * the root frees the tree. Objects keep keys in insertion order, as Python
 * dicts do. Integers are 64-bit signed; JSON integers outside that range are
 * refused with ESG_EINVAL rather than truncated. */
#ifndef ESG_VALUE_H
#define ESG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esg/alloc.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- UUIDs ---------------------------------------------------------------- */

typedef struct esg_uuid {
    uint8_t bytes[16]; /* big-endian, as in RFC 4122 */
} esg_uuid;

#define ESG_UUID_HEX_SIZE 33 /* 32 hex digits and a NUL */
#define ESG_UUID_STR_SIZE 37 /* 8-4-4-4-12 with dashes and a NUL */

/* A random (version 4) UUID. */
void esg_uuid4(esg_uuid *out);

/* uuid5(NAMESPACE_URL, name), as Python's uuid.uuid5 computes it. */
void esg_uuid5_url(esg_uuid *out, const char *name);

/* Parses the forms Python's UUID(hex) accepts: 32 hex digits with or without
 * dashes, either case, optionally in braces or after "urn:uuid:". */
esg_status esg_uuid_parse(const char *text, size_t text_len, esg_uuid *out, esg_error *err);

/* Writes 32 lowercase hex digits (Python's UUID.hex) into out. */
void esg_uuid_hex(const esg_uuid *uuid, char out[ESG_UUID_HEX_SIZE]);

/* Writes the dashed lowercase form (Python's str(UUID)) into out. */
void esg_uuid_str(const esg_uuid *uuid, char out[ESG_UUID_STR_SIZE]);

bool esg_uuid_equal(const esg_uuid *a, const esg_uuid *b);

/* ---- Datetimes ------------------------------------------------------------ */

typedef struct esg_datetime {
    int32_t year;               /* 1..9999 */
    uint8_t month;              /* 1..12 */
    uint8_t day;                /* 1..31 */
    uint8_t hour;               /* 0..23 */
    uint8_t minute;             /* 0..59 */
    uint8_t second;             /* 0..59 */
    uint32_t microsecond;       /* 0..999999 */
    bool has_offset;            /* false for a naive datetime */
    int32_t utc_offset_seconds; /* -86399..86399 when has_offset */
} esg_datetime;

#define ESG_DATETIME_ISO_SIZE 40

/* The current time in UTC with microseconds (Python's datetime.now(timezone.utc)). */
void esg_datetime_now_utc(esg_datetime *out);

/* Parses the ISO 8601 forms Python 3.11's datetime.fromisoformat reads:
 * YYYY-MM-DD[(T| )HH[:MM[:SS[.f{1,6}]]][Z|(+|-)HH:MM[:SS[.ffffff]]]]. */
esg_status esg_datetime_parse(const char *text, size_t text_len, esg_datetime *out, esg_error *err);

/* Writes Python's isoformat() into out: no fraction when microsecond is 0,
 * "+00:00" for UTC, no offset when naive. Returns the length written. */
size_t esg_datetime_format(const esg_datetime *dt, char out[ESG_DATETIME_ISO_SIZE]);

/* Microseconds since the Unix epoch, offsets applied (naive values taken as UTC). */
int64_t esg_datetime_to_unix_us(const esg_datetime *dt);

bool esg_datetime_equal(const esg_datetime *a, const esg_datetime *b);

/* ---- Values --------------------------------------------------------------- */

typedef enum esg_type {
    ESG_TYPE_NULL,
    ESG_TYPE_BOOL,
    ESG_TYPE_INT,
    ESG_TYPE_FLOAT,
    ESG_TYPE_STRING,
    ESG_TYPE_ARRAY,
    ESG_TYPE_OBJECT,
    ESG_TYPE_UUID,     /* {"_type_":"uuid_hex","_data_":"<32 hex>"} */
    ESG_TYPE_DATETIME, /* {"_type_":"datetime_iso","_data_":"<isoformat>"} */
    ESG_TYPE_DECIMAL,  /* {"_type_":"decimal_str","_data_":"<str(Decimal)>"} */
    ESG_TYPE_CUSTOM    /* {"_type_":"<name>","_data_":<data>}: a registered esg_transcoding's */
} esg_type;

typedef struct esg_value esg_value;

/* Constructors return a new value owned by the caller, or NULL when out of
 * memory. Strings are copied; they may hold NUL bytes when a length is given. */
esg_value *esg_value_null(void);
esg_value *esg_value_bool(bool b);
esg_value *esg_value_int(int64_t i);
esg_value *esg_value_float(double d);
esg_value *esg_value_string(const char *s);
esg_value *esg_value_string_n(const char *s, size_t len);
esg_value *esg_value_array(void);
esg_value *esg_value_object(void);
esg_value *esg_value_uuid(const esg_uuid *uuid);
esg_value *esg_value_datetime(const esg_datetime *dt);

/* A decimal from its text (Python's Decimal(text)), kept in the canonical form
 * str(Decimal) writes. NULL with err set when text is not a decimal. */
esg_value *esg_value_decimal(const char *text, esg_error *err);

/* A value of a custom type (ESG_TYPE_CUSTOM): type_name (copied) names its transcoding and data
 * (taken, also on failure) is what its "_data_" holds. NULL when out of memory or data is NULL. */
esg_value *esg_value_custom(const char *type_name, esg_value *data);

/* A deep copy, or NULL when out of memory. */
esg_value *esg_value_copy(const esg_value *value);

/* Frees value and everything it owns. NULL is allowed. */
void esg_value_free(esg_value *value);

esg_type esg_value_type(const esg_value *value);
const char *esg_type_name(esg_type type);

/* Accessors. Each returns the payload when the type matches and a zero value
 * (false, 0, NULL) otherwise. Returned pointers are borrowed from value. */
bool esg_value_as_bool(const esg_value *value);
int64_t esg_value_as_int(const esg_value *value);
double esg_value_as_float(const esg_value *value);
const char *esg_value_as_string(const esg_value *value, size_t *len /* may be NULL */);
const esg_uuid *esg_value_as_uuid(const esg_value *value);
const esg_datetime *esg_value_as_datetime(const esg_value *value);
const char *esg_value_as_decimal(const esg_value *value);
/* A custom value's type name and its data (both borrowed), or NULL for other types. */
const char *esg_value_custom_name(const esg_value *value);
esg_value *esg_value_custom_data(const esg_value *value);

/* Arrays. append takes ownership of item, also when it fails (then item is
 * freed); a NULL item is ESG_ENOMEM, so constructor results can be passed in
 * directly. get returns a borrowed child or NULL when out of range. */
esg_status esg_array_append(esg_value *array, esg_value *item);
size_t esg_array_len(const esg_value *array);
esg_value *esg_array_get(const esg_value *array, size_t index);

/* Objects. set takes ownership of item as above; setting an existing key
 * replaces its value and keeps its position. Keys are copied. */
esg_status esg_object_set(esg_value *object, const char *key, esg_value *item);
size_t esg_object_len(const esg_value *object);
esg_value *esg_object_get(const esg_value *object, const char *key);
const char *esg_object_key_at(const esg_value *object, size_t index);
esg_value *esg_object_value_at(const esg_value *object, size_t index);
/* Removes key and returns its value to the caller (who then owns it), or NULL. */
esg_value *esg_object_take(esg_value *object, const char *key);

/* Deep equality; floats compare by value, objects by keys in order. */
bool esg_value_equal(const esg_value *a, const esg_value *b);

/* ---- Custom types, as eventsourcing's Transcoding ------------------------- */

/* How a C type of your own is stored: as {"_type_": name, "_data_": data}, data being what encode
 * makes of a C object. Registered, its name decodes from JSON into an ESG_TYPE_CUSTOM value (an
 * unregistered name is refused, as Python's transcoder refuses it); a struct member of the type
 * (ESG_CUSTOM_FIELD in esg/fields.h) is converted by encode and decode. */
typedef struct esg_transcoding {
    const char *name; /* the "_type_", e.g. "money"; not uuid_hex, datetime_iso or decimal_str */
    size_t size;      /* sizeof the C type */
    /* The data of object (borrowed) as a new value (*out, the caller's). */
    esg_status (*encode)(const void *object, esg_value **out, esg_error *err);
    /* Fills a zeroed object from data (borrowed); ESG_EINVAL, naming what is wrong, when data
     * does not fit. What it allocates inside object is freed by free. */
    esg_status (*decode)(const esg_value *data, void *object, esg_error *err);
    void (*free)(void *object); /* frees what decode allocated inside object; may be NULL */
} esg_transcoding;

/* Registers t (borrowed: it must outlive every use, a static const in practice). Again is a
 * no-op; another transcoding under a name already taken, or a built-in name, is ESG_EINVAL.
 * Safe from any thread. */
esg_status esg_transcoding_register(const esg_transcoding *t, esg_error *err);

/* The transcoding registered under name, or NULL. */
const esg_transcoding *esg_transcoding_find(const char *name);

/* ---- JSON ----------------------------------------------------------------- */

/* Nesting deeper than this is refused when decoding and encoding. */
#define ESG_JSON_MAX_DEPTH 512

/* Decodes UTF-8 JSON text (any value at the top) into a new value owned by the
 * caller. Two-key objects {"_type_", "_data_"} become UUID, datetime and decimal
 * values, or custom values of registered transcodings; an unknown _type_ is ESG_EINVAL, as in
 * the Python transcoder. */
esg_status esg_json_decode(const char *text, size_t text_len, esg_value **out, esg_error *err);

/* Encodes value as Python's json.dumps(separators=(",", ":"),
 * ensure_ascii=False) with the custom types would. *out is NUL-terminated
 * (the NUL not counted in *out_len); the caller frees it with esg_free. Infinite and NaN floats are
 * ESG_EINVAL (they are not JSON). */
esg_status esg_json_encode(const esg_value *value, char **out, size_t *out_len, esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
