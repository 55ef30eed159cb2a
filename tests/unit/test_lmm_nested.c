/*
 * Unit tests for lmm_nested.c: clients nested in therapists, lme4's
 * (1 | therapist/client).
 *
 * The reference is computed at run time, in the test, by R's lme4 (REML)
 * and lmerTest (Satterthwaite df, summary() for the coefficients and
 * contest() for a contrast) through tests/unit/lmm_ref.R (rref.h):
 * nothing here is a number this code base computed. Data sets are drawn
 * from GRand with fixed seeds, so a run is reproducible: balanced,
 * unbalanced, mostly one visit per client, two covariates, a boundary fit
 * (therapist variance 0), a client-variance boundary, and a data set
 * whose therapist variance is small but not 0. Then every refusal (one
 * therapist, no nesting, no therapist with two clients, no client with
 * two visits, a singular design, NaN, a bad contrast) and a bounded run
 * on random junk.
 */
#include <glib.h>
#include <math.h>
#include <string.h>
#include "lmm_nested.h"
#include "rref.h"
#include "lmmset.h"

#define TOL 1e-4

static void close_to(double ours, double r, double tol, const char *what) {
	if(!(fabs(ours - r) <= tol))
		g_error("%s: %.10g, R %.10g (|diff| %.3g > %.3g)", what, ours, r, fabs(ours - r), tol);
}

/* Fit with lmm_nested and with R (contrast L); every coefficient's and
 * the contrast's estimate, SE, df and interval to TOL (df relative). */
static void check_against_r(const dataset *d, const double *L, const char *what, lmm_nested_result *out) {
	lmm_nested_result m;
	g_assert_cmpint(lmm_nested_fit(d->y, d->x, d->t, d->g, d->n, d->p, L, &m), ==, 0);
	rref_fit r;
	rref_lmer_nested(d->y, d->x, d->t, d->g, d->n, d->p, L, &r);
	g_test_message("%s: n %d, therapists %d, clients %d; ours s2_t %.8g s2_c %.8g s2 %.8g reml %.10g "
		"(R %.8g %.8g %.8g %.10g, singular %d), %d evaluations", what, m.n, m.therapists, m.clients,
		m.sigma2_t, m.sigma2_c, m.sigma2, m.reml, r.sigma2_t, r.sigma2_b, r.sigma2, r.reml, r.singular,
		m.evaluations);
	g_assert_cmpint(m.boundary_therapist, ==, r.sigma2_t < 1e-10);
	g_assert_cmpint(m.boundary_client, ==, r.sigma2_b < 1e-10);
	close_to(m.sigma2, r.sigma2, TOL, "sigma2");
	close_to(m.sigma2_t, r.sigma2_t, TOL, "sigma2_t");
	close_to(m.sigma2_c, r.sigma2_b, TOL, "sigma2_c");
	close_to(m.reml, r.reml, 1e-6 * fabs(r.reml), "REML criterion");
	for(int j = 0; j < d->p; j++) {
		double lo, hi;
		g_assert_cmpint(lmm_nested_ci(&m, j, 0.95, &lo, &hi), ==, 0);
		g_test_message("  coef %d: %.8f (R %.8f) se %.8f (R %.8f) df %.5f (R %.5f) ci [%.6f, %.6f] (R [%.6f, %.6f])",
			j, m.beta[j], r.est[j], m.se[j], r.se[j], m.df[j], r.df[j], lo, hi, r.lo[j], r.hi[j]);
		close_to(m.beta[j], r.est[j], TOL, "estimate");
		close_to(m.se[j], r.se[j], TOL, "se");
		close_to(m.df[j], r.df[j], 1e-4 * r.df[j], "df");
		close_to(lo, r.lo[j], TOL, "ci lower");
		close_to(hi, r.hi[j], TOL, "ci upper");
	}
	if(L) {
		double lo, hi;
		g_assert_true(m.has_contrast);
		g_assert_cmpint(lmm_nested_ci(&m, -1, 0.95, &lo, &hi), ==, 0);
		g_test_message("  contrast: %.8f (R %.8f) se %.8f (R %.8f) df %.5f (R %.5f)",
			m.contrast_est, r.c_est, m.contrast_se, r.c_se, m.contrast_df, r.c_df);
		close_to(m.contrast_est, r.c_est, TOL, "contrast estimate");
		close_to(m.contrast_se, r.c_se, TOL, "contrast se");
		close_to(m.contrast_df, r.c_df, 1e-4 * r.c_df, "contrast df");
		close_to(lo, r.c_lo, TOL, "contrast ci lower");
		close_to(hi, r.c_hi, TOL, "contrast ci upper");
	}
	if(out)
		*out = m;
}

static const double MEAN_ONLINE[2] = { 1, 1 };   /* the online mean: β0 + β1 */

/* 8 therapists × 4 clients × 4 visits, both modalities within clients;
 * therapist SD 2, client SD 3, within SD 1.5, online effect −1.5. */
static void test_balanced(void) {
	GRand *r = g_rand_new_with_seed(1251);
	dataset d;
	lmmset_init(&d, 128, 2);
	for(int t = 0; t < 8; t++) {
		double a = 2 * lmmset_normal(r);
		for(int c = 0; c < 4; c++) {
			double b = 3 * lmmset_normal(r);
			for(int v = 0; v < 4; v++) {
				double online = (v + c) % 2;
				lmmset_add(&d, t, 10 * t + c, 30 + a + b - 1.5 * online + 1.5 * lmmset_normal(r), &online);
			}
		}
	}
	lmm_nested_result m;
	check_against_r(&d, MEAN_ONLINE, "balanced", &m);
	g_assert_cmpint(m.therapists, ==, 8);
	g_assert_cmpint(m.clients, ==, 32);
	g_assert_false(m.boundary_therapist || m.boundary_client);
	lmmset_free(&d);
	g_rand_free(r);
}

/* 7 therapists with 1–6 clients, each with 1–7 visits; modality varies
 * within clients (a chance per client); client numbers not dense. */
static void test_unbalanced(void) {
	GRand *r = g_rand_new_with_seed(1252);
	dataset d;
	lmmset_init(&d, 400, 2);
	int client = 0;
	for(int t = 0; t < 7; t++) {
		double a = 2.5 * lmmset_normal(r);
		int clients = g_rand_int_range(r, 1, 7);
		for(int c = 0; c < clients; c++, client++) {
			double b = 2 * lmmset_normal(r), chance = g_rand_double(r);
			int visits = g_rand_int_range(r, 1, 8);
			for(int v = 0; v < visits; v++) {
				double online = g_rand_double(r) < chance;
				lmmset_add(&d, 100 + 3 * t, 1000 + 7 * client, 28 + a + b - 0.8 * online + 2 * lmmset_normal(r), &online);
			}
		}
	}
	check_against_r(&d, NULL, "unbalanced", NULL);
	lmmset_free(&d);
	g_rand_free(r);
}

/* 6 therapists, 48 clients of whom 40 have a single visit (8 have 3). */
static void test_single_visits(void) {
	GRand *r = g_rand_new_with_seed(1253);
	dataset d;
	lmmset_init(&d, 100, 2);
	double a[6];
	for(int t = 0; t < 6; t++)
		a[t] = 3 * lmmset_normal(r);
	for(int c = 0; c < 48; c++) {
		int t = c % 6;
		double b = 2 * lmmset_normal(r), online = g_rand_double(r) < 0.5;
		int visits = c < 40 ? 1 : 3;
		for(int v = 0; v < visits; v++)
			lmmset_add(&d, t, c, 31 + a[t] + b - 0.5 * online + 1.2 * lmmset_normal(r), &online);
	}
	check_against_r(&d, MEAN_ONLINE, "mostly a single visit per client", NULL);
	lmmset_free(&d);
	g_rand_free(r);
}

/* Modality and visit number (p = 3) with the contrast "online at visit 4"
 * minus "in person at visit 1" = β1 + 3β2. */
static void test_covariates(void) {
	GRand *r = g_rand_new_with_seed(1254);
	dataset d;
	lmmset_init(&d, 400, 3);
	for(int t = 0; t < 6; t++) {
		double a = 2 * lmmset_normal(r);
		for(int c = 0; c < 4; c++) {
			double b = 3 * lmmset_normal(r);
			int visits = g_rand_int_range(r, 2, 9);
			for(int v = 1; v <= visits; v++) {
				double cov[2] = { (double)((v + c + t) % 2), v };
				lmmset_add(&d, t, 10 * t + c, 25 + a + b - cov[0] + 0.4 * v + 1.5 * lmmset_normal(r), cov);
			}
		}
	}
	const double L[3] = { 0, 1, 3 };
	check_against_r(&d, L, "modality + visit number", NULL);
	lmmset_free(&d);
	g_rand_free(r);
}

/* Therapists alike: each therapist's clients come in pairs ±b, so the
 * therapist means vary less than the clients imply and REML puts σ_t² at
 * 0 (lme4: a singular fit); σ_c² stays positive, and the df are the
 * client-only model's. */
static void test_boundary_therapist(void) {
	GRand *r = g_rand_new_with_seed(1255);
	dataset d;
	lmmset_init(&d, 200, 2);
	for(int t = 0; t < 6; t++)
		for(int c = 0; c < 4; c++) {
			double b = (c % 2 ? 1 : -1) * (2 + (c / 2));
			for(int v = 0; v < 4; v++) {
				double online = (v + c) % 2;
				lmmset_add(&d, t, 10 * t + c, 30 + b - online + lmmset_normal(r), &online);
			}
		}
	lmm_nested_result m;
	check_against_r(&d, MEAN_ONLINE, "therapist variance at the boundary", &m);
	g_assert_true(m.boundary_therapist);
	g_assert_false(m.boundary_client);
	g_assert_cmpfloat(m.sigma2_t, ==, 0);
	g_assert_true(isfinite(m.df[1]) && m.df[1] > 0);
	lmmset_free(&d);
	g_rand_free(r);
}

/* Clients alike within a therapist (visits alternate ±, no client
 * effect) but therapists differ: σ_c² at 0, σ_t² positive. */
static void test_boundary_client(void) {
	GRand *r = g_rand_new_with_seed(1256);
	dataset d;
	lmmset_init(&d, 200, 2);
	for(int t = 0; t < 7; t++) {
		double a = 3 * lmmset_normal(r);
		for(int c = 0; c < 3; c++)
			for(int v = 0; v < 4; v++) {
				double online = (v + c) % 2;
				lmmset_add(&d, t, 10 * t + c, 30 + a - online + (v % 2 ? 1 : -1) * (1.5 + fabs(lmmset_normal(r))), &online);
			}
	}
	lmm_nested_result m;
	check_against_r(&d, NULL, "client variance at the boundary", &m);
	g_assert_true(m.boundary_client);
	g_assert_false(m.boundary_therapist);
	lmmset_free(&d);
	g_rand_free(r);
}

/* A small therapist SD (0.3 against within 1): interior or boundary, the
 * fit must agree with R either way. */
static void test_small_therapist(void) {
	const guint32 seeds[] = { 1257, 1258, 1259 };
	for(size_t k = 0; k < G_N_ELEMENTS(seeds); k++) {
		GRand *r = g_rand_new_with_seed(seeds[k]);
		dataset d;
		lmmset_init(&d, 200, 2);
		for(int t = 0; t < 5; t++) {
			double a = 0.3 * lmmset_normal(r);
			for(int c = 0; c < 3; c++) {
				double b = lmmset_normal(r);
				for(int v = 0; v < 5; v++) {
					double online = (v + c) % 2;
					lmmset_add(&d, t, 10 * t + c, 30 + a + b + lmmset_normal(r), &online);
				}
			}
		}
		char what[64];
		g_snprintf(what, sizeof(what), "small therapist variance (seed %u)", seeds[k]);
		check_against_r(&d, NULL, what, NULL);
		lmmset_free(&d);
		g_rand_free(r);
	}
}

/* --- refusals ------------------------------------------------------------------------------ */

static void expect_refusal(const dataset *d, const double *L, lmm_status why) {
	lmm_nested_result m;
	g_assert_cmpint(lmm_nested_fit(d->y, d->x, d->t, d->g, d->n, d->p, L, &m), ==, -1);
	g_assert_cmpint(m.status, ==, why);
	g_assert_true(isnan(m.beta[0]) && isnan(m.se[0]) && isnan(m.df[0]) && isnan(m.sigma2)
		&& isnan(m.sigma2_t) && isnan(m.contrast_est));
	double lo, hi;
	g_assert_cmpint(lmm_nested_ci(&m, 0, 0.95, &lo, &hi), ==, -1);
	g_assert_true(isnan(lo) && isnan(hi));
	g_assert_nonnull(lmm_status_text(why));
	g_assert_cmpstr(lmm_status_text(why), !=, "unknown");
}

/* n therapists × k clients × v visits of alternating modality, y from f */
static void grid_set(dataset *d, int therapists, int clients, int visits, GRand *r) {
	lmmset_init(d, therapists * clients * visits, 2);
	for(int t = 0; t < therapists; t++)
		for(int c = 0; c < clients; c++)
			for(int v = 0; v < visits; v++) {
				double online = v % 2;
				lmmset_add(d, t, 100 * t + c, 30 + t + c + lmmset_normal(r), &online);
			}
}

static void test_refusals(void) {
	GRand *r = g_rand_new_with_seed(1260);
	dataset d;
	/* one therapist */
	grid_set(&d, 1, 6, 4, r);
	expect_refusal(&d, NULL, LMM_ERR_TOO_FEW);
	lmmset_free(&d);
	/* two therapists: fewer than p + 1 */
	grid_set(&d, 2, 6, 4, r);
	expect_refusal(&d, NULL, LMM_ERR_TOO_FEW);
	lmmset_free(&d);
	/* a client seen by two therapists */
	grid_set(&d, 5, 3, 4, r);
	d.t[0] = 4;
	expect_refusal(&d, NULL, LMM_ERR_NO_NESTING);
	lmmset_free(&d);
	/* every therapist one client */
	grid_set(&d, 6, 1, 4, r);
	expect_refusal(&d, NULL, LMM_ERR_NO_THERAPIST_REPLICATES);
	lmmset_free(&d);
	/* every client one visit */
	grid_set(&d, 5, 4, 1, r);
	for(int i = 0; i < d.n; i++)
		d.x[2 * i + 1] = i % 2;
	expect_refusal(&d, NULL, LMM_ERR_NO_REPLICATES);
	lmmset_free(&d);
	/* one modality only */
	grid_set(&d, 5, 3, 4, r);
	for(int i = 0; i < d.n; i++)
		d.x[2 * i + 1] = 1;
	expect_refusal(&d, NULL, LMM_ERR_SINGULAR);
	lmmset_free(&d);
	/* every score alike */
	grid_set(&d, 5, 3, 4, r);
	for(int i = 0; i < d.n; i++)
		d.y[i] = 33;
	expect_refusal(&d, NULL, LMM_ERR_NO_SPREAD);
	lmmset_free(&d);
	/* every visit of a client alike */
	grid_set(&d, 5, 3, 4, r);
	for(int i = 0; i < d.n; i++)
		d.y[i] = 20 + 0.37 * d.g[i] + (d.g[i] % 7);
	expect_refusal(&d, NULL, LMM_ERR_NO_WITHIN);
	lmmset_free(&d);
	/* NaN, a negative therapist, a bad contrast, p out of range, NULL */
	grid_set(&d, 5, 3, 4, r);
	double keep = d.y[5];
	d.y[5] = NAN;
	expect_refusal(&d, NULL, LMM_ERR_INPUT);
	d.y[5] = keep;
	d.t[3] = -1;
	expect_refusal(&d, NULL, LMM_ERR_INPUT);
	d.t[3] = d.t[2];
	const double bad[2] = { 0, INFINITY };
	expect_refusal(&d, bad, LMM_ERR_INPUT);
	lmm_nested_result m;
	g_assert_cmpint(lmm_nested_fit(d.y, d.x, d.t, d.g, d.n, LMM_MAX_P + 1, NULL, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_INPUT);
	g_assert_cmpint(lmm_nested_fit(NULL, NULL, NULL, NULL, 0, 2, NULL, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_TOO_FEW);
	g_assert_cmpint(lmm_nested_fit(d.y, d.x, NULL, d.g, d.n, 2, NULL, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_INPUT);
	/* and the same data fit; without a contrast its interval is refused */
	g_assert_cmpint(lmm_nested_fit(d.y, d.x, d.t, d.g, d.n, 2, NULL, &m), ==, 0);
	double lo, hi;
	g_assert_cmpint(lmm_nested_ci(&m, -1, 0.95, &lo, &hi), ==, -1);
	g_assert_cmpint(lmm_nested_ci(&m, 2, 0.95, &lo, &hi), ==, -1);
	g_assert_cmpint(lmm_nested_ci(&m, 1, 1.5, &lo, &hi), ==, -1);
	g_assert_cmpint(lmm_nested_ci(&m, 1, 0.95, &lo, &hi), ==, 0);
	lmmset_free(&d);
	g_rand_free(r);
}

/* Random small data sets, integer scores with many ties and odd group
 * structures: every fit is refused or finite with lo ≤ estimate ≤ hi,
 * and the evaluations stay within the budget. */
static void test_random_junk(void) {
	GRand *r = g_rand_new_with_seed(1261);
	int fitted = 0;
	for(int k = 0; k < 300; k++) {
		dataset d;
		int n = g_rand_int_range(r, 1, 40), clients = g_rand_int_range(r, 1, n + 1);
		int therapists = g_rand_int_range(r, 1, clients + 1);
		lmmset_init(&d, n, 2);
		for(int i = 0; i < n; i++) {
			double online = g_rand_int_range(r, 0, 2);
			int c = g_rand_int_range(r, 0, clients);
			lmmset_add(&d, c % therapists, c, g_rand_int_range(r, 0, 5), &online);
		}
		lmm_nested_result m;
		if(lmm_nested_fit(d.y, d.x, d.t, d.g, d.n, d.p, MEAN_ONLINE, &m) == 0) {
			fitted++;
			double lo, hi;
			g_assert_true(isfinite(m.beta[1]) && m.se[1] > 0 && m.sigma2 > 0);
			g_assert_true(m.sigma2_t >= 0 && m.sigma2_c >= 0);
			g_assert_cmpfloat(fabs(m.beta[1]), <, 100);
			g_assert_cmpint(m.evaluations, <=, 256 + 8 * 600);
			if(lmm_nested_ci(&m, 1, 0.95, &lo, &hi) == 0)
				g_assert_true(lo <= m.beta[1] && m.beta[1] <= hi);
		} else {
			g_assert_cmpint(m.status, !=, LMM_OK);
		}
		lmmset_free(&d);
	}
	g_test_message("%d of 300 fitted", fitted);
	g_assert_cmpint(fitted, >, 30);
	g_rand_free(r);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/lmm-nested/against-lmerTest/balanced", test_balanced);
	g_test_add_func("/lmm-nested/against-lmerTest/unbalanced", test_unbalanced);
	g_test_add_func("/lmm-nested/against-lmerTest/mostly-single-visit", test_single_visits);
	g_test_add_func("/lmm-nested/against-lmerTest/covariates-contrast", test_covariates);
	g_test_add_func("/lmm-nested/against-lmerTest/boundary-therapist", test_boundary_therapist);
	g_test_add_func("/lmm-nested/against-lmerTest/boundary-client", test_boundary_client);
	g_test_add_func("/lmm-nested/against-lmerTest/small-therapist-variance", test_small_therapist);
	g_test_add_func("/lmm-nested/refusals", test_refusals);
	g_test_add_func("/lmm-nested/random-junk-bounded", test_random_junk);
	return g_test_run();
}
