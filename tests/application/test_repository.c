/* The repository as eventsourcing 9.2 configures it, on the backend named by the program's one
 * argument ("popo", "sqlite" or "postgres", the last with the POSTGRES_* variables that
 * scripts/postgres-test-server.sh gives): the example system with a cipher and a compressor,
 * refused when the database holds another format; snapshots (taken at intervals and on demand,
 * used when reading, ignored for types that cannot read them); and the aggregate cache, with and
 * without fast-forward, and its refusals. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/mapper.h"
#include "esg/system.h"
#include "pg_testutil.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define OTHER_KEY "ICcuNTxDSlFYX2ZtdHuCiZCXnqWss7rByM/W3eTr8vk="
#define NOTE "tests:Note"
#define NOTE_CREATED "tests:Note.Created"
#define NOTE_EDITED "tests:Note.Edited"

typedef enum backend_kind { BACKEND_POPO, BACKEND_SQLITE, BACKEND_POSTGRES } backend_kind;
static int backend; /* a backend_kind */

typedef struct fixture {
    char *temp_dir; /* SQLite files */
    esg_env *env;   /* the applications' settings */
} fixture;

/* ---- A note with its state written and read back (for snapshots and the cache) ---------- */

#define NOTE_TEXT_SIZE 64

typedef struct note {
    char text[NOTE_TEXT_SIZE];
    int64_t n_edits;
} note;

static esg_status note_apply(void *state, const esg_event *event, esg_error *err)
{
    note *n = state;
    const char *text = esg_value_as_string(esg_event_get(event, "text"), NULL);
    if (text == NULL)
        return esg_error_set(err, ESG_EINVAL, "a note's text must be a string");
    snprintf(n->text, sizeof n->text, "%s", text);
    if (strcmp(event->topic, NOTE_EDITED) == 0)
        n->n_edits++;
    return ESG_OK;
}

static esg_status note_write(const void *state, esg_value **out, esg_error *err)
{
    const note *n = state;
    esg_value *attributes = esg_value_object();
    if (esg_object_set(attributes, "text", esg_value_string(n->text)) != ESG_OK ||
        esg_object_set(attributes, "n_edits", esg_value_int(n->n_edits)) != ESG_OK) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_ENOMEM, "out of memory");
    }
    *out = attributes;
    return ESG_OK;
}

static esg_status note_read(void *state, const esg_value *attributes, esg_error *err)
{
    note *n = state;
    const char *text = esg_value_as_string(esg_object_get(attributes, "text"), NULL);
    const esg_value *n_edits = esg_object_get(attributes, "n_edits");
    if (text == NULL || esg_value_type(n_edits) != ESG_TYPE_INT)
        return esg_error_set(err, ESG_EINVAL, "a note needs text and n_edits");
    snprintf(n->text, sizeof n->text, "%s", text);
    n->n_edits = esg_value_as_int(n_edits);
    return ESG_OK;
}

static const esg_event_type note_events[] = {{NOTE_CREATED, note_apply}, {NOTE_EDITED, note_apply}};
static const esg_aggregate_type note_type = {.topic = NOTE,
                                             .state_size = sizeof(note),
                                             .event_types = note_events,
                                             .n_event_types = 2,
                                             .write_state = note_write,
                                             .read_state = note_read};
/* The same note without write_state and read_state: no snapshots, no cache. */
static const esg_aggregate_type plain_note_type = {
    .topic = NOTE, .state_size = sizeof(note), .event_types = note_events, .n_event_types = 2};

static const esg_aggregate_type *const notes_aggregates[] = {&note_type};
static const esg_aggregate_type *const plain_notes_aggregates[] = {&plain_note_type};
static const int64_t every_second_version[] = {2};
/* Notes snapshot every second version, as Python's snapshotting_intervals = {Note: 2}. */
static const esg_application_type notes_app = {.magic = ESG_APPLICATION_TYPE_MAGIC,
                                               .name = "Notes",
                                               .topic = "tests:Notes",
                                               .aggregate_types = notes_aggregates,
                                               .n_aggregate_types = 1,
                                               .snapshotting_intervals = every_second_version};
static const esg_application_type plain_notes_app = {.magic = ESG_APPLICATION_TYPE_MAGIC,
                                                     .name = "Notes",
                                                     .topic = "tests:PlainNotes",
                                                     .aggregate_types = plain_notes_aggregates,
                                                     .n_aggregate_types = 1};

/* ---- Fixtures ---------------------------------------------------------------------------- */

/* The tables these tests make, dropped before and after each (the other tests on the server
 * find none of them, nor their encrypted rows). */
static void drop_postgres_tables(void)
{
    testutil_postgres_exec("DROP TABLE IF EXISTS orders_events, orders_tracking, orders_snapshots, "
                           "reservations_events, reservations_tracking, reservations_snapshots, "
                           "payments_events, payments_tracking, payments_snapshots, notes_events, "
                           "notes_tracking, notes_snapshots");
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->env = testutil_env_new();
    switch (backend) {
    case BACKEND_POPO:
        break;
    case BACKEND_SQLITE: {
        f->temp_dir = testutil_make_temp_dir();
        const char *names[] = {"ORDERS", "RESERVATIONS", "PAYMENTS", "NOTES"};
        testutil_env_use_sqlite_dir(f->env, f->temp_dir, names, 4);
        break;
    }
    case BACKEND_POSTGRES: {
        testutil_env_use_postgres(f->env);
        drop_postgres_tables();
        break;
    }
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (backend == BACKEND_POSTGRES)
        drop_postgres_tables();
    esg_env_free(f->env);
    testutil_discard_temp_dir(f->temp_dir);
    free(f);
    return 0;
}

static bool is_persistent(void)
{
    return backend != BACKEND_POPO;
}

/* ---- The example system with a cipher and a compressor ---------------------------------- */

static esg_value *call(esg_application *app, const char *method, esg_value *argument)
{
    esg_error err = {0};
    esg_value *args = esg_value_array(), *result = NULL;
    if (argument != NULL)
        esg_array_append(args, argument);
    assert_esg_ok(esg_application_call(app, method, args, NULL, &result, &err), &err);
    esg_value_free(args);
    return result;
}

/* Creates n orders in the running system and checks that each is paid. */
static void pay_orders(esg_local_runner *runner, int n)
{
    esg_application *orders = esg_local_runner_get(runner, "Orders");
    for (int i = 0; i < n; i++) {
        esg_value *id = call(orders, "create_new_order", NULL);
        esg_value *is_paid = call(orders, "is_order_paid", esg_value_copy(id));
        assert_true(esg_value_as_bool(is_paid));
        esg_value_free(is_paid);
        esg_value_free(id);
    }
    assert_null(esg_local_runner_error(runner));
}

static esg_local_runner *start_example(const esg_env *env)
{
    esg_error err = {0};
    esg_local_runner *runner = NULL;
    assert_esg_ok(esg_local_runner_start(&esg_example_system, env, &runner, &err), &err);
    return runner;
}

static void test_the_example_runs_encrypted_and_compressed(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "CIPHER_KEY", KEY);
    testutil_env_set(f->env, "COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor");
    esg_local_runner *runner = start_example(f->env);
    pay_orders(runner, 5);
    /* What each application stored is neither JSON nor readable without the key. */
    const char *names[] = {"Orders", "Reservations", "Payments"};
    for (size_t i = 0; i < 3; i++) {
        esg_application *app = esg_local_runner_get(runner, names[i]);
        esg_notification_list list = {0};
        esg_error err = {0};
        assert_esg_ok(esg_application_select_notifications(app, 1, 100, 0, NULL, 0, &list, &err),
                      &err);
        assert_true(list.n_items >= 5);
        for (size_t k = 0; k < list.n_items; k++) {
            const esg_stored_event *stored = &list.items[k].event;
            assert_true(stored->state_len > 28);
            assert_false(testutil_has_bytes(stored->state, stored->state_len, "timestamp"));
            uint8_t *json = NULL;
            size_t json_len = 0;
            assert_esg_ok(esg_mapper_decode_state(esg_application_mapper(app), stored->state,
                                                  stored->state_len, &json, &json_len, &err),
                          &err);
            assert_memory_equal(json, "{\"timestamp\":", 13);
            free(json);
        }
        esg_notification_list_clear(&list);
    }
    esg_local_runner_stop(runner);
    if (!is_persistent())
        return;

    /* Restarted with the same settings, the system goes on. */
    runner = start_example(f->env);
    pay_orders(runner, 2);
    esg_local_runner_stop(runner);
    /* With another key, or none, it is refused at start: nothing is written in a second format. */
    esg_error err = {0};
    testutil_env_set(f->env, "CIPHER_KEY", OTHER_KEY);
    assert_int_equal(esg_local_runner_start(&esg_example_system, f->env, &runner, &err),
                     ESG_ECONFIG);
    assert_non_null(strstr(err.message, "wrong CIPHER_KEY"));
    testutil_env_set(f->env, "CIPHER_KEY", "");
    assert_int_equal(esg_local_runner_start(&esg_example_system, f->env, &runner, &err),
                     ESG_ECONFIG);
    assert_non_null(strstr(err.message, "looks encrypted"));
    print_message("refused: %s\n", err.message);
}

/* ---- Snapshots ------------------------------------------------------------------------- */

static esg_application *open_app(const esg_application_type *type, const esg_env *env)
{
    esg_error err = {0};
    esg_application *app = NULL;
    assert_esg_ok(esg_application_new(type, env, &app, &err), &err);
    return app;
}

static esg_value *text(const char *s)
{
    esg_value *attributes = esg_value_object();
    assert_int_equal(esg_object_set(attributes, "text", esg_value_string(s)), ESG_OK);
    return attributes;
}

/* A note created and edited n_edits times (versions 1 .. n_edits + 1), saved one event a time. */
static esg_uuid write_note(esg_application *app, int n_edits)
{
    esg_error err = {0};
    esg_aggregate *aggregate = NULL;
    assert_esg_ok(
        esg_aggregate_create(&note_type, NOTE_CREATED, NULL, text("v1"), &aggregate, &err), &err);
    assert_esg_ok(esg_application_save(app, &aggregate, 1, &err), &err);
    esg_uuid id = *esg_aggregate_id(aggregate);
    esg_aggregate_free(aggregate);
    for (int i = 0; i < n_edits; i++) {
        assert_esg_ok(esg_application_get(app, &id, 0, &aggregate, &err), &err);
        char t[16];
        snprintf(t, sizeof t, "v%d", i + 2);
        assert_esg_ok(esg_aggregate_trigger(aggregate, NOTE_EDITED, text(t), &err), &err);
        assert_esg_ok(esg_application_save(app, &aggregate, 1, &err), &err);
        esg_aggregate_free(aggregate);
    }
    return id;
}

static const note *get_note(esg_application *app, const esg_uuid *id, int64_t version,
                            esg_aggregate **aggregate)
{
    esg_error err = {0};
    assert_esg_ok(esg_application_get(app, id, version, aggregate, &err), &err);
    return esg_aggregate_state(*aggregate);
}

/* Asserts the text of note id at version (0: the latest) as app reads it. */
static void assert_note_text(esg_application *app, const esg_uuid *id, int64_t version,
                             const char *expected)
{
    esg_aggregate *aggregate = NULL;
    assert_string_equal(get_note(app, id, version, &aggregate)->text, expected);
    esg_aggregate_free(aggregate);
}

static size_t snapshot_versions(esg_application *app, const esg_uuid *id, int64_t *versions)
{
    esg_error err = {0};
    esg_stored_event_list list = {0};
    assert_esg_ok(
        esg_recorder_select_snapshots(esg_application_recorder(app), id, NULL, &list, &err), &err);
    size_t n = list.n_items;
    for (size_t i = 0; i < n; i++) {
        versions[i] = list.items[i].originator_version;
        assert_string_equal(list.items[i].topic, ESG_SNAPSHOT_TOPIC);
    }
    esg_stored_event_list_clear(&list);
    return n;
}

static void test_snapshots_are_taken_at_intervals_and_used(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "CIPHER_KEY", KEY); /* snapshots go through the mapper too */
    esg_application *app = open_app(&notes_app, f->env);
    assert_true(esg_recorder_is_snapshotting(esg_application_recorder(app)));
    esg_uuid id = write_note(app, 4); /* versions 1..5 */
    int64_t versions[8];
    assert_int_equal(snapshot_versions(app, &id, versions), 2);
    assert_int_equal(versions[0], 2);
    assert_int_equal(versions[1], 4);
    /* Every version reads as its events say, whichever snapshot it starts from. */
    for (int64_t v = 1; v <= 6; v++) {
        esg_aggregate *aggregate = NULL;
        const note *n = get_note(app, &id, v, &aggregate);
        char want[8];
        snprintf(want, sizeof want, "v%lld", (long long)(v > 5 ? 5 : v));
        assert_string_equal(n->text, want);
        assert_int_equal(n->n_edits, (v > 5 ? 5 : v) - 1);
        assert_int_equal(esg_aggregate_version(aggregate), v > 5 ? 5 : v);
        esg_aggregate_free(aggregate);
    }

    /* A snapshot is what get starts from: one recorded by hand at version 5 that says something
     * else is believed over the events before it. */
    esg_error err = {0};
    esg_aggregate *aggregate = NULL;
    get_note(app, &id, 0, &aggregate);
    snprintf(((note *)esg_aggregate_state(aggregate))->text, NOTE_TEXT_SIZE, "snapshot");
    esg_event *snapshot = NULL;
    esg_stored_event stored = {0};
    assert_esg_ok(esg_aggregate_snapshot(aggregate, &snapshot, &err), &err);
    assert_esg_ok(esg_mapper_to_stored(esg_application_mapper(app), snapshot, &stored, &err), &err);
    assert_esg_ok(esg_recorder_insert_snapshot(esg_application_recorder(app), &stored, &err), &err);
    /* Again at the same version: a conflict for the recorder, nothing for the application. */
    assert_int_equal(esg_recorder_insert_snapshot(esg_application_recorder(app), &stored, &err),
                     ESG_ECONFLICT);
    assert_esg_ok(esg_application_take_snapshot(app, &id, 5, &err), &err);
    esg_stored_event_clear(&stored);
    esg_event_free(snapshot);
    esg_aggregate_free(aggregate);
    assert_note_text(app, &id, 0, "snapshot");
    assert_note_text(app, &id, 4, "v4");
    esg_application_free(app);

    /* Without snapshots enabled, the same table is not read and no snapshot is taken. */
    testutil_env_set(f->env, "IS_SNAPSHOTTING_ENABLED", "no");
    app = open_app(&notes_app, f->env);
    assert_false(esg_recorder_is_snapshotting(esg_application_recorder(app)));
    if (is_persistent()) {
        assert_note_text(app, &id, 0, "v5");
    }
    assert_int_equal(esg_application_take_snapshot(app, &id, 0, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "IS_SNAPSHOTTING_ENABLED"));
    esg_application_free(app);
}

static void test_snapshots_of_a_type_that_cannot_read_them_are_ignored(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "IS_SNAPSHOTTING_ENABLED", "y");
    esg_application *app = open_app(&notes_app, f->env);
    esg_uuid id = write_note(app, 2);
    esg_error err = {0};
    assert_esg_ok(esg_application_take_snapshot(app, &id, 0, &err), &err);
    if (!is_persistent()) {
        esg_application_free(app);
        return;
    }
    esg_application_free(app);
    /* The same data read by a type without read_state: its events are replayed instead. */
    app = open_app(&plain_notes_app, f->env);
    esg_aggregate *aggregate = NULL;
    const note *n = get_note(app, &id, 0, &aggregate);
    assert_string_equal(n->text, "v3");
    esg_aggregate_free(aggregate);
    assert_int_equal(esg_application_take_snapshot(app, &id, 0, &err), ESG_EUNIMPLEMENTED);
    esg_application_free(app);
}

static void test_snapshot_settings_are_refused_when_wrong(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_application *app = NULL;
    testutil_env_set(f->env, "IS_SNAPSHOTTING_ENABLED", "sometimes");
    assert_int_equal(esg_application_new(&notes_app, f->env, &app, &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "IS_SNAPSHOTTING_ENABLED is invalid"));
    /* An interval on a type that cannot write its state. */
    static const esg_application_type bad = {.magic = ESG_APPLICATION_TYPE_MAGIC,
                                             .name = "Notes",
                                             .topic = "tests:Bad",
                                             .aggregate_types = plain_notes_aggregates,
                                             .n_aggregate_types = 1,
                                             .snapshotting_intervals = every_second_version};
    esg_env_unset(f->env, "IS_SNAPSHOTTING_ENABLED");
    assert_int_equal(esg_application_new(&bad, f->env, &app, &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "has no write_state and read_state"));
    assert_null(app);
}

/* ---- The aggregate cache ------------------------------------------------------------- */

static void edit_note(esg_application *app, const esg_uuid *id, const char *new_text)
{
    esg_error err = {0};
    esg_aggregate *aggregate = NULL;
    assert_esg_ok(esg_application_get(app, id, 0, &aggregate, &err), &err);
    assert_esg_ok(esg_aggregate_trigger(aggregate, NOTE_EDITED, text(new_text), &err), &err);
    assert_esg_ok(esg_application_save(app, &aggregate, 1, &err), &err);
    esg_aggregate_free(aggregate);
}

/* Edits note id through another application object on env, as another process would. */
static void edit_as_another_writer(const esg_env *env, const esg_uuid *id, const char *new_text)
{
    esg_application *other = open_app(&notes_app, env);
    edit_note(other, id, new_text);
    esg_application_free(other);
}

static void test_the_cache_fast_forwards_over_other_writers(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "AGGREGATE_CACHE_MAXSIZE", "1");
    esg_application *app = open_app(&notes_app, f->env);
    esg_uuid a = write_note(app, 1), b = write_note(app, 1);
    esg_aggregate *aggregate = NULL;
    /* Two aggregates through a cache of one: each read is right, evicted or not. */
    for (int i = 0; i < 3; i++) {
        assert_note_text(app, &a, 0, "v2");
        assert_note_text(app, &b, 0, "v2");
    }
    /* What a caller does to its aggregate stays its own: gets return copies. */
    get_note(app, &b, 0, &aggregate);
    snprintf(((note *)esg_aggregate_state(aggregate))->text, NOTE_TEXT_SIZE, "scribbled");
    esg_aggregate_free(aggregate);
    assert_note_text(app, &b, 0, "v2");
    if (is_persistent()) {
        /* Another writer (another application object, as another process would be) edits b:
         * the cached b is brought up to date by the events recorded after it. */
        edit_as_another_writer(f->env, &b, "by the other");
        assert_string_equal(get_note(app, &b, 0, &aggregate)->text, "by the other");
        assert_int_equal(esg_aggregate_version(aggregate), 3);
        esg_aggregate_free(aggregate);
    }
    /* Older versions never come from the cache. */
    assert_note_text(app, &b, 1, "v1");
    esg_application_free(app);
}

static void test_the_cache_without_fast_forward_trusts_itself(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "AGGREGATE_CACHE_MAXSIZE", "0"); /* no bound */
    testutil_env_set(f->env, "AGGREGATE_CACHE_FASTFORWARD", "n");
    esg_application *app = open_app(&notes_app, f->env);
    esg_uuid id = write_note(app, 2);
    /* What it saved itself it has: the latest version. */
    assert_note_text(app, &id, 0, "v3");
    if (is_persistent()) {
        /* Another writer's events are not seen (as in Python: one writer only, then). */
        edit_as_another_writer(f->env, &id, "unseen");
        assert_note_text(app, &id, 0, "v3");
    }
    esg_application_free(app);
}

typedef struct cache_worker {
    pthread_t thread;
    esg_application *app;
    const esg_uuid *id;
    int n_edits; /* edits that were recorded */
    bool is_failed;
} cache_worker;

/* Edits the shared note 40 times, getting it again after each conflict, and reads it between. */
static void *edit_concurrently(void *arg)
{
    cache_worker *w = arg;
    for (int i = 0; i < 40 && !w->is_failed; i++) {
        esg_error err = {0};
        esg_aggregate *aggregate = NULL;
        esg_status rc = esg_application_get(w->app, w->id, 0, &aggregate, &err);
        if (rc == ESG_OK)
            rc = esg_aggregate_trigger(aggregate, NOTE_EDITED, text("edit"), &err);
        if (rc == ESG_OK)
            rc = esg_application_save(w->app, &aggregate, 1, &err);
        if (rc == ESG_OK)
            w->n_edits++;
        else if (rc != ESG_ECONFLICT)
            w->is_failed = true;
        esg_aggregate_free(aggregate);
    }
    return NULL;
}

/* Writers racing on one aggregate through one cache (each get fast-forwarding, each save a
 * conflict when another got there first): every recorded edit is in the aggregate once, and the
 * cache ends at the latest version. */
static void test_the_cache_under_concurrent_writers(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "AGGREGATE_CACHE_MAXSIZE", "4");
    esg_application *app = open_app(&notes_app, f->env);
    esg_uuid id = write_note(app, 0);
    cache_worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (cache_worker){.app = app, .id = &id};
        assert_int_equal(pthread_create(&workers[i].thread, NULL, edit_concurrently, &workers[i]),
                         0);
    }
    int n_edits = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
        assert_false(workers[i].is_failed);
        n_edits += workers[i].n_edits;
    }
    assert_true(n_edits > 0);
    esg_aggregate *aggregate = NULL;
    const note *n = get_note(app, &id, 0, &aggregate);
    assert_int_equal(esg_aggregate_version(aggregate), 1 + n_edits);
    assert_int_equal(n->n_edits, n_edits);
    esg_aggregate_free(aggregate);
    esg_application_free(app);
}

static void test_cache_settings_are_honoured_or_refused(void **state)
{
    fixture *f = *state;
    const struct {
        const char *key, *value, *fragment;
    } refused[] = {
        {"AGGREGATE_CACHE_MAXSIZE", "many", "AGGREGATE_CACHE_MAXSIZE is invalid"},
        {"AGGREGATE_CACHE_FASTFORWARD", "maybe", "AGGREGATE_CACHE_FASTFORWARD is invalid"},
        {"NOTES_AGGREGATE_CACHE_FASTFORWARD_SKIPPING", "2",
         "NOTES_AGGREGATE_CACHE_FASTFORWARD_SKIPPING is invalid"},
        {"DEEPCOPY_FROM_AGGREGATE_CACHE", "n", "DEEPCOPY_FROM_AGGREGATE_CACHE=n is not supported"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        esg_env *env = esg_env_copy(f->env);
        testutil_env_set(env, refused[i].key, refused[i].value);
        esg_error err = {0};
        esg_application *app = NULL;
        assert_int_equal(esg_application_new(&notes_app, env, &app, &err), ESG_ECONFIG);
        if (strstr(err.message, refused[i].fragment) == NULL)
            fail_msg("'%s' does not say '%s'", err.message, refused[i].fragment);
        esg_env_free(env);
    }
    /* A cache for a type that cannot copy its aggregates. */
    testutil_env_set(f->env, "AGGREGATE_CACHE_MAXSIZE", "10");
    esg_error err = {0};
    esg_application *app = NULL;
    assert_int_equal(esg_application_new(&plain_notes_app, f->env, &app, &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "AGGREGATE_CACHE_MAXSIZE"));
    /* Skipping fast-forward and a deep copy asked for by name work. */
    testutil_env_set(f->env, "AGGREGATE_CACHE_FASTFORWARD_SKIPPING", "yes");
    testutil_env_set(f->env, "DEEPCOPY_FROM_AGGREGATE_CACHE", "y");
    app = open_app(&notes_app, f->env);
    esg_uuid id = write_note(app, 3);
    assert_note_text(app, &id, 0, "v4");
    esg_application_free(app);
}

int main(int argc, char **argv)
{
    static const char *const backend_names[] = {"popo", "sqlite", "postgres"}; /* backend_kind */
#define REPOSITORY_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        REPOSITORY_TEST(test_the_example_runs_encrypted_and_compressed),
        REPOSITORY_TEST(test_snapshots_are_taken_at_intervals_and_used),
        REPOSITORY_TEST(test_snapshots_of_a_type_that_cannot_read_them_are_ignored),
        REPOSITORY_TEST(test_snapshot_settings_are_refused_when_wrong),
        REPOSITORY_TEST(test_the_cache_fast_forwards_over_other_writers),
        REPOSITORY_TEST(test_the_cache_without_fast_forward_trusts_itself),
        REPOSITORY_TEST(test_the_cache_under_concurrent_writers),
        REPOSITORY_TEST(test_cache_settings_are_honoured_or_refused),
    };
#undef REPOSITORY_TEST
    return TESTUTIL_RUN_PER_BACKEND(argc, argv, "repository", backend_names, &backend, tests);
}
