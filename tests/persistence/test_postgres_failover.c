/* A PostgreSQL failover under an application that keeps running: a primary and a synchronous
 * streaming standby of the test's own (scripts/postgres-test-server.sh), POSTGRES_HOST listing
 * both (the standby first: read-write, the default with several hosts, passes it over). The
 * primary crashes: calls fail as ESG_EUNAVAILABLE, never otherwise; the standby is promoted: the
 * same application, not reopened, writes again, and every order acknowledged before the crash is
 * there (synchronous replication: none lost). Usage: test_postgres_failover SCRIPT, where SCRIPT
 * is scripts/postgres-test-server.sh. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "esg/example.h"
#include "pg_testutil.h"

#define N_ORDERS 20
#define RECOVERY_MS 60000

static const char *script;

typedef struct fixture {
    char *dir;
    char primary[600], standby[600];
    char primary_port[16], standby_port[16], password[128];
    esg_env *env;
} fixture;

/* The one value that sql returns on the server at port, as the tests' role. */
static void query_one(const fixture *f, const char *port, const char *sql, char *out, size_t size)
{
    const char *keywords[] = {"host", "port", "dbname", "user", "password", NULL};
    const char *values[] = {"127.0.0.1", port, "esg_test", "esg_test", f->password, NULL};
    PGconn *conn = PQconnectdbParams(keywords, values, 0);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("'%s' on port %s: %s", sql, port, PQerrorMessage(conn));
    snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = testutil_make_temp_dir();
    snprintf(f->primary, sizeof f->primary, "%s/primary", f->dir);
    snprintf(f->standby, sizeof f->standby, "%s/standby", f->dir);
    testutil_postgres_script(script, "start", f->primary, "");
    char more[700];
    snprintf(more, sizeof more, "'%s' --synchronous", f->primary);
    testutil_postgres_script(script, "standby", f->standby, more);
    char hosts[64], ports[64];
    testutil_postgres_dir_value(f->primary, "port", f->primary_port, sizeof f->primary_port);
    testutil_postgres_dir_value(f->standby, "port", f->standby_port, sizeof f->standby_port);
    testutil_postgres_dir_value(f->primary, "password", f->password, sizeof f->password);
    snprintf(hosts, sizeof hosts, "127.0.0.1,127.0.0.1");
    snprintf(ports, sizeof ports, "%s,%s", f->standby_port, f->primary_port);
    f->env = testutil_env_new();
    testutil_env_set(f->env, "PERSISTENCE_MODULE", "eventsourcing.postgres");
    testutil_env_set(f->env, "POSTGRES_HOST", hosts);
    testutil_env_set(f->env, "POSTGRES_PORT", ports);
    testutil_env_set(f->env, "POSTGRES_DBNAME", "esg_test");
    testutil_env_set(f->env, "POSTGRES_USER", "esg_test");
    testutil_env_set(f->env, "POSTGRES_PASSWORD", f->password);
    testutil_env_set(f->env, "POSTGRES_CONNECT_TIMEOUT", "2");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    testutil_postgres_script(script, "stop", f->standby, "");
    testutil_postgres_script(script, "stop", f->primary, "");
    esg_env_free(f->env);
    testutil_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Calls create_new_order until it succeeds (within RECOVERY_MS): every failure meanwhile must
 * be ESG_EUNAVAILABLE, what a client retries. Returns the failures seen. */
static int create_until_it_works(esg_application *orders, esg_value **created)
{
    int n_failures = 0;
    for (int64_t waited = 0;; waited += 100) {
        esg_error err = {0};
        esg_status rc = esg_application_call(orders, "create_new_order", NULL, NULL, created, &err);
        if (rc == ESG_OK)
            return n_failures;
        if (rc != ESG_EUNAVAILABLE)
            fail_msg("during the failover: %s: %s (expected ESG_EUNAVAILABLE)", esg_status_name(rc),
                     err.message);
        if (waited > RECOVERY_MS)
            fail_msg("no recovery in %d ms: %s", RECOVERY_MS, err.message);
        n_failures++;
        usleep(100 * 1000);
    }
}

static void test_failover_loses_nothing_acknowledged(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    char value[64];
    /* What the test relies on: a standby in recovery, and a primary that waits for it. */
    query_one(f, f->standby_port, "SELECT pg_is_in_recovery()", value, sizeof value);
    assert_string_equal(value, "t");
    query_one(f, f->primary_port, "SHOW synchronous_standby_names", value, sizeof value);
    assert_string_equal(value, "*");
    esg_application *orders = NULL;
    assert_esg_ok(esg_application_new(&esg_example_orders, f->env, &orders, &err), &err);
    esg_value *acknowledged[N_ORDERS] = {0};
    for (int i = 0; i < N_ORDERS; i++)
        assert_esg_ok(
            esg_application_call(orders, "create_new_order", NULL, NULL, &acknowledged[i], &err),
            &err);

    testutil_postgres_script(script, "crash", f->primary, "");
    esg_value *during = NULL;
    esg_status rc = esg_application_call(orders, "create_new_order", NULL, NULL, &during, &err);
    assert_int_equal(rc, ESG_EUNAVAILABLE);
    assert_null(during);

    testutil_postgres_script(script, "promote", f->standby, "");
    query_one(f, f->standby_port, "SELECT pg_is_in_recovery()", value, sizeof value);
    assert_string_equal(value, "f");
    esg_value *after = NULL;
    int n_failures = create_until_it_works(orders, &after);
    print_message("after the promotion: %d calls failed as unavailable before one worked\n",
                  n_failures);

    for (int i = 0; i < N_ORDERS; i++) {
        esg_value *args = esg_value_array(), *order = NULL;
        assert_int_equal(esg_array_append(args, esg_value_copy(acknowledged[i])), ESG_OK);
        assert_esg_ok(esg_application_call(orders, "get_order", args, NULL, &order, &err), &err);
        esg_value_free(order);
        esg_value_free(args);
        esg_value_free(acknowledged[i]);
    }
    /* The log is gapless across the failover: the acknowledged orders and the one after. */
    esg_notification_list log = {0};
    assert_esg_ok(esg_application_select_notifications(orders, 1, 1000, 0, NULL, 0, &log, &err),
                  &err);
    assert_int_equal(log.n_items, N_ORDERS + 1);
    for (size_t i = 0; i < log.n_items; i++)
        assert_int_equal(log.items[i].id, (int64_t)i + 1);
    esg_notification_list_clear(&log);
    esg_value_free(after);
    esg_application_free(orders);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s scripts/postgres-test-server.sh\n", argv[0]);
        return 2;
    }
    script = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_loses_nothing_acknowledged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
