/* grpc.reflection.v1alpha and v1 ServerReflection: generic gRPC tools (grpcurl, grpc_cli,
 * Postman, Python's reflection client) list the services and read their messages from the
 * server itself. The files served are the protocols' own descriptors, made by protoc at build
 * time (proto_descriptors.h); which file declares a symbol is found from protobuf-c's
 * descriptors of the same files. v1alpha and v1 are the same messages on the wire under two
 * package names, so both are served with the v1alpha types. A stream answers each request in
 * turn, with one batch in flight at a time. */
#include <grpc/grpc.h>
#include <stdio.h>
#include <string.h>

#include "eventsourcing_grpc/protos/application.pb-c.h"
#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/proto_descriptors.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest reflection_request;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse reflection_response;

/* A protocol file: its name, as in proto_descriptors.h, and the service it declares. */
typedef struct {
    const char *name;
    const ProtobufCServiceDescriptor *service;
} proto_file;

static const proto_file proto_files[] = {
    {"eventsourcing_grpc/protos/application.proto", &eventsourcing_grpc__application__descriptor},
    {"eventsourcing_grpc_c/v1/node.proto", &eventsourcing_grpc_c__v1__node__descriptor},
    {"grpc/health/v1/health.proto", &grpc__health__v1__health__descriptor},
    {"grpc/reflection/v1alpha/reflection.proto",
     &grpc__reflection__v1alpha__server_reflection__descriptor},
    {"grpc/reflection/v1/reflection.proto", &grpc__reflection__v1__server_reflection__descriptor},
};

#define N_FILES (sizeof proto_files / sizeof proto_files[0])

/* The serialized FileDescriptorProto of file `name`, the only member (field 1) of its
 * descriptor set; false when the build's table lacks it or it does not read. */
static bool file_descriptor(const char *name, ProtobufCBinaryData *out)
{
    for (size_t i = 0; i < esg_n_proto_descriptors; i++) {
        const esg_proto_descriptor *d = &esg_proto_descriptors[i];
        if (strcmp(d->name, name) != 0 || d->set_len < 2 || d->set[0] != 0x0a)
            continue;
        size_t len = 0, at = 1;
        for (int shift = 0; at < d->set_len && shift < 35; shift += 7) {
            len |= (size_t)(d->set[at] & 0x7f) << shift;
            if ((d->set[at++] & 0x80) == 0)
                break;
        }
        if (at + len != d->set_len)
            return false;
        out->data = (uint8_t *)d->set + at;
        out->len = len;
        return true;
    }
    return false;
}

/* Whether symbol is message (a full name), one of its enums, or a type of its fields, to a
 * depth (messages may refer to themselves). */
static bool message_declares(const ProtobufCMessageDescriptor *message, const char *symbol,
                             int depth)
{
    if (strcmp(message->name, symbol) == 0)
        return true;
    for (unsigned i = 0; depth > 0 && i < message->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &message->fields[i];
        if (field->type == PROTOBUF_C_TYPE_ENUM &&
            strcmp(((const ProtobufCEnumDescriptor *)field->descriptor)->name, symbol) == 0)
            return true;
        if (field->type == PROTOBUF_C_TYPE_MESSAGE &&
            message_declares(field->descriptor, symbol, depth - 1))
            return true;
    }
    return false;
}

/* Whether file declares symbol: its service, a method ("pkg.Service.Method"), or a message or
 * enum its methods use. */
static bool file_declares(const proto_file *file, const char *symbol)
{
    const ProtobufCServiceDescriptor *service = file->service;
    size_t service_len = strlen(service->name);
    if (strcmp(symbol, service->name) == 0)
        return true;
    for (unsigned i = 0; i < service->n_methods; i++) {
        const ProtobufCMethodDescriptor *method = &service->methods[i];
        if (strncmp(symbol, service->name, service_len) == 0 && symbol[service_len] == '.' &&
            strcmp(symbol + service_len + 1, method->name) == 0)
            return true;
        if (message_declares(method->input, symbol, 8) ||
            message_declares(method->output, symbol, 8))
            return true;
    }
    return false;
}

/* The file of a request: by name, or declaring a symbol; NULL if none. */
static const proto_file *find_file(const char *name, const char *symbol)
{
    for (size_t i = 0; i < N_FILES; i++)
        if ((name != NULL && strcmp(proto_files[i].name, name) == 0) ||
            (symbol != NULL && file_declares(&proto_files[i], symbol)))
            return &proto_files[i];
    return NULL;
}

/* A reply and the parts it points to, all on the caller's stack (and into static data). */
typedef struct {
    reflection_response response;
    Grpc__Reflection__V1alpha__FileDescriptorResponse files;
    ProtobufCBinaryData file_bytes;
    Grpc__Reflection__V1alpha__ListServiceResponse list;
    Grpc__Reflection__V1alpha__ServiceResponse services[N_FILES];
    Grpc__Reflection__V1alpha__ServiceResponse *service_pointers[N_FILES];
    Grpc__Reflection__V1alpha__ExtensionNumberResponse extensions;
    Grpc__Reflection__V1alpha__ErrorResponse error;
    char error_text[300];
} reply_parts;

static void reply_parts_init(reply_parts *r)
{
    grpc__reflection__v1alpha__server_reflection_response__init(&r->response);
    grpc__reflection__v1alpha__file_descriptor_response__init(&r->files);
    r->file_bytes = (ProtobufCBinaryData){0};
    grpc__reflection__v1alpha__list_service_response__init(&r->list);
    for (size_t i = 0; i < N_FILES; i++)
        grpc__reflection__v1alpha__service_response__init(&r->services[i]);
    grpc__reflection__v1alpha__extension_number_response__init(&r->extensions);
    grpc__reflection__v1alpha__error_response__init(&r->error);
    r->error_text[0] = '\0';
}

/* Makes the reply an in-band error: code (a gRPC status) and r->error_text. */
static void reply_error(reply_parts *r, grpc_status_code code)
{
    r->error.error_code = code;
    r->error.error_message = r->error_text;
    r->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    r->response.error_response = &r->error;
}

/* Answers one request into r. */
static void answer(const reflection_request *request, reply_parts *r)
{
    r->response.valid_host = request->host;
    r->response.original_request = (reflection_request *)request;
    const proto_file *file = NULL;
    grpc_status_code error_code = GRPC_STATUS_NOT_FOUND;
    size_t size = sizeof r->error_text;
    switch (request->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (size_t i = 0; i < N_FILES; i++) {
            r->services[i].name = (char *)proto_files[i].service->name;
            r->service_pointers[i] = &r->services[i];
        }
        r->list.n_service = N_FILES;
        r->list.service = r->service_pointers;
        r->response.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        r->response.list_services_response = &r->list;
        return;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(request->file_by_filename, NULL);
        snprintf(r->error_text, size, "no file '%.200s'", request->file_by_filename);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = find_file(NULL, request->file_containing_symbol);
        snprintf(r->error_text, size, "no symbol '%.200s'", request->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        snprintf(r->error_text, size, "no extensions: the protocols declare none");
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (find_file(NULL, request->all_extension_numbers_of_type) != NULL) {
            r->extensions.base_type_name = request->all_extension_numbers_of_type; /* none */
            r->response.message_response_case =
                GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            r->response.all_extension_numbers_response = &r->extensions;
            return;
        }
        snprintf(r->error_text, size, "no type '%.200s'", request->all_extension_numbers_of_type);
        break;
    default:
        error_code = GRPC_STATUS_INVALID_ARGUMENT;
        snprintf(r->error_text, size, "the request asks for nothing this server knows");
        break;
    }
    if (file != NULL && file_descriptor(file->name, &r->file_bytes)) {
        r->files.n_file_descriptor_proto = 1; /* the files import nothing */
        r->files.file_descriptor_proto = &r->file_bytes;
        r->response.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        r->response.file_descriptor_response = &r->files;
        return;
    }
    reply_error(r, error_code);
}

/* The packed reply to the request in c->request, or NULL when out of memory. */
static grpc_byte_buffer *reply_to(server_call *c)
{
    uint8_t *data = NULL;
    size_t len = 0;
    esg_error err = {0};
    reflection_request *request = NULL;
    if (esg_wire_read(c->request, &data, &len, &err) == ESG_OK)
        request = grpc__reflection__v1alpha__server_reflection_request__unpack(&esg_wire_allocator,
                                                                               len, data);
    esg_free(data);
    reply_parts r;
    reply_parts_init(&r);
    if (request != NULL) {
        answer(request, &r);
    } else {
        snprintf(r.error_text, sizeof r.error_text,
                 "malformed request: not a ServerReflectionRequest");
        reply_error(&r, GRPC_STATUS_INVALID_ARGUMENT);
    }
    size_t packed_len = protobuf_c_message_get_packed_size(&r.response.base);
    uint8_t *packed = esg_malloc(packed_len + 1);
    grpc_byte_buffer *buffer = NULL;
    if (packed != NULL) {
        protobuf_c_message_pack(&r.response.base, packed);
        buffer = esg_wire_buffer(packed, packed_len);
    }
    esg_free(packed);
    if (request != NULL)
        grpc__reflection__v1alpha__server_reflection_request__free_unpacked(request,
                                                                            &esg_wire_allocator);
    return buffer;
}

/* Reads the stream's next request into c->request (NULL at the stream's end). */
static void read_next(server_call *c, bool with_initial_metadata)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (with_initial_metadata)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->request;
    srv_start_batch(c, ops, n, STEP_STREAM_READ);
}

/* Ends the stream with code and sees the client's close. */
static void end_stream(server_call *c, grpc_status_code code)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[0].data.send_status_from_server.status = code;
    srv_note_status(c, code);
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &c->is_cancelled;
    srv_start_batch(c, ops, 2, STEP_STREAM_END);
}

void srv_handle_reflection(server_call *c)
{
    read_next(c, true);
}

void srv_reflection_read(server_call *c, bool ok)
{
    if (!ok) /* the call is gone: it is freed with its last batch */
        return;
    if (c->request == NULL) { /* the client has sent all it will */
        end_stream(c, GRPC_STATUS_OK);
        return;
    }
    c->response = reply_to(c);
    grpc_byte_buffer_destroy(c->request);
    c->request = NULL;
    if (c->response == NULL) {
        end_stream(c, GRPC_STATUS_RESOURCE_EXHAUSTED);
        return;
    }
    srv_send_response(c, STEP_STREAM_SENT);
}

void srv_reflection_sent(server_call *c, bool ok)
{
    grpc_byte_buffer_destroy(c->response);
    c->response = NULL;
    if (ok)
        read_next(c, false);
}
