/*
 * shell_timer.c — the plugin's 200 ms timer. Each tick, for every visit
 * under the visits lock: media that stopped or came back, the pulse
 * scheduler, the quality windows (and the optional quality rule), the
 * lifecycle (grace, idle, max duration) and closing; then retention and a
 * look at the store's health. Everything it does is decided in the
 * modules it calls; this file only orders them in time.
 */
#include "shell.h"

#include <debug.h>
#include <utils.h>

#define TICK_US 200000

/* --- media that stops (a network cut) --------------------------------------- */
#define MEDIA_STOPPED_US (2 * G_USEC_PER_SEC)

static ap_plugin *ap;

void shell_timer_init(ap_plugin *plugin) {
	ap = plugin;
}

/* --- media that stops (a network cut) --------------------------------------- */
/* Once per timer tick, per visit: a seated participant whose media stopped
 * (no packet for MEDIA_STOPPED_US) is announced to the other one; when it
 * flows again that is announced too and the pulses held for them go out. */
static void presence_locked(ap_visit *av, gint64 now) {
	if(av->v.state != VISIT_LIVE)
		return;
	ap_session *seat[2] = { av->therapist, av->client };
	for(int i = 0; i < 2; i++) {
		ap_session *s = seat[i], *other = seat[1 - i];
		if(s == NULL)
			continue;
		gint64 quiet = shell_quality_silent_for(s, now);
		gboolean stopped = quiet >= MEDIA_STOPPED_US;
		if(stopped == av->media_stopped[i] || quiet < 0)
			continue;
		av->media_stopped[i] = stopped;
		const char *role = visit_role_name(s->role);
		if(stopped) {
			av->stopped_since[i] = now - quiet;
			JANUS_LOG(LOG_INFO, "[%s-%p] %s's media stopped\n", ALLIANCE_PACKAGE, s->handle, role);
			if(other)
				shell_send_to(other, "media_stopped", json_pack("{s:s, s:I}", "role", role,
					"silent_ms", (json_int_t)(quiet / 1000)));
			shell_notify(s->handle, "media_stopped", json_pack("{s:s}", "role", role));
		} else {
			gint64 gap = now - av->stopped_since[i];
			JANUS_LOG(LOG_INFO, "[%s-%p] %s's media resumed after %" G_GINT64_FORMAT " ms\n",
				ALLIANCE_PACKAGE, s->handle, role, gap / 1000);
			if(other)
				shell_send_to(other, "media_resumed", json_pack("{s:s, s:I}", "role", role,
					"stopped_ms", (json_int_t)(gap / 1000)));
			shell_notify(s->handle, "media_resumed", json_pack("{s:s, s:I}", "role", role,
				"stopped_ms", (json_int_t)(gap / 1000)));
			/* what fell due meanwhile goes out now */
			shell_pulses_on_join(av, s, now, TRUE);
		}
	}
}

/* One log line when the store starts refusing (a full disk, a lock held by
 * another process) and one when it takes writes again. */
static void watch_store(void) {
	static gboolean was_degraded = FALSE;      /* timer thread only */
	store_health h;
	store_health_get(ap->db, &h);
	if(h.degraded && !was_degraded)
		JANUS_LOG(LOG_ERR, "[%s] store: writes are failing (%s); answers are refused until it recovers, "
			"visit records are kept and retried\n", ALLIANCE_PACKAGE, h.why);
	else if(!h.degraded && was_degraded)
		JANUS_LOG(LOG_WARN, "[%s] store: writes succeed again (%" G_GUINT64_FORMAT " jobs refused meanwhile, "
			"%" G_GUINT64_FORMAT " samples dropped so far)\n", ALLIANCE_PACKAGE, h.failed, h.samples_dropped);
	was_degraded = h.degraded;
}

static void tick(void) {
	shell_wall_refresh();
	gint64 mono = janus_get_monotonic_time();
	GList *closing = NULL;
	janus_mutex_lock(&ap->visits_mutex);
	GHashTableIter iter;
	gpointer value;
	g_hash_table_iter_init(&iter, ap->visits);
	while(g_hash_table_iter_next(&iter, NULL, &value)) {
		ap_visit *av = value;
		presence_locked(av, mono);
		/* scheduled pulses wait out a frozen picture (pulse.h) */
		pulse_sched_media(&av->ps, shell_quality_client_video(av, mono));
		shell_pulses_tick_locked(av, mono);
		/* the optional quality rule: a run of freezes asks the client about
		 * the technology ("the video was bad", not "the session was") */
		if(shell_quality_tick(av, mono, shell_wall_us(mono)) && shell_pulses_quality_trigger(av, mono))
			shell_quality_technology_sent(av, mono);
		if(shell_visit_lifecycle_locked(av, mono))
			closing = g_list_prepend(closing, av);
	}
	for(GList *l = closing; l; l = l->next)
		shell_visit_close_locked(l->data, VISIT_END_NONE, mono);
	janus_mutex_unlock(&ap->visits_mutex);
	g_list_free(closing);
	shell_retention_tick(janus_get_real_time());
	shell_instance_tick(janus_get_real_time(), FALSE);
	watch_store();
}

/* --- the thread ---------------------------------------------------------------- */
/* --- the timer ------------------------------------------------------------------- */
static GThread *timer_thread = NULL;
static volatile gint timer_stop = 0;
static GMutex timer_mutex;
static GCond timer_cond;

static void *timer_loop(void *data) {
	while(!g_atomic_int_get(&timer_stop)) {
		tick();
		g_mutex_lock(&timer_mutex);
		if(!g_atomic_int_get(&timer_stop))
			g_cond_wait_until(&timer_cond, &timer_mutex, g_get_monotonic_time() + TICK_US);
		g_mutex_unlock(&timer_mutex);
	}
	return NULL;
}

int shell_timer_start(void) {
	g_atomic_int_set(&timer_stop, 0);
	GError *error = NULL;
	timer_thread = g_thread_try_new("alliance timer", timer_loop, NULL, &error);
	if(error) {
		JANUS_LOG(LOG_ERR, "[%s] cannot start the timer: %s\n", ALLIANCE_PACKAGE, error->message);
		g_error_free(error);
		return -1;
	}
	return 0;
}

void shell_timer_stop(void) {
	if(timer_thread == NULL)
		return;
	g_mutex_lock(&timer_mutex);
	g_atomic_int_set(&timer_stop, 1);
	g_cond_signal(&timer_cond);
	g_mutex_unlock(&timer_mutex);
	g_thread_join(timer_thread);
	timer_thread = NULL;
}
