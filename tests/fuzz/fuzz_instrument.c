/* libFuzzer target: instrument definitions and answers.
 *
 * Input: a definition, optionally followed by a NUL byte and a responses
 * object ({item_id: number}). Any definition must be refused with one
 * printable "fuzz.json: item: reason" line, or parse into an instrument
 * whose pulse is valid JSON in every language, whose scale ends are
 * accepted answers that score to finite numbers within the ranges
 * instrument_score_range() gives the reports, and which refuses a bad
 * responses object without changing the answer. No crash, leak or overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <jansson.h>
#include "instrument.h"

static void check_message(const char *s, const char *prefix) {
	if(strncmp(s, prefix, strlen(prefix)) != 0 || strlen(s) <= strlen(prefix))
		abort();
	for(; *s; s++)
		if((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			abort();
}

/* {item: scale.min or scale.max} for every item, from the pulse itself */
static json_t *ends(const json_t *pulse, const char *which) {
	json_t *r = json_object();
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(pulse, "items"), i, it) {
		json_t *v = json_object_get(json_object_get(it, "scale"), which);
		if(!json_is_number(v))
			abort();
		json_object_set(r, json_string_value(json_object_get(it, "id")), v);
	}
	return r;
}

/* a score lies within the range the reports draw for it (both rounded to
 * 1e-6, hence the slack) */
static void check_in_range(const instrument *ins, const char *name, double score) {
	double lo, hi;
	if(!instrument_score_range(ins, name, &lo, &hi) || !(lo <= hi))
		abort();
	if(!(score >= lo - 1e-6 && score <= hi + 1e-6))
		abort();
}

static void score_ends(const instrument *ins, const json_t *pulse, const char *which) {
	instrument_answer a;
	instrument_answer_init(&a, ins);
	json_t *r = ends(pulse, which);
	char detail[160];
	if(instrument_answer_merge(ins, r, &a, detail, sizeof(detail)) != INSTR_OK)
		abort();
	json_decref(r);
	instrument_scores s;
	if(!instrument_answer_complete(ins, &a) || instrument_score(ins, &a, &s) != 0)
		abort();
	if(s.has_total && !isfinite(s.total))
		abort();
	if(s.has_total)
		check_in_range(ins, "total", s.total);
	for(int k = 0; k < s.n_sub; k++) {
		if(!isfinite(s.sub[k]) || !instrument_score_get(&s, s.sub_name[k], NULL))
			abort();
		check_in_range(ins, s.sub_name[k], s.sub[k]);
	}
	double earlier[3] = { s.total, s.total + 100, NAN };
	double score, other;
	(void)instrument_rule_cutoff(ins, &s, &score, &other);
	(void)instrument_rule_drop(ins, &s, earlier, 3, &score, &other);
	json_t *sj = instrument_scores_json(&s);
	if(sj == NULL)
		abort();
	json_decref(sj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const uint8_t *nul = memchr(data, 0, size);
	size_t dlen = nul ? (size_t)(nul - data) : size;
	char err[INSTRUMENT_ERR_MAX];
	instrument *ins = instrument_parse((const char *)data, dlen, "fuzz.json", err, sizeof(err));
	if(ins == NULL) {
		check_message(err, "fuzz.json: ");
		return 0;
	}
	if(instrument_item_count(ins) < 1 || instrument_item_count(ins) > INSTRUMENT_MAX_ITEMS)
		abort();
	static const char *const langs[] = { NULL, "de", "en-GB", "xx" };
	json_t *pulse = NULL;
	for(size_t l = 0; l < sizeof(langs) / sizeof(langs[0]); l++) {
		const char *used = NULL;
		json_t *p = instrument_pulse_json(ins, langs[l], &used);
		if(p == NULL || used == NULL)
			abort();
		char *text = json_dumps(p, JSON_COMPACT);
		json_error_t jerr;
		json_t *back = text ? json_loads(text, 0, &jerr) : NULL;
		if(back == NULL || json_array_size(json_object_get(back, "items")) != (size_t)instrument_item_count(ins))
			abort();
		json_decref(back);
		free(text);
		if(pulse == NULL)
			pulse = p;
		else
			json_decref(p);
	}
	score_ends(ins, pulse, "min");
	score_ends(ins, pulse, "max");
	json_decref(pulse);
	if(nul != NULL) {
		json_error_t jerr;
		json_t *r = json_loadb((const char *)nul + 1, size - dlen - 1, JSON_DECODE_ANY, &jerr);
		instrument_answer a, before;
		instrument_answer_init(&a, ins);
		before = a;
		char detail[160];
		instrument_verdict v = instrument_answer_merge(ins, r, &a, detail, sizeof(detail));
		if(v != INSTR_OK) {
			if(memcmp(&a, &before, sizeof(a)) != 0)
				abort();
			check_message(detail, "");
		} else {
			const char *key;
			json_t *val;
			json_object_foreach(r, key, val)
				if(!a.present[instrument_item_index(ins, key)])
					abort();
		}
		if(instrument_verdict_slug(v) == NULL)
			abort();
		json_decref(r);
	}
	instrument_free(ins);
	return 0;
}
