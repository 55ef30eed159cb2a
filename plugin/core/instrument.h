/*
 * instrument.h — questionnaire definitions: parsing, answers, scores, rules.
 *
 * An instrument is a short questionnaire (an "alliance pulse") read from a
 * JSON definition file; docs/instruments.md documents the format. This
 * module turns such a file into an immutable `instrument`, or refuses it
 * with one message of the form "source: item: reason", e.g.
 *     srs.json: items[2] (overall): scale.max must be > scale.min
 *     srs.json: -: not valid JSON at line 3: …
 * ("-" when the problem is not inside one item; items are counted from 0).
 *
 * Given an instrument it:
 * - builds the `instrument` object of a `pulse` message (PROTOCOL.md) in
 *   the participant's language, falling back to the default language;
 * - checks a participant's `responses` ({item_id: number}) all-or-nothing
 *   and merges them into an instrument_answer (partial answers allowed);
 * - scores a complete answer (reverse keys applied; total and subscales as
 *   sums or means, rounded to 1e-6 so that 35.99999999… compares as 36);
 * - evaluates the definition's two rules: `cutoff` (score below a
 *   threshold) and `drop` (a fall of at least N points from the mean of the
 *   client's earlier visits).
 * An instrument_set is a folder of definitions, loaded once at startup.
 *
 * Pure apart from instrument_set_load_dir() (instrument_set.c), which
 * reads the folder: no Janus, no threads, no clock, no logging.
 * Instruments are immutable after parsing, so one may be shared by any
 * number of threads.
 *
 * Limits (a definition beyond them is refused): INSTRUMENT_MAX_* below,
 * likert 2..11 points, VAS (max-min)/step <= 10000 and step >= 1e-6,
 * |scale bounds| <= 1e6.
 */
#ifndef ALLIANCE_INSTRUMENT_H
#define ALLIANCE_INSTRUMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>
#include <jansson.h>

#define INSTRUMENT_MAX_ITEMS 64
#define INSTRUMENT_MAX_SUBSCALES 16
#define INSTRUMENT_ID_MAX 48            /* ids, versions, subscale names */
#define INSTRUMENT_TEXT_MAX 1000        /* bytes of one text in one language */
#define INSTRUMENT_FILE_MAX (256 * 1024)
#define INSTRUMENT_MAX_LANGUAGES 16
#define INSTRUMENT_LANG_MAX 16          /* bytes of a language tag */
#define INSTRUMENT_VAS_MAX_STEPS 10000
#define INSTRUMENT_LIKERT_MIN_POINTS 2
#define INSTRUMENT_LIKERT_MAX_POINTS 11
#define INSTRUMENT_ERR_MAX 320          /* enough for any message from here */

typedef struct instrument instrument;   /* opaque, immutable once parsed */

/* ---- definitions ---------------------------------------------------------- */

/* Parse a definition of len bytes (need not be NUL-terminated; a leading
 * UTF-8 BOM is skipped). `source` names it in messages (a file name; NULL
 * gives "-"). Returns a new instrument, or NULL with err filled (if err is
 * not NULL) with "source: item: reason" in printable ASCII. */
instrument *instrument_parse(const char *text, size_t len, const char *source,
	char *err, size_t errlen);
void instrument_free(instrument *ins);         /* NULL is fine */

const char *instrument_id(const instrument *ins);
const char *instrument_version(const instrument *ins);
/* "in_session", "end", "therapist_end" or "technology" */
const char *instrument_kind(const instrument *ins);
/* The `source` given to instrument_parse() ("-" if none). */
const char *instrument_source(const instrument *ins);
/* The definition's `validated` flag: false for the shipped wording. */
bool instrument_validated(const instrument *ins);
/* The first declared language: the fallback ("und" if none declared). */
const char *instrument_default_language(const instrument *ins);
/* The declared languages, in order (the first is the default); count 1
 * with "und" when the definition declares none. NULL if out of range. */
int instrument_language_count(const instrument *ins);
const char *instrument_language(const instrument *ins, int i);

int instrument_item_count(const instrument *ins);
/* Index of an item id, -1 if unknown (or item_id is NULL). */
int instrument_item_index(const instrument *ins, const char *item_id);
/* Id of item i, NULL if out of range. */
const char *instrument_item_id(const instrument *ins, int i);

/* The `instrument` object of a pulse message (new reference):
 *   {id, version, lang, title, items:[{id, text, scale}]}
 * scale is {type:"vas", min, max, step, min_label, max_label} or
 * {type:"likert", points, min, max[, labels]} (values min..max; labels
 * only if the definition has them). Texts are in `lang` if the instrument
 * has it (exact tag, then same primary subtag: "de-AT" -> "de"), else in
 * the default language; *lang_used (if not NULL) is set to the language
 * chosen, a string owned by the instrument. lang may be NULL. */
json_t *instrument_pulse_json(const instrument *ins, const char *lang,
	const char **lang_used);

/* ---- answers -------------------------------------------------------------- */

/* A partial or complete set of item values, indexed like the items.
 * Likert values are stored as given; VAS values are snapped to the nearest
 * point of their step grid (9.30000000001 -> 9.3), so equal answers are
 * equal doubles (ties in rank statistics stay ties). */
typedef struct instrument_answer {
	int n;                                   /* item count of its instrument */
	double value[INSTRUMENT_MAX_ITEMS];
	bool present[INSTRUMENT_MAX_ITEMS];
} instrument_answer;

void instrument_answer_init(instrument_answer *a, const instrument *ins);

typedef enum instrument_verdict {
	INSTR_OK = 0,
	INSTR_UNKNOWN_ITEM,     /* a key that is not an item id */
	INSTR_WRONG_TYPE,       /* a value that is not a number (string, bool, null…) */
	INSTR_OUT_OF_RANGE,     /* outside [min,max], off the VAS step grid, non-integer likert */
	INSTR_EMPTY,            /* responses not an object, or {} */
} instrument_verdict;

/* Merge responses ({item_id: number}) into *a. Every entry is checked
 * first, in the object's order; on the first problem nothing is written
 * and its verdict is returned with detail (if not NULL) naming the item,
 * e.g. "\"bond\": 10.5 is above the maximum 10". A value already present
 * is replaced (a partial answer may be corrected until it is final; the
 * caller enforces "final answers are never overwritten"). VAS values must
 * lie on the grid min + k*step within a relative tolerance of 1e-9 (in
 * units of k); likert values must be integers (3 and 3.0 both are). */
instrument_verdict instrument_answer_merge(const instrument *ins,
	const json_t *responses, instrument_answer *a, char *detail, size_t len);

/* True if every item has a value. */
bool instrument_answer_complete(const instrument *ins, const instrument_answer *a);

/* "ok", "unknown_item", "wrong_type", "out_of_range", "bad_responses" —
 * the `error` codes of the data channel. */
const char *instrument_verdict_slug(instrument_verdict v);

/* ---- scores --------------------------------------------------------------- */

typedef struct instrument_scores {
	bool has_total;                          /* false if scoring.total is "none" */
	double total;
	int n_sub;                               /* subscales, in order of their first item */
	char sub_name[INSTRUMENT_MAX_SUBSCALES][INSTRUMENT_ID_MAX + 1];
	double sub[INSTRUMENT_MAX_SUBSCALES];
} instrument_scores;

/* Score a complete answer: reverse-keyed values become min + max - value,
 * then total and subscales are the sum or mean their `scoring` asks for,
 * each rounded to the nearest 1e-6. Returns 0, or -1 (out zeroed) if the
 * answer is incomplete or does not belong to ins. */
int instrument_score(const instrument *ins, const instrument_answer *a,
	instrument_scores *out);

/* A score by name: "total" or a subscale. False if there is none. */
bool instrument_score_get(const instrument_scores *s, const char *name, double *out);

/* The smallest and largest value a score ("total" or a subscale) can take
 * (either pointer may be NULL): sums or means of its items' scale bounds,
 * as its scoring says. False if the instrument has no such score. The
 * reports use the maximum for ceiling flags. */
bool instrument_score_range(const instrument *ins, const char *name, double *min, double *max);

/* {"total": x, "subscales": {name: x, …}} (new reference; "total" is
 * omitted when the instrument has none), for storage and events. */
json_t *instrument_scores_json(const instrument_scores *s);

/* ---- rules ---------------------------------------------------------------- */

/* cutoff: fires when the named score is below the threshold. *score and
 * *threshold (either may be NULL) are set whenever the instrument has the
 * rule and s holds its score, whether it fires or not. */
bool instrument_rule_cutoff(const instrument *ins, const instrument_scores *s,
	double *score, double *threshold);

/* drop: fires when baseline - score >= points, where baseline is the mean
 * of `earlier` (the same score from the client's earlier visits with this
 * instrument, as the caller chooses them; non-finite entries are ignored)
 * and at least min_baseline of them are given. *score and *baseline are
 * set whenever there is a baseline (n_earlier > 0), whether it fires or
 * not. */
bool instrument_rule_drop(const instrument *ins, const instrument_scores *s,
	const double *earlier, int n_earlier, double *score, double *baseline);

/* The score a rule reads ("total" or a subscale name), NULL if the
 * instrument has no such rule. drop: false = cutoff, true = drop. */
const char *instrument_rule_score_name(const instrument *ins, bool drop);

/* ---- a folder of definitions ---------------------------------------------- */

typedef struct instrument_set instrument_set;

/* Load every regular file named *.json in dir (not hidden ones), in byte
 * order of their names. A file that cannot be read or parsed, or whose id
 * was already loaded from an earlier file, is skipped, and a g_strdup'ed
 * "file: item: reason" is appended to errors (if not NULL; give the array
 * g_free as its free function). Returns the set (possibly empty), or NULL
 * with an error appended if dir cannot be opened. */
instrument_set *instrument_set_load_dir(const char *dir, GPtrArray *errors);

/* By id; NULL if unknown. Owned by the set. */
const instrument *instrument_set_get(const instrument_set *set, const char *id);
/* The first loaded instrument of that kind, NULL if none. */
const instrument *instrument_set_default(const instrument_set *set, const char *kind);
int instrument_set_count(const instrument_set *set);
/* The i-th loaded instrument (load order), NULL if out of range. */
const instrument *instrument_set_nth(const instrument_set *set, int i);
void instrument_set_free(instrument_set *set);   /* NULL is fine */

#endif
