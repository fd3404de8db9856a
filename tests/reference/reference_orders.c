/* A command-line view of the example's Orders on the library, for the tests that share a
 * database with the Python reference (test_shared_databases.py). Settings come from the process
 * environment (PERSISTENCE_MODULE, CIPHER_KEY, COMPRESSOR_TOPIC, IS_SNAPSHOTTING_ENABLED, ...).
 *
 *   reference_orders get ORDER_ID_JSON        prints get_order's reply (JSON)
 *   reference_orders create                   creates an order, prints its id (JSON)
 *   reference_orders reserve ORDER_ID_JSON    records Order.Reserved with a new reservation id
 *   reference_orders snapshot ORDER_ID_JSON   takes a snapshot of the latest version
 *   reference_orders snapshot-state ORDER_ID_JSON
 *                                             prints the latest snapshot as the library reads
 *                                             it back: {"version": V, "state": get_order's reply}
 * Exits 0, or 1 with the error on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg.h"
#include "esg/example.h"

static int fail(const esg_error *err)
{
    fprintf(stderr, "reference_orders: %s: %s\n", esg_status_name(err->status), err->message);
    return 1;
}

/* get_order's reply for the aggregate rebuilt from the latest snapshot alone. */
static esg_status snapshot_state(esg_application *app, const esg_uuid *id, esg_error *err)
{
    esg_select_events_options latest = {.desc = true, .limit = 1};
    esg_stored_event_list stored = {0};
    esg_event *snapshot = NULL;
    esg_aggregate *aggregate = NULL;
    esg_status rc =
        esg_recorder_select_snapshots(esg_application_recorder(app), id, &latest, &stored, err);
    if (rc == ESG_OK && stored.n_items != 1)
        rc = esg_error_set(err, ESG_ENOTFOUND, "no snapshot");
    if (rc == ESG_OK)
        rc = esg_mapper_from_stored(esg_application_mapper(app), &stored.items[0], &snapshot, err);
    const esg_application_type *type = esg_application_get_type(app);
    if (rc == ESG_OK)
        rc = esg_aggregate_from_snapshot(type->aggregate_types[0], snapshot, &aggregate, err);
    esg_value *state = rc == ESG_OK ? esg_value_object() : NULL;
    if (rc == ESG_OK && state == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    if (rc == ESG_OK)
        rc = esg_aggregate_write_state(aggregate, state, err);
    char *json = NULL;
    size_t len = 0;
    if (rc == ESG_OK)
        rc = esg_json_encode(state, &json, &len, err);
    if (rc == ESG_OK)
        printf("{\"version\":%lld,\"topic\":\"%s\",\"state\":%s}\n",
               (long long)esg_aggregate_version(aggregate), esg_snapshot_aggregate_topic(snapshot),
               json);
    free(json);
    esg_value_free(state);
    esg_aggregate_free(aggregate);
    esg_event_free(snapshot);
    esg_stored_event_list_clear(&stored);
    return rc;
}

static esg_status reserve(esg_application *app, const esg_uuid *id, esg_error *err)
{
    esg_aggregate *order = NULL;
    esg_uuid reservation;
    esg_uuid4(&reservation);
    esg_value *attributes = esg_value_object();
    esg_status rc = esg_object_set(attributes, "reservation_id", esg_value_uuid(&reservation));
    if (rc == ESG_OK)
        rc = esg_application_get(app, id, 0, &order, err);
    if (rc == ESG_OK) {
        rc = esg_aggregate_trigger(order, "eventsourcing_grpc.example:Order.Reserved", attributes,
                                   err);
        attributes = NULL;
    }
    if (rc == ESG_OK)
        rc = esg_application_save(app, &order, 1, err);
    esg_value_free(attributes);
    esg_aggregate_free(order);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "create") != 0 && argc != 3)) {
        fprintf(stderr, "usage: reference_orders get|reserve|snapshot|snapshot-state ID_JSON | "
                        "create\n");
        return 2;
    }
    esg_error err = {0};
    esg_application *app = NULL;
    if (esg_application_new(&esg_example_orders, NULL, &app, &err) != ESG_OK)
        return fail(&err);
    esg_status rc = ESG_OK;
    const char *command = argv[1];
    char args[200];
    snprintf(args, sizeof args, "[%s]", argc == 3 ? argv[2] : "");
    esg_value *id_value = NULL;
    if (argc == 3)
        rc = esg_json_decode(argv[2], strlen(argv[2]), &id_value, &err);
    const esg_uuid *id = id_value != NULL ? esg_value_as_uuid(id_value) : NULL;
    if (rc == ESG_OK && argc == 3 && id == NULL)
        rc = esg_error_set(&err, ESG_EINVAL, "not a UUID: %s", argv[2]);
    char *reply = NULL;
    size_t reply_len = 0;
    if (rc != ESG_OK) {
    } else if (strcmp(command, "get") == 0 || strcmp(command, "create") == 0) {
        const char *method = command[0] == 'g' ? "get_order" : "create_new_order";
        rc = esg_application_call_json(app, method, args, strlen(args), NULL, 0, &reply, &reply_len,
                                       &err);
        if (rc == ESG_OK)
            printf("%s\n", reply);
    } else if (strcmp(command, "reserve") == 0) {
        rc = reserve(app, id, &err);
    } else if (strcmp(command, "snapshot") == 0) {
        rc = esg_application_take_snapshot(app, id, 0, &err);
    } else if (strcmp(command, "snapshot-state") == 0) {
        rc = snapshot_state(app, id, &err);
    } else {
        rc = esg_error_set(&err, ESG_EINVAL, "unknown command '%s'", command);
    }
    free(reply);
    esg_value_free(id_value);
    esg_application_free(app);
    return rc == ESG_OK ? 0 : fail(&err);
}
