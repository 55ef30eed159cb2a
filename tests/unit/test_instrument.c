/* Unit tests for instrument.c: definitions, answers, scores and rules.
 * Fixtures: conf/instruments (shipped) and tests/unit/fixtures/instruments
 * (SRS- and WAI-SR-shaped definitions with placeholder texts, and bad/,
 * one broken definition per kind of error). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "instrument.h"

#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif
#define FIXTURES "tests/unit/fixtures/instruments"
#define EPS 1e-9

static char *src_path(const char *rel) {
	return g_build_filename(AP_SRCDIR, rel, NULL);
}

/* Parse a file of the source tree; fails the test with the parser's
 * message if it is refused. */
static instrument *load(const char *rel) {
	char *path = src_path(rel), *text = NULL, *base = g_path_get_basename(rel);
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	char err[INSTRUMENT_ERR_MAX];
	instrument *ins = instrument_parse(text, len, base, err, sizeof(err));
	if(ins == NULL)
		g_assert_cmpstr(err, ==, "(no error)");
	g_assert_cmpstr(err, ==, "");
	g_free(path);
	g_free(text);
	g_free(base);
	return ins;
}

/* The parser's verdict on a definition given inline: "ok" or its message. */
static const char *verdict_of(const char *text) {
	static char err[INSTRUMENT_ERR_MAX];
	instrument *ins = instrument_parse(text, strlen(text), "t.json", err, sizeof(err));
	if(ins == NULL)
		return err;
	instrument_free(ins);
	return "ok";
}

static json_t *J(const char *text) {
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	g_assert_nonnull(j);
	return j;
}

/* An answer from {item: value}, which must be accepted. */
static void answer_of(const instrument *ins, instrument_answer *a, const char *responses) {
	instrument_answer_init(a, ins);
	json_t *r = J(responses);
	char detail[160];
	instrument_verdict v = instrument_answer_merge(ins, r, a, detail, sizeof(detail));
	if(v != INSTR_OK)
		g_assert_cmpstr(detail, ==, "");
	json_decref(r);
}

static void score_of(const instrument *ins, const char *responses, instrument_scores *s) {
	instrument_answer a;
	answer_of(ins, &a, responses);
	g_assert_true(instrument_answer_complete(ins, &a));
	g_assert_cmpint(instrument_score(ins, &a, s), ==, 0);
}

static double score_named(const instrument_scores *s, const char *name) {
	double v = NAN;
	g_assert_true(instrument_score_get(s, name, &v));
	return v;
}

/* ---- the shipped definitions ----------------------------------------------- */

static void check_vas_0_10(const instrument *ins) {
	json_t *p = instrument_pulse_json(ins, "en", NULL);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(p, "items"), i, it) {
		json_t *sc = json_object_get(it, "scale");
		g_assert_cmpstr(json_string_value(json_object_get(sc, "type")), ==, "vas");
		g_assert_cmpfloat(json_number_value(json_object_get(sc, "min")), ==, 0);
		g_assert_cmpfloat(json_number_value(json_object_get(sc, "max")), ==, 10);
		g_assert_cmpfloat(json_number_value(json_object_get(sc, "step")), ==, 0.1);
		g_assert_nonnull(json_string_value(json_object_get(sc, "min_label")));
		g_assert_nonnull(json_string_value(json_object_get(sc, "max_label")));
	}
	json_decref(p);
}

static void test_shipped_pulse(void) {
	instrument *ins = load("conf/instruments/ap-pulse.json");
	instrument_scores s;
	double score = 0, thr = 0, base = 0;
	g_assert_cmpstr(instrument_id(ins), ==, "ap-pulse");
	g_assert_cmpstr(instrument_version(ins), ==, "1.0");
	g_assert_cmpstr(instrument_kind(ins), ==, "in_session");
	g_assert_cmpstr(instrument_source(ins), ==, "ap-pulse.json");
	g_assert_false(instrument_validated(ins));
	g_assert_cmpstr(instrument_default_language(ins), ==, "en");
	g_assert_cmpint(instrument_item_count(ins), ==, 2);
	check_vas_0_10(ins);
	score_of(ins, "{\"understood\": 10, \"focus\": 10}", &s);
	g_assert_cmpfloat(s.total, ==, 20);
	g_assert_cmpint(s.n_sub, ==, 0);
	score_of(ins, "{\"understood\": 0, \"focus\": 0}", &s);
	g_assert_cmpfloat(s.total, ==, 0);
	/* cutoff: below 12 */
	g_assert_cmpstr(instrument_rule_score_name(ins, false), ==, "total");
	score_of(ins, "{\"understood\": 5.9, \"focus\": 6.0}", &s);
	g_assert_true(instrument_rule_cutoff(ins, &s, &score, &thr));
	g_assert_cmpfloat_with_epsilon(score, 11.9, EPS);
	g_assert_cmpfloat(thr, ==, 12);
	score_of(ins, "{\"understood\": 6, \"focus\": 6}", &s);
	g_assert_false(instrument_rule_cutoff(ins, &s, &score, &thr));
	/* drop: 4 points from the mean of at least 2 earlier visits */
	g_assert_cmpstr(instrument_rule_score_name(ins, true), ==, "total");
	double earlier[] = { 16, 18 };
	score_of(ins, "{\"understood\": 6.5, \"focus\": 6.5}", &s);          /* 13: a fall of 4 */
	g_assert_true(instrument_rule_drop(ins, &s, earlier, 2, &score, &base));
	g_assert_cmpfloat(base, ==, 17);
	g_assert_false(instrument_rule_drop(ins, &s, earlier, 1, NULL, NULL));
	score_of(ins, "{\"understood\": 6.6, \"focus\": 6.5}", &s);          /* 13.1: 3.9 */
	g_assert_false(instrument_rule_drop(ins, &s, earlier, 2, &score, &base));
	instrument_free(ins);
}

static void test_shipped_end(void) {
	instrument *end = load("conf/instruments/ap-end.json");
	instrument *th = load("conf/instruments/ap-therapist-end.json");
	instrument_scores s;
	double score = 0, thr = 0;
	g_assert_cmpstr(instrument_kind(end), ==, "end");
	g_assert_cmpstr(instrument_kind(th), ==, "therapist_end");
	g_assert_false(instrument_validated(end));
	g_assert_false(instrument_validated(th));
	check_vas_0_10(end);
	check_vas_0_10(th);
	/* 0..40 in total, 0..10 per subscale (one item each) */
	double lo = -1, hi = -1;
	g_assert_true(instrument_score_range(end, "total", &lo, &hi));
	g_assert_cmpfloat(lo, ==, 0);
	g_assert_cmpfloat(hi, ==, 40);
	g_assert_true(instrument_score_range(th, "bond", &lo, &hi));
	g_assert_cmpfloat(hi, ==, 10);
	/* the therapist's form mirrors the client's item by item */
	static const char *const ids[] = { "goals", "tasks", "bond", "overall" };
	g_assert_cmpint(instrument_item_count(end), ==, 4);
	g_assert_cmpint(instrument_item_count(th), ==, 4);
	for(int i = 0; i < 4; i++) {
		g_assert_cmpstr(instrument_item_id(end, i), ==, ids[i]);
		g_assert_cmpstr(instrument_item_id(th, i), ==, ids[i]);
	}
	g_assert_null(instrument_item_id(end, 4));
	g_assert_null(instrument_item_id(end, -1));
	const char *full = "{\"goals\": 10, \"tasks\": 10, \"bond\": 10, \"overall\": 10}";
	score_of(end, full, &s);
	g_assert_cmpfloat(s.total, ==, 40);
	score_of(th, full, &s);
	g_assert_cmpfloat(s.total, ==, 40);
	/* one subscale per item, in item order */
	score_of(end, "{\"goals\": 7.5, \"tasks\": 6.2, \"bond\": 9.9, \"overall\": 8}", &s);
	g_assert_cmpint(s.n_sub, ==, 4);
	for(int i = 0; i < 4; i++)
		g_assert_cmpstr(s.sub_name[i], ==, ids[i]);
	g_assert_cmpfloat(score_named(&s, "goals"), ==, 7.5);
	g_assert_cmpfloat(score_named(&s, "tasks"), ==, 6.2);
	g_assert_cmpfloat(score_named(&s, "bond"), ==, 9.9);
	g_assert_cmpfloat(score_named(&s, "overall"), ==, 8);
	g_assert_cmpfloat(score_named(&s, "total"), ==, 31.6);
	/* cutoff below 30: a sum that doubles put at 29.999999999999996 is 30 */
	double naive = 0;
	naive += 10.0; naive += 6.2; naive += 6.1; naive += 7.7;
	g_assert_cmpfloat(naive, <, 30);
	score_of(end, "{\"goals\": 10.0, \"tasks\": 6.2, \"bond\": 6.1, \"overall\": 7.7}", &s);
	g_assert_cmpfloat(s.total, ==, 30);
	g_assert_false(instrument_rule_cutoff(end, &s, &score, &thr));
	g_assert_cmpfloat(thr, ==, 30);
	score_of(end, "{\"goals\": 10.0, \"tasks\": 6.2, \"bond\": 6.1, \"overall\": 7.6}", &s);
	g_assert_true(instrument_rule_cutoff(end, &s, &score, &thr));
	g_assert_cmpfloat(score, ==, 29.9);
	/* drop: 5 points, at least 2 earlier visits */
	double earlier[] = { 34, 36 };
	score_of(end, "{\"goals\": 7.5, \"tasks\": 7.5, \"bond\": 7.5, \"overall\": 7.5}", &s);
	g_assert_true(instrument_rule_drop(end, &s, earlier, 2, NULL, NULL));
	g_assert_false(instrument_rule_drop(end, &s, earlier, 1, NULL, NULL));
	/* the therapist's form never raises alerts */
	g_assert_null(instrument_rule_score_name(th, false));
	g_assert_null(instrument_rule_score_name(th, true));
	score_of(th, "{\"goals\": 0, \"tasks\": 0, \"bond\": 0, \"overall\": 0}", &s);
	g_assert_false(instrument_rule_cutoff(th, &s, &score, &thr));
	g_assert_false(instrument_rule_drop(th, &s, earlier, 2, NULL, NULL));
	instrument_free(end);
	instrument_free(th);
}

static void test_shipped_tech(void) {
	instrument *ins = load("conf/instruments/ap-tech.json");
	instrument_scores s;
	g_assert_cmpstr(instrument_kind(ins), ==, "technology");
	g_assert_false(instrument_validated(ins));
	g_assert_cmpint(instrument_item_count(ins), ==, 1);
	/* answered 1 ("not at all" disturbed) .. 5 ("very much"); reverse-keyed
	 * so the score is 6 - answer: higher = better experience */
	static const double expect[] = { 5, 4, 3, 2, 1 };
	for(int v = 1; v <= 5; v++) {
		char r[64];
		snprintf(r, sizeof(r), "{\"disturbance\": %d}", v);
		score_of(ins, r, &s);
		g_assert_cmpfloat(s.total, ==, expect[v - 1]);
	}
	g_assert_null(instrument_rule_score_name(ins, false));
	g_assert_false(instrument_rule_cutoff(ins, &s, NULL, NULL));
	const char *used = NULL;
	json_t *p = instrument_pulse_json(ins, "de", &used);
	g_assert_cmpstr(used, ==, "de");
	json_t *sc = json_object_get(json_array_get(json_object_get(p, "items"), 0), "scale");
	g_assert_cmpstr(json_string_value(json_object_get(sc, "type")), ==, "likert");
	g_assert_cmpint(json_integer_value(json_object_get(sc, "points")), ==, 5);
	g_assert_cmpint(json_integer_value(json_object_get(sc, "min")), ==, 1);
	g_assert_cmpint(json_integer_value(json_object_get(sc, "max")), ==, 5);
	json_t *labels = json_object_get(sc, "labels");
	g_assert_cmpuint(json_array_size(labels), ==, 5);
	g_assert_cmpstr(json_string_value(json_array_get(labels, 0)), ==, "gar nicht");
	g_assert_cmpstr(json_string_value(json_array_get(labels, 4)), ==, "sehr");
	g_assert_null(json_object_get(sc, "step"));
	json_decref(p);
	instrument_free(ins);
}

static void test_shipped_dir(void) {
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	char *dir = src_path("conf/instruments");
	instrument_set *set = instrument_set_load_dir(dir, errors);
	g_assert_nonnull(set);
	g_assert_cmpuint(errors->len, ==, 0);
	g_assert_cmpint(instrument_set_count(set), ==, 4);
	static const char *const order[] = { "ap-end", "ap-pulse", "ap-tech", "ap-therapist-end" };
	for(int i = 0; i < 4; i++) {
		const instrument *ins = instrument_set_nth(set, i);
		g_assert_cmpstr(instrument_id(ins), ==, order[i]);
		g_assert_true(instrument_set_get(set, order[i]) == ins);
		/* the shipped wording is ours and says so */
		g_assert_false(instrument_validated(ins));
		g_assert_cmpint(instrument_item_index(ins, instrument_item_id(ins, 0)), ==, 0);
		g_assert_cmpint(instrument_item_index(ins, "nope"), ==, -1);
		g_assert_cmpint(instrument_item_index(ins, NULL), ==, -1);
	}
	g_assert_null(instrument_set_nth(set, 4));
	g_assert_cmpstr(instrument_id(instrument_set_default(set, "in_session")), ==, "ap-pulse");
	g_assert_cmpstr(instrument_id(instrument_set_default(set, "end")), ==, "ap-end");
	g_assert_cmpstr(instrument_id(instrument_set_default(set, "therapist_end")), ==, "ap-therapist-end");
	g_assert_cmpstr(instrument_id(instrument_set_default(set, "technology")), ==, "ap-tech");
	g_assert_null(instrument_set_default(set, "weekly"));
	g_assert_null(instrument_set_get(set, "srs"));
	g_assert_null(instrument_set_get(set, NULL));
	instrument_set_free(set);
	instrument_set_free(NULL);
	g_free(dir);
	g_ptr_array_free(errors, TRUE);
}

/* ---- the SRS- and WAI-SR-shaped fixtures -------------------------------------- */

static void test_srs_shaped(void) {
	instrument *ins = load(FIXTURES "/srs-shaped.json");
	instrument_scores s;
	double score = 0, thr = 0;
	g_assert_cmpint(instrument_item_count(ins), ==, 4);
	/* no languages declared and a plain title: one undetermined language */
	g_assert_cmpstr(instrument_default_language(ins), ==, "und");
	/* 9.3 + 8.7 + 9.1 + 8.4 = 35.5: below 36 */
	score_of(ins, "{\"item1\": 9.3, \"item2\": 8.7, \"item3\": 9.1, \"item4\": 8.4}", &s);
	g_assert_cmpfloat_with_epsilon(s.total, 35.5, EPS);
	g_assert_true(instrument_rule_cutoff(ins, &s, &score, &thr));
	g_assert_cmpfloat_with_epsilon(score, 35.5, EPS);
	g_assert_cmpfloat(thr, ==, 36);
	/* 9.0 * 4 = 36.0: not below */
	score_of(ins, "{\"item1\": 9.0, \"item2\": 9.0, \"item3\": 9, \"item4\": 9.0}", &s);
	g_assert_cmpfloat(s.total, ==, 36);
	g_assert_false(instrument_rule_cutoff(ins, &s, &score, &thr));
	/* 9.7 + 9.6 + 9.9 + 6.8 is 35.99999999999999 in doubles; the score is
	 * rounded to 1e-6, so it is exactly 36 and not below the cutoff */
	double naive = 0;
	naive += 9.7; naive += 9.6; naive += 9.9; naive += 6.8;
	g_assert_cmpfloat(naive, <, 36);
	score_of(ins, "{\"item1\": 9.7, \"item2\": 9.6, \"item3\": 9.9, \"item4\": 6.8}", &s);
	g_assert_cmpfloat(s.total, ==, 36);
	g_assert_false(instrument_rule_cutoff(ins, &s, &score, &thr));
	g_assert_cmpfloat(score, ==, 36);
	score_of(ins, "{\"item1\": 10, \"item2\": 10, \"item3\": 10, \"item4\": 10}", &s);
	g_assert_cmpfloat(s.total, ==, 40);
	score_of(ins, "{\"item1\": 0, \"item2\": 0, \"item3\": 0, \"item4\": 0}", &s);
	g_assert_cmpfloat(s.total, ==, 0);
	instrument_free(ins);
}

static void test_wai_shaped(void) {
	instrument *ins = load(FIXTURES "/wai-sr-shaped.json");
	instrument_scores s;
	double score = 0, thr = 0, base = 0;
	g_assert_cmpint(instrument_item_count(ins), ==, 12);
	/* goal = w4 w6 w8 w11, task = w1 w2 w10 w12, bond = w3 w5 w7 w9;
	 * w2 and w9 are reverse-keyed: 1 + 5 - value */
	score_of(ins, "{\"w1\":4, \"w2\":5, \"w3\":2, \"w4\":3, \"w5\":5, \"w6\":4,"
		" \"w7\":3, \"w8\":2, \"w9\":2, \"w10\":5, \"w11\":4, \"w12\":3}", &s);
	/* subscales in order of their first item: w1 task, w3 bond, w4 goal */
	g_assert_cmpint(s.n_sub, ==, 3);
	g_assert_cmpstr(s.sub_name[0], ==, "task");
	g_assert_cmpstr(s.sub_name[1], ==, "bond");
	g_assert_cmpstr(s.sub_name[2], ==, "goal");
	g_assert_cmpfloat(score_named(&s, "goal"), ==, 3 + 4 + 2 + 4);              /* 13 */
	g_assert_cmpfloat(score_named(&s, "task"), ==, 4 + (6 - 5) + 5 + 3);        /* 13 */
	g_assert_cmpfloat(score_named(&s, "bond"), ==, 2 + 5 + 3 + (6 - 2));        /* 14 */
	g_assert_true(s.has_total);
	g_assert_cmpfloat(s.total, ==, 40);           /* raw sum would be 42 */
	g_assert_false(instrument_score_get(&s, "alliance", NULL));
	g_assert_false(instrument_score_get(&s, NULL, NULL));
	/* the rules read subscales: cutoff goal below 10, drop bond by 3 */
	g_assert_cmpstr(instrument_rule_score_name(ins, false), ==, "goal");
	g_assert_cmpstr(instrument_rule_score_name(ins, true), ==, "bond");
	g_assert_false(instrument_rule_cutoff(ins, &s, &score, &thr));
	g_assert_cmpfloat(score, ==, 13);
	g_assert_cmpfloat(thr, ==, 10);
	double earlier[] = { 17 };
	g_assert_true(instrument_rule_drop(ins, &s, earlier, 1, &score, &base));   /* min_baseline 1 */
	g_assert_cmpfloat(score, ==, 14);
	g_assert_cmpfloat(base, ==, 17);
	earlier[0] = 16.9;
	g_assert_false(instrument_rule_drop(ins, &s, earlier, 1, &score, &base));
	/* every item at its minimum: reverse-keyed ones count 5 */
	score_of(ins, "{\"w1\":1, \"w2\":1, \"w3\":1, \"w4\":1, \"w5\":1, \"w6\":1,"
		" \"w7\":1, \"w8\":1, \"w9\":1, \"w10\":1, \"w11\":1, \"w12\":1}", &s);
	g_assert_cmpfloat(s.total, ==, 10 + 5 + 5);
	g_assert_cmpfloat(score_named(&s, "goal"), ==, 4);
	g_assert_true(instrument_rule_cutoff(ins, &s, &score, &thr));
	json_t *sj = instrument_scores_json(&s);
	g_assert_cmpfloat(json_number_value(json_object_get(sj, "total")), ==, 20);
	g_assert_cmpfloat(json_number_value(json_object_get(json_object_get(sj, "subscales"), "bond")), ==, 3 + 5);
	json_decref(sj);
	/* the ranges (ceiling flags): reverse keying keeps 1..5 per item */
	double lo = 0, hi = 0;
	g_assert_true(instrument_score_range(ins, "total", &lo, &hi));
	g_assert_cmpfloat(lo, ==, 12);
	g_assert_cmpfloat(hi, ==, 60);
	g_assert_true(instrument_score_range(ins, "bond", &lo, &hi));
	g_assert_cmpfloat(lo, ==, 4);
	g_assert_cmpfloat(hi, ==, 20);
	g_assert_true(instrument_score_range(ins, "goal", NULL, &hi));
	g_assert_false(instrument_score_range(ins, "alliance", &lo, &hi));
	g_assert_false(instrument_score_range(ins, NULL, &lo, &hi));
	g_assert_false(instrument_score_range(NULL, "total", &lo, &hi));
	instrument_free(ins);
}

static void test_scoring_modes(void) {
	const char *def =
		"{\"id\":\"m\",\"version\":\"1\",\"kind\":\"end\",\"title\":\"M\","
		" \"items\":["
		"  {\"id\":\"a\",\"text\":\"A\",\"subscale\":\"x\",\"scale\":{\"type\":\"likert\",\"points\":4,\"min\":0}},"
		"  {\"id\":\"b\",\"text\":\"B\",\"subscale\":\"x\",\"reverse\":true,\"scale\":{\"type\":\"likert\",\"points\":4,\"min\":0}},"
		"  {\"id\":\"c\",\"text\":\"C\",\"subscale\":\"x\",\"scale\":{\"type\":\"vas\",\"min\":-5,\"max\":5,\"step\":0.5,"
		"    \"min_label\":\"lo\",\"max_label\":\"hi\"}}],"
		" \"scoring\":{\"total\":\"";
	/* def + total mode + this + extra top-level keys + "}" */
	const char *def_tail = "\",\"subscales\":\"mean\"}";
	char *text = g_strconcat(def, "mean", def_tail, "}", NULL);
	instrument *ins = instrument_parse(text, strlen(text), "m.json", NULL, 0);
	g_assert_nonnull(ins);
	instrument_scores s;
	/* a = 1, b = 3 reversed to 0 + 3 - 3 = 0, c = 3: mean 4/3 */
	score_of(ins, "{\"a\":1, \"b\":3, \"c\":3}", &s);
	g_assert_cmpfloat_with_epsilon(s.total, 1.333333, 1e-12);
	g_assert_cmpfloat_with_epsilon(score_named(&s, "x"), 1.333333, 1e-12);
	/* a VAS item below zero pulls the mean down */
	score_of(ins, "{\"a\":0, \"b\":0, \"c\":-5}", &s);
	g_assert_cmpfloat_with_epsilon(s.total, (0 + 3 - 5) / 3.0, 1e-6);
	/* mean of mixed scales: means of their bounds */
	double lo = 0, hi = 0;
	g_assert_true(instrument_score_range(ins, "total", &lo, &hi));
	g_assert_cmpfloat_with_epsilon(lo, -5 / 3.0, 1e-6);
	g_assert_cmpfloat_with_epsilon(hi, 11 / 3.0, 1e-6);
	instrument_free(ins);
	g_free(text);
	/* no total: has_total false, "total" not found, a rule on it refused */
	text = g_strconcat(def, "none", def_tail, "}", NULL);
	ins = instrument_parse(text, strlen(text), "m.json", NULL, 0);
	g_assert_nonnull(ins);
	score_of(ins, "{\"a\":1, \"b\":3, \"c\":3}", &s);
	g_assert_false(s.has_total);
	g_assert_false(instrument_score_get(&s, "total", NULL));
	g_assert_false(instrument_score_range(ins, "total", NULL, NULL));
	g_assert_true(instrument_score_range(ins, "x", NULL, NULL));
	json_t *sj = instrument_scores_json(&s);
	g_assert_null(json_object_get(sj, "total"));
	json_decref(sj);
	instrument_free(ins);
	g_free(text);
	text = g_strconcat(def, "none", def_tail, ",\"rules\":{\"drop\":{\"points\":1}}}", NULL);
	g_assert_cmpstr(verdict_of(text), ==,
		"t.json: -: rules.drop.score is \"total\", but scoring.total is \"none\"");
	g_free(text);
	text = g_strconcat(def, "none", def_tail, ",\"rules\":{\"drop\":{\"score\":\"x\",\"points\":1}}}", NULL);
	g_assert_cmpstr(verdict_of(text), ==, "ok");
	g_free(text);
}

/* ---- refusals ------------------------------------------------------------------ */

static const struct {
	const char *file;
	const char *error;       /* exact, or a prefix when it ends in "…" */
} bad_files[] = {
	{ "bad-id-chars.json", "bad-id-chars.json: -: id must be a string of 1 to 48 of A-Z a-z 0-9 _ . -" },
	{ "bad-json.json", "bad-json.json: -: not valid JSON at line 3: …" },
	{ "bad-kind.json", "bad-kind.json: -: kind must be \"in_session\", \"end\", \"therapist_end\" or \"technology\"" },
	{ "dup-item-id.json", "dup-item-id.json: items[1] (q1): id \"q1\" is already used by items[0]" },
	{ "labels-count.json", "labels-count.json: items[1] (q2): scale.labels has 4 entries, but scale.points is 5" },
	{ "likert-points.json", "likert-points.json: items[1] (q2): scale.points must be an integer from 2 to 11" },
	{ "missing-id.json", "missing-id.json: -: id is missing" },
	{ "missing-scale.json", "missing-scale.json: items[1] (q2): scale is missing" },
	{ "missing-translation.json", "missing-translation.json: items[1] (task): text has no \"de\" translation" },
	{ "no-items.json", "no-items.json: -: items is empty: an instrument needs at least one item" },
	{ "not-object.json", "not-object.json: -: the definition must be a JSON object" },
	{ "rule-total-none.json", "rule-total-none.json: -: rules.cutoff.score is \"total\", but scoring.total is \"none\"" },
	{ "rule-unknown-subscale.json", "rule-unknown-subscale.json: -: rules.cutoff.score \"alliance\" is neither \"total\" nor a subscale" },
	{ "subscale-unknown-item.json", "subscale-unknown-item.json: -: subscales.goal lists \"q13\", which is not an item id" },
	{ "too-many-items.json", "too-many-items.json: -: items has 65 entries, at most 64 are allowed" },
	{ "too-many-subscales.json", "too-many-subscales.json: -: more than 16 subscales" },
	{ "unknown-item-key.json", "unknown-item-key.json: items[0] (q1): the item has an unknown key \"reverze\"" },
	{ "unknown-scale.json", "unknown-scale.json: items[0] (q1): scale.type \"slider\" is not a known scale type (vas, likert)" },
	{ "vas-min-max.json", "vas-min-max.json: items[1] (q2): scale.max must be > scale.min" },
	{ "vas-off-grid.json", "vas-off-grid.json: items[0] (q1): scale.max - scale.min must be a whole number of scale.step" },
	{ "vas-step.json", "vas-step.json: items[0] (q1): scale.step must be > 0" },
	{ "vas-too-fine.json", "vas-too-fine.json: items[0] (q1): (scale.max - scale.min) / scale.step must be <= 10000" },
};
#define N_BAD (sizeof(bad_files) / sizeof(bad_files[0]))

static void assert_error(const char *got, const char *want) {
	size_t n = strlen(want);
	if(n > 3 && !strcmp(want + n - 3, "…")) {
		g_assert_cmpuint(strlen(got), >, n - 3);
		if(strncmp(got, want, n - 3))
			g_assert_cmpstr(got, ==, want);
	} else {
		g_assert_cmpstr(got, ==, want);
	}
}

static void test_bad_files(void) {
	char *dir = src_path(FIXTURES "/bad");
	for(size_t i = 0; i < N_BAD; i++) {
		char *path = g_build_filename(dir, bad_files[i].file, NULL), *text = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(path, &text, &len, NULL));
		char err[INSTRUMENT_ERR_MAX];
		g_assert_null(instrument_parse(text, len, bad_files[i].file, err, sizeof(err)));
		assert_error(err, bad_files[i].error);
		/* no error buffer, or a tiny one: refused all the same, no overrun */
		g_assert_null(instrument_parse(text, len, bad_files[i].file, NULL, 0));
		char tiny[8];
		g_assert_null(instrument_parse(text, len, bad_files[i].file, tiny, sizeof(tiny)));
		g_assert_cmpuint(strlen(tiny), ==, 7);
		g_free(text);
		g_free(path);
	}
	/* the whole folder: every file refused, each reported once, in name order */
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	instrument_set *set = instrument_set_load_dir(dir, errors);
	g_assert_nonnull(set);
	g_assert_cmpint(instrument_set_count(set), ==, 0);
	g_assert_cmpuint(errors->len, ==, N_BAD);
	for(size_t i = 0; i < N_BAD; i++)
		assert_error(g_ptr_array_index(errors, i), bad_files[i].error);
	instrument_set_free(set);
	g_ptr_array_free(errors, TRUE);
	g_free(dir);
}

static void copy_fixture(const char *rel, const char *dir, const char *name) {
	char *from = src_path(rel), *text = NULL, *to = g_build_filename(dir, name, NULL);
	gsize len = 0;
	g_assert_true(g_file_get_contents(from, &text, &len, NULL));
	g_assert_true(g_file_set_contents(to, text, len, NULL));
	g_free(from);
	g_free(to);
	g_free(text);
}

static void test_load_dir_keeps_good(void) {
	char *dir = g_dir_make_tmp("instrument-XXXXXX", NULL);
	g_assert_nonnull(dir);
	copy_fixture(FIXTURES "/srs-shaped.json", dir, "srs-shaped.json");
	copy_fixture(FIXTURES "/wai-sr-shaped.json", dir, "wai-sr-shaped.json");
	copy_fixture(FIXTURES "/bad/vas-step.json", dir, "vas-step.json");
	copy_fixture(FIXTURES "/srs-shaped.json", dir, "zz-srs-copy.json");   /* same id */
	copy_fixture(FIXTURES "/bad/not-object.json", dir, "notes.txt");      /* not *.json */
	copy_fixture(FIXTURES "/bad/not-object.json", dir, ".#editor.json");  /* hidden */
	char *sub = g_build_filename(dir, "folder.json", NULL);
	g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	instrument_set *set = instrument_set_load_dir(dir, errors);
	g_assert_nonnull(set);
	g_assert_cmpint(instrument_set_count(set), ==, 2);
	g_assert_cmpstr(instrument_id(instrument_set_nth(set, 0)), ==, "srs-shaped");
	g_assert_cmpstr(instrument_id(instrument_set_nth(set, 1)), ==, "wai-sr-shaped");
	/* the first file with an id wins */
	g_assert_cmpstr(instrument_source(instrument_set_get(set, "srs-shaped")), ==, "srs-shaped.json");
	g_assert_cmpstr(instrument_id(instrument_set_default(set, "end")), ==, "srs-shaped");
	g_assert_cmpuint(errors->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(errors, 0), ==, "folder.json: -: not a regular file");
	g_assert_cmpstr(g_ptr_array_index(errors, 1), ==, "vas-step.json: items[0] (q1): scale.step must be > 0");
	g_assert_cmpstr(g_ptr_array_index(errors, 2), ==,
		"zz-srs-copy.json: -: id \"srs-shaped\" is already defined by srs-shaped.json");
	instrument_set_free(set);
	/* errors may be NULL */
	set = instrument_set_load_dir(dir, NULL);
	g_assert_cmpint(instrument_set_count(set), ==, 2);
	instrument_set_free(set);
	/* a folder that is not there */
	char *gone = g_build_filename(dir, "missing", NULL);
	g_ptr_array_set_size(errors, 0);
	g_assert_null(instrument_set_load_dir(gone, errors));
	g_assert_cmpuint(errors->len, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(errors, 0), "missing: -: cannot open the folder: "));
	g_ptr_array_free(errors, TRUE);
	/* clean up */
	static const char *const names[] = { "srs-shaped.json", "wai-sr-shaped.json", "vas-step.json",
		"zz-srs-copy.json", "notes.txt", ".#editor.json" };
	for(size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		char *p = g_build_filename(dir, names[i], NULL);
		g_assert_cmpint(g_unlink(p), ==, 0);
		g_free(p);
	}
	g_assert_cmpint(g_rmdir(sub), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
	g_free(gone);
	g_free(sub);
	g_free(dir);
}

/* Definitions built around one item or one setting, at and past each bound. */
static char *def_items(const char *extra_top, const char *items) {
	return g_strdup_printf("{\"id\":\"lim\",\"version\":\"1\",\"kind\":\"end\",\"title\":\"T\"%s,"
		"\"items\":[%s]}", extra_top, items);
}

static char *n_likert_items(int n, bool own_subscale) {
	GString *s = g_string_new("");
	for(int i = 0; i < n; i++) {
		g_string_append_printf(s, "%s{\"id\":\"q%d\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":3}",
			i ? "," : "", i);
		if(own_subscale)
			g_string_append_printf(s, ",\"subscale\":\"s%d\"", i);
		g_string_append(s, "}");
	}
	return g_string_free(s, FALSE);
}

#define VAS(min, max, step) "{\"id\":\"v\",\"text\":\"V\",\"scale\":{\"type\":\"vas\",\"min\":" #min \
	",\"max\":" #max ",\"step\":" #step ",\"min_label\":\"lo\",\"max_label\":\"hi\"}}"

static void expect(const char *extra_top, const char *items, const char *want) {
	char *text = def_items(extra_top, items);
	g_assert_cmpstr(verdict_of(text), ==, want);
	g_free(text);
}

static void test_limits(void) {
	char *items = n_likert_items(INSTRUMENT_MAX_ITEMS, false);
	expect("", items, "ok");
	g_free(items);
	items = n_likert_items(INSTRUMENT_MAX_ITEMS + 1, false);
	expect("", items, "t.json: -: items has 65 entries, at most 64 are allowed");
	g_free(items);
	items = n_likert_items(INSTRUMENT_MAX_SUBSCALES, true);
	expect("", items, "ok");
	g_free(items);
	items = n_likert_items(INSTRUMENT_MAX_SUBSCALES + 1, true);
	expect("", items, "t.json: -: more than 16 subscales");
	g_free(items);
	/* ids: 48 characters, not 49 */
	char id[64], *it;
	memset(id, 'a', sizeof(id));
	id[48] = '\0';
	it = g_strdup_printf("{\"id\":\"%s\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":2}}", id);
	expect("", it, "ok");
	g_free(it);
	id[48] = 'a';
	id[49] = '\0';
	it = g_strdup_printf("{\"id\":\"%s\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":2}}", id);
	expect("", it, "t.json: items[0]: id \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" must be 1 to 48 of A-Z a-z 0-9 _ . -");
	g_free(it);
	/* texts: 1000 bytes (counting UTF-8 bytes), not 1001 */
	GString *t = g_string_new("");
	while(t->len < 998)
		g_string_append(t, "x");
	g_string_append(t, "\xc3\xa4");     /* ä: two bytes */
	it = g_strdup_printf("{\"id\":\"q\",\"text\":\"%s\",\"scale\":{\"type\":\"likert\",\"points\":2}}", t->str);
	expect("", it, "ok");
	g_free(it);
	g_string_append(t, "x");
	it = g_strdup_printf("{\"id\":\"q\",\"text\":\"%s\",\"scale\":{\"type\":\"likert\",\"points\":2}}", t->str);
	expect("", it, "t.json: items[0] (q): text is longer than 1000 bytes");
	g_free(it);
	g_string_free(t, TRUE);
	expect("", "{\"id\":\"q\",\"text\":\"\",\"scale\":{\"type\":\"likert\",\"points\":2}}",
		"t.json: items[0] (q): text is empty");
	/* likert points 2..11 */
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":11}}", "ok");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":1}}",
		"t.json: items[0] (q): scale.points must be an integer from 2 to 11");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":5.0}}",
		"t.json: items[0] (q): scale.points must be an integer from 2 to 11");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":3,\"step\":1}}",
		"t.json: items[0] (q): scale has an unknown key \"step\"");
	/* VAS: 10000 steps, not 10001; min < max; step > 0 */
	expect("", VAS(0, 1000, 0.1), "ok");
	expect("", VAS(0, 1000.1, 0.1), "t.json: items[0] (v): (scale.max - scale.min) / scale.step must be <= 10000");
	expect("", VAS(5, 5, 0.1), "t.json: items[0] (v): scale.max must be > scale.min");
	expect("", VAS(0, 10, -0.1), "t.json: items[0] (v): scale.step must be > 0");
	expect("", VAS(0, 0.001, 0.0000001), "t.json: items[0] (v): scale.step must be >= 0.000001");
	expect("", VAS(0, 1e7, 1000), "t.json: items[0] (v): scale.min and scale.max must be between -1000000 and 1000000");
	expect("", VAS(0, "10", 0.1), "t.json: items[0] (v): scale.max must be a number");
	expect("", VAS(0, true, 0.1), "t.json: items[0] (v): scale.max must be a number");
	expect("", VAS(-3, 3, 0.25), "ok");
	expect("", "{\"id\":\"v\",\"text\":\"V\",\"scale\":{\"type\":\"vas\",\"min\":0,\"max\":10,\"step\":1,\"min_label\":\"lo\"}}",
		"t.json: items[0] (v): scale.max_label is missing");
	/* the file size: padded with a string to exactly the limit, then one more */
	items = def_items("", VAS(0, 10, 0.1));
	GString *big = g_string_new("{\"pad\":\"");
	gsize room = INSTRUMENT_FILE_MAX - big->len - 2 - (strlen(items) - 1);
	for(gsize i = 0; i < room; i++)
		g_string_append_c(big, 'x');
	g_string_append(big, "\",");
	g_string_append(big, items + 1);
	g_assert_cmpuint(big->len, ==, INSTRUMENT_FILE_MAX);
	g_assert_cmpstr(verdict_of(big->str), ==, "ok");
	g_string_insert_c(big, 8, 'x');
	g_assert_cmpstr(verdict_of(big->str), ==, "t.json: -: larger than 262144 bytes");
	g_string_free(big, TRUE);
	/* a UTF-8 byte-order mark is skipped; input need not end in NUL */
	char *bom = g_strdup_printf("\xEF\xBB\xBF%s", items);
	g_assert_cmpstr(verdict_of(bom), ==, "ok");
	char *padded = g_strdup_printf("%sGARBAGE", items);
	char err[INSTRUMENT_ERR_MAX];
	instrument *ins = instrument_parse(padded, strlen(items), "t.json", err, sizeof(err));
	g_assert_nonnull(ins);
	instrument_free(ins);
	g_assert_null(instrument_parse(padded, strlen(padded), "t.json", err, sizeof(err)));
	g_assert_true(g_str_has_prefix(err, "t.json: -: not valid JSON at line 1: "));
	g_assert_null(instrument_parse(NULL, 0, NULL, err, sizeof(err)));
	g_assert_true(g_str_has_prefix(err, "-: -: not valid JSON"));
	g_free(bom);
	g_free(padded);
	g_free(items);
}

static void test_definition_rules(void) {
	const char *q = "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":5}}";
	/* unknown top-level keys are ignored, "_" keys are comments anywhere */
	expect(",\"future\":{\"x\":1},\"_comment\":\"hi\"",
		"{\"id\":\"q\",\"_note\":1,\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":5,\"_n\":2}}", "ok");
	/* duplicate keys are refused by the JSON reader itself */
	char *text = g_strdup_printf("{\"id\":\"a\",\"id\":\"b\",\"version\":\"1\",\"kind\":\"end\",\"title\":\"T\",\"items\":[%s]}", q);
	g_assert_true(g_str_has_prefix(verdict_of(text), "t.json: -: not valid JSON at line 1: duplicate object key"));
	g_free(text);
	expect(",\"validated\":\"no\"", q, "t.json: -: validated must be true or false");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"reverse\":1,\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0] (q): reverse must be true or false");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"subscale\":\"total\",\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0] (q): subscale \"total\" is reserved for the total score");
	expect("", "{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"points\":5}}",
		"t.json: items[0] (q): scale.type must be a string (vas or likert)");
	expect("", "7", "t.json: items[0]: must be an object");
	/* languages: declared, inferred from the title, or none */
	expect(",\"languages\":[\"en\",\"de\"]", q, "ok");         /* plain strings serve every language */
	expect(",\"languages\":[\"en\",\"EN\"]", q, "t.json: -: languages: \"EN\" is listed twice");
	expect(",\"languages\":[\"e n\"]", q,
		"t.json: -: languages: \"e n\" is not a language tag (1 to 16 of A-Z a-z 0-9 -, starting with a letter)");
	expect(",\"languages\":[]", q, "t.json: -: languages must be a non-empty array of language tags");
	expect(",\"languages\":[\"en\"]",
		"{\"id\":\"q\",\"text\":{\"en\":\"Q\",\"fr\":\"Q\"},\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0] (q): text has language \"fr\", which is not in languages");
	expect("", "{\"id\":\"q\",\"text\":{\"en\":\"Q\"},\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0] (q): text has translations, but the definition declares no languages");
	expect(",\"languages\":[\"en\",\"de\"]",
		"{\"id\":\"q\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":2,\"labels\":[\"no\",{\"en\":\"yes\"}]}}",
		"t.json: items[0] (q): scale.labels[1] has no \"de\" translation");
	expect(",\"languages\":[\"en\",\"de\"]",
		"{\"id\":\"q\",\"text\":{\"en\":\"Q\",\"de\":7},\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0] (q): text (de) must be a string");
	/* the title's languages, in file order, when "languages" is absent */
	const char *by_title = "{\"id\":\"i\",\"version\":\"1\",\"kind\":\"end\",\"title\":{\"de\":\"Titel\",\"en\":\"Title\"},"
		"\"items\":[{\"id\":\"q\",\"text\":{\"en\":\"Q\",\"de\":\"F\"},\"scale\":{\"type\":\"likert\",\"points\":5}}]}";
	instrument *ins = instrument_parse(by_title, strlen(by_title), "t.json", NULL, 0);
	g_assert_nonnull(ins);
	g_assert_cmpstr(instrument_default_language(ins), ==, "de");
	instrument_free(ins);
	/* the subscales object and the items' own subscale must agree */
	const char *two = "{\"id\":\"a\",\"text\":\"A\",\"subscale\":\"x\",\"scale\":{\"type\":\"likert\",\"points\":5}},"
		"{\"id\":\"b\",\"text\":\"B\",\"scale\":{\"type\":\"likert\",\"points\":5}}";
	expect(",\"subscales\":{\"y\":[\"b\"]}", two, "ok");
	expect(",\"subscales\":{\"x\":[\"a\"]}", two, "t.json: -: subscales.x lists \"a\" twice (or also as its item's subscale)");
	expect(",\"subscales\":{\"y\":[\"a\"]}", two, "t.json: -: subscales.y lists \"a\", which is already in subscale x");
	expect(",\"subscales\":{\"y\":[]}", two, "t.json: -: subscales.y must be a non-empty array of item ids");
	expect(",\"subscales\":{\"total\":[\"b\"]}", two, "t.json: -: subscales: \"total\" is reserved for the total score");
	/* scoring and rules */
	expect(",\"scoring\":{\"total\":\"median\"}", q, "t.json: -: scoring.total must be \"sum\", \"mean\" or \"none\"");
	expect(",\"scoring\":{\"subscales\":\"none\"}", q, "t.json: -: scoring.subscales must be \"sum\", \"mean\"");
	expect(",\"scoring\":{\"totl\":\"sum\"}", q, "t.json: -: scoring has an unknown key \"totl\"");
	expect(",\"rules\":{\"trend\":{}}", q, "t.json: -: rules has an unknown key \"trend\"");
	expect(",\"rules\":{\"cutoff\":{\"score\":\"total\"}}", q, "t.json: -: rules.cutoff.below must be a number");
	expect(",\"rules\":{\"drop\":{\"points\":0}}", q, "t.json: -: rules.drop.points must be > 0");
	expect(",\"rules\":{\"drop\":{\"points\":2,\"min_baseline\":0}}", q,
		"t.json: -: rules.drop.min_baseline must be an integer from 1 to 1000");
	expect(",\"rules\":{\"cutoff\":{\"below\":3,\"min_baseline\":2}}", q,
		"t.json: -: rules.cutoff has an unknown key \"min_baseline\"");
	/* messages are printable ASCII whatever the input */
	expect("", "{\"id\":\"\xc3\xa4\\u0001\",\"text\":\"Q\",\"scale\":{\"type\":\"likert\",\"points\":5}}",
		"t.json: items[0]: id \"???\" must be 1 to 48 of A-Z a-z 0-9 _ . -");
}

/* ---- answers --------------------------------------------------------------------- */

/* A refused merge must leave every byte of the answer unchanged. */
static void refused(const instrument *ins, instrument_answer *a, const char *responses,
		instrument_verdict want, const char *detail_has) {
	instrument_answer before = *a;
	json_t *r = responses ? J(responses) : NULL;
	char detail[160];
	g_assert_cmpint(instrument_answer_merge(ins, r, a, detail, sizeof(detail)), ==, want);
	g_assert_cmpint(memcmp(&before, a, sizeof(before)), ==, 0);
	if(strstr(detail, detail_has) == NULL)
		g_assert_cmpstr(detail, ==, detail_has);
	json_decref(r);
}

static void test_merge_refusals(void) {
	instrument *srs = load(FIXTURES "/srs-shaped.json");
	instrument_answer a;
	answer_of(srs, &a, "{\"item1\": 5}");
	refused(srs, &a, "{\"nope\": 5}", INSTR_UNKNOWN_ITEM, "\"nope\" is not an item of srs-shaped");
	refused(srs, &a, "{\"item2\": \"5\"}", INSTR_WRONG_TYPE, "\"item2\" must be a number, not a string");
	refused(srs, &a, "{\"item2\": true}", INSTR_WRONG_TYPE, "\"item2\" must be a number, not a boolean");
	refused(srs, &a, "{\"item2\": null}", INSTR_WRONG_TYPE, "\"item2\" must be a number, not null");
	refused(srs, &a, "{\"item2\": [5]}", INSTR_WRONG_TYPE, "\"item2\"");
	refused(srs, &a, "{\"item2\": 10.1}", INSTR_OUT_OF_RANGE, "\"item2\": 10.1 is above the maximum 10");
	refused(srs, &a, "{\"item2\": 11}", INSTR_OUT_OF_RANGE, "\"item2\": 11 is above the maximum 10");
	refused(srs, &a, "{\"item2\": 1e300}", INSTR_OUT_OF_RANGE, "is above the maximum 10");
	refused(srs, &a, "{\"item2\": -0.1}", INSTR_OUT_OF_RANGE, "\"item2\": -0.1 is below the minimum 0");
	refused(srs, &a, "{\"item2\": -0.05}", INSTR_OUT_OF_RANGE, "\"item2\": -0.05 is below the minimum 0");
	refused(srs, &a, "{\"item2\": 5.05}", INSTR_OUT_OF_RANGE, "\"item2\": 5.05 is not on the scale's steps of 0.1 from 0");
	refused(srs, &a, "{\"item2\": 9.30001}", INSTR_OUT_OF_RANGE, "not on the scale's steps");
	refused(srs, &a, "{}", INSTR_EMPTY, "non-empty object");
	refused(srs, &a, "[]", INSTR_EMPTY, "non-empty object");
	refused(srs, &a, "7", INSTR_EMPTY, "non-empty object");
	refused(srs, &a, NULL, INSTR_EMPTY, "non-empty object");
	/* all or nothing: a good entry next to a bad one is not written */
	refused(srs, &a, "{\"item2\": 5, \"item3\": 10.5}", INSTR_OUT_OF_RANGE, "\"item3\"");
	refused(srs, &a, "{\"item2\": 5, \"zzz\": 1}", INSTR_UNKNOWN_ITEM, "\"zzz\"");
	refused(srs, &a, "{\"item1\": 1, \"item2\": \"x\"}", INSTR_WRONG_TYPE, "\"item2\"");
	/* a hostile item name comes back sanitised and bounded */
	refused(srs, &a, "{\"\\u0007xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": 1}",
		INSTR_UNKNOWN_ITEM, "\"?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" is not an item");
	/* an answer made for another instrument */
	instrument *wai = load(FIXTURES "/wai-sr-shaped.json");
	refused(wai, &a, "{\"w1\": 3}", INSTR_EMPTY, "does not belong to wai-sr-shaped");
	g_assert_true(a.present[0]);
	g_assert_cmpfloat(a.value[0], ==, 5);
	for(int i = 1; i < 4; i++)
		g_assert_false(a.present[i]);
	/* likert: integers in min..min+points-1 */
	instrument_answer w;
	instrument_answer_init(&w, wai);
	refused(wai, &w, "{\"w1\": 2.5}", INSTR_OUT_OF_RANGE, "\"w1\": 2.5 is not a whole number");
	refused(wai, &w, "{\"w1\": 0}", INSTR_OUT_OF_RANGE, "\"w1\": 0 is below the minimum 1");
	refused(wai, &w, "{\"w1\": 6}", INSTR_OUT_OF_RANGE, "\"w1\": 6 is above the maximum 5");
	refused(wai, &w, "{\"w1\": 0.5}", INSTR_OUT_OF_RANGE, "below the minimum 1");
	refused(wai, &w, "{\"w1\": 4.0000001}", INSTR_OUT_OF_RANGE, "not a whole number");
	refused(wai, &w, "{\"w1\": -9000000000000000000}", INSTR_OUT_OF_RANGE, "below the minimum 1");
	json_t *r = J("{\"w1\": 3.0, \"w2\": 5}");
	g_assert_cmpint(instrument_answer_merge(wai, r, &w, NULL, 0), ==, INSTR_OK);
	g_assert_cmpfloat(w.value[0], ==, 3);
	json_decref(r);
	/* VAS: ends accepted; within 1e-9 of a step accepted and snapped to it */
	answer_of(srs, &a, "{\"item1\": 0, \"item2\": 10, \"item3\": 9.3000000000001, \"item4\": 0.30000000000000004}");
	g_assert_cmpfloat(a.value[0], ==, 0);
	g_assert_cmpfloat(a.value[1], ==, 10);
	g_assert_cmpfloat(a.value[2], ==, 9.3);
	g_assert_cmpfloat(a.value[3], ==, 0.3);
	answer_of(srs, &a, "{\"item2\": 10.0000000001}");
	g_assert_cmpfloat(a.value[1], ==, 10);
	/* the slugs are the data channel's error codes */
	g_assert_cmpstr(instrument_verdict_slug(INSTR_OK), ==, "ok");
	g_assert_cmpstr(instrument_verdict_slug(INSTR_UNKNOWN_ITEM), ==, "unknown_item");
	g_assert_cmpstr(instrument_verdict_slug(INSTR_WRONG_TYPE), ==, "wrong_type");
	g_assert_cmpstr(instrument_verdict_slug(INSTR_OUT_OF_RANGE), ==, "out_of_range");
	g_assert_cmpstr(instrument_verdict_slug(INSTR_EMPTY), ==, "bad_responses");
	instrument_free(srs);
	instrument_free(wai);
}

static void merge_ok(const instrument *ins, instrument_answer *a, const char *responses) {
	json_t *r = J(responses);
	g_assert_cmpint(instrument_answer_merge(ins, r, a, NULL, 0), ==, INSTR_OK);
	json_decref(r);
}

static void test_partial_answers(void) {
	instrument *ins = load(FIXTURES "/srs-shaped.json");
	instrument_answer a;
	instrument_scores s;
	instrument_answer_init(&a, ins);
	g_assert_cmpint(a.n, ==, 4);
	g_assert_false(instrument_answer_complete(ins, &a));
	merge_ok(ins, &a, "{\"item1\": 9.3}");
	g_assert_false(instrument_answer_complete(ins, &a));
	memset(&s, 0x55, sizeof(s));
	g_assert_cmpint(instrument_score(ins, &a, &s), ==, -1);
	g_assert_false(s.has_total);
	g_assert_cmpint(s.n_sub, ==, 0);
	merge_ok(ins, &a, "{\"item2\": 8.7, \"item3\": 9.1}");
	g_assert_false(instrument_answer_complete(ins, &a));
	g_assert_cmpint(instrument_score(ins, &a, &s), ==, -1);
	/* a partial answer may be corrected before it is complete */
	merge_ok(ins, &a, "{\"item1\": 9.0}");
	merge_ok(ins, &a, "{\"item4\": 8.4}");
	g_assert_true(instrument_answer_complete(ins, &a));
	g_assert_cmpint(instrument_score(ins, &a, &s), ==, 0);
	g_assert_cmpfloat_with_epsilon(s.total, 9.0 + 8.7 + 9.1 + 8.4, EPS);
	g_assert_cmpfloat(s.total, ==, 35.2);
	instrument_free(ins);
}

/* ---- rules ------------------------------------------------------------------------ */

static void test_drop_rule(void) {
	instrument *ins = load(FIXTURES "/srs-shaped.json");
	instrument_scores s;
	double score = -1, base = -1;
	/* earlier 34 and 36: baseline 35; now 29, a drop of 6 >= 5 */
	score_of(ins, "{\"item1\": 7.1, \"item2\": 7.2, \"item3\": 7.3, \"item4\": 7.4}", &s);
	g_assert_cmpfloat(s.total, ==, 29);
	double two[] = { 34, 36 };
	g_assert_true(instrument_rule_drop(ins, &s, two, 2, &score, &base));
	g_assert_cmpfloat(score, ==, 29);
	g_assert_cmpfloat(base, ==, 35);
	/* one earlier visit and min_baseline 2: no baseline yet */
	score = base = -1;
	g_assert_false(instrument_rule_drop(ins, &s, two, 1, &score, &base));
	g_assert_cmpfloat(base, ==, 34);
	g_assert_false(instrument_rule_drop(ins, &s, two, 0, &score, &base));
	g_assert_false(instrument_rule_drop(ins, &s, NULL, 2, &score, &base));
	/* non-finite earlier values are ignored, and do not count */
	double odd[] = { 34, NAN, INFINITY, 36 };
	g_assert_true(instrument_rule_drop(ins, &s, odd, 4, NULL, &base));
	g_assert_cmpfloat(base, ==, 35);
	g_assert_false(instrument_rule_drop(ins, &s, odd, 3, NULL, NULL));
	/* exactly 5 points fires, 4.9 does not, with decimals on both sides */
	double dec[] = { 36.1, 34.9 };                 /* baseline 35.5 */
	score_of(ins, "{\"item1\": 7.6, \"item2\": 7.7, \"item3\": 7.6, \"item4\": 7.6}", &s);   /* 30.5 */
	g_assert_true(instrument_rule_drop(ins, &s, dec, 2, &score, &base));
	g_assert_cmpfloat(base, ==, 35.5);
	g_assert_cmpfloat(score, ==, 30.5);
	score_of(ins, "{\"item1\": 7.6, \"item2\": 7.7, \"item3\": 7.7, \"item4\": 7.6}", &s);   /* 30.6 */
	g_assert_false(instrument_rule_drop(ins, &s, dec, 2, &score, &base));
	/* a rise never fires */
	double low[] = { 10, 12 };
	g_assert_false(instrument_rule_drop(ins, &s, low, 2, NULL, NULL));
	/* scores of another shape (no total) give no rule result */
	instrument_scores none;
	memset(&none, 0, sizeof(none));
	g_assert_false(instrument_rule_drop(ins, &none, two, 2, NULL, NULL));
	g_assert_false(instrument_rule_cutoff(ins, &none, NULL, NULL));
	instrument_free(ins);
}

/* ---- the pulse ------------------------------------------------------------------- */

static void test_pulse_json(void) {
	instrument *ins = load("conf/instruments/ap-end.json");
	const char *used = NULL;
	json_t *p = instrument_pulse_json(ins, "de", &used);
	g_assert_cmpstr(used, ==, "de");
	g_assert_cmpuint(json_object_size(p), ==, 5);
	g_assert_cmpstr(json_string_value(json_object_get(p, "id")), ==, "ap-end");
	g_assert_cmpstr(json_string_value(json_object_get(p, "version")), ==, "1.0");
	g_assert_cmpstr(json_string_value(json_object_get(p, "lang")), ==, "de");
	g_assert_cmpstr(json_string_value(json_object_get(p, "title")), ==, "Rückblick auf diese Sitzung");
	json_t *items = json_object_get(p, "items");
	g_assert_cmpuint(json_array_size(items), ==, 4);
	json_t *bond = json_array_get(items, 2);
	g_assert_cmpuint(json_object_size(bond), ==, 3);
	g_assert_cmpstr(json_string_value(json_object_get(bond, "id")), ==, "bond");
	g_assert_true(g_str_has_prefix(json_string_value(json_object_get(bond, "text")), "Ich hatte das Gefühl"));
	json_t *sc = json_object_get(bond, "scale");
	g_assert_cmpuint(json_object_size(sc), ==, 6);
	g_assert_cmpstr(json_string_value(json_object_get(sc, "min_label")), ==, "trifft gar nicht zu");
	g_assert_cmpstr(json_string_value(json_object_get(sc, "max_label")), ==, "trifft voll und ganz zu");
	g_assert_true(json_is_integer(json_object_get(sc, "min")));
	g_assert_true(json_is_real(json_object_get(sc, "step")));
	json_decref(p);
	/* an unknown language falls back to the default (the first declared) */
	static const char *const other[] = { "fr", "", NULL, "english" };
	for(size_t i = 0; i < G_N_ELEMENTS(other); i++) {
		used = NULL;
		p = instrument_pulse_json(ins, other[i], &used);
		g_assert_cmpstr(used, ==, "en");
		g_assert_cmpstr(json_string_value(json_object_get(p, "title")), ==, "Looking back on this session");
		g_assert_cmpstr(json_string_value(json_object_get(json_array_get(json_object_get(p, "items"), 3), "text")),
			==, "All in all, I am glad I took part in this session.");
		json_decref(p);
	}
	/* regional and case variants find their language */
	static const char *const german[] = { "DE", "de-AT", "de_CH" };
	for(size_t i = 0; i < G_N_ELEMENTS(german); i++) {
		p = instrument_pulse_json(ins, german[i], &used);
		g_assert_cmpstr(used, ==, "de");
		json_decref(p);
	}
	p = instrument_pulse_json(ins, "de", NULL);      /* lang_used may be NULL */
	char *dumped = json_dumps(p, JSON_COMPACT);
	g_assert_nonnull(dumped);
	free(dumped);
	json_decref(p);
	instrument_free(ins);
	/* no languages declared: plain texts, language "und" */
	ins = load(FIXTURES "/srs-shaped.json");
	p = instrument_pulse_json(ins, "de", &used);
	g_assert_cmpstr(used, ==, "und");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(json_object_get(p, "items"), 0), "text")), ==, "Item 1");
	json_decref(p);
	instrument_free(ins);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/instrument/shipped/pulse", test_shipped_pulse);
	g_test_add_func("/instrument/shipped/end", test_shipped_end);
	g_test_add_func("/instrument/shipped/tech", test_shipped_tech);
	g_test_add_func("/instrument/shipped/dir", test_shipped_dir);
	g_test_add_func("/instrument/srs-shaped", test_srs_shaped);
	g_test_add_func("/instrument/wai-sr-shaped", test_wai_shaped);
	g_test_add_func("/instrument/scoring-modes", test_scoring_modes);
	g_test_add_func("/instrument/bad-files", test_bad_files);
	g_test_add_func("/instrument/load-dir-keeps-good", test_load_dir_keeps_good);
	g_test_add_func("/instrument/limits", test_limits);
	g_test_add_func("/instrument/definition-rules", test_definition_rules);
	g_test_add_func("/instrument/merge-refusals", test_merge_refusals);
	g_test_add_func("/instrument/partial-answers", test_partial_answers);
	g_test_add_func("/instrument/drop-rule", test_drop_rule);
	g_test_add_func("/instrument/pulse-json", test_pulse_json);
	return g_test_run();
}
