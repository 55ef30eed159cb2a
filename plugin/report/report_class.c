/*
 * report_class.c — see report_class.h.
 */
#include "report_class.h"
#include "report_json.h"
#include "callclass.h"
#include "stats.h"

#include <glib.h>
#include <math.h>
#include <string.h>

void report_class_visit(json_t *r) {
	/* r may share these with the row it was built from: annotate copies */
	static const char *const own[] = { "legs", "pulses", "alerts" };
	for(size_t k = 0; k < G_N_ELEMENTS(own); k++) {
		json_t *v = json_object_get(r, own[k]);
		if(v)
			json_object_set_new(r, own[k], json_deep_copy(v));
	}
	callclass_legs(json_object_get(r, "legs"));
	static const char *const lists[] = { "pulses", "alerts" };
	for(size_t k = 0; k < G_N_ELEMENTS(lists); k++) {
		size_t i;
		json_t *row;
		json_array_foreach(json_object_get(r, lists[k]), i, row)
			callclass_context(json_object_get(row, "quality"));
	}
}

static json_t *group_json(const GArray *a) {
	int n = (int)a->len;
	const double *x = (const double *)(void *)a->data;
	stats_desc d;
	stats_ci ci;
	if(n < 1 || stats_describe(x, n, &d) < 0)
		d.mean = d.sd = NAN;
	if(n < 2 || stats_mean_ci(x, n, 0.95, &ci) < 0)
		ci.lo = ci.hi = NAN;
	return json_pack("{s:i, s:o, s:o, s:o, s:o}", "n", n, "mean", report_num(d.mean), "sd", report_num(d.sd),
		"ci_lo", report_num(ci.lo), "ci_hi", report_num(ci.hi));
}

json_t *report_class_compare(const json_t *visit_rows, const char *ins_id) {
	GArray *good = g_array_new(FALSE, FALSE, sizeof(double));
	GArray *poor = g_array_new(FALSE, FALSE, sizeof(double));
	int unclassified = 0;
	size_t i;
	json_t *row;
	json_array_foreach(visit_rows, i, row) {
		const char *modality = json_string_value(json_object_get(row, "modality"));
		const char *ins = json_string_value(json_object_get(row, "client_instrument"));
		json_t *t = json_object_get(row, "client_total");
		if(!modality || strcmp(modality, "video") || !ins_id || !ins || strcmp(ins, ins_id) ||
				!json_is_number(t) || !isfinite(json_number_value(t)))
			continue;
		double total = json_number_value(t);
		const char *vc = json_string_value(json_object_get(row, "video_class"));
		if(vc && !strcmp(vc, "good"))
			g_array_append_val(good, total);
		else if(vc && !strcmp(vc, "poor"))
			g_array_append_val(poor, total);
		else
			unclassified++;
	}
	stats_effect e;
	if(stats_hedges_g((const double *)(void *)poor->data, (int)poor->len,
			(const double *)(void *)good->data, (int)good->len, &e) < 0)
		e.g = e.se = e.lo = e.hi = NAN;
	json_t *out = json_pack("{s:s, s:s, s:o, s:o, s:i, s:{s:s, s:i, s:i, s:o, s:o, s:o, s:o}}",
		"rule", "poor when any video leg of the visit is poor by the published thresholds (docs/metrics.md)",
		"score", "total", "good", group_json(good), "poor", group_json(poor),
		"unclassified", unclassified,
		"hedges_g", "direction", "poor - good", "n_poor", (int)poor->len, "n_good", (int)good->len,
		"g", report_num(e.g), "se", report_num(e.se), "lo", report_num(e.lo), "hi", report_num(e.hi));
	g_array_free(good, TRUE);
	g_array_free(poor, TRUE);
	return out;
}
