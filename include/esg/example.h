/* The example system of the seed: Orders -> Reservations -> Orders -> Payments
 * -> Orders, with the topics and stored event state of the Python package's
 * eventsourcing_grpc.example. It is an application like a user's, built beside
 * the core (src/example), in the installed library for the console programs,
 * which register it; not included by <esg.h>. */
#ifndef ESG_EXAMPLE_H
#define ESG_EXAMPLE_H

#include "esg/application.h"
#include "esg/system.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "eventsourcing_grpc.example:Orders": create_new_order(), get_order(order_id),
 * is_order_reserved(order_id), is_order_paid(order_id); its policy reserves
 * and pays orders when Reservation.Created and Payment.Created arrive. */
extern const esg_application_type esg_example_orders;
/* "eventsourcing_grpc.example:Reservations": creates a Reservation (id
 * uuid5(NAMESPACE_URL, "/reservations/<order id>/")) for each Order.Created. */
extern const esg_application_type esg_example_reservations;
/* "eventsourcing_grpc.example:Payments": creates a Payment (id
 * uuid5(NAMESPACE_URL, "/payments/<order id>/")) for each Order.Reserved. */
extern const esg_application_type esg_example_payments;
/* "eventsourcing_grpc.example:system": [[Orders, Reservations, Orders, Payments, Orders]]. */
extern const esg_system_def esg_example_system;

/* Registers the three applications and the system under their topics (esg_topic_register_*),
 * as the console programs do at start. Again is a no-op. */
esg_status esg_example_register(esg_error *err);

#ifdef __cplusplus
}
#endif
#endif
