/* Unit tests for callclass.c: every threshold at its boundary (at the
 * threshold still good, just past it poor), unknown metrics not applied,
 * the ordered video rule, and the annotation of a summary object. */
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include "callclass.h"

#define EPS 1e-9

static unsigned audio(double loss, double jitter, double rtt, double concealed) {
	callclass_in in;
	callclass_in_init(&in, false);
	in.loss_pct = loss;
	in.jitter_ms = jitter;
	in.rtt_ms = rtt;
	in.concealed_ratio = concealed;
	return callclass_poor(&in);
}

static unsigned video(double fps, double loss) {
	callclass_in in;
	callclass_in_init(&in, true);
	in.fps = fps;
	in.loss_pct = loss;
	return callclass_poor(&in);
}

static void test_constants(void) {
	/* the published figures (docs/metrics.md cites the page) */
	g_assert_cmpfloat(CALLCLASS_AUDIO_LOSS_PCT, ==, 10.0);
	g_assert_cmpfloat(CALLCLASS_AUDIO_JITTER_MS, ==, 30.0);
	g_assert_cmpfloat(CALLCLASS_AUDIO_RTT_MS, ==, 500.0);
	g_assert_cmpfloat(CALLCLASS_AUDIO_CONCEALED, ==, 0.07);
	g_assert_cmpfloat(CALLCLASS_VIDEO_FPS, ==, 7.0);
	g_assert_cmpfloat(CALLCLASS_VIDEO_LOSS_PCT, ==, 15.0);
}

static void test_audio_boundaries(void) {
	g_assert_cmpuint(audio(0, 0, 0, 0), ==, 0);
	/* loss */
	g_assert_cmpuint(audio(10.0, 0, 0, 0), ==, 0);
	g_assert_cmpuint(audio(10.0 + EPS, 0, 0, 0), ==, CALLCLASS_LOSS);
	g_assert_cmpuint(audio(15.0, 0, 0, 0), ==, CALLCLASS_LOSS);
	/* jitter */
	g_assert_cmpuint(audio(0, 30.0, 0, 0), ==, 0);
	g_assert_cmpuint(audio(0, 30.0 + EPS, 0, 0), ==, CALLCLASS_JITTER);
	/* rtt */
	g_assert_cmpuint(audio(0, 0, 500.0, 0), ==, 0);
	g_assert_cmpuint(audio(0, 0, 500.0 + EPS, 0), ==, CALLCLASS_RTT);
	/* concealed */
	g_assert_cmpuint(audio(0, 0, 0, 0.07), ==, 0);
	g_assert_cmpuint(audio(0, 0, 0, 0.07 + EPS), ==, CALLCLASS_CONCEALED);
	/* all at once */
	g_assert_cmpuint(audio(20, 40, 600, 0.2), ==,
		CALLCLASS_LOSS | CALLCLASS_JITTER | CALLCLASS_RTT | CALLCLASS_CONCEALED);
}

static void test_audio_unknown(void) {
	/* unknown (negative, NaN) metrics are not applied: nothing known is good */
	g_assert_cmpuint(audio(-1, -1, -1, -1), ==, 0);
	g_assert_cmpuint(audio(NAN, NAN, NAN, NAN), ==, 0);
	g_assert_cmpuint(audio(-1, 45, -1, -1), ==, CALLCLASS_JITTER);
	g_assert_cmpuint(audio(INFINITY, -1, -1, -1), ==, 0);
	/* video figures on an audio stream are ignored */
	callclass_in in;
	callclass_in_init(&in, false);
	in.fps = 1;
	g_assert_cmpuint(callclass_poor(&in), ==, 0);
}

static void test_video_boundaries(void) {
	/* frame rate decides when known */
	g_assert_cmpuint(video(7.0, -1), ==, 0);
	g_assert_cmpuint(video(7.0 - EPS, -1), ==, CALLCLASS_FPS);
	g_assert_cmpuint(video(0, -1), ==, CALLCLASS_FPS);
	/* ... and only it: CQD's video rule takes the first metric available */
	g_assert_cmpuint(video(15, 40), ==, 0);
	g_assert_cmpuint(video(3, 40), ==, CALLCLASS_FPS);
	/* without a frame rate, the loss after repair */
	g_assert_cmpuint(video(-1, 15.0), ==, 0);
	g_assert_cmpuint(video(-1, 15.0 + EPS), ==, CALLCLASS_VIDEO_LOSS);
	g_assert_cmpuint(video(NAN, 30), ==, CALLCLASS_VIDEO_LOSS);
	g_assert_cmpuint(video(-1, -1), ==, 0);
	/* audio figures on a video stream are ignored */
	callclass_in in;
	callclass_in_init(&in, true);
	in.jitter_ms = 100;
	in.rtt_ms = 900;
	g_assert_cmpuint(callclass_poor(&in), ==, 0);
}

static void test_names(void) {
	g_assert_cmpstr(callclass_name(0), ==, "good");
	g_assert_cmpstr(callclass_name(CALLCLASS_RTT), ==, "poor");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_LOSS), ==, "loss");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_JITTER), ==, "jitter");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_RTT), ==, "rtt");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_CONCEALED), ==, "concealed");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_FPS), ==, "fps");
	g_assert_cmpstr(callclass_reason_name(CALLCLASS_VIDEO_LOSS), ==, "video_loss");
	g_assert_null(callclass_reason_name(0));
	g_assert_null(callclass_reason_name(CALLCLASS_LOSS | CALLCLASS_RTT));
	g_assert_null(callclass_reason_name(0x40));
}

static json_t *annotated(const char *text, bool video, unsigned *r) {
	json_t *o = json_loads(text, 0, NULL);
	g_assert_nonnull(o);
	*r = callclass_annotate(o, video);
	return o;
}

static void check_reasons(json_t *o, const char *cls, const char *const *want, size_t n) {
	g_assert_cmpstr(json_string_value(json_object_get(o, "class")), ==, cls);
	json_t *list = json_object_get(o, "poor_reasons");
	g_assert_true(json_is_array(list));
	g_assert_cmpuint(json_array_size(list), ==, n);
	for(size_t i = 0; i < n; i++)
		g_assert_cmpstr(json_string_value(json_array_get(list, i)), ==, want[i]);
}

static void test_annotate(void) {
	unsigned r;
	json_t *o = annotated("{\"loss_pct\":15.2,\"jitter_ms\":31,\"rtt_ms\":null,\"packets\":700}", false, &r);
	g_assert_cmpuint(r, ==, CALLCLASS_LOSS | CALLCLASS_JITTER);
	static const char *const lj[] = { "loss", "jitter" };
	check_reasons(o, "poor", lj, 2);
	/* again: the result is replaced, not appended */
	json_object_set_new(o, "loss_pct", json_real(2.0));
	g_assert_cmpuint(callclass_annotate(o, false), ==, CALLCLASS_JITTER);
	static const char *const j[] = { "jitter" };
	check_reasons(o, "poor", j, 1);
	json_decref(o);

	o = annotated("{\"loss_pct\":0.1,\"jitter_ms\":3.2,\"rtt_ms\":12}", false, &r);
	g_assert_cmpuint(r, ==, 0);
	check_reasons(o, "good", NULL, 0);
	json_decref(o);

	/* a browser's concealment ratio, where a summary carries one */
	o = annotated("{\"concealed_ratio\":0.08}", false, &r);
	static const char *const c[] = { "concealed" };
	check_reasons(o, "poor", c, 1);
	json_decref(o);

	/* video: fps decides; strings are not numbers */
	o = annotated("{\"fps\":4.5,\"loss_pct\":\"40\",\"packets\":300}", true, &r);
	static const char *const f[] = { "fps" };
	check_reasons(o, "poor", f, 1);
	json_decref(o);
	o = annotated("{\"loss_pct\":22.0,\"rtt_ms\":900}", true, &r);     /* a down leg */
	static const char *const vl[] = { "video_loss" };
	check_reasons(o, "poor", vl, 1);
	json_decref(o);
	/* no packet received: no frame rate to judge */
	o = annotated("{\"fps\":0,\"packets\":0,\"loss_pct\":null}", true, &r);
	check_reasons(o, "good", NULL, 0);
	json_decref(o);
	o = annotated("{\"fps\":0,\"packets\":10}", true, &r);
	check_reasons(o, "poor", f, 1);
	json_decref(o);

	/* not an object: nothing happens */
	json_t *a = json_array();
	g_assert_cmpuint(callclass_annotate(a, false), ==, 0);
	g_assert_cmpuint(json_array_size(a), ==, 0);
	json_decref(a);
	g_assert_cmpuint(callclass_annotate(NULL, true), ==, 0);
}

static void test_legs_and_context(void) {
	/* a visit report's legs: browser rows and non-objects are left alone */
	json_t *legs = json_loads("{\"client_up\":{\"audio\":{\"loss_pct\":1,\"packets\":500},"
		"\"video\":{\"fps\":14,\"packets\":900}},"
		"\"client_down\":{\"video\":{\"loss_pct\":16,\"packets\":null},\"browser\":{\"fps\":1}},"
		"\"therapist_up\":{\"video\":{\"fps\":0,\"packets\":0}},\"x\":3}", 0, NULL);
	g_assert_nonnull(legs);
	g_assert_cmpstr(callclass_legs(legs), ==, "poor");
	json_t *bv = json_object_get(json_object_get(legs, "client_down"), "browser");
	g_assert_null(json_object_get(bv, "class"));
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(json_object_get(legs,
		"client_down"), "video"), "class")), ==, "poor");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(json_object_get(legs,
		"therapist_up"), "video"), "class")), ==, "good");
	/* the poor down leg repaired: good video over the measured legs */
	json_object_set_new(json_object_get(json_object_get(legs, "client_down"), "video"), "loss_pct", json_real(15));
	g_assert_cmpstr(callclass_legs(legs), ==, "good");
	json_decref(legs);
	/* only unmeasured video legs (no camera anywhere): no video class */
	legs = json_loads("{\"client_up\":{\"video\":{\"fps\":0,\"packets\":0}},"
		"\"client_down\":{\"video\":{\"loss_pct\":null}}}", 0, NULL);
	g_assert_null(callclass_legs(legs));
	json_decref(legs);
	g_assert_null(callclass_legs(NULL));

	json_t *ctx = json_loads("{\"legs\":{\"therapist_up\":{\"video\":{\"fps\":5,\"packets\":80}}}}", 0, NULL);
	callclass_context(ctx);
	g_assert_cmpstr(json_string_value(json_object_get(ctx, "video_class")), ==, "poor");
	json_decref(ctx);
	ctx = json_loads("{\"legs\":{}}", 0, NULL);
	callclass_context(ctx);
	g_assert_true(json_is_null(json_object_get(ctx, "video_class")));
	json_decref(ctx);
	callclass_context(NULL);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/callclass/constants", test_constants);
	g_test_add_func("/callclass/audio/boundaries", test_audio_boundaries);
	g_test_add_func("/callclass/audio/unknown", test_audio_unknown);
	g_test_add_func("/callclass/video/boundaries", test_video_boundaries);
	g_test_add_func("/callclass/names", test_names);
	g_test_add_func("/callclass/annotate", test_annotate);
	g_test_add_func("/callclass/legs-and-context", test_legs_and_context);
	return g_test_run();
}
