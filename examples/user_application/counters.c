/* A user's own application, built outside the core as a shared library and
 * loaded at run time by topic: "user_counters:Counters" (named counters that
 * are created and incremented) and "user_counters:system", which runs it on
 * its own. See README.md in this folder for how to build and run it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esg/application.h"
#include "esg/system.h"

#define COUNTER_TOPIC "user_counters:Counter"
#define COUNTER_CREATED "user_counters:Counter.Created"
#define COUNTER_INCREMENTED "user_counters:Counter.Incremented"

/* ---- The Counter aggregate ------------------------------------------------- */

typedef struct counter_state {
    char *name;    /* owned, from Counter.Created */
    int64_t value; /* the sum of every Counter.Incremented's "by" */
} counter_state;

static esg_status counter_created(void *state, const esg_event *event, esg_error *err)
{
    counter_state *counter = state;
    size_t len = 0;
    const char *name = esg_value_as_string(esg_event_get(event, "name"), &len);
    if (name == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s needs a string name", event->topic);
    /* A copy: mutators must not keep pointers into the event. */
    counter->name = malloc(len + 1);
    if (counter->name == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory naming a counter");
    memcpy(counter->name, name, len);
    counter->name[len] = '\0';
    return ESG_OK;
}

static esg_status counter_incremented(void *state, const esg_event *event, esg_error *err)
{
    counter_state *counter = state;
    const esg_value *by = esg_event_get(event, "by");
    if (esg_value_type(by) != ESG_TYPE_INT)
        return esg_error_set(err, ESG_EINVAL, "%s needs an integer by", event->topic);
    counter->value += esg_value_as_int(by);
    return ESG_OK;
}

static void counter_free_state(void *state)
{
    free(((counter_state *)state)->name);
}

static const esg_event_type counter_events[] = {
    {COUNTER_CREATED, counter_created},
    {COUNTER_INCREMENTED, counter_incremented},
};

static const esg_aggregate_type counter_type = {
    .topic = COUNTER_TOPIC,
    .state_size = sizeof(counter_state),
    .free_state = counter_free_state,
    .event_types = counter_events,
    .n_event_types = sizeof counter_events / sizeof counter_events[0],
};

/* ---- Methods --------------------------------------------------------------- */

/* The counter named by a counter_id argument (a UUID value). */
static esg_status get_counter(esg_application *app, const char *method, const esg_value *id_value,
                              esg_aggregate **out, esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(id_value);
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s(): counter_id must be a UUID, not %s", method,
                             esg_type_name(esg_value_type(id_value)));
    return esg_application_get(app, id, 0, out, err);
}

/* create_counter(name) -> the new counter's id. */
static esg_status create_counter(esg_application *app, esg_value *const *params, esg_value **result,
                                 esg_error *err)
{
    esg_aggregate *counter = NULL;
    esg_status rc;
    if (esg_value_type(params[0]) != ESG_TYPE_STRING) {
        rc = esg_error_set(err, ESG_EINVAL, "create_counter(): name must be a string, not %s",
                           esg_type_name(esg_value_type(params[0])));
        goto out;
    }
    esg_value *attributes = esg_value_object();
    if (esg_object_set(attributes, "name", esg_value_copy(params[0])) != ESG_OK) {
        esg_value_free(attributes);
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory creating a counter");
        goto out;
    }
    rc = esg_aggregate_create(&counter_type, COUNTER_CREATED, NULL, attributes, &counter, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &counter, 1, err);
    if (rc != ESG_OK)
        goto out;
    *result = esg_value_uuid(esg_aggregate_id(counter));
    if (*result == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning a counter id");
out:
    esg_aggregate_free(counter);
    return rc;
}

/* increment(counter_id, by=1) -> the counter's new value. */
static esg_status increment(esg_application *app, esg_value *const *params, esg_value **result,
                            esg_error *err)
{
    esg_aggregate *counter = NULL;
    int64_t by = 1;
    esg_status rc;
    if (params[1] != NULL) {
        if (esg_value_type(params[1]) != ESG_TYPE_INT) {
            rc = esg_error_set(err, ESG_EINVAL, "increment(): by must be an integer, not %s",
                               esg_type_name(esg_value_type(params[1])));
            goto out;
        }
        by = esg_value_as_int(params[1]);
    }
    rc = get_counter(app, "increment", params[0], &counter, err);
    if (rc != ESG_OK)
        goto out;
    int64_t value = ((counter_state *)esg_aggregate_state(counter))->value;
    /* Refused before it is recorded: a stored sum that overflows could never be replayed. */
    if ((by > 0 && value > INT64_MAX - by) || (by < 0 && value < INT64_MIN - by)) {
        rc = esg_error_set(err, ESG_EINVAL, "increment(): %lld + %lld overflows", (long long)value,
                           (long long)by);
        goto out;
    }
    esg_value *attributes = esg_value_object();
    if (esg_object_set(attributes, "by", esg_value_int(by)) != ESG_OK) {
        esg_value_free(attributes);
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory incrementing a counter");
        goto out;
    }
    rc = esg_aggregate_trigger(counter, COUNTER_INCREMENTED, attributes, err);
    if (rc == ESG_OK)
        rc = esg_application_save(app, &counter, 1, err);
    if (rc != ESG_OK)
        goto out;
    *result = esg_value_int(((counter_state *)esg_aggregate_state(counter))->value);
    if (*result == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning a value");
out:
    esg_aggregate_free(counter);
    return rc;
}

/* get_value(counter_id) -> the counter's value. */
static esg_status get_value(esg_application *app, esg_value *const *params, esg_value **result,
                            esg_error *err)
{
    esg_aggregate *counter = NULL;
    esg_status rc = get_counter(app, "get_value", params[0], &counter, err);
    if (rc != ESG_OK)
        return rc;
    *result = esg_value_int(((counter_state *)esg_aggregate_state(counter))->value);
    esg_aggregate_free(counter);
    if (*result == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory returning a value");
    return ESG_OK;
}

static const char *const name_params[] = {"name"};
static const char *const increment_params[] = {"counter_id", "by"};
static const char *const counter_id_params[] = {"counter_id"};

static const esg_method counters_methods[] = {
    {"create_counter", name_params, 1, 1, create_counter},
    {"increment", increment_params, 2, 1, increment},
    {"get_value", counter_id_params, 1, 1, get_value},
};

static const esg_aggregate_type *const counters_aggregates[] = {&counter_type};

/* ---- What the topics name -------------------------------------------------- */

/* "user_counters:Counters": the symbol's name is the part after the ':'. */
const esg_application_type Counters = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Counters",
    .topic = "user_counters:Counters",
    .aggregate_types = counters_aggregates,
    .n_aggregate_types = 1,
    .methods = counters_methods,
    .n_methods = sizeof counters_methods / sizeof counters_methods[0],
    .policy = NULL, /* it follows no one */
};

static const esg_application_type *const counters_pipe[] = {&Counters};

static const esg_pipe counters_pipes[] = {
    {counters_pipe, 1},
};

/* "user_counters:system": exported as "system", which in C is also the name
 * of stdlib.h's system(), so the C name differs and an asm label gives the
 * symbol its exported name. */
const esg_system_def counters_system __asm__("system") = {
    .magic = ESG_SYSTEM_DEF_MAGIC,
    .topic = "user_counters:system",
    .pipes = counters_pipes,
    .n_pipes = 1,
};
