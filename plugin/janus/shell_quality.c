/*
 * shell_quality.c — connection quality on the Janus side: feeds each
 * participant's meters from the RTP it sends (up) and the RTCP it returns
 * about what it receives (down), rolls 1 s windows from the timer into the
 * visit's quality record (quality.h), stores 5 s samples and incidents,
 * gives pulses their quality context, and tells the therapist how both
 * sides are doing every few seconds.
 *
 * The hot path (shell_quality_rtp) takes only the meter's own mutex,
 * uncontended but for one timer call a second, and does O(1) work.
 * Times: meters run on the monotonic clock; rows get real time, converted
 * with the offset between the two clocks at the tick.
 */
#include "shell.h"

#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <utils.h>

static ap_plugin *ap;

void shell_quality_init(ap_plugin *plugin) {
	ap = plugin;
}

/* one digest about every 2 s (a little slack for timer jitter), no burst */
#define STATS_RATE_PER_S (1.0 / 1.8)
#define STATS_BURST 1.0

void shell_quality_session_init(ap_session *s) {
	for(int m = 0; m < 2; m++) {
		g_mutex_init(&s->up_mutex[m]);
		g_mutex_init(&s->down_mutex[m]);
		meter_up_init(&s->up[m], m == 1, m == 1 ? 90000 : 48000);
		meter_down_init(&s->down[m], m == 1);
	}
	ratelimit_init(&s->stats_rl, STATS_RATE_PER_S, STATS_BURST, janus_get_monotonic_time());
}

void shell_quality_session_clear(ap_session *s) {
	for(int m = 0; m < 2; m++) {
		g_mutex_clear(&s->up_mutex[m]);
		g_mutex_clear(&s->down_mutex[m]);
	}
}

/* --- hot path ------------------------------------------------------------- */
void shell_quality_rtp(ap_session *s, janus_plugin_rtp *packet) {
	int m = packet->video ? 1 : 0;
	gint64 now = janus_get_monotonic_time();
	g_mutex_lock(&s->up_mutex[m]);
	meter_up_rtp(&s->up[m], (const uint8_t *)packet->buffer, packet->length, now);
	g_mutex_unlock(&s->up_mutex[m]);
}

typedef struct rtcp_ctx {
	ap_session *s;
	int m;
	uint64_t now_ntp;
} rtcp_ctx;

static void on_report(void *user, const meter_report_block *rb) {
	rtcp_ctx *c = user;
	meter_down_report(&c->s->down[c->m], rb, c->now_ntp, c->m ? 90000 : 48000);
}
static void on_pli(void *user, uint32_t a, uint32_t b) { meter_down_pli(&((rtcp_ctx *)user)->s->down[1]); }
static void on_fir(void *user, uint32_t a, uint32_t b, uint8_t n) { meter_down_fir(&((rtcp_ctx *)user)->s->down[1]); }
static void on_remb(void *user, uint32_t a, uint64_t bps, uint32_t f, unsigned n) { meter_down_remb(&((rtcp_ctx *)user)->s->down[1], bps); }
static void on_nack(void *user, uint32_t a, uint32_t b, unsigned lost) {
	rtcp_ctx *c = user;
	meter_down_nack(&c->s->down[c->m], lost);
}

void shell_quality_rtcp(ap_session *s, janus_plugin_rtcp *packet) {
	static const meter_rtcp_visitor visitor = {
		.report = on_report, .pli = on_pli, .fir = on_fir, .remb = on_remb, .nack = on_nack,
	};
	rtcp_ctx c = { .s = s, .m = packet->video ? 1 : 0,
		.now_ntp = meter_ntp_from_us(janus_get_real_time()) };
	/* PLI/FIR/REMB are video; lock the medium the packet came on and video
	 * if different (always in this order: audio before video) */
	g_mutex_lock(&s->down_mutex[c.m]);
	if(c.m == 0)
		g_mutex_lock(&s->down_mutex[1]);
	meter_rtcp_parse((const uint8_t *)packet->buffer, packet->length, &visitor, &c);
	if(c.m == 0)
		g_mutex_unlock(&s->down_mutex[1]);
	g_mutex_unlock(&s->down_mutex[c.m]);
}

/* --- the browser's own view ------------------------------------------------- */
static void stored(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_WARN, "[%s] store: %s (%s)\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc), (const char *)user);
}

void shell_quality_stats(ap_session *s, const dcmsg *msg) {
	gint64 now = janus_get_monotonic_time();
	g_mutex_lock(&s->up_mutex[0]);
	gboolean ok = ratelimit_take(&s->stats_rl, now);
	g_mutex_unlock(&s->up_mutex[0]);
	if(!ok) {
		dcmsg_error e;
		memset(&e, 0, sizeof(e));
		e.code = "rate_limited";
		g_strlcpy(e.reason, "stats at most every 2 s", sizeof(e.reason));
		g_strlcpy(e.ref, msg->ref, sizeof(e.ref));
		char *text = dcmsg_error_text(&e);
		shell_send_dc(s, text);
		free(text);
		return;
	}
	char visit_id[VISIT_ID_MAX + 1] = "";
	visit_role role;
	janus_mutex_lock(&ap->visits_mutex);
	if(s->visit)
		g_strlcpy(visit_id, s->visit->v.id, sizeof(visit_id));
	role = s->role;
	janus_mutex_unlock(&ap->visits_mutex);
	if(visit_id[0] == '\0' || (role != VISIT_ROLE_CLIENT && role != VISIT_ROLE_THERAPIST))
		return;
	char *json = dcmsg_stats_json(&msg->stats);
	/* the browser's view of what it receives: the *_down leg */
	store_quality_sample(ap->db, visit_id, role == VISIT_ROLE_CLIENT ? "client_down" : "therapist_down",
		"browser", janus_get_real_time(), json);
	free(json);
}

/* --- windows, samples, incidents (timer, under visits_mutex) ---------------- */
static void feed_session(ap_visit *av, ap_session *s, quality_leg up_leg, quality_leg down_leg,
		gint64 now) {
	for(int m = 0; m < 2; m++) {
		meter_window w;
		g_mutex_lock(&s->up_mutex[m]);
		meter_up_window(&s->up[m], now, &w);
		g_mutex_unlock(&s->up_mutex[m]);
		quality_feed(&av->q, up_leg, &w);
		g_mutex_lock(&s->down_mutex[m]);
		meter_down_window(&s->down[m], now, &w);
		g_mutex_unlock(&s->down_mutex[m]);
		quality_feed(&av->q, down_leg, &w);
	}
}

static void store_incidents(ap_visit *av, gint64 offset) {
	quality_incident inc[16];
	int n;
	while((n = quality_take_incidents(&av->q, inc, 16)) > 0) {
		for(int i = 0; i < n; i++) {
			char detail[64];
			g_snprintf(detail, sizeof(detail), "{\"peak\":%.1f}", inc[i].peak);
			store_incident_rec r = {
				.visit_id = av->v.id, .leg = quality_leg_name(inc[i].leg),
				.medium = inc[i].medium < 0 ? "any" : (inc[i].medium ? "video" : "audio"),
				.kind = quality_incident_name(inc[i].kind),
				.started_at_us = inc[i].started_us + offset,
				.ended_at_us = inc[i].ended_us > 0 ? inc[i].ended_us + offset : 0,
				.detail_json = detail,
			};
			if(r.ended_at_us && r.ended_at_us < r.started_at_us)
				r.ended_at_us = r.started_at_us;
			store_incident(ap->db, &r, stored, (void *)"incident");
			JANUS_LOG(LOG_VERB, "[%s] incident %s on %s (%.1f)\n", ALLIANCE_PACKAGE,
				r.kind, r.leg, inc[i].peak);
		}
	}
}

/* Add a 5 s bucket to the sample being built; store it every
 * quality_sample_s (or now, if flush). */
static void store_bucket(ap_visit *av, quality_sum bucket[Q_LEGS][Q_MEDIA], gint64 at_real,
		gboolean flush) {
	for(int l = 0; l < Q_LEGS; l++)
		for(int m = 0; m < Q_MEDIA; m++)
			quality_sum_merge(&av->sample_acc[l][m], &bucket[l][m]);
	av->sample_buckets++;
	if(!flush && av->sample_buckets * 5 < ap->settings.quality_sample_s)
		return;
	av->sample_buckets = 0;
	bucket = av->sample_acc;
	char buf[768];
	for(int l = 0; l < Q_LEGS; l++)
		for(int m = 0; m < Q_MEDIA; m++) {
			if(bucket[l][m].windows == 0)
				continue;
			if(quality_sum_format(&bucket[l][m], m == 1, buf, sizeof(buf)) < 0)
				continue;
			if(store_quality_sample(ap->db, av->v.id, quality_leg_name((quality_leg)l),
					m ? "video" : "audio", at_real, buf) < 0)
				JANUS_LOG(LOG_VERB, "[%s] quality sample dropped (queue full)\n", ALLIANCE_PACKAGE);
		}
	memset(av->sample_acc, 0, sizeof(av->sample_acc));
}

json_t *shell_quality_live(ap_visit *av, int seconds) {
	char *t = quality_context_json(&av->q, seconds);
	json_error_t jerr;
	json_t *o = t ? json_loads(t, 0, &jerr) : NULL;
	free(t);
	return o ? o : json_object();
}

gboolean shell_quality_tick(ap_visit *av, gint64 now, gint64 now_real) {
	if(av->next_window_us == 0) {
		av->next_window_us = now + G_USEC_PER_SEC;
		av->next_live_us = now + (gint64)ap->settings.quality_live_s * G_USEC_PER_SEC;
		return FALSE;
	}
	if(now < av->next_window_us)
		return FALSE;
	av->next_window_us += G_USEC_PER_SEC;
	if(av->next_window_us <= now)          /* a stalled timer does not make a burst */
		av->next_window_us = now + G_USEC_PER_SEC;
	if(av->v.state == VISIT_LIVE || av->v.state == VISIT_ENDED) {
		if(av->client)
			feed_session(av, av->client, Q_CLIENT_UP, Q_CLIENT_DOWN, now);
		if(av->therapist)
			feed_session(av, av->therapist, Q_THERAPIST_UP, Q_THERAPIST_DOWN, now);
	}
	/* the optional quality rule: a run of freezes asks the client about the
	 * technology (separating "the video was bad" from "the session was");
	 * the timer sends it and says so (shell_quality_technology_sent) */
	gboolean technology_due = FALSE;
	if((ap->settings.qpulse_freezes > 0 || ap->settings.qpulse_frozen_s > 0) && av->v.state == VISIT_LIVE &&
			now >= av->qpulse_after_us) {
		quality_sum a, b;
		quality_recent(&av->q, ap->settings.qpulse_window_s, Q_CLIENT_UP, 1, &a);
		quality_recent(&av->q, ap->settings.qpulse_window_s, Q_THERAPIST_UP, 1, &b);
		int64_t freezes = a.freezes + b.freezes, frozen_ms = a.freeze_ms + b.freeze_ms;
		technology_due = (ap->settings.qpulse_freezes > 0 && freezes >= ap->settings.qpulse_freezes) ||
			(ap->settings.qpulse_frozen_s > 0 && frozen_ms >= (int64_t)ap->settings.qpulse_frozen_s * 1000);
	}
	gint64 offset = now_real - now;
	quality_sum bucket[Q_LEGS][Q_MEDIA];
	if(quality_roll(&av->q, now, FALSE, bucket))
		store_bucket(av, bucket, now_real, FALSE);
	store_incidents(av, offset);
	/* the therapist sees both sides every few seconds */
	if(av->v.state == VISIT_LIVE && av->therapist && now >= av->next_live_us) {
		av->next_live_us = now + (gint64)ap->settings.quality_live_s * G_USEC_PER_SEC;
		json_t *live = shell_quality_live(av, ap->settings.quality_live_s);
		ap_session *t = av->therapist;
		if(g_atomic_int_get(&t->dataready)) {
			char *text = dcmsg_encode("quality", live);
			shell_send_dc(t, text);
			free(text);
		} else {
			json_t *ev = json_deep_copy(live);
			json_object_set_new(ev, "alliance", json_string("quality"));
			shell_push(t, NULL, ev, NULL);
		}
		json_decref(live);
	}
	return technology_due;
}

void shell_quality_technology_sent(ap_visit *av, gint64 now) {
	av->qpulse_after_us = now + (gint64)ap->settings.qpulse_window_s * G_USEC_PER_SEC;
}

void shell_quality_finish(ap_visit *av, gint64 now, gint64 now_real) {
	quality_sum bucket[Q_LEGS][Q_MEDIA];
	if(!quality_roll(&av->q, now, TRUE, bucket))
		memset(bucket, 0, sizeof(bucket));
	store_bucket(av, bucket, now_real, TRUE);
	quality_close_all(&av->q, now);
	store_incidents(av, now_real - now);
}

char *shell_quality_context(ap_visit *av, gboolean whole_visit) {
	return quality_context_json(&av->q, whole_visit ? 0 : ap->settings.quality_context_s);
}

/* --- events from Janus ------------------------------------------------------------ */
static quality_leg leg_of(visit_role role, gboolean up) {
	if(role == VISIT_ROLE_CLIENT)
		return up ? Q_CLIENT_UP : Q_CLIENT_DOWN;
	return up ? Q_THERAPIST_UP : Q_THERAPIST_DOWN;
}

void shell_quality_reconnect(ap_session *s) {
	gint64 since = s->hung_up_at;
	if(since == 0)
		return;
	s->hung_up_at = 0;
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&ap->visits_mutex);
	if(s->visit && (s->role == VISIT_ROLE_CLIENT || s->role == VISIT_ROLE_THERAPIST))
		quality_note(&s->visit->q, leg_of(s->role, TRUE), -1, QI_RECONNECT, since, now);
	janus_mutex_unlock(&ap->visits_mutex);
}

void shell_quality_slow_link(ap_session *s, gboolean video, gboolean uplink) {
	gint64 now = janus_get_monotonic_time();
	janus_mutex_lock(&ap->visits_mutex);
	/* Janus's "uplink" is Janus -> peer: the participant's down leg */
	if(s->visit && (s->role == VISIT_ROLE_CLIENT || s->role == VISIT_ROLE_THERAPIST))
		quality_note(&s->visit->q, leg_of(s->role, !uplink), video ? 1 : 0, QI_SLOW_LINK, now, now);
	janus_mutex_unlock(&ap->visits_mutex);
}

/* --- is the client's picture stable? (pulses wait out a frozen one) ------ */
/* A gap shorter than this is not the picture freezing as a person sees it
 * (a synthetic or starved sender stutters by a frame or two); at 30 fps
 * the W3C rule alone calls 184 ms a freeze, at 15 fps 217 ms. */
#define FROZEN_MIN_US 500000

static gboolean video_frozen(ap_session *s, gint64 now) {
	if(!g_atomic_int_get(&s->send_video))
		return FALSE;                      /* camera off by choice: nothing freezes */
	g_mutex_lock(&s->up_mutex[1]);
	gint64 frozen = meter_up_frozen_for(&s->up[1], now);
	g_mutex_unlock(&s->up_mutex[1]);
	return frozen >= FROZEN_MIN_US;
}

gint64 shell_quality_client_video(ap_visit *av, gint64 now) {
	gboolean unstable = FALSE;
	if(av->v.modality == VISIT_MODALITY_VIDEO && av->v.state == VISIT_LIVE && av->client) {
		ap_session *c = av->client, *t = av->therapist;
		/* the client's PeerConnection went down and is not back yet */
		if(c->hung_up_at != 0)
			unstable = TRUE;
		/* what the client sees is the therapist's video, relayed: frozen,
		 * stalled, or the therapist reconnecting */
		if(t && (t->hung_up_at != 0 || video_frozen(t, now)))
			unstable = TRUE;
	}
	if(unstable)
		av->video_stable_since = PULSE_MEDIA_UNSTABLE;
	else if(av->video_stable_since == PULSE_MEDIA_UNSTABLE)
		av->video_stable_since = now;
	return av->video_stable_since;
}

/* How long since the last RTP packet of either medium, or -1 if s never
 * sent any (nothing to miss yet). */
gint64 shell_quality_silent_for(ap_session *s, gint64 now) {
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
