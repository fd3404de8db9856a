/* A growable byte buffer for building strings (JSON text, SQL, messages).
 * Internal: not part of the public API. */
#ifndef ESG_BUFFER_H
#define ESG_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct esg_buffer {
    char *data;      /* owned; NUL-terminated whenever len > 0 or after a put */
    size_t len;      /* bytes used, the NUL not counted */
    size_t capacity; /* bytes allocated */
    bool failed;     /* an allocation failed; later puts do nothing */
} esg_buffer;

/* Appends; on allocation failure sets failed and returns false. */
bool esg_buffer_put(esg_buffer *buf, const char *bytes, size_t n);
bool esg_buffer_put_char(esg_buffer *buf, char c);
bool esg_buffer_put_str(esg_buffer *buf, const char *s);

/* Hands the data (NUL-terminated, never NULL on success) to the caller, who
 * frees it with esg_free; the buffer is left empty. NULL if any put failed. */
char *esg_buffer_take(esg_buffer *buf, size_t *len);

/* Frees the data and resets the buffer. */
void esg_buffer_reset(esg_buffer *buf);

#endif
