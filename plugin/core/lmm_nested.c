/*
 * lmm_nested.c — see lmm_nested.h: clients nested in therapists, REML,
 * Satterthwaite df. docs/statistics.md ("Therapists: clients nested in
 * therapists") derives the formulas used here.
 *
 * Notation: N observations, p fixed effects; per client c its count n_c,
 * column sums s_c = X_c'1 and score sum t_c = 1'y_c; γ_t = σ_t²/σ²,
 * γ_c = σ_c²/σ². With a_c = 1/(1 + n_c γ_c) and w_c = γ_c a_c, D⁻¹ is
 * I − w_c J in client c's block, D⁻¹1 = a_c 1 there, and per therapist
 *     m_t = Σ_c n_c a_c,  u_t = Σ_c a_c s_c,  v_t = Σ_c a_c t_c,
 *     k_t = γ_t / (1 + γ_t m_t)          (Sherman–Morrison)
 * so that
 *     A = X'H⁻¹X = X'X − Σ_c w_c s_c s_c' − Σ_t k_t u_t u_t'
 *     c = X'H⁻¹y = X'y − Σ_c w_c s_c t_c − Σ_t k_t u_t v_t
 *     q = y'H⁻¹y = y'y − Σ_c w_c t_c²     − Σ_t k_t v_t²
 *     log|H| = Σ_c log(1 + n_c γ_c) + Σ_t log(1 + γ_t m_t)
 * and, as in lmm.c, β = A⁻¹c, RSS = q − c'β and lme4's REML criterion
 *     d(θ) = (N − p)(1 + log(2π RSS/(N − p))) + log|H| + log|A|.
 */
#include "lmm_nested.h"
#include "stats.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define GRID 16                 /* per axis: 0 and 10^(−3 + k/2), k = 0…14 */
#define THETA_MAX 1e4
#define THETA_LIMIT 1e5         /* the searches see +Inf beyond this */
#define BOUNDARY 1e-5           /* θ below this is a boundary fit */
#define SNAP_BELOW 1e-2         /* θ below this is compared with its zero */
#define NM_BUDGET 600           /* evaluations per Nelder–Mead run */
#define NPAR 3                  /* (σ_t², σ_c², σ²) */

typedef struct nest_data {
	int n, p, nt, nc;
	double shift;               /* ȳ subtracted from y when column 0 is the intercept */
	double xtx[LMM_MAX_P * LMM_MAX_P], xty[LMM_MAX_P], yty;
	int *cn;                    /* [nc] observations of client c */
	int *ct;                    /* [nc] the therapist of client c */
	double *cs;                 /* [nc·p] */
	double *cy;                 /* [nc] */
	double *tm, *tu, *tv;       /* per-evaluation scratch: [nt], [nt·p], [nt] */
} nest_data;

static void data_free(nest_data *d) {
	g_free(d->cn);
	g_free(d->ct);
	g_free(d->cs);
	g_free(d->cy);
	g_free(d->tm);
	g_free(d->tu);
	g_free(d->tv);
}

/* A, c, q and log|H| at (γ_t, γ_c); -1 where H is not positive definite. */
static int sums(const nest_data *d, double gt, double gc, double *a, double *c, double *q,
		double *logdet_h) {
	int p = d->p;
	memcpy(a, d->xtx, sizeof(double) * p * p);
	memcpy(c, d->xty, sizeof(double) * p);
	*q = d->yty;
	double lh = 0;
	memset(d->tm, 0, sizeof(double) * d->nt);
	memset(d->tu, 0, sizeof(double) * d->nt * p);
	memset(d->tv, 0, sizeof(double) * d->nt);
	for(int k = 0; k < d->nc; k++) {
		double den = 1 + d->cn[k] * gc;
		if(!(den > 0))
			return -1;
		double ac = 1 / den, w = gc * ac, ty = d->cy[k];
		const double *s = d->cs + (size_t)k * p;
		int t = d->ct[k];
		for(int i = 0; i < p; i++) {
			for(int j = 0; j < p; j++)
				a[i * p + j] -= w * s[i] * s[j];
			c[i] -= w * s[i] * ty;
			d->tu[(size_t)t * p + i] += ac * s[i];
		}
		*q -= w * ty * ty;
		lh += log1p(d->cn[k] * gc);
		d->tm[t] += d->cn[k] * ac;
		d->tv[t] += ac * ty;
	}
	for(int t = 0; t < d->nt; t++) {
		double den = 1 + gt * d->tm[t];
		if(!(den > 0))
			return -1;
		double kt = gt / den;
		const double *u = d->tu + (size_t)t * p;
		for(int i = 0; i < p; i++) {
			for(int j = 0; j < p; j++)
				a[i * p + j] -= kt * u[i] * u[j];
			c[i] -= kt * u[i] * d->tv[t];
		}
		*q -= kt * d->tv[t] * d->tv[t];
		lh += log1p(gt * d->tm[t]);
	}
	*logdet_h = lh;
	return 0;
}

/* The GLS fit at (γ_t, γ_c): β, RSS, log|H|, log|A| and A's Cholesky factor. */
static int gls(const nest_data *d, double gt, double gc, double *beta, double *rss,
		double *logdet_h, double *logdet_a, double *l) {
	double a[LMM_MAX_P * LMM_MAX_P], c[LMM_MAX_P], q;
	if(sums(d, gt, gc, a, c, &q, logdet_h) < 0)
		return -1;
	return lmm_gls_solve(a, c, q, d->p, l, beta, rss, logdet_a);
}

/* lme4's REML criterion at θ = (θ_t, θ_c), σ² profiled out; +Inf where
 * undefined or beyond THETA_LIMIT. Even in each θ. */
static double profiled(const nest_data *d, const double th[2]) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	if(!(fabs(th[0]) <= THETA_LIMIT && fabs(th[1]) <= THETA_LIMIT)
			|| gls(d, th[0] * th[0], th[1] * th[1], beta, &rss, &lh, &la, l) < 0 || !(rss > 0))
		return INFINITY;
	return lmm_reml_criterion(d->n, d->p, rss, lh, la);
}

/* The unprofiled REML deviance at φ = (σ_t², σ_c², σ²). */
static double full(const nest_data *d, const double phi[NPAR]) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	if(!(phi[2] > 0) || gls(d, phi[0] / phi[2], phi[1] / phi[2], beta, &rss, &lh, &la, l) < 0)
		return NAN;
	return (d->n - d->p) * log(2 * M_PI * phi[2]) + lh + la + rss / phi[2];
}

/* The variances to differentiate at φ: v[j] = Var(β̂_j) for j < p and
 * v[p] = Var(L'β̂) when L is given. -1 where undefined. */
static int variances(const nest_data *d, const double phi[NPAR], const double *L, double *v) {
	double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], inv[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	int p = d->p;
	if(!(phi[2] > 0) || gls(d, phi[0] / phi[2], phi[1] / phi[2], beta, &rss, &lh, &la, l) < 0)
		return -1;
	lmm_chol_inverse(l, p, inv);
	for(int j = 0; j < p; j++)
		v[j] = phi[2] * inv[j * p + j];
	if(L) {
		double s = 0;
		for(int i = 0; i < p; i++)
			for(int j = 0; j < p; j++)
				s += L[i] * inv[i * p + j] * L[j];
		v[p] = phi[2] * s;
	}
	return 0;
}

/* The difference step for φ_i: 1e-3·φ_i, but for a variance component
 * at least 1e-5·σ² (as lmm.c: a tiny variance still moves D well above
 * its rounding; D is smooth through 0 while H stays positive definite). */
static double step(const double phi[NPAR], int i) {
	return i < 2 ? fmax(1e-3 * phi[i], 1e-5 * phi[2]) : 1e-3 * phi[2];
}

/* Satterthwaite df for every variance in v (k of them) at φ, over the
 * active parameters act[0..na−1] (the others fixed: the boundary ones).
 * Central differences with one Richardson step, as lmm.c. NaN where the
 * Hessian is not positive definite. */
static void satterthwaite(const nest_data *d, const double phi[NPAR], const int *act, int na,
		const double *L, int k, const double *v, double *df) {
	double hs[NPAR * NPAR] = { 0 }, grad[LMM_MAX_P + 1][NPAR];
	double est[2][NPAR * NPAR], gest[2][LMM_MAX_P + 1][NPAR];
	gboolean ok = TRUE;
	for(int r = 0; r < 2 && ok; r++) {
		double f0 = full(d, phi);
		for(int a = 0; a < na && ok; a++) {
			int i = act[a];
			double hi = step(phi, i) / (1 << r);
			double up[NPAR], dn[NPAR], vu[LMM_MAX_P + 1], vd[LMM_MAX_P + 1];
			memcpy(up, phi, sizeof(up));
			memcpy(dn, phi, sizeof(dn));
			up[i] += hi;
			dn[i] -= hi;
			est[r][a * na + a] = (full(d, up) - 2 * f0 + full(d, dn)) / (hi * hi);
			if(variances(d, up, L, vu) < 0 || variances(d, dn, L, vd) < 0) {
				ok = FALSE;
				break;
			}
			for(int j = 0; j < k; j++)
				gest[r][j][a] = (vu[j] - vd[j]) / (2 * hi);
			for(int b = a + 1; b < na; b++) {
				int jj = act[b];
				double hj = step(phi, jj) / (1 << r), x[NPAR], fs[4];
				for(int s = 0; s < 4; s++) {
					memcpy(x, phi, sizeof(x));
					x[i] += s < 2 ? hi : -hi;
					x[jj] += s % 2 == 0 ? hj : -hj;
					fs[s] = full(d, x);
				}
				est[r][a * na + b] = est[r][b * na + a] = (fs[0] - fs[1] - fs[2] + fs[3]) / (4 * hi * hj);
			}
		}
	}
	for(int j = 0; j < k; j++)
		df[j] = NAN;
	if(!ok)
		return;
	for(int e = 0; e < na * na; e++)
		hs[e] = (4 * est[1][e] - est[0][e]) / 3;
	for(int j = 0; j < k; j++)
		for(int a = 0; a < na; a++)
			grad[j][a] = (4 * gest[1][j][a] - gest[0][j][a]) / 3;
	double l[NPAR * NPAR];
	if(lmm_chol(hs, na, l, NULL) < 0)
		return;
	for(int j = 0; j < k; j++) {
		double z[NPAR];
		lmm_chol_solve(l, na, grad[j], z);
		double quad = 0;
		for(int a = 0; a < na; a++)
			quad += grad[j][a] * z[a];
		quad *= 2;                              /* Σ_φ = 2 H⁻¹ */
		double f = 2 * v[j] * v[j] / quad;
		df[j] = isfinite(f) && f > 0 ? f : NAN;
	}
}

/* Nelder–Mead on profiled() over the free coordinates of x (free[i];
 * the others stay as they are), from x with initial steps h, at most
 * `budget` evaluations. Returns the best value; x holds its point. */
static double nelder_mead(const nest_data *d, double x[2], const int free[2], const double h[2],
		int budget, int *evals) {
	int dim = free[0] + free[1];
	if(dim == 0) {
		(*evals)++;
		return profiled(d, x);
	}
	int ax[2], na = 0;
	for(int i = 0; i < 2; i++)
		if(free[i])
			ax[na++] = i;
	double s[3][2], f[3];
	for(int v = 0; v <= dim; v++) {
		s[v][0] = x[0];
		s[v][1] = x[1];
		if(v > 0)
			s[v][ax[v - 1]] += h[ax[v - 1]];
		f[v] = profiled(d, s[v]);
	}
	int used = dim + 1;
	while(used + 2 <= budget) {
		/* order: best b, worst w, (2-D) middle m */
		int b = 0, w = 0;
		for(int v = 1; v <= dim; v++) {
			if(f[v] < f[b])
				b = v;
			if(f[v] >= f[w])
				w = v;
		}
		if(b == w)
			w = b == 0 ? 1 : 0;
		int m = dim == 2 ? 3 - b - w : b;
		double size = 0;
		for(int v = 0; v <= dim; v++)
			for(int i = 0; i < 2; i++)
				size = fmax(size, fabs(s[v][i] - s[b][i]));
		double scale = 1 + fabs(s[b][0]) + fabs(s[b][1]);
		if(size <= 1e-11 * scale || (size <= 1e-8 * scale && isfinite(f[b])
				&& fabs(f[w] - f[b]) <= 1e-15 * (1 + fabs(f[b]))))
			break;
		double cen[2], xr[2], xe[2], xc[2];
		for(int i = 0; i < 2; i++) {
			cen[i] = dim == 2 ? (s[b][i] + s[m][i]) / 2 : s[b][i];
			xr[i] = 2 * cen[i] - s[w][i];
		}
		double fr = profiled(d, xr);
		used++;
		if(fr < f[b]) {
			for(int i = 0; i < 2; i++)
				xe[i] = 3 * cen[i] - 2 * s[w][i];
			double fe = profiled(d, xe);
			used++;
			memcpy(s[w], fe < fr ? xe : xr, sizeof(xe));
			f[w] = fe < fr ? fe : fr;
		} else if(fr < f[m] && m != b) {
			memcpy(s[w], xr, sizeof(xr));
			f[w] = fr;
		} else {
			gboolean outside = fr < f[w];
			for(int i = 0; i < 2; i++)
				xc[i] = outside ? cen[i] + 0.5 * (xr[i] - cen[i]) : cen[i] + 0.5 * (s[w][i] - cen[i]);
			double fc = profiled(d, xc);
			used++;
			if(fc < (outside ? fr : f[w])) {
				memcpy(s[w], xc, sizeof(xc));
				f[w] = fc;
			} else {
				for(int v = 0; v <= dim && used < budget; v++) {
					if(v == b)
						continue;
					for(int i = 0; i < 2; i++)
						s[v][i] = s[b][i] + 0.5 * (s[v][i] - s[b][i]);
					f[v] = profiled(d, s[v]);
					used++;
				}
			}
		}
	}
	int b = 0;
	for(int v = 1; v <= dim; v++)
		if(f[v] < f[b])
			b = v;
	x[0] = fabs(s[b][0]);
	x[1] = fabs(s[b][1]);
	*evals += used;
	return f[b];
}

/* Two Nelder–Mead runs (the second restarted at the first's best with
 * smaller steps) over the free coordinates, from x. */
static double search(const nest_data *d, double x[2], const int free[2], int *evals) {
	double h[2];
	for(int i = 0; i < 2; i++)
		h[i] = fmax(0.5 * x[i], 0.05);
	nelder_mead(d, x, free, h, NM_BUDGET, evals);
	for(int i = 0; i < 2; i++)
		h[i] = fmax(0.05 * x[i], 1e-3);
	return nelder_mead(d, x, free, h, NM_BUDGET, evals);
}

/* θ minimising d(θ): the grid, the search from its best point, then
 * every small θ compared with the best fit that has it at 0 (lme4's
 * bounded optimiser lands exactly on such a boundary). at_max: the grid's
 * best point, or the search's, is at THETA_MAX. */
static double optimise(const nest_data *d, double th[2], int *evals, int *at_max) {
	double grid[GRID];
	grid[0] = 0;
	for(int k = 1; k < GRID; k++)
		grid[k] = pow(10, -3 + (k - 1) / 2.0);
	double best = INFINITY;
	int bi = 0, bj = 0;
	for(int i = 0; i < GRID; i++)
		for(int j = 0; j < GRID; j++) {
			double x[2] = { grid[i], grid[j] }, f = profiled(d, x);
			(*evals)++;
			if(f < best) {
				best = f;
				bi = i;
				bj = j;
			}
		}
	*at_max = bi == GRID - 1 || bj == GRID - 1;
	if(*at_max || !isfinite(best))
		return best;
	th[0] = grid[bi];
	th[1] = grid[bj];
	const int both[2] = { 1, 1 };
	best = search(d, th, both, evals);
	/* the boundary candidates: θ_t = 0, θ_c = 0, both */
	for(int z = 0; z < 3; z++) {
		int free[2] = { z != 0 && z != 2, z != 1 && z != 2 };
		if((!free[0] && th[0] >= SNAP_BELOW) || (!free[1] && th[1] >= SNAP_BELOW))
			continue;
		double x[2] = { free[0] ? th[0] : 0, free[1] ? th[1] : 0 };
		double f = search(d, x, free, evals);
		if(f <= best + 1e-12 * (1 + fabs(best))) {
			best = f;
			th[0] = x[0];
			th[1] = x[1];
		}
	}
	for(int i = 0; i < 2; i++)
		if(th[i] < BOUNDARY)
			th[i] = 0;
	*at_max = th[0] >= THETA_MAX || th[1] >= THETA_MAX;
	return profiled(d, th);
}

static int refuse(lmm_nested_result *out, lmm_status why) {
	int n = out->n, p = out->p, nt = out->therapists, nc = out->clients;
	memset(out, 0, sizeof(*out));
	out->status = why;
	out->n = n;
	out->p = p;
	out->therapists = nt;
	out->clients = nc;
	out->theta_t = out->theta_c = out->sigma2 = out->sigma2_t = out->sigma2_c = out->reml = NAN;
	out->contrast_est = out->contrast_se = out->contrast_df = NAN;
	for(int i = 0; i < LMM_MAX_P; i++)
		out->beta[i] = out->se[i] = out->df[i] = NAN;
	for(int i = 0; i < LMM_MAX_P * LMM_MAX_P; i++)
		out->cov[i] = NAN;
	return -1;
}

/* key → dense index (0, 1, …) in `index`, adding it when new. */
static int dense_index(GHashTable *index, int key) {
	gpointer v;
	if(!g_hash_table_lookup_extended(index, GINT_TO_POINTER(key), NULL, &v)) {
		v = GINT_TO_POINTER((int)g_hash_table_size(index));
		g_hash_table_insert(index, GINT_TO_POINTER(key), v);
	}
	return GPOINTER_TO_INT(v);
}

/* The per-client sums; LMM_OK or why not. */
static lmm_status prepare(const double *y, const double *x, const int *therapist, const int *client,
		int n, int p, nest_data *d, lmm_nested_result *out) {
	memset(d, 0, sizeof(*d));
	d->n = n;
	d->p = p;
	for(int i = 0; i < n; i++) {
		gboolean bad = therapist[i] < 0 || client[i] < 0 || !isfinite(y[i]);
		for(int j = 0; j < p; j++)
			bad |= !isfinite(x[(size_t)i * p + j]);
		if(bad)
			return LMM_ERR_INPUT;
	}
	int *dc = g_new(int, n);                /* observation → dense client */
	GHashTable *ci = g_hash_table_new(g_direct_hash, g_direct_equal);
	GHashTable *ti = g_hash_table_new(g_direct_hash, g_direct_equal);
	d->ct = g_new(int, n);                  /* ≥ clients */
	lmm_status st = LMM_OK;
	for(int i = 0; i < n && st == LMM_OK; i++) {
		int before = (int)g_hash_table_size(ci);
		int c = dense_index(ci, client[i]), t = dense_index(ti, therapist[i]);
		dc[i] = c;
		if(c == before)
			d->ct[c] = t;
		else if(d->ct[c] != t)
			st = LMM_ERR_NO_NESTING;
	}
	d->nc = (int)g_hash_table_size(ci);
	d->nt = (int)g_hash_table_size(ti);
	g_hash_table_destroy(ci);
	g_hash_table_destroy(ti);
	out->clients = d->nc;
	out->therapists = d->nt;
	if(st != LMM_OK) {
		g_free(dc);
		return st;
	}
	d->cn = g_new0(int, d->nc);
	d->cs = g_new0(double, (size_t)d->nc * p);
	d->cy = g_new0(double, d->nc);
	d->tm = g_new0(double, d->nt);
	d->tu = g_new0(double, (size_t)d->nt * p);
	d->tv = g_new0(double, d->nt);
	/* centred y with an intercept, as lmm.c (RSS must not cancel) */
	d->shift = lmm_group_sums(y, x, dc, n, p, d->cn, d->cs, d->cy, d->xtx, d->xty, &d->yty);
	g_free(dc);
	if(n <= p || d->nc < 2 || d->nt < 2)
		return LMM_ERR_TOO_FEW;
	gboolean replicated = FALSE;
	for(int c = 0; c < d->nc; c++)
		replicated |= d->cn[c] >= 2;
	if(!replicated)
		return LMM_ERR_NO_REPLICATES;
	int *per = g_new0(int, d->nt);          /* clients per therapist */
	gboolean shared = FALSE;
	for(int c = 0; c < d->nc; c++)
		shared |= ++per[d->ct[c]] >= 2;
	g_free(per);
	if(!shared)
		return LMM_ERR_NO_THERAPIST_REPLICATES;
	/* room for three variances: lmm.c's rule for clients, and p + 1
	 * therapists (the between-therapist df) */
	if(n - d->nc < p || d->nc < p + 1 || d->nt < p + 1)
		return LMM_ERR_TOO_FEW;
	return lmm_well_conditioned(d->xtx, p) ? LMM_OK : LMM_ERR_SINGULAR;
}

int lmm_nested_fit(const double *y, const double *x, const int *therapist, const int *client,
		int n, int p, const double *contrast, lmm_nested_result *out) {
	memset(out, 0, sizeof(*out));
	out->n = n;
	out->p = p;
	if(n == 0 && p >= 1 && p <= LMM_MAX_P)     /* (an empty array may come as NULL) */
		return refuse(out, LMM_ERR_TOO_FEW);
	if(y == NULL || x == NULL || therapist == NULL || client == NULL || n < 0 || p < 1
			|| p > LMM_MAX_P)
		return refuse(out, LMM_ERR_INPUT);
	if(contrast)
		for(int j = 0; j < p; j++)
			if(!isfinite(contrast[j]))
				return refuse(out, LMM_ERR_INPUT);
	nest_data d;
	lmm_status st = prepare(y, x, therapist, client, n, p, &d, out);
	if(st == LMM_OK) {
		double beta[LMM_MAX_P], l[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
		if(gls(&d, 0, 0, beta, &rss, &lh, &la, l) < 0)
			st = LMM_ERR_SINGULAR;
		else if(!isfinite(rss) || !isfinite(d.yty))
			st = LMM_ERR_INPUT;             /* values too large to square */
		else if(!(rss > 1e-12 * (1 + fabs(d.yty))))
			st = LMM_ERR_NO_SPREAD;
	}
	double th[2] = { 0, 0 };
	int evals = 0, at_max = 0;
	if(st == LMM_OK) {
		double f = optimise(&d, th, &evals, &at_max);
		if(at_max)
			st = LMM_ERR_NO_WITHIN;
		else if(!isfinite(f))
			st = LMM_ERR_NO_CONVERGENCE;
	}
	if(st != LMM_OK) {
		data_free(&d);
		return refuse(out, st);
	}
	double gt = th[0] * th[0], gc = th[1] * th[1];
	double l[LMM_MAX_P * LMM_MAX_P], inv[LMM_MAX_P * LMM_MAX_P], rss, lh, la;
	gls(&d, gt, gc, out->beta, &rss, &lh, &la, l);
	out->beta[0] += d.shift;
	lmm_chol_inverse(l, p, inv);
	int r = n - p;
	out->status = LMM_OK;
	out->evaluations = evals;
	out->theta_t = th[0];
	out->theta_c = th[1];
	out->boundary_therapist = th[0] == 0;
	out->boundary_client = th[1] == 0;
	out->sigma2 = rss / r;
	out->sigma2_t = gt * out->sigma2;
	out->sigma2_c = gc * out->sigma2;
	out->reml = lmm_reml_criterion(n, p, rss, lh, la);
	for(int i = 0; i < p * p; i++)
		out->cov[i] = out->sigma2 * inv[i];
	double v[LMM_MAX_P + 1], df[LMM_MAX_P + 1];
	for(int j = 0; j < p; j++) {
		v[j] = out->cov[j * p + j];
		out->se[j] = sqrt(v[j]);
	}
	out->has_contrast = contrast != NULL;
	out->contrast_est = out->contrast_se = out->contrast_df = NAN;
	int k = p;
	if(contrast) {
		double est = 0, var = 0;
		for(int i = 0; i < p; i++) {
			est += contrast[i] * out->beta[i];
			for(int j = 0; j < p; j++)
				var += contrast[i] * out->cov[i * p + j] * contrast[j];
		}
		out->contrast_est = est;
		out->contrast_se = sqrt(var);
		v[k++] = var;
	}
	/* the df over the variances not at the boundary: lmerTest's Hessian
	 * in (θ, σ) has no cross terms with a θ at 0 and Var(β̂) no slope
	 * there (the deviance and Var(β̂) are even in each θ), so its
	 * pseudo-inverse drops them; with none left, df = N − p */
	int act[NPAR], na = 0;
	if(!out->boundary_therapist)
		act[na++] = 0;
	if(!out->boundary_client)
		act[na++] = 1;
	act[na++] = 2;
	if(na == 1) {
		for(int j = 0; j < k; j++)
			df[j] = r;
	} else {
		double phi[NPAR] = { out->sigma2_t, out->sigma2_c, out->sigma2 };
		satterthwaite(&d, phi, act, na, contrast, k, v, df);
	}
	for(int j = 0; j < p; j++)
		out->df[j] = df[j];
	if(contrast)
		out->contrast_df = df[p];
	for(int j = p; j < LMM_MAX_P; j++)
		out->beta[j] = out->se[j] = out->df[j] = NAN;
	data_free(&d);
	return 0;
}

int lmm_nested_ci(const lmm_nested_result *r, int j, double level, double *lo, double *hi) {
	*lo = *hi = NAN;
	if(r == NULL || r->status != LMM_OK || j < -1 || j >= r->p || (j == -1 && !r->has_contrast)
			|| !(level > 0 && level < 1))
		return -1;
	double est = j < 0 ? r->contrast_est : r->beta[j], se = j < 0 ? r->contrast_se : r->se[j];
	double df = j < 0 ? r->contrast_df : r->df[j];
	if(!isfinite(df) || !isfinite(se))
		return -1;
	double t = stats_t_quantile(1 - (1 - level) / 2, df);
	if(!isfinite(t))
		return -1;
	*lo = est - t * se;
	*hi = est + t * se;
	return 0;
}
