/* Helpers shared by the test programs: cmocka, the vectors copied from the
 * Python reference (tests/vectors), hex, and temporary folders. */
#ifndef ESG_TESTUTIL_H
#define ESG_TESTUTIL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <cmocka.h>
#include <jansson.h>

#include "esg.h"
#include "esg/example.h"
#include "core/clock.h" /* esg_clock_now_ms, esg_clock_sleep_ms for waits in tests */

/* Loads tests/vectors/<name> as a jansson tree (the caller json_decref's it);
 * fails the test when it cannot. */
json_t *testutil_load_vector(const char *name);

/* Decodes lowercase or uppercase hex into a malloc'ed buffer (NUL-terminated,
 * the NUL not counted in *len); fails the test on bad hex. */
uint8_t *testutil_unhex(const char *hex, size_t *len);

/* A method (esg_method_fn) count() -> how many notifications app has recorded: what test
 * applications answer to see what a write or a follower did. */
esg_status testutil_count_method(esg_application *app, esg_value *const *params, esg_value **result,
                                 esg_error *err);

/* The value of JSON text (failing the test when it does not decode): the caller frees it. */
esg_value *testutil_json_value(const char *json);

/* Whether text's bytes (its NUL not counted) occur anywhere in data (borrowed, len bytes). */
bool testutil_has_bytes(const uint8_t *data, size_t len, const char *text);

/* Asserts that a call returned ESG_OK, printing the error message when not. */
#define assert_esg_ok(call, err_ptr)                                                               \
    do {                                                                                           \
        esg_status rc_ = (call);                                                                   \
        if (rc_ != ESG_OK)                                                                         \
            fail_msg("%s failed: %s: %s", #call, esg_status_name(rc_), (err_ptr)->message);        \
    } while (0)

/* This process's environment with settings ("KEY=value", n of them) in place of the entries of
 * the same keys and without the keys of unset (n_unset names, may be NULL), for a child's execve
 * or posix_spawn: a calloc'ed array (free it) of borrowed strings, NULL-terminated. */
char **testutil_environment_with(const char *const *settings, size_t n, const char *const *unset,
                                 size_t n_unset);

/* Starts argv (argv[0] a path, or a name looked up on PATH) with this process's environment as
 * testutil_environment_with makes it, stdin from /dev/null, stdout and stderr appended to
 * log_path, and files (may be NULL) as its RLIMIT_NOFILE. The child is killed when the thread
 * that started it ends (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. Fails the
 * test when it cannot start; returns the pid. */
pid_t testutil_spawn(char *const *argv, const char *log_path, const char *const *settings, size_t n,
                     const char *const *unset, size_t n_unset, const struct rlimit *files);

/* A new empty folder under $TMPDIR (or /tmp), malloc'ed path; removed with
 * testutil_remove_tree. */
char *testutil_make_temp_dir(void);
void testutil_remove_tree(const char *path);

/* Removes the folder of testutil_make_temp_dir and frees its path (taken); NULL does nothing. */
void testutil_discard_temp_dir(char *dir);

/* A new random (version 4) UUID, by value. */
esg_uuid testutil_random_uuid(void);

/* Waits up to timeout_ms for pid to exit: true, with its wait status in *status, when it did. */
bool testutil_reap(pid_t pid, int64_t timeout_ms, int *status);

/* Fills ports[0..n) (n <= 16, the caller's array) with distinct loopback TCP ports that were free
 * a moment ago: all bound at once, then released. */
void testutil_free_ports(int *ports, size_t n);

/* Everything fd gives until its end, malloc'ed and NUL-terminated. */
char *testutil_read_all(int fd);

/* The body of an HTTP/1.0 GET of path from 127.0.0.1:port (malloc'ed, NUL-terminated); fails
 * the test when the server cannot be reached or does not answer 200. */
char *testutil_http_get(int port, const char *path);

/* The value of the Prometheus sample line of text that starts with prefix (the metric's name
 * and labels, then a space), or -1 when there is none. */
double testutil_sample_value(const char *text, const char *prefix);
/* The sum of the values of text's sample lines that start with prefix (a metric's name and the
 * first of its labels, say), or -1 when there is none. */
double testutil_sample_sum(const char *text, const char *prefix);

/* ---- Fixtures, environments and command lines ---- */

/* The fixture of tests that need a fresh folder and an empty environment. */
typedef struct testutil_fixture {
    char *temp_dir; /* from testutil_make_temp_dir; removed and freed by testutil_teardown */
    esg_env *env;   /* empty at first; freed by testutil_teardown */
} testutil_fixture;

/* A cmocka setup: *state becomes a new testutil_fixture, owned by the test until
 * testutil_teardown (its cmocka teardown) removes the folder and frees the fixture. */
int testutil_setup(void **state);
int testutil_teardown(void **state);

/* A new empty environment, asserted not NULL: the caller esg_env_free's it. */
esg_env *testutil_env_new(void);

/* esg_env_set on env (borrowed; key and value are copied), failing the test when it fails. */
void testutil_env_set(esg_env *env, const char *key, const char *value);

/* Sets PERSISTENCE_MODULE=eventsourcing.sqlite in env (borrowed) and puts the application
 * app_name in the SQLite file path (<APP_NAME>_SQLITE_DBNAME); the strings are copied. */
void testutil_env_use_sqlite(esg_env *env, const char *app_name, const char *path);

/* Sets PERSISTENCE_MODULE=eventsourcing.postgres and the server's POSTGRES_HOST, _PORT,
 * _DBNAME, _USER and _PASSWORD from the process environment (each must be set: the test's
 * PostgreSQL server, as scripts/postgres-test-server.sh run provides it). */
void testutil_env_use_postgres(esg_env *env);

/* testutil_env_use_sqlite for each of the n app_names (borrowed), at <dir>/<app_name>.db. */
void testutil_env_use_sqlite_dir(esg_env *env, const char *dir, const char *const *app_names,
                                 size_t n);

/* The index in names (n of them, borrowed) of the one argument of a program that runs once per
 * backend ("prog sqlite"), or -1 after printing a usage line to stderr. */
int testutil_backend_from_args(int argc, char **argv, const char *const *names, size_t n);

/* Runs the n_tests tests as the group "<title> (<backend>)" for the backend the program's one
 * argument names, one of names (n_names, borrowed), whose index it stores in *backend first;
 * 2 after a usage line when the argument is not one of them. */
int testutil_run_per_backend(int argc, char **argv, const char *title, const char *const *names,
                             size_t n_names, int *backend, const struct CMUnitTest *tests,
                             size_t n_tests);
#define TESTUTIL_RUN_PER_BACKEND(argc, argv, title, names, backend, tests)                         \
    testutil_run_per_backend((argc), (argv), (title), (names), sizeof(names) / sizeof((names)[0]), \
                             (backend), (tests), sizeof(tests) / sizeof((tests)[0]))

/* Runs fn on n threads, the i-th with args + i * size, started together (each waits at a
 * barrier until all are up, so that they meet in what they race for), and joins them. */
void testutil_run_together(size_t n, void *(*fn)(void *), void *args, size_t size);

/* The largest notification id in the log of app (borrowed), 0 when empty; fails the test when
 * the recorder fails. */
int64_t testutil_max_notification_id(esg_application *app);

/* The last notification of leader that app (borrowed) has processed, 0 when none; fails the test
 * when the recorder fails. */
int64_t testutil_max_tracking_id(esg_application *app, const char *leader);

/* ---- The example system's orders (the tests' own copy of the rules, as an oracle) ---- */

/* [id] as positional arguments (the caller frees them). */
esg_value *testutil_id_args(const esg_uuid *id);

/* A method's result, asserted to be a UUID (or a bool), freed; returns its value. */
esg_uuid testutil_take_uuid(esg_value *result);
bool testutil_take_bool(esg_value *result);

/* uuid5(NAMESPACE_URL, "/<kind>/<order id>/"), as the example derives the ids of an order's
 * reservation ("reservation") and payment ("payment"). */
esg_uuid testutil_derived_id(const char *kind, const esg_uuid *order_id);

/* Asserts that log (borrowed) is the whole log of Orders after one order: Order.Created,
 * Order.Reserved and Order.Paid of order_id, notifications 1 to 3, versions 1 to 3. */
void testutil_assert_one_order_log(const esg_notification_list *log, const esg_uuid *order_id);

#endif
