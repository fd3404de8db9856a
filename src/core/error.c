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
    case ESG_OK:
        return "ESG_OK";
    case ESG_EINVAL:
        return "ESG_EINVAL";
    case ESG_ENOTFOUND:
        return "ESG_ENOTFOUND";
    case ESG_ECONFLICT:
        return "ESG_ECONFLICT";
    case ESG_ENOMEM:
        return "ESG_ENOMEM";
    case ESG_EIO:
        return "ESG_EIO";
    case ESG_ECONFIG:
        return "ESG_ECONFIG";
    case ESG_EUNAVAILABLE:
        return "ESG_EUNAVAILABLE";
    case ESG_EINTERNAL:
        return "ESG_EINTERNAL";
    case ESG_EUNIMPLEMENTED:
        return "ESG_EUNIMPLEMENTED";
    case ESG_ETIMEDOUT:
        return "ESG_ETIMEDOUT";
    case ESG_ECLOSED:
        return "ESG_ECLOSED";
    case ESG_EREMOTE:
        return "ESG_EREMOTE";
    case ESG_EDATA:
        return "ESG_EDATA";
    }
    return "ESG_UNKNOWN_STATUS";
}
