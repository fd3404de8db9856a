/* Domain events, and the mapper between events and their stored form (the
 * topic beside a JSON state of "timestamp" followed by the attributes). */
#include "esg/domain.h"

#include <stdlib.h>
#include <string.h>

#include "core/buffer.h"
#include "core/alloc.h"

esg_status esg_event_new(const esg_uuid *originator_id, int64_t originator_version,
                         const esg_datetime *timestamp, const char *topic, esg_value *attributes,
                         esg_event **out, esg_error *err)
{
    *out = NULL;
    if (attributes != NULL && esg_value_type(attributes) != ESG_TYPE_OBJECT) {
        esg_value_free(attributes);
        return esg_error_set(err, ESG_EINVAL, "event attributes must be an object");
    }
    esg_event *event = esg_calloc(1, sizeof *event);
    if (event == NULL)
        goto nomem;
    event->topic = esg_strdup(topic);
    event->attributes = attributes ? attributes : esg_value_object();
    attributes = NULL;
    if (event->topic == NULL || event->attributes == NULL)
        goto nomem;
    event->originator_id = *originator_id;
    event->originator_version = originator_version;
    if (timestamp != NULL)
        event->timestamp = *timestamp;
    else
        esg_datetime_now_utc(&event->timestamp);
    *out = event;
    return ESG_OK;
nomem:
    esg_value_free(attributes);
    esg_event_free(event);
    return esg_error_set(err, ESG_ENOMEM, "out of memory making event %s", topic);
}

esg_value *esg_event_get(const esg_event *event, const char *name)
{
    return esg_object_get(event->attributes, name);
}

void esg_event_free(esg_event *event)
{
    if (event == NULL)
        return;
    esg_free(event->topic);
    esg_value_free(event->attributes);
    esg_free(event);
}

esg_status esg_event_to_stored(const esg_event *event, esg_stored_event *out, esg_error *err)
{
    memset(out, 0, sizeof *out);
    esg_value *timestamp = esg_value_datetime(&event->timestamp);
    char *timestamp_json = NULL, *attributes_json = NULL;
    size_t timestamp_len = 0, attributes_len = 0;
    esg_buffer state = {0};
    esg_status rc = ESG_ENOMEM;
    if (timestamp == NULL)
        goto out;
    rc = esg_json_encode(timestamp, &timestamp_json, &timestamp_len, err);
    if (rc == ESG_OK)
        rc = esg_json_encode(event->attributes, &attributes_json, &attributes_len, err);
    if (rc != ESG_OK)
        goto out;
    /* Python writes the event's __dict__ without the originator id and version:
     * the timestamp first, then the attributes, so splice them into one object. */
    esg_buffer_put_str(&state, "{\"timestamp\":");
    esg_buffer_put(&state, timestamp_json, timestamp_len);
    if (attributes_len > 2) {
        esg_buffer_put_char(&state, ',');
        esg_buffer_put(&state, attributes_json + 1, attributes_len - 1);
    } else {
        esg_buffer_put_char(&state, '}');
    }
    out->topic = esg_strdup(event->topic);
    out->state = (uint8_t *)esg_buffer_take(&state, &out->state_len);
    if (out->topic == NULL || out->state == NULL) {
        esg_stored_event_clear(out);
        rc = ESG_ENOMEM;
        goto out;
    }
    out->originator_id = event->originator_id;
    out->originator_version = event->originator_version;
out:
    if (rc == ESG_ENOMEM)
        esg_error_set(err, rc, "out of memory storing event %s", event->topic);
    esg_value_free(timestamp);
    esg_free(timestamp_json);
    esg_free(attributes_json);
    esg_buffer_reset(&state);
    return rc;
}

esg_status esg_event_from_stored(const esg_stored_event *stored, esg_event **out, esg_error *err)
{
    esg_value *state = NULL, *timestamp = NULL;
    *out = NULL;
    esg_status rc = esg_json_decode((const char *)stored->state, stored->state_len, &state, err);
    if (rc != ESG_OK)
        return rc;
    if (esg_value_type(state) != ESG_TYPE_OBJECT) {
        rc = esg_error_set(err, ESG_EINVAL, "the state of event %s is not a JSON object",
                           stored->topic);
        goto out;
    }
    timestamp = esg_object_take(state, "timestamp");
    if (esg_value_as_datetime(timestamp) == NULL) {
        rc = esg_error_set(err, ESG_EINVAL, "the state of event %s has no datetime timestamp",
                           stored->topic);
        goto out;
    }
    rc = esg_event_new(&stored->originator_id, stored->originator_version,
                       esg_value_as_datetime(timestamp), stored->topic, state, out, err);
    state = NULL; /* taken by esg_event_new */
out:
    esg_value_free(state);
    esg_value_free(timestamp);
    return rc;
}
