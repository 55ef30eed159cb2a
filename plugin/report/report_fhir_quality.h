/*
 * report_fhir_quality.h — the connection quality of the FHIR export as
 * Observations (docs/fhir.md lists every code): a panel per quality
 * context, with `hasMember` pointing at one Observation per leg and
 * medium and one per audio path; codes in REPORT_FHIR_CODES, UCUM units.
 * Numbers that are null or missing are left out; a context that measured
 * nothing gives no Observation at all. Internal to the export.
 */
#ifndef ALLIANCE_REPORT_FHIR_QUALITY_H
#define ALLIANCE_REPORT_FHIR_QUALITY_H

#include <jansson.h>

#include "report_fhir_json.h"

/* Where the Observations of one visit go. */
typedef struct fhir_obs {
	const json_t *visit;       /* the STORE_READ_VISIT row's "visit" (codes, times, summary) */
	const char *base;          /* of identifier systems */
	json_t *entries;           /* bundle entries are appended here */
	int added;                 /* ... and counted */
} fhir_obs;

/* Append an entry to c (counted). */
void fhir_obs_add(fhir_obs *c, json_t *entry);

/* A pulse's quality context (the pulse row's "quality"), its panel
 * focused on the QuestionnaireResponse at focus_url and dated at the
 * pulse's creation (created_at, µs). */
void fhir_quality_pulse(fhir_obs *c, const char *pulse_id, const json_t *quality,
	json_t *created_at, const char *focus_url);

/* The whole visit: its summary's MOS, loss, freezes and incidents and the
 * per-leg summaries of its samples (row: the STORE_READ_VISIT row). None
 * for a visit without measured media (in person). */
void fhir_quality_visit(fhir_obs *c, const json_t *row);

#endif
