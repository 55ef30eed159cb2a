/*
 * shell_auth.c — who a request's credentials say the caller is: the keys
 * of janus.plugin.alliance.jcfg, or a Janus signed token in their place
 * (PROTOCOL.md v1.1 "Operations and supervision"; the token's rules are in
 * plugin/core/auth.h).
 *
 * Signed tokens are accepted only when the Janus core itself runs in
 * signed-token mode: janus.jcfg has token_auth = true and
 * token_auth_secret. The plugin API (102) does not give a plugin the
 * secret, and its verifiers (auth_is_signature_valid,
 * auth_signature_contains) accept only tokens whose realm is the plugin's
 * package, while the contract's tokens are of realm "janus" — the tokens
 * the core takes for its own API, so one token serves both. So the plugin
 * reads token_auth and token_auth_secret from janus.jcfg in Janus's
 * configuration folder (the file Janus reads unless started with -C), and
 * at start asks the core's own verifier whether it holds the same secret:
 * it signs a short-lived token of its own realm and passes it to
 * auth_is_signature_valid. Any disagreement (the core not in signed mode, a
 * secret given on Janus's command line, another janus.jcfg) turns tokens
 * off with one log line; keys keep working.
 *
 * The secret is never logged; tokens are never logged.
 */
#include "shell.h"

#include <string.h>

#include <debug.h>
#include <config.h>
#include <utils.h>

static ap_plugin *ap;
static char *token_secret;           /* NULL: tokens refused (set at load, read-only after) */

void shell_auth_init(ap_plugin *plugin) {
	ap = plugin;
}

/* token_auth / token_auth_secret of Janus's own janus.jcfg; NULL with a
 * reason when signed tokens are not configured there. */
static char *secret_from_janus_config(const char *config_path, const char **why) {
	char *path = g_build_filename(config_path, "janus.jcfg", NULL);
	/* checked first: the parser logs an error for a file that is not there */
	janus_config *cfg = g_file_test(path, G_FILE_TEST_IS_REGULAR) ? janus_config_parse(path) : NULL;
	g_free(path);
	if(cfg == NULL) {
		*why = "janus.jcfg was not found in Janus's configuration folder";
		return NULL;
	}
	janus_config_category *general = janus_config_get(cfg, NULL, janus_config_type_category, "general");
	janus_config_item *on = janus_config_get(cfg, general, janus_config_type_item, "token_auth");
	janus_config_item *secret = janus_config_get(cfg, general, janus_config_type_item, "token_auth_secret");
	char *out = NULL;
	if(on == NULL || on->value == NULL || !janus_is_true(on->value))
		*why = "janus.jcfg has no token_auth = true";
	else if(secret == NULL || secret->value == NULL || secret->value[0] == '\0')
		*why = "janus.jcfg has token_auth but no token_auth_secret (stored tokens are not signed)";
	else
		out = g_strdup(secret->value);
	janus_config_destroy(cfg);
	return out;
}

void shell_auth_load(const char *config_path) {
	shell_auth_free();
	const char *why = NULL;
	char *secret = secret_from_janus_config(config_path, &why);
	janus_callbacks *gw = ap->gateway;
	gboolean core_signed = gw && gw->auth_is_signed && gw->auth_is_signed();
	if(secret == NULL) {
		if(core_signed)
			JANUS_LOG(LOG_WARN, "[%s] the Janus core uses signed tokens, but %s: therapist_token and "
				"supervisor_token are refused (keys work)\n", ALLIANCE_PACKAGE, why);
		else
			JANUS_LOG(LOG_VERB, "[%s] signed tokens off: %s\n", ALLIANCE_PACKAGE, why);
		return;
	}
	/* does the core verify with the same secret? ask its verifier */
	gboolean same = FALSE;
	if(core_signed && gw->auth_is_signature_valid) {
		char probe[256];
		gint64 now_s = janus_get_real_time() / G_USEC_PER_SEC;
		if(auth_signed_make(secret, now_s + 60, ALLIANCE_PACKAGE, NULL, 0, probe, sizeof(probe)) > 0)
			same = gw->auth_is_signature_valid(ap->plugin, probe);
		memset(probe, 0, sizeof(probe));
	}
	if(!same) {
		JANUS_LOG(LOG_WARN, "[%s] janus.jcfg names a token_auth_secret, but the Janus core %s: "
			"therapist_token and supervisor_token are refused (keys work)\n", ALLIANCE_PACKAGE,
			core_signed ? "verifies with another secret" : "is not in signed-token mode");
		memset(secret, 0, strlen(secret));
		g_free(secret);
		return;
	}
	token_secret = secret;
	JANUS_LOG(LOG_INFO, "[%s] signed tokens accepted in place of keys (the core's token_auth_secret)\n",
		ALLIANCE_PACKAGE);
}

void shell_auth_free(void) {
	if(token_secret) {
		memset(token_secret, 0, strlen(token_secret));
		g_free(token_secret);
	}
	token_secret = NULL;
}

gboolean shell_auth_tokens_on(void) {
	return token_secret != NULL;
}

#define CLIENT_TOKEN_NO_MAX_S (7 * 24 * 3600)   /* max_visit_s = 0: visits never time out */
#define CLIENT_TOKEN_SLACK_S 3600

int shell_auth_client_token(char *out, size_t outlen) {
	if(token_secret == NULL)
		return -1;
	gint64 now_s = janus_get_real_time() / G_USEC_PER_SEC;
	gint64 life = ap->settings.max_visit_s > 0 ? ap->settings.max_visit_s : CLIENT_TOKEN_NO_MAX_S;
	life += ap->settings.end_grace_s + CLIENT_TOKEN_SLACK_S;
	const char *const plugin[] = { ALLIANCE_PACKAGE };
	return auth_signed_make(token_secret, now_s + life, "janus", plugin, 1, out, outlen);
}

/* A token's grant, or the 475 (counted as a refused credential). */
static json_t *check_token(ap_session *s, const char *who, const char *token, auth_grant *g) {
	auth_signed_rc rc = auth_signed_verify(token_secret, token, janus_get_real_time() / G_USEC_PER_SEC, g);
	if(rc == AUTH_SIGNED_OK)
		return NULL;
	JANUS_LOG(LOG_VERB, "[%s] %s token refused: %s\n", ALLIANCE_PACKAGE, who, auth_signed_rc_text(rc));
	shell_credential_refused(s);
	return shell_error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (%s token: %s)", who, auth_signed_rc_text(rc));
}

const char *shell_auth_therapist(ap_session *s, const proto_request *req,
		char code[AUTH_CODE_MAX + 1], json_t **refusal) {
	*refusal = NULL;
	code[0] = '\0';
	if(req->therapist_token) {
		auth_grant g;
		if((*refusal = check_token(s, "therapist", req->therapist_token, &g)) != NULL)
			return NULL;
		if(g.therapist[0] == '\0') {
			shell_credential_refused(s);
			*refusal = shell_error_json(PROTO_ERR_UNAUTHORIZED,
				"Unauthorized (therapist token: grants no alliance.therapist=<code>)");
			return NULL;
		}
		g_strlcpy(code, g.therapist, AUTH_CODE_MAX + 1);
		return code;
	}
	const char *c = auth_keyring_therapist(ap->settings.keys, req->therapist_key);
	if(c == NULL) {
		shell_credential_refused(s);
		*refusal = shell_error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (wrong therapist key)");
		return NULL;
	}
	g_strlcpy(code, c, AUTH_CODE_MAX + 1);
	return code;
}

int shell_auth_supervisor(ap_session *s, const proto_request *req, json_t **refusal) {
	*refusal = NULL;
	if(req->supervisor_token) {
		auth_grant g;
		if((*refusal = check_token(s, "supervisor", req->supervisor_token, &g)) != NULL)
			return -1;
		if(!g.supervisor) {
			shell_credential_refused(s);
			*refusal = shell_error_json(PROTO_ERR_UNAUTHORIZED,
				"Unauthorized (supervisor token: grants no alliance.supervisor)");
			return -1;
		}
		/* a token names no person: token supervisors share one seat, the
		 * one after the configured supervisors' */
		return (int)auth_keyring_supervisors(ap->settings.keys);
	}
	int i = auth_keyring_supervisor_index(ap->settings.keys, req->supervisor_key);
	if(i < 0) {
		shell_credential_refused(s);
		*refusal = shell_error_json(PROTO_ERR_UNAUTHORIZED, "Unauthorized (wrong supervisor key)");
	}
	return i;
}
