/* sqlq.c — see sqlq.h. */
#include "sqlq.h"
#include "tdb.h"

#include <stdlib.h>
#include <string.h>
#ifdef AP_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

sqlite3 *sqlq_open(const char *path) {
	sqlite3 *db = NULL;
	g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		NULL), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
	sqlite3_stmt *s = NULL;
	if(sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		g_error("%s: %s", sql, sqlite3_errmsg(db));
	return s;
}

#ifdef AP_HAVE_LIBPQ
static PGresult *pg_query(const char *url, const char *sql) {
	PGconn *c = PQconnectdb(url);
	if(PQstatus(c) != CONNECTION_OK)
		g_error("%s: %s", url, PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	if(PQresultStatus(r) != PGRES_TUPLES_OK)
		g_error("%s: %s", sql, PQerrorMessage(c));
	PQfinish(c);
	return r;
}

/* A value as SQLite would print it. */
static char *pg_text(const PGresult *r, int row, int col) {
	if(PQgetisnull(r, row, col))
		return g_strdup("~");
	const char *t = PQgetvalue(r, row, col);
	Oid type = PQftype(r, col);
	if(type == 16)                                   /* bool */
		return g_strdup(t[0] == 't' ? "1" : "0");
	if(type == 700 || type == 701 || type == 1700) { /* float4, float8, numeric */
		if(type == 1700 && strpbrk(t, ".eE") == NULL)
			return g_strdup(t);                      /* an integer numeric (count, sum) */
		char buf[64];
		g_snprintf(buf, sizeof(buf), "%.15g", g_ascii_strtod(t, NULL));
		if(strpbrk(buf, ".eEni") == NULL)
			g_strlcat(buf, ".0", sizeof(buf));
		return g_strdup(buf);
	}
	return g_strdup(t);
}
#endif

gint64 sqlq_int(const char *db, const char *sql) {
#ifdef AP_HAVE_LIBPQ
	if(tdb_is_url(db)) {
		PGresult *r = pg_query(db, sql);
		g_assert_cmpint(PQntuples(r), >=, 1);
		char *t = pg_text(r, 0, 0);
		gint64 v = g_ascii_strtoll(t, NULL, 10);
		g_free(t);
		PQclear(r);
		return v;
	}
#endif
	sqlite3 *h = sqlq_open(db);
	sqlite3_stmt *s = prepare(h, sql);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	gint64 v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

char *sqlq_rows(const char *db, const char *sql) {
	GString *out = g_string_new(NULL);
#ifdef AP_HAVE_LIBPQ
	if(tdb_is_url(db)) {
		PGresult *r = pg_query(db, sql);
		for(int i = 0; i < PQntuples(r); i++) {
			for(int c = 0; c < PQnfields(r); c++) {
				char *t = pg_text(r, i, c);
				g_string_append_printf(out, "%s%s", c ? "|" : "", t);
				g_free(t);
			}
			g_string_append_c(out, '\n');
		}
		PQclear(r);
		return g_string_free(out, FALSE);
	}
#endif
	sqlite3 *h = sqlq_open(db);
	sqlite3_stmt *s = prepare(h, sql);
	while(sqlite3_step(s) == SQLITE_ROW) {
		for(int i = 0; i < sqlite3_column_count(s); i++) {
			const unsigned char *t = sqlite3_column_text(s, i);
			g_string_append_printf(out, "%s%s", i ? "|" : "", t ? (const char *)t : "~");
		}
		g_string_append_c(out, '\n');
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return g_string_free(out, FALSE);
}

int sqlq_exec(const char *db, const char *sql, char **msg) {
	if(msg)
		*msg = NULL;
#ifdef AP_HAVE_LIBPQ
	if(tdb_is_url(db)) {
		PGconn *c = PQconnectdb(db);
		if(PQstatus(c) != CONNECTION_OK)
			g_error("%s: %s", db, PQerrorMessage(c));
		PGresult *r = PQexec(c, sql);
		ExecStatusType s = PQresultStatus(r);
		int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : -1;
		if(rc != 0 && msg)
			*msg = g_strdup(PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return rc;
	}
#endif
	sqlite3 *h = sqlq_open(db);
	char *e = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &e) == SQLITE_OK ? 0 : -1;
	if(rc != 0 && msg)
		*msg = g_strdup(e ? e : sqlite3_errmsg(h));
	sqlite3_free(e);
	sqlite3_close(h);
	return rc;
}

void sqlq_exec_ok(const char *db, const char *sql) {
	char *msg = NULL;
	if(sqlq_exec(db, sql, &msg) != 0)
		g_error("%s: %s", sql, msg);
}
