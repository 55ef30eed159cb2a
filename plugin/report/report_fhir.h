/*
 * report_fhir.h — the FHIR R4 export (PROTOCOL.md v1.1 "Research"):
 * `alliance-report --export fhir` writes one Bundle of type `collection`
 * holding
 *   Questionnaire          one per instrument version (the loaded
 *                          definitions, with their items, scales and
 *                          answer options, and every other version the
 *                          exported answers used, as far as they show it)
 *   QuestionnaireResponse  one per answered pulse (a pulse with at least one
 *                          answer item given under research consent): the
 *                          pseudonymous client code as the subject's
 *                          identifier, the author (the client, or the
 *                          therapist for the mirror form), the time, the
 *                          answers, the Questionnaire as url|version
 *   Observation            the connection quality: per pulse its quality
 *                          context, per visit its whole-visit legs, as a
 *                          panel (hasMember) of one Observation per leg and
 *                          medium and one per audio path (MOS)
 * docs/fhir.md lists every field and every local code.
 *
 * The same visits as the other research exports: research consent only
 * (and answers given under it), the same filters; erased clients are not
 * in the store. No names anywhere (the store has none): codes only.
 *
 * Deterministic: resource ids are name-based UUIDs (RFC 4122 version 5,
 * SHA-1) of a fixed namespace and names like "QuestionnaireResponse/<pulse
 * id>", fullUrl "urn:uuid:<id>", entries in the order of the store reads,
 * no time of export inside. The same database gives the same bytes.
 *
 * Streaming: one visit is read and written at a time (the list of visit
 * ids is the only thing kept for the whole export, besides the
 * instrument versions seen), so memory follows the largest visit, not the
 * database. The Questionnaires come last, once the export knows which
 * versions were used.
 */
#ifndef ALLIANCE_REPORT_FHIR_H
#define ALLIANCE_REPORT_FHIR_H

#include <stdio.h>
#include <glib.h>
#include <jansson.h>

#include "instrument.h"
#include "proto.h"
#include "report.h"
#include "store.h"

/* The product's own namespace: the local CodeSystem's URL and the default
 * base of canonical URLs and identifier systems. ".invalid" (RFC 2606)
 * never resolves and can never belong to anyone else; a clinic may give
 * its own base for the Questionnaires and identifiers (--fhir-base). */
#define REPORT_FHIR_NS "http://alliance-pulse.invalid/fhir"
#define REPORT_FHIR_CODES REPORT_FHIR_NS "/CodeSystem/connection-quality"
#define REPORT_FHIR_SCALE REPORT_FHIR_NS "/CodeSystem/scale-point"
#define REPORT_FHIR_BASE_MAX 200

/* A base is usable when it is an absolute http(s) URL or a urn: of at most
 * REPORT_FHIR_BASE_MAX printable ASCII characters without spaces, '|' or
 * '#', not ending in '/'. */
gboolean report_fhir_base_ok(const char *base);

/* The name-based UUID (version 5) of name in the export's namespace, as 36
 * characters into buf (>= 37). */
const char *report_fhir_uuid(const char *name, char *buf, size_t len);

/* Pure parts, for the tests and other writers (new references). */
/* The Questionnaire of a loaded definition. */
json_t *report_fhir_questionnaire(const instrument *ins, const char *base);
/* The bundle entries ({fullUrl, resource}) of one STORE_READ_VISIT row,
 * appended to entries; versions (may be NULL) collects "id|version" ->
 * GHashTable of item ids (see report_fhir.c) for the Questionnaires of
 * versions not loaded. Returns the entries added. */
int report_fhir_visit_entries(const json_t *visit_row, const instrument_set *instruments,
	const char *base, GHashTable *versions, json_t *entries);

/* Write the bundle of the visits matching f (research consent forced on)
 * to out. base NULL: REPORT_FHIR_NS. instruments may be NULL (then every
 * Questionnaire is built from the answers alone, status "unknown").
 * progress as for report_export(), counted in resources. Returns the
 * resources written, or -1 with err (496 a read failed, 499 a write
 * failed). */
gint64 report_fhir_export(store *st, const proto_report_filters *f,
	const instrument_set *instruments, const char *base, FILE *out,
	report_progress_cb progress, gint64 every, void *user, proto_error *err);

#endif
