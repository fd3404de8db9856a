/* Canonical text of decimals, as Python's str(Decimal(text)) writes it.
 * Internal to the transcoding layer. */
#ifndef ESG_DECIMAL_H
#define ESG_DECIMAL_H

#include <stddef.h>

#include "esg/error.h"

/* Parses text as Python's Decimal() does (surrounding whitespace, sign,
 * digits with an optional point, exponent, Infinity, NaN, sNaN) and returns
 * str(Decimal(text)) in a string the caller frees with esg_free. */
esg_status esg_decimal_canonical(const char *text, size_t text_len, char **out, esg_error *err);

#endif
