/* Replicas of a leader on one PostgreSQL database push each other's writes: a follower
 * subscribed to one replica gets, at once, the events recorded through another (the server's
 * watch: every write transaction NOTIFYs, each server LISTENs), in order, each once. Orders in a
 * schema of the test's own on the server of scripts/postgres-test-server.sh; the other replica
 * is an application in the same process writing to the same tables, as one in another process
 * would (its recorder is another, with its own connections). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esg/example.h"
#include "esg/grpc.h"
#include "pg_testutil.h"
#include "raw_call.h"

typedef struct fixture {
    char schema[40];
    esg_env *env; /* the process's POSTGRES_*, PERSISTENCE_MODULE, POSTGRES_SCHEMA */
    /* Two replicas of Orders: the first served (A), the second writing only (B). */
    esg_application *replicas[2];
    esg_server *server;
    esg_client *client; /* of A */
} fixture;

/* Drops the test's schema, and with is_made makes it again (empty). */
static void reset_schema(const fixture *f, bool is_made)
{
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    if (is_made)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), "; CREATE SCHEMA %s", f->schema);
    testutil_postgres_exec(sql);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->schema, sizeof f->schema, "replica_push_%ld", (long)getpid());
    reset_schema(f, true);
    f->env = esg_env_from_process();
    assert_non_null(f->env);
    testutil_env_set(f->env, "PERSISTENCE_MODULE", "eventsourcing.postgres");
    testutil_env_set(f->env, "POSTGRES_SCHEMA", f->schema);
    esg_error err = {0};
    for (size_t i = 0; i < 2; i++)
        assert_esg_ok(esg_application_new(&esg_example_orders, f->env, &f->replicas[i], &err),
                      &err);
    esg_server_options options = {.address = "localhost:0"};
    assert_esg_ok(esg_server_start(f->replicas[0], &options, &f->server, &err), &err);
    char address[64];
    snprintf(address, sizeof address, "localhost:%d", esg_server_port(f->server));
    esg_env *client_env = esg_env_new();
    assert_non_null(client_env);
    testutil_env_set(client_env, "ORDERS_GRPC_SERVER_ADDRESS", address);
    esg_client_options client_options = {.env = client_env, .max_attempts = 10};
    assert_esg_ok(esg_client_connect("Orders", &client_options, &f->client, &err), &err);
    esg_env_free(client_env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_client_free(f->client);
    esg_server_stop(f->server);
    for (size_t i = 0; i < 2; i++)
        esg_application_free(f->replicas[i]);
    esg_env_free(f->env);
    reset_schema(f, false);
    free(f);
    return 0;
}

static void create_order(esg_application *app)
{
    esg_error err = {0};
    esg_value *id = NULL;
    assert_esg_ok(esg_application_call(app, "create_new_order", NULL, NULL, &id, &err), &err);
    esg_value_free(id);
}

/* The next page within 5 s (pushes come in milliseconds; pulls were never asked for): its
 * notifications appended to list, its up_to returned. */
static int64_t next_page(esg_subscription *s, esg_notification_list *list)
{
    esg_error err = {0};
    int64_t up_to = -1;
    assert_esg_ok(esg_subscription_next(s, 5000, list, &up_to, &err), &err);
    return up_to;
}

static void test_writes_through_another_replica_are_pushed(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_subscription *s = NULL;
    assert_esg_ok(esg_client_subscribe(f->client, "Tests", 1, NULL, 0, &s, &err), &err);
    esg_notification_list list = {0};
    assert_int_equal(next_page(s, &list), 0); /* the first page, at once: empty */

    create_order(f->replicas[1]);
    assert_int_equal(next_page(s, &list), 1);
    create_order(f->replicas[0]);
    assert_int_equal(next_page(s, &list), 2);
    for (int i = 0; i < 10; i++)
        create_order(f->replicas[i % 2 == 0 ? 1 : 0]);
    int64_t up_to = 2;
    while (up_to < 12)
        up_to = next_page(s, &list);
    assert_int_equal(up_to, 12);
    assert_int_equal(list.n_items, 12); /* in order, each once */
    for (size_t i = 0; i < list.n_items; i++)
        assert_int_equal(list.items[i].id, (int64_t)i + 1);

    /* Nothing more: no page repeats what was sent. */
    int64_t none = -1;
    assert_int_equal(esg_subscription_next(s, 300, &list, &none, &err), ESG_ETIMEDOUT);
    assert_int_equal(list.n_items, 12);
    esg_notification_list_clear(&list);
    esg_subscription_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_through_another_replica_are_pushed, setup,
                                        teardown),
    };
    return raw_run_grpc_tests("replica_push", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
