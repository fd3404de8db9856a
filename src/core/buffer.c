/* A growable byte buffer (see buffer.h). */
#include "core/buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

static bool reserve(esg_buffer *buf, size_t extra)
{
    if (buf->failed)
        return false;
    if (extra > SIZE_MAX - buf->len - 1) {
        buf->failed = true;
        return false;
    }
    size_t need = buf->len + extra + 1;
    if (need <= buf->capacity)
        return true;
    size_t capacity = buf->capacity ? buf->capacity : 256; /* (an event's JSON, mostly) */
    while (capacity < need)
        capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
    char *data = esg_realloc(buf->data, capacity);
    if (data == NULL) {
        buf->failed = true;
        return false;
    }
    buf->data = data;
    buf->capacity = capacity;
    return true;
}

bool esg_buffer_put(esg_buffer *buf, const char *bytes, size_t n)
{
    if (!reserve(buf, n))
        return false;
    if (n > 0)
        memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return true;
}

bool esg_buffer_put_char(esg_buffer *buf, char c)
{
    return esg_buffer_put(buf, &c, 1);
}

bool esg_buffer_put_str(esg_buffer *buf, const char *s)
{
    return esg_buffer_put(buf, s, strlen(s));
}

char *esg_buffer_take(esg_buffer *buf, size_t *len)
{
    if (buf->failed || !reserve(buf, 0)) {
        esg_buffer_reset(buf);
        return NULL;
    }
    buf->data[buf->len] = '\0';
    char *data = buf->data;
    if (len != NULL)
        *len = buf->len;
    buf->data = NULL;
    buf->len = 0;
    buf->capacity = 0;
    return data;
}

void esg_buffer_reset(esg_buffer *buf)
{
    esg_free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->capacity = 0;
    buf->failed = false;
}
