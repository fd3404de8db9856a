/* SQLite I/O faults under the SQLite recorder (src/persistence/sqlite_recorder.c), injected by a
 * VFS that wraps the default one ("unix") and is registered as the default: the k-th write
 * (xWrite) or sync (xSync) of the database's files after arming fails with SQLITE_IOERR_WRITE,
 * SQLITE_FULL (and every later write too, as a full disk does) or SQLITE_IOERR_FSYNC, for every
 * k until a transaction no longer reaches a k-th point. Two transactions are hit:
 * an application's save (Orders' create_new_order) and a process application's event processing
 * (Reservations pulling Orders' log: its events and tracking record). For each k the caller must
 * get ESG_EIO with SQLite's reason, or ESG_OK only when the data is durable; then, fault removed:
 * the same application writes again, PRAGMA integrity_check is ok, every acknowledged event is
 * readable, notification ids and tracking records have no gaps, and nothing is half written (an
 * event without its tracking record, or the reverse). Each case also runs in a child process
 * that exits without closing anything right after the failed call (a crash), and the database
 * is checked when reopened (SQLite recovers the WAL). */
#define _GNU_SOURCE /* unshare */
#include "sqlite_testutil.h"
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esg/application.h"
#include "esg/example.h"
#include "esg/recorder.h"

/* ---- The fault-injecting VFS --------------------------------------------------------------- */

typedef enum fault_point { POINT_WRITE, POINT_SYNC } fault_point;

typedef struct fault_plan {
    const char *name;  /* for messages */
    fault_point point; /* which calls count */
    int error;         /* the result code of the failing call */
    bool is_sticky;    /* every later point fails too (a full disk stays full) */
    bool is_db_only;   /* only the main database file counts (not -wal, -shm): checkpoints */
} fault_plan;

static const fault_plan plans[] = {
    {"write fails (SQLITE_IOERR_WRITE)", POINT_WRITE, SQLITE_IOERR_WRITE, false, false},
    {"disk full (SQLITE_FULL, every later write too)", POINT_WRITE, SQLITE_FULL, true, false},
    {"fsync fails (SQLITE_IOERR_FSYNC)", POINT_SYNC, SQLITE_IOERR_FSYNC, false, false},
};

/* The armed fault: only files whose name starts with target count. The tests are single
 * threaded (the recorder runs on the caller's thread). */
static struct {
    char target[1300];
    const fault_plan *plan;
    long countdown; /* the countdown-th point fails; 0: disarmed */
    long n_points;  /* points seen while armed */
    bool has_fired;
} fault;

typedef struct fault_file {
    sqlite3_file base;  /* first: SQLite sees this */
    sqlite3_file *real; /* the wrapped file, in the same allocation, right after */
    const char *name;   /* valid until xClose (SQLite keeps it), NULL for temporary files */
} fault_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;

static void arm(const char *target, const fault_plan *plan, long k)
{
    snprintf(fault.target, sizeof fault.target, "%s", target);
    fault.plan = plan;
    fault.countdown = k;
    fault.n_points = 0;
    fault.has_fired = false;
}

static void disarm(void)
{
    fault.countdown = 0;
}

/* Whether this call, a point of kind, fails. */
static bool is_failing(const fault_file *file, fault_point kind)
{
    if (fault.countdown <= 0 || fault.plan->point != kind || file->name == NULL ||
        strncmp(file->name, fault.target, strlen(fault.target)) != 0 ||
        (fault.plan->is_db_only && strcmp(file->name, fault.target) != 0))
        return false;
    fault.n_points++;
    if (fault.n_points == fault.countdown || (fault.has_fired && fault.plan->is_sticky)) {
        fault.has_fired = true;
        return true;
    }
    return false;
}

#define REAL(f) (((fault_file *)(f))->real)

static int fault_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods != NULL ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    return rc;
}
static int fault_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 offset)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, offset);
}
static int fault_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 offset)
{
    if (is_failing((fault_file *)f, POINT_WRITE))
        return fault.plan->error;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, offset);
}
static int fault_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int fault_sync(sqlite3_file *f, int flags)
{
    if (is_failing((fault_file *)f, POINT_SYNC))
        return fault.plan->error;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int fault_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int fault_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}
static int fault_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}
static int fault_check_reserved_lock(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int fault_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int fault_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int fault_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int fault_shm_map(sqlite3_file *f, int page, int page_size, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), page, page_size, extend, out);
}
static int fault_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void fault_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int fault_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}
static int fault_fetch(sqlite3_file *f, sqlite3_int64 offset, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), offset, n, out);
}
static int fault_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), offset, p);
}

static const sqlite3_io_methods fault_io_methods = {
    3,
    fault_close,
    fault_read,
    fault_write,
    fault_truncate,
    fault_sync,
    fault_file_size,
    fault_lock,
    fault_unlock,
    fault_check_reserved_lock,
    fault_file_control,
    fault_sector_size,
    fault_device_characteristics,
    fault_shm_map,
    fault_shm_lock,
    fault_shm_barrier,
    fault_shm_unmap,
    fault_fetch,
    fault_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                      int *out_flags)
{
    (void)vfs;
    fault_file *file = (fault_file *)f;
    file->real = (sqlite3_file *)(file + 1);
    file->name = name;
    int rc = real_vfs->xOpen(real_vfs, name, file->real, flags, out_flags);
    /* SQLite calls xClose when pMethods is set, even after a failed open. */
    file->base.pMethods = file->real->pMethods != NULL ? &fault_io_methods : NULL;
    return rc;
}

static void register_fault_vfs(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(real_vfs);
    assert_true(real_vfs->iVersion >= 1);
    fault_vfs = *real_vfs;
    fault_vfs.zName = "esg_fault";
    fault_vfs.szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile;
    fault_vfs.xOpen = fault_open;
    fault_vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
}

/* ---- Helpers ------------------------------------------------------------------------------- */

#define MAX_POINTS 200 /* a transaction here reaches far fewer: the loop ends before */

static char *dir;

/* An environment (the caller frees it) that puts the application of type on the SQLite file
 * path. */
static esg_env *sqlite_env(const esg_application_type *type, const char *path)
{
    esg_env *env = testutil_env_new();
    testutil_env_use_sqlite(env, type->name, path);
    return env;
}

/* The application of type on the SQLite file path. */
static esg_application *open_app(const esg_application_type *type, const char *path)
{
    esg_error err = {0};
    esg_env *env = sqlite_env(type, path);
    esg_application *app = NULL;
    assert_esg_ok(esg_application_new(type, env, &app, &err), &err);
    esg_env_free(env);
    return app;
}

static esg_status create_order(esg_application *app, esg_uuid *id, esg_error *err)
{
    esg_value *result = NULL;
    esg_status rc = esg_application_call(app, "create_new_order", NULL, NULL, &result, err);
    if (rc == ESG_OK) {
        assert_non_null(esg_value_as_uuid(result));
        *id = *esg_value_as_uuid(result);
    }
    esg_value_free(result);
    return rc;
}

static void assert_order_readable(esg_application *app, const esg_uuid *id)
{
    esg_error err = {0};
    esg_aggregate *order = NULL;
    assert_esg_ok(esg_application_get(app, id, 0, &order, &err), &err);
    esg_aggregate_free(order);
}

/* The reservation the example derives from an order. */
static esg_uuid reservation_id(const esg_uuid *order_id)
{
    char text[ESG_UUID_STR_SIZE], name[128];
    esg_uuid_str(order_id, text);
    snprintf(name, sizeof name, "/reservations/%s/", text);
    esg_uuid out;
    esg_uuid5_url(&out, name);
    return out;
}

/* What a store holds, read with SQLite itself (the fault disarmed). */
typedef struct store_facts {
    int64_t n_events, max_notification_id;
    int64_t n_tracking, max_tracking_id;
} store_facts;

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* integrity_check ok, notification ids 1..n without gaps, tracking ids 1..m (one leader). */
static store_facts check_store(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fail_msg("cannot open %s: %s", path, sqlite3_errmsg(db));
    testutil_sqlite_assert_intact(db, path);
    store_facts facts;
    facts.n_events = query_int(db, "SELECT count(*) FROM stored_events");
    facts.max_notification_id = query_int(db, "SELECT ifnull(max(rowid), 0) FROM stored_events");
    facts.n_tracking = query_int(db, "SELECT count(*) FROM tracking");
    facts.max_tracking_id = query_int(db, "SELECT ifnull(max(notification_id), 0) FROM tracking");
    sqlite3_close(db);
    if (facts.n_events != facts.max_notification_id)
        fail_msg("%s: %lld events but notification ids up to %lld", path, (long long)facts.n_events,
                 (long long)facts.max_notification_id);
    if (facts.n_tracking != facts.max_tracking_id)
        fail_msg("%s: %lld tracking records but ids up to %lld", path, (long long)facts.n_tracking,
                 (long long)facts.max_tracking_id);
    return facts;
}

/* The outcome of one armed call. */
typedef struct outcome {
    esg_status rc;
    bool has_fired;
    long n_points;
    char message[ESG_ERROR_MESSAGE_SIZE];
} outcome;

static outcome run_armed_end(esg_status rc, const esg_error *err)
{
    outcome out = {.rc = rc, .has_fired = fault.has_fired, .n_points = fault.n_points};
    snprintf(out.message, sizeof out.message, "%s", rc == ESG_OK ? "" : err->message);
    disarm();
    return out;
}

/* A fault that fired must give ESG_EIO with SQLite's reason, unless it hit after the commit
 * (then ESG_OK, and the caller checks the data is there); one that did not fire, ESG_OK. A
 * failed sync of a write's commit is ESG_EUNAVAILABLE, "the outcome is unknown" (the frames are
 * in the WAL: a crash may bring them back), as a PostgreSQL commit without an answer is. */
static void check_outcome(const outcome *out, const fault_plan *plan, long k, const char *what)
{
    if (!out->has_fired) {
        if (out->rc != ESG_OK)
            fail_msg("%s, no fault fired (k=%ld): %s", what, k, out->message);
        return;
    }
    if (out->rc == ESG_OK)
        return;
    bool is_write = strncmp(what, "opening", 7) != 0; /* (opening creates tables, not a write) */
    if (plan->error == SQLITE_IOERR_FSYNC && is_write) {
        if (out->rc != ESG_EUNAVAILABLE || strstr(out->message, "the outcome is unknown") == NULL)
            fail_msg("%s, %s at point %ld: status %s, ESG_EUNAVAILABLE and an unknown outcome "
                     "expected (%s)",
                     what, plan->name, k, esg_status_name(out->rc), out->message);
        return;
    }
    if (out->rc != ESG_EIO)
        fail_msg("%s, %s at point %ld: status %s, ESG_EIO expected (%s)", what, plan->name, k,
                 esg_status_name(out->rc), out->message);
    const char *reason = plan->error == SQLITE_FULL ? "database or disk is full" : "disk I/O error";
    if (strstr(out->message, reason) == NULL)
        fail_msg("%s, %s at point %ld: the message does not say '%s': %s", what, plan->name, k,
                 reason, out->message);
}

/* What a write's failure under the plan is, for the report. */
static const char *write_failure(const fault_plan *plan)
{
    return plan->error == SQLITE_IOERR_FSYNC ? "ESG_EUNAVAILABLE (outcome unknown)" : "ESG_EIO";
}

/* Counts a fired fault's outcome: a failed call, or ESG_OK when it hit after the commit. False
 * when no fault fired: the walk has passed the last point. */
static bool count_fired(const outcome *out, long *n_failing, long *n_ok_after_fault)
{
    if (!out->has_fired)
        return false;
    *n_failing += out->rc != ESG_OK;
    *n_ok_after_fault += out->rc == ESG_OK;
    return true;
}

/* Runs fn in a child process that ends with _exit and never closes its databases, as a crash
 * does; the child writes its outcome and the acknowledged ids into a pipe. The outcome is
 * checked as check_outcome does, for "<what> (then a crash)". */
typedef struct crash_report {
    outcome out;
    size_t n_acked;
    esg_uuid acked[8];
} crash_report;

typedef void (*crash_fn)(const fault_plan *plan, long k, const char *prefix, crash_report *report);

static crash_report run_in_child(crash_fn fn, const fault_plan *plan, long k, const char *prefix,
                                 const char *what)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_report report;
        memset(&report, 0, sizeof report); /* padding too: the bytes go through the pipe */
        fn(plan, k, prefix, &report);
        ssize_t n = write(fds[1], &report, sizeof report);
        _exit(n == (ssize_t)sizeof report ? 0 : 3);
    }
    close(fds[1]);
    crash_report report;
    memset(&report, 0, sizeof report);
    size_t got = 0;
    while (got < sizeof report) {
        ssize_t n = read(fds[0], (char *)&report + got, sizeof report - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof report)
        fail_msg("the child (k=%ld) failed: wait status %#x", k, (unsigned)status);
    char crash_what[200];
    snprintf(crash_what, sizeof crash_what, "%s (then a crash)", what);
    check_outcome(&report.out, plan, k, crash_what);
    return report;
}

/* ---- An application's save ----------------------------------------------------------------- */

#define N_BEFORE 3

/* Opens Orders, creates N_BEFORE orders (acknowledged), then creates one more with the fault
 * armed at point k. */
static esg_application *save_with_fault(const fault_plan *plan, long k, const char *path,
                                        crash_report *report)
{
    esg_error err = {0};
    esg_application *orders = open_app(&esg_example_orders, path);
    for (size_t i = 0; i < N_BEFORE; i++)
        assert_esg_ok(create_order(orders, &report->acked[report->n_acked++], &err), &err);
    arm(path, plan, k);
    esg_uuid id;
    esg_status rc = create_order(orders, &id, &err);
    report->out = run_armed_end(rc, &err);
    if (rc == ESG_OK)
        report->acked[report->n_acked++] = id;
    return orders;
}

static void save_then_crash(const fault_plan *plan, long k, const char *path, crash_report *report)
{
    (void)save_with_fault(plan, k, path, report); /* never closed: the process ends */
}

/* Closes orders (taken), checks that its store at path holds n_events events, and reads the
 * acknowledged orders (n_acked of them) again from the reopened file. */
static void check_reopened(esg_application *orders, const char *path, const esg_uuid *acked,
                           size_t n_acked, int64_t n_events)
{
    esg_application_free(orders);
    store_facts facts = check_store(path);
    assert_int_equal(facts.n_events, n_events);
    orders = open_app(&esg_example_orders, path);
    for (size_t i = 0; i < n_acked; i++)
        assert_order_readable(orders, &acked[i]);
    esg_application_free(orders);
}

/* After the fault: the acknowledged orders are readable, nothing else is there, and the
 * database takes new writes. */
static void check_after_save(esg_application *orders, const char *path, crash_report *report,
                             bool may_hold_unacknowledged)
{
    esg_error err = {0};
    for (size_t i = 0; i < report->n_acked; i++)
        assert_order_readable(orders, &report->acked[i]);
    int64_t n_events = testutil_max_notification_id(orders);
    /* A crash right after a failed fsync may keep that transaction (the WAL frames reached the
     * file): all of it, which the store check below sees as one more whole event. */
    if (n_events != (int64_t)report->n_acked &&
        !(may_hold_unacknowledged && n_events == (int64_t)report->n_acked + 1))
        fail_msg("%s: %lld events after the fault, %zu acknowledged", path, (long long)n_events,
                 report->n_acked);
    assert_esg_ok(create_order(orders, &report->acked[report->n_acked++], &err), &err);
    check_reopened(orders, path, report->acked, report->n_acked, n_events + 1);
}

static void test_faults_in_save(void **state)
{
    (void)state;
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        const fault_plan *plan = &plans[p];
        long n_failing = 0, n_ok_after_fault = 0, n_resurrected = 0;
        long k = 1;
        for (; k <= MAX_POINTS; k++) {
            char path[1200];
            /* In this process: the same application writes again after the fault. */
            snprintf(path, sizeof path, "%s/save-%zu-%ld-live.db", dir, p, k);
            crash_report report = {0};
            esg_application *orders = save_with_fault(plan, k, path, &report);
            check_outcome(&report.out, plan, k, "create_new_order");
            check_after_save(orders, path, &report, false);
            if (!count_fired(&report.out, &n_failing, &n_ok_after_fault))
                break;

            /* A crash right after the failed call. */
            snprintf(path, sizeof path, "%s/save-%zu-%ld-crash.db", dir, p, k);
            report = run_in_child(save_then_crash, plan, k, path, "create_new_order");
            check_store(path);
            orders = open_app(&esg_example_orders, path);
            int64_t n_events = testutil_max_notification_id(orders);
            n_resurrected += n_events > (int64_t)report.n_acked;
            check_after_save(orders, path, &report, true);
        }
        if (k > MAX_POINTS)
            fail_msg("%s: the save still reached point %d", plan->name, MAX_POINTS);
        /* The loop must have hit the transaction at least once. */
        assert_true(n_failing > 0);
        print_message("save, %s: %ld points, %ld failed with %s, %ld returned ESG_OK (the "
                      "fault came after the commit); after a crash %ld failed saves were kept "
                      "whole by WAL recovery\n",
                      plan->name, k - 1, n_failing, write_failure(plan), n_ok_after_fault,
                      n_resurrected);
    }
}

/* ---- A process application's transaction: its events and tracking record ---------------- */

#define N_PROCESSED_BEFORE 3
#define N_PENDING 2

/* Reservations follows Orders: N_PROCESSED_BEFORE orders processed, then N_PENDING more
 * processed with the fault armed at point k (two transactions, one per notification). */
static void process_with_fault(const fault_plan *plan, long k, const char *prefix,
                               crash_report *report, esg_application **orders_out,
                               esg_application **reservations_out)
{
    esg_error err = {0};
    char orders_path[1200], reservations_path[1200];
    snprintf(orders_path, sizeof orders_path, "%s-orders.db", prefix);
    snprintf(reservations_path, sizeof reservations_path, "%s-reservations.db", prefix);
    esg_application *orders = open_app(&esg_example_orders, orders_path);
    esg_application *reservations = open_app(&esg_example_reservations, reservations_path);
    esg_notification_log log;
    esg_application_local_log(orders, &log);
    for (size_t i = 0; i < N_PROCESSED_BEFORE + N_PENDING; i++) {
        assert_esg_ok(create_order(orders, &report->acked[report->n_acked++], &err), &err);
        if (i + 1 == N_PROCESSED_BEFORE) {
            int64_t n = 0;
            assert_esg_ok(esg_application_pull_and_process(reservations, &log, &n, &err), &err);
            assert_int_equal(n, N_PROCESSED_BEFORE);
        }
    }
    arm(reservations_path, plan, k);
    esg_status rc = esg_application_pull_and_process(reservations, &log, NULL, &err);
    report->out = run_armed_end(rc, &err);
    *orders_out = orders;
    *reservations_out = reservations;
}

static void process_then_crash(const fault_plan *plan, long k, const char *prefix,
                               crash_report *report)
{
    esg_application *orders = NULL, *reservations = NULL;
    process_with_fault(plan, k, prefix, report, &orders, &reservations);
}

/* The reservations store: events and tracking records go together (each notification of
 * Orders here is an order created, so each tracking record has exactly one reservation). */
static store_facts check_reservations_store(const char *prefix)
{
    char path[1200];
    snprintf(path, sizeof path, "%s-reservations.db", prefix);
    store_facts facts = check_store(path);
    if (facts.n_events != facts.n_tracking)
        fail_msg("%s: %lld reservations but %lld tracking records (half written)", path,
                 (long long)facts.n_events, (long long)facts.n_tracking);
    if (facts.n_tracking < N_PROCESSED_BEFORE)
        fail_msg("%s: %lld tracking records, %d were acknowledged", path,
                 (long long)facts.n_tracking, N_PROCESSED_BEFORE);
    return facts;
}

/* Pulls again without a fault: every order gets exactly one reservation, and a pull after
 * reopening finds nothing left to do. */
static void check_after_process(esg_application *orders, esg_application *reservations,
                                const char *prefix, const crash_report *report)
{
    esg_error err = {0};
    esg_notification_log log;
    esg_application_local_log(orders, &log);
    assert_esg_ok(esg_application_pull_and_process(reservations, &log, NULL, &err), &err);
    esg_application_free(reservations);
    store_facts facts = check_reservations_store(prefix);
    assert_int_equal(facts.n_tracking, N_PROCESSED_BEFORE + N_PENDING);
    char path[1200];
    snprintf(path, sizeof path, "%s-reservations.db", prefix);
    reservations = open_app(&esg_example_reservations, path);
    int64_t n = -1;
    assert_esg_ok(esg_application_pull_and_process(reservations, &log, &n, &err), &err);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < report->n_acked; i++) {
        esg_uuid id = reservation_id(&report->acked[i]);
        assert_order_readable(reservations, &id);
    }
    esg_application_free(reservations);
    esg_application_free(orders);
}

static void test_faults_in_event_processing(void **state)
{
    (void)state;
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        const fault_plan *plan = &plans[p];
        long n_failing = 0, n_ok_after_fault = 0;
        long k = 1;
        for (; k <= MAX_POINTS; k++) {
            char prefix[1100];
            snprintf(prefix, sizeof prefix, "%s/process-%zu-%ld-live", dir, p, k);
            crash_report report = {0};
            esg_application *orders = NULL, *reservations = NULL;
            process_with_fault(plan, k, prefix, &report, &orders, &reservations);
            check_outcome(&report.out, plan, k, "pull_and_process");
            /* The live application, before anything else: what it tracked is what it wrote. */
            int64_t tracked = testutil_max_tracking_id(reservations, "Orders");
            if (report.out.rc != ESG_OK && tracked >= N_PROCESSED_BEFORE + N_PENDING)
                fail_msg("%s at point %ld: pull failed but tracked everything", plan->name, k);
            check_reservations_store(prefix);
            check_after_process(orders, reservations, prefix, &report);
            if (!count_fired(&report.out, &n_failing, &n_ok_after_fault))
                break;

            snprintf(prefix, sizeof prefix, "%s/process-%zu-%ld-crash", dir, p, k);
            report = run_in_child(process_then_crash, plan, k, prefix, "pull_and_process");
            check_reservations_store(prefix);
            char path[1200];
            snprintf(path, sizeof path, "%s-orders.db", prefix);
            orders = open_app(&esg_example_orders, path);
            snprintf(path, sizeof path, "%s-reservations.db", prefix);
            reservations = open_app(&esg_example_reservations, path);
            check_after_process(orders, reservations, prefix, &report);
        }
        if (k > MAX_POINTS)
            fail_msg("%s: processing still reached point %d", plan->name, MAX_POINTS);
        assert_true(n_failing > 0);
        print_message(
            "event processing (%d notifications, batched or not), %s: %ld points, %ld failed with "
            "%s, %ld returned ESG_OK\n",
            N_PENDING, plan->name, k - 1, n_failing, write_failure(plan), n_ok_after_fault);
    }
}

/* ---- Opening a database ------------------------------------------------------------------ */

/* Opening a new database (WAL mode, the tables) with a fault at each point: a clear error, and
 * the same file opens and works once the fault is gone. */
static void test_faults_when_opening(void **state)
{
    (void)state;
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        const fault_plan *plan = &plans[p];
        long k = 1, n_failing = 0;
        for (; k <= MAX_POINTS; k++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/open-%zu-%ld.db", dir, p, k);
            esg_env *env = sqlite_env(&esg_example_orders, path);
            esg_error err = {0};
            esg_application *orders = NULL;
            arm(path, plan, k);
            esg_status rc = esg_application_new(&esg_example_orders, env, &orders, &err);
            outcome out = run_armed_end(rc, &err);
            esg_env_free(env);
            check_outcome(&out, plan, k, "opening");
            esg_application_free(orders);
            n_failing += out.has_fired && rc != ESG_OK;
            orders = open_app(&esg_example_orders, path);
            crash_report report = {0};
            assert_esg_ok(create_order(orders, &report.acked[report.n_acked++], &err), &err);
            esg_application_free(orders);
            assert_int_equal(check_store(path).n_events, 1);
            if (!out.has_fired)
                break;
        }
        if (k > MAX_POINTS)
            fail_msg("%s: opening still reached point %d", plan->name, MAX_POINTS);
        print_message("opening, %s: %ld points, %ld failed with ESG_EIO\n", plan->name, k - 1,
                      n_failing);
    }
}

/* ---- A checkpoint (WAL pages copied into the database) after a commit ---------------------- */

static const fault_plan checkpoint_plans[] = {
    {"checkpoint write fails (SQLITE_IOERR_WRITE)", POINT_WRITE, SQLITE_IOERR_WRITE, false, true},
    {"checkpoint fsync fails (SQLITE_IOERR_FSYNC)", POINT_SYNC, SQLITE_IOERR_FSYNC, false, true},
    {"disk full during checkpoints (SQLITE_FULL)", POINT_WRITE, SQLITE_FULL, true, true},
};

/* Creates an order: acknowledged (its id at acked[*n_acked], counted there) or failed (counted in
 * *n_failed). */
static void try_create_order(esg_application *orders, esg_uuid *acked, size_t *n_acked,
                             size_t *n_failed)
{
    esg_error err = {0};
    if (create_order(orders, &acked[*n_acked], &err) == ESG_OK)
        (*n_acked)++;
    else
        (*n_failed)++;
}

/* Orders are saved until SQLite's automatic checkpoint (at 1000 WAL pages) writes the database
 * file, where the fault is: the commit before it stands (ESG_OK, durable), later saves work. */
static void test_faults_in_checkpoint(void **state)
{
    (void)state;
    enum { MAX_ORDERS = 4000, AFTER = 20 };
    for (size_t p = 0; p < sizeof checkpoint_plans / sizeof checkpoint_plans[0]; p++) {
        const fault_plan *plan = &checkpoint_plans[p];
        char path[1200];
        snprintf(path, sizeof path, "%s/checkpoint-%zu.db", dir, p);
        esg_application *orders = open_app(&esg_example_orders, path);
        esg_uuid *acked = calloc(MAX_ORDERS + AFTER, sizeof *acked);
        assert_non_null(acked);
        size_t n_acked = 0, n_failed = 0, fired_at = 0;
        arm(path, plan, 1);
        while (n_acked < MAX_ORDERS && !fault.has_fired) {
            try_create_order(orders, acked, &n_acked, &n_failed);
        }
        fired_at = n_acked;
        /* A full disk stays full for a few more saves. */
        for (size_t i = 0; i < AFTER && plan->is_sticky; i++) {
            try_create_order(orders, acked, &n_acked, &n_failed);
        }
        disarm();
        if (!fault.has_fired)
            fail_msg("%s: no checkpoint after %d orders", plan->name, MAX_ORDERS);
        for (size_t i = 0; i < AFTER; i++) {
            esg_error err = {0};
            assert_esg_ok(create_order(orders, &acked[n_acked++], &err), &err);
        }
        for (size_t i = 0; i < n_acked; i++)
            assert_order_readable(orders, &acked[i]);
        check_reopened(orders, path, acked, n_acked, (int64_t)n_acked);
        free(acked);
        print_message("%s: fired after %zu orders, %zu saves failed, %zu acknowledged orders all "
                      "readable\n",
                      plan->name, fired_at, n_failed, n_acked);
    }
}

/* ---- A real full disk: a small tmpfs --------------------------------------------------------- */

static bool has_private_mounts;

/* Orders on a 512 KiB tmpfs: saves until the disk is full (ESG_EIO, "database or disk is full"),
 * the acknowledged orders still readable; then the file system grows and saves work again, and
 * the database is intact. Mounting needs root (CAP_SYS_ADMIN): skipped without. */
static void test_full_tmpfs(void **state)
{
    (void)state;
    if (!has_private_mounts) {
        print_message("skipped: cannot make a private mount namespace (not root?)\n");
        skip();
    }
    char mount_dir[1100];
    snprintf(mount_dir, sizeof mount_dir, "%s/tmpfs", dir);
    assert_int_equal(mkdir(mount_dir, 0700), 0);
    if (mount("esg-full", mount_dir, "tmpfs", 0, "size=512k") != 0) {
        print_message("skipped: mount tmpfs: %s\n", strerror(errno));
        skip();
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/orders.db", mount_dir);
    esg_application *orders = open_app(&esg_example_orders, path);
    enum { MAX_ORDERS = 20000 };
    esg_uuid *acked = calloc(MAX_ORDERS + 10, sizeof *acked);
    assert_non_null(acked);
    size_t n_acked = 0;
    esg_status rc = ESG_OK;
    esg_error err = {0};
    while (n_acked < MAX_ORDERS && (rc = create_order(orders, &acked[n_acked], &err)) == ESG_OK)
        n_acked++;
    if (rc != ESG_EIO || strstr(err.message, "database or disk is full") == NULL)
        fail_msg("after %zu orders on a full disk: %s: %s", n_acked, esg_status_name(rc),
                 err.message);
    print_message("full after %zu orders: %s\n", n_acked, err.message);
    /* Still full: another save fails the same way, reads work. */
    rc = create_order(orders, &acked[n_acked], &err);
    assert_int_equal(rc, ESG_EIO);
    for (size_t i = 0; i < n_acked; i++)
        assert_order_readable(orders, &acked[i]);
    /* Room again. */
    assert_int_equal(mount(NULL, mount_dir, NULL, MS_REMOUNT, "size=16m"), 0);
    for (size_t i = 0; i < 10; i++)
        assert_esg_ok(create_order(orders, &acked[n_acked++], &err), &err);
    check_reopened(orders, path, acked, n_acked, (int64_t)n_acked);
    free(acked);
    assert_int_equal(umount(mount_dir), 0);
}

static int setup(void **state)
{
    (void)state;
    dir = testutil_make_temp_dir();
    return dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    testutil_discard_temp_dir(dir);
    return 0;
}

int main(void)
{
    /* Mounts made here (the tmpfs test) vanish with this process. */
    has_private_mounts =
        unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    register_fault_vfs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_in_save),
        cmocka_unit_test(test_faults_in_event_processing),
        cmocka_unit_test(test_faults_when_opening),
        cmocka_unit_test(test_faults_in_checkpoint),
        cmocka_unit_test(test_full_tmpfs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
