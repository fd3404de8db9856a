/* Tests of src/grpc/credentials.c: splitting addresses, which of them are
 * local, and the ESG_ECONFIG messages for missing or wrong TLS files, with a
 * real test PKI made by scripts/make-ssl.sh. Handshakes are tested elsewhere. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "grpc/credentials.h"
#include "raw_call.h"

#ifndef ESG_SOURCE_DIR
#error "ESG_SOURCE_DIR (the repository root) must be defined to find scripts/make-ssl.sh"
#endif

/* PEM-shaped files: enough for the checks made before gRPC sees the text. */
static const char FAKE_KEY[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
static const char FAKE_CERT[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

typedef struct fixture {
    char *dir;     /* temporary folder, removed at the end */
    char *ssl_dir; /* dir/ssl, made by scripts/make-ssl.sh */
    bool has_pki;  /* false when the script could not run (no openssl) */
    char fake_key[1100];
    char fake_cert[1100];
} fixture;

static fixture fx;

static char *path_in(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int run(const char *command)
{
    int status = system(command);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int group_setup(void **state)
{
    (void)state;
    fx.dir = testutil_make_temp_dir();
    fx.ssl_dir = path_in(fx.dir, "ssl");
    snprintf(fx.fake_key, sizeof fx.fake_key, "%s/fake.key", fx.dir);
    snprintf(fx.fake_cert, sizeof fx.fake_cert, "%s/fake.crt", fx.dir);
    write_file(fx.fake_key, FAKE_KEY, strlen(FAKE_KEY));
    write_file(fx.fake_cert, FAKE_CERT, strlen(FAKE_CERT));

    char command[4096];
    snprintf(command, sizeof command, "bash '%s/scripts/make-ssl.sh' '%s' >/dev/null",
             ESG_SOURCE_DIR, fx.ssl_dir);
    if (run("command -v openssl >/dev/null") != 0) {
        fprintf(stderr, "openssl not found: the tests that need a PKI are skipped\n");
        return 0;
    }
    if (run(command) != 0) {
        fprintf(stderr, "failed: %s\n", command);
        return -1;
    }
    fx.has_pki = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    testutil_remove_tree(fx.dir);
    free(fx.dir);
    free(fx.ssl_dir);
    return 0;
}

/* Skips the test when group_setup could not make the PKI (no openssl). */
static void skip_without_pki(void)
{
    if (!fx.has_pki)
        skip();
}

/* An environment with the three variables set to key, cert and root (NULL: unset). */
static esg_env *tls_env(const char *key, const char *cert, const char *root)
{
    esg_env *env = esg_env_new();
    esg_error err;
    assert_non_null(env);
    if (key != NULL)
        assert_esg_ok(esg_env_set(env, "GRPC_SSL_PRIVATE_KEY_PATH", key, &err), &err);
    if (cert != NULL)
        assert_esg_ok(esg_env_set(env, "GRPC_SSL_CERTIFICATE_PATH", cert, &err), &err);
    if (root != NULL)
        assert_esg_ok(esg_env_set(env, "GRPC_SSL_ROOT_CERTIFICATE_PATH", root, &err), &err);
    return env;
}

/* The files of a PKI member: DIR/ssl/<name>/<name>.{key,crt} and root.crt (the root's copy). */
typedef struct member_files {
    char key[1200];
    char cert[1200];
    char root[1200];
} member_files;

static member_files pki_member(const char *name)
{
    member_files m;
    snprintf(m.key, sizeof m.key, "%s/%s/%s.key", fx.ssl_dir, name, name);
    snprintf(m.cert, sizeof m.cert, "%s/%s/%s.crt", fx.ssl_dir, name, name);
    snprintf(m.root, sizeof m.root, "%s/%s/root.crt", fx.ssl_dir, name);
    return m;
}

/* The env of a PKI member (the caller esg_env_free's it). */
static esg_env *pki_env(const char *name)
{
    member_files m = pki_member(name);
    return tls_env(m.key, m.cert, m.root);
}

/* Asserts that both kinds of credentials fail with ESG_ECONFIG and a message
 * holding each of the given texts (NULL-terminated list). */
static void assert_config_error(const char *address, const esg_env *env, const char *const *texts)
{
    esg_error err;
    grpc_server_credentials *server = (grpc_server_credentials *)1;
    assert_int_equal(esg_server_credentials_create(address, env, NULL, &server, &err), ESG_ECONFIG);
    assert_null(server);
    for (const char *const *t = texts; *t != NULL; t++)
        if (strstr(err.message, *t) == NULL)
            fail_msg("server error '%s' does not mention '%s'", err.message, *t);

    grpc_channel_credentials *channel = (grpc_channel_credentials *)1;
    assert_int_equal(esg_channel_credentials_create(address, env, NULL, &channel, &err),
                     ESG_ECONFIG);
    assert_null(channel);
    for (const char *const *t = texts; *t != NULL; t++)
        if (strstr(err.message, *t) == NULL)
            fail_msg("channel error '%s' does not mention '%s'", err.message, *t);
}

static void assert_credentials_made(const char *address, const esg_env *env)
{
    esg_error err;
    grpc_server_credentials *server = NULL;
    assert_esg_ok(esg_server_credentials_create(address, env, NULL, &server, &err), &err);
    assert_non_null(server);
    grpc_server_credentials_release(server);

    grpc_channel_credentials *channel = NULL;
    assert_esg_ok(esg_channel_credentials_create(address, env, NULL, &channel, &err), &err);
    assert_non_null(channel);
    grpc_channel_credentials_release(channel);
}

static void test_split_good(void **state)
{
    (void)state;
    static const struct {
        const char *address, *host;
        int port;
    } cases[] = {
        {"localhost:50051", "localhost", 50051},
        {"orders:50051", "orders", 50051},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"127.0.0.1:65535", "127.0.0.1", 65535},
        {"[::1]:8080", "::1", 8080},
        {"[::]:1", "::", 1},
        {"[fe80::1%eth0]:443", "fe80::1%eth0", 443},
        {"payments.default.svc.cluster.local:50053", "payments.default.svc.cluster.local", 50053},
        {"orders:0050051", "orders", 50051},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[64];
        int port = -1;
        esg_error err;
        assert_esg_ok(esg_address_split(cases[i].address, host, sizeof host, &port, &err), &err);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void test_split_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "orders",       "orders:",
        ":50051",     "orders:65536", "orders:-1",
        "orders:+1",  "orders:5x",    "orders:99999999999999999999999",
        "orders: 1",  "ord ers:1",    "[::1]",
        "[::1]50051", "[::1:50051",   "[]:50051",
        "::1:50051",  "a]:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[64];
        int port = -1;
        esg_error err;
        esg_error_clear(&err);
        esg_status rc = esg_address_split(bad[i], host, sizeof host, &port, &err);
        if (rc != ESG_ECONFIG)
            fail_msg("'%s' gave %s, not ESG_ECONFIG", bad[i], esg_status_name(rc));
        assert_int_equal(err.status, ESG_ECONFIG);
        if (*bad[i] != '\0' && strstr(err.message, bad[i]) == NULL)
            fail_msg("error '%s' does not name '%s'", err.message, bad[i]);
        assert_int_equal(port, -1);
    }

    esg_error err;
    assert_int_equal(esg_address_split(NULL, NULL, 0, NULL, &err), ESG_ECONFIG);
    /* A host that does not fit the caller's buffer. */
    char small[6];
    assert_int_equal(esg_address_split("orders:50051", small, sizeof small, NULL, &err),
                     ESG_ECONFIG);
    assert_esg_ok(esg_address_split("order:50051", small, sizeof small, NULL, &err), &err);
    assert_string_equal(small, "order");
}

/* Fails the test at the first of addresses (n of them, borrowed) for which is() is not expected;
 * what names the class in the message. */
static void assert_classified(bool (*is)(const char *), const char *what,
                              const char *const *addresses, size_t n, bool expected)
{
    for (size_t i = 0; i < n; i++)
        if (is(addresses[i]) != expected)
            fail_msg("'%s' should %sbe %s", addresses[i], expected ? "" : "not ", what);
}

static void test_is_local(void **state)
{
    (void)state;
    /* As the reference: local credentials for exactly "localhost:PORT", nothing else. */
    static const char *const local[] = {"localhost:50051", "localhost:0", "localhost:99999"};
    static const char *const not_local[] = {
        "127.0.0.1:0",
        "127.0.0.1:50051",
        "[::1]:50051",
        "LocalHost:1",
        "orders:50051",
        "0.0.0.0:1",
        "localhost",
        "localhost:",
        "localhost:1x",
        "localhost:-1",
        "localhost: 1",
        "mylocalhost:1",
        "",
        "localhost.example.com:1",
    };
    assert_classified(esg_address_is_local, "local", local, sizeof local / sizeof local[0], true);
    assert_classified(esg_address_is_local, "local", not_local,
                      sizeof not_local / sizeof not_local[0], false);
    assert_false(esg_address_is_local(NULL));
}

static void test_is_loopback(void **state)
{
    (void)state;
    static const char *const loopback[] = {
        "localhost:50051", "LocalHost:1",           "127.0.0.1:0", "127.0.0.1:50051",
        "127.1.2.3:9",     "127.255.255.255:65535", "[::1]:50051", "[0:0:0:0:0:0:0:1]:1",
    };
    static const char *const not_loopback[] = {
        "orders:50051",
        "0.0.0.0:50051",
        "[::]:50051",
        "[::2]:1",
        "10.0.0.1:1",
        "128.0.0.1:1",
        "126.0.0.1:1",
        "127.1:1",
        "127.0.0.256:1",
        "127.0.0.1.example.com:1",
        "localhost.example.com:1",
        "mylocalhost:1",
        "localhost",
        "localhost:",
        "localhost:99999",
        "127.0.0.1",
        "::1:50051",
        "",
    };
    assert_classified(esg_address_is_loopback, "loopback", loopback,
                      sizeof loopback / sizeof loopback[0], true);
    assert_classified(esg_address_is_loopback, "loopback", not_loopback,
                      sizeof not_loopback / sizeof not_loopback[0], false);
    assert_false(esg_address_is_loopback(NULL));
}

static void test_local_needs_no_files(void **state)
{
    (void)state;
    esg_env *empty = esg_env_new();
    assert_non_null(empty);
    /* Even files that do not exist are ignored for localhost:PORT. */
    esg_env *missing = tls_env("/nonexistent/k", "/nonexistent/c", "/nonexistent/r");
    assert_credentials_made("localhost:0", empty);
    assert_credentials_made("localhost:50051", missing);
    /* The numeric loopback addresses need mutual TLS, as in the reference. */
    static const char *const numeric[] = {"127.0.0.1:50051", "[::1]:0"};
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
        assert_config_error(numeric[i], empty,
                            (const char *const[]){"GRPC_SSL_PRIVATE_KEY_PATH is not set",
                                                  "only localhost:PORT", NULL});
    esg_env_free(missing);
    esg_env_free(empty);
}

/* <APP>_GRPC_SSL_* are looked up before the plain keys, as Python's Environment does. */
static void test_per_application_files(void **state)
{
    (void)state;
    skip_without_pki();
    member_files orders = pki_member("orders");
    esg_env *env = tls_env("/nonexistent/k", "/nonexistent/c", "/nonexistent/r");
    esg_error err;
    assert_esg_ok(esg_env_set(env, "ORDERS_GRPC_SSL_PRIVATE_KEY_PATH", orders.key, &err), &err);
    assert_esg_ok(esg_env_set(env, "ORDERS_GRPC_SSL_CERTIFICATE_PATH", orders.cert, &err), &err);
    assert_esg_ok(esg_env_set(env, "ORDERS_GRPC_SSL_ROOT_CERTIFICATE_PATH", orders.root, &err),
                  &err);
    grpc_server_credentials *server = NULL;
    assert_esg_ok(esg_server_credentials_create("orders:50051", env, "Orders", &server, &err),
                  &err);
    grpc_server_credentials_release(server);
    grpc_channel_credentials *channel = NULL;
    assert_esg_ok(esg_channel_credentials_create("payments:50053", env, "Orders", &channel, &err),
                  &err);
    grpc_channel_credentials_release(channel);
    /* Another application falls back to the plain keys, which name missing files. */
    assert_int_equal(
        esg_server_credentials_create("payments:50053", env, "Payments", &server, &err),
        ESG_ECONFIG);
    assert_non_null(strstr(err.message, "GRPC_SSL_PRIVATE_KEY_PATH '/nonexistent/k'"));
    /* Without either, the message names both keys it tried. */
    esg_env_unset(env, "GRPC_SSL_PRIVATE_KEY_PATH");
    assert_int_equal(
        esg_server_credentials_create("payments:50053", env, "Payments", &server, &err),
        ESG_ECONFIG);
    assert_non_null(
        strstr(err.message, "PAYMENTS_GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_PRIVATE_KEY_PATH"));
    esg_env_free(env);
}

static void test_bad_address(void **state)
{
    (void)state;
    esg_env *env = esg_env_new();
    assert_non_null(env);
    assert_config_error("orders", env, (const char *const[]){"'orders'", "port", NULL});
    assert_config_error("orders:70000", env, (const char *const[]){"'orders:70000'", NULL});
    assert_config_error("", env, (const char *const[]){"address", NULL});
    esg_env_free(env);
}

static void test_missing_variables(void **state)
{
    (void)state;
    const char *key = fx.fake_key, *cert = fx.fake_cert;
    esg_env *no_key = tls_env(NULL, cert, cert);
    esg_env *no_cert = tls_env(key, NULL, cert);
    esg_env *no_root = tls_env(key, cert, NULL);
    esg_env *empty_key = tls_env("", cert, cert);
    assert_config_error(
        "orders:50051", no_key,
        (const char *const[]){"GRPC_SSL_PRIVATE_KEY_PATH is not set", "orders:50051", NULL});
    assert_config_error("0.0.0.0:50051", no_cert,
                        (const char *const[]){"GRPC_SSL_CERTIFICATE_PATH is not set", NULL});
    assert_config_error("10.1.2.3:50051", no_root,
                        (const char *const[]){"GRPC_SSL_ROOT_CERTIFICATE_PATH is not set", NULL});
    assert_config_error("orders:50051", empty_key,
                        (const char *const[]){"GRPC_SSL_PRIVATE_KEY_PATH is not set", NULL});
    esg_env_free(no_key);
    esg_env_free(no_cert);
    esg_env_free(no_root);
    esg_env_free(empty_key);
}

static void test_unreadable_files(void **state)
{
    (void)state;
    char *missing = path_in(fx.dir, "no-such.key");
    esg_env *env = tls_env(missing, fx.fake_cert, fx.fake_cert);
    const char *const texts[] = {"cannot read GRPC_SSL_PRIVATE_KEY_PATH", missing,
                                 "No such file or directory", NULL};
    assert_config_error("orders:50051", env, texts);
    esg_env_free(env);

    /* A folder where a file should be. */
    env = tls_env(fx.fake_key, fx.fake_cert, fx.dir);
    assert_config_error("orders:50051", env,
                        (const char *const[]){"GRPC_SSL_ROOT_CERTIFICATE_PATH", fx.dir, NULL});
    esg_env_free(env);
    free(missing);
}

static void test_not_pem(void **state)
{
    (void)state;
    char *text = path_in(fx.dir, "not-pem.crt");
    write_file(text, "hello, world\n", 13);
    esg_env *env = tls_env(fx.fake_key, text, fx.fake_cert);
    assert_config_error(
        "orders:50051", env,
        (const char *const[]){"GRPC_SSL_CERTIFICATE_PATH", text, "does not look like PEM", NULL});
    esg_env_free(env);

    /* An empty file. */
    write_file(text, "", 0);
    env = tls_env(fx.fake_key, fx.fake_cert, text);
    assert_config_error("orders:50051", env,
                        (const char *const[]){"GRPC_SSL_ROOT_CERTIFICATE_PATH", text,
                                              "does not look like PEM", NULL});
    esg_env_free(env);

    /* A NUL inside would cut the C string gRPC is given. */
    static const char with_nul[] =
        "-----BEGIN CERTIFICATE-----\nAA\0AA\n-----END CERTIFICATE-----\n";
    write_file(text, with_nul, sizeof with_nul - 1);
    env = tls_env(fx.fake_key, text, fx.fake_cert);
    assert_config_error("orders:50051", env, (const char *const[]){"does not look like PEM", NULL});
    esg_env_free(env);

    /* Key and certificate the wrong way round. */
    env = tls_env(fx.fake_cert, fx.fake_key, fx.fake_cert);
    assert_config_error("orders:50051", env,
                        (const char *const[]){"GRPC_SSL_PRIVATE_KEY_PATH", "PRIVATE KEY", NULL});
    esg_env_free(env);

    /* Too large to be a certificate: refused before it is read. */
    size_t big_len = 1024 * 1024 + 1;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'A', big_len);
    memcpy(big, FAKE_CERT, strlen(FAKE_CERT));
    write_file(text, big, big_len);
    free(big);
    env = tls_env(fx.fake_key, fx.fake_cert, text);
    assert_config_error("orders:50051", env,
                        (const char *const[]){"GRPC_SSL_ROOT_CERTIFICATE_PATH", "larger", NULL});
    esg_env_free(env);
    free(text);
}

static void test_pki_credentials(void **state)
{
    (void)state;
    skip_without_pki();
    static const char *const names[] = {"orders", "reservations", "payments", "localhost"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        esg_env *env = pki_env(names[i]);
        char address[64];
        snprintf(address, sizeof address, "%s:50051", names[i]);
        assert_credentials_made(i == 3 ? "0.0.0.0:50051" : address, env);
        esg_env_free(env);
    }
}

static void test_pki_layout(void **state)
{
    (void)state;
    skip_without_pki();
    char command[4096];
    /* Keys are for their owner only; each folder carries the root, as the compose file mounts. */
    snprintf(command, sizeof command,
             "cd '%s' && test \"$(stat -c %%a root/root.key orders/orders.key)\" = \"600\n600\" "
             "&& cmp -s root/root.crt payments/root.crt "
             "&& openssl verify -CAfile root/root.crt -purpose sslclient -verify_hostname "
             "reservations reservations/reservations.crt >/dev/null",
             fx.ssl_dir);
    assert_int_equal(run(command), 0);
}

static void test_process_environment(void **state)
{
    (void)state;
    skip_without_pki();
    /* env NULL reads the process environment. */
    member_files payments = pki_member("payments");
    assert_int_equal(setenv("GRPC_SSL_PRIVATE_KEY_PATH", payments.key, 1), 0);
    assert_int_equal(setenv("GRPC_SSL_CERTIFICATE_PATH", payments.cert, 1), 0);
    assert_int_equal(setenv("GRPC_SSL_ROOT_CERTIFICATE_PATH", payments.root, 1), 0);
    assert_credentials_made("payments:50053", NULL);

    assert_int_equal(unsetenv("GRPC_SSL_CERTIFICATE_PATH"), 0);
    assert_config_error("payments:50053", NULL,
                        (const char *const[]){"GRPC_SSL_CERTIFICATE_PATH is not set", NULL});
    unsetenv("GRPC_SSL_PRIVATE_KEY_PATH");
    unsetenv("GRPC_SSL_ROOT_CERTIFICATE_PATH");
}

static void test_expired_certificate_is_refused_at_start(void **state)
{
    (void)state;
    skip_without_pki();
    char command[4096];
    snprintf(command, sizeof command,
             "bash '%s/scripts/make-ssl.sh' '%s' --expired stale >/dev/null && "
             "! openssl x509 -in '%s/stale/stale.crt' -noout -checkend 0 >/dev/null && "
             "cmp -s '%s/root/root.crt' '%s/stale/root.crt'",
             ESG_SOURCE_DIR, fx.ssl_dir, fx.ssl_dir, fx.ssl_dir, fx.ssl_dir);
    assert_int_equal(run(command), 0);
    /* Refused at start, saying when it expired: the handshake would fail with "socket closed". */
    esg_env *env = pki_env("stale");
    assert_config_error("stale:50051", env,
                        (const char *const[]){"the certificate in GRPC_SSL_CERTIFICATE_PATH",
                                              "stale.crt' expired on", NULL});
    esg_env_free(env);
}

static void test_a_key_of_another_certificate_is_refused_at_start(void **state)
{
    (void)state;
    skip_without_pki();
    member_files orders = pki_member("orders"), payments = pki_member("payments");
    esg_env *env = tls_env(payments.key, orders.cert, orders.root);
    assert_config_error("orders:50051", env,
                        (const char *const[]){"the key in GRPC_SSL_PRIVATE_KEY_PATH",
                                              "payments.key' is not the key of the certificate in "
                                              "GRPC_SSL_CERTIFICATE_PATH",
                                              "orders.crt'", NULL});
    esg_env_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_good),
        cmocka_unit_test(test_split_bad),
        cmocka_unit_test(test_is_local),
        cmocka_unit_test(test_is_loopback),
        cmocka_unit_test(test_per_application_files),
        cmocka_unit_test(test_local_needs_no_files),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_missing_variables),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_not_pem),
        cmocka_unit_test(test_pki_credentials),
        cmocka_unit_test(test_pki_layout),
        cmocka_unit_test(test_process_environment),
        cmocka_unit_test(test_expired_certificate_is_refused_at_start),
        cmocka_unit_test(test_a_key_of_another_certificate_is_refused_at_start),
    };
    return raw_run_grpc_tests("credentials", tests, sizeof tests / sizeof tests[0], group_setup,
                              group_teardown);
}
