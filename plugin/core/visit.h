/*
 * visit.h — the life of one therapy visit, as a pure state machine.
 *
 * A visit goes created -> waiting -> live -> ended -> closed (PROTOCOL.md).
 * This module decides whether a participant may join, be admitted, send
 * media, leave or end the visit, and records what happened; it knows
 * nothing about Janus handles, threads or clocks (times are passed in).
 * The Janus shell (alliance_plugin.c) owns the locking and maps roles to
 * handles.
 *
 * Invariants:
 * - at most one therapist and one client are present at a time; a join
 *   with valid credentials for a role that is present is a takeover (the
 *   shell moves the seat to the new handle), never a refusal;
 * - the invite digest is consumed by the first client join; after that the
 *   client proves identity with the re-join key issued at that join, until
 *   the therapist asks for a new invite (visit_reinvite);
 * - once admitted, a client stays admitted for the life of the visit, so a
 *   re-join after a network drop goes straight back to `live`;
 * - after `end` (state ENDED) therapist and client may still join, for the
 *   end pulses, until the shell closes the visit at the end of the grace;
 *   nothing else is possible then (no admission, no media, no observers);
 * - a refused transition changes nothing (every check precedes every write);
 * - every visit that closes has an end reason (why it ended).
 *
 * Times are the caller's clock, passed in; the shell passes the monotonic
 * clock, so that durations (idle, age, end grace) survive wall-clock jumps,
 * and converts to wall-clock time for what it stores.
 */
#ifndef ALLIANCE_VISIT_H
#define ALLIANCE_VISIT_H

#include <stdbool.h>
#include <stdint.h>
#include "auth.h"

typedef enum visit_role {
	VISIT_ROLE_NONE = 0,
	VISIT_ROLE_THERAPIST,
	VISIT_ROLE_CLIENT,
	VISIT_ROLE_OBSERVER,
} visit_role;

typedef enum visit_modality {
	VISIT_MODALITY_VIDEO = 0,
	VISIT_MODALITY_IN_PERSON,
} visit_modality;

typedef enum visit_state {
	VISIT_CREATED = 0,   /* no client has arrived yet */
	VISIT_WAITING,       /* the client is in the waiting room */
	VISIT_LIVE,          /* the client was admitted */
	VISIT_ENDED,         /* the therapist ended it; answers still accepted */
	VISIT_CLOSED,        /* nothing more is accepted */
} visit_state;

/* Why a visit ended (PROTOCOL.md v1.1, `end_reason`). */
typedef enum visit_end_reason {
	VISIT_END_NONE = 0,          /* not ended yet */
	VISIT_END_THERAPIST,         /* the `end` request */
	VISIT_END_IDLE,              /* nobody present for idle_close_s */
	VISIT_END_MAX_DURATION,      /* older than max_visit_s */
	VISIT_END_SHUTDOWN,          /* Janus stopped or the plugin was unloaded */
	VISIT_END_INTERRUPTED,       /* found open in the store at start-up */
} visit_end_reason;

/* Outcome of a transition; VISIT_OK or the reason it was refused. The shell
 * maps these to the API error codes of docs/api.md. */
typedef enum visit_result {
	VISIT_OK = 0,
	VISIT_ERR_UNAUTHORIZED,     /* key of another therapist */
	VISIT_ERR_INVALID_INVITE,   /* unknown invite */
	VISIT_ERR_INVITE_USED,      /* invite used, no/wrong re-join key */
	VISIT_ERR_FORBIDDEN,        /* role may not do this */
	VISIT_ERR_NOT_ADMITTED,     /* client media before admission */
	VISIT_ERR_WRONG_STATE,      /* not allowed in the current state */
	VISIT_ERR_CLOSED,           /* the visit is closed */
	VISIT_ERR_NO_CONSENT,       /* observer without client consent */
	VISIT_ERR_FULL,             /* VISIT_OBSERVERS_MAX observers already watch */
} visit_result;

/* At most this many observers watch one visit at a time (each receives
 * both participants' media: the relay's fan-out per packet is bounded). */
#define VISIT_OBSERVERS_MAX 4

#define VISIT_ID_MAX 48

typedef struct visit {
	char id[VISIT_ID_MAX + 1];
	char therapist_code[AUTH_CODE_MAX + 1];
	char client_code[AUTH_CODE_MAX + 1];
	visit_modality modality;
	visit_state state;
	auth_digest invite;        /* digest of the client's invite */
	bool invite_used;
	auth_digest rejoin;        /* digest of the client's re-join key */
	bool therapist_present;
	bool client_present;
	bool client_admitted;      /* sticky: admitted once, admitted for good */
	bool research_consent;     /* as given at the client's latest join */
	int observers;
	visit_end_reason end_reason;
	int64_t created_at_us, admitted_at_us, ended_at_us;
	int64_t empty_since_us;    /* neither therapist nor client present since (0: someone is) */
} visit;

/* Start a visit in state CREATED. Codes must already be validated. */
void visit_init(visit *v, const char *id, const char *therapist_code,
	const char *client_code, visit_modality modality,
	const auth_digest *invite, int64_t now_us);

/* The therapist joins; therapist_code is what their key mapped to.
 * *takeover is set when a therapist was already present: the caller moves
 * the seat from the old handle to the new one. */
visit_result visit_join_therapist(visit *v, const char *therapist_code,
	bool *takeover);

/* The client joins with the invite (first time) or invite + re-join key.
 * On a first join, *first_join is set and the caller must issue a re-join
 * key and store its digest with visit_set_rejoin(). *takeover as for the
 * therapist. */
visit_result visit_join_client(visit *v, const char *invite,
	const char *rejoin_key, bool research_consent, bool *first_join,
	bool *takeover);
void visit_set_rejoin(visit *v, const auth_digest *rejoin);

/* The therapist replaces the client's invite (another device, a lost
 * tab): the old invite and re-join key stop working; the next client join
 * with the new one is a first join. Only before the visit ended. */
visit_result visit_reinvite(visit *v, visit_role who, const auth_digest *invite);

/* An observer (supervisor) joins, only with the client's research consent,
 * and only while fewer than VISIT_OBSERVERS_MAX watch. */
visit_result visit_join_observer(visit *v);

/* Only the therapist may admit, and only a waiting client. */
visit_result visit_admit(visit *v, visit_role who, int64_t now_us);

/* May this role negotiate media now? (An observer: a receive-only
 * PeerConnection, any time before the visit ends.) */
visit_result visit_may_configure(const visit *v, visit_role who);

/* Only the therapist may end; ends a created, waiting or live visit. */
visit_result visit_end(visit *v, visit_role who, int64_t now_us);

/* The plugin ends the visit itself (idle, max duration, shutdown,
 * interrupted): VISIT_ERR_WRONG_STATE if it has already ended. */
visit_result visit_end_by(visit *v, visit_end_reason reason, int64_t now_us);

/* Close: nothing more is accepted. A visit that had not ended ends now,
 * for `reason`; one that had keeps its end reason. */
void visit_close(visit *v, visit_end_reason reason, int64_t now_us);

/* A participant leaves (request, hangup of the handle, or session gone). */
void visit_leave(visit *v, visit_role who, int64_t now_us);

/* Has nobody (therapist or client) been present for idle_us (> 0)? */
bool visit_idle_due(const visit *v, int64_t now_us, int64_t idle_us);

/* Is a visit that has not ended yet older than max_us (> 0)? */
bool visit_age_due(const visit *v, int64_t now_us, int64_t max_us);

/* Is media relayed between therapist and client right now? */
bool visit_relaying(const visit *v);

/* Do observers receive the participants' media right now? Only while the
 * visit is live and the client's consent stands (each participant who is
 * present is watched, even while the other is away). */
bool visit_observed(const visit *v);

const char *visit_state_name(visit_state s);
const char *visit_role_name(visit_role r);
const char *visit_modality_name(visit_modality m);
const char *visit_end_reason_name(visit_end_reason r);   /* NULL for NONE */

#endif
