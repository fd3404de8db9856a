/* A helper for the tests that read SQLite files themselves (the chaos and fault tests): whether
 * a database survived what the test did to it. */
#ifndef ESG_SQLITE_TESTUTIL_H
#define ESG_SQLITE_TESTUTIL_H

#include <sqlite3.h>

/* Runs PRAGMA integrity_check on db (borrowed, still open after), the file at path (named in the
 * message); fails the test unless SQLite answers "ok". */
void testutil_sqlite_assert_intact(sqlite3 *db, const char *path);

#endif
