/* A raw gRPC client for tests (see raw_call.h). */
#include "raw_call.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void raw_call_buffer(grpc_channel *channel, const char *path, grpc_byte_buffer *payload,
                     int deadline_ms, raw_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(path);
    grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, deadline, NULL);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *response = NULL;
    grpc_slice details;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = payload;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
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
        grpc_byte_buffer_reader reader;
        grpc_byte_buffer_reader_init(&reader, response);
        grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
        reply->len = GRPC_SLICE_LENGTH(all);
        reply->data = malloc(reply->len + 1);
        memcpy(reply->data, GRPC_SLICE_START_PTR(all), reply->len);
        reply->data[reply->len] = 0;
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&reader);
        grpc_byte_buffer_destroy(response);
    }
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
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
