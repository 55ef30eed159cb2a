/*
 * proto.h — the Janus API of janus.plugin.alliance: request validation and
 * error codes.
 *
 * proto_parse() turns the `body` of a Janus `message` into a typed
 * proto_request, or refuses it with one specific error (code + human
 * reason), before anything else looks at it. It only checks shape: types,
 * presence, lengths, enumerations. Whether a key is right or a visit exists
 * is decided later by auth/visit. Strings in the request point into the
 * JSON body, which must outlive the request.
 *
 * The error codes are part of the external contract; docs/api.md lists them.
 */
#ifndef ALLIANCE_PROTO_H
#define ALLIANCE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "visit.h"

enum proto_error_code {
	PROTO_ERR_NO_MESSAGE = 470,
	PROTO_ERR_INVALID_JSON = 471,
	PROTO_ERR_UNKNOWN_REQUEST = 472,
	PROTO_ERR_MISSING_ELEMENT = 473,
	PROTO_ERR_INVALID_ELEMENT = 474,
	PROTO_ERR_UNAUTHORIZED = 475,
	PROTO_ERR_NO_SUCH_VISIT = 476,
	PROTO_ERR_INVALID_INVITE = 477,
	PROTO_ERR_INVITE_USED = 478,
	PROTO_ERR_FORBIDDEN = 479,
	PROTO_ERR_NOT_JOINED = 480,
	PROTO_ERR_ALREADY_JOINED = 481,
	PROTO_ERR_NOT_ADMITTED = 482,
	PROTO_ERR_WRONG_STATE = 483,
	PROTO_ERR_INVALID_SDP = 484,
	PROTO_ERR_NO_CONSENT = 485,
	PROTO_ERR_LIMIT_REACHED = 486,
	PROTO_ERR_PULSE_PENDING = 487,
	PROTO_ERR_UNKNOWN_PULSE = 488,
	PROTO_ERR_ALREADY_ANSWERED = 489,
	PROTO_ERR_EXPIRED = 490,
	PROTO_ERR_NOT_YOURS = 491,
	PROTO_ERR_UNKNOWN_ITEM = 492,
	PROTO_ERR_OUT_OF_RANGE = 493,
	PROTO_ERR_WRONG_TYPE = 494,
	PROTO_ERR_INCOMPLETE = 495,
	PROTO_ERR_STORE = 496,
	PROTO_ERR_RATE_LIMITED = 497,
	PROTO_ERR_OTHER_INSTANCE = 498,       /* the visit lives on another instance: "servers" */
	PROTO_ERR_INTERNAL = 499,
};

#define PROTO_REASON_MAX 200
#define PROTO_STRING_MAX 256   /* longest string field accepted */

typedef struct proto_error {
	int code;
	char reason[PROTO_REASON_MAX];
} proto_error;

typedef enum proto_kind {
	PROTO_CREATE,
	PROTO_JOIN,
	PROTO_ADMIT,
	PROTO_CONFIGURE,
	PROTO_END,
	PROTO_LEAVE,
	PROTO_STATUS,
	PROTO_PULSE,
	PROTO_ANSWER,
	PROTO_REPORT,
	PROTO_FORGET,
	PROTO_DISMISS,      /* pulse_id: "Not now" without a data channel (kiosk) */
	PROTO_REINVITE,     /* therapist: a new client invite for the visit */
	PROTO_CLIENT_HISTORY, /* therapist: the visit's client's past visits with them */
} proto_kind;

/* The reports of the `report` request (PROTOCOL.md "Reports"). */
typedef enum proto_report_kind {
	PROTO_REPORT_SUMMARY,
	PROTO_REPORT_COMPARE,
	PROTO_REPORT_VISITS,
	PROTO_REPORT_VISIT,
} proto_report_kind;

#define PROTO_REPORT_LIMIT_MAX 1000000
#define PROTO_MARGIN_MAX 1000.0             /* filters.margin: score points */
/* client_history: the most recent visits given (default, and most) */
#define PROTO_HISTORY_LIMIT_DEFAULT 20
#define PROTO_HISTORY_LIMIT_MAX 100

/* A report's `filters` object, validated (docs/api.md "Reports"). Strings
 * point into the JSON, as everywhere in proto_request. */
typedef struct proto_report_filters {
	const char *visit_id;               /* `visit`: top level or here */
	const char *therapist;              /* a therapist code */
	const char *client;                 /* a client code */
	const char *modality;               /* "video" | "in_person" | NULL */
	const char *instrument;             /* the client's end instrument */
	int64_t from_us, to_us;             /* visits created in [from, to); 0 = open */
	int research;                       /* -1 not given, 0/1 */
	int limit;                          /* `visits`: at most this many; 0 = all */
	double margin;                      /* `compare`: non-inferiority margin; 0 = default */
} proto_report_filters;

#define PROTO_OFFSETS_MAX 16
#define PROTO_OFFSET_MAX_S (24 * 3600)
#define PROTO_LANG_MAX 16

typedef struct proto_request {
	proto_kind kind;
	bool sync;                  /* answered inline rather than by event */
	/* create */
	const char *therapist_key;          /* or, in its place, ... */
	const char *therapist_token;        /* ... a Janus signed token (auth.h) */
	const char *client_code;
	visit_modality modality;
	const char *instr_in_session, *instr_end, *instr_therapist_end; /* NULL = default */
	int offsets_s[PROTO_OFFSETS_MAX];   /* schedule.in_session_at_s */
	int n_offsets;                      /* -1 = not given */
	int end_pulse;                      /* schedule.end_pulse: -1 not given, 0/1 */
	/* join */
	visit_role role;
	const char *visit_id;
	const char *invite;
	const char *rejoin_key;
	const char *supervisor_key;
	const char *supervisor_token;       /* in place of supervisor_key */
	bool research_consent;
	const char *language;               /* join: optional, e.g. "en", "de-AT" */
	/* configure: -1 = not given, 0/1 = value */
	int audio, video;
	/* pulse */
	const char *instrument;             /* NULL = the visit's default */
	visit_role target;                  /* client (default) or therapist */
	bool target_both;
	/* answer */
	const char *pulse_id;
	const json_t *responses;            /* an object; values checked later */
	bool final;                         /* default true */
	/* report (supervisor_key above), forget (supervisor_key, client_code);
	 * client_history: therapist_key/_token, visit_id, filters.limit (the
	 * top-level `limit`, PROTO_HISTORY_LIMIT_DEFAULT when not given) */
	proto_report_kind report_kind;
	proto_report_filters filters;
} proto_request;

/* Validate body into req. Returns 0, or -1 with err filled. */
int proto_parse(const json_t *body, proto_request *req, proto_error *err);

/* Validate a report's `filters` (NULL or JSON null: no filters) into out.
 * Keys: visit_id, therapist, client (pseudonymous codes), modality
 * ("video" | "in_person"), instrument, from, to (ISO 8601 text or
 * integer microseconds since the epoch; a date without a time in `to`
 * means the end of that day), research (bool), limit (1..1000000), margin
 * (a number > 0 and ≤ PROTO_MARGIN_MAX: score points). Any
 * other key is refused (474), so a misspelt filter never silently widens
 * a report. Returns 0, or -1 with err (473/474). */
int proto_report_filters_parse(const json_t *filters, proto_report_filters *out,
	proto_error *err);

/* A point in time as microseconds since the epoch (UTC): ISO 8601
 * "2024-05-01", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00.5+02:00"
 * (no zone: UTC), or an integer string of microseconds. A date alone is
 * its midnight, or with end_of_day the next midnight. Years 1970..9999.
 * Returns 0, or -1 if the text is none of these. */
int proto_parse_time(const char *text, bool end_of_day, int64_t *out_us);

/* "summary", "compare", "visits", "visit". */
const char *proto_report_kind_name(proto_report_kind k);

/* The slug of an error code ("unauthorized"), for logs and docs. */
const char *proto_error_slug(int code);

/* {"alliance":"error","error_code":…,"error":…} (new reference). */
json_t *proto_error_json(const proto_error *err);

/* Fill err; printf-style reason. Returns -1 for `return proto_fail(...)`. */
int proto_fail(proto_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
