/* eventsourcing_grpc_client: calls an application server from the command
 * line (ping, health, methods by name with JSON arguments, notifications, tail,
 * prompt, lag),
 * for people and scripts, with the library's own client. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "esg.h"
#include "grpc/exit_codes.h"
#include "esg/grpc.h"
#include "esg/alloc.h"

static const char usage[] =
    "usage: eventsourcing_grpc_client [--json] [--timeout SECONDS] [--key KEY] SERVER COMMAND\n"
    "                                 [ARGUMENTS]\n"
    "\n"
    "SERVER is host:port, or an application name whose address is in\n"
    "<NAME>_GRPC_SERVER_ADDRESS (e.g. Orders and ORDERS_GRPC_SERVER_ADDRESS).\n"
    "\n"
    "Commands:\n"
    "  ping                                   answer \"ok\" when the server is up\n"
    "  health [SERVICE]                       the health service's status: SERVING, or\n"
    "                                         NOT_SERVING (exit status 4) while it stops\n"
    "  call METHOD [ARGS_JSON [KWARGS_JSON]]  call a method; prints its result as JSON\n"
    "  notifications [START [LIMIT [STOP [TOPIC...]]]]\n"
    "                                         one line per notification: id, originator\n"
    "                                         id, version, topic, state (default 1 10);\n"
    "                                         state encrypted or compressed is decoded\n"
    "                                         with CIPHER_KEY and COMPRESSOR_TOPIC (also\n"
    "                                         <NAME>_-prefixed), else shown as base64:...\n"
    "  prompt LEADER_NAME                     tell the server LEADER_NAME has news\n"
    "  tail [--follow] [START [TOPIC...]]     the notifications from START (default 1),\n"
    "                                         of the topics given (default all), as\n"
    "                                         notifications prints them; --follow keeps\n"
    "                                         printing new ones until interrupted\n"
    "  lag                                    how far the server's application has\n"
    "                                         processed each application it follows:\n"
    "                                         position, the leader's highest id known,\n"
    "                                         lag in notifications and seconds (servers\n"
    "                                         of this library only)\n"
    "\n"
    "Options:\n"
    "  --json             print JSON lines (one object per line; errors too, on stderr)\n"
    "  --timeout SECONDS  the deadline of each call (default 5; fractions allowed)\n"
    "  --key KEY          call: the command's idempotency key (1 to 255 printable\n"
    "                     characters; default a new one each time): run again with the\n"
    "                     same KEY, the command is not run twice, and the first reply\n"
    "                     is printed again\n"
    "\n"
    "Environment: GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH and\n"
    "GRPC_SSL_ROOT_CERTIFICATE_PATH for servers not on localhost (mutual TLS).\n"
    "\n"
    "Exit status: 0 done; 2 a bad command line; 3 a bad setting; 4 the server does not\n"
    "answer in time (or is not serving); 5 it answered with an error.\n"
    "\n"
    "Example:\n"
    "  eventsourcing_grpc_client localhost:50051 call create_new_order\n"
    "  eventsourcing_grpc_client localhost:50051 call get_order \\\n"
    "      '[{\"_type_\":\"uuid_hex\",\"_data_\":\"<id>\"}]'\n";

/* The program's options, before SERVER. */
typedef struct program_options {
    bool is_json;        /* --json */
    int64_t deadline_ms; /* --timeout, or 0: the client's default */
    const char *key;     /* --key, or NULL: a new key per call */
} program_options;

static int exit_code_for(esg_status rc)
{
    switch (rc) {
    case ESG_OK:
        return 0;
    case ESG_ECONFIG:
        return ESG_EXIT_CONFIG;
    case ESG_EUNAVAILABLE:
    case ESG_ETIMEDOUT:
        return ESG_EXIT_UNAVAILABLE;
    default:
        return ESG_EXIT_REFUSED;
    }
}

/* A command-line number (the programs see only the public API, so not the settings reader). */
static bool parse_number(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return false;
    *out = value;
    return true;
}

/* Reads the options before SERVER; returns the index of SERVER, or -1 after a message (with
 * *exit_code: 0 for --help and --version, 2 for a bad option). */
static int read_options(int argc, char **argv, program_options *out, int *exit_code)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        const char *option = argv[i];
        if (strcmp(option, "-h") == 0 || strcmp(option, "--help") == 0) {
            fputs(usage, stdout);
            *exit_code = ESG_EXIT_OK;
            return -1;
        }
        if (strcmp(option, "--version") == 0) {
            printf("eventsourcing_grpc_client (eventsourcing-grpc for C) " ESG_VERSION "\n");
            *exit_code = ESG_EXIT_OK;
            return -1;
        }
        *exit_code = ESG_EXIT_USAGE;
        if (strcmp(option, "--json") == 0) {
            out->is_json = true;
            continue;
        }
        const char *value = strncmp(option, "--key=", 6) == 0              ? option + 6
                            : strcmp(option, "--key") == 0 && i + 1 < argc ? argv[++i]
                                                                           : NULL;
        if (value != NULL || strcmp(option, "--key") == 0) {
            if (value == NULL || !esg_client_is_idempotency_key(value)) {
                fprintf(stderr, "eventsourcing_grpc_client: --key takes a KEY of 1 to 255 "
                                "printable characters\n");
                return -1;
            }
            out->key = value;
            continue;
        }
        value = strncmp(option, "--timeout=", 10) == 0             ? option + 10
                : strcmp(option, "--timeout") == 0 && i + 1 < argc ? argv[++i]
                                                                   : NULL;
        if (value == NULL && strcmp(option, "--timeout") == 0) {
            fprintf(stderr, "eventsourcing_grpc_client: --timeout takes SECONDS\n");
            return -1;
        }
        if (value == NULL) {
            fprintf(stderr, "eventsourcing_grpc_client: unknown option '%s'\n\n%s", option, usage);
            return -1;
        }
        char *end = NULL;
        errno = 0;
        double seconds = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !(seconds > 0) || seconds > 86400) {
            fprintf(stderr,
                    "eventsourcing_grpc_client: --timeout '%s' is not a number of seconds "
                    "above 0 (at most 86400)\n",
                    value);
            return -1;
        }
        out->deadline_ms = (int64_t)(seconds * 1000 + 0.5);
        if (out->deadline_ms < 1)
            out->deadline_ms = 1;
    }
    return i;
}

/* A command's arguments, read before connecting: a mistake is a bad command line (exit 2), found
 * without waiting for a server. */
typedef struct command_args {
    esg_value *args;    /* call: ARGS_JSON decoded, or NULL */
    esg_value *kwargs;  /* call: KWARGS_JSON decoded, or NULL */
    int64_t numbers[3]; /* notifications: START, LIMIT, STOP; tail: START */
    bool is_following;  /* tail --follow */
    int first_topic;    /* notifications and tail: the index of the first TOPIC argument */
} command_args;

/* Checks the command and reads its arguments (argc of them at argv); false, with a message on
 * stderr, when they do not fit. */
static bool read_command(const char *command, int argc, char **argv, command_args *out)
{
    static const char *const names[] = {"ARGS_JSON", "KWARGS_JSON"};
    esg_error err = {0};
    if ((strcmp(command, "ping") == 0 || strcmp(command, "lag") == 0) && argc == 0)
        return true;
    if (strcmp(command, "health") == 0 && argc <= 1)
        return true;
    if (strcmp(command, "prompt") == 0 && argc == 1)
        return true;
    if (strcmp(command, "call") == 0 && argc >= 1 && argc <= 3) {
        esg_value **values[] = {&out->args, &out->kwargs};
        for (int i = 1; i < argc; i++)
            if (esg_json_decode(argv[i], strlen(argv[i]), values[i - 1], &err) != ESG_OK) {
                fprintf(stderr, "eventsourcing_grpc_client: %s is not JSON: %s\n", names[i - 1],
                        err.message);
                return false;
            }
        return true;
    }
    bool is_tail = strcmp(command, "tail") == 0;
    if (strcmp(command, "notifications") == 0 || is_tail) {
        out->numbers[0] = 1;
        out->numbers[1] = 10;
        int first = 0;
        if (is_tail && argc > 0 && strcmp(argv[0], "--follow") == 0) {
            out->is_following = true;
            first = 1;
        }
        int n_numbers = is_tail ? 1 : 3;
        for (int i = first; i < argc && i < first + n_numbers; i++)
            if (!parse_number(argv[i], &out->numbers[i - first])) {
                fprintf(stderr, "eventsourcing_grpc_client: '%s' is not a number\n", argv[i]);
                return false;
            }
        out->first_topic = first + n_numbers;
        return true;
    }
    if (strcmp(command, "call") == 0)
        fprintf(stderr, "eventsourcing_grpc_client: call takes METHOD [ARGS_JSON [KWARGS_JSON]]\n");
    else if (strcmp(command, "ping") == 0 || strcmp(command, "lag") == 0)
        fprintf(stderr, "eventsourcing_grpc_client: %s takes no arguments\n", command);
    else if (strcmp(command, "prompt") == 0 || strcmp(command, "health") == 0)
        fprintf(stderr, "eventsourcing_grpc_client: %s takes %s\n", command,
                command[0] == 'h' ? "at most one SERVICE" : "one LEADER_NAME");
    else
        fprintf(stderr,
                "eventsourcing_grpc_client: no command '%s' (ping, health, call, notifications, "
                "tail, prompt or lag)\n",
                command);
    return false;
}

/* Prints value (taken) as one JSON line on stream. */
static esg_status print_json_line(FILE *stream, esg_value *value, esg_error *err)
{
    char *json = NULL;
    esg_status rc = value != NULL ? esg_json_encode(value, &json, NULL, err)
                                  : esg_error_set(err, ESG_ENOMEM, "out of memory");
    if (rc == ESG_OK)
        fprintf(stream, "%s\n", json);
    esg_free(json);
    esg_value_free(value);
    return rc;
}

/* An object of one member, key: item (taken); NULL when out of memory. */
static esg_value *object_of(const char *key, esg_value *item)
{
    esg_value *object = esg_value_object();
    if (object == NULL) {
        esg_value_free(item);
        return NULL;
    }
    if (esg_object_set(object, key, item) != ESG_OK) { /* it took item all the same */
        esg_value_free(object);
        return NULL;
    }
    return object;
}

static esg_status run_call(esg_client *client, const char *method, const command_args *command,
                           const program_options *options, esg_error *err)
{
    esg_value *result = NULL;
    esg_status rc = esg_client_call_with_key(client, options->key, method, command->args,
                                             command->kwargs, &result, err);
    if (rc == ESG_OK) /* a JSON line in either format */
        rc = print_json_line(stdout, result, err);
    return rc;
}

static const char *const health_names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

static esg_status run_health(esg_client *client, const char *service,
                             const program_options *options, esg_error *err)
{
    esg_health_status status = ESG_HEALTH_UNKNOWN;
    esg_status rc = esg_client_health_check(client, service, &status, err);
    if (rc != ESG_OK)
        return rc;
    if (options->is_json)
        rc = print_json_line(stdout, object_of("status", esg_value_string(health_names[status])),
                             err);
    else
        printf("%s\n", health_names[status]);
    if (rc == ESG_OK && status != ESG_HEALTH_SERVING)
        rc = esg_error_set(err, ESG_EUNAVAILABLE, "the server is %s", health_names[status]);
    return rc;
}

/* A stored state as text: decoded by the mapper when it can be, and JSON (*is_json set: an
 * object, checked by jansson alone, since the state may hold types transcoded by an application
 * this program does not know), else base64 (ciphertext or zlib bytes would garble a terminal and
 * break a JSON line). Free it with free(). */
static char *state_text(const esg_mapper *mapper, const esg_stored_event *stored, bool *is_json)
{
    uint8_t *json = NULL;
    size_t json_len = 0;
    char *text = NULL;
    json_t *parsed = NULL;
    if (esg_mapper_decode_state(mapper, stored->state, stored->state_len, &json, &json_len, NULL) ==
        ESG_OK)
        parsed = json_loadb((const char *)json, json_len,
                            JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    *is_json = json_is_object(parsed);
    json_decref(parsed);
    if (*is_json) {
        text = strndup((const char *)json, json_len);
    } else {
        text = malloc(4 * ((stored->state_len + 2) / 3) + 1);
        if (text != NULL)
            EVP_EncodeBlock((unsigned char *)text, stored->state, (int)stored->state_len);
    }
    esg_free(json);
    return text;
}

/* A notification as one JSON line: its state is embedded as it was stored (it is JSON), or
 * given as state_base64. */
static esg_status print_notification_json(const esg_notification *n, const char *id,
                                          const char *state, bool is_state_json, esg_error *err)
{
    esg_value *line = esg_value_object();
    esg_status rc = line != NULL ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory");
    if (rc == ESG_OK)
        rc = esg_object_set(line, "id", esg_value_int(n->id));
    if (rc == ESG_OK)
        rc = esg_object_set(line, "originator_id", esg_value_string(id));
    if (rc == ESG_OK)
        rc = esg_object_set(line, "originator_version", esg_value_int(n->event.originator_version));
    if (rc == ESG_OK)
        rc = esg_object_set(line, "topic", esg_value_string(n->event.topic));
    if (rc == ESG_OK && !is_state_json)
        rc = esg_object_set(line, "state_base64", esg_value_string(state));
    char *json = NULL;
    size_t len = 0;
    if (rc == ESG_OK)
        rc = esg_json_encode(line, &json, &len, err);
    if (rc == ESG_OK && is_state_json) /* the state's own text, not re-encoded */
        printf("%.*s,\"state\":%s}\n", (int)len - 1, json, state);
    else if (rc == ESG_OK)
        printf("%s\n", json);
    esg_free(json);
    esg_value_free(line);
    return rc;
}

/* Prints a notification as a line of text or, with --json, a JSON line. */
static esg_status print_notification(const esg_notification *n, const esg_mapper *mapper,
                                     const program_options *options, esg_error *err)
{
    char id[ESG_UUID_HEX_SIZE];
    esg_uuid_hex(&n->event.originator_id, id);
    bool is_state_json = false;
    char *state = state_text(mapper, &n->event, &is_state_json);
    esg_status rc = ESG_OK;
    if (state == NULL)
        rc = esg_error_set(err, ESG_ENOMEM, "out of memory");
    else if (options->is_json)
        rc = print_notification_json(n, id, state, is_state_json, err);
    else
        printf("%lld %s %lld %s %s%s\n", (long long)n->id, id,
               (long long)n->event.originator_version, n->event.topic,
               is_state_json ? "" : "base64:", state);
    free(state);
    return rc;
}

/* The topics given after a command's numbers (argc arguments at argv). */
static const char *const *topics_of(int argc, char **argv, const command_args *command,
                                    size_t *n_topics)
{
    *n_topics = argc > command->first_topic ? (size_t)(argc - command->first_topic) : 0;
    return (const char *const *)argv + command->first_topic;
}

static esg_status run_notifications(esg_client *client, const esg_mapper *mapper,
                                    const command_args *command, int argc, char **argv,
                                    const program_options *options, esg_error *err)
{
    size_t n_topics = 0;
    const char *const *topics = topics_of(argc, argv, command, &n_topics);
    esg_notification_list list = {0};
    esg_status rc =
        esg_client_select_notifications(client, command->numbers[0], command->numbers[1],
                                        command->numbers[2], topics, n_topics, &list, err);
    for (size_t i = 0; rc == ESG_OK && i < list.n_items; i++)
        rc = print_notification(&list.items[i], mapper, options, err);
    esg_notification_list_clear(&list);
    return rc;
}

/* Set by SIGINT and SIGTERM while tail --follow runs: it stops after the page in hand. */
static volatile sig_atomic_t is_interrupted;

static void on_interrupt(int signal_number)
{
    (void)signal_number;
    is_interrupted = 1;
}

enum {
    TAIL_PAGE = 500,            /* notifications asked for at once */
    TAIL_POLL_INTERVAL_MS = 250 /* the wait, once caught up, before asking again */
};

/* Prints the notifications from START page by page; with --follow, then polls for new ones
 * until SIGINT or SIGTERM (a clean end: ESG_OK). */
static esg_status run_tail(esg_client *client, const esg_mapper *mapper,
                           const command_args *command, int argc, char **argv,
                           const program_options *options, esg_error *err)
{
    size_t n_topics = 0;
    const char *const *topics = topics_of(argc, argv, command, &n_topics);
    struct sigaction action = {.sa_handler = on_interrupt}; /* no SA_RESTART: sleeps end */
    sigemptyset(&action.sa_mask);
    if (command->is_following) {
        sigaction(SIGINT, &action, NULL);
        sigaction(SIGTERM, &action, NULL);
    }
    int64_t next = command->numbers[0];
    esg_status rc = ESG_OK;
    while (rc == ESG_OK && !is_interrupted) {
        esg_notification_list list = {0};
        rc = esg_client_select_notifications(client, next, TAIL_PAGE, 0, topics, n_topics, &list,
                                             err);
        for (size_t i = 0; rc == ESG_OK && i < list.n_items; i++) {
            rc = print_notification(&list.items[i], mapper, options, err);
            next = list.items[i].id + 1;
        }
        bool is_caught_up = list.n_items == 0;
        esg_notification_list_clear(&list);
        fflush(stdout); /* a reader at the other end of a pipe sees each page at once */
        if (rc != ESG_OK || (is_caught_up && !command->is_following))
            break;
        if (is_caught_up) {
            struct timespec wait = {0, TAIL_POLL_INTERVAL_MS * 1000000L};
            nanosleep(&wait, NULL);
        }
    }
    if (rc != ESG_OK && is_interrupted) /* a call cut short by the interruption */
        rc = ESG_OK;
    return rc;
}

/* A leader's figures as one JSON line. */
static esg_status print_position_json(const char *application, const esg_leader_position *p,
                                      esg_error *err)
{
    esg_value *line = object_of("application", esg_value_string(application));
    esg_status rc = line != NULL ? ESG_OK : esg_error_set(err, ESG_ENOMEM, "out of memory");
    struct {
        const char *key;
        esg_value *value;
    } members[] = {
        {"leader", esg_value_string(p->leader_name)},
        {"position", esg_value_int(p->position)},
        {"leader_max", esg_value_int(p->leader_max)},
        {"lag_notifications", esg_value_int(p->lag_notifications)},
        {"lag_seconds", esg_value_float(p->lag_seconds)},
        {"prompts_received", esg_value_int((int64_t)p->prompts_received)},
        {"pulls", esg_value_int((int64_t)p->pulls)},
        {"pull_errors", esg_value_int((int64_t)p->pull_errors)},
        {"notifications_processed", esg_value_int((int64_t)p->notifications_processed)},
        {"is_subscribed", esg_value_bool(p->is_subscribed)},
        {"pages_pushed", esg_value_int((int64_t)p->pages_pushed)},
    };
    for (size_t i = 0; i < sizeof members / sizeof *members; i++) {
        if (rc == ESG_OK)
            rc = esg_object_set(line, members[i].key, members[i].value); /* takes the value */
        else
            esg_value_free(members[i].value);
    }
    if (rc == ESG_OK)
        return print_json_line(stdout, line, err);
    esg_value_free(line);
    return rc;
}

/* A figure not known yet (-1) is shown as "-". */
static void print_figure(int width, int64_t value)
{
    if (value < 0)
        printf(" %*s", width, "-");
    else
        printf(" %*lld", width, (long long)value);
}

static esg_status run_lag(esg_client *client, const program_options *options, esg_error *err)
{
    esg_leader_positions positions = {0};
    esg_status rc = esg_client_leader_positions(client, &positions, err);
    if (rc == ESG_EUNIMPLEMENTED)
        rc = esg_error_set(err, rc,
                           "the server does not tell positions (eventsourcing_grpc_c.v1.Node is "
                           "served by this library's servers only, not by Python's)");
    if (rc == ESG_OK && !options->is_json) {
        if (positions.n_items == 0)
            printf("%s follows no application\n", positions.application_name);
        else
            printf("%-20s %12s %12s %12s %12s\n", "LEADER", "POSITION", "LEADER_MAX", "LAG",
                   "LAG_SECONDS");
    }
    for (size_t i = 0; rc == ESG_OK && i < positions.n_items; i++) {
        const esg_leader_position *p = &positions.items[i];
        if (options->is_json) {
            rc = print_position_json(positions.application_name, p, err);
            continue;
        }
        printf("%-20s", p->leader_name);
        print_figure(12, p->position);
        print_figure(12, p->leader_max);
        print_figure(12, p->lag_notifications);
        if (p->lag_seconds < 0)
            printf(" %12s\n", "-");
        else
            printf(" %12.3f\n", p->lag_seconds);
    }
    esg_leader_positions_clear(&positions);
    return rc;
}

/* Says what failed on stderr, as text or as a JSON line. */
static void report_error(esg_status rc, const esg_error *err, const program_options *options)
{
    if (!options->is_json) {
        fprintf(stderr, "eventsourcing_grpc_client: %s: %s\n", esg_status_name(rc), err->message);
        return;
    }
    esg_value *line = object_of("error", esg_value_string(esg_status_name(rc)));
    esg_error ignored = {0};
    if (line != NULL && esg_object_set(line, "message", esg_value_string(err->message)) == ESG_OK &&
        esg_object_set(line, "exit_status", esg_value_int(exit_code_for(rc))) == ESG_OK) {
        print_json_line(stderr, line, &ignored);
        return;
    }
    esg_value_free(line);
    fprintf(stderr, "eventsourcing_grpc_client: %s: %s\n", esg_status_name(rc), err->message);
}

int main(int argc, char **argv)
{
    program_options options = {0};
    int exit_code = ESG_EXIT_USAGE;
    int first = read_options(argc, argv, &options, &exit_code);
    if (first < 0)
        return exit_code;
    if (argc - first < 2) {
        fputs(usage, stderr);
        return ESG_EXIT_USAGE;
    }
    const char *server = argv[first], *command = argv[first + 1];
    int n_rest = argc - first - 2;
    char **rest = argv + first + 2;
    command_args args = {0};
    if (!read_command(command, n_rest, rest, &args)) {
        fprintf(stderr, "\n%s", usage);
        esg_value_free(args.args);
        esg_value_free(args.kwargs);
        return ESG_EXIT_USAGE;
    }
    esg_error err = {0};
    esg_client *client = NULL;
    esg_mapper *mapper = NULL;
    esg_client_options client_options = {.max_attempts = 3, .deadline_ms = options.deadline_ms};
    bool is_address = strchr(server, ':') != NULL;
    /* The state's format, as the application's own settings say (a bad one is refused). */
    esg_env *env = esg_env_from_process();
    esg_status rc = env == NULL ? esg_error_set(&err, ESG_ENOMEM, "out of memory")
                                : esg_mapper_open(env, is_address ? NULL : server, &mapper, &err);
    char *key =
        rc == ESG_OK && !is_address ? esg_env_prefixed_key(server, "GRPC_SERVER_ADDRESS") : NULL;
    if (key != NULL && esg_env_get(env, key) == NULL) /* "localhost", say: no port */
        rc = esg_error_set(&err, ESG_ECONFIG,
                           "'%s' is not host:port, and %s (the address of an application of "
                           "that name) is not set",
                           server, key);
    esg_free(key);
    esg_env_free(env);
    if (rc == ESG_OK)
        rc = is_address ? esg_client_connect_address(server, &client_options, &client, &err)
                        : esg_client_connect(server, &client_options, &client, &err);
    if (rc == ESG_OK) {
        if (strcmp(command, "ping") == 0)
            rc = options.is_json
                     ? print_json_line(stdout, object_of("ok", esg_value_bool(true)), &err)
                     : (printf("ok\n"), ESG_OK);
        else if (strcmp(command, "health") == 0)
            rc = run_health(client, n_rest > 0 ? rest[0] : "", &options, &err);
        else if (strcmp(command, "call") == 0)
            rc = run_call(client, rest[0], &args, &options, &err);
        else if (strcmp(command, "notifications") == 0)
            rc = run_notifications(client, mapper, &args, n_rest, rest, &options, &err);
        else if (strcmp(command, "tail") == 0)
            rc = run_tail(client, mapper, &args, n_rest, rest, &options, &err);
        else if (strcmp(command, "lag") == 0)
            rc = run_lag(client, &options, &err);
        else
            rc = esg_client_prompt(client, rest[0], &err);
        if (rc == ESG_OK && options.is_json && strcmp(command, "prompt") == 0)
            rc = print_json_line(stdout, object_of("ok", esg_value_bool(true)), &err);
    }
    if (rc != ESG_OK)
        report_error(rc, &err, &options);
    esg_client_free(client);
    esg_mapper_free(mapper);
    esg_value_free(args.args);
    esg_value_free(args.kwargs);
    return exit_code_for(rc);
}
