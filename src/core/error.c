/* Status names and the error object. */
#include "esg/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The start of the UTF-8 character at or after at (continuation bytes are 10xxxxxx). */
static size_t char_start(const char *text, size_t at, size_t len)
{
    while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80)
        at++;
    return at;
}

esg_status esg_error_set(esg_error *err, esg_status status, const char *format, ...)
{
    if (err == NULL)
        return status;
    /* Formatted apart first, so that the arguments may be err's own message. */
    char text[4 * ESG_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    err->status = status;
    if (len < sizeof err->message) {
        memcpy(err->message, text, len + 1);
        return status;
    }
    /* Too long: keep the start (what was being done) and the end (the cause, which messages
     * that wrap others put last), cut in the middle. */
    static const char cut[] = " ... ";
    size_t keep = (sizeof err->message - sizeof cut) / 2;
    size_t head = keep;
    while (head > 0 && ((unsigned char)text[head] & 0xC0) == 0x80)
        head--; /* end the head before a character, not inside one */
    size_t tail = char_start(text, len - keep, len);
    memcpy(err->message, text, head);
    memcpy(err->message + head, cut, sizeof cut - 1);
    memcpy(err->message + head + sizeof cut - 1, text + tail, len - tail);
    err->message[head + sizeof cut - 1 + len - tail] = '\0';
    return status;
}

void esg_error_clear(esg_error *err)
{
    if (err == NULL)
        return;
    err->status = ESG_OK;
    err->message[0] = '\0';
}

const char *esg_status_name(esg_status status)
{
    switch (status) {
#define ESG_STATUS_NAME(name, value, grpc, meaning)                                                \
    case ESG_##name:                                                                               \
        return "ESG_" #name;
        ESG_STATUS_MAP(ESG_STATUS_NAME)
#undef ESG_STATUS_NAME
    }
    return "ESG_UNKNOWN_STATUS";
}
