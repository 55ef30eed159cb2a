/*
 * pulse.c — see pulse.h. Invariants kept by every function:
 * - at most one pulse per target is OPEN or PARTIAL;
 * - a pulse's status only moves forward (open -> partial -> answered, or
 *   open/partial -> dismissed/expired) and never leaves a final state.
 */
#include "pulse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US 1000000LL

static bool is_open(const pulse *p) {
	return p->status == PULSE_OPEN || p->status == PULSE_PARTIAL;
}

static bool is_final(pulse_status s) {
	return s == PULSE_ANSWERED || s == PULSE_DISMISSED || s == PULSE_EXPIRED;
}

void pulse_sched_init(pulse_sched *ps, const char *visit_id, const pulse_config *cfg) {
	memset(ps, 0, sizeof(*ps));
	ps->cfg = *cfg;
	if(ps->cfg.n_offsets < 0)
		ps->cfg.n_offsets = 0;
	if(ps->cfg.n_offsets > PULSE_OFFSETS_MAX)
		ps->cfg.n_offsets = PULSE_OFFSETS_MAX;
	snprintf(ps->visit_id, sizeof(ps->visit_id), "%s", visit_id);
}

void pulse_sched_free(pulse_sched *ps) {
	free(ps->pulses);
	ps->pulses = NULL;
	ps->n = ps->cap = 0;
}

void pulse_sched_live(pulse_sched *ps, int64_t now_us) {
	if(ps->live_since_us == 0)
		ps->live_since_us = now_us > 0 ? now_us : 1;
}

int pulse_sched_open_for(const pulse_sched *ps, visit_role role) {
	for(int i = 0; i < ps->n; i++)
		if(ps->pulses[i].target == role && is_open(&ps->pulses[i]))
			return i;
	return -1;
}

static int add(pulse_sched *ps, visit_role target, pulse_kind kind, pulse_trigger trigger,
		const char *instrument, int64_t now_us, int64_t expires_us) {
	if(kind == PULSE_IN_SESSION && ps->n_in_session >= PULSE_IN_SESSION_MAX)
		return -1;
	if(ps->n == ps->cap) {
		int cap = ps->cap ? ps->cap * 2 : 8;
		pulse *grown = realloc(ps->pulses, sizeof(pulse) * (size_t)cap);
		if(grown == NULL)
			return -1;
		ps->pulses = grown;
		ps->cap = cap;
	}
	if(kind == PULSE_IN_SESSION)
		ps->n_in_session++;
	pulse *p = &ps->pulses[ps->n];
	memset(p, 0, sizeof(*p));
	ps->seq++;
	snprintf(p->id, sizeof(p->id), "%s-%d", ps->visit_id, ps->seq);
	p->target = target;
	p->kind = kind;
	p->trigger = trigger;
	snprintf(p->instrument, sizeof(p->instrument), "%s", instrument ? instrument : "");
	p->status = PULSE_OPEN;
	p->created_us = now_us;
	p->expires_us = expires_us;
	p->status_us = now_us;
	return ps->n++;
}

/* every offset that is already due collapses into one pulse (or one skip) */
static void collapse_due(pulse_sched *ps, int64_t now_us) {
	while(ps->next_offset < ps->cfg.n_offsets &&
			ps->live_since_us + (int64_t)ps->cfg.offsets_s[ps->next_offset] * US <= now_us)
		ps->next_offset++;
}

int pulse_sched_tick(pulse_sched *ps, int64_t now_us, bool client_present,
		pulse_action *out, int max) {
	int k = 0;
	for(int i = 0; i < ps->n && k < max; i++) {
		pulse *p = &ps->pulses[i];
		if(is_open(p) && now_us >= p->expires_us) {
			if(p->inflight > 0) {          /* the answer's outcome decides */
				p->expire_pending = true;
				continue;
			}
			p->status = PULSE_EXPIRED;
			p->status_us = now_us;
			out[k].type = PULSE_ACT_EXPIRE;
			out[k++].index = i;
		}
	}
	if(k >= max || ps->ended_us || ps->live_since_us == 0 || ps->next_offset >= ps->cfg.n_offsets)
		return k;
	int64_t due = ps->live_since_us + (int64_t)ps->cfg.offsets_s[ps->next_offset] * US;
	if(now_us < due || !client_present || pulse_sched_open_for(ps, VISIT_ROLE_CLIENT) >= 0)
		return k;
	/* a frozen picture: wait for stable video, or give up after the bound */
	int64_t held = 0;
	if(ps->cfg.hold_stable_s > 0) {
		/* since 0: stable all along (no call of pulse_sched_media yet) */
		bool stable = ps->media_stable_since_us == 0 || (ps->media_stable_since_us != PULSE_MEDIA_UNSTABLE &&
			now_us - ps->media_stable_since_us >= (int64_t)ps->cfg.hold_stable_s * US);
		if(!stable) {
			if(ps->held_since_us == 0)
				ps->held_since_us = now_us > 0 ? now_us : 1;
			if(ps->cfg.hold_max_s <= 0 || now_us - ps->held_since_us < (int64_t)ps->cfg.hold_max_s * US)
				return k;
			int first = ps->next_offset;
			collapse_due(ps, now_us);
			out[k].type = PULSE_ACT_SKIP;
			out[k].index = -1;
			out[k].offset_s = ps->cfg.offsets_s[first];
			out[k].n_offsets = ps->next_offset - first;
			out[k++].held_us = now_us - ps->held_since_us;
			ps->held_since_us = 0;
			ps->n_skipped++;
			return k;
		}
		if(ps->held_since_us)
			held = now_us - ps->held_since_us;
		ps->held_since_us = 0;
	}
	collapse_due(ps, now_us);
	int i = add(ps, VISIT_ROLE_CLIENT, PULSE_IN_SESSION, PULSE_TRIGGER_SCHEDULE,
		ps->cfg.in_session, now_us, now_us + (int64_t)ps->cfg.expires_in_s * US);
	if(i >= 0) {
		ps->pulses[i].held_us = held;
		out[k].type = PULSE_ACT_SEND;
		out[k++].index = i;
	}
	return k;
}

void pulse_sched_media(pulse_sched *ps, int64_t stable_since_us) {
	ps->media_stable_since_us = stable_since_us < 0 ? PULSE_MEDIA_UNSTABLE : stable_since_us;
}

pulse_result pulse_sched_trigger(pulse_sched *ps, visit_role target, const char *instrument,
		pulse_trigger trigger, int64_t now_us, int *index) {
	*index = -1;
	if(target != VISIT_ROLE_CLIENT && target != VISIT_ROLE_THERAPIST)
		return PULSE_ERR_NOT_YOURS;
	if(ps->ended_us)
		return PULSE_ERR_ENDED;
	if(ps->live_since_us == 0)
		return PULSE_ERR_NOT_LIVE;
	if(pulse_sched_open_for(ps, target) >= 0)
		return PULSE_ERR_PENDING;
	if(ps->n_in_session >= PULSE_IN_SESSION_MAX)
		return PULSE_ERR_FULL;
	const char *instr = instrument;
	if(instr == NULL || *instr == '\0')
		instr = ps->cfg.in_session;
	*index = add(ps, target, PULSE_IN_SESSION, trigger, instr, now_us,
		now_us + (int64_t)ps->cfg.expires_in_s * US);
	return *index >= 0 ? PULSE_OK : PULSE_ERR_FULL;
}

void pulse_sched_end(pulse_sched *ps, int64_t now_us, bool with_end_pulses,
		int *expired, int *n_expired, int created[2], int *n_created) {
	*n_expired = 0;
	*n_created = 0;
	if(ps->ended_us)
		return;
	ps->ended_us = now_us > 0 ? now_us : 1;
	for(int i = 0; i < ps->n; i++) {
		pulse *p = &ps->pulses[i];
		if(!is_open(p))
			continue;
		if(p->inflight > 0) {
			p->expire_pending = true;
			continue;
		}
		p->status = PULSE_EXPIRED;
		p->status_us = now_us;
		expired[(*n_expired)++] = i;
	}
	if(!ps->cfg.end_pulse || !with_end_pulses)
		return;
	int64_t until = now_us + (int64_t)ps->cfg.end_grace_s * US;
	int i = add(ps, VISIT_ROLE_CLIENT, PULSE_END, PULSE_TRIGGER_END, ps->cfg.end, now_us, until);
	if(i >= 0)
		created[(*n_created)++] = i;
	if(ps->cfg.therapist_end[0]) {
		i = add(ps, VISIT_ROLE_THERAPIST, PULSE_END, PULSE_TRIGGER_END, ps->cfg.therapist_end, now_us, until);
		if(i >= 0)
			created[(*n_created)++] = i;
	}
}

pulse_result pulse_sched_check(const pulse_sched *ps, const char *id, visit_role role,
		int64_t now_us, int *index) {
	*index = -1;
	if(id == NULL)
		return PULSE_ERR_UNKNOWN;
	for(int i = 0; i < ps->n; i++) {
		const pulse *p = &ps->pulses[i];
		if(strcmp(p->id, id) != 0)
			continue;
		if(p->target != role)
			return PULSE_ERR_NOT_YOURS;
		if(p->status == PULSE_ANSWERED || p->status == PULSE_DISMISSED)
			return PULSE_ERR_ALREADY_ANSWERED;
		if(p->status == PULSE_EXPIRED || p->expire_pending || now_us >= p->expires_us)
			return PULSE_ERR_EXPIRED;
		*index = i;
		return PULSE_OK;
	}
	return PULSE_ERR_UNKNOWN;
}

void pulse_sched_mark(pulse_sched *ps, int index, pulse_status status, int64_t now_us) {
	if(index < 0 || index >= ps->n)
		return;
	pulse *p = &ps->pulses[index];
	if(is_final(p->status))
		return;           /* final states are final */
	if(status == PULSE_OPEN)
		return;           /* nothing goes back to open */
	p->status = status;
	p->status_us = now_us;
}

void pulse_sched_begin(pulse_sched *ps, int index) {
	if(index >= 0 && index < ps->n)
		ps->pulses[index].inflight++;
}

bool pulse_sched_settle(pulse_sched *ps, int index, pulse_status status, int64_t now_us) {
	if(index < 0 || index >= ps->n)
		return false;
	pulse *p = &ps->pulses[index];
	if(p->inflight > 0)
		p->inflight--;
	if(status != PULSE_OPEN)
		pulse_sched_mark(ps, index, status, now_us);
	if(p->inflight > 0 || !p->expire_pending || !is_open(p))
		return false;
	p->expire_pending = false;
	p->status = PULSE_EXPIRED;
	p->status_us = now_us;
	return true;
}

void pulse_sched_delivered(pulse_sched *ps, int index, int64_t now_us) {
	if(index < 0 || index >= ps->n)
		return;
	if(ps->pulses[index].delivered_us == 0)
		ps->pulses[index].delivered_us = now_us > 0 ? now_us : 1;
}

int pulse_sched_undelivered(const pulse_sched *ps, visit_role role, int *out, int max) {
	int k = 0;
	for(int i = 0; i < ps->n && k < max; i++) {
		const pulse *p = &ps->pulses[i];
		if(p->target == role && is_open(p) && p->delivered_us == 0)
			out[k++] = i;
	}
	return k;
}

bool pulse_sched_any_open(const pulse_sched *ps, int64_t now_us) {
	for(int i = 0; i < ps->n; i++)
		if(is_open(&ps->pulses[i]) && now_us < ps->pulses[i].expires_us)
			return true;
	return false;
}

const char *pulse_status_name(pulse_status s) {
	switch(s) {
		case PULSE_OPEN: return "open";
		case PULSE_PARTIAL: return "partial";
		case PULSE_ANSWERED: return "answered";
		case PULSE_DISMISSED: return "dismissed";
		case PULSE_EXPIRED: return "expired";
	}
	return "unknown";
}

const char *pulse_kind_name(pulse_kind k) {
	return k == PULSE_END ? "end" : "in_session";
}

const char *pulse_trigger_name(pulse_trigger t) {
	switch(t) {
		case PULSE_TRIGGER_SCHEDULE: return "schedule";
		case PULSE_TRIGGER_THERAPIST: return "therapist";
		case PULSE_TRIGGER_END: return "end";
		case PULSE_TRIGGER_QUALITY: return "quality";
	}
	return "unknown";
}

const char *pulse_result_slug(pulse_result r) {
	switch(r) {
		case PULSE_OK: return "ok";
		case PULSE_ERR_UNKNOWN: return "unknown_pulse";
		case PULSE_ERR_NOT_YOURS: return "not_yours";
		case PULSE_ERR_EXPIRED: return "expired";
		case PULSE_ERR_ALREADY_ANSWERED: return "already_answered";
		case PULSE_ERR_PENDING: return "pulse_pending";
		case PULSE_ERR_ENDED: return "visit_ended";
		case PULSE_ERR_NOT_LIVE: return "not_live";
		case PULSE_ERR_FULL: return "too_many_pulses";
		case PULSE_ERR_ABSENT: return "absent";
	}
	return "unknown";
}
