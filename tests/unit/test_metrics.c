/* Tests of the metrics' text format: histograms (cumulative buckets, sum, count, from many
 * threads at once), label values escaped as the format says, and the process families. */
#include "testutil.h"
#include "unit_tests.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/metrics.h"

void test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    esg_histogram h = {0};
    esg_histogram_observe(&h, 0.00005);
    esg_histogram_observe(&h, 0.003);
    esg_histogram_observe(&h, 20);
    esg_histogram_observe(&h, -1); /* a clock step backwards counts as 0 */
    assert_int_equal(esg_histogram_count(&h), 4);
    esg_buffer out = {0};
    const char *labels[] = {"application", "Orders", NULL};
    esg_metrics_family(&out, "x_seconds", "histogram", "Some durations.");
    esg_metrics_histogram(&out, "x_seconds", labels, &h);
    char *text = esg_buffer_take(&out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "# HELP x_seconds Some durations.\n# TYPE x_seconds histogram\n"));
    assert_true(
        testutil_sample_value(text, "x_seconds_bucket{application=\"Orders\",le=\"0.0001\"}") == 2);
    assert_true(
        testutil_sample_value(text, "x_seconds_bucket{application=\"Orders\",le=\"0.0025\"}") == 2);
    assert_true(
        testutil_sample_value(text, "x_seconds_bucket{application=\"Orders\",le=\"0.005\"}") == 3);
    assert_true(testutil_sample_value(text, "x_seconds_bucket{application=\"Orders\",le=\"10\"}") ==
                3);
    assert_true(
        testutil_sample_value(text, "x_seconds_bucket{application=\"Orders\",le=\"+Inf\"}") == 4);
    assert_true(testutil_sample_value(text, "x_seconds_count{application=\"Orders\"}") == 4);
    double sum = testutil_sample_value(text, "x_seconds_sum{application=\"Orders\"}");
    assert_true(sum > 20.003 && sum < 20.0031);
    esg_free(text);
}

void test_label_values_are_escaped(void **state)
{
    (void)state;
    esg_buffer out = {0};
    const char *labels[] = {"leader", "a\"b\\c\nd", "other", "", NULL};
    esg_metrics_sample(&out, "y_total", labels, 3);
    esg_metrics_sample(&out, "z", NULL, 0.25);
    char *text = esg_buffer_take(&out, NULL);
    assert_string_equal(text, "y_total{leader=\"a\\\"b\\\\c\\nd\",other=\"\"} 3\nz 0.25\n");
    esg_free(text);
}

typedef struct {
    esg_histogram *h;
} observer;

static void *observe_many(void *arg)
{
    observer *o = arg;
    for (int i = 0; i < 10000; i++)
        esg_histogram_observe(o->h, (double)(i % 100) / 1000.0);
    return NULL;
}

void test_histograms_count_every_thread(void **state)
{
    (void)state;
    esg_histogram h = {0};
    pthread_t threads[4];
    observer o = {&h};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, observe_many, &o), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(esg_histogram_count(&h), 40000);
}

void test_process_families(void **state)
{
    (void)state;
    esg_buffer out = {0};
    esg_metrics_process(&out);
    char *text = esg_buffer_take(&out, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_true(testutil_sample_value(text, "process_cpu_seconds_total") >= 0);
    assert_true(testutil_sample_value(text, "process_resident_memory_bytes") > 1e5);
    assert_true(testutil_sample_value(text, "process_virtual_memory_bytes") > 1e5);
    assert_true(testutil_sample_value(text, "process_open_fds") >= 3); /* stdin, stdout, stderr */
    assert_true(testutil_sample_value(text, "process_max_fds") >=
                testutil_sample_value(text, "process_open_fds"));
    /* This process started in the last hour. */
    double started = testutil_sample_value(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(started <= now + 1 && started > now - 3600);
    esg_free(text);
}

/* The malloc figures of the process families, read from text written now. */
static double malloc_in_use(void)
{
    esg_buffer out = {0};
    esg_metrics_process(&out);
    char *text = esg_buffer_take(&out, NULL);
    assert_non_null(text);
    double in_use = testutil_sample_value(text, "eventsourcing_malloc_in_use_bytes");
    double held_free = testutil_sample_value(text, "eventsourcing_malloc_free_bytes");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizer's allocator is not glibc's: the families are left out. */
    assert_true(in_use == -1 && held_free == -1);
#else
    assert_true(in_use > 0 && held_free >= 0);
#endif
    esg_free(text);
    return in_use;
}

void test_malloc_families_follow_the_heap(void **state)
{
    (void)state;
    double before = malloc_in_use();
    /* Blocks under glibc's mmap threshold, so that they come from an arena. */
    enum { N_BLOCKS = 256, BLOCK_BYTES = 32 * 1024 };
    char *blocks[N_BLOCKS];
    for (size_t i = 0; i < N_BLOCKS; i++) {
        blocks[i] = malloc(BLOCK_BYTES);
        assert_non_null(blocks[i]);
        memset(blocks[i], (int)i, BLOCK_BYTES);
    }
    double during = malloc_in_use();
    for (size_t i = 0; i < N_BLOCKS; i++)
        free(blocks[i]);
    double after = malloc_in_use();
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    assert_true(during - before >= (double)N_BLOCKS * BLOCK_BYTES);
    assert_true(during - after >= (double)N_BLOCKS * BLOCK_BYTES);
#else
    (void)before, (void)during, (void)after;
#endif
}
