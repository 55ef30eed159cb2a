/* rref.c — see rref.h. */
#include "rref.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif

static void run(const double *y, const double *x, const int *t, const int *g, int n, int p,
		const double *contrast, rref_fit *out) {
	memset(out, 0, sizeof(*out));
	g_assert_cmpint(p, >=, 1);
	g_assert_cmpint(p, <=, RREF_MAX_P);
	out->p = p;
	GError *e = NULL;
	char *csv = NULL;
	int fd = g_file_open_tmp("lmm-ref-XXXXXX.csv", &csv, &e);
	g_assert_no_error(e);
	FILE *f = fdopen(fd, "w");
	g_assert_nonnull(f);
	fprintf(f, t ? "y,g,t" : "y,g");
	for(int j = 1; j < p; j++)
		fprintf(f, ",x%d", j);
	fprintf(f, "\n");
	for(int i = 0; i < n; i++) {
		fprintf(f, "%.17g,%d", y[i], g[i]);
		if(t)
			fprintf(f, ",%d", t[i]);
		for(int j = 1; j < p; j++)
			fprintf(f, ",%.17g", x[(size_t)i * p + j]);
		fprintf(f, "\n");
	}
	fclose(f);
	char *script = g_build_filename(AP_SRCDIR, "tests", "unit", "lmm_ref.R", NULL);
	GString *lw = g_string_new(NULL);
	for(int j = 0; contrast && j < p; j++)
		g_string_append_printf(lw, "%s%.17g", j ? "," : "", contrast[j]);
	char *argv[] = { (char *)"Rscript", (char *)"--vanilla", script, csv, contrast ? lw->str : NULL, NULL };
	char *sout = NULL, *serr = NULL;
	int status = 0;
	gboolean ran = g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &sout, &serr,
		&status, &e);
	if(!ran)
		g_error("Rscript could not run (%s): install r-base-core, r-cran-lme4 and r-cran-lmertest "
			"(conf/install-deps.sh)", e ? e->message : "?");
	if(!g_spawn_check_wait_status(status, NULL))
		g_error("the R reference failed: %s", serr ? serr : "?");
	int coefs = 0, vars = 0;
	gchar **lines = g_strsplit(sout, "\n", -1);
	for(int k = 0; lines[k]; k++) {
		int j;
		double a, b, c, d, h;
		int s;
		if(sscanf(lines[k], "coef %d %lf %lf %lf %lf %lf", &j, &a, &b, &c, &d, &h) == 6) {
			g_assert_cmpint(j, >=, 0);
			g_assert_cmpint(j, <, p);
			out->est[j] = a;
			out->se[j] = b;
			out->df[j] = c;
			out->lo[j] = d;
			out->hi[j] = h;
			coefs++;
		} else if(t && sscanf(lines[k], "var2 %lf %lf %lf %lf %d", &h, &a, &b, &c, &s) == 5) {
			out->sigma2_t = h;
			out->sigma2_b = a;
			out->sigma2 = b;
			out->reml = c;
			out->singular = s;
			vars++;
		} else if(contrast && sscanf(lines[k], "contrast %lf %lf %lf %lf %lf", &a, &b, &c, &d, &h) == 5) {
			out->c_est = a;
			out->c_se = b;
			out->c_df = c;
			out->c_lo = d;
			out->c_hi = h;
			out->has_contrast = 1;
		} else if(!t && sscanf(lines[k], "var %lf %lf %lf %d", &a, &b, &c, &s) == 4) {
			out->sigma2_b = a;
			out->sigma2 = b;
			out->reml = c;
			out->singular = s;
			vars++;
		}
	}
	g_strfreev(lines);
	g_assert_cmpint(coefs, ==, p);
	g_assert_cmpint(vars, ==, 1);
	g_assert_cmpint(out->has_contrast, ==, contrast != NULL);
	g_string_free(lw, TRUE);
	g_unlink(csv);
	g_free(csv);
	g_free(script);
	g_free(sout);
	g_free(serr);
}

void rref_lmer(const double *y, const double *x, const int *g, int n, int p, rref_fit *out) {
	run(y, x, NULL, g, n, p, NULL, out);
}

void rref_lmer_nested(const double *y, const double *x, const int *t, const int *g, int n, int p,
		const double *contrast, rref_fit *out) {
	run(y, x, t, g, n, p, contrast, out);
}
