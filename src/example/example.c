/* The example system of eventsourcing_grpc.example (0.1.2), built in: Orders
 * creates orders, Reservations reserves each new order, Payments pays each
 * reserved one, and Orders records both back on the order. Topics, event
 * attributes and stored state are those the Python package writes. */
#include "esg/example.h"
#include "esg/topic.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MODULE "eventsourcing_grpc.example"

#define ORDER_TOPIC MODULE ":Order"
#define ORDER_CREATED MODULE ":Order.Created"
#define ORDER_RESERVED MODULE ":Order.Reserved"
#define ORDER_PAID MODULE ":Order.Paid"
#define RESERVATION_TOPIC MODULE ":Reservation"
#define RESERVATION_CREATED MODULE ":Reservation.Created"
#define PAYMENT_TOPIC MODULE ":Payment"
#define PAYMENT_CREATED MODULE ":Payment.Created"

/* ---- Aggregates ------------------------------------------------------------ */

typedef struct order_state {
    bool is_reserved;        /* set by Order.Reserved */
    bool is_paid;            /* set by Order.Paid */
    esg_uuid reservation_id; /* valid when is_reserved (Python: None until then) */
    esg_uuid payment_id;     /* valid when is_paid (Python: None until then) */
} order_state;

/* Reservation and Payment both only remember the order they belong to. */
typedef struct order_ref_state {
    esg_uuid order_id; /* the order, from the Created event's order_id */
} order_ref_state;

/* A uuid attribute of an event that the mutators need, or ESG_EINVAL naming it. */
static esg_status event_uuid(const esg_event *event, const char *name, esg_uuid *out,
                             esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(esg_event_get(event, name));
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s needs a UUID %s", event->topic, name);
    *out = *id;
    return ESG_OK;
}

static esg_status order_reserved(void *state, const esg_event *event, esg_error *err)
{
    order_state *order = state;
    esg_status rc = event_uuid(event, "reservation_id", &order->reservation_id, err);
    if (rc == ESG_OK)
        order->is_reserved = true;
    return rc;
}

static esg_status order_paid(void *state, const esg_event *event, esg_error *err)
{
    order_state *order = state;
    esg_status rc = event_uuid(event, "payment_id", &order->payment_id, err);
    if (rc == ESG_OK)
        order->is_paid = true;
    return rc;
}

static esg_status order_ref_created(void *state, const esg_event *event, esg_error *err)
{
    order_ref_state *ref = state;
    return event_uuid(event, "order_id", &ref->order_id, err);
}

/* A uuid value, or null (Python's None) for an id the order does not have yet. */
static esg_value *optional_uuid(bool is_set, const esg_uuid *id)
{
    return is_set ? esg_value_uuid(id) : esg_value_null();
}

/* The state as Python's Order.__dict__ holds it after _created_on and _modified_on (what its
 * snapshots store), and back. */
static esg_status order_write_state(const void *state, esg_value **out, esg_error *err)
{
    const order_state *order = state;
    esg_value *attributes = esg_value_object();
    esg_status rc = esg_object_set(attributes, "is_reserved", esg_value_bool(order->is_reserved));
    if (rc == ESG_OK)
        rc = esg_object_set(attributes, "is_paid", esg_value_bool(order->is_paid));
    if (rc == ESG_OK)
        rc = esg_object_set(attributes, "reservation_id",
                            optional_uuid(order->is_reserved, &order->reservation_id));
    if (rc == ESG_OK)
        rc = esg_object_set(attributes, "payment_id",
                            optional_uuid(order->is_paid, &order->payment_id));
    if (rc != ESG_OK) {
        esg_value_free(attributes);
        return esg_error_set(err, rc, "out of memory writing an order");
    }
    *out = attributes;
    return ESG_OK;
}

/* Reads an optional UUID attribute: None leaves *is_set false. */
static esg_status read_optional_uuid(const esg_value *attributes, const char *name, bool *is_set,
                                     esg_uuid *out, esg_error *err)
{
    const esg_value *value = esg_object_get(attributes, name);
    *is_set = false;
    if (value == NULL || esg_value_type(value) == ESG_TYPE_NULL)
        return ESG_OK;
    const esg_uuid *id = esg_value_as_uuid(value);
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "an order's %s must be a UUID or None", name);
    *out = *id;
    *is_set = true;
    return ESG_OK;
}

static esg_status order_read_state(void *state, const esg_value *attributes, esg_error *err)
{
    order_state *order = state;
    bool is_reserved = false, is_paid = false;
    esg_status rc =
        read_optional_uuid(attributes, "reservation_id", &is_reserved, &order->reservation_id, err);
    if (rc == ESG_OK)
        rc = read_optional_uuid(attributes, "payment_id", &is_paid, &order->payment_id, err);
    if (rc != ESG_OK)
        return rc;
    const esg_value *reserved = esg_object_get(attributes, "is_reserved");
    const esg_value *paid = esg_object_get(attributes, "is_paid");
    if (esg_value_type(reserved) != ESG_TYPE_BOOL || esg_value_type(paid) != ESG_TYPE_BOOL)
        return esg_error_set(err, ESG_EINVAL, "an order's is_reserved and is_paid must be bools");
    order->is_reserved = esg_value_as_bool(reserved) && is_reserved;
    order->is_paid = esg_value_as_bool(paid) && is_paid;
    return ESG_OK;
}

static esg_status order_ref_write_state(const void *state, esg_value **out, esg_error *err)
{
    const order_ref_state *ref = state;
    esg_value *attributes = esg_value_object();
    if (esg_object_set(attributes, "order_id", esg_value_uuid(&ref->order_id)) != ESG_OK) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_ENOMEM, "out of memory writing an aggregate");
    }
    *out = attributes;
    return ESG_OK;
}

static esg_status order_ref_read_state(void *state, const esg_value *attributes, esg_error *err)
{
    order_ref_state *ref = state;
    const esg_uuid *id = esg_value_as_uuid(esg_object_get(attributes, "order_id"));
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "the state needs a UUID order_id");
    ref->order_id = *id;
    return ESG_OK;
}

static const esg_event_type order_events[] = {
    {ORDER_CREATED, NULL},
    {ORDER_RESERVED, order_reserved},
    {ORDER_PAID, order_paid},
};

static const esg_aggregate_type order_type = {
    .topic = ORDER_TOPIC,
    .state_size = sizeof(order_state),
    .event_types = order_events,
    .n_event_types = sizeof order_events / sizeof order_events[0],
    .write_state = order_write_state,
    .read_state = order_read_state,
};

static const esg_event_type reservation_events[] = {
    {RESERVATION_CREATED, order_ref_created},
};

static const esg_aggregate_type reservation_type = {
    .topic = RESERVATION_TOPIC,
    .state_size = sizeof(order_ref_state),
    .event_types = reservation_events,
    .n_event_types = 1,
    .write_state = order_ref_write_state,
    .read_state = order_ref_read_state,
};

static const esg_event_type payment_events[] = {
    {PAYMENT_CREATED, order_ref_created},
};

static const esg_aggregate_type payment_type = {
    .topic = PAYMENT_TOPIC,
    .state_size = sizeof(order_ref_state),
    .event_types = payment_events,
    .n_event_types = 1,
    .write_state = order_ref_write_state,
    .read_state = order_ref_read_state,
};

/* ---- Shared helpers -------------------------------------------------------- */

/* An attributes object {name: uuid}, or NULL when out of memory. */
static esg_value *uuid_attribute(const char *name, const esg_uuid *id)
{
    esg_value *attributes = esg_value_object();
    if (attributes == NULL || esg_object_set(attributes, name, esg_value_uuid(id)) != ESG_OK) {
        esg_value_free(attributes);
        return NULL;
    }
    return attributes;
}

/* Triggers event_topic {name: id} on aggregate and hands it to processing. */
static esg_status trigger_and_collect(esg_aggregate *aggregate, const char *event_topic,
                                      const char *name, const esg_uuid *id,
                                      esg_processing_event *processing, esg_error *err)
{
    esg_value *attributes = uuid_attribute(name, id);
    if (attributes == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory triggering %s", event_topic);
    esg_status rc = esg_aggregate_trigger(aggregate, event_topic, attributes, err);
    if (rc == ESG_OK)
        rc = esg_processing_event_collect(processing, aggregate, err);
    return rc;
}

/* Creates the Reservation or Payment of an order, with the id Python derives
 * from the order id ("/reservations/<id>/" or "/payments/<id>/"), so that the
 * same order always gives the same id. */
static esg_status create_for_order(const esg_aggregate_type *type, const char *created_topic,
                                   const char *path, const esg_uuid *order_id,
                                   esg_processing_event *processing, esg_error *err)
{
    char order_text[ESG_UUID_STR_SIZE], name[64];
    esg_uuid id;
    esg_aggregate *aggregate = NULL;
    esg_status rc;

    esg_uuid_str(order_id, order_text);
    snprintf(name, sizeof name, "/%s/%s/", path, order_text);
    esg_uuid5_url(&id, name);
    esg_value *attributes = uuid_attribute("order_id", order_id);
    if (attributes == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory creating %s", type->topic);
        goto out;
    }
    rc = esg_aggregate_create(type, created_topic, &id, attributes, &aggregate, err);
    if (rc != ESG_OK)
        goto out;
    rc = esg_processing_event_collect(processing, aggregate, err);
out:
    esg_aggregate_free(aggregate);
    return rc;
}

/* ---- Orders ---------------------------------------------------------------- */

/* The order_id argument as a uuid; a string (even one that spells a UUID) is
 * refused, as the Python repository refuses it. */
static esg_status order_id_param(const char *method, const esg_value *value, esg_uuid *out,
                                 esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(value);
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "%s(): order_id must be a UUID, not %s", method,
                             esg_type_name(esg_value_type(value)));
    *out = *id;
    return ESG_OK;
}

/* Gets the order named by the method's order_id argument; ESG_ENOTFOUND from
 * the repository when there is none. */
static esg_status get_order_aggregate(esg_application *app, const char *method,
                                      const esg_value *value, esg_aggregate **out, esg_error *err)
{
    esg_uuid order_id;
    esg_status rc = order_id_param(method, value, &order_id, err);
    if (rc != ESG_OK)
        return rc;
    rc = esg_application_get(app, &order_id, 0, out, err);
    if (rc == ESG_OK && esg_aggregate_get_type(*out) != &order_type) {
        char text[ESG_UUID_STR_SIZE];
        esg_uuid_str(&order_id, text);
        esg_aggregate_free(*out);
        *out = NULL;
        rc = esg_error_set(err, ESG_ENOTFOUND, "%s is not an order", text);
    }
    return rc;
}

static esg_status create_new_order(esg_application *app, esg_value *const *params,
                                   esg_value **result, esg_error *err)
{
    (void)params;
    esg_aggregate *order = NULL;
    esg_status rc = esg_aggregate_create(&order_type, ORDER_CREATED, NULL, NULL, &order, err);
    if (rc != ESG_OK)
        goto out;
    rc = esg_application_save(app, &order, 1, err);
    if (rc != ESG_OK)
        goto out;
    *result = esg_value_uuid(esg_aggregate_id(order));
    if (*result == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning the order id");
out:
    esg_aggregate_free(order);
    return rc;
}

static esg_status get_order(esg_application *app, esg_value *const *params, esg_value **result,
                            esg_error *err)
{
    esg_aggregate *order = NULL;
    esg_value *dict = NULL;
    esg_status rc = get_order_aggregate(app, "get_order", params[0], &order, err);
    if (rc != ESG_OK)
        goto out;
    const order_state *state = esg_aggregate_state_const(order);
    /* The keys and their order are those of the Python example's dict. */
    dict = esg_value_object();
    rc = dict ? ESG_OK : ESG_ENOMEM;
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "id", esg_value_uuid(esg_aggregate_id(order)));
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "is_reserved", esg_value_bool(state->is_reserved));
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "is_paid", esg_value_bool(state->is_paid));
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "reservation_id",
                            optional_uuid(state->is_reserved, &state->reservation_id));
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "payment_id", optional_uuid(state->is_paid, &state->payment_id));
    if (rc == ESG_OK)
        rc =
            esg_object_set(dict, "created_on", esg_value_datetime(esg_aggregate_created_on(order)));
    if (rc == ESG_OK)
        rc = esg_object_set(dict, "modified_on",
                            esg_value_datetime(esg_aggregate_modified_on(order)));
    if (rc != ESG_OK) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning an order");
        goto out;
    }
    *result = dict;
    dict = NULL;
out:
    esg_value_free(dict);
    esg_aggregate_free(order);
    return rc;
}

/* is_order_reserved and is_order_paid: one flag of the order as a bool. */
static esg_status order_flag(esg_application *app, const char *method, const esg_value *order_id,
                             bool paid, esg_value **result, esg_error *err)
{
    esg_aggregate *order = NULL;
    esg_status rc = get_order_aggregate(app, method, order_id, &order, err);
    if (rc != ESG_OK)
        return rc;
    const order_state *state = esg_aggregate_state_const(order);
    *result = esg_value_bool(paid ? state->is_paid : state->is_reserved);
    esg_aggregate_free(order);
    if (*result == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory returning from %s", method);
    return ESG_OK;
}

static esg_status is_order_reserved(esg_application *app, esg_value *const *params,
                                    esg_value **result, esg_error *err)
{
    return order_flag(app, "is_order_reserved", params[0], false, result, err);
}

static esg_status is_order_paid(esg_application *app, esg_value *const *params, esg_value **result,
                                esg_error *err)
{
    return order_flag(app, "is_order_paid", params[0], true, result, err);
}

/* Records on the order that it was reserved or paid; ignores other events. */
static esg_status orders_policy(esg_application *app, const esg_event *event,
                                esg_processing_event *processing, esg_error *err)
{
    const char *event_topic, *attribute;
    if (strcmp(event->topic, RESERVATION_CREATED) == 0) {
        event_topic = ORDER_RESERVED;
        attribute = "reservation_id";
    } else if (strcmp(event->topic, PAYMENT_CREATED) == 0) {
        event_topic = ORDER_PAID;
        attribute = "payment_id";
    } else {
        return ESG_OK;
    }
    esg_uuid order_id;
    esg_aggregate *order = NULL;
    esg_status rc = event_uuid(event, "order_id", &order_id, err);
    if (rc == ESG_OK)
        rc = esg_application_get(app, &order_id, 0, &order, err);
    if (rc == ESG_OK)
        rc = trigger_and_collect(order, event_topic, attribute, &event->originator_id, processing,
                                 err);
    esg_aggregate_free(order);
    return rc;
}

static const char *const order_id_params[] = {"order_id"};

static const esg_method orders_methods[] = {
    {"create_new_order", NULL, 0, 0, create_new_order},
    {"get_order", order_id_params, 1, 1, get_order},
    {"is_order_reserved", order_id_params, 1, 1, is_order_reserved},
    {"is_order_paid", order_id_params, 1, 1, is_order_paid},
};

static const esg_aggregate_type *const orders_aggregates[] = {&order_type};

const esg_application_type esg_example_orders = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Orders",
    .topic = MODULE ":Orders",
    .aggregate_types = orders_aggregates,
    .n_aggregate_types = 1,
    .methods = orders_methods,
    .n_methods = sizeof orders_methods / sizeof orders_methods[0],
    .policy = orders_policy,
};

/* ---- Reservations and Payments -------------------------------------------- */

static esg_status reservations_policy(esg_application *app, const esg_event *event,
                                      esg_processing_event *processing, esg_error *err)
{
    (void)app;
    if (strcmp(event->topic, ORDER_CREATED) != 0)
        return ESG_OK;
    return create_for_order(&reservation_type, RESERVATION_CREATED, "reservations",
                            &event->originator_id, processing, err);
}

static esg_status payments_policy(esg_application *app, const esg_event *event,
                                  esg_processing_event *processing, esg_error *err)
{
    (void)app;
    if (strcmp(event->topic, ORDER_RESERVED) != 0)
        return ESG_OK;
    return create_for_order(&payment_type, PAYMENT_CREATED, "payments", &event->originator_id,
                            processing, err);
}

static const esg_aggregate_type *const reservations_aggregates[] = {&reservation_type};

const esg_application_type esg_example_reservations = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Reservations",
    .topic = MODULE ":Reservations",
    .aggregate_types = reservations_aggregates,
    .n_aggregate_types = 1,
    .policy = reservations_policy,
};

static const esg_aggregate_type *const payments_aggregates[] = {&payment_type};

const esg_application_type esg_example_payments = {
    .magic = ESG_APPLICATION_TYPE_MAGIC,
    .name = "Payments",
    .topic = MODULE ":Payments",
    .aggregate_types = payments_aggregates,
    .n_aggregate_types = 1,
    .policy = payments_policy,
};

/* ---- The system ------------------------------------------------------------ */

static const esg_application_type *const example_pipe[] = {
    &esg_example_orders,   &esg_example_reservations, &esg_example_orders,
    &esg_example_payments, &esg_example_orders,
};

static const esg_pipe example_pipes[] = {
    {example_pipe, sizeof example_pipe / sizeof example_pipe[0]},
};

const esg_system_def esg_example_system = {
    .magic = ESG_SYSTEM_DEF_MAGIC,
    .topic = MODULE ":system",
    .pipes = example_pipes,
    .n_pipes = 1,
};

esg_status esg_example_register(esg_error *err)
{
    static const esg_application_type *const types[] = {
        &esg_example_orders, &esg_example_reservations, &esg_example_payments};
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < sizeof types / sizeof types[0]; i++)
        rc = esg_topic_register_application(types[i], err);
    return rc == ESG_OK ? esg_topic_register_system(&esg_example_system, err) : rc;
}
