/*
 * store_pg_report.c — the PostgreSQL half of the report operations of the
 * store (store.h, "reports, erasure and retention"): visit summaries, the
 * report reads, erasure of a client and retention. store_pg.c owns the
 * connections and calls in here through pg_report_* (store_pg.h).
 *
 * The SQL is the SQLite backend's (store_sqlite_report.c) in PostgreSQL's
 * words: greatest() for SQLite's scalar max(), strpos() for instr(), the
 * stored JSON read through ap_json_object() and ap_json_num() (see the
 * migrations) where SQLite uses json_valid() and json_extract(). The rows
 * come out with the same keys and value types (pg_row_json(), then
 * store_rows.h), so the reports cannot tell the backends apart.
 *
 * Erasure (forget, retention) is one transaction that deletes table by
 * table, children first, from a temporary list of the visits to go
 * (pg_temp.ap_doomed), counting what each table lost. forget first takes
 * the client's advisory lock exclusively (visit_create takes it shared), so
 * no instance can create a visit for the client between the check that
 * every visit of theirs is closed and the deletes. Retention drops whole
 * months of quality samples (ap_samples_drop_old()) where it can, before
 * deleting the rest row by row.
 *
 * Values are always bound parameters; the SQL is fixed at compile time.
 */
#include "store_pg.h"
#include "store_backend.h"
#include "store_rows.h"

#include <stdlib.h>
#include <string.h>

/* --- statements ---------------------------------------------------------------------- */

/* The filters of store_report_filter, on visits v and visit_summaries s:
 * $1 visit_id, $2 therapist, $3 client, $4 modality, $5 client end
 * instrument, $6 from (inclusive), $7 to (exclusive), $8 research only. */
#define FILTER_SQL \
	" ($1::TEXT IS NULL OR v.visit_id = $1::TEXT) AND ($2::TEXT IS NULL OR v.therapist_code = $2::TEXT)" \
	" AND ($3::TEXT IS NULL OR v.client_code = $3::TEXT) AND ($4::TEXT IS NULL OR v.modality = $4::TEXT)" \
	" AND ($5::TEXT IS NULL OR s.client_instrument = $5::TEXT)" \
	" AND ($6::BIGINT IS NULL OR v.created_at >= $6::BIGINT)" \
	" AND ($7::BIGINT IS NULL OR v.created_at < $7::BIGINT) AND ($8::INT = 0 OR s.research_consent = 1)"

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

#define DOOMED "(SELECT visit_id FROM pg_temp.ap_doomed)"
#define DOOMED_PULSES "(SELECT pulse_id FROM pulses WHERE visit_id IN " DOOMED ")"

/* a member of the stored metrics m as SQLite's json_extract() gives it */
#define M(key) "ap_json_num(m->'" key "')"

enum {
	R_SUMMARIZE, R_UNSUMMARIZED,
	R_CLIENT_LOCK, R_DOOMED_CLEAR, R_DOOMED_CLIENT, R_DOOMED_OLD, R_DOOMED_COUNT, R_CLIENT_OPEN,
	R_DEL_ITEMS, R_DEL_SCORES, R_DEL_ALERTS, R_DEL_ANSWERS, R_DEL_PULSES,
	R_DEL_INCIDENTS, R_DROP_SAMPLES, R_DEL_SAMPLES, R_DEL_EVENTS, R_DEL_PARTICIPANTS,
	R_DEL_SUMMARIES, R_DEL_VISITS,
	R_EVENT,
	R_READ_VISITS, R_READ_END_SCORES, R_READ_ANSWERS, R_READ_SAMPLES,
	R_VISIT_ONE, R_VISIT_PARTICIPANTS, R_VISIT_PULSES, R_VISIT_ITEMS, R_VISIT_SCORES,
	R_VISIT_ALERTS, R_VISIT_INCIDENTS, R_VISIT_LEGS, R_VISIT_EVENTS,
	R__COUNT
};

/* The deletes of an erasure, children first, and the table each counts
 * (R_DROP_SAMPLES, retention's dropped months, adds to quality_samples). */
static const struct { int st; const char *table; } erase_steps[] = {
	{ R_DEL_ITEMS, "answer_items" }, { R_DEL_SCORES, "scores" },
	{ R_DEL_ALERTS, "alerts" }, { R_DEL_ANSWERS, "answers" },
	{ R_DEL_PULSES, "pulses" }, { R_DEL_INCIDENTS, "incidents" },
	{ R_DEL_SAMPLES, "quality_samples" }, { R_DEL_EVENTS, "events" },
	{ R_DEL_PARTICIPANTS, "participants" }, { R_DEL_SUMMARIES, "visit_summaries" },
	{ R_DEL_VISITS, "visits" },
};

#define W TRUE
#define RO FALSE
static const pg_stmt report_stmts[R__COUNT] = {
	/* One upsert; visit_number is kept from the first summary on. The
	 * quality is the client's end pulse context (else the therapist's):
	 * the whole visit, NULL unless the visit is a video visit whose
	 * context measured something. */
	[R_SUMMARIZE] = { "apr_summarize",
		"WITH v AS (SELECT * FROM visits WHERE visit_id = $1),"
		" ce AS (" LATEST_END("client") "),"
		" te AS (" LATEST_END("therapist") "),"
		" q0 AS (SELECT coalesce((SELECT quality_json FROM ce), (SELECT quality_json FROM te)) AS raw),"
		" q1 AS (SELECT CASE WHEN (SELECT modality FROM v) = 'video' THEN ap_json_object(raw) END AS qj FROM q0),"
		" q AS (SELECT CASE WHEN coalesce(ap_json_num(qj->'measured_s'), 0) > 0 THEN qj END AS qj FROM q1),"
		" qm AS (SELECT ap_json_num(qj #> '{paths,client_to_therapist,mos}')::FLOAT8 AS m1,"
		"   ap_json_num(qj #> '{paths,therapist_to_client,mos}')::FLOAT8 AS m2,"
		"   ap_json_num(qj #> '{paths,client_to_therapist,loss_pct}')::FLOAT8 AS l1,"
		"   ap_json_num(qj #> '{paths,therapist_to_client,loss_pct}')::FLOAT8 AS l2,"
		"   ap_json_num(qj->'freeze_s')::FLOAT8 AS fz,"
		"   CASE WHEN qj->>'video_class' IN ('good','poor') THEN qj->>'video_class' END AS vc FROM q)"
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
		" FROM v, qm"
		" ON CONFLICT (visit_id) DO UPDATE SET therapist_code = excluded.therapist_code,"
		"  client_code = excluded.client_code, modality = excluded.modality,"
		"  created_at = excluded.created_at, ended_at = excluded.ended_at,"
		"  research_consent = excluded.research_consent,"
		"  client_instrument = excluded.client_instrument, client_total = excluded.client_total,"
		"  therapist_instrument = excluded.therapist_instrument,"
		"  therapist_total = excluded.therapist_total, mean_mos = excluded.mean_mos,"
		"  loss_pct = excluded.loss_pct, freeze_s = excluded.freeze_s,"
		"  incidents = excluded.incidents, alerts = excluded.alerts,"
		"  video_class = excluded.video_class", W },
	/* ended visits without a summary, oldest first */
	[R_UNSUMMARIZED] = { "apr_unsummarized",
		"SELECT visit_id FROM visits WHERE ended_at IS NOT NULL"
		" AND visit_id NOT IN (SELECT visit_id FROM visit_summaries) ORDER BY created_at, visit_id", RO },
	/* exclusive against visit_create's shared lock on the same client */
	[R_CLIENT_LOCK] = { "apr_client_lock",
		"SELECT pg_advisory_xact_lock(1095781459, hashtext($1::TEXT))", W },
	[R_DOOMED_CLEAR] = { "apr_doomed_clear", "DELETE FROM pg_temp.ap_doomed", W },
	[R_DOOMED_CLIENT] = { "apr_doomed_client",
		"INSERT INTO pg_temp.ap_doomed(visit_id) SELECT visit_id FROM visits WHERE client_code = $1"
		" ON CONFLICT DO NOTHING", W },
	/* the guard of `forget`, inside its transaction and after the lock */
	[R_CLIENT_OPEN] = { "apr_client_open",
		"SELECT count(*) FROM visits WHERE client_code = $1 AND state <> 'closed'", W },
	[R_DOOMED_OLD] = { "apr_doomed_old",
		"INSERT INTO pg_temp.ap_doomed(visit_id) SELECT visit_id FROM visits"
		" WHERE greatest(created_at, coalesce(admitted_at, 0), coalesce(ended_at, 0),"
		"  coalesce(closed_at, 0)) < $1::BIGINT ON CONFLICT DO NOTHING", W },
	[R_DOOMED_COUNT] = { "apr_doomed_count", "SELECT count(*) FROM pg_temp.ap_doomed", W },
	[R_DEL_ITEMS] = { "apr_del_items", "DELETE FROM answer_items WHERE pulse_id IN " DOOMED_PULSES, W },
	[R_DEL_SCORES] = { "apr_del_scores", "DELETE FROM scores WHERE pulse_id IN " DOOMED_PULSES, W },
	[R_DEL_ALERTS] = { "apr_del_alerts", "DELETE FROM alerts WHERE visit_id IN " DOOMED, W },
	[R_DEL_ANSWERS] = { "apr_del_answers", "DELETE FROM answers WHERE pulse_id IN " DOOMED_PULSES, W },
	[R_DEL_PULSES] = { "apr_del_pulses", "DELETE FROM pulses WHERE visit_id IN " DOOMED, W },
	[R_DEL_INCIDENTS] = { "apr_del_incidents", "DELETE FROM incidents WHERE visit_id IN " DOOMED, W },
	[R_DROP_SAMPLES] = { "apr_drop_samples", "SELECT ap_samples_drop_old($1::BIGINT)", W },
	[R_DEL_SAMPLES] = { "apr_del_samples", "DELETE FROM quality_samples WHERE visit_id IN " DOOMED, W },
	/* the visits' own events, and server-level events whose details name
	 * the client's code or one of the visits (as a JSON string) */
	[R_DEL_EVENTS] = { "apr_del_events",
		"DELETE FROM events WHERE visit_id IN " DOOMED
		" OR (visit_id IS NULL AND detail_json IS NOT NULL AND ("
		"  ($1::TEXT IS NOT NULL AND strpos(detail_json, '\"' || $1::TEXT || '\"') > 0)"
		"  OR EXISTS (SELECT 1 FROM pg_temp.ap_doomed d"
		"             WHERE strpos(detail_json, '\"' || d.visit_id || '\"') > 0)))", W },
	[R_DEL_PARTICIPANTS] = { "apr_del_participants",
		"DELETE FROM participants WHERE visit_id IN " DOOMED " OR ($1::TEXT IS NOT NULL AND code = $1::TEXT)", W },
	[R_DEL_SUMMARIES] = { "apr_del_summaries",
		"DELETE FROM visit_summaries WHERE visit_id IN " DOOMED
		" OR ($1::TEXT IS NOT NULL AND client_code = $1::TEXT)", W },
	[R_DEL_VISITS] = { "apr_del_visits", "DELETE FROM visits WHERE visit_id IN " DOOMED, W },
	[R_EVENT] = { "apr_event",
		"INSERT INTO events(visit_id, kind, detail_json, at) VALUES (NULL, $1, $2, $3::BIGINT)", W },
	[R_READ_VISITS] = { "apr_read_visits",
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, v.state, v.created_at,"
		" v.admitted_at, v.ended_at, v.closed_at, v.end_reason, s.visit_number, s.research_consent,"
		" s.client_instrument, s.client_total, s.therapist_instrument, s.therapist_total,"
		" s.mean_mos, s.loss_pct, s.freeze_s, s.incidents, s.alerts, v.instance_id, s.video_class"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" WHERE" FILTER_SQL " ORDER BY v.created_at, v.visit_id LIMIT $9::BIGINT", RO },
	[R_READ_END_SCORES] = { "apr_read_end_scores",
		"SELECT p.visit_id, p.role, p.instrument_id, sc.name, sc.value"
		" FROM visits v JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN pulses p ON p.visit_id = v.visit_id AND p.kind = 'end' AND p.role = 'client'"
		" JOIN answers a ON a.pulse_id = p.pulse_id AND a.final = 1"
		" JOIN scores sc ON sc.pulse_id = p.pulse_id"
		" WHERE" FILTER_SQL " AND ($8::INT = 0 OR a.research_consent = 1)"
		/* the latest end pulse: no later one (an anti-join, not a subquery per visit) */
		" AND NOT EXISTS (SELECT 1 FROM pulses x WHERE x.visit_id = p.visit_id AND x.role = p.role"
		"   AND x.kind = 'end' AND (x.created_at > p.created_at"
		"     OR (x.created_at = p.created_at AND x.pulse_id > p.pulse_id)))"
		" ORDER BY v.created_at, v.visit_id, p.role, sc.name", RO },
	[R_READ_ANSWERS] = { "apr_read_answers",
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, s.visit_number,"
		" v.created_at AS visit_created_at, s.research_consent AS visit_research_consent,"
		" p.pulse_id, p.role, p.kind, p.instrument_id, p.instrument_version, p.language,"
		" p.\"trigger\", p.delivered_via, p.created_at AS pulse_created_at, p.status,"
		" a.first_at, a.answered_at, a.time_to_answer_ms, a.final, a.dismissed,"
		" a.research_consent AS answer_research_consent, i.item_id, i.value"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN pulses p ON p.visit_id = v.visit_id JOIN answers a ON a.pulse_id = p.pulse_id"
		" JOIN answer_items i ON i.pulse_id = p.pulse_id"
		" WHERE" FILTER_SQL " AND ($8::INT = 0 OR a.research_consent = 1)"
		" ORDER BY v.created_at, v.visit_id, p.created_at, p.pulse_id, i.item_id", RO },
	[R_READ_SAMPLES] = { "apr_read_samples",
		"SELECT q.visit_id, v.modality, q.leg, q.medium, q.at, q.metrics_json AS metrics_raw"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" JOIN quality_samples q ON q.visit_id = v.visit_id"
		" WHERE" FILTER_SQL " ORDER BY v.created_at, v.visit_id, q.at, q.id", RO },
	[R_VISIT_ONE] = { "apr_visit_one",
		"SELECT v.visit_id, v.therapist_code, v.client_code, v.modality, v.state, v.created_at,"
		" v.admitted_at, v.ended_at, v.closed_at, v.end_reason, s.visit_number, s.research_consent,"
		" s.client_instrument, s.client_total, s.therapist_instrument, s.therapist_total,"
		" s.mean_mos, s.loss_pct, s.freeze_s, s.incidents, s.alerts, v.instance_id, s.video_class"
		" FROM visits v LEFT JOIN visit_summaries s ON s.visit_id = v.visit_id"
		" WHERE v.visit_id = $1 AND ($2::INT = 0 OR s.research_consent = 1)", RO },
	[R_VISIT_PARTICIPANTS] = { "apr_visit_participants",
		"SELECT role, code, research_consent, language, joined_at FROM participants"
		" WHERE visit_id = $1 ORDER BY joined_at, id", RO },
	[R_VISIT_PULSES] = { "apr_visit_pulses",
		"SELECT p.pulse_id, p.role, p.kind, p.instrument_id, p.instrument_version, p.language,"
		" p.\"trigger\", p.delivered_via, p.created_at, p.expires_at, p.status, p.status_at,"
		" p.quality_json, a.pulse_id IS NOT NULL AS has_answer, a.final, a.dismissed, a.first_at,"
		" a.answered_at, a.time_to_answer_ms, a.research_consent"
		" FROM pulses p LEFT JOIN answers a ON a.pulse_id = p.pulse_id"
		" WHERE p.visit_id = $1 ORDER BY p.created_at, p.pulse_id", RO },
	[R_VISIT_ITEMS] = { "apr_visit_items",
		"SELECT i.pulse_id, i.item_id, i.value FROM answer_items i"
		" JOIN pulses p ON p.pulse_id = i.pulse_id WHERE p.visit_id = $1", RO },
	[R_VISIT_SCORES] = { "apr_visit_scores",
		"SELECT sc.pulse_id, sc.name, sc.value FROM scores sc"
		" JOIN pulses p ON p.pulse_id = sc.pulse_id WHERE p.visit_id = $1", RO },
	[R_VISIT_ALERTS] = { "apr_visit_alerts",
		"SELECT pulse_id, rule, score_name, score, threshold, quality_json, created_at"
		" FROM alerts WHERE visit_id = $1 ORDER BY created_at, id", RO },
	[R_VISIT_INCIDENTS] = { "apr_visit_incidents",
		"SELECT leg, medium, kind, started_at, ended_at, detail_json FROM incidents"
		" WHERE visit_id = $1 ORDER BY started_at, id", RO },
	/* per leg and medium over the whole visit, as the SQLite backend
	 * computes it; NUMERIC keeps integers integers (sums of counts) */
	[R_VISIT_LEGS] = { "apr_visit_legs",
		"SELECT leg, medium, count(*) AS samples, min(at) AS first_at, max(at) AS last_at,"
		" sum(" M("seconds") ") AS seconds,"
		" coalesce(100.0 * sum(" M("lost") ") / nullif(sum(" M("expected") "), 0),"
		"   avg(" M("loss_pct") ")) AS loss_pct,"
		" max(" M("loss_pct") ") AS loss_pct_max,"
		" avg(" M("jitter_ms") ") AS jitter_ms,"
		" max(" M("jitter_ms") ") AS jitter_ms_max,"
		" avg(" M("rtt_ms") ") AS rtt_ms,"
		" max(" M("rtt_max_ms") ") AS rtt_ms_max,"
		" avg(" M("bitrate_kbps") ") AS bitrate_kbps,"
		" avg(" M("fps") ") AS fps,"
		" sum(" M("packets") ") AS packets,"
		" sum(" M("lost") ") AS lost,"
		" sum(" M("freezes") ") AS freezes,"
		" sum(" M("freeze_s") ") AS freeze_s,"
		" sum(" M("stalls") ") AS stalls,"
		" sum(" M("stall_s") ") AS stall_s"
		" FROM (SELECT leg, medium, at, ap_json_object(metrics_json) AS m"
		"       FROM quality_samples WHERE visit_id = $1) x"
		" GROUP BY leg, medium ORDER BY leg, medium", RO },
	[R_VISIT_EVENTS] = { "apr_visit_events",
		"SELECT kind, detail_json, at FROM events WHERE visit_id = $1 ORDER BY at, id", RO },
};
#undef W
#undef RO

const pg_stmt *const store_pg_report_stmts = report_stmts;
const int store_pg_report_n_stmts = R__COUNT;

/* --- helpers --------------------------------------------------------------------------- */

static PGresult *run(PGconn *conn, int st, int n, const char *const *params, pg_fault *f) {
	return pg_run(conn, report_stmts[st].name, n, params, f);
}

static gint64 first_int(const PGresult *res) {
	return PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
}

/* Column c of row r as the SQLite backend would give it. */
static json_t *column_json(const PGresult *res, int r, int c) {
	if(PQgetisnull(res, r, c))
		return json_null();
	const char *t = PQgetvalue(res, r, c);
	switch(PQftype(res, c)) {
		case 20: case 21: case 23:               /* int8, int2, int4 */
			return json_integer((json_int_t)g_ascii_strtoll(t, NULL, 10));
		case 16:                                 /* bool: SQLite has 0/1 */
			return json_integer(t[0] == 't' ? 1 : 0);
		case 700: case 701:                      /* float4, float8: REAL */
			return json_real(g_ascii_strtod(t, NULL));
		case 1700:                               /* numeric: an integer stays one */
			if(strpbrk(t, ".eE") == NULL && strpbrk(t, "NnIi") == NULL)
				return json_integer((json_int_t)g_ascii_strtoll(t, NULL, 10));
			return json_real(g_ascii_strtod(t, NULL));
		default:
			if(g_str_has_suffix(PQfname(res, c), "_json"))
				return store_rows_parsed(t);
			return json_string(t);
	}
}

json_t *pg_row_json(const PGresult *res, int row) {
	json_t *o = json_object();
	for(int c = 0; c < PQnfields(res); c++)
		store_rows_set(o, PQfname(res, c), column_json(res, row, c));
	return o;
}

/* --- summaries ------------------------------------------------------------------------- */

static store_rc summarize(PGconn *conn, const char *visit_id, gint64 *changed, gboolean *retry,
		char *err, size_t errlen) {
	pg_fault f;
	const char *p[1] = { visit_id };
	PGresult *res = run(conn, R_SUMMARIZE, 1, p, &f);
	if(res == NULL)
		return pg_classify(&f, "visit_summarize", retry, err, errlen);
	*changed = g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

store_rc pg_report_summarize(PGconn *conn, const char *visit_id, gboolean in_tx,
		gboolean *retry, char *err, size_t errlen) {
	pg_fault f;
	if(!in_tx && pg_exec(conn, "BEGIN", &f) != 0)
		return pg_classify(&f, "visit_summarize", retry, err, errlen);
	gint64 changed = 0;
	store_rc rc = summarize(conn, visit_id, &changed, retry, err, errlen);
	if(rc == STORE_OK && changed == 0) {
		g_snprintf(err, errlen, "visit %s is not stored", visit_id);
		rc = STORE_NOT_FOUND;
	}
	return in_tx ? rc : pg_tx_end(conn, rc, "visit_summarize", retry, err, errlen);
}

int pg_report_backfill(PGconn *conn, char *err, size_t errlen) {
	pg_fault f;
	char e[256] = "";
	if(pg_exec(conn, "BEGIN", &f) != 0) {
		g_snprintf(err, errlen, "cannot summarize older visits: %s", f.msg);
		return -1;
	}
	PGresult *res = run(conn, R_UNSUMMARIZED, 0, NULL, &f);
	store_rc rc = res ? STORE_OK : pg_classify(&f, "backfill", NULL, e, sizeof(e));
	gint64 n = 0;
	for(int i = 0; rc == STORE_OK && i < PQntuples(res); i++) {
		gint64 changed = 0;
		rc = summarize(conn, PQgetvalue(res, i, 0), &changed, NULL, e, sizeof(e));
		n += changed;
	}
	PQclear(res);
	if(pg_tx_end(conn, rc, "backfill", NULL, e, sizeof(e)) != STORE_OK) {
		g_snprintf(err, errlen, "cannot summarize older visits: %s", e);
		return -1;
	}
	return (int)n;
}

/* --- erasure ----------------------------------------------------------------------------- */

/* Delete the visits listed in ap_doomed and everything about them
 * (client_code, if not NULL, also catches rows carrying the code outside
 * those visits); cutoff_us > 0 (retention) first drops the sample months
 * wholly before it that hold only doomed visits. Inside the caller's
 * transaction. Fills detail with the counts and *rows with their sum. */
static store_rc erase_doomed(PGconn *conn, const char *what, const char *client_code,
		gint64 cutoff_us, json_t *detail, gint64 *rows, gboolean *retry, char *err, size_t errlen) {
	pg_fault f;
	PGresult *res = run(conn, R_DOOMED_COUNT, 0, NULL, &f);
	if(res == NULL)
		return pg_classify(&f, what, retry, err, errlen);
	gint64 visits = first_int(res);
	PQclear(res);
	gint64 dropped = 0;
	if(cutoff_us > 0) {
		char c[32];
		g_snprintf(c, sizeof(c), "%" G_GINT64_FORMAT, cutoff_us);
		const char *p[1] = { c };
		if((res = run(conn, R_DROP_SAMPLES, 1, p, &f)) == NULL)
			return pg_classify(&f, what, retry, err, errlen);
		dropped = first_int(res);
		PQclear(res);
	}
	json_t *tables = json_object();
	gint64 total = 0;
	for(size_t i = 0; i < G_N_ELEMENTS(erase_steps); i++) {
		int st = erase_steps[i].st;
		gboolean takes_code = st == R_DEL_EVENTS || st == R_DEL_PARTICIPANTS || st == R_DEL_SUMMARIES;
		const char *p[1] = { client_code };
		if((res = run(conn, st, takes_code ? 1 : 0, p, &f)) == NULL) {
			json_decref(tables);
			return pg_classify(&f, what, retry, err, errlen);
		}
		gint64 n = g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		if(st == R_DEL_SAMPLES)
			n += dropped;
		total += n;
		json_object_set_new(tables, erase_steps[i].table, json_integer((json_int_t)n));
	}
	store_rows_erased(detail, tables, total, visits);
	*rows = total;
	return STORE_OK;
}

static store_rc log_event(PGconn *conn, const char *kind, json_t *detail, gint64 at_us,
		gboolean *retry, char *err, size_t errlen) {
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	char at[32];
	g_snprintf(at, sizeof(at), "%" G_GINT64_FORMAT, at_us);
	const char *p[3] = { kind, text, at };
	pg_fault f;
	PGresult *res = run(conn, R_EVENT, 3, p, &f);
	free(text);
	if(res == NULL)
		return pg_classify(&f, kind, retry, err, errlen);
	PQclear(res);
	return STORE_OK;
}

/* The client's advisory lock, then the guard: refused while a visit of
 * theirs is not closed. */
static store_rc client_guard(PGconn *conn, const char *client_code, gboolean *retry,
		char *err, size_t errlen) {
	pg_fault f;
	const char *p[1] = { client_code };
	PGresult *res = run(conn, R_CLIENT_LOCK, 1, p, &f);
	if(res == NULL)
		return pg_classify(&f, "forget", retry, err, errlen);
	PQclear(res);
	if((res = run(conn, R_CLIENT_OPEN, 1, p, &f)) == NULL)
		return pg_classify(&f, "forget", retry, err, errlen);
	gint64 open = first_int(res);
	PQclear(res);
	if(open > 0) {
		g_snprintf(err, errlen, "the client has %lld visit%s not closed yet: erase after "
			"%s ended and closed", (long long)open, open == 1 ? "" : "s", open == 1 ? "it has" : "they have");
		return STORE_REFUSED;
	}
	return STORE_OK;
}

/* One erasure job: (guard,) fill the list, erase, log; one transaction. */
static store_rc erase(PGconn *conn, const char *what, const char *client_code,
		gint64 cutoff_us, json_t *detail, gint64 at_us, gint64 *rows, gboolean *retry,
		char *err, size_t errlen) {
	*rows = 0;
	pg_fault f;
	if(pg_exec(conn, "BEGIN", &f) != 0) {
		json_decref(detail);
		return pg_classify(&f, what, retry, err, errlen);
	}
	store_rc rc = client_code ? client_guard(conn, client_code, retry, err, errlen) : STORE_OK;
	PGresult *res = NULL;
	if(rc == STORE_OK && (res = run(conn, R_DOOMED_CLEAR, 0, NULL, &f)) == NULL)
		rc = pg_classify(&f, what, retry, err, errlen);
	PQclear(res);
	if(rc == STORE_OK) {
		char c[32];
		g_snprintf(c, sizeof(c), "%" G_GINT64_FORMAT, cutoff_us);
		const char *p[1] = { client_code ? client_code : c };
		if((res = run(conn, client_code ? R_DOOMED_CLIENT : R_DOOMED_OLD, 1, p, &f)) == NULL)
			rc = pg_classify(&f, what, retry, err, errlen);
		PQclear(res);
	}
	if(rc == STORE_OK)
		rc = erase_doomed(conn, what, client_code, client_code ? 0 : cutoff_us, detail, rows,
			retry, err, errlen);
	if(rc == STORE_OK)
		rc = log_event(conn, what, detail, at_us, retry, err, errlen);
	json_decref(detail);
	rc = pg_tx_end(conn, rc, what, retry, err, errlen);
	if(rc != STORE_OK)
		*rows = 0;
	return rc;
}

store_rc pg_report_forget(PGconn *conn, const char *client_code, gint64 at_us,
		gint64 *rows, gboolean *retry, char *err, size_t errlen) {
	return erase(conn, "forget", client_code, 0, json_object(), at_us, rows, retry, err, errlen);
}

store_rc pg_report_retention(PGconn *conn, int days, gint64 now_us, gint64 *rows,
		gboolean *retry, char *err, size_t errlen) {
	gint64 cutoff = now_us - (gint64)days * 86400 * G_USEC_PER_SEC;
	json_t *detail = json_pack("{s:i, s:I}", "days", days, "cutoff", (json_int_t)cutoff);
	return erase(conn, "retention", NULL, cutoff, detail, now_us, rows, retry, err, errlen);
}

/* --- reads ------------------------------------------------------------------------------- */

/* Every row of a one-visit statement ($1 = visit_id) into an array. */
static json_t *rows_of(PGconn *conn, int st, const char *visit_id, pg_fault *f) {
	const char *p[1] = { visit_id };
	PGresult *res = run(conn, st, 1, p, f);
	if(res == NULL)
		return NULL;
	json_t *out = json_array();
	for(int i = 0; i < PQntuples(res); i++)
		json_array_append_new(out, pg_row_json(res, i));
	PQclear(res);
	return out;
}

/* The nested object of STORE_READ_VISIT (docs/storage.md); -1 on failure. */
static int read_visit(PGconn *conn, const store_report_filter *f, json_t **out, pg_fault *fault) {
	*out = NULL;
	const char *p[2] = { f->visit_id, f->research_only ? "1" : "0" };
	PGresult *res = run(conn, R_VISIT_ONE, 2, p, fault);
	if(res == NULL)
		return -1;
	json_t *visit = PQntuples(res) > 0 ? pg_row_json(res, 0) : NULL;
	PQclear(res);
	if(visit == NULL)
		return 0;
	static const int parts[8] = { R_VISIT_PARTICIPANTS, R_VISIT_PULSES, R_VISIT_ITEMS, R_VISIT_SCORES,
		R_VISIT_ALERTS, R_VISIT_INCIDENTS, R_VISIT_LEGS, R_VISIT_EVENTS };
	json_t *got[8] = { NULL };
	int rc = 0;
	for(int i = 0; i < 8 && rc == 0; i++)
		if((got[i] = rows_of(conn, parts[i], f->visit_id, fault)) == NULL)
			rc = -1;
	if(rc != 0) {
		json_decref(visit);
		for(int i = 0; i < 8; i++)
			json_decref(got[i]);
		return -1;
	}
	*out = store_rows_visit(visit, got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7]);
	return 0;
}

/* Bind a filter and stream the rows of statement st through cb. */
static int stream(PGconn *conn, int st, store_report_what what, const store_report_filter *f,
		store_row_cb cb, void *user, pg_fault *fault) {
	char from[32], to[32], limit[32];
	g_snprintf(from, sizeof(from), "%" G_GINT64_FORMAT, f->from_us);
	g_snprintf(to, sizeof(to), "%" G_GINT64_FORMAT, f->to_us);
	g_snprintf(limit, sizeof(limit), "%d", f->limit);
	const char *p[9] = { f->visit_id, f->therapist_code, f->client_code, f->modality,
		f->instrument_id, f->from_us ? from : NULL, f->to_us ? to : NULL,
		f->research_only ? "1" : "0", f->limit > 0 ? limit : NULL };
	/* row by row (single-row mode): an export of a million samples never
	 * sits in memory whole. Stopping early reads the rest without looking
	 * at it: a cancel request could reach the next statement instead */
	if(!PQsendQueryPrepared(conn, report_stmts[st].name, st == R_READ_VISITS ? 9 : 8, p,
			NULL, NULL, 0) || !PQsetSingleRowMode(conn)) {
		pg_fault_set(fault, conn, NULL);
		return -1;
	}
	int rc = 0;
	gboolean stopped = FALSE;
	PGresult *res;
	while((res = PQgetResult(conn)) != NULL) {
		ExecStatusType s = PQresultStatus(res);
		if(s == PGRES_SINGLE_TUPLE && !stopped) {
			json_t *row = pg_row_json(res, 0);
			store_rows_flags(row, what);
			stopped = cb(row, user) != 0;
			json_decref(row);
		} else if(s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK && !stopped && rc == 0) {
			pg_fault_set(fault, conn, res);
			rc = -1;
		}
		PQclear(res);
	}
	return rc;
}

store_rc pg_report_rows(PGconn *conn, store_report_what what, const store_report_filter *f,
		store_row_cb cb, void *user, char *err, size_t errlen) {
	pg_fault fault;
	/* one consistent state of the database for the whole read */
	if(pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &fault) != 0)
		return pg_classify(&fault, "report", NULL, err, errlen);
	store_rc rc = STORE_OK;
	int r;
	if(what == STORE_READ_VISIT) {
		json_t *v = NULL;
		r = read_visit(conn, f, &v, &fault);
		if(r == 0 && v == NULL) {
			g_snprintf(err, errlen, "visit %s is not stored%s", f->visit_id,
				f->research_only ? " (or has no research consent)" : "");
			rc = STORE_NOT_FOUND;
		} else if(r == 0) {
			cb(v, user);
		}
		json_decref(v);
	} else {
		int st = what == STORE_READ_VISITS ? R_READ_VISITS :
			what == STORE_READ_END_SCORES ? R_READ_END_SCORES :
			what == STORE_READ_ANSWERS ? R_READ_ANSWERS : R_READ_SAMPLES;
		r = stream(conn, st, what, f, cb, user, &fault);
	}
	if(r != 0)
		rc = pg_classify(&fault, "report", NULL, err, errlen);
	/* a read: COMMIT only ends the snapshot */
	return pg_tx_end(conn, rc, "report", NULL, err, errlen);
}
