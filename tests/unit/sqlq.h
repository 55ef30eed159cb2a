/*
 * sqlq.h — test support: read a database through a second, plain
 * connection, independent of the store under test (so a test sees what is
 * really stored). db is an SQLite path or a PostgreSQL URL (tdb.h); rows
 * of PostgreSQL are printed as SQLite prints them (REAL 5 as "5.0",
 * booleans as 1/0), so the same expectations hold on both. Failures abort
 * the test.
 */
#ifndef ALLIANCE_TEST_SQLQ_H
#define ALLIANCE_TEST_SQLQ_H

#include <glib.h>
#include <sqlite3.h>

/* Open an SQLite file read-write (creating if needed), 5 s busy timeout. */
sqlite3 *sqlq_open(const char *path);

/* The first column of the first row of sql, as an integer. */
gint64 sqlq_int(const char *db, const char *sql);

/* Every row as "a|b|c\n" lines, NULL as "~" (g_free the result). */
char *sqlq_rows(const char *db, const char *sql);

/* Run sql (several statements allowed); 0, or -1 with the database's
 * message in *msg (g_free; msg may be NULL). */
int sqlq_exec(const char *db, const char *sql, char **msg);

/* The same, failing the test if sql fails. */
void sqlq_exec_ok(const char *db, const char *sql);

#endif
