/* The mapper on arbitrary stored state (what a database or a remote leader
 * hands back): esg_event_from_stored, and for what it accepts, a round trip
 * through esg_event_to_stored whose state is then a fixed point. */
#include "fuzz_common.h"

#include "esg/domain.h"

#define TOPIC "eventsourcing_grpc.example:Order.Created"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    esg_error err = {0};
    esg_event *event = NULL, *again = NULL;
    esg_stored_event first = {0}, second = {0};
    esg_stored_event stored = {
        .originator_id = {{0xe3, 0x55, 0x20, 0x9c, 0x25, 0xcc, 0x45, 0xcb, 0xa0, 0xa5, 0x29, 0xc3,
                           0x02, 0xb8, 0xe1, 0x8f}},
        .originator_version = 1,
        .topic = (char *)TOPIC,
        .state = (uint8_t *)fuzz_strndup(data, size),
        .state_len = size,
    };

    if (esg_event_from_stored(&stored, &event, &err) != ESG_OK)
        goto out;
    FUZZ_CHECK(strcmp(event->topic, TOPIC) == 0 && event->originator_version == 1,
               "the topic or version changed");
    FUZZ_CHECK(esg_event_to_stored(event, &first, &err) == ESG_OK,
               "an accepted event does not store (%s)", err.message);
    FUZZ_CHECK(esg_event_from_stored(&first, &again, &err) == ESG_OK,
               "a stored event does not load back (%s): %.200s", err.message, first.state);
    FUZZ_CHECK(esg_uuid_equal(&event->originator_id, &again->originator_id) &&
                   esg_datetime_equal(&event->timestamp, &again->timestamp) &&
                   esg_value_equal(event->attributes, again->attributes),
               "the event changed in a round trip: %.200s", first.state);
    FUZZ_CHECK(esg_event_to_stored(again, &second, &err) == ESG_OK, "re-storing fails (%s)",
               err.message);
    FUZZ_CHECK(first.state_len == second.state_len &&
                   memcmp(first.state, second.state, first.state_len) == 0,
               "the stored state is not a fixed point: %.200s <> %.200s", first.state,
               second.state);
out:
    esg_stored_event_clear(&first);
    esg_stored_event_clear(&second);
    esg_event_free(event);
    esg_event_free(again);
    free(stored.state);
    return 0;
}
