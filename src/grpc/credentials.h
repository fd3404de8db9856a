/* Which credentials an address gets, and making them: local credentials for
 * loopback addresses, mutual TLS from the GRPC_SSL_* files otherwise.
 * Internal to the gRPC layer. */
#ifndef ESG_CREDENTIALS_H
#define ESG_CREDENTIALS_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdbool.h>

#include "esg/env.h"
#include "esg/error.h"

/* Splits "host:port" (host may be "[v6]"); the port must be 0..65535.
 * host is copied without brackets into host_out (host_size bytes). */
esg_status esg_address_split(const char *address, char *host_out, size_t host_size, int *port,
                             esg_error *err);

/* True for exactly "localhost:PORT", the one address the reference gives local credentials. */
bool esg_address_is_local(const char *address);

/* True for "localhost:P", "127.0.0.1:P" and "[::1]:P" (any 127.x.y.z too): a peer on this
 * machine. */
bool esg_address_is_loopback(const char *address);

/* Server credentials for address: local (LOCAL_TCP) when local, otherwise
 * TLS requiring and verifying client certificates against the root
 * certificate. env (borrowed; NULL for the process environment) gives
 * GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH and
 * GRPC_SSL_ROOT_CERTIFICATE_PATH, each looked up as <APP_NAME>_GRPC_SSL_... first
 * (app_name may be NULL); a missing or unreadable file is ESG_ECONFIG naming the
 * variable and the path. The caller releases *out with
 * grpc_server_credentials_release. */
esg_status esg_server_credentials_create(const char *address, const esg_env *env,
                                         const char *app_name, grpc_server_credentials **out,
                                         esg_error *err);

/* Channel credentials for connecting to address, by the same rule, with the
 * client's own key and certificate for mutual TLS (app_name: the calling
 * application, whose <APP_NAME>_GRPC_SSL_* are looked up first; may be NULL).
 * The caller releases *out with grpc_channel_credentials_release. */
esg_status esg_channel_credentials_create(const char *address, const esg_env *env,
                                          const char *app_name, grpc_channel_credentials **out,
                                          esg_error *err);

#endif
