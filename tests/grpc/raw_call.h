/* A raw gRPC client for tests: unary calls with exact request bytes, so that
 * tests see exactly what the server answers, byte for byte and status by
 * status, without going through the project's own client. Also what every
 * gRPC test program shares: its main, test PKIs, completion queue teardown. */
#ifndef ESG_TEST_RAW_CALL_H
#define ESG_TEST_RAW_CALL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

/* A TLS channel as raw_tls_channel with the PEM files root, key and cert (paths under dir, all
 * borrowed; key and cert NULL: no client certificate). Fails the test when a file is missing or
 * empty. Destroy with grpc_channel_destroy. */
grpc_channel *raw_tls_channel_from_files(const char *target, const char *dir, const char *root,
                                         const char *key, const char *cert,
                                         const char *target_name);

/* One unary call with request bytes; fills *reply (free with raw_reply_clear). */
void raw_call(grpc_channel *channel, const char *path, const uint8_t *request, size_t len,
              int deadline_ms, raw_reply *reply);

/* The same with the request as a byte buffer (borrowed: the caller destroys it),
 * for requests that should not be copied. */
void raw_call_buffer(grpc_channel *channel, const char *path, grpc_byte_buffer *payload,
                     int deadline_ms, raw_reply *reply);

void raw_reply_clear(raw_reply *reply);

/* ---- Building blocks of calls that raw_call does not make (streams, floods) ---- */

/* A call of path (borrowed for the call's life: a static string) on channel, its events on cq,
 * ending deadline_ms from now. Release it with grpc_call_unref. */
grpc_call *raw_new_call(grpc_channel *channel, grpc_completion_queue *cq, const char *path,
                        int deadline_ms);

/* Fills ops[0..4) with what every call a test makes starts with: the initial metadata (with
 * flags), the request (borrowed until the batch completes), the close, and receiving the
 * server's initial metadata into *initial (borrowed). */
void raw_request_ops(grpc_op ops[4], uint32_t flags, grpc_byte_buffer *request,
                     grpc_metadata_array *initial);

/* Shuts cq down, drains it and destroys it; type is how it was created (GRPC_CQ_NEXT or
 * GRPC_CQ_PLUCK), which says how to drain it. */
void raw_queue_destroy(grpc_completion_queue *cq, grpc_cq_completion_type type);

/* A bare gRPC server of a test's own on 127.0.0.1 with local credentials (clients reach it as
 * "localhost:PORT", written into address), its events on a new *cq, its calls served by a thread
 * running main(arg) (*thread). The caller stops it with raw_server_stop. */
void raw_server_start(grpc_server **server, grpc_completion_queue **cq, pthread_t *thread,
                      void *(*main)(void *), void *arg, char *address, size_t address_size);
/* Shuts it down (its thread sees shutdown_tag on cq and ends), cancels its calls, joins the
 * thread, and destroys the server and the queue. */
void raw_server_stop(grpc_server *server, grpc_completion_queue *cq, pthread_t thread,
                     void *shutdown_tag);

/* The bytes of a message (borrowed: the caller destroys it) as a malloc'ed, NUL-terminated copy
 * (the NUL not counted in *len). */
uint8_t *raw_buffer_bytes(grpc_byte_buffer *buffer, size_t *len);

/* ---- The rest every gRPC test program shares ---- */

/* Makes a test PKI in dir/name with scripts/make-ssl.sh, passing it extra (for example
 * "--expired expired"); fails the test when the script fails. */
void raw_make_pki(const char *dir, const char *name, const char *extra);

/* The main of a gRPC test program: the native resolver (c-ares leaks a little on every
 * resolution), the test filter from ESG_TEST_FILTER (e.g. "test_floods", to run one while
 * debugging), and grpc_init/grpc_shutdown around cmocka's run of tests (n_tests of them,
 * borrowed). Returns cmocka's result, the number of failed tests. */
int raw_run_grpc_tests(const char *group_name, const struct CMUnitTest *tests, size_t n_tests,
                       CMFixtureFunction group_setup, CMFixtureFunction group_teardown);

/* Hex helpers for comparing with the vectors. */
char *raw_hex(const uint8_t *data, size_t len); /* malloc'ed lowercase hex */

#endif
