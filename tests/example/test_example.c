/* The built-in example system (Orders -> Reservations -> Orders -> Payments ->
 * Orders) run by the local runner in memory and on SQLite: orders are paid at
 * once, and the stored events and replies match the Python reference's
 * (tests/vectors) byte for byte once ids and timestamps are substituted. Then
 * exactly-once processing when Reservations crashes part way through a pull. */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/system.h"

#define TOPIC(name) "eventsourcing_grpc.example:" name

/* ---- Fixtures ---------------------------------------------------------------- */

typedef struct fixture {
    char *temp_dir;           /* the SQLite files' folder, NULL in memory */
    esg_env *env;             /* the applications' configuration */
    esg_local_runner *runner; /* the example system, running */
} fixture;

/* An environment that puts each application in its own SQLite file under dir. */
static esg_env *sqlite_env(const char *dir)
{
    static const char *const names[] = {"ORDERS", "RESERVATIONS", "PAYMENTS"};
    esg_env *env = testutil_env_new();
    testutil_env_use_sqlite_dir(env, dir, names, 3);
    return env;
}

static esg_local_runner *start_runner(const esg_env *env)
{
    esg_error err = {0};
    esg_local_runner *runner = NULL;
    assert_esg_ok(esg_local_runner_start(&esg_example_system, env, &runner, &err), &err);
    assert_non_null(runner);
    return runner;
}

static int setup_popo(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    /* An empty environment, not the process's: the default in-memory recorder. */
    f->env = testutil_env_new();
    f->runner = start_runner(f->env);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->temp_dir = testutil_make_temp_dir();
    f->env = sqlite_env(f->temp_dir);
    f->runner = start_runner(f->env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esg_local_runner_stop(f->runner);
    esg_env_free(f->env);
    testutil_discard_temp_dir(f->temp_dir);
    free(f);
    return 0;
}

static esg_application *get_app(fixture *f, const char *name)
{
    esg_application *app = esg_local_runner_get(f->runner, name);
    if (app == NULL)
        fail_msg("the runner has no application %s", name);
    return app;
}

/* ---- Calls ------------------------------------------------------------------- */

static esg_uuid create_order(esg_application *orders)
{
    esg_error err = {0};
    esg_value *result = NULL;
    assert_esg_ok(esg_application_call(orders, "create_new_order", NULL, NULL, &result, &err),
                  &err);
    return testutil_take_uuid(result);
}

/* is_order_reserved or is_order_paid. */
static bool call_bool(esg_application *orders, const char *method, const esg_uuid *id)
{
    esg_error err = {0};
    esg_value *args = testutil_id_args(id), *result = NULL;
    assert_esg_ok(esg_application_call(orders, method, args, NULL, &result, &err), &err);
    esg_value_free(args);
    return testutil_take_bool(result);
}

/* A method's reply as JSON text (malloc'ed), called with JSON arguments. */
static char *call_json(esg_application *app, const char *method, const char *args,
                       const char *kwargs)
{
    esg_error err = {0};
    char *reply = NULL;
    size_t reply_len = 0;
    assert_esg_ok(esg_application_call_json(app, method, args, strlen(args), kwargs, strlen(kwargs),
                                            &reply, &reply_len, &err),
                  &err);
    assert_non_null(reply);
    assert_int_equal(strlen(reply), reply_len);
    return reply;
}

/* Every notification of app, read from its recorder (no page limit). */
static void select_all(esg_application *app, esg_notification_list *out)
{
    esg_error err = {0};
    assert_esg_ok(esg_recorder_select_notifications(esg_application_recorder(app), 1, 100000, 0,
                                                    NULL, 0, out, &err),
                  &err);
}

/* ---- Text substitution for comparing with the vectors ------------------------- */

/* text with every occurrence of from replaced by to; malloc'ed, text is freed. */
static char *replace_all(char *text, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), n = 0;
    assert_true(from_len > 0);
    for (const char *p = strstr(text, from); p != NULL; p = strstr(p + from_len, from))
        n++;
    char *out = malloc(strlen(text) + n * to_len + 1);
    assert_non_null(out);
    char *w = out;
    const char *r = text;
    for (const char *p = strstr(r, from); p != NULL; p = strstr(r, from)) {
        memcpy(w, r, (size_t)(p - r));
        w += p - r;
        memcpy(w, to, to_len);
        w += to_len;
        r = p + from_len;
    }
    strcpy(w, r);
    free(text);
    return out;
}

/* The isoformat text of the datetime under key in JSON text (malloc'ed). */
static char *datetime_of(const char *json_text, const char *key)
{
    char marker[128];
    snprintf(marker, sizeof marker, "\"%s\":{\"_type_\":\"datetime_iso\",\"_data_\":\"", key);
    const char *start = strstr(json_text, marker);
    if (start == NULL)
        fail_msg("no datetime %s in %s", key, json_text);
    start += strlen(marker);
    const char *end = strchr(start, '"');
    assert_non_null(end);
    return strndup(start, (size_t)(end - start));
}

/* The ids of the vectors' order and of ours, as hex, for substitution. */
typedef struct id_map {
    char vector_hex[3][ESG_UUID_HEX_SIZE]; /* order, reservation, payment in the vectors */
    char actual_hex[3][ESG_UUID_HEX_SIZE]; /* the same for the order of this run */
} id_map;

static void make_id_map(id_map *map, json_t *stored_events, const esg_uuid *order_id)
{
    esg_error err = {0};
    const char *vector_text =
        json_string_value(json_object_get(json_object_get(stored_events, "order_id"), "uuid"));
    esg_uuid vector_order;
    assert_esg_ok(esg_uuid_parse(vector_text, strlen(vector_text), &vector_order, &err), &err);
    esg_uuid vector_ids[3] = {vector_order, testutil_derived_id("reservations", &vector_order),
                              testutil_derived_id("payments", &vector_order)};
    esg_uuid actual_ids[3] = {*order_id, testutil_derived_id("reservations", order_id),
                              testutil_derived_id("payments", order_id)};
    for (size_t i = 0; i < 3; i++) {
        esg_uuid_hex(&vector_ids[i], map->vector_hex[i]);
        esg_uuid_hex(&actual_ids[i], map->actual_hex[i]);
    }
    /* The vector's own derived ids, to be sure the rule above is the recorded one. */
    json_t *derived = json_object_get(stored_events, "derived_ids");
    assert_string_equal(
        map->vector_hex[1],
        json_string_value(json_object_get(
            json_object_get(json_object_get(derived, "reservation_id"), "value"), "hex")));
    assert_string_equal(
        map->vector_hex[2],
        json_string_value(json_object_get(
            json_object_get(json_object_get(derived, "payment_id"), "value"), "hex")));
}

static char *substitute_ids(const id_map *map, const char *vector_text)
{
    char *text = strdup(vector_text);
    assert_non_null(text);
    for (size_t i = 0; i < 3; i++)
        text = replace_all(text, map->vector_hex[i], map->actual_hex[i]);
    return text;
}

/* Asserts that a stored state equals the vector's, with our ids and our
 * timestamp in place of the recorded ones. */
static void assert_state_like_vector(const id_map *map, const esg_notification *notification,
                                     json_t *vector_notification)
{
    const char *vector_state =
        json_string_value(json_object_get(json_object_get(vector_notification, "state"), "utf8"));
    assert_non_null(vector_state);
    const char *actual = (const char *)notification->event.state;
    assert_int_equal(strlen(actual), notification->event.state_len);
    char *vector_ts = datetime_of(vector_state, "timestamp");
    char *actual_ts = datetime_of(actual, "timestamp");
    char *expected = substitute_ids(map, vector_state);
    expected = replace_all(expected, vector_ts, actual_ts);
    assert_string_equal(actual, expected);
    free(expected);
    free(actual_ts);
    free(vector_ts);
}

/* The notification i of an application in the stored events vector. */
static json_t *vector_notification(json_t *stored_events, const char *app, size_t i)
{
    json_t *notifications = json_object_get(
        json_object_get(json_object_get(stored_events, "apps"), app), "notifications");
    json_t *notification = json_array_get(notifications, i);
    assert_non_null(notification);
    return notification;
}

/* ---- One order, compared with the reference ------------------------------------ */

static void check_one_order(fixture *f)
{
    esg_error err = {0};
    esg_application *orders = get_app(f, "Orders");
    esg_application *reservations = get_app(f, "Reservations");
    esg_application *payments = get_app(f, "Payments");
    json_t *stored_events = testutil_load_vector("stored_events.json");
    json_t *method_calls = testutil_load_vector("method_calls.json");

    esg_uuid order_id = create_order(orders);
    /* The runner processes before the call returns: no waiting. */
    assert_true(call_bool(orders, "is_order_paid", &order_id));
    assert_true(call_bool(orders, "is_order_reserved", &order_id));
    assert_null(esg_local_runner_error(f->runner));

    /* The seed README's runner assertions, and the vector's stored state. */
    id_map map;
    make_id_map(&map, stored_events, &order_id);
    esg_notification_list log = {0};
    assert_esg_ok(esg_application_select_notifications(orders, 1, 10, 0, NULL, 0, &log, &err),
                  &err);
    testutil_assert_one_order_log(&log, &order_id);
    for (size_t i = 0; i < 3; i++)
        assert_state_like_vector(&map, &log.items[i],
                                 vector_notification(stored_events, "Orders", i));
    char *created_on = datetime_of((const char *)log.items[0].event.state, "timestamp");
    char *modified_on = datetime_of((const char *)log.items[2].event.state, "timestamp");
    esg_notification_list_clear(&log);

    const struct {
        esg_application *app;
        const char *name;  /* as in the vector */
        const char *kind;  /* of the derived id */
        const char *topic; /* of its one event */
    } followers[] = {
        {reservations, "Reservations", "reservations", TOPIC("Reservation.Created")},
        {payments, "Payments", "payments", TOPIC("Payment.Created")},
    };
    for (size_t i = 0; i < 2; i++) {
        assert_esg_ok(
            esg_application_select_notifications(followers[i].app, 1, 10, 0, NULL, 0, &log, &err),
            &err);
        assert_int_equal(log.n_items, 1);
        esg_uuid expected_id = testutil_derived_id(followers[i].kind, &order_id);
        assert_int_equal(log.items[0].id, 1);
        assert_true(esg_uuid_equal(&log.items[0].event.originator_id, &expected_id));
        assert_int_equal(log.items[0].event.originator_version, 1);
        assert_string_equal(log.items[0].event.topic, followers[i].topic);
        assert_state_like_vector(&map, &log.items[0],
                                 vector_notification(stored_events, followers[i].name, 0));
        esg_notification_list_clear(&log);
    }

    /* The tracking positions: each follower tracks the notifications of the topics it follows
     * (follow_topics), as the reference does for a process application with follow_topics (the
     * reference's example has none, so its Reservations and Payments track Orders up to 3). */
    assert_int_equal(testutil_max_tracking_id(orders, "Reservations"), 1);
    assert_int_equal(testutil_max_tracking_id(orders, "Payments"), 1);
    assert_int_equal(testutil_max_tracking_id(reservations, "Orders"), 1); /* Order.Created */
    assert_int_equal(testutil_max_tracking_id(payments, "Orders"), 2);     /* Order.Reserved */

    /* get_order, is_order_reserved and is_order_paid as the reference replies. */
    json_t *replies = json_object_get(method_calls, "in_process_replies_after_paid");
    assert_int_equal(json_array_size(replies), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *reply = json_array_get(replies, i);
        const char *method = json_string_value(json_object_get(reply, "method_name"));
        char *args = substitute_ids(
            &map, json_string_value(json_object_get(json_object_get(reply, "args"), "utf8")));
        const char *kwargs =
            json_string_value(json_object_get(json_object_get(reply, "kwargs"), "utf8"));
        const char *vector_data =
            json_string_value(json_object_get(json_object_get(reply, "data"), "utf8"));
        char *expected = substitute_ids(&map, vector_data);
        if (strcmp(method, "get_order") == 0) {
            char *vector_created = datetime_of(vector_data, "created_on");
            char *vector_modified = datetime_of(vector_data, "modified_on");
            expected = replace_all(expected, vector_created, created_on);
            expected = replace_all(expected, vector_modified, modified_on);
            free(vector_created);
            free(vector_modified);
        }
        char *actual = call_json(orders, method, args, kwargs);
        assert_string_equal(actual, expected);
        free(actual);

        /* The same call with the id as a keyword argument gives the same reply. */
        char *by_keyword = NULL;
        size_t kw_len = strlen(args) + 32;
        by_keyword = malloc(kw_len);
        assert_non_null(by_keyword);
        /* args is "[<id>]": the keyword form is {"order_id":<id>}. */
        snprintf(by_keyword, kw_len, "{\"order_id\":%.*s}", (int)(strlen(args) - 2), args + 1);
        actual = call_json(orders, method, "[]", by_keyword);
        assert_string_equal(actual, expected);
        free(actual);
        free(by_keyword);
        free(expected);
        free(args);
    }

    free(created_on);
    free(modified_on);
    json_decref(method_calls);
    json_decref(stored_events);
}

static void test_one_order_is_paid_like_the_reference(void **state)
{
    check_one_order(*state);
}

/* ---- Errors ------------------------------------------------------------------- */

static void test_get_order_errors(void **state)
{
    fixture *f = *state;
    esg_application *orders = get_app(f, "Orders");
    esg_error err = {0};
    esg_value *result = NULL;

    /* An id that names no order: the repository's ESG_ENOTFOUND, for each method. */
    esg_uuid unknown = testutil_random_uuid();
    esg_value *args = testutil_id_args(&unknown);
    const char *methods[] = {"get_order", "is_order_reserved", "is_order_paid"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(esg_application_call(orders, methods[i], args, NULL, &result, &err),
                         ESG_ENOTFOUND);
        assert_int_equal(err.status, ESG_ENOTFOUND);
        assert_null(result);
    }
    esg_value_free(args);

    /* A string is not an order id, even one that spells a UUID. */
    char hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(&unknown, hex);
    const char *strings[] = {"x", hex};
    for (size_t i = 0; i < 2; i++) {
        args = esg_value_array();
        assert_int_equal(esg_array_append(args, esg_value_string(strings[i])), ESG_OK);
        esg_error_clear(&err);
        assert_int_equal(esg_application_call(orders, "get_order", args, NULL, &result, &err),
                         ESG_EINVAL);
        assert_non_null(strstr(err.message, "order_id"));
        assert_null(result);
        esg_value_free(args);
    }
    char *reply = NULL;
    size_t reply_len = 0;
    assert_int_equal(esg_application_call_json(orders, "get_order", "[\"x\"]", 5, "{}", 2, &reply,
                                               &reply_len, &err),
                     ESG_EINVAL);
    assert_null(reply);

    /* Errors record nothing. */
    assert_int_equal(testutil_max_notification_id(orders), 0);
}

/* ---- Many orders -------------------------------------------------------------- */

#define N_MANY_ORDERS 100

static void test_many_orders_are_all_paid(void **state)
{
    fixture *f = *state;
    esg_application *orders = get_app(f, "Orders");
    esg_uuid *ids = calloc(N_MANY_ORDERS, sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < N_MANY_ORDERS; i++)
        ids[i] = create_order(orders);
    for (size_t i = 0; i < N_MANY_ORDERS; i++)
        assert_true(call_bool(orders, "is_order_paid", &ids[i]));
    assert_null(esg_local_runner_error(f->runner));
    assert_int_equal(testutil_max_notification_id(orders), 3 * N_MANY_ORDERS);
    assert_int_equal(testutil_max_notification_id(get_app(f, "Reservations")), N_MANY_ORDERS);
    assert_int_equal(testutil_max_notification_id(get_app(f, "Payments")), N_MANY_ORDERS);

    /* One payment per order, with the derived id, in the order the orders came. */
    esg_notification_list log = {0};
    select_all(get_app(f, "Payments"), &log);
    assert_int_equal(log.n_items, N_MANY_ORDERS);
    for (size_t i = 0; i < N_MANY_ORDERS; i++) {
        esg_uuid expected = testutil_derived_id("payments", &ids[i]);
        assert_true(esg_uuid_equal(&log.items[i].event.originator_id, &expected));
    }
    esg_notification_list_clear(&log);
    free(ids);
}

/* ---- Restart on SQLite --------------------------------------------------------- */

/* An order created while only Orders ran is paid when the system starts
 * again (followers catch up at start), and what was there stays. */
static void test_sqlite_restart_catches_up(void **state)
{
    fixture *f = *state;
    esg_error err = {0};
    esg_uuid first = create_order(get_app(f, "Orders"));
    esg_local_runner_stop(f->runner);
    f->runner = NULL;

    esg_application *orders = NULL;
    assert_esg_ok(esg_application_new(&esg_example_orders, f->env, &orders, &err), &err);
    esg_uuid second = create_order(orders);
    assert_false(call_bool(orders, "is_order_reserved", &second));
    esg_application_free(orders);

    f->runner = start_runner(f->env);
    orders = get_app(f, "Orders");
    assert_true(call_bool(orders, "is_order_paid", &first));
    assert_true(call_bool(orders, "is_order_paid", &second));
    assert_int_equal(testutil_max_notification_id(orders), 6);
    assert_int_equal(testutil_max_notification_id(get_app(f, "Reservations")), 2);
    assert_int_equal(testutil_max_notification_id(get_app(f, "Payments")), 2);
    assert_null(esg_local_runner_error(f->runner));
}

/* ---- Exactly once after a crash -------------------------------------------------- */

/* The policy of a Reservations that crashes: it fails on its crash_at-th call. */
static int policy_calls;    /* calls since the last reset */
static int policy_crash_at; /* the call that fails, from 1 */

static esg_status crashing_policy(esg_application *app, const esg_event *event,
                                  esg_processing_event *processing, esg_error *err)
{
    if (++policy_calls == policy_crash_at)
        return esg_error_set(err, ESG_EIO, "simulated crash in the policy");
    return esg_application_type_run_policy(&esg_example_reservations, app, event, processing, err);
}

/* A leader's log that goes away after crash_after: the pull fails part way.
 * Optionally, before its first page, another instance of the follower pulls
 * everything, as a second process racing this one would. */
typedef struct crashing_log {
    esg_notification_log inner; /* the real log */
    int64_t crash_after;        /* selects starting after this id fail */
    int64_t first_limit;        /* the page size the puller asked for first, 0 before */
    int n_failures;             /* selects that failed */
    esg_application *racer;     /* pulls everything before the first page; may be NULL */
    esg_status racer_rc;        /* what the racer's pull returned */
    int64_t racer_processed;    /* what it processed */
} crashing_log;

static esg_status crashing_select(void *ctx, int64_t start, int64_t limit,
                                  const char *const *topics, size_t n_topics,
                                  esg_notification_list *out, esg_error *err)
{
    crashing_log *log = ctx;
    if (log->first_limit == 0)
        log->first_limit = limit;
    if (start > log->crash_after) {
        log->n_failures++;
        return esg_error_set(err, ESG_EUNAVAILABLE, "simulated crash: the leader went away");
    }
    if (log->racer != NULL) {
        esg_error racer_err = {0};
        log->racer_rc = esg_application_pull_and_process(log->racer, &log->inner,
                                                         &log->racer_processed, &racer_err);
        log->racer = NULL;
    }
    return log->inner.select(log->inner.ctx, start, limit, topics, n_topics, out, err);
}

static esg_notification_log crashing_log_view(crashing_log *log)
{
    return (esg_notification_log){.leader_name = log->inner.leader_name,
                                  .page_size = log->inner.page_size,
                                  .select = crashing_select,
                                  .ctx = log};
}

static esg_application *new_app(const esg_application_type *type, const esg_env *env)
{
    esg_error err = {0};
    esg_application *app = NULL;
    assert_esg_ok(esg_application_new(type, env, &app, &err), &err);
    assert_non_null(app);
    return app;
}

/* The orders created so far, in the order of the Orders log. */
typedef struct order_list {
    esg_uuid *ids;
    size_t n_ids;
} order_list;

static void add_orders(esg_application *orders, order_list *list, size_t n)
{
    list->ids = realloc(list->ids, (list->n_ids + n) * sizeof *list->ids);
    assert_non_null(list->ids);
    for (size_t i = 0; i < n; i++)
        list->ids[list->n_ids++] = create_order(orders);
    assert_int_equal(testutil_max_notification_id(orders), list->n_ids);
}

/* What was recorded is consistent: each tracked Order.Created has exactly its
 * reservation, in order, and nothing else was recorded. Returns the position. */
static int64_t assert_consistent(esg_application *reservations, const order_list *orders)
{
    int64_t tracked = testutil_max_tracking_id(reservations, "Orders");
    assert_true(tracked >= 0 && tracked <= (int64_t)orders->n_ids);
    esg_notification_list log = {0};
    select_all(reservations, &log);
    assert_int_equal(log.n_items, tracked);
    for (int64_t i = 0; i < tracked; i++) {
        esg_uuid expected = testutil_derived_id("reservations", &orders->ids[i]);
        assert_int_equal(log.items[i].id, i + 1);
        assert_true(esg_uuid_equal(&log.items[i].event.originator_id, &expected));
        assert_int_equal(log.items[i].event.originator_version, 1);
        assert_string_equal(log.items[i].event.topic, TOPIC("Reservation.Created"));
    }
    esg_notification_list_clear(&log);
    return tracked;
}

static void test_exactly_once_after_crashes(void **state)
{
    (void)state;
    esg_error err = {0};
    char *dir = testutil_make_temp_dir();
    esg_env *env = sqlite_env(dir);
    esg_application *orders = new_app(&esg_example_orders, env);
    order_list created = {0};
    add_orders(orders, &created, 25);
    esg_notification_log orders_log;
    esg_application_local_log(orders, &orders_log);
    assert_string_equal(orders_log.leader_name, "Orders");

    /* 0. The leader is gone from the start: nothing happens, and the page
     * size the puller uses is learnt, to crash it part way below. */
    esg_application *reservations = new_app(&esg_example_reservations, env);
    crashing_log probe = {.inner = orders_log, .crash_after = 0};
    esg_notification_log probe_log = crashing_log_view(&probe);
    assert_int_not_equal(esg_application_pull_and_process(reservations, &probe_log, NULL, &err),
                         ESG_OK);
    assert_int_equal(probe.n_failures, 1);
    assert_int_equal(assert_consistent(reservations, &created), 0);
    int64_t page = probe.first_limit;
    assert_true(page >= 1 && page <= 1000);
    esg_application_free(reservations);

    /* 1. The policy fails on the 8th notification: the pull fails, and what
     * was recorded before stays consistent. The process then "dies". */
    esg_application_type crashing_type = esg_example_reservations;
    crashing_type.policy = crashing_policy;
    policy_calls = 0;
    policy_crash_at = 8;
    reservations = new_app(&crashing_type, env);
    assert_int_not_equal(esg_application_pull_and_process(reservations, &orders_log, NULL, &err),
                         ESG_OK);
    int64_t tracked = assert_consistent(reservations, &created);
    assert_true(tracked < policy_crash_at);
    esg_application_free(reservations);

    /* 2. Restarted, it pulls one full page and the leader goes away before
     * the next: the page is recorded, and the pull reports the failure. */
    add_orders(orders, &created, (size_t)(tracked + 2 * page + 1) - created.n_ids);
    reservations = new_app(&esg_example_reservations, env);
    assert_int_equal(assert_consistent(reservations, &created), tracked);
    crashing_log flaky = {.inner = orders_log, .crash_after = tracked + 1};
    esg_notification_log flaky_log = crashing_log_view(&flaky);
    assert_int_not_equal(esg_application_pull_and_process(reservations, &flaky_log, NULL, &err),
                         ESG_OK);
    assert_int_equal(flaky.n_failures, 1);
    assert_int_equal(assert_consistent(reservations, &created), tracked + page);
    tracked += page;
    esg_application_free(reservations);

    /* 3. Restarted twice over: two instances on one database, the second
     * pulling everything while the first is between reading its position
     * and processing. The first then skips what the second recorded. */
    esg_application *first = new_app(&esg_example_reservations, env);
    esg_application *second = new_app(&esg_example_reservations, env);
    crashing_log racing = {.inner = orders_log, .crash_after = INT64_MAX, .racer = second};
    esg_notification_log racing_log = crashing_log_view(&racing);
    assert_esg_ok(esg_application_pull_and_process(first, &racing_log, NULL, &err), &err);
    assert_int_equal(racing.racer_rc, ESG_OK);
    assert_int_equal(racing.racer_processed, (int64_t)created.n_ids - tracked);
    assert_int_equal(assert_consistent(first, &created), created.n_ids);
    assert_int_equal(assert_consistent(second, &created), created.n_ids);
    esg_application_free(first);
    esg_application_free(second);

    /* And once more from a fresh start: nothing left to do. */
    reservations = new_app(&esg_example_reservations, env);
    int64_t n_processed = -1;
    assert_esg_ok(esg_application_pull_and_process(reservations, &orders_log, &n_processed, &err),
                  &err);
    assert_int_equal(n_processed, 0);
    assert_int_equal(assert_consistent(reservations, &created), created.n_ids);
    esg_application_free(reservations);

    free(created.ids);
    esg_application_free(orders);
    esg_env_free(env);
    testutil_remove_tree(dir);
    free(dir);
}

/* ---- The definitions themselves ------------------------------------------------- */

static void test_definitions(void **state)
{
    (void)state;
    assert_int_equal(esg_example_system.magic, ESG_SYSTEM_DEF_MAGIC);
    assert_string_equal(esg_example_system.topic, TOPIC("system"));
    /* Declared: one pipe, the lists ending at NULL. */
    assert_null(esg_example_system.pipes[1].apps);
    const esg_pipe *pipe = &esg_example_system.pipes[0];
    const esg_application_type *expected[] = {&esg_example_orders, &esg_example_reservations,
                                              &esg_example_orders, &esg_example_payments,
                                              &esg_example_orders, NULL};
    for (size_t i = 0; i < 6; i++)
        assert_ptr_equal(pipe->apps[i], expected[i]);
    const struct {
        const esg_application_type *type;
        const char *name;
        const char *topic;
        size_t n_methods;
    } types[] = {
        {&esg_example_orders, "Orders", TOPIC("Orders"), 4},
        {&esg_example_reservations, "Reservations", TOPIC("Reservations"), 0},
        {&esg_example_payments, "Payments", TOPIC("Payments"), 0},
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(types[i].type->magic, ESG_APPLICATION_TYPE_MAGIC);
        assert_string_equal(types[i].type->name, types[i].name);
        assert_string_equal(types[i].type->topic, types[i].topic);
        size_t n_methods = 0;
        while (types[i].type->method_defs != NULL &&
               types[i].type->method_defs[n_methods].signature != NULL)
            n_methods++;
        assert_int_equal(n_methods, types[i].n_methods);
        assert_true(esg_application_type_has_policy(types[i].type));
        assert_non_null(types[i].type->aggregate_types[0]);
        assert_null(types[i].type->aggregate_types[1]);
    }
}

/* One test run against a backend, named after both. */
#define ON_BACKEND(test, backend)                                                                  \
    {                                                                                              \
#test "_" #backend, test, setup_##backend, teardown, NULL                                  \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_definitions),
        ON_BACKEND(test_one_order_is_paid_like_the_reference, popo),
        ON_BACKEND(test_one_order_is_paid_like_the_reference, sqlite),
        ON_BACKEND(test_get_order_errors, popo),
        ON_BACKEND(test_get_order_errors, sqlite),
        ON_BACKEND(test_many_orders_are_all_paid, popo),
        ON_BACKEND(test_many_orders_are_all_paid, sqlite),
        ON_BACKEND(test_sqlite_restart_catches_up, sqlite),
        cmocka_unit_test(test_exactly_once_after_crashes),
    };
    return cmocka_run_group_tests_name("example", tests, NULL, NULL);
}
