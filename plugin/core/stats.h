/*
 * stats.h — the statistics behind the `compare` and `summary` reports:
 * descriptives, a mean with its t confidence interval, Hedges' g between
 * two groups (online vs in-person), Spearman and Pearson correlations with
 * Fisher-z intervals (alliance vs connection quality), the alliance
 * formation curve (mean per visit number), client–therapist congruence and
 * the ceiling share. docs/statistics.md gives every formula, its
 * assumptions, edge cases and references.
 *
 * Conventions, for every function here:
 *   - Functions filling a struct return 0, or -1 when they refuse; a
 *     refusal fills every double of *out with NaN (and the counts with the
 *     n given), so a caller that ignores the result reports "no value",
 *     never a number.
 *   - Functions returning a double return NaN when they refuse.
 *   - Missing data is the caller's business: a NaN or ±Inf anywhere in the
 *     input is refused, never skipped (filter missing answers first; a
 *     silently shortened sample would misstate n).
 *   - Intervals are two-sided. stats_mean_ci() takes its level; the other
 *     intervals are 95 % (normal quantile STATS_Z95, or a t quantile for
 *     means).
 *   - The Student t quantile is computed here (stats_t_quantile(): an
 *     incomplete-beta CDF inverted by safeguarded Newton steps; relative
 *     error ≤ 2e-14 for df ≤ 1000 against mpmath at 40 digits, see the
 *     doc for larger df).
 *
 * Pure: no Janus, no I/O, no state. stats_describe() and stats_spearman()
 * allocate scratch copies with g_new() (of the input's size, freed before
 * returning); everything else works in the caller's memory. Needs libm.
 */
#ifndef ALLIANCE_STATS_H
#define ALLIANCE_STATS_H

/* the 0.975 quantile of the standard normal (scipy.stats.norm.ppf(0.975)) */
#define STATS_Z95 1.959963984540054

/* Descriptives of one sample. sd is the sample SD (divisor n − 1), se =
 * sd / √n; both NaN when n = 1. median: the mean of the two middle values
 * for even n. */
typedef struct stats_desc {
	int n;
	double mean, sd, se, min, max, median;
} stats_desc;

/* A mean with a two-sided t interval: mean ± t(1 − (1 − level)/2, n − 1)·se. */
typedef struct stats_ci {
	int n;
	double level;           /* e.g. 0.95 */
	double mean, sd, se;
	double df, t;           /* degrees of freedom and the t quantile used */
	double lo, hi;
} stats_ci;

/* Standardized mean difference of group a minus group b (a = video,
 * b = in-person in the compare report: g < 0 means lower online). */
typedef struct stats_effect {
	int na, nb;
	double mean_a, sd_a, mean_b, sd_b;
	double sd_pooled;       /* √(((na−1)sa² + (nb−1)sb²) / (na+nb−2)) */
	double d;               /* Cohen's d: (mean_a − mean_b) / sd_pooled */
	double j;               /* small-sample correction 1 − 3/(4(na+nb) − 9) */
	double g;               /* Hedges' g = j·d */
	double se;              /* √((na+nb)/(na·nb) + g²/(2(na+nb))) */
	double lo, hi;          /* g ∓ STATS_Z95·se */
} stats_effect;

/* A correlation with its 95 % Fisher-z interval and two-sided p-value. */
typedef struct stats_corr {
	int n;
	double r;               /* Pearson r, or Spearman ρ (Pearson r of ranks) */
	double z;               /* atanh(r) */
	double se;              /* of z: Pearson 1/√(n−3); Spearman √((1+ρ²/2)/(n−3)) */
	double lo, hi;          /* tanh(z ∓ STATS_Z95·se) */
	double p;               /* H0 ρ = 0: t = r√((n−2)/(1−r²)), df n − 2 */
} stats_corr;

/* One point of the alliance formation curve: the scores of visit number
 * `visit` (1-based) across clients. sd, se, lo, hi are NaN for n < 2;
 * mean too for n = 0. The interval is the 95 % t interval of the mean. */
typedef struct stats_point {
	int visit;
	int n;
	double mean, sd, se, lo, hi;
} stats_point;

/* n ≥ 1 finite values. */
int stats_describe(const double *x, int n, stats_desc *out);

/* n ≥ 2 finite values, 0 < level < 1. A zero SD gives lo = hi = mean. */
int stats_mean_ci(const double *x, int n, double level, stats_ci *out);

/* Hedges' g from raw scores: na, nb ≥ 2 finite values each; refused when
 * the pooled SD is 0 (every score equal within each group). */
int stats_hedges_g(const double *a, int na, const double *b, int nb, stats_effect *out);

/* The same from summary statistics (means, sample SDs, sizes), as
 * published studies report them: na, nb ≥ 2, SDs finite and ≥ 0, pooled
 * SD > 0. */
int stats_hedges_g_summary(double mean_a, double sd_a, int na,
	double mean_b, double sd_b, int nb, stats_effect *out);

/* Pairs (x[i], y[i]): n ≥ 4 finite pairs, neither variable constant.
 * Spearman ranks each variable with average ranks for ties. |r| = 1 gives
 * z = ±Inf and lo = hi = r. */
int stats_pearson(const double *x, const double *y, int n, stats_corr *out);
int stats_spearman(const double *x, const double *y, int n, stats_corr *out);

/* Client–therapist congruence: mean |a[i] − b[i]| over n ≥ 1 finite pairs
 * (0 = the two rated the visit alike). NaN when refused. */
double stats_mean_abs_diff(const double *a, const double *b, int n);

/* The share (0..1) of the n ≥ 1 finite answers at the scale maximum:
 * x ≥ max − eps (eps ≥ 0 absorbs rounding, e.g. 1e-9, or half a VAS step).
 * NaN when refused. */
double stats_ceiling_share(const double *x, int n, double max, double eps);

/* The formation curve: scores grouped by visit number (1-based) into
 * out[0..K−1], where K is the largest visit number seen, capped at
 * max_points (scores of later visits are left out). Every point 1..K is
 * written, empty ones with n = 0. Returns K (0 for n = 0), or -1 when a
 * visit number is < 1, a score is not finite, n < 0 or max_points < 1;
 * a refusal writes all max_points points as empty (n = 0, NaN), except
 * for max_points < 1 or out == NULL, where nothing is written. */
int stats_formation(const int *visit_index, const double *score, int n,
	stats_point *out, int max_points);

/* Student t distribution with df > 0 (not necessarily whole) degrees of
 * freedom: P(T ≤ t), and its inverse for 0 < p < 1 (NaN outside). */
double stats_t_cdf(double t, double df);
double stats_t_quantile(double p, double df);

#endif
