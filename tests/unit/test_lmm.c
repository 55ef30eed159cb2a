/*
 * Unit tests for lmm.c: the random-intercept mixed model of the compare
 * report.
 *
 * The reference is computed at run time, in the test, by R's lme4 (REML)
 * and lmerTest (Satterthwaite df) through tests/unit/lmm_ref.R (rref.h):
 * nothing here is a number this code base computed. Data sets are drawn
 * from GRand with fixed seeds, so a run is reproducible.
 *
 * Also: every refusal (one client, no client with two visits, a singular
 * design, NaN, no within-client spread), a bounded run on random junk,
 * and the coverage of the 95 % interval over 200 simulated studies with
 * strong client clustering (between-client SD 3 × the within-client SD),
 * against the naive visit-level t interval (bench/README.md records the
 * figures).
 */
#include <glib.h>
#include <math.h>
#include <string.h>
#include "lmm.h"
#include "stats.h"
#include "rref.h"
#include "lmmset.h"

#define TOL 1e-4

/* Fit with lmm and with R; every coefficient's estimate, SE and interval
 * to TOL. */
static void check_against_r(const dataset *d, const char *what) {
	lmm_result m;
	g_assert_cmpint(lmm_fit_reml(d->y, d->x, d->g, d->n, d->p, &m), ==, 0);
	rref_fit r;
	rref_lmer(d->y, d->x, d->g, d->n, d->p, &r);
	g_test_message("%s: n %d, clients %d, theta %.6g (R: sigma2_b %.6g, sigma2 %.6g, singular %d), "
		"boundary %d, %d evaluations", what, m.n, m.groups, m.theta, r.sigma2_b, r.sigma2, r.singular,
		m.boundary, m.evaluations);
	g_assert_cmpint(m.boundary, ==, r.singular);
	g_assert_cmpfloat_with_epsilon(m.sigma2, r.sigma2, TOL);
	g_assert_cmpfloat_with_epsilon(m.sigma2_b, r.sigma2_b, TOL);
	g_assert_cmpfloat(fabs(m.reml - r.reml), <=, 1e-6 * fabs(r.reml));
	for(int j = 0; j < d->p; j++) {
		double lo, hi;
		g_assert_cmpint(lmm_ci(&m, j, 0.95, &lo, &hi), ==, 0);
		g_test_message("  coef %d: %.8f (R %.8f) se %.8f (R %.8f) df %.5f (R %.5f) ci [%.6f, %.6f] (R [%.6f, %.6f])",
			j, m.beta[j], r.est[j], m.se[j], r.se[j], m.df[j], r.df[j], lo, hi, r.lo[j], r.hi[j]);
		g_assert_cmpfloat_with_epsilon(m.beta[j], r.est[j], TOL);
		g_assert_cmpfloat_with_epsilon(m.se[j], r.se[j], TOL);
		g_assert_cmpfloat(fabs(m.df[j] - r.df[j]), <=, 1e-4 * r.df[j]);
		g_assert_cmpfloat_with_epsilon(lo, r.lo[j], TOL);
		g_assert_cmpfloat_with_epsilon(hi, r.hi[j], TOL);
	}
}

/* 16 clients × 4 visits; modality by client (8 online), effect −1.5. */
static void test_balanced(void) {
	GRand *r = g_rand_new_with_seed(1201);
	dataset d;
	lmmset_init(&d, 64, 2);
	for(int c = 0; c < 16; c++) {
		double b = 3 * lmmset_normal(r), online = c % 2;
		for(int v = 0; v < 4; v++)
			lmmset_add(&d, 0, c, 30 + b - 1.5 * online + 1.5 * lmmset_normal(r), &online);
	}
	check_against_r(&d, "balanced");
	lmmset_free(&d);
	g_rand_free(r);
}

/* 25 clients with 1..8 visits each; modality varies within clients (each
 * client has its own chance of an online visit). */
static void test_unbalanced(void) {
	GRand *r = g_rand_new_with_seed(1202);
	dataset d;
	lmmset_init(&d, 200, 2);
	for(int c = 0; c < 25; c++) {
		double b = 2.5 * lmmset_normal(r), chance = g_rand_double(r);
		int visits = g_rand_int_range(r, 1, 9);
		for(int v = 0; v < visits; v++) {
			double online = g_rand_double(r) < chance;
			lmmset_add(&d, 0, 100 + 7 * c, 28 + b - 0.8 * online + 2 * lmmset_normal(r), &online);
		}
	}
	check_against_r(&d, "unbalanced");
	lmmset_free(&d);
	g_rand_free(r);
}

/* Many clients with a single visit (60) and a few with three (8). */
static void test_single_visits(void) {
	GRand *r = g_rand_new_with_seed(1203);
	dataset d;
	lmmset_init(&d, 100, 2);
	for(int c = 0; c < 68; c++) {
		double b = 2 * lmmset_normal(r), online = g_rand_double(r) < 0.5;
		int visits = c < 60 ? 1 : 3;
		for(int v = 0; v < visits; v++)
			lmmset_add(&d, 0, c, 31 + b - 0.5 * online + 1.2 * lmmset_normal(r), &online);
	}
	check_against_r(&d, "single visit per client");
	lmmset_free(&d);
	g_rand_free(r);
}

/* Modality and visit number (the formation curve's model), p = 3; and a
 * continuous covariate (connection quality, MOS 1..4.5), p = 2. */
static void test_covariates(void) {
	GRand *r = g_rand_new_with_seed(1204);
	dataset d, q;
	lmmset_init(&d, 200, 3);
	lmmset_init(&q, 200, 2);
	for(int c = 0; c < 20; c++) {
		double b = 3 * lmmset_normal(r), online = c < 12;
		int visits = g_rand_int_range(r, 2, 10);
		for(int v = 1; v <= visits; v++) {
			double cov[2] = { online, v };
			lmmset_add(&d, 0, c, 25 + b - online + 0.4 * v + 1.5 * lmmset_normal(r), cov);
			double mos = 1 + 3.5 * g_rand_double(r);
			lmmset_add(&q, 0, c, 26 + b + 0.9 * mos + 1.5 * lmmset_normal(r), &mos);
		}
	}
	check_against_r(&d, "modality + visit number");
	check_against_r(&q, "mean MOS");
	lmmset_free(&d);
	lmmset_free(&q);
	g_rand_free(r);
}

/* No client variance in the data (within SD large, clients identical
 * but for noise): lme4 fits σ_b² = 0 (singular); the fit is OLS with
 * df n − p. */
static void test_boundary(void) {
	GRand *r = g_rand_new_with_seed(1205);
	dataset d;
	lmmset_init(&d, 60, 2);
	/* alternate signs inside clients so the client means vary less than
	 * chance would: the REML optimum is at σ_b² = 0 */
	for(int c = 0; c < 15; c++) {
		double online = c % 2;
		for(int v = 0; v < 4; v++)
			lmmset_add(&d, 0, c, 30 - online + (v % 2 ? 1 : -1) * (2 + fabs(lmmset_normal(r))), &online);
	}
	lmm_result m;
	g_assert_cmpint(lmm_fit_reml(d.y, d.x, d.g, d.n, d.p, &m), ==, 0);
	g_assert_cmpint(m.boundary, ==, 1);
	g_assert_cmpfloat(m.sigma2_b, ==, 0);
	g_assert_cmpfloat(m.df[1], ==, d.n - d.p);
	check_against_r(&d, "boundary");
	lmmset_free(&d);
	g_rand_free(r);
}

/* Small client variances near the boundary (θ = σ_b/σ of about 0.02,
 * and about 1.5e-5): the df's numerical derivatives must stay accurate
 * where σ_b² is tiny. 10 clients × 4 visits, σ_b = 0.15, σ = 1. */
static void test_near_boundary(void) {
	const guint32 seeds[] = { 18, 336 };
	for(size_t k = 0; k < G_N_ELEMENTS(seeds); k++) {
		GRand *r = g_rand_new_with_seed(seeds[k]);
		dataset d;
		lmmset_init(&d, 40, 2);
		for(int c = 0; c < 10; c++) {
			double b = 0.15 * lmmset_normal(r), online = c % 2;
			for(int v = 0; v < 4; v++)
				lmmset_add(&d, 0, c, 30 + b + lmmset_normal(r), &online);
		}
		check_against_r(&d, seeds[k] == 18 ? "near the boundary (seed 18)" : "nearer the boundary (seed 336)");
		lmmset_free(&d);
		g_rand_free(r);
	}
}

/* --- refusals ------------------------------------------------------------------------------ */

static void expect_refusal(const dataset *d, lmm_status why) {
	lmm_result m;
	g_assert_cmpint(lmm_fit_reml(d->y, d->x, d->g, d->n, d->p, &m), ==, -1);
	g_assert_cmpint(m.status, ==, why);
	g_assert_true(isnan(m.beta[0]) && isnan(m.se[0]) && isnan(m.df[0]) && isnan(m.sigma2));
	double lo, hi;
	g_assert_cmpint(lmm_ci(&m, 0, 0.95, &lo, &hi), ==, -1);
	g_assert_true(isnan(lo) && isnan(hi));
	g_assert_nonnull(lmm_status_text(why));
}

static void test_refusals(void) {
	dataset d;
	double on = 1, off = 0;
	/* one client */
	lmmset_init(&d, 8, 2);
	for(int v = 0; v < 6; v++)
		lmmset_add(&d, 0, 0, 30 + v, v % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_TOO_FEW);
	lmmset_free(&d);
	/* 3 visits of 2 clients, the covariate varying within a client: no
	 * room for two variances (REML's optimum is absurd there) */
	lmmset_init(&d, 3, 2);
	double v1 = 1, v2 = 2, v3 = 3;
	lmmset_add(&d, 0, 0, 33, &v1);
	lmmset_add(&d, 0, 1, 29.2, &v2);
	lmmset_add(&d, 0, 0, 36.4, &v3);
	expect_refusal(&d, LMM_ERR_TOO_FEW);
	lmmset_free(&d);
	/* every client a single visit */
	lmmset_init(&d, 8, 2);
	for(int c = 0; c < 8; c++)
		lmmset_add(&d, 0, c, 30 + c * 0.7, c % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_NO_REPLICATES);
	lmmset_free(&d);
	/* only one modality: the modality column never varies */
	lmmset_init(&d, 8, 2);
	for(int c = 0; c < 8; c++)
		lmmset_add(&d, 0, c / 2, 30 + c * 0.7 + (c % 3), &on);
	expect_refusal(&d, LMM_ERR_SINGULAR);
	lmmset_free(&d);
	/* a missing score */
	lmmset_init(&d, 8, 2);
	for(int c = 0; c < 8; c++)
		lmmset_add(&d, 0, c / 2, c == 5 ? NAN : 30 + c, c % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_INPUT);
	lmmset_free(&d);
	/* every visit of a client alike (no within-client variance) */
	lmmset_init(&d, 12, 2);
	for(int c = 0; c < 12; c++)
		lmmset_add(&d, 0, c / 3, 20 + 3 * (c / 3), (c / 3) % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_NO_WITHIN);
	lmmset_free(&d);
	/* every score alike */
	lmmset_init(&d, 12, 2);
	for(int c = 0; c < 12; c++)
		lmmset_add(&d, 0, c / 3, 33, c % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_NO_SPREAD);
	lmmset_free(&d);
	/* a group index out of range, p out of range, n ≤ p */
	lmmset_init(&d, 4, 2);
	for(int c = 0; c < 4; c++)
		lmmset_add(&d, 0, c == 2 ? -1 : c / 2, 30 + c, c % 2 ? &on : &off);
	expect_refusal(&d, LMM_ERR_INPUT);
	lmm_result m;
	g_assert_cmpint(lmm_fit_reml(d.y, d.x, d.g, d.n, LMM_MAX_P + 1, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_INPUT);
	g_assert_cmpint(lmm_fit_reml(d.y, d.x, d.g, 2, 2, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_TOO_FEW);
	g_assert_cmpint(lmm_fit_reml(d.y, d.x, d.g, 0, 2, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_TOO_FEW);
	g_assert_cmpint(lmm_fit_reml(NULL, NULL, NULL, 0, 2, &m), ==, -1);   /* an empty GArray */
	g_assert_cmpint(m.status, ==, LMM_ERR_TOO_FEW);
	g_assert_cmpint(lmm_fit_reml(NULL, d.x, d.g, 3, 2, &m), ==, -1);
	g_assert_cmpint(m.status, ==, LMM_ERR_INPUT);
	lmmset_free(&d);
}

/* Random small data sets, integer scores with many ties and odd group
 * structures: every fit is refused or finite, with lo ≤ estimate ≤ hi,
 * and the number of deviance evaluations stays bounded. */
static void test_random_junk(void) {
	GRand *r = g_rand_new_with_seed(1206);
	int fitted = 0;
	for(int k = 0; k < 500; k++) {
		dataset d;
		int n = g_rand_int_range(r, 1, 30), clients = g_rand_int_range(r, 1, n + 1);
		lmmset_init(&d, n, 2);
		for(int i = 0; i < n; i++) {
			double online = g_rand_int_range(r, 0, 2);
			lmmset_add(&d, 0, g_rand_int_range(r, 0, clients), g_rand_int_range(r, 0, 5), &online);
		}
		lmm_result m;
		if(lmm_fit_reml(d.y, d.x, d.g, d.n, d.p, &m) == 0) {
			fitted++;
			double lo, hi;
			g_assert_true(isfinite(m.beta[1]) && m.se[1] > 0 && m.sigma2 > 0 && m.sigma2_b >= 0);
			/* scores 0..4: no sane difference is far outside ±4 */
			g_assert_cmpfloat(fabs(m.beta[1]), <, 100);
			g_assert_cmpint(m.evaluations, <=, 300);
			if(lmm_ci(&m, 1, 0.95, &lo, &hi) == 0)
				g_assert_true(lo <= m.beta[1] && m.beta[1] <= hi);
		} else {
			g_assert_cmpint(m.status, !=, LMM_OK);
		}
		lmmset_free(&d);
	}
	g_assert_cmpint(fitted, >, 100);
	g_rand_free(r);
}

/* --- coverage ------------------------------------------------------------------------------ */

/* 200 studies of 24 clients (12 seen online, 12 in person) × 4 visits,
 * between-client SD 3, within-client SD 1, a planted online effect of −1:
 * the share of 95 % intervals holding −1. The naive interval (every visit
 * independent, pooled two-sample t) is too narrow; the mixed model's
 * should be close to 95 %. Seed 1207 (bench/README.md). */
static void test_coverage(void) {
	GRand *r = g_rand_new_with_seed(1207);
	const double effect = -1;
	int naive_in = 0, mixed_in = 0, studies = 200, fitted = 0;
	for(int s = 0; s < studies; s++) {
		dataset d;
		lmmset_init(&d, 96, 2);
		double sum[2] = { 0 }, sq[2] = { 0 };
		int cnt[2] = { 0 };
		for(int c = 0; c < 24; c++) {
			double b = 3 * lmmset_normal(r), online = c < 12;
			for(int v = 0; v < 4; v++) {
				double y = 30 + b + effect * online + lmmset_normal(r);
				lmmset_add(&d, 0, c, y, &online);
				sum[(int)online] += y;
				cnt[(int)online]++;
			}
		}
		for(int i = 0; i < d.n; i++) {
			int m = (int)d.x[(size_t)i * 2 + 1];
			double dev = d.y[i] - sum[m] / cnt[m];
			sq[m] += dev * dev;
		}
		double diff = sum[1] / cnt[1] - sum[0] / cnt[0];
		double sp = sqrt((sq[0] + sq[1]) / (d.n - 2));
		double half = stats_t_quantile(0.975, d.n - 2) * sp * sqrt(1.0 / cnt[0] + 1.0 / cnt[1]);
		naive_in += fabs(diff - effect) <= half;
		lmm_result m;
		double lo, hi;
		if(lmm_fit_reml(d.y, d.x, d.g, d.n, d.p, &m) == 0 && lmm_ci(&m, 1, 0.95, &lo, &hi) == 0) {
			fitted++;
			mixed_in += lo <= effect && effect <= hi;
		}
		lmmset_free(&d);
	}
	double naive = (double)naive_in / studies, mixed = (double)mixed_in / studies;
	g_test_message("coverage over %d studies (seed 1207): naive %.3f, mixed %.3f (%d fitted)",
		studies, naive, mixed, fitted);
	g_print("# coverage over %d studies (seed 1207): naive %.3f, mixed %.3f (%d fitted)\n",
		studies, naive, mixed, fitted);
	g_assert_cmpint(fitted, ==, studies);
	g_assert_cmpfloat(naive, <, 0.85);
	g_assert_cmpfloat(mixed, >=, 0.92);
	g_assert_cmpfloat(mixed, <=, 0.98);
	g_rand_free(r);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/lmm/against-lmerTest/balanced", test_balanced);
	g_test_add_func("/lmm/against-lmerTest/unbalanced", test_unbalanced);
	g_test_add_func("/lmm/against-lmerTest/single-visit-per-client", test_single_visits);
	g_test_add_func("/lmm/against-lmerTest/covariates", test_covariates);
	g_test_add_func("/lmm/against-lmerTest/boundary", test_boundary);
	g_test_add_func("/lmm/against-lmerTest/near-boundary", test_near_boundary);
	g_test_add_func("/lmm/refusals", test_refusals);
	g_test_add_func("/lmm/random-junk-bounded", test_random_junk);
	g_test_add_func("/lmm/coverage-200-studies", test_coverage);
	return g_test_run();
}
