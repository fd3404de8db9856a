/* Load held over time by the example system as a deployment runs it: three
 * eventsourcing_grpc_server processes on SQLite files, and many client threads each calling
 * create_new_order and get_order (and is_order_paid) as fast as they can for a duration. Every
 * call must succeed; afterwards every order is reserved and paid exactly once, no event is lost
 * (the invariants of test_chaos), every server exits cleanly (under the sanitizers: no leak), and
 * the resident memory of each server, sampled from /proc/PID/status, stays flat: after a warm-up
 * (the first quarter), the highest sample of the last third is within RSS_GROWTH_PERCENT of the
 * highest of the first third, plus RSS_SLACK_KIB (asserted in plain builds only; the sanitizers'
 * allocators keep freed memory on purpose). Beside the RSS, each server's metrics give SQLite's
 * memory, its recorder's connections and its lag behind its leaders, printed with the curve of
 * each server's RSS. For a long run's figures the test also prints, of the RSS, of its part not
 * backed by files (RssAnon: without the libraries' pages), of the RSS less SQLite's memory and of
 * what the server holds from malloc (its metrics, from mallinfo2), the thirds' maxima and medians
 * and the trend of a least-squares line: a leak moves all three, a short peak only the maxima.
 *
 * ESG_SOAK_SECONDS (20), ESG_SOAK_CLIENTS (16), ESG_SOAK_QUIET_SECONDS (120, 300 with sanitizers:
 * the longest wait, after the load, for every order to be paid), ESG_SOAK_VALGRIND=PREFIX (servers
 * run under valgrind memcheck, reports in PREFIX.<App>.1; exit code 99 on a memory error or a
 * definite leak). The long form:
 *   ESG_SOAK_SECONDS=3600 build/tests/chaos/test_soak */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_servers.h"

#ifndef ESG_SERVER_PROGRAM
#error "ESG_SERVER_PROGRAM must name eventsourcing_grpc_server"
#endif

#define MAX_CLIENTS 64
#define RSS_GROWTH_PERCENT 10
#define RSS_SLACK_KIB 8192
#define SAMPLE_MS 250

typedef struct soak_client {
    pthread_t thread;
    const example_servers *servers;
    int64_t deadline_ms;
    esg_uuid *ids; /* orders created, acknowledged */
    size_t n_ids, capacity;
    size_t n_calls;
    size_t n_errors;
    char first_error[ESG_ERROR_MESSAGE_SIZE + 64];
} soak_client;

static void note_error(soak_client *c, const char *method, esg_status rc, const esg_error *err)
{
    if (c->n_errors++ == 0)
        snprintf(c->first_error, sizeof c->first_error, "%s: %s: %s", method, esg_status_name(rc),
                 err->message);
}

static void *run_client(void *arg)
{
    soak_client *c = arg;
    esg_client *client = example_connect(c->servers, EXAMPLE_ORDERS, 10);
    if (client == NULL) {
        c->n_errors++;
        snprintf(c->first_error, sizeof c->first_error, "cannot connect to Orders");
        return NULL;
    }
    while (esg_clock_now_ms() < c->deadline_ms) {
        esg_error err = {0};
        esg_value *result = NULL;
        esg_status rc = esg_client_call(client, "create_new_order", NULL, NULL, &result, &err);
        c->n_calls++;
        if (rc != ESG_OK || esg_value_as_uuid(result) == NULL) {
            note_error(c, "create_new_order", rc, &err);
            esg_value_free(result);
            continue;
        }
        if (c->n_ids == c->capacity) {
            c->capacity = c->capacity == 0 ? 1024 : 2 * c->capacity;
            c->ids = realloc(c->ids, c->capacity * sizeof *c->ids);
            if (c->ids == NULL)
                abort();
        }
        c->ids[c->n_ids++] = *esg_value_as_uuid(result);
        esg_value_free(result);

        /* Read it back, and ask whether an older one is paid yet. */
        esg_value *args = esg_value_array();
        esg_array_append(args, esg_value_uuid(&c->ids[c->n_ids - 1]));
        esg_value *order = NULL;
        rc = esg_client_call(client, "get_order", args, NULL, &order, &err);
        c->n_calls++;
        const esg_value *id = rc == ESG_OK ? esg_object_get(order, "id") : NULL;
        if (rc != ESG_OK || id == NULL || esg_value_as_uuid(id) == NULL ||
            !esg_uuid_equal(esg_value_as_uuid(id), &c->ids[c->n_ids - 1]))
            note_error(c, "get_order", rc, &err);
        esg_value_free(order);
        esg_value_free(args);
        if (c->n_ids % 8 == 0) {
            args = esg_value_array();
            esg_array_append(args, esg_value_uuid(&c->ids[c->n_ids / 2]));
            esg_value *is_paid = NULL;
            rc = esg_client_call(client, "is_order_paid", args, NULL, &is_paid, &err);
            c->n_calls++;
            if (rc != ESG_OK)
                note_error(c, "is_order_paid", rc, &err);
            esg_value_free(is_paid);
            esg_value_free(args);
        }
    }
    esg_client_free(client);
    return NULL;
}

typedef struct fixture {
    example_servers servers;
    soak_client clients[MAX_CLIENTS];
    size_t n_clients;
    bool is_passed;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    return f != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->n_clients; i++)
        pthread_join(f->clients[i].thread, NULL);
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        free(f->clients[i].ids);
    example_servers_cleanup(&f->servers, !f->is_passed);
    free(f);
    return 0;
}

/* What a server is sampled for: its RSS and the part of it not backed by files (/proc: without
 * its libraries' pages, which fill in as code runs for the first time), and from its metrics
 * SQLite's memory in it, what it holds from malloc and what malloc keeps free for it (-1 under a
 * sanitizer), its recorder's connections and how many notifications it has yet to process of
 * its leaders'. */
typedef struct memory_sample {
    int64_t at_ms, rss_kib, rss_anon_kib, sqlite_kib, malloc_in_use_kib, malloc_free_kib;
    int64_t n_connections, lag;
} memory_sample;

static int64_t kib_or_absent(double bytes)
{
    return bytes < 0 ? -1 : (int64_t)(bytes / 1024);
}

static memory_sample sample_memory(const example_servers *servers, size_t app)
{
    char connections[128], lag[128];
    snprintf(connections, sizeof connections,
             "eventsourcing_recorder_connections{application=\"%s\"}", example_app_names[app]);
    snprintf(lag, sizeof lag, "eventsourcing_follower_lag_notifications{application=\"%s\",",
             example_app_names[app]);
    char *metrics = example_servers_metrics(servers, app);
    memory_sample m = {
        .at_ms = esg_clock_now_ms(),
        .rss_kib = example_servers_status_kib(servers, app, "VmRSS"),
        .rss_anon_kib = example_servers_status_kib(servers, app, "RssAnon"),
        .sqlite_kib =
            (int64_t)testutil_sample_value(metrics, "eventsourcing_sqlite_memory_bytes") / 1024,
        .malloc_in_use_kib =
            kib_or_absent(testutil_sample_value(metrics, "eventsourcing_malloc_in_use_bytes")),
        .malloc_free_kib =
            kib_or_absent(testutil_sample_value(metrics, "eventsourcing_malloc_free_bytes")),
        .n_connections = (int64_t)testutil_sample_value(metrics, connections),
        .lag = (int64_t)testutil_sample_sum(metrics, lag)};
    free(metrics);
    return m;
}

/* The sample of highest RSS in [from, to), or from's when the range is empty. */
static size_t max_at(const memory_sample *samples, size_t from, size_t to)
{
    size_t at = from;
    for (size_t i = from; i < to; i++)
        if (samples[i].rss_kib > samples[at].rss_kib)
            at = i;
    return at;
}

/* What a sample is judged by: its RSS, the part of it not backed by files, its RSS less SQLite's
 * memory, or malloc's bytes in use or free. RSS less SQLite's memory leaves out SQLite's page
 * caches, bounded by cache_size (2 MiB a connection, SQLite's default) times the recorder's
 * connections, which fill as a connection reads and are dropped when another connection's commit
 * makes them stale. Malloc's bytes in use rise with the data the process keeps (a leak, a cache),
 * not with fragmentation, which raises the RSS and malloc's free bytes; SQLite allocates with
 * malloc too, and without its memory they are the program's own. */
typedef enum memory_measure {
    MEASURE_RSS,
    MEASURE_RSS_ANON,
    MEASURE_RSS_LESS_SQLITE,
    MEASURE_MALLOC_IN_USE,
    MEASURE_MALLOC_LESS_SQLITE,
    MEASURE_MALLOC_FREE
} memory_measure;

static double measure_of(const memory_sample *m, memory_measure measure)
{
    switch (measure) {
    case MEASURE_RSS:
        return (double)m->rss_kib;
    case MEASURE_RSS_ANON:
        return (double)m->rss_anon_kib;
    case MEASURE_RSS_LESS_SQLITE:
        return (double)(m->rss_kib - m->sqlite_kib);
    case MEASURE_MALLOC_IN_USE:
        return (double)m->malloc_in_use_kib;
    case MEASURE_MALLOC_LESS_SQLITE:
        return (double)(m->malloc_in_use_kib - m->sqlite_kib);
    case MEASURE_MALLOC_FREE:
        return (double)m->malloc_free_kib;
    }
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A measure's maximum and median over [from, to), both 0 when the range is empty. */
typedef struct memory_level {
    double max_kib, median_kib;
} memory_level;

static memory_level level_of(const memory_sample *samples, size_t from, size_t to,
                             memory_measure measure)
{
    memory_level level = {0, 0};
    if (to <= from)
        return level;
    double *values = malloc((to - from) * sizeof *values);
    assert_non_null(values);
    for (size_t i = from; i < to; i++)
        values[i - from] = measure_of(&samples[i], measure);
    qsort(values, to - from, sizeof *values, compare_doubles);
    level.max_kib = values[to - from - 1];
    level.median_kib = values[(to - from) / 2];
    free(values);
    return level;
}

/* The slope of the least-squares line through [from, to), in percent of the mean an hour. */
static double trend_percent_an_hour(const memory_sample *samples, size_t from, size_t to,
                                    memory_measure measure)
{
    if (to - from < 2)
        return 0;
    double mean_t = 0, mean_y = 0, n = (double)(to - from);
    for (size_t i = from; i < to; i++) {
        mean_t += (double)samples[i].at_ms / n;
        mean_y += measure_of(&samples[i], measure) / n;
    }
    double covariance = 0, variance = 0;
    for (size_t i = from; i < to; i++) {
        double dt = (double)samples[i].at_ms - mean_t;
        covariance += dt * (measure_of(&samples[i], measure) - mean_y);
        variance += dt * dt;
    }
    if (variance <= 0 || mean_y <= 0)
        return 0;
    return covariance / variance * 3600.0 * 1000.0 / mean_y * 100.0;
}

static double growth_percent(double first, double last)
{
    return first > 0 ? (last - first) / first * 100.0 : 0;
}

/* One measure's first third against its last third after the warm-up, by maximum and by median,
 * and its trend over the whole of it. */
static void print_memory_growth(const char *name, const char *what, const memory_sample *samples,
                                size_t warm, size_t third, size_t n_samples, memory_measure measure)
{
    memory_level first = level_of(samples, warm, warm + third, measure);
    memory_level last = level_of(samples, n_samples - third, n_samples, measure);
    print_message("%s %s, KiB, the first third after the warm-up -> the last: max %.0f -> %.0f "
                  "(%+.1f%%), median %.0f -> %.0f (%+.1f%%); trend %+.1f%% an hour\n",
                  name, what, first.max_kib, last.max_kib,
                  growth_percent(first.max_kib, last.max_kib), first.median_kib, last.median_kib,
                  growth_percent(first.median_kib, last.median_kib),
                  trend_percent_an_hour(samples, warm, n_samples, measure));
}

/* The highest RSS of each tenth from `from` on, with the rest of the sample that had it: a trend
 * and a late plateau, which the thirds' maxima cannot tell apart, look different here, and a
 * peak of SQLite's page caches (2 MiB a connection at most) or of pages of a leader's
 * notifications taken in at once (a follower behind) is told from the rest. */
static void print_rss_curve(const char *name, const memory_sample *samples, size_t from, size_t to)
{
    char line[1024] = "";
    size_t used = 0;
    for (size_t part = 0; part < 10 && used < sizeof line; part++) {
        size_t a = from + (to - from) * part / 10, b = from + (to - from) * (part + 1) / 10;
        if (b > a) {
            const memory_sample *m = &samples[max_at(samples, a, b)];
            used += (size_t)snprintf(
                line + used, sizeof line - used, " %lld (%lld, %lld, %lld, %lld, %lld)",
                (long long)m->rss_kib, (long long)m->sqlite_kib, (long long)m->malloc_in_use_kib,
                (long long)m->malloc_free_kib, (long long)m->n_connections, (long long)m->lag);
        }
    }
    print_message("%s, the highest RSS of each tenth after the warm-up, KiB (then: SQLite's "
                  "memory, malloc's in use and free, KiB; connections; notifications of its "
                  "leaders not yet processed):%s\n",
                  name, line);
}

/* The median of each tenth from `from` on of the RSS, of its part not backed by files, and of
 * malloc's in use and free: a heap that grows raises all but the last; fragmentation all but
 * malloc's in use; libraries' pages read in the RSS only. */
static void print_median_curve(const char *name, const memory_sample *samples, size_t from,
                               size_t to)
{
    char line[1024] = "";
    size_t used = 0;
    for (size_t part = 0; part < 10 && used < sizeof line; part++) {
        size_t a = from + (to - from) * part / 10, b = from + (to - from) * (part + 1) / 10;
        if (b > a)
            used += (size_t)snprintf(line + used, sizeof line - used, " %.0f (%.0f; %.0f, %.0f)",
                                     level_of(samples, a, b, MEASURE_RSS).median_kib,
                                     level_of(samples, a, b, MEASURE_RSS_ANON).median_kib,
                                     level_of(samples, a, b, MEASURE_MALLOC_IN_USE).median_kib,
                                     level_of(samples, a, b, MEASURE_MALLOC_FREE).median_kib);
    }
    print_message("%s, the median of each tenth after the warm-up, KiB: RSS (not backed by "
                  "files; malloc's in use, free):%s\n",
                  name, line);
}

static void test_many_clients_for_a_while(void **state)
{
    fixture *f = *state;
    int64_t seconds = example_env_int("ESG_SOAK_SECONDS", 20);
    size_t n_clients = (size_t)example_env_int("ESG_SOAK_CLIENTS", 16);
    const char *valgrind = getenv("ESG_SOAK_VALGRIND");
    if (valgrind != NULL && *valgrind == '\0')
        valgrind = NULL;
    assert_true(seconds >= 4 && n_clients >= 1 && n_clients <= MAX_CLIENTS);
    example_servers_init(&f->servers, EXAMPLE_SQLITE, ESG_SERVER_PROGRAM, 1);
    f->servers.max_pull_interval = "10"; /* the default: prompts do the work */
    f->servers.valgrind_log = valgrind;
    f->servers.has_metrics = true;
    if (valgrind != NULL)
        f->servers.ready_timeout_ms = 120000;
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++)
        example_servers_start(&f->servers, app);
    print_message("soak: %zu clients for %lld s%s\n", n_clients, (long long)seconds,
                  valgrind != NULL ? ", servers under valgrind" : "");

    int64_t started = esg_clock_now_ms();
    for (size_t i = 0; i < n_clients; i++) {
        soak_client *c = &f->clients[i];
        c->servers = &f->servers;
        c->deadline_ms = started + seconds * 1000;
        assert_int_equal(pthread_create(&c->thread, NULL, run_client, c), 0);
        f->n_clients++;
    }
    size_t max_samples = (size_t)(seconds * 1000 / SAMPLE_MS) + 8;
    memory_sample *memory[EXAMPLE_N_APPS];
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++) {
        memory[app] = calloc(max_samples, sizeof *memory[app]);
        assert_non_null(memory[app]);
    }
    size_t n_samples = 0;
    while (esg_clock_now_ms() < started + seconds * 1000 && n_samples < max_samples) {
        esg_clock_sleep_ms(SAMPLE_MS);
        example_servers_check_alive(&f->servers);
        for (size_t app = 0; app < EXAMPLE_N_APPS; app++)
            memory[app][n_samples] = sample_memory(&f->servers, app);
        n_samples++;
    }
    size_t n_orders = 0, n_calls = 0, n_errors = 0;
    for (size_t i = 0; i < f->n_clients; i++) {
        soak_client *c = &f->clients[i];
        pthread_join(c->thread, NULL);
        n_orders += c->n_ids;
        n_calls += c->n_calls;
        n_errors += c->n_errors;
        if (c->n_errors > 0)
            print_error("client %zu: %zu errors, the first: %s\n", i, c->n_errors, c->first_error);
    }
    size_t n_joined = f->n_clients;
    f->n_clients = 0;
    double elapsed_s = (double)(esg_clock_now_ms() - started) / 1000.0;
    print_message("%zu calls (%.0f/s), %zu orders created (%.0f/s), %zu errors\n", n_calls,
                  (double)n_calls / elapsed_s, n_orders, (double)n_orders / elapsed_s, n_errors);
    assert_int_equal(n_errors, 0);
    assert_true(n_orders > 0);

    /* Memory: after the warm-up, the last third against the first third. */
    size_t warm = n_samples / 4, third = (n_samples - warm) / 3;
    bool is_growing = false;
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++) {
        const char *name = example_app_names[app];
        double first = level_of(memory[app], warm, warm + third, MEASURE_RSS).max_kib;
        double last = level_of(memory[app], n_samples - third, n_samples, MEASURE_RSS).max_kib;
        double bound = first + first * RSS_GROWTH_PERCENT / 100 + RSS_SLACK_KIB;
        print_message("%s RSS: %lld KiB at the first sample, max %.0f KiB in the first third "
                      "after warm-up, max %.0f KiB in the last third (bound %.0f KiB)\n",
                      name, (long long)memory[app][0].rss_kib, first, last, bound);
        print_memory_growth(name, "RSS", memory[app], warm, third, n_samples, MEASURE_RSS);
        print_memory_growth(name, "RSS not backed by files", memory[app], warm, third, n_samples,
                            MEASURE_RSS_ANON);
        print_memory_growth(name, "RSS less SQLite's memory", memory[app], warm, third, n_samples,
                            MEASURE_RSS_LESS_SQLITE);
        if (memory[app][0].malloc_in_use_kib >= 0) {
            print_memory_growth(name, "malloc in use", memory[app], warm, third, n_samples,
                                MEASURE_MALLOC_IN_USE);
            print_memory_growth(name, "malloc in use less SQLite's memory", memory[app], warm,
                                third, n_samples, MEASURE_MALLOC_LESS_SQLITE);
        }
        print_rss_curve(name, memory[app], warm, n_samples);
        print_median_curve(name, memory[app], warm, n_samples);
        is_growing |= third > 0 && last > bound;
    }
    for (size_t app = 0; app < EXAMPLE_N_APPS; app++)
        free(memory[app]);
    if (is_growing && !example_is_sanitized() && valgrind == NULL)
        fail_msg("a server's resident memory kept growing");

    /* Every order paid exactly once, nothing lost; the servers exit cleanly. */
    esg_uuid *acked = malloc((n_orders + 1) * sizeof *acked);
    assert_non_null(acked);
    size_t n = 0;
    for (size_t i = 0; i < n_joined; i++) {
        memcpy(acked + n, f->clients[i].ids, f->clients[i].n_ids * sizeof *acked);
        n += f->clients[i].n_ids;
    }
    /* How far processing lags behind the load when it stops. */
    example_counts at_end;
    if (example_read_counts(&f->servers, &at_end))
        print_message("when the load stopped: %zu orders, %zu paid; notifications Orders %zu, "
                      "Reservations %zu, Payments %zu\n",
                      at_end.n_orders, at_end.n_paid, at_end.n_notifications[0],
                      at_end.n_notifications[1], at_end.n_notifications[2]);
    int64_t quiet_s = example_env_int("ESG_SOAK_QUIET_SECONDS",
                                      example_is_sanitized() || valgrind != NULL ? 300 : 120);
    int64_t quiet_started = esg_clock_now_ms();
    example_wait_quiet(&f->servers, quiet_s * 1000);
    print_message("every order paid %lld ms after the load stopped\n",
                  (long long)(esg_clock_now_ms() - quiet_started));
    example_counts counts;
    example_check_invariants(&f->servers, acked, n, &counts);
    assert_int_equal(counts.n_orders, n_orders);
    free(acked);
    for (size_t i = 0; i < n_joined; i++) {
        free(f->clients[i].ids);
        f->clients[i].ids = NULL;
    }
    print_message("invariants hold: %zu orders, notifications Orders %zu, Reservations %zu, "
                  "Payments %zu\n",
                  counts.n_orders, counts.n_notifications[0], counts.n_notifications[1],
                  counts.n_notifications[2]);
    f->is_passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_clients_for_a_while, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
