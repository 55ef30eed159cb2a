/*
 * report_mixed.h — the mixed-model readings of the compare report
 * (PROTOCOL.md v1.1 "Research"), beside its naive, visit-level figures:
 *
 *   scores[k].mixed            online − in-person difference of the score,
 *                              random intercept per client (core/lmm.h),
 *                              and per therapist when there are enough
 *                              (core/lmm_nested.h)
 *   scores[k].noninferiority   that difference against the margin
 *   formation.mixed            points per visit number, per modality
 *   quality.mixed              end total per unit of mean MOS and per
 *                              freeze second (video visits)
 *
 * Each function reads the rows report_compare_from() was given and adds
 * its objects to the report object passed in; a model that cannot be
 * fitted is written with null numbers and a `refused` sentence, never
 * left out. docs/reports.md describes every field, docs/statistics.md
 * the model and the non-inferiority rule. Pure: no I/O.
 */
#ifndef ALLIANCE_REPORT_MIXED_H
#define ALLIANCE_REPORT_MIXED_H

#include <glib.h>
#include <jansson.h>

#include "report.h"

/* The nested model (clients in therapists) is fitted only with at least
 * this many therapists among a model's visits: McNeish & Stapleton (2016)
 * on few level-2 units (docs/statistics.md). */
#define REPORT_MIXED_MIN_THERAPISTS 5

/* Whether a model's visits allow a therapist term: NULL when they do, else
 * the reason in English. therapist[i] (-1: no code) and client[i] are
 * dense indices 0..n−1 of observation i. Bounded by n. */
const char *report_mixed_therapist_rule(const int *therapist, const int *client, int n);

/* The margin a compare report uses: filters.margin when given (> 0), else
 * env->ni_margin. *from_filter says which. */
double report_ni_margin(const proto_report_filters *f, const report_env *env, gboolean *from_filter);

/* The conclusion for a difference's two-sided 95 % interval [lo, hi]
 * against the margin m > 0: "noninferior" when lo > −m, "inferior" when
 * hi < −m, else "inconclusive" (also when the interval is not finite). */
const char *report_ni_conclusion(double lo, double hi, double margin);

/* Adds "mixed" and "noninferiority" to s, the scores[] entry of score
 * `name`. analysed maps visit_id → the visit row (the visits compare
 * analyses); margin is the total's, scaled to the score's range when
 * env knows both ranges. */
void report_mixed_score(json_t *s, const char *name, const json_t *score_rows,
	GHashTable *analysed, const char *ins_id, double margin, gboolean from_filter,
	const report_env *env);

/* Adds "mixed" to the formation object: {"video":{…}, "in_person":{…}}. */
void report_mixed_formation(json_t *formation, const json_t *visit_rows, const char *ins_id);

/* Adds "mixed" to the quality object: {"mean_mos":{…}, "freeze_s":{…}}. */
void report_mixed_quality(json_t *quality, const json_t *visit_rows, const char *ins_id);

#endif
