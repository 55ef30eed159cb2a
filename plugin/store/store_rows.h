/*
 * store_rows.h — the JSON shape of the report reads, shared by the
 * backends (store_sqlite_report.c, store_pg_report.c): internal to the
 * store. A backend turns each row of its SQL into a flat object (column ->
 * value, typed as SQLite types it); these helpers give every backend the
 * same keys and value types from there: *_json columns parsed and keyed
 * without the suffix, 0/1 flags as booleans, and the nested object of
 * STORE_READ_VISIT built from its flat parts.
 */
#ifndef ALLIANCE_STORE_ROWS_H
#define ALLIANCE_STORE_ROWS_H

#include "store.h"

#include <jansson.h>

/* Stored JSON text as a value: the object or array, or null (NULL text,
 * not JSON, or another kind of value). A new reference. */
json_t *store_rows_parsed(const char *text);

/* Set column's value v (stolen) in row: a column named *_json is keyed
 * without the suffix (metrics_json -> metrics). */
void store_rows_set(json_t *row, const char *column, json_t *v);

/* A 0/1 integer member becomes a JSON boolean (null stays null). */
void store_rows_to_bool(json_t *o, const char *key);

/* The flags of one streamed row of a read (STORE_READ_VISITS,
 * STORE_READ_ANSWERS) as booleans. */
void store_rows_flags(json_t *row, store_report_what what);

/* The one row of STORE_READ_VISIT from its parts, each an array of flat
 * rows (visit: one object) as docs/storage.md lists them: answers moved
 * into their pulses with their items and scores, the per-leg rows keyed by
 * leg then medium. Takes every reference it is given; NULL on failure. */
json_t *store_rows_visit(json_t *visit, json_t *participants, json_t *pulses,
	json_t *items, json_t *scores, json_t *alerts, json_t *incidents,
	json_t *legs_rows, json_t *events);

/* The detail of an erasure's `events` row: {"rows","visits","tables"}
 * added to detail from tables (stolen: table -> rows deleted). */
void store_rows_erased(json_t *detail, json_t *tables, gint64 rows, gint64 visits);



/* --- the call path's reads and rules, shared by the backends ------------------------- */

/* Stored JSON text as an object, or null (NULL text, not JSON, not an
 * object). A new reference. */
json_t *store_rows_object(const char *text);

/* One incident of store_visit_quality(): ended_us < 0 is null (open). */
json_t *store_rows_incident(const char *leg, const char *medium, const char *kind,
	gint64 started_us, gint64 ended_us, const char *detail_json);

/* The object of store_visit_quality() (takes pulses and incidents); NULL
 * with err when out of memory. */
json_t *store_rows_quality(json_t *pulses, json_t *incidents, gint64 samples,
	char *err, size_t errlen);

/* If a pulse with this status and answer flags can take no more answers,
 * say why in err ("pulse p1 is already answered") and return TRUE. */
gboolean store_rows_pulse_closed(const char *pulse_id, const char *status,
	gboolean final, gboolean dismissed, char *err, size_t errlen);

#endif
