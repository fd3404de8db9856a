/* Values to JSON text, byte for byte as Python's json.dumps writes it with
 * separators (",", ":") and ensure_ascii=False, and the custom types as
 * {"_type_":...,"_data_":...}. jansson's encoder cannot be used: it prints
 * reals with %.17g, where Python prints the shortest text that reads back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buffer.h"
#include "core/int_text.h"
#include "transcoding/json_text.h"
#include "transcoding/value_internal.h"

/* ---- Strings ---- */

static esg_status put_string(esg_buffer *buf, const char *s, size_t len, esg_error *err)
{
    const unsigned char *p = (const unsigned char *)s;
    esg_buffer_put_char(buf, '"');
    size_t run_start = 0, i = 0;
    while (i < len) {
        unsigned char c = p[i];
        const char *escape = NULL;
        char unicode_escape[8];
        switch (c) {
        case '"':
            escape = "\\\"";
            break;
        case '\\':
            escape = "\\\\";
            break;
        case '\n':
            escape = "\\n";
            break;
        case '\r':
            escape = "\\r";
            break;
        case '\t':
            escape = "\\t";
            break;
        case '\b':
            escape = "\\b";
            break;
        case '\f':
            escape = "\\f";
            break;
        default:
            if (c < 0x20) {
                snprintf(unicode_escape, sizeof unicode_escape, "\\u%04x", c);
                escape = unicode_escape;
            }
        }
        if (escape != NULL) {
            esg_buffer_put(buf, s + run_start, i - run_start);
            esg_buffer_put_str(buf, escape);
            i++;
            run_start = i;
            continue;
        }
        size_t n = esg_utf8_sequence_len(p + i, len - i);
        if (n == 0)
            return esg_error_set(err, ESG_EINVAL, "string is not valid UTF-8 at byte %zu", i);
        i += n;
    }
    esg_buffer_put(buf, s + run_start, len - run_start);
    esg_buffer_put_char(buf, '"');
    return ESG_OK;
}

/* ---- Floats ---- */

/* Python's repr(float): the fewest significant digits that read back to the
 * same double; positional for exponents -4..15, else d.ddde+XX. */
static esg_status put_float(esg_buffer *buf, double d, esg_error *err)
{
    if (!isfinite(d))
        return esg_error_set(err, ESG_EINVAL,
                             "float %s is not JSON (Python would write %s, which is not JSON)",
                             isnan(d) ? "nan" : "inf", isnan(d) ? "NaN" : "Infinity");
    locale_t c_locale = esg_c_numeric_locale();
    if (c_locale == (locale_t)0)
        return esg_error_set(err, ESG_ENOMEM, "cannot create the C locale");
    locale_t previous = uselocale(c_locale);

    char scientific[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(scientific, sizeof scientific, "%.*e", precision - 1, d);
        if (strtod(scientific, NULL) == d)
            break;
    }
    uselocale(previous);

    /* scientific is "[-]d[.ddd]e(+|-)XX": split into sign, digits, exponent. */
    const char *p = scientific;
    bool negative = *p == '-';
    if (negative)
        p++;
    char digits[24];
    size_t n_digits = 0;
    for (; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[n_digits++] = *p;
    int exponent = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0')
        n_digits--;

    if (negative)
        esg_buffer_put_char(buf, '-');
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            esg_buffer_put_str(buf, "0.");
            for (int i = 0; i < -exponent - 1; i++)
                esg_buffer_put_char(buf, '0');
            esg_buffer_put(buf, digits, n_digits);
        } else {
            size_t n_integer = (size_t)exponent + 1;
            for (size_t i = 0; i < n_integer; i++)
                esg_buffer_put_char(buf, i < n_digits ? digits[i] : '0');
            esg_buffer_put_char(buf, '.');
            if (n_digits > n_integer)
                esg_buffer_put(buf, digits + n_integer, n_digits - n_integer);
            else
                esg_buffer_put_char(buf, '0');
        }
    } else {
        char exponent_text[16];
        esg_buffer_put_char(buf, digits[0]);
        if (n_digits > 1) {
            esg_buffer_put_char(buf, '.');
            esg_buffer_put(buf, digits + 1, n_digits - 1);
        }
        snprintf(exponent_text, sizeof exponent_text, "e%c%02d", exponent < 0 ? '-' : '+',
                 exponent < 0 ? -exponent : exponent);
        esg_buffer_put_str(buf, exponent_text);
    }
    return ESG_OK;
}

/* ---- Values ---- */

static void put_custom_head(esg_buffer *buf, const char *type)
{
    esg_buffer_put_str(buf, "{\"_type_\":\"");
    esg_buffer_put_str(buf, type);
    esg_buffer_put_str(buf, "\",\"_data_\":\"");
}

static esg_status put_value(esg_buffer *buf, const esg_value *value, int depth, esg_error *err)
{
    if (depth > ESG_JSON_MAX_DEPTH)
        return esg_error_set(err, ESG_EINVAL, "value nested deeper than %d levels",
                             ESG_JSON_MAX_DEPTH);
    char text[64];
    esg_status rc = ESG_OK;
    switch (value->type) {
    case ESG_TYPE_NULL:
        esg_buffer_put_str(buf, "null");
        break;
    case ESG_TYPE_BOOL:
        esg_buffer_put_str(buf, value->as.boolean ? "true" : "false");
        break;
    case ESG_TYPE_INT:
        esg_buffer_put(buf, text, esg_int_text(value->as.integer, text));
        break;
    case ESG_TYPE_FLOAT:
        rc = put_float(buf, value->as.real, err);
        break;
    case ESG_TYPE_STRING:
        rc = put_string(buf, value->as.string.data, value->as.string.len, err);
        break;
    case ESG_TYPE_UUID:
        put_custom_head(buf, "uuid_hex");
        esg_uuid_hex(&value->as.uuid, text);
        esg_buffer_put_str(buf, text);
        esg_buffer_put_str(buf, "\"}");
        break;
    case ESG_TYPE_DATETIME:
        put_custom_head(buf, "datetime_iso");
        esg_datetime_format(&value->as.datetime, text);
        esg_buffer_put_str(buf, text);
        esg_buffer_put_str(buf, "\"}");
        break;
    case ESG_TYPE_DECIMAL:
        /* The canonical decimal text has no characters that need escaping. */
        put_custom_head(buf, "decimal_str");
        esg_buffer_put(buf, value->as.string.data, value->as.string.len);
        esg_buffer_put_str(buf, "\"}");
        break;
    case ESG_TYPE_CUSTOM:
        /* As Python writes it: {"_type_":<name>,"_data_":<data>} */
        esg_buffer_put_str(buf, "{\"_type_\":");
        rc = put_string(buf, value->as.custom.name, strlen(value->as.custom.name), err);
        esg_buffer_put_str(buf, ",\"_data_\":");
        if (rc == ESG_OK)
            rc = put_value(buf, value->as.custom.data, depth + 1, err);
        esg_buffer_put_char(buf, '}');
        break;
    case ESG_TYPE_ARRAY:
        esg_buffer_put_char(buf, '[');
        for (size_t i = 0; rc == ESG_OK && i < value->as.array.n_items; i++) {
            if (i > 0)
                esg_buffer_put_char(buf, ',');
            rc = put_value(buf, value->as.array.items[i], depth + 1, err);
        }
        esg_buffer_put_char(buf, ']');
        break;
    case ESG_TYPE_OBJECT:
        esg_buffer_put_char(buf, '{');
        for (size_t i = 0; rc == ESG_OK && i < value->as.object.n_members; i++) {
            const struct esg_member *member = &value->as.object.members[i];
            if (i > 0)
                esg_buffer_put_char(buf, ',');
            rc = put_string(buf, member->key, member->key_len, err);
            esg_buffer_put_char(buf, ':');
            if (rc == ESG_OK)
                rc = put_value(buf, member->value, depth + 1, err);
        }
        esg_buffer_put_char(buf, '}');
        break;
    }
    return rc;
}

esg_status esg_json_encode(const esg_value *value, char **out, size_t *out_len, esg_error *err)
{
    esg_buffer buf = {0};
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    esg_status rc = put_value(&buf, value, 0, err);
    if (rc != ESG_OK) {
        esg_buffer_reset(&buf);
        return rc;
    }
    *out = esg_buffer_take(&buf, out_len);
    if (*out == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory encoding JSON");
    return ESG_OK;
}
