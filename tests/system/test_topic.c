/* Topics: the built-in example resolves from the registry, malformed topics
 * are refused, and a user's application built as a shared library
 * (examples/user_application, in ESG_TEST_PLUGIN_DIR) loads through
 * ESG_TOPIC_PATH and runs, alone and as a system. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/system.h"
#include "esg/topic.h"

/* An environment whose ESG_TOPIC_PATH is path (NULL for none). */
static esg_env *topic_env(const char *path)
{
    esg_error err = {0};
    esg_env *env = esg_env_new();
    assert_non_null(env);
    if (path != NULL)
        assert_esg_ok(esg_env_set(env, "ESG_TOPIC_PATH", path, &err), &err);
    return env;
}

static const esg_application_type *resolve_app(const char *topic, const esg_env *env)
{
    esg_error err = {0};
    const esg_application_type *type = NULL;
    assert_esg_ok(esg_topic_resolve_application(topic, env, &type, &err), &err);
    assert_non_null(type);
    return type;
}

static const esg_system_def *resolve_system(const char *topic, const esg_env *env)
{
    esg_error err = {0};
    const esg_system_def *def = NULL;
    assert_esg_ok(esg_topic_resolve_system(topic, env, &def, &err), &err);
    assert_non_null(def);
    return def;
}

/* The checks after resolving topic (an application or a system topic: kind) failed with rc:
 * status expected, err saying so, and the output (resolved) reset to NULL. */
static void check_failure(const char *kind, const char *topic, esg_status rc, esg_status status,
                          const esg_error *err, const void *resolved)
{
    if (rc != status)
        fail_msg("%s topic '%s': %s, expected %s (%s)", kind, topic, esg_status_name(rc),
                 esg_status_name(status), err->message);
    assert_int_equal(err->status, status);
    assert_null(resolved);
    assert_true(strlen(err->message) > 0);
}

/* Asserts that resolving topic both ways fails with status; returns nothing
 * but leaves the application attempt's message in err. */
static void assert_app_fails(const char *topic, const esg_env *env, esg_status status,
                             esg_error *err)
{
    const esg_application_type *type = (const esg_application_type *)&type; /* not NULL */
    esg_error_clear(err);
    esg_status rc = esg_topic_resolve_application(topic, env, &type, err);
    check_failure("application", topic, rc, status, err, type);
}

static void assert_system_fails(const char *topic, const esg_env *env, esg_status status,
                                esg_error *err)
{
    const esg_system_def *def = (const esg_system_def *)&def; /* not NULL */
    esg_error_clear(err);
    esg_status rc = esg_topic_resolve_system(topic, env, &def, err);
    check_failure("system", topic, rc, status, err, def);
}

static void assert_message_has(const esg_error *err, const char *part)
{
    if (strstr(err->message, part) == NULL)
        fail_msg("the message '%s' does not mention '%s'", err->message, part);
}

/* ---- Built-in topics ------------------------------------------------------------ */

static void test_builtin_topics_resolve(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(NULL);
    /* Before it registers, the example is a module like any other: searched for on disk. */
    assert_app_fails("eventsourcing_grpc.example:Orders", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "no library eventsourcing_grpc.example.so");
    assert_esg_ok(esg_example_register(&err), &err);
    assert_esg_ok(esg_example_register(&err), &err); /* again: nothing changes */
    assert_ptr_equal(resolve_app("eventsourcing_grpc.example:Orders", env), &esg_example_orders);
    assert_ptr_equal(resolve_app("eventsourcing_grpc.example:Reservations", env),
                     &esg_example_reservations);
    assert_ptr_equal(resolve_app("eventsourcing_grpc.example:Payments", env),
                     &esg_example_payments);
    assert_ptr_equal(resolve_system("eventsourcing_grpc.example:system", env), &esg_example_system);
    /* The process environment (env NULL) finds them too. */
    assert_ptr_equal(resolve_app("eventsourcing_grpc.example:Orders", NULL), &esg_example_orders);
    assert_ptr_equal(resolve_system("eventsourcing_grpc.example:system", NULL),
                     &esg_example_system);
    /* Each type's own topic names it. */
    const esg_application_type *types[] = {&esg_example_orders, &esg_example_reservations,
                                           &esg_example_payments};
    for (size_t i = 0; i < 3; i++)
        assert_ptr_equal(resolve_app(types[i]->topic, env), types[i]);
    assert_ptr_equal(resolve_system(esg_example_system.topic, env), &esg_example_system);
    esg_env_free(env);
}

static void test_builtin_kind_mismatch_is_not_found(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(NULL);
    assert_esg_ok(esg_example_register(&err), &err);
    /* Another object under a registered topic is refused. */
    static const esg_application_type impostor = {.magic = ESG_APPLICATION_TYPE_MAGIC,
                                                  .name = "Orders",
                                                  .topic = "eventsourcing_grpc.example:Orders"};
    assert_int_equal(esg_topic_register_application(&impostor, &err), ESG_EINVAL);
    assert_message_has(&err, "registered already");
    assert_app_fails("eventsourcing_grpc.example:system", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "system");
    assert_system_fails("eventsourcing_grpc.example:Orders", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "Orders");
    /* Other names in the built-in module do not exist, and are not searched for on disk. */
    assert_app_fails("eventsourcing_grpc.example:Order", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "Order");
    assert_system_fails("eventsourcing_grpc.example:System", env, ESG_ENOTFOUND, &err);
    esg_env_free(env);
}

static void test_malformed_topics_are_invalid(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    const char *malformed[] = {
        "",
        "nocolon",
        "a:b:c",
        ":X",
        "m:",
        "m:1bad",
        ":",
        "user_counters:Coun ters",
        "user_counters:Counters-x",
        "../user_counters:Counters", /* no path in a module name */
        "dir/user_counters:Counters",
        "user counters:Counters",
        "eventsourcing_grpc.example:Orders:",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert_app_fails(malformed[i], env, ESG_EINVAL, &err);
        assert_system_fails(malformed[i], env, ESG_EINVAL, &err);
    }
    assert_app_fails(NULL, env, ESG_EINVAL, &err);
    esg_env_free(env);
}

/* ---- Topics that name nothing ----------------------------------------------------- */

static void test_unknown_module_is_not_found(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    assert_app_fails("esg_no_such_module:Thing", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "esg_no_such_module.so");
    assert_message_has(&err, ESG_TEST_PLUGIN_DIR); /* where it looked */
    assert_system_fails("esg_no_such_module:system", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "esg_no_such_module");
    esg_env_free(env);

    /* Without ESG_TOPIC_PATH the plugin is nowhere to be found. */
    env = topic_env(NULL);
    assert_app_fails("user_counters:Counters", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "user_counters");
    esg_env_free(env);
}

static void test_unknown_name_in_module_is_not_found(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    assert_app_fails("user_counters:NoSuchThing", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "NoSuchThing");
    assert_message_has(&err, "user_counters.so");
    assert_system_fails("user_counters:NoSuchThing", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "NoSuchThing");

    /* A symbol of the other kind is not found either: the magic tells them apart. */
    assert_app_fails("user_counters:system", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "not an application type");
    assert_system_fails("user_counters:Counters", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "not a system");
    /* The failed lookups left the library usable. */
    assert_string_equal(resolve_app("user_counters:Counters", env)->name, "Counters");
    esg_env_free(env);
}

/* A file named like the module that is not a library: the loader's reason is told. */
static void test_broken_library_is_reported(void **state)
{
    (void)state;
    esg_error err = {0};
    char *dir = testutil_make_temp_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/esg_broken.so", dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("not an ELF file\n", file);
    fclose(file);
    esg_env *env = topic_env(dir);
    assert_app_fails("esg_broken:Thing", env, ESG_ENOTFOUND, &err);
    assert_message_has(&err, "esg_broken.so");
    assert_message_has(&err, dir);
    esg_env_free(env);
    testutil_remove_tree(dir);
    free(dir);
}

/* ---- The user's application, loaded ------------------------------------------------ */

/* Folders before the plugin's that hold nothing, and a "lib" name found by symlink. */
static void test_search_path_and_lib_prefix(void **state)
{
    (void)state;
    char *dir = testutil_make_temp_dir();
    char link_path[1024], path_list[2048];
    snprintf(link_path, sizeof link_path, "%s/libesg_counters_alias.so", dir);
    assert_int_equal(symlink(ESG_TEST_PLUGIN_DIR "/user_counters.so", link_path), 0);

    snprintf(path_list, sizeof path_list, "/nonexistent-esg-dir::%s:%s", dir, ESG_TEST_PLUGIN_DIR);
    esg_env *env = topic_env(path_list);
    const esg_application_type *direct = resolve_app("user_counters:Counters", env);
    const esg_application_type *aliased = resolve_app("esg_counters_alias:Counters", env);
    assert_string_equal(direct->name, "Counters");
    assert_string_equal(aliased->name, "Counters");
    assert_string_equal(aliased->topic, "user_counters:Counters");
    /* Resolving again gives the same object: the library stays loaded. */
    assert_ptr_equal(resolve_app("user_counters:Counters", env), direct);
    esg_env_free(env);
    testutil_remove_tree(dir);
    free(dir);
}

static void test_process_environment_is_the_default(void **state)
{
    (void)state;
    esg_error err = {0};
    assert_int_equal(setenv("ESG_TOPIC_PATH", ESG_TEST_PLUGIN_DIR, 1), 0);
    const esg_application_type *type = resolve_app("user_counters:Counters", NULL);
    assert_string_equal(type->name, "Counters");
    assert_int_equal(unsetenv("ESG_TOPIC_PATH"), 0);
    assert_app_fails("user_counters:Counters", NULL, ESG_ENOTFOUND, &err);
}

static esg_value *call(esg_application *app, const char *method, const char *args_json,
                       const char *kwargs_json)
{
    esg_error err = {0};
    esg_value *args = NULL, *kwargs = NULL, *result = NULL;
    if (args_json != NULL)
        assert_esg_ok(esg_json_decode(args_json, strlen(args_json), &args, &err), &err);
    if (kwargs_json != NULL)
        assert_esg_ok(esg_json_decode(kwargs_json, strlen(kwargs_json), &kwargs, &err), &err);
    assert_esg_ok(esg_application_call(app, method, args, kwargs, &result, &err), &err);
    assert_non_null(result);
    esg_value_free(args);
    esg_value_free(kwargs);
    return result;
}

static int64_t call_int(esg_application *app, const char *method, const char *args_json,
                        const char *kwargs_json)
{
    esg_value *result = call(app, method, args_json, kwargs_json);
    assert_int_equal(esg_value_type(result), ESG_TYPE_INT);
    int64_t value = esg_value_as_int(result);
    esg_value_free(result);
    return value;
}

/* [<id>] as JSON text, written into out. */
static void id_args(const esg_uuid *id, const char *extra, char *out, size_t out_size)
{
    char hex[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(id, hex);
    snprintf(out, out_size, "[{\"_type_\":\"uuid_hex\",\"_data_\":\"%s\"}%s]", hex, extra);
}

/* Exercises a running Counters: create, increment three ways, read, and errors. */
static void exercise_counters(esg_application *app)
{
    esg_error err = {0};
    esg_value *result = call(app, "create_counter", "[\"visits\"]", NULL);
    assert_int_equal(esg_value_type(result), ESG_TYPE_UUID);
    esg_uuid id = *esg_value_as_uuid(result);
    esg_value_free(result);

    char args[160], kwargs[200], hex[ESG_UUID_HEX_SIZE];
    id_args(&id, "", args, sizeof args);
    assert_int_equal(call_int(app, "get_value", args, NULL), 0);
    assert_int_equal(call_int(app, "increment", args, NULL), 1);
    id_args(&id, ",5", args, sizeof args);
    assert_int_equal(call_int(app, "increment", args, NULL), 6);
    esg_uuid_hex(&id, hex);
    snprintf(kwargs, sizeof kwargs,
             "{\"by\":-2,\"counter_id\":{\"_type_\":\"uuid_hex\",\"_data_\":\"%s\"}}", hex);
    assert_int_equal(call_int(app, "increment", NULL, kwargs), 4);
    id_args(&id, "", args, sizeof args);
    assert_int_equal(call_int(app, "get_value", args, NULL), 4);

    /* The JSON shape of a remote call. */
    char *reply = NULL;
    size_t reply_len = 0;
    assert_esg_ok(esg_application_call_json(app, "get_value", args, strlen(args), "{}", 2, &reply,
                                            &reply_len, &err),
                  &err);
    assert_string_equal(reply, "4");
    free(reply);

    /* Errors: a wrong type, an unknown counter, an unknown method. */
    esg_value *bad_args = NULL;
    id_args(&id, ",\"x\"", args, sizeof args);
    assert_esg_ok(esg_json_decode(args, strlen(args), &bad_args, &err), &err);
    assert_int_equal(esg_application_call(app, "increment", bad_args, NULL, &result, &err),
                     ESG_EINVAL);
    esg_value_free(bad_args);
    esg_uuid unknown;
    esg_uuid4(&unknown);
    id_args(&unknown, "", args, sizeof args);
    assert_esg_ok(esg_json_decode(args, strlen(args), &bad_args, &err), &err);
    assert_int_equal(esg_application_call(app, "get_value", bad_args, NULL, &result, &err),
                     ESG_ENOTFOUND);
    assert_int_equal(esg_application_call(app, "no_such_method", NULL, NULL, &result, &err),
                     ESG_EUNIMPLEMENTED);
    esg_value_free(bad_args);

    /* What was stored: four events with the plugin's topics. */
    esg_notification_list log = {0};
    assert_esg_ok(esg_application_select_notifications(app, 1, 10, 0, NULL, 0, &log, &err), &err);
    assert_int_equal(log.n_items, 4);
    assert_string_equal(log.items[0].event.topic, "user_counters:Counter.Created");
    for (size_t i = 1; i < 4; i++)
        assert_string_equal(log.items[i].event.topic, "user_counters:Counter.Incremented");
    const char *created = (const char *)log.items[0].event.state;
    assert_non_null(strstr(created, ",\"originator_topic\":\"user_counters:Counter\","
                                    "\"name\":\"visits\"}"));
    assert_non_null(strstr((const char *)log.items[2].event.state, ",\"by\":5}"));
    esg_notification_list_clear(&log);
}

static void test_plugin_application_works(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    const esg_application_type *type = resolve_app("user_counters:Counters", env);
    assert_int_equal(type->magic, ESG_APPLICATION_TYPE_MAGIC);
    assert_string_equal(type->name, "Counters");
    assert_string_equal(type->topic, "user_counters:Counters");
    assert_null(type->policy);

    esg_env *app_env = topic_env(NULL); /* in memory */
    esg_application *app = NULL;
    assert_esg_ok(esg_application_new(type, app_env, &app, &err), &err);
    assert_string_equal(esg_application_name(app), "Counters");
    exercise_counters(app);
    esg_application_free(app);
    esg_env_free(app_env);
    esg_env_free(env);
}

static void test_plugin_system_runs(void **state)
{
    (void)state;
    esg_error err = {0};
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    const esg_system_def *def = resolve_system("user_counters:system", env);
    assert_int_equal(def->magic, ESG_SYSTEM_DEF_MAGIC);
    assert_string_equal(def->topic, "user_counters:system");
    /* Its one pipe (declared with ESG_SYSTEM: the lists end at NULL) holds the very type the
     * application topic names. */
    assert_non_null(def->pipes[0].apps);
    assert_null(def->pipes[1].apps);
    assert_ptr_equal(def->pipes[0].apps[0], resolve_app("user_counters:Counters", env));
    assert_null(def->pipes[0].apps[1]);

    esg_system *system = NULL;
    assert_esg_ok(esg_system_new(def, &system, &err), &err);
    size_t n = 0;
    const char *const *names = esg_system_nodes(system, &n);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "Counters");
    names = esg_system_singles(system, &n);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "Counters");
    esg_system_free(system);

    esg_env *app_env = topic_env(NULL);
    esg_local_runner *runner = NULL;
    assert_esg_ok(esg_local_runner_start(def, app_env, &runner, &err), &err);
    esg_application *app = esg_local_runner_get(runner, "Counters");
    assert_non_null(app);
    exercise_counters(app);
    assert_null(esg_local_runner_error(runner));
    esg_local_runner_stop(runner);
    esg_env_free(app_env);
    esg_env_free(env);
}

/* ---- Threads ------------------------------------------------------------------------ */

#define N_THREADS 8
#define N_RESOLVES 40

typedef struct resolver {
    const esg_env *env;                            /* shared, read only */
    const esg_application_type *types[N_RESOLVES]; /* what each resolve gave */
    const esg_system_def *defs[N_RESOLVES];
    esg_status failed_rc[N_RESOLVES]; /* of a lookup that must fail */
} resolver;

/* Records outcomes only: cmocka's asserts are for the main thread. */
static void *run_resolver(void *arg)
{
    resolver *r = arg;
    for (int i = 0; i < N_RESOLVES; i++) {
        esg_error err = {0};
        if (esg_topic_resolve_application("user_counters:Counters", r->env, &r->types[i], &err) !=
            ESG_OK)
            r->types[i] = NULL;
        if (esg_topic_resolve_system("user_counters:system", r->env, &r->defs[i], &err) != ESG_OK)
            r->defs[i] = NULL;
        const esg_application_type *missing = NULL;
        r->failed_rc[i] =
            esg_topic_resolve_application("user_counters:Missing", r->env, &missing, &err);
    }
    return NULL;
}

static void test_concurrent_resolution(void **state)
{
    (void)state;
    esg_env *env = topic_env(ESG_TEST_PLUGIN_DIR);
    resolver *resolvers = calloc(N_THREADS, sizeof *resolvers);
    pthread_t threads[N_THREADS];
    assert_non_null(resolvers);
    for (int t = 0; t < N_THREADS; t++) {
        resolvers[t].env = env;
        assert_int_equal(pthread_create(&threads[t], NULL, run_resolver, &resolvers[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    const esg_application_type *type = resolve_app("user_counters:Counters", env);
    const esg_system_def *def = resolve_system("user_counters:system", env);
    for (int t = 0; t < N_THREADS; t++) {
        for (int i = 0; i < N_RESOLVES; i++) {
            assert_ptr_equal(resolvers[t].types[i], type);
            assert_ptr_equal(resolvers[t].defs[i], def);
            assert_int_equal(resolvers[t].failed_rc[i], ESG_ENOTFOUND);
        }
    }
    free(resolvers);
    esg_env_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_topics_resolve),
        cmocka_unit_test(test_builtin_kind_mismatch_is_not_found),
        cmocka_unit_test(test_malformed_topics_are_invalid),
        cmocka_unit_test(test_unknown_module_is_not_found),
        cmocka_unit_test(test_unknown_name_in_module_is_not_found),
        cmocka_unit_test(test_broken_library_is_reported),
        cmocka_unit_test(test_search_path_and_lib_prefix),
        cmocka_unit_test(test_process_environment_is_the_default),
        cmocka_unit_test(test_plugin_application_works),
        cmocka_unit_test(test_plugin_system_runs),
        cmocka_unit_test(test_concurrent_resolution),
    };
    return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
