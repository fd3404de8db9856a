/* eventsourcing_grpc_c.v1.Node, this library's own service beside the reference's protocol:
 * GetLeaderPositions answers what the server's node says of the leaders it follows (nothing
 * for a server without a node); Subscribe pushes the application's notifications to a follower
 * as they are recorded (read on the thread that learns of them: the writer's, the one hearing
 * of other replicas' writes, or the worker that saw the last page sent). */
#include <grpc/grpc.h>
#include <pthread.h>
#include <string.h>

#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"
#include "esg/log.h"

void esg_leader_positions_clear(esg_leader_positions *positions)
{
    if (positions == NULL)
        return;
    for (size_t i = 0; i < positions->n_items; i++)
        esg_free(positions->items[i].leader_name);
    esg_free(positions->items);
    esg_free(positions->application_name);
    memset(positions, 0, sizeof *positions);
}

void srv_handle_leader_positions(server_call *c, const ProtobufCMessage *unused)
{
    (void)unused;
    esg_server *server = c->server;
    esg_leader_positions positions = {0};
    esg_error err = {0};
    esg_status rc = ESG_OK;
    if (server->node_hooks.leader_positions != NULL)
        rc = server->node_hooks.leader_positions(server->node_hooks.ctx, &positions, &err);
    /* The reply points into positions and into these two arrays. */
    size_t n = positions.n_items;
    EventsourcingGrpcC__V1__LeaderPosition *items = esg_calloc(n ? n : 1, sizeof *items);
    EventsourcingGrpcC__V1__LeaderPosition **pointers = esg_calloc(n ? n : 1, sizeof *pointers);
    if (rc == ESG_OK && (items == NULL || pointers == NULL))
        rc = esg_error_set(&err, ESG_ENOMEM, "out of memory");
    EventsourcingGrpcC__V1__LeaderPositionsReply reply =
        EVENTSOURCING_GRPC_C__V1__LEADER_POSITIONS_REPLY__INIT;
    reply.application_name = (char *)esg_application_name(server->app);
    for (size_t i = 0; rc == ESG_OK && i < n; i++) {
        const esg_leader_position *from = &positions.items[i];
        EventsourcingGrpcC__V1__LeaderPosition *to = &items[i];
        *to =
            (EventsourcingGrpcC__V1__LeaderPosition)EVENTSOURCING_GRPC_C__V1__LEADER_POSITION__INIT;
        to->leader_name = from->leader_name;
        ESG_WIRE_POSITION_FIGURES(ESG_WIRE_COPY_FIGURE)
        pointers[i] = to;
    }
    reply.n_leaders = rc == ESG_OK ? n : 0;
    reply.leaders = pointers;
    srv_reply_message(c, rc, &err, &reply.base);
    esg_free(pointers);
    esg_free(items);
    esg_leader_positions_clear(&positions);
}

/* ---- Subscribe ----------------------------------------------------------------------------- */

/* Subscriptions at once on one server; more are refused (RESOURCE_EXHAUSTED). */
#define MAX_SUBSCRIPTIONS 64
#define DEFAULT_SUBSCRIBE_LIMIT 100
#define MAX_SUBSCRIBE_TOPICS 100
#define MAX_FOLLOWER_NAME 200

/* Where a subscription is: waiting for news (PARKED), reading its next page on some thread
 * (READING), sending it (SENDING), or done (ENDED: its status is sent or the call is over). One
 * thread at a time moves it out of PARKED or READING, under its lock. */
typedef enum subscription_state { PARKED, READING, SENDING, ENDED } subscription_state;

typedef struct subscription {
    server_call *next;    /* in server->subscriptions, under subscriptions_lock */
    pthread_mutex_t lock; /* guards the fields below */
    subscription_state state;
    bool has_news;         /* written to since the current read began */
    bool is_ending;        /* stop: end after the current step */
    bool is_first_sent;    /* the first page (perhaps empty) went out */
    bool is_listed;        /* in server->subscriptions */
    int64_t start;         /* the next notification id to read */
    int64_t sending_up_to; /* the page in flight covers up to this id */
    int64_t sent_up_to;    /* the last page sent covered up to this id */
    int64_t limit;
    char *follower_name; /* owned */
    char **topics;       /* owned, n_topics of them */
    size_t n_topics;
} subscription;

static void free_subscription(subscription *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_topics; i++)
        esg_free(s->topics[i]);
    esg_free(s->topics);
    esg_free(s->follower_name);
    pthread_mutex_destroy(&s->lock);
    esg_free(s);
}

void srv_subscription_free(server_call *c)
{
    free_subscription(c->subscription);
    c->subscription = NULL;
}

void srv_handle_subscribe(server_call *c)
{
    srv_start_stream(c, STEP_SUB_READ, STEP_SUB_CLOSE);
}

/* Ends the stream with code and message (the initial metadata went out first). */
static void end_stream(server_call *c, grpc_status_code code, const char *message)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = code;
    if (message != NULL && !c->has_status_details) {
        c->status_details = grpc_slice_from_copied_string(message);
        c->has_status_details = true;
        op.data.send_status_from_server.status_details = &c->status_details;
    }
    srv_note_status(c, code);
    srv_start_batch(c, &op, 1, STEP_SUB_END);
}

/* The subscription described by request, or an error saying what is wrong with it. */
static esg_status new_subscription(const EventsourcingGrpcC__V1__SubscribeRequest *request,
                                   subscription **out, esg_error *err)
{
    *out = NULL;
    if (request->start < 1)
        return esg_error_set(err, ESG_EINVAL, "start must be >= 1, not %lld",
                             (long long)request->start);
    if (request->limit < 0)
        return esg_error_set(err, ESG_EINVAL, "limit must be >= 0, not %lld",
                             (long long)request->limit);
    if (request->n_topics > MAX_SUBSCRIBE_TOPICS)
        return esg_error_set(err, ESG_EINVAL, "%zu topics: at most %d", request->n_topics,
                             MAX_SUBSCRIBE_TOPICS);
    if (strlen(request->follower_name) > MAX_FOLLOWER_NAME)
        return esg_error_set(err, ESG_EINVAL, "a follower name of more than %d bytes",
                             MAX_FOLLOWER_NAME);
    subscription *s = esg_calloc(1, sizeof *s);
    if (s == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory subscribing");
    pthread_mutex_init(&s->lock, NULL);
    s->state = READING; /* the first read is the caller's */
    s->start = request->start;
    s->sent_up_to = request->start - 1;
    s->limit = request->limit == 0 ? DEFAULT_SUBSCRIBE_LIMIT : request->limit;
    if (s->limit > ESG_GRPC_MAX_PAGE_NOTIFICATIONS)
        s->limit = ESG_GRPC_MAX_PAGE_NOTIFICATIONS;
    s->follower_name = esg_strdup(request->follower_name);
    s->topics = esg_calloc(request->n_topics ? request->n_topics : 1, sizeof *s->topics);
    bool is_ok = s->follower_name != NULL && s->topics != NULL;
    for (size_t i = 0; is_ok && i < request->n_topics; i++) {
        s->topics[i] = esg_strdup(request->topics[i]);
        is_ok = s->topics[i] != NULL;
        s->n_topics += is_ok;
    }
    *out = s;
    return is_ok ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory subscribing");
}

/* Reads the notifications after the subscription's start, up to the highest recorded now, into
 * *out (the caller's); *up_to is that highest id (or start - 1 when there is none after it). */
static esg_status read_news(esg_server *server, const subscription *s, esg_notification_list *out,
                            int64_t *up_to, esg_error *err)
{
    int64_t max = 0;
    esg_status rc =
        esg_recorder_max_notification_id(esg_application_recorder(server->app), &max, err);
    *up_to = s->start - 1;
    if (rc != ESG_OK || max < s->start)
        return rc;
    rc =
        esg_application_select_notifications(server->app, s->start, s->limit, max,
                                             (const char *const *)s->topics, s->n_topics, out, err);
    if (rc != ESG_OK)
        return rc;
    /* A full page reaches its last id; a short one, everything up to max. */
    *up_to = (int64_t)out->n_items == s->limit ? out->items[out->n_items - 1].id : max;
    return ESG_OK;
}

/* Packs a page of list (its first page.n notifications) and up_to into c->response; *last is
 * the page's reach. */
static esg_status pack_page(server_call *c, const esg_notification_list *list, int64_t up_to,
                            int64_t *last, esg_error *err)
{
    srv_page page = {0};
    esg_status rc = srv_page_build(&page, list, err);
    if (rc != ESG_OK)
        return rc;
    EventsourcingGrpcC__V1__NotificationsPage message =
        EVENTSOURCING_GRPC_C__V1__NOTIFICATIONS_PAGE__INIT;
    message.notifications = page.pointers;
    message.n_notifications = page.n;
    /* A page cut by its bytes reaches its last notification only. */
    *last = page.n < list->n_items ? list->items[page.n - 1].id : up_to;
    message.up_to = *last;
    c->response = esg_wire_pack(&message.base);
    srv_page_free(&page);
    if (c->response == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory sending a page");
    return ESG_OK;
}

/* Reads and sends the next page of c, whose subscription this thread has moved to READING;
 * parks it when there is nothing to send. A page may be empty: the first, and one that says
 * the log grew by notifications of other topics only (so the follower knows where it is). */
static void pump(server_call *c)
{
    subscription *s = c->subscription;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        s->has_news = false;
        bool is_ending = s->is_ending;
        if (is_ending)
            s->state = ENDED;
        pthread_mutex_unlock(&s->lock);
        if (is_ending) {
            end_stream(c, GRPC_STATUS_OK, NULL);
            return;
        }
        esg_notification_list list = {0};
        esg_error err = {0};
        int64_t up_to = 0, last = 0;
        esg_status rc = read_news(c->server, s, &list, &up_to, &err);
        bool is_sending =
            rc == ESG_OK && (list.n_items > 0 || !s->is_first_sent || up_to > s->sent_up_to);
        if (is_sending)
            rc = pack_page(c, &list, up_to, &last, &err);
        esg_notification_list_clear(&list);
        pthread_mutex_lock(&s->lock);
        if (rc != ESG_OK) {
            s->state = ENDED;
        } else if (is_sending) {
            s->state = SENDING;
            s->is_first_sent = true;
            s->sending_up_to = last;
        } else {
            s->start = up_to + 1; /* nothing of its topics up to there */
            if (!s->has_news && !s->is_ending)
                s->state = PARKED;
        }
        subscription_state state = s->state;
        pthread_mutex_unlock(&s->lock);
        if (rc != ESG_OK) {
            end_stream(c, esg_wire_status_to_grpc(rc), err.message);
            return;
        }
        if (state == SENDING) {
            srv_send_response(c, STEP_SUB_SENT);
            return;
        }
        if (state == PARKED)
            return;
        /* News came while reading, or stop began: once more. */
    }
}

/* Gives c its subscription s (taken) and lists it, unless the call ended or stop began (false
 * then, with *err). */
static bool list_subscription(server_call *c, subscription *s, esg_error *err)
{
    esg_server *server = c->server;
    pthread_mutex_lock(&server->subscriptions_lock);
    c->subscription = s; /* freed with the call */
    bool is_listed = false;
    if (c->is_subscribe_closed)
        esg_error_set(err, ESG_ECLOSED, "the call ended");
    else if (server->is_subscribing_closed)
        esg_error_set(err, ESG_EUNAVAILABLE, "the server is stopping");
    else if (server->n_subscriptions >= MAX_SUBSCRIPTIONS)
        esg_error_set(err, ESG_ENOMEM, "%d subscriptions already: no more", MAX_SUBSCRIPTIONS);
    else
        is_listed = true;
    if (is_listed) {
        s->next = server->subscriptions;
        s->is_listed = true;
        server->subscriptions = c;
        server->n_subscriptions++;
    } else {
        s->state = ENDED;
    }
    pthread_mutex_unlock(&server->subscriptions_lock);
    return is_listed;
}

void srv_subscribe_read(server_call *c, bool ok)
{
    esg_error err = {0};
    esg_status rc = ESG_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    EventsourcingGrpcC__V1__SubscribeRequest *request = NULL;
    subscription *s = NULL;
    if (!ok || c->request == NULL)
        rc = esg_error_set(&err, ESG_EINVAL, "Subscribe needs a SubscribeRequest");
    if (rc == ESG_OK)
        rc = esg_wire_read(c->request, &data, &len, &err);
    if (rc == ESG_OK && (request = eventsourcing_grpc_c__v1__subscribe_request__unpack(
                             &esg_wire_allocator, len, data)) == NULL)
        rc = esg_error_set(
            &err, ESG_EINVAL,
            "malformed request: not a valid eventsourcing_grpc_c.v1.SubscribeRequest");
    if (rc == ESG_OK)
        rc = new_subscription(request, &s, &err);
    if (request != NULL)
        eventsourcing_grpc_c__v1__subscribe_request__free_unpacked(request, &esg_wire_allocator);
    esg_free(data);
    if (rc != ESG_OK)
        free_subscription(s);
    else if (!list_subscription(c, s, &err))
        rc = err.status;
    if (rc != ESG_OK) {
        end_stream(c, esg_wire_status_to_grpc(rc), err.message);
        return;
    }
    pump(c);
}

void srv_subscribe_sent(server_call *c, bool ok)
{
    subscription *s = c->subscription;
    grpc_byte_buffer_destroy(c->response);
    c->response = NULL;
    pthread_mutex_lock(&s->lock);
    if (ok) {
        s->start = s->sending_up_to + 1;
        s->sent_up_to = s->sending_up_to;
        s->state = READING;
    } else {
        s->state = ENDED; /* the call is over */
    }
    pthread_mutex_unlock(&s->lock);
    if (ok)
        pump(c);
}

void srv_subscribe_closed(server_call *c, bool ok)
{
    (void)ok; /* the call is over either way */
    esg_server *server = c->server;
    pthread_mutex_lock(&server->subscriptions_lock);
    c->is_subscribe_closed = true;
    subscription *s = c->subscription;
    if (s != NULL && s->is_listed) {
        for (server_call **p = &server->subscriptions; *p != NULL; p = &(*p)->subscription->next) {
            if (*p == c) {
                *p = s->next;
                server->n_subscriptions--;
                break;
            }
        }
        s->is_listed = false;
    }
    pthread_mutex_unlock(&server->subscriptions_lock);
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->is_ending = true; /* a step in flight ends it; nothing else will wake it */
    pthread_mutex_unlock(&s->lock);
}

/* Takes the listed subscriptions that are PARKED (held, moved to READING) into calls (at most
 * MAX_SUBSCRIPTIONS); tells the others there is news, or, at stop, that they end. */
static size_t take_parked(esg_server *server, server_call **calls, bool is_stop)
{
    size_t n = 0;
    pthread_mutex_lock(&server->subscriptions_lock);
    if (is_stop)
        server->is_subscribing_closed = true;
    for (server_call *c = server->subscriptions; c != NULL; c = c->subscription->next) {
        subscription *s = c->subscription;
        pthread_mutex_lock(&s->lock);
        if (is_stop)
            s->is_ending = true;
        else
            s->has_news = true;
        if (s->state == PARKED && n < MAX_SUBSCRIPTIONS) {
            s->state = READING;
            srv_hold_call(c);
            calls[n++] = c;
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&server->subscriptions_lock);
    return n;
}

void srv_wake_subscriptions(esg_server *server)
{
    server_call *calls[MAX_SUBSCRIPTIONS];
    size_t n = take_parked(server, calls, false);
    for (size_t i = 0; i < n; i++) {
        pump(calls[i]);
        srv_release_call(calls[i]);
    }
}

void srv_end_subscriptions(esg_server *server)
{
    server_call *calls[MAX_SUBSCRIPTIONS];
    size_t n = take_parked(server, calls, true);
    for (size_t i = 0; i < n; i++) {
        pump(calls[i]); /* it sees is_ending: the status goes out */
        srv_release_call(calls[i]);
    }
}

/* ---- Other replicas' writes ---- */

/* How long a watch waits at a time (a stop interrupts it sooner). */
#define REPLICA_WATCH_WAIT_MS 1000

static void *replica_watch_main(void *arg)
{
    esg_server *server = arg;
    const char *name = esg_application_name(server->app);
    bool is_failing = false;
    while (!atomic_load(&server->is_replica_watch_stopping)) {
        bool has_news = false;
        esg_error err = {0};
        esg_status rc =
            esg_recorder_watch_wait(server->replica_watch, REPLICA_WATCH_WAIT_MS, &has_news, &err);
        if (rc != ESG_OK && !is_failing) {
            esg_log(ESG_LOG_WARNING, name,
                    "cannot hear of other replicas' writes (subscribed followers get them at "
                    "their next pull meanwhile): %s: %s",
                    esg_status_name(rc), err.message);
            is_failing = true;
        } else if (rc == ESG_OK && has_news && is_failing) {
            esg_log(ESG_LOG_INFO, name, "hearing of other replicas' writes again");
            is_failing = false;
        }
        if (has_news)
            srv_wake_subscriptions(server);
    }
    return NULL;
}

esg_status srv_replica_watch_start(esg_server *server, esg_error *err)
{
    esg_status rc =
        esg_recorder_watch_new(esg_application_recorder(server->app), &server->replica_watch, err);
    if (rc != ESG_OK || server->replica_watch == NULL)
        return rc;
    if (pthread_create(&server->replica_watch_thread, NULL, replica_watch_main, server) != 0) {
        esg_recorder_watch_free(server->replica_watch);
        server->replica_watch = NULL;
        return esg_error_set(err, ESG_ENOMEM, "cannot start the thread hearing other replicas");
    }
    return ESG_OK;
}

void srv_replica_watch_stop(esg_server *server)
{
    if (server->replica_watch == NULL)
        return;
    atomic_store(&server->is_replica_watch_stopping, true);
    esg_recorder_watch_interrupt(server->replica_watch);
    pthread_join(server->replica_watch_thread, NULL);
    esg_recorder_watch_free(server->replica_watch);
    server->replica_watch = NULL;
}

bool srv_is_subscribed(esg_server *server, const char *follower_name)
{
    bool is_subscribed = false;
    pthread_mutex_lock(&server->subscriptions_lock);
    for (server_call *c = server->subscriptions; c != NULL && !is_subscribed;
         c = c->subscription->next)
        is_subscribed = strcmp(c->subscription->follower_name, follower_name) == 0;
    pthread_mutex_unlock(&server->subscriptions_lock);
    return is_subscribed;
}
