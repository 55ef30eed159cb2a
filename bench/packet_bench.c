/* packet_bench — the plugin's per-packet cost (relay bookkeeping + quality
 * meter) as a ratio to the cost of one libsrtp2 srtp_unprotect() of the
 * same packet, both measured in the same run (issue 4; target ≤ 5 %).
 * Measured, not asserted: it prints numbers and never fails on them.
 *
 *   make bench && bench/packet_bench [packets_per_round [rounds]]
 *   (defaults 204800 and 9; bench/run.sh builds and runs everything)
 *
 * (a) baseline, the work the Janus core already does for every incoming
 *     packet: srtp_unprotect() with the WebRTC profile Janus sets up for
 *     SRTP_AES128_CM_SHA1_80 (srtp_crypto_policy_set_rtp_default, receiver
 *     policy ssrc_any_inbound, window 128, no repeated tx), on packets
 *     protected beforehand, untimed, by a sender session.
 * (b) ours, what alliance_incoming_rtp() does for the same packet
 *     (plugin/janus/shell_media.c relay() + plugin/janus/shell_quality.c
 *     shell_quality_rtp()), reproduced statement for statement on a
 *     stand-in session: the live-session checks, the counters, the PT
 *     check, shell_peer_get() (session GMutex lock, refcount increase,
 *     unlock), the peer checks, save / rewrite / restore of PT, SSRC,
 *     timestamp, sequence number and mindex, the indirect call of
 *     gateway->relay_rtp (to an empty function here: the copy into the
 *     peer's queue is the core's work), the refcount decrease; then the
 *     monotonic clock read (janus_get_monotonic_time is clock_gettime),
 *     the leg's GMutex lock, meter_up_rtp() (plugin/core/meter.c, the real
 *     one, in its own translation unit as in the plugin) and unlock. The
 *     packet reaches it through a function pointer, as from the core.
 *     EXCLUDED: janus_rtp_header_update() (Janus core code, only in the
 *     janus binary; the same O(1) sequence/timestamp helper the stock
 *     VideoCall and VideoRoom plugins call per packet) and the work inside
 *     gateway->relay_rtp.
 * (m) for the breakdown only: the metering part of (b) alone (clock,
 *     lock, meter_up_rtp, unlock) on its own meter; (b) − (m) is roughly
 *     the relay bookkeeping.
 *
 * Each round uses fresh SRTP sessions and fresh stand-in sessions and
 * meters, per medium: audio (Opus, 120-byte payload, 20 ms) and video
 * (VP8, 1100-byte payload, 30 fps of 5 packets), both with the one-byte
 * header extensions a browser sends. Packets go in batches of 1024: build
 * and protect the batch (untimed), time (a) over it, then (b), then (m),
 * on the same packets, just unprotected and in cache as in the server —
 * so (a) and (b) alternate every batch and machine drift hits both. One
 * warm-up round is discarded. Reported per medium: ns/packet of (a), (b),
 * (m) and the ratio (b)/(a) per round, as median [min, max] over rounds.
 *
 * Not built by `make` or `make check`; the bench target builds it with the
 * project's CFLAGS (default -g -O2), which the output states.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <srtp2/srtp.h>

#include <rtp.h>            /* janus_rtp_header, janus_plugin_rtp, janus_plugin_session: types only */

#include "meter.h"

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "(unknown)"
#endif

#define BATCH 1024
#define TAG_LEN 10                  /* HMAC-SHA1-80 */
#define MAX_PKT 1280

/* --- the stand-in for the plugin's state (plugin/janus/shell.h ap_session) ------ */

/* Janus' lock/refcount macros branch on these (defined in the janus binary) */
static volatile int lock_debug_flag = 0, refcount_debug_flag = 0;
static volatile gint stopping = 0, initialized = 1;

typedef struct bsess {
	GMutex mutex;
	struct bsess *peer;
	janus_plugin_session *handle;
	int audio_pt, video_pt;
	volatile gint send_audio, send_video, media_up, destroyed;
	guint64 rtp_in[2], rtp_relayed[2];
	GMutex up_mutex[2];
	meter_up up[2];
	struct { volatile gint count; } ref;
} bsess;

static void debug_path(void) { abort(); }    /* the plugin's cold debug branch */

#define LOCK(m) do { if(!lock_debug_flag) g_mutex_lock(m); else debug_path(); } while(0)
#define UNLOCK(m) do { if(!lock_debug_flag) g_mutex_unlock(m); else debug_path(); } while(0)
#define REF_INC(r) do { if(!refcount_debug_flag) g_atomic_int_inc(&(r)->count); else debug_path(); } while(0)
#define REF_DEC(r) do { if(!refcount_debug_flag) { if(g_atomic_int_dec_and_test(&(r)->count)) debug_path(); } \
	else debug_path(); } while(0)

/* gateway->relay_rtp: the core's copy into the peer's queue is not ours;
 * the call is. An empty function behind a pointer the compiler cannot see
 * through, so the header rewrite really happens before it. */
static __attribute__((noinline)) void core_relay_rtp(janus_plugin_session *h, janus_plugin_rtp *p) {
	__asm__ volatile("" : : "r"(h), "r"(p) : "memory");
}
static struct { void (*volatile relay_rtp)(janus_plugin_session *, janus_plugin_rtp *); } core = { core_relay_rtp };

static inline gint64 monotonic_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* shell_media.c live_session() */
static inline bsess *live_session(janus_plugin_session *handle) {
	if(handle == NULL || g_atomic_int_get(&handle->stopped) ||
			g_atomic_int_get(&stopping) || !g_atomic_int_get(&initialized))
		return NULL;
	bsess *s = handle->plugin_handle;
	if(s == NULL || g_atomic_int_get(&s->destroyed))
		return NULL;
	return s;
}

/* shell_media.c shell_peer_get() */
static __attribute__((noinline)) bsess *peer_get(bsess *s) {
	LOCK(&s->mutex);
	bsess *p = s->peer;
	if(p)
		REF_INC(&p->ref);
	UNLOCK(&s->mutex);
	return p;
}

/* shell_media.c relay(), janus_rtp_header_update() left out */
static inline void relay(bsess *s, janus_plugin_rtp *packet, int vi) {
	if(!g_atomic_int_get(vi ? &s->send_video : &s->send_audio))
		return;
	janus_rtp_header *h = (janus_rtp_header *)packet->buffer;
	int own_pt = vi ? s->video_pt : s->audio_pt;
	if((int)h->type != own_pt)
		return;
	bsess *p = peer_get(s);
	if(p == NULL)
		return;
	int pt = vi ? p->video_pt : p->audio_pt;
	if(pt >= 0 && g_atomic_int_get(&p->media_up) && !g_atomic_int_get(&p->destroyed)) {
		int mindex = packet->mindex;
		uint32_t ssrc = h->ssrc, ts = h->timestamp;
		uint16_t seq = h->seq_number;
		/* janus_rtp_header_update(h, &p->rx_ctx[vi], vi, 0): EXCLUDED (core) */
		h->type = (uint16_t)pt;
		packet->mindex = -1;
		core.relay_rtp(p->handle, packet);
		h->type = (uint16_t)own_pt;
		h->ssrc = ssrc;
		h->timestamp = ts;
		h->seq_number = seq;
		packet->mindex = mindex;
		s->rtp_relayed[vi]++;
	}
	REF_DEC(&p->ref);
}

/* shell_quality.c shell_quality_rtp() */
static __attribute__((noinline)) void quality_rtp(bsess *s, janus_plugin_rtp *packet) {
	int m = packet->video ? 1 : 0;
	gint64 now = monotonic_us();
	g_mutex_lock(&s->up_mutex[m]);
	meter_up_rtp(&s->up[m], (const uint8_t *)packet->buffer, packet->length, now);
	g_mutex_unlock(&s->up_mutex[m]);
}

/* shell_media.c alliance_incoming_rtp() */
static void incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
	bsess *s = live_session(handle);
	if(s == NULL || packet->buffer == NULL || packet->length < 12)
		return;
	int vi = packet->video ? 1 : 0;
	s->rtp_in[vi]++;
	relay(s, packet, vi);
	quality_rtp(s, packet);
}
/* the core calls the plugin through its table */
static void (*volatile plugin_incoming_rtp)(janus_plugin_session *, janus_plugin_rtp *) = incoming_rtp;

/* --- packets ----------------------------------------------------------------- */

typedef struct medium {
	const char *name;
	int video;
	int pt;
	uint32_t ssrc, clock_rate;
	int ext_words;              /* one-byte header extension, 32-bit words */
	int payload;
	int stride;
	/* state of the stream across batches of a round */
	uint16_t seq;
	uint32_t ts;
	int in_frame;
} medium;

static uint8_t payload_bytes[MAX_PKT];

/* header + one-byte extensions (audio level / abs-send-time / transport-cc
 * for audio; abs-send-time / transport-cc for video) + payload; returns
 * the plaintext length */
static int build(medium *md, uint8_t *b) {
	int marker = 0;
	if(md->video) {
		if(md->in_frame == 0)
			md->ts += 3000;            /* 30 fps at 90 kHz */
		marker = (md->in_frame == 4);  /* 5 packets a frame */
		md->in_frame = (md->in_frame + 1) % 5;
	} else {
		md->ts += 960;                 /* 20 ms at 48 kHz */
	}
	uint16_t seq = md->seq++;
	b[0] = 0x90;
	b[1] = (uint8_t)((marker ? 0x80 : 0) | md->pt);
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = (uint8_t)(md->ts >> 24);
	b[5] = (uint8_t)(md->ts >> 16);
	b[6] = (uint8_t)(md->ts >> 8);
	b[7] = (uint8_t)md->ts;
	b[8] = (uint8_t)(md->ssrc >> 24);
	b[9] = (uint8_t)(md->ssrc >> 16);
	b[10] = (uint8_t)(md->ssrc >> 8);
	b[11] = (uint8_t)md->ssrc;
	b[12] = 0xBE;
	b[13] = 0xDE;
	b[14] = 0;
	b[15] = (uint8_t)md->ext_words;
	uint8_t *e = b + 16;
	memset(e, 0, (size_t)md->ext_words * 4);
	int k = 0;
	if(!md->video) {
		e[k++] = 0x10;                 /* id 1, 1 byte: audio level */
		e[k++] = 0x28;
	}
	e[k++] = 0x22;                     /* id 2, 3 bytes: abs-send-time */
	e[k++] = (uint8_t)(seq * 7);
	e[k++] = (uint8_t)(seq * 3);
	e[k++] = (uint8_t)seq;
	e[k++] = 0x31;                     /* id 3, 2 bytes: transport-cc */
	e[k++] = (uint8_t)(seq >> 8);
	e[k++] = (uint8_t)seq;
	int hdr = 16 + md->ext_words * 4;
	memcpy(b + hdr, payload_bytes, (size_t)md->payload);
	if(md->video)                      /* VP8 payload descriptor: S bit on a frame's first packet */
		b[hdr] = (uint8_t)(md->in_frame == 1 ? 0x10 : 0x00);
	return hdr + md->payload;
}

/* --- timing ------------------------------------------------------------------ */

static inline double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static srtp_t srtp_session(const uint8_t *key, int inbound) {
	srtp_policy_t pol;
	memset(&pol, 0, sizeof(pol));
	srtp_crypto_policy_set_rtp_default(&pol.rtp);      /* AES_CM_128_HMAC_SHA1_80 */
	srtp_crypto_policy_set_rtcp_default(&pol.rtcp);
	pol.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
	pol.key = (unsigned char *)key;
	pol.window_size = 128;
	pol.allow_repeat_tx = 0;
	pol.next = NULL;
	srtp_t s = NULL;
	srtp_err_status_t rc = srtp_create(&s, &pol);
	if(rc != srtp_err_status_ok) {
		fprintf(stderr, "srtp_create: %d\n", (int)rc);
		exit(2);
	}
	return s;
}

typedef struct result { double a, b, m; long packets; } result;

static void session_init(bsess *s, janus_plugin_session *h, int apt, int vpt) {
	memset(s, 0, sizeof(*s));
	g_mutex_init(&s->mutex);
	for(int i = 0; i < 2; i++) {
		g_mutex_init(&s->up_mutex[i]);
		meter_up_init(&s->up[i], i == 1, i == 1 ? 90000 : 48000);
	}
	s->handle = h;
	s->audio_pt = apt;
	s->video_pt = vpt;
	s->send_audio = s->send_video = s->media_up = 1;
	s->ref.count = 1;
	memset(h, 0, sizeof(*h));
	h->plugin_handle = s;
}

static void session_clear(bsess *s) {
	g_mutex_clear(&s->mutex);
	for(int i = 0; i < 2; i++)
		g_mutex_clear(&s->up_mutex[i]);
}

/* One round of one medium: n packets (a multiple of BATCH). */
static result round_of(medium proto, long n, const uint8_t *key, uint8_t *buf) {
	medium md = proto;
	md.seq = (uint16_t)g_random_int();     /* browsers start at a random number */
	md.ts = g_random_int();
	srtp_t tx = srtp_session(key, 0), rx = srtp_session(key, 1);
	/* s: the sender's session, linked to its peer p; ms: the (m) pass's own meters */
	static bsess s, p, ms;
	static janus_plugin_session hs, hp, hm;
	session_init(&s, &hs, 111, 96);
	session_init(&p, &hp, 109, 100);      /* the peer negotiated other PTs */
	session_init(&ms, &hm, 111, 96);
	s.peer = &p;
	p.ref.count++;
	p.peer = &s;
	int lens[BATCH];
	janus_plugin_rtp pk[BATCH];
	result r = { 0, 0, 0, 0 };
	for(long done = 0; done < n; done += BATCH) {
		/* untimed: build and protect the batch */
		for(int i = 0; i < BATCH; i++) {
			uint8_t *b = buf + (size_t)i * md.stride;
			lens[i] = build(&md, b);
			int len = lens[i];
			if(srtp_protect(tx, b, &len) != srtp_err_status_ok || len != lens[i] + TAG_LEN) {
				fprintf(stderr, "srtp_protect failed\n");
				exit(2);
			}
			lens[i] = len;
		}
		/* (a) srtp_unprotect */
		int bad = 0;
		double t0 = now_ns();
		for(int i = 0; i < BATCH; i++)
			bad |= (int)srtp_unprotect(rx, buf + (size_t)i * md.stride, &lens[i]);
		double t1 = now_ns();
		if(bad) {
			fprintf(stderr, "srtp_unprotect failed\n");
			exit(2);
		}
		for(int i = 0; i < BATCH; i++)
			pk[i] = (janus_plugin_rtp){ .mindex = md.video, .video = md.video,
				.buffer = (char *)buf + (size_t)i * md.stride, .length = (uint16_t)lens[i] };
		/* (b) what alliance_incoming_rtp does */
		double t2 = now_ns();
		for(int i = 0; i < BATCH; i++)
			plugin_incoming_rtp(&hs, &pk[i]);
		double t3 = now_ns();
		/* (m) the metering alone, on other meters */
		for(int i = 0; i < BATCH; i++)
			quality_rtp(&ms, &pk[i]);
		double t4 = now_ns();
		r.a += t1 - t0;
		r.b += t3 - t2;
		r.m += t4 - t3;
	}
	r.packets = n;
	/* the work was really done */
	int vi = md.video;
	if(s.rtp_in[vi] != (guint64)n || s.rtp_relayed[vi] != (guint64)n ||
			s.up[vi].total_packets < n - METER_MIN_SEQUENTIAL || s.up[vi].malformed != 0 ||
			ms.up[vi].total_packets != s.up[vi].total_packets ||
			p.ref.count != 2 || (vi && s.up[vi].total_frames < n / 5 - 1)) {
		fprintf(stderr, "%s: sanity check failed (in %" G_GUINT64_FORMAT ", relayed %" G_GUINT64_FORMAT
			", metered %lld, malformed %lld, frames %lld)\n", md.name, s.rtp_in[vi], s.rtp_relayed[vi],
			(long long)s.up[vi].total_packets, (long long)s.up[vi].malformed,
			(long long)s.up[vi].total_frames);
		exit(2);
	}
	session_clear(&s);
	session_clear(&p);
	session_clear(&ms);
	srtp_dealloc(tx);
	srtp_dealloc(rx);
	return r;
}

/* libsrtp2's speed depends on the crypto it was built with (its own, OpenSSL
 * or NSS); name the candidates among the loaded libraries */
static int crypto_lib(struct dl_phdr_info *info, size_t size, void *data) {
	const char *n = info->dlpi_name, *base = strrchr(n, '/');
	base = base ? base + 1 : n;
	if(strstr(base, "srtp") || strstr(base, "libnss3") || strstr(base, "libcrypto") ||
			strstr(base, "mbedcrypto") || strstr(base, "wolfssl"))
	{
		printf(" %s", base);
		++*(int *)data;
	}
	return 0;
}

static int cmp_double(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double median(double *v, int n) {
	double *c = g_memdup2(v, sizeof(double) * (gsize)n);
	qsort(c, (size_t)n, sizeof(double), cmp_double);
	double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	g_free(c);
	return m;
}

static void stat3(double *v, int n, double *med, double *lo, double *hi) {
	*med = median(v, n);
	*lo = *hi = v[0];
	for(int i = 1; i < n; i++) {
		if(v[i] < *lo) *lo = v[i];
		if(v[i] > *hi) *hi = v[i];
	}
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 204800L;
	int rounds = argc > 2 ? atoi(argv[2]) : 9;
	if(n < BATCH || rounds < 1) {
		fprintf(stderr, "usage: %s [packets_per_round >= %d [rounds >= 1]]\n", argv[0], BATCH);
		return 2;
	}
	n = (n + BATCH - 1) / BATCH * BATCH;
	if(srtp_init() != srtp_err_status_ok) {
		fprintf(stderr, "srtp_init failed\n");
		return 2;
	}
	uint8_t key[SRTP_AES_ICM_128_KEY_LEN_WSALT];
	for(size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)g_random_int();
	for(size_t i = 0; i < sizeof(payload_bytes); i++)
		payload_bytes[i] = (uint8_t)g_random_int();

	medium media[2] = {
		{ .name = "audio", .video = 0, .pt = 111, .ssrc = 0x1a2b3c4d, .clock_rate = 48000,
			.ext_words = 3, .payload = 120, .stride = 256 },
		{ .name = "video", .video = 1, .pt = 96, .ssrc = 0x5e6f7081, .clock_rate = 90000,
			.ext_words = 2, .payload = 1100, .stride = MAX_PKT },
	};
	uint8_t *buf = g_malloc0((size_t)BATCH * MAX_PKT);

	printf("packet_bench: plugin per-packet work vs libsrtp2 srtp_unprotect, same packets, same run\n");
	printf("  %s (AES_CM_128_HMAC_SHA1_80), CFLAGS: %s, %ld packets/round/medium, %d rounds + 1 warm-up\n",
		srtp_get_version_string(), BENCH_CFLAGS, n, rounds);
	printf("  loaded srtp/crypto libraries:");
	int found = 0;
	dl_iterate_phdr(crypto_lib, &found);
	printf("%s\n", found ? "" : " none (libsrtp2 static, with its own crypto)");
	printf("  (b) excludes janus_rtp_header_update() (Janus core) and the work inside gateway->relay_rtp\n");
	for(int k = 0; k < 2; k++) {
		int hl = 16 + media[k].ext_words * 4;
		printf("  %s packet: %d-byte RTP header (with extensions) + %d-byte payload = %d bytes, +%d SRTP tag\n",
			media[k].name, hl, media[k].payload, hl + media[k].payload, TAG_LEN);
	}

	double a[2][rounds], b[2][rounds], m[2][rounds], ratio[2][rounds];
	for(int r = -1; r < rounds; r++) {       /* round -1: warm-up, discarded */
		for(int k = 0; k < 2; k++) {
			int mk = (r & 1) ? 1 - k : k;    /* alternate which medium goes first */
			result x = round_of(media[mk], n, key, buf);
			if(r < 0)
				continue;
			a[mk][r] = x.a / (double)x.packets;
			b[mk][r] = x.b / (double)x.packets;
			m[mk][r] = x.m / (double)x.packets;
			ratio[mk][r] = 100.0 * x.b / x.a;
		}
		if(r >= 0)
			printf("  round %d: audio a %.1f b %.1f ns (%.2f %%)   video a %.1f b %.1f ns (%.2f %%)\n", r + 1,
				a[0][r], b[0][r], ratio[0][r], a[1][r], b[1][r], ratio[1][r]);
	}
	printf("\nmedian [min, max] over %d rounds, ns/packet:\n", rounds);
	printf("  %-6s %-28s %-28s %-28s %s\n", "medium", "(a) srtp_unprotect", "(b) ours (relay+meter)",
		"(m) meter part of (b)", "(b)/(a)");
	for(int k = 0; k < 2; k++) {
		double v[4][3];
		stat3(a[k], rounds, &v[0][0], &v[0][1], &v[0][2]);
		stat3(b[k], rounds, &v[1][0], &v[1][1], &v[1][2]);
		stat3(m[k], rounds, &v[2][0], &v[2][1], &v[2][2]);
		stat3(ratio[k], rounds, &v[3][0], &v[3][1], &v[3][2]);
		char c[3][64];
		for(int j = 0; j < 3; j++)
			snprintf(c[j], sizeof(c[j]), "%.1f [%.1f, %.1f]", v[j][0], v[j][1], v[j][2]);
		printf("  %-6s %-28s %-28s %-28s %.2f %% [%.2f, %.2f]\n", media[k].name, c[0], c[1], c[2],
			v[3][0], v[3][1], v[3][2]);
	}
	printf("  target (issue 4): (b)/(a) <= 5 %% (measured, not asserted)\n");
	g_free(buf);
	srtp_shutdown();
	return 0;
}
