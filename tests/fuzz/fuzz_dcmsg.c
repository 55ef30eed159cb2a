/* libFuzzer target: the data-channel codec must refuse or accept any bytes
 * without crashing, leaking or overrunning, and every reply it builds must
 * be valid JSON. A `stats` digest it accepts must hold only finite values
 * in their documented ranges, and its stored form (dcmsg_stats_json, what
 * the shell writes with the *_down legs) must be a JSON object with exactly
 * the groups that were given. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dcmsg.h"

static void check_num(double v, double min) {
	if(!isfinite(v) || v < min)
		abort();
}

static void check_stats(const dcmsg_stats *st) {
	static const struct { unsigned bit; const char *name; } groups[] = {
		{ DCMSG_STATS_INBOUND_VIDEO, "inbound_video" }, { DCMSG_STATS_INBOUND_AUDIO, "inbound_audio" },
		{ DCMSG_STATS_OUTBOUND_VIDEO, "outbound_video" }, { DCMSG_STATS_CANDIDATE_PAIR, "candidate_pair" },
	};
	if(st->present == 0 || (st->present & ~15u) != 0)
		abort();
	const double nonneg[] = { st->freeze_count, st->total_freezes_duration, st->frames_decoded,
		st->frames_dropped, st->jitter, st->jitter_buffer_delay, st->concealed_samples,
		st->total_samples_received, st->ql_duration_cpu, st->ql_duration_bandwidth,
		st->ql_duration_other, st->ql_duration_none, st->current_round_trip_time,
		st->available_outgoing_bitrate };
	for(size_t i = 0; i < sizeof(nonneg) / sizeof(nonneg[0]); i++)
		check_num(nonneg[i], 0);
	check_num(st->packets_lost, -INFINITY);
	const char *q = st->quality_limitation_reason;
	if(q[0] && strcmp(q, "none") && strcmp(q, "cpu") && strcmp(q, "bandwidth") && strcmp(q, "other"))
		abort();
	char *text = dcmsg_stats_json(st);
	json_error_t jerr;
	json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
	if(!json_is_object(j))
		abort();
	size_t want = 0;
	for(size_t i = 0; i < 4; i++) {
		int given = (st->present & groups[i].bit) != 0;
		want += given;
		if(given != json_is_object(json_object_get(j, groups[i].name)))
			abort();
	}
	if(json_object_size(j) != want)
		abort();
	json_decref(j);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	dcmsg m;
	dcmsg_error e;
	char *reply;
	if(dcmsg_parse((const char *)data, size, &m, &e) == 0) {
		if(m.type == DCMSG_ANSWER && !json_is_object(m.responses))
			abort();
		if(m.type == DCMSG_STATS)
			check_stats(&m.stats);
		reply = m.type == DCMSG_PING ? dcmsg_pong(m.ref) : dcmsg_ack(m.pulse_id, m.final);
		dcmsg_clear(&m);
	} else
		reply = dcmsg_error_text(&e);
	if(reply == NULL)
		abort();
	json_error_t jerr;
	json_t *j = json_loads(reply, 0, &jerr);
	if(j == NULL)
		abort();
	json_decref(j);
	free(reply);
	return 0;
}
