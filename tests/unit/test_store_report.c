/* Unit tests for the report side of the store (store.h "reports, erasure
 * and retention"; store_sqlite_report.c): visit summaries, the upgrade
 * from version 2 (summaries backfilled), erasure of a client table by
 * table, retention, and the report reads with their filters.
 *
 * As in test_store.c, the tests run on SQLite and, under run-pg.sh, on
 * PostgreSQL (tdb.h), and results are read through a second, independent
 * connection, never through the store itself. */
#define _GNU_SOURCE                    /* memmem */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
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

static void fx_setup(fixture *fx, gconstpointer data) {
	GError *e = NULL;
	fx->dir = g_dir_make_tmp("store-report-XXXXXX", &e);
	g_assert_no_error(e);
	fx->path = tdb_create(fx->dir, "alliance.sqlite", TRUE);
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
		g_rmdir(p);
	} else {
		g_unlink(p);
	}
}

static void fx_teardown(fixture *fx, gconstpointer data) {
	rm_rf(fx->dir);
	tdb_drop(fx->path);
	g_free(fx->dir);
	g_free(fx->path);
}

static store *open_ok(const char *path) {
	return tdb_open_ok(path);
}

typedef struct done_rec {
	int calls;
	store_rc rc;
	gint64 rows;
	char error[256];
} done_rec;

static void on_done(store_rc rc, const char *error, void *user) {
	done_rec *d = user;
	d->calls++;
	d->rc = rc;
	g_strlcpy(d->error, error ? error : "", sizeof(d->error));
}

static void on_count(store_rc rc, gint64 rows, const char *error, void *user) {
	done_rec *d = user;
	d->calls++;
	d->rc = rc;
	d->rows = rows;
	g_strlcpy(d->error, error ? error : "", sizeof(d->error));
}

/* Callback expecting success (failures abort the test on the writer thread). */
static void ok_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("store job failed (%s): %s", (const char *)user, error ? error : "?");
}

#define T0 1700000000000000LL           /* 2023-11-14T22:13:20Z */
#define DAY (86400LL * 1000000LL)

static const char *const END_ITEMS[4] = { "goals", "tasks", "bond", "overall" };

/* One answered end pulse: items 4 values summing to total (subscales =
 * items), scores total + subscales. */
static void add_end_answer(store *st, const char *pulse_id, const char *visit_id,
		const char *role, const char *instrument, gint64 t, double total, gboolean consent,
		const char *quality_json) {
	store_pulse_rec p = { pulse_id, visit_id, role, "end", instrument, "1.0", "en", "end",
		"event", t, t + 180000000 };
	g_assert_cmpint(store_pulse_create(st, &p, ok_done, (void *)"end pulse"), ==, 0);
	if(quality_json)
		g_assert_cmpint(store_pulse_quality(st, pulse_id, quality_json, ok_done, (void *)"quality"), ==, 0);
	if(isnan(total))
		return;
	store_item_value items[4];
	store_score scores[5];
	for(int i = 0; i < 4; i++) {
		items[i].item_id = END_ITEMS[i];
		items[i].value = total / 4;
		scores[i + 1].name = END_ITEMS[i];
		scores[i + 1].value = total / 4;
	}
	scores[0].name = "total";
	scores[0].value = total;
	store_answer_rec a = { pulse_id, TRUE, t + 60000000, 60000, consent, 4, items, 5, scores };
	g_assert_cmpint(store_answer(st, &a, ok_done, (void *)"end answer"), ==, 0);
}

typedef struct vspec {
	const char *id, *therapist, *client, *modality;
	gint64 t;
	gboolean consent;
	double client_total, therapist_total;   /* NAN: no answer */
	const char *quality;                    /* the client end pulse's context */
	int incidents, alerts, samples;
} vspec;

/* A visit with every kind of row a real one has. */
static void add_visit_full(store *st, const vspec *v) {
	store_visit_rec r = { v->id, v->therapist, v->client, v->modality, v->t };
	g_assert_cmpint(store_visit_create(st, &r, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_participant_join(st, v->id, "therapist", v->therapist, FALSE, "en",
		v->t + 1, ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_participant_join(st, v->id, "client", v->client, v->consent, "de",
		v->t + 2, ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_visit_state(st, v->id, "live", v->t + 3, ok_done, (void *)"live"), ==, 0);
	/* an in-session pulse, answered */
	char pid[64];
	g_snprintf(pid, sizeof(pid), "%s-p1", v->id);
	store_pulse_rec p = { pid, v->id, "client", "in_session", "ap-pulse", "1.0", "de",
		"schedule", "datachannel", v->t + 10, v->t + 120000000 };
	g_assert_cmpint(store_pulse_create(st, &p, ok_done, (void *)"pulse"), ==, 0);
	store_item_value iv[2] = { { "understood", 7.5 }, { "focus", 6.0 } };
	store_score sv[1] = { { "total", 13.5 } };
	store_answer_rec a = { pid, TRUE, v->t + 20, 10, v->consent, 2, iv, 1, sv };
	g_assert_cmpint(store_answer(st, &a, ok_done, (void *)"answer"), ==, 0);
	for(int i = 0; i < v->alerts; i++) {
		store_alert_rec al = { v->id, pid, "below_cutoff", "total", 13.5, 15, NULL, v->t + 30 };
		g_assert_cmpint(store_alert(st, &al, ok_done, (void *)"alert"), ==, 0);
	}
	for(int i = 0; i < v->incidents; i++) {
		store_incident_rec in = { v->id, "client_up", "video", "freeze", v->t + 40 + i, v->t + 50 + i,
			"{\"freeze_ms\":900}" };
		g_assert_cmpint(store_incident(st, &in, ok_done, (void *)"incident"), ==, 0);
	}
	for(int i = 0; i < v->samples; i++) {
		char m[160];
		g_snprintf(m, sizeof(m), "{\"seconds\":5,\"packets\":%d,\"expected\":250,\"lost\":%d,"
			"\"loss_pct\":%g,\"jitter_ms\":%d,\"bitrate_kbps\":40,\"stalls\":0,\"stall_s\":0}",
			250 - i, i, i / 2.5, 10 + i);
		g_assert_cmpint(store_quality_sample(st, v->id, "client_up", "audio",
			v->t + 5000000LL * (i + 1), m), ==, 0);
		g_assert_cmpint(store_quality_sample(st, v->id, "client_down", "audio",
			v->t + 5000000LL * (i + 1), "{\"seconds\":5,\"loss_pct\":1,\"jitter_ms\":20,\"rtt_ms\":80,"
			"\"rtt_max_ms\":90,\"nack\":0}"), ==, 0);
	}
	g_assert_cmpint(store_event(st, v->id, "admitted", "{\"after_ms\":1200}", v->t + 3,
		ok_done, (void *)"event"), ==, 0);
	g_assert_cmpint(store_visit_state(st, v->id, "ended", v->t + 3600000000LL, ok_done,
		(void *)"ended"), ==, 0);
	char ce[64], te[64];
	g_snprintf(ce, sizeof(ce), "%s-ce", v->id);
	g_snprintf(te, sizeof(te), "%s-te", v->id);
	add_end_answer(st, ce, v->id, "client", "ap-end", v->t + 3600000001LL, v->client_total,
		v->consent, v->quality);
	add_end_answer(st, te, v->id, "therapist", "ap-therapist-end", v->t + 3600000002LL,
		v->therapist_total, v->consent, NULL);
	g_assert_cmpint(store_visit_summarize(st, v->id, ok_done, (void *)"summarize"), ==, 0);
}

#define QUALITY(mos1, mos2, loss1, loss2, freeze) \
	"{\"window_s\":0,\"measured_s\":3600,\"legs\":{},\"paths\":{" \
	"\"client_to_therapist\":{\"mos\":" #mos1 ",\"loss_pct\":" #loss1 "}," \
	"\"therapist_to_client\":{\"mos\":" #mos2 ",\"loss_pct\":" #loss2 "}}," \
	"\"freezes\":3,\"freeze_s\":" #freeze ",\"incidents\":2}"

/* --- summaries ------------------------------------------------------------------------ */

static void test_summarize(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	vspec a = { "va", "T-01", "C-1", "video", T0, TRUE, 31.2, 28.0,
		QUALITY(4.2, 3.8, 1.5, 2.5, 12.5), 2, 1, 3 };
	add_visit_full(st, &a);
	store_close(st);
	/* round(x, 6): PostgreSQL rounds NUMERIC only */
	const char *num = tdb_pg() ? "::NUMERIC" : "";
	char *sql = g_strdup_printf("SELECT visit_id, therapist_code, client_code, modality, visit_number,"
		" created_at = 1700000000000000, ended_at, research_consent, client_instrument, client_total,"
		" therapist_instrument, therapist_total, round(mean_mos%s, 6), round(loss_pct%s, 6), freeze_s,"
		" incidents, alerts FROM visit_summaries", num, num);
	char *rows = sqlq_rows(fx->path, sql);
	g_free(sql);
	g_assert_cmpstr(rows, ==, "va|T-01|C-1|video|1|1|1700003600000000|1|ap-end|31.2|"
		"ap-therapist-end|28.0|4.0|2.0|12.5|2|1\n");
	g_free(rows);
}

static void test_summarize_cases(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	/* in person: no connection quality even with a context stored */
	vspec ip = { "ip", "T-01", "C-1", "in_person", T0, TRUE, 30, 29,
		QUALITY(4.2, 3.8, 1.5, 2.5, 12.5), 0, 0, 0 };
	add_visit_full(st, &ip);
	/* video, nothing measured: no quality; one path missing: the other's */
	vspec nm = { "nm", "T-01", "C-1", "video", T0 + DAY, TRUE, 30, NAN,
		"{\"measured_s\":0,\"paths\":{},\"freeze_s\":0}", 0, 0, 0 };
	add_visit_full(st, &nm);
	vspec one = { "one", "T-01", "C-1", "video", T0 + 2 * DAY, TRUE, NAN, NAN,
		"{\"measured_s\":10,\"paths\":{\"client_to_therapist\":null,\"therapist_to_client\":"
		"{\"mos\":3.5,\"loss_pct\":4}},\"freeze_s\":0}", 0, 0, 0 };
	add_visit_full(st, &one);
	/* consent: one refusing join among the client's joins makes it 0 */
	vspec mixed = { "mx", "T-02", "C-2", "video", T0, TRUE, 20, 22, NULL, 0, 0, 0 };
	add_visit_full(st, &mixed);
	g_assert_cmpint(store_participant_join(st, "mx", "client", "C-2", FALSE, NULL, T0 + 99,
		ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, "mx", ok_done, (void *)"summarize"), ==, 0);
	/* a visit of C-1 that never ended: not counted in later visit numbers,
	 * numbered after the ones before it when summarised */
	store_visit_rec never = { "never", "T-01", "C-1", "video", T0 + DAY / 2 };
	g_assert_cmpint(store_visit_create(st, &never, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, "never", ok_done, (void *)"summarize"), ==, 0);
	done_rec nf = { 0 };
	g_assert_cmpint(store_visit_summarize(st, "nope", on_done, &nf), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, NULL, on_done, &nf), ==, -1);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(nf.calls, ==, 1);
	g_assert_cmpint(nf.rc, ==, STORE_NOT_FOUND);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT visit_id, visit_number, research_consent, client_total,"
		" therapist_total, mean_mos, loss_pct, freeze_s FROM visit_summaries ORDER BY created_at, visit_id");
	g_assert_cmpstr(rows, ==,
		"ip|1|1|30.0|29.0|~|~|~\n"
		"mx|1|0|20.0|22.0|~|~|~\n"
		"never|2|0|~|~|~|~|~\n"
		"nm|2|1|30.0|~|~|~|~\n"
		"one|3|1|~|~|3.5|4.0|0.0\n");
	g_free(rows);
}

/* video_class (version 6) comes from the end pulse's context: good or
 * poor, NULL for anything else, for in-person visits and without one. */
static void test_summarize_video_class(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	static const char *const ctx[] = {
		"{\"measured_s\":60,\"paths\":{},\"freeze_s\":0,\"video_class\":\"poor\"}",
		"{\"measured_s\":60,\"paths\":{},\"freeze_s\":0,\"video_class\":\"good\"}",
		"{\"measured_s\":60,\"paths\":{},\"freeze_s\":0,\"video_class\":\"awful\"}",
		"{\"measured_s\":60,\"paths\":{},\"freeze_s\":0,\"video_class\":null}",
		"{\"measured_s\":60,\"paths\":{},\"freeze_s\":0,\"video_class\":\"poor\"}",
	};
	static const char *const ids[] = { "c1", "c2", "c3", "c4", "c5" };
	for(int i = 0; i < 5; i++) {
		vspec v = { ids[i], "T-01", "C-1", i == 4 ? "in_person" : "video", T0 + i * DAY, TRUE, 30, 30,
			ctx[i], 0, 0, 0 };
		add_visit_full(st, &v);
	}
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT visit_id, video_class FROM visit_summaries ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "c1|poor\nc2|good\nc3|~\nc4|~\nc5|~\n");
	g_free(rows);
}

/* The visit number is fixed by the first summary: erasing an older visit
 * does not renumber the later ones when they are summarised again. */
static void test_visit_number_stable(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	for(int i = 0; i < 3; i++) {
		char id[8];
		g_snprintf(id, sizeof(id), "v%d", i + 1);
		vspec v = { id, "T-01", "C-1", "video", T0 + i * DAY, TRUE, 30 + i, 30, NULL, 0, 0, 0 };
		add_visit_full(st, &v);
	}
	done_rec d = { 0 };
	/* cutoff T0 + 1 day: v1 (created T0, ended T0 + 1 h) goes, v2 and v3 stay */
	g_assert_cmpint(store_retention(st, 10, T0 + 11 * DAY, on_count, &d), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, "v3", ok_done, (void *)"summarize"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.rc, ==, STORE_OK);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT visit_id, visit_number FROM visit_summaries ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "v2|2\nv3|3\n");
	g_free(rows);
}

/* A version-2 database (written by the previous build) is upgraded at
 * open, and its ended visits get their summaries. */
static void test_upgrade_from_v2(fixture *fx, gconstpointer data) {
	tdb_migrate(fx->path, 2);
	sqlq_exec_ok(fx->path,
		"INSERT INTO visits(visit_id, therapist_code, client_code, modality, state, created_at, ended_at)"
		"  VALUES ('old1', 'T-01', 'C-9', 'video', 'closed', 1000, 5000),"
		"         ('old2', 'T-01', 'C-9', 'in_person', 'closed', 2000, 6000),"
		"         ('open', 'T-01', 'C-9', 'video', 'live', 3000, NULL);"
		"INSERT INTO participants(visit_id, role, code, research_consent, language, joined_at)"
		"  VALUES ('old1', 'client', 'C-9', 1, 'en', 1100), ('old2', 'client', 'C-9', 1, 'en', 2100);"
		"INSERT INTO pulses(pulse_id, visit_id, role, kind, instrument_id, instrument_version,"
		"  language, \"trigger\", delivered_via, created_at, expires_at, status, status_at, quality_json)"
		"  VALUES ('e1', 'old1', 'client', 'end', 'ap-end', '1.0', 'en', 'end', 'event', 5000, NULL,"
		"  'answered', 5100, '{\"measured_s\":60,\"paths\":{\"client_to_therapist\":{\"mos\":4.0,"
		"\"loss_pct\":1},\"therapist_to_client\":{\"mos\":3.0,\"loss_pct\":3}},\"freeze_s\":2.5}');"
		"INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms, research_consent,"
		"  dismissed) VALUES ('e1', 1, 5100, 5100, 100, 1, 0);"
		"INSERT INTO scores(pulse_id, name, value) VALUES ('e1', 'total', 33.3);");
	g_assert_cmpint(sqlq_int(fx->path, tdb_q("SELECT count(*) FROM sqlite_master WHERE name = 'visit_summaries'",
		"SELECT count(*) FROM pg_tables WHERE tablename = 'visit_summaries'")), ==, 0);
	store *st = open_ok(fx->path);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT version FROM schema_version ORDER BY version");
	g_assert_cmpstr(rows, ==, "1\n2\n3\n4\n5\n6\n");
	g_free(rows);
	rows = sqlq_rows(fx->path, "SELECT visit_id, visit_number, research_consent, client_instrument,"
		" client_total, mean_mos, loss_pct, freeze_s FROM visit_summaries ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "old1|1|1|ap-end|33.3|3.5|2.0|2.5\nold2|2|1|~|~|~|~|~\n");
	g_free(rows);
	/* version 6: contexts stored before it have no video_class */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visit_summaries WHERE video_class IS NULL"), ==, 2);
	/* version 4: visits that ended before end_reason existed were ended by
	 * their therapist (the only way then); the open one has none yet */
	rows = sqlq_rows(fx->path, "SELECT visit_id, coalesce(end_reason, '-') FROM visits ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "old1|therapist\nold2|therapist\nopen|-\n");
	g_free(rows);
	char *ix = g_strconcat(tdb_q("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN",
		"SELECT count(*) FROM pg_indexes WHERE indexname IN"),
		" ('visit_summaries_by_created','visit_summaries_by_therapist','visit_summaries_by_client',"
		"'visit_summaries_by_modality','visits_by_created','visits_by_modality')", NULL);
	g_assert_cmpint(sqlq_int(fx->path, ix), ==, 6);
	g_free(ix);
	/* old rows untouched */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM visits"), ==, 3);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM scores"), ==, 1);
}

/* --- erasure ----------------------------------------------------------------------------- */

static const char *const TABLES[] = { "visits", "participants", "pulses", "answers",
	"answer_items", "scores", "alerts", "events", "quality_samples", "incidents",
	"visit_summaries" };

/* Rows about client (through its visits, or carrying its code) per table. */
static gint64 rows_about(const char *path, const char *table, const char *client) {
	char *sql;
	if(!strcmp(table, "visits") || !strcmp(table, "visit_summaries"))
		sql = g_strdup_printf("SELECT count(*) FROM %s WHERE client_code = '%s'", table, client);
	else if(!strcmp(table, "answers") || !strcmp(table, "answer_items") || !strcmp(table, "scores"))
		sql = g_strdup_printf("SELECT count(*) FROM %s WHERE pulse_id IN (SELECT pulse_id FROM pulses"
			" WHERE visit_id IN (SELECT visit_id FROM visits WHERE client_code = '%s'))", table, client);
	else if(!strcmp(table, "participants"))
		sql = g_strdup_printf("SELECT count(*) FROM participants WHERE code = '%s' OR visit_id IN"
			" (SELECT visit_id FROM visits WHERE client_code = '%s')", client, client);
	else if(!strcmp(table, "events"))
		sql = g_strdup_printf("SELECT count(*) FROM events WHERE visit_id IN (SELECT visit_id FROM visits"
			" WHERE client_code = '%s') OR coalesce(detail_json, '') LIKE '%%%s%%'", client, client);
	else
		sql = g_strdup_printf("SELECT count(*) FROM %s WHERE visit_id IN (SELECT visit_id FROM visits"
			" WHERE client_code = '%s')", table, client);
	gint64 n = sqlq_int(path, sql);
	g_free(sql);
	return n;
}

static gboolean file_contains(const char *path, const char *needle) {
	gchar *buf = NULL;
	gsize len = 0;
	if(!g_file_get_contents(path, &buf, &len, NULL))
		return FALSE;
	gboolean found = memmem(buf, len, needle, strlen(needle)) != NULL;
	g_free(buf);
	return found;
}

static void test_forget(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	/* two clients of the same therapist, interleaved */
	for(int i = 0; i < 3; i++) {
		char a[16], b[16];
		g_snprintf(a, sizeof(a), "zq%dXY", i);
		g_snprintf(b, sizeof(b), "keep%d", i);
		vspec va = { a, "T-01", "C-ERASEME", i == 1 ? "in_person" : "video", T0 + i * DAY, TRUE,
			30 + i, 29, QUALITY(4.1, 4.0, 0.5, 0.7, 3), 2, 1, 4 };
		vspec vb = { b, "T-01", "C-KEEP", "video", T0 + i * DAY + 1, i != 2, 25 + i, 27,
			QUALITY(3.9, 3.7, 1, 2, 8), 1, 1, 3 };
		add_visit_full(st, &va);
		add_visit_full(st, &vb);
	}
	/* server-level events: one naming the client, one naming a visit, one neither */
	g_assert_cmpint(store_event(st, NULL, "note", "{\"client\":\"C-ERASEME\"}", T0, ok_done, (void *)"e"), ==, 0);
	g_assert_cmpint(store_event(st, NULL, "note", "{\"visit\":\"zq0XY\"}", T0, ok_done, (void *)"e"), ==, 0);
	g_assert_cmpint(store_event(st, NULL, "started", "{\"version\":\"0.1.0\"}", T0, ok_done, (void *)"e"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);

	gint64 before_other[G_N_ELEMENTS(TABLES)], expected = 0;
	for(size_t i = 0; i < G_N_ELEMENTS(TABLES); i++) {
		gint64 mine = rows_about(fx->path, TABLES[i], "C-ERASEME");
		g_test_message("%s: %" G_GINT64_FORMAT " rows about the client", TABLES[i], mine);
		g_assert_cmpint(mine, >, 0);          /* every table has some */
		expected += mine;
		before_other[i] = rows_about(fx->path, TABLES[i], "C-KEEP");
		g_assert_cmpint(before_other[i], >, 0);
	}
	gint64 server_events = sqlq_int(fx->path, "SELECT count(*) FROM events WHERE visit_id IS NULL");
	/* the event naming visit zq0XY has no client code in it */
	expected += 1;

	/* refused while one of the client's visits is not closed: nothing erased */
	done_rec dr = { 0 };
	g_assert_cmpint(store_visit_state(st, "zq0XY", "closed", T0 + 9 * DAY, ok_done, (void *)"c"), ==, 0);
	g_assert_cmpint(store_visit_state(st, "zq1XY", "closed", T0 + 9 * DAY, ok_done, (void *)"c"), ==, 0);
	g_assert_cmpint(store_forget_client(st, "C-ERASEME", T0 + 10 * DAY, on_count, &dr), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(dr.calls, ==, 1);
	g_assert_cmpint(dr.rc, ==, STORE_REFUSED);
	g_assert_cmpint(dr.rows, ==, 0);
	for(size_t i = 0; i < G_N_ELEMENTS(TABLES); i++)
		g_assert_cmpint(rows_about(fx->path, TABLES[i], "C-ERASEME"), >, 0);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM events WHERE kind = 'forget'"), ==, 0);
	g_assert_cmpint(store_visit_state(st, "zq2XY", "closed", T0 + 9 * DAY, ok_done, (void *)"c"), ==, 0);

	done_rec d = { 0 };
	g_assert_cmpint(store_forget_client(st, "C-ERASEME", T0 + 10 * DAY, on_count, &d), ==, 0);
	g_assert_cmpint(store_forget_client(st, NULL, 0, on_count, &d), ==, -1);
	g_assert_cmpint(store_forget_client(st, "", 0, on_count, &d), ==, -1);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	g_assert_cmpint(d.rc, ==, STORE_OK);
	g_assert_cmpint(d.rows, ==, expected);
	/* forgetting again: nothing left, 0 rows, still logged */
	done_rec d2 = { 0 };
	g_assert_cmpint(store_forget_client(st, "C-ERASEME", T0 + 11 * DAY, on_count, &d2), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d2.rc, ==, STORE_OK);
	g_assert_cmpint(d2.rows, ==, 0);
	store_close(st);

	for(size_t i = 0; i < G_N_ELEMENTS(TABLES); i++) {
		g_assert_cmpint(rows_about(fx->path, TABLES[i], "C-ERASEME"), ==, 0);
		g_assert_cmpint(rows_about(fx->path, TABLES[i], "C-KEEP"), ==, before_other[i]);
	}
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM events WHERE detail_json LIKE '%zq%'"), ==, 0);
	/* of the three server events, the two naming the client or a visit
	 * went, the unrelated one stays; two forget events were added */
	g_assert_cmpint(server_events, ==, 3);
	char *kinds = sqlq_rows(fx->path, "SELECT kind FROM events WHERE visit_id IS NULL ORDER BY id");
	g_assert_cmpstr(kinds, ==, "started\nforget\nforget\n");
	g_free(kinds);
	char *log = sqlq_rows(fx->path, "SELECT kind, detail_json FROM events WHERE kind = 'forget' ORDER BY id");
	g_test_message("forget events:\n%s", log);
	char *want = g_strdup_printf("forget|{\"rows\":%" G_GINT64_FORMAT ",\"tables\":{"
		"\"alerts\":3,\"answer_items\":30,\"answers\":9,\"events\":5,\"incidents\":6,"
		"\"participants\":6,\"pulses\":9,\"quality_samples\":24,\"scores\":33,"
		"\"visit_summaries\":3,\"visits\":3},\"visits\":3}\n"
		"forget|{\"rows\":0,\"tables\":{\"alerts\":0,\"answer_items\":0,\"answers\":0,\"events\":0,"
		"\"incidents\":0,\"participants\":0,\"pulses\":0,\"quality_samples\":0,\"scores\":0,"
		"\"visit_summaries\":0,\"visits\":0},\"visits\":0}\n", expected);
	g_assert_cmpstr(log, ==, want);
	g_free(want);
	g_free(log);
	/* the log names nobody */
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM events WHERE kind = 'forget'"
		" AND (detail_json LIKE '%C-%' OR detail_json LIKE '%zq%')"), ==, 0);
	/* the erased text is gone from the file (secure_delete, checkpointed) */
	if(tdb_pg())
		return;                        /* SQLite's file */
	g_assert_false(file_contains(fx->path, "C-ERASEME"));
	g_assert_false(file_contains(fx->path, "zq0XY"));
	g_assert_false(file_contains(fx->path, "zq2XY"));
	g_assert_true(file_contains(fx->path, "C-KEEP"));
	char *wal = g_strconcat(fx->path, "-wal", NULL);
	g_assert_false(g_file_test(wal, G_FILE_TEST_EXISTS) && file_contains(wal, "C-ERASEME"));
	g_free(wal);
}

static void test_retention(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	vspec old = { "old", "T-01", "C-1", "video", T0, TRUE, 30, 30, NULL, 1, 1, 2 };
	vspec recent = { "recent", "T-01", "C-1", "video", T0 + 20 * DAY, TRUE, 31, 30, NULL, 1, 1, 2 };
	add_visit_full(st, &old);
	add_visit_full(st, &recent);
	/* created long ago but still active recently: kept */
	store_visit_rec lv = { "longlived", "T-01", "C-2", "video", T0 };
	g_assert_cmpint(store_visit_create(st, &lv, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_visit_state(st, "longlived", "ended", T0 + 25 * DAY, ok_done, (void *)"s"), ==, 0);
	done_rec d = { 0 };
	g_assert_cmpint(store_retention(st, 0, T0, on_count, &d), ==, -1);
	g_assert_cmpint(store_retention(st, 10, T0 + 21 * DAY, on_count, &d), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(d.calls, ==, 1);
	g_assert_cmpint(d.rc, ==, STORE_OK);
	/* visit, 2 participants, 3 pulses, 3 answers, 2+4+4 items, 1+5+5 scores, alert,
	 * incident, 4 samples, event, summary */
	g_assert_cmpint(d.rows, ==, 1 + 2 + 3 + 3 + 10 + 11 + 1 + 1 + 4 + 1 + 1);
	store_close(st);
	char *rows = sqlq_rows(fx->path, "SELECT visit_id FROM visits ORDER BY visit_id");
	g_assert_cmpstr(rows, ==, "longlived\nrecent\n");
	g_free(rows);
	g_assert_cmpint(sqlq_int(fx->path, "SELECT count(*) FROM pulses WHERE visit_id = 'old'"), ==, 0);
	rows = sqlq_rows(fx->path, tdb_q("SELECT kind, json_extract(detail_json, '$.days'), json_extract(detail_json,"
		" '$.visits'), json_extract(detail_json, '$.rows'), at FROM events WHERE visit_id IS NULL",
		"SELECT kind, detail_json::jsonb->>'days', detail_json::jsonb->>'visits', detail_json::jsonb->>'rows',"
		" at FROM events WHERE visit_id IS NULL"));
	char *want = g_strdup_printf("retention|10|1|%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT "\n",
		d.rows, (gint64)(T0 + 21 * DAY));
	g_assert_cmpstr(rows, ==, want);
	g_free(want);
	g_free(rows);
}

/* --- reads ------------------------------------------------------------------------------- */

typedef struct collect {
	json_t *rows;
	int stop_after;            /* > 0: stop after this many */
} collect;

static int on_row(const json_t *row, void *user) {
	collect *c = user;
	json_array_append(c->rows, (json_t *)row);
	return c->stop_after > 0 && (int)json_array_size(c->rows) >= c->stop_after;
}

typedef struct both {
	collect c;
	done_rec d;
} both;

static int both_row(const json_t *row, void *user) {
	return on_row(row, &((both *)user)->c);
}

static void both_done(store_rc rc, const char *error, void *user) {
	on_done(rc, error, &((both *)user)->d);
}

static json_t *read_all(store *st, store_report_what what, const store_report_filter *f,
		int stop_after, store_rc *rc) {
	both b = { { json_array(), stop_after }, { 0 } };
	g_assert_cmpint(store_report_rows(st, what, f, both_row, both_done, &b), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
	g_assert_cmpint(b.d.calls, ==, 1);
	*rc = b.d.rc;
	return b.c.rows;
}

/* visit ids of rows, joined by "," */
static char *ids_of(const json_t *rows, const char *key) {
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
		g_string_append_printf(s, "%s%s", i ? "," : "", json_string_value(json_object_get(r, key)));
	return g_string_free(s, FALSE);
}

static void fill_three(store *st) {
	vspec a = { "a", "T-01", "C-1", "video", T0, TRUE, 30, 31, QUALITY(4.0, 4.2, 1, 1, 2), 1, 0, 2 };
	vspec b = { "b", "T-01", "C-1", "in_person", T0 + DAY, FALSE, 32, 30, NULL, 0, 1, 0 };
	vspec c = { "c", "T-02", "C-2", "video", T0 + 2 * DAY, TRUE, 20, 25, QUALITY(3.0, 3.2, 5, 6, 30), 3, 2, 2 };
	add_visit_full(st, &a);
	add_visit_full(st, &b);
	add_visit_full(st, &c);
	/* a visit that never ended: listed, without a summary */
	store_visit_rec d = { "d", "T-01", "C-3", "video", T0 + 3 * DAY };
	g_assert_cmpint(store_visit_create(st, &d, ok_done, (void *)"visit"), ==, 0);
}

static void test_read_visits(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	fill_three(st);
	store_rc rc;
	store_report_filter f = { 0 };
	json_t *rows = read_all(st, STORE_READ_VISITS, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	char *ids = ids_of(rows, "visit_id");
	g_assert_cmpstr(ids, ==, "a,b,c,d");
	g_free(ids);
	json_t *a = json_array_get(rows, 0);
	g_assert_cmpstr(json_string_value(json_object_get(a, "therapist_code")), ==, "T-01");
	g_assert_cmpint(json_integer_value(json_object_get(a, "visit_number")), ==, 1);
	g_assert_true(json_is_true(json_object_get(a, "research_consent")));
	g_assert_cmpfloat(json_real_value(json_object_get(a, "client_total")), ==, 30);
	g_assert_cmpfloat(fabs(json_real_value(json_object_get(a, "mean_mos")) - 4.1), <, 1e-9);
	g_assert_cmpint(json_integer_value(json_object_get(a, "incidents")), ==, 1);
	g_assert_true(json_is_false(json_object_get(json_array_get(rows, 1), "research_consent")));
	json_t *d = json_array_get(rows, 3);
	g_assert_true(json_is_null(json_object_get(d, "visit_number")));
	g_assert_cmpstr(json_string_value(json_object_get(d, "state")), ==, "created");
	json_decref(rows);

	struct { store_report_filter f; const char *want; } cases[] = {
		{ { .therapist_code = "T-01" }, "a,b,d" },
		{ { .client_code = "C-1" }, "a,b" },
		{ { .modality = "video" }, "a,c,d" },
		{ { .modality = "in_person" }, "b" },
		{ { .instrument_id = "ap-end" }, "a,b,c" },
		{ { .instrument_id = "srs" }, "" },
		{ { .from_us = T0 + DAY }, "b,c,d" },
		{ { .to_us = T0 + DAY }, "a" },
		{ { .from_us = T0 + 1, .to_us = T0 + 3 * DAY }, "b,c" },
		{ { .research_only = TRUE }, "a,c" },
		{ { .research_only = TRUE, .therapist_code = "T-01" }, "a" },
		{ { .visit_id = "c" }, "c" },
		{ { .limit = 2 }, "a,b" },
	};
	for(size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		rows = read_all(st, STORE_READ_VISITS, &cases[i].f, 0, &rc);
		g_assert_cmpint(rc, ==, STORE_OK);
		ids = ids_of(rows, "visit_id");
		g_test_message("case %zu: %s", i, ids);
		g_assert_cmpstr(ids, ==, cases[i].want);
		g_free(ids);
		json_decref(rows);
	}
	/* stopping early ends the read with OK */
	rows = read_all(st, STORE_READ_VISITS, &f, 1, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	g_assert_cmpint(json_array_size(rows), ==, 1);
	json_decref(rows);
	/* refusals at enqueue */
	collect c = { NULL, 0 };
	g_assert_cmpint(store_report_rows(st, STORE_READ_VISITS, NULL, on_row, NULL, &c), ==, -1);
	g_assert_cmpint(store_report_rows(st, STORE_READ_VISITS, &f, NULL, NULL, &c), ==, -1);
	g_assert_cmpint(store_report_rows(st, STORE_READ_VISIT, &f, on_row, NULL, &c), ==, -1);
	g_assert_cmpint(store_report_rows(st, (store_report_what)99, &f, on_row, NULL, &c), ==, -1);
	store_report_filter bad = { .modality = "phone" };
	g_assert_cmpint(store_report_rows(st, STORE_READ_VISITS, &bad, on_row, NULL, &c), ==, -1);
	store_close(st);
}

static void test_read_scores_answers_samples(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	fill_three(st);
	store_rc rc;
	store_report_filter f = { 0 };
	json_t *rows = read_all(st, STORE_READ_END_SCORES, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	/* 3 visits x the client's (total + 4 subscales) */
	g_assert_cmpint(json_array_size(rows), ==, 15);
	json_t *r0 = json_array_get(rows, 0);
	g_assert_cmpstr(json_string_value(json_object_get(r0, "visit_id")), ==, "a");
	g_assert_cmpstr(json_string_value(json_object_get(r0, "role")), ==, "client");
	g_assert_cmpstr(json_string_value(json_object_get(r0, "instrument_id")), ==, "ap-end");
	g_assert_cmpstr(json_string_value(json_object_get(r0, "name")), ==, "bond");
	g_assert_cmpfloat(json_real_value(json_object_get(r0, "value")), ==, 7.5);
	json_decref(rows);
	f.research_only = TRUE;
	rows = read_all(st, STORE_READ_END_SCORES, &f, 0, &rc);
	g_assert_cmpint(json_array_size(rows), ==, 10);
	size_t k;
	json_t *e;
	json_array_foreach(rows, k, e)
		g_assert_cmpstr(json_string_value(json_object_get(e, "role")), ==, "client");
	json_decref(rows);

	/* answers export: a row per item; b (no consent) only without the filter */
	f.research_only = FALSE;
	rows = read_all(st, STORE_READ_ANSWERS, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	g_assert_cmpint(json_array_size(rows), ==, 3 * (2 + 4 + 4));
	json_t *x = json_array_get(rows, 0);
	g_assert_cmpstr(json_string_value(json_object_get(x, "pulse_id")), ==, "a-p1");
	g_assert_cmpstr(json_string_value(json_object_get(x, "item_id")), ==, "focus");
	g_assert_cmpfloat(json_real_value(json_object_get(x, "value")), ==, 6.0);
	g_assert_cmpstr(json_string_value(json_object_get(x, "trigger")), ==, "schedule");
	g_assert_true(json_is_true(json_object_get(x, "final")));
	g_assert_true(json_is_false(json_object_get(x, "dismissed")));
	g_assert_true(json_is_true(json_object_get(x, "answer_research_consent")));
	g_assert_cmpint(json_integer_value(json_object_get(x, "visit_number")), ==, 1);
	json_decref(rows);
	f.research_only = TRUE;
	rows = read_all(st, STORE_READ_ANSWERS, &f, 0, &rc);
	g_assert_cmpint(json_array_size(rows), ==, 2 * (2 + 4 + 4));
	size_t i;
	json_array_foreach(rows, i, x)
		g_assert_cmpstr(json_string_value(json_object_get(x, "visit_id")), !=, "b");
	json_decref(rows);

	/* samples: the metrics parsed */
	f.research_only = FALSE;
	f.visit_id = "a";
	rows = read_all(st, STORE_READ_SAMPLES, &f, 0, &rc);
	g_assert_cmpint(json_array_size(rows), ==, 4);
	x = json_array_get(rows, 0);
	g_assert_cmpstr(json_string_value(json_object_get(x, "leg")), ==, "client_up");
	g_assert_cmpstr(json_string_value(json_object_get(x, "modality")), ==, "video");
	/* the metrics as stored (the export parses them itself) */
	g_assert_true(g_str_has_prefix(json_string_value(json_object_get(x, "metrics_raw")),
		"{\"seconds\":5,\"packets\":250,"));
	json_decref(rows);
	store_close(st);
}

static void test_read_visit(fixture *fx, gconstpointer data) {
	store *st = open_ok(fx->path);
	fill_three(st);
	store_rc rc;
	store_report_filter f = { .visit_id = "a" };
	json_t *rows = read_all(st, STORE_READ_VISIT, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	g_assert_cmpint(json_array_size(rows), ==, 1);
	json_t *v = json_array_get(rows, 0);
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	g_test_message("%s", text);
	free(text);
	json_t *visit = json_object_get(v, "visit");
	g_assert_cmpstr(json_string_value(json_object_get(visit, "client_code")), ==, "C-1");
	g_assert_cmpstr(json_string_value(json_object_get(visit, "state")), ==, "ended");
	g_assert_cmpint(json_array_size(json_object_get(v, "participants")), ==, 2);
	g_assert_true(json_is_true(json_object_get(json_array_get(json_object_get(v, "participants"), 1),
		"research_consent")));
	json_t *pulses = json_object_get(v, "pulses");
	g_assert_cmpint(json_array_size(pulses), ==, 3);
	json_t *p1 = json_array_get(pulses, 0);
	g_assert_cmpstr(json_string_value(json_object_get(p1, "pulse_id")), ==, "a-p1");
	json_t *ans = json_object_get(p1, "answer");
	g_assert_true(json_is_true(json_object_get(ans, "final")));
	g_assert_cmpfloat(json_real_value(json_object_get(json_object_get(ans, "items"), "understood")), ==, 7.5);
	g_assert_cmpfloat(json_real_value(json_object_get(json_object_get(ans, "scores"), "total")), ==, 13.5);
	g_assert_null(json_object_get(p1, "has_answer"));
	json_t *ce = json_array_get(pulses, 1);
	g_assert_cmpstr(json_string_value(json_object_get(ce, "kind")), ==, "end");
	g_assert_cmpfloat(json_number_value(json_object_get(json_object_get(ce, "quality"), "freeze_s")), ==, 2);
	g_assert_cmpint(json_array_size(json_object_get(v, "incidents")), ==, 1);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(json_object_get(v, "incidents"), 0),
		"kind")), ==, "freeze");
	json_t *legs = json_object_get(v, "legs");
	json_t *up = json_object_get(json_object_get(legs, "client_up"), "audio");
	g_assert_nonnull(up);
	g_assert_cmpint(json_integer_value(json_object_get(up, "samples")), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(up, "packets")), ==, 499);
	/* lost 0 + 1 of 500 expected */
	g_assert_cmpfloat(fabs(json_real_value(json_object_get(up, "loss_pct")) - 0.2), <, 1e-9);
	g_assert_cmpfloat(json_number_value(json_object_get(up, "jitter_ms")), ==, 10.5);
	json_t *down = json_object_get(json_object_get(legs, "client_down"), "audio");
	g_assert_cmpfloat(json_number_value(json_object_get(down, "rtt_ms")), ==, 80);
	g_assert_cmpint(json_array_size(json_object_get(v, "events")), ==, 1);
	json_decref(rows);
	/* unknown visit; a non-consented visit with research_only */
	f.visit_id = "nope";
	rows = read_all(st, STORE_READ_VISIT, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_NOT_FOUND);
	g_assert_cmpint(json_array_size(rows), ==, 0);
	json_decref(rows);
	f.visit_id = "b";
	f.research_only = TRUE;
	rows = read_all(st, STORE_READ_VISIT, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_NOT_FOUND);
	json_decref(rows);
	f.research_only = FALSE;
	rows = read_all(st, STORE_READ_VISIT, &f, 0, &rc);
	g_assert_cmpint(rc, ==, STORE_OK);
	json_decref(rows);
	store_close(st);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/store-report/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("summary/row", test_summarize);
	ADD("summary/cases", test_summarize_cases);
	ADD("summary/video-class", test_summarize_video_class);
	ADD("summary/visit-number-stable", test_visit_number_stable);
	ADD("migrate/upgrade-from-v2", test_upgrade_from_v2);
	ADD("erase/forget-every-row-table-by-table", test_forget);
	ADD("erase/retention", test_retention);
	ADD("read/visits-filters", test_read_visits);
	ADD("read/scores-answers-samples", test_read_scores_answers_samples);
	ADD("read/visit", test_read_visit);
#undef ADD
	return g_test_run();
}
