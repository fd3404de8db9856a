/* The gRPC runner: starts every application of a system as a gRPC server, as
 * nodes in threads of this process or as eventsourcing_grpc_server
 * subprocesses, gives addresses to those without one, connects a client to
 * each, watches for a server that dies, and stops them all quickly. */
#include <errno.h>
#include <grpc/grpc.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esg/runner.h"
#include "esg/log.h"
#include "grpc/credentials.h"
#include "core/clock.h"
#include "core/settings.h"
#include "grpc/exit_codes.h"
#include "core/alloc.h"

#define SERVER_PROGRAM "eventsourcing_grpc_server"
#define FIRST_PORT 50051
/* Connecting: one Ping per attempt, backoff doubling up to a cap, so that a
 * server that needs a moment is found soon and a dead one noticed between tries. */
#define CONNECT_ATTEMPTS 50
#define CONNECT_FIRST_BACKOFF_MS 20
#define CONNECT_MAX_BACKOFF_MS 250
#define PROBE_DEADLINE_MS 1000
#define CONNECT_KEPT_ATTEMPTS 3 /* for the client kept, once a probe was answered */
/* Stopping subprocesses: SIGTERM, then SIGKILL for those still alive. */
#define STOP_GRACE_MS 2000
#define STOP_POLL_MS 10

/* One application of the system and the server that runs it. */
typedef struct runner_app {
    const char *name;                 /* borrowed from the system */
    const esg_application_type *type; /* borrowed from the system's definition */
    char *address;                    /* where its server listens, owned */
    esg_node *node;                   /* threads mode: its node, owned */
    pid_t pid;                        /* subprocess mode: its server, 0 before spawning */
    bool is_reaped;                   /* the subprocess was waited for: never signal it */
    esg_client *client;               /* connected once its server answered; owned */
} runner_app;

struct esg_grpc_runner {
    esg_runner_mode mode; /* threads or subprocesses */
    esg_system *system;   /* the system's graph, owned; names are borrowed from it */
    esg_env *env;         /* the base environment with every address set, owned */
    runner_app *apps;     /* one per node, in node order, owned */
    size_t n_apps;        /* the system's nodes */
    bool has_grpc;        /* grpc_init was called: keeps gRPC up between clients */
    pthread_mutex_t lock; /* guards pid, is_reaped, has_errored and error */
    bool has_errored;     /* a server died or a node failed */
    esg_error error;      /* the first such failure */
};

/* ---- Helpers ------------------------------------------------------------------- */

static runner_app *find_app(const esg_grpc_runner *runner, const char *name)
{
    if (runner == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < runner->n_apps; i++)
        if (strcmp(runner->apps[i].name, name) == 0)
            return &runner->apps[i];
    return NULL;
}

/* Records the first failure for has_errored; later ones are dropped. Lock held. */
static void record_error_locked(esg_grpc_runner *runner, const esg_error *error)
{
    if (runner->has_errored)
        return;
    runner->has_errored = true;
    runner->error = *error;
}

/* Says how a waited-for child ended, in words a person can act on. */
static void describe_exit(const runner_app *app, int status, esg_error *out)
{
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        esg_error_set(out, ESG_EUNAVAILABLE, "%s server (pid %ld) exited with status %d%s",
                      app->name, (long)app->pid, code, esg_exit_code_meaning(code));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        esg_error_set(out, ESG_EUNAVAILABLE, "%s server (pid %ld) was killed by signal %d (%s)",
                      app->name, (long)app->pid, sig, strsignal(sig));
    } else {
        esg_error_set(out, ESG_EUNAVAILABLE, "%s server (pid %ld) ended with wait status %d",
                      app->name, (long)app->pid, status);
    }
}

/* Reaps the app's subprocess if it has ended, recording why; true when it
 * has ended (now or before). Lock held. */
static bool reap_if_ended_locked(esg_grpc_runner *runner, runner_app *app, esg_error *why)
{
    if (app->pid <= 0)
        return false;
    if (app->is_reaped) {
        if (why != NULL)
            *why = runner->error; /* recorded when it was reaped, unless another came first */
        return true;
    }
    int status = 0;
    pid_t pid;
    do {
        pid = waitpid(app->pid, &status, WNOHANG);
    } while (pid < 0 && errno == EINTR);
    if (pid == 0)
        return false;
    esg_error error = {0};
    if (pid < 0) {
        /* ECHILD: someone else reaped it (SIGCHLD ignored, or a wait(-1)). */
        esg_error_set(&error, ESG_EUNAVAILABLE, "%s server (pid %ld) exited (status unknown: %s)",
                      app->name, (long)app->pid, strerror(errno));
    } else {
        describe_exit(app, status, &error);
    }
    app->is_reaped = true;
    record_error_locked(runner, &error);
    if (why != NULL)
        *why = error;
    return true;
}

/* ---- Addresses --------------------------------------------------------------------- */

static bool port_is_taken(const int *ports, size_t n_ports, int port)
{
    for (size_t i = 0; i < n_ports; i++)
        if (ports[i] == port)
            return true;
    return false;
}

/* The port of a "host:port" address, or 0 when it has none we can read. */
static int address_port(const char *address)
{
    char host[256];
    int port = 0;
    if (address == NULL || esg_address_split(address, host, sizeof host, &port, NULL) != ESG_OK)
        return 0;
    return port;
}

/* A port that every server of one machine would take: KEY without a prefix (with a port other
 * than 0) read by two applications or more that have no <APP>_KEY of their own. */
static esg_status check_unshared(const esg_grpc_runner *runner, const char *key, esg_error *err)
{
    size_t n_sharing = 0;
    esg_setting setting = {0};
    for (size_t i = 0; i < runner->n_apps; i++) {
        esg_setting_lookup(runner->env, runner->apps[i].name, key, &setting);
        if (setting.value != NULL && setting.value[0] != '\0' && strcmp(setting.key, key) == 0 &&
            address_port(setting.value) != 0)
            n_sharing++;
    }
    if (n_sharing > 1)
        return esg_error_set(err, ESG_ECONFIG,
                             "%s is set for the whole system: %zu servers would listen on one "
                             "port; set <APP>_%s for each application instead (or a port of 0)",
                             key, n_sharing, key);
    return ESG_OK;
}

/* Keeps every address already set and gives the others localhost:50051, 50052,
 * ... in node order, skipping the ports of the addresses set (the reference's
 * runner overwrote them). Fills app->address. */
static esg_status assign_addresses(esg_grpc_runner *runner, esg_error *err)
{
    esg_status rc = ESG_OK;
    size_t n_env = esg_env_len(runner->env);
    /* Room for every address set (counted once per app and once more when
     * the env names it too) and every port assigned. */
    int *taken = esg_calloc(2 * runner->n_apps + n_env + 1, sizeof *taken);
    size_t n_taken = 0;
    char **keys = esg_calloc(runner->n_apps + 1, sizeof *keys);
    if (taken == NULL || keys == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory assigning addresses");
        goto out;
    }
    /* Ports given to this system's applications, and to any other application
     * named in the environment. */
    for (size_t i = 0; i < runner->n_apps; i++) {
        keys[i] = esg_env_prefixed_key(runner->apps[i].name, "GRPC_SERVER_ADDRESS");
        if (keys[i] == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory assigning addresses");
            goto out;
        }
    }
    static const char suffix[] = "_GRPC_SERVER_ADDRESS";
    for (size_t i = 0; i < n_env; i++) {
        const char *key = esg_env_key_at(runner->env, i);
        size_t key_len = strlen(key);
        if (key_len <= strlen(suffix) || strcmp(key + key_len - strlen(suffix), suffix) != 0)
            continue;
        int port = address_port(esg_env_value_at(runner->env, i));
        if (port > 0)
            taken[n_taken++] = port;
    }
    int next_port = FIRST_PORT;
    for (size_t i = 0; i < runner->n_apps; i++) {
        const char *address = esg_env_get(runner->env, keys[i]);
        bool is_set = address != NULL && address[0] != '\0';
        char assigned[32];
        if (!is_set) {
            while (port_is_taken(taken, n_taken, next_port))
                next_port++;
            snprintf(assigned, sizeof assigned, "localhost:%d", next_port);
            taken[n_taken++] = next_port;
            rc = esg_env_set(runner->env, keys[i], assigned, err);
            if (rc != ESG_OK)
                goto out;
        }
        runner->apps[i].address = esg_strdup(is_set ? address : assigned);
        if (runner->apps[i].address == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory assigning addresses");
            goto out;
        }
    }
out:
    for (size_t i = 0; keys != NULL && i < runner->n_apps; i++)
        esg_free(keys[i]);
    esg_free(keys);
    esg_free(taken);
    return rc;
}

/* ---- Subprocesses --------------------------------------------------------------------- */

/* An environment for the servers: the runner's env as "KEY=VALUE" strings,
 * with two free slots at the end for APPLICATION_TOPIC and SYSTEM_TOPIC,
 * which are set per child. */
typedef struct child_environment {
    char **strings; /* NULL-terminated after the two topic slots; owned */
    size_t n;       /* strings before the topic slots */
} child_environment;

static void child_environment_free(child_environment *ce)
{
    for (size_t i = 0; ce->strings != NULL && i < ce->n; i++)
        esg_free(ce->strings[i]);
    esg_free(ce->strings);
    ce->strings = NULL;
    ce->n = 0;
}

static esg_status child_environment_build(const esg_grpc_runner *runner, child_environment *ce,
                                          esg_error *err)
{
    size_t n_env = esg_env_len(runner->env);
    ce->n = 0;
    ce->strings = esg_calloc(n_env + 3, sizeof *ce->strings);
    if (ce->strings == NULL)
        goto nomem;
    for (size_t i = 0; i < n_env; i++) {
        const char *key = esg_env_key_at(runner->env, i);
        const char *value = esg_env_value_at(runner->env, i);
        if (strcmp(key, "APPLICATION_TOPIC") == 0 || strcmp(key, "SYSTEM_TOPIC") == 0)
            continue;
        char *entry = esg_malloc(strlen(key) + 1 + strlen(value) + 1);
        if (entry == NULL)
            goto nomem;
        sprintf(entry, "%s=%s", key, value);
        ce->strings[ce->n++] = entry;
    }
    return ESG_OK;
nomem:
    child_environment_free(ce);
    return esg_error_set(err, ESG_ENOMEM, "out of memory building the servers' environment");
}

/* The server program to run: the option, else eventsourcing_grpc_server
 * beside this program, else the name alone for posix_spawnp to find in PATH. */
static char *server_program_path(const esg_grpc_runner_options *options)
{
    if (options != NULL && options->server_program != NULL && options->server_program[0] != '\0')
        return esg_strdup(options->server_program);
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL && (size_t)(slash + 1 - self) + sizeof SERVER_PROGRAM <= sizeof self) {
            strcpy(slash + 1, SERVER_PROGRAM);
            if (access(self, X_OK) == 0)
                return esg_strdup(self);
        }
    }
    return esg_strdup(SERVER_PROGRAM);
}

/* Spawns one server per application. The children start with no signal
 * blocked and default dispositions, whatever this process blocks (console
 * programs block SIGINT and SIGTERM to sigwait for them). */
static esg_status spawn_servers(esg_grpc_runner *runner, const esg_system_def *def,
                                const esg_grpc_runner_options *options, esg_error *err)
{
    esg_status rc = ESG_OK;
    child_environment ce = {0};
    char *program = NULL;
    char *system_topic = NULL;
    char *app_topic = NULL;
    bool has_attr = false;
    posix_spawnattr_t attr;

    program = server_program_path(options);
    system_topic = esg_malloc(strlen("SYSTEM_TOPIC=") + strlen(def->topic) + 1);
    if (program == NULL || system_topic == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting servers");
        goto out;
    }
    sprintf(system_topic, "SYSTEM_TOPIC=%s", def->topic);
    rc = child_environment_build(runner, &ce, err);
    if (rc != ESG_OK)
        goto out;
    if (posix_spawnattr_init(&attr) != 0) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting servers");
        goto out;
    }
    has_attr = true;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *app = &runner->apps[i];
        if (app->type->topic == NULL || app->type->topic[0] == '\0') {
            rc = esg_error_set(err, ESG_EINVAL,
                               "application %s has no topic: a server cannot load it", app->name);
            goto out;
        }
        esg_free(app_topic);
        app_topic = esg_malloc(strlen("APPLICATION_TOPIC=") + strlen(app->type->topic) + 1);
        if (app_topic == NULL) {
            rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting servers");
            goto out;
        }
        sprintf(app_topic, "APPLICATION_TOPIC=%s", app->type->topic);
        ce.strings[ce.n] = app_topic;
        ce.strings[ce.n + 1] = system_topic;
        ce.strings[ce.n + 2] = NULL;
        /* The topic in argv too (it is in the environment already): ps then tells the
         * servers apart. */
        char *argv[] = {program, (char *)app->type->topic, NULL};
        pid_t pid = 0;
        int spawn_errno = posix_spawnp(&pid, program, NULL, &attr, argv, ce.strings);
        ce.strings[ce.n] = NULL;
        if (spawn_errno != 0) {
            /* A program that is not there or not runnable is a matter of configuration. */
            rc = esg_error_set(
                err,
                spawn_errno == ENOENT || spawn_errno == EACCES ? ESG_ECONFIG : ESG_EUNAVAILABLE,
                "cannot run %s for %s: %s", program, app->name, strerror(spawn_errno));
            goto out;
        }
        pthread_mutex_lock(&runner->lock);
        app->pid = pid;
        pthread_mutex_unlock(&runner->lock);
    }
out:
    if (has_attr)
        posix_spawnattr_destroy(&attr);
    esg_free(app_topic);
    esg_free(system_topic);
    esg_free(program);
    child_environment_free(&ce);
    return rc;
}

/* SIGTERM to every live server, SIGKILL to those alive after STOP_GRACE_MS,
 * and every one reaped: no zombies. */
static void stop_servers(esg_grpc_runner *runner)
{
    pthread_mutex_lock(&runner->lock);
    size_t n_live = 0;
    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *app = &runner->apps[i];
        if (app->pid > 0 && !app->is_reaped) {
            kill(app->pid, SIGTERM);
            n_live++;
        }
    }
    int64_t deadline = esg_clock_now_ms() + STOP_GRACE_MS;
    while (n_live > 0) {
        n_live = 0;
        for (size_t i = 0; i < runner->n_apps; i++) {
            runner_app *app = &runner->apps[i];
            if (app->pid <= 0 || app->is_reaped)
                continue;
            int status;
            pid_t pid = waitpid(app->pid, &status, WNOHANG);
            if (pid != 0 && !(pid < 0 && errno == EINTR))
                app->is_reaped = true; /* ended, or ECHILD: reaped elsewhere */
            else
                n_live++;
        }
        if (n_live == 0 || esg_clock_now_ms() >= deadline)
            break;
        pthread_mutex_unlock(&runner->lock);
        esg_clock_sleep_ms(STOP_POLL_MS);
        pthread_mutex_lock(&runner->lock);
    }
    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *app = &runner->apps[i];
        if (app->pid <= 0 || app->is_reaped)
            continue;
        esg_log(ESG_LOG_WARNING, app->name,
                "the server (pid %ld) did not stop within %d ms of SIGTERM: killing it",
                (long)app->pid, STOP_GRACE_MS);
        kill(app->pid, SIGKILL);
        int status;
        while (waitpid(app->pid, &status, 0) < 0 && errno == EINTR) {
        }
        app->is_reaped = true;
    }
    pthread_mutex_unlock(&runner->lock);
}

/* ---- Connecting ----------------------------------------------------------------------- */

/* Reaps any subprocess that has ended; true (with why) when one has. */
static bool any_server_ended(esg_grpc_runner *runner, esg_error *why)
{
    bool has_ended = false;
    pthread_mutex_lock(&runner->lock);
    for (size_t i = 0; i < runner->n_apps && !has_ended; i++)
        has_ended = reap_if_ended_locked(runner, &runner->apps[i], why);
    pthread_mutex_unlock(&runner->lock);
    return has_ended;
}

/* Connects a client to app. Short probes come first, one Ping each with a
 * short deadline, and the subprocesses are checked between them: a server
 * that exited, or a stranger on its port that never answers, is noticed in
 * about a second, not after every retry of a client's full deadline. */
static esg_status connect_app(esg_grpc_runner *runner, runner_app *app, esg_error *err)
{
    esg_client_options probe_options = {.env = runner->env,
                                        .max_attempts = 1,
                                        .backoff_ms = CONNECT_FIRST_BACKOFF_MS,
                                        .deadline_ms = PROBE_DEADLINE_MS,
                                        .ssl_name = app->name};
    esg_error last = {0};
    int64_t wait_ms = CONNECT_FIRST_BACKOFF_MS;
    for (int attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
        if (attempt > 1) {
            esg_clock_sleep_ms(wait_ms);
            wait_ms = wait_ms * 2 > CONNECT_MAX_BACKOFF_MS ? CONNECT_MAX_BACKOFF_MS : wait_ms * 2;
        }
        esg_error why = {0};
        if (any_server_ended(runner, &why))
            return esg_error_set(err, ESG_EUNAVAILABLE, "%s while starting", why.message);
        esg_client *probe = NULL;
        esg_status rc = esg_client_connect_address(app->address, &probe_options, &probe, &last);
        esg_client_free(probe);
        if (rc == ESG_OK) {
            /* The client kept has the default deadline for the caller's calls. */
            esg_client_options options = {.env = runner->env,
                                          .max_attempts = CONNECT_KEPT_ATTEMPTS,
                                          .backoff_ms = CONNECT_FIRST_BACKOFF_MS,
                                          .ssl_name = app->name};
            rc = esg_client_connect_address(app->address, &options, &app->client, &last);
            if (rc == ESG_OK)
                return ESG_OK;
        }
        if (rc != ESG_EUNAVAILABLE && rc != ESG_ETIMEDOUT)
            return esg_error_set(err, rc, "cannot connect to %s at %s: %s", app->name, app->address,
                                 last.message);
    }
    return esg_error_set(err, ESG_EUNAVAILABLE, "%s at %s did not answer after %d attempts: %s",
                         app->name, app->address, CONNECT_ATTEMPTS, last.message);
}

/* ---- The runner --------------------------------------------------------------------- */

esg_status esg_grpc_runner_start(const esg_system_def *def, const esg_grpc_runner_options *options,
                                 esg_grpc_runner **out, esg_error *err)
{
    esg_status rc = ESG_OK;
    esg_grpc_runner *runner = NULL;
    if (out == NULL)
        return esg_error_set(err, ESG_EINVAL, "esg_grpc_runner_start needs somewhere to put it");
    *out = NULL;
    esg_runner_mode mode = options != NULL ? options->mode : ESG_RUNNER_THREADS;
    if (def == NULL || def->magic != ESG_SYSTEM_DEF_MAGIC)
        return esg_error_set(err, ESG_EINVAL, "not a system definition");
    if (mode != ESG_RUNNER_THREADS && mode != ESG_RUNNER_SUBPROCESSES)
        return esg_error_set(err, ESG_EINVAL, "unknown runner mode %d", (int)mode);
    if (mode == ESG_RUNNER_SUBPROCESSES && (def->topic == NULL || def->topic[0] == '\0'))
        return esg_error_set(err, ESG_EINVAL,
                             "the system has no topic: servers in subprocesses cannot load it");

    runner = esg_calloc(1, sizeof *runner);
    if (runner == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory starting the runner");
    runner->mode = mode;
    pthread_mutex_init(&runner->lock, NULL);
    rc = esg_system_new(def, &runner->system, err);
    if (rc != ESG_OK)
        goto out;
    runner->env = options != NULL && options->env != NULL ? esg_env_copy(options->env)
                                                          : esg_env_from_process();
    size_t n_nodes = 0;
    const char *const *nodes = esg_system_nodes(runner->system, &n_nodes);
    runner->apps = esg_calloc(n_nodes ? n_nodes : 1, sizeof *runner->apps);
    if (runner->env == NULL || runner->apps == NULL) {
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory starting the runner");
        goto out;
    }
    runner->n_apps = n_nodes;
    for (size_t i = 0; i < n_nodes; i++) {
        runner->apps[i].name = nodes[i];
        runner->apps[i].type = esg_system_get_type(runner->system, nodes[i]);
    }
    rc = assign_addresses(runner, err);
    if (rc == ESG_OK)
        rc = check_unshared(runner, "METRICS_SERVER_ADDRESS", err);
    if (rc == ESG_OK)
        rc = check_unshared(runner, "GRPC_HEALTH_SERVER_ADDRESS", err);
    if (rc == ESG_OK) /* every application runs on this machine: no two may share a table */
        rc = esg_system_check_persistence(runner->system, runner->env, NULL, err);
    if (rc != ESG_OK)
        goto out;
    /* One gRPC reference for the runner's lifetime, so that connect attempts
     * and clients do not start and stop gRPC each time. */
    grpc_init();
    runner->has_grpc = true;

    if (mode == ESG_RUNNER_THREADS) {
        for (size_t i = 0; i < runner->n_apps; i++) {
            runner_app *app = &runner->apps[i];
            esg_error node_err = {0};
            rc = esg_node_start(def, app->name, runner->env, &app->node, &node_err);
            if (rc != ESG_OK) {
                rc = esg_error_set(err, rc, "cannot start %s on %s: %s", app->name, app->address,
                                   node_err.message);
                goto out;
            }
        }
    } else {
        rc = spawn_servers(runner, def, options, err);
        if (rc != ESG_OK)
            goto out;
    }
    for (size_t i = 0; i < runner->n_apps; i++) {
        rc = connect_app(runner, &runner->apps[i], err);
        if (rc != ESG_OK)
            goto out;
    }
    /* A server that failed to bind may have exited after a stranger on its
     * port answered our Ping: look once more. */
    esg_error why = {0};
    if (any_server_ended(runner, &why)) {
        rc = esg_error_set(err, ESG_EUNAVAILABLE, "%s while starting", why.message);
        goto out;
    }
    *out = runner;
    return ESG_OK;
out:
    esg_grpc_runner_stop(runner);
    return rc;
}

esg_client *esg_grpc_runner_get(esg_grpc_runner *runner, const char *app_name)
{
    runner_app *app = find_app(runner, app_name);
    return app != NULL ? app->client : NULL;
}

const char *esg_grpc_runner_address(const esg_grpc_runner *runner, const char *app_name)
{
    const runner_app *app = find_app(runner, app_name);
    return app != NULL ? app->address : NULL;
}

bool esg_grpc_runner_has_errored(esg_grpc_runner *runner, esg_error *err)
{
    if (runner == NULL)
        return false;
    pthread_mutex_lock(&runner->lock);
    for (size_t i = 0; i < runner->n_apps; i++) {
        runner_app *app = &runner->apps[i];
        if (runner->mode == ESG_RUNNER_SUBPROCESSES) {
            reap_if_ended_locked(runner, app, NULL);
        } else if (app->node != NULL && !runner->has_errored) {
            esg_error node_err = {0};
            if (esg_node_has_errored(app->node, &node_err)) {
                esg_error error = {0};
                esg_error_set(&error, node_err.status != ESG_OK ? node_err.status : ESG_EINTERNAL,
                              "%s: %s", app->name, node_err.message);
                record_error_locked(runner, &error);
            }
        }
    }
    bool has_errored = runner->has_errored;
    if (has_errored && err != NULL)
        *err = runner->error;
    pthread_mutex_unlock(&runner->lock);
    return has_errored;
}

void esg_grpc_runner_stop(esg_grpc_runner *runner)
{
    if (runner == NULL)
        return;
    /* Clients first: calls in flight fail with ESG_ECLOSED rather than wait
     * on a server that is going away. */
    for (size_t i = 0; i < runner->n_apps; i++) {
        esg_client_close(runner->apps[i].client);
        esg_client_free(runner->apps[i].client);
        runner->apps[i].client = NULL;
    }
    if (runner->mode == ESG_RUNNER_SUBPROCESSES)
        stop_servers(runner);
    for (size_t i = 0; i < runner->n_apps; i++) {
        esg_node_stop(runner->apps[i].node);
        esg_free(runner->apps[i].address);
    }
    if (runner->has_grpc)
        grpc_shutdown();
    esg_free(runner->apps);
    esg_env_free(runner->env);
    esg_system_free(runner->system);
    pthread_mutex_destroy(&runner->lock);
    esg_free(runner);
}
