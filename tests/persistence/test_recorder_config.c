/* Tests of opening a recorder from the environment (PERSISTENCE_MODULE and the SQLite settings,
 * looked up as the Python library does) and of the SQLite file format: the tables eventsourcing
 * 9.2 creates, and rows that the Python library and this one can each read from the other. */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A fresh folder for this test's database files, an empty environment for it to fill in. */
typedef testutil_fixture fixture;

/* ---- Helpers ------------------------------------------------------------- */

#define POPO_MODULE "eventsourcing.popo"
#define SQLITE_MODULE "eventsourcing.sqlite"

/* Python's eventsourcing 9.2 SQLiteProcessRecorder creates these (with "IF NOT EXISTS", which
 * SQLite drops from the text it keeps in sqlite_master). */
#define STORED_EVENTS_TABLE_SQL                                                                    \
    "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "     \
    "state BLOB, PRIMARY KEY (originator_id, originator_version))"
#define TRACKING_TABLE_SQL                                                                         \
    "CREATE TABLE tracking (application_name TEXT, notification_id INTEGER, PRIMARY KEY "          \
    "(application_name, notification_id)) WITHOUT ROWID"

static void db_path(const fixture *f, const char *file_name, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/%s", f->temp_dir, file_name);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Opens from the environment and asserts success with the backend expected. */
static esg_recorder *open_expecting(const fixture *f, const char *app_name, const char *backend)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(esg_recorder_open(f->env, app_name, &recorder, &err), &err);
    assert_non_null(recorder);
    assert_string_equal(esg_recorder_backend(recorder), backend);
    return recorder;
}

/* The SQLite recorder on the file path, asserted to open (the caller closes it). */
static esg_recorder *open_sqlite_file(const char *path)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(esg_recorder_open_sqlite(path, NULL, &recorder, &err), &err);
    return recorder;
}

/* Opens from the environment, asserts ESG_ECONFIG with no recorder, and returns the message
 * through err for the caller to check. */
static void open_expecting_config_error(const fixture *f, const char *app_name, esg_error *err)
{
    static int not_a_recorder;
    esg_recorder *recorder = (esg_recorder *)&not_a_recorder; /* shows whether *out was reset */
    esg_status rc = esg_recorder_open(f->env, app_name, &recorder, err);
    if (rc != ESG_ECONFIG)
        fail_msg("expected ESG_ECONFIG, got %s: %s", esg_status_name(rc), err->message);
    assert_null(recorder);
    assert_int_equal(err->status, ESG_ECONFIG);
}

static size_t count_occurrences(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", text, needle);
}

static sqlite3 *open_raw(const char *path, int flags)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK)
        fail_msg("sqlite3_open_v2(%s): %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return db;
}

static void exec_raw(sqlite3 *db, const char *sql)
{
    char *message = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", message ? message : "?");
        sqlite3_free(message);
        fail_msg("%s: %s", sql, copy);
    }
}

static sqlite3_stmt *prepare_raw(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    return stmt;
}

/* ---- Choosing the backend ------------------------------------------------ */

static void test_no_persistence_module_gives_popo(void **state)
{
    fixture *f = *state;
    char plain_path[512];
    db_path(f, "plain.db", plain_path, sizeof plain_path);

    /* An SQLite database name alone does not choose SQLite. */
    testutil_env_set(f->env, "SQLITE_DBNAME", plain_path);
    const char *const app_names[] = {NULL, "", "Orders"};
    for (size_t i = 0; i < sizeof app_names / sizeof app_names[0]; i++)
        esg_recorder_close(open_expecting(f, app_names[i], POPO_MODULE));
    assert_false(file_exists(plain_path));

    testutil_env_set(f->env, "PERSISTENCE_MODULE", POPO_MODULE);
    esg_recorder *recorder = open_expecting(f, "Orders", POPO_MODULE);
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_notification_id(recorder, &max_id, &err), &err);
    assert_int_equal(max_id, 0);
    esg_recorder_close(recorder);
}

static void test_sqlite_without_dbname_is_a_config_error(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "PERSISTENCE_MODULE", SQLITE_MODULE);

    /* As Python says it: "... not found in environment with keys: ORDERS_SQLITE_DBNAME,
     * SQLITE_DBNAME", naming the prefixed key upper-cased as it is looked up. */
    esg_error err = {0};
    open_expecting_config_error(f, "Orders", &err);
    assert_contains(err.message, "ORDERS_SQLITE_DBNAME");
    assert_int_equal(count_occurrences(err.message, "SQLITE_DBNAME"), 2);

    /* A database name for another application does not count. */
    char orders_path[512];
    db_path(f, "orders.db", orders_path, sizeof orders_path);
    testutil_env_set(f->env, "ORDERS_SQLITE_DBNAME", orders_path);
    esg_error payments_err = {0};
    open_expecting_config_error(f, "Payments", &payments_err);
    assert_contains(payments_err.message, "PAYMENTS_SQLITE_DBNAME");
    assert_false(file_exists(orders_path));

    esg_error plain_err = {0};
    open_expecting_config_error(f, NULL, &plain_err);
    assert_contains(plain_err.message, "SQLITE_DBNAME");
}

static void test_prefixed_keys_win_over_plain_ones(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    char orders_path[512], plain_path[512];
    db_path(f, "orders.db", orders_path, sizeof orders_path);
    db_path(f, "plain.db", plain_path, sizeof plain_path);
    testutil_env_set(f->env, "PERSISTENCE_MODULE", POPO_MODULE);
    testutil_env_set(f->env, "SQLITE_DBNAME", plain_path);
    testutil_env_set(f->env, "ORDERS_PERSISTENCE_MODULE", SQLITE_MODULE);
    testutil_env_set(f->env, "ORDERS_SQLITE_DBNAME", orders_path);

    esg_recorder *recorder = open_expecting(f, "Orders", SQLITE_MODULE);
    assert_true(file_exists(orders_path));
    assert_false(file_exists(plain_path));
    esg_uuid id = testutil_random_uuid();
    esg_stored_event event = {
        .originator_id = id,
        .originator_version = 1,
        .topic = (char *)"eventsourcing_grpc.example:Order.Created",
        .state = (uint8_t *)"{}",
        .state_len = 2,
    };
    assert_esg_ok(esg_recorder_insert_events(recorder, &event, 1, NULL, NULL, &err), &err);
    esg_recorder_close(recorder);

    /* What was written is in orders.db: a recorder opened on that file directly sees it. */
    recorder = open_sqlite_file(orders_path);
    int64_t max_id = 0;
    assert_esg_ok(esg_recorder_max_notification_id(recorder, &max_id, &err), &err);
    assert_int_equal(max_id, 1);
    esg_recorder_close(recorder);

    /* The application name is upper-cased for the lookup, as in Python. */
    esg_recorder_close(open_expecting(f, "orders", SQLITE_MODULE));
    /* Without that prefix the plain keys apply. */
    esg_recorder_close(open_expecting(f, NULL, POPO_MODULE));
    esg_recorder_close(open_expecting(f, "Payments", POPO_MODULE));
    assert_false(file_exists(plain_path));
}

static void test_unknown_module_is_a_config_error(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "PERSISTENCE_MODULE", "eventsourcing.mysql");
    esg_error err = {0};
    open_expecting_config_error(f, NULL, &err);
    assert_contains(err.message, "eventsourcing.mysql");

    /* A bad prefixed setting is not rescued by a good plain one. */
    testutil_env_set(f->env, "PERSISTENCE_MODULE", POPO_MODULE);
    testutil_env_set(f->env, "ORDERS_PERSISTENCE_MODULE", "eventsourcing.nosuchthing");
    esg_error prefixed_err = {0};
    open_expecting_config_error(f, "Orders", &prefixed_err);
    assert_contains(prefixed_err.message, "eventsourcing.nosuchthing");
}

static void test_sqlite_lock_timeout_setting(void **state)
{
    fixture *f = *state;
    char path[512];
    db_path(f, "events.db", path, sizeof path);
    testutil_env_set(f->env, "PERSISTENCE_MODULE", SQLITE_MODULE);
    testutil_env_set(f->env, "SQLITE_DBNAME", path);

    testutil_env_set(f->env, "SQLITE_LOCK_TIMEOUT", "abc");
    esg_error err = {0};
    open_expecting_config_error(f, NULL, &err);
    assert_contains(err.message, "SQLITE_LOCK_TIMEOUT");
    /* Refused before anything is opened, as Python parses the setting first. */
    assert_false(file_exists(path));

    testutil_env_set(f->env, "SQLITE_LOCK_TIMEOUT", "");
    esg_recorder_close(open_expecting(f, NULL, SQLITE_MODULE));
    testutil_env_set(f->env, "SQLITE_LOCK_TIMEOUT", "7");
    esg_recorder_close(open_expecting(f, NULL, SQLITE_MODULE));

    /* The prefixed setting wins here too. */
    testutil_env_set(f->env, "ORDERS_SQLITE_LOCK_TIMEOUT", "soon");
    esg_error prefixed_err = {0};
    open_expecting_config_error(f, "Orders", &prefixed_err);
    esg_recorder_close(open_expecting(f, "Payments", SQLITE_MODULE));
}

/* The permission bits of a file, or -1 when it is missing. */
static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* A new database, its WAL and its shared-memory file are the owner's alone (0600) whatever the
 * embedding program's umask, by path and by "file:" URI; an existing file keeps its mode. */
static void test_new_sqlite_files_are_private(void **state)
{
    fixture *f = *state;
    mode_t old_umask = umask(022);
    char path[512], uri[600], existing[512], wal[530], shm[530];
    db_path(f, "private.db", path, sizeof path);
    db_path(f, "by-uri.db", existing, sizeof existing);
    snprintf(uri, sizeof uri, "file:%s?mode=rwc", existing);
    const char *names[] = {path, uri};
    const char *files[] = {path, existing};
    for (int i = 0; i < 2; i++) {
        esg_error err = {0};
        esg_recorder *recorder = NULL;
        assert_esg_ok(esg_recorder_open_sqlite(names[i], NULL, &recorder, &err), &err);
        esg_uuid id = testutil_random_uuid();
        esg_stored_event event = {.originator_id = id,
                                  .originator_version = 1,
                                  .topic = "t:T",
                                  .state = (uint8_t *)"{}",
                                  .state_len = 2};
        assert_esg_ok(esg_recorder_insert_events(recorder, &event, 1, NULL, NULL, &err), &err);
        snprintf(wal, sizeof wal, "%s-wal", files[i]);
        snprintf(shm, sizeof shm, "%s-shm", files[i]);
        assert_int_equal(file_mode(files[i]), 0600);
        assert_int_equal(file_mode(wal), 0600);
        assert_int_equal(file_mode(shm), 0600);
        esg_recorder_close(recorder);
    }
    /* A file the operator made readable stays so. */
    assert_int_equal(chmod(path, 0640), 0);
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(esg_recorder_open_sqlite(path, NULL, &recorder, &err), &err);
    assert_int_equal(file_mode(path), 0640);
    esg_recorder_close(recorder);
    umask(old_umask);
}

/* ---- The SQLite file format ------------------------------------------------ */

static void test_schema_is_eventsourcing_9_2(void **state)
{
    fixture *f = *state;
    char path[512];
    db_path(f, "events.db", path, sizeof path);
    esg_recorder *recorder = open_sqlite_file(path);
    esg_recorder_close(recorder);
    /* Opening an existing database must leave its tables as they are. */
    recorder = open_sqlite_file(path);
    esg_recorder_close(recorder);

    sqlite3 *db = open_raw(path, SQLITE_OPEN_READONLY);
    /* Python's two tables exactly, and this library's own table of commands' replies (which
     * Python never reads), with its index. */
    sqlite3_stmt *stmt = prepare_raw(
        db, "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL "
            "ORDER BY name");
    const char *const expected[] = {
        "CREATE TABLE esg_command_replies (key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, "
        "reply BLOB NOT NULL, recorded_at INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE INDEX esg_command_replies_recorded_at ON esg_command_replies (recorded_at)",
        STORED_EVENTS_TABLE_SQL, TRACKING_TABLE_SQL};
    size_t n_tables = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(stmt, 0);
        assert_non_null(sql);
        if (n_tables >= 4)
            fail_msg("an extra table or index: %s", sql);
        assert_string_equal(sql, expected[n_tables]);
        n_tables++;
    }
    assert_int_equal(rc, SQLITE_DONE);
    assert_int_equal(n_tables, 4);
    sqlite3_finalize(stmt);

    /* recorder.h promises WAL mode, which Python also sets; it is kept in the file. */
    stmt = prepare_raw(db, "PRAGMA journal_mode");
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_rows_are_written_as_python_writes_them(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    char path[512];
    db_path(f, "events.db", path, sizeof path);
    esg_recorder *recorder = open_sqlite_file(path);

    esg_uuid first_id = testutil_random_uuid(), second_id = testutil_random_uuid();
    static const char first_state[] = "{\"name\":\"Zo\xc3\xab\"}";
    esg_stored_event events[] = {
        {first_id, 1, (char *)"eventsourcing_grpc.example:Order.Created", (uint8_t *)first_state,
         sizeof first_state - 1},
        {second_id, 1, (char *)"eventsourcing_grpc.example:Order.Created", (uint8_t *)"{}", 2},
    };
    esg_tracking tracking = {.application_name = "Upstream", .notification_id = 3};
    assert_esg_ok(esg_recorder_insert_events(recorder, events, 2, &tracking, NULL, &err), &err);
    esg_recorder_close(recorder);

    /* Python reads originator_id with UUID(text) and hands state to its transcoder as bytes, so
     * the id must be TEXT (32 lowercase hex) and the state a BLOB; the rowid is the
     * notification id. */
    sqlite3 *db = open_raw(path, SQLITE_OPEN_READONLY);
    sqlite3_stmt *stmt =
        prepare_raw(db, "SELECT rowid, originator_id, typeof(originator_id), originator_version, "
                        "typeof(originator_version), topic, typeof(topic), state, typeof(state) "
                        "FROM stored_events ORDER BY rowid");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        char hex[ESG_UUID_HEX_SIZE];
        esg_uuid_hex(&events[i].originator_id, hex);
        assert_int_equal(sqlite3_column_int64(stmt, 0), (int64_t)i + 1);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 1), hex);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 2), "text");
        assert_int_equal(sqlite3_column_int64(stmt, 3), 1);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 4), "integer");
        assert_string_equal((const char *)sqlite3_column_text(stmt, 5), events[i].topic);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 6), "text");
        const void *blob = sqlite3_column_blob(stmt, 7);
        assert_int_equal(sqlite3_column_bytes(stmt, 7), events[i].state_len);
        assert_memory_equal(blob, events[i].state, events[i].state_len);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 8), "blob");
    }
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);

    stmt = prepare_raw(db, "SELECT application_name, notification_id FROM tracking");
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "Upstream");
    assert_int_equal(sqlite3_column_int64(stmt, 1), 3);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_reads_a_database_written_by_python(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    char path[512];
    db_path(f, "python.db", path, sizeof path);

    /* What eventsourcing 9.2 leaves behind: its own statements, and a row inserted with
     * (originator_id.hex, originator_version, topic, state bytes). */
    static const char hex_id[] = "0f6f9d6ab5e24c0e8e2d3c1f7b8a9e10";
    static const char topic[] = "eventsourcing_grpc.example:Order.Created";
    static const char state_json[] =
        "{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2024-03-01T12:00:00.123456+00:"
        "00\"},"
        "\"originator_topic\":\"eventsourcing_grpc.example:Order\",\"name\":\"Zo\xc3\xab\"}";
    sqlite3 *db = open_raw(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    exec_raw(db, "PRAGMA journal_mode = WAL");
    exec_raw(db, "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, "
                 "originator_version INTEGER, topic TEXT, state BLOB, PRIMARY KEY "
                 "(originator_id, originator_version))");
    exec_raw(db, "CREATE TABLE IF NOT EXISTS tracking (application_name TEXT, notification_id "
                 "INTEGER, PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID");
    sqlite3_stmt *stmt = prepare_raw(db, "INSERT INTO stored_events VALUES (?,?,?,?)");
    assert_int_equal(sqlite3_bind_text(stmt, 1, hex_id, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_bind_int64(stmt, 2, 1), SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(stmt, 3, topic, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(
        sqlite3_bind_blob(stmt, 4, state_json, (int)(sizeof state_json - 1), SQLITE_STATIC),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    exec_raw(db, "INSERT INTO tracking VALUES ('Upstream', 5)");
    sqlite3_close(db);

    esg_recorder *recorder = open_sqlite_file(path);
    esg_uuid id;
    assert_esg_ok(esg_uuid_parse(hex_id, strlen(hex_id), &id, &err), &err);

    esg_notification_list notifications = {0};
    assert_esg_ok(
        esg_recorder_select_notifications(recorder, 1, 10, 0, NULL, 0, &notifications, &err), &err);
    assert_int_equal(notifications.n_items, 1);
    const esg_notification *got = &notifications.items[0];
    assert_int_equal(got->id, 1);
    assert_true(esg_uuid_equal(&got->event.originator_id, &id));
    assert_int_equal(got->event.originator_version, 1);
    assert_string_equal(got->event.topic, topic);
    assert_int_equal(got->event.state_len, sizeof state_json - 1);
    assert_memory_equal(got->event.state, state_json, sizeof state_json - 1);
    esg_notification_list_clear(&notifications);

    esg_stored_event_list events = {0};
    assert_esg_ok(esg_recorder_select_events(recorder, &id, NULL, &events, &err), &err);
    assert_int_equal(events.n_items, 1);
    assert_int_equal(events.items[0].originator_version, 1);
    esg_stored_event_list_clear(&events);

    int64_t max_id = 0;
    assert_esg_ok(esg_recorder_max_tracking_id(recorder, "Upstream", &max_id, &err), &err);
    assert_int_equal(max_id, 5);

    /* The Python row holds version 1 against this library's writes too, and the sequence goes
     * on from it. */
    esg_stored_event again = {id, 1, (char *)topic, (uint8_t *)"{}", 2};
    assert_int_equal(esg_recorder_insert_events(recorder, &again, 1, NULL, NULL, &err),
                     ESG_ECONFLICT);
    esg_stored_event next = {id, 2, (char *)"eventsourcing_grpc.example:Order.Paid",
                             (uint8_t *)"{}", 2};
    int64_t next_id = 0;
    assert_esg_ok(esg_recorder_insert_events(recorder, &next, 1, NULL, &next_id, &err), &err);
    assert_int_equal(next_id, 2);
    esg_recorder_close(recorder);
}

int main(void)
{
#define CONFIG_TEST(fn) cmocka_unit_test_setup_teardown(fn, testutil_setup, testutil_teardown)
    const struct CMUnitTest tests[] = {
        CONFIG_TEST(test_no_persistence_module_gives_popo),
        CONFIG_TEST(test_sqlite_without_dbname_is_a_config_error),
        CONFIG_TEST(test_prefixed_keys_win_over_plain_ones),
        CONFIG_TEST(test_unknown_module_is_a_config_error),
        CONFIG_TEST(test_sqlite_lock_timeout_setting),
        CONFIG_TEST(test_new_sqlite_files_are_private),
        CONFIG_TEST(test_schema_is_eventsourcing_9_2),
        CONFIG_TEST(test_rows_are_written_as_python_writes_them),
        CONFIG_TEST(test_reads_a_database_written_by_python),
    };
#undef CONFIG_TEST
    return cmocka_run_group_tests_name("recorder configuration", tests, NULL, NULL);
}
