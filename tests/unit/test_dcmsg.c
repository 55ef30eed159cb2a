/* Unit tests for dcmsg.c: the data-channel codec. */
#include <glib.h>
#include <string.h>
#include <stdlib.h>
#include "dcmsg.h"

static const char *slug(const char *text) {
	static char out[32];
	dcmsg m;
	dcmsg_error e;
	if(dcmsg_parse(text, strlen(text), &m, &e) == 0)
		return "ok";
	g_strlcpy(out, e.code, sizeof(out));
	g_assert_cmpuint(strlen(e.reason), >, 0);
	return out;
}

static void test_parse(void) {
	dcmsg m;
	dcmsg_error e;
	const char *ping = "{\"v\":1,\"type\":\"ping\",\"ref\":\"r-1\",\"extra\":[1,2]}";
	g_assert_cmpint(dcmsg_parse(ping, strlen(ping), &m, &e), ==, 0);
	g_assert_cmpint(m.type, ==, DCMSG_PING);
	g_assert_cmpstr(m.ref, ==, "r-1");
	/* not NUL-terminated input: parse only len bytes */
	char buf[64];
	memcpy(buf, "{\"v\":1,\"type\":\"ping\"}XXXX", 25);
	g_assert_cmpint(dcmsg_parse(buf, 21, &m, &e), ==, 0);
	g_assert_cmpstr(m.ref, ==, "");

	g_assert_cmpstr(slug("not json"), ==, "bad_json");
	g_assert_cmpstr(slug("[1]"), ==, "bad_json");
	g_assert_cmpstr(slug("{\"type\":\"ping\"}"), ==, "bad_version");
	g_assert_cmpstr(slug("{\"v\":2,\"type\":\"ping\"}"), ==, "bad_version");
	g_assert_cmpstr(slug("{\"v\":\"1\",\"type\":\"ping\"}"), ==, "bad_version");
	g_assert_cmpstr(slug("{\"v\":1}"), ==, "bad_json");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":7}"), ==, "bad_json");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"teleport\"}"), ==, "unknown_type");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"ping\",\"type\":\"x\"}"), ==, "bad_json");
	g_assert_cmpint(dcmsg_parse(NULL, 0, &m, &e), ==, -1);
	g_assert_cmpint(dcmsg_parse("", 0, &m, &e), ==, -1);
	/* the ref of a refused message is echoed back, sanitised and bounded */
	const char *bad = "{\"v\":1,\"type\":\"zzz\",\"ref\":\"a\\u0001b\"}";
	g_assert_cmpint(dcmsg_parse(bad, strlen(bad), &m, &e), ==, -1);
	g_assert_cmpstr(e.ref, ==, "a?b");
	char *longref = g_strdup_printf("{\"v\":1,\"type\":\"ping\",\"ref\":\"%0200d\"}", 0);
	g_assert_cmpint(dcmsg_parse(longref, strlen(longref), &m, &e), ==, 0);
	g_assert_cmpuint(strlen(m.ref), ==, DCMSG_REF_MAX);
	g_free(longref);
}

static void test_answer_and_dismiss(void) {
	dcmsg m;
	dcmsg_error e;
	const char *a = "{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"v1-1\",\"responses\":{\"bond\":7.5},\"final\":false}";
	g_assert_cmpint(dcmsg_parse(a, strlen(a), &m, &e), ==, 0);
	g_assert_cmpint(m.type, ==, DCMSG_ANSWER);
	g_assert_cmpstr(m.pulse_id, ==, "v1-1");
	g_assert_cmpint(m.final, ==, 0);
	g_assert_true(json_is_object(m.responses));
	g_assert_cmpfloat(json_real_value(json_object_get(m.responses, "bond")), ==, 7.5);
	dcmsg_clear(&m);
	g_assert_null(m.responses);
	dcmsg_clear(&m);   /* twice is harmless */
	/* final defaults to true */
	const char *b = "{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"v1-1\",\"responses\":{}}";
	g_assert_cmpint(dcmsg_parse(b, strlen(b), &m, &e), ==, 0);
	g_assert_cmpint(m.final, ==, 1);
	dcmsg_clear(&m);
	const char *d = "{\"v\":1,\"type\":\"dismiss\",\"pulse_id\":\"v1-2\"}";
	g_assert_cmpint(dcmsg_parse(d, strlen(d), &m, &e), ==, 0);
	g_assert_cmpint(m.type, ==, DCMSG_DISMISS);
	g_assert_cmpstr(m.pulse_id, ==, "v1-2");
	g_assert_null(m.responses);
	/* envelope refusals */
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"responses\":{}}"), ==, "bad_message");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"pulse_id\":7,\"responses\":{}}"), ==, "bad_message");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"\",\"responses\":{}}"), ==, "bad_message");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"p\"}"), ==, "bad_responses");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"p\",\"responses\":[1]}"), ==, "bad_responses");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"answer\",\"pulse_id\":\"p\",\"responses\":{},\"final\":\"yes\"}"), ==, "bad_message");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"dismiss\"}"), ==, "bad_message");
	char *longid = g_strdup_printf("{\"v\":1,\"type\":\"dismiss\",\"pulse_id\":\"%0100d\"}", 0);
	g_assert_cmpstr(slug(longid), ==, "unknown_pulse");
	g_free(longid);
}

static void test_stats(void) {
	dcmsg m;
	dcmsg_error e;
	const char *ok = "{\"v\":1,\"type\":\"stats\","
		"\"inbound_video\":{\"freezeCount\":2,\"totalFreezesDuration\":1.25,\"framesDecoded\":900,"
		"\"framesDropped\":3,\"packetsLost\":12,\"jitter\":0.004,\"jitterBufferDelay\":30.5,\"ignored\":\"x\"},"
		"\"inbound_audio\":{\"concealedSamples\":480,\"totalSamplesReceived\":96000},"
		"\"outbound_video\":{\"qualityLimitationReason\":\"bandwidth\",\"qualityLimitationDurations\":{\"bandwidth\":4.5,\"none\":20}},"
		"\"candidate_pair\":{\"currentRoundTripTime\":0.031,\"availableOutgoingBitrate\":1500000}}";
	g_assert_cmpint(dcmsg_parse(ok, strlen(ok), &m, &e), ==, 0);
	g_assert_cmpint(m.type, ==, DCMSG_STATS);
	g_assert_cmpuint(m.stats.present, ==, 15);
	g_assert_cmpfloat(m.stats.freeze_count, ==, 2);
	g_assert_cmpfloat(m.stats.total_freezes_duration, ==, 1.25);
	g_assert_cmpfloat(m.stats.concealed_samples, ==, 480);
	g_assert_cmpstr(m.stats.quality_limitation_reason, ==, "bandwidth");
	g_assert_cmpfloat(m.stats.ql_duration_bandwidth, ==, 4.5);
	g_assert_cmpfloat(m.stats.current_round_trip_time, ==, 0.031);
	char *j = dcmsg_stats_json(&m.stats);
	json_error_t jerr;
	json_t *o = json_loads(j, 0, &jerr);
	g_assert_nonnull(o);
	g_assert_cmpfloat(json_real_value(json_object_get(json_object_get(o, "inbound_video"), "freezeCount")), ==, 2);
	g_assert_null(json_object_get(json_object_get(o, "inbound_video"), "ignored"));
	json_decref(o);
	free(j);
	dcmsg_clear(&m);
	/* packetsLost is signed (duplicates) */
	const char *neg = "{\"v\":1,\"type\":\"stats\",\"inbound_video\":{\"packetsLost\":-3}}";
	g_assert_cmpint(dcmsg_parse(neg, strlen(neg), &m, &e), ==, 0);
	g_assert_cmpfloat(m.stats.packets_lost, ==, -3);
	/* one group is enough */
	const char *one = "{\"v\":1,\"type\":\"stats\",\"candidate_pair\":{\"currentRoundTripTime\":0.1}}";
	g_assert_cmpint(dcmsg_parse(one, strlen(one), &m, &e), ==, 0);
	g_assert_cmpuint(m.stats.present, ==, DCMSG_STATS_CANDIDATE_PAIR);
	/* refusals */
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\"}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"inbound_video\":[]}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"inbound_video\":{\"freezeCount\":-1}}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"inbound_video\":{\"freezeCount\":\"2\"}}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"inbound_video\":{\"jitter\":1e300}}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"outbound_video\":{\"qualityLimitationReason\":\"aliens\"}}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"outbound_video\":{\"qualityLimitationDurations\":3}}"), ==, "bad_stats");
	g_assert_cmpstr(slug("{\"v\":1,\"type\":\"stats\",\"candidate_pair\":{\"currentRoundTripTime\":7200}}"), ==, "bad_stats");
}

static void test_size_limit(void) {
	dcmsg m;
	dcmsg_error e;
	/* a valid ping padded to exactly the limit is accepted, one byte more is not */
	GString *s = g_string_new("{\"v\":1,\"type\":\"ping\",\"pad\":\"");
	while(s->len < DCMSG_MAX_BYTES - 2)
		g_string_append_c(s, 'x');
	g_string_append(s, "\"}");
	g_assert_cmpuint(s->len, ==, DCMSG_MAX_BYTES);
	g_assert_cmpint(dcmsg_parse(s->str, s->len, &m, &e), ==, 0);
	g_string_insert_c(s, 30, 'x');
	g_assert_cmpint(dcmsg_parse(s->str, s->len, &m, &e), ==, -1);
	g_assert_cmpstr(e.code, ==, "too_large");
	g_string_free(s, TRUE);
}

static json_t *decode(char *text) {
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	free(text);
	g_assert_nonnull(j);
	g_assert_cmpint(json_integer_value(json_object_get(j, "v")), ==, 1);
	return j;
}

static void test_builders(void) {
	json_t *j = decode(dcmsg_hello("client", "visit-1"));
	g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "hello");
	g_assert_cmpstr(json_string_value(json_object_get(j, "role")), ==, "client");
	g_assert_cmpstr(json_string_value(json_object_get(j, "visit_id")), ==, "visit-1");
	json_decref(j);
	j = decode(dcmsg_pong("abc"));
	g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "pong");
	g_assert_cmpstr(json_string_value(json_object_get(j, "ref")), ==, "abc");
	json_decref(j);
	j = decode(dcmsg_pong(""));
	g_assert_null(json_object_get(j, "ref"));
	json_decref(j);
	j = decode(dcmsg_ack("v1-1", 1));
	g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "ack");
	g_assert_cmpstr(json_string_value(json_object_get(j, "pulse_id")), ==, "v1-1");
	g_assert_true(json_is_true(json_object_get(j, "stored")));
	g_assert_true(json_is_true(json_object_get(j, "complete")));
	json_decref(j);
	j = decode(dcmsg_pulse_expired("v1-3"));
	g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "pulse_expired");
	json_decref(j);
	dcmsg_error e = { .code = "unknown_type", .reason = "unknown message type", .ref = "r9" };
	j = decode(dcmsg_error_text(&e));
	g_assert_cmpstr(json_string_value(json_object_get(j, "type")), ==, "error");
	g_assert_cmpstr(json_string_value(json_object_get(j, "code")), ==, "unknown_type");
	g_assert_cmpstr(json_string_value(json_object_get(j, "ref")), ==, "r9");
	json_decref(j);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dcmsg/parse", test_parse);
	g_test_add_func("/dcmsg/answer-dismiss", test_answer_and_dismiss);
	g_test_add_func("/dcmsg/stats", test_stats);
	g_test_add_func("/dcmsg/size-limit", test_size_limit);
	g_test_add_func("/dcmsg/builders", test_builders);
	return g_test_run();
}
