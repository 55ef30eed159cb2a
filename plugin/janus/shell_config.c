/*
 * shell_config.c — janus.plugin.alliance.jcfg into ap_settings.
 *
 * Every setting has a default; a bad value, a file that is missing or does
 * not parse, or a bad key hash makes shell_config_load() fail with one
 * sentence (the plugin logs it as its one FATAL line and does not start,
 * while Janus goes on). An unknown setting is warned about and ignored.
 */
#include "shell.h"
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include <debug.h>
#include <config.h>
#include <utils.h>

static ap_settings *conf;            /* what shell_config_load() fills */

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

/* A bounded decimal setting, min < value <= max (def if absent). */
static int cfg_positive(janus_config *cfg, janus_config_category *cat, const char *name,
		double def, double max, double *out) {
	const char *v = cfg_item(cfg, cat, name);
	*out = def;
	if(v == NULL)
		return 0;
	gchar *end = NULL;
	double x = g_ascii_strtod(v, &end);
	if(end == v || *end != '\0' || !isfinite(x) || !(x > 0) || x > max)
		return cfg_fail("general.%s must be a number > 0 and <= %g (got '%.40s')", name, max, v);
	*out = x;
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

/* general.db_url: a libpq URI or keyword/value string. Only its shape is
 * checked here (libpq parses it at open); it is never echoed, since it
 * may carry a password. */
static int cfg_db_url(janus_config *cfg, janus_config_category *cat) {
	const char *v = cfg_item(cfg, cat, "db_url");
	if(v == NULL)
		return 0;
	size_t n = strlen(v);
	if(n == 0 || n > 1024)
		return cfg_fail("general.db_url must be a PostgreSQL connection URI of 1..1024 characters");
	for(const char *c = v; *c; c++)
		if((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return cfg_fail("general.db_url holds a control or non-ASCII character");
	if(strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0 && strchr(v, '=') == NULL)
		return cfg_fail("general.db_url must be a PostgreSQL connection URI (postgresql://...) "
			"or keyword/value string (host=... dbname=...)");
	conf->db_url = g_strdup(v);
	return 0;
}

/* general.instance_id: 1..64 of [A-Za-z0-9_.-]; default the host name
 * (other characters turned into '-'). */
static int cfg_instance_id(janus_config *cfg, janus_config_category *cat) {
	const char *v = cfg_item(cfg, cat, "instance_id");
	if(v != NULL) {
		size_t n = strlen(v);
		gboolean ok = n >= 1 && n <= 64;
		for(const char *c = v; ok && *c; c++)
			ok = g_ascii_isalnum(*c) || *c == '_' || *c == '.' || *c == '-';
		if(!ok)
			return cfg_fail("general.instance_id must be 1..64 characters of A-Z a-z 0-9 _ . - (got '%.70s')", v);
		conf->instance_id = g_strdup(v);
		return 0;
	}
	gchar *h = g_strndup(g_get_host_name(), 64);
	for(char *c = h; *c; c++)
		if(!(g_ascii_isalnum(*c) || *c == '_' || *c == '.' || *c == '-'))
			*c = '-';
	if(*h == '\0') {
		g_free(h);
		h = g_strdup("janus");
	}
	conf->instance_id = h;
	return 0;
}

/* general.public_servers = "wss://a.example/janus, https://a.example/janus":
 * this instance's Janus URLs as the pages reach them (a `join` for a visit
 * of this instance that reaches another one is sent here), up to 8. */
#define PUBLIC_SERVERS_MAX 8
static int cfg_public_servers(janus_config *cfg, janus_config_category *cat) {
	const char *v = cfg_item(cfg, cat, "public_servers");
	json_t *list = json_array();
	int rc = 0;
	if(v != NULL) {
		gchar **parts = g_strsplit(v, ",", -1);
		for(int i = 0; parts[i] && rc == 0; i++) {
			gchar *t = g_strstrip(parts[i]);
			if(*t == '\0')
				continue;
			gboolean ok = strlen(t) <= 255 && json_array_size(list) < PUBLIC_SERVERS_MAX &&
				(g_str_has_prefix(t, "wss://") || g_str_has_prefix(t, "ws://") ||
				 g_str_has_prefix(t, "https://") || g_str_has_prefix(t, "http://"));
			for(const char *c = t; ok && *c; c++)
				ok = (unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f && *c != '"' && *c != '\\';
			if(!ok)
				rc = cfg_fail("general.public_servers must list up to %d ws://, wss://, http:// or "
					"https:// URLs, comma-separated (got '%.70s')", PUBLIC_SERVERS_MAX, t);
			else
				json_array_append_new(list, json_string(t));
		}
		g_strfreev(parts);
	}
	if(rc == 0)
		conf->public_servers_json = json_dumps(list, JSON_COMPACT);
	json_decref(list);
	return rc;
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
			rc = auth_keyring_add_therapist(conf->keys, cfg_item(cfg, entry, "code"), hex, err, sizeof(err));
		else
			rc = auth_keyring_add_supervisor(conf->keys, hex, err, sizeof(err));
		if(rc < 0)
			return cfg_fail("%s.%s: %s", category, entry->name, err);
	}
	return 0;
}

/* in_session_at_s = "600, 1800": ascending offsets in seconds. */
static int cfg_offsets(const char *v) {
	conf->n_offsets = 1;
	conf->offsets_s[0] = 1500;   /* default: 25 minutes into the visit */
	if(v == NULL)
		return 0;
	conf->n_offsets = 0;
	gchar **parts = g_strsplit(v, ",", -1);
	int rc = 0;
	for(int i = 0; parts[i] && rc == 0; i++) {
		gchar *t = g_strstrip(parts[i]);
		if(*t == '\0')
			continue;
		gchar *end = NULL;
		gint64 n = g_ascii_strtoll(t, &end, 10);
		if(end == t || *end != '\0' || n < 0 || n > PROTO_OFFSET_MAX_S ||
				conf->n_offsets >= PULSE_OFFSETS_MAX ||
				(conf->n_offsets > 0 && n < conf->offsets_s[conf->n_offsets - 1])) {
			rc = cfg_fail("general.in_session_at_s must list up to %d ascending offsets in seconds (got '%.60s')",
				PULSE_OFFSETS_MAX, v);
			break;
		}
		conf->offsets_s[conf->n_offsets++] = (int)n;
	}
	g_strfreev(parts);
	return rc;
}

/* The settings of `general` this build knows; anything else is warned
 * about (a misspelt setting silently left at its default is worse). */
static const char *const known_general[] = {
	"db_path", "db_url", "instance_id", "public_servers", "instruments_dir", "end_grace_s", "events",
	"max_visits", "idle_close_s", "max_visit_s", "pulse_expires_s", "in_session_at_s",
	"quality_sample_s", "quality_context_s", "quality_live_s", "quality_pulse_freezes",
	"quality_pulse_frozen_s", "quality_pulse_window_s", "retention_days", "noninferiority_margin",
	"pulse_hold_stable_s", "pulse_hold_max_s", NULL
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
	memset(conf, 0, sizeof(*conf));
	conf->keys = auth_keyring_new();
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
	if(cfg_path(cfg, general, "db_path", "/var/lib/janus/alliance.sqlite", &conf->db_path) < 0 ||
			cfg_path(cfg, general, "instruments_dir", "/etc/janus/alliance-instruments", &conf->instruments_dir) < 0 ||
			cfg_bool(cfg, general, "events", TRUE, &conf->events) < 0 ||
			cfg_int(cfg, general, "end_grace_s", 180, 0, 7 * 24 * 3600, &conf->end_grace_s) < 0 ||
			cfg_int(cfg, general, "idle_close_s", 900, 0, 7 * 24 * 3600, &conf->idle_close_s) < 0 ||
			cfg_int(cfg, general, "max_visit_s", 14400, 0, 7 * 24 * 3600, &conf->max_visit_s) < 0 ||
			cfg_int(cfg, general, "max_visits", 1000, 1, 1000000, &conf->max_visits) < 0 ||
			cfg_int(cfg, general, "pulse_expires_s", 120, 1, 3600, &conf->pulse_expires_s) < 0 ||
			cfg_offsets(cfg_item(cfg, general, "in_session_at_s")) < 0 ||
			cfg_int(cfg, general, "quality_sample_s", 5, 5, 3600, &conf->quality_sample_s) < 0 ||
			cfg_int(cfg, general, "quality_context_s", 120, 5, 1200, &conf->quality_context_s) < 0 ||
			cfg_int(cfg, general, "quality_live_s", 5, 1, 60, &conf->quality_live_s) < 0 ||
			cfg_int(cfg, general, "quality_pulse_freezes", 0, 0, 1000, &conf->qpulse_freezes) < 0 ||
			cfg_int(cfg, general, "quality_pulse_frozen_s", 0, 0, 3600, &conf->qpulse_frozen_s) < 0 ||
			cfg_int(cfg, general, "quality_pulse_window_s", 120, 5, 1200, &conf->qpulse_window_s) < 0 ||
			cfg_int(cfg, general, "retention_days", 0, 0, 36500, &conf->retention_days) < 0 ||
			cfg_positive(cfg, general, "noninferiority_margin", REPORT_NI_MARGIN, PROTO_MARGIN_MAX,
				&conf->ni_margin) < 0 ||
			cfg_int(cfg, general, "pulse_hold_stable_s", 3, 0, 60, &conf->pulse_hold_stable_s) < 0 ||
			cfg_int(cfg, general, "pulse_hold_max_s", 60, 1, 3600, &conf->pulse_hold_max_s) < 0)
		goto out;
	if(conf->pulse_hold_stable_s > 0 && conf->pulse_hold_max_s <= conf->pulse_hold_stable_s) {
		cfg_fail("general.pulse_hold_max_s (%d) must be longer than pulse_hold_stable_s (%d): "
			"a held pulse could never go out", conf->pulse_hold_max_s, conf->pulse_hold_stable_s);
		goto out;
	}
	if(conf->quality_sample_s % 5 != 0) {
		cfg_fail("general.quality_sample_s must be a multiple of 5 (got %d)", conf->quality_sample_s);
		goto out;
	}
	if(cfg_db_url(cfg, general) < 0 || cfg_instance_id(cfg, general) < 0 ||
			cfg_public_servers(cfg, general) < 0)
		goto out;
	if(cfg_keys(cfg, "therapists", TRUE) < 0 || cfg_keys(cfg, "supervisors", FALSE) < 0)
		goto out;
	if(auth_keyring_therapists(conf->keys) == 0)
		JANUS_LOG(LOG_WARN, "[%s] no therapist keys configured: nobody can create visits\n", ALLIANCE_PACKAGE);
	rc = 0;
out:
	janus_config_destroy(cfg);
	return rc;
}

void shell_config_free(ap_settings *s) {
	auth_keyring_free(s->keys);
	g_free(s->db_path);
	g_free(s->db_url);
	g_free(s->instance_id);
	free(s->public_servers_json);         /* jansson's */
	g_free(s->instruments_dir);
	memset(s, 0, sizeof(*s));
}

int shell_config_load(const char *config_path, ap_settings *out, char *err, size_t errlen) {
	conf = out;
	int rc = load_config(config_path);
	if(rc < 0)
		g_strlcpy(err, cfg_error, errlen);
	conf = NULL;
	return rc;
}
