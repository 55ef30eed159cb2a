/*
 * report.h — the reports of PROTOCOL.md ("Reports") and the research
 * exports, built from the store's report reads (store_report_rows()) and
 * the statistics of stats.h. Used by the plugin's `report` request and by
 * the alliance-report tool; docs/reports.md describes every field, and
 * docs/codebook.md every export column.
 *
 *   visit     one visit in full: participants, pulses with their answers,
 *             scores and quality contexts, alerts, incidents, per-leg
 *             summaries keyed by leg then medium, events
 *   visits    the visits matching the filters, one summary row each
 *   summary   per therapist and per client: visits, mean end score, trend
 *             (points per visit), alerts, ceiling flag
 *   compare   online (video) vs in-person for an instrument's total and
 *             subscales (n, mean, SD, Hedges' g video − in-person with
 *             95 % CI), the formation curve per modality, Spearman ρ of
 *             the end total with the visit's connection quality, and
 *             client–therapist congruence
 *
 * Research consent: `compare` reads only visits with research consent
 * unless filters.research is false; `visits`, `visit` and `summary`
 * (clinical views for the supervisor) only when filters.research is true.
 * The exports are research exports: always consented visits only.
 *
 * The two halves: report_build() / report_export() read the store (they
 * block, each read up to timeout_us); report_*_from() compute a report
 * from rows already read, with no I/O (the unit tests feed them by hand).
 * Nothing here logs; no output carries keys or invites (the store holds
 * none).
 */
#ifndef ALLIANCE_REPORT_H
#define ALLIANCE_REPORT_H

#include <stdio.h>
#include <glib.h>
#include <jansson.h>

#include "instrument.h"
#include "proto.h"
#include "store.h"

/* What the reports need besides the data. */
typedef struct report_env {
	const instrument_set *instruments;  /* score ranges for ceiling flags; NULL: none */
	double ceiling_share;               /* flag a ceiling at this share of end answers ... */
	int ceiling_min_n;                  /* ... given at least this many answers */
	int formation_points;               /* visit numbers on the formation curve */
	double ni_margin;                   /* non-inferiority margin, total score points */
} report_env;

#define REPORT_CEILING_SHARE 0.5
#define REPORT_CEILING_MIN_N 3
#define REPORT_FORMATION_POINTS 20
/* the default non-inferiority margin (docs/statistics.md gives the
 * rationale; general.noninferiority_margin and filters.margin override it) */
#define REPORT_NI_MARGIN 2.0
/* a score counts as "at the maximum" within this of it (scores are rounded
 * to 1e-6 by instrument.c) */
#define REPORT_CEILING_EPS 1e-6

/* The defaults above, no instruments. */
void report_env_init(report_env *env);

/* The store filter a report kind reads with: the research default of the
 * kind (see above) applied, codes and dates copied as pointers. */
void report_store_filter(proto_report_kind kind, const proto_report_filters *f,
	store_report_filter *out);

/* Read what the report needs and build it: a new object
 * {"alliance":"report","kind":…, "filters":{…}, …}. NULL with err on
 * failure: 476 (the visit of a `visit` report is not stored, or lacks
 * consent under research), 496 (a store read failed or took longer than
 * timeout_us; <= 0 waits for ever). Blocks; not from a store callback. */
json_t *report_build(store *st, proto_report_kind kind, const proto_report_filters *f,
	const report_env *env, gint64 timeout_us, proto_error *err);

/* Every row of one store read as a new JSON array (NULL with err: 476 for
 * STORE_NOT_FOUND, 496 otherwise). */
json_t *report_fetch(store *st, store_report_what what, const store_report_filter *f,
	gint64 timeout_us, proto_error *err);

/* --- the computations, from rows (pure) -------------------------------------------- */

/* visit_rows: STORE_READ_VISITS rows; score_rows: STORE_READ_END_SCORES
 * rows. instrument: the client end instrument to analyse, or NULL for the
 * most frequent one among the rows' client end answers (the report says
 * which). The filters are echoed into the report. */
json_t *report_visits_from(const json_t *visit_rows, const proto_report_filters *f);
json_t *report_summary_from(const json_t *visit_rows, const proto_report_filters *f,
	const report_env *env);
json_t *report_compare_from(const json_t *visit_rows, const json_t *score_rows,
	const proto_report_filters *f, gboolean research, const report_env *env);
/* v: the STORE_READ_VISIT row */
json_t *report_visit_from(const json_t *v, const proto_report_filters *f);

/* The slope of y on x by least squares (NaN for n < 2 or constant x). */
double report_slope(const double *x, const double *y, int n);

/* --- exports ------------------------------------------------------------------------------ */

typedef enum report_export_kind {
	REPORT_EXPORT_ANSWERS,      /* one row per answer item */
	REPORT_EXPORT_VISITS,       /* one row per visit */
	REPORT_EXPORT_SAMPLES,      /* one row per quality sample */
} report_export_kind;

typedef enum report_format {
	REPORT_FORMAT_CSV,          /* RFC 4180, header line, times ISO 8601 UTC */
	REPORT_FORMAT_JSON,         /* {"export":…,"columns":[…],"rows":[{…}, …]} */
} report_format;

/* Called every `every` rows and at the end (final TRUE). */
typedef void (*report_progress_cb)(gint64 rows, gboolean final, void *user);

/* The columns of an export, in order (NULL-terminated; docs/codebook.md). */
const char *const *report_export_columns(report_export_kind kind);
const char *report_export_name(report_export_kind kind);

/* Write an export of the visits matching f (research consent forced on)
 * to out, streaming row by row from the store (memory stays flat for a
 * million samples). Returns the rows written, or -1 with err (496 read
 * failed, 499 write failed). */
gint64 report_export(store *st, report_export_kind kind, const proto_report_filters *f,
	report_format format, FILE *out, report_progress_cb progress, gint64 every,
	void *user, proto_error *err);

/* One export row from a store row, as the strings the columns hold (NULL
 * for missing), for tests and other writers: fills values[0..n-1] with
 * g_strdup'ed strings (free with report_row_free()). */
int report_export_row(report_export_kind kind, const json_t *row, char **values, int n);
void report_row_free(char **values, int n);

/* A field quoted for CSV when it needs to be (RFC 4180): new string. */
char *report_csv_field(const char *s);

/* µs since the epoch as "2024-05-01T10:00:00.123456Z" into buf (>= 32). */
const char *report_iso_time(gint64 us, char *buf, size_t len);

#endif
