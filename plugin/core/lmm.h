/*
 * lmm.h — a linear mixed model with one random intercept, fitted by REML:
 *
 *     y_i = x_i'β + b_g(i) + e_i,   b_g ~ N(0, σ_b²),  e_i ~ N(0, σ²)
 *
 * (in the reports: an end score, fixed effects intercept + modality, or
 * visit number, or connection quality; g = the client). For every fixed
 * coefficient it gives the estimate, its standard error and Satterthwaite
 * degrees of freedom computed as R's lmerTest does (the observed Hessian of
 * the REML deviance in the variance parameters), so that
 * estimate ± t(0.975, df)·se is the interval lmerTest's summary() implies.
 * docs/statistics.md ("Mixed model") gives the algebra, the optimiser, the
 * degenerate cases and the references.
 *
 * How: with γ = σ_b²/σ², each client's block of V is σ²(I + γJ), whose
 * inverse and determinant are closed forms, so the REML deviance profiled
 * over σ² and β is a function of θ = √γ alone, computed from per-client
 * sums in O(clients·p²). θ is found by a grid over [0, 1e4] followed by
 * golden-section search (a bounded number of steps, no convergence loop
 * that could spin). θ at 0 is a boundary fit (σ_b² = 0, as lme4's
 * "singular" fit); then df = n − p, which is also what lmerTest gives there.
 *
 * Refusals (lmm_fit_reml() returns -1 and fills every double with NaN):
 * bad input (NaN/Inf, p outside 1..LMM_MAX_P, a negative group index),
 * n ≤ p, fewer than 2 clients, no client with 2 or more
 * observations (σ_b² and σ² are then not separately identifiable; lme4
 * refuses too), fewer than p + 1 clients or fewer than p observations
 * beyond one per client (no room to estimate both variances), a design matrix that is singular (e.g. a modality column
 * that never varies), no residual spread, or an optimum at the upper end
 * of θ (no within-client variance).
 *
 * Pure: no Janus, no I/O, no state; allocates scratch with g_new() and
 * frees it before returning. Needs libm (and stats.h for t quantiles).
 */
#ifndef ALLIANCE_LMM_H
#define ALLIANCE_LMM_H

#define LMM_MAX_P 4

typedef enum lmm_status {
	LMM_OK = 0,
	LMM_ERR_INPUT,          /* NaN/Inf, p out of range, a bad group index */
	LMM_ERR_TOO_FEW,        /* n ≤ p, < 2 or ≤ p clients, < p repeat visits */
	LMM_ERR_NO_REPLICATES,  /* no client has 2 or more observations */
	LMM_ERR_SINGULAR,       /* the fixed-effects design is rank deficient */
	LMM_ERR_NO_SPREAD,      /* no residual variance (every fit exact) */
	LMM_ERR_NO_WITHIN,      /* optimum at θ → ∞: no within-client variance */
	/* lmm_nested.h only: */
	LMM_ERR_NO_NESTING,     /* a client under two therapists (not nested) */
	LMM_ERR_NO_THERAPIST_REPLICATES, /* no therapist has 2 or more clients */
	LMM_ERR_NO_CONVERGENCE, /* the bounded search ended without an optimum */
} lmm_status;

typedef struct lmm_result {
	lmm_status status;
	int n, p, groups;       /* observations, fixed effects, clients (with data) */
	int boundary;           /* 1: σ_b² = 0 at the optimum (a singular fit) */
	double theta;           /* σ_b / σ */
	double sigma2;          /* residual variance σ² */
	double sigma2_b;        /* between-client variance σ_b² */
	double reml;            /* REML deviance (−2 log L_R) at the optimum */
	double beta[LMM_MAX_P];
	double se[LMM_MAX_P];
	double df[LMM_MAX_P];   /* Satterthwaite (n − p at a boundary fit) */
	double cov[LMM_MAX_P * LMM_MAX_P];  /* σ²(X'H⁻¹X)⁻¹, row-major */
	int evaluations;        /* deviance evaluations spent on θ (bounded) */
} lmm_result;

/* y[0..n−1]; x row-major n × p (column 0 is usually the intercept, 1.0);
 * group[i] ≥ 0 identifies the client of observation i (any numbers; they
 * need not be dense). Returns 0 or -1 (out->status says why; every double NaN). */
int lmm_fit_reml(const double *y, const double *x, const int *group, int n, int p,
	lmm_result *out);

/* The two-sided interval beta[j] ± t(1 − (1 − level)/2, df[j])·se[j]
 * into lo/hi. Returns 0, or -1 (NaN into lo/hi) for a refused fit, j out
 * of range or a level outside (0, 1). */
int lmm_ci(const lmm_result *r, int j, double level, double *lo, double *hi);

/* A short English sentence naming a status (for the reports' notes). */
const char *lmm_status_text(lmm_status s);

/* Small dense helpers, shared with lmm_nested.c (p ≤ LMM_MAX_P, row-major):
 * lmm_chol: Cholesky A = LL' into l, log|A| into *logdet (may be NULL);
 * -1 when A is not positive definite. lmm_chol_solve: x = A⁻¹b from L.
 * lmm_chol_inverse: A⁻¹ from L. lmm_well_conditioned: 1 when the
 * symmetric A has full rank (every pivot of the Cholesky factor of its
 * unit-diagonal scaling at least 1e-10), else 0. */
int lmm_chol(const double *a, int p, double *l, double *logdet);
void lmm_chol_solve(const double *l, int p, const double *b, double *x);
void lmm_chol_inverse(const double *l, int p, double *inv);
int lmm_well_conditioned(const double *a, int p);

/* The GLS step both models share, from the normal equations A β = c and
 * q = y'H⁻¹y: A's Cholesky factor into l, log|A| into *logdet_a, β, and
 * the residual sum q − c'β into *rss; -1 when A is not positive definite.
 * lmm_reml_criterion: lme4's REML criterion with σ² profiled out, from n
 * observations, p fixed effects, that RSS, log|H| and log|A|. */
int lmm_gls_solve(const double *a, const double *c, double q, int p, double *l, double *beta,
	double *rss, double *logdet_a);
double lmm_reml_criterion(int n, int p, double rss, double logdet_h, double logdet_a);

/* Accumulates, for observations with dense group index dense[i], the
 * per-group count ng[g], column sums s[g·p..] and score sums t[g], and
 * X'X, X'y, y'y (all zeroed by the caller), with y centred on its mean
 * when column 0 of x is the intercept (1.0 everywhere; otherwise not).
 * Returns the shift subtracted from y (β0 moves by it; add it back). */
double lmm_group_sums(const double *y, const double *x, const int *dense, int n, int p, int *ng,
	double *s, double *t, double *xtx, double *xty, double *yty);

#endif
