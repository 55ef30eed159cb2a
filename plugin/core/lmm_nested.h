/*
 * lmm_nested.h — a linear mixed model with clients nested in therapists,
 * fitted by REML: lme4's `y ~ x + (1 | therapist/client)`,
 *
 *     y_i = x_i'β + a_t(i) + b_c(i) + e_i,
 *     a_t ~ N(0, σ_t²) per therapist, b_c ~ N(0, σ_c²) per client,
 *     e_i ~ N(0, σ²), all independent,
 *
 * where every client belongs to exactly one therapist. For every fixed
 * coefficient, and for one optional contrast L'β, it gives the estimate,
 * its standard error and Satterthwaite degrees of freedom computed as
 * R's lmerTest does (the observed Hessian of the REML deviance in the
 * variance parameters, the variances with a zero estimate left out), so
 * that estimate ± t(0.975, df)·se is the interval lmerTest's summary()
 * and contest() imply. The same df method as lmm.h's one-level model.
 * docs/statistics.md ("Therapists: clients nested in therapists") gives
 * the algebra, the optimiser and the degenerate cases.
 *
 * How: with γ_t = σ_t²/σ² and γ_c = σ_c²/σ², a therapist's block of V is
 * σ²(D + γ_t 11'), D = I + γ_c·blockdiag(J per client); D⁻¹ is a closed
 * form per client and the rank-one therapist term is added by
 * Sherman–Morrison, so the REML deviance (σ² and β profiled out) is a
 * function of θ = (√γ_t, √γ_c) computed from per-client sums in
 * O(clients·p + therapists·p²). θ is found by a grid over [0, 1e4]² and
 * Nelder–Mead (restarted once) on the deviance, which is even in each θ
 * (so the search needs no bounds: θ and −θ are the same fit); every
 * search has a fixed evaluation budget. A θ below 1e-5 whose zero is no
 * worse is set to 0: a boundary fit (lme4's "singular" fit), whose
 * variance is reported as 0 and left out of the df's Hessian, as
 * lmerTest's pseudo-inverse does there.
 *
 * Refusals (lmm_nested_fit() returns -1, status says why, every double
 * NaN): LMM_ERR_INPUT (NaN/Inf, p outside 1..LMM_MAX_P, a negative
 * index, a non-finite contrast), LMM_ERR_TOO_FEW (n ≤ p, fewer than
 * max(2, p + 1) therapists or clients, fewer than p observations beyond
 * one per client), LMM_ERR_NO_NESTING (a client index seen with two
 * therapist indices: this module does not fit crossed designs; the
 * caller can fall back to lmm.h or recode the client as therapist:client,
 * which is what lme4's `/` does), LMM_ERR_NO_REPLICATES (no client with
 * 2 or more observations), LMM_ERR_NO_THERAPIST_REPLICATES (no therapist
 * with 2 or more clients: σ_t² and σ_c² are then not separately
 * identifiable), LMM_ERR_SINGULAR (rank-deficient design),
 * LMM_ERR_NO_SPREAD, LMM_ERR_NO_WITHIN (an optimum at θ = 1e4).
 *
 * Pure: no Janus, no I/O, no state; scratch from g_new() (bounded by n)
 * is freed before returning. Needs libm, lmm.h's helpers and stats.h.
 */
#ifndef ALLIANCE_LMM_NESTED_H
#define ALLIANCE_LMM_NESTED_H

#include "lmm.h"

typedef struct lmm_nested_result {
	lmm_status status;
	int n, p, therapists, clients;  /* observations, fixed effects, groups with data */
	int boundary_therapist;         /* 1: σ_t² = 0 at the optimum */
	int boundary_client;            /* 1: σ_c² = 0 at the optimum */
	double theta_t, theta_c;        /* σ_t/σ, σ_c/σ */
	double sigma2;                  /* residual variance σ² */
	double sigma2_t, sigma2_c;      /* therapist and client variances */
	double reml;                    /* REML deviance (lme4's REMLcrit) */
	double beta[LMM_MAX_P], se[LMM_MAX_P];
	double df[LMM_MAX_P];           /* Satterthwaite */
	double cov[LMM_MAX_P * LMM_MAX_P];  /* Cov(β̂), row-major */
	int has_contrast;               /* a contrast was given */
	double contrast_est, contrast_se, contrast_df;
	int evaluations;                /* deviance evaluations spent on θ (bounded) */
} lmm_nested_result;

/* y[0..n−1]; x row-major n × p (column 0 usually the intercept, 1.0);
 * therapist[i] ≥ 0 and client[i] ≥ 0 identify observation i's therapist
 * and client (any numbers, not necessarily dense; a client number names
 * one client whatever the therapist). contrast: NULL, or p weights L of
 * the contrast L'β to report besides the coefficients. Returns 0 or -1. */
int lmm_nested_fit(const double *y, const double *x, const int *therapist, const int *client,
	int n, int p, const double *contrast, lmm_nested_result *out);

/* The two-sided interval of coefficient j (0..p−1), or of the contrast
 * for j = -1, at `level` into lo/hi. Returns 0, or -1 (NaN into lo/hi)
 * for a refused fit, a missing contrast, j out of range, a level outside
 * (0, 1) or a df that could not be computed. */
int lmm_nested_ci(const lmm_nested_result *r, int j, double level, double *lo, double *hi);

#endif
