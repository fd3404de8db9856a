/* A raw gRPC client for tests (see raw_call.h). */
#include "raw_call.h"
#include "grpc/credentials.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ESG_SOURCE_DIR
#error "ESG_SOURCE_DIR (the repository root) must be defined to find scripts/make-ssl.sh"
#endif

grpc_channel *raw_channel(const char *target, grpc_channel_credentials *creds)
{
    grpc_channel_credentials *insecure = NULL;
    if (creds == NULL)
        creds = insecure = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, creds, NULL);
    if (insecure != NULL)
        grpc_channel_credentials_release(insecure);
    return channel;
}

grpc_channel *raw_tls_channel(const char *target, const char *root_pem, const char *key_pem,
                              const char *cert_pem, const char *target_name)
{
    grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
    grpc_channel_credentials *creds =
        grpc_ssl_credentials_create(root_pem, key_pem && cert_pem ? &pair : NULL, NULL, NULL);
    grpc_arg arg = {.type = GRPC_ARG_STRING,
                    .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                    .value.string = (char *)target_name};
    grpc_channel_args args = {1, &arg};
    grpc_channel *channel = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    return channel;
}

/* The whole of dir/name, malloc'ed and NUL-terminated (the caller frees it); fails the test when
 * the file is missing or empty. */
static char *read_pem(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail_msg("cannot open %s", path);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, file);
    fclose(file);
    if (n == 0)
        fail_msg("%s is empty", path);
    return text;
}

grpc_channel *raw_tls_channel_from_files(const char *target, const char *dir, const char *root,
                                         const char *key, const char *cert, const char *target_name)
{
    char *root_pem = read_pem(dir, root);
    char *key_pem = key ? read_pem(dir, key) : NULL;
    char *cert_pem = cert ? read_pem(dir, cert) : NULL;
    grpc_channel *channel = raw_tls_channel(target, root_pem, key_pem, cert_pem, target_name);
    free(root_pem);
    free(key_pem);
    free(cert_pem);
    return channel;
}

grpc_call *raw_new_call(grpc_channel *channel, grpc_completion_queue *cq, const char *path,
                        int deadline_ms)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    return grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                    grpc_slice_from_static_string(path), NULL, deadline, NULL);
}

void raw_request_ops(grpc_op ops[4], uint32_t flags, grpc_byte_buffer *request,
                     grpc_metadata_array *initial)
{
    memset(ops, 0, 4 * sizeof *ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = flags;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = initial;
}

void raw_call_buffer(grpc_channel *channel, const char *path, grpc_byte_buffer *payload,
                     int deadline_ms, raw_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = raw_new_call(channel, cq, path, deadline_ms);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *response = NULL;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    raw_request_ops(ops, GRPC_INITIAL_METADATA_WAIT_FOR_READY, payload, &initial);
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &reply->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 0;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "raw_call: cannot start a batch\n");
        abort();
    }
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    snprintf(reply->details, sizeof reply->details, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    grpc_slice_unref(details);
    if (response != NULL) {
        reply->data = raw_buffer_bytes(response, &reply->len);
        grpc_byte_buffer_destroy(response);
    }
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    raw_queue_destroy(cq, GRPC_CQ_PLUCK);
}

void raw_call(grpc_channel *channel, const char *path, const uint8_t *request, size_t len,
              int deadline_ms, raw_reply *reply)
{
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)request, len);
    grpc_byte_buffer *payload = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    raw_call_buffer(channel, path, payload, deadline_ms, reply);
    grpc_byte_buffer_destroy(payload);
}

void raw_reply_clear(raw_reply *reply)
{
    free(reply->data);
    memset(reply, 0, sizeof *reply);
}

void raw_queue_destroy(grpc_completion_queue *cq, grpc_cq_completion_type type)
{
    grpc_completion_queue_shutdown(cq);
    gpr_timespec forever = gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_event event;
    do
        event = type == GRPC_CQ_PLUCK ? grpc_completion_queue_pluck(cq, NULL, forever, NULL)
                                      : grpc_completion_queue_next(cq, forever, NULL);
    while (event.type != GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(cq);
}

uint8_t *raw_buffer_bytes(grpc_byte_buffer *buffer, size_t *len)
{
    grpc_byte_buffer_reader reader;
    grpc_byte_buffer_reader_init(&reader, buffer);
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    *len = GRPC_SLICE_LENGTH(all);
    uint8_t *data = malloc(*len + 1);
    assert_non_null(data);
    memcpy(data, GRPC_SLICE_START_PTR(all), *len);
    data[*len] = 0;
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return data;
}

void raw_make_pki(const char *dir, const char *name, const char *extra)
{
    char command[2400];
    snprintf(command, sizeof command, "bash '%s/scripts/make-ssl.sh' '%s/%s' %s >/dev/null",
             ESG_SOURCE_DIR, dir, name, extra);
    if (system(command) != 0)
        fail_msg("failed: %s", command);
}

int raw_run_grpc_tests(const char *group_name, const struct CMUnitTest *tests, size_t n_tests,
                       CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    setenv("GRPC_DNS_RESOLVER", "native", 1);
    if (getenv("ESG_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("ESG_TEST_FILTER"));
    grpc_init();
    int n_failed = _cmocka_run_group_tests(group_name, tests, n_tests, group_setup, group_teardown);
    grpc_shutdown();
    return n_failed;
}

char *raw_hex(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *hex = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[data[i] >> 4];
        hex[2 * i + 1] = digits[data[i] & 15];
    }
    hex[2 * len] = 0;
    return hex;
}

void raw_server_start(grpc_server **server, grpc_completion_queue **cq, pthread_t *thread,
                      void *(*main)(void *), void *arg, char *address, size_t address_size)
{
    esg_error err = {0};
    *cq = grpc_completion_queue_create_for_next(NULL);
    *server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(*server, *cq, NULL);
    grpc_server_credentials *creds = NULL;
    if (esg_server_credentials_create("localhost:0", NULL, NULL, &creds, &err) != ESG_OK)
        fail_msg("local server credentials: %s", err.message);
    int port = grpc_server_add_http2_port(*server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    assert_true(port > 0);
    snprintf(address, address_size, "localhost:%d", port);
    grpc_server_start(*server);
    assert_int_equal(pthread_create(thread, NULL, main, arg), 0);
}

void raw_server_stop(grpc_server *server, grpc_completion_queue *cq, pthread_t thread,
                     void *shutdown_tag)
{
    grpc_server_shutdown_and_notify(server, cq, shutdown_tag);
    grpc_server_cancel_all_calls(server);
    assert_int_equal(pthread_join(thread, NULL), 0);
    grpc_server_destroy(server);
    raw_queue_destroy(cq, GRPC_CQ_NEXT);
}
