/* The PostgreSQL backend's settings (POSTGRES_*, CREATE_TABLE, IS_SNAPSHOTTING_ENABLED), read
 * from the environment with "<APP_NAME>_" first, as eventsourcing 9.2's PostgreSQL factory reads
 * them, and checked before anything connects. Internal: not part of the public API. */
#ifndef ESG_POSTGRES_SETTINGS_H
#define ESG_POSTGRES_SETTINGS_H

#include <stdbool.h>

#include "esg/env.h"
#include "esg/error.h"

#define ESG_POSTGRES_MAX_IDENTIFIER_LEN 63 /* PostgreSQL's NAMEDATALEN - 1 */
#define ESG_POSTGRES_MAX_PORT_LIST 255     /* POSTGRES_PORT's text: 42 ports and their commas */

typedef struct esg_postgres_settings {
    /* Borrowed from the environment: valid while it is. */
    const char *host, *dbname, *user, *password;
    const char *app_name; /* the caller's: NULL or "" for Python's "stored" and "notification" */
    /* POSTGRES_HOST may list several hosts ("db-1,db-2", libpq's multi-host form): a connection
     * goes to the first that answers as target_session_attrs asks. */
    int n_hosts;
    /* POSTGRES_PORT checked: one port for every host, or one per host ("5432,5433"). */
    char port[ESG_POSTGRES_MAX_PORT_LIST + 1];
    /* POSTGRES_TARGET_SESSION_ATTRS (libpq's target_session_attrs): read-write by default when
     * there are several hosts, so that writes find the primary after a failover; NULL (libpq's
     * own default, or PGTARGETSESSIONATTRS) with one host unless set. Borrowed. */
    const char *target_session_attrs;
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
