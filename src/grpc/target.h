/* Where a client connects (`<APP>_GRPC_SERVER_ADDRESS` or an address given): one server
 * ("host:port", as the reference has it), replicas of one application listed ("host:port,
 * host:port": each host resolved when the client connects; gRPC sends calls to them in turn,
 * round robin, and skips the ones that are down), or replicas behind a DNS name
 * ("dns:///name:port": gRPC resolves it, and again when connections fail; a headless Service in
 * Kubernetes). Internal: not part of the public API. */
#ifndef ESG_TARGET_H
#define ESG_TARGET_H

#include <stdbool.h>

#include "esg/error.h"

typedef struct esg_target {
    char *uri;        /* what grpc_channel_create takes; owned */
    bool is_balanced; /* several servers (a list or a DNS name): calls go round robin */
    /* The address the credentials follow (the first of a list, the name of a DNS target): every
     * entry of a list is localhost:PORT or none is, so it stands for them all. */
    char credentials_address[300];
    /* For mutual TLS to a list (whose entries gRPC knows by IP only): the host name that the
     * servers' certificates must carry, the first entry's; "" otherwise. */
    char tls_name[256];
} esg_target;

/* Parses and checks address (resolving a list's hosts) into *out, which esg_target_clear frees;
 * ESG_ECONFIG saying what is wrong, ESG_EUNAVAILABLE when a listed host does not resolve. */
esg_status esg_target_parse(const char *address, esg_target *out, esg_error *err);

void esg_target_clear(esg_target *target);

/* Whether address names replicas (a list or a DNS name), as esg_target_parse would find, without
 * resolving anything. */
bool esg_target_is_balanced(const char *address);

#endif
