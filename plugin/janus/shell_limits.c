/*
 * shell_limits.c — the Janus API's rate limits (docs/api.md, "Lifecycle";
 * error 497 rate_limited): a flood of requests from one handle, refused
 * keys or invites from one handle, and refused credentials from everyone
 * together. Checked before a request is even parsed, so a refusal changes
 * nothing. The buckets are core/ratelimit.
 */
#include "shell.h"

#include <string.h>

#include <utils.h>

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

void shell_limits_init(ap_plugin *ap) {
	(void)ap;
	ratelimit_init(&cred_global_rl, CRED_GLOBAL_PER_MIN / 60.0, CRED_GLOBAL_PER_MIN, janus_get_monotonic_time());
}

void shell_limits_session(ap_session *s) {
	gint64 now = janus_get_monotonic_time();
	ratelimit_init(&s->req_rl, REQ_PER_S, REQ_BURST, now);
	ratelimit_init(&s->cred_rl, CRED_PER_MIN / 60.0, CRED_PER_MIN, now);
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
	return k == PROTO_CREATE || k == PROTO_JOIN || k == PROTO_REPORT || k == PROTO_FORGET
		|| k == PROTO_CLIENT_HISTORY;
}

json_t *shell_limits_check(ap_session *s, const json_t *message) {
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
	else if(request && !strcmp(request, "client_history")) probe.kind = PROTO_CLIENT_HISTORY;
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
