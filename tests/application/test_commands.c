/* Commands run once per idempotency key (esg_application_call_json_idempotent), on the backend
 * named by the program's one argument: "popo", "sqlite" or "postgres" (the server the POSTGRES_*
 * variables name). A repeat is answered with the first reply and records nothing; a key is for
 * one request; queries leave no record; keys expire; undeclared methods' saves are recorded with
 * the key; repeats racing each other run the command once. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "pg_testutil.h"
#include "sqlite_testutil.h"

typedef enum backend_kind { BACKEND_POPO, BACKEND_SQLITE, BACKEND_POSTGRES } backend_kind;
static int backend; /* a backend_kind */

/* open_both(owner): an undeclared method that opens two accounts through the declared
 * open_account, saving twice: [id, id]. */
static esg_status open_both(esg_application *app, esg_value *const *params, esg_value **result,
                            esg_error *err)
{
    esg_value *args = esg_value_array(), *list = esg_value_array();
    esg_status rc = args != NULL && list != NULL ? ESG_OK : ESG_ENOMEM;
    if (rc == ESG_OK)
        rc = esg_array_append(args, esg_value_copy(params[0]));
    for (int i = 0; i < 2 && rc == ESG_OK; i++) {
        esg_value *id = NULL;
        rc = esg_application_call(app, "open_account", args, NULL, &id, err);
        if (rc == ESG_OK)
            rc = esg_array_append(list, id);
    }
    esg_value_free(args);
    if (rc == ESG_OK) {
        *result = list;
        list = NULL;
    }
    esg_value_free(list);
    return rc;
}

static const esg_method bank_methods[] = {
    {"open_both", (const char *const[]){"owner"}, 1, 1, open_both},
    {"count", NULL, 0, 0, testutil_count_method},
};

static const esg_application_type bank = ESG_APPLICATION(
    "Bank", "tests:Bank", .aggregate_types = ESG_AGGREGATES(&accounts_account),
    .methods = bank_methods, .n_methods = 2,
    .method_defs = ESG_METHODS(ESG_METHOD(ACCOUNTS_OPEN_ACCOUNT, accounts_open_account),
                               ESG_METHOD(ACCOUNTS_DEPOSIT, accounts_deposit),
                               ESG_METHOD(ACCOUNTS_GET_ACCOUNT, accounts_get_account)));

/* ---- Fixtures ---------------------------------------------------------------------------- */

typedef struct fixture {
    char *temp_dir;
    esg_env *env;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->env = testutil_env_new();
    if (backend == BACKEND_SQLITE) {
        f->temp_dir = testutil_make_temp_dir();
        const char *names[] = {"BANK"};
        testutil_env_use_sqlite_dir(f->env, f->temp_dir, names, 1);
    } else if (backend == BACKEND_POSTGRES) {
        testutil_env_use_postgres(f->env);
        testutil_postgres_exec("DROP TABLE IF EXISTS bank_events, bank_tracking, bank_replies");
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (backend == BACKEND_POSTGRES)
        testutil_postgres_exec("DROP TABLE IF EXISTS bank_events, bank_tracking, bank_replies");
    esg_env_free(f->env);
    testutil_discard_temp_dir(f->temp_dir);
    free(f);
    return 0;
}

static esg_application *open_bank(const fixture *f)
{
    esg_application *app = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_application_new(&bank, f->env, &app, &err), &err);
    return app;
}

/* A call with key (NULL for none): its reply, which the caller frees; *is_repeat says whether
 * it was a recorded one. */
static char *call_with_key(esg_application *app, const char *key, const char *method,
                           const char *args, bool *is_repeat)
{
    esg_error err = {0};
    char *reply = NULL;
    size_t len = 0;
    assert_esg_ok(esg_application_call_json_idempotent(app, key, method, args, strlen(args), "{}",
                                                       2, &reply, &len, is_repeat, &err),
                  &err);
    assert_int_equal(strlen(reply), len);
    return reply;
}

/* A call with key that fails with status, its message holding fragment, and no reply. */
static void assert_call_fails(esg_application *app, const char *key, const char *method,
                              const char *args, esg_status status, const char *fragment)
{
    esg_error err = {0};
    char *reply = NULL;
    size_t len = 0;
    bool is_repeat = true;
    assert_int_equal(esg_application_call_json_idempotent(app, key, method, args, strlen(args),
                                                          "{}", 2, &reply, &len, &is_repeat, &err),
                     status);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("'%s' lacks '%s'", err.message, fragment);
    assert_null(reply);
    assert_false(is_repeat);
}

/* ---- Tests ------------------------------------------------------------------------------- */

static void test_a_repeat_gets_the_first_reply(void **state)
{
    fixture *f = *state;
    esg_application *app = open_bank(f);
    assert_true(esg_application_idempotency_key_ttl(app) == 3600.0);
    bool is_repeat = true;
    char *first = call_with_key(app, "k1", "open_account", "[\"Ann\"]", &is_repeat);
    assert_false(is_repeat);
    assert_int_equal(testutil_max_notification_id(app), 1);
    char *again = call_with_key(app, "k1", "open_account", "[\"Ann\"]", &is_repeat);
    assert_true(is_repeat);
    assert_string_equal(again, first); /* the same new account's id */
    assert_int_equal(testutil_max_notification_id(app), 1);
    esg_free(again);

    /* Another key, or none, is another command. */
    char *other = call_with_key(app, "k2", "open_account", "[\"Ann\"]", &is_repeat);
    assert_false(is_repeat);
    assert_string_not_equal(other, first);
    char *plain = call_with_key(app, NULL, "open_account", "[\"Ann\"]", &is_repeat);
    assert_false(is_repeat);
    assert_int_equal(testutil_max_notification_id(app), 3);

    /* A deposit repeated is not deposited twice. */
    char args[96];
    snprintf(args, sizeof args, "[%s, 5]", first);
    char *balance = call_with_key(app, "d1", "deposit", args, &is_repeat);
    assert_string_equal(balance, "5");
    esg_free(balance);
    balance = call_with_key(app, "d1", "deposit", args, &is_repeat);
    assert_true(is_repeat);
    assert_string_equal(balance, "5");
    esg_free(balance);
    balance = call_with_key(app, "d2", "deposit", args, &is_repeat);
    assert_string_equal(balance, "10");
    esg_free(balance);

    /* The same key with another request is refused, saying why; so are bad keys. */
    assert_call_fails(app, "k1", "open_account", "[\"Bob\"]", ESG_EINVAL, "another command");
    assert_call_fails(app, "k1", "deposit", args, ESG_EINVAL, "another command");
    char long_key[ESG_IDEMPOTENCY_KEY_MAX + 2];
    memset(long_key, 'x', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_call_fails(app, long_key, "count", "[]", ESG_EINVAL, "1 to 255 bytes");
    assert_call_fails(app, "", "count", "[]", ESG_EINVAL, "1 to 255 bytes");

    /* A failed command records nothing: its repeat runs (and fails) again. */
    char missing[96];
    snprintf(missing, sizeof missing, "[%s, 1]", first);
    char *digit = strrchr(missing, '"') - 1; /* the account's id's last hex digit, changed */
    *digit = *digit == '0' ? '1' : '0';
    assert_call_fails(app, "f1", "deposit", missing, ESG_ENOTFOUND, "not found");
    assert_call_fails(app, "f1", "deposit", missing, ESG_ENOTFOUND, "not found");

    /* Recorded durably: a new instance of the application answers the repeat. */
    if (backend != BACKEND_POPO) {
        esg_application_free(app);
        app = open_bank(f);
        again = call_with_key(app, "k1", "open_account", "[\"Ann\"]", &is_repeat);
        assert_true(is_repeat);
        assert_string_equal(again, first);
        esg_free(again);
    }
    esg_free(first);
    esg_free(other);
    esg_free(plain);
    esg_application_free(app);
}

static void test_queries_leave_no_record(void **state)
{
    fixture *f = *state;
    esg_application *app = open_bank(f);
    bool is_repeat = true;
    char *count = call_with_key(app, "q", "count", "[]", &is_repeat);
    assert_string_equal(count, "0");
    esg_free(count);
    esg_free(call_with_key(app, NULL, "open_account", "[\"Ann\"]", &is_repeat));
    count = call_with_key(app, "q", "count", "[]", &is_repeat);
    assert_false(is_repeat); /* run again, not answered from a record */
    assert_string_equal(count, "1");
    esg_free(count);
    esg_application_free(app);
}

/* An undeclared method's two saves are one write with the key: both accounts or neither, and a
 * repeat opens none. */
static void test_undeclared_methods_save_with_the_key(void **state)
{
    fixture *f = *state;
    esg_application *app = open_bank(f);
    bool is_repeat = true;
    char *first = call_with_key(app, "both", "open_both", "[\"Cy\"]", &is_repeat);
    assert_false(is_repeat);
    assert_int_equal(testutil_max_notification_id(app), 2);
    esg_error err = {0};
    esg_notification_list list = {0};
    assert_esg_ok(esg_application_select_notifications(app, 1, 10, 0, NULL, 0, &list, &err), &err);
    assert_int_equal(list.n_items, 2);
    esg_notification_list_clear(&list);
    char *again = call_with_key(app, "both", "open_both", "[\"Cy\"]", &is_repeat);
    assert_true(is_repeat);
    assert_string_equal(again, first);
    assert_int_equal(testutil_max_notification_id(app), 2);
    /* Without a key the saves are the method's own, as ever. */
    esg_free(call_with_key(app, NULL, "open_both", "[\"Cy\"]", &is_repeat));
    assert_int_equal(testutil_max_notification_id(app), 4);
    esg_free(first);
    esg_free(again);
    esg_application_free(app);
}

static void test_keys_expire_or_are_off(void **state)
{
    fixture *f = *state;
    testutil_env_set(f->env, "BANK_IDEMPOTENCY_KEY_TTL", "0.3");
    esg_application *app = open_bank(f);
    bool is_repeat = true;
    char *first = call_with_key(app, "e", "open_account", "[\"Di\"]", &is_repeat);
    char *again = call_with_key(app, "e", "open_account", "[\"Di\"]", &is_repeat);
    assert_true(is_repeat);
    esg_free(again);
    esg_clock_sleep_ms(400);
    /* Expired: a new command under the old key (its record replaced), and the sweep, due at
     * most every TTL, deletes what expired meanwhile. */
    again = call_with_key(app, "e", "open_account", "[\"Di\"]", &is_repeat);
    assert_false(is_repeat);
    assert_string_not_equal(again, first);
    assert_int_equal(testutil_max_notification_id(app), 2);
    esg_free(again);
    again = call_with_key(app, "e", "open_account", "[\"Di\"]", &is_repeat);
    assert_true(is_repeat);
    esg_free(again);
    esg_free(first);
    esg_application_free(app);

    testutil_env_set(f->env, "BANK_IDEMPOTENCY_KEY_TTL", "0");
    app = open_bank(f);
    assert_true(esg_application_idempotency_key_ttl(app) == 0.0);
    int64_t before = testutil_max_notification_id(app);
    esg_free(call_with_key(app, "off", "open_account", "[\"Di\"]", &is_repeat));
    esg_free(call_with_key(app, "off", "open_account", "[\"Di\"]", &is_repeat));
    assert_false(is_repeat);
    assert_int_equal(testutil_max_notification_id(app), before + 2);
    esg_application_free(app);

    esg_error err = {0};
    esg_application *bad = NULL;
    const char *bad_values[] = {"soon", "-1", "40000000"};
    for (size_t i = 0; i < 3; i++) {
        testutil_env_set(f->env, "BANK_IDEMPOTENCY_KEY_TTL", bad_values[i]);
        assert_int_equal(esg_application_new(&bank, f->env, &bad, &err), ESG_ECONFIG);
        assert_non_null(strstr(err.message, "IDEMPOTENCY_KEY_TTL"));
        assert_null(bad);
    }
}

/* A database without the table of command records (one Python made, say) and CREATE_TABLE off:
 * keys are off by default, with a warning, and a setting that asks for them is refused; with
 * CREATE_TABLE on, the table is made and keys are kept. */
static void test_keys_need_their_table(void **state)
{
    fixture *f = *state;
    if (backend == BACKEND_POPO)
        skip();                         /* (in memory there is no table to miss) */
    esg_application_free(open_bank(f)); /* the tables, then the one of command records dropped */
    if (backend == BACKEND_POSTGRES) {
        testutil_postgres_exec("DROP TABLE bank_replies");
    } else {
        sqlite3 *db = NULL;
        char path[1100];
        snprintf(path, sizeof path, "%s/BANK.db", f->temp_dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "DROP TABLE esg_command_replies", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    testutil_env_set(f->env, "CREATE_TABLE", "n");
    esg_application *app = open_bank(f);
    assert_true(esg_application_idempotency_key_ttl(app) == 0.0);
    bool is_repeat = true;
    esg_free(call_with_key(app, "k", "open_account", "[\"Flo\"]", &is_repeat));
    esg_free(call_with_key(app, "k", "open_account", "[\"Flo\"]", &is_repeat));
    assert_false(is_repeat);
    assert_int_equal(testutil_max_notification_id(app), 2);
    esg_application_free(app);

    testutil_env_set(f->env, "BANK_IDEMPOTENCY_KEY_TTL", "60");
    esg_error err = {0};
    app = NULL;
    assert_int_equal(esg_application_new(&bank, f->env, &app, &err), ESG_ECONFIG);
    assert_null(app);
    if (strstr(err.message, "no table for idempotency keys") == NULL ||
        strstr(err.message, "BANK_IDEMPOTENCY_KEY_TTL=0") == NULL)
        fail_msg("the refusal does not say why and what to do: %s", err.message);

    testutil_env_set(f->env, "CREATE_TABLE", "y");
    app = open_bank(f);
    assert_true(esg_application_idempotency_key_ttl(app) == 60.0);
    esg_free(call_with_key(app, "k2", "open_account", "[\"Flo\"]", &is_repeat));
    esg_free(call_with_key(app, "k2", "open_account", "[\"Flo\"]", &is_repeat));
    assert_true(is_repeat);
    esg_application_free(app);
}

#define N_REPEATS 6

typedef struct repeater {
    esg_application *app;
    char *reply;
    bool is_repeat;
    esg_status status;
    esg_error err;
} repeater;

static void *repeat(void *arg)
{
    repeater *r = arg;
    size_t len = 0;
    r->status =
        esg_application_call_json_idempotent(r->app, "race", "open_account", "[\"Eve\"]", 7, "{}",
                                             2, &r->reply, &len, &r->is_repeat, &r->err);
    return NULL;
}

/* Repeats arriving together (a client that gave up waiting and sent again): one runs, and every
 * one of them is answered with its reply. */
static void test_racing_repeats_run_once(void **state)
{
    fixture *f = *state;
    esg_application *app = open_bank(f);
    repeater repeaters[N_REPEATS];
    for (int i = 0; i < N_REPEATS; i++)
        repeaters[i] = (repeater){.app = app};
    testutil_run_together(N_REPEATS, repeat, repeaters, sizeof repeaters[0]);
    int n_first = 0;
    for (int i = 0; i < N_REPEATS; i++) {
        assert_esg_ok(repeaters[i].status, &repeaters[i].err);
        n_first += !repeaters[i].is_repeat;
        assert_string_equal(repeaters[i].reply, repeaters[0].reply);
    }
    assert_int_equal(n_first, 1);
    assert_int_equal(testutil_max_notification_id(app), 1);
    for (int i = 0; i < N_REPEATS; i++)
        esg_free(repeaters[i].reply);
    esg_application_free(app);
}

int main(int argc, char **argv)
{
    static const char *const backend_names[] = {"popo", "sqlite", "postgres"}; /* backend_kind */
#define COMMANDS_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        COMMANDS_TEST(test_a_repeat_gets_the_first_reply),
        COMMANDS_TEST(test_queries_leave_no_record),
        COMMANDS_TEST(test_undeclared_methods_save_with_the_key),
        COMMANDS_TEST(test_keys_expire_or_are_off),
        COMMANDS_TEST(test_keys_need_their_table),
        COMMANDS_TEST(test_racing_repeats_run_once),
    };
#undef COMMANDS_TEST
    return TESTUTIL_RUN_PER_BACKEND(argc, argv, "commands", backend_names, &backend, tests);
}
