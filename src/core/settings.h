/* Settings read from an environment the way eventsourcing 9.2 reads them ("<APP>_KEY" first,
 * then "KEY"), with the key that gave each value kept for error messages, and parsers for the
 * kinds of value the settings take. Every bad value is ESG_ECONFIG with a message that names
 * the key, what was expected and what was found. Internal: not part of the public API. */
#ifndef ESG_SETTINGS_H
#define ESG_SETTINGS_H

#include <stdbool.h>

#include "esg/env.h"
#include "esg/error.h"

typedef struct esg_setting {
    const char *value; /* borrowed from the environment, NULL when unset */
    char key[128];     /* the key that was set, or "" */
    char tried[272];   /* the keys looked up: "<APP>_KEY, KEY" or "KEY" */
} esg_setting;

/* Looks key up as esg_env_lookup does (app_name may be NULL), remembering which key it was. A
 * NULL env is the process environment. */
void esg_setting_lookup(const esg_env *env, const char *app_name, const char *key,
                        esg_setting *out);

/* The environment a call reads: env, or when env is NULL a copy of the process environment made
 * into *own, which the caller frees with esg_env_free (*own is NULL otherwise). NULL, with
 * ESG_ENOMEM in err, when the copy cannot be made. */
const esg_env *esg_env_or_process(const esg_env *env, esg_env **own, esg_error *err);

/* Whether s is NULL or only white space. */
bool esg_is_blank(const char *s);

/* A whole number in [min, max], white space around it allowed; default_value when the setting
 * is unset or blank. */
esg_status esg_setting_int(const esg_env *env, const char *app_name, const char *key,
                           long default_value, long min, long max, long *out, esg_error *err);

/* Yes or no, read as Python's strtobool (y, yes, t, true, on, 1 / n, no, f, false, off, 0, any
 * case); default_value when unset or blank. */
esg_status esg_setting_bool(const esg_env *env, const char *app_name, const char *key,
                            bool default_value, bool *out, esg_error *err);

/* A number of seconds in [0, max_s], fractions allowed (Python's float()); default_value when
 * unset or blank. */
esg_status esg_setting_seconds(const esg_env *env, const char *app_name, const char *key,
                               double default_value, double max_s, double *out, esg_error *err);

/* Parses a whole decimal number in [min, max] with white space around it allowed; false for
 * anything else. */
bool esg_parse_long(const char *text, long min, long max, long *out);

#endif
