/*
 * shell_health.c — the plugin's side of the Janus Admin API.
 *
 * `message_plugin` requests (handle_admin_message):
 *   {"request":"health"}       the operator's figures (PROTOCOL.md v1.1
 *                              "Operations and supervision"; docs/api.md
 *                              "Health")
 *   {"request":"list_visits"}  the open visits, one line each
 * and `handle_info`'s plugin_specific part (query_session): a handle's
 * role, visit, state and the visit's per-leg quality now.
 *
 * Everything here is read on the Admin API's thread from state the plugin
 * keeps anyway: the visits table under visits_mutex (a few microseconds per
 * hundred visits) and the store's counters under the store's lock. The RTP
 * path is not touched: nothing here takes a meter's lock.
 */
#include "shell.h"

#include <string.h>
#ifdef HAVE_MALLINFO2
#include <malloc.h>
#endif

#include <debug.h>

static ap_plugin *ap;
static gint64 started_mono;

void shell_health_init(ap_plugin *plugin) {
	ap = plugin;
	started_mono = g_get_monotonic_time();
}

static json_t *store_json(const store_health *h) {
	json_t *o = json_object();
	json_object_set_new(o, "backend", json_string(store_backend_name(ap->db)));
	json_object_set_new(o, "queue", json_integer((json_int_t)h->queue));
	json_object_set_new(o, "commit_ms_p99", h->commit_ms_p99 < 0 ? json_null() : json_real(h->commit_ms_p99));
	json_object_set_new(o, "failed", json_integer((json_int_t)h->failed));
	json_object_set_new(o, "commits", json_integer((json_int_t)h->commits));
	json_object_set_new(o, "analytics_queue", json_integer((json_int_t)h->analytics_queue));
	json_object_set_new(o, "degraded", json_boolean(h->degraded));
	if(h->degraded)
		json_object_set_new(o, "degraded_why", json_string(h->why));
	return o;
}

/* The process's memory as the allocators see it, for telling a leak from a
 * cache filling up: the SQLite library's own allocations (bounded by the
 * connections' cache_size) and, with glibc, the heap in use by everything
 * in Janus (mallinfo2: arena + mmapped chunks in use) beside what the arenas
 * hold from the system. Null where the C library has no mallinfo2. */
static json_t *memory_json(const store_health *h) {
	json_t *o = json_object();
	json_object_set_new(o, "sqlite_bytes", json_integer((json_int_t)h->sqlite_bytes));
	json_object_set_new(o, "sqlite_peak_bytes", json_integer((json_int_t)h->sqlite_peak_bytes));
#ifdef HAVE_MALLINFO2
	struct mallinfo2 mi = mallinfo2();
	json_object_set_new(o, "heap_in_use_bytes", json_integer((json_int_t)(mi.uordblks + mi.hblkhd)));
	json_object_set_new(o, "heap_held_bytes", json_integer((json_int_t)(mi.arena + mi.hblkhd)));
#else
	json_object_set_new(o, "heap_in_use_bytes", json_null());
	json_object_set_new(o, "heap_held_bytes", json_null());
#endif
	return o;
}

json_t *shell_health_json(void) {
	int open = 0, live = 0, waiting = 0, participants = 0, observers = 0;
	janus_mutex_lock(&ap->visits_mutex);
	GHashTableIter iter;
	gpointer value;
	g_hash_table_iter_init(&iter, ap->visits);
	while(g_hash_table_iter_next(&iter, NULL, &value)) {
		ap_visit *av = value;
		if(av->v.state == VISIT_CLOSED)
			continue;
		open++;
		live += av->v.state == VISIT_LIVE;
		waiting += av->v.state == VISIT_WAITING;
		participants += (av->therapist != NULL) + (av->client != NULL);
		int n = (int)g_list_length(av->observers);
		participants += n;
		observers += n;
	}
	janus_mutex_unlock(&ap->visits_mutex);
	janus_mutex_lock(&ap->sessions_mutex);
	int handles = ap->sessions ? (int)g_hash_table_size(ap->sessions) : 0;
	janus_mutex_unlock(&ap->sessions_mutex);
	store_health h;
	store_health_get(ap->db, &h);
	json_t *o = json_object();
	json_object_set_new(o, "alliance", json_string("health"));
	json_object_set_new(o, "version", json_string(ALLIANCE_VERSION_STRING));
	json_object_set_new(o, "visits_open", json_integer(open));
	json_object_set_new(o, "visits_live", json_integer(live));
	json_object_set_new(o, "visits_waiting", json_integer(waiting));
	json_object_set_new(o, "participants", json_integer(participants));
	json_object_set_new(o, "observers", json_integer(observers));
	json_object_set_new(o, "handles", json_integer(handles));
	json_object_set_new(o, "store", store_json(&h));
	json_object_set_new(o, "samples_dropped", json_integer((json_int_t)h.samples_dropped));
	json_object_set_new(o, "memory", memory_json(&h));
	json_object_set_new(o, "instruments", json_integer(instrument_set_count(ap->instruments)));
	json_object_set_new(o, "tokens", json_boolean(shell_auth_tokens_on()));
	json_object_set_new(o, "instance_id", json_string(ap->settings.instance_id ? ap->settings.instance_id : ""));
	json_object_set_new(o, "uptime_s", json_integer((g_get_monotonic_time() - started_mono) / G_USEC_PER_SEC));
	return o;
}

static json_t *list_visits(void) {
	json_t *list = json_array();
	janus_mutex_lock(&ap->visits_mutex);
	GHashTableIter iter;
	gpointer value;
	g_hash_table_iter_init(&iter, ap->visits);
	while(g_hash_table_iter_next(&iter, NULL, &value)) {
		ap_visit *av = value;
		json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:b}",
			"visit_id", av->v.id, "state", visit_state_name(av->v.state),
			"therapist_present", av->v.therapist_present, "client_present", av->v.client_present));
	}
	janus_mutex_unlock(&ap->visits_mutex);
	return json_pack("{s:s, s:o}", "alliance", "visits", "visits", list);
}

json_t *shell_health_admin(json_t *message) {
	json_t *request = json_object_get(message, "request");
	const char *r = json_is_string(request) ? json_string_value(request) : NULL;
	if(r && !strcmp(r, "health"))
		return shell_health_json();
	if(r && !strcmp(r, "list_visits"))
		return list_visits();
	proto_error err;
	proto_fail(&err, request ? PROTO_ERR_UNKNOWN_REQUEST : PROTO_ERR_MISSING_ELEMENT,
		request ? "Unknown admin request (known: health, list_visits)" : "Missing element (request)");
	return proto_error_json(&err);
}

void shell_health_session(ap_session *s, json_t *info) {
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av) {
		json_object_set_new(info, "quality", shell_quality_live(av, ap->settings.quality_live_s));
		json_object_set_new(info, "observers", json_integer((json_int_t)g_list_length(av->observers)));
	} else if(s->closed_visit[0]) {
		json_object_set_new(info, "closed_visit", json_string(s->closed_visit));
	}
	janus_mutex_unlock(&ap->visits_mutex);
}
