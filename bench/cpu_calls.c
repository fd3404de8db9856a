/* esg_cpu_calls: a fixed workload for instruction counts (valgrind --tool=callgrind), which
 * do not depend on what else the machine runs, unlike every wall-clock figure of esg_bench.
 * Creates N orders with create_new_order and reads each with get_order, through
 * esg_application_call_json (the server's path without gRPC), on the backend that
 * PERSISTENCE_MODULE names (in memory by default). Run it with N and with 0: the difference
 * over N is the instructions of one create_new_order plus one get_order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esg.h"
#include "esg/example.h"
#include "esg/topic.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    esg_error err = {0};
    const esg_application_type *type = NULL;
    esg_application *app = NULL;
    char **ids = NULL;
    int n_created = 0, status = 1;
    esg_env *env = esg_env_from_process();
    if (env == NULL || n < 0 || (ids = calloc((size_t)n + 1, sizeof *ids)) == NULL)
        goto out;
    if (esg_example_register(&err) != ESG_OK ||
        esg_topic_resolve_application("eventsourcing_grpc.example:Orders", env, &type, &err) !=
            ESG_OK ||
        esg_application_new(type, env, &app, &err) != ESG_OK)
        goto out;
    size_t len = 0;
    for (; n_created < n; n_created++)
        if (esg_application_call_json(app, "create_new_order", "[]", 2, "{}", 2, &ids[n_created],
                                      &len, &err) != ESG_OK)
            goto out;
    for (int i = 0; i < n; i++) {
        char args[256], *result = NULL;
        int args_len = snprintf(args, sizeof args, "[%s]", ids[i]);
        esg_status rc = esg_application_call_json(app, "get_order", args, (size_t)args_len, "{}", 2,
                                                  &result, &len, &err);
        free(result);
        if (rc != ESG_OK)
            goto out;
    }
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "esg_cpu_calls: %s\n", err.message[0] ? err.message : "out of memory");
    for (int i = 0; i < n_created; i++)
        free(ids[i]);
    free(ids);
    esg_application_free(app);
    esg_env_free(env);
    return status;
}
