/*
 * shell_observe.c — observer media (live supervision): a supervisor who
 * joined as observer (consent-gated, plugin/core/visit.c) receives the
 * therapist's and the client's audio and video, and sends nothing.
 *
 * The answer. An observer's configure carries a receive-only offer; the
 * plugin answers its first two audio and first two video m-lines sendonly
 * (Opus, VP8): the first of each kind carries the therapist, the second
 * the client (PROTOCOL.md, "Operations and supervision"; docs/api.md).
 * Further audio/video m-lines are rejected (port 0); a data channel is
 * accepted as for anyone.
 *
 * Who watches whom. shell_observe_sync_locked() derives it from the visit
 * (visit_observed(): live, consent standing) whenever seats change (it is
 * called by shell_sync_links / shell_unlink under visits_mutex): each
 * seated participant's watchers[] names the observers (refs held), each
 * observer's watched[] names the participants (refs held). Both sides'
 * arrays live under their own session mutex, so the hot path never takes
 * visits_mutex, and an observer leaving or hanging up while a packet is
 * on its way is safe: the relay holds a reference for the send.
 *
 * The hot path. A participant's incoming_rtp pays one atomic read
 * (n_watchers) when nobody watches. With watchers, it pins them under its
 * own mutex (a copy of at most VISIT_OBSERVERS_MAX pointers), then per
 * observer rewrites the header through that observer's switching context
 * for the stream (so sequence numbers and timestamps stay continuous when
 * the participant reconnects or is taken over), relays, and restores the
 * header. No allocation, no JSON.
 *
 * Keyframes. When an observer's PeerConnection comes up, or an observer
 * starts watching a participant whose media is up, the participant is
 * asked for a keyframe. An observer's PLI/FIR goes to the participant it
 * names by m-line, at most one per OBS_PLI_MIN_US per seat. Its REMB and
 * every other RTCP are not passed on (they would throttle or confuse the
 * participants' own call).
 */
#include "shell.h"

#include <debug.h>
#include <rtp.h>
#include <rtcp.h>
#include <sdp-utils.h>
#include <utils.h>

static ap_plugin *ap;

void shell_observe_init(ap_plugin *plugin) {
	ap = plugin;
}

/* --- the answer -------------------------------------------------------------- */
json_t *shell_observe_answer(ap_session *o, const char *offer_sdp, proto_error *err) {
	janus_sdp *answer = NULL;
	janus_sdp *offer = shell_sdp_offer(offer_sdp, &answer, err);
	if(offer == NULL)
		return NULL;
	int mindex[OBS_STREAMS] = { -1, -1, -1, -1 };
	int seen[2] = { 0, 0 };
	for(GList *l = offer->m_lines; l; l = l->next) {
		janus_sdp_mline *m = l->data;
		if(m->type == JANUS_SDP_AUDIO || m->type == JANUS_SDP_VIDEO) {
			int vi = m->type == JANUS_SDP_VIDEO;
			int seat = seen[vi]++;
			if(seat < 2 && m->port > 0) {
				janus_sdp_generate_answer_mline(offer, answer, m,
					JANUS_SDP_OA_MLINE, m->type,
					JANUS_SDP_OA_CODEC, vi ? "vp8" : "opus",
					JANUS_SDP_OA_DIRECTION, JANUS_SDP_SENDONLY,
					JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
					JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_AUDIO_LEVEL,
					JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_VIDEO_ORIENTATION,
					JANUS_SDP_OA_DONE);
				mindex[seat * 2 + vi] = m->index;
			} else {
				janus_sdp_generate_answer_mline(offer, answer, m,
					JANUS_SDP_OA_MLINE, m->type, JANUS_SDP_OA_ENABLED, FALSE, JANUS_SDP_OA_DONE);
			}
		} else {
			janus_sdp_generate_answer_mline(offer, answer, m,
				JANUS_SDP_OA_MLINE, m->type, JANUS_SDP_OA_DONE);
		}
	}
	int pt[OBS_STREAMS];
	int streams = 0;
	for(int k = 0; k < OBS_STREAMS; k++) {
		pt[k] = -1;
		if(mindex[k] < 0)
			continue;
		janus_sdp_mline *am = janus_sdp_mline_find_by_index(answer, mindex[k]);
		/* sendonly from here; an offer that wants to SEND on it is inactive */
		if(am && am->port > 0 && am->direction == JANUS_SDP_SENDONLY)
			pt[k] = janus_sdp_get_codec_pt(answer, mindex[k], (k % 2) ? "vp8" : "opus");
		if(pt[k] < 0)
			mindex[k] = -1;
		else
			streams++;
	}
	janus_sdp_mline *dm = janus_sdp_mline_find(answer, JANUS_SDP_APPLICATION);
	gboolean data = dm && dm->port > 0;
	char *sdp = shell_sdp_finish(offer, answer, err);
	if(sdp == NULL)
		return NULL;
	if(streams == 0) {
		g_free(sdp);
		proto_fail(err, PROTO_ERR_INVALID_SDP, "An observer's offer needs audio or video m-lines that can "
			"receive (the first of each kind: the therapist's, the second: the client's)");
		return NULL;
	}
	/* as in shell_sdp_answer: written once per negotiation on the message
	 * thread; the hot path may read a stale value for a packet or two */
	for(int k = 0; k < OBS_STREAMS; k++) {
		o->obs_pt[k] = pt[k];
		o->obs_mindex[k] = mindex[k];
	}
	/* nothing of the observer's own is relayed */
	return shell_sdp_publish(o, -1, -1, data, TRUE, sdp);
}

/* --- who watches whom ------------------------------------------------------- */
static void set_watched(ap_session *o, int seat, ap_session *p, GPtrArray *drop) {
	janus_mutex_lock(&o->mutex);
	ap_session *old = o->watched[seat];
	if(old != p) {
		o->watched[seat] = p;
		if(p)
			janus_refcount_increase(&p->ref);
		if(old)
			g_ptr_array_add(drop, old);
		o->obs_pli_at[seat] = 0;
	}
	janus_mutex_unlock(&o->mutex);
}

/* Set participant p's watchers to want[0..n); TRUE if one is new. */
static gboolean set_watchers(ap_session *p, int seat, ap_session **want, int n, GPtrArray *drop) {
	gboolean added = FALSE;
	janus_mutex_lock(&p->mutex);
	int had = g_atomic_int_get(&p->n_watchers);
	for(int i = 0; i < n; i++) {
		gboolean found = FALSE;
		for(int j = 0; j < had && !found; j++)
			found = p->watchers[j] == want[i];
		if(!found)
			added = TRUE;
		janus_refcount_increase(&want[i]->ref);
	}
	for(int j = 0; j < had; j++)
		g_ptr_array_add(drop, p->watchers[j]);
	for(int i = 0; i < VISIT_OBSERVERS_MAX; i++)
		p->watchers[i] = i < n ? want[i] : NULL;
	p->watch_seat = seat;
	g_atomic_int_set(&p->n_watchers, n);
	janus_mutex_unlock(&p->mutex);
	return added;
}

void shell_observe_sync_locked(ap_visit *av) {
	ap_session *want[VISIT_OBSERVERS_MAX];
	int n = 0;
	if(visit_observed(&av->v))
		for(GList *l = av->observers; l && n < VISIT_OBSERVERS_MAX; l = l->next)
			want[n++] = l->data;
	GPtrArray *drop = g_ptr_array_new();
	ap_session *seats[2] = { av->therapist, av->client };
	for(int seat = 0; seat < 2; seat++) {
		ap_session *p = seats[seat];
		if(p && set_watchers(p, seat, want, n, drop) && g_atomic_int_get(&p->media_up))
			ap->gateway->send_pli(p->handle);     /* a new observer sees video at once */
	}
	/* observers: they watch whoever is seated (while observed), nobody else */
	for(GList *l = av->observers; l; l = l->next) {
		ap_session *o = l->data;
		gboolean on = FALSE;
		for(int i = 0; i < n; i++)
			on = on || want[i] == o;
		for(int seat = 0; seat < 2; seat++)
			set_watched(o, seat, on ? seats[seat] : NULL, drop);
	}
	/* the references dropped (never the last one while seated: the visit's
	 * slots and observer list hold theirs) */
	for(guint i = 0; i < drop->len; i++)
		janus_refcount_decrease(&((ap_session *)drop->pdata[i])->ref);
	g_ptr_array_free(drop, TRUE);
}

void shell_observe_forget(ap_session *s) {
	GPtrArray *drop = g_ptr_array_new();
	janus_mutex_lock(&s->mutex);
	for(int seat = 0; seat < 2; seat++) {
		if(s->watched[seat])
			g_ptr_array_add(drop, s->watched[seat]);
		s->watched[seat] = NULL;
	}
	int had = g_atomic_int_get(&s->n_watchers);
	for(int j = 0; j < had; j++)
		g_ptr_array_add(drop, s->watchers[j]);
	for(int i = 0; i < VISIT_OBSERVERS_MAX; i++)
		s->watchers[i] = NULL;
	g_atomic_int_set(&s->n_watchers, 0);
	janus_mutex_unlock(&s->mutex);
	for(guint i = 0; i < drop->len; i++)
		janus_refcount_decrease(&((ap_session *)drop->pdata[i])->ref);
	g_ptr_array_free(drop, TRUE);
}

void shell_observe_reset(ap_session *o) {
	for(int k = 0; k < OBS_STREAMS; k++)
		janus_rtp_switching_context_reset(&o->obs_ctx[k]);
}

/* --- the hot path -------------------------------------------------------------- */
void shell_observe_relay(ap_session *s, janus_plugin_rtp *packet, int vi) {
	ap_session *to[VISIT_OBSERVERS_MAX];
	int n = 0, seat;
	janus_mutex_lock(&s->mutex);
	seat = s->watch_seat;
	int have = g_atomic_int_get(&s->n_watchers);
	for(int i = 0; i < have && i < VISIT_OBSERVERS_MAX; i++) {
		to[n] = s->watchers[i];
		janus_refcount_increase(&to[n]->ref);
		n++;
	}
	janus_mutex_unlock(&s->mutex);
	int k = seat * 2 + vi;
	for(int i = 0; i < n; i++) {
		ap_session *o = to[i];
		int pt = o->obs_pt[k], mi = o->obs_mindex[k];
		if(pt >= 0 && mi >= 0 && g_atomic_int_get(&o->media_up) && !g_atomic_int_get(&o->destroyed)) {
			shell_relay_to(o->handle, packet, &o->obs_ctx[k], vi, pt, mi);
			o->obs_relayed[k]++;
		}
		janus_refcount_decrease(&o->ref);
	}
}

/* --- an observer's RTCP ---------------------------------------------------------- */
void shell_observe_rtcp(ap_session *o, janus_plugin_rtcp *packet) {
	if(!packet->video || !(janus_rtcp_has_pli(packet->buffer, packet->length) ||
			janus_rtcp_has_fir(packet->buffer, packet->length)))
		return;      /* receiver reports, REMB, NACKs: the participants' call is not theirs */
	int seat = -1;
	if(packet->mindex >= 0 && packet->mindex == o->obs_mindex[1])
		seat = 0;
	else if(packet->mindex >= 0 && packet->mindex == o->obs_mindex[3])
		seat = 1;
	o->pli_in++;
	if(seat < 0)
		return;
	gint64 now = janus_get_monotonic_time();
	ap_session *p = NULL;
	janus_mutex_lock(&o->mutex);
	if(o->watched[seat] && (o->obs_pli_at[seat] == 0 || now - o->obs_pli_at[seat] >= OBS_PLI_MIN_US)) {
		o->obs_pli_at[seat] = now;
		p = o->watched[seat];
		janus_refcount_increase(&p->ref);
	}
	janus_mutex_unlock(&o->mutex);
	if(p == NULL)
		return;
	if(g_atomic_int_get(&p->media_up) && !g_atomic_int_get(&p->destroyed))
		ap->gateway->send_pli(p->handle);
	janus_refcount_decrease(&p->ref);
}

void shell_observe_media_up(ap_session *s) {
	if(g_atomic_int_get(&s->observer_media)) {
		/* an observer's PC: keyframes from whoever it watches */
		ap_session *p[2] = { NULL, NULL };
		janus_mutex_lock(&s->mutex);
		for(int seat = 0; seat < 2; seat++)
			if((p[seat] = s->watched[seat]) != NULL)
				janus_refcount_increase(&p[seat]->ref);
		janus_mutex_unlock(&s->mutex);
		for(int seat = 0; seat < 2; seat++)
			if(p[seat]) {
				if(g_atomic_int_get(&p[seat]->media_up))
					ap->gateway->send_pli(p[seat]->handle);
				janus_refcount_decrease(&p[seat]->ref);
			}
	} else if(g_atomic_int_get(&s->n_watchers) > 0) {
		ap->gateway->send_pli(s->handle);     /* a participant back: observers see it at once */
	}
}

/* --- events ----------------------------------------------------------------- */
void shell_observe_announce_locked(ap_visit *av, gboolean joined, const char *reason) {
	ap_session *seats[2] = { av->therapist, av->client };
	for(int i = 0; i < 2; i++) {
		if(seats[i] == NULL)
			continue;
		json_t *ev = json_pack("{s:s, s:s, s:i}", "alliance", joined ? "observer_joined" : "observer_left",
			"visit_id", av->v.id, "observers", av->v.observers);
		if(reason)
			json_object_set_new(ev, "reason", json_string(reason));
		shell_push_event(seats[i], ev);
	}
}
