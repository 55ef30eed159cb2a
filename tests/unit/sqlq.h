/*
 * sqlq.h — test support: read an SQLite file through a second, plain
 * connection, independent of the store under test (so a test sees what is
 * really on disk). Failures abort the test.
 */
#ifndef ALLIANCE_TEST_SQLQ_H
#define ALLIANCE_TEST_SQLQ_H

#include <glib.h>
#include <sqlite3.h>

/* Open read-write (creating if needed), with a 5 s busy timeout. */
sqlite3 *sqlq_open(const char *path);

/* The first column of the first row of sql, as an integer. */
gint64 sqlq_int(const char *path, const char *sql);

/* Every row as "a|b|c\n" lines, NULL as "~" (g_free the result). */
char *sqlq_rows(const char *path, const char *sql);

#endif
