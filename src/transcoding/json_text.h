/* What reading and writing JSON text share: strict UTF-8 and the C locale for numbers. Internal
 * to the transcoding layer. */
#ifndef ESG_JSON_TEXT_H
#define ESG_JSON_TEXT_H

#include <locale.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid: overlong forms, surrogates
 * and code points above U+10FFFF are invalid, as for Python's decoder. s holds available > 0
 * bytes. */
size_t esg_utf8_sequence_len(const unsigned char *s, size_t available);

/* The offset of the first invalid UTF-8 sequence of s, or len when all of it is valid. */
size_t esg_utf8_invalid_at(const unsigned char *s, size_t len);

/* The "C" locale's numbers (a '.' decimal point whatever the program's locale), for uselocale
 * around strtod and snprintf; (locale_t)0 when it could not be made (out of memory). Made once,
 * never freed. */
locale_t esg_c_numeric_locale(void);

#endif
