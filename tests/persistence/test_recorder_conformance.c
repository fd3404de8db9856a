/* The persistence conformance suite: the same tests run against every recorder backend, named by
 * the program's one argument: "popo" (in memory), "sqlite" (a temporary file), "sqlite-memory"
 * (":memory:") or "postgres" (the server the POSTGRES_* variables name, as
 * scripts/postgres-test-server.sh provides it; each test has tables of its own, dropped after).
 * A backend is conformant when every test passes. */
#include "testutil.h"

#include "pg_testutil.h"

#include "core/buffer.h"
#include "persistence/recorder_metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Backends and fixtures ------------------------------------------------- */

typedef enum backend_kind {
    BACKEND_POPO,
    BACKEND_SQLITE_FILE,
    BACKEND_SQLITE_MEMORY,
    BACKEND_POSTGRES,
} backend_kind;

static int backend; /* a backend_kind, from argv[1], fixed for the whole run */

typedef struct fixture {
    esg_recorder *recorder;
    char *temp_dir;    /* the sqlite file backend's folder, NULL for the others */
    char db_path[512]; /* the sqlite file, "" for the others */
    esg_env *env;      /* postgres: the process environment with PERSISTENCE_MODULE set */
    char app_name[64]; /* postgres: names this test's tables, "" for the others */
} fixture;

static bool is_sqlite(void)
{
    return backend == BACKEND_SQLITE_FILE || backend == BACKEND_SQLITE_MEMORY;
}

/* Opens (or reopens, for the persistent backends) the recorder of the fixture's backend, without
 * asserting: child processes use it too. */
static esg_status try_open_recorder(const fixture *f, esg_recorder **recorder, esg_error *err)
{
    switch (backend) {
    case BACKEND_POPO:
        return esg_recorder_open_popo(false, recorder, err);
    case BACKEND_SQLITE_FILE:
        return esg_recorder_open_sqlite(f->db_path, NULL, recorder, err);
    case BACKEND_SQLITE_MEMORY:
        return esg_recorder_open_sqlite(":memory:", NULL, recorder, err);
    case BACKEND_POSTGRES:
        return esg_recorder_open(f->env, f->app_name, recorder, err);
    }
    return ESG_EINTERNAL;
}

/* The fixture's backend with snapshots (IS_SNAPSHOTTING_ENABLED), on the same database. */
static esg_recorder *open_snapshotting_recorder(const fixture *f)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    esg_sqlite_options options = {.is_snapshotting = true};
    esg_env *env = NULL;
    switch (backend) {
    case BACKEND_POPO:
        assert_esg_ok(esg_recorder_open_popo(true, &recorder, &err), &err);
        break;
    case BACKEND_SQLITE_FILE:
    case BACKEND_SQLITE_MEMORY:
        assert_esg_ok(esg_recorder_open_sqlite(
                          backend == BACKEND_SQLITE_FILE ? f->db_path : ":memory:", &options,
                          &recorder, &err),
                      &err);
        break;
    case BACKEND_POSTGRES:
        env = esg_env_copy(f->env);
        assert_esg_ok(esg_env_set(env, "IS_SNAPSHOTTING_ENABLED", "yes", &err), &err);
        assert_esg_ok(esg_recorder_open(env, f->app_name, &recorder, &err), &err);
        esg_env_free(env);
        break;
    }
    assert_true(esg_recorder_is_snapshotting(recorder));
    return recorder;
}

static esg_recorder *open_recorder(const fixture *f)
{
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    assert_esg_ok(try_open_recorder(f, &recorder, &err), &err);
    assert_non_null(recorder);
    return recorder;
}

static void drop_postgres_tables(const fixture *f)
{
    char sql[384];
    snprintf(sql, sizeof sql,
             "DROP TABLE IF EXISTS %s_events, %s_tracking, %s_snapshots, %s_replies", f->app_name,
             f->app_name, f->app_name, f->app_name);
    testutil_postgres_exec(sql);
}

static int setup(void **state)
{
    static unsigned n_fixtures;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    if (backend == BACKEND_SQLITE_FILE) {
        f->temp_dir = testutil_make_temp_dir();
        snprintf(f->db_path, sizeof f->db_path, "%s/events.db", f->temp_dir);
    }
    if (backend == BACKEND_POSTGRES) {
        /* Tables of their own ("conformance_<pid>_<n>_events"), so that tests start empty and
         * runs do not meet. */
        esg_error err = {0};
        f->env = esg_env_from_process();
        assert_non_null(f->env);
        assert_esg_ok(esg_env_set(f->env, "PERSISTENCE_MODULE", "eventsourcing.postgres", &err),
                      &err);
        snprintf(f->app_name, sizeof f->app_name, "conformance_%ld_%u", (long)getpid(),
                 n_fixtures++);
        drop_postgres_tables(f);
    }
    f->recorder = open_recorder(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_recorder_close(f->recorder);
    if (f->temp_dir != NULL) {
        testutil_remove_tree(f->temp_dir);
        free(f->temp_dir);
    }
    if (f->env != NULL) {
        drop_postgres_tables(f);
        esg_env_free(f->env);
    }
    free(f);
    return 0;
}

/* ---- Helpers ------------------------------------------------------------- */

#define TOPIC_CREATED "eventsourcing_grpc.example:Order.Created"
#define TOPIC_RESERVED "eventsourcing_grpc.example:Order.Reserved"
#define TOPIC_PAID "eventsourcing_grpc.example:Order.Paid"

/* A stored event that borrows id, topic and state: recorders copy what they keep, so the
 * tests can build events from string literals. */
static esg_stored_event borrowed_event(const esg_uuid *id, int64_t version, const char *topic,
                                       const void *state, size_t state_len)
{
    return (esg_stored_event){
        .originator_id = *id,
        .originator_version = version,
        .topic = (char *)topic,
        .state = (uint8_t *)state,
        .state_len = state_len,
    };
}

static esg_stored_event text_event(const esg_uuid *id, int64_t version, const char *topic,
                                   const char *state)
{
    return borrowed_event(id, version, topic, state, strlen(state));
}

static void assert_event_equal(const esg_stored_event *actual, const esg_stored_event *expected)
{
    char actual_hex[ESG_UUID_HEX_SIZE], expected_hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(&actual->originator_id, actual_hex);
    esg_uuid_hex(&expected->originator_id, expected_hex);
    assert_string_equal(actual_hex, expected_hex);
    assert_int_equal(actual->originator_version, expected->originator_version);
    assert_non_null(actual->topic);
    assert_string_equal(actual->topic, expected->topic);
    assert_int_equal(actual->state_len, expected->state_len);
    assert_non_null(actual->state);
    if (expected->state_len > 0)
        assert_memory_equal(actual->state, expected->state, expected->state_len);
    /* domain.h promises a NUL after the state bytes. */
    assert_int_equal(actual->state[actual->state_len], 0);
}

/* The state the option tests give version v, so that a selected event shows which it is. */
static void version_state(int64_t version, char *out, size_t out_size)
{
    snprintf(out, out_size, "{\"v\":%lld}", (long long)version);
}

/* Records versions 1..n_versions of one aggregate, one call each. */
static void insert_versions(esg_recorder *recorder, const esg_uuid *id, int64_t n_versions)
{
    esg_error err = {0};
    for (int64_t v = 1; v <= n_versions; v++) {
        char state[32];
        version_state(v, state, sizeof state);
        esg_stored_event event = text_event(id, v, TOPIC_RESERVED, state);
        assert_esg_ok(esg_recorder_insert_events(recorder, &event, 1, NULL, NULL, &err), &err);
    }
}

/* Selects with options and asserts exactly the versions expected, in order, each with the
 * state insert_versions gave it. */
static void check_versions(esg_recorder *recorder, const esg_uuid *id,
                           esg_select_events_options options, const int64_t *expected,
                           size_t n_expected)
{
    esg_error err = {0};
    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(recorder, id, &options, &list, &err), &err);
    if (list.n_items != n_expected)
        fail_msg("options {gt %lld%s, lte %lld%s, desc %d, limit %lld}: %zu events, expected %zu",
                 (long long)options.gt, options.has_gt ? "" : " (off)", (long long)options.lte,
                 options.has_lte ? "" : " (off)", options.desc, (long long)options.limit,
                 list.n_items, n_expected);
    for (size_t i = 0; i < n_expected; i++) {
        char state[32];
        version_state(expected[i], state, sizeof state);
        esg_stored_event want = text_event(id, expected[i], TOPIC_RESERVED, state);
        assert_event_equal(&list.items[i], &want);
    }
    esg_stored_event_list_clear(&list);
}

#define assert_versions(recorder, id, options, ...)                                                \
    check_versions((recorder), (id), (options), (const int64_t[]){__VA_ARGS__},                    \
                   sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define assert_no_versions(recorder, id, options)                                                  \
    check_versions((recorder), (id), (options), NULL, 0)

/* Selects notifications and asserts exactly the ids expected, in order. */
static void check_notification_ids(esg_recorder *recorder, int64_t start, int64_t limit,
                                   int64_t stop, const char *const *topics, size_t n_topics,
                                   const int64_t *expected, size_t n_expected)
{
    esg_error err = {0};
    esg_notification_list list = {0};
    assert_esg_ok(esg_recorder_select_notifications(recorder, start, limit, stop, topics, n_topics,
                                                    &list, &err),
                  &err);
    if (list.n_items != n_expected)
        fail_msg("start=%lld limit=%lld stop=%lld n_topics=%zu: %zu notifications, expected %zu",
                 (long long)start, (long long)limit, (long long)stop, n_topics, list.n_items,
                 n_expected);
    for (size_t i = 0; i < n_expected; i++)
        assert_int_equal(list.items[i].id, expected[i]);
    esg_notification_list_clear(&list);
}

#define assert_notification_ids(recorder, start, limit, stop, topics, n_topics, ...)               \
    check_notification_ids((recorder), (start), (limit), (stop), (topics), (n_topics),             \
                           (const int64_t[]){__VA_ARGS__},                                         \
                           sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define assert_no_notifications(recorder, start, limit, stop, topics, n_topics)                    \
    check_notification_ids((recorder), (start), (limit), (stop), (topics), (n_topics), NULL, 0)

static int64_t max_notification_id(esg_recorder *recorder)
{
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_notification_id(recorder, &max_id, &err), &err);
    return max_id;
}

static int64_t max_tracking_id(esg_recorder *recorder, const char *application_name)
{
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_tracking_id(recorder, application_name, &max_id, &err), &err);
    return max_id;
}

static bool has_tracking_id(esg_recorder *recorder, const char *application_name,
                            int64_t notification_id)
{
    esg_error err = {0};
    bool found = false;
    assert_esg_ok(
        esg_recorder_has_tracking_id(recorder, application_name, notification_id, &found, &err),
        &err);
    return found;
}

/* Asserts that the log holds exactly total notifications and selects them all into out. */
static void select_whole_log(esg_recorder *recorder, int64_t total, esg_notification_list *out)
{
    esg_error err = {0};
    assert_int_equal(max_notification_id(recorder), total);
    assert_esg_ok(
        esg_recorder_select_notifications(recorder, 1, total + 100, 0, NULL, 0, out, &err), &err);
    assert_int_equal(out->n_items, (size_t)total);
}

static size_t count_events(esg_recorder *recorder, const esg_uuid *id)
{
    esg_error err = {0};
    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(recorder, id, NULL, &list, &err), &err);
    size_t n = list.n_items;
    esg_stored_event_list_clear(&list);
    return n;
}

/* ---- Events of one aggregate ------------------------------------------------ */

static void test_insert_and_select_events_of_one_aggregate(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid order = testutil_random_uuid(), other = testutil_random_uuid();

    /* Two aggregates interleaved in one call, then a further call: selecting one aggregate
     * must give only its own events, in version order. */
    esg_stored_event first_call[] = {
        text_event(&order, 1, TOPIC_CREATED, "{\"name\":\"first\"}"),
        text_event(&other, 1, TOPIC_CREATED, "{\"name\":\"other\"}"),
        text_event(&order, 2, TOPIC_RESERVED, "{\"seat\":12}"),
    };
    esg_stored_event second_call = text_event(&order, 3, TOPIC_PAID, "{\"amount\":\"9.50\"}");
    assert_esg_ok(esg_recorder_insert_events(f->recorder, first_call, 3, NULL, NULL, &err), &err);
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &second_call, 1, NULL, NULL, &err), &err);

    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(f->recorder, &order, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 3);
    assert_event_equal(&list.items[0], &first_call[0]);
    assert_event_equal(&list.items[1], &first_call[2]);
    assert_event_equal(&list.items[2], &second_call);
    esg_stored_event_list_clear(&list);

    assert_esg_ok(esg_recorder_select_events(f->recorder, &other, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 1);
    assert_event_equal(&list.items[0], &first_call[1]);

    /* The list is the caller's: a second select appends rather than replaces. */
    assert_esg_ok(esg_recorder_select_events(f->recorder, &order, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 4);
    assert_event_equal(&list.items[0], &first_call[1]);
    assert_event_equal(&list.items[1], &first_call[0]);
    assert_event_equal(&list.items[3], &second_call);
    esg_stored_event_list_clear(&list);
}

static void test_select_events_options(void **state)
{
    fixture *f = *state;
    esg_uuid id = testutil_random_uuid(), neighbour = testutil_random_uuid();
    insert_versions(f->recorder, &neighbour, 2); /* must never show up in id's selections */
    insert_versions(f->recorder, &id, 5);

    /* Each options literal is parenthesised: its commas would otherwise split macro arguments. */
    typedef esg_select_events_options opts;
    assert_versions(f->recorder, &id, ((opts){0}), 1, 2, 3, 4, 5);
    assert_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 2}), 3, 4, 5);
    assert_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 0}), 1, 2, 3, 4, 5);
    assert_versions(f->recorder, &id, ((opts){.has_lte = true, .lte = 3}), 1, 2, 3);
    assert_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 1, .has_lte = true, .lte = 4}),
                    2, 3, 4);
    assert_versions(f->recorder, &id, ((opts){.desc = true}), 5, 4, 3, 2, 1);
    assert_versions(f->recorder, &id, ((opts){.limit = 2}), 1, 2);
    assert_versions(f->recorder, &id, ((opts){.limit = 10}), 1, 2, 3, 4, 5);
    assert_versions(f->recorder, &id, ((opts){.desc = true, .limit = 2}), 5, 4);
    assert_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 2, .limit = 2}), 3, 4);
    assert_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 2, .desc = true}), 5, 4, 3);
    assert_versions(f->recorder, &id, ((opts){.has_lte = true, .lte = 3, .desc = true, .limit = 2}),
                    3, 2);
    assert_versions(
        f->recorder, &id,
        ((opts){.has_gt = true, .gt = 1, .has_lte = true, .lte = 4, .desc = true, .limit = 2}), 4,
        3);
    assert_versions(f->recorder, &id,
                    ((opts){.has_gt = true, .gt = 1, .has_lte = true, .lte = 4, .limit = 1}), 2);
    assert_no_versions(f->recorder, &id, ((opts){.has_gt = true, .gt = 5}));
    assert_no_versions(f->recorder, &id, ((opts){.has_lte = true, .lte = 0}));
    assert_no_versions(f->recorder, &id,
                       ((opts){.has_gt = true, .gt = 3, .has_lte = true, .lte = 3}));

    /* A negative limit is refused rather than read as "no limit". */
    esg_error err = {0};
    esg_stored_event_list list = {0};
    opts negative = {.limit = -1};
    assert_int_equal(esg_recorder_select_events(f->recorder, &id, &negative, &list, &err),
                     ESG_EINVAL);
    assert_int_equal(list.n_items, 0);
    esg_stored_event_list_clear(&list);
}

static void test_unknown_aggregate_gives_an_empty_list(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid known = testutil_random_uuid(), unknown = testutil_random_uuid();
    esg_stored_event_list list = {0};

    assert_esg_ok(esg_recorder_select_events(f->recorder, &unknown, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 0);

    insert_versions(f->recorder, &known, 2);
    assert_esg_ok(esg_recorder_select_events(f->recorder, &unknown, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 0);
    esg_stored_event_list_clear(&list);
}

static void test_state_bytes_come_back_exactly(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid();

    /* JSON with non-ASCII UTF-8 and a NUL in the middle (a blob must not stop at it). */
    static const char with_nul[] = "{\"name\":\"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98"
                                   "\x80\",\"raw\":\"a\0b\"}";
    /* Every byte value, including ones that are not UTF-8 and would not survive as text. */
    uint8_t all_bytes[256];
    for (size_t i = 0; i < sizeof all_bytes; i++)
        all_bytes[i] = (uint8_t)(255 - i);
    esg_stored_event events[] = {
        borrowed_event(&id, 1, TOPIC_CREATED, with_nul, sizeof with_nul - 1),
        borrowed_event(&id, 2, TOPIC_RESERVED, all_bytes, sizeof all_bytes),
        borrowed_event(&id, 3, "eventsourcing_grpc.example:Caf\xc3\xa9.Opened", "{}", 2),
        borrowed_event(&id, 4, TOPIC_PAID, NULL, 0), /* an empty state is still a state */
    };
    assert_esg_ok(esg_recorder_insert_events(f->recorder, events, 4, NULL, NULL, &err), &err);

    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(f->recorder, &id, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 4);
    for (size_t i = 0; i < 4; i++)
        assert_event_equal(&list.items[i], &events[i]);
    esg_stored_event_list_clear(&list);

    /* Notifications read the same rows by another path: check them too. */
    esg_notification_list notifications = {0};
    assert_esg_ok(
        esg_recorder_select_notifications(f->recorder, 1, 10, 0, NULL, 0, &notifications, &err),
        &err);
    assert_int_equal(notifications.n_items, 4);
    for (size_t i = 0; i < 4; i++)
        assert_event_equal(&notifications.items[i].event, &events[i]);
    esg_notification_list_clear(&notifications);
}

/* ---- Optimistic concurrency --------------------------------------------- */

static void test_existing_version_is_a_conflict_and_writes_nothing(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid existing = testutil_random_uuid(), fresh = testutil_random_uuid(),
             another = testutil_random_uuid();

    esg_stored_event original = text_event(&existing, 1, TOPIC_CREATED, "{\"original\":true}");
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &original, 1, NULL, NULL, &err), &err);

    /* The clash sits in the middle of the call, between events of other aggregates, with a
     * tracking record: none of it may be written. */
    esg_stored_event clashing_call[] = {
        text_event(&fresh, 1, TOPIC_CREATED, "{\"fresh\":1}"),
        text_event(&existing, 2, TOPIC_RESERVED, "{\"would_be\":2}"),
        text_event(&existing, 1, TOPIC_CREATED, "{\"original\":false}"),
        text_event(&another, 1, TOPIC_CREATED, "{\"another\":1}"),
    };
    esg_tracking tracking = {.application_name = "Upstream", .notification_id = 7};
    int64_t ids[4] = {0};
    esg_error conflict = {0};
    assert_int_equal(
        esg_recorder_insert_events(f->recorder, clashing_call, 4, &tracking, ids, &conflict),
        ESG_ECONFLICT);
    assert_int_equal(conflict.status, ESG_ECONFLICT);
    assert_true(conflict.message[0] != '\0');

    assert_int_equal(count_events(f->recorder, &fresh), 0);
    assert_int_equal(count_events(f->recorder, &another), 0);
    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(f->recorder, &existing, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 1);
    assert_event_equal(&list.items[0], &original);
    esg_stored_event_list_clear(&list);
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 0);
    assert_false(has_tracking_id(f->recorder, "Upstream", 7));
    assert_int_equal(max_notification_id(f->recorder), 1);

    /* No notification id was used up by the failed call: the next one follows without a gap. */
    esg_stored_event next = text_event(&fresh, 1, TOPIC_CREATED, "{\"fresh\":2}");
    int64_t next_id = 0;
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &next, 1, NULL, &next_id, &err), &err);
    assert_int_equal(next_id, 2);
    assert_notification_ids(f->recorder, 1, 10, 0, NULL, 0, 1, 2);
}

static void test_same_version_twice_in_one_call_is_a_conflict(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid(), bystander = testutil_random_uuid();

    esg_stored_event call[] = {
        text_event(&bystander, 1, TOPIC_CREATED, "{}"),
        text_event(&id, 1, TOPIC_CREATED, "{\"first\":true}"),
        text_event(&id, 1, TOPIC_CREATED, "{\"first\":false}"),
    };
    assert_int_equal(esg_recorder_insert_events(f->recorder, call, 3, NULL, NULL, &err),
                     ESG_ECONFLICT);
    assert_int_equal(count_events(f->recorder, &id), 0);
    assert_int_equal(count_events(f->recorder, &bystander), 0);
    assert_int_equal(max_notification_id(f->recorder), 0);

    int64_t first_id = 0;
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &call[1], 1, NULL, &first_id, &err),
                  &err);
    assert_int_equal(first_id, 1);
}

/* ---- Notifications ------------------------------------------------------- */

static void test_notification_ids_follow_insert_order(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid a = testutil_random_uuid(), b = testutil_random_uuid(), c = testutil_random_uuid();

    assert_int_equal(max_notification_id(f->recorder), 0);

    /* Calls of one, three and two events over three aggregates, in an order that is neither
     * by aggregate nor by version. */
    esg_stored_event inserted[] = {
        text_event(&b, 1, TOPIC_CREATED, "{\"n\":1}"),
        text_event(&a, 1, TOPIC_CREATED, "{\"n\":2}"),
        text_event(&c, 1, TOPIC_CREATED, "{\"n\":3}"),
        text_event(&b, 2, TOPIC_RESERVED, "{\"n\":4}"),
        text_event(&c, 2, TOPIC_PAID, "{\"n\":5}"),
        text_event(&a, 2, TOPIC_PAID, "{\"n\":6}"),
    };
    const size_t call_sizes[] = {1, 3, 2};
    int64_t returned_ids[6] = {0};
    size_t offset = 0;
    for (size_t call = 0; call < 3; call++) {
        assert_esg_ok(esg_recorder_insert_events(f->recorder, &inserted[offset], call_sizes[call],
                                                 NULL, &returned_ids[offset], &err),
                      &err);
        offset += call_sizes[call];
    }
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(returned_ids[i], (int64_t)i + 1);
    assert_int_equal(max_notification_id(f->recorder), 6);

    esg_notification_list list = {0};
    assert_esg_ok(esg_recorder_select_notifications(f->recorder, 1, 100, 0, NULL, 0, &list, &err),
                  &err);
    assert_int_equal(list.n_items, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(list.items[i].id, returned_ids[i]);
        assert_event_equal(&list.items[i].event, &inserted[i]);
    }

    /* Appends, as select_events does. */
    assert_esg_ok(esg_recorder_select_notifications(f->recorder, 5, 100, 0, NULL, 0, &list, &err),
                  &err);
    assert_int_equal(list.n_items, 8);
    assert_int_equal(list.items[6].id, 5);
    assert_int_equal(list.items[7].id, 6);
    esg_notification_list_clear(&list);
}

static void test_select_notifications_start_limit_stop(void **state)
{
    fixture *f = *state;
    esg_uuid id = testutil_random_uuid();
    insert_versions(f->recorder, &id, 10);

    assert_notification_ids(f->recorder, 1, 100, 0, NULL, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    assert_notification_ids(f->recorder, 1, 3, 0, NULL, 0, 1, 2, 3);
    assert_notification_ids(f->recorder, 3, 4, 0, NULL, 0, 3, 4, 5, 6);
    assert_notification_ids(f->recorder, 8, 10, 0, NULL, 0, 8, 9, 10);
    assert_notification_ids(f->recorder, 10, 1, 0, NULL, 0, 10);
    assert_notification_ids(f->recorder, 3, 100, 5, NULL, 0, 3, 4, 5);
    assert_notification_ids(f->recorder, 1, 2, 5, NULL, 0, 1, 2);
    assert_notification_ids(f->recorder, 4, 100, 4, NULL, 0, 4);
    assert_notification_ids(f->recorder, 9, 100, 50, NULL, 0, 9, 10);
    assert_no_notifications(f->recorder, 11, 100, 0, NULL, 0);
    assert_no_notifications(f->recorder, 1000, 1, 0, NULL, 0);
    assert_no_notifications(f->recorder, 5, 100, 4, NULL, 0);
}

static void test_select_notifications_by_topic(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid();

    /* Ids 1..9 with topics created, reserved, paid, reserved, paid, reserved, ... */
    for (int64_t v = 1; v <= 9; v++) {
        const char *topic = v == 1 ? TOPIC_CREATED : v % 2 == 0 ? TOPIC_RESERVED : TOPIC_PAID;
        esg_stored_event event = text_event(&id, v, topic, "{}");
        assert_esg_ok(esg_recorder_insert_events(f->recorder, &event, 1, NULL, NULL, &err), &err);
    }

    const char *const reserved[] = {TOPIC_RESERVED};
    const char *const created_or_paid[] = {TOPIC_CREATED, TOPIC_PAID};
    const char *const nothing[] = {"eventsourcing_grpc.example:Order.Cancelled"};
    /* A topic that is a prefix of real ones must not match them. */
    const char *const prefix[] = {"eventsourcing_grpc.example:Order"};

    assert_notification_ids(f->recorder, 1, 100, 0, reserved, 1, 2, 4, 6, 8);
    assert_notification_ids(f->recorder, 1, 100, 0, created_or_paid, 2, 1, 3, 5, 7, 9);
    assert_no_notifications(f->recorder, 1, 100, 0, nothing, 1);
    assert_no_notifications(f->recorder, 1, 100, 0, prefix, 1);
    /* The limit counts matching notifications, not the ones skipped over. */
    assert_notification_ids(f->recorder, 1, 2, 0, reserved, 1, 2, 4);
    assert_notification_ids(f->recorder, 3, 2, 0, reserved, 1, 4, 6);
    assert_notification_ids(f->recorder, 2, 100, 7, created_or_paid, 2, 3, 5, 7);
    assert_notification_ids(f->recorder, 5, 1, 0, created_or_paid, 2, 5);
    assert_no_notifications(f->recorder, 9, 100, 0, reserved, 1);

    esg_notification_list list = {0};
    assert_esg_ok(
        esg_recorder_select_notifications(f->recorder, 1, 100, 0, reserved, 1, &list, &err), &err);
    for (size_t i = 0; i < list.n_items; i++)
        assert_string_equal(list.items[i].event.topic, TOPIC_RESERVED);
    esg_notification_list_clear(&list);
}

static void test_select_notifications_refuses_bad_arguments(void **state)
{
    fixture *f = *state;
    esg_uuid id = testutil_random_uuid();
    insert_versions(f->recorder, &id, 3);

    const struct {
        int64_t start, limit, stop;
    } bad[] = {
        {0, 10, 0}, {-1, 10, 0}, {1, 0, 0}, {1, -5, 0}, {1, 10, -1}, {0, 0, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_error err = {0};
        esg_notification_list list = {0};
        esg_status rc = esg_recorder_select_notifications(f->recorder, bad[i].start, bad[i].limit,
                                                          bad[i].stop, NULL, 0, &list, &err);
        if (rc != ESG_EINVAL)
            fail_msg("start=%lld limit=%lld stop=%lld gave %s, expected ESG_EINVAL",
                     (long long)bad[i].start, (long long)bad[i].limit, (long long)bad[i].stop,
                     esg_status_name(rc));
        assert_int_equal(err.status, ESG_EINVAL);
        assert_true(err.message[0] != '\0');
        assert_int_equal(list.n_items, 0);
        esg_notification_list_clear(&list);
    }
}

static void test_max_notification_id(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid a = testutil_random_uuid(), b = testutil_random_uuid();

    assert_int_equal(max_notification_id(f->recorder), 0);
    insert_versions(f->recorder, &a, 1);
    assert_int_equal(max_notification_id(f->recorder), 1);
    esg_stored_event pair[] = {
        text_event(&a, 2, TOPIC_PAID, "{}"),
        text_event(&b, 1, TOPIC_CREATED, "{}"),
    };
    assert_esg_ok(esg_recorder_insert_events(f->recorder, pair, 2, NULL, NULL, &err), &err);
    assert_int_equal(max_notification_id(f->recorder), 3);
}

/* ---- Tracking --------------------------------------------------------- */

static void test_tracking_is_recorded_with_events(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid();

    assert_int_equal(max_tracking_id(f->recorder, "Orders"), 0);
    assert_false(has_tracking_id(f->recorder, "Orders", 1));

    esg_stored_event first = text_event(&id, 1, TOPIC_CREATED, "{}");
    esg_tracking orders_5 = {.application_name = "Orders", .notification_id = 5};
    int64_t first_id = 0;
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &first, 1, &orders_5, &first_id, &err),
                  &err);
    assert_int_equal(first_id, 1);
    assert_int_equal(count_events(f->recorder, &id), 1);
    assert_int_equal(max_tracking_id(f->recorder, "Orders"), 5);
    assert_true(has_tracking_id(f->recorder, "Orders", 5));
    assert_false(has_tracking_id(f->recorder, "Orders", 4));
    assert_false(has_tracking_id(f->recorder, "Orders", 6));

    /* Each upstream application has its own sequence. */
    assert_int_equal(max_tracking_id(f->recorder, "Payments"), 0);
    assert_false(has_tracking_id(f->recorder, "Payments", 5));
    assert_int_equal(max_tracking_id(f->recorder, "orders"), 0); /* names are case-sensitive */

    esg_stored_event second = text_event(&id, 2, TOPIC_RESERVED, "{}");
    esg_tracking payments_2 = {.application_name = "Payments", .notification_id = 2};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &second, 1, &payments_2, NULL, &err),
                  &err);
    esg_stored_event third = text_event(&id, 3, TOPIC_PAID, "{}");
    esg_tracking orders_9 = {.application_name = "Orders", .notification_id = 9};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &third, 1, &orders_9, NULL, &err), &err);
    /* Processed out of order: the maximum is the highest id, not the last one recorded. */
    esg_stored_event fourth = text_event(&id, 4, TOPIC_PAID, "{}");
    esg_tracking orders_7 = {.application_name = "Orders", .notification_id = 7};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &fourth, 1, &orders_7, NULL, &err), &err);

    assert_int_equal(max_tracking_id(f->recorder, "Orders"), 9);
    assert_int_equal(max_tracking_id(f->recorder, "Payments"), 2);
    assert_true(has_tracking_id(f->recorder, "Orders", 7));
    assert_true(has_tracking_id(f->recorder, "Payments", 2));
    assert_false(has_tracking_id(f->recorder, "Payments", 9));
    assert_int_equal(count_events(f->recorder, &id), 4);
}

static void test_duplicate_tracking_record_is_a_conflict(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid first_id = testutil_random_uuid(), second_id = testutil_random_uuid();

    esg_tracking tracking = {.application_name = "Upstream", .notification_id = 3};
    esg_stored_event first = text_event(&first_id, 1, TOPIC_CREATED, "{}");
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &first, 1, &tracking, NULL, &err), &err);

    /* The same upstream notification processed again: its new events must not be written. */
    esg_stored_event again[] = {
        text_event(&second_id, 1, TOPIC_CREATED, "{}"),
        text_event(&second_id, 2, TOPIC_PAID, "{}"),
    };
    esg_error conflict = {0};
    assert_int_equal(esg_recorder_insert_events(f->recorder, again, 2, &tracking, NULL, &conflict),
                     ESG_ECONFLICT);
    assert_int_equal(conflict.status, ESG_ECONFLICT);
    assert_int_equal(count_events(f->recorder, &second_id), 0);
    assert_int_equal(max_notification_id(f->recorder), 1);
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 3);

    /* The next upstream notification goes through and gets the next id. */
    esg_tracking next = {.application_name = "Upstream", .notification_id = 4};
    int64_t ids[2] = {0};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, again, 2, &next, ids, &err), &err);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 4);
}

static void test_tracking_record_without_events(void **state)
{
    fixture *f = *state;
    esg_error err = {0};

    /* A process application that ignores a notification still records that it saw it. */
    esg_tracking tracking = {.application_name = "Upstream", .notification_id = 4};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, NULL, 0, &tracking, NULL, &err), &err);
    assert_true(has_tracking_id(f->recorder, "Upstream", 4));
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 4);
    assert_int_equal(max_notification_id(f->recorder), 0);

    assert_int_equal(esg_recorder_insert_events(f->recorder, NULL, 0, &tracking, NULL, &err),
                     ESG_ECONFLICT);

    /* A duplicate of a tracking record written without events also blocks events. */
    esg_uuid id = testutil_random_uuid();
    esg_stored_event event = text_event(&id, 1, TOPIC_CREATED, "{}");
    assert_int_equal(esg_recorder_insert_events(f->recorder, &event, 1, &tracking, NULL, &err),
                     ESG_ECONFLICT);
    assert_int_equal(count_events(f->recorder, &id), 0);
    assert_int_equal(max_notification_id(f->recorder), 0);
}

static void test_several_tracking_records_in_one_transaction(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid();
    esg_stored_event events[] = {
        text_event(&id, 1, TOPIC_CREATED, "{}"),
        text_event(&id, 2, TOPIC_PAID, "{}"),
    };
    esg_tracking trackings[] = {{"Upstream", 5}, {"Upstream", 6}, {"Upstream", 7}};
    if (!esg_recorder_can_track_many(f->recorder)) {
        /* One tracking record is always taken; more are refused and nothing is written. */
        assert_int_equal(
            esg_recorder_insert_events_tracked(f->recorder, events, 2, trackings, 3, NULL, &err),
            ESG_EUNIMPLEMENTED);
        assert_int_equal(max_notification_id(f->recorder), 0);
        assert_esg_ok(
            esg_recorder_insert_events_tracked(f->recorder, events, 2, trackings, 1, NULL, &err),
            &err);
        assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 5);
        return;
    }
    int64_t ids[2] = {0};
    assert_esg_ok(
        esg_recorder_insert_events_tracked(f->recorder, events, 2, trackings, 3, ids, &err), &err);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    for (int64_t n = 5; n <= 7; n++)
        assert_true(has_tracking_id(f->recorder, "Upstream", n));
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 7);

    /* One tracking record that exists fails them all: no events, no other tracking record. */
    esg_uuid other = testutil_random_uuid();
    esg_stored_event more = text_event(&other, 1, TOPIC_CREATED, "{}");
    esg_tracking overlapping[] = {{"Upstream", 8}, {"Upstream", 7}, {"Upstream", 9}};
    assert_int_equal(
        esg_recorder_insert_events_tracked(f->recorder, &more, 1, overlapping, 3, NULL, &err),
        ESG_ECONFLICT);
    assert_false(has_tracking_id(f->recorder, "Upstream", 8));
    assert_int_equal(count_events(f->recorder, &other), 0);
    assert_int_equal(max_notification_id(f->recorder), 2);
    /* Tracking records alone, several at once. */
    esg_tracking alone[] = {{"Upstream", 8}, {"Other", 1}};
    assert_esg_ok(esg_recorder_insert_events_tracked(f->recorder, NULL, 0, alone, 2, NULL, &err),
                  &err);
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 8);
    assert_int_equal(max_tracking_id(f->recorder, "Other"), 1);
    assert_int_equal(max_notification_id(f->recorder), 2);
}

/* ---- Concurrency ------------------------------------------------------ */

#define N_WRITERS 8
#define N_OWN_CALLS 250       /* single-event calls per writer, for its own aggregates */
#define N_OWN_AGGREGATES 5    /* per writer, so each reaches version 50 */
#define N_CONTENDED_ROUNDS 25 /* calls per writer that clash with every other writer's */
#define CONTEND_EVERY (N_OWN_CALLS / N_CONTENDED_ROUNDS)
/* A lock timeout waits (5 s by default): an ESG_EUNAVAILABLE sooner than this gave up instead. */
#define MIN_LOCK_TIMEOUT_MS 1000

typedef struct writer {
    pthread_t thread;
    int index;
    esg_recorder *recorder;
    pthread_barrier_t *round_start; /* lines the writers up so that rounds really contend */
    const esg_uuid *contended_id;   /* shared by all writers: round r writes its version r+1 */
    esg_uuid own_ids[N_OWN_AGGREGATES];
    esg_uuid side_ids[N_CONTENDED_ROUNDS]; /* written in the same call as a contended version */
    esg_status own_status[N_OWN_CALLS];
    int64_t own_notification_id[N_OWN_CALLS];
    esg_status contended_status[N_CONTENDED_ROUNDS];
    int64_t contended_notification_ids[N_CONTENDED_ROUNDS][2];
    int64_t quickest_unavailable_ms; /* the shortest call that gave ESG_EUNAVAILABLE */
} writer;

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Inserts as the writer's thread does, timing the calls that report a lock timeout. */
static esg_status timed_insert(writer *w, const esg_stored_event *events, size_t n_events,
                               int64_t *notification_ids)
{
    int64_t started_ms = monotonic_ms();
    esg_status rc =
        esg_recorder_insert_events(w->recorder, events, n_events, NULL, notification_ids, NULL);
    int64_t elapsed_ms = monotonic_ms() - started_ms;
    if (rc == ESG_EUNAVAILABLE && elapsed_ms < w->quickest_unavailable_ms)
        w->quickest_unavailable_ms = elapsed_ms;
    return rc;
}

static void own_call_state(int writer_index, int call, char *out, size_t out_size)
{
    snprintf(out, out_size, "{\"writer\":%d,\"call\":%d}", writer_index, call);
}

static void round_state(int writer_index, int round, const char *role, char *out, size_t out_size)
{
    snprintf(out, out_size, "{\"writer\":%d,\"round\":%d,\"role\":\"%s\"}", writer_index, round,
             role);
}

/* Runs in its own thread, so it records outcomes and leaves the asserting to the main thread
 * (cmocka's asserts are not thread-safe). */
static void *run_writer(void *arg)
{
    writer *w = arg;
    for (int call = 0; call < N_OWN_CALLS; call++) {
        if (call % CONTEND_EVERY == 0) {
            int round = call / CONTEND_EVERY;
            char side_state[96], contended_state[96];
            round_state(w->index, round, "side", side_state, sizeof side_state);
            round_state(w->index, round, "contended", contended_state, sizeof contended_state);
            esg_stored_event events[] = {
                text_event(&w->side_ids[round], 1, TOPIC_CREATED, side_state),
                text_event(w->contended_id, round + 1, TOPIC_RESERVED, contended_state),
            };
            pthread_barrier_wait(w->round_start);
            w->contended_status[round] =
                timed_insert(w, events, 2, w->contended_notification_ids[round]);
        }
        char own_state[64];
        own_call_state(w->index, call, own_state, sizeof own_state);
        esg_stored_event event = text_event(&w->own_ids[call % N_OWN_AGGREGATES],
                                            call / N_OWN_AGGREGATES + 1, TOPIC_PAID, own_state);
        w->own_status[call] = timed_insert(w, &event, 1, &w->own_notification_id[call]);
    }
    return NULL;
}

/* What a notification should hold, filled in from the writers' acknowledged calls. */
typedef struct expected_event {
    bool is_set;
    esg_uuid id;
    int64_t version;
    const char *topic;
    char state[96];
} expected_event;

static void expect_at(expected_event *by_id, int64_t total, int64_t notification_id,
                      const esg_uuid *id, int64_t version, const char *topic, const char *state)
{
    if (notification_id < 1 || notification_id > total)
        fail_msg("an acknowledged insert got notification id %lld, outside 1..%lld",
                 (long long)notification_id, (long long)total);
    expected_event *slot = &by_id[notification_id];
    if (slot->is_set)
        fail_msg("notification id %lld was given to two acknowledged inserts",
                 (long long)notification_id);
    slot->is_set = true;
    slot->id = *id;
    slot->version = version;
    slot->topic = topic;
    snprintf(slot->state, sizeof slot->state, "%s", state);
}

/* An insert that did not go through: a conflict, or for SQLite a lock wait that timed out. */
static bool is_allowed_failure(esg_status rc)
{
    return rc == ESG_ECONFLICT || (is_sqlite() && rc == ESG_EUNAVAILABLE);
}

static void test_concurrent_writers(void **state)
{
    fixture *f = *state;
    writer *writers = calloc(N_WRITERS, sizeof *writers);
    assert_non_null(writers);
    pthread_barrier_t round_start;
    assert_int_equal(pthread_barrier_init(&round_start, NULL, N_WRITERS), 0);
    esg_uuid contended_id = testutil_random_uuid();

    for (int i = 0; i < N_WRITERS; i++) {
        writer *w = &writers[i];
        w->index = i;
        w->recorder = f->recorder;
        w->round_start = &round_start;
        w->contended_id = &contended_id;
        w->quickest_unavailable_ms = INT64_MAX;
        for (int a = 0; a < N_OWN_AGGREGATES; a++)
            esg_uuid4(&w->own_ids[a]);
        for (int r = 0; r < N_CONTENDED_ROUNDS; r++)
            esg_uuid4(&w->side_ids[r]);
    }
    for (int i = 0; i < N_WRITERS; i++)
        assert_int_equal(pthread_create(&writers[i].thread, NULL, run_writer, &writers[i]), 0);
    for (int i = 0; i < N_WRITERS; i++)
        assert_int_equal(pthread_join(writers[i].thread, NULL), 0);
    pthread_barrier_destroy(&round_start);

    /* Tally what was acknowledged; only conflicts and lock timeouts may fail. */
    int64_t total = 0;
    int n_unavailable = 0;
    for (int i = 0; i < N_WRITERS; i++) {
        for (int call = 0; call < N_OWN_CALLS; call++) {
            esg_status rc = writers[i].own_status[call];
            if (rc == ESG_OK)
                total++;
            else if (is_sqlite() && rc == ESG_EUNAVAILABLE)
                n_unavailable++;
            else
                fail_msg("writer %d call %d on its own aggregate gave %s", i, call,
                         esg_status_name(rc));
        }
    }
    for (int round = 0; round < N_CONTENDED_ROUNDS; round++) {
        int n_winners = 0;
        for (int i = 0; i < N_WRITERS; i++) {
            esg_status rc = writers[i].contended_status[round];
            if (rc == ESG_OK) {
                n_winners++;
                const int64_t *ids = writers[i].contended_notification_ids[round];
                /* One call is one commit, so its events sit side by side in the sequence. */
                assert_int_equal(ids[1], ids[0] + 1);
            } else if (!is_allowed_failure(rc)) {
                fail_msg("writer %d in contended round %d gave %s", i, round, esg_status_name(rc));
            } else if (rc == ESG_EUNAVAILABLE) {
                n_unavailable++;
            }
        }
        if (n_winners != 1)
            fail_msg("contended round %d (version %d) had %d winners, expected exactly 1", round,
                     round + 1, n_winners);
        total += 2;
    }
    if (n_unavailable > 0) {
        print_message("note: %d inserts timed out waiting for the SQLite lock\n", n_unavailable);
        for (int i = 0; i < N_WRITERS; i++)
            if (writers[i].quickest_unavailable_ms < MIN_LOCK_TIMEOUT_MS)
                fail_msg("writer %d got ESG_EUNAVAILABLE after %lld ms: it gave up rather than "
                         "wait for the lock",
                         i, (long long)writers[i].quickest_unavailable_ms);
    }

    /* Every acknowledged event has the id it was given, and no id is given twice. */
    expected_event *by_id = calloc((size_t)total + 1, sizeof *by_id);
    assert_non_null(by_id);
    for (int i = 0; i < N_WRITERS; i++) {
        writer *w = &writers[i];
        char text[96];
        for (int call = 0; call < N_OWN_CALLS; call++) {
            if (w->own_status[call] != ESG_OK)
                continue;
            own_call_state(i, call, text, sizeof text);
            expect_at(by_id, total, w->own_notification_id[call],
                      &w->own_ids[call % N_OWN_AGGREGATES], call / N_OWN_AGGREGATES + 1, TOPIC_PAID,
                      text);
        }
        for (int round = 0; round < N_CONTENDED_ROUNDS; round++) {
            if (w->contended_status[round] != ESG_OK)
                continue;
            round_state(i, round, "side", text, sizeof text);
            expect_at(by_id, total, w->contended_notification_ids[round][0], &w->side_ids[round], 1,
                      TOPIC_CREATED, text);
            round_state(i, round, "contended", text, sizeof text);
            expect_at(by_id, total, w->contended_notification_ids[round][1], &contended_id,
                      round + 1, TOPIC_RESERVED, text);
        }
    }

    /* The sequence is exactly 1..total, each holding what its acknowledgement said: so nothing
     * unacknowledged was written and nothing acknowledged was lost. */
    esg_notification_list list = {0};
    select_whole_log(f->recorder, total, &list);
    for (int64_t n = 1; n <= total; n++) {
        const esg_notification *got = &list.items[n - 1];
        assert_int_equal(got->id, n);
        assert_true(by_id[n].is_set);
        esg_stored_event want =
            text_event(&by_id[n].id, by_id[n].version, by_id[n].topic, by_id[n].state);
        assert_event_equal(&got->event, &want);
    }
    esg_notification_list_clear(&list);

    /* The losers' side aggregates, written in the same call as their clash, are absent. */
    for (int round = 0; round < N_CONTENDED_ROUNDS; round++)
        for (int i = 0; i < N_WRITERS; i++)
            assert_int_equal(count_events(f->recorder, &writers[i].side_ids[round]),
                             writers[i].contended_status[round] == ESG_OK ? 1 : 0);
    assert_int_equal(count_events(f->recorder, &contended_id), N_CONTENDED_ROUNDS);

    free(by_id);
    free(writers);
}

/* ---- Persistent backends only (SQLite file, PostgreSQL) ------------------- */

static void skip_unless_persistent(void)
{
    if (backend != BACKEND_SQLITE_FILE && backend != BACKEND_POSTGRES)
        skip();
}

static void test_data_survives_close_and_reopen(void **state)
{
    fixture *f = *state;
    skip_unless_persistent();
    esg_error err = {0};
    esg_uuid id = testutil_random_uuid();

    esg_stored_event events[] = {
        text_event(&id, 1, TOPIC_CREATED, "{\"n\":1}"),
        text_event(&id, 2, TOPIC_RESERVED, "{\"n\":2}"),
    };
    esg_tracking tracking = {.application_name = "Upstream", .notification_id = 12};
    assert_esg_ok(esg_recorder_insert_events(f->recorder, events, 2, &tracking, NULL, &err), &err);
    esg_recorder_close(f->recorder);
    f->recorder = NULL;

    f->recorder = open_recorder(f);
    esg_stored_event_list list = {0};
    assert_esg_ok(esg_recorder_select_events(f->recorder, &id, NULL, &list, &err), &err);
    assert_int_equal(list.n_items, 2);
    assert_event_equal(&list.items[0], &events[0]);
    assert_event_equal(&list.items[1], &events[1]);
    esg_stored_event_list_clear(&list);
    assert_int_equal(max_notification_id(f->recorder), 2);
    assert_int_equal(max_tracking_id(f->recorder, "Upstream"), 12);
    assert_true(has_tracking_id(f->recorder, "Upstream", 12));

    /* The reopened recorder still enforces versions and continues the sequence. */
    assert_int_equal(esg_recorder_insert_events(f->recorder, &events[1], 1, NULL, NULL, &err),
                     ESG_ECONFLICT);
    esg_stored_event third = text_event(&id, 3, TOPIC_PAID, "{\"n\":3}");
    int64_t third_id = 0;
    assert_esg_ok(esg_recorder_insert_events(f->recorder, &third, 1, NULL, &third_id, &err), &err);
    assert_int_equal(third_id, 3);
}

#define N_CHILDREN 3
#define N_CHILD_EVENTS 200

/* A child process's whole life: its own recorder on the shared database, N_CHILD_EVENTS
 * single-event calls, then _exit (no cmocka, no atexit handlers of the parent). */
static void run_child(const fixture *f, const esg_uuid *id, int start_gate)
{
    char go;
    if (read(start_gate, &go, 1) < 0)
        _exit(3);
    close(start_gate);
    esg_error err = {0};
    esg_recorder *recorder = NULL;
    if (try_open_recorder(f, &recorder, &err) != ESG_OK) {
        fprintf(stderr, "child: open failed: %s\n", err.message);
        _exit(4);
    }
    for (int64_t v = 1; v <= N_CHILD_EVENTS; v++) {
        char state[32];
        version_state(v, state, sizeof state);
        esg_stored_event event = text_event(id, v, TOPIC_RESERVED, state);
        esg_status rc = esg_recorder_insert_events(recorder, &event, 1, NULL, NULL, &err);
        if (rc != ESG_OK) {
            fprintf(stderr, "child: insert of version %lld gave %s: %s\n", (long long)v,
                    esg_status_name(rc), err.message);
            esg_recorder_close(recorder);
            _exit(5);
        }
    }
    esg_recorder_close(recorder);
    _exit(0);
}

static void test_several_processes_write_at_once(void **state)
{
    fixture *f = *state;
    skip_unless_persistent();

    /* Database connections must not cross a fork: close ours and reopen after the children. */
    esg_recorder_close(f->recorder);
    f->recorder = NULL;

    esg_uuid ids[N_CHILDREN];
    for (int i = 0; i < N_CHILDREN; i++)
        esg_uuid4(&ids[i]);
    int gate[2];
    assert_int_equal(pipe(gate), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t children[N_CHILDREN];
    for (int i = 0; i < N_CHILDREN; i++) {
        children[i] = fork();
        assert_true(children[i] >= 0);
        if (children[i] == 0) {
            close(gate[1]);
            run_child(f, &ids[i], gate[0]);
        }
    }
    /* Closing the write end lets all children start at once, so that their writes interleave. */
    close(gate[0]);
    close(gate[1]);
    for (int i = 0; i < N_CHILDREN; i++) {
        int status = 0;
        assert_int_equal(waitpid(children[i], &status, 0), children[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    f->recorder = open_recorder(f);
    int64_t total = N_CHILDREN * N_CHILD_EVENTS;
    esg_notification_list list = {0};
    select_whole_log(f->recorder, total, &list);
    int64_t next_version[N_CHILDREN];
    for (int i = 0; i < N_CHILDREN; i++)
        next_version[i] = 1;
    for (int64_t n = 1; n <= total; n++) {
        const esg_notification *got = &list.items[n - 1];
        assert_int_equal(got->id, n);
        int child = -1;
        for (int i = 0; i < N_CHILDREN; i++)
            if (esg_uuid_equal(&got->event.originator_id, &ids[i]))
                child = i;
        assert_true(child >= 0);
        /* Each child's events appear in the order it committed them. */
        assert_int_equal(got->event.originator_version, next_version[child]);
        next_version[child]++;
    }
    for (int i = 0; i < N_CHILDREN; i++)
        assert_int_equal(next_version[i], N_CHILD_EVENTS + 1);
    esg_notification_list_clear(&list);
}

/* ---- Main ------------------------------------------------------------- */

/* Snapshots: a table of their own beside the events, selected as events are, never in the
 * notification log, a version once; a recorder without them refuses both calls. */
static void test_snapshots_are_kept_beside_the_events(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid a = testutil_random_uuid(), b = testutil_random_uuid();
    uint8_t binary[64]; /* what a cipher writes: any byte */
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (uint8_t)(i * 37 + 11);
    esg_stored_event snapshots[] = {
        borrowed_event(&a, 2, ESG_SNAPSHOT_TOPIC, binary, sizeof binary),
        borrowed_event(&a, 4, ESG_SNAPSHOT_TOPIC, "{\"v\":4}", 7),
        borrowed_event(&b, 3, ESG_SNAPSHOT_TOPIC, "{\"v\":3}", 7),
    };
    assert_false(esg_recorder_is_snapshotting(f->recorder));
    assert_int_equal(esg_recorder_insert_snapshot(f->recorder, &snapshots[0], &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "IS_SNAPSHOTTING_ENABLED"));
    esg_stored_event_list list = {0};
    assert_int_equal(esg_recorder_select_snapshots(f->recorder, &a, NULL, &list, &err), ESG_EINVAL);

    esg_recorder *recorder = open_snapshotting_recorder(f);
    for (size_t i = 0; i < 3; i++)
        assert_esg_ok(esg_recorder_insert_snapshot(recorder, &snapshots[i], &err), &err);
    assert_int_equal(esg_recorder_insert_snapshot(recorder, &snapshots[1], &err), ESG_ECONFLICT);
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_notification_id(recorder, &max_id, &err), &err);
    assert_int_equal(max_id, 0);

    for (int pass = 0;
         pass < (backend == BACKEND_SQLITE_FILE || backend == BACKEND_POSTGRES ? 2 : 1); pass++) {
        if (pass == 1) { /* the same after closing and opening again */
            esg_recorder_close(recorder);
            recorder = open_snapshotting_recorder(f);
        }
        assert_esg_ok(esg_recorder_select_snapshots(recorder, &a, NULL, &list, &err), &err);
        assert_int_equal(list.n_items, 2);
        assert_event_equal(&list.items[0], &snapshots[0]);
        assert_event_equal(&list.items[1], &snapshots[1]);
        esg_stored_event_list_clear(&list);
        /* The latest at or below a version: what a repository asks. */
        esg_select_events_options latest = {.has_lte = true, .lte = 3, .desc = true, .limit = 1};
        assert_esg_ok(esg_recorder_select_snapshots(recorder, &a, &latest, &list, &err), &err);
        assert_int_equal(list.n_items, 1);
        assert_event_equal(&list.items[0], &snapshots[0]);
        esg_stored_event_list_clear(&list);
        latest.lte = 1;
        assert_esg_ok(esg_recorder_select_snapshots(recorder, &a, &latest, &list, &err), &err);
        assert_int_equal(list.n_items, 0);
        esg_select_events_options after = {.has_gt = true, .gt = 2};
        assert_esg_ok(esg_recorder_select_snapshots(recorder, &a, &after, &list, &err), &err);
        assert_int_equal(list.n_items, 1);
        assert_event_equal(&list.items[0], &snapshots[1]);
        esg_stored_event_list_clear(&list);
        assert_esg_ok(esg_recorder_select_snapshots(recorder, &b, NULL, &list, &err), &err);
        assert_int_equal(list.n_items, 1);
        assert_event_equal(&list.items[0], &snapshots[2]);
        esg_stored_event_list_clear(&list);
        /* The events table knows nothing of them. */
        assert_esg_ok(esg_recorder_select_events(recorder, &a, NULL, &list, &err), &err);
        assert_int_equal(list.n_items, 0);
    }
    esg_recorder_close(recorder);
}

/* ---- Commands' replies ---- */

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static esg_command_record command_record(const char *key, const char *hash, const char *reply,
                                         size_t reply_len, int64_t at)
{
    return (esg_command_record){.key = key,
                                .request_hash = hash,
                                .reply = reply,
                                .reply_len = reply_len,
                                .recorded_at = at,
                                .replaces_before = at - 1000};
}

/* Asserts what the recorder holds of key from not_before: nothing (reply NULL), or that reply. */
static void assert_command(esg_recorder *recorder, const char *key, int64_t not_before,
                           const char *hash, const char *reply, size_t reply_len, int64_t at)
{
    esg_error err = {0};
    esg_command_reply got = {0};
    bool found = true;
    assert_esg_ok(esg_recorder_select_command(recorder, key, not_before, &got, &found, &err), &err);
    assert_int_equal(found, reply != NULL);
    if (reply != NULL) {
        assert_string_equal(got.request_hash, hash);
        assert_int_equal(got.reply_len, reply_len);
        if (reply_len > 0)
            assert_memory_equal(got.reply, reply, reply_len);
        assert_int_equal(got.reply[reply_len], '\0');
        assert_int_equal(got.recorded_at, at);
    }
    esg_command_reply_clear(&got);
}

static void test_command_record_is_written_with_the_events(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid a = testutil_random_uuid(), b = testutil_random_uuid();
    esg_stored_event first = text_event(&a, 1, TOPIC_CREATED, "{}");
    esg_stored_event second = text_event(&b, 1, TOPIC_CREATED, "{}");
    static const char reply[] = "\"x\"\0\xff bytes";
    esg_command_record record = command_record("key-1", HASH_A, reply, sizeof reply - 1, 5000);
    int64_t id = 0;
    assert_esg_ok(esg_recorder_insert_command(f->recorder, &first, 1, &record, &id, &err), &err);
    assert_int_equal(id, 1);
    assert_command(f->recorder, "key-1", 0, HASH_A, reply, sizeof reply - 1, 5000);
    assert_command(f->recorder, "key-1", 5000, HASH_A, reply, sizeof reply - 1, 5000);
    assert_command(f->recorder, "key-1", 5001, NULL, NULL, 0, 0); /* expired for this reader */
    assert_command(f->recorder, "key-2", 0, NULL, NULL, 0, 0);

    /* The key again, unexpired: nothing of that write is recorded. */
    esg_command_record again = command_record("key-1", HASH_B, "\"y\"", 3, 5500);
    assert_int_equal(esg_recorder_insert_command(f->recorder, &second, 1, &again, NULL, &err),
                     ESG_ECONFLICT);
    assert_non_null(strstr(err.message, "idempotency key"));
    assert_notification_ids(f->recorder, 1, 10, 0, NULL, 0, 1);
    assert_command(f->recorder, "key-1", 0, HASH_A, reply, sizeof reply - 1, 5000);

    /* Expired (recorded before replaces_before): replaced, in the same transaction. */
    again.replaces_before = 5001;
    assert_esg_ok(esg_recorder_insert_command(f->recorder, &second, 1, &again, NULL, &err), &err);
    assert_notification_ids(f->recorder, 1, 10, 0, NULL, 0, 1, 2);
    assert_command(f->recorder, "key-1", 0, HASH_B, "\"y\"", 3, 5500);

    /* Without events, and with an empty reply. */
    esg_command_record bare = command_record("key-3", HASH_A, NULL, 0, 6000);
    assert_esg_ok(esg_recorder_insert_command(f->recorder, NULL, 0, &bare, NULL, &err), &err);
    assert_command(f->recorder, "key-3", 0, HASH_A, "", 0, 6000);

    /* A version conflict writes no record either. */
    esg_command_record lost = command_record("key-4", HASH_A, "1", 1, 7000);
    assert_int_equal(esg_recorder_insert_command(f->recorder, &first, 1, &lost, NULL, &err),
                     ESG_ECONFLICT);
    assert_command(f->recorder, "key-4", 0, NULL, NULL, 0, 0);

    /* Bad records are refused before the backend sees them. */
    char long_key[ESG_IDEMPOTENCY_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    esg_command_record bad = command_record(long_key, HASH_A, "1", 1, 1);
    assert_int_equal(esg_recorder_insert_command(f->recorder, NULL, 0, &bad, NULL, &err),
                     ESG_EINVAL);
    bad = command_record("", HASH_A, "1", 1, 1);
    assert_int_equal(esg_recorder_insert_command(f->recorder, NULL, 0, &bad, NULL, &err),
                     ESG_EINVAL);
    bad = command_record("k", "ABC", "1", 1, 1);
    assert_int_equal(esg_recorder_insert_command(f->recorder, NULL, 0, &bad, NULL, &err),
                     ESG_EINVAL);
    esg_command_reply got = {0};
    bool found = true;
    assert_int_equal(esg_recorder_select_command(f->recorder, "", 0, &got, &found, &err),
                     ESG_EINVAL);
    assert_false(found);

    if (backend == BACKEND_SQLITE_FILE || backend == BACKEND_POSTGRES) { /* and kept */
        esg_recorder_close(f->recorder);
        f->recorder = open_recorder(f);
        assert_command(f->recorder, "key-1", 0, HASH_B, "\"y\"", 3, 5500);
    }
}

static void test_expired_command_records_are_deleted(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        esg_command_record record = command_record(keys[i], HASH_A, "1", 1, 100 * (i + 1));
        assert_esg_ok(esg_recorder_insert_command(f->recorder, NULL, 0, &record, NULL, &err), &err);
    }
    int64_t n_deleted = -1;
    assert_esg_ok(esg_recorder_delete_commands(f->recorder, 250, &n_deleted, &err), &err);
    assert_int_equal(n_deleted, 2);
    assert_command(f->recorder, "a", 0, NULL, NULL, 0, 0);
    assert_command(f->recorder, "b", 0, NULL, NULL, 0, 0);
    assert_command(f->recorder, "c", 0, HASH_A, "1", 1, 300);
    assert_command(f->recorder, "d", 0, HASH_A, "1", 1, 400);
    assert_esg_ok(esg_recorder_delete_commands(f->recorder, 250, &n_deleted, &err), &err);
    assert_int_equal(n_deleted, 0);
    /* A deleted key is free again. */
    esg_command_record record = command_record("a", HASH_B, "2", 1, 500);
    assert_esg_ok(esg_recorder_insert_command(f->recorder, NULL, 0, &record, NULL, &err), &err);
    assert_command(f->recorder, "a", 0, HASH_B, "2", 1, 500);
}

#define N_KEY_WRITERS 6

typedef struct key_writer {
    esg_recorder *recorder;
    esg_uuid id;
    esg_status status;
} key_writer;

static void *write_with_shared_key(void *arg)
{
    key_writer *w = arg;
    esg_error err = {0};
    esg_stored_event event = text_event(&w->id, 1, TOPIC_CREATED, "{}");
    esg_command_record record = command_record("shared", HASH_A, "\"won\"", 5, 9000);
    w->status = esg_recorder_insert_command(w->recorder, &event, 1, &record, NULL, &err);
    return NULL;
}

/* Writers racing with one key (a client's repeats arriving together): exactly one records its
 * events, in group commits too, where the others' conflicts must not fail it. */
static void test_one_of_many_writers_with_a_key_wins(void **state)
{
    fixture *f = *state;
    key_writer writers[N_KEY_WRITERS];
    for (int i = 0; i < N_KEY_WRITERS; i++)
        writers[i] = (key_writer){.recorder = f->recorder, .id = testutil_random_uuid()};
    testutil_run_together(N_KEY_WRITERS, write_with_shared_key, writers, sizeof writers[0]);
    int n_won = 0;
    for (int i = 0; i < N_KEY_WRITERS; i++) {
        if (writers[i].status == ESG_OK)
            n_won++;
        else if (writers[i].status != ESG_ECONFLICT &&
                 !(is_sqlite() && writers[i].status == ESG_EUNAVAILABLE))
            fail_msg("writer %d gave %s", i, esg_status_name(writers[i].status));
    }
    assert_int_equal(n_won, 1);
    assert_notification_ids(f->recorder, 1, 10, 0, NULL, 0, 1);
}

/* A backend's metrics: the SQL backends tell the connections their pool has open, SQLite its
 * memory in the process; the one in memory has none. */
static void test_metrics_families(void **state)
{
    fixture *f = *state;
    int64_t max_id = 0;
    esg_error err;
    assert_esg_ok(esg_recorder_max_notification_id(f->recorder, &max_id, &err), &err);
    static const char *const labels[] = {"application", "Tested", NULL};
    esg_buffer out = {0};
    esg_recorder_write_metrics(f->recorder, labels, &out);
    if (backend == BACKEND_POPO) {
        assert_int_equal(out.len, 0);
        return;
    }
    double n_connections = testutil_sample_value(
        out.data, "eventsourcing_recorder_connections{application=\"Tested\"}");
    double sqlite_bytes = testutil_sample_value(out.data, "eventsourcing_sqlite_memory_bytes");
    double sqlite_highwater =
        testutil_sample_value(out.data, "eventsourcing_sqlite_memory_highwater_bytes");
    esg_buffer_reset(&out);
    assert_true(n_connections >= 1 && n_connections <= (is_sqlite() ? 8 : 100));
    if (is_sqlite())
        assert_true(sqlite_bytes > 0 && sqlite_highwater >= sqlite_bytes);
    else
        assert_true(sqlite_bytes < 0); /* none: not on SQLite */
}

int main(int argc, char **argv)
{
    /* In the order of backend_kind. */
    static const char *const backend_names[] = {"popo", "sqlite", "sqlite-memory", "postgres"};

#define CONFORMANCE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        CONFORMANCE_TEST(test_insert_and_select_events_of_one_aggregate),
        CONFORMANCE_TEST(test_select_events_options),
        CONFORMANCE_TEST(test_unknown_aggregate_gives_an_empty_list),
        CONFORMANCE_TEST(test_state_bytes_come_back_exactly),
        CONFORMANCE_TEST(test_existing_version_is_a_conflict_and_writes_nothing),
        CONFORMANCE_TEST(test_same_version_twice_in_one_call_is_a_conflict),
        CONFORMANCE_TEST(test_notification_ids_follow_insert_order),
        CONFORMANCE_TEST(test_select_notifications_start_limit_stop),
        CONFORMANCE_TEST(test_select_notifications_by_topic),
        CONFORMANCE_TEST(test_select_notifications_refuses_bad_arguments),
        CONFORMANCE_TEST(test_max_notification_id),
        CONFORMANCE_TEST(test_tracking_is_recorded_with_events),
        CONFORMANCE_TEST(test_duplicate_tracking_record_is_a_conflict),
        CONFORMANCE_TEST(test_tracking_record_without_events),
        CONFORMANCE_TEST(test_several_tracking_records_in_one_transaction),
        CONFORMANCE_TEST(test_concurrent_writers),
        CONFORMANCE_TEST(test_data_survives_close_and_reopen),
        CONFORMANCE_TEST(test_several_processes_write_at_once),
        CONFORMANCE_TEST(test_snapshots_are_kept_beside_the_events),
        CONFORMANCE_TEST(test_command_record_is_written_with_the_events),
        CONFORMANCE_TEST(test_expired_command_records_are_deleted),
        CONFORMANCE_TEST(test_one_of_many_writers_with_a_key_wins),
        CONFORMANCE_TEST(test_metrics_families),
    };
#undef CONFORMANCE_TEST
    return TESTUTIL_RUN_PER_BACKEND(argc, argv, "recorder conformance", backend_names, &backend,
                                    tests);
}
