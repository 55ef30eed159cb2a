/* Unit tests for proto.c: request validation and error codes. */
#include <glib.h>
#include <string.h>
#include "proto.h"

static int parse(const char *text, proto_request *req, proto_error *err) {
	json_error_t jerr;
	json_t *body = json_loads(text, JSON_DECODE_ANY, &jerr);
	g_assert_nonnull(body);
	int rc = proto_parse(body, req, err);
	json_decref(body);   /* strings in req are dangling now: tests only read kinds/ints */
	return rc;
}

static int code_of(const char *text) {
	proto_request req;
	proto_error err;
	if(parse(text, &req, &err) == 0)
		return 0;
	g_assert_cmpint(strlen(err.reason), >, 0);
	return err.code;
}

static void test_good_requests(void) {
	proto_request req;
	proto_error err;
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "request", "create",
		"therapist_key", "k", "client_code", "C-0042", "modality", "in_person");
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_CREATE);
	g_assert_true(req.sync);
	g_assert_cmpstr(req.client_code, ==, "C-0042");
	g_assert_cmpint(req.modality, ==, VISIT_MODALITY_IN_PERSON);
	json_decref(body);

	body = json_pack("{s:s, s:s, s:s, s:{s:b}, s:s}", "request", "join", "role", "client",
		"invite", "inv", "consent", "research", 1, "unknown_field", "ignored");
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_JOIN);
	g_assert_false(req.sync);
	g_assert_cmpint(req.role, ==, VISIT_ROLE_CLIENT);
	g_assert_cmpstr(req.invite, ==, "inv");
	g_assert_null(req.rejoin_key);
	g_assert_true(req.research_consent);
	json_decref(body);

	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\"}"), ==, 0);
	g_assert_cmpint(parse("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.modality, ==, VISIT_MODALITY_VIDEO);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"therapist\",\"visit_id\":\"v\",\"therapist_key\":\"k\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"observer\",\"visit_id\":\"v\",\"supervisor_key\":\"k\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"admit\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"end\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"leave\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"status\"}"), ==, 0);
	g_assert_cmpint(parse("{\"request\":\"configure\",\"audio\":false}", &req, &err), ==, 0);
	g_assert_cmpint(req.audio, ==, 0);
	g_assert_cmpint(req.video, ==, -1);
	g_assert_cmpint(parse("{\"request\":\"configure\",\"audio\":true,\"video\":true}", &req, &err), ==, 0);
	g_assert_cmpint(req.audio, ==, 1);
	g_assert_cmpint(req.video, ==, 1);
}

static void test_each_refusal(void) {
	proto_request req;
	proto_error err;
	g_assert_cmpint(proto_parse(NULL, &req, &err), ==, -1);
	g_assert_cmpint(err.code, ==, PROTO_ERR_NO_MESSAGE);
	g_assert_cmpint(code_of("[1,2]"), ==, PROTO_ERR_INVALID_JSON);
	g_assert_cmpint(code_of("\"create\""), ==, PROTO_ERR_INVALID_JSON);
	g_assert_cmpint(code_of("{}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":5}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"fly\"}"), ==, PROTO_ERR_UNKNOWN_REQUEST);
	g_assert_cmpint(code_of("{\"request\":\"CREATE\"}"), ==, PROTO_ERR_UNKNOWN_REQUEST);
	/* create */
	g_assert_cmpint(code_of("{\"request\":\"create\",\"client_code\":\"C-1\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":42}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":7,\"client_code\":\"C-1\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"Jane Doe\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\",\"modality\":\"carrier-pigeon\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\",\"modality\":1}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\",\"instruments\":[]}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\",\"schedule\":\"x\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	/* join */
	g_assert_cmpint(code_of("{\"request\":\"join\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"admin\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"therapist\",\"therapist_key\":\"k\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"therapist\",\"visit_id\":\"v\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"consent\":{\"research\":true}}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"consent\":true}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"consent\":{}}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"consent\":{\"research\":\"yes\"}}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"rejoin_key\":3,\"consent\":{\"research\":true}}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"observer\",\"visit_id\":\"v\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	/* configure */
	g_assert_cmpint(code_of("{\"request\":\"configure\",\"audio\":\"yes\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"configure\",\"video\":1}"), ==, PROTO_ERR_INVALID_ELEMENT);
}

static void test_pulse_answer_schedule(void) {
	proto_request req;
	proto_error err;
	g_assert_cmpint(parse("{\"request\":\"pulse\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_PULSE);
	g_assert_false(req.sync);
	g_assert_cmpint(req.target, ==, VISIT_ROLE_CLIENT);
	g_assert_false(req.target_both);
	g_assert_cmpint(parse("{\"request\":\"pulse\",\"target\":\"therapist\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.target, ==, VISIT_ROLE_THERAPIST);
	g_assert_cmpint(parse("{\"request\":\"pulse\",\"target\":\"both\"}", &req, &err), ==, 0);
	g_assert_true(req.target_both);
	g_assert_cmpint(code_of("{\"request\":\"pulse\",\"target\":\"everyone\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"pulse\",\"instrument\":5}"), ==, PROTO_ERR_INVALID_ELEMENT);

	json_t *body = json_pack("{s:s, s:s, s:{s:f}, s:b}", "request", "answer", "pulse_id", "v-1",
		"responses", "bond", 7.5, "final", 0);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_ANSWER);
	g_assert_true(req.sync);
	g_assert_false(req.final);
	g_assert_true(json_is_object(req.responses));
	json_decref(body);
	g_assert_cmpint(parse("{\"request\":\"answer\",\"pulse_id\":\"p\",\"responses\":{}}", &req, &err), ==, 0);
	g_assert_true(req.final);
	g_assert_cmpint(code_of("{\"request\":\"answer\",\"responses\":{}}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"answer\",\"pulse_id\":\"p\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"answer\",\"pulse_id\":\"p\",\"responses\":[]}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"answer\",\"pulse_id\":\"p\",\"responses\":{},\"final\":1}"), ==, PROTO_ERR_INVALID_ELEMENT);

	/* schedules and instruments on create */
	const char *base = "{\"request\":\"create\",\"therapist_key\":\"k\",\"client_code\":\"C-1\"";
	char buf[512];
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":[60,600],\"end_pulse\":false},\"instruments\":{\"end\":\"srs\"}}", base);
	g_assert_cmpint(parse(buf, &req, &err), ==, 0);
	g_assert_cmpint(req.n_offsets, ==, 2);
	g_assert_cmpint(req.offsets_s[1], ==, 600);
	g_assert_cmpint(req.end_pulse, ==, 0);
	g_snprintf(buf, sizeof(buf), "%s}", base);
	g_assert_cmpint(parse(buf, &req, &err), ==, 0);
	g_assert_cmpint(req.n_offsets, ==, -1);
	g_assert_cmpint(req.end_pulse, ==, -1);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":[600,60]}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":[-1]}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":[1.5]}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":\"60\"}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"in_session_at_s\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"schedule\":{\"end_pulse\":\"no\"}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	g_snprintf(buf, sizeof(buf), "%s,\"instruments\":{\"end\":7}}", base);
	g_assert_cmpint(code_of(buf), ==, PROTO_ERR_INVALID_ELEMENT);
	/* languages on join */
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"consent\":{\"research\":true},\"language\":\"de-AT\"}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"client\",\"invite\":\"i\",\"consent\":{\"research\":true},\"language\":\"d\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"therapist\",\"visit_id\":\"v\",\"therapist_key\":\"k\",\"language\":\"en;drop\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
}

static void test_bounds(void) {
	/* a string of PROTO_STRING_MAX is fine, one more is not */
	char *ok = g_strnfill(PROTO_STRING_MAX, 'k');
	char *long1 = g_strnfill(PROTO_STRING_MAX + 1, 'k');
	json_t *body = json_pack("{s:s, s:s, s:s}", "request", "create", "therapist_key", ok, "client_code", "C-1");
	proto_request req;
	proto_error err;
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	json_object_set_new(body, "therapist_key", json_string(long1));
	g_assert_cmpint(proto_parse(body, &req, &err), ==, -1);
	g_assert_cmpint(err.code, ==, PROTO_ERR_INVALID_ELEMENT);
	/* an embedded NUL is refused, not truncated */
	json_object_set_new(body, "therapist_key", json_stringn("ab\0cd", 5));
	g_assert_cmpint(proto_parse(body, &req, &err), ==, -1);
	g_assert_cmpint(err.code, ==, PROTO_ERR_INVALID_ELEMENT);
	json_decref(body);
	/* the reason never grows past its buffer, even for a huge request name */
	char *huge = g_strnfill(10000, 'x');
	body = json_pack("{s:s}", "request", huge);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, -1);
	g_assert_cmpint(strlen(err.reason), <, PROTO_REASON_MAX);
	json_decref(body);
	g_free(ok); g_free(long1); g_free(huge);
}

static void test_error_json(void) {
	proto_error err;
	proto_fail(&err, PROTO_ERR_UNAUTHORIZED, "Unauthorized (%s)", "x");
	json_t *j = proto_error_json(&err);
	g_assert_cmpstr(json_string_value(json_object_get(j, "alliance")), ==, "error");
	g_assert_cmpint(json_integer_value(json_object_get(j, "error_code")), ==, 475);
	g_assert_cmpstr(json_string_value(json_object_get(j, "error")), ==, "Unauthorized (x)");
	json_decref(j);
	/* every code has its own slug */
	GHashTable *slugs = g_hash_table_new(g_str_hash, g_str_equal);
	for(int c = PROTO_ERR_NO_MESSAGE; c <= PROTO_ERR_STORE; c++) {
		const char *slug = proto_error_slug(c);
		g_assert_false(g_hash_table_contains(slugs, slug));
		g_hash_table_add(slugs, (gpointer)slug);
	}
	g_assert_cmpstr(proto_error_slug(PROTO_ERR_INTERNAL), ==, "internal");
	g_hash_table_destroy(slugs);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/proto/good", test_good_requests);
	g_test_add_func("/proto/refusals", test_each_refusal);
	g_test_add_func("/proto/pulse-answer-schedule", test_pulse_answer_schedule);
	g_test_add_func("/proto/bounds", test_bounds);
	g_test_add_func("/proto/error-json", test_error_json);
	return g_test_run();
}
