/* Byte buffers, status codes and numbers shared by the server and the client. */
#include "grpc/wire.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <stdlib.h>
#include <string.h>
#include "core/alloc.h"
#include "esg/recorder.h"

static void *wire_alloc(void *data, size_t size)
{
    (void)data;
    return esg_malloc(size);
}

static void wire_free(void *data, void *ptr)
{
    (void)data;
    esg_free(ptr);
}

ProtobufCAllocator esg_wire_allocator = {.alloc = wire_alloc, .free = wire_free};

esg_status esg_wire_read(grpc_byte_buffer *buffer, uint8_t **data, size_t *len, esg_error *err)
{
    *data = NULL;
    *len = 0;
    size_t total = buffer ? grpc_byte_buffer_length(buffer) : 0;
    uint8_t *bytes = esg_malloc(total + 1);
    if (bytes == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory reading a message");
    if (buffer != NULL) {
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init(&reader, buffer)) {
            esg_free(bytes);
            return esg_error_set(err, ESG_EINVAL, "cannot read a compressed message");
        }
        grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
        size_t n = GRPC_SLICE_LENGTH(slice);
        if (n > total)
            n = total;
        memcpy(bytes, GRPC_SLICE_START_PTR(slice), n);
        grpc_slice_unref(slice);
        grpc_byte_buffer_reader_destroy(&reader);
        total = n;
    }
    bytes[total] = 0;
    *data = bytes;
    *len = total;
    return ESG_OK;
}

grpc_byte_buffer *esg_wire_buffer(const uint8_t *data, size_t len)
{
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return buffer;
}

grpc_byte_buffer *esg_wire_pack(const ProtobufCMessage *message)
{
    grpc_slice slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(message));
    protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return buffer;
}

grpc_status_code esg_wire_status_to_grpc(esg_status status)
{
    switch (status) {
#define ESG_STATUS_TO_GRPC(name, value, grpc, meaning)                                             \
    case ESG_##name:                                                                               \
        return GRPC_STATUS_##grpc;
        ESG_STATUS_MAP(ESG_STATUS_TO_GRPC)
#undef ESG_STATUS_TO_GRPC
    }
    return GRPC_STATUS_INTERNAL;
}

const char *esg_wire_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    };
    if ((int)code < 0 || (size_t)code >= sizeof names / sizeof names[0])
        return "Unknown";
    return names[code];
}

esg_status esg_wire_status_from_grpc(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return ESG_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
        return ESG_EINVAL;
    case GRPC_STATUS_NOT_FOUND:
        return ESG_ENOTFOUND;
    case GRPC_STATUS_ABORTED:
        return ESG_ECONFLICT;
    case GRPC_STATUS_UNIMPLEMENTED:
        return ESG_EUNIMPLEMENTED;
    case GRPC_STATUS_UNAVAILABLE:
        return ESG_EUNAVAILABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return ESG_ETIMEDOUT;
    default:
        return ESG_EREMOTE;
    }
}

bool esg_wire_parse_int(const char *text, int64_t *out)
{
    const char *p = text;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return false;
    for (const char *q = p; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return false;
    *out = value;
    return true;
}

bool esg_wire_is_idempotency_key(const uint8_t *bytes, size_t len)
{
    if (len == 0 || len > ESG_IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (bytes[i] < 0x20 || bytes[i] >= 0x7f)
            return false;
    return true;
}

grpc_arg esg_wire_quota_arg(const char *name)
{
    grpc_resource_quota *quota = grpc_resource_quota_create(name);
    grpc_resource_quota_resize(quota, ESG_WIRE_MEMORY_QUOTA_BYTES);
    grpc_arg arg = {.type = GRPC_ARG_POINTER, .key = (char *)GRPC_ARG_RESOURCE_QUOTA};
    arg.value.pointer.p = quota;
    arg.value.pointer.vtable = grpc_resource_quota_arg_vtable();
    return arg;
}

void esg_wire_quota_arg_release(grpc_arg *arg)
{
    grpc_resource_quota_unref(arg->value.pointer.p);
    arg->value.pointer.p = NULL;
}
