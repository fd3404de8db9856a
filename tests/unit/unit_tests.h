/* The unit tests of the core, one group per module (test_<group>.c), declared here and listed
 * once in unit_tests.c, as libuv lists its tests in test/test-list.h. */
#ifndef ESG_TESTS_UNIT_TESTS_H
#define ESG_TESTS_UNIT_TESTS_H

/* test_error.c */
void test_set_returns_status_and_formats(void **state);
void test_set_accepts_null_and_truncates(void **state);
void test_status_names(void **state);

/* test_env.c */
void test_set_get_replace_unset(void **state);
void test_lookup_prefers_the_application_prefix(void **state);
void test_from_process_and_copy(void **state);
void test_near_misses_of_settings_are_found(void **state);

/* test_log.c */
void test_levels_streams_and_prefixed_settings(void **state);
void test_bad_values_are_refused_naming_the_key(void **state);
void test_json_lines_stay_one_object_per_line(void **state);

/* test_metrics.c */
void test_histogram_buckets_are_cumulative(void **state);
void test_label_values_are_escaped(void **state);
void test_histograms_count_every_thread(void **state);
void test_process_families(void **state);
void test_malloc_families_follow_the_heap(void **state);

/* test_uuid.c */
void test_uuid5_url_matches_the_reference(void **state);
void test_uuid4_is_random_version_4(void **state);
void test_parse_accepts_python_forms(void **state);
void test_parse_refuses_bad_text(void **state);

/* test_datetime.c */
void test_isoformat_forms(void **state);
void test_refuses_bad_text(void **state);
void test_now_is_utc_and_close_to_time(void **state);
void test_unix_time_applies_offsets(void **state);

/* test_value.c */
void test_object_order_replace_take(void **state);
void test_append_takes_ownership_even_when_refused(void **state);
void test_accessors_return_zero_for_other_types(void **state);
void test_copy_and_equal(void **state);
void test_decimal_canonical_text(void **state);

/* test_json.c */
void test_floats_like_python_repr(void **state);
void test_non_finite_floats_are_refused(void **state);
void test_strings_escape_like_python(void **state);
void test_invalid_utf8_is_refused(void **state);
void test_decode_custom_types_and_roundtrip(void **state);
void test_duplicate_keys_last_wins_in_first_place(void **state);
void test_decode_errors_are_clear(void **state);
void test_depth_is_limited_both_ways(void **state);
void test_scalars_and_nul_in_strings(void **state);
void test_strings_must_be_unicode(void **state);
void test_functions_are_found_or_named(void **state);
void test_repeated_keys_in_big_objects(void **state);
void test_numbers_at_their_limits(void **state);

/* test_transcoding_vectors.c */
void test_every_encoded_text_roundtrips(void **state);
void test_values_built_in_c_encode_like_python(void **state);
void test_decode_vectors(void **state);
void test_method_call_payloads_roundtrip(void **state);

/* test_domain.c */
void test_create_trigger_collect(void **state);
void test_failed_trigger_changes_nothing(void **state);
void test_replay_refuses_bad_sequences(void **state);

/* test_stored_events_vectors.c */
void test_events_built_in_c_store_like_python(void **state);
void test_recorded_events_decode_and_store_unchanged(void **state);
void test_state_that_is_not_an_event_is_refused(void **state);

/* test_mapper.c */
void test_aes_gcm_bytes_are_the_reference_ones(void **state);
void test_damaged_or_foreign_ciphertext_is_a_data_error(void **state);
void test_keys_python_refuses_are_refused(void **state);
void test_zlib_bytes_are_the_reference_ones(void **state);
void test_a_decompression_bomb_is_refused(void **state);
void test_the_mapper_reads_what_python_stored(void **state);
void test_compressed_state_without_the_compressor_says_so(void **state);
void test_settings_are_honoured_or_refused(void **state);
int mapper_group_setup(void **state);
int mapper_group_teardown(void **state);

/* test_fields.c */
void test_struct_round_trips_every_kind(void **state);
void test_optional_fields_take_none_and_values(void **state);
void test_wrong_types_are_named(void **state);
void test_tables_that_do_not_fit_are_refused(void **state);
void test_transcodings_register_and_round_trip(void **state);
void test_set_string_replaces_and_copies(void **state);

#endif
