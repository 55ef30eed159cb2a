/*
 * report_class.h — good and poor calls in the reports (PROTOCOL.md v1.1
 * "Research"): the published thresholds of core/callclass.h applied to the
 * `visit` report's per-leg summaries and quality contexts, and, in
 * `compare`, the client's end total of good-video vs poor-video visits.
 *
 * A visit is a poor-video visit when any video leg of its end pulse's
 * whole-visit quality context is poor (callclass_legs(); stored as
 * visit_summaries.video_class); docs/metrics.md and docs/reports.md.
 *
 * Pure (rows in, JSON out), like the rest of report.c's computations.
 */
#ifndef ALLIANCE_REPORT_CLASS_H
#define ALLIANCE_REPORT_CLASS_H

#include <jansson.h>

/* The `visit` report r: "class" and "poor_reasons" on every per-leg
 * summary of r.legs, of each pulse's and each alert's quality context
 * (and their video_class), whatever version of the plugin stored them. */
void report_class_visit(json_t *r);

/* compare's "video_class": {"rule", "score":"total", "good":{n, mean, sd,
 * ci_lo, ci_hi}, "poor":{…}, "unclassified": n, "hedges_g":{"direction":
 * "poor - good", "n_poor", "n_good", "g", "se", "lo", "hi"}} over the
 * video visits of visit_rows whose client end total is of ins_id. */
json_t *report_class_compare(const json_t *visit_rows, const char *ins_id);

#endif
