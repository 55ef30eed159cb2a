/* Unit tests for report_mixed.c: the mixed-model readings and the
 * non-inferiority conclusion of `compare`, on data loaded through the
 * store's API (store.h) into a real store — SQLite, or PostgreSQL under
 * run-pg.sh (tdb.h) — and read back by report_build(), as the plugin's
 * `report` request does.
 *
 * The reference is R's lme4 + lmerTest, run in the test on the same data
 * (rref.h): `mixed` of the total (online − in person), of the formation
 * curve (points per visit number) and of the quality relation (points per
 * MOS point) agree to 1e-4 on three data sets (balanced, unbalanced, many
 * clients with a single visit). Then non-inferiority with planted
 * differences (0 with a generous margin: noninferior; a large negative
 * one: inferior; a margin inside the interval: inconclusive), the margin's
 * sources (filter, default, scaled for a subscale), filters.margin's
 * validation, and a refused model (one client) written as nulls.
 * Those data sets have 3 therapists, so their models are client-only;
 * a set with 6 therapists is checked against lmerTest's
 * (1 | therapist/client) for the total, a subscale, the formation and
 * the quality slope, and one whose client sees two therapists falls back
 * to the client-only model. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "report.h"
#include "report_mixed.h"
#include "store.h"
#include "tdb.h"
#include "rref.h"
#include "lmmset.h"

#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif

#define T0 1700000000000000LL
#define DAY (86400LL * 1000000LL)
#define TOL 1e-4

static void ok_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("store job failed (%s): %s", (const char *)user, error ? error : "?");
}

typedef struct fixture {
	char *dir, *path;
	store *st;
	instrument_set *instruments;
	report_env env;
} fixture;

static void fx_setup(fixture *fx, gconstpointer data) {
	GError *e = NULL;
	fx->dir = g_dir_make_tmp("report-mixed-XXXXXX", &e);
	g_assert_no_error(e);
	fx->path = tdb_create(fx->dir, "alliance.sqlite", TRUE);
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

/* What was loaded, kept for the reference fits: per visit the client
 * index, modality, visit number, end total and (video) MOS. */
typedef struct loaded {
	int n;
	int therapists;             /* therapist of client c: T-(c % therapists); 0 means 3 */
	int crossed;                /* client 0's second visit with therapist 1 */
	int client[400], therapist[400];
	double online[400], vnum[400], total[400], mos[400];
} loaded;

/* One ended visit with a consented client end answer (total and the
 * "bond" subscale = total / 4) and, online, a quality context. */
static void load_visit(store *st, loaded *L, int client, int k, gboolean online, double total,
		double mos) {
	char id[32], cl[16], th[16], pid[40];
	g_snprintf(id, sizeof(id), "m%03d-%02d", client, k);
	g_snprintf(cl, sizeof(cl), "C-%03d", client);
	int therapists = L->therapists > 0 ? L->therapists : 3;
	int ther = client % therapists;
	if(L->crossed && client == 0 && k == 1)
		ther = 1;                               /* client 0's second visit: another therapist */
	g_snprintf(th, sizeof(th), "T-%d", ther);
	g_snprintf(pid, sizeof(pid), "%s-ce", id);
	gint64 t = T0 + k * 7 * DAY + client * 1000000LL;
	store_visit_rec r = { .visit_id = id, .therapist_code = th, .client_code = cl,
		.modality = online ? "video" : "in_person", .created_at_us = t };
	g_assert_cmpint(store_visit_create(st, &r, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_participant_join(st, id, "client", cl, TRUE, "en", t + 1, ok_done,
		(void *)"join"), ==, 0);
	g_assert_cmpint(store_visit_state(st, id, "ended", t + 3000000000LL, ok_done, (void *)"end"), ==, 0);
	store_pulse_rec p = { pid, id, "client", "end", "ap-end", "1.0", "en", "end", "event",
		t + 3000000001LL, t + 3180000000LL };
	g_assert_cmpint(store_pulse_create(st, &p, ok_done, (void *)"pulse"), ==, 0);
	if(online) {
		char *q = g_strdup_printf("{\"window_s\":0,\"measured_s\":3000,\"paths\":{"
			"\"client_to_therapist\":{\"mos\":%.17g,\"loss_pct\":1},"
			"\"therapist_to_client\":{\"mos\":%.17g,\"loss_pct\":1}},"
			"\"freezes\":0,\"freeze_s\":0,\"incidents\":0}", mos, mos);
		g_assert_cmpint(store_pulse_quality(st, pid, q, ok_done, (void *)"quality"), ==, 0);
		g_free(q);
	}
	store_item_value items[1] = { { "bond", total / 4 } };
	store_score scores[2] = { { "total", total }, { "bond", total / 4 } };
	store_answer_rec a = { pid, TRUE, t + 3000001000LL, 1, TRUE, 1, items, 2, scores };
	g_assert_cmpint(store_answer(st, &a, ok_done, (void *)"answer"), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, id, ok_done, (void *)"summarize"), ==, 0);
	int i = L->n++;
	g_assert_cmpint(L->n, <=, 400);
	L->client[i] = client;
	L->therapist[i] = ther;
	L->online[i] = online;
	L->vnum[i] = k + 1;
	L->total[i] = total;
	L->mos[i] = online ? mos : NAN;
}

/* a score on the instrument's 0–40 range in VAS steps of 0.1 */
static double score(double x) {
	x = round(x * 10) / 10;
	return x < 0 ? 0 : x > 40 ? 40 : x;
}

typedef enum { SET_BALANCED, SET_UNBALANCED, SET_SINGLE, SET_THERAPISTS } set_kind;

/* Clients with visits of both modalities (a chance per client), a planted
 * online effect `effect`, between-client SD 3, within SD 2. */
static void load_set(store *st, loaded *L, set_kind kind, guint32 seed, double effect) {
	GRand *r = g_rand_new_with_seed(seed);
	L->n = 0;
	int clients = kind == SET_BALANCED ? 12 : kind == SET_UNBALANCED ? 15 : kind == SET_SINGLE ? 34 : 24;
	/* SET_THERAPISTS: L->therapists therapists with an SD of 2.5 between them */
	double tdev[8] = { 0 };
	for(int t = 0; t < 8; t++)
		tdev[t] = kind == SET_THERAPISTS ? 2.5 * lmmset_normal(r) : 0;
	for(int c = 0; c < clients; c++) {
		int visits = kind == SET_BALANCED ? 4 : kind == SET_UNBALANCED ? g_rand_int_range(r, 1, 7)
			: kind == SET_SINGLE ? (c < 30 ? 1 : 3) : g_rand_int_range(r, 2, 7);
		double b = 3 * lmmset_normal(r) + (L->therapists > 0 ? tdev[(c % L->therapists) % 8] : 0);
		double chance = kind == SET_BALANCED ? 0.5 : g_rand_double(r);
		for(int k = 0; k < visits; k++) {
			gboolean online = kind == SET_BALANCED ? (k + c) % 2 == 0 : g_rand_double(r) < chance;
			double mos = round((2 + 2.4 * g_rand_double(r)) * 1000) / 1000;
			double y = 28 + b + effect * online + 0.3 * k + (online ? 0.8 * (mos - 3) : 0) + 2 * lmmset_normal(r);
			load_visit(st, L, c, k, online, score(y), mos);
		}
	}
	g_assert_cmpint(store_sync(st), ==, 0);
	g_rand_free(r);
}

static json_t *compare(fixture *fx, const char *filters_json) {
	proto_report_filters f;
	proto_error err;
	json_t *fj = filters_json ? json_loads(filters_json, 0, NULL) : NULL;
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	json_t *r = report_build(fx->st, PROTO_REPORT_COMPARE, &f, &fx->env, 10 * G_USEC_PER_SEC, &err);
	if(r == NULL)
		g_error("report_build: %d %s", err.code, err.reason);
	json_decref(fj);
	return r;
}

static json_t *score_obj(json_t *report, const char *name) {
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(report, "scores"), i, s)
		if(!strcmp(json_string_value(json_object_get(s, "score")), name))
			return s;
	g_error("no score %s in the report", name);
	return NULL;
}

static double num_at(const json_t *o, const char *key) {
	json_t *v = json_object_get(o, key);
	if(!json_is_number(v))
		g_error("%s is not a number", key);
	return json_number_value(v);
}

/* `mixed` against the R fit's coefficient 1. */
static void check_mixed(const json_t *mixed, const rref_fit *r, int n, int clients, const char *what) {
	json_t *ci = json_object_get(mixed, "ci");
	g_test_message("%s: estimate %.6f (R %.6f), se %.6f (R %.6f), ci [%.6f, %.6f] (R [%.6f, %.6f]), n %d",
		what, num_at(mixed, "estimate"), r->est[1], num_at(mixed, "se"), r->se[1],
		json_number_value(json_array_get(ci, 0)), json_number_value(json_array_get(ci, 1)),
		r->lo[1], r->hi[1], n);
	g_assert_true(json_is_null(json_object_get(mixed, "refused")));
	g_assert_cmpfloat_with_epsilon(num_at(mixed, "estimate"), r->est[1], TOL);
	g_assert_cmpfloat_with_epsilon(num_at(mixed, "se"), r->se[1], TOL);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_array_get(ci, 0)), r->lo[1], TOL);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_array_get(ci, 1)), r->hi[1], TOL);
	g_assert_cmpfloat(fabs(num_at(mixed, "df") - r->df[1]), <=, 1e-4 * r->df[1]);
	g_assert_cmpint((int)num_at(mixed, "n"), ==, n);
	g_assert_cmpint((int)num_at(mixed, "n_clients"), ==, clients);
	g_assert_nonnull(json_string_value(json_object_get(mixed, "method")));
}

/* The reference fit of total on one covariate over the loaded visits
 * that `keep` selects (-1: all, 0/1: in person/online). */
static int reference_of(const loaded *L, const double *cov, int keep, double scale, gboolean nested,
		rref_fit *out, int *clients) {
	double *y = g_new(double, L->n), *x = g_new(double, 2 * L->n);
	int *g = g_new(int, L->n), *t = g_new(int, L->n), n = 0;
	GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	for(int i = 0; i < L->n; i++) {
		if(keep >= 0 && L->online[i] != keep)
			continue;
		y[n] = L->total[i] * scale;
		x[2 * n] = 1;
		x[2 * n + 1] = cov[i];
		g[n] = L->client[i];
		t[n] = L->therapist[i];
		g_hash_table_add(seen, GINT_TO_POINTER(L->client[i] + 1));
		n++;
	}
	if(nested)
		rref_lmer_nested(y, x, t, g, n, 2, NULL, out);
	else
		rref_lmer(y, x, g, n, 2, out);
	*clients = (int)g_hash_table_size(seen);
	g_hash_table_destroy(seen);
	g_free(t);
	g_free(y);
	g_free(x);
	g_free(g);
	return n;
}

static int reference(const loaded *L, const double *cov, int keep, rref_fit *out, int *clients) {
	return reference_of(L, cov, keep, 1, FALSE, out, clients);
}

static void check_set(fixture *fx, set_kind kind, guint32 seed, gboolean all_models) {
	loaded *L = g_new0(loaded, 1);
	load_set(fx->st, L, kind, seed, -1.0);
	json_t *rep = compare(fx, NULL);
	rref_fit r;
	int clients, n = reference(L, L->online, -1, &r, &clients);
	json_t *mixed = json_object_get(score_obj(rep, "total"), "mixed");
	check_mixed(mixed, &r, n, clients, "total, video - in person");
	g_assert_cmpint((int)num_at(mixed, "n_therapists"), ==, 3);
	/* 3 therapists: the client-only model, and why */
	g_assert_cmpstr(json_string_value(json_object_get(mixed, "model")), ==, "client");
	g_assert_cmpstr(json_string_value(json_object_get(mixed, "therapist_term")), ==, "fewer than 5 therapists");
	g_assert_true(json_is_null(json_object_get(mixed, "sd_therapist")));
	g_assert_null(strstr(json_string_value(json_object_get(mixed, "method")), "therapist"));
	g_assert_cmpstr(json_string_value(json_object_get(mixed, "direction")), ==, "video - in_person");
	/* the naive figures stay beside it */
	g_assert_true(json_is_number(json_object_get(json_object_get(score_obj(rep, "total"), "hedges_g"), "g")));
	if(all_models) {
		n = reference(L, L->vnum, 1, &r, &clients);
		check_mixed(json_object_get(json_object_get(json_object_get(rep, "formation"), "mixed"), "video"),
			&r, n, clients, "formation, video, per visit number");
		n = reference(L, L->mos, 1, &r, &clients);
		check_mixed(json_object_get(json_object_get(json_object_get(rep, "quality"), "mixed"), "mean_mos"),
			&r, n, clients, "quality, total per MOS point");
	}
	json_decref(rep);
	g_free(L);
}

static void test_balanced(fixture *fx, gconstpointer data) {
	check_set(fx, SET_BALANCED, 1301, TRUE);
}

static void test_unbalanced(fixture *fx, gconstpointer data) {
	check_set(fx, SET_UNBALANCED, 1302, TRUE);
}

static void test_single(fixture *fx, gconstpointer data) {
	check_set(fx, SET_SINGLE, 1303, FALSE);
}

/* `mixed` from the nested model against R's (1 | therapist/client). */
static void check_nested(const json_t *mixed, const rref_fit *r, int n, int clients, int therapists,
		const char *what) {
	check_mixed(mixed, r, n, clients, what);
	g_test_message("  therapist variance %.8f (R %.8f), client %.8f (R %.8f)", num_at(mixed, "var_therapist"),
		r->sigma2_t, pow(num_at(mixed, "sd_client"), 2), r->sigma2_b);
	g_assert_cmpstr(json_string_value(json_object_get(mixed, "model")), ==, "therapist/client");
	g_assert_true(json_is_null(json_object_get(mixed, "therapist_term")));
	g_assert_nonnull(strstr(json_string_value(json_object_get(mixed, "method")), "(1 | therapist/client)"));
	g_assert_cmpint((int)num_at(mixed, "n_therapists"), ==, therapists);
	g_assert_cmpfloat_with_epsilon(num_at(mixed, "var_therapist"), r->sigma2_t, TOL);
	g_assert_cmpfloat_with_epsilon(pow(num_at(mixed, "sd_therapist"), 2), r->sigma2_t, TOL);
	g_assert_cmpfloat_with_epsilon(pow(num_at(mixed, "sd_client"), 2), r->sigma2_b, TOL);
	g_assert_cmpint(json_is_true(json_object_get(mixed, "boundary_therapist")), ==, r->sigma2_t < 1e-10);
}

/* 6 therapists (SD 2.5 between them) × 4 clients, 2–6 visits each: every
 * model is the nested one, against lmerTest (1 | therapist/client): the
 * total, the bond subscale, the formation slope and the MOS slope. */
static void test_therapists(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	L->therapists = 6;
	load_set(fx->st, L, SET_THERAPISTS, 1304, -1.0);
	json_t *rep = compare(fx, NULL);
	rref_fit r;
	int clients, n = reference_of(L, L->online, -1, 1, TRUE, &r, &clients);
	check_nested(json_object_get(score_obj(rep, "total"), "mixed"), &r, n, clients, 6,
		"nested: total, video - in person");
	n = reference_of(L, L->online, -1, 0.25, TRUE, &r, &clients);
	check_nested(json_object_get(score_obj(rep, "bond"), "mixed"), &r, n, clients, 6,
		"nested: bond, video - in person");
	/* the non-inferiority bound is the nested model's */
	json_t *tm = json_object_get(score_obj(rep, "total"), "mixed");
	g_assert_cmpfloat(num_at(json_object_get(score_obj(rep, "total"), "noninferiority"), "lower_bound"), ==,
		json_number_value(json_array_get(json_object_get(tm, "ci"), 0)));
	n = reference_of(L, L->vnum, 1, 1, TRUE, &r, &clients);
	check_nested(json_object_get(json_object_get(json_object_get(rep, "formation"), "mixed"), "video"),
		&r, n, clients, 6, "nested: formation, video, per visit number");
	n = reference_of(L, L->mos, 1, 1, TRUE, &r, &clients);
	check_nested(json_object_get(json_object_get(json_object_get(rep, "quality"), "mixed"), "mean_mos"),
		&r, n, clients, 6, "nested: quality, total per MOS point");
	json_decref(rep);
	g_free(L);
}

/* 6 therapists but client 0 seen by two of them: not nested, so the
 * client-only model, which agrees with lmerTest (1 | client). */
static void test_therapists_crossed(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	L->therapists = 6;
	L->crossed = 1;
	load_set(fx->st, L, SET_THERAPISTS, 1305, -1.0);
	json_t *rep = compare(fx, NULL);
	rref_fit r;
	int clients, n = reference(L, L->online, -1, &r, &clients);
	json_t *mixed = json_object_get(score_obj(rep, "total"), "mixed");
	check_mixed(mixed, &r, n, clients, "crossed: the client-only model");
	g_assert_cmpstr(json_string_value(json_object_get(mixed, "model")), ==, "client");
	g_assert_nonnull(strstr(json_string_value(json_object_get(mixed, "therapist_term")), "more than one therapist"));
	g_assert_cmpint((int)num_at(mixed, "n_therapists"), ==, 6);
	json_decref(rep);
	g_free(L);
}

/* the rule on its own: 5 therapists needed, one with 2 clients, codes on
 * every visit, nesting */
static void test_therapist_rule(void) {
	int t[12], c[12];
	for(int i = 0; i < 12; i++) {
		c[i] = i / 2;                           /* 6 clients × 2 visits */
		t[i] = c[i] % 5;                        /* 5 therapists, therapist 0 with 2 clients */
	}
	g_assert_null(report_mixed_therapist_rule(t, c, 12));
	for(int i = 0; i < 12; i++)
		t[i] = c[i] % 4;
	g_assert_cmpstr(report_mixed_therapist_rule(t, c, 12), ==, "fewer than 5 therapists");
	for(int i = 0; i < 12; i++)
		t[i] = c[i];                            /* 6 therapists, one client each */
	g_assert_cmpstr(report_mixed_therapist_rule(t, c, 12), ==, "no therapist has two or more clients");
	for(int i = 0; i < 12; i++)
		t[i] = c[i] % 5;
	t[1] = 3;                                   /* client 0's second visit elsewhere */
	g_assert_nonnull(strstr(report_mixed_therapist_rule(t, c, 12), "more than one therapist"));
	t[1] = -1;
	g_assert_cmpstr(report_mixed_therapist_rule(t, c, 12), ==, "some visits have no therapist code");
	g_assert_cmpstr(report_mixed_therapist_rule(t, c, 0), ==, "no visits");
}

/* --- non-inferiority -------------------------------------------------------------------------- */

static const char *conclusion(json_t *rep, const char *score) {
	return json_string_value(json_object_get(json_object_get(score_obj(rep, score), "noninferiority"),
		"conclusion"));
}

/* planted 0, margin 5 points: noninferior; the bound is the mixed CI's */
static void test_ni_noninferior(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	load_set(fx->st, L, SET_BALANCED, 1311, 0.0);
	json_t *rep = compare(fx, "{\"margin\": 5}");
	json_t *s = score_obj(rep, "total"), *ni = json_object_get(s, "noninferiority");
	g_test_message("planted 0: mixed ci [%g, %g]", json_number_value(json_array_get(json_object_get(
		json_object_get(s, "mixed"), "ci"), 0)), num_at(ni, "upper_bound"));
	g_assert_cmpstr(conclusion(rep, "total"), ==, "noninferior");
	g_assert_cmpfloat(num_at(ni, "margin"), ==, 5);
	g_assert_cmpstr(json_string_value(json_object_get(ni, "margin_source")), ==, "filter");
	g_assert_cmpfloat(num_at(ni, "lower_bound"), ==,
		json_number_value(json_array_get(json_object_get(json_object_get(s, "mixed"), "ci"), 0)));
	g_assert_cmpfloat(num_at(ni, "lower_bound"), >, -5);
	/* the subscale (0–10 of a 0–40 total) gets a quarter of the margin */
	json_t *bni = json_object_get(score_obj(rep, "bond"), "noninferiority");
	g_assert_cmpfloat_with_epsilon(num_at(bni, "margin"), 1.25, 1e-12);
	g_assert_cmpfloat(num_at(bni, "margin_total"), ==, 5);
	/* the filter is echoed */
	g_assert_cmpfloat(num_at(json_object_get(rep, "filters"), "margin"), ==, 5);
	json_decref(rep);
	/* without the filter: the configured default */
	fx->env.ni_margin = 3.5;
	rep = compare(fx, NULL);
	ni = json_object_get(score_obj(rep, "total"), "noninferiority");
	g_assert_cmpfloat(num_at(ni, "margin"), ==, 3.5);
	g_assert_cmpstr(json_string_value(json_object_get(ni, "margin_source")), ==, "default");
	json_decref(rep);
	g_free(L);
}

/* planted −8 with the default margin (2): inferior */
static void test_ni_inferior(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	load_set(fx->st, L, SET_BALANCED, 1312, -8.0);
	json_t *rep = compare(fx, NULL);
	json_t *ni = json_object_get(score_obj(rep, "total"), "noninferiority");
	g_test_message("planted -8: [%g, %g]", num_at(ni, "lower_bound"), num_at(ni, "upper_bound"));
	g_assert_cmpfloat(num_at(ni, "margin"), ==, REPORT_NI_MARGIN);
	g_assert_cmpfloat(num_at(ni, "upper_bound"), <, -REPORT_NI_MARGIN);
	g_assert_cmpstr(conclusion(rep, "total"), ==, "inferior");
	json_decref(rep);
	g_free(L);
}

/* planted −1.5, margin = −estimate: −margin lies inside the interval */
static void test_ni_inconclusive(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	load_set(fx->st, L, SET_BALANCED, 1313, -1.5);
	json_t *rep = compare(fx, NULL);
	double est = num_at(json_object_get(score_obj(rep, "total"), "mixed"), "estimate");
	json_decref(rep);
	g_assert_cmpfloat(est, <, 0);
	char filt[64];
	g_snprintf(filt, sizeof(filt), "{\"margin\": %.17g}", -est);
	rep = compare(fx, filt);
	g_assert_cmpstr(conclusion(rep, "total"), ==, "inconclusive");
	json_decref(rep);
	g_free(L);
}

/* the rule itself, at its edges */
static void test_ni_rule(void) {
	g_assert_cmpstr(report_ni_conclusion(-1.9, 1, 2), ==, "noninferior");
	g_assert_cmpstr(report_ni_conclusion(-2, 1, 2), ==, "inconclusive");   /* strict */
	g_assert_cmpstr(report_ni_conclusion(-5, -2, 2), ==, "inconclusive");
	g_assert_cmpstr(report_ni_conclusion(-5, -2.1, 2), ==, "inferior");
	g_assert_cmpstr(report_ni_conclusion(NAN, NAN, 2), ==, "inconclusive");
	proto_report_filters f = { 0 };
	report_env env;
	report_env_init(&env);
	gboolean given;
	g_assert_cmpfloat(report_ni_margin(&f, &env, &given), ==, REPORT_NI_MARGIN);
	g_assert_false(given);
	f.margin = 4;
	g_assert_cmpfloat(report_ni_margin(&f, &env, &given), ==, 4);
	g_assert_true(given);
}

/* filters.margin: a number > 0 and ≤ 1000, else 474 */
static void test_margin_filter(void) {
	static const char *const bad[] = { "0", "-1", "\"2\"", "1001", "true", "[]", "1e300" };
	proto_report_filters f;
	proto_error err;
	for(size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *txt = g_strdup_printf("{\"margin\": %s}", bad[i]);
		json_t *j = json_loads(txt, 0, NULL);
		g_assert_nonnull(j);
		g_assert_cmpint(proto_report_filters_parse(j, &f, &err), ==, -1);
		g_assert_cmpint(err.code, ==, PROTO_ERR_INVALID_ELEMENT);
		g_assert_nonnull(strstr(err.reason, "filters.margin"));
		json_decref(j);
		g_free(txt);
	}
	json_t *j = json_loads("{\"margin\": 2.5}", 0, NULL);
	g_assert_cmpint(proto_report_filters_parse(j, &f, &err), ==, 0);
	g_assert_cmpfloat(f.margin, ==, 2.5);
	json_decref(j);
	j = json_loads("{\"margin\": 3}", 0, NULL);
	g_assert_cmpint(proto_report_filters_parse(j, &f, &err), ==, 0);
	g_assert_cmpfloat(f.margin, ==, 3);
	json_decref(j);
	g_assert_cmpint(proto_report_filters_parse(NULL, &f, &err), ==, 0);
	g_assert_cmpfloat(f.margin, ==, 0);
}

/* one client: every model refused, written as nulls with the reason */
static void test_refused(fixture *fx, gconstpointer data) {
	loaded *L = g_new0(loaded, 1);
	for(int k = 0; k < 4; k++)
		load_visit(fx->st, L, 7, k, k % 2, 30 + k, 3.5);
	g_assert_cmpint(store_sync(fx->st), ==, 0);
	json_t *rep = compare(fx, NULL);
	json_t *mixed = json_object_get(score_obj(rep, "total"), "mixed");
	g_assert_true(json_is_null(json_object_get(mixed, "estimate")));
	g_assert_true(json_is_null(json_array_get(json_object_get(mixed, "ci"), 0)));
	g_assert_nonnull(json_string_value(json_object_get(mixed, "refused")));
	g_assert_cmpint((int)num_at(mixed, "n_clients"), ==, 1);
	json_t *ni = json_object_get(score_obj(rep, "total"), "noninferiority");
	g_assert_true(json_is_null(json_object_get(ni, "lower_bound")));
	g_assert_cmpstr(conclusion(rep, "total"), ==, "inconclusive");
	g_assert_true(json_is_null(json_object_get(json_object_get(json_object_get(
		json_object_get(rep, "formation"), "mixed"), "video"), "estimate")));
	json_decref(rep);
	g_free(L);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/report-mixed/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("against-lmerTest/balanced", test_balanced);
	ADD("against-lmerTest/unbalanced", test_unbalanced);
	ADD("against-lmerTest/single-visit-per-client", test_single);
	ADD("against-lmerTest/therapists-nested", test_therapists);
	ADD("against-lmerTest/therapists-not-nested-falls-back", test_therapists_crossed);
	ADD("noninferiority/planted-0-generous-margin", test_ni_noninferior);
	ADD("noninferiority/planted-large-negative", test_ni_inferior);
	ADD("noninferiority/margin-inside-ci", test_ni_inconclusive);
	ADD("refused-one-client", test_refused);
#undef ADD
	g_test_add_func("/report-mixed/noninferiority/rule", test_ni_rule);
	g_test_add_func("/report-mixed/therapist-rule", test_therapist_rule);
	g_test_add_func("/report-mixed/filters-margin", test_margin_filter);
	return g_test_run();
}
