/*
 * Unit tests for stats.c: the statistics of the compare and summary reports.
 *
 * Every expected value below was computed outside this code base and is
 * written next to the data and the command that produced it. Tools:
 * Debian 12's python3-scipy 1.10.1 / python3-numpy 1.24.2 and
 * python3-mpmath 1.2.1, run with /usr/bin/python3 as
 *   import numpy as np, scipy.stats as st, mpmath
 * None of them is a dependency of the project: the values are literals.
 *
 * One caveat found on the way: scipy 1.10's t.ppf (cephes stdtrit) is only
 * accurate to ~1e-9 relative (e.g. st.t.cdf(st.t.ppf(0.975, 5), 5) =
 * 0.9750000000296832). Quantiles are therefore checked against mpmath at
 * 40 digits (to 1e-13), and values that went through st.t.ppf (t intervals)
 * with a 1e-8 tolerance.
 */
#include <glib.h>
#include <math.h>
#include "stats.h"

/* |a − b| ≤ tol·|b| */
#define assert_rel(a, b, tol) g_assert_cmpfloat(fabs((a) - (b)), <=, (tol) * fabs(b))
#define assert_abs(a, b, tol) g_assert_cmpfloat_with_epsilon((a), (b), (tol))

/* ---- descriptives ---------------------------------------------------------- */

static void test_describe(void) {
	/* x = [31.5, 36.0, 38.2, 29.9, 40.0, 35.1, 33.3]
	 * np.mean(x), np.std(x, ddof=1), st.sem(x), np.min, np.max, np.median */
	const double x[] = {31.5, 36.0, 38.2, 29.9, 40.0, 35.1, 33.3};
	stats_desc d;
	g_assert_cmpint(stats_describe(x, 7, &d), ==, 0);
	g_assert_cmpint(d.n, ==, 7);
	assert_rel(d.mean, 34.857142857142854, 1e-14);
	assert_rel(d.sd, 3.5883409085802427, 1e-13);
	assert_rel(d.se, 1.356265380488983, 1e-13);
	g_assert_cmpfloat(d.min, ==, 29.9);
	g_assert_cmpfloat(d.max, ==, 40.0);
	g_assert_cmpfloat(d.median, ==, 35.1);

	/* y = [3, 1, 4, 1, 5, 9, 2, 6]: even n, median = mean of the middle two
	 * np.mean(y) 3.875, np.std(y, ddof=1), st.sem(y), np.median(y) 3.5 */
	const double y[] = {3, 1, 4, 1, 5, 9, 2, 6};
	g_assert_cmpint(stats_describe(y, 8, &d), ==, 0);
	g_assert_cmpfloat(d.mean, ==, 3.875);
	assert_rel(d.sd, 2.748376143938713, 1e-14);
	assert_rel(d.se, 0.9716977043151993, 1e-14);
	g_assert_cmpfloat(d.median, ==, 3.5);
	g_assert_cmpfloat(d.min, ==, 1);
	g_assert_cmpfloat(d.max, ==, 9);
	/* the input is not reordered */
	g_assert_cmpfloat(y[0], ==, 3);
	g_assert_cmpfloat(y[5], ==, 9);

	/* n = 1: a mean and a median, no spread */
	const double one[] = {27.5};
	g_assert_cmpint(stats_describe(one, 1, &d), ==, 0);
	g_assert_cmpfloat(d.mean, ==, 27.5);
	g_assert_cmpfloat(d.median, ==, 27.5);
	g_assert_true(isnan(d.sd));
	g_assert_true(isnan(d.se));

	/* a large offset does not eat the SD (two-pass sums):
	 * 1e9 + [0.1, 0.2, 0.3] has SD 0.1 up to the inputs' own rounding */
	const double big[] = {1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3};
	g_assert_cmpint(stats_describe(big, 3, &d), ==, 0);
	assert_rel(d.sd, 0.1, 1e-6);
}

static void test_describe_refusals(void) {
	stats_desc d;
	const double x[] = {1, 2, NAN, 4};
	g_assert_cmpint(stats_describe(x, 0, &d), ==, -1);
	g_assert_cmpint(d.n, ==, 0);
	g_assert_true(isnan(d.mean) && isnan(d.median) && isnan(d.min));
	/* NaN and infinities are refused, not skipped */
	g_assert_cmpint(stats_describe(x, 4, &d), ==, -1);
	g_assert_true(isnan(d.mean));
	const double inf[] = {1, INFINITY};
	g_assert_cmpint(stats_describe(inf, 2, &d), ==, -1);
	g_assert_cmpint(stats_describe(NULL, 3, &d), ==, -1);
	/* the finite prefix is fine */
	g_assert_cmpint(stats_describe(x, 2, &d), ==, 0);
	g_assert_cmpfloat(d.mean, ==, 1.5);
}

/* ---- the t distribution ------------------------------------------------------ */

static void test_t_quantile_table(void) {
	/* t(0.975, df), the two-sided 95 % critical values, as printed (3
	 * decimals) in the NIST/SEMATECH e-Handbook of Statistical Methods,
	 * §1.3.6.7.2 "Critical values of the Student's t distribution" */
	const double df[] = {1, 2, 5, 10, 30, 100};
	const double table[] = {12.706, 4.303, 2.571, 2.228, 2.042, 1.984};
	/* the same to 20 digits: mpmath (mp.dps = 40) root of
	 * betainc(df/2, 1/2, 0, df/(df+t²), regularized=True)/2 = 0.025 */
	const double exact[] = {12.706204736174693314, 4.3026527297494617894,
		2.5705818356363147828, 2.2281388519862742245,
		2.0422724563012378878, 1.9839715185235518946};
	/* and st.t.ppf(0.975, df), scipy 1.10.1 (accurate to ~1e-9) */
	const double scipy_ppf[] = {12.706204736432095, 4.302652729911275,
		2.5705818366147395, 2.2281388519649385,
		2.0422724563012373, 1.9839715184496334};
	for(int i = 0; i < 6; i++) {
		double t = stats_t_quantile(0.975, df[i]);
		assert_abs(t, table[i], 0.0005);
		assert_rel(t, exact[i], 1e-13);
		assert_rel(t, scipy_ppf[i], 1e-8);
		/* symmetric (up to 1 − 0.975 ≠ 0.025 in binary) */
		assert_rel(stats_t_quantile(0.025, df[i]), -t, 1e-13);
	}
}

static void test_t_quantile_more(void) {
	/* other levels and a fractional df; mpmath as above (tail 1 − p):
	 *   p      df    mpmath                 st.t.ppf
	 *   0.995  10    3.1692726726169507118  3.169272667175838
	 *   0.95   5     2.0150483733330235417  2.015048372669157
	 *   0.9    2.5   1.730250928807176833   1.730250928807177
	 *   0.999  30    3.3851848668293047853  3.385184866818216
	 *   0.75   3     0.76489232840434528066 0.764892328080891 */
	assert_rel(stats_t_quantile(0.995, 10), 3.1692726726169507118, 1e-13);
	assert_rel(stats_t_quantile(0.95, 5), 2.0150483733330235417, 1e-13);
	assert_rel(stats_t_quantile(0.9, 2.5), 1.730250928807176833, 1e-13);
	assert_rel(stats_t_quantile(0.999, 30), 3.3851848668293047853, 1e-13);
	assert_rel(stats_t_quantile(0.75, 3), 0.76489232840434528066, 1e-13);
	g_assert_cmpfloat(stats_t_quantile(0.5, 7), ==, 0);
	/* df = 1 is the Cauchy distribution: t = cot(π(1 − p)); in the far
	 * tail, 1 − p = 1e-9: cot(π·1e-9) = 1/(π·1e-9) − π·1e-9/3 */
	assert_rel(stats_t_quantile(1 - 1e-9, 1), 1 / (G_PI * 1e-9), 1e-7);
	assert_rel(stats_t_quantile(1e-12, 1), -1 / (G_PI * 1e-12), 1e-12);
	/* many degrees of freedom approach the normal: st.norm.ppf(0.975) */
	assert_rel(stats_t_quantile(0.975, 1e6), STATS_Z95, 1e-5);

	/* the CDF: st.t.cdf(2.0, 5), st.t.cdf(-1.3, 12), st.t.cdf(0.4, 3.5) */
	assert_rel(stats_t_cdf(2.0, 5), 0.9490302605850709, 1e-13);
	assert_rel(stats_t_cdf(-1.3, 12), 0.10900858554175712, 1e-12);
	assert_rel(stats_t_cdf(0.4, 3.5), 0.6438275532327781, 1e-13);
	g_assert_cmpfloat(stats_t_cdf(0, 4), ==, 0.5);
	g_assert_cmpfloat(stats_t_cdf(INFINITY, 4), ==, 1);
	g_assert_cmpfloat(stats_t_cdf(-INFINITY, 4), ==, 0);

	/* outside the domain */
	g_assert_true(isnan(stats_t_quantile(0, 5)));
	g_assert_true(isnan(stats_t_quantile(1, 5)));
	g_assert_true(isnan(stats_t_quantile(NAN, 5)));
	g_assert_true(isnan(stats_t_quantile(0.9, 0)));
	g_assert_true(isnan(stats_t_quantile(0.9, -3)));
	g_assert_true(isnan(stats_t_quantile(0.9, NAN)));
	g_assert_true(isnan(stats_t_cdf(NAN, 3)));
	g_assert_true(isnan(stats_t_cdf(1, 0)));
}

/* ---- a mean with its t interval ------------------------------------------------ */

static void test_mean_ci(void) {
	/* x = [31.5, 36.0, 38.2, 29.9, 40.0, 35.1, 33.3] (as in describe)
	 * st.t.interval(level, 6, loc=np.mean(x), scale=st.sem(x)):
	 *   0.95: (31.538481027518404, 38.17580468676731)
	 *   0.90: (32.221674714797246, 37.492610999488456)
	 *   0.99: (29.82888658116511, 39.8853991331206)
	 * through st.t.ppf, hence the 1e-8 tolerance */
	const double x[] = {31.5, 36.0, 38.2, 29.9, 40.0, 35.1, 33.3};
	stats_ci ci;
	g_assert_cmpint(stats_mean_ci(x, 7, 0.95, &ci), ==, 0);
	g_assert_cmpint(ci.n, ==, 7);
	g_assert_cmpfloat(ci.df, ==, 6);
	g_assert_cmpfloat(ci.level, ==, 0.95);
	assert_rel(ci.mean, 34.857142857142854, 1e-14);
	assert_rel(ci.sd, 3.5883409085802427, 1e-13);
	assert_rel(ci.se, 1.356265380488983, 1e-13);
	assert_abs(ci.t, 2.4469118487916806, 1e-8);
	assert_abs(ci.lo, 31.538481027518404, 1e-8);
	assert_abs(ci.hi, 38.17580468676731, 1e-8);
	g_assert_cmpint(stats_mean_ci(x, 7, 0.90, &ci), ==, 0);
	assert_abs(ci.lo, 32.221674714797246, 1e-8);
	assert_abs(ci.hi, 37.492610999488456, 1e-8);
	g_assert_cmpint(stats_mean_ci(x, 7, 0.99, &ci), ==, 0);
	assert_abs(ci.lo, 29.82888658116511, 1e-8);
	assert_abs(ci.hi, 39.8853991331206, 1e-8);

	/* no spread: a zero-width interval, not a refusal */
	const double same[] = {36, 36, 36};
	g_assert_cmpint(stats_mean_ci(same, 3, 0.95, &ci), ==, 0);
	g_assert_cmpfloat(ci.lo, ==, 36);
	g_assert_cmpfloat(ci.hi, ==, 36);

	/* refusals: n < 2, levels outside (0, 1), NaN */
	g_assert_cmpint(stats_mean_ci(x, 1, 0.95, &ci), ==, -1);
	g_assert_true(isnan(ci.mean) && isnan(ci.lo) && isnan(ci.hi));
	g_assert_cmpint(stats_mean_ci(x, 7, 0, &ci), ==, -1);
	g_assert_cmpint(stats_mean_ci(x, 7, 1, &ci), ==, -1);
	g_assert_cmpint(stats_mean_ci(x, 7, 95, &ci), ==, -1);
	g_assert_cmpint(stats_mean_ci(x, 7, NAN, &ci), ==, -1);
	const double nan[] = {1, 2, NAN};
	g_assert_cmpint(stats_mean_ci(nan, 3, 0.95, &ci), ==, -1);
	g_assert_true(isnan(ci.hi));
}

/* ---- Hedges' g ----------------------------------------------------------------- */

static void test_hedges_g(void) {
	/* a (video)     = [33.2, 35.0, 29.8, 37.1, 31.5, 36.4]
	 * b (in person) = [36.9, 38.2, 34.5, 39.0, 37.3, 35.8, 38.8]
	 * numpy, by the formula in stats.h:
	 *   ma, sa, na = a.mean(), a.std(ddof=1), 6  → 33.833333333333336, 2.8542366171476856
	 *   mb, sb, nb = b.mean(), b.std(ddof=1), 7  → 37.214285714285715, 1.6405573965663536
	 *   sp = np.sqrt(((na-1)*sa**2 + (nb-1)*sb**2) / (na+nb-2))     2.2740013744679772
	 *   d = (ma - mb) / sp                                          -1.4867855485546413
	 *   J = 1 - 3/(4*(na+nb) - 9)                                   0.9302325581395349 (= 40/43)
	 *   g = J*d                                                     -1.3830563242368756
	 *   se = np.sqrt((na+nb)/(na*nb) + g**2/(2*(na+nb)))            0.6189464946314536
	 *   g ∓ 1.959963984540054*se        -2.5961691620718383, -0.1699434864019127 */
	const double a[] = {33.2, 35.0, 29.8, 37.1, 31.5, 36.4};
	const double b[] = {36.9, 38.2, 34.5, 39.0, 37.3, 35.8, 38.8};
	stats_effect e;
	g_assert_cmpint(stats_hedges_g(a, 6, b, 7, &e), ==, 0);
	g_assert_cmpint(e.na, ==, 6);
	g_assert_cmpint(e.nb, ==, 7);
	assert_rel(e.mean_a, 33.833333333333336, 1e-14);
	assert_rel(e.sd_a, 2.8542366171476856, 1e-13);
	assert_rel(e.mean_b, 37.214285714285715, 1e-14);
	assert_rel(e.sd_b, 1.6405573965663536, 1e-13);
	assert_rel(e.sd_pooled, 2.2740013744679772, 1e-13);
	assert_rel(e.d, -1.4867855485546413, 1e-12);
	assert_rel(e.j, 40.0 / 43.0, 1e-15);
	assert_rel(e.g, -1.3830563242368756, 1e-12);
	assert_rel(e.se, 0.6189464946314536, 1e-12);
	assert_rel(e.lo, -2.5961691620718383, 1e-12);
	assert_rel(e.hi, -0.1699434864019127, 1e-11);

	/* swapping the groups flips the sign and nothing else */
	stats_effect s;
	g_assert_cmpint(stats_hedges_g(b, 7, a, 6, &s), ==, 0);
	assert_rel(s.g, -e.g, 1e-14);
	assert_rel(s.se, e.se, 1e-14);
	assert_rel(s.lo, -e.hi, 1e-12);

	/* one group without spread is fine while the pooled SD is not 0 */
	const double flat[] = {36, 36, 36};
	g_assert_cmpint(stats_hedges_g(flat, 3, b, 7, &s), ==, 0);
	g_assert_cmpfloat(s.sd_a, ==, 0);
}

static void test_hedges_g_textbook(void) {
	/* Borenstein, Hedges, Higgins & Rothstein (2009), Introduction to
	 * Meta-Analysis, ch. 4, worked example for d and g from two independent
	 * groups: X̄1 = 103.00, S1 = 5.5, n1 = 50; X̄2 = 100.00, S2 = 4.5,
	 * n2 = 50. The book's 4-decimal results: S_within = 5.0249,
	 * d = 0.5970, J = 0.9923, g = 0.5924. (Its V_g = J²·V_d gives
	 * SE_g = 0.2028; stats.c uses the large-sample variance with g
	 * plugged in, docs/statistics.md, which numpy gives as below.)
	 * numpy, the formula in stats.h with these summaries:
	 *   sp 5.024937810560445, d 0.5970223141259935, J 0.9923273657289002,
	 *   g 0.5924415802580191, se 0.2043402435402608,
	 *   CI 0.19194206232696442 .. 0.9929410981890737 */
	stats_effect e;
	g_assert_cmpint(stats_hedges_g_summary(103.0, 5.5, 50, 100.0, 4.5, 50, &e), ==, 0);
	assert_abs(e.sd_pooled, 5.0249, 0.00005);
	assert_abs(e.d, 0.5970, 0.00005);
	assert_abs(e.j, 0.9923, 0.00005);
	assert_abs(e.g, 0.5924, 0.00005);
	assert_rel(e.sd_pooled, 5.024937810560445, 1e-14);
	assert_rel(e.d, 0.5970223141259935, 1e-13);
	assert_rel(e.j, 0.9923273657289002, 1e-15);
	assert_rel(e.g, 0.5924415802580191, 1e-13);
	assert_rel(e.se, 0.2043402435402608, 1e-13);
	assert_rel(e.lo, 0.19194206232696442, 1e-12);
	assert_rel(e.hi, 0.9929410981890737, 1e-13);
	/* the book's SE_g is J·SE_d: sqrt(0.041782178217821785) × J */
	assert_abs(e.j * sqrt(100.0 / 2500.0 + e.d * e.d / 200.0), 0.2028, 0.00005);
}

static void test_hedges_g_refusals(void) {
	const double a[] = {33.2, 35.0, 29.8};
	const double b[] = {36.9, 38.2, 34.5};
	stats_effect e;
	/* fewer than 2 in a group */
	g_assert_cmpint(stats_hedges_g(a, 1, b, 3, &e), ==, -1);
	g_assert_cmpint(e.na, ==, 1);
	g_assert_true(isnan(e.g) && isnan(e.se) && isnan(e.lo) && isnan(e.hi));
	g_assert_cmpint(stats_hedges_g(a, 3, b, 1, &e), ==, -1);
	g_assert_cmpint(stats_hedges_g(a, 0, b, 0, &e), ==, -1);
	/* zero pooled SD: every score equal within each group */
	const double fa[] = {30, 30, 30}, fb[] = {35, 35};
	g_assert_cmpint(stats_hedges_g(fa, 3, fb, 2, &e), ==, -1);
	g_assert_true(isnan(e.d));
	/* NaN or Inf anywhere */
	const double na[] = {33.2, NAN, 29.8};
	g_assert_cmpint(stats_hedges_g(na, 3, b, 3, &e), ==, -1);
	const double ib[] = {36.9, -INFINITY};
	g_assert_cmpint(stats_hedges_g(a, 3, ib, 2, &e), ==, -1);
	/* summaries */
	g_assert_cmpint(stats_hedges_g_summary(1, 1, 1, 2, 1, 5, &e), ==, -1);
	g_assert_cmpint(stats_hedges_g_summary(1, -1, 5, 2, 1, 5, &e), ==, -1);
	g_assert_cmpint(stats_hedges_g_summary(1, 0, 5, 2, 0, 5, &e), ==, -1);
	g_assert_cmpint(stats_hedges_g_summary(NAN, 1, 5, 2, 1, 5, &e), ==, -1);
	g_assert_cmpint(stats_hedges_g_summary(1, INFINITY, 5, 2, 1, 5, &e), ==, -1);
	/* the smallest accepted design: 2 + 2 (J = 1 − 3/7) */
	const double a2[] = {1, 2}, b2[] = {2, 4};
	g_assert_cmpint(stats_hedges_g(a2, 2, b2, 2, &e), ==, 0);
	assert_rel(e.j, 4.0 / 7.0, 1e-15);
}

/* ---- correlations ----------------------------------------------------------------- */

/* ties in x: ranks [1, 2.5, 2.5, 4, 6, 6, 6, 8, 9, 10] (st.rankdata(x)) */
static const double cx[] = {1, 2, 2, 3, 4, 4, 4, 5, 6, 7};
static const double cy[] = {2.5, 3.1, 2.9, 4.0, 3.8, 5.1, 4.4, 4.9, 6.2, 5.5};
/* ties in both, a negative relation (freeze seconds vs score, say) */
static const double dx[] = {0.0, 1.5, 1.5, 2.0, 3.0, 3.0, 4.5, 6.0};
static const double dy[] = {38, 39, 36, 36, 33, 34, 30, 31};

static void test_spearman(void) {
	/* res = st.spearmanr(cx, cy); rho = res.correlation, p = res.pvalue
	 *   rho 0.9231861823449954, p 0.00013871724475732105
	 * Fisher z with the Bonett–Wright SE, numpy:
	 *   z = np.arctanh(rho)                        1.610177009120495
	 *   se = np.sqrt((1 + rho**2/2) / (n - 3))     0.45136876967039513
	 *   np.tanh(z ∓ 1.959963984540054*se)          0.620311020027995, 0.9864764764987145 */
	stats_corr c;
	g_assert_cmpint(stats_spearman(cx, cy, 10, &c), ==, 0);
	g_assert_cmpint(c.n, ==, 10);
	assert_rel(c.r, 0.9231861823449954, 1e-13);
	assert_rel(c.z, 1.610177009120495, 1e-12);
	assert_rel(c.se, 0.45136876967039513, 1e-13);
	assert_rel(c.lo, 0.620311020027995, 1e-12);
	assert_rel(c.hi, 0.9864764764987145, 1e-13);
	assert_rel(c.p, 0.00013871724475732105, 1e-9);

	/* dx, dy: st.spearmanr → rho -0.9151683228048982, p 0.0014307538559247947;
	 * CI as above: -0.9890815969995571 .. -0.47336829049295887 */
	g_assert_cmpint(stats_spearman(dx, dy, 8, &c), ==, 0);
	assert_rel(c.r, -0.9151683228048982, 1e-13);
	assert_rel(c.p, 0.0014307538559247947, 1e-9);
	assert_rel(c.lo, -0.9890815969995571, 1e-13);
	assert_rel(c.hi, -0.47336829049295887, 1e-12);

	/* symmetric in x and y */
	stats_corr s;
	g_assert_cmpint(stats_spearman(dy, dx, 8, &s), ==, 0);
	assert_rel(s.r, c.r, 1e-15);

	/* a perfect monotone relation: ρ = 1 (st.spearmanr(x, x**3) → 1.0, p 0.0),
	 * a degenerate interval [1, 1] */
	const double px[] = {1, 2, 3, 4, 5, 6};
	const double py[] = {1, 8, 27, 64, 125, 216};
	g_assert_cmpint(stats_spearman(px, py, 6, &c), ==, 0);
	g_assert_cmpfloat(c.r, ==, 1);
	g_assert_cmpfloat(c.lo, ==, 1);
	g_assert_cmpfloat(c.hi, ==, 1);
	g_assert_cmpfloat(c.p, ==, 0);
	g_assert_true(isinf(c.z) && c.z > 0);
	const double ny[] = {6, 5, 4, 3, 2, 1};
	g_assert_cmpint(stats_spearman(px, ny, 6, &c), ==, 0);
	g_assert_cmpfloat(c.r, ==, -1);
	g_assert_cmpfloat(c.lo, ==, -1);
}

static void test_pearson(void) {
	/* res = st.pearsonr(cx, cy); ci = res.confidence_interval(0.95)
	 * (scipy's Fisher interval, SE 1/sqrt(n-3), norm.ppf(0.975)):
	 *   r 0.9264320395665193, p 0.00011718372535522111,
	 *   CI 0.7122870097645027 .. 0.9827906683461403; np.arctanh(r) 1.6326076380263805 */
	stats_corr c;
	g_assert_cmpint(stats_pearson(cx, cy, 10, &c), ==, 0);
	assert_rel(c.r, 0.9264320395665193, 1e-13);
	assert_rel(c.z, 1.6326076380263805, 1e-12);
	assert_rel(c.se, 1 / sqrt(7.0), 1e-15);
	assert_rel(c.lo, 0.7122870097645027, 1e-12);
	assert_rel(c.hi, 0.9827906683461403, 1e-13);
	assert_rel(c.p, 0.00011718372535522111, 1e-9);
	/* dx, dy: r -0.8955325567262853, p 0.0026315968703640416,
	 * CI -0.9810846256713343 .. -0.5173154455566742 */
	g_assert_cmpint(stats_pearson(dx, dy, 8, &c), ==, 0);
	assert_rel(c.r, -0.8955325567262853, 1e-13);
	assert_rel(c.p, 0.0026315968703640416, 1e-9);
	assert_rel(c.lo, -0.9810846256713343, 1e-13);
	assert_rel(c.hi, -0.5173154455566742, 1e-12);
	/* an exact line: r = 1 up to rounding, CI inside [−1, 1] */
	const double lx[] = {1, 2, 3, 4}, ly[] = {2, 4, 6, 8};
	g_assert_cmpint(stats_pearson(lx, ly, 4, &c), ==, 0);
	assert_abs(c.r, 1, 1e-15);
	g_assert_cmpfloat(c.hi, <=, 1);
}

static void test_corr_refusals(void) {
	stats_corr c;
	const double x[] = {1, 2, 3, 4, 5};
	const double y[] = {2, 1, 4, 3, 5};
	/* n < 4 */
	g_assert_cmpint(stats_spearman(x, y, 3, &c), ==, -1);
	g_assert_cmpint(c.n, ==, 3);
	g_assert_true(isnan(c.r) && isnan(c.lo) && isnan(c.hi) && isnan(c.p));
	g_assert_cmpint(stats_pearson(x, y, 3, &c), ==, -1);
	g_assert_cmpint(stats_spearman(x, y, 0, &c), ==, -1);
	/* n = 4 is the smallest accepted */
	g_assert_cmpint(stats_spearman(x, y, 4, &c), ==, 0);
	g_assert_cmpint(stats_pearson(x, y, 4, &c), ==, 0);
	/* a constant variable (all ties) */
	const double k[] = {36, 36, 36, 36, 36};
	g_assert_cmpint(stats_spearman(k, y, 5, &c), ==, -1);
	g_assert_true(isnan(c.r));
	g_assert_cmpint(stats_spearman(x, k, 5, &c), ==, -1);
	g_assert_cmpint(stats_pearson(x, k, 5, &c), ==, -1);
	g_assert_true(isnan(c.r));
	/* NaN or Inf in either */
	const double n1[] = {1, 2, NAN, 4, 5};
	const double n2[] = {1, 2, 3, INFINITY, 5};
	g_assert_cmpint(stats_spearman(n1, y, 5, &c), ==, -1);
	g_assert_cmpint(stats_spearman(x, n2, 5, &c), ==, -1);
	g_assert_cmpint(stats_pearson(n1, y, 5, &c), ==, -1);
	g_assert_cmpint(stats_pearson(x, n2, 5, &c), ==, -1);
	g_assert_cmpint(stats_pearson(NULL, y, 5, &c), ==, -1);
}

/* ---- congruence, ceiling -------------------------------------------------------------- */

static void test_congruence_ceiling(void) {
	/* client [38, 36.5, 40, 29], therapist [35, 37, 36.5, 30]:
	 * np.mean(np.abs(c - t)) = 2.0 */
	const double cl[] = {38, 36.5, 40, 29};
	const double th[] = {35, 37, 36.5, 30};
	g_assert_cmpfloat(stats_mean_abs_diff(cl, th, 4), ==, 2.0);
	g_assert_cmpfloat(stats_mean_abs_diff(th, cl, 4), ==, 2.0);
	g_assert_cmpfloat(stats_mean_abs_diff(cl, cl, 4), ==, 0);
	g_assert_true(isnan(stats_mean_abs_diff(cl, th, 0)));
	const double nn[] = {35, NAN};
	g_assert_true(isnan(stats_mean_abs_diff(cl, nn, 2)));

	/* 4 of 7 at the maximum 40; 5 of 7 within 0.1 of it */
	const double x[] = {40, 39.95, 40, 38, 40, 36.5, 40.0};
	g_assert_cmpfloat(stats_ceiling_share(x, 7, 40, 1e-9), ==, 4.0 / 7.0);
	g_assert_cmpfloat(stats_ceiling_share(x, 7, 40, 0.1), ==, 5.0 / 7.0);
	g_assert_cmpfloat(stats_ceiling_share(x, 7, 40, 0), ==, 4.0 / 7.0);
	g_assert_cmpfloat(stats_ceiling_share(x, 7, 50, 0), ==, 0);
	g_assert_cmpfloat(stats_ceiling_share(x, 1, 40, 0), ==, 1);
	g_assert_true(isnan(stats_ceiling_share(x, 0, 40, 0)));
	g_assert_true(isnan(stats_ceiling_share(x, 7, 40, -1)));
	g_assert_true(isnan(stats_ceiling_share(x, 7, NAN, 0)));
	g_assert_true(isnan(stats_ceiling_share(nn, 2, 40, 0)));
}

/* ---- the formation curve ----------------------------------------------------------------- */

static void test_formation(void) {
	/* visit number and score of ten visits (several clients):
	 *   vi = [1, 1, 1, 2, 2, 2, 2, 3, 5, 5]
	 *   sc = [30.5, 34.0, 28.0, 33.0, 35.5, 31.0, 36.0, 37.0, 38.5, 36.0]
	 * per k: s = sc[vi == k]; s.mean(), s.std(ddof=1), st.sem(s),
	 *   st.t.interval(0.95, len(s)-1, loc=s.mean(), scale=st.sem(s)):
	 *   1: n 3, 30.833333333333332, 3.013856886670854, 1.7400510848184252,
	 *      23.34649778305426 .. 38.3201688836124
	 *   2: n 4, 33.875, 2.322893310794392, 1.161446655397196,
	 *      30.17875838274643 .. 37.57124161725357
	 *   3: n 1, 37.0 (no interval); 4: n 0
	 *   5: n 2, 37.25, 1.7677669529663689, 1.25, 21.36724407945988 .. 53.13275592054012 */
	const int vi[] = {1, 1, 1, 2, 2, 2, 2, 3, 5, 5};
	const double sc[] = {30.5, 34.0, 28.0, 33.0, 35.5, 31.0, 36.0, 37.0, 38.5, 36.0};
	stats_point p[8];
	g_assert_cmpint(stats_formation(vi, sc, 10, p, 8), ==, 5);
	for(int i = 0; i < 5; i++)
		g_assert_cmpint(p[i].visit, ==, i + 1);
	g_assert_cmpint(p[0].n, ==, 3);
	assert_rel(p[0].mean, 30.833333333333332, 1e-14);
	assert_rel(p[0].sd, 3.013856886670854, 1e-13);
	assert_rel(p[0].se, 1.7400510848184252, 1e-13);
	assert_abs(p[0].lo, 23.34649778305426, 1e-8);
	assert_abs(p[0].hi, 38.3201688836124, 1e-8);
	g_assert_cmpint(p[1].n, ==, 4);
	assert_rel(p[1].mean, 33.875, 1e-15);
	assert_rel(p[1].sd, 2.322893310794392, 1e-13);
	assert_rel(p[1].se, 1.161446655397196, 1e-13);
	assert_abs(p[1].lo, 30.17875838274643, 1e-8);
	assert_abs(p[1].hi, 37.57124161725357, 1e-8);
	g_assert_cmpint(p[2].n, ==, 1);
	g_assert_cmpfloat(p[2].mean, ==, 37.0);
	g_assert_true(isnan(p[2].sd) && isnan(p[2].se) && isnan(p[2].lo) && isnan(p[2].hi));
	g_assert_cmpint(p[3].n, ==, 0);
	g_assert_true(isnan(p[3].mean) && isnan(p[3].lo));
	g_assert_cmpint(p[4].n, ==, 2);
	assert_rel(p[4].mean, 37.25, 1e-15);
	assert_rel(p[4].sd, 1.7677669529663689, 1e-13);
	assert_rel(p[4].se, 1.25, 1e-13);
	assert_abs(p[4].lo, 21.36724407945988, 1e-8);
	assert_abs(p[4].hi, 53.13275592054012, 1e-8);

	/* capped at max_points: visits 5 are left out */
	g_assert_cmpint(stats_formation(vi, sc, 10, p, 3), ==, 3);
	g_assert_cmpint(p[2].n, ==, 1);
	/* no data: no points */
	g_assert_cmpint(stats_formation(vi, sc, 0, p, 8), ==, 0);
	g_assert_cmpint(stats_formation(NULL, NULL, 0, p, 8), ==, 0);
}

static void test_formation_refusals(void) {
	stats_point p[4];
	const int vi[] = {1, 0, 2};
	const double sc[] = {30, 31, 32};
	/* visit numbers start at 1 */
	g_assert_cmpint(stats_formation(vi, sc, 3, p, 4), ==, -1);
	for(int i = 0; i < 4; i++) {
		g_assert_cmpint(p[i].visit, ==, i + 1);
		g_assert_cmpint(p[i].n, ==, 0);
		g_assert_true(isnan(p[i].mean));
	}
	const int ok[] = {1, 1, 2};
	const double nan[] = {30, NAN, 32};
	g_assert_cmpint(stats_formation(ok, nan, 3, p, 4), ==, -1);
	g_assert_cmpint(stats_formation(ok, sc, -1, p, 4), ==, -1);
	g_assert_cmpint(stats_formation(ok, sc, 3, p, 0), ==, -1);
	g_assert_cmpint(stats_formation(ok, NULL, 3, p, 4), ==, -1);
}

/* ---- properties on random data (fixed seed) ------------------------------------------- */

static void fill(GRand *rnd, double *x, int n, gboolean ties) {
	for(int i = 0; i < n; i++) {
		if(ties)
			x[i] = g_rand_int_range(rnd, 0, 6);            /* a 0..5 Likert item */
		else
			x[i] = g_rand_double_range(rnd, 0, 40);         /* a 0–40 total */
	}
}

static int constant(const double *x, int n) {
	for(int i = 1; i < n; i++)
		if(x[i] != x[0])
			return 0;
	return 1;
}

static void test_properties(void) {
	GRand *rnd = g_rand_new_with_seed(20240611);
	double x[200], y[200], ex[200];
	int checked_corr = 0, checked_g = 0;
	for(int it = 0; it < 2000; it++) {
		int n = g_rand_int_range(rnd, 4, 200);
		if(it % 3 == 0)
			n = g_rand_int_range(rnd, 4, 9);              /* small samples too */
		gboolean ties = it % 2;
		fill(rnd, x, n, ties);
		fill(rnd, y, n, ties);
		/* a relation of random strength and sign */
		double w = g_rand_double_range(rnd, -1, 1);
		for(int i = 0; i < n; i++)
			y[i] = w * x[i] + (1 - fabs(w)) * y[i];
		if(ties)
			for(int i = 0; i < n; i++)
				y[i] = round(y[i]);
		int degenerate = constant(x, n) || constant(y, n);

		stats_corr s, p, m;
		int rs = stats_spearman(x, y, n, &s);
		int rp = stats_pearson(x, y, n, &p);
		g_assert_cmpint(rs, ==, degenerate ? -1 : 0);
		g_assert_cmpint(rp, ==, degenerate ? -1 : 0);
		if(!degenerate) {
			stats_corr *cs[] = {&s, &p};
			for(int k = 0; k < 2; k++) {
				stats_corr *c = cs[k];
				g_assert_cmpfloat(c->r, >=, -1);
				g_assert_cmpfloat(c->r, <=, 1);
				g_assert_cmpfloat(c->lo, >=, -1);
				g_assert_cmpfloat(c->hi, <=, 1);
				g_assert_cmpfloat(c->lo, <=, c->r);
				g_assert_cmpfloat(c->r, <=, c->hi);
				g_assert_cmpfloat(c->p, >=, 0);
				g_assert_cmpfloat(c->p, <=, 1);
			}
			/* ranks ignore monotone transformations: exactly the same ρ */
			for(int i = 0; i < n; i++)
				ex[i] = exp(x[i] / 8);
			g_assert_cmpint(stats_spearman(ex, y, n, &m), ==, 0);
			g_assert_cmpfloat(m.r, ==, s.r);
			checked_corr++;
		}

		/* Hedges' g on two random groups */
		int na = g_rand_int_range(rnd, 2, 60), nb = g_rand_int_range(rnd, 2, 60);
		double shift = g_rand_double_range(rnd, -10, 10);
		fill(rnd, x, na, ties);
		fill(rnd, y, nb, ties);
		for(int i = 0; i < nb; i++)
			y[i] += shift;
		stats_effect e, f;
		int rg = stats_hedges_g(x, na, y, nb, &e);
		if(constant(x, na) && constant(y, nb)) {
			g_assert_cmpint(rg, ==, -1);
		} else {
			g_assert_cmpint(rg, ==, 0);
			g_assert_cmpfloat(e.lo, <=, e.g);
			g_assert_cmpfloat(e.g, <=, e.hi);
			g_assert_cmpfloat(e.se, >, 0);
			g_assert_cmpfloat(e.j, >, 0);
			g_assert_cmpfloat(e.j, <, 1);
			g_assert_cmpfloat(fabs(e.g), <=, fabs(e.d));
			g_assert_cmpint(stats_hedges_g(y, nb, x, na, &f), ==, 0);
			assert_abs(f.g, -e.g, 1e-12 * (1 + fabs(e.g)));
			checked_g++;
		}

		/* a mean's interval holds the mean and widens with the level */
		stats_ci c90, c99;
		g_assert_cmpint(stats_mean_ci(x, na, 0.90, &c90), ==, 0);
		g_assert_cmpint(stats_mean_ci(x, na, 0.99, &c99), ==, 0);
		g_assert_cmpfloat(c90.lo, <=, c90.mean);
		g_assert_cmpfloat(c90.mean, <=, c90.hi);
		g_assert_cmpfloat(c99.lo, <=, c90.lo);
		g_assert_cmpfloat(c99.hi, >=, c90.hi);

		/* the t quantile inverts the CDF */
		double q = exp(g_rand_double_range(rnd, log(1e-10), log(0.5)));
		double df = g_rand_double_range(rnd, 0.5, 500);
		double t = stats_t_quantile(q, df);
		g_assert_cmpfloat(t, <=, 0);
		assert_rel(stats_t_cdf(t, df), q, 1e-11);
		assert_rel(stats_t_quantile(1 - q, df), -t, 1e-6);   /* 1 − q rounds */
	}
	/* the generator gave both kinds of case plenty of times */
	g_assert_cmpint(checked_corr, >, 1500);
	g_assert_cmpint(checked_g, >, 1500);
	g_rand_free(rnd);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/stats/describe", test_describe);
	g_test_add_func("/stats/describe-refusals", test_describe_refusals);
	g_test_add_func("/stats/t-quantile-table", test_t_quantile_table);
	g_test_add_func("/stats/t-quantile-more", test_t_quantile_more);
	g_test_add_func("/stats/mean-ci", test_mean_ci);
	g_test_add_func("/stats/hedges-g", test_hedges_g);
	g_test_add_func("/stats/hedges-g-textbook", test_hedges_g_textbook);
	g_test_add_func("/stats/hedges-g-refusals", test_hedges_g_refusals);
	g_test_add_func("/stats/spearman", test_spearman);
	g_test_add_func("/stats/pearson", test_pearson);
	g_test_add_func("/stats/corr-refusals", test_corr_refusals);
	g_test_add_func("/stats/congruence-ceiling", test_congruence_ceiling);
	g_test_add_func("/stats/formation", test_formation);
	g_test_add_func("/stats/formation-refusals", test_formation_refusals);
	g_test_add_func("/stats/properties", test_properties);
	return g_test_run();
}
