/* Integers as decimal text (see int_text.h). */
#include "core/int_text.h"

size_t esg_int_text(int64_t value, char text[ESG_INT_TEXT_SIZE])
{
    char digits[ESG_INT_TEXT_SIZE];
    size_t n = 0;
    /* In unsigned arithmetic, so that INT64_MIN negates without overflow. */
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    do {
        digits[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    size_t len = 0;
    if (value < 0)
        text[len++] = '-';
    while (n > 0)
        text[len++] = digits[--n];
    text[len] = '\0';
    return len;
}
