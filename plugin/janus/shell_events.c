/*
 * shell_events.c — Janus's media and data callbacks for a handle: the
 * PeerConnection coming up and going down, RTP and RTCP in (relayed by
 * shell_media, metered by shell_quality), data-channel messages in
 * (answers to shell_pulses, stats to shell_quality), slow links.
 *
 * RTP/RTCP and setup/hangup run on each handle's own loop thread;
 * incoming_data on any thread. Buffers are valid only during the call.
 */
#include "shell.h"

#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <utils.h>

#define REMB_CAP_BPS 10000000   /* "no limit", as in the stock plugins */

static ap_plugin *ap;

void shell_events_init(ap_plugin *plugin) {
	ap = plugin;
}

/* --- PeerConnection up / down --------------------------------------------- */
static ap_session *live_session(janus_plugin_session *handle) {
	if(handle == NULL || g_atomic_int_get(&handle->stopped) ||
			g_atomic_int_get(&ap->stopping) || !g_atomic_int_get(&ap->initialized))
		return NULL;
	ap_session *s = handle->plugin_handle;
	if(s == NULL || g_atomic_int_get(&s->destroyed))
		return NULL;
	return s;
}

void alliance_setup_media(janus_plugin_session *handle) {
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return;
	JANUS_LOG(LOG_INFO, "[%s-%p] WebRTC media is up\n", ALLIANCE_PACKAGE, handle);
	g_atomic_int_set(&s->hangingup, 0);
	g_atomic_int_set(&s->media_up, 1);
	shell_quality_reconnect(s);
	shell_observe_media_up(s);
	ap_session *p = shell_peer_get(s);
	if(p) {
		/* keyframes both ways: the newcomer sees video at once */
		ap->gateway->send_pli(p->handle);
		ap->gateway->send_pli(s->handle);
		janus_refcount_decrease(&p->ref);
	}
	janus_refcount_decrease(&s->ref);
}

void alliance_hangup_media(janus_plugin_session *handle) {
	JANUS_LOG(LOG_INFO, "[%s-%p] no WebRTC media anymore\n", ALLIANCE_PACKAGE, handle);
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return;
	if(g_atomic_int_compare_and_exchange(&s->hangingup, 0, 1)) {
		s->hung_up_at = janus_get_monotonic_time();
		shell_media_reset(s);
		shell_notify(handle, "media_down", NULL);
		g_atomic_int_set(&s->hangingup, 0);
	}
	janus_refcount_decrease(&s->ref);
}

void alliance_slow_link(janus_plugin_session *handle, int mindex, gboolean video, gboolean uplink) {
	ap_session *s = live_session(handle);
	if(s == NULL)
		return;
	JANUS_LOG(LOG_VERB, "[%s-%p] slow %s for %s\n", ALLIANCE_PACKAGE, handle,
		uplink ? "uplink" : "downlink", video ? "video" : "audio");
	json_t *ev = json_pack("{s:s, s:s, s:b}", "alliance", "slow_link",
		"media", video ? "video" : "audio", "uplink", uplink);
	shell_push(s, NULL, ev, NULL);
	shell_quality_slow_link(s, video, uplink);
}

void alliance_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
	ap_session *s = live_session(handle);
	if(s == NULL || packet->buffer == NULL || packet->length < 12)
		return;
	int vi = packet->video ? 1 : 0;
	s->rtp_in[vi]++;
	if(g_atomic_int_get(&s->observer_media))
		return;                        /* an observer sends nothing anyone receives */
	shell_media_relay(s, packet, vi);  /* first the relay, then the meter */
	shell_quality_rtp(s, packet);
}

void alliance_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet) {
	ap_session *s = live_session(handle);
	if(s == NULL || packet->buffer == NULL || packet->length < 4)
		return;
	s->rtcp_in++;
	if(g_atomic_int_get(&s->observer_media)) {
		shell_observe_rtcp(s, packet);  /* its keyframe requests, nothing else */
		return;
	}
	shell_quality_rtcp(s, packet);
	/* a compound packet may carry a REMB and a PLI/FIR together: the REMB
	 * is answered here, the keyframe request still goes to the peer */
	uint32_t remb = janus_rtcp_get_remb(packet->buffer, packet->length);
	if(remb > 0) {
		s->remb_in++;
		ap->gateway->send_remb(handle, REMB_CAP_BPS);
	}
	ap_session *p = shell_peer_get(s);
	if(p == NULL)
		return;
	if(janus_rtcp_has_pli(packet->buffer, packet->length) ||
			janus_rtcp_has_fir(packet->buffer, packet->length)) {
		s->pli_in++;
		ap->gateway->send_pli(p->handle);   /* the peer sends the video s receives */
	} else if(remb == 0 && g_atomic_int_get(&p->media_up)) {
		int mindex = packet->mindex;
		packet->mindex = -1;
		ap->gateway->relay_rtcp(p->handle, packet);
		packet->mindex = mindex;
	}
	janus_refcount_decrease(&p->ref);
}

void alliance_incoming_data(janus_plugin_session *handle, janus_plugin_data *packet) {
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return;
	s->dc_in++;
	if(packet->label && strcmp(packet->label, ALLIANCE_DC_LABEL) != 0) {
		janus_refcount_decrease(&s->ref);
		return;   /* other channels are the application's business */
	}
	char *reply = NULL;
	dcmsg msg;
	memset(&msg, 0, sizeof(msg));
	dcmsg_error err;
	if(!shell_media_dc_allowed(s)) {
		memset(&err, 0, sizeof(err));
		err.code = "rate_limited";
		g_strlcpy(err.reason, "too many messages; slow down", sizeof(err.reason));
		s->dc_err++;
		reply = dcmsg_error_text(&err);
	} else if(packet->binary) {
		memset(&err, 0, sizeof(err));
		err.code = "bad_json";
		g_strlcpy(err.reason, "binary messages are not accepted", sizeof(err.reason));
		s->dc_err++;
		reply = dcmsg_error_text(&err);
	} else if(dcmsg_parse(packet->buffer, packet->length, &msg, &err) < 0) {
		s->dc_err++;
		reply = dcmsg_error_text(&err);
	} else if(msg.type == DCMSG_PING) {
		reply = dcmsg_pong(msg.ref);
	} else if(msg.type == DCMSG_ANSWER || msg.type == DCMSG_DISMISS) {
		shell_answer_dc(s, &msg);   /* acked after the commit */
	} else if(msg.type == DCMSG_STATS) {
		shell_quality_stats(s, &msg);
	}
	dcmsg_clear(&msg);
	if(reply)
		shell_send_dc(s, reply);
	free(reply);
	janus_refcount_decrease(&s->ref);
}

void alliance_data_ready(janus_plugin_session *handle) {
	ap_session *s = shell_session_lookup(handle);
	if(s == NULL)
		return;
	if(g_atomic_int_get(&s->hangingup)) {
		janus_refcount_decrease(&s->ref);
		return;
	}
	g_atomic_int_set(&s->dataready, 1);
	if(g_atomic_int_compare_and_exchange(&s->hello_sent, 0, 1)) {
		char *hello = NULL;
		janus_mutex_lock(&ap->visits_mutex);
		if(s->visit)
			hello = dcmsg_hello(visit_role_name(s->role), s->visit->v.id);
		janus_mutex_unlock(&ap->visits_mutex);
		if(hello) {
			JANUS_LOG(LOG_VERB, "[%s-%p] data channel ready, saying hello\n", ALLIANCE_PACKAGE, handle);
			shell_send_dc(s, hello);
			free(hello);
		} else {
			g_atomic_int_set(&s->hello_sent, 0);
		}
	}
	janus_refcount_decrease(&s->ref);
}
