/* Unit tests for report.c on stores filled by hand through store.h:
 *
 * - a fixed data set of 16 visits (4 clients, 2 therapists, video and in
 *   person alternating, end totals of client and therapist, whole-visit
 *   connection quality): every number of `compare` and `summary` checked
 *   against values computed independently with Debian 12's scipy 1.10.1 /
 *   numpy 1.24.2 (the script is quoted next to the numbers);
 * - research consent: a non-consented visit is left out of `compare`, the
 *   research `visits` list and every export, and is in the clinical
 *   `summary`;
 * - a generated data set (fixed seed) with a planted online vs in-person
 *   difference (d = -0.5 on the end total) and a planted negative relation
 *   between freeze seconds and the end total: `compare` recovers both;
 * - the `visit` and `visits` reports, the exports (CSV and JSON), CSV
 *   quoting, times, and a store read that times out;
 * - the therapist's `client_history` (report_history.h): only the asking
 *   therapist's visits with the visit's client, end totals and subscales
 *   with the therapist's own, in-session pulses, alerts with their quality
 *   class, the limit, 475 for another therapist, 476 for an unknown or a
 *   forgotten client's visit. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "report.h"
#include "report_class.h"
#include "report_history.h"
#include "stats.h"
#include "store.h"
#include "tdb.h"

#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif

#define T0 1700000000000000LL
#define DAY (86400LL * 1000000LL)
#define EPS 1e-9

/* --- filling a store ------------------------------------------------------------------- */

static void ok_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("store job failed (%s): %s", (const char *)user, error ? error : "?");
}

typedef struct vrow {
	const char *id, *therapist, *client, *modality;
	double total, ttotal;                 /* NAN: no answer */
	double mos, loss, freeze;             /* NAN: no connection measured */
	int incidents;
	gboolean consent;
} vrow;

static void end_answer(store *st, const char *pulse_id, const char *visit_id, const char *role,
		const char *ins_id, gint64 t, double total, gboolean consent, const char *quality) {
	store_pulse_rec p = { pulse_id, visit_id, role, "end", ins_id, "1.0", "en", "end",
		"event", t, t + 180000000 };
	g_assert_cmpint(store_pulse_create(st, &p, ok_done, (void *)"pulse"), ==, 0);
	if(quality)
		g_assert_cmpint(store_pulse_quality(st, pulse_id, quality, ok_done, (void *)"quality"), ==, 0);
	if(isnan(total))
		return;
	static const char *const ids[4] = { "goals", "tasks", "bond", "overall" };
	store_item_value items[4];
	store_score scores[5] = { { "total", total } };
	for(int i = 0; i < 4; i++) {
		items[i].item_id = ids[i];
		items[i].value = total / 4;
		scores[i + 1].name = ids[i];
		scores[i + 1].value = total / 4;
	}
	store_answer_rec a = { pulse_id, TRUE, t + 1000, 1, consent, 4, items, 5, scores };
	g_assert_cmpint(store_answer(st, &a, ok_done, (void *)"answer"), ==, 0);
}

static void add_visit(store *st, const vrow *v, gint64 t) {
	store_visit_rec r = { v->id, v->therapist, v->client, v->modality, t };
	g_assert_cmpint(store_visit_create(st, &r, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_participant_join(st, v->id, "client", v->client, v->consent, "en",
		t + 1, ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_visit_state(st, v->id, "ended", t + 3000000000LL, ok_done, (void *)"end"), ==, 0);
	char *quality = NULL;
	if(!isnan(v->mos))
		quality = g_strdup_printf("{\"window_s\":0,\"measured_s\":3000,\"paths\":{"
			"\"client_to_therapist\":{\"mos\":%.17g,\"loss_pct\":%.17g},"
			"\"therapist_to_client\":{\"mos\":%.17g,\"loss_pct\":%.17g}},"
			"\"freezes\":1,\"freeze_s\":%.17g,\"incidents\":%d}",
			v->mos, v->loss, v->mos, v->loss, v->freeze, v->incidents);
	for(int i = 0; i < v->incidents; i++) {
		store_incident_rec in = { v->id, "client_up", "video", "freeze", t + 10 + i, t + 20 + i, NULL };
		g_assert_cmpint(store_incident(st, &in, ok_done, (void *)"incident"), ==, 0);
	}
	char ce[64], te[64];
	g_snprintf(ce, sizeof(ce), "%s-ce", v->id);
	g_snprintf(te, sizeof(te), "%s-te", v->id);
	end_answer(st, ce, v->id, "client", "ap-end", t + 3000000001LL, v->total, v->consent, quality);
	end_answer(st, te, v->id, "therapist", "ap-therapist-end", t + 3000000002LL, v->ttotal,
		v->consent, NULL);
	g_assert_cmpint(store_visit_summarize(st, v->id, ok_done, (void *)"summarize"), ==, 0);
	g_free(quality);
}

#define N_FIXED 16
static const vrow FIXED[N_FIXED + 1] = {
	{ "v01", "T-1", "C-1", "video",     28.0, 30.0, 4.1, 0.5, 2.0, 1, TRUE },
	{ "v02", "T-1", "C-1", "in_person", 31.5, 31.0, NAN, NAN, NAN, 0, TRUE },
	{ "v03", "T-1", "C-1", "video",     30.2, 32.5, 3.6, 2.0, 9.5, 3, TRUE },
	{ "v04", "T-1", "C-1", "in_person", 34.0, 33.0, NAN, NAN, NAN, 0, TRUE },
	{ "v05", "T-1", "C-2", "in_person", 25.0, 27.5, NAN, NAN, NAN, 0, TRUE },
	{ "v06", "T-1", "C-2", "video",     24.1, 26.0, 3.2, 4.5, 20.0, 5, TRUE },
	{ "v07", "T-1", "C-2", "in_person", 29.9, 28.0, NAN, NAN, NAN, 0, TRUE },
	{ "v08", "T-1", "C-2", "video",     27.3, 29.5, 4.3, 0.2, 0.0, 0, TRUE },
	{ "v09", "T-2", "C-3", "video",     36.0, 35.0, 4.4, 0.1, 0.5, 0, TRUE },
	{ "v10", "T-2", "C-3", "in_person", 40.0, 38.0, NAN, NAN, NAN, 0, TRUE },
	{ "v11", "T-2", "C-3", "video",     40.0, 39.0, 4.0, 1.0, 4.0, 1, TRUE },
	{ "v12", "T-2", "C-3", "in_person", 40.0, 37.5, NAN, NAN, NAN, 0, TRUE },
	{ "v13", "T-2", "C-4", "in_person", 22.0, 30.0, NAN, NAN, NAN, 0, TRUE },
	{ "v14", "T-2", "C-4", "video",     19.5, 28.0, 2.9, 6.0, 35.0, 7, TRUE },
	{ "v15", "T-2", "C-4", "in_person", 26.0, 29.0, NAN, NAN, NAN, 0, TRUE },
	{ "v16", "T-2", "C-4", "video",     23.8, 27.0, 3.8, 1.5, 6.5, 2, TRUE },
	/* no research consent: clinical reports only */
	{ "v17", "T-2", "C-5", "video",     10.0, 20.0, 1.5, 20.0, 300.0, 9, FALSE },
};

typedef struct fixture {
	char *dir, *path;
	store *st;
	instrument_set *instruments;
	report_env env;
} fixture;

static void fx_setup(fixture *fx, gconstpointer data) {
	GError *e = NULL;
	fx->dir = g_dir_make_tmp("report-test-XXXXXX", &e);
	g_assert_no_error(e);
	fx->path = tdb_create(fx->dir, "alliance.sqlite", TRUE);   /* SQLite, or PostgreSQL under run-pg.sh */
	fx->st = tdb_open_ok(fx->path);
	char *idir = g_build_filename(AP_SRCDIR, "conf", "instruments", NULL);
	fx->instruments = instrument_set_load_dir(idir, NULL);
	g_assert_nonnull(fx->instruments);
	g_free(idir);
	report_env_init(&fx->env);
	fx->env.instruments = fx->instruments;
}

static void fx_teardown(fixture *fx, gconstpointer data) {
	store_close(fx->st);
	instrument_set_free(fx->instruments);
	tdb_remove(fx->dir, fx->path);
	g_free(fx->dir);
	g_free(fx->path);
}

static void fill_fixed(store *st, int n) {
	/* visits of a client one week apart, clients interleaved */
	for(int i = 0; i < n; i++)
		add_visit(st, &FIXED[i], T0 + (i % 4) * 7 * DAY + (i / 4) * 1000000LL);
	g_assert_cmpint(store_sync(st), ==, 0);
}

static json_t *build(fixture *fx, proto_report_kind kind, const char *filters_json) {
	proto_report_filters f;
	proto_error err;
	json_t *fj = filters_json ? json_loads(filters_json, 0, NULL) : NULL;
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	json_t *r = report_build(fx->st, kind, &f, &fx->env, 10 * G_USEC_PER_SEC, &err);
	if(r == NULL)
		g_error("report_build: %d %s", err.code, err.reason);
	json_decref(fj);          /* r holds no pointers into the filters */
	return r;
}

/* a number at a JSON path like "scores/0/hedges_g/g" */
static double at(const json_t *j, const char *path) {
	gchar **parts = g_strsplit(path, "/", -1);
	const json_t *cur = j;
	for(int i = 0; parts[i] && cur; i++) {
		if(json_is_array(cur))
			cur = json_array_get(cur, (size_t)g_ascii_strtoull(parts[i], NULL, 10));
		else
			cur = json_object_get(cur, parts[i]);
	}
	g_strfreev(parts);
	if(!json_is_number(cur)) {
		char *t = json_dumps(j, JSON_COMPACT);
		g_error("no number at %s", path);
		free(t);
	}
	return json_number_value(cur);
}

static gboolean is_null_at(const json_t *j, const char *key) {
	return json_is_null(json_object_get(j, key));
}

#define CLOSE(got, want) do { double g_ = (got), w_ = (want); \
	if(!(fabs(g_ - w_) <= EPS * (1 + fabs(w_)))) \
		g_error("%s = %.17g, expected %.17g", #got, g_, w_); } while(0)

/* --- compare on the fixed data ------------------------------------------------------------- */

/* scipy / numpy (tests/unit/test_report.c data; V = video rows, P = in person):
 *   a, b = totals of V, P;  sp = pooled SD;  d = (a.mean()-b.mean())/sp
 *   J = 1-3/(4*(na+nb)-9);  g = J*d;  se = sqrt((na+nb)/(na*nb) + g*g/(2*(na+nb)))
 *   st.spearmanr(x, a) with Bonett-Wright SE sqrt((1+rho^2/2)/(n-3))
 *   st.pearsonr(c, t).confidence_interval(0.95);  np.mean(np.abs(c - t))
 *   formation: mean +- st.t.ppf(0.975, n-1) * s/sqrt(n) per visit number */
static void test_compare_fixed(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, N_FIXED + 1);
	json_t *r = build(fx, PROTO_REPORT_COMPARE, NULL);
	char *text = json_dumps(r, JSON_INDENT(1));
	g_test_message("%s", text);
	free(text);
	g_assert_cmpstr(json_string_value(json_object_get(r, "alliance")), ==, "report");
	g_assert_cmpstr(json_string_value(json_object_get(r, "kind")), ==, "compare");
	g_assert_true(json_is_true(json_object_get(json_object_get(r, "filters"), "research")));
	g_assert_cmpstr(json_string_value(json_object_get(r, "instrument")), ==, "ap-end");
	CLOSE(at(r, "scale/max"), 40);
	/* v17 (no consent) is not in it */
	CLOSE(at(r, "visits"), 16);
	CLOSE(at(r, "modalities/video/visits"), 8);
	CLOSE(at(r, "modalities/video/clients"), 4);
	/* good vs poor video (report_class.c): these contexts predate video_class */
	CLOSE(at(r, "video_class/unclassified"), 8);
	CLOSE(at(r, "video_class/good/n"), 0);
	CLOSE(at(r, "video_class/poor/n"), 0);
	json_t *scores = json_object_get(r, "scores");
	g_assert_cmpint(json_array_size(scores), ==, 5);
	json_t *total = json_array_get(scores, 0);
	g_assert_cmpstr(json_string_value(json_object_get(total, "score")), ==, "total");
	CLOSE(at(total, "video/n"), 8);
	CLOSE(at(total, "video/mean"), 28.6125);
	CLOSE(at(total, "video/sd"), 6.712767685537761);
	CLOSE(at(total, "in_person/mean"), 31.05);
	CLOSE(at(total, "in_person/sd"), 6.702238432046416);
	CLOSE(at(total, "hedges_g/g"), -0.3435771440568446);
	CLOSE(at(total, "hedges_g/se"), 0.503675405578777);
	CLOSE(at(total, "hedges_g/lo"), -1.330762798889852);
	CLOSE(at(total, "hedges_g/hi"), 0.643608510776163);
	CLOSE(at(total, "hedges_g/d"), -0.3633989023678164);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(total, "hedges_g"), "direction")),
		==, "video - in_person");
	/* subscales (each a quarter of the total here): the same g; names sorted after total */
	json_t *bond = json_array_get(scores, 1);
	g_assert_cmpstr(json_string_value(json_object_get(bond, "score")), ==, "bond");
	CLOSE(at(bond, "hedges_g/g"), -0.3435771440568446);
	CLOSE(at(bond, "scale/max"), 10);
	CLOSE(at(bond, "video/mean"), 28.6125 / 4);
	/* quality (video visits) */
	CLOSE(at(r, "quality/mean_mos/n"), 8);
	CLOSE(at(r, "quality/mean_mos/rho"), 0.5952380952380953);
	CLOSE(at(r, "quality/mean_mos/lo"), -0.25920757555007307);
	CLOSE(at(r, "quality/mean_mos/hi"), 0.9270151740772906);
	CLOSE(at(r, "quality/mean_mos/p"), 0.11952980613879259);
	CLOSE(at(r, "quality/loss_pct/rho"), -0.5952380952380953);
	CLOSE(at(r, "quality/freeze_s/rho"), -0.523809523809524);
	CLOSE(at(r, "quality/freeze_s/lo"), -0.9080490281779343);
	CLOSE(at(r, "quality/freeze_s/hi"), 0.33915704884415177);
	CLOSE(at(r, "quality/freeze_s/p"), 0.18272075053971484);
	CLOSE(at(r, "quality/incidents/rho"), -0.6024533658898499);
	CLOSE(at(r, "quality/incidents/hi"), 0.25031861084834756);
	/* congruence */
	CLOSE(at(r, "congruence/all/n"), 16);
	CLOSE(at(r, "congruence/all/mean_abs_diff"), 2.71875);
	CLOSE(at(r, "congruence/all/mean_diff_client_minus_therapist"), -1.48125);
	CLOSE(at(r, "congruence/all/pearson/r"), 0.914791806297228);
	CLOSE(at(r, "congruence/all/pearson/lo"), 0.7668093416954845);
	CLOSE(at(r, "congruence/all/pearson/hi"), 0.9704361827315102);
	g_assert_cmpfloat(fabs(at(r, "congruence/all/pearson/p") - 6.964132468032191e-07), <, 1e-12);
	CLOSE(at(r, "congruence/video/n"), 8);
	/* the formation curve */
	json_t *fv = json_object_get(json_object_get(r, "formation"), "video");
	g_assert_cmpint(json_array_size(fv), ==, 4);
	CLOSE(at(fv, "0/visit"), 1);
	CLOSE(at(fv, "0/n"), 2);
	CLOSE(at(fv, "0/mean"), 32.0);
	CLOSE(at(fv, "0/lo"), -18.82481894572838);
	CLOSE(at(fv, "0/hi"), 82.82481894572838);
	CLOSE(at(fv, "3/mean"), 25.55);
	CLOSE(at(fv, "3/lo"), 3.3141417112438383);
	json_t *fp = json_object_get(json_object_get(r, "formation"), "in_person");
	CLOSE(at(fp, "1/mean"), 35.75);
	CLOSE(at(fp, "1/lo"), -18.251370129836396);
	json_decref(r);

	/* research:false takes v17 in; modality filter leaves one group: g null, n kept */
	r = build(fx, PROTO_REPORT_COMPARE, "{\"research\":false}");
	CLOSE(at(r, "visits"), 17);
	g_assert_true(json_is_false(json_object_get(json_object_get(r, "filters"), "research")));
	json_decref(r);
	r = build(fx, PROTO_REPORT_COMPARE, "{\"modality\":\"video\"}");
	total = json_array_get(json_object_get(r, "scores"), 0);
	CLOSE(at(total, "hedges_g/n_video"), 8);
	CLOSE(at(total, "hedges_g/n_in_person"), 0);
	g_assert_true(is_null_at(json_object_get(total, "hedges_g"), "g"));
	g_assert_true(is_null_at(json_object_get(total, "in_person"), "mean"));
	json_decref(r);
	/* an instrument nobody answered: nothing analysed, nothing invented */
	r = build(fx, PROTO_REPORT_COMPARE, "{\"instrument\":\"srs\"}");
	CLOSE(at(r, "visits"), 0);
	g_assert_cmpint(json_array_size(json_object_get(r, "scores")), ==, 0);
	g_assert_true(json_is_null(json_object_get(r, "scale")));
	g_assert_true(is_null_at(json_object_get(json_object_get(r, "quality"), "freeze_s"), "rho"));
	json_decref(r);
}

/* --- summary on the fixed data ----------------------------------------------------------------- */

/* numpy: np.polyfit(visit_number, total, 1)[0] per client; per therapist
 * the slope of client-centred values; ceiling share np.mean(y >= 40 - 1e-6) */
static void test_summary_fixed(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, N_FIXED + 1);
	json_t *r = build(fx, PROTO_REPORT_SUMMARY, NULL);
	char *text = json_dumps(r, JSON_INDENT(1));
	g_test_message("%s", text);
	free(text);
	g_assert_true(json_is_false(json_object_get(json_object_get(r, "filters"), "research")));
	CLOSE(at(r, "visits"), 17);                       /* clinical: v17 included */
	json_t *th = json_object_get(r, "therapists"), *cl = json_object_get(r, "clients");
	g_assert_cmpint(json_array_size(th), ==, 2);
	g_assert_cmpint(json_array_size(cl), ==, 5);
	json_t *t1 = json_array_get(th, 0), *t2 = json_array_get(th, 1);
	g_assert_cmpstr(json_string_value(json_object_get(t1, "therapist_code")), ==, "T-1");
	CLOSE(at(t1, "visits"), 8);
	CLOSE(at(t1, "total/mean"), 28.75);
	CLOSE(at(t1, "trend_per_visit"), 1.47);
	CLOSE(at(t1, "ceiling/share"), 0);
	g_assert_true(json_is_false(json_object_get(json_object_get(t1, "ceiling"), "flag")));
	CLOSE(at(t1, "alerts"), 0);
	g_assert_cmpint(json_array_size(json_object_get(t1, "clients")), ==, 2);
	/* T-2 has C-5's visit too (9 visits, 9 scored): 3 of 9 at 40 */
	CLOSE(at(t2, "visits"), 9);
	CLOSE(at(t2, "scored"), 9);
	CLOSE(at(t2, "ceiling/share"), 3.0 / 9);
	CLOSE(at(t2, "ceiling/at_max"), 3);
	CLOSE(at(t2, "modalities/video"), 5);
	json_t *c1 = json_array_get(cl, 0), *c3 = json_array_get(cl, 2), *c5 = json_array_get(cl, 4);
	g_assert_cmpstr(json_string_value(json_object_get(c1, "client_code")), ==, "C-1");
	CLOSE(at(c1, "total/mean"), 30.925);
	CLOSE(at(c1, "total/sd"), 2.5078210994141243);
	CLOSE(at(c1, "trend_per_visit"), 1.67);
	CLOSE(at(c1, "first_total"), 28.0);
	CLOSE(at(c1, "last_total"), 34.0);
	CLOSE(at(c1, "therapist_total/mean"), (30.0 + 31.0 + 32.5 + 33.0) / 4);
	CLOSE(at(c3, "total/mean"), 39.0);
	CLOSE(at(c3, "trend_per_visit"), 1.2);
	CLOSE(at(c3, "ceiling/share"), 0.75);
	g_assert_true(json_is_true(json_object_get(json_object_get(c3, "ceiling"), "flag")));
	/* one visit: no trend, no SD, no flag (fewer than 3 answers) */
	g_assert_cmpstr(json_string_value(json_object_get(c5, "client_code")), ==, "C-5");
	CLOSE(at(c5, "visits"), 1);
	g_assert_true(is_null_at(c5, "trend_per_visit"));
	g_assert_true(is_null_at(json_object_get(c5, "total"), "sd"));
	g_assert_true(json_is_false(json_object_get(json_object_get(c5, "ceiling"), "flag")));
	json_decref(r);

	/* research:true drops C-5; a therapist filter */
	r = build(fx, PROTO_REPORT_SUMMARY, "{\"research\":true}");
	g_assert_cmpint(json_array_size(json_object_get(r, "clients")), ==, 4);
	json_decref(r);
	r = build(fx, PROTO_REPORT_SUMMARY, "{\"therapist\":\"T-1\"}");
	g_assert_cmpint(json_array_size(json_object_get(r, "therapists")), ==, 1);
	g_assert_cmpint(json_array_size(json_object_get(r, "clients")), ==, 2);
	json_decref(r);
	/* without instrument definitions: no ceiling share, never a flag */
	fx->env.instruments = NULL;
	r = build(fx, PROTO_REPORT_SUMMARY, NULL);
	g_assert_true(json_is_null(json_object_get(r, "scale")));
	c3 = json_array_get(json_object_get(r, "clients"), 2);
	g_assert_true(is_null_at(json_object_get(c3, "ceiling"), "share"));
	g_assert_true(json_is_false(json_object_get(json_object_get(c3, "ceiling"), "flag")));
	json_decref(r);
}

/* --- visits, visit ------------------------------------------------------------------------------ */

static void test_visits_and_visit(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, N_FIXED + 1);
	json_t *r = build(fx, PROTO_REPORT_VISITS, NULL);
	CLOSE(at(r, "n"), 17);
	json_decref(r);
	r = build(fx, PROTO_REPORT_VISITS, "{\"research\":true}");
	CLOSE(at(r, "n"), 16);
	json_decref(r);
	r = build(fx, PROTO_REPORT_VISITS, "{\"client\":\"C-3\",\"modality\":\"in_person\"}");
	CLOSE(at(r, "n"), 2);
	json_t *v = json_array_get(json_object_get(r, "visits"), 0);
	g_assert_cmpstr(json_string_value(json_object_get(v, "visit_id")), ==, "v10");
	CLOSE(at(v, "visit_number"), 2);
	CLOSE(at(v, "client_total"), 40);
	g_assert_true(is_null_at(v, "mean_mos"));
	json_decref(r);
	/* dates: the first week only (visit 1 of each client) */
	r = build(fx, PROTO_REPORT_VISITS, "{\"from\":\"2023-11-14\",\"to\":\"2023-11-15\",\"limit\":3}");
	CLOSE(at(r, "n"), 3);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(r, "filters"), "from")), ==,
		"2023-11-14T00:00:00.000000Z");
	json_decref(r);
	r = build(fx, PROTO_REPORT_VISIT, "{\"visit_id\":\"v14\"}");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(r, "visit"), "client_code")), ==, "C-4");
	g_assert_cmpint(json_array_size(json_object_get(r, "pulses")), ==, 2);
	g_assert_cmpint(json_array_size(json_object_get(r, "incidents")), ==, 7);
	CLOSE(at(r, "pulses/0/quality/freeze_s"), 35.0);
	CLOSE(at(r, "pulses/0/answer/scores/total"), 19.5);
	CLOSE(at(r, "pulses/1/answer/items/bond"), 7.0);
	json_decref(r);
	/* unknown visit: 476; non-consented visit under research: 476 */
	proto_report_filters f;
	proto_error err;
	json_t *fj = json_pack("{s:s}", "visit_id", "nope");
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	g_assert_null(report_build(fx->st, PROTO_REPORT_VISIT, &f, &fx->env, G_USEC_PER_SEC, &err));
	g_assert_cmpint(err.code, ==, PROTO_ERR_NO_SUCH_VISIT);
	json_decref(fj);
	fj = json_pack("{s:s, s:b}", "visit_id", "v17", "research", 1);
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	g_assert_null(report_build(fx->st, PROTO_REPORT_VISIT, &f, &fx->env, G_USEC_PER_SEC, &err));
	g_assert_cmpint(err.code, ==, PROTO_ERR_NO_SUCH_VISIT);
	json_decref(fj);
	/* no report carries keys or invites: the store has none, and nothing
	 * named like one appears */
	r = build(fx, PROTO_REPORT_VISIT, "{\"visit_id\":\"v01\"}");
	char *t = json_dumps(r, JSON_COMPACT);
	g_assert_null(strstr(t, "invite"));
	g_assert_null(strstr(t, "_key"));
	free(t);
	json_decref(r);
}

/* --- exports --------------------------------------------------------------------------------- */

static char *export_text(fixture *fx, report_export_kind kind, report_format format,
		const char *filters, gint64 *rows) {
	char *p = g_build_filename(fx->dir, "export.out", NULL);
	FILE *out = fopen(p, "w");
	g_assert_nonnull(out);
	proto_report_filters f;
	proto_error err;
	json_t *fj = filters ? json_loads(filters, 0, NULL) : NULL;
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	*rows = report_export(fx->st, kind, &f, format, out, NULL, 0, NULL, &err);
	json_decref(fj);
	fclose(out);
	g_assert_cmpint(*rows, >=, 0);
	char *text = NULL;
	g_assert_true(g_file_get_contents(p, &text, NULL, NULL));
	g_unlink(p);
	g_free(p);
	return text;
}

static void test_exports(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, N_FIXED + 1);
	g_assert_cmpint(store_quality_sample(fx->st, "v01", "client_up", "audio", T0 + 5000000,
		"{\"seconds\":5,\"packets\":249,\"expected\":250,\"lost\":1,\"loss_pct\":0.4,\"jitter_ms\":3.5,"
		"\"bitrate_kbps\":41.2,\"stalls\":0,\"stall_s\":0}"), ==, 0);
	g_assert_cmpint(store_quality_sample(fx->st, "v01", "client_down", "browser", T0 + 6000000,
		"{\"inbound_audio\":{\"concealedSamples\":10,\"totalSamplesReceived\":48000}}"), ==, 0);
	g_assert_cmpint(store_quality_sample(fx->st, "v17", "client_up", "audio", T0 + 5000000,
		"{\"seconds\":5}"), ==, 0);
	g_assert_cmpint(store_sync(fx->st), ==, 0);
	gint64 n = 0;
	/* answers: one row per item, consented visits only (16 x 2 pulses x 4 items) */
	char *csv = export_text(fx, REPORT_EXPORT_ANSWERS, REPORT_FORMAT_CSV, NULL, &n);
	g_assert_cmpint(n, ==, 16 * 2 * 4);
	gchar **lines = g_strsplit(csv, "\r\n", -1);
	g_assert_cmpstr(lines[0], ==, "visit_id,therapist_code,client_code,modality,visit_number,"
		"visit_created_at,pulse_id,role,kind,instrument_id,instrument_version,language,trigger,"
		"delivered_via,pulse_created_at,status,first_at,answered_at,time_to_answer_ms,final,dismissed,"
		"item_id,value");
	g_assert_cmpstr(lines[1], ==, "v01,T-1,C-1,video,1,2023-11-14T22:13:20.000000Z,v01-ce,client,end,"
		"ap-end,1.0,en,end,event,2023-11-14T23:03:20.000001Z,answered,2023-11-14T23:03:20.001001Z,"
		"2023-11-14T23:03:20.001001Z,1,true,false,bond,7");
	g_assert_cmpuint(g_strv_length(lines), ==, (guint)n + 2);     /* header + rows + "" */
	g_assert_null(strstr(csv, "v17"));
	g_assert_null(strstr(csv, "C-5"));
	g_strfreev(lines);
	g_free(csv);
	/* visits: one row per visit, the same columns as the codebook */
	csv = export_text(fx, REPORT_EXPORT_VISITS, REPORT_FORMAT_CSV, "{\"client\":\"C-4\"}", &n);
	g_assert_cmpint(n, ==, 4);
	lines = g_strsplit(csv, "\r\n", -1);
	g_assert_cmpstr(lines[0], ==, "visit_id,therapist_code,client_code,modality,state,visit_number,"
		"created_at,admitted_at,ended_at,closed_at,end_reason,client_instrument,client_total,therapist_instrument,"
		"therapist_total,mean_mos,loss_pct,freeze_s,incidents,alerts,instance_id,video_class");
	g_assert_cmpstr(lines[2], ==, "v14,T-2,C-4,video,ended,2,2023-11-21T22:13:23.000000Z,,"
		"2023-11-21T23:03:23.000000Z,,,ap-end,19.5,ap-therapist-end,28,2.9,6,35,7,0,,");
	g_strfreev(lines);
	g_free(csv);
	/* samples: metrics as columns; the browser's view as JSON, quoted */
	csv = export_text(fx, REPORT_EXPORT_SAMPLES, REPORT_FORMAT_CSV, NULL, &n);
	g_assert_cmpint(n, ==, 2);
	lines = g_strsplit(csv, "\r\n", -1);
	g_assert_cmpstr(lines[1], ==, "v01,video,client_up,audio,2023-11-14T22:13:25.000000Z,5,249,250,1,"
		"0.4,3.5,,,41.2,,,,0,0,,,,");
	g_assert_cmpstr(lines[2], ==, "v01,video,client_down,browser,2023-11-14T22:13:26.000000Z,,,,,,,,,,,,,,,,,,"
		"\"{\"\"inbound_audio\"\":{\"\"concealedSamples\"\":10,\"\"totalSamplesReceived\"\":48000}}\"");
	g_strfreev(lines);
	g_free(csv);
	/* JSON: the same columns, typed values */
	char *js = export_text(fx, REPORT_EXPORT_ANSWERS, REPORT_FORMAT_JSON, "{\"client\":\"C-1\"}", &n);
	json_error_t jerr;
	json_t *doc = json_loads(js, 0, &jerr);
	if(doc == NULL)
		g_error("export JSON: %s: %s", jerr.text, js);
	g_assert_cmpstr(json_string_value(json_object_get(doc, "export")), ==, "answers");
	g_assert_true(json_is_true(json_object_get(doc, "research_only")));
	g_assert_cmpint(json_array_size(json_object_get(doc, "rows")), ==, n);
	g_assert_cmpint(json_array_size(json_object_get(doc, "columns")), ==, 23);
	json_t *row = json_array_get(json_object_get(doc, "rows"), 0);
	g_assert_true(json_is_true(json_object_get(row, "final")));
	g_assert_true(json_is_integer(json_object_get(row, "visit_number")));
	g_assert_cmpstr(json_string_value(json_object_get(row, "answered_at")), ==, "2023-11-14T23:03:20.001001Z");
	json_decref(doc);
	g_free(js);
	js = export_text(fx, REPORT_EXPORT_SAMPLES, REPORT_FORMAT_JSON, "{\"client\":\"C-9\"}", &n);
	g_assert_cmpint(n, ==, 0);
	doc = json_loads(js, 0, &jerr);
	g_assert_nonnull(doc);
	g_assert_cmpint(json_array_size(json_object_get(doc, "rows")), ==, 0);
	json_decref(doc);
	g_free(js);
	/* column lists */
	const char *const *cols = report_export_columns(REPORT_EXPORT_SAMPLES);
	g_assert_cmpstr(cols[0], ==, "visit_id");
	g_assert_cmpstr(report_export_name(REPORT_EXPORT_VISITS), ==, "visits");
}

static void test_helpers(void) {
	char *f = report_csv_field("plain");
	g_assert_cmpstr(f, ==, "plain");
	g_free(f);
	f = report_csv_field("a,b \"c\"\nd");
	g_assert_cmpstr(f, ==, "\"a,b \"\"c\"\"\nd\"");
	g_free(f);
	f = report_csv_field(NULL);
	g_assert_cmpstr(f, ==, "");
	g_free(f);
	char buf[40];
	g_assert_cmpstr(report_iso_time(0, buf, sizeof(buf)), ==, "1970-01-01T00:00:00.000000Z");
	g_assert_cmpstr(report_iso_time(1714557600500001LL, buf, sizeof(buf)), ==, "2024-05-01T10:00:00.500001Z");
	double x[] = { 1, 2, 3, 4 }, y[] = { 2, 4, 5, 9 }, c[] = { 1, 1, 1, 1 };
	CLOSE(report_slope(x, y, 4), 2.2);                      /* np.polyfit(x, y, 1)[0] */
	g_assert_true(isnan(report_slope(c, y, 4)));
	g_assert_true(isnan(report_slope(x, y, 1)));
	proto_report_filters pf;
	memset(&pf, 0, sizeof(pf));
	pf.research = -1;
	store_report_filter sf;
	report_store_filter(PROTO_REPORT_COMPARE, &pf, &sf);
	g_assert_true(sf.research_only);
	report_store_filter(PROTO_REPORT_SUMMARY, &pf, &sf);
	g_assert_false(sf.research_only);
	pf.research = 0;
	report_store_filter(PROTO_REPORT_COMPARE, &pf, &sf);
	g_assert_false(sf.research_only);
	pf.limit = 5;
	report_store_filter(PROTO_REPORT_SUMMARY, &pf, &sf);
	g_assert_cmpint(sf.limit, ==, 0);                     /* limits apply to the visits list only */
	report_store_filter(PROTO_REPORT_VISITS, &pf, &sf);
	g_assert_cmpint(sf.limit, ==, 5);
}

/* --- good and poor calls (report_class.c) ------------------------------------------------------ */

static void test_class_compare(void) {
	json_t *rows = json_loads("["
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":30,\"video_class\":\"good\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":32,\"video_class\":\"good\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":34,\"video_class\":\"good\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":20,\"video_class\":\"poor\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":24,\"video_class\":\"poor\"},"
		/* unclassified: no class (older rows), a class that is no class */
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":11,\"video_class\":null},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":12,\"video_class\":\"meh\"},"
		/* not counted: in person, another instrument, no total */
		"{\"modality\":\"in_person\",\"client_instrument\":\"ap-end\",\"client_total\":1,\"video_class\":\"poor\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"other\",\"client_total\":1,\"video_class\":\"poor\"},"
		"{\"modality\":\"video\",\"client_instrument\":\"ap-end\",\"client_total\":null,\"video_class\":\"poor\"}"
		"]", 0, NULL);
	g_assert_nonnull(rows);
	json_t *c = report_class_compare(rows, "ap-end");
	json_t *good = json_object_get(c, "good"), *poor = json_object_get(c, "poor");
	g_assert_cmpint(json_integer_value(json_object_get(good, "n")), ==, 3);
	g_assert_cmpint(json_integer_value(json_object_get(poor, "n")), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(c, "unclassified")), ==, 2);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(good, "mean")), 32.0, EPS);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(good, "sd")), 2.0, EPS);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(poor, "mean")), 22.0, EPS);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(poor, "sd")), sqrt(8.0), EPS);
	/* Hedges' g, poor - good, is stats.c's (tested there against scipy) */
	double a[] = { 20, 24 }, b[] = { 30, 32, 34 };
	stats_effect e;
	g_assert_cmpint(stats_hedges_g(a, 2, b, 3, &e), ==, 0);
	json_t *g = json_object_get(c, "hedges_g");
	g_assert_cmpstr(json_string_value(json_object_get(g, "direction")), ==, "poor - good");
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(g, "g")), e.g, EPS);
	g_assert_cmpfloat(e.g, <, 0);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(g, "lo")), e.lo, EPS);
	json_decref(c);
	/* no instrument: nothing counted, statistics null next to their n */
	c = report_class_compare(rows, NULL);
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(c, "good"), "n")), ==, 0);
	g_assert_true(json_is_null(json_object_get(json_object_get(c, "good"), "mean")));
	g_assert_true(json_is_null(json_object_get(json_object_get(c, "hedges_g"), "g")));
	json_decref(c);
	json_decref(rows);
}

static void test_class_visit(void) {
	json_t *v = json_loads("{\"visit\":{},\"legs\":{\"client_up\":{\"audio\":{\"loss_pct\":12,\"packets\":900}}},"
		"\"pulses\":[{\"pulse_id\":\"p1\",\"quality\":{\"legs\":{\"therapist_up\":{\"video\":"
		"{\"fps\":3,\"packets\":50}}}}},{\"pulse_id\":\"p2\",\"quality\":null}],"
		"\"alerts\":[{\"quality\":{\"legs\":{\"client_down\":{\"audio\":{\"rtt_ms\":700}}}}}]}", 0, NULL);
	g_assert_nonnull(v);
	proto_report_filters f;
	memset(&f, 0, sizeof(f));
	f.research = -1;
	json_t *r = report_visit_from(v, &f);
	json_t *leg = json_object_get(json_object_get(json_object_get(r, "legs"), "client_up"), "audio");
	g_assert_cmpstr(json_string_value(json_object_get(leg, "class")), ==, "poor");
	g_assert_cmpstr(json_string_value(json_array_get(json_object_get(leg, "poor_reasons"), 0)), ==, "loss");
	json_t *q = json_object_get(json_array_get(json_object_get(r, "pulses"), 0), "quality");
	g_assert_cmpstr(json_string_value(json_object_get(q, "video_class")), ==, "poor");
	g_assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r, "pulses"), 1), "quality")));
	q = json_object_get(json_array_get(json_object_get(r, "alerts"), 0), "quality");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(q,
		"legs"), "client_down"), "audio"), "class")), ==, "poor");
	/* the row it was built from is left as it was */
	leg = json_object_get(json_object_get(json_object_get(v, "legs"), "client_up"), "audio");
	g_assert_null(json_object_get(leg, "class"));
	json_decref(r);
	json_decref(v);
}

/* --- planted effects ------------------------------------------------------------------------------- */

/* 40 clients x 8 visits (GRand, seed 20240501), modality alternating per
 * visit (half the clients start online), 2 therapists. End total ~
 * N(28, 4) in person; online N(28 - 2, 4) with a freeze term: freeze
 * seconds f ~ Exp(mean 10), total -= 0.2 (f - 10), noise SD sqrt(16 -
 * 0.04 * 100) so that both groups' SD is 4: the planted d is -0.5, and the
 * freeze seconds are negatively related to the total (population
 * Spearman about -0.45). Totals rounded to 0.1 and kept in 0..40. */
static void test_planted(fixture *fx, gconstpointer data) {
	GRand *rng = g_rand_new_with_seed(20240501);
	int k = 0;
	for(int c = 0; c < 40; c++) {
		for(int v = 0; v < 8; v++) {
			gboolean online = ((v + c) % 2) == 0;
			/* Box-Muller normal */
			double u1 = g_rand_double(rng), u2 = g_rand_double(rng);
			double z = sqrt(-2 * log(1 - u1)) * cos(2 * G_PI * u2);
			double total, f = NAN;
			if(online) {
				f = -10 * log(1 - g_rand_double(rng));
				total = 26 - 0.2 * (f - 10) + sqrt(12.0) * z;
			} else {
				total = 28 + 4 * z;
			}
			total = round(CLAMP(total, 0, 40) * 10) / 10;
			char id[16], client[16];
			g_snprintf(id, sizeof(id), "g%03d", k++);
			g_snprintf(client, sizeof(client), "C-%02d", c);
			vrow r = { id, c % 2 ? "T-1" : "T-2", client, online ? "video" : "in_person",
				total, NAN, online ? 4.0 - f / 50 : NAN, online ? 1.0 : NAN, f, 0, TRUE };
			add_visit(fx->st, &r, T0 + v * 7 * DAY + c * 1000);
		}
	}
	g_rand_free(rng);
	g_assert_cmpint(store_sync(fx->st), ==, 0);
	json_t *r = build(fx, PROTO_REPORT_COMPARE, NULL);
	json_t *total = json_array_get(json_object_get(r, "scores"), 0);
	double g = at(total, "hedges_g/g"), lo = at(total, "hedges_g/lo"), hi = at(total, "hedges_g/hi");
	g_test_message("planted d = -0.5: g = %.3f [%.3f, %.3f], n = %g + %g", g, lo, hi,
		at(total, "hedges_g/n_video"), at(total, "hedges_g/n_in_person"));
	CLOSE(at(total, "hedges_g/n_video"), 160);
	g_assert_cmpfloat(lo, <=, -0.5);
	g_assert_cmpfloat(hi, >=, -0.5);
	g_assert_cmpfloat(hi, <, 0);               /* and the difference is detected */
	double rho = at(r, "quality/freeze_s/rho"), rlo = at(r, "quality/freeze_s/lo"),
		rhi = at(r, "quality/freeze_s/hi");
	g_test_message("freeze seconds vs total: rho = %.3f [%.3f, %.3f]", rho, rlo, rhi);
	CLOSE(at(r, "quality/freeze_s/n"), 160);
	g_assert_cmpfloat(rhi, <, 0);
	/* MOS falls with freezes here (4 - f/50): positive relation with the total */
	g_assert_cmpfloat(at(r, "quality/mean_mos/lo"), >, 0);
	/* the formation curve has all 8 visit numbers, 20 visits each per modality */
	json_t *fv = json_object_get(json_object_get(r, "formation"), "video");
	g_assert_cmpint(json_array_size(fv), ==, 8);
	CLOSE(at(fv, "7/n"), 20);
	json_decref(r);
}

/* A read that cannot finish in time: 496, and the abandoned read ends
 * cleanly (the store is closed in teardown while it may still run). */
static void block_writer(store_rc rc, const char *error, void *user) {
	g_usleep(300000);
}

static void test_timeout(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, 4);
	/* hold the writer thread for 300 ms with a slow callback */
	store_visit_rec r = { "slow", "T-1", "C-9", "video", T0 };
	g_assert_cmpint(store_visit_create(fx->st, &r, block_writer, NULL), ==, 0);
	proto_report_filters f;
	proto_error err;
	g_assert_cmpint(proto_report_filters_parse(NULL, &f, &err), ==, 0);
	g_assert_null(report_build(fx->st, PROTO_REPORT_VISITS, &f, &fx->env, 50000, &err));
	g_assert_cmpint(err.code, ==, PROTO_ERR_STORE);
	g_test_message("%s", err.reason);
	/* afterwards reads work again */
	json_t *v = report_build(fx->st, PROTO_REPORT_VISITS, &f, &fx->env, 5 * G_USEC_PER_SEC, &err);
	g_assert_nonnull(v);
	CLOSE(at(v, "n"), 5);
	json_decref(v);
}

/* --- client_history --------------------------------------------------------------------------------- */

static json_t *history(fixture *fx, const char *therapist, const char *visit_id, int limit, int want_code) {
	proto_error err = { 0 };
	json_t *h = report_history_build(fx->st, therapist, visit_id, limit, 10 * G_USEC_PER_SEC, &err);
	if(want_code) {
		g_assert_null(h);
		g_assert_cmpint(err.code, ==, want_code);
		return NULL;
	}
	if(h == NULL)
		g_error("report_history_build: %d %s", err.code, err.reason);
	return h;
}

static void erased(store_rc rc, gint64 rows, const char *error, void *user) {
	g_assert_cmpint(rc, ==, STORE_OK);
	*(gint64 *)user = rows;
}

static void test_history(fixture *fx, gconstpointer data) {
	fill_fixed(fx->st, 8);                  /* v01..v04: T-1 with C-1; v05..v08: T-1 with C-2 */
	/* C-1 also saw T-2 once: not T-1's to see */
	vrow other = { "x01", "T-2", "C-1", "video", 12.0, 13.0, NAN, NAN, NAN, 0, TRUE };
	add_visit(fx->st, &other, T0 + 30 * DAY);
	/* v03: an in-session pulse of each role, the client's below the cutoff with an alert
	 * whose quality context has a poor video leg */
	static const char *const q = "{\"window_s\":60,\"legs\":{\"client_up\":{\"video\":"
		"{\"fps\":3,\"packets\":500}}}}";
	gint64 t = T0 + 2 * 7 * DAY + 600000000LL;
	store_pulse_rec p = { "v03-p1", "v03", "client", "in_session", "ap-session", "1.0", "en", "schedule",
		"datachannel", t, t + 90000000 };
	g_assert_cmpint(store_pulse_create(fx->st, &p, ok_done, (void *)"pulse"), ==, 0);
	g_assert_cmpint(store_pulse_quality(fx->st, "v03-p1", q, ok_done, (void *)"quality"), ==, 0);
	store_item_value it[1] = { { "session", 3.5 } };
	store_score sc[1] = { { "total", 3.5 } };
	store_answer_rec a = { "v03-p1", TRUE, t + 5000, 1, TRUE, 1, it, 1, sc };
	g_assert_cmpint(store_answer(fx->st, &a, ok_done, (void *)"answer"), ==, 0);
	store_alert_rec al = { "v03", "v03-p1", "below_cutoff", "total", 3.5, 5.0, q, t + 6000 };
	g_assert_cmpint(store_alert(fx->st, &al, ok_done, (void *)"alert"), ==, 0);
	store_pulse_rec tp = { "v03-p2", "v03", "therapist", "in_session", "ap-session", "1.0", "en", "therapist",
		"datachannel", t + 1, t + 90000001 };
	g_assert_cmpint(store_pulse_create(fx->st, &tp, ok_done, (void *)"pulse"), ==, 0);
	g_assert_cmpint(store_sync(fx->st), ==, 0);

	json_t *h = history(fx, "T-1", "v04", 20, 0);
	g_assert_cmpstr(json_string_value(json_object_get(h, "alliance")), ==, "client_history");
	g_assert_cmpstr(json_string_value(json_object_get(h, "client_code")), ==, "C-1");
	g_assert_cmpstr(json_string_value(json_object_get(h, "therapist_code")), ==, "T-1");
	CLOSE(at(h, "n"), 4);
	CLOSE(at(h, "older"), 0);
	json_t *vs = json_object_get(h, "visits");
	static const char *const ids[4] = { "v01", "v02", "v03", "v04" };
	for(int i = 0; i < 4; i++) {
		json_t *v = json_array_get(vs, i);
		g_assert_cmpstr(json_string_value(json_object_get(v, "visit_id")), ==, ids[i]);
		g_assert_true(json_is_true(json_object_get(v, "current")) == (i == 3));
		CLOSE(at(v, "number"), i + 1);
		g_assert_null(json_object_get(v, "visit_number"));      /* would count other therapists' */
		CLOSE(at(v, "client_end/total"), FIXED[i].total);
		CLOSE(at(v, "client_end/scores/bond"), FIXED[i].total / 4);   /* a subscale */
		CLOSE(at(v, "therapist_end/total"), FIXED[i].ttotal);
		g_assert_cmpstr(json_string_value(json_object_get(json_object_get(v, "client_end"), "instrument_id")),
			==, "ap-end");
	}
	json_t *v3 = json_array_get(vs, 2);
	json_t *pulses = json_object_get(v3, "pulses");
	g_assert_cmpint(json_array_size(pulses), ==, 2);
	CLOSE(at(v3, "pulses/0/total"), 3.5);
	CLOSE(at(v3, "pulses/0/items/session"), 3.5);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(pulses, 1), "role")), ==, "therapist");
	g_assert_true(json_is_null(json_object_get(json_array_get(pulses, 1), "total")));   /* unanswered */
	json_t *alert = json_array_get(json_object_get(v3, "alerts"), 0);
	g_assert_cmpstr(json_string_value(json_object_get(alert, "rule")), ==, "below_cutoff");
	g_assert_cmpstr(json_string_value(json_object_get(alert, "pulse_kind")), ==, "in_session");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(alert, "quality"), "video_class")),
		==, "poor");
	g_assert_cmpint(json_array_size(json_object_get(json_array_get(vs, 0), "alerts")), ==, 0);
	json_decref(h);
	/* the limit keeps the most recent */
	h = history(fx, "T-1", "v02", 2, 0);
	CLOSE(at(h, "n"), 2);
	CLOSE(at(h, "older"), 2);
	CLOSE(at(h, "visits/0/number"), 3);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(json_object_get(h, "visits"), 0),
		"visit_id")), ==, "v03");
	json_decref(h);
	/* T-2 sees only its own visit with C-1, and none of T-1's */
	h = history(fx, "T-2", "x01", 20, 0);
	CLOSE(at(h, "n"), 1);
	CLOSE(at(h, "visits/0/client_end/total"), 12.0);
	json_decref(h);
	history(fx, "T-2", "v04", 20, PROTO_ERR_UNAUTHORIZED);
	history(fx, "T-1", "x01", 20, PROTO_ERR_UNAUTHORIZED);
	history(fx, "T-1", "no-such-visit", 20, PROTO_ERR_NO_SUCH_VISIT);
	/* forgotten (once its visits are closed, as store_forget_client wants): gone */
	static const char *const c1[] = { "v01", "v02", "v03", "v04", "x01" };
	for(size_t i = 0; i < G_N_ELEMENTS(c1); i++)
		g_assert_cmpint(store_visit_state(fx->st, c1[i], "closed", T0 + 35 * DAY, ok_done, (void *)"close"), ==, 0);
	gint64 rows = -1;
	g_assert_cmpint(store_forget_client(fx->st, "C-1", T0 + 40 * DAY, erased, &rows), ==, 0);
	g_assert_cmpint(store_sync(fx->st), ==, 0);
	g_assert_cmpint(rows, >, 0);
	history(fx, "T-1", "v04", 20, PROTO_ERR_NO_SUCH_VISIT);
	h = history(fx, "T-1", "v05", 20, 0);                /* another client of T-1: still there */
	CLOSE(at(h, "n"), 4);
	json_decref(h);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/report/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("compare/fixed-against-scipy", test_compare_fixed);
	ADD("summary/fixed-against-numpy", test_summary_fixed);
	ADD("visits-and-visit", test_visits_and_visit);
	ADD("exports", test_exports);
	ADD("compare/planted-effects", test_planted);
	ADD("timeout", test_timeout);
	ADD("client-history", test_history);
#undef ADD
	g_test_add_func("/report/helpers", test_helpers);
	g_test_add_func("/report/class/compare", test_class_compare);
	g_test_add_func("/report/class/visit", test_class_visit);
	return g_test_run();
}
