/*
 * tdb.h — test support: the database a store test runs against. The same
 * test functions run on both backends: SQLite files by default, and
 * PostgreSQL when ALLIANCE_TEST_PG_DIR names the folder of a running
 * tests/pg/pg-test-server (tests/unit/run-pg.sh sets it). A database is
 * named by a "locator": an SQLite path, or a libpq URL ("postgresql:...");
 * sqlq.h reads either through a connection of its own.
 */
#ifndef ALLIANCE_TEST_TDB_H
#define ALLIANCE_TEST_TDB_H

#include <glib.h>
#include "store.h"

/* TRUE when this run is against PostgreSQL. */
gboolean tdb_pg(void);

/* The pg-test-server folder (NULL for SQLite runs). */
const char *tdb_pg_dir(void);

/* The database of the test that owns folder dir: for SQLite dir/name, for
 * PostgreSQL a database named after dir, created empty when create is
 * TRUE (a test's subprocess passes FALSE to find its parent's). g_free. */
char *tdb_create(const char *dir, const char *name, gboolean create);

/* Drop a PostgreSQL database made by tdb_create (nothing for SQLite). */
void tdb_drop(const char *db);

/* A test's teardown: remove folder dir and the files in it, then
 * tdb_drop(db). */
void tdb_remove(const char *dir, const char *db);

/* Open the store on db by its kind; NULL with err. */
store *tdb_open(const char *db, char *err, size_t errlen);

/* The same, failing the test on a refusal. */
store *tdb_open_ok(const char *db);

/* The locator names a PostgreSQL database. */
gboolean tdb_is_url(const char *db);

/* The SQL of this run's backend. */
const char *tdb_q(const char *sqlite_sql, const char *pg_sql);

/* Bring db to schema version n with this build's first n migrations, as
 * a build of version n would have left it (no store opened). */
void tdb_migrate(const char *db, int n);

/* A fresh PostgreSQL database named name on the server of folder dir
 * (dropped first if it exists); its URL (g_free). */
char *tdb_pg_createdb(const char *dir, const char *name);

#endif
