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

static esg_status run_call(esg_client *client, int argc, char **argv, esg_error *err)
{
    esg_value *args = NULL, *kwargs = NULL, *result = NULL;
    char *json = NULL;
    esg_status rc = ESG_OK;
    if (argc > 1)
        rc = esg_json_decode(argv[1], strlen(argv[1]), &args, err);
    if (rc == ESG_OK && argc > 2)
        rc = esg_json_decode(argv[2], strlen(argv[2]), &kwargs, err);
    if (rc != ESG_OK) {
        esg_error decode_err = *err; /* not the buffer being written */
        rc = esg_error_set(err, ESG_ECONFIG, "the arguments are not JSON: %s", decode_err.message);
    }
    if (rc == ESG_OK)
        rc = esg_client_call(client, argv[0], args, kwargs, &result, err);
    if (rc == ESG_OK)
        rc = esg_json_encode(result, &json, NULL, err);
    if (rc == ESG_OK)
        printf("%s\n", json);
    esg_free(json);
    esg_value_free(args);
    esg_value_free(kwargs);
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

static esg_status run_notifications(esg_client *client, const esg_mapper *mapper, int argc,
                                    char **argv, esg_error *err)
{
    int64_t numbers[3] = {1, 10, 0};
    for (int i = 0; i < argc && i < 3; i++)
        if (!parse_number(argv[i], &numbers[i]))
            return esg_error_set(err, ESG_ECONFIG, "'%s' is not a number", argv[i]);
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
    bool is_known = strcmp(command, "ping") == 0 || strcmp(command, "notifications") == 0 ||
                    (strcmp(command, "call") == 0 && n_rest >= 1 && n_rest <= 3) ||
                    (strcmp(command, "prompt") == 0 && n_rest == 1);
    if (!is_known) {
        fprintf(stderr, "eventsourcing_grpc_client: bad command '%s'\n\n%s", command, usage);
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
    esg_env_free(env);
    if (rc == ESG_OK)
        rc = is_address ? esg_client_connect_address(server, &options, &client, &err)
                        : esg_client_connect(server, &options, &client, &err);
    if (rc == ESG_OK) {
        if (strcmp(command, "ping") == 0)
            printf("ok\n");
        else if (strcmp(command, "call") == 0)
            rc = run_call(client, n_rest, rest, &err);
        else if (strcmp(command, "notifications") == 0)
            rc = run_notifications(client, mapper, n_rest, rest, &err);
        else
            rc = esg_client_prompt(client, rest[0], &err);
    }
    if (rc != ESG_OK)
        fprintf(stderr, "eventsourcing_grpc_client: %s: %s\n", esg_status_name(rc), err.message);
    esg_client_free(client);
    esg_mapper_free(mapper);
    return exit_code_for(rc);
}
