/* Libraries loaded at run time (core/dynamic_library.h): what is found, and the reason when a
 * library or one of its functions is not. zlib stands in for libpq and libmicrohttpd. */
#include "testutil.h"
#include "unit_tests.h"

#include <string.h>

#include "core/dynamic_library.h"

void test_functions_are_found_or_named(void **state)
{
    (void)state;
    char why[256] = "";
    void *found[2] = {NULL, NULL};
    const char *const present[] = {"zlibVersion", "crc32"};
    assert_true(esg_dynamic_library_load("libz.so.1", present, found, 2, why, sizeof why));
    assert_non_null(found[0]);
    assert_non_null(found[1]);

    const char *const one_missing[] = {"zlibVersion", "no_such_function"};
    assert_false(esg_dynamic_library_load("libz.so.1", one_missing, found, 2, why, sizeof why));
    assert_non_null(strstr(why, "libz.so.1 has no no_such_function"));

    assert_false(
        esg_dynamic_library_load("libno-such-library.so.7", present, found, 2, why, sizeof why));
    assert_non_null(strstr(why, "libno-such-library.so.7"));
}
