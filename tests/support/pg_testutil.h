/* A helper for the tests that run on the PostgreSQL server of scripts/postgres-test-server.sh:
 * connections and SQL with the POSTGRES_* settings of the process environment. */
#ifndef ESG_PG_TESTUTIL_H
#define ESG_PG_TESTUTIL_H

#include <libpq-fe.h>

/* A connection to the test database (the caller PQfinish'es it); fails the test when none. */
PGconn *testutil_postgres_connect(void);

/* Runs sql (a command without rows) on the test database; fails the test when it fails. */
void testutil_postgres_exec(const char *sql);

#endif
