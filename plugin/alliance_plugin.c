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
 * configuration, the table of handles, request intake and the Admin API
 * view of a handle. Visit logic lives in the pure modules (visit.c,
 * proto.c, auth.c, dcmsg.c); the message thread in shell_requests.c; media
 * in shell_media.c. See shell.h for threads, locks and lifetimes.
 */
#include "shell.h"

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

/* --- shared state -------------------------------------------------------- */
janus_callbacks *gateway = NULL;
ap_settings settings;
volatile gint initialized = 0, stopping = 0;
GHashTable *visits = NULL;
GHashTable *visits_by_invite = NULL;
janus_mutex visits_mutex = JANUS_MUTEX_INITIALIZER;
instrument_set *instruments = NULL;
store *db = NULL;

static GHashTable *sessions = NULL;     /* janus_plugin_session* -> ap_session */
static janus_mutex sessions_mutex = JANUS_MUTEX_INITIALIZER;

/* --- configuration ------------------------------------------------------- */
static const char *cfg_item(janus_config *cfg, janus_config_category *cat, const char *name) {
	janus_config_item *item = janus_config_get(cfg, cat, janus_config_type_item, name);
	return (item && item->value) ? item->value : NULL;
}

/* Parse a bounded non-negative integer setting; -1 on error. */
static int cfg_int(janus_config *cfg, janus_config_category *cat, const char *name,
		int def, int max) {
	const char *v = cfg_item(cfg, cat, name);
	if(v == NULL)
		return def;
	gchar *end = NULL;
	gint64 n = g_ascii_strtoll(v, &end, 10);
	if(end == v || *end != '\0' || n < 0 || n > max) {
		JANUS_LOG(LOG_ERR, "[%s] general.%s must be an integer 0..%d (got '%s')\n",
			ALLIANCE_PACKAGE, name, max, v);
		return -1;
	}
	return (int)n;
}

/* Load keys from a category of named entries: therapists { t01: {code, key_sha256} }. */
static int cfg_keys(janus_config *cfg, const char *category, gboolean therapist) {
	janus_config_category *cat = janus_config_get(cfg, NULL, janus_config_type_category, category);
	if(cat == NULL)
		return 0;
	for(GList *l = cat->list; l; l = l->next) {
		janus_config_container *entry = l->data;
		if(entry->type != janus_config_type_category) {
			JANUS_LOG(LOG_ERR, "[%s] %s.%s: expected { code = …, key_sha256 = … }\n",
				ALLIANCE_PACKAGE, category, entry->name ? entry->name : "?");
			return -1;
		}
		const char *hex = cfg_item(cfg, entry, "key_sha256");
		char err[160] = "";
		int rc;
		if(therapist)
			rc = auth_keyring_add_therapist(settings.keys, cfg_item(cfg, entry, "code"), hex, err, sizeof(err));
		else
			rc = auth_keyring_add_supervisor(settings.keys, hex, err, sizeof(err));
		if(rc < 0) {
			JANUS_LOG(LOG_ERR, "[%s] %s.%s: %s\n", ALLIANCE_PACKAGE, category, entry->name, err);
			return -1;
		}
	}
	return 0;
}

/* in_session_at_s = "600, 1800": ascending offsets in seconds. */
static int cfg_offsets(const char *v) {
	settings.n_offsets = 1;
	settings.offsets_s[0] = 1500;   /* default: 25 minutes into the visit */
	if(v == NULL)
		return 0;
	settings.n_offsets = 0;
	gchar **parts = g_strsplit(v, ",", -1);
	int rc = 0;
	for(int i = 0; parts[i] && rc == 0; i++) {
		gchar *t = g_strstrip(parts[i]);
		if(*t == '\0')
			continue;
		gchar *end = NULL;
		gint64 n = g_ascii_strtoll(t, &end, 10);
		if(end == t || *end != '\0' || n < 0 || n > PROTO_OFFSET_MAX_S ||
				settings.n_offsets >= PULSE_OFFSETS_MAX ||
				(settings.n_offsets > 0 && n < settings.offsets_s[settings.n_offsets - 1])) {
			JANUS_LOG(LOG_ERR, "[%s] general.in_session_at_s must list up to %d ascending offsets in seconds (got '%s')\n",
				ALLIANCE_PACKAGE, PULSE_OFFSETS_MAX, v);
			rc = -1;
			break;
		}
		settings.offsets_s[settings.n_offsets++] = (int)n;
	}
	g_strfreev(parts);
	return rc;
}

static int load_config(const char *config_path) {
	memset(&settings, 0, sizeof(settings));
	settings.keys = auth_keyring_new();
	settings.end_grace_s = 180;
	settings.max_visits = 1000;
	settings.events = TRUE;
	char filename[512];
	g_snprintf(filename, sizeof(filename), "%s/%s.jcfg", config_path, ALLIANCE_PACKAGE);
	janus_config *cfg = janus_config_parse(filename);
	if(cfg == NULL) {
		JANUS_LOG(LOG_ERR, "[%s] cannot read configuration %s\n", ALLIANCE_PACKAGE, filename);
		return -1;
	}
	int rc = -1;
	janus_config_category *general = janus_config_get_create(cfg, NULL, janus_config_type_category, "general");
	const char *v;
	settings.db_path = g_strdup((v = cfg_item(cfg, general, "db_path")) ? v : "/var/lib/janus/alliance.sqlite");
	settings.instruments_dir = g_strdup((v = cfg_item(cfg, general, "instruments_dir")) ? v : "/etc/janus/alliance-instruments");
	if((v = cfg_item(cfg, general, "events")) != NULL)
		settings.events = janus_is_true(v);
	if((settings.end_grace_s = cfg_int(cfg, general, "end_grace_s", 180, 7 * 24 * 3600)) < 0)
		goto out;
	if((settings.max_visits = cfg_int(cfg, general, "max_visits", 1000, 1000000)) < 0)
		goto out;
	if((settings.pulse_expires_s = cfg_int(cfg, general, "pulse_expires_s", 120, 3600)) < 0)
		goto out;
	if(cfg_offsets(cfg_item(cfg, general, "in_session_at_s")) < 0)
		goto out;
	if((settings.quality_sample_s = cfg_int(cfg, general, "quality_sample_s", 5, 3600)) < 0)
		goto out;
	if(settings.quality_sample_s < 5 || settings.quality_sample_s % 5 != 0) {
		JANUS_LOG(LOG_ERR, "[%s] general.quality_sample_s must be a multiple of 5 (got %d)\n",
			ALLIANCE_PACKAGE, settings.quality_sample_s);
		goto out;
	}
	if((settings.quality_context_s = cfg_int(cfg, general, "quality_context_s", 120, 1200)) < 0)
		goto out;
	if(settings.quality_context_s < 5) {
		JANUS_LOG(LOG_ERR, "[%s] general.quality_context_s must be 5..1200\n", ALLIANCE_PACKAGE);
		goto out;
	}
	if((settings.quality_live_s = cfg_int(cfg, general, "quality_live_s", 5, 60)) < 0)
		goto out;
	if((settings.qpulse_freezes = cfg_int(cfg, general, "quality_pulse_freezes", 0, 1000)) < 0 ||
			(settings.qpulse_frozen_s = cfg_int(cfg, general, "quality_pulse_frozen_s", 0, 3600)) < 0 ||
			(settings.qpulse_window_s = cfg_int(cfg, general, "quality_pulse_window_s", 120, 1200)) < 0)
		goto out;
	if(settings.qpulse_window_s < 5) {
		JANUS_LOG(LOG_ERR, "[%s] general.quality_pulse_window_s must be 5..1200\n", ALLIANCE_PACKAGE);
		goto out;
	}
	if((settings.retention_days = cfg_int(cfg, general, "retention_days", 0, 36500)) < 0)
		goto out;
	if(settings.quality_live_s < 1) {
		JANUS_LOG(LOG_ERR, "[%s] general.quality_live_s must be 1..60\n", ALLIANCE_PACKAGE);
		goto out;
	}
	if(cfg_keys(cfg, "therapists", TRUE) < 0 || cfg_keys(cfg, "supervisors", FALSE) < 0)
		goto out;
	if(auth_keyring_therapists(settings.keys) == 0)
		JANUS_LOG(LOG_WARN, "[%s] no therapist keys configured: nobody can create visits\n", ALLIANCE_PACKAGE);
	rc = 0;
out:
	janus_config_destroy(cfg);
	return rc;
}

static void free_settings(void) {
	auth_keyring_free(settings.keys);
	g_free(settings.db_path);
	g_free(settings.instruments_dir);
	memset(&settings, 0, sizeof(settings));
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

static int alliance_init(janus_callbacks *callback, const char *config_path) {
	if(g_atomic_int_get(&stopping))
		return -1;
	if(callback == NULL || config_path == NULL)
		return -1;
	if(load_config(config_path) < 0) {
		free_settings();
		JANUS_LOG(LOG_FATAL, "[%s] configuration refused, plugin not started\n", ALLIANCE_PACKAGE);
		return -1;
	}
	/* instruments: a bad file is refused with its reason, the rest load */
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	instruments = instrument_set_load_dir(settings.instruments_dir, problems);
	for(guint i = 0; i < problems->len; i++)
		JANUS_LOG(LOG_ERR, "[%s] instrument refused: %s\n", ALLIANCE_PACKAGE, (char *)problems->pdata[i]);
	g_ptr_array_free(problems, TRUE);
	JANUS_LOG(LOG_INFO, "[%s] %d instruments loaded from %s\n", ALLIANCE_PACKAGE,
		instrument_set_count(instruments), settings.instruments_dir);
	/* the store: without it nothing could be kept, so refuse to start */
	char err[512] = "";
	db = store_open_sqlite(settings.db_path, err, sizeof(err));
	if(db == NULL) {
		JANUS_LOG(LOG_FATAL, "[%s] cannot open the store: %s — plugin not started\n", ALLIANCE_PACKAGE, err);
		instrument_set_free(instruments);
		instruments = NULL;
		free_settings();
		return -1;
	}
	if(store_warning(db))
		JANUS_LOG(LOG_WARN, "[%s] store: %s\n", ALLIANCE_PACKAGE, store_warning(db));
	gateway = callback;
	sessions = g_hash_table_new_full(NULL, NULL, NULL, NULL);
	visits = g_hash_table_new(g_str_hash, g_str_equal);
	visits_by_invite = g_hash_table_new(digest_hash, digest_equal);
	g_atomic_int_set(&initialized, 1);
	shell_retention_tick(janus_get_real_time());   /* at start, then daily from the timer */
	if(shell_requests_start() < 0 || shell_pulses_start() < 0) {
		g_atomic_int_set(&initialized, 0);
		shell_requests_stop();
		g_hash_table_destroy(sessions);
		g_hash_table_destroy(visits);
		g_hash_table_destroy(visits_by_invite);
		store_close(db);
		db = NULL;
		instrument_set_free(instruments);
		instruments = NULL;
		free_settings();
		return -1;
	}
	JANUS_LOG(LOG_INFO, "%s initialized (%zu therapist keys, %zu supervisor keys, end_grace_s=%d, max_visits=%d, retention_days=%d, store %s)\n",
		ALLIANCE_NAME, auth_keyring_therapists(settings.keys), auth_keyring_supervisors(settings.keys),
		settings.end_grace_s, settings.max_visits, settings.retention_days, store_path(db));
	return 0;
}

static void alliance_destroy(void) {
	if(!g_atomic_int_get(&initialized))
		return;
	g_atomic_int_set(&stopping, 1);
	shell_requests_stop();
	shell_pulses_stop();
	shell_visits_destroy_all();
	janus_mutex_lock(&sessions_mutex);
	g_hash_table_destroy(sessions);
	sessions = NULL;
	janus_mutex_unlock(&sessions_mutex);
	janus_mutex_lock(&visits_mutex);
	g_hash_table_destroy(visits);
	g_hash_table_destroy(visits_by_invite);
	visits = visits_by_invite = NULL;
	janus_mutex_unlock(&visits_mutex);
	store_close(db);      /* every queued write lands first */
	db = NULL;
	instrument_set_free(instruments);
	instruments = NULL;
	free_settings();
	g_atomic_int_set(&initialized, 0);
	g_atomic_int_set(&stopping, 0);
	JANUS_LOG(LOG_INFO, "%s destroyed\n", ALLIANCE_NAME);
}

/* --- sessions (one per Janus handle) ------------------------------------- */
static void session_free(const janus_refcount *ref) {
	ap_session *s = janus_refcount_containerof(ref, ap_session, ref);
	janus_refcount_decrease(&s->handle->ref);
	shell_quality_session_clear(s);
	janus_mutex_destroy(&s->mutex);
	g_free(s);
}

ap_session *shell_session_lookup(janus_plugin_session *handle) {
	ap_session *s = NULL;
	janus_mutex_lock(&sessions_mutex);
	if(sessions && handle)
		s = g_hash_table_lookup(sessions, handle);
	if(s && g_atomic_int_get(&s->destroyed))
		s = NULL;
	if(s)
		janus_refcount_increase(&s->ref);
	janus_mutex_unlock(&sessions_mutex);
	return s;
}

static void alliance_create_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		*error = -1;
		return;
	}
	ap_session *s = g_new0(ap_session, 1);
	s->handle = handle;
	s->audio_pt = s->video_pt = -1;
	janus_rtp_switching_context_reset(&s->rx_ctx[0]);
	janus_rtp_switching_context_reset(&s->rx_ctx[1]);
	shell_quality_session_init(s);
	g_atomic_int_set(&s->send_audio, 1);
	g_atomic_int_set(&s->send_video, 1);
	janus_mutex_init(&s->mutex);
	janus_refcount_init(&s->ref, session_free);
	janus_refcount_increase(&handle->ref);
	handle->plugin_handle = s;
	janus_mutex_lock(&sessions_mutex);
	g_hash_table_insert(sessions, handle, s);   /* the table's reference */
	janus_mutex_unlock(&sessions_mutex);
}

static void alliance_destroy_session(janus_plugin_session *handle, int *error) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		*error = -1;
		return;
	}
	janus_mutex_lock(&sessions_mutex);
	ap_session *s = g_hash_table_lookup(sessions, handle);
	if(s == NULL) {
		janus_mutex_unlock(&sessions_mutex);
		*error = -2;
		return;
	}
	g_hash_table_remove(sessions, handle);
	janus_mutex_unlock(&sessions_mutex);
	if(g_atomic_int_compare_and_exchange(&s->destroyed, 0, 1)) {
		shell_session_detach(s, FALSE);
		shell_media_forget(s);
		janus_refcount_decrease(&s->ref);   /* drop the table's reference */
	}
}

static json_t *alliance_query_session(janus_plugin_session *handle) {
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return NULL;
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return NULL;
	json_t *info = json_object();
	janus_mutex_lock(&visits_mutex);
	ap_visit *av = s->visit;
	if(av) {
		json_object_set_new(info, "visit_id", json_string(av->v.id));
		json_object_set_new(info, "state", json_string(visit_state_name(av->v.state)));
		json_object_set_new(info, "modality", json_string(visit_modality_name(av->v.modality)));
	}
	json_object_set_new(info, "role", json_string(visit_role_name(s->role)));
	janus_mutex_unlock(&visits_mutex);
	json_object_set_new(info, "negotiated", json_boolean(g_atomic_int_get(&s->negotiated)));
	json_object_set_new(info, "media_up", json_boolean(g_atomic_int_get(&s->media_up)));
	json_object_set_new(info, "dataready", json_boolean(g_atomic_int_get(&s->dataready)));
	json_object_set_new(info, "send_audio", json_boolean(g_atomic_int_get(&s->send_audio)));
	json_object_set_new(info, "send_video", json_boolean(g_atomic_int_get(&s->send_video)));
	janus_mutex_lock(&s->mutex);
	json_object_set_new(info, "linked", json_boolean(s->peer != NULL));
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
	json_object_set_new(info, "counters", c);
	json_object_set_new(info, "hangingup", json_integer(g_atomic_int_get(&s->hangingup)));
	json_object_set_new(info, "destroyed", json_integer(g_atomic_int_get(&s->destroyed)));
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
	if(g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized)) {
		g_free(transaction);
		if(message) json_decref(message);
		if(jsep) json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR,
			g_atomic_int_get(&stopping) ? "Shutting down" : "Plugin not initialized", NULL);
	}
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL) {
		g_free(transaction);
		if(message) json_decref(message);
		if(jsep) json_decref(jsep);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "No session associated with this handle", NULL);
	}
	proto_request req;
	proto_error err;
	if(proto_parse(message, &req, &err) < 0) {
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
	shell_requests_enqueue(s, transaction, message, jsep);
	return janus_plugin_result_new(JANUS_PLUGIN_OK_WAIT, NULL, NULL);
}

static json_t *alliance_handle_admin_message(json_t *message) {
	json_t *response = json_object();
	json_t *request = json_object_get(message, "request");
	if(json_is_string(request) && !strcmp(json_string_value(request), "list_visits")) {
		json_t *list = json_array();
		janus_mutex_lock(&visits_mutex);
		GHashTableIter iter;
		gpointer value;
		g_hash_table_iter_init(&iter, visits);
		while(g_hash_table_iter_next(&iter, NULL, &value)) {
			ap_visit *av = value;
			json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:b}",
				"visit_id", av->v.id, "state", visit_state_name(av->v.state),
				"therapist_present", av->v.therapist_present, "client_present", av->v.client_present));
		}
		janus_mutex_unlock(&visits_mutex);
		json_object_set_new(response, "alliance", json_string("visits"));
		json_object_set_new(response, "visits", list);
	} else {
		proto_error err;
		proto_fail(&err, PROTO_ERR_UNKNOWN_REQUEST, "Unknown admin request");
		json_decref(response);
		response = proto_error_json(&err);
	}
	return response;
}

/* --- helpers for the other shell files ----------------------------------- */
gboolean shell_refuse_offer(ap_session *s, const json_t *jsep, json_t *error) {
	/* The core set up ICE/DTLS for an offer before the plugin saw the
	 * request. When the plugin refuses it on a handle that has no media
	 * yet, that half-made PeerConnection would make the next offer fail
	 * ("Agent already exists"): drop it, so a corrected retry works. An
	 * established call is left alone. */
	if(jsep == NULL || g_atomic_int_get(&s->media_up))
		return FALSE;
	const char *type = json_string_value(json_object_get(jsep, "type"));
	if(type == NULL || strcmp(type, "offer") != 0)
		return FALSE;
	gateway->close_pc(s->handle);
	/* tell the client: wait for Janus's `hangup`, then offer afresh */
	if(error)
		json_object_set_new(error, "pc_reset", json_true());
	return TRUE;
}

int shell_push(ap_session *s, const char *transaction, json_t *msg, json_t *jsep) {
	int rc = gateway->push_event(s->handle, &alliance_plugin, transaction, msg, jsep);
	json_decref(msg);
	if(jsep)
		json_decref(jsep);
	return rc;
}

void shell_notify(janus_plugin_session *handle, const char *event, json_t *fields) {
	if(!settings.events || !gateway->events_is_enabled()) {
		if(fields)
			json_decref(fields);
		return;
	}
	json_t *info = fields ? fields : json_object();
	json_object_set_new(info, "event", json_string(event));
	gateway->notify_event(&alliance_plugin, handle, info);   /* takes info */
}
