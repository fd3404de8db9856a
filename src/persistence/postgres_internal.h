/* What the PostgreSQL backend's two files share: postgres_recorder.c (the recorder: connections,
 * writes, reads) and postgres_replicas.c (what replicas of an application on one database share:
 * leases, and hearing of each other's writes). Internal: not part of the public API. */
#ifndef ESG_POSTGRES_INTERNAL_H
#define ESG_POSTGRES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "persistence/connection_pool.h"
#include "persistence/group_commit.h"
#include "persistence/libpq.h"
#include "persistence/recorder_backend.h"

/* The statements every connection prepares when it opens (all but STMT_INSERT_EVENT, which
 * waits for the first write: see prepare_fixed). */
enum fixed_statement {
    STMT_BEGIN,
    STMT_LOCK,
    STMT_RESET_SEQUENCE,
    STMT_INSERT_EVENT,
    STMT_INSERT_TRACKING,
    STMT_COMMIT,
    STMT_MAX_NOTIFICATION_ID,
    STMT_MAX_TRACKING_ID,
    STMT_HAS_TRACKING_ID,
    STMT_NOTIFY,
    N_FIXED_STATEMENTS
};

/* The statements of the commands' replies (command_sql). */
enum command_statement {
    CMD_DELETE_EXPIRED_KEY, /* $1 key, $2 replaces_before */
    CMD_INSERT,             /* $1 key, $2 request hash, $3 reply, $4 recorded_at */
    CMD_SELECT,             /* $1 key, $2 not_before */
    CMD_DELETE_EXPIRED,     /* $1 before */
    N_COMMAND_STATEMENTS
};

typedef struct pg_connection {
    PGconn *conn;                    /* used by one thread at a time, lent by the pool */
    bool is_insert_prepared;         /* STMT_INSERT_EVENT, prepared by the first write */
    unsigned events_prepared;        /* bit per events_shape prepared on this connection */
    unsigned snapshots_prepared;     /* likewise, for the snapshots table */
    unsigned notifications_prepared; /* bit per notifications_shape prepared */
    struct timespec opened_at;       /* CLOCK_MONOTONIC, for POSTGRES_CONN_MAX_AGE */
} pg_connection;

/* The connection parameters, as libpq's keywords and values. */
enum conn_param {
    PARAM_HOST,
    PARAM_PORT,
    PARAM_DBNAME,
    PARAM_USER,
    PARAM_PASSWORD,
    PARAM_CONNECT_TIMEOUT,
    PARAM_OPTIONS,
    PARAM_CLIENT_ENCODING,
    PARAM_APPLICATION_NAME,
    PARAM_TARGET_SESSION_ATTRS,
    /* Set on the sessions of leases and watches only (empty, libpq's defaults, on the pool's):
     * they must find out within seconds that the server is gone, where a pool's connection finds
     * out at its next use. */
    PARAM_KEEPALIVES_IDLE,
    PARAM_KEEPALIVES_INTERVAL,
    PARAM_KEEPALIVES_COUNT,
    PARAM_TCP_USER_TIMEOUT,
    N_CONN_PARAMS
};

typedef struct postgres_recorder {
    esg_recorder base;                    /* first, so that an esg_recorder * is this */
    char *conn_values[N_CONN_PARAMS + 1]; /* owned strings for conn_keywords, NULL-ended */
    char *events_table;                   /* quoted and qualified: "schema"."app_events" */
    char *tracking_table;                 /* likewise "schema"."app_tracking" */
    char *snapshots_table;                /* likewise "schema"."app_snapshots", or NULL */
    char *replies_table;                  /* likewise "schema"."app_replies" (recorder.h) */
    /* The SQL of the statements of that table, sent unprepared (with CREATE_TABLE off the table
     * may be missing, and only calls with an idempotency key need it). */
    char *command_sql[N_COMMAND_STATEMENTS];
    char *fixed_sql[N_FIXED_STATEMENTS]; /* owned SQL of the fixed statements */
    int lock_timeout_s;                  /* POSTGRES_LOCK_TIMEOUT, 0 for none */
    double conn_max_age_s;               /* POSTGRES_CONN_MAX_AGE, < 0 for none */
    bool is_pre_pinging;                 /* POSTGRES_PRE_PING */
    bool has_pool;                       /* pool is initialised */
    esg_pool pool;                       /* POSTGRES_POOL_SIZE idle, + _MAX_OVERFLOW lent */
    bool has_writes;                     /* writes is initialised */
    esg_group_commit writes;             /* concurrent writers commit together */
    /* Every write transaction NOTIFYs this channel with this recorder's instance, so that the
     * watches of other replicas hear of it and this recorder's own watch can skip it. */
    char events_channel[32]; /* esg_events_<hash of events_table, hex> */
    char instance[17];       /* random, hex: which recorder wrote */
} postgres_recorder;

/* ---- postgres_recorder.c ---- */

/* Maps a failed command (res may be NULL when libpq could not even send it) to a status, with
 * what was being done and the server's message. Sets *is_broken when the connection is lost. */
esg_status pgr_error(const postgres_recorder *rec, PGconn *conn, const PGresult *res,
                     const char *doing, bool *is_broken, esg_error *err);

/* Connects with the parameters values (rec->conn_values, or a copy with keepalives set): nothing
 * prepared. *out is the caller's, closed with pgr_connection_close. */
esg_status pgr_connect_with(const postgres_recorder *rec, const char *const *values,
                            pg_connection **out, esg_error *err);

/* Closes a connection and frees it. NULL is allowed. */
void pgr_connection_close(pg_connection *c);

/* Runs one statement without parameters on a connection that is not in a pipeline. */
esg_status pgr_exec_simple(const postgres_recorder *rec, PGconn *conn, const char *sql,
                           const char *doing, esg_error *err);

/* Lends a connection of the pool (waiting up to POSTGRES_POOL_TIMEOUT); give it back with
 * pgr_pool_give_back, saying whether it broke. */
esg_status pgr_pool_borrow(postgres_recorder *rec, pg_connection **out, esg_error *err);
void pgr_pool_give_back(postgres_recorder *rec, pg_connection *c, bool is_broken);

/* ---- postgres_replicas.c: the recorder's lease and watch operations ---- */

esg_status pgr_lease_new(esg_recorder *recorder, const char *name, esg_recorder_lease **out,
                         esg_error *err);
esg_status pgr_lease_refresh(esg_recorder_lease *lease, bool *is_held, esg_error *err);
esg_status pgr_lease_nudge(esg_recorder_lease *lease, esg_error *err);
bool pgr_lease_take_nudge(esg_recorder_lease *lease);
void pgr_lease_free(esg_recorder_lease *lease);
esg_status pgr_watch_new(esg_recorder *recorder, esg_recorder_watch **out, esg_error *err);
esg_status pgr_watch_wait(esg_recorder_watch *watch, int timeout_ms, bool *has_news,
                          esg_error *err);
void pgr_watch_interrupt(esg_recorder_watch *watch);
void pgr_watch_free(esg_recorder_watch *watch);

#endif
