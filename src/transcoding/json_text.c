/* What reading and writing JSON text share: strict UTF-8 and the C locale for numbers. */
#include "transcoding/json_text.h"

#include <pthread.h>

size_t esg_utf8_sequence_len(const unsigned char *s, size_t available)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int code_point;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        code_point = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        code_point = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        code_point = c & 0x07;
    } else {
        return 0;
    }
    if (n > available)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        code_point = (code_point << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && code_point < 0x800) || (n == 4 && code_point < 0x10000) ||
        (code_point >= 0xd800 && code_point <= 0xdfff) || code_point > 0x10ffff)
        return 0;
    return n;
}

size_t esg_utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = esg_utf8_sequence_len(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

locale_t esg_c_numeric_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale;
}
