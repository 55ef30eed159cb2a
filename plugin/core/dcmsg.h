/*
 * dcmsg.h — codec for the `alliance` data channel (PROTOCOL.md, "Data
 * channel messages").
 *
 * Every participant message is hostile until dcmsg_parse() says otherwise:
 * it bounds the size, parses JSON, checks `"v":1` and `type`, and yields a
 * typed message or one error slug (`too_large`, `bad_json`, `bad_version`,
 * `unknown_type`, …) with a reason, ready to be sent back as an `error`.
 * The builders produce the server's messages as compact JSON strings.
 *
 * An `answer` is checked here only for its envelope (pulse_id a short
 * string, responses an object, final a boolean); its values are checked
 * against the instrument by instrument_answer_merge().
 *
 * Pure: bytes in, struct or string out; no Janus, no I/O.
 */
#ifndef ALLIANCE_DCMSG_H
#define ALLIANCE_DCMSG_H

#include <stddef.h>
#include <jansson.h>

#define DCMSG_MAX_BYTES 16384
#define DCMSG_REF_MAX 64

#define DCMSG_PULSE_ID_MAX 80

typedef enum dcmsg_type {
	DCMSG_PING = 1,
	DCMSG_ANSWER,       /* pulse_id, responses (object), final */
	DCMSG_DISMISS,      /* pulse_id */
	DCMSG_STATS,        /* the browser's getStats() digest, see below */
} dcmsg_type;

/* The `stats` digest (PROTOCOL.md): groups inbound_video, inbound_audio,
 * outbound_video, candidate_pair, each optional; within them only the
 * fields below are kept, each validated (finite, >= 0, bounded; the
 * quality-limitation reason from its fixed set). */
typedef struct dcmsg_stats {
	unsigned present;              /* DCMSG_STATS_* bits of the groups given */
	/* inbound video */
	double freeze_count, total_freezes_duration, frames_decoded, frames_dropped,
		packets_lost, jitter, jitter_buffer_delay;
	/* inbound audio */
	double concealed_samples, total_samples_received;
	/* outbound video */
	char quality_limitation_reason[16];   /* none|cpu|bandwidth|other or "" */
	double ql_duration_cpu, ql_duration_bandwidth, ql_duration_other, ql_duration_none;
	/* candidate pair */
	double current_round_trip_time, available_outgoing_bitrate;
} dcmsg_stats;
#define DCMSG_STATS_INBOUND_VIDEO 1u
#define DCMSG_STATS_INBOUND_AUDIO 2u
#define DCMSG_STATS_OUTBOUND_VIDEO 4u
#define DCMSG_STATS_CANDIDATE_PAIR 8u

typedef struct dcmsg {
	dcmsg_type type;
	char ref[DCMSG_REF_MAX + 1];   /* the sender's `ref`, "" if none */
	char pulse_id[DCMSG_PULSE_ID_MAX + 1];
	json_t *responses;             /* answer: a reference the caller releases
	                                  with dcmsg_clear(); validated against the
	                                  instrument elsewhere */
	int final;                     /* answer: 1 unless "final":false */
	dcmsg_stats stats;             /* stats */
} dcmsg;

/* The validated stats as a compact JSON object (new string, free()), the
 * client-side view stored with the *_down legs. */
char *dcmsg_stats_json(const dcmsg_stats *st);

/* Release what a parsed message holds (safe on a zeroed or failed one). */
void dcmsg_clear(dcmsg *msg);

/* Copy s into a `ref` field: at most DCMSG_REF_MAX bytes, printable ASCII
 * only (anything else becomes '?'), so it always makes valid JSON. */
void dcmsg_copy_ref(char out[DCMSG_REF_MAX + 1], const char *s);

typedef struct dcmsg_error {
	const char *code;              /* slug, static */
	char reason[160];
	char ref[DCMSG_REF_MAX + 1];   /* the offending message's ref, if known */
} dcmsg_error;

/* Parse one message of len bytes (not NUL-terminated). Returns 0 and fills
 * msg, or -1 and fills err. */
int dcmsg_parse(const char *buf, size_t len, dcmsg *msg, dcmsg_error *err);

/* Builders; each returns a newly allocated string (free with free()). */
char *dcmsg_hello(const char *role, const char *visit_id);
char *dcmsg_pong(const char *ref);
char *dcmsg_ack(const char *pulse_id, int complete);
char *dcmsg_pulse_expired(const char *pulse_id);
char *dcmsg_error_text(const dcmsg_error *err);
/* Any server message given as a JSON object: adds "v":1 and "type". The
 * object is not consumed. */
char *dcmsg_encode(const char *type, json_t *fields);

#endif
