/* Unit tests for quality.c: sums of meter windows, 5 s buckets and the
 * context ring, incidents with hysteresis, and the JSON summaries with the
 * E-model path figures, on hand-built windows with hand-checked numbers.
 * Visits live on the heap so the sanitizers see any write past their end. */
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include "quality.h"
#include "emodel.h"

#define MS 1000LL
#define S 1000000LL
#define T0 (1000LL * S)

/* --- helpers -------------------------------------------------------------------------- */

/* A 1 s window starting at `start`: nothing counted, every estimate unknown. */
static meter_window mk(meter_dir dir, bool video, int64_t start) {
	meter_window w;
	memset(&w, 0, sizeof(w));
	w.dir = dir;
	w.video = video;
	w.start_us = start;
	w.end_us = start + S;
	w.loss_pct = -1;
	w.jitter_ms = -1;
	w.rtt_ms = -1;
	w.bitrate_kbps = 0;
	w.fps = 0;
	return w;
}

/* An up window with packets counted: expected, lost, and loss % as the meter
 * would give them. */
static meter_window up(bool video, int64_t start, int64_t expected, int64_t lost) {
	meter_window w = mk(METER_UP, video, start);
	w.expected = expected;
	w.lost = lost;
	w.packets = expected - lost;
	w.loss_pct = expected > 0 ? (lost > 0 ? 100.0 * (double)lost / (double)expected : 0) : -1;
	w.max_gap_ms = 20;
	return w;
}

/* A down window: loss % (carried or computed), jitter and RTT; no deltas. */
static meter_window down(bool video, int64_t start, double loss_pct, double jitter_ms, double rtt_ms) {
	meter_window w = mk(METER_DOWN, video, start);
	w.loss_pct = loss_pct;
	w.jitter_ms = jitter_ms;
	w.rtt_ms = rtt_ms;
	return w;
}

static quality_visit *new_visit(int context_s) {
	quality_visit *q = g_malloc(sizeof(*q));
	g_assert_cmpint(quality_visit_init(q, context_s), ==, 0);
	return q;
}

static void free_visit(quality_visit *q) {
	quality_visit_free(q);
	g_free(q);
}

/* Parse a JSON text (freeing it); fails the test if it is not JSON. */
static json_t *parse(char *text) {
	g_assert_nonnull(text);
	json_error_t err;
	json_t *o = json_loads(text, 0, &err);
	if(!o)
		g_error("not JSON (%s): %s", err.text, text);
	free(text);
	return o;
}

/* The number at a path of keys (NULL-terminated); fails if absent or not a number. */
static double num_at(json_t *o, ...) {
	va_list ap;
	va_start(ap, o);
	const char *k;
	while((k = va_arg(ap, const char *)) != NULL) {
		json_t *next = json_object_get(o, k);
		if(!next)
			g_error("no key %s", k);
		o = next;
	}
	va_end(ap);
	if(!json_is_number(o))
		g_error("not a number");
	return json_number_value(o);
}

static json_t *at(json_t *o, ...) {
	va_list ap;
	va_start(ap, o);
	const char *k;
	while(o && (k = va_arg(ap, const char *)) != NULL)
		o = json_object_get(o, k);
	va_end(ap);
	return o;
}

static int take_all(quality_visit *q, quality_incident *out, int max) {
	return quality_take_incidents(q, out, max);
}

/* --- sums -------------------------------------------------------------------------------- */

static void test_sum_loss_jitter_rates(void) {
	quality_sum s;
	memset(&s, 0, sizeof(s));
	/* empty: unknown, and no rate */
	g_assert_cmpfloat(quality_sum_loss_pct(&s), ==, -1);
	g_assert_cmpfloat(quality_sum_jitter_ms(&s), ==, -1);
	g_assert_cmpfloat(quality_sum_rtt_ms(&s), ==, -1);
	g_assert_cmpfloat(quality_sum_bitrate_kbps(&s), ==, 0);
	g_assert_cmpfloat(quality_sum_fps(&s), ==, 0);

	/* up video: 100/5 and 100/15 lost, then a window that expected nothing */
	meter_window w[3] = { up(true, T0, 100, 5), up(true, T0 + S, 100, 15), up(true, T0 + 2 * S, 0, 0) };
	w[0].jitter_ms = 10;
	w[1].jitter_ms = -1;   /* unknown: left out of the mean */
	w[2].jitter_ms = 20;
	w[0].bytes = 1000; w[1].bytes = 2000; w[2].bytes = 3000;
	w[0].frames = 30; w[1].frames = 30; w[2].frames = 0;
	w[0].rtt_ms = 500;     /* an up window's RTT is not a measurement */
	for(int i = 0; i < 3; i++)
		quality_sum_add(&s, &w[i]);
	g_assert_cmpint(s.windows, ==, 3);
	g_assert_cmpint(s.start_us, ==, T0);
	g_assert_cmpint(s.end_us, ==, T0 + 3 * S);
	g_assert_cmpint(s.dur_us, ==, 3 * S);
	g_assert_cmpint(s.expected, ==, 200);
	g_assert_cmpint(s.lost, ==, 20);
	g_assert_cmpint(s.packets, ==, 180);
	g_assert_cmpint(s.counted_windows, ==, 2);
	/* 20 / 200, not the mean of 5 % and 15 % and 0 */
	g_assert_cmpfloat_with_epsilon(quality_sum_loss_pct(&s), 10.0, 1e-9);
	g_assert_cmpfloat_with_epsilon(quality_sum_jitter_ms(&s), 15.0, 1e-9);
	g_assert_cmpfloat(s.jitter_max, ==, 20);
	g_assert_cmpfloat(quality_sum_rtt_ms(&s), ==, -1);
	/* 6000 bytes in 3 s: 16 kbit/s; 60 frames in 3 s */
	g_assert_cmpfloat_with_epsilon(quality_sum_bitrate_kbps(&s), 16.0, 1e-9);
	g_assert_cmpfloat_with_epsilon(quality_sum_fps(&s), 20.0, 1e-9);

	/* uneven counts: 1 of 10 and 9 of 90 is 10 %, 1 of 10 and 0 of 90 is 1 % */
	quality_sum u;
	memset(&u, 0, sizeof(u));
	meter_window a = up(false, T0, 10, 1), b = up(false, T0 + S, 90, 0);
	quality_sum_add(&u, &a);
	quality_sum_add(&u, &b);
	g_assert_cmpfloat_with_epsilon(quality_sum_loss_pct(&u), 1.0, 1e-9);

	/* a late packet (negative lost) does not give back loss of the window */
	quality_sum n;
	memset(&n, 0, sizeof(n));
	meter_window l1 = up(false, T0, 50, 5), l2 = up(false, T0 + S, 50, -2);
	quality_sum_add(&n, &l1);
	quality_sum_add(&n, &l2);
	g_assert_cmpint(n.lost, ==, 5);
	g_assert_cmpfloat_with_epsilon(quality_sum_loss_pct(&n), 5.0, 1e-9);
}

static void test_sum_down_fallback(void) {
	/* down windows without deltas: the mean of their loss %, RTT mean
	 * without the unknown, and its maximum */
	quality_sum s;
	memset(&s, 0, sizeof(s));
	meter_window w[4] = {
		down(false, T0, 2, 4, 40), down(false, T0 + S, 4, -1, -1),
		down(false, T0 + 2 * S, -1, 8, 80), down(false, T0 + 3 * S, 6, 6, 60),
	};
	for(int i = 0; i < 4; i++)
		quality_sum_add(&s, &w[i]);
	g_assert_cmpint(s.expected, ==, 0);
	g_assert_cmpint(s.counted_windows, ==, 0);
	g_assert_cmpfloat_with_epsilon(quality_sum_loss_pct(&s), 4.0, 1e-9);
	g_assert_cmpfloat_with_epsilon(quality_sum_jitter_ms(&s), 6.0, 1e-9);
	g_assert_cmpfloat_with_epsilon(quality_sum_rtt_ms(&s), 60.0, 1e-9);
	g_assert_cmpfloat(s.rtt_max, ==, 80);
	g_assert_cmpfloat(s.jitter_max, ==, 8);

	/* once a window gave deltas, they decide: 10 of 50 = 20 %, whatever the
	 * carried 50 % of the others */
	meter_window d = down(false, T0 + 4 * S, 20, 5, 50);
	d.expected = 50;
	d.lost = 10;
	d.packets = 40;
	quality_sum_add(&s, &d);
	meter_window c = down(false, T0 + 5 * S, 50, 5, 50);
	quality_sum_add(&s, &c);
	g_assert_cmpfloat_with_epsilon(quality_sum_loss_pct(&s), 20.0, 1e-9);
}

static void test_sum_merge(void) {
	/* integer-valued estimates, so the float sums are exact in any order */
	meter_window w[5];
	for(int i = 0; i < 5; i++) {
		w[i] = up(true, T0 + (4 - i) * S, 100, i);
		w[i].jitter_ms = i == 2 ? -1 : 3 + i;
		w[i].bytes = 1000 * (i + 1);
		w[i].frames = 25 + i;
		w[i].freezes = i == 3;
		w[i].freeze_ms = i == 3 ? 400 : 0;
		w[i].stalls = i == 1;
		w[i].stall_ms = i == 1 ? 2100 : 0;
		w[i].pli = i;
		w[i].fir = 1;
		w[i].nack = 2 * i;
	}
	meter_window d[3] = { down(true, T0, 3, 2, 40), down(true, T0 + S, -1, -1, 90), down(true, T0 + 2 * S, 1, 7, -1) };
	quality_sum all, a, b, empty;
	memset(&all, 0, sizeof(all));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&empty, 0, sizeof(empty));
	for(int i = 0; i < 5; i++)
		quality_sum_add(&all, &w[i]);
	for(int i = 0; i < 3; i++)
		quality_sum_add(&all, &d[i]);
	for(int i = 0; i < 2; i++)
		quality_sum_add(&a, &w[i]);
	for(int i = 2; i < 5; i++)
		quality_sum_add(&b, &w[i]);
	for(int i = 0; i < 3; i++)
		quality_sum_add(&b, &d[i]);
	/* b starts earlier than a: the merge keeps the earliest start */
	quality_sum_merge(&a, &b);
	g_assert_cmpint(a.start_us, ==, T0);
	g_assert_cmpint(a.end_us, ==, T0 + 5 * S);
	g_assert_cmpint(memcmp(&a, &all, sizeof(a)), ==, 0);
	/* merging nothing changes nothing; into nothing copies */
	quality_sum_merge(&a, &empty);
	g_assert_cmpint(memcmp(&a, &all, sizeof(a)), ==, 0);
	quality_sum_merge(&empty, &all);
	g_assert_cmpint(memcmp(&empty, &all, sizeof(a)), ==, 0);
}

/* --- buckets and the ring ---------------------------------------------------------------- */

static void test_roll_buckets(void) {
	quality_visit *q = new_visit(30);
	quality_sum bucket[Q_LEGS][Q_MEDIA];
	/* nothing fed: nothing to close, even forced */
	g_assert_false(quality_roll(q, T0, false, NULL));
	g_assert_false(quality_roll(q, T0 + 60 * S, true, bucket));
	for(int i = 0; i < 5; i++) {
		meter_window w = up(false, T0 + i * S, 50, 0);
		quality_feed(q, Q_CLIENT_UP, &w);
		meter_window v = down(true, T0 + i * S, 0, 1, 30);
		quality_feed(q, Q_THERAPIST_DOWN, &v);
		/* the 5 s have not passed yet */
		g_assert_false(quality_roll(q, T0 + (i + 1) * S - 1, false, bucket));
	}
	g_assert_cmpint(q->n, ==, 0);
	memset(bucket, 0xff, sizeof(bucket));
	g_assert_true(quality_roll(q, T0 + 5 * S, false, bucket));
	g_assert_cmpint(q->n, ==, 1);
	g_assert_cmpint(bucket[Q_CLIENT_UP][0].windows, ==, 5);
	g_assert_cmpint(bucket[Q_CLIENT_UP][0].expected, ==, 250);
	g_assert_cmpint(bucket[Q_CLIENT_UP][1].windows, ==, 0);
	g_assert_cmpint(bucket[Q_THERAPIST_DOWN][1].windows, ==, 5);
	g_assert_cmpint(bucket[Q_CLIENT_DOWN][0].windows, ==, 0);
	/* the bucket is emptied: nothing more to close */
	g_assert_false(quality_roll(q, T0 + 10 * S, false, bucket));
	g_assert_false(quality_roll(q, T0 + 10 * S, true, bucket));
	/* a forced roll closes a partial bucket */
	meter_window w = up(false, T0 + 5 * S, 7, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_false(quality_roll(q, T0 + 6 * S, false, NULL));
	g_assert_true(quality_roll(q, T0 + 6 * S, true, bucket));
	g_assert_cmpint(bucket[Q_CLIENT_UP][0].windows, ==, 1);
	g_assert_cmpint(bucket[Q_CLIENT_UP][0].expected, ==, 7);
	g_assert_cmpint(q->n, ==, 2);
	/* the totals keep everything */
	g_assert_cmpint(q->total[Q_CLIENT_UP][0].windows, ==, 6);
	g_assert_cmpint(q->total[Q_CLIENT_UP][0].expected, ==, 257);
	free_visit(q);
}

/* One bucket of 5 windows: client_up audio expecting `per` packets a window,
 * client_down audio with RTT 50. */
static void feed_bucket(quality_visit *q, int64_t start, int64_t per) {
	for(int i = 0; i < 5; i++) {
		meter_window w = up(false, start + i * S, per, 0);
		quality_feed(q, Q_CLIENT_UP, &w);
		meter_window d = down(false, start + i * S, 0, 2, 50);
		quality_feed(q, Q_CLIENT_DOWN, &d);
	}
}

static void test_ring_and_context(void) {
	/* 10 s of context: 2 buckets and one spare */
	quality_visit *q = new_visit(10);
	g_assert_cmpint(q->cap, ==, 3);
	/* 6 buckets (longer than the ring), bucket k expects 10 (k + 1) a window */
	for(int k = 0; k < 6; k++) {
		feed_bucket(q, T0 + k * 5 * S, 10 * (k + 1));
		g_assert_true(quality_roll(q, T0 + (k + 1) * 5 * S, false, NULL));
		g_assert_cmpint(q->n, ==, k + 1 < 3 ? k + 1 : 3);
	}
	/* wrapped: the oldest kept is bucket 3, then 4 and 5 */
	g_assert_cmpint(q->n, ==, 3);
	for(int j = 0; j < 3; j++) {
		int slot = (q->head + j) % q->cap;
		const quality_sum *b = &q->ring[(size_t)slot * Q_LEGS * Q_MEDIA];
		g_assert_cmpint(b[Q_CLIENT_UP * Q_MEDIA + 0].expected, ==, 5 * 10 * (3 + j + 1));
		g_assert_cmpint(b[Q_CLIENT_DOWN * Q_MEDIA + 0].windows, ==, 5);
	}
	/* the current bucket: 2 windows of 1000 */
	for(int i = 0; i < 2; i++) {
		meter_window w = up(false, T0 + 30 * S + i * S, 1000, 0);
		quality_feed(q, Q_CLIENT_UP, &w);
	}
	/* 10 s: the current bucket and the last 2 (buckets 4 and 5) */
	json_t *o = parse(quality_context_json(q, 10));
	g_assert_cmpfloat(num_at(o, "window_s", NULL), ==, 10);
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "expected", NULL), ==, 2000 + 250 + 300);
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "packets", NULL), ==, 2000 + 250 + 300);
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "seconds", NULL), ==, 12);
	g_assert_cmpfloat(num_at(o, "legs", "client_down", "audio", "seconds", NULL), ==, 10);
	g_assert_cmpfloat(num_at(o, "measured_s", NULL), ==, 12);
	json_decref(o);
	/* 5 s: the current bucket and the last one */
	o = parse(quality_context_json(q, 5));
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "expected", NULL), ==, 2000 + 300);
	json_decref(o);
	/* more than the ring holds: what it holds */
	o = parse(quality_context_json(q, 1200));
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "expected", NULL), ==, 2000 + 200 + 250 + 300);
	json_decref(o);
	/* 0: the whole visit, beyond the ring */
	o = parse(quality_context_json(q, 0));
	g_assert_cmpfloat(num_at(o, "window_s", NULL), ==, 0);
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "expected", NULL), ==, 2000 + 5 * (10 + 20 + 30 + 40 + 50 + 60));
	g_assert_cmpfloat(num_at(o, "legs", "client_up", "audio", "seconds", NULL), ==, 32);
	g_assert_cmpfloat(num_at(o, "legs", "client_down", "audio", "seconds", NULL), ==, 30);
	g_assert_cmpfloat(num_at(o, "measured_s", NULL), ==, 32);
	json_decref(o);
	free_visit(q);

	/* the ring's size follows context_s, within bounds */
	q = new_visit(1200);
	g_assert_cmpint(q->cap, ==, Q_RING_MAX);
	free_visit(q);
	q = new_visit(0);
	g_assert_cmpint(q->context_s, ==, 1);
	g_assert_cmpint(q->cap, ==, 2);
	free_visit(q);
}

/* --- incidents ------------------------------------------------------------------------ */

static void test_incident_freeze(void) {
	quality_visit *q = new_visit(60);
	meter_window w = up(true, T0, 30, 0);
	w.frames = 20;
	w.freezes = 1;
	w.freeze_ms = 600;
	quality_feed(q, Q_THERAPIST_UP, &w);
	quality_incident inc[4];
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].kind, ==, QI_FREEZE);
	g_assert_cmpint(inc[0].leg, ==, Q_THERAPIST_UP);
	g_assert_cmpint(inc[0].medium, ==, 1);
	g_assert_cmpint(inc[0].started_us, ==, T0 + S - 600 * MS);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + S);
	g_assert_cmpfloat(inc[0].peak, ==, 600);
	/* taken: nothing left; a window without freezes adds none */
	g_assert_cmpint(take_all(q, inc, 4), ==, 0);
	w = up(true, T0 + S, 30, 0);
	quality_feed(q, Q_THERAPIST_UP, &w);
	g_assert_cmpint(take_all(q, inc, 4), ==, 0);
	g_assert_cmpint(q->incidents_total, ==, 1);
	free_visit(q);
}

static void test_incident_loss_burst(void) {
	quality_visit *q = new_visit(60);
	quality_incident inc[4];
	/* loss % per window; 9.99 does not open, 10 does; 3.0 is not calm */
	const double loss[] = { 2, 9.99, 10, 25, 1, 2.5, 3.0, 0, 0 };
	int n = (int)G_N_ELEMENTS(loss);
	for(int i = 0; i < n; i++) {
		meter_window w = up(false, T0 + i * S, 10000, (int64_t)(loss[i] * 100 + 0.5));
		g_assert_cmpfloat_with_epsilon(w.loss_pct, loss[i], 1e-9);
		quality_feed(q, Q_CLIENT_UP, &w);
		/* open from window 2 on, through 2 calm windows, a 3.0 % one, and 2 more */
		g_assert_cmpint(take_all(q, inc, 4), ==, 0);
		g_assert_cmpint(q->track[Q_CLIENT_UP][0].loss_open, ==, i >= 2);
	}
	/* the 3rd calm window in a row closes it at its end */
	meter_window w = up(false, T0 + n * S, 10000, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].kind, ==, QI_LOSS_BURST);
	g_assert_cmpint(inc[0].leg, ==, Q_CLIENT_UP);
	g_assert_cmpint(inc[0].medium, ==, 0);
	g_assert_cmpint(inc[0].started_us, ==, T0 + 2 * S);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + (n + 1) * S);
	g_assert_cmpfloat_with_epsilon(inc[0].peak, 25, 1e-9);
	g_assert_false(q->track[Q_CLIENT_UP][0].loss_open);
	/* a window that expected nothing (loss unknown) neither opens nor calms */
	w = up(false, T0 + 20 * S, 100, 50);
	quality_feed(q, Q_CLIENT_UP, &w);
	for(int i = 0; i < 5; i++) {
		w = up(false, T0 + (21 + i) * S, 0, 0);
		quality_feed(q, Q_CLIENT_UP, &w);
	}
	g_assert_true(q->track[Q_CLIENT_UP][0].loss_open);
	g_assert_cmpint(take_all(q, inc, 4), ==, 0);
	/* the down leg's carried loss counts the same */
	for(int i = 0; i < 2; i++) {
		meter_window d = down(true, T0 + i * S, 12, 1, 40);
		quality_feed(q, Q_CLIENT_DOWN, &d);
	}
	g_assert_true(q->track[Q_CLIENT_DOWN][1].loss_open);
	free_visit(q);
}

static void test_incident_high_rtt(void) {
	quality_visit *q = new_visit(60);
	quality_incident inc[4];
	/* an up window never opens one */
	meter_window u = up(false, T0, 50, 0);
	u.rtt_ms = 900;
	quality_feed(q, Q_CLIENT_UP, &u);
	g_assert_false(q->track[Q_CLIENT_UP][0].rtt_open);
	/* 399 no; 400 opens; -1 (unknown) neither calms nor resets; 300 is not calm */
	const double rtt[] = { 399, 400, 650, 120, -1, 299, 300, 100, 100 };
	int n = (int)G_N_ELEMENTS(rtt);
	for(int i = 0; i < n; i++) {
		meter_window w = down(false, T0 + i * S, 0, 2, rtt[i]);
		quality_feed(q, Q_THERAPIST_DOWN, &w);
		g_assert_cmpint(take_all(q, inc, 4), ==, 0);
		g_assert_cmpint(q->track[Q_THERAPIST_DOWN][0].rtt_open, ==, i >= 1);
	}
	meter_window w = down(false, T0 + n * S, 0, 2, 299.9);
	quality_feed(q, Q_THERAPIST_DOWN, &w);
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].kind, ==, QI_HIGH_RTT);
	g_assert_cmpint(inc[0].leg, ==, Q_THERAPIST_DOWN);
	g_assert_cmpint(inc[0].medium, ==, 0);
	g_assert_cmpint(inc[0].started_us, ==, T0 + S);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + (n + 1) * S);
	g_assert_cmpfloat(inc[0].peak, ==, 650);
	g_assert_false(q->track[Q_THERAPIST_DOWN][0].rtt_open);
	free_visit(q);
}

static void test_incident_stall(void) {
	quality_visit *q = new_visit(60);
	quality_incident inc[4];
	/* the windows meter.c gives: 20 ms audio until T0 + 0.98 s, silence,
	 * the stall detected by the window at T0 + 3 s, media back at T0 + 4.5 s */
	meter_window w = up(false, T0, 50, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	w = mk(METER_UP, false, T0 + S);
	w.max_gap_ms = 1020;
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_false(q->track[Q_CLIENT_UP][0].stall_open);
	w = mk(METER_UP, false, T0 + 2 * S);
	w.stalls = 1;
	w.stall_ms = 2020;
	w.max_gap_ms = 2020;
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_true(q->track[Q_CLIENT_UP][0].stall_open);
	w = mk(METER_UP, false, T0 + 3 * S);
	w.stall_ms = 1000;
	w.max_gap_ms = 3020;
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_true(q->track[Q_CLIENT_UP][0].stall_open);
	g_assert_cmpint(take_all(q, inc, 4), ==, 0);
	/* media returns in this window: the gap that ended was 3.52 s */
	w = up(false, T0 + 4 * S, 25, 0);
	w.stall_ms = 500;
	w.max_gap_ms = 3520;
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_false(q->track[Q_CLIENT_UP][0].stall_open);
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].kind, ==, QI_STALL);
	g_assert_cmpint(inc[0].leg, ==, Q_CLIENT_UP);
	g_assert_cmpint(inc[0].medium, ==, 0);
	g_assert_cmpint(inc[0].started_us, ==, T0 + 980 * MS);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + 4500 * MS);
	g_assert_cmpfloat_with_epsilon(inc[0].peak, 3520, 1e-9);
	/* flowing media: nothing more */
	w = up(false, T0 + 5 * S, 50, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_cmpint(take_all(q, inc, 4), ==, 0);

	/* a stall found by the packet ending it (a late timer): opened and
	 * closed by one window, as long as the gap */
	w = up(true, T0 + 6 * S, 40, 0);
	w.stalls = 1;
	w.stall_ms = 2300;
	w.max_gap_ms = 2300;
	quality_feed(q, Q_CLIENT_UP, &w);
	g_assert_false(q->track[Q_CLIENT_UP][1].stall_open);
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].kind, ==, QI_STALL);
	g_assert_cmpint(inc[0].medium, ==, 1);
	g_assert_cmpint(inc[0].ended_us - inc[0].started_us, ==, 2300 * MS);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + 7 * S);

	/* media back for a moment, then silent again: two stalls, not one */
	w = mk(METER_UP, false, T0 + 10 * S);
	w.stalls = 1;
	w.stall_ms = 2000;
	w.max_gap_ms = 2000;
	quality_feed(q, Q_THERAPIST_UP, &w);
	w = up(false, T0 + 11 * S, 1, 0);
	w.stall_ms = 200;
	w.max_gap_ms = 2200;            /* one packet at T0 + 11.2 s, silence after */
	quality_feed(q, Q_THERAPIST_UP, &w);
	g_assert_cmpint(take_all(q, inc, 4), ==, 1);
	g_assert_cmpint(inc[0].started_us, ==, T0 + 9 * S);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + 11200 * MS);
	w = mk(METER_UP, false, T0 + 12 * S);
	w.max_gap_ms = 1800;
	quality_feed(q, Q_THERAPIST_UP, &w);
	w = mk(METER_UP, false, T0 + 13 * S);
	w.stalls = 1;
	w.stall_ms = 2800;
	w.max_gap_ms = 2800;
	quality_feed(q, Q_THERAPIST_UP, &w);
	g_assert_true(q->track[Q_THERAPIST_UP][0].stall_open);
	g_assert_cmpint(q->track[Q_THERAPIST_UP][0].stall_start, ==, T0 + 11200 * MS);

	/* down windows do not stall (they count no packets) */
	meter_window d = down(false, T0, 0, 1, 40);
	d.stall_ms = 3000;
	d.stalls = 1;
	quality_feed(q, Q_CLIENT_DOWN, &d);
	g_assert_false(q->track[Q_CLIENT_DOWN][0].stall_open);
	free_visit(q);
}

static void test_incident_close_all_and_note(void) {
	quality_visit *q = new_visit(60);
	quality_incident inc[8];
	/* open: a loss burst (video up), a high RTT (audio down), a stall (audio up) */
	meter_window w = up(true, T0, 100, 40);
	quality_feed(q, Q_CLIENT_UP, &w);
	meter_window d = down(false, T0 + S, 0, 1, 700);
	quality_feed(q, Q_CLIENT_DOWN, &d);
	meter_window s = mk(METER_UP, false, T0 + 2 * S);
	s.stalls = 1;
	s.stall_ms = 2500;
	s.max_gap_ms = 2500;
	quality_feed(q, Q_THERAPIST_UP, &s);
	g_assert_cmpint(take_all(q, inc, 8), ==, 0);
	quality_close_all(q, T0 + 10 * S);
	int n = take_all(q, inc, 8);
	g_assert_cmpint(n, ==, 3);
	bool seen[3] = { false, false, false };
	for(int i = 0; i < n; i++) {
		g_assert_cmpint(inc[i].ended_us, ==, T0 + 10 * S);
		switch(inc[i].kind) {
			case QI_LOSS_BURST:
				g_assert_cmpint(inc[i].leg, ==, Q_CLIENT_UP);
				g_assert_cmpint(inc[i].medium, ==, 1);
				g_assert_cmpint(inc[i].started_us, ==, T0);
				g_assert_cmpfloat(inc[i].peak, ==, 40);
				seen[0] = true;
				break;
			case QI_HIGH_RTT:
				g_assert_cmpint(inc[i].leg, ==, Q_CLIENT_DOWN);
				g_assert_cmpint(inc[i].medium, ==, 0);
				g_assert_cmpint(inc[i].started_us, ==, T0 + S);
				g_assert_cmpfloat(inc[i].peak, ==, 700);
				seen[1] = true;
				break;
			case QI_STALL:
				g_assert_cmpint(inc[i].leg, ==, Q_THERAPIST_UP);
				g_assert_cmpint(inc[i].started_us, ==, T0 + 3 * S - 2500 * MS);
				g_assert_cmpfloat_with_epsilon(inc[i].peak, 10000 - 500, 1e-9);
				seen[2] = true;
				break;
			default:
				g_assert_not_reached();
		}
	}
	g_assert_true(seen[0] && seen[1] && seen[2]);
	/* closed: a second close_all has nothing to close */
	quality_close_all(q, T0 + 11 * S);
	g_assert_cmpint(take_all(q, inc, 8), ==, 0);

	/* notes from Janus callbacks */
	quality_note(q, Q_THERAPIST_UP, -1, QI_RECONNECT, T0 + 20 * S, T0 + 23500 * MS);
	quality_note(q, Q_CLIENT_DOWN, 1, QI_SLOW_LINK, T0 + 30 * S, T0 + 30 * S);
	g_assert_cmpint(take_all(q, inc, 8), ==, 2);
	g_assert_cmpint(inc[0].kind, ==, QI_RECONNECT);
	g_assert_cmpint(inc[0].leg, ==, Q_THERAPIST_UP);
	g_assert_cmpint(inc[0].medium, ==, -1);
	g_assert_cmpint(inc[0].started_us, ==, T0 + 20 * S);
	g_assert_cmpint(inc[0].ended_us, ==, T0 + 23500 * MS);
	g_assert_cmpfloat_with_epsilon(inc[0].peak, 3500, 1e-9);
	g_assert_cmpint(inc[1].kind, ==, QI_SLOW_LINK);
	g_assert_cmpint(inc[1].leg, ==, Q_CLIENT_DOWN);
	g_assert_cmpint(inc[1].medium, ==, 1);
	g_assert_cmpint(inc[1].ended_us, ==, T0 + 30 * S);
	g_assert_cmpint(q->incidents_total, ==, 5);
	free_visit(q);
}

static void test_incident_overflow(void) {
	quality_visit *q = new_visit(60);
	const int extra = 6;
	for(int i = 0; i < Q_INCIDENTS_MAX + extra; i++)
		quality_note(q, Q_CLIENT_UP, -1, QI_RECONNECT, T0 + i, T0 + i + 1);
	g_assert_cmpint(q->n_done, ==, Q_INCIDENTS_MAX);
	g_assert_cmpint(q->dropped_incidents, ==, extra);
	g_assert_cmpint(q->incidents_total, ==, Q_INCIDENTS_MAX + extra);
	/* drained in order, in pieces; a bad max takes nothing */
	quality_incident *out = g_new0(quality_incident, Q_INCIDENTS_MAX + extra);
	g_assert_cmpint(quality_take_incidents(q, out, 0), ==, 0);
	g_assert_cmpint(quality_take_incidents(q, out, -3), ==, 0);
	g_assert_cmpint(q->n_done, ==, Q_INCIDENTS_MAX);
	g_assert_cmpint(quality_take_incidents(q, out, 16), ==, 16);
	g_assert_cmpint(quality_take_incidents(q, out + 16, Q_INCIDENTS_MAX + extra), ==, Q_INCIDENTS_MAX - 16);
	for(int i = 0; i < Q_INCIDENTS_MAX; i++)
		g_assert_cmpint(out[i].started_us, ==, T0 + i);
	g_assert_cmpint(quality_take_incidents(q, out, 16), ==, 0);
	/* room again */
	quality_note(q, Q_CLIENT_UP, 0, QI_SLOW_LINK, T0, T0);
	g_assert_cmpint(q->n_done, ==, 1);
	g_assert_cmpint(q->dropped_incidents, ==, extra);
	g_free(out);
	free_visit(q);
}

/* --- paths and badges ----------------------------------------------------------------- */

static void test_paths(void) {
	quality_visit *q = new_visit(30);
	for(int i = 0; i < 5; i++) {
		/* client up audio: 5 % lost, 10 ms jitter */
		meter_window cu = up(false, T0 + i * S, 100, 5);
		cu.jitter_ms = 10;
		quality_feed(q, Q_CLIENT_UP, &cu);
		/* the client leg's RTT 40 ms */
		meter_window cd = down(false, T0 + i * S, 0, 3, 40);
		quality_feed(q, Q_CLIENT_DOWN, &cd);
		/* the therapist receives, end to end: 6 % lost, 12 ms jitter, RTT 60 ms */
		meter_window td = down(false, T0 + i * S, 6, 12, 60);
		quality_feed(q, Q_THERAPIST_DOWN, &td);
		/* video does not enter the paths */
		meter_window v = up(true, T0 + i * S, 100, 50);
		v.jitter_ms = 200;
		quality_feed(q, Q_CLIENT_UP, &v);
		meter_window vd = down(true, T0 + i * S, 50, 100, 900);
		quality_feed(q, Q_THERAPIST_DOWN, &vd);
	}
	/* the receiver's reports cover the whole path: loss 6, jitter 12 */
	double r = emodel_r(100, 12, 6), mos = emodel_mos(r);
	g_assert_cmpfloat(r, >, 70);
	g_assert_cmpfloat(r, <, 90);
	for(int pass = 0; pass < 2; pass++) {
		json_t *o = parse(quality_context_json(q, pass ? 0 : 30));
		json_t *p = at(o, "paths", "client_to_therapist", NULL);
		g_assert_true(json_is_object(p));
		g_assert_cmpfloat_with_epsilon(num_at(p, "rtt_ms", NULL), 100, 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "jitter_ms", NULL), 12, 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "loss_pct", NULL), 6, 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "r", NULL), r, 0.05 + 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "mos", NULL), mos, 0.005 + 1e-9);
		g_assert_cmpstr(json_string_value(json_object_get(p, "badge")), ==, quality_badge(mos));
		g_assert_true(json_is_true(json_object_get(p, "complete")));
		/* the other way: the therapist sent no audio, but the client's
		 * reports (0 % loss, 3 ms jitter) are something: RTT 60 + 40 */
		p = at(o, "paths", "therapist_to_client", NULL);
		g_assert_true(json_is_object(p));
		g_assert_cmpfloat_with_epsilon(num_at(p, "rtt_ms", NULL), 100, 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "jitter_ms", NULL), 3, 1e-9);
		g_assert_cmpfloat_with_epsilon(num_at(p, "loss_pct", NULL), 0, 1e-9);
		json_decref(o);
	}
	free_visit(q);

	/* before the receiver reports, the sender's up leg stands in; an
	 * unknown RTT makes the path incomplete */
	q = new_visit(30);
	meter_window cu = up(false, T0, 100, 10);
	cu.jitter_ms = 7;
	quality_feed(q, Q_CLIENT_UP, &cu);
	json_t *o = parse(quality_context_json(q, 0));
	json_t *p = at(o, "paths", "client_to_therapist", NULL);
	g_assert_cmpfloat_with_epsilon(num_at(p, "loss_pct", NULL), 10, 1e-9);
	g_assert_cmpfloat_with_epsilon(num_at(p, "jitter_ms", NULL), 7, 1e-9);
	json_decref(o);
	/* once it has, its end-to-end figures are the path's */
	meter_window td = down(false, T0, 20, 4, 80);
	quality_feed(q, Q_THERAPIST_DOWN, &td);
	o = parse(quality_context_json(q, 0));
	p = at(o, "paths", "client_to_therapist", NULL);
	g_assert_cmpfloat_with_epsilon(num_at(p, "loss_pct", NULL), 20, 1e-9);
	g_assert_cmpfloat_with_epsilon(num_at(p, "jitter_ms", NULL), 4, 1e-9);
	g_assert_cmpfloat_with_epsilon(num_at(p, "rtt_ms", NULL), 80, 1e-9);
	g_assert_false(json_is_true(json_object_get(p, "complete")));
	g_assert_cmpfloat_with_epsilon(num_at(p, "mos", NULL), emodel_mos(emodel_r(80, 4, 20)), 0.005 + 1e-9);
	/* no audio from the therapist, none reported by the client: null */
	g_assert_true(json_is_null(at(o, "paths", "therapist_to_client", NULL)));
	json_decref(o);
	free_visit(q);

	/* video only: both paths null */
	q = new_visit(30);
	meter_window v = up(true, T0, 100, 0);
	quality_feed(q, Q_CLIENT_UP, &v);
	meter_window vd = down(true, T0, 1, 1, 50);
	quality_feed(q, Q_CLIENT_DOWN, &vd);
	quality_feed(q, Q_THERAPIST_DOWN, &vd);
	o = parse(quality_context_json(q, 0));
	g_assert_true(json_is_null(at(o, "paths", "client_to_therapist", NULL)));
	g_assert_true(json_is_null(at(o, "paths", "therapist_to_client", NULL)));
	json_decref(o);
	free_visit(q);
}

static void test_badge(void) {
	g_assert_cmpstr(quality_badge(4.5), ==, "good");
	g_assert_cmpstr(quality_badge(4.0), ==, "good");
	g_assert_cmpstr(quality_badge(3.999), ==, "fair");
	g_assert_cmpstr(quality_badge(3.1), ==, "fair");
	g_assert_cmpstr(quality_badge(3.0999), ==, "poor");
	g_assert_cmpstr(quality_badge(1.0), ==, "poor");

	/* the badge agrees with the MOS shown: find a loss whose MOS rounds up
	 * to 4.00 from below (no RTT or jitter known: R = 92.95 − 2.5 loss) */
	int64_t lost = -1;
	for(int64_t k = 4000; k < 6000; k++) {
		double m = emodel_mos(emodel_r(0, 0, (double)k / 1000.0));
		if(m >= 3.9955 && m < 3.9999) {
			lost = k;
			break;
		}
	}
	g_assert_cmpint(lost, >, 0);
	quality_visit *q = new_visit(30);
	meter_window w = up(false, T0, 100000, lost);
	quality_feed(q, Q_CLIENT_UP, &w);
	json_t *o = parse(quality_context_json(q, 0));
	json_t *p = at(o, "paths", "client_to_therapist", NULL);
	g_assert_cmpfloat_with_epsilon(num_at(p, "mos", NULL), 4.0, 1e-9);
	g_assert_cmpstr(json_string_value(json_object_get(p, "badge")), ==, "good");
	json_decref(o);
	free_visit(q);
}

/* --- JSON ------------------------------------------------------------------------------- */

static void test_context_json_shape(void) {
	quality_visit *q = new_visit(30);
	for(int l = 0; l < Q_LEGS; l++)
		for(int m = 0; m < Q_MEDIA; m++) {
			bool is_down = (l == Q_CLIENT_DOWN || l == Q_THERAPIST_DOWN);
			meter_window w = is_down ? down(m, T0, 1, 2, 30) : up(m, T0, 100, 1);
			if(!is_down) {
				w.jitter_ms = 2;
				w.bytes = 12500;
				w.frames = m ? 30 : 0;
				w.freezes = m ? 2 : 0;
				w.freeze_ms = m ? 750 : 0;
			} else {
				w.nack = 3;
				w.pli = m;
			}
			quality_feed(q, (quality_leg)l, &w);
		}
	quality_note(q, Q_CLIENT_UP, -1, QI_RECONNECT, T0, T0 + S);
	json_t *o = parse(quality_context_json(q, 0));
	g_assert_true(json_is_object(o));
	const char *names[Q_LEGS] = { "client_up", "client_down", "therapist_up", "therapist_down" };
	json_t *legs = json_object_get(o, "legs");
	g_assert_cmpint(json_object_size(legs), ==, Q_LEGS);
	for(int l = 0; l < Q_LEGS; l++) {
		g_assert_cmpstr(quality_leg_name((quality_leg)l), ==, names[l]);
		json_t *leg = json_object_get(legs, names[l]);
		g_assert_true(json_is_object(leg));
		json_t *a = json_object_get(leg, "audio"), *v = json_object_get(leg, "video");
		g_assert_true(json_is_object(a) && json_is_object(v));
		g_assert_nonnull(json_object_get(a, "loss_pct"));
		g_assert_nonnull(json_object_get(a, "jitter_ms"));
		if(l == Q_CLIENT_DOWN || l == Q_THERAPIST_DOWN) {
			g_assert_cmpfloat(num_at(a, "rtt_ms", NULL), ==, 30);
			g_assert_cmpfloat(num_at(a, "nack", NULL), ==, 3);
			g_assert_null(json_object_get(a, "packets"));
			g_assert_null(json_object_get(a, "pli"));
			g_assert_cmpfloat(num_at(v, "pli", NULL), ==, 1);
			g_assert_nonnull(json_object_get(v, "fir"));
		} else {
			g_assert_cmpfloat(num_at(a, "packets", NULL), ==, 99);
			g_assert_cmpfloat(num_at(a, "bitrate_kbps", NULL), ==, 100);
			g_assert_null(json_object_get(a, "rtt_ms"));
			g_assert_null(json_object_get(a, "fps"));
			g_assert_cmpfloat(num_at(v, "fps", NULL), ==, 30);
			g_assert_cmpfloat(num_at(v, "freezes", NULL), ==, 2);
			g_assert_cmpfloat(num_at(v, "freeze_s", NULL), ==, 0.8);   /* 750 ms, rounded */
		}
	}
	g_assert_cmpint(json_object_size(json_object_get(o, "paths")), ==, 2);
	g_assert_nonnull(at(o, "paths", "client_to_therapist", NULL));
	g_assert_nonnull(at(o, "paths", "therapist_to_client", NULL));
	g_assert_cmpfloat(num_at(o, "freezes", NULL), ==, 4);
	g_assert_cmpfloat(num_at(o, "freeze_s", NULL), ==, 1.5);
	/* the note and one freeze per up video leg */
	g_assert_cmpfloat(num_at(o, "incidents", NULL), ==, 3);
	g_assert_cmpfloat(num_at(o, "measured_s", NULL), ==, 1);
	json_decref(o);
	free_visit(q);

	/* an empty visit: legs without media, null paths */
	q = new_visit(30);
	o = parse(quality_context_json(q, 30));
	g_assert_cmpint(json_object_size(json_object_get(o, "legs")), ==, Q_LEGS);
	g_assert_cmpint(json_object_size(at(o, "legs", "client_up", NULL)), ==, 0);
	g_assert_true(json_is_null(at(o, "paths", "client_to_therapist", NULL)));
	g_assert_cmpfloat(num_at(o, "measured_s", NULL), ==, 0);
	json_decref(o);

	/* an absurd estimate is not a number in the JSON */
	meter_window w = up(false, T0, 100, 0);
	w.jitter_ms = INFINITY;
	quality_feed(q, Q_CLIENT_UP, &w);
	o = parse(quality_context_json(q, 0));
	g_assert_true(json_is_null(at(o, "legs", "client_up", "audio", "jitter_ms", NULL)));
	json_decref(o);
	free_visit(q);

	g_assert_cmpstr(quality_leg_name(Q_LEGS), ==, "unknown");
	g_assert_cmpstr(quality_incident_name(QI_FREEZE), ==, "freeze");
	g_assert_cmpstr(quality_incident_name(QI_LOSS_BURST), ==, "loss_burst");
	g_assert_cmpstr(quality_incident_name(QI_HIGH_RTT), ==, "high_rtt");
	g_assert_cmpstr(quality_incident_name(QI_STALL), ==, "stall");
	g_assert_cmpstr(quality_incident_name(QI_RECONNECT), ==, "reconnect");
	g_assert_cmpstr(quality_incident_name(QI_SLOW_LINK), ==, "slow_link");
}

/* A sum with every counter large and every estimate known, long decimals. */
static void big_sum(quality_sum *s, meter_dir dir, bool video) {
	memset(s, 0, sizeof(*s));
	for(int i = 0; i < 3; i++) {
		meter_window w = mk(dir, video, T0 + i * S);
		w.end_us = w.start_us + 999999;
		w.expected = 123456789012LL;
		w.lost = 12345678901LL;
		w.packets = w.expected - w.lost;
		w.loss_pct = 10.0 / 3.0 + i;
		w.jitter_ms = 1000.0 / 7.0 + i;
		w.rtt_ms = dir == METER_DOWN ? 10000.0 / 3.0 + i : -1;
		w.bytes = 987654321098LL;
		w.frames = 1234567890LL;
		w.freezes = 123456789LL;
		w.freeze_ms = 987654321987LL;
		w.stalls = 123456789LL;
		w.stall_ms = 987654321987LL;
		w.pli = w.fir = w.nack = 1234567890123LL;
		quality_sum_add(s, &w);
	}
}

/* Every leg summary of a context carries class and poor_reasons
 * (callclass.h), and the context a video_class: poor if any video leg
 * that measured something is poor, null if none did. */
static void test_context_class(void) {
	quality_visit *q = new_visit(30);
	for(int i = 0; i < 5; i++) {
		/* client up audio 12 % lost (poor: loss), jitter 5 ms */
		meter_window w = up(false, T0 + i * S, 50, 6);
		w.jitter_ms = 5;
		quality_feed(q, Q_CLIENT_UP, &w);
		/* client up video: 15 fps, clean */
		w = up(true, T0 + i * S, 40, 0);
		w.frames = 15;
		quality_feed(q, Q_CLIENT_UP, &w);
		/* therapist up: audio clean, video at 5 fps (poor: fps) */
		w = up(false, T0 + i * S, 50, 0);
		w.jitter_ms = 2;
		quality_feed(q, Q_THERAPIST_UP, &w);
		w = up(true, T0 + i * S, 30, 0);
		w.frames = 5;
		quality_feed(q, Q_THERAPIST_UP, &w);
		/* client down audio: RTT 600 ms (poor: rtt); video: no report yet */
		w = down(false, T0 + i * S, 0, 4, 600);
		quality_feed(q, Q_CLIENT_DOWN, &w);
		w = down(true, T0 + i * S, -1, -1, -1);
		quality_feed(q, Q_CLIENT_DOWN, &w);
	}
	json_t *o = parse(quality_context_json(q, 0));
	const struct { const char *leg, *medium, *cls, *reason; } want[] = {
		{ "client_up", "audio", "poor", "loss" }, { "client_up", "video", "good", NULL },
		{ "therapist_up", "audio", "good", NULL }, { "therapist_up", "video", "poor", "fps" },
		{ "client_down", "audio", "poor", "rtt" }, { "client_down", "video", "good", NULL },
	};
	for(size_t k = 0; k < G_N_ELEMENTS(want); k++) {
		json_t *leg = at(o, "legs", want[k].leg, want[k].medium, NULL);
		g_assert_true(json_is_object(leg));
		g_assert_cmpstr(json_string_value(json_object_get(leg, "class")), ==, want[k].cls);
		json_t *r = json_object_get(leg, "poor_reasons");
		g_assert_cmpuint(json_array_size(r), ==, want[k].reason ? 1 : 0);
		if(want[k].reason)
			g_assert_cmpstr(json_string_value(json_array_get(r, 0)), ==, want[k].reason);
	}
	g_assert_cmpstr(json_string_value(json_object_get(o, "video_class")), ==, "poor");
	json_decref(o);
	free_visit(q);

	/* video good on every measured leg: a good-video visit */
	q = new_visit(30);
	meter_window w = up(true, T0, 40, 0);
	w.frames = 15;
	quality_feed(q, Q_CLIENT_UP, &w);
	w = down(true, T0, 2, 3, 20);                 /* the client receives video: 2 % lost */
	quality_feed(q, Q_CLIENT_DOWN, &w);
	w = up(true, T0, 0, 0);                       /* the therapist sends no video */
	quality_feed(q, Q_THERAPIST_UP, &w);
	o = parse(quality_context_json(q, 0));
	g_assert_cmpstr(json_string_value(at(o, "legs", "therapist_up", "video", "class", NULL)), ==, "good");
	g_assert_cmpstr(json_string_value(json_object_get(o, "video_class")), ==, "good");
	json_decref(o);
	/* a down leg that lost 20 % of the video it received: poor */
	w = down(true, T0 + S, 20, 3, 20);
	for(int i = 0; i < 3; i++) {
		w.start_us = T0 + (i + 1) * S;
		w.end_us = w.start_us + S;
		quality_feed(q, Q_CLIENT_DOWN, &w);
	}
	o = parse(quality_context_json(q, 0));
	g_assert_cmpstr(json_string_value(at(o, "legs", "client_down", "video", "poor_reasons", NULL) ?
		json_array_get(at(o, "legs", "client_down", "video", "poor_reasons", NULL), 0) : NULL), ==, "video_loss");
	g_assert_cmpstr(json_string_value(json_object_get(o, "video_class")), ==, "poor");
	json_decref(o);
	free_visit(q);

	/* audio only: no video leg measured, video_class null */
	q = new_visit(30);
	w = up(false, T0, 50, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	w = up(true, T0, 0, 0);
	quality_feed(q, Q_CLIENT_UP, &w);
	o = parse(quality_context_json(q, 0));
	g_assert_true(json_is_null(json_object_get(o, "video_class")));
	g_assert_cmpstr(json_string_value(at(o, "legs", "client_up", "video", "class", NULL)), ==, "good");
	json_decref(o);
	free_visit(q);
}

static void test_sum_format(void) {
	char buf[512];
	for(int dir = 0; dir < 2; dir++)
		for(int video = 0; video < 2; video++) {
			quality_sum s;
			big_sum(&s, (meter_dir)dir, video);
			int n = quality_sum_format(&s, video, buf, sizeof(buf));
			g_assert_cmpint(n, >, 0);
			g_assert_cmpint(n, <, (int)sizeof(buf));
			g_assert_cmpint((int)strlen(buf), ==, n);
			json_t *o = parse(g_strdup(buf));
			g_assert_nonnull(json_object_get(o, "loss_pct"));
			g_assert_nonnull(json_object_get(o, "jitter_ms"));
			if(dir == METER_DOWN) {
				g_assert_nonnull(json_object_get(o, "rtt_ms"));
				g_assert_null(json_object_get(o, "packets"));
			} else {
				g_assert_nonnull(json_object_get(o, "packets"));
				g_assert_null(json_object_get(o, "rtt_ms"));
				g_assert_true((json_object_get(o, "fps") != NULL) == video);
			}
			json_decref(o);
			/* too small: -1 and an empty string */
			char tiny[8];
			memset(tiny, 'x', sizeof(tiny));
			g_assert_cmpint(quality_sum_format(&s, video, tiny, sizeof(tiny)), ==, -1);
			g_assert_cmpstr(tiny, ==, "");
			g_assert_cmpint(quality_sum_format(&s, video, tiny, 0), ==, -1);
			g_assert_cmpint(tiny[0], ==, '\0');
			/* exactly the length + 1 fits */
			char *exact = g_malloc((size_t)n + 1);
			g_assert_cmpint(quality_sum_format(&s, video, exact, (size_t)n + 1), ==, n);
			g_assert_cmpstr(exact, ==, buf);
			g_assert_cmpint(quality_sum_format(&s, video, exact, (size_t)n), ==, -1);
			g_free(exact);
		}

	/* reals as rounded, not as 17 digits: 12350 bytes in 1 s, 143.86 ms */
	quality_sum r;
	memset(&r, 0, sizeof(r));
	meter_window rw = up(false, T0, 100, 0);
	rw.bytes = 12350;
	rw.jitter_ms = 143.86;
	quality_sum_add(&r, &rw);
	g_assert_cmpint(quality_sum_format(&r, false, buf, sizeof(buf)), >, 0);
	g_assert_nonnull(strstr(buf, "\"bitrate_kbps\":98.8,"));
	g_assert_nonnull(strstr(buf, "\"jitter_ms\":143.86,"));

	/* a down sum is a down sample even before the first RTT, with deltas */
	quality_sum s;
	memset(&s, 0, sizeof(s));
	meter_window d = down(false, T0, 10, 4, -1);
	d.expected = 50;
	d.lost = 5;
	d.packets = 45;
	quality_sum_add(&s, &d);
	g_assert_cmpint(quality_sum_format(&s, false, buf, sizeof(buf)), >, 0);
	json_t *o = parse(g_strdup(buf));
	g_assert_true(json_is_null(json_object_get(o, "rtt_ms")));
	g_assert_null(json_object_get(o, "packets"));
	g_assert_cmpfloat(num_at(o, "loss_pct", NULL), ==, 10);
	json_decref(o);
	/* and before any report */
	memset(&s, 0, sizeof(s));
	d = down(true, T0, -1, -1, -1);
	quality_sum_add(&s, &d);
	g_assert_cmpint(quality_sum_format(&s, true, buf, sizeof(buf)), >, 0);
	o = parse(g_strdup(buf));
	g_assert_nonnull(json_object_get(o, "pli"));
	g_assert_null(json_object_get(o, "fps"));
	json_decref(o);
	/* an up sum of a silent stretch stays an up sample */
	memset(&s, 0, sizeof(s));
	meter_window u = mk(METER_UP, false, T0);
	u.stalls = 1;
	u.stall_ms = 2000;
	quality_sum_add(&s, &u);
	g_assert_cmpint(quality_sum_format(&s, false, buf, sizeof(buf)), >, 0);
	o = parse(g_strdup(buf));
	g_assert_cmpfloat(num_at(o, "stalls", NULL), ==, 1);
	g_assert_cmpfloat(num_at(o, "stall_s", NULL), ==, 2);
	json_decref(o);
}

/* quality_recent: the current bucket plus the completed buckets covering
 * `seconds`, for one leg and medium (the quality-triggered pulse's rule). */
static void test_recent(void) {
	quality_visit *q = new_visit(60);
	/* 20 s of client_up video, one freeze of 700 ms at second 3 and one of
	 * 900 ms at second 17; therapist_up video clean */
	for(int i = 0; i < 20; i++) {
		meter_window v = up(true, T0 + i * S, 100, 0);
		if(i == 3 || i == 17) {
			v.freezes = 1;
			v.freeze_ms = i == 3 ? 700 : 900;
		}
		quality_feed(q, Q_CLIENT_UP, &v);
		meter_window t = up(true, T0 + i * S, 100, 0);
		quality_feed(q, Q_THERAPIST_UP, &t);
		quality_roll(q, T0 + (i + 1) * S, false, NULL);
	}
	quality_sum r;
	/* 5 s: only the last bucket (seconds 15..19) -> one freeze, 900 ms */
	quality_recent(q, 5, Q_CLIENT_UP, 1, &r);
	g_assert_cmpint(r.freezes, ==, 1);
	g_assert_cmpint(r.freeze_ms, ==, 900);
	g_assert_cmpint(r.windows, ==, 5);
	/* 20 s: both */
	quality_recent(q, 20, Q_CLIENT_UP, 1, &r);
	g_assert_cmpint(r.freezes, ==, 2);
	g_assert_cmpint(r.freeze_ms, ==, 1600);
	g_assert_cmpint(r.windows, ==, 20);
	/* other leg, other medium, bad arguments: nothing */
	quality_recent(q, 20, Q_THERAPIST_UP, 1, &r);
	g_assert_cmpint(r.freezes, ==, 0);
	quality_recent(q, 20, Q_CLIENT_UP, 0, &r);
	g_assert_cmpint(r.windows, ==, 0);
	quality_recent(q, 20, Q_LEGS, 1, &r);
	g_assert_cmpint(r.windows, ==, 0);
	quality_recent(q, 20, Q_CLIENT_UP, 2, &r);
	g_assert_cmpint(r.windows, ==, 0);
	free_visit(q);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/quality/sum/loss-jitter-rates", test_sum_loss_jitter_rates);
	g_test_add_func("/quality/sum/down-fallback", test_sum_down_fallback);
	g_test_add_func("/quality/sum/merge", test_sum_merge);
	g_test_add_func("/quality/roll/buckets", test_roll_buckets);
	g_test_add_func("/quality/roll/ring-and-context", test_ring_and_context);
	g_test_add_func("/quality/incident/freeze", test_incident_freeze);
	g_test_add_func("/quality/incident/loss-burst", test_incident_loss_burst);
	g_test_add_func("/quality/incident/high-rtt", test_incident_high_rtt);
	g_test_add_func("/quality/incident/stall", test_incident_stall);
	g_test_add_func("/quality/incident/close-all-and-note", test_incident_close_all_and_note);
	g_test_add_func("/quality/incident/overflow", test_incident_overflow);
	g_test_add_func("/quality/paths", test_paths);
	g_test_add_func("/quality/badge", test_badge);
	g_test_add_func("/quality/recent", test_recent);
	g_test_add_func("/quality/json/context-shape", test_context_json_shape);
	g_test_add_func("/quality/json/sum-format", test_sum_format);
	g_test_add_func("/quality/context/class", test_context_class);
	return g_test_run();
}
