/*
 * proto.c — see proto.h. A small table-free validator: each request kind
 * names its fields in order, and the first problem found is the answer.
 */
#include "proto.h"

#include <math.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int proto_fail(proto_error *err, int code, const char *fmt, ...) {
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -1;
}

const char *proto_error_slug(int code) {
	switch(code) {
		case PROTO_ERR_NO_MESSAGE: return "no_message";
		case PROTO_ERR_INVALID_JSON: return "invalid_json";
		case PROTO_ERR_UNKNOWN_REQUEST: return "unknown_request";
		case PROTO_ERR_MISSING_ELEMENT: return "missing_element";
		case PROTO_ERR_INVALID_ELEMENT: return "invalid_element";
		case PROTO_ERR_UNAUTHORIZED: return "unauthorized";
		case PROTO_ERR_NO_SUCH_VISIT: return "no_such_visit";
		case PROTO_ERR_INVALID_INVITE: return "invalid_invite";
		case PROTO_ERR_INVITE_USED: return "invite_used";
		case PROTO_ERR_FORBIDDEN: return "forbidden";
		case PROTO_ERR_NOT_JOINED: return "not_joined";
		case PROTO_ERR_ALREADY_JOINED: return "already_joined";
		case PROTO_ERR_NOT_ADMITTED: return "not_admitted";
		case PROTO_ERR_WRONG_STATE: return "wrong_state";
		case PROTO_ERR_INVALID_SDP: return "invalid_sdp";
		case PROTO_ERR_NO_CONSENT: return "no_consent";
		case PROTO_ERR_LIMIT_REACHED: return "limit_reached";
		case PROTO_ERR_PULSE_PENDING: return "pulse_pending";
		case PROTO_ERR_UNKNOWN_PULSE: return "unknown_pulse";
		case PROTO_ERR_ALREADY_ANSWERED: return "already_answered";
		case PROTO_ERR_EXPIRED: return "expired";
		case PROTO_ERR_NOT_YOURS: return "not_yours";
		case PROTO_ERR_UNKNOWN_ITEM: return "unknown_item";
		case PROTO_ERR_OUT_OF_RANGE: return "out_of_range";
		case PROTO_ERR_WRONG_TYPE: return "wrong_type";
		case PROTO_ERR_INCOMPLETE: return "incomplete";
		case PROTO_ERR_STORE: return "store_failed";
		case PROTO_ERR_RATE_LIMITED: return "rate_limited";
		case PROTO_ERR_OTHER_INSTANCE: return "other_instance";
		default: return "internal";
	}
}

json_t *proto_error_json(const proto_error *err) {
	/* a reason may quote what the request said, cut at a byte count: keep
	 * only its valid UTF-8 prefix, or jansson refuses the whole answer */
	const char *end = NULL;
	char reason[PROTO_REASON_MAX];
	g_strlcpy(reason, err->reason, sizeof(reason));
	if(!g_utf8_validate(reason, -1, &end))
		reason[end - reason] = '\0';
	return json_pack("{s:s, s:i, s:s}", "alliance", "error",
		"error_code", err->code, "error", reason);
}

/* A required or optional string field: present -> must be a non-empty
 * string of at most PROTO_STRING_MAX bytes. Returns 1 found, 0 absent,
 * -1 error. */
static int get_string(const json_t *body, const char *name, bool required,
		const char **out, proto_error *err) {
	json_t *v = json_object_get(body, name);
	*out = NULL;
	if(v == NULL || json_is_null(v)) {
		if(required)
			return proto_fail(err, PROTO_ERR_MISSING_ELEMENT, "Missing element (%s)", name);
		return 0;
	}
	if(!json_is_string(v))
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (%s should be a string)", name);
	size_t len = json_string_length(v);
	if(len == 0)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (%s is empty)", name);
	if(len > PROTO_STRING_MAX)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (%s longer than %d)", name, PROTO_STRING_MAX);
	const char *s = json_string_value(v);
	if(strlen(s) != len)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (%s contains NUL)", name);
	*out = s;
	return 1;
}

/* A credential: the key (a string like any other) or, in its place, a
 * Janus signed token (longer: up to AUTH_SIGNED_MAX). Exactly one of the
 * two. Returns 0 or -1. */
static int get_credential(const json_t *body, const char *key_name, const char *token_name,
		const char **key, const char **token, proto_error *err) {
	*key = *token = NULL;
	json_t *t = json_object_get(body, token_name);
	if(t != NULL && !json_is_null(t)) {
		if(!json_is_string(t))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (%s should be a string)", token_name);
		size_t len = json_string_length(t);
		if(len == 0 || len > AUTH_SIGNED_MAX || strlen(json_string_value(t)) != len)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
				"Invalid element (%s should be a Janus signed token of at most %d bytes)", token_name, AUTH_SIGNED_MAX);
		json_t *k = json_object_get(body, key_name);
		if(k != NULL && !json_is_null(k))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (give %s or %s, not both)",
				key_name, token_name);
		*token = json_string_value(t);
		return 0;
	}
	return get_string(body, key_name, true, key, err) < 0 ? -1 : 0;
}

/* Optional boolean: -1 absent, 0/1 value, -2 error. */
static int get_bool(const json_t *body, const char *name, proto_error *err) {
	json_t *v = json_object_get(body, name);
	if(v == NULL || json_is_null(v))
		return -1;
	if(!json_is_boolean(v)) {
		proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (%s should be a boolean)", name);
		return -2;
	}
	return json_is_true(v) ? 1 : 0;
}

static bool lang_ok(const char *s) {
	size_t n = strlen(s);
	if(n < 2 || n > PROTO_LANG_MAX)
		return false;
	for(size_t i = 0; i < n; i++)
		if(!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-'))
			return false;
	return true;
}

static int parse_create(const json_t *body, proto_request *req, proto_error *err) {
	const char *modality = NULL;
	if(get_credential(body, "therapist_key", "therapist_token", &req->therapist_key,
			&req->therapist_token, err) < 0)
		return -1;
	if(get_string(body, "client_code", true, &req->client_code, err) < 0)
		return -1;
	if(!auth_code_ok(req->client_code))
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
			"Invalid element (client_code must be a pseudonymous code: 1-%d of A-Z a-z 0-9 . _ -)", AUTH_CODE_MAX);
	int r = get_string(body, "modality", false, &modality, err);
	if(r < 0)
		return -1;
	req->modality = VISIT_MODALITY_VIDEO;
	if(r == 1) {
		if(!strcmp(modality, "video"))
			req->modality = VISIT_MODALITY_VIDEO;
		else if(!strcmp(modality, "in_person"))
			req->modality = VISIT_MODALITY_IN_PERSON;
		else
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (modality must be \"video\" or \"in_person\")");
	}
	json_t *instruments = json_object_get(body, "instruments");
	if(instruments && !json_is_null(instruments)) {
		if(!json_is_object(instruments))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (instruments should be an object)");
		if(get_string(instruments, "in_session", false, &req->instr_in_session, err) < 0 ||
				get_string(instruments, "end", false, &req->instr_end, err) < 0 ||
				get_string(instruments, "therapist_end", false, &req->instr_therapist_end, err) < 0)
			return -1;
	}
	json_t *schedule = json_object_get(body, "schedule");
	if(schedule && !json_is_null(schedule)) {
		if(!json_is_object(schedule))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (schedule should be an object)");
		json_t *at = json_object_get(schedule, "in_session_at_s");
		if(at && !json_is_null(at)) {
			if(!json_is_array(at) || json_array_size(at) > PROTO_OFFSETS_MAX)
				return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
					"Invalid element (schedule.in_session_at_s should be an array of at most %d offsets)", PROTO_OFFSETS_MAX);
			req->n_offsets = 0;
			size_t i;
			json_t *v;
			json_array_foreach(at, i, v) {
				if(!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > PROTO_OFFSET_MAX_S)
					return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
						"Invalid element (schedule.in_session_at_s[%zu] should be an integer 0..%d)", i, PROTO_OFFSET_MAX_S);
				req->offsets_s[req->n_offsets++] = (int)json_integer_value(v);
			}
			/* ascending order is what the scheduler walks */
			for(int a = 1; a < req->n_offsets; a++)
				if(req->offsets_s[a] < req->offsets_s[a-1])
					return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
						"Invalid element (schedule.in_session_at_s must be ascending)");
		}
		int ep = get_bool(schedule, "end_pulse", err);
		if(ep == -2)
			return -1;
		req->end_pulse = ep;
	}
	return 0;
}

static int parse_pulse(const json_t *body, proto_request *req, proto_error *err) {
	const char *target = NULL;
	if(get_string(body, "instrument", false, &req->instrument, err) < 0)
		return -1;
	int r = get_string(body, "target", false, &target, err);
	if(r < 0)
		return -1;
	req->target = VISIT_ROLE_CLIENT;
	if(r == 1) {
		if(!strcmp(target, "client"))
			req->target = VISIT_ROLE_CLIENT;
		else if(!strcmp(target, "therapist"))
			req->target = VISIT_ROLE_THERAPIST;
		else if(!strcmp(target, "both"))
			req->target_both = true;
		else
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
				"Invalid element (target must be \"client\", \"therapist\" or \"both\")");
	}
	return 0;
}

static int parse_answer(const json_t *body, proto_request *req, proto_error *err) {
	if(get_string(body, "pulse_id", true, &req->pulse_id, err) < 0)
		return -1;
	json_t *responses = json_object_get(body, "responses");
	if(responses == NULL || json_is_null(responses))
		return proto_fail(err, PROTO_ERR_MISSING_ELEMENT, "Missing element (responses)");
	if(!json_is_object(responses))
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (responses should be an object of item_id: number)");
	req->responses = responses;
	int f = get_bool(body, "final", err);
	if(f == -2)
		return -1;
	req->final = (f != 0);
	return 0;
}

static int parse_join(const json_t *body, proto_request *req, proto_error *err) {
	const char *role = NULL;
	if(get_string(body, "role", true, &role, err) < 0)
		return -1;
	if(!strcmp(role, "therapist")) {
		req->role = VISIT_ROLE_THERAPIST;
		if(get_string(body, "visit_id", true, &req->visit_id, err) < 0)
			return -1;
		if(get_credential(body, "therapist_key", "therapist_token", &req->therapist_key,
				&req->therapist_token, err) < 0)
			return -1;
	} else if(!strcmp(role, "client")) {
		req->role = VISIT_ROLE_CLIENT;
		if(get_string(body, "invite", true, &req->invite, err) < 0)
			return -1;
		if(get_string(body, "rejoin_key", false, &req->rejoin_key, err) < 0)
			return -1;
		json_t *consent = json_object_get(body, "consent");
		if(consent == NULL || json_is_null(consent))
			return proto_fail(err, PROTO_ERR_MISSING_ELEMENT, "Missing element (consent)");
		if(!json_is_object(consent))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (consent should be an object)");
		json_t *research = json_object_get(consent, "research");
		if(research == NULL)
			return proto_fail(err, PROTO_ERR_MISSING_ELEMENT, "Missing element (consent.research)");
		if(!json_is_boolean(research))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (consent.research should be a boolean)");
		req->research_consent = json_is_true(research);
	} else if(!strcmp(role, "observer")) {
		req->role = VISIT_ROLE_OBSERVER;
		if(get_string(body, "visit_id", true, &req->visit_id, err) < 0)
			return -1;
		if(get_credential(body, "supervisor_key", "supervisor_token", &req->supervisor_key,
				&req->supervisor_token, err) < 0)
			return -1;
	} else {
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
			"Invalid element (role must be \"therapist\", \"client\" or \"observer\")");
	}
	if(get_string(body, "language", false, &req->language, err) < 0)
		return -1;
	if(req->language && !lang_ok(req->language))
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (language should be a tag like \"en\" or \"de-AT\")");
	return 0;
}

static int parse_configure(const json_t *body, proto_request *req, proto_error *err) {
	req->audio = get_bool(body, "audio", err);
	if(req->audio == -2)
		return -1;
	req->video = get_bool(body, "video", err);
	if(req->video == -2)
		return -1;
	return 0;
}

/* --- report and forget ----------------------------------------------------- */

const char *proto_report_kind_name(proto_report_kind k) {
	switch(k) {
		case PROTO_REPORT_SUMMARY: return "summary";
		case PROTO_REPORT_COMPARE: return "compare";
		case PROTO_REPORT_VISITS: return "visits";
		case PROTO_REPORT_VISIT: return "visit";
	}
	return "unknown";
}

#define YEAR_MIN 1970
#define YEAR_MAX 9999

int proto_parse_time(const char *text, bool end_of_day, int64_t *out_us) {
	if(text == NULL || text[0] == '\0' || strlen(text) > 64)
		return -1;
	/* integer microseconds */
	if(g_ascii_isdigit(text[0]) && strspn(text, "0123456789") == strlen(text)) {
		if(strlen(text) > 17)          /* beyond year 5000 in µs */
			return -1;
		*out_us = (int64_t)g_ascii_strtoll(text, NULL, 10);
		return 0;
	}
	int y, m, d;
	char tail;
	GDateTime *dt = NULL;
	if(strlen(text) == 10 && sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3
			&& text[4] == '-' && text[7] == '-') {
		if(y < YEAR_MIN || y > YEAR_MAX || !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
			return -1;
		dt = g_date_time_new_utc(y, m, d, 0, 0, 0);
		if(dt && end_of_day) {
			GDateTime *next = g_date_time_add_days(dt, 1);
			g_date_time_unref(dt);
			dt = next;
		}
	} else {
		/* a full date and time; GLib wants the 'T' and takes no zone as UTC here */
		if(strlen(text) < 19 || text[10] != 'T')
			return -1;
		GTimeZone *utc = g_time_zone_new_utc();
		dt = g_date_time_new_from_iso8601(text, utc);
		g_time_zone_unref(utc);
		if(dt && (g_date_time_get_year(dt) < YEAR_MIN || g_date_time_get_year(dt) > YEAR_MAX)) {
			g_date_time_unref(dt);
			dt = NULL;
		}
	}
	if(dt == NULL)
		return -1;
	*out_us = (int64_t)g_date_time_to_unix(dt) * 1000000 + g_date_time_get_microsecond(dt);
	g_date_time_unref(dt);
	return *out_us >= 0 ? 0 : -1;
}

/* from / to: ISO 8601 text or integer microseconds. */
static int get_time(const json_t *filters, const char *name, bool end_of_day,
		int64_t *out, proto_error *err) {
	json_t *v = json_object_get(filters, name);
	*out = 0;
	if(v == NULL || json_is_null(v))
		return 0;
	if(json_is_integer(v)) {
		if(json_integer_value(v) < 0 || json_integer_value(v) > 253402300799999999LL)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (filters.%s out of range)", name);
		*out = json_integer_value(v);
		return 0;
	}
	if(!json_is_string(v) || proto_parse_time(json_string_value(v), end_of_day, out) < 0)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
			"Invalid element (filters.%s should be an ISO 8601 date or time, e.g. \"2024-05-01\" or "
			"\"2024-05-01T10:00:00Z\", or microseconds since the epoch)", name);
	return 0;
}

static bool code_ok_or_fail(const char *code, const char *name, proto_error *err) {
	if(code == NULL || auth_code_ok(code))
		return true;
	proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
		"Invalid element (%s must be a pseudonymous code: 1-%d of A-Z a-z 0-9 . _ -)", name, AUTH_CODE_MAX);
	return false;
}

int proto_report_filters_parse(const json_t *filters, proto_report_filters *out,
		proto_error *err) {
	memset(out, 0, sizeof(*out));
	out->research = -1;
	if(filters == NULL || json_is_null(filters))
		return 0;
	if(!json_is_object(filters))
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (filters should be an object)");
	static const char *const known[] = { "visit_id", "therapist", "client", "modality",
		"instrument", "from", "to", "research", "limit", "margin", NULL };
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)filters, key, value) {
		bool ok = false;
		for(int i = 0; known[i]; i++)
			if(!strcmp(key, known[i]))
				ok = true;
		if(!ok)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
				"Invalid element (unknown filter '%.32s'; known: visit_id, therapist, client, modality, "
				"instrument, from, to, research, limit, margin)", key);
	}
	if(get_string(filters, "visit_id", false, &out->visit_id, err) < 0
			|| get_string(filters, "therapist", false, &out->therapist, err) < 0
			|| get_string(filters, "client", false, &out->client, err) < 0
			|| get_string(filters, "modality", false, &out->modality, err) < 0
			|| get_string(filters, "instrument", false, &out->instrument, err) < 0)
		return -1;
	if(!code_ok_or_fail(out->therapist, "filters.therapist", err)
			|| !code_ok_or_fail(out->client, "filters.client", err))
		return -1;
	if(out->modality && strcmp(out->modality, "video") != 0 && strcmp(out->modality, "in_person") != 0)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (filters.modality must be \"video\" or \"in_person\")");
	if(get_time(filters, "from", false, &out->from_us, err) < 0
			|| get_time(filters, "to", true, &out->to_us, err) < 0)
		return -1;
	if(out->from_us && out->to_us && out->to_us <= out->from_us)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (filters.to must be after filters.from)");
	int r = get_bool(filters, "research", err);
	if(r == -2)
		return -1;
	out->research = r;
	json_t *limit = json_object_get(filters, "limit");
	if(limit && !json_is_null(limit)) {
		if(!json_is_integer(limit) || json_integer_value(limit) < 1
				|| json_integer_value(limit) > PROTO_REPORT_LIMIT_MAX)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
				"Invalid element (filters.limit should be an integer 1..%d)", PROTO_REPORT_LIMIT_MAX);
		out->limit = (int)json_integer_value(limit);
	}
	json_t *margin = json_object_get(filters, "margin");
	if(margin && !json_is_null(margin)) {
		double m = json_is_number(margin) ? json_number_value(margin) : NAN;
		if(!isfinite(m) || !(m > 0) || m > PROTO_MARGIN_MAX)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
				"Invalid element (filters.margin should be a number of score points > 0 and <= %g)",
				PROTO_MARGIN_MAX);
		out->margin = m;
	}
	return 0;
}

static int parse_report(const json_t *body, proto_request *req, proto_error *err) {
	const char *kind = NULL, *format = NULL, *visit_id = NULL;
	if(get_credential(body, "supervisor_key", "supervisor_token", &req->supervisor_key,
			&req->supervisor_token, err) < 0)
		return -1;
	if(get_string(body, "kind", true, &kind, err) < 0)
		return -1;
	if(!strcmp(kind, "summary"))
		req->report_kind = PROTO_REPORT_SUMMARY;
	else if(!strcmp(kind, "compare"))
		req->report_kind = PROTO_REPORT_COMPARE;
	else if(!strcmp(kind, "visits"))
		req->report_kind = PROTO_REPORT_VISITS;
	else if(!strcmp(kind, "visit"))
		req->report_kind = PROTO_REPORT_VISIT;
	else
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
			"Invalid element (kind must be \"summary\", \"compare\", \"visits\" or \"visit\")");
	/* the API answers JSON; CSV and HTML are the alliance-report tool's */
	if(get_string(body, "format", false, &format, err) < 0)
		return -1;
	if(format && strcmp(format, "json") != 0)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT,
			"Invalid element (format: the API answers \"json\"; CSV and HTML come from alliance-report)");
	if(proto_report_filters_parse(json_object_get(body, "filters"), &req->filters, err) < 0)
		return -1;
	if(get_string(body, "visit_id", false, &visit_id, err) < 0)
		return -1;
	if(visit_id && req->filters.visit_id && strcmp(visit_id, req->filters.visit_id) != 0)
		return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (visit_id and filters.visit_id differ)");
	if(visit_id)
		req->filters.visit_id = visit_id;
	if(req->report_kind == PROTO_REPORT_VISIT && req->filters.visit_id == NULL)
		return proto_fail(err, PROTO_ERR_MISSING_ELEMENT, "Missing element (visit_id, for the visit report)");
	return 0;
}

static int parse_forget(const json_t *body, proto_request *req, proto_error *err) {
	if(get_credential(body, "supervisor_key", "supervisor_token", &req->supervisor_key,
			&req->supervisor_token, err) < 0)
		return -1;
	if(get_string(body, "client_code", true, &req->client_code, err) < 0)
		return -1;
	if(!code_ok_or_fail(req->client_code, "client_code", err))
		return -1;
	return 0;
}

/* client_history (therapist): the visit whose client to show, the
 * therapist's credential, an optional `limit` of visits (the most recent). */
static int parse_client_history(const json_t *body, proto_request *req, proto_error *err) {
	if(get_credential(body, "therapist_key", "therapist_token", &req->therapist_key,
			&req->therapist_token, err) < 0)
		return -1;
	if(get_string(body, "visit_id", true, &req->visit_id, err) < 0)
		return -1;
	req->filters.limit = PROTO_HISTORY_LIMIT_DEFAULT;
	json_t *limit = json_object_get(body, "limit");
	if(limit != NULL && !json_is_null(limit)) {
		if(!json_is_integer(limit))
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element type (limit should be an integer)");
		json_int_t n = json_integer_value(limit);
		if(n < 1 || n > PROTO_HISTORY_LIMIT_MAX)
			return proto_fail(err, PROTO_ERR_INVALID_ELEMENT, "Invalid element (limit must be 1..%d)",
				PROTO_HISTORY_LIMIT_MAX);
		req->filters.limit = (int)n;
	}
	return 0;
}

int proto_parse(const json_t *body, proto_request *req, proto_error *err) {
	memset(req, 0, sizeof(*req));
	req->audio = req->video = -1;
	req->n_offsets = -1;
	req->end_pulse = -1;
	err->code = 0;
	err->reason[0] = '\0';
	if(body == NULL)
		return proto_fail(err, PROTO_ERR_NO_MESSAGE, "No message");
	if(!json_is_object(body))
		return proto_fail(err, PROTO_ERR_INVALID_JSON, "JSON error: body is not an object");
	const char *request = NULL;
	if(get_string(body, "request", true, &request, err) < 0)
		return -1;
	if(!strcmp(request, "create")) {
		req->kind = PROTO_CREATE;
		req->sync = true;
		return parse_create(body, req, err);
	} else if(!strcmp(request, "join")) {
		req->kind = PROTO_JOIN;
		return parse_join(body, req, err);
	} else if(!strcmp(request, "admit")) {
		req->kind = PROTO_ADMIT;
		return 0;
	} else if(!strcmp(request, "configure")) {
		req->kind = PROTO_CONFIGURE;
		return parse_configure(body, req, err);
	} else if(!strcmp(request, "end")) {
		req->kind = PROTO_END;
		return 0;
	} else if(!strcmp(request, "leave")) {
		req->kind = PROTO_LEAVE;
		return 0;
	} else if(!strcmp(request, "reinvite")) {
		req->kind = PROTO_REINVITE;
		return 0;
	} else if(!strcmp(request, "status")) {
		req->kind = PROTO_STATUS;
		req->sync = true;
		return 0;
	} else if(!strcmp(request, "pulse")) {
		req->kind = PROTO_PULSE;
		return parse_pulse(body, req, err);
	} else if(!strcmp(request, "answer")) {
		req->kind = PROTO_ANSWER;
		req->sync = true;
		return parse_answer(body, req, err);
	} else if(!strcmp(request, "dismiss")) {
		req->kind = PROTO_DISMISS;
		req->sync = true;
		return get_string(body, "pulse_id", true, &req->pulse_id, err) < 0 ? -1 : 0;
	} else if(!strcmp(request, "report")) {
		req->kind = PROTO_REPORT;        /* async: answered off the call path */
		return parse_report(body, req, err);
	} else if(!strcmp(request, "forget")) {
		req->kind = PROTO_FORGET;
		return parse_forget(body, req, err);
	} else if(!strcmp(request, "client_history")) {
		req->kind = PROTO_CLIENT_HISTORY;   /* async, like report */
		return parse_client_history(body, req, err);
	}
	return proto_fail(err, PROTO_ERR_UNKNOWN_REQUEST, "Unknown request '%.64s'", request);
}
