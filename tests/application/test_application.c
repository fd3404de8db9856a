/* Tests of applications: methods by name with Python's argument binding,
 * the repository (save, get, versions, not found, conflicts), the recorded
 * listener, configuration by prefix, and exactly-once pull_and_process. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "esg/application.h"

#define NOTE "tests:Note"
#define NOTE_CREATED "tests:Note.Created"
#define NOTE_EDITED "tests:Note.Edited"
#define ECHO "tests:Echo"
#define ECHO_CREATED "tests:Echo.Created"

typedef struct note {
    char text[64]; /* the latest text */
} note;

static esg_status note_set_text(void *state, const esg_event *event, esg_error *err)
{
    const char *text = esg_value_as_string(esg_event_get(event, "text"), NULL);
    if (text == NULL)
        return esg_error_set(err, ESG_EINVAL, "a note's text must be a string");
    snprintf(((note *)state)->text, sizeof((note *)state)->text, "%s", text);
    return ESG_OK;
}

static const esg_event_type note_events[] = {{NOTE_CREATED, note_set_text},
                                             {NOTE_EDITED, note_set_text}};
static const esg_aggregate_type note_type = {
    .topic = NOTE, .state_size = sizeof(note), .event_types = note_events, .n_event_types = 2};
static const esg_event_type echo_events[] = {{ECHO_CREATED, NULL}};
static const esg_aggregate_type echo_type = {
    .topic = ECHO, .event_types = echo_events, .n_event_types = 1};

static esg_value *text_attributes(const esg_value *text)
{
    esg_value *attributes = esg_value_object();
    if (esg_object_set(attributes, "text", esg_value_copy(text)) != ESG_OK)
        return NULL;
    return attributes;
}

static esg_status create_note(esg_application *app, esg_value *const *params, esg_value **result,
                              esg_error *err)
{
    esg_aggregate *aggregate = NULL;
    esg_status rc = esg_aggregate_create(&note_type, NOTE_CREATED, NULL, text_attributes(params[0]),
                                         &aggregate, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &aggregate, 1, err);
    if (rc == ESG_OK)
        *result = esg_value_uuid(esg_aggregate_id(aggregate));
    esg_aggregate_free(aggregate);
    return rc;
}

/* edit(note_id, text, times=1) */
static esg_status edit(esg_application *app, esg_value *const *params, esg_value **result,
                       esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(params[0]);
    int64_t times = params[2] ? esg_value_as_int(params[2]) : 1;
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "note_id must be a UUID");
    esg_aggregate *aggregate = NULL;
    esg_status rc = esg_application_get(app, id, 0, &aggregate, err);
    for (int64_t i = 0; rc == ESG_OK && i < times; i++)
        rc = esg_aggregate_trigger(aggregate, NOTE_EDITED, text_attributes(params[1]), err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &aggregate, 1, err);
    if (rc == ESG_OK)
        *result = esg_value_int(esg_aggregate_version(aggregate));
    esg_aggregate_free(aggregate);
    return rc;
}

/* get_text(note_id, version=None) */
static esg_status get_text(esg_application *app, esg_value *const *params, esg_value **result,
                           esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(params[0]);
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "note_id must be a UUID");
    esg_aggregate *aggregate = NULL;
    esg_status rc =
        esg_application_get(app, id, params[1] ? esg_value_as_int(params[1]) : 0, &aggregate, err);
    if (rc == ESG_OK)
        *result = esg_value_string(((note *)esg_aggregate_state(aggregate))->text);
    esg_aggregate_free(aggregate);
    return rc;
}

static const char *const one_text[] = {"text"};
static const char *const edit_params[] = {"note_id", "text", "times"};
static const char *const get_params[] = {"note_id", "version"};
static const esg_method notes_methods[] = {
    {"create_note", one_text, 1, 1, create_note},
    {"edit", edit_params, 3, 2, edit},
    {"get_text", get_params, 2, 1, get_text},
};
static const esg_aggregate_type *const notes_aggregates[] = {&note_type};
static const esg_application_type notes_app = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Notes",
    .topic = "tests:Notes",
    .aggregate_types = notes_aggregates,
    .n_aggregate_types = 1,
    .methods = notes_methods,
    .n_methods = 3,
};

/* Echoes: one Echo per note created upstream; fails on a note whose text is "fail". */
static esg_status echoes_policy(esg_application *app, const esg_event *event,
                                esg_processing_event *processing, esg_error *err)
{
    (void)app;
    if (strcmp(event->topic, NOTE_CREATED) != 0)
        return ESG_OK;
    const char *text = esg_value_as_string(esg_event_get(event, "text"), NULL);
    if (text != NULL && strcmp(text, "fail") == 0)
        return esg_error_set(err, ESG_EINVAL, "the policy refuses 'fail'");
    char name[64];
    esg_uuid id;
    esg_uuid_str(&event->originator_id, name + snprintf(name, sizeof name, "/echoes/"));
    esg_uuid5_url(&id, name);
    esg_aggregate *echo = NULL;
    esg_status rc = esg_aggregate_create(&echo_type, ECHO_CREATED, &id, NULL, &echo, err);
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, echo, err);
    esg_aggregate_free(echo);
    return rc;
}

/* An application that only follows: topic "tests:<app_name>", one aggregate type, a policy. */
#define FOLLOWER_APPLICATION(app_name, aggregates, app_policy)                                     \
    {                                                                                              \
        .magic = ESG_APPLICATION_TYPE_MAGIC, .name = app_name, .topic = "tests:" app_name,         \
        .aggregate_types = aggregates, .n_aggregate_types = 1, .policy = app_policy,               \
    }

static const esg_aggregate_type *const echoes_aggregates[] = {&echo_type};
static const esg_application_type echoes_app =
    FOLLOWER_APPLICATION("Echoes", echoes_aggregates, echoes_policy);

/* The same, asking its leader for Note.Created alone (Python's follow_topics). */
static const esg_application_type created_echoes_app = {.magic = ESG_APPLICATION_TYPE_MAGIC,
                                                        .name = "Echoes",
                                                        .topic = "tests:CreatedEchoes",
                                                        .aggregate_types = echoes_aggregates,
                                                        .n_aggregate_types = 1,
                                                        .policy = echoes_policy,
                                                        .follow_topics = ESG_TOPICS(NOTE_CREATED)};

/* Tallies: counts every note event on one Tally aggregate, so that each notification's policy
 * depends on what the one before it did. On a note whose text is "interfere", a second writer
 * (tally_interferer, another application on the same database) counts too, first. */
#define TALLY "tests:Tally"
#define TALLY_STARTED "tests:Tally.Started"
#define TALLY_COUNTED "tests:Tally.Counted"

typedef struct tally {
    int64_t count;
} tally;

static esg_status tally_count(void *state, const esg_event *event, esg_error *err)
{
    (void)event;
    (void)err;
    ((tally *)state)->count++;
    return ESG_OK;
}

static const esg_event_type tally_events[] = {{TALLY_STARTED, NULL}, {TALLY_COUNTED, tally_count}};
static const esg_aggregate_type tally_type = {
    .topic = TALLY, .state_size = sizeof(tally), .event_types = tally_events, .n_event_types = 2};
static esg_application *tally_interferer;

static esg_uuid tally_id(void)
{
    esg_uuid id;
    esg_uuid5_url(&id, "/tally");
    return id;
}

/* The tally with one more count (pending), created when there is none. */
static esg_status tally_counted(esg_application *app, esg_aggregate **out, esg_error *err)
{
    esg_uuid id = tally_id();
    esg_status rc = esg_application_get(app, &id, 0, out, err);
    if (rc == ESG_ENOTFOUND)
        rc = esg_aggregate_create(&tally_type, TALLY_STARTED, &id, NULL, out, err);
    if (rc == ESG_OK)
        rc = esg_aggregate_trigger(*out, TALLY_COUNTED, NULL, err);
    return rc;
}

static esg_status tallies_policy(esg_application *app, const esg_event *event,
                                 esg_processing_event *processing, esg_error *err)
{
    const char *text = esg_value_as_string(esg_event_get(event, "text"), NULL);
    esg_aggregate *aggregate = NULL;
    esg_status rc = ESG_OK;
    if (text != NULL && strcmp(text, "interfere") == 0 && tally_interferer != NULL) {
        rc = tally_counted(tally_interferer, &aggregate, err);
        if (rc == ESG_OK)
            rc = esg_application_save(tally_interferer, &aggregate, 1, err);
        esg_aggregate_free(aggregate);
        aggregate = NULL;
    }
    if (rc == ESG_OK)
        rc = tally_counted(app, &aggregate, err);
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, aggregate, err);
    esg_aggregate_free(aggregate);
    return rc;
}

static const esg_aggregate_type *const tallies_aggregates[] = {&tally_type};
static const esg_application_type tallies_app =
    FOLLOWER_APPLICATION("Tallies", tallies_aggregates, tallies_policy);

typedef struct fixture {
    esg_env *env; /* in memory unless a test changes it */
    esg_application *notes;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    esg_error err;
    f->env = testutil_env_new();
    assert_esg_ok(esg_application_new(&notes_app, f->env, &f->notes, &err), &err);
    *state = f;
    return 0;
}

/* The same, with the process applications' recorders on SQLite (which records a page of
 * notifications in one transaction). */
static int setup_sqlite_followers(void **state)
{
    setup(state);
    fixture *f = *state;
    testutil_env_use_sqlite(f->env, "Echoes", ":memory:");
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_application_free(f->notes);
    esg_env_free(f->env);
    free(f);
    return 0;
}

/* Calls method with JSON args and kwargs; returns the status, *json the result. */
static esg_status call(esg_application *app, const char *method, const char *args,
                       const char *kwargs, char **json, esg_error *err)
{
    size_t len;
    return esg_application_call_json(app, method, args, args ? strlen(args) : 0, kwargs,
                                     kwargs ? strlen(kwargs) : 0, json, &len, err);
}

static char *create(esg_application *app, const char *text)
{
    char args[128], *id = NULL;
    esg_error err;
    snprintf(args, sizeof args, "[\"%s\"]", text);
    assert_esg_ok(call(app, "create_note", args, "{}", &id, &err), &err);
    return id; /* {"_type_":"uuid_hex",...} */
}

static void expect_call_error(esg_application *app, const char *method, const char *args,
                              const char *kwargs, esg_status status, const char *message)
{
    char *json = NULL;
    esg_error err;
    esg_status rc = call(app, method, args, kwargs, &json, &err);
    if (rc != status || strstr(err.message, message) == NULL)
        fail_msg("%s(%s, %s): %s '%s', expected %s '%s'", method, args, kwargs, esg_status_name(rc),
                 err.message, esg_status_name(status), message);
    assert_null(json);
}

static void test_methods_bind_arguments_like_python(void **state)
{
    fixture *f = *state;
    char *id = create(f->notes, "hello");
    char args[256], kwargs[256], *json = NULL;
    esg_error err;

    snprintf(args, sizeof args, "[%s]", id);
    assert_esg_ok(call(f->notes, "get_text", args, NULL, &json, &err), &err);
    assert_string_equal(json, "\"hello\"");
    free(json);
    snprintf(kwargs, sizeof kwargs, "{\"note_id\":%s}", id);
    assert_esg_ok(call(f->notes, "get_text", "[]", kwargs, &json, &err), &err);
    assert_string_equal(json, "\"hello\"");
    free(json);
    snprintf(args, sizeof args, "[%s,\"bye\"]", id);
    assert_esg_ok(call(f->notes, "edit", args, "{\"times\":2}", &json, &err), &err);
    assert_string_equal(json, "3");
    free(json);

    expect_call_error(f->notes, "get_text", "[]", "{}", ESG_EINVAL,
                      "get_text() missing 1 required positional argument: 'note_id'");
    snprintf(args, sizeof args, "[%s,1,2]", id);
    expect_call_error(f->notes, "get_text", args, "{}", ESG_EINVAL,
                      "get_text() takes from 1 to 2 positional arguments but 3 were given");
    expect_call_error(f->notes, "create_note", "[\"a\",\"b\"]", "{}", ESG_EINVAL,
                      "create_note() takes 1 positional argument but 2 were given");
    snprintf(args, sizeof args, "[%s]", id);
    expect_call_error(f->notes, "get_text", args, kwargs, ESG_EINVAL,
                      "get_text() got multiple values for argument 'note_id'");
    expect_call_error(f->notes, "get_text", "[]", "{\"nope\":1}", ESG_EINVAL,
                      "get_text() got an unexpected keyword argument 'nope'");
    expect_call_error(f->notes, "get_text", "{}", "{}", ESG_EINVAL, "args must be a JSON array");
    expect_call_error(f->notes, "get_text", "[]", "[]", ESG_EINVAL, "kwargs must be a JSON object");
    expect_call_error(f->notes, "get_text", "[1,", "{}", ESG_EINVAL, "invalid JSON");
    expect_call_error(f->notes, "nope", "[]", "{}", ESG_EUNIMPLEMENTED,
                      "Notes has no method 'nope'");
    expect_call_error(f->notes, "get_text", "[\"x\"]", "{}", ESG_EINVAL, "note_id must be a UUID");
    free(id);
}

static void test_repository_get_versions_and_not_found(void **state)
{
    fixture *f = *state;
    char *id = create(f->notes, "v1");
    char args[256], *json = NULL;
    esg_error err;
    snprintf(args, sizeof args, "[%s,\"v2\"]", id);
    assert_esg_ok(call(f->notes, "edit", args, NULL, &json, &err), &err);
    free(json);
    snprintf(args, sizeof args, "[%s,1]", id);
    assert_esg_ok(call(f->notes, "get_text", args, NULL, &json, &err), &err);
    assert_string_equal(json, "\"v1\"");
    free(json);
    snprintf(args, sizeof args, "[%s]", id);
    assert_esg_ok(call(f->notes, "get_text", args, NULL, &json, &err), &err);
    assert_string_equal(json, "\"v2\"");
    free(json);
    expect_call_error(f->notes, "get_text",
                      "[{\"_type_\":\"uuid_hex\",\"_data_\":\"00000000000000000000000000000001\"}]",
                      NULL, ESG_ENOTFOUND,
                      "aggregate 00000000-0000-0000-0000-000000000001 not found in Notes");
    free(id);
}

static void test_concurrent_change_is_a_conflict(void **state)
{
    fixture *f = *state;
    esg_aggregate *first = NULL, *second = NULL;
    esg_error err;
    esg_value *text = esg_value_string("x");
    assert_esg_ok(
        esg_aggregate_create(&note_type, NOTE_CREATED, NULL, text_attributes(text), &first, &err),
        &err);
    assert_esg_ok(esg_application_save(f->notes, &first, 1, &err), &err);
    assert_esg_ok(esg_application_get(f->notes, esg_aggregate_id(first), 0, &second, &err), &err);
    assert_esg_ok(esg_aggregate_trigger(first, NOTE_EDITED, text_attributes(text), &err), &err);
    assert_esg_ok(esg_aggregate_trigger(second, NOTE_EDITED, text_attributes(text), &err), &err);
    assert_esg_ok(esg_application_save(f->notes, &first, 1, &err), &err);
    assert_int_equal(esg_application_save(f->notes, &second, 1, &err), ESG_ECONFLICT);
    assert_int_equal(esg_aggregate_n_pending(second), 0);
    esg_value_free(text);
    esg_aggregate_free(first);
    esg_aggregate_free(second);
}

static void on_recorded(void *ctx, esg_application *app, int64_t max_id)
{
    (void)app;
    *(int64_t *)ctx = max_id;
}

static void test_listener_hears_each_write(void **state)
{
    fixture *f = *state;
    int64_t heard = 0;
    esg_application_set_recorded_listener(f->notes, on_recorded, &heard);
    free(create(f->notes, "a"));
    assert_int_equal(heard, 1);
    free(create(f->notes, "b"));
    assert_int_equal(heard, 2);
    esg_application_set_recorded_listener(f->notes, NULL, NULL);
    free(create(f->notes, "c"));
    assert_int_equal(heard, 2);
}

static void test_persistence_settings_use_the_name_as_prefix(void **state)
{
    (void)state;
    char *dir = testutil_make_temp_dir(), path[1100];
    snprintf(path, sizeof path, "%s/notes.db", dir);
    esg_env *env = testutil_env_new();
    esg_error err;
    testutil_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.popo");
    testutil_env_set(env, "NOTES_PERSISTENCE_MODULE", "eventsourcing.sqlite");
    testutil_env_set(env, "NOTES_SQLITE_DBNAME", path);
    esg_application *notes = NULL, *echoes = NULL;
    assert_esg_ok(esg_application_new(&notes_app, env, &notes, &err), &err);
    assert_esg_ok(esg_application_new(&echoes_app, env, &echoes, &err), &err);
    assert_string_equal(esg_recorder_backend(esg_application_recorder(notes)),
                        "eventsourcing.sqlite");
    assert_string_equal(esg_recorder_backend(esg_application_recorder(echoes)),
                        "eventsourcing.popo");
    esg_application_free(notes);
    esg_application_free(echoes);
    esg_env_unset(env, "NOTES_SQLITE_DBNAME");
    assert_int_equal(esg_application_new(&notes_app, env, &notes, &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "NOTES_SQLITE_DBNAME"));
    esg_env_free(env);
    testutil_discard_temp_dir(dir);
}

/* A log over a leader that returns every notification whatever start and topics say. */
static esg_status careless_select(void *ctx, int64_t start, int64_t limit,
                                  const char *const *topics, size_t n_topics,
                                  esg_notification_list *out, esg_error *err)
{
    (void)start;
    (void)topics;
    (void)n_topics;
    return esg_application_select_notifications(ctx, 1, limit, 0, NULL, 0, out, err);
}

static void test_pull_and_process_exactly_once(void **state)
{
    fixture *f = *state;
    esg_application *echoes = NULL;
    esg_error err;
    assert_esg_ok(esg_application_new(&echoes_app, f->env, &echoes, &err), &err);
    esg_notification_log log;
    esg_application_local_log(f->notes, &log);
    assert_string_equal(log.leader_name, "Notes");

    for (int i = 0; i < 150; i++)
        free(create(f->notes, "n")); /* more than one batch */
    char *id = create(f->notes, "edited");
    char args[256], *json = NULL;
    snprintf(args, sizeof args, "[%s,\"e\"]", id);
    assert_esg_ok(call(f->notes, "edit", args, NULL, &json, &err), &err);
    free(json);
    free(id);

    int64_t n = -1;
    assert_esg_ok(esg_application_pull_and_process(echoes, &log, &n, &err), &err);
    assert_int_equal(n, 152);
    assert_int_equal(testutil_max_notification_id(echoes), 151); /* the edit makes no echo */
    assert_int_equal(testutil_max_tracking_id(echoes, "Notes"), 152);

    assert_esg_ok(esg_application_pull_and_process(echoes, &log, &n, &err), &err);
    assert_int_equal(n, 0);
    esg_notification_log careless = {
        .leader_name = "Notes", .select = careless_select, .ctx = f->notes};
    assert_esg_ok(esg_application_pull_and_process(echoes, &careless, &n, &err), &err);
    assert_int_equal(n, 0);
    assert_int_equal(testutil_max_notification_id(echoes), 151);

    /* A policy failure stops at that notification and records nothing for it. */
    free(create(f->notes, "fail"));
    assert_int_equal(esg_application_pull_and_process(echoes, &log, &n, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "refuses"));
    assert_int_equal(testutil_max_notification_id(echoes), 151);
    assert_int_equal(testutil_max_tracking_id(echoes, "Notes"), 152);

    /* Not a process application. */
    assert_int_equal(esg_application_pull_and_process(f->notes, &log, &n, &err), ESG_EINVAL);
    esg_application_free(echoes);
}

/* A log over Notes that notes what it is asked for, and ignores the topics when careless. */
typedef struct asked_log {
    esg_application *notes;
    bool is_careless;
    int64_t last_start;
    size_t last_n_topics;
    const char *last_topic; /* the first topic asked for */
} asked_log;

static esg_status asked_select(void *ctx, int64_t start, int64_t limit, const char *const *topics,
                               size_t n_topics, esg_notification_list *out, esg_error *err)
{
    asked_log *log = ctx;
    log->last_start = start;
    log->last_n_topics = n_topics;
    log->last_topic = n_topics > 0 ? topics[0] : NULL;
    if (log->is_careless)
        return esg_application_select_notifications(log->notes, 1, limit, 0, NULL, 0, out, err);
    return esg_application_select_notifications(log->notes, start, limit, 0, topics, n_topics, out,
                                                err);
}

static bool is_tracked(esg_application *app, int64_t id)
{
    esg_error err = {0};
    bool is_tracked = false;
    assert_esg_ok(
        esg_recorder_has_tracking_id(esg_application_recorder(app), "Notes", id, &is_tracked, &err),
        &err);
    return is_tracked;
}

/* follow_topics: the follower asks its leader for those topics only, processes and tracks
 * nothing else (also from a log that sends everything), and its next pull starts after the
 * last notification it processed, as the reference's does. */
static void test_follow_topics(void **state)
{
    fixture *f = *state;
    esg_application *echoes = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_application_new(&created_echoes_app, f->env, &echoes, &err), &err);
    char *ids[3];
    for (size_t i = 0; i < 3; i++)
        ids[i] = create(f->notes, "n"); /* 1, 2, 3 */
    char args[256], *json = NULL;
    snprintf(args, sizeof args, "[%s,\"e\"]", ids[0]);
    assert_esg_ok(call(f->notes, "edit", args, NULL, &json, &err), &err); /* 4: Note.Edited */
    free(json);
    free(create(f->notes, "n")); /* 5 */

    asked_log asked = {.notes = f->notes};
    esg_notification_log log = {.leader_name = "Notes", .select = asked_select, .ctx = &asked};
    int64_t n = -1;
    assert_esg_ok(esg_application_pull_and_process(echoes, &log, &n, &err), &err);
    assert_int_equal(asked.last_n_topics, 1);
    assert_string_equal(asked.last_topic, NOTE_CREATED);
    assert_int_equal(n, 4);
    assert_int_equal(testutil_max_notification_id(echoes), 4);
    assert_int_equal(testutil_max_tracking_id(echoes, "Notes"), 5);
    assert_false(is_tracked(echoes, 4));

    /* An edit after the last note: not asked for, not tracked; the next pull asks from 6. */
    assert_esg_ok(call(f->notes, "edit", args, NULL, &json, &err), &err); /* 6 */
    free(json);
    assert_esg_ok(esg_application_pull_and_process(echoes, &log, &n, &err), &err);
    assert_int_equal(n, 0);
    assert_int_equal(asked.last_start, 6);
    assert_int_equal(testutil_max_tracking_id(echoes, "Notes"), 5);

    /* A log that sends every topic from the start: still nothing else reaches the policy. */
    asked.is_careless = true;
    free(create(f->notes, "n")); /* 7 */
    assert_esg_ok(esg_application_pull_and_process(echoes, &log, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(testutil_max_tracking_id(echoes, "Notes"), 7);
    assert_false(is_tracked(echoes, 4));
    assert_false(is_tracked(echoes, 6));
    assert_int_equal(testutil_max_notification_id(echoes), 5);
    for (size_t i = 0; i < 3; i++)
        free(ids[i]);
    esg_application_free(echoes);
}

/* A listener that counts the writes it hears of. */
static void count_recorded(void *ctx, esg_application *app, int64_t max_id)
{
    (void)app;
    (void)max_id;
    (*(int64_t *)ctx)++;
}

/* The tally's count and version as app sees it. */
static void expect_tally(esg_application *app, int64_t count, int64_t version)
{
    esg_uuid id = tally_id();
    esg_aggregate *aggregate = NULL;
    esg_error err;
    assert_esg_ok(esg_application_get(app, &id, 0, &aggregate, &err), &err);
    assert_int_equal(((tally *)esg_aggregate_state(aggregate))->count, count);
    assert_int_equal(esg_aggregate_version(aggregate), version);
    esg_aggregate_free(aggregate);
}

/* On SQLite a pull records a page in one transaction; each policy still sees what the ones
 * before it in the page did, and another writer's change in between sends the page one by one. */
static void test_pull_records_a_page_at_once_as_if_one_by_one(void **state)
{
    fixture *f = *state;
    char *dir = testutil_make_temp_dir(), path[1100];
    snprintf(path, sizeof path, "%s/tallies.db", dir);
    esg_env *env = testutil_env_new();
    esg_error err;
    testutil_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.sqlite");
    testutil_env_set(env, "SQLITE_DBNAME", path);
    esg_application *tallies = NULL;
    assert_esg_ok(esg_application_new(&tallies_app, env, &tallies, &err), &err);
    assert_esg_ok(esg_application_new(&tallies_app, env, &tally_interferer, &err), &err);
    assert_true(esg_recorder_can_track_many(esg_application_recorder(tallies)));
    int64_t heard = 0, n = -1;
    esg_application_set_recorded_listener(tallies, count_recorded, &heard);
    esg_notification_log log;
    esg_application_local_log(f->notes, &log);

    /* Five notes in one page: one commit, each count on top of the one before. */
    const char *const texts[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        free(create(f->notes, texts[i]));
    assert_esg_ok(esg_application_pull_and_process(tallies, &log, &n, &err), &err);
    assert_int_equal(n, 5);
    assert_int_equal(heard, 1);
    expect_tally(tallies, 5, 6);

    /* Another writer counts while the page is processed: the page's commit would conflict, so
     * it goes one by one (the policy runs again, and so does the interference). */
    free(create(f->notes, "f"));
    free(create(f->notes, "interfere"));
    free(create(f->notes, "g"));
    heard = 0;
    assert_esg_ok(esg_application_pull_and_process(tallies, &log, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_int_equal(heard, 3);
    expect_tally(tallies, 5 + 3 + 2, 11);
    assert_int_equal(testutil_max_tracking_id(tallies, "Notes"), 8);

    /* Nothing new: nothing processed, nothing written. */
    heard = 0;
    assert_esg_ok(esg_application_pull_and_process(tallies, &log, &n, &err), &err);
    assert_int_equal(n, 0);
    assert_int_equal(heard, 0);

    /* Durable: a new application on the database sees the same. */
    esg_application_free(tally_interferer);
    tally_interferer = NULL;
    esg_application_free(tallies);
    assert_esg_ok(esg_application_new(&tallies_app, env, &tallies, &err), &err);
    expect_tally(tallies, 10, 11);
    esg_application_free(tallies);
    esg_env_free(env);
    testutil_discard_temp_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_methods_bind_arguments_like_python, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repository_get_versions_and_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_change_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_hears_each_write, setup, teardown),
        cmocka_unit_test(test_persistence_settings_use_the_name_as_prefix),
        cmocka_unit_test_setup_teardown(test_pull_and_process_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_topics, setup_sqlite_followers, teardown),
        cmocka_unit_test_setup_teardown(test_pull_and_process_exactly_once, setup_sqlite_followers,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pull_records_a_page_at_once_as_if_one_by_one, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("application", tests, NULL, NULL);
}
