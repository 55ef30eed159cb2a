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
#include <string.h>

#include <debug.h>
#include <utils.h>

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

/* --- visits -------------------------------------------------------------- */
static void visit_free(const janus_refcount *ref) {
	ap_visit *av = janus_refcount_containerof(ref, ap_visit, ref);
	g_free(av);
}

void shell_visit_unref(ap_visit *av) {
	if(av)
		janus_refcount_decrease(&av->ref);
}

/* Remove a visit from the tables (under visits_mutex). */
static void visit_forget(ap_visit *av) {
	g_hash_table_remove(visits_by_invite, &av->v.invite);
	if(g_hash_table_remove(visits, av->v.id))
		shell_visit_unref(av);   /* the table's reference */
}

static ap_session **slot_of(ap_visit *av, visit_role role) {
	if(role == VISIT_ROLE_THERAPIST)
		return &av->therapist;
	if(role == VISIT_ROLE_CLIENT)
		return &av->client;
	return NULL;
}

/* Put s into the visit (under visits_mutex): s keeps a reference on the
 * visit, the visit's slot one on s. */
static void seat(ap_visit *av, ap_session *s, visit_role role) {
	janus_refcount_increase(&av->ref);
	s->visit = av;
	s->role = role;
	ap_session **slot = slot_of(av, role);
	if(slot) {
		janus_refcount_increase(&s->ref);
		*slot = s;
	}
}

/* Take s out of its visit (under visits_mutex). Returns the visit, whose
 * reference the caller now owns. */
static ap_visit *unseat(ap_session *s) {
	ap_visit *av = s->visit;
	if(av == NULL)
		return NULL;
	shell_unlink(av);
	visit_leave(&av->v, s->role);
	ap_session **slot = slot_of(av, s->role);
	if(slot && *slot == s) {
		*slot = NULL;
		janus_refcount_decrease(&s->ref);
	}
	s->visit = NULL;
	s->role = VISIT_ROLE_NONE;
	shell_sync_links(av);
	return av;
}

static void push_event_to(ap_session *target, json_t *event) {
	if(target == NULL || g_atomic_int_get(&target->destroyed)) {
		json_decref(event);
		return;
	}
	shell_push(target, NULL, event, NULL);
}

void shell_session_detach(ap_session *s, gboolean close_media) {
	janus_mutex_lock(&visits_mutex);
	visit_role role = s->role;
	ap_visit *av = unseat(s);
	ap_session *other = NULL;
	if(av) {
		other = (role == VISIT_ROLE_THERAPIST) ? av->client :
			(role == VISIT_ROLE_CLIENT) ? av->therapist : NULL;
		if(other)
			janus_refcount_increase(&other->ref);
		shell_notify(s->handle, "left", json_pack("{s:s, s:s}",
			"visit_id", av->v.id, "role", visit_role_name(role)));
	}
	janus_mutex_unlock(&visits_mutex);
	if(other) {
		push_event_to(other, json_pack("{s:s, s:s}", "alliance", "participant_left",
			"role", visit_role_name(role)));
		janus_refcount_decrease(&other->ref);
	}
	if(close_media && g_atomic_int_get(&s->media_up))
		gateway->close_pc(s->handle);
	shell_visit_unref(av);
}

void shell_visits_destroy_all(void) {
	janus_mutex_lock(&visits_mutex);
	GList *all = g_hash_table_get_values(visits);
	for(GList *l = all; l; l = l->next) {
		ap_visit *av = l->data;
		ap_session *slots[2] = { av->therapist, av->client };
		for(int i = 0; i < 2; i++)
			if(slots[i])
				shell_visit_unref(unseat(slots[i]));
		visit_close(&av->v);
		visit_forget(av);
	}
	g_list_free(all);
	janus_mutex_unlock(&visits_mutex);
}

/* --- answers ------------------------------------------------------------- */
static json_t *error_json(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static json_t *error_json(int code, const char *fmt, ...) {
	proto_error err;
	err.code = code;
	va_list ap;
	va_start(ap, fmt);
	g_vsnprintf(err.reason, sizeof(err.reason), fmt, ap);
	va_end(ap);
	return proto_error_json(&err);
}

static json_t *visit_error(visit_result r) {
	switch(r) {
		case VISIT_ERR_UNAUTHORIZED: return error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (this key does not belong to the visit's therapist)");
		case VISIT_ERR_INVALID_INVITE: return error_json(PROTO_ERR_INVALID_INVITE, "Invalid invite");
		case VISIT_ERR_INVITE_USED: return error_json(PROTO_ERR_INVITE_USED, "Invite already used: re-join with the rejoin_key given at the first join");
		case VISIT_ERR_FORBIDDEN: return error_json(PROTO_ERR_FORBIDDEN, "This role may not make this request");
		case VISIT_ERR_ROLE_PRESENT: return error_json(PROTO_ERR_ALREADY_JOINED, "That role is already present in the visit");
		case VISIT_ERR_NOT_ADMITTED: return error_json(PROTO_ERR_NOT_ADMITTED, "Not admitted yet: wait for the therapist");
		case VISIT_ERR_WRONG_STATE: return error_json(PROTO_ERR_WRONG_STATE, "Not possible in the visit's current state");
		case VISIT_ERR_CLOSED: return error_json(PROTO_ERR_NO_SUCH_VISIT, "The visit is closed");
		case VISIT_ERR_NO_CONSENT: return error_json(PROTO_ERR_NO_CONSENT, "The client did not consent to observers");
		case VISIT_OK: break;
	}
	return error_json(PROTO_ERR_INTERNAL, "Internal error");
}

static json_t *participants_json(ap_visit *av) {
	return json_pack("{s:{s:s, s:b}, s:{s:s, s:b, s:b, s:b}, s:i}",
		"therapist", "code", av->v.therapist_code, "present", av->v.therapist_present,
		"client", "code", av->v.client_code, "present", av->v.client_present,
			"admitted", av->v.client_admitted, "research_consent", av->v.research_consent,
		"observers", av->v.observers);
}

/* --- sync requests (answered from handle_message) ------------------------ */
static json_t *request_create(const proto_request *req) {
	const char *code = auth_keyring_therapist(settings.keys, req->therapist_key);
	if(code == NULL)
		return error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (wrong therapist key)");
	char id[AUTH_TOKEN_CHARS + 1], invite[AUTH_TOKEN_CHARS + 1];
	if(auth_token_new(id) < 0 || auth_token_new(invite) < 0)
		return error_json(PROTO_ERR_INTERNAL, "Could not draw random numbers");
	auth_digest invite_digest;
	auth_digest_of(invite, &invite_digest);
	janus_mutex_lock(&visits_mutex);
	if((int)g_hash_table_size(visits) >= settings.max_visits) {
		janus_mutex_unlock(&visits_mutex);
		return error_json(PROTO_ERR_LIMIT_REACHED, "Too many open visits (max_visits=%d)", settings.max_visits);
	}
	ap_visit *av = g_new0(ap_visit, 1);
	janus_refcount_init(&av->ref, visit_free);     /* the table's reference */
	visit_init(&av->v, id, code, req->client_code, req->modality, &invite_digest,
		janus_get_real_time());
	g_hash_table_insert(visits, av->v.id, av);
	g_hash_table_insert(visits_by_invite, &av->v.invite, av);
	janus_mutex_unlock(&visits_mutex);
	JANUS_LOG(LOG_INFO, "[%s] visit created (%s)\n", ALLIANCE_PACKAGE, visit_modality_name(req->modality));
	shell_notify(NULL, "created", json_pack("{s:s, s:s}", "visit_id", id,
		"modality", visit_modality_name(req->modality)));
	json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "alliance", "created",
		"visit_id", id, "invite", invite, "modality", visit_modality_name(req->modality));
	memset(invite, 0, sizeof(invite));
	return r;
}

static json_t *request_status(ap_session *s) {
	janus_mutex_lock(&visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&visits_mutex);
		return error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
	}
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:[], s:{}}",
		"alliance", "status", "visit_id", av->v.id, "state", visit_state_name(av->v.state),
		"modality", visit_modality_name(av->v.modality), "role", visit_role_name(s->role),
		"participants", participants_json(av), "pending_pulses", "quality");
	janus_mutex_unlock(&visits_mutex);
	return r;
}

json_t *shell_request_sync(ap_session *s, const proto_request *req) {
	switch(req->kind) {
		case PROTO_CREATE: return request_create(req);
		case PROTO_STATUS: return request_status(s);
		default: return error_json(PROTO_ERR_INTERNAL, "Not a synchronous request");
	}
}

/* --- async requests (message thread) ------------------------------------- */
/* A handler fills an outcome: the answer pushed with the request's
 * transaction (plus an optional JSEP), then events for participants, then
 * PeerConnections to close — all delivered after visits_mutex is released,
 * in that order, so a participant always sees its answer before the events
 * it caused. */
#define OUTCOME_MAX 4
typedef struct outcome {
	json_t *answer;
	json_t *jsep;
	ap_session *event_to[OUTCOME_MAX];   /* references held */
	json_t *event[OUTCOME_MAX];
	int events;
	ap_session *close[2];                /* references held */
	int closes;
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

static void outcome_close(outcome *out, ap_session *s) {
	if(s == NULL || out->closes >= 2)
		return;
	janus_refcount_increase(&s->ref);
	out->close[out->closes++] = s;
}

static void outcome_deliver(outcome *out, ap_session *s, const char *transaction) {
	if(out->answer)
		shell_push(s, transaction, out->answer, out->jsep);
	else if(out->jsep)
		json_decref(out->jsep);
	for(int i = 0; i < out->events; i++) {
		push_event_to(out->event_to[i], out->event[i]);
		janus_refcount_decrease(&out->event_to[i]->ref);
	}
	for(int i = 0; i < out->closes; i++) {
		if(g_atomic_int_get(&out->close[i]->media_up))
			gateway->close_pc(out->close[i]->handle);
		janus_refcount_decrease(&out->close[i]->ref);
	}
}

/* Find the visit a join names (under visits_mutex). */
static ap_visit *join_target(const proto_request *req, json_t **error) {
	ap_visit *av;
	if(req->role == VISIT_ROLE_CLIENT) {
		auth_digest d;
		auth_digest_of(req->invite, &d);
		av = g_hash_table_lookup(visits_by_invite, &d);
		if(av == NULL)
			*error = error_json(PROTO_ERR_INVALID_INVITE, "Invalid invite");
	} else {
		av = g_hash_table_lookup(visits, req->visit_id);
		if(av == NULL)
			*error = error_json(PROTO_ERR_NO_SUCH_VISIT, "No such visit");
	}
	return av;
}

static void request_join(ap_session *s, const proto_request *req, outcome *out) {
	const char *code = NULL;
	if(req->role == VISIT_ROLE_THERAPIST) {
		code = auth_keyring_therapist(settings.keys, req->therapist_key);
		if(code == NULL) {
			out->answer = error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (wrong therapist key)");
			return;
		}
	} else if(req->role == VISIT_ROLE_OBSERVER) {
		if(!auth_keyring_supervisor(settings.keys, req->supervisor_key)) {
			out->answer = error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (wrong supervisor key)");
			return;
		}
	}
	char rejoin[AUTH_TOKEN_CHARS + 1] = "";
	if(req->role == VISIT_ROLE_CLIENT && auth_token_new(rejoin) < 0) {
		out->answer = error_json(PROTO_ERR_INTERNAL, "Could not draw random numbers");
		return;
	}
	janus_mutex_lock(&visits_mutex);
	if(s->visit != NULL) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = error_json(PROTO_ERR_ALREADY_JOINED, "This handle already joined a visit");
		return;
	}
	ap_visit *av = join_target(req, &out->answer);
	if(av == NULL) {
		janus_mutex_unlock(&visits_mutex);
		return;
	}
	visit_result r;
	bool first = false;
	if(req->role == VISIT_ROLE_THERAPIST) {
		r = visit_join_therapist(&av->v, code);
	} else if(req->role == VISIT_ROLE_CLIENT) {
		r = visit_join_client(&av->v, req->invite, req->rejoin_key, req->research_consent, &first);
		if(r == VISIT_OK && first) {
			auth_digest rd;
			auth_digest_of(rejoin, &rd);
			visit_set_rejoin(&av->v, &rd);
		}
	} else {
		r = visit_join_observer(&av->v);
	}
	if(r != VISIT_OK) {
		janus_mutex_unlock(&visits_mutex);
		memset(rejoin, 0, sizeof(rejoin));
		out->answer = visit_error(r);
		return;
	}
	seat(av, s, req->role);
	shell_sync_links(av);
	out->answer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "alliance", "joined",
		"role", visit_role_name(req->role), "visit_id", av->v.id,
		"state", visit_state_name(av->v.state), "modality", visit_modality_name(av->v.modality),
		"participants", participants_json(av));
	if(first)
		json_object_set_new(out->answer, "rejoin_key", json_string(rejoin));
	memset(rejoin, 0, sizeof(rejoin));
	/* the therapist learns who is waiting, or that the client is back */
	if(av->therapist && av->v.client_present && req->role != VISIT_ROLE_OBSERVER) {
		if(av->v.state == VISIT_WAITING)
			outcome_event(out, av->therapist, json_pack("{s:s, s:s}", "alliance", "waiting",
				"client_code", av->v.client_code));
		else if(req->role == VISIT_ROLE_CLIENT)
			outcome_event(out, av->therapist, json_pack("{s:s, s:s, s:b}", "alliance",
				"participant_joined", "role", "client", "admitted", av->v.client_admitted));
	}
	if(req->role == VISIT_ROLE_THERAPIST && av->client)
		outcome_event(out, av->client, json_pack("{s:s, s:s}", "alliance",
			"participant_joined", "role", "therapist"));
	shell_notify(s->handle, "joined", json_pack("{s:s, s:s, s:s}", "visit_id", av->v.id,
		"role", visit_role_name(req->role), "state", visit_state_name(av->v.state)));
	janus_mutex_unlock(&visits_mutex);
}

static void request_admit(ap_session *s, outcome *out) {
	janus_mutex_lock(&visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
		return;
	}
	visit_result r = visit_admit(&av->v, s->role, janus_get_real_time());
	if(r != VISIT_OK) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = visit_error(r);
		return;
	}
	shell_sync_links(av);
	out->answer = json_pack("{s:s, s:s}", "alliance", "admitted", "visit_id", av->v.id);
	outcome_event(out, av->client, json_pack("{s:s, s:s}", "alliance", "admitted", "visit_id", av->v.id));
	shell_notify(s->handle, "admitted", json_pack("{s:s}", "visit_id", av->v.id));
	janus_mutex_unlock(&visits_mutex);
}

static void request_configure(ap_session *s, const proto_request *req, json_t *jsep, outcome *out) {
	const char *type = json_string_value(json_object_get(jsep, "type"));
	const char *sdp = json_string_value(json_object_get(jsep, "sdp"));
	janus_mutex_lock(&visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
		return;
	}
	visit_result r = visit_may_configure(&av->v, s->role);
	janus_mutex_unlock(&visits_mutex);
	if(r != VISIT_OK) {
		out->answer = visit_error(r);
		return;
	}
	if(jsep != NULL && (type == NULL || sdp == NULL || strcmp(type, "offer") != 0)) {
		out->answer = error_json(PROTO_ERR_INVALID_SDP, "JSEP must be an offer with an SDP (the plugin answers)");
		return;
	}
	if(jsep == NULL && !g_atomic_int_get(&s->negotiated)) {
		out->answer = error_json(PROTO_ERR_INVALID_SDP, "The first configure needs a JSEP offer");
		return;
	}
	if(sdp) {
		proto_error err;
		json_t *answer = shell_sdp_answer(s, sdp, &err);
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

/* End the visit: stop relay, tell the client, close both PCs, close it. */
static void request_end(ap_session *s, outcome *out) {
	janus_mutex_lock(&visits_mutex);
	ap_visit *av = s->visit;
	if(av == NULL) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
		return;
	}
	visit_result r = visit_end(&av->v, s->role, janus_get_real_time());
	if(r != VISIT_OK) {
		janus_mutex_unlock(&visits_mutex);
		out->answer = visit_error(r);
		return;
	}
	char id[VISIT_ID_MAX + 1];
	g_strlcpy(id, av->v.id, sizeof(id));
	shell_unlink(av);
	out->answer = json_pack("{s:s, s:s, s:[]}", "alliance", "ended", "visit_id", id, "pulse_ids");
	outcome_event(out, av->client, json_pack("{s:s, s:s}", "alliance", "ended", "visit_id", id));
	outcome_close(out, av->client);
	outcome_close(out, av->therapist);
	/* for now ending closes the visit at once (answers after `end` arrive
	 * with pulses, in a later version) */
	ap_session *slots[2] = { av->therapist, av->client };
	janus_refcount_increase(&av->ref);
	for(int i = 0; i < 2; i++)
		if(slots[i])
			shell_visit_unref(unseat(slots[i]));
	visit_close(&av->v);
	visit_forget(av);
	shell_notify(s->handle, "ended", json_pack("{s:s}", "visit_id", id));
	janus_mutex_unlock(&visits_mutex);
	shell_visit_unref(av);
	JANUS_LOG(LOG_INFO, "[%s] visit ended and closed\n", ALLIANCE_PACKAGE);
}

/* Returns TRUE if it answered (and detached) itself. */
static gboolean request_leave(ap_session *s, const char *transaction, outcome *out) {
	janus_mutex_lock(&visits_mutex);
	gboolean joined = s->visit != NULL;
	janus_mutex_unlock(&visits_mutex);
	if(!joined) {
		out->answer = error_json(PROTO_ERR_NOT_JOINED, "Join a visit first");
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
			case PROTO_JOIN: request_join(s, &req, &out); break;
			case PROTO_ADMIT: request_admit(s, &out); break;
			case PROTO_CONFIGURE: request_configure(s, &req, m->jsep, &out); break;
			case PROTO_END: request_end(s, &out); break;
			case PROTO_LEAVE:
				if(request_leave(s, m->transaction, &out))
					return;
				break;
			default: out.answer = error_json(PROTO_ERR_INTERNAL, "Unexpected request"); break;
		}
	}
	if(out.answer && json_is_string(json_object_get(out.answer, "alliance")) &&
			!strcmp(json_string_value(json_object_get(out.answer, "alliance")), "error"))
		JANUS_LOG(LOG_VERB, "[%s-%p] request refused: %s\n", ALLIANCE_PACKAGE, s->handle,
			json_string_value(json_object_get(out.answer, "error")));
	outcome_deliver(&out, s, m->transaction);
}

static void *message_thread(void *data) {
	JANUS_LOG(LOG_VERB, "[%s] message thread started\n", ALLIANCE_PACKAGE);
	while(g_atomic_int_get(&initialized) && !g_atomic_int_get(&stopping)) {
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
	g_async_queue_unref(messages);
	messages = NULL;
}
