/* The example Orders in memory on a loopback port (orders_server.h). */
#include "orders_server.h"

#include <stdio.h>
#include <stdlib.h>

#include "esg/example.h"
#include "testutil.h"

orders_server *orders_start(int port)
{
    esg_error err = {0};
    orders_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->app_env = esg_env_new();
    assert_non_null(s->app_env);
    assert_esg_ok(esg_application_new(&esg_example_orders, s->app_env, &s->app, &err), &err);
    char bind_address[64];
    snprintf(bind_address, sizeof bind_address, "localhost:%d", port);
    esg_server_options options = {.address = bind_address};
    assert_esg_ok(esg_server_start(s->app, &options, &s->server, &err), &err);
    snprintf(s->address, sizeof s->address, "localhost:%d", esg_server_port(s->server));
    s->client_env = esg_env_new();
    assert_non_null(s->client_env);
    assert_esg_ok(esg_env_set(s->client_env, "ORDERS_GRPC_SERVER_ADDRESS", s->address, &err), &err);
    return s;
}

void orders_stop(orders_server *s)
{
    esg_server_stop(s->server);
    esg_application_free(s->app);
    esg_env_free(s->app_env);
    esg_env_free(s->client_env);
    free(s);
}

esg_client *connect_orders(const orders_server *s)
{
    esg_error err = {0};
    esg_client *client = NULL;
    esg_client_options options = {.env = s->client_env, .max_attempts = 10};
    assert_esg_ok(esg_client_connect("Orders", &options, &client, &err), &err);
    assert_non_null(client);
    return client;
}

int orders_setup_session(void **state)
{
    orders_session *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->server = orders_start(0);
    o->client = connect_orders(o->server);
    *state = o;
    return 0;
}

int orders_teardown_session(void **state)
{
    orders_session *o = *state;
    esg_client_free(o->client);
    if (o->server != NULL)
        orders_stop(o->server);
    free(o);
    return 0;
}
