/*
 * report_history.h — the therapist's own view of a client (PROTOCOL.md
 * v1.1 "Operations and supervision", `client_history`; docs/reports.md
 * "client_history"): every stored visit of one client with one therapist,
 * each with the client's end total and subscales beside the therapist's own
 * end (mirror) ratings, the in-session pulses with their answers, and the
 * alerts with their quality contexts (good/poor class, report_class.h).
 *
 * Only the caller's own visits with that client are read (the store filter
 * carries both codes), so a client who also saw another therapist shows
 * none of those visits. A forgotten client has no rows, so their visits
 * are gone from here too.
 *
 * report_history_build() reads the store (its analytics lane; blocks, each
 * read up to timeout_us, like report_build()); report_history_from() builds
 * the answer from rows already read (pure, unit-tested). Nothing here logs.
 */
#ifndef ALLIANCE_REPORT_HISTORY_H
#define ALLIANCE_REPORT_HISTORY_H

#include <glib.h>
#include <jansson.h>

#include "proto.h"
#include "store.h"

/* The history for therapist_code of the client of visit_id: a new object
 * {"alliance":"client_history", …}. NULL with err on failure: 476 (no
 * stored visit visit_id), 475 (the visit is another therapist's), 496 (a
 * read failed or took longer than timeout_us). limit: the most recent
 * visits given (1..PROTO_HISTORY_LIMIT_MAX). */
json_t *report_history_build(store *st, const char *therapist_code, const char *visit_id,
	int limit, gint64 timeout_us, proto_error *err);

/* From rows: vrow the STORE_READ_VISITS row of visit_id, details the
 * STORE_READ_VISIT rows of the visits to show (oldest first; modified:
 * report_class_visit() adds the quality classes), older the number of
 * the pair's visits left out (limit). */
json_t *report_history_from(const json_t *vrow, json_t *details, int older);

/* One visit's entry of the history from its STORE_READ_VISIT row (classes
 * already added): visit fields, number (1-based among the pair's visits),
 * client_end, therapist_end, pulses (the in-session ones), alerts.
 * current: the visit asked about. */
json_t *report_history_visit(const json_t *detail, int number, gboolean current);

#endif
