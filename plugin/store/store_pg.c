/*
 * store_pg.c — the PostgreSQL backend of the store (store.h): opening,
 * the connections of the lanes and their reconnection, the transactions
 * (and a lost COMMIT), and the operations of one statement, the start-up
 * repair and the call path's reads. The answer rules are in
 * store_pg_answers.c, samples and their partitions in store_pg_samples.c,
 * the schema in store_pg_migrations.c, reports, erasure and retention in
 * store_pg_report.c, libpq's plumbing in store_pg_conn.c.
 *
 * Each lane of store.c (the writer, the analytics lane) has a connection
 * of its own, used by that lane's thread only. Every write is BEGIN ...
 * COMMIT, and a job's callback says STORE_OK only after COMMIT returned
 * success (synchronous_commit on: the commit is on the server's disk).
 * Checks such as "is this pulse already final" run inside the transaction
 * on rows locked FOR UPDATE, so two instances sharing the database cannot
 * both finalise one pulse; the schema's triggers say the same for any
 * other writer. Values are always bound parameters of statements prepared
 * once per connection; no SQL is built from values.
 *
 * Faults: when the server goes away (the connection broke; SQLSTATE class
 * 08, 57P01/57P02/57P03; class 53, out of resources; class 58, I/O) an
 * operation returns STORE_UNAVAILABLE, which store.c turns into retries of
 * what must be kept and refusals of answers; the next operation resets the
 * connection (connect_timeout 3 s, so a lane never waits long) and
 * prepares its statements again. Serialization failures and deadlocks
 * run the transaction again, a few times, here. A COMMIT whose outcome is
 * unknown (the connection broke while it was on its way) is never taken
 * for success: STORE_UNAVAILABLE, and the transaction id is kept; when the
 * same job comes again (a kept job retried, an answer sent again) the
 * server is asked whether that transaction committed, so a retried job is
 * not stored twice.
 */
#include "store_pg.h"
#include "store_backend.h"
#include "store_rows.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PG_RETRIES 3                   /* serialization failures, deadlocks */

/* --- statements ---------------------------------------------------------------------- */

enum {
	ST_CLIENT_LOCK_SHARED, ST_VISIT_INSERT, ST_VISIT_STATE, ST_VISIT_ENDED,
	ST_OPEN_VISITS, ST_REPAIR_PULSES, ST_REPAIR_INCIDENTS, ST_REPAIR_VISIT,
	ST_INSTANCE_SEEN, ST_VISIT_LOCATE, ST_PARTICIPANT_INSERT, ST_PULSE_INSERT,
	ST_ALERT_INSERT, ST_EVENT_INSERT, ST_CLIENT_SCORES, ST_PULSE_QUALITY, ST_INCIDENT_INSERT,
	ST_VISIT_EXISTS, ST_VISIT_PULSE_QUALITY, ST_VISIT_INCIDENTS, ST_VISIT_SAMPLES,
	ST_XACT_STATUS,
	ST__COUNT
};

#define W TRUE                         /* the statement writes */
#define R FALSE
static const pg_stmt statements[ST__COUNT] = {
	/* visit_create and forget meet on the client's advisory lock: a
	 * visit being created for a client holds it shared, the erasure
	 * exclusive, so a visit cannot slip in between forget's check and its
	 * deletes */
	[ST_CLIENT_LOCK_SHARED] = { "ap_client_lock_shared",
		"SELECT pg_advisory_xact_lock_shared(1095781459, hashtext($1::TEXT))", W },
	[ST_VISIT_INSERT] = { "ap_visit_insert",
		"INSERT INTO visits(visit_id, therapist_code, client_code, modality, state, created_at,"
		" instance_id, invite_sha256) VALUES ($1, $2, $3, $4, 'created', $5::BIGINT, $6, $7)", W },
	/* the *_at columns keep the first time the visit entered that state;
	 * a closed visit's invite routes nothing any more */
	[ST_VISIT_STATE] = { "ap_visit_state",
		"UPDATE visits SET state = $2::TEXT,"
		" invite_sha256 = CASE WHEN $2::TEXT = 'closed' THEN NULL ELSE invite_sha256 END,"
		" admitted_at = CASE WHEN $2::TEXT = 'live' THEN coalesce(admitted_at, $3::BIGINT) ELSE admitted_at END,"
		" ended_at = CASE WHEN $2::TEXT = 'ended' THEN coalesce(ended_at, $3::BIGINT) ELSE ended_at END,"
		" closed_at = CASE WHEN $2::TEXT = 'closed' THEN coalesce(closed_at, $3::BIGINT) ELSE closed_at END"
		" WHERE visit_id = $1", W },
	[ST_VISIT_ENDED] = { "ap_visit_ended",
		"UPDATE visits SET state = 'ended', ended_at = coalesce(ended_at, $3::BIGINT),"
		" end_reason = coalesce(end_reason, $2::TEXT) WHERE visit_id = $1 AND state <> 'closed'", W },
	/* the start-up repair: each open visit of the instance (locked) with
	 * its last recorded activity */
	[ST_OPEN_VISITS] = { "ap_open_visits",
		"SELECT v.visit_id, greatest(v.created_at, coalesce(v.admitted_at, 0), coalesce(v.ended_at, 0),"
		"  coalesce((SELECT max(at) FROM quality_samples q WHERE q.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(status_at) FROM pulses p WHERE p.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(a.answered_at) FROM answers a JOIN pulses p ON p.pulse_id = a.pulse_id"
		"            WHERE p.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(coalesce(ended_at, started_at)) FROM incidents i WHERE i.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(joined_at) FROM participants j WHERE j.visit_id = v.visit_id), 0))"
		" FROM visits v WHERE v.state <> 'closed' AND (v.instance_id = $1::TEXT OR v.instance_id IS NULL)"
		" ORDER BY v.visit_id FOR UPDATE OF v", W },
	[ST_REPAIR_PULSES] = { "ap_repair_pulses",
		"UPDATE pulses SET status = 'expired', status_at = greatest(status_at, $2::BIGINT)"
		" WHERE visit_id = $1 AND status IN ('pending','delivered','partial')", W },
	[ST_REPAIR_INCIDENTS] = { "ap_repair_incidents",
		"UPDATE incidents SET ended_at = greatest(started_at, $2::BIGINT)"
		" WHERE visit_id = $1 AND ended_at IS NULL", W },
	[ST_REPAIR_VISIT] = { "ap_repair_visit",
		"UPDATE visits SET state = 'closed', ended_at = coalesce(ended_at, $2::BIGINT),"
		" end_reason = coalesce(end_reason, 'interrupted'), closed_at = $3::BIGINT, invite_sha256 = NULL"
		" WHERE visit_id = $1", W },
	[ST_INSTANCE_SEEN] = { "ap_instance_seen",
		"INSERT INTO instances(instance_id, public_servers, started_at, seen_at)"
		" VALUES ($1, $2, $3::BIGINT, $4::BIGINT) ON CONFLICT (instance_id) DO UPDATE SET"
		" public_servers = excluded.public_servers, started_at = excluded.started_at,"
		" seen_at = excluded.seen_at", W },
	[ST_VISIT_LOCATE] = { "ap_visit_locate",
		"SELECT coalesce(v.instance_id, ''), coalesce(i.public_servers, '[]') FROM visits v"
		" LEFT JOIN instances i ON i.instance_id = v.instance_id"
		" WHERE v.state <> 'closed' AND (($1::TEXT IS NOT NULL AND v.visit_id = $1::TEXT)"
		"  OR ($1::TEXT IS NULL AND v.invite_sha256 = $2::TEXT))", R },
	[ST_PARTICIPANT_INSERT] = { "ap_participant_insert",
		"INSERT INTO participants(visit_id, role, code, research_consent, language, joined_at)"
		" VALUES ($1, $2, $3, $4::SMALLINT, $5, $6::BIGINT)", W },
	[ST_PULSE_INSERT] = { "ap_pulse_insert",
		"INSERT INTO pulses(pulse_id, visit_id, role, kind, instrument_id, instrument_version,"
		" language, \"trigger\", delivered_via, created_at, expires_at, status, status_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::BIGINT, $11::BIGINT, 'pending', $10::BIGINT)", W },
	[ST_ALERT_INSERT] = { "ap_alert_insert",
		"INSERT INTO alerts(visit_id, pulse_id, rule, score_name, score, threshold,"
		" quality_json, created_at) VALUES ($1, $2, $3, $4, $5::FLOAT8, $6::FLOAT8, $7, $8::BIGINT)", W },
	[ST_EVENT_INSERT] = { "ap_event_insert",
		"INSERT INTO events(visit_id, kind, detail_json, at) VALUES ($1, $2, $3, $4::BIGINT)", W },
	/* the inner query takes the `limit` most recent (NULL: all), the outer
	 * one puts them oldest first */
	[ST_CLIENT_SCORES] = { "ap_client_scores",
		"SELECT value FROM ("
		"  SELECT s.value AS value, a.answered_at AS t, p.pulse_id AS pid"
		"  FROM visits v"
		"  JOIN pulses p ON p.visit_id = v.visit_id"
		"  JOIN answers a ON a.pulse_id = p.pulse_id"
		"  JOIN scores s ON s.pulse_id = p.pulse_id"
		"  WHERE v.client_code = $1 AND p.instrument_id = $2 AND p.role = 'client'"
		"    AND s.name = $3 AND a.final = 1 AND ($4::TEXT IS NULL OR v.visit_id <> $4::TEXT)"
		"  ORDER BY a.answered_at DESC, p.pulse_id DESC LIMIT $5::BIGINT"
		") x ORDER BY t ASC, pid ASC", R },
	[ST_PULSE_QUALITY] = { "ap_pulse_quality",
		"UPDATE pulses SET quality_json = $2 WHERE pulse_id = $1", W },
	[ST_INCIDENT_INSERT] = { "ap_incident_insert",
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at, ended_at, detail_json)"
		" VALUES ($1, $2, $3, $4, $5::BIGINT, $6::BIGINT, $7)", W },
	[ST_VISIT_EXISTS] = { "ap_visit_exists", "SELECT 1 FROM visits WHERE visit_id = $1", R },
	[ST_VISIT_PULSE_QUALITY] = { "ap_visit_pulse_quality",
		"SELECT pulse_id, quality_json FROM pulses WHERE visit_id = $1 ORDER BY created_at, pulse_id", R },
	[ST_VISIT_INCIDENTS] = { "ap_visit_incidents",
		"SELECT leg, medium, kind, started_at, ended_at, detail_json FROM incidents"
		" WHERE visit_id = $1 ORDER BY started_at, id", R },
	[ST_VISIT_SAMPLES] = { "ap_visit_samples",
		"SELECT count(*) FROM quality_samples WHERE visit_id = $1", R },
	/* did the transaction whose COMMIT we lost commit? */
	[ST_XACT_STATUS] = { "ap_xact_status", "SELECT pg_xact_status($1::XID8)", R },
};
#undef W
#undef R

gint store_pg_test_cut_after_commit = 0;


/* --- text parameters ---------------------------------------------------------------- */


const char *pg_i64(pg_num buf, gint64 v) {
	g_snprintf(buf, sizeof(pg_num), "%" G_GINT64_FORMAT, v);
	return buf;
}

const char *pg_dbl(pg_num buf, double v) {
	g_snprintf(buf, sizeof(pg_num), "%.17g", v);    /* exact round trip */
	return buf;
}

/* What a job is, to know it again when it is retried: its operation and
 * the parameters of its main statement. */
char *pg_fingerprint(const char *op, int n, const char *const *params) {
	GString *s = g_string_new(op);
	for(int i = 0; i < n; i++) {
		g_string_append_c(s, '\x1f');
		if(params[i])
			g_string_append(s, params[i]);
		else
			g_string_append_c(s, '\x1e');
	}
	return g_string_free(s, FALSE);
}

/* --- the connection --------------------------------------------------------------- */

/* Before each operation: a connection that broke is reset (bounded by
 * connect_timeout) and set up again. */
store_rc pg_ensure_conn(store_backend *b, const char *what, char *err, size_t errlen) {
	if(PQstatus(b->conn) != CONNECTION_OK) {
		b->ready = FALSE;
		PQreset(b->conn);
		if(PQstatus(b->conn) != CONNECTION_OK) {
			char msg[200];
			g_strlcpy(msg, PQerrorMessage(b->conn), sizeof(msg));
			pg_tidy(msg, b->secret);
			g_snprintf(err, errlen, "%s: the PostgreSQL server cannot be reached now (%s)", what, msg);
			return STORE_UNAVAILABLE;
		}
	}
	if(!b->ready) {
		char serr[256];
		if(pg_session_settings(b->conn, b->read_only, serr, sizeof(serr)) != 0
				|| (b->analytics && pg_analytics_session(b->conn, serr, sizeof(serr)) < 0)
				|| pg_prepare_all(b->conn, statements, ST__COUNT, b->read_only, serr, sizeof(serr)) != 0
				|| pg_prepare_all(b->conn, store_pg_answer_stmts, store_pg_answer_n_stmts,
					b->read_only, serr, sizeof(serr)) != 0
				|| pg_prepare_all(b->conn, store_pg_sample_stmts, store_pg_sample_n_stmts,
					b->read_only, serr, sizeof(serr)) != 0
				|| pg_prepare_all(b->conn, store_pg_report_stmts, store_pg_report_n_stmts,
					b->read_only, serr, sizeof(serr)) != 0) {
			pg_tidy(serr, b->secret);
			g_snprintf(err, errlen, "%s: %s", what, serr);
			return PQstatus(b->conn) == CONNECTION_OK ? STORE_ERR : STORE_UNAVAILABLE;
		}
		b->ready = TRUE;
	}
	return STORE_OK;
}

static void clear_pending(store_backend *b) {
	g_clear_pointer(&b->pending_xid, g_free);
	g_clear_pointer(&b->pending_fp, g_free);
}

/* Start a write transaction for job fp (may be NULL). STORE_OK: go on;
 * *done set: the job is this one whose COMMIT was lost, and it did commit
 * (nothing to do). Else a failure (err). */
store_rc pg_tx_begin(store_backend *b, const char *what, const char *fp, gboolean *done,
		char *err, size_t errlen) {
	*done = FALSE;
	store_rc rc = pg_ensure_conn(b, what, err, errlen);
	if(rc != STORE_OK)
		return rc;
	if(b->pending_xid) {
		const char *params[1] = { b->pending_xid };
		PGresult *res = pg_run(b->conn, statements[ST_XACT_STATUS].name, 1, params, &b->f);
		if(res == NULL)
			return pg_classify(&b->f, what, NULL, err, errlen);
		const char *status = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
		gboolean same = fp && b->pending_fp && strcmp(fp, b->pending_fp) == 0;
		if(same && strcmp(status, "committed") == 0)
			*done = TRUE;
		if(same && strcmp(status, "in progress") == 0) {
			PQclear(res);
			g_snprintf(err, errlen, "%s: an earlier attempt is still being committed", what);
			return STORE_UNAVAILABLE;
		}
		PQclear(res);
		clear_pending(b);
		if(*done)
			return STORE_OK;
	}
	PGresult *res = PQexec(b->conn, "BEGIN; SELECT pg_current_xact_id()");
	if(PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fault_set(&b->f, b->conn, res);
		PQclear(res);
		return pg_classify(&b->f, what, NULL, err, errlen);
	}
	g_strlcpy(b->xid, PQgetvalue(res, 0, 0), sizeof(b->xid));
	PQclear(res);
	return STORE_OK;
}

/* End the write transaction of job fp; a lost COMMIT keeps its
 * transaction id and the job, to be asked about when the job comes again. */
store_rc pg_tx_finish(store_backend *b, store_rc rc, const char *what, const char *fp,
		gboolean *retry, char *err, size_t errlen) {
	gboolean was_ok = rc == STORE_OK;
	if(was_ok && g_atomic_int_compare_and_exchange(&store_pg_test_cut_after_commit, 1, 0)
			&& PQsendQuery(b->conn, "COMMIT") && PQflush(b->conn) == 0)
		shutdown(PQsocket(b->conn), SHUT_RDWR);        /* the COMMIT is on its way; its answer never comes */
	rc = pg_tx_end(b->conn, rc, what, retry, err, errlen);
	if(was_ok && rc == STORE_UNAVAILABLE && PQstatus(b->conn) != CONNECTION_OK && b->xid[0]) {
		clear_pending(b);
		b->pending_xid = g_strdup(b->xid);
		b->pending_fp = fp ? g_strdup(fp) : NULL;
	}
	b->xid[0] = '\0';
	return rc;
}

/* A failed statement: its rc and sentence. */
store_rc pg_fail(store_backend *b, const char *what, gboolean *retry, char *err, size_t errlen) {
	return pg_classify(&b->f, what, retry, err, errlen);
}

/* Run statement st with params in the open transaction; the result or
 * NULL (b->f). */
static PGresult *run(store_backend *b, int st, int n, const char *const *params) {
	return pg_run(b->conn, statements[st].name, n, params, &b->f);
}

/* The whole transaction, run again after a serialization failure or a
 * deadlock (a few times). */
store_rc pg_retrying(store_backend *b, pg_tx_fn fn, const void *args, char *err, size_t errlen) {
	for(int try = 0; ; try++) {
		gboolean again = FALSE;
		store_rc rc = fn(b, args, &again, err, errlen);
		if(!again || try >= PG_RETRIES)
			return rc;
	}
}

store_rc pg_step(store_backend *b, const char *stmt, int n, const char *const *params,
		const char *what, gboolean *retry, char *err, size_t errlen) {
	PGresult *res = pg_run(b->conn, stmt, n, params, &b->f);
	if(res == NULL)
		return pg_fail(b, what, retry, err, errlen);
	PQclear(res);
	return STORE_OK;
}

gint64 pg_changes(PGresult *res) {
	return g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
}

/* --- single-statement writes -------------------------------------------------------- */

typedef struct write1 {
	const char *what;
	int st;                            /* the statement */
	int n;
	const char *const *params;
	const char *not_found;             /* if set ("visit", "pulse"): 0 rows changed is
	                                    * STORE_NOT_FOUND, "<it> <params[0]> is not stored" */
	const char *not_found_why;         /* appended to that sentence, or NULL */
	const char *lock_client;           /* if set: the client's advisory lock, shared */
} write1;

static store_rc write1_tx(store_backend *b, const void *args, gboolean *retry, char *err, size_t errlen) {
	const write1 *w = args;
	char *fp = pg_fingerprint(w->what, w->n, w->params);
	gboolean done;
	store_rc rc = pg_tx_begin(b, w->what, fp, &done, err, errlen);
	if(rc != STORE_OK || done) {
		g_free(fp);
		return rc;
	}
	PGresult *res = NULL;
	if(w->lock_client) {
		const char *lp[1] = { w->lock_client };
		res = run(b, ST_CLIENT_LOCK_SHARED, 1, lp);
		if(res == NULL) {
			rc = pg_fail(b, w->what, retry, err, errlen);
			goto out;
		}
		PQclear(res);
	}
	res = run(b, w->st, w->n, w->params);
	if(res == NULL) {
		rc = pg_fail(b, w->what, retry, err, errlen);
	} else if(w->not_found && pg_changes(res) == 0) {
		g_snprintf(err, errlen, "%s %s is not stored%s", w->not_found, w->params[0],
			w->not_found_why ? w->not_found_why : "");
		rc = STORE_NOT_FOUND;
	}
	PQclear(res);
out:
	rc = pg_tx_finish(b, rc, w->what, fp, retry, err, errlen);
	g_free(fp);
	return rc;
}

static store_rc write1_run(store_backend *b, const write1 *w, char *err, size_t errlen) {
	return pg_retrying(b, write1_tx, w, err, errlen);
}

static store_rc pg_visit_create(store_backend *b, const store_visit_rec *r,
		char *err, size_t errlen) {
	pg_num t;
	const char *p[7] = { r->visit_id, r->therapist_code, r->client_code, r->modality,
		pg_i64(t, r->created_at_us), r->instance_id, r->invite_sha256 };
	write1 w = { "visit_create", ST_VISIT_INSERT, 7, p, NULL, NULL, r->client_code };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_visit_state(store_backend *b, const char *visit_id,
		const char *state, gint64 at_us, char *err, size_t errlen) {
	pg_num t;
	const char *p[3] = { visit_id, state, pg_i64(t, at_us) };
	write1 w = { "visit_state", ST_VISIT_STATE, 3, p, "visit", NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_visit_ended(store_backend *b, const char *visit_id,
		const char *end_reason, gint64 at_us, char *err, size_t errlen) {
	pg_num t;
	const char *p[3] = { visit_id, end_reason, pg_i64(t, at_us) };
	write1 w = { "visit_ended", ST_VISIT_ENDED, 3, p, "visit", " (or closed)", NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_instance_seen(store_backend *b, const char *instance_id,
		const char *servers_json, gint64 started_at_us, gint64 seen_at_us,
		char *err, size_t errlen) {
	pg_num t1, t2;
	const char *p[4] = { instance_id, servers_json, pg_i64(t1, started_at_us), pg_i64(t2, seen_at_us) };
	write1 w = { "instance_seen", ST_INSTANCE_SEEN, 4, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_participant_join(store_backend *b, const char *visit_id,
		const char *role, const char *code, gboolean research_consent,
		const char *language, gint64 at_us, char *err, size_t errlen) {
	pg_num t;
	const char *p[6] = { visit_id, role, code, research_consent ? "1" : "0", language, pg_i64(t, at_us) };
	write1 w = { "participant_join", ST_PARTICIPANT_INSERT, 6, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_pulse_create(store_backend *b, const store_pulse_rec *r,
		char *err, size_t errlen) {
	pg_num t1, t2;
	const char *p[11] = { r->pulse_id, r->visit_id, r->role, r->kind, r->instrument_id,
		r->instrument_version, r->language, r->trigger, r->delivered_via,
		pg_i64(t1, r->created_at_us), r->expires_at_us > 0 ? pg_i64(t2, r->expires_at_us) : NULL };
	write1 w = { "pulse_create", ST_PULSE_INSERT, 11, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_alert(store_backend *b, const store_alert_rec *r, char *err, size_t errlen) {
	pg_num s, th, t;
	const char *p[8] = { r->visit_id, r->pulse_id, r->rule, r->score_name, pg_dbl(s, r->score),
		pg_dbl(th, r->threshold), r->quality_json, pg_i64(t, r->at_us) };
	write1 w = { "alert", ST_ALERT_INSERT, 8, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_event(store_backend *b, const char *visit_id, const char *kind,
		const char *detail_json, gint64 at_us, char *err, size_t errlen) {
	pg_num t;
	const char *p[4] = { visit_id, kind, detail_json, pg_i64(t, at_us) };
	write1 w = { "event", ST_EVENT_INSERT, 4, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_pulse_quality(store_backend *b, const char *pulse_id,
		const char *quality_json, char *err, size_t errlen) {
	const char *p[2] = { pulse_id, quality_json };
	write1 w = { "pulse_quality", ST_PULSE_QUALITY, 2, p, "pulse", NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

static store_rc pg_incident(store_backend *b, const store_incident_rec *r,
		char *err, size_t errlen) {
	pg_num t1, t2;
	const char *p[7] = { r->visit_id, r->leg, r->medium, r->kind, pg_i64(t1, r->started_at_us),
		r->ended_at_us != 0 ? pg_i64(t2, r->ended_at_us) : NULL, r->detail_json };
	write1 w = { "incident", ST_INCIDENT_INSERT, 7, p, NULL, NULL, NULL };
	return write1_run(b, &w, err, errlen);
}

/* --- the start-up repair --------------------------------------------------------------- */

typedef struct repair_args {
	const char *instance_id;
	gint64 now_us;
	gint64 *visits;
} repair_args;

static store_rc repair_tx(store_backend *b, const void *args, gboolean *retry,
		char *err, size_t errlen) {
	const repair_args *a = args;
	*a->visits = 0;
	pg_num now;
	const char *p[2] = { a->instance_id, pg_i64(now, a->now_us) };
	char *fp = pg_fingerprint("repair", 2, p);
	gboolean done;
	store_rc rc = pg_tx_begin(b, "repair", fp, &done, err, errlen);
	if(rc != STORE_OK || done) {
		g_free(fp);
		return rc;
	}
	PGresult *open = run(b, ST_OPEN_VISITS, 1, p);
	if(open == NULL)
		rc = pg_fail(b, "repair", retry, err, errlen);
	for(int i = 0; rc == STORE_OK && i < PQntuples(open); i++) {
		const char *id = PQgetvalue(open, i, 0);
		gint64 last = g_ascii_strtoll(PQgetvalue(open, i, 1), NULL, 10);
		pg_num l;
		const char *rp[3] = { id, pg_i64(l, last < a->now_us ? last : a->now_us), now };
		static const int steps[3] = { ST_REPAIR_PULSES, ST_REPAIR_INCIDENTS, ST_REPAIR_VISIT };
		for(int k = 0; k < 3 && rc == STORE_OK; k++)
			rc = pg_step(b, statements[steps[k]].name, k == 2 ? 3 : 2, rp, "repair", retry, err, errlen);
		if(rc == STORE_OK)
			rc = pg_report_summarize(b->conn, id, TRUE, retry, err, errlen);
	}
	if(rc == STORE_OK)
		*a->visits = PQntuples(open);
	PQclear(open);
	rc = pg_tx_finish(b, rc, "repair", fp, retry, err, errlen);
	if(rc != STORE_OK)
		*a->visits = 0;
	g_free(fp);
	return rc;
}

static store_rc pg_repair(store_backend *b, const char *instance_id, gint64 now_us,
		gint64 *visits, char *err, size_t errlen) {
	repair_args a = { instance_id, now_us, visits };
	return pg_retrying(b, repair_tx, &a, err, errlen);
}

/* --- reads ------------------------------------------------------------------------------ */

/* A read (analytics lane): one statement is one consistent snapshot. */
static store_rc pg_visit_locate(store_backend *b, const char *visit_id,
		const char *invite_sha256, char **instance_id, char **servers_json,
		char *err, size_t errlen) {
	store_rc rc = pg_ensure_conn(b, "visit_locate", err, errlen);
	if(rc != STORE_OK)
		return rc;
	const char *p[2] = { visit_id, invite_sha256 };
	PGresult *res = run(b, ST_VISIT_LOCATE, 2, p);
	if(res == NULL)
		return pg_fail(b, "visit_locate", NULL, err, errlen);
	if(PQntuples(res) == 0) {
		PQclear(res);
		g_snprintf(err, errlen, "no open visit matches");
		return STORE_NOT_FOUND;
	}
	*instance_id = g_strdup(PQgetvalue(res, 0, 0));
	*servers_json = g_strdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	return STORE_OK;
}

static store_rc pg_client_scores(store_backend *b, const char *client_code,
		const char *instrument_id, const char *score_name,
		const char *exclude_visit_id, int limit, GArray *out,
		char *err, size_t errlen) {
	store_rc rc = pg_ensure_conn(b, "client_scores", err, errlen);
	if(rc != STORE_OK)
		return rc;
	pg_num l;
	const char *p[5] = { client_code, instrument_id, score_name, exclude_visit_id,
		limit > 0 ? pg_i64(l, limit) : NULL };
	PGresult *res = run(b, ST_CLIENT_SCORES, 5, p);
	if(res == NULL)
		return pg_fail(b, "client_scores", NULL, err, errlen);
	for(int i = 0; i < PQntuples(res); i++) {
		double v = g_ascii_strtod(PQgetvalue(res, i, 0), NULL);
		g_array_append_val(out, v);
	}
	PQclear(res);
	return STORE_OK;
}

static json_t *stored_object(const PGresult *res, int row, int col) {
	return store_rows_object(PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col));
}

static store_rc visit_quality_read(store_backend *b, const char *visit_id, json_t *pulses,
		json_t *incidents, json_int_t *samples, char *err, size_t errlen) {
	const char *p[1] = { visit_id };
	PGresult *res = run(b, ST_VISIT_EXISTS, 1, p);
	if(res == NULL)
		return pg_fail(b, "visit_quality", NULL, err, errlen);
	gboolean found = PQntuples(res) > 0;
	PQclear(res);
	if(!found) {
		g_snprintf(err, errlen, "visit %s is not stored", visit_id);
		return STORE_NOT_FOUND;
	}
	if((res = run(b, ST_VISIT_PULSE_QUALITY, 1, p)) == NULL)
		return pg_fail(b, "visit_quality", NULL, err, errlen);
	for(int i = 0; i < PQntuples(res); i++)
		json_array_append_new(pulses, json_pack("{s:s, s:o}", "pulse_id", PQgetvalue(res, i, 0),
			"quality", stored_object(res, i, 1)));
	PQclear(res);
	if((res = run(b, ST_VISIT_INCIDENTS, 1, p)) == NULL)
		return pg_fail(b, "visit_quality", NULL, err, errlen);
	for(int i = 0; i < PQntuples(res); i++)
		json_array_append_new(incidents, store_rows_incident(PQgetvalue(res, i, 0),
			PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), g_ascii_strtoll(PQgetvalue(res, i, 3), NULL, 10),
			PQgetisnull(res, i, 4) ? -1 : g_ascii_strtoll(PQgetvalue(res, i, 4), NULL, 10),
			PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5)));
	PQclear(res);
	if((res = run(b, ST_VISIT_SAMPLES, 1, p)) == NULL)
		return pg_fail(b, "visit_quality", NULL, err, errlen);
	*samples = (json_int_t)g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

static store_rc pg_visit_quality(store_backend *b, const char *visit_id,
		json_t **out, char *err, size_t errlen) {
	*out = NULL;
	store_rc rc = pg_ensure_conn(b, "visit_quality", err, errlen);
	if(rc != STORE_OK)
		return rc;
	/* the three reads see one state of the database */
	if(pg_exec(b->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &b->f) != 0)
		return pg_fail(b, "visit_quality", NULL, err, errlen);
	json_t *pulses = json_array(), *incidents = json_array();
	json_int_t samples = 0;
	rc = visit_quality_read(b, visit_id, pulses, incidents, &samples, err, errlen);
	rc = pg_tx_end(b->conn, rc, "visit_quality", NULL, err, errlen);
	if(rc == STORE_OK)
		return (*out = store_rows_quality(pulses, incidents, samples, err, errlen)) ? STORE_OK : STORE_ERR;
	json_decref(pulses);
	json_decref(incidents);
	return rc;
}

/* --- reports, erasure, retention (store_pg_report.c) ---------------------------------- */

typedef struct report_args {
	int op;                            /* 0 summarize, 1 forget, 2 retention */
	const char *id;
	int days;
	gint64 at_us;
	gint64 *rows;
} report_args;

static store_rc report_tx(store_backend *b, const void *args, gboolean *retry,
		char *err, size_t errlen) {
	const report_args *a = args;
	store_rc rc = pg_ensure_conn(b, a->op == 0 ? "visit_summarize" : a->op == 1 ? "forget" : "retention",
		err, errlen);
	if(rc != STORE_OK)
		return rc;
	if(a->op == 0)
		return pg_report_summarize(b->conn, a->id, FALSE, retry, err, errlen);
	if(a->op == 1)
		return pg_report_forget(b->conn, a->id, a->at_us, a->rows, retry, err, errlen);
	return pg_report_retention(b->conn, a->days, a->at_us, a->rows, retry, err, errlen);
}

static store_rc pg_visit_summarize(store_backend *b, const char *visit_id,
		char *err, size_t errlen) {
	report_args a = { 0, visit_id, 0, 0, NULL };
	return pg_retrying(b, report_tx, &a, err, errlen);
}

static store_rc pg_forget_client(store_backend *b, const char *client_code,
		gint64 at_us, gint64 *rows, char *err, size_t errlen) {
	report_args a = { 1, client_code, 0, at_us, rows };
	return pg_retrying(b, report_tx, &a, err, errlen);
}

static store_rc pg_retention(store_backend *b, int days, gint64 now_us,
		gint64 *rows, char *err, size_t errlen) {
	report_args a = { 2, NULL, days, now_us, rows };
	return pg_retrying(b, report_tx, &a, err, errlen);
}

static store_rc pg_report_read(store_backend *b, store_report_what what,
		const store_report_filter *f, store_row_cb row, void *user,
		char *err, size_t errlen) {
	store_rc rc = pg_ensure_conn(b, "report", err, errlen);
	if(rc != STORE_OK)
		return rc;
	return pg_report_rows(b->conn, what, f, row, user, err, errlen);
}

static void pg_close(store_backend *b) {
	if(b == NULL)
		return;
	PQfinish(b->conn);
	if(b->secret) {
		memset(b->secret, 0, strlen(b->secret));
		g_free(b->secret);
	}
	clear_pending(b);
	g_hash_table_destroy(b->months);
	g_free(b);
}

static const store_backend_ops pg_ops = {
	.name = "postgresql",
	.visit_create = pg_visit_create,
	.visit_state = pg_visit_state,
	.visit_ended = pg_visit_ended,
	.repair = pg_repair,
	.instance_seen = pg_instance_seen,
	.visit_locate = pg_visit_locate,
	.participant_join = pg_participant_join,
	.pulse_create = pg_pulse_create,
	.pulse_status = pg_pulse_status,
	.answer = pg_answer,
	.dismiss = pg_dismiss,
	.alert = pg_alert,
	.event = pg_event,
	.samples = pg_samples,
	.client_scores = pg_client_scores,
	.pulse_quality = pg_pulse_quality,
	.incident = pg_incident,
	.visit_quality = pg_visit_quality,
	.visit_summarize = pg_visit_summarize,
	.forget_client = pg_forget_client,
	.retention = pg_retention,
	.report_rows = pg_report_read,
	.close = pg_close,
};

/* --- opening ------------------------------------------------------------------------------ */

/* A backend around a connection set up by store_pg_connect() (takes it). */
static store_backend *wrap(PGconn *conn, const char *url, gboolean read_only) {
	store_backend *b = g_new0(store_backend, 1);
	b->conn = conn;
	b->read_only = read_only;
	b->ready = FALSE;                  /* statements prepared by the first pg_ensure_conn() */
	b->secret = pg_password_of(url);
	b->months = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	return b;
}

/* Connect for the store; NULL with "db_url <safe>: ..." in err. */
static PGconn *connect_for(const char *url, const char *safe, gboolean read_only,
		char *err, size_t errlen) {
	char cerr[400];
	PGconn *conn = store_pg_connect(url, read_only, cerr, sizeof(cerr));
	if(conn == NULL)
		g_snprintf(err, errlen, "db_url %s: %s", safe, cerr);
	return conn;
}

/* The URL as it may be shown (no password), or NULL with the reason in
 * err when it is empty or not a PostgreSQL connection string. */
static char *checked_url(const char *url, char *err, size_t errlen) {
	if(err && errlen)
		err[0] = '\0';
	if(url == NULL || url[0] == '\0') {
		g_snprintf(err, errlen, "db_url is empty");
		return NULL;
	}
	char *safe = store_pg_safe_url(url);
	if(safe == NULL)
		g_snprintf(err, errlen, "db_url is not a PostgreSQL connection URI or keyword/value string");
	return safe;
}

store *store_open_pg(const char *url, char *err, size_t errlen) {
	char *safe = checked_url(url, err, errlen);
	if(safe == NULL)
		return NULL;
	store *st = NULL;
	store_backend *b = NULL, *reader = NULL;
	PGconn *conn = connect_for(url, safe, FALSE, err, errlen);
	if(conn == NULL)
		goto out;
	char merr[300];
	if(store_pg_migrate(conn, store_pg_migrations, store_pg_n_migrations, merr, sizeof(merr)) < 0) {
		g_snprintf(err, errlen, "db_url %s %s", safe, merr);
		PQfinish(conn);
		goto out;
	}
	b = wrap(conn, url, FALSE);
	if(pg_ensure_conn(b, "open", merr, sizeof(merr)) != STORE_OK) {
		g_snprintf(err, errlen, "db_url %s: %s", safe, merr);
		goto out;
	}
	char rerr[300];
	if(pg_report_backfill(b->conn, rerr, sizeof(rerr)) < 0) {
		g_snprintf(err, errlen, "db_url %s: %s", safe, rerr);
		goto out;
	}
	/* this month's and next month's sample partitions, made ahead */
	if(!pg_samples_ensure_month(b, g_get_real_time())) {
		g_snprintf(err, errlen, "db_url %s: the server went away: %s", safe, b->f.msg);
		goto out;
	}
	/* the analytics lane's own connection */
	PGconn *rconn = connect_for(url, safe, FALSE, err, errlen);
	if(rconn == NULL)
		goto out;
	reader = wrap(rconn, url, FALSE);
	reader->analytics = TRUE;
	if(pg_ensure_conn(reader, "open", merr, sizeof(merr)) != STORE_OK) {
		g_snprintf(err, errlen, "db_url %s: %s", safe, merr);
		goto out;
	}
	st = store_start(safe, &pg_ops, b, reader, 0, NULL, err, errlen);
	b = reader = NULL;                 /* store_start took them (closed them on failure) */
out:
	pg_close(b);
	pg_close(reader);
	g_free(safe);
	return st;
}

/* An existing database of this build's schema version, next to running
 * plugins: nothing migrated; read-only sessions, or (erasure) sessions that
 * may write one erasure (alliance-report --forget). */
static store *open_existing(const char *url, gboolean erasure, char *err, size_t errlen) {
	char *safe = checked_url(url, err, errlen);
	if(safe == NULL)
		return NULL;
	store *st = NULL;
	PGconn *conn = connect_for(url, safe, !erasure, err, errlen);
	if(conn == NULL)
		goto out;
	char verr[200];
	int v = store_pg_schema_version(conn, verr, sizeof(verr));
	if(v != STORE_SCHEMA_VERSION) {
		if(v == -2)
			g_snprintf(err, errlen, "db_url %s %s", safe, verr);
		else if(v < 0)
			g_snprintf(err, errlen, "db_url %s is not an Alliance Pulse database (no schema_version)", safe);
		else
			g_snprintf(err, errlen, "db_url %s has schema version %d, this build reads %d%s", safe, v,
				STORE_SCHEMA_VERSION, v < STORE_SCHEMA_VERSION ?
				" (start the plugin once to upgrade it; this tool never writes)" : "");
		PQfinish(conn);
		goto out;
	}
	store_backend *b = wrap(conn, url, !erasure);
	b->analytics = TRUE;               /* next to running plugins: yields as their reports do */
	if(pg_ensure_conn(b, "open", verr, sizeof(verr)) != STORE_OK) {
		g_snprintf(err, errlen, "db_url %s: %s", safe, verr);
		pg_close(b);
		goto out;
	}
	st = store_start(safe, &pg_ops, b, NULL, erasure ? 0 : STORE_START_READ_ONLY, NULL, err, errlen);
out:
	g_free(safe);
	return st;
}

store *store_open_pg_for_reading(const char *url, char *err, size_t errlen) {
	return open_existing(url, FALSE, err, errlen);
}

store *store_open_pg_for_erasure(const char *url, char *err, size_t errlen) {
	return open_existing(url, TRUE, err, errlen);
}
