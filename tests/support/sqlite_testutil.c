/* SQLite files as the tests check them (see sqlite_testutil.h). */
#include "sqlite_testutil.h"

#include <sqlite3.h>
#include <string.h>

#include "testutil.h"

void testutil_sqlite_assert_intact(sqlite3 *db, const char *path)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0)
        fail_msg("PRAGMA integrity_check of %s: %s", path,
                 rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0)
                                  : sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
}
