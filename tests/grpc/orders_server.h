/* The example Orders in memory, served on a loopback port, and a client of it: the real server
 * that the client's tests (test_client.c, test_subscribe.c) call. */
#ifndef ESG_TEST_ORDERS_SERVER_H
#define ESG_TEST_ORDERS_SERVER_H

#include "esg/grpc.h"

typedef struct orders_server {
    esg_env *app_env;     /* empty: in-memory persistence */
    esg_application *app; /* Orders */
    esg_server *server;   /* listening on the loopback */
    char address[64];     /* "localhost:PORT" */
    esg_env *client_env;  /* ORDERS_GRPC_SERVER_ADDRESS=address */
} orders_server;

/* Starts Orders on localhost:port (0 for any free port); fails the test if it cannot. */
orders_server *orders_start(int port);
/* Stops and frees it. */
void orders_stop(orders_server *s);
/* A client of it, connected by the name Orders (up to 10 attempts); the caller frees it. */
esg_client *connect_orders(const orders_server *s);

/* The fixture of the tests that need only a server and one client connected to it: cmocka's
 * setup and teardown of an orders_session. */
typedef struct orders_session {
    orders_server *server; /* NULL once a test stopped it */
    esg_client *client;
} orders_session;
int orders_setup_session(void **state);
int orders_teardown_session(void **state);
/* A test with a server and a client of its own. */
#define ORDERS_SESSION_TEST(fn)                                                                    \
    cmocka_unit_test_setup_teardown(fn, orders_setup_session, orders_teardown_session)

#endif
