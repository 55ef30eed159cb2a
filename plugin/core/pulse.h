/*
 * pulse.h — when pulse checks go out, and which answers they still accept:
 * the pulse scheduler of one visit, as a pure state machine driven by `now`.
 *
 * A visit's schedule (docs/api.md) lists in-session offsets in seconds,
 * counted from the moment the visit first went live. At each offset the
 * client gets the in-session instrument, provided they are present and
 * have no pulse open; offsets that pass while waiting collapse into one
 * pulse (never a burst). The therapist may trigger a pulse at any time,
 * for the client, themselves (mirror) or both, with the same rule: never
 * two open pulses for one participant. An open pulse expires
 * `expires_in_s` after it was created.
 *
 * `end` expires every open in-session pulse and creates the end pulses:
 * the end instrument for the client and the mirror instrument for the
 * therapist, each open until end + end_grace_s. A participant who is
 * absent gets theirs when they re-join (pulse_sched_undelivered()).
 *
 * Answers: pulse_sched_check() says whether a pulse accepts an answer from
 * a role now; the shell validates the responses against the instrument,
 * stores them: pulse_sched_begin() before the write is queued, then
 * pulse_sched_settle() with the outcome once the store answered. While an
 * answer is in flight the pulse does not expire: its expiry (or `end`)
 * waits for the outcome, so an answer that was accepted is never
 * contradicted by a `pulse_expired`. Pulse ids are "<visit_id>-<n>",
 * unique per visit.
 *
 * A frozen picture: a scheduled pulse that falls due while the client's
 * incoming video is not stable (frozen, stalled, reconnecting: the shell
 * says so with pulse_sched_media()) is held until that video has been
 * stable for hold_stable_s, then goes out (pulse.held_us says how long it
 * waited); if it is still held hold_max_s after it was first held, it is
 * skipped (PULSE_ACT_SKIP: no pulse is created, the offsets it stood for
 * are used up). Only scheduled pulses wait: the therapist's own and the
 * quality-triggered technology item go out at once, as before. With
 * hold_stable_s 0 nothing is held.
 *
 * Capacity: at most PULSE_IN_SESSION_MAX in-session pulses per visit
 * (PULSE_ERR_FULL beyond); the end pulses are always created, however many
 * in-session pulses came before.
 *
 * Pure: no Janus, no clock of its own (the shell passes the monotonic
 * clock). The pulse array grows as needed; pulse_sched_free() releases it.
 */
#ifndef ALLIANCE_PULSE_H
#define ALLIANCE_PULSE_H

#include <stdbool.h>
#include <stdint.h>
#include "visit.h"

#define PULSE_IN_SESSION_MAX 1000 /* in-session pulses per visit */
#define PULSE_OFFSETS_MAX 16
#define PULSE_ID_MAX (VISIT_ID_MAX + 16)
#define PULSE_INSTRUMENT_MAX 48
#define PULSE_MEDIA_UNSTABLE (-1)  /* pulse_sched_media(): not stable now */

typedef enum pulse_kind { PULSE_IN_SESSION = 0, PULSE_END } pulse_kind;

typedef enum pulse_trigger {
	PULSE_TRIGGER_SCHEDULE = 0,
	PULSE_TRIGGER_THERAPIST,
	PULSE_TRIGGER_END,
	PULSE_TRIGGER_QUALITY,
} pulse_trigger;

typedef enum pulse_status {
	PULSE_OPEN = 0,      /* created; may or may not have been delivered yet */
	PULSE_PARTIAL,       /* a partial answer is stored */
	PULSE_ANSWERED,      /* the final answer is stored */
	PULSE_DISMISSED,     /* the participant chose "Not now" */
	PULSE_EXPIRED,
} pulse_status;

typedef enum pulse_result {
	PULSE_OK = 0,
	PULSE_ERR_UNKNOWN,           /* no such pulse in this visit */
	PULSE_ERR_NOT_YOURS,         /* the pulse is for the other participant */
	PULSE_ERR_EXPIRED,
	PULSE_ERR_ALREADY_ANSWERED,  /* final answer or dismissal stored */
	PULSE_ERR_PENDING,           /* the target already has an open pulse */
	PULSE_ERR_ENDED,             /* no new in-session pulses after `end` */
	PULSE_ERR_NOT_LIVE,          /* no pulses before the visit went live */
	PULSE_ERR_FULL,              /* PULSE_MAX reached */
	PULSE_ERR_ABSENT,            /* the target is not in the visit */
} pulse_result;

typedef struct pulse {
	char id[PULSE_ID_MAX + 1];
	visit_role target;
	pulse_kind kind;
	pulse_trigger trigger;
	char instrument[PULSE_INSTRUMENT_MAX + 1];
	pulse_status status;
	int64_t created_us, expires_us;
	int64_t delivered_us;        /* 0 until the shell delivered it */
	int64_t status_us;
	int64_t held_us;             /* scheduled: how long it waited for a stable picture */
	int inflight;                /* answers queued for the store, not yet settled */
	bool expire_pending;         /* due to expire once the answers in flight settle */
} pulse;

typedef struct pulse_config {
	int offsets_s[PULSE_OFFSETS_MAX];   /* in-session offsets from going live */
	int n_offsets;
	int expires_in_s;                   /* in-session pulses */
	int end_grace_s;                    /* end pulses */
	bool end_pulse;                     /* send end pulses at `end` */
	int hold_stable_s;                  /* scheduled pulses wait for this much stable video (0: never) */
	int hold_max_s;                     /* ... at most this long, then skipped (<= 0: no bound) */
	char in_session[PULSE_INSTRUMENT_MAX + 1];
	char end[PULSE_INSTRUMENT_MAX + 1];
	char therapist_end[PULSE_INSTRUMENT_MAX + 1];
} pulse_config;

typedef struct pulse_sched {
	pulse_config cfg;
	char visit_id[VISIT_ID_MAX + 1];
	int64_t live_since_us;               /* 0 until the visit first went live */
	int64_t ended_us;                    /* 0 until `end` */
	int next_offset;
	int seq;                             /* last pulse number used */
	pulse *pulses;                       /* [n], grown as needed */
	int n, cap;
	int n_in_session;
	int64_t media_stable_since_us;       /* the client's incoming video; PULSE_MEDIA_UNSTABLE */
	int64_t held_since_us;               /* 0 unless a due scheduled pulse is held */
	int n_skipped;                       /* scheduled pulses skipped after hold_max_s */
} pulse_sched;

/* What pulse_sched_tick() asks the shell to do. */
typedef enum pulse_action_type { PULSE_ACT_SEND = 1, PULSE_ACT_EXPIRE, PULSE_ACT_SKIP } pulse_action_type;
typedef struct pulse_action {
	pulse_action_type type;
	int index;                           /* into ps->pulses; -1 for SKIP */
	/* SKIP: the first offset skipped, how many, and how long it was held */
	int offset_s, n_offsets;
	int64_t held_us;
} pulse_action;

void pulse_sched_init(pulse_sched *ps, const char *visit_id, const pulse_config *cfg);
void pulse_sched_free(pulse_sched *ps);

/* The visit went live (first admission); later calls are ignored. */
void pulse_sched_live(pulse_sched *ps, int64_t now_us);

/* The client's incoming video has been stable (no freeze, stall or
 * reconnect) since stable_since_us, or is not stable now
 * (PULSE_MEDIA_UNSTABLE). Until the first call: stable all along. */
void pulse_sched_media(pulse_sched *ps, int64_t stable_since_us);

/* Advance to now: expire overdue pulses, create due scheduled pulses.
 * client_present: whether the client is in the visit to receive one.
 * A due scheduled pulse may be held or skipped (see the top).
 * Returns the number of actions written to out (at most max). */
int pulse_sched_tick(pulse_sched *ps, int64_t now_us, bool client_present,
	pulse_action *out, int max);

/* The therapist asks for a pulse for `target` (client or therapist), with an
 * instrument id or NULL for the visit's default for that target. On
 * PULSE_OK, *index is the new pulse. */
pulse_result pulse_sched_trigger(pulse_sched *ps, visit_role target, const char *instrument,
	pulse_trigger trigger, int64_t now_us, int *index);

/* The visit ended: expire open in-session pulses (their indexes go to
 * expired[], which must hold ps->n entries; count in *n_expired; one with
 * an answer in flight expires when it settles, if it is still open then)
 * and, if with_end_pulses, create the end pulses (indexes in created[],
 * count in *n_created). */
void pulse_sched_end(pulse_sched *ps, int64_t now_us, bool with_end_pulses,
	int *expired, int *n_expired, int created[2], int *n_created);

/* May `role` answer (or dismiss) pulse `id` now? On PULSE_OK *index is it. */
pulse_result pulse_sched_check(const pulse_sched *ps, const char *id, visit_role role,
	int64_t now_us, int *index);

/* After the store committed: record a partial/final answer or a dismissal. */
void pulse_sched_mark(pulse_sched *ps, int index, pulse_status status, int64_t now_us);

/* An answer (or dismissal) for pulse `index` was queued for the store. */
void pulse_sched_begin(pulse_sched *ps, int index);

/* The store answered for one answer begun with pulse_sched_begin():
 * status is what it committed (PULSE_PARTIAL, PULSE_ANSWERED,
 * PULSE_DISMISSED) or PULSE_OPEN if the write failed. Returns true if the
 * pulse expired just now (its expiry or `end` waited for this answer and
 * it is still open): the shell then stores and announces the expiry. */
bool pulse_sched_settle(pulse_sched *ps, int index, pulse_status status, int64_t now_us);

/* The shell delivered pulse `index` (data channel or event). */
void pulse_sched_delivered(pulse_sched *ps, int index, int64_t now_us);

/* Open pulses for role that were never delivered (re-join); returns count. */
int pulse_sched_undelivered(const pulse_sched *ps, visit_role role, int *out, int max);

/* Index of role's open (or partial) pulse, or -1. */
int pulse_sched_open_for(const pulse_sched *ps, visit_role role);

/* Is anything still answerable at now (end pulses within the grace)? */
bool pulse_sched_any_open(const pulse_sched *ps, int64_t now_us);

const char *pulse_status_name(pulse_status s);
const char *pulse_kind_name(pulse_kind k);
const char *pulse_trigger_name(pulse_trigger t);
const char *pulse_result_slug(pulse_result r);

#endif
