/* Runs the unit tests: `unit_tests GROUP...` runs the named groups, `unit_tests` all of them.
 * CTest registers one run per group, named test_GROUP. Every test is listed once, here. */
#include "testutil.h"
#include "unit_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A test and the group it belongs to. */
typedef struct {
    const char *group;      /* the module's name, as on the command line */
    struct CMUnitTest test; /* cmocka's entry: the function and its name */
} unit_test;

static const unit_test all_tests[] = {
    {"error", cmocka_unit_test(test_set_returns_status_and_formats)},
    {"error", cmocka_unit_test(test_set_accepts_null_and_truncates)},
    {"error", cmocka_unit_test(test_status_names)},
    {"env", cmocka_unit_test(test_set_get_replace_unset)},
    {"env", cmocka_unit_test(test_lookup_prefers_the_application_prefix)},
    {"env", cmocka_unit_test(test_from_process_and_copy)},
    {"env", cmocka_unit_test(test_near_misses_of_settings_are_found)},
    {"log", cmocka_unit_test(test_levels_streams_and_prefixed_settings)},
    {"log", cmocka_unit_test(test_bad_values_are_refused_naming_the_key)},
    {"log", cmocka_unit_test(test_json_lines_stay_one_object_per_line)},
    {"metrics", cmocka_unit_test(test_histogram_buckets_are_cumulative)},
    {"metrics", cmocka_unit_test(test_label_values_are_escaped)},
    {"metrics", cmocka_unit_test(test_histograms_count_every_thread)},
    {"metrics", cmocka_unit_test(test_process_families)},
    {"metrics", cmocka_unit_test(test_malloc_families_follow_the_heap)},
    {"uuid", cmocka_unit_test(test_uuid5_url_matches_the_reference)},
    {"uuid", cmocka_unit_test(test_uuid4_is_random_version_4)},
    {"uuid", cmocka_unit_test(test_parse_accepts_python_forms)},
    {"uuid", cmocka_unit_test(test_parse_refuses_bad_text)},
    {"datetime", cmocka_unit_test(test_isoformat_forms)},
    {"datetime", cmocka_unit_test(test_refuses_bad_text)},
    {"datetime", cmocka_unit_test(test_now_is_utc_and_close_to_time)},
    {"datetime", cmocka_unit_test(test_unix_time_applies_offsets)},
    {"value", cmocka_unit_test(test_object_order_replace_take)},
    {"value", cmocka_unit_test(test_append_takes_ownership_even_when_refused)},
    {"value", cmocka_unit_test(test_accessors_return_zero_for_other_types)},
    {"value", cmocka_unit_test(test_copy_and_equal)},
    {"value", cmocka_unit_test(test_decimal_canonical_text)},
    {"json", cmocka_unit_test(test_floats_like_python_repr)},
    {"json", cmocka_unit_test(test_non_finite_floats_are_refused)},
    {"json", cmocka_unit_test(test_strings_escape_like_python)},
    {"json", cmocka_unit_test(test_invalid_utf8_is_refused)},
    {"json", cmocka_unit_test(test_decode_custom_types_and_roundtrip)},
    {"json", cmocka_unit_test(test_duplicate_keys_last_wins_in_first_place)},
    {"json", cmocka_unit_test(test_decode_errors_are_clear)},
    {"json", cmocka_unit_test(test_depth_is_limited_both_ways)},
    {"json", cmocka_unit_test(test_scalars_and_nul_in_strings)},
    {"dynamic_library", cmocka_unit_test(test_functions_are_found_or_named)},
    {"json", cmocka_unit_test(test_strings_must_be_unicode)},
    {"json", cmocka_unit_test(test_repeated_keys_in_big_objects)},
    {"json", cmocka_unit_test(test_numbers_at_their_limits)},
    {"transcoding_vectors", cmocka_unit_test(test_every_encoded_text_roundtrips)},
    {"transcoding_vectors", cmocka_unit_test(test_values_built_in_c_encode_like_python)},
    {"transcoding_vectors", cmocka_unit_test(test_decode_vectors)},
    {"transcoding_vectors", cmocka_unit_test(test_method_call_payloads_roundtrip)},
    {"domain", cmocka_unit_test(test_create_trigger_collect)},
    {"domain", cmocka_unit_test(test_failed_trigger_changes_nothing)},
    {"domain", cmocka_unit_test(test_replay_refuses_bad_sequences)},
    {"stored_events_vectors", cmocka_unit_test(test_events_built_in_c_store_like_python)},
    {"stored_events_vectors", cmocka_unit_test(test_recorded_events_decode_and_store_unchanged)},
    {"stored_events_vectors", cmocka_unit_test(test_state_that_is_not_an_event_is_refused)},
    {"mapper", cmocka_unit_test(test_aes_gcm_bytes_are_the_reference_ones)},
    {"mapper", cmocka_unit_test(test_damaged_or_foreign_ciphertext_is_a_data_error)},
    {"mapper", cmocka_unit_test(test_keys_python_refuses_are_refused)},
    {"mapper", cmocka_unit_test(test_zlib_bytes_are_the_reference_ones)},
    {"mapper", cmocka_unit_test(test_a_decompression_bomb_is_refused)},
    {"mapper", cmocka_unit_test(test_the_mapper_reads_what_python_stored)},
    {"mapper", cmocka_unit_test(test_compressed_state_without_the_compressor_says_so)},
    {"mapper", cmocka_unit_test(test_settings_are_honoured_or_refused)},
    {"fields", cmocka_unit_test(test_struct_round_trips_every_kind)},
    {"fields", cmocka_unit_test(test_optional_fields_take_none_and_values)},
    {"fields", cmocka_unit_test(test_wrong_types_are_named)},
    {"fields", cmocka_unit_test(test_tables_that_do_not_fit_are_refused)},
    {"fields", cmocka_unit_test(test_transcodings_register_and_round_trip)},
    {"fields", cmocka_unit_test(test_set_string_replaces_and_copies)},
};

/* The groups that share a fixture (the others have none). A group is a name of all_tests; the
 * groups run in the order of their first test. */
typedef struct {
    const char *name;           /* as on the command line and in all_tests */
    CMFixtureFunction setup;    /* before the group's first test */
    CMFixtureFunction teardown; /* after its last test */
} group_fixture;

static const group_fixture fixtures[] = {
    {"mapper", mapper_group_setup, mapper_group_teardown},
};

#define N_ITEMS(array) (sizeof(array) / sizeof((array)[0]))

/* Runs the tests of group name (there is at least one); returns cmocka's count of failed tests
 * (or 1 when out of memory). */
static int run_group(const char *name)
{
    struct CMUnitTest *tests = calloc(N_ITEMS(all_tests), sizeof *tests);
    if (tests == NULL) {
        fprintf(stderr, "unit_tests: out of memory\n");
        return 1;
    }
    size_t n_tests = 0;
    for (size_t i = 0; i < N_ITEMS(all_tests); i++)
        if (strcmp(all_tests[i].group, name) == 0)
            tests[n_tests++] = all_tests[i].test;
    const group_fixture *fixture = NULL;
    for (size_t i = 0; i < N_ITEMS(fixtures); i++)
        if (strcmp(fixtures[i].name, name) == 0)
            fixture = &fixtures[i];
    /* The function behind cmocka_run_group_tests_name, which needs an array of fixed size. */
    int n_failed = _cmocka_run_group_tests(name, tests, n_tests, fixture ? fixture->setup : NULL,
                                           fixture ? fixture->teardown : NULL);
    free(tests);
    return n_failed;
}

/* The index of the first test of group name, or N_ITEMS(all_tests) when it has none. */
static size_t first_test_of(const char *name)
{
    size_t i = 0;
    while (i < N_ITEMS(all_tests) && strcmp(all_tests[i].group, name) != 0)
        i++;
    return i;
}

int main(int argc, char **argv)
{
    int n_failed = 0;
    if (argc == 1) {
        for (size_t i = 0; i < N_ITEMS(all_tests); i++)
            if (first_test_of(all_tests[i].group) == i)
                n_failed += run_group(all_tests[i].group);
        return n_failed == 0 ? 0 : 1;
    }
    for (int i = 1; i < argc; i++) {
        if (first_test_of(argv[i]) == N_ITEMS(all_tests)) {
            fprintf(stderr, "unit_tests: no group '%s'\n", argv[i]);
            return 2;
        }
        n_failed += run_group(argv[i]);
    }
    return n_failed == 0 ? 0 : 1;
}
