/* Tests of aggregates: creation, triggering, pending events, replay, and the
 * mapper's round trip through stored events. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>
#include <string.h>

#define CREATED "tests:Counter.Created"
#define ADDED "tests:Counter.Added"
#define BROKEN "tests:Counter.Broken"

typedef struct counter {
    int64_t total; /* sum of the "amount" of every Added event */
    char *label;   /* owned copy of the Created event's "label", if any */
} counter;

static esg_status counter_created(void *state, const esg_event *event, esg_error *err)
{
    (void)err;
    counter *c = state;
    const char *label = esg_value_as_string(esg_event_get(event, "label"), NULL);
    if (label != NULL)
        c->label = strdup(label);
    return ESG_OK;
}

static esg_status counter_added(void *state, const esg_event *event, esg_error *err)
{
    counter *c = state;
    esg_value *amount = esg_event_get(event, "amount");
    if (esg_value_type(amount) != ESG_TYPE_INT)
        return esg_error_set(err, ESG_EINVAL, "amount must be an int");
    c->total += esg_value_as_int(amount);
    return ESG_OK;
}

static esg_status counter_broken(void *state, const esg_event *event, esg_error *err)
{
    (void)state;
    (void)event;
    return esg_error_set(err, ESG_EINVAL, "this event always fails");
}

static void counter_free(void *state)
{
    free(((counter *)state)->label);
}

static const esg_event_type counter_events[] = {
    {CREATED, counter_created},
    {ADDED, counter_added},
    {BROKEN, counter_broken},
};

static const esg_aggregate_type counter_type = {
    .topic = "tests:Counter",
    .state_size = sizeof(counter),
    .free_state = counter_free,
    .event_types = counter_events,
    .n_event_types = 3,
};

static esg_value *amount(int64_t n)
{
    esg_value *attributes = esg_value_object();
    assert_int_equal(esg_object_set(attributes, "amount", esg_value_int(n)), ESG_OK);
    return attributes;
}

void test_create_trigger_collect(void **state)
{
    (void)state;
    esg_aggregate *aggregate = NULL;
    esg_error err;
    esg_value *attributes = esg_value_object();
    assert_int_equal(esg_object_set(attributes, "label", esg_value_string("apples")), ESG_OK);
    assert_esg_ok(esg_aggregate_create(&counter_type, CREATED, NULL, attributes, &aggregate, &err),
                  &err);
    assert_int_equal(esg_aggregate_version(aggregate), 1);
    assert_string_equal(((counter *)esg_aggregate_state(aggregate))->label, "apples");
    assert_esg_ok(esg_aggregate_trigger(aggregate, ADDED, amount(5), &err), &err);
    assert_esg_ok(esg_aggregate_trigger(aggregate, ADDED, amount(7), &err), &err);
    assert_int_equal(((counter *)esg_aggregate_state(aggregate))->total, 12);
    assert_int_equal(esg_aggregate_version(aggregate), 3);
    assert_int_equal(esg_aggregate_n_pending(aggregate), 3);

    esg_event *const *pending = esg_aggregate_pending(aggregate);
    assert_string_equal(pending[0]->topic, CREATED);
    /* The Created event carries originator_topic first, then its own attributes. */
    assert_string_equal(esg_object_key_at(pending[0]->attributes, 0), "originator_topic");
    assert_string_equal(esg_object_key_at(pending[0]->attributes, 1), "label");
    assert_true(esg_datetime_equal(esg_aggregate_created_on(aggregate), &pending[0]->timestamp));
    assert_true(esg_datetime_equal(esg_aggregate_modified_on(aggregate), &pending[2]->timestamp));

    esg_event **events = NULL;
    size_t n_events = 0;
    esg_aggregate_collect(aggregate, &events, &n_events);
    assert_int_equal(n_events, 3);
    assert_int_equal(esg_aggregate_n_pending(aggregate), 0);
    for (size_t i = 0; i < n_events; i++) {
        assert_int_equal(events[i]->originator_version, (int64_t)i + 1);
        assert_true(esg_uuid_equal(&events[i]->originator_id, esg_aggregate_id(aggregate)));
    }

    /* Through the mapper and back, then replay: the same state. */
    esg_event *decoded[3];
    for (size_t i = 0; i < n_events; i++) {
        esg_stored_event stored;
        assert_esg_ok(esg_event_to_stored(events[i], &stored, &err), &err);
        assert_esg_ok(esg_event_from_stored(&stored, &decoded[i], &err), &err);
        assert_true(esg_value_equal(decoded[i]->attributes, events[i]->attributes));
        assert_true(esg_datetime_equal(&decoded[i]->timestamp, &events[i]->timestamp));
        esg_stored_event_clear(&stored);
    }
    esg_aggregate *copy = NULL;
    assert_esg_ok(esg_aggregate_replay(&counter_type, decoded, 3, &copy, &err), &err);
    assert_int_equal(((counter *)esg_aggregate_state(copy))->total, 12);
    assert_string_equal(((counter *)esg_aggregate_state(copy))->label, "apples");
    assert_int_equal(esg_aggregate_version(copy), 3);
    assert_int_equal(esg_aggregate_n_pending(copy), 0);
    assert_true(esg_datetime_equal(esg_aggregate_modified_on(copy), &events[2]->timestamp));

    /* Replaying only the first two gives the older state. */
    esg_aggregate *older = NULL;
    assert_esg_ok(esg_aggregate_replay(&counter_type, decoded, 2, &older, &err), &err);
    assert_int_equal(((counter *)esg_aggregate_state(older))->total, 5);

    for (size_t i = 0; i < n_events; i++) {
        esg_event_free(events[i]);
        esg_event_free(decoded[i]);
    }
    free(events);
    esg_aggregate_free(older);
    esg_aggregate_free(copy);
    esg_aggregate_free(aggregate);
}

void test_failed_trigger_changes_nothing(void **state)
{
    (void)state;
    esg_aggregate *aggregate = NULL;
    esg_error err;
    esg_uuid id;
    esg_uuid4(&id);
    assert_esg_ok(esg_aggregate_create(&counter_type, CREATED, &id, NULL, &aggregate, &err), &err);
    assert_true(esg_uuid_equal(esg_aggregate_id(aggregate), &id));
    assert_int_equal(esg_aggregate_trigger(aggregate, BROKEN, NULL, &err), ESG_EINVAL);
    assert_int_equal(esg_aggregate_trigger(aggregate, "tests:Nope", NULL, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "tests:Nope"));
    assert_int_equal(esg_aggregate_trigger(aggregate, ADDED, esg_value_int(3), &err), ESG_EINVAL);
    assert_int_equal(esg_aggregate_version(aggregate), 1);
    assert_int_equal(esg_aggregate_n_pending(aggregate), 1);
    esg_aggregate_free(aggregate);
}

void test_replay_refuses_bad_sequences(void **state)
{
    (void)state;
    esg_aggregate *aggregate = NULL;
    esg_error err;
    assert_int_equal(esg_aggregate_replay(&counter_type, NULL, 0, &aggregate, &err), ESG_ENOTFOUND);

    esg_uuid id;
    esg_uuid4(&id);
    esg_event *events[3] = {NULL, NULL, NULL};
    esg_value *created = esg_value_object();
    assert_int_equal(esg_object_set(created, "originator_topic", esg_value_string("tests:Other")),
                     ESG_OK);
    assert_esg_ok(esg_event_new(&id, 1, NULL, CREATED, created, &events[0], &err), &err);
    assert_int_equal(esg_aggregate_replay(&counter_type, events, 1, &aggregate, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "tests:Other"));
    esg_event_free(events[0]);

    created = esg_value_object();
    assert_int_equal(esg_object_set(created, "originator_topic", esg_value_string("tests:Counter")),
                     ESG_OK);
    assert_esg_ok(esg_event_new(&id, 1, NULL, CREATED, created, &events[0], &err), &err);
    assert_esg_ok(esg_event_new(&id, 3, NULL, ADDED, amount(1), &events[1], &err), &err);
    assert_int_equal(esg_aggregate_replay(&counter_type, events, 2, &aggregate, &err), ESG_EINVAL);
    assert_non_null(strstr(err.message, "version 3"));
    esg_uuid other;
    esg_uuid4(&other);
    assert_esg_ok(esg_event_new(&other, 2, NULL, ADDED, amount(1), &events[2], &err), &err);
    esg_event *mixed[2] = {events[0], events[2]};
    assert_int_equal(esg_aggregate_replay(&counter_type, mixed, 2, &aggregate, &err), ESG_EINVAL);
    assert_null(aggregate);
    for (size_t i = 0; i < 3; i++)
        esg_event_free(events[i]);
}
