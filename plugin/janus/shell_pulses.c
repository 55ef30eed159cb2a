/*
 * shell_pulses.c — pulses of janus.plugin.alliance on the Janus side:
 * delivery (data channel, or a Janus event when there is none), the timer
 * that drives each visit's scheduler, answers and dismissals on their way
 * to the store, acknowledgements after the commit, and alerts.
 *
 * Decisions are made by the pure modules — pulse.c (when, and whether an
 * answer is still accepted) and instrument.c (whether the values are valid,
 * the scores, the alert rules) — and facts go to the store (store.h). This
 * file moves data between them and Janus.
 *
 * The answer path, from either the data channel or the `answer` request:
 *   1. under visits_mutex: pulse_sched_check, instrument_answer_merge into a
 *      copy of the partial answer so far, completeness and scores for a
 *      final answer; nothing changes if any check fails;
 *   2. the whole merged answer goes to the store (one transaction);
 *   3. on the writer thread, after the commit: the scheduler records it,
 *      the participant gets `ack` (or the `answer` request its reply), the
 *      event handlers get the scores, and a client's final answer is
 *      checked against the cutoff and drop rules (the drop baseline is read
 *      from the store, excluding this visit).
 * A second final answer is refused by the scheduler and, should two race,
 * by the store inside the transaction.
 */
#include "shell.h"
#include "dcmsg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

static ap_plugin *ap;

void shell_pulses_init(ap_plugin *plugin) {
	ap = plugin;
}

#define SYNC_ANSWER_WAIT_US (10 * G_USEC_PER_SEC)

/* --- delivery ------------------------------------------------------------- */
static ap_session *target_session(ap_visit *av, visit_role role) {
	return role == VISIT_ROLE_THERAPIST ? av->therapist :
		role == VISIT_ROLE_CLIENT ? av->client : NULL;
}

static const char *lang_of(ap_visit *av, visit_role role) {
	const char *l = av->lang[role == VISIT_ROLE_THERAPIST ? 0 : 1];
	return l[0] ? l : NULL;
}

/* Send a server message to a participant: on the data channel if it is up
 * (and the message fits in one data-channel message), else as a Janus
 * event {"alliance": type, ...fields}. Consumes fields. */
void shell_send_to(ap_session *s, const char *type, json_t *fields) {
	if(s == NULL || g_atomic_int_get(&s->destroyed)) {
		json_decref(fields);
		return;
	}
	if(g_atomic_int_get(&s->dataready)) {
		char *text = dcmsg_encode(type, fields);
		gboolean sent = shell_send_dc(s, text);
		free(text);
		if(sent) {
			json_decref(fields);
			return;
		}
	}
	json_object_set_new(fields, "alliance", json_string(type));
	shell_push(s, NULL, fields, NULL);
}

/* Per-pulse shell state, indexed like av->ps.pulses (grown on demand). */
static gpointer *pulse_slot(GPtrArray *a, int index) {
	if(index < 0)
		return NULL;
	if((guint)index >= a->len)
		g_ptr_array_set_size(a, index + 1);
	return &g_ptr_array_index(a, index);
}

static instrument_answer *partial_get(ap_visit *av, int index) {
	return (guint)index < av->partial->len ? g_ptr_array_index(av->partial, index) : NULL;
}

static void partial_drop(ap_visit *av, int index) {
	gpointer *slot = pulse_slot(av->partial, index);
	g_free(*slot);
	*slot = NULL;
}

static const char *pulse_quality_get(ap_visit *av, int index) {
	return (guint)index < av->pulse_quality->len ? g_ptr_array_index(av->pulse_quality, index) : NULL;
}

/* The therapist learns that a pulse they can see is no longer open
 * (answered, dismissed or expired: which, for the client's, is theirs). */
static void tell_closed(ap_visit *av, int index) {
	pulse *p = &av->ps.pulses[index];
	if(av->therapist)
		shell_send_to(av->therapist, "pulse_closed", json_pack("{s:s, s:s}",
			"pulse_id", p->id, "target", visit_role_name(p->target)));
}

/* The pulse message of PROTOCOL.md (without "v"/"type"), or NULL if its
 * instrument is gone. *lang_used is the language of the text. */
static json_t *pulse_fields(ap_visit *av, int index, gint64 now, const char **lang_used) {
	pulse *p = &av->ps.pulses[index];
	const instrument *ins = instrument_set_get(ap->instruments, p->instrument);
	if(ins == NULL)
		return NULL;
	json_t *ij = instrument_pulse_json(ins, lang_of(av, p->target), lang_used);
	if(ij == NULL)
		return NULL;
	gint64 left = (p->expires_us - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
	return json_pack("{s:s, s:s, s:I, s:o}", "pulse_id", p->id,
		"kind", pulse_kind_name(p->kind), "expires_in_s", (json_int_t)(left > 0 ? left : 0),
		"instrument", ij);
}

static void stored(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_ERR, "[%s] store: %s (%s)\n", ALLIANCE_PACKAGE,
			error ? error : "failed", (const char *)user);
}

/* Is the target's media stopped while their PeerConnection is up (a
 * network cut)? Then their pulses wait: nothing would reach them. */
static gboolean held(ap_visit *av, ap_session *s) {
	int seat = s->role == VISIT_ROLE_THERAPIST ? 0 : 1;
	return av->media_stopped[seat] && g_atomic_int_get(&s->media_up);
}

/* Deliver pulse `index` if its target is present and reachable (under
 * visits_mutex). Returns TRUE if it went out. */
static gboolean deliver(ap_visit *av, int index, gint64 now) {
	pulse *p = &av->ps.pulses[index];
	ap_session *s = target_session(av, p->target);
	if(s == NULL || g_atomic_int_get(&s->destroyed) || held(av, s))
		return FALSE;
	const char *lang = NULL;
	json_t *fields = pulse_fields(av, index, now, &lang);
	if(fields == NULL) {
		JANUS_LOG(LOG_ERR, "[%s] instrument %s of pulse %s is not loaded\n",
			ALLIANCE_PACKAGE, p->instrument, p->id);
		return FALSE;
	}
	gboolean dc = g_atomic_int_get(&s->dataready);
	shell_send_to(s, "pulse", fields);
	pulse_sched_delivered(&av->ps, index, now);
	store_pulse_delivered(ap->db, p->id, dc ? "datachannel" : "event", shell_wall_us(now), stored,
		(void *)"pulse delivered");
	JANUS_LOG(LOG_VERB, "[%s] pulse %s delivered by %s\n", ALLIANCE_PACKAGE, p->id,
		dc ? "data channel" : "event");
	return TRUE;
}

/* Store a new pulse and tell the event handlers (under visits_mutex). */
static void record(ap_visit *av, int index) {
	pulse *p = &av->ps.pulses[index];
	const instrument *ins = instrument_set_get(ap->instruments, p->instrument);
	ap_session *s = target_session(av, p->target);
	/* the language of the text that is shown, not the one asked for */
	const char *lang = NULL;
	if(ins) {
		json_t *shown = instrument_pulse_json(ins, lang_of(av, p->target), &lang);
		json_decref(shown);
	}
	gint64 wall_offset = shell_wall_us(0);
	store_pulse_rec rec = {
		.pulse_id = p->id, .visit_id = av->v.id, .role = visit_role_name(p->target),
		.kind = pulse_kind_name(p->kind), .instrument_id = p->instrument,
		.instrument_version = ins ? instrument_version(ins) : "?",
		.language = lang ? lang : "?", .trigger = pulse_trigger_name(p->trigger),
		.delivered_via = s ? (g_atomic_int_get(&s->dataready) ? "datachannel" : "event") : NULL,
		.created_at_us = p->created_us + wall_offset, .expires_at_us = p->expires_us + wall_offset,
	};
	store_pulse_create(ap->db, &rec, stored, (void *)"pulse");
	/* what the connection was like before it: the last quality_context_s,
	 * or the whole visit for an end pulse */
	char *ctx = shell_quality_context(av, p->kind == PULSE_END);
	if(ctx) {
		store_pulse_quality(ap->db, p->id, ctx, stored, (void *)"pulse quality");
		gpointer *slot = pulse_slot(av->pulse_quality, index);
		free(*slot);
		*slot = ctx;
	}
	shell_notify(s ? s->handle : NULL, "pulse", json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
		"visit_id", av->v.id, "pulse_id", p->id, "kind", pulse_kind_name(p->kind),
		"target", visit_role_name(p->target), "instrument", p->instrument,
		"trigger", pulse_trigger_name(p->trigger)));
}

/* Store a new pulse, then deliver it if possible (under visits_mutex). */
static void launch(ap_visit *av, int index, gint64 now) {
	record(av, index);
	deliver(av, index, now);
}

/* The scheduler expired pulse `index`: store it, tell its target and the
 * therapist (under visits_mutex). */
static void expire(ap_visit *av, int index, gint64 now) {
	pulse *p = &av->ps.pulses[index];
	store_pulse_status(ap->db, p->id, "expired", shell_wall_us(now), stored, (void *)"pulse expired");
	ap_session *s = target_session(av, p->target);
	if(s && p->delivered_us)
		shell_send_to(s, "pulse_expired", json_pack("{s:s}", "pulse_id", p->id));
	tell_closed(av, index);
	partial_drop(av, index);
}

/* A scheduled pulse waited for the client's picture: how long, in the
 * visit's events (and for the event handlers); held_us 0: it did not. */
static void note_hold(ap_visit *av, const char *kind, const char *pulse_id, const pulse_action *skip,
		gint64 held_us, gint64 now) {
	json_t *d = json_pack("{s:s, s:I}", "reason", "video_unstable", "held_ms", (json_int_t)(held_us / 1000));
	if(pulse_id)
		json_object_set_new(d, "pulse_id", json_string(pulse_id));
	if(skip) {
		json_object_set_new(d, "offset_s", json_integer(skip->offset_s));
		json_object_set_new(d, "offsets", json_integer(skip->n_offsets));
	}
	char *text = json_dumps(d, JSON_COMPACT);
	store_event(ap->db, av->v.id, kind, text, shell_wall_us(now), stored, (void *)kind);
	free(text);
	json_object_set_new(d, "visit_id", json_string(av->v.id));
	shell_notify(av->client ? av->client->handle : NULL, kind, d);
	JANUS_LOG(LOG_INFO, "[%s] %s: %s after %" G_GINT64_FORMAT " ms of unstable video\n", ALLIANCE_PACKAGE,
		av->v.id, kind, held_us / 1000);
}

void shell_pulses_tick_locked(ap_visit *av, gint64 now) {
	pulse_action act[8];
	int n = pulse_sched_tick(&av->ps, now, av->client != NULL, act, 8);
	for(int i = 0; i < n; i++) {
		if(act[i].type == PULSE_ACT_SEND) {
			launch(av, act[i].index, now);
			pulse *p = &av->ps.pulses[act[i].index];
			if(p->held_us > 0)
				note_hold(av, "pulse_held", p->id, NULL, p->held_us, now);
		} else if(act[i].type == PULSE_ACT_SKIP) {
			note_hold(av, "pulse_skipped", NULL, &act[i], act[i].held_us, now);
		} else {
			expire(av, act[i].index, now);
		}
	}
}

/* A participant (re-)joined, or their media flows again: every pulse
 * still open for their role goes to this handle — one created while they
 * were away, or one an earlier handle got but did not answer (a reloaded
 * page); only_undelivered: just the ones that never went out (held). */
void shell_pulses_on_join(ap_visit *av, ap_session *s, gint64 now, gboolean only_undelivered) {
	for(int i = 0; i < av->ps.n; i++) {
		pulse *p = &av->ps.pulses[i];
		if(p->target == s->role && (p->status == PULSE_OPEN || p->status == PULSE_PARTIAL) &&
				!p->expire_pending && now < p->expires_us &&
				!(only_undelivered && p->delivered_us))
			deliver(av, i, now);
	}
}

void shell_pulses_end(ap_visit *av, gint64 now, gboolean with_end_pulses, json_t *pulse_ids) {
	int *expired = g_new(int, av->ps.n + 1);
	int created[2], ne = 0, nc = 0;
	pulse_sched_end(&av->ps, now, with_end_pulses, expired, &ne, created, &nc);
	for(int i = 0; i < ne; i++)
		expire(av, expired[i], now);
	g_free(expired);
	for(int i = 0; i < nc; i++) {
		record(av, created[i]);   /* delivered by shell_pulses_on_join() */
		json_array_append_new(pulse_ids, json_string(av->ps.pulses[created[i]].id));
	}
}

void shell_pulses_expire_all(ap_visit *av, gint64 now) {
	for(int i = 0; i < av->ps.n; i++) {
		pulse *p = &av->ps.pulses[i];
		if(p->status != PULSE_OPEN && p->status != PULSE_PARTIAL)
			continue;
		/* an answer still in flight is settled by the store (which drains
		 * before it closes); its expiry would only be refused */
		p->status = PULSE_EXPIRED;
		p->status_us = now;
		if(p->inflight == 0)
			expire(av, i, now);
	}
}

json_t *shell_pulses_pending(ap_visit *av, visit_role viewer, gint64 now) {
	json_t *list = json_array();
	for(int i = 0; i < av->ps.n; i++) {
		pulse *p = &av->ps.pulses[i];
		/* the therapist sees both; a client only their own */
		if(viewer != VISIT_ROLE_THERAPIST && p->target != viewer)
			continue;
		if((p->status == PULSE_OPEN || p->status == PULSE_PARTIAL) && now < p->expires_us)
			json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}",
				"pulse_id", p->id, "target", visit_role_name(p->target),
				"kind", pulse_kind_name(p->kind), "status", pulse_status_name(p->status),
				"delivered", p->delivered_us != 0,
				"expires_in_s", (json_int_t)((p->expires_us - now) / G_USEC_PER_SEC)));
	}
	return list;
}

/* --- the `pulse` request (message thread) ---------------------------------- */
static int pulse_error_code(pulse_result r) {
	switch(r) {
		case PULSE_ERR_PENDING: return PROTO_ERR_PULSE_PENDING;
		case PULSE_ERR_NOT_YOURS: return PROTO_ERR_INVALID_ELEMENT;
		case PULSE_ERR_UNKNOWN: return PROTO_ERR_UNKNOWN_PULSE;
		case PULSE_ERR_EXPIRED: return PROTO_ERR_EXPIRED;
		case PULSE_ERR_ALREADY_ANSWERED: return PROTO_ERR_ALREADY_ANSWERED;
		default: return PROTO_ERR_WRONG_STATE;
	}
}

/* May this instrument be sent as an in-session pulse? An end or mirror
 * form is for the end of the visit (`end` sends those). */
static gboolean in_session_kind(const instrument *ins) {
	const char *k = instrument_kind(ins);
	return !strcmp(k, "in_session") || !strcmp(k, "technology");
}

json_t *shell_pulse_request(ap_session *s, const proto_request *req) {
	const instrument *named = req->instrument ? instrument_set_get(ap->instruments, req->instrument) : NULL;
	if(req->instrument && named == NULL)
		return shell_error_json(PROTO_ERR_INVALID_ELEMENT, "Unknown instrument");
	if(named && !in_session_kind(named))
		return shell_error_json(PROTO_ERR_INVALID_ELEMENT,
			"Instrument '%.48s' is of kind %s: a pulse during the visit takes an in_session or technology instrument",
			req->instrument, instrument_kind(named));
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		return shell_error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
	}
	if(s->role != VISIT_ROLE_THERAPIST) {
		janus_mutex_unlock(&ap->visits_mutex);
		return shell_error_json(PROTO_ERR_FORBIDDEN, "Only the therapist sends pulses");
	}
	visit_role targets[2];
	int nt = 0;
	if(req->target_both) {
		targets[nt++] = VISIT_ROLE_CLIENT;
		targets[nt++] = VISIT_ROLE_THERAPIST;
	} else {
		targets[nt++] = req->target;
	}
	/* check every target before creating any pulse */
	for(int i = 0; i < nt; i++) {
		if(target_session(av, targets[i]) == NULL) {
			janus_mutex_unlock(&ap->visits_mutex);
			return shell_error_json(PROTO_ERR_WRONG_STATE, "The %s is not in the visit", visit_role_name(targets[i]));
		}
		if(pulse_sched_open_for(&av->ps, targets[i]) >= 0) {
			janus_mutex_unlock(&ap->visits_mutex);
			return shell_error_json(PROTO_ERR_PULSE_PENDING, "The %s already has an open pulse", visit_role_name(targets[i]));
		}
	}
	json_t *ids = json_array();
	for(int i = 0; i < nt; i++) {
		int index = -1;
		pulse_result r = pulse_sched_trigger(&av->ps, targets[i], req->instrument,
			PULSE_TRIGGER_THERAPIST, now, &index);
		if(r != PULSE_OK) {
			janus_mutex_unlock(&ap->visits_mutex);
			json_decref(ids);
			if(r == PULSE_ERR_FULL)
				return shell_error_json(PROTO_ERR_LIMIT_REACHED, "This visit has had %d in-session pulses, the most one visit takes",
					PULSE_IN_SESSION_MAX);
			return shell_error_json(pulse_error_code(r), "No pulse possible now (%s)", pulse_result_slug(r));
		}
		launch(av, index, now);
		json_array_append_new(ids, json_string(av->ps.pulses[index].id));
	}
	janus_mutex_unlock(&ap->visits_mutex);
	return json_pack("{s:s, s:o, s:i}", "alliance", "pulse_sent", "pulse_ids", ids,
		"expires_in_s", ap->settings.pulse_expires_s);
}

/* The quality rule fired: send the technology item to the client, if one
 * is loaded, the client is present and has no open pulse (under
 * visits_mutex). Returns TRUE if a pulse went out. */
gboolean shell_pulses_quality_trigger(ap_visit *av, gint64 now) {
	const instrument *tech = instrument_set_default(ap->instruments, "technology");
	if(tech == NULL || av->client == NULL || av->v.state != VISIT_LIVE)
		return FALSE;
	int index = -1;
	if(pulse_sched_trigger(&av->ps, VISIT_ROLE_CLIENT, instrument_id(tech),
			PULSE_TRIGGER_QUALITY, now, &index) != PULSE_OK)
		return FALSE;
	launch(av, index, now);
	JANUS_LOG(LOG_INFO, "[%s] quality rule: technology pulse %s sent\n", ALLIANCE_PACKAGE,
		av->ps.pulses[index].id);
	return TRUE;
}

/* --- answers ----------------------------------------------------------------- */
typedef struct answer_job {
	volatile gint refs;            /* the store callback's, plus a sync waiter's */
	ap_session *s;                 /* who answered (ref held) */
	ap_visit *av;                  /* (ref held) */
	int index;
	char pulse_id[PULSE_ID_MAX + 1];
	visit_role role;
	gboolean final, dismiss, via_dc;
	char ref[DCMSG_REF_MAX + 1];
	const instrument *ins;
	gboolean scored;
	instrument_scores scores;
	gint64 ttA_ms;
	char client_code[AUTH_CODE_MAX + 1];
	char visit_id[VISIT_ID_MAX + 1];
	/* the outcome, for a waiting `answer` request */
	GMutex m;
	GCond c;
	gboolean done;
	store_rc rc;
	char error[160];
} answer_job;

static void job_unref(answer_job *j) {
	if(!g_atomic_int_dec_and_test(&j->refs))
		return;
	janus_refcount_decrease(&j->s->ref);
	shell_visit_unref(j->av);
	g_mutex_clear(&j->m);
	g_cond_clear(&j->c);
	g_free(j);
}

static void raise_alert(const answer_job *j, const char *rule, const char *score_name,
		double score, double threshold) {
	gint64 now = janus_get_real_time();
	char message[320];
	if(!strcmp(rule, "below_cutoff"))
		g_snprintf(message, sizeof(message), "Pulse %s %.1f is below %.1f: a good moment to check in with your client.",
			score_name, score, threshold);
	else
		g_snprintf(message, sizeof(message), "Pulse %s %.1f is %.1f below the client's usual %.1f: a good moment to check in.",
			score_name, score, threshold - score, threshold);
	janus_mutex_lock(&ap->visits_mutex);
	json_t *quality = NULL;
	gboolean end_pulse = j->av->ps.pulses[j->index].kind == PULSE_END;
	const char *ctx = pulse_quality_get(j->av, j->index);
	if(ctx) {
		json_error_t jerr;
		quality = json_loads(ctx, 0, &jerr);
	}
	janus_mutex_unlock(&ap->visits_mutex);
	/* the technical-confound note: was the connection bad before it? */
	if(quality) {
		json_int_t fr = json_integer_value(json_object_get(quality, "freezes"));
		double frs = json_number_value(json_object_get(quality, "freeze_s"));
		json_t *path = json_object_get(json_object_get(quality, "paths"), "therapist_to_client");
		double mos = json_number_value(json_object_get(path, "mos"));
		size_t used = strlen(message);
		if(json_is_number(json_object_get(path, "mos")))
			g_snprintf(message + used, sizeof(message) - used, " Connection before it: %" JSON_INTEGER_FORMAT
				" freezes, %.0f s frozen, MOS %.1f.", fr, frs, mos);
		else
			g_snprintf(message + used, sizeof(message) - used, " Connection before it: %" JSON_INTEGER_FORMAT
				" freezes, %.0f s frozen.", fr, frs);
	}
	json_t *fields = json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:s}", "pulse_id", j->pulse_id,
		"rule", rule, "score_name", score_name, "score", score, "threshold", threshold,
		"quality", quality ? quality : json_null(), "message", message);
	janus_mutex_lock(&ap->visits_mutex);
	ap_session *t = j->av->therapist;
	if(t)
		janus_refcount_increase(&t->ref);
	janus_mutex_unlock(&ap->visits_mutex);
	if(t) {
		/* both ways, as PROTOCOL.md asks: the data channel if up, and an event */
		if(g_atomic_int_get(&t->dataready)) {
			char *text = dcmsg_encode("alert", fields);
			shell_send_dc(t, text);
			free(text);
		}
		json_t *ev = json_deep_copy(fields);
		json_object_set_new(ev, "alliance", json_string("alert"));
		shell_push(t, NULL, ev, NULL);
		janus_refcount_decrease(&t->ref);
	}
	char *qtext = quality ? json_dumps(quality, JSON_COMPACT) : NULL;
	store_alert_rec rec = {
		.visit_id = j->visit_id, .pulse_id = j->pulse_id, .rule = rule,
		.score_name = score_name, .score = score, .threshold = threshold,
		.quality_json = qtext, .at_us = now,
	};
	store_alert(ap->db, &rec, stored, (void *)"alert");
	free(qtext);
	if(end_pulse)          /* the ended visit's alert count; others at close */
		store_visit_summarize(ap->db, j->visit_id, stored, (void *)"visit summary");
	json_object_set_new(fields, "visit_id", json_string(j->visit_id));
	shell_notify(NULL, "alert", fields);
	JANUS_LOG(LOG_INFO, "[%s] alert (%s) for visit %s\n", ALLIANCE_PACKAGE, rule, j->visit_id);
}

static void baseline_read(store_rc rc, const double *values, int n, void *user) {
	answer_job *j = user;
	double score = 0, baseline = 0;
	if(rc == STORE_OK && instrument_rule_drop(j->ins, &j->scores, values, n, &score, &baseline))
		raise_alert(j, "drop", instrument_rule_score_name(j->ins, true), score, baseline);
	job_unref(j);
}

static void check_rules(answer_job *j) {
	double score = 0, threshold = 0;
	if(instrument_rule_cutoff(j->ins, &j->scores, &score, &threshold))
		raise_alert(j, "below_cutoff", instrument_rule_score_name(j->ins, false), score, threshold);
	const char *drop_name = instrument_rule_score_name(j->ins, true);
	if(drop_name) {
		g_atomic_int_inc(&j->refs);
		if(store_client_scores(ap->db, j->client_code, instrument_id(j->ins), drop_name,
				j->visit_id, 10, baseline_read, j) < 0)
			job_unref(j);
	}
}

static void answer_stored(store_rc rc, const char *error, void *user) {
	answer_job *j = user;
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&ap->visits_mutex);
	pulse_status committed = rc != STORE_OK ? PULSE_OPEN : j->dismiss ? PULSE_DISMISSED :
		(j->final ? PULSE_ANSWERED : PULSE_PARTIAL);
	/* an expiry (or `end`) that waited for this answer happens now if the
	 * pulse is still open */
	gboolean expired_now = pulse_sched_settle(&j->av->ps, j->index, committed, now);
	if(rc == STORE_OK && (j->final || j->dismiss)) {
		partial_drop(j->av, j->index);
		tell_closed(j->av, j->index);
	}
	if(expired_now && j->av->v.state != VISIT_CLOSED)
		expire(j->av, j->index, now);
	gboolean end = j->av->ps.pulses[j->index].kind == PULSE_END;
	janus_mutex_unlock(&ap->visits_mutex);
	if(rc == STORE_OK) {
		/* an end answer changes the visit's report row */
		if(end && (j->final || j->dismiss))
			store_visit_summarize(ap->db, j->visit_id, stored, (void *)"visit summary");
	} else {
		JANUS_LOG(LOG_WARN, "[%s] answer to %s not stored: %s\n", ALLIANCE_PACKAGE, j->pulse_id,
			store_rc_name(rc));
	}
	if(j->via_dc) {
		char *text;
		if(rc == STORE_OK) {
			json_t *f = json_pack("{s:s, s:b, s:b}", "pulse_id", j->pulse_id, "stored", 1,
				"complete", j->dismiss ? 0 : j->final);
			if(j->dismiss)
				json_object_set_new(f, "dismissed", json_true());
			if(j->ref[0])
				json_object_set_new(f, "ref", json_string(j->ref));   /* echoed, as errors do */
			text = dcmsg_encode("ack", f);
			json_decref(f);
		} else {
			dcmsg_error e;
			memset(&e, 0, sizeof(e));
			e.code = rc == STORE_ALREADY_FINAL ? "already_answered" : "store_failed";
			g_strlcpy(e.reason, rc == STORE_ALREADY_FINAL ? "this pulse is already answered" :
				"the answer could not be stored; please try again", sizeof(e.reason));
			dcmsg_copy_ref(e.ref, j->ref[0] ? j->ref : j->pulse_id);
			text = dcmsg_error_text(&e);
		}
		shell_send_dc(j->s, text);
		free(text);
	}
	if(rc == STORE_OK) {
		json_t *info = json_pack("{s:s, s:s, s:s, s:b, s:b, s:I}", "visit_id", j->visit_id,
			"pulse_id", j->pulse_id, "role", visit_role_name(j->role), "final", j->final,
			"dismissed", j->dismiss, "time_to_answer_ms", (json_int_t)j->ttA_ms);
		if(j->scored)
			json_object_set_new(info, "scores", instrument_scores_json(&j->scores));
		shell_notify(j->s->handle, j->dismiss ? "dismiss" : "answer", info);
		if(j->scored && j->role == VISIT_ROLE_CLIENT)
			check_rules(j);
	}
	/* hand the outcome to a waiting `answer` request */
	g_mutex_lock(&j->m);
	j->rc = rc;
	g_strlcpy(j->error, error ? error : "", sizeof(j->error));
	j->done = TRUE;
	g_cond_signal(&j->c);
	g_mutex_unlock(&j->m);
	job_unref(j);
}

typedef struct answer_error {
	int code;               /* API error code */
	const char *slug;       /* data-channel error code */
	char reason[160];
} answer_error;

static int fail_answer(answer_error *e, int code, const char *slug, const char *reason) {
	e->code = code;
	e->slug = slug;
	g_strlcpy(e->reason, reason, sizeof(e->reason));
	return -1;
}

/* Steps 1 and 2 of the answer path. responses NULL = dismissal. Returns the
 * job (with one extra reference for the caller if want_ref) or NULL. */
static answer_job *submit(ap_session *s, const char *pulse_id, const json_t *responses,
		gboolean final, gboolean via_dc, const char *ref, gboolean want_ref, answer_error *e) {
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		gboolean closed = s->closed_visit[0] != '\0';
		janus_mutex_unlock(&ap->visits_mutex);
		if(closed)   /* the visit closed under this handle: the time is over */
			fail_answer(e, PROTO_ERR_EXPIRED, "expired", "the visit is closed: answers are no longer accepted");
		else
			fail_answer(e, PROTO_ERR_NOT_JOINED, "not_joined", "join a visit first");
		return NULL;
	}
	int index = -1;
	pulse_result r = pulse_sched_check(&av->ps, pulse_id, s->role, now, &index);
	if(r != PULSE_OK) {
		janus_mutex_unlock(&ap->visits_mutex);
		fail_answer(e, pulse_error_code(r), pulse_result_slug(r),
			r == PULSE_ERR_UNKNOWN ? "no such pulse" :
			r == PULSE_ERR_NOT_YOURS ? "this pulse is for the other participant" :
			r == PULSE_ERR_EXPIRED ? "this pulse has expired" : "this pulse is already answered");
		if(r == PULSE_ERR_NOT_YOURS)
			e->code = PROTO_ERR_NOT_YOURS;
		return NULL;
	}
	pulse *p = &av->ps.pulses[index];
	const instrument *ins = instrument_set_get(ap->instruments, p->instrument);
	if(ins == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		fail_answer(e, PROTO_ERR_INTERNAL, "internal", "the pulse's instrument is not loaded");
		return NULL;
	}
	answer_job *j = g_new0(answer_job, 1);
	instrument_answer merged;
	if(partial_get(av, index))
		merged = *partial_get(av, index);
	else
		instrument_answer_init(&merged, ins);
	if(responses) {
		char detail[160] = "";
		instrument_verdict v = instrument_answer_merge(ins, responses, &merged, detail, sizeof(detail));
		if(v != INSTR_OK) {
			janus_mutex_unlock(&ap->visits_mutex);
			g_free(j);
			int code = v == INSTR_UNKNOWN_ITEM ? PROTO_ERR_UNKNOWN_ITEM :
				v == INSTR_WRONG_TYPE ? PROTO_ERR_WRONG_TYPE :
				v == INSTR_OUT_OF_RANGE ? PROTO_ERR_OUT_OF_RANGE : PROTO_ERR_INVALID_ELEMENT;
			fail_answer(e, code, instrument_verdict_slug(v), detail[0] ? detail : "invalid responses");
			return NULL;
		}
		if(final && !instrument_answer_complete(ins, &merged)) {
			janus_mutex_unlock(&ap->visits_mutex);
			g_free(j);
			fail_answer(e, PROTO_ERR_INCOMPLETE, "incomplete",
				"a final answer needs every item (send final:false to save part of it)");
			return NULL;
		}
		if(final && instrument_score(ins, &merged, &j->scores) == 0)
			j->scored = TRUE;
	}
	/* everything checked: build the job */
	g_atomic_int_set(&j->refs, want_ref ? 2 : 1);
	janus_refcount_increase(&s->ref);
	janus_refcount_increase(&av->ref);
	j->s = s;
	j->av = av;
	j->index = index;
	g_strlcpy(j->pulse_id, p->id, sizeof(j->pulse_id));
	j->role = s->role;
	j->final = responses ? final : FALSE;
	j->dismiss = (responses == NULL);
	j->via_dc = via_dc;
	g_strlcpy(j->ref, ref ? ref : "", sizeof(j->ref));
	j->ins = ins;
	g_strlcpy(j->client_code, av->v.client_code, sizeof(j->client_code));
	g_strlcpy(j->visit_id, av->v.id, sizeof(j->visit_id));
	gint64 since = p->delivered_us ? p->delivered_us : p->created_us;
	j->ttA_ms = (now - since) / 1000;
	g_mutex_init(&j->m);
	g_cond_init(&j->c);
	int rc;
	gint64 wall = shell_wall_us(now);
	pulse_sched_begin(&av->ps, index);     /* settled in answer_stored() */
	if(j->dismiss) {
		rc = store_dismiss(ap->db, j->pulse_id, wall, answer_stored, j);
	} else {
		store_item_value items[INSTRUMENT_MAX_ITEMS];
		int ni = 0;
		for(int i = 0; i < merged.n; i++)
			if(merged.present[i]) {
				items[ni].item_id = instrument_item_id(ins, i);
				items[ni++].value = merged.value[i];
			}
		store_score scores[INSTRUMENT_MAX_SUBSCALES + 1];
		int ns = 0;
		if(j->scored) {
			if(j->scores.has_total) {
				scores[ns].name = "total";
				scores[ns++].value = j->scores.total;
			}
			for(int i = 0; i < j->scores.n_sub; i++) {
				scores[ns].name = j->scores.sub_name[i];
				scores[ns++].value = j->scores.sub[i];
			}
		}
		store_answer_rec rec = {
			.pulse_id = j->pulse_id, .final = j->final, .answered_at_us = wall,
			.time_to_answer_ms = j->ttA_ms, .research_consent = av->v.research_consent,
			.n_items = ni, .items = items, .n_scores = ns, .scores = scores,
		};
		rc = store_answer(ap->db, &rec, answer_stored, j);
		if(rc == 0) {
			/* later partial answers build on this one (the store merges too) */
			gpointer *slot = pulse_slot(av->partial, index);
			if(*slot == NULL)
				*slot = g_new(instrument_answer, 1);
			*(instrument_answer *)*slot = merged;
		}
	}
	if(rc < 0)
		pulse_sched_settle(&av->ps, index, PULSE_OPEN, now);
	janus_mutex_unlock(&ap->visits_mutex);
	if(rc < 0) {
		g_atomic_int_set(&j->refs, 1);
		job_unref(j);
		fail_answer(e, PROTO_ERR_STORE, "store_failed", "the answer could not be queued for storage");
		return NULL;
	}
	return j;
}

void shell_answer_dc(ap_session *s, const dcmsg *msg) {
	answer_error e;
	answer_job *j = submit(s, msg->pulse_id, msg->type == DCMSG_ANSWER ? msg->responses : NULL,
		msg->final, TRUE, msg->ref, FALSE, &e);
	if(j != NULL)
		return;   /* the ack follows the commit */
	dcmsg_error de;
	memset(&de, 0, sizeof(de));
	de.code = e.slug;
	g_strlcpy(de.reason, e.reason, sizeof(de.reason));
	dcmsg_copy_ref(de.ref, msg->ref[0] ? msg->ref : msg->pulse_id);
	char *text = dcmsg_error_text(&de);
	shell_send_dc(s, text);
	free(text);
}

/* The `answer` and `dismiss` requests (kiosks, and the fallback after the
 * call): answered once the store has committed. */
json_t *shell_answer_request(ap_session *s, const proto_request *req) {
	answer_error e;
	gboolean dismiss = (req->kind == PROTO_DISMISS);
	answer_job *j = submit(s, req->pulse_id, dismiss ? NULL : req->responses, req->final,
		FALSE, NULL, TRUE, &e);
	if(j == NULL)
		return shell_error_json(e.code, "%s", e.reason);
	/* wait for the commit: `answer_stored` means on disk */
	gint64 until = g_get_monotonic_time() + SYNC_ANSWER_WAIT_US;
	g_mutex_lock(&j->m);
	while(!j->done)
		if(!g_cond_wait_until(&j->c, &j->m, until))
			break;
	gboolean done = j->done;
	store_rc rc = j->rc;
	g_mutex_unlock(&j->m);
	json_t *r;
	if(!done)
		r = shell_error_json(PROTO_ERR_STORE, "Storage did not confirm the answer in time; send it again");
	else if(rc == STORE_ALREADY_FINAL)
		r = shell_error_json(PROTO_ERR_ALREADY_ANSWERED, "This pulse is already answered");
	else if(rc != STORE_OK)
		r = shell_error_json(PROTO_ERR_STORE, "The answer could not be stored; send it again");
	else if(dismiss)
		r = json_pack("{s:s, s:s, s:b}", "alliance", "dismissed", "pulse_id", j->pulse_id, "stored", 1);
	else
		r = json_pack("{s:s, s:s, s:b, s:b}", "alliance", "answer_stored", "pulse_id", j->pulse_id,
			"complete", j->final, "stored", 1);
	job_unref(j);
	return r;
}

