/*
 * instrument.c — see instrument.h; docs/instruments.md is the file format.
 * Definitions, answers, scores and rules; no I/O (the folder loader is
 * instrument_set.c).
 *
 * The parsed JSON stays alive inside the instrument: texts (plain strings or
 * {lang: string} objects) are validated once here and read from it when a
 * pulse is built. Everything numeric is copied into plain structs.
 *
 * Floating point: VAS answers are snapped to their step grid, and every
 * score and threshold goes through round6() before it is compared, so that
 * 9.7+9.6+9.9+6.8 is 36 and never 35.99999999999999. All values are
 * bounded (|scale bounds| <= 1e6, step >= 1e-6, <= 64 items), so scores
 * stay far below 2^53 / 1e6 and rounding never overflows. No libm: the few
 * roundings are done by hand on bounded values.
 */
#include "instrument.h"

#include <math.h>              /* isfinite() only: a macro, no libm */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BOUND_MAX 1e6          /* |scale.min|, |scale.max|, |likert min| */
#define GRID_TOL 1e-9          /* VAS grid tolerance, relative, in steps */
#define SOURCE_MAX 128

typedef enum score_mode { MODE_SUM, MODE_MEAN, MODE_NONE } score_mode;

typedef struct item {
	char id[INSTRUMENT_ID_MAX + 1];
	const json_t *text;                     /* borrowed from root */
	bool vas;
	double min, max, step;                  /* likert: step 1 */
	int nsteps;                             /* values are min + k*step, k = 0..nsteps */
	const json_t *min_label, *max_label;    /* vas only */
	const json_t *labels;                   /* likert, NULL if none */
	bool reverse;
	int subscale;                           /* index into sub[], -1 if none */
} item;

typedef struct rule {
	bool on;
	int score;                              /* -1 = total, else a subscale */
	double value;                           /* cutoff: below; drop: points */
	int min_baseline;
} rule;

struct instrument {
	json_t *root;
	char source[SOURCE_MAX + 1];
	char id[INSTRUMENT_ID_MAX + 1];
	char version[INSTRUMENT_ID_MAX + 1];
	char kind[16];
	bool validated;
	bool lang_declared;                     /* false: no languages, no title translations */
	int n_lang;
	char lang[INSTRUMENT_MAX_LANGUAGES][INSTRUMENT_LANG_MAX + 1];
	const json_t *title;
	int n_items;
	item items[INSTRUMENT_MAX_ITEMS];
	int n_sub;
	char sub[INSTRUMENT_MAX_SUBSCALES][INSTRUMENT_ID_MAX + 1];
	score_mode total_mode, sub_mode;
	rule cutoff, drop;
};

/* ---- small helpers --------------------------------------------------------- */

static double absd(double x) {
	return x < 0 ? -x : x;
}

/* Nearest integer, halves away from zero; only for |x| < 2^62. */
static double round_int(double x) {
	return (double)(long long)(x < 0 ? x - 0.5 : x + 0.5);
}

static double round6(double x) {
	if(!(absd(x) < 1e12))   /* not finite, or too large to need it */
		return x;
	return round_int(x * 1e6) / 1e6;
}

/* For grid points: |x| <= 1e6 and steps >= 1e-6, so 1e-9 is exact enough
 * and turns 3 * 0.1 = 0.30000000000000004 back into 0.3. */
static double round9(double x) {
	return round_int(x * 1e9) / 1e9;
}

/* Printable ASCII only: messages end up in logs. */
static void sanitize(char *s) {
	for(; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if(c < 0x20 || c >= 0x7f)
			*s = '?';
	}
}

static bool name_ok(const char *s) {
	size_t n = strlen(s);
	if(n == 0 || n > INSTRUMENT_ID_MAX)
		return false;
	for(; *s; s++)
		if(!g_ascii_isalnum(*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

static bool lang_ok(const char *s) {
	size_t n = strlen(s);
	if(n == 0 || n > INSTRUMENT_LANG_MAX || !g_ascii_isalpha(s[0]))
		return false;
	for(; *s; s++)
		if(!g_ascii_isalnum(*s) && *s != '-')
			return false;
	return true;
}

static json_t *number_json(double x) {
	if(absd(x) < 1e15 && x == round_int(x))
		return json_integer((json_int_t)x);
	return json_real(x);
}

/* ---- parsing ---------------------------------------------------------------- */

typedef struct pctx {
	instrument *ins;
	const char *source;
	char *err;
	size_t errlen;
	char where[96];                         /* "-" or "items[3] (bond)" */
} pctx;

static int fail(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx *c, const char *fmt, ...) {
	if(c->err == NULL || c->errlen == 0)
		return -1;
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s: %s", c->source, c->where, reason);
	sanitize(c->err);
	return -1;
}

/* Every key of obj must be in allowed (NULL-terminated) or start with '_'
 * (a comment). Unknown keys are refused inside items, scales, scoring and
 * rules: a typo there ("reverze") would silently change scores. */
static int check_keys(pctx *c, const json_t *obj, const char *const *allowed, const char *what) {
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		if(key[0] == '_')
			continue;
		bool known = false;
		for(const char *const *a = allowed; *a && !known; a++)
			known = !strcmp(key, *a);
		if(!known)
			return fail(c, "%s has an unknown key \"%.48s\"", what, key);
	}
	return 0;
}

/* Optional number: 1 present, 0 absent, -1 present but not a number. */
static int get_number(const json_t *obj, const char *key, double *out) {
	json_t *v = json_object_get(obj, key);
	if(v == NULL)
		return 0;
	if(!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

static int check_string(pctx *c, const json_t *s, const char *what, const char *lang) {
	size_t n = json_string_length(s);
	char in[INSTRUMENT_LANG_MAX + 8] = "";
	if(lang)
		snprintf(in, sizeof(in), " (%s)", lang);
	if(n == 0)
		return fail(c, "%s%s is empty", what, in);
	if(n > INSTRUMENT_TEXT_MAX)
		return fail(c, "%s%s is longer than %d bytes", what, in, INSTRUMENT_TEXT_MAX);
	return 0;
}

/* A text: a plain string (the same in every language) or an object with
 * exactly the declared languages. */
static int check_text(pctx *c, const json_t *t, const char *what) {
	instrument *ins = c->ins;
	if(t == NULL)
		return fail(c, "%s is missing", what);
	if(json_is_string(t))
		return check_string(c, t, what, NULL);
	if(!json_is_object(t))
		return fail(c, "%s must be a string or an object of translations", what);
	if(!ins->lang_declared)
		return fail(c, "%s has translations, but the definition declares no languages", what);
	for(int l = 0; l < ins->n_lang; l++) {
		json_t *s = json_object_get(t, ins->lang[l]);
		if(s == NULL)
			return fail(c, "%s has no \"%s\" translation", what, ins->lang[l]);
		if(!json_is_string(s))
			return fail(c, "%s (%s) must be a string", what, ins->lang[l]);
		if(check_string(c, s, what, ins->lang[l]) < 0)
			return -1;
	}
	/* every language present; more keys than languages means a stray one */
	if(json_object_size(t) != (size_t)ins->n_lang) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)t, key, v) {
			bool known = false;
			for(int l = 0; l < ins->n_lang && !known; l++)
				known = !strcmp(key, ins->lang[l]);
			if(!known)
				return fail(c, "%s has language \"%.16s\", which is not in languages", what, key);
		}
	}
	return 0;
}

static int add_lang(pctx *c, const char *tag, const char *what) {
	instrument *ins = c->ins;
	if(!lang_ok(tag))
		return fail(c, "%s: \"%.16s\" is not a language tag (1 to 16 of A-Z a-z 0-9 -, starting with a letter)", what, tag);
	for(int l = 0; l < ins->n_lang; l++)
		if(!g_ascii_strcasecmp(ins->lang[l], tag))
			return fail(c, "%s: \"%s\" is listed twice", what, tag);
	if(ins->n_lang == INSTRUMENT_MAX_LANGUAGES)
		return fail(c, "%s: more than %d languages", what, INSTRUMENT_MAX_LANGUAGES);
	g_strlcpy(ins->lang[ins->n_lang++], tag, INSTRUMENT_LANG_MAX + 1);
	return 0;
}

/* `languages`, or else the keys of a translated title, or else "und". */
static int parse_languages(pctx *c, const json_t *root) {
	instrument *ins = c->ins;
	json_t *langs = json_object_get(root, "languages");
	ins->lang_declared = true;
	if(langs != NULL) {
		if(!json_is_array(langs) || json_array_size(langs) == 0)
			return fail(c, "languages must be a non-empty array of language tags");
		size_t i;
		json_t *l;
		json_array_foreach(langs, i, l) {
			if(!json_is_string(l))
				return fail(c, "languages[%zu] must be a string", i);
			if(add_lang(c, json_string_value(l), "languages") < 0)
				return -1;
		}
	} else if(json_is_object(ins->title) && json_object_size(ins->title) > 0) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)ins->title, key, v)
			if(add_lang(c, key, "title") < 0)
				return -1;
	} else {
		ins->lang_declared = false;
		ins->n_lang = 1;
		strcpy(ins->lang[0], "und");
	}
	return 0;
}

static int parse_vas(pctx *c, const json_t *scale, item *it) {
	static const char *const keys[] = { "type", "min", "max", "step", "min_label", "max_label", NULL };
	if(check_keys(c, scale, keys, "scale") < 0)
		return -1;
	static const char *const names[] = { "min", "max", "step" };
	double *dst[] = { &it->min, &it->max, &it->step };
	for(int k = 0; k < 3; k++) {
		int r = get_number(scale, names[k], dst[k]);
		if(r == 0)
			return fail(c, "scale.%s is missing", names[k]);
		if(r < 0)
			return fail(c, "scale.%s must be a number", names[k]);
	}
	if(absd(it->min) > BOUND_MAX || absd(it->max) > BOUND_MAX)
		return fail(c, "scale.min and scale.max must be between -1000000 and 1000000");
	if(!(it->max > it->min))
		return fail(c, "scale.max must be > scale.min");
	if(!(it->step > 0))
		return fail(c, "scale.step must be > 0");
	if(it->step < 1e-6)
		return fail(c, "scale.step must be >= 0.000001");
	double k = (it->max - it->min) / it->step;
	if(k > INSTRUMENT_VAS_MAX_STEPS * (1 + GRID_TOL))
		return fail(c, "(scale.max - scale.min) / scale.step must be <= %d", INSTRUMENT_VAS_MAX_STEPS);
	double r = round_int(k);
	if(r < 1 || absd(k - r) > GRID_TOL * k)
		return fail(c, "scale.max - scale.min must be a whole number of scale.step");
	it->nsteps = (int)r;
	it->vas = true;
	it->min_label = json_object_get(scale, "min_label");
	it->max_label = json_object_get(scale, "max_label");
	if(check_text(c, it->min_label, "scale.min_label") < 0)
		return -1;
	return check_text(c, it->max_label, "scale.max_label");
}

static int parse_likert(pctx *c, const json_t *scale, item *it) {
	static const char *const keys[] = { "type", "points", "min", "labels", NULL };
	if(check_keys(c, scale, keys, "scale") < 0)
		return -1;
	json_t *p = json_object_get(scale, "points");
	if(p == NULL)
		return fail(c, "scale.points is missing");
	if(!json_is_integer(p) || json_integer_value(p) < INSTRUMENT_LIKERT_MIN_POINTS
			|| json_integer_value(p) > INSTRUMENT_LIKERT_MAX_POINTS)
		return fail(c, "scale.points must be an integer from %d to %d",
			INSTRUMENT_LIKERT_MIN_POINTS, INSTRUMENT_LIKERT_MAX_POINTS);
	int points = (int)json_integer_value(p);
	json_t *m = json_object_get(scale, "min");
	json_int_t min = 1;
	if(m != NULL) {
		if(!json_is_integer(m) || json_integer_value(m) < -BOUND_MAX || json_integer_value(m) > BOUND_MAX)
			return fail(c, "scale.min must be an integer between -1000000 and 1000000");
		min = json_integer_value(m);
	}
	it->vas = false;
	it->min = (double)min;
	it->max = (double)(min + points - 1);
	it->step = 1;
	it->nsteps = points - 1;
	json_t *labels = json_object_get(scale, "labels");
	if(labels == NULL)
		return 0;
	if(!json_is_array(labels))
		return fail(c, "scale.labels must be an array");
	if(json_array_size(labels) != (size_t)points)
		return fail(c, "scale.labels has %zu entries, but scale.points is %d",
			json_array_size(labels), points);
	for(int i = 0; i < points; i++) {
		char what[32];
		snprintf(what, sizeof(what), "scale.labels[%d]", i);
		if(check_text(c, json_array_get(labels, i), what) < 0)
			return -1;
	}
	it->labels = labels;
	return 0;
}

/* One item; its subscale name (or "") goes to subname, to be numbered
 * once all items and the `subscales` object are read. */
static int parse_item(pctx *c, const json_t *j, int i, char *subname) {
	static const char *const keys[] = { "id", "text", "scale", "reverse", "subscale", NULL };
	instrument *ins = c->ins;
	item *it = &ins->items[i];
	snprintf(c->where, sizeof(c->where), "items[%d]", i);
	if(!json_is_object(j))
		return fail(c, "must be an object");
	json_t *id = json_object_get(j, "id");
	if(id == NULL)
		return fail(c, "id is missing");
	if(!json_is_string(id))
		return fail(c, "id must be a string");
	if(!name_ok(json_string_value(id)))
		return fail(c, "id \"%.48s\" must be 1 to 48 of A-Z a-z 0-9 _ . -", json_string_value(id));
	g_strlcpy(it->id, json_string_value(id), sizeof(it->id));
	snprintf(c->where, sizeof(c->where), "items[%d] (%s)", i, it->id);
	for(int k = 0; k < i; k++)
		if(!strcmp(ins->items[k].id, it->id))
			return fail(c, "id \"%s\" is already used by items[%d]", it->id, k);
	if(check_keys(c, j, keys, "the item") < 0)
		return -1;
	it->text = json_object_get(j, "text");
	if(check_text(c, it->text, "text") < 0)
		return -1;
	json_t *scale = json_object_get(j, "scale");
	if(scale == NULL)
		return fail(c, "scale is missing");
	if(!json_is_object(scale))
		return fail(c, "scale must be an object");
	json_t *type = json_object_get(scale, "type");
	if(!json_is_string(type))
		return fail(c, "scale.type must be a string (vas or likert)");
	const char *t = json_string_value(type);
	int rc;
	if(!strcmp(t, "vas"))
		rc = parse_vas(c, scale, it);
	else if(!strcmp(t, "likert"))
		rc = parse_likert(c, scale, it);
	else
		return fail(c, "scale.type \"%.32s\" is not a known scale type (vas, likert)", t);
	if(rc < 0)
		return -1;
	json_t *rev = json_object_get(j, "reverse");
	if(rev != NULL && !json_is_boolean(rev))
		return fail(c, "reverse must be true or false");
	it->reverse = json_is_true(rev);
	it->subscale = -1;
	json_t *sub = json_object_get(j, "subscale");
	if(sub != NULL) {
		if(!json_is_string(sub) || !name_ok(json_string_value(sub)))
			return fail(c, "subscale must be a name of 1 to 48 of A-Z a-z 0-9 _ . -");
		if(!strcmp(json_string_value(sub), "total"))
			return fail(c, "subscale \"total\" is reserved for the total score");
		g_strlcpy(subname, json_string_value(sub), INSTRUMENT_ID_MAX + 1);
	}
	return 0;
}

/* The optional `subscales` object: {name: [item id, …]}. */
static int parse_subscale_map(pctx *c, const json_t *root, char subname[][INSTRUMENT_ID_MAX + 1]) {
	instrument *ins = c->ins;
	json_t *map = json_object_get(root, "subscales");
	if(map == NULL)
		return 0;
	if(!json_is_object(map))
		return fail(c, "subscales must be an object {name: [item ids]}");
	const char *name;
	json_t *list;
	json_object_foreach(map, name, list) {
		if(!name_ok(name))
			return fail(c, "subscales: \"%.48s\" must be a name of 1 to 48 of A-Z a-z 0-9 _ . -", name);
		if(!strcmp(name, "total"))
			return fail(c, "subscales: \"total\" is reserved for the total score");
		if(!json_is_array(list) || json_array_size(list) == 0)
			return fail(c, "subscales.%s must be a non-empty array of item ids", name);
		size_t k;
		json_t *idj;
		json_array_foreach(list, k, idj) {
			if(!json_is_string(idj))
				return fail(c, "subscales.%s[%zu] must be an item id", name, k);
			int i = instrument_item_index(ins, json_string_value(idj));
			if(i < 0)
				return fail(c, "subscales.%s lists \"%.48s\", which is not an item id", name, json_string_value(idj));
			if(!strcmp(subname[i], name))
				return fail(c, "subscales.%s lists \"%s\" twice (or also as its item's subscale)", name, ins->items[i].id);
			if(subname[i][0])
				return fail(c, "subscales.%s lists \"%s\", which is already in subscale %s", name, ins->items[i].id, subname[i]);
			g_strlcpy(subname[i], name, INSTRUMENT_ID_MAX + 1);
		}
	}
	return 0;
}

static int parse_mode(pctx *c, const json_t *scoring, const char *key, bool none_ok, score_mode *out) {
	json_t *v = json_object_get(scoring, key);
	if(v == NULL)
		return 0;
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	if(!strcmp(s, "sum"))
		*out = MODE_SUM;
	else if(!strcmp(s, "mean"))
		*out = MODE_MEAN;
	else if(none_ok && !strcmp(s, "none"))
		*out = MODE_NONE;
	else
		return fail(c, "scoring.%s must be \"sum\", \"mean\"%s", key, none_ok ? " or \"none\"" : "");
	return 0;
}

static int parse_rule(pctx *c, const json_t *rules, const char *name, rule *r) {
	static const char *const cutoff_keys[] = { "score", "below", NULL };
	static const char *const drop_keys[] = { "score", "points", "min_baseline", NULL };
	instrument *ins = c->ins;
	bool drop = !strcmp(name, "drop");
	json_t *j = json_object_get(rules, name);
	if(j == NULL)
		return 0;
	char what[16];
	snprintf(what, sizeof(what), "rules.%s", name);
	if(!json_is_object(j))
		return fail(c, "%s must be an object", what);
	if(check_keys(c, j, drop ? drop_keys : cutoff_keys, what) < 0)
		return -1;
	json_t *score = json_object_get(j, "score");
	const char *sname = "total";
	if(score != NULL) {
		if(!json_is_string(score))
			return fail(c, "%s.score must be \"total\" or a subscale name", what);
		sname = json_string_value(score);
	}
	r->score = -2;
	if(!strcmp(sname, "total")) {
		if(ins->total_mode == MODE_NONE)
			return fail(c, "%s.score is \"total\", but scoring.total is \"none\"", what);
		r->score = -1;
	}
	for(int s = 0; s < ins->n_sub && r->score == -2; s++)
		if(!strcmp(ins->sub[s], sname))
			r->score = s;
	if(r->score == -2)
		return fail(c, "%s.score \"%.48s\" is neither \"total\" nor a subscale", what, sname);
	const char *vkey = drop ? "points" : "below";
	int got = get_number(j, vkey, &r->value);
	if(got <= 0)
		return fail(c, "%s.%s must be a number", what, vkey);
	if(drop && !(r->value > 0))
		return fail(c, "rules.drop.points must be > 0");
	r->min_baseline = 1;
	json_t *mb = json_object_get(j, "min_baseline");
	if(drop && mb != NULL) {
		if(!json_is_integer(mb) || json_integer_value(mb) < 1 || json_integer_value(mb) > 1000)
			return fail(c, "rules.drop.min_baseline must be an integer from 1 to 1000");
		r->min_baseline = (int)json_integer_value(mb);
	}
	r->on = true;
	return 0;
}

static int parse_name_field(pctx *c, const json_t *root, const char *key, char *out) {
	json_t *v = json_object_get(root, key);
	if(v == NULL)
		return fail(c, "%s is missing", key);
	if(!json_is_string(v) || !name_ok(json_string_value(v)))
		return fail(c, "%s must be a string of 1 to 48 of A-Z a-z 0-9 _ . -", key);
	g_strlcpy(out, json_string_value(v), INSTRUMENT_ID_MAX + 1);
	return 0;
}

static int parse_root(pctx *c, json_t *root) {
	instrument *ins = c->ins;
	if(!json_is_object(root))
		return fail(c, "the definition must be a JSON object");
	if(parse_name_field(c, root, "id", ins->id) < 0 || parse_name_field(c, root, "version", ins->version) < 0)
		return -1;
	static const char *const kinds[] = { "in_session", "end", "therapist_end", "technology", NULL };
	json_t *kind = json_object_get(root, "kind");
	for(const char *const *k = kinds; *k && json_is_string(kind); k++)
		if(!strcmp(json_string_value(kind), *k))
			g_strlcpy(ins->kind, *k, sizeof(ins->kind));
	if(ins->kind[0] == '\0')
		return fail(c, "kind must be \"in_session\", \"end\", \"therapist_end\" or \"technology\"");
	json_t *validated = json_object_get(root, "validated");
	if(validated != NULL && !json_is_boolean(validated))
		return fail(c, "validated must be true or false");
	ins->validated = json_is_true(validated);
	ins->title = json_object_get(root, "title");
	if(parse_languages(c, root) < 0 || check_text(c, ins->title, "title") < 0)
		return -1;

	json_t *items = json_object_get(root, "items");
	if(!json_is_array(items))
		return fail(c, "items must be an array");
	if(json_array_size(items) == 0)
		return fail(c, "items is empty: an instrument needs at least one item");
	if(json_array_size(items) > INSTRUMENT_MAX_ITEMS)
		return fail(c, "items has %zu entries, at most %d are allowed",
			json_array_size(items), INSTRUMENT_MAX_ITEMS);
	char subname[INSTRUMENT_MAX_ITEMS][INSTRUMENT_ID_MAX + 1];
	memset(subname, 0, sizeof(subname));
	for(size_t i = 0; i < json_array_size(items); i++) {
		if(parse_item(c, json_array_get(items, i), (int)i, subname[i]) < 0)
			return -1;
		ins->n_items++;
	}
	snprintf(c->where, sizeof(c->where), "-");
	if(parse_subscale_map(c, root, subname) < 0)
		return -1;
	/* number the subscales in order of their first item */
	for(int i = 0; i < ins->n_items; i++) {
		if(subname[i][0] == '\0')
			continue;
		int s = 0;
		while(s < ins->n_sub && strcmp(ins->sub[s], subname[i]))
			s++;
		if(s == ins->n_sub) {
			if(ins->n_sub == INSTRUMENT_MAX_SUBSCALES)
				return fail(c, "more than %d subscales", INSTRUMENT_MAX_SUBSCALES);
			g_strlcpy(ins->sub[ins->n_sub++], subname[i], INSTRUMENT_ID_MAX + 1);
		}
		ins->items[i].subscale = s;
	}

	static const char *const scoring_keys[] = { "total", "subscales", NULL };
	ins->total_mode = ins->sub_mode = MODE_SUM;
	json_t *scoring = json_object_get(root, "scoring");
	if(scoring != NULL) {
		if(!json_is_object(scoring))
			return fail(c, "scoring must be an object");
		if(check_keys(c, scoring, scoring_keys, "scoring") < 0
				|| parse_mode(c, scoring, "total", true, &ins->total_mode) < 0
				|| parse_mode(c, scoring, "subscales", false, &ins->sub_mode) < 0)
			return -1;
	}
	static const char *const rules_keys[] = { "cutoff", "drop", NULL };
	json_t *rules = json_object_get(root, "rules");
	if(rules != NULL) {
		if(!json_is_object(rules))
			return fail(c, "rules must be an object");
		if(check_keys(c, rules, rules_keys, "rules") < 0
				|| parse_rule(c, rules, "cutoff", &ins->cutoff) < 0
				|| parse_rule(c, rules, "drop", &ins->drop) < 0)
			return -1;
	}
	return 0;
}

instrument *instrument_parse(const char *text, size_t len, const char *source, char *err, size_t errlen) {
	instrument *ins = g_new0(instrument, 1);
	pctx c = { .ins = ins, .err = err, .errlen = errlen };
	g_strlcpy(ins->source, source && *source ? source : "-", sizeof(ins->source));
	sanitize(ins->source);
	c.source = ins->source;
	snprintf(c.where, sizeof(c.where), "-");
	if(err && errlen)
		err[0] = '\0';
	if(text == NULL)
		len = 0;
	if(len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
		text += 3;
		len -= 3;
	}
	if(len > INSTRUMENT_FILE_MAX) {
		fail(&c, "larger than %d bytes", INSTRUMENT_FILE_MAX);
		goto bad;
	}
	json_error_t jerr;
	ins->root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if(ins->root == NULL) {
		fail(&c, "not valid JSON at line %d: %s", jerr.line, jerr.text);
		goto bad;
	}
	if(parse_root(&c, ins->root) == 0)
		return ins;
bad:
	instrument_free(ins);
	return NULL;
}

void instrument_free(instrument *ins) {
	if(ins == NULL)
		return;
	json_decref(ins->root);
	g_free(ins);
}

/* ---- accessors and the pulse ------------------------------------------------ */

const char *instrument_id(const instrument *ins) { return ins->id; }
const char *instrument_version(const instrument *ins) { return ins->version; }
const char *instrument_kind(const instrument *ins) { return ins->kind; }
const char *instrument_source(const instrument *ins) { return ins->source; }
bool instrument_validated(const instrument *ins) { return ins->validated; }
const char *instrument_default_language(const instrument *ins) { return ins->lang[0]; }
int instrument_language_count(const instrument *ins) { return ins->n_lang > 0 ? ins->n_lang : 1; }
const char *instrument_language(const instrument *ins, int i) {
	return i >= 0 && i < instrument_language_count(ins) ? ins->lang[i] : NULL;
}
int instrument_item_count(const instrument *ins) { return ins->n_items; }

int instrument_item_index(const instrument *ins, const char *item_id) {
	if(item_id == NULL)
		return -1;
	for(int i = 0; i < ins->n_items; i++)
		if(!strcmp(ins->items[i].id, item_id))
			return i;
	return -1;
}

const char *instrument_item_id(const instrument *ins, int i) {
	return (i >= 0 && i < ins->n_items) ? ins->items[i].id : NULL;
}

static int pick_lang(const instrument *ins, const char *lang) {
	if(lang == NULL || *lang == '\0')
		return 0;
	for(int l = 0; l < ins->n_lang; l++)
		if(!g_ascii_strcasecmp(ins->lang[l], lang))
			return l;
	size_t want = strcspn(lang, "-_");
	for(int l = 0; l < ins->n_lang; l++) {
		size_t have = strcspn(ins->lang[l], "-");
		if(have == want && !g_ascii_strncasecmp(ins->lang[l], lang, want))
			return l;
	}
	return 0;
}

static json_t *text_json(const json_t *t, const char *lang) {
	if(json_is_string(t))
		return json_string(json_string_value(t));
	return json_string(json_string_value(json_object_get(t, lang)));
}

json_t *instrument_pulse_json(const instrument *ins, const char *lang, const char **lang_used) {
	const char *L = ins->lang[pick_lang(ins, lang)];
	if(lang_used)
		*lang_used = L;
	json_t *items = json_array();
	for(int i = 0; i < ins->n_items; i++) {
		const item *it = &ins->items[i];
		json_t *scale = json_object();
		json_object_set_new(scale, "type", json_string(it->vas ? "vas" : "likert"));
		if(it->vas) {
			json_object_set_new(scale, "min", number_json(it->min));
			json_object_set_new(scale, "max", number_json(it->max));
			json_object_set_new(scale, "step", number_json(it->step));
			json_object_set_new(scale, "min_label", text_json(it->min_label, L));
			json_object_set_new(scale, "max_label", text_json(it->max_label, L));
		} else {
			json_object_set_new(scale, "points", json_integer(it->nsteps + 1));
			json_object_set_new(scale, "min", number_json(it->min));
			json_object_set_new(scale, "max", number_json(it->max));
			if(it->labels) {
				json_t *labels = json_array();
				for(size_t k = 0; k < json_array_size(it->labels); k++)
					json_array_append_new(labels, text_json(json_array_get(it->labels, k), L));
				json_object_set_new(scale, "labels", labels);
			}
		}
		json_array_append_new(items, json_pack("{s:s, s:o, s:o}", "id", it->id,
			"text", text_json(it->text, L), "scale", scale));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", ins->id, "version", ins->version,
		"lang", L, "title", text_json(ins->title, L), "items", items);
}

/* ---- answers ------------------------------------------------------------------ */

void instrument_answer_init(instrument_answer *a, const instrument *ins) {
	memset(a, 0, sizeof(*a));
	a->n = ins->n_items;
}

static instrument_verdict refuse(char *detail, size_t len, instrument_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static instrument_verdict refuse(char *detail, size_t len, instrument_verdict v, const char *fmt, ...) {
	if(detail && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, len, fmt, ap);
		va_end(ap);
		sanitize(detail);
	}
	return v;
}

static const char *json_type_name(const json_t *v) {
	switch(json_typeof(v)) {
		case JSON_STRING: return "a string";
		case JSON_TRUE: case JSON_FALSE: return "a boolean";
		case JSON_NULL: return "null";
		case JSON_OBJECT: return "an object";
		case JSON_ARRAY: return "an array";
		default: return "a number";
	}
}

/* Check one value against its item; on success *out is the value to store. */
static instrument_verdict check_value(const item *it, double v, double *out, char *detail, size_t len) {
	const char *id = it->id;
	if(!(v >= it->min - it->step))       /* also NaN */
		return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is below the minimum %.10g", id, v, it->min);
	if(!(v <= it->max + it->step))
		return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is above the maximum %.10g", id, v, it->max);
	/* from here |k| <= nsteps + 1, small enough to round by hand */
	double k = (v - it->min) / it->step;
	double r = round_int(k);
	bool on_grid = it->vas ? absd(k - r) <= GRID_TOL * (absd(k) > 1 ? absd(k) : 1) : v == round_int(v);
	if(on_grid ? r < 0 : v < it->min)
		return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is below the minimum %.10g", id, v, it->min);
	if(on_grid ? r > it->nsteps : v > it->max)
		return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is above the maximum %.10g", id, v, it->max);
	if(!on_grid) {
		if(!it->vas)
			return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is not a whole number", id, v);
		return refuse(detail, len, INSTR_OUT_OF_RANGE, "\"%s\": %.10g is not on the scale's steps of %.10g from %.10g",
			id, v, it->step, it->min);
	}
	*out = it->vas ? (r == it->nsteps ? it->max : round9(it->min + r * it->step)) : v;
	return INSTR_OK;
}

instrument_verdict instrument_answer_merge(const instrument *ins, const json_t *responses,
		instrument_answer *a, char *detail, size_t len) {
	if(detail && len)
		detail[0] = '\0';
	if(a->n != ins->n_items)
		return refuse(detail, len, INSTR_EMPTY, "the answer does not belong to %s", ins->id);
	if(!json_is_object(responses) || json_object_size(responses) == 0)
		return refuse(detail, len, INSTR_EMPTY, "responses must be a non-empty object {item_id: number}");
	instrument_answer next = *a;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)responses, key, v) {
		int i = instrument_item_index(ins, key);
		if(i < 0)
			return refuse(detail, len, INSTR_UNKNOWN_ITEM, "\"%.48s\" is not an item of %s", key, ins->id);
		if(!json_is_number(v))
			return refuse(detail, len, INSTR_WRONG_TYPE, "\"%s\" must be a number, not %s", key, json_type_name(v));
		instrument_verdict verdict = check_value(&ins->items[i], json_number_value(v), &next.value[i], detail, len);
		if(verdict != INSTR_OK)
			return verdict;
		next.present[i] = true;
	}
	*a = next;
	return INSTR_OK;
}

bool instrument_answer_complete(const instrument *ins, const instrument_answer *a) {
	if(a->n != ins->n_items)
		return false;
	for(int i = 0; i < ins->n_items; i++)
		if(!a->present[i])
			return false;
	return true;
}

const char *instrument_verdict_slug(instrument_verdict v) {
	switch(v) {
		case INSTR_OK: return "ok";
		case INSTR_UNKNOWN_ITEM: return "unknown_item";
		case INSTR_WRONG_TYPE: return "wrong_type";
		case INSTR_OUT_OF_RANGE: return "out_of_range";
		default: return "bad_responses";
	}
}

/* ---- scores and rules ---------------------------------------------------------- */

int instrument_score(const instrument *ins, const instrument_answer *a, instrument_scores *out) {
	memset(out, 0, sizeof(*out));
	if(!instrument_answer_complete(ins, a))
		return -1;
	double total = 0, sum[INSTRUMENT_MAX_SUBSCALES] = { 0 };
	int count[INSTRUMENT_MAX_SUBSCALES] = { 0 };
	for(int i = 0; i < ins->n_items; i++) {
		const item *it = &ins->items[i];
		double v = it->reverse ? it->min + it->max - a->value[i] : a->value[i];
		total += v;
		if(it->subscale >= 0) {
			sum[it->subscale] += v;
			count[it->subscale]++;
		}
	}
	out->has_total = ins->total_mode != MODE_NONE;
	if(out->has_total)
		out->total = round6(ins->total_mode == MODE_MEAN ? total / ins->n_items : total);
	out->n_sub = ins->n_sub;
	for(int s = 0; s < ins->n_sub; s++) {
		g_strlcpy(out->sub_name[s], ins->sub[s], sizeof(out->sub_name[s]));
		/* every subscale has at least one item by construction */
		out->sub[s] = round6(ins->sub_mode == MODE_MEAN ? sum[s] / count[s] : sum[s]);
	}
	return 0;
}

bool instrument_score_range(const instrument *ins, const char *name, double *min, double *max) {
	if(ins == NULL || name == NULL)
		return false;
	int which = -2;                          /* -1 total, else a subscale */
	if(!strcmp(name, "total")) {
		if(ins->total_mode == MODE_NONE)
			return false;
		which = -1;
	} else {
		for(int s = 0; s < ins->n_sub; s++)
			if(!strcmp(ins->sub[s], name))
				which = s;
		if(which == -2)
			return false;
	}
	/* reverse keying maps [min, max] onto itself: the range is the items' */
	double lo = 0, hi = 0;
	int n = 0;
	for(int i = 0; i < ins->n_items; i++) {
		const item *it = &ins->items[i];
		if(which >= 0 && it->subscale != which)
			continue;
		lo += it->min;
		hi += it->max;
		n++;
	}
	score_mode mode = which < 0 ? ins->total_mode : ins->sub_mode;
	if(n == 0)
		return false;
	if(min)
		*min = round6(mode == MODE_MEAN ? lo / n : lo);
	if(max)
		*max = round6(mode == MODE_MEAN ? hi / n : hi);
	return true;
}

bool instrument_score_get(const instrument_scores *s, const char *name, double *out) {
	if(name == NULL)
		return false;
	if(!strcmp(name, "total")) {
		if(s->has_total && out)
			*out = s->total;
		return s->has_total;
	}
	for(int i = 0; i < s->n_sub && i < INSTRUMENT_MAX_SUBSCALES; i++) {
		if(!strncmp(s->sub_name[i], name, sizeof(s->sub_name[i]))) {
			if(out)
				*out = s->sub[i];
			return true;
		}
	}
	return false;
}

json_t *instrument_scores_json(const instrument_scores *s) {
	json_t *o = json_object();
	if(s->has_total)
		json_object_set_new(o, "total", json_real(s->total));
	json_t *subs = json_object();
	for(int i = 0; i < s->n_sub && i < INSTRUMENT_MAX_SUBSCALES; i++) {
		char name[INSTRUMENT_ID_MAX + 1];
		g_strlcpy(name, s->sub_name[i], sizeof(name));
		json_object_set_new(subs, name, json_real(s->sub[i]));
	}
	json_object_set_new(o, "subscales", subs);
	return o;
}

const char *instrument_rule_score_name(const instrument *ins, bool drop) {
	const rule *r = drop ? &ins->drop : &ins->cutoff;
	if(!r->on)
		return NULL;
	return r->score < 0 ? "total" : ins->sub[r->score];
}

bool instrument_rule_cutoff(const instrument *ins, const instrument_scores *s, double *score, double *threshold) {
	double v;
	if(!instrument_score_get(s, instrument_rule_score_name(ins, false), &v))
		return false;
	v = round6(v);
	double below = round6(ins->cutoff.value);
	if(score)
		*score = v;
	if(threshold)
		*threshold = below;
	return v < below;
}

bool instrument_rule_drop(const instrument *ins, const instrument_scores *s,
		const double *earlier, int n_earlier, double *score, double *baseline) {
	double v;
	if(!instrument_score_get(s, instrument_rule_score_name(ins, true), &v) || earlier == NULL)
		return false;
	double sum = 0;
	int n = 0;
	for(int i = 0; i < n_earlier; i++) {
		if(isfinite(earlier[i])) {
			sum += earlier[i];
			n++;
		}
	}
	if(n == 0 || !isfinite(sum))
		return false;
	v = round6(v);
	double base = round6(sum / n);
	if(score)
		*score = v;
	if(baseline)
		*baseline = base;
	return n >= ins->drop.min_baseline && round6(base - v) >= round6(ins->drop.value);
}
