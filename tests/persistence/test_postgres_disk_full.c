/* PostgreSQL on a full disk, under an application that keeps running: the test's own server
 * (scripts/postgres-test-server.sh, its path the program's one argument) with its data on a
 * tmpfs of a mount namespace of the test's own, filled by a file until orders no longer fit.
 * Every failure is a clear error, never a crash of the application; once the file is removed,
 * orders are taken again (the server is started again if it gave up, as its supervisor would),
 * and every acknowledged order is there, in a gapless log. Mounting needs root (CAP_SYS_ADMIN):
 * skipped with a message otherwise. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "esg/example.h"
#include "pg_testutil.h"

#define N_BEFORE 20
#define MAX_ORDERS 200000
#define RECOVERY_MS 90000

static const char *script;
static bool has_private_mounts;

/* Fills the file system of dir but for leave bytes, with a file: its path in out. */
static void fill(const char *dir, unsigned long long leave, char *out, size_t size)
{
    struct statvfs st;
    assert_int_equal(statvfs(dir, &st), 0);
    unsigned long long free_bytes = (unsigned long long)st.f_bavail * st.f_frsize;
    snprintf(out, size, "%s/filler", dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_true(free_bytes > leave);
    assert_int_equal(posix_fallocate(fd, 0, (off_t)(free_bytes - leave)), 0);
    close(fd);
}

static esg_status create_order(esg_application *orders, esg_uuid *out, esg_error *err)
{
    esg_value *id = NULL;
    esg_status rc = esg_application_call(orders, "create_new_order", NULL, NULL, &id, err);
    if (rc == ESG_OK)
        *out = *esg_value_as_uuid(id);
    esg_value_free(id);
    return rc;
}

static void test_a_full_disk_loses_nothing_acknowledged(void **state)
{
    (void)state;
    if (!has_private_mounts) {
        print_message("skipped: cannot make a private mount namespace (not root?)\n");
        skip();
    }
    /* Under /tmp and 0755, so that the server's user (postgres, when root runs the test)
     * reaches it and the script keeps the data in it. */
    char dir[] = "/tmp/esg-pg-full-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (mount("esg-pg-full", dir, "tmpfs", 0, "size=192m,mode=0755") != 0) {
        print_message("skipped: mount tmpfs: %s\n", strerror(errno));
        rmdir(dir);
        skip();
    }
    testutil_postgres_script(script, "start", dir, ">/dev/null");
    char port[16], password[128];
    testutil_postgres_dir_value(dir, "port", port, sizeof port);
    testutil_postgres_dir_value(dir, "password", password, sizeof password);
    esg_env *env = testutil_env_new();
    testutil_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.postgres");
    testutil_env_set(env, "POSTGRES_HOST", "127.0.0.1");
    testutil_env_set(env, "POSTGRES_PORT", port);
    testutil_env_set(env, "POSTGRES_DBNAME", "esg_test");
    testutil_env_set(env, "POSTGRES_USER", "esg_test");
    testutil_env_set(env, "POSTGRES_PASSWORD", password);
    testutil_env_set(env, "POSTGRES_CONNECT_TIMEOUT", "2");
    esg_error err = {0};
    esg_application *orders = NULL;
    assert_esg_ok(esg_application_new(&esg_example_orders, env, &orders, &err), &err);
    esg_uuid *acked = calloc(MAX_ORDERS + 100, sizeof *acked);
    assert_non_null(acked);
    size_t n_acked = 0;
    for (int i = 0; i < N_BEFORE; i++)
        assert_esg_ok(create_order(orders, &acked[n_acked++], &err), &err);

    /* The disk fills up: orders until one fails, with a reason. */
    char filler[600];
    fill(dir, 4u << 20, filler, sizeof filler);
    esg_status rc = ESG_OK;
    while (n_acked < MAX_ORDERS && (rc = create_order(orders, &acked[n_acked], &err)) == ESG_OK)
        n_acked++;
    print_message("full after %zu orders: %s: %s\n", n_acked, esg_status_name(rc), err.message);
    if (rc != ESG_EIO && rc != ESG_EUNAVAILABLE)
        fail_msg("a full disk gave %s: %s", esg_status_name(rc), err.message);
    /* Still full: more attempts fail as clearly (the server may be down by now). */
    for (int i = 0; i < 3; i++) {
        rc = create_order(orders, &acked[n_acked], &err);
        if (rc == ESG_OK)
            n_acked++;
        else if (rc != ESG_EIO && rc != ESG_EUNAVAILABLE)
            fail_msg("on a full disk: %s: %s", esg_status_name(rc), err.message);
    }

    /* Room again: orders are taken again, within RECOVERY_MS. */
    assert_int_equal(unlink(filler), 0);
    int64_t started = esg_clock_now_ms();
    bool is_restarted = false;
    while ((rc = create_order(orders, &acked[n_acked], &err)) != ESG_OK) {
        if (rc != ESG_EIO && rc != ESG_EUNAVAILABLE)
            fail_msg("after the disk had room again: %s: %s", esg_status_name(rc), err.message);
        if (esg_clock_now_ms() - started > RECOVERY_MS)
            fail_msg("no order taken %d ms after the disk had room: %s", RECOVERY_MS, err.message);
        char status_line[2048];
        snprintf(status_line, sizeof status_line, "'%s' status '%s'", script, dir);
        if (!is_restarted && system(status_line) != 0) { /* the server gave up: start it again */
            testutil_postgres_script(script, "start", dir, ">/dev/null");
            is_restarted = true;
        }
        esg_clock_sleep_ms(200);
    }
    n_acked++;
    print_message("orders taken again %lld ms after the disk had room%s\n",
                  (long long)(esg_clock_now_ms() - started),
                  is_restarted ? " (the server had stopped: started again)" : "");

    /* Every acknowledged order is there, in a new application too, and the log is gapless. */
    esg_application *reader = NULL;
    assert_esg_ok(esg_application_new(&esg_example_orders, env, &reader, &err), &err);
    for (size_t i = 0; i < n_acked; i++) {
        esg_aggregate *order = NULL;
        assert_esg_ok(esg_application_get(reader, &acked[i], 0, &order, &err), &err);
        esg_aggregate_free(order);
    }
    int64_t max_id = testutil_max_notification_id(reader);
    esg_notification_list all = {0};
    assert_esg_ok(
        esg_application_select_notifications(reader, 1, max_id + 1, 0, NULL, 0, &all, &err), &err);
    assert_int_equal((int64_t)all.n_items, max_id);
    for (size_t i = 0; i < all.n_items; i++)
        assert_int_equal(all.items[i].id, (int64_t)i + 1);
    print_message("%zu orders acknowledged, all there; the log holds %lld notifications, 1..%lld\n",
                  n_acked, (long long)max_id, (long long)max_id);
    assert_true(max_id >= (int64_t)n_acked);
    esg_notification_list_clear(&all);
    esg_application_free(reader);
    esg_application_free(orders);
    esg_env_free(env);
    free(acked);
    testutil_postgres_script(script, "stop", dir, ">/dev/null");
    assert_int_equal(umount2(dir, MNT_DETACH), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s POSTGRES_TEST_SERVER_SCRIPT\n", argv[0]);
        return 2;
    }
    script = argv[1];
    /* The tmpfs made here vanishes with this process's mount namespace. */
    has_private_mounts =
        unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_disk_loses_nothing_acknowledged),
    };
    return cmocka_run_group_tests_name("postgres disk full", tests, NULL, NULL);
}
