/* Helpers shared by the test programs (see testutil.h). */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <pthread.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

json_t *testutil_load_vector(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ESG_TEST_VECTORS_DIR, name);
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    if (root == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, error.text, error.line);
    return root;
}

esg_status testutil_count_method(esg_application *app, esg_value *const *params, esg_value **result,
                                 esg_error *err)
{
    (void)params;
    int64_t n = 0;
    esg_status rc = esg_recorder_max_notification_id(esg_application_recorder(app), &n, err);
    if (rc == ESG_OK && (*result = esg_value_int(n)) == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory returning a count");
    return rc;
}

esg_value *testutil_json_value(const char *json)
{
    esg_value *value = NULL;
    esg_error err = {0};
    if (esg_json_decode(json, strlen(json), &value, &err) != ESG_OK)
        fail_msg("'%s' does not decode: %s", json, err.message);
    return value;
}

bool testutil_has_bytes(const uint8_t *data, size_t len, const char *text)
{
    size_t text_len = strlen(text);
    for (size_t i = 0; i + text_len <= len; i++)
        if (memcmp(data + i, text, text_len) == 0)
            return true;
    return false;
}

uint8_t *testutil_unhex(const char *hex, size_t *len)
{
    size_t hex_len = strlen(hex);
    if (hex_len % 2 != 0)
        fail_msg("odd hex length %zu", hex_len);
    uint8_t *bytes = malloc(hex_len / 2 + 1);
    assert_non_null(bytes);
    for (size_t i = 0; i < hex_len / 2; i++) {
        const char *pair = hex + 2 * i;
        if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]) ||
            sscanf(pair, "%2hhx", &bytes[i]) != 1)
            fail_msg("bad hex at %zu", 2 * i);
    }
    bytes[hex_len / 2] = 0;
    *len = hex_len / 2;
    return bytes;
}

char *testutil_make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char template[1024];
    snprintf(template, sizeof template, "%s/esg-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(template);
    if (dir == NULL)
        fail_msg("mkdtemp failed");
    return strdup(dir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testutil_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void testutil_discard_temp_dir(char *dir)
{
    if (dir == NULL)
        return;
    testutil_remove_tree(dir);
    free(dir);
}

/* Whether entry ("KEY=value") has the key of one of the n entries or names. */
static bool has_key_of(const char *entry, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t key_len = strcspn(keys[i], "=");
        if (strncmp(entry, keys[i], key_len) == 0 && entry[key_len] == '=')
            return true;
    }
    return false;
}

char **testutil_environment_with(const char *const *settings, size_t n, const char *const *unset,
                                 size_t n_unset)
{
    size_t n_environ = 0;
    while (environ[n_environ] != NULL)
        n_environ++;
    char **envp = calloc(n_environ + n + 1, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n_environ; i++)
        if (!has_key_of(environ[i], settings, n) && !has_key_of(environ[i], unset, n_unset))
            envp[k++] = environ[i];
    for (size_t j = 0; j < n; j++)
        envp[k++] = (char *)settings[j];
    return envp;
}

/* name itself when it holds a '/', else the first executable of that name on PATH (into path). */
static const char *find_program(const char *name, char *path, size_t size)
{
    if (strchr(name, '/') != NULL)
        return name;
    const char *dirs = getenv("PATH");
    while (dirs != NULL && *dirs != '\0') {
        size_t len = strcspn(dirs, ":");
        snprintf(path, size, "%.*s/%s", (int)len, dirs, name);
        if (access(path, X_OK) == 0)
            return path;
        dirs += len + (dirs[len] == ':');
    }
    fail_msg("%s is not on PATH", name);
    return NULL;
}

pid_t testutil_spawn(char *const *argv, const char *log_path, const char *const *settings, size_t n,
                     const char *const *unset, size_t n_unset, const struct rlimit *files)
{
    char found[4096];
    const char *program = find_program(argv[0], found, sizeof found);
    char **envp = testutil_environment_with(settings, n, unset, n_unset);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0)
        fail_msg("cannot open %s or /dev/null: %s", log_path, strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls here. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (files != NULL && setrlimit(RLIMIT_NOFILE, files) != 0)
            _exit(127);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execve(program, argv, envp);
        _exit(127);
    }
    int fork_errno = errno;
    close(log_fd);
    close(null_fd);
    free(envp);
    if (pid < 0)
        fail_msg("fork for %s: %s", argv[0], strerror(fork_errno));
    return pid;
}

esg_uuid testutil_random_uuid(void)
{
    esg_uuid id;
    esg_uuid4(&id);
    return id;
}

bool testutil_reap(pid_t pid, int64_t timeout_ms, int *status)
{
    int64_t deadline = esg_clock_now_ms() + timeout_ms;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            return got == pid;
        if (esg_clock_now_ms() > deadline)
            return false;
        esg_clock_sleep_ms(2);
    }
}

void testutil_free_ports(int *ports, size_t n)
{
    int fds[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        struct sockaddr_in address = {.sin_family = AF_INET};
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&address, sizeof address), 0);
        socklen_t len = sizeof address;
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&address, &len), 0);
        ports[i] = ntohs(address.sin_port);
    }
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

char *testutil_read_all(int fd)
{
    size_t size = 0, capacity = 65536;
    char *text = malloc(capacity);
    assert_non_null(text);
    for (;;) {
        ssize_t n = read(fd, text + size, capacity - size - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the end, or an error: what came so far */
        size += (size_t)n;
        if (capacity - size < 4096) {
            capacity *= 2;
            char *bigger = realloc(text, capacity);
            assert_non_null(bigger);
            text = bigger;
        }
    }
    text[size] = '\0';
    return text;
}

char *testutil_http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        close(fd);
        fail_msg("cannot connect to 127.0.0.1:%d: %s", port, strerror(error));
    }
    char request[512];
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\n\r\n", path);
    bool is_sent = write(fd, request, (size_t)len) == len;
    char *text = is_sent ? testutil_read_all(fd) : strdup("(the request could not be sent)");
    close(fd);
    assert_non_null(text);
    char *body = strstr(text, "\r\n\r\n");
    if (strncmp(text, "HTTP/1.", 7) != 0 || strncmp(text + 8, " 200", 4) != 0 || body == NULL) {
        char start[101]; /* what came instead, for the message; text is freed before failing */
        snprintf(start, sizeof start, "%s", text);
        free(text);
        fail_msg("GET %s from port %d: %s", path, port, start);
        return NULL; /* not reached: fail_msg leaves the test */
    }
    memmove(text, body + 4, strlen(body + 4) + 1);
    return text;
}

double testutil_sample_sum(const char *text, const char *prefix)
{
    double sum = 0;
    bool is_found = false;
    size_t len = strlen(prefix);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        const char *value = end != NULL ? end : line + strlen(line);
        while (value > line && value[-1] != ' ') /* the value is the line's last field */
            value--;
        if (strncmp(line, prefix, len) == 0 && value > line) {
            sum += strtod(value, NULL);
            is_found = true;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return is_found ? sum : -1;
}

double testutil_sample_value(const char *text, const char *prefix)
{
    char exact[1024]; /* the prefix, then the space before the value */
    int len = snprintf(exact, sizeof exact, "%s ", prefix);
    assert_true(len > 0 && (size_t)len < sizeof exact);
    return testutil_sample_sum(text, exact);
}

/* ---- Fixtures, environments and command lines ----------------------------------- */

int testutil_setup(void **state)
{
    testutil_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->temp_dir = testutil_make_temp_dir();
    f->env = testutil_env_new();
    *state = f;
    return 0;
}

int testutil_teardown(void **state)
{
    testutil_fixture *f = *state;
    esg_env_free(f->env);
    testutil_discard_temp_dir(f->temp_dir);
    free(f);
    return 0;
}

esg_env *testutil_env_new(void)
{
    esg_env *env = esg_env_new();
    assert_non_null(env);
    return env;
}

void testutil_env_set(esg_env *env, const char *key, const char *value)
{
    esg_error err = {0};
    assert_esg_ok(esg_env_set(env, key, value, &err), &err);
}

void testutil_env_use_sqlite(esg_env *env, const char *app_name, const char *path)
{
    char *key = esg_env_prefixed_key(app_name, "SQLITE_DBNAME");
    assert_non_null(key);
    testutil_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.sqlite");
    testutil_env_set(env, key, path);
    esg_free(key);
}

void testutil_env_use_sqlite_dir(esg_env *env, const char *dir, const char *const *app_names,
                                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.db", dir, app_names[i]);
        testutil_env_use_sqlite(env, app_names[i], path);
    }
}

int testutil_run_per_backend(int argc, char **argv, const char *title, const char *const *names,
                             size_t n_names, int *backend, const struct CMUnitTest *tests,
                             size_t n_tests)
{
    *backend = testutil_backend_from_args(argc, argv, names, n_names);
    if (*backend < 0)
        return 2;
    char group[128];
    snprintf(group, sizeof group, "%s (%s)", title, argv[1]);
    return _cmocka_run_group_tests(group, tests, n_tests, NULL, NULL);
}

typedef struct together {
    pthread_barrier_t *start;
    void *(*fn)(void *);
    void *arg;
} together;

static void *start_together(void *arg)
{
    together *t = arg;
    pthread_barrier_wait(t->start);
    return t->fn(t->arg);
}

void testutil_run_together(size_t n, void *(*fn)(void *), void *args, size_t size)
{
    pthread_barrier_t start;
    pthread_t *threads = calloc(n, sizeof *threads);
    together *each = calloc(n, sizeof *each);
    assert_non_null(threads);
    assert_non_null(each);
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (size_t i = 0; i < n; i++) {
        each[i] = (together){&start, fn, (char *)args + i * size};
        assert_int_equal(pthread_create(&threads[i], NULL, start_together, &each[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    free(each);
    free(threads);
}

void testutil_env_use_postgres(esg_env *env)
{
    testutil_env_set(env, "PERSISTENCE_MODULE", "eventsourcing.postgres");
    const char *keys[] = {"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER",
                          "POSTGRES_PASSWORD"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (getenv(keys[i]) == NULL)
            fail_msg("%s is not set: run under scripts/postgres-test-server.sh run", keys[i]);
        testutil_env_set(env, keys[i], getenv(keys[i]));
    }
}

int testutil_backend_from_args(int argc, char **argv, const char *const *names, size_t n)
{
    for (size_t i = 0; argc == 2 && i < n; i++)
        if (strcmp(argv[1], names[i]) == 0)
            return (int)i;
    fprintf(stderr, "usage: %s ", argv[0]);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%s", i > 0 ? "|" : "", names[i]);
    fprintf(stderr, "\n");
    return -1;
}

int64_t testutil_max_notification_id(esg_application *app)
{
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(esg_recorder_max_notification_id(esg_application_recorder(app), &max_id, &err),
                  &err);
    return max_id;
}

int64_t testutil_max_tracking_id(esg_application *app, const char *leader)
{
    esg_error err = {0};
    int64_t max_id = -1;
    assert_esg_ok(
        esg_recorder_max_tracking_id(esg_application_recorder(app), leader, &max_id, &err), &err);
    return max_id;
}

/* ---- The example system's orders ------------------------------------------------ */

esg_value *testutil_id_args(const esg_uuid *id)
{
    esg_value *args = esg_value_array();
    assert_non_null(args);
    assert_int_equal(esg_array_append(args, esg_value_uuid(id)), ESG_OK);
    return args;
}

esg_uuid testutil_take_uuid(esg_value *result)
{
    assert_non_null(result);
    assert_int_equal(esg_value_type(result), ESG_TYPE_UUID);
    esg_uuid id = *esg_value_as_uuid(result);
    esg_value_free(result);
    return id;
}

bool testutil_take_bool(esg_value *result)
{
    assert_non_null(result);
    assert_int_equal(esg_value_type(result), ESG_TYPE_BOOL);
    bool answer = esg_value_as_bool(result);
    esg_value_free(result);
    return answer;
}

esg_uuid testutil_derived_id(const char *kind, const esg_uuid *order_id)
{
    char text[ESG_UUID_STR_SIZE], name[128];
    esg_uuid_str(order_id, text);
    snprintf(name, sizeof name, "/%s/%s/", kind, text);
    esg_uuid id;
    esg_uuid5_url(&id, name);
    return id;
}

void testutil_assert_one_order_log(const esg_notification_list *log, const esg_uuid *order_id)
{
    static const char *const topics[] = {"eventsourcing_grpc.example:Order.Created",
                                         "eventsourcing_grpc.example:Order.Reserved",
                                         "eventsourcing_grpc.example:Order.Paid"};
    assert_int_equal(log->n_items, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(log->items[i].id, (int64_t)i + 1);
        assert_true(esg_uuid_equal(&log->items[i].event.originator_id, order_id));
        assert_int_equal(log->items[i].event.originator_version, (int64_t)i + 1);
        assert_string_equal(log->items[i].event.topic, topics[i]);
    }
}
