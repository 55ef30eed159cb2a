/*
 * shell_visits.c — the life of a visit on the Janus side: seats and
 * takeover, leaving, ending, closing, the idle and age limits, shutdown,
 * and the start-up repair of visits a crash left open.
 *
 * Every visit reaches `closed` with an end reason, through one function,
 * shell_visit_close_locked(), whatever closes it: the end grace running
 * out, nobody being there (idle_close_s), Janus stopping, or — for a visit
 * found open in the store at start-up — the repair. A visit that had not
 * ended is ended first (no end pulses), so the store always sees
 * ended → closed.
 *
 * Seats. A seat (therapist, client, one per supervisor for observers) is
 * held by one handle, like a lease: a join with valid credentials moves
 * it to the new handle at once (shell_seat_locked returns the old holder;
 * the caller tells it `replaced` and hangs up its PeerConnection). Nothing
 * waits for Janus's session timeout to notice that a tab is gone.
 *
 * Everything here runs under visits_mutex (the *_locked functions) except
 * shell_session_detach(), shell_visits_shutdown() and the repair, which
 * take it themselves. PeerConnections are closed only with no lock held.
 */
#include "shell.h"

#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

static ap_plugin *ap;

void shell_visits_init(ap_plugin *plugin) {
	ap = plugin;
}

static void stored(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_ERR, "[%s] store: %s (%s)\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc), (const char *)user);
}

/* Remove a visit from the tables. */
static void visit_forget(ap_visit *av) {
	g_hash_table_remove(ap->visits_by_invite, &av->v.invite);
	if(g_hash_table_remove(ap->visits, av->v.id))
		shell_visit_unref(av);   /* the table's reference */
}

json_t *shell_participants_json(ap_visit *av) {
	return json_pack("{s:{s:s, s:b}, s:{s:s, s:b, s:b, s:b}, s:i}",
		"therapist", "code", av->v.therapist_code, "present", av->v.therapist_present,
		"client", "code", av->v.client_code, "present", av->v.client_present,
			"admitted", av->v.client_admitted, "research_consent", av->v.research_consent,
		"observers", av->v.observers);
}

/* --- seats ------------------------------------------------------------------ */
static ap_session **slot_of(ap_visit *av, visit_role role) {
	if(role == VISIT_ROLE_THERAPIST)
		return &av->therapist;
	if(role == VISIT_ROLE_CLIENT)
		return &av->client;
	return NULL;
}

/* Take s out of its seat without telling the visit that the role left
 * (a takeover keeps the role present). Returns the visit; the caller owns
 * s's reference on it. */
static ap_visit *vacate(ap_session *s) {
	ap_visit *av = s->visit;
	if(av == NULL)
		return NULL;
	ap_session **slot = slot_of(av, s->role);
	if(slot && *slot == s) {
		shell_unlink(av);
		*slot = NULL;
		janus_refcount_decrease(&s->ref);
	} else if(s->role == VISIT_ROLE_OBSERVER) {
		GList *l = g_list_find(av->observers, s);
		if(l) {
			av->observers = g_list_delete_link(av->observers, l);
			janus_refcount_decrease(&s->ref);
		}
	}
	shell_observe_forget(s);
	s->visit = NULL;
	s->role = VISIT_ROLE_NONE;
	return av;
}

/* Take s out of its visit: the role left. Returns the visit, whose
 * reference the caller now owns. */
static ap_visit *unseat(ap_session *s, gint64 now_mono) {
	ap_visit *av = s->visit;
	if(av == NULL)
		return NULL;
	visit_role role = s->role;
	vacate(s);
	visit_leave(&av->v, role, now_mono);
	shell_sync_links(av);
	return av;
}

ap_session *shell_seat_locked(ap_visit *av, ap_session *s, visit_role role) {
	ap_session *old = NULL;
	ap_session **slot = slot_of(av, role);
	if(slot && *slot && *slot != s) {
		old = *slot;
	} else if(role == VISIT_ROLE_OBSERVER) {
		for(GList *l = av->observers; l; l = l->next) {
			ap_session *o = l->data;
			if(o != s && o->supervisor == s->supervisor)
				old = o;
		}
	}
	if(old) {
		janus_refcount_increase(&old->ref);       /* the caller's */
		shell_visit_unref(vacate(old));
	}
	janus_refcount_increase(&av->ref);
	s->closed_visit[0] = '\0';
	s->visit = av;
	s->role = role;
	janus_refcount_increase(&s->ref);
	if(slot)
		*slot = s;
	else
		av->observers = g_list_append(av->observers, s);
	/* av->media_stopped[] stays as it was: if the old handle's media had
	 * stopped, the other side hears `media_resumed` once the new one's
	 * flows (shell_media_presence_locked) */
	shell_sync_links(av);
	return old;
}

void shell_session_detach(ap_session *s, gboolean close_media) {
	janus_mutex_lock(&ap->visits_mutex);
	visit_role role = s->role;
	ap_visit *av = unseat(s, janus_get_monotonic_time());
	ap_session *other = NULL;
	if(av) {
		other = (role == VISIT_ROLE_THERAPIST) ? av->client :
			(role == VISIT_ROLE_CLIENT) ? av->therapist : NULL;
		if(other)
			janus_refcount_increase(&other->ref);
		shell_notify(s->handle, "left", json_pack("{s:s, s:s}",
			"visit_id", av->v.id, "role", visit_role_name(role)));
		if(role == VISIT_ROLE_OBSERVER)
			shell_observe_announce_locked(av, FALSE, "left");
	}
	janus_mutex_unlock(&ap->visits_mutex);
	if(other) {
		shell_push_event(other, json_pack("{s:s, s:s}", "alliance", "participant_left",
			"role", visit_role_name(role)));
		janus_refcount_decrease(&other->ref);
	}
	if(close_media && g_atomic_int_get(&s->media_up))
		ap->gateway->close_pc(s->handle);
	shell_visit_unref(av);
}

GList *shell_observers_remove_locked(ap_visit *av) {
	GList *removed = NULL;
	gint64 now = janus_get_monotonic_time();
	while(av->observers) {
		ap_session *o = av->observers->data;
		janus_refcount_increase(&o->ref);             /* the caller's */
		shell_push_event(o, json_pack("{s:s, s:s, s:s}", "alliance", "removed",
			"visit_id", av->v.id, "reason", "consent_withdrawn"));
		shell_visit_unref(unseat(o, now));
		removed = g_list_prepend(removed, o);
	}
	if(removed)
		shell_observe_announce_locked(av, FALSE, "consent_withdrawn");
	return removed;
}

/* --- ending and closing ------------------------------------------------------- */
visit_result shell_visit_end_locked(ap_visit *av, visit_end_reason reason, gint64 now_mono,
		gboolean with_end_pulses, json_t *pulse_ids) {
	visit_result r = visit_end_by(&av->v, reason, now_mono);
	if(r != VISIT_OK)
		return r;
	shell_unlink(av);
	gint64 wall = shell_wall_us(now_mono);
	store_visit_ended(ap->db, av->v.id, visit_end_reason_name(reason), wall, stored, (void *)"visit ended");
	json_t *ids = pulse_ids ? pulse_ids : json_array();
	shell_pulses_end(av, now_mono, with_end_pulses, ids);
	if(ids != pulse_ids)
		json_decref(ids);
	store_visit_summarize(ap->db, av->v.id, stored, (void *)"visit summary");
	shell_notify(NULL, "ended", json_pack("{s:s, s:s}", "visit_id", av->v.id,
		"end_reason", visit_end_reason_name(reason)));
	JANUS_LOG(LOG_INFO, "[%s] visit ended (%s)\n", ALLIANCE_PACKAGE, visit_end_reason_name(reason));
	return VISIT_OK;
}

void shell_visit_close_locked(ap_visit *av, visit_end_reason reason, gint64 now_mono) {
	janus_refcount_increase(&av->ref);
	if(av->v.state != VISIT_ENDED && av->v.state != VISIT_CLOSED)
		shell_visit_end_locked(av, reason, now_mono, FALSE, NULL);
	visit_end_reason why = av->v.end_reason != VISIT_END_NONE ? av->v.end_reason : reason;
	shell_pulses_expire_all(av, now_mono);    /* (their pulse_expired before `closed`) */
	/* whoever is still seated hears it; late answers on those handles get
	 * `expired`, not `not_joined` */
	ap_session *slots[2] = { av->therapist, av->client };
	for(int i = 0; i < 2; i++)
		if(slots[i]) {
			g_strlcpy(slots[i]->closed_visit, av->v.id, sizeof(slots[i]->closed_visit));
			shell_push_event(slots[i], json_pack("{s:s, s:s, s:s}", "alliance", "closed",
				"visit_id", av->v.id, "end_reason", visit_end_reason_name(why)));
		}
	for(GList *l = av->observers; l; l = l->next)
		shell_push_event(l->data, json_pack("{s:s, s:s, s:s}", "alliance", "closed",
			"visit_id", av->v.id, "end_reason", visit_end_reason_name(why)));
	shell_quality_finish(av, now_mono, shell_wall_us(now_mono));
	store_visit_state(ap->db, av->v.id, "closed", shell_wall_us(now_mono), stored, (void *)"visit closed");
	/* the report row, now that every answer, alert and incident is in */
	store_visit_summarize(ap->db, av->v.id, stored, (void *)"visit summary");
	shell_notify(NULL, "closed", json_pack("{s:s, s:s}", "visit_id", av->v.id,
		"end_reason", visit_end_reason_name(why)));
	while(av->therapist || av->client || av->observers) {
		ap_session *s = av->therapist ? av->therapist : av->client ? av->client : av->observers->data;
		shell_visit_unref(unseat(s, now_mono));
	}
	visit_close(&av->v, why, now_mono);
	visit_forget(av);
	JANUS_LOG(LOG_INFO, "[%s] visit closed (%s)\n", ALLIANCE_PACKAGE, visit_end_reason_name(why));
	shell_visit_unref(av);
}

gboolean shell_visit_lifecycle_locked(ap_visit *av, gint64 now_mono) {
	if(av->v.state == VISIT_ENDED)
		return now_mono >= av->v.ended_at_us + (gint64)ap->settings.end_grace_s * G_USEC_PER_SEC;
	if(visit_idle_due(&av->v, now_mono, (gint64)ap->settings.idle_close_s * G_USEC_PER_SEC)) {
		shell_visit_end_locked(av, VISIT_END_IDLE, now_mono, FALSE, NULL);
		return TRUE;
	}
	if(visit_age_due(&av->v, now_mono, (gint64)ap->settings.max_visit_s * G_USEC_PER_SEC)) {
		/* as if the therapist had pressed "End": end pulses, then the grace */
		json_t *ids = json_array();
		shell_visit_end_locked(av, VISIT_END_MAX_DURATION, now_mono, TRUE, ids);
		ap_session *both[2] = { av->therapist, av->client };
		for(int i = 0; i < 2; i++)
			if(both[i]) {
				shell_push_event(both[i], json_pack("{s:s, s:s, s:s, s:i, s:O}", "alliance", "ended",
					"visit_id", av->v.id, "end_reason", "max_duration",
					"end_grace_s", ap->settings.end_grace_s, "pulse_ids", ids));
				shell_pulses_on_join(av, both[i], now_mono, FALSE);
			}
		json_decref(ids);
	}
	return FALSE;
}

void shell_visits_shutdown(void) {
	janus_mutex_lock(&ap->visits_mutex);
	GList *all = g_hash_table_get_values(ap->visits);
	gint64 now = janus_get_monotonic_time();
	int n = 0;
	for(GList *l = all; l; l = l->next, n++)
		shell_visit_close_locked(l->data, VISIT_END_SHUTDOWN, now);
	g_list_free(all);
	janus_mutex_unlock(&ap->visits_mutex);
	if(n > 0)
		JANUS_LOG(LOG_INFO, "[%s] shutdown: %d open visit(s) closed\n", ALLIANCE_PACKAGE, n);
}

/* --- this instance in the store ------------------------------------------------ */
#define INSTANCE_SEEN_EVERY_US (60 * G_USEC_PER_SEC)

static void instance_stored(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_WARN, "[%s] store: this instance's row: %s\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc));
}

/* At start (started_at = now) and then, with a shared (PostgreSQL) store,
 * every minute from the timer: the row of `instances` other instances read
 * to send joins here. */
void shell_instance_tick(gint64 now_real, gboolean starting) {
	static gint64 started_at = 0, next_at = 0;   /* init, then the timer thread */
	if(starting)
		started_at = now_real;
	else if(now_real < next_at || ap->settings.db_url == NULL)
		return;                          /* SQLite: one instance, nobody to tell */
	next_at = now_real + INSTANCE_SEEN_EVERY_US;
	if(store_instance_seen(ap->db, ap->settings.instance_id, ap->settings.public_servers_json,
			started_at, now_real, instance_stored, NULL) < 0)
		JANUS_LOG(LOG_WARN, "[%s] this instance's row could not be queued\n", ALLIANCE_PACKAGE);
}

/* --- start-up repair -------------------------------------------------------- */
typedef struct repair_wait {
	GMutex m;
	GCond c;
	gboolean done;
	store_rc rc;
	gint64 rows;
	char error[256];
} repair_wait;

static void repaired(store_rc rc, gint64 rows, const char *error, void *user) {
	repair_wait *w = user;
	g_mutex_lock(&w->m);
	w->rc = rc;
	w->rows = rows;
	g_strlcpy(w->error, error ? error : "", sizeof(w->error));
	w->done = TRUE;
	g_cond_signal(&w->c);
	g_mutex_unlock(&w->m);
}

int shell_visits_repair(char *err, size_t errlen) {
	repair_wait w;
	memset(&w, 0, sizeof(w));
	g_mutex_init(&w.m);
	g_cond_init(&w.c);
	int rc = store_repair_interrupted(ap->db, ap->settings.instance_id, janus_get_real_time(),
		repaired, &w);
	if(rc == 0) {
		g_mutex_lock(&w.m);
		while(!w.done)
			g_cond_wait(&w.c, &w.m);
		g_mutex_unlock(&w.m);
	}
	g_mutex_clear(&w.m);
	g_cond_clear(&w.c);
	if(rc < 0 || w.rc != STORE_OK) {
		g_snprintf(err, errlen, "%s", rc < 0 ? "the repair could not be queued" : w.error);
		return -1;
	}
	if(w.rows > 0)
		JANUS_LOG(LOG_WARN, "[%s] %" G_GINT64_FORMAT " visit(s) left open by an earlier run closed as interrupted\n",
			ALLIANCE_PACKAGE, w.rows);
	return 0;
}
