/* eventsourcing_grpc_runner [SYSTEM_TOPIC]: runs a whole system, one
 * eventsourcing_grpc_server subprocess per application, until SIGINT or
 * SIGTERM, or until one of the servers dies (then the others are stopped). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esg.h"
#include "esg/example.h"
#include "grpc/exit_codes.h"
#include "program.h"
#include "esg/runner.h"
#include "settings_help.h"

/* How often the servers are checked while waiting for a stop signal. */
#define WATCH_INTERVAL_MS 100

static const char usage[] =
    "usage: eventsourcing_grpc_runner [SYSTEM_TOPIC]\n"
    "\n"
    "Runs every application of the system SYSTEM_TOPIC (\"module:name\") as a gRPC\n"
    "server, each in its own eventsourcing_grpc_server process (the one beside this\n"
    "program, else the one found in PATH), each in its role in the system.\n"
    "\n"
    "Environment (read here and passed on to the servers):\n"
    "  SYSTEM_TOPIC                    the system topic, when no argument is given\n"
    "  <APP>_GRPC_SERVER_ADDRESS       not set: localhost:50051, 50052, ... in order,\n"
    "                                  skipping the ports already given\n"
    "\n" ESG_SETTINGS_HELP "\n"
    "Each server also gets APPLICATION_TOPIC (its application) and SYSTEM_TOPIC.\n"
    "Stops every server on SIGINT and SIGTERM (exit status 0); SIGHUP is answered by a\n"
    "line (no file to reopen). If a server dies, the\n"
    "others are stopped and the exit status is 1; 2 is a bad command line, 3 a bad\n"
    "configuration, 4 a system that could not start.\n";

int main(int argc, char **argv)
{
    int common_exit = 0;
    if (esg_program_common_options(argc, argv, "eventsourcing_grpc_runner", usage, &common_exit))
        return common_exit;
    /* Block the stop signals before any thread exists, and wait for them here
     * (the servers are started with them unblocked). */
    sigset_t stop_signals;
    esg_program_block_stop_signals(&stop_signals);

    esg_error err = {0};
    esg_env *env = esg_program_environment("eventsourcing_grpc_runner");
    const esg_system_def *def = NULL;
    esg_system *system = NULL;
    esg_grpc_runner *runner = NULL;
    int exit_code = 0;
    if (env == NULL)
        return 1;
    const char *topic = esg_program_topic(argc, argv, env, "eventsourcing_grpc_runner", "system",
                                          "SYSTEM_TOPIC", usage);
    if (topic == NULL) {
        exit_code = ESG_EXIT_USAGE;
        goto out;
    }
    esg_status rc = esg_example_register(&err); /* the seed's example, by name */
    if (rc == ESG_OK)
        rc = esg_topic_resolve_system(topic, env, &def, &err);
    char context[320] = ""; /* what failed, before the error's message */
    if (rc != ESG_OK)
        snprintf(context, sizeof context, "system topic '%.250s': ", topic);
    /* The graph, for the application names to print and their settings' near misses. */
    if (rc == ESG_OK)
        rc = esg_system_new(def, &system, &err);
    if (rc == ESG_OK)
        rc = esg_log_configure(env, NULL, &err);
    if (rc == ESG_OK)
        esg_grpc_log_to_esg_log(NULL);
    if (rc == ESG_OK) {
        size_t n_names = 0;
        const char *const *names = esg_system_nodes(system, &n_names);
        esg_program_warn_near_misses("eventsourcing_grpc_runner", env, names, n_names);
    }
    if (rc == ESG_OK) {
        esg_grpc_runner_options options = {.mode = ESG_RUNNER_SUBPROCESSES, .env = env};
        rc = esg_grpc_runner_start(def, &options, &runner, &err);
    }
    if (rc != ESG_OK) {
        esg_log(ESG_LOG_ERROR, NULL, "eventsourcing_grpc_runner: %s%s", context, err.message);
        exit_code = esg_exit_code_of_start(rc);
        goto out;
    }
    size_t n_nodes = 0;
    const char *const *nodes = esg_system_nodes(system, &n_nodes);
    for (size_t i = 0; i < n_nodes; i++)
        printf("%s: %s\n", nodes[i], esg_grpc_runner_address(runner, nodes[i]));
    fflush(stdout); /* the addresses above are the runner's own output, before its log */
    esg_log(ESG_LOG_INFO, NULL, "eventsourcing_grpc_runner: running %s", topic);
    fflush(stdout);

    const struct timespec interval = {.tv_sec = 0, .tv_nsec = WATCH_INTERVAL_MS * 1000000L};
    const struct timespec no_wait = {0};
    for (;;) {
        int signal_number = sigtimedwait(&stop_signals, NULL, &interval);
        if ((signal_number < 0 && errno == EINTR) || esg_program_hang_up(NULL, signal_number))
            continue;
        if (signal_number < 0 && esg_grpc_runner_has_errored(runner, &err)) {
            /* Ctrl-C reaches the servers too, and one may end before we see
             * the signal: a stop signal now means a stop, not a failure. */
            signal_number = sigtimedwait(&stop_signals, NULL, &no_wait);
            if (esg_program_hang_up(NULL, signal_number))
                signal_number = -1; /* not a stop: the server's death is what to report */
            if (signal_number < 0) {
                esg_log(ESG_LOG_ERROR, NULL, "eventsourcing_grpc_runner: %s; stopping the others",
                        err.message);
                exit_code = ESG_EXIT_SERVER_DIED;
                break;
            }
        }
        if (signal_number > 0) {
            esg_log(ESG_LOG_INFO, NULL, "eventsourcing_grpc_runner: %s, stopping",
                    esg_program_signal_name(signal_number));
            break;
        }
    }
out:
    esg_grpc_runner_stop(runner);
    esg_system_free(system);
    esg_env_free(env);
    return exit_code;
}
