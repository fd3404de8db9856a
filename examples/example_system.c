/* The example system (Orders -> Reservations -> Orders -> Payments -> Orders)
 * run in process: orders are created, reserved and paid, and Orders'
 * notification log is printed. Persistence comes from the environment
 * (PERSISTENCE_MODULE, <APP>_SQLITE_DBNAME, ...), as for every application.
 *
 * Usage: example_system [NUMBER_OF_ORDERS]   (default 3) */
#include <stdio.h>
#include <stdlib.h>

#include "esg.h"
#include "esg/application.h"
#include "esg/system.h"
#include "esg/example.h"
#include "esg/topic.h"

static esg_status call_with_order_id(esg_application *orders, const char *method,
                                     const esg_value *order_id, esg_value **result, esg_error *err)
{
    esg_value *args = esg_value_array();
    esg_status rc = esg_array_append(args, esg_value_copy(order_id));
    if (rc == ESG_OK)
        rc = esg_application_call(orders, method, args, NULL, result, err);
    else
        esg_error_set(err, rc, "out of memory");
    esg_value_free(args);
    return rc;
}

static esg_status run(esg_local_runner *runner, long n_orders, esg_error *err)
{
    esg_application *orders = esg_local_runner_get(runner, "Orders");
    esg_notification_list log = {0};
    esg_status rc = ESG_OK;
    if (orders == NULL)
        return esg_error_set(err, ESG_ENOTFOUND, "the system has no Orders application");
    for (long i = 0; i < n_orders && rc == ESG_OK; i++) {
        esg_value *order_id = NULL, *is_paid = NULL;
        rc = esg_application_call(orders, "create_new_order", NULL, NULL, &order_id, err);
        if (rc == ESG_OK)
            rc = call_with_order_id(orders, "is_order_paid", order_id, &is_paid, err);
        if (rc == ESG_OK) {
            char text[ESG_UUID_STR_SIZE];
            esg_uuid_str(esg_value_as_uuid(order_id), text);
            printf("order %s paid: %s\n", text, esg_value_as_bool(is_paid) ? "yes" : "NO");
            if (!esg_value_as_bool(is_paid))
                rc = esg_error_set(err, ESG_EINTERNAL, "order %s was not paid", text);
        }
        esg_value_free(order_id);
        esg_value_free(is_paid);
    }
    if (rc == ESG_OK && esg_local_runner_error(runner) != NULL)
        rc = esg_error_set(err, ESG_EINTERNAL, "processing failed: %s",
                           esg_local_runner_error(runner)->message);
    if (rc == ESG_OK)
        rc = esg_application_select_notifications(orders, 1, 9, 0, NULL, 0, &log, err);
    if (rc == ESG_OK)
        printf("Orders' first notifications:\n");
    for (size_t i = 0; rc == ESG_OK && i < log.n_items; i++) {
        char text[ESG_UUID_HEX_SIZE];
        esg_uuid_hex(&log.items[i].event.originator_id, text);
        printf("  %lld %s v%lld %s\n", (long long)log.items[i].id, text,
               (long long)log.items[i].event.originator_version, log.items[i].event.topic);
    }
    esg_notification_list_clear(&log);
    return rc;
}

int main(int argc, char **argv)
{
    long n_orders = argc > 1 ? strtol(argv[1], NULL, 10) : 3;
    if (n_orders < 1 || n_orders > 1000000) {
        fprintf(stderr, "usage: example_system [NUMBER_OF_ORDERS (1..1000000)]\n");
        return 2;
    }
    esg_error err = {0};
    esg_env *env = esg_env_from_process();
    const esg_system_def *system = NULL;
    esg_local_runner *runner = NULL;
    if (env == NULL) {
        fprintf(stderr, "example_system: out of memory\n");
        return 1;
    }
    const char *topic = esg_env_get(env, "SYSTEM_TOPIC");
    if (topic == NULL || topic[0] == '\0')
        topic = "eventsourcing_grpc.example:system";
    esg_status rc = esg_example_register(&err);
    if (rc == ESG_OK)
        rc = esg_topic_resolve_system(topic, env, &system, &err);
    if (rc == ESG_OK)
        rc = esg_local_runner_start(system, env, &runner, &err);
    if (rc == ESG_OK) {
        printf("running %s in process\n", topic);
        rc = run(runner, n_orders, &err);
    }
    if (rc != ESG_OK)
        fprintf(stderr, "example_system: %s: %s\n", esg_status_name(rc), err.message);
    esg_local_runner_stop(runner);
    esg_env_free(env);
    return rc == ESG_OK ? 0 : 1;
}
