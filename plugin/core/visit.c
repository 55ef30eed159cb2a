/*
 * visit.c — see visit.h. Every function checks first and writes last, so
 * a refusal leaves the visit exactly as it was.
 */
#include "visit.h"

#include <string.h>
#include <glib.h>

void visit_init(visit *v, const char *id, const char *therapist_code,
		const char *client_code, visit_modality modality,
		const auth_digest *invite, int64_t now_us) {
	memset(v, 0, sizeof(*v));
	g_strlcpy(v->id, id, sizeof(v->id));
	g_strlcpy(v->therapist_code, therapist_code, sizeof(v->therapist_code));
	g_strlcpy(v->client_code, client_code, sizeof(v->client_code));
	v->modality = modality;
	v->state = VISIT_CREATED;
	v->invite = *invite;
	v->created_at_us = now_us;
	v->empty_since_us = now_us > 0 ? now_us : 1;
}

static void someone_arrived(visit *v) {
	v->empty_since_us = 0;
}

/* Before `end`: everything is possible. */
static bool running(const visit *v) {
	return v->state == VISIT_CREATED || v->state == VISIT_WAITING || v->state == VISIT_LIVE;
}

/* Therapist and client may (re-)join until the visit closes: after `end`,
 * within the grace, to answer their end pulses. */
static bool open_for_joins(const visit *v) {
	return running(v) || v->state == VISIT_ENDED;
}

visit_result visit_join_therapist(visit *v, const char *therapist_code,
		bool *takeover) {
	*takeover = false;
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(therapist_code == NULL || strcmp(therapist_code, v->therapist_code) != 0)
		return VISIT_ERR_UNAUTHORIZED;
	*takeover = v->therapist_present;
	v->therapist_present = true;
	someone_arrived(v);
	return VISIT_OK;
}

visit_result visit_join_client(visit *v, const char *invite,
		const char *rejoin_key, bool research_consent, bool *first_join,
		bool *takeover) {
	*first_join = false;
	*takeover = false;
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(invite == NULL)
		return VISIT_ERR_INVALID_INVITE;
	auth_digest d;
	auth_digest_of(invite, &d);
	if(!auth_digest_equal(&d, &v->invite))
		return VISIT_ERR_INVALID_INVITE;
	if(v->invite_used) {
		if(rejoin_key == NULL)
			return VISIT_ERR_INVITE_USED;
		auth_digest r;
		auth_digest_of(rejoin_key, &r);
		if(!auth_digest_equal(&r, &v->rejoin))
			return VISIT_ERR_INVITE_USED;
	}
	/* all checks passed: write */
	*first_join = !v->invite_used;
	*takeover = v->client_present;
	v->invite_used = true;
	v->client_present = true;
	someone_arrived(v);
	v->research_consent = research_consent;
	if(v->state == VISIT_ENDED)
		return VISIT_OK;           /* back for the end pulse: no media */
	if(v->client_admitted)
		v->state = VISIT_LIVE;
	else if(v->state == VISIT_CREATED)
		v->state = VISIT_WAITING;
	return VISIT_OK;
}

void visit_set_rejoin(visit *v, const auth_digest *rejoin) {
	v->rejoin = *rejoin;
}

visit_result visit_reinvite(visit *v, visit_role who, const auth_digest *invite) {
	if(who != VISIT_ROLE_THERAPIST)
		return VISIT_ERR_FORBIDDEN;
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(v->state == VISIT_ENDED)
		return VISIT_ERR_WRONG_STATE;
	v->invite = *invite;
	v->invite_used = false;
	memset(&v->rejoin, 0, sizeof(v->rejoin));
	return VISIT_OK;
}

visit_result visit_join_observer(visit *v) {
	if(!running(v))
		return v->state == VISIT_ENDED ? VISIT_ERR_WRONG_STATE : VISIT_ERR_CLOSED;
	if(!v->invite_used || !v->research_consent)
		return VISIT_ERR_NO_CONSENT;
	if(v->observers >= VISIT_OBSERVERS_MAX)
		return VISIT_ERR_FULL;
	v->observers++;
	return VISIT_OK;
}

visit_result visit_admit(visit *v, visit_role who, int64_t now_us) {
	if(who != VISIT_ROLE_THERAPIST)
		return VISIT_ERR_FORBIDDEN;
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(v->state != VISIT_WAITING || !v->client_present)
		return VISIT_ERR_WRONG_STATE;
	v->state = VISIT_LIVE;
	v->client_admitted = true;
	if(v->admitted_at_us == 0)
		v->admitted_at_us = now_us;
	return VISIT_OK;
}

visit_result visit_may_configure(const visit *v, visit_role who) {
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(v->state == VISIT_ENDED)
		return VISIT_ERR_WRONG_STATE;   /* media stopped at `end` */
	switch(who) {
		case VISIT_ROLE_THERAPIST:
			return VISIT_OK;   /* camera may be up while the client waits */
		case VISIT_ROLE_CLIENT:
			return v->client_admitted ? VISIT_OK : VISIT_ERR_NOT_ADMITTED;
		case VISIT_ROLE_OBSERVER:
			return VISIT_OK;   /* receive-only: media flows once the visit is live */
		default:
			return VISIT_ERR_FORBIDDEN;
	}
}

visit_result visit_end(visit *v, visit_role who, int64_t now_us) {
	if(who != VISIT_ROLE_THERAPIST)
		return VISIT_ERR_FORBIDDEN;
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(v->state == VISIT_ENDED)
		return VISIT_ERR_WRONG_STATE;   /* already ended */
	return visit_end_by(v, VISIT_END_THERAPIST, now_us);
}

visit_result visit_end_by(visit *v, visit_end_reason reason, int64_t now_us) {
	if(!open_for_joins(v))
		return VISIT_ERR_CLOSED;
	if(v->state == VISIT_ENDED || reason == VISIT_END_NONE)
		return VISIT_ERR_WRONG_STATE;
	v->state = VISIT_ENDED;
	v->ended_at_us = now_us;
	v->end_reason = reason;
	return VISIT_OK;
}

void visit_close(visit *v, visit_end_reason reason, int64_t now_us) {
	if(v->state != VISIT_ENDED && v->state != VISIT_CLOSED) {
		v->ended_at_us = now_us;
		v->end_reason = reason;
	}
	if(v->end_reason == VISIT_END_NONE)
		v->end_reason = reason;
	v->state = VISIT_CLOSED;
	v->therapist_present = false;
	v->client_present = false;
	v->observers = 0;
}

void visit_leave(visit *v, visit_role who, int64_t now_us) {
	switch(who) {
		case VISIT_ROLE_THERAPIST: v->therapist_present = false; break;
		case VISIT_ROLE_CLIENT: v->client_present = false; break;
		case VISIT_ROLE_OBSERVER: if(v->observers > 0) v->observers--; break;
		default: break;
	}
	if(!v->therapist_present && !v->client_present && v->empty_since_us == 0)
		v->empty_since_us = now_us > 0 ? now_us : 1;
}

bool visit_idle_due(const visit *v, int64_t now_us, int64_t idle_us) {
	return idle_us > 0 && v->state != VISIT_CLOSED && !v->therapist_present &&
		!v->client_present && v->empty_since_us != 0 && now_us - v->empty_since_us >= idle_us;
}

bool visit_age_due(const visit *v, int64_t now_us, int64_t max_us) {
	return max_us > 0 && running(v) && now_us - v->created_at_us >= max_us;
}

bool visit_relaying(const visit *v) {
	return v->state == VISIT_LIVE && v->therapist_present && v->client_present;
}

bool visit_observed(const visit *v) {
	return v->state == VISIT_LIVE && v->research_consent && v->observers > 0;
}

const char *visit_state_name(visit_state s) {
	switch(s) {
		case VISIT_CREATED: return "created";
		case VISIT_WAITING: return "waiting";
		case VISIT_LIVE: return "live";
		case VISIT_ENDED: return "ended";
		case VISIT_CLOSED: return "closed";
	}
	return "unknown";
}

const char *visit_role_name(visit_role r) {
	switch(r) {
		case VISIT_ROLE_THERAPIST: return "therapist";
		case VISIT_ROLE_CLIENT: return "client";
		case VISIT_ROLE_OBSERVER: return "observer";
		default: return "none";
	}
}

const char *visit_end_reason_name(visit_end_reason r) {
	switch(r) {
		case VISIT_END_THERAPIST: return "therapist";
		case VISIT_END_IDLE: return "idle";
		case VISIT_END_MAX_DURATION: return "max_duration";
		case VISIT_END_SHUTDOWN: return "shutdown";
		case VISIT_END_INTERRUPTED: return "interrupted";
		case VISIT_END_NONE: break;
	}
	return NULL;
}

const char *visit_modality_name(visit_modality m) {
	return m == VISIT_MODALITY_IN_PERSON ? "in_person" : "video";
}
