/* The log of the library and of its programs: lines at four levels, in text or as JSON lines,
 * each with its time (UTC) and the application it is about, chosen by LOG_LEVEL and LOG_FORMAT.
 * Errors and warnings go to stderr, info and debug to stdout; a line is written whole. Lines
 * never hold event data, method arguments or keys. */
#ifndef ESG_LOG_H
#define ESG_LOG_H

#include <stdbool.h>

#include "esg/env.h"
#include "esg/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum esg_log_level {
    ESG_LOG_ERROR,   /* something failed that the process cannot put right */
    ESG_LOG_WARNING, /* something is wrong, and is being retried or worked around */
    ESG_LOG_INFO,    /* the process's life: started, stopping, a peer answering again */
    ESG_LOG_DEBUG    /* every request: its method, status, duration and peer */
} esg_log_level;

/* Reads LOG_LEVEL (error, warning, info: the default, or debug) and LOG_FORMAT (text: the
 * default, or json) from env (NULL: the process environment), each looked up with app_name's
 * prefix first (may be NULL). Another value is ESG_ECONFIG naming the variable. Call it before
 * other threads log. */
esg_status esg_log_configure(const esg_env *env, const char *app_name, esg_error *err);

/* Whether lines of level are written (cheap: test it before building a costly line). */
bool esg_log_is_on(esg_log_level level);

/* Writes one line at level, about app (an application's name; NULL for the process itself):
 *   text  2026-12-06T07:01:24.123456Z warning Orders: waiting for Payments at ...
 *   json  {"time":"2026-12-06T07:01:24.123456Z","level":"warning","app":"Orders","message":...} */
void esg_log(esg_log_level level, const char *app, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
