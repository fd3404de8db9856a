/* Tests of environments and the prefixed lookup of the Python library. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdlib.h>
#include <string.h>

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

void test_near_misses_of_settings_are_found(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = testutil_env_new();
    testutil_env_set(env, "PERSISTENCE_MODUL", "eventsourcing.sqlite"); /* one letter short */
    testutil_env_set(env, "ORDERS_SQLITE_DBNAM", "orders.db");          /* an application's */
    testutil_env_set(env, "ORDERS_SQLITE_DBNAME", "orders.db");         /* right */
    testutil_env_set(env, "POSTGRES_PORT", "5432");                     /* right */
    testutil_env_set(env, "PATH", "/usr/bin");                          /* nothing near */
    testutil_env_set(env, "SQLITE_DBNAMES", "x");                       /* one letter more */
    const char *const apps[] = {"Orders", "Payments"};
    char **texts = NULL;
    assert_esg_ok(esg_env_near_misses(env, apps, 2, &texts, &err), &err);
    assert_non_null(texts);
    const char *expected[] = {
        "PERSISTENCE_MODUL is not a setting: did you mean PERSISTENCE_MODULE?",
        "ORDERS_SQLITE_DBNAM is not a setting: did you mean ORDERS_SQLITE_DBNAME?",
        "SQLITE_DBNAMES is not a setting: did you mean SQLITE_DBNAME?",
    };
    size_t n = 0;
    while (texts[n] != NULL)
        n++;
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) { /* in no particular order, as the environment lists them */
        bool is_found = false;
        for (size_t k = 0; k < n; k++)
            is_found = is_found || strcmp(texts[k], expected[i]) == 0;
        if (!is_found)
            fail_msg("no '%s'", expected[i]);
    }
    esg_env_free_texts(texts);
    /* Nothing near: no array at all. */
    esg_env *clean = testutil_env_new();
    testutil_env_set(clean, "PERSISTENCE_MODULE", "eventsourcing.popo");
    assert_esg_ok(esg_env_near_misses(clean, apps, 2, &texts, &err), &err);
    assert_null(texts);
    esg_env_free(clean);
    esg_env_free(env);
}
