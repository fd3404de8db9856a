/* Tests of the PostgreSQL backend beyond the conformance suite: the tables are eventsourcing 9.2's,
 * rows move both ways between this library and Python's SQL, readers never skip a notification
 * that commits late, the recorder survives the database restarting under load and its
 * connections being killed, and the pool, the lock timeout and the configuration fail as
 * documented. The server is the one the POSTGRES_* variables name; the restart test also needs
 * ESG_POSTGRES_TEST_SERVER and ESG_POSTGRES_TEST_DIR (scripts/postgres-test-server.sh run sets
 * them). Each test has tables of its own, dropped after. */
#include "testutil.h"
#include "pg_testutil.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODULE "eventsourcing.postgres"
#define TOPIC "eventsourcing_grpc.example:Order.Created"

typedef struct fixture {
    esg_env *env;      /* the process environment with PERSISTENCE_MODULE set */
    char app_name[64]; /* names this test's tables: "<app_name>_events" */
    char events[80];   /* the events table, lower case */
    char tracking[80]; /* the tracking table, lower case */
    PGconn *admin;     /* a raw connection for the test's own SQL */
} fixture;

/* ---- Helpers ------------------------------------------------------------- */

/* Runs SQL and fails the test unless it succeeds. */
static void exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        char message[256];
        snprintf(message, sizeof message, "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("'%s' failed: %s", sql, message);
    }
    PQclear(res);
}

/* The first column of the first row of a query, as text (malloc'ed), "" for no row, "NULL". */
static char *query_text(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char message[256];
        snprintf(message, sizeof message, "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("'%s' failed: %s", sql, message);
    }
    char *text = strdup(PQntuples(res) == 0      ? ""
                        : PQgetisnull(res, 0, 0) ? "NULL"
                                                 : PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_non_null(text);
    return text;
}

static long long query_int(PGconn *conn, const char *sql)
{
    char *text = query_text(conn, sql);
    long long value = strtoll(text, NULL, 10);
    free(text);
    return value;
}

static void drop_tables(fixture *f, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s_events, %s_tracking", app, app);
    exec_ok(f->admin, sql);
}

static int setup(void **state)
{
    static unsigned n_fixtures;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->env = esg_env_from_process();
    assert_non_null(f->env);
    testutil_env_set(f->env, "PERSISTENCE_MODULE", MODULE);
    /* Mixed case: Python lowercases the application name for its tables. */
    snprintf(f->app_name, sizeof f->app_name, "PgTest_%ld_%u", (long)getpid(), n_fixtures++);
    snprintf(f->events, sizeof f->events, "pgtest_%ld_%u_events", (long)getpid(), n_fixtures - 1);
    snprintf(f->tracking, sizeof f->tracking, "pgtest_%ld_%u_tracking", (long)getpid(),
             n_fixtures - 1);
    f->admin = testutil_postgres_connect();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char app[64];
    for (size_t i = 0; i <= strlen(f->app_name); i++)
        app[i] = (char)tolower((unsigned char)f->app_name[i]);
    drop_tables(f, app);
    PQfinish(f->admin);
    esg_env_free(f->env);
    free(f);
    return 0;
}

static esg_recorder *open_recorder(fixture *f)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(esg_recorder_open(f->env, f->app_name, &recorder, &err), &err);
    assert_string_equal(esg_recorder_backend(recorder), MODULE);
    return recorder;
}

static esg_stored_event text_event(const esg_uuid *id, int64_t version, const char *state)
{
    return (esg_stored_event){
        .originator_id = *id,
        .originator_version = version,
        .topic = (char *)TOPIC,
        .state = (uint8_t *)state,
        .state_len = strlen(state),
    };
}

static int64_t insert_one(esg_recorder *recorder, const esg_uuid *id, int64_t version)
{
    esg_error err = {0};
    esg_stored_event event = text_event(id, version, "{}");
    int64_t notification_id = 0;
    assert_esg_ok(esg_recorder_insert_events(recorder, &event, 1, NULL, &notification_id, &err),
                  &err);
    return notification_id;
}

static int64_t max_notification_id(esg_recorder *recorder)
{
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_notification_id(recorder, &max_id, &err), &err);
    return max_id;
}

/* Asserts that the notifications from 1 are exactly 1..n. */
static void assert_ids_are_1_to_n(esg_recorder *recorder, int64_t n)
{
    esg_error err = {0};
    esg_notification_list list = {0};
    assert_esg_ok(esg_recorder_select_notifications(recorder, 1, n + 100, 0, NULL, 0, &list, &err),
                  &err);
    assert_int_equal(list.n_items, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(list.items[i].id, i + 1);
    esg_notification_list_clear(&list);
}

/* Waits (up to 10 s) until n sessions wait for a lock on the table, and fails if they do not. */
static void wait_for_lock_waiters(PGconn *admin, const char *table, int n)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_locks WHERE relation = '%s'::regclass AND NOT granted",
             table);
    for (int i = 0; i < 1000; i++) {
        if (query_int(admin, sql) >= n)
            return;
        struct timespec t = {.tv_nsec = 10000000L};
        nanosleep(&t, NULL);
    }
    fail_msg("%d sessions did not come to wait for the lock on %s", n, table);
}

/* ---- The tables are eventsourcing 9.2's ----------------------------------------------- */

/* eventsourcing 9.2's PostgresProcessRecorder creates these (postgres.py, with "{t}" the table). */
#define PY92_EVENTS_SQL                                                                            \
    "CREATE TABLE IF NOT EXISTS %s (originator_id uuid NOT NULL, originator_version bigint NOT "   \
    "NULL, topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, "       \
    "originator_version)) WITH (autovacuum_enabled=false)"
#define PY92_INDEX_SQL                                                                             \
    "CREATE UNIQUE INDEX IF NOT EXISTS %s_notification_id_idx ON %s (notification_id ASC);"
#define PY92_TRACKING_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS %s (application_name text, notification_id bigint, PRIMARY KEY "   \
    "(application_name, notification_id))"

/* A table's layout with its own name replaced by "T": columns (name, type, nullable, default),
 * indexes, constraints and storage options, one per line. */
static char *describe_table(PGconn *conn, const char *schema, const char *table)
{
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(line, E'\\n' ORDER BY line) FROM ("
             " SELECT format('column %%s %%s %%s %%s %%s', lpad(ordinal_position::text, 2, '0'),"
             "   column_name, data_type, is_nullable,"
             "   coalesce(replace(column_default, '%s', 'T'), '-')) AS line"
             " FROM information_schema.columns WHERE table_schema = '%s' AND table_name = '%s'"
             " UNION ALL SELECT 'index ' || replace(replace(indexdef, '%s', 'T'), '%s.', '')"
             " FROM pg_indexes WHERE schemaname = '%s' AND tablename = '%s'"
             " UNION ALL SELECT 'constraint ' || replace(conname, '%s', 'T') || ' ' ||"
             "   pg_get_constraintdef(oid) FROM pg_constraint"
             " WHERE conrelid = '%s.%s'::regclass"
             " UNION ALL SELECT 'options ' || coalesce(array_to_string(reloptions, ','), '-')"
             " FROM pg_class WHERE oid = '%s.%s'::regclass) AS lines",
             table, schema, table, table, schema, schema, table, table, schema, table, schema,
             table);
    return query_text(conn, sql);
}

static void test_tables_are_those_of_eventsourcing_92(void **state)
{
    fixture *f = *state;
    esg_recorder *recorder = open_recorder(f);
    esg_recorder_close(recorder);

    /* The same tables made by Python's own statements, under other names. */
    char py_app[64], py_events[80], py_tracking[80], sql[1024];
    snprintf(py_app, sizeof py_app, "py92_%ld", (long)getpid());
    snprintf(py_events, sizeof py_events, "%s_events", py_app);
    snprintf(py_tracking, sizeof py_tracking, "%s_tracking", py_app);
    drop_tables(f, py_app);
    snprintf(sql, sizeof sql, PY92_EVENTS_SQL, py_events);
    exec_ok(f->admin, sql);
    snprintf(sql, sizeof sql, PY92_INDEX_SQL, py_events, py_events);
    exec_ok(f->admin, sql);
    snprintf(sql, sizeof sql, PY92_TRACKING_SQL, py_tracking);
    exec_ok(f->admin, sql);

    char *ours = describe_table(f->admin, "public", f->events);
    char *python = describe_table(f->admin, "public", py_events);
    print_message("events table:\n%s\n", ours);
    assert_string_equal(ours, python);
    /* And the details spelled out, so that a change on both sides is seen too. */
    assert_non_null(strstr(ours, "column 01 originator_id uuid NO -"));
    assert_non_null(strstr(ours, "column 02 originator_version bigint NO -"));
    assert_non_null(strstr(ours, "column 03 topic text YES -"));
    assert_non_null(strstr(ours, "column 04 state bytea YES -"));
    assert_non_null(
        strstr(ours, "column 05 notification_id bigint NO nextval('T_notification_id_seq'"));
    assert_non_null(strstr(ours, "index CREATE UNIQUE INDEX T_notification_id_idx ON T USING "
                                 "btree (notification_id)"));
    assert_non_null(strstr(ours, "index CREATE UNIQUE INDEX T_pkey ON T USING btree "
                                 "(originator_id, originator_version)"));
    assert_non_null(strstr(ours, "options autovacuum_enabled=false"));
    free(ours);
    free(python);

    ours = describe_table(f->admin, "public", f->tracking);
    python = describe_table(f->admin, "public", py_tracking);
    print_message("tracking table:\n%s\n", ours);
    assert_string_equal(ours, python);
    assert_non_null(strstr(ours, "column 01 application_name text NO -"));
    assert_non_null(strstr(ours, "column 02 notification_id bigint NO -"));
    assert_non_null(strstr(ours, "constraint T_pkey PRIMARY KEY (application_name, "
                                 "notification_id)"));
    free(ours);
    free(python);
    drop_tables(f, py_app);
}

static void test_schema_and_default_names(void **state)
{
    fixture *f = *state;
    char schema[64], sql[256];
    snprintf(schema, sizeof schema, "esg_schema_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    exec_ok(f->admin, sql);

    /* Python strips the schema and PostgreSQL folds it to lower case; no app name gives
     * Python's "stored_events" and "notification_tracking". */
    char upper[80];
    snprintf(upper, sizeof upper, "  ESG_SCHEMA_%ld ", (long)getpid());
    testutil_env_set(f->env, "POSTGRES_SCHEMA", upper);
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(esg_recorder_open(f->env, NULL, &recorder, &err), &err);
    esg_uuid id = testutil_random_uuid();
    assert_int_equal(insert_one(recorder, &id, 1), 1);
    esg_tracking tracking = {.application_name = "Up", .notification_id = 3};
    assert_esg_ok(esg_recorder_insert_events(recorder, NULL, 0, &tracking, NULL, &err), &err);
    esg_recorder_close(recorder);

    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.stored_events", schema);
    assert_int_equal(query_int(f->admin, sql), 1);
    snprintf(sql, sizeof sql, "SELECT max(notification_id) FROM %s.notification_tracking", schema);
    assert_int_equal(query_int(f->admin, sql), 3);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_indexes WHERE schemaname = '%s' AND indexname = "
             "'stored_events_notification_id_idx'",
             schema);
    assert_int_equal(query_int(f->admin, sql), 1);
    /* Nothing landed in public. */
    assert_int_equal(query_int(f->admin, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                         "'public' AND tablename = 'stored_events'"),
                     0);

    /* CREATE_TABLE=no (Python's key) leaves the tables to others: missing ones are an error. */
    testutil_env_set(f->env, "CREATE_TABLE", "no");
    recorder = NULL;
    assert_int_equal(esg_recorder_open(f->env, "NotCreated", &recorder, &err), ESG_EIO);
    assert_null(recorder);
    assert_non_null(strstr(err.message, "notcreated_events"));
    assert_esg_ok(esg_recorder_open(f->env, NULL, &recorder, &err), &err);
    assert_int_equal(max_notification_id(recorder), 1);
    esg_recorder_close(recorder);
    esg_env_unset(f->env, "CREATE_TABLE");

    /* A schema that does not exist is a clear error. */
    testutil_env_set(f->env, "POSTGRES_SCHEMA", "no_such_schema_here");
    recorder = NULL;
    esg_status rc = esg_recorder_open(f->env, f->app_name, &recorder, &err);
    assert_int_equal(rc, ESG_EIO);
    assert_null(recorder);
    assert_non_null(strstr(err.message, "no_such_schema_here"));

    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    exec_ok(f->admin, sql);
}

/* ---- Rows move both ways between this library and Python's SQL ---------------- */

/* What Python 9.2's insert does: take the lock, then insert with the sequence's next id. */
static long long python_insert(PGconn *conn, const char *events, const char *id_text, int version,
                               bool is_committing)
{
    char sql[512];
    exec_ok(conn, "BEGIN");
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN EXCLUSIVE MODE", events);
    exec_ok(conn, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO %s VALUES ('%s', %d, '%s', '\\x7b7d'::bytea) RETURNING notification_id",
             events, id_text, version, TOPIC);
    long long id = query_int(conn, sql);
    exec_ok(conn, is_committing ? "COMMIT" : "ROLLBACK");
    return id;
}

static void test_rows_move_both_ways_with_python(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_recorder *recorder = open_recorder(f);
    const char *python_id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

    assert_int_equal(python_insert(f->admin, f->events, python_id, 1, true), 1);
    assert_int_equal(python_insert(f->admin, f->events, python_id, 2, true), 2);
    /* We read Python's rows... */
    esg_uuid id;
    assert_esg_ok(esg_uuid_parse(python_id, strlen(python_id), &id, &err), &err);
    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(recorder, &id, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 2);
    assert_string_equal(list.items[1].topic, TOPIC);
    assert_int_equal(list.items[1].state_len, 2);
    assert_memory_equal(list.items[1].state, "{}", 2);
    esg_stored_event_list_clear(&list);

    /* ...continue the sequence after them, and Python continues after ours. */
    assert_int_equal(insert_one(recorder, &id, 3), 3);
    assert_int_equal(python_insert(f->admin, f->events, python_id, 4, true), 4);
    /* A Python transaction that rolls back uses up a sequence value: we give it again. */
    assert_int_equal(python_insert(f->admin, f->events, python_id, 5, false), 5);
    assert_int_equal(insert_one(recorder, &id, 5), 5);
    assert_int_equal(python_insert(f->admin, f->events, python_id, 6, true), 6);
    assert_ids_are_1_to_n(recorder, 6);

    /* Python reads ours: the uuid and the state bytes as they were written. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT originator_id::text || ' ' || encode(state, 'escape') FROM %s WHERE "
             "notification_id = 5",
             f->events);
    char *row = query_text(f->admin, sql);
    assert_string_equal(row, "6ba7b810-9dad-11d1-80b4-00c04fd430c8 {}");
    free(row);
    esg_recorder_close(recorder);
}

/* ---- Readers never skip ---------------------------------------------------------- */

typedef struct blocked_insert {
    esg_recorder *recorder;
    esg_uuid id;
    int64_t version;
    esg_status status;
    int64_t notification_id;
    atomic_bool is_done;
} blocked_insert;

static void *run_blocked_insert(void *arg)
{
    blocked_insert *b = arg;
    esg_stored_event event = text_event(&b->id, b->version, "{\"late\":false}");
    b->status = esg_recorder_insert_events(b->recorder, &event, 1, NULL, &b->notification_id, NULL);
    atomic_store(&b->is_done, true);
    return NULL;
}

static void test_a_late_commit_is_never_skipped(void **state)
{
    fixture *f = *state;
    esg_recorder *recorder = open_recorder(f);
    esg_uuid id = testutil_random_uuid();
    assert_int_equal(insert_one(recorder, &id, 1), 1);

    /* Another writer (Python's SQL on a raw connection) takes the lock and draws id 2, and holds
     * its transaction open. */
    PGconn *slow = testutil_postgres_connect();
    char sql[512];
    exec_ok(slow, "BEGIN");
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN EXCLUSIVE MODE", f->events);
    exec_ok(slow, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO %s VALUES (gen_random_uuid(), 1, '%s', '\\x7b7d'::bytea) RETURNING "
             "notification_id",
             f->events, TOPIC);
    assert_int_equal(query_int(slow, sql), 2);

    /* Our writer must wait for it rather than commit id 3 first. */
    blocked_insert b = {.recorder = recorder, .id = id, .version = 2};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_blocked_insert, &b), 0);
    wait_for_lock_waiters(f->admin, f->events, 1);
    assert_false(atomic_load(&b.is_done));
    /* A reader sees 1 and nothing after it: not 3 without 2. */
    assert_int_equal(max_notification_id(recorder), 1);
    assert_ids_are_1_to_n(recorder, 1);

    exec_ok(slow, "COMMIT");
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(b.status, ESG_OK);
    assert_int_equal(b.notification_id, 3);
    assert_ids_are_1_to_n(recorder, 3);
    PQfinish(slow);
    esg_recorder_close(recorder);
}

#define N_TAIL_WRITERS 4
#define N_TAIL_INSERTS 150

typedef struct tail_writer {
    pthread_t thread;
    esg_recorder *recorder;
    esg_uuid id;
    int n_failed;
} tail_writer;

static void *run_tail_writer(void *arg)
{
    tail_writer *w = arg;
    for (int64_t v = 1; v <= N_TAIL_INSERTS; v++) {
        /* One, two or three events per transaction. */
        esg_stored_event events[3];
        int n = (int)(v % 3) + 1;
        for (int i = 0; i < n; i++)
            events[i] = text_event(&w->id, (v - 1) * 3 + i + 1, "{\"tail\":1}");
        if (esg_recorder_insert_events(w->recorder, events, (size_t)n, NULL, NULL, NULL) != ESG_OK)
            w->n_failed++;
    }
    return NULL;
}

typedef struct follower {
    esg_recorder *recorder;
    atomic_bool is_stopping;
    int64_t last_seen; /* the highest id read so far, all below it read too */
    int64_t n_gaps;    /* pages that did not start at last_seen + 1 or had a hole */
    int64_t n_reads;
    esg_status failure; /* the first failed read, ESG_OK if none */
} follower;

/* Follows the log as a downstream application does: from the last id read + 1, in pages. */
static void *run_follower(void *arg)
{
    follower *r = arg;
    bool is_last_round = false;
    while (!is_last_round) {
        is_last_round = atomic_load(&r->is_stopping);
        for (;;) {
            esg_notification_list page = {0};
            esg_status rc = esg_recorder_select_notifications(r->recorder, r->last_seen + 1, 50, 0,
                                                              NULL, 0, &page, NULL);
            r->n_reads++;
            if (rc != ESG_OK) {
                if (r->failure == ESG_OK)
                    r->failure = rc;
                esg_notification_list_clear(&page);
                break;
            }
            for (size_t i = 0; i < page.n_items; i++) {
                if (page.items[i].id != r->last_seen + 1)
                    r->n_gaps++;
                r->last_seen = page.items[i].id;
            }
            size_t n = page.n_items;
            esg_notification_list_clear(&page);
            if (n < 50)
                break;
        }
    }
    return NULL;
}

static void test_a_follower_never_skips_under_load(void **state)
{
    fixture *f = *state;
    esg_recorder *recorder = open_recorder(f);
    tail_writer writers[N_TAIL_WRITERS] = {0};
    follower r = {.recorder = recorder};
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, run_follower, &r), 0);
    for (int i = 0; i < N_TAIL_WRITERS; i++) {
        writers[i].recorder = recorder;
        esg_uuid4(&writers[i].id);
        assert_int_equal(pthread_create(&writers[i].thread, NULL, run_tail_writer, &writers[i]), 0);
    }
    for (int i = 0; i < N_TAIL_WRITERS; i++) {
        assert_int_equal(pthread_join(writers[i].thread, NULL), 0);
        assert_int_equal(writers[i].n_failed, 0);
    }
    atomic_store(&r.is_stopping, true);
    assert_int_equal(pthread_join(reader, NULL), 0);

    int64_t total = 0;
    for (int64_t v = 1; v <= N_TAIL_INSERTS; v++)
        total += (v % 3) + 1;
    total *= N_TAIL_WRITERS;
    print_message("follower: %lld reads while %lld events were written\n", (long long)r.n_reads,
                  (long long)total);
    assert_int_equal(r.failure, ESG_OK);
    assert_int_equal(r.n_gaps, 0);
    assert_int_equal(r.last_seen, total);
    assert_ids_are_1_to_n(recorder, total);
    esg_recorder_close(recorder);
}

/* ---- The database restarts under load -------------------------------------------- */

#define N_RESTART_WRITERS 4
#define MAX_RESTART_EVENTS 20000 /* per writer, far more than the test needs */
#define N_AFTER_RESTART 50       /* acknowledged per writer after the restart, to stop */

typedef struct restart_writer {
    pthread_t thread;
    esg_recorder *recorder;
    atomic_bool *is_stopping;
    esg_uuid id;
    atomic_int n_done;                              /* versions acknowledged so far */
    int n_unavailable;                              /* calls that failed, to be retried */
    int n_conflicts_after_unavailable;              /* retries that found the commit had landed */
    char first_unavailable[ESG_ERROR_MESSAGE_SIZE]; /* what the first such call said */
    esg_status unexpected;                          /* any other failure */
    char unexpected_message[ESG_ERROR_MESSAGE_SIZE];
    int64_t notification_ids[MAX_RESTART_EVENTS]; /* of each acknowledged version, 0: unknown */
} restart_writer;

/* Writes versions 1, 2, ... of its aggregate one call each until told to stop, retrying a call
 * that failed with ESG_EUNAVAILABLE; a retry that conflicts means the failed call's commit did
 * land. */
static void *run_restart_writer(void *arg)
{
    restart_writer *w = arg;
    int64_t deadline = esg_clock_now_ms() + 30000;
    for (int64_t v = 1;
         v <= MAX_RESTART_EVENTS && !atomic_load(w->is_stopping) && esg_clock_now_ms() < deadline;
         v++) {
        char state[48];
        snprintf(state, sizeof state, "{\"v\":%lld}", (long long)v);
        esg_stored_event event = text_event(&w->id, v, state);
        bool was_unavailable = false;
        for (;;) {
            esg_error err = {0};
            int64_t id = 0;
            esg_status rc = esg_recorder_insert_events(w->recorder, &event, 1, NULL, &id, &err);
            if (rc == ESG_OK) {
                w->notification_ids[v - 1] = id;
                break;
            }
            if (rc == ESG_EUNAVAILABLE && esg_clock_now_ms() < deadline) {
                if (w->n_unavailable++ == 0)
                    snprintf(w->first_unavailable, sizeof w->first_unavailable, "%s", err.message);
                was_unavailable = true;
                esg_clock_sleep_ms(20);
                continue;
            }
            if (rc == ESG_ECONFLICT && was_unavailable) {
                w->n_conflicts_after_unavailable++;
                break;
            }
            w->unexpected = rc;
            snprintf(w->unexpected_message, sizeof w->unexpected_message, "%s", err.message);
            return NULL;
        }
        atomic_store(&w->n_done, (int)v);
    }
    return NULL;
}

static void run_test_server(const char *command)
{
    const char *script = getenv("ESG_POSTGRES_TEST_SERVER");
    const char *dir = getenv("ESG_POSTGRES_TEST_DIR");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(script, script, command, dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s %s %s failed", script, command, dir);
}

static void test_database_restart_under_load(void **state)
{
    fixture *f = *state;
    if (getenv("ESG_POSTGRES_TEST_SERVER") == NULL || getenv("ESG_POSTGRES_TEST_DIR") == NULL) {
        print_message("skipped: ESG_POSTGRES_TEST_SERVER and ESG_POSTGRES_TEST_DIR are unset\n");
        skip();
    }
    esg_recorder *recorder = open_recorder(f);
    restart_writer *writers = calloc(N_RESTART_WRITERS, sizeof *writers);
    assert_non_null(writers);
    atomic_bool is_stopping = false;
    for (int i = 0; i < N_RESTART_WRITERS; i++) {
        writers[i].recorder = recorder;
        writers[i].is_stopping = &is_stopping;
        esg_uuid4(&writers[i].id);
        assert_int_equal(pthread_create(&writers[i].thread, NULL, run_restart_writer, &writers[i]),
                         0);
    }
    /* Restart once the writers are under way, and stop them once each has written more after
     * the restart through the same recorder. */
    for (int64_t deadline = esg_clock_now_ms() + 10000; esg_clock_now_ms() < deadline;) {
        if (atomic_load(&writers[N_RESTART_WRITERS - 1].n_done) >= 20)
            break;
        esg_clock_sleep_ms(5);
    }
    run_test_server("restart");
    int n_before[N_RESTART_WRITERS];
    for (int i = 0; i < N_RESTART_WRITERS; i++)
        n_before[i] = atomic_load(&writers[i].n_done);
    for (int64_t deadline = esg_clock_now_ms() + 20000; esg_clock_now_ms() < deadline;) {
        int n_ready = 0;
        for (int i = 0; i < N_RESTART_WRITERS; i++)
            n_ready += atomic_load(&writers[i].n_done) >= n_before[i] + N_AFTER_RESTART;
        if (n_ready == N_RESTART_WRITERS)
            break;
        esg_clock_sleep_ms(10);
    }
    atomic_store(&is_stopping, true);
    for (int i = 0; i < N_RESTART_WRITERS; i++)
        assert_int_equal(pthread_join(writers[i].thread, NULL), 0);
    /* The fixture's own connection did not survive the restart either. */
    PQfinish(f->admin);
    f->admin = testutil_postgres_connect();

    int n_unavailable = 0, n_landed = 0;
    int64_t total = 0;
    for (int i = 0; i < N_RESTART_WRITERS; i++) {
        if (writers[i].unexpected != ESG_OK)
            fail_msg("writer %d failed with %s: %s", i, esg_status_name(writers[i].unexpected),
                     writers[i].unexpected_message);
        if (atomic_load(&writers[i].n_done) < n_before[i] + N_AFTER_RESTART)
            fail_msg("writer %d wrote %d events after the restart, expected %d", i,
                     atomic_load(&writers[i].n_done) - n_before[i], N_AFTER_RESTART);
        if (writers[i].n_unavailable > 0)
            print_message("writer %d: %d calls failed, the first with: %s\n", i,
                          writers[i].n_unavailable, writers[i].first_unavailable);
        n_unavailable += writers[i].n_unavailable;
        n_landed += writers[i].n_conflicts_after_unavailable;
        total += atomic_load(&writers[i].n_done);
    }
    print_message("restart: %lld events; %d calls failed with ESG_EUNAVAILABLE, %d of those had "
                  "committed\n",
                  (long long)total, n_unavailable, n_landed);
    /* The calls in flight failed, so the test did test something. */
    assert_true(n_unavailable > 0);

    /* Nothing acknowledged is lost, nothing is there twice, and there are no gaps, all through the
     * same recorder, never reopened. */
    assert_int_equal(max_notification_id(recorder), total);
    esg_notification_list list = {0};
    esg_error err = {0};
    assert_esg_ok(
        esg_recorder_select_notifications(recorder, 1, total + 10, 0, NULL, 0, &list, &err), &err);
    assert_int_equal(list.n_items, (size_t)total);
    for (int64_t n = 0; n < total; n++)
        assert_int_equal(list.items[n].id, n + 1);
    for (int i = 0; i < N_RESTART_WRITERS; i++) {
        esg_stored_event_list events = {0};
        assert_esg_ok(esg_recorder_select_events(recorder, &writers[i].id, NULL, &events, &err),
                      &err);
        int n_done = atomic_load(&writers[i].n_done);
        assert_int_equal(events.n_items, (size_t)n_done);
        for (int64_t v = 1; v <= n_done; v++) {
            char expected[48];
            snprintf(expected, sizeof expected, "{\"v\":%lld}", (long long)v);
            assert_int_equal(events.items[v - 1].originator_version, v);
            assert_string_equal((const char *)events.items[v - 1].state, expected);
            int64_t acknowledged = writers[i].notification_ids[v - 1];
            if (acknowledged != 0) {
                const esg_notification *at = &list.items[acknowledged - 1];
                assert_true(esg_uuid_equal(&at->event.originator_id, &writers[i].id));
                assert_int_equal(at->event.originator_version, v);
            }
        }
        esg_stored_event_list_clear(&events);
    }
    esg_notification_list_clear(&list);
    free(writers);
    esg_recorder_close(recorder);
}

/* Connections the server ends (an administrator, a failover) are replaced before use. */
static void test_killed_connections_are_replaced(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "POSTGRES_POOL_SIZE", "3");
    esg_recorder *recorder = open_recorder(f);
    esg_uuid id = testutil_random_uuid();
    assert_int_equal(insert_one(recorder, &id, 1), 1);
    /* The recorder's connections say whose they are; wait (up to 5 s) for each to be gone. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM "
             "pg_stat_activity WHERE application_name = 'eventsourcing-grpc/%s'",
             f->app_name);
    assert_true(query_int(f->admin, sql) >= 1);
    /* The idle connections are seen dead and opened again: no call fails. */
    assert_int_equal(insert_one(recorder, &id, 2), 2);
    assert_int_equal(max_notification_id(recorder), 2);
    esg_recorder_close(recorder);
}

/* ---- Pool, lock timeout and configuration ---------------------------------------- */

/* A call made on a thread of its own while the test holds a lock: an insert, or (is_read) a
 * read of the highest notification id. */
typedef struct held_insert {
    pthread_t thread;
    esg_recorder *recorder;
    bool is_read;
    esg_uuid id;
    esg_status status;
} held_insert;

static void *run_held_insert(void *arg)
{
    held_insert *h = arg;
    esg_stored_event event = text_event(&h->id, 1, "{}");
    int64_t max_id = 0;
    h->status = h->is_read ? esg_recorder_max_notification_id(h->recorder, &max_id, NULL)
                           : esg_recorder_insert_events(h->recorder, &event, 1, NULL, NULL, NULL);
    return NULL;
}

/* Holds the events table's lock in mode ("EXCLUSIVE", as writers take it: reads go on; "ACCESS
 * EXCLUSIVE": reads wait too) until the test commits. */
static PGconn *hold_lock(fixture *f, const char *mode)
{
    PGconn *holder = testutil_postgres_connect();
    char sql[256];
    exec_ok(holder, "BEGIN");
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN %s MODE", f->events, mode);
    exec_ok(holder, sql);
    return holder;
}

static void test_pool_exhaustion_is_unavailable_within_the_timeout(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "POSTGRES_POOL_SIZE", "1");
    testutil_env_set(f->env, "POSTGRES_POOL_MAX_OVERFLOW", "1");
    testutil_env_set(f->env, "POSTGRES_POOL_TIMEOUT", "1");
    esg_recorder *recorder = open_recorder(f);
    PGconn *holder = hold_lock(f, "ACCESS EXCLUSIVE");

    /* A writer and a reader wait for the lock, one on the pool's connection and one on the
     * overflow's (a second writer would queue behind the first for its commit instead)... */
    held_insert held[2] = {{.is_read = false}, {.is_read = true}};
    for (int i = 0; i < 2; i++) {
        held[i].recorder = recorder;
        esg_uuid4(&held[i].id);
        assert_int_equal(pthread_create(&held[i].thread, NULL, run_held_insert, &held[i]), 0);
    }
    wait_for_lock_waiters(f->admin, f->events, 2);
    /* ...so a third call waits for a connection, and gives up after POSTGRES_POOL_TIMEOUT. */
    esg_error err = {0};
    int64_t max_id = 0;
    int64_t started = esg_clock_now_ms();
    assert_int_equal(esg_recorder_max_notification_id(recorder, &max_id, &err), ESG_EUNAVAILABLE);
    int64_t elapsed = esg_clock_now_ms() - started;
    print_message("pool exhausted: %s (after %lld ms)\n", err.message, (long long)elapsed);
    assert_non_null(strstr(err.message, "no database connection free within 1 s"));
    assert_true(elapsed >= 900 && elapsed < 3000);

    exec_ok(holder, "COMMIT");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(held[i].thread, NULL), 0);
        assert_int_equal(held[i].status, ESG_OK);
    }
    assert_int_equal(max_notification_id(recorder), 1);
    /* The overflow's connection was closed when it came back: the pool keeps POSTGRES_POOL_SIZE. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
             "'eventsourcing-grpc/%s'",
             f->app_name);
    /* A closed connection's backend leaves pg_stat_activity a moment later: wait for it. */
    long long n_connections = query_int(f->admin, sql);
    for (int i = 0; i < 100 && n_connections > 1; i++) {
        usleep(20 * 1000);
        n_connections = query_int(f->admin, sql);
    }
    assert_int_equal(n_connections, 1);
    PQfinish(holder);
    esg_recorder_close(recorder);
}

#define N_GROUP_WRITERS 8

/* Starts N_GROUP_WRITERS inserts while the test holds the writers' lock, lets them queue, and
 * lets them go: they must return after the commit that holds their rows. */
static void write_while_locked(fixture *f, esg_recorder *recorder, held_insert *held)
{
    PGconn *holder = hold_lock(f, "EXCLUSIVE");
    for (int i = 0; i < N_GROUP_WRITERS; i++) {
        held[i].recorder = recorder;
        assert_int_equal(pthread_create(&held[i].thread, NULL, run_held_insert, &held[i]), 0);
    }
    wait_for_lock_waiters(f->admin, f->events, 1); /* the first, on the lock */
    esg_clock_sleep_ms(300);                       /* the others, queued behind it */
    exec_ok(holder, "COMMIT");
    for (int i = 0; i < N_GROUP_WRITERS; i++)
        assert_int_equal(pthread_join(held[i].thread, NULL), 0);
    PQfinish(holder);
}

/* Group commit: writers that queue while a commit is in flight are written in one transaction
 * (one xmin for their rows), ids gapless; a conflict among them fails only its own writer (the
 * group is then written one by one). */
static void test_concurrent_writers_commit_together(void **state)
{
    fixture *f = *state;
    esg_recorder *recorder = open_recorder(f);
    held_insert held[N_GROUP_WRITERS] = {0};
    for (int i = 0; i < N_GROUP_WRITERS; i++)
        esg_uuid4(&held[i].id);
    write_while_locked(f, recorder, held);
    for (int i = 0; i < N_GROUP_WRITERS; i++)
        assert_int_equal(held[i].status, ESG_OK);
    assert_ids_are_1_to_n(recorder, N_GROUP_WRITERS);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT xmin::text) FROM %s", f->events);
    long long n_transactions = query_int(f->admin, sql);
    print_message("%d writers committed in %lld transactions\n", N_GROUP_WRITERS, n_transactions);
    assert_true(n_transactions <= 2); /* the first alone, then the others together */

    /* Two of the next writers record the same version of one aggregate. */
    memset(held, 0, sizeof held);
    for (int i = 0; i < N_GROUP_WRITERS; i++)
        esg_uuid4(&held[i].id);
    held[5].id = held[4].id;
    write_while_locked(f, recorder, held);
    int n_ok = 0, n_conflicts = 0;
    for (int i = 0; i < N_GROUP_WRITERS; i++) {
        n_ok += held[i].status == ESG_OK;
        n_conflicts += held[i].status == ESG_ECONFLICT;
    }
    assert_int_equal(n_ok, N_GROUP_WRITERS - 1);
    assert_int_equal(n_conflicts, 1);
    assert_ids_are_1_to_n(recorder, 2 * N_GROUP_WRITERS - 1);
    esg_recorder_close(recorder);
}

/* POSTGRES_CONN_MAX_AGE: a connection older than that is closed instead of lent again, and
 * POSTGRES_PRE_PING checks an idle one with a round trip before it is lent. */
static void test_old_connections_are_replaced_and_idle_ones_pinged(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "POSTGRES_POOL_SIZE", "1");
    testutil_env_set(f->env, "POSTGRES_CONN_MAX_AGE", "0.3");
    testutil_env_set(f->env, "POSTGRES_PRE_PING", "y");
    esg_recorder *recorder = open_recorder(f);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_stat_activity WHERE application_name = 'eventsourcing-grpc/%s'",
             f->app_name);
    esg_uuid id = testutil_random_uuid();
    assert_int_equal(insert_one(recorder, &id, 1), 1);
    long long first_pid = query_int(f->admin, sql);
    assert_int_equal(insert_one(recorder, &id, 2), 2);
    assert_int_equal(query_int(f->admin, sql), first_pid); /* young: lent again */
    usleep(400 * 1000);
    assert_int_equal(insert_one(recorder, &id, 3), 3);
    /* The old backend may take a moment to leave pg_stat_activity: look for the new one. */
    char newer[320];
    snprintf(newer, sizeof newer,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name "
             "= 'eventsourcing-grpc/%s' AND pid <> %lld",
             f->app_name, (long long)first_pid);
    assert_int_equal(query_int(f->admin, newer), 1);
    esg_recorder_close(recorder);
}

static void test_lock_timeout_is_unavailable_and_writes_nothing(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "POSTGRES_LOCK_TIMEOUT", "1");
    esg_recorder *recorder = open_recorder(f);
    esg_uuid id = testutil_random_uuid();
    assert_int_equal(insert_one(recorder, &id, 1), 1);
    PGconn *holder = hold_lock(f, "EXCLUSIVE");

    esg_error err = {0};
    esg_stored_event event = text_event(&id, 2, "{}");
    esg_tracking tracking = {.application_name = "Up", .notification_id = 1};
    int64_t started = esg_clock_now_ms();
    assert_int_equal(esg_recorder_insert_events(recorder, &event, 1, &tracking, NULL, &err),
                     ESG_EUNAVAILABLE);
    int64_t elapsed = esg_clock_now_ms() - started;
    print_message("lock timeout: %s (after %lld ms)\n", err.message, (long long)elapsed);
    assert_non_null(strstr(err.message, "database is locked"));
    assert_true(elapsed >= 900 && elapsed < 3000);
    exec_ok(holder, "COMMIT");
    PQfinish(holder);

    /* Nothing of the call was written, and its id is given to the next call. */
    bool found = true;
    assert_esg_ok(esg_recorder_has_tracking_id(recorder, "Up", 1, &found, &err), &err);
    assert_false(found);
    assert_int_equal(insert_one(recorder, &id, 2), 2);
    assert_ids_are_1_to_n(recorder, 2);
    esg_recorder_close(recorder);
}

/* Opens from f->env and asserts ESG_ECONFIG with a message containing each of the fragments. */
/* POSTGRES_HOST with several servers (libpq's multi-host form): the first that answers as
 * POSTGRES_TARGET_SESSION_ATTRS asks is used; here a port where nothing listens comes first,
 * then the tests' server. Asking for a standby of a primary is unavailable, saying why. */
static void test_several_hosts(void **state)
{
    fixture *f = *state;
    const char *port = getenv("POSTGRES_PORT"), *host = getenv("POSTGRES_HOST");
    char hosts[256], ports[64];
    snprintf(hosts, sizeof hosts, "%s,%s", host, host);
    snprintf(ports, sizeof ports, "1,%s", port);
    testutil_env_set(f->env, "POSTGRES_HOST", hosts);
    testutil_env_set(f->env, "POSTGRES_PORT", ports);
    esg_recorder *recorder = open_recorder(f);
    esg_uuid id = testutil_random_uuid();
    esg_stored_event event = text_event(&id, 1, "{}");
    esg_error err = {0};
    assert_esg_ok(esg_recorder_insert_events(recorder, &event, 1, NULL, NULL, &err), &err);
    esg_recorder_close(recorder);

    /* One port for both hosts is the other form libpq takes. */
    testutil_env_set(f->env, "POSTGRES_PORT", port);
    esg_recorder_close(open_recorder(f));

    testutil_env_set(f->env, "POSTGRES_TARGET_SESSION_ATTRS", "standby");
    recorder = NULL;
    assert_int_equal(esg_recorder_open(f->env, f->app_name, &recorder, &err), ESG_EUNAVAILABLE);
    assert_null(recorder);
    assert_non_null(strstr(err.message, "standby"));
    esg_env_unset(f->env, "POSTGRES_TARGET_SESSION_ATTRS");
    testutil_env_set(f->env, "POSTGRES_HOST", host);
}

static bool refresh(esg_recorder_lease *lease, esg_status expected)
{
    bool is_held = false;
    esg_error err = {0};
    esg_status rc = esg_recorder_lease_refresh(lease, &is_held, &err);
    if (rc != expected)
        fail_msg("refresh: %s (%s), expected %s", esg_status_name(rc), err.message,
                 esg_status_name(expected));
    return is_held;
}

/* Refreshes lease until it is held (or not, as wanted) or 5 s have passed: a lock given up is
 * free once the server has ended its session, a moment after the client closed it. Failures on
 * the way may only be ESG_EUNAVAILABLE. */
static bool refresh_until(esg_recorder_lease *lease, bool want_held)
{
    bool is_held = !want_held;
    for (int waited_ms = 0; is_held != want_held && waited_ms < 5000; waited_ms += 20) {
        esg_error err = {0};
        esg_status rc = esg_recorder_lease_refresh(lease, &is_held, &err);
        if (rc != ESG_OK && rc != ESG_EUNAVAILABLE)
            fail_msg("refresh: %s (%s)", esg_status_name(rc), err.message);
        if (is_held != want_held)
            usleep(20 * 1000);
    }
    return is_held;
}

/* Leases (replicas of a follower): one holder of a name at a time, across recorders (as across
 * processes); another name is another lease; giving it up, or its session ending (an
 * administrator's kill, a lost connection), lets the next refresh of another take it. */
static void test_leases(void **state)
{
    fixture *f = *state;
    esg_recorder *one = open_recorder(f), *two = open_recorder(f);
    esg_recorder_lease *a = NULL, *b = NULL, *other = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_recorder_lease_new(one, "Reservations", &a, &err), &err);
    assert_esg_ok(esg_recorder_lease_new(two, "Reservations", &b, &err), &err);
    assert_esg_ok(esg_recorder_lease_new(two, "Payments", &other, &err), &err);
    assert_true(esg_recorder_lease_is_shared(a));
    assert_true(refresh(a, ESG_OK));
    assert_true(refresh(a, ESG_OK)); /* checked, still held */
    assert_false(refresh(b, ESG_OK));
    assert_true(refresh(other, ESG_OK));

    esg_recorder_lease_free(a); /* given up: b takes it once the server ended a's session */
    assert_true(refresh_until(b, true));
    assert_esg_ok(esg_recorder_lease_new(one, "Reservations", &a, &err), &err);
    assert_false(refresh(a, ESG_OK));

    /* b's session is ended by the server: b finds out at a refresh (unavailable, not held), and
     * a takes the lease. */
    PGresult *res = PQexec(f->admin, "SELECT pg_terminate_backend(pid) FROM pg_locks "
                                     "WHERE locktype = 'advisory' AND granted AND pid IN "
                                     "(SELECT pid FROM pg_stat_activity WHERE application_name "
                                     "LIKE 'eventsourcing-grpc/PgTest%')");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 2); /* b's, and other's */
    PQclear(res);
    assert_false(refresh_until(b, false));
    assert_true(refresh_until(a, true));
    assert_false(refresh(b, ESG_OK)); /* a new session, and a has it */

    esg_recorder_lease_free(a);
    esg_recorder_lease_free(b);
    esg_recorder_lease_free(other);
    esg_recorder_close(one);
    esg_recorder_close(two);
}

/* A standby's nudge reaches the holder at its next refresh, once; nudging is the standby's,
 * from a connection of its recorder's pool. */
static void test_lease_nudges(void **state)
{
    fixture *f = *state;
    esg_recorder *one = open_recorder(f), *two = open_recorder(f);
    esg_recorder_lease *holder = NULL, *standby = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_recorder_lease_new(one, "Reservations", &holder, &err), &err);
    assert_esg_ok(esg_recorder_lease_new(two, "Reservations", &standby, &err), &err);
    assert_true(refresh(holder, ESG_OK));
    assert_false(refresh(standby, ESG_OK));
    assert_false(esg_recorder_lease_take_nudge(holder));

    assert_esg_ok(esg_recorder_lease_nudge(standby, &err), &err);
    bool is_nudged = false;
    for (int waited_ms = 0; !is_nudged && waited_ms < 5000; waited_ms += 20) {
        assert_true(refresh(holder, ESG_OK));
        is_nudged = esg_recorder_lease_take_nudge(holder);
        if (!is_nudged)
            usleep(20 * 1000);
    }
    assert_true(is_nudged);
    assert_true(refresh(holder, ESG_OK));
    assert_false(esg_recorder_lease_take_nudge(holder)); /* taken once */

    esg_recorder_lease_free(holder);
    esg_recorder_lease_free(standby);
    esg_recorder_close(one);
    esg_recorder_close(two);
}

/* Waits on watch until it hears news or timeout_ms have passed in waits of 100 ms. */
static bool hears_news(esg_recorder_watch *watch, int timeout_ms)
{
    for (int waited_ms = 0; waited_ms < timeout_ms; waited_ms += 100) {
        bool has_news = false;
        esg_error err = {0};
        assert_esg_ok(esg_recorder_watch_wait(watch, 100, &has_news, &err), &err);
        if (has_news)
            return true;
    }
    return false;
}

/* A watch hears of writes by other recorders of the same table (as replicas in other processes)
 * and not of its own recorder's, nor of another table's; an interrupt ends a wait at once; a
 * lost session is unavailable, and the next wait connects again and reports news (writes may
 * have been missed). */
static void test_watches_hear_other_writers(void **state)
{
    fixture *f = *state;
    esg_recorder *mine = open_recorder(f), *replica = open_recorder(f);
    esg_recorder_watch *watch = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_recorder_watch_new(mine, &watch, &err), &err);
    assert_non_null(watch);
    bool has_news = false;
    assert_esg_ok(esg_recorder_watch_wait(watch, 0, &has_news, &err), &err);
    assert_true(has_news); /* connected: anything before was not heard */
    assert_false(hears_news(watch, 300));

    esg_uuid id = testutil_random_uuid();
    esg_stored_event event = text_event(&id, 1, "{}");
    assert_esg_ok(esg_recorder_insert_events(replica, &event, 1, NULL, NULL, &err), &err);
    assert_true(hears_news(watch, 5000));
    assert_false(hears_news(watch, 300)); /* one write, heard once */

    event.originator_version = 2;
    assert_esg_ok(esg_recorder_insert_events(mine, &event, 1, NULL, NULL, &err), &err);
    assert_false(hears_news(watch, 500)); /* its own recorder's */

    /* Another application's table is another channel. */
    char other_name[80], other_tables[80];
    snprintf(other_name, sizeof other_name, "%sOther", f->app_name);
    esg_recorder *other = NULL;
    assert_esg_ok(esg_recorder_open(f->env, other_name, &other, &err), &err);
    assert_esg_ok(esg_recorder_insert_events(other, &event, 1, NULL, NULL, &err), &err);
    assert_false(hears_news(watch, 500));
    esg_recorder_close(other);
    for (size_t i = 0; i <= strlen(other_name); i++) /* (Python's table names: lower case) */
        other_tables[i] = (char)tolower((unsigned char)other_name[i]);
    drop_tables(f, other_tables);

    int64_t started = esg_clock_now_ms();
    esg_recorder_watch_interrupt(watch);
    assert_esg_ok(esg_recorder_watch_wait(watch, 5000, &has_news, &err), &err);
    assert_false(has_news);
    assert_true(esg_clock_now_ms() - started < 1000);

    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
             "'LISTEN esg_events_%%' AND application_name = 'eventsourcing-grpc/%s'",
             f->app_name);
    PGresult *res = PQexec(f->admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    esg_status rc = ESG_OK;
    for (int waited_ms = 0; rc == ESG_OK && waited_ms < 5000; waited_ms += 100)
        rc = esg_recorder_watch_wait(watch, 100, &has_news, &err);
    assert_int_equal(rc, ESG_EUNAVAILABLE);
    assert_non_null(strstr(err.message, "lost the session"));
    assert_true(hears_news(watch, 5000)); /* connected again */
    event.originator_version = 3;
    assert_esg_ok(esg_recorder_insert_events(replica, &event, 1, NULL, NULL, &err), &err);
    assert_true(hears_news(watch, 5000));

    esg_recorder_watch_free(watch);
    esg_recorder_close(mine);
    esg_recorder_close(replica);
}

static void assert_config_error(fixture *f, const char *app_name, const char *fragment,
                                const char *another)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    esg_status rc = esg_recorder_open(f->env, app_name, &recorder, &err);
    if (rc != ESG_ECONFIG)
        fail_msg("expected ESG_ECONFIG (%s), got %s: %s", fragment, esg_status_name(rc),
                 err.message);
    assert_null(recorder);
    if (strstr(err.message, fragment) == NULL ||
        (another != NULL && strstr(err.message, another) == NULL))
        fail_msg("message '%s' lacks '%s'", err.message, fragment);
}

static void test_bad_configuration(void **state)
{
    fixture *f = *state;
    static const char *const keys[] = {"POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER",
                                       "POSTGRES_PASSWORD"};
    /* Each required key missing in turn, named with the prefixed key tried first. */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *saved = esg_env_get(f->env, keys[i]);
        char *copy = saved != NULL ? strdup(saved) : NULL;
        esg_env_unset(f->env, keys[i]);
        char both[96];
        snprintf(both, sizeof both, "ORDERS_%s, %s", keys[i], keys[i]);
        assert_config_error(f, "Orders", both, "not found");
        if (copy != NULL)
            testutil_env_set(f->env, keys[i], copy);
        free(copy);
    }

    const struct {
        const char *key, *value, *fragment;
    } invalid[] = {
        {"POSTGRES_PORT", "abc", "POSTGRES_PORT is invalid"},
        {"POSTGRES_PORT", "70000", "POSTGRES_PORT is invalid"},
        {"POSTGRES_PORT", "5432,", "POSTGRES_PORT is invalid"},
        {"POSTGRES_PORT", " 5432", "POSTGRES_PORT is invalid"},
        {"POSTGRES_PORT", "5432,5433", "one for each of the 1 hosts"}, /* one host, two ports */
        {"POSTGRES_TARGET_SESSION_ATTRS", "writable", "POSTGRES_TARGET_SESSION_ATTRS is invalid"},
        {"POSTGRES_POOL_SIZE", "0", "POSTGRES_POOL_SIZE is invalid"},
        {"POSTGRES_POOL_SIZE", "5x", "POSTGRES_POOL_SIZE is invalid"},
        {"POSTGRES_LOCK_TIMEOUT", "-1", "POSTGRES_LOCK_TIMEOUT is invalid"},
        {"POSTGRES_CONNECT_TIMEOUT", "soon", "POSTGRES_CONNECT_TIMEOUT is invalid"},
        {"POSTGRES_POOL_TIMEOUT", "-2.5", "POSTGRES_POOL_TIMEOUT is invalid"},
        {"CREATE_TABLE", "maybe", "CREATE_TABLE is invalid"},
        {"POSTGRES_POOL_MAX_OVERFLOW", "-1", "POSTGRES_POOL_MAX_OVERFLOW is invalid"},
        {"POSTGRES_CONN_MAX_AGE", "old", "POSTGRES_CONN_MAX_AGE is invalid"},
        {"POSTGRES_PRE_PING", "sometimes", "POSTGRES_PRE_PING is invalid"},
        {"IS_SNAPSHOTTING_ENABLED", "perhaps", "IS_SNAPSHOTTING_ENABLED is invalid"},
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const char *saved = esg_env_get(f->env, invalid[i].key);
        char *copy = saved != NULL ? strdup(saved) : NULL;
        testutil_env_set(f->env, invalid[i].key, invalid[i].value);
        assert_config_error(f, f->app_name, invalid[i].fragment, invalid[i].value);
        if (copy != NULL)
            testutil_env_set(f->env, invalid[i].key, copy);
        else
            esg_env_unset(f->env, invalid[i].key);
        free(copy);
    }

    /* The prefixed key wins, and is the one named. */
    testutil_env_set(f->env, "ORDERS_POSTGRES_PORT", "not-a-port");
    assert_config_error(f, "Orders", "ORDERS_POSTGRES_PORT is invalid", NULL);
    esg_env_unset(f->env, "ORDERS_POSTGRES_PORT");

    /* Python's limit on table names (63 bytes). */
    char long_name[80];
    memset(long_name, 'a', 60);
    long_name[60] = '\0';
    assert_config_error(f, long_name, "too long", NULL);

    /* A server that is not there is not a configuration error: retrying may work. */
    testutil_env_set(f->env, "POSTGRES_PORT", "1");
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_int_equal(esg_recorder_open(f->env, f->app_name, &recorder, &err), ESG_EUNAVAILABLE);
    assert_null(recorder);
    assert_non_null(strstr(err.message, "cannot connect"));
}

int main(void)
{
#define PG_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        PG_TEST(test_tables_are_those_of_eventsourcing_92),
        PG_TEST(test_schema_and_default_names),
        PG_TEST(test_rows_move_both_ways_with_python),
        PG_TEST(test_a_late_commit_is_never_skipped),
        PG_TEST(test_a_follower_never_skips_under_load),
        PG_TEST(test_killed_connections_are_replaced),
        PG_TEST(test_pool_exhaustion_is_unavailable_within_the_timeout),
        PG_TEST(test_concurrent_writers_commit_together),
        PG_TEST(test_old_connections_are_replaced_and_idle_ones_pinged),
        PG_TEST(test_lock_timeout_is_unavailable_and_writes_nothing),
        PG_TEST(test_bad_configuration),
        PG_TEST(test_several_hosts),
        PG_TEST(test_leases),
        PG_TEST(test_lease_nudges),
        PG_TEST(test_watches_hear_other_writers),
        PG_TEST(test_database_restart_under_load),
    };
#undef PG_TEST
    return cmocka_run_group_tests_name("postgres backend", tests, NULL, NULL);
}
