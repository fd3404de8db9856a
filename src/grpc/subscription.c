/* A follower's side of eventsourcing_grpc_c.v1.Node/Subscribe: one server-streaming call on
 * the client's channel, read a page at a time by the thread that owns the subscription. Its
 * call is linked in the client's live calls, so that esg_client_close cancels it (and so ends
 * a wait in esg_subscription_next). Two batches are in flight at most: the headers and the
 * status, started with the call, and the read of the next message (which may outlive a call
 * that timed out, and is then waited for by the next). */
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <string.h>

#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/client_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"

struct esg_subscription {
    esg_client *client;        /* borrowed: it outlives the subscription */
    grpc_completion_queue *cq; /* owned; a pluck queue of this call alone */
    live_call live;            /* the call, linked in the client's live calls */
    bool is_status_pending;    /* the status batch is in flight */
    bool is_over;              /* the stream ended, or failed */
    grpc_metadata_array initial_metadata;
    grpc_metadata_array trailing_metadata;
    grpc_status_code status;
    grpc_slice status_details;
    bool is_read_pending;       /* a read's batch is in flight (it outlived a timeout) */
    grpc_byte_buffer *received; /* what it receives */
    int status_tag;             /* their addresses tag the batches */
    int start_tag;
    int read_tag;
};

typedef enum wait_result { BATCH_DONE, BATCH_FAILED, WAIT_TIMED_OUT } wait_result;

/* Waits up to timeout_ms (< 0: as long as it takes) for the batch tagged tag; batches complete
 * whatever happens (the call's end cancels them). */
static wait_result wait_within(esg_subscription *s, void *tag, int64_t timeout_ms)
{
    /* gRPC rounds a deadline up to the next millisecond: "now" would wait 1 ms, the past
     * does not wait. */
    gpr_timespec deadline = timeout_ms < 0 ? gpr_inf_future(GPR_CLOCK_REALTIME)
                            : timeout_ms == 0
                                ? gpr_inf_past(GPR_CLOCK_MONOTONIC)
                                : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                               gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_event event = grpc_completion_queue_pluck(s->cq, tag, deadline, NULL);
    if (event.type == GRPC_QUEUE_TIMEOUT)
        return WAIT_TIMED_OUT;
    return event.type == GRPC_OP_COMPLETE && event.success ? BATCH_DONE : BATCH_FAILED;
}

static bool wait_for(esg_subscription *s, void *tag)
{
    return wait_within(s, tag, -1) == BATCH_DONE;
}

/* The stream is over: its status, as the result of the call (ESG_ECLOSED for an end with OK:
 * the server stops). */
static esg_status ended(esg_subscription *s, esg_error *err)
{
    s->is_over = true;
    if (s->is_status_pending) {
        wait_for(s, &s->status_tag);
        s->is_status_pending = false;
    }
    if (s->status == GRPC_STATUS_OK)
        return esg_error_set(err, ESG_ECLOSED, "Subscribe: the server at %s ended the stream",
                             s->client->address);
    return cli_status_to_result(s->client, "Subscribe", s->status, s->status_details, err);
}

esg_status esg_client_subscribe(esg_client *client, const char *follower_name, int64_t start,
                                const char *const *topics, size_t n_topics, esg_subscription **out,
                                esg_error *err)
{
    *out = NULL;
    EventsourcingGrpcC__V1__SubscribeRequest request =
        EVENTSOURCING_GRPC_C__V1__SUBSCRIBE_REQUEST__INIT;
    request.follower_name = (char *)(follower_name != NULL ? follower_name : "");
    request.start = start;
    request.topics = (char **)topics;
    request.n_topics = n_topics;
    esg_subscription *s = esg_calloc(1, sizeof *s);
    if (s == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory subscribing");
    s->client = client;
    s->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_metadata);
    grpc_metadata_array_init(&s->trailing_metadata);
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_byte_buffer *message = esg_wire_pack(&request.base);
    esg_status rc = s->cq != NULL && message != NULL
                        ? cli_enter(client, err)
                        : esg_error_set(err, ESG_ENOMEM, "out of memory subscribing");
    if (rc == ESG_OK) {
        rc = cli_open_call(client, s->cq, ESG_PATH_SUBSCRIBE, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                           &s->live, err);
        cli_leave(client);
    }
    if (rc == ESG_OK) {
        grpc_op end_ops[2] = {
            {.op = GRPC_OP_RECV_INITIAL_METADATA,
             .data.recv_initial_metadata.recv_initial_metadata = &s->initial_metadata},
            {.op = GRPC_OP_RECV_STATUS_ON_CLIENT,
             .data.recv_status_on_client = {.trailing_metadata = &s->trailing_metadata,
                                            .status = &s->status,
                                            .status_details = &s->status_details}}};
        /* Not waiting for ready: a server that is down fails the call at once. */
        grpc_op send_ops[3] = {
            {.op = GRPC_OP_SEND_INITIAL_METADATA,
             .flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET},
            {.op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = message},
            {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT}};
        if (grpc_call_start_batch(s->live.call, end_ops, 2, &s->status_tag, NULL) != GRPC_CALL_OK)
            rc = esg_error_set(err, ESG_EINTERNAL, "cannot start a call to %s", ESG_PATH_SUBSCRIBE);
        else
            s->is_status_pending = true;
        if (rc == ESG_OK &&
            grpc_call_start_batch(s->live.call, send_ops, 3, &s->start_tag, NULL) != GRPC_CALL_OK)
            rc = esg_error_set(err, ESG_EINTERNAL, "cannot start a call to %s", ESG_PATH_SUBSCRIBE);
        /* Sent (or the call failed: the first read says why), within the client's deadline: a
         * server that takes nothing in (a zero window, a hung peer) would hold it for ever. */
        if (rc == ESG_OK && wait_within(s, &s->start_tag, client->deadline_ms) == WAIT_TIMED_OUT) {
            grpc_call_cancel(s->live.call, NULL);
            wait_for(s, &s->start_tag);
            rc = esg_error_set(err, ESG_ETIMEDOUT,
                               "Subscribe: %s took no request within the deadline (%lld ms)",
                               client->address, (long long)client->deadline_ms);
        }
    }
    grpc_byte_buffer_destroy(message);
    if (rc != ESG_OK) {
        esg_subscription_free(s);
        return rc;
    }
    *out = s;
    return ESG_OK;
}

/* Decodes a page into out and *up_to. */
static esg_status read_page(const uint8_t *bytes, size_t len, esg_notification_list *out,
                            int64_t *up_to, esg_error *err)
{
    EventsourcingGrpcC__V1__NotificationsPage *page =
        eventsourcing_grpc_c__v1__notifications_page__unpack(&esg_wire_allocator, len, bytes);
    if (page == NULL)
        return cli_malformed_reply(ESG_PATH_SUBSCRIBE, err);
    esg_status rc = cli_append_notifications(page->notifications, page->n_notifications,
                                             ESG_PATH_SUBSCRIBE, out, err);
    if (rc == ESG_OK)
        *up_to = page->up_to;
    eventsourcing_grpc_c__v1__notifications_page__free_unpacked(page, &esg_wire_allocator);
    return rc;
}

/* Starts reading the next message unless a read is in flight already. */
static esg_status start_read(esg_subscription *s, esg_error *err)
{
    if (s->is_read_pending)
        return ESG_OK;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->received;
    if (grpc_call_start_batch(s->live.call, &op, 1, &s->read_tag, NULL) != GRPC_CALL_OK)
        return esg_error_set(err, ESG_EINTERNAL, "Subscribe: cannot read the stream");
    s->is_read_pending = true;
    return ESG_OK;
}

esg_status esg_subscription_next(esg_subscription *s, int64_t timeout_ms,
                                 esg_notification_list *out, int64_t *up_to, esg_error *err)
{
    if (s->is_over)
        return esg_error_set(err, ESG_ECLOSED, "Subscribe: the stream is over");
    esg_status rc = cli_enter(s->client, err);
    if (rc != ESG_OK) {
        s->is_over = true;
        return rc;
    }
    rc = start_read(s, err);
    wait_result waited = rc == ESG_OK ? wait_within(s, &s->read_tag, timeout_ms) : BATCH_FAILED;
    if (waited == WAIT_TIMED_OUT) { /* the read stays in flight, for the next call */
        cli_leave(s->client);
        return esg_error_set(err, ESG_ETIMEDOUT, "Subscribe: no page within %lld ms",
                             (long long)timeout_ms);
    }
    s->is_read_pending = false;
    grpc_byte_buffer *message = s->received;
    s->received = NULL;
    if (rc == ESG_OK && (waited != BATCH_DONE || message == NULL))
        rc = ended(s, err); /* the end of the stream, or of the call */
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (rc == ESG_OK)
        rc = esg_wire_read(message, &bytes, &len, err);
    if (rc == ESG_OK)
        rc = read_page(bytes, len, out, up_to, err);
    esg_free(bytes);
    grpc_byte_buffer_destroy(message);
    if (rc != ESG_OK && !s->is_over) {
        s->is_over = true;
        grpc_call_cancel(s->live.call, NULL);
    }
    cli_leave(s->client);
    return rc;
}

void esg_subscription_free(esg_subscription *s)
{
    if (s == NULL)
        return;
    if (s->live.call != NULL) {
        grpc_call_cancel(s->live.call, NULL);
        if (s->is_read_pending)
            wait_for(s, &s->read_tag);
        grpc_byte_buffer_destroy(s->received);
        if (s->is_status_pending)
            wait_for(s, &s->status_tag);
        cli_close_call(s->client, &s->live);
    }
    if (s->cq != NULL) {
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(s->cq);
    }
    grpc_slice_unref(s->status_details);
    grpc_metadata_array_destroy(&s->initial_metadata);
    grpc_metadata_array_destroy(&s->trailing_metadata);
    esg_free(s);
}
