/* A helper for the tests that run on the PostgreSQL server of scripts/postgres-test-server.sh:
 * connections and SQL with the POSTGRES_* settings of the process environment. */
#ifndef ESG_PG_TESTUTIL_H
#define ESG_PG_TESTUTIL_H

#include <libpq-fe.h>

/* A connection to the test database (the caller PQfinish'es it); fails the test when none. */
PGconn *testutil_postgres_connect(void);

/* Runs sql (a command without rows) on the test database; fails the test when it fails. */
void testutil_postgres_exec(const char *sql);

/* For the tests that start servers of their own: runs script (scripts/postgres-test-server.sh's
 * path) COMMAND DIR MORE (MORE: words as the shell reads them, "" for none); fails the test when
 * it fails. */
void testutil_postgres_script(const char *script, const char *command, const char *dir,
                              const char *more);

/* The first line, without its newline, of the file NAME the script keeps in DIR ("port",
 * "password"); fails the test when there is none. */
void testutil_postgres_dir_value(const char *dir, const char *name, char *out, size_t size);

#endif
