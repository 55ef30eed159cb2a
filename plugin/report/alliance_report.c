/*
 * alliance_report.c — the `alliance-report` command: the supervisor's
 * reports, research exports, an offline HTML report and erasure, read
 * straight from the plugin's SQLite file through store.h (no Janus
 * needed; it may run while Janus writes the same file: SQLite in WAL mode
 * lets one writer and any number of readers share it).
 *
 * The reports are the same code as the plugin's `report` request
 * (report.c), so the tool and the API never disagree. `alliance-report
 * --help` is the manual; docs/reports.md and docs/codebook.md describe the
 * output.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "auth.h"
#include "instrument.h"
#include "proto.h"
#include "report.h"
#include "report_fhir.h"
#include "report_html.h"
#include "store.h"

#ifndef AP_INSTRUMENTS_DIR
#define AP_INSTRUMENTS_DIR "/etc/janus/alliance-instruments"
#endif
#ifndef AP_VERSION
#define AP_VERSION "0.1.0"
#endif

static const char USAGE[] =
"Usage: alliance-report --db PATH [options]\n"
"       alliance-report --db-url URL [options]\n"
"       alliance-report export --format fhir --db PATH [options]\n"
"\n"
"Reports, research exports, an offline HTML report and erasure for Alliance\n"
"Pulse, read directly from the plugin's database: the SQLite file named by\n"
"db_path, or the PostgreSQL database of db_url, in janus.plugin.alliance.jcfg.\n"
"It runs next to a live plugin without getting in its way: it opens the\n"
"database to read only (no migration, no lock the plugin waits for; a\n"
"database of another schema version is refused), except --forget, which\n"
"writes one erasure.\n"
"\n"
"What to do (one of; the default is a report):\n"
"  --kind KIND          the report: summary (default), compare, visits, visit\n"
"  --export WHAT        a research export: answers (one row per answer item),\n"
"                       visits (one row per visit), samples (one row per quality\n"
"                       sample), fhir (a FHIR R4 Bundle: Questionnaires,\n"
"                       QuestionnaireResponses, connection-quality Observations;\n"
"                       docs/fhir.md). Only visits with research consent are exported.\n"
"  export --format fhir the same as --export fhir\n"
"  --html FILE          write a self-contained HTML report (mode 0600; summary and compare\n"
"                       tables, formation curve, online vs in-person plot, quality\n"
"                       vs alliance plot) that opens offline\n"
"  --forget CLIENT      erase every row about the client code CLIENT (visits,\n"
"                       answers, quality, events) and print how many rows went.\n"
"                       Refused, with nothing erased, while the client has a\n"
"                       visit that is not closed (as the plugin's `forget`).\n"
"\n"
"Filters (for reports and exports):\n"
"  --visit ID           one visit (needed by --kind visit)\n"
"  --therapist CODE     visits of this therapist code\n"
"  --client CODE        visits of this client code\n"
"  --modality M         video or in_person\n"
"  --instrument ID      the client end-of-visit instrument to analyse (default:\n"
"                       the most used one)\n"
"  --from WHEN          visits created at or after WHEN; --to WHEN: before WHEN.\n"
"                       WHEN is an ISO 8601 date or time (2024-05-01,\n"
"                       2024-05-01T09:00:00Z, 2024-05-01T11:00:00+02:00) or\n"
"                       microseconds since 1970; a --to date means the end of\n"
"                       that day\n"
"  --research           only visits with research consent (the default for\n"
"                       compare; always on for exports)\n"
"  --all-visits         compare: include visits without research consent\n"
"  --limit N            visits: at most N visits\n"
"  --margin POINTS      compare: the non-inferiority margin in points of the\n"
"                       total (default 2; docs/statistics.md gives the rationale)\n"
"\n"
"Output:\n"
"  --format F           table (default, for reading), csv (tidy, for R or pandas;\n"
"                       the default for exports), json, or fhir (the FHIR export)\n"
"  --fhir-base URL      the FHIR export's base of Questionnaire URLs and\n"
"                       identifier systems (default " REPORT_FHIR_NS ";\n"
"                       give your clinic's own, http(s):// or urn:)\n"
"  -o, --output FILE    write to FILE (created with mode 0600) instead of\n"
"                       standard output\n"
"  --instruments DIR    instrument definitions, for ceiling flags and scale\n"
"                       ranges (default " AP_INSTRUMENTS_DIR ")\n"
"  -q, --quiet          no progress messages on standard error\n"
"  --db-url URL         a PostgreSQL connection URI or keyword/value string\n"
"                       instead of --db (the password may also come from\n"
"                       PGPASSWORD or ~/.pgpass)\n"
"  -h, --help           this text;  --version: the version\n"
"\n"
"Examples:\n"
"  alliance-report --db /var/lib/janus/alliance.sqlite\n"
"  alliance-report --db alliance.sqlite --kind compare --from 2024-01-01\n"
"  alliance-report --db alliance.sqlite --kind visits --therapist T-07 --format csv\n"
"  alliance-report --db alliance.sqlite --export answers -o answers.csv\n"
"  alliance-report --db alliance.sqlite --export samples --format json -o samples.json\n"
"  alliance-report --db alliance.sqlite --export fhir -o bundle.json\n"
"  alliance-report --db alliance.sqlite --html report.html\n"
"  alliance-report --db alliance.sqlite --forget C-0042\n"
"  alliance-report --db-url postgresql://reports@db.example/alliance --kind compare\n"
"\n"
"Exit status: 0 done, 1 failed (the reason is on standard error), 2 wrong usage.\n"
"The CSV columns are described in docs/codebook.md, the reports in\n"
"docs/reports.md. Output holds pseudonymous codes only, never keys or invites.\n";

typedef struct options {
	const char *db, *db_url, *kind, *export, *html, *forget, *format, *output, *instruments_dir;
	const char *visit, *therapist, *client, *modality, *instrument, *from, *to, *fhir_base;
	int research;            /* -1 default, 0, 1 */
	int limit;
	const char *margin;      /* --margin, validated as filters.margin */
	gboolean quiet;
} options;

static gboolean quiet = FALSE;

static void note(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void note(const char *fmt, ...) {
	if(quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("alliance-report: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage_error(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fputs("alliance-report: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n(alliance-report --help for the options)\n", stderr);
	va_end(ap);
	return 2;
}

/* The filters as the API takes them, so the same validation applies. */
static json_t *filters_object(const options *o) {
	json_t *f = json_object();
	const char *keys[] = { "visit_id", "therapist", "client", "modality", "instrument", "from", "to" };
	const char *vals[] = { o->visit, o->therapist, o->client, o->modality, o->instrument, o->from, o->to };
	for(size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if(vals[i])
			json_object_set_new(f, keys[i], json_string(vals[i]));
	if(o->research >= 0)
		json_object_set_new(f, "research", json_boolean(o->research));
	if(o->limit > 0)
		json_object_set_new(f, "limit", json_integer(o->limit));
	if(o->margin) {
		char *end = NULL;
		double m = g_ascii_strtod(o->margin, &end);
		/* not a number: passed on as text, which the validator refuses */
		json_object_set_new(f, "margin", end != o->margin && *end == '\0' ? json_real(m)
			: json_string(o->margin));
	}
	return f;
}

/* --- tables ----------------------------------------------------------------------------- */

typedef struct table {
	int ncols;
	GPtrArray *cells;        /* rows * ncols strings, header first */
} table;

static table *table_new(int ncols, const char *const *header) {
	table *t = g_new0(table, 1);
	t->ncols = ncols;
	t->cells = g_ptr_array_new_with_free_func(g_free);
	for(int i = 0; i < ncols; i++)
		g_ptr_array_add(t->cells, g_strdup(header[i]));
	return t;
}

static void table_add(table *t, char **row) {      /* takes the strings */
	for(int i = 0; i < t->ncols; i++)
		g_ptr_array_add(t->cells, row[i] ? row[i] : g_strdup(""));
}

static void table_print(table *t, FILE *out, const char *title) {
	int rows = (int)t->cells->len / t->ncols;
	int *w = g_new0(int, t->ncols);
	for(int r = 0; r < rows; r++)
		for(int c = 0; c < t->ncols; c++) {
			int len = (int)g_utf8_strlen(t->cells->pdata[r * t->ncols + c], -1);
			w[c] = MAX(w[c], len);
		}
	if(title)
		fprintf(out, "%s\n", title);
	for(int r = 0; r < rows; r++) {
		for(int c = 0; c < t->ncols; c++) {
			const char *s = t->cells->pdata[r * t->ncols + c];
			int pad = w[c] - (int)g_utf8_strlen(s, -1);
			fprintf(out, "%s%s%*s", c ? "  " : "", s, c + 1 < t->ncols ? pad : 0, "");
		}
		fputc('\n', out);
		if(r == 0) {
			for(int c = 0; c < t->ncols; c++)
				for(int k = 0; k < w[c] + (c ? 2 : 0); k++)
					fputc(k < (c ? 2 : 0) ? ' ' : '-', out);
			fputc('\n', out);
		}
	}
	fputc('\n', out);
	g_free(w);
	g_ptr_array_free(t->cells, TRUE);
	g_free(t);
}

static void table_csv(table *t, FILE *out) {
	int rows = (int)t->cells->len / t->ncols;
	for(int r = 0; r < rows; r++) {
		for(int c = 0; c < t->ncols; c++) {
			char *q = report_csv_field(t->cells->pdata[r * t->ncols + c]);
			fprintf(out, "%s%s", c ? "," : "", q);
			g_free(q);
		}
		fputs("\r\n", out);
	}
	g_ptr_array_free(t->cells, TRUE);
	g_free(t);
}

/* A number as text: decimals given, "" for null; integers as they are. */
static char *n2s(const json_t *o, const char *key, int decimals) {
	json_t *v = json_object_get(o, key);
	if(json_is_integer(v))
		return g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if(json_is_real(v))
		return decimals < 0 ? g_strdup_printf("%.15g", json_real_value(v))
			: g_strdup_printf("%.*f", decimals, json_real_value(v));
	if(json_is_boolean(v))
		return g_strdup(json_is_true(v) ? "true" : "false");
	if(json_is_string(v))
		return g_strdup(json_string_value(v));
	return g_strdup("");
}

static char *date_of(const json_t *o, const char *key) {
	json_t *v = json_object_get(o, key);
	if(!json_is_integer(v))
		return g_strdup("");
	char buf[40];
	report_iso_time(json_integer_value(v), buf, sizeof(buf));
	buf[16] = '\0';                    /* 2024-05-01T10:00 */
	buf[10] = ' ';
	return g_strdup(buf);
}

/* --- the reports as tables or CSV ----------------------------------------------------------- */

static void out_visits(const json_t *r, FILE *out, gboolean csv) {
	json_t *rows = json_object_get(r, "visits");
	if(csv) {
		const char *const *cols = report_export_columns(REPORT_EXPORT_VISITS);
		int n = 0;
		while(cols[n])
			n++;
		const char *hdr[32];
		for(int i = 0; i < n; i++)
			hdr[i] = cols[i];
		hdr[n] = "research_consent";
		table *t = table_new(n + 1, hdr);
		size_t i;
		json_t *row;
		json_array_foreach(rows, i, row) {
			char *vals[32] = { 0 };
			report_export_row(REPORT_EXPORT_VISITS, row, vals, 31);
			vals[n] = n2s(row, "research_consent", -1);
			table_add(t, vals);
		}
		table_csv(t, out);
		return;
	}
	static const char *const hdr[] = { "visit", "therapist", "client", "modality", "state", "#",
		"created (UTC)", "client", "therapist", "MOS", "loss %", "frozen s", "incidents", "alerts", "consent" };
	table *t = table_new(G_N_ELEMENTS(hdr), hdr);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		char *vals[] = { n2s(row, "visit_id", -1), n2s(row, "therapist_code", -1), n2s(row, "client_code", -1),
			n2s(row, "modality", -1), n2s(row, "state", -1), n2s(row, "visit_number", -1),
			date_of(row, "created_at"), n2s(row, "client_total", 1), n2s(row, "therapist_total", 1),
			n2s(row, "mean_mos", 2), n2s(row, "loss_pct", 2), n2s(row, "freeze_s", 1),
			n2s(row, "incidents", -1), n2s(row, "alerts", -1), n2s(row, "research_consent", -1) };
		table_add(t, vals);
	}
	char *title = g_strdup_printf("%" JSON_INTEGER_FORMAT " visits (end totals: client, therapist)",
		json_integer_value(json_object_get(r, "n")));
	table_print(t, out, title);
	g_free(title);
}

static void out_summary(const json_t *r, FILE *out, gboolean csv) {
	static const char *const hdr[] = { "level", "code", "visits", "video", "in_person", "scored",
		"mean_total", "sd_total", "trend_per_visit", "alerts", "ceiling_share", "ceiling_flag" };
	const char *levels[2] = { "therapist", "client" }, *lists[2] = { "therapists", "clients" },
		*codes[2] = { "therapist_code", "client_code" };
	table *t = NULL;
	for(int l = 0; l < 2; l++) {
		if(!csv || t == NULL)
			t = table_new(G_N_ELEMENTS(hdr), hdr);
		size_t i;
		json_t *g;
		json_array_foreach(json_object_get(r, lists[l]), i, g) {
			json_t *m = json_object_get(g, "modalities"), *tot = json_object_get(g, "total"),
				*c = json_object_get(g, "ceiling");
			char *vals[] = { g_strdup(levels[l]), n2s(g, codes[l], -1), n2s(g, "visits", -1),
				n2s(m, "video", -1), n2s(m, "in_person", -1), n2s(g, "scored", -1),
				n2s(tot, "mean", csv ? -1 : 1), n2s(tot, "sd", csv ? -1 : 1),
				n2s(g, "trend_per_visit", csv ? -1 : 2), n2s(g, "alerts", -1),
				n2s(c, "share", csv ? -1 : 2), n2s(c, "flag", -1) };
			table_add(t, vals);
		}
		if(!csv) {
			char *title = g_strdup_printf("Per %s (instrument %s)", levels[l],
				json_string_value(json_object_get(r, "instrument")) ? json_string_value(json_object_get(r, "instrument")) : "none");
			table_print(t, out, title);
			g_free(title);
		}
	}
	if(csv)
		table_csv(t, out);
}

static void compare_row(table *t, gboolean csv, const char *section, const char *score,
		const char *modality, const char *visit_no, const json_t *x, const char *est) {
	int d = csv ? -1 : 2;
	char *vals[] = { g_strdup(section), g_strdup(score), g_strdup(modality ? modality : ""),
		g_strdup(visit_no ? visit_no : ""), n2s(x, "n", -1), n2s(x, est, d),
		n2s(x, !strcmp(est, "mean") && json_object_get(x, "ci_lo") ? "ci_lo" : "lo", d),
		n2s(x, !strcmp(est, "mean") && json_object_get(x, "ci_hi") ? "ci_hi" : "hi", d),
		n2s(x, "p", csv ? -1 : 3) };
	table_add(t, vals);
}

/* A `mixed` object as a row: estimate with its 95 % CI (ci[0], ci[1]). */
static void mixed_row(table *t, gboolean csv, const char *section, const char *score,
		const char *modality, const json_t *m) {
	json_t *ci = json_object_get(m, "ci");
	json_t *x = json_pack("{s:O, s:O, s:O, s:O}", "n", json_object_get(m, "n") ? json_object_get(m, "n")
		: json_null(), "estimate", json_object_get(m, "estimate") ? json_object_get(m, "estimate")
		: json_null(), "lo", json_array_get(ci, 0) ? json_array_get(ci, 0) : json_null(),
		"hi", json_array_get(ci, 1) ? json_array_get(ci, 1) : json_null());
	compare_row(t, csv, section, score, modality, NULL, x, "estimate");
	json_decref(x);
}

/* A score's `mixed` row and its `noninferiority` row: the margin as the
 * estimate, the CI bounds as lo/hi, the conclusion in the modality column. */
static void mixed_rows(table *t, gboolean csv, const json_t *s) {
	const char *name = json_string_value(json_object_get(s, "score"));
	const json_t *m = json_object_get(s, "mixed"), *ni = json_object_get(s, "noninferiority");
	if(m == NULL)
		return;
	mixed_row(t, csv, "mixed", name, "video - in_person", m);
	if(ni == NULL)
		return;
	json_t *x = json_pack("{s:O, s:O, s:O, s:O}", "n", json_object_get(m, "n"), "margin",
		json_object_get(ni, "margin"), "lo", json_object_get(ni, "lower_bound"),
		"hi", json_object_get(ni, "upper_bound"));
	compare_row(t, csv, "noninferiority", name, json_string_value(json_object_get(ni, "conclusion")),
		NULL, x, "margin");
	json_decref(x);
}

static void out_compare(const json_t *r, FILE *out, gboolean csv) {
	static const char *const hdr[] = { "section", "score", "modality", "visit", "n", "estimate", "lo", "hi", "p" };
	table *t = table_new(G_N_ELEMENTS(hdr), hdr);
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "scores"), i, s) {
		const char *name = json_string_value(json_object_get(s, "score"));
		compare_row(t, csv, "mean", name, "video", NULL, json_object_get(s, "video"), "mean");
		compare_row(t, csv, "mean", name, "in_person", NULL, json_object_get(s, "in_person"), "mean");
		json_t *g = json_deep_copy(json_object_get(s, "hedges_g"));
		json_object_set_new(g, "n", json_integer(json_integer_value(json_object_get(g, "n_video"))
			+ json_integer_value(json_object_get(g, "n_in_person"))));
		compare_row(t, csv, "hedges_g", name, "video - in_person", NULL, g, "g");
		json_decref(g);
		mixed_rows(t, csv, s);
	}
	json_t *f = json_object_get(r, "formation");
	for(int m = 0; m < 2; m++) {
		const char *mod = m ? "in_person" : "video";
		json_t *p;
		json_array_foreach(json_object_get(f, mod), i, p) {
			char *k = n2s(p, "visit", -1);
			compare_row(t, csv, "formation", "total", mod, k, p, "mean");
			g_free(k);
		}
	}
	static const char *const q[4] = { "mean_mos", "loss_pct", "freeze_s", "incidents" };
	for(int k = 0; k < 4; k++)
		compare_row(t, csv, "spearman_total_vs", q[k], "video", NULL,
			json_object_get(json_object_get(r, "quality"), q[k]), "rho");
	for(int m = 0; m < 2; m++)
		mixed_row(t, csv, "mixed_formation", "total", m ? "in_person" : "video",
			json_object_get(json_object_get(f, "mixed"), m ? "in_person" : "video"));
	for(int k = 0; k < 2; k++)
		mixed_row(t, csv, "mixed_quality", k ? "freeze_s" : "mean_mos", "video",
			json_object_get(json_object_get(json_object_get(r, "quality"), "mixed"), k ? "freeze_s" : "mean_mos"));
	static const char *const cg[3] = { "all", "video", "in_person" };
	for(int k = 0; k < 3; k++) {
		json_t *c = json_object_get(json_object_get(r, "congruence"), cg[k]);
		json_t *mad = json_pack("{s:O, s:O}", "n", json_object_get(c, "n"), "mean_abs_diff",
			json_object_get(c, "mean_abs_diff"));
		compare_row(t, csv, "congruence_mean_abs_diff", "total", cg[k], NULL, mad, "mean_abs_diff");
		json_decref(mad);
		compare_row(t, csv, "congruence_pearson", "total", cg[k], NULL, json_object_get(c, "pearson"), "r");
	}
	if(csv) {
		table_csv(t, out);
		return;
	}
	/* which mixed model the total's difference came from, and why no therapist term */
	const json_t *tm = json_object_get(json_array_get(json_object_get(r, "scores"), 0), "mixed");
	const char *method = json_string_value(json_object_get(tm, "method"));
	const char *no_term = json_string_value(json_object_get(tm, "therapist_term"));
	char *title = g_strdup_printf("Online vs in person, instrument %s, %" JSON_INTEGER_FORMAT " visits (%s)\n"
		"Hedges' g and mixed (a model of clients) are video minus in person; intervals are 95 %%;\n"
		"noninferiority: the mixed CI against -margin (the conclusion in the modality column).%s%s%s%s",
		json_string_value(json_object_get(r, "instrument")) ? json_string_value(json_object_get(r, "instrument")) : "none",
		json_integer_value(json_object_get(r, "visits")),
		json_is_true(json_object_get(json_object_get(r, "filters"), "research")) ?
			"research consent only" : "all visits",
		method ? "\nmixed (the total): " : "", method ? method : "",
		no_term ? "; no therapist term: " : "", no_term ? no_term : "");
	table_print(t, out, title);
	g_free(title);
}

static void out_visit(const json_t *r, FILE *out, gboolean csv) {
	static const char *const hdr[] = { "pulse_id", "role", "kind", "instrument_id", "status",
		"created_at", "answered_at", "what", "name", "value" };
	table *t = table_new(G_N_ELEMENTS(hdr), hdr);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(r, "pulses"), i, p) {
		json_t *a = json_object_get(p, "answer");
		const char *what[2] = { "item", "score" }, *key[2] = { "items", "scores" };
		gboolean any = FALSE;
		for(int w = 0; w < 2; w++) {
			const char *name;
			json_t *v;
			json_object_foreach(json_object_get(a, key[w]), name, v) {
				char tb[40];
				char *vals[] = { n2s(p, "pulse_id", -1), n2s(p, "role", -1), n2s(p, "kind", -1),
					n2s(p, "instrument_id", -1), n2s(p, "status", -1),
					g_strdup(report_iso_time(json_integer_value(json_object_get(p, "created_at")), tb, sizeof(tb))),
					json_is_integer(json_object_get(a, "answered_at")) ?
						g_strdup(report_iso_time(json_integer_value(json_object_get(a, "answered_at")), tb, sizeof(tb))) : g_strdup(""),
					g_strdup(what[w]), g_strdup(name), g_strdup_printf("%.15g", json_number_value(v)) };
				table_add(t, vals);
				any = TRUE;
			}
		}
		if(!any) {
			char tb[40];
			char *vals[] = { n2s(p, "pulse_id", -1), n2s(p, "role", -1), n2s(p, "kind", -1),
				n2s(p, "instrument_id", -1), n2s(p, "status", -1),
				g_strdup(report_iso_time(json_integer_value(json_object_get(p, "created_at")), tb, sizeof(tb))),
				NULL, NULL, NULL, NULL };
			table_add(t, vals);
		}
	}
	if(csv) {
		table_csv(t, out);
		return;
	}
	json_t *v = json_object_get(r, "visit");
	char *number = n2s(v, "visit_number", -1), *created = date_of(v, "created_at");
	fprintf(out, "Visit %s: therapist %s, client %s (visit %s), %s, %s, created %s UTC\n\n",
		json_string_value(json_object_get(v, "visit_id")), json_string_value(json_object_get(v, "therapist_code")),
		json_string_value(json_object_get(v, "client_code")), number[0] ? number : "not numbered yet",
		json_string_value(json_object_get(v, "modality")), json_string_value(json_object_get(v, "state")), created);
	g_free(number);
	g_free(created);
	table_print(t, out, "Pulses and answers");
	static const char *const lh[] = { "leg", "medium", "samples", "loss %", "jitter ms", "rtt ms",
		"kbit/s", "freezes", "frozen s" };
	table *lt = table_new(G_N_ELEMENTS(lh), lh);
	const char *leg;
	json_t *media;
	json_object_foreach(json_object_get(r, "legs"), leg, media) {
		const char *medium;
		json_t *m;
		json_object_foreach(media, medium, m) {
			char *vals[] = { g_strdup(leg), g_strdup(medium), n2s(m, "samples", -1), n2s(m, "loss_pct", 2),
				n2s(m, "jitter_ms", 1), n2s(m, "rtt_ms", 1), n2s(m, "bitrate_kbps", 1),
				n2s(m, "freezes", 0), n2s(m, "freeze_s", 1) };
			table_add(lt, vals);
		}
	}
	table_print(lt, out, "Connection per leg (whole visit)");
	fprintf(out, "%zu incidents, %zu alerts\n", json_array_size(json_object_get(r, "incidents")),
		json_array_size(json_object_get(r, "alerts")));
}

/* --- progress ------------------------------------------------------------------------------ */

static void progress(gint64 rows, gboolean final, void *user) {
	if(quiet)
		return;
	const char *what = user;
	if(final)
		fprintf(stderr, "%salliance-report: %" G_GINT64_FORMAT " %s rows written\n",
			isatty(2) ? "\r" : "", rows, what);
	else if(isatty(2))
		fprintf(stderr, "\ralliance-report: %" G_GINT64_FORMAT " %s rows...", rows, what);
	else
		fprintf(stderr, "alliance-report: %" G_GINT64_FORMAT " %s rows so far\n", rows, what);
}

/* --- main -------------------------------------------------------------------------------------- */

static int open_output(const options *o, FILE **out) {
	*out = stdout;
	if(o->output == NULL || !strcmp(o->output, "-"))
		return 0;
	/* health data: readable by this user only, whatever the umask */
	int fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	*out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if(*out == NULL) {
		if(fd >= 0)
			close(fd);
		fprintf(stderr, "alliance-report: cannot write %s: %s\n", o->output, g_strerror(errno));
		return -1;
	}
	return 0;
}

static int close_output(const options *o, FILE *out) {
	if(out == stdout)
		return fflush(out) == 0 ? 0 : -1;
	if(fclose(out) != 0) {
		fprintf(stderr, "alliance-report: cannot write %s: %s\n", o->output, g_strerror(errno));
		return -1;
	}
	return 0;
}

static void forget_done(store_rc rc, gint64 rows, const char *error, void *user) {
	gint64 *out = user;
	*out = rc == STORE_OK ? rows : -1;
	if(rc != STORE_OK)
		fprintf(stderr, "alliance-report: erasure failed: %s\n", error ? error : store_rc_name(rc));
}

int main(int argc, char **argv) {
	options o;
	memset(&o, 0, sizeof(o));
	o.research = -1;
	o.instruments_dir = AP_INSTRUMENTS_DIR;
	gboolean instruments_given = FALSE;
	enum { O_DB = 256, O_KIND, O_EXPORT, O_HTML, O_FORGET, O_FORMAT, O_INSTRUMENTS, O_VISIT,
		O_THERAPIST, O_CLIENT, O_MODALITY, O_INSTRUMENT, O_FROM, O_TO, O_RESEARCH, O_ALL, O_LIMIT,
		O_VERSION, O_DB_URL, O_FHIR_BASE, O_MARGIN };
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, O_DB }, { "db-url", required_argument, NULL, O_DB_URL },
		{ "kind", required_argument, NULL, O_KIND },
		{ "export", required_argument, NULL, O_EXPORT }, { "html", required_argument, NULL, O_HTML },
		{ "forget", required_argument, NULL, O_FORGET }, { "format", required_argument, NULL, O_FORMAT },
		{ "output", required_argument, NULL, 'o' }, { "instruments", required_argument, NULL, O_INSTRUMENTS },
		{ "visit", required_argument, NULL, O_VISIT }, { "therapist", required_argument, NULL, O_THERAPIST },
		{ "client", required_argument, NULL, O_CLIENT }, { "modality", required_argument, NULL, O_MODALITY },
		{ "instrument", required_argument, NULL, O_INSTRUMENT }, { "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO }, { "research", no_argument, NULL, O_RESEARCH },
		{ "all-visits", no_argument, NULL, O_ALL }, { "limit", required_argument, NULL, O_LIMIT },
		{ "margin", required_argument, NULL, O_MARGIN },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION }, { "fhir-base", required_argument, NULL, O_FHIR_BASE },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		switch(c) {
			case O_DB: o.db = optarg; break;
			case O_DB_URL: o.db_url = optarg; break;
			case O_KIND: o.kind = optarg; break;
			case O_EXPORT: o.export = optarg; break;
			case O_HTML: o.html = optarg; break;
			case O_FORGET: o.forget = optarg; break;
			case O_FORMAT: o.format = optarg; break;
			case 'o': o.output = optarg; break;
			case O_INSTRUMENTS: o.instruments_dir = optarg; instruments_given = TRUE; break;
			case O_VISIT: o.visit = optarg; break;
			case O_THERAPIST: o.therapist = optarg; break;
			case O_CLIENT: o.client = optarg; break;
			case O_MODALITY: o.modality = optarg; break;
			case O_INSTRUMENT: o.instrument = optarg; break;
			case O_FROM: o.from = optarg; break;
			case O_TO: o.to = optarg; break;
			case O_FHIR_BASE: o.fhir_base = optarg; break;
			case O_RESEARCH: o.research = 1; break;
			case O_ALL: o.research = 0; break;
			case O_LIMIT: {
				char *end = NULL;
				long v = strtol(optarg, &end, 10);
				if(end == optarg || *end || v < 1 || v > PROTO_REPORT_LIMIT_MAX)
					return usage_error("--limit must be a number 1..%d", PROTO_REPORT_LIMIT_MAX);
				o.limit = (int)v;
				break;
			}
			case O_MARGIN: o.margin = optarg; break;
			case 'q': o.quiet = TRUE; break;
			case 'h': fputs(USAGE, stdout); return 0;
			case O_VERSION: printf("alliance-report %s (store schema %d)\n", AP_VERSION, STORE_SCHEMA_VERSION); return 0;
			default: return usage_error("unknown option");
		}
	}
	quiet = o.quiet;
	/* `alliance-report export --format fhir` (PROTOCOL.md v1.1) */
	gboolean export_word = optind < argc && !strcmp(argv[optind], "export");
	if(export_word)
		optind++;
	if(optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	gboolean fhir = (o.export && !strcmp(o.export, "fhir")) || (o.format && !strcmp(o.format, "fhir"));
	if(fhir) {
		if(o.export && strcmp(o.export, "fhir"))
			return usage_error("--format fhir is the FHIR bundle of every kind of row: give it without --export, "
				"or as --export fhir");
		if(o.format && strcmp(o.format, "fhir") && strcmp(o.format, "json"))
			return usage_error("--export fhir writes FHIR JSON: --format must be fhir (or left out)");
		if(o.kind || o.html || o.forget)
			return usage_error("--format fhir is an export: it does not go with --kind, --html or --forget");
		o.export = "fhir";
		o.format = "json";
	} else if(export_word && o.export == NULL) {
		return usage_error("export needs --format fhir (or use --export answers|visits|samples|fhir)");
	}
	if(o.fhir_base && !fhir)
		return usage_error("--fhir-base belongs to the FHIR export (--export fhir)");
	if(o.fhir_base && !report_fhir_base_ok(o.fhir_base))
		return usage_error("--fhir-base must be an http://, https:// or urn: address of at most %d printable "
			"characters, without spaces, '|', '#' or a trailing '/'", REPORT_FHIR_BASE_MAX);
	if((o.db == NULL) == (o.db_url == NULL))
		return usage_error("give one of --db PATH or --db-url URL (db_path or db_url of janus.plugin.alliance.jcfg)");
	int actions = (o.export != NULL) + (o.html != NULL) + (o.forget != NULL) + (o.kind != NULL);
	if(actions > 1)
		return usage_error("choose one of --kind, --export, --html, --forget");
	proto_report_kind kind = PROTO_REPORT_SUMMARY;
	if(o.kind) {
		if(!strcmp(o.kind, "summary")) kind = PROTO_REPORT_SUMMARY;
		else if(!strcmp(o.kind, "compare")) kind = PROTO_REPORT_COMPARE;
		else if(!strcmp(o.kind, "visits")) kind = PROTO_REPORT_VISITS;
		else if(!strcmp(o.kind, "visit")) kind = PROTO_REPORT_VISIT;
		else return usage_error("--kind must be summary, compare, visits or visit");
	}
	report_export_kind export = REPORT_EXPORT_ANSWERS;
	if(o.export) {
		if(!strcmp(o.export, "answers")) export = REPORT_EXPORT_ANSWERS;
		else if(!strcmp(o.export, "visits")) export = REPORT_EXPORT_VISITS;
		else if(!strcmp(o.export, "samples")) export = REPORT_EXPORT_SAMPLES;
		else if(!fhir) return usage_error("--export must be answers, visits, samples or fhir");
	}
	const char *format = o.format ? o.format : (o.export ? "csv" : "table");
	if(strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json"))
		return usage_error("--format must be table, csv or json");
	if(o.export && !strcmp(format, "table"))
		return usage_error("exports are csv or json");
	if(o.forget && !auth_code_ok(o.forget))
		return usage_error("--forget needs a pseudonymous client code (1-%d of A-Z a-z 0-9 . _ -)", AUTH_CODE_MAX);
	if(o.research == 0 && o.export)
		return usage_error("exports are research exports: --all-visits does not apply");
	/* the filters go through the API's own validation */
	json_t *fj = filters_object(&o);
	proto_report_filters f;
	proto_error perr;
	if(proto_report_filters_parse(fj, &f, &perr) < 0) {
		json_decref(fj);
		return usage_error("%s", perr.reason);
	}
	if(kind == PROTO_REPORT_VISIT && f.visit_id == NULL && !o.export && !o.html && !o.forget) {
		json_decref(fj);
		return usage_error("--kind visit needs --visit ID");
	}
	/* an existing database only: a mistyped path must not create one */
	if(o.db && !g_file_test(o.db, G_FILE_TEST_IS_REGULAR)) {
		fprintf(stderr, "alliance-report: no database at %s\n", o.db);
		json_decref(fj);
		return 1;
	}
	char err[512] = "";
	store *st;
	if(o.db)
		st = o.forget ? store_open_sqlite_for_erasure(o.db, err, sizeof(err))
			: store_open_sqlite_for_reading(o.db, err, sizeof(err));
	else
		st = o.forget ? store_open_pg_for_erasure(o.db_url, err, sizeof(err))
			: store_open_pg_for_reading(o.db_url, err, sizeof(err));
	if(st == NULL) {
		fprintf(stderr, "alliance-report: %s\n", err);
		json_decref(fj);
		return 1;
	}
	if(store_warning(st))
		note("%s", store_warning(st));
	instrument_set *instruments = NULL;
	if(g_file_test(o.instruments_dir, G_FILE_TEST_IS_DIR)) {
		GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
		instruments = instrument_set_load_dir(o.instruments_dir, problems);
		for(guint i = 0; i < problems->len; i++)
			note("instrument skipped: %s", (char *)problems->pdata[i]);
		g_ptr_array_free(problems, TRUE);
	} else if(instruments_given) {
		fprintf(stderr, "alliance-report: --instruments %s is not a folder\n", o.instruments_dir);
		store_close(st);
		json_decref(fj);
		return 1;
	}
	report_env env;
	report_env_init(&env);
	env.instruments = instruments;
	int rc = 0;
	FILE *out = NULL;
	gint64 started = g_get_monotonic_time();

	if(o.forget) {
		gint64 rows = -1;
		if(store_forget_client(st, o.forget, g_get_real_time(), forget_done, &rows) < 0 || store_sync(st) < 0
				|| rows < 0) {
			rc = 1;
		} else if(open_output(&o, &out) == 0) {
			if(!strcmp(format, "json"))
				fprintf(out, "{\"alliance\":\"forgotten\",\"rows\":%" G_GINT64_FORMAT "}\n", rows);
			else
				fprintf(out, "erased %" G_GINT64_FORMAT " rows about the client\n", rows);
			rc = close_output(&o, out) == 0 ? 0 : 1;
		} else {
			rc = 1;
		}
	} else if(fhir) {
		if(open_output(&o, &out) == 0) {
			note("exporting a FHIR bundle (research consent only)...");
			if(instruments == NULL)
				note("no instrument definitions: the Questionnaires hold only what the answers show (--instruments DIR)");
			gint64 n = report_fhir_export(st, &f, instruments, o.fhir_base, out, progress, 100000,
				(void *)"FHIR entry", &perr);
			if(close_output(&o, out) != 0 || n < 0) {
				if(n < 0)
					fprintf(stderr, "alliance-report: %s\n", perr.reason);
				rc = 1;
			}
		} else {
			rc = 1;
		}
	} else if(o.export) {
		if(open_output(&o, &out) == 0) {
			note("exporting %s (research consent only)...", report_export_name(export));
			gint64 n = report_export(st, export, &f, !strcmp(format, "json") ? REPORT_FORMAT_JSON : REPORT_FORMAT_CSV,
				out, progress, 100000, (void *)report_export_name(export), &perr);
			if(close_output(&o, out) != 0 || n < 0) {
				if(n < 0)
					fprintf(stderr, "alliance-report: %s\n", perr.reason);
				rc = 1;
			}
		} else {
			rc = 1;
		}
	} else if(o.html) {
		note("reading the summary...");
		json_t *summary = report_build(st, PROTO_REPORT_SUMMARY, &f, &env, 0, &perr);
		json_t *compare = NULL, *rows = NULL;
		if(summary) {
			note("computing the comparison...");
			compare = report_build(st, PROTO_REPORT_COMPARE, &f, &env, 0, &perr);
		}
		if(compare) {
			store_report_filter sf;
			report_store_filter(PROTO_REPORT_COMPARE, &f, &sf);
			rows = report_fetch(st, STORE_READ_VISITS, &sf, 0, &perr);
		}
		if(rows == NULL) {
			fprintf(stderr, "alliance-report: %s\n", perr.reason);
			rc = 1;
		} else {
			char when[40];
			report_iso_time(g_get_real_time(), when, sizeof(when));
			char *generated = g_strdup_printf("Generated %s from %s by alliance-report %s.", when, o.db, AP_VERSION);
			char *page = report_html(summary, compare, rows, generated);
			GError *gerr = NULL;
			if(!g_file_set_contents_full(o.html, page, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &gerr)) {
				fprintf(stderr, "alliance-report: cannot write %s: %s\n", o.html, gerr->message);
				g_error_free(gerr);
				rc = 1;
			} else {
				note("wrote %s (%zu bytes)", o.html, strlen(page));
			}
			g_free(page);
			g_free(generated);
		}
		json_decref(summary);
		json_decref(compare);
		json_decref(rows);
	} else {
		note("building the %s report...", proto_report_kind_name(kind));
		json_t *r = report_build(st, kind, &f, &env, 0, &perr);
		if(r == NULL) {
			fprintf(stderr, "alliance-report: %s\n", perr.reason);
			rc = 1;
		} else if(open_output(&o, &out) == 0) {
			gboolean csv = !strcmp(format, "csv");
			if(!strcmp(format, "json")) {
				json_dumpf(r, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
				fputc('\n', out);
			} else if(kind == PROTO_REPORT_VISITS) {
				out_visits(r, out, csv);
			} else if(kind == PROTO_REPORT_SUMMARY) {
				out_summary(r, out, csv);
			} else if(kind == PROTO_REPORT_COMPARE) {
				out_compare(r, out, csv);
			} else {
				out_visit(r, out, csv);
			}
			rc = close_output(&o, out) == 0 ? 0 : 1;
		} else {
			rc = 1;
		}
		json_decref(r);
	}
	if(rc == 0)
		note("done in %.2f s", (g_get_monotonic_time() - started) / 1e6);
	store_close(st);
	instrument_set_free(instruments);
	json_decref(fj);
	return rc;
}
