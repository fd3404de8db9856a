/* Tests of systems: the graph queries of Python's System on small systems of
 * test applications defined here (Pings, Pongs, Counts, ...), and the
 * single-threaded runner on the in-memory and SQLite backends: one-way pipes,
 * chains, cycles, exactly-once across restarts, catching up, failing policies. */
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/system.h"

#define MODULE "tests.system"
#define PING MODULE ":Ping"
#define PING_CREATED MODULE ":Ping.Created"
#define PING_PONGED MODULE ":Ping.Ponged"
#define PONG MODULE ":Pong"
#define PONG_CREATED MODULE ":Pong.Created"
#define ECHO MODULE ":Echo"
#define ECHO_CREATED MODULE ":Echo.Created"
#define TICK MODULE ":Tick"
#define TICK_CREATED MODULE ":Tick.Created"

/* ---- Aggregates ------------------------------------------------------------ */

typedef struct ping_state {
    int64_t remaining; /* how many more pings the Pongs -> Pings cycle makes after this one */
    bool is_ponged;    /* set by Ping.Ponged */
} ping_state;

typedef struct tick_state {
    int64_t n; /* ticks still to come after this one */
} tick_state;

static esg_status ping_created(void *state, const esg_event *event, esg_error *err)
{
    (void)err;
    ((ping_state *)state)->remaining = esg_value_as_int(esg_event_get(event, "remaining"));
    return ESG_OK;
}

static esg_status ping_ponged(void *state, const esg_event *event, esg_error *err)
{
    (void)event;
    (void)err;
    ((ping_state *)state)->is_ponged = true;
    return ESG_OK;
}

static esg_status tick_created(void *state, const esg_event *event, esg_error *err)
{
    (void)err;
    ((tick_state *)state)->n = esg_value_as_int(esg_event_get(event, "n"));
    return ESG_OK;
}

static const esg_event_type ping_events[] = {{PING_CREATED, ping_created},
                                             {PING_PONGED, ping_ponged}};
static const esg_aggregate_type ping_type = {.topic = PING,
                                             .state_size = sizeof(ping_state),
                                             .event_types = ping_events,
                                             .n_event_types = 2};
static const esg_event_type pong_events[] = {{PONG_CREATED, NULL}};
static const esg_aggregate_type pong_type = {
    .topic = PONG, .event_types = pong_events, .n_event_types = 1};
static const esg_event_type echo_events[] = {{ECHO_CREATED, NULL}};
static const esg_aggregate_type echo_type = {
    .topic = ECHO, .event_types = echo_events, .n_event_types = 1};
static const esg_event_type tick_events[] = {{TICK_CREATED, tick_created}};
static const esg_aggregate_type tick_type = {.topic = TICK,
                                             .state_size = sizeof(tick_state),
                                             .event_types = tick_events,
                                             .n_event_types = 1};

/* ---- Helpers of the test applications -------------------------------------- */

/* A test application type: topic MODULE ":<app_name>", one aggregate type, methods and policy
 * from arrays and functions of this file. */
#define APPLICATION(app_name, aggregates, app_methods, app_policy)                                 \
    {                                                                                              \
        .magic = ESG_APPLICATION_TYPE_MAGIC, .name = app_name, .topic = MODULE ":" app_name,       \
        .aggregate_types = aggregates, .n_aggregate_types = 1, .methods = app_methods,             \
        .n_methods = sizeof app_methods / sizeof app_methods[0], .policy = app_policy,             \
    }

/* uuid5(NAMESPACE_URL, "/<path>/<id>/"): the same input always gives the same id. */
static void derived_id(const char *path, const esg_uuid *from, esg_uuid *out)
{
    char text[ESG_UUID_STR_SIZE], name[128];
    esg_uuid_str(from, text);
    snprintf(name, sizeof name, "/%s/%s/", path, text);
    esg_uuid5_url(out, name);
}

/* Creates an aggregate with attributes (taken) and hands it to processing. */
static esg_status create_and_collect(const esg_aggregate_type *type, const char *created_topic,
                                     const esg_uuid *id, esg_value *attributes,
                                     esg_processing_event *processing, esg_error *err)
{
    esg_aggregate *aggregate = NULL;
    esg_status rc = esg_aggregate_create(type, created_topic, id, attributes, &aggregate, err);
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, aggregate, err);
    esg_aggregate_free(aggregate);
    return rc;
}

static esg_value *int_attribute(const char *name, int64_t i)
{
    esg_value *attributes = esg_value_object();
    if (attributes != NULL && esg_object_set(attributes, name, esg_value_int(i)) != ESG_OK) {
        esg_value_free(attributes);
        return NULL;
    }
    return attributes;
}

static esg_status uuid_param(const esg_value *value, esg_uuid *out, esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(value);
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "expected a UUID");
    *out = *id;
    return ESG_OK;
}

/* ---- Pings: ping() creates a Ping; follows Pongs to mark pings ponged ------- */

static esg_status ping_method(esg_application *app, esg_value *const *params, esg_value **result,
                              esg_error *err)
{
    int64_t remaining = params[0] != NULL ? esg_value_as_int(params[0]) : 0;
    esg_aggregate *ping = NULL;
    esg_status rc = esg_aggregate_create(&ping_type, PING_CREATED, NULL,
                                         int_attribute("remaining", remaining), &ping, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &ping, 1, err);
    if (rc == ESG_OK)
        *result = esg_value_uuid(esg_aggregate_id(ping));
    esg_aggregate_free(ping);
    return rc;
}

static esg_status is_ponged_method(esg_application *app, esg_value *const *params,
                                   esg_value **result, esg_error *err)
{
    esg_uuid id;
    esg_aggregate *ping = NULL;
    esg_status rc = uuid_param(params[0], &id, err);
    if (rc == ESG_OK)
        rc = esg_application_get(app, &id, 0, &ping, err);
    if (rc == ESG_OK)
        *result = esg_value_bool(((ping_state *)esg_aggregate_state(ping))->is_ponged);
    esg_aggregate_free(ping);
    return rc;
}

/* On Pong.Created: the ping is ponged, and while pings remain a new one starts,
 * so that one call can bounce between Pings and Pongs many times. */
static esg_status pings_policy(esg_application *app, const esg_event *event,
                               esg_processing_event *processing, esg_error *err)
{
    if (strcmp(event->topic, PONG_CREATED) != 0)
        return ESG_OK;
    esg_uuid ping_id, next_id;
    esg_aggregate *ping = NULL;
    esg_status rc = uuid_param(esg_event_get(event, "ping_id"), &ping_id, err);
    if (rc == ESG_OK)
        rc = esg_application_get(app, &ping_id, 0, &ping, err);
    if (rc == ESG_OK) {
        esg_value *attributes = esg_value_object();
        esg_object_set(attributes, "pong_id", esg_value_uuid(&event->originator_id));
        rc = esg_aggregate_trigger(ping, PING_PONGED, attributes, err);
    }
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, ping, err);
    int64_t remaining = esg_value_as_int(esg_event_get(event, "remaining"));
    if (rc == ESG_OK && remaining > 0) {
        derived_id("pings", &event->originator_id, &next_id);
        rc = create_and_collect(&ping_type, PING_CREATED, &next_id,
                                int_attribute("remaining", remaining - 1), processing, err);
    }
    esg_aggregate_free(ping);
    return rc;
}

static const char *const ping_params[] = {"remaining"};
static const char *const ping_id_params[] = {"ping_id"};
static const esg_method pings_methods[] = {
    {"ping", ping_params, 1, 0, ping_method},
    {"is_ponged", ping_id_params, 1, 1, is_ponged_method},
    {"count", NULL, 0, 0, testutil_count_method},
};
static const esg_aggregate_type *const pings_aggregates[] = {&ping_type};
static const esg_application_type pings_type =
    APPLICATION("Pings", pings_aggregates, pings_methods, pings_policy);

/* ---- Pongs: a Pong for each new Ping ------------------------------------------ */

/* Frame addresses of the Pongs policy, by the ping's remaining count: the
 * runner must call it at one depth however long the cycle runs. */
#define N_FRAMES 64
static uintptr_t pong_frames[N_FRAMES];

static esg_status pongs_policy(esg_application *app, const esg_event *event,
                               esg_processing_event *processing, esg_error *err)
{
    (void)app;
    if (strcmp(event->topic, PING_CREATED) != 0)
        return ESG_OK;
    int64_t remaining = esg_value_as_int(esg_event_get(event, "remaining"));
    if (remaining >= 0 && remaining < N_FRAMES)
        pong_frames[remaining] = (uintptr_t)__builtin_frame_address(0);
    esg_uuid pong_id;
    derived_id("pongs", &event->originator_id, &pong_id);
    esg_value *attributes = int_attribute("remaining", remaining);
    esg_object_set(attributes, "ping_id", esg_value_uuid(&event->originator_id));
    return create_and_collect(&pong_type, PONG_CREATED, &pong_id, attributes, processing, err);
}

static esg_status has_pong_method(esg_application *app, esg_value *const *params,
                                  esg_value **result, esg_error *err)
{
    esg_uuid ping_id, pong_id;
    esg_aggregate *pong = NULL;
    esg_status rc = uuid_param(params[0], &ping_id, err);
    if (rc != ESG_OK)
        return rc;
    derived_id("pongs", &ping_id, &pong_id);
    rc = esg_application_get(app, &pong_id, 0, &pong, err);
    esg_aggregate_free(pong);
    if (rc == ESG_ENOTFOUND) {
        *result = esg_value_bool(false);
        return ESG_OK;
    }
    if (rc == ESG_OK)
        *result = esg_value_bool(true);
    return rc;
}

static const esg_method pongs_methods[] = {
    {"has_pong", ping_id_params, 1, 1, has_pong_method},
    {"count", NULL, 0, 0, testutil_count_method},
};
static const esg_aggregate_type *const pongs_aggregates[] = {&pong_type};
static const esg_application_type pongs_type =
    APPLICATION("Pongs", pongs_aggregates, pongs_methods, pongs_policy);

/* Another type that calls itself "Pongs": a system must refuse both at once. */
static const esg_application_type impostor_pongs_type = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Pongs",
    .topic = MODULE ":ImpostorPongs",
    .methods = pongs_methods,
    .n_methods = 2,
    .policy = pongs_policy,
};

/* ---- Echo applications: an Echo for every event they follow ------------------- */

/* Makes the policy of every application called "Flaky" fail, and counts the
 * failures so that each one's message differs. One thread only. */
static bool flaky_fails;
static int flaky_failures;

static esg_status echo_policy(esg_application *app, const esg_event *event,
                              esg_processing_event *processing, esg_error *err)
{
    const char *name = esg_application_name(app);
    if (strcmp(name, "Flaky") == 0 && flaky_fails)
        return esg_error_set(err, ESG_EINTERNAL, "flaky policy failed on purpose (#%d)",
                             ++flaky_failures);
    char text[ESG_UUID_HEX_SIZE], path[128];
    esg_uuid echo_id;
    esg_uuid_hex(&event->originator_id, text);
    snprintf(path, sizeof path, "/%s/%s/%lld/", name, text, (long long)event->originator_version);
    esg_uuid5_url(&echo_id, path);
    esg_value *attributes = esg_value_object();
    esg_object_set(attributes, "of", esg_value_uuid(&event->originator_id));
    esg_object_set(attributes, "topic", esg_value_string(event->topic));
    return create_and_collect(&echo_type, ECHO_CREATED, &echo_id, attributes, processing, err);
}

static const esg_method echo_methods[] = {{"count", NULL, 0, 0, testutil_count_method}};
static const esg_aggregate_type *const echo_aggregates[] = {&echo_type};
static const esg_application_type counts_type =
    APPLICATION("Counts", echo_aggregates, echo_methods, echo_policy);
static const esg_application_type echoes_type =
    APPLICATION("Echoes", echo_aggregates, echo_methods, echo_policy);
static const esg_application_type flaky_type =
    APPLICATION("Flaky", echo_aggregates, echo_methods, echo_policy);

/* ---- Countdown: follows itself, a Tick n-1 for each Tick n > 0 --------------- */

static esg_status start_method(esg_application *app, esg_value *const *params, esg_value **result,
                               esg_error *err)
{
    esg_aggregate *tick = NULL;
    esg_status rc =
        esg_aggregate_create(&tick_type, TICK_CREATED, NULL,
                             int_attribute("n", esg_value_as_int(params[0])), &tick, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &tick, 1, err);
    if (rc == ESG_OK)
        *result = esg_value_uuid(esg_aggregate_id(tick));
    esg_aggregate_free(tick);
    return rc;
}

static esg_status countdown_policy(esg_application *app, const esg_event *event,
                                   esg_processing_event *processing, esg_error *err)
{
    (void)app;
    int64_t n = esg_value_as_int(esg_event_get(event, "n"));
    if (strcmp(event->topic, TICK_CREATED) != 0 || n <= 0)
        return ESG_OK;
    esg_uuid next_id;
    derived_id("ticks", &event->originator_id, &next_id);
    return create_and_collect(&tick_type, TICK_CREATED, &next_id, int_attribute("n", n - 1),
                              processing, err);
}

static const char *const start_params[] = {"n"};
static const esg_method countdown_methods[] = {
    {"start", start_params, 1, 1, start_method},
    {"count", NULL, 0, 0, testutil_count_method},
};
static const esg_aggregate_type *const countdown_aggregates[] = {&tick_type};
static const esg_application_type countdown_type =
    APPLICATION("Countdown", countdown_aggregates, countdown_methods, countdown_policy);

/* ---- Plain: no policy, so it cannot follow ----------------------------------- */

static const esg_application_type plain_type = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Plain",
    .topic = MODULE ":Plain",
    .methods = echo_methods,
    .n_methods = 1,
};

/* ---- Systems ------------------------------------------------------------------- */

typedef const esg_application_type *const app_list[];

/* A pipe or a system written inline; the arrays live as long as the enclosing block. */
#define PIPE(...)                                                                                  \
    {                                                                                              \
        (app_list){__VA_ARGS__}, sizeof((app_list){__VA_ARGS__}) / sizeof(esg_application_type *)  \
    }
#define SYSTEM(...)                                                                                \
    {                                                                                              \
        ESG_SYSTEM_DEF_MAGIC, MODULE ":system", (const esg_pipe[]){__VA_ARGS__},                   \
            sizeof((const esg_pipe[]){__VA_ARGS__}) / sizeof(esg_pipe)                             \
    }

/* ---- Fixture -------------------------------------------------------------------- */

/* A fresh folder for this test's database files, and the environment every runner of the test
 * is started with: SQLite files in the folder, or memory. */
typedef testutil_fixture fixture;

static const char *const app_names[] = {"Pings", "Pongs",     "Counts", "Echoes",
                                        "Flaky", "Countdown", "Plain"};

static int setup_with(void **state, bool is_sqlite)
{
    testutil_setup(state);
    fixture *f = *state;
    if (is_sqlite)
        testutil_env_use_sqlite_dir(f->env, f->temp_dir, app_names,
                                    sizeof app_names / sizeof app_names[0]);
    else
        testutil_env_set(f->env, "PERSISTENCE_MODULE", "eventsourcing.popo");
    flaky_fails = false;
    flaky_failures = 0;
    memset(pong_frames, 0, sizeof pong_frames);
    return 0;
}

static int setup_popo(void **state)
{
    return setup_with(state, false);
}

static int setup_sqlite(void **state)
{
    return setup_with(state, true);
}

/* ---- Assertions ------------------------------------------------------------------ */

/* Asserts that a name list is exactly expected (NULL-terminated), in order. */
static void assert_names(const char *const *list, size_t n, const char *const *expected)
{
    size_t n_expected = 0;
    while (expected[n_expected] != NULL)
        n_expected++;
    assert_non_null(list);
    if (n != n_expected) {
        char got[256] = "";
        for (size_t i = 0; i < n; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", list[i]);
        fail_msg("expected %zu names, got %zu: %s", n_expected, n, got);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i], expected[i]);
}

typedef const char *const *(*list_fn)(const esg_system *system, size_t *n);
typedef const char *const *(*named_list_fn)(const esg_system *system, const char *name, size_t *n);

/* Asserts what a role list of the system holds. */
static void assert_list(const esg_system *system, list_fn query, const char *const *expected)
{
    size_t n = 99; /* must be overwritten, also with 0 */
    const char *const *list = query(system, &n);
    assert_names(list, n, expected);
}

/* Asserts what name leads or follows. */
static void assert_named_list(const esg_system *system, named_list_fn query, const char *name,
                              const char *const *expected)
{
    size_t n = 99;
    const char *const *list = query(system, name, &n);
    assert_names(list, n, expected);
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_NAMES ((const char *const[]){NULL})

static void assert_edge(const esg_system *system, size_t i, const char *leader,
                        const char *follower)
{
    const char *got_leader = NULL, *got_follower = NULL;
    esg_system_edge(system, i, &got_leader, &got_follower);
    assert_non_null(got_leader);
    assert_non_null(got_follower);
    assert_string_equal(got_leader, leader);
    assert_string_equal(got_follower, follower);
}

static esg_system *new_system(const esg_system_def *def)
{
    esg_error err = {0};
    esg_system *system = NULL;
    assert_esg_ok(esg_system_new(def, &system, &err), &err);
    assert_non_null(system);
    return system;
}

/* ---- Graph queries ------------------------------------------------------------------ */

static void test_graph_of_example_shape(void **state)
{
    (void)state;
    const esg_system_def def =
        SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type, &counts_type, &pings_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Pings", "Pongs", "Counts"));
    assert_int_equal(esg_system_n_edges(system), 4);
    assert_edge(system, 0, "Pings", "Pongs");
    assert_edge(system, 1, "Pongs", "Pings");
    assert_edge(system, 2, "Pings", "Counts");
    assert_edge(system, 3, "Counts", "Pings");
    assert_named_list(system, esg_system_leads, "Pings", NAMES("Pongs", "Counts"));
    assert_named_list(system, esg_system_follows, "Pings", NAMES("Pongs", "Counts"));
    assert_named_list(system, esg_system_leads, "Pongs", NAMES("Pings"));
    assert_named_list(system, esg_system_follows, "Pongs", NAMES("Pings"));
    assert_named_list(system, esg_system_leads, "Counts", NAMES("Pings"));
    assert_named_list(system, esg_system_follows, "Counts", NAMES("Pings"));
    assert_list(system, esg_system_leaders, NAMES("Pings", "Pongs", "Counts"));
    assert_list(system, esg_system_followers, NAMES("Pings", "Pongs", "Counts"));
    assert_list(system, esg_system_leaders_only, NO_NAMES);
    assert_list(system, esg_system_singles, NO_NAMES);
    assert_ptr_equal(esg_system_get_type(system, "Pings"), &pings_type);
    assert_ptr_equal(esg_system_get_type(system, "Pongs"), &pongs_type);
    assert_ptr_equal(esg_system_get_type(system, "Counts"), &counts_type);
    assert_null(esg_system_get_type(system, "Nobody"));
    /* Unknown names give empty lists, not NULL. */
    assert_named_list(system, esg_system_leads, "Nobody", NO_NAMES);
    assert_named_list(system, esg_system_follows, "Nobody", NO_NAMES);
    /* Past the last edge: NULLs, no read out of bounds. */
    const char *leader = "x", *follower = "x";
    esg_system_edge(system, 4, &leader, &follower);
    assert_null(leader);
    assert_null(follower);
    esg_system_free(system);
}

static void test_graph_of_one_way_pipe(void **state)
{
    (void)state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Pings", "Pongs"));
    assert_int_equal(esg_system_n_edges(system), 1);
    assert_edge(system, 0, "Pings", "Pongs");
    assert_named_list(system, esg_system_leads, "Pings", NAMES("Pongs"));
    assert_named_list(system, esg_system_follows, "Pings", NO_NAMES);
    assert_named_list(system, esg_system_leads, "Pongs", NO_NAMES);
    assert_named_list(system, esg_system_follows, "Pongs", NAMES("Pings"));
    assert_list(system, esg_system_leaders, NAMES("Pings"));
    assert_list(system, esg_system_followers, NAMES("Pongs"));
    assert_list(system, esg_system_leaders_only, NAMES("Pings"));
    assert_list(system, esg_system_singles, NO_NAMES);
    esg_system_free(system);
}

static void test_graph_of_chain(void **state)
{
    (void)state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &counts_type, &echoes_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Pings", "Pongs", "Counts", "Echoes"));
    assert_int_equal(esg_system_n_edges(system), 3);
    assert_edge(system, 0, "Pings", "Pongs");
    assert_edge(system, 1, "Pongs", "Counts");
    assert_edge(system, 2, "Counts", "Echoes");
    assert_named_list(system, esg_system_leads, "Counts", NAMES("Echoes"));
    assert_named_list(system, esg_system_follows, "Counts", NAMES("Pongs"));
    assert_named_list(system, esg_system_leads, "Echoes", NO_NAMES);
    assert_list(system, esg_system_leaders, NAMES("Pings", "Pongs", "Counts"));
    assert_list(system, esg_system_followers, NAMES("Pongs", "Counts", "Echoes"));
    assert_list(system, esg_system_leaders_only, NAMES("Pings"));
    assert_list(system, esg_system_singles, NO_NAMES);
    esg_system_free(system);
}

static void test_graph_of_pipes_sharing_nodes(void **state)
{
    (void)state;
    const esg_system_def def =
        SYSTEM(PIPE(&pings_type, &pongs_type), PIPE(&pings_type, &counts_type),
               PIPE(&counts_type, &pongs_type), PIPE(&pings_type, &pongs_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Pings", "Pongs", "Counts"));
    /* The repeated pipe adds no edge. */
    assert_int_equal(esg_system_n_edges(system), 3);
    assert_edge(system, 0, "Pings", "Pongs");
    assert_edge(system, 1, "Pings", "Counts");
    assert_edge(system, 2, "Counts", "Pongs");
    assert_named_list(system, esg_system_leads, "Pings", NAMES("Pongs", "Counts"));
    assert_named_list(system, esg_system_follows, "Pongs", NAMES("Pings", "Counts"));
    assert_named_list(system, esg_system_follows, "Counts", NAMES("Pings"));
    assert_list(system, esg_system_leaders, NAMES("Pings", "Counts"));
    assert_list(system, esg_system_followers, NAMES("Pongs", "Counts"));
    assert_list(system, esg_system_leaders_only, NAMES("Pings"));
    assert_list(system, esg_system_singles, NO_NAMES);
    esg_system_free(system);
}

static void test_graph_deduplicates_edges_in_one_pipe(void **state)
{
    (void)state;
    const esg_system_def def =
        SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type, &pongs_type, &pings_type));
    esg_system *system = new_system(&def);
    assert_int_equal(esg_system_n_edges(system), 2);
    assert_edge(system, 0, "Pings", "Pongs");
    assert_edge(system, 1, "Pongs", "Pings");
    assert_named_list(system, esg_system_leads, "Pings", NAMES("Pongs"));
    assert_named_list(system, esg_system_follows, "Pings", NAMES("Pongs"));
    esg_system_free(system);
}

static void test_graph_singles(void **state)
{
    (void)state;
    const esg_system_def def = SYSTEM(PIPE(&countdown_type), PIPE(&pings_type, &pongs_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Countdown", "Pings", "Pongs"));
    assert_list(system, esg_system_singles, NAMES("Countdown"));
    assert_list(system, esg_system_leaders, NAMES("Pings"));
    assert_list(system, esg_system_followers, NAMES("Pongs"));
    assert_list(system, esg_system_leaders_only, NAMES("Pings"));
    assert_named_list(system, esg_system_leads, "Countdown", NO_NAMES);
    assert_ptr_equal(esg_system_get_type(system, "Countdown"), &countdown_type);
    esg_system_free(system);
}

static void test_graph_of_self_pipe(void **state)
{
    (void)state;
    /* As in Python, [A, A] is an edge from A to itself: A leads and follows itself. */
    const esg_system_def def = SYSTEM(PIPE(&countdown_type, &countdown_type));
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NAMES("Countdown"));
    assert_int_equal(esg_system_n_edges(system), 1);
    assert_edge(system, 0, "Countdown", "Countdown");
    assert_named_list(system, esg_system_leads, "Countdown", NAMES("Countdown"));
    assert_named_list(system, esg_system_follows, "Countdown", NAMES("Countdown"));
    assert_list(system, esg_system_leaders_only, NO_NAMES);
    assert_list(system, esg_system_singles, NO_NAMES);
    esg_system_free(system);
}

static void test_graph_of_empty_system(void **state)
{
    (void)state;
    const esg_system_def def = {ESG_SYSTEM_DEF_MAGIC, MODULE ":empty", NULL, 0};
    esg_system *system = new_system(&def);
    assert_list(system, esg_system_nodes, NO_NAMES);
    assert_int_equal(esg_system_n_edges(system), 0);
    assert_list(system, esg_system_leaders, NO_NAMES);
    assert_list(system, esg_system_singles, NO_NAMES);
    esg_system_free(system);
}

/* Asserts that def is refused with ESG_EINVAL, by the graph and by the runner. */
static void assert_refused(const esg_system_def *def, const char *message_part)
{
    esg_error err = {0};
    esg_system *system = (esg_system *)&err; /* must be reset to NULL */
    assert_int_equal(esg_system_new(def, &system, &err), ESG_EINVAL);
    assert_null(system);
    assert_int_equal(err.status, ESG_EINVAL);
    if (strstr(err.message, message_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, message_part);

    esg_local_runner *runner = (esg_local_runner *)&err;
    esg_error_clear(&err);
    assert_int_equal(esg_local_runner_start(def, NULL, &runner, &err), ESG_EINVAL);
    assert_null(runner);
    if (strstr(err.message, message_part) == NULL)
        fail_msg("runner message \"%s\" lacks \"%s\"", err.message, message_part);
}

static void test_invalid_systems_are_refused(void **state)
{
    (void)state;
    const esg_system_def duplicate =
        SYSTEM(PIPE(&pings_type, &pongs_type), PIPE(&pings_type, &impostor_pongs_type));
    assert_refused(&duplicate, "Pongs");

    esg_system_def bad_magic = SYSTEM(PIPE(&pings_type, &pongs_type));
    bad_magic.magic = ESG_APPLICATION_TYPE_MAGIC;
    assert_refused(&bad_magic, "magic");

    const esg_system_def null_app = SYSTEM(PIPE(&pings_type, NULL));
    assert_refused(&null_app, "NULL");

    esg_application_type not_an_app = pings_type;
    not_an_app.magic = 0;
    const esg_system_def bad_app = SYSTEM(PIPE(&pings_type, &not_an_app));
    assert_refused(&bad_app, "not an application type");

    esg_error err = {0};
    assert_int_equal(esg_system_new(NULL, &(esg_system *){NULL}, &err), ESG_EINVAL);
}

static void test_runner_refuses_follower_without_policy(void **state)
{
    (void)state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &plain_type));
    /* The graph itself is fine: only running it needs a policy. */
    esg_system_free(new_system(&def));
    esg_error err = {0};
    esg_local_runner *runner = NULL;
    assert_int_equal(esg_local_runner_start(&def, NULL, &runner, &err), ESG_EINVAL);
    assert_null(runner);
    assert_non_null(strstr(err.message, "Plain follows Pings"));
}

/* ---- Runner helpers ------------------------------------------------------------------ */

static esg_local_runner *start(const fixture *f, const esg_system_def *def)
{
    esg_error err = {0};
    esg_local_runner *runner = NULL;
    assert_esg_ok(esg_local_runner_start(def, f->env, &runner, &err), &err);
    assert_non_null(runner);
    return runner;
}

static esg_application *get_app(esg_local_runner *runner, const char *name)
{
    esg_application *app = esg_local_runner_get(runner, name);
    if (app == NULL)
        fail_msg("no application %s in the runner", name);
    assert_string_equal(esg_application_name(app), name);
    return app;
}

static void assert_no_runner_error(const esg_local_runner *runner)
{
    const esg_error *error = esg_local_runner_error(runner);
    if (error != NULL)
        fail_msg("runner error: %s: %s", esg_status_name(error->status), error->message);
}

/* Calls method with one argument (taken; NULL for none) and returns its result. */
static esg_value *call(esg_application *app, const char *method, esg_value *arg)
{
    esg_error err = {0};
    esg_value *args = esg_value_array();
    assert_non_null(args);
    if (arg != NULL)
        assert_int_equal(esg_array_append(args, arg), ESG_OK);
    esg_value *result = NULL;
    assert_esg_ok(esg_application_call(app, method, args, NULL, &result, &err), &err);
    esg_value_free(args);
    assert_non_null(result);
    return result;
}

static esg_uuid ping(esg_application *pings, int64_t remaining)
{
    esg_value *result = call(pings, "ping", esg_value_int(remaining));
    assert_int_equal(esg_value_type(result), ESG_TYPE_UUID);
    esg_uuid id = *esg_value_as_uuid(result);
    esg_value_free(result);
    return id;
}

static bool call_bool_with_id(esg_application *app, const char *method, const esg_uuid *id)
{
    esg_value *result = call(app, method, esg_value_uuid(id));
    assert_int_equal(esg_value_type(result), ESG_TYPE_BOOL);
    bool answer = esg_value_as_bool(result);
    esg_value_free(result);
    return answer;
}

static int64_t count(esg_application *app)
{
    esg_value *result = call(app, "count", NULL);
    assert_int_equal(esg_value_type(result), ESG_TYPE_INT);
    int64_t n = esg_value_as_int(result);
    esg_value_free(result);
    return n;
}

/* ---- The runner ------------------------------------------------------------------------ */

static void test_runner_one_way_pipe(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pings = get_app(runner, "Pings");
    esg_application *pongs = get_app(runner, "Pongs");
    assert_null(esg_local_runner_get(runner, "Counts"));
    assert_null(esg_local_runner_get(runner, NULL));
    size_t n = 0;
    esg_system_nodes(esg_local_runner_system(runner), &n);
    assert_int_equal(n, 2);

    esg_uuid first = ping(pings, 0);
    /* Processed before the call returned, though Pongs leads no one. */
    assert_true(call_bool_with_id(pongs, "has_pong", &first));
    esg_uuid second = ping(pings, 0);
    assert_true(call_bool_with_id(pongs, "has_pong", &second));
    assert_int_equal(count(pongs), 2);
    assert_int_equal(testutil_max_tracking_id(pongs, "Pings"), 2);
    /* Nothing flows back: Pings does not follow Pongs here. */
    assert_false(call_bool_with_id(pings, "is_ponged", &first));
    assert_int_equal(count(pings), 2);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_chain_propagates_in_one_call(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &counts_type, &echoes_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *echoes = get_app(runner, "Echoes");

    ping(get_app(runner, "Pings"), 0);
    assert_int_equal(count(get_app(runner, "Pongs")), 1);
    assert_int_equal(count(get_app(runner, "Counts")), 1);
    assert_int_equal(count(echoes), 1);
    assert_int_equal(testutil_max_tracking_id(echoes, "Counts"), 1);
    ping(get_app(runner, "Pings"), 0);
    ping(get_app(runner, "Pings"), 0);
    assert_int_equal(count(echoes), 3);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_cycle_completes(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pings = get_app(runner, "Pings");
    esg_application *pongs = get_app(runner, "Pongs");

    esg_uuid id = ping(pings, 0);
    assert_true(call_bool_with_id(pongs, "has_pong", &id));
    assert_true(call_bool_with_id(pings, "is_ponged", &id));
    assert_int_equal(count(pings), 2); /* Ping.Created, Ping.Ponged */
    assert_int_equal(count(pongs), 1);
    /* Pongs ignored Ping.Ponged but tracked it. */
    assert_int_equal(testutil_max_tracking_id(pongs, "Pings"), 2);
    assert_int_equal(testutil_max_tracking_id(pings, "Pongs"), 1);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_example_shape(void **state)
{
    fixture *f = *state;
    const esg_system_def def =
        SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type, &counts_type, &pings_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pings = get_app(runner, "Pings");
    esg_application *counts = get_app(runner, "Counts");

    esg_uuid id = ping(pings, 0);
    assert_true(call_bool_with_id(pings, "is_ponged", &id));
    /* Counts echoed both events of Pings, and Pings went through both echoes. */
    assert_int_equal(count(counts), 2);
    assert_int_equal(testutil_max_tracking_id(counts, "Pings"), 2);
    assert_int_equal(testutil_max_tracking_id(pings, "Counts"), 2);
    assert_int_equal(testutil_max_tracking_id(pings, "Pongs"), 1);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_long_cycle_does_not_recurse(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pings = get_app(runner, "Pings");
    const int64_t bounces = 40;

    esg_uuid id = ping(pings, bounces);
    /* 41 pings, each created and ponged, and 41 pongs, within the one call. */
    assert_int_equal(count(pings), 2 * (bounces + 1));
    assert_int_equal(count(get_app(runner, "Pongs")), bounces + 1);
    assert_true(call_bool_with_id(pings, "is_ponged", &id));
    /* Every pong was made at the same stack depth as the first: the runner
     * loops over its queue instead of recursing once per round trip. */
    for (int64_t i = 0; i <= bounces; i++) {
        assert_true(pong_frames[i] != 0);
        uintptr_t first = pong_frames[bounces];
        uintptr_t spread = pong_frames[i] > first ? pong_frames[i] - first : first - pong_frames[i];
        if (spread > 256)
            fail_msg("pong %lld ran %zu bytes away from the first", (long long)i, (size_t)spread);
    }
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_self_following(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&countdown_type, &countdown_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *countdown = get_app(runner, "Countdown");

    esg_value_free(call(countdown, "start", esg_value_int(5)));
    /* Tick 5, then 4 .. 0 made by following itself. */
    assert_int_equal(count(countdown), 6);
    assert_int_equal(testutil_max_tracking_id(countdown, "Countdown"), 6);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_pipes_sharing_nodes(void **state)
{
    fixture *f = *state;
    const esg_system_def def =
        SYSTEM(PIPE(&pings_type, &pongs_type), PIPE(&pings_type, &counts_type),
               PIPE(&counts_type, &pongs_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pongs = get_app(runner, "Pongs");

    ping(get_app(runner, "Pings"), 0);
    assert_int_equal(count(pongs), 1);
    assert_int_equal(count(get_app(runner, "Counts")), 1);
    assert_int_equal(testutil_max_tracking_id(pongs, "Pings"), 1);
    assert_int_equal(testutil_max_tracking_id(pongs, "Counts"), 1);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

static void test_runner_keeps_first_policy_error(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &flaky_type, &echoes_type));
    esg_local_runner *runner = start(f, &def);
    esg_application *pings = get_app(runner, "Pings");
    esg_application *flaky = get_app(runner, "Flaky");
    assert_no_runner_error(runner);

    flaky_fails = true;
    ping(pings, 0); /* the writer's call itself succeeds */
    const esg_error *error = esg_local_runner_error(runner);
    assert_non_null(error);
    assert_int_equal(error->status, ESG_EINTERNAL);
    assert_non_null(strstr(error->message, "Flaky following Pings"));
    assert_non_null(strstr(error->message, "failed on purpose (#1)"));
    /* The notification stays unprocessed, and is tried again (and fails
     * again) at the next write; the runner keeps the first error. */
    assert_int_equal(testutil_max_tracking_id(flaky, "Pings"), 0);
    assert_int_equal(count(flaky), 0);
    ping(pings, 0);
    assert_int_equal(flaky_failures, 2);
    assert_int_equal(testutil_max_tracking_id(flaky, "Pings"), 0);
    assert_non_null(strstr(esg_local_runner_error(runner)->message, "(#1)"));

    /* Once the policy works, the next prompt processes both, in order; the
     * runner still reports the first error. */
    flaky_fails = false;
    ping(pings, 0);
    assert_int_equal(testutil_max_tracking_id(flaky, "Pings"), 3);
    assert_int_equal(count(flaky), 3);
    assert_int_equal(count(get_app(runner, "Echoes")), 3);
    assert_ptr_equal(esg_local_runner_error(runner), error);
    assert_non_null(strstr(error->message, "failed on purpose (#1)"));
    esg_local_runner_stop(runner);
}

static void test_runner_of_single(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&countdown_type), PIPE(&pings_type));
    esg_local_runner *runner = start(f, &def);
    /* Singles run, and no one follows them. */
    esg_value_free(call(get_app(runner, "Countdown"), "start", esg_value_int(3)));
    assert_int_equal(count(get_app(runner, "Countdown")), 1);
    ping(get_app(runner, "Pings"), 0);
    assert_int_equal(count(get_app(runner, "Pings")), 1);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);

    const esg_system_def empty = {ESG_SYSTEM_DEF_MAGIC, MODULE ":empty", NULL, 0};
    runner = start(f, &empty);
    assert_null(esg_local_runner_get(runner, "Pings"));
    esg_local_runner_stop(runner);
    esg_local_runner_stop(NULL);
}

/* SQLite only: the state outlives the runner. */
static void test_runner_exactly_once_across_restarts(void **state)
{
    fixture *f = *state;
    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &counts_type));
    esg_local_runner *runner = start(f, &def);
    for (int i = 0; i < 3; i++)
        ping(get_app(runner, "Pings"), 0);
    assert_int_equal(count(get_app(runner, "Pongs")), 3);
    assert_int_equal(count(get_app(runner, "Counts")), 3);
    esg_local_runner_stop(runner);

    /* Starting again catches up with nothing: all was tracked. */
    runner = start(f, &def);
    assert_int_equal(count(get_app(runner, "Pings")), 3);
    assert_int_equal(count(get_app(runner, "Pongs")), 3);
    assert_int_equal(count(get_app(runner, "Counts")), 3);
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Pongs"), "Pings"), 3);
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Counts"), "Pongs"), 3);
    esg_uuid id = ping(get_app(runner, "Pings"), 0);
    assert_true(call_bool_with_id(get_app(runner, "Pongs"), "has_pong", &id));
    assert_int_equal(count(get_app(runner, "Pongs")), 4);
    assert_int_equal(count(get_app(runner, "Counts")), 4);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);

    /* And once more, with the cycle closed: Pings catches up with all four
     * pongs at start, exactly once, and the others with what that wrote. */
    const esg_system_def cycle =
        SYSTEM(PIPE(&pings_type, &pongs_type, &pings_type), PIPE(&pongs_type, &counts_type));
    runner = start(f, &cycle);
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Pings"), "Pongs"), 4);
    assert_int_equal(count(get_app(runner, "Pings")), 8); /* 4 created, 4 ponged */
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Pongs"), "Pings"), 8);
    assert_int_equal(count(get_app(runner, "Pongs")), 4);
    assert_int_equal(count(get_app(runner, "Counts")), 4);
    assert_true(call_bool_with_id(get_app(runner, "Pings"), "is_ponged", &id));
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
    runner = start(f, &cycle);
    assert_int_equal(count(get_app(runner, "Pings")), 8);
    assert_int_equal(count(get_app(runner, "Pongs")), 4);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

/* SQLite only: a follower added after its leader wrote catches up on start. */
static void test_runner_follower_catches_up_on_start(void **state)
{
    fixture *f = *state;
    const esg_system_def alone = SYSTEM(PIPE(&pings_type));
    esg_local_runner *runner = start(f, &alone);
    esg_uuid first = ping(get_app(runner, "Pings"), 0);
    esg_uuid second = ping(get_app(runner, "Pings"), 0);
    esg_local_runner_stop(runner);

    const esg_system_def def = SYSTEM(PIPE(&pings_type, &pongs_type, &counts_type));
    runner = start(f, &def);
    esg_application *pongs = get_app(runner, "Pongs");
    assert_true(call_bool_with_id(pongs, "has_pong", &first));
    assert_true(call_bool_with_id(pongs, "has_pong", &second));
    assert_int_equal(count(pongs), 2);
    /* What Pongs wrote while catching up went on down the chain. */
    assert_int_equal(count(get_app(runner, "Counts")), 2);
    assert_no_runner_error(runner);
    esg_local_runner_stop(runner);
}

/* SQLite only: a failure during the catch-up at start is kept, not fatal. */
static void test_runner_catch_up_failure_is_kept(void **state)
{
    fixture *f = *state;
    const esg_system_def alone = SYSTEM(PIPE(&pings_type));
    esg_local_runner *runner = start(f, &alone);
    ping(get_app(runner, "Pings"), 0);
    esg_local_runner_stop(runner);

    const esg_system_def def = SYSTEM(PIPE(&pings_type, &flaky_type));
    flaky_fails = true;
    runner = start(f, &def);
    const esg_error *error = esg_local_runner_error(runner);
    assert_non_null(error);
    assert_non_null(strstr(error->message, "Flaky following Pings"));
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Flaky"), "Pings"), 0);
    esg_local_runner_stop(runner);

    flaky_fails = false;
    runner = start(f, &def);
    assert_no_runner_error(runner);
    assert_int_equal(testutil_max_tracking_id(get_app(runner, "Flaky"), "Pings"), 1);
    esg_local_runner_stop(runner);
}

/* Each runner test once per backend. */
#define ON_BOTH(test)                                                                              \
    {#test " (popo)", test, setup_popo, testutil_teardown, NULL},                                  \
    {                                                                                              \
#test " (sqlite)", test, setup_sqlite, testutil_teardown, NULL                             \
    }

/* Applications of one system never share an SQLite table: Python's is stored_events in each
 * file, whatever the application. */
static void test_applications_never_share_an_sqlite_table(void **state)
{
    (void)state;
    char *dir = testutil_make_temp_dir();
    char shared[1100], other[1100];
    snprintf(shared, sizeof shared, "%s/all.db", dir);
    snprintf(other, sizeof other, "%s/b.db", dir);
    esg_error err = {0};
    esg_env *env = esg_env_new();
    assert_esg_ok(esg_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.sqlite", &err), &err);
    assert_esg_ok(esg_env_set(env, "SQLITE_DBNAME", shared, &err), &err);
    esg_local_runner *runner = NULL;
    assert_int_equal(esg_local_runner_start(&esg_example_system, env, &runner, &err), ESG_ECONFIG);
    assert_null(runner);
    assert_non_null(strstr(err.message, "Orders and Reservations would share one SQLite table"));
    print_message("refused: %s\n", err.message);

    /* A node checks itself against peers given files of their own: these share with Orders. */
    esg_system *system = NULL;
    assert_esg_ok(esg_system_new(&esg_example_system, &system, &err), &err);
    assert_esg_ok(esg_system_check_persistence(system, env, "Orders", &err), &err);
    assert_esg_ok(esg_env_set(env, "PAYMENTS_SQLITE_DBNAME", shared, &err), &err);
    assert_int_equal(esg_system_check_persistence(system, env, "Orders", &err), ESG_ECONFIG);
    assert_non_null(strstr(err.message, "Orders and Payments"));
    /* Private memory databases are never shared; files of their own are fine. */
    assert_esg_ok(esg_env_set(env, "SQLITE_DBNAME", ":memory:", &err), &err);
    assert_esg_ok(esg_env_set(env, "PAYMENTS_SQLITE_DBNAME", ":memory:", &err), &err);
    assert_esg_ok(esg_system_check_persistence(system, env, NULL, &err), &err);
    assert_esg_ok(esg_env_set(env, "SQLITE_DBNAME", "file:x?mode=memory&cache=shared", &err), &err);
    assert_int_equal(esg_system_check_persistence(system, env, NULL, &err), ESG_ECONFIG);
    assert_esg_ok(esg_env_set(env, "ORDERS_SQLITE_DBNAME", shared, &err), &err);
    assert_esg_ok(esg_env_set(env, "RESERVATIONS_SQLITE_DBNAME", other, &err), &err);
    assert_esg_ok(esg_env_set(env, "PAYMENTS_SQLITE_DBNAME", ":memory:", &err), &err);
    assert_esg_ok(esg_system_check_persistence(system, env, NULL, &err), &err);
    assert_esg_ok(esg_local_runner_start(&esg_example_system, env, &runner, &err), &err);
    esg_local_runner_stop(runner);
    /* The same file by another name is the same table. */
    char again[1200];
    snprintf(again, sizeof again, "%s/./all.db", dir);
    assert_esg_ok(esg_env_set(env, "RESERVATIONS_SQLITE_DBNAME", again, &err), &err);
    assert_int_equal(esg_system_check_persistence(system, env, NULL, &err), ESG_ECONFIG);
    esg_system_free(system);
    esg_env_free(env);
    testutil_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_of_example_shape),
        cmocka_unit_test(test_graph_of_one_way_pipe),
        cmocka_unit_test(test_graph_of_chain),
        cmocka_unit_test(test_graph_of_pipes_sharing_nodes),
        cmocka_unit_test(test_graph_deduplicates_edges_in_one_pipe),
        cmocka_unit_test(test_graph_singles),
        cmocka_unit_test(test_graph_of_self_pipe),
        cmocka_unit_test(test_graph_of_empty_system),
        cmocka_unit_test(test_invalid_systems_are_refused),
        cmocka_unit_test(test_runner_refuses_follower_without_policy),
        cmocka_unit_test(test_applications_never_share_an_sqlite_table),
        ON_BOTH(test_runner_one_way_pipe),
        ON_BOTH(test_runner_chain_propagates_in_one_call),
        ON_BOTH(test_runner_cycle_completes),
        ON_BOTH(test_runner_example_shape),
        ON_BOTH(test_runner_long_cycle_does_not_recurse),
        ON_BOTH(test_runner_self_following),
        ON_BOTH(test_runner_pipes_sharing_nodes),
        ON_BOTH(test_runner_keeps_first_policy_error),
        ON_BOTH(test_runner_of_single),
        cmocka_unit_test_setup_teardown(test_runner_exactly_once_across_restarts, setup_sqlite,
                                        testutil_teardown),
        cmocka_unit_test_setup_teardown(test_runner_follower_catches_up_on_start, setup_sqlite,
                                        testutil_teardown),
        cmocka_unit_test_setup_teardown(test_runner_catch_up_failure_is_kept, setup_sqlite,
                                        testutil_teardown),
    };
    return cmocka_run_group_tests_name("system", tests, NULL, NULL);
}
