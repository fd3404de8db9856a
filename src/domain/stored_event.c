/* Stored events and notifications: copies, and the growable lists that
 * recorders fill in. */
#include "esg/domain.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"

void esg_stored_event_clear(esg_stored_event *stored)
{
    if (stored == NULL)
        return;
    esg_free(stored->topic);
    esg_free(stored->state);
    memset(stored, 0, sizeof *stored);
}

esg_status esg_stored_event_copy(esg_stored_event *dst, const esg_stored_event *src, esg_error *err)
{
    esg_stored_event copy = {
        .originator_id = src->originator_id,
        .originator_version = src->originator_version,
        .state_len = src->state_len,
    };
    copy.topic = esg_strdup(src->topic ? src->topic : "");
    copy.state = esg_malloc(src->state_len + 1);
    if (copy.topic == NULL || copy.state == NULL) {
        esg_stored_event_clear(&copy);
        return esg_error_set(err, ESG_ENOMEM, "out of memory copying a stored event");
    }
    if (src->state_len > 0)
        memcpy(copy.state, src->state, src->state_len);
    copy.state[src->state_len] = '\0';
    *dst = copy;
    return ESG_OK;
}

esg_status esg_stored_event_list_push(esg_stored_event_list *list, const esg_stored_event *stored,
                                      esg_error *err)
{
    if (!esg_grow((void **)&list->items, &list->capacity, list->n_items + 1, sizeof *list->items))
        return esg_error_set(err, ESG_ENOMEM, "out of memory growing a list of events");
    esg_status rc = esg_stored_event_copy(&list->items[list->n_items], stored, err);
    if (rc == ESG_OK)
        list->n_items++;
    return rc;
}

esg_status esg_notification_list_push(esg_notification_list *list, int64_t id,
                                      const esg_stored_event *stored, esg_error *err)
{
    if (!esg_grow((void **)&list->items, &list->capacity, list->n_items + 1, sizeof *list->items))
        return esg_error_set(err, ESG_ENOMEM, "out of memory growing a list of notifications");
    esg_notification *item = &list->items[list->n_items];
    esg_status rc = esg_stored_event_copy(&item->event, stored, err);
    if (rc == ESG_OK) {
        item->id = id;
        list->n_items++;
    }
    return rc;
}

void esg_stored_event_list_clear(esg_stored_event_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n_items; i++)
        esg_stored_event_clear(&list->items[i]);
    esg_free(list->items);
    memset(list, 0, sizeof *list);
}

void esg_notification_list_clear(esg_notification_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n_items; i++)
        esg_stored_event_clear(&list->items[i].event);
    esg_free(list->items);
    memset(list, 0, sizeof *list);
}
