/* eventsourcing_grpc_client: calls an application server from the command
 * line (ping, methods by name with JSON arguments, notifications, prompt),
 * for people and scripts, with the library's own client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esg.h"
#include "grpc/exit_codes.h"
#include "esg/grpc.h"
#include "esg/alloc.h"

static const char usage[] =
    "usage: eventsourcing_grpc_client SERVER COMMAND [ARGUMENTS]\n"
    "\n"
    "SERVER is host:port, or an application name whose address is in\n"
    "<NAME>_GRPC_SERVER_ADDRESS (e.g. Orders and ORDERS_GRPC_SERVER_ADDRESS).\n"
    "\n"
    "Commands:\n"
    "  ping                                   answer \"ok\" when the server is up\n"
    "  call METHOD [ARGS_JSON [KWARGS_JSON]]  call a method; prints its result as JSON\n"
    "  notifications [START [LIMIT [STOP [TOPIC...]]]]\n"
    "                                         one line per notification: id, originator\n"
    "                                         id, version, topic, state (default 1 10);\n"
    "                                         state encrypted or compressed is decoded\n"
    "                                         with CIPHER_KEY and COMPRESSOR_TOPIC (also\n"
    "                                         <NAME>_-prefixed), else shown as base64:...\n"
    "  prompt LEADER_NAME                     tell the server LEADER_NAME has news\n"
    "\n"
    "Environment: GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH and\n"
    "GRPC_SSL_ROOT_CERTIFICATE_PATH for servers not on localhost (mutual TLS).\n"
    "\n"
    "Example:\n"
    "  eventsourcing_grpc_client localhost:50051 call create_new_order\n"
    "  eventsourcing_grpc_client localhost:50051 call get_order \\\n"
    "      '[{\"_type_\":\"uuid_hex\",\"_data_\":\"<id>\"}]'\n";

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

/* A command's arguments, read before connecting: a mistake is a bad command line (exit 2), found
 * without waiting for a server. */
typedef struct command_args {
    esg_value *args;    /* call: ARGS_JSON decoded, or NULL */
    esg_value *kwargs;  /* call: KWARGS_JSON decoded, or NULL */
    int64_t numbers[3]; /* notifications: START, LIMIT, STOP */
} command_args;

/* Checks the command and reads its arguments (argc of them at argv); false, with a message on
 * stderr, when they do not fit. */
static bool read_command(const char *command, int argc, char **argv, command_args *out)
{
    static const char *const names[] = {"ARGS_JSON", "KWARGS_JSON"};
    esg_error err = {0};
    if (strcmp(command, "ping") == 0 && argc == 0)
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
    if (strcmp(command, "notifications") == 0) {
        out->numbers[0] = 1;
        out->numbers[1] = 10;
        for (int i = 0; i < argc && i < 3; i++)
            if (!parse_number(argv[i], &out->numbers[i])) {
                fprintf(stderr, "eventsourcing_grpc_client: '%s' is not a number\n", argv[i]);
                return false;
            }
        return true;
    }
    if (strcmp(command, "call") == 0)
        fprintf(stderr, "eventsourcing_grpc_client: call takes METHOD [ARGS_JSON [KWARGS_JSON]]\n");
    else if (strcmp(command, "ping") == 0 || strcmp(command, "prompt") == 0)
        fprintf(stderr, "eventsourcing_grpc_client: %s takes %s\n", command,
                command[1] == 'i' ? "no arguments" : "one LEADER_NAME");
    else
        fprintf(stderr,
                "eventsourcing_grpc_client: no command '%s' (ping, call, notifications or "
                "prompt)\n",
                command);
    return false;
}

static esg_status run_call(esg_client *client, const char *method, const command_args *command,
                           esg_error *err)
{
    esg_value *result = NULL;
    char *json = NULL;
    esg_status rc = esg_client_call(client, method, command->args, command->kwargs, &result, err);
    if (rc == ESG_OK)
        rc = esg_json_encode(result, &json, NULL, err);
    if (rc == ESG_OK)
        printf("%s\n", json);
    esg_free(json);
    esg_value_free(result);
    return rc;
}

/* Prints a stored state: decoded to JSON by the mapper when it can be, else as base64 (raw
 * ciphertext or zlib bytes would garble a terminal). */
static void print_state(const esg_mapper *mapper, const esg_stored_event *stored)
{
    uint8_t *json = NULL;
    size_t json_len = 0;
    if (esg_mapper_decode_state(mapper, stored->state, stored->state_len, &json, &json_len, NULL) ==
            ESG_OK &&
        json_len > 0 && json[0] == '{') {
        printf("%.*s\n", (int)json_len, (const char *)json);
    } else {
        size_t size = 4 * ((stored->state_len + 2) / 3) + 1;
        unsigned char *text = malloc(size);
        if (text != NULL)
            EVP_EncodeBlock(text, stored->state, (int)stored->state_len);
        printf("base64:%s\n", text != NULL ? (const char *)text : "(out of memory)");
        free(text);
    }
    esg_free(json);
}

static esg_status run_notifications(esg_client *client, const esg_mapper *mapper,
                                    const int64_t numbers[3], int argc, char **argv, esg_error *err)
{
    esg_notification_list list = {0};
    esg_status rc = esg_client_select_notifications(client, numbers[0], numbers[1], numbers[2],
                                                    (const char *const *)argv + 3,
                                                    argc > 3 ? (size_t)(argc - 3) : 0, &list, err);
    for (size_t i = 0; rc == ESG_OK && i < list.n_items; i++) {
        char id[ESG_UUID_HEX_SIZE];
        esg_uuid_hex(&list.items[i].event.originator_id, id);
        printf("%lld %s %lld %s ", (long long)list.items[i].id, id,
               (long long)list.items[i].event.originator_version, list.items[i].event.topic);
        print_state(mapper, &list.items[i].event);
    }
    esg_notification_list_clear(&list);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("eventsourcing_grpc_client (eventsourcing-grpc for C) " ESG_VERSION "\n");
        return 0;
    }
    if (argc < 3) {
        fputs(usage, stderr);
        return ESG_EXIT_USAGE;
    }
    const char *server = argv[1], *command = argv[2];
    int n_rest = argc - 3;
    char **rest = argv + 3;
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
    esg_client_options options = {.max_attempts = 3};
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
        rc = is_address ? esg_client_connect_address(server, &options, &client, &err)
                        : esg_client_connect(server, &options, &client, &err);
    if (rc == ESG_OK) {
        if (strcmp(command, "ping") == 0)
            printf("ok\n");
        else if (strcmp(command, "call") == 0)
            rc = run_call(client, rest[0], &args, &err);
        else if (strcmp(command, "notifications") == 0)
            rc = run_notifications(client, mapper, args.numbers, n_rest, rest, &err);
        else
            rc = esg_client_prompt(client, rest[0], &err);
    }
    if (rc != ESG_OK)
        fprintf(stderr, "eventsourcing_grpc_client: %s: %s\n", esg_status_name(rc), err.message);
    esg_client_free(client);
    esg_mapper_free(mapper);
    esg_value_free(args.args);
    esg_value_free(args.kwargs);
    return exit_code_for(rc);
}
