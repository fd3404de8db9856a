/* Settings from an environment, looked up and parsed once for every module that reads them
 * (persistence, the mapper, the repository's cache, the gRPC layer). */
#include "core/settings.h"
#include "core/alloc.h"
#include "core/grow.h"

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

/* ---- Near misses: settings spelt almost right ---- */

/* Every key the library and its programs read, without an application's prefix. */
static const char *const known_settings[] = {
    "PERSISTENCE_MODULE",
    "INFRASTRUCTURE_FACTORY",
    "FACTORY_TOPIC",
    "SQLITE_DBNAME",
    "SQLITE_LOCK_TIMEOUT",
    "CREATE_TABLE",
    "POSTGRES_DBNAME",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_CONNECT_TIMEOUT",
    "POSTGRES_LOCK_TIMEOUT",
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
    "POSTGRES_POOL_SIZE",
    "POSTGRES_POOL_MAX_OVERFLOW",
    "POSTGRES_POOL_TIMEOUT",
    "POSTGRES_CONN_MAX_AGE",
    "POSTGRES_PRE_PING",
    "POSTGRES_SCHEMA",
    "POSTGRES_TARGET_SESSION_ATTRS",
    "CIPHER_KEY",
    "CIPHER_TOPIC",
    "COMPRESSOR_TOPIC",
    "IS_SNAPSHOTTING_ENABLED",
    "AGGREGATE_CACHE_MAXSIZE",
    "AGGREGATE_CACHE_FASTFORWARD",
    "AGGREGATE_CACHE_FASTFORWARD_SKIPPING",
    "DEEPCOPY_FROM_AGGREGATE_CACHE",
    "IDEMPOTENCY_KEY_TTL",
    "GRPC_SERVER_ADDRESS",
    "GRPC_LISTEN_ADDRESS",
    "GRPC_HEALTH_SERVER_ADDRESS",
    "METRICS_SERVER_ADDRESS",
    "GRPC_SSL_PRIVATE_KEY_PATH",
    "GRPC_SSL_CERTIFICATE_PATH",
    "GRPC_SSL_ROOT_CERTIFICATE_PATH",
    "MAX_PULL_INTERVAL",
    "APPLICATION_TOPIC",
    "SYSTEM_TOPIC",
    "ESG_TOPIC_PATH",
    "LOG_LEVEL",
    "LOG_FORMAT",
};

/* The edit distance of a and b (insertions, deletions, substitutions), or 3 when it is more
 * than 2: only near misses matter. */
static size_t near_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64 || (n > m ? n - m : m - n) > 2)
        return 3;
    size_t row[65];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = up;
        }
    }
    return row[m] > 2 ? 3 : row[m];
}

static bool is_setting(const char *key)
{
    for (size_t i = 0; i < sizeof known_settings / sizeof known_settings[0]; i++)
        if (strcmp(key, known_settings[i]) == 0)
            return true;
    return false;
}

/* The known setting key is a near miss of (NULL when key is one, or nothing is near). */
static const char *near_setting(const char *key)
{
    const char *nearest = NULL;
    size_t best = 3;
    for (size_t i = 0; i < sizeof known_settings / sizeof known_settings[0]; i++) {
        size_t distance =
            strcmp(key, known_settings[i]) == 0 ? 0 : near_distance(key, known_settings[i]);
        if (distance == 0)
            return NULL;
        if (distance < best) {
            best = distance;
            nearest = known_settings[i];
        }
    }
    return strlen(key) >= 6 ? nearest : NULL; /* short keys are near too much */
}

void esg_env_free_texts(char **texts)
{
    for (size_t i = 0; texts != NULL && texts[i] != NULL; i++)
        esg_free(texts[i]);
    esg_free(texts);
}

esg_status esg_env_near_misses(const esg_env *env, const char *const *app_names, size_t n_apps,
                               char ***out, esg_error *err)
{
    *out = NULL;
    char **texts = NULL;
    size_t n_texts = 0, capacity = 0;
    for (size_t k = 0; k < esg_env_len(env); k++) {
        const char *key = esg_env_key_at(env, k);
        const char *prefix_end = key; /* after "<APP>_", for an application's own key */
        for (size_t a = 0; a < n_apps && prefix_end == key; a++) {
            char *prefix = esg_env_prefixed_key(app_names[a], "");
            if (prefix == NULL) {
                esg_env_free_texts(texts);
                return esg_error_set(err, ESG_ENOMEM, "out of memory reading the environment");
            }
            if (strncmp(key, prefix, strlen(prefix)) == 0)
                prefix_end = key + strlen(prefix);
            esg_free(prefix);
        }
        const char *setting = is_setting(key) ? NULL : near_setting(prefix_end);
        if (setting == NULL)
            continue; /* a setting itself, or nothing near one */
        char text[400];
        snprintf(text, sizeof text, "%s is not a setting: did you mean %.*s%s?", key,
                 (int)(prefix_end - key), key, setting);
        if (!esg_grow((void **)&texts, &capacity, n_texts + 2, sizeof *texts) ||
            (texts[n_texts] = esg_strdup(text)) == NULL) {
            esg_env_free_texts(texts);
            return esg_error_set(err, ESG_ENOMEM, "out of memory reading the environment");
        }
        texts[++n_texts] = NULL;
    }
    *out = texts;
    return ESG_OK;
}
