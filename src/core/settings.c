/* Settings from an environment, looked up and parsed once for every module that reads them
 * (persistence, the mapper, the repository's cache, the gRPC layer). */
#include "core/settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A key's value in env, or in the process environment when env is NULL. */
static const char *get(const esg_env *env, const char *key)
{
    return env != NULL ? esg_env_get(env, key) : getenv(key);
}

const esg_env *esg_env_or_process(const esg_env *env, esg_env **own, esg_error *err)
{
    *own = NULL;
    if (env != NULL)
        return env;
    *own = esg_env_from_process();
    if (*own == NULL)
        esg_error_set(err, ESG_ENOMEM, "out of memory reading the environment");
    return *own;
}

void esg_setting_lookup(const esg_env *env, const char *app_name, const char *key, esg_setting *out)
{
    out->value = NULL;
    out->key[0] = '\0';
    out->tried[0] = '\0';
    if (app_name != NULL && app_name[0] != '\0') {
        char prefixed[128];
        size_t n = 0;
        for (; n < 80 && app_name[n] != '\0'; n++)
            prefixed[n] = (char)toupper((unsigned char)app_name[n]);
        snprintf(prefixed + n, sizeof prefixed - n, "_%s", key);
        snprintf(out->tried, sizeof out->tried, "%s, ", prefixed);
        if (app_name[n] == '\0' && (out->value = get(env, prefixed)) != NULL) {
            snprintf(out->key, sizeof out->key, "%s", prefixed);
            return;
        }
    }
    size_t len = strlen(out->tried);
    snprintf(out->tried + len, sizeof out->tried - len, "%s", key);
    if ((out->value = get(env, key)) != NULL)
        snprintf(out->key, sizeof out->key, "%s", key);
}

bool esg_is_blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

bool esg_parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    while (end != NULL && isspace((unsigned char)*end))
        end++;
    if (errno != 0 || end == text || end == NULL || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

esg_status esg_setting_int(const esg_env *env, const char *app_name, const char *key,
                           long default_value, long min, long max, long *out, esg_error *err)
{
    esg_setting s;
    esg_setting_lookup(env, app_name, key, &s);
    if (esg_is_blank(s.value)) {
        *out = default_value;
        return ESG_OK;
    }
    if (!esg_parse_long(s.value, min, max, out))
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: expected a whole number from %ld to %ld or nothing, "
                             "got '%.60s'",
                             s.key, min, max, s.value);
    return ESG_OK;
}

esg_status esg_setting_bool(const esg_env *env, const char *app_name, const char *key,
                            bool default_value, bool *out, esg_error *err)
{
    static const char *const yes[] = {"y", "yes", "t", "true", "on", "1"};
    static const char *const no[] = {"n", "no", "f", "false", "off", "0"};
    esg_setting s;
    esg_setting_lookup(env, app_name, key, &s);
    *out = default_value;
    if (esg_is_blank(s.value))
        return ESG_OK;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s.value, yes[i]) == 0) {
            *out = true;
            return ESG_OK;
        }
        if (strcasecmp(s.value, no[i]) == 0) {
            *out = false;
            return ESG_OK;
        }
    }
    return esg_error_set(err, ESG_ECONFIG,
                         "%s is invalid: expected y, yes, t, true, on, 1, n, no, f, false, off or "
                         "0, got '%.60s'",
                         s.key, s.value);
}

esg_status esg_setting_seconds(const esg_env *env, const char *app_name, const char *key,
                               double default_value, double max_s, double *out, esg_error *err)
{
    esg_setting s;
    esg_setting_lookup(env, app_name, key, &s);
    *out = default_value;
    if (esg_is_blank(s.value))
        return ESG_OK;
    char *end = NULL;
    errno = 0;
    double value = strtod(s.value, &end);
    while (end != NULL && isspace((unsigned char)*end))
        end++;
    if (errno != 0 || end == s.value || *end != '\0' || !isfinite(value) || value < 0 ||
        value > max_s)
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: expected a number of seconds from 0 to %g or "
                             "nothing, got '%.60s'",
                             s.key, max_s, s.value);
    *out = value;
    return ESG_OK;
}
