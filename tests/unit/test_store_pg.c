/* Unit tests of what only the PostgreSQL backend has (store_pg*.c),
 * against the server of tests/unit/run-pg.sh (ALLIANCE_TEST_PG_DIR); the
 * tests both backends share are in test_store*.c and run there too.
 *
 * - the schema: tables, the marker, the partitioned quality_samples; the
 *   migrations in one transaction; two processes opening a new database at
 *   once migrate it once;
 * - the URL without its password, and refusals that never show it;
 * - the open for reading: no migration, another version refused, every
 *   write refused, read-only sessions;
 * - the server stopped, killed and started again while jobs wait: the
 *   store is degraded, answers are refused, what must be kept lands after
 *   the reconnection, nothing acknowledged is lost; closing gives up;
 * - two instances answering one pulse: one final answer; partial answers
 *   racing merge;
 * - forget waits for a visit being created for the client (the advisory
 *   lock) and then refuses;
 * - sample partitions made ahead and on demand (rows waiting in the
 *   DEFAULT partition moved), and retention dropping whole months, never
 *   one that still holds a kept visit's samples. */
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "store.h"
#include "store_pg.h"
#include "sqlq.h"
#include "tdb.h"
#include "outcome.h"

#define T0 1700000000000000LL           /* 2023-11-14T22:13:20Z */
#define DAY (86400LL * 1000000LL)

/* --- helpers ------------------------------------------------------------------------- */

typedef struct fixture {
	char *dir;                         /* the test's folder */
	char *url;                         /* its database */
} fixture;

static void fx_setup(fixture *fx, gconstpointer data) {
	fx->dir = g_dir_make_tmp("store-pg-XXXXXX", NULL);
	g_assert_nonnull(fx->dir);
	fx->url = tdb_create(fx->dir, "db", TRUE);
}

static void fx_teardown(fixture *fx, gconstpointer data) {
	tdb_drop(fx->url);
	g_rmdir(fx->dir);
	g_free(fx->dir);
	g_free(fx->url);
}

static void ok_cb(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("%s: %s", (const char *)user, error ? error : "?");
}

static void add_visit(store *st, const char *id, const char *client, gint64 t) {
	store_visit_rec v = { id, "T-01", client, "video", t, "here", NULL };
	g_assert_cmpint(store_visit_create(st, &v, ok_cb, (void *)"visit"), ==, 0);
}

static void add_pulse(store *st, const char *id, const char *visit, gint64 t) {
	store_pulse_rec p = { id, visit, "client", "in_session", "ap-pulse", "1", "en", "schedule",
		"datachannel", t, 0 };
	g_assert_cmpint(store_pulse_create(st, &p, ok_cb, (void *)"pulse"), ==, 0);
}

static int answer(store *st, const char *pulse_id, gboolean final, double value, outcome *o) {
	store_item_value items[1] = { { "understood", value } };
	store_answer_rec a = { pulse_id, final, T0 + 1000, 10, TRUE, 1, items, 0, NULL };
	return store_answer(st, &a, outcome_done, o);
}

/* Run the test server script (ALLIANCE_TEST_PG_SERVER) on folder dir. */
static void server(const char *cmd, const char *dir) {
	char *argv[] = { (char *)"bash", (char *)g_getenv("ALLIANCE_TEST_PG_SERVER"), (char *)cmd,
		(char *)dir, NULL };
	int status = 0;
	GError *e = NULL;
	if(!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
			NULL, NULL, &status, &e) || !g_spawn_check_wait_status(status, NULL))
		g_error("pg-test-server %s %s failed%s%s", cmd, dir, e ? ": " : "", e ? e->message : "");
}

/* A private server of the test's own (it is stopped and killed), with
 * a fresh database; its folder in *sdir (g_free both). */
static char *private_server(char **sdir) {
	*sdir = g_dir_make_tmp("ap-pg-own-XXXXXX", NULL);
	g_assert_nonnull(*sdir);
	server("start", *sdir);
	return tdb_pg_createdb(*sdir, "faults");
}

/* --- the schema ------------------------------------------------------------------------ */

static void test_fresh_schema(fixture *fx, gconstpointer data) {
	store *st = tdb_open_ok(fx->url);
	g_assert_cmpstr(store_backend_name(st), ==, "postgresql");
	store_close(st);
	g_assert_cmpint(store_pg_n_migrations, ==, STORE_SCHEMA_VERSION);
	char *rows = sqlq_rows(fx->url, "SELECT version FROM schema_version ORDER BY version");
	g_assert_cmpstr(rows, ==, "1\n2\n3\n4\n5\n6\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN "
		"('visits','participants','pulses','answers','answer_items','scores','alerts','events',"
		"'quality_samples','incidents','visit_summaries','instances','schema_version')"), ==, 13);
	rows = sqlq_rows(fx->url, "SELECT obj_description('schema_version'::regclass, 'pg_class')");
	g_assert_cmpstr(rows, ==, STORE_PG_SCHEMA_MARK "\n");
	g_free(rows);
	/* quality_samples: partitioned by range of `at`, a DEFAULT partition,
	 * and this month's made ahead */
	rows = sqlq_rows(fx->url, "SELECT partstrat, pg_get_partkeydef('quality_samples'::regclass)"
		" FROM pg_partitioned_table WHERE partrelid = 'quality_samples'::regclass");
	g_assert_cmpstr(rows, ==, "r|RANGE (at)\n");
	g_free(rows);
	GDateTime *now = g_date_time_new_now_utc();
	char *month = g_date_time_format(now, "quality_samples_%Ym%m");
	g_date_time_unref(now);
	char *sql = g_strdup_printf("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
		" WHERE i.inhparent = 'quality_samples'::regclass AND c.relname IN ('quality_samples_default', '%s')", month);
	g_assert_cmpint(sqlq_int(fx->url, sql), ==, 2);
	g_free(sql);
	g_free(month);
	/* the foreign key of the samples reaches every partition */
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
		" AND conrelid = 'quality_samples_default'::regclass AND confrelid = 'visits'::regclass"), ==, 1);
}

/* The missing migrations run in one transaction: a failing one leaves the
 * database as it was. This build's migrations and made-up ones. */
static void test_missing_migrations(fixture *fx, gconstpointer data) {
	enum { N = STORE_SCHEMA_VERSION };
	const char *good[N + 1], *bad[N + 2];
	for(int i = 0; i < N; i++)
		good[i] = bad[i] = store_pg_migrations[i];
	good[N] = bad[N] = "CREATE TABLE extra_next (x INTEGER); ALTER TABLE visits ADD COLUMN note_next TEXT;";
	bad[N + 1] = "CREATE TABLE extra_bad (x INTEGER); INSERT INTO no_such_table VALUES (1);";
	PGconn *c = PQconnectdb(fx->url);
	g_assert_cmpint(PQstatus(c), ==, CONNECTION_OK);
	char err[256];
	g_assert_cmpint(store_pg_migrate(c, good, 1, err, sizeof(err)), ==, 0);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT max(version) FROM schema_version"), ==, 1);
	g_assert_cmpint(store_pg_migrate(c, good, N + 1, err, sizeof(err)), ==, 1);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM schema_version"), ==, N + 1);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_tables WHERE tablename = 'extra_next'"), ==, 1);
	g_assert_cmpint(store_pg_migrate(c, good, N + 1, err, sizeof(err)), ==, N + 1);
	g_assert_cmpint(store_pg_migrate(c, bad, N + 2, err, sizeof(err)), ==, -1);
	g_test_message("failed migration: %s", err);
	char *want = g_strdup_printf("could not be migrated to version %d", N + 2);
	g_assert_nonnull(strstr(err, want));
	g_free(want);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT max(version) FROM schema_version"), ==, N + 1);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_tables WHERE tablename = 'extra_bad'"), ==, 0);
	PQfinish(c);
	/* this build knows only version N */
	char e2[512];
	g_assert_null(store_open_pg(fx->url, e2, sizeof(e2)));
	want = g_strdup_printf("schema version %d, newer than this build knows (%d)", N + 1, N);
	g_assert_nonnull(strstr(e2, want));
	g_free(want);
	/* a schema_version that is not ours is another application's */
	char *u2 = tdb_pg_createdb(tdb_pg_dir(), "ap_t_other_app");
	sqlq_exec_ok(u2, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)");
	g_assert_null(store_open_pg(u2, e2, sizeof(e2)));
	g_assert_nonnull(strstr(e2, "another application"));
	g_assert_cmpint(sqlq_int(u2, "SELECT count(*) FROM pg_tables WHERE tablename = 'visits'"), ==, 0);
	tdb_drop(u2);
	g_free(u2);
}

/* Several instances starting at once on a new database: each opens, the
 * schema is made once (the advisory lock). */
static void test_concurrent_migrate(fixture *fx, gconstpointer data) {
	enum { KIDS = 4 };
	int go[2];
	g_assert_cmpint(pipe(go), ==, 0);
	pid_t kids[KIDS];
	for(int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		g_assert_cmpint(kids[k], >=, 0);
		if(kids[k] == 0) {
			char b;
			close(go[1]);
			if(read(go[0], &b, 1) < 0)
				_exit(2);
			char err[512];
			store *st = store_open_pg(fx->url, err, sizeof(err));
			if(st == NULL) {
				fprintf(stderr, "child %d: %s\n", k, err);
				_exit(1);
			}
			store_close(st);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);                      /* all of them start now */
	for(int k = 0; k < KIDS; k++) {
		int status = 0;
		g_assert_cmpint(waitpid(kids[k], &status, 0), ==, kids[k]);
		g_assert_true(WIFEXITED(status));
		g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	}
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM schema_version"), ==, STORE_SCHEMA_VERSION);
}

/* --- the URL and the refusals ------------------------------------------------------------ */

static void test_url_without_password(fixture *fx, gconstpointer data) {
	/* the test server trusts local connections: any password will do */
	const char *name = strstr(fx->url, ":///") + 4;
	char *dbname = g_strndup(name, (gsize)(strchr(name, '?') - name));
	char *full = g_strdup_printf("postgresql://postgres:s3cr3t-pw@/%s?host=%s&port=5432&connect_timeout=2",
		dbname, tdb_pg_dir());
	char err[512] = "";
	store *st = store_open_pg(full, err, sizeof(err));
	if(st == NULL)
		g_error("%s", err);
	g_test_message("store_path: %s", store_path(st));
	g_assert_null(strstr(store_path(st), "s3cr3t"));
	g_assert_nonnull(strstr(store_path(st), "postgres@"));
	g_assert_nonnull(strstr(store_path(st), "connect_timeout=2"));
	store_close(st);
	/* a server that is not there: said, without the password */
	char *gone = g_strdup_printf("postgresql://postgres:s3cr3t-pw@/x?host=%s/nowhere", fx->dir);
	g_assert_null(store_open_pg(gone, err, sizeof(err)));
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, "cannot connect to the PostgreSQL server"));
	g_assert_null(strstr(err, "s3cr3t"));
	/* the password in a keyword/value string too */
	char *kv = g_strdup_printf("host=%s/nowhere dbname=x password=s3cr3t-pw", fx->dir);
	g_assert_null(store_open_pg(kv, err, sizeof(err)));
	g_assert_null(strstr(err, "s3cr3t"));
	/* a database that does not exist; an empty and a broken URL */
	char *nodb = g_strdup_printf("postgresql:///no_such_db?host=%s&port=5432&user=postgres", tdb_pg_dir());
	g_assert_null(store_open_pg(nodb, err, sizeof(err)));
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, "no_such_db"));
	g_assert_null(store_open_pg("", err, sizeof(err)));
	g_assert_cmpstr(err, ==, "db_url is empty");
	g_assert_null(store_open_pg("postgresql://u:s3cr3t-pw@[::1", err, sizeof(err)));
	g_test_message("refusal: %s", err);
	g_assert_null(strstr(err, "s3cr3t"));
	g_free(dbname); g_free(full); g_free(gone); g_free(kv); g_free(nodb);
}

/* --- reading only ------------------------------------------------------------------------ */

typedef struct count_rows {
	int rows;
	int calls;
	store_rc rc;
} count_rows;

static int on_row(const json_t *row, void *user) {
	((count_rows *)user)->rows++;
	return 0;
}

static void on_read_done(store_rc rc, const char *error, void *user) {
	((count_rows *)user)->calls++;
	((count_rows *)user)->rc = rc;
}

static void test_for_reading(fixture *fx, gconstpointer data) {
	char err[512];
	/* an empty database: refused, and left empty */
	g_assert_null(store_open_pg_for_reading(fx->url, err, sizeof(err)));
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, "is not an Alliance Pulse database"));
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), ==, 0);
	/* an older version: refused, not migrated */
	tdb_migrate(fx->url, 3);
	g_assert_null(store_open_pg_for_reading(fx->url, err, sizeof(err)));
	g_test_message("refusal: %s", err);
	g_assert_nonnull(strstr(err, "has schema version 3, this build reads 6 (start the plugin once"));
	g_assert_cmpint(sqlq_int(fx->url, "SELECT max(version) FROM schema_version"), ==, 3);
	/* the current version: reads work, writes are refused */
	store *w = tdb_open_ok(fx->url);
	add_visit(w, "v1", "C-1", T0);
	store_close(w);
	store *r = store_open_pg_for_reading(fx->url, err, sizeof(err));
	if(r == NULL)
		g_error("%s", err);
	count_rows c = { 0 };
	store_report_filter f = { 0 };
	g_assert_cmpint(store_report_rows(r, STORE_READ_VISITS, &f, on_row, on_read_done, &c), ==, 0);
	g_assert_cmpint(store_sync(r), ==, 0);
	g_assert_cmpint(c.calls, ==, 1);
	g_assert_cmpint(c.rc, ==, STORE_OK);
	g_assert_cmpint(c.rows, ==, 1);
	store_visit_rec v = { "v2", "T-01", "C-2", "video", T0, NULL, NULL };
	g_assert_cmpint(store_visit_create(r, &v, NULL, NULL), ==, -1);
	g_assert_cmpint(store_event(r, NULL, "x", NULL, 1, NULL, NULL), ==, -1);
	g_assert_cmpint(store_quality_sample(r, "v1", "client_up", "audio", T0, "{}"), ==, -1);
	store_close(r);
	/* its sessions are read-only transactions */
	PGconn *ro = store_pg_connect(fx->url, TRUE, err, sizeof(err));
	g_assert_nonnull(ro);
	PGresult *res = PQexec(ro, "INSERT INTO events(kind, at) VALUES ('sneaky', 1)");
	g_assert_cmpint(PQresultStatus(res), ==, PGRES_FATAL_ERROR);
	g_assert_cmpstr(PQresultErrorField(res, PG_DIAG_SQLSTATE), ==, "25006");
	PQclear(res);
	PQfinish(ro);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM visits"), ==, 1);
}

/* The analytics lane's session lowers its server process's priority where
 * the database has the `prioritize` extension (the test server puts it in
 * template1), so a report yields the server's CPU to the writer's commits;
 * without the extension the store opens all the same. */
#define OUR_BACKENDS "FROM pg_stat_activity WHERE datname = current_database()" \
	" AND pid <> pg_backend_pid() AND backend_type = 'client backend'"

static void test_analytics_session_yields(fixture *fx, gconstpointer data) {
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_extension WHERE extname = 'prioritize'"),
		==, 1);
	store *st = tdb_open_ok(fx->url);
	add_visit(st, "v1", "C-1", T0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) " OUR_BACKENDS), ==, 2);
	/* relative to the server's own priority (a fresh session has it: the
	 * test may run niced, and the server with it) */
	int base = sqlq_int(fx->url, "SELECT get_backend_priority(pg_backend_pid())");
	if(base >= 10) {
		store_close(st);
		g_test_skip("the test server already runs at nice >= 10: the lowering cannot be seen");
		return;
	}
	char q[300];
	g_snprintf(q, sizeof(q), "SELECT count(*) " OUR_BACKENDS " AND get_backend_priority(pid) = 10");
	g_assert_cmpint(sqlq_int(fx->url, q), ==, 1);
	g_snprintf(q, sizeof(q), "SELECT count(*) " OUR_BACKENDS " AND get_backend_priority(pid) = %d", base);
	g_assert_cmpint(sqlq_int(fx->url, q), ==, 1);
	store_close(st);
	sqlq_exec_ok(fx->url, "DROP EXTENSION prioritize");
	st = tdb_open_ok(fx->url);
	count_rows c = { 0 };
	store_report_filter f = { 0 };
	g_assert_cmpint(store_report_rows(st, STORE_READ_VISITS, &f, on_row, on_read_done, &c), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(c.rc, ==, STORE_OK);
	g_assert_cmpint(c.rows, ==, 1);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) " OUR_BACKENDS), ==, 2);
	store_close(st);
}

/* --- the server goes away ---------------------------------------------------------------- */

/* The server stops (fast shutdown: the sessions are ended) while jobs
 * wait, and starts again: what must be kept lands, in order, by itself;
 * answers meanwhile are refused, never acknowledged. */
static void test_server_restart(fixture *fx, gconstpointer data) {
	char *sdir = NULL, *url = private_server(&sdir);
	store *st = tdb_open_ok(url);
	add_visit(st, "v1", "C-1", T0);
	add_pulse(st, "p1", "v1", T0 + 1);
	add_pulse(st, "p2", "v1", T0 + 2);
	g_assert_cmpint(store_sync(st), ==, 0);
	server("stop", sdir);
	outcome pulse3, ans, ev;
	outcome_init(&pulse3);
	outcome_init(&ans);
	outcome_init(&ev);
	store_pulse_rec p3 = { "p3", "v1", "client", "in_session", "ap-pulse", "1", "en", "schedule",
		NULL, T0 + 3, 0 };
	g_assert_cmpint(store_pulse_create(st, &p3, outcome_done, &pulse3), ==, 0);
	g_assert_cmpint(answer(st, "p1", TRUE, 4.0, &ans), ==, 0);
	g_assert_cmpint(store_event(st, "v1", "during", NULL, T0 + 4, outcome_done, &ev), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", T0 + 5, "{}"), ==, 0);
	/* the answer is refused at once once the pulse met the fault */
	g_assert_true(outcome_wait(&ans, 15));
	g_test_message("while stopped: %s", ans.error);
	g_assert_cmpint(ans.rc, ==, STORE_UNAVAILABLE);
	g_assert_nonnull(strstr(ans.error, "cannot be reached"));
	store_health h;
	store_health_get(st, &h);
	g_assert_true(h.degraded);
	g_assert_cmpint(pulse3.calls, ==, 0);
	g_assert_cmpint(ev.calls, ==, 0);
	/* another answer, still refused at once */
	outcome late;
	outcome_init(&late);
	g_assert_cmpint(answer(st, "p2", TRUE, 5.0, &late), ==, 0);
	g_assert_true(outcome_wait(&late, 10));
	g_assert_cmpint(late.rc, ==, STORE_UNAVAILABLE);
	/* back: the kept jobs land by themselves, in order */
	server("start", sdir);
	g_assert_true(outcome_wait(&pulse3, 30));
	g_assert_cmpint(pulse3.rc, ==, STORE_OK);
	g_assert_true(outcome_wait(&ev, 10));
	g_assert_cmpint(ev.rc, ==, STORE_OK);
	store_health_get(st, &h);
	g_assert_false(h.degraded);
	outcome again;
	outcome_init(&again);
	g_assert_cmpint(answer(st, "p2", TRUE, 6.0, &again), ==, 0);
	g_assert_true(outcome_wait(&again, 10));
	g_assert_cmpint(again.rc, ==, STORE_OK);
	store_close(st);
	char *rows = sqlq_rows(url, "SELECT pulse_id, value FROM answer_items ORDER BY pulse_id");
	g_assert_cmpstr(rows, ==, "p2|6.0\n");
	g_free(rows);
	rows = sqlq_rows(url, "SELECT pulse_id FROM pulses ORDER BY pulse_id");
	g_assert_cmpstr(rows, ==, "p1\np2\np3\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(url, "SELECT count(*) FROM events WHERE kind = 'during'"), ==, 1);
	server("destroy", sdir);
	g_free(sdir);
	g_free(url);
}

/* Answers stream in while the server is killed (SIGKILL, then crash
 * recovery at the next start): every answer acknowledged STORE_OK is
 * stored; the others were refused and may be sent again. */
#define STREAM 60
static void test_server_killed(fixture *fx, gconstpointer data) {
	char *sdir = NULL, *url = private_server(&sdir);
	store *st = tdb_open_ok(url);
	add_visit(st, "v1", "C-1", T0);
	for(int i = 0; i < STREAM; i++) {
		char id[16];
		g_snprintf(id, sizeof(id), "k%02d", i);
		add_pulse(st, id, "v1", T0 + i);
	}
	g_assert_cmpint(store_sync(st), ==, 0);
	outcome o[STREAM];
	for(int i = 0; i < STREAM; i++) {
		char id[16];
		outcome_init(&o[i]);
		g_snprintf(id, sizeof(id), "k%02d", i);
		g_assert_cmpint(answer(st, id, TRUE, i, &o[i]), ==, 0);
		if(i == STREAM / 3)
			server("kill", sdir);
		if(i == 2 * STREAM / 3)
			server("start", sdir);
		g_usleep(20000);
	}
	g_assert_cmpint(store_sync(st), ==, 0);
	int acked = 0, refused = 0;
	for(int i = 0; i < STREAM; i++) {
		g_assert_cmpint(o[i].calls, ==, 1);
		if(o[i].rc == STORE_OK)
			acked++;
		else
			refused++;
	}
	g_test_message("%d acknowledged, %d refused", acked, refused);
	g_assert_cmpint(refused, >, 0);
	g_assert_cmpint(acked, >, STREAM / 3);
	/* the store reconnected: a new answer goes through */
	outcome last;
	outcome_init(&last);
	add_pulse(st, "after", "v1", T0 + 999);
	g_assert_cmpint(answer(st, "after", TRUE, 1, &last), ==, 0);
	g_assert_true(outcome_wait(&last, 30));
	g_assert_cmpint(last.rc, ==, STORE_OK);
	store_close(st);
	for(int i = 0; i < STREAM; i++) {
		if(o[i].rc != STORE_OK)
			continue;
		char *sql = g_strdup_printf("SELECT count(*) FROM answers a JOIN answer_items i USING (pulse_id)"
			" WHERE a.pulse_id = 'k%02d' AND a.final = 1 AND i.value = %d", i, i);
		if(sqlq_int(url, sql) != 1)
			g_error("answer k%02d was acknowledged but is not stored", i);
		g_free(sql);
	}
	server("destroy", sdir);
	g_free(sdir);
	g_free(url);
}

/* store_close() with the server gone gives up after its bound. */
static void test_close_gives_up(fixture *fx, gconstpointer data) {
	char *sdir = NULL, *url = private_server(&sdir);
	store *st = tdb_open_ok(url);
	add_visit(st, "v1", "C-1", T0);
	g_assert_cmpint(store_sync(st), ==, 0);
	server("stop", sdir);
	outcome o;
	outcome_init(&o);
	g_assert_cmpint(store_visit_state(st, "v1", "live", T0 + 5, outcome_done, &o), ==, 0);
	gint64 t = g_get_monotonic_time();
	store_close(st);
	g_test_message("close took %.1f s", (g_get_monotonic_time() - t) / 1e6);
	g_assert_cmpint(o.calls, ==, 1);
	g_assert_cmpint(o.rc, ==, STORE_UNAVAILABLE);
	server("destroy", sdir);
	g_free(sdir);
	g_free(url);
}

/* The connection breaks after COMMIT was sent: the job is not
 * acknowledged; retried (a kept job) or sent again (an answer), it is
 * found committed (pg_xact_status) and not written twice. */
static void test_lost_commit(fixture *fx, gconstpointer data) {
	store *st = tdb_open_ok(fx->url);
	add_visit(st, "v1", "C-1", T0);
	add_pulse(st, "p1", "v1", T0 + 1);
	g_assert_cmpint(store_sync(st), ==, 0);
	/* a kept job: retried until it lands, once */
	outcome ev;
	outcome_init(&ev);
	g_atomic_int_set(&store_pg_test_cut_after_commit, 1);
	g_assert_cmpint(store_event(st, "v1", "once", NULL, T0 + 2, outcome_done, &ev), ==, 0);
	g_assert_true(outcome_wait(&ev, 20));
	g_assert_cmpint(ev.rc, ==, STORE_OK);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM events WHERE kind = 'once'"), ==, 1);
	/* a final answer: refused (never acknowledged), though it committed;
	 * sent again, it is acknowledged (not ALREADY_FINAL: it is the same
	 * answer) without a second write */
	outcome a1, a2;
	outcome_init(&a1);
	outcome_init(&a2);
	g_atomic_int_set(&store_pg_test_cut_after_commit, 1);
	g_assert_cmpint(answer(st, "p1", TRUE, 3.0, &a1), ==, 0);
	g_assert_true(outcome_wait(&a1, 10));
	g_test_message("lost commit: %s", a1.error);
	g_assert_cmpint(a1.rc, ==, STORE_UNAVAILABLE);
	g_assert_nonnull(strstr(a1.error, "during COMMIT"));
	/* the server runs the COMMIT it had received after the client went
	 * away: it becomes visible once that session's process has finished it
	 * (the store meanwhile refuses the answer as "still being committed") */
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while(sqlq_int(fx->url, "SELECT count(*) FROM answer_items WHERE pulse_id = 'p1'") == 0
			&& g_get_monotonic_time() < until)
		g_usleep(10000);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM answer_items WHERE pulse_id = 'p1'"), ==, 1);
	g_assert_cmpint(answer(st, "p1", TRUE, 3.0, &a2), ==, 0);
	g_assert_true(outcome_wait(&a2, 10));
	g_assert_cmpint(a2.rc, ==, STORE_OK);
	/* a different answer is what it is: the pulse is final */
	outcome a3;
	outcome_init(&a3);
	g_assert_cmpint(answer(st, "p1", TRUE, 4.0, &a3), ==, 0);
	g_assert_true(outcome_wait(&a3, 10));
	g_assert_cmpint(a3.rc, ==, STORE_ALREADY_FINAL);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM events WHERE kind = 'once'"), ==, 1);
}

/* --- two instances --------------------------------------------------------------------------- */

/* Partial answers to one pulse from two instances at once merge: the
 * second waits for the first's lock and then updates its answer. */
static void test_partials_race(fixture *fx, gconstpointer data) {
	store *a = tdb_open_ok(fx->url), *b = tdb_open_ok(fx->url);
	add_visit(a, "v1", "C-1", T0);
	for(int round = 0; round < 20; round++) {
		char id[16];
		g_snprintf(id, sizeof(id), "r%02d", round);
		add_pulse(a, id, "v1", T0 + round);
		g_assert_cmpint(store_sync(a), ==, 0);
		store_item_value ia[1] = { { "a", 1 } }, ib[1] = { { "b", 2 } };
		store_answer_rec ra = { id, FALSE, T0 + 100, 1, TRUE, 1, ia, 0, NULL };
		store_answer_rec rb = { id, FALSE, T0 + 100, 1, TRUE, 1, ib, 0, NULL };
		outcome oa, ob;
		outcome_init(&oa);
		outcome_init(&ob);
		g_assert_cmpint(store_answer(a, &ra, outcome_done, &oa), ==, 0);
		g_assert_cmpint(store_answer(b, &rb, outcome_done, &ob), ==, 0);
		g_assert_cmpint(store_sync(a), ==, 0);
		g_assert_cmpint(store_sync(b), ==, 0);
		if(oa.rc != STORE_OK || ob.rc != STORE_OK)
			g_error("round %d: %s / %s", round, oa.error, ob.error);
	}
	store_close(a);
	store_close(b);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM answer_items"), ==, 40);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pulses WHERE status = 'partial'"), ==, 20);
}

/* forget waits for a visit being created for the client on another
 * instance (the client's advisory lock), then sees it and refuses. */
static void test_forget_waits_for_visit(fixture *fx, gconstpointer data) {
	store *st = tdb_open_ok(fx->url);
	add_visit(st, "old", "C-X", T0);
	g_assert_cmpint(store_visit_state(st, "old", "closed", T0 + DAY, ok_cb, (void *)"closed"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	/* another instance, inside its visit_create */
	PGconn *other = PQconnectdb(fx->url);
	g_assert_cmpint(PQstatus(other), ==, CONNECTION_OK);
	PGresult *r = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock_shared(1095781459, hashtext('C-X'));"
		"INSERT INTO visits(visit_id, therapist_code, client_code, modality, created_at)"
		" VALUES ('new', 'T-01', 'C-X', 'video', 1)");
	g_assert_cmpint(PQresultStatus(r), ==, PGRES_COMMAND_OK);
	PQclear(r);
	outcome o;
	outcome_init(&o);
	g_assert_cmpint(store_forget_client(st, "C-X", T0 + 2 * DAY, outcome_count, &o), ==, 0);
	g_assert_false(outcome_wait(&o, 0.5));          /* waiting for the lock */
	r = PQexec(other, "COMMIT");
	PQclear(r);
	PQfinish(other);
	g_assert_true(outcome_wait(&o, 10));
	g_test_message("forget: %s", o.error);
	g_assert_cmpint(o.rc, ==, STORE_REFUSED);
	store_close(st);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM visits WHERE client_code = 'C-X'"), ==, 2);
}

/* --- sample partitions and retention ------------------------------------------------------ */

/* The monthly partitions before 2030, but for this month's and the next,
 * which every open makes ahead. */
static char *partitions(const char *url) {
	GDateTime *now = g_date_time_new_now_utc(), *next = g_date_time_add_months(now, 1);
	char *a = g_date_time_format(now, "quality_samples_%Ym%m"), *b = g_date_time_format(next, "quality_samples_%Ym%m");
	char *sql = g_strdup_printf("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
		" WHERE i.inhparent = 'quality_samples'::regclass AND c.relname <> 'quality_samples_default'"
		" AND c.relname < 'quality_samples_2030' AND c.relname NOT IN ('%s', '%s') ORDER BY 1", a, b);
	char *names = sqlq_rows(url, sql);
	g_free(sql); g_free(a); g_free(b);
	g_date_time_unref(now);
	g_date_time_unref(next);
	return names;
}

static void test_sample_partitions(fixture *fx, gconstpointer data) {
	store *st = tdb_open_ok(fx->url);
	add_visit(st, "v1", "C-1", T0);
	g_assert_cmpint(store_sync(st), ==, 0);
	/* a sample of a month no partition exists for yet waits in DEFAULT */
	gint64 t2031 = 1925000000000000LL;              /* 2031-01-01T... */
	char *sql = g_strdup_printf("INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		" VALUES ('v1', 'client_up', 'audio', %" G_GINT64_FORMAT ", '{\"early\":1}')", t2031);
	sqlq_exec_ok(fx->url, sql);
	g_free(sql);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM quality_samples_default"), ==, 1);
	/* November and December 2023, 2031: their partitions are made (and
	 * each next month's ahead); the waiting row moves into 2031's */
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", T0, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", T0 + 20 * DAY, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", t2031 + 1, "{}"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "nope", "client_up", "audio", T0, "{}"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpuint(store_dropped_samples(st), ==, 1);       /* the unknown visit's */
	store_close(st);
	char *names = partitions(fx->url);
	g_assert_cmpstr(names, ==, "quality_samples_2023m11\nquality_samples_2023m12\nquality_samples_2024m01\n");
	g_free(names);
	char *rows = sqlq_rows(fx->url, "SELECT tableoid::regclass, count(*) FROM quality_samples"
		" GROUP BY 1 ORDER BY tableoid::regclass::TEXT");
	g_assert_cmpstr(rows, ==, "quality_samples_2023m11|1\nquality_samples_2023m12|1\n"
		"quality_samples_2031m01|2\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_class WHERE relname = 'quality_samples_2031m02'"), ==, 1);
	/* an attached month has the foreign key to visits too */
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
		" AND conrelid = 'quality_samples_2031m01'::regclass AND confrelid = 'visits'::regclass"), ==, 1);
	/* the ids still give the order of writing */
	rows = sqlq_rows(fx->url, "SELECT metrics_json FROM quality_samples WHERE at >= 1925000000000000 ORDER BY id");
	g_assert_cmpstr(rows, ==, "{\"early\":1}\n{}\n");
	g_free(rows);
}

static void add_samples(store *st, const char *visit, gint64 from, int n) {
	for(int i = 0; i < n; i++)
		g_assert_cmpint(store_quality_sample(st, visit, "client_up", "audio", from + i * 1000000LL,
			"{\"seconds\":1}"), ==, 0);
}

/* Retention drops a whole month whose samples all belong to erased
 * visits; a month that also holds a kept visit's samples loses only the
 * erased visits' rows; the counts are exact either way. */
static void test_retention_drops_months(fixture *fx, gconstpointer data) {
	const gint64 OCT = 1697000000000000LL;          /* 2023-10-11 */
	const gint64 NOV = T0;                          /* 2023-11-14 */
	const gint64 NOV_END = 1701385200000000LL;      /* 2023-11-30T23:00Z */
	store *st = tdb_open_ok(fx->url);
	add_visit(st, "old1", "C-1", OCT);
	add_visit(st, "old2", "C-2", NOV);
	add_visit(st, "kept", "C-3", NOV_END);
	g_assert_cmpint(store_visit_state(st, "old1", "ended", OCT + 3600000000LL, ok_cb, (void *)"e"), ==, 0);
	g_assert_cmpint(store_visit_state(st, "old2", "ended", NOV + 3600000000LL, ok_cb, (void *)"e"), ==, 0);
	add_samples(st, "old1", OCT, 5);
	add_samples(st, "old2", NOV, 4);
	add_samples(st, "kept", NOV_END, 3);                    /* November ... */
	add_samples(st, "kept", NOV_END + 3 * 3600000000LL, 2);  /* ... and December */
	/* still in use long after (ended in January) */
	g_assert_cmpint(store_visit_state(st, "kept", "ended", NOV_END + 45 * DAY, ok_cb, (void *)"e"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	char *names = partitions(fx->url);
	g_assert_nonnull(strstr(names, "quality_samples_2023m10\nquality_samples_2023m11\nquality_samples_2023m12\n"));
	g_free(names);
	/* cutoff 2023-12-20: old1 and old2 go, kept stays */
	const gint64 cutoff = 1703030400000000LL;
	outcome o;
	outcome_init(&o);
	g_assert_cmpint(store_retention(st, 30, cutoff + 30 * DAY, outcome_count, &o), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(o.calls, ==, 1);
	if(o.rc != STORE_OK)
		g_error("retention: %s", o.error);
	/* 2 visits + 9 samples */
	g_assert_cmpint(o.rows, ==, 2 + 9);
	store_close(st);
	/* October is gone as a whole; November and December stay */
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM pg_class WHERE relname = 'quality_samples_2023m10'"), ==, 0);
	names = partitions(fx->url);
	g_assert_null(strstr(names, "2023m10"));
	g_assert_nonnull(strstr(names, "quality_samples_2023m11\nquality_samples_2023m12\n"));
	g_free(names);
	char *rows = sqlq_rows(fx->url, "SELECT tableoid::regclass, visit_id, count(*) FROM quality_samples"
		" GROUP BY 1, 2 ORDER BY tableoid::regclass::TEXT, 2");
	g_assert_cmpstr(rows, ==, "quality_samples_2023m11|kept|3\nquality_samples_2023m12|kept|2\n");
	g_free(rows);
	rows = sqlq_rows(fx->url, "SELECT detail_json::jsonb->'tables'->>'quality_samples', detail_json::jsonb->>'visits'"
		" FROM events WHERE kind = 'retention'");
	g_assert_cmpstr(rows, ==, "9|2\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->url, "SELECT count(*) FROM visits"), ==, 1);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	if(!tdb_pg()) {
		g_test_message("no PostgreSQL test server (ALLIANCE_TEST_PG_DIR): nothing to run");
		return 77;
	}
#define ADD(name, fn) g_test_add("/store-pg/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("migrate/fresh-schema", test_fresh_schema);
	ADD("migrate/missing-run-in-one-transaction", test_missing_migrations);
	ADD("migrate/concurrent-from-processes", test_concurrent_migrate);
	ADD("open/url-without-password", test_url_without_password);
	ADD("open/for-reading", test_for_reading);
	ADD("open/analytics-session-yields", test_analytics_session_yields);
	ADD("faults/server-restart-mid-queue", test_server_restart);
	ADD("faults/server-killed-while-answering", test_server_killed);
	ADD("faults/close-gives-up", test_close_gives_up);
	ADD("faults/commit-lost", test_lost_commit);
	ADD("instances/partial-answers-race", test_partials_race);
	ADD("instances/forget-waits-for-visit-create", test_forget_waits_for_visit);
	ADD("samples/partitions", test_sample_partitions);
	ADD("retention/drops-months", test_retention_drops_months);
#undef ADD
	return g_test_run();
}
