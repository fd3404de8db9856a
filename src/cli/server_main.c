/* eventsourcing_grpc_server [TOPIC]: runs one application as a gRPC server.
 * The topic comes from the argument or APPLICATION_TOPIC; the address from
 * <APP>_GRPC_SERVER_ADDRESS; with SYSTEM_TOPIC set, the application takes its
 * place in that system as a node: it pulls from the applications it follows
 * and prompts the ones it leads. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "esg.h"
#include "esg/example.h"
#include "grpc/exit_codes.h"
#include "program.h"
#include "esg/grpc.h"
#include "esg/runner.h"
#include "settings_help.h"
#include "esg/alloc.h"

/* The most descriptors the server asks for (when the hard limit allows it). */
#define MAX_FILES 1048576

static const char usage[] =
    "usage: eventsourcing_grpc_server [TOPIC]\n"
    "\n"
    "Runs the event-sourced application TOPIC (\"module:Name\") as a gRPC server.\n"
    "\n"
    "Environment:\n"
    "  APPLICATION_TOPIC               the topic, when no argument is given\n"
    "  SYSTEM_TOPIC                    a system the application is part of: it then follows\n"
    "                                  and leads the others (their <APP>_GRPC_SERVER_ADDRESS\n"
    "                                  must be set too)\n"
    "\n" ESG_SETTINGS_HELP "\n"
    "Stops cleanly on SIGINT and SIGTERM; SIGHUP is answered by a line (no file to reopen).\n";

int main(int argc, char **argv)
{
    int common_exit = 0;
    if (esg_program_common_options(argc, argv, "eventsourcing_grpc_server", usage, &common_exit))
        return common_exit;
    /* What the server writes (the SQLite database and its -wal and -shm files)
     * holds the application's events: its owner's only, whatever the umask. */
    umask(umask(077) | 077);
    /* A connection is a descriptor, and gRPC 1.51 stops accepting for good
     * once accept() fails with EMFILE (grpc/grpc#20418): allow as many as the
     * hard limit does, not the soft limit's usual 1024. */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max < MAX_FILES ? files.rlim_max : MAX_FILES;
        setrlimit(RLIMIT_NOFILE, &files);
    }

    /* Block the stop signals before any thread exists, and wait for them here. */
    sigset_t stop_signals;
    esg_program_block_stop_signals(&stop_signals);

    esg_error err = {0};
    esg_env *env = esg_program_environment("eventsourcing_grpc_server");
    const esg_application_type *type = NULL;
    const esg_system_def *system_def = NULL;
    esg_system *system = NULL;
    esg_application *app = NULL;
    esg_server *server = NULL;
    esg_node *node = NULL;
    char *key = NULL;
    int exit_code = 0;
    if (env == NULL)
        return 1;
    const char *topic = esg_program_topic(argc, argv, env, "eventsourcing_grpc_server",
                                          "application", "APPLICATION_TOPIC", usage);
    if (topic == NULL) {
        exit_code = ESG_EXIT_USAGE;
        goto out;
    }
    /* The seed's example is served by name, as the Python package's is. */
    esg_status rc = esg_example_register(&err);
    if (rc == ESG_OK)
        rc = esg_topic_resolve_application(topic, env, &type, &err);
    char context[320] = ""; /* what failed, before the error's message */
    if (rc != ESG_OK)
        snprintf(context, sizeof context, "application topic '%.250s': ", topic);
    const char *system_topic = esg_env_get(env, "SYSTEM_TOPIC");
    if (rc == ESG_OK && system_topic != NULL && system_topic[0] != '\0') {
        rc = esg_topic_resolve_system(system_topic, env, &system_def, &err);
        if (rc != ESG_OK)
            snprintf(context, sizeof context, "SYSTEM_TOPIC '%.250s': ", system_topic);
        if (rc == ESG_OK)
            rc = esg_system_new(system_def, &system, &err);
        if (rc == ESG_OK && esg_system_get_type(system, type->name) != type)
            rc = esg_error_set(&err, ESG_ECONFIG, "%s is not an application of system %s", topic,
                               system_topic);
    }
    const char *address = NULL;
    if (rc == ESG_OK)
        rc = esg_log_configure(env, type->name, &err);
    if (rc == ESG_OK)
        esg_grpc_log_to_esg_log(type->name);
    if (rc == ESG_OK) {
        size_t n_names = 1;
        const char *const *names =
            system != NULL ? esg_system_nodes(system, &n_names) : &type->name;
        esg_program_warn_near_misses("eventsourcing_grpc_server", env, names, n_names);
        key = esg_env_prefixed_key(type->name, "GRPC_SERVER_ADDRESS");
        address = esg_env_lookup(env, type->name, "GRPC_LISTEN_ADDRESS");
        if (address == NULL || address[0] == '\0')
            address = key ? esg_env_get(env, key) : NULL;
        if (address == NULL || address[0] == '\0')
            rc = esg_error_set(&err, ESG_ECONFIG, "%s is not set: the address to listen on",
                               key ? key : "<APP>_GRPC_SERVER_ADDRESS");
    }
    if (rc == ESG_OK && system != NULL) {
        rc = esg_node_start(system_def, type->name, env, &node, &err);
    } else if (rc == ESG_OK) {
        rc = esg_application_new(type, env, &app, &err);
        esg_server_options options = {
            .address = address,
            .env = env,
            .health_address = esg_env_lookup(env, type->name, "GRPC_HEALTH_SERVER_ADDRESS"),
            .metrics_address = esg_env_lookup(env, type->name, "METRICS_SERVER_ADDRESS")};
        if (rc == ESG_OK)
            rc = esg_server_start(app, &options, &server, &err);
    }
    if (rc != ESG_OK) {
        esg_log(ESG_LOG_ERROR, type != NULL ? type->name : NULL, "eventsourcing_grpc_server: %s%s",
                context, err.message);
        exit_code = esg_exit_code_of_start(rc);
        goto out;
    }
    esg_application *served = node ? esg_node_application(node) : app;
    esg_recorder *recorder = esg_application_recorder(served);
    esg_log(ESG_LOG_INFO, type->name, "%s listening on %s (port %d), persistence %s (%s%s)%s%s",
            topic, address, node ? esg_node_port(node) : esg_server_port(server),
            esg_recorder_backend(recorder), esg_mapper_describe(esg_application_mapper(served)),
            esg_recorder_is_snapshotting(recorder) ? ", snapshots" : "", node ? ", in system " : "",
            node ? system_topic : "");
    const char *health_address = esg_env_lookup(env, type->name, "GRPC_HEALTH_SERVER_ADDRESS");
    if (health_address != NULL && health_address[0] != '\0')
        esg_log(ESG_LOG_INFO, type->name, "health checks (plaintext) on %s", health_address);
    const char *metrics_address = esg_env_lookup(env, type->name, "METRICS_SERVER_ADDRESS");
    if (metrics_address != NULL && metrics_address[0] != '\0')
        esg_log(ESG_LOG_INFO, type->name, "metrics (plaintext HTTP) on %s, port %d, at /metrics",
                metrics_address, esg_server_metrics_port(node ? esg_node_server(node) : server));

    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) == 0 &&
           esg_program_hang_up(type->name, signal_number)) {
    }
    esg_log(ESG_LOG_INFO, type->name, "%s, stopping", esg_program_signal_name(signal_number));
out:
    esg_node_stop(node);
    esg_server_stop(server);
    esg_application_free(app);
    esg_system_free(system);
    esg_free(key);
    esg_env_free(env);
    return exit_code;
}
