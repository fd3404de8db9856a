/* The PostgreSQL backend's settings (POSTGRES_*, CREATE_TABLE, IS_SNAPSHOTTING_ENABLED), read
 * from the environment with "<APP_NAME>_" first, as eventsourcing 9.2's PostgreSQL factory reads
 * them, and checked before anything connects. Internal: not part of the public API. */
#ifndef ESG_POSTGRES_SETTINGS_H
#define ESG_POSTGRES_SETTINGS_H

#include <stdbool.h>

#include "esg/env.h"
#include "esg/error.h"

#define ESG_POSTGRES_MAX_IDENTIFIER_LEN 63 /* PostgreSQL's NAMEDATALEN - 1 */

typedef struct esg_postgres_settings {
    /* Borrowed from the environment: valid while it is. */
    const char *host, *dbname, *user, *password;
    const char *app_name; /* the caller's: NULL or "" for Python's "stored" and "notification" */
    int port;
    int connect_timeout_s;     /* 0: wait for ever, as libpq */
    int lock_timeout_s;        /* 0: none */
    int idle_in_transaction_s; /* 0: none */
    int pool_size;             /* connections kept open, >= 1 */
    int pool_max_overflow;     /* connections lent beyond pool_size, closed when given back */
    int pool_timeout_ms;       /* 0: fail at once when every connection is lent */
    double conn_max_age_s;     /* < 0: connections live for ever */
    bool is_pre_pinging;       /* a round trip checks an idle connection before it is lent */
    bool is_snapshotting;      /* IS_SNAPSHOTTING_ENABLED: the <app>_snapshots table too */
    bool is_creating_tables;   /* CREATE_TABLE: false when the tables are made by others */
    /* POSTGRES_SCHEMA stripped and folded to lower case, as PostgreSQL folds it unquoted; ""
     * for the default (search_path). */
    char schema[ESG_POSTGRES_MAX_IDENTIFIER_LEN + 1];
} esg_postgres_settings;

/* Reads and checks every setting into *out. A missing required one or a bad value is ESG_ECONFIG
 * naming the keys that were tried. */
esg_status esg_postgres_settings_read(const esg_env *env, const char *app_name,
                                      esg_postgres_settings *out, esg_error *err);

#endif
