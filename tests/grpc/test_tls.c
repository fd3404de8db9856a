/* Mutual TLS, for real: a server on a non-local address with certificates
 * from scripts/make-ssl.sh accepts a client whose certificate its root CA
 * signed, and refuses one without a certificate, one from another CA, an
 * expired one, and a client that does not trust the server's CA. */
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
    };
    return raw_run_grpc_tests("tls", tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
