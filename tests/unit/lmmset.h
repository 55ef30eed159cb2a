/*
 * lmmset.h — test support: the data sets the mixed-model tests fit, and
 * the standard normal draw they plant effects with.
 *
 * A set holds n observations: the score y, the design row x (p columns,
 * column 0 the intercept, written by lmmset_add), the therapist t and the
 * client g. test_lmm.c fits (1 | client) and leaves every therapist 0;
 * test_lmm_nested.c fits (1 | therapist/client).
 */
#ifndef ALLIANCE_TEST_LMMSET_H
#define ALLIANCE_TEST_LMMSET_H

#include <glib.h>

typedef struct dataset {
	int n, p;
	double *y, *x;
	int *t, *g;
} dataset;

/* Room for cap observations of p columns (the intercept included). */
void lmmset_init(dataset *d, int cap, int p);
/* One observation; cov holds the p − 1 covariates after the intercept. */
void lmmset_add(dataset *d, int therapist, int client, double y, const double *cov);
void lmmset_free(dataset *d);
/* A standard normal draw (Box–Muller) from r. */
double lmmset_normal(GRand *r);

#endif
