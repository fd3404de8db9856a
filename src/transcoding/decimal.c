/* Decimals for the "decimal_str" transcoding: the text is kept, in the form
 * Python's str(Decimal) gives (the General Decimal Arithmetic to-sci-string),
 * so that a value read and written again comes out as Python writes it. */
#include "transcoding/decimal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buffer.h"

static bool equals_nocase(const char *p, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

/* NaN and sNaN may carry a payload of digits, written without leading zeros. */
static esg_status special_value(const char *p, size_t len, bool negative, esg_buffer *buf)
{
    if (negative)
        esg_buffer_put_char(buf, '-');
    if (equals_nocase(p, len, "inf") || equals_nocase(p, len, "infinity")) {
        esg_buffer_put_str(buf, "Infinity");
        return ESG_OK;
    }
    size_t prefix = 0;
    if (len >= 3 && strncasecmp(p, "nan", 3) == 0) {
        esg_buffer_put_str(buf, "NaN");
        prefix = 3;
    } else if (len >= 4 && strncasecmp(p, "snan", 4) == 0) {
        esg_buffer_put_str(buf, "sNaN");
        prefix = 4;
    } else {
        return ESG_EINVAL;
    }
    for (size_t i = prefix; i < len; i++)
        if (!isdigit((unsigned char)p[i]))
            return ESG_EINVAL;
    while (prefix < len && p[prefix] == '0')
        prefix++;
    esg_buffer_put(buf, p + prefix, len - prefix);
    return ESG_OK;
}

esg_status esg_decimal_canonical(const char *text, size_t text_len, char **out, esg_error *err)
{
    const char *p = text, *end = text + text_len;
    esg_buffer coefficient = {0}, result = {0};
    esg_status rc = ESG_EINVAL;
    *out = NULL;

    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    bool negative = false;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    if (p < end && !isdigit((unsigned char)*p) && *p != '.') {
        rc = special_value(p, (size_t)(end - p), negative, &result);
        goto done;
    }

    /* Coefficient digits without the point; exponent lowered per fraction digit. */
    int64_t exponent = 0;
    size_t n_digits = 0;
    bool seen_point = false;
    for (; p < end && (isdigit((unsigned char)*p) || *p == '.'); p++) {
        if (*p == '.') {
            if (seen_point)
                goto done;
            seen_point = true;
            continue;
        }
        n_digits++;
        if (seen_point)
            exponent--;
        if (coefficient.len == 0 && *p == '0')
            continue; /* leading zeros do not count */
        esg_buffer_put_char(&coefficient, *p);
    }
    if (n_digits == 0)
        goto done;
    if (p < end) {
        if (*p != 'e' && *p != 'E')
            goto done;
        p++;
        bool exponent_negative = false;
        if (p < end && (*p == '+' || *p == '-'))
            exponent_negative = *p++ == '-';
        if (p == end)
            goto done;
        int64_t written = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p) || written > (INT64_MAX / 4) / 10)
                goto done;
            written = written * 10 + (*p - '0');
        }
        exponent += exponent_negative ? -written : written;
    }
    if (coefficient.len == 0)
        esg_buffer_put_char(&coefficient, '0');
    if (coefficient.failed) {
        rc = ESG_ENOMEM;
        goto done;
    }

    const char *digits = coefficient.data;
    int64_t n = (int64_t)coefficient.len;
    int64_t adjusted = exponent + n - 1;
    if (negative)
        esg_buffer_put_char(&result, '-');
    if (exponent <= 0 && adjusted >= -6) {
        int64_t point = n + exponent; /* digits before the point */
        if (exponent == 0) {
            esg_buffer_put(&result, digits, (size_t)n);
        } else if (point > 0) {
            esg_buffer_put(&result, digits, (size_t)point);
            esg_buffer_put_char(&result, '.');
            esg_buffer_put(&result, digits + point, (size_t)(n - point));
        } else {
            esg_buffer_put_str(&result, "0.");
            for (int64_t i = 0; i < -point; i++)
                esg_buffer_put_char(&result, '0');
            esg_buffer_put(&result, digits, (size_t)n);
        }
    } else {
        char exponent_text[32];
        esg_buffer_put_char(&result, digits[0]);
        if (n > 1) {
            esg_buffer_put_char(&result, '.');
            esg_buffer_put(&result, digits + 1, (size_t)(n - 1));
        }
        snprintf(exponent_text, sizeof exponent_text, "E%+lld", (long long)adjusted);
        esg_buffer_put_str(&result, exponent_text);
    }
    rc = ESG_OK;
done:
    esg_buffer_reset(&coefficient);
    if (rc == ESG_OK) {
        *out = esg_buffer_take(&result, NULL);
        if (*out == NULL)
            rc = ESG_ENOMEM;
    }
    esg_buffer_reset(&result);
    if (rc == ESG_ENOMEM)
        return esg_error_set(err, rc, "out of memory reading a decimal");
    if (rc != ESG_OK)
        return esg_error_set(err, rc, "Invalid literal for Decimal: '%.*s'",
                             (int)(text_len > 64 ? 64 : text_len), text);
    return ESG_OK;
}
