/* Unit tests for meter.c: RTP metering (RFC 3550 A.1/A.3/A.8, frames,
 * freezes, stalls), RTCP parsing and the down meter, on crafted packets
 * with hand-checked numbers. Packets live in exact-size heap copies so the
 * sanitizers catch any read past their end. */
#include <glib.h>
#include <jansson.h>
#include <string.h>
#include "meter.h"

#define MS 1000LL
#define S 1000000LL
#define SSRC_A 0x11111111u
#define SSRC_B 0x22222222u

/* --- helpers -------------------------------------------------------------------------- */

/* An RTP packet of `size` bytes in total (12-byte header, zero payload). */
static void send_rtp(meter_up *m, uint16_t seq, uint32_t ts, uint32_t ssrc, bool marker,
		size_t size, int64_t at) {
	g_assert_cmpuint(size, >=, 12);
	uint8_t *b = g_malloc0(size);
	b[0] = 0x80;
	b[1] = (uint8_t)((marker ? 0x80 : 0) | 111);
	b[2] = (uint8_t)(seq >> 8);
	b[3] = (uint8_t)seq;
	b[4] = (uint8_t)(ts >> 24);
	b[5] = (uint8_t)(ts >> 16);
	b[6] = (uint8_t)(ts >> 8);
	b[7] = (uint8_t)ts;
	b[8] = (uint8_t)(ssrc >> 24);
	b[9] = (uint8_t)(ssrc >> 16);
	b[10] = (uint8_t)(ssrc >> 8);
	b[11] = (uint8_t)ssrc;
	meter_up_rtp(m, b, size, at);
	g_free(b);
}

/* An audio packet: seq, 20 ms of 48 kHz per seq step, 100 bytes. */
static void audio(meter_up *m, uint16_t seq, int64_t at) {
	send_rtp(m, seq, (uint32_t)seq * 960u, SSRC_A, false, 100, at);
}

static void feed_raw(meter_up *m, const uint8_t *bytes, size_t len) {
	uint8_t *b = g_memdup2(bytes, len);
	meter_up_rtp(m, b, len, 0);
	g_free(b);
}

/* --- RTP header checks -------------------------------------------------------------------- */

static void test_rtp_header(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* a good header: 2 CSRCs, a 1-word extension, 4 bytes of padding and
	 * an empty payload */
	uint8_t good[12 + 8 + 4 + 4 + 4] = {
		0xB2, 111, 0, 1, 0, 0, 0, 0, 0x11, 0x11, 0x11, 0x11,
		0, 0, 0, 1, 0, 0, 0, 2,             /* CSRCs */
		0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0, /* extension: 1 word */
		0, 0, 0, 4,                         /* padding, count 4 */
	};
	feed_raw(&m, good, sizeof(good));
	g_assert_cmpint(m.malformed, ==, 0);
	g_assert_true(m.have_ssrc);
	g_assert_cmpint(m.total_bytes, ==, (int64_t)sizeof(good));

	uint8_t b[sizeof(good)];
	/* shorter than a fixed header */
	feed_raw(&m, good, 11);
	g_assert_cmpint(m.malformed, ==, 1);
	/* version 1 */
	memcpy(b, good, sizeof(b));
	b[0] = 0x72;
	feed_raw(&m, b, sizeof(b));
	g_assert_cmpint(m.malformed, ==, 2);
	/* 15 CSRCs do not fit */
	memcpy(b, good, sizeof(b));
	b[0] = 0x8F;
	feed_raw(&m, b, sizeof(b));
	g_assert_cmpint(m.malformed, ==, 3);
	/* the extension header itself cut off */
	feed_raw(&m, good, 12 + 8 + 2);
	g_assert_cmpint(m.malformed, ==, 4);
	/* an extension length past the end */
	memcpy(b, good, sizeof(b));
	b[22] = 0xFF;
	feed_raw(&m, b, sizeof(b));
	g_assert_cmpint(m.malformed, ==, 5);
	/* padding count 0, and padding longer than the payload */
	memcpy(b, good, sizeof(b));
	b[sizeof(b) - 1] = 0;
	feed_raw(&m, b, sizeof(b));
	g_assert_cmpint(m.malformed, ==, 6);
	memcpy(b, good, sizeof(b));
	b[sizeof(b) - 1] = 9;       /* 28 + 9 > 32 */
	feed_raw(&m, b, sizeof(b));
	g_assert_cmpint(m.malformed, ==, 7);
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.malformed, ==, 7);
	g_assert_cmpint(m.total_bytes, ==, (int64_t)sizeof(good));
	/* NULL is malformed, not a crash */
	meter_up_rtp(&m, NULL, 40, 0);
	g_assert_cmpint(m.malformed, ==, 8);
}

/* --- sequence numbers (RFC 3550 A.1, A.3) --------------------------------------------- */

static void test_probation_and_in_order(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	for(int i = 0; i < 100; i++)
		audio(&m, (uint16_t)(1000 + i), i * 20 * MS);
	/* A.1: the first packet of a source only starts its probation, so
	 * base = 1001, highest = 1099: 99 expected, 99 received */
	meter_window w;
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(w.packets, ==, 99);
	g_assert_cmpint(w.expected, ==, 99);
	g_assert_cmpint(w.lost, ==, 0);
	g_assert_cmpfloat(w.loss_pct, ==, 0.0);
	g_assert_cmpint(m.base_seq, ==, 1001);
	g_assert_cmpint(m.max_seq, ==, 1099);
	/* an empty window: nothing expected, loss unknown */
	meter_up_window(&m, 3 * S, &w);
	g_assert_cmpint(w.expected, ==, 0);
	g_assert_cmpfloat(w.loss_pct, ==, -1);
}

static void test_wrap(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* 65500 .. 65535, 0 .. 63: 100 packets across the wrap */
	for(int i = 0; i < 100; i++)
		audio(&m, (uint16_t)(65500 + i), i * 20 * MS);
	meter_window w;
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(m.cycles, ==, 65536);
	g_assert_cmpint(m.max_seq, ==, 63);
	g_assert_cmpint(w.expected, ==, 99);
	g_assert_cmpint(w.packets, ==, 99);
	g_assert_cmpint(w.lost, ==, 0);
	g_assert_cmpint(m.resyncs, ==, 0);
	/* a loss right at the wrap is still one loss: 64..65599 skipping 65536 */
	meter_up_init(&m, false, 48000);
	for(int i = 0; i < 100; i++)
		if(65530 + i != 65536)
			audio(&m, (uint16_t)(65530 + i), i * 20 * MS);
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(w.expected, ==, 99);
	g_assert_cmpint(w.lost, ==, 1);
}

static void test_reorder(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* 0..9, 11, 10, 12..20 */
	int order[21];
	for(int i = 0; i < 21; i++)
		order[i] = i;
	order[10] = 11;
	order[11] = 10;
	for(int i = 0; i < 21; i++)
		audio(&m, (uint16_t)order[i], i * 20 * MS);
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.reordered, ==, 1);
	g_assert_cmpint(w.packets, ==, 20);
	g_assert_cmpint(w.expected, ==, 20);
	g_assert_cmpint(w.lost, ==, 0);

	/* up to MAX_MISORDER - 1 late is reordering; MAX_MISORDER late is a
	 * "large jump" in A.1 and is not counted: 0..200 with 51 sent after
	 * 150 (99 late) and 52 sent after 152 (100 late) */
	meter_up_init(&m, false, 48000);
	int t = 0;
	for(int s = 0; s <= 200; s++) {
		if(s == 51 || s == 52)
			continue;
		audio(&m, (uint16_t)s, t++ * 20 * MS);
		if(s == 150)
			audio(&m, 51, t++ * 20 * MS);
		if(s == 152)
			audio(&m, 52, t++ * 20 * MS);
	}
	meter_up_window(&m, 10 * S, &w);
	g_assert_cmpint(w.expected, ==, 200);
	g_assert_cmpint(w.reordered, ==, 1);
	g_assert_cmpint(w.packets, ==, 199);
	g_assert_cmpint(w.lost, ==, 1);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 0.5, 1e-9);
}

static void test_duplicates(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	int t = 0;
	for(int s = 0; s < 100; s++) {
		audio(&m, (uint16_t)s, t++ * 20 * MS);
		if(s >= 10 && s < 20)
			audio(&m, (uint16_t)s, t++ * 20 * MS);   /* the highest, again */
	}
	audio(&m, 50, t++ * 20 * MS);     /* an old one, again */
	audio(&m, 99, t++ * 20 * MS);
	meter_window w;
	meter_up_window(&m, 10 * S, &w);
	g_assert_cmpint(w.duplicates, ==, 12);
	g_assert_cmpint(w.packets, ==, 99);
	g_assert_cmpint(w.expected, ==, 99);
	g_assert_cmpint(w.lost, ==, 0);
	g_assert_cmpint(w.reordered, ==, 0);
	g_assert_cmpint(m.total_duplicates, ==, 12);
	/* a late packet, then the same late packet again */
	audio(&m, 101, t++ * 20 * MS);
	audio(&m, 100, t++ * 20 * MS);
	audio(&m, 100, t++ * 20 * MS);
	meter_up_window(&m, 20 * S, &w);
	g_assert_cmpint(w.reordered, ==, 1);
	g_assert_cmpint(w.duplicates, ==, 1);
	g_assert_cmpint(w.packets, ==, 2);
	g_assert_cmpint(w.lost, ==, 0);
}

static void test_loss_pattern(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* seq 0 starts the probation; of the 1000 counted numbers 1..1000
	 * every 10th (5, 15, ..., 995) is dropped: 100 of 1000 = 10 % */
	for(int s = 0; s <= 1000; s++)
		if(s % 10 != 5)
			audio(&m, (uint16_t)s, s * 20 * MS);
	meter_window w;
	meter_up_window(&m, 21 * S, &w);
	g_assert_cmpint(w.expected, ==, 1000);
	g_assert_cmpint(w.packets, ==, 900);
	g_assert_cmpint(w.lost, ==, 100);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 10.0, 0.01);
	g_assert_cmpint(m.total_expected, ==, 1000);
	g_assert_cmpint(m.total_packets, ==, 900);
	/* windows split the same stream: 1..500 then 501..1000 */
	meter_up_init(&m, false, 48000);
	int64_t lost = 0, expected = 0;
	for(int s = 0; s <= 1000; s++) {
		if(s % 10 != 5)
			audio(&m, (uint16_t)s, s * 20 * MS);
		if(s == 500) {
			meter_up_window(&m, s * 20 * MS + 1, &w);
			g_assert_cmpint(w.expected, ==, 500);
			g_assert_cmpint(w.lost, ==, 50);
			lost += w.lost;
			expected += w.expected;
		}
	}
	meter_up_window(&m, 21 * S, &w);
	g_assert_cmpint(w.lost, ==, 50);
	g_assert_cmpint(lost + w.lost, ==, 100);
	g_assert_cmpint(expected + w.expected, ==, 1000);
}

static void test_late_packet_negative_loss(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	for(int s = 0; s <= 20; s++)
		if(s != 20)
			audio(&m, (uint16_t)s, s * 20 * MS);
	audio(&m, 21, 21 * 20 * MS);       /* 20 is missing at the window */
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.lost, ==, 1);
	audio(&m, 20, 1 * S + 1);          /* ... and arrives in the next one */
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(w.expected, ==, 0);
	g_assert_cmpint(w.packets, ==, 1);
	g_assert_cmpint(w.lost, ==, -1);    /* A.3: negative, kept as is */
	g_assert_cmpfloat(w.loss_pct, ==, -1);   /* nothing expected */
	audio(&m, 22, 2 * S + 1);
	audio(&m, 19, 2 * S + 2);          /* a duplicate now, not late */
	meter_up_window(&m, 3 * S, &w);
	g_assert_cmpint(w.duplicates, ==, 1);
	g_assert_cmpfloat(w.loss_pct, ==, 0.0);
}

static void test_large_jump_resync(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	for(int s = 0; s < 100; s++)
		audio(&m, (uint16_t)s, s * 20 * MS);
	/* a lone stray packet far ahead: ignored, no resync */
	audio(&m, 40000, 100 * 20 * MS);
	for(int s = 100; s < 110; s++)
		audio(&m, (uint16_t)s, (s + 1) * 20 * MS);
	g_assert_cmpint(m.resyncs, ==, 0);
	meter_window w;
	meter_up_window(&m, 3 * S, &w);
	g_assert_cmpint(w.expected, ==, 109);
	g_assert_cmpint(w.packets, ==, 109);
	/* the sender restarts at 30000: the first packet there is remembered
	 * (bad_seq), the second in sequence re-syncs; no false loss of the
	 * 29890 numbers in between */
	for(int s = 30000; s < 30010; s++)
		audio(&m, (uint16_t)s, 3 * S + (s - 30000) * 20 * MS);
	meter_up_window(&m, 4 * S, &w);
	g_assert_cmpint(m.resyncs, ==, 1);
	g_assert_cmpint(m.base_seq, ==, 30001);
	g_assert_cmpint(w.expected, ==, 9);
	g_assert_cmpint(w.packets, ==, 9);
	g_assert_cmpint(w.lost, ==, 0);
	/* a jump backwards by more than MAX_MISORDER resyncs the same way */
	for(int s = 5; s < 15; s++)
		audio(&m, (uint16_t)s, 4 * S + (s - 5) * 20 * MS);
	meter_up_window(&m, 5 * S, &w);
	g_assert_cmpint(m.resyncs, ==, 2);
	g_assert_cmpint(w.expected, ==, 9);
	g_assert_cmpint(w.lost, ==, 0);
	g_assert_cmpint(m.total_packets, ==, 109 + 9 + 9);
}

static void test_ssrc_change(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	for(int s = 0; s < 50; s++)
		send_rtp(&m, (uint16_t)s, (uint32_t)s * 960, SSRC_A, false, 100, s * 20 * MS);
	/* a new SSRC, unrelated numbers, with one loss */
	for(int s = 7000; s < 7050; s++)
		if(s != 7020)
			send_rtp(&m, (uint16_t)s, 123456u + (uint32_t)s * 960, SSRC_B, false, 100,
				(s - 7000 + 50) * 20 * MS);
	meter_window w;
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(m.ssrc_changes, ==, 1);
	g_assert_cmpuint(m.ssrc, ==, SSRC_B);
	g_assert_cmpint(m.base_seq, ==, 7001);
	/* A: 49 of 49 (1..49); B: 7001..7049 expected, 48 received */
	g_assert_cmpint(w.expected, ==, 49 + 49);
	g_assert_cmpint(w.packets, ==, 49 + 48);
	g_assert_cmpint(w.lost, ==, 1);
	g_assert_cmpint(m.total_packets, ==, 97);
	g_assert_cmpint(m.total_expected, ==, 98);
	g_assert_cmpint(m.total_bytes, ==, 99 * 100);
	/* back to A (e.g. a renegotiation): counted as another change */
	send_rtp(&m, 50, 50 * 960, SSRC_A, false, 100, 3 * S);
	g_assert_cmpint(m.ssrc_changes, ==, 2);
}

/* --- jitter (RFC 3550 A.8) -------------------------------------------------------------- */

static void test_jitter_by_hand(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* 48 kHz, 20 ms per packet (960 units), arrivals late by extra[k] ms
	 * (48 units per ms). Packet 0 is the probation packet (not metered),
	 * packet 1 sets the first transit; then D = extra[k] - extra[k-1]:
	 *   k=2: D = 5 ms = 240  J = 0 + (240 - 0)/16                = 15
	 *   k=3: D = -3 ms, |D| = 144  J = 15 + (144 - 15)/16        = 23.0625
	 *   k=4: D = 10 ms = 480  J = 23.0625 + (480 - 23.0625)/16   = 51.62109375
	 *   k=5: D = 0           J = 51.62109375 × 15/16           = 48.394775390625
	 * in ms: 48.394775390625 / 48 = 1.008224487304688 */
	const int extra_ms[] = { 0, 0, 5, 2, 12, 12 };
	meter_window w;
	for(int k = 0; k < 6; k++) {
		audio(&m, (uint16_t)(500 + k), k * 20 * MS + extra_ms[k] * MS);
		if(k == 1) {
			meter_up_window(&m, 21 * MS, &w);
			g_assert_cmpfloat(w.jitter_ms, ==, -1);   /* no D yet */
		}
	}
	g_assert_cmpfloat_with_epsilon(m.jitter, 48.394775390625, 1e-9);
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpfloat_with_epsilon(w.jitter_ms, 48.394775390625 / 48.0, 1e-12);

	/* a wrap of the 32-bit timestamp is no jump in transit */
	meter_up_init(&m, false, 48000);
	for(int k = 0; k < 10; k++)
		send_rtp(&m, (uint16_t)k, 0xFFFFF000u + (uint32_t)k * 960, SSRC_A, false, 100, k * 20 * MS);
	g_assert_cmpfloat_with_epsilon(m.jitter, 0.0, 1e-9);
}

static void test_jitter_video_same_timestamp(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	/* 30 fps, 5 packets per frame paced 2 ms apart: the spread within a
	 * frame is pacing, not jitter */
	uint16_t seq = 0;
	for(int f = 0; f < 30; f++)
		for(int p = 0; p < 5; p++)
			send_rtp(&m, seq++, (uint32_t)f * 3000, SSRC_A, p == 4, 1200,
				f * 33333 + p * 2 * MS);
	/* frame 0's first packet was the probation one, so its second (2 ms
	 * later) set the transit: one D of 33333 - 2000 µs = 2819.97 units
	 * against 3000, |D| = 180.03, J = 11.25; then |D| = 0.03 per frame, and
	 * 28 frames decay it by (15/16)^28 = 0.164 to 1.85 units. Counting
	 * every packet would add 4 D's of 2 ms (180 units) per frame: J > 100 */
	g_assert_cmpfloat(m.jitter, >, 1.8);
	g_assert_cmpfloat(m.jitter, <, 1.9);
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.frames, ==, 30);
}

/* --- video frames and freezes ---------------------------------------------------------- */

/* A frame of n packets (marker on the last) starting at `at`, 1 ms apart. */
static void frame(meter_up *m, uint16_t *seq, uint32_t ts, int n, size_t size, int64_t at) {
	for(int p = 0; p < n; p++)
		send_rtp(m, (*seq)++, ts, SSRC_A, p == n - 1, size, at + p * MS);
}

static void test_freeze_30fps(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	int64_t t = 0;
	uint32_t ts = 0;
	for(int f = 0; f < 60; f++, t += 33333, ts += 3000)
		frame(&m, &seq, ts, 3, 1000, t);
	/* the last frame started at t - 33333; the next one 600 ms later */
	t += 600000 - 33333;
	for(int f = 0; f < 30; f++, t += 33333, ts += 3000)
		frame(&m, &seq, ts, 3, 1000, t);
	meter_window w;
	meter_up_window(&m, t, &w);
	/* mean 33.333 ms: threshold max(100, 183.3) ms; 600 ms is one freeze */
	g_assert_cmpint(w.freezes, ==, 1);
	g_assert_cmpint(w.freeze_ms, ==, 600);
	g_assert_cmpint(w.stalls, ==, 0);
	g_assert_cmpint(w.frames, ==, 90);
	g_assert_cmpint(m.total_freezes, ==, 1);
	g_assert_cmpint(m.total_freeze_us, ==, 600000);
	g_assert_cmpint(w.max_gap_ms, ==, 598);     /* last packet + 2 ms → next */
}

static void test_no_freeze_15fps(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	int64_t last = 0;
	/* 15 fps with ±15 ms of arrival jitter: intervals 36.7 or 96.7 ms,
	 * mean 66.7, far below max(3 × 66.7, 66.7 + 150) = 216.7 ms */
	for(int f = 0; f < 150; f++) {
		int64_t j = f == 0 ? 0 : (f % 2) ? 15 * MS : -15 * MS;
		last = f * 66667 + j;
		frame(&m, &seq, (uint32_t)f * 6000, 4, 1000, last);
	}
	meter_window w;
	meter_up_window(&m, 150 * 66667, &w);
	g_assert_cmpint(w.freezes, ==, 0);
	g_assert_cmpint(w.frames, ==, 150);
	g_assert_cmpfloat_with_epsilon(w.fps, 15.0, 0.01);
	/* ...but 250 ms (above 216.7) is one */
	frame(&m, &seq, 150u * 6000, 4, 1000, last + 250000);
	meter_up_window(&m, last + 300000, &w);
	g_assert_cmpint(w.freezes, ==, 1);
	g_assert_cmpint(w.freeze_ms, ==, 250);
}

/* The threshold is the larger of its two parts, each of which decides at
 * some frame rate. n frames at `period` µs, then one interval of `gap`. */
static int64_t freezes_after(int64_t period, int n, int64_t gap) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	int64_t t = 0;
	for(int f = 0; f < n; f++, t += period)
		frame(&m, &seq, (uint32_t)f * 3000, 2, 500, t);
	t += gap - period;
	frame(&m, &seq, (uint32_t)n * 3000, 2, 500, t);
	meter_window w;
	meter_up_window(&m, t + S, &w);
	return w.freezes;
}

static void test_freeze_threshold(void) {
	/* 30 fps: max(100, 183.3) ms; 150 ms would freeze under 3 × mean alone */
	g_assert_cmpint(freezes_after(33333, 40, 150000), ==, 0);
	g_assert_cmpint(freezes_after(33333, 40, 183000), ==, 0);
	g_assert_cmpint(freezes_after(33333, 40, 184000), ==, 1);
	/* 15 fps: max(200, 216.7) ms; 210 ms would freeze under 3 × mean alone */
	g_assert_cmpint(freezes_after(66667, 40, 210000), ==, 0);
	g_assert_cmpint(freezes_after(66667, 40, 217000), ==, 1);
	/* 5 fps: max(600, 350) ms; 500 ms would freeze under mean + 150 alone */
	g_assert_cmpint(freezes_after(200000, 40, 500000), ==, 0);
	g_assert_cmpint(freezes_after(200000, 40, 599000), ==, 0);
	g_assert_cmpint(freezes_after(200000, 40, 600000), ==, 1);
}

/* The picture frozen now (pulses wait it out): the W3C rule on the gap
 * still open, and a stall; nothing for audio or before frames. */
static void test_frozen_for(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	g_assert_cmpint(meter_up_frozen_for(&m, 5 * S), ==, 0);      /* no frame yet */
	uint16_t seq = 0;
	int64_t t = 0;
	for(int f = 0; f < 3; f++, t += 33333)
		frame(&m, &seq, (uint32_t)f * 3000, 2, 500, t);
	int64_t last = t - 33333;
	/* fewer than METER_FREEZE_MIN_INTERVALS intervals: not judged (but a stall is) */
	g_assert_cmpint(meter_up_frozen_for(&m, last + 500 * MS), ==, 0);
	g_assert_cmpint(meter_up_frozen_for(&m, last + 1 * MS + METER_STALL_US), ==, 1 * MS + METER_STALL_US);
	for(int f = 3; f < 40; f++, t += 33333)
		frame(&m, &seq, (uint32_t)f * 3000, 2, 500, t);
	last = t - 33333;
	/* 30 fps: the threshold is max(100, 183.3) ms */
	g_assert_cmpint(meter_up_frozen_for(&m, last + 183 * MS), ==, 0);
	g_assert_cmpint(meter_up_frozen_for(&m, last + 184 * MS), ==, 184 * MS);
	g_assert_cmpint(meter_up_frozen_for(&m, last + 3 * S), ==, 3 * S);
	g_assert_cmpint(meter_up_frozen_for(&m, last - 1), ==, 0);   /* a clock behind */
	/* the next frame ends it */
	frame(&m, &seq, 40u * 3000, 2, 500, last + 700 * MS);
	g_assert_cmpint(meter_up_frozen_for(&m, last + 720 * MS), ==, 0);
	/* audio never freezes */
	meter_up a;
	meter_up_init(&a, false, 48000);
	for(int i = 0; i < 50; i++)
		audio(&a, (uint16_t)i, i * 20 * MS);
	g_assert_cmpint(meter_up_frozen_for(&a, 10 * S), ==, 0);
}

static void test_frames_across_sources(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	int64_t t = 0;
	uint32_t ts = 1000000000u;
	for(int f = 0; f < 30; f++, t += 33333, ts += 3000)
		frame(&m, &seq, ts, 2, 500, t);
	/* a new SSRC whose timestamps start "before" the old ones (1000 -
	 * 1e9 < 0 as int32): its frames count nonetheless, and
	 * the frame clock carries on (no freeze: the cadence is unbroken) */
	ts = 1000;
	for(int f = 0; f < 30; f++, t += 33333, ts += 3000)
		for(int p = 0; p < 2; p++)
			send_rtp(&m, (uint16_t)(9000 + 2 * f + p), ts, SSRC_B, p == 1, 500, t + p * MS);
	meter_window w;
	meter_up_window(&m, t, &w);
	/* the new source's first packet is on probation: its first frame
	 * starts at the second packet, 1 ms late, a 34.3 ms interval */
	g_assert_cmpint(w.frames, ==, 60);
	g_assert_cmpint(w.freezes, ==, 0);
	/* a resync of the sequence (same SSRC) with timestamps restarting too */
	ts = 500;
	for(int f = 0; f < 30; f++, t += 33333, ts += 3000)
		for(int p = 0; p < 2; p++)
			send_rtp(&m, (uint16_t)(40000 + 2 * f + p), ts, SSRC_B, p == 1, 500, t + p * MS);
	meter_up_window(&m, t, &w);
	g_assert_cmpint(m.resyncs, ==, 1);
	g_assert_cmpint(w.frames, ==, 30);
	g_assert_cmpint(w.freezes, ==, 0);
}

static void test_freeze_needs_history(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	/* a long interval among the first frames is not judged: too few */
	frame(&m, &seq, 0, 2, 500, 0);
	frame(&m, &seq, 3000, 2, 500, 33333);
	frame(&m, &seq, 6000, 2, 500, 1 * S);
	meter_window w;
	meter_up_window(&m, 2 * S, &w);
	g_assert_cmpint(w.freezes, ==, 0);
	/* audio never counts frames */
	meter_up_init(&m, false, 48000);
	for(int s = 0; s < 50; s++)
		audio(&m, (uint16_t)s, s * 20 * MS);
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.frames, ==, 0);
	g_assert_cmpfloat(w.fps, ==, 0.0);
}

/* --- stalls ---------------------------------------------------------------------------- */

static void test_stall_detected_by_window(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	/* 50 packets, the last at 980 ms; silence until 3480 ms (2.5 s) */
	for(int s = 0; s < 50; s++)
		audio(&m, (uint16_t)s, s * 20 * MS);
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	g_assert_cmpint(w.stalls, ==, 0);
	meter_up_window(&m, 2 * S, &w);     /* 1.02 s of silence: not yet */
	g_assert_cmpint(w.stalls, ==, 0);
	g_assert_cmpint(w.max_gap_ms, ==, 1020);
	meter_up_window(&m, 3 * S, &w);     /* 2.02 s: a stall, all of it so far */
	g_assert_cmpint(w.stalls, ==, 1);
	g_assert_cmpint(w.stall_ms, ==, 2020);
	g_assert_cmpint(w.packets, ==, 0);
	g_assert_cmpfloat(w.bitrate_kbps, ==, 0.0);
	audio(&m, 50, 3480 * MS);          /* the stall ends: the rest of it */
	meter_up_window(&m, 4 * S, &w);
	g_assert_cmpint(w.stalls, ==, 0);
	g_assert_cmpint(w.stall_ms, ==, 480);
	g_assert_cmpint(w.max_gap_ms, ==, 2500);
	g_assert_cmpint(m.total_stalls, ==, 1);
	g_assert_cmpint(m.total_stall_us, ==, 2500000);
	/* a stall lasting several windows is one stall */
	meter_up_window(&m, 6 * S, &w);     /* 2.52 s */
	meter_up_window(&m, 7 * S, &w);
	g_assert_cmpint(w.stalls, ==, 0);
	g_assert_cmpint(w.stall_ms, ==, 1000);
	g_assert_cmpint(m.total_stalls, ==, 2);
	g_assert_cmpint(m.total_stall_us, ==, 2500000 + 3520000);
}

static void test_stall_detected_by_packet(void) {
	meter_up m;
	meter_up_init(&m, false, 48000);
	for(int s = 0; s < 50; s++)
		audio(&m, (uint16_t)s, s * 20 * MS);
	audio(&m, 50, 980 * MS + 2500 * MS);
	meter_window w;
	meter_up_window(&m, 4 * S, &w);
	g_assert_cmpint(w.stalls, ==, 1);
	g_assert_cmpint(w.stall_ms, ==, 2500);
	g_assert_cmpint(w.lost, ==, 0);
	/* 1.99 s is no stall */
	audio(&m, 51, 3480 * MS + 1990 * MS);
	meter_up_window(&m, 6 * S, &w);
	g_assert_cmpint(w.stalls, ==, 0);
	/* no packet ever: no stall (nothing was flowing) */
	meter_up_init(&m, false, 48000);
	meter_up_window(&m, 10 * S, &w);
	g_assert_cmpint(w.stalls, ==, 0);
}

/* --- bitrate and frame rate per window ------------------------------------------------ */

static void test_bitrate_fps(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	/* 25 fps, frames of 2 × 1000 bytes from t = 5 s: 50 000 bytes in the
	 * first second = 400 kbit/s, 25 fps; the window starts at the first
	 * packet */
	meter_window w;
	for(int f = 0; f < 40; f++) {
		frame(&m, &seq, (uint32_t)f * 3600, 2, 1000, 5 * S + f * 40 * MS);
		if(f == 24) {
			meter_up_window(&m, 6 * S, &w);
			g_assert_cmpint(w.start_us, ==, 5 * S);
			g_assert_cmpint(w.end_us, ==, 6 * S);
			g_assert_cmpint(w.bytes, ==, 50000);
			g_assert_cmpfloat_with_epsilon(w.bitrate_kbps, 400.0, 1e-9);
			g_assert_cmpint(w.frames, ==, 25);
			g_assert_cmpfloat_with_epsilon(w.fps, 25.0, 1e-9);
		}
	}
	/* the second window, [6 s, 6.6 s): frames 25..39 (15), 30 000 bytes:
	 * 30 000 × 8 / 0.6 s = 400 kbit/s, 15 / 0.6 s = 25 fps */
	meter_up_window(&m, 6600 * MS, &w);
	g_assert_cmpint(w.start_us, ==, 6 * S);
	g_assert_cmpint(w.frames, ==, 15);
	g_assert_cmpint(w.bytes, ==, 30000);
	g_assert_cmpfloat_with_epsilon(w.fps, 25.0, 1e-9);
	g_assert_cmpfloat_with_epsilon(w.bitrate_kbps, 400.0, 1e-9);
	/* an empty window after it: zero rates */
	meter_up_window(&m, 7600 * MS, &w);
	g_assert_cmpfloat(w.bitrate_kbps, ==, 0.0);
	g_assert_cmpfloat(w.fps, ==, 0.0);
}

/* --- RTCP ------------------------------------------------------------------------------- */

typedef struct seen {
	meter_down *down;
	uint64_t now_ntp;
	int reports, sender_infos, pli, fir, remb, nack;
	meter_report_block last_rb;
	meter_sender_info last_si;
	uint64_t remb_bps;
	uint32_t remb_first_ssrc;
	unsigned remb_n, nack_lost;
	uint8_t fir_seq;
} seen;

static void on_report(void *u, const meter_report_block *rb) {
	seen *s = u;
	s->reports++;
	s->last_rb = *rb;
	if(s->down)
		meter_down_report(s->down, rb, s->now_ntp, 90000);
}

static void on_si(void *u, const meter_sender_info *si) {
	seen *s = u;
	s->sender_infos++;
	s->last_si = *si;
}

static void on_pli(void *u, uint32_t sender, uint32_t media) {
	seen *s = u;
	s->pli++;
	if(s->down)
		meter_down_pli(s->down);
}

static void on_fir(void *u, uint32_t sender, uint32_t media, uint8_t seq_nr) {
	seen *s = u;
	s->fir++;
	s->fir_seq = seq_nr;
	if(s->down)
		meter_down_fir(s->down);
}

static void on_remb(void *u, uint32_t sender, uint64_t bps, uint32_t first, unsigned n) {
	seen *s = u;
	s->remb++;
	s->remb_bps = bps;
	s->remb_first_ssrc = first;
	s->remb_n = n;
	if(s->down)
		meter_down_remb(s->down, bps);
}

static void on_nack(void *u, uint32_t sender, uint32_t media, unsigned lost) {
	seen *s = u;
	s->nack++;
	s->nack_lost += lost;
	if(s->down)
		meter_down_nack(s->down, lost);
}

static const meter_rtcp_visitor visitor = { on_report, on_si, on_pli, on_fir, on_remb, on_nack };

/* Parse from an exact-size heap copy. */
static int parse(const uint8_t *bytes, size_t len, seen *s) {
	uint8_t *b = len ? g_memdup2(bytes, len) : g_malloc(1);
	int r = meter_rtcp_parse(b, len, &visitor, s);
	g_free(b);
	return r;
}

static void w32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An RR with one report block into b (32 bytes). */
static size_t rr(uint8_t *b, uint32_t source, uint8_t fraction, int32_t cum, uint32_t ext_seq,
		uint32_t jitter, uint32_t lsr, uint32_t dlsr) {
	b[0] = 0x81;
	b[1] = 201;
	b[2] = 0;
	b[3] = 7;
	w32(b + 4, 0xCAFEBABE);
	w32(b + 8, source);
	w32(b + 12, (uint32_t)cum & 0xFFFFFF);
	b[12] = fraction;
	w32(b + 16, ext_seq);
	w32(b + 20, jitter);
	w32(b + 24, lsr);
	w32(b + 28, dlsr);
	return 32;
}

static void test_ntp(void) {
	g_assert_cmpuint(meter_ntp_from_us(0), ==, 2208988800ULL << 32);
	/* 1 700 000 000.5 s: seconds 3 908 988 800, fraction 0x80000000 */
	uint64_t ntp = meter_ntp_from_us(1700000000LL * S + 500000);
	g_assert_cmpuint(ntp >> 32, ==, 3908988800ULL);
	g_assert_cmpuint(ntp & 0xFFFFFFFFu, ==, 0x80000000u);
	/* 3908988800 = 0xE8FE_6F80: middle 32 = 0x6F80_8000 */
	g_assert_cmpuint(meter_ntp_middle32(ntp), ==, 0x6F808000u);
	/* 1 µs is 4294.967296 fraction units, truncated */
	g_assert_cmpuint(meter_ntp_from_us(1) & 0xFFFFFFFFu, ==, 4294u);
	g_assert_cmpuint(meter_ntp_from_us(-5), ==, 2208988800ULL << 32);
}

static void test_rtt_from_rr(void) {
	meter_down d;
	meter_down_init(&d, false);
	seen s = { .down = &d };
	s.now_ntp = meter_ntp_from_us(1700000000LL * S + 500000);
	uint32_t mid = meter_ntp_middle32(s.now_ntp);   /* 0x6F808000 */
	/* RTT = mid - LSR - DLSR. DLSR = 1.5 s = 98304 units; 62.5 ms is
	 * exactly 4096 units: LSR = mid - 98304 - 4096 */
	uint8_t b[32];
	size_t n = rr(b, SSRC_A, 0, 0, 100, 0, mid - 98304 - 4096, 98304);
	g_assert_cmpint(parse(b, n, &s), ==, 1);
	g_assert_cmpint(s.reports, ==, 1);
	g_assert_cmpuint(s.last_rb.reporter_ssrc, ==, 0xCAFEBABE);
	g_assert_cmpuint(s.last_rb.source_ssrc, ==, SSRC_A);
	g_assert_cmpfloat(d.rtt_last_ms, ==, 62.5);
	/* 50 ms is 3276.8 units, not an integer: 3277 units = 50.0030518 ms */
	n = rr(b, SSRC_A, 0, 0, 200, 0, mid - 98304 - 3277, 98304);
	parse(b, n, &s);
	g_assert_cmpfloat_with_epsilon(d.rtt_last_ms, 50.0, 0.01);
	g_assert_cmpfloat_with_epsilon(d.rtt_last_ms, 3277 * 1000.0 / 65536, 1e-9);
	/* smoothed with gain 1/8: 62.5 + (50.0030518 - 62.5) / 8 */
	g_assert_cmpfloat_with_epsilon(d.rtt_smooth_ms, 62.5 + (3277 * 1000.0 / 65536 - 62.5) / 8, 1e-9);
	g_assert_cmpfloat_with_epsilon(d.rtt_min_ms, 3277 * 1000.0 / 65536, 1e-9);
	g_assert_cmpint(d.rtt_samples, ==, 2);
	/* LSR 0 (no SR received yet), negative, above 10 s: no sample */
	n = rr(b, SSRC_A, 0, 0, 300, 0, 0, 0);
	parse(b, n, &s);
	n = rr(b, SSRC_A, 0, 0, 400, 0, mid - 10, 98304);
	parse(b, n, &s);
	n = rr(b, SSRC_A, 0, 0, 500, 0, mid - 11 * 65536, 0);
	parse(b, n, &s);
	g_assert_cmpint(d.rtt_samples, ==, 2);
	g_assert_cmpint(d.reports, ==, 5);
	/* exactly 10 s is still plausible */
	g_assert_cmpfloat(meter_rtt_ms(mid - 10 * 65536, 0, s.now_ntp), ==, 10000.0);
	/* across the middle-32 wrap */
	uint64_t ntp2 = ((uint64_t)0x00000000u << 32) | 0x00100000u;   /* middle 0x00000010 */
	g_assert_cmpfloat(meter_rtt_ms(0xFFFFFFF0u, 0x10, ntp2), ==, 0x10 * 1000.0 / 65536);
	/* jitter in ms with the clock rate: 900 units at 90 kHz = 10 ms */
	n = rr(b, SSRC_A, 0, 0, 600, 900, 0, 0);
	parse(b, n, &s);
	g_assert_cmpfloat_with_epsilon(d.jitter_ms, 10.0, 1e-9);
	meter_window w;
	meter_down_window(&d, 1 * S, &w);
	g_assert_cmpint(w.dir, ==, METER_DOWN);
	g_assert_cmpfloat_with_epsilon(w.rtt_ms, d.rtt_smooth_ms, 1e-12);
	g_assert_cmpfloat_with_epsilon(w.jitter_ms, 10.0, 1e-9);
	g_assert_cmpint(w.reports, ==, 6);
}

static void test_report_fields_and_sr(void) {
	/* an SR with sender info and one report block; cumulative lost -2 */
	uint8_t b[52] = { 0x81, 200, 0, 12 };
	w32(b + 4, SSRC_B);
	w32(b + 8, 0xE8FE6F80u);
	w32(b + 12, 0x80000000u);
	w32(b + 16, 123456);
	w32(b + 20, 1000);
	w32(b + 24, 200000);
	w32(b + 28, SSRC_A);
	b[32] = 64;
	b[33] = 0xFF;
	b[34] = 0xFF;
	b[35] = 0xFE;
	w32(b + 36, 0x00012345);
	w32(b + 40, 77);
	w32(b + 44, 0x6F808000u);
	w32(b + 48, 65536);
	seen s = { 0 };
	g_assert_cmpint(parse(b, sizeof(b), &s), ==, 1);
	g_assert_cmpint(s.sender_infos, ==, 1);
	g_assert_cmpuint(s.last_si.ssrc, ==, SSRC_B);
	g_assert_cmpuint(s.last_si.ntp, ==, 0xE8FE6F8080000000ULL);
	g_assert_cmpuint(s.last_si.rtp_ts, ==, 123456);
	g_assert_cmpuint(s.last_si.packets, ==, 1000);
	g_assert_cmpuint(s.last_si.octets, ==, 200000);
	g_assert_cmpint(s.reports, ==, 1);
	g_assert_cmpuint(s.last_rb.reporter_ssrc, ==, SSRC_B);
	g_assert_cmpuint(s.last_rb.source_ssrc, ==, SSRC_A);
	g_assert_cmpuint(s.last_rb.fraction_lost, ==, 64);
	g_assert_cmpint(s.last_rb.cumulative_lost, ==, -2);
	g_assert_cmpuint(s.last_rb.ext_highest_seq, ==, 0x12345);
	g_assert_cmpuint(s.last_rb.jitter, ==, 77);
	g_assert_cmpuint(s.last_rb.lsr, ==, 0x6F808000u);
	g_assert_cmpuint(s.last_rb.dlsr, ==, 65536);
	/* the largest positive 24-bit value */
	b[33] = 0x7F;
	b[34] = 0xFF;
	b[35] = 0xFF;
	parse(b, sizeof(b), &s);
	g_assert_cmpint(s.last_rb.cumulative_lost, ==, 8388607);
	/* a NULL visitor walks without calling anything */
	g_assert_cmpint(meter_rtcp_parse(b, sizeof(b), NULL, NULL), ==, 1);
}

static void test_remb(void) {
	/* REMB (RFC draft-alvestrand-rmcat-remb): exp 3, mantissa 125000:
	 * 125000 × 2^3 = 1 000 000 bit/s. 125000 = 0x1E848, so the 18-bit
	 * mantissa is 01 E848 and the byte after "num SSRC" is 3<<2 | 1 = 0x0D */
	const uint8_t remb[] = {
		0x8F, 206, 0x00, 0x05,
		0x00, 0x00, 0x00, 0x01,       /* sender SSRC */
		0x00, 0x00, 0x00, 0x00,       /* media SSRC: unused */
		'R', 'E', 'M', 'B',
		0x01, 0x0D, 0xE8, 0x48,       /* 1 SSRC, exp 3, mantissa 0x1E848 */
		0x12, 0x34, 0x56, 0x78,
	};
	seen s = { 0 };
	g_assert_cmpint(parse(remb, sizeof(remb), &s), ==, 1);
	g_assert_cmpint(s.remb, ==, 1);
	g_assert_cmpuint(s.remb_bps, ==, 1000000);
	g_assert_cmpuint(s.remb_first_ssrc, ==, 0x12345678u);
	g_assert_cmpuint(s.remb_n, ==, 1);
	/* the largest: exp 63, mantissa 0x3FFFF saturates at INT64_MAX */
	uint8_t b[sizeof(remb)];
	memcpy(b, remb, sizeof(b));
	b[17] = 0xFF;
	b[18] = 0xFF;
	b[19] = 0xFF;
	parse(b, sizeof(b), &s);
	g_assert_cmpuint(s.remb_bps, ==, (uint64_t)INT64_MAX);
	/* exp 45: 0x3FFFF << 45 = 2^63 - 2^45 still fits; exp 46 does not */
	b[17] = 45 << 2 | 3;
	parse(b, sizeof(b), &s);
	g_assert_cmpuint(s.remb_bps, ==, 0x3FFFFULL << 45);
	b[17] = 46 << 2 | 3;
	parse(b, sizeof(b), &s);
	g_assert_cmpuint(s.remb_bps, ==, (uint64_t)INT64_MAX);
	/* 2 SSRCs announced, room for 1: malformed */
	memcpy(b, remb, sizeof(b));
	b[16] = 2;
	g_assert_cmpint(parse(b, sizeof(b), &s), ==, -1);
	g_assert_cmpint(s.remb, ==, 4);
	/* another application-layer feedback: skipped, not malformed */
	memcpy(b, remb, sizeof(b));
	b[12] = 'X';
	g_assert_cmpint(parse(b, sizeof(b), &s), ==, 1);
	g_assert_cmpint(s.remb, ==, 4);
	/* into the down meter */
	meter_down d;
	meter_down_init(&d, true);
	seen s2 = { .down = &d };
	parse(remb, sizeof(remb), &s2);
	meter_window w;
	meter_down_window(&d, 1 * S, &w);
	g_assert_cmpuint(w.remb_bps, ==, 1000000);
}

static void test_feedback_counts(void) {
	/* RR (no blocks) + PLI + FIR with 2 entries + NACK with 2 entries
	 * (BLP 0x0005: 2 more lost; BLP 0: none) + SDES (skipped) */
	const uint8_t c[] = {
		0x80, 201, 0x00, 0x01, 0xCA, 0xFE, 0xBA, 0xBE,
		0x81, 206, 0x00, 0x02, 0, 0, 0, 1, 0x11, 0x11, 0x11, 0x11,
		0x84, 206, 0x00, 0x06, 0, 0, 0, 1, 0, 0, 0, 0,
			0x11, 0x11, 0x11, 0x11, 7, 0, 0, 0,
			0x22, 0x22, 0x22, 0x22, 9, 0, 0, 0,
		0x81, 205, 0x00, 0x04, 0, 0, 0, 1, 0x11, 0x11, 0x11, 0x11,
			0x00, 0x64, 0x00, 0x05,
			0x01, 0x00, 0x00, 0x00,
		0x81, 202, 0x00, 0x02, 0xCA, 0xFE, 0xBA, 0xBE, 1, 1, 'x', 0,
	};
	meter_down d;
	meter_down_init(&d, true);
	seen s = { .down = &d };
	g_assert_cmpint(parse(c, sizeof(c), &s), ==, 5);
	g_assert_cmpint(s.pli, ==, 1);
	g_assert_cmpint(s.fir, ==, 2);
	g_assert_cmpint(s.fir_seq, ==, 9);
	g_assert_cmpint(s.nack, ==, 1);
	g_assert_cmpint(s.nack_lost, ==, 4);
	g_assert_cmpint(s.reports, ==, 0);
	meter_window w;
	meter_down_window(&d, 1 * S, &w);
	g_assert_cmpint(w.pli, ==, 1);
	g_assert_cmpint(w.fir, ==, 2);
	g_assert_cmpint(w.nack, ==, 4);
	g_assert_cmpint(w.reports, ==, 0);
	g_assert_cmpfloat(w.loss_pct, ==, -1);   /* never reported */
	g_assert_cmpfloat(w.rtt_ms, ==, -1);
	parse(c, sizeof(c), &s);
	meter_down_window(&d, 2 * S, &w);
	g_assert_cmpint(w.pli, ==, 1);
	g_assert_cmpint(d.pli, ==, 2);
	g_assert_cmpint(d.fir, ==, 4);
	g_assert_cmpint(d.nack, ==, 8);
	meter_down_window(&d, 3 * S, &w);
	g_assert_cmpint(w.pli, ==, 0);
	g_assert_cmpint(w.nack, ==, 0);
}

static void test_malformed_rtcp(void) {
	seen s = { 0 };
	uint8_t good[32];
	rr(good, SSRC_A, 0, 0, 1, 0, 0, 0);
	/* empty */
	g_assert_cmpint(parse(good, 0, &s), ==, -1);
	/* every truncation of one RR is malformed */
	for(size_t n = 1; n < sizeof(good); n++)
		g_assert_cmpint(parse(good, n, &s), ==, -1);
	g_assert_cmpint(s.reports, ==, 0);
	uint8_t b[64];
	/* a length field overflowing the buffer */
	memcpy(b, good, 32);
	b[2] = 0xFF;
	b[3] = 0xFF;
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	/* zero length: a header alone cannot hold an RR's SSRC */
	memcpy(b, good, 32);
	b[3] = 0;
	g_assert_cmpint(parse(b, 4, &s), ==, -1);
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	/* a report count that does not fit the length */
	memcpy(b, good, 32);
	b[0] = 0x82;
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	/* version 0 */
	memcpy(b, good, 32);
	b[0] = 0x01;
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	/* padding: count 0, count beyond the packet */
	memcpy(b, good, 32);
	b[0] = 0xA1;
	b[31] = 0;
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	b[31] = 40;
	g_assert_cmpint(parse(b, 32, &s), ==, -1);
	g_assert_cmpint(s.reports, ==, 0);
	/* feedback shorter than its SSRCs; a FIR entry cut in half */
	const uint8_t pli0[] = { 0x81, 206, 0x00, 0x00 };
	g_assert_cmpint(parse(pli0, sizeof(pli0), &s), ==, -1);
	const uint8_t fir_half[] = { 0x84, 206, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };
	g_assert_cmpint(parse(fir_half, sizeof(fir_half), &s), ==, -1);
	g_assert_cmpint(s.pli + s.fir, ==, 0);
	/* a good RR, then garbage: the RR is visited, then -1 */
	memcpy(b, good, 32);
	memset(b + 32, 0xFF, 8);
	g_assert_cmpint(parse(b, 40, &s), ==, -1);
	g_assert_cmpint(s.reports, ==, 1);
	/* a good RR, then 3 stray bytes */
	g_assert_cmpint(parse(b, 35, &s), ==, -1);
	g_assert_cmpint(s.reports, ==, 2);
	/* two good RRs: every prefix is -1 except at the packet boundaries */
	memcpy(b, good, 32);
	memcpy(b + 32, good, 32);
	for(size_t n = 0; n <= 64; n++) {
		int r = parse(b, n, &s);
		g_assert_cmpint(r, ==, n == 32 ? 1 : n == 64 ? 2 : -1);
	}
	/* a valid padded RR: 4 bytes of padding after the block */
	uint8_t p[36];
	memcpy(p, good, 32);
	p[0] = 0xA1;
	p[3] = 8;
	memset(p + 32, 0, 4);
	p[35] = 4;
	int before = s.reports;
	g_assert_cmpint(parse(p, sizeof(p), &s), ==, 1);
	g_assert_cmpint(s.reports, ==, before + 1);
}

static void test_down_loss_windows(void) {
	meter_down d;
	meter_down_init(&d, false);
	seen s = { .down = &d, .now_ntp = meter_ntp_from_us(1700000000LL * S) };
	uint8_t b[32];
	meter_window w;
	/* the first report: no reference, so the fraction: 5/256 = 1.953125 % */
	parse(b, rr(b, SSRC_A, 5, 10, 1000, 0, 0, 0), &s);
	meter_down_window(&d, 1 * S, &w);
	g_assert_cmpint(w.reports, ==, 1);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 5 * 100.0 / 256, 1e-12);
	g_assert_cmpint(w.expected, ==, 0);
	/* two reports in the next window: deltas from the reference
	 * (1000, 10) to the last (1200, 30): 20 of 200 = 10 % */
	parse(b, rr(b, SSRC_A, 20, 20, 1100, 0, 0, 0), &s);
	parse(b, rr(b, SSRC_A, 25, 30, 1200, 0, 0, 0), &s);
	meter_down_window(&d, 2 * S, &w);
	g_assert_cmpint(w.reports, ==, 2);
	g_assert_cmpint(w.expected, ==, 200);
	g_assert_cmpint(w.lost, ==, 20);
	g_assert_cmpint(w.packets, ==, 180);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 10.0, 1e-12);
	/* no report: carried */
	meter_down_window(&d, 3 * S, &w);
	g_assert_cmpint(w.reports, ==, 0);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 10.0, 1e-12);
	g_assert_cmpint(w.start_us, ==, 2 * S);
	/* a retransmission lowers the cumulative lost: clamped at 0 */
	parse(b, rr(b, SSRC_A, 0, 25, 1300, 0, 0, 0), &s);
	meter_down_window(&d, 4 * S, &w);
	g_assert_cmpint(w.lost, ==, -5);
	g_assert_cmpfloat(w.loss_pct, ==, 0.0);
	/* another source: no delta across it, the fraction instead */
	parse(b, rr(b, SSRC_B, 128, 0, 5, 0, 0, 0), &s);
	meter_down_window(&d, 5 * S, &w);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 50.0, 1e-12);
	g_assert_cmpint(w.expected, ==, 0);
	/* ext highest seq did not advance: the fraction */
	parse(b, rr(b, SSRC_B, 64, 3, 5, 0, 0, 0), &s);
	meter_down_window(&d, 6 * S, &w);
	g_assert_cmpfloat_with_epsilon(w.loss_pct, 25.0, 1e-12);
}

/* --- the storage form ------------------------------------------------------------------- */

static void test_format(void) {
	meter_up m;
	meter_up_init(&m, true, 90000);
	uint16_t seq = 0;
	for(int f = 0; f < 30; f++)
		frame(&m, &seq, (uint32_t)f * 3000, 2, 1000, f * 33333);
	meter_window w;
	meter_up_window(&m, 1 * S, &w);
	char buf[METER_WINDOW_JSON_MAX];
	int n = meter_window_format(&w, buf, sizeof(buf));
	g_assert_cmpint(n, ==, (int)strlen(buf));
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	g_assert_nonnull(j);
	g_assert_cmpstr(json_string_value(json_object_get(j, "dir")), ==, "up");
	g_assert_cmpstr(json_string_value(json_object_get(j, "media")), ==, "video");
	g_assert_cmpint(json_integer_value(json_object_get(j, "frames")), ==, 30);
	g_assert_cmpint(json_integer_value(json_object_get(j, "bytes")), ==, 60000);
	g_assert_cmpfloat_with_epsilon(json_number_value(json_object_get(j, "bitrate_kbps")), 480.0, 0.05);
	g_assert_true(json_is_real(json_object_get(j, "jitter_ms")));
	json_decref(j);
	/* too small: -1 and an empty string */
	g_assert_cmpint(meter_window_format(&w, buf, 20), ==, -1);
	g_assert_cmpstr(buf, ==, "");
	g_assert_cmpint(meter_window_format(&w, buf, 0), ==, -1);
	/* down, audio, nothing known yet: nulls */
	meter_down d;
	meter_down_init(&d, false);
	meter_down_window(&d, 1 * S, &w);
	n = meter_window_format(&w, buf, sizeof(buf));
	g_assert_cmpint(n, >, 0);
	j = json_loads(buf, 0, &err);
	g_assert_nonnull(j);
	g_assert_cmpstr(json_string_value(json_object_get(j, "dir")), ==, "down");
	g_assert_true(json_is_null(json_object_get(j, "rtt_ms")));
	g_assert_true(json_is_null(json_object_get(j, "loss_pct")));
	g_assert_null(json_object_get(j, "pli"));    /* video only */
	g_assert_null(json_object_get(j, "fps"));    /* up only */
	json_decref(j);
	/* the worst case fits METER_WINDOW_JSON_MAX */
	memset(&w, 0, sizeof(w));
	w.video = true;
	w.start_us = w.end_us = INT64_MIN;
	w.packets = w.expected = w.lost = w.bytes = w.frames = w.freezes = INT64_MIN;
	w.freeze_ms = w.stalls = w.stall_ms = w.max_gap_ms = INT64_MIN;
	w.duplicates = w.reordered = w.malformed = w.reports = w.pli = w.fir = w.nack = INT64_MIN;
	w.loss_pct = w.jitter_ms = w.bitrate_kbps = w.fps = w.rtt_ms = 1e299;
	w.remb_bps = UINT64_MAX;
	g_assert_cmpint(meter_window_format(&w, buf, sizeof(buf)), >, 0);
	w.dir = METER_DOWN;
	g_assert_cmpint(meter_window_format(&w, buf, sizeof(buf)), >, 0);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/meter/up/rtp-header", test_rtp_header);
	g_test_add_func("/meter/up/frozen-for", test_frozen_for);
	g_test_add_func("/meter/up/probation-in-order", test_probation_and_in_order);
	g_test_add_func("/meter/up/wrap", test_wrap);
	g_test_add_func("/meter/up/reorder", test_reorder);
	g_test_add_func("/meter/up/duplicates", test_duplicates);
	g_test_add_func("/meter/up/loss-pattern", test_loss_pattern);
	g_test_add_func("/meter/up/late-negative-loss", test_late_packet_negative_loss);
	g_test_add_func("/meter/up/large-jump-resync", test_large_jump_resync);
	g_test_add_func("/meter/up/ssrc-change", test_ssrc_change);
	g_test_add_func("/meter/up/jitter-by-hand", test_jitter_by_hand);
	g_test_add_func("/meter/up/jitter-video-frames", test_jitter_video_same_timestamp);
	g_test_add_func("/meter/up/freeze-30fps", test_freeze_30fps);
	g_test_add_func("/meter/up/no-freeze-15fps", test_no_freeze_15fps);
	g_test_add_func("/meter/up/freeze-threshold", test_freeze_threshold);
	g_test_add_func("/meter/up/freeze-needs-history", test_freeze_needs_history);
	g_test_add_func("/meter/up/frames-across-sources", test_frames_across_sources);
	g_test_add_func("/meter/up/stall-by-window", test_stall_detected_by_window);
	g_test_add_func("/meter/up/stall-by-packet", test_stall_detected_by_packet);
	g_test_add_func("/meter/up/bitrate-fps", test_bitrate_fps);
	g_test_add_func("/meter/ntp", test_ntp);
	g_test_add_func("/meter/rtcp/rtt-from-rr", test_rtt_from_rr);
	g_test_add_func("/meter/rtcp/report-fields-sr", test_report_fields_and_sr);
	g_test_add_func("/meter/rtcp/remb", test_remb);
	g_test_add_func("/meter/rtcp/feedback-counts", test_feedback_counts);
	g_test_add_func("/meter/rtcp/malformed", test_malformed_rtcp);
	g_test_add_func("/meter/down/loss-windows", test_down_loss_windows);
	g_test_add_func("/meter/format", test_format);
	return g_test_run();
}
