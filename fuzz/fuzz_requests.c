/* The server's request decoding: the first input byte picks a request message
 * (its value % 5: Ping's Empty, MethodRequest, NotificationsRequest,
 * PromptRequest, HealthCheckRequest), the rest is unpacked with protobuf-c as
 * the server does. With the byte's high bit set the rest is instead the
 * message's string fields separated by NUL bytes (topics last), packed first:
 * the fuzzer then changes a field's text without mending length prefixes. What unpacks must pack to
 * bytes that unpack and pack the same. Then, as the server goes on: a MethodRequest is called with
 * esg_application_call_json on an in-memory Orders application holding one
 * order (74e4534f-..., the id of the captured calls in tests/vectors), and a
 * NotificationsRequest's numbers are parsed with esg_wire_parse_int under the
 * server's rules and its page selected. */
#include "fuzz_common.h"

#include <protobuf-c/protobuf-c.h>

#include "esg/example.h"
#include "esg/grpc.h"
#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/wire.h"

static const ProtobufCMessageDescriptor *const request_types[] = {
    &eventsourcing_grpc__empty__descriptor,
    &eventsourcing_grpc__method_request__descriptor,
    &eventsourcing_grpc__notifications_request__descriptor,
    &eventsourcing_grpc__prompt_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,
};
#define N_REQUEST_TYPES (sizeof request_types / sizeof request_types[0])

/* The Order.Created state the Python reference stored (tests/vectors/stored_events.json). */
static const char order_created_state[] =
    "{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2026-11-26T08:31:39.184888+00:00\"},"
    "\"originator_topic\":\"eventsourcing_grpc.example:Order\"}";

/* A fresh application per input, so that a crash replays from its input alone. */
static esg_application *new_orders(void)
{
    esg_application *app = NULL;
    esg_error err = {0};
    esg_env *env = esg_env_new();
    if (env == NULL || esg_application_new(&esg_example_orders, env, &app, &err) != ESG_OK)
        abort();
    esg_env_free(env);
    esg_stored_event created = {
        .originator_id = {{0x74, 0xe4, 0x53, 0x4f, 0xaf, 0x8a, 0x48, 0x12, 0x97, 0x94, 0xc0, 0x22,
                           0x3d, 0x49, 0x5a, 0xdc}},
        .originator_version = 1,
        .topic = (char *)"eventsourcing_grpc.example:Order.Created",
        .state = (uint8_t *)order_created_state,
        .state_len = sizeof order_created_state - 1,
    };
    if (esg_recorder_insert_events(esg_application_recorder(app), &created, 1, NULL, NULL, &err) !=
        ESG_OK)
        abort();
    return app;
}

/* server.c's parse_number: a required (or, with allow_empty, optional: 0) number >= minimum. */
static bool parse_number(const char *text, int64_t minimum, bool allow_empty, int64_t *out)
{
    FUZZ_CHECK(text != NULL, "an unpacked string is NULL");
    if (text[0] == '\0' && allow_empty) {
        *out = 0;
        return true;
    }
    return esg_wire_parse_int(text, out) && *out >= minimum;
}

static void call_method(const EventsourcingGrpc__MethodRequest *request)
{
    esg_application *app = new_orders();
    esg_error err = {0};
    char *result = NULL;
    size_t result_len = 0;
    esg_status rc = esg_application_call_json(
        app, request->method_name, (const char *)request->args.data, request->args.len,
        (const char *)request->kwargs.data, request->kwargs.len, &result, &result_len, &err);
    FUZZ_CHECK((rc == ESG_OK) == (result != NULL), "status %d with result %p", rc, (void *)result);
    if (result != NULL)
        FUZZ_CHECK(strlen(result) == result_len, "result length %zu for %.100s", result_len,
                   result);
    else
        FUZZ_CHECK(err.message[0] != '\0', "a failure without a message");
    free(result);
    esg_application_free(app);
}

static void get_notifications(const EventsourcingGrpc__NotificationsRequest *request)
{
    int64_t start = 0, limit = 0, stop = 0;
    if (!parse_number(request->start, 1, false, &start) ||
        !parse_number(request->limit, 1, false, &limit) ||
        !parse_number(request->stop, 1, true, &stop))
        return;
    if (limit > ESG_GRPC_MAX_PAGE_NOTIFICATIONS)
        limit = ESG_GRPC_MAX_PAGE_NOTIFICATIONS;
    esg_application *app = new_orders();
    esg_error err = {0};
    esg_notification_list list = {0};
    esg_status rc = esg_application_select_notifications(app, start, limit, stop,
                                                         (const char *const *)request->topics,
                                                         request->n_topics, &list, &err);
    FUZZ_CHECK(rc == ESG_OK, "a valid page fails: %s", err.message);
    FUZZ_CHECK(list.n_items <= 1 && list.n_items <= (size_t)limit, "%zu notifications",
               list.n_items);
    esg_notification_list_clear(&list);
    esg_application_free(app);
}

/* pack(unpack(pack(m))) == pack(m): what the server accepts it could also send.
 * Unknown fields are left out: protobuf-c keeps them verbatim and 1.4.1 takes
 * field number 0 when its tag is written in two bytes (81 00) but not in one
 * (01), so they need not survive a round trip; the server ignores them. */
static void check_repack(const ProtobufCMessageDescriptor *type, const ProtobufCMessage *message)
{
    if (message->n_unknown_fields > 0)
        return;
    size_t len = protobuf_c_message_get_packed_size(message);
    uint8_t *packed = malloc(len ? len : 1);
    FUZZ_CHECK(packed != NULL && protobuf_c_message_pack(message, packed) == len, "packing a %s",
               type->name);
    ProtobufCMessage *again = protobuf_c_message_unpack(type, NULL, len, packed);
    FUZZ_CHECK(again != NULL, "a packed %s does not unpack", type->name);
    size_t again_len = protobuf_c_message_get_packed_size(again);
    uint8_t *repacked = malloc(again_len ? again_len : 1);
    FUZZ_CHECK(repacked != NULL && protobuf_c_message_pack(again, repacked) == again_len,
               "repacking a %s", type->name);
    FUZZ_CHECK(again_len == len && memcmp(packed, repacked, len) == 0,
               "a %s packs differently after a round trip", type->name);
    protobuf_c_message_free_unpacked(again, NULL);
    free(packed);
    free(repacked);
}

static void handle(const ProtobufCMessageDescriptor *type, ProtobufCMessage *message);

/* The next NUL-separated field of *data (advanced past it), as a new string. */
static char *next_field(const uint8_t **data, size_t *size, size_t *len)
{
    const uint8_t *end = memchr(*data, '\0', *size);
    size_t n = end ? (size_t)(end - *data) : *size;
    char *field = fuzz_strndup(*data, n);
    *data += end ? n + 1 : n;
    *size -= end ? n + 1 : n;
    if (len != NULL)
        *len = n;
    return field;
}

/* Packs a message of type from NUL-separated string fields; *packed is malloc'ed. */
static void pack_fields(const ProtobufCMessageDescriptor *type, const uint8_t *data, size_t size,
                        uint8_t **packed, size_t *packed_len)
{
    char *fields[3] = {NULL, NULL, NULL}, *topics[8];
    size_t lens[3] = {0, 0, 0}, n_topics = 0;
    for (size_t i = 0; i < 3; i++)
        fields[i] = next_field(&data, &size, &lens[i]);
    while (size > 0 && n_topics < sizeof topics / sizeof topics[0])
        topics[n_topics++] = next_field(&data, &size, NULL);
    EventsourcingGrpc__MethodRequest method = EVENTSOURCING_GRPC__METHOD_REQUEST__INIT;
    EventsourcingGrpc__NotificationsRequest notifications =
        EVENTSOURCING_GRPC__NOTIFICATIONS_REQUEST__INIT;
    EventsourcingGrpc__PromptRequest prompt = EVENTSOURCING_GRPC__PROMPT_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckRequest health = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    EventsourcingGrpc__Empty empty = EVENTSOURCING_GRPC__EMPTY__INIT;
    ProtobufCMessage *message = &empty.base;
    if (type == method.base.descriptor) {
        method.method_name = fields[0];
        method.args = (ProtobufCBinaryData){lens[1], (uint8_t *)fields[1]};
        method.kwargs = (ProtobufCBinaryData){lens[2], (uint8_t *)fields[2]};
        message = &method.base;
    } else if (type == notifications.base.descriptor) {
        notifications.start = fields[0];
        notifications.limit = fields[1];
        notifications.stop = fields[2];
        notifications.topics = topics;
        notifications.n_topics = n_topics;
        message = &notifications.base;
    } else if (type == prompt.base.descriptor) {
        prompt.upstream_name = fields[0];
        message = &prompt.base;
    } else if (type == health.base.descriptor) {
        health.service = fields[0];
        message = &health.base;
    }
    *packed_len = protobuf_c_message_get_packed_size(message);
    *packed = malloc(*packed_len ? *packed_len : 1);
    if (*packed == NULL)
        abort();
    protobuf_c_message_pack(message, *packed);
    for (size_t i = 0; i < 3; i++)
        free(fields[i]);
    for (size_t i = 0; i < n_topics; i++)
        free(topics[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const ProtobufCMessageDescriptor *type = request_types[(data[0] & 0x7f) % N_REQUEST_TYPES];
    if (data[0] & 0x80) {
        uint8_t *packed = NULL;
        size_t packed_len = 0;
        pack_fields(type, data + 1, size - 1, &packed, &packed_len);
        ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, packed_len, packed);
        free(packed);
        FUZZ_CHECK(message != NULL, "a packed %s does not unpack", type->name);
        handle(type, message);
        return 0;
    }
    /* The server unpacks from its own copy of the bytes, so a copy here too:
     * ASan then sees any read past their end. */
    uint8_t *bytes = malloc(size - 1 > 0 ? size - 1 : 1);
    if (bytes == NULL)
        abort();
    memcpy(bytes, data + 1, size - 1);
    ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, size - 1, bytes);
    free(bytes);
    if (message == NULL)
        return 0;
    handle(type, message);
    return 0;
}

/* What the server does with a request it unpacked; frees it. */
static void handle(const ProtobufCMessageDescriptor *type, ProtobufCMessage *message)
{
    check_repack(type, message);
    if (type == &eventsourcing_grpc__method_request__descriptor)
        call_method((EventsourcingGrpc__MethodRequest *)message);
    else if (type == &eventsourcing_grpc__notifications_request__descriptor)
        get_notifications((EventsourcingGrpc__NotificationsRequest *)message);
    else if (type == &eventsourcing_grpc__prompt_request__descriptor)
        FUZZ_CHECK(((EventsourcingGrpc__PromptRequest *)message)->upstream_name != NULL,
                   "no upstream name");
    else if (type == &grpc__health__v1__health_check_request__descriptor)
        FUZZ_CHECK(((Grpc__Health__V1__HealthCheckRequest *)message)->service != NULL,
                   "no service name");
    protobuf_c_message_free_unpacked(message, NULL);
}
