/*
 * report_bench.c — how long the reports take on a large store (issue 6).
 *
 * For each size (default: 1,000 visits / 100,000 quality samples, then
 * 10,000 visits / 1,000,000 samples, in the same run) it generates a store
 * in a temporary folder, then times, through the same code the plugin and
 * alliance-report use:
 *
 *   open      store_open_sqlite(): migrations and the summary backfill of
 *             every ended visit (the generator writes no summaries, as a
 *             version-2 database would have none)
 *   visits    report_build(visits), all visits
 *   summary   report_build(summary)
 *   compare   report_build(compare) (research consent only)
 *   visit     report_build(visit) of one video visit (its samples included)
 *   summarize store_visit_summarize() of one visit, as the plugin does at close
 *   export    report_export() of answers, visits and samples as CSV to /dev/null
 *   forget    store_forget_client() of one client (8 visits)
 *
 * The generator writes with the raw SQLite API in one transaction (it is
 * not what is measured): 10 clients per therapist, 8 visits per client,
 * alternating video / in person, 90 % of clients with research consent, an
 * in-session pulse and both end pulses answered per visit, the whole-visit
 * quality context on the client's end pulse, samples spread over the video
 * visits (5 s windows of client_up/therapist_up audio and video), a few
 * incidents and alerts. Fixed seed: every run makes the same data.
 *
 *   bench/report_bench [visits samples]...      e.g. bench/report_bench 1000 100000 10000 1000000
 *   bench/report_bench --generate PATH visits samples   only write such a database (to try
 *                                                       alliance-report on)
 *
 * Prints one line per measurement; nothing is asserted.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "bench_sample.h"
#include "report.h"
#include "store.h"

#define T0 1700000000000000LL
#define DAY (86400LL * 1000000LL)

static void die(sqlite3 *db, const char *what) {
	fprintf(stderr, "report_bench: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
	sqlite3_stmt *s = NULL;
	if(sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(db, sql);
	return s;
}

static void step(sqlite3 *db, sqlite3_stmt *s) {
	if(sqlite3_step(s) != SQLITE_DONE)
		die(db, sqlite3_sql(s));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static void generate(const char *path, int n_visits, int n_samples) {
	char err[256];
	store *st = store_open_sqlite(path, err, sizeof(err));      /* the schema */
	if(st == NULL) {
		fprintf(stderr, "report_bench: %s\n", err);
		exit(1);
	}
	store_close(st);
	sqlite3 *db = NULL;
	if(sqlite3_open(path, &db) != SQLITE_OK)
		die(db, "open");
	sqlite3_exec(db, "PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON; BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *sv = prep(db, "INSERT INTO visits(visit_id, therapist_code, client_code, modality, state,"
		" created_at, admitted_at, ended_at, closed_at) VALUES (?1, ?2, ?3, ?4, 'closed', ?5, ?5 + 60000000,"
		" ?5 + 3000000000, ?5 + 3180000000)");
	sqlite3_stmt *sp = prep(db, "INSERT INTO participants(visit_id, role, code, research_consent, language,"
		" joined_at) VALUES (?1, ?2, ?3, ?4, 'en', ?5)");
	sqlite3_stmt *sq = prep(db, "INSERT INTO pulses(pulse_id, visit_id, role, kind, instrument_id,"
		" instrument_version, language, \"trigger\", delivered_via, created_at, expires_at, status, status_at,"
		" quality_json) VALUES (?1, ?2, ?3, ?4, ?5, '1.0', 'en', ?6, 'datachannel', ?7, ?7 + 120000000,"
		" 'answered', ?7 + 30000000, ?8)");
	sqlite3_stmt *sa = prep(db, "INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms,"
		" research_consent, dismissed) VALUES (?1, 0, ?2, ?2, 30000, ?3, 0)");
	/* items go in before the answer is final, scores after (the schema's triggers) */
	sqlite3_stmt *sf = prep(db, "UPDATE answers SET final = 1 WHERE pulse_id = ?1");
	sqlite3_stmt *si = prep(db, "INSERT INTO answer_items(pulse_id, item_id, value) VALUES (?1, ?2, ?3)");
	sqlite3_stmt *ss = prep(db, "INSERT INTO scores(pulse_id, name, value) VALUES (?1, ?2, ?3)");
	sqlite3_stmt *sm = prep(db, "INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		" VALUES (?1, ?2, ?3, ?4, ?5)");
	sqlite3_stmt *sn = prep(db, "INSERT INTO incidents(visit_id, leg, medium, kind, started_at, ended_at,"
		" detail_json) VALUES (?1, 'client_up', 'video', 'freeze', ?2, ?2 + 900000, '{\"freeze_ms\":900}')");
	sqlite3_stmt *sl = prep(db, "INSERT INTO alerts(visit_id, pulse_id, rule, score_name, score, threshold,"
		" quality_json, created_at) VALUES (?1, ?2, 'below_cutoff', 'total', ?3, 30, NULL, ?4)");
	GRand *rng = g_rand_new_with_seed(6);
	int n_video = (n_visits + 1) / 2;
	int per_video = n_visits ? n_samples / n_video : 0, extra = n_visits ? n_samples % n_video : 0;
	static const char *const legs[4] = { "client_up", "therapist_up", "client_up", "therapist_up" };
	static const char *const media[4] = { "audio", "audio", "video", "video" };
	static const char *const items[4] = { "goals", "tasks", "bond", "overall" };
	for(int v = 0; v < n_visits; v++) {
		int client = v / 8, k = v % 8, therapist = client / 10;
		gboolean video = ((k + client) % 2) == 0;
		gboolean consent = client % 10 != 9;
		char vid[32], cl[16], th[16];
		g_snprintf(vid, sizeof(vid), "v%06d", v);
		g_snprintf(cl, sizeof(cl), "C-%05d", client);
		g_snprintf(th, sizeof(th), "T-%03d", therapist);
		gint64 t = T0 + k * 7 * DAY + client * 1000000LL;
		sqlite3_bind_text(sv, 1, vid, -1, SQLITE_STATIC);
		sqlite3_bind_text(sv, 2, th, -1, SQLITE_STATIC);
		sqlite3_bind_text(sv, 3, cl, -1, SQLITE_STATIC);
		sqlite3_bind_text(sv, 4, video ? "video" : "in_person", -1, SQLITE_STATIC);
		sqlite3_bind_int64(sv, 5, t);
		step(db, sv);
		for(int r = 0; r < 2; r++) {
			sqlite3_bind_text(sp, 1, vid, -1, SQLITE_STATIC);
			sqlite3_bind_text(sp, 2, r ? "client" : "therapist", -1, SQLITE_STATIC);
			sqlite3_bind_text(sp, 3, r ? cl : th, -1, SQLITE_STATIC);
			sqlite3_bind_int(sp, 4, r ? consent : 0);
			sqlite3_bind_int64(sp, 5, t + r);
			step(db, sp);
		}
		double freeze = video ? -8 * log(1 - g_rand_double(rng)) : 0;
		double z = sqrt(-2 * log(1 - g_rand_double(rng))) * cos(2 * G_PI * g_rand_double(rng));
		double total = round(CLAMP(29 + 0.3 * k - (video ? 1.5 + 0.1 * (freeze - 8) : 0) + 4 * z, 0, 40) * 10) / 10;
		double ttotal = round(CLAMP(total + 2 * g_rand_double(rng) - 1, 0, 40) * 10) / 10;
		char *quality = video ? g_strdup_printf("{\"window_s\":0,\"measured_s\":3000,\"legs\":{},\"paths\":{"
			"\"client_to_therapist\":{\"mos\":%.2f,\"loss_pct\":%.2f},\"therapist_to_client\":{\"mos\":%.2f,"
			"\"loss_pct\":%.2f}},\"freezes\":%d,\"freeze_s\":%.1f,\"incidents\":%d}",
			4.3 - freeze / 40, freeze / 10, 4.2 - freeze / 40, freeze / 12, (int)(freeze / 2),
			freeze, (int)(freeze / 4)) : NULL;
		static const char *const kinds[3] = { "in_session", "end", "end" };
		static const char *const roles[3] = { "client", "client", "therapist" };
		static const char *const ins[3] = { "ap-pulse", "ap-end", "ap-therapist-end" };
		static const char *const trig[3] = { "schedule", "end", "end" };
		for(int p = 0; p < 3; p++) {
			char pid[40];
			g_snprintf(pid, sizeof(pid), "%s-%d", vid, p);
			gint64 pt = p == 0 ? t + 1500000000LL : t + 3000000000LL + p;
			sqlite3_bind_text(sq, 1, pid, -1, SQLITE_STATIC);
			sqlite3_bind_text(sq, 2, vid, -1, SQLITE_STATIC);
			sqlite3_bind_text(sq, 3, roles[p], -1, SQLITE_STATIC);
			sqlite3_bind_text(sq, 4, kinds[p], -1, SQLITE_STATIC);
			sqlite3_bind_text(sq, 5, ins[p], -1, SQLITE_STATIC);
			sqlite3_bind_text(sq, 6, trig[p], -1, SQLITE_STATIC);
			sqlite3_bind_int64(sq, 7, pt);
			sqlite3_bind_text(sq, 8, p == 1 ? quality : NULL, -1, SQLITE_STATIC);
			step(db, sq);
			sqlite3_bind_text(sa, 1, pid, -1, SQLITE_STATIC);
			sqlite3_bind_int64(sa, 2, pt + 30000000);
			sqlite3_bind_int(sa, 3, consent);
			step(db, sa);
			double tot = p == 0 ? 14 : p == 1 ? total : ttotal;
			int ni = p == 0 ? 2 : 4;
			for(int i = 0; i < ni; i++) {
				sqlite3_bind_text(si, 1, pid, -1, SQLITE_STATIC);
				sqlite3_bind_text(si, 2, p == 0 ? (i ? "focus" : "understood") : items[i], -1, SQLITE_STATIC);
				sqlite3_bind_double(si, 3, tot / ni);
				step(db, si);
			}
			sqlite3_bind_text(sf, 1, pid, -1, SQLITE_STATIC);
			step(db, sf);
			for(int i = 0; i < ni; i++) {
				if(p > 0) {
					sqlite3_bind_text(ss, 1, pid, -1, SQLITE_STATIC);
					sqlite3_bind_text(ss, 2, items[i], -1, SQLITE_STATIC);
					sqlite3_bind_double(ss, 3, tot / ni);
					step(db, ss);
				}
			}
			sqlite3_bind_text(ss, 1, pid, -1, SQLITE_STATIC);
			sqlite3_bind_text(ss, 2, "total", -1, SQLITE_STATIC);
			sqlite3_bind_double(ss, 3, tot);
			step(db, ss);
		}
		if(total < 30) {
			char pid[40];
			g_snprintf(pid, sizeof(pid), "%s-1", vid);
			sqlite3_bind_text(sl, 1, vid, -1, SQLITE_STATIC);
			sqlite3_bind_text(sl, 2, pid, -1, SQLITE_STATIC);
			sqlite3_bind_double(sl, 3, total);
			sqlite3_bind_int64(sl, 4, t + 3000000000LL + 40000000);
			step(db, sl);
		}
		if(video) {
			for(int i = 0; i < (int)(freeze / 4); i++) {
				sqlite3_bind_text(sn, 1, vid, -1, SQLITE_STATIC);
				sqlite3_bind_int64(sn, 2, t + 120000000LL * (i + 1));
				step(db, sn);
			}
			int n = per_video + (v / 2 < extra ? 1 : 0);
			for(int i = 0; i < n; i++) {
				int leg = i % 4;
				char m[256];
				bench_sample_json(m, sizeof(m), i, leg);
				sqlite3_bind_text(sm, 1, vid, -1, SQLITE_STATIC);
				sqlite3_bind_text(sm, 2, legs[leg], -1, SQLITE_STATIC);
				sqlite3_bind_text(sm, 3, media[leg], -1, SQLITE_STATIC);
				sqlite3_bind_int64(sm, 4, t + 60000000LL + 5000000LL * (i / 4 + 1));
				sqlite3_bind_text(sm, 5, m, -1, SQLITE_TRANSIENT);
				step(db, sm);
			}
		}
		g_free(quality);
	}
	g_rand_free(rng);
	sqlite3_stmt *all[] = { sv, sp, sq, sa, sf, si, ss, sm, sn, sl };
	for(size_t i = 0; i < G_N_ELEMENTS(all); i++)
		sqlite3_finalize(all[i]);
	if(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		die(db, "commit");
	sqlite3_close(db);
}

static double since(gint64 t0) {
	return (g_get_monotonic_time() - t0) / 1000.0;
}

static void timed_report(store *st, proto_report_kind kind, const char *filters, const report_env *env,
		const char *label) {
	proto_report_filters f;
	proto_error err;
	json_t *fj = filters ? json_loads(filters, 0, NULL) : NULL;
	if(proto_report_filters_parse(fj, &f, &err) < 0) {
		fprintf(stderr, "report_bench: filters: %s\n", err.reason);
		exit(1);
	}
	gint64 t0 = g_get_monotonic_time();
	json_t *r = report_build(st, kind, &f, env, 0, &err);
	double ms = since(t0);
	if(r == NULL) {
		fprintf(stderr, "report_bench: %s: %s\n", label, err.reason);
		exit(1);
	}
	char *text = json_dumps(r, JSON_COMPACT);
	printf("  %-28s %9.1f ms   (%zu bytes of JSON)\n", label, ms, strlen(text));
	free(text);
	json_decref(r);
	json_decref(fj);
}

static void timed_export(store *st, report_export_kind kind) {
	proto_report_filters f;
	proto_error err;
	proto_report_filters_parse(NULL, &f, &err);
	FILE *out = fopen("/dev/null", "w");
	gint64 t0 = g_get_monotonic_time();
	gint64 n = report_export(st, kind, &f, REPORT_FORMAT_CSV, out, NULL, 0, NULL, &err);
	double ms = since(t0);
	fclose(out);
	char label[64];
	g_snprintf(label, sizeof(label), "export %s (CSV)", report_export_name(kind));
	printf("  %-28s %9.1f ms   (%" G_GINT64_FORMAT " rows, %.2f us/row)\n", label, ms, n,
		n > 0 ? ms * 1000 / n : 0);
}

static void on_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		fprintf(stderr, "report_bench: %s: %s\n", (const char *)user, error ? error : "?");
}

static void on_count(store_rc rc, gint64 rows, const char *error, void *user) {
	*(gint64 *)user = rc == STORE_OK ? rows : -1;
}

static void run(int n_visits, int n_samples, const instrument_set *instruments) {
	GError *e = NULL;
	char *dir = g_dir_make_tmp("report-bench-XXXXXX", &e);
	if(dir == NULL) {
		fprintf(stderr, "report_bench: %s\n", e->message);
		exit(1);
	}
	char *path = g_build_filename(dir, "alliance.sqlite", NULL);
	printf("== %d visits, %d quality samples\n", n_visits, n_samples);
	gint64 t0 = g_get_monotonic_time();
	generate(path, n_visits, n_samples);
	GStatBuf sb;
	g_stat(path, &sb);
	printf("  %-28s %9.1f ms   (%.1f MB file; not a report: the test data)\n", "generate", since(t0),
		sb.st_size / 1048576.0);
	char err[256];
	t0 = g_get_monotonic_time();
	store *st = store_open_sqlite(path, err, sizeof(err));
	if(st == NULL) {
		fprintf(stderr, "report_bench: %s\n", err);
		exit(1);
	}
	printf("  %-28s %9.1f ms   (summaries of %d visits backfilled)\n", "open + backfill", since(t0), n_visits);
	report_env env;
	report_env_init(&env);
	env.instruments = instruments;
	timed_report(st, PROTO_REPORT_VISITS, NULL, &env, "report visits (all)");
	timed_report(st, PROTO_REPORT_VISITS, "{\"therapist\":\"T-000\"}", &env, "report visits (1 therapist)");
	timed_report(st, PROTO_REPORT_SUMMARY, NULL, &env, "report summary");
	timed_report(st, PROTO_REPORT_COMPARE, NULL, &env, "report compare");
	timed_report(st, PROTO_REPORT_COMPARE, "{\"from\":\"2023-11-20\",\"to\":\"2023-12-10\"}", &env,
		"report compare (3 weeks)");
	timed_report(st, PROTO_REPORT_VISIT, "{\"visit_id\":\"v000000\"}", &env, "report visit (one, video)");
	t0 = g_get_monotonic_time();
	store_visit_summarize(st, "v000001", on_done, (void *)"summarize");
	store_sync(st);
	printf("  %-28s %9.1f ms\n", "store_visit_summarize (one)", since(t0));
	timed_export(st, REPORT_EXPORT_ANSWERS);
	timed_export(st, REPORT_EXPORT_VISITS);
	timed_export(st, REPORT_EXPORT_SAMPLES);
	gint64 rows = 0;
	t0 = g_get_monotonic_time();
	store_forget_client(st, "C-00003", g_get_real_time(), on_count, &rows);
	store_sync(st);
	printf("  %-28s %9.1f ms   (%" G_GINT64_FORMAT " rows erased)\n", "forget one client", since(t0), rows);
	store_close(st);
	g_unlink(path);
	char *wal = g_strconcat(path, "-wal", NULL), *shm = g_strconcat(path, "-shm", NULL);
	g_unlink(wal);
	g_unlink(shm);
	g_rmdir(dir);
	g_free(wal);
	g_free(shm);
	g_free(path);
	g_free(dir);
}

int main(int argc, char **argv) {
	/* --generate PATH visits samples: only write the test database */
	if(argc == 5 && !strcmp(argv[1], "--generate")) {
		if(g_file_test(argv[2], G_FILE_TEST_EXISTS)) {
			fprintf(stderr, "report_bench: %s exists\n", argv[2]);
			return 2;
		}
		generate(argv[2], atoi(argv[3]), atoi(argv[4]));
		return 0;
	}
	int sizes[16][2], n = 0;
	for(int i = 1; i + 1 < argc && n < 16; i += 2) {
		sizes[n][0] = atoi(argv[i]);
		sizes[n][1] = atoi(argv[i + 1]);
		if(sizes[n][0] < 8 || sizes[n][1] < 0) {
			fprintf(stderr, "usage: report_bench [visits samples]... (visits >= 8)\n");
			return 2;
		}
		n++;
	}
	if(n == 0) {
		sizes[0][0] = 1000; sizes[0][1] = 100000;
		sizes[1][0] = 10000; sizes[1][1] = 1000000;
		n = 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	instrument_set *instruments = instrument_set_load_dir(BENCH_INSTRUMENTS, NULL);
	printf("report_bench: SQLite %s, instruments from %s\n", sqlite3_libversion(), BENCH_INSTRUMENTS);
	for(int i = 0; i < n; i++)
		run(sizes[i][0], sizes[i][1], instruments);
	instrument_set_free(instruments);
	return 0;
}
