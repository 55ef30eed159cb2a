/*
 * report_fhir.c — see report_fhir.h: the FHIR R4 Bundle of the research
 * export, built with jansson one visit at a time (docs/fhir.md).
 *
 * Every text that reaches the bundle comes from the store or an
 * instrument file: FHIR strings must not be empty and codes must not
 * carry leading, trailing or double white space, so fhir_string() and
 * fhir_code() drop what does not fit instead of writing an invalid
 * resource.
 */
#include "report_fhir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UCUM "http://unitsofmeasure.org"
#define EXT_TRANSLATION "http://hl7.org/fhir/StructureDefinition/translation"
#define EXT_MIN "http://hl7.org/fhir/StructureDefinition/minValue"
#define EXT_MAX "http://hl7.org/fhir/StructureDefinition/maxValue"
#define EXT_ORDINAL "http://hl7.org/fhir/StructureDefinition/ordinalValue"
#define EXT_ITEM_CONTROL "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
#define EXT_SLIDER_STEP "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
#define ITEM_CONTROL "http://hl7.org/fhir/questionnaire-item-control"

/* The namespace of the resource ids (a random UUID, fixed for good). */
static const guint8 NAMESPACE[16] = { 0x6f, 0x1d, 0x3a, 0x52, 0x8c, 0x4e, 0x4b, 0x09,
	0x9a, 0x7e, 0x2f, 0x51, 0xc3, 0xd8, 0x06, 0xb4 };

static const char *sfield(const json_t *o, const char *key) {
	return json_string_value(json_object_get(o, key));
}

const char *report_fhir_uuid(const char *name, char *buf, size_t len) {
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(c, NAMESPACE, sizeof(NAMESPACE));
	g_checksum_update(c, (const guchar *)name, (gssize)strlen(name));
	guint8 d[20];
	gsize n = sizeof(d);
	g_checksum_get_digest(c, d, &n);
	g_checksum_free(c);
	d[6] = (guint8)((d[6] & 0x0f) | 0x50);   /* version 5 */
	d[8] = (guint8)((d[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	g_snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13],
		d[14], d[15]);
	return buf;
}

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

/* A FHIR string ([ \r\n\t\S]+: not empty, nothing but white space is
 * allowed as long as it is not all of it; valid UTF-8), else NULL. */
static json_t *fhir_string(const char *s) {
	if(s == NULL || !g_utf8_validate(s, -1, NULL))
		return NULL;
	for(const char *p = s; *p; p++)
		if(!g_ascii_isspace(*p))
			return json_string(s);
	return NULL;
}

static gboolean string_ok(const char *s) {
	json_t *v = fhir_string(s);
	json_decref(v);
	return v != NULL;
}

/* A part of a canonical URL or an id name: printable ASCII without
 * spaces, '|' or '#' (instrument ids and versions, pulse and visit ids
 * are like that when the plugin wrote them; another writer's are not
 * trusted). */
static gboolean uri_part_ok(const char *s) {
	if(s == NULL || !*s || strlen(s) > 256)
		return FALSE;
	for(const char *p = s; *p; p++)
		if(*p <= ' ' || *p > '~' || *p == '|' || *p == '#')
			return FALSE;
	return TRUE;
}

/* A FHIR code ([^\s]+(\s[^\s]+)*), else NULL. */
static json_t *fhir_code(const char *s) {
	if(s == NULL || !*s || !g_utf8_validate(s, -1, NULL) || g_ascii_isspace(s[0]))
		return NULL;
	size_t n = strlen(s);
	if(g_ascii_isspace(s[n - 1]))
		return NULL;
	for(size_t i = 1; i < n; i++)
		if(g_ascii_isspace(s[i]) && (s[i] != ' ' || g_ascii_isspace(s[i - 1])))
			return NULL;
	return json_string(s);
}

static void set_opt(json_t *o, const char *key, json_t *v) {
	if(v)
		json_object_set_new(o, key, v);
}

static json_t *iso(json_t *us) {
	if(!json_is_integer(us))
		return NULL;
	char buf[40];
	return json_string(report_iso_time(json_integer_value(us), buf, sizeof(buf)));
}

static char *entry_url(const char *type, const char *key, char *id, size_t len) {
	char *name = g_strdup_printf("%s/%s", type, key);
	report_fhir_uuid(name, id, len);
	g_free(name);
	return id;
}

/* {fullUrl, resource} with the resource's id set from its name. */
static json_t *entry(json_t *resource, const char *name_key) {
	char id[40];
	entry_url(sfield(resource, "resourceType"), name_key, id, sizeof(id));
	json_t *o = json_object();
	char *url = g_strdup_printf("urn:uuid:%s", id);
	json_object_set_new(o, "fullUrl", json_string(url));
	g_free(url);
	/* id first, for readers */
	json_t *r = json_pack("{s:O, s:s}", "resourceType", json_object_get(resource, "resourceType"), "id", id);
	json_object_update(r, resource);
	json_decref(resource);
	json_object_set_new(o, "resource", r);
	return o;
}

static const char *full_url(const json_t *e) {
	return sfield(e, "fullUrl");
}

/* A logical reference: {type, identifier:{system, value}} (no resource). */
static json_t *logical_ref(const char *type, const char *base, const char *sid, const char *value) {
	json_t *v = fhir_string(value);
	if(v == NULL)
		return NULL;
	char *system = g_strdup_printf("%s/sid/%s", base, sid);
	json_t *r = json_object();
	if(type)
		json_object_set_new(r, "type", json_string(type));
	json_object_set_new(r, "identifier", json_pack("{s:s, s:o}", "system", system, "value", v));
	g_free(system);
	return r;
}

static json_t *coding(const char *system, const char *code, const char *display) {
	json_t *c = fhir_code(code);
	if(c == NULL)
		return NULL;
	json_t *o = json_pack("{s:s, s:o}", "system", system, "code", c);
	set_opt(o, "display", fhir_string(display));
	return o;
}

static json_t *concept(const char *system, const char *code, const char *display) {
	json_t *c = coding(system, code, display);
	return c ? json_pack("{s:[o]}", "coding", c) : NULL;
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
	const char *id = sfield(it0, "id");
	json_t *o = json_pack("{s:s}", "linkId", id ? id : "?");
	json_t *texts[INSTRUMENT_MAX_LANGUAGES];
	item_texts(per, n, i, NULL, "text", texts);
	put_text(o, "text", ins, texts, n);
	json_object_set_new(o, "required", json_true());
	double min = json_number_value(json_object_get(scale, "min"));
	double max = json_number_value(json_object_get(scale, "max"));
	json_t *ext = json_array();
	const char *type = sfield(scale, "type");
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

static gboolean truthy(const json_t *v) {
	return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0);
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
	const char *type = sfield(scale, "type");
	if(type && !strcmp(type, "likert") && value == floor(value) && fabs(value) < 1e6) {
		char code[16];
		g_snprintf(code, sizeof(code), "%d", (int)value);
		return json_pack("{s:o}", "valueCoding", coding(REPORT_FHIR_SCALE, code, likert_label(pulse, i, (int)value)));
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
	if(truthy(json_object_get(answer, "final")))
		return "completed";
	const char *st = sfield(pulse, "status");
	return st && (!strcmp(st, "partial") || !strcmp(st, "delivered") || !strcmp(st, "pending"))
		? "in-progress" : "stopped";
}

static json_t *qr_of(const json_t *vis, const json_t *pulse, const instrument_set *set,
		const char *base, GHashTable *versions) {
	json_t *answer = json_object_get(pulse, "answer");
	json_t *items = json_object_get(answer, "items");
	if(!json_is_object(answer) || !truthy(json_object_get(answer, "research_consent"))
			|| !json_is_object(items) || json_object_size(items) == 0)
		return NULL;
	const char *ins_id = sfield(pulse, "instrument_id"), *version = sfield(pulse, "instrument_version");
	const char *pulse_id = sfield(pulse, "pulse_id"), *role = sfield(pulse, "role");
	json_t *subject = logical_ref("Patient", base, "client-code", sfield(vis, "client_code"));
	if(!uri_part_ok(ins_id) || !uri_part_ok(version) || !uri_part_ok(pulse_id) || subject == NULL) {
		json_decref(subject);
		return NULL;
	}
	gboolean therapist = role && !strcmp(role, "therapist");
	const instrument *ins = loaded(set, ins_id, version);
	json_t *lang = fhir_code(sfield(pulse, "language"));
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
	set_opt(r, "encounter", logical_ref("Encounter", base, "visit-id", sfield(vis, "visit_id")));
	set_opt(r, "authored", iso(json_object_get(answer, "answered_at")));
	json_t *author = therapist ? logical_ref("Practitioner", base, "therapist-code", sfield(vis, "therapist_code"))
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
		if(json_is_number(v) && string_ok(k) && isfinite(json_number_value(v)))
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

/* --- Observations ------------------------------------------------------------------------ */

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
	return concept(REPORT_FHIR_CODES, code, display);
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
		json_object_set_new(q, "system", json_string(UCUM));
		json_object_set_new(q, "code", json_string(m->ucum));
	} else {
		json_object_set_new(q, "system", json_string(UCUM));
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
	if((cc = concept(REPORT_FHIR_CODES, sfield(src, "class"), NULL)))
		json_array_append_new(comps, component("class", "Call quality class", "valueCodeableConcept", cc));
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(src, "poor_reasons"), i, r)
		if((cc = concept(REPORT_FHIR_CODES, json_string_value(r), NULL)))
			json_array_append_new(comps, component("poor-reason", "Threshold crossed", "valueCodeableConcept", cc));
	if((cc = concept(REPORT_FHIR_CODES, sfield(src, "badge"), NULL)))
		json_array_append_new(comps, component("badge", "Quality badge shown", "valueCodeableConcept", cc));
	if(json_is_boolean(json_object_get(src, "complete")))
		json_array_append_new(comps, component("complete", "Both round trips known", "valueBoolean",
			json_boolean(json_is_true(json_object_get(src, "complete")))));
	return n;
}

typedef struct obs_ctx {
	const json_t *visit;
	const char *base;
	json_t *entries;
	int added;
} obs_ctx;

static json_t *obs_new(obs_ctx *c, const char *code, const char *display, const char *status) {
	json_t *o = json_pack("{s:s, s:s, s:o}", "resourceType", "Observation", "status", status,
		"code", code_of(code, display));
	set_opt(o, "subject", logical_ref("Patient", c->base, "client-code", sfield(c->visit, "client_code")));
	set_opt(o, "encounter", logical_ref("Encounter", c->base, "visit-id", sfield(c->visit, "visit_id")));
	return o;
}

static void add_entry(obs_ctx *c, json_t *e) {
	json_array_append_new(c->entries, e);
	c->added++;
}

static void set_effective(json_t *o, json_t *start, json_t *end, json_t *at) {
	json_t *s = iso(start), *e = iso(end);
	if(s || e) {
		json_t *p = json_object();
		set_opt(p, "start", s);
		set_opt(p, "end", e);
		json_object_set_new(o, "effectivePeriod", p);
	} else {
		set_opt(o, "effectiveDateTime", iso(at));
	}
}

/* One member per leg and medium of legs ({leg:{medium:{…}}}) and per path
 * of paths ({path:{…}}), added to the entries and referenced from
 * members; key names them. */
static void add_members(obs_ctx *c, const char *key, const json_t *legs, const json_t *paths,
		const char *status, json_t *start, json_t *end, json_t *at, json_t *members) {
	const char *leg, *medium;
	json_t *media, *m;
	json_object_foreach((json_t *)legs, leg, media) {
		json_object_foreach(media, medium, m) {
			json_t *comps = json_array();
			json_t *lc = concept(REPORT_FHIR_CODES, leg, NULL), *mc = concept(REPORT_FHIR_CODES, medium, NULL);
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
			json_t *e = entry(o, name);
			g_free(name);
			json_array_append_new(members, json_pack("{s:s}", "reference", full_url(e)));
			add_entry(c, e);
		}
	}
	const char *path;
	json_object_foreach((json_t *)paths, path, m) {
		json_t *comps = json_array();
		json_t *pc = concept(REPORT_FHIR_CODES, path, NULL);
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
		json_t *e = entry(o, name);
		g_free(name);
		json_array_append_new(members, json_pack("{s:s}", "reference", full_url(e)));
		add_entry(c, e);
	}
}

/* The panel of a quality context (a pulse's: focus = its response) or of
 * the whole visit (focus NULL); nothing when nothing was measured. */
static void add_panel(obs_ctx *c, const char *key, const char *code, const char *display,
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
	add_entry(c, entry(o, key));
}

int report_fhir_visit_entries(const json_t *row, const instrument_set *set, const char *base,
		GHashTable *versions, json_t *entries) {
	if(base == NULL)
		base = REPORT_FHIR_NS;
	obs_ctx c = { json_object_get(row, "visit"), base, entries, 0 };
	if(!json_is_object(c.visit) || !uri_part_ok(sfield(c.visit, "visit_id")) || !string_ok(sfield(c.visit, "client_code")))
		return 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(row, "pulses"), i, p) {
		json_t *qr = qr_of(c.visit, p, set, base, versions);
		if(qr == NULL)
			continue;
		const char *pulse_id = sfield(p, "pulse_id");
		json_t *e = entry(qr, pulse_id);
		char *focus = g_strdup(full_url(e));
		add_entry(&c, e);
		json_t *q = json_object_get(p, "quality");
		if(json_is_object(q)) {
			char *key = g_strdup_printf("pulse/%s", pulse_id);
			add_panel(&c, key, "quality-context", "Connection quality before the pulse", q,
				json_object_get(q, "legs"), json_object_get(q, "paths"), "final", NULL, NULL,
				json_object_get(p, "created_at"), focus);
			g_free(key);
		}
		g_free(focus);
	}
	const char *state = sfield(c.visit, "state");
	gboolean over = state && (!strcmp(state, "ended") || !strcmp(state, "closed"));
	char *key = g_strdup_printf("visit/%s", sfield(c.visit, "visit_id"));
	json_t *summary = json_pack("{s:O?, s:O?, s:O?, s:O?}", "mean_mos", json_object_get(c.visit, "mean_mos"),
		"loss_pct", json_object_get(c.visit, "loss_pct"), "freeze_s", json_object_get(c.visit, "freeze_s"),
		"incidents", json_object_get(c.visit, "incidents"));
	json_t *legs = json_object_get(row, "legs");
	/* an in-person visit has no connection: no panel of zero incidents */
	if(json_object_size(legs) || json_is_number(json_object_get(c.visit, "mean_mos")))
		add_panel(&c, key, "visit-quality", "Connection quality of the whole visit", summary, legs, NULL,
			over ? "final" : "preliminary", json_object_get(c.visit, "admitted_at") ?
			json_object_get(c.visit, "admitted_at") : json_object_get(c.visit, "created_at"),
			json_object_get(c.visit, "ended_at"), json_object_get(c.visit, "created_at"), NULL);
	json_decref(summary);
	g_free(key);
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
	const char *id = sfield(row, "visit_id");
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
		json_array_append_new(entries, entry(report_fhir_questionnaire(ins, base), key));
		g_free(key);
	}
	GList *keys = g_list_sort(g_hash_table_get_keys(versions), (GCompareFunc)strcmp);
	for(GList *k = keys; k && !failed; k = k->next)
		json_array_append_new(entries, entry(q_as_seen(k->data, g_hash_table_lookup(versions, k->data), base),
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
