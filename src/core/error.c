/* Status names and the error object. */
#include "esg/error.h"

#include <stdarg.h>
#include <stdio.h>

esg_status esg_error_set(esg_error *err, esg_status status, const char *format, ...)
{
    if (err == NULL)
        return status;
    err->status = status;
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
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
