/* SQL on the tests' PostgreSQL server, as its POSTGRES_* settings say. */
#include "pg_testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void testutil_postgres_script(const char *script, const char *command, const char *dir,
                              const char *more)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "'%s' %s '%s' %s", script, command, dir, more);
    if (n < 0 || (size_t)n >= sizeof line)
        fail_msg("the command for '%s %s' is too long", command, dir);
    if (system(line) != 0)
        fail_msg("'%s' failed", line);
}

void testutil_postgres_dir_value(const char *dir, const char *name, char *out, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(out, (int)size, f) == NULL)
        fail_msg("cannot read %s", path);
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}
