/*
 * report_fhir_quality.c — see report_fhir_quality.h: the connection
 * quality as Observations (docs/fhir.md, "Observation"): a panel per
 * context with one member per leg and medium and one per audio path,
 * every number coded in the local code system, UCUM units.
 */
#include "report_fhir_quality.h"

#include <math.h>
#include <string.h>

typedef enum metric_kind { M_QTY, M_INT } metric_kind;

/* Every number of a leg, path or context the export carries: its key in
 * the store's JSON, its code in REPORT_FHIR_CODES, and its UCUM unit. */
typedef struct metric {
	const char *key, *code, *display, *ucum, *unit;
	metric_kind kind;
} metric;

static const metric METRICS[] = {
	{ "window_s", "window-s", "Context window asked for", "s", "s", M_QTY },
	{ "measured_s", "measured-s", "Seconds of media measured", "s", "s", M_QTY },
	{ "seconds", "seconds", "Seconds measured", "s", "s", M_QTY },
	{ "samples", "samples", "Quality samples stored", NULL, NULL, M_INT },
	{ "loss_pct", "loss-pct", "Packet loss", "%", "%", M_QTY },
	{ "loss_pct_max", "loss-pct-max", "Packet loss, worst sample", "%", "%", M_QTY },
	{ "jitter_ms", "jitter-ms", "Interarrival jitter", "ms", "ms", M_QTY },
	{ "jitter_ms_max", "jitter-ms-max", "Interarrival jitter, worst sample", "ms", "ms", M_QTY },
	{ "rtt_ms", "rtt-ms", "Round-trip time", "ms", "ms", M_QTY },
	{ "rtt_ms_max", "rtt-ms-max", "Round-trip time, worst", "ms", "ms", M_QTY },
	{ "rtt_max_ms", "rtt-ms-max", "Round-trip time, worst", "ms", "ms", M_QTY },
	{ "bitrate_kbps", "bitrate-kbps", "Bitrate", "kbit/s", "kbit/s", M_QTY },
	{ "fps", "fps", "Video frame rate", "/s", "frames/s", M_QTY },
	{ "packets", "packets", "Packets received", NULL, NULL, M_INT },
	{ "expected", "expected", "Packets expected", NULL, NULL, M_INT },
	{ "lost", "lost", "Packets lost", NULL, NULL, M_INT },
	{ "freezes", "freezes", "Video freezes", NULL, NULL, M_INT },
	{ "freeze_s", "freeze-s", "Frozen video", "s", "s", M_QTY },
	{ "stalls", "stalls", "Media stalls", NULL, NULL, M_INT },
	{ "stall_s", "stall-s", "Stalled media", "s", "s", M_QTY },
	{ "nack", "nack", "Packets asked for again (NACK)", NULL, NULL, M_INT },
	{ "pli", "pli", "Picture loss indications", NULL, NULL, M_INT },
	{ "fir", "fir", "Full intra requests", NULL, NULL, M_INT },
	{ "r", "r-factor", "E-model rating R", "1", "R", M_QTY },
	{ "mos", "mos", "Mean opinion score (E-model)", "{MOS}", "MOS", M_QTY },
	{ "mean_mos", "mos-mean", "Mean opinion score, mean of both audio paths", "{MOS}", "MOS", M_QTY },
	{ "incidents", "incidents", "Connection incidents", NULL, NULL, M_INT },
};

static json_t *code_of(const char *code, const char *display) {
	return fhir_concept(REPORT_FHIR_CODES, code, display);
}

static json_t *component(const char *code, const char *display, const char *value_key, json_t *value) {
	json_t *c = json_pack("{s:o}", "code", code_of(code, display));
	json_object_set_new(c, value_key, value);
	return c;
}

/* The number of one metric as a component, or NULL (missing, null, not
 * finite). FHIR integers are 32-bit: larger counts become quantities. */
static json_t *metric_component(const metric *m, json_t *v) {
	if(!json_is_number(v) || !isfinite(json_number_value(v)))
		return NULL;
	double x = json_number_value(v);
	if(m->kind == M_INT && x == floor(x) && fabs(x) <= 2147483647.0)
		return component(m->code, m->display, "valueInteger", json_integer((json_int_t)x));
	json_t *q = json_pack("{s:f}", "value", x);
	if(m->ucum) {
		json_object_set_new(q, "unit", json_string(m->unit));
		json_object_set_new(q, "system", json_string(FHIR_UCUM));
		json_object_set_new(q, "code", json_string(m->ucum));
	} else {
		json_object_set_new(q, "system", json_string(FHIR_UCUM));
		json_object_set_new(q, "code", json_string("1"));
	}
	return component(m->code, m->display, "valueQuantity", q);
}

/* The components of every known metric in src, and its classification
 * when it carries one (`class`, `poor_reasons`, a path's `badge` and
 * `complete`). Returns how many metrics were found. */
static int add_metrics(json_t *comps, const json_t *src) {
	int n = 0;
	for(size_t i = 0; i < G_N_ELEMENTS(METRICS); i++) {
		json_t *c = metric_component(&METRICS[i], json_object_get(src, METRICS[i].key));
		if(c) {
			json_array_append_new(comps, c);
			n++;
		}
	}
	json_t *cc;
	if((cc = fhir_concept(REPORT_FHIR_CODES, fhir_sfield(src, "class"), NULL)))
		json_array_append_new(comps, component("class", "Call quality class", "valueCodeableConcept", cc));
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(src, "poor_reasons"), i, r)
		if((cc = fhir_concept(REPORT_FHIR_CODES, json_string_value(r), NULL)))
			json_array_append_new(comps, component("poor-reason", "Threshold crossed", "valueCodeableConcept", cc));
	if((cc = fhir_concept(REPORT_FHIR_CODES, fhir_sfield(src, "badge"), NULL)))
		json_array_append_new(comps, component("badge", "Quality badge shown", "valueCodeableConcept", cc));
	if(json_is_boolean(json_object_get(src, "complete")))
		json_array_append_new(comps, component("complete", "Both round trips known", "valueBoolean",
			json_boolean(json_is_true(json_object_get(src, "complete")))));
	return n;
}

static json_t *obs_new(fhir_obs *c, const char *code, const char *display, const char *status) {
	json_t *o = json_pack("{s:s, s:s, s:o}", "resourceType", "Observation", "status", status,
		"code", code_of(code, display));
	fhir_set_opt(o, "subject", fhir_logical_ref("Patient", c->base, "client-code", fhir_sfield(c->visit, "client_code")));
	fhir_set_opt(o, "encounter", fhir_logical_ref("Encounter", c->base, "visit-id", fhir_sfield(c->visit, "visit_id")));
	return o;
}

void fhir_obs_add(fhir_obs *c, json_t *e) {
	json_array_append_new(c->entries, e);
	c->added++;
}

static void set_effective(json_t *o, json_t *start, json_t *end, json_t *at) {
	json_t *s = fhir_iso(start), *e = fhir_iso(end);
	if(s || e) {
		json_t *p = json_object();
		fhir_set_opt(p, "start", s);
		fhir_set_opt(p, "end", e);
		json_object_set_new(o, "effectivePeriod", p);
	} else {
		fhir_set_opt(o, "effectiveDateTime", fhir_iso(at));
	}
}

/* One member per leg and medium of legs ({leg:{medium:{…}}}) and per path
 * of paths ({path:{…}}), added to the entries and referenced from
 * members; key names them. */
static void add_members(fhir_obs *c, const char *key, const json_t *legs, const json_t *paths,
		const char *status, json_t *start, json_t *end, json_t *at, json_t *members) {
	const char *leg, *medium;
	json_t *media, *m;
	json_object_foreach((json_t *)legs, leg, media) {
		json_object_foreach(media, medium, m) {
			json_t *comps = json_array();
			json_t *lc = fhir_concept(REPORT_FHIR_CODES, leg, NULL), *mc = fhir_concept(REPORT_FHIR_CODES, medium, NULL);
			if(lc == NULL || mc == NULL || !json_is_object(m) || add_metrics(comps, m) == 0) {
				json_decref(lc);
				json_decref(mc);
				json_decref(comps);
				continue;
			}
			json_array_insert_new(comps, 0, component("medium", "Medium", "valueCodeableConcept", mc));
			json_array_insert_new(comps, 0, component("leg", "Leg", "valueCodeableConcept", lc));
			json_t *o = obs_new(c, "leg-quality", "Connection quality of one leg and medium", status);
			set_effective(o, json_object_get(m, "first_at") ? json_object_get(m, "first_at") : start,
				json_object_get(m, "last_at") ? json_object_get(m, "last_at") : end, at);
			json_object_set_new(o, "component", comps);
			char *name = g_strdup_printf("%s/%s/%s", key, leg, medium);
			json_t *e = fhir_entry(o, name);
			g_free(name);
			json_array_append_new(members, json_pack("{s:s}", "reference", fhir_full_url(e)));
			fhir_obs_add(c, e);
		}
	}
	const char *path;
	json_object_foreach((json_t *)paths, path, m) {
		json_t *comps = json_array();
		json_t *pc = fhir_concept(REPORT_FHIR_CODES, path, NULL);
		if(pc == NULL || !json_is_object(m) || add_metrics(comps, m) == 0) {
			json_decref(pc);
			json_decref(comps);
			continue;
		}
		json_array_insert_new(comps, 0, component("path", "Audio path", "valueCodeableConcept", pc));
		json_t *o = obs_new(c, "path-quality", "Quality of one audio path (E-model)", status);
		set_effective(o, start, end, at);
		json_object_set_new(o, "component", comps);
		char *name = g_strdup_printf("%s/%s", key, path);
		json_t *e = fhir_entry(o, name);
		g_free(name);
		json_array_append_new(members, json_pack("{s:s}", "reference", fhir_full_url(e)));
		fhir_obs_add(c, e);
	}
}

/* The panel of a quality context (a pulse's: focus = its response) or of
 * the whole visit (focus NULL); nothing when nothing was measured. */
static void add_panel(fhir_obs *c, const char *key, const char *code, const char *display,
		const json_t *summary, const json_t *legs, const json_t *paths, const char *status,
		json_t *start, json_t *end, json_t *at, const char *focus) {
	json_t *members = json_array();
	add_members(c, key, legs, paths, status, start, end, at, members);
	json_t *comps = json_array();
	int n = add_metrics(comps, summary);
	if(n == 0 && json_array_size(members) == 0) {
		json_decref(members);
		json_decref(comps);
		return;
	}
	json_t *o = obs_new(c, code, display, status);
	set_effective(o, start, end, at);
	if(focus)
		json_object_set_new(o, "focus", json_pack("[{s:s}]", "reference", focus));
	if(json_array_size(comps))
		json_object_set_new(o, "component", comps);
	else
		json_decref(comps);
	if(json_array_size(members))
		json_object_set_new(o, "hasMember", members);
	else
		json_decref(members);
	fhir_obs_add(c, fhir_entry(o, key));
}

void fhir_quality_pulse(fhir_obs *c, const char *pulse_id, const json_t *quality,
		json_t *created_at, const char *focus_url) {
	if(!json_is_object(quality))
		return;
	char *key = g_strdup_printf("pulse/%s", pulse_id);
	add_panel(c, key, "quality-context", "Connection quality before the pulse", quality,
		json_object_get(quality, "legs"), json_object_get(quality, "paths"), "final", NULL, NULL,
		created_at, focus_url);
	g_free(key);
}

void fhir_quality_visit(fhir_obs *c, const json_t *row) {
	const json_t *v = c->visit;
	json_t *legs = json_object_get(row, "legs");
	/* an in-person visit has no connection: no panel of zero incidents */
	if(json_object_size(legs) == 0 && !json_is_number(json_object_get(v, "mean_mos")))
		return;
	const char *state = fhir_sfield(v, "state");
	gboolean over = state && (!strcmp(state, "ended") || !strcmp(state, "closed"));
	json_t *summary = json_pack("{s:O?, s:O?, s:O?, s:O?}", "mean_mos", json_object_get(v, "mean_mos"),
		"loss_pct", json_object_get(v, "loss_pct"), "freeze_s", json_object_get(v, "freeze_s"),
		"incidents", json_object_get(v, "incidents"));
	json_t *start = json_object_get(v, "admitted_at");
	if(!json_is_integer(start))
		start = json_object_get(v, "created_at");
	char *key = g_strdup_printf("visit/%s", fhir_sfield(v, "visit_id"));
	add_panel(c, key, "visit-quality", "Connection quality of the whole visit", summary, legs, NULL,
		over ? "final" : "preliminary", start, json_object_get(v, "ended_at"),
		json_object_get(v, "created_at"), NULL);
	g_free(key);
	json_decref(summary);
}
