/*
 * store_rows.c — see store_rows.h. Pure JSON work: no database here.
 */
#include "store_rows.h"

#include <string.h>

json_t *store_rows_parsed(const char *text) {
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	if(j != NULL && (json_is_object(j) || json_is_array(j)))
		return j;
	json_decref(j);
	return json_null();
}

void store_rows_set(json_t *row, const char *column, json_t *v) {
	if(!g_str_has_suffix(column, "_json")) {
		json_object_set_new(row, column, v);
		return;
	}
	char key[64];
	size_t len = strlen(column) - strlen("_json");
	if(len >= sizeof(key))
		len = sizeof(key) - 1;
	memcpy(key, column, len);
	key[len] = '\0';
	json_object_set_new(row, key, v);
}

void store_rows_to_bool(json_t *o, const char *key) {
	json_t *v = json_object_get(o, key);
	if(json_is_integer(v))
		json_object_set_new(o, key, json_boolean(json_integer_value(v) != 0));
}

void store_rows_flags(json_t *row, store_report_what what) {
	if(what == STORE_READ_VISITS) {
		store_rows_to_bool(row, "research_consent");
	} else if(what == STORE_READ_ANSWERS) {
		store_rows_to_bool(row, "visit_research_consent");
		store_rows_to_bool(row, "answer_research_consent");
		store_rows_to_bool(row, "final");
		store_rows_to_bool(row, "dismissed");
	}
}

/* Each pulse row's answer columns moved into an "answer" object (null
 * without an answer); the answers by pulse id in answers. */
static void nest_answers(json_t *pulses, GHashTable *answers) {
	size_t i;
	json_t *row;
	json_array_foreach(pulses, i, row) {
		gboolean has = json_is_true(json_object_get(row, "has_answer"))
			|| json_integer_value(json_object_get(row, "has_answer")) != 0;
		json_t *answer = json_null();
		if(has) {
			answer = json_object();
			static const char *const moved[] = { "final", "dismissed", "first_at",
				"answered_at", "time_to_answer_ms", "research_consent" };
			for(size_t k = 0; k < G_N_ELEMENTS(moved); k++) {
				json_t *v = json_object_get(row, moved[k]);
				json_object_set(answer, moved[k], v ? v : json_null());
			}
			store_rows_to_bool(answer, "final");
			store_rows_to_bool(answer, "dismissed");
			store_rows_to_bool(answer, "research_consent");
			json_object_set_new(answer, "items", json_object());
			json_object_set_new(answer, "scores", json_object());
			g_hash_table_insert(answers, (gpointer)json_string_value(json_object_get(row, "pulse_id")), answer);
		}
		static const char *const dropped[] = { "has_answer", "final", "dismissed", "first_at",
			"answered_at", "time_to_answer_ms", "research_consent" };
		for(size_t k = 0; k < G_N_ELEMENTS(dropped); k++)
			json_object_del(row, dropped[k]);
		json_object_set_new(row, "answer", answer);
	}
}

json_t *store_rows_visit(json_t *visit, json_t *participants, json_t *pulses,
		json_t *items, json_t *scores, json_t *alerts, json_t *incidents,
		json_t *legs_rows, json_t *events) {
	size_t i;
	json_t *row;
	store_rows_to_bool(visit, "research_consent");
	json_array_foreach(participants, i, row)
		store_rows_to_bool(row, "research_consent");
	/* answers (items and scores by pulse) inside their pulses */
	GHashTable *answers = g_hash_table_new(g_str_hash, g_str_equal);
	nest_answers(pulses, answers);
	json_t *lists[2] = { items, scores };
	const char *keys[2] = { "item_id", "name" };
	const char *into[2] = { "items", "scores" };
	for(int l = 0; l < 2; l++)
		json_array_foreach(lists[l], i, row) {
			json_t *a = g_hash_table_lookup(answers, json_string_value(json_object_get(row, "pulse_id")));
			if(a)
				json_object_set(json_object_get(a, into[l]),
					json_string_value(json_object_get(row, keys[l])), json_object_get(row, "value"));
		}
	g_hash_table_destroy(answers);
	/* per-leg summaries keyed by leg, then medium */
	json_t *legs = json_object();
	json_array_foreach(legs_rows, i, row) {
		const char *leg = json_string_value(json_object_get(row, "leg"));
		const char *medium = json_string_value(json_object_get(row, "medium"));
		if(leg == NULL || medium == NULL)
			continue;
		json_t *l = json_object_get(legs, leg);
		if(l == NULL) {
			l = json_object();
			json_object_set_new(legs, leg, l);
		}
		json_t *copy = json_copy(row);
		json_object_del(copy, "leg");
		json_object_del(copy, "medium");
		json_object_set_new(l, medium, copy);
	}
	json_decref(items);
	json_decref(scores);
	json_decref(legs_rows);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "visit", visit,
		"participants", participants, "pulses", pulses, "alerts", alerts,
		"incidents", incidents, "legs", legs, "events", events);
}

void store_rows_erased(json_t *detail, json_t *tables, gint64 rows, gint64 visits) {
	json_object_set_new(detail, "rows", json_integer((json_int_t)rows));
	json_object_set_new(detail, "visits", json_integer((json_int_t)visits));
	json_object_set_new(detail, "tables", tables);
}

json_t *store_rows_object(const char *text) {
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	if(j != NULL && json_is_object(j))
		return j;
	json_decref(j);
	return json_null();
}

json_t *store_rows_incident(const char *leg, const char *medium, const char *kind,
		gint64 started_us, gint64 ended_us, const char *detail_json) {
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "leg", leg, "medium", medium, "kind", kind,
		"started_at", (json_int_t)started_us,
		"ended_at", ended_us < 0 ? json_null() : json_integer((json_int_t)ended_us),
		"detail", store_rows_object(detail_json));
}

json_t *store_rows_quality(json_t *pulses, json_t *incidents, gint64 samples,
		char *err, size_t errlen) {
	json_t *out = json_pack("{s:o, s:o, s:I}", "pulses", pulses, "incidents", incidents,
		"samples", (json_int_t)samples);
	if(out == NULL)                    /* json_pack stole the references */
		g_snprintf(err, errlen, "visit_quality: out of memory");
	return out;
}

gboolean store_rows_pulse_closed(const char *pulse_id, const char *status,
		gboolean final, gboolean dismissed, char *err, size_t errlen) {
	if(final || strcmp(status, "answered") == 0)
		g_snprintf(err, errlen, "pulse %s is already answered", pulse_id);
	else if(dismissed || strcmp(status, "dismissed") == 0)
		g_snprintf(err, errlen, "pulse %s was dismissed", pulse_id);
	else if(strcmp(status, "expired") == 0)
		g_snprintf(err, errlen, "pulse %s has expired", pulse_id);
	else
		return FALSE;
	return TRUE;
}
