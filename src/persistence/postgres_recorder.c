/* The PostgreSQL backend ("eventsourcing.postgres"): the tables of eventsourcing 9.2's PostgreSQL
 * process recorder, on libpq, behind a pool of connections that each keep their prepared
 * statements and are opened again after the database restarts. */
#include "persistence/recorder_backend.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buffer.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/int_text.h"
#include "persistence/connection_pool.h"
#include "persistence/group_commit.h"
#include "persistence/libpq.h"
#include "persistence/postgres_internal.h"
#include "persistence/postgres_settings.h"
#include "core/alloc.h"

#define BACKEND_NAME "eventsourcing.postgres"

/* The types of the parameters, all sent in binary. */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_TEXT_ARRAY 1009
#define OID_UUID 2950

/* SQLSTATE codes this backend tells apart. */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

static const char *const conn_keywords[N_CONN_PARAMS + 1] = {
    [PARAM_HOST] = "host",
    [PARAM_PORT] = "port",
    [PARAM_DBNAME] = "dbname",
    [PARAM_USER] = "user",
    [PARAM_PASSWORD] = "password",
    [PARAM_CONNECT_TIMEOUT] = "connect_timeout",
    [PARAM_OPTIONS] = "options",
    [PARAM_CLIENT_ENCODING] = "client_encoding",
    [PARAM_APPLICATION_NAME] = "fallback_application_name",
    [PARAM_TARGET_SESSION_ATTRS] = "target_session_attrs",
    [PARAM_KEEPALIVES_IDLE] = "keepalives_idle",
    [PARAM_KEEPALIVES_INTERVAL] = "keepalives_interval",
    [PARAM_KEEPALIVES_COUNT] = "keepalives_count",
    [PARAM_TCP_USER_TIMEOUT] = "tcp_user_timeout",
    [N_CONN_PARAMS] = NULL,
};

static const char *const fixed_names[N_FIXED_STATEMENTS] = {
    [STMT_BEGIN] = "esg_begin",
    [STMT_LOCK] = "esg_lock",
    [STMT_RESET_SEQUENCE] = "esg_reset_sequence",
    [STMT_INSERT_EVENT] = "esg_insert_event",
    [STMT_INSERT_TRACKING] = "esg_insert_tracking",
    [STMT_COMMIT] = "esg_commit",
    [STMT_MAX_NOTIFICATION_ID] = "esg_max_notification_id",
    [STMT_MAX_TRACKING_ID] = "esg_max_tracking_id",
    [STMT_HAS_TRACKING_ID] = "esg_has_tracking_id",
    [STMT_NOTIFY] = "esg_notify",
};

static const Oid insert_event_types[] = {OID_UUID, OID_INT8, OID_TEXT, OID_BYTEA};
static const Oid tracking_types[] = {OID_TEXT, OID_INT8};

/* The shapes of the notifications query, as flags. */
enum notifications_shape {
    NOTIFICATIONS_STOP = 1,
    NOTIFICATIONS_TOPICS = 2,
    N_NOTIFICATIONS_SHAPES = 4
};

/* Both selects read these columns, so that one function reads their rows. */
#define SELECT_COLUMNS "SELECT notification_id, originator_id, originator_version, topic, state "
#define SELECT_SNAPSHOT_COLUMNS "SELECT 0::bigint, originator_id, originator_version, topic, state "

/* ---- Errors ---------------------------------------------------------------------------------- */

/* The first line of a libpq message, without its "ERROR:  " and trailing newline. */
static void first_line(const char *message, char *out, size_t out_size)
{
    if (message == NULL || message[0] == '\0')
        message = "no message from the server";
    static const char *const prefixes[] = {"ERROR:  ", "FATAL:  ", "PANIC:  "};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(message, prefixes[i], strlen(prefixes[i])) == 0)
            message += strlen(prefixes[i]);
    size_t len = strcspn(message, "\n");
    snprintf(out, out_size, "%.*s", (int)len, message);
}

static bool sqlstate_is(const char *sqlstate, const char *code)
{
    return sqlstate != NULL && strcmp(sqlstate, code) == 0;
}

/* Whether a failure leaves the connection unusable: lost, or ended by the server (a shutdown,
 * an administrator, an idle-in-transaction timeout), or on a server that became a standby (a
 * write refused as read-only: 25006), so that the pool connects again, to the new primary. */
static bool is_connection_failure(const PGconn *conn, const char *sqlstate)
{
    return PQstatus(conn) == CONNECTION_BAD ||
           (sqlstate != NULL &&
            (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0 ||
             strcmp(sqlstate, "25P03") == 0 || strcmp(sqlstate, "25006") == 0));
}

/* Maps a failed command (res may be NULL when libpq could not even send it) to a status, with
 * what was being done and the server's message. Sets *is_broken when the connection is lost. */
esg_status pgr_error(const postgres_recorder *rec, PGconn *conn, const PGresult *res,
                     const char *doing, bool *is_broken, esg_error *err)
{
    const char *sqlstate = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char message[ESG_ERROR_MESSAGE_SIZE];
    first_line(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn), message,
               sizeof message);
    if (is_connection_failure(conn, sqlstate)) {
        *is_broken = true;
        return esg_error_set(err, ESG_EUNAVAILABLE, "%s: database connection lost, retry (%s)",
                             doing, message);
    }
    if (sqlstate_is(sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE))
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "%s: database is locked, retry (waited POSTGRES_LOCK_TIMEOUT, %d s: "
                             "%s)",
                             doing, rec->lock_timeout_s, message);
    if (sqlstate_is(sqlstate, SQLSTATE_UNIQUE_VIOLATION))
        return esg_error_set(err, ESG_ECONFLICT, "%s: %s", doing, message);
    /* Serialization failures, deadlocks, cancelled statements, too many connections, the server
     * out of memory: conditions that pass, so retrying is the answer. */
    if (sqlstate_is(sqlstate, "40001") || sqlstate_is(sqlstate, "40P01") ||
        sqlstate_is(sqlstate, "57014") || sqlstate_is(sqlstate, "53300") ||
        sqlstate_is(sqlstate, "53200"))
        return esg_error_set(err, ESG_EUNAVAILABLE, "%s: %s, retry", doing, message);
    /* A full disk, a missing table or schema, a permission denied, a corrupt row: retrying the
     * same call will not help. */
    return esg_error_set(err, ESG_EIO, "%s: %s (SQLSTATE %s)", doing, message,
                         sqlstate != NULL ? sqlstate : "none");
}

/* ---- Connections ----------------------------------------------------------------------------- */

/* Notices ("relation already exists, skipping") and errors that arrive on an idle connection
 * (a server shutting down) are not for the user's terminal: failures show up as results. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void pgr_connection_close(pg_connection *c)
{
    if (c == NULL)
        return;
    PQfinish(c->conn);
    esg_free(c);
}

/* Runs one statement without parameters on a connection that is not in a pipeline. */
esg_status pgr_exec_simple(const postgres_recorder *rec, PGconn *conn, const char *sql,
                           const char *doing, esg_error *err)
{
    bool is_broken = false;
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    esg_status rc = ESG_OK;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        rc = pgr_error(rec, conn, res, doing, &is_broken, err);
    PQclear(res);
    return rc;
}

static esg_status prepare(const postgres_recorder *rec, PGconn *conn, const char *name,
                          const char *sql, int n_params, const Oid *types, bool *is_broken,
                          esg_error *err)
{
    esg_status rc = ESG_OK;
    PGresult *res = PQprepare(conn, name, sql, n_params, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char doing[96];
        snprintf(doing, sizeof doing, "cannot prepare statement %s", name);
        rc = pgr_error(rec, conn, res, doing, is_broken, err);
    }
    PQclear(res);
    return rc;
}

/* Prepares the fixed statements but the insert of events: preparing an INSERT locks its table
 * (ROW EXCLUSIVE), so it would wait for a writer's EXCLUSIVE lock, and a reader that opens a
 * connection must not. The first write prepares it, in its own transaction, under the lock. */
static esg_status prepare_fixed(const postgres_recorder *rec, PGconn *conn, esg_error *err)
{
    bool is_broken = false;
    esg_status rc = ESG_OK;
    for (int i = 0; rc == ESG_OK && i < N_FIXED_STATEMENTS; i++) {
        int n_params = 0;
        const Oid *types = NULL;
        switch ((enum fixed_statement)i) {
        case STMT_INSERT_EVENT:
            continue;
        case STMT_INSERT_TRACKING:
        case STMT_HAS_TRACKING_ID:
            n_params = 2;
            types = tracking_types;
            break;
        case STMT_MAX_TRACKING_ID:
            n_params = 1;
            types = tracking_types;
            break;
        default:
            break;
        }
        rc =
            prepare(rec, conn, fixed_names[i], rec->fixed_sql[i], n_params, types, &is_broken, err);
    }
    return rc;
}

/* Connects to the database with the parameters values (rec->conn_values, or a lease's): the
 * caller prepares statements and creates tables. */
esg_status pgr_connect_with(const postgres_recorder *rec, const char *const *values,
                            pg_connection **out, esg_error *err)
{
    esg_status rc = ESG_OK;
    pg_connection *c = esg_calloc(1, sizeof *c);
    if (c == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory connecting to PostgreSQL");
    c->conn = PQconnectdbParams(conn_keywords, values, 0);
    if (c->conn == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory connecting to PostgreSQL");
        goto out;
    }
    if (PQstatus(c->conn) != CONNECTION_OK) {
        char message[ESG_ERROR_MESSAGE_SIZE];
        first_line(PQerrorMessage(c->conn), message, sizeof message);
        rc = esg_error_set(err, ESG_EUNAVAILABLE,
                           "cannot connect to PostgreSQL database '%s' at %s:%s, retry (%s)",
                           rec->conn_values[PARAM_DBNAME], rec->conn_values[PARAM_HOST],
                           rec->conn_values[PARAM_PORT], message);
        goto out;
    }
    PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
    clock_gettime(CLOCK_MONOTONIC, &c->opened_at);
    *out = c;
    c = NULL;
out:
    pgr_connection_close(c);
    return rc;
}

static esg_status connect_db(const postgres_recorder *rec, pg_connection **out, esg_error *err)
{
    return pgr_connect_with(rec, (const char *const *)rec->conn_values, out, err);
}

/* Opens one more connection, with its fixed statements prepared. */
static esg_status connection_open(const postgres_recorder *rec, pg_connection **out, esg_error *err)
{
    pg_connection *c = NULL;
    esg_status rc = connect_db(rec, &c, err);
    if (rc == ESG_OK)
        rc = prepare_fixed(rec, c->conn, err);
    if (rc == ESG_OK) {
        *out = c;
        c = NULL;
    }
    pgr_connection_close(c);
    return rc;
}

/* Whether an idle connection can be used. Nothing ever arrives on an idle connection but the
 * server's farewell (a shutdown, an administrator's kill) or its end of file, so any byte to
 * read, or a socket in error, means that it is gone, without a round trip to ask. */
static bool connection_is_alive(pg_connection *c)
{
    if (PQstatus(c->conn) != CONNECTION_OK || PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->conn), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    int n = poll(&pfd, 1, 0);
    return n == 0;
}

/* Whether a connection has lived longer than POSTGRES_CONN_MAX_AGE. */
static bool connection_is_too_old(const postgres_recorder *rec, const pg_connection *c)
{
    return rec->conn_max_age_s >= 0 &&
           esg_clock_seconds_since(&c->opened_at) >= rec->conn_max_age_s;
}

/* POSTGRES_PRE_PING: a round trip, as Python's "SELECT 1", before an idle connection is lent. */
static bool connection_answers(pg_connection *c)
{
    PGresult *res = PQexec(c->conn, "SELECT 1");
    bool is_ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return is_ok;
}

/* ---- The pool -------------------------------------------------------------------------------- */

static esg_status pool_open(void *owner, void **out, esg_error *err)
{
    return connection_open(owner, (pg_connection **)out, err);
}

static void pool_close(void *owner, void *connection)
{
    (void)owner;
    pgr_connection_close(connection);
}

/* An idle connection that the database dropped (it restarted) is replaced before anything is
 * sent on it. */
static bool pool_is_usable(void *owner, void *connection)
{
    const postgres_recorder *rec = owner;
    pg_connection *c = connection;
    return connection_is_alive(c) && !connection_is_too_old(rec, c) &&
           (!rec->is_pre_pinging || connection_answers(c));
}

static const esg_pool_ops postgres_pool_ops = {
    .open = pool_open, .close = pool_close, .is_usable = pool_is_usable};

esg_status pgr_pool_borrow(postgres_recorder *rec, pg_connection **out, esg_error *err)
{
    return esg_pool_borrow(&rec->pool, (void **)out, err);
}

/* Takes a lent connection back; a broken one is closed, and its slot freed for a new one. */
void pgr_pool_give_back(postgres_recorder *rec, pg_connection *c, bool is_broken)
{
    bool is_reusable = c != NULL && !is_broken && PQstatus(c->conn) == CONNECTION_OK &&
                       !connection_is_too_old(rec, c);
    esg_pool_give_back(&rec->pool, c, is_reusable);
}

/* ---- Binary values --------------------------------------------------------------------------- */

static void put_be64(uint8_t out[8], int64_t value)
{
    uint64_t v = (uint64_t)value;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static void put_be32(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

/* Reads a binary integer column of 2, 4 or 8 bytes; false for any other length. */
static bool get_int(const PGresult *res, int row, int column, int64_t *out)
{
    const uint8_t *p = (const uint8_t *)PQgetvalue(res, row, column);
    int len = PQgetlength(res, row, column);
    if (len != 2 && len != 4 && len != 8)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = (v << 8) | p[i];
    if (len == 2)
        *out = (int16_t)(uint16_t)v;
    else if (len == 4)
        *out = (int32_t)(uint32_t)v;
    else
        *out = (int64_t)v;
    return true;
}

/* ---- Writing --------------------------------------------------------------------------------- */

/* What one statement of the insert pipeline is. */
typedef enum step_kind {
    STEP_BEGIN,
    STEP_LOCK,
    STEP_RESET_SEQUENCE,
    STEP_PREPARE_INSERT,
    STEP_EVENT,
    STEP_TRACKING,
    STEP_COMMAND_DELETE,
    STEP_COMMAND_INSERT,
    STEP_COMMIT,
    STEP_NOTIFY
} step_kind;

/* The statements of one insert pipeline, in order: BEGIN, then with events LOCK, the sequence
 * reset, the preparation of the insert (on a connection's first write) and an insert per event,
 * then the tracking records, for each command record a delete of its key's expired record and
 * its insert, COMMIT, and with events a NOTIFY in a transaction of its own (the
 * implicit one before the sync): in the write transaction it would hold PostgreSQL's lock on
 * the notification queue through the commit, its WAL flush included, and so make every
 * notifying commit of the database (all the applications') wait for the one before. */
typedef struct pipeline_shape {
    size_t n_events;
    bool has_prepare;
    size_t n_trackings;
    size_t n_commands;
} pipeline_shape;

static size_t pipeline_length(const pipeline_shape *p)
{
    return 1 + (p->n_events > 0 ? 3 + p->has_prepare + p->n_events : 0) + p->n_trackings +
           2 * p->n_commands + 1;
}

/* The kind of statement number step; *event_index is the event's, tracking record's or command
 * record's index. */
static step_kind step_at(const pipeline_shape *p, size_t step, size_t *event_index)
{
    if (step-- == 0)
        return STEP_BEGIN;
    if (p->n_events > 0) {
        if (step == 0)
            return STEP_LOCK;
        if (step == 1)
            return STEP_RESET_SEQUENCE;
        step -= 2;
        if (p->has_prepare && step-- == 0)
            return STEP_PREPARE_INSERT;
        if (step < p->n_events) {
            *event_index = step;
            return STEP_EVENT;
        }
        step -= p->n_events;
    }
    if (step < p->n_trackings) {
        *event_index = step;
        return STEP_TRACKING;
    }
    step -= p->n_trackings;
    if (step < 2 * p->n_commands) {
        *event_index = step / 2;
        return step % 2 == 0 ? STEP_COMMAND_DELETE : STEP_COMMAND_INSERT;
    }
    return step == 2 * p->n_commands ? STEP_COMMIT : STEP_NOTIFY;
}

static esg_status send_prepared(PGconn *conn, enum fixed_statement which, int n_params,
                                const char *const *values, const int *lengths)
{
    static const int binary[4] = {1, 1, 1, 1};
    return PQsendQueryPrepared(conn, fixed_names[which], n_params, values, lengths,
                               n_params > 0 ? binary : NULL, 1)
               ? ESG_OK
               : ESG_EUNAVAILABLE;
}

/* What one insert transaction writes (all borrowed). */
typedef struct insert_rows {
    const esg_stored_event *events;
    size_t n_events;
    const esg_tracking *trackings;
    size_t n_trackings;
    const esg_command_record *const *commands;
    size_t n_commands;
} insert_rows;

/* Sends a statement of the commands' replies table, unprepared, in binary. */
static esg_status send_command_sql(const postgres_recorder *rec, PGconn *conn,
                                   enum command_statement which, int n_params,
                                   const char *const *values, const int *lengths)
{
    static const int binary[4] = {1, 1, 1, 1};
    static const Oid types[N_COMMAND_STATEMENTS][4] = {
        [CMD_DELETE_EXPIRED_KEY] = {OID_TEXT, OID_INT8},
        [CMD_INSERT] = {OID_TEXT, OID_TEXT, OID_BYTEA, OID_INT8},
        [CMD_SELECT] = {OID_TEXT, OID_INT8},
        [CMD_DELETE_EXPIRED] = {OID_INT8},
    };
    return PQsendQueryParams(conn, rec->command_sql[which], n_params, types[which], values, lengths,
                             binary, 1)
               ? ESG_OK
               : ESG_EUNAVAILABLE;
}

/* Sends the two statements of a command record: its key's expired record deleted, it inserted. */
static esg_status send_command_record(const postgres_recorder *rec, PGconn *conn,
                                      const esg_command_record *command)
{
    uint8_t replaces_before[8], recorded_at[8];
    put_be64(replaces_before, command->replaces_before);
    put_be64(recorded_at, command->recorded_at);
    size_t key_len = strlen(command->key);
    if (command->reply_len > INT_MAX)
        return ESG_EINVAL;
    const char *delete_values[2] = {command->key, (const char *)replaces_before};
    const int delete_lengths[2] = {(int)key_len, 8};
    esg_status rc =
        send_command_sql(rec, conn, CMD_DELETE_EXPIRED_KEY, 2, delete_values, delete_lengths);
    const char *insert_values[4] = {command->key, command->request_hash,
                                    command->reply != NULL ? command->reply : "",
                                    (const char *)recorded_at};
    const int insert_lengths[4] = {(int)key_len, ESG_REQUEST_HASH_SIZE - 1, (int)command->reply_len,
                                   8};
    if (rc == ESG_OK)
        rc = send_command_sql(rec, conn, CMD_INSERT, 4, insert_values, insert_lengths);
    return rc;
}

/* Sends every statement of the transaction without waiting for a reply, ending with a sync. */
static esg_status send_insert_pipeline(const postgres_recorder *rec, PGconn *conn,
                                       const pipeline_shape *shape, const insert_rows *rows)
{
    const esg_stored_event *events = rows->events;
    size_t n_events = rows->n_events;
    const esg_tracking *trackings = rows->trackings;
    size_t n_trackings = rows->n_trackings;
    esg_status rc = send_prepared(conn, STMT_BEGIN, 0, NULL, NULL);
    if (rc == ESG_OK && n_events > 0)
        rc = send_prepared(conn, STMT_LOCK, 0, NULL, NULL);
    if (rc == ESG_OK && n_events > 0)
        rc = send_prepared(conn, STMT_RESET_SEQUENCE, 0, NULL, NULL);
    if (rc == ESG_OK && shape->has_prepare &&
        !PQsendPrepare(conn, fixed_names[STMT_INSERT_EVENT], rec->fixed_sql[STMT_INSERT_EVENT], 4,
                       insert_event_types))
        rc = ESG_EUNAVAILABLE;
    for (size_t i = 0; rc == ESG_OK && i < n_events; i++) {
        /* libpq copies the values into its output buffer, so these can live on the stack. An
         * empty state is an empty bytea, never NULL (a NULL pointer would send SQL NULL). */
        uint8_t version[8];
        put_be64(version, events[i].originator_version);
        const char *values[4] = {
            (const char *)events[i].originator_id.bytes,
            (const char *)version,
            events[i].topic,
            events[i].state != NULL ? (const char *)events[i].state : "",
        };
        size_t topic_len = strlen(events[i].topic);
        if (topic_len > INT_MAX || events[i].state_len > INT_MAX)
            return ESG_EINVAL;
        const int lengths[4] = {16, 8, (int)topic_len, (int)events[i].state_len};
        rc = send_prepared(conn, STMT_INSERT_EVENT, 4, values, lengths);
    }
    for (size_t i = 0; rc == ESG_OK && i < n_trackings; i++) {
        const esg_tracking *tracking = &trackings[i];
        uint8_t notification_id[8];
        put_be64(notification_id, tracking->notification_id);
        size_t name_len = strlen(tracking->application_name);
        if (name_len > INT_MAX)
            return ESG_EINVAL;
        const char *values[2] = {tracking->application_name, (const char *)notification_id};
        const int lengths[2] = {(int)name_len, 8};
        rc = send_prepared(conn, STMT_INSERT_TRACKING, 2, values, lengths);
    }
    for (size_t i = 0; rc == ESG_OK && i < rows->n_commands; i++)
        rc = send_command_record(rec, conn, rows->commands[i]);
    if (rc == ESG_OK)
        rc = send_prepared(conn, STMT_COMMIT, 0, NULL, NULL);
    if (rc == ESG_OK && n_events > 0)
        rc = send_prepared(conn, STMT_NOTIFY, 0, NULL, NULL);
    if (rc == ESG_OK && !PQpipelineSync(conn))
        rc = ESG_EUNAVAILABLE;
    return rc;
}

/* Sends what libpq holds, reading replies meanwhile so that the server never blocks writing
 * them while we block writing to it (the deadlock that libpq warns pipelines about). */
static bool flush_pipeline(PGconn *conn)
{
    int rc;
    while ((rc = PQflush(conn)) == 1) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return false;
        if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
            return false;
    }
    return rc == 0;
}

/* A message for a version, tracking record or command record that is already there, naming it. */
static esg_status conflict_error(const esg_stored_event *events, size_t event_index, step_kind kind,
                                 const esg_tracking *trackings, esg_error *err)
{
    if (kind == STEP_COMMAND_INSERT || kind == STEP_COMMAND_DELETE)
        return esg_error_set(err, ESG_ECONFLICT,
                             "cannot record events: the command's idempotency key is recorded "
                             "already");
    if (kind == STEP_TRACKING)
        return esg_error_set(err, ESG_ECONFLICT,
                             "cannot record events: notification %lld of %s is already tracked",
                             (long long)trackings[event_index].notification_id,
                             trackings[event_index].application_name);
    char hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(&events[event_index].originator_id, hex);
    return esg_error_set(err, ESG_ECONFLICT,
                         "cannot record events: version %lld of aggregate %s is already recorded",
                         (long long)events[event_index].originator_version, hex);
}

/* All events and the tracking records in one transaction, sent as one pipeline (one round trip).
 * The transaction takes eventsourcing 9.2's EXCLUSIVE lock on the events table first, so that
 * writers (of this library or of Python's) take turns from before their ids are drawn until they
 * commit, and then sets the id sequence to one past the highest committed id: ids are given in
 * commit order, and a rolled-back transaction gives its ids back instead of leaving a gap. */
static esg_status insert_in_one_transaction(postgres_recorder *rec, const insert_rows *rows,
                                            int64_t *notification_ids, esg_error *err)
{
    const esg_stored_event *events = rows->events;
    size_t n_events = rows->n_events;
    const esg_tracking *trackings = rows->trackings;
    pg_connection *c = NULL;
    bool is_broken = false;
    bool is_in_pipeline = false;
    bool is_committed = false;
    /* The connection went before the server said how the transaction ended: it may have
     * committed. Once the server reports an error, nothing after it ran, COMMIT included. */
    bool is_outcome_unknown = false;
    const char *doing = "cannot record events";
    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    PGconn *conn = c->conn;

    if (!PQenterPipelineMode(conn)) {
        status = pgr_error(rec, conn, NULL, doing, &is_broken, err);
        is_broken = true;
        goto out;
    }
    is_in_pipeline = true;
    if (PQsetnonblocking(conn, 1) != 0) {
        status = pgr_error(rec, conn, NULL, doing, &is_broken, err);
        is_broken = true;
        goto out;
    }
    pipeline_shape shape = {
        .n_events = n_events,
        .has_prepare = n_events > 0 && !c->is_insert_prepared,
        .n_trackings = rows->n_trackings,
        .n_commands = rows->n_commands,
    };
    status = send_insert_pipeline(rec, conn, &shape, rows);
    if (status == ESG_EINVAL) {
        /* Nothing reached the server but some of the pipeline: throw the connection away. */
        is_broken = true;
        status = esg_error_set(err, ESG_EINVAL, "%s: a topic, state or reply is over 2 GiB", doing);
        goto out;
    }
    if (status != ESG_OK || !flush_pipeline(conn)) {
        status = pgr_error(rec, conn, NULL, doing, &is_broken, err);
        is_broken = true;
        is_outcome_unknown = true;
        goto out;
    }

    /* Each statement's result, then NULL; after the first failure the rest are "aborted". */
    size_t n_steps = pipeline_length(&shape);
    for (size_t step = 0; step < n_steps; step++) {
        size_t event_index = 0;
        step_kind kind = step_at(&shape, step, &event_index);
        PGresult *res = PQgetResult(conn);
        if (res == NULL) {
            if (status == ESG_OK && !is_committed) {
                status = pgr_error(rec, conn, NULL, doing, &is_broken, err);
                is_outcome_unknown = true;
            }
            is_broken = true;
            goto out;
        }
        ExecStatusType result = PQresultStatus(res);
        if (result == PGRES_PIPELINE_ABORTED) {
            PQclear(res);
        } else if (result == PGRES_COMMAND_OK || result == PGRES_TUPLES_OK) {
            if (kind == STEP_EVENT) {
                int64_t id = 0;
                if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) || !get_int(res, 0, 0, &id)) {
                    status = esg_error_set(err, ESG_EIO, "%s: the database gave no notification id",
                                           doing);
                } else if (notification_ids != NULL) {
                    notification_ids[event_index] = id;
                }
            }
            if (kind == STEP_PREPARE_INSERT)
                c->is_insert_prepared = true; /* prepared statements outlive transactions */
            is_committed = is_committed || kind == STEP_COMMIT;
            PQclear(res);
        } else {
            const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            /* (a NOTIFY that failed after the commit: the others hear of it at the next write) */
            if (status == ESG_OK && !is_committed) {
                if (sqlstate_is(sqlstate, SQLSTATE_UNIQUE_VIOLATION))
                    status = conflict_error(events, event_index, kind, trackings, err);
                else
                    status = pgr_error(rec, conn, res, doing, &is_broken, err);
                /* libpq's own report of a lost connection has no SQLSTATE. */
                is_outcome_unknown = sqlstate == NULL;
            }
            bool is_lost = is_connection_failure(conn, sqlstate);
            PQclear(res); /* sqlstate points into it */
            if (is_lost) {
                is_broken = true;
                goto out;
            }
        }
        /* The NULL that ends each statement's results. */
        res = PQgetResult(conn);
        if (res != NULL) {
            PQclear(res);
            if (status == ESG_OK)
                status = esg_error_set(err, ESG_EINTERNAL, "%s: unexpected extra result", doing);
            is_broken = true;
            goto out;
        }
    }
    PGresult *sync = PQgetResult(conn);
    bool is_synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!is_synced) {
        /* After a commit that succeeded the call did too: only the connection is lost. */
        if (status == ESG_OK && !is_committed)
            status = pgr_error(rec, conn, NULL, doing, &is_broken, err);
        is_broken = true;
        goto out;
    }
    if (status == ESG_OK && !is_committed)
        status = esg_error_set(err, ESG_EINTERNAL, "%s: the commit gave no result", doing);

out:
    if (is_in_pipeline && !is_broken) {
        if (PQsetnonblocking(conn, 0) != 0 || !PQexitPipelineMode(conn))
            is_broken = true;
    }
    /* A failed statement leaves the transaction open and aborted: end it. */
    if (!is_broken && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            is_broken = true;
        PQclear(res);
    }
    if (is_outcome_unknown && !is_committed && status == ESG_EUNAVAILABLE && err != NULL) {
        size_t len = strlen(err->message);
        snprintf(err->message + len, sizeof err->message - len,
                 "; the events may have been recorded if the commit reached the database");
    }
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

static void insert_one_by_one(postgres_recorder *rec, esg_write_request *group)
{
    for (esg_write_request *req = group; req != NULL; req = req->next) {
        const insert_rows rows = {req->events,      req->n_events, req->trackings,
                                  req->n_trackings, &req->command, req->command != NULL};
        req->status = insert_in_one_transaction(rec, &rows, req->notification_ids, req->err);
    }
}

/* A group of writes (group_commit.h) as one transaction when it can be: the events and tracking
 * records of every request merged, under one lock, with one commit and one round trip. When that
 * transaction fails on a conflict (or on a value it refuses), none of it was recorded, and each
 * request is written on its own, so that only those at fault fail; any other failure (the
 * database unreachable, the outcome of the commit unknown) is every request's. */
static void commit_group(void *owner, esg_write_request *group)
{
    postgres_recorder *rec = owner;
    if (group->next == NULL) {
        insert_one_by_one(rec, group);
        return;
    }
    size_t n_events = 0, n_trackings = 0, n_commands = 0;
    for (esg_write_request *req = group; req != NULL; req = req->next) {
        n_events += req->n_events;
        n_trackings += req->n_trackings;
        n_commands += req->command != NULL;
    }
    esg_stored_event *events = esg_malloc((n_events ? n_events : 1) * sizeof *events);
    esg_tracking *trackings = esg_malloc((n_trackings ? n_trackings : 1) * sizeof *trackings);
    const esg_command_record **commands =
        esg_malloc((n_commands ? n_commands : 1) * sizeof *commands);
    int64_t *ids = esg_malloc((n_events ? n_events : 1) * sizeof *ids);
    esg_error merged_err = {0};
    esg_status status = ESG_ENOMEM; /* then one by one, which needs no more memory */
    if (events != NULL && trackings != NULL && commands != NULL && ids != NULL) {
        size_t e = 0, t = 0, k = 0;
        for (esg_write_request *req = group; req != NULL; req = req->next) {
            if (req->n_events > 0) /* shallow copies; memcpy takes no NULL */
                memcpy(events + e, req->events, req->n_events * sizeof *events);
            if (req->n_trackings > 0)
                memcpy(trackings + t, req->trackings, req->n_trackings * sizeof *trackings);
            if (req->command != NULL)
                commands[k++] = req->command;
            e += req->n_events;
            t += req->n_trackings;
        }
        const insert_rows rows = {events, n_events, trackings, n_trackings, commands, n_commands};
        status = insert_in_one_transaction(rec, &rows, ids, &merged_err);
    }
    if (status == ESG_OK) {
        size_t e = 0;
        for (esg_write_request *req = group; req != NULL; req = req->next) {
            if (req->notification_ids != NULL && req->n_events > 0)
                memcpy(req->notification_ids, ids + e, req->n_events * sizeof *ids);
            e += req->n_events;
            req->status = ESG_OK;
        }
    } else if (status == ESG_ECONFLICT || status == ESG_EINVAL || status == ESG_ENOMEM) {
        insert_one_by_one(rec, group);
    } else {
        for (esg_write_request *req = group; req != NULL; req = req->next) {
            req->status = status;
            if (req->err != NULL)
                *req->err = merged_err;
        }
    }
    esg_free(ids);
    esg_free(commands);
    esg_free(trackings);
    esg_free(events);
}

/* Concurrent writers commit together (group_commit.h): with fsync and synchronous_commit on,
 * each commit waits for the disk, and they share that wait instead of taking turns at it. */
static esg_status
postgres_recorder_insert_events_tracked(esg_recorder *recorder, const esg_stored_event *events,
                                        size_t n_events, const esg_tracking *trackings,
                                        size_t n_trackings, const esg_command_record *command,
                                        int64_t *notification_ids, esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    return esg_group_commit_insert(&rec->writes, events, n_events, trackings, n_trackings, command,
                                   notification_ids, err, commit_group, rec);
}

/* ---- Reading --------------------------------------------------------------------------------- */

/* Reads a row of SELECT_COLUMNS (binary). stored points into the result, valid until it is
 * cleared. Python never writes NULLs, so any is a corrupt row. */
static esg_status read_row(const PGresult *res, int row, int64_t *id, esg_stored_event *stored,
                           esg_error *err)
{
    static const char *const names[] = {"notification_id", "originator_id", "originator_version",
                                        "topic", "state"};
    for (int column = 0; column < 5; column++)
        if (PQgetisnull(res, row, column))
            return esg_error_set(err, ESG_EIO, "corrupt row: %s is NULL", names[column]);
    if (!get_int(res, row, 0, id))
        return esg_error_set(err, ESG_EIO, "corrupt row: notification_id is not an integer");
    if (PQgetlength(res, row, 1) != 16)
        return esg_error_set(err, ESG_EIO,
                             "corrupt row at notification id %lld: originator_id is "
                             "not a uuid",
                             (long long)*id);
    memcpy(stored->originator_id.bytes, PQgetvalue(res, row, 1), 16);
    if (!get_int(res, row, 2, &stored->originator_version))
        return esg_error_set(err, ESG_EIO,
                             "corrupt row at notification id %lld: originator_version is not an "
                             "integer",
                             (long long)*id);
    /* libpq ends every value with a NUL, binary ones too. */
    stored->topic = PQgetvalue(res, row, 3);
    stored->state = (uint8_t *)PQgetvalue(res, row, 4);
    stored->state_len = (size_t)PQgetlength(res, row, 4);
    return ESG_OK;
}

/* Appends every row of a select's result to events, or to notifications (the other is NULL). */
static esg_status read_rows(const PGresult *res, esg_stored_event_list *events,
                            esg_notification_list *notifications, esg_error *err)
{
    esg_status status = ESG_OK;
    for (int row = 0; status == ESG_OK && row < PQntuples(res); row++) {
        int64_t id = 0;
        esg_stored_event stored;
        status = read_row(res, row, &id, &stored, err);
        if (status == ESG_OK)
            status = events != NULL ? esg_stored_event_list_push(events, &stored, err)
                                    : esg_notification_list_push(notifications, id, &stored, err);
    }
    return status;
}

/* Runs a prepared query (binary parameters and results) and checks that it gave rows. */
static esg_status exec_query(const postgres_recorder *rec, pg_connection *c, const char *name,
                             int n_params, const char *const *values, const int *lengths,
                             const char *doing, PGresult **out, bool *is_broken, esg_error *err)
{
    static const int binary[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    PGresult *res = PQexecPrepared(c->conn, name, n_params, values, lengths, binary, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        esg_status status = pgr_error(rec, c->conn, res, doing, is_broken, err);
        PQclear(res);
        return status;
    }
    *out = res;
    return ESG_OK;
}

/* Selects an aggregate's events, or its snapshots. */
static esg_status postgres_recorder_select_versions(esg_recorder *recorder, bool is_snapshots,
                                                    const esg_uuid *originator_id,
                                                    const esg_select_events_options *options,
                                                    esg_stored_event_list *out, esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    pg_connection *c = NULL;
    PGresult *res = NULL;
    bool is_broken = false;
    esg_events_query query;
    esg_events_query_of(options, is_snapshots, &query);
    unsigned shape = query.shape;
    char name[32];
    snprintf(name, sizeof name, "esg_%s_%u", is_snapshots ? "snapshots" : "events", shape);
    int n_params = 1 + (int)query.n_numbers;

    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    unsigned *prepared = is_snapshots ? &c->snapshots_prepared : &c->events_prepared;
    if (!(*prepared & (1u << shape))) {
        char sql[512];
        /* The snapshots table has no notification id: read 0 there. */
        esg_events_query_sql(sql, sizeof sql,
                             is_snapshots ? SELECT_SNAPSHOT_COLUMNS : SELECT_COLUMNS,
                             is_snapshots ? rec->snapshots_table : rec->events_table, shape, true);
        static const Oid types[] = {OID_UUID, OID_INT8, OID_INT8, OID_INT8};
        status = prepare(rec, c->conn, name, sql, n_params, types, &is_broken, err);
        if (status != ESG_OK)
            goto out;
        *prepared |= 1u << shape;
    }
    const char *values[4] = {(const char *)originator_id->bytes};
    int lengths[4] = {16};
    uint8_t be64[3][8];
    for (int i = 1; i < n_params; i++) {
        put_be64(be64[i - 1], query.numbers[i - 1]);
        values[i] = (const char *)be64[i - 1];
        lengths[i] = 8;
    }
    status =
        exec_query(rec, c, name, n_params, values, lengths, query.doing, &res, &is_broken, err);
    if (status == ESG_OK)
        status = read_rows(res, out, NULL, err);
out:
    PQclear(res);
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

/* A snapshot in a transaction of its own, as Python's aggregate recorder writes it (no table
 * lock: snapshots have no notification ids to keep in order). */
static esg_status postgres_recorder_insert_snapshot(esg_recorder *recorder,
                                                    const esg_stored_event *snapshot,
                                                    esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    pg_connection *c = NULL;
    bool is_broken = false;
    size_t topic_len = strlen(snapshot->topic);
    if (topic_len > INT_MAX || snapshot->state_len > INT_MAX)
        return esg_error_set(err, ESG_EINVAL, "a snapshot of more than 2 GiB cannot be recorded");
    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    esg_buffer sql = {0};
    esg_buffer_put_str(&sql, "INSERT INTO ");
    esg_buffer_put_str(&sql, rec->snapshots_table);
    esg_buffer_put_str(&sql, " (originator_id, originator_version, topic, state) "
                             "VALUES ($1, $2, $3, $4)");
    char *text = esg_buffer_take(&sql, NULL);
    uint8_t version[8];
    put_be64(version, snapshot->originator_version);
    const char *values[4] = {(const char *)snapshot->originator_id.bytes, (const char *)version,
                             snapshot->topic,
                             snapshot->state != NULL ? (const char *)snapshot->state : ""};
    const int lengths[4] = {16, 8, (int)topic_len, (int)snapshot->state_len};
    static const int binary[4] = {1, 1, 1, 1};
    if (text == NULL) {
        status = esg_error_set(err, ESG_ENOMEM, "out of memory recording a snapshot");
    } else {
        PGresult *res =
            PQexecParams(c->conn, text, 4, insert_event_types, values, lengths, binary, 1);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            status = pgr_error(rec, c->conn, res, "cannot record a snapshot", &is_broken, err);
        PQclear(res);
    }
    esg_free(text);
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

/* Topics as a binary text[]: dimensions, then each element's length and bytes. */
static uint8_t *topics_array(const char *const *topics, size_t n_topics, int *len)
{
    size_t size = 20;
    for (size_t i = 0; i < n_topics; i++) {
        size_t topic_len = strlen(topics[i]);
        if (topic_len > INT_MAX || size + 4 + topic_len > INT_MAX)
            return NULL;
        size += 4 + topic_len;
    }
    uint8_t *array = esg_malloc(size);
    if (array == NULL)
        return NULL;
    put_be32(array, 1);            /* one dimension */
    put_be32(array + 4, 0);        /* no NULLs */
    put_be32(array + 8, OID_TEXT); /* of text */
    put_be32(array + 12, (uint32_t)n_topics);
    put_be32(array + 16, 1); /* indexed from 1 */
    size_t at = 20;
    for (size_t i = 0; i < n_topics; i++) {
        size_t topic_len = strlen(topics[i]);
        put_be32(array + at, (uint32_t)topic_len);
        memcpy(array + at + 4, topics[i], topic_len);
        at += 4 + topic_len;
    }
    *len = (int)size;
    return array;
}

static esg_status postgres_recorder_select_notifications(esg_recorder *recorder, int64_t start,
                                                         int64_t limit, int64_t stop,
                                                         const char *const *topics, size_t n_topics,
                                                         esg_notification_list *out, esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    pg_connection *c = NULL;
    PGresult *res = NULL;
    bool is_broken = false;
    const char *doing = "cannot read notifications";
    unsigned shape =
        (stop > 0 ? NOTIFICATIONS_STOP : 0) | (n_topics > 0 ? NOTIFICATIONS_TOPICS : 0);
    char name[32];
    snprintf(name, sizeof name, "esg_notifications_%u", shape);
    int array_len = 0;
    uint8_t *array = NULL;
    if (n_topics > 0 && (array = topics_array(topics, n_topics, &array_len)) == NULL)
        return esg_error_set(err, ESG_ENOMEM,
                             "out of memory selecting notifications of %zu "
                             "topics",
                             n_topics);

    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        goto out;
    if (!(c->notifications_prepared & (1u << shape))) {
        char sql[512];
        int n_params = 1;
        char stop_clause[40] = "", topics_clause[40] = "";
        Oid types[4] = {OID_INT8};
        if (shape & NOTIFICATIONS_STOP) {
            types[n_params] = OID_INT8;
            snprintf(stop_clause, sizeof stop_clause, " AND notification_id <= $%d", ++n_params);
        }
        if (shape & NOTIFICATIONS_TOPICS) {
            types[n_params] = OID_TEXT_ARRAY;
            snprintf(topics_clause, sizeof topics_clause, " AND topic = ANY($%d)", ++n_params);
        }
        types[n_params] = OID_INT8;
        snprintf(sql, sizeof sql,
                 SELECT_COLUMNS "FROM %s WHERE notification_id >= $1%s%s ORDER BY notification_id "
                                "LIMIT $%d",
                 rec->events_table, stop_clause, topics_clause, n_params + 1);
        status = prepare(rec, c->conn, name, sql, n_params + 1, types, &is_broken, err);
        if (status != ESG_OK)
            goto out;
        c->notifications_prepared |= 1u << shape;
    }
    uint8_t start_be[8], stop_be[8], limit_be[8];
    put_be64(start_be, start);
    put_be64(stop_be, stop);
    put_be64(limit_be, limit);
    const char *values[4] = {(const char *)start_be};
    int lengths[4] = {8};
    int n_params = 1;
    if (stop > 0) {
        values[n_params] = (const char *)stop_be;
        lengths[n_params++] = 8;
    }
    if (n_topics > 0) {
        values[n_params] = (const char *)array;
        lengths[n_params++] = array_len;
    }
    values[n_params] = (const char *)limit_be;
    lengths[n_params++] = 8;
    status = exec_query(rec, c, name, n_params, values, lengths, doing, &res, &is_broken, err);
    if (status == ESG_OK)
        status = read_rows(res, NULL, out, err);
out:
    PQclear(res);
    esg_free(array);
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

/* Runs a fixed one-row query of one integer (NULL read as 0, no row as -1). */
static esg_status select_int(postgres_recorder *rec, enum fixed_statement which, int n_params,
                             const char *const *values, const int *lengths, int64_t *out,
                             const char *doing, esg_error *err)
{
    pg_connection *c = NULL;
    PGresult *res = NULL;
    bool is_broken = false;
    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    status = exec_query(rec, c, fixed_names[which], n_params, values, lengths, doing, &res,
                        &is_broken, err);
    if (status == ESG_OK) {
        if (PQntuples(res) == 0)
            *out = -1;
        else if (PQgetisnull(res, 0, 0))
            *out = 0;
        else if (!get_int(res, 0, 0, out))
            status = esg_error_set(err, ESG_EIO, "%s: the database gave no integer", doing);
    }
    PQclear(res);
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

static esg_status postgres_recorder_max_notification_id(esg_recorder *recorder, int64_t *out,
                                                        esg_error *err)
{
    int64_t max_id = 0;
    esg_status status = select_int((postgres_recorder *)recorder, STMT_MAX_NOTIFICATION_ID, 0, NULL,
                                   NULL, &max_id, "cannot read the highest notification id", err);
    if (status == ESG_OK)
        *out = max_id < 0 ? 0 : max_id;
    return status;
}

static esg_status postgres_recorder_max_tracking_id(esg_recorder *recorder,
                                                    const char *application_name, int64_t *out,
                                                    esg_error *err)
{
    size_t name_len = strlen(application_name);
    if (name_len > INT_MAX)
        return esg_error_set(err, ESG_EINVAL, "the application name is over 2 GiB");
    const char *values[1] = {application_name};
    const int lengths[1] = {(int)name_len};
    int64_t max_id = 0;
    esg_status status =
        select_int((postgres_recorder *)recorder, STMT_MAX_TRACKING_ID, 1, values, lengths, &max_id,
                   "cannot read the highest tracked notification id", err);
    if (status == ESG_OK)
        *out = max_id < 0 ? 0 : max_id;
    return status;
}

static esg_status postgres_recorder_has_tracking_id(esg_recorder *recorder,
                                                    const char *application_name,
                                                    int64_t notification_id, bool *out,
                                                    esg_error *err)
{
    size_t name_len = strlen(application_name);
    if (name_len > INT_MAX)
        return esg_error_set(err, ESG_EINVAL, "the application name is over 2 GiB");
    uint8_t id_be[8];
    put_be64(id_be, notification_id);
    const char *values[2] = {application_name, (const char *)id_be};
    const int lengths[2] = {(int)name_len, 8};
    int64_t found = 0;
    esg_status status = select_int((postgres_recorder *)recorder, STMT_HAS_TRACKING_ID, 2, values,
                                   lengths, &found, "cannot read a tracking record", err);
    if (status == ESG_OK)
        *out = found > 0;
    return status;
}

/* ---- Opening and closing --------------------------------------------------------------------- */

/* Every connection is idle by now: closing while a call is running is the caller's bug. */
/* ---- Commands' replies ----------------------------------------------------------------------- */

/* Runs a statement of the commands' replies table on a connection of the pool: *out (the
 * caller's, PQclear) holds its result. */
static esg_status exec_command_sql(postgres_recorder *rec, enum command_statement which,
                                   int n_params, const char *const *values, const int *lengths,
                                   const char *doing, PGresult **out, esg_error *err)
{
    *out = NULL;
    pg_connection *c = NULL;
    bool is_broken = false;
    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    if (send_command_sql(rec, c->conn, which, n_params, values, lengths) != ESG_OK) {
        status = pgr_error(rec, c->conn, NULL, doing, &is_broken, err);
        is_broken = true;
        pgr_pool_give_back(rec, c, is_broken);
        return status;
    }
    PGresult *res = NULL, *next;
    while ((next = PQgetResult(c->conn)) != NULL) { /* the last one is the statement's */
        PQclear(res);
        res = next;
    }
    ExecStatusType result = PQresultStatus(res);
    if (result == PGRES_TUPLES_OK || result == PGRES_COMMAND_OK)
        *out = res;
    else {
        status = pgr_error(rec, c->conn, res, doing, &is_broken, err);
        PQclear(res);
    }
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

static esg_status postgres_recorder_select_command(esg_recorder *recorder, const char *key,
                                                   int64_t not_before, esg_command_reply *out,
                                                   bool *found, esg_error *err)
{
    uint8_t since[8];
    put_be64(since, not_before);
    const char *values[2] = {key, (const char *)since};
    const int lengths[2] = {(int)strlen(key), 8};
    PGresult *res = NULL;
    esg_status status = exec_command_sql((postgres_recorder *)recorder, CMD_SELECT, 2, values,
                                         lengths, "cannot read a command's reply", &res, err);
    if (status != ESG_OK || PQntuples(res) == 0) {
        PQclear(res);
        return status;
    }
    int64_t recorded_at = 0;
    if (PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1) || !get_int(res, 0, 2, &recorded_at))
        status = esg_error_set(err, ESG_EIO, "corrupt command record of an idempotency key");
    else
        status = esg_command_reply_fill(out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                                        PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1),
                                        recorded_at, err);
    *found = status == ESG_OK;
    PQclear(res);
    return status;
}

static esg_status postgres_recorder_delete_commands(esg_recorder *recorder, int64_t before,
                                                    int64_t *n_deleted, esg_error *err)
{
    uint8_t limit[8];
    put_be64(limit, before);
    const char *values[1] = {(const char *)limit};
    const int lengths[1] = {8};
    PGresult *res = NULL;
    esg_status status =
        exec_command_sql((postgres_recorder *)recorder, CMD_DELETE_EXPIRED, 1, values, lengths,
                         "cannot delete expired command records", &res, err);
    if (status == ESG_OK)
        *n_deleted = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return status;
}

static esg_status postgres_recorder_has_command_table(esg_recorder *recorder, bool *out,
                                                      esg_error *err)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    pg_connection *c = NULL;
    bool is_broken = false;
    esg_status status = pgr_pool_borrow(rec, &c, err);
    if (status != ESG_OK)
        return status;
    const char *values[1] = {rec->replies_table}; /* (quoted: to_regclass reads it as SQL does) */
    PGresult *res =
        PQexecParams(c->conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        status = pgr_error(rec, c->conn, res, "cannot look for the table of commands' replies",
                           &is_broken, err);
    else
        *out = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    pgr_pool_give_back(rec, c, is_broken);
    return status;
}

static void postgres_recorder_close(esg_recorder *recorder)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    if (rec->has_pool)
        esg_pool_destroy(&rec->pool);
    if (rec->has_writes)
        esg_group_commit_destroy(&rec->writes);
    for (size_t i = 0; i < N_CONN_PARAMS; i++)
        esg_free(rec->conn_values[i]);
    for (size_t i = 0; i < N_FIXED_STATEMENTS; i++)
        esg_free(rec->fixed_sql[i]);
    esg_free(rec->events_table);
    esg_free(rec->tracking_table);
    esg_free(rec->snapshots_table);
    esg_free(rec->replies_table);
    for (size_t i = 0; i < N_COMMAND_STATEMENTS; i++)
        esg_free(rec->command_sql[i]);
    esg_free(rec);
}

static void postgres_recorder_write_metrics(esg_recorder *recorder, const char *const *labels,
                                            esg_buffer *out)
{
    postgres_recorder *rec = (postgres_recorder *)recorder;
    if (rec->has_pool)
        esg_pool_write_metrics(&rec->pool, labels, out);
}

static const esg_recorder_ops postgres_ops = {
    .name = BACKEND_NAME,
    .is_blocking = true,
    .insert_events_tracked = postgres_recorder_insert_events_tracked,
    .select_versions = postgres_recorder_select_versions,
    .select_notifications = postgres_recorder_select_notifications,
    .max_notification_id = postgres_recorder_max_notification_id,
    .max_tracking_id = postgres_recorder_max_tracking_id,
    .has_tracking_id = postgres_recorder_has_tracking_id,
    .insert_snapshot = postgres_recorder_insert_snapshot,
    .select_command = postgres_recorder_select_command,
    .delete_commands = postgres_recorder_delete_commands,
    .has_command_table = postgres_recorder_has_command_table,
    .close = postgres_recorder_close,
    .lease_new = pgr_lease_new,
    .lease_refresh = pgr_lease_refresh,
    .lease_nudge = pgr_lease_nudge,
    .lease_take_nudge = pgr_lease_take_nudge,
    .lease_free = pgr_lease_free,
    .watch_new = pgr_watch_new,
    .watch_wait = pgr_watch_wait,
    .watch_interrupt = pgr_watch_interrupt,
    .watch_free = pgr_watch_free,
    .write_metrics = postgres_recorder_write_metrics,
};

/* Appends an identifier in double quotes (doubling any inside), as PostgreSQL reads it. */
static void put_identifier(esg_buffer *buf, const char *name)
{
    esg_buffer_put_char(buf, '"');
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '"')
            esg_buffer_put_char(buf, '"');
        esg_buffer_put_char(buf, *p);
    }
    esg_buffer_put_char(buf, '"');
}

/* Python's table names: "<app name lowercased>_<purpose>", or "<fallback>_<purpose>" for no app
 * name, unquoted there and so folded to lower case by PostgreSQL; quoted here to the same name.
 * With a schema: "<schema>"."<name>". Sets *name_out to the unqualified name (owned). */
static esg_status table_name(const esg_postgres_settings *cfg, const char *fallback,
                             const char *purpose, char **qualified_out, char **name_out,
                             esg_error *err)
{
    esg_buffer name = {0};
    const char *app = cfg->app_name != NULL && cfg->app_name[0] != '\0' ? cfg->app_name : fallback;
    for (const char *p = app; *p != '\0'; p++)
        esg_buffer_put_char(&name, (char)tolower((unsigned char)*p));
    esg_buffer_put_char(&name, '_');
    esg_buffer_put_str(&name, purpose);
    size_t len = 0;
    char *unqualified = esg_buffer_take(&name, &len);
    if (unqualified == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory naming a table");
    if (len > ESG_POSTGRES_MAX_IDENTIFIER_LEN) {
        esg_status status = esg_error_set(err, ESG_ECONFIG,
                                          "PostgreSQL table name '%.80s' is too long: at most %d "
                                          "bytes (the application name makes it)",
                                          unqualified, ESG_POSTGRES_MAX_IDENTIFIER_LEN);
        esg_free(unqualified);
        return status;
    }
    esg_buffer qualified = {0};
    if (cfg->schema[0] != '\0') {
        put_identifier(&qualified, cfg->schema);
        esg_buffer_put_char(&qualified, '.');
    }
    put_identifier(&qualified, unqualified);
    *qualified_out = esg_buffer_take(&qualified, NULL);
    if (*qualified_out == NULL) {
        esg_free(unqualified);
        return esg_error_set(err, ESG_ENOMEM, "out of memory naming a table");
    }
    *name_out = unqualified;
    return ESG_OK;
}

/* Exactly the tables and index of Python's PostgresProcessRecorder (9.2), created once: the
 * advisory lock keeps several processes that start together from racing to create them (a
 * race CREATE ... IF NOT EXISTS loses with a unique violation in the catalogue). */
static esg_status create_tables(const postgres_recorder *rec, PGconn *conn, const char *events_name,
                                const char *replies_name, esg_error *err)
{
    esg_buffer sql = {0};
    esg_buffer_put_str(&sql, "SELECT pg_advisory_xact_lock(hashtext('eventsourcing create ");
    for (const char *p = rec->events_table; *p != '\0'; p++) {
        if (*p == '\'')
            esg_buffer_put_char(&sql, '\'');
        esg_buffer_put_char(&sql, *p);
    }
    esg_buffer_put_str(&sql, "'));CREATE TABLE IF NOT EXISTS ");
    esg_buffer_put_str(&sql, rec->events_table);
    esg_buffer_put_str(&sql, " (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                             "topic text, state bytea, notification_id bigserial, PRIMARY KEY "
                             "(originator_id, originator_version)) WITH "
                             "(autovacuum_enabled=false);CREATE UNIQUE INDEX IF NOT EXISTS ");
    char *index_name = NULL;
    size_t len = strlen(events_name);
    if ((index_name = esg_malloc(len + sizeof "_notification_id_idx")) != NULL) {
        memcpy(index_name, events_name, len);
        memcpy(index_name + len, "_notification_id_idx", sizeof "_notification_id_idx");
        put_identifier(&sql, index_name);
    }
    esg_buffer_put_str(&sql, " ON ");
    esg_buffer_put_str(&sql, rec->events_table);
    esg_buffer_put_str(&sql, " (notification_id ASC);CREATE TABLE IF NOT EXISTS ");
    esg_buffer_put_str(&sql, rec->tracking_table);
    esg_buffer_put_str(&sql, " (application_name text, notification_id bigint, PRIMARY KEY "
                             "(application_name, notification_id))");
    if (rec->snapshots_table != NULL) { /* Python's aggregate recorder of purpose "snapshots" */
        esg_buffer_put_str(&sql, ";CREATE TABLE IF NOT EXISTS ");
        esg_buffer_put_str(&sql, rec->snapshots_table);
        esg_buffer_put_str(&sql, " (originator_id uuid NOT NULL, originator_version bigint NOT "
                                 "NULL, topic text, state bytea, PRIMARY KEY (originator_id, "
                                 "originator_version)) WITH (autovacuum_enabled=false)");
    }
    /* This library's own (recorder.h); vacuumed as usual: its rows expire and are deleted. */
    esg_buffer_put_str(&sql, ";CREATE TABLE IF NOT EXISTS ");
    esg_buffer_put_str(&sql, rec->replies_table);
    esg_buffer_put_str(&sql, " (key text PRIMARY KEY, request_hash text NOT NULL, reply bytea NOT "
                             "NULL, recorded_at bigint NOT NULL);CREATE INDEX IF NOT EXISTS ");
    char *replies_index = esg_malloc(strlen(replies_name) + sizeof "_recorded_at_idx");
    if (replies_index != NULL) {
        memcpy(replies_index, replies_name, strlen(replies_name));
        memcpy(replies_index + strlen(replies_name), "_recorded_at_idx", sizeof "_recorded_at_idx");
        put_identifier(&sql, replies_index);
    }
    esg_buffer_put_str(&sql, " ON ");
    esg_buffer_put_str(&sql, rec->replies_table);
    esg_buffer_put_str(&sql, " (recorded_at)");
    char *text = esg_buffer_take(&sql, NULL);
    esg_status status = ESG_OK;
    if (text == NULL || index_name == NULL || replies_index == NULL)
        status = esg_error_set(err, ESG_ENOMEM, "out of memory creating tables");
    else
        /* Several statements in one simple query run as one transaction. */
        status = pgr_exec_simple(rec, conn, text, "cannot create the tables", err);
    esg_free(text);
    esg_free(index_name);
    esg_free(replies_index);
    return status;
}

/* The sequence behind the events table's notification_id (bigserial), as a quoted name. */
static esg_status find_sequence(const postgres_recorder *rec, PGconn *conn, char **out,
                                esg_error *err)
{
    bool is_broken = false;
    const char *values[1] = {rec->events_table};
    PGresult *res = PQexecParams(conn, "SELECT pg_get_serial_sequence($1, 'notification_id')", 1,
                                 NULL, values, NULL, NULL, 0);
    esg_status status = ESG_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        status =
            pgr_error(rec, conn, res, "cannot find the notification id sequence", &is_broken, err);
    else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        status = esg_error_set(err, ESG_EIO,
                               "table %s has no sequence for notification_id: it is not the "
                               "table eventsourcing 9.2 creates",
                               rec->events_table);
    else if ((*out = esg_strdup(PQgetvalue(res, 0, 0))) == NULL)
        status = esg_error_set(err, ESG_ENOMEM, "out of memory");
    PQclear(res);
    return status;
}

/* The SQL of the fixed statements, once the table and sequence names are known. */
static esg_status build_fixed_sql(postgres_recorder *rec, const char *sequence, esg_error *err)
{
    esg_buffer b[N_FIXED_STATEMENTS] = {0};
    esg_buffer_put_str(&b[STMT_BEGIN], "BEGIN");
    esg_buffer_put_str(&b[STMT_COMMIT], "COMMIT");
    esg_buffer_put_str(&b[STMT_LOCK], "LOCK TABLE ");
    esg_buffer_put_str(&b[STMT_LOCK], rec->events_table);
    esg_buffer_put_str(&b[STMT_LOCK], " IN EXCLUSIVE MODE");
    /* The next id is one past the highest committed one, whatever the sequence says: ids drawn
     * by rolled-back transactions are given again, so there are no gaps. */
    esg_buffer_put_str(&b[STMT_RESET_SEQUENCE], "SELECT setval('");
    for (const char *p = sequence; *p != '\0'; p++) {
        if (*p == '\'')
            esg_buffer_put_char(&b[STMT_RESET_SEQUENCE], '\'');
        esg_buffer_put_char(&b[STMT_RESET_SEQUENCE], *p);
    }
    esg_buffer_put_str(&b[STMT_RESET_SEQUENCE],
                       "'::regclass, COALESCE(MAX(notification_id), 0) + 1, false) FROM ");
    esg_buffer_put_str(&b[STMT_RESET_SEQUENCE], rec->events_table);
    esg_buffer_put_str(&b[STMT_INSERT_EVENT], "INSERT INTO ");
    esg_buffer_put_str(&b[STMT_INSERT_EVENT], rec->events_table);
    esg_buffer_put_str(&b[STMT_INSERT_EVENT], " (originator_id, originator_version, topic, state) "
                                              "VALUES ($1, $2, $3, $4) RETURNING notification_id");
    esg_buffer_put_str(&b[STMT_INSERT_TRACKING], "INSERT INTO ");
    esg_buffer_put_str(&b[STMT_INSERT_TRACKING], rec->tracking_table);
    esg_buffer_put_str(&b[STMT_INSERT_TRACKING],
                       " (application_name, notification_id) VALUES ($1, $2)");
    esg_buffer_put_str(&b[STMT_MAX_NOTIFICATION_ID], "SELECT MAX(notification_id) FROM ");
    esg_buffer_put_str(&b[STMT_MAX_NOTIFICATION_ID], rec->events_table);
    esg_buffer_put_str(&b[STMT_MAX_TRACKING_ID], "SELECT MAX(notification_id) FROM ");
    esg_buffer_put_str(&b[STMT_MAX_TRACKING_ID], rec->tracking_table);
    esg_buffer_put_str(&b[STMT_MAX_TRACKING_ID], " WHERE application_name = $1");
    esg_buffer_put_str(&b[STMT_HAS_TRACKING_ID], "SELECT 1 FROM ");
    esg_buffer_put_str(&b[STMT_HAS_TRACKING_ID], rec->tracking_table);
    esg_buffer_put_str(&b[STMT_HAS_TRACKING_ID],
                       " WHERE application_name = $1 AND notification_id = $2");
    char notify[sizeof rec->events_channel + sizeof rec->instance + 80];
    /* (both names are hex digits and letters: nothing to quote) Its transaction commits without
     * waiting for the disk: PostgreSQL gives a notifying transaction an id, and would otherwise
     * flush a commit record for it while holding the queue's lock. */
    snprintf(notify, sizeof notify,
             "SELECT set_config('synchronous_commit', 'off', true), pg_notify('%s', '%s')",
             rec->events_channel, rec->instance);
    esg_buffer_put_str(&b[STMT_NOTIFY], notify);
    esg_buffer c[N_COMMAND_STATEMENTS] = {0};
    const char *replies = rec->replies_table;
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED_KEY], "DELETE FROM ");
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED_KEY], replies);
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED_KEY], " WHERE key = $1 AND recorded_at < $2");
    esg_buffer_put_str(&c[CMD_INSERT], "INSERT INTO ");
    esg_buffer_put_str(&c[CMD_INSERT], replies);
    esg_buffer_put_str(&c[CMD_INSERT],
                       " (key, request_hash, reply, recorded_at) VALUES ($1, $2, $3, $4)");
    esg_buffer_put_str(&c[CMD_SELECT], "SELECT request_hash, reply, recorded_at FROM ");
    esg_buffer_put_str(&c[CMD_SELECT], replies);
    esg_buffer_put_str(&c[CMD_SELECT], " WHERE key = $1 AND recorded_at >= $2");
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED], "DELETE FROM ");
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED], replies);
    esg_buffer_put_str(&c[CMD_DELETE_EXPIRED], " WHERE recorded_at < $1");
    esg_status status = ESG_OK;
    for (size_t i = 0; i < N_FIXED_STATEMENTS; i++) {
        rec->fixed_sql[i] = esg_buffer_take(&b[i], NULL);
        if (rec->fixed_sql[i] == NULL)
            status = esg_error_set(err, ESG_ENOMEM, "out of memory preparing statements");
    }
    for (size_t i = 0; i < N_COMMAND_STATEMENTS; i++) {
        rec->command_sql[i] = esg_buffer_take(&c[i], NULL);
        if (rec->command_sql[i] == NULL)
            status = esg_error_set(err, ESG_ENOMEM, "out of memory preparing statements");
    }
    return status;
}

/* 16 random hex digits naming this recorder in its NOTIFYs: unique among the replicas. */
static void new_instance(char out[17])
{
    uint64_t bits = 0;
    if (getentropy(&bits, sizeof bits) != 0) { /* (not seen on Linux >= 3.17) */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        bits = ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^ (uint64_t)now.tv_sec;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)bits);
}

/* Opens the recorder: settings checked by the caller. */
static esg_status open_postgres(const esg_postgres_settings *cfg, esg_recorder **out,
                                esg_error *err)
{
    esg_status status = ESG_OK;
    char *events_name = NULL, *tracking_name = NULL, *replies_name = NULL, *sequence = NULL;
    pg_connection *c = NULL;
    postgres_recorder *rec = esg_calloc(1, sizeof *rec);
    if (rec == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory opening a PostgreSQL recorder");
    rec->base.ops = &postgres_ops;
    rec->lock_timeout_s = cfg->lock_timeout_s;
    rec->conn_max_age_s = cfg->conn_max_age_s;
    rec->is_pre_pinging = cfg->is_pre_pinging;

    status = table_name(cfg, "stored", "events", &rec->events_table, &events_name, err);
    if (status == ESG_OK)
        status =
            table_name(cfg, "notification", "tracking", &rec->tracking_table, &tracking_name, err);
    if (status == ESG_OK)
        status = table_name(cfg, "stored", "replies", &rec->replies_table, &replies_name, err);
    if (status == ESG_OK && cfg->is_snapshotting) {
        char *snapshots_name = NULL;
        status =
            table_name(cfg, "stored", "snapshots", &rec->snapshots_table, &snapshots_name, err);
        esg_free(snapshots_name);
        rec->base.is_snapshotting = status == ESG_OK;
    }
    if (status != ESG_OK)
        goto out;
    snprintf(rec->events_channel, sizeof rec->events_channel, "esg_events_%016llx",
             (unsigned long long)esg_hash_strings(
                 (const char *const[]){"eventsourcing-grpc events ", rec->events_table, NULL}));
    new_instance(rec->instance);

    /* Session settings ride on the connection: no round trip per connection for them. */
    char options[128];
    snprintf(options, sizeof options,
             "-c lock_timeout=%lld -c idle_in_transaction_session_timeout=%lld",
             (long long)cfg->lock_timeout_s * 1000, (long long)cfg->idle_in_transaction_s * 1000);
    rec->conn_values[PARAM_HOST] = esg_strdup(cfg->host);
    rec->conn_values[PARAM_PORT] = esg_strdup(cfg->port);
    rec->conn_values[PARAM_DBNAME] = esg_strdup(cfg->dbname);
    rec->conn_values[PARAM_USER] = esg_strdup(cfg->user);
    rec->conn_values[PARAM_PASSWORD] = esg_strdup(cfg->password);
    char connect_timeout[ESG_INT_TEXT_SIZE];
    esg_int_text(cfg->connect_timeout_s, connect_timeout);
    rec->conn_values[PARAM_CONNECT_TIMEOUT] = esg_strdup(connect_timeout);
    rec->conn_values[PARAM_OPTIONS] = esg_strdup(options);
    rec->conn_values[PARAM_CLIENT_ENCODING] = esg_strdup("UTF8");
    /* What pg_stat_activity shows for these connections, unless PGAPPNAME says otherwise. */
    char application_name[ESG_POSTGRES_MAX_IDENTIFIER_LEN + 1];
    snprintf(application_name, sizeof application_name, "eventsourcing-grpc%s%s",
             cfg->app_name != NULL && cfg->app_name[0] != '\0' ? "/" : "",
             cfg->app_name != NULL ? cfg->app_name : "");
    rec->conn_values[PARAM_APPLICATION_NAME] = esg_strdup(application_name);
    /* (An empty value is no value to libpq: its default, or PGTARGETSESSIONATTRS, then.) */
    rec->conn_values[PARAM_TARGET_SESSION_ATTRS] =
        esg_strdup(cfg->target_session_attrs != NULL ? cfg->target_session_attrs : "");
    for (size_t i = PARAM_KEEPALIVES_IDLE; i <= PARAM_TCP_USER_TIMEOUT; i++)
        rec->conn_values[i] = esg_strdup(""); /* (the sessions of leases and watches set them) */
    for (size_t i = 0; i < N_CONN_PARAMS; i++)
        if (rec->conn_values[i] == NULL)
            status = ESG_ENOMEM;
    if (status != ESG_OK) {
        status = esg_error_set(err, ESG_ENOMEM, "out of memory opening a PostgreSQL recorder");
        goto out;
    }
    const esg_pool_config pool_config = {
        .ops = &postgres_pool_ops,
        .owner = rec,
        .max_idle = (size_t)cfg->pool_size,
        .max_open = (size_t)cfg->pool_size + (size_t)cfg->pool_max_overflow,
        .timeout_ms = cfg->pool_timeout_ms,
        .bound_name = "POSTGRES_POOL_SIZE + POSTGRES_POOL_MAX_OVERFLOW"};
    status = esg_pool_init(&rec->pool, &pool_config, err);
    if (status != ESG_OK)
        goto out;
    rec->has_pool = true;
    if (!esg_group_commit_init(&rec->writes)) {
        status = esg_error_set(err, ESG_ENOMEM, "cannot create the locks of a PostgreSQL recorder");
        goto out;
    }
    rec->has_writes = true;

    /* The first connection creates the tables and finds the sequence that the statements of
     * every connection name. */
    status = connect_db(rec, &c, err);
    if (status == ESG_OK && cfg->is_creating_tables)
        status = create_tables(rec, c->conn, events_name, replies_name, err);
    if (status == ESG_OK)
        status = find_sequence(rec, c->conn, &sequence, err);
    if (status == ESG_OK)
        status = build_fixed_sql(rec, sequence, err);
    if (status == ESG_OK)
        status = prepare_fixed(rec, c->conn, err);
    if (status != ESG_OK)
        goto out;
    esg_pool_adopt(&rec->pool, c);
    c = NULL;
    *out = &rec->base;
    rec = NULL;
out:
    pgr_connection_close(c);
    esg_free(events_name);
    esg_free(tracking_name);
    esg_free(replies_name);
    esg_free(sequence);
    if (rec != NULL)
        postgres_recorder_close(&rec->base); /* frees what was made so far */
    return status;
}

esg_status esg_recorder_open_postgres_env(const esg_env *env, const char *app_name,
                                          esg_recorder **out, esg_error *err)
{
    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "out is NULL");
    *out = NULL;
    /* The settings first: their errors are told even where libpq is missing. */
    esg_postgres_settings settings;
    esg_status status = esg_postgres_settings_read(env, app_name, &settings, err);
    if (status == ESG_OK)
        status = esg_libpq_load(err);
    return status == ESG_OK ? open_postgres(&settings, out, err) : status;
}
