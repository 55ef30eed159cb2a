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

/* The Janus API's rate limits (docs/api.md, "Lifecycle"): per handle, 20
 * requests a second with bursts of 40; 5 refused keys or invites a minute,
 * then 60 s of 497; and 100 refused credentials a minute in all, after
 * which requests that carry credentials get 497 until the bucket refills. */
#define REQ_PER_S 20.0
#define REQ_BURST 40.0
#define CRED_PER_MIN 5.0
#define CRED_BLOCK_US (60 * G_USEC_PER_SEC)
#define CRED_GLOBAL_PER_MIN 100.0
static ratelimit cred_global_rl;
static janus_mutex cred_global_mutex = JANUS_MUTEX_INITIALIZER;

/* --- configuration ------------------------------------------------------- */
/* Every problem with the configuration ends init with one log line that
 * says what is wrong (cfg_fail fills it); Janus and its other plugins go
 * on serving. */
static char cfg_error[512];

static int cfg_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int cfg_fail(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	g_vsnprintf(cfg_error, sizeof(cfg_error), fmt, ap);
	va_end(ap);
	/* values come from a file an operator typed: keep the line printable */
	for(char *c = cfg_error; *c; c++)
		if((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return -1;
}

static const char *cfg_item(janus_config *cfg, janus_config_category *cat, const char *name) {
	janus_config_item *item = janus_config_get(cfg, cat, janus_config_type_item, name);
	return (item && item->value) ? item->value : NULL;
}

/* A bounded non-negative integer setting into *out (def if absent). */
static int cfg_int(janus_config *cfg, janus_config_category *cat, const char *name,
		int def, int min, int max, int *out) {
	const char *v = cfg_item(cfg, cat, name);
	*out = def;
	if(v == NULL)
		return 0;
	gchar *end = NULL;
	gint64 n = g_ascii_strtoll(v, &end, 10);
	if(end == v || *end != '\0' || n < min || n > max)
		return cfg_fail("general.%s must be an integer %d..%d (got '%.40s')", name, min, max, v);
	*out = (int)n;
	return 0;
}

static int cfg_bool(janus_config *cfg, janus_config_category *cat, const char *name,
		gboolean def, gboolean *out) {
	const char *v = cfg_item(cfg, cat, name);
	*out = def;
	if(v == NULL)
		return 0;
	if(janus_is_true(v))
		*out = TRUE;
	else if(!g_ascii_strcasecmp(v, "false") || !g_ascii_strcasecmp(v, "no") ||
			!g_ascii_strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = FALSE;
	else
		return cfg_fail("general.%s must be true or false (got '%.40s')", name, v);
	return 0;
}

/* A path setting: absent -> def; present -> a non-empty string. */
static int cfg_path(janus_config *cfg, janus_config_category *cat, const char *name,
		const char *def, char **out) {
	janus_config_item *item = janus_config_get(cfg, cat, janus_config_type_item, name);
	if(item == NULL) {
		*out = g_strdup(def);
		return 0;
	}
	if(item->value == NULL || item->value[0] == '\0')
		return cfg_fail("general.%s is empty", name);
	*out = g_strdup(item->value);
	return 0;
}

/* Load keys from a category of named entries: therapists { t01: {code, key_sha256} }. */
static int cfg_keys(janus_config *cfg, const char *category, gboolean therapist) {
	janus_config_category *cat = janus_config_get(cfg, NULL, janus_config_type_category, category);
	if(cat == NULL)
		return 0;
	for(GList *l = cat->list; l; l = l->next) {
		janus_config_container *entry = l->data;
		if(entry->type != janus_config_type_category)
			return cfg_fail("%s.%s: expected { code = ..., key_sha256 = ... }",
				category, entry->name ? entry->name : "?");
		const char *hex = cfg_item(cfg, entry, "key_sha256");
		char err[160] = "";
		int rc;
		if(therapist)
			rc = auth_keyring_add_therapist(settings.keys, cfg_item(cfg, entry, "code"), hex, err, sizeof(err));
		else
			rc = auth_keyring_add_supervisor(settings.keys, hex, err, sizeof(err));
		if(rc < 0)
			return cfg_fail("%s.%s: %s", category, entry->name, err);
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
			rc = cfg_fail("general.in_session_at_s must list up to %d ascending offsets in seconds (got '%.60s')",
				PULSE_OFFSETS_MAX, v);
			break;
		}
		settings.offsets_s[settings.n_offsets++] = (int)n;
	}
	g_strfreev(parts);
	return rc;
}

/* The settings of `general` this build knows; anything else is warned
 * about (a misspelt setting silently left at its default is worse). */
static const char *const known_general[] = {
	"db_path", "db_url", "instance_id", "instruments_dir", "end_grace_s", "events",
	"max_visits", "idle_close_s", "max_visit_s", "pulse_expires_s", "in_session_at_s",
	"quality_sample_s", "quality_context_s", "quality_live_s", "quality_pulse_freezes",
	"quality_pulse_frozen_s", "quality_pulse_window_s", "retention_days", NULL
};

static void cfg_warn_unknown(janus_config_category *general) {
	for(GList *l = general->list; l; l = l->next) {
		janus_config_container *c = l->data;
		gboolean known = FALSE;
		for(int i = 0; c->name && known_general[i]; i++)
			if(!strcmp(c->name, known_general[i]))
				known = TRUE;
		if(!known && c->name) {
			char name[64];
			g_strlcpy(name, c->name, sizeof(name));
			for(char *p = name; *p; p++)
				if((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
					*p = '?';
			JANUS_LOG(LOG_WARN, "[%s] general.%s is not a setting of this plugin: ignored (docs: janus.plugin.alliance.jcfg.sample)\n",
				ALLIANCE_PACKAGE, name);
		}
	}
}

static int load_config(const char *config_path) {
	memset(&settings, 0, sizeof(settings));
	settings.keys = auth_keyring_new();
	cfg_error[0] = '\0';
	char filename[512];
	g_snprintf(filename, sizeof(filename), "%s/%s.jcfg", config_path, ALLIANCE_PACKAGE);
	if(!g_file_test(filename, G_FILE_TEST_EXISTS))
		return cfg_fail("the configuration %s does not exist (see %s.jcfg.sample)", filename, ALLIANCE_PACKAGE);
	janus_config *cfg = janus_config_parse(filename);
	if(cfg == NULL)
		return cfg_fail("the configuration %s cannot be parsed (a syntax error: see the lines above from Janus)", filename);
	int rc = -1;
	janus_config_category *general = janus_config_get_create(cfg, NULL, janus_config_type_category, "general");
	if(general == NULL || general->type != janus_config_type_category) {
		cfg_fail("general must be a category: general: { ... }");
		goto out;
	}
	cfg_warn_unknown(general);
	if(cfg_path(cfg, general, "db_path", "/var/lib/janus/alliance.sqlite", &settings.db_path) < 0 ||
			cfg_path(cfg, general, "instruments_dir", "/etc/janus/alliance-instruments", &settings.instruments_dir) < 0 ||
			cfg_bool(cfg, general, "events", TRUE, &settings.events) < 0 ||
			cfg_int(cfg, general, "end_grace_s", 180, 0, 7 * 24 * 3600, &settings.end_grace_s) < 0 ||
			cfg_int(cfg, general, "idle_close_s", 900, 0, 7 * 24 * 3600, &settings.idle_close_s) < 0 ||
			cfg_int(cfg, general, "max_visit_s", 14400, 0, 7 * 24 * 3600, &settings.max_visit_s) < 0 ||
			cfg_int(cfg, general, "max_visits", 1000, 1, 1000000, &settings.max_visits) < 0 ||
			cfg_int(cfg, general, "pulse_expires_s", 120, 1, 3600, &settings.pulse_expires_s) < 0 ||
			cfg_offsets(cfg_item(cfg, general, "in_session_at_s")) < 0 ||
			cfg_int(cfg, general, "quality_sample_s", 5, 5, 3600, &settings.quality_sample_s) < 0 ||
			cfg_int(cfg, general, "quality_context_s", 120, 5, 1200, &settings.quality_context_s) < 0 ||
			cfg_int(cfg, general, "quality_live_s", 5, 1, 60, &settings.quality_live_s) < 0 ||
			cfg_int(cfg, general, "quality_pulse_freezes", 0, 0, 1000, &settings.qpulse_freezes) < 0 ||
			cfg_int(cfg, general, "quality_pulse_frozen_s", 0, 0, 3600, &settings.qpulse_frozen_s) < 0 ||
			cfg_int(cfg, general, "quality_pulse_window_s", 120, 5, 1200, &settings.qpulse_window_s) < 0 ||
			cfg_int(cfg, general, "retention_days", 0, 0, 36500, &settings.retention_days) < 0)
		goto out;
	if(settings.quality_sample_s % 5 != 0) {
		cfg_fail("general.quality_sample_s must be a multiple of 5 (got %d)", settings.quality_sample_s);
		goto out;
	}
	if(cfg_item(cfg, general, "db_url") != NULL) {
		cfg_fail("general.db_url (PostgreSQL) is not supported by this build yet: use db_path");
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

void shell_failpoint(const char *name) {
	if(failpoints == NULL)
		return;
	int ms = GPOINTER_TO_INT(g_hash_table_lookup(failpoints, name));
	if(ms > 0)
		g_usleep((gulong)ms * 1000);
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
	if(sessions)
		g_hash_table_destroy(sessions);
	if(visits)
		g_hash_table_destroy(visits);
	if(visits_by_invite)
		g_hash_table_destroy(visits_by_invite);
	sessions = visits = visits_by_invite = NULL;
	store_close(db);
	db = NULL;
	instrument_set_free(instruments);
	instruments = NULL;
	free_settings();
}

static int init_refused(const char *why) {
	JANUS_LOG(LOG_FATAL, "[%s] plugin not started: %s\n", ALLIANCE_PACKAGE, why);
	init_unwind();
	return -1;
}

static int alliance_init(janus_callbacks *callback, const char *config_path) {
	if(g_atomic_int_get(&stopping))
		return -1;
	if(callback == NULL || config_path == NULL)
		return -1;
	if(load_config(config_path) < 0)
		return init_refused(cfg_error);
	shell_failpoints_load();
	/* instruments: a bad file is refused with its reason, the rest load;
	 * a folder that cannot be read at all is a configuration error */
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	instruments = instrument_set_load_dir(settings.instruments_dir, problems);
	if(instruments == NULL) {
		char why[600];
		g_snprintf(why, sizeof(why), "general.instruments_dir: %s",
			problems->len ? (char *)problems->pdata[0] : settings.instruments_dir);
		g_ptr_array_free(problems, TRUE);
		return init_refused(why);
	}
	for(guint i = 0; i < problems->len; i++)
		JANUS_LOG(LOG_ERR, "[%s] instrument refused: %s\n", ALLIANCE_PACKAGE, (char *)problems->pdata[i]);
	g_ptr_array_free(problems, TRUE);
	JANUS_LOG(LOG_INFO, "[%s] %d instruments loaded from %s\n", ALLIANCE_PACKAGE,
		instrument_set_count(instruments), settings.instruments_dir);
	if(instrument_set_count(instruments) == 0)
		JANUS_LOG(LOG_WARN, "[%s] no instrument loaded from %s: visits will send no pulses\n",
			ALLIANCE_PACKAGE, settings.instruments_dir);
	/* the store: without it nothing could be kept, so refuse to start */
	char err[512] = "";
	db = store_open_sqlite(settings.db_path, err, sizeof(err));
	if(db == NULL) {
		char why[600];
		g_snprintf(why, sizeof(why), "cannot open the store: %s", err);
		return init_refused(why);
	}
	if(store_warning(db))
		JANUS_LOG(LOG_WARN, "[%s] store: %s\n", ALLIANCE_PACKAGE, store_warning(db));
	/* visits a crash (or a kill) left open are closed as interrupted */
	if(shell_visits_repair(err, sizeof(err)) < 0) {
		char why[600];
		g_snprintf(why, sizeof(why), "cannot repair the visits an earlier run left open: %s", err);
		return init_refused(why);
	}
	gateway = callback;
	sessions = g_hash_table_new_full(NULL, NULL, NULL, NULL);
	visits = g_hash_table_new(g_str_hash, g_str_equal);
	visits_by_invite = g_hash_table_new(digest_hash, digest_equal);
	ratelimit_init(&cred_global_rl, CRED_GLOBAL_PER_MIN / 60.0, CRED_GLOBAL_PER_MIN, janus_get_monotonic_time());
	g_atomic_int_set(&initialized, 1);
	shell_retention_tick(janus_get_real_time());   /* at start, then daily from the timer */
	if(shell_requests_start() < 0 || shell_pulses_start() < 0) {
		g_atomic_int_set(&initialized, 0);
		shell_requests_stop();
		return init_refused("cannot start the plugin's threads");
	}
	JANUS_LOG(LOG_INFO, "%s initialized (%zu therapist keys, %zu supervisor keys, end_grace_s=%d, idle_close_s=%d, "
		"max_visit_s=%d, max_visits=%d, retention_days=%d, store %s)\n",
		ALLIANCE_NAME, auth_keyring_therapists(settings.keys), auth_keyring_supervisors(settings.keys),
		settings.end_grace_s, settings.idle_close_s, settings.max_visit_s, settings.max_visits,
		settings.retention_days, store_path(db));
	return 0;
}

static void alliance_destroy(void) {
	if(!g_atomic_int_get(&initialized))
		return;
	g_atomic_int_set(&stopping, 1);
	shell_requests_stop();
	shell_pulses_stop();
	/* every open visit ends and closes as `shutdown`: its last quality
	 * samples and open incidents are flushed, then the store drains */
	shell_visits_shutdown();
	janus_mutex_lock(&sessions_mutex);
	g_hash_table_destroy(sessions);
	sessions = NULL;
	janus_mutex_unlock(&sessions_mutex);
	janus_mutex_lock(&visits_mutex);
	g_hash_table_destroy(visits);
	g_hash_table_destroy(visits_by_invite);
	visits = visits_by_invite = NULL;
	janus_mutex_unlock(&visits_mutex);
	guint64 dropped = store_dropped_samples(db);
	store_close(db);      /* every queued write lands first */
	db = NULL;
	instrument_set_free(instruments);
	instruments = NULL;
	free_settings();
	g_atomic_int_set(&initialized, 0);
	g_atomic_int_set(&stopping, 0);
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
	s->supervisor = -1;
	gint64 now = janus_get_monotonic_time();
	ratelimit_init(&s->req_rl, REQ_PER_S, REQ_BURST, now);
	ratelimit_init(&s->cred_rl, CRED_PER_MIN / 60.0, CRED_PER_MIN, now);
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

void shell_credential_refused(ap_session *s) {
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&s->mutex);
	if(!ratelimit_take(&s->cred_rl, now))
		s->cred_blocked_until = now + CRED_BLOCK_US;
	janus_mutex_unlock(&s->mutex);
	janus_mutex_lock(&cred_global_mutex);
	ratelimit_take(&cred_global_rl, now);
	janus_mutex_unlock(&cred_global_mutex);
}

static gboolean carries_credentials(proto_kind k) {
	return k == PROTO_CREATE || k == PROTO_JOIN || k == PROTO_REPORT || k == PROTO_FORGET;
}

/* The 497 answer for a request over a limit, or NULL to go on. Checked
 * before anything else looks at the request, so it changes nothing. */
static json_t *rate_limited(ap_session *s, const json_t *message) {
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&s->mutex);
	gint64 blocked = s->cred_blocked_until > now ? s->cred_blocked_until - now : 0;
	gboolean ok = blocked == 0 && ratelimit_take(&s->req_rl, now);
	janus_mutex_unlock(&s->mutex);
	if(blocked)
		return shell_error_json(PROTO_ERR_RATE_LIMITED, "Too many refused keys or invites from this handle: "
			"try again in %d s", (int)((blocked + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC));
	if(!ok)
		return shell_error_json(PROTO_ERR_RATE_LIMITED, "Too many requests (at most %d a second): slow down",
			(int)REQ_PER_S);
	const char *request = json_string_value(json_object_get(message, "request"));
	proto_request probe;
	memset(&probe, 0, sizeof(probe));
	probe.kind = PROTO_STATUS;
	if(request && !strcmp(request, "create")) probe.kind = PROTO_CREATE;
	else if(request && !strcmp(request, "join")) probe.kind = PROTO_JOIN;
	else if(request && !strcmp(request, "report")) probe.kind = PROTO_REPORT;
	else if(request && !strcmp(request, "forget")) probe.kind = PROTO_FORGET;
	if(carries_credentials(probe.kind)) {
		janus_mutex_lock(&cred_global_mutex);
		gboolean room = ratelimit_peek(&cred_global_rl, now);
		janus_mutex_unlock(&cred_global_mutex);
		if(!room)
			return shell_error_json(PROTO_ERR_RATE_LIMITED, "Too many refused keys or invites on this server "
				"in the last minute: try again shortly");
	}
	return NULL;
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
	json_t *limited = rate_limited(s, message);
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
	/* Janus destroys plugins after it closed and unloaded its transports:
	 * an event pushed while we stop could call into an unloaded library */
	int rc = g_atomic_int_get(&stopping) ? -1 :
		gateway->push_event(s->handle, &alliance_plugin, transaction, msg, jsep);
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
