/* The protocol files the servers speak, as protoc describes them: for reflection. The table is
 * generated at build time (cmake/descriptors.cmake). Internal to the gRPC layer. */
#ifndef ESG_PROTO_DESCRIPTORS_H
#define ESG_PROTO_DESCRIPTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct esg_proto_descriptor {
    const char *name;   /* the file's name, as imports name it ("grpc/health/v1/health.proto") */
    const uint8_t *set; /* a serialized FileDescriptorSet holding that file's descriptor alone */
    size_t set_len;
} esg_proto_descriptor;

extern const esg_proto_descriptor esg_proto_descriptors[];
extern const size_t esg_n_proto_descriptors;

#endif
