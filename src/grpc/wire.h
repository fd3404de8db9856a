/* What the server and the client share on the wire: gRPC byte buffers to and
 * from flat bytes, status codes both ways, the method paths, and the
 * notification messages. Internal to the gRPC layer. */
#ifndef ESG_WIRE_H
#define ESG_WIRE_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "esg/error.h"

#define ESG_PATH_PING "/eventsourcing_grpc.Application/Ping"
#define ESG_PATH_CALL "/eventsourcing_grpc.Application/CallApplicationMethod"
#define ESG_PATH_PROMPT "/eventsourcing_grpc.Application/Prompt"
#define ESG_PATH_GET_NOTIFICATIONS "/eventsourcing_grpc.Application/GetNotifications"
#define ESG_PATH_LEADER_POSITIONS "/eventsourcing_grpc_c.v1.Node/GetLeaderPositions"
#define ESG_PATH_SUBSCRIBE "/eventsourcing_grpc_c.v1.Node/Subscribe"
#define ESG_PATH_REFLECTION_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define ESG_PATH_REFLECTION_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define ESG_PATH_HEALTH_CHECK "/grpc.health.v1.Health/Check"
#define ESG_PATH_HEALTH_WATCH "/grpc.health.v1.Health/Watch"

/* The figures of a leader's position, named alike in esg_leader_position and in the
 * eventsourcing_grpc_c.v1.LeaderPosition message: X(field) for each, to copy them either way. */
#define ESG_WIRE_POSITION_FIGURES(X)                                                               \
    X(position)                                                                                    \
    X(leader_max)                                                                                  \
    X(lag_notifications)                                                                           \
    X(lag_seconds)                                                                                 \
    X(prompts_received)                                                                            \
    X(pulls)                                                                                       \
    X(pull_errors)                                                                                 \
    X(notifications_processed)                                                                     \
    X(is_subscribed)                                                                               \
    X(pages_pushed)
#define ESG_WIRE_COPY_FIGURE(field) to->field = from->field;

/* Copies a received byte buffer (NULL means an empty message) into a new
 * array (*data is never NULL on success; free it with esg_free). */
esg_status esg_wire_read(grpc_byte_buffer *buffer, uint8_t **data, size_t *len, esg_error *err);

/* A new byte buffer holding a copy of data (the caller destroys it with
 * grpc_byte_buffer_destroy), or NULL when out of memory. */
grpc_byte_buffer *esg_wire_buffer(const uint8_t *data, size_t len);

/* A new byte buffer holding message packed (the caller destroys it), or NULL when out of
 * memory: packed straight into gRPC's slice, with no copy in between. */
grpc_byte_buffer *esg_wire_pack(const ProtobufCMessage *message);

/* protobuf-c's allocations through the library's allocator (core/alloc.h): every message is
 * unpacked and freed with it. */
extern ProtobufCAllocator esg_wire_allocator;

/* The gRPC status for an esg_status, and back (a client reading a server). */
grpc_status_code esg_wire_status_to_grpc(esg_status status);
esg_status esg_wire_status_from_grpc(grpc_status_code code);

/* The name of a gRPC status as gRPC's own libraries spell it in logs and in the grpc_code label
 * of the usual gRPC metrics ("OK", "InvalidArgument", "Unavailable"...); "Unknown" for a code
 * beyond the standard ones. A static string. */
const char *esg_wire_status_name(grpc_status_code code);

/* Parses a decimal int64 written as a string on the wire ("start", "limit",
 * ...): optional '-', digits only, no spaces, in range. */
bool esg_wire_parse_int(const char *text, int64_t *out);

/* Whether len bytes make an idempotency key as ESG_IDEMPOTENCY_KEY_METADATA takes one: 1 to
 * ESG_IDEMPOTENCY_KEY_MAX printable ASCII characters (what gRPC metadata values may hold). */
bool esg_wire_is_idempotency_key(const uint8_t *bytes, size_t len);

/* What gRPC may hold for all the connections of a server, or of a client's channel, together
 * (read buffers, messages being received). gRPC 1.51 takes a whole message in before it compares
 * it with the maximum, and grants it flow-control window meanwhile: without a quota one message
 * that claims 1 GiB costs 1 GiB, on either side. Over the quota, streams are reset
 * (RESOURCE_EXHAUSTED). It holds 32 maximum-size messages in flight at once. */
#define ESG_WIRE_MEMORY_QUOTA_BYTES ((size_t)128 << 20)

/* A channel argument holding a new memory quota of ESG_WIRE_MEMORY_QUOTA_BYTES named name
 * (static), for grpc_server_create or grpc_channel_create; give it back with
 * esg_wire_quota_arg_release once they have taken their own references. */
grpc_arg esg_wire_quota_arg(const char *name);
void esg_wire_quota_arg_release(grpc_arg *arg);

#endif
