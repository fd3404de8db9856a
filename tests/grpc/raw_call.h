/* A raw gRPC client for tests: unary calls with exact request bytes, so that
 * tests see exactly what the server answers, byte for byte and status by
 * status, without going through the project's own client. */
#ifndef ESG_TEST_RAW_CALL_H
#define ESG_TEST_RAW_CALL_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

typedef struct raw_reply {
    grpc_status_code status;
    char details[512]; /* the status message, NUL-terminated (truncated) */
    uint8_t *data;     /* the reply message, malloc'ed (NUL-terminated), NULL if none */
    size_t len;
} raw_reply;

/* A channel to target: insecure (accepted by local-credentials servers) when
 * creds is NULL. Destroy with grpc_channel_destroy. */
grpc_channel *raw_channel(const char *target, grpc_channel_credentials *creds);

/* A TLS channel to target trusting root_pem, presenting key_pem/cert_pem when
 * both are given, and checking the server's certificate for target_name. */
grpc_channel *raw_tls_channel(const char *target, const char *root_pem, const char *key_pem,
                              const char *cert_pem, const char *target_name);

/* One unary call with request bytes; fills *reply (free with raw_reply_clear). */
void raw_call(grpc_channel *channel, const char *path, const uint8_t *request, size_t len,
              int deadline_ms, raw_reply *reply);

/* The same with the request as a byte buffer (borrowed: the caller destroys it),
 * for requests that should not be copied. */
void raw_call_buffer(grpc_channel *channel, const char *path, grpc_byte_buffer *payload,
                     int deadline_ms, raw_reply *reply);

void raw_reply_clear(raw_reply *reply);

/* Hex helpers for comparing with the vectors. */
char *raw_hex(const uint8_t *data, size_t len); /* malloc'ed lowercase hex */

#endif
