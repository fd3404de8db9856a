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

/* Waits up to timeout_ms for pid to exit: true, with its wait status in *status, when it did. */
bool testutil_reap(pid_t pid, int64_t timeout_ms, int *status);

/* ---- The example system's orders (the tests' own copy of the rules, as an oracle) ---- */

/* [id] as positional arguments (the caller frees them). */
esg_value *testutil_id_args(const esg_uuid *id);

/* A method's result, asserted to be a UUID (or a bool), freed; returns its value. */
esg_uuid testutil_take_uuid(esg_value *result);
bool testutil_take_bool(esg_value *result);

/* uuid5(NAMESPACE_URL, "/<kind>/<order id>/"), as the example derives the ids of an order's
 * reservation ("reservation") and payment ("payment"). */
esg_uuid testutil_derived_id(const char *kind, const esg_uuid *order_id);

#endif
