/* tdb.c — see tdb.h. */
#include "tdb.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sqlite3.h>
#include "sqlq.h"
#include "store_sqlite.h"
#ifdef AP_HAVE_LIBPQ
#include <libpq-fe.h>
#include "store_pg.h"
#endif

gboolean tdb_pg(void) {
#ifdef AP_HAVE_LIBPQ
	const char *d = g_getenv("ALLIANCE_TEST_PG_DIR");
	return d != NULL && d[0] != '\0';
#else
	return FALSE;
#endif
}

const char *tdb_pg_dir(void) {
	return tdb_pg() ? g_getenv("ALLIANCE_TEST_PG_DIR") : NULL;
}

gboolean tdb_is_url(const char *db) {
	return db && (g_str_has_prefix(db, "postgresql:") || g_str_has_prefix(db, "postgres:"));
}

const char *tdb_q(const char *sqlite_sql, const char *pg_sql) {
	return tdb_pg() ? pg_sql : sqlite_sql;
}

static char *url_of(const char *dir, const char *name) {
	return g_strdup_printf("postgresql:///%s?host=%s&port=5432&user=postgres", name, dir);
}

#ifdef AP_HAVE_LIBPQ
static void quiet(void *arg, const char *message) {
	(void)arg;
	(void)message;
}

static void admin(const char *dir, const char *sql) {
	char *url = url_of(dir, "postgres");
	PGconn *c = PQconnectdb(url);
	g_free(url);
	if(PQstatus(c) != CONNECTION_OK)
		g_error("cannot reach the test server in %s: %s", dir, PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *r = PQexec(c, sql);
	if(PQresultStatus(r) != PGRES_COMMAND_OK)
		g_error("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}
#endif

char *tdb_pg_createdb(const char *dir, const char *name) {
#ifdef AP_HAVE_LIBPQ
	char *sql = g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	admin(dir, sql);
	g_free(sql);
	sql = g_strdup_printf("CREATE DATABASE %s", name);
	admin(dir, sql);
	g_free(sql);
#endif
	return url_of(dir, name);
}

/* A database name from the test's folder: the same in a subprocess. */
static char *db_name(const char *dir) {
	char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, dir, -1);
	char *name = g_strdup_printf("ap_t_%.24s", sum);
	g_free(sum);
	return name;
}

char *tdb_create(const char *dir, const char *name, gboolean create) {
	if(!tdb_pg())
		return g_build_filename(dir, name, NULL);
	char *n = db_name(dir);
	char *url = create ? tdb_pg_createdb(tdb_pg_dir(), n) : url_of(tdb_pg_dir(), n);
	g_free(n);
	return url;
}

void tdb_drop(const char *db) {
#ifdef AP_HAVE_LIBPQ
	if(!tdb_is_url(db))
		return;
	const char *p = strstr(db, ":///"), *q = p ? strchr(p + 4, '?') : NULL;
	if(p == NULL || q == NULL)
		return;
	char *name = g_strndup(p + 4, (gsize)(q - p - 4));
	char *sql = g_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	admin(tdb_pg_dir(), sql);
	g_free(sql);
	g_free(name);
#else
	(void)db;
#endif
}

store *tdb_open(const char *db, char *err, size_t errlen) {
	return tdb_is_url(db) ? store_open_pg(db, err, errlen) : store_open_sqlite(db, err, errlen);
}

store *tdb_open_ok(const char *db) {
	char err[512] = "";
	store *st = tdb_open(db, err, sizeof(err));
	if(st == NULL)
		g_error("opening %s: %s", db, err);
	return st;
}

void tdb_migrate(const char *db, int n) {
	char err[256] = "";
#ifdef AP_HAVE_LIBPQ
	if(tdb_is_url(db)) {
		PGconn *c = PQconnectdb(db);
		g_assert_cmpint(PQstatus(c), ==, CONNECTION_OK);
		PQsetNoticeProcessor(c, quiet, NULL);
		if(store_pg_migrate(c, store_pg_migrations, n, err, sizeof(err)) < 0)
			g_error("migrating %s to %d: %s", db, n, err);
		PQfinish(c);
		return;
	}
#endif
	sqlite3 *h = sqlq_open(db);
	g_assert_cmpint(sqlite3_exec(h, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), ==, SQLITE_OK);
	if(store_sqlite_migrate(h, store_sqlite_migrations, n, NULL, err, sizeof(err)) < 0)
		g_error("migrating %s to %d: %s", db, n, err);
	sqlite3_close(h);
	g_assert_cmpint(g_chmod(db, 0600), ==, 0);      /* as the store had made it */
}

void tdb_remove(const char *dir, const char *db) {
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;
	while(d && (n = g_dir_read_name(d)) != NULL) {
		char *p = g_build_filename(dir, n, NULL);
		g_unlink(p);
		g_free(p);
	}
	if(d)
		g_dir_close(d);
	g_rmdir(dir);
	tdb_drop(db);
}
