/* What the server and the runner programs share before and after their own work: the common
 * options, and the stop signals they wait for. */
#ifndef ESG_PROGRAM_H
#define ESG_PROGRAM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "esg/env.h"
#include "esg/log.h"
#include "grpc/exit_codes.h"

/* Handles --help, -h, --version, an unknown option and a command line of more than one
 * argument: *exit_code is then what the program exits with, and the function returns true. */
static inline bool esg_program_common_options(int argc, char **argv, const char *program,
                                              const char *usage, int *exit_code)
{
    bool is_help = argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
    if (argc > 2 || is_help) {
        fputs(usage, is_help ? stdout : stderr);
        *exit_code = is_help ? ESG_EXIT_OK : ESG_EXIT_USAGE;
        return true;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s (eventsourcing-grpc for C) " ESG_VERSION "\n", program);
        *exit_code = ESG_EXIT_OK;
        return true;
    }
    if (argc == 2 && argv[1][0] == '-') { /* no topic starts with '-': an unknown option */
        fprintf(stderr, "%s: unknown option '%s'\n\n%s", program, argv[1], usage);
        *exit_code = ESG_EXIT_USAGE;
        return true;
    }
    return false;
}

/* The process's environment (the caller's, freed with esg_env_free), or NULL after saying that
 * memory ran out. */
static inline esg_env *esg_program_environment(const char *program)
{
    esg_env *env = esg_env_from_process();
    if (env == NULL)
        fprintf(stderr, "%s: out of memory\n", program);
    return env;
}

/* The topic the program runs: its argument, else the variable in env (borrowed). NULL, with the
 * usage on stderr, when neither gives one; `what` names the kind ("application", "system"). */
static inline const char *esg_program_topic(int argc, char **argv, const esg_env *env,
                                            const char *program, const char *what,
                                            const char *variable, const char *usage)
{
    const char *topic = argc == 2 ? argv[1] : esg_env_get(env, variable);
    if (topic == NULL || topic[0] == '\0') {
        fprintf(stderr, "%s: no %s topic: give it as the argument or set %s\n\n%s", program, what,
                variable, usage);
        return NULL;
    }
    return topic;
}

/* Logs a warning for each setting in env spelt almost right (esg_env_near_misses), for the
 * applications named (n of them, borrowed): a misspelt key would otherwise be ignored. */
static inline void esg_program_warn_near_misses(const char *program, const esg_env *env,
                                                const char *const *app_names, size_t n)
{
    char **texts = NULL;
    if (esg_env_near_misses(env, app_names, n, &texts, NULL) != ESG_OK)
        return; /* out of memory: the program's next step says so */
    for (size_t i = 0; texts != NULL && texts[i] != NULL; i++)
        esg_log(ESG_LOG_WARNING, NULL, "%s: %s", program, texts[i]);
    esg_env_free_texts(texts);
}

/* Blocks SIGINT, SIGTERM and SIGHUP (before any thread exists: threads inherit the mask), so that
 * the main thread takes them with sigwait; *stop_signals is the set to wait on. */
static inline void esg_program_block_stop_signals(sigset_t *stop_signals)
{
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGINT);
    sigaddset(stop_signals, SIGTERM);
    sigaddset(stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
}

static inline const char *esg_program_signal_name(int signal_number)
{
    return signal_number == SIGINT ? "SIGINT" : signal_number == SIGHUP ? "SIGHUP" : "SIGTERM";
}

/* SIGHUP, which asks a daemon to reopen its files, is answered by a log line and nothing more:
 * the programs log to stdout and stderr and read their settings once. app: the application the
 * line is about (NULL: the runner). True when it was SIGHUP. */
static inline bool esg_program_hang_up(const char *app, int signal_number)
{
    if (signal_number != SIGHUP)
        return false;
    esg_log(ESG_LOG_INFO, app,
            "%sSIGHUP: no file to reopen (the log is stdout and stderr), going on",
            app != NULL ? "" : "eventsourcing_grpc_runner: ");
    return true;
}

#endif
