/* Unit tests for store.c and its backends, against real SQLite files in
 * temporary folders (and, with ALLIANCE_TEST_PG_DIR set, the same tests
 * against fresh PostgreSQL databases: tdb.h; tests/unit/run-pg.sh): file
 * modes, migrations, open refusals, the answer rules, callbacks after
 * commit, draining, sample drops, the baseline query, durability across a
 * crash of the process, the quality context of pulses, incidents and the
 * visit-quality read, the upgrade from version 1. The tests that are about
 * SQLite files by nature (modes, WAL, read-only and corrupt files, query
 * plans) run on SQLite only; tests/unit/test_store_pg.c has PostgreSQL's.
 *
 * The tests read what the store wrote through a second, independent
 * connection (sqlq.h), never through the store itself. */
#define _GNU_SOURCE
#include <glib.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <jansson.h>
#include "store.h"
#include "sqlq.h"
#include "store_sqlite.h"
#include "tdb.h"

/* --- helpers ------------------------------------------------------------------------- */

typedef struct fixture {
	char *dir;
	char *path;
} fixture;

/* Every test gets its own folder under one base folder, named after the
 * test, so that a test's subprocess (g_test_trap_subprocess) finds the
 * same folder as its parent. The base is made in main(), before any
 * thread exists, and handed to subprocesses through the environment. */
#define BASE_ENV "STORE_TEST_BASE"

static void fx_setup(fixture *fx, gconstpointer data) {
	char *name = g_strdup(g_test_get_path());
	g_strdelimit(name, "/", '_');
	fx->dir = g_build_filename(g_getenv(BASE_ENV), name, NULL);
	g_free(name);
	if(!g_test_subprocess())           /* the parent made it */
		g_assert_cmpint(g_mkdir(fx->dir, 0700), ==, 0);
	fx->path = tdb_create(fx->dir, "alliance.sqlite", !g_test_subprocess());
}

static void rm_rf(const char *p) {
	GDir *d = g_dir_open(p, 0, NULL);
	if(d) {
		const char *n;
		while((n = g_dir_read_name(d)) != NULL) {
			char *c = g_build_filename(p, n, NULL);
			rm_rf(c);
			g_free(c);
		}
		g_dir_close(d);
		g_chmod(p, 0700);
		g_rmdir(p);
	} else {
		g_unlink(p);
	}
}

static void fx_teardown(fixture *fx, gconstpointer data) {
	if(!g_test_subprocess()) {
		rm_rf(fx->dir);
		tdb_drop(fx->path);
	}
	g_free(fx->dir);
	g_free(fx->path);
}

static store *open_ok(const char *path) {
	return tdb_open_ok(path);
}

/* Open expecting a refusal; returns the message (g_free it). */
static char *open_refused(const char *path) {
	char err[512] = "";
	store *st = tdb_open(path, err, sizeof(err));
	if(st != NULL) {
		store_close(st);
		g_error("opening %s should have been refused", path);
	}
	g_assert_cmpstr(err, !=, "");
	return g_strdup(err);
}

/* What a callback saw. Read it after store_sync(): the sync job runs after
 * the callback, and waiting for it orders the memory. */
typedef struct done_rec {
	int calls;
	store_rc rc;
	char error[256];
} done_rec;

static void on_done(store_rc rc, const char *error, void *user) {
	done_rec *d = user;
	d->calls++;
	d->rc = rc;
	g_strlcpy(d->error, error ? error : "", sizeof(d->error));
}

/* A second connection, as another process would have. */
static sqlite3 *raw_open_flags(const char *path, int flags) {
	sqlite3 *db = NULL;
	g_assert_cmpint(sqlite3_open_v2(path, &db, flags, NULL), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static sqlite3 *raw_create(const char *path) {
	return raw_open_flags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
}

static char *answer_state(const char *path) {
	char *a = sqlq_rows(path, "SELECT * FROM answers ORDER BY pulse_id");
	char *b = sqlq_rows(path, "SELECT * FROM answer_items ORDER BY pulse_id, item_id");
	char *c = sqlq_rows(path, "SELECT * FROM scores ORDER BY pulse_id, name");
	char *d = sqlq_rows(path, "SELECT pulse_id, status, status_at FROM pulses ORDER BY pulse_id");
	char *all = g_strconcat(a, "--\n", b, "--\n", c, "--\n", d, NULL);
	g_free(a); g_free(b); g_free(c); g_free(d);
	return all;
}

static mode_t mode_of(const char *p) {
	struct stat s;
	g_assert_cmpint(stat(p, &s), ==, 0);
	return s.st_mode & 07777;
}

static void add_visit(store *st, const char *visit_id, const char *client, gint64 t) {
	store_visit_rec v = { visit_id, "T-01", client, "video", t };
	g_assert_cmpint(store_visit_create(st, &v, NULL, NULL), ==, 0);
}

static void add_pulse(store *st, const char *pulse_id, const char *visit_id,
		const char *role, const char *instrument, gint64 t) {
	store_pulse_rec p = { pulse_id, visit_id, role, "in_session", instrument, "1",
		"en", "schedule", "datachannel", t, t + 60000000 };
	g_assert_cmpint(store_pulse_create(st, &p, NULL, NULL), ==, 0);
}

/* Answer and wait for the callback; returns its rc. */
static store_rc answer_sync(store *st, const char *pulse_id, gboolean final, gint64 t,
		const store_item_value *items, int n_items,
		const store_score *scores, int n_scores) {
	store_answer_rec a = { pulse_id, final, t, 1500, TRUE, n_items, items, n_scores, scores };
	done_rec d = { 0 };
	g_assert_cmpint(store_answer(st, &a, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	return d.rc;
}

static store_rc dismiss_sync(store *st, const char *pulse_id, gint64 t) {
	done_rec d = { 0 };
	g_assert_cmpint(store_dismiss(st, pulse_id, t, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	return d.rc;
}

static store_rc status_sync(store *st, const char *pulse_id, const char *status, gint64 t) {
	done_rec d = { 0 };
	g_assert_cmpint(store_pulse_status(st, pulse_id, status, t, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	return d.rc;
}

/* --- files and modes -------------------------------------------------------------------- */

static void test_creates_0600(fixture *fx, gconstpointer data) {
	/* with umask 0, anything not created 0600 on purpose would be 0644 */
	mode_t old = umask(0);
	store *st = open_ok(fx->path);
	umask(old);
	g_assert_null(store_warning(st));
	g_assert_cmpstr(store_path(st), ==, fx->path);
	g_assert_cmpint(mode_of(fx->path), ==, 0600);
	add_visit(st, "v1", "C-0042", 1);
	g_assert_cmpint(store_sync(st), ==, 0);
	/* WAL mode: the -wal and -shm files exist while the store is open */
	char *wal = g_strconcat(fx->path, "-wal", NULL), *shm = g_strconcat(fx->path, "-shm", NULL);
	g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(shm, G_FILE_TEST_EXISTS));
	g_assert_cmpint(mode_of(wal) & 077, ==, 0);
	g_assert_cmpint(mode_of(shm) & 077, ==, 0);
	store_close(st);
	g_free(wal);
	g_free(shm);
}

static void test_tightens_0644(fixture *fx, gconstpointer data) {
	char *wal = g_strconcat(fx->path, "-wal", NULL);
	g_assert_true(g_file_set_contents(fx->path, "", 0, NULL));   /* an empty file is an empty database */
	g_assert_true(g_file_set_contents(wal, "", 0, NULL));
	g_assert_cmpint(g_chmod(fx->path, 0644), ==, 0);
	g_assert_cmpint(g_chmod(wal, 0644), ==, 0);
	store *st = open_ok(fx->path);
	const char *w = store_warning(st);
	g_assert_nonnull(w);
	g_test_message("warning: %s", w);
	g_assert_nonnull(strstr(w, fx->path));
	g_assert_nonnull(strstr(w, "0644"));
	g_assert_nonnull(strstr(w, "0600"));
	g_assert_cmpint(mode_of(fx->path), ==, 0600);
	g_assert_cmpint(mode_of(wal) & 077, ==, 0);
	store_close(st);
	/* once tightened, nothing to say */
	st = open_ok(fx->path);
	g_assert_null(store_warning(st));
	store_close(st);
	g_free(wal);
}

/* --- migrations --------------------------------------------------------------------------- */

static void test_fresh_is_current_version(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	store_close(st);
	g_assert_cmpint(STORE_SCHEMA_VERSION, ==, 6);
	g_assert_cmpint(store_sqlite_n_migrations, ==, STORE_SCHEMA_VERSION);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
		"('visits','participants','pulses','answers','answer_items','scores','alerts',"
		"'events','quality_samples','incidents','visit_summaries')"), ==, 11);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pragma_table_info('pulses')"
		" WHERE name = 'quality_json' AND type = 'TEXT' AND \"notnull\" = 0"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
		" AND name = 'incidents_by_visit'"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "PRAGMA application_id"), ==, STORE_SQLITE_APPLICATION_ID);
	char *mode = sqlq_rows(fx->path, "PRAGMA journal_mode");
	g_assert_cmpstr(mode, ==, "wal\n");          /* persistent in the file */
	g_free(mode);
}

static void test_reopen_keeps_data(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	add_visit(st, "v1", "C-0042", 1000);
	store_close(st);
	st = open_ok(fx->path);
	add_visit(st, "v2", "C-0042", 2000);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visits"), ==, 2);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT created_at FROM visits WHERE visit_id = 'v1'"), ==, 1000);
	/* each migration ran once */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
}

static void test_newer_refused(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	add_visit(st, "v1", "C-0042", 1000);
	store_close(st);
	sqlq_exec_ok(fx->path, "INSERT INTO schema_version VALUES (99, 0)");
	char *err = open_refused(fx->path);
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, tdb_pg() ? "db_url postgresql://" : fx->path));
	g_assert_nonnull(strstr(err, "schema version 99"));
	g_assert_nonnull(strstr(err, "newer"));
	g_free(err);
	/* refused means untouched */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, 99);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visits"), ==, 1);
}

/* Older databases get the missing migrations, all in one transaction: a
 * failing one leaves the database as it was. Uses this build's migrations
 * followed by made-up ones (N+1 good, N+2 failing half-way). */
static void test_missing_migrations_run(fixture *fx, gconstpointer data) {
	enum { N = STORE_SCHEMA_VERSION };
	char err[256];
	const char *good[N + 1], *bad[N + 2];
	for(int i = 0; i < N; i++)
		good[i] = bad[i] = store_sqlite_migrations[i];
	good[N] = bad[N] = "CREATE TABLE extra_next (x INTEGER); ALTER TABLE visits ADD COLUMN note_next TEXT;";
	bad[N + 1] = "CREATE TABLE extra_bad (x INTEGER); INSERT INTO no_such_table VALUES (1);";
	sqlite3 *db = raw_create(fx->path);
	/* version 0 -> 1 */
	g_assert_cmpint(store_sqlite_migrate(db, good, 1, NULL, err, sizeof(err)), ==, 0);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, 1);
	/* 1 -> N+1: only the missing ones run */
	g_assert_cmpint(store_sqlite_migrate(db, good, N + 1, NULL, err, sizeof(err)), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, N + 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM schema_version"), ==, N + 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = 'extra_next'"), ==, 1);
	/* up to date: nothing runs */
	g_assert_cmpint(store_sqlite_migrate(db, good, N + 1, NULL, err, sizeof(err)), ==, N + 1);
	/* N+1 -> N+2 fails half-way: rolled back, including its first statement */
	g_assert_cmpint(store_sqlite_migrate(db, bad, N + 2, NULL, err, sizeof(err)), ==, -1);
	g_test_message("failed migration: %s", err);
	char *want = g_strdup_printf("version %d", N + 2);
	g_assert_nonnull(strstr(err, want));
	g_free(want);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, N + 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = 'extra_bad'"), ==, 0);
	/* 0 -> N+1 in one go on a second file, and a failure from 0 leaves it empty */
	char *p2 = g_build_filename(fx->dir, "two.sqlite", NULL);
	sqlite3 *db2 = raw_create(p2);
	g_assert_cmpint(store_sqlite_migrate(db2, bad, N + 2, NULL, err, sizeof(err)), ==, -1);
	g_assert_cmpint(sqlq_int(p2, "SELECT count(*) FROM sqlite_master"), ==, 0);
	g_assert_cmpint(store_sqlite_migrate(db2, good, N + 1, NULL, err, sizeof(err)), ==, 0);
	g_assert_cmpint(sqlq_int(p2, "SELECT max(version) FROM schema_version"), ==, N + 1);
	sqlite3_close(db2);
	g_free(p2);
	sqlite3_close(db);
	/* and this build, which knows only version N, refuses the version N+1 file */
	char *e = open_refused(fx->path);
	want = g_strdup_printf("schema version %d, newer than this build knows (%d)", N + 1, N);
	g_assert_nonnull(strstr(e, want));
	g_free(want);
	g_free(e);
}

/* A database written by a version-1 build is upgraded in place at open:
 * its rows stay, the new column is NULL in them, the new table is there
 * and usable. */
static void test_upgrade_from_v1(fixture *fx, gconstpointer data) {
	char err[256];
	sqlite3 *db = raw_create(fx->path);
	/* the version-1 schema, exactly as a version-1 build made it */
	g_assert_cmpint(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), ==, SQLITE_OK);
	g_assert_cmpint(store_sqlite_migrate(db, store_sqlite_migrations, 1, NULL, err, sizeof(err)), ==, 0);
	g_assert_cmpint(sqlite3_exec(db,
		"INSERT INTO visits(visit_id, therapist_code, client_code, modality, state, created_at)"
		"  VALUES ('v1', 'T-01', 'C-0042', 'video', 'live', 1000);"
		"INSERT INTO pulses(pulse_id, visit_id, role, kind, instrument_id, instrument_version,"
		"  language, \"trigger\", delivered_via, created_at, expires_at, status, status_at)"
		"  VALUES ('p1', 'v1', 'client', 'in_session', 'srs', '1', 'en', 'schedule',"
		"  'datachannel', 2000, NULL, 'delivered', 2100);"
		"INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		"  VALUES ('v1', 'client_up', 'audio', 2050, '{}');",
		NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	g_assert_cmpint(g_chmod(fx->path, 0600), ==, 0);      /* as the store had made it */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pragma_table_info('pulses')"
		" WHERE name = 'quality_json'"), ==, 0);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = 'incidents'"), ==, 0);

	store *st = open_ok(fx->path);
	g_assert_null(store_warning(st));
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT max(version) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
	char *rows = sqlq_rows(fx->path, "SELECT version FROM schema_version ORDER BY version");
	g_assert_cmpstr(rows, ==, "1\n2\n3\n4\n5\n6\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT pulse_id, visit_id, role, instrument_id, \"trigger\", created_at,"
		" expires_at, status, status_at, quality_json FROM pulses");
	g_assert_cmpstr(rows, ==, "p1|v1|client|srs|schedule|2000|~|delivered|2100|~\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT quality_json IS NULL FROM pulses WHERE pulse_id = 'p1'"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visits"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM quality_samples"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM incidents"), ==, 0);
	g_assert_cmpint(sqlq_int(fx->path, "PRAGMA application_id"), ==, STORE_SQLITE_APPLICATION_ID);

	/* the new operations work on the upgraded file, old rows included */
	st = open_ok(fx->path);
	done_rec dq = { 0 }, di = { 0 };
	g_assert_cmpint(store_pulse_quality(st, "p1", "{\"client_up\":{\"mos\":4.2}}", on_done, &dq), ==, 0);
	store_incident_rec inc = { "v1", "client_up", "audio", "freeze", 2010, 2020, NULL };
	g_assert_cmpint(store_incident(st, &inc, on_done, &di), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(dq.rc, ==, STORE_OK);
	g_assert_cmpint(di.rc, ==, STORE_OK);
	store_close(st);
	rows = sqlq_rows(fx->path, "SELECT quality_json FROM pulses");
	g_assert_cmpstr(rows, ==, "{\"client_up\":{\"mos\":4.2}}\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM incidents"), ==, 1);
	/* a second open migrates nothing more */
	store_close(open_ok(fx->path));
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
}

static void test_foreign_db_refused(fixture *fx, gconstpointer data) {
	sqlq_exec_ok(fx->path, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep')");
	char *err = open_refused(fx->path);
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, "another application"));
	g_free(err);
	g_assert_cmpint(sqlq_int(fx->path, tdb_q("SELECT count(*) FROM sqlite_master WHERE name = 'visits'",
		"SELECT count(*) FROM pg_tables WHERE tablename IN ('visits', 'schema_version')")), ==, 0);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM notes"), ==, 1);
}

/* --- refusals at open --------------------------------------------------------------------- */

static void test_missing_folder(fixture *fx, gconstpointer data) {
	char *dir = g_build_filename(fx->dir, "nope", NULL);
	char *path = g_build_filename(dir, "alliance.sqlite", NULL);
	char *err = open_refused(path);
	char *want = g_strdup_printf("db_path folder %s does not exist", dir);
	g_assert_cmpstr(err, ==, want);
	g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
	g_free(want); g_free(err); g_free(path); g_free(dir);
	/* empty path */
	char e2[64];
	g_assert_null(store_open_sqlite("", e2, sizeof(e2)));
	g_assert_cmpstr(e2, ==, "db_path is empty");
}

static void test_path_is_folder(fixture *fx, gconstpointer data) {
	g_assert_cmpint(g_mkdir(fx->path, 0700), ==, 0);
	char *err = open_refused(fx->path);
	g_assert_nonnull(strstr(err, "is not a regular file"));
	g_free(err);
}

/* SQLite opens a file it may not write read-only, silently; the store must
 * refuse such a connection. Root is never refused by file modes, so the
 * test asks SQLite for a read-only connection directly. */
static void test_readonly_connection(fixture *fx, gconstpointer data) {
	store_close(open_ok(fx->path));
	char err[256] = "";
	store *st = store_sqlite_open_ex(fx->path, STORE_SQLITE_OPEN_READONLY, err, sizeof(err));
	g_assert_null(st);
	g_test_message("refusal: %s", err);
	char *want = g_strdup_printf("db_path %s is read-only", fx->path);
	g_assert_cmpstr(err, ==, want);
	g_free(want);
}

/* A really read-only folder and file: a read-only bind mount in a private
 * mount namespace (needs CAP_SYS_ADMIN: root here, as in CI); otherwise,
 * for a non-root user, plain file modes. */
static void assert_prefix(const char *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void assert_prefix(const char *s, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	char *want = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if(!g_str_has_prefix(s, want))
		g_error("\"%s\" does not start with \"%s\"", s, want);
	g_free(want);
}

static void check_readonly_refusals(const char *ro, const char *existing, const char *fresh,
		const char *rw_in_ro, GString *report) {
	char *e1 = open_refused(existing);
	assert_prefix(e1, "db_path %s is read-only", existing);
	char *e2 = open_refused(fresh);
	assert_prefix(e2, "db_path folder %s is read-only", ro);
	g_assert_false(g_file_test(fresh, G_FILE_TEST_EXISTS));
	g_string_append_printf(report, "%s\n%s\n", e1, e2);
	if(rw_in_ro) {                     /* writable file, read-only folder */
		char *e3 = open_refused(rw_in_ro);
		assert_prefix(e3, "db_path folder %s is read-only (SQLite needs to create the -wal", ro);
		g_string_append_printf(report, "%s\n", e3);
		g_free(e3);
	}
	g_free(e1);
	g_free(e2);
}

static void test_readonly_folder_and_file(fixture *fx, gconstpointer data) {
	const char *dir = fx->dir;
	if(g_test_subprocess()) {
		char *ro = g_build_filename(dir, "ro", NULL);
		char *existing = g_build_filename(ro, "existing.sqlite", NULL);
		char *fresh = g_build_filename(ro, "fresh.sqlite", NULL);
		char *mounted = g_build_filename(ro, "mounted.sqlite", NULL);
		char *rw = g_build_filename(dir, "rw.sqlite", NULL);
		char *result = g_build_filename(dir, "result.txt", NULL);
		GString *report = g_string_new(NULL);
		if(unshare(CLONE_NEWNS) != 0
				|| mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0
				|| mount(ro, ro, NULL, MS_BIND, NULL) != 0
				|| mount(NULL, ro, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0
				|| mount(rw, mounted, NULL, MS_BIND, NULL) != 0) {
			g_string_printf(report, "skip: cannot make a read-only bind mount: %s", g_strerror(errno));
		} else {
			check_readonly_refusals(ro, existing, fresh, mounted, report);
			g_string_prepend(report, "ok\n");
		}
		g_assert_true(g_file_set_contents(result, report->str, -1, NULL));
		g_string_free(report, TRUE);
		g_free(ro); g_free(existing); g_free(fresh); g_free(mounted); g_free(rw); g_free(result);
		return;
	}
	char *ro = g_build_filename(fx->dir, "ro", NULL);
	char *existing = g_build_filename(ro, "existing.sqlite", NULL);
	char *fresh = g_build_filename(ro, "fresh.sqlite", NULL);
	g_assert_cmpint(g_mkdir(ro, 0700), ==, 0);
	store_close(open_ok(existing));
	if(geteuid() != 0) {
		/* file modes stop a normal user */
		g_assert_cmpint(g_chmod(existing, 0400), ==, 0);
		g_assert_cmpint(g_chmod(ro, 0500), ==, 0);
		GString *report = g_string_new(NULL);
		check_readonly_refusals(ro, existing, fresh, NULL, report);
		g_test_message("%s", report->str);
		g_string_free(report, TRUE);
	} else {
		char *mounted = g_build_filename(ro, "mounted.sqlite", NULL);
		char *rw = g_build_filename(fx->dir, "rw.sqlite", NULL);
		g_assert_true(g_file_set_contents(mounted, "", 0, NULL));
		g_assert_true(g_file_set_contents(rw, "", 0, NULL));
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
		g_test_trap_assert_passed();
		char *result = g_build_filename(fx->dir, "result.txt", NULL), *text = NULL;
		g_assert_true(g_file_get_contents(result, &text, NULL, NULL));
		if(g_str_has_prefix(text, "skip"))
			g_test_skip(text);
		else
			g_test_message("%s", text);
		g_free(text); g_free(result); g_free(mounted); g_free(rw);
	}
	g_free(ro); g_free(existing); g_free(fresh);
}

static void test_corrupt_file(fixture *fx, gconstpointer data) {
	/* random bytes */
	GRand *r = g_rand_new_with_seed(42);
	guint8 junk[65536];
	for(size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (guint8)g_rand_int_range(r, 0, 256);
	g_rand_free(r);
	g_assert_true(g_file_set_contents(fx->path, (const char *)junk, sizeof(junk), NULL));
	char *err = open_refused(fx->path);
	char *want = g_strdup_printf("db_path %s is not an SQLite database (file is corrupt?)", fx->path);
	g_assert_cmpstr(err, ==, want);
	g_free(err);
	/* refused means untouched */
	char *back = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(fx->path, &back, &len, NULL));
	g_assert_cmpuint(len, ==, sizeof(junk));
	g_assert_cmpint(memcmp(back, junk, len), ==, 0);
	g_free(back);

	/* a real database whose first page (the schema) is overwritten past the header */
	char *p2 = g_build_filename(fx->dir, "mangled.sqlite", NULL);
	store *st = open_ok(p2);
	add_visit(st, "v1", "C-0042", 1);
	store_close(st);
	char *db = NULL;
	g_assert_true(g_file_get_contents(p2, &db, &len, NULL));
	g_assert_cmpuint(len, >=, 4096);
	memset(db + 100, 0xA5, 4096 - 100);
	g_assert_true(g_file_set_contents(p2, db, len, NULL));
	g_free(db);
	err = open_refused(p2);
	g_test_message("mangled: %s", err);
	g_free(want);
	want = g_strdup_printf("db_path %s is not an SQLite database (file is corrupt?)", p2);
	g_assert_cmpstr(err, ==, want);
	g_free(err); g_free(want); g_free(p2);
}

/* --- the answer rules ------------------------------------------------------------------ */

static void seed(store *st) {
	add_visit(st, "v1", "C-0042", 1000);
	add_pulse(st, "p1", "v1", "client", "srs", 2000);
	add_pulse(st, "p2", "v1", "client", "srs", 2100);
	add_pulse(st, "p3", "v1", "therapist", "srs-t", 2200);
	g_assert_cmpint(store_sync(st), ==, 0);
}

static void test_answer_flow(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	const store_item_value part[] = { { "goals", 3.0 }, { "bond", 4.0 } };
	const store_score ignored[] = { { "total", 7.0 } };
	g_assert_cmpint(answer_sync(st, "p1", FALSE, 3000, part, 2, ignored, 1), ==, STORE_OK);
	char *rows = sqlq_rows(fx->path, "SELECT final, first_at, answered_at, dismissed FROM answers");
	g_assert_cmpstr(rows, ==, "0|3000|3000|0\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM answer_items"), ==, 2);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM scores"), ==, 0);   /* not with a partial */
	rows = sqlq_rows(fx->path, "SELECT status, status_at FROM pulses WHERE pulse_id = 'p1'");
	g_assert_cmpstr(rows, ==, "partial|3000\n");
	g_free(rows);

	/* completing: items merge (bond given again takes its new value) */
	const store_item_value rest[] = { { "bond", 5.0 }, { "approach", 6.5 } };
	const store_score scores[] = { { "total", 14.5 }, { "bond", 5.0 } };
	g_assert_cmpint(answer_sync(st, "p1", TRUE, 4000, rest, 2, scores, 2), ==, STORE_OK);
	rows = sqlq_rows(fx->path, "SELECT item_id, value FROM answer_items WHERE pulse_id = 'p1' ORDER BY item_id");
	g_assert_cmpstr(rows, ==, "approach|6.5\nbond|5.0\ngoals|3.0\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT final, first_at, answered_at, time_to_answer_ms, research_consent, dismissed FROM answers");
	g_assert_cmpstr(rows, ==, "1|3000|4000|1500|1|0\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT name, value FROM scores ORDER BY name");
	g_assert_cmpstr(rows, ==, "bond|5.0\ntotal|14.5\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT status, status_at FROM pulses WHERE pulse_id = 'p1'");
	g_assert_cmpstr(rows, ==, "answered|4000\n");
	g_free(rows);

	/* a second final answer, a late partial, a dismissal: refused, nothing changes */
	char *before = answer_state(fx->path);
	const store_item_value again[] = { { "goals", 9.0 }, { "new_item", 1.0 } };
	const store_score rescored[] = { { "total", 40.0 } };
	g_assert_cmpint(answer_sync(st, "p1", TRUE, 5000, again, 2, rescored, 1), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(answer_sync(st, "p1", FALSE, 5001, again, 2, NULL, 0), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(dismiss_sync(st, "p1", 5002), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(status_sync(st, "p1", "expired", 5003), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(status_sync(st, "p1", "delivered", 5004), ==, STORE_ALREADY_FINAL);
	char *after = answer_state(fx->path);
	g_assert_cmpstr(after, ==, before);
	g_free(before);
	g_free(after);

	/* the refusal's text says why; unknown pulses are not found */
	done_rec d = { 0 };
	store_answer_rec a = { "p1", TRUE, 6000, 1, FALSE, 1, again, 0, NULL };
	g_assert_cmpint(store_answer(st, &a, on_done, &d), ==, 0);
	a.pulse_id = "nope";
	done_rec d2 = { 0 };
	g_assert_cmpint(store_answer(st, &a, on_done, &d2), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.rc, ==, STORE_ALREADY_FINAL);
	g_assert_cmpstr(d.error, ==, "pulse p1 is already answered");
	g_assert_cmpint(d2.rc, ==, STORE_NOT_FOUND);
	g_assert_cmpstr(d2.error, ==, "pulse nope is not stored");
	store_close(st);
}

/* The rules hold in the database itself, for any writer. */
static void test_rules_in_sql(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	const store_item_value it[] = { { "goals", 3.0 } };
	const store_score sc[] = { { "total", 3.0 } };
	g_assert_cmpint(answer_sync(st, "p1", TRUE, 3000, it, 1, sc, 1), ==, STORE_OK);
	g_assert_cmpint(answer_sync(st, "p2", FALSE, 3000, it, 1, NULL, 0), ==, STORE_OK);
	store_close(st);
	char *before = answer_state(fx->path);
	const char *const forbidden[] = {
		"UPDATE answers SET final = 0 WHERE pulse_id = 'p1'",
		"UPDATE answers SET answered_at = 1 WHERE pulse_id = 'p1'",
		"INSERT INTO answer_items VALUES ('p1', 'late', 1.0)",
		tdb_q("INSERT OR REPLACE INTO answer_items VALUES ('p1', 'goals', 9.0)",
			"INSERT INTO answer_items VALUES ('p1', 'goals', 9.0)"
			" ON CONFLICT (pulse_id, item_id) DO UPDATE SET value = excluded.value"),
		"UPDATE answer_items SET value = 9 WHERE pulse_id = 'p1'",
		"INSERT INTO scores VALUES ('p2', 'total', 3.0)",       /* p2 is partial */
		"UPDATE answers SET dismissed = 1, final = 1 WHERE pulse_id = 'p2'",
	};
	for(size_t i = 0; i < G_N_ELEMENTS(forbidden); i++) {
		char *msg = NULL;
		if(sqlq_exec(fx->path, forbidden[i], &msg) == 0)
			g_error("the database accepted: %s", forbidden[i]);
		g_test_message("%s -> %s", forbidden[i], msg);
		g_free(msg);
	}
	char *after = answer_state(fx->path);
	g_assert_cmpstr(after, ==, before);
	g_free(before);
	g_free(after);
}

/* Two stores on one file (two Janus instances): the check is made by the
 * database inside each transaction, so exactly one final answer wins. */
static void test_two_writers_one_final(fixture *fx, gconstpointer data) {
	store *a = open_ok(fx->path);
	seed(a);
	store *b = open_ok(fx->path);
	const store_item_value ia[] = { { "goals", 1.0 } }, ib[] = { { "goals", 2.0 } };
	int wins = 0, refusals = 0;
	for(int round = 0; round < 20; round++) {
		char pid[16];
		g_snprintf(pid, sizeof(pid), "r%d", round);
		add_pulse(a, pid, "v1", "client", "srs", 2000 + round);
		g_assert_cmpint(store_sync(a), ==, 0);
		store_answer_rec ra = { pid, TRUE, 3000, 1, TRUE, 1, ia, 0, NULL };
		store_answer_rec rb = { pid, TRUE, 3000, 1, TRUE, 1, ib, 0, NULL };
		done_rec da = { 0 }, db = { 0 };
		g_assert_cmpint(store_answer(a, &ra, on_done, &da), ==, 0);
		g_assert_cmpint(store_answer(b, &rb, on_done, &db), ==, 0);
		g_assert_cmpint(store_sync(a), ==, 0);
		g_assert_cmpint(store_sync(b), ==, 0);
		wins += (da.rc == STORE_OK) + (db.rc == STORE_OK);
		refusals += (da.rc == STORE_ALREADY_FINAL) + (db.rc == STORE_ALREADY_FINAL);
		g_assert_cmpint((da.rc == STORE_OK) + (db.rc == STORE_OK), ==, 1);
	}
	g_assert_cmpint(wins, ==, 20);
	g_assert_cmpint(refusals, ==, 20);
	store_close(a);
	store_close(b);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM answer_items WHERE pulse_id LIKE 'r%'"), ==, 20);
}

static void test_dismiss_and_status(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	/* delivery: pending -> delivered, never backwards */
	g_assert_cmpint(status_sync(st, "p2", "delivered", 2500), ==, STORE_OK);
	char *rows = sqlq_rows(fx->path, "SELECT status, status_at FROM pulses WHERE pulse_id = 'p2'");
	g_assert_cmpstr(rows, ==, "delivered|2500\n");
	g_free(rows);
	g_assert_cmpint(status_sync(st, "p2", "delivered", 2600), ==, STORE_OK);
	rows = sqlq_rows(fx->path, "SELECT status, status_at FROM pulses WHERE pulse_id = 'p2'");
	g_assert_cmpstr(rows, ==, "delivered|2500\n");
	g_free(rows);
	/* partial, then "Not now": the partial items stay, the pulse is dismissed */
	const store_item_value it[] = { { "goals", 2.0 } };
	g_assert_cmpint(answer_sync(st, "p2", FALSE, 2700, it, 1, NULL, 0), ==, STORE_OK);
	g_assert_cmpint(status_sync(st, "p2", "delivered", 2750), ==, STORE_OK);   /* no-op */
	g_assert_cmpint(dismiss_sync(st, "p2", 2800), ==, STORE_OK);
	rows = sqlq_rows(fx->path, "SELECT a.final, a.dismissed, a.first_at, a.answered_at, p.status, p.status_at"
		" FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = 'p2'");
	g_assert_cmpstr(rows, ==, "0|1|2700|2800|dismissed|2800\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM answer_items WHERE pulse_id = 'p2'"), ==, 1);
	/* a dismissed pulse is closed */
	char *before = answer_state(fx->path);
	g_assert_cmpint(dismiss_sync(st, "p2", 2900), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(answer_sync(st, "p2", TRUE, 2901, it, 1, NULL, 0), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(status_sync(st, "p2", "expired", 2902), ==, STORE_ALREADY_FINAL);
	char *after = answer_state(fx->path);
	g_assert_cmpstr(after, ==, before);
	g_free(before); g_free(after);
	/* store_pulse_status("dismissed") is store_dismiss(), without a partial */
	g_assert_cmpint(status_sync(st, "p3", "dismissed", 3000), ==, STORE_OK);
	rows = sqlq_rows(fx->path, "SELECT a.final, a.dismissed, a.first_at, a.research_consent, p.status"
		" FROM answers a JOIN pulses p USING (pulse_id) WHERE pulse_id = 'p3'");
	g_assert_cmpstr(rows, ==, "0|1|3000|~|dismissed\n");
	g_free(rows);
	/* expiry closes a pulse too */
	add_pulse(st, "p4", "v1", "client", "srs", 3100);
	g_assert_cmpint(status_sync(st, "p4", "expired", 3200), ==, STORE_OK);
	g_assert_cmpint(answer_sync(st, "p4", TRUE, 3300, it, 1, NULL, 0), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(dismiss_sync(st, "p4", 3300), ==, STORE_ALREADY_FINAL);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM answers WHERE pulse_id = 'p4'"), ==, 0);
	/* unknown pulses, unknown statuses */
	g_assert_cmpint(dismiss_sync(st, "nope", 1), ==, STORE_NOT_FOUND);
	g_assert_cmpint(status_sync(st, "nope", "expired", 1), ==, STORE_NOT_FOUND);
	done_rec d = { 0 };
	g_assert_cmpint(store_pulse_status(st, "p4", "answered", 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_pulse_status(st, "p4", "bogus", 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 0);
	store_close(st);
}

/* --- visits, participants, alerts, events ------------------------------------------------ */

static void test_visit_rows(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	add_visit(st, "v1", "C-0042", 1000);
	done_rec d[8] = { { 0 } };
	g_assert_cmpint(store_visit_state(st, "v1", "waiting", 1100, on_done, &d[0]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "live", 1200, on_done, &d[1]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "waiting", 1300, on_done, &d[2]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "live", 1400, on_done, &d[3]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "ended", 1500, on_done, &d[4]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "closed", 1600, on_done, &d[5]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "nope", "live", 1, on_done, &d[6]), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v1", "paused", 1, on_done, &d[7]), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	for(int i = 0; i < 6; i++)
		g_assert_cmpint(d[i].rc, ==, STORE_OK);
	g_assert_cmpint(d[6].rc, ==, STORE_NOT_FOUND);
	g_assert_cmpint(d[7].rc, ==, STORE_ERR);
	g_assert_nonnull(strstr(d[7].error, "CHECK"));
	char *rows = sqlq_rows(fx->path, "SELECT therapist_code, client_code, modality, state, created_at,"
		" admitted_at, ended_at, closed_at FROM visits");
	g_assert_cmpstr(rows, ==, "T-01|C-0042|video|closed|1000|1200|1500|1600\n");   /* first times */
	g_free(rows);

	/* a bad modality: refused, and the message names no code */
	store_visit_rec bad = { "v2", "T-01", "C-0042", "phone", 1 };
	done_rec e = { 0 }, dup = { 0 };
	g_assert_cmpint(store_visit_create(st, &bad, on_done, &e), ==, 0);
	store_visit_rec again = { "v1", "T-01", "C-0042", "video", 1 };
	g_assert_cmpint(store_visit_create(st, &again, on_done, &dup), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(e.rc, ==, STORE_ERR);
	g_assert_cmpint(dup.rc, ==, STORE_ERR);
	g_test_message("%s / %s", e.error, dup.error);
	g_assert_null(strstr(e.error, "C-0042"));
	g_assert_null(strstr(e.error, "T-01"));
	g_assert_null(strstr(dup.error, "C-0042"));

	/* participants: one row per join; unknown visit is not found */
	done_rec p[3] = { { 0 } };
	g_assert_cmpint(store_participant_join(st, "v1", "client", "C-0042", TRUE, "de", 1100, on_done, &p[0]), ==, 0);
	g_assert_cmpint(store_participant_join(st, "v1", "observer", NULL, FALSE, NULL, 1150, on_done, &p[1]), ==, 0);
	g_assert_cmpint(store_participant_join(st, "nope", "client", "C-1", TRUE, "de", 1, on_done, &p[2]), ==, 0);
	/* alerts and events */
	add_pulse(st, "p1", "v1", "client", "srs", 1250);
	store_alert_rec al = { "v1", "p1", "below_cutoff", "total", 31.0, 36.0,
		"{\"freezes\":4,\"mos\":2.9}", 1300 };
	done_rec a = { 0 }, ev = { 0 }, ev0 = { 0 }, evx = { 0 };
	g_assert_cmpint(store_alert(st, &al, on_done, &a), ==, 0);
	g_assert_cmpint(store_event(st, "v1", "admitted", "{\"by\":\"therapist\"}", 1200, on_done, &ev), ==, 0);
	g_assert_cmpint(store_event(st, NULL, "server_start", NULL, 1, on_done, &ev0), ==, 0);
	g_assert_cmpint(store_event(st, "nope", "x", NULL, 1, on_done, &evx), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(p[0].rc, ==, STORE_OK);
	g_assert_cmpint(p[1].rc, ==, STORE_OK);
	g_assert_cmpint(p[2].rc, ==, STORE_NOT_FOUND);
	g_assert_cmpint(a.rc, ==, STORE_OK);
	g_assert_cmpint(ev.rc, ==, STORE_OK);
	g_assert_cmpint(ev0.rc, ==, STORE_OK);
	g_assert_cmpint(evx.rc, ==, STORE_NOT_FOUND);
	rows = sqlq_rows(fx->path, "SELECT role, code, research_consent, language, joined_at FROM participants ORDER BY id");
	g_assert_cmpstr(rows, ==, "client|C-0042|1|de|1100\nobserver|~|0|~|1150\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT visit_id, pulse_id, rule, score_name, score, threshold, quality_json, created_at FROM alerts");
	g_assert_cmpstr(rows, ==, "v1|p1|below_cutoff|total|31.0|36.0|{\"freezes\":4,\"mos\":2.9}|1300\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT visit_id, kind, detail_json, at FROM events ORDER BY id");
	g_assert_cmpstr(rows, ==, "v1|admitted|{\"by\":\"therapist\"}|1200\n~|server_start|~|1\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT role, kind, instrument_id, instrument_version, language, \"trigger\","
		" delivered_via, created_at, expires_at, status, status_at FROM pulses");
	g_assert_cmpstr(rows, ==, "client|in_session|srs|1|en|schedule|datachannel|1250|60001250|pending|1250\n");
	g_free(rows);
	store_close(st);

	/* erasing a client's visits removes every row about them */
	sqlq_exec_ok(fx->path, tdb_q("PRAGMA foreign_keys = ON; DELETE FROM visits WHERE client_code = 'C-0042'",
		"DELETE FROM visits WHERE client_code = 'C-0042'"));
	g_assert_cmpint(sqlq_int(fx->path, "SELECT (SELECT count(*) FROM participants) + (SELECT count(*) FROM pulses)"
		" + (SELECT count(*) FROM alerts) + (SELECT count(*) FROM events WHERE visit_id IS NOT NULL)"), ==, 0);
}

static void test_refused_at_enqueue(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	done_rec d = { 0 };
	store_visit_rec v = { "v1", "T-01", NULL, "video", 1 };
	g_assert_cmpint(store_visit_create(st, &v, on_done, &d), ==, -1);
	g_assert_cmpint(store_visit_create(st, NULL, on_done, &d), ==, -1);
	g_assert_cmpint(store_visit_state(st, NULL, "live", 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_participant_join(st, "v1", NULL, NULL, FALSE, NULL, 1, on_done, &d), ==, -1);
	store_pulse_rec p = { "p1", "v1", "client", "in_session", NULL, "1", "en", "schedule", NULL, 1, 0 };
	g_assert_cmpint(store_pulse_create(st, &p, on_done, &d), ==, -1);
	const store_item_value nan_item[] = { { "goals", NAN } };
	store_answer_rec a = { "p1", TRUE, 1, 1, TRUE, 1, nan_item, 0, NULL };
	g_assert_cmpint(store_answer(st, &a, on_done, &d), ==, -1);
	store_answer_rec a2 = { "p1", TRUE, 1, 1, TRUE, 2, NULL, 0, NULL };
	g_assert_cmpint(store_answer(st, &a2, on_done, &d), ==, -1);
	store_alert_rec al = { "v1", NULL, "drop", "total", INFINITY, 1, NULL, 1 };
	g_assert_cmpint(store_alert(st, &al, on_done, &d), ==, -1);
	g_assert_cmpint(store_event(st, "v1", NULL, NULL, 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", 1, NULL), ==, -1);
	g_assert_cmpint(store_client_scores(st, NULL, "srs", "total", NULL, 3, NULL, NULL), ==, -1);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 0);
	g_assert_cmpint(store_dropped_samples(st), ==, 0);
	store_close(st);
	store_close(NULL);
	g_assert_cmpstr(store_rc_name(STORE_ALREADY_FINAL), ==, "already_final");
	g_assert_cmpstr(store_rc_name(STORE_NOT_FOUND), ==, "not_found");
}

/* --- callbacks, draining, samples ------------------------------------------------------ */

typedef struct seen_rec {
	const char *path;
	const char *sql;
	gint64 count;
	int calls;
	store_rc rc;
	store *st;
	int sync_from_callback;
} seen_rec;

/* In the callback, a second connection must already see the row. */
static void on_done_look(store_rc rc, const char *error, void *user) {
	seen_rec *s = user;
	s->calls++;
	s->rc = rc;
	s->count = sqlq_int(s->path, s->sql);
	if(s->st)
		s->sync_from_callback = store_sync(s->st);
}

static void test_callback_after_commit(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seen_rec sv = { fx->path, "SELECT count(*) FROM visits WHERE visit_id = 'v1'", -1, 0, 0, st, 0 };
	store_visit_rec v = { "v1", "T-01", "C-0042", "video", 1 };
	g_assert_cmpint(store_visit_create(st, &v, on_done_look, &sv), ==, 0);
	add_pulse(st, "p1", "v1", "client", "srs", 2);
	seen_rec sa = { fx->path, "SELECT count(*) FROM answer_items a JOIN answers b USING (pulse_id)"
		" JOIN scores s USING (pulse_id) WHERE b.final = 1 AND a.pulse_id = 'p1'", -1, 0, 0, NULL, 0 };
	const store_item_value it[] = { { "goals", 3.0 }, { "bond", 2.0 } };
	const store_score sc[] = { { "total", 5.0 } };
	store_answer_rec a = { "p1", TRUE, 3, 1, TRUE, 2, it, 1, sc };
	g_assert_cmpint(store_answer(st, &a, on_done_look, &sa), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(sv.calls, ==, 1);
	g_assert_cmpint(sv.rc, ==, STORE_OK);
	g_assert_cmpint(sv.count, ==, 1);
	g_assert_cmpint(sv.sync_from_callback, ==, -1);   /* would wait for itself */
	g_assert_cmpint(sa.calls, ==, 1);
	g_assert_cmpint(sa.rc, ==, STORE_OK);
	g_assert_cmpint(sa.count, ==, 2);
	store_close(st);
}

static void count_cb(store_rc rc, const char *error, void *user) {
	if(rc == STORE_OK)
		g_atomic_int_inc((gint *)user);
}

static void test_close_drains(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	gint ok = 0;
	for(int i = 0; i < 1000; i++) {
		char detail[64];
		g_snprintf(detail, sizeof(detail), "{\"n\":%d}", i);
		g_assert_cmpint(store_event(st, NULL, "tick", detail, i, count_cb, &ok), ==, 0);
	}
	store_close(st);                   /* no sync: close must run them all */
	g_assert_cmpint(g_atomic_int_get(&ok), ==, 1000);
	st = open_ok(fx->path);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM events WHERE kind = 'tick'"), ==, 1000);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT sum(at) FROM events"), ==, 999 * 1000 / 2);
}

/* A callback that holds the writer until the test opens the gate. */
typedef struct gate {
	GMutex lock;
	GCond cond;
	gboolean entered, open;
} gate;

static void gate_cb(store_rc rc, const char *error, void *user) {
	gate *g = user;
	g_mutex_lock(&g->lock);
	g->entered = TRUE;
	g_cond_broadcast(&g->cond);
	while(!g->open)
		g_cond_wait(&g->cond, &g->lock);
	g_mutex_unlock(&g->lock);
}

static void test_sample_overflow(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	gate g;
	g_mutex_init(&g.lock);
	g_cond_init(&g.cond);
	g.entered = g.open = FALSE;
	g_assert_cmpint(store_event(st, "v1", "hold", NULL, 1, gate_cb, &g), ==, 0);
	g_mutex_lock(&g.lock);
	while(!g.entered)
		g_cond_wait(&g.cond, &g.lock);
	g_mutex_unlock(&g.lock);
	/* the writer is held: the queue only grows */
	int accepted = 0, refused = 0;
	for(int i = 0; i < STORE_SAMPLE_QUEUE_MAX + 500; i++) {
		if(store_quality_sample(st, "v1", "client_up", "audio", i, "{\"loss\":0.5,\"mos\":4.1}") == 0)
			accepted++;
		else
			refused++;
	}
	g_assert_cmpint(accepted, ==, STORE_SAMPLE_QUEUE_MAX);
	g_assert_cmpint(refused, ==, 500);
	g_assert_cmpuint(store_dropped_samples(st), ==, 500);
	/* answers are never dropped, however full the queue */
	const store_item_value it[] = { { "goals", 3.0 } };
	store_answer_rec a = { "p1", TRUE, 5, 1, TRUE, 1, it, 0, NULL };
	done_rec d = { 0 };
	g_assert_cmpint(store_answer(st, &a, on_done, &d), ==, 0);
	gint events_ok = 0;
	for(int i = 0; i < 100; i++)
		g_assert_cmpint(store_event(st, "v1", "queued", NULL, i, count_cb, &events_ok), ==, 0);
	g_assert_cmpuint(store_queue_depth(st), ==, STORE_SAMPLE_QUEUE_MAX + 101);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", 0, "{}"), ==, -1);
	g_assert_cmpuint(store_dropped_samples(st), ==, 501);
	g_mutex_lock(&g.lock);
	g.open = TRUE;
	g_cond_broadcast(&g.cond);
	g_mutex_unlock(&g.lock);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpuint(store_queue_depth(st), ==, 0);
	g_assert_cmpint(d.rc, ==, STORE_OK);
	g_assert_cmpint(g_atomic_int_get(&events_ok), ==, 100);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM quality_samples"), ==, STORE_SAMPLE_QUEUE_MAX);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM answers WHERE final = 1"), ==, 1);
	/* room again; a sample that cannot be written (unknown visit) counts as
	 * dropped, and does not take its batch-mates with it */
	g_assert_cmpint(store_quality_sample(st, "v1", "client_down", "video", 1, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "nope", "client_down", "video", 2, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_down", "video", 3, "{}"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpuint(store_dropped_samples(st), ==, 502);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM quality_samples WHERE leg = 'client_down'"), ==, 2);
	store_close(st);
	g_mutex_clear(&g.lock);
	g_cond_clear(&g.cond);
}

/* --- connection quality: pulse context, incidents, the visit read ---------------------- */

static store_rc quality_sync(store *st, const char *pulse_id, const char *json) {
	done_rec d = { 0 };
	g_assert_cmpint(store_pulse_quality(st, pulse_id, json, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	return d.rc;
}

static store_rc incident_sync(store *st, const store_incident_rec *r, char *error, size_t len) {
	done_rec d = { 0 };
	g_assert_cmpint(store_incident(st, r, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	if(error)
		g_strlcpy(error, d.error, len);
	return d.rc;
}

static void test_pulse_quality(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	/* the row is there when the callback runs (a second connection sees it) */
	seen_rec sq = { fx->path, "SELECT count(*) FROM pulses WHERE pulse_id = 'p1'"
		" AND quality_json = '{\"client_up\":{\"loss\":0.02}}'", -1, 0, 0, NULL, 0 };
	g_assert_cmpint(store_pulse_quality(st, "p1", "{\"client_up\":{\"loss\":0.02}}",
		on_done_look, &sq), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(sq.calls, ==, 1);
	g_assert_cmpint(sq.rc, ==, STORE_OK);
	g_assert_cmpint(sq.count, ==, 1);
	/* set again: replaced; the other pulses and the status are untouched */
	const char *q2 = "{\"client_up\":{\"loss\":0.1,\"mos\":3.1},\"therapist_down\":{\"freezes\":2}}";
	g_assert_cmpint(quality_sync(st, "p1", q2), ==, STORE_OK);
	char *rows = sqlq_rows(fx->path, "SELECT pulse_id, status, status_at, quality_json FROM pulses ORDER BY pulse_id");
	char *want = g_strdup_printf("p1|pending|2000|%s\np2|pending|2100|~\np3|pending|2200|~\n", q2);
	g_assert_cmpstr(rows, ==, want);
	g_free(rows); g_free(want);
	/* whatever the status: answered, dismissed, expired pulses take it too,
	 * and nothing of their answers changes */
	const store_item_value it[] = { { "goals", 3.0 } };
	const store_score sc[] = { { "total", 3.0 } };
	g_assert_cmpint(answer_sync(st, "p1", TRUE, 3000, it, 1, sc, 1), ==, STORE_OK);
	g_assert_cmpint(dismiss_sync(st, "p2", 3100), ==, STORE_OK);
	g_assert_cmpint(status_sync(st, "p3", "expired", 3200), ==, STORE_OK);
	char *before = answer_state(fx->path);
	g_assert_cmpint(quality_sync(st, "p1", "{\"end\":true}"), ==, STORE_OK);
	g_assert_cmpint(quality_sync(st, "p2", "{\"d\":1}"), ==, STORE_OK);
	g_assert_cmpint(quality_sync(st, "p3", "{}"), ==, STORE_OK);
	char *after = answer_state(fx->path);
	g_assert_cmpstr(after, ==, before);
	g_free(before); g_free(after);
	rows = sqlq_rows(fx->path, "SELECT pulse_id, status, quality_json FROM pulses ORDER BY pulse_id");
	g_assert_cmpstr(rows, ==, "p1|answered|{\"end\":true}\np2|dismissed|{\"d\":1}\np3|expired|{}\n");
	g_free(rows);
	/* an unknown pulse is not found, and nothing is written */
	done_rec d = { 0 };
	g_assert_cmpint(store_pulse_quality(st, "nope", "{}", on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	g_assert_cmpint(d.rc, ==, STORE_NOT_FOUND);
	g_assert_cmpstr(d.error, ==, "pulse nope is not stored");
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pulses"), ==, 3);
	store_close(st);
}

static void test_incident(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	add_visit(st, "v1", "C-0042", 1000);
	/* a closed incident with details, read by a second connection from
	 * inside the callback */
	seen_rec si = { fx->path, "SELECT count(*) FROM incidents WHERE visit_id = 'v1'", -1, 0, 0, NULL, 0 };
	store_incident_rec r = { "v1", "client_down", "video", "freeze", 5000, 7500,
		"{\"freezes\":3,\"longest_ms\":1800}" };
	g_assert_cmpint(store_incident(st, &r, on_done_look, &si), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(si.calls, ==, 1);
	g_assert_cmpint(si.rc, ==, STORE_OK);
	g_assert_cmpint(si.count, ==, 1);
	/* still open (ended_at NULL), no details; one that ends as it starts */
	store_incident_rec open = { "v1", "therapist_up", "any", "reconnect", 8000, 0, NULL };
	g_assert_cmpint(incident_sync(st, &open, NULL, 0), ==, STORE_OK);
	store_incident_rec instant = { "v1", "client_up", "audio", "loss_burst", 9000, 9000, "{}" };
	g_assert_cmpint(incident_sync(st, &instant, NULL, 0), ==, STORE_OK);
	/* every kind and leg the schema knows goes in */
	const char *kinds[] = { "high_rtt", "stall", "slow_link" };
	for(size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
		store_incident_rec k = { "v1", "therapist_down", "audio", kinds[i], 10000 + (gint64)i, 0, NULL };
		g_assert_cmpint(incident_sync(st, &k, NULL, 0), ==, STORE_OK);
	}
	/* an unknown visit is not found */
	char error[256];
	store_incident_rec lost = { "nope", "client_up", "audio", "freeze", 1, 2, NULL };
	g_assert_cmpint(incident_sync(st, &lost, error, sizeof(error)), ==, STORE_NOT_FOUND);
	g_test_message("unknown visit: %s", error);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT visit_id, leg, medium, kind, started_at, ended_at, detail_json"
		" FROM incidents ORDER BY id");
	g_assert_cmpstr(rows, ==,
		"v1|client_down|video|freeze|5000|7500|{\"freezes\":3,\"longest_ms\":1800}\n"
		"v1|therapist_up|any|reconnect|8000|~|~\n"
		"v1|client_up|audio|loss_burst|9000|9000|{}\n"
		"v1|therapist_down|audio|high_rtt|10000|~|~\n"
		"v1|therapist_down|audio|stall|10001|~|~\n"
		"v1|therapist_down|audio|slow_link|10002|~|~\n");
	g_free(rows);
	/* the visit's incidents come from the index, in order of start */
	if(tdb_pg())
		return;                        /* SQLite's query plans */
	char *plan = sqlq_rows(fx->path, "EXPLAIN QUERY PLAN SELECT leg FROM incidents"
		" WHERE visit_id = 'v1' ORDER BY started_at, id");
	g_test_message("plan:\n%s", plan);
	g_assert_nonnull(strstr(plan, "incidents_by_visit"));
	g_assert_null(strstr(plan, "TEMP B-TREE"));
	g_free(plan);
}

/* Bad values are refused at once (cb never called, nothing queued), and
 * the schema refuses them from any other writer too. */
static void test_quality_refusals(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	done_rec d = { 0 };
	/* pulse quality: NULLs, and text that is not one JSON object */
	g_assert_cmpint(store_pulse_quality(NULL, "p1", "{}", on_done, &d), ==, -1);
	g_assert_cmpint(store_pulse_quality(st, NULL, "{}", on_done, &d), ==, -1);
	g_assert_cmpint(store_pulse_quality(st, "p1", NULL, on_done, &d), ==, -1);
	const char *not_objects[] = { "", "nope", "[1,2]", "\"text\"", "42", "null",
		"{\"a\":1} trailing", "{\"a\":1,\"a\":2}", "{\"a\":" };
	for(size_t i = 0; i < G_N_ELEMENTS(not_objects); i++)
		if(store_pulse_quality(st, "p1", not_objects[i], on_done, &d) != -1)
			g_error("store_pulse_quality accepted %s", not_objects[i]);
	/* incidents: NULLs, unknown names, the end before the start, details */
	g_assert_cmpint(store_incident(st, NULL, on_done, &d), ==, -1);
	const store_incident_rec ok = { "v1", "client_up", "audio", "freeze", 5000, 6000, "{\"n\":1}" };
	g_assert_cmpint(store_incident(NULL, &ok, on_done, &d), ==, -1);
	store_incident_rec bad[] = { ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok };
	bad[0].visit_id = NULL;
	bad[1].leg = NULL;
	bad[2].medium = NULL;
	bad[3].kind = NULL;
	bad[4].leg = "client_sideways";
	bad[5].leg = "CLIENT_UP";
	bad[6].medium = "data";
	bad[7].kind = "lag";
	bad[8].kind = "";
	bad[9].ended_at_us = 4999;                      /* before the start */
	bad[10].detail_json = "[]";
	bad[11].detail_json = "not json";
	bad[12].ended_at_us = -1;
	for(size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		if(store_incident(st, &bad[i], on_done, &d) != -1)
			g_error("store_incident accepted bad record %zu", i);
	/* the read needs a visit id */
	g_assert_cmpint(store_visit_quality(st, NULL, NULL, NULL), ==, -1);
	g_assert_cmpint(store_visit_quality(NULL, "v1", NULL, NULL), ==, -1);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 0);
	/* the valid record itself goes in */
	g_assert_cmpint(incident_sync(st, &ok, NULL, 0), ==, STORE_OK);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM incidents"), ==, 1);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pulses WHERE quality_json IS NOT NULL"), ==, 0);

	/* the CHECK constraints hold for any writer */
	const char *const forbidden[] = {
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at) VALUES ('v1','client_sideways','audio','freeze',1)",
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at) VALUES ('v1','client_up','data','freeze',1)",
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at) VALUES ('v1','client_up','audio','lag',1)",
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at, ended_at) VALUES ('v1','client_up','audio','freeze',5,4)",
		"INSERT INTO incidents(visit_id, leg, medium, kind) VALUES ('v1','client_up','audio','freeze')",
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at) VALUES (NULL,'client_up','audio','freeze',1)",
	};
	for(size_t i = 0; i < G_N_ELEMENTS(forbidden); i++) {
		char *msg = NULL;
		if(sqlq_exec(fx->path, forbidden[i], &msg) == 0)
			g_error("the database accepted: %s", forbidden[i]);
		g_test_message("%s -> %s", forbidden[i], msg);
		g_free(msg);
	}
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM incidents"), ==, 1);
}

/* Erasing a visit erases its incidents (and its pulses' quality context
 * with the pulses); other visits keep theirs. */
static void test_incidents_cascade(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	seed(st);
	add_visit(st, "v2", "C-0099", 1500);
	g_assert_cmpint(quality_sync(st, "p1", "{\"client_up\":{}}"), ==, STORE_OK);
	store_incident_rec a = { "v1", "client_up", "audio", "freeze", 5000, 6000, "{\"n\":1}" };
	store_incident_rec b = { "v1", "therapist_down", "video", "stall", 7000, 0, NULL };
	store_incident_rec c = { "v2", "client_down", "any", "high_rtt", 8000, 9000, NULL };
	g_assert_cmpint(incident_sync(st, &a, NULL, 0), ==, STORE_OK);
	g_assert_cmpint(incident_sync(st, &b, NULL, 0), ==, STORE_OK);
	g_assert_cmpint(incident_sync(st, &c, NULL, 0), ==, STORE_OK);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM incidents"), ==, 3);
	sqlq_exec_ok(fx->path, tdb_q("PRAGMA foreign_keys = ON; DELETE FROM visits WHERE client_code = 'C-0042'",
		"DELETE FROM visits WHERE client_code = 'C-0042'"));
	char *rows = sqlq_rows(fx->path, "SELECT visit_id, kind FROM incidents");
	g_assert_cmpstr(rows, ==, "v2|high_rtt\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pulses"), ==, 0);
}

typedef struct text_rec {
	int calls;
	store_rc rc;
	char *json;
} text_rec;

static void on_text(store_rc rc, const char *json, void *user) {
	text_rec *t = user;
	t->calls++;
	t->rc = rc;
	g_free(t->json);
	t->json = g_strdup(json);
}

/* Read a visit's quality; compares it with want (JSON text, compared as
 * JSON values) unless want is NULL. Returns the rc. */
static store_rc visit_quality_is(store *st, const char *visit_id, const char *want) {
	text_rec t = { 0, STORE_ERR, NULL };
	g_assert_cmpint(store_visit_quality(st, visit_id, on_text, &t), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(t.calls, ==, 1);
	if(t.rc != STORE_OK) {
		g_assert_null(t.json);
		return t.rc;
	}
	g_assert_nonnull(t.json);
	g_test_message("%s: %s", visit_id, t.json);
	json_error_t e;
	json_t *got = json_loads(t.json, 0, &e);
	if(got == NULL)
		g_error("not JSON: %s (%s)", t.json, e.text);
	if(want) {
		json_t *w = json_loads(want, 0, &e);
		if(w == NULL)
			g_error("bad expectation: %s (%s)", want, e.text);
		if(!json_equal(got, w))
			g_error("visit quality\n  got  %s\n  want %s", t.json, want);
		json_decref(w);
	}
	json_decref(got);
	g_free(t.json);
	return t.rc;
}

static void test_visit_quality_read(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	/* nothing recorded yet: every pulse listed with null quality */
	seed(st);
	g_assert_cmpint(visit_quality_is(st, "v1",
		"{\"pulses\":[{\"pulse_id\":\"p1\",\"quality\":null},{\"pulse_id\":\"p2\",\"quality\":null},"
		"{\"pulse_id\":\"p3\",\"quality\":null}],\"incidents\":[],\"samples\":0}"), ==, STORE_OK);
	add_visit(st, "v2", "C-0099", 1500);
	add_pulse(st, "q1", "v2", "client", "srs", 1600);
	g_assert_cmpint(quality_sync(st, "p2", "{\"client_up\":{\"loss\":0.05,\"mos\":3.9}}"), ==, STORE_OK);
	g_assert_cmpint(quality_sync(st, "q1", "{\"other\":1}"), ==, STORE_OK);
	/* incidents queued out of order of start, no sync before the read: the
	 * read sees every write queued before it */
	store_incident_rec later = { "v1", "therapist_down", "video", "freeze", 9000, 0, NULL };
	store_incident_rec first = { "v1", "client_up", "audio", "loss_burst", 4000, 4500, "{\"loss\":0.3}" };
	store_incident_rec elsewhere = { "v2", "client_up", "audio", "stall", 4100, 4200, NULL };
	g_assert_cmpint(store_incident(st, &later, NULL, NULL), ==, 0);
	g_assert_cmpint(store_incident(st, &first, NULL, NULL), ==, 0);
	g_assert_cmpint(store_incident(st, &elsewhere, NULL, NULL), ==, 0);
	for(int i = 0; i < 3; i++)
		g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", 5000 + i, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v2", "client_up", "audio", 5000, "{}"), ==, 0);
	const char *want_v1 =
		"{\"pulses\":[{\"pulse_id\":\"p1\",\"quality\":null},"
		"{\"pulse_id\":\"p2\",\"quality\":{\"client_up\":{\"loss\":0.05,\"mos\":3.9}}},"
		"{\"pulse_id\":\"p3\",\"quality\":null}],"
		"\"incidents\":[{\"leg\":\"client_up\",\"medium\":\"audio\",\"kind\":\"loss_burst\","
		"\"started_at\":4000,\"ended_at\":4500,\"detail\":{\"loss\":0.3}},"
		"{\"leg\":\"therapist_down\",\"medium\":\"video\",\"kind\":\"freeze\","
		"\"started_at\":9000,\"ended_at\":null,\"detail\":null}],"
		"\"samples\":3}";
	g_assert_cmpint(visit_quality_is(st, "v1", want_v1), ==, STORE_OK);
	g_assert_cmpint(visit_quality_is(st, "v2",
		"{\"pulses\":[{\"pulse_id\":\"q1\",\"quality\":{\"other\":1}}],"
		"\"incidents\":[{\"leg\":\"client_up\",\"medium\":\"audio\",\"kind\":\"stall\","
		"\"started_at\":4100,\"ended_at\":4200,\"detail\":null}],\"samples\":1}"), ==, STORE_OK);
	/* the text is compact JSON with the keys in the documented order */
	text_rec t = { 0, STORE_ERR, NULL };
	g_assert_cmpint(store_visit_quality(st, "v2", on_text, &t), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpstr(t.json, ==, "{\"pulses\":[{\"pulse_id\":\"q1\",\"quality\":{\"other\":1}}],"
		"\"incidents\":[{\"leg\":\"client_up\",\"medium\":\"audio\",\"kind\":\"stall\","
		"\"started_at\":4100,\"ended_at\":4200,\"detail\":null}],\"samples\":1}");
	g_free(t.json);
	/* an unknown visit is not found (no text) */
	g_assert_cmpint(visit_quality_is(st, "nope", NULL), ==, STORE_NOT_FOUND);
	/* a visit without pulses, incidents or samples */
	add_visit(st, "v3", "C-0099", 1700);
	g_assert_cmpint(visit_quality_is(st, "v3", "{\"pulses\":[],\"incidents\":[],\"samples\":0}"), ==, STORE_OK);
	/* text some other writer stored that is not an object reads as null */
	sqlq_exec_ok(fx->path, "UPDATE pulses SET quality_json = 'garbage' WHERE pulse_id = 'q1';"
		"UPDATE incidents SET detail_json = '[1]' WHERE visit_id = 'v2'");
	g_assert_cmpint(visit_quality_is(st, "v2",
		"{\"pulses\":[{\"pulse_id\":\"q1\",\"quality\":null}],"
		"\"incidents\":[{\"leg\":\"client_up\",\"medium\":\"audio\",\"kind\":\"stall\","
		"\"started_at\":4100,\"ended_at\":4200,\"detail\":null}],\"samples\":1}"), ==, STORE_OK);
	/* a NULL callback is allowed */
	g_assert_cmpint(store_visit_quality(st, "v1", NULL, NULL), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	store_close(st);
}

/* --- the baseline read ---------------------------------------------------------------------- */

typedef struct values_rec {
	int calls;
	store_rc rc;
	GArray *v;
} values_rec;

static void on_values(store_rc rc, const double *values, int n, void *user) {
	values_rec *r = user;
	r->calls++;
	r->rc = rc;
	g_array_set_size(r->v, 0);
	if(n > 0)
		g_array_append_vals(r->v, values, (guint)n);
}

static char *baseline(store *st, const char *client, const char *instrument,
		const char *score, const char *exclude, int limit) {
	values_rec r = { 0, STORE_ERR, g_array_new(FALSE, FALSE, sizeof(double)) };
	g_assert_cmpint(store_client_scores(st, client, instrument, score, exclude, limit, on_values, &r), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(r.calls, ==, 1);
	g_assert_cmpint(r.rc, ==, STORE_OK);
	GString *s = g_string_new(NULL);
	for(guint i = 0; i < r.v->len; i++)
		g_string_append_printf(s, "%s%g", i ? " " : "", g_array_index(r.v, double, i));
	g_array_free(r.v, TRUE);
	return g_string_free(s, FALSE);
}

static void final_total(store *st, const char *pulse_id, gint64 t, double total) {
	const store_score sc[] = { { "total", total }, { "bond", total / 4 } };
	g_assert_cmpint(answer_sync(st, pulse_id, TRUE, t, NULL, 0, sc, 2), ==, STORE_OK);
}

static void test_baseline(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	/* client C-1: visits a..d, answered in this order (visit ids out of order) */
	const char *visits[] = { "vd", "vb", "va", "vc" };
	const double totals[] = { 30, 32, 34, 36 };
	for(int i = 0; i < 4; i++) {
		char pid[16];
		add_visit(st, visits[i], "C-1", 1000 * (i + 1));
		g_snprintf(pid, sizeof(pid), "p-%s", visits[i]);
		add_pulse(st, pid, visits[i], "client", "srs", 1000 * (i + 1) + 1);
		final_total(st, pid, 1000 * (i + 1) + 500, totals[i]);
	}
	/* noise: a partial answer, another instrument, the therapist's form,
	 * another client */
	add_pulse(st, "p-partial", "vc", "client", "srs", 4100);
	const store_score sc[] = { { "total", 1.0 } };
	g_assert_cmpint(answer_sync(st, "p-partial", FALSE, 4600, NULL, 0, sc, 1), ==, STORE_OK);
	add_pulse(st, "p-other", "vc", "client", "wai", 4200);
	final_total(st, "p-other", 4700, 2.0);
	add_pulse(st, "p-ther", "vc", "therapist", "srs", 4300);
	final_total(st, "p-ther", 4800, 3.0);
	add_visit(st, "vx", "C-2", 5000);
	add_pulse(st, "p-x", "vx", "client", "srs", 5001);
	final_total(st, "p-x", 5500, 4.0);

	char *s;
	s = baseline(st, "C-1", "srs", "total", NULL, 0);
	g_assert_cmpstr(s, ==, "30 32 34 36"); g_free(s);
	s = baseline(st, "C-1", "srs", "total", "vc", 0);      /* the current visit is not its own baseline */
	g_assert_cmpstr(s, ==, "30 32 34"); g_free(s);
	s = baseline(st, "C-1", "srs", "total", "vc", 2);      /* the 2 most recent, oldest first */
	g_assert_cmpstr(s, ==, "32 34"); g_free(s);
	s = baseline(st, "C-1", "srs", "total", "va", 2);
	g_assert_cmpstr(s, ==, "32 36"); g_free(s);
	s = baseline(st, "C-1", "srs", "bond", "vc", 1);
	g_assert_cmpstr(s, ==, "8.5"); g_free(s);
	s = baseline(st, "C-1", "wai", "total", NULL, 0);
	g_assert_cmpstr(s, ==, "2"); g_free(s);
	s = baseline(st, "C-3", "srs", "total", NULL, 5);
	g_assert_cmpstr(s, ==, ""); g_free(s);
	store_close(st);

	/* the baseline query is served by indexes, not table scans */
	if(tdb_pg())
		return;                        /* SQLite's query plans */
	char *plan = sqlq_rows(fx->path, "EXPLAIN QUERY PLAN SELECT s.value FROM visits v"
		" JOIN pulses p ON p.visit_id = v.visit_id JOIN answers a ON a.pulse_id = p.pulse_id"
		" JOIN scores s ON s.pulse_id = p.pulse_id WHERE v.client_code = 'C-1'"
		" AND p.instrument_id = 'srs' AND p.role = 'client' AND s.name = 'total' AND a.final = 1");
	g_test_message("plan:\n%s", plan);
	g_assert_null(strstr(plan, "SCAN"));
	g_free(plan);
}

/* --- durability ------------------------------------------------------------------------------ */

/* The process dies right after the answer's callback (no store_close, no
 * checkpoint): the answer must be in the file. */
static void die_now(store_rc rc, const char *error, void *user) {
	_exit(rc == STORE_OK ? 0 : 3);
}

static void test_durable_after_crash(fixture *fx, gconstpointer data) {
	if(g_test_subprocess()) {
		store *st = open_ok(fx->path);
		seed(st);
		const store_item_value it[] = { { "goals", 7.5 } };
		const store_score sc[] = { { "total", 7.5 } };
		store_answer_rec a = { "p1", TRUE, 3000, 1, TRUE, 1, it, 1, sc };
		g_assert_cmpint(store_answer(st, &a, die_now, NULL), ==, 0);
		store_sync(st);
		g_error("the process should have ended in the callback");
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
	/* the -wal was never checkpointed into the main file */
	if(!tdb_pg()) {
		char *wal = g_strconcat(fx->path, "-wal", NULL);
		g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
		g_free(wal);
	}
	store *st = open_ok(fx->path);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT a.final, i.item_id, i.value, s.value FROM answers a"
		" JOIN answer_items i USING (pulse_id) JOIN scores s USING (pulse_id) WHERE a.pulse_id = 'p1'");
	g_assert_cmpstr(rows, ==, "1|goals|7.5|7.5\n");
	g_free(rows);
}

/* --- many instances (PROTOCOL v1.1 "Scale") ------------------------------------------ */

typedef struct count_rec {
	int calls;
	store_rc rc;
	gint64 rows;
} count_rec;

static void on_count(store_rc rc, gint64 rows, const char *error, void *user) {
	count_rec *c = user;
	c->calls++;
	c->rc = rc;
	c->rows = rows;
}

typedef struct locate_rec {
	int calls;
	store_rc rc;
	char instance[80], servers[300];
} locate_rec;

static void on_locate(store_rc rc, const char *instance_id, const char *servers_json, void *user) {
	locate_rec *l = user;
	l->calls++;
	l->rc = rc;
	g_strlcpy(l->instance, instance_id ? instance_id : "(null)", sizeof(l->instance));
	g_strlcpy(l->servers, servers_json ? servers_json : "(null)", sizeof(l->servers));
}

static locate_rec locate_sync(store *st, const char *visit_id, const char *invite_hex) {
	locate_rec l = { 0 };
	g_assert_cmpint(store_visit_locate(st, visit_id, invite_hex, on_locate, &l), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(l.calls, ==, 1);
	return l;
}

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Visits record their instance; a visit is found by id or invite hash
 * while it is open, with its instance's servers; the repair of one
 * instance leaves the other's visits alone; closing forgets the invite. */
static void test_instances(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	done_rec d = { 0 };
	g_assert_cmpint(store_instance_seen(st, "janus-a", "[\"wss://a.example/janus\"]", 100, 100, on_done, &d), ==, 0);
	g_assert_cmpint(store_instance_seen(st, "janus-b", "[]", 100, 100, on_done, &d), ==, 0);
	/* refused at once: no id, servers not an array of strings */
	g_assert_cmpint(store_instance_seen(st, NULL, "[]", 1, 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_instance_seen(st, "", "[]", 1, 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_instance_seen(st, "x", "{}", 1, 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_instance_seen(st, "x", "[1]", 1, 1, on_done, &d), ==, -1);
	g_assert_cmpint(store_instance_seen(st, "x", "[", 1, 1, on_done, &d), ==, -1);
	/* seen again: servers and times updated, one row */
	g_assert_cmpint(store_instance_seen(st, "janus-a", "[\"wss://a2.example/janus\",\"https://a2.example/janus\"]",
		200, 250, on_done, &d), ==, 0);
	store_visit_rec va = { "va", "T-01", "C-1", "video", 1000, "janus-a", HEX_A };
	store_visit_rec vb = { "vb", "T-01", "C-2", "video", 1000, "janus-b", HEX_B };
	store_visit_rec vn = { "vn", "T-01", "C-3", "video", 1000, NULL, NULL };   /* before v5 */
	g_assert_cmpint(store_visit_create(st, &va, on_done, &d), ==, 0);
	g_assert_cmpint(store_visit_create(st, &vb, on_done, &d), ==, 0);
	g_assert_cmpint(store_visit_create(st, &vn, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 6);
	g_assert_cmpint(d.rc, ==, STORE_OK);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM instances"), ==, 2);
	char *rows = sqlq_rows(fx->path, "SELECT instance_id, public_servers, started_at, seen_at FROM instances ORDER BY 1");
	g_assert_cmpstr(rows, ==, "janus-a|[\"wss://a2.example/janus\",\"https://a2.example/janus\"]|200|250\n"
		"janus-b|[]|100|100\n");
	g_free(rows);

	locate_rec l = locate_sync(st, "va", NULL);
	g_assert_cmpint(l.rc, ==, STORE_OK);
	g_assert_cmpstr(l.instance, ==, "janus-a");
	g_assert_cmpstr(l.servers, ==, "[\"wss://a2.example/janus\",\"https://a2.example/janus\"]");
	l = locate_sync(st, NULL, HEX_B);
	g_assert_cmpint(l.rc, ==, STORE_OK);
	g_assert_cmpstr(l.instance, ==, "janus-b");
	g_assert_cmpstr(l.servers, ==, "[]");
	l = locate_sync(st, "nope", NULL);
	g_assert_cmpint(l.rc, ==, STORE_NOT_FOUND);
	g_assert_cmpstr(l.instance, ==, "(null)");
	l = locate_sync(st, NULL, "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
	g_assert_cmpint(l.rc, ==, STORE_NOT_FOUND);
	g_assert_cmpint(store_visit_locate(st, NULL, NULL, on_locate, &l), ==, -1);
	g_assert_cmpint(store_visit_locate(NULL, "va", NULL, on_locate, &l), ==, -1);

	/* janus-a restarts after a crash: its visit and the one without an
	 * instance are repaired, janus-b's is not */
	count_rec c = { 0 };
	g_assert_cmpint(store_repair_interrupted(st, NULL, 5000, on_count, &c), ==, -1);
	g_assert_cmpint(store_repair_interrupted(st, "janus-a", 5000, on_count, &c), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(c.rc, ==, STORE_OK);
	g_assert_cmpint(c.rows, ==, 2);
	rows = sqlq_rows(fx->path, "SELECT visit_id, state, coalesce(end_reason, '-'), coalesce(invite_sha256, '-')"
		" FROM visits ORDER BY 1");
	g_assert_cmpstr(rows, ==, "va|closed|interrupted|-\nvb|created|-|" HEX_B "\nvn|closed|interrupted|-\n");
	g_free(rows);
	/* a closed visit is not found any more, by id or invite */
	l = locate_sync(st, "va", NULL);
	g_assert_cmpint(l.rc, ==, STORE_NOT_FOUND);
	l = locate_sync(st, NULL, HEX_A);
	g_assert_cmpint(l.rc, ==, STORE_NOT_FOUND);
	/* closing by state forgets the invite too */
	g_assert_cmpint(store_visit_state(st, "vb", "closed", 6000, on_done, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visits WHERE invite_sha256 IS NOT NULL"), ==, 0);
	l = locate_sync(st, NULL, HEX_B);
	g_assert_cmpint(l.rc, ==, STORE_NOT_FOUND);
	store_close(st);
}

/* Health's writer figures: commits counted per write transaction, the
 * p99 from a ring that wraps (no growth), -1 before the first. */
static void test_commit_stats(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	store_health h;
	store_health_get(st, &h);
	g_assert_cmpuint(h.commits, ==, 0);
	g_assert_cmpfloat(h.commit_ms_p99, <, 0);
	store_visit_rec v = { "v1", "T-01", "C-0042", "video", 1 };
	g_assert_cmpint(store_visit_create(st, &v, NULL, NULL), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	store_health_get(st, &h);
	g_assert_cmpuint(h.commits, ==, 1);
	g_assert_cmpfloat(h.commit_ms_p99, >=, 0);
	g_assert_cmpuint(h.queue, ==, 0);
	int n = STORE_COMMIT_RING + 100;
	for(int i = 0; i < n; i++)
		g_assert_cmpint(store_event(st, "v1", "test", "{}", 1000 + i, NULL, NULL), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	store_health_get(st, &h);
	g_assert_cmpuint(h.commits, ==, (guint64)n + 1);
	g_assert_cmpfloat(h.commit_ms_p99, >=, 0);
	g_assert_cmpfloat(h.commit_ms_p99, <, 60000);
	store_close(st);
}

/* The nearest-rank percentile, on values whose answer is known. */
static void test_percentile(void) {
	guint32 us[1000];
	for(guint i = 0; i < 100; i++)
		us[i] = (100 - i) * 1000;          /* 100 ms .. 1 ms, unsorted */
	g_assert_cmpfloat(store_percentile_ms(us, 100, 99.0), ==, 99.0);
	g_assert_cmpfloat(store_percentile_ms(us, 100, 100.0), ==, 100.0);
	g_assert_cmpfloat(store_percentile_ms(us, 100, 50.0), ==, 50.0);
	for(guint i = 0; i < 1000; i++)
		us[i] = (i + 1) * 1000;
	g_assert_cmpfloat(store_percentile_ms(us, 1000, 99.0), ==, 990.0);
	us[0] = 1500;
	g_assert_cmpfloat(store_percentile_ms(us, 1, 99.0), ==, 1.5);
	/* 2 slow among 199: the p99 (rank 198) is slow; among 200 (rank 198) not */
	for(guint i = 0; i < 199; i++)
		us[i] = i < 2 ? 5000000 : 1000;
	g_assert_cmpfloat(store_percentile_ms(us, 199, 99.0), ==, 5000.0);
	for(guint i = 0; i < 200; i++)
		us[i] = i < 2 ? 5000000 : 1000;
	g_assert_cmpfloat(store_percentile_ms(us, 200, 99.0), ==, 1.0);
	g_assert_cmpfloat(store_percentile_ms(us, 0, 99.0), <, 0);
	g_assert_cmpfloat(store_percentile_ms(us, 10, 0.0), <, 0);
	g_assert_cmpfloat(store_percentile_ms(us, 10, 101.0), <, 0);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	char *base = NULL;
	if(!g_test_subprocess()) {
		GError *e = NULL;
		base = g_dir_make_tmp("store-test-XXXXXX", &e);
		g_assert_no_error(e);
		g_setenv(BASE_ENV, base, TRUE);
	}
#define ADD(name, fn) g_test_add("/store/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	/* what is about SQLite files by nature */
	if(!tdb_pg()) {
		ADD("open/creates-0600", test_creates_0600);
		ADD("open/tightens-0644", test_tightens_0644);
		ADD("open/missing-folder", test_missing_folder);
		ADD("open/path-is-folder", test_path_is_folder);
		ADD("open/read-only-connection", test_readonly_connection);
		ADD("open/read-only-folder-and-file", test_readonly_folder_and_file);
		ADD("open/corrupt-file", test_corrupt_file);
		ADD("migrate/fresh-is-current-version", test_fresh_is_current_version);
		ADD("migrate/missing-run-in-one-transaction", test_missing_migrations_run);
		ADD("migrate/upgrade-from-v1", test_upgrade_from_v1);
	}
	/* both backends */
	ADD("open/foreign-database", test_foreign_db_refused);
	ADD("migrate/reopen-keeps-data", test_reopen_keeps_data);
	ADD("migrate/newer-refused", test_newer_refused);
	ADD("answer/flow", test_answer_flow);
	ADD("answer/rules-in-sql", test_rules_in_sql);
	ADD("answer/two-writers-one-final", test_two_writers_one_final);
	ADD("answer/dismiss-and-status", test_dismiss_and_status);
	ADD("rows/visits-participants-alerts-events", test_visit_rows);
	ADD("rows/refused-at-enqueue", test_refused_at_enqueue);
	ADD("quality/pulse-quality", test_pulse_quality);
	ADD("quality/incident", test_incident);
	ADD("quality/refusals", test_quality_refusals);
	ADD("quality/incidents-cascade", test_incidents_cascade);
	ADD("quality/visit-quality-read", test_visit_quality_read);
	ADD("queue/callback-after-commit", test_callback_after_commit);
	ADD("queue/commit-stats", test_commit_stats);
	g_test_add_func("/store/percentile", test_percentile);
	ADD("queue/close-drains", test_close_drains);
	ADD("queue/sample-overflow", test_sample_overflow);
	ADD("read/baseline", test_baseline);
	ADD("durability/after-crash", test_durable_after_crash);
	ADD("instances/locate-and-repair", test_instances);
#undef ADD
	int rc = g_test_run();
	if(base) {
		rm_rf(base);
		g_free(base);
	}
	return rc;
}
