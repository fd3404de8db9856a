/* The example system of eventsourcing_grpc.example (0.1.2), built in: Orders
 * creates orders, Reservations reserves each new order, Payments pays each
 * reserved one, and Orders records both back on the order. Topics, event
 * attributes and stored state are those the Python package writes. Written
 * on the declarative API, as a user's application would be. */
#include "esg/example.h"
#include "esg/topic.h"

#include <stdio.h>

#define MODULE "eventsourcing_grpc.example"

/* ---- Aggregates: their state and their events' data as C structs ---------- */

typedef struct order {
    bool is_reserved;        /* set by Order.Reserved, and then so is reservation_id */
    bool is_paid;            /* set by Order.Paid, and then so is payment_id */
    esg_uuid reservation_id; /* None until reserved, as in Python */
    esg_uuid payment_id;     /* None until paid */
} order;

typedef struct order_reserved {
    esg_uuid reservation_id;
} order_reserved;

typedef struct order_paid {
    esg_uuid payment_id;
} order_paid;

/* A Reservation's and a Payment's state, and their Created events' data: the order. */
typedef struct order_ref {
    esg_uuid order_id;
} order_ref;

ESG_MUTATOR(on_reserved, order, order_reserved)
{
    self->is_reserved = true;
    self->reservation_id = event->reservation_id;
}

ESG_MUTATOR(on_paid, order, order_paid)
{
    self->is_paid = true;
    self->payment_id = event->payment_id;
}

ESG_MUTATOR(on_ref_created, order_ref, order_ref)
{
    *self = *event;
}

static const esg_event_def order_created = {.topic = MODULE ":Order.Created"};
static const esg_event_def order_was_reserved =
    ESG_EVENT(MODULE ":Order.Reserved", order_reserved, on_reserved,
              ESG_FIELD(order_reserved, reservation_id, ESG_UUID));
static const esg_event_def order_was_paid = ESG_EVENT(MODULE ":Order.Paid", order_paid, on_paid,
                                                      ESG_FIELD(order_paid, payment_id, ESG_UUID));
static const esg_event_def reservation_created =
    ESG_EVENT(MODULE ":Reservation.Created", order_ref, on_ref_created,
              ESG_FIELD(order_ref, order_id, ESG_UUID));
static const esg_event_def payment_created = ESG_EVENT(
    MODULE ":Payment.Created", order_ref, on_ref_created, ESG_FIELD(order_ref, order_id, ESG_UUID));

/* The state's fields are Python's Order.__dict__ after _created_on and _modified_on, which its
 * snapshots store; an id is None while its flag is false. */
static const esg_aggregate_type order_type = {
    .topic = MODULE ":Order",
    .state = ESG_STRUCT(order, ESG_FIELD(order, is_reserved, ESG_BOOL),
                        ESG_FIELD(order, is_paid, ESG_BOOL),
                        ESG_OPTIONAL_FIELD(order, reservation_id, ESG_UUID, is_reserved),
                        ESG_OPTIONAL_FIELD(order, payment_id, ESG_UUID, is_paid)),
    .events = ESG_EVENTS(&order_created, &order_was_reserved, &order_was_paid),
};

static const esg_aggregate_type reservation_type = {
    .topic = MODULE ":Reservation",
    .state = ESG_STRUCT(order_ref, ESG_FIELD(order_ref, order_id, ESG_UUID)),
    .events = ESG_EVENTS(&reservation_created),
};

static const esg_aggregate_type payment_type = {
    .topic = MODULE ":Payment",
    .state = ESG_STRUCT(order_ref, ESG_FIELD(order_ref, order_id, ESG_UUID)),
    .events = ESG_EVENTS(&payment_created),
};

/* ---- Orders ---------------------------------------------------------------- */

static esg_status create_new_order(esg_work *work)
{
    const order *o = esg_work_create(work, &order_type, NULL, &order_created, NULL);
    return esg_return_uuid(work, esg_work_id(work, o));
}

/* The dict of the Python example: id, the state's fields, created_on, modified_on. */
static esg_status get_order(esg_work *work)
{
    return esg_return_aggregate(work, esg_work_get(work, &order_type, esg_arg_uuid(work, 0)));
}

static esg_status is_order_reserved(esg_work *work)
{
    const order *o = esg_work_get(work, &order_type, esg_arg_uuid(work, 0));
    return esg_return_bool(work, o->is_reserved);
}

static esg_status is_order_paid(esg_work *work)
{
    const order *o = esg_work_get(work, &order_type, esg_arg_uuid(work, 0));
    return esg_return_bool(work, o->is_paid);
}

/* Records on the order that it was reserved or paid; ignores other events. */
static esg_status orders_policy(esg_work *work, const esg_event *event)
{
    const order_ref *reserved = esg_work_event(work, event, &reservation_created);
    const order_ref *paid = esg_work_event(work, event, &payment_created);
    if (reserved != NULL) {
        const order *o = esg_work_get(work, &order_type, &reserved->order_id);
        esg_work_trigger(work, o, &order_was_reserved, &(order_reserved){event->originator_id});
    } else if (paid != NULL) {
        const order *o = esg_work_get(work, &order_type, &paid->order_id);
        esg_work_trigger(work, o, &order_was_paid, &(order_paid){event->originator_id});
    }
    return esg_work_status(work);
}

const esg_application_type esg_example_orders = ESG_APPLICATION(
    "Orders", MODULE ":Orders", .aggregate_types = ESG_AGGREGATES(&order_type),
    .method_defs =
        ESG_METHODS(ESG_METHOD("create_new_order() -> UUID", create_new_order),
                    ESG_METHOD("get_order(order_id: UUID) -> dict", get_order),
                    ESG_METHOD("is_order_reserved(order_id: UUID) -> bool", is_order_reserved),
                    ESG_METHOD("is_order_paid(order_id: UUID) -> bool", is_order_paid)),
    .process = orders_policy,
    .follow_topics = ESG_TOPICS(MODULE ":Reservation.Created", MODULE ":Payment.Created"));

/* ---- Reservations and Payments -------------------------------------------- */

/* Creates the Reservation or Payment of an order, with the id Python derives from the order id
 * ("/reservations/<id>/" or "/payments/<id>/"): the same order always gives the same id. */
static esg_status create_for_order(esg_work *work, const esg_aggregate_type *type,
                                   const esg_event_def *created, const char *path,
                                   const esg_uuid *order_id)
{
    char order_text[ESG_UUID_STR_SIZE], name[64];
    esg_uuid id;
    esg_uuid_str(order_id, order_text);
    snprintf(name, sizeof name, "/%s/%s/", path, order_text);
    esg_uuid5_url(&id, name);
    esg_work_create(work, type, &id, created, &(order_ref){*order_id});
    return esg_work_status(work);
}

static esg_status reservations_policy(esg_work *work, const esg_event *event)
{
    if (esg_work_event(work, event, &order_created) == NULL)
        return esg_work_status(work);
    return create_for_order(work, &reservation_type, &reservation_created, "reservations",
                            &event->originator_id);
}

static esg_status payments_policy(esg_work *work, const esg_event *event)
{
    if (esg_work_event(work, event, &order_was_reserved) == NULL)
        return esg_work_status(work);
    return create_for_order(work, &payment_type, &payment_created, "payments",
                            &event->originator_id);
}

const esg_application_type esg_example_reservations = ESG_APPLICATION(
    "Reservations", MODULE ":Reservations", .aggregate_types = ESG_AGGREGATES(&reservation_type),
    .process = reservations_policy, .follow_topics = ESG_TOPICS(MODULE ":Order.Created"));

const esg_application_type esg_example_payments = ESG_APPLICATION(
    "Payments", MODULE ":Payments", .aggregate_types = ESG_AGGREGATES(&payment_type),
    .process = payments_policy, .follow_topics = ESG_TOPICS(MODULE ":Order.Reserved"));

/* ---- The system ------------------------------------------------------------ */

const esg_system_def esg_example_system = ESG_SYSTEM(
    MODULE ":system", ESG_PIPE(&esg_example_orders, &esg_example_reservations, &esg_example_orders,
                               &esg_example_payments, &esg_example_orders));

esg_status esg_example_register(esg_error *err)
{
    static const esg_application_type *const types[] = {
        &esg_example_orders, &esg_example_reservations, &esg_example_payments};
    esg_status rc = ESG_OK;
    for (size_t i = 0; rc == ESG_OK && i < sizeof types / sizeof types[0]; i++)
        rc = esg_topic_register_application(types[i], err);
    return rc == ESG_OK ? esg_topic_register_system(&esg_example_system, err) : rc;
}
