/* A helper for the tests that run on the PostgreSQL server of scripts/postgres-test-server.sh:
 * SQL run with the POSTGRES_* settings of the process environment. */
#ifndef ESG_PG_TESTUTIL_H
#define ESG_PG_TESTUTIL_H

/* Runs sql (a command without rows) on the test database; fails the test when it fails. */
void testutil_postgres_exec(const char *sql);

#endif
