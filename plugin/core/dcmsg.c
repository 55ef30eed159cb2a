/*
 * dcmsg.c — see dcmsg.h. jansson does the parsing (with JSON_REJECT_DUPLICATES
 * so `{"type":"a","type":"b"}` cannot mean two things); this file only
 * checks the envelope and picks out the fields each type needs.
 */
#include "dcmsg.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int fail(dcmsg_error *err, const char *code, const char *reason) {
	err->code = code;
	snprintf(err->reason, sizeof(err->reason), "%s", reason);
	return -1;
}

void dcmsg_copy_ref(char out[DCMSG_REF_MAX + 1], const char *s) {
	size_t n = 0;
	for(; s && s[n] && n < DCMSG_REF_MAX; n++) {
		unsigned char c = (unsigned char)s[n];
		out[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
}

/* Copy a short printable `ref` if present and a string. */
static void take_ref(json_t *root, char out[DCMSG_REF_MAX + 1]) {
	out[0] = '\0';
	json_t *ref = json_object_get(root, "ref");
	if(json_is_string(ref))
		dcmsg_copy_ref(out, json_string_value(ref));
}

/* A stats number: absent is fine (stays 0), present must be a finite number
 * in [min, max]. Returns 0 or -1. */
static int stat_range(json_t *group, const char *name, double min, double max, double *out) {
	json_t *v = json_object_get(group, name);
	if(v == NULL || json_is_null(v))
		return 0;
	if(!json_is_number(v))
		return -1;
	double d = json_number_value(v);
	if(!(d >= min && d <= max))      /* also false for NaN */
		return -1;
	*out = d;
	return 0;
}

static int stat_num(json_t *group, const char *name, double max, double *out) {
	return stat_range(group, name, 0.0, max, out);
}

static json_t *stat_group(json_t *root, const char *name, unsigned bit, unsigned *present, int *bad) {
	json_t *g = json_object_get(root, name);
	if(g == NULL || json_is_null(g))
		return NULL;
	if(!json_is_object(g)) {
		*bad = 1;
		return NULL;
	}
	*present |= bit;
	return g;
}

#define BIG 1e12
static int parse_stats(json_t *root, dcmsg_stats *st, dcmsg_error *err) {
	int bad = 0;
	json_t *g;
	if((g = stat_group(root, "inbound_video", DCMSG_STATS_INBOUND_VIDEO, &st->present, &bad)) != NULL)
		bad |= stat_num(g, "freezeCount", BIG, &st->freeze_count) |
			stat_num(g, "totalFreezesDuration", BIG, &st->total_freezes_duration) |
			stat_num(g, "framesDecoded", BIG, &st->frames_decoded) |
			stat_num(g, "framesDropped", BIG, &st->frames_dropped) |
			/* signed in webrtc-stats: duplicates make it negative */
			stat_range(g, "packetsLost", -BIG, BIG, &st->packets_lost) |
			stat_num(g, "jitter", 1e6, &st->jitter) |
			stat_num(g, "jitterBufferDelay", BIG, &st->jitter_buffer_delay);
	if((g = stat_group(root, "inbound_audio", DCMSG_STATS_INBOUND_AUDIO, &st->present, &bad)) != NULL)
		bad |= stat_num(g, "concealedSamples", BIG, &st->concealed_samples) |
			stat_num(g, "totalSamplesReceived", BIG, &st->total_samples_received);
	if((g = stat_group(root, "outbound_video", DCMSG_STATS_OUTBOUND_VIDEO, &st->present, &bad)) != NULL) {
		json_t *r = json_object_get(g, "qualityLimitationReason");
		if(r && !json_is_null(r)) {
			const char *rs = json_string_value(r);
			if(rs && (!strcmp(rs, "none") || !strcmp(rs, "cpu") || !strcmp(rs, "bandwidth") || !strcmp(rs, "other")))
				snprintf(st->quality_limitation_reason, sizeof(st->quality_limitation_reason), "%s", rs);
			else
				bad = 1;
		}
		json_t *d = json_object_get(g, "qualityLimitationDurations");
		if(d && !json_is_null(d)) {
			if(!json_is_object(d))
				bad = 1;
			else
				bad |= stat_num(d, "cpu", BIG, &st->ql_duration_cpu) |
					stat_num(d, "bandwidth", BIG, &st->ql_duration_bandwidth) |
					stat_num(d, "other", BIG, &st->ql_duration_other) |
					stat_num(d, "none", BIG, &st->ql_duration_none);
		}
	}
	if((g = stat_group(root, "candidate_pair", DCMSG_STATS_CANDIDATE_PAIR, &st->present, &bad)) != NULL)
		bad |= stat_num(g, "currentRoundTripTime", 3600, &st->current_round_trip_time) |
			stat_num(g, "availableOutgoingBitrate", 1e11, &st->available_outgoing_bitrate);
	if(bad)
		return fail(err, "bad_stats", "stats fields must be non-negative finite numbers (and groups objects)");
	if(st->present == 0)
		return fail(err, "bad_stats", "stats has none of inbound_video, inbound_audio, outbound_video, candidate_pair");
	return 0;
}
#undef BIG

char *dcmsg_stats_json(const dcmsg_stats *st) {
	json_t *o = json_object();
	if(st->present & DCMSG_STATS_INBOUND_VIDEO)
		json_object_set_new(o, "inbound_video", json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
			"freezeCount", st->freeze_count, "totalFreezesDuration", st->total_freezes_duration,
			"framesDecoded", st->frames_decoded, "framesDropped", st->frames_dropped,
			"packetsLost", st->packets_lost, "jitter", st->jitter,
			"jitterBufferDelay", st->jitter_buffer_delay));
	if(st->present & DCMSG_STATS_INBOUND_AUDIO)
		json_object_set_new(o, "inbound_audio", json_pack("{s:f, s:f}",
			"concealedSamples", st->concealed_samples, "totalSamplesReceived", st->total_samples_received));
	if(st->present & DCMSG_STATS_OUTBOUND_VIDEO)
		json_object_set_new(o, "outbound_video", json_pack("{s:s, s:{s:f, s:f, s:f, s:f}}",
			"qualityLimitationReason", st->quality_limitation_reason,
			"qualityLimitationDurations", "cpu", st->ql_duration_cpu, "bandwidth", st->ql_duration_bandwidth,
			"other", st->ql_duration_other, "none", st->ql_duration_none));
	if(st->present & DCMSG_STATS_CANDIDATE_PAIR)
		json_object_set_new(o, "candidate_pair", json_pack("{s:f, s:f}",
			"currentRoundTripTime", st->current_round_trip_time,
			"availableOutgoingBitrate", st->available_outgoing_bitrate));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

int dcmsg_parse(const char *buf, size_t len, dcmsg *msg, dcmsg_error *err) {
	memset(msg, 0, sizeof(*msg));
	memset(err, 0, sizeof(*err));
	if(buf == NULL || len == 0)
		return fail(err, "bad_json", "empty message");
	if(len > DCMSG_MAX_BYTES)
		return fail(err, "too_large", "message longer than 16384 bytes");
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if(root == NULL)
		return fail(err, "bad_json", "not valid JSON");
	int rc = -1;
	if(!json_is_object(root)) {
		fail(err, "bad_json", "message is not a JSON object");
		goto done;
	}
	take_ref(root, err->ref);
	json_t *v = json_object_get(root, "v");
	if(!json_is_integer(v) || json_integer_value(v) != 1) {
		fail(err, "bad_version", "\"v\" must be 1");
		goto done;
	}
	json_t *type = json_object_get(root, "type");
	if(!json_is_string(type)) {
		fail(err, "bad_json", "\"type\" must be a string");
		goto done;
	}
	const char *t = json_string_value(type);
	take_ref(root, msg->ref);
	if(!strcmp(t, "ping")) {
		msg->type = DCMSG_PING;
		rc = 0;
	} else if(!strcmp(t, "answer") || !strcmp(t, "dismiss")) {
		msg->type = !strcmp(t, "answer") ? DCMSG_ANSWER : DCMSG_DISMISS;
		json_t *pid = json_object_get(root, "pulse_id");
		if(!json_is_string(pid) || json_string_length(pid) == 0) {
			fail(err, "bad_message", "\"pulse_id\" must be a non-empty string");
			goto done;
		}
		if(json_string_length(pid) > DCMSG_PULSE_ID_MAX || strlen(json_string_value(pid)) != json_string_length(pid)) {
			fail(err, "unknown_pulse", "no such pulse");
			goto done;
		}
		snprintf(msg->pulse_id, sizeof(msg->pulse_id), "%s", json_string_value(pid));
		if(msg->type == DCMSG_ANSWER) {
			json_t *responses = json_object_get(root, "responses");
			if(!json_is_object(responses)) {
				fail(err, "bad_responses", "\"responses\" must be an object of item_id: number");
				goto done;
			}
			json_t *final = json_object_get(root, "final");
			if(final != NULL && !json_is_boolean(final)) {
				fail(err, "bad_message", "\"final\" must be a boolean");
				goto done;
			}
			msg->final = (final == NULL || json_is_true(final)) ? 1 : 0;
			msg->responses = json_incref(responses);
		}
		rc = 0;
	} else if(!strcmp(t, "stats")) {
		msg->type = DCMSG_STATS;
		if(parse_stats(root, &msg->stats, err) == 0)
			rc = 0;
	} else {
		fail(err, "unknown_type", "unknown message type");
	}
done:
	json_decref(root);
	return rc;
}

void dcmsg_clear(dcmsg *msg) {
	if(msg->responses)
		json_decref(msg->responses);
	msg->responses = NULL;
}

char *dcmsg_encode(const char *type, json_t *fields) {
	json_t *o = json_object();
	json_object_set_new(o, "v", json_integer(1));
	json_object_set_new(o, "type", json_string(type));
	if(fields)
		json_object_update(o, fields);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *dcmsg_hello(const char *role, const char *visit_id) {
	json_t *f = json_pack("{s:s, s:s}", "role", role, "visit_id", visit_id);
	char *s = dcmsg_encode("hello", f);
	json_decref(f);
	return s;
}

char *dcmsg_pong(const char *ref) {
	json_t *f = json_object();
	if(ref && *ref)
		json_object_set_new(f, "ref", json_string(ref));
	char *s = dcmsg_encode("pong", f);
	json_decref(f);
	return s;
}

char *dcmsg_ack(const char *pulse_id, int complete) {
	json_t *f = json_pack("{s:s, s:b, s:b}", "pulse_id", pulse_id, "stored", 1, "complete", complete);
	char *s = dcmsg_encode("ack", f);
	json_decref(f);
	return s;
}

char *dcmsg_pulse_expired(const char *pulse_id) {
	json_t *f = json_pack("{s:s}", "pulse_id", pulse_id);
	char *s = dcmsg_encode("pulse_expired", f);
	json_decref(f);
	return s;
}

char *dcmsg_error_text(const dcmsg_error *err) {
	json_t *f = json_pack("{s:s, s:s}", "code", err->code ? err->code : "bad_json",
		"reason", err->reason);
	if(err->ref[0])
		json_object_set_new(f, "ref", json_string(err->ref));
	char *s = dcmsg_encode("error", f);
	json_decref(f);
	return s;
}
