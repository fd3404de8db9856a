/* SQL on the tests' PostgreSQL server, as its POSTGRES_* settings say. */
#include "pg_testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

void testutil_postgres_exec(const char *sql)
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
    char message[512];
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(message, sizeof message, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect to PostgreSQL: %s", message);
    }
    PGresult *res = PQexec(conn, sql);
    int is_ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    snprintf(message, sizeof message, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(conn);
    if (!is_ok)
        fail_msg("'%s' failed: %s", sql, message);
}
