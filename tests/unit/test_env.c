/* Tests of environments and the prefixed lookup of the Python library. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>

void test_set_get_replace_unset(void **state)
{
    (void)state;
    esg_error err;
    esg_env *env = esg_env_new();
    assert_non_null(env);
    assert_null(esg_env_get(env, "A"));
    assert_esg_ok(esg_env_set(env, "A", "1", &err), &err);
    assert_string_equal(esg_env_get(env, "A"), "1");
    assert_esg_ok(esg_env_set(env, "A", "2", &err), &err);
    assert_string_equal(esg_env_get(env, "A"), "2");
    esg_env_unset(env, "A");
    assert_null(esg_env_get(env, "A"));
    esg_env_free(env);
}

void test_lookup_prefers_the_application_prefix(void **state)
{
    (void)state;
    esg_error err;
    esg_env *env = esg_env_new();
    assert_esg_ok(esg_env_set(env, "SQLITE_DBNAME", "plain.db", &err), &err);
    assert_string_equal(esg_env_lookup(env, "Orders", "SQLITE_DBNAME"), "plain.db");
    assert_esg_ok(esg_env_set(env, "ORDERS_SQLITE_DBNAME", "orders.db", &err), &err);
    assert_string_equal(esg_env_lookup(env, "Orders", "SQLITE_DBNAME"), "orders.db");
    assert_string_equal(esg_env_lookup(env, "Payments", "SQLITE_DBNAME"), "plain.db");
    assert_string_equal(esg_env_lookup(env, NULL, "SQLITE_DBNAME"), "plain.db");
    /* Set but empty still wins, as in Python (the caller decides what empty means). */
    assert_esg_ok(esg_env_set(env, "ORDERS_SQLITE_DBNAME", "", &err), &err);
    assert_string_equal(esg_env_lookup(env, "Orders", "SQLITE_DBNAME"), "");
    assert_null(esg_env_lookup(env, "Orders", "NOPE"));
    esg_env_free(env);
}

void test_from_process_and_copy(void **state)
{
    (void)state;
    setenv("ESG_TEST_ENV_VALUE", "a=b", 1);
    esg_env *env = esg_env_from_process();
    assert_non_null(env);
    assert_string_equal(esg_env_get(env, "ESG_TEST_ENV_VALUE"), "a=b");
    esg_env *copy = esg_env_copy(env);
    esg_env_free(env);
    assert_string_equal(esg_env_get(copy, "ESG_TEST_ENV_VALUE"), "a=b");
    esg_env_free(copy);
    esg_env_free(NULL);
}
