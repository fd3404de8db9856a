/* Systems for the runner tests, built as the plugin test_systems.so and found
 * by topic along ESG_TOPIC_PATH: "test_systems:one_way" ([[Orders,
 * Reservations]], a pipe that never turns back) and "test_systems:chain"
 * (A -> B -> C -> D, each relaying every Item it sees to the next), and
 * "test_systems:faulty" (A -> Faulty, whose policy always fails). The core's
 * esg_ functions and the example's types come from the program that loads it. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/system.h"

#define ITEM_TOPIC "test_systems:Item"
#define ITEM_CREATED "test_systems:Item.Created"

/* ---- The Item aggregate, one kind in every application of the chain ---------- */

typedef struct item_state {
    bool has_upstream;    /* false for an item A started */
    esg_uuid upstream_id; /* the upstream item this one relays */
} item_state;

static esg_status item_created(void *state, const esg_event *event, esg_error *err)
{
    (void)err;
    item_state *item = state;
    const esg_uuid *upstream = esg_value_as_uuid(esg_event_get(event, "upstream_id"));
    if (upstream != NULL) {
        item->has_upstream = true;
        item->upstream_id = *upstream;
    }
    return ESG_OK;
}

static const esg_event_type item_events[] = {
    {ITEM_CREATED, item_created},
};

static const esg_aggregate_type item_type = {
    .topic = ITEM_TOPIC,
    .state_size = sizeof(item_state),
    .event_types = item_events,
    .n_event_types = 1,
};

static const esg_aggregate_type *const item_types[] = {&item_type};

/* ---- Methods ----------------------------------------------------------------- */

/* start() -> the id of a new item (A only). */
static esg_status start(esg_application *app, esg_value *const *params, esg_value **result,
                        esg_error *err)
{
    (void)params;
    esg_aggregate *item = NULL;
    esg_status rc = esg_aggregate_create(&item_type, ITEM_CREATED, NULL, NULL, &item, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &item, 1, err);
    if (rc == ESG_OK) {
        *result = esg_value_uuid(esg_aggregate_id(item));
        if (*result == NULL)
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning an item id");
    }
    esg_aggregate_free(item);
    return rc;
}

/* count() -> how many items the application holds: one notification each. */
static esg_status count(esg_application *app, esg_value *const *params, esg_value **result,
                        esg_error *err)
{
    (void)params;
    int64_t n = 0;
    esg_status rc = esg_recorder_max_notification_id(esg_application_recorder(app), &n, err);
    if (rc != ESG_OK)
        return rc;
    *result = esg_value_int(n);
    if (*result == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory returning a count");
    return ESG_OK;
}

static const esg_method head_methods[] = {
    {"start", NULL, 0, 0, start},
    {"count", NULL, 0, 0, count},
};

static const esg_method relay_methods[] = {
    {"count", NULL, 0, 0, count},
};

/* ---- The relay policy ---------------------------------------------------------- */

/* An Item created upstream makes one here, with id uuid5(NAMESPACE_URL,
 * "/<this application's name>/<upstream id>/"): the test can predict it, and
 * processing the same notification twice would conflict rather than duplicate. */
static esg_status relay_policy(esg_application *app, const esg_event *event,
                               esg_processing_event *processing, esg_error *err)
{
    if (strcmp(event->topic, ITEM_CREATED) != 0)
        return ESG_OK;
    char upstream_text[ESG_UUID_STR_SIZE], name[128];
    esg_uuid_str(&event->originator_id, upstream_text);
    snprintf(name, sizeof name, "/%s/%s/", esg_application_name(app), upstream_text);
    esg_uuid id;
    esg_uuid5_url(&id, name);

    esg_aggregate *item = NULL;
    esg_value *attributes = esg_value_object();
    if (attributes == NULL || esg_object_set(attributes, "upstream_id",
                                             esg_value_uuid(&event->originator_id)) != ESG_OK) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_ENOMEM, "out of memory relaying an item");
    }
    esg_status rc = esg_aggregate_create(&item_type, ITEM_CREATED, &id, attributes, &item, err);
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, item, err);
    esg_aggregate_free(item);
    return rc;
}

/* Fails on every Item, so that a runner has a processing error to report. */
static esg_status faulty_policy(esg_application *app, const esg_event *event,
                                esg_processing_event *processing, esg_error *err)
{
    (void)app;
    (void)processing;
    if (strcmp(event->topic, ITEM_CREATED) != 0)
        return ESG_OK;
    return esg_error_set(err, ESG_EIO, "a deliberate failure of the faulty policy");
}

/* ---- What the topics name ------------------------------------------------------ */

/* An application of Items named NAME, at topic "test_systems:NAME", with the methods of an
 * array and a policy (NULL for none). */
#define ITEM_APPLICATION(NAME, app_methods, app_policy)                                            \
    {                                                                                              \
        .magic = ESG_APPLICATION_TYPE_MAGIC, .name = #NAME, .topic = "test_systems:" #NAME,        \
        .aggregate_types = item_types, .n_aggregate_types = 1, .methods = app_methods,             \
        .n_methods = sizeof app_methods / sizeof app_methods[0], .policy = app_policy,             \
    }

const esg_application_type A = ITEM_APPLICATION(A, head_methods, NULL);
const esg_application_type B = ITEM_APPLICATION(B, relay_methods, relay_policy);
const esg_application_type C = ITEM_APPLICATION(C, relay_methods, relay_policy);
const esg_application_type D = ITEM_APPLICATION(D, relay_methods, relay_policy);
const esg_application_type Faulty = ITEM_APPLICATION(Faulty, relay_methods, faulty_policy);

/* The system at topic "test_systems:NAME" of one pipe, an array of application types. */
#define ONE_PIPE_SYSTEM(NAME, pipe)                                                                \
    {                                                                                              \
        .magic = ESG_SYSTEM_DEF_MAGIC, .topic = "test_systems:" #NAME,                             \
        .pipes = (const esg_pipe[]){{pipe, sizeof pipe / sizeof pipe[0]}}, .n_pipes = 1,           \
    }

/* [[Orders, Reservations]]: Orders leads Reservations and follows no one. */
static const esg_application_type *const one_way_pipe[] = {
    &esg_example_orders,
    &esg_example_reservations,
};

const esg_system_def one_way = ONE_PIPE_SYSTEM(one_way, one_way_pipe);

/* [[A, B, C, D]]. */
static const esg_application_type *const chain_pipe[] = {&A, &B, &C, &D};

const esg_system_def chain = ONE_PIPE_SYSTEM(chain, chain_pipe);

/* [[A, Faulty]]. */
static const esg_application_type *const faulty_pipe[] = {&A, &Faulty};

const esg_system_def faulty = ONE_PIPE_SYSTEM(faulty, faulty_pipe);
