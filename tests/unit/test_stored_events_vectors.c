/* The stored events of the Python reference's example system
 * (tests/vectors/stored_events.json): events built in C store exactly the same
 * topics and state bytes, and the recorded ones decode and re-encode unchanged. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>
#include <string.h>

static esg_uuid uuid_from(json_t *text)
{
    esg_uuid id;
    esg_error err;
    const char *s = json_string_value(text);
    assert_esg_ok(esg_uuid_parse(s, strlen(s), &id, &err), &err);
    return id;
}

/* The timestamp recorded in a vector's state, for rebuilding the same event. */
static esg_datetime recorded_timestamp(const char *state)
{
    const char *marker = "\"_data_\":\"";
    const char *start = strstr(state, marker) + strlen(marker);
    esg_datetime dt;
    esg_error err;
    assert_esg_ok(esg_datetime_parse(start, (size_t)(strchr(start, '"') - start), &dt, &err), &err);
    return dt;
}

static void assert_stores_as(const esg_event *event, json_t *notification)
{
    esg_stored_event stored;
    esg_error err;
    assert_esg_ok(esg_event_to_stored(event, &stored, &err), &err);
    json_t *state = json_object_get(notification, "state");
    assert_string_equal(stored.topic, json_string_value(json_object_get(notification, "topic")));
    assert_string_equal((const char *)stored.state,
                        json_string_value(json_object_get(state, "utf8")));
    assert_int_equal(stored.state_len, json_integer_value(json_object_get(state, "len")));
    esg_stored_event_clear(&stored);
}

void test_events_built_in_c_store_like_python(void **state)
{
    (void)state;
    json_t *root = testutil_load_vector("stored_events.json");
    json_t *apps = json_object_get(root, "apps");
    esg_uuid order_id = uuid_from(json_object_get(json_object_get(root, "order_id"), "uuid"));
    char order_text[ESG_UUID_STR_SIZE], name[128];
    esg_uuid_str(&order_id, order_text);
    esg_uuid reservation_id, payment_id;
    snprintf(name, sizeof name, "/reservations/%s/", order_text);
    esg_uuid5_url(&reservation_id, name);
    snprintf(name, sizeof name, "/payments/%s/", order_text);
    esg_uuid5_url(&payment_id, name);

    json_t *orders = json_object_get(json_object_get(apps, "Orders"), "notifications");
    const struct {
        const char *topic;
        const char *key;
        esg_value *value;
    } order_events[] = {
        {"eventsourcing_grpc.example:Order.Created", "originator_topic",
         esg_value_string("eventsourcing_grpc.example:Order")},
        {"eventsourcing_grpc.example:Order.Reserved", "reservation_id",
         esg_value_uuid(&reservation_id)},
        {"eventsourcing_grpc.example:Order.Paid", "payment_id", esg_value_uuid(&payment_id)},
    };
    for (size_t i = 0; i < 3; i++) {
        json_t *notification = json_array_get(orders, i);
        esg_datetime ts = recorded_timestamp(
            json_string_value(json_object_get(json_object_get(notification, "state"), "utf8")));
        esg_value *attributes = esg_value_object();
        assert_int_equal(esg_object_set(attributes, order_events[i].key, order_events[i].value),
                         ESG_OK);
        esg_event *event = NULL;
        esg_error err;
        assert_esg_ok(esg_event_new(&order_id, (int64_t)i + 1, &ts, order_events[i].topic,
                                    attributes, &event, &err),
                      &err);
        assert_stores_as(event, notification);
        esg_event_free(event);
    }

    /* Reservation.Created and Payment.Created carry originator_topic, then order_id. */
    const char *creators[][3] = {
        {"Reservations", "eventsourcing_grpc.example:Reservation.Created",
         "eventsourcing_grpc.example:Reservation"},
        {"Payments", "eventsourcing_grpc.example:Payment.Created",
         "eventsourcing_grpc.example:Payment"},
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *notification = json_array_get(
            json_object_get(json_object_get(apps, creators[i][0]), "notifications"), 0);
        esg_datetime ts = recorded_timestamp(
            json_string_value(json_object_get(json_object_get(notification, "state"), "utf8")));
        esg_value *attributes = esg_value_object();
        assert_int_equal(
            esg_object_set(attributes, "originator_topic", esg_value_string(creators[i][2])),
            ESG_OK);
        assert_int_equal(esg_object_set(attributes, "order_id", esg_value_uuid(&order_id)), ESG_OK);
        esg_uuid id = i == 0 ? reservation_id : payment_id;
        esg_uuid recorded = uuid_from(json_object_get(notification, "originator_id"));
        assert_true(esg_uuid_equal(&id, &recorded));
        esg_event *event = NULL;
        esg_error err;
        assert_esg_ok(esg_event_new(&id, 1, &ts, creators[i][1], attributes, &event, &err), &err);
        assert_stores_as(event, notification);
        esg_event_free(event);
    }
    json_decref(root);
}

void test_recorded_events_decode_and_store_unchanged(void **state)
{
    (void)state;
    json_t *root = testutil_load_vector("stored_events.json");
    const char *key;
    json_t *app;
    size_t n_checked = 0;
    json_object_foreach(json_object_get(root, "apps"), key, app)
    {
        size_t i;
        json_t *notification;
        json_array_foreach(json_object_get(app, "notifications"), i, notification)
        {
            json_t *state_json = json_object_get(notification, "state");
            esg_stored_event stored = {
                .originator_id = uuid_from(json_object_get(notification, "originator_id_hex")),
                .originator_version =
                    json_integer_value(json_object_get(notification, "originator_version")),
                .topic = (char *)json_string_value(json_object_get(notification, "topic")),
            };
            stored.state = testutil_unhex(json_string_value(json_object_get(state_json, "hex")),
                                          &stored.state_len);
            esg_event *event = NULL;
            esg_error err;
            assert_esg_ok(esg_event_from_stored(&stored, &event, &err), &err);
            assert_int_equal(event->originator_version, stored.originator_version);
            assert_true(event->timestamp.has_offset);
            assert_stores_as(event, notification);
            esg_event_free(event);
            free(stored.state);
            n_checked++;
        }
    }
    assert_int_equal(n_checked, 5); /* 3 Orders, 1 Reservations, 1 Payments */
    json_decref(root);
}

void test_state_that_is_not_an_event_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {"[]", "{}", "{\"timestamp\":1}", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        esg_stored_event stored = {.originator_version = 1,
                                   .topic = "t",
                                   .state = (uint8_t *)bad[i],
                                   .state_len = strlen(bad[i])};
        esg_event *event = NULL;
        esg_error err;
        assert_int_equal(esg_event_from_stored(&stored, &event, &err), ESG_EINVAL);
        assert_null(event);
    }
}
