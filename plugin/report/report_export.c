/*
 * report_export.c — the research exports of report.h: answers, visits and
 * quality samples as tidy CSV or JSON (docs/codebook.md), streamed row by
 * row from the store's report reads, so that memory stays flat however
 * many rows there are. Always consented visits only.
 */
#include "report.h"
#include "report_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- exports ----------------------------------------------------------------------------------- */

typedef enum col_type { C_STR, C_INT, C_NUM, C_BOOL, C_TIME, C_BROWSER } col_type;

typedef struct col {
	const char *name;       /* the column */
	const char *src;        /* the store row's key (or the metric's, for samples) */
	col_type type;
	gboolean metric;        /* samples: inside the row's "metrics" object */
} col;

static const col ANSWER_COLS[] = {
	{ "visit_id", "visit_id", C_STR, FALSE }, { "therapist_code", "therapist_code", C_STR, FALSE },
	{ "client_code", "client_code", C_STR, FALSE }, { "modality", "modality", C_STR, FALSE },
	{ "visit_number", "visit_number", C_INT, FALSE }, { "visit_created_at", "visit_created_at", C_TIME, FALSE },
	{ "pulse_id", "pulse_id", C_STR, FALSE }, { "role", "role", C_STR, FALSE },
	{ "kind", "kind", C_STR, FALSE }, { "instrument_id", "instrument_id", C_STR, FALSE },
	{ "instrument_version", "instrument_version", C_STR, FALSE }, { "language", "language", C_STR, FALSE },
	{ "trigger", "trigger", C_STR, FALSE }, { "delivered_via", "delivered_via", C_STR, FALSE },
	{ "pulse_created_at", "pulse_created_at", C_TIME, FALSE }, { "status", "status", C_STR, FALSE },
	{ "first_at", "first_at", C_TIME, FALSE }, { "answered_at", "answered_at", C_TIME, FALSE },
	{ "time_to_answer_ms", "time_to_answer_ms", C_INT, FALSE }, { "final", "final", C_BOOL, FALSE },
	{ "dismissed", "dismissed", C_BOOL, FALSE }, { "item_id", "item_id", C_STR, FALSE },
	{ "value", "value", C_NUM, FALSE },
};

static const col VISIT_COLS[] = {
	{ "visit_id", "visit_id", C_STR, FALSE }, { "therapist_code", "therapist_code", C_STR, FALSE },
	{ "client_code", "client_code", C_STR, FALSE }, { "modality", "modality", C_STR, FALSE },
	{ "state", "state", C_STR, FALSE }, { "visit_number", "visit_number", C_INT, FALSE },
	{ "created_at", "created_at", C_TIME, FALSE }, { "admitted_at", "admitted_at", C_TIME, FALSE },
	{ "ended_at", "ended_at", C_TIME, FALSE }, { "closed_at", "closed_at", C_TIME, FALSE },
	{ "end_reason", "end_reason", C_STR, FALSE },
	{ "client_instrument", "client_instrument", C_STR, FALSE }, { "client_total", "client_total", C_NUM, FALSE },
	{ "therapist_instrument", "therapist_instrument", C_STR, FALSE },
	{ "therapist_total", "therapist_total", C_NUM, FALSE }, { "mean_mos", "mean_mos", C_NUM, FALSE },
	{ "loss_pct", "loss_pct", C_NUM, FALSE }, { "freeze_s", "freeze_s", C_NUM, FALSE },
	{ "incidents", "incidents", C_INT, FALSE }, { "alerts", "alerts", C_INT, FALSE },
	{ "instance_id", "instance_id", C_STR, FALSE }, { "video_class", "video_class", C_STR, FALSE },
};

static const col SAMPLE_COLS[] = {
	{ "visit_id", "visit_id", C_STR, FALSE }, { "modality", "modality", C_STR, FALSE },
	{ "leg", "leg", C_STR, FALSE }, { "medium", "medium", C_STR, FALSE }, { "at", "at", C_TIME, FALSE },
	{ "seconds", "seconds", C_NUM, TRUE }, { "packets", "packets", C_INT, TRUE },
	{ "expected", "expected", C_INT, TRUE }, { "lost", "lost", C_INT, TRUE },
	{ "loss_pct", "loss_pct", C_NUM, TRUE }, { "jitter_ms", "jitter_ms", C_NUM, TRUE },
	{ "rtt_ms", "rtt_ms", C_NUM, TRUE }, { "rtt_max_ms", "rtt_max_ms", C_NUM, TRUE },
	{ "bitrate_kbps", "bitrate_kbps", C_NUM, TRUE }, { "fps", "fps", C_NUM, TRUE },
	{ "freezes", "freezes", C_INT, TRUE }, { "freeze_s", "freeze_s", C_NUM, TRUE },
	{ "stalls", "stalls", C_INT, TRUE }, { "stall_s", "stall_s", C_NUM, TRUE },
	{ "nack", "nack", C_INT, TRUE }, { "pli", "pli", C_INT, TRUE }, { "fir", "fir", C_INT, TRUE },
	{ "browser_json", "metrics", C_BROWSER, FALSE },
};

static const col *cols_of(report_export_kind kind, int *n) {
	switch(kind) {
		case REPORT_EXPORT_ANSWERS: *n = G_N_ELEMENTS(ANSWER_COLS); return ANSWER_COLS;
		case REPORT_EXPORT_VISITS: *n = G_N_ELEMENTS(VISIT_COLS); return VISIT_COLS;
		case REPORT_EXPORT_SAMPLES: *n = G_N_ELEMENTS(SAMPLE_COLS); return SAMPLE_COLS;
	}
	*n = 0;
	return NULL;
}

const char *report_export_name(report_export_kind kind) {
	switch(kind) {
		case REPORT_EXPORT_ANSWERS: return "answers";
		case REPORT_EXPORT_VISITS: return "visits";
		case REPORT_EXPORT_SAMPLES: return "samples";
	}
	return "unknown";
}

const char *const *report_export_columns(report_export_kind kind) {
	static const char *names[3][32];
	static gsize once = 0;
	if(g_once_init_enter(&once)) {
		for(int k = 0; k < 3; k++) {
			int n;
			const col *c = cols_of((report_export_kind)k, &n);
			for(int i = 0; i < n && i < 31; i++)
				names[k][i] = c[i].name;
		}
		g_once_init_leave(&once, 1);
	}
	return (int)kind >= 0 && (int)kind < 3 ? names[kind] : NULL;
}

/* The samples read gives each sample's metrics as the stored text
 * ("metrics_raw"): parsing a million small objects with jansson costs more
 * than the rest of the export, so CSV rows take the numbers straight from
 * the text (flat_scan), and only JSON output and browser rows parse it. */
#define FLAT_MAX 48

typedef struct flat {
	int n;
	const char *key[FLAT_MAX], *val[FLAT_MAX];
	int klen[FLAT_MAX], vlen[FLAT_MAX];
} flat;

static const char *skip_ws(const char *p) {
	while(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* The closing quote of the JSON string opening at p, or NULL. */
static const char *string_end(const char *p) {
	for(p++; *p; p++) {
		if(*p == '\\' && p[1])
			p++;
		else if(*p == '"')
			return p;
	}
	return NULL;
}

/* The members of a JSON object's top level: key and value spans (nested
 * values are spanned whole). Stops quietly at anything malformed. */
static void flat_scan(const char *s, flat *f) {
	f->n = 0;
	const char *p = skip_ws(s ? s : "");
	if(*p != '{')
		return;
	p = skip_ws(p + 1);
	while(*p == '"' && f->n < FLAT_MAX) {
		const char *ke = string_end(p);
		if(ke == NULL)
			return;
		const char *k = p + 1;
		p = skip_ws(ke + 1);
		if(*p != ':')
			return;
		p = skip_ws(p + 1);
		const char *v = p;
		if(*p == '"') {
			const char *e = string_end(p);
			if(e == NULL)
				return;
			p = e + 1;
		} else if(*p == '{' || *p == '[') {
			int depth = 0;
			for(; *p; p++) {
				if(*p == '"') {
					const char *e = string_end(p);
					if(e == NULL)
						return;
					p = e;
				} else if(*p == '{' || *p == '[') {
					depth++;
				} else if((*p == '}' || *p == ']') && --depth == 0) {
					p++;
					break;
				}
			}
		} else {
			while(*p && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
				p++;
		}
		f->key[f->n] = k;
		f->klen[f->n] = (int)(ke - k);
		f->val[f->n] = v;
		f->vlen[f->n] = (int)(p - v);
		f->n++;
		p = skip_ws(p);
		if(*p != ',')
			return;
		p = skip_ws(p + 1);
	}
}

static gboolean flat_get(const flat *f, const char *key, const char **v, int *len) {
	size_t kl = strlen(key);
	for(int i = 0; i < f->n; i++)
		if((size_t)f->klen[i] == kl && !memcmp(f->key[i], key, kl)) {
			*v = f->val[i];
			*len = f->vlen[i];
			return *len > 0 && !(*len == 4 && !memcmp(*v, "null", 4));
		}
	return FALSE;
}

static gboolean is_browser(const json_t *row) {
	const char *medium = report_sfield(row, "medium");
	return medium && !strcmp(medium, "browser");
}

/* The value of one column (borrowed; NULL = missing); metrics: the row's
 * parsed metrics object (samples), or NULL. */
static json_t *col_value(const col *c, const json_t *row, json_t *metrics) {
	if(c->type == C_BROWSER)
		return is_browser(row) && json_is_object(metrics) ? metrics : NULL;
	json_t *v = json_object_get(c->metric ? metrics : row, c->src);
	return v && !json_is_null(v) ? v : NULL;
}

/* The samples' metrics object of a row (new reference), or NULL. */
static json_t *metrics_of(const json_t *row) {
	const char *raw = report_sfield(row, "metrics_raw");
	json_t *m = raw ? json_loads(raw, 0, NULL) : NULL;
	if(m && !json_is_object(m)) {
		json_decref(m);
		m = NULL;
	}
	return m;
}

/* Append s (len bytes) as one CSV field, quoted when it needs to be. */
static void append_csv(GString *line, const char *s, size_t len) {
	gboolean quote = FALSE;
	for(size_t i = 0; i < len && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if(!quote) {
		g_string_append_len(line, s, (gssize)len);
		return;
	}
	g_string_append_c(line, '"');
	for(size_t i = 0; i < len; i++) {
		if(s[i] == '"')
			g_string_append_c(line, '"');
		g_string_append_c(line, s[i]);
	}
	g_string_append_c(line, '"');
}

/* A column's value as text (unquoted; nothing for missing). */
static void append_text(GString *line, const col *c, json_t *v) {
	char buf[48];
	if(v == NULL)
		return;
	switch(c->type) {
		case C_TIME:
			if(json_is_integer(v))
				g_string_append(line, report_iso_time(json_integer_value(v), buf, sizeof(buf)));
			return;
		case C_BOOL:
			if(json_is_boolean(v) || json_is_integer(v))
				g_string_append(line, (json_is_boolean(v) ? json_is_true(v) : json_integer_value(v) != 0)
					? "true" : "false");
			return;
		case C_BROWSER: {
			char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			if(t)
				g_string_append(line, t);
			free(t);
			return;
		}
		default:
			break;
	}
	if(json_is_string(v)) {
		g_string_append_len(line, json_string_value(v), (gssize)json_string_length(v));
	} else if(json_is_integer(v)) {
		g_snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		g_string_append(line, buf);
	} else if(json_is_real(v)) {
		double d = json_real_value(v);
		if(c->type == C_INT && d == floor(d) && fabs(d) < 1e15)
			g_snprintf(buf, sizeof(buf), "%.0f", d);
		else
			g_snprintf(buf, sizeof(buf), "%.15g", d);
		g_string_append(line, buf);
	} else if(json_is_boolean(v)) {
		g_string_append(line, json_is_true(v) ? "true" : "false");
	}
}

/* The same as one CSV field: strings quoted when they need it. */
static void append_value(GString *line, const col *c, json_t *v) {
	if(v && (json_is_string(v) || c->type == C_BROWSER)) {
		GString *t = g_string_new(NULL);
		append_text(t, c, v);
		append_csv(line, t->str, t->len);
		g_string_free(t, TRUE);
	} else {
		append_text(line, c, v);
	}
}

/* As a typed JSON value (new reference). */
static json_t *col_json(const col *c, json_t *v) {
	if(v == NULL)
		return json_null();
	char buf[48];
	switch(c->type) {
		case C_TIME:
			return json_is_integer(v) ? json_string(report_iso_time(json_integer_value(v), buf, sizeof(buf)))
				: json_null();
		case C_BOOL:
			return json_boolean(json_is_boolean(v) ? json_is_true(v) : json_integer_value(v) != 0);
		default:
			return json_incref(v);
	}
}

int report_export_row(report_export_kind kind, const json_t *row, char **values, int n) {
	int nc;
	const col *c = cols_of(kind, &nc);
	if(c == NULL || n < nc)
		return -1;
	json_t *metrics = kind == REPORT_EXPORT_SAMPLES ? metrics_of(row) : NULL;
	GString *t = g_string_new(NULL);
	for(int i = 0; i < nc; i++) {
		json_t *v = col_value(&c[i], row, metrics);
		g_string_truncate(t, 0);
		append_text(t, &c[i], v);
		values[i] = v ? g_strdup(t->str) : NULL;
	}
	g_string_free(t, TRUE);
	json_decref(metrics);
	return nc;
}

void report_row_free(char **values, int n) {
	for(int i = 0; i < n; i++) {
		g_free(values[i]);
		values[i] = NULL;
	}
}

char *report_csv_field(const char *s) {
	GString *out = g_string_new(NULL);
	if(s)
		append_csv(out, s, strlen(s));
	return g_string_free(out, FALSE);
}

typedef struct export_ctx {
	report_export_kind kind;
	report_format format;
	const col *cols;
	int ncols;
	FILE *out;
	gint64 rows;
	gboolean failed;
	report_progress_cb progress;
	gint64 every;
	void *user;
	GString *line;
	store_rc rc;
	gboolean done;
} export_ctx;

static int export_row(const json_t *row, void *user) {
	export_ctx *x = user;
	gboolean samples = x->kind == REPORT_EXPORT_SAMPLES;
	if(x->format == REPORT_FORMAT_CSV) {
		g_string_truncate(x->line, 0);
		flat fl;
		fl.n = 0;
		const char *raw = samples ? report_sfield(row, "metrics_raw") : NULL;
		gboolean browser = samples && is_browser(row);
		if(raw && !browser)
			flat_scan(raw, &fl);
		for(int i = 0; i < x->ncols; i++) {
			const col *c = &x->cols[i];
			if(i)
				g_string_append_c(x->line, ',');
			if(c->metric) {
				const char *v;
				int len;
				if(raw && !browser && flat_get(&fl, c->src, &v, &len))
					append_csv(x->line, v, (size_t)len);
			} else if(c->type == C_BROWSER) {
				if(raw && browser)
					append_csv(x->line, raw, strlen(raw));
			} else {
				append_value(x->line, c, col_value(c, row, NULL));
			}
		}
		g_string_append(x->line, "\r\n");
	} else {
		json_t *metrics = samples ? metrics_of(row) : NULL;
		json_t *o = json_object();
		for(int i = 0; i < x->ncols; i++)
			json_object_set_new(o, x->cols[i].name, col_json(&x->cols[i], col_value(&x->cols[i], row, metrics)));
		char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		json_decref(o);
		json_decref(metrics);
		g_string_assign(x->line, x->rows ? ",\n" : "\n");
		g_string_append(x->line, t ? t : "null");
		free(t);
	}
	if(fwrite(x->line->str, 1, x->line->len, x->out) != x->line->len) {
		x->failed = TRUE;
		return 1;
	}
	x->rows++;
	if(x->progress && x->every > 0 && x->rows % x->every == 0)
		x->progress(x->rows, FALSE, x->user);
	return 0;
}

static void export_done(store_rc rc, const char *error, void *user) {
	export_ctx *x = user;
	x->rc = rc;
	x->done = TRUE;
}

gint64 report_export(store *st, report_export_kind kind, const proto_report_filters *f,
		report_format format, FILE *out, report_progress_cb progress, gint64 every,
		void *user, proto_error *err) {
	export_ctx x;
	memset(&x, 0, sizeof(x));
	x.kind = kind;
	x.format = format;
	x.cols = cols_of(kind, &x.ncols);
	x.out = out;
	x.progress = progress;
	x.every = every;
	x.user = user;
	x.line = g_string_new(NULL);
	store_report_filter sf;
	report_store_filter(PROTO_REPORT_VISITS, f, &sf);
	sf.research_only = TRUE;               /* research exports: consented visits only */
	sf.limit = 0;
	store_report_what what = kind == REPORT_EXPORT_ANSWERS ? STORE_READ_ANSWERS :
		kind == REPORT_EXPORT_VISITS ? STORE_READ_VISITS : STORE_READ_SAMPLES;
	if(format == REPORT_FORMAT_CSV) {
		for(int i = 0; i < x.ncols; i++)
			fprintf(out, "%s%s", i ? "," : "", x.cols[i].name);
		fputs("\r\n", out);
	} else {
		json_t *cols = json_array();
		for(int i = 0; i < x.ncols; i++)
			json_array_append_new(cols, json_string(x.cols[i].name));
		char *c = json_dumps(cols, JSON_COMPACT);
		fprintf(out, "{\"export\":\"%s\",\"codebook\":\"docs/codebook.md\",\"research_only\":true,"
			"\"columns\":%s,\"rows\":[", report_export_name(kind), c);
		free(c);
		json_decref(cols);
	}
	/* the callbacks run on the writer thread; store_sync() orders them
	 * before the reads of x below */
	if(store_report_rows(st, what, &sf, export_row, export_done, &x) < 0 || store_sync(st) < 0) {
		g_string_free(x.line, TRUE);
		proto_fail(err, PROTO_ERR_STORE, "The store refused the export read");
		return -1;
	}
	if(format == REPORT_FORMAT_JSON)
		fputs(x.rows ? "\n]}\n" : "]}\n", out);
	g_string_free(x.line, TRUE);
	if(progress)
		progress(x.rows, TRUE, user);
	if(!x.done || x.rc != STORE_OK) {
		proto_fail(err, PROTO_ERR_STORE, "The export read failed (%s)", store_rc_name(x.rc));
		return -1;
	}
	if(x.failed || fflush(out) != 0 || ferror(out)) {
		proto_fail(err, PROTO_ERR_INTERNAL, "Could not write the export");
		return -1;
	}
	return x.rows;
}
