/*
 * report_fhir.c — see report_fhir.h: the FHIR R4 Bundle of the research
 * export, built with jansson one visit at a time (docs/fhir.md).
 *
 * Here: the Questionnaires, the QuestionnaireResponses and the driver;
 * the Observations are in report_fhir_quality.c, the FHIR primitives in
 * report_fhir_json.c. Every text that reaches the bundle comes from the
 * store or an instrument file: FHIR strings must not be empty and codes
 * must not carry leading, trailing or double white space, so
 * fhir_string() and fhir_code() drop what does not fit instead of writing
 * an invalid resource.
 */
#include "report_fhir.h"
#include "report_fhir_json.h"
#include "report_fhir_quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXT_TRANSLATION "http://hl7.org/fhir/StructureDefinition/translation"
#define EXT_MIN "http://hl7.org/fhir/StructureDefinition/minValue"
#define EXT_MAX "http://hl7.org/fhir/StructureDefinition/maxValue"
#define EXT_ORDINAL "http://hl7.org/fhir/StructureDefinition/ordinalValue"
#define EXT_ITEM_CONTROL "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
#define EXT_SLIDER_STEP "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
#define ITEM_CONTROL "http://hl7.org/fhir/questionnaire-item-control"

gboolean report_fhir_base_ok(const char *base) {
	if(base == NULL)
		return FALSE;
	size_t n = strlen(base);
	if(n == 0 || n > REPORT_FHIR_BASE_MAX || base[n - 1] == '/')
		return FALSE;
	if(!g_str_has_prefix(base, "http://") && !g_str_has_prefix(base, "https://")
			&& !g_str_has_prefix(base, "urn:"))
		return FALSE;
	for(size_t i = 0; i < n; i++)
		if(base[i] <= ' ' || base[i] > '~' || base[i] == '|' || base[i] == '#')
			return FALSE;
	const char *rest = strchr(base, ':') + 1;
	if(g_str_has_prefix(base, "http"))
		rest += 2;
	return *rest != '\0';
}

/* --- Questionnaires ---------------------------------------------------------------------- */

/* `_text`-style element of translations: {"extension":[translation…]}, or
 * NULL when there is no other language with a text. */
static json_t *translations(const instrument *ins, json_t *const *texts, int n) {
	json_t *ext = json_array();
	for(int l = 1; l < n; l++) {
		json_t *content = fhir_string(json_string_value(texts[l]));
		json_t *lang = fhir_code(instrument_language(ins, l));
		if(content && lang)
			json_array_append_new(ext, json_pack("{s:s, s:[{s:s, s:o}, {s:s, s:o}]}", "url", EXT_TRANSLATION,
				"extension", "url", "lang", "valueCode", lang, "url", "content", "valueString", content));
		else {
			json_decref(content);
			json_decref(lang);
		}
	}
	if(json_array_size(ext) == 0) {
		json_decref(ext);
		return NULL;
	}
	return json_pack("{s:o}", "extension", ext);
}

/* A text and its translations into o[key] and o["_" key]; texts[l] the
 * text in language l (borrowed). */
static void put_text(json_t *o, const char *key, const instrument *ins, json_t *const *texts, int n) {
	json_t *t = fhir_string(json_string_value(texts[0]));
	if(t == NULL)
		return;
	json_object_set_new(o, key, t);
	json_t *tr = translations(ins, texts, n);
	if(tr) {
		char *k = g_strdup_printf("_%s", key);
		json_object_set_new(o, k, tr);
		g_free(k);
	}
}

static json_t *item_control(const char *code) {
	return json_pack("{s:s, s:{s:[{s:s, s:s}]}}", "url", EXT_ITEM_CONTROL, "valueCodeableConcept",
		"coding", "system", ITEM_CONTROL, "code", code);
}

/* The pulse JSON of every language: per[l] = instrument_pulse_json(lang l). */
static void item_texts(json_t *const *per, int n, int i, const char *path, const char *key,
		json_t **out) {
	for(int l = 0; l < n; l++) {
		json_t *it = json_array_get(json_object_get(per[l], "items"), (size_t)i);
		json_t *v = path ? json_object_get(json_object_get(it, path), key) : json_object_get(it, key);
		out[l] = v;
	}
}

/* A display child (SDC lower/upper label of a slider). */
static json_t *label_item(const instrument *ins, const char *link, const char *control,
		json_t *const *texts, int n) {
	json_t *o = json_pack("{s:[o], s:s, s:s}", "extension", item_control(control), "linkId", link,
		"type", "display");
	put_text(o, "text", ins, texts, n);
	if(json_object_get(o, "text") == NULL) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *q_item(const instrument *ins, json_t *const *per, int n, int i) {
	json_t *it0 = json_array_get(json_object_get(per[0], "items"), (size_t)i);
	json_t *scale = json_object_get(it0, "scale");
	const char *id = fhir_sfield(it0, "id");
	json_t *o = json_pack("{s:s}", "linkId", id ? id : "?");
	json_t *texts[INSTRUMENT_MAX_LANGUAGES];
	item_texts(per, n, i, NULL, "text", texts);
	put_text(o, "text", ins, texts, n);
	json_object_set_new(o, "required", json_true());
	double min = json_number_value(json_object_get(scale, "min"));
	double max = json_number_value(json_object_get(scale, "max"));
	json_t *ext = json_array();
	const char *type = fhir_sfield(scale, "type");
	if(type && !strcmp(type, "likert")) {
		json_object_set_new(o, "type", json_string("choice"));
		json_array_append_new(ext, item_control("radio-button"));
		json_t *opts = json_array();
		for(int v = (int)min; v <= (int)max; v++) {
			char code[16];
			g_snprintf(code, sizeof(code), "%d", v);
			json_t *labels[INSTRUMENT_MAX_LANGUAGES];
			for(int l = 0; l < n; l++)
				labels[l] = json_array_get(json_object_get(json_object_get(json_array_get(
					json_object_get(per[l], "items"), (size_t)i), "scale"), "labels"), (size_t)(v - (int)min));
			json_t *c = json_pack("{s:[{s:s, s:f}], s:s, s:s}", "extension", "url", EXT_ORDINAL,
				"valueDecimal", (double)v, "system", REPORT_FHIR_SCALE, "code", code);
			put_text(c, "display", ins, labels, n);
			json_array_append_new(opts, json_pack("{s:o}", "valueCoding", c));
		}
		json_object_set_new(o, "answerOption", opts);
	} else {
		/* a visual-analogue scale: a decimal slider min..max */
		json_object_set_new(o, "type", json_string("decimal"));
		json_array_append_new(ext, item_control("slider"));
		json_array_append_new(ext, json_pack("{s:s, s:f}", "url", EXT_MIN, "valueDecimal", min));
		json_array_append_new(ext, json_pack("{s:s, s:f}", "url", EXT_MAX, "valueDecimal", max));
		double step = json_number_value(json_object_get(scale, "step"));
		if(step >= 1 && step == floor(step) && step < 1e9)   /* R4's step is an integer */
			json_array_append_new(ext, json_pack("{s:s, s:i}", "url", EXT_SLIDER_STEP, "valueInteger", (int)step));
		json_t *children = json_array();
		const char *keys[2] = { "min_label", "max_label" }, *controls[2] = { "lower", "upper" };
		for(int k = 0; k < 2; k++) {
			item_texts(per, n, i, "scale", keys[k], texts);
			char *link = g_strdup_printf("%s.%s", id ? id : "?", controls[k]);
			json_t *c = label_item(ins, link, controls[k], texts, n);
			g_free(link);
			if(c)
				json_array_append_new(children, c);
		}
		if(json_array_size(children))
			json_object_set_new(o, "item", children);
		else
			json_decref(children);
	}
	/* extension first, as FHIR's own examples print it */
	json_t *r = json_pack("{s:o}", "extension", ext);
	json_object_update(r, o);
	json_decref(o);
	return r;
}

static char *canonical(const char *base, const char *id) {
	return g_strdup_printf("%s/Questionnaire/%s", base, id);
}

static json_t *q_head(const char *base, const char *id, const char *version, const char *status) {
	char *url = canonical(base, id);
	json_t *q = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s}", "resourceType", "Questionnaire",
		"url", url, "identifier", "system", REPORT_FHIR_NS "/sid/instrument", "value", id,
		"version", version);
	g_free(url);
	json_object_set_new(q, "status", json_string(status));
	return q;
}

json_t *report_fhir_questionnaire(const instrument *ins, const char *base) {
	int n = instrument_language_count(ins);
	json_t *per[INSTRUMENT_MAX_LANGUAGES];
	for(int l = 0; l < n; l++)
		per[l] = instrument_pulse_json(ins, instrument_language(ins, l), NULL);
	json_t *q = q_head(base ? base : REPORT_FHIR_NS, instrument_id(ins), instrument_version(ins), "active");
	json_t *lang = fhir_code(instrument_default_language(ins));
	if(lang && strcmp(instrument_default_language(ins), "und"))
		json_object_set_new(q, "language", lang);
	else
		json_decref(lang);
	json_t *titles[INSTRUMENT_MAX_LANGUAGES];
	for(int l = 0; l < n; l++)
		titles[l] = json_object_get(per[l], "title");
	put_text(q, "title", ins, titles, n);
	char *desc = g_strdup_printf("Alliance Pulse instrument %s, kind %s%s.", instrument_id(ins),
		instrument_kind(ins), instrument_validated(ins) ? "" : "; not a validated instrument");
	json_object_set_new(q, "description", json_string(desc));
	g_free(desc);
	json_object_set_new(q, "subjectType", json_pack("[s]", "Patient"));
	json_t *items = json_array();
	for(int i = 0; i < instrument_item_count(ins); i++)
		json_array_append_new(items, q_item(ins, per, n, i));
	json_object_set_new(q, "item", items);
	for(int l = 0; l < n; l++)
		json_decref(per[l]);
	return q;
}

/* A version not loaded: what its answers show (item ids, numbers). */
static json_t *q_as_seen(const char *key, GHashTable *items, const char *base) {
	const char *bar = strchr(key, '|');
	char *id = g_strndup(key, (gsize)(bar - key));
	json_t *q = q_head(base, id, bar + 1, "unknown");
	char *desc = g_strdup_printf("Alliance Pulse instrument %s version %s, whose definition was not "
		"loaded by this export: its items as the answers show them.", id, bar + 1);
	json_object_set_new(q, "description", json_string(desc));
	g_free(desc);
	g_free(id);
	json_object_set_new(q, "subjectType", json_pack("[s]", "Patient"));
	GList *keys = g_list_sort(g_hash_table_get_keys(items), (GCompareFunc)strcmp);
	json_t *arr = json_array();
	for(GList *k = keys; k; k = k->next)
		json_array_append_new(arr, json_pack("{s:s, s:s}", "linkId", (char *)k->data, "type", "decimal"));
	g_list_free(keys);
	if(json_array_size(arr))
		json_object_set_new(q, "item", arr);
	else
		json_decref(arr);
	return q;
}

/* --- QuestionnaireResponses -------------------------------------------------------------- */

/* The loaded definition of this exact version, or NULL. */
static const instrument *loaded(const instrument_set *set, const char *id, const char *version) {
	const instrument *ins = set && id ? instrument_set_get(set, id) : NULL;
	return ins && version && !strcmp(instrument_version(ins), version) ? ins : NULL;
}

/* The label of a Likert value in lang (borrowed from pulse, which the
 * caller frees), or NULL. */
static const char *likert_label(json_t *pulse, int i, int v) {
	json_t *scale = json_object_get(json_array_get(json_object_get(pulse, "items"), (size_t)i), "scale");
	return json_string_value(json_array_get(json_object_get(scale, "labels"),
		(size_t)(v - json_integer_value(json_object_get(scale, "min")))));
}

static json_t *answer_value(const instrument *ins, json_t *pulse, const char *item, double value) {
	int i = ins ? instrument_item_index(ins, item) : -1;
	json_t *scale = i >= 0 ? json_object_get(json_array_get(json_object_get(pulse, "items"), (size_t)i), "scale") : NULL;
	const char *type = fhir_sfield(scale, "type");
	if(type && !strcmp(type, "likert") && value == floor(value) && fabs(value) < 1e6) {
		char code[16];
		g_snprintf(code, sizeof(code), "%d", (int)value);
		return json_pack("{s:o}", "valueCoding", fhir_coding(REPORT_FHIR_SCALE, code, likert_label(pulse, i, (int)value)));
	}
	return json_pack("{s:f}", "valueDecimal", value);
}

static int cmp_item(const void *a, const void *b, void *user) {
	const instrument *ins = user;
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int ix = ins ? instrument_item_index(ins, x) : -1, iy = ins ? instrument_item_index(ins, y) : -1;
	if(ix != iy)
		return ix < 0 ? 1 : iy < 0 ? -1 : ix - iy;
	return strcmp(x, y);
}

/* "in-progress" while the pulse is open, "completed" for a final answer,
 * "stopped" for items left by a pulse that expired or was declined. */
static const char *qr_status(const json_t *pulse, const json_t *answer) {
	if(fhir_truthy(json_object_get(answer, "final")))
		return "completed";
	const char *st = fhir_sfield(pulse, "status");
	return st && (!strcmp(st, "partial") || !strcmp(st, "delivered") || !strcmp(st, "pending"))
		? "in-progress" : "stopped";
}

static json_t *qr_of(const json_t *vis, const json_t *pulse, const instrument_set *set,
		const char *base, GHashTable *versions) {
	json_t *answer = json_object_get(pulse, "answer");
	json_t *items = json_object_get(answer, "items");
	if(!json_is_object(answer) || !fhir_truthy(json_object_get(answer, "research_consent"))
			|| !json_is_object(items) || json_object_size(items) == 0)
		return NULL;
	const char *ins_id = fhir_sfield(pulse, "instrument_id"), *version = fhir_sfield(pulse, "instrument_version");
	const char *pulse_id = fhir_sfield(pulse, "pulse_id"), *role = fhir_sfield(pulse, "role");
	json_t *subject = fhir_logical_ref("Patient", base, "client-code", fhir_sfield(vis, "client_code"));
	if(!fhir_uri_part_ok(ins_id) || !fhir_uri_part_ok(version) || !fhir_uri_part_ok(pulse_id) || subject == NULL) {
		json_decref(subject);
		return NULL;
	}
	gboolean therapist = role && !strcmp(role, "therapist");
	const instrument *ins = loaded(set, ins_id, version);
	json_t *lang = fhir_code(fhir_sfield(pulse, "language"));
	json_t *shown = ins ? instrument_pulse_json(ins, json_string_value(lang), NULL) : NULL;
	char *q = canonical(base, ins_id);
	char *qv = g_strdup_printf("%s|%s", q, version);
	json_t *r = json_pack("{s:s}", "resourceType", "QuestionnaireResponse");
	if(lang)
		json_object_set_new(r, "language", lang);
	char *sid = g_strdup_printf("%s/sid/pulse-id", base);
	json_object_set_new(r, "identifier", json_pack("{s:s, s:s}", "system", sid, "value", pulse_id));
	g_free(sid);
	json_object_set_new(r, "questionnaire", json_string(qv));
	json_object_set_new(r, "status", json_string(qr_status(pulse, answer)));
	json_object_set_new(r, "subject", subject);
	fhir_set_opt(r, "encounter", fhir_logical_ref("Encounter", base, "visit-id", fhir_sfield(vis, "visit_id")));
	fhir_set_opt(r, "authored", fhir_iso(json_object_get(answer, "answered_at")));
	json_t *author = therapist ? fhir_logical_ref("Practitioner", base, "therapist-code", fhir_sfield(vis, "therapist_code"))
		: json_deep_copy(subject);
	if(author) {
		json_object_set_new(r, "author", json_deep_copy(author));
		json_object_set_new(r, "source", author);
	}
	/* items in the definition's order, unknown ones after them by id */
	GPtrArray *ids = g_ptr_array_new();
	const char *k;
	json_t *v;
	json_object_foreach(items, k, v)
		if(json_is_number(v) && fhir_string_ok(k) && isfinite(json_number_value(v)))
			g_ptr_array_add(ids, (gpointer)k);
	g_ptr_array_sort_with_data(ids, cmp_item, (gpointer)ins);
	json_t *arr = json_array();
	GHashTable *seen = NULL;
	if(versions && ins == NULL) {
		char *key = g_strdup_printf("%s|%s", ins_id, version);
		seen = g_hash_table_lookup(versions, key);
		if(seen == NULL) {
			seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			g_hash_table_insert(versions, key, seen);
		} else {
			g_free(key);
		}
	}
	for(guint i = 0; i < ids->len; i++) {
		const char *item = ids->pdata[i];
		double value = json_number_value(json_object_get(items, item));
		json_array_append_new(arr, json_pack("{s:s, s:[o]}", "linkId", item, "answer",
			answer_value(ins, shown, item, value)));
		if(seen && g_hash_table_size(seen) < INSTRUMENT_MAX_ITEMS * 4 && !g_hash_table_contains(seen, item))
			g_hash_table_add(seen, g_strdup(item));
	}
	g_ptr_array_free(ids, TRUE);
	if(json_array_size(arr))
		json_object_set_new(r, "item", arr);
	else
		json_decref(arr);
	json_decref(shown);
	g_free(q);
	g_free(qv);
	return r;
}
int report_fhir_visit_entries(const json_t *row, const instrument_set *set, const char *base,
		GHashTable *versions, json_t *entries) {
	if(base == NULL)
		base = REPORT_FHIR_NS;
	fhir_obs c = { json_object_get(row, "visit"), base, entries, 0 };
	if(!json_is_object(c.visit) || !fhir_uri_part_ok(fhir_sfield(c.visit, "visit_id"))
			|| !fhir_string_ok(fhir_sfield(c.visit, "client_code")))
		return 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(row, "pulses"), i, p) {
		json_t *qr = qr_of(c.visit, p, set, base, versions);
		if(qr == NULL)
			continue;
		const char *pulse_id = fhir_sfield(p, "pulse_id");
		json_t *e = fhir_entry(qr, pulse_id);
		char *focus = g_strdup(fhir_full_url(e));
		fhir_obs_add(&c, e);
		fhir_quality_pulse(&c, pulse_id, json_object_get(p, "quality"), json_object_get(p, "created_at"), focus);
		g_free(focus);
	}
	fhir_quality_visit(&c, row);
	return c.added;
}

/* --- the export ------------------------------------------------------------------------ */

typedef struct fhir_ctx {
	FILE *out;
	gint64 written;
	gboolean failed;
	report_progress_cb progress;
	gint64 every;
	void *user;
} fhir_ctx;

static void write_entries(fhir_ctx *x, json_t *entries) {
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e) {
		char *t = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		if(t == NULL || fprintf(x->out, "%s\n%s", x->written ? "," : ",\"entry\":[", t) < 0)
			x->failed = TRUE;
		free(t);
		x->written++;
		if(x->progress && x->every > 0 && x->written % x->every == 0)
			x->progress(x->written, FALSE, x->user);
	}
	json_array_clear(entries);
}

/* The visit list read: row and done get the same user pointer. */
typedef struct id_list {
	GPtrArray *ids;
	store_rc rc;
} id_list;

static int collect_id(const json_t *row, void *user) {
	id_list *l = user;
	const char *id = fhir_sfield(row, "visit_id");
	if(id)
		g_ptr_array_add(l->ids, g_strdup(id));
	return 0;
}

static void read_done(store_rc rc, const char *error, void *user) {
	((id_list *)user)->rc = rc;
}

gint64 report_fhir_export(store *st, const proto_report_filters *f,
		const instrument_set *instruments, const char *base, FILE *out,
		report_progress_cb progress, gint64 every, void *user, proto_error *err) {
	if(base == NULL)
		base = REPORT_FHIR_NS;
	if(!report_fhir_base_ok(base))
		return proto_fail(err, PROTO_ERR_INTERNAL, "The FHIR base is not a usable URL");
	store_report_filter sf;
	report_store_filter(PROTO_REPORT_VISITS, f, &sf);
	sf.research_only = TRUE;               /* research exports: consented visits only */
	sf.limit = 0;
	/* the visit ids first (one short string each), then one visit at a time */
	id_list list = { g_ptr_array_new_with_free_func(g_free), STORE_ERR };
	GPtrArray *ids = list.ids;
	/* the callbacks run on the store's thread; store_sync() orders them
	 * before the reads of list below */
	if(store_report_rows(st, STORE_READ_VISITS, &sf, collect_id, read_done, &list) < 0
			|| store_sync(st) < 0 || list.rc != STORE_OK) {
		g_ptr_array_free(ids, TRUE);
		return proto_fail(err, PROTO_ERR_STORE, "The visits read of the FHIR export failed (%s)",
			store_rc_name(list.rc));
	}
	fhir_ctx x = { out, 0, FALSE, progress, every, user };
	/* FHIR JSON has no empty arrays: "entry" opens with the first one */
	fputs("{\"resourceType\":\"Bundle\",\"type\":\"collection\"", out);
	GHashTable *versions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
		(GDestroyNotify)g_hash_table_destroy);
	json_t *entries = json_array();
	int failed = 0;
	for(guint i = 0; i < ids->len && !x.failed; i++) {
		store_report_filter one = sf;
		one.visit_id = ids->pdata[i];
		proto_error perr;
		json_t *rows = report_fetch(st, STORE_READ_VISIT, &one, 0, &perr);
		if(rows == NULL) {
			if(perr.code == PROTO_ERR_NO_SUCH_VISIT)
				continue;                            /* erased since the list was read */
			failed = 1;
			break;
		}
		report_fhir_visit_entries(json_array_get(rows, 0), instruments, base, versions, entries);
		json_decref(rows);
		write_entries(&x, entries);
	}
	/* the Questionnaires: every loaded definition, then the versions the
	 * answers used that were not loaded, by id|version */
	for(int i = 0; instruments && i < instrument_set_count(instruments) && !failed; i++) {
		const instrument *ins = instrument_set_nth(instruments, i);
		char *key = g_strdup_printf("%s|%s", instrument_id(ins), instrument_version(ins));
		json_array_append_new(entries, fhir_entry(report_fhir_questionnaire(ins, base), key));
		g_free(key);
	}
	GList *keys = g_list_sort(g_hash_table_get_keys(versions), (GCompareFunc)strcmp);
	for(GList *k = keys; k && !failed; k = k->next)
		json_array_append_new(entries, fhir_entry(q_as_seen(k->data, g_hash_table_lookup(versions, k->data), base),
			k->data));
	g_list_free(keys);
	write_entries(&x, entries);
	json_decref(entries);
	g_hash_table_destroy(versions);
	g_ptr_array_free(ids, TRUE);
	fputs(x.written ? "\n]}\n" : "}\n", out);
	if(progress)
		progress(x.written, TRUE, user);
	if(failed)
		return proto_fail(err, PROTO_ERR_STORE, "A visit read of the FHIR export failed");
	if(x.failed || fflush(out) != 0 || ferror(out))
		return proto_fail(err, PROTO_ERR_INTERNAL, "Could not write the FHIR export");
	return x.written;
}
