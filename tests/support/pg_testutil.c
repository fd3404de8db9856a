/* SQL on the tests' PostgreSQL server, as its POSTGRES_* settings say. */
#include "pg_testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

PGconn *testutil_postgres_connect(void)
{
    const char *keywords[] = {"host", "port", "dbname", "user", "password", "options", NULL};
    const char *values[] = {getenv("POSTGRES_HOST"),
                            getenv("POSTGRES_PORT"),
                            getenv("POSTGRES_DBNAME"),
                            getenv("POSTGRES_USER"),
                            getenv("POSTGRES_PASSWORD"),
                            "-c client_min_messages=warning",
                            NULL};
    PGconn *conn = PQconnectdbParams(keywords, values, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
        char message[512];
        snprintf(message, sizeof message, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect to PostgreSQL (are POSTGRES_* set?): %s", message);
    }
    return conn;
}

void testutil_postgres_exec(const char *sql)
{
    PGconn *conn = testutil_postgres_connect();
    char message[512];
    PGresult *res = PQexec(conn, sql);
    int is_ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    snprintf(message, sizeof message, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(conn);
    if (!is_ok)
        fail_msg("'%s' failed: %s", sql, message);
}
