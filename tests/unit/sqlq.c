/* sqlq.c — see sqlq.h. */
#include "sqlq.h"

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

gint64 sqlq_int(const char *path, const char *sql) {
	sqlite3 *db = sqlq_open(path);
	sqlite3_stmt *s = prepare(db, sql);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	gint64 v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

char *sqlq_rows(const char *path, const char *sql) {
	sqlite3 *db = sqlq_open(path);
	sqlite3_stmt *s = prepare(db, sql);
	GString *out = g_string_new(NULL);
	while(sqlite3_step(s) == SQLITE_ROW) {
		for(int i = 0; i < sqlite3_column_count(s); i++) {
			const unsigned char *t = sqlite3_column_text(s, i);
			g_string_append_printf(out, "%s%s", i ? "|" : "", t ? (const char *)t : "~");
		}
		g_string_append_c(out, '\n');
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return g_string_free(out, FALSE);
}
