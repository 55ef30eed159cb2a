/*
 * alliance_plugin.c — Janus plugin `janus.plugin.alliance` (Alliance Pulse).
 *
 * Runs online therapy visits: a therapist creates a visit and hands the
 * client a one-use invite; the client waits in a waiting room until the
 * therapist admits them; both then negotiate audio, video and a data
 * channel with the plugin, which relays media between them and talks to
 * each over the `alliance` data channel (pulse checks arrive there in a
 * later version). The API is documented in docs/api.md and PROTOCOL.md.
 *
 * This file is the plugin's front door: the descriptor Janus loads,
 * init and destroy (which hand the one context to every shell module),
 * the handles, request intake and the Admin API. Visit logic lives in the
 * pure layers (plugin/core); the message thread in shell_requests.c; media
 * callbacks in shell_events.c. See shell.h for the modules, threads, locks
 * and lifetimes.
 */
#include "shell.h"

#include <stdarg.h>

#include <debug.h>
#include <config.h>
#include <utils.h>

/* --- descriptor ---------------------------------------------------------- */
static int alliance_init(janus_callbacks *callback, const char *config_path);
static void alliance_destroy(void);
static int alliance_get_api_compatibility(void) { return JANUS_PLUGIN_API_VERSION; }
static int alliance_get_version(void) { return ALLIANCE_VERSION; }
static const char *alliance_get_version_string(void) { return ALLIANCE_VERSION_STRING; }
static const char *alliance_get_description(void) { return ALLIANCE_DESCRIPTION; }
static const char *alliance_get_name(void) { return ALLIANCE_NAME; }
static const char *alliance_get_author(void) { return ALLIANCE_AUTHOR; }
static const char *alliance_get_package(void) { return ALLIANCE_PACKAGE; }
static void alliance_create_session(janus_plugin_session *handle, int *error);
static struct janus_plugin_result *alliance_handle_message(janus_plugin_session *handle,
	char *transaction, json_t *message, json_t *jsep);
static json_t *alliance_handle_admin_message(json_t *message);
static void alliance_destroy_session(janus_plugin_session *handle, int *error);
static json_t *alliance_query_session(janus_plugin_session *handle);

janus_plugin alliance_plugin =
	JANUS_PLUGIN_INIT (
		.init = alliance_init,
		.destroy = alliance_destroy,
		.get_api_compatibility = alliance_get_api_compatibility,
		.get_version = alliance_get_version,
		.get_version_string = alliance_get_version_string,
		.get_description = alliance_get_description,
		.get_name = alliance_get_name,
		.get_author = alliance_get_author,
		.get_package = alliance_get_package,
		.create_session = alliance_create_session,
		.handle_message = alliance_handle_message,
		.handle_admin_message = alliance_handle_admin_message,
		.setup_media = alliance_setup_media,
		.incoming_rtp = alliance_incoming_rtp,
		.incoming_rtcp = alliance_incoming_rtcp,
		.incoming_data = alliance_incoming_data,
		.data_ready = alliance_data_ready,
		.slow_link = alliance_slow_link,
		.hangup_media = alliance_hangup_media,
		.destroy_session = alliance_destroy_session,
		.query_session = alliance_query_session,
	);

janus_plugin *create(void) {
	return &alliance_plugin;
}

/* --- the context ---------------------------------------------------------- */
/* The one instance of the shell's shared state: Janus's callbacks carry no
 * user pointer, so it lives here, and every module gets it at init. */
static ap_plugin the_plugin = {
	.plugin = &alliance_plugin,
	.visits_mutex = JANUS_MUTEX_INITIALIZER,
	.sessions_mutex = JANUS_MUTEX_INITIALIZER,
};
static ap_plugin *const ap = &the_plugin;

static void modules_init(void) {
	shell_ctx_init(ap);
	shell_limits_init(ap);
	shell_auth_init(ap);
	shell_health_init(ap);
	shell_media_init(ap);
	shell_observe_init(ap);
	shell_quality_init(ap);
	shell_pulses_init(ap);
	shell_visits_init(ap);
	shell_requests_init(ap);
	shell_reports_init(ap);
	shell_timer_init(ap);
	shell_events_init(ap);
}

/* --- init / destroy ------------------------------------------------------ */
static guint digest_hash(gconstpointer key) {
	const auth_digest *d = key;
	guint h;
	memcpy(&h, d->b, sizeof(h));   /* the digest is uniformly distributed */
	return h;
}

static gboolean digest_equal(gconstpointer a, gconstpointer b) {
	return auth_digest_equal(a, b);
}

/* Undo a partial init; nothing may be running. */
static void init_unwind(void) {
	if(ap->sessions)
		g_hash_table_destroy(ap->sessions);
	if(ap->visits)
		g_hash_table_destroy(ap->visits);
	if(ap->visits_by_invite)
		g_hash_table_destroy(ap->visits_by_invite);
	ap->sessions = ap->visits = ap->visits_by_invite = NULL;
	store_close(ap->db);
	ap->db = NULL;
	instrument_set_free(ap->instruments);
	ap->instruments = NULL;
	shell_config_free(&ap->settings);
	shell_auth_free();
	shell_failpoints_free();
}

static int init_refused(const char *why) {
	JANUS_LOG(LOG_FATAL, "[%s] plugin not started: %s\n", ALLIANCE_PACKAGE, why);
	init_unwind();
	return -1;
}

static int alliance_init(janus_callbacks *callback, const char *config_path) {
	if(g_atomic_int_get(&ap->stopping))
		return -1;
	if(callback == NULL || config_path == NULL)
		return -1;
	char cfg_err[512] = "";
	if(shell_config_load(config_path, &ap->settings, cfg_err, sizeof(cfg_err)) < 0)
		return init_refused(cfg_err);
	shell_failpoints_load();
	modules_init();
	/* instruments: a bad file is refused with its reason, the rest load;
	 * a folder that cannot be read at all is a configuration error */
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	ap->instruments = instrument_set_load_dir(ap->settings.instruments_dir, problems);
	if(ap->instruments == NULL) {
		char why[600];
		g_snprintf(why, sizeof(why), "general.instruments_dir: %s",
			problems->len ? (char *)problems->pdata[0] : ap->settings.instruments_dir);
		g_ptr_array_free(problems, TRUE);
		return init_refused(why);
	}
	for(guint i = 0; i < problems->len; i++)
		JANUS_LOG(LOG_ERR, "[%s] instrument refused: %s\n", ALLIANCE_PACKAGE, (char *)problems->pdata[i]);
	g_ptr_array_free(problems, TRUE);
	JANUS_LOG(LOG_INFO, "[%s] %d instruments loaded from %s\n", ALLIANCE_PACKAGE,
		instrument_set_count(ap->instruments), ap->settings.instruments_dir);
	if(instrument_set_count(ap->instruments) == 0)
		JANUS_LOG(LOG_WARN, "[%s] no instrument loaded from %s: visits will send no pulses\n",
			ALLIANCE_PACKAGE, ap->settings.instruments_dir);
	/* the store: without it nothing could be kept, so refuse to start */
	char err[512] = "";
	ap->db = ap->settings.db_url ? store_open_pg(ap->settings.db_url, err, sizeof(err))
		: store_open_sqlite(ap->settings.db_path, err, sizeof(err));

	if(ap->db == NULL) {
		char why[600];
		g_snprintf(why, sizeof(why), "cannot open the store: %s", err);
		return init_refused(why);
	}
	if(store_warning(ap->db))
		JANUS_LOG(LOG_WARN, "[%s] store: %s\n", ALLIANCE_PACKAGE, store_warning(ap->db));
	/* visits a crash (or a kill) left open are closed as interrupted */
	if(shell_visits_repair(err, sizeof(err)) < 0) {
		char why[600];
		g_snprintf(why, sizeof(why), "cannot repair the visits an earlier run left open: %s", err);
		return init_refused(why);
	}
	ap->gateway = callback;
	shell_auth_load(config_path);
	ap->sessions = g_hash_table_new_full(NULL, NULL, NULL, NULL);
	ap->visits = g_hash_table_new(g_str_hash, g_str_equal);
	ap->visits_by_invite = g_hash_table_new(digest_hash, digest_equal);
	g_atomic_int_set(&ap->initialized, 1);
	shell_retention_tick(janus_get_real_time());   /* at start, then daily from the timer */
	shell_instance_tick(janus_get_real_time(), TRUE);
	if(shell_requests_start() < 0 || shell_reports_start() < 0 || shell_timer_start() < 0) {
		g_atomic_int_set(&ap->initialized, 0);
		shell_requests_stop();
		shell_reports_stop();
		return init_refused("cannot start the plugin's threads");
	}
	JANUS_LOG(LOG_INFO, "%s initialized (%zu therapist keys, %zu supervisor keys, end_grace_s=%d, idle_close_s=%d, "
		"max_visit_s=%d, max_visits=%d, retention_days=%d, store %s %s, instance %s)\n",
		ALLIANCE_NAME, auth_keyring_therapists(ap->settings.keys), auth_keyring_supervisors(ap->settings.keys),
		ap->settings.end_grace_s, ap->settings.idle_close_s, ap->settings.max_visit_s, ap->settings.max_visits,
		ap->settings.retention_days, store_backend_name(ap->db), store_path(ap->db), ap->settings.instance_id);
	return 0;
}

static void alliance_destroy(void) {
	if(!g_atomic_int_get(&ap->initialized))
		return;
	g_atomic_int_set(&ap->stopping, 1);
	shell_requests_stop();
	shell_reports_stop();
	shell_timer_stop();
	/* every open visit ends and closes as `shutdown`: its last quality
	 * samples and open incidents are flushed, then the store drains */
	shell_visits_shutdown();
	janus_mutex_lock(&ap->sessions_mutex);
	g_hash_table_destroy(ap->sessions);
	ap->sessions = NULL;
	janus_mutex_unlock(&ap->sessions_mutex);
	janus_mutex_lock(&ap->visits_mutex);
	g_hash_table_destroy(ap->visits);
	g_hash_table_destroy(ap->visits_by_invite);
	ap->visits = ap->visits_by_invite = NULL;
	janus_mutex_unlock(&ap->visits_mutex);
	guint64 dropped = store_dropped_samples(ap->db);
	store_close(ap->db);      /* every queued write lands first */
	ap->db = NULL;
	instrument_set_free(ap->instruments);
	ap->instruments = NULL;
	shell_config_free(&ap->settings);
	shell_auth_free();
	shell_failpoints_free();
	g_atomic_int_set(&ap->initialized, 0);
	g_atomic_int_set(&ap->stopping, 0);
	JANUS_LOG(LOG_INFO, "%s destroyed (%" G_GUINT64_FORMAT " quality samples dropped in this run)\n",
		ALLIANCE_NAME, dropped);
}

/* --- sessions (one per Janus handle) ------------------------------------- */
static void session_free(const janus_refcount *ref) {
	ap_session *s = janus_refcount_containerof(ref, ap_session, ref);
	janus_refcount_decrease(&s->handle->ref);
	shell_quality_session_clear(s);
	janus_mutex_destroy(&s->mutex);
	g_free(s);
}

static void alliance_create_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized)) {
		*error = -1;
		return;
	}
	ap_session *s = g_new0(ap_session, 1);
	s->handle = handle;
	s->audio_pt = s->video_pt = -1;
	s->supervisor = -1;
	shell_limits_session(s);
	janus_rtp_switching_context_reset(&s->rx_ctx[0]);
	janus_rtp_switching_context_reset(&s->rx_ctx[1]);
	for(int k = 0; k < OBS_STREAMS; k++)
		s->obs_pt[k] = s->obs_mindex[k] = -1;
	shell_observe_reset(s);
	shell_quality_session_init(s);
	g_atomic_int_set(&s->send_audio, 1);
	g_atomic_int_set(&s->send_video, 1);
	janus_mutex_init(&s->mutex);
	janus_refcount_init(&s->ref, session_free);
	janus_refcount_increase(&handle->ref);
	handle->plugin_handle = s;
	janus_mutex_lock(&ap->sessions_mutex);
	g_hash_table_insert(ap->sessions, handle, s);   /* the table's reference */
	janus_mutex_unlock(&ap->sessions_mutex);
}

static void alliance_destroy_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized)) {
		*error = -1;
		return;
	}
	janus_mutex_lock(&ap->sessions_mutex);
	ap_session *s = g_hash_table_lookup(ap->sessions, handle);
	if(s == NULL) {
		janus_mutex_unlock(&ap->sessions_mutex);
		*error = -2;
		return;
	}
	g_hash_table_remove(ap->sessions, handle);
	janus_mutex_unlock(&ap->sessions_mutex);
	if(g_atomic_int_compare_and_exchange(&s->destroyed, 0, 1)) {
		shell_session_detach(s, FALSE);
		shell_media_forget(s);
		janus_refcount_decrease(&s->ref);   /* drop the table's reference */
	}
}

static json_t *alliance_query_session(janus_plugin_session *handle) {
	if(g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized))
		return NULL;
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return NULL;
	json_t *info = json_object();
	janus_mutex_lock(&ap->visits_mutex);
	ap_visit *av = s->visit;
	if(av) {
		json_object_set_new(info, "visit_id", json_string(av->v.id));
		json_object_set_new(info, "state", json_string(visit_state_name(av->v.state)));
		json_object_set_new(info, "modality", json_string(visit_modality_name(av->v.modality)));
	}
	json_object_set_new(info, "role", json_string(visit_role_name(s->role)));
	janus_mutex_unlock(&ap->visits_mutex);
	json_object_set_new(info, "negotiated", json_boolean(g_atomic_int_get(&s->negotiated)));
	json_object_set_new(info, "media_up", json_boolean(g_atomic_int_get(&s->media_up)));
	json_object_set_new(info, "dataready", json_boolean(g_atomic_int_get(&s->dataready)));
	json_object_set_new(info, "send_audio", json_boolean(g_atomic_int_get(&s->send_audio)));
	json_object_set_new(info, "send_video", json_boolean(g_atomic_int_get(&s->send_video)));
	janus_mutex_lock(&s->mutex);
	json_object_set_new(info, "linked", json_boolean(s->peer != NULL));
	json_object_set_new(info, "watchers", json_integer(g_atomic_int_get(&s->n_watchers)));
	janus_mutex_unlock(&s->mutex);
	json_t *c = json_object();
	json_object_set_new(c, "rtp_in_audio", json_integer((json_int_t)s->rtp_in[0]));
	json_object_set_new(c, "rtp_in_video", json_integer((json_int_t)s->rtp_in[1]));
	json_object_set_new(c, "rtp_relayed_audio", json_integer((json_int_t)s->rtp_relayed[0]));
	json_object_set_new(c, "rtp_relayed_video", json_integer((json_int_t)s->rtp_relayed[1]));
	json_object_set_new(c, "rtcp_in", json_integer((json_int_t)s->rtcp_in));
	json_object_set_new(c, "pli_in", json_integer((json_int_t)s->pli_in));
	json_object_set_new(c, "remb_in", json_integer((json_int_t)s->remb_in));
	json_object_set_new(c, "dc_in", json_integer((json_int_t)s->dc_in));
	json_object_set_new(c, "dc_errors", json_integer((json_int_t)s->dc_err));
	if(g_atomic_int_get(&s->observer_media)) {
		/* an observer: what it was sent, per stream (therapist, client) */
		static const char *names[OBS_STREAMS] = { "observed_therapist_audio", "observed_therapist_video",
			"observed_client_audio", "observed_client_video" };
		for(int k = 0; k < OBS_STREAMS; k++)
			json_object_set_new(c, names[k], json_integer((json_int_t)s->obs_relayed[k]));
	}
	json_object_set_new(info, "counters", c);
	json_object_set_new(info, "hangingup", json_integer(g_atomic_int_get(&s->hangingup)));
	json_object_set_new(info, "destroyed", json_integer(g_atomic_int_get(&s->destroyed)));
	shell_health_session(s, info);    /* the visit's quality now */
	janus_refcount_decrease(&s->ref);
	return info;
}

/* --- requests ------------------------------------------------------------ */
static struct janus_plugin_result *answer_now(json_t *response, char *transaction,
		json_t *message, json_t *jsep) {
	g_free(transaction);
	if(message)
		json_decref(message);
	if(jsep)
		json_decref(jsep);
	/* janus_plugin_result_new takes the reference to response */
	return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, response);
}

static struct janus_plugin_result *alliance_handle_message(janus_plugin_session *handle,
		char *transaction, json_t *message, json_t *jsep) {
	if(g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized)) {
		g_free(transaction);
		if(message) json_decref(message);
		if(jsep) json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR,
			g_atomic_int_get(&ap->stopping) ? "Shutting down" : "Plugin not initialized", NULL);
	}
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL) {
		g_free(transaction);
		if(message) json_decref(message);
		if(jsep) json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "No session associated with this handle", NULL);
	}
	json_t *limited = shell_limits_check(s, message);
	if(limited) {
		JANUS_LOG(LOG_VERB, "[%s-%p] request refused: 497 rate_limited\n", ALLIANCE_PACKAGE, handle);
		shell_refuse_offer(s, jsep, limited);
		janus_refcount_decrease(&s->ref);
		return answer_now(limited, transaction, message, jsep);
	}
	proto_request req;
	proto_error err;
	if(proto_parse(message, &req, &err) == 0 && jsep != NULL && req.kind != PROTO_CONFIGURE)
		proto_fail(&err, PROTO_ERR_INVALID_ELEMENT, "A JSEP goes with `configure` only (this was `%s`)",
			json_string_value(json_object_get(message, "request")));
	if(err.code != 0) {
		JANUS_LOG(LOG_VERB, "[%s-%p] request refused: %d %s\n", ALLIANCE_PACKAGE, handle,
			err.code, proto_error_slug(err.code));
		json_t *answer = proto_error_json(&err);
		shell_refuse_offer(s, jsep, answer);
		janus_refcount_decrease(&s->ref);
		return answer_now(answer, transaction, message, jsep);
	}
	if(req.sync) {
		json_t *response = shell_request_sync(s, &req);
		janus_refcount_decrease(&s->ref);
		return answer_now(response, transaction, message, jsep);
	}
	/* the queue takes over s's reference and the three arguments */
	if(req.kind == PROTO_REPORT || req.kind == PROTO_FORGET || req.kind == PROTO_CLIENT_HISTORY) {
		if(jsep)
			json_decref(jsep);                 /* refused above: never here */
		shell_reports_enqueue(s, transaction, message);
	} else {
		shell_requests_enqueue(s, transaction, message, jsep);
	}
	return janus_plugin_result_new(JANUS_PLUGIN_OK_WAIT, NULL, NULL);
}

static json_t *alliance_handle_admin_message(json_t *message) {
	if(g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized))
		return NULL;
	return shell_health_admin(message);
}

