/*
 * lmm.c — see lmm.h: a random-intercept linear mixed model by REML, with
 * Satterthwaite degrees of freedom. docs/statistics.md ("Mixed model")
 * derives every formula used here.
 *
 * Notation: N observations, p fixed effects, G clients; per client g its
 * count n_g, the column sums s_g = X_g'1 and the score sum t_g = 1'y_g.
 * With γ = σ_b²/σ² and w_g = γ/(1 + n_g γ), H_g⁻¹ = I − w_g J, so
 *     A(γ) = X'H⁻¹X = X'X − Σ w_g s_g s_g'
 *     c(γ) = X'H⁻¹y = X'y − Σ w_g s_g t_g
 *     q(γ) = y'H⁻¹y = y'y − Σ w_g t_g²
 *     β(γ) = A⁻¹c,  RSS(γ) = q − c'β,  log|H| = Σ log(1 + n_g γ)
 * and the REML deviance, for variances (σ_b², σ²), is
 *     D = (N − p) log(2πσ²) + log|H| + log|A| + RSS/σ²,
 * which at σ² = RSS/(N − p) is lme4's REML criterion
 *     d(θ) = (N − p)(1 + log(2π RSS/(N − p))) + log|H| + log|A|.
 */
#include "lmm.h"
#include "stats.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define THETA_GRID 33           /* 1e-4 … 1e4, four points a decade, plus 0 */
#define THETA_MAX 1e4
#define THETA_BOUNDARY 1e-5     /* σ_b/σ below this is a boundary fit */
#define GOLDEN_STEPS 200        /* the bracket shrinks 0.618× per step */
#define SINGULAR_TOL 1e-10      /* pivot of the scaled X'X */

typedef struct lmm_data {
	int n, p, g;
	double shift;               /* ȳ subtracted from y when column 0 is the intercept */
	double xtx[LMM_MAX_P * LMM_MAX_P], xty[LMM_MAX_P], yty;
	int *ng;                    /* [g] */
	double *s;                  /* [g·p] */
	double *t;                  /* [g] */
} lmm_data;

const char *lmm_status_text(lmm_status s) {
	switch(s) {
		case LMM_OK: return "fitted";
		case LMM_ERR_INPUT: return "the data hold a missing or invalid value";
		case LMM_ERR_TOO_FEW: return "too few visits or clients: the model needs more clients than fixed effects and as many repeat visits as fixed effects";
		case LMM_ERR_NO_REPLICATES: return "no client has two or more visits, so client and visit variance cannot be told apart";
		case LMM_ERR_SINGULAR: return "the fixed effects cannot be estimated (e.g. only one modality, or a predictor that never varies)";
		case LMM_ERR_NO_SPREAD: return "the scores have no residual spread";
		case LMM_ERR_NO_WITHIN: return "scores do not vary within clients";
		case LMM_ERR_NO_NESTING: return "a client was seen by more than one therapist, so clients are not nested in therapists";
		case LMM_ERR_NO_THERAPIST_REPLICATES: return "no therapist has two or more clients, so therapist and client variance cannot be told apart";
		case LMM_ERR_NO_CONVERGENCE: return "the variance search did not settle on an optimum";
	}
	return "unknown";
}

/* Cholesky A = LL' (p ≤ LMM_MAX_P) into L; log|A| into *logdet. -1 if A
 * is not positive definite. */
int lmm_chol(const double *a, int p, double *l, double *logdet) {
	memset(l, 0, sizeof(double) * p * p);
	double ld = 0;
	for(int j = 0; j < p; j++) {
		double s = a[j * p + j];
		for(int k = 0; k < j; k++)
			s -= l[j * p + k] * l[j * p + k];
		if(!(s > 0))
			return -1;
		l[j * p + j] = sqrt(s);
		ld += log(s);
		for(int i = j + 1; i < p; i++) {
			double v = a[i * p + j];
			for(int k = 0; k < j; k++)
				v -= l[i * p + k] * l[j * p + k];
			l[i * p + j] = v / l[j * p + j];
		}
	}
	if(logdet)
		*logdet = ld;
	return 0;
}

/* x = A⁻¹b from A's Cholesky factor. */
void lmm_chol_solve(const double *l, int p, const double *b, double *x) {
	double z[LMM_MAX_P];
	for(int i = 0; i < p; i++) {
		double v = b[i];
		for(int k = 0; k < i; k++)
			v -= l[i * p + k] * z[k];
		z[i] = v / l[i * p + i];
	}
	for(int i = p - 1; i >= 0; i--) {
		double v = z[i];
		for(int k = i + 1; k < p; k++)
			v -= l[k * p + i] * x[k];
		x[i] = v / l[i * p + i];
	}
}

void lmm_chol_inverse(const double *l, int p, double *inv) {
	for(int j = 0; j < p; j++) {
		double e[LMM_MAX_P] = { 0 }, col[LMM_MAX_P];
		e[j] = 1;
		lmm_chol_solve(l, p, e, col);
		for(int i = 0; i < p; i++)
			inv[i * p + j] = col[i];
	}
}

int lmm_gls_solve(const double *a, const double *c, double q, int p, double *l, double *beta,
		double *rss, double *logdet_a) {
	if(lmm_chol(a, p, l, logdet_a) < 0)
		return -1;
	lmm_chol_solve(l, p, c, beta);
	double cb = 0;
	for(int i = 0; i < p; i++)
		cb += c[i] * beta[i];
	*rss = q - cb;
	return 0;
}

double lmm_reml_criterion(int n, int p, double rss, double logdet_h, double logdet_a) {
	int r = n - p;
	return r * (1 + log(2 * M_PI * rss / r)) + logdet_h + logdet_a;
}

/* A(γ), c(γ), q(γ) and log|H| (see the top of the file). */
static void gls_sums(const lmm_data *d, double gamma, double *a, double *c, double *q,
		double *logdet_h) {
	int p = d->p;
	memcpy(a, d->xtx, sizeof(double) * p * p);
	memcpy(c, d->xty, sizeof(double) * p);
	*q = d->yty;
	double lh = 0;
	for(int g = 0; g < d->g; g++) {
		double w = gamma / (1 + d->ng[g] * gamma);
		const double *s = d->s + (size_t)g * p;
		for(int i = 0; i < p; i++) {
			for(int j = 0; j < p; j++)
				a[i * p + j] -= w * s[i] * s[j];
			c[i] -= w * s[i] * d->t[g];
		}
		*q -= w * d->t[g] * d->t[g];
		lh += log1p(d->ng[g] * gamma);
	}
	*logdet_h = lh;
}

/* The GLS fit at γ: β, RSS, log|H|, log|A| and A's Cholesky factor.
 * -1 when A is not positive definite (or γ makes H so). */
static int gls(const lmm_data *d, double gamma, double *beta, double *rss, double *logdet_h,
		double *logdet_a, double *l) {
	double a[LMM_MAX_P * LMM_MAX_P], c[LMM_MAX_P], q;
	for(int g = 0; g < d->g; g++)
		if(!(1 + d->ng[g] * gamma > 0))
			return -1;
	gls_sums(d, gamma, a, c, &q, logdet_h);
	return lmm_gls_solve(a, c, q, d->p, l, beta, rss, logdet_a);
}

/* lme4's REML criterion at θ (σ² profiled out); +Inf where undefined. */
static double reml_profiled(const lmm_data *d, double theta) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	if(gls(d, theta * theta, beta, &rss, &lh, &la, l) < 0 || !(rss > 0))
		return INFINITY;
	return lmm_reml_criterion(d->n, d->p, rss, lh, la);
}

/* The REML deviance at the variances (σ_b², σ²), β and σ² not profiled. */
static double reml_full(const lmm_data *d, double s2b, double s2) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	if(!(s2 > 0) || gls(d, s2b / s2, beta, &rss, &lh, &la, l) < 0)
		return NAN;
	return (d->n - d->p) * log(2 * M_PI * s2) + lh + la + rss / s2;
}

/* Var(β_j) at the variances (σ_b², σ²): σ²·[A(σ_b²/σ²)⁻¹]_jj. */
static double var_beta(const lmm_data *d, int j, double s2b, double s2) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], inv[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	if(!(s2 > 0) || gls(d, s2b / s2, beta, &rss, &lh, &la, l) < 0)
		return NAN;
	lmm_chol_inverse(l, d->p, inv);
	return s2 * inv[j * d->p + j];
}

/* The difference step for φ_i: 1e-3·φ_i, but for σ_b² at least 1e-6·σ²,
 * so that a σ_b² near 0 still moves the deviance well above its rounding
 * (D is smooth through σ_b² = 0 as long as every 1 + n_g γ > 0). */
static double step(const double phi[2], int i) {
	return i == 0 ? fmax(1e-3 * phi[0], 1e-5 * phi[1]) : 1e-3 * phi[1];
}

/* The observed Hessian of reml_full at (φ0, φ1) = (σ_b², σ²) by central
 * differences with one Richardson step (error O(h⁴)). */
static void hessian(const lmm_data *d, const double phi[2], double h_out[4]) {
	double est[2][4];
	for(int r = 0; r < 2; r++) {
		double h[2] = { step(phi, 0) / (1 << r), step(phi, 1) / (1 << r) };
		double f0 = reml_full(d, phi[0], phi[1]);
		for(int i = 0; i < 2; i++) {
			double up[2] = { phi[0], phi[1] }, dn[2] = { phi[0], phi[1] };
			up[i] += h[i];
			dn[i] -= h[i];
			est[r][i * 2 + i] = (reml_full(d, up[0], up[1]) - 2 * f0 + reml_full(d, dn[0], dn[1])) / (h[i] * h[i]);
		}
		double pp = reml_full(d, phi[0] + h[0], phi[1] + h[1]);
		double pm = reml_full(d, phi[0] + h[0], phi[1] - h[1]);
		double mp = reml_full(d, phi[0] - h[0], phi[1] + h[1]);
		double mm = reml_full(d, phi[0] - h[0], phi[1] - h[1]);
		est[r][1] = est[r][2] = (pp - pm - mp + mm) / (4 * h[0] * h[1]);
	}
	for(int k = 0; k < 4; k++)
		h_out[k] = (4 * est[1][k] - est[0][k]) / 3;
}

/* ∂Var(β_j)/∂(σ_b², σ²), the same differences. */
static void var_gradient(const lmm_data *d, int j, const double phi[2], double g_out[2]) {
	for(int i = 0; i < 2; i++) {
		double est[2];
		for(int r = 0; r < 2; r++) {
			double h = step(phi, i) / (1 << r);
			double up[2] = { phi[0], phi[1] }, dn[2] = { phi[0], phi[1] };
			up[i] += h;
			dn[i] -= h;
			est[r] = (var_beta(d, j, up[0], up[1]) - var_beta(d, j, dn[0], dn[1])) / (2 * h);
		}
		g_out[i] = (4 * est[1] - est[0]) / 3;
	}
}

/* Satterthwaite: df_j = 2 Var(β_j)² / (g' Σ g), Σ = 2 H⁻¹ the asymptotic
 * covariance of the REML variance estimates. NaN when H is not positive
 * definite there. */
static double satterthwaite(const lmm_data *d, int j, const double phi[2], double var) {
	double h[4], g[2];
	hessian(d, phi, h);
	double det = h[0] * h[3] - h[1] * h[2];
	if(!(det > 0) || !(h[0] > 0))
		return NAN;
	double inv[4] = { h[3] / det, -h[1] / det, -h[2] / det, h[0] / det };
	var_gradient(d, j, phi, g);
	double quad = 2 * (g[0] * (inv[0] * g[0] + inv[1] * g[1]) + g[1] * (inv[2] * g[0] + inv[3] * g[1]));
	double df = 2 * var * var / quad;
	return isfinite(df) && df > 0 ? df : NAN;
}

static int refuse(lmm_result *out, lmm_status why) {
	int n = out->n, p = out->p, g = out->groups;
	memset(out, 0, sizeof(*out));
	out->status = why;
	out->n = n;
	out->p = p;
	out->groups = g;
	out->theta = out->sigma2 = out->sigma2_b = out->reml = NAN;
	for(int i = 0; i < LMM_MAX_P; i++)
		out->beta[i] = out->se[i] = out->df[i] = NAN;
	for(int i = 0; i < LMM_MAX_P * LMM_MAX_P; i++)
		out->cov[i] = NAN;
	return -1;
}

/* A symmetric p × p matrix has full rank to SINGULAR_TOL: every pivot of
 * the Cholesky factor of its unit-diagonal scaling. */
int lmm_well_conditioned(const double *a, int p) {
	double sc[LMM_MAX_P * LMM_MAX_P] = { 0 }, l[LMM_MAX_P * LMM_MAX_P];
	for(int j = 0; j < p; j++)
		if(!(a[j * p + j] > 0))
			return FALSE;
	for(int j = 0; j < p; j++)
		for(int k = 0; k < p; k++)
			sc[j * p + k] = a[j * p + k] / sqrt(a[j * p + j] * a[k * p + k]);
	if(lmm_chol(sc, p, l, NULL) < 0)
		return FALSE;
	for(int j = 0; j < p; j++)
		if(l[j * p + j] * l[j * p + j] < SINGULAR_TOL)
			return FALSE;
	return TRUE;
}

double lmm_group_sums(const double *y, const double *x, const int *dense, int n, int p, int *ng,
		double *s, double *t, double *xtx, double *xty, double *yty) {
	/* With an intercept, y − ȳ fits the same model (only β0 moves, by ȳ)
	 * and keeps q − c'β from cancelling: RSS is then of the size of y'y,
	 * not a small difference of two large numbers (the df's second
	 * differences need the deviance to ~1e-14). */
	gboolean intercept = n > 0;
	double mean = 0;
	for(int i = 0; i < n; i++) {
		intercept &= x[(size_t)i * p] == 1.0;
		mean += (y[i] - mean) / (i + 1);
	}
	double shift = intercept ? mean : 0;
	for(int i = 0; i < n; i++) {
		int g = dense[i];
		const double *xi = x + (size_t)i * p;
		double yi = y[i] - shift;
		ng[g]++;
		t[g] += yi;
		*yty += yi * yi;
		for(int j = 0; j < p; j++) {
			s[(size_t)g * p + j] += xi[j];
			xty[j] += xi[j] * yi;
			for(int k = 0; k < p; k++)
				xtx[j * p + k] += xi[j] * xi[k];
		}
	}
	return shift;
}

/* The per-client sums; status LMM_OK or why not. */
static lmm_status prepare(const double *y, const double *x, const int *group, int n, int p,
		lmm_data *d, int *groups_out) {
	memset(d, 0, sizeof(*d));
	d->n = n;
	d->p = p;
	int *dense = g_new(int, n);             /* observation → dense client index */
	GHashTable *index = g_hash_table_new(g_direct_hash, g_direct_equal);
	for(int i = 0; i < n; i++) {
		gboolean bad = group[i] < 0 || !isfinite(y[i]);
		for(int j = 0; j < p; j++)
			bad |= !isfinite(x[(size_t)i * p + j]);
		if(bad) {
			g_hash_table_destroy(index);
			g_free(dense);
			return LMM_ERR_INPUT;
		}
		gpointer v;
		if(!g_hash_table_lookup_extended(index, GINT_TO_POINTER(group[i]), NULL, &v)) {
			v = GINT_TO_POINTER(d->g++);
			g_hash_table_insert(index, GINT_TO_POINTER(group[i]), v);
		}
		dense[i] = GPOINTER_TO_INT(v);
	}
	g_hash_table_destroy(index);
	d->ng = g_new0(int, d->g);
	d->s = g_new0(double, (size_t)d->g * p);
	d->t = g_new0(double, d->g);
	d->shift = lmm_group_sums(y, x, dense, n, p, d->ng, d->s, d->t, d->xtx, d->xty, &d->yty);
	g_free(dense);
	*groups_out = d->g;
	if(n <= p || d->g < 2)
		return LMM_ERR_TOO_FEW;
	gboolean replicated = FALSE;
	for(int g = 0; g < d->g; g++)
		replicated |= d->ng[g] >= 2;
	if(!replicated)
		return LMM_ERR_NO_REPLICATES;
	/* room for both variances: at least p visits beyond one per client
	 * (the within-client residual df n − g − rank ≥ 1 for any design)
	 * and p + 1 clients (the between-client df); below that REML has
	 * optima at absurd θ with a near-singular X'H⁻¹X (3 visits of 2
	 * clients gave a slope of 1e15) */
	if(n - d->g < p || d->g < p + 1)
		return LMM_ERR_TOO_FEW;
	return lmm_well_conditioned(d->xtx, p) ? LMM_OK : LMM_ERR_SINGULAR;
}

/* θ minimising the profiled REML criterion: the grid, then golden-section
 * search in the bracket around the grid's best point. */
static double optimise_theta(const lmm_data *d, int *evals, int *at_max) {
	double grid[THETA_GRID + 1], f[THETA_GRID + 1];
	grid[0] = 0;
	for(int k = 0; k < THETA_GRID; k++)
		grid[k + 1] = pow(10, -4 + k / 4.0);
	int best = 0;
	for(int k = 0; k <= THETA_GRID; k++) {
		f[k] = reml_profiled(d, grid[k]);
		if(f[k] < f[best])
			best = k;
	}
	*evals = THETA_GRID + 1;
	*at_max = best == THETA_GRID;
	if(*at_max)
		return THETA_MAX;
	double a = grid[best > 0 ? best - 1 : 0], b = grid[best + 1];
	const double r = (sqrt(5) - 1) / 2;
	double x1 = b - r * (b - a), x2 = a + r * (b - a);
	double f1 = reml_profiled(d, x1), f2 = reml_profiled(d, x2);
	*evals += 2;
	for(int i = 0; i < GOLDEN_STEPS && b - a > 1e-12 * (1 + b); i++) {
		if(f1 <= f2) {
			b = x2;
			x2 = x1;
			f2 = f1;
			x1 = b - r * (b - a);
			f1 = reml_profiled(d, x1);
		} else {
			a = x1;
			x1 = x2;
			f1 = f2;
			x2 = a + r * (b - a);
			f2 = reml_profiled(d, x2);
		}
		(*evals)++;
	}
	double theta = f1 <= f2 ? x1 : x2, ft = f1 <= f2 ? f1 : f2;
	if(best <= 1 && f[0] <= ft)
		theta = 0;
	return theta;
}

int lmm_fit_reml(const double *y, const double *x, const int *group, int n, int p,
		lmm_result *out) {
	memset(out, 0, sizeof(*out));
	out->n = n;
	out->p = p;
	if(n == 0 && p >= 1 && p <= LMM_MAX_P)     /* (an empty array may come as NULL) */
		return refuse(out, LMM_ERR_TOO_FEW);
	if(y == NULL || x == NULL || group == NULL || n < 0 || p < 1 || p > LMM_MAX_P)
		return refuse(out, LMM_ERR_INPUT);
	lmm_data d;
	lmm_status st = prepare(y, x, group, n, p, &d, &out->groups);
	int evals = 0, at_max = 0;
	double theta = NAN;
	if(st == LMM_OK) {
		double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
		if(gls(&d, 0, beta, &rss, &lh, &la, l) < 0)
			st = LMM_ERR_SINGULAR;
		else if(!isfinite(rss) || !isfinite(d.yty))
			st = LMM_ERR_INPUT;             /* values too large to square */
		else if(!(rss > 1e-12 * (1 + fabs(d.yty))))
			st = LMM_ERR_NO_SPREAD;
	}
	if(st == LMM_OK) {
		theta = optimise_theta(&d, &evals, &at_max);
		if(at_max)
			st = LMM_ERR_NO_WITHIN;
	}
	if(st != LMM_OK) {
		g_free(d.ng);
		g_free(d.s);
		g_free(d.t);
		return refuse(out, st);
	}
	if(theta < THETA_BOUNDARY)
		theta = 0;
	double gamma = theta * theta, l[LMM_MAX_P * LMM_MAX_P], inv[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	gls(&d, gamma, out->beta, &rss, &lh, &la, l);
	out->beta[0] += d.shift;
	lmm_chol_inverse(l, p, inv);
	int r = n - p;
	out->status = LMM_OK;
	out->evaluations = evals;
	out->theta = theta;
	out->boundary = theta == 0;
	out->sigma2 = rss / r;
	out->sigma2_b = gamma * out->sigma2;
	out->reml = lmm_reml_criterion(n, p, rss, lh, la);
	for(int i = 0; i < p * p; i++)
		out->cov[i] = out->sigma2 * inv[i];
	double phi[2] = { out->sigma2_b, out->sigma2 };
	for(int j = 0; j < p; j++) {
		out->se[j] = sqrt(out->cov[j * p + j]);
		/* at the boundary σ_b² is fixed at 0: the residual df of the
		 * fixed-effects model, which lmerTest's Hessian also gives there */
		out->df[j] = out->boundary ? r : satterthwaite(&d, j, phi, out->cov[j * p + j]);
	}
	for(int j = p; j < LMM_MAX_P; j++)
		out->beta[j] = out->se[j] = out->df[j] = NAN;
	g_free(d.ng);
	g_free(d.s);
	g_free(d.t);
	return 0;
}

int lmm_ci(const lmm_result *r, int j, double level, double *lo, double *hi) {
	*lo = *hi = NAN;
	if(r == NULL || r->status != LMM_OK || j < 0 || j >= r->p || !(level > 0 && level < 1)
			|| !isfinite(r->df[j]) || !isfinite(r->se[j]))
		return -1;
	double t = stats_t_quantile(1 - (1 - level) / 2, r->df[j]);
	if(!isfinite(t))
		return -1;
	*lo = r->beta[j] - t * r->se[j];
	*hi = r->beta[j] + t * r->se[j];
	return 0;
}
