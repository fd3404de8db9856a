/* The event-sourcing core on its own: an aggregate created and changed by
 * events, recorded in SQLite (or in memory), read back from its events, and
 * the application's notification log printed as a follower would read it.
 *
 * Run: PERSISTENCE_MODULE=eventsourcing.sqlite SQLITE_DBNAME=quickstart.db ./quickstart */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg.h"

typedef struct order {
    bool is_reserved;        /* set by Order.Reserved */
    esg_uuid reservation_id; /* valid when is_reserved */
} order;

static esg_status order_reserved(void *state, const esg_event *event, esg_error *err)
{
    const esg_uuid *id = esg_value_as_uuid(esg_event_get(event, "reservation_id"));
    if (id == NULL)
        return esg_error_set(err, ESG_EINVAL, "Order.Reserved needs a reservation_id");
    order *o = state;
    o->is_reserved = true;
    o->reservation_id = *id;
    return ESG_OK;
}

static const esg_event_type order_events[] = {
    {"eventsourcing_grpc.example:Order.Created", NULL},
    {"eventsourcing_grpc.example:Order.Reserved", order_reserved},
};

static const esg_aggregate_type order_type = {
    .topic = "eventsourcing_grpc.example:Order",
    .state_size = sizeof(order),
    .event_types = order_events,
    .n_event_types = 2,
};

/* Records the aggregate's pending events in one transaction. */
static esg_status save(esg_recorder *recorder, esg_aggregate *aggregate, esg_error *err)
{
    esg_event **events = NULL;
    size_t n_events = 0;
    esg_aggregate_collect(aggregate, &events, &n_events);
    esg_stored_event *stored = calloc(n_events ? n_events : 1, sizeof *stored);
    esg_status rc = stored ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == ESG_OK && i < n_events; i++)
        rc = esg_event_to_stored(events[i], &stored[i], err);
    if (rc == ESG_OK)
        rc = esg_recorder_insert_events(recorder, stored, n_events, NULL, NULL, err);
    for (size_t i = 0; i < n_events; i++) {
        if (stored)
            esg_stored_event_clear(&stored[i]);
        esg_event_free(events[i]);
    }
    free(stored);
    esg_free(events); /* the library gave it */
    return rc;
}

static esg_status run(esg_recorder *recorder, esg_error *err)
{
    esg_aggregate *created = NULL, *replayed = NULL;
    esg_stored_event_list stored = {0};
    esg_notification_list log = {0};
    esg_event **events = NULL;
    size_t n_events = 0;

    esg_status rc =
        esg_aggregate_create(&order_type, order_events[0].topic, NULL, NULL, &created, err);
    char order_text[ESG_UUID_STR_SIZE], name[96];
    esg_uuid reservation_id;
    if (rc == ESG_OK) {
        esg_uuid_str(esg_aggregate_id(created), order_text);
        snprintf(name, sizeof name, "/reservations/%s/", order_text);
        esg_uuid5_url(&reservation_id, name);
        esg_value *attributes = esg_value_object();
        rc = esg_object_set(attributes, "reservation_id", esg_value_uuid(&reservation_id));
        if (rc == ESG_OK)
            rc = esg_aggregate_trigger(created, order_events[1].topic, attributes, err);
        else
            esg_value_free(attributes);
    }
    if (rc == ESG_OK)
        rc = save(recorder, created, err);
    if (rc == ESG_OK)
        printf("order %s created and reserved (version %lld)\n", order_text,
               (long long)esg_aggregate_version(created));

    /* Read it back: select its stored events, decode them, replay. */
    if (rc == ESG_OK)
        rc = esg_recorder_select_events(recorder, esg_aggregate_id(created), NULL, &stored, err);
    if (rc == ESG_OK) {
        events = calloc(stored.n_items ? stored.n_items : 1, sizeof *events);
        if (events == NULL)
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    }
    for (; rc == ESG_OK && n_events < stored.n_items; n_events++)
        rc = esg_event_from_stored(&stored.items[n_events], &events[n_events], err);
    if (rc == ESG_OK)
        rc = esg_aggregate_replay(&order_type, events, n_events, &replayed, err);
    if (rc == ESG_OK)
        printf("replayed from %zu events: is_reserved=%s\n", n_events,
               ((order *)esg_aggregate_state(replayed))->is_reserved ? "true" : "false");

    if (rc == ESG_OK)
        rc = esg_recorder_select_notifications(recorder, 1, 10, 0, NULL, 0, &log, err);
    for (size_t i = 0; rc == ESG_OK && i < log.n_items; i++)
        printf("notification %lld: %s %.*s\n", (long long)log.items[i].id, log.items[i].event.topic,
               (int)log.items[i].event.state_len, (const char *)log.items[i].event.state);

    for (size_t i = 0; events != NULL && i < n_events; i++)
        esg_event_free(events[i]);
    free(events);
    esg_notification_list_clear(&log);
    esg_stored_event_list_clear(&stored);
    esg_aggregate_free(replayed);
    esg_aggregate_free(created);
    return rc;
}

int main(void)
{
    esg_error err = {0};
    esg_env *env = esg_env_from_process();
    esg_recorder *recorder = NULL;
    if (env == NULL) {
        fprintf(stderr, "quickstart: out of memory\n");
        return 1;
    }
    esg_status rc = esg_recorder_open(env, "Orders", &recorder, &err);
    if (rc == ESG_OK) {
        printf("persistence: %s\n", esg_recorder_backend(recorder));
        rc = run(recorder, &err);
    }
    if (rc != ESG_OK)
        fprintf(stderr, "quickstart: %s: %s\n", esg_status_name(rc), err.message);
    esg_recorder_close(recorder);
    esg_env_free(env);
    return rc == ESG_OK ? 0 : 1;
}
