/*
 * rref.h — test support: the independent reference for the mixed model.
 * Runs R's lme4 + lmerTest (tests/unit/lmm_ref.R, through Rscript) on a
 * data set at test time and reads back, per fixed coefficient, the REML
 * estimate, its SE, the Satterthwaite df and the 95 % interval. Nothing
 * here computes a statistic itself.
 */
#ifndef ALLIANCE_TEST_RREF_H
#define ALLIANCE_TEST_RREF_H

#include <glib.h>

#define RREF_MAX_P 4

typedef struct rref_fit {
	int p;
	double est[RREF_MAX_P], se[RREF_MAX_P], df[RREF_MAX_P], lo[RREF_MAX_P], hi[RREF_MAX_P];
	double sigma2_b, sigma2, reml;   /* sigma2_b: the client variance */
	int singular;
	/* rref_lmer_nested() only: the therapist variance, and the contrast */
	double sigma2_t;
	int has_contrast;
	double c_est, c_se, c_df, c_lo, c_hi;
} rref_fit;

/* y[n], x row-major n × p whose column 0 is the intercept (not written:
 * R adds it), g[n] the client. Fails the test when Rscript, lme4 or
 * lmerTest is missing (conf/install-deps.sh installs them) or R errs. */
void rref_lmer(const double *y, const double *x, const int *g, int n, int p, rref_fit *out);

/* The same for clients nested in therapists, lme4's (1 | t/g): t[n]
 * the therapist; contrast NULL or p weights L, for which lmerTest's
 * contest() gives c_est, c_se, c_df and the 95 % interval. */
void rref_lmer_nested(const double *y, const double *x, const int *t, const int *g, int n, int p,
	const double *contrast, rref_fit *out);

#endif
