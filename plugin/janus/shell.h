/*
 * shell.h — the Janus side of janus.plugin.alliance (internal header).
 *
 * The plugin is split into pure layers (plugin/core, plugin/store,
 * plugin/report) and this thin shell, which turns Janus callbacks into
 * calls on them and their decisions into push_event / relay_* / store
 * writes. Its files, each using only the ones listed before it:
 *
 *   shell_ctx.c         the plugin context (ap_plugin), sessions table,
 *                       events out (push, notify), visit references, the
 *                       wall clock, failpoints
 *   shell_config.c      janus.plugin.alliance.jcfg -> ap_settings
 *   shell_limits.c      the Janus API's rate limits (497)
 *   shell_auth.c        credentials: keys, and Janus signed tokens in their
 *                       place
 *   shell_observe.c     observer media: the receive-only answer, who watches
 *                       whom, the fan-out to observers, their keyframe
 *                       requests
 *   shell_media.c       SDP answers, links, the RTP relay, data-channel out
 *   shell_quality.c     per-leg metering on the hot path, 1 s windows,
 *                       samples, quality contexts, incidents, live quality
 *   shell_pulses.c      pulse delivery, the `pulse` request, answers, acks,
 *                       alerts
 *   shell_visits.c      the life of a visit: seats (and takeover), end,
 *                       close, idle and age limits, shutdown, start-up
 *                       repair — one function closes a visit
 *   shell_requests.c    the message thread: join, admit, configure, end, …
 *   shell_reports.c     report and forget, on a thread of their own
 *   shell_timer.c       the 200 ms timer: schedules, windows, media that
 *                       stops, lifecycle, retention, store health
 *   shell_events.c      Janus's media callbacks: setup, RTP/RTCP/data in,
 *                       hang-up
 *   shell_health.c      the Admin API: health, list_visits, query_session
 *   alliance_plugin.c   the descriptor, init/destroy, handles,
 *                       handle_message, the Admin API
 *
 * The context. Everything the shell shares lives in one ap_plugin, owned
 * by alliance_plugin.c and handed to every module's *_init() before
 * anything runs; no module reaches into another's variables.
 *
 * Threads and locks. handle_message runs on Janus's request pool; requests
 * that change visits go through one message thread (shell_requests.c).
 * RTP/RTCP callbacks run on each handle's own loop thread, incoming_data on
 * any thread. The control plane (visits, slots, session->visit/role) is
 * guarded by one lock, visits_mutex: it changes a few times per visit, so
 * one lock keeps it simple and race-free. Lock order, never reversed:
 *     sessions_mutex -> visits_mutex -> ap_session.mutex
 * The hot path never takes visits_mutex: it takes only its own
 * ap_session.mutex, briefly, to pin the peer it relays to
 * (shell_peer_get()). close_pc is never called with a lock held.
 *
 * Lifetimes. ap_session and ap_visit are janus_refcount'ed. A joined
 * session holds a reference on its visit; a visit holds references on the
 * sessions in its therapist/client slots and observer list; a linked pair
 * (both present and the visit live) hold references on each other through
 * ->peer.
 *
 * Clocks. Every timer and every time kept in the pure modules (visit,
 * pulse, quality) is on the monotonic clock, so a wall-clock jump (NTP, a
 * suspended VM) neither expires a pulse early nor keeps a visit open;
 * rows in the store get wall-clock time, converted by shell_wall_us().
 */
#ifndef ALLIANCE_SHELL_H
#define ALLIANCE_SHELL_H

#include <glib.h>
#include <jansson.h>

#include <plugins/plugin.h>
#include <mutex.h>
#include <refcount.h>
#include <rtp.h>
#include <sdp-utils.h>

#include "auth.h"
#include "visit.h"
#include "proto.h"
#include "pulse.h"
#include "instrument.h"
#include "store.h"
#include "dcmsg.h"
#include "meter.h"
#include "quality.h"
#include "ratelimit.h"

#define ALLIANCE_VERSION 1
#define ALLIANCE_VERSION_STRING "0.1.0"
#define ALLIANCE_NAME "Alliance Pulse"
#define ALLIANCE_DESCRIPTION "Online therapy visits with alliance pulse checks and per-leg connection quality"
#define ALLIANCE_AUTHOR "Alliance Pulse"
#define ALLIANCE_PACKAGE "janus.plugin.alliance"
#define ALLIANCE_DC_LABEL "alliance"
#define OBS_STREAMS 4          /* an observer's m-lines: therapist audio, video, client audio, video */

typedef struct ap_settings {
	auth_keyring *keys;
	char *db_path;                     /* SQLite, unless db_url is set */
	char *db_url;                      /* PostgreSQL (never logged: it may hold a password) */
	char *instance_id;                 /* this instance, recorded with its visits */
	char *public_servers_json;         /* JSON array of this instance's public Janus URLs */
	char *instruments_dir;
	int end_grace_s;
	int idle_close_s;                  /* 0 = never */
	int max_visit_s;                   /* 0 = never */
	int max_visits;
	gboolean events;
	int pulse_expires_s;               /* in-session pulses */
	int quality_sample_s;              /* stored samples every … (multiple of 5) */
	int quality_context_s;             /* a pulse's quality context */
	int quality_live_s;                /* live quality to the therapist every … */
	/* the quality-triggered technology pulse (off when both are 0) */
	int qpulse_freezes;                /* >= this many freezes ... */
	int qpulse_frozen_s;               /* ... or >= this many seconds frozen ... */
	int qpulse_window_s;               /* ... within this window */
	/* scheduled pulses wait out a frozen picture (pulse.h) */
	int pulse_hold_stable_s;           /* stable video needed before they go out (0 = never hold) */
	int pulse_hold_max_s;              /* ... held at most this long, then skipped */
	int offsets_s[PULSE_OFFSETS_MAX];  /* default in-session schedule */
	int n_offsets;
	int retention_days;                /* erase visits older than this; 0 = keep */
	double ni_margin;                  /* compare: non-inferiority margin (total points) */
} ap_settings;

struct ap_visit;

typedef struct ap_session {
	janus_plugin_session *handle;
	struct ap_visit *visit;      /* joined visit (ref held), under visits_mutex */
	char closed_visit[VISIT_ID_MAX + 1];  /* the visit that closed under it, if any */
	visit_role role;
	int supervisor;              /* observers: which configured supervisor (-1 none) */
	/* the Janus API's rate limits (shell_limits.c, under mutex) */
	ratelimit req_rl;            /* requests */
	ratelimit cred_rl;           /* refused keys / invites */
	gint64 cred_blocked_until;   /* monotonic; 497 until then */
	/* negotiated media (set by configure on the message thread) */
	volatile gint negotiated;    /* an answer was sent at least once */
	int audio_pt, video_pt;      /* our payload types in this PC, -1 if none */
	gboolean has_data;
	volatile gint send_audio, send_video;  /* relay this participant's media? */
	volatile gint media_up;      /* setup_media seen, hangup_media not yet */
	volatile gint dataready;
	volatile gint hello_sent;
	/* counters (approximate when read from another thread) */
	guint64 rtp_in[2], rtp_relayed[2], rtcp_in, pli_in, remb_in, dc_in, dc_err;
	struct ap_session *peer;     /* linked participant, under mutex */
	/* continuity of what this session RECEIVES (audio, video): a re-joining
	 * peer starts new sequence numbers and timestamps, and the core keeps
	 * only our SSRC, so the relay rewrites them to continue smoothly.
	 * Written by the sending peer's loop thread only. */
	janus_rtp_switching_context rx_ctx[2];
	/* observer media (shell_observe.c). An observer's PeerConnection has
	 * OBS_STREAMS m-lines, [seat * 2 + medium]: seat 0 the therapist, 1 the
	 * client; medium 0 audio, 1 video. */
	volatile gint observer_media;       /* an observer's PC: its own RTP/RTCP goes nowhere */
	int obs_pt[OBS_STREAMS];            /* our payload type on that m-line, -1 none (message thread) */
	int obs_mindex[OBS_STREAMS];        /* its m-line index, -1 none (message thread) */
	janus_rtp_switching_context obs_ctx[OBS_STREAMS];  /* written by the watched seat's loop thread */
	guint64 obs_relayed[OBS_STREAMS];   /* packets sent to this observer */
	struct ap_session *watched[2];      /* observers: who they watch, per seat (refs), under mutex */
	gint64 obs_pli_at[2];               /* observers: their last PLI passed on, per seat, under mutex */
	struct ap_session *watchers[VISIT_OBSERVERS_MAX];  /* participants: who watches them (refs), under mutex */
	volatile gint n_watchers;           /* participants: how many of watchers[] are set (hot path: one read) */
	int watch_seat;                     /* participants: their seat for the watchers' m-lines, under mutex */
	/* metering (shell_quality.c): [0] audio, [1] video. Each meter has its
	 * own lock, taken by this handle's RTP/RTCP callbacks and once a second
	 * by the timer; no lock is shared between legs. */
	GMutex up_mutex[2], down_mutex[2];
	meter_up up[2];
	meter_down down[2];
	ratelimit stats_rl;          /* `stats` messages, under up_mutex[0] */
	gint64 hung_up_at;           /* monotonic, for reconnect incidents */
	volatile gint hangingup;
	volatile gint destroyed;
	janus_mutex mutex;
	janus_refcount ref;
} ap_session;

typedef struct ap_visit {
	visit v;                     /* pure state, under visits_mutex */
	ap_session *therapist;       /* slots (refs held), under visits_mutex */
	ap_session *client;
	GList *observers;            /* ap_session* (refs held), under visits_mutex */
	pulse_sched ps;              /* under visits_mutex */
	GPtrArray *partial;          /* instrument_answer* per pulse index (or NULL): answers so far */
	GPtrArray *pulse_quality;    /* char* (malloc'ed JSON) per pulse index: its quality context */
	char lang[2][PROTO_LANG_MAX + 1];        /* [0] therapist, [1] client */
	quality_visit q;                          /* under visits_mutex */
	/* media that stopped, per seat ([0] therapist, [1] client): announced
	 * to the other participant, pulses held until it flows again */
	gboolean media_stopped[2];
	gint64 stopped_since[2];                  /* monotonic */
	quality_sum sample_acc[Q_LEGS][Q_MEDIA];  /* buckets not yet stored */
	int sample_buckets;
	gint64 next_window_us, next_live_us, next_sample_us;   /* monotonic */
	gint64 qpulse_after_us;                   /* no quality pulse before (monotonic) */
	/* the client's incoming video: stable since (monotonic), 0 all along,
	 * PULSE_MEDIA_UNSTABLE while frozen, stalled or reconnecting */
	gint64 video_stable_since;
	janus_refcount ref;
} ap_visit;

/* The plugin's shared state: one instance, owned by alliance_plugin.c. */
typedef struct ap_plugin {
	janus_plugin *plugin;              /* our descriptor, for push_event */
	janus_callbacks *gateway;
	ap_settings settings;
	volatile gint initialized, stopping;
	GHashTable *sessions;              /* janus_plugin_session* -> ap_session */
	janus_mutex sessions_mutex;
	GHashTable *visits;                /* visit_id -> ap_visit (ref held) */
	GHashTable *visits_by_invite;      /* invite digest bytes -> ap_visit (no ref) */
	janus_mutex visits_mutex;
	instrument_set *instruments;       /* loaded at init, read-only after */
	store *db;
} ap_plugin;

/* shell_ctx.c */
void shell_ctx_init(ap_plugin *ap);
ap_session *shell_session_lookup(janus_plugin_session *handle); /* ref++ or NULL */
void shell_notify(janus_plugin_session *handle, const char *event, json_t *fields);
int shell_push(ap_session *s, const char *transaction, json_t *msg, json_t *jsep);
void shell_push_event(ap_session *target, json_t *event);   /* unless destroyed; takes event */
json_t *shell_error_json(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Wall-clock time (for rows) of a monotonic instant; the clocks' offset
 * is refreshed by the timer (shell_wall_refresh) every tick. */
gint64 shell_wall_us(gint64 mono_us);
void shell_wall_refresh(void);
ap_visit *shell_visit_new(const char *id, const char *therapist_code, const char *client_code,
	visit_modality modality, const auth_digest *invite, const pulse_config *pc, gint64 now_mono);
void shell_visit_unref(ap_visit *av);
/* Fault injection for tests (failpoints): the environment variable
 * ALLIANCE_FAILPOINTS="name=ms[,name=ms...]", read once at init, makes
 * shell_failpoint(name) sleep that long, so that a test can open a race
 * window wide enough to hit every time. Unset (production): a no-op that
 * costs one pointer test. Names: join_before_lock (the message thread,
 * between taking a `join` and locking the visits). */
void shell_failpoints_load(void);
void shell_failpoints_free(void);
void shell_failpoint(const char *name);

/* shell_config.c: read the jcfg into *out (defaults for what is missing);
 * -1 with one sentence in err (for one log line) on any problem. */
int shell_config_load(const char *config_path, ap_settings *out, char *err, size_t errlen);
void shell_config_free(ap_settings *s);

/* shell_limits.c */
void shell_limits_init(ap_plugin *ap);
void shell_limits_session(ap_session *s);            /* a new handle's buckets */
/* The 497 answer for a request over a limit, or NULL to go on. Checked
 * before anything else looks at the request, so it changes nothing. */
json_t *shell_limits_check(ap_session *s, const json_t *message);
/* A refused credential on this handle: counts towards the 497 limits. */
void shell_credential_refused(ap_session *s);

/* shell_auth.c: who a request's credentials name. Keys, or (when the core
 * and janus.jcfg agree on signed tokens, see the file's comment) a
 * therapist_token / supervisor_token in their place. A refusal is a 475
 * in *refusal, already counted by shell_credential_refused(). */
void shell_auth_init(ap_plugin *ap);
void shell_auth_load(const char *config_path);   /* at init, once ap->gateway is set */
void shell_auth_free(void);
gboolean shell_auth_tokens_on(void);
/* With signed tokens on: the client's Janus API token for a visit created
 * or re-invited now (realm janus, the descriptor janus.plugin.alliance
 * only: it opens a session and attaches here, and grants no role; the
 * invite still decides which visit), good until the visit can be over —
 * max_visit_s (a week where that is 0) + end_grace_s + an hour from now.
 * Its length, or -1 when tokens are off. Never logged. */
int shell_auth_client_token(char *out, size_t outlen);
/* The therapist code (into code) or NULL. */
const char *shell_auth_therapist(ap_session *s, const proto_request *req,
	char code[AUTH_CODE_MAX + 1], json_t **refusal);
/* Which observer seat the supervisor holds (>= 0), or -1. */
int shell_auth_supervisor(ap_session *s, const proto_request *req, json_t **refusal);

/* shell_health.c: the Admin API (message_plugin `health`, `list_visits`)
 * and query_session's visit part */
void shell_health_init(ap_plugin *ap);
json_t *shell_health_json(void);
json_t *shell_health_admin(json_t *message);        /* a new reference */
void shell_health_session(ap_session *s, json_t *info);

/* shell_observe.c: observer media (live supervision). Observers are
 * receive-only: their offer is answered with OBS_STREAMS sendonly m-lines
 * (the first audio and video m-lines carry the therapist, the second ones
 * the client); each participant's packets are fanned out to the observers
 * watching it; an observer's own RTP and RTCP are dropped, but its
 * keyframe requests reach the seat it watches (at most one per
 * OBS_PLI_MIN_US per seat). */
#define OBS_PLI_MIN_US (500 * 1000)
void shell_observe_init(ap_plugin *ap);
json_t *shell_observe_answer(ap_session *o, const char *offer_sdp, proto_error *err);
/* Who watches whom, from the visit's state (under visits_mutex; called by
 * shell_sync_links / shell_unlink, so every seat change runs it). */
void shell_observe_sync_locked(ap_visit *av);
/* Hot path: fan a participant's packet out to its watchers (only called
 * when n_watchers > 0); the header is restored before it returns. */
void shell_observe_relay(ap_session *s, janus_plugin_rtp *packet, int vi);
void shell_observe_rtcp(ap_session *o, janus_plugin_rtcp *packet);   /* an observer's RTCP */
void shell_observe_media_up(ap_session *s);   /* a PC came up: keyframes for observers */
void shell_observe_reset(ap_session *o);      /* an observer's PC is gone */
/* s leaves its seat (vacate): it watches nobody and nobody watches it
 * (the sync after it only sees who is still seated). Under visits_mutex. */
void shell_observe_forget(ap_session *s);
/* observer_joined / observer_left to the participants seated (under visits_mutex) */
void shell_observe_announce_locked(ap_visit *av, gboolean joined, const char *reason);

/* shell_media.c */
void shell_media_init(ap_plugin *ap);
ap_session *shell_peer_get(ap_session *s);    /* ref++ or NULL */
void shell_sync_links(ap_visit *av);          /* under visits_mutex */
void shell_unlink(ap_visit *av);              /* under visits_mutex */
json_t *shell_sdp_answer(ap_session *s, const char *offer_sdp, proto_error *err);
/* The two ends of every answer: parse the offer and start the answer
 * (NULL, err set, on failure), and write the answer (both freed; NULL,
 * err set, on failure). */
janus_sdp *shell_sdp_offer(const char *offer_sdp, janus_sdp **answer, proto_error *err);
char *shell_sdp_finish(janus_sdp *offer, janus_sdp *answer, proto_error *err);
/* The negotiation's outcome published for the hot path (the payload types
 * relayed to this session, -1: none; whether it has a data channel; whether
 * it is an observer's), and the written answer (freed) as a JSEP. */
json_t *shell_sdp_publish(ap_session *s, int audio_pt, int video_pt, gboolean data,
	gboolean observer, char *sdp);
gboolean shell_refuse_offer(ap_session *s, const json_t *jsep, json_t *error);
void shell_media_relay(ap_session *s, janus_plugin_rtp *packet, int vi);  /* hot path */
/* Relay one packet to `to` as payload type pt on its m-line mindex (-1:
 * the first of the kind), continuing ctx's numbering; the packet is as it
 * was when this returns. */
void shell_relay_to(janus_plugin_session *to, janus_plugin_rtp *packet,
	janus_rtp_switching_context *ctx, int vi, int pt, int mindex);
gboolean shell_send_dc(ap_session *s, const char *text);   /* FALSE: not sent */
gboolean shell_media_dc_allowed(ap_session *s);           /* the data channel's rate limit */
void shell_media_reset(ap_session *s);
void shell_media_forget(ap_session *s);     /* drop per-session media state */

/* shell_quality.c */
void shell_quality_init(ap_plugin *ap);
void shell_quality_session_init(ap_session *s);
void shell_quality_session_clear(ap_session *s);
void shell_quality_rtp(ap_session *s, janus_plugin_rtp *packet);
void shell_quality_rtcp(ap_session *s, janus_plugin_rtcp *packet);
void shell_quality_stats(ap_session *s, const dcmsg *msg);
/* Once per timer tick (under visits_mutex): windows, samples, incidents,
 * live quality. TRUE when the quality rule asks for the technology item. */
gboolean shell_quality_tick(ap_visit *av, gint64 now_mono, gint64 now_real);
void shell_quality_technology_sent(ap_visit *av, gint64 now_mono);      /* ...and it went out */
/* The client's incoming video (the therapist's, relayed) at now: stable
 * since when (0: all along), or PULSE_MEDIA_UNSTABLE while it is frozen
 * (>= 0.5 s, the W3C rule), stalled, or either side is reconnecting.
 * Timer, under visits_mutex. */
gint64 shell_quality_client_video(ap_visit *av, gint64 now_mono);
char *shell_quality_context(ap_visit *av, gboolean whole_visit);          /* under visits_mutex */
json_t *shell_quality_live(ap_visit *av, int seconds);                    /* under visits_mutex */
gint64 shell_quality_silent_for(ap_session *s, gint64 now_mono);          /* -1: never sent */
void shell_quality_reconnect(ap_session *s);
void shell_quality_slow_link(ap_session *s, gboolean video, gboolean uplink);
void shell_quality_finish(ap_visit *av, gint64 now_mono, gint64 now_real); /* visit closes */

/* shell_pulses.c (the *_locked and on_join/end/pending under visits_mutex;
 * every `now` here is monotonic) */
void shell_pulses_init(ap_plugin *ap);
/* The scheduler's step for one visit (expiries, due pulses). */
void shell_pulses_tick_locked(ap_visit *av, gint64 now);
/* Deliver role s's open pulses to s (all of them after a (re-)join; only
 * the ones never delivered when held pulses are released). */
void shell_pulses_on_join(ap_visit *av, ap_session *s, gint64 now, gboolean only_undelivered);
void shell_pulses_end(ap_visit *av, gint64 now, gboolean with_end_pulses,
	json_t *pulse_ids); /* creates; on_join delivers */
void shell_pulses_expire_all(ap_visit *av, gint64 now);   /* the visit closes */
json_t *shell_pulses_pending(ap_visit *av, visit_role viewer, gint64 now);
/* Send a server message (data channel if up, else a Janus event). */
void shell_send_to(ap_session *s, const char *type, json_t *fields);
json_t *shell_pulse_request(ap_session *s, const proto_request *req);
gboolean shell_pulses_quality_trigger(ap_visit *av, gint64 now);
json_t *shell_answer_request(ap_session *s, const proto_request *req);
void shell_answer_dc(ap_session *s, const dcmsg *msg);

/* shell_visits.c (the *_locked ones under visits_mutex) */
void shell_visits_init(ap_plugin *ap);
/* Seat s in av as role (a takeover if the seat is held: the old holder
 * is unseated and returned with a reference, for the caller to tell it
 * `replaced` and hang up its PeerConnection). */
ap_session *shell_seat_locked(ap_visit *av, ap_session *s, visit_role role);
void shell_session_detach(ap_session *s, gboolean close_media);
/* Remove every observer (consent withdrawn): each gets `removed` and is
 * returned in *out (refs held) for the caller to hang up. */
GList *shell_observers_remove_locked(ap_visit *av);
/* End the visit (end pulses for whoever is there if with_end_pulses;
 * their ids appended to pulse_ids if not NULL). */
visit_result shell_visit_end_locked(ap_visit *av, visit_end_reason reason, gint64 now_mono,
	gboolean with_end_pulses, json_t *pulse_ids);
/* The one function that closes a visit: expires what is open, flushes
 * quality, tells whoever is seated `closed`, stores it, forgets it. */
void shell_visit_close_locked(ap_visit *av, visit_end_reason reason, gint64 now_mono);
/* The timer's per-visit lifecycle step: TRUE if the visit must close now
 * (grace over, or idle). May end it (max duration). */
gboolean shell_visit_lifecycle_locked(ap_visit *av, gint64 now_mono);
void shell_visits_shutdown(void);           /* close all (plugin destroy) */
int shell_visits_repair(char *err, size_t errlen);   /* init: close what a crash left open */
void shell_instance_tick(gint64 now_real, gboolean starting);   /* init, then the timer */
json_t *shell_participants_json(ap_visit *av);

/* shell_requests.c */
void shell_requests_init(ap_plugin *ap);
int shell_requests_start(void);
void shell_requests_stop(void);
void shell_requests_enqueue(ap_session *s, char *transaction, json_t *message, json_t *jsep);
json_t *shell_request_sync(ap_session *s, const proto_request *req);
json_t *shell_visit_error(visit_result r);

/* shell_reports.c: `report` and `forget`, answered asynchronously from a
 * thread of their own (the store's analytics lane does the reading) */
void shell_reports_init(ap_plugin *ap);
int shell_reports_start(void);
void shell_reports_stop(void);
void shell_reports_enqueue(ap_session *s, char *transaction, json_t *message);
void shell_retention_tick(gint64 now_real);   /* timer thread (and init): daily retention */

/* shell_timer.c */
void shell_timer_init(ap_plugin *ap);
int shell_timer_start(void);
void shell_timer_stop(void);

/* shell_events.c: Janus's media and data callbacks */
void shell_events_init(ap_plugin *ap);
void alliance_setup_media(janus_plugin_session *handle);
void alliance_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet);
void alliance_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet);
void alliance_incoming_data(janus_plugin_session *handle, janus_plugin_data *packet);
void alliance_data_ready(janus_plugin_session *handle);
void alliance_slow_link(janus_plugin_session *handle, int mindex, gboolean video, gboolean uplink);
void alliance_hangup_media(janus_plugin_session *handle);

#endif
