/* esg_bench: the benchmark harness (issue 8). Starts real servers as
 * subprocesses (ours, eventsourcing_grpc_server, and the floor, a minimal
 * server on the same gRPC core) and measures them with our client: calls/s
 * from 1 and 8 client threads, GetNotifications pages, start-up time to the
 * first Ping, resident memory, and the example system end to end through the
 * runner (subprocesses). Every figure is taken once per run; the report gives
 * the median, min and max over the runs, and ratios to the floor and to the
 * Python reference. Writes latest.json, table.md, targets.md and the latency
 * distributions (dist-*.dat) into the output folder. */
#include <errno.h>
#include <grpc/grpc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "esg.h"
#include "esg/example.h"
#include "esg/grpc.h"
#include "esg/runner.h"

#ifndef ESG_BENCH_SERVER_PROGRAM
#define ESG_BENCH_SERVER_PROGRAM "eventsourcing_grpc_server"
#endif
#ifndef ESG_BENCH_FLOOR_PROGRAM
#define ESG_BENCH_FLOOR_PROGRAM "floor_server"
#endif

#define ORDERS_TOPIC "eventsourcing_grpc.example:Orders"
#define ORDER_PAID_TOPIC "eventsourcing_grpc.example:Order.Paid"
#define MAX_THREADS 8
#define MAX_KEPT_IDS 20000 /* order ids kept for get_order */

/* ---- Options ---- */

typedef struct options {
    bool is_short;       /* each measurement once and briefly: checks the harness works */
    int n_runs;          /* runs of everything */
    int64_t warm_ns;     /* per throughput measurement, not counted */
    int64_t measure_ns;  /* per throughput measurement, counted */
    int n_single_orders; /* orders created one at a time for created-to-paid */
    int64_t load_ns;     /* end-to-end load, creating orders */
    const char *out_dir; /* results */
    const char *server;  /* eventsourcing_grpc_server */
    const char *floor;   /* floor_server */
    const char *only;  /* "floor", "servers", "systems" or "replicas" (for profiling); NULL: all */
    char tmp_dir[256]; /* SQLite databases */
} options;

typedef struct backend {
    const char *name;   /* "memory", "sqlite", "postgres" */
    const char *module; /* PERSISTENCE_MODULE */
    bool is_sqlite;
    bool is_postgres;
} backend;

static const backend backends[] = {
    {"memory", "eventsourcing.popo", false, false},
    {"sqlite", "eventsourcing.sqlite", true, false},
    {"postgres", "eventsourcing.postgres", false, true},
};

static bool postgres_is_configured(void)
{
    const char *name = getenv("POSTGRES_DBNAME");
    return name != NULL && name[0] != '\0';
}

/* The PostgreSQL database for one measurement, in out. Under bench/run.sh (a server of
 * scripts/postgres-test-server.sh, named by ESG_POSTGRES_TEST_SERVER and _DIR) a new empty
 * database per run and kind, so that runs do not read each other's events; otherwise the one
 * in POSTGRES_DBNAME (whose tables then keep what earlier runs wrote). */
static bool postgres_database(const char *kind, int run, char *out, size_t out_size)
{
    const char *script = getenv("ESG_POSTGRES_TEST_SERVER");
    const char *dir = getenv("ESG_POSTGRES_TEST_DIR");
    if (script == NULL || dir == NULL || script[0] == '\0' || dir[0] == '\0') {
        snprintf(out, out_size, "%s", getenv("POSTGRES_DBNAME"));
        return true;
    }
    snprintf(out, out_size, "bench_%s_%d", kind, run);
    char command[1200];
    snprintf(command, sizeof command, "'%s' createdb '%s' %s >/dev/null", script, dir, out);
    if (system(command) != 0) {
        fprintf(stderr, "esg_bench: cannot create the PostgreSQL database %s\n", out);
        return false;
    }
    return true;
}

/* ---- Load: n threads calling one method as fast as they can ---- */

typedef enum op_kind { OP_PING, OP_CREATE, OP_GET, OP_NOTIFICATIONS } op_kind;

/* The pages of GetNotifications measured, ours and the floor's constant ones. */
#define N_PAGE_SIZES 3
static const int64_t page_sizes[N_PAGE_SIZES] = {10, 100, 1000};

typedef struct load load;

typedef struct load_thread {
    load *load;
    esg_client *client;
    unsigned seed;
    uint64_t n_calls;      /* counted calls */
    uint64_t n_errors;     /* failed calls, all */
    bench_samples latency; /* us, counted calls */
    esg_uuid *created;     /* OP_CREATE: ids made, up to MAX_KEPT_IDS / threads */
    size_t n_created;
    esg_error first_error;
} load_thread;

struct load {
    const char *address;
    op_kind op;
    int n_threads;
    int64_t page;        /* OP_NOTIFICATIONS: limit */
    int64_t max_start;   /* OP_NOTIFICATIONS: starts drawn from 1..max_start */
    const esg_uuid *ids; /* OP_GET: ids drawn from */
    size_t n_ids;
    int64_t warm_ns, measure_ns;
    pid_t pid; /* server whose RSS is sampled, 0 for none */
    pthread_barrier_t start;
    /* Results. */
    double calls_per_s;
    uint64_t n_errors;
    bench_samples latency;
    long peak_rss_kb;
    double server_cpu_us_per_call; /* the server's CPU time per counted call (pid set) */
    esg_uuid *created;
    size_t n_created;
};

static esg_status call_once(load_thread *t, esg_error *err)
{
    load *l = t->load;
    esg_status rc = ESG_OK;
    esg_value *result = NULL, *args = NULL;
    switch (l->op) {
    case OP_PING:
        rc = esg_client_ping(t->client, err);
        break;
    case OP_CREATE:
        rc = esg_client_call(t->client, "create_new_order", NULL, NULL, &result, err);
        if (rc == ESG_OK && esg_value_type(result) == ESG_TYPE_UUID &&
            t->n_created < MAX_KEPT_IDS && t->created != NULL)
            t->created[t->n_created++] = *esg_value_as_uuid(result);
        break;
    case OP_GET:
        args = esg_value_array();
        esg_array_append(args, esg_value_uuid(&l->ids[(size_t)rand_r(&t->seed) % l->n_ids]));
        rc = esg_client_call(t->client, "get_order", args, NULL, &result, err);
        break;
    case OP_NOTIFICATIONS: {
        esg_notification_list list = {0};
        int64_t start = 1 + (int64_t)((size_t)rand_r(&t->seed) % (size_t)l->max_start);
        rc = esg_client_select_notifications(t->client, start, l->page, 0, NULL, 0, &list, err);
        if (rc == ESG_OK && (int64_t)list.n_items != l->page)
            rc = esg_error_set(err, ESG_EINTERNAL, "asked for %lld notifications, got %zu",
                               (long long)l->page, list.n_items);
        esg_notification_list_clear(&list);
        break;
    }
    }
    esg_value_free(result);
    esg_value_free(args);
    return rc;
}

static void *load_thread_main(void *arg)
{
    load_thread *t = arg;
    load *l = t->load;
    pthread_barrier_wait(&l->start);
    if (t->client == NULL)
        return NULL;
    int64_t begin = bench_now_ns() + l->warm_ns, end = begin + l->measure_ns;
    for (;;) {
        int64_t t0 = bench_now_ns();
        if (t0 >= end)
            break;
        esg_error err = {0};
        esg_status rc = call_once(t, &err);
        int64_t t1 = bench_now_ns();
        if (rc != ESG_OK) {
            if (t->n_errors++ == 0)
                t->first_error = err;
            continue;
        }
        if (t0 >= begin) {
            t->n_calls++;
            bench_samples_add(&t->latency, (double)(t1 - t0) / 1000.0);
        }
    }
    return NULL;
}

/* Runs l; false (with a message) when the clients could not connect or
 * every call failed. */
static bool load_run(load *l)
{
    load_thread threads[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    memset(threads, 0, sizeof threads);
    bool ok = true;
    pthread_barrier_init(&l->start, NULL, (unsigned)l->n_threads + 1);
    for (int i = 0; i < l->n_threads; i++) {
        load_thread *t = &threads[i];
        t->load = l;
        t->seed = (unsigned)(i * 7919 + 17);
        if (l->op == OP_CREATE)
            t->created = calloc(MAX_KEPT_IDS, sizeof *t->created);
        esg_error err = {0};
        if (esg_client_connect_address(l->address, NULL, &t->client, &err) != ESG_OK) {
            fprintf(stderr, "esg_bench: cannot connect to %s: %s\n", l->address, err.message);
            ok = false;
        }
        pthread_create(&ids[i], NULL, load_thread_main, t);
    }
    pthread_barrier_wait(&l->start);
    int64_t end = bench_now_ns() + l->warm_ns + l->measure_ns;
    int64_t begin = end - l->measure_ns;
    l->peak_rss_kb = 0;
    int64_t cpu_begin = -1, cpu_end = -1;
    while (l->pid > 0 && bench_now_ns() < end) {
        if (cpu_begin < 0 && bench_now_ns() >= begin)
            cpu_begin = bench_cpu_us(l->pid);
        long kb = bench_rss_kb(l->pid);
        if (kb > l->peak_rss_kb)
            l->peak_rss_kb = kb;
        bench_sleep_us(5000);
    }
    if (l->pid > 0)
        cpu_end = bench_cpu_us(l->pid);
    uint64_t n_calls = 0;
    memset(&l->latency, 0, sizeof l->latency);
    l->n_errors = 0;
    l->created = NULL;
    l->n_created = 0;
    for (int i = 0; i < l->n_threads; i++) {
        load_thread *t = &threads[i];
        pthread_join(ids[i], NULL);
        n_calls += t->n_calls;
        l->n_errors += t->n_errors;
        if (t->n_errors > 0)
            fprintf(stderr, "esg_bench: %llu failed calls to %s, the first: %s\n",
                    (unsigned long long)t->n_errors, l->address, t->first_error.message);
        bench_samples_append(&l->latency, &t->latency);
        bench_samples_free(&t->latency);
        if (t->created != NULL) {
            esg_uuid *grown =
                realloc(l->created, (l->n_created + t->n_created) * sizeof *grown + 1);
            if (grown != NULL) {
                memcpy(grown + l->n_created, t->created, t->n_created * sizeof *grown);
                l->created = grown;
                l->n_created += t->n_created;
            }
            free(t->created);
        }
        esg_client_free(t->client);
    }
    pthread_barrier_destroy(&l->start);
    bench_samples_sort(&l->latency);
    l->calls_per_s = (double)n_calls / ((double)l->measure_ns / 1e9);
    l->server_cpu_us_per_call = cpu_begin >= 0 && cpu_end >= 0 && n_calls > 0
                                    ? (double)(cpu_end - cpu_begin) / (double)n_calls
                                    : NAN;
    if (n_calls == 0)
        ok = false;
    return ok;
}

/* ---- Servers ---- */

static int64_t ms_since(int64_t t0)
{
    return (bench_now_ns() - t0) / 1000000;
}

/* Pings address with a new client per attempt (one connection attempt each,
 * so gRPC's reconnect backoff never delays us) until it answers; the ms from
 * t0, or -1 after timeout_ms. */
static double first_ping_ms(const char *address, int64_t t0, int64_t timeout_ms)
{
    esg_client_options client_options = {.max_attempts = 1, .deadline_ms = 500};
    while (ms_since(t0) < timeout_ms) {
        esg_client *client = NULL;
        esg_error err = {0};
        if (esg_client_connect_address(address, &client_options, &client, &err) == ESG_OK) {
            double ms = (double)(bench_now_ns() - t0) / 1e6;
            esg_client_free(client);
            return ms;
        }
        bench_sleep_us(500);
    }
    return -1;
}

typedef struct server {
    pid_t pid;
    char address[64];
    double startup_ms; /* spawn to first answered Ping */
} server;

static bool floor_start(const options *o, server *s)
{
    snprintf(s->address, sizeof s->address, "localhost:%d", bench_free_port());
    char *argv[] = {(char *)o->floor, s->address, NULL};
    int64_t t0 = bench_now_ns();
    s->pid = bench_spawn(o->floor, argv, NULL, 0);
    s->startup_ms = s->pid > 0 ? first_ping_ms(s->address, t0, 10000) : -1;
    return s->startup_ms >= 0;
}

/* Orders alone (no system), on backend b, with one more setting when extra is not NULL (its
 * database is then one of its own, named after tag). */
static bool orders_start_with(const options *o, const backend *b, int run, const char *extra,
                              const char *tag, server *s)
{
    snprintf(s->address, sizeof s->address, "localhost:%d", bench_free_port());
    char address[128], module[128], dbname[512], database[128];
    snprintf(address, sizeof address, "ORDERS_GRPC_SERVER_ADDRESS=%s", s->address);
    snprintf(module, sizeof module, "PERSISTENCE_MODULE=%s", b->module);
    snprintf(dbname, sizeof dbname, "ORDERS_SQLITE_DBNAME=%s/orders%s-%d.db", o->tmp_dir, tag, run);
    if (b->is_postgres) {
        char name[64];
        snprintf(name, sizeof name, "orders%s", tag);
        if (!postgres_database(name, run, database, sizeof database))
            return false;
        snprintf(dbname, sizeof dbname, "POSTGRES_DBNAME=%s", database);
    }
    const char *changes[] = {"APPLICATION_TOPIC=" ORDERS_TOPIC,
                             "SYSTEM_TOPIC",
                             address,
                             module,
                             b->is_sqlite || b->is_postgres ? dbname : extra,
                             extra};
    size_t n_changes = 4 + (b->is_sqlite || b->is_postgres) + (extra != NULL);
    char *argv[] = {(char *)o->server, NULL};
    int64_t t0 = bench_now_ns();
    s->pid = bench_spawn(o->server, argv, changes, n_changes);
    s->startup_ms = s->pid > 0 ? first_ping_ms(s->address, t0, 10000) : -1;
    return s->startup_ms >= 0;
}

static bool orders_start(const options *o, const backend *b, int run, server *s)
{
    return orders_start_with(o, b, run, NULL, "", s);
}

/* orders_start_with a setting (extra), saying so when it did not start. */
static bool orders_start_variant(const options *o, const backend *b, int run, const char *extra,
                                 const char *tag, server *s)
{
    if (orders_start_with(o, b, run, extra, tag, s))
        return true;
    fprintf(stderr, "esg_bench: Orders with %s on %s did not start\n", extra, b->name);
    bench_stop_process(s->pid);
    return false;
}

static double rss_mb(pid_t pid)
{
    long kb = bench_rss_kb(pid);
    return kb < 0 ? NAN : (double)kb / 1024.0;
}

/* Resident memory that is the process's own (heap, stacks), without the
 * pages of shared libraries and the program file. */
static double anon_mb(pid_t pid)
{
    long kb = bench_status_kb(pid, "RssAnon");
    return kb < 0 ? NAN : (double)kb / 1024.0;
}

/* Resident pages no other process shares (Private_Clean + Private_Dirty of smaps_rollup): what
 * this server adds to the machine, where VmRSS also counts the shared libraries' pages. */
static double private_mb(pid_t pid)
{
    long clean = bench_smaps_kb(pid, "Private_Clean"), dirty = bench_smaps_kb(pid, "Private_Dirty");
    return clean < 0 || dirty < 0 ? NAN : (double)(clean + dirty) / 1024.0;
}

/* Proportional set size: each shared page divided among the processes that map it. */
static double pss_mb(pid_t pid)
{
    long kb = bench_smaps_kb(pid, "Pss");
    return kb < 0 ? NAN : (double)kb / 1024.0;
}

/* ---- Per-call measurements ---- */

/* One load, recorded as <prefix>/<name>/<threads> (calls/s) and, from one
 * client, its p50 latency; the last run's distribution is kept for the plot. */
static bool measure(const options *o, load *l, const char *prefix, const char *name,
                    const char *label, const char *floor_name, double ref_lo, double ref_hi)
{
    l->warm_ns = o->warm_ns;
    l->measure_ns = o->measure_ns;
    bool ok = load_run(l);
    char key[96], floor_key[96], text[160], title[160];
    snprintf(key, sizeof key, "%s/%s/%d", prefix, name, l->n_threads);
    if (floor_name != NULL)
        snprintf(floor_key, sizeof floor_key, "floor/%s/%d", floor_name, l->n_threads);
    snprintf(text, sizeof text, "%s, %d client%s", label, l->n_threads,
             l->n_threads == 1 ? "" : "s");
    bench_record(key, text, "calls/s", true, floor_name ? floor_key : NULL, ref_lo, ref_hi,
                 l->calls_per_s);
    snprintf(title, sizeof title, "%s", text);
    if (l->n_threads == 1) {
        snprintf(key, sizeof key, "%s/%s/latency_p50", prefix, name);
        if (floor_name != NULL)
            snprintf(floor_key, sizeof floor_key, "floor/%s/latency_p50", floor_name);
        snprintf(text, sizeof text, "%s, 1 client: latency p50", label);
        bench_record(key, text, "us", false, floor_name ? floor_key : NULL, NAN, NAN,
                     bench_samples_quantile(&l->latency, 0.5));
        char path[600];
        snprintf(path, sizeof path, "%s/dist-%s-%s.dat", o->out_dir, prefix, name);
        bench_samples_write_cdf(&l->latency, path, 1.0);
    }
    printf("  %-8s %-48s %8.0f calls/s  p50 %7.1f us  p99 %8.1f us%s\n", prefix, title,
           l->calls_per_s, bench_samples_quantile(&l->latency, 0.5),
           bench_samples_quantile(&l->latency, 0.99), ok ? "" : "  (FAILED)");
    fflush(stdout);
    bench_samples_free(&l->latency);
    return ok;
}

static bool bench_floor(const options *o)
{
    server s = {0};
    bool ok = floor_start(o, &s);
    if (!ok) {
        fprintf(stderr, "esg_bench: the floor server did not start\n");
        bench_stop_process(s.pid);
        return false;
    }
    bench_record("floor/startup_ms", "start-up to first Ping", "ms", false, NULL, NAN, NAN,
                 s.startup_ms);
    bench_sleep_us(100000);
    bench_record("floor/rss_idle", "resident memory, idle", "MB", false, NULL, NAN, NAN,
                 rss_mb(s.pid));
    bench_record("floor/anon_idle", "resident memory, idle: anonymous only (RssAnon)", "MB", false,
                 NULL, NAN, NAN, anon_mb(s.pid));
    bench_record("floor/private_idle", "resident memory, idle: private pages (smaps_rollup)", "MB",
                 false, NULL, NAN, NAN, private_mb(s.pid));
    bench_record("floor/pss_idle", "resident memory, idle: proportional (Pss)", "MB", false, NULL,
                 NAN, NAN, pss_mb(s.pid));
    int threads[] = {1, 8};
    for (int i = 0; i < 2; i++) {
        load l = {.address = s.address, .op = OP_PING, .n_threads = threads[i]};
        ok = measure(o, &l, "floor", "ping", "Ping", NULL, NAN, NAN) && ok;
    }
    for (int i = 0; i < 2; i++) {
        load l = {.address = s.address, .op = OP_CREATE, .n_threads = threads[i], .pid = s.pid};
        /* The issue's own floor measurement, on a machine like this one. */
        double ref = threads[i] == 1 ? 14500 : 27000;
        ok = measure(o, &l, "floor", "call", "CallApplicationMethod (constant)", NULL, ref, ref) &&
             ok;
        free(l.created);
        if (threads[i] == 8)
            bench_record("floor/rss_load", "resident memory, peak under load (8 clients)", "MB",
                         false, NULL, NAN, NAN, (double)l.peak_rss_kb / 1024.0);
        if (threads[i] == 8)
            bench_record("floor/call/cpu_per_call",
                         "CallApplicationMethod (constant), 8 clients: server CPU per call", "us",
                         false, NULL, NAN, NAN, l.server_cpu_us_per_call);
    }
    /* Constant pages of the sizes ours answer: the floor for GetNotifications. */
    for (int i = 0; i < N_PAGE_SIZES; i++) {
        load l = {.address = s.address,
                  .op = OP_NOTIFICATIONS,
                  .n_threads = 1,
                  .page = page_sizes[i],
                  .max_start = 1000};
        char name[64], label[80];
        snprintf(name, sizeof name, "get_notifications_%lld", (long long)page_sizes[i]);
        snprintf(label, sizeof label, "GetNotifications, constant pages of %lld",
                 (long long)page_sizes[i]);
        ok = measure(o, &l, "floor", name, label, NULL, NAN, NAN) && ok;
    }
    bench_stop_process(s.pid);
    return ok;
}

/* Creates orders on address until it holds at least n notifications. */
static bool top_up(const char *address, size_t have, size_t n)
{
    esg_client *client = NULL;
    esg_error err = {0};
    if (esg_client_connect_address(address, NULL, &client, &err) != ESG_OK)
        return false;
    bool ok = true;
    for (size_t i = have; i < n && ok; i++) {
        esg_value *result = NULL;
        ok = esg_client_call(client, "create_new_order", NULL, NULL, &result, &err) == ESG_OK;
        esg_value_free(result);
    }
    esg_client_free(client);
    return ok;
}

/* get_order with the repository's aggregate cache (AGGREGATE_CACHE_MAXSIZE), beside the same
 * calls without it (bench_server): orders made by 8 clients, then read from 1 and 8. */
static bool bench_cached_get(const options *o, const backend *b, int run)
{
    server s = {0};
    if (!orders_start_variant(o, b, run, "AGGREGATE_CACHE_MAXSIZE=100000", "_cached", &s))
        return false;
    load create = {.address = s.address,
                   .op = OP_CREATE,
                   .n_threads = 8,
                   .pid = s.pid,
                   .warm_ns = 0,
                   .measure_ns = o->measure_ns};
    bool ok = load_run(&create) && create.n_created > 0;
    int threads[] = {1, 8};
    for (int i = 0; i < 2 && ok; i++) {
        load l = {.address = s.address,
                  .op = OP_GET,
                  .n_threads = threads[i],
                  .ids = create.created,
                  .n_ids = create.n_created};
        ok = measure(o, &l, b->name, "get_order_cached",
                     "get_order, AGGREGATE_CACHE_MAXSIZE=100000", "call", NAN, NAN) &&
             ok;
    }
    free(create.created);
    bench_stop_process(s.pid);
    return ok;
}

/* create_new_order from 1 and 8 clients to a server that keeps no idempotency keys
 * (IDEMPOTENCY_KEY_TTL=0), beside the same calls with them (bench_server; the client sends a key
 * with every call): what recording each command's key and reply costs. */
static bool bench_keys_off(const options *o, const backend *b, int run)
{
    server s = {0};
    if (!orders_start_variant(o, b, run, "IDEMPOTENCY_KEY_TTL=0", "_nokeys", &s))
        return false;
    bool ok = true;
    int threads[] = {1, 8};
    for (int i = 0; i < 2; i++) {
        load l = {.address = s.address, .op = OP_CREATE, .n_threads = threads[i], .pid = s.pid};
        ok = measure(o, &l, b->name, "create_new_order_keys_off",
                     "create_new_order, IDEMPOTENCY_KEY_TTL=0 (no key recorded)", "call", NAN,
                     NAN) &&
             ok;
        free(l.created);
    }
    bench_stop_process(s.pid);
    return ok;
}

static bool bench_server(const options *o, const backend *b, int run)
{
    server s = {0};
    bool ok = orders_start(o, b, run, &s);
    char key[96];
    if (!ok) {
        fprintf(stderr, "esg_bench: Orders on %s did not start\n", b->name);
        bench_stop_process(s.pid);
        return false;
    }
    const char *p = b->name;
    snprintf(key, sizeof key, "%s/startup_ms", p);
    bench_record(key, "start-up to first Ping", "ms", false, "floor/startup_ms", 100, 100,
                 s.startup_ms);
    bench_sleep_us(100000);
    snprintf(key, sizeof key, "%s/rss_idle", p);
    bench_record(key, "resident memory, idle", "MB", false, "floor/rss_idle", 36, 36,
                 rss_mb(s.pid));
    snprintf(key, sizeof key, "%s/anon_idle", p);
    bench_record(key, "resident memory, idle: anonymous only (RssAnon)", "MB", false,
                 "floor/anon_idle", NAN, NAN, anon_mb(s.pid));
    snprintf(key, sizeof key, "%s/private_idle", p);
    bench_record(key, "resident memory, idle: private pages (smaps_rollup)", "MB", false,
                 "floor/private_idle", NAN, NAN, private_mb(s.pid));
    snprintf(key, sizeof key, "%s/pss_idle", p);
    bench_record(key, "resident memory, idle: proportional (Pss)", "MB", false, "floor/pss_idle",
                 NAN, NAN, pss_mb(s.pid));
    int threads[] = {1, 8};
    bool is_memory = strcmp(p, "memory") == 0;
    bool is_sqlite = strcmp(p, "sqlite") == 0;
    if (is_memory)
        for (int i = 0; i < 2; i++) {
            load l = {.address = s.address, .op = OP_PING, .n_threads = threads[i]};
            ok = measure(o, &l, p, "ping", "Ping", "ping", i == 0 ? 5300 : NAN,
                         i == 0 ? 6300 : NAN) &&
                 ok;
        }
    /* create_new_order: the reference's figures are per backend. */
    double create_ref[2][2] = {{3600, 5600}, {1900, 2200}};
    esg_uuid *ids = NULL;
    size_t n_ids = 0, n_orders = 0;
    for (int i = 0; i < 2; i++) {
        load l = {.address = s.address, .op = OP_CREATE, .n_threads = threads[i], .pid = s.pid};
        double ref = is_memory ? create_ref[0][i] : is_sqlite ? create_ref[1][i] : NAN;
        ok = measure(o, &l, p, "create_new_order", "create_new_order", "call", ref, ref) && ok;
        n_orders += (size_t)(l.calls_per_s * ((double)(o->warm_ns + o->measure_ns) / 1e9) * 0.9);
        if (l.n_created > 0) {
            free(ids);
            ids = l.created;
            n_ids = l.n_created;
            n_orders = n_orders > n_ids ? n_orders : n_ids;
        } else {
            free(l.created);
        }
        if (threads[i] == 8) {
            snprintf(key, sizeof key, "%s/rss_load", p);
            bench_record(key, "resident memory, peak under load (create_new_order, 8 clients)",
                         "MB", false, "floor/rss_load", NAN, NAN, (double)l.peak_rss_kb / 1024.0);
            snprintf(key, sizeof key, "%s/create_new_order/cpu_per_call", p);
            bench_record(key, "create_new_order, 8 clients: server CPU per call", "us", false,
                         "floor/call/cpu_per_call", NAN, NAN, l.server_cpu_us_per_call);
        }
    }
    for (int i = 0; i < 2 && n_ids > 0; i++) {
        load l = {.address = s.address,
                  .op = OP_GET,
                  .n_threads = threads[i],
                  .ids = ids,
                  .n_ids = n_ids};
        ok = measure(o, &l, p, "get_order", "get_order", "call", NAN, NAN) && ok;
    }
    free(ids);
    /* GetNotifications from one client, from random starts with a full page after them. */
    if (n_orders < 1100 && !top_up(s.address, n_orders, 1100))
        ok = false;
    n_orders = n_orders < 1100 ? 1100 : n_orders;
    for (int i = 0; i < N_PAGE_SIZES; i++) {
        load l = {.address = s.address,
                  .op = OP_NOTIFICATIONS,
                  .n_threads = 1,
                  .page = page_sizes[i],
                  .max_start = (int64_t)n_orders - page_sizes[i] - 50};
        char name[64], label[64];
        snprintf(name, sizeof name, "get_notifications_%lld", (long long)page_sizes[i]);
        snprintf(label, sizeof label, "GetNotifications, pages of %lld", (long long)page_sizes[i]);
        /* Against the floor's constant page of the same size. */
        ok = measure(o, &l, p, name, label, name, NAN, NAN) && ok;
    }
    bench_stop_process(s.pid);
    return ok;
}

/* ---- The example system end to end ---- */

/* Orders seen created and paid, by id: open addressing on the random UUID. */
#define TRACK_CAPACITY (1u << 18)
#define TRACK_MAX_ORDERS (TRACK_CAPACITY / 2)

typedef struct tracked_order {
    esg_uuid id;
    int64_t created_ns; /* when create_new_order returned, 0 before */
    int64_t paid_ns;    /* when Order.Paid was first read, 0 before */
    bool is_used;
} tracked_order;

typedef struct tracker {
    tracked_order *orders; /* TRACK_CAPACITY entries */
    pthread_mutex_t lock;  /* guards orders and the counts */
    size_t n_created;
    size_t n_paid;
    int64_t last_paid_ns;
    esg_client *follower; /* reads Orders' notifications */
    int64_t next_start;   /* the follower's position */
} tracker;

static tracked_order *track_slot(tracker *t, const esg_uuid *id)
{
    uint64_t h = 0;
    memcpy(&h, id->bytes, sizeof h);
    for (size_t i = (size_t)h & (TRACK_CAPACITY - 1);; i = (i + 1) & (TRACK_CAPACITY - 1)) {
        tracked_order *o = &t->orders[i];
        if (!o->is_used) {
            o->is_used = true;
            o->id = *id;
            return o;
        }
        if (esg_uuid_equal(&o->id, id))
            return o;
    }
}

static void track_created(tracker *t, const esg_uuid *id, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    tracked_order *o = track_slot(t, id);
    o->created_ns = now;
    t->n_created++;
    pthread_mutex_unlock(&t->lock);
}

/* One GetNotifications of Order.Paid after the follower's position; the
 * number of paid orders read, or -1 on failure. */
static int track_poll(tracker *t)
{
    esg_notification_list list = {0};
    esg_error err = {0};
    const char *topics[] = {ORDER_PAID_TOPIC};
    if (esg_client_select_notifications(t->follower, t->next_start, 1000, 0, topics, 1, &list,
                                        &err) != ESG_OK) {
        fprintf(stderr, "esg_bench: following Orders: %s\n", err.message);
        return -1;
    }
    int64_t now = bench_now_ns();
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < list.n_items; i++) {
        tracked_order *o = track_slot(t, &list.items[i].event.originator_id);
        if (o->paid_ns == 0) {
            o->paid_ns = now;
            t->n_paid++;
            t->last_paid_ns = now;
        }
        t->next_start = list.items[i].id + 1;
    }
    pthread_mutex_unlock(&t->lock);
    int n = (int)list.n_items;
    esg_notification_list_clear(&list);
    return n;
}

/* Moves the follower past the Order.Paid notifications already in Orders' log (a database that
 * served an earlier run): they are not this run's orders, and counting them would leave the
 * paid count above the created one for good. */
static bool track_skip_existing(tracker *t)
{
    const char *topics[] = {ORDER_PAID_TOPIC};
    for (;;) {
        esg_notification_list list = {0};
        esg_error err = {0};
        if (esg_client_select_notifications(t->follower, t->next_start, 1000, 0, topics, 1, &list,
                                            &err) != ESG_OK) {
            fprintf(stderr, "esg_bench: following Orders: %s\n", err.message);
            return false;
        }
        bool is_end = list.n_items == 0;
        if (!is_end)
            t->next_start = list.items[list.n_items - 1].id + 1;
        esg_notification_list_clear(&list);
        if (is_end)
            return true;
    }
}

/* Created-to-paid latencies (ms) of the orders created after since_ns. */
static void track_latencies(tracker *t, int64_t since_ns, bench_samples *out)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < TRACK_CAPACITY; i++) {
        tracked_order *o = &t->orders[i];
        if (o->is_used && o->created_ns >= since_ns && o->paid_ns > 0)
            bench_samples_add(out, (double)(o->paid_ns - o->created_ns) / 1e6);
    }
    pthread_mutex_unlock(&t->lock);
    bench_samples_sort(out);
}

/* Creates one order and follows Orders until it is paid; false on failure. */
static bool one_order_paid(esg_client *orders, tracker *t, int64_t timeout_ms, int64_t *paid_ns)
{
    esg_value *result = NULL;
    esg_error err = {0};
    if (esg_client_call(orders, "create_new_order", NULL, NULL, &result, &err) != ESG_OK ||
        esg_value_type(result) != ESG_TYPE_UUID) {
        fprintf(stderr, "esg_bench: create_new_order: %s\n", err.message);
        esg_value_free(result);
        return false;
    }
    esg_uuid id = *esg_value_as_uuid(result);
    esg_value_free(result);
    int64_t created = bench_now_ns();
    track_created(t, &id, created);
    while ((bench_now_ns() - created) / 1000000 < timeout_ms) {
        int n = track_poll(t);
        if (n < 0)
            return false;
        pthread_mutex_lock(&t->lock);
        int64_t paid = track_slot(t, &id)->paid_ns;
        pthread_mutex_unlock(&t->lock);
        if (paid > 0) {
            *paid_ns = paid;
            return true;
        }
        if (n == 0)
            bench_sleep_us(50);
    }
    fprintf(stderr, "esg_bench: an order was not paid within %lld ms\n", (long long)timeout_ms);
    return false;
}

typedef struct creator {
    tracker *tracker;
    const char *address;
    int64_t load_ns; /* creating for this long after the start */
    pthread_barrier_t *start;
    uint64_t n_errors;
} creator;

static void *creator_main(void *arg)
{
    creator *c = arg;
    esg_client *client = NULL;
    esg_error err = {0};
    if (esg_client_connect_address(c->address, NULL, &client, &err) != ESG_OK)
        fprintf(stderr, "esg_bench: cannot connect to Orders: %s\n", err.message);
    pthread_barrier_wait(c->start);
    int64_t end = bench_now_ns() + c->load_ns;
    while (client != NULL && bench_now_ns() < end) {
        esg_value *result = NULL;
        pthread_mutex_lock(&c->tracker->lock);
        bool is_full = c->tracker->n_created >= TRACK_MAX_ORDERS;
        pthread_mutex_unlock(&c->tracker->lock);
        if (is_full)
            break;
        if (esg_client_call(client, "create_new_order", NULL, NULL, &result, &err) == ESG_OK &&
            esg_value_type(result) == ESG_TYPE_UUID)
            track_created(c->tracker, esg_value_as_uuid(result), bench_now_ns());
        else
            c->n_errors++;
        esg_value_free(result);
    }
    esg_client_free(client);
    return NULL;
}

/* The largest VmRSS (MB) among pids. */
static double max_rss_mb(const pid_t *pids, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, rss_mb(pids[i]));
    return m;
}

/* Created to paid one order at a time, then orders paid per second with 8 clients creating
 * through orders_address, as figures prefix/p/...: of the system (the runner's) or of replicas.
 * pids are the servers' (CPU, memory). */
static bool measure_paid(const options *o, const char *prefix, const char *p, const backend *b,
                         tracker *t, esg_client *orders, const char *orders_address,
                         const pid_t *pids, size_t n_pids)
{
    bool is_memory = strcmp(b->name, "memory") == 0, is_sqlite = b->is_sqlite;
    char key[96], label[128], value[512];
    /* Created to paid, one order at a time. */
    bool ok = true;
    int64_t since = bench_now_ns();
    for (int i = 0; ok && i < o->n_single_orders; i++) {
        int64_t paid = 0;
        ok = one_order_paid(orders, t, 10000, &paid);
    }
    bench_samples single = {0};
    track_latencies(t, since, &single);
    if (ok) {
        snprintf(key, sizeof key, "%s/%s/paid_p50_ms", prefix, p);
        snprintf(label, sizeof label, "%s: created to paid, one order at a time, p50", prefix);
        bench_record(key, label, "ms", false, NULL,
                     is_memory   ? 110
                     : is_sqlite ? 310
                                 : NAN,
                     is_memory   ? 160
                     : is_sqlite ? 330
                                 : NAN,
                     bench_samples_quantile(&single, 0.5));
        snprintf(key, sizeof key, "%s/%s/paid_p99_ms", prefix, p);
        snprintf(label, sizeof label, "%s: created to paid, one order at a time, p99", prefix);
        bench_record(key, label, "ms", false, NULL, NAN, NAN,
                     bench_samples_quantile(&single, 0.99));
        snprintf(value, sizeof value, "%s/dist-%s-%s-paid.dat", o->out_dir, prefix, p);
        bench_samples_write_cdf(&single, value, 1.0);
    }
    printf("  %s/%-6s created to paid, one at a time: p50 %.2f ms, p99 %.2f ms (%zu orders)\n",
           prefix, p, bench_samples_quantile(&single, 0.5), bench_samples_quantile(&single, 0.99),
           single.n_values);
    bench_samples_free(&single);

    /* Orders/s: 8 threads create orders for load_ns while the follower reads
     * Order.Paid; the rate is orders paid over the time until the last one. */
    if (ok) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, MAX_THREADS + 1);
        creator creators[MAX_THREADS];
        pthread_t threads[MAX_THREADS];
        pthread_mutex_lock(&t->lock);
        size_t created_before = t->n_created, paid_before = t->n_paid;
        pthread_mutex_unlock(&t->lock);
        for (int i = 0; i < MAX_THREADS; i++) {
            creators[i] = (creator){
                .tracker = t, .address = orders_address, .start = &start, .load_ns = o->load_ns};
            pthread_create(&threads[i], NULL, creator_main, &creators[i]);
        }
        pthread_barrier_wait(&start); /* the creators are connected */
        int64_t begin = bench_now_ns();
        int64_t cpu_begin = 0;
        for (size_t i = 0; i < n_pids; i++)
            cpu_begin += bench_cpu_us(pids[i]);
        double peak_rss = 0;
        int64_t last_sample = 0;
        bool creating = true;
        while (ok) {
            int64_t now = bench_now_ns();
            if (now - last_sample > 20000000) {
                peak_rss = fmax(peak_rss, max_rss_mb(pids, n_pids));
                last_sample = now;
            }
            if (creating && now >= begin + o->load_ns) {
                for (int i = 0; i < MAX_THREADS; i++)
                    pthread_join(threads[i], NULL);
                creating = false;
            }
            int n = track_poll(t);
            if (n < 0) {
                ok = false;
                break;
            }
            pthread_mutex_lock(&t->lock);
            bool is_done = !creating && t->n_paid == t->n_created;
            pthread_mutex_unlock(&t->lock);
            if (is_done)
                break;
            if (!creating && now - begin > o->load_ns + 120 * 1000000000LL) {
                fprintf(stderr, "esg_bench: orders still unpaid 120 s after the load\n");
                ok = false;
                break;
            }
            if (n == 0)
                bench_sleep_us(1000);
        }
        if (creating)
            for (int i = 0; i < MAX_THREADS; i++)
                pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start);
        uint64_t n_errors = 0;
        for (int i = 0; i < MAX_THREADS; i++)
            n_errors += creators[i].n_errors;
        if (n_errors > 0)
            fprintf(stderr, "esg_bench: %llu create_new_order calls failed under load\n",
                    (unsigned long long)n_errors);
        int64_t cpu_end = 0;
        for (size_t i = 0; i < n_pids; i++)
            cpu_end += bench_cpu_us(pids[i]);
        size_t n_orders = t->n_paid - paid_before;
        double seconds = (double)(t->last_paid_ns - begin) / 1e9;
        double rate = seconds > 0 ? (double)n_orders / seconds : 0;
        bench_samples loaded = {0};
        track_latencies(t, begin, &loaded);
        if (ok) {
            snprintf(key, sizeof key, "%s/%s/orders_per_s", prefix, p);
            snprintf(label, sizeof label, "%s: orders paid per second (8 clients creating)",
                     prefix);
            bench_record(key, label, "orders/s", true, NULL,
                         is_memory   ? 670
                         : is_sqlite ? 340
                                     : NAN,
                         is_memory   ? 870
                         : is_sqlite ? 370
                                     : NAN,
                         rate);
            snprintf(key, sizeof key, "%s/%s/loaded_paid_p50_ms", prefix, p);
            snprintf(label, sizeof label, "%s: created to paid under that load, p50", prefix);
            bench_record(key, label, "ms", false, NULL, NAN, NAN,
                         bench_samples_quantile(&loaded, 0.5));
            snprintf(key, sizeof key, "%s/%s/loaded_paid_p99_ms", prefix, p);
            snprintf(label, sizeof label, "%s: created to paid under that load, p99", prefix);
            bench_record(key, label, "ms", false, NULL, NAN, NAN,
                         bench_samples_quantile(&loaded, 0.99));
            snprintf(key, sizeof key, "%s/%s/cpu_per_order", prefix, p);
            snprintf(label, sizeof label, "%s: CPU of the servers per order paid", prefix);
            bench_record(key, label, "us", false, NULL, NAN, NAN,
                         n_orders ? (double)(cpu_end - cpu_begin) / (double)n_orders : NAN);
            snprintf(key, sizeof key, "%s/%s/rss_load", prefix, p);
            snprintf(label, sizeof label,
                     "%s: resident memory of the largest server, peak under load", prefix);
            bench_record(key, label, "MB", false, "floor/rss_load", NAN, NAN, peak_rss);
        }
        printf("  %s/%-6s %zu orders (%zu created) paid at %.0f orders/s; created to paid "
               "under load p50 %.1f ms, p99 %.1f ms\n",
               prefix, p, n_orders, t->n_created - created_before, rate,
               bench_samples_quantile(&loaded, 0.5), bench_samples_quantile(&loaded, 0.99));
        bench_samples_free(&loaded);
    }
    fflush(stdout);
    return ok;
}

static bool bench_system(const options *o, const backend *b, int run)
{
    const char *p = b->name;
    char key[96], value[512];
    esg_error err = {0};
    esg_env *env = esg_env_from_process();
    const char *apps[] = {"ORDERS", "RESERVATIONS", "PAYMENTS"};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s_GRPC_SERVER_ADDRESS", apps[i]);
        snprintf(value, sizeof value, "localhost:%d", bench_free_port());
        esg_env_set(env, key, value, &err);
        snprintf(key, sizeof key, "%s_SQLITE_DBNAME", apps[i]);
        snprintf(value, sizeof value, "%s/system-%d-%s.db", o->tmp_dir, run, apps[i]);
        if (b->is_sqlite)
            esg_env_set(env, key, value, &err);
    }
    esg_env_set(env, "PERSISTENCE_MODULE", b->module, &err);
    if (b->is_postgres) { /* one database for the three (tables orders_events, ...) */
        if (!postgres_database("system", run, value, sizeof value)) {
            esg_env_free(env);
            return false;
        }
        esg_env_set(env, "POSTGRES_DBNAME", value, &err);
    }
    esg_env_unset(env, "APPLICATION_TOPIC");
    esg_env_unset(env, "SYSTEM_TOPIC");

    tracker t = {0};
    t.orders = calloc(TRACK_CAPACITY, sizeof *t.orders);
    pthread_mutex_init(&t.lock, NULL);
    t.next_start = 1;
    esg_grpc_runner *runner = NULL;
    esg_grpc_runner_options runner_options = {
        .mode = ESG_RUNNER_SUBPROCESSES, .env = env, .server_program = o->server};
    int64_t t0 = bench_now_ns();
    bool ok = t.orders != NULL &&
              esg_grpc_runner_start(&esg_example_system, &runner_options, &runner, &err) == ESG_OK;
    int64_t up = bench_now_ns();
    const char *orders_address = ok ? esg_grpc_runner_address(runner, "Orders") : NULL;
    esg_client *orders = ok ? esg_grpc_runner_get(runner, "Orders") : NULL;
    if (!ok)
        fprintf(stderr, "esg_bench: the system on %s did not start: %s\n", p, err.message);
    if (ok)
        ok = esg_client_connect_address(orders_address, NULL, &t.follower, &err) == ESG_OK;
    if (ok)
        ok = track_skip_existing(&t);
    pid_t pids[8];
    size_t n_pids = bench_children("eventsourcing_g", pids, 8);

    /* The first order, as soon as every server answered. */
    int64_t first_paid = 0;
    if (ok)
        ok = one_order_paid(orders, &t, 30000, &first_paid);
    if (ok) {
        snprintf(key, sizeof key, "system/%s/start_ms", p);
        bench_record(key, "system: runner start until every server answers", "ms", false, NULL, NAN,
                     NAN, (double)(up - t0) / 1e6);
        snprintf(key, sizeof key, "system/%s/first_paid_after_up_ms", p);
        bench_record(key, "system: first order paid, from the system being up", "ms", false, NULL,
                     NAN, NAN, (double)(first_paid - up) / 1e6);
        snprintf(key, sizeof key, "system/%s/first_paid_ms", p);
        bench_record(key, "system: first order paid, from runner start", "ms", false, NULL, 10000,
                     10000, (double)(first_paid - t0) / 1e6);
        bench_sleep_us(200000);
        snprintf(key, sizeof key, "system/%s/rss_idle", p);
        bench_record(key, "system: resident memory of the largest server, idle", "MB", false,
                     "floor/rss_idle", 36, 36, max_rss_mb(pids, n_pids));
    }

    if (ok)
        ok = measure_paid(o, "system", p, b, &t, orders, orders_address, pids, n_pids);
    if (runner != NULL && esg_grpc_runner_has_errored(runner, &err)) {
        fprintf(stderr, "esg_bench: the system on %s failed: %s\n", p, err.message);
        ok = false;
    }
    fflush(stdout);
    esg_client_free(t.follower);
    esg_grpc_runner_stop(runner);
    pthread_mutex_destroy(&t.lock);
    free(t.orders);
    esg_env_free(env);
    return ok;
}

/* ---- Replicas (PostgreSQL) ---- */

#define MAX_REPLICAS 2
#define N_APPS 3

/* Whether the server logging to path holds its application's lease: its last word on it. */
static bool holds_lease(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;
    char line[1024];
    bool is_holding = false;
    while (fgets(line, sizeof line, file) != NULL) {
        if (strstr(line, "processing: this replica holds the lease") != NULL)
            is_holding = true;
        else if (strstr(line, "standing by") != NULL)
            is_holding = false;
    }
    fclose(file);
    return is_holding;
}

/* The example system with n_replicas servers of each application on one PostgreSQL database,
 * spawned here (each listening on a port of its own; everyone reaches an application through the
 * list of its replicas), measured as the runner's system is ("replicas/1", "replicas/2": both
 * started the same way, side by side). With two, also the takeover: the replica of Reservations
 * holding the lease (its log says so) is SIGKILLed and an order created at once is followed
 * until it is paid. */
static bool bench_replicas(const options *o, const backend *b, int run, int n_replicas)
{
    static const char *const apps[N_APPS] = {"ORDERS", "RESERVATIONS", "PAYMENTS"};
    static const char *const names[N_APPS] = {"Orders", "Reservations", "Payments"};
    char p[8], key[96], database[128];
    snprintf(p, sizeof p, "%d", n_replicas);
    char kind[32];
    snprintf(kind, sizeof kind, "replicas%d", n_replicas);
    if (!postgres_database(kind, run, database, sizeof database))
        return false;
    char listen[N_APPS][MAX_REPLICAS][64], lists[N_APPS][200];
    for (int a = 0; a < N_APPS; a++) {
        lists[a][0] = '\0';
        for (int r = 0; r < n_replicas; r++) {
            snprintf(listen[a][r], sizeof listen[a][r], "localhost:%d", bench_free_port());
            size_t len = strlen(lists[a]);
            snprintf(lists[a] + len, sizeof lists[a] - len, "%s%s", r > 0 ? "," : "", listen[a][r]);
        }
    }
    /* Every replica 1 first, so that each takes its application's lease. */
    pid_t pids[N_APPS * MAX_REPLICAS];
    char logs[N_APPS * MAX_REPLICAS][600];
    size_t n_pids = 0;
    bool ok = true;
    for (int r = 0; ok && r < n_replicas; r++)
        for (int a = 0; ok && a < N_APPS; a++) {
            char topic[96], listen_at[96], dbname[160], addresses[N_APPS][240];
            snprintf(topic, sizeof topic, "APPLICATION_TOPIC=eventsourcing_grpc.example:%s",
                     names[a]);
            snprintf(listen_at, sizeof listen_at, "GRPC_LISTEN_ADDRESS=%s", listen[a][r]);
            snprintf(dbname, sizeof dbname, "POSTGRES_DBNAME=%s", database);
            for (int i = 0; i < N_APPS; i++)
                snprintf(addresses[i], sizeof addresses[i], "%s_GRPC_SERVER_ADDRESS=%.199s",
                         apps[i], lists[i]);
            const char *changes[] = {topic,        "SYSTEM_TOPIC=eventsourcing_grpc.example:system",
                                     listen_at,    "PERSISTENCE_MODULE=eventsourcing.postgres",
                                     dbname,       addresses[0],
                                     addresses[1], addresses[2]};
            char *argv[] = {(char *)o->server, NULL};
            int64_t t0 = bench_now_ns();
            snprintf(logs[n_pids], sizeof logs[n_pids], "%s/replicas%d-%s-%d-%d.log", o->tmp_dir,
                     n_replicas, names[a], r + 1, run);
            pid_t pid = bench_spawn_logged(o->server, argv, changes,
                                           sizeof changes / sizeof *changes, logs[n_pids]);
            if (pid > 0)
                pids[n_pids++] = pid;
            ok = pid > 0 && first_ping_ms(listen[a][r], t0, 20000) >= 0;
            if (!ok)
                fprintf(stderr, "esg_bench: replica %d of %s did not start\n", r + 1, names[a]);
        }
    tracker t = {0};
    t.orders = calloc(TRACK_CAPACITY, sizeof *t.orders);
    pthread_mutex_init(&t.lock, NULL);
    t.next_start = 1;
    esg_client *orders = NULL;
    esg_error err = {0};
    ok = ok && t.orders != NULL &&
         esg_client_connect_address(lists[0], NULL, &orders, &err) == ESG_OK &&
         esg_client_connect_address(lists[0], NULL, &t.follower, &err) == ESG_OK &&
         track_skip_existing(&t);
    int64_t first_paid = 0;
    if (ok) /* (the followers' first pulls and subscriptions: not measured) */
        ok = one_order_paid(orders, &t, 30000, &first_paid);
    if (ok)
        ok = measure_paid(o, "replicas", p, b, &t, orders, lists[0], pids, n_pids);
    if (ok && n_replicas == 2) {
        /* pids: replica 1 of Orders, Reservations, Payments, then replica 2 of each. */
        size_t active = holds_lease(logs[1]) ? 1 : 4;
        int64_t killed = bench_now_ns(), paid = 0;
        if (!holds_lease(logs[active])) {
            fprintf(stderr, "esg_bench: neither replica of Reservations says it processes\n");
            ok = false;
        } else {
            kill(pids[active], SIGKILL);
            killed = bench_now_ns();
            ok = one_order_paid(orders, &t, 30000, &paid);
        }
        if (ok) {
            snprintf(key, sizeof key, "replicas/%s/takeover_paid_ms", p);
            bench_record(key,
                         "replicas: an order created at the SIGKILL of the active Reservations, "
                         "created to paid",
                         "ms", false, NULL, NAN, NAN, (double)(paid - killed) / 1e6);
            printf("  replicas/%s  an order created at the SIGKILL of the active Reservations "
                   "paid in %.0f ms\n",
                   p, (double)(paid - killed) / 1e6);
        }
    }
    fflush(stdout);
    esg_client_free(orders);
    esg_client_free(t.follower);
    for (size_t i = 0; i < n_pids; i++)
        bench_stop_process(pids[i]);
    pthread_mutex_destroy(&t.lock);
    free(t.orders);
    return ok;
}

/* ---- Output ---- */

static double ratio_to_floor(const bench_figure *f)
{
    const bench_figure *floor = f->floor_key[0] ? bench_figure_find(f->floor_key) : NULL;
    if (floor == NULL || bench_figure_median(floor) == 0)
        return NAN;
    return bench_figure_median(f) / bench_figure_median(floor);
}

static double ratio_to_reference(const bench_figure *f)
{
    if (isnan(f->reference_lo))
        return NAN;
    return bench_figure_median(f) / ((f->reference_lo + f->reference_hi) / 2);
}

static void json_number(FILE *out, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", out);
    else
        fprintf(out, "%.6g", v);
}

static void write_json(const options *o, const char *path, const char *skipped)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "esg_bench: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(out, "{\n  \"date\": \"%s\",\n  \"mode\": \"%s\",\n  \"runs\": %d,\n", date,
            o->is_short ? "short" : "full", o->n_runs);
    fprintf(out, "  \"measure_ms\": %lld,\n  \"warm_ms\": %lld,\n  \"skipped\": \"%s\",\n",
            (long long)(o->measure_ns / 1000000), (long long)(o->warm_ns / 1000000), skipped);
    fprintf(out, "  \"figures\": [\n");
    for (size_t i = 0; i < bench_n_figures(); i++) {
        const bench_figure *f = bench_figure_at(i);
        fprintf(out,
                "    {\"key\": \"%s\", \"label\": \"%s\", \"unit\": \"%s\", \"median\": ", f->key,
                f->label, f->unit);
        json_number(out, bench_figure_median(f));
        fputs(", \"min\": ", out);
        json_number(out, bench_figure_min(f));
        fputs(", \"max\": ", out);
        json_number(out, bench_figure_max(f));
        fputs(", \"ratio_to_floor\": ", out);
        json_number(out, ratio_to_floor(f));
        fputs(", \"reference\": ", out);
        json_number(out, f->reference_lo);
        fputs(", \"reference_hi\": ", out);
        json_number(out, f->reference_hi);
        fputs(", \"runs\": [", out);
        for (int r = 0; r < f->n_values; r++) {
            if (r > 0)
                fputs(", ", out);
            json_number(out, f->values[r]);
        }
        fprintf(out, "]}%s\n", i + 1 < bench_n_figures() ? "," : "");
    }
    fprintf(out, "  ]\n}\n");
    fclose(out);
}

static void cell(FILE *out, double v, const char *suffix)
{
    char text[64];
    if (isnan(v)) {
        fputs(" | ", out);
        return;
    }
    bench_format(v, text, sizeof text);
    fprintf(out, " | %s%s", text, suffix);
}

static void write_table(const char *path)
{
    FILE *out = fopen(path, "w");
    if (out == NULL)
        return;
    fprintf(out,
            "| figure | unit | median | min | max | / floor | Python reference | / reference |\n"
            "|---|---|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < bench_n_figures(); i++) {
        const bench_figure *f = bench_figure_at(i);
        const char *slash = strchr(f->key, '/');
        char where[64];
        snprintf(where, sizeof where, "%.*s", slash ? (int)(slash - f->key) : 0, f->key);
        if (strcmp(where, "system") == 0)
            snprintf(where, sizeof where, "%.*s", (int)(strchr(slash + 1, '/') - slash - 1),
                     slash + 1);
        else if (strcmp(where, "replicas") == 0) /* replicas/N/...: "postgres, N per app" */
            snprintf(where, sizeof where, "postgres, %.*s per application",
                     (int)(strchr(slash + 1, '/') - slash - 1), slash + 1);
        fprintf(out, "| %s: %s | %s", where, f->label, f->unit);
        cell(out, bench_figure_median(f), "");
        cell(out, bench_figure_min(f), "");
        cell(out, bench_figure_max(f), "");
        cell(out, ratio_to_floor(f), "x");
        if (isnan(f->reference_lo)) {
            fputs(" | ", out);
        } else {
            char lo[32], hi[32];
            bench_format(f->reference_lo, lo, sizeof lo);
            bench_format(f->reference_hi, hi, sizeof hi);
            if (f->reference_lo == f->reference_hi)
                fprintf(out, " | %s", lo);
            else
                fprintf(out, " | %s-%s", lo, hi);
        }
        cell(out, ratio_to_reference(f), "x");
        fputs(" |\n", out);
    }
    fclose(out);
}

/* One target: the figure's median against a bound (or its ratio to the floor). */
typedef struct target {
    const char *text; /* the wording */
    const char *key;  /* the figure */
    bool is_ratio;    /* compare the ratio to the floor, not the value */
    bool is_minimum;  /* value >= bound; else value < bound */
    double bound;
} target;

static void write_targets(const char *path, int *n_missed)
{
    static const target targets[] = {
        {"in memory, Ping from 1 client >= 0.8 of the floor", "memory/ping/1", true, true, 0.8},
        {"in memory, Ping from 8 clients >= 0.8 of the floor", "memory/ping/8", true, true, 0.8},
        {"in memory, create_new_order from 1 client >= 0.8 of the floor",
         "memory/create_new_order/1", true, true, 0.8},
        {"in memory, create_new_order from 8 clients >= 0.8 of the floor",
         "memory/create_new_order/8", true, true, 0.8},
        {"in memory, get_order from 1 client >= 0.8 of the floor", "memory/get_order/1", true, true,
         0.8},
        {"in memory, get_order from 8 clients >= 0.8 of the floor", "memory/get_order/8", true,
         true, 0.8},
        {"SQLite, create_new_order from 8 clients >= 0.5 of the floor", "sqlite/create_new_order/8",
         true, true, 0.5},
        {"SQLite, get_order from 8 clients >= 0.5 of the floor", "sqlite/get_order/8", true, true,
         0.5},
        {"PostgreSQL, create_new_order from 8 clients >= 0.5 of the floor",
         "postgres/create_new_order/8", true, true, 0.5},
        {"created to paid < 2 ms at the median, in memory", "system/memory/paid_p50_ms", false,
         false, 2},
        {"created to paid < 5 ms at the median, SQLite", "system/sqlite/paid_p50_ms", false, false,
         5},
        {"orders/s end to end >= 10x the reference (10 x 870), in memory",
         "system/memory/orders_per_s", false, true, 8700},
        {"orders/s end to end >= 10x the reference (10 x 370), SQLite",
         "system/sqlite/orders_per_s", false, true, 3700},
        {"first order paid within 100 ms of the system being up, in memory",
         "system/memory/first_paid_after_up_ms", false, false, 100},
        {"first order paid within 100 ms of the system being up, SQLite",
         "system/sqlite/first_paid_after_up_ms", false, false, 100},
        {"first order paid within 100 ms of the system being up, PostgreSQL",
         "system/postgres/first_paid_after_up_ms", false, false, 100},
        {"< 10 MB resident per idle server, in memory", "memory/rss_idle", false, false, 10},
        {"< 10 MB resident per idle server, SQLite", "sqlite/rss_idle", false, false, 10},
        {"< 10 MB resident per idle server, in the system (largest of 3), in memory",
         "system/memory/rss_idle", false, false, 10},
        {"first Ping within 20 ms of start, in memory", "memory/startup_ms", false, false, 20},
        {"first Ping within 20 ms of start, SQLite", "sqlite/startup_ms", false, false, 20},
        {"< 10 MB resident per idle server, PostgreSQL", "postgres/rss_idle", false, false, 10},
        {"the same, counting only the server's private pages (not shared libraries), in memory",
         "memory/private_idle", false, false, 10},
        {"the same, counting only the server's private pages, SQLite", "sqlite/private_idle", false,
         false, 10},
        {"the same, counting only the server's private pages, PostgreSQL", "postgres/private_idle",
         false, false, 10},
        {"first Ping within 20 ms of start, PostgreSQL", "postgres/startup_ms", false, false, 20},
        /* Speed, second round (issue 19). */
        {"second round: created to paid < 1 ms at the median, in memory",
         "system/memory/paid_p50_ms", false, false, 1},
        {"second round: created to paid < 3 ms at the median, SQLite", "system/sqlite/paid_p50_ms",
         false, false, 3},
        {"second round: created to paid < 4 ms at the median, PostgreSQL",
         "system/postgres/paid_p50_ms", false, false, 4},
        {"second round: orders/s end to end >= 3,000, PostgreSQL", "system/postgres/orders_per_s",
         false, true, 3000},
        {"second round: server CPU per order paid <= 120 us, in memory",
         "system/memory/cpu_per_order", false, false, 120.0001},
        {"second round: PostgreSQL, create_new_order from 8 clients >= 0.4 of the floor",
         "postgres/create_new_order/8", true, true, 0.4},
        {"second round: in memory, get_order from 1 client >= 0.9 of the floor",
         "memory/get_order/1", true, true, 0.9},
        {"second round: in memory, get_order from 8 clients >= 0.9 of the floor",
         "memory/get_order/8", true, true, 0.9},
        {"second round: in memory, pages of 1,000 >= 0.5 of the floor's constant page of 1,000",
         "memory/get_notifications_1000/1", true, true, 0.5},
    };
    FILE *out = fopen(path, "w");
    if (out == NULL)
        return;
    *n_missed = 0;
    fprintf(out, "| target | measured (median) | verdict |\n|---|--:|---|\n");
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const target *t = &targets[i];
        const bench_figure *f = bench_figure_find(t->key);
        if (f == NULL) {
            if (strstr(t->key, "postgres") == NULL)
                fprintf(out, "| %s | not measured | - |\n", t->text);
            continue;
        }
        double v = t->is_ratio ? ratio_to_floor(f) : bench_figure_median(f);
        bool met = t->is_minimum ? v >= t->bound : v < t->bound;
        char text[32], verdict[160];
        bench_format(v, text, sizeof text);
        if (met)
            snprintf(verdict, sizeof verdict, "met");
        else if (t->is_minimum)
            snprintf(verdict, sizeof verdict, "**missed**: %.0f%% of the target, %.2fx short",
                     100 * v / t->bound, t->bound / v);
        else
            snprintf(verdict, sizeof verdict, "**missed**: %.2fx the bound", v / t->bound);
        if (!met)
            (*n_missed)++;
        fprintf(out, "| %s | %s %s | %s |\n", t->text, text, t->is_ratio ? "x floor" : f->unit,
                verdict);
    }
    fclose(out);
}

/* ---- Main ---- */

static const char usage[] =
    "usage: esg_bench [--short] [--runs N] [--seconds S] [--out DIR] [--server PATH]\n"
    "                 [--floor PATH] [--only floor|servers|systems|replicas]\n"
    "Measures eventsourcing_grpc_server and the floor server; writes DIR/latest.json,\n"
    "DIR/table.md, DIR/targets.md and DIR/dist-*.dat (DIR: bench/results).\n"
    "PostgreSQL is measured when POSTGRES_DBNAME (and the other POSTGRES_* settings) are set.\n";

int main(int argc, char **argv)
{
    options o = {.n_runs = 5,
                 .warm_ns = 300000000,
                 .measure_ns = 2000000000,
                 .n_single_orders = 200,
                 .load_ns = 3000000000,
                 .out_dir = "bench/results",
                 .server = ESG_BENCH_SERVER_PROGRAM,
                 .floor = ESG_BENCH_FLOOR_PROGRAM};
    bool runs_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--short") == 0) {
            o.is_short = true;
        } else if (strcmp(a, "--runs") == 0 && next) {
            o.n_runs = atoi(next);
            runs_given = true;
            i++;
        } else if (strcmp(a, "--seconds") == 0 && next) {
            o.measure_ns = (int64_t)(atof(next) * 1e9);
            i++;
        } else if (strcmp(a, "--out") == 0 && next) {
            o.out_dir = next;
            i++;
        } else if (strcmp(a, "--server") == 0 && next) {
            o.server = next;
            i++;
        } else if (strcmp(a, "--only") == 0 && next) {
            o.only = next;
            i++;
        } else if (strcmp(a, "--floor") == 0 && next) {
            o.floor = next;
            i++;
        } else {
            fputs(usage, strcmp(a, "--help") == 0 ? stdout : stderr);
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    if (o.is_short) {
        o.n_runs = runs_given ? o.n_runs : 1;
        o.warm_ns = 50000000;
        o.measure_ns = 200000000;
        o.n_single_orders = 10;
        o.load_ns = 300000000;
    }
    if (o.n_runs < 1 || o.n_runs > BENCH_MAX_RUNS) {
        fprintf(stderr, "esg_bench: --runs must be 1 to %d\n", BENCH_MAX_RUNS);
        return 2;
    }
    mkdir(o.out_dir, 0777);
    snprintf(o.tmp_dir, sizeof o.tmp_dir, "%s/esg-bench-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(o.tmp_dir) == NULL) {
        fprintf(stderr, "esg_bench: cannot make a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    /* gRPC stays up between the many clients made and freed here. */
    grpc_init();
    bool use_postgres = postgres_is_configured();
    const char *skipped = use_postgres ? "" : "PostgreSQL (no POSTGRES_DBNAME in the environment)";
    size_t n_backends = use_postgres ? 3 : 2;
    backend chosen[3];
    memcpy(chosen, backends, sizeof chosen);

    bool ok = true;
    for (int run = 0; run < o.n_runs; run++) {
        printf("run %d of %d\n", run + 1, o.n_runs);
        fflush(stdout);
        if (o.only == NULL || strcmp(o.only, "floor") == 0)
            ok = bench_floor(&o) && ok;
        for (size_t b = 0; b < n_backends && (o.only == NULL || strcmp(o.only, "servers") == 0);
             b++)
            ok = bench_server(&o, &chosen[b], run) && bench_cached_get(&o, &chosen[b], run) &&
                 bench_keys_off(&o, &chosen[b], run) && ok;
        for (size_t b = 0; b < n_backends && (o.only == NULL || strcmp(o.only, "systems") == 0);
             b++)
            ok = bench_system(&o, &chosen[b], run) && ok;
        for (int n = 1; use_postgres && n <= MAX_REPLICAS &&
                        (o.only == NULL || strcmp(o.only, "replicas") == 0);
             n++)
            ok = bench_replicas(&o, &chosen[2], run, n) && ok;
    }
    if (!use_postgres)
        printf("skipped: %s\n", skipped);

    char path[600];
    snprintf(path, sizeof path, "%s/latest.json", o.out_dir);
    write_json(&o, path, skipped);
    snprintf(path, sizeof path, "%s/table.md", o.out_dir);
    write_table(path);
    int n_missed = 0;
    snprintf(path, sizeof path, "%s/targets.md", o.out_dir);
    write_targets(path, &n_missed);
    printf("%d target%s missed (see %s)\n", n_missed, n_missed == 1 ? "" : "s", path);

    /* The databases: SQLite's files and the folder. */
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", o.tmp_dir);
    if (system(command) != 0)
        fprintf(stderr, "esg_bench: could not remove %s\n", o.tmp_dir);
    grpc_shutdown();
    if (!ok)
        fprintf(stderr, "esg_bench: some measurements failed (see above)\n");
    return ok ? 0 : 1;
}
