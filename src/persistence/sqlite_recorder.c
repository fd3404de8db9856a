/* The SQLite backend ("eventsourcing.sqlite"): the tables and SQL of eventsourcing 9.2's SQLite
 * process recorder, so that a database written by either implementation is read by the other,
 * behind a small pool of connections that each keep their prepared statements. */
#include "persistence/recorder_backend.h"
#include "esg/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buffer.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "persistence/connection_pool.h"
#include "persistence/group_commit.h"
#include "core/alloc.h"

#define BACKEND_NAME "eventsourcing.sqlite"
#define MAX_FILE_CONNECTIONS 8
#define DEFAULT_LOCK_TIMEOUT_MS 5000
/* Notification queries with up to this many topics keep a prepared statement per shape; longer
 * topic lists are rare and are prepared per call. */
#define MAX_CACHED_TOPICS 8
#define OPEN_FLAGS                                                                                 \
    (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX)

/* Exactly the text Python's SQLiteProcessRecorder uses: the notification id is the rowid. */
static const char create_tables_sql[] =
    "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version));"
    "CREATE TABLE IF NOT EXISTS tracking (application_name TEXT, notification_id INTEGER, "
    "PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID";
/* And Python's snapshot store (an aggregate recorder of purpose "snapshots"). */
static const char create_snapshots_sql[] =
    "CREATE TABLE IF NOT EXISTS stored_snapshots (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID";

/* This library's own table: the replies of commands sent with an idempotency key (recorder.h). */
#define COMMANDS_TABLE "esg_command_replies"
static const char create_commands_sql[] =
    "CREATE TABLE IF NOT EXISTS " COMMANDS_TABLE " (key TEXT PRIMARY KEY, request_hash TEXT NOT "
    "NULL, reply BLOB NOT NULL, recorded_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS " COMMANDS_TABLE "_recorded_at ON " COMMANDS_TABLE " (recorded_at)";

/* The statements of that table, prepared on first use: with CREATE_TABLE off the table may be
 * missing, and only calls with a key need it. */
enum command_statement {
    CMD_DELETE_EXPIRED_KEY,
    CMD_INSERT,
    CMD_SELECT,
    CMD_DELETE_EXPIRED,
    N_COMMAND_STATEMENTS
};
static const char *const command_sql[N_COMMAND_STATEMENTS] = {
    [CMD_DELETE_EXPIRED_KEY] = "DELETE FROM " COMMANDS_TABLE " WHERE key=? AND recorded_at<?",
    [CMD_INSERT] = "INSERT INTO " COMMANDS_TABLE " VALUES (?,?,?,?)",
    [CMD_SELECT] =
        "SELECT request_hash, reply, recorded_at FROM " COMMANDS_TABLE " WHERE key=? AND "
        "recorded_at>=?",
    [CMD_DELETE_EXPIRED] = "DELETE FROM " COMMANDS_TABLE " WHERE recorded_at<?",
};

/* Every select reads these columns, so that one function reads their rows (the snapshots table
 * has no rowid: it reads 0 there). */
#define SELECT_COLUMNS "SELECT rowid, originator_id, originator_version, topic, state "
#define SELECT_SNAPSHOT_COLUMNS "SELECT 0, originator_id, originator_version, topic, state "

enum fixed_statement {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_INSERT_EVENT,
    STMT_INSERT_TRACKING,
    STMT_MAX_NOTIFICATION_ID,
    STMT_MAX_TRACKING_ID,
    STMT_HAS_TRACKING_ID,
    STMT_HAS_COMMAND_TABLE,
    STMT_INSERT_SNAPSHOT, /* last: prepared only with snapshots */
    N_FIXED_STATEMENTS
};

static const char *const fixed_sql[N_FIXED_STATEMENTS] = {
    /* IMMEDIATE takes the write lock at once: a deferred transaction that reads first and then
     * upgrades can fail with SQLITE_BUSY whatever the busy timeout. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT esg_write",
    [STMT_RELEASE] = "RELEASE esg_write",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO esg_write",
    [STMT_INSERT_EVENT] = "INSERT INTO stored_events VALUES (?,?,?,?)",
    [STMT_INSERT_TRACKING] = "INSERT INTO tracking VALUES (?,?)",
    [STMT_MAX_NOTIFICATION_ID] = "SELECT MAX(rowid) FROM stored_events",
    [STMT_MAX_TRACKING_ID] = "SELECT MAX(notification_id) FROM tracking WHERE application_name=?",
    [STMT_HAS_TRACKING_ID] =
        "SELECT 1 FROM tracking WHERE application_name=? AND notification_id=?",
    [STMT_HAS_COMMAND_TABLE] =
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='" COMMANDS_TABLE "'",
    [STMT_INSERT_SNAPSHOT] = "INSERT INTO stored_snapshots VALUES (?,?,?,?)",
};

/* The shapes of the notifications query: n_topics * 2 + has_stop. */
#define N_NOTIFICATION_SHAPES (2 * (MAX_CACHED_TOPICS + 1))

typedef struct sqlite_connection {
    sqlite3 *db;                               /* used by one thread at a time, lent by the pool */
    sqlite3_stmt *fixed[N_FIXED_STATEMENTS];   /* prepared when the connection opens */
    sqlite3_stmt *events[ESG_N_EVENTS_SHAPES]; /* by esg_events_shape, prepared on first use */
    sqlite3_stmt *snapshots[ESG_N_EVENTS_SHAPES];       /* likewise, of the snapshots table */
    sqlite3_stmt *notifications[N_NOTIFICATION_SHAPES]; /* by shape, prepared on first use */
    sqlite3_stmt *commands[N_COMMAND_STATEMENTS];       /* prepared on first use */
} sqlite_connection;

typedef esg_write_request write_request;

typedef struct sqlite_recorder {
    esg_recorder base;          /* first, so that an esg_recorder * is a sqlite_recorder * */
    char *db_name;              /* owned copy: more connections are opened lazily */
    bool is_memory;             /* a memory database lives in one connection, never reopened */
    bool is_creating_tables;    /* CREATE_TABLE: create the tables that do not exist */
    int lock_timeout_ms;        /* the longest wait for another writer */
    pthread_mutex_t write_lock; /* one writer of this process at a time asks SQLite to write */
    esg_pool pool;              /* the connections, opened lazily */
    esg_group_commit writes;    /* concurrent writers commit together */
} sqlite_recorder;

/* ---- Errors ---------------------------------------------------------------------------------- */

/* Maps a SQLite result code (extended codes too) to a status, with what was being done and
 * SQLite's own message. db may be NULL when SQLite could not allocate one. */
static esg_status sqlite_error(esg_error *err, sqlite3 *db, int rc, const char *doing)
{
    const char *message = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return esg_error_set(err, ESG_EUNAVAILABLE, "%s: database is locked, retry (%s)", doing,
                             message);
    case SQLITE_NOMEM:
        return esg_error_set(err, ESG_ENOMEM, "%s: out of memory (%s)", doing, message);
    case SQLITE_CONSTRAINT:
        return esg_error_set(err, ESG_ECONFLICT, "%s: %s", doing, message);
    default:
        /* SQLITE_FULL, IOERR, CORRUPT, NOTADB, CANTOPEN, READONLY and the rest: the database
         * failed, and retrying the same call will not help. */
        return esg_error_set(err, ESG_EIO, "%s: %s", doing, message);
    }
}

/* ---- Connections ----------------------------------------------------------------------------- */

/* Resets a statement for its next use and drops its bindings, which may point at the caller's
 * memory (they are bound SQLITE_STATIC, without a copy). */
static void finish(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static void connection_close(const sqlite_recorder *rec, sqlite_connection *conn)
{
    if (conn == NULL)
        return;
    for (size_t i = 0; i < N_FIXED_STATEMENTS; i++)
        sqlite3_finalize(conn->fixed[i]);
    for (size_t i = 0; i < ESG_N_EVENTS_SHAPES; i++) {
        sqlite3_finalize(conn->events[i]);
        sqlite3_finalize(conn->snapshots[i]);
    }
    for (size_t i = 0; i < N_NOTIFICATION_SHAPES; i++)
        sqlite3_finalize(conn->notifications[i]);
    for (size_t i = 0; i < N_COMMAND_STATEMENTS; i++)
        sqlite3_finalize(conn->commands[i]);
    int rc = sqlite3_close(conn->db);
    if (rc != SQLITE_OK) {
        /* Only a statement we forgot keeps it open: say so (close cannot return an error),
         * and let SQLite free the connection when that statement goes. */
        esg_log(ESG_LOG_WARNING, NULL, "closing SQLite database '%s': %s", rec->db_name,
                sqlite3_errmsg(conn->db));
        sqlite3_close_v2(conn->db);
    }
    esg_free(conn);
}

/* Switches the connection's database to WAL mode, so that readers never wait for the writer, and
 * checks that it took (it does not on file systems without shared memory, for one). */
static esg_status use_wal(const sqlite_recorder *rec, sqlite3 *db, esg_error *err)
{
    esg_status status = ESG_OK;
    sqlite3_stmt *pragma = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &pragma, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(pragma);
    if (rc != SQLITE_ROW) {
        char doing[ESG_ERROR_MESSAGE_SIZE];
        snprintf(doing, sizeof doing, "cannot use SQLite database '%s'", rec->db_name);
        status = sqlite_error(err, db, rc, doing);
        goto out;
    }
    const char *mode = (const char *)sqlite3_column_text(pragma, 0);
    if (mode == NULL || strcasecmp(mode, "wal") != 0) {
        status = esg_error_set(err, ESG_EIO,
                               "cannot switch SQLite database '%s' to WAL mode: its journal mode "
                               "stays '%s'",
                               rec->db_name, mode != NULL ? mode : "unknown");
        goto out;
    }
out:
    sqlite3_finalize(pragma);
    return status;
}

/* A new database file is its owner's alone (0600), whatever the umask of the program that embeds
 * the library: SQLite gives the -wal and -shm files the database file's mode. A plain path is
 * created here first, empty (SQLite takes an empty file for a new database); a "file:" URI, whose
 * path SQLite alone reads, is narrowed once SQLite made it, while it is still empty. An existing
 * file keeps its mode. */
static void create_private_file(const char *db_name)
{
    if (strncmp(db_name, "file:", 5) == 0)
        return;
    int fd = open(db_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd); /* (any other failure is SQLite's to report when it opens the path) */
}

static void narrow_new_uri_file(sqlite3 *db, const char *db_name)
{
    const char *path = sqlite3_db_filename(db, "main");
    struct stat st;
    if (strncmp(db_name, "file:", 5) == 0 && path != NULL && path[0] != '\0' &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        chmod(path, 0600);
}

/* Opens one more connection to the recorder's database, creating the tables when asked (the
 * first connection) and preparing the fixed statements. */
static esg_status connection_open(const sqlite_recorder *rec, bool create_tables,
                                  sqlite_connection **out, esg_error *err)
{
    esg_status status = ESG_OK;
    char doing[ESG_ERROR_MESSAGE_SIZE];
    sqlite_connection *conn = esg_calloc(1, sizeof *conn);
    if (conn == NULL) {
        status = esg_error_set(err, ESG_ENOMEM, "out of memory opening SQLite database '%s'",
                               rec->db_name);
        goto out;
    }
    if (!rec->is_memory)
        create_private_file(rec->db_name);
    int rc = sqlite3_open_v2(rec->db_name, &conn->db, OPEN_FLAGS, NULL);
    if (rc != SQLITE_OK) {
        snprintf(doing, sizeof doing, "cannot open SQLite database '%s'", rec->db_name);
        status = sqlite_error(err, conn->db, rc, doing);
        goto out;
    }
    if (!rec->is_memory)
        narrow_new_uri_file(conn->db, rec->db_name);
    sqlite3_extended_result_codes(conn->db, 1);
    /* Another process (or a shared-cache connection) may hold the write lock: wait for it. */
    sqlite3_busy_timeout(conn->db, rec->lock_timeout_ms);
    if (!rec->is_memory) {
        status = use_wal(rec, conn->db, err);
        if (status != ESG_OK)
            goto out;
        /* FULL syncs the WAL at every commit, so that a committed transaction survives a power
         * loss; WAL's usual NORMAL only survives a crash of the process. */
        rc = sqlite3_exec(conn->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            snprintf(doing, sizeof doing, "cannot make SQLite database '%s' synchronous",
                     rec->db_name);
            status = sqlite_error(err, conn->db, rc, doing);
            goto out;
        }
    }
    if (create_tables && rec->is_creating_tables) {
        /* One transaction for all tables: one commit (and sync) instead of several, which is
         * most of a new database's start-up. */
        rc = sqlite3_exec(conn->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn->db, create_tables_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK && rec->base.is_snapshotting)
            rc = sqlite3_exec(conn->db, create_snapshots_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn->db, create_commands_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(conn->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK && !sqlite3_get_autocommit(conn->db))
            sqlite3_exec(conn->db, "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            snprintf(doing, sizeof doing, "cannot create the tables in SQLite database '%s'",
                     rec->db_name);
            status = sqlite_error(err, conn->db, rc, doing);
            goto out;
        }
    }
    size_t n_fixed = rec->base.is_snapshotting ? N_FIXED_STATEMENTS : STMT_INSERT_SNAPSHOT;
    for (size_t i = 0; i < n_fixed; i++) {
        rc = sqlite3_prepare_v3(conn->db, fixed_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &conn->fixed[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(doing, sizeof doing, "cannot prepare '%s' in SQLite database '%s'",
                     fixed_sql[i], rec->db_name);
            status = sqlite_error(err, conn->db, rc, doing);
            goto out;
        }
    }
    *out = conn;
    conn = NULL;
out:
    /* sqlite3_open_v2 gives a handle to close even when it fails. */
    connection_close(rec, conn);
    return status;
}

/* Prepares a statement of a variable shape into its cache slot, unless it is there already. */
static esg_status prepare_cached(sqlite_connection *conn, sqlite3_stmt **slot, const char *sql,
                                 esg_error *err)
{
    if (*slot != NULL)
        return ESG_OK;
    int rc = sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    if (rc != SQLITE_OK)
        return sqlite_error(err, conn->db, rc, "cannot prepare a query");
    return ESG_OK;
}

/* ---- The pool -------------------------------------------------------------------------------- */

static esg_status pool_open(void *owner, void **out, esg_error *err)
{
    return connection_open(owner, false, (sqlite_connection **)out, err);
}

static void pool_close(void *owner, void *connection)
{
    connection_close(owner, connection);
}

static const esg_pool_ops sqlite_pool_ops = {.open = pool_open, .close = pool_close};

static esg_status pool_borrow(sqlite_recorder *rec, sqlite_connection **out, esg_error *err)
{
    return esg_pool_borrow(&rec->pool, (void **)out, err);
}

/* Takes a lent connection back. One that is no longer sane (a transaction that would not roll
 * back) is closed instead, unless it holds a memory database, which would be lost with it. */
static void pool_give_back(sqlite_recorder *rec, sqlite_connection *conn, bool is_sane)
{
    esg_pool_give_back(&rec->pool, conn, is_sane || rec->is_memory);
}

/* Waits up to the lock timeout for this process's turn to write. SQLite's busy handler polls
 * with sleeps of up to 100 ms, so threads of one process queue here instead and commit back to
 * back; other processes still meet them at SQLite's lock, under the busy timeout. */
static esg_status lock_writer(sqlite_recorder *rec, esg_error *err)
{
    /* pthread_mutex_timedlock knows only the wall clock. */
    struct timespec deadline = esg_clock_wall_deadline(rec->lock_timeout_ms);
    int rc = pthread_mutex_timedlock(&rec->write_lock, &deadline);
    if (rc == ETIMEDOUT)
        return esg_error_set(err, ESG_EUNAVAILABLE,
                             "cannot record events: database is locked, retry (other writers "
                             "of this process held it for %d ms)",
                             rec->lock_timeout_ms);
    if (rc != 0)
        return esg_error_set(err, ESG_EINTERNAL, "cannot record events: locking failed (%d)", rc);
    return ESG_OK;
}

/* ---- Writing --------------------------------------------------------------------------------- */

/* Runs BEGIN IMMEDIATE or COMMIT. */
static esg_status run_fixed(sqlite_connection *conn, enum fixed_statement which, const char *doing,
                            esg_error *err)
{
    esg_status status = ESG_OK;
    int rc = sqlite3_step(conn->fixed[which]);
    if (rc != SQLITE_DONE)
        status = sqlite_error(err, conn->db, rc, doing);
    sqlite3_reset(conn->fixed[which]);
    return status;
}

/* Rolls back the open transaction; false when even that failed and the connection is not to be
 * trusted any more. */
static bool rollback(sqlite_connection *conn)
{
    int rc = sqlite3_step(conn->fixed[STMT_ROLLBACK]);
    sqlite3_reset(conn->fixed[STMT_ROLLBACK]);
    return rc == SQLITE_DONE || sqlite3_get_autocommit(conn->db);
}

/* Runs an insert whose parameters were bound with result rc: SQLITE_OK when it inserted. */
static int step_insert(sqlite3_stmt *stmt, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Inserts an event, or with STMT_INSERT_SNAPSHOT a snapshot. */
static esg_status insert_event(sqlite_connection *conn, enum fixed_statement which,
                               const esg_stored_event *event, esg_error *err)
{
    esg_status status = ESG_OK;
    sqlite3_stmt *stmt = conn->fixed[which];
    char hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(&event->originator_id, hex);
    /* Bound without copies: finish() unbinds them before hex goes out of scope. An empty state
     * is bound as an empty blob, not NULL (a NULL pointer would bind NULL). */
    const void *state = event->state != NULL ? (const void *)event->state : "";
    int rc = sqlite3_bind_text(stmt, 1, hex, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, event->originator_version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 3, event->topic, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(stmt, 4, state, event->state_len, SQLITE_STATIC);
    rc = step_insert(stmt, rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        status = esg_error_set(err, ESG_ECONFLICT,
                               "cannot record %s: version %lld of aggregate %s is already "
                               "recorded (%s)",
                               which == STMT_INSERT_SNAPSHOT ? "a snapshot" : "events",
                               (long long)event->originator_version, hex, sqlite3_errmsg(conn->db));
    else if (rc != SQLITE_OK)
        status = sqlite_error(err, conn->db, rc, "cannot record events");
    finish(stmt);
    return status;
}

static esg_status insert_tracking(sqlite_connection *conn, const esg_tracking *tracking,
                                  esg_error *err)
{
    esg_status status = ESG_OK;
    sqlite3_stmt *stmt = conn->fixed[STMT_INSERT_TRACKING];
    int rc = sqlite3_bind_text(stmt, 1, tracking->application_name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, tracking->notification_id);
    rc = step_insert(stmt, rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        status = esg_error_set(err, ESG_ECONFLICT,
                               "cannot record events: notification %lld of %s is already tracked "
                               "(%s)",
                               (long long)tracking->notification_id, tracking->application_name,
                               sqlite3_errmsg(conn->db));
    else if (rc != SQLITE_OK)
        status = sqlite_error(err, conn->db, rc, "cannot record a tracking record");
    finish(stmt);
    return status;
}

/* The statement of the command replies' table, prepared on first use; a missing table (CREATE_TABLE
 * off) is named in the error. */
static esg_status command_statement(sqlite_connection *conn, enum command_statement which,
                                    sqlite3_stmt **out, esg_error *err)
{
    *out = NULL;
    if (conn->commands[which] == NULL) {
        int rc = sqlite3_prepare_v3(conn->db, command_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &conn->commands[which], NULL);
        if (rc != SQLITE_OK)
            return sqlite_error(err, conn->db, rc,
                                "cannot use the table " COMMANDS_TABLE
                                " of commands' replies (with CREATE_TABLE off, create it first)");
    }
    *out = conn->commands[which];
    return ESG_OK;
}

/* Writes a command record in the open transaction, replacing an expired record of its key. */
static esg_status insert_command(sqlite_connection *conn, const esg_command_record *command,
                                 esg_error *err)
{
    sqlite3_stmt *stmt = NULL;
    esg_status status = command_statement(conn, CMD_DELETE_EXPIRED_KEY, &stmt, err);
    if (status != ESG_OK)
        return status;
    int rc = sqlite3_bind_text(stmt, 1, command->key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, command->replaces_before);
    rc = step_insert(stmt, rc);
    finish(stmt);
    if (rc != SQLITE_OK)
        return sqlite_error(err, conn->db, rc, "cannot replace an expired command record");
    status = command_statement(conn, CMD_INSERT, &stmt, err);
    if (status != ESG_OK)
        return status;
    rc = sqlite3_bind_text(stmt, 1, command->key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, command->request_hash, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(stmt, 3, command->reply != NULL ? command->reply : "",
                                 command->reply_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 4, command->recorded_at);
    rc = step_insert(stmt, rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        status = esg_error_set(err, ESG_ECONFLICT,
                               "cannot record events: the command's idempotency key is recorded "
                               "already");
    else if (rc != SQLITE_OK)
        status = sqlite_error(err, conn->db, rc, "cannot record a command's reply");
    finish(stmt);
    return status;
}

/* Writes one request's events and tracking records in the open transaction. */
static esg_status write_request_rows(sqlite_connection *conn, write_request *req)
{
    esg_status status = ESG_OK;
    for (size_t i = 0; status == ESG_OK && i < req->n_events; i++) {
        status = insert_event(conn, req->is_snapshot ? STMT_INSERT_SNAPSHOT : STMT_INSERT_EVENT,
                              &req->events[i], req->err);
        if (status == ESG_OK && req->notification_ids != NULL)
            req->notification_ids[i] = sqlite3_last_insert_rowid(conn->db);
    }
    for (size_t i = 0; status == ESG_OK && i < req->n_trackings; i++)
        status = insert_tracking(conn, &req->trackings[i], req->err);
    if (status == ESG_OK && req->command != NULL)
        status = insert_command(conn, req->command, req->err);
    return status;
}

/* Writes a group of requests in one transaction and sets each one's status. In a group, a
 * request that conflicts is rolled back to its savepoint and fails alone; any other failure
 * fails the whole group, as does a failed commit. The rowid SQLite gives each new row is one
 * more than the highest, and writers take turns, so the ids follow commit order without gaps; a
 * rolled-back insert gives its rowid back (the table has no AUTOINCREMENT). */
static void commit_group(void *owner, write_request *group)
{
    sqlite_recorder *rec = owner;
    sqlite_connection *conn = NULL;
    bool is_sane = true;
    bool is_group = group->next != NULL;
    esg_error *group_err = group->err; /* describes a failure of the whole group */
    const char *doing = "cannot record events";
    esg_status status = lock_writer(rec, group_err);
    bool is_locked = status == ESG_OK;
    if (status == ESG_OK)
        status = pool_borrow(rec, &conn, group_err);
    if (status == ESG_OK)
        status =
            run_fixed(conn, STMT_BEGIN, "cannot begin a transaction to record events", group_err);
    for (write_request *req = group; status == ESG_OK && req != NULL; req = req->next) {
        if (is_group)
            status = run_fixed(conn, STMT_SAVEPOINT, doing, group_err);
        if (status != ESG_OK)
            break;
        req->status = write_request_rows(conn, req);
        if (req->status == ESG_OK) {
            if (is_group)
                status = run_fixed(conn, STMT_RELEASE, doing, group_err);
        } else if (req->status == ESG_ECONFLICT && is_group) {
            status = run_fixed(conn, STMT_ROLLBACK_TO, doing, group_err);
            if (status == ESG_OK)
                status = run_fixed(conn, STMT_RELEASE, doing, group_err);
        } else {
            status = req->status; /* alone, or a failure that is not a conflict */
            group_err = req->err;
        }
    }
    if (status == ESG_OK) {
        status = run_fixed(conn, STMT_COMMIT, "cannot commit recorded events", group_err);
        /* The commit's frames are in the WAL but were not synced: readers do not see them, yet
         * WAL recovery brings them back if the process crashes before its next write. As when
         * a PostgreSQL commit's answer is lost, the caller may try again (with an idempotency
         * key: safely) and must not take it as "not recorded". */
        if (status != ESG_OK && sqlite3_extended_errcode(conn->db) == SQLITE_IOERR_FSYNC) {
            status = ESG_EUNAVAILABLE;
            if (group_err != NULL) {
                size_t len = strlen(group_err->message);
                snprintf(group_err->message + len, sizeof group_err->message - len,
                         "; the outcome is unknown: the events may have been recorded (their "
                         "WAL frames were written but not synced)");
                group_err->status = status;
            }
        }
    }
    if (status != ESG_OK) {
        /* Some failures (a full disk, an I/O error) end the transaction already. */
        if (conn != NULL && !sqlite3_get_autocommit(conn->db))
            is_sane = rollback(conn);
        /* Nothing was committed: the requests that had not failed on their own fail too. */
        for (write_request *req = group; req != NULL; req = req->next) {
            if (req->status != ESG_OK)
                continue;
            req->status = status;
            if (req->err != NULL && group_err != NULL && req->err != group_err)
                *req->err = *group_err;
        }
    }
    pool_give_back(rec, conn, is_sane);
    if (is_locked)
        pthread_mutex_unlock(&rec->write_lock);
}

/* All events and the tracking records in one transaction, committed with those of the writers
 * that queued meanwhile (group_commit.h), each in a savepoint of its own, so that a conflict
 * fails only its writer. */
static esg_status queue_and_commit(sqlite_recorder *rec, write_request *req)
{
    return esg_group_commit_write(&rec->writes, req, commit_group, rec);
}

static esg_status
sqlite_recorder_insert_events_tracked(esg_recorder *recorder, const esg_stored_event *events,
                                      size_t n_events, const esg_tracking *trackings,
                                      size_t n_trackings, const esg_command_record *command,
                                      int64_t *notification_ids, esg_error *err)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    return esg_group_commit_insert(&rec->writes, events, n_events, trackings, n_trackings, command,
                                   notification_ids, err, commit_group, rec);
}

/* A snapshot is written as one more request of the group commit. */
static esg_status sqlite_recorder_insert_snapshot(esg_recorder *recorder,
                                                  const esg_stored_event *snapshot, esg_error *err)
{
    write_request req = {
        .events = snapshot, .n_events = 1, .is_snapshot = true, .err = err, .status = ESG_OK};
    return queue_and_commit((sqlite_recorder *)recorder, &req);
}

/* ---- Reading --------------------------------------------------------------------------------- */

/* Reads a row of SELECT_COLUMNS. stored points into the statement's memory, valid until its next
 * step. Python never writes NULLs, so any is a corrupt row. */
static esg_status read_row(sqlite_connection *conn, sqlite3_stmt *stmt, int64_t *id,
                           esg_stored_event *stored, esg_error *err)
{
    *id = sqlite3_column_int64(stmt, 0);
    static const char *const names[] = {"rowid", "originator_id", "originator_version", "topic",
                                        "state"};
    for (int column = 1; column <= 4; column++)
        if (sqlite3_column_type(stmt, column) == SQLITE_NULL)
            return esg_error_set(err, ESG_EIO, "corrupt row at notification id %lld: %s is NULL",
                                 (long long)*id, names[column]);
    const char *originator_id = (const char *)sqlite3_column_text(stmt, 1);
    int originator_id_len = sqlite3_column_bytes(stmt, 1);
    const char *topic = (const char *)sqlite3_column_text(stmt, 3);
    const void *state = sqlite3_column_blob(stmt, 4);
    int state_len = sqlite3_column_bytes(stmt, 4);
    /* NULL from a non-NULL column is a failed conversion (an empty blob is NULL too). */
    if (originator_id == NULL || topic == NULL ||
        (state == NULL && sqlite3_errcode(conn->db) == SQLITE_NOMEM))
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading notification id %lld",
                             (long long)*id);
    esg_status status =
        esg_uuid_parse(originator_id, (size_t)originator_id_len, &stored->originator_id, NULL);
    if (status != ESG_OK)
        return esg_error_set(err, ESG_EIO,
                             "corrupt row at notification id %lld: originator_id '%.40s' is not "
                             "a UUID",
                             (long long)*id, originator_id);
    stored->originator_version = sqlite3_column_int64(stmt, 2);
    stored->topic = (char *)topic;
    stored->state = (uint8_t *)state;
    stored->state_len = (size_t)state_len;
    return ESG_OK;
}

/* Steps stmt to its end, appending each row to events or (with its id) to notifications, the
 * other NULL; *rc is the last step's code (SQLITE_DONE at the end). */
static esg_status read_rows(sqlite_connection *conn, sqlite3_stmt *stmt,
                            esg_stored_event_list *events, esg_notification_list *notifications,
                            int *rc, esg_error *err)
{
    while ((*rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = 0;
        esg_stored_event stored;
        esg_status status = read_row(conn, stmt, &id, &stored, err);
        if (status == ESG_OK)
            status = events != NULL ? esg_stored_event_list_push(events, &stored, err)
                                    : esg_notification_list_push(notifications, id, &stored, err);
        if (status != ESG_OK)
            return status;
    }
    return ESG_OK;
}

/* Selects an aggregate's events, or its snapshots. */
static esg_status sqlite_recorder_select_versions(esg_recorder *recorder, bool is_snapshots,
                                                  const esg_uuid *originator_id,
                                                  const esg_select_events_options *options,
                                                  esg_stored_event_list *out, esg_error *err)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    sqlite_connection *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    esg_events_query query;
    esg_events_query_of(options, is_snapshots, &query);
    unsigned shape = query.shape;
    char hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(originator_id, hex);

    esg_status status = pool_borrow(rec, &conn, err);
    if (status != ESG_OK)
        goto out;
    sqlite3_stmt **slot = is_snapshots ? &conn->snapshots[shape] : &conn->events[shape];
    if (*slot == NULL) { /* each shape is prepared once per connection */
        char sql[320];
        esg_events_query_sql(sql, sizeof sql,
                             is_snapshots ? SELECT_SNAPSHOT_COLUMNS : SELECT_COLUMNS,
                             is_snapshots ? "stored_snapshots" : "stored_events", shape, false);
        status = prepare_cached(conn, slot, sql, err);
    }
    if (status != ESG_OK)
        goto out;
    stmt = *slot;
    int rc = sqlite3_bind_text(stmt, 1, hex, -1, SQLITE_STATIC);
    for (size_t i = 0; rc == SQLITE_OK && i < query.n_numbers; i++)
        rc = sqlite3_bind_int64(stmt, (int)i + 2, query.numbers[i]);
    if (rc == SQLITE_OK && (status = read_rows(conn, stmt, out, NULL, &rc, err)) != ESG_OK)
        goto out;
    if (rc != SQLITE_DONE)
        status = sqlite_error(err, conn->db, rc, query.doing);
out:
    if (stmt != NULL)
        finish(stmt);
    pool_give_back(rec, conn, true);
    return status;
}

/* The notifications query of one shape; the caller frees it. */
static char *notifications_sql(bool has_stop, size_t n_topics)
{
    esg_buffer sql = {0};
    esg_buffer_put_str(&sql, SELECT_COLUMNS "FROM stored_events WHERE rowid>=?");
    if (has_stop)
        esg_buffer_put_str(&sql, " AND rowid<=?");
    if (n_topics > 0) {
        /* Topics are always bound, never written into the SQL. */
        esg_buffer_put_str(&sql, " AND topic IN (?");
        for (size_t i = 1; i < n_topics; i++)
            esg_buffer_put_str(&sql, ",?");
        esg_buffer_put_str(&sql, ")");
    }
    esg_buffer_put_str(&sql, " ORDER BY rowid LIMIT ?");
    return esg_buffer_take(&sql, NULL);
}

static esg_status sqlite_recorder_select_notifications(esg_recorder *recorder, int64_t start,
                                                       int64_t limit, int64_t stop,
                                                       const char *const *topics, size_t n_topics,
                                                       esg_notification_list *out, esg_error *err)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    sqlite_connection *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    bool is_cached = n_topics <= MAX_CACHED_TOPICS;
    char *sql = NULL;

    esg_status status = pool_borrow(rec, &conn, err);
    if (status != ESG_OK)
        goto out;
    int max_params = sqlite3_limit(conn->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
    if (max_params < 3 || n_topics > (size_t)max_params - 3) {
        status = esg_error_set(err, ESG_EINVAL,
                               "cannot select notifications of %zu topics: SQLite takes at most "
                               "%d",
                               n_topics, max_params - 3);
        goto out;
    }
    sqlite3_stmt **slot = is_cached ? &conn->notifications[n_topics * 2 + (stop > 0)] : &stmt;
    if (*slot == NULL) {
        sql = notifications_sql(stop > 0, n_topics);
        if (sql == NULL) {
            status = esg_error_set(err, ESG_ENOMEM, "out of memory selecting notifications");
            goto out;
        }
        int rc = sqlite3_prepare_v3(conn->db, sql, -1, is_cached ? SQLITE_PREPARE_PERSISTENT : 0,
                                    slot, NULL);
        if (rc != SQLITE_OK) {
            status = sqlite_error(err, conn->db, rc, "cannot prepare a query of notifications");
            goto out;
        }
    }
    stmt = *slot;
    int param = 1;
    int rc = sqlite3_bind_int64(stmt, param++, start);
    if (rc == SQLITE_OK && stop > 0)
        rc = sqlite3_bind_int64(stmt, param++, stop);
    for (size_t i = 0; rc == SQLITE_OK && i < n_topics; i++)
        rc = sqlite3_bind_text(stmt, param++, topics[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, param++, limit);
    if (rc == SQLITE_OK && (status = read_rows(conn, stmt, NULL, out, &rc, err)) != ESG_OK)
        goto out;
    if (rc != SQLITE_DONE)
        status = sqlite_error(err, conn->db, rc, "cannot read notifications");
out:
    if (is_cached && stmt != NULL)
        finish(stmt);
    if (!is_cached)
        sqlite3_finalize(stmt);
    esg_free(sql);
    pool_give_back(rec, conn, true);
    return status;
}

/* Runs one of the fixed one-row queries, with the application name and the notification id bound
 * as far as it has parameters. With exists, whether a row came; else its integer (NULL as 0). */
static esg_status query_one_row(sqlite_recorder *rec, enum fixed_statement which,
                                const char *application_name, int64_t notification_id,
                                int64_t *value, bool *exists, const char *doing, esg_error *err)
{
    sqlite_connection *conn = NULL;
    esg_status status = pool_borrow(rec, &conn, err);
    if (status != ESG_OK)
        return status;
    sqlite3_stmt *stmt = conn->fixed[which];
    int n_params = sqlite3_bind_parameter_count(stmt);
    int rc = SQLITE_OK;
    if (n_params >= 1)
        rc = sqlite3_bind_text(stmt, 1, application_name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && n_params >= 2)
        rc = sqlite3_bind_int64(stmt, 2, notification_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && value != NULL)
        *value = sqlite3_column_type(stmt, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, 0);
    else if ((rc == SQLITE_ROW || rc == SQLITE_DONE) && exists != NULL)
        *exists = rc == SQLITE_ROW;
    else
        status = sqlite_error(err, conn->db, rc, doing);
    finish(stmt);
    pool_give_back(rec, conn, true);
    return status;
}

static esg_status sqlite_recorder_max_notification_id(esg_recorder *recorder, int64_t *out,
                                                      esg_error *err)
{
    return query_one_row((sqlite_recorder *)recorder, STMT_MAX_NOTIFICATION_ID, NULL, 0, out, NULL,
                         "cannot read the highest notification id", err);
}

static esg_status sqlite_recorder_max_tracking_id(esg_recorder *recorder,
                                                  const char *application_name, int64_t *out,
                                                  esg_error *err)
{
    return query_one_row((sqlite_recorder *)recorder, STMT_MAX_TRACKING_ID, application_name, 0,
                         out, NULL, "cannot read the highest tracked notification id", err);
}

static esg_status sqlite_recorder_has_tracking_id(esg_recorder *recorder,
                                                  const char *application_name,
                                                  int64_t notification_id, bool *out,
                                                  esg_error *err)
{
    return query_one_row((sqlite_recorder *)recorder, STMT_HAS_TRACKING_ID, application_name,
                         notification_id, NULL, out, "cannot read a tracking record", err);
}

/* ---- Commands' replies ----------------------------------------------------------------------- */

static esg_status sqlite_recorder_select_command(esg_recorder *recorder, const char *key,
                                                 int64_t not_before, esg_command_reply *out,
                                                 bool *found, esg_error *err)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    sqlite_connection *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    esg_status status = pool_borrow(rec, &conn, err);
    if (status != ESG_OK)
        return status;
    status = command_statement(conn, CMD_SELECT, &stmt, err);
    if (status != ESG_OK)
        goto out;
    int rc = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 2, not_before);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(stmt, 0);
        const void *reply = sqlite3_column_blob(stmt, 1);
        status = esg_command_reply_fill(out, hash, hash != NULL ? strlen(hash) : 0, reply,
                                        (size_t)sqlite3_column_bytes(stmt, 1),
                                        sqlite3_column_int64(stmt, 2), err);
        *found = status == ESG_OK;
    } else if (rc != SQLITE_DONE) {
        status = sqlite_error(err, conn->db, rc, "cannot read a command's reply");
    }
out:
    if (stmt != NULL)
        finish(stmt);
    pool_give_back(rec, conn, true);
    return status;
}

static esg_status sqlite_recorder_delete_commands(esg_recorder *recorder, int64_t before,
                                                  int64_t *n_deleted, esg_error *err)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    sqlite_connection *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    esg_status status = lock_writer(rec, err);
    if (status != ESG_OK)
        return status;
    status = pool_borrow(rec, &conn, err);
    if (status == ESG_OK)
        status = command_statement(conn, CMD_DELETE_EXPIRED, &stmt, err);
    if (status == ESG_OK) {
        int rc = step_insert(stmt, sqlite3_bind_int64(stmt, 1, before));
        if (rc == SQLITE_OK)
            *n_deleted = sqlite3_changes(conn->db);
        else
            status = sqlite_error(err, conn->db, rc, "cannot delete expired command records");
        finish(stmt);
    }
    if (conn != NULL)
        pool_give_back(rec, conn, true);
    pthread_mutex_unlock(&rec->write_lock);
    return status;
}

static esg_status sqlite_recorder_has_command_table(esg_recorder *recorder, bool *out,
                                                    esg_error *err)
{
    return query_one_row((sqlite_recorder *)recorder, STMT_HAS_COMMAND_TABLE, NULL, 0, NULL, out,
                         "cannot look for the table " COMMANDS_TABLE, err);
}

/* ---- Opening and closing --------------------------------------------------------------------- */

/* Every connection is idle by now: closing while a call is running is the caller's bug. */
static void sqlite_recorder_close(esg_recorder *recorder)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    esg_pool_destroy(&rec->pool);
    esg_group_commit_destroy(&rec->writes);
    pthread_mutex_destroy(&rec->write_lock);
    esg_free(rec->db_name);
    esg_free(rec);
}

/* The pool's connections, and SQLite's memory: the whole process's (SQLite counts it so), which
 * is mostly the connections' page caches (up to 2 MiB each by default) and their statements. */
static void sqlite_recorder_write_metrics(esg_recorder *recorder, const char *const *labels,
                                          esg_buffer *out)
{
    sqlite_recorder *rec = (sqlite_recorder *)recorder;
    esg_pool_write_metrics(&rec->pool, labels, out);
    static const char *const no_labels[] = {NULL};
    esg_metrics_family(out, "eventsourcing_sqlite_memory_bytes", "gauge",
                       "Memory SQLite has allocated in this process (sqlite3_memory_used).");
    esg_metrics_sample(out, "eventsourcing_sqlite_memory_bytes", no_labels,
                       (double)sqlite3_memory_used());
    esg_metrics_family(out, "eventsourcing_sqlite_memory_highwater_bytes", "gauge",
                       "The most memory SQLite has had allocated at once in this process.");
    esg_metrics_sample(out, "eventsourcing_sqlite_memory_highwater_bytes", no_labels,
                       (double)sqlite3_memory_highwater(0));
}

static const esg_recorder_ops sqlite_ops = {
    .name = BACKEND_NAME,
    .is_blocking = true,
    .insert_events_tracked = sqlite_recorder_insert_events_tracked,
    .select_versions = sqlite_recorder_select_versions,
    .select_notifications = sqlite_recorder_select_notifications,
    .max_notification_id = sqlite_recorder_max_notification_id,
    .max_tracking_id = sqlite_recorder_max_tracking_id,
    .has_tracking_id = sqlite_recorder_has_tracking_id,
    .insert_snapshot = sqlite_recorder_insert_snapshot,
    .select_command = sqlite_recorder_select_command,
    .delete_commands = sqlite_recorder_delete_commands,
    .has_command_table = sqlite_recorder_has_command_table,
    .close = sqlite_recorder_close,
    .write_metrics = sqlite_recorder_write_metrics,
};

esg_status esg_recorder_open_sqlite(const char *db_name, const esg_sqlite_options *options,
                                    esg_recorder **out, esg_error *err)
{
    static const esg_sqlite_options defaults = {0};
    if (options == NULL)
        options = &defaults;
    int lock_timeout_ms = options->lock_timeout_ms;
    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "out is NULL");
    *out = NULL;
    /* "" would give each connection its own private temporary database. */
    if (db_name == NULL || db_name[0] == '\0')
        return esg_error_set(err, ESG_EINVAL, "the SQLite database name is empty");
    if (lock_timeout_ms < 0)
        return esg_error_set(err, ESG_EINVAL, "the SQLite lock timeout must be >= 0, not %d ms",
                             lock_timeout_ms);

    esg_status status = ESG_OK;
    int n_locks = 0; /* how many of the three locks below are initialised */
    bool has_pool = false;
    sqlite_connection *conn = NULL;
    sqlite_recorder *rec = esg_calloc(1, sizeof *rec);
    if (rec == NULL || (rec->db_name = esg_strdup(db_name)) == NULL) {
        status =
            esg_error_set(err, ESG_ENOMEM, "out of memory opening SQLite database '%s'", db_name);
        goto out;
    }
    rec->base.ops = &sqlite_ops;
    rec->base.is_snapshotting = options->is_snapshotting;
    rec->is_creating_tables = !options->is_using_tables_as_they_are;
    /* As Python detects it: every connection to ":memory:" would be a database of its own. */
    rec->is_memory = strstr(db_name, ":memory:") != NULL || strstr(db_name, "mode=memory") != NULL;
    rec->lock_timeout_ms = lock_timeout_ms > 0 ? lock_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS;
    if (pthread_mutex_init(&rec->write_lock, NULL) == 0)
        n_locks++;
    if (n_locks == 1 && esg_group_commit_init(&rec->writes))
        n_locks++;
    if (n_locks < 2) {
        status = esg_error_set(err, ESG_ENOMEM, "cannot create the locks of SQLite database '%s'",
                               db_name);
        goto out;
    }
    /* Connections wait for each other without a timeout: each holds one only for one call. */
    size_t max_connections = rec->is_memory ? 1 : MAX_FILE_CONNECTIONS;
    const esg_pool_config pool_config = {.ops = &sqlite_pool_ops,
                                         .owner = rec,
                                         .max_idle = max_connections,
                                         .max_open = max_connections,
                                         .timeout_ms = -1,
                                         .bound_name = "the SQLite connections"};
    status = esg_pool_init(&rec->pool, &pool_config, err);
    if (status != ESG_OK)
        goto out;
    has_pool = true;

    /* The first connection creates the tables and, for a memory database, is the database. */
    status = connection_open(rec, true, &conn, err);
    if (status != ESG_OK)
        goto out;
    esg_pool_adopt(&rec->pool, conn);
    *out = &rec->base;
    rec = NULL;
out:
    if (rec != NULL) {
        if (has_pool)
            esg_pool_destroy(&rec->pool);
        if (n_locks > 1)
            esg_group_commit_destroy(&rec->writes);
        if (n_locks > 0)
            pthread_mutex_destroy(&rec->write_lock);
        esg_free(rec->db_name);
        esg_free(rec);
    }
    return status;
}
