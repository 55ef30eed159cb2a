/*
 * stats.c — descriptives, t intervals, Hedges' g, correlations with Fisher-z
 * intervals, the formation curve, congruence and ceiling share (stats.h;
 * formulas and references in docs/statistics.md).
 *
 * Numerics: means and sums of squares in two passes (the mean first, then
 * squared deviations), which keeps the SD exact to a few ulps for data like
 * scores on a 0–40 scale; the t distribution through the regularized
 * incomplete beta function (continued fraction, modified Lentz), inverted
 * by Newton steps kept inside a bisection bracket.
 */
#include "stats.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>

/* ---- helpers -------------------------------------------------------------- */

static int all_finite(const double *x, int n) {
	for(int i = 0; i < n; i++)
		if(!isfinite(x[i]))
			return 0;
	return 1;
}

/* mean and sum of squared deviations, two passes with the usual correction
 * term (Chan, Golub & LeVeque 1983) */
static void mean_ss(const double *x, int n, double *mean, double *ss) {
	double s = 0;
	for(int i = 0; i < n; i++)
		s += x[i];
	double m = s / n;
	double c = 0, q = 0;
	for(int i = 0; i < n; i++) {
		double dv = x[i] - m;
		c += dv;
		q += dv * dv;
	}
	*mean = m + c / n;
	q -= c * c / n;
	*ss = q > 0 ? q : 0;
}

static int cmp_double(const void *pa, const void *pb) {
	double a = *(const double *)pa, b = *(const double *)pb;
	return (a > b) - (a < b);
}

/* thread-safe log Γ(x) for x > 0 (lgamma() writes the global signgam) */
static double lgam(double x) {
	int sign;
	return lgamma_r(x, &sign);
}

/* ---- the t distribution --------------------------------------------------- */

/* Continued fraction for the incomplete beta function (Numerical Recipes
 * §6.4 "betacf", evaluated by the modified Lentz method). */
static double betacf(double a, double b, double x) {
	const double tiny = 1e-300, eps = 1e-16;
	double qab = a + b, qap = a + 1, qam = a - 1;
	double c = 1, d = 1 - qab * x / qap;
	if(fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	double h = d;
	for(int m = 1; m <= 20000; m++) {
		int m2 = 2 * m;
		double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
		d = 1 + aa * d;
		if(fabs(d) < tiny)
			d = tiny;
		c = 1 + aa / c;
		if(fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		h *= d * c;
		aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
		d = 1 + aa * d;
		if(fabs(d) < tiny)
			d = tiny;
		c = 1 + aa / c;
		if(fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		double del = d * c;
		h *= del;
		if(fabs(del - 1) < eps)
			break;
	}
	return h;
}

/* Stirling's series remainder: log Γ(x) − ((x − ½) log x − x + ½ log 2π),
 * for x ≥ 10 (the first omitted term is below 1e-14 there) */
static double stirling_rest(double x) {
	double x2 = 1 / (x * x);
	return (1.0 / 12 + x2 * (-1.0 / 360 + x2 * (1.0 / 1260 + x2 * (-1.0 / 1680
		+ x2 * (1.0 / 1188))))) / x;
}

/* log Γ(a + b) − log Γ(a). For large a the two logs are large and nearly
 * equal; the difference is then taken inside Stirling's series, so it stays
 * accurate to ~1e-16 absolute instead of ~1e-16 × log Γ(a). */
static double lgam_diff(double a, double b) {
	if(a < 10 || b > a)
		return lgam(a + b) - lgam(a);
	return (a - 0.5) * log1p(b / a) + b * log(a + b) - b
		+ stirling_rest(a + b) - stirling_rest(a);
}

/* Regularized incomplete beta I_x(a, b). y = 1 − x, lx = log x and
 * ly = log y are passed separately: the caller computes them without
 * cancellation (for the t distribution, from t itself), and the front
 * factor x^a·y^b/B(a, b) then keeps full relative precision even for a
 * large a (many degrees of freedom). */
static double ibeta(double a, double b, double x, double y, double lx, double ly) {
	if(x <= 0)
		return 0;
	if(y <= 0)
		return 1;
	double lbt = lgam_diff(a, b) - lgam(b) + a * lx + b * ly;
	double bt = exp(lbt);
	if(x < (a + 1) / (a + b + 2))
		return bt * betacf(a, b, x) / a;
	return 1 - bt * betacf(b, a, y) / b;
}

/* P(T > t) for t ≥ 0: ½ I_{ν/(ν+t²)}(ν/2, ½) */
static double t_upper(double t, double df) {
	if(t <= 0)
		return 0.5;
	if(isinf(t))
		return 0;
	double r = t / sqrt(df);
	if(r > 1e150)
		return 0.5 * ibeta(df / 2, 0.5, 1 / (r * r), 1, -2 * log(r), 0);
	double r2 = r * r;
	double l1 = log1p(r2);
	return 0.5 * ibeta(df / 2, 0.5, 1 / (1 + r2), r2 / (1 + r2), -l1, 2 * log(r) - l1);
}

static double t_pdf(double t, double df) {
	double lc = lgam_diff(df / 2, 0.5) - 0.5 * log(df * G_PI);
	return exp(lc - (df + 1) / 2 * log1p(t * t / df));
}

/* the t ≥ 0 with P(T > t) = q, for 0 < q ≤ ½ */
static double t_upper_inv(double q, double df) {
	if(q >= 0.5)
		return 0;
	if(df == 1)
		return 1 / tan(G_PI * q);          /* Cauchy; cot keeps small q exact */
	if(df == 2) {
		double p = 1 - q;   /* exact: q ≤ ½ */
		return (2 * p - 1) / sqrt(2 * p * q);
	}
	/* bracket [lo, hi] with t_upper(lo) ≥ q > t_upper(hi) */
	double lo = 0, hi = 1;
	for(int i = 0; i < 2100 && t_upper(hi, df) > q; i++) {
		lo = hi;
		hi *= 2;
	}
	double t = 0.5 * (lo + hi);
	for(int i = 0; i < 300; i++) {
		double f = t_upper(t, df) - q;    /* decreasing in t */
		if(f > 0)
			lo = t;
		else if(f < 0)
			hi = t;
		else
			return t;
		double dfdt = -t_pdf(t, df);
		double next = dfdt < 0 ? t - f / dfdt : NAN;
		if(!(next > lo && next < hi))
			next = 0.5 * (lo + hi);        /* Newton left the bracket: bisect */
		if(fabs(next - t) <= 1e-15 * next || hi - lo <= 1e-15 * hi)
			return next;
		t = next;
	}
	return t;
}

double stats_t_cdf(double t, double df) {
	if(isnan(t) || !(df > 0) || isinf(df))
		return NAN;
	if(t >= 0)
		return 1 - t_upper(t, df);
	return t_upper(-t, df);
}

double stats_t_quantile(double p, double df) {
	if(!(p > 0 && p < 1) || !(df > 0) || isinf(df))
		return NAN;
	if(p >= 0.5)
		return t_upper_inv(1 - p, df);   /* 1 − p exact for p ≥ ½ */
	return -t_upper_inv(p, df);
}

/* ---- descriptives and means ------------------------------------------------ */

int stats_describe(const double *x, int n, stats_desc *out) {
	out->n = n;
	out->mean = out->sd = out->se = out->min = out->max = out->median = NAN;
	if(n < 1 || !x || !all_finite(x, n))
		return -1;
	double m, ss;
	mean_ss(x, n, &m, &ss);
	out->mean = m;
	if(n >= 2) {
		out->sd = sqrt(ss / (n - 1));
		out->se = out->sd / sqrt(n);
	}
	double *s = g_new(double, n);
	for(int i = 0; i < n; i++)
		s[i] = x[i];
	qsort(s, n, sizeof(*s), cmp_double);
	out->min = s[0];
	out->max = s[n - 1];
	out->median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	g_free(s);
	return 0;
}

int stats_mean_ci(const double *x, int n, double level, stats_ci *out) {
	out->n = n;
	out->level = level;
	out->mean = out->sd = out->se = out->df = out->t = out->lo = out->hi = NAN;
	if(n < 2 || !x || !(level > 0 && level < 1) || !all_finite(x, n))
		return -1;
	double m, ss;
	mean_ss(x, n, &m, &ss);
	out->mean = m;
	out->sd = sqrt(ss / (n - 1));
	out->se = out->sd / sqrt(n);
	out->df = n - 1;
	out->t = t_upper_inv((1 - level) / 2, out->df);
	out->lo = m - out->t * out->se;
	out->hi = m + out->t * out->se;
	return 0;
}

/* ---- Hedges' g -------------------------------------------------------------- */

static void effect_nan(stats_effect *out, int na, int nb) {
	out->na = na;
	out->nb = nb;
	out->mean_a = out->sd_a = out->mean_b = out->sd_b = NAN;
	out->sd_pooled = out->d = out->j = out->g = out->se = out->lo = out->hi = NAN;
}

int stats_hedges_g_summary(double mean_a, double sd_a, int na,
		double mean_b, double sd_b, int nb, stats_effect *out) {
	effect_nan(out, na, nb);
	if(na < 2 || nb < 2 || !isfinite(mean_a) || !isfinite(mean_b)
			|| !isfinite(sd_a) || !isfinite(sd_b) || sd_a < 0 || sd_b < 0)
		return -1;
	double nt = (double)na + nb;
	double sp = sqrt(((na - 1) * sd_a * sd_a + (nb - 1) * sd_b * sd_b) / (nt - 2));
	if(!(sp > 0) || !isfinite(sp))
		return -1;
	double d = (mean_a - mean_b) / sp;
	if(!isfinite(d))
		return -1;
	double j = 1 - 3 / (4 * nt - 9);
	double g = j * d;
	double se = sqrt(nt / ((double)na * nb) + g * g / (2 * nt));
	out->mean_a = mean_a;
	out->sd_a = sd_a;
	out->mean_b = mean_b;
	out->sd_b = sd_b;
	out->sd_pooled = sp;
	out->d = d;
	out->j = j;
	out->g = g;
	out->se = se;
	out->lo = g - STATS_Z95 * se;
	out->hi = g + STATS_Z95 * se;
	return 0;
}

int stats_hedges_g(const double *a, int na, const double *b, int nb, stats_effect *out) {
	effect_nan(out, na, nb);
	if(na < 2 || nb < 2 || !a || !b || !all_finite(a, na) || !all_finite(b, nb))
		return -1;
	double ma, ssa, mb, ssb;
	mean_ss(a, na, &ma, &ssa);
	mean_ss(b, nb, &mb, &ssb);
	return stats_hedges_g_summary(ma, sqrt(ssa / (na - 1)), na,
		mb, sqrt(ssb / (nb - 1)), nb, out);
}

/* ---- correlations ------------------------------------------------------------ */

static void corr_nan(stats_corr *out, int n) {
	out->n = n;
	out->r = out->z = out->se = out->lo = out->hi = out->p = NAN;
}

/* Pearson r of (x, y), then the Fisher interval with the given
 * 1 + k·r²  numerator in the variance of z (k = 0 Pearson, ½ Bonett–Wright). */
static int corr_core(const double *x, const double *y, int n, double k, stats_corr *out) {
	double mx, my, sxx, syy;
	mean_ss(x, n, &mx, &sxx);
	mean_ss(y, n, &my, &syy);
	if(!(sxx > 0) || !(syy > 0))
		return -1;   /* a constant variable */
	double sxy = 0;
	for(int i = 0; i < n; i++)
		sxy += (x[i] - mx) * (y[i] - my);
	double r = sxy / (sqrt(sxx) * sqrt(syy));
	if(!isfinite(r))
		return -1;
	if(r > 1)
		r = 1;
	if(r < -1)
		r = -1;
	out->r = r;
	out->se = sqrt((1 + k * r * r) / (n - 3));
	if(fabs(r) == 1) {
		out->z = copysign(INFINITY, r);
		out->lo = out->hi = r;
		out->p = 0;
	} else {
		out->z = atanh(r);
		out->lo = tanh(out->z - STATS_Z95 * out->se);
		out->hi = tanh(out->z + STATS_Z95 * out->se);
		double t = fabs(r) * sqrt((n - 2) / ((1 - r) * (1 + r)));
		out->p = 2 * t_upper(t, n - 2);
	}
	return 0;
}

int stats_pearson(const double *x, const double *y, int n, stats_corr *out) {
	corr_nan(out, n);
	if(n < 4 || !x || !y || !all_finite(x, n) || !all_finite(y, n))
		return -1;
	if(corr_core(x, y, n, 0, out) < 0) {
		corr_nan(out, n);
		return -1;
	}
	return 0;
}

typedef struct rank_item {
	double v;
	int i;
} rank_item;

static int cmp_rank_item(const void *pa, const void *pb) {
	const rank_item *a = pa, *b = pb;
	if(a->v != b->v)
		return (a->v > b->v) - (a->v < b->v);
	return (a->i > b->i) - (a->i < b->i);
}

/* 1-based ranks of x into r, ties get the mean of the ranks they span */
static void rank_avg(const double *x, int n, rank_item *tmp, double *r) {
	for(int i = 0; i < n; i++) {
		tmp[i].v = x[i];
		tmp[i].i = i;
	}
	qsort(tmp, n, sizeof(*tmp), cmp_rank_item);
	for(int s = 0; s < n;) {
		int e = s;
		while(e + 1 < n && tmp[e + 1].v == tmp[s].v)
			e++;
		double avg = 0.5 * ((double)s + e) + 1;
		for(int k = s; k <= e; k++)
			r[tmp[k].i] = avg;
		s = e + 1;
	}
}

int stats_spearman(const double *x, const double *y, int n, stats_corr *out) {
	corr_nan(out, n);
	if(n < 4 || !x || !y || !all_finite(x, n) || !all_finite(y, n))
		return -1;
	double *rx = g_new(double, 2 * (gsize)n);
	double *ry = rx + n;
	rank_item *tmp = g_new(rank_item, n);
	rank_avg(x, n, tmp, rx);
	rank_avg(y, n, tmp, ry);
	int rc = corr_core(rx, ry, n, 0.5, out);
	g_free(tmp);
	g_free(rx);
	if(rc < 0)
		corr_nan(out, n);
	return rc;
}

/* ---- congruence, ceiling ------------------------------------------------------ */

double stats_mean_abs_diff(const double *a, const double *b, int n) {
	if(n < 1 || !a || !b || !all_finite(a, n) || !all_finite(b, n))
		return NAN;
	double s = 0;
	for(int i = 0; i < n; i++)
		s += fabs(a[i] - b[i]);
	return s / n;
}

double stats_ceiling_share(const double *x, int n, double max, double eps) {
	if(n < 1 || !x || !isfinite(max) || !isfinite(eps) || eps < 0 || !all_finite(x, n))
		return NAN;
	int k = 0;
	for(int i = 0; i < n; i++)
		if(x[i] >= max - eps)
			k++;
	return (double)k / n;
}

/* ---- the formation curve -------------------------------------------------------- */

int stats_formation(const int *visit_index, const double *score, int n,
		stats_point *out, int max_points) {
	if(max_points < 1 || !out)
		return -1;
	int bad = n < 0 || (n > 0 && (!visit_index || !score));
	int k = 0;
	for(int i = 0; !bad && i < n; i++) {
		if(visit_index[i] < 1 || !isfinite(score[i]))
			bad = 1;
		else if(visit_index[i] > k)
			k = visit_index[i];
	}
	if(k > max_points)
		k = max_points;
	int upto = bad ? max_points : k;
	for(int p = 0; p < upto; p++) {
		out[p].visit = p + 1;
		out[p].n = 0;
		out[p].mean = out[p].sd = out[p].se = out[p].lo = out[p].hi = NAN;
	}
	if(bad)
		return -1;
	/* Welford's running mean and sum of squares, the sum kept in sd */
	for(int p = 0; p < k; p++)
		out[p].mean = out[p].sd = 0;
	for(int i = 0; i < n; i++) {
		if(visit_index[i] > k)
			continue;
		stats_point *pt = &out[visit_index[i] - 1];
		pt->n++;
		double dv = score[i] - pt->mean;
		pt->mean += dv / pt->n;
		pt->sd += dv * (score[i] - pt->mean);
	}
	for(int p = 0; p < k; p++) {
		stats_point *pt = &out[p];
		if(pt->n == 0) {
			pt->mean = pt->sd = NAN;
			continue;
		}
		if(pt->n == 1) {
			pt->sd = NAN;
			continue;
		}
		pt->sd = sqrt((pt->sd > 0 ? pt->sd : 0) / (pt->n - 1));
		pt->se = pt->sd / sqrt(pt->n);
		double t = t_upper_inv(0.025, pt->n - 1);
		pt->lo = pt->mean - t * pt->se;
		pt->hi = pt->mean + t * pt->se;
	}
	return k;
}
