/* Integers as decimal text without snprintf: ids and versions are written for every event and
 * every notification of a page, where snprintf's format parsing cost more than the digits. */
#ifndef ESG_INT_TEXT_H
#define ESG_INT_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any int64_t: a sign, 19 digits and the NUL. */
#define ESG_INT_TEXT_SIZE 21

/* Writes value as "%lld" would, NUL-terminated, into text; returns its length. */
size_t esg_int_text(int64_t value, char text[ESG_INT_TEXT_SIZE]);

#endif
