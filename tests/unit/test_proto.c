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

	/* dismiss (kiosks): sync, needs a pulse_id */
	g_assert_cmpint(parse("{\"request\":\"dismiss\",\"pulse_id\":\"v-1\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_DISMISS);
	g_assert_true(req.sync);
	g_assert_cmpint(code_of("{\"request\":\"dismiss\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"dismiss\",\"pulse_id\":4}"), ==, PROTO_ERR_INVALID_ELEMENT);

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

/* report and forget: kinds, filters, every refusal */
static void test_report_forget(void) {
	proto_request req;
	proto_error err;
	json_t *body = json_loads("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"compare\","
		"\"format\":\"json\",\"filters\":{\"therapist\":\"T-01\",\"client\":\"C-7\",\"modality\":\"video\","
		"\"instrument\":\"ap-end\",\"from\":\"2024-05-01\",\"to\":\"2024-05-31\",\"research\":true,"
		"\"limit\":50}}", 0, NULL);
	g_assert_nonnull(body);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_REPORT);
	g_assert_false(req.sync);         /* answered asynchronously (PROTOCOL v1.1) */
	g_assert_cmpint(req.report_kind, ==, PROTO_REPORT_COMPARE);
	g_assert_cmpstr(req.supervisor_key, ==, "s");
	g_assert_cmpstr(req.filters.therapist, ==, "T-01");
	g_assert_cmpstr(req.filters.client, ==, "C-7");
	g_assert_cmpstr(req.filters.modality, ==, "video");
	g_assert_cmpstr(req.filters.instrument, ==, "ap-end");
	g_assert_cmpint(req.filters.from_us, ==, 1714521600000000LL);          /* 2024-05-01T00:00Z */
	g_assert_cmpint(req.filters.to_us, ==, 1717200000000000LL);            /* 2024-06-01T00:00Z */
	g_assert_cmpint(req.filters.research, ==, 1);
	g_assert_cmpint(req.filters.limit, ==, 50);
	g_assert_null(req.filters.visit_id);
	json_decref(body);
	/* defaults; every kind; visit_id top level or in filters */
	g_assert_cmpint(parse("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"summary\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.report_kind, ==, PROTO_REPORT_SUMMARY);
	g_assert_cmpint(req.filters.research, ==, -1);
	g_assert_cmpint(req.filters.from_us, ==, 0);
	g_assert_cmpint(req.filters.limit, ==, 0);
	g_assert_cmpint(parse("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visits\",\"filters\":null}", &req, &err), ==, 0);
	g_assert_cmpint(req.report_kind, ==, PROTO_REPORT_VISITS);
	g_assert_cmpint(parse("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visit\",\"visit_id\":\"v1\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.report_kind, ==, PROTO_REPORT_VISIT);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visit\",\"filters\":{\"visit_id\":\"v1\"}}"), ==, 0);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visit\",\"visit_id\":\"v1\",\"filters\":{\"visit_id\":\"v1\"}}"), ==, 0);
	/* times: µs integers, full ISO 8601 with zones and fractions */
	g_assert_cmpint(parse("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visits\","
		"\"filters\":{\"from\":1700000000000000,\"to\":\"2024-05-01T12:00:00.5+02:00\"}}", &req, &err), ==, 0);
	g_assert_cmpint(req.filters.from_us, ==, 1700000000000000LL);
	g_assert_cmpint(req.filters.to_us, ==, 1714557600500000LL);
	int64_t t = 0;
	g_assert_cmpint(proto_parse_time("2024-05-01T10:00:00Z", false, &t), ==, 0);
	g_assert_cmpint(t, ==, 1714557600000000LL);
	g_assert_cmpint(proto_parse_time("2024-05-01T10:00:00", true, &t), ==, 0);    /* no zone: UTC */
	g_assert_cmpint(t, ==, 1714557600000000LL);
	g_assert_cmpint(proto_parse_time("2024-02-29", true, &t), ==, 0);
	g_assert_cmpint(t, ==, 1709251200000000LL);                                 /* 2024-03-01 */
	g_assert_cmpint(proto_parse_time("1714557600000000", false, &t), ==, 0);
	g_assert_cmpint(t, ==, 1714557600000000LL);
	const char *bad_times[] = { "", "yesterday", "2024-13-01", "2023-02-29", "2024-5-1", "2024-05-01 10:00",
		"2024-05-01T25:00:00Z", "1969-12-31", "2024-05-01X", "123456789012345678", "-5", "2024-05-01T10:00:00Zjunk" };
	for(size_t i = 0; i < G_N_ELEMENTS(bad_times); i++) {
		g_test_message("bad time '%s'", bad_times[i]);
		g_assert_cmpint(proto_parse_time(bad_times[i], false, &t), ==, -1);
	}
	g_assert_cmpstr(proto_report_kind_name(PROTO_REPORT_COMPARE), ==, "compare");
	g_assert_cmpstr(proto_report_kind_name(PROTO_REPORT_VISIT), ==, "visit");

	/* refusals */
	const char *head = "{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visits\"";
	struct { const char *tail; int code; } cases[] = {
		{ ",\"filters\":[]}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"therapist_code\":\"T-01\"}}", PROTO_ERR_INVALID_ELEMENT },   /* unknown key */
		{ ",\"filters\":{\"therapist\":\"T 01\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"client\":7}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"modality\":\"phone\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"instrument\":\"\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"from\":\"last week\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"from\":-1}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"from\":1.5}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"to\":true}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"from\":\"2024-05-02\",\"to\":\"2024-05-01\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"research\":\"yes\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"limit\":0}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"limit\":1000001}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"filters\":{\"limit\":\"10\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"format\":\"csv\"}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"format\":1}", PROTO_ERR_INVALID_ELEMENT },
		{ ",\"visit_id\":\"a\",\"filters\":{\"visit_id\":\"b\"}}", PROTO_ERR_INVALID_ELEMENT },
		{ "}", 0 },
	};
	char buf[512];
	for(size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_snprintf(buf, sizeof(buf), "%s%s", head, cases[i].tail);
		g_test_message("%s", buf);
		g_assert_cmpint(code_of(buf), ==, cases[i].code);
	}
	g_assert_cmpint(code_of("{\"request\":\"report\",\"kind\":\"visits\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":\"s\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"histogram\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":5,\"kind\":\"visits\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"report\",\"supervisor_key\":\"s\",\"kind\":\"visit\"}"), ==, PROTO_ERR_MISSING_ELEMENT);

	/* forget */
	g_assert_cmpint(parse("{\"request\":\"forget\",\"supervisor_key\":\"s\",\"client_code\":\"C-0042\"}", &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_FORGET);
	g_assert_false(req.sync);
	g_assert_cmpint(code_of("{\"request\":\"forget\",\"client_code\":\"C-0042\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"forget\",\"supervisor_key\":\"s\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"forget\",\"supervisor_key\":\"s\",\"client_code\":\"Jane Doe\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"forget\",\"supervisor_key\":\"s\",\"client_code\":[]}"), ==, PROTO_ERR_INVALID_ELEMENT);
}

/* client_history: a therapist credential (key or token), visit_id, limit 1..100 */
static void test_client_history(void) {
	proto_request req;
	proto_error err;
	/* the strings point into the body: kept until read */
	json_t *body = json_loads("{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v1\"}", 0, NULL);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpint(req.kind, ==, PROTO_CLIENT_HISTORY);
	g_assert_false(req.sync);                 /* answered off the call path, like report */
	g_assert_cmpstr(req.visit_id, ==, "v1");
	g_assert_cmpstr(req.therapist_key, ==, "k");
	g_assert_null(req.therapist_token);
	g_assert_cmpint(req.filters.limit, ==, PROTO_HISTORY_LIMIT_DEFAULT);
	json_decref(body);
	body = json_loads("{\"request\":\"client_history\",\"therapist_token\":\"1,janus,x:sig\",\"visit_id\":\"v1\","
		"\"limit\":100}", 0, NULL);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpstr(req.therapist_token, ==, "1,janus,x:sig");
	g_assert_null(req.therapist_key);
	g_assert_cmpint(req.filters.limit, ==, 100);
	json_decref(body);
	g_assert_cmpint(parse("{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v1\",\"limit\":1}",
		&req, &err), ==, 0);
	g_assert_cmpint(req.filters.limit, ==, 1);
	static const struct { const char *body; int code; } bad[] = {
		{ "{\"request\":\"client_history\",\"visit_id\":\"v1\"}", PROTO_ERR_MISSING_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\"}", PROTO_ERR_MISSING_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"\"}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":7}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"therapist_token\":\"t\",\"visit_id\":\"v\"}",
			PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v\",\"limit\":0}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v\",\"limit\":101}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v\",\"limit\":2.5}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"therapist_key\":\"k\",\"visit_id\":\"v\",\"limit\":\"5\"}", PROTO_ERR_INVALID_ELEMENT },
		{ "{\"request\":\"client_history\",\"supervisor_key\":\"s\",\"visit_id\":\"v\"}", PROTO_ERR_MISSING_ELEMENT },
	};
	for(size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_test_message("%s", bad[i].body);
		g_assert_cmpint(code_of(bad[i].body), ==, bad[i].code);
	}
}

/* A reason quotes the request, cut at a byte count: a cut inside a
 * multi-byte character must not make the answer unbuildable (the fuzzer
 * found `"request":"confi===…ø===gure"`: proto_error_json returned NULL). */
static void test_error_json_utf8_cut(void) {
	for(int pad = 55; pad < 70; pad++) {
		GString *req = g_string_new("{\"request\":\"");
		for(int i = 0; i < pad; i++)
			g_string_append_c(req, '=');
		g_string_append(req, "\xc3\xb8\xc3\xb8gure\"}");
		json_error_t jerr;
		json_t *body = json_loads(req->str, 0, &jerr);
		g_assert_nonnull(body);
		proto_request r;
		proto_error e;
		g_assert_cmpint(proto_parse(body, &r, &e), ==, -1);
		g_assert_cmpint(e.code, ==, PROTO_ERR_UNKNOWN_REQUEST);
		json_t *j = proto_error_json(&e);
		g_assert_nonnull(j);
		g_assert_true(g_utf8_validate(json_string_value(json_object_get(j, "error")), -1, NULL));
		json_decref(j);
		json_decref(body);
		g_string_free(req, TRUE);
	}
}

/* therapist_token / supervisor_token in place of the keys: one or the
 * other, a string of at most AUTH_SIGNED_MAX bytes. */
static void test_tokens(void) {
	proto_request req;
	proto_error err;
	const char *tok = "1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XFko=";
	json_t *body = json_pack("{s:s, s:s, s:s}", "request", "create", "therapist_token", tok, "client_code", "C-1");
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_cmpstr(req.therapist_token, ==, tok);
	g_assert_null(req.therapist_key);
	json_decref(body);
	body = json_pack("{s:s, s:s, s:s, s:s}", "request", "join", "role", "therapist", "visit_id", "v",
		"therapist_token", tok);
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	g_assert_nonnull(req.therapist_token);
	json_decref(body);
	const char *sup[] = {
		"{\"request\":\"join\",\"role\":\"observer\",\"visit_id\":\"v\",\"supervisor_token\":\"t\"}",
		"{\"request\":\"report\",\"kind\":\"visits\",\"supervisor_token\":\"t\"}",
		"{\"request\":\"forget\",\"client_code\":\"C-1\",\"supervisor_token\":\"t\"}",
	};
	for(size_t i = 0; i < G_N_ELEMENTS(sup); i++) {
		g_assert_cmpint(parse(sup[i], &req, &err), ==, 0);
		g_assert_nonnull(req.supervisor_token);
		g_assert_null(req.supervisor_key);
	}
	/* both, neither, wrong types, empty, NUL, too long */
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_key\":\"k\",\"therapist_token\":\"t\",\"client_code\":\"C-1\"}"),
		==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"forget\",\"supervisor_key\":\"k\",\"supervisor_token\":\"t\",\"client_code\":\"C-1\"}"),
		==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"client_code\":\"C-1\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_token\":null,\"client_code\":\"C-1\"}"), ==, PROTO_ERR_MISSING_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_token\":5,\"client_code\":\"C-1\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"create\",\"therapist_token\":\"\",\"client_code\":\"C-1\"}"), ==, PROTO_ERR_INVALID_ELEMENT);
	g_assert_cmpint(code_of("{\"request\":\"join\",\"role\":\"observer\",\"visit_id\":\"v\",\"supervisor_token\":[\"t\"]}"),
		==, PROTO_ERR_INVALID_ELEMENT);
	char *big = g_strnfill(AUTH_SIGNED_MAX + 1, 'a');
	body = json_pack("{s:s, s:s, s:s}", "request", "create", "therapist_token", big, "client_code", "C-1");
	g_assert_cmpint(proto_parse(body, &req, &err), ==, -1);
	g_assert_cmpint(err.code, ==, PROTO_ERR_INVALID_ELEMENT);
	json_decref(body);
	big[AUTH_SIGNED_MAX] = '\0';      /* at the limit: the shape is fine (auth decides) */
	body = json_pack("{s:s, s:s, s:s}", "request", "create", "therapist_token", big, "client_code", "C-1");
	g_assert_cmpint(proto_parse(body, &req, &err), ==, 0);
	json_decref(body);
	g_free(big);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/proto/good", test_good_requests);
	g_test_add_func("/proto/refusals", test_each_refusal);
	g_test_add_func("/proto/pulse-answer-schedule", test_pulse_answer_schedule);
	g_test_add_func("/proto/bounds", test_bounds);
	g_test_add_func("/proto/error-json", test_error_json);
	g_test_add_func("/proto/error-json-utf8-cut", test_error_json_utf8_cut);
	g_test_add_func("/proto/report-forget", test_report_forget);
	g_test_add_func("/proto/client-history", test_client_history);
	g_test_add_func("/proto/tokens", test_tokens);
	return g_test_run();
}
