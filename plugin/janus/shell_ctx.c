/*
 * shell_ctx.c — the shell's shared context and the small services every
 * shell module uses: the table of handles, events out to participants and
 * to Janus's event handlers, visit references, the wall clock, and the
 * failpoints for tests. The context (ap_plugin) is owned by
 * alliance_plugin.c and handed in by shell_ctx_init().
 */
#include "shell.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

static ap_plugin *ap;

void shell_ctx_init(ap_plugin *plugin) {
	ap = plugin;
}

/* --- handles ------------------------------------------------------------------ */
ap_session *shell_session_lookup(janus_plugin_session *handle) {
	ap_session *s = NULL;
	janus_mutex_lock(&ap->sessions_mutex);
	if(ap->sessions && handle)
		s = g_hash_table_lookup(ap->sessions, handle);
	if(s && g_atomic_int_get(&s->destroyed))
		s = NULL;
	if(s)
		janus_refcount_increase(&s->ref);
	janus_mutex_unlock(&ap->sessions_mutex);
	return s;
}

/* --- events out ----------------------------------------------------------------- */
int shell_push(ap_session *s, const char *transaction, json_t *msg, json_t *jsep) {
	/* Janus destroys plugins after it closed and unloaded its transports:
	 * an event pushed while we stop could call into an unloaded library */
	int rc = g_atomic_int_get(&ap->stopping) ? -1 :
		ap->gateway->push_event(s->handle, ap->plugin, transaction, msg, jsep);
	json_decref(msg);
	if(jsep)
		json_decref(jsep);
	return rc;
}

void shell_push_event(ap_session *target, json_t *event) {
	if(target == NULL || g_atomic_int_get(&target->destroyed)) {
		json_decref(event);
		return;
	}
	shell_push(target, NULL, event, NULL);
}

void shell_notify(janus_plugin_session *handle, const char *event, json_t *fields) {
	if(!ap->settings.events || !ap->gateway->events_is_enabled()) {
		if(fields)
			json_decref(fields);
		return;
	}
	json_t *info = fields ? fields : json_object();
	json_object_set_new(info, "event", json_string(event));
	ap->gateway->notify_event(ap->plugin, handle, info);   /* takes info */
}

json_t *shell_error_json(int code, const char *fmt, ...) {
	proto_error err;
	err.code = code;
	va_list args;
	va_start(args, fmt);
	g_vsnprintf(err.reason, sizeof(err.reason), fmt, args);
	va_end(args);
	return proto_error_json(&err);
}

/* --- the wall clock -------------------------------------------------------------- */
/* The offset between the two clocks, refreshed by the timer every tick:
 * rows written for one instant get one wall-clock time (reading both
 * clocks per call would jitter by microseconds and reorder rows made
 * together), and a jump of the wall clock shows within a tick. */
static gint64 wall_offset_us = 0;      /* __atomic: read by every thread */

void shell_wall_refresh(void) {
	gint64 off = janus_get_real_time() - janus_get_monotonic_time();
	__atomic_store_n(&wall_offset_us, off, __ATOMIC_RELAXED);
}

gint64 shell_wall_us(gint64 mono_us) {
	gint64 off = __atomic_load_n(&wall_offset_us, __ATOMIC_RELAXED);
	if(off == 0) {
		shell_wall_refresh();
		off = __atomic_load_n(&wall_offset_us, __ATOMIC_RELAXED);
	}
	return off + mono_us;
}

/* --- visits: creation and references ---------------------------------------------- */
/* --- creation and lifetime ------------------------------------------------- */
static void visit_free(const janus_refcount *ref) {
	ap_visit *av = janus_refcount_containerof(ref, ap_visit, ref);
	g_ptr_array_free(av->partial, TRUE);
	g_ptr_array_free(av->pulse_quality, TRUE);
	pulse_sched_free(&av->ps);
	quality_visit_free(&av->q);
	g_free(av);
}

ap_visit *shell_visit_new(const char *id, const char *therapist_code, const char *client_code,
		visit_modality modality, const auth_digest *invite, const pulse_config *pc, gint64 now_mono) {
	ap_visit *av = g_new0(ap_visit, 1);
	if(quality_visit_init(&av->q, ap->settings.quality_context_s) < 0) {
		g_free(av);
		return NULL;
	}
	av->partial = g_ptr_array_new_with_free_func(g_free);
	av->pulse_quality = g_ptr_array_new_with_free_func(free);
	janus_refcount_init(&av->ref, visit_free);     /* the caller's (the table's) reference */
	visit_init(&av->v, id, therapist_code, client_code, modality, invite, now_mono);
	pulse_sched_init(&av->ps, av->v.id, pc);
	return av;
}

void shell_visit_unref(ap_visit *av) {
	if(av)
		janus_refcount_decrease(&av->ref);
}

/* --- failpoints (tests only; see shell.h) ------------------------------------------ */
/* --- failpoints (tests only; see shell.h) ------------------------------- */
static GHashTable *failpoints = NULL;      /* name -> delay in ms; NULL when unset */

void shell_failpoints_load(void) {
	if(failpoints)
		g_hash_table_destroy(failpoints);
	failpoints = NULL;
	const char *spec = g_getenv("ALLIANCE_FAILPOINTS");
	if(spec == NULL || *spec == '\0')
		return;
	failpoints = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	gchar **parts = g_strsplit(spec, ",", 16);
	for(int i = 0; parts[i]; i++) {
		gchar **kv = g_strsplit(parts[i], "=", 2);
		if(kv[0] && kv[1]) {
			gint64 ms = g_ascii_strtoll(kv[1], NULL, 10);
			if(ms > 0 && ms <= 10000) {
				g_hash_table_insert(failpoints, g_strdup(g_strstrip(kv[0])), GINT_TO_POINTER((int)ms));
				JANUS_LOG(LOG_WARN, "[%s] failpoint %s: %d ms (ALLIANCE_FAILPOINTS, for tests)\n",
					ALLIANCE_PACKAGE, kv[0], (int)ms);
			}
		}
		g_strfreev(kv);
	}
	g_strfreev(parts);
}

void shell_failpoints_free(void) {
	if(failpoints)
		g_hash_table_destroy(failpoints);
	failpoints = NULL;
}

void shell_failpoint(const char *name) {
	if(failpoints == NULL)
		return;
	int ms = GPOINTER_TO_INT(g_hash_table_lookup(failpoints, name));
	if(ms > 0)
		g_usleep((gulong)ms * 1000);
}
