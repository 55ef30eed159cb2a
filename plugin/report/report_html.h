/*
 * report_html.h — a self-contained HTML page of the supervisor's reports,
 * for alliance-report --html: the `summary` and `compare` reports as
 * tables, and three inline SVG plots (no scripts, no external files, so it
 * opens offline and can be mailed or archived):
 *
 *   1. the alliance formation curve: mean end total per visit number with
 *      its 95 % interval, one line per modality;
 *   2. online vs in-person: every visit's end total as a dot, over a box
 *      plot (quartiles, whiskers to the most extreme value within 1.5 IQR);
 *   3. connection quality vs alliance: freeze seconds (x) against the end
 *      total (y) for video visits, with Spearman's rho.
 *
 * Pure: JSON in (the reports as report.h builds them, and the rows of the
 * visits they were computed from), text out. Every text from the data is
 * HTML-escaped.
 */
#ifndef ALLIANCE_REPORT_HTML_H
#define ALLIANCE_REPORT_HTML_H

#include <jansson.h>

/* summary, compare: reports (either may be NULL); visits: the
 * STORE_READ_VISITS rows compare used (for the dots); generated: a line
 * saying when and from what. Returns a g_malloc'ed NUL-terminated page. */
char *report_html(const json_t *summary, const json_t *compare, const json_t *visits,
	const char *generated);

/* Quartiles by linear interpolation (numpy's default, R type 7) of n >= 1
 * values (sorted in place): q[0..4] = min, Q1, median, Q3, max. */
void report_quartiles(double *x, int n, double q[5]);

#endif
