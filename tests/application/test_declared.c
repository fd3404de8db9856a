/* Tests of the declarative layer: method signatures (parsed, bound, defaulted, checked), the
 * unit of work (one write, nothing written after a failure, one aggregate per id), declared
 * events (typed mutators, class versions and upcasts in the stored form), state from fields
 * (snapshots, the cache), and declared policies in a system. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "esg/system.h"

/* ---- The accounts (tests/support/accounts.c), and a trivial upcast for refusals -------- */

static esg_status unchanged(esg_value *state, esg_error *err)
{
    (void)state;
    (void)err;
    return ESG_OK;
}

/* ---- Ledger entries: what Ledger (a declared policy, below) makes of each deposit -------- */

typedef struct entry {
    esg_uuid account_id;
    int64_t amount;
} entry;

ESG_MUTATOR(on_entry, entry, entry)
{
    *self = *event;
}

static const esg_event_def entry_made =
    ESG_EVENT("ledger:Entry.Made", entry, on_entry, ESG_FIELD(entry, account_id, ESG_UUID),
              ESG_FIELD(entry, amount, ESG_INT));
static const esg_aggregate_type entry_type = {
    .topic = "ledger:Entry",
    .state = ESG_STRUCT(entry, ESG_FIELD(entry, account_id, ESG_UUID),
                        ESG_FIELD(entry, amount, ESG_INT)),
    .events = ESG_EVENTS(&entry_made),
};

/* ---- Methods ---------------------------------------------------------------------------- */

/* transfer(source, target, amount): two aggregates in one write, or neither. */
static esg_status transfer(esg_work *work)
{
    const account *from = esg_work_get(work, &accounts_account, esg_arg_uuid(work, 0));
    const account *to = esg_work_get(work, &accounts_account, esg_arg_uuid(work, 1));
    int64_t amount = esg_arg_int(work, 2);
    esg_work_trigger(work, from, &accounts_deposited, &(account_deposited){-amount, "EUR"});
    esg_work_trigger(work, to, &accounts_deposited, &(account_deposited){amount, "EUR"});
    if (from->balance < 0)
        return esg_work_fail(work, ESG_EINVAL, "transfer(): not enough money");
    return esg_return_none(work);
}

/* make_entry(account_id, amount): an aggregate of another type in the same application. */
static esg_status make_entry(esg_work *work)
{
    const entry *e = esg_work_create(work, &entry_type, NULL, &entry_made,
                                     &(entry){*esg_arg_uuid(work, 0), esg_arg_int(work, 1)});
    return esg_return_uuid(work, esg_work_id(work, e));
}

/* echo(value, note: Optional[str] = None, ratio: float = 0.5, flag=True) -> list */
static esg_status echo(esg_work *work)
{
    esg_value *list = esg_value_array();
    esg_array_append(list, esg_value_copy(esg_arg(work, 0)));
    esg_array_append(list, esg_arg_string(work, 1) ? esg_value_string(esg_arg_string(work, 1))
                                                   : esg_value_null());
    esg_array_append(list, esg_value_float(esg_arg_float(work, 2)));
    esg_array_append(list, esg_value_bool(esg_arg_bool(work, 3)));
    return esg_return(work, list);
}

/* The same aggregate for the same id, and esg_work_id of it. */
static esg_status identity(esg_work *work)
{
    const esg_uuid *id = esg_arg_uuid(work, 0);
    const account *once = esg_work_get(work, &accounts_account, id);
    const account *twice = esg_work_get(work, &accounts_account, id);
    return esg_return_bool(work, once == twice && esg_uuid_equal(esg_work_id(work, once), id));
}

static esg_status liar(esg_work *work) /* declares -> int, returns a str */
{
    return esg_return_string(work, "not an int");
}

static esg_status silent_failure(esg_work *work) /* fails without a message */
{
    (void)work;
    return ESG_EIO;
}

static const esg_method legacy_methods[] = {{"count", NULL, 0, 0, testutil_count_method}};

static const esg_application_type bank = ESG_APPLICATION(
    "Bank", "bank:Bank", .aggregate_types = ESG_AGGREGATES(&accounts_account, &entry_type),
    .methods = legacy_methods, .n_methods = 1,
    .method_defs = ESG_METHODS(
        ESG_METHOD(ACCOUNTS_OPEN_ACCOUNT, accounts_open_account),
        ESG_METHOD(ACCOUNTS_DEPOSIT, accounts_deposit),
        ESG_METHOD("transfer(source: UUID, target: UUID, amount: int) -> None", transfer),
        ESG_METHOD(ACCOUNTS_GET_ACCOUNT, accounts_get_account),
        ESG_METHOD("make_entry(account_id: UUID, amount: int) -> UUID", make_entry),
        ESG_METHOD("echo(value, note: Optional[str] = None, ratio: float = 0.5, flag=True) -> list",
                   echo),
        ESG_METHOD("identity(account_id: UUID) -> bool", identity),
        ESG_METHOD("liar() -> int", liar), ESG_METHOD("silent_failure()", silent_failure)));

/* ---- Helpers -------------------------------------------------------------------------------- */

static esg_application *open_bank(const esg_application_type *type, const esg_env *env)
{
    esg_application *app = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_application_new(type, env, &app, &err), &err);
    return app;
}

/* Calls method with args as JSON text; returns the result as JSON (free with esg_free). */
static char *call(esg_application *app, const char *method, const char *args_json)
{
    char *result = NULL;
    size_t len = 0;
    esg_error err = {0};
    if (esg_application_call_json(app, method, args_json, strlen(args_json), NULL, 0, &result, &len,
                                  &err) != ESG_OK)
        fail_msg("%s%s: %s", method, args_json, err.message);
    return result;
}

static void expect_error(esg_application *app, const char *method, const char *args_json,
                         esg_status status, const char *message)
{
    char *result = NULL;
    size_t len = 0;
    esg_error err = {0};
    esg_status rc = esg_application_call_json(app, method, args_json, strlen(args_json), NULL, 0,
                                              &result, &len, &err);
    if (rc != status || strcmp(err.message, message) != 0)
        fail_msg("%s%s: %s '%s', expected %s '%s'", method, args_json, esg_status_name(rc),
                 err.message, esg_status_name(status), message);
    assert_null(result);
}

static char *id_args(const char *id_json, const char *more)
{
    char *args = malloc(strlen(id_json) + strlen(more) + 3);
    assert_non_null(args);
    sprintf(args, "[%s%s]", id_json, more);
    return args;
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_signatures_bind_default_and_check(void **state)
{
    testutil_fixture *f = *state;
    esg_application *app = open_bank(&bank, f->env);
    char *result = call(app, "echo", "[1]");
    assert_string_equal(result, "[1,null,0.5,true]");
    esg_free(result);
    result = NULL;
    size_t len = 0;
    esg_error err = {0};
    assert_esg_ok(esg_application_call_json(app, "echo", "[\"x\"]", 5,
                                            "{\"flag\":false,\"ratio\":2}", 24, &result, &len,
                                            &err),
                  &err);
    assert_string_equal(result, "[\"x\",null,2.0,false]"); /* an int is a float */
    esg_free(result);
    expect_error(app, "echo", "[]", ESG_EINVAL,
                 "echo() missing 1 required positional argument: 'value'");
    expect_error(app, "echo", "[1,2]", ESG_EINVAL, "echo(): note must be a str or None, not int");
    expect_error(app, "echo", "[1,null,\"x\"]", ESG_EINVAL,
                 "echo(): ratio must be a float, not string");
    expect_error(app, "open_account", "[null]", ESG_EINVAL,
                 "open_account(): owner must be a str, not None");
    expect_error(app, "open_account", "[\"a\\u0000b\"]", ESG_EINVAL,
                 "open_account(): owner holds a NUL character");
    expect_error(app, "deposit", "[\"not a uuid\",1]", ESG_EINVAL,
                 "deposit(): account_id must be a UUID, not string");
    expect_error(app, "nope", "[]", ESG_EUNIMPLEMENTED, "Bank has no method 'nope'");
    expect_error(app, "liar", "[]", ESG_EINTERNAL, "liar() returned string, not an int");
    expect_error(app, "silent_failure", "[]", ESG_EIO,
                 "silent_failure() failed (ESG_EIO) without saying why");
    result = call(app, "count", "[]"); /* a lower-level method beside the declared ones */
    assert_string_equal(result, "0");
    esg_free(result);
    esg_application_free(app);
}

static void test_bad_declarations_are_refused_at_start(void **state)
{
    testutil_fixture *f = *state;
    const struct {
        const char *signature;
        const char *message;
    } cases[] = {
        {"f(", "signature 'f(': a parameter name expected at column 3"},
        {"f(x: money)",
         "signature 'f(x: money)': an unknown type (a custom one must be a registered "
         "transcoding) at column 6"},
        {"f(x=1, y)",
         "signature 'f(x=1, y)': a parameter without a default after one with a default at "
         "column 9"},
        {"f(x: int = 'a')", "signature 'f(x: int = 'a')': a default that is not of its "
                            "parameter's type at column 15"},
        {"f(x, x)", "signature 'f(x, x)': a parameter named twice at column 7"},
        {"f() -> int extra", "signature 'f() -> int extra': nothing expected at column 12"},
        {"f(x: Optional[int)", "signature 'f(x: Optional[int)': ']' expected at column 18"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const esg_application_type type = ESG_APPLICATION(
            "Bad", "tests:Bad", .method_defs = ESG_METHODS(ESG_METHOD(cases[i].signature, liar)));
        esg_application *app = NULL;
        esg_error err = {0};
        assert_int_equal(esg_application_new(&type, f->env, &app, &err), ESG_ECONFIG);
        assert_null(app);
        if (strcmp(err.message, cases[i].message) != 0)
            fail_msg("'%s', expected '%s'", err.message, cases[i].message);
    }
    const esg_application_type twice = ESG_APPLICATION(
        "Twice", "tests:Twice",
        .method_defs = ESG_METHODS(ESG_METHOD("f()", liar), ESG_METHOD("f(x)", liar)));
    esg_application *app = NULL;
    esg_error err = {0};
    assert_int_equal(esg_application_new(&twice, f->env, &app, &err), ESG_ECONFIG);
    assert_string_equal(err.message, "Twice has two methods named f");
    /* An upcast missing for a class version: the aggregate type is refused. */
    const esg_event_def unversioned = {
        .topic = "tests:Thing.Made", .class_version = 3, .upcasts = ESG_UPCASTS(unchanged)};
    const esg_aggregate_type thing = {.topic = "tests:Thing", .events = ESG_EVENTS(&unversioned)};
    const esg_application_type things =
        ESG_APPLICATION("Things", "tests:Things", .aggregate_types = ESG_AGGREGATES(&thing));
    assert_int_equal(esg_application_new(&things, f->env, &app, &err), ESG_ECONFIG);
    assert_string_equal(err.message, "Things: tests:Thing.Made is at class_version 3 but has no "
                                     "upcast from version 2");
}

static void test_the_work_writes_once_or_not_at_all(void **state)
{
    testutil_fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/bank.db", f->temp_dir);
    testutil_env_use_sqlite(f->env, "Bank", path);
    esg_application *app = open_bank(&bank, f->env);
    char *ada = call(app, "open_account", "[\"ada\"]");
    char *bob = call(app, "open_account", "[\"bob\"]");
    char *args = id_args(ada, ",10");
    esg_free(call(app, "deposit", args));
    free(args);
    assert_int_equal(testutil_max_notification_id(app), 3);

    /* Both accounts change in one write: notifications 4 and 5, in the order taken. */
    char transfer_args[300];
    snprintf(transfer_args, sizeof transfer_args, "[%s,%s,4]", ada, bob);
    esg_free(call(app, "transfer", transfer_args));
    assert_int_equal(testutil_max_notification_id(app), 5);
    /* A transfer that fails after triggering both: nothing is recorded. */
    snprintf(transfer_args, sizeof transfer_args, "[%s,%s,100]", ada, bob);
    expect_error(app, "transfer", transfer_args, ESG_EINVAL, "transfer(): not enough money");
    assert_int_equal(testutil_max_notification_id(app), 5);

    args = id_args(ada, "");
    char *got = call(app, "get_account", args);
    esg_value *dict = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_json_decode(got, strlen(got), &dict, &err), &err);
    const char *keys[] = {"id",        "owner",      "balance",    "currency",
                          "is_closed", "created_on", "modified_on"};
    assert_int_equal(esg_object_len(dict), 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(esg_object_key_at(dict, i), keys[i]);
    assert_int_equal(esg_value_as_int(esg_object_get(dict, "balance")), 6);
    assert_string_equal(esg_value_as_string(esg_object_get(dict, "owner"), NULL), "ada");
    esg_value_free(dict);
    esg_free(got);
    char *same = call(app, "identity", args);
    assert_string_equal(same, "true");
    esg_free(same);
    free(args);

    /* A missing aggregate: the work reads on through a state of zeroes and fails cleanly. */
    expect_error(app, "deposit",
                 "[{\"_type_\":\"uuid_hex\",\"_data_\":\"00000000000000000000000000000001\"},1]",
                 ESG_ENOTFOUND, "aggregate 00000000-0000-0000-0000-000000000001 not found in Bank");
    /* One of another type: not found either. */
    args = id_args(ada, ",1");
    char *entry_id = call(app, "make_entry", args);
    free(args);
    args = id_args(entry_id, ",1");
    char *message = malloc(200);
    assert_non_null(message);
    esg_value *entry_value = testutil_json_value(entry_id);
    char entry_text[ESG_UUID_STR_SIZE];
    esg_uuid_str(esg_value_as_uuid(entry_value), entry_text);
    snprintf(message, 200, "%s is not a versioned_accounts:Account", entry_text);
    expect_error(app, "deposit", args, ESG_ENOTFOUND, message);
    esg_value_free(entry_value);
    free(message);
    free(args);
    esg_free(entry_id);
    assert_int_equal(testutil_max_notification_id(app), 6); /* the entry, and nothing more */
    esg_free(ada);
    esg_free(bob);
    esg_application_free(app);
}

static void test_versions_are_stored_and_upcast(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_aggregate *a = NULL;
    /* Version 2 is stored with "class_version" last. */
    assert_esg_ok(esg_aggregate_create(&accounts_account, accounts_opened.topic, NULL,
                                       testutil_json_value("{\"owner\":\"ada\"}"), &a, &err),
                  &err);
    assert_esg_ok(esg_aggregate_trigger(a, accounts_deposited.topic,
                                        testutil_json_value("{\"amount\":3,\"currency\":\"USD\"}"),
                                        &err),
                  &err);
    esg_stored_event stored = {0};
    assert_esg_ok(esg_event_to_stored(esg_aggregate_pending(a)[1], &stored, &err), &err);
    assert_non_null(strstr((const char *)stored.state,
                           ",\"amount\":3,\"currency\":\"USD\",\"class_version\":2}"));
    esg_stored_event_clear(&stored);
    assert_int_equal(((const account *)esg_aggregate_state_const(a))->balance, 3);

    /* A recorded version 1 event (no class_version) is upcast before it is applied; a version 2
     * one is not. */
    esg_event *events[3] = {NULL};
    const esg_uuid *id = esg_aggregate_id(a);
    assert_esg_ok(
        esg_event_new(id, 1, NULL, accounts_opened.topic,
                      testutil_json_value("{\"originator_topic\":\"versioned_accounts:Account\","
                                          "\"owner\":\"bob\"}"),
                      &events[0], &err),
        &err);
    assert_esg_ok(esg_event_new(id, 2, NULL, accounts_deposited.topic,
                                testutil_json_value("{\"amount\":5}"), &events[1], &err),
                  &err);
    assert_esg_ok(esg_event_new(id, 3, NULL, accounts_deposited.topic,
                                testutil_json_value(
                                    "{\"amount\":1,\"currency\":\"GBP\",\"class_version\":2}"),
                                &events[2], &err),
                  &err);
    accounts_n_upcasts = 0;
    esg_aggregate *replayed = NULL;
    assert_esg_ok(esg_aggregate_replay(&accounts_account, events, 3, &replayed, &err), &err);
    assert_int_equal(accounts_n_upcasts, 1);
    const account *state_now = esg_aggregate_state_const(replayed);
    assert_int_equal(state_now->balance, 6);
    assert_string_equal(state_now->currency, "GBP");
    assert_null(esg_object_get(events[1]->attributes, "class_version"));
    assert_string_equal(
        esg_value_as_string(esg_object_get(events[1]->attributes, "currency"), NULL), "EUR");
    /* A mutator that fails says why. */
    esg_aggregate *refused = NULL;
    assert_esg_ok(esg_aggregate_replay(&accounts_account, events, 1, &refused, &err), &err);
    assert_int_equal(
        esg_aggregate_trigger(refused, accounts_deposited.topic,
                              testutil_json_value("{\"amount\":1,\"currency\":\"XXX\"}"), &err),
        ESG_EINVAL);
    assert_string_equal(err.message, "no such currency: XXX");
    for (size_t i = 0; i < 3; i++)
        esg_event_free(events[i]);
    esg_aggregate_free(refused);
    esg_aggregate_free(replayed);
    esg_aggregate_free(a);
}

static void test_state_fields_give_snapshots_and_the_cache(void **state)
{
    testutil_fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/bank.db", f->temp_dir);
    testutil_env_use_sqlite(f->env, "Bank", path);
    testutil_env_set(f->env, "IS_SNAPSHOTTING_ENABLED", "y");
    testutil_env_set(f->env, "AGGREGATE_CACHE_MAXSIZE", "10");
    esg_application *app = open_bank(&bank, f->env);
    char *ada = call(app, "open_account", "[\"ada\"]");
    char *args = id_args(ada, ",7,\"USD\"");
    esg_free(call(app, "deposit", args));
    free(args);
    esg_value *id = testutil_json_value(ada);
    esg_error err = {0};
    assert_esg_ok(esg_application_take_snapshot(app, esg_value_as_uuid(id), 0, &err), &err);
    esg_application_free(app);

    /* Another application object (no cache yet) reads the snapshot. */
    app = open_bank(&bank, f->env);
    esg_aggregate *a = NULL;
    assert_esg_ok(esg_application_get(app, esg_value_as_uuid(id), 0, &a, &err), &err);
    const account *s = esg_aggregate_state_const(a);
    assert_string_equal(s->owner, "ada");
    assert_int_equal(s->balance, 7);
    assert_string_equal(s->currency, "USD");
    esg_aggregate_free(a);
    args = id_args(ada, ",1");
    char *balance = call(app, "deposit", args);
    assert_string_equal(balance, "8");
    esg_free(balance);
    balance = call(app, "deposit", args); /* from the cache, fast-forwarded */
    assert_string_equal(balance, "9");
    esg_free(balance);
    free(args);
    esg_value_free(id);
    esg_free(ada);
    esg_application_free(app);
}

static esg_status ledger_policy(esg_work *work, const esg_event *event)
{
    const account_deposited *d = esg_work_event(work, event, &accounts_deposited);
    if (d != NULL)
        esg_work_create(work, &entry_type, NULL, &entry_made,
                        &(entry){event->originator_id, d->amount});
    return esg_work_status(work);
}

static const esg_application_type ledger =
    ESG_APPLICATION("Ledger", "ledger:Ledger", .aggregate_types = ESG_AGGREGATES(&entry_type),
                    .process = ledger_policy);
static const esg_system_def bank_system = ESG_SYSTEM("tests:bank", ESG_PIPE(&bank, &ledger));

static void test_declared_policies_follow(void **state)
{
    testutil_fixture *f = *state;
    esg_local_runner *runner = NULL;
    esg_error err = {0};
    assert_esg_ok(esg_local_runner_start(&bank_system, f->env, &runner, &err), &err);
    esg_application *app = esg_local_runner_get(runner, "Bank");
    char *ada = call(app, "open_account", "[\"ada\"]");
    char *args = id_args(ada, ",10");
    esg_free(call(app, "deposit", args));
    esg_free(call(app, "deposit", args));
    free(args);
    esg_application *ledger_app = esg_local_runner_get(runner, "Ledger");
    /* Two entries: Account.Opened was of another topic, and ignored. */
    assert_int_equal(testutil_max_notification_id(ledger_app), 2);
    assert_int_equal(testutil_max_tracking_id(ledger_app, "Bank"), 3);
    assert_null(esg_local_runner_error(runner));
    assert_true(esg_application_type_has_policy(&ledger));
    assert_false(esg_application_type_has_policy(&bank));
    esg_free(ada);
    esg_local_runner_stop(runner);
}

int main(void)
{
#define DECLARED_TEST(fn) cmocka_unit_test_setup_teardown(fn, testutil_setup, testutil_teardown)
    const struct CMUnitTest tests[] = {
        DECLARED_TEST(test_signatures_bind_default_and_check),
        DECLARED_TEST(test_bad_declarations_are_refused_at_start),
        DECLARED_TEST(test_the_work_writes_once_or_not_at_all),
        DECLARED_TEST(test_versions_are_stored_and_upcast),
        DECLARED_TEST(test_state_fields_give_snapshots_and_the_cache),
        DECLARED_TEST(test_declared_policies_follow),
    };
    return cmocka_run_group_tests_name("declared", tests, NULL, NULL);
}
