/*
 * store_sqlite_report.c — the SQLite half of the report operations of the
 * store (store.h, "reports, erasure and retention"): visit summaries, the
 * report reads, erasure of a client and retention. store_sqlite.c owns the
 * connection and calls in here through sq_report_* (store_sqlite.h).
 *
 * Why a summary table: the compare and summary reports need, per visit,
 * the end scores of both participants and the whole-visit connection
 * quality, which live in four tables and a JSON column. Joining them for
 * thousands of visits on every report is slow and easy to get wrong, so
 * store_visit_summarize() folds them into one visit_summaries row when
 * something about the visit's end changes, and the reports read that.
 * The row is derived data: it can always be recomputed from the base
 * tables, and erasure removes it with its visit.
 *
 * Erasure (forget, retention) deletes table by table, children first,
 * inside one BEGIN IMMEDIATE, from a temporary list of the visits to go
 * (temp.ap_doomed): explicit deletes rather than relying on ON DELETE
 * CASCADE alone, so that every table's count is known and reported (the
 * cascade would still catch anything a future table adds). The list lives
 * in memory (temp_store = MEMORY), never in a temporary file.
 *
 * Values are always bound; the SQL is fixed at compile time.
 */
#include "store_sqlite.h"
#include "store_backend.h"
#include "store_rows.h"

#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

/* --- statements ---------------------------------------------------------------------- */

/* The filters of store_report_filter, on visits v and visit_summaries s:
 * ?1 visit_id, ?2 therapist, ?3 client, ?4 modality, ?5 client end
 * instrument, ?6 from (inclusive), ?7 to (exclusive), ?8 research only. */
#define FILTER_SQL \
	" (?1 IS NULL OR v.visit_id = ?1) AND (?2 IS NULL OR v.therapist_code = ?2)" \
	" AND (?3 IS NULL OR v.client_code = ?3) AND (?4 IS NULL OR v.modality = ?4)" \
	" AND (?5 IS NULL OR s.client_instrument = ?5) AND (?6 IS NULL OR v.created_at >= ?6)" \
	" AND (?7 IS NULL OR v.created_at < ?7) AND (?8 = 0 OR s.research_consent = 1)"

/* the latest end pulse of a role in the visit (normally the only one) */
#define LATEST_END(role) \
	"SELECT p.pulse_id, p.instrument_id, p.quality_json FROM pulses p, v" \
	" WHERE p.visit_id = v.visit_id AND p.role = '" role "' AND p.kind = 'end'" \
	" ORDER BY p.created_at DESC, p.pulse_id DESC LIMIT 1"

#define FINAL_TOTAL(cte) \
	"(SELECT sc.value FROM " cte " JOIN answers a ON a.pulse_id = " cte ".pulse_id AND a.final = 1" \
	" JOIN scores sc ON sc.pulse_id = " cte ".pulse_id AND sc.name = 'total')"

#define MEAN2(a, b) \
	"CASE WHEN " a " IS NULL THEN " b " WHEN " b " IS NULL THEN " a \
	" ELSE (" a " + " b ") / 2.0 END"

#define DOOMED "(SELECT visit_id FROM temp.ap_doomed)"
#define DOOMED_PULSES "(SELECT pulse_id FROM pulses WHERE visit_id IN " DOOMED ")"

enum {
	R_BEGIN, R_BEGIN_READ, R_COMMIT, R_ROLLBACK,
	R_SUMMARIZE, R_UNSUMMARIZED,
	R_DOOMED_CLEAR, R_DOOMED_CLIENT, R_DOOMED_OLD, R_DOOMED_COUNT, R_CLIENT_OPEN,
	R_DEL_ITEMS, R_DEL_SCORES, R_DEL_ALERTS, R_DEL_ANSWERS, R_DEL_PULSES,
	R_DEL_INCIDENTS, R_DEL_SAMPLES, R_DEL_EVENTS, R_DEL_PARTICIPANTS,
	R_DEL_SUMMARIES, R_DEL_VISITS,
	R_EVENT,
	R_READ_VISITS, R_READ_END_SCORES, R_READ_ANSWERS, R_READ_SAMPLES,
	R_VISIT_ONE, R_VISIT_PARTICIPANTS, R_VISIT_PULSES, R_VISIT_ITEMS, R_VISIT_SCORES,
	R_VISIT_ALERTS, R_VISIT_INCIDENTS, R_VISIT_LEGS, R_VISIT_EVENTS,
	R__COUNT
};

/* The deletes of an erasure, children first, and the table each counts. */
static const struct { int st; const char *table; } erase_steps[] = {
	{ R_DEL_ITEMS, "answer_items" }, { R_DEL_SCORES, "scores" },
	{ R_DEL_ALERTS, "alerts" }, { R_DEL_ANSWERS, "answers" },
	{ R_DEL_PULSES, "pulses" }, { R_DEL_INCIDENTS, "incidents" },
	{ R_DEL_SAMPLES, "quality_samples" }, { R_DEL_EVENTS, "events" },
	{ R_DEL_PARTICIPANTS, "participants" }, { R_DEL_SUMMARIES, "visit_summaries" },
	{ R_DEL_VISITS, "visits" },
};

static const char *const report_sql[R__COUNT] = {
	[R_BEGIN] = "BEGIN IMMEDIATE",
	[R_BEGIN_READ] = "BEGIN",
	[R_COMMIT] = "COMMIT",
	[R_ROLLBACK] = "ROLLBACK",
	/* One upsert; visit_number is kept from the first summary on. The
	 * quality is the client's end pulse context (else the therapist's):
	 * the whole visit, NULL unless the visit is a video visit whose
	 * context measured something. CASE (not AND) guards json_extract,
	 * which raises an error on text that is not JSON. */
	[R_SUMMARIZE] =
		"WITH v AS (SELECT * FROM visits WHERE visit_id = ?1),"
		" ce AS (" LATEST_END("client") "),"
		" te AS (" LATEST_END("therapist") "),"
		" q0 AS (SELECT coalesce((SELECT quality_json FROM ce), (SELECT quality_json FROM te)) AS raw),"
		" q AS (SELECT CASE WHEN (SELECT modality FROM v) = 'video' AND json_valid(raw) THEN"
		"   CASE WHEN json_type(raw) = 'object' AND coalesce(json_extract(raw, '$.measured_s'), 0) > 0"
		"   THEN raw END END AS qj FROM q0),"
		" qm AS (SELECT json_extract(qj, '$.paths.client_to_therapist.mos') AS m1,"
		"   json_extract(qj, '$.paths.therapist_to_client.mos') AS m2,"
		"   json_extract(qj, '$.paths.client_to_therapist.loss_pct') AS l1,"
		"   json_extract(qj, '$.paths.therapist_to_client.loss_pct') AS l2,"
		"   json_extract(qj, '$.freeze_s') AS fz,"
		"   CASE WHEN json_extract(qj, '$.video_class') IN ('good','poor')"
		"   THEN json_extract(qj, '$.video_class') END AS vc FROM q)"
		" INSERT INTO visit_summaries(visit_id, therapist_code, client_code, modality, visit_number,"
		"  created_at, ended_at, research_consent, client_instrument, client_total,"
		"  therapist_instrument, therapist_total, mean_mos, loss_pct, freeze_s, incidents, alerts,"
		"  video_class)"
		" SELECT v.visit_id, v.therapist_code, v.client_code, v.modality,"
		"  (SELECT count(*) FROM visits w WHERE w.client_code = v.client_code"
		"    AND (w.ended_at IS NOT NULL OR w.visit_id = v.visit_id)"
		"    AND (w.created_at < v.created_at OR (w.created_at = v.created_at AND w.visit_id <= v.visit_id))),"
		"  v.created_at, v.ended_at,"
		"  coalesce((SELECT min(research_consent) FROM participants"
		"    WHERE visit_id = v.visit_id AND role = 'client'), 0),"
		"  (SELECT instrument_id FROM ce), " FINAL_TOTAL("ce") ","
		"  (SELECT instrument_id FROM te), " FINAL_TOTAL("te") ","
		"  " MEAN2("qm.m1", "qm.m2") ", " MEAN2("qm.l1", "qm.l2") ", qm.fz,"
		"  (SELECT count(*) FROM incidents WHERE visit_id = v.visit_id),"
		"  (SELECT count(*) FROM alerts WHERE visit_id = v.visit_id), qm.vc"
		" FROM v, qm WHERE 1"
		" ON CONFLICT(visit_id) DO UPDATE SET therapist_code = excluded.therapist_code,"
		"  client_code = excluded.client_code, modality = excluded.modality,"
		"  created_at = excluded.created_at, ended_at = excluded.ended_at,"
		"  research_consent = excluded.research_consent,"
		"  client_instrument = excluded.client_instrument, client_total = excluded.client_total,"
		"  therapist_instrument = excluded.therapist_instrument,"
		"  therapist_total = excluded.therapist_total, mean_mos = excluded.mean_mos,"
		"  loss_pct = excluded.loss_pct, freeze_s = excluded.freeze_s,"
		"  incidents = excluded.incidents, alerts = excluded.alerts,"
		"  video_class = excluded.video_class",
	/* ended visits without a summary (written before version 3, or whose
	 * summary job was lost in a crash), oldest first */
	[R_UNSUMMARIZED] =
		"SELECT visit_id FROM visits WHERE ended_at IS NOT NULL"
		" AND visit_id NOT IN (SELECT visit_id FROM visit_summaries) ORDER BY created_at, visit_id",
	[R_DOOMED_CLEAR] = "DELETE FROM temp.ap_doomed",
	[R_DOOMED_CLIENT] =
		"INSERT OR IGNORE INTO temp.ap_doomed(visit_id)"
		" SELECT visit_id FROM visits WHERE client_code = ?1",
	/* the guard of `forget`: inside its write transaction, so no instance
	 * can open a visit for the client between the check and the erasure
	 * without the check seeing it */
	[R_CLIENT_OPEN] =
		"SELECT count(*) FROM visits WHERE client_code = ?1 AND state <> 'closed'",
	[R_DOOMED_OLD] =
		"INSERT OR IGNORE INTO temp.ap_doomed(visit_id) SELECT visit_id FROM visits"
		" WHERE max(created_at, coalesce(admitted_at, 0), coalesce(ended_at, 0),"
		"  coalesce(closed_at, 0)) < ?1",
	[R_DOOMED_COUNT] = "SELECT count(*) FROM temp.ap_doomed",
	[R_DEL_ITEMS] = "DELETE FROM answer_items WHERE pulse_id IN " DOOMED_PULSES,
	[R_DEL_SCORES] = "DELETE FROM scores WHERE pulse_id IN " DOOMED_PULSES,
	[R_DEL_ALERTS] = "DELETE FROM alerts WHERE visit_id IN " DOOMED,
	[R_DEL_ANSWERS] = "DELETE FROM answers WHERE pulse_id IN " DOOMED_PULSES,
	[R_DEL_PULSES] = "DELETE FROM pulses WHERE visit_id IN " DOOMED,
	[R_DEL_INCIDENTS] = "DELETE FROM incidents WHERE visit_id IN " DOOMED,
	[R_DEL_SAMPLES] = "DELETE FROM quality_samples WHERE visit_id IN " DOOMED,
	/* the visits' own events, and server-level events whose details name
	 * the client's code or one of the visits (as a JSON string) */
	[R_DEL_EVENTS] =
		"DELETE FROM events WHERE visit_id IN " DOOMED
		" OR (visit_id IS NULL AND detail_json IS NOT NULL AND ("
		"  (?1 IS NOT NULL AND instr(detail_json, '\"' || ?1 || '\"') > 0)"
		"  OR EXISTS (SELECT 1 FROM temp.ap_doomed d"
		"             WHERE instr(detail_json, '\"' || d.visit_id || '\"') > 0)))",
	[R_DEL_PARTICIPANTS] =
		"DELETE FROM participants WHERE visit_id IN " DOOMED " OR (?1 IS NOT NULL AND code = ?1)",
	[R_DEL_SUMMARIES] =
		"DELETE FROM visit_summaries WHERE visit_id IN " DOOMED
		" OR (?1 IS NOT NULL AND client_code = ?1)",
	[R_DEL_VISITS] = "DELETE FROM visits WHERE visit_id IN " DOOMED,
	[R_EVENT] = "INSERT INTO events(visit_id, kind, detail_json, at) VALUES (NULL, ?1, ?2, ?3)",
	[R_READ_VISITS] =
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, v.state, v.created_at,"
		" v.admitted_at, v.ended_at, v.closed_at, v.end_reason, s.visit_number, s.research_consent,"
		" s.client_instrument, s.client_total, s.therapist_instrument, s.therapist_total,"
		" s.mean_mos, s.loss_pct, s.freeze_s, s.incidents, s.alerts, v.instance_id, s.video_class"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" WHERE" FILTER_SQL " ORDER BY v.created_at, v.visit_id LIMIT ?9",
	[R_READ_END_SCORES] =
		"SELECT p.visit_id, p.role, p.instrument_id, sc.name, sc.value"
		" FROM visits v JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN pulses p ON p.visit_id = v.visit_id AND p.kind = 'end' AND p.role = 'client'"
		" JOIN answers a ON a.pulse_id = p.pulse_id AND a.final = 1"
		" JOIN scores sc ON sc.pulse_id = p.pulse_id"
		" WHERE" FILTER_SQL " AND (?8 = 0 OR a.research_consent = 1)"
		" AND p.pulse_id = (SELECT x.pulse_id FROM pulses x WHERE x.visit_id = v.visit_id"
		"   AND x.role = p.role AND x.kind = 'end' ORDER BY x.created_at DESC, x.pulse_id DESC LIMIT 1)"
		" ORDER BY v.created_at, v.visit_id, p.role, sc.name",
	[R_READ_ANSWERS] =
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, s.visit_number,"
		" v.created_at AS visit_created_at, s.research_consent AS visit_research_consent,"
		" p.pulse_id, p.role, p.kind, p.instrument_id, p.instrument_version, p.language,"
		" p.\"trigger\", p.delivered_via, p.created_at AS pulse_created_at, p.status,"
		" a.first_at, a.answered_at, a.time_to_answer_ms, a.final, a.dismissed,"
		" a.research_consent AS answer_research_consent, i.item_id, i.value"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN pulses p ON p.visit_id = v.visit_id JOIN answers a ON a.pulse_id = p.pulse_id"
		" JOIN answer_items i ON i.pulse_id = p.pulse_id"
		" WHERE" FILTER_SQL " AND (?8 = 0 OR a.research_consent = 1)"
		" ORDER BY v.created_at, v.visit_id, p.created_at, p.pulse_id, i.item_id",
	[R_READ_SAMPLES] =
		"SELECT q.visit_id, v.modality, q.leg, q.medium, q.at, q.metrics_json AS metrics_raw"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN quality_samples q ON q.visit_id = v.visit_id"
		" WHERE" FILTER_SQL " ORDER BY v.created_at, v.visit_id, q.at, q.id",
	[R_VISIT_ONE] =
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, v.state, v.created_at,"
		" v.admitted_at, v.ended_at, v.closed_at, v.end_reason, s.visit_number, s.research_consent,"
		" s.client_instrument, s.client_total, s.therapist_instrument, s.therapist_total,"
		" s.mean_mos, s.loss_pct, s.freeze_s, s.incidents, s.alerts, v.instance_id, s.video_class"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" WHERE v.visit_id = ?1 AND (?2 = 0 OR s.research_consent = 1)",
	[R_VISIT_PARTICIPANTS] =
		"SELECT role, code, research_consent, language, joined_at FROM participants"
		" WHERE visit_id = ?1 ORDER BY joined_at, id",
	[R_VISIT_PULSES] =
		"SELECT p.pulse_id, p.role, p.kind, p.instrument_id, p.instrument_version, p.language,"
		" p.\"trigger\", p.delivered_via, p.created_at, p.expires_at, p.status, p.status_at,"
		" p.quality_json, a.pulse_id IS NOT NULL AS has_answer, a.final, a.dismissed, a.first_at,"
		" a.answered_at, a.time_to_answer_ms, a.research_consent"
		" FROM pulses p LEFT JOIN answers a ON a.pulse_id = p.pulse_id"
		" WHERE p.visit_id = ?1 ORDER BY p.created_at, p.pulse_id",
	[R_VISIT_ITEMS] =
		"SELECT i.pulse_id, i.item_id, i.value FROM answer_items i"
		" JOIN pulses p ON p.pulse_id = i.pulse_id WHERE p.visit_id = ?1",
	[R_VISIT_SCORES] =
		"SELECT sc.pulse_id, sc.name, sc.value FROM scores sc"
		" JOIN pulses p ON p.pulse_id = sc.pulse_id WHERE p.visit_id = ?1",
	[R_VISIT_ALERTS] =
		"SELECT pulse_id, rule, score_name, score, threshold, quality_json, created_at"
		" FROM alerts WHERE visit_id = ?1 ORDER BY created_at, id",
	[R_VISIT_INCIDENTS] =
		"SELECT leg, medium, kind, started_at, ended_at, detail_json FROM incidents"
		" WHERE visit_id = ?1 ORDER BY started_at, id",
	/* per leg and medium over the whole visit: loss from the packet counts
	 * where the samples have them (up legs), else the mean of the samples'
	 * loss %; means of jitter, RTT, bitrate and frame rate over the samples
	 * that have them; counts and seconds summed */
	[R_VISIT_LEGS] =
		"SELECT leg, medium, count(*) AS samples, min(at) AS first_at, max(at) AS last_at,"
		" sum(json_extract(m, '$.seconds')) AS seconds,"
		" coalesce(100.0 * sum(json_extract(m, '$.lost')) / nullif(sum(json_extract(m, '$.expected')), 0),"
		"   avg(json_extract(m, '$.loss_pct'))) AS loss_pct,"
		" max(json_extract(m, '$.loss_pct')) AS loss_pct_max,"
		" avg(json_extract(m, '$.jitter_ms')) AS jitter_ms,"
		" max(json_extract(m, '$.jitter_ms')) AS jitter_ms_max,"
		" avg(json_extract(m, '$.rtt_ms')) AS rtt_ms,"
		" max(json_extract(m, '$.rtt_max_ms')) AS rtt_ms_max,"
		" avg(json_extract(m, '$.bitrate_kbps')) AS bitrate_kbps,"
		" avg(json_extract(m, '$.fps')) AS fps,"
		" sum(json_extract(m, '$.packets')) AS packets,"
		" sum(json_extract(m, '$.lost')) AS lost,"
		" sum(json_extract(m, '$.freezes')) AS freezes,"
		" sum(json_extract(m, '$.freeze_s')) AS freeze_s,"
		" sum(json_extract(m, '$.stalls')) AS stalls,"
		" sum(json_extract(m, '$.stall_s')) AS stall_s"
		" FROM (SELECT leg, medium, at, CASE WHEN json_valid(metrics_json) THEN metrics_json END AS m"
		"       FROM quality_samples WHERE visit_id = ?1)"
		" GROUP BY leg, medium ORDER BY leg, medium",
	[R_VISIT_EVENTS] =
		"SELECT kind, detail_json, at FROM events WHERE visit_id = ?1 ORDER BY at, id",
};

struct sq_report {
	sqlite3 *db;
	sqlite3_stmt *st[R__COUNT];
	char msg[200];
};

/* --- helpers --------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
	sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);    /* NULL binds NULL */
}

/* Reset a statement after use (keeping SQLite's message of a failure). */
static int finish(sq_report *r, sqlite3_stmt *s, int rc) {
	if(rc != SQLITE_DONE && rc != SQLITE_ROW)
		g_strlcpy(r->msg, sqlite3_errmsg(r->db), sizeof(r->msg));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int run(sq_report *r, sqlite3_stmt *s) {
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	return finish(r, s, rc);
}

static store_rc fail(sq_report *r, int rc, const char *what, char *err, size_t errlen) {
	return sq_classify(rc, what, r->msg, err, errlen);
}

static store_rc tx_end(sq_report *r, store_rc rc, const char *what, char *err, size_t errlen) {
	if(rc == STORE_OK) {
		int c = run(r, r->st[R_COMMIT]);
		if(c == SQLITE_DONE)
			return STORE_OK;
		rc = fail(r, c, what, err, errlen);
	}
	if(!sqlite3_get_autocommit(r->db))
		run(r, r->st[R_ROLLBACK]);
	return rc;
}

/* Column i of the current row as a JSON value; a column whose name ends
 * in "_json" is parsed (and keyed without the suffix by row_json()). */
static json_t *column_json(sqlite3_stmt *s, int i) {
	const char *name = sqlite3_column_name(s, i);
	switch(sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			return json_integer((json_int_t)sqlite3_column_int64(s, i));
		case SQLITE_FLOAT:
			return json_real(sqlite3_column_double(s, i));
		case SQLITE_NULL:
			return json_null();
		default: {
			const unsigned char *t = sqlite3_column_text(s, i);
			if(name && g_str_has_suffix(name, "_json"))
				return store_rows_parsed((const char *)t);
			return json_string(t ? (const char *)t : "");
		}
	}
}

/* The current row as {column: value}. Columns ending in "_json" become
 * parsed values named without the suffix (metrics_json -> metrics). */
static json_t *row_json(sqlite3_stmt *s) {
	json_t *o = json_object();
	int n = sqlite3_column_count(s);
	for(int i = 0; i < n; i++)
		store_rows_set(o, sqlite3_column_name(s, i), column_json(s, i));
	return o;
}

/* --- lifetime -------------------------------------------------------------------------- */

sq_report *sq_report_prepare(sqlite3 *db, char *err, size_t errlen) {
	/* the erasure list stays in memory, never in a temporary file */
	if(sqlite3_exec(db, "PRAGMA temp_store = MEMORY;"
			"CREATE TEMP TABLE IF NOT EXISTS ap_doomed(visit_id TEXT PRIMARY KEY) WITHOUT ROWID;",
			NULL, NULL, NULL) != SQLITE_OK) {
		g_snprintf(err, errlen, "cannot create the erasure list: %s", sqlite3_errmsg(db));
		return NULL;
	}
	sq_report *r = g_new0(sq_report, 1);
	r->db = db;
	for(int i = 0; i < R__COUNT; i++) {
		if(sqlite3_prepare_v3(db, report_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				&r->st[i], NULL) != SQLITE_OK) {
			g_snprintf(err, errlen, "cannot prepare report statement %d: %s", i, sqlite3_errmsg(db));
			sq_report_free(r);
			return NULL;
		}
	}
	return r;
}

void sq_report_free(sq_report *r) {
	if(r == NULL)
		return;
	for(int i = 0; i < R__COUNT; i++)
		sqlite3_finalize(r->st[i]);
	g_free(r);
}

/* --- summaries ------------------------------------------------------------------------- */

static int summarize(sq_report *r, const char *visit_id, int *changed) {
	sqlite3_stmt *s = r->st[R_SUMMARIZE];
	bind_text(s, 1, visit_id);
	int rc = run(r, s);
	*changed = rc == SQLITE_DONE ? sqlite3_changes(r->db) : 0;
	return rc;
}

store_rc sq_report_summarize(sq_report *r, const char *visit_id, char *err, size_t errlen) {
	int changed = 0;
	int rc = summarize(r, visit_id, &changed);
	if(rc != SQLITE_DONE)
		return fail(r, rc, "visit_summarize", err, errlen);
	if(changed == 0) {
		g_snprintf(err, errlen, "visit %s is not stored", visit_id);
		return STORE_NOT_FOUND;
	}
	return STORE_OK;
}

int sq_report_backfill(sq_report *r, char *err, size_t errlen) {
	if(run(r, r->st[R_BEGIN]) != SQLITE_DONE) {
		g_snprintf(err, errlen, "cannot summarize older visits: %s", r->msg);
		return -1;
	}
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
	sqlite3_stmt *s = r->st[R_UNSUMMARIZED];
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		g_ptr_array_add(ids, g_strdup((const char *)sqlite3_column_text(s, 0)));
	rc = finish(r, s, rc);
	int n = 0;
	for(guint i = 0; rc == SQLITE_DONE && i < ids->len; i++) {
		int changed = 0;
		rc = summarize(r, ids->pdata[i], &changed);
		n += changed;
	}
	g_ptr_array_free(ids, TRUE);
	char dummy[8];
	if(rc != SQLITE_DONE || tx_end(r, STORE_OK, "backfill", dummy, sizeof(dummy)) != STORE_OK) {
		g_snprintf(err, errlen, "cannot summarize older visits: %s", r->msg);
		if(!sqlite3_get_autocommit(r->db))
			run(r, r->st[R_ROLLBACK]);
		return -1;
	}
	return n;
}

/* --- erasure ----------------------------------------------------------------------------- */

/* Delete the visits listed in temp.ap_doomed and everything about them
 * (client_code, if not NULL, also catches rows carrying the code outside
 * those visits). Inside the caller's transaction. Fills detail with the
 * counts and *rows with their sum. */
static int erase_doomed(sq_report *r, const char *client_code, json_t *detail, gint64 *rows) {
	sqlite3_stmt *s = r->st[R_DOOMED_COUNT];
	int rc = sqlite3_step(s);
	gint64 visits = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	if((rc = finish(r, s, rc)) != SQLITE_DONE)
		return rc;
	json_t *tables = json_object();
	gint64 total = 0;
	for(size_t i = 0; i < G_N_ELEMENTS(erase_steps); i++) {
		s = r->st[erase_steps[i].st];
		if(sqlite3_bind_parameter_count(s) >= 1)
			bind_text(s, 1, client_code);
		if((rc = run(r, s)) != SQLITE_DONE) {
			json_decref(tables);
			return rc;
		}
		gint64 n = sqlite3_changes(r->db);
		total += n;
		json_object_set_new(tables, erase_steps[i].table, json_integer((json_int_t)n));
	}
	store_rows_erased(detail, tables, total, visits);
	*rows = total;
	return run(r, r->st[R_DOOMED_CLEAR]);
}

static int log_event(sq_report *r, const char *kind, json_t *detail, gint64 at_us) {
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	sqlite3_stmt *s = r->st[R_EVENT];
	bind_text(s, 1, kind);
	bind_text(s, 2, text);
	sqlite3_bind_int64(s, 3, at_us);
	int rc = run(r, s);
	free(text);
	return rc;
}

/* One erasure job: fill the list (doom_st, bound to doom_arg), erase, log. */
static store_rc erase(sq_report *r, const char *what, int doom_st, const char *client_code,
		gint64 cutoff_us, json_t *detail, gint64 at_us, gint64 *rows, char *err, size_t errlen) {
	*rows = 0;
	int rc = run(r, r->st[R_BEGIN]);
	if(rc != SQLITE_DONE) {
		json_decref(detail);
		return fail(r, rc, what, err, errlen);
	}
	store_rc out = STORE_OK;
	if(client_code) {
		sqlite3_stmt *q = r->st[R_CLIENT_OPEN];
		bind_text(q, 1, client_code);
		rc = sqlite3_step(q);
		sqlite3_int64 open = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
		if((rc = finish(r, q, rc)) != SQLITE_DONE)
			goto failed;
		if(open > 0) {
			g_snprintf(err, errlen, "the client has %lld visit%s not closed yet: erase after "
				"%s ended and closed", (long long)open, open == 1 ? "" : "s", open == 1 ? "it has" : "they have");
			out = STORE_REFUSED;
			goto refused;
		}
	}
	if((rc = run(r, r->st[R_DOOMED_CLEAR])) != SQLITE_DONE)
		goto failed;
	sqlite3_stmt *s = r->st[doom_st];
	if(client_code)
		bind_text(s, 1, client_code);
	else
		sqlite3_bind_int64(s, 1, cutoff_us);
	if((rc = run(r, s)) != SQLITE_DONE)
		goto failed;
	if((rc = erase_doomed(r, client_code, detail, rows)) != SQLITE_DONE)
		goto failed;
	if((rc = log_event(r, what, detail, at_us)) != SQLITE_DONE)
		goto failed;
	goto done;
failed:
	out = fail(r, rc, what, err, errlen);
refused:
	*rows = 0;
done:
	json_decref(detail);
	out = tx_end(r, out, what, err, errlen);
	if(out != STORE_OK) {
		*rows = 0;
		return out;
	}
	/* the erased pages (zeroed by secure_delete) into the main file, and
	 * the WAL, which still holds the old page images, emptied; a reader
	 * may keep it from finishing now, the next checkpoint does it then */
	sqlite3_wal_checkpoint_v2(r->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	return STORE_OK;
}

store_rc sq_report_forget(sq_report *r, const char *client_code, gint64 at_us,
		gint64 *rows, char *err, size_t errlen) {
	return erase(r, "forget", R_DOOMED_CLIENT, client_code, 0, json_object(), at_us,
		rows, err, errlen);
}

store_rc sq_report_retention(sq_report *r, int days, gint64 now_us, gint64 *rows,
		char *err, size_t errlen) {
	gint64 cutoff = now_us - (gint64)days * 86400 * G_USEC_PER_SEC;
	json_t *detail = json_pack("{s:i, s:I}", "days", days, "cutoff", (json_int_t)cutoff);
	return erase(r, "retention", R_DOOMED_OLD, NULL, cutoff, detail, now_us, rows, err, errlen);
}

/* --- reads ------------------------------------------------------------------------------- */

static void bind_filter(sqlite3_stmt *s, const store_report_filter *f) {
	bind_text(s, 1, f->visit_id);
	bind_text(s, 2, f->therapist_code);
	bind_text(s, 3, f->client_code);
	bind_text(s, 4, f->modality);
	bind_text(s, 5, f->instrument_id);
	if(f->from_us)
		sqlite3_bind_int64(s, 6, f->from_us);
	if(f->to_us)
		sqlite3_bind_int64(s, 7, f->to_us);
	sqlite3_bind_int(s, 8, f->research_only ? 1 : 0);
	if(sqlite3_bind_parameter_count(s) >= 9)
		sqlite3_bind_int(s, 9, f->limit > 0 ? f->limit : -1);
}

/* Rows of one statement, each through the caller's callback. */
static int stream(sq_report *r, sqlite3_stmt *s, store_report_what what,
		store_row_cb cb, void *user) {
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *row = row_json(s);
		store_rows_flags(row, what);
		int stop = cb(row, user);
		json_decref(row);
		if(stop) {
			rc = SQLITE_DONE;
			break;
		}
	}
	return finish(r, s, rc);
}

/* Every row of a one-visit statement (?1 = visit_id) into an array. */
static int rows_of(sq_report *r, int st, const char *visit_id, json_t **out) {
	sqlite3_stmt *s = r->st[st];
	bind_text(s, 1, visit_id);
	*out = json_array();
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(*out, row_json(s));
	return finish(r, s, rc);
}

/* The nested object of STORE_READ_VISIT (docs/storage.md). */
static int read_visit(sq_report *r, const store_report_filter *f, json_t **out, gboolean *found) {
	*out = NULL;
	*found = FALSE;
	sqlite3_stmt *s = r->st[R_VISIT_ONE];
	bind_text(s, 1, f->visit_id);
	sqlite3_bind_int(s, 2, f->research_only ? 1 : 0);
	int rc = sqlite3_step(s);
	json_t *visit = NULL;
	if(rc == SQLITE_ROW)
		visit = row_json(s);
	if((rc = finish(r, s, rc)) != SQLITE_DONE || visit == NULL)
		return rc;
	*found = TRUE;
	json_t *participants = NULL, *pulses = NULL, *items = NULL, *scores = NULL,
		*alerts = NULL, *incidents = NULL, *legs_rows = NULL, *events = NULL;
	if((rc = rows_of(r, R_VISIT_PARTICIPANTS, f->visit_id, &participants)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_PULSES, f->visit_id, &pulses)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_ITEMS, f->visit_id, &items)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_SCORES, f->visit_id, &scores)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_ALERTS, f->visit_id, &alerts)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_INCIDENTS, f->visit_id, &incidents)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_LEGS, f->visit_id, &legs_rows)) != SQLITE_DONE
			|| (rc = rows_of(r, R_VISIT_EVENTS, f->visit_id, &events)) != SQLITE_DONE)
		goto out;
	*out = store_rows_visit(visit, participants, pulses, items, scores, alerts, incidents,
		legs_rows, events);
	return rc;
out:
	json_decref(visit);
	json_decref(participants);
	json_decref(pulses);
	json_decref(items);
	json_decref(scores);
	json_decref(alerts);
	json_decref(incidents);
	json_decref(legs_rows);
	json_decref(events);
	return rc;
}

store_rc sq_report_rows(sq_report *r, store_report_what what, const store_report_filter *f,
		store_row_cb cb, void *user, char *err, size_t errlen) {
	int rc = run(r, r->st[R_BEGIN_READ]);
	if(rc != SQLITE_DONE)
		return fail(r, rc, "report", err, errlen);
	store_rc out = STORE_OK;
	if(what == STORE_READ_VISIT) {
		json_t *v = NULL;
		gboolean found = FALSE;
		rc = read_visit(r, f, &v, &found);
		if(rc == SQLITE_DONE && !found) {
			g_snprintf(err, errlen, "visit %s is not stored%s", f->visit_id,
				f->research_only ? " (or has no research consent)" : "");
			out = STORE_NOT_FOUND;
		} else if(rc == SQLITE_DONE && v) {
			cb(v, user);
		}
		json_decref(v);
	} else {
		int st = what == STORE_READ_VISITS ? R_READ_VISITS :
			what == STORE_READ_END_SCORES ? R_READ_END_SCORES :
			what == STORE_READ_ANSWERS ? R_READ_ANSWERS : R_READ_SAMPLES;
		sqlite3_stmt *s = r->st[st];
		bind_filter(s, f);
		rc = stream(r, s, what, cb, user);
	}
	if(rc != SQLITE_DONE)
		out = fail(r, rc, "report", err, errlen);
	/* a read: COMMIT only ends the snapshot */
	return tx_end(r, out, "report", err, errlen);
}
