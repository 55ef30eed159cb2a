/* Unit tests for emodel.c: the simplified G.107 E-model at hand-computed
 * points, its clamps, and the combination of two legs into a path. */
#include <glib.h>
#include <string.h>
#include "emodel.h"

static void test_r_known_points(void) {
	/* RTT 20, jitter 0, loss 0: Le = 20/2 + 0 + 10 = 20; Id = 20/40 = 0.5;
	 * R = 93.2 - 0.5 = 92.7 */
	g_assert_cmpfloat_with_epsilon(emodel_latency_ms(20, 0), 20.0, 1e-12);
	g_assert_cmpfloat_with_epsilon(emodel_r(20, 0, 0), 92.7, 1e-12);
	/* RTT 0: Le = 10 (the codec), Id = 0.25, R = 92.95 */
	g_assert_cmpfloat_with_epsilon(emodel_r(0, 0, 0), 92.95, 1e-12);
	/* RTT 100, jitter 10, loss 2: Le = 50 + 20 + 10 = 80; Id = 2;
	 * Ie = 5; R = 86.2 */
	g_assert_cmpfloat_with_epsilon(emodel_r(100, 10, 2), 86.2, 1e-12);
	/* at the knee: RTT 300 → Le = 160 → Id = (160 - 120)/10 = 4 (= 160/40:
	 * continuous); R = 89.2 */
	g_assert_cmpfloat_with_epsilon(emodel_r(300, 0, 0), 89.2, 1e-12);
	g_assert_cmpfloat_with_epsilon(emodel_r(299.999, 0, 0), 89.2, 1e-4);
	/* above it: RTT 400, jitter 20, loss 1: Le = 200 + 40 + 10 = 250;
	 * Id = 13; Ie = 2.5; R = 77.7 */
	g_assert_cmpfloat_with_epsilon(emodel_r(400, 20, 1), 77.7, 1e-12);
	/* RTT is halved: a 1000 ms round trip → Le 510 → Id 39 → R 54.2 */
	g_assert_cmpfloat_with_epsilon(emodel_r(1000, 0, 0), 54.2, 1e-12);
}

static void test_r_clamps(void) {
	/* 40 % loss: 93.2 - 0.25 - 100 < 0 → 0 */
	g_assert_cmpfloat(emodel_r(0, 0, 40), ==, 0.0);
	g_assert_cmpfloat(emodel_r(0, 0, 1000), ==, 0.0);
	/* a very long delay alone: Le = 1010 → Id = 89 → R = 4.2 */
	g_assert_cmpfloat_with_epsilon(emodel_r(2000, 0, 0), 4.2, 1e-12);
	g_assert_cmpfloat(emodel_r(1e9, 0, 0), ==, 0.0);
	/* negative (unknown) and NaN inputs count as 0 */
	g_assert_cmpfloat_with_epsilon(emodel_r(-1, -1, -1), 92.95, 1e-12);
	g_assert_cmpfloat_with_epsilon(emodel_r(0.0 / 0.0, 0, 0.0 / 0.0), 92.95, 1e-12);
	/* R never exceeds 93.2 here, so the upper clamp is the MOS's */
}

static void test_mos(void) {
	/* MOS(93.2) = 1 + 3.262 + 7e-6 × 93.2 × 33.2 × 6.8
	 *           = 4.262 + 0.14728582 = 4.40928582 ≈ 4.41 */
	g_assert_cmpfloat_with_epsilon(emodel_mos(93.2), 4.40928582, 1e-8);
	g_assert_cmpfloat_with_epsilon(emodel_mos(93.2), 4.41, 0.005);
	/* MOS(50) = 1 + 1.75 + 7e-6 × 50 × (-10) × 50 = 2.75 - 0.175 = 2.575 */
	g_assert_cmpfloat_with_epsilon(emodel_mos(50), 2.575, 1e-12);
	/* MOS(77.7) = 1 + 2.7195 + 7e-6 × 77.7 × 17.7 × 22.3 = 3.93418277 */
	g_assert_cmpfloat_with_epsilon(emodel_mos(77.7), 3.934182769, 1e-8);
	/* MOS(60) = 1 + 2.1 + 0 = 3.1 */
	g_assert_cmpfloat_with_epsilon(emodel_mos(60), 3.1, 1e-12);
	/* clamps: 1 at and below 0, 4.5 at and above 100 */
	g_assert_cmpfloat(emodel_mos(0), ==, 1.0);
	g_assert_cmpfloat(emodel_mos(-20), ==, 1.0);
	g_assert_cmpfloat(emodel_mos(100), ==, 4.5);
	g_assert_cmpfloat(emodel_mos(250), ==, 4.5);
	g_assert_cmpfloat(emodel_mos(0.0 / 0.0), ==, 1.0);
	/* the cubic dips below 1 for small R: MOS(3) would be
	 * 1 + 0.105 + 7e-6 × 3 × (-57) × 97 = 0.988891; clamped to 1 */
	g_assert_cmpfloat(emodel_mos(3), ==, 1.0);
	/* just below 100 the formula approaches 4.5 */
	g_assert_cmpfloat_with_epsilon(emodel_mos(99.999), 4.5, 1e-3);
	/* monotonic over R in [7, 100] */
	double prev = emodel_mos(7);
	for(double r = 7.5; r <= 100; r += 0.5) {
		double m = emodel_mos(r);
		g_assert_cmpfloat(m, >=, prev);
		prev = m;
	}
}

static meter_window up_w(double jitter, double loss) {
	meter_window w;
	memset(&w, 0, sizeof(w));
	w.dir = METER_UP;
	w.jitter_ms = jitter;
	w.loss_pct = loss;
	w.rtt_ms = -1;
	return w;
}

static meter_window down_w(double rtt, double jitter, double loss) {
	meter_window w;
	memset(&w, 0, sizeof(w));
	w.dir = METER_DOWN;
	w.rtt_ms = rtt;
	w.jitter_ms = jitter;
	w.loss_pct = loss;
	return w;
}

static void test_path(void) {
	/* client → therapist: client up (jitter 5, loss 2 %), client leg RTT
	 * 30; therapist down (RTT 50, jitter 7, loss 3 %).
	 * RTT 80, jitter 12, loss 1 - 0.98 × 0.97 = 4.94 %;
	 * Le = 40 + 24 + 10 = 74; Id = 1.85; Ie = 12.35; R = 79.0 */
	meter_window up = up_w(5, 2), down = down_w(50, 7, 3);
	emodel_result r;
	g_assert_true(emodel_path(&up, 30, &down, &r));
	g_assert_true(r.valid);
	g_assert_cmpfloat_with_epsilon(r.rtt_ms, 80, 1e-12);
	g_assert_cmpfloat_with_epsilon(r.jitter_ms, 12, 1e-12);
	g_assert_cmpfloat_with_epsilon(r.loss_pct, 4.94, 1e-12);
	g_assert_cmpfloat_with_epsilon(r.latency_ms, 74, 1e-12);
	g_assert_cmpfloat_with_epsilon(r.r, 79.0, 1e-12);
	g_assert_cmpfloat_with_epsilon(r.mos, emodel_mos(79.0), 1e-12);
	/* a perfect path is the RTT-only point */
	up = up_w(0, 0);
	down = down_w(10, 0, 0);
	g_assert_true(emodel_path(&up, 10, &down, &r));
	g_assert_cmpfloat_with_epsilon(r.r, 92.7, 1e-12);
	/* total loss on one leg is total loss */
	up = up_w(0, 100);
	g_assert_true(emodel_path(&up, 10, &down, &r));
	g_assert_cmpfloat_with_epsilon(r.loss_pct, 100, 1e-12);
	g_assert_cmpfloat(r.r, ==, 0.0);
	g_assert_cmpfloat(r.mos, ==, 1.0);
}

static void test_path_unknowns(void) {
	emodel_result r;
	meter_window up = up_w(5, 2), down = down_w(50, 7, 3);
	/* the sender leg's RTT unknown: computed without it, not valid */
	g_assert_false(emodel_path(&up, -1, &down, &r));
	g_assert_false(r.valid);
	g_assert_cmpfloat_with_epsilon(r.rtt_ms, 50, 1e-12);
	/* each unknown window input makes it not valid */
	down = down_w(-1, 7, 3);
	g_assert_false(emodel_path(&up, 30, &down, &r));
	down = down_w(50, -1, 3);
	g_assert_false(emodel_path(&up, 30, &down, &r));
	down = down_w(50, 7, -1);
	g_assert_false(emodel_path(&up, 30, &down, &r));
	g_assert_cmpfloat_with_epsilon(r.loss_pct, 2, 1e-12);
	down = down_w(50, 7, 3);
	up = up_w(-1, 2);
	g_assert_false(emodel_path(&up, 30, &down, &r));
	up = up_w(5, -1);
	g_assert_false(emodel_path(&up, 30, &down, &r));
	up = up_w(5, 2);
	g_assert_true(emodel_path(&up, 30, &down, &r));
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/emodel/r-known-points", test_r_known_points);
	g_test_add_func("/emodel/r-clamps", test_r_clamps);
	g_test_add_func("/emodel/mos", test_mos);
	g_test_add_func("/emodel/path", test_path);
	g_test_add_func("/emodel/path-unknowns", test_path_unknowns);
	return g_test_run();
}
