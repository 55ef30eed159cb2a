/*
 * report_html.c — see report_html.h. Plain GString building; the plots are
 * SVG drawn in a fixed 640 x 300 viewBox that scales with the page.
 */
#include "report_html.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 640.0
#define H 300.0
#define ML 56.0      /* margins: left, right, top, bottom */
#define MR 16.0
#define MT 16.0
#define MB 44.0

static const char *const COLOR[2] = { "#1f6fb2", "#c2571a" };    /* video, in person */
static const char *const MOD[2] = { "video", "in_person" };
static const char *const MOD_LABEL[2] = { "online (video)", "in person" };

static double num(const json_t *o, const char *key) {
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void esc(GString *out, const char *s) {
	char *e = g_markup_escape_text(s ? s : "", -1);
	g_string_append(out, e);
	g_free(e);
}

static void fmt(GString *out, double x, int decimals) {
	if(isfinite(x))
		g_string_append_printf(out, "%.*f", decimals, x);
	else
		g_string_append(out, "&ndash;");
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void report_quartiles(double *x, int n, double q[5]) {
	qsort(x, (size_t)n, sizeof(double), cmp_double);
	for(int k = 0; k < 5; k++) {
		double pos = (n - 1) * k / 4.0;
		int lo = (int)floor(pos);
		int hi = lo + 1 < n ? lo + 1 : lo;
		q[k] = x[lo] + (pos - lo) * (x[hi] - x[lo]);
	}
}

/* "Nice" axis ticks over [lo, hi]: steps of 1, 2 or 5 times a power of 10. */
static double tick_step(double lo, double hi, int want) {
	double span = hi - lo;
	if(!(span > 0))
		return 1;
	double raw = span / want, p = pow(10, floor(log10(raw)));
	double m = raw / p;
	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct axes {
	double x0, x1, y0, y1;
} axes;

static double sx(const axes *a, double x) {
	return ML + (x - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}

static double sy(const axes *a, double y) {
	return H - MB - (y - a->y0) / (a->y1 - a->y0) * (H - MT - MB);
}

static void svg_open(GString *o, const char *title) {
	g_string_append_printf(o, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W, H);
	esc(o, title);
	g_string_append(o, "\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">\n");
}

/* Axes, grid and labels; xcat: category labels instead of numbers (NULL). */
static void svg_axes(GString *o, const axes *a, const char *xlabel, const char *ylabel,
		const char *const *xcat, int ncat) {
	double ys = tick_step(a->y0, a->y1, 5);
	for(double y = ceil(a->y0 / ys) * ys; y <= a->y1 + 1e-9; y += ys) {
		g_string_append_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
			ML, W - MR, sy(a, y), sy(a, y), ML - 6, sy(a, y) + 4, y);
	}
	if(xcat) {
		for(int i = 0; i < ncat; i++)
			g_string_append_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
				sx(a, i), H - MB + 16, xcat[i]);
	} else {
		double xs = tick_step(a->x0, a->x1, 8);
		if(xs < 1 && a->x1 - a->x0 >= 1 && strstr(xlabel, "visit"))
			xs = 1;
		for(double x = ceil(a->x0 / xs) * xs; x <= a->x1 + 1e-9; x += xs)
			g_string_append_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>"
				"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
				sx(a, x), sx(a, x), H - MB, H - MB + 4, sx(a, x), H - MB + 16, x);
	}
	g_string_append_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
		ML, W - MR, H - MB, H - MB);
	g_string_append_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
		ML, ML, MT, H - MB);
	g_string_append_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 8);
	esc(o, xlabel);
	g_string_append_printf(o, "</text><text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
		(MT + H - MB) / 2);
	esc(o, ylabel);
	g_string_append(o, "</text>\n");
}

static void legend(GString *o) {
	for(int m = 0; m < 2; m++)
		g_string_append_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			"<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", W - MR - 130, MT + 4 + m * 16, COLOR[m],
			W - MR - 115, MT + 13 + m * 16, MOD_LABEL[m]);
}

/* The score range of the plots: the instrument's scale if known, else the data's. */
static void y_range(const json_t *compare, const json_t *visits, double *lo, double *hi) {
	json_t *scale = json_object_get(compare, "scale");
	if(json_is_object(scale)) {
		*lo = num(scale, "min");
		*hi = num(scale, "max");
		if(isfinite(*lo) && isfinite(*hi) && *hi > *lo)
			return;
	}
	*lo = INFINITY;
	*hi = -INFINITY;
	size_t i;
	json_t *r;
	json_array_foreach(visits, i, r) {
		double t = num(r, "client_total");
		if(isfinite(t)) {
			*lo = fmin(*lo, t);
			*hi = fmax(*hi, t);
		}
	}
	if(!isfinite(*lo)) {
		*lo = 0;
		*hi = 1;
	} else if(*hi <= *lo) {
		*hi = *lo + 1;
	}
}

static void plot_formation(GString *o, const json_t *compare, double ylo, double yhi) {
	json_t *f = json_object_get(compare, "formation");
	int kmax = 1;
	for(int m = 0; m < 2; m++)
		kmax = MAX(kmax, (int)json_array_size(json_object_get(f, MOD[m])));
	axes a = { 0.5, kmax + 0.5, ylo, yhi };
	svg_open(o, "Alliance formation curve: mean end total by visit number, with 95% intervals");
	svg_axes(o, &a, "visit number (the client's nth visit)", "mean end total (95% CI)", NULL, 0);
	for(int m = 0; m < 2; m++) {
		json_t *pts = json_object_get(f, MOD[m]);
		GString *path = g_string_new(NULL);
		double off = (m ? 0.08 : -0.08);
		size_t i;
		json_t *p;
		json_array_foreach(pts, i, p) {
			double k = num(p, "visit") + off, mean = num(p, "mean"), lo = num(p, "lo"), hi = num(p, "hi");
			if(!isfinite(mean))
				continue;
			g_string_append_printf(path, "%s%.1f %.1f", path->len ? " L" : "M", sx(&a, k), sy(&a, mean));
			if(isfinite(lo) && isfinite(hi))
				g_string_append_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
					"stroke-opacity=\"0.6\"/>\n", sx(&a, k), sx(&a, k), sy(&a, fmax(lo, ylo)),
					sy(&a, fmin(hi, yhi)), COLOR[m]);
			g_string_append_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s, visit %g: "
				"mean %.2f, n %g</title></circle>\n", sx(&a, k), sy(&a, mean), COLOR[m], MOD_LABEL[m],
				num(p, "visit"), mean, num(p, "n"));
		}
		if(path->len)
			g_string_append_printf(o, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
				path->str, COLOR[m]);
		g_string_free(path, TRUE);
	}
	legend(o);
	g_string_append(o, "</svg>\n");
}

static void plot_distributions(GString *o, const json_t *visits, const char *instrument,
		double ylo, double yhi) {
	axes a = { -0.6, 1.6, ylo, yhi };
	static const char *const cats[2] = { "online (video)", "in person" };
	svg_open(o, "End totals online and in person: every visit as a dot, over a box plot");
	svg_axes(o, &a, "modality", "client end total", cats, 2);
	GArray *vals[2] = { g_array_new(FALSE, FALSE, sizeof(double)), g_array_new(FALSE, FALSE, sizeof(double)) };
	size_t i;
	json_t *r;
	guint32 jitter = 2463534242u;          /* xorshift: the same picture every time */
	json_array_foreach(visits, i, r) {
		const char *ins = json_string_value(json_object_get(r, "client_instrument"));
		double t = num(r, "client_total");
		if(!isfinite(t) || ins == NULL || (instrument && strcmp(ins, instrument)))
			continue;
		const char *mod = json_string_value(json_object_get(r, "modality"));
		int m = mod && !strcmp(mod, "video") ? 0 : 1;
		g_array_append_val(vals[m], t);
		jitter ^= jitter << 13;
		jitter ^= jitter >> 17;
		jitter ^= jitter << 5;
		double dx = ((jitter % 1000) / 1000.0 - 0.5) * 0.5;
		g_string_append_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\" fill-opacity=\"0.45\"/>\n",
			sx(&a, m + dx), sy(&a, t), COLOR[m]);
	}
	for(int m = 0; m < 2; m++) {
		int n = (int)vals[m]->len;
		if(n == 0)
			continue;
		double *x = (double *)(void *)vals[m]->data, q[5];
		report_quartiles(x, n, q);
		double iqr = q[3] - q[1], wlo = q[1], whi = q[3];
		for(int k = 0; k < n; k++) {
			if(x[k] >= q[1] - 1.5 * iqr && x[k] < wlo)
				wlo = x[k];
			if(x[k] <= q[3] + 1.5 * iqr && x[k] > whi)
				whi = x[k];
		}
		double cx = sx(&a, m), bw = 60;
		g_string_append_printf(o, "<g stroke=\"#222\" fill=\"none\"><title>%s: n %d, median %.2f, "
			"quartiles %.2f and %.2f</title>"
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke-width=\"2\"/>"
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/></g>\n",
			MOD_LABEL[m], n, q[2], q[1], q[3],
			cx - bw / 2, sy(&a, q[3]), bw, sy(&a, q[1]) - sy(&a, q[3]),
			cx - bw / 2, cx + bw / 2, sy(&a, q[2]), sy(&a, q[2]),
			cx, cx, sy(&a, q[3]), sy(&a, whi), cx, cx, sy(&a, q[1]), sy(&a, wlo));
		g_string_append_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">n = %d</text>\n",
			cx + 70, sy(&a, q[2]) + 4, n);
	}
	g_array_free(vals[0], TRUE);
	g_array_free(vals[1], TRUE);
	g_string_append(o, "</svg>\n");
}

static void plot_quality(GString *o, const json_t *compare, const json_t *visits,
		const char *instrument, double ylo, double yhi) {
	double xmax = 1;
	size_t i;
	json_t *r;
	json_array_foreach(visits, i, r)
		if(isfinite(num(r, "freeze_s")) && isfinite(num(r, "client_total")))
			xmax = fmax(xmax, num(r, "freeze_s"));
	axes a = { 0, xmax * 1.05, ylo, yhi };
	svg_open(o, "Freeze seconds against the end total, video visits");
	svg_axes(o, &a, "seconds of frozen video in the visit", "client end total", NULL, 0);
	json_array_foreach(visits, i, r) {
		const char *ins = json_string_value(json_object_get(r, "client_instrument"));
		double x = num(r, "freeze_s"), y = num(r, "client_total");
		if(!isfinite(x) || !isfinite(y) || ins == NULL || (instrument && strcmp(ins, instrument)))
			continue;
		g_string_append_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" fill-opacity=\"0.55\"/>\n",
			sx(&a, x), sy(&a, y), COLOR[0]);
	}
	json_t *c = json_object_get(json_object_get(compare, "quality"), "freeze_s");
	GString *t = g_string_new(NULL);
	g_string_append(t, "Spearman &#961; = ");
	fmt(t, num(c, "rho"), 2);
	g_string_append(t, " [");
	fmt(t, num(c, "lo"), 2);
	g_string_append(t, ", ");
	fmt(t, num(c, "hi"), 2);
	g_string_append_printf(t, "], n = %g", num(c, "n"));
	g_string_append_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
		W - MR, MT + 10, t->str);
	g_string_free(t, TRUE);
	g_string_append(o, "</svg>\n");
}

static void ci_cell(GString *o, const json_t *x, const char *est, int dec) {
	g_string_append(o, "<td>");
	fmt(o, num(x, est), dec);
	g_string_append(o, " [");
	fmt(o, num(x, "lo"), dec);
	g_string_append(o, ", ");
	fmt(o, num(x, "hi"), dec);
	g_string_append(o, "]</td>");
}

static void compare_tables(GString *o, const json_t *compare) {
	g_string_append(o, "<table><caption>Online vs in person (Hedges' g: video &minus; in person, 95% CI)</caption>"
		"<tr><th>score</th><th>n video</th><th>mean (SD) video</th><th>n in person</th>"
		"<th>mean (SD) in person</th><th>g [95% CI]</th></tr>\n");
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(compare, "scores"), i, s) {
		json_t *v = json_object_get(s, "video"), *p = json_object_get(s, "in_person");
		g_string_append(o, "<tr><td>");
		esc(o, json_string_value(json_object_get(s, "score")));
		g_string_append_printf(o, "</td><td>%g</td><td>", num(v, "n"));
		fmt(o, num(v, "mean"), 2);
		g_string_append(o, " (");
		fmt(o, num(v, "sd"), 2);
		g_string_append_printf(o, ")</td><td>%g</td><td>", num(p, "n"));
		fmt(o, num(p, "mean"), 2);
		g_string_append(o, " (");
		fmt(o, num(p, "sd"), 2);
		g_string_append(o, ")</td>");
		ci_cell(o, json_object_get(s, "hedges_g"), "g", 2);
		g_string_append(o, "</tr>\n");
	}
	g_string_append(o, "</table>\n<table><caption>End total and connection quality (video visits, Spearman)"
		"</caption><tr><th>measure</th><th>n</th><th>&#961; [95% CI]</th><th>p</th></tr>\n");
	static const char *const q[4] = { "mean_mos", "loss_pct", "freeze_s", "incidents" };
	static const char *const ql[4] = { "mean MOS", "loss %", "freeze seconds", "incidents" };
	json_t *quality = json_object_get(compare, "quality");
	for(int k = 0; k < 4; k++) {
		json_t *c = json_object_get(quality, q[k]);
		g_string_append_printf(o, "<tr><td>%s</td><td>%g</td>", ql[k], num(c, "n"));
		ci_cell(o, c, "rho", 2);
		g_string_append(o, "<td>");
		fmt(o, num(c, "p"), 3);
		g_string_append(o, "</td></tr>\n");
	}
	json_t *cg = json_object_get(json_object_get(compare, "congruence"), "all");
	g_string_append_printf(o, "</table>\n<p>Client&ndash;therapist congruence (end totals, %g visits): "
		"mean absolute difference ", num(cg, "n"));
	fmt(o, num(cg, "mean_abs_diff"), 2);
	g_string_append(o, ", Pearson r ");
	fmt(o, num(json_object_get(cg, "pearson"), "r"), 2);
	g_string_append(o, ".</p>\n");
}

static void summary_table(GString *o, const json_t *summary, const char *key, const char *label,
		const char *code_key) {
	g_string_append_printf(o, "<table><caption>%s</caption><tr><th>code</th><th>visits</th>"
		"<th>scored</th><th>mean end total</th><th>trend / visit</th><th>alerts</th>"
		"<th>at maximum</th></tr>\n", label);
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(summary, key), i, g) {
		json_t *c = json_object_get(g, "ceiling");
		g_string_append(o, "<tr><td>");
		esc(o, json_string_value(json_object_get(g, code_key)));
		g_string_append_printf(o, "</td><td>%g</td><td>%g</td><td>", num(g, "visits"), num(g, "scored"));
		fmt(o, num(json_object_get(g, "total"), "mean"), 1);
		g_string_append(o, "</td><td>");
		fmt(o, num(g, "trend_per_visit"), 2);
		g_string_append_printf(o, "</td><td>%g</td><td>", num(g, "alerts"));
		fmt(o, 100 * num(c, "share"), 0);
		g_string_append(o, isfinite(num(c, "share")) ? "%" : "");
		if(json_is_true(json_object_get(c, "flag")))
			g_string_append(o, " <strong>ceiling</strong>");
		g_string_append(o, "</td></tr>\n");
	}
	g_string_append(o, "</table>\n");
}

char *report_html(const json_t *summary, const json_t *compare, const json_t *visits,
		const char *generated) {
	GString *o = g_string_new("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<title>Alliance Pulse report</title><style>"
		"body{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#222}"
		"table{border-collapse:collapse;margin:1rem 0;width:100%}caption{text-align:left;font-weight:bold;"
		"margin-bottom:.3rem}th,td{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left}"
		"figure{margin:1.5rem 0}figcaption{font-size:.9rem;color:#444}svg{width:100%;height:auto}"
		".note{font-size:.85rem;color:#555}</style></head><body>\n<h1>Alliance Pulse report</h1>\n<p class=\"note\">");
	esc(o, generated);
	g_string_append(o, "</p>\n");
	const char *instrument = json_string_value(json_object_get(compare ? compare : summary, "instrument"));
	if(instrument) {
		g_string_append(o, "<p>Instrument analysed: <code>");
		esc(o, instrument);
		g_string_append(o, "</code> (client end-of-visit form).</p>\n");
	}
	if(compare) {
		json_t *empty = json_array();
		const json_t *rows = visits ? visits : empty;
		double ylo, yhi;
		y_range(compare, rows, &ylo, &yhi);
		g_string_append_printf(o, "<h2>Online and in person</h2><p class=\"note\">Research view: %s. "
			"%g visits analysed.</p>\n", json_is_true(json_object_get(json_object_get(compare, "filters"),
			"research")) ? "visits with research consent only" : "all visits", num(compare, "visits"));
		g_string_append(o, "<figure>");
		plot_formation(o, compare, ylo, yhi);
		g_string_append(o, "<figcaption>Figure 1. Alliance formation: the mean client end total at "
			"each visit number, with its 95% t interval, online and in person. The points are not "
			"independent (the same clients appear at several visits).</figcaption></figure>\n<figure>");
		plot_distributions(o, rows, instrument, ylo, yhi);
		g_string_append(o, "<figcaption>Figure 2. Client end totals per visit, online and in person "
			"(box: quartiles; whiskers: the most extreme values within 1.5 IQR).</figcaption></figure>\n<figure>");
		plot_quality(o, compare, rows, instrument, ylo, yhi);
		g_string_append(o, "<figcaption>Figure 3. Seconds of frozen video in the visit against the "
			"client end total (video visits). An association, not a cause.</figcaption></figure>\n");
		compare_tables(o, compare);
		json_decref(empty);
	}
	if(summary) {
		g_string_append(o, "<h2>Therapists and clients</h2>\n");
		summary_table(o, summary, "therapists", "Per therapist", "therapist_code");
		summary_table(o, summary, "clients", "Per client", "client_code");
	}
	g_string_append(o, "<p class=\"note\">Pseudonymous codes only. Statistics: docs/statistics.md; "
		"report fields: docs/reports.md.</p>\n</body></html>\n");
	return g_string_free(o, FALSE);
}
