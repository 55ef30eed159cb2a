/* Unit tests for the store's fault handling (store.c): a database held
 * locked by another connection (as another process would), then released.
 * What records a visit's history is retried in order until it lands;
 * answers and reads are refused at once while the store is degraded (and
 * never acknowledged); samples are dropped and counted; everything queued
 * after the fault clears is stored; the visit start-up repair and the
 * end-reason write do what store.h says. Checked through a second,
 * independent connection (sqlq). The lock tests are SQLite's; the repair
 * runs on both backends (tdb.h), and tests/unit/test_store_pg.c has the
 * PostgreSQL faults (the server stopped, killed, restarted). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sqlite3.h>
#include "store.h"
#include "sqlq.h"
#include "tdb.h"
#include "outcome.h"

static char *tmp_db(char **dir) {
	*dir = g_dir_make_tmp("ap-faults-XXXXXX", NULL);
	g_assert_nonnull(*dir);
	return tdb_create(*dir, "alliance.sqlite", TRUE);
}

static void rm_db(char *dir, char *path) {
	tdb_drop(path);
	const char *sfx[] = { "", "-wal", "-shm" };
	for(int i = 0; i < 3; i++) {
		char *p = g_strconcat(path, sfx[i], NULL);
		g_unlink(p);
		g_free(p);
	}
	g_rmdir(dir);
	g_free(dir);
	g_free(path);
}

static store *open_ok(const char *path) {
	return tdb_open_ok(path);
}

static void ok_cb(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("%s: %s", (const char *)user, error ? error : "?");
}

static void seed(store *st) {
	store_visit_rec v = { .visit_id = "v1", .therapist_code = "T-01", .client_code = "C-1",
		.modality = "video", .created_at_us = 1000 };
	g_assert_cmpint(store_visit_create(st, &v, ok_cb, (void *)"visit"), ==, 0);
	store_pulse_rec p = { .pulse_id = "p1", .visit_id = "v1", .role = "client", .kind = "in_session",
		.instrument_id = "ap-pulse", .instrument_version = "1", .language = "en", .trigger = "therapist",
		.created_at_us = 2000, .expires_at_us = 0 };
	g_assert_cmpint(store_pulse_create(st, &p, ok_cb, (void *)"pulse"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
}

static int answer(store *st, const char *pulse_id, double value, outcome *o) {
	store_item_value items[1] = { { "understood", value } };
	store_answer_rec a = { .pulse_id = pulse_id, .final = FALSE, .answered_at_us = 3000,
		.time_to_answer_ms = 10, .research_consent = TRUE, .n_items = 1, .items = items };
	return store_answer(st, &a, outcome_done, o);
}

static void test_locked_database(void) {
	char *dir, *path = tmp_db(&dir);
	store *st = open_ok(path);
	seed(st);
	/* another process takes the write lock and keeps it */
	sqlite3 *other = sqlq_open(path);
	g_assert_cmpint(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	/* a pulse row (must be kept): it waits; then an answer and a sample */
	outcome pulse2, ans, late;
	outcome_init(&pulse2);
	outcome_init(&ans);
	outcome_init(&late);
	store_pulse_rec p = { .pulse_id = "p2", .visit_id = "v1", .role = "client", .kind = "in_session",
		.instrument_id = "ap-pulse", .instrument_version = "1", .language = "en", .trigger = "therapist",
		.created_at_us = 4000 };
	g_assert_cmpint(store_pulse_create(st, &p, outcome_done, &pulse2), ==, 0);
	g_assert_cmpint(answer(st, "p1", 4.0, &ans), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", 5000, "{\"packets\":1}"), ==, 0);
	/* the answer is refused once the pulse write has met the lock (busy
	 * timeout 5 s), without waiting for the lock to go */
	g_assert_true(outcome_wait(&ans, 12));
	g_assert_cmpint(ans.rc, ==, STORE_UNAVAILABLE);
	g_assert_nonnull(strstr(ans.error, "locked"));
	g_assert_cmpint(pulse2.calls, ==, 0);          /* still waiting: never given up */
	store_health h;
	store_health_get(st, &h);
	g_assert_true(h.degraded);
	g_assert_nonnull(strstr(h.why, "locked"));
	g_assert_cmpuint(h.failed, >=, 1);
	/* while degraded, a new answer is refused too, while the lock is still
	 * held: it does not wait for the fault to clear */
	g_assert_cmpint(answer(st, "p1", 5.0, &late), ==, 0);
	g_assert_true(outcome_wait(&late, 12));
	g_assert_cmpint(late.rc, ==, STORE_UNAVAILABLE);
	/* the lock goes: the pulse lands by itself, in order */
	g_assert_cmpint(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(other);
	g_assert_true(outcome_wait(&pulse2, 15));
	g_assert_cmpint(pulse2.rc, ==, STORE_OK);
	store_health_get(st, &h);
	g_assert_false(h.degraded);
	g_assert_cmpuint(h.samples_dropped, ==, 1);
	/* and answers are taken again */
	outcome again;
	outcome_init(&again);
	g_assert_cmpint(answer(st, "p2", 6.0, &again), ==, 0);
	g_assert_true(outcome_wait(&again, 10));
	g_assert_cmpint(again.rc, ==, STORE_OK);
	store_close(st);
	/* nothing refused was stored; what was acknowledged is there */
	char *rows = sqlq_rows(path, "SELECT pulse_id, value FROM answer_items ORDER BY pulse_id");
	g_assert_cmpstr(rows, ==, "p2|6.0\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(path, "SELECT count(*) FROM pulses"), ==, 2);
	rm_db(dir, path);
}

/* store_close() while a write is stuck behind a lock gives up after its
 * bound and says so in the callback, instead of hanging the shutdown. */
static void test_close_gives_up(void) {
	char *dir, *path = tmp_db(&dir);
	store *st = open_ok(path);
	seed(st);
	sqlite3 *other = sqlq_open(path);
	g_assert_cmpint(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	outcome o;
	outcome_init(&o);
	g_assert_cmpint(store_visit_state(st, "v1", "live", 7000, outcome_done, &o), ==, 0);
	store_close(st);                   /* returns (a hang would stop the suite) */
	g_assert_cmpint(o.calls, ==, 1);
	g_assert_cmpint(o.rc, ==, STORE_BUSY);
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
	rm_db(dir, path);
}

/* The end reason is written once; the repair closes what was left open as
 * interrupted (keeping an end reason it had), expires its open pulses,
 * ends its open incidents at its last activity, and leaves closed visits
 * alone. */
static void test_ended_and_repair(void) {
	char *dir, *path = tmp_db(&dir);
	store *st = open_ok(path);
	seed(st);                                          /* v1 live-ish, p1 pending */
	store_visit_rec v2 = { .visit_id = "v2", .therapist_code = "T-01", .client_code = "C-2",
		.modality = "video", .created_at_us = 1000 };
	store_visit_rec v3 = { .visit_id = "v3", .therapist_code = "T-01", .client_code = "C-3",
		.modality = "video", .created_at_us = 1000 };
	g_assert_cmpint(store_visit_create(st, &v2, ok_cb, (void *)"v2"), ==, 0);
	g_assert_cmpint(store_visit_create(st, &v3, ok_cb, (void *)"v3"), ==, 0);
	g_assert_cmpint(store_visit_ended(st, "v2", "therapist", 8000, ok_cb, (void *)"ended"), ==, 0);
	g_assert_cmpint(store_visit_ended(st, "v2", "idle", 9000, ok_cb, (void *)"ended again"), ==, 0);
	g_assert_cmpint(store_visit_ended(st, "v2", "bogus", 9000, ok_cb, NULL), ==, -1);
	g_assert_cmpint(store_visit_ended(st, "v3", "shutdown", 8500, ok_cb, (void *)"v3 ended"), ==, 0);
	g_assert_cmpint(store_visit_state(st, "v3", "closed", 8600, ok_cb, (void *)"v3 closed"), ==, 0);
	g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", 12000, "{\"packets\":1}"), ==, 0);
	store_incident_rec inc = { .visit_id = "v1", .leg = "client_up", .medium = "audio", .kind = "stall",
		.started_at_us = 11000, .ended_at_us = 0 };
	g_assert_cmpint(store_incident(st, &inc, ok_cb, (void *)"incident"), ==, 0);
	outcome o;
	outcome_init(&o);
	g_assert_cmpint(store_repair_interrupted(st, "here", 50000, outcome_count, &o), ==, 0);
	g_assert_true(outcome_wait(&o, 10));
	g_assert_cmpint(o.rc, ==, STORE_OK);
	g_assert_cmpint(o.rows, ==, 2);                  /* v1 and v2; v3 was closed */
	store_close(st);
	char *rows = sqlq_rows(path, "SELECT visit_id, state, end_reason, ended_at, closed_at FROM visits ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "v1|closed|interrupted|12000|50000\nv2|closed|therapist|8000|50000\n"
		"v3|closed|shutdown|8500|8600\n");
	g_free(rows);
	rows = sqlq_rows(path, "SELECT pulse_id, status, status_at FROM pulses");
	g_assert_cmpstr(rows, ==, "p1|expired|12000\n");
	g_free(rows);
	rows = sqlq_rows(path, "SELECT kind, started_at, ended_at FROM incidents");
	g_assert_cmpstr(rows, ==, "stall|11000|12000\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(path, "SELECT count(*) FROM visit_summaries WHERE visit_id IN ('v1','v2')"), ==, 2);
	/* a second repair finds nothing */
	st = open_ok(path);
	outcome_init(&o);
	g_assert_cmpint(store_repair_interrupted(st, "here", 60000, outcome_count, &o), ==, 0);
	g_assert_true(outcome_wait(&o, 10));
	g_assert_cmpint(o.rows, ==, 0);
	store_close(st);
	rm_db(dir, path);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	if(!tdb_pg()) {                    /* SQLite's locks */
		g_test_add_func("/store-faults/locked-database", test_locked_database);
		g_test_add_func("/store-faults/close-gives-up", test_close_gives_up);
	}
	g_test_add_func("/store-faults/ended-and-repair", test_ended_and_repair);
	return g_test_run();
}
