/*
 * shell_media.c — media of janus.plugin.alliance: the SDP answer, the
 * RTP/RTCP relay between therapist and client, the `alliance` data
 * channel, and PeerConnection up/down.
 *
 * Relay model. Each participant has its own PeerConnection with the plugin
 * (the plugin answers their offer, forcing Opus and VP8 so both legs carry
 * the same codecs). When the visit is live and both are present the two
 * sessions are linked (->peer); incoming_rtp then forwards each packet to
 * the peer with the payload type rewritten to the one negotiated on the
 * peer's PeerConnection. The Janus core only replaces the SSRC, so the
 * relay keeps sequence numbers and timestamps continuous itself (a
 * switching context per receiving session and medium, as the stock
 * plugins do): a re-joining participant's new stream then continues the
 * old one instead of jumping, which SRTP would take for replays. Keyframes: a PLI or FIR from one side
 * becomes a PLI to the other, and whenever a link forms or a PeerConnection
 * comes up both sides are asked for one, so a (re-)joining participant sees
 * video at once. REMB is handled as the stock VideoCall plugin does: it is
 * not forwarded; the sender is answered with the configured cap.
 *
 * Hot path (incoming_rtp): no allocation, no JSON, no lock but the
 * session's own mutex held for two pointer operations.
 */
#include "shell.h"
#include "ratelimit.h"

#include <debug.h>
#include <rtp.h>
#include <rtcp.h>
#include <sdp-utils.h>
#include <utils.h>

#define REMB_CAP_BPS 10000000   /* "no limit", as in the stock plugins */
#define DC_RATE_PER_S 20.0
#define DC_BURST 40.0

/* --- links ---------------------------------------------------------------- */
ap_session *shell_peer_get(ap_session *s) {
	janus_mutex_lock(&s->mutex);
	ap_session *p = s->peer;
	if(p)
		janus_refcount_increase(&p->ref);
	janus_mutex_unlock(&s->mutex);
	return p;
}

static void set_peer(ap_session *s, ap_session *p) {
	janus_mutex_lock(&s->mutex);
	ap_session *old = s->peer;
	s->peer = p;
	if(p)
		janus_refcount_increase(&p->ref);
	janus_mutex_unlock(&s->mutex);
	if(old)
		janus_refcount_decrease(&old->ref);
}

void shell_unlink(ap_visit *av) {
	if(av->therapist)
		set_peer(av->therapist, NULL);
	if(av->client)
		set_peer(av->client, NULL);
}

void shell_sync_links(ap_visit *av) {
	ap_session *t = av->therapist, *c = av->client;
	if(!(t && c && visit_relaying(&av->v))) {
		shell_unlink(av);
		return;
	}
	janus_mutex_lock(&t->mutex);
	gboolean linked = (t->peer == c);
	janus_mutex_unlock(&t->mutex);
	if(linked)
		return;
	set_peer(t, c);
	set_peer(c, t);
	/* each side gets a keyframe from the other as soon as it can */
	if(g_atomic_int_get(&t->media_up))
		gateway->send_pli(t->handle);
	if(g_atomic_int_get(&c->media_up))
		gateway->send_pli(c->handle);
}

/* --- SDP ------------------------------------------------------------------ */
json_t *shell_sdp_answer(ap_session *s, const char *offer_sdp, proto_error *err) {
	char error_str[256];
	janus_sdp *offer = janus_sdp_parse(offer_sdp, error_str, sizeof(error_str));
	if(offer == NULL) {
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Invalid SDP offer: %s", error_str);
		return NULL;
	}
	janus_sdp *answer = janus_sdp_generate_answer(offer);
	if(answer == NULL) {
		janus_sdp_destroy(offer);
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Could not answer the SDP offer");
		return NULL;
	}
	for(GList *l = offer->m_lines; l; l = l->next) {
		janus_sdp_mline *m = l->data;
		janus_sdp_generate_answer_mline(offer, answer, m,
			JANUS_SDP_OA_MLINE, m->type,
			JANUS_SDP_OA_CODEC, m->type == JANUS_SDP_AUDIO ? "opus" :
				(m->type == JANUS_SDP_VIDEO ? "vp8" : NULL),
			JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
			JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_AUDIO_LEVEL,
			JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_VIDEO_ORIENTATION,
			JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_TRANSPORT_WIDE_CC,
			JANUS_SDP_OA_DONE);
	}
	int apt = janus_sdp_get_codec_pt(answer, -1, "opus");
	int vpt = janus_sdp_get_codec_pt(answer, -1, "vp8");
	gboolean data = FALSE;
	janus_sdp_mline *dm = janus_sdp_mline_find(answer, JANUS_SDP_APPLICATION);
	if(dm && dm->port > 0)
		data = TRUE;
	janus_sdp_mline *am = janus_sdp_mline_find(answer, JANUS_SDP_AUDIO);
	janus_sdp_mline *vm = janus_sdp_mline_find(answer, JANUS_SDP_VIDEO);
	if(am == NULL || am->port == 0 || am->direction == JANUS_SDP_INACTIVE)
		apt = -1;
	if(vm == NULL || vm->port == 0 || vm->direction == JANUS_SDP_INACTIVE)
		vpt = -1;
	char *sdp = janus_sdp_write(answer);
	janus_sdp_destroy(offer);
	janus_sdp_destroy(answer);
	if(sdp == NULL) {
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Could not write the SDP answer");
		return NULL;
	}
	/* written once per negotiation on the message thread; the hot path reads
	 * a stale value for at most a packet or two during renegotiation */
	s->audio_pt = apt;
	s->video_pt = vpt;
	s->has_data = data;
	g_atomic_int_set(&s->negotiated, 1);
	json_t *jsep = json_pack("{s:s, s:s}", "type", "answer", "sdp", sdp);
	g_free(sdp);
	return jsep;
}

/* --- PeerConnection up / down --------------------------------------------- */
static ap_session *live_session(janus_plugin_session *handle) {
	if(handle == NULL || g_atomic_int_get(&handle->stopped) ||
			g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
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
	ap_session *p = shell_peer_get(s);
	if(p) {
		/* keyframes both ways: the newcomer sees video at once */
		gateway->send_pli(p->handle);
		gateway->send_pli(s->handle);
		janus_refcount_decrease(&p->ref);
	}
	janus_refcount_decrease(&s->ref);
}

/* The PeerConnection is gone: what belonged to it goes too. What the
 * participant asked of the server (configure's audio/video: a mute) is
 * theirs, not the PeerConnection's, and stays for the next one. */
void shell_media_reset(ap_session *s) {
	janus_rtp_switching_context_reset(&s->rx_ctx[0]);
	janus_rtp_switching_context_reset(&s->rx_ctx[1]);
	g_atomic_int_set(&s->media_up, 0);
	g_atomic_int_set(&s->dataready, 0);
	g_atomic_int_set(&s->hello_sent, 0);
	g_atomic_int_set(&s->negotiated, 0);
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

/* --- RTP / RTCP relay (hot path) ------------------------------------------ */
/* Forward one packet to the linked peer, if any. */
static inline void relay(ap_session *s, janus_plugin_rtp *packet, int vi) {
	if(!g_atomic_int_get(vi ? &s->send_video : &s->send_audio))
		return;
	janus_rtp_header *h = (janus_rtp_header *)packet->buffer;
	int own_pt = vi ? s->video_pt : s->audio_pt;
	if((int)h->type != own_pt)
		return;   /* not the codec we negotiated: nothing the peer could decode */
	ap_session *p = shell_peer_get(s);
	if(p == NULL)
		return;
	int pt = vi ? p->video_pt : p->audio_pt;
	if(pt >= 0 && g_atomic_int_get(&p->media_up) && !g_atomic_int_get(&p->destroyed)) {
		/* rewrite for the peer's PeerConnection, relay, restore: the core
		 * reads the original header for its own statistics after us */
		int mindex = packet->mindex;
		uint32_t ssrc = h->ssrc, ts = h->timestamp;
		uint16_t seq = h->seq_number;
		janus_rtp_header_update(h, &p->rx_ctx[vi], vi, 0);
		h->type = (uint16_t)pt;
		packet->mindex = -1;        /* the peer's first m-line of this kind */
		gateway->relay_rtp(p->handle, packet);
		h->type = (uint16_t)own_pt;
		h->ssrc = ssrc;
		h->timestamp = ts;
		h->seq_number = seq;
		packet->mindex = mindex;
		s->rtp_relayed[vi]++;
	}
	janus_refcount_decrease(&p->ref);
}

void alliance_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
	ap_session *s = live_session(handle);
	if(s == NULL || packet->buffer == NULL || packet->length < 12)
		return;
	int vi = packet->video ? 1 : 0;
	s->rtp_in[vi]++;
	relay(s, packet, vi);              /* first the relay, then the meter */
	shell_quality_rtp(s, packet);
}

void alliance_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet) {
	ap_session *s = live_session(handle);
	if(s == NULL || packet->buffer == NULL || packet->length < 4)
		return;
	s->rtcp_in++;
	shell_quality_rtcp(s, packet);
	/* a compound packet may carry a REMB and a PLI/FIR together: the REMB
	 * is answered here, the keyframe request still goes to the peer */
	uint32_t remb = janus_rtcp_get_remb(packet->buffer, packet->length);
	if(remb > 0) {
		s->remb_in++;
		gateway->send_remb(handle, REMB_CAP_BPS);
	}
	ap_session *p = shell_peer_get(s);
	if(p == NULL)
		return;
	if(janus_rtcp_has_pli(packet->buffer, packet->length) ||
			janus_rtcp_has_fir(packet->buffer, packet->length)) {
		s->pli_in++;
		gateway->send_pli(p->handle);   /* the peer sends the video s receives */
	} else if(remb == 0 && g_atomic_int_get(&p->media_up)) {
		int mindex = packet->mindex;
		packet->mindex = -1;
		gateway->relay_rtcp(p->handle, packet);
		packet->mindex = mindex;
	}
	janus_refcount_decrease(&p->ref);
}

/* --- data channel --------------------------------------------------------- */
/* Janus's relay_data takes a 16-bit length: a longer text would go out
 * truncated (broken JSON). It is refused here, and callers that have an
 * alternative (shell_send_to: a Janus event) use it. */
#define DC_TEXT_MAX 65535

gboolean shell_send_dc(ap_session *s, const char *text) {
	if(text == NULL || !g_atomic_int_get(&s->dataready) || g_atomic_int_get(&stopping))
		return FALSE;
	size_t len = strlen(text);
	if(len > DC_TEXT_MAX) {
		JANUS_LOG(LOG_WARN, "[%s-%p] a %zu-byte message does not fit the data channel (max %d)\n",
			ALLIANCE_PACKAGE, s->handle, len, DC_TEXT_MAX);
		return FALSE;
	}
	janus_plugin_data d = {
		.label = (char *)ALLIANCE_DC_LABEL,
		.protocol = NULL,
		.binary = FALSE,
		.buffer = (char *)text,
		.length = (uint16_t)len,
	};
	gateway->relay_data(s->handle, &d);
	return TRUE;
}

/* --- media that stops (a network cut) --------------------------------------- */
#define MEDIA_STOPPED_US (2 * G_USEC_PER_SEC)

/* How long since the last RTP packet of either medium, or -1 if s never
 * sent any (nothing to miss yet). */
static gint64 silent_for(ap_session *s, gint64 now) {
	gint64 last = 0;
	for(int m = 0; m < 2; m++) {
		g_mutex_lock(&s->up_mutex[m]);
		gint64 t = s->up[m].last_arrival_us;
		g_mutex_unlock(&s->up_mutex[m]);
		if(t > last)
			last = t;
	}
	return last ? now - last : -1;
}

/* Once per timer tick, per visit: a seated participant whose media stopped
 * (no packet for MEDIA_STOPPED_US) is announced to the other one; when it
 * flows again that is announced too and the pulses held for them go out. */
void shell_media_presence_locked(ap_visit *av, gint64 now) {
	if(av->v.state != VISIT_LIVE)
		return;
	ap_session *seat[2] = { av->therapist, av->client };
	for(int i = 0; i < 2; i++) {
		ap_session *s = seat[i], *other = seat[1 - i];
		if(s == NULL)
			continue;
		gint64 quiet = silent_for(s, now);
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

/* Per-session limiter, created lazily; lives in a side table so the session
 * struct stays Janus-agnostic about it. */
static GHashTable *limiters = NULL;     /* ap_session* -> ratelimit* */
static janus_mutex limiters_mutex = JANUS_MUTEX_INITIALIZER;

static gboolean dc_allowed(ap_session *s) {
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&limiters_mutex);
	if(limiters == NULL)
		limiters = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	ratelimit *rl = g_hash_table_lookup(limiters, s);
	if(rl == NULL) {
		rl = g_new0(ratelimit, 1);
		ratelimit_init(rl, DC_RATE_PER_S, DC_BURST, now);
		g_hash_table_insert(limiters, s, rl);
	}
	gboolean ok = ratelimit_take(rl, now);
	janus_mutex_unlock(&limiters_mutex);
	return ok;
}

void shell_media_forget(ap_session *s) {
	janus_mutex_lock(&limiters_mutex);
	if(limiters)
		g_hash_table_remove(limiters, s);
	janus_mutex_unlock(&limiters_mutex);
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
	if(!dc_allowed(s)) {
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
		janus_mutex_lock(&visits_mutex);
		if(s->visit)
			hello = dcmsg_hello(visit_role_name(s->role), s->visit->v.id);
		janus_mutex_unlock(&visits_mutex);
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
