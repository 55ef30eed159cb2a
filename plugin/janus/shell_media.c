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
 * Observers (shell_observe.c) get each participant's packets too; with
 * none watching, that costs the hot path one atomic read.
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

static ap_plugin *ap;

void shell_media_init(ap_plugin *plugin) {
	ap = plugin;
}

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
	shell_observe_sync_locked(av);
}

void shell_sync_links(ap_visit *av) {
	ap_session *t = av->therapist, *c = av->client;
	if(!(t && c && visit_relaying(&av->v))) {
		shell_unlink(av);
		return;
	}
	shell_observe_sync_locked(av);
	janus_mutex_lock(&t->mutex);
	gboolean linked = (t->peer == c);
	janus_mutex_unlock(&t->mutex);
	if(linked)
		return;
	set_peer(t, c);
	set_peer(c, t);
	/* each side gets a keyframe from the other as soon as it can */
	if(g_atomic_int_get(&t->media_up))
		ap->gateway->send_pli(t->handle);
	if(g_atomic_int_get(&c->media_up))
		ap->gateway->send_pli(c->handle);
}

/* --- SDP ------------------------------------------------------------------ */
janus_sdp *shell_sdp_offer(const char *offer_sdp, janus_sdp **answer, proto_error *err) {
	char error_str[256];
	janus_sdp *offer = janus_sdp_parse(offer_sdp, error_str, sizeof(error_str));
	if(offer == NULL) {
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Invalid SDP offer: %s", error_str);
		return NULL;
	}
	*answer = janus_sdp_generate_answer(offer);
	if(*answer == NULL) {
		janus_sdp_destroy(offer);
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Could not answer the SDP offer");
		return NULL;
	}
	return offer;
}

char *shell_sdp_finish(janus_sdp *offer, janus_sdp *answer, proto_error *err) {
	char *sdp = janus_sdp_write(answer);
	janus_sdp_destroy(offer);
	janus_sdp_destroy(answer);
	if(sdp == NULL)
		proto_fail(err, PROTO_ERR_INVALID_SDP, "Could not write the SDP answer");
	return sdp;
}

json_t *shell_sdp_publish(ap_session *s, int audio_pt, int video_pt, gboolean data,
		gboolean observer, char *sdp) {
	/* written once per negotiation on the message thread; the hot path reads
	 * a stale value for at most a packet or two during renegotiation */
	s->audio_pt = audio_pt;
	s->video_pt = video_pt;
	s->has_data = data;
	g_atomic_int_set(&s->observer_media, observer ? 1 : 0);
	g_atomic_int_set(&s->negotiated, 1);
	json_t *jsep = json_pack("{s:s, s:s}", "type", "answer", "sdp", sdp);
	g_free(sdp);
	return jsep;
}

json_t *shell_sdp_answer(ap_session *s, const char *offer_sdp, proto_error *err) {
	janus_sdp *answer = NULL;
	janus_sdp *offer = shell_sdp_offer(offer_sdp, &answer, err);
	if(offer == NULL)
		return NULL;
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
	char *sdp = shell_sdp_finish(offer, answer, err);
	if(sdp == NULL)
		return NULL;
	return shell_sdp_publish(s, apt, vpt, data, FALSE, sdp);
}

/* The PeerConnection is gone: what belonged to it goes too. What the
 * participant asked of the server (configure's audio/video: a mute) is
 * theirs, not the PeerConnection's, and stays for the next one. */
void shell_media_reset(ap_session *s) {
	janus_rtp_switching_context_reset(&s->rx_ctx[0]);
	janus_rtp_switching_context_reset(&s->rx_ctx[1]);
	shell_observe_reset(s);
	g_atomic_int_set(&s->media_up, 0);
	g_atomic_int_set(&s->dataready, 0);
	g_atomic_int_set(&s->hello_sent, 0);
	g_atomic_int_set(&s->negotiated, 0);
}

/* --- RTP / RTCP relay (hot path) ------------------------------------------ */
void shell_relay_to(janus_plugin_session *to, janus_plugin_rtp *packet,
		janus_rtp_switching_context *ctx, int vi, int pt, int mindex) {
	/* rewrite for the receiver's PeerConnection, relay, restore: the next
	 * receiver and the core (its own statistics, after us) read the
	 * original header */
	janus_rtp_header *h = (janus_rtp_header *)packet->buffer;
	int own_mindex = packet->mindex;
	uint32_t ssrc = h->ssrc, ts = h->timestamp;
	uint16_t seq = h->seq_number, type = h->type;
	janus_rtp_header_update(h, ctx, vi, 0);
	h->type = (uint16_t)pt;
	packet->mindex = mindex;
	ap->gateway->relay_rtp(to, packet);
	h->type = type;
	h->ssrc = ssrc;
	h->timestamp = ts;
	h->seq_number = seq;
	packet->mindex = own_mindex;
}

/* Forward one packet to the linked peer, if any. */
void shell_media_relay(ap_session *s, janus_plugin_rtp *packet, int vi) {
	if(!g_atomic_int_get(vi ? &s->send_video : &s->send_audio))
		return;
	janus_rtp_header *h = (janus_rtp_header *)packet->buffer;
	int own_pt = vi ? s->video_pt : s->audio_pt;
	if((int)h->type != own_pt)
		return;   /* not the codec we negotiated: nothing the peer could decode */
	if(g_atomic_int_get(&s->n_watchers) > 0)
		shell_observe_relay(s, packet, vi);    /* observers first: the header comes back as it was */
	ap_session *p = shell_peer_get(s);
	if(p == NULL)
		return;
	int pt = vi ? p->video_pt : p->audio_pt;
	if(pt >= 0 && g_atomic_int_get(&p->media_up) && !g_atomic_int_get(&p->destroyed)) {
		shell_relay_to(p->handle, packet, &p->rx_ctx[vi], vi, pt, -1);  /* the peer's first m-line of this kind */
		s->rtp_relayed[vi]++;
	}
	janus_refcount_decrease(&p->ref);
}

/* --- data channel --------------------------------------------------------- */
/* Janus's relay_data takes a 16-bit length: a longer text would go out
 * truncated (broken JSON). It is refused here, and callers that have an
 * alternative (shell_send_to: a Janus event) use it. */
#define DC_TEXT_MAX 65535

gboolean shell_send_dc(ap_session *s, const char *text) {
	if(text == NULL || !g_atomic_int_get(&s->dataready) || g_atomic_int_get(&ap->stopping))
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
	ap->gateway->relay_data(s->handle, &d);
	return TRUE;
}

/* Per-session limiter, created lazily; lives in a side table so the session
 * struct stays Janus-agnostic about it. */
static GHashTable *limiters = NULL;     /* ap_session* -> ratelimit* */
static janus_mutex limiters_mutex = JANUS_MUTEX_INITIALIZER;

gboolean shell_media_dc_allowed(ap_session *s) {
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
	ap->gateway->close_pc(s->handle);
	/* tell the client: wait for Janus's `hangup`, then offer afresh */
	if(error)
		json_object_set_new(error, "pc_reset", json_true());
	return TRUE;
}
