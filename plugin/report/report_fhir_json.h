/*
 * report_fhir_json.h — the pieces the FHIR export (report_fhir.c,
 * report_fhir_quality.c) builds its resources from, with jansson: FHIR's
 * primitive types checked (a text that is not a valid FHIR string or code
 * gives NULL, and the caller leaves the element out rather than write an
 * invalid resource), logical references by identifier, codings, and the
 * bundle entry with its name-based id (report_fhir.h says how).
 * Internal to the export; every json_t returned is a new reference.
 */
#ifndef ALLIANCE_REPORT_FHIR_JSON_H
#define ALLIANCE_REPORT_FHIR_JSON_H

#include <glib.h>
#include <jansson.h>

#include "report_fhir.h"

#define FHIR_UCUM "http://unitsofmeasure.org"

/* A string member of o, or NULL. */
const char *fhir_sfield(const json_t *o, const char *key);
/* FHIR string ([ \r\n\t\S]+, valid UTF-8): a JSON string, else NULL. */
json_t *fhir_string(const char *s);
gboolean fhir_string_ok(const char *s);
/* FHIR code ([^\s]+(\s[^\s]+)*): a JSON string, else NULL. */
json_t *fhir_code(const char *s);
/* A part of a canonical URL or of an id's name: 1..256 printable ASCII
 * characters without spaces, '|' or '#'. */
gboolean fhir_uri_part_ok(const char *s);
/* true, or a non-zero integer (the store's 0/1 booleans). */
gboolean fhir_truthy(const json_t *v);

/* o[key] = v when v is not NULL (takes v). */
void fhir_set_opt(json_t *o, const char *key, json_t *v);
/* µs since the epoch (a JSON integer) as a FHIR dateTime, else NULL. */
json_t *fhir_iso(json_t *us);

/* {fullUrl: "urn:uuid:<id>", resource} for a resource (taken) whose id is
 * the UUID of "<resourceType>/<name>"; the id goes right after
 * resourceType. */
json_t *fhir_entry(json_t *resource, const char *name);
const char *fhir_full_url(const json_t *entry);

/* {type, identifier: {system: base/sid/<sid>, value}}, or NULL when value
 * is not a FHIR string. type may be NULL. */
json_t *fhir_logical_ref(const char *type, const char *base, const char *sid, const char *value);
/* {system, code, display?} (NULL when code is not a FHIR code; a display
 * that is not a FHIR string is left out), and the same inside
 * {coding: [...]}. */
json_t *fhir_coding(const char *system, const char *code, const char *display);
json_t *fhir_concept(const char *system, const char *code, const char *display);

#endif
