/* lmmset.c — see lmmset.h. */
#include <math.h>
#include "lmmset.h"

void lmmset_init(dataset *d, int cap, int p) {
	d->n = 0;
	d->p = p;
	d->y = g_new0(double, cap);
	d->x = g_new0(double, (size_t)cap * p);
	d->t = g_new0(int, cap);
	d->g = g_new0(int, cap);
}

void lmmset_add(dataset *d, int therapist, int client, double y, const double *cov) {
	d->y[d->n] = y;
	d->t[d->n] = therapist;
	d->g[d->n] = client;
	d->x[(size_t)d->n * d->p] = 1;
	for(int j = 1; j < d->p; j++)
		d->x[(size_t)d->n * d->p + j] = cov[j - 1];
	d->n++;
}

void lmmset_free(dataset *d) {
	g_free(d->y);
	g_free(d->x);
	g_free(d->t);
	g_free(d->g);
}

double lmmset_normal(GRand *r) {
	double u = g_rand_double(r), v = g_rand_double(r);
	return sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v);
}
