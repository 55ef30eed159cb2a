/*
 * shell_requests.c — the message thread of janus.plugin.alliance and every
 * request that changes a visit (create, join, admit, configure, end,
 * leave, status).
 *
 * Each handler validates completely before it changes anything: the pure
 * visit module refuses or accepts a transition, and only an accepted one
 * touches slots, links and tables. All of it runs under visits_mutex; events
 * to the other participant are pushed after the state change, and
 * PeerConnections are closed only after the lock is released.
 */
#include "shell.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

static ap_plugin *ap;

void shell_requests_init(ap_plugin *plugin) {
	ap = plugin;
}

typedef struct ap_message {
	ap_session *s;          /* reference held */
	char *transaction;
	json_t *message;
	json_t *jsep;
} ap_message;

static GAsyncQueue *messages = NULL;
static GThread *handler_thread = NULL;
static ap_message exit_message;

static void message_free(ap_message *m) {
	if(m == NULL || m == &exit_message)
		return;
	if(m->s)
		janus_refcount_decrease(&m->s->ref);
	g_free(m->transaction);
	if(m->message)
		json_decref(m->message);
	if(m->jsep)
		json_decref(m->jsep);
	g_free(m);
}

void shell_requests_enqueue(ap_session *s, char *transaction, json_t *message, json_t *jsep) {
	ap_message *m = g_new0(ap_message, 1);
	m->s = s;
	m->transaction = transaction;
	m->message = message;
	m->jsep = jsep;
	g_async_queue_push(messages, m);
}

static void stored(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_ERR, "[%s] store: %s (%s)\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc), (const char *)user);
}

json_t *shell_visit_error(visit_result r) {
	switch(r) {
		case VISIT_ERR_UNAUTHORIZED: return shell_error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (this key or token does not belong to the visit's therapist)");
		case VISIT_ERR_INVALID_INVITE: return shell_error_json(PROTO_ERR_INVALID_INVITE, "Invalid invite");
		case VISIT_ERR_INVITE_USED: return shell_error_json(PROTO_ERR_INVITE_USED, "Invite already used: re-join with the rejoin_key given at the first join");
		case VISIT_ERR_FORBIDDEN: return shell_error_json(PROTO_ERR_FORBIDDEN, "This role may not make this request");
		case VISIT_ERR_NOT_ADMITTED: return shell_error_json(PROTO_ERR_NOT_ADMITTED, "Not admitted yet: wait for the therapist");
		case VISIT_ERR_WRONG_STATE: return shell_error_json(PROTO_ERR_WRONG_STATE, "Not possible in the visit's current state");
		case VISIT_ERR_CLOSED: return shell_error_json(PROTO_ERR_NO_SUCH_VISIT, "The visit is closed");
		case VISIT_ERR_NO_CONSENT: return shell_error_json(PROTO_ERR_NO_CONSENT, "The client did not consent to observers");
		case VISIT_ERR_FULL: return shell_error_json(PROTO_ERR_LIMIT_REACHED, "Too many observers watch this visit already");
		case VISIT_OK: break;
	}
	return shell_error_json(PROTO_ERR_INTERNAL, "Internal error");
}

/* --- sync requests (answered from handle_message) ------------------------ */
/* The visit's pulse plan from the request and the defaults; an error
 * answer if it names an instrument that is not loaded or of another kind. */
static json_t *pulse_plan(const proto_request *req, pulse_config *pc) {
	memset(pc, 0, sizeof(*pc));
	const char *ids[3] = { req->instr_in_session, req->instr_end, req->instr_therapist_end };
	const char *kinds[3] = { "in_session", "end", "therapist_end" };
	char *slots[3] = { pc->in_session, pc->end, pc->therapist_end };
	for(int i = 0; i < 3; i++) {
		const instrument *ins = ids[i] ? instrument_set_get(ap->instruments, ids[i]) :
			instrument_set_default(ap->instruments, kinds[i]);
		if(ids[i] && ins == NULL)
			return shell_error_json(PROTO_ERR_INVALID_ELEMENT, "Unknown instrument '%.48s' (instruments.%s)", ids[i], kinds[i]);
		/* an end form in the in-session slot (or the reverse) would ask the
		 * wrong questions at the wrong time, and score them as the other */
		if(ins && strcmp(instrument_kind(ins), kinds[i]) != 0 &&
				!(i == 0 && !strcmp(instrument_kind(ins), "technology")))
			return shell_error_json(PROTO_ERR_INVALID_ELEMENT, "Instrument '%.48s' is of kind %s, not %s (instruments.%s)",
				ids[i], instrument_kind(ins), kinds[i], kinds[i]);
		if(ins)
			g_strlcpy(slots[i], instrument_id(ins), PULSE_INSTRUMENT_MAX + 1);
	}
	if(req->n_offsets >= 0) {
		pc->n_offsets = req->n_offsets;
		memcpy(pc->offsets_s, req->offsets_s, sizeof(int) * (size_t)req->n_offsets);
	} else {
		pc->n_offsets = ap->settings.n_offsets;
		memcpy(pc->offsets_s, ap->settings.offsets_s, sizeof(int) * (size_t)ap->settings.n_offsets);
	}
	if(pc->in_session[0] == '\0')
		pc->n_offsets = 0;   /* nothing to send */
	pc->expires_in_s = ap->settings.pulse_expires_s;
	pc->end_grace_s = ap->settings.end_grace_s;
	pc->hold_stable_s = ap->settings.pulse_hold_stable_s;
	pc->hold_max_s = ap->settings.pulse_hold_max_s;
	pc->end_pulse = (req->end_pulse != 0) && pc->end[0] != '\0';
	return NULL;
}

/* Where Janus wants signed tokens, the client's link needs one too: the
 * page sends it as the Janus API's `token` (docs/api.md, "Signed tokens"). */
static void add_client_token(json_t *answer) {
	char tok[256];
	if(answer && shell_auth_client_token(tok, sizeof(tok)) > 0)
		json_object_set_new(answer, "client_token", json_string(tok));
	memset(tok, 0, sizeof(tok));
}

static json_t *request_create(ap_session *s, const proto_request *req) {
	char code_buf[AUTH_CODE_MAX + 1];
	json_t *refusal = NULL;
	const char *code = shell_auth_therapist(s, req, code_buf, &refusal);
	if(code == NULL)
		return refusal;
	pulse_config pc;
	json_t *bad = pulse_plan(req, &pc);
	if(bad)
		return bad;
	char id[AUTH_TOKEN_CHARS + 1], invite[AUTH_TOKEN_CHARS + 1];
	if(auth_token_new(id) < 0 || auth_token_new(invite) < 0)
		return shell_error_json(PROTO_ERR_INTERNAL, "Could not draw random numbers");
	auth_digest invite_digest;
	auth_digest_of(invite, &invite_digest);
	janus_mutex_lock(&ap->visits_mutex);
	if((int)g_hash_table_size(ap->visits) >= ap->settings.max_visits) {
		janus_mutex_unlock(&ap->visits_mutex);
		return shell_error_json(PROTO_ERR_LIMIT_REACHED, "Too many open visits (max_visits=%d)", ap->settings.max_visits);
	}
	gint64 mono = janus_get_monotonic_time();
	gint64 now = shell_wall_us(mono);
	ap_visit *av = shell_visit_new(id, code, req->client_code, req->modality, &invite_digest, &pc, mono);
	if(av == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		return shell_error_json(PROTO_ERR_INTERNAL, "Out of memory");
	}
	g_hash_table_insert(ap->visits, av->v.id, av);     /* the table's reference */
	g_hash_table_insert(ap->visits_by_invite, &av->v.invite, av);
	char invite_hex[2 * AUTH_DIGEST_LEN + 1];
	auth_digest_hex(&invite_digest, invite_hex);
	store_visit_rec rec = { .visit_id = id, .therapist_code = code, .client_code = req->client_code,
		.modality = visit_modality_name(req->modality), .created_at_us = now,
		.instance_id = ap->settings.instance_id, .invite_sha256 = invite_hex };
	store_visit_create(ap->db, &rec, stored, (void *)"visit");
	janus_mutex_unlock(&ap->visits_mutex);
	JANUS_LOG(LOG_INFO, "[%s] visit created (%s)\n", ALLIANCE_PACKAGE, visit_modality_name(req->modality));
	shell_notify(NULL, "created", json_pack("{s:s, s:s}", "visit_id", id,
		"modality", visit_modality_name(req->modality)));
	json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "alliance", "created",
		"visit_id", id, "invite", invite, "modality", visit_modality_name(req->modality));
	memset(invite, 0, sizeof(invite));
	add_client_token(r);
	return r;
}

static json_t *request_status(ap_session *s) {
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		return shell_error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
	}
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}",
		"alliance", "status", "visit_id", av->v.id, "state", visit_state_name(av->v.state),
		"modality", visit_modality_name(av->v.modality), "role", visit_role_name(s->role),
		"participants", shell_participants_json(av),
		"pending_pulses", shell_pulses_pending(av, s->role, janus_get_monotonic_time()));
	json_object_set_new(r, "quality", shell_quality_live(av, 10));
	janus_mutex_unlock(&ap->visits_mutex);
	return r;
}

json_t *shell_request_sync(ap_session *s, const proto_request *req) {
	switch(req->kind) {
		case PROTO_CREATE: return request_create(s, req);
		case PROTO_STATUS: return request_status(s);
		case PROTO_ANSWER: return shell_answer_request(s, req);
		case PROTO_DISMISS: return shell_answer_request(s, req);
		default: return shell_error_json(PROTO_ERR_INTERNAL, "Not a synchronous request");
	}
}

/* --- async requests (message thread) ------------------------------------- */
/* A handler fills an outcome: the answer pushed with the request's
 * transaction (plus an optional JSEP), then events for participants, then
 * pulses that waited for the answer — all delivered after visits_mutex is
 * released, in that order, so a participant always sees its answer before the events
 * it caused. */
#define OUTCOME_MAX 6
typedef struct outcome {
	json_t *answer;
	json_t *jsep;
	ap_session *event_to[OUTCOME_MAX];   /* references held */
	json_t *event[OUTCOME_MAX];
	int events;
	ap_visit *deferred_visit;            /* pulses to send after the answer (ref held) */
	gboolean deferred_end;               /* ...the end pulses */
	GList *hangup;                       /* handles to hang up (refs held): replaced, removed */
} outcome;

static void outcome_event(outcome *out, ap_session *to, json_t *event) {
	if(to == NULL || out->events >= OUTCOME_MAX) {
		json_decref(event);
		return;
	}
	janus_refcount_increase(&to->ref);
	out->event_to[out->events] = to;
	out->event[out->events++] = event;
}

static void outcome_deliver(outcome *out, ap_session *s, const char *transaction) {
	if(out->answer)
		shell_push(s, transaction, out->answer, out->jsep);
	else if(out->jsep)
		json_decref(out->jsep);
	for(int i = 0; i < out->events; i++) {
		shell_push_event(out->event_to[i], out->event[i]);
		janus_refcount_decrease(&out->event_to[i]->ref);
	}
	if(out->deferred_visit) {
		ap_visit *av = out->deferred_visit;
		janus_mutex_lock(&ap->visits_mutex);
		gint64 now = janus_get_monotonic_time();
		if(out->deferred_end) {
			if(av->therapist)
				shell_pulses_on_join(av, av->therapist, now, FALSE);
			if(av->client)
				shell_pulses_on_join(av, av->client, now, FALSE);
		} else if(s->visit == av) {
			shell_pulses_on_join(av, s, now, FALSE);
		}
		janus_mutex_unlock(&ap->visits_mutex);
		shell_visit_unref(av);
	}
	/* no lock held: the old handle of a takeover, removed observers */
	for(GList *l = out->hangup; l; l = l->next) {
		ap_session *old = l->data;
		if(g_atomic_int_get(&old->media_up) && !g_atomic_int_get(&old->destroyed))
			ap->gateway->close_pc(old->handle);
		janus_refcount_decrease(&old->ref);
	}
	g_list_free(out->hangup);
}

/* Lock the visits and return s's visit; without one: unlocked again, the
 * answer is 480, NULL. */
static ap_visit *lock_joined(ap_session *s, outcome *out) {
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		out->answer = shell_error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
	}
	return av;
}

/* Find the visit a join names (under visits_mutex). */
static ap_visit *join_target(const proto_request *req, json_t **error) {
	ap_visit *av;
	if(req->role == VISIT_ROLE_CLIENT) {
		auth_digest d;
		auth_digest_of(req->invite, &d);
		av = g_hash_table_lookup(ap->visits_by_invite, &d);
		if(av == NULL)
			*error = shell_error_json(PROTO_ERR_INVALID_INVITE, "Invalid invite");
	} else {
		av = g_hash_table_lookup(ap->visits, req->visit_id);
		if(av == NULL)
			*error = shell_error_json(PROTO_ERR_NO_SUCH_VISIT, "No such visit");
	}
	return av;
}

/* --- a join for a visit of another instance (PROTOCOL.md v1.1 "Scale") ----------
 * With a shared database (db_url), a join naming a visit this instance
 * does not hold is looked up in the store (its analytics lane: no Janus
 * thread waits) and answered from there: 498 with the servers of the
 * instance that holds it, or the error the join would have had. */
typedef struct locate_job {
	ap_session *s;                       /* reference held */
	char *transaction;
	gboolean client;                     /* an invite: a refusal counts as a refused credential */
	json_t *not_found;                   /* the answer when nobody holds it */
} locate_job;

static void located(store_rc rc, const char *instance_id, const char *servers_json, void *user) {
	locate_job *j = user;
	json_t *answer = NULL;
	if(rc == STORE_OK && instance_id && instance_id[0] && strcmp(instance_id, ap->settings.instance_id) != 0) {
		json_t *servers = json_loads(servers_json ? servers_json : "[]", 0, NULL);
		if(!json_is_array(servers)) {
			json_decref(servers);
			servers = json_array();
		}
		answer = json_array_size(servers) > 0 ?
			shell_error_json(PROTO_ERR_OTHER_INSTANCE, "This visit runs on another server: join it there") :
			shell_error_json(PROTO_ERR_OTHER_INSTANCE, "This visit runs on another server, which did not "
				"publish its address (general.public_servers)");
		json_object_set_new(answer, "servers", servers);
		json_object_set_new(answer, "instance_id", json_string(instance_id));
		JANUS_LOG(LOG_INFO, "[%s] a join for a visit of instance %s was sent there\n", ALLIANCE_PACKAGE, instance_id);
	} else if(rc == STORE_UNAVAILABLE || rc == STORE_BUSY || rc == STORE_ERR) {
		answer = shell_error_json(PROTO_ERR_STORE, "The visit could not be looked up now (the store is "
			"unavailable); try again");
	} else {
		if(j->client)
			shell_credential_refused(j->s);
		answer = json_incref(j->not_found);
	}
	if(!g_atomic_int_get(&j->s->destroyed))
		shell_push(j->s, j->transaction, answer, NULL);
	else
		json_decref(answer);
	json_decref(j->not_found);
	g_free(j->transaction);
	janus_refcount_decrease(&j->s->ref);
	g_free(j);
}

/* Takes not_found. TRUE if the answer will come from the lookup. */
static gboolean locate_elsewhere(ap_session *s, const proto_request *req, const char *transaction,
		json_t *not_found) {
	if(ap->settings.db_url == NULL || transaction == NULL)
		return FALSE;                    /* SQLite: one instance holds everything */
	char hex[2 * AUTH_DIGEST_LEN + 1];
	if(req->role == VISIT_ROLE_CLIENT) {
		auth_digest d;
		auth_digest_of(req->invite, &d);
		auth_digest_hex(&d, hex);
	}
	locate_job *j = g_new0(locate_job, 1);
	janus_refcount_increase(&s->ref);
	j->s = s;
	j->transaction = g_strdup(transaction);
	j->client = req->role == VISIT_ROLE_CLIENT;
	j->not_found = not_found;
	if(store_visit_locate(ap->db, j->client ? NULL : req->visit_id, j->client ? hex : NULL,
			located, j) < 0) {
		j->not_found = NULL;
		g_free(j->transaction);
		janus_refcount_decrease(&s->ref);
		g_free(j);
		return FALSE;
	}
	return TRUE;
}

static void request_join(ap_session *s, const proto_request *req, const char *transaction, outcome *out) {
	const char *code = NULL;
	char code_buf[AUTH_CODE_MAX + 1];
	int supervisor = -1;
	if(req->role == VISIT_ROLE_THERAPIST) {
		if((code = shell_auth_therapist(s, req, code_buf, &out->answer)) == NULL)
			return;
	} else if(req->role == VISIT_ROLE_OBSERVER) {
		if((supervisor = shell_auth_supervisor(s, req, &out->answer)) < 0)
			return;
	}
	char rejoin[AUTH_TOKEN_CHARS + 1] = "";
	if(req->role == VISIT_ROLE_CLIENT && auth_token_new(rejoin) < 0) {
		out->answer = shell_error_json(PROTO_ERR_INTERNAL, "Could not draw random numbers");
		return;
	}
	shell_failpoint("join_before_lock");
	janus_mutex_lock(&ap->visits_mutex);
	/* destroy_session sets `destroyed` before it takes this lock to unseat:
	 * a handle seated after that would stay seated for good */
	if(g_atomic_int_get(&s->destroyed)) {
		janus_mutex_unlock(&ap->visits_mutex);
		out->answer = shell_error_json(PROTO_ERR_NOT_JOINED, "This handle is going away");
		return;
	}
	if(s->visit != NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		out->answer = shell_error_json(PROTO_ERR_ALREADY_JOINED, "This handle already joined a visit");
		return;
	}
	ap_visit *av = join_target(req, &out->answer);
	if(av == NULL) {
		janus_mutex_unlock(&ap->visits_mutex);
		if(locate_elsewhere(s, req, transaction, json_incref(out->answer))) {
			json_decref(out->answer);
			out->answer = NULL;          /* located() answers */
			return;
		}
		json_decref(out->answer);        /* the reference locate_elsewhere did not take */
		if(req->role == VISIT_ROLE_CLIENT)
			shell_credential_refused(s);
		return;
	}
	visit_result r;
	bool first = false, takeover = false;
	bool had_consent = av->v.research_consent;
	if(req->role == VISIT_ROLE_THERAPIST) {
		r = visit_join_therapist(&av->v, code, &takeover);
	} else if(req->role == VISIT_ROLE_CLIENT) {
		r = visit_join_client(&av->v, req->invite, req->rejoin_key, req->research_consent,
			&first, &takeover);
		if(r == VISIT_OK && first) {
			auth_digest rd;
			auth_digest_of(rejoin, &rd);
			visit_set_rejoin(&av->v, &rd);
		}
	} else {
		/* the same supervisor again is a takeover of their observer seat */
		takeover = FALSE;
		for(GList *l = av->observers; l; l = l->next)
			if(((ap_session *)l->data)->supervisor == supervisor)
				takeover = TRUE;
		r = takeover ? VISIT_OK : visit_join_observer(&av->v);
	}
	if(r != VISIT_OK) {
		janus_mutex_unlock(&ap->visits_mutex);
		memset(rejoin, 0, sizeof(rejoin));
		if(r == VISIT_ERR_UNAUTHORIZED || r == VISIT_ERR_INVITE_USED || r == VISIT_ERR_INVALID_INVITE)
			shell_credential_refused(s);
		out->answer = shell_visit_error(r);
		return;
	}
	s->supervisor = supervisor;
	ap_session *old = shell_seat_locked(av, s, req->role);
	gint64 now = janus_get_real_time();
	if(old) {
		/* the old tab, a dead laptop, a lost network: it hears why, and its
		 * PeerConnection is hung up once the lock is released */
		outcome_event(out, old, json_pack("{s:s, s:s}", "alliance", "replaced", "visit_id", av->v.id));
		out->hangup = g_list_prepend(out->hangup, old);    /* takes old's reference */
		JANUS_LOG(LOG_INFO, "[%s] %s seat taken over by a new handle\n", ALLIANCE_PACKAGE,
			visit_role_name(req->role));
	}
	/* consent withdrawn at this join: observers leave at once */
	if(req->role == VISIT_ROLE_CLIENT && had_consent && !req->research_consent && av->observers) {
		GList *removed = shell_observers_remove_locked(av);
		out->hangup = g_list_concat(out->hangup, removed);
	}
	if(req->role != VISIT_ROLE_OBSERVER)
		g_strlcpy(av->lang[req->role == VISIT_ROLE_THERAPIST ? 0 : 1],
			req->language ? req->language : "", PROTO_LANG_MAX + 1);
	store_participant_join(ap->db, av->v.id, visit_role_name(req->role),
		req->role == VISIT_ROLE_THERAPIST ? av->v.therapist_code :
		req->role == VISIT_ROLE_CLIENT ? av->v.client_code : NULL,
		req->role == VISIT_ROLE_CLIENT ? req->research_consent : FALSE,
		req->language, now, stored, (void *)"participant");
	if(first && av->v.state == VISIT_WAITING)
		store_visit_state(ap->db, av->v.id, "waiting", now, stored, (void *)"visit waiting");
	out->answer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "alliance", "joined",
		"role", visit_role_name(req->role), "visit_id", av->v.id,
		"state", visit_state_name(av->v.state), "modality", visit_modality_name(av->v.modality),
		"participants", shell_participants_json(av));
	if(first)
		json_object_set_new(out->answer, "rejoin_key", json_string(rejoin));
	if(takeover)
		json_object_set_new(out->answer, "took_over", json_true());
	memset(rejoin, 0, sizeof(rejoin));
	/* the therapist learns who is waiting, or that the client is back */
	if(av->therapist && av->v.client_present && req->role != VISIT_ROLE_OBSERVER) {
		if(av->v.state == VISIT_WAITING)
			outcome_event(out, av->therapist, json_pack("{s:s, s:s}", "alliance", "waiting",
				"client_code", av->v.client_code));
		else if(req->role == VISIT_ROLE_CLIENT)
			outcome_event(out, av->therapist, json_pack("{s:s, s:s, s:b, s:b}", "alliance",
				"participant_joined", "role", "client", "admitted", av->v.client_admitted,
				"replaced", takeover));
	}
	if(req->role == VISIT_ROLE_THERAPIST && av->client)
		outcome_event(out, av->client, json_pack("{s:s, s:s, s:b}", "alliance",
			"participant_joined", "role", "therapist", "replaced", takeover));
	/* a supervisor watching: both participants hear of a new one, and a
	 * participant who (re-)joins while one watches hears of it too */
	if(req->role == VISIT_ROLE_OBSERVER && !takeover) {
		ap_session *seats[2] = { av->therapist, av->client };
		for(int i = 0; i < 2; i++)
			if(seats[i])
				outcome_event(out, seats[i], json_pack("{s:s, s:s, s:i}", "alliance", "observer_joined",
					"visit_id", av->v.id, "observers", av->v.observers));
	} else if(req->role != VISIT_ROLE_OBSERVER && av->observers) {
		outcome_event(out, s, json_pack("{s:s, s:s, s:i}", "alliance", "observer_joined",
			"visit_id", av->v.id, "observers", av->v.observers));
	}
	shell_notify(s->handle, "joined", json_pack("{s:s, s:s, s:s, s:b}", "visit_id", av->v.id,
		"role", visit_role_name(req->role), "state", visit_state_name(av->v.state),
		"took_over", takeover));
	janus_mutex_unlock(&ap->visits_mutex);
	/* after the `joined` answer: pulses that waited for this participant
	 * (one open on the old handle, an end pulse on re-join within the grace) */
	out->deferred_visit = av;
	janus_refcount_increase(&av->ref);
}

/* `reinvite` (therapist): a new client link; the old invite and re-join
 * key stop working at once. */
static void request_reinvite(ap_session *s, outcome *out) {
	char invite[AUTH_TOKEN_CHARS + 1];
	if(auth_token_new(invite) < 0) {
		out->answer = shell_error_json(PROTO_ERR_INTERNAL, "Could not draw random numbers");
		return;
	}
	auth_digest d;
	auth_digest_of(invite, &d);
	ap_visit *av = lock_joined(s, out);
	if(av == NULL)
		return;
	/* the table's key is the visit's own digest: out before it changes */
	g_hash_table_remove(ap->visits_by_invite, &av->v.invite);
	visit_result r = visit_reinvite(&av->v, s->role, &d);
	g_hash_table_insert(ap->visits_by_invite, &av->v.invite, av);
	if(r != VISIT_OK) {
		janus_mutex_unlock(&ap->visits_mutex);
		memset(invite, 0, sizeof(invite));
		out->answer = shell_visit_error(r);
		return;
	}
	out->answer = json_pack("{s:s, s:s, s:s}", "alliance", "reinvited", "visit_id", av->v.id,
		"invite", invite);
	add_client_token(out->answer);
	shell_notify(s->handle, "reinvited", json_pack("{s:s}", "visit_id", av->v.id));
	janus_mutex_unlock(&ap->visits_mutex);
	memset(invite, 0, sizeof(invite));
	JANUS_LOG(LOG_INFO, "[%s] a new client invite was issued for a visit\n", ALLIANCE_PACKAGE);
}

static void request_admit(ap_session *s, outcome *out) {
	ap_visit *av = lock_joined(s, out);
	if(av == NULL)
		return;
	gint64 mono = janus_get_monotonic_time();
	visit_result r = visit_admit(&av->v, s->role, mono);
	if(r != VISIT_OK) {
		janus_mutex_unlock(&ap->visits_mutex);
		out->answer = shell_visit_error(r);
		return;
	}
	shell_sync_links(av);
	pulse_sched_live(&av->ps, mono);
	store_visit_state(ap->db, av->v.id, "live", shell_wall_us(mono), stored, (void *)"visit live");
	out->answer = json_pack("{s:s, s:s}", "alliance", "admitted", "visit_id", av->v.id);
	outcome_event(out, av->client, json_pack("{s:s, s:s}", "alliance", "admitted", "visit_id", av->v.id));
	shell_notify(s->handle, "admitted", json_pack("{s:s}", "visit_id", av->v.id));
	janus_mutex_unlock(&ap->visits_mutex);
}

static void request_configure(ap_session *s, const proto_request *req, json_t *jsep, outcome *out) {
	const char *type = json_string_value(json_object_get(jsep, "type"));
	const char *sdp = json_string_value(json_object_get(jsep, "sdp"));
	ap_visit *av = lock_joined(s, out);
	if(av == NULL)
		return;
	visit_result r = visit_may_configure(&av->v, s->role);
	gboolean observer = s->role == VISIT_ROLE_OBSERVER;
	janus_mutex_unlock(&ap->visits_mutex);
	if(r != VISIT_OK) {
		out->answer = shell_visit_error(r);
		return;
	}
	if(jsep != NULL && (type == NULL || sdp == NULL || strcmp(type, "offer") != 0)) {
		out->answer = shell_error_json(PROTO_ERR_INVALID_SDP, "JSEP must be an offer with an SDP (the plugin answers)");
		return;
	}
	if(jsep == NULL && !g_atomic_int_get(&s->negotiated)) {
		out->answer = shell_error_json(PROTO_ERR_INVALID_SDP, "The first configure needs a JSEP offer");
		return;
	}
	if(sdp) {
		proto_error err;
		json_t *answer = observer ? shell_observe_answer(s, sdp, &err) : shell_sdp_answer(s, sdp, &err);
		if(answer == NULL) {
			out->answer = proto_error_json(&err);
			return;
		}
		if(json_is_true(json_object_get(jsep, "restart")))
			json_object_set_new(answer, "restart", json_true());
		out->jsep = answer;
	}
	/* everything validated: apply */
	if(req->audio >= 0)
		g_atomic_int_set(&s->send_audio, req->audio);
	if(req->video >= 0)
		g_atomic_int_set(&s->send_video, req->video);
	out->answer = json_pack("{s:s, s:b, s:b}", "alliance", "configured",
		"audio", g_atomic_int_get(&s->send_audio), "video", g_atomic_int_get(&s->send_video));
}

/* End the visit: the relay stops, the end pulses go out, and the visit
 * accepts answers for end_grace_s (the timer closes it then). The
 * PeerConnections stay up so the end pulses can use the data channel; the
 * pages hang up their media themselves. */
static void request_end(ap_session *s, outcome *out) {
	ap_visit *av = lock_joined(s, out);
	if(av == NULL)
		return;
	if(s->role != VISIT_ROLE_THERAPIST) {
		janus_mutex_unlock(&ap->visits_mutex);
		out->answer = shell_visit_error(VISIT_ERR_FORBIDDEN);
		return;
	}
	json_t *ids = json_array();
	visit_result r = shell_visit_end_locked(av, VISIT_END_THERAPIST, janus_get_monotonic_time(), TRUE, ids);
	if(r != VISIT_OK) {
		janus_mutex_unlock(&ap->visits_mutex);
		json_decref(ids);
		out->answer = shell_visit_error(r);
		return;
	}
	out->answer = json_pack("{s:s, s:s, s:o, s:i, s:s}", "alliance", "ended", "visit_id", av->v.id,
		"pulse_ids", ids, "end_grace_s", ap->settings.end_grace_s, "end_reason", "therapist");
	outcome_event(out, av->client, json_pack("{s:s, s:s, s:i, s:s}", "alliance", "ended",
		"visit_id", av->v.id, "end_grace_s", ap->settings.end_grace_s, "end_reason", "therapist"));
	/* the end pulses follow the `ended` answer and event */
	out->deferred_visit = av;
	out->deferred_end = TRUE;
	janus_refcount_increase(&av->ref);
	janus_mutex_unlock(&ap->visits_mutex);
}

/* Returns TRUE if it answered (and detached) itself. */
static gboolean request_leave(ap_session *s, const char *transaction, outcome *out) {
	janus_mutex_lock(&ap->visits_mutex);
	gboolean joined = s->visit != NULL;
	janus_mutex_unlock(&ap->visits_mutex);
	if(!joined) {
		out->answer = shell_error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
		return FALSE;
	}
	/* answer first, then the other side hears of it and the PC closes */
	shell_push(s, transaction, json_pack("{s:s}", "alliance", "left"), NULL);
	shell_session_detach(s, TRUE);
	return TRUE;
}

static void handle_async(ap_message *m) {
	ap_session *s = m->s;
	proto_request req;
	proto_error err;
	outcome out;
	memset(&out, 0, sizeof(out));
	if(proto_parse(m->message, &req, &err) < 0) {
		out.answer = proto_error_json(&err);   /* parsed before; defensive */
	} else {
		switch(req.kind) {
			case PROTO_JOIN: request_join(s, &req, m->transaction, &out); break;
			case PROTO_ADMIT: request_admit(s, &out); break;
			case PROTO_CONFIGURE: request_configure(s, &req, m->jsep, &out); break;
			case PROTO_END: request_end(s, &out); break;
			case PROTO_REINVITE: request_reinvite(s, &out); break;
			case PROTO_PULSE: out.answer = shell_pulse_request(s, &req); break;
			case PROTO_LEAVE:
				if(request_leave(s, m->transaction, &out))
					return;
				break;
			default: out.answer = shell_error_json(PROTO_ERR_INTERNAL, "Unexpected request"); break;
		}
	}
	if(out.answer && json_is_string(json_object_get(out.answer, "alliance")) &&
			!strcmp(json_string_value(json_object_get(out.answer, "alliance")), "error")) {
		shell_refuse_offer(s, m->jsep, out.answer);
		JANUS_LOG(LOG_VERB, "[%s-%p] request refused: %s\n", ALLIANCE_PACKAGE, s->handle,
			json_string_value(json_object_get(out.answer, "error")));
	}
	outcome_deliver(&out, s, m->transaction);
}

static void *message_thread(void *data) {
	JANUS_LOG(LOG_VERB, "[%s] message thread started\n", ALLIANCE_PACKAGE);
	while(g_atomic_int_get(&ap->initialized) && !g_atomic_int_get(&ap->stopping)) {
		ap_message *m = g_async_queue_pop(messages);
		if(m == &exit_message)
			break;
		if(m->s && !g_atomic_int_get(&m->s->destroyed))
			handle_async(m);
		message_free(m);
	}
	JANUS_LOG(LOG_VERB, "[%s] message thread stopped\n", ALLIANCE_PACKAGE);
	return NULL;
}

int shell_requests_start(void) {
	messages = g_async_queue_new_full((GDestroyNotify)message_free);
	GError *error = NULL;
	handler_thread = g_thread_try_new("alliance handler", message_thread, NULL, &error);
	if(error != NULL) {
		JANUS_LOG(LOG_ERR, "[%s] cannot start the message thread: %s\n", ALLIANCE_PACKAGE,
			error->message ? error->message : "??");
		g_error_free(error);
		g_async_queue_unref(messages);
		messages = NULL;
		return -1;
	}
	return 0;
}

void shell_requests_stop(void) {
	if(messages == NULL)
		return;
	g_async_queue_push(messages, &exit_message);
	if(handler_thread != NULL) {
		g_thread_join(handler_thread);
		handler_thread = NULL;
	}
	/* Requests still queued: Janus destroys plugins only after it closed
	 * (and unloaded) its transports, so no answer could reach anyone now
	 * (and a push would call into an unloaded transport). They are
	 * counted and dropped; the visits they were about are closed as
	 * `shutdown` next. */
	ap_message *m;
	int dropped = 0;
	while((m = g_async_queue_try_pop(messages)) != NULL) {
		if(m != &exit_message)
			dropped++;
		message_free(m);
	}
	if(dropped)
		JANUS_LOG(LOG_INFO, "[%s] shutdown: %d queued request(s) not run (Janus has closed its transports)\n",
			ALLIANCE_PACKAGE, dropped);
	g_async_queue_unref(messages);
	messages = NULL;
}
