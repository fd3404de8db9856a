/* Tests of eventsourcing_grpc_c.v1.Node/Subscribe: the server's side (src/grpc/node_service.c)
 * and the client's (src/grpc/subscription.c), against the example Orders in memory served by
 * a plain server (orders_server.h; no node: the server itself hears the application's writes). The
 * first page at once, pages as orders are recorded, topics, a start mid-log, pages of at most 100,
 * empty pages that move up_to, bad requests, the limit on subscriptions, and the ends: the server's
 * stop (quick, ESG_ECLOSED) and the client's close (which ends a wait). */
#include "testutil.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/grpc.h"
#include "orders_server.h"
#include "raw_call.h"

#define TOPIC(name) "eventsourcing_grpc.example:" name
#define MAX_SUBSCRIPTIONS 64 /* node_service.c's */

typedef orders_session fixture;

static void create_orders(fixture *f, size_t n)
{
    esg_error err = {0};
    for (size_t i = 0; i < n; i++) {
        esg_value *id = NULL;
        assert_esg_ok(esg_client_call(f->client, "create_new_order", NULL, NULL, &id, &err), &err);
        esg_value_free(id);
    }
}

static esg_subscription *subscribe(fixture *f, int64_t start, const char *const *topics,
                                   size_t n_topics)
{
    esg_error err = {0};
    esg_subscription *s = NULL;
    assert_esg_ok(esg_client_subscribe(f->client, "Tests", start, topics, n_topics, &s, &err),
                  &err);
    return s;
}

/* The next page, appended to list; its up_to. */
static int64_t next_page(esg_subscription *s, esg_notification_list *list)
{
    esg_error err = {0};
    int64_t up_to = -1;
    assert_esg_ok(esg_subscription_next(s, -1, list, &up_to, &err), &err);
    return up_to;
}

/* The next page must reach up_to with n notifications (then dropped). */
static void expect_page(esg_subscription *s, int64_t up_to, size_t n)
{
    esg_notification_list list = {0};
    assert_int_equal(next_page(s, &list), up_to);
    assert_int_equal(list.n_items, n);
    esg_notification_list_clear(&list);
}

/* Reads pages until up_to reaches last: the ids must follow each other from first. */
static void read_until(esg_subscription *s, int64_t first, int64_t last)
{
    esg_notification_list list = {0};
    int64_t up_to = 0;
    while (up_to < last)
        up_to = next_page(s, &list);
    assert_int_equal(up_to, last);
    assert_int_equal(list.n_items, last - first + 1);
    for (size_t i = 0; i < list.n_items; i++)
        assert_int_equal(list.items[i].id, first + (int64_t)i);
    esg_notification_list_clear(&list);
}

/* The first page comes at once, empty on an empty log; then each order recorded is pushed, in
 * order, without a gap or a repeat. */
static void test_first_page_then_pushes(void **state)
{
    fixture *f = *state;
    esg_subscription *s = subscribe(f, 1, NULL, 0);
    expect_page(s, 0, 0);
    create_orders(f, 1);
    esg_notification_list list = {0};
    assert_int_equal(next_page(s, &list), 1);
    assert_string_equal(list.items[0].event.topic, TOPIC("Order.Created"));
    esg_notification_list_clear(&list);
    create_orders(f, 20);
    read_until(s, 2, 21);
    esg_subscription_free(s);
}

/* From a start mid-log, in pages of at most 100. */
static void test_start_and_pages(void **state)
{
    fixture *f = *state;
    create_orders(f, 250);
    esg_subscription *s = subscribe(f, 31, NULL, 0);
    read_until(s, 31, 130); /* one page */
    read_until(s, 131, 250);
    esg_subscription_free(s);
}

/* Only the topics asked for; a page without any still moves up_to, so that the follower knows
 * it has seen the log to there. */
static void test_topics(void **state)
{
    fixture *f = *state;
    create_orders(f, 3);
    static const char *const created[] = {TOPIC("Order.Created")};
    static const char *const other[] = {TOPIC("Order.Paid")};
    esg_subscription *all = subscribe(f, 1, created, 1);
    esg_subscription *none = subscribe(f, 1, other, 1);
    expect_page(all, 3, 3);
    expect_page(none, 3, 0);
    create_orders(f, 1);
    expect_page(none, 4, 0);
    expect_page(all, 4, 1);
    esg_subscription_free(none);
    esg_subscription_free(all);
}

/* A wait with a timeout: ESG_ETIMEDOUT when nothing came, and the subscription goes on (the
 * read in flight is the next call's); 0 takes only what is already here. */
static void test_timeouts(void **state)
{
    fixture *f = *state;
    esg_subscription *s = subscribe(f, 1, NULL, 0);
    expect_page(s, 0, 0);
    esg_error err = {0};
    esg_notification_list list = {0};
    int64_t up_to = 0;
    assert_int_equal(esg_subscription_next(s, 0, &list, &up_to, &err), ESG_ETIMEDOUT);
    int64_t started = esg_clock_now_ms();
    assert_int_equal(esg_subscription_next(s, 50, &list, &up_to, &err), ESG_ETIMEDOUT);
    assert_true(esg_clock_now_ms() - started >= 45);
    assert_non_null(strstr(err.message, "no page within 50 ms"));
    create_orders(f, 2);
    read_until(s, 1, 2);
    esg_subscription_free(s); /* also with a read in flight */
    s = subscribe(f, 3, NULL, 0);
    expect_page(s, 2, 0);
    assert_int_equal(esg_subscription_next(s, 0, &list, &up_to, &err), ESG_ETIMEDOUT);
    esg_subscription_free(s);
}

/* A request the server refuses ends the stream with INVALID_ARGUMENT and says why. */
static void test_bad_requests(void **state)
{
    fixture *f = *state;
    static const char *topics[101];
    for (size_t i = 0; i < 101; i++)
        topics[i] = "t";
    static const struct {
        int64_t start;
        size_t n_topics;
        const char *says;
    } cases[] = {{0, 0, "start must be >= 1"}, {-5, 0, "start must be >= 1"}, {1, 101, "topics"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esg_subscription *s = subscribe(f, cases[i].start, topics, cases[i].n_topics);
        esg_error err = {0};
        esg_notification_list list = {0};
        int64_t up_to = 0;
        assert_int_equal(esg_subscription_next(s, -1, &list, &up_to, &err), ESG_EINVAL);
        assert_non_null(strstr(err.message, cases[i].says));
        /* Over: it says so again, without a call. */
        assert_int_equal(esg_subscription_next(s, -1, &list, &up_to, &err), ESG_ECLOSED);
        esg_subscription_free(s);
    }
}

/* At most MAX_SUBSCRIPTIONS at once: the next is refused and says why; one freed makes room. */
static void test_subscriptions_are_limited(void **state)
{
    fixture *f = *state;
    esg_subscription *s[MAX_SUBSCRIPTIONS + 1];
    esg_notification_list list = {0};
    for (size_t i = 0; i < MAX_SUBSCRIPTIONS; i++) {
        s[i] = subscribe(f, 1, NULL, 0);
        assert_int_equal(next_page(s[i], &list), 0);
    }
    s[MAX_SUBSCRIPTIONS] = subscribe(f, 1, NULL, 0);
    esg_error err = {0};
    int64_t up_to = 0;
    assert_int_not_equal(esg_subscription_next(s[MAX_SUBSCRIPTIONS], -1, &list, &up_to, &err),
                         ESG_OK);
    assert_non_null(strstr(err.message, "subscriptions already"));
    esg_subscription_free(s[MAX_SUBSCRIPTIONS]);
    esg_subscription_free(s[0]);
    /* The server hears the cancellation a moment later. */
    int64_t started = esg_clock_now_ms();
    for (;;) {
        esg_subscription *again = subscribe(f, 1, NULL, 0);
        esg_status rc = esg_subscription_next(again, -1, &list, &up_to, &err);
        s[0] = again;
        if (rc == ESG_OK)
            break;
        esg_subscription_free(again);
        assert_true(esg_clock_now_ms() - started < 5000);
        esg_clock_sleep_ms(20);
    }
    for (size_t i = 0; i < MAX_SUBSCRIPTIONS; i++)
        esg_subscription_free(s[i]);
    esg_notification_list_clear(&list);
}

/* The server's stop ends a stream that waits for news with OK at once (not after the stop's
 * grace of 1 s): the subscriber then gets ESG_ECLOSED. */
static void test_stop_ends_streams(void **state)
{
    fixture *f = *state;
    esg_subscription *s = subscribe(f, 1, NULL, 0);
    expect_page(s, 0, 0); /* now the server waits for news */
    int64_t started = esg_clock_now_ms();
    orders_stop(f->server);
    f->server = NULL;
    assert_true(esg_clock_now_ms() - started < 900);
    esg_error err = {0};
    esg_notification_list list = {0};
    int64_t up_to = 0;
    assert_int_equal(esg_subscription_next(s, -1, &list, &up_to, &err), ESG_ECLOSED);
    assert_non_null(strstr(err.message, "ended the stream"));
    esg_subscription_free(s);
}

static void *close_soon(void *client)
{
    esg_clock_sleep_ms(100);
    esg_client_close(client);
    return NULL;
}

/* The client's close, from another thread, ends a wait for a page: ESG_ECLOSED. */
static void test_close_ends_a_wait(void **state)
{
    fixture *f = *state;
    esg_subscription *s = subscribe(f, 1, NULL, 0);
    expect_page(s, 0, 0);
    pthread_t closer;
    assert_int_equal(pthread_create(&closer, NULL, close_soon, f->client), 0);
    esg_error err = {0};
    esg_notification_list list = {0};
    int64_t up_to = 0;
    assert_int_equal(esg_subscription_next(s, -1, &list, &up_to, &err), ESG_ECLOSED);
    pthread_join(closer, NULL);
    esg_subscription_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ORDERS_SESSION_TEST(test_first_page_then_pushes),
        ORDERS_SESSION_TEST(test_start_and_pages),
        ORDERS_SESSION_TEST(test_topics),
        ORDERS_SESSION_TEST(test_timeouts),
        ORDERS_SESSION_TEST(test_bad_requests),
        ORDERS_SESSION_TEST(test_subscriptions_are_limited),
        ORDERS_SESSION_TEST(test_stop_ends_streams),
        ORDERS_SESSION_TEST(test_close_ends_a_wait),
    };
    return raw_run_grpc_tests("subscribe", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
