/* The methods of eventsourcing_grpc.Application, as eventsourcing-grpc 0.1.2 answers them: Ping,
 * CallApplicationMethod (methods by name with JSON arguments), Prompt (from a leader of the
 * application's system) and GetNotifications (pages of the notification log). */
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"
#include "core/int_text.h"

void srv_handle_ping(server_call *c, const ProtobufCMessage *unused)
{
    (void)unused;
    EventsourcingGrpc__Empty empty = EVENTSOURCING_GRPC__EMPTY__INIT;
    srv_reply_message(c, ESG_OK, NULL, &empty.base);
}

/* The brackets, braces, commas and colons of a JSON text outside its strings:
 * each comes with a value of its own, so a text has at least as many values. */
static size_t json_separators(const uint8_t *text, size_t len)
{
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = text[i];
        if (in_string && ch == '\\')
            i++;
        else if (ch == '"')
            in_string = !in_string;
        else if (!in_string && (ch == '[' || ch == '{' || ch == ',' || ch == ':'))
            n++;
    }
    return n;
}

/* The call's idempotency key (ESG_IDEMPOTENCY_KEY_METADATA) copied into key: "" when it has
 * none; ESG_EINVAL when it is not 1 to 255 printable ASCII characters. */
static esg_status idempotency_key(const server_call *c, char key[ESG_IDEMPOTENCY_KEY_MAX + 1],
                                  esg_error *err)
{
    key[0] = '\0';
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *m = &c->metadata.metadata[i];
        if (grpc_slice_str_cmp(m->key, ESG_IDEMPOTENCY_KEY_METADATA) != 0)
            continue;
        size_t len = GRPC_SLICE_LENGTH(m->value);
        const uint8_t *value = GRPC_SLICE_START_PTR(m->value);
        if (!esg_wire_is_idempotency_key(value, len))
            return esg_error_set(err, ESG_EINVAL,
                                 "the %s metadata must be 1 to %d printable ASCII characters",
                                 ESG_IDEMPOTENCY_KEY_METADATA, ESG_IDEMPOTENCY_KEY_MAX);
        memcpy(key, value, len);
        key[len] = '\0';
    }
    return ESG_OK;
}

void srv_handle_call(server_call *c, const ProtobufCMessage *message)
{
    const EventsourcingGrpc__MethodRequest *request =
        (const EventsourcingGrpc__MethodRequest *)message;
    esg_error err = {0};
    char *result = NULL;
    size_t result_len = 0;
    char key[ESG_IDEMPOTENCY_KEY_MAX + 1];
    esg_status rc = idempotency_key(c, key, &err);
    if (rc == ESG_OK && json_separators(request->args.data, request->args.len) +
                                json_separators(request->kwargs.data, request->kwargs.len) >
                            ESG_GRPC_MAX_CALL_JSON_VALUES)
        rc = esg_error_set(&err, ESG_EINVAL, "args and kwargs hold more than %d JSON values",
                           ESG_GRPC_MAX_CALL_JSON_VALUES);
    /* Missing args or kwargs mean none (the reference fails on them instead). */
    if (rc == ESG_OK)
        rc = esg_application_call_json_idempotent(
            c->server->app, key[0] != '\0' ? key : NULL, request->method_name,
            (const char *)request->args.data, request->args.len, (const char *)request->kwargs.data,
            request->kwargs.len, &result, &result_len, NULL, &err);
    EventsourcingGrpc__MethodReply method_reply = EVENTSOURCING_GRPC__METHOD_REPLY__INIT;
    method_reply.data.data = (uint8_t *)result;
    method_reply.data.len = result_len;
    srv_reply_message(c, rc, &err, &method_reply.base);
    esg_free(result);
}

/* What a leader of this library says in a Prompt's metadata: the highest notification id it has
 * recorded; 0 when absent or not a positive whole number (it is advice: never an error). */
static int64_t leader_notification_id(const server_call *c)
{
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *m = &c->metadata.metadata[i];
        if (!grpc_slice_str_cmp(m->key, ESG_PROMPT_NOTIFICATION_ID_KEY)) {
            char text[24];
            size_t len = GRPC_SLICE_LENGTH(m->value);
            if (len == 0 || len >= sizeof text)
                return 0;
            memcpy(text, GRPC_SLICE_START_PTR(m->value), len);
            text[len] = '\0';
            int64_t id = 0;
            return esg_wire_parse_int(text, &id) && id > 0 ? id : 0;
        }
    }
    return 0;
}

void srv_handle_prompt(server_call *c, const ProtobufCMessage *message)
{
    const EventsourcingGrpc__PromptRequest *request =
        (const EventsourcingGrpc__PromptRequest *)message;
    esg_server *server = c->server;
    const char *name = request->upstream_name;
    bool is_leader = false;
    for (size_t i = 0; i < server->n_leader_names && !is_leader; i++)
        is_leader = strcmp(server->leader_names[i], name) == 0;
    esg_error err = {0};
    esg_status rc = ESG_OK;
    if (!is_leader) {
        if (server->n_leader_names == 0)
            rc = esg_error_set(&err, ESG_EINVAL, "'%.100s' is not a leader of %s: it follows none",
                               name, esg_application_name(server->app));
        else
            rc = esg_error_set(&err, ESG_EINVAL, "'%.100s' is not a leader of %s", name,
                               esg_application_name(server->app));
    } else if (server->on_prompt != NULL) {
        server->on_prompt(server->on_prompt_ctx, name, leader_notification_id(c));
    }
    EventsourcingGrpc__Empty empty = EVENTSOURCING_GRPC__EMPTY__INIT;
    srv_reply_message(c, rc, &err, &empty.base);
}

/* Parses a required (or, with allow_empty, optional: 0) number >= minimum. */
static esg_status parse_number(const char *name, const char *text, int64_t minimum,
                               bool allow_empty, int64_t *out, esg_error *err)
{
    if (text[0] == '\0' && allow_empty) {
        *out = 0;
        return ESG_OK;
    }
    if (!esg_wire_parse_int(text, out))
        return esg_error_set(err, ESG_EINVAL, "%s must be a whole number, not '%.40s'", name, text);
    if (*out < minimum)
        return esg_error_set(err, ESG_EINVAL, "%s must be >= %lld, not %lld", name,
                             (long long)minimum, (long long)*out);
    return ESG_OK;
}

esg_status srv_page_build(srv_page *page, const esg_notification_list *list, esg_error *err)
{
    memset(page, 0, sizeof *page);
    size_t n = list->n_items;
    if (n == 0)
        return ESG_OK;
    page->items = esg_calloc(n, sizeof *page->items);
    page->pointers = esg_calloc(n, sizeof *page->pointers);
    page->numbers = esg_calloc(n, sizeof *page->numbers);
    if (page->items == NULL || page->pointers == NULL || page->numbers == NULL) {
        srv_page_free(page);
        return esg_error_set(err, ESG_ENOMEM, "out of memory making a page of notifications");
    }
    size_t page_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const esg_notification *notification = &list->items[i];
        page_bytes += notification->event.state_len + strlen(notification->event.topic) + 64;
        /* A page never exceeds the byte cap, but always holds at least one. */
        if (i > 0 && page_bytes > ESG_GRPC_MAX_PAGE_BYTES)
            break;
        EventsourcingGrpc__Notification *item = &page->items[i];
        eventsourcing_grpc__notification__init(item);
        esg_int_text(notification->id, page->numbers[i][0]);
        esg_uuid_hex(&notification->event.originator_id, page->numbers[i][1]);
        esg_int_text(notification->event.originator_version, page->numbers[i][2]);
        item->id = page->numbers[i][0];
        item->originator_id = page->numbers[i][1];
        item->originator_version = page->numbers[i][2];
        item->topic = notification->event.topic;
        item->state.data = notification->event.state;
        item->state.len = notification->event.state_len;
        page->pointers[i] = item;
        page->n = i + 1;
    }
    return ESG_OK;
}

void srv_page_free(srv_page *page)
{
    esg_free(page->items);
    esg_free(page->pointers);
    esg_free(page->numbers);
    memset(page, 0, sizeof *page);
}

void srv_handle_get_notifications(server_call *c, const ProtobufCMessage *message)
{
    const EventsourcingGrpc__NotificationsRequest *request =
        (const EventsourcingGrpc__NotificationsRequest *)message;
    esg_error err = {0};
    int64_t start = 0, limit = 0, stop = 0;
    esg_notification_list list = {0};
    srv_page page = {0};
    esg_status rc = parse_number("start", request->start, 1, false, &start, &err);
    if (rc == ESG_OK)
        rc = parse_number("limit", request->limit, 1, false, &limit, &err);
    if (rc == ESG_OK)
        rc = parse_number("stop", request->stop, 1, true, &stop, &err);
    if (rc == ESG_OK && limit > ESG_GRPC_MAX_PAGE_NOTIFICATIONS)
        limit = ESG_GRPC_MAX_PAGE_NOTIFICATIONS;
    if (rc == ESG_OK)
        rc = esg_application_select_notifications(c->server->app, start, limit, stop,
                                                  (const char *const *)request->topics,
                                                  request->n_topics, &list, &err);
    if (rc == ESG_OK)
        rc = srv_page_build(&page, &list, &err);
    EventsourcingGrpc__NotificationsReply notifications_reply =
        EVENTSOURCING_GRPC__NOTIFICATIONS_REPLY__INIT;
    notifications_reply.notifications = page.pointers;
    notifications_reply.n_notifications = page.n;
    srv_reply_message(c, rc, &err, &notifications_reply.base);
    srv_page_free(&page);
    esg_notification_list_clear(&list);
}
