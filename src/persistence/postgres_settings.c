/* The PostgreSQL backend's settings (postgres_settings.h). */
#include "persistence/postgres_settings.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/settings.h"

#define DEFAULT_PORT "5432"
#define DEFAULT_CONNECT_TIMEOUT_S 5
#define DEFAULT_POOL_SIZE 5
#define DEFAULT_POOL_MAX_OVERFLOW 10 /* as Python's: connections beyond the pool */
#define DEFAULT_POOL_TIMEOUT_S 30.0  /* as Python's */
#define MAX_POOL_SIZE 1000
#define DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_S 5 /* as Python's default */
#define MAX_TIMEOUT_S 86400                     /* a day: longer is a typo */

/* A required setting: as Python, only an unset key is missing (an empty password is one). */
static esg_status require(const esg_env *env, const char *app_name, const char *key,
                          const char *what, const char **out, esg_error *err)
{
    esg_setting s;
    esg_setting_lookup(env, app_name, key, &s);
    if (s.value == NULL)
        return esg_error_set(err, ESG_ECONFIG,
                             "PostgreSQL %s not found in environment with keys: %s", what, s.tried);
    *out = s.value;
    return ESG_OK;
}

/* An optional whole number in [min, max], default_value when unset or blank. */
static esg_status optional_int(const esg_env *env, const char *app_name, const char *key,
                               int default_value, long min, long max, int *out, esg_error *err)
{
    long value = 0;
    esg_status status = esg_setting_int(env, app_name, key, default_value, min, max, &value, err);
    if (status == ESG_OK)
        *out = (int)value;
    return status;
}

/* libpq's values of target_session_attrs (PostgreSQL 14 and later). */
static const char *const session_attrs[] = {"any",     "read-write", "read-only",
                                            "primary", "standby",    "prefer-standby"};

/* POSTGRES_HOST's hosts (libpq's comma-separated list), POSTGRES_PORT (one port, or one per
 * host) and POSTGRES_TARGET_SESSION_ATTRS: checked here, where the keys can be named, rather
 * than by libpq at the first connection. */
static esg_status read_hosts(const esg_env *env, const char *app_name, esg_postgres_settings *out,
                             esg_error *err)
{
    out->n_hosts = 1;
    for (const char *c = out->host; *c != '\0'; c++)
        out->n_hosts += *c == ',';
    esg_setting port;
    esg_setting_lookup(env, app_name, "POSTGRES_PORT", &port);
    /* As Python: an empty POSTGRES_PORT is the default. */
    const char *text = esg_is_blank(port.value) ? DEFAULT_PORT : port.value;
    int n_ports = 0;
    bool is_valid = strlen(text) <= ESG_POSTGRES_MAX_PORT_LIST;
    for (const char *p = text; is_valid; p++) {
        char *end = NULL;
        long number = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : 0;
        is_valid = number >= 1 && number <= 65535 && (*end == '\0' || *end == ',');
        n_ports++;
        if (!is_valid || *end == '\0')
            break;
        p = end;
    }
    if (!is_valid || (n_ports != 1 && n_ports != out->n_hosts))
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is invalid: expected a port from 1 to 65535, or one for each of "
                             "the %d hosts of POSTGRES_HOST, separated by commas; got '%.60s'",
                             port.key, out->n_hosts, port.value);
    memcpy(out->port, text, strlen(text) + 1);

    esg_setting attrs;
    esg_setting_lookup(env, app_name, "POSTGRES_TARGET_SESSION_ATTRS", &attrs);
    if (esg_is_blank(attrs.value)) {
        out->target_session_attrs = out->n_hosts > 1 ? "read-write" : NULL;
        return ESG_OK;
    }
    for (size_t i = 0; i < sizeof session_attrs / sizeof session_attrs[0]; i++)
        if (strcmp(attrs.value, session_attrs[i]) == 0) {
            out->target_session_attrs = session_attrs[i];
            return ESG_OK;
        }
    return esg_error_set(err, ESG_ECONFIG,
                         "%s is invalid: expected any, read-write, read-only, primary, standby or "
                         "prefer-standby (libpq's target_session_attrs), got '%.60s'",
                         attrs.key, attrs.value);
}

esg_status esg_postgres_settings_read(const esg_env *env, const char *app_name,
                                      esg_postgres_settings *out, esg_error *err)
{
    *out = (esg_postgres_settings){.app_name = app_name};
    double pool_timeout_s = DEFAULT_POOL_TIMEOUT_S;
    esg_status status =
        require(env, app_name, "POSTGRES_DBNAME", "database name", &out->dbname, err);
    if (status == ESG_OK)
        status = require(env, app_name, "POSTGRES_HOST", "host", &out->host, err);
    if (status == ESG_OK)
        status = require(env, app_name, "POSTGRES_USER", "user", &out->user, err);
    if (status == ESG_OK)
        status = require(env, app_name, "POSTGRES_PASSWORD", "password", &out->password, err);
    if (status == ESG_OK)
        status = read_hosts(env, app_name, out, err);
    if (status == ESG_OK)
        status = optional_int(env, app_name, "POSTGRES_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_S,
                              0, MAX_TIMEOUT_S, &out->connect_timeout_s, err);
    if (status == ESG_OK)
        status = optional_int(env, app_name, "POSTGRES_LOCK_TIMEOUT", 0, 0, MAX_TIMEOUT_S,
                              &out->lock_timeout_s, err);
    if (status == ESG_OK)
        status = optional_int(env, app_name, "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
                              DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_S, 0, MAX_TIMEOUT_S,
                              &out->idle_in_transaction_s, err);
    if (status == ESG_OK)
        status = optional_int(env, app_name, "POSTGRES_POOL_SIZE", DEFAULT_POOL_SIZE, 1,
                              MAX_POOL_SIZE, &out->pool_size, err);
    if (status == ESG_OK)
        status =
            optional_int(env, app_name, "POSTGRES_POOL_MAX_OVERFLOW", DEFAULT_POOL_MAX_OVERFLOW, 0,
                         MAX_POOL_SIZE, &out->pool_max_overflow, err);
    if (status == ESG_OK)
        status = esg_setting_seconds(env, app_name, "POSTGRES_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT_S,
                                     MAX_TIMEOUT_S, &pool_timeout_s, err);
    if (status == ESG_OK)
        status = esg_setting_seconds(env, app_name, "POSTGRES_CONN_MAX_AGE", -1, MAX_TIMEOUT_S,
                                     &out->conn_max_age_s, err);
    if (status == ESG_OK)
        status =
            esg_setting_bool(env, app_name, "POSTGRES_PRE_PING", false, &out->is_pre_pinging, err);
    if (status == ESG_OK)
        status =
            esg_setting_bool(env, app_name, "CREATE_TABLE", true, &out->is_creating_tables, err);
    if (status == ESG_OK)
        status = esg_setting_bool(env, app_name, "IS_SNAPSHOTTING_ENABLED", false,
                                  &out->is_snapshotting, err);
    if (status != ESG_OK)
        return status;
    out->pool_timeout_ms = (int)(pool_timeout_s * 1000 + 0.5);
    if (pool_timeout_s > 0 && out->pool_timeout_ms == 0)
        out->pool_timeout_ms = 1;

    /* Python strips the schema; PostgreSQL folds it, unquoted there, to lower case. */
    esg_setting schema;
    esg_setting_lookup(env, app_name, "POSTGRES_SCHEMA", &schema);
    if (!esg_is_blank(schema.value)) {
        const char *start = schema.value + strspn(schema.value, " \t\r\n");
        size_t len = strlen(start);
        while (len > 0 && isspace((unsigned char)start[len - 1]))
            len--;
        if (len > ESG_POSTGRES_MAX_IDENTIFIER_LEN)
            return esg_error_set(err, ESG_ECONFIG,
                                 "%s is invalid: a schema name has at most %d bytes, got '%.80s'",
                                 schema.key, ESG_POSTGRES_MAX_IDENTIFIER_LEN, schema.value);
        for (size_t i = 0; i < len; i++)
            out->schema[i] = (char)tolower((unsigned char)start[i]);
        out->schema[len] = '\0';
    }
    return ESG_OK;
}
