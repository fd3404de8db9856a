/* Mutual TLS, for real: a server on a non-local address with certificates
 * from scripts/make-ssl.sh accepts a client whose certificate its root CA
 * signed, and refuses one without a certificate, one from another CA, an
 * expired one, and a client that does not trust the server's CA; two servers behind one
 * address (a list) are called in turn over TLS. */
#include "testutil.h"

#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/grpc.h"
#include "raw_call.h"

typedef struct fixture {
    char *dir;    /* temp folder holding pki-a/ and pki-b/ */
    esg_env *env; /* the server's GRPC_SSL_* settings */
    esg_application *app;
    esg_server *server;
    char target[64]; /* localhost:<port> */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    esg_error err;
    f->dir = testutil_make_temp_dir();
    raw_make_pki(f->dir, "pki-a", "");
    raw_make_pki(f->dir, "pki-b", "");
    raw_make_pki(f->dir, "pki-a", "--expired expired");
    f->env = esg_env_new();
    char path[1200];
    snprintf(path, sizeof path, "%s/pki-a/orders/orders.key", f->dir);
    assert_esg_ok(esg_env_set(f->env, "GRPC_SSL_PRIVATE_KEY_PATH", path, &err), &err);
    snprintf(path, sizeof path, "%s/pki-a/orders/orders.crt", f->dir);
    assert_esg_ok(esg_env_set(f->env, "GRPC_SSL_CERTIFICATE_PATH", path, &err), &err);
    snprintf(path, sizeof path, "%s/pki-a/root/root.crt", f->dir);
    assert_esg_ok(esg_env_set(f->env, "GRPC_SSL_ROOT_CERTIFICATE_PATH", path, &err), &err);
    assert_esg_ok(esg_application_new(&esg_example_orders, f->env, &f->app, &err), &err);
    /* Any address but the loopback names means mutual TLS. */
    esg_server_options options = {.address = "0.0.0.0:0", .env = f->env};
    assert_esg_ok(esg_server_start(f->app, &options, &f->server, &err), &err);
    snprintf(f->target, sizeof f->target, "localhost:%d", esg_server_port(f->server));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_server_stop(f->server);
    esg_application_free(f->app);
    esg_env_free(f->env);
    testutil_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A refused handshake never connects: the call, which waits for the channel
 * to be ready, ends UNAVAILABLE or at its deadline. */
static void assert_refused(grpc_status_code status)
{
    if (status != GRPC_STATUS_UNAVAILABLE && status != GRPC_STATUS_DEADLINE_EXCEEDED)
        fail_msg("expected the connection to be refused, got status %d", status);
}

/* Pings over TLS as a client with the given files (NULL key/cert: none). */
static grpc_status_code ping(fixture *f, const char *root, const char *key, const char *cert)
{
    grpc_channel *channel =
        raw_tls_channel_from_files(f->target, f->dir, root, key, cert, "orders");
    raw_reply reply;
    raw_call(channel, "/eventsourcing_grpc.Application/Ping", NULL, 0, 1500, &reply);
    grpc_status_code status = reply.status;
    raw_reply_clear(&reply);
    grpc_channel_destroy(channel);
    return status;
}

static void test_a_certificate_of_the_same_ca_is_accepted(void **state)
{
    fixture *f = *state;
    assert_int_equal(ping(f, "pki-a/root/root.crt", "pki-a/payments/payments.key",
                          "pki-a/payments/payments.crt"),
                     GRPC_STATUS_OK);
}

static void test_no_client_certificate_is_refused(void **state)
{
    fixture *f = *state;
    assert_refused(ping(f, "pki-a/root/root.crt", NULL, NULL));
}

static void test_a_certificate_of_another_ca_is_refused(void **state)
{
    fixture *f = *state;
    assert_refused(ping(f, "pki-a/root/root.crt", "pki-b/payments/payments.key",
                        "pki-b/payments/payments.crt"));
}

static void test_an_expired_certificate_is_refused(void **state)
{
    fixture *f = *state;
    assert_refused(
        ping(f, "pki-a/root/root.crt", "pki-a/expired/expired.key", "pki-a/expired/expired.crt"));
}

static void test_a_server_of_another_ca_is_not_trusted(void **state)
{
    fixture *f = *state;
    assert_refused(ping(f, "pki-b/root/root.crt", "pki-b/payments/payments.key",
                        "pki-b/payments/payments.crt"));
}

static void test_plaintext_and_local_clients_are_refused(void **state)
{
    fixture *f = *state;
    grpc_channel *channel = raw_channel(f->target, NULL);
    raw_reply reply;
    raw_call(channel, "/eventsourcing_grpc.Application/Ping", NULL, 0, 1500, &reply);
    assert_refused(reply.status);
    raw_reply_clear(&reply);
    grpc_channel_destroy(channel);
}

static size_t n_notifications(esg_application *app)
{
    esg_notification_list page = {0};
    esg_error err = {0};
    assert_esg_ok(esg_application_select_notifications(app, 1, 1000, 0, NULL, 0, &page, &err),
                  &err);
    size_t n = page.n_items;
    esg_notification_list_clear(&page);
    return n;
}

static void create_order(esg_client *client)
{
    esg_error err = {0};
    esg_value *id = NULL;
    assert_esg_ok(esg_client_call(client, "create_new_order", NULL, NULL, &id, &err), &err);
    esg_value_free(id);
}

/* Replicas behind one address over mutual TLS: a list of two servers (127.0.0.1, which the
 * certificates name) is called in turn, each handshake checking the server's certificate
 * against the list's first host (a first host the certificates do not name fails); a client
 * from another CA is refused by both. */
static void test_replicas_behind_a_list(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_application *other_app = NULL;
    esg_server *other = NULL;
    assert_esg_ok(esg_application_new(&esg_example_orders, f->env, &other_app, &err), &err);
    esg_server_options options = {.address = "0.0.0.0:0", .env = f->env};
    assert_esg_ok(esg_server_start(other_app, &options, &other, &err), &err);
    char list[80], path[1200];
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", esg_server_port(f->server),
             esg_server_port(other));
    esg_env *client_env = esg_env_new();
    const char *files[][2] = {{"GRPC_SSL_PRIVATE_KEY_PATH", "pki-a/payments/payments.key"},
                              {"GRPC_SSL_CERTIFICATE_PATH", "pki-a/payments/payments.crt"},
                              {"GRPC_SSL_ROOT_CERTIFICATE_PATH", "pki-a/root/root.crt"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, files[i][1]);
        assert_esg_ok(esg_env_set(client_env, files[i][0], path, &err), &err);
    }
    esg_client_options client_options = {.env = client_env, .max_attempts = 10};
    esg_client *client = NULL;
    assert_esg_ok(esg_client_connect_address(list, &client_options, &client, &err), &err);
    /* Round robin calls the replicas whose handshake is done: until both are, calls go to one
     * (under load the second TLS handshake can take a while). */
    int64_t deadline = esg_clock_now_ms() + 10000;
    while ((n_notifications(f->app) == 0 || n_notifications(other_app) == 0) &&
           esg_clock_now_ms() < deadline)
        create_order(client);
    size_t before_a = n_notifications(f->app), before_b = n_notifications(other_app);
    assert_true(before_a > 0 && before_b > 0);
    for (int i = 0; i < 20; i++)
        create_order(client);
    size_t on_a = n_notifications(f->app) - before_a, on_b = n_notifications(other_app) - before_b;
    print_message("20 orders over TLS to a list: %zu on A, %zu on B\n", on_a, on_b);
    assert_int_equal(on_a + on_b, 20);
    assert_true(on_a >= 5 && on_b >= 5); /* round robin: about half each */
    esg_client_free(client);

    /* The first host's name is what every replica's certificate must name: 127.0.0.2 reaches
     * the same servers, but their certificates do not name it. */
    char unnamed[80];
    snprintf(unnamed, sizeof unnamed, "127.0.0.2:%d,127.0.0.1:%d", esg_server_port(f->server),
             esg_server_port(other));
    client_options.max_attempts = 2;
    client_options.deadline_ms = 1500;
    assert_int_equal(esg_client_connect_address(unnamed, &client_options, &client, &err),
                     ESG_EUNAVAILABLE);

    /* A client certificate of another CA: refused by each replica. */
    snprintf(path, sizeof path, "%s/pki-b/payments/payments.key", f->dir);
    assert_esg_ok(esg_env_set(client_env, "GRPC_SSL_PRIVATE_KEY_PATH", path, &err), &err);
    snprintf(path, sizeof path, "%s/pki-b/payments/payments.crt", f->dir);
    assert_esg_ok(esg_env_set(client_env, "GRPC_SSL_CERTIFICATE_PATH", path, &err), &err);
    assert_int_equal(esg_client_connect_address(list, &client_options, &client, &err),
                     ESG_EUNAVAILABLE);
    esg_env_free(client_env);
    esg_server_stop(other);
    esg_application_free(other_app);
}

/* Every test gets its own server and PKI. */
#define TLS_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TLS_TEST(test_a_certificate_of_the_same_ca_is_accepted),
        TLS_TEST(test_no_client_certificate_is_refused),
        TLS_TEST(test_a_certificate_of_another_ca_is_refused),
        TLS_TEST(test_an_expired_certificate_is_refused),
        TLS_TEST(test_a_server_of_another_ca_is_not_trusted),
        TLS_TEST(test_plaintext_and_local_clients_are_refused),
        TLS_TEST(test_replicas_behind_a_list),
    };
    return raw_run_grpc_tests("tls", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
