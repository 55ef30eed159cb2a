/*
 * report_history.c — see report_history.h: the `client_history` answer
 * from the store's report reads (STORE_READ_VISITS to find the visit and
 * the pair's visits, STORE_READ_VISIT for each one shown, as the `visit`
 * report reads it) and report_class.c's good/poor calls on every quality
 * context. docs/reports.md "client_history" gives the shape.
 *
 * Which answer is a visit's end rating: the latest end pulse of each role,
 * as the summaries count it (docs/reports.md "Which visits count"); its
 * total and subscales when the answer is final, else null next to the
 * pulse's status (declined, expired, still open).
 */
#include "report_history.h"
#include "report.h"
#include "report_class.h"
#include "report_json.h"

#include <string.h>

static void copy_fields(json_t *to, const json_t *from, const char *const *keys, size_t n) {
	for(size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(from, keys[i]);
		json_object_set(to, keys[i], v ? v : json_null());
	}
}

static gboolean is(const json_t *o, const char *key, const char *value) {
	const char *s = report_sfield(o, key);
	return s != NULL && !strcmp(s, value);
}

/* A pulse as the history shows it: when, what, its status, and (when
 * answered for good) the items, the scores and their total. */
static json_t *pulse_json(const json_t *p) {
	static const char *const keys[] = { "pulse_id", "role", "kind", "instrument_id",
		"created_at", "status", "status_at" };
	json_t *o = json_object();
	copy_fields(o, p, keys, G_N_ELEMENTS(keys));
	json_t *a = json_object_get(p, "answer");
	gboolean final = json_is_object(a) && json_is_true(json_object_get(a, "final"))
		&& !json_is_true(json_object_get(a, "dismissed"));
	json_t *scores = final ? json_object_get(a, "scores") : NULL;
	json_t *items = final ? json_object_get(a, "items") : NULL;
	json_object_set_new(o, "answered_at", final && json_object_get(a, "answered_at")
		? json_incref(json_object_get(a, "answered_at")) : json_null());
	json_object_set_new(o, "total", report_num(scores ? report_field(scores, "total") : NAN));
	json_object_set(o, "scores", json_is_object(scores) ? scores : json_null());
	json_object_set(o, "items", json_is_object(items) ? items : json_null());
	return o;
}

json_t *report_history_visit(const json_t *d, int number, gboolean current) {
	static const char *const keys[] = { "visit_id", "modality", "state", "created_at",
		"admitted_at", "ended_at", "end_reason", "video_class",
		"mean_mos", "loss_pct", "freeze_s" };
	const json_t *v = json_object_get(d, "visit");
	json_t *o = json_object();
	copy_fields(o, v, keys, G_N_ELEMENTS(keys));
	/* the visit's place among this pair's visits, not the client's
	 * visit_number, whose gaps would tell of visits with other therapists */
	json_object_set_new(o, "number", json_integer(number));
	json_object_set_new(o, "current", json_boolean(current));
	json_t *pulses = json_array(), *kinds = json_object();
	const json_t *end[2] = { NULL, NULL };          /* client, therapist: the latest end pulse */
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(d, "pulses"), i, p) {
		const char *id = report_sfield(p, "pulse_id");
		if(id)
			json_object_set(kinds, id, json_object_get(p, "kind"));
		if(is(p, "kind", "end")) {
			if(is(p, "role", "client"))
				end[0] = p;
			else if(is(p, "role", "therapist"))
				end[1] = p;
		} else {
			json_array_append_new(pulses, pulse_json(p));
		}
	}
	json_object_set_new(o, "client_end", end[0] ? pulse_json(end[0]) : json_null());
	json_object_set_new(o, "therapist_end", end[1] ? pulse_json(end[1]) : json_null());
	json_object_set_new(o, "pulses", pulses);
	json_t *alerts = json_array(), *al;
	json_array_foreach(json_object_get(d, "alerts"), i, al) {
		json_t *c = json_deep_copy(al);
		const char *id = report_sfield(al, "pulse_id");
		json_t *kind = id ? json_object_get(kinds, id) : NULL;
		json_object_set(c, "pulse_kind", kind ? kind : json_null());
		json_array_append_new(alerts, c);
	}
	json_object_set_new(o, "alerts", alerts);
	json_decref(kinds);
	return o;
}

json_t *report_history_from(const json_t *vrow, json_t *details, int older) {
	const char *current = report_sfield(vrow, "visit_id");
	json_t *list = json_array();
	size_t i;
	json_t *d;
	json_array_foreach(details, i, d) {
		report_class_visit(d);       /* class / poor_reasons on every quality context */
		const char *id = report_sfield(json_object_get(d, "visit"), "visit_id");
		json_array_append_new(list, report_history_visit(d, older + (int)i + 1,
			current && id && !strcmp(id, current)));
	}
	return json_pack("{s:s, s:O?, s:O?, s:O?, s:i, s:i, s:o}", "alliance", "client_history",
		"visit_id", json_object_get(vrow, "visit_id"),
		"therapist_code", json_object_get(vrow, "therapist_code"),
		"client_code", json_object_get(vrow, "client_code"),
		"n", (int)json_array_size(list), "older", older, "visits", list);
}

json_t *report_history_build(store *st, const char *therapist_code, const char *visit_id,
		int limit, gint64 timeout_us, proto_error *err) {
	store_report_filter f;
	memset(&f, 0, sizeof(f));
	f.visit_id = visit_id;
	json_t *one = report_fetch(st, STORE_READ_VISITS, &f, timeout_us, err);
	if(one == NULL)
		return NULL;
	json_t *vrow = json_array_get(one, 0), *rows = NULL, *details = NULL, *out = NULL;
	const char *client = vrow ? report_sfield(vrow, "client_code") : NULL;
	const char *owner = vrow ? report_sfield(vrow, "therapist_code") : NULL;
	if(client == NULL || owner == NULL) {
		proto_fail(err, PROTO_ERR_NO_SUCH_VISIT, "No such visit");
		goto done;
	}
	if(therapist_code == NULL || strcmp(owner, therapist_code) != 0) {
		proto_fail(err, PROTO_ERR_UNAUTHORIZED, "Unauthorized (the visit is another therapist's)");
		goto done;
	}
	/* this therapist's visits with this client, oldest first */
	memset(&f, 0, sizeof(f));
	f.therapist_code = owner;
	f.client_code = client;
	if((rows = report_fetch(st, STORE_READ_VISITS, &f, timeout_us, err)) == NULL)
		goto done;
	size_t n = json_array_size(rows);
	size_t first = limit > 0 && n > (size_t)limit ? n - (size_t)limit : 0;
	details = json_array();
	for(size_t i = first; i < n; i++) {
		memset(&f, 0, sizeof(f));
		f.visit_id = report_sfield(json_array_get(rows, i), "visit_id");
		if(f.visit_id == NULL)
			continue;
		proto_error e2 = { 0 };
		json_t *d = report_fetch(st, STORE_READ_VISIT, &f, timeout_us, &e2);
		if(d == NULL) {
			if(e2.code == PROTO_ERR_NO_SUCH_VISIT)
				continue;            /* erased between the two reads */
			*err = e2;
			goto done;
		}
		if(json_array_size(d) == 1)
			json_array_append(details, json_array_get(d, 0));
		json_decref(d);
	}
	out = report_history_from(vrow, details, (int)first);
done:
	json_decref(details);
	json_decref(rows);
	json_decref(one);
	return out;
}
